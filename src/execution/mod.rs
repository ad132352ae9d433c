//! The micro-batch loop: the one place that decides the order of durable writes.
//!
//! For batch N, in Spark's order (R2.3):
//!
//! 1. the file source records the batch's files in `sources/0/<k>`       → `source.after_source_log`
//! 2. `offsets/N`: the source offset, the watermark and the batch time   → `offsets.after_write`
//! 3. the rows are read and processed by the operator; a stateful one writes its state
//!    version N+1                                                         → `state.after_commit`
//! 4. rejected records are committed to `<table>_rejects` (txn = query id, N)
//! 5. the sink's parquet files are written                               → `sink.after_files_written`
//! 6. the Delta commit with txn (query id, N)                            → `sink.after_delta_commit`
//! 7. `commits/N` with the watermark for batch N+1                      ← `commits.before_write`
//!
//! A stateful query in append or update mode also runs *no-data batches* (R4.2): when no file is
//! new but the watermark moved past the one the last batch of this run evicted with, a batch runs
//! with the same source offsets and the new watermark, so closed windows are emitted/evicted.
//!
//! On start ([`StreamingQuery::start`]): if the newest `offsets/L` has its `commits/L`, the query goes on
//! with batch L+1; if not, batch L is run again with exactly the logged offsets, watermark and
//! timestamp. A step that already landed is not repeated: the source does not re-list, and a
//! Delta table whose txn version for the query is ≥ N skips the commit. So a query stopped at
//! any instant writes every row exactly once.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use tokio::sync::watch;

use crate::checkpoint::fingerprint::{self, Fingerprint, Mismatch};
use crate::checkpoint::{Checkpoint, CheckpointError, CommitMetadata, OffsetSeq};
use crate::clock::SharedClock;
use crate::failpoints::{FailScope, InjectedCrash};
use crate::late::{late_schema, late_table_path};
use crate::operators::watermark::WatermarkTracker;
use crate::operators::{OperatorError, Pipeline};
use crate::plan::WriteMode;
use crate::progress::{ProgressLog, QueryProgress, QueryStatus};
use crate::query::{OutputMode as Mode, Query};
use crate::rejects::{rejects_schema, rejects_table_path};
use crate::sink::{DeltaSink, SinkError};
use crate::source::{FileSource, FileSourceOffset, SourceError};

mod batch;
mod handle;
mod read_ahead;

pub use handle::{QueryHandle, QueryView, StopHandle, StopRequest};
use handle::{Shared, SharedState, lock};

/// Errors of a running query.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The checkpoint folder.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The file source.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A Delta table.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The query's operator.
    #[error(transparent)]
    Operator(#[from] OperatorError),
    /// A failpoint fired (tests only).
    #[error(transparent)]
    InjectedCrash(#[from] InjectedCrash),
    /// The query failed earlier in this run; it must be restarted from its checkpoint.
    #[error(
        "query `{name}` failed earlier in this run ({cause}); start it again to recover from its checkpoint"
    )]
    Failed {
        /// Query name.
        name: String,
        /// The first error.
        cause: String,
    },
    /// The configuration is invalid.
    #[error("invalid query configuration: {0}")]
    Config(String),
    /// The checkpoint was made for another query.
    #[error("{0}")]
    CheckpointMismatch(Box<Mismatch>),
    /// A blocking task of the query (reading a batch's files) panicked or was cancelled.
    #[error("query task failed: {0}")]
    Task(String),
    /// The input folder is missing (Spark: `[PATH_NOT_FOUND]` at start).
    #[error(
        "[PATH_NOT_FOUND] Path does not exist: {}: query `{query}` reads its files from there; create the folder or point --input at the one the files arrive in",
        path.display()
    )]
    InputNotFound {
        /// The query.
        query: String,
        /// The folder.
        path: std::path::PathBuf,
    },
}

type Result<T> = std::result::Result<T, EngineError>;

