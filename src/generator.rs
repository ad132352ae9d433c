//! The seeded event generator (`microbatch generate`) and the static users table.
//!
//! The event model is the Spark oracle's (`shared/spark-oracle/gen_events.py`):
//! - batch `b` covers the on-time interval `[start + b·step, start + (b+1)·step)`; an on-time
//!   event gets a uniform microsecond in it;
//! - with probability `late_fraction` an event is late instead: `max_prev − U(11, 30) minutes`,
//!   where `max_prev` is the newest on-time event time of all earlier batches (`start` at first);
//!   with a 10-minute watermark such events are 1–20 minutes behind it;
//! - `event_id` is `b{batch:05}-{i:06}`, `user_id` uniform in `1..=num_users`, `event_type`
//!   click|view|purchase weighted 6:3:1, `value` uniform in 10..1000 rounded to cents;
//! - events are shuffled within a file.
//!
//! Everything comes from one `ChaCha8Rng` seeded with `seed`, consumed batch after batch, so the
//! same seed gives byte-identical files (the RNG is not the oracle's, so the values differ from
//! the Python generator's). Files are written under a `.` temp name, given an mtime from the
//! clock, and renamed into place, so the file source never sees a partial file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::clock::Clock;
use crate::event::{Micros, format_timestamp};
use crate::sink::{DeltaSink, OutputMode, SinkError};

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// A setting is out of range.
    #[error("invalid generator setting: {0}")]
    Invalid(String),
    /// A file to write already exists.
    #[error(
        "{0} already exists; use --from-batch to continue after the files already there, or another --input folder"
    )]
    Exists(PathBuf),
    /// Writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Writing the users table failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// RNG seed.
    pub seed: u64,
    /// Event time of the first batch's interval start.
    pub start: Micros,
    /// Length of each batch's on-time interval.
    pub step: Micros,
    /// Events per file.
    pub events_per_batch: usize,
    /// Probability that an event is late.
    pub late_fraction: f64,
    /// Users ids are `1..=num_users`.
    pub num_users: i32,
}

impl GeneratorConfig {
    fn validate(&self) -> Result<(), GeneratorError> {
        if !(0.0..=1.0).contains(&self.late_fraction) {
            return Err(GeneratorError::Invalid(format!(
                "late fraction must be within 0..=1, got {}",
                self.late_fraction
            )));
        }
        if self.step <= 0 {
            return Err(GeneratorError::Invalid("step must be positive".into()));
        }
        if self.num_users < 1 {
            return Err(GeneratorError::Invalid("num_users must be at least 1".into()));
        }
        Ok(())
    }
}

/// One generated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `b{batch:05}-{i:06}`.
    pub event_id: String,
    /// Event time.
    pub timestamp: Micros,
    /// 1..=num_users.
    pub user_id: i32,
    /// click | view | purchase.
    pub event_type: &'static str,
    /// 10..1000, cents.
    pub value: f64,
}

impl Event {
    /// The event as one JSON line (no trailing newline), in the oracle's format.
    pub fn to_json_line(&self) -> String {
        format!(
            "{{\"event_id\":{},\"timestamp\":\"{}\",\"user_id\":{},\"event_type\":\"{}\",\"value\":{}}}",
            serde_json::Value::String(self.event_id.clone()),
            format_timestamp(self.timestamp),
            self.user_id,
            self.event_type,
            serde_json::Value::from(self.value),
        )
    }
}

const EVENT_TYPES: [(&str, u32); 3] = [("click", 6), ("view", 3), ("purchase", 1)];

