//! The `microbatch` command line.
//!
//! Exit status: 0 on success; 1 when the work failed and 2 when the arguments are wrong, each
//! with a one-line reason on stderr; 130 when Ctrl-C stopped it (after the batch in flight).
//! Stdout carries the results (with `--json`, JSON lines only); notes and warnings go to
//! stderr. A closed stdout (`| head`) ends a run quietly after the batch in flight.

use std::ffi::OsString;
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
    /// Write JSON lines as the whole new version of a Delta table (created if absent), read
    /// with a schema as the file source reads them — e.g. a static table to join with.
    LoadTable {
        /// The table folder, e.g. data/customers.
        table: PathBuf,
        /// The JSON-lines file.
        file: PathBuf,
        /// The schema as Spark writes it (DDL or StructType JSON).
        #[arg(long)]
        schema: String,
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
    /// Serve a page on 127.0.0.1 with every query's charts (event time, watermark, late rows,
    /// rates, durations, state), updated while the queries run.
    Ui(UiArgs),
    /// Write the UI's charts for the given checkpoints as one self-contained HTML file.
    Report(ReportArgs),
    /// Serve Spark Connect, so PySpark code runs here unchanged:
    /// SparkSession.builder.remote("sc://localhost:15002").getOrCreate().
    Serve(ServeArgs),
}

/// The flags of `serve`.
#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// Address to listen on; other machines can connect only when this is not a loopback one.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (Spark Connect's default; 0 picks a free one).
    #[arg(long, default_value_t = 15002)]
    port: u16,
    /// Clients read and write only under this folder; their relative paths start here.
    #[arg(long, default_value = ".")]
    root: std::path::PathBuf,
    /// Refuse calls without this bearer token (the client's sc://host:port/;token=…; PySpark
    /// sends it only over TLS, so give --tls-cert and --tls-key too).
    #[arg(long)]
    token: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
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
    Join(JoinArgs),
    /// The four seed queries concurrently over the same input, each with its own checkpoint.
    All(RunArgs),
    /// A query file: `microbatch run my_query.toml [--trigger …] [--json]` (see the README).
    #[command(external_subcommand)]
    File(Vec<OsString>),
}

/// The flags of `run FILE.toml`.
#[derive(Parser, Debug)]
#[command(name = "microbatch run FILE.toml")]
struct FileRunArgs {
    /// The query file.
    file: PathBuf,
    /// `available-now` or an interval like `5s`; overrides the file's `[sink] trigger`.
    #[arg(long)]
    trigger: Option<String>,
    /// Print each batch's progress as JSON lines on stdout (nothing else goes there).
    #[arg(long)]
    json: bool,
    /// Serve the UI while the query runs, on PORT (4040 when not given).
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "4040")]
    ui: Option<u16>,
    /// Fsync every durable write — the checkpoint's files and the tables' new files and log
    /// entries — so exactly-once holds across power loss too (default: the file's `[sink] fsync`, else across the process
    /// dying, as Spark on a local file system).
    #[arg(long)]
    fsync: bool,
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
    /// Start over: remove what earlier demo runs made (its batch_N.json files, the seed's
    /// tables and checkpoints) first; anything else in the folders stays.
    #[arg(long)]
    fresh: bool,
    /// Rows of each table to print at the end.
    #[arg(long, default_value_t = 5)]
    show: usize,
    /// Port of the UI served while the demo runs (if taken, the demo runs without it).
    #[arg(long, default_value_t = 4040)]
    ui_port: u16,
    /// Do not serve the UI.
    #[arg(long)]
    no_ui: bool,
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
    /// Print each batch's progress as JSON lines on stdout (nothing else goes there).
    #[arg(long)]
    json: bool,
    /// Serve the UI while the queries run, on PORT (4040 when not given).
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "4040")]
    ui: Option<u16>,
    /// Fsync every durable write — the checkpoint's files and the tables' new files and log
    /// entries — so exactly-once holds across power loss too (default: across the process
    /// dying, as Spark on a local file system).
    #[arg(long)]
    fsync: bool,
}