/// Everything a query needs to start.
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// Query name (progress `name`), e.g. `raw`.
    pub name: String,
    /// Input folder of JSON-lines files.
    pub input: PathBuf,
    /// Output Delta table folder.
    pub output: PathBuf,
    /// Checkpoint folder of this query.
    pub checkpoint: PathBuf,
    /// Spark's `maxFilesPerTrigger`.
    pub max_files_per_trigger: NonZeroUsize,
    /// What the query computes and its output mode.
    pub query: Query,
    /// The query clock (batch timestamps, trigger intervals).
    pub clock: SharedClock,
}

/// How a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Process everything present at start (honouring maxFilesPerTrigger), then stop.
    AvailableNow,
    /// A batch every `interval_ms` (aligned to multiples of it) until stopped.
    ProcessingTime {
        /// The interval.
        interval_ms: i64,
    },
}

impl std::str::FromStr for Trigger {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s == "available-now" || s == "availableNow" {
            return Ok(Self::AvailableNow);
        }
        let ms = crate::duration::parse_duration_ms(s)
            .map_err(|e| format!("trigger must be `available-now` or an interval like `5s`: {e}"))?;
        // 0 is Spark's "as fast as possible": the next batch starts when one ends.
        if ms < 0 {
            return Err(format!("trigger interval must not be negative, got `{s}`"));
        }
        Ok(Self::ProcessingTime { interval_ms: ms })
    }
}

/// A started query: its checkpoint locked, its source and sink open, recovered to where it
/// stopped.
#[derive(Debug)]
pub struct StreamingQuery {
    config: QueryConfig,
    /// What start-up recovery did (files set aside, orphans removed).
    recovery: Vec<String>,
    pipeline: Pipeline,
    /// How the output rows reach the table, decided by the plan.
    write: WriteMode,
    /// The output mode (for the Delta commit's `outputMode`).
    mode: Mode,
    /// True when the plan defines a watermark (progress reports it).
    has_watermark: bool,
    checkpoint: Checkpoint,
    source: FileSource,
    sink: DeltaSink,
    rejects: DeltaSink,
    /// The late-rows table, for a query with a watermark that keeps them.
    late: Option<DeltaSink>,
    /// Spark's per-run watermark tracker.
    tracker: WatermarkTracker,
    fail: FailScope,
    run_id: String,
    /// The id of the next batch to run.
    next_batch: u64,
    /// The source offset of the last committed batch.
    committed_offset: Option<u64>,
    /// The watermark the next batch runs with.
    watermark_ms: i64,
    /// The watermark the previous batch ran with: the next batch's late-input threshold.
    prev_batch_watermark_ms: i64,
    /// The eviction watermark of the last batch executed (`None` before the first): a no-data
    /// batch runs only when the watermark moved past it (R4.2).
    last_executed_watermark_ms: Option<i64>,
    /// The rows the last batch emitted.
    last_output: Option<crate::operators::PipelineOutput>,
    /// Offsets of batch `next_batch` when it was logged but not committed (re-run it).
    pending: Option<OffsetSeq>,
    /// The next batch's files being read while this one runs, when they are known early.
    read_ahead: Option<read_ahead::ReadAhead>,
    /// Query-clock time of the previous trigger (for `inputRowsPerSecond`).
    previous_trigger_ms: Option<i64>,
    shared: SharedState,
    failed: Option<String>,
    /// Spark's description of the source, `FileStreamSource[<absolute input folder>]` (made
    /// absolute so `status` finds the folder from anywhere).
    source_description: String,
    stop_tx: Arc<watch::Sender<StopRequest>>,
}

fn source_offset(seq: &OffsetSeq, path: &Path) -> Result<Option<u64>> {
    match seq.sources.first() {
        None | Some(None) => Ok(None),
        Some(Some(v)) => FileSourceOffset::from_json(v)
            .map(|o| Some(o.log_offset))
            .ok_or_else(|| {
                CheckpointError::Corrupt {
                    path: path.to_path_buf(),
                    why: format!("source offset {v} is not a file-source offset"),
                }
                .into()
            }),
    }
}