/// Picks one of `choices` with probability proportional to its weight (weights sum to 10).
fn weighted(rng: &mut ChaCha8Rng, choices: &[(&'static str, u32)]) -> &'static str {
    let mut pick = rng.random_range(0..10);
    for (name, w) in choices {
        if pick < *w {
            return name;
        }
        pick -= w;
    }
    choices[0].0
}

/// The endless, deterministic sequence of batches for one configuration.
#[derive(Debug)]
pub struct EventStream {
    cfg: GeneratorConfig,
    rng: ChaCha8Rng,
    next_batch: u64,
    max_prev: Micros,
}

impl EventStream {
    /// The stream positioned before batch 0.
    pub fn new(cfg: GeneratorConfig) -> Result<Self, GeneratorError> {
        cfg.validate()?;
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            max_prev: cfg.start,
            next_batch: 0,
            cfg,
        })
    }

    /// The id of the batch [`EventStream::next_batch`] returns next.
    pub fn position(&self) -> u64 {
        self.next_batch
    }

    /// Generates the next batch's events.
    pub fn next_batch(&mut self) -> Vec<Event> {
        let b = self.next_batch;
        let cfg = &self.cfg;
        let lo = cfg.start + b as i64 * cfg.step;
        let mut batch_max: Option<Micros> = None;
        let mut events = Vec::with_capacity(cfg.events_per_batch);
        for i in 0..cfg.events_per_batch {
            let late = self.rng.random::<f64>() < cfg.late_fraction;
            let ts = if late {
                let minutes = self.rng.random_range(11.0..30.0);
                self.max_prev - (minutes * 60_000_000.0) as i64
            } else {
                let ts = lo + self.rng.random_range(0..cfg.step);
                batch_max = Some(batch_max.map_or(ts, |m| m.max(ts)));
                ts
            };
            let user_id = self.rng.random_range(1..=cfg.num_users);
            let event_type = weighted(&mut self.rng, &EVENT_TYPES);
            let value = (self.rng.random_range(10.0..1000.0f64) * 100.0).round() / 100.0;
            events.push(Event {
                event_id: format!("b{b:05}-{i:06}"),
                timestamp: ts,
                user_id,
                event_type,
                value,
            });
        }
        events.shuffle(&mut self.rng);
        if let Some(m) = batch_max {
            self.max_prev = self.max_prev.max(m);
        }
        self.next_batch += 1;
        events
    }

    /// Skips ahead so the next batch is `batch` (generating and discarding the ones before).
    pub fn skip_to(&mut self, batch: u64) {
        while self.next_batch < batch {
            self.next_batch();
        }
    }
}

/// The file name of batch `b`.
pub fn batch_file_name(b: u64) -> String {
    format!("batch_{b}.json")
}

/// Writes `lines` to `dir/name` atomically (temp `.` name, mtime from `mtime_ms`, rename).
/// Refuses to replace an existing file.
pub fn write_input_file(
    dir: &Path,
    name: &str,
    contents: &[u8],
    mtime_ms: i64,
) -> Result<PathBuf, GeneratorError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GeneratorError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(name);
    if path.exists() {
        return Err(GeneratorError::Exists(path));
    }
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, contents).map_err(io_err(&tmp))?;
    let ft = filetime::FileTime::from_unix_time(
        mtime_ms.div_euclid(1000),
        (mtime_ms.rem_euclid(1000) * 1_000_000) as u32,
    );
    filetime::set_file_mtime(&tmp, ft).map_err(io_err(&tmp))?;
    fs::rename(&tmp, &path).map_err(io_err(&path))?;
    Ok(path)
}

/// Writes batches `first..first+count` as `batch_N.json` files into `dir`. File `N`'s mtime is
/// the clock's time when it is written, made strictly increasing so files sort in batch order.
pub fn write_batches(
    cfg: &GeneratorConfig,
    dir: &Path,
    first: u64,
    count: u64,
    clock: &dyn Clock,
) -> Result<Vec<PathBuf>, GeneratorError> {
    let mut stream = EventStream::new(cfg.clone())?;
    stream.skip_to(first);
    let mut paths = Vec::new();
    let mut last_mtime = i64::MIN;
    for _ in 0..count {
        let b = stream.position();
        let mut text = String::with_capacity(cfg.events_per_batch * 120);
        for e in stream.next_batch() {
            text.push_str(&e.to_json_line());
            text.push('\n');
        }
        let mtime = clock.now_ms().max(last_mtime.saturating_add(1));
        last_mtime = mtime;
        paths.push(write_input_file(
            dir,
            &batch_file_name(b),
            text.as_bytes(),
            mtime,
        )?);
    }
    Ok(paths)
}

/// The users table's schema: `user_id` int, `name`, `country`, `tier` strings.
pub fn users_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int32, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("country", DataType::Utf8, true),
        Field::new("tier", DataType::Utf8, true),
    ]))
}

/// The users rows: ids `1..=num_users - missing` (the last `missing` ids are absent so an inner
/// join drops their events), countries and tiers drawn from `seed + 1`.
pub fn users_batch(seed: u64, num_users: i32, missing: i32) -> RecordBatch {
    const COUNTRIES: [&str; 8] = ["US", "DE", "FR", "GB", "IN", "BR", "JP", "CA"];
    const TIERS: [(&str, u32); 3] = [("free", 6), ("pro", 3), ("enterprise", 1)];
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(1));
    let ids: Vec<i32> = (1..=(num_users - missing).max(0)).collect();
    let mut names = Vec::new();
    let mut countries = Vec::new();
    let mut tiers = Vec::new();
    for id in &ids {
        names.push(format!("user_{id:04}"));
        countries.push(COUNTRIES[rng.random_range(0..COUNTRIES.len())]);
        tiers.push(weighted(&mut rng, &TIERS));
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(ids)),
        Arc::new(StringArray::from(names)),
        Arc::new(StringArray::from(countries)),
        Arc::new(StringArray::from(tiers)),
    ];
    // Four columns of equal length matching the four fields of `users_schema`.
    RecordBatch::try_new(users_schema(), cols).expect("users columns match the users schema")
}

