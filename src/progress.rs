//! Per-batch progress records with Spark's `StreamingQueryProgress` field names (R13).
//!
//! Differences from Spark, on purpose: `sink.numOutputRows` is the number of rows the batch
//! wrote (Spark's Delta sink reports -1), and `numRejectedRows` counts the input records that
//! went to the rejects table. Durations are measured with a monotonic timer; they describe the
//! run and are the only part of a progress record that is not reproducible.

use std::collections::BTreeMap;

use serde::Serialize;

/// One micro-batch's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub event_time: BTreeMap<String, String>,
    /// Stateful operators' metrics.
    pub state_operators: Vec<StateOperatorProgress>,
    /// One entry per source.
    pub sources: Vec<SourceProgress>,
    /// The sink.
    pub sink: SinkProgress,
    /// Input records rejected (kept in the rejects table).
    pub num_rejected_rows: u64,
}

/// A stateful operator's metrics for one batch (R12.7).
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Late (window, key) groups dropped by the watermark.
    pub num_rows_dropped_by_watermark: u64,
    /// Estimated bytes held by the store.
    pub memory_used_bytes: u64,
    /// Time to write the state version, ms.
    pub commit_time_ms: u64,
}

/// A source's part of a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// Formats epoch ms as Spark's progress timestamp.
pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}
