//! The `microbatch` command line.
//!
//! Exit status 0 on success; otherwise 1 with a one-line reason on stderr.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::clock::{ManualClock, SharedClock, SystemClock};
use crate::event::parse_timestamp;
use crate::execution::{QueryConfig, StreamingQuery, Trigger};
use crate::generator::{GeneratorConfig, users_batch, write_batches, write_users_table};
use crate::progress::QueryProgress;
use crate::query::SeedQuery;
use crate::source::parse_max_files;
use crate::table::{read_table, show};

#[derive(Parser, Debug)]
#[command(
    name = "microbatch",
    version,
    about = "Deterministic micro-batch streaming into Delta Lake, with Spark Structured Streaming's semantics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The main job: users table, seeded files at a real-time pace, the four seed queries with
    /// live progress, then a few rows of every table. Run it again to continue; --fresh starts over.
    Demo(DemoArgs),
    /// Write seeded JSON-lines event files (batch_N.json) and optionally the users table.
    Generate(GenerateArgs),
    /// Run a query over the input folder into a Delta table.
    Run {
        #[command(subcommand)]
        query: RunQuery,
    },
    /// Replay scenario files step by step (see scenarios/README.md); a mismatch names the step
    /// and shows the difference both ways.
    Replay {
        /// Scenario files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Keep each replay's folder (printed) instead of deleting it.
        #[arg(long)]
        keep: bool,
    },
    /// Print a query's last progress and how many input files wait unprocessed.
    Status {
        /// The query's checkpoint folder, e.g. checkpoints/agg.
        checkpoint: PathBuf,
        /// Print the last progress record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a Delta table's rows as Spark's show() does, with its version.
    Show {
        /// The table folder, e.g. data/events.
        table: PathBuf,
        /// Rows to print.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print values whole (Spark's `truncate=False`) instead of cutting them at 20 characters.
        #[arg(long)]
        no_truncate: bool,
    },
}

#[derive(Subcommand, Debug)]
enum RunQuery {
    /// Seed Example 1: every event into <data>/events (append), checkpoint <checkpoints>/raw.
    Passthrough(RunArgs),
    /// Seed Example 2: 5-minute tumbling windows by event_type, count and avg(value), watermark
    /// 10 minutes, update mode (upsert), into <data>/event_aggregates, checkpoint <checkpoints>/agg.
    Aggregations(RunArgs),
    /// Seed Example 3: 5-minute windows sliding by 1 minute by user_id, count, watermark
    /// 10 minutes, append mode, into <data>/user_activity, checkpoint <checkpoints>/late.
    LateData(RunArgs),
    /// Seed Example 4: events inner-joined on user_id with the static Delta table <data>/users
    /// (its latest version each batch), into <data>/enriched_events, checkpoint <checkpoints>/enriched.
    Join(RunArgs),
    /// The four seed queries concurrently over the same input, each with its own checkpoint.
    All(RunArgs),
}

/// The working folders, shared by `run` and `demo`.
#[derive(Args, Debug, Clone)]
struct Folders {
    /// Input folder.
    #[arg(long, default_value = "input")]
    input: PathBuf,
    /// Tables folder.
    #[arg(long, default_value = "data")]
    data: PathBuf,
    /// Checkpoints folder.
    #[arg(long, default_value = "checkpoints")]
    checkpoints: PathBuf,
}

#[derive(Args, Debug)]
struct DemoArgs {
    #[command(flatten)]
    folders: Folders,
    /// Files to generate in this run.
    #[arg(long, default_value_t = 20)]
    batches: u64,
    /// Events per file.
    #[arg(long, default_value_t = 2000)]
    events_per_batch: usize,
    /// Time between two files (the seed's generate_events, faster).
    #[arg(long, default_value = "250ms")]
    pace: String,
    /// The queries' processing-time trigger interval.
    #[arg(long, default_value = "500ms")]
    trigger: String,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Fraction of late events.
    #[arg(long, default_value_t = 0.1)]
    late_fraction: f64,
    /// maxFilesPerTrigger of every query.
    #[arg(long, default_value = "2")]
    max_files_per_trigger: String,
    /// Event time of the first file (UTC).
    #[arg(long, default_value = "2026-11-24T10:00:00")]
    start: String,
    /// Delete the input, data and checkpoint folders' contents first.
    #[arg(long)]
    fresh: bool,
    /// Rows of each table to print at the end.
    #[arg(long, default_value_t = 5)]
    show: usize,
}