/// Recovers from torn checkpoint files where that is provably safe, or stops naming the file.
///
/// Writes are atomic, so a torn file means outside damage (or a file system that lost a
/// rename). A corrupt last `commits/N` is set aside: re-running batch N is always safe (the
/// sink skips it by its txn, the state is rebuilt from version N). A corrupt last `offsets/N`
/// without a commit is set aside when the output table's txn shows batch N never landed: the
/// batch is planned again (its files are still pending in the source log). Anything else is an
/// error naming the file.
/// Sets aside a torn last commit or offsets file (see the notes it returns). When a torn
/// `offsets/N` is set aside, also returns when it was written: batch N ran from then on, and
/// may have left data files.
async fn set_aside_torn_files(
    cp: &mut Checkpoint,
    output: &Path,
) -> Result<(Vec<String>, Option<std::time::SystemTime>)> {
    let mut notes = Vec::new();
    let mut replanned_since = None;
    if let Some(c) = cp.latest_commit_id()
        && let Err(CheckpointError::Corrupt { path, why }) = cp.read_commit(c)
    {
        let to = cp.set_aside_commit(c)?;
        notes.push(format!(
            "{} was corrupt ({why}); set aside as {}; batch {c} runs again",
            path.display(),
            to.display()
        ));
    }
    if let Some(o) = cp.latest_offsets_id()
        && cp.latest_commit_id() != Some(o)
        && let Err(CheckpointError::Corrupt { path, why }) = cp.read_offsets(o)
    {
        let landed = if output.join("_delta_log").is_dir() {
            crate::table::txn_version(output, cp.query_id()).await?
        } else {
            None
        };
        if landed.is_some_and(|v| v >= o as i64) {
            return Err(CheckpointError::Corrupt {
                path,
                why: format!(
                    "{why}; batch {o} already reached {} (txn {}), so it cannot be planned again. Restore the file from a backup, or start the query on a new checkpoint (its rows would then be written again)",
                    output.display(),
                    landed.unwrap_or_default()
                ),
            }
            .into());
        }
        let to = cp.set_aside_offsets(o)?;
        replanned_since = std::fs::metadata(&to).and_then(|m| m.modified()).ok();
        notes.push(format!(
            "{} was corrupt ({why}) and batch {o} never reached the table; set aside as {}; batch {o} is planned again",
            path.display(),
            to.display()
        ));
    }
    Ok((notes, replanned_since))
}

/// Where a query stands in its checkpoint: the next batch, the source offset of the last
/// committed batch, the watermark the next batch runs with, and the offsets of a batch planned
/// but not committed (to run again, R3.2).
fn recover_position(
    checkpoint: &Checkpoint,
    offsets_dir: &Path,
) -> Result<(u64, Option<u64>, i64, Option<OffsetSeq>)> {
    Ok(match checkpoint.latest_offsets_id() {
        None => (0, None, 0, None),
        Some(last) => {
            let seq = checkpoint.expect_offsets(last, last)?;
            if checkpoint.latest_commit_id() == Some(last) {
                let commit = checkpoint.read_commit(last)?.unwrap_or(CommitMetadata {
                    next_batch_watermark_ms: 0,
                });
                let wm = seq
                    .metadata
                    .batch_watermark_ms
                    .max(commit.next_batch_watermark_ms);
                (last + 1, source_offset(&seq, offsets_dir)?, wm, None)
            } else {
                let committed = if last > 0 {
                    source_offset(&checkpoint.expect_offsets(last - 1, last)?, offsets_dir)?
                } else {
                    None
                };
                (last, committed, seq.metadata.batch_watermark_ms, Some(seq))
            }
        }
    })
}

