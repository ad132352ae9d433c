//! A client session: its configuration and the streaming queries it started. Sessions share
//! nothing but the engine; a query belongs to the session that started it (Spark's
//! `spark.streams`).

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::proto::spark as pb;
use super::translate::{Rel, Translator};
use super::{ConnectError, Root};
use crate::execution::{QueryConfig, QueryView, StopHandle, StreamingQuery, Trigger};
use crate::query::{OutputMode, Query};

/// How a query's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Termination {
    /// Stopped, or finished an available-now run.
    Stopped,
    /// Failed with this message.
    Failed(String),
}

/// A streaming query a session started.
#[derive(Debug)]
pub struct RunningQuery {
    /// The query id (stable across restarts: it lives in the checkpoint).
    pub id: String,
    /// This run's id.
    pub run_id: String,
    /// `queryName`, when given.
    pub name: Option<String>,
    view: QueryView,
    stop: StopHandle,
    done: watch::Receiver<Option<Termination>>,
}

impl RunningQuery {
    /// Status and progress.
    pub fn view(&self) -> &QueryView {
        &self.view
    }

    /// How it ended; `None` while it runs.
    pub fn termination(&self) -> Option<Termination> {
        self.done.borrow().clone()
    }

    /// Asks it to stop after the batch in flight and waits until it has.
    pub async fn stop(&self) {
        self.stop.stop();
        let mut done = self.done.clone();
        let _ = done.wait_for(|d| d.is_some()).await;
    }

    /// Waits until it ends, at most `timeout`; true when it has ended.
    pub async fn await_termination(&self, timeout: Option<std::time::Duration>) -> bool {
        let mut done = self.done.clone();
        let wait = done.wait_for(|d| d.is_some());
        match timeout {
            Some(t) => matches!(tokio::time::timeout(t, wait).await, Ok(Ok(_))),
            None => wait.await.is_ok(),
        }
    }

