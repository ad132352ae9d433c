//! The Spark Connect service driven with its own messages (no Python): the seed's queries
//! started through it leave the same tables as the CLI, bad requests get Spark's error classes
//! without disturbing another session, a token is enforced, and a query killed with the server
//! restarts from its checkpoint exactly once.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use microbatch::connect::messages::*;
use microbatch::connect::proto::spark as pb;
use microbatch::connect::proto::{ErrorInfo, RpcStatus};
use pb::spark_connect_service_client::SparkConnectServiceClient;
use prost::Message;
use tonic::transport::Channel;

const SCHEMA: &str = "event_id string, timestamp timestamp, user_id int, event_type string, value double";

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_microbatch"))
}

fn generate(dir: &Path, batches: u32) {
    let o = bin()
        .current_dir(dir)
        .args([
            "generate",
            "--batches",
            &batches.to_string(),
            "--events-per-batch",
            "200",
        ])
        .args(["--seed", "5", "--users", "data"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A server in this process on a free port, serving `root`, until the sender is dropped.
async fn start_server(root: &Path, token: Option<&str>) -> (String, tokio::sync::oneshot::Sender<()>) {
    let opts = microbatch::connect::ServeOptions {
        host: "127.0.0.1".into(),
        port: 0,
        root: root.to_path_buf(),
        token: token.map(str::to_string),
        tls: None,
    };
    let listener = microbatch::connect::service::bind(&opts).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        microbatch::connect::service::run(listener, &opts, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (format!("http://{addr}"), tx)
}

async fn client(url: &str) -> SparkConnectServiceClient<Channel> {
    SparkConnectServiceClient::connect(url.to_string()).await.unwrap()
}

/// Every answer of an `ExecutePlan`, checking what the PySpark client requires of them.
async fn execute(
    c: &mut SparkConnectServiceClient<Channel>,
    session: &str,
    op: pb::plan::OpType,
) -> Result<Vec<pb::execute_plan_response::ResponseType>, tonic::Status> {
    let mut stream = c.execute_plan(request(session, op)).await?.into_inner();
    let mut out = Vec::new();
    while let Some(r) = stream.message().await? {
        assert_eq!(r.session_id, session, "every answer echoes the session id");
        assert!(!r.response_id.is_empty());
        out.push(r.response_type.expect("an answer has a type"));
    }
    assert!(
        matches!(
            out.last(),
            Some(pb::execute_plan_response::ResponseType::ResultComplete(_))
        ),
        "the stream ends with result_complete: {out:?}"
    );
    out.pop();
    Ok(out)
}

async fn start(
    c: &mut SparkConnectServiceClient<Channel>,
    session: &str,
    cmd: pb::Command,
) -> pb::StreamingQueryInstanceId {
    let r = execute(c, session, pb::plan::OpType::Command(cmd)).await.unwrap();
    match r.as_slice() {
        [pb::execute_plan_response::ResponseType::WriteStreamOperationStartResult(s)] => {
            s.query_id.clone().unwrap()
        }
        other => panic!("unexpected answer to start: {other:?}"),
    }
}

async fn query_command(
    c: &mut SparkConnectServiceClient<Channel>,
    session: &str,
    id: &pb::StreamingQueryInstanceId,
    command: pb::streaming_query_command::Command,
) -> Result<Option<pb::streaming_query_command_result::ResultType>, tonic::Status> {
    let cmd = pb::Command {
        command_type: Some(pb::command::CommandType::StreamingQueryCommand(
            pb::StreamingQueryCommand {
                query_id: Some(id.clone()),
                command: Some(command),
            },
        )),
    };
    let r = execute(c, session, pb::plan::OpType::Command(cmd)).await?;
    match r.into_iter().next() {
        Some(pb::execute_plan_response::ResponseType::StreamingQueryCommandResult(q)) => Ok(q.result_type),
        other => panic!("unexpected answer to a query command: {other:?}"),
    }
}

async fn await_termination(
    c: &mut SparkConnectServiceClient<Channel>,
    session: &str,
    id: &pb::StreamingQueryInstanceId,
) {
    let r = query_command(
        c,
        session,
        id,
        pb::streaming_query_command::Command::AwaitTermination(
            pb::streaming_query_command::AwaitTerminationCommand {
                timeout_ms: Some(120_000),
            },
        ),
    )
    .await
    .unwrap();
    assert!(
        matches!(r, Some(pb::streaming_query_command_result::ResultType::AwaitTermination(a)) if a.terminated),
        "{r:?}"
    );
}

async fn recent_progress(
    c: &mut SparkConnectServiceClient<Channel>,
    session: &str,
    id: &pb::StreamingQueryInstanceId,
) -> Vec<serde_json::Value> {
    match query_command(
        c,
        session,
        id,
        pb::streaming_query_command::Command::RecentProgress(true),
    )
    .await
    .unwrap()
    {
        Some(pb::streaming_query_command_result::ResultType::RecentProgress(p)) => p
            .recent_progress_json
            .iter()
            .map(|j| serde_json::from_str(j).unwrap())
            .collect(),
        other => panic!("{other:?}"),
    }
}

/// The error class the PySpark client would raise for `s`.
fn classes(s: &tonic::Status) -> String {
    let st = RpcStatus::decode(s.details()).expect("a google.rpc.Status detail");
    assert_eq!(st.message, s.message());
    let info = ErrorInfo::decode(st.details[0].value.as_slice()).unwrap();
    info.metadata["classes"].clone()
}

fn rows_of(t: &microbatch::table::TableData) -> Vec<String> {
    (0..t.rows.num_rows())
        .map(|r| {
            t.rows
                .columns()
                .iter()
                .map(|c| microbatch::table::cell(c, r))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            // With its mtime: the file source takes files in modification-time order.
            let dest = to.join(e.file_name());
            std::fs::copy(&p, &dest).unwrap();
            let mtime = filetime::FileTime::from_last_modification_time(&e.metadata().unwrap());
            filetime::set_file_mtime(&dest, mtime).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_through_the_service_leaves_the_tables_the_cli_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    generate(&served, 4);
    let cli_dir = dir.path().join("cli");
    copy_dir(&served.join("input"), &cli_dir.join("input"));
    copy_dir(&served.join("data"), &cli_dir.join("data"));
    let (url, _stop) = start_server(&served, None).await;
    let mut c = client(&url).await;
    let s = uuid::Uuid::new_v4().to_string();
    use pb::write_stream_operation_start::Trigger;
    let raw = start(
        &mut c,
        &s,
        start_command(
            read_stream("./input", SCHEMA, 1),
            "append",
            "./checkpoints/raw",
            "./data/events",
            Trigger::AvailableNow(true),
        ),
    )
    .await;
    let agg = start(
        &mut c,
        &s,
        start_command(
            windowed(read_stream("./input", SCHEMA, 1)),
            "update",
            "./checkpoints/agg",
            "./data/event_aggregates",
            Trigger::AvailableNow(true),
        ),
    )
    .await;
    await_termination(&mut c, &s, &raw).await;
    await_termination(&mut c, &s, &agg).await;
    let progress = recent_progress(&mut c, &s, &raw).await;
    assert_eq!(progress.len(), 4, "one batch per file");
    for field in [
        "id",
        "runId",
        "batchId",
        "numInputRows",
        "durationMs",
        "sources",
        "sink",
        "stateOperators",
    ] {
        assert!(
            progress[0].get(field).is_some(),
            "progress has Spark's `{field}`: {}",
            progress[0]
        );
    }
    assert_eq!(progress[0]["runId"], raw.run_id.as_str());
    for q in ["passthrough", "aggregations"] {
        let o = bin()
            .current_dir(&cli_dir)
            .args([
                "run",
                q,
                "--trigger",
                "available-now",
                "--max-files-per-trigger",
                "1",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    for table in ["events", "event_aggregates"] {
        let a = microbatch::table::read_table(&served.join("data").join(table))
            .await
            .unwrap();
        let b = microbatch::table::read_table(&cli_dir.join("data").join(table))
            .await
            .unwrap();
        assert!(a.rows.num_rows() > 0, "{table} is empty");
        assert_eq!(
            rows_of(&a),
            rows_of(&b),
            "{table}: the service and the CLI differ"
        );
    }
    // show() of a batch read: Spark's grid text in one row of one column.
    let show = rel(pb::relation::RelType::ShowString(Box::new(pb::ShowString {
        input: Some(Box::new(read_delta("./data/users"))),
        num_rows: 2,
        truncate: 20,
        vertical: false,
    })));
    let r = execute(&mut c, &s, pb::plan::OpType::Root(show)).await.unwrap();
    let pb::execute_plan_response::ResponseType::ArrowBatch(b) = &r[0] else {
        panic!("{r:?}")
    };
    let (_, batches) = microbatch::connect::types::read_ipc(&b.data).unwrap();
    let text = microbatch::table::cell(batches[0].column(0), 0);
    let users = microbatch::table::read_table(&served.join("data/users"))
        .await
        .unwrap();
    assert_eq!(text, microbatch::table::show(&users.rows, 2, true));
    assert!(text.ends_with("only showing top 2 rows\n"), "{text}");
}

#[derive(Clone, PartialEq, prost::Message)]
struct Junk {
    /// A varint where `AnalyzePlanRequest` has its `session_id` string.
    #[prost(int64, tag = "1")]
    a: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_spark_errors_and_another_sessions_query_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 3);
    let (url, _stop) = start_server(dir.path(), None).await;
    let mut c = client(&url).await;
    let a = uuid::Uuid::new_v4().to_string();
    let b = uuid::Uuid::new_v4().to_string();
    use pb::write_stream_operation_start::Trigger;
    let running = start(
        &mut c,
        &a,
        start_command(
            read_stream("./input", SCHEMA, 1),
            "append",
            "./checkpoints/raw",
            "./data/events",
            Trigger::ProcessingTimeInterval("0 seconds".into()),
        ),
    )
    .await;
    let analysis = "org.apache.spark.sql.AnalysisException";
    let select = |e: pb::Expression| {
        rel(pb::relation::RelType::Project(Box::new(pb::Project {
            input: Some(Box::new(read_delta("./data/users"))),
            expressions: vec![e],
        })))
    };
    let sample = rel(pb::relation::RelType::Sample(Default::default()));
    let cases: Vec<(&str, pb::Relation, &str, &str)> = vec![
        (
            "an unknown column",
            select(col("nope")),
            analysis,
            "`nope` cannot be resolved",
        ),
        (
            "an unknown function",
            select(call("frobnicate", vec![col("name")])),
            analysis,
            "`frobnicate`",
        ),
        (
            "a relation not served",
            sample,
            analysis,
            "relation 'sample' is not served",
        ),
        (
            "a path outside the root",
            read_delta("/etc"),
            analysis,
            "PATH_OUTSIDE_ROOT",
        ),
        (
            "a missing table",
            read_delta("./data/none"),
            analysis,
            "not a Delta table",
        ),
        (
            "a relation without a type",
            pb::Relation::default(),
            "IllegalArgumentException",
            "missing",
        ),
    ];
    for (what, r, class, text) in cases {
        let e = execute(&mut c, &b, pb::plan::OpType::Root(r)).await.unwrap_err();
        assert!(e.message().contains(text), "{what}: {}", e.message());
        assert!(classes(&e).contains(class), "{what}: {}", classes(&e));
    }
    // A streaming aggregation in append mode without a watermark, as Spark refuses it.
    let no_wm = rel(pb::relation::RelType::Aggregate(Box::new(pb::Aggregate {
        input: Some(Box::new(read_stream("./input", SCHEMA, 1))),
        group_type: pb::aggregate::GroupType::Groupby as i32,
        grouping_expressions: vec![col("event_type")],
        aggregate_expressions: vec![call("count", vec![col("value")])],
        pivot: None,
    })));
    let e = execute(
        &mut c,
        &b,
        pb::plan::OpType::Command(start_command(
            no_wm,
            "append",
            "./checkpoints/bad",
            "./data/bad",
            Trigger::AvailableNow(true),
        )),
    )
    .await
    .unwrap_err();
    assert!(
        e.message().contains("Append output mode not supported"),
        "{}",
        e.message()
    );
    assert!(classes(&e).contains(analysis));
    assert!(
        !dir.path().join("data/bad").exists(),
        "nothing is written for a refused plan"
    );
    // Garbage in a message: a decode error, not a crash.
    let mut raw = tonic::client::Grpc::new(
        Channel::from_shared(url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    raw.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<Junk, pb::AnalyzePlanResponse>::default();
    let path = http::uri::PathAndQuery::from_static("/spark.connect.SparkConnectService/AnalyzePlan");
    let e = raw
        .unary(tonic::Request::new(Junk { a: 7 }), path, codec)
        .await
        .unwrap_err();
    assert_ne!(e.code(), tonic::Code::Ok);
    // Garbage on the connection itself.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(url.trim_start_matches("http://"))
            .await
            .unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n\x00\x01\x02garbage")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    }
    // Session A's query went on through all of it, and B cannot see it.
    let mut status = None;
    for _ in 0..500 {
        let p = recent_progress(&mut c, &a, &running).await;
        if p.len() == 3 {
            status = Some(p);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(status.is_some(), "session A's query processed its 3 files");
    let e = query_command(
        &mut c,
        &b,
        &running,
        pb::streaming_query_command::Command::Status(true),
    )
    .await
    .unwrap_err();
    assert!(classes(&e).contains("StreamingQueryException"), "{}", e.message());
    let r = query_command(
        &mut c,
        &a,
        &running,
        pb::streaming_query_command::Command::Status(true),
    )
    .await
    .unwrap();
    assert!(
        matches!(&r, Some(pb::streaming_query_command_result::ResultType::Status(s)) if s.is_active),
        "{r:?}"
    );
    query_command(
        &mut c,
        &a,
        &running,
        pb::streaming_query_command::Command::Stop(true),
    )
    .await
    .unwrap();
    let r = query_command(
        &mut c,
        &a,
        &running,
        pb::streaming_query_command::Command::Status(true),
    )
    .await
    .unwrap();
    assert!(
        matches!(&r, Some(pb::streaming_query_command_result::ResultType::Status(s)) if !s.is_active),
        "{r:?}"
    );
}

fn config_request(session: &str) -> pb::ConfigRequest {
    pb::ConfigRequest {
        session_id: session.into(),
        user_context: None,
        operation: Some(pb::config_request::Operation {
            op_type: Some(pb::config_request::operation::OpType::Get(
                pb::config_request::Get {
                    keys: vec!["spark.sql.session.timeZone".into()],
                },
            )),
        }),
        client_type: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_required_when_the_server_has_one() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _stop) = start_server(dir.path(), Some("s3cret")).await;
    let mut c = client(&url).await;
    let e = c.config(config_request("s")).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    let mut wrong = tonic::Request::new(config_request("s"));
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer guess".parse().unwrap());
    assert_eq!(
        c.config(wrong).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    let mut right = tonic::Request::new(config_request("s"));
    right
        .metadata_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    let r = c.config(right).await.unwrap().into_inner();
    assert_eq!(r.session_id, "s");
    assert_eq!(r.pairs[0].value.as_deref(), Some("UTC"));
}

/// `microbatch serve` as a process on a free port; its address.
fn spawn_server(root: &Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = bin()
        .args(["serve", "--port", "0", "--root"])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stderr).read_line(&mut line).unwrap();
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (child, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_killed_with_the_server_restarts_from_its_checkpoint_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), 30);
    let (mut server, url) = spawn_server(dir.path());
    let mut c = client(&url).await;
    let s = uuid::Uuid::new_v4().to_string();
    use pb::write_stream_operation_start::Trigger;
    let cmd = |t| {
        start_command(
            read_stream("./input", SCHEMA, 1),
            "append",
            "./checkpoints/raw",
            "./data/events",
            t,
        )
    };
    let id = start(
        &mut c,
        &s,
        cmd(Trigger::ProcessingTimeInterval("0 seconds".into())),
    )
    .await;
    // Killed once a few batches have landed, while others are in flight.
    for _ in 0..1000 {
        if recent_progress(&mut c, &s, &id).await.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let (mut server, url) = spawn_server(dir.path());
    let mut c = client(&url).await;
    let s = uuid::Uuid::new_v4().to_string();
    let again = start(&mut c, &s, cmd(Trigger::AvailableNow(true))).await;
    assert_eq!(again.id, id.id, "the query id lives in the checkpoint");
    assert_ne!(again.run_id, id.run_id, "a new run");
    await_termination(&mut c, &s, &again).await;
    let after = recent_progress(&mut c, &s, &again).await;
    assert!(
        !after.is_empty() && after.iter().all(|p| p["runId"] == again.run_id.as_str()),
        "the kill came before the end (the restarted run had batches left to do), and \
         recentProgress is this run's, as Spark keeps it: {after:?}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
    let t = microbatch::table::read_table(&dir.path().join("data/events"))
        .await
        .unwrap();
    let rows = rows_of(&t);
    let unique: BTreeSet<&String> = rows.iter().collect();
    assert_eq!(rows.len(), 30 * 200, "every event once");
    assert_eq!(unique.len(), rows.len(), "no event twice");
}