/// What a query needs before it may start, checked without writing anything: its input
/// folder exists, and its plan is one Spark accepts over tables that exist (a static join
/// side). `run all` checks every query before starting any.
pub async fn preflight(config: &QueryConfig) -> Result<crate::plan::Analyzed> {
    if !config.input.is_dir() {
        return Err(EngineError::InputNotFound {
            query: config.name.clone(),
            path: config.input.clone(),
        });
    }
    Ok(crate::plan::analyze(&config.query.plan, config.query.output_mode).await?)
}

impl StreamingQuery {
    /// Opens the checkpoint (failing at once if another query holds it), analyses the query,
    /// opens the source and the sinks, and recovers the position: the next batch, the
    /// watermark, and a batch to re-run.
    pub async fn start(config: QueryConfig) -> Result<Self> {
        // The plan first: a query Spark would reject fails before anything is written.
        let analyzed = preflight(&config).await?;
        let durability = config.query.durability();
        let mut checkpoint = Checkpoint::open(&config.checkpoint)?.with_durability(durability);
        let now = Fingerprint {
            name: config.name.clone(),
            sink: config.output.display().to_string(),
            stateful: analyzed.stateful.clone(),
            plan: config.query.plan.tree_string(),
        };
        fingerprint::check_or_store(&config.checkpoint, &now)?
            .map_err(|m| EngineError::CheckpointMismatch(Box::new(m)))?;
        let (mut recovery, replanned_since) = set_aside_torn_files(&mut checkpoint, &config.output).await?;
        let decoder = crate::plan::decoder_for(&analyzed.source_schema, &analyzed.source_options)?;
        let source = FileSource::open(
            &config.input,
            &checkpoint.source_dir(0),
            config.max_files_per_trigger,
        )?
        .with_decoder(std::sync::Arc::new(decoder))
        .with_durability(durability);
        let mut rejects = DeltaSink::open(
            &rejects_table_path(&config.output),
            &rejects_schema(),
            checkpoint.query_id(),
        )
        .await?
        .with_durability(durability)?;
        let offsets_dir = config.checkpoint.join("offsets");
        let (next_batch, committed_offset, watermark_ms, pending) =
            recover_position(&checkpoint, &offsets_dir)?;
        // The late-input threshold of batch N is the watermark batch N-1 ran with.
        let prev_batch_watermark_ms = match next_batch {
            0 => 0,
            n => checkpoint.expect_offsets(n - 1, n)?.metadata.batch_watermark_ms,
        };
        // Batch N reads state version N.
        let output_schema = analyzed.output_schema.clone();
        let pipeline = crate::plan::build_pipeline(
            analyzed.source_schema.clone(),
            analyzed.steps,
            &config.checkpoint.join("state"),
            next_batch,
            durability,
        )?;
        let mut sink = DeltaSink::open(&config.output, &output_schema, checkpoint.query_id())
            .await?
            .with_durability(durability)?;
        let mut late =
            match analyzed.has_watermark && pipeline.runs_no_data_batches() && config.query.keeps_late_rows()
            {
                true => Some(
                    DeltaSink::open(
                        &late_table_path(&config.output),
                        &late_schema(),
                        checkpoint.query_id(),
                    )
                    .await?
                    .with_durability(durability)?,
                ),
                false => None,
            };
        // Only a batch planned but not committed can have left data files behind, and only
        // after its offsets were written (a torn offsets file set aside counts too).
        let planned_at = match pending {
            Some(_) => std::fs::metadata(offsets_dir.join(next_batch.to_string()))
                .and_then(|m| m.modified())
                .ok(),
            None => replanned_since,
        };
        if let Some(since) = planned_at {
            for table in [Some(&mut sink), Some(&mut rejects), late.as_mut()]
                .into_iter()
                .flatten()
            {
                let orphans = table.remove_orphans(since).await?;
                if !orphans.is_empty() {
                    recovery.push(format!(
                        "removed {} data file(s) a crash left uncommitted in {}",
                        orphans.len(),
                        table.path().display()
                    ));
                }
            }
        }
        let (stop_tx, _) = watch::channel(StopRequest::Run);
        let shared = Arc::new(std::sync::Mutex::new(Shared {
            status: QueryStatus::new("Initializing sources", false, false),
            progress: ProgressLog::open(&config.checkpoint.join("progress.jsonl")),
            triggers: 0,
            last_idle_trigger: 0,
        }));
        // Unlike Spark (R4.2a), a restart knows the watermark the last committed batch evicted
        // with, so an eviction that was due when the query stopped runs at once: results do not
        // depend on where a run was stopped.
        // That is the watermark batch N-1 ran with, read above.
        let last_executed_watermark_ms =
            (next_batch > 0 && pending.is_none()).then_some(prev_batch_watermark_ms);
        let source_description = format!(
            "FileStreamSource[{}]",
            std::path::absolute(&config.input)
                .unwrap_or_else(|_| config.input.clone())
                .display()
        );
        Ok(Self {
            recovery,
            pipeline,
            write: analyzed.write,
            mode: analyzed.output_mode,
            has_watermark: analyzed.has_watermark,
            prev_batch_watermark_ms,
            last_executed_watermark_ms,
            last_output: None,
            fail: FailScope::new(config.checkpoint.to_string_lossy()),
            run_id: uuid::Uuid::new_v4().to_string(),
            config,
            checkpoint,
            source,
            sink,
            rejects,
            late,
            tracker: WatermarkTracker::default(),
            next_batch,
            committed_offset,
            watermark_ms,
            pending,
            read_ahead: None,
            previous_trigger_ms: None,
            shared,
            failed: None,
            source_description,
            stop_tx: Arc::new(stop_tx),
        })
    }