/// App id of the users-table writer's Delta txns.
pub const USERS_WRITER_ID: &str = "microbatch-users-writer";

/// Writes `rows` as the whole contents of the users table at `path` (created if absent), in one
/// Delta commit. Returns the new table version.
pub async fn write_users_table(
    path: &Path,
    rows: &RecordBatch,
    timestamp_ms: i64,
) -> Result<u64, GeneratorError> {
    write_static_table(path, rows, timestamp_ms).await
}

/// Writes `rows` as the whole new version of the Delta table at `path` (created with their
/// schema if absent), as a job refreshing a dimension table would; returns the version.
pub async fn write_static_table(
    path: &Path,
    rows: &RecordBatch,
    timestamp_ms: i64,
) -> Result<u64, GeneratorError> {
    commit_static(path, rows, OutputMode::Complete, timestamp_ms).await
}

/// Appends `rows` to the Delta table at `path` as a new version; returns the version.
pub async fn append_static_table(
    path: &Path,
    rows: &RecordBatch,
    timestamp_ms: i64,
) -> Result<u64, GeneratorError> {
    commit_static(path, rows, OutputMode::Append, timestamp_ms).await
}

/// One commit of `rows`: the table's whole contents (complete) or added to them (append).
async fn commit_static(
    path: &Path,
    rows: &RecordBatch,
    mode: OutputMode,
    timestamp_ms: i64,
) -> Result<u64, GeneratorError> {
    let mut sink = DeltaSink::open(path, &rows.schema(), USERS_WRITER_ID).await?;
    let next = sink.committed_batch().map_or(0, |v| v as u64 + 1);
    let replace = matches!(mode, OutputMode::Complete);
    let staged = sink
        .stage(next, std::slice::from_ref(rows), replace, timestamp_ms)
        .await?;
    let version = sink.commit(staged, mode, timestamp_ms).await?;
    sink.settle().await?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(seed: u64) -> GeneratorConfig {
        GeneratorConfig {
            seed,
            start: 1_795_514_400_000_000,
            step: 60_000_000,
            events_per_batch: 200,
            late_fraction: 0.1,
            num_users: 1000,
        }
    }

    #[test]
    fn same_seed_same_events_and_skip_to_matches() {
        let mut a = EventStream::new(cfg(7)).unwrap();
        let mut b = EventStream::new(cfg(7)).unwrap();
        let a0 = a.next_batch();
        assert_eq!(a0, b.next_batch());
        assert_ne!(a0, EventStream::new(cfg(8)).unwrap().next_batch());
        let a1 = a.next_batch();
        let mut c = EventStream::new(cfg(7)).unwrap();
        c.skip_to(1);
        assert_eq!(c.next_batch(), a1);
    }

    #[test]
    fn events_follow_the_model() {
        let c = cfg(3);
        let mut s = EventStream::new(c.clone()).unwrap();
        let mut max_prev = c.start;
        let mut late = 0;
        for b in 0..20 {
            let lo = c.start + b * c.step;
            let events = s.next_batch();
            assert_eq!(events.len(), 200);
            let mut batch_max = None::<i64>;
            for e in &events {
                assert!((1..=1000).contains(&e.user_id));
                assert!((10.0..=1000.0).contains(&e.value));
                assert!(["click", "view", "purchase"].contains(&e.event_type));
                if e.timestamp >= lo {
                    assert!(e.timestamp < lo + c.step);
                    batch_max = Some(batch_max.map_or(e.timestamp, |m| m.max(e.timestamp)));
                } else {
                    late += 1;
                    let behind = max_prev - e.timestamp;
                    assert!((11 * 60_000_000..=30 * 60_000_000).contains(&behind), "{behind}");
                }
            }
            max_prev = max_prev.max(batch_max.unwrap_or(max_prev));
        }
        assert!((250..=550).contains(&late), "about 10% late, got {late}");
    }

    #[test]
    fn users_leave_out_the_last_ids() {
        let u = users_batch(1, 1000, 20);
        assert_eq!(u.num_rows(), 980);
        assert_eq!(users_batch(1, 1000, 20), u);
    }
}
