//! `cargo bench`: throughput of the seed queries over maxFilesPerTrigger, the state store's
//! commit and restart cost over state size, per-batch latency early and late in a run, and the
//! single-process parse-and-write limit to compare them with, and the cost of the Spark Connect
//! server (a round trip; a query started through it against the same query in-process).
//!
//! Under `cargo test --benches` (no `--bench` flag) each bench runs once on smaller inputs.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use microbatch::clock::{ManualClock, SharedClock};
use microbatch::execution::{QueryConfig, StreamingQuery, Trigger};
use microbatch::generator::{GeneratorConfig, users_batch, write_batches, write_users_table};
use microbatch::operators::aggregate::{Acc, AggValue, GroupKey};
use microbatch::query::SeedQuery;
use microbatch::state::StateStore;

const T0: i64 = 1_795_514_400_000_000;

fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Whether a full run was asked for and its filter (criterion's, a `|`-separated list of
/// names here matched as substrings) selects `group`: the printed measurements outside
/// criterion (flatness, the limit ratio) run only then.
fn selected(group: &str) -> bool {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    full()
        && (filters.is_empty()
            || filters
                .iter()
                .flat_map(|f| f.split('|'))
                .any(|f| group.contains(f.split('/').next().unwrap_or(f))))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A folder of `files` generated files of `events` events each, and the users table.
fn input(files: u64, events: usize) -> tempfile::TempDir {
    input_in(files, events, tempfile::tempdir().expect("tempdir"))
}

/// A folder in memory (`/dev/shm`) where the machine has one, else a temporary folder: for
/// benches that measure something other than the disk, whose fsync times here vary by tens of
/// milliseconds from run to run.
fn memory_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("tempdir")
}

fn input_in(files: u64, events: usize, dir: tempfile::TempDir) -> tempfile::TempDir {
    let cfg = GeneratorConfig {
        seed: 1,
        start: T0,
        step: 60_000_000,
        events_per_batch: events,
        late_fraction: 0.1,
        num_users: 1000,
    };
    write_batches(
        &cfg,
        &dir.path().join("input"),
        0,
        files,
        &ManualClock::new(T0 / 1000),
    )
    .expect("generate");
    rt().block_on(write_users_table(
        &dir.path().join("users/users"),
        &users_batch(1, 1000, 20),
        0,
    ))
    .expect("users");
    dir
}

fn config(root: &Path, input: &Path, q: SeedQuery, max_files: usize) -> QueryConfig {
    QueryConfig {
        name: q.checkpoint_name().into(),
        input: input.to_path_buf(),
        output: root.join("data").join(q.table_name()),
        checkpoint: root.join("checkpoints").join(q.checkpoint_name()),
        max_files_per_trigger: NonZeroUsize::new(max_files).expect("positive"),
        query: q.query(&input.parent().expect("input has a parent").join("users")),
        clock: Arc::new(ManualClock::new(T0 / 1000)) as SharedClock,
    }
}

fn dir_bytes(p: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        let m = e.metadata().ok();
        n += match m {
            Some(m) if m.is_dir() => dir_bytes(&e.path()),
            Some(m) => m.len(),
            None => 0,
        };
    }
    n
}

/// The input of the Spark reference figures: 100 files × 10,000 events (115 MB).
/// (`cargo test --benches`: 4 × 100.)
fn reference_input() -> (u64, usize) {
    if full() { (100, 10_000) } else { (4, 100) }
}