#[derive(Args, Debug, Clone)]
struct RunArgs {
    #[command(flatten)]
    folders: Folders,
    /// At most this many new files per micro-batch (a positive integer).
    #[arg(long, default_value = "1")]
    max_files_per_trigger: String,
    /// `available-now` (process what is there, then stop) or an interval like `5s`.
    #[arg(long, default_value = "available-now")]
    trigger: String,
    /// Print each batch's progress as JSON instead of a one-line summary.
    #[arg(long)]
    json: bool,
    /// For `run join`: keep events of unknown users, with null user columns (left outer join).
    #[arg(long)]
    left_outer: bool,
}

#[derive(Args, Debug)]
struct GenerateArgs {
    /// Folder to write batch_N.json files into.
    #[arg(long, default_value = "input")]
    input: PathBuf,
    /// Number of files.
    #[arg(long, default_value_t = 10)]
    batches: u64,
    /// First batch number (to continue a sequence written earlier with the same seed).
    #[arg(long, default_value_t = 0)]
    from_batch: u64,
    /// Events per file.
    #[arg(long, default_value_t = 1000)]
    events_per_batch: usize,
    /// RNG seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Fraction of events that are late (11–30 minutes behind the newest event time so far).
    #[arg(long, default_value_t = 0.1)]
    late_fraction: f64,
    /// Event-time clock start (UTC): batch b covers [start + b·step, start + (b+1)·step).
    #[arg(long, default_value = "2026-11-24T10:00:00")]
    start: String,
    /// Event-time span of one file.
    #[arg(long, default_value = "1 minute")]
    step: String,
    /// User ids are 1..=num-users.
    #[arg(long, default_value_t = 1000)]
    num_users: i32,
    /// Also write the users table to <DATA_DIR>/users.
    #[arg(long, value_name = "DATA_DIR")]
    users: Option<PathBuf>,
    /// Ids left out of the users table (the last ones), so an inner join drops their events.
    #[arg(long, default_value_t = 20)]
    users_missing: i32,
}

