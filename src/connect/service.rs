//! The gRPC service: `spark.connect.SparkConnectService` on tonic. Sessions by the id the
//! client chose; every answer echoes it. Errors travel as Spark's do: a status with a
//! `google.rpc.ErrorInfo` naming the Java exception class.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use deltalake::arrow::array::RecordBatch;
use futures::Stream;
use tonic::{Request, Response, Status};

use super::proto::spark::{self as pb, spark_connect_service_server as server};
use super::session::{RunningQuery, Session, Termination};
use super::translate::{Rel, Translator};
use super::{ConnectError, Root, batch, types};

/// The version this server reports: the Spark release whose semantics it follows.
pub const SPARK_VERSION: &str = "3.5.9";

/// Rows per Arrow batch in an answer (each batch is one gRPC message).
const ROWS_PER_ANSWER_BATCH: usize = 8192;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The root folder.
    #[error("--root {}: {source}; it must be an existing folder", path.display())]
    Root {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another server on that port? choose one with --port)")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS certificate or key.
    #[error("TLS: {0}")]
    Tls(String),
    /// The transport failed.
    #[error("the server stopped: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (`127.0.0.1` unless told otherwise).
    pub host: String,
    /// Port (Spark Connect's 15002 by default; 0 picks a free one).
    pub port: u16,
    /// Paths clients name are confined to this folder.
    pub root: PathBuf,
    /// When set, calls must carry `authorization: Bearer <token>`.
    pub token: Option<String>,
    /// TLS certificate and key files (PEM); PySpark sends a token only over TLS.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// The service's state: the root and the sessions.