/// Whole query runs over the same files — start, every batch, stop — as Spark's figures were
/// measured: events per second per seed query and maxFilesPerTrigger.
fn throughput(c: &mut Criterion) {
    let (files, events) = reference_input();
    let data = input(files, events);
    let rt = rt();
    let mut g = c.benchmark_group("throughput");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(files * events as u64));
    for q in SeedQuery::ALL {
        for mf in [1usize, 10, 100] {
            g.bench_with_input(
                BenchmarkId::new(q.cli_name(), format!("max_files_{mf}")),
                &mf,
                |b, &mf| {
                    b.iter_batched(
                        || tempfile::tempdir().expect("tempdir"),
                        |out| {
                            let cfg = config(out.path(), &data.path().join("input"), q, mf);
                            let batches = rt.block_on(async {
                                let mut query = StreamingQuery::start(cfg).await.expect("start");
                                query.run(Trigger::AvailableNow, |_| {}).await.expect("run")
                            });
                            black_box(batches);
                            out
                        },
                        BatchSize::PerIteration,
                    );
                },
            );
            // What a run leaves in its checkpoint, per batch (printed: criterion measures time).
            let out = tempfile::tempdir().expect("tempdir");
            let cfg = config(out.path(), &data.path().join("input"), q, mf);
            let batches = rt.block_on(async {
                let mut query = StreamingQuery::start(cfg).await.expect("start");
                query.run(Trigger::AvailableNow, |_| {}).await.expect("run")
            });
            let cp = dir_bytes(&out.path().join("checkpoints"));
            eprintln!(
                "checkpoint {}/max_files_{mf}: {batches} batches, {cp} bytes, {} bytes per batch",
                q.cli_name(),
                cp / batches.max(1)
            );
        }
    }
    g.finish();
}

fn key(i: u64) -> GroupKey {
    GroupKey {
        window: Some((
            (i / 1000) as i64 * 300_000_000,
            (i / 1000) as i64 * 300_000_000 + 300_000_000,
        )),
        values: ((i % 1000) as i64).to_be_bytes().as_slice().into(),
    }
}

fn value(i: u64) -> AggValue {
    AggValue(smallvec::smallvec![Acc::Count(i as i64), Acc::Avg(i as f64, 1)])
}

/// The state store: committing a batch that changed 1,000 or 10,000 keys, and rebuilding it on
/// restart, over the number of live keys.
fn state(c: &mut Criterion) {
    let sizes: &[u64] = if full() {
        &[1_000, 100_000, 1_000_000]
    } else {
        &[1_000]
    };
    let mut g = c.benchmark_group("state");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(3));
    for &n in sizes {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store: StateStore<GroupKey, AggValue> = StateStore::open(dir.path(), 0, 10).expect("open");
        for i in 0..n {
            store.put(key(i), value(i));
        }
        store.commit().expect("commit");
        eprintln!(
            "state {n} keys: {} MB in memory (estimate)",
            store.memory_bytes() / 1_000_000
        );
        let mut round = 0;
        for changed in [1_000u64, 10_000].into_iter().filter(|&c| c <= n) {
            g.throughput(Throughput::Elements(changed));
            g.bench_with_input(
                BenchmarkId::new(format!("commit_{changed}_changed"), n),
                &n,
                |b, &n| {
                    b.iter(|| {
                        round += 1;
                        for i in 0..changed {
                            store.put(key((i * 7919 + round) % n), value(round));
                        }
                        black_box(store.commit().expect("commit"))
                    })
                },
            );
        }
        let version = store.version();
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::new("restart", n), &n, |b, _| {
            b.iter(|| {
                let s: StateStore<GroupKey, AggValue> =
                    StateStore::open(dir.path(), version, 10).expect("open");
                black_box(s.len())
            })
        });
    }
    g.finish();
}

