//! Helpers shared by the integration tests.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::arrow::array::{AsArray, RecordBatch};
use deltalake::arrow::datatypes::{Float64Type, Int32Type, TimestampMicrosecondType};
use microbatch::clock::{ManualClock, SharedClock};
use microbatch::execution::{QueryConfig, StreamingQuery, Trigger};
use microbatch::generator::{Event, EventStream, GeneratorConfig, write_input_file};
use tempfile::TempDir;

/// 2026-11-24T10:00:00Z in microseconds.
pub const T0: i64 = 1_795_514_400_000_000;

/// Failpoints are process-global: tests that arm them take the library's arming lock (shared
/// with scenario replays) so two never configure the same point at once. (Queries of other
/// tests are not affected: every armed point is scoped to one checkpoint folder.)
pub fn fail_lock() -> tokio::sync::MutexGuard<'static, ()> {
    microbatch::failpoints::ARMING.blocking_lock()
}

/// The arming lock, from async code.
pub async fn fail_lock_async() -> tokio::sync::MutexGuard<'static, ()> {
    microbatch::failpoints::ARMING.lock().await
}

/// An event row as the tests compare them: (event_id, timestamp µs, user_id, event_type, value bits).
pub type Row = (String, i64, i32, String, u64);

pub fn row_of(e: &Event) -> Row {
    (
        e.event_id.clone(),
        e.timestamp,
        e.user_id,
        e.event_type.to_string(),
        e.value.to_bits(),
    )
}

pub fn rows_of_batch(b: &RecordBatch) -> Vec<Row> {
    let ids = b.column(0).as_string::<i32>();
    let ts = b.column(1).as_primitive::<TimestampMicrosecondType>();
    let uid = b.column(2).as_primitive::<Int32Type>();
    let ty = b.column(3).as_string::<i32>();
    let v = b.column(4).as_primitive::<Float64Type>();
    let mut rows: Vec<Row> = (0..b.num_rows())
        .map(|i| {
            (
                ids.value(i).to_string(),
                ts.value(i),
                uid.value(i),
                ty.value(i).to_string(),
                v.value(i).to_bits(),
            )
        })
        .collect();
    rows.sort();
    rows
}

pub async fn table_rows(path: &Path) -> Vec<Row> {
    let t = microbatch::table::read_table(path).await.expect("read table");
    rows_of_batch(&t.rows)
}

/// A workspace: input, data and checkpoint folders in a fresh temp dir, and a manual clock.
pub struct Workspace {
    pub dir: TempDir,
    pub clock: ManualClock,
    pub next_mtime_ms: i64,
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // A query's input folder must exist when it starts (Spark: PATH_NOT_FOUND).
        std::fs::create_dir_all(dir.path().join("input")).expect("input folder");
        Self {
            dir,
            clock: ManualClock::new(T0 / 1000),
            next_mtime_ms: T0 / 1000,
        }
    }
    pub fn input(&self) -> PathBuf {
        self.dir.path().join("input")
    }
    pub fn events_table(&self) -> PathBuf {
        self.dir.path().join("data/events")
    }
    pub fn rejects_table(&self) -> PathBuf {
        self.dir.path().join("data/events_rejects")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.path().join("checkpoints/raw")
    }
    pub fn config(&self, max_files: usize) -> QueryConfig {
        QueryConfig {
            name: "raw".into(),
            input: self.input(),
            output: self.events_table(),
            checkpoint: self.checkpoint(),
            max_files_per_trigger: NonZeroUsize::new(max_files).expect("positive"),
            query: microbatch::query::Query::events(),
            clock: Arc::new(self.clock.clone()) as SharedClock,
        }
    }
    /// Writes a file with the given lines, its mtime one second after the previous file's.
    pub fn add_file(&mut self, name: &str, text: &str) {
        write_input_file(&self.input(), name, text.as_bytes(), self.next_mtime_ms).expect("write input");
        self.next_mtime_ms += 1000;
    }
    pub fn add_events(&mut self, name: &str, events: &[Event]) {
        let text: String = events.iter().map(|e| e.to_json_line() + "\n").collect();
        self.add_file(name, &text);
    }
    /// Writes the stream's next `n` batches as files `batch_<i>.json`, `i` from `first`;
    /// returns their rows.
    pub fn add_stream_batches(&mut self, stream: &mut EventStream, first: u64, n: u64) -> Vec<Row> {
        let mut rows = Vec::new();
        for i in first..first + n {
            let events = stream.next_batch();
            rows.extend(events.iter().map(row_of));
            self.add_events(&format!("batch_{i}.json"), &events);
        }
        rows
    }
    pub async fn start(&self, max_files: usize) -> StreamingQuery {
        StreamingQuery::start(self.config(max_files))
            .await
            .expect("start query")
    }
    /// Starts and runs available-now to the end; returns the batch count.
    pub async fn run_to_end(&self, max_files: usize) -> u64 {
        let mut q = self.start(max_files).await;
        q.run(Trigger::AvailableNow, |_| {}).await.expect("run")
    }
}

pub fn gen_config(seed: u64, events_per_batch: usize) -> GeneratorConfig {
    GeneratorConfig {
        seed,
        start: T0,
        step: 60_000_000,
        events_per_batch,
        late_fraction: 0.1,
        num_users: 1000,
    }
}

/// Appends `rows` to the Delta table at `table` as another writer would — its own appId, one
/// commit; returns the rows staged and the version committed.
pub async fn append_as(table: &Path, app_id: &str, rows: &RecordBatch) -> (u64, u64) {
    use microbatch::sink::{DeltaSink, OutputMode};
    let mut sink = DeltaSink::open(table, &rows.schema(), app_id)
        .await
        .expect("open table");
    let staged = sink
        .stage(0, std::slice::from_ref(rows), false, 0)
        .await
        .expect("stage rows");
    let staged_rows = staged.rows;
    let version = sink.commit(staged, OutputMode::Append, 0).await.expect("commit");
    (staged_rows, version)
}