    /// The query id (stable across restarts).
    pub fn id(&self) -> &str {
        self.checkpoint.query_id()
    }

    /// The id of the next batch to run.
    pub fn next_batch_id(&self) -> u64 {
        self.next_batch
    }

    /// The watermark the next batch runs with (epoch ms).
    pub fn watermark_ms(&self) -> i64 {
        self.watermark_ms
    }

    /// The rows the last batch emitted to the sink (before a replayed batch's skip), as one
    /// batch.
    pub fn last_output(&self) -> Result<Option<RecordBatch>> {
        Ok(match &self.last_output {
            Some(out) => Some(out.rows()?),
            None => None,
        })
    }

    /// How many times this run of the query passed failpoint `name`.
    pub fn failpoint_passes(&self, name: &str) -> u64 {
        self.fail.passes(name)
    }

    /// The schema of the rows the query writes.
    pub fn output_schema(&self) -> deltalake::arrow::datatypes::SchemaRef {
        self.pipeline.output_schema()
    }

    /// Keys in the query's state (0 for stateless queries).
    pub fn state_rows(&self) -> u64 {
        self.pipeline.state_rows()
    }

    /// What recovery did when the query started: torn checkpoint files set aside (their batch
    /// runs again), data files of uncommitted batches removed. Empty after a clean stop.
    pub fn recovery_notes(&self) -> &[String] {
        &self.recovery
    }

    /// The query name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The id of this run (new at every start).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The most recent progress records, oldest first (at most [`ProgressLog::KEEP`], across
    /// restarts: they are kept in `<checkpoint>/progress.jsonl`).
    pub fn recent_progress(&self) -> Vec<QueryProgress> {
        lock(&self.shared).progress.recent().cloned().collect()
    }

    /// The last progress record.
    pub fn last_progress(&self) -> Option<QueryProgress> {
        lock(&self.shared).progress.last().cloned()
    }

    /// What the query is doing now (Spark's `StreamingQueryStatus`).
    pub fn status(&self) -> QueryStatus {
        lock(&self.shared).status.clone()
    }

    fn set_status(&self, message: impl Into<String>, data: bool, active: bool) {
        lock(&self.shared).status = QueryStatus::new(message, data, active);
    }