/// Per-batch latency of a pass-through batch of one 100-event file (nearly all of it per-batch
/// overhead) early in a run and after 5,000 batches (what grows with history shows here), and
/// the start of a query on that history.
fn latency(c: &mut Criterion) {
    let late = if full() { 5_000 } else { 20 };
    let files = late + 40;
    // In memory: what grows with history shows, not the disk's fsync times (which vary by more).
    let data = input_in(files, 100, memory_dir());
    let rt = rt();
    let out = memory_dir();
    let cfg = config(out.path(), &data.path().join("input"), SeedQuery::Passthrough, 1);
    if selected("latency") {
        flatness(&rt, 2_000, &data);
    }
    let mut query = rt.block_on(StreamingQuery::start(cfg)).expect("start");
    let mut g = c.benchmark_group("latency");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(200));
    for at in [10u64, late] {
        while query.next_batch_id() < at {
            rt.block_on(query.run_once()).expect("batch");
        }
        g.bench_function(BenchmarkId::new("passthrough_batch_at", at), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let p = rt.block_on(query.run_once()).expect("batch");
                    total += t.elapsed();
                    black_box(p);
                }
                total
            })
        });
    }
    // Start-up on that history: open the checkpoint (its logs, state, lock) and the Delta
    // table of as many versions, as a restart does.
    let batches = query.next_batch_id();
    drop(query);
    g.bench_function(BenchmarkId::new("start_after_batches", batches), |b| {
        b.iter(|| {
            let cfg = config(out.path(), &data.path().join("input"), SeedQuery::Passthrough, 1);
            black_box(rt.block_on(StreamingQuery::start(cfg)).expect("start"))
        })
    });
    g.finish();
}

/// Whether the per-batch cost stays flat over a whole run (background Delta checkpoints
/// included), which two short samples cannot say: one straight run of `batches` one-file
/// batches, each timed; printed, the mean of the first 100 against the last 100.
fn flatness(rt: &tokio::runtime::Runtime, batches: u64, data: &tempfile::TempDir) {
    let out = memory_dir();
    let cfg = config(out.path(), &data.path().join("input"), SeedQuery::Passthrough, 1);
    let mut query = rt.block_on(StreamingQuery::start(cfg)).expect("start");
    let mut times = Vec::new();
    while query.next_batch_id() < batches {
        let t = Instant::now();
        rt.block_on(query.run_once()).expect("batch");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mean = |ts: &[f64]| ts.iter().sum::<f64>() / ts.len().max(1) as f64;
    let (first, last) = (mean(&times[..100]), mean(&times[times.len() - 100..]));
    println!(
        "latency: one run of {batches} batches, per-batch mean of the first 100 {first:.3} ms, of the last 100 {last:.3} ms: {:.2}x",
        last / first
    );
}

/// One batch of 2,000 events through each operator family of the open engine — filter and
/// project, dedup, stream–static join, windowed aggregation — over the general decoder (a
/// schema given, as a user's pipeline has), including its Delta commit and checkpoint, so a
/// regression in any family shows up.
fn operators(c: &mut Criterion) {
    use microbatch::plan::LogicalPlan;
    use microbatch::query::{Query, avg, count};
    const SCHEMA: &str = "event_id string, timestamp timestamp, user_id int, event_type string, value double";
    let (files, events) = if full() { (400, 2_000) } else { (6, 100) };
    let data = input(files, events);
    let rt = rt();
    let events_q = || {
        Query::from_plan(LogicalPlan::StreamSource {
            schema: Some(SCHEMA.into()),
            options: Default::default(),
        })
    };
    let users = data.path().join("users/users");
    type MakeQuery = Box<dyn Fn() -> Query>;
    let families: Vec<(&str, MakeQuery)> = vec![
        (
            "filter_project",
            Box::new(move || {
                events_q()
                    .filter_expr("value > 100 AND event_type <> 'view'")
                    .expect("filter")
                    .select_expr(&[
                        "event_id",
                        "user_id",
                        "value * 2 AS doubled",
                        "upper(event_type) AS kind",
                    ])
                    .expect("select")
            }),
        ),
        (
            "dedup",
            Box::new(move || {
                events_q()
                    .with_watermark("timestamp", "10 minutes")
                    .expect("watermark")
                    .drop_duplicates(&["event_id", "timestamp"], false)
            }),
        ),
        (
            "join",
            Box::new(move || events_q().join(users.clone(), "user_id", false)),
        ),
        (
            "aggregation",
            Box::new(move || {
                events_q()
                    .with_watermark("timestamp", "10 minutes")
                    .expect("watermark")
                    .group_by_window("timestamp", "5 minutes", None, None, &["event_type"])
                    .expect("window")
                    .agg(vec![count().alias("n"), avg("value").alias("avg_value")])
                    .output_mode(microbatch::query::OutputMode::Update)
            }),
        ),
    ];
    let mut g = c.benchmark_group("operators");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(300));
    g.throughput(Throughput::Elements(events as u64));
    for (name, make) in &families {
        let start = || {
            let out = tempfile::tempdir().expect("tempdir");
            let cfg = QueryConfig {
                name: (*name).into(),
                input: data.path().join("input"),
                output: out.path().join("out"),
                checkpoint: out.path().join("checkpoint"),
                max_files_per_trigger: NonZeroUsize::MIN,
                query: make(),
                clock: Arc::new(ManualClock::new(T0 / 1000)) as SharedClock,
            };
            let q = rt.block_on(StreamingQuery::start(cfg)).expect("start");
            (q, out)
        };
        let mut current = start();
        g.bench_function(format!("{name}_batch"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let t = Instant::now();
                    let p = rt.block_on(current.0.run_once()).expect("batch");
                    let took = t.elapsed();
                    match p {
                        // A batch with input counts; a no-data batch or the end does not.
                        Some(p) if p.num_input_rows > 0 => {
                            total += took;
                            done += 1;
                        }
                        Some(_) => {}
                        None => current = start(),
                    }
                }
                total
            })
        });
    }
    g.finish();
}