#[derive(Debug)]
pub struct Service {
    root: Root,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

type Answer = Pin<Box<dyn Stream<Item = Result<pb::ExecutePlanResponse, Status>> + Send + 'static>>;

impl Service {
    /// A service confining paths to `root`.
    pub fn new(root: Root) -> Self {
        Self {
            root,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn session(&self, id: &str) -> Result<Arc<Session>, Status> {
        if id.is_empty() {
            return Err(ConnectError::InvalidRequest("the request has no session_id".into()).to_status());
        }
        let mut s = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        Ok(s.entry(id.to_string())
            .or_insert_with(|| Arc::new(Session::new(id)))
            .clone())
    }

    fn translator(&self) -> Translator<'_> {
        Translator::new(&self.root)
    }

    fn relation(&self, plan: Option<&pb::Plan>) -> Result<Rel, ConnectError> {
        match plan.and_then(|p| p.op_type.as_ref()) {
            Some(pb::plan::OpType::Root(r)) => self.translator().relation(r),
            Some(pb::plan::OpType::Command(_)) => Err(ConnectError::InvalidRequest(
                "a command where a relation was expected".into(),
            )),
            None => Err(ConnectError::InvalidRequest("the request has no plan".into())),
        }
    }

    /// The answers to an `ExecutePlan`, `result_complete` last.
    pub async fn execute(&self, req: pb::ExecutePlanRequest) -> Result<Vec<pb::ExecutePlanResponse>, Status> {
        use pb::execute_plan_response::ResponseType as RT;
        let session = self.session(&req.session_id)?;
        let operation_id = req
            .operation_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let mut out: Vec<(RT, Option<pb::DataType>)> =
            match req.plan.as_ref().and_then(|p| p.op_type.as_ref()) {
                Some(pb::plan::OpType::Root(r)) => {
                    let rel = self.translator().relation(r).map_err(|e| e.to_status())?;
                    let rows = batch::evaluate(&rel, false).await.map_err(|e| e.to_status())?;
                    let schema = types::schema_to_proto(rows.schema_ref()).map_err(|e| e.to_status())?;
                    arrow_answers(&rows)
                        .map_err(|e| e.to_status())?
                        .into_iter()
                        .enumerate()
                        .map(|(i, b)| (RT::ArrowBatch(b), (i == 0).then(|| schema.clone())))
                        .collect()
                }
                Some(pb::plan::OpType::Command(c)) => self
                    .command(&session, c)
                    .await
                    .map_err(|e| e.to_status())?
                    .into_iter()
                    .map(|r| (r, None))
                    .collect(),
                None => {
                    return Err(ConnectError::InvalidRequest("the request has no plan".into()).to_status());
                }
            };
        out.push((
            RT::ResultComplete(pb::execute_plan_response::ResultComplete {}),
            None,
        ));
        Ok(out
            .into_iter()
            .map(|(r, schema)| pb::ExecutePlanResponse {
                session_id: req.session_id.clone(),
                operation_id: operation_id.clone(),
                response_id: uuid::Uuid::new_v4().to_string(),
                response_type: Some(r),
                metrics: None,
                observed_metrics: None,
                schema,
            })
            .collect())
    }

    async fn command(
        &self,
        session: &Session,
        c: &pb::Command,
    ) -> Result<Vec<pb::execute_plan_response::ResponseType>, ConnectError> {
        use pb::command::CommandType as C;
        use pb::execute_plan_response::ResponseType as RT;
        let cmd = c
            .command_type
            .as_ref()
            .ok_or_else(|| ConnectError::InvalidRequest("the command has no type".into()))?;
        match cmd {
            C::WriteOperation(w) => {
                self.write(w).await?;
                Ok(Vec::new())
            }
            C::WriteStreamOperationStart(w) => {
                let q = session.start_query(&self.root, w).await?;
                Ok(vec![RT::WriteStreamOperationStartResult(
                    pb::WriteStreamOperationStartResult {
                        query_id: Some(instance_id(&q)),
                        name: q.name.clone().unwrap_or_default(),
                    },
                )])
            }
            C::StreamingQueryCommand(q) => Ok(vec![RT::StreamingQueryCommandResult(
                streaming_query_command(session, q).await?,
            )]),
            C::StreamingQueryManagerCommand(m) => Ok(vec![RT::StreamingQueryManagerCommandResult(
                manager_command(session, m).await?,
            )]),
            other => {
                let name = match other {
                    C::RegisterFunction(_) => "register_function (Python UDFs)",
                    C::CreateDataframeView(_) => "create_dataframe_view (createOrReplaceTempView)",
                    C::WriteOperationV2(_) => "write_operation_v2 (writeTo)",
                    C::SqlCommand(_) => "sql_command (spark.sql)",
                    C::GetResourcesCommand(_) => "get_resources_command",
                    C::RegisterTableFunction(_) => "register_table_function",
                    _ => "extension",
                };
                Err(ConnectError::Unserved {
                    what: format!("command '{name}'"),
                    hint: "the README's \"From PySpark\" section lists what is served".into(),
                })
            }
        }
    }

    /// `df.write.format("delta").mode(m).save(path)`.
    async fn write(&self, w: &pb::WriteOperation) -> Result<(), ConnectError> {
        use pb::write_operation::{SaveMode, SaveType};
        let format = w.source.as_deref().unwrap_or("parquet");
        if !format.eq_ignore_ascii_case("delta") {
            return Err(ConnectError::Unserved {
                what: format!("writing the format '{format}'"),
                hint: "tables are written as Delta: df.write.format(\"delta\").save(path)".into(),
            });
        }
        if !w.partitioning_columns.is_empty() || w.bucket_by.is_some() || !w.sort_column_names.is_empty() {
            return Err(ConnectError::Unserved {
                what: "partitionBy, bucketBy and sortBy".into(),
                hint: "write the table unpartitioned".into(),
            });
        }
        let path = match &w.save_type {
            Some(SaveType::Path(p)) => self.root.confine(p)?,
            Some(SaveType::Table(t)) => {
                return Err(ConnectError::Unserved {
                    what: format!("saving as the table `{}`", t.table_name),
                    hint: "this server has no catalog; save(path) writes a Delta table at a path".into(),
                });
            }
            None => match w.options.get("path") {
                Some(p) => self.root.confine(p)?,
                None => {
                    return Err(ConnectError::Analysis(
                        "'path' is not specified: save(path) names the table".into(),
                    ));
                }
            },
        };
        let rel = self.translator().relation(
            w.input
                .as_ref()
                .ok_or_else(|| ConnectError::InvalidRequest("write has no DataFrame".into()))?,
        )?;
        if rel.is_streaming() {
            return Err(ConnectError::Analysis(
                "'write' can not be called on streaming Dataset/DataFrame; use writeStream".into(),
            ));
        }
        let rows = batch::evaluate(&rel, false).await?;
        let exists = path.join("_delta_log").is_dir();
        let now = chrono::Utc::now().timestamp_millis();
        let engine = |e: crate::generator::GeneratorError| ConnectError::Engine(e.to_string());
        match SaveMode::try_from(w.mode).unwrap_or(SaveMode::Unspecified) {
            SaveMode::Ignore if exists => Ok(()),
            SaveMode::ErrorIfExists | SaveMode::Unspecified if exists => {
                Err(ConnectError::Analysis(format!(
                    "[DELTA_PATH_EXISTS] Cannot write to already existent path {} without setting OVERWRITE = 'true'.",
                    path.display()
                )))
            }
            SaveMode::Append if exists => crate::generator::append_static_table(&path, &rows, now)
                .await
                .map(|_| ())
                .map_err(engine),
            _ => crate::generator::write_static_table(&path, &rows, now)
                .await
                .map(|_| ())
                .map_err(engine),
        }
    }

    /// An `AnalyzePlan` answer.
    pub async fn analyze(
        &self,
        req: pb::AnalyzePlanRequest,
    ) -> Result<pb::AnalyzePlanResponse, ConnectError> {
        use pb::analyze_plan_request::Analyze as A;
        use pb::analyze_plan_response as r;
        use pb::analyze_plan_response::Result as R;
        let what = req
            .analyze
            .as_ref()
            .ok_or_else(|| ConnectError::InvalidRequest("the analyze request has no question".into()))?;
        let result = match what {
            A::Schema(s) => {
                let schema = self.schema(s.plan.as_ref()).await?;
                R::Schema(r::Schema {
                    schema: Some(types::schema_to_proto(&schema)?),
                })
            }
            A::TreeString(t) => {
                let schema = self.schema(t.plan.as_ref()).await?;
                R::TreeString(r::TreeString {
                    tree_string: batch::tree_string(&schema, t.level.and_then(|l| usize::try_from(l).ok())),
                })
            }
            A::IsStreaming(s) => R::IsStreaming(r::IsStreaming {
                is_streaming: self.relation(s.plan.as_ref())?.is_streaming(),
            }),
            A::IsLocal(s) => R::IsLocal(r::IsLocal {
                is_local: matches!(self.relation(s.plan.as_ref())?, Rel::Local(_)),
            }),
            A::Explain(e) => R::Explain(r::Explain {
                explain_string: explain(&self.relation(e.plan.as_ref())?),
            }),
            A::InputFiles(_) => R::InputFiles(r::InputFiles { files: Vec::new() }),
            A::SparkVersion(_) => R::SparkVersion(r::SparkVersion {
                version: SPARK_VERSION.into(),
            }),
            A::DdlParse(d) => {
                let t = match crate::schema::parse_data_type(&d.ddl_string) {
                    Ok(t) => types::to_proto(&t)?,
                    Err(_) => {
                        let schema = crate::schema::parse_schema(&d.ddl_string)
                            .map_err(|e| ConnectError::Analysis(e.to_string()))?;
                        types::schema_to_proto(&schema)?
                    }
                };
                R::DdlParse(r::DdlParse { parsed: Some(t) })
            }
            A::SameSemantics(s) => {
                let a = format!("{:?}", self.relation(s.target_plan.as_ref())?);
                let b = format!("{:?}", self.relation(s.other_plan.as_ref())?);
                R::SameSemantics(r::SameSemantics { result: a == b })
            }
            A::SemanticHash(s) => {
                let text = format!("{:?}", self.relation(s.plan.as_ref())?);
                R::SemanticHash(r::SemanticHash {
                    result: crc32fast::hash(text.as_bytes()) as i32,
                })
            }
            A::Persist(_) => R::Persist(r::Persist {}),
            A::Unpersist(_) => R::Unpersist(r::Unpersist {}),
            A::GetStorageLevel(_) => R::GetStorageLevel(r::GetStorageLevel {
                storage_level: Some(pb::StorageLevel {
                    use_disk: false,
                    use_memory: true,
                    use_off_heap: false,
                    deserialized: true,
                    replication: 1,
                }),
            }),
        };
        Ok(pb::AnalyzePlanResponse {
            session_id: req.session_id,
            result: Some(result),
        })
    }

    /// The schema of a relation: a stream's output schema, or a batch relation's.
    async fn schema(
        &self,
        plan: Option<&pb::Plan>,
    ) -> Result<deltalake::arrow::datatypes::SchemaRef, ConnectError> {
        let rel = self.relation(plan)?;
        match &rel {
            Rel::Plan {
                plan,
                stream: Some(_),
            } => {
                // A stream's schema does not depend on the output mode; update mode accepts
                // every plan an aggregation allows.
                let analyzed = crate::plan::analyze(plan, crate::query::OutputMode::Update)
                    .await
                    .map_err(|e| ConnectError::Analysis(e.to_string()))?;
                Ok(analyzed.output_schema)
            }
            _ => Ok(batch::evaluate(&rel, true).await?.schema()),
        }
    }

    /// A `Config` answer.
    pub fn config(&self, req: pb::ConfigRequest) -> Result<pb::ConfigResponse, ConnectError> {
        use pb::config_request::operation::OpType as O;
        let session = self
            .session(&req.session_id)
            .map_err(|s| ConnectError::InvalidRequest(s.message().into()))?;
        let op = req
            .operation
            .and_then(|o| o.op_type)
            .ok_or_else(|| ConnectError::InvalidRequest("the config request has no operation".into()))?;
        let kv = |k: String, v: Option<String>| pb::KeyValue { key: k, value: v };
        let mut warnings = Vec::new();
        let pairs = match op {
            O::Set(s) => {
                session.set_conf(s.pairs.into_iter().map(|p| (p.key, p.value.unwrap_or_default())));
                Vec::new()
            }
            O::Get(g) => {
                let mut out = Vec::new();
                for k in g.keys {
                    match session.conf(&k) {
                        Some(v) => out.push(kv(k, Some(v))),
                        None => {
                            return Err(ConnectError::Analysis(format!(
                                "[SQL_CONF_NOT_FOUND] The SQL config \"{k}\" cannot be found. Please verify that the config exists."
                            )));
                        }
                    }
                }
                out
            }
            O::GetWithDefault(g) => g
                .pairs
                .into_iter()
                .map(|p| {
                    let v = session.conf(&p.key).or(p.value);
                    kv(p.key, v)
                })
                .collect(),
            O::GetOption(g) => g
                .keys
                .into_iter()
                .map(|k| {
                    let v = session.conf(&k);
                    kv(k, v)
                })
                .collect(),
            O::GetAll(g) => session
                .all_conf(g.prefix.as_deref())
                .into_iter()
                .map(|(k, v)| kv(k, Some(v)))
                .collect(),
            O::Unset(u) => {
                session.unset_conf(&u.keys);
                Vec::new()
            }
            O::IsModifiable(m) => {
                warnings.push("every setting of a microbatch session is modifiable".to_string());
                m.keys.into_iter().map(|k| kv(k, Some("true".into()))).collect()
            }
        };
        Ok(pb::ConfigResponse {
            session_id: req.session_id,
            pairs,
            warnings,
        })
    }
}

/// `explain()`: the engine's plan.
fn explain(rel: &Rel) -> String {
    let body = match rel {
        Rel::Plan { plan, .. } | Rel::Over { plan, .. } => plan.tree_string(),
        other => format!("{other:?}\n"),
    };
    format!("== Physical Plan ==\n{body}")
}

/// `rows` as Arrow IPC answers of at most [`ROWS_PER_ANSWER_BATCH`] rows; one (empty) at least.
fn arrow_answers(rows: &RecordBatch) -> Result<Vec<pb::execute_plan_response::ArrowBatch>, ConnectError> {
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let n = ROWS_PER_ANSWER_BATCH.min(rows.num_rows() - start);
        let part = rows.slice(start, n);
        out.push(pb::execute_plan_response::ArrowBatch {
            row_count: n as i64,
            data: types::ipc_bytes(&part)?,
        });
        start += n;
        if start >= rows.num_rows() {
            return Ok(out);
        }
    }
}

fn instance_id(q: &RunningQuery) -> pb::StreamingQueryInstanceId {
    pb::StreamingQueryInstanceId {
        id: q.id.clone(),
        run_id: q.run_id.clone(),
    }
}

/// The progress records of the query's current run.
fn this_run(q: &RunningQuery) -> Vec<crate::progress::QueryProgress> {
    let mut all = q.view().recent_progress();
    all.retain(|p| p.run_id == q.run_id);
    all
}

/// A progress record as the client parses it. Without a `queryName` Spark's record has
/// `"name": null`; the engine names such a query after its checkpoint folder (for the log and
/// the UI), so the name is taken out here.
fn progress_json(q: &RunningQuery, p: &crate::progress::QueryProgress) -> String {
    let mut v = match serde_json::to_value(p) {
        Ok(v) => v,
        // A record is plain strings and numbers: it always serializes.
        Err(_) => return "{}".into(),
    };
    if let (None, Some(o)) = (&q.name, v.as_object_mut()) {
        o.insert("name".into(), serde_json::Value::Null);
    }
    v.to_string()
}

async fn streaming_query_command(
    session: &Session,
    c: &pb::StreamingQueryCommand,
) -> Result<pb::StreamingQueryCommandResult, ConnectError> {
    use pb::streaming_query_command::Command as C;
    use pb::streaming_query_command_result as r;
    use pb::streaming_query_command_result::ResultType as R;
    let id = c
        .query_id
        .as_ref()
        .ok_or_else(|| ConnectError::InvalidRequest("the query command names no query".into()))?;
    let q = session.query(&id.id)?;
    let cmd = c
        .command
        .as_ref()
        .ok_or_else(|| ConnectError::InvalidRequest("the query command has no command".into()))?;
    let result = match cmd {
        C::Status(_) => {
            let s = q.view().status();
            Some(R::Status(r::StatusResult {
                status_message: s.message,
                is_data_available: s.is_data_available,
                is_trigger_active: s.is_trigger_active,
                is_active: q.termination().is_none(),
            }))
        }
        // Spark keeps a run's progress in the query object: a restarted query reports its own
        // run's batches only (the checkpoint's progress.jsonl keeps the earlier ones).
        C::LastProgress(_) => Some(R::RecentProgress(r::RecentProgressResult {
            recent_progress_json: this_run(&q)
                .last()
                .map(|p| progress_json(&q, p))
                .into_iter()
                .collect(),
        })),
        C::RecentProgress(_) => Some(R::RecentProgress(r::RecentProgressResult {
            recent_progress_json: this_run(&q).iter().map(|p| progress_json(&q, p)).collect(),
        })),
        C::Stop(_) => {
            q.stop().await;
            None
        }
        C::ProcessAllAvailable(_) => {
            q.process_all_available().await?;
            None
        }
        C::Explain(_) => Some(R::Explain(r::ExplainResult {
            result: format!("== Physical Plan ==\nmicrobatch streaming query {}\n", q.id),
        })),
        C::Exception(_) => Some(R::Exception(match q.termination() {
            Some(Termination::Failed(m)) => r::ExceptionResult {
                exception_message: Some(m),
                error_class: None,
                stack_trace: None,
            },
            _ => r::ExceptionResult::default(),
        })),
        C::AwaitTermination(a) => {
            let timeout = a
                .timeout_ms
                .map(|ms| std::time::Duration::from_millis(ms.max(0) as u64));
            let terminated = q.await_termination(timeout).await;
            if let Some(Termination::Failed(m)) = q.termination() {
                return Err(ConnectError::StreamingQuery(m));
            }
            Some(R::AwaitTermination(r::AwaitTerminationResult { terminated }))
        }
    };
    Ok(pb::StreamingQueryCommandResult {
        query_id: Some(instance_id(&q)),
        result_type: result,
    })
}

async fn manager_command(
    session: &Session,
    c: &pb::StreamingQueryManagerCommand,
) -> Result<pb::StreamingQueryManagerCommandResult, ConnectError> {
    use pb::streaming_query_manager_command::Command as C;
    use pb::streaming_query_manager_command_result as r;
    use pb::streaming_query_manager_command_result::ResultType as R;
    let instance = |q: &RunningQuery| r::StreamingQueryInstance {
        id: Some(instance_id(q)),
        name: q.name.clone(),
    };
    let cmd = c
        .command
        .as_ref()
        .ok_or_else(|| ConnectError::InvalidRequest("the manager command has no command".into()))?;
    let result = match cmd {
        C::Active(_) => R::Active(r::ActiveResult {
            active_queries: session.active().iter().map(|q| instance(q)).collect(),
        }),
        C::GetQuery(id) => match session.active().into_iter().find(|q| &q.id == id) {
            Some(q) => R::Query(instance(&q)),
            None => {
                return Ok(pb::StreamingQueryManagerCommandResult { result_type: None });
            }
        },
        C::AwaitAnyTermination(a) => {
            let deadline = a
                .timeout_ms
                .map(|ms| tokio::time::Instant::now() + std::time::Duration::from_millis(ms.max(0) as u64));
            let terminated = loop {
                let all = session.all_queries();
                if let Some(q) = all.iter().find(|q| q.termination().is_some()) {
                    if let Some(Termination::Failed(m)) = q.termination() {
                        return Err(ConnectError::StreamingQuery(m));
                    }
                    break true;
                }
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    break false;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            };
            R::AwaitAnyTermination(r::AwaitAnyTerminationResult { terminated })
        }
        C::ResetTerminated(_) => R::ResetTerminated(true),
        C::AddListener(_) | C::RemoveListener(_) | C::ListListeners(_) => {
            return Err(ConnectError::Unserved {
                what: "streaming query listeners".into(),
                hint: "poll query.lastProgress, or read <checkpoint>/progress.jsonl".into(),
            });
        }
    };
    Ok(pb::StreamingQueryManagerCommandResult {
        result_type: Some(result),
    })
}

/// The tonic service over a shared [`Service`].
#[derive(Debug, Clone)]
pub struct Grpc(pub Arc<Service>);

#[tonic::async_trait]
impl server::SparkConnectService for Grpc {
    type ExecutePlanStream = Answer;
    type ReattachExecuteStream = Answer;