/// Errors the CLI reports.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A flag's value is invalid.
    #[error("{0}")]
    Usage(String),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] crate::execution::EngineError),
    /// The generator failed.
    #[error(transparent)]
    Generator(#[from] crate::generator::GeneratorError),
    /// A table could not be read.
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    /// The demo failed.
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
    /// A checkpoint could not be read.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// The source log could not be read.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// A scenario failed or is invalid.
    #[error("{0}")]
    Scenario(String),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Runs the CLI with the process arguments.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
        .and_then(|rt| rt.block_on(dispatch(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A failed replay has printed its report already.
        Err(CliError::Scenario(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line.
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s.replace('\n', " ")
}

async fn dispatch(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Generate(args) => generate(args).await,
        Command::Run { query } => match query {
            RunQuery::Passthrough(args) => run_seed(SeedQuery::Passthrough, args).await,
            RunQuery::Aggregations(args) => run_seed(SeedQuery::Aggregations, args).await,
            RunQuery::LateData(args) => run_seed(SeedQuery::LateData, args).await,
            RunQuery::Join(args) => run_seed(SeedQuery::Join, args).await,
            RunQuery::All(args) => run_all(args).await,
        },
        Command::Demo(args) => demo(args).await,
        Command::Status { checkpoint, json } => status(&checkpoint, json).await,
        Command::Replay { files, keep } => replay(&files, keep).await,
        Command::Show {
            table,
            limit,
            no_truncate,
        } => {
            let data = read_table(&table).await?;
            print!("{}", show(&data.rows, limit, !no_truncate));
            println!("{} rows, table version {}", data.rows.num_rows(), data.version);
            Ok(())
        }
    }
}

async fn generate(a: GenerateArgs) -> Result<(), CliError> {
    let start = parse_timestamp(&a.start).map_err(|e| CliError::Usage(format!("--start: {e}")))?;
    let step_ms =
        crate::duration::parse_duration_ms(&a.step).map_err(|e| CliError::Usage(format!("--step: {e}")))?;
    let cfg = GeneratorConfig {
        seed: a.seed,
        start,
        step: step_ms * 1000,
        events_per_batch: a.events_per_batch,
        late_fraction: a.late_fraction,
        num_users: a.num_users,
    };
    // File mtimes follow the event-time clock: file b is stamped at the end of its interval, so
    // the same arguments give the same files, mtimes included.
    let clock = ManualClock::new(start / 1000 + (a.from_batch as i64 + 1) * step_ms);
    let mut paths = Vec::new();
    for b in a.from_batch..a.from_batch + a.batches {
        paths.extend(write_batches(&cfg, &a.input, b, 1, &clock)?);
        clock.advance(step_ms);
    }
    println!(
        "wrote {} files of {} events to {} (seed {})",
        paths.len(),
        a.events_per_batch,
        a.input.display(),
        a.seed
    );
    if let Some(data) = a.users {
        let path = data.join("users");
        let rows = users_batch(a.seed, a.num_users, a.users_missing);
        let v = write_users_table(&path, &rows, start / 1000).await?;
        println!(
            "wrote {} users to {} (version {v})",
            rows.num_rows(),
            path.display()
        );
    }
    Ok(())
}

fn query_config(a: &RunArgs, seed: SeedQuery, clock: SharedClock) -> Result<QueryConfig, CliError> {
    let max: NonZeroUsize = parse_max_files(&a.max_files_per_trigger)
        .map_err(|e| CliError::Usage(format!("--max-files-per-trigger: {e}")))?;
    Ok(QueryConfig {
        name: seed.checkpoint_name().to_string(),
        input: a.folders.input.clone(),
        output: a.folders.data.join(seed.table_name()),
        checkpoint: a.folders.checkpoints.join(seed.checkpoint_name()),
        max_files_per_trigger: max,
        query: seed.query(&a.folders.data),
        clock,
    })
}

fn print_progress(p: &QueryProgress, json: bool) {
    if json {
        // A progress record is plain data and always serializes.
        println!("{}", serde_json::to_string(p).unwrap_or_default());
    } else {
        println!(
            "[{}] batch {:>4}: {} rows in, {} out, {} rejected{}{}, {} ms{}",
            p.name,
            p.batch_id,
            p.num_input_rows,
            p.sink.num_output_rows,
            p.num_rejected_rows,
            p.event_time
                .get("watermark")
                .map(|w| format!(", watermark {w}"))
                .unwrap_or_default(),
            p.state_operators
                .first()
                .map(|s| format!(
                    ", state {} rows, {} dropped late",
                    s.num_rows_total, s.num_rows_dropped_by_watermark
                ))
                .unwrap_or_default(),
            p.batch_duration,
            if p.sink.skipped_already_committed {
                " (already committed: skipped)"
            } else {
                ""
            }
        );
    }
}

async fn run_seed(seed: SeedQuery, a: RunArgs) -> Result<(), CliError> {
    let trigger: Trigger = a.trigger.parse().map_err(CliError::Usage)?;
    let clock: SharedClock = Arc::new(SystemClock);
    let mut cfg = query_config(&a, seed, clock)?;
    if a.left_outer {
        if seed != SeedQuery::Join {
            return Err(CliError::Usage("--left-outer goes with `run join`".into()));
        }
        cfg.query = crate::query::Query::events().join(a.folders.data.join("users"), "user_id", true);
    }
    run_query(cfg, trigger, a.json).await
}

async fn run_query(cfg: QueryConfig, trigger: Trigger, json: bool) -> Result<(), CliError> {
    let output = cfg.output.clone();
    let mut query = StreamingQuery::start(cfg).await?;
    for note in query.recovery_notes() {
        eprintln!("[{}] recovered: {note}", query.name());
    }
    let stop = query.stop_handle();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping after the batch in flight (Ctrl-C)");
            stop.stop();
        }
    });
    let mut rows = 0;
    let batches = query
        .run(trigger, |p| {
            rows += p.sink.num_output_rows;
            print_progress(p, json);
        })
        .await?;
    println!(
        "{batches} batches, {rows} rows written to {} (next batch {})",
        output.display(),
        query.next_batch_id()
    );
    Ok(())
}

async fn run_all(a: RunArgs) -> Result<(), CliError> {
    let trigger: Trigger = a.trigger.parse().map_err(CliError::Usage)?;
    let clock: SharedClock = Arc::new(SystemClock);
    let max = parse_max_files(&a.max_files_per_trigger)
        .map_err(|e| CliError::Usage(format!("--max-files-per-trigger: {e}")))?;
    let mut handles = Vec::new();
    for cfg in crate::demo::seed_configs(
        &a.folders.input,
        &a.folders.data,
        &a.folders.checkpoints,
        max,
        clock,
    ) {
        let q = StreamingQuery::start(cfg).await?;
        for note in q.recovery_notes() {
            eprintln!("[{}] recovered: {note}", q.name());
        }
        let json = a.json;
        handles.push(q.spawn(trigger, move |p| print_progress(p, json)));
    }
    let stops: Vec<_> = handles.iter().map(|h| h.stop_handle()).collect();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping after the batches in flight (Ctrl-C)");
            stops.iter().for_each(|s| s.stop());
        }
    });
    let mut first_error = None;
    for h in handles {
        let name = h.name().to_string();
        match h.await_termination().await {
            Ok((_, n)) => println!("[{name}] {n} batches"),
            Err(e) => {
                eprintln!("[{name}] failed: {}", one_line(&e));
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

async fn demo(a: DemoArgs) -> Result<(), CliError> {
    let usage = |flag: &str, e: &dyn std::fmt::Display| CliError::Usage(format!("{flag}: {e}"));
    let pace = crate::duration::parse_duration_ms(&a.pace).map_err(|e| usage("--pace", &e))?;
    let trigger = crate::duration::parse_duration_ms(&a.trigger).map_err(|e| usage("--trigger", &e))?;
    if trigger <= 0 {
        return Err(CliError::Usage("--trigger must be a positive interval".into()));
    }
    let cfg = crate::demo::DemoConfig {
        input: a.folders.input,
        data: a.folders.data,
        checkpoints: a.folders.checkpoints,
        batches: a.batches,
        events_per_batch: a.events_per_batch,
        pace: std::time::Duration::from_millis(pace.max(0) as u64),
        trigger_interval_ms: trigger,
        seed: a.seed,
        late_fraction: a.late_fraction,
        max_files_per_trigger: parse_max_files(&a.max_files_per_trigger)
            .map_err(|e| usage("--max-files-per-trigger", &e))?,
        start: parse_timestamp(&a.start).map_err(|e| usage("--start", &e))?,
        fresh: a.fresh,
        show_rows: a.show,
    };
    let mut out = std::io::stdout();
    crate::demo::run_demo(&cfg, &mut out).await?;
    Ok(())
}

async fn status(checkpoint: &std::path::Path, json: bool) -> Result<(), CliError> {
    use crate::progress::ProgressLog;
    if !checkpoint.join("metadata").is_file() {
        return Err(CliError::Usage(format!(
            "{} is not a query checkpoint (no metadata file)",
            checkpoint.display()
        )));
    }
    let log = ProgressLog::open(&checkpoint.join("progress.jsonl"));
    let Some(p) = log.last() else {
        println!("{}: no batch has run yet", checkpoint.display());
        return Ok(());
    };
    if json {
        println!("{}", serde_json::to_string_pretty(p).unwrap_or_default());
    } else {
        print_progress(p, false);
        println!("  at {}, query id {}", p.timestamp, p.id);
    }
    let latest = |dir: &str| {
        std::fs::read_dir(checkpoint.join(dir))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
            .max()
    };
    match (latest("offsets"), latest("commits")) {
        (Some(o), c) if Some(o) != c => {
            println!("  batch {o} was planned but not committed: it runs again when the query starts")
        }
        (_, Some(c)) => println!("  committed through batch {c}"),
        _ => {}
    }
    let input = p
        .sources
        .first()
        .and_then(|s| s.description.strip_prefix("FileStreamSource[")?.strip_suffix(']'))
        .map(PathBuf::from);
    if let Some(input) = input {
        let one = parse_max_files("1")?;
        let source = crate::source::FileSource::open(&input, &checkpoint.join("sources/0"), one)?;
        let waiting = source.list_unseen()?.len();
        println!("  {waiting} input file(s) waiting in {}", input.display());
    }
    Ok(())
}

async fn replay(files: &[PathBuf], keep: bool) -> Result<(), CliError> {
    let mut failed = Vec::new();
    for f in files {
        let result = async {
            let s = crate::scenario::Scenario::load(f)?;
            let dir = tempfile_dir(f)?;
            let out = crate::scenario::replay(&s, &dir, |line| println!("{line}")).await;
            if keep {
                println!("  kept its folder: {}", dir.display());
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
            out
        }
        .await;
        match result {
            Ok(o) => println!("  ok ({} trace lines)", o.trace.len()),
            Err(e) => {
                println!("FAILED: {e}");
                failed.push(f.display().to_string());
            }
        }
    }
    if failed.is_empty() {
        println!("{} passed, 0 failed", files.len());
        Ok(())
    } else {
        println!("{} passed, {} failed", files.len() - failed.len(), failed.len());
        Err(CliError::Scenario(format!("failed: {}", failed.join(", "))))
    }
}

/// A fresh folder for one replay, under the system temp folder.
fn tempfile_dir(f: &std::path::Path) -> Result<PathBuf, crate::scenario::ScenarioError> {
    let name = f.file_stem().and_then(|s| s.to_str()).unwrap_or("scenario");
    let dir = std::env::temp_dir().join(format!(
        "microbatch-replay-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).map_err(|source| crate::scenario::ScenarioError::Read {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}