    /// Waits until everything present now has been processed (Spark's
    /// `processAllAvailable`), or the query ended; a failure is returned.
    pub async fn process_all_available(&self) -> Result<(), ConnectError> {
        let after = self.view.triggers_started();
        loop {
            match self.termination() {
                Some(Termination::Failed(m)) => return Err(ConnectError::StreamingQuery(m)),
                Some(Termination::Stopped) => return Ok(()),
                None if self.view.idle_since(after) => return Ok(()),
                None => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        }
    }
}

/// One client session.
#[derive(Debug)]
pub struct Session {
    /// The session id the client chose.
    pub id: String,
    conf: Mutex<BTreeMap<String, String>>,
    queries: Mutex<BTreeMap<String, Arc<RunningQuery>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a panic while updating plain data; the data is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The configuration every session starts with: what the client reads before its first
/// query.
fn default_conf() -> BTreeMap<String, String> {
    [
        ("spark.sql.session.timeZone", "UTC"),
        ("spark.sql.session.localRelationCacheThreshold", "67108864"),
        ("spark.sql.execution.pandas.convertToArrowArraySafely", "false"),
        ("spark.sql.pyspark.inferNestedDictAsStruct.enabled", "false"),
        (
            "spark.sql.pyspark.legacy.inferArrayTypeFromFirstElement.enabled",
            "false",
        ),
        ("spark.sql.timestampType", "TIMESTAMP_LTZ"),
        ("spark.sql.ansi.enabled", "false"),
        ("spark.sql.streaming.numRecentProgressUpdates", "100"),
        ("spark.sql.shuffle.partitions", "200"),
        ("spark.sql.execution.pythonUDF.arrow.enabled", "false"),
        ("spark.sql.execution.arrow.pyspark.enabled", "true"),
        ("spark.sql.execution.arrow.maxRecordsPerBatch", "10000"),
        ("spark.sql.repl.eagerEval.enabled", "false"),
        ("spark.sql.repl.eagerEval.maxNumRows", "20"),
        ("spark.sql.repl.eagerEval.truncate", "20"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

impl Session {
    /// A new session.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            conf: Mutex::new(default_conf()),
            queries: Mutex::new(BTreeMap::new()),
        }
    }

    /// A configuration value.
    pub fn conf(&self, key: &str) -> Option<String> {
        lock(&self.conf).get(key).cloned()
    }

    /// Sets configuration values (any key: Spark's static ones are accepted and kept).
    pub fn set_conf(&self, pairs: impl IntoIterator<Item = (String, String)>) {
        lock(&self.conf).extend(pairs);
    }

    /// Removes configuration values.
    pub fn unset_conf(&self, keys: &[String]) {
        let mut c = lock(&self.conf);
        for k in keys {
            c.remove(k);
        }
    }

    /// Every value, or those whose key starts with `prefix`, by key.
    pub fn all_conf(&self, prefix: Option<&str>) -> Vec<(String, String)> {
        lock(&self.conf)
            .iter()
            .filter(|(k, _)| prefix.is_none_or(|p| k.starts_with(p)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The query with this id.
    pub fn query(&self, id: &str) -> Result<Arc<RunningQuery>, ConnectError> {
        lock(&self.queries).get(id).cloned().ok_or_else(|| {
            ConnectError::StreamingQuery(format!(
                "no streaming query with id {id} in this session (it was started in another session, or the server restarted: start it again from its checkpoint)"
            ))
        })
    }

    /// The queries still running, by id.
    pub fn active(&self) -> Vec<Arc<RunningQuery>> {
        lock(&self.queries)
            .values()
            .filter(|q| q.termination().is_none())
            .cloned()
            .collect()
    }

    /// Every query of this session, running or ended, by id.
    pub fn all_queries(&self) -> Vec<Arc<RunningQuery>> {
        lock(&self.queries).values().cloned().collect()
    }

    /// `writeStream….start()`: translates, starts from the checkpoint, runs in the background.
    pub async fn start_query(
        &self,
        root: &Root,
        w: &pb::WriteStreamOperationStart,
    ) -> Result<Arc<RunningQuery>, ConnectError> {
        let t = Translator::new(root);
        let input = t.relation(
            w.input
                .as_ref()
                .ok_or_else(|| ConnectError::InvalidRequest("writeStream has no DataFrame".into()))?,
        )?;
        let (plan, stream) = match input {
            Rel::Plan {
                plan,
                stream: Some(stream),
            } => (plan, stream),
            _ => {
                return Err(ConnectError::Analysis(
                    "'writeStream' can be called only on streaming Dataset/DataFrame".into(),
                ));
            }
        };
        if w.foreach_batch.is_some() || w.foreach_writer.is_some() {
            return Err(ConnectError::Unserved {
                what: "foreach and foreachBatch sinks".into(),
                hint: "write to a Delta table: writeStream.format(\"delta\").start(path)".into(),
            });
        }
        let format = if w.format.is_empty() {
            "parquet"
        } else {
            w.format.as_str()
        };
        if !format.eq_ignore_ascii_case("delta") {
            return Err(ConnectError::Unserved {
                what: format!("the streaming sink format '{format}'"),
                hint: "streams are written to Delta tables: writeStream.format(\"delta\")".into(),
            });
        }
        let mut options: BTreeMap<String, String> =
            w.options.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let path = match (&w.sink_destination, options.remove("path")) {
            (Some(pb::write_stream_operation_start::SinkDestination::Path(p)), _) => p.clone(),
            (Some(pb::write_stream_operation_start::SinkDestination::TableName(t)), _) => {
                return Err(ConnectError::Unserved {
                    what: format!("writing to the table `{t}` by name (toTable)"),
                    hint: "this server has no catalog; start(path) writes the Delta table at a path".into(),
                });
            }
            (None, Some(p)) => p,
            (None, None) => {
                return Err(ConnectError::Analysis(
                    "'path' is not specified: start(path) names the Delta table to write".into(),
                ));
            }
        };
        let output = root.confine(&path)?;
        let name = (!w.query_name.is_empty()).then(|| w.query_name.clone());
        let checkpoint = match options.remove("checkpointLocation") {
            Some(c) => root.confine(&c)?,
            None => match self.conf("spark.sql.streaming.checkpointLocation") {
                Some(base) => root
                    .confine(&base)?
                    .join(name.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string())),
                None => {
                    return Err(ConnectError::Analysis(
                        "checkpointLocation must be specified either through option(\"checkpointLocation\", ...) or SparkSession.conf.set(\"spark.sql.streaming.checkpointLocation\", ...)".into(),
                    ));
                }
            },
        };
        if let Some(k) = options.keys().next() {
            return Err(ConnectError::Unserved {
                what: format!("the sink option '{k}'"),
                hint: "the Delta sink takes checkpointLocation and path".into(),
            });
        }
        let mode_text = if w.output_mode.is_empty() {
            "append"
        } else {
            w.output_mode.as_str()
        };
        let mode: OutputMode = mode_text
            .parse()
            .map_err(|e: crate::query::QueryError| ConnectError::Analysis(e.to_string()))?;
        use pb::write_stream_operation_start::Trigger as T;
        let mut mfpt = stream.max_files_per_trigger.unwrap_or(NonZeroUsize::MAX);
        let trigger = match &w.trigger {
            None => Trigger::ProcessingTime { interval_ms: 0 },
            Some(T::ProcessingTimeInterval(i)) => {
                let ms = crate::duration::parse_duration_ms(i)
                    .map_err(|e| ConnectError::Analysis(format!("trigger(processingTime='{i}'): {e}")))?;
                Trigger::ProcessingTime {
                    interval_ms: ms.max(0),
                }
            }
            Some(T::AvailableNow(_)) => Trigger::AvailableNow,
            Some(T::Once(_)) => {
                // Once: everything present, in one batch.
                mfpt = NonZeroUsize::MAX;
                Trigger::AvailableNow
            }
            Some(T::ContinuousCheckpointInterval(_)) => {
                return Err(ConnectError::Unserved {
                    what: "the continuous trigger".into(),
                    hint: "use processingTime or availableNow".into(),
                });
            }
        };
        let config = QueryConfig {
            name: name.clone().unwrap_or_else(|| {
                checkpoint
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "query".into())
            }),
            input: stream.path.clone(),
            output,
            checkpoint: checkpoint.clone(),
            max_files_per_trigger: mfpt,
            // `spark.microbatch.fsync`: a conf Spark ignores, so the same code runs there.
            query: Query::from_plan(plan).output_mode(mode).fsync(
                self.conf("spark.microbatch.fsync")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            ),
            clock: Arc::new(crate::clock::SystemClock),
        };
        let query = StreamingQuery::start(config).await.map_err(start_error)?;
        let id = query.id().to_string();
        let run_id = query.run_id().to_string();
        let stop = query.stop_handle();
        let handle = query.spawn(trigger, |_| {});
        let view = handle.view();
        let (tx, done) = watch::channel(None);
        tokio::spawn(async move {
            let end = match handle.await_termination().await {
                Ok(_) => Termination::Stopped,
                Err(e) => Termination::Failed(e.to_string()),
            };
            tx.send_replace(Some(end));
        });
        let running = Arc::new(RunningQuery {
            id: id.clone(),
            run_id,
            name,
            view,
            stop,
            done,
        });
        lock(&self.queries).insert(id, running.clone());
        Ok(running)
    }

    /// Stops every query of the session (when the session is released).
    pub async fn stop_all(&self) {
        for q in self.active() {
            q.stop().await;
        }
    }
}

/// An error starting a query: a plan or checkpoint Spark would refuse is an
/// `AnalysisException`; the rest are runtime failures.
fn start_error(e: crate::execution::EngineError) -> ConnectError {
    use crate::execution::EngineError as E;
    match e {
        E::Operator(_) | E::CheckpointMismatch(_) | E::Config(_) | E::InputNotFound { .. } => {
            ConnectError::Analysis(e.to_string())
        }
        E::Checkpoint(crate::checkpoint::CheckpointError::Locked(_)) => ConnectError::Analysis(e.to_string()),
        other => ConnectError::StreamingQuery(other.to_string()),
    }
}