    async fn execute_plan(
        &self,
        request: Request<pb::ExecutePlanRequest>,
    ) -> Result<Response<Self::ExecutePlanStream>, Status> {
        let answers = self.0.execute(request.into_inner()).await?;
        Ok(Response::new(Box::pin(futures::stream::iter(
            answers.into_iter().map(Ok),
        ))))
    }

    async fn analyze_plan(
        &self,
        request: Request<pb::AnalyzePlanRequest>,
    ) -> Result<Response<pb::AnalyzePlanResponse>, Status> {
        let req = request.into_inner();
        self.0.session(&req.session_id)?;
        self.0
            .analyze(req)
            .await
            .map(Response::new)
            .map_err(|e| e.to_status())
    }

    async fn config(
        &self,
        request: Request<pb::ConfigRequest>,
    ) -> Result<Response<pb::ConfigResponse>, Status> {
        self.0
            .config(request.into_inner())
            .map(Response::new)
            .map_err(|e| e.to_status())
    }

    async fn add_artifacts(
        &self,
        _request: Request<tonic::Streaming<pb::AddArtifactsRequest>>,
    ) -> Result<Response<pb::AddArtifactsResponse>, Status> {
        Err(ConnectError::Unserved {
            what: "artifacts (Python UDFs, jars, files)".into(),
            hint: "use built-in functions".into(),
        }
        .to_status())
    }