/// The limit to compare with: parse the files and write one parquet file per input file, no
/// Delta, no checkpoint, on one core and on two.
fn parse_and_write(c: &mut Criterion) {
    use microbatch::source::parse::{EventBuilder, parse_json_lines};
    let (files, events) = reference_input();
    let data = input(files, events);
    let paths: Vec<_> = (0..files)
        .map(|i| data.path().join(format!("input/batch_{i}.json")))
        .collect();
    let work = |paths: &[std::path::PathBuf], out: &Path| {
        for p in paths {
            let bytes = std::fs::read(p).expect("read");
            let mut b = EventBuilder::default();
            parse_json_lines("f", &bytes, &mut b, &mut Vec::new());
            let batch = b.finish();
            let f = std::fs::File::create(out.join(p.file_name().expect("name"))).expect("create");
            // The engine's own parquet settings, so the limit writes what the sink writes.
            let props = microbatch::sink::writer_properties(&batch.schema(), Some(&batch));
            let mut w = deltalake::parquet::arrow::ArrowWriter::try_new(f, batch.schema(), Some(props))
                .expect("writer");
            w.write(&batch).expect("write");
            w.close().expect("close");
        }
    };
    let limit_run = |threads: usize| {
        let out = tempfile::tempdir().expect("tempdir");
        std::thread::scope(|s| {
            for chunk in paths.chunks(paths.len().div_ceil(threads)) {
                let dir = out.path();
                s.spawn(move || work(chunk, dir));
            }
        });
        out
    };
    if selected("parse_and_write") {
        limit_ratio(&data, || limit_run(2));
    }
    let mut g = c.benchmark_group("parse_and_write");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(files * events as u64));
    for threads in [1usize, 2] {
        g.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, &threads| {
            b.iter_batched(|| (), |()| limit_run(threads), BatchSize::PerIteration);
        });
    }
    g.finish();
}