#[derive(Args, Debug, Clone)]
struct JoinArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Keep events of unknown users, with null user columns (a left outer join).
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
    /// A query file is invalid.
    #[error(transparent)]
    QueryFile(Box<crate::query_file::QueryFileError>),
    /// A scenario failed or is invalid.
    #[error("{0}")]
    Scenario(String),
    /// The UI could not start, or the report not be written.
    #[error(transparent)]
    Ui(#[from] crate::ui::UiError),
    /// The Spark Connect server could not start.
    #[error(transparent)]
    Serve(#[from] crate::connect::service::ServeError),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Exit status of wrong arguments (as clap and most Unix tools use).
const EXIT_USAGE: u8 = 2;
/// Exit status after Ctrl-C (128 + SIGINT, as a shell reports it).
const EXIT_INTERRUPTED: u8 = 130;

/// How a command ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// It did all it was asked.
    Done,
    /// Ctrl-C stopped it after the batch in flight.
    Interrupted,
}

/// Runs the CLI with the process arguments.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // clap's first line says what is wrong; the usage block after it is what `--help`
            // shows, so one line and a pointer to it.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!("{first} (see `microbatch --help`)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
        .and_then(|rt| rt.block_on(dispatch(cli)));
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Interrupted) => ExitCode::from(EXIT_INTERRUPTED),
        // A failed replay has printed its report already.
        Err(CliError::Scenario(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
        Err(e @ CliError::Usage(_)) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Writes one line to stdout; false when stdout is closed (`| head` ended), so a caller can
/// stop quietly instead of panicking as `println!` does.
fn out_line(line: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
}

/// A result line: on stdout, or on stderr when stdout carries JSON only.
fn summary_line(line: &str, json: bool) {
    if json {
        eprintln!("{line}");
    } else {
        out_line(line);
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

async fn dispatch(cli: Cli) -> Result<Outcome, CliError> {
    match cli.command {
        Command::Generate(args) => generate(args).await.map(|()| Outcome::Done),
        Command::Run { query } => match query {
            RunQuery::Passthrough(args) => run_seed(SeedQuery::Passthrough, args, false).await,
            RunQuery::Aggregations(args) => run_seed(SeedQuery::Aggregations, args, false).await,
            RunQuery::LateData(args) => run_seed(SeedQuery::LateData, args, false).await,
            RunQuery::Join(args) => run_seed(SeedQuery::Join, args.run, args.left_outer).await,
            RunQuery::All(args) => run_all(args).await,
            RunQuery::File(args) => run_file(args).await,
        },
        Command::Demo(args) => demo(args).await,
        Command::Ui(args) => ui(args).await,
        Command::Serve(args) => serve(args).await,
        Command::Report(args) => report(args).await,
        Command::Status { checkpoint, json } => status(&checkpoint, json).await.map(|()| Outcome::Done),
        Command::Replay { files, keep } => replay(&files, keep).await.map(|()| Outcome::Done),
        Command::LoadTable { table, file, schema } => load_table(&table, &file, &schema).await,
        Command::Show {
            table,
            limit,
            no_truncate,
        } => {
            let data = read_table(&table).await?;
            out_line(show(&data.rows, limit, !no_truncate).trim_end_matches('\n'));
            out_line(&format!(
                "{} rows, table version {}",
                data.rows.num_rows(),
                data.version
            ));
            Ok(Outcome::Done)
        }
    }
}

async fn load_table(
    table: &std::path::Path,
    file: &std::path::Path,
    schema: &str,
) -> Result<Outcome, CliError> {
    let schema =
        crate::schema::parse_schema(schema).map_err(|e| CliError::Usage(format!("--schema: {e}")))?;
    let decoder = crate::source::decode::Decoder::try_new(schema, Default::default())
        .map_err(|e| CliError::Usage(format!("--schema: {e}")))?;
    let bytes = std::fs::read(file).map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    // A table is loaded whole or not at all: a bad line is an error naming it.
    let rows = decoder
        .decode_table(&file.display().to_string(), &bytes)
        .map_err(|(r, count)| {
            CliError::Usage(format!(
                "{}:{}: {} ({count} bad line(s); nothing written)",
                r.file, r.line, r.reason
            ))
        })?;
    let now = chrono::Utc::now().timestamp_millis();
    let version = crate::generator::write_static_table(table, &rows, now).await?;
    out_line(&format!(
        "wrote {} rows to {} (version {version})",
        rows.num_rows(),
        table.display()
    ));
    Ok(Outcome::Done)
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
    out_line(&format!(
        "wrote {} files of {} events to {} (seed {})",
        paths.len(),
        a.events_per_batch,
        a.input.display(),
        a.seed
    ));
    if let Some(data) = a.users {
        let path = data.join("users");
        let rows = users_batch(a.seed, a.num_users, a.users_missing);
        let v = write_users_table(&path, &rows, start / 1000).await?;
        out_line(&format!(
            "wrote {} users to {} (version {v})",
            rows.num_rows(),
            path.display()
        ));
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
        query: seed.query(&a.folders.data).fsync(a.fsync),
        clock,
    })
}

/// Prints a batch's progress (a JSON line, or one line for people); false when stdout is
/// closed. A batch that rejected every line it read gets a warning on stderr: a wrong schema
/// looks exactly like that.
fn print_progress(p: &QueryProgress, json: bool) -> bool {
    if p.num_input_rows == 0 && p.num_rejected_rows > 0 {
        let table = p
            .sink
            .description
            .strip_prefix("DeltaSink[")
            .and_then(|d| d.strip_suffix(']'))
            .unwrap_or("<output>");
        eprintln!(
            "warning: [{}] batch {} rejected all {} of its lines; if the input is right, the schema is not — the reasons are in {table}_rejects",
            p.name, p.batch_id, p.num_rejected_rows
        );
    }
    if json {
        // A progress record is plain data and always serializes.
        return out_line(&serde_json::to_string(p).unwrap_or_default());
    }
    out_line(&progress_line(p))
}

/// A batch's progress in one line for people.
fn progress_line(p: &QueryProgress) -> String {
    format!(
        "[{}] batch {:>4}: {} rows in, {} out, {} rejected{}{}, {} ms{}",
        p.name,
        p.batch_id,
        p.num_input_rows,
        p.sink.num_output_rows,
        p.num_rejected_rows,
        p.event_time
            .get("watermark")
            .map(|w| format!(", watermark {}", crate::progress::watermark_label(w, false)))
            .unwrap_or_default(),
        p.state_operators
            .first()
            .map(|s| format!(
                ", state {} rows, late: {} groups dropped ({} input rows)",
                s.num_rows_total, s.num_rows_dropped_by_watermark, p.num_late_input_rows
            ))
            .unwrap_or_default(),
        p.batch_duration,
        if p.sink.skipped_already_committed {
            " (already committed: skipped)"
        } else {
            ""
        }
    )
}

async fn run_seed(seed: SeedQuery, a: RunArgs, left_outer: bool) -> Result<Outcome, CliError> {
    let trigger: Trigger = a.trigger.parse().map_err(CliError::Usage)?;
    let clock: SharedClock = Arc::new(SystemClock);
    let mut cfg = query_config(&a, seed, clock)?;
    let _ui = run_ui(&a.folders.checkpoints, a.ui).await;
    if left_outer {
        cfg.query = crate::query::Query::events().join(a.folders.data.join("users"), "user_id", true);
    }
    run_query(cfg, trigger, a.json).await
}

async fn run_file(args: Vec<OsString>) -> Result<Outcome, CliError> {
    let a = FileRunArgs::try_parse_from(std::iter::once("run".into()).chain(args)).map_err(|e| {
        CliError::Usage(
            e.to_string()
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .to_string(),
        )
    })?;
    if a.file.extension().and_then(|e| e.to_str()) != Some("toml") {
        return Err(CliError::Usage(format!(
            "`{}` is neither a seed query (passthrough, aggregations, late-data, join, all) nor a query file (*.toml)",
            a.file.display()
        )));
    }
    let q = crate::query_file::QueryFile::load(&a.file).map_err(|e| CliError::QueryFile(Box::new(e)))?;
    let trigger: Trigger = a
        .trigger
        .or(q.trigger)
        .unwrap_or_else(|| "available-now".into())
        .parse()
        .map_err(CliError::Usage)?;
    let cfg = QueryConfig {
        name: q.name,
        input: q.input,
        output: q.output,
        checkpoint: q.checkpoint,
        max_files_per_trigger: q.max_files_per_trigger,
        query: match a.fsync {
            true => q.query.fsync(true),
            false => q.query,
        },
        clock: Arc::new(SystemClock),
    };
    let checkpoints = cfg
        .checkpoint
        .parent()
        .unwrap_or(std::path::Path::new("."))
        .to_path_buf();
    let _ui = run_ui(&checkpoints, a.ui).await;
    run_query(cfg, trigger, a.json).await
}

/// Ctrl-C: stop every query after its batch in flight; the flag tells the exit status.
fn stop_on_ctrl_c(stops: Vec<crate::execution::StopHandle>) -> Arc<std::sync::atomic::AtomicBool> {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let set = flag.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping after the batch in flight (Ctrl-C)");
            set.store(true, std::sync::atomic::Ordering::SeqCst);
            stops.iter().for_each(|s| s.stop());
        }
    });
    flag
}