    async fn artifact_status(
        &self,
        request: Request<pb::ArtifactStatusesRequest>,
    ) -> Result<Response<pb::ArtifactStatusesResponse>, Status> {
        let req = request.into_inner();
        Ok(Response::new(pb::ArtifactStatusesResponse {
            statuses: req
                .names
                .into_iter()
                .map(|n| {
                    (
                        n,
                        pb::artifact_statuses_response::ArtifactStatus { exists: false },
                    )
                })
                .collect(),
        }))
    }

    async fn interrupt(
        &self,
        request: Request<pb::InterruptRequest>,
    ) -> Result<Response<pb::InterruptResponse>, Status> {
        // Operations answer in full before the call returns: none is left to interrupt.
        let req = request.into_inner();
        Ok(Response::new(pb::InterruptResponse {
            session_id: req.session_id,
            interrupted_ids: Vec::new(),
        }))
    }

    async fn reattach_execute(
        &self,
        request: Request<pb::ReattachExecuteRequest>,
    ) -> Result<Response<Self::ReattachExecuteStream>, Status> {
        let req = request.into_inner();
        Err(ConnectError::InvalidRequest(format!(
            "[INVALID_HANDLE.OPERATION_NOT_FOUND] operation {} is complete: its whole answer was sent, ending with result_complete",
            req.operation_id
        ))
        .to_status())
    }