/// The engine's pass-through at 100 files per batch against the parse-and-write limit on two
/// threads, the two run in turn, so that both see the same machine (this VM's speed drifts by
/// more than the gap between them): printed, the median of each and of the per-round ratios.
fn limit_ratio(data: &tempfile::TempDir, limit: impl Fn() -> tempfile::TempDir) {
    let rt = rt();
    let (mut engine, mut limits, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..11 {
        let t = Instant::now();
        let written = limit();
        let l = t.elapsed().as_secs_f64() * 1000.0;
        // Its files are removed outside the timing, as the engine's are.
        drop(written);
        let out = tempfile::tempdir().expect("tempdir");
        let cfg = config(
            out.path(),
            &data.path().join("input"),
            SeedQuery::Passthrough,
            100,
        );
        let t = Instant::now();
        rt.block_on(async {
            let mut query = StreamingQuery::start(cfg).await.expect("start");
            query.run(Trigger::AvailableNow, |_| {}).await.expect("run")
        });
        let e = t.elapsed().as_secs_f64() * 1000.0;
        engine.push(e);
        limits.push(l);
        ratios.push(l / e);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "limit ratio: 11 rounds in turn, pass-through at 100 files per batch median {:.1} ms, parse-and-write on 2 threads {:.1} ms; the engine at {:.0} % of the limit (median of the rounds' ratios)",
        median(&mut engine),
        median(&mut limits),
        100.0 * median(&mut ratios)
    );
}

/// What a failpoint costs while none is armed (they are live in the release binary).
fn failpoint_unarmed(c: &mut Criterion) {
    let scope = microbatch::failpoints::FailScope::new("bench");
    let mut g = c.benchmark_group("failpoint_unarmed");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1));
    g.bench_function("hit", |b| {
        b.iter(|| scope.hit(black_box(microbatch::failpoints::AFTER_OFFSETS)))
    });
    g.finish();
}

/// The seed's fixed event parser against the general decoder given the same event schema, on
/// the same bytes (generated files), one thread each.
fn decode(c: &mut Criterion) {
    use microbatch::event::event_schema;
    use microbatch::source::decode::{Decoder, JsonOptions};
    use microbatch::source::parse::pieces;
    let (files, events) = if full() { (10, 10_000) } else { (2, 100) };
    let data = input(files, events);
    let mut bytes = Vec::new();
    for i in 0..files {
        bytes.extend(std::fs::read(data.path().join(format!("input/batch_{i}.json"))).expect("read"));
    }
    let work = pieces("f", &bytes, 1 << 20);
    let mut g = c.benchmark_group("decode");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    let decoders = [
        ("seed", Decoder::seed()),
        ("general", Decoder::new(event_schema(), JsonOptions::default())),
    ];
    for (name, d) in &decoders {
        g.bench_function(*name, |b| b.iter(|| black_box(d.decode(&work, 1))));
    }
    g.finish();
}