async fn run_query(cfg: QueryConfig, trigger: Trigger, json: bool) -> Result<Outcome, CliError> {
    let output = cfg.output.clone();
    let mut query = StreamingQuery::start(cfg).await?;
    for note in query.recovery_notes() {
        eprintln!("[{}] recovered: {note}", query.name());
    }
    let stop = query.stop_handle();
    let interrupted = stop_on_ctrl_c(vec![stop.clone()]);
    let mut rows = 0;
    let mut closed = false;
    let batches = query
        .run(trigger, |p| {
            rows += p.sink.num_output_rows;
            if !closed && !print_progress(p, json) {
                // Nobody reads stdout any more: finish this batch (done) and stop.
                closed = true;
                stop.stop();
            }
        })
        .await?;
    if !closed {
        summary_line(
            &format!(
                "{batches} batches, {rows} rows written to {} (next batch {})",
                output.display(),
                query.next_batch_id()
            ),
            json,
        );
    }
    Ok(outcome(&interrupted))
}

fn outcome(interrupted: &std::sync::atomic::AtomicBool) -> Outcome {
    if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        Outcome::Interrupted
    } else {
        Outcome::Done
    }
}

async fn run_all(a: RunArgs) -> Result<Outcome, CliError> {
    let trigger: Trigger = a.trigger.parse().map_err(CliError::Usage)?;
    let clock: SharedClock = Arc::new(SystemClock);
    let max = parse_max_files(&a.max_files_per_trigger)
        .map_err(|e| CliError::Usage(format!("--max-files-per-trigger: {e}")))?;
    let configs = crate::demo::seed_configs(
        &a.folders.input,
        &a.folders.data,
        &a.folders.checkpoints,
        max,
        clock,
    );
    // What every query needs (its input, a static table), before any starts.
    for cfg in &configs {
        crate::execution::preflight(cfg).await?;
    }
    let _ui = run_ui(&a.folders.checkpoints, a.ui).await;
    let mut handles = Vec::new();
    for cfg in configs {
        let q = StreamingQuery::start(cfg).await?;
        for note in q.recovery_notes() {
            eprintln!("[{}] recovered: {note}", q.name());
        }
        let json = a.json;
        let stop = q.stop_handle();
        let mut closed = false;
        handles.push(q.spawn(trigger, move |p| {
            if !closed && !print_progress(p, json) {
                closed = true;
                stop.stop();
            }
        }));
    }
    let interrupted = stop_on_ctrl_c(handles.iter().map(|h| h.stop_handle()).collect());
    let mut first_error = None;
    for h in handles {
        let name = h.name().to_string();
        match h.await_termination().await {
            Ok((_, n)) => summary_line(&format!("[{name}] {n} batches"), a.json),
            Err(e) => {
                eprintln!("[{name}] failed: {}", one_line(&e));
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(outcome(&interrupted)),
    }
}

async fn demo(a: DemoArgs) -> Result<Outcome, CliError> {
    let usage = |flag: &str, e: &dyn std::fmt::Display| CliError::Usage(format!("{flag}: {e}"));
    let pace = crate::duration::parse_duration_ms(&a.pace).map_err(|e| usage("--pace", &e))?;
    if pace < 0 {
        return Err(CliError::Usage("--pace must not be negative".into()));
    }
    let cfg = crate::demo::DemoConfig {
        input: a.folders.input,
        data: a.folders.data,
        checkpoints: a.folders.checkpoints,
        batches: a.batches,
        events_per_batch: a.events_per_batch,
        pace: std::time::Duration::from_millis(pace as u64),
        seed: a.seed,
        late_fraction: a.late_fraction,
        max_files_per_trigger: parse_max_files(&a.max_files_per_trigger)
            .map_err(|e| usage("--max-files-per-trigger", &e))?,
        start: parse_timestamp(&a.start).map_err(|e| usage("--start", &e))?,
        fresh: a.fresh,
        show_rows: a.show,
    };
    let mut out = std::io::stdout();
    let _ui = if a.no_ui {
        None
    } else {
        let ui = crate::ui::start_for_run(&cfg.checkpoints, a.ui_port).await;
        if let Some(ui) = &ui {
            out_line(&format!(
                "watch it at {} (served while the demo runs; afterwards `microbatch ui`)",
                ui.url()
            ));
        }
        ui
    };
    let report = crate::demo::run_demo(&cfg, &mut out).await?;
    Ok(if report.interrupted {
        Outcome::Interrupted
    } else {
        Outcome::Done
    })
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
        if json {
            out_line("null");
        }
        summary_line(&format!("{}: no batch has run yet", checkpoint.display()), json);
        return Ok(());
    };
    if json {
        out_line(&serde_json::to_string_pretty(p).unwrap_or_default());
    } else {
        out_line(&progress_line(p));
    }
    // With --json the lines below are notes on stderr: stdout holds the record alone.
    summary_line(&format!("  at {}, query id {}", p.timestamp, p.id), json);
    let latest = |dir: &str| {
        std::fs::read_dir(checkpoint.join(dir))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
            .max()
    };
    match (latest("offsets"), latest("commits")) {
        (Some(o), c) if Some(o) != c => summary_line(
            &format!("  batch {o} was planned but not committed: it runs again when the query starts"),
            json,
        ),
        (_, Some(c)) => summary_line(&format!("  committed through batch {c}"), json),
        _ => {}
    }
    // The source's description holds the input folder as the query saw it (absolute since
    // this version; an older relative one is taken relative to the checkpoints' parent).
    let input = p
        .sources
        .first()
        .and_then(|s| s.description.strip_prefix("FileStreamSource[")?.strip_suffix(']'))
        .map(PathBuf::from)
        .map(
            |i| match (i.is_absolute(), checkpoint.parent().and_then(|c| c.parent())) {
                (false, Some(root)) => root.join(i),
                _ => i,
            },
        );
    if let Some(input) = input {
        let one = parse_max_files("1")?;
        let source = crate::source::FileSource::open(&input, &checkpoint.join("sources/0"), one)?;
        let waiting = source.list_unseen()?.len();
        summary_line(
            &format!("  {waiting} input file(s) waiting in {}", input.display()),
            json,
        );
    }
    Ok(())
}

async fn replay(files: &[PathBuf], keep: bool) -> Result<(), CliError> {
    let mut failed = Vec::new();
    for f in files {
        let result = async {
            let s = crate::scenario::Scenario::load(f)?;
            let dir = tempfile_dir(f)?;
            let out = crate::scenario::replay(&s, &dir, |line| {
                out_line(line);
            })
            .await;
            // A failure's report names tables in this folder: it stays for inspection.
            if keep || out.is_err() {
                out_line(&format!("  kept its folder: {}", dir.display()));
            } else {
                let _ = std::fs::remove_dir_all(&dir);
            }
            out
        }
        .await;
        match result {
            Ok(o) => {
                out_line(&format!("  ok ({} trace lines)", o.trace.len()));
            }
            Err(e) => {
                out_line(&format!("FAILED: {e}"));
                failed.push(f.display().to_string());
            }
        }
    }
    if failed.is_empty() {
        out_line(&format!("{} passed, 0 failed", files.len()));
        Ok(())
    } else {
        out_line(&format!(
            "{} passed, {} failed",
            files.len() - failed.len(),
            failed.len()
        ));
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

// ---- `microbatch ui`, `microbatch report`, `run --ui` (src/ui) ----

#[derive(Args, Debug)]
struct UiArgs {
    /// The checkpoints folder whose queries are shown.
    #[arg(long, default_value = "checkpoints")]
    checkpoints: PathBuf,
    /// Port on 127.0.0.1.
    #[arg(long, default_value_t = 4040)]
    port: u16,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Query checkpoints (e.g. checkpoints/agg), or folders of them (e.g. checkpoints).
    #[arg(required = true)]
    checkpoints: Vec<PathBuf>,
    /// The HTML file to write.
    #[arg(short, long, default_value = "report.html")]
    output: PathBuf,
}

/// `run --ui`: the server (kept alive by the caller), its address on stderr.
async fn run_ui(checkpoints: &std::path::Path, port: Option<u16>) -> Option<crate::ui::UiServer> {
    let ui = crate::ui::start_for_run(checkpoints, port?).await?;
    eprintln!("UI at {} (while this run lasts)", ui.url());
    Some(ui)
}

async fn ui(a: UiArgs) -> Result<Outcome, CliError> {
    let server = crate::ui::UiServer::start(&a.checkpoints, a.port).await?;
    out_line(&format!(
        "serving the queries of {} at {} (Ctrl-C stops)",
        a.checkpoints.display(),
        server.url()
    ));
    tokio::select! {
        () = server.wait() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(Outcome::Done)
}

async fn serve(a: ServeArgs) -> Result<Outcome, CliError> {
    let opts = crate::connect::ServeOptions {
        host: a.host,
        port: a.port,
        root: a.root,
        token: a.token,
        tls: a.tls_cert.zip(a.tls_key),
    };
    let root = opts.root.clone();
    let tls = opts.tls.is_some();
    crate::connect::serve(
        opts,
        |addr| {
            // On stderr, so a script can wait for it while stdout stays the answers'.
            eprintln!(
                "microbatch serve: listening on {addr} (Spark Connect {}; sc://{addr}{}), root {} — Ctrl-C stops",
                crate::connect::service::SPARK_VERSION,
                if tls { "/;use_ssl=true" } else { "" },
                root.display()
            );
        },
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await?;
    Ok(Outcome::Done)
}

async fn report(a: ReportArgs) -> Result<Outcome, CliError> {
    let n = crate::ui::report::write(&a.checkpoints, &a.output).await?;
    out_line(&format!("wrote {} ({n} queries)", a.output.display()));
    Ok(Outcome::Done)
}