    /// A handle that stops [`StreamingQuery::run`] after the batch in flight.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop_tx.clone())
    }

    /// Runs the query in the background with `trigger`; `on_batch` sees each batch's progress.
    pub fn spawn(
        self,
        trigger: Trigger,
        on_batch: impl FnMut(&QueryProgress) + Send + 'static,
    ) -> QueryHandle {
        QueryHandle::spawn(self, trigger, on_batch)
    }

    /// Runs one trigger: constructs and runs the next batch if there is new data (or re-runs a
    /// batch left uncommitted by a crash). `None` when there was nothing to do.
    pub async fn run_once(&mut self) -> Result<Option<QueryProgress>> {
        if let Some(cause) = &self.failed {
            return Err(EngineError::Failed {
                name: self.config.name.clone(),
                cause: cause.clone(),
            });
        }
        let number = {
            let mut s = lock(&self.shared);
            s.triggers += 1;
            s.triggers
        };
        match self.trigger().await {
            Ok(p) => {
                if p.is_none() {
                    let mut s = lock(&self.shared);
                    s.status = QueryStatus::new("Waiting for data to arrive", false, false);
                    s.last_idle_trigger = number;
                }
                Ok(p)
            }
            Err(e) => {
                self.set_status(format!("Terminated with exception: {e}"), false, false);
                self.failed = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Runs triggers until stopped: with [`Trigger::AvailableNow`] until nothing is left of
    /// what was there at start, with [`Trigger::ProcessingTime`] until [`StopHandle::stop`] (or,
    /// after [`StopHandle::drain`], until what is present is processed). `on_batch` sees each
    /// batch's progress as it completes. Returns the number of batches.
    pub async fn run(&mut self, trigger: Trigger, mut on_batch: impl FnMut(&QueryProgress)) -> Result<u64> {
        let mut stop = self.stop_tx.subscribe();
        let mut batches = 0;
        let drain_interval = match trigger {
            Trigger::AvailableNow => None,
            Trigger::ProcessingTime { interval_ms } => Some(interval_ms),
        };
        if let Some(interval_ms) = drain_interval {
            loop {
                if *stop.borrow() != StopRequest::Run {
                    break;
                }
                let started = self.config.clock.now_ms();
                let ran = match self.run_once().await? {
                    Some(p) => {
                        batches += 1;
                        on_batch(&p);
                        true
                    }
                    None => false,
                };
                // Interval 0: no wait after a batch (Spark's `processingTime="0 seconds"`), and
                // Spark's 10 ms polling delay when there was nothing to do.
                let next = match interval_ms {
                    0 if ran => started,
                    0 => started + 10,
                    i => started.div_euclid(i) * i + i,
                };
                let clock = self.config.clock.clone();
                self.set_status("Waiting for next trigger", false, false);
                tokio::select! {
                    _ = clock.wait_until(next) => {}
                    _ = stop.wait_for(|s| *s != StopRequest::Run) => {}
                }
            }
            if *stop.borrow() == StopRequest::Stop {
                self.settle().await?;
                self.set_status("Stopped", false, false);
                return Ok(batches);
            }
        }
        // Available-now, or draining: everything present now, no-data batches included.
        self.source.freeze_admission(true)?;
        let result = async {
            while *stop.borrow() != StopRequest::Stop {
                match self.run_once().await? {
                    Some(p) => {
                        batches += 1;
                        on_batch(&p);
                    }
                    None => break,
                }
            }
            Ok::<_, EngineError>(())
        }
        .await;
        // What was read ahead from the frozen list is not the next run's to use.
        self.read_ahead = None;
        self.source.freeze_admission(false)?;
        result?;
        self.settle().await?;
        self.set_status("Stopped", false, false);
        Ok(batches)
    }

    /// Waits for the work the sinks left in the background (a Delta checkpoint in flight), so
    /// a run that returns has finished everything it started.
    pub async fn settle(&mut self) -> Result<()> {
        self.sink.settle().await?;
        self.rejects.settle().await?;
        if let Some(late) = &mut self.late {
            late.settle().await?;
        }
        Ok(())
    }
}