/// Spark Connect: one round trip (a `Config` call over loopback), and the seed's pass-through
/// started through the server (start, every batch, awaitTermination) against the same plan
/// started in this process: their difference over the batch count is the server's cost per
/// batch.
fn connect(c: &mut Criterion) {
    use microbatch::connect::messages::{read_stream, start_command};
    use microbatch::connect::proto::spark as pb;
    const SCHEMA: &str = "event_id string, timestamp timestamp, user_id int, event_type string, value double";
    let (files, events) = if full() { (20, 10_000) } else { (2, 100) };
    // In memory: the cost measured is the server's, and disk noise here is larger than it.
    let data = input_in(files, events, memory_dir());
    // The server on its own runtime, the client on another, as they are in two processes.
    let server = rt();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let opts = microbatch::connect::ServeOptions {
        host: "127.0.0.1".into(),
        port: 0,
        root: data.path().to_path_buf(),
        token: None,
        tls: None,
    };
    let listener = server
        .block_on(microbatch::connect::service::bind(&opts))
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    server.spawn(async move {
        let _ = microbatch::connect::service::run(listener, &opts, async {
            let _ = stopped.await;
        })
        .await;
    });
    let mut client = rt
        .block_on(pb::spark_connect_service_client::SparkConnectServiceClient::connect(url))
        .expect("connect");
    let session = uuid::Uuid::new_v4().to_string();
    let mut g = c.benchmark_group("connect");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(3));
    let config = pb::ConfigRequest {
        session_id: session.clone(),
        user_context: None,
        operation: Some(pb::config_request::Operation {
            op_type: Some(pb::config_request::operation::OpType::Get(
                pb::config_request::Get {
                    keys: vec!["spark.sql.session.timeZone".into()],
                },
            )),
        }),
        client_type: None,
    };
    g.bench_function("config_round_trip", |b| {
        b.iter(|| black_box(rt.block_on(client.config(config.clone())).expect("config")))
    });
    g.throughput(Throughput::Elements(files * events as u64));
    g.bench_function(format!("passthrough_{files}_batches/via_server"), |b| {
        b.iter_batched(
            || uuid::Uuid::new_v4().to_string(),
            |run| {
                rt.block_on(async {
                    let start = start_command(
                        read_stream("./input", SCHEMA, 1),
                        "append",
                        &format!("./runs/{run}/checkpoint"),
                        &format!("./runs/{run}/events"),
                        pb::write_stream_operation_start::Trigger::AvailableNow(true),
                    );
                    let mut answers =
                        c_execute(&mut client, &session, pb::plan::OpType::Command(start)).await;
                    let Some(pb::execute_plan_response::ResponseType::WriteStreamOperationStartResult(r)) =
                        answers.pop()
                    else {
                        panic!("the query did not start");
                    };
                    let wait = pb::Command {
                        command_type: Some(pb::command::CommandType::StreamingQueryCommand(
                            pb::StreamingQueryCommand {
                                query_id: r.query_id,
                                command: Some(pb::streaming_query_command::Command::AwaitTermination(
                                    pb::streaming_query_command::AwaitTerminationCommand { timeout_ms: None },
                                )),
                            },
                        )),
                    };
                    black_box(c_execute(&mut client, &session, pb::plan::OpType::Command(wait)).await)
                })
            },
            BatchSize::PerIteration,
        );
    });
    g.bench_function(format!("passthrough_{files}_batches/in_process"), |b| {
        b.iter_batched(
            memory_dir,
            |out| {
                let cfg = QueryConfig {
                    name: "raw".into(),
                    input: data.path().join("input"),
                    output: out.path().join("events"),
                    checkpoint: out.path().join("checkpoint"),
                    max_files_per_trigger: NonZeroUsize::MIN,
                    query: microbatch::query::Query::from_plan(microbatch::plan::LogicalPlan::StreamSource {
                        schema: Some(SCHEMA.into()),
                        options: Default::default(),
                    }),
                    clock: Arc::new(microbatch::clock::SystemClock) as SharedClock,
                };
                let batches = server.block_on(async {
                    let query = StreamingQuery::start(cfg).await.expect("start");
                    // On the runtime's workers, as the server (and `run all`) run queries.
                    let (_, n) = query
                        .spawn(Trigger::AvailableNow, |_| {})
                        .await_termination()
                        .await
                        .expect("run");
                    n
                });
                black_box(batches);
                out
            },
            BatchSize::PerIteration,
        );
    });
    g.finish();
    let _ = stop.send(());
}

/// The answers of an `ExecutePlan` but its closing `result_complete`.
async fn c_execute(
    c: &mut microbatch::connect::proto::spark::spark_connect_service_client::SparkConnectServiceClient<
        tonic::transport::Channel,
    >,
    session: &str,
    op: microbatch::connect::proto::spark::plan::OpType,
) -> Vec<microbatch::connect::proto::spark::execute_plan_response::ResponseType> {
    let mut s = c
        .execute_plan(microbatch::connect::messages::request(session, op))
        .await
        .expect("execute")
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = s.message().await.expect("answer") {
        out.extend(r.response_type);
    }
    out.pop();
    out
}

criterion_group!(
    benches,
    connect,
    operators,
    throughput,
    state,
    latency,
    parse_and_write,
    decode,
    failpoint_unarmed
);
criterion_main!(benches);