    async fn release_execute(
        &self,
        request: Request<pb::ReleaseExecuteRequest>,
    ) -> Result<Response<pb::ReleaseExecuteResponse>, Status> {
        let req = request.into_inner();
        Ok(Response::new(pb::ReleaseExecuteResponse {
            session_id: req.session_id,
            operation_id: Some(req.operation_id),
        }))
    }
}

/// A bearer-token check on every call.
fn check_token(token: Option<String>) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |req: Request<()>| {
        let Some(t) = &token else { return Ok(req) };
        let given = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given.is_some_and(|g| constant_time_eq(g.as_bytes(), t.as_bytes())) {
            Ok(req)
        } else {
            Err(Status::unauthenticated(
                "this server needs a bearer token: connect with sc://host:port/;token=<token>",
            ))
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Binds the address; the server is served by [`run`].
pub async fn bind(opts: &ServeOptions) -> Result<tokio::net::TcpListener, ServeError> {
    let addr = format!("{}:{}", opts.host, opts.port);
    tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves on `listener` until `shutdown` resolves; running queries are stopped after the
/// batch in flight before it returns.
pub async fn run(
    listener: tokio::net::TcpListener,
    opts: &ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let root = Root::new(&opts.root).map_err(|source| ServeError::Root {
        path: opts.root.clone(),
        source,
    })?;
    let service = Arc::new(Service::new(root));
    let grpc = tonic::service::interceptor::InterceptedService::new(
        // createDataFrame sends its rows in one message.
        server::SparkConnectServiceServer::new(Grpc(service.clone())).max_decoding_message_size(256 << 20),
        check_token(opts.token.clone()),
    );
    let mut builder = tonic::transport::Server::builder();
    if let Some((cert, key)) = &opts.tls {
        // Two crypto providers are compiled into rustls (deltalake's and tonic's); name one.
        // An error means one is installed already, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let read =
            |p: &PathBuf| std::fs::read(p).map_err(|e| ServeError::Tls(format!("{}: {e}", p.display())));
        let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| ServeError::Tls(e.to_string()))?;
    }
    // No Nagle: a streamed answer goes out as headers, messages and trailers in separate
    // writes, and with Nagle each later one waits for the client's delayed ACK (40 ms here).
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    builder
        .add_service(grpc)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    let sessions: Vec<Arc<Session>> = service
        .sessions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    for s in sessions {
        s.stop_all().await;
    }
    Ok(())
}

/// Binds and serves until `shutdown`; `on_ready` is told the address once it listens.
pub async fn serve(
    opts: ServeOptions,
    on_ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let listener = bind(&opts).await?;
    if let Ok(a) = listener.local_addr() {
        on_ready(a);
    }
    run(listener, &opts, shutdown).await
}
