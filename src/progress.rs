//! Per-batch progress records with Spark's `StreamingQueryProgress` field names (R13).
//!
//! Differences from Spark, on purpose: `sink.numOutputRows` is the number of rows the batch
//! wrote (Spark's Delta sink reports -1), and `numRejectedRows` counts the input records that
//! went to the rejects table. Durations are measured with a monotonic timer; they describe the
//! run and are the only part of a progress record that is not reproducible.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One micro-batch's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryProgress {
    /// Query id (stable across restarts).
    pub id: String,
    /// Id of this run (new at every start).
    pub run_id: String,
    /// Query name.
    pub name: String,
    /// Trigger start, `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`, from the query clock.
    pub timestamp: String,
    /// The batch that ran.
    pub batch_id: u64,
    /// Trigger duration in ms.
    pub batch_duration: u64,
    /// Rows read from the source (good rows).
    pub num_input_rows: u64,
    /// Rows per second of query-clock time since the previous trigger (0 for the first).
    pub input_rows_per_second: f64,
    /// Rows per second of processing time.
    pub processed_rows_per_second: f64,
    /// Milliseconds per phase; only phases that ran appear.
    pub duration_ms: BTreeMap<String, u64>,
    /// `min`, `max`, `avg` event time of the batch's rows, and the `watermark` it ran with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub event_time: BTreeMap<String, String>,
    /// Stateful operators' metrics.
    pub state_operators: Vec<StateOperatorProgress>,
    /// One entry per source.
    pub sources: Vec<SourceProgress>,
    /// The sink.
    pub sink: SinkProgress,
    /// Input records rejected (kept in the rejects table).
    pub num_rejected_rows: u64,
    /// Input rows a watermark dropped (kept in the late-rows table; a row that missed only
    /// some of its sliding windows counts too). Ours: Spark's `numRowsDroppedByWatermark`
    /// counts late *groups* of an aggregation, not input rows.
    #[serde(default)]
    pub num_late_input_rows: u64,
}

/// A progress record's `eventTime.watermark` for people: `none yet` while it is Spark's
/// initial 0 (the epoch), else the time (`HH:MM:SS` when `short`, the whole UTC timestamp
/// otherwise).
pub fn watermark_label(watermark: &str, short: bool) -> String {
    if watermark.starts_with("1970-01-01T00:00:00.000") {
        "none yet".to_string()
    } else if short {
        watermark.get(11..19).unwrap_or(watermark).to_string()
    } else {
        watermark.to_string()
    }
}

/// A stateful operator's metrics for one batch (R12.7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateOperatorProgress {
    /// `stateStoreSave` for aggregations.
    pub operator_name: String,
    /// Keys in the store after the batch.
    pub num_rows_total: u64,
    /// Keys put by the batch.
    pub num_rows_updated: u64,
    /// Keys evicted by the batch.
    pub num_rows_removed: u64,
    /// Late rows dropped by the watermark, as Spark counts them: for an aggregation, late
    /// (window, key) groups of the batch's partial aggregate, not input rows.
    pub num_rows_dropped_by_watermark: u64,
    /// Estimated bytes held by the store.
    pub memory_used_bytes: u64,
    /// Time to write the state version, ms.
    pub commit_time_ms: u64,
}

/// A source's part of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceProgress {
    /// `FileStreamSource[<path>]`.
    pub description: String,
    /// Offset the batch started after (`null` for the first batch).
    pub start_offset: Option<serde_json::Value>,
    /// Offset the batch read up to.
    pub end_offset: Option<serde_json::Value>,
    /// Newest offset the source knows.
    pub latest_offset: Option<serde_json::Value>,
    /// Good rows read.
    pub num_input_rows: u64,
    /// Files read by the batch.
    pub num_input_files: u64,
    /// Rows per second of query-clock time.
    pub input_rows_per_second: f64,
    /// Rows per second of processing time.
    pub processed_rows_per_second: f64,
}

/// The sink's part of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkProgress {
    /// `DeltaSink[<path>]`.
    pub description: String,
    /// Rows the batch wrote (0 when the batch had already landed and was skipped).
    pub num_output_rows: u64,
    /// The table version after the batch.
    pub table_version: Option<u64>,
    /// True when the batch's Delta commit had already landed before a restart.
    pub skipped_already_committed: bool,
}

impl QueryProgress {
    /// Reads a record written by this engine.
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        serde_json::from_value(v.clone()).ok()
    }
}

/// Formats epoch ms as Spark's progress timestamp.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// Spark's `StreamingQueryStatus`: what a running query is doing now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryStatus {
    /// What it is doing, in Spark's words ("Processing new data", "Waiting for data to arrive", …).
    pub message: String,
    /// Whether the current or last trigger found new data.
    pub is_data_available: bool,
    /// Whether a trigger is running.
    pub is_trigger_active: bool,
}

impl QueryStatus {
    /// A status with `message` and the two flags.
    pub fn new(message: impl Into<String>, data: bool, active: bool) -> Self {
        Self {
            message: message.into(),
            is_data_available: data,
            is_trigger_active: active,
        }
    }
}

/// The progress records of a query, kept in memory (the last [`ProgressLog::KEEP`]) and in
/// `<checkpoint>/progress.jsonl` (one JSON line per batch, compacted to the last `KEEP` lines
/// when it holds twice as many), so `microbatch status` can read them after the query stopped.
#[derive(Debug)]
pub struct ProgressLog {
    path: std::path::PathBuf,
    recent: std::collections::VecDeque<QueryProgress>,
    lines_in_file: usize,
}

impl ProgressLog {
    /// Records kept (Spark's `spark.sql.streaming.numRecentProgressUpdates`).
    pub const KEEP: usize = 100;

    /// Opens the log at `path`, reading the records already there (a torn last line is skipped).
    pub fn open(path: &std::path::Path) -> Self {
        let lines: Vec<String> = std::fs::read_to_string(path)
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        let recent = lines
            .iter()
            .rev()
            .take(Self::KEEP)
            .rev()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| QueryProgress::from_json(&v))
            .collect();
        Self {
            path: path.to_path_buf(),
            recent,
            lines_in_file: lines.len(),
        }
    }

    /// Adds a record, in memory and on disk. A write failure is returned but the record is kept
    /// in memory: progress reporting never stops a query.
    pub fn push(&mut self, p: QueryProgress) -> std::io::Result<()> {
        if self.recent.len() == Self::KEEP {
            self.recent.pop_front();
        }
        self.recent.push_back(p);
        let last = self
            .recent
            .back()
            .map(|p| serde_json::to_string(p).unwrap_or_default());
        if self.lines_in_file + 1 >= 2 * Self::KEEP {
            let text: String = self
                .recent
                .iter()
                .map(|p| serde_json::to_string(p).unwrap_or_default() + "\n")
                .collect();
            // Progress is a report, not part of exactly-once: never fsynced.
            crate::checkpoint::atomic::replace(&self.path, text.as_bytes(), Default::default())?;
            self.lines_in_file = self.recent.len();
        } else if let Some(line) = last {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            writeln!(f, "{line}")?;
            self.lines_in_file += 1;
        }
        Ok(())
    }

    /// The records, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &QueryProgress> {
        self.recent.iter()
    }

    /// The newest record.
    pub fn last(&self) -> Option<&QueryProgress> {
        self.recent.back()
    }
}
