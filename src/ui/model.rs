//! Reading checkpoints into chart data: one [`QueryView`] per query folder, from its
//! `progress.jsonl`, its late-rows table and its output table's windows.
//!
//! Nothing here fails the page: whatever cannot be read becomes a note on the query (or on the
//! folder) and the rest is still shown.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use serde::Serialize;

use crate::progress::QueryProgress;

/// Late rows drawn at most per query (evenly sampled beyond that; the table view says so).
pub const MAX_LATE_POINTS: usize = 4000;

/// A query whose `progress.jsonl` changed less than this long ago counts as active.
const ACTIVE_SECS: u64 = 30;

/// A checkpoints folder and the queries found in it.
#[derive(Debug, Clone, Serialize)]
pub struct Folder {
    /// The folder as given.
    pub path: String,
    /// Why nothing can be shown for the folder itself (missing, empty), if so.
    pub problem: Option<String>,
    /// Its queries, by name.
    pub queries: Vec<QueryView>,
}

/// One batch's figures, as the charts draw them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchPoint {
    /// The batch id.
    pub batch_id: u64,
    /// Trigger start (UTC), as recorded.
    pub timestamp: String,
    /// Rows read.
    pub input_rows: u64,
    /// Input rows per second of query-clock time.
    pub input_rows_per_second: f64,
    /// Rows per second of processing time.
    pub processed_rows_per_second: f64,
    /// Trigger duration, ms.
    pub batch_duration_ms: u64,
    /// Milliseconds per phase (`latestOffset`, `walCommit`, `getBatch`, `addBatch`, `commitOffsets`).
    pub duration_ms: BTreeMap<String, u64>,
    /// Oldest event time of the input, as recorded.
    pub event_time_min: Option<String>,
    /// Newest event time of the input, as recorded.
    pub event_time_max: Option<String>,
    /// The watermark the batch ran with, as recorded (`1970-01-01T00:00:00.000Z` before the first).
    pub watermark: Option<String>,
    /// `event_time_min` in epoch ms.
    pub event_time_min_ms: Option<i64>,
    /// `event_time_max` in epoch ms.
    pub event_time_max_ms: Option<i64>,
    /// The watermark in epoch ms; `None` while there is none yet (Spark's initial 0). It is the
    /// batch's eviction watermark (which windows are final).
    pub watermark_ms: Option<i64>,
    /// The late-row threshold the batch filtered its input with, epoch ms: Spark 3.5 uses the
    /// previous batch's watermark for it (the late-rows table records it; else taken from the
    /// previous batch's record). `None` when there was none.
    pub late_threshold_ms: Option<i64>,
    /// Keys in state after the batch (all operators).
    pub state_rows: u64,
    /// Bytes held by state (all operators).
    pub state_memory_bytes: u64,
    /// Late groups dropped, as Spark counts them (`numRowsDroppedByWatermark`).
    pub late_groups_dropped: u64,
    /// Late input rows (kept in the late-rows table).
    pub late_input_rows: u64,
    /// Input records rejected.
    pub rejected_rows: u64,
    /// Rows written to the output table.
    pub output_rows: u64,
}

/// A row a watermark dropped, from the late-rows table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatePoint {
    /// The batch that dropped it.
    pub batch_id: u64,
    /// Its event time, epoch ms (`None` when it had none).
    pub event_time_ms: Option<i64>,
    /// The late threshold that dropped it, epoch ms.
    pub watermark_ms: Option<i64>,
    /// The operator that dropped it.
    pub operator: String,
    /// True when it counted in no window at all.
    pub fully_dropped: bool,
}

/// A window of the output table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowSpan {
    /// Window start, epoch ms.
    pub start_ms: i64,
    /// Window end, epoch ms.
    pub end_ms: i64,
    /// The batch that last wrote it (its Delta commit's txn version), when known.
    pub batch_id: Option<u64>,
}

/// Everything the page shows about one query.
#[derive(Debug, Clone, Serialize)]
pub struct QueryView {
    /// The checkpoint folder's name.
    pub name: String,
    /// The query id (`metadata`).
    pub id: Option<String>,
    /// The checkpoint folder.
    pub checkpoint: String,
    /// `active`, `idle`, `in flight: batch N` … in words.
    pub status: String,
    /// The output table, when known.
    pub output: Option<String>,
    /// One point per batch in `progress.jsonl`, by batch id.
    pub batches: Vec<BatchPoint>,
    /// Late rows (at most [`MAX_LATE_POINTS`], evenly sampled).
    pub late_rows: Vec<LatePoint>,
    /// Late rows in the late-rows table (may exceed `late_rows.len()`).
    pub late_rows_total: usize,
    /// Windows of the output table (empty when it has no `window` column).
    pub windows: Vec<WindowSpan>,
    /// What could not be read or is worth knowing (torn last line, no batch yet, …).
    pub notes: Vec<String>,
}

/// The figures of the query list.
#[derive(Debug, Clone, Serialize)]
pub struct QuerySummary {
    /// The query's name.
    pub name: String,
    /// Its id.
    pub id: Option<String>,
    /// Its status.
    pub status: String,
    /// The newest batch.
    pub last_batch: Option<u64>,
    /// Input rows over the recorded batches.
    pub input_rows: u64,
    /// Rows written over the recorded batches.
    pub output_rows: u64,
    /// The newest watermark (as recorded).
    pub watermark: Option<String>,
    /// Rejected rows over the recorded batches.
    pub rejected_rows: u64,
    /// Late input rows over the recorded batches.
    pub late_input_rows: u64,
    /// State rows after the newest batch.
    pub state_rows: Option<u64>,
    /// Notes (problems) of the query.
    pub notes: Vec<String>,
}

impl QueryView {
    /// The figures of the query list.
    pub fn summary(&self) -> QuerySummary {
        let last = self.batches.last();
        QuerySummary {
            name: self.name.clone(),
            id: self.id.clone(),
            status: self.status.clone(),
            last_batch: last.map(|b| b.batch_id),
            input_rows: self.batches.iter().map(|b| b.input_rows).sum(),
            output_rows: self.batches.iter().map(|b| b.output_rows).sum(),
            watermark: last.and_then(|b| b.watermark.clone()),
            rejected_rows: self.batches.iter().map(|b| b.rejected_rows).sum(),
            late_input_rows: self.batches.iter().map(|b| b.late_input_rows).sum(),
            state_rows: last.map(|b| b.state_rows),
            notes: self.notes.clone(),
        }
    }

    /// True when the query is stateful (some batch reported a state operator).
    pub fn has_event_time(&self) -> bool {
        self.batches
            .iter()
            .any(|b| b.event_time_min_ms.is_some() || b.watermark_ms.is_some())
    }
}

/// Epoch ms of a progress timestamp (`yyyy-MM-ddTHH:mm:ss.SSSZ`).
pub fn parse_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// A progress record as a chart point.
pub fn batch_point(p: &QueryProgress) -> BatchPoint {
    let et = |k: &str| p.event_time.get(k).cloned();
    let watermark = et("watermark");
    BatchPoint {
        batch_id: p.batch_id,
        timestamp: p.timestamp.clone(),
        input_rows: p.num_input_rows,
        input_rows_per_second: p.input_rows_per_second,
        processed_rows_per_second: p.processed_rows_per_second,
        batch_duration_ms: p.batch_duration,
        duration_ms: p.duration_ms.clone(),
        event_time_min_ms: et("min").as_deref().and_then(parse_ms),
        event_time_max_ms: et("max").as_deref().and_then(parse_ms),
        watermark_ms: watermark.as_deref().and_then(parse_ms).filter(|ms| *ms != 0),
        late_threshold_ms: None,
        event_time_min: et("min"),
        event_time_max: et("max"),
        watermark,
        state_rows: p.state_operators.iter().map(|s| s.num_rows_total).sum(),
        state_memory_bytes: p.state_operators.iter().map(|s| s.memory_used_bytes).sum(),
        late_groups_dropped: p
            .state_operators
            .iter()
            .map(|s| s.num_rows_dropped_by_watermark)
            .sum(),
        late_input_rows: p.num_late_input_rows,
        rejected_rows: p.num_rejected_rows,
        output_rows: p.sink.num_output_rows,
    }
}

/// The records of a `progress.jsonl` text, one per batch id (a batch recorded twice, as after a
/// restart, keeps its newest record), with notes on lines that could not be read.
pub fn parse_progress(text: &str) -> (Vec<QueryProgress>, Vec<String>) {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut by_id: BTreeMap<u64, QueryProgress> = BTreeMap::new();
    let mut notes = Vec::new();
    let mut bad = 0;
    for (i, line) in lines.iter().enumerate() {
        let record = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| QueryProgress::from_json(&v));
        match record {
            Some(p) => {
                by_id.insert(p.batch_id, p);
            }
            None if i + 1 == lines.len() => notes.push(
                "progress.jsonl: the last line is incomplete (torn, or being written); it is skipped"
                    .to_string(),
            ),
            None => bad += 1,
        }
    }
    if bad > 0 {
        notes.push(format!(
            "progress.jsonl: {bad} line(s) are not progress records; skipped"
        ));
    }
    (by_id.into_values().collect(), notes)
}

/// Newest batch number in `<checkpoint>/<dir>` (`offsets`, `commits`).
fn latest(checkpoint: &Path, dir: &str) -> Option<u64> {
    std::fs::read_dir(checkpoint.join(dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
        .max()
}

/// The query's status in words, from its checkpoint's files.
fn status(checkpoint: &Path) -> String {
    let age = std::fs::metadata(checkpoint.join("progress.jsonl"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    let active = age.is_some_and(|a| a.as_secs() < ACTIVE_SECS);
    match (latest(checkpoint, "offsets"), latest(checkpoint, "commits")) {
        (Some(o), c) if Some(o) != c && active => format!("active: batch {o} in flight"),
        (Some(o), c) if Some(o) != c => format!("stopped: batch {o} planned, not committed"),
        _ if active => "active".to_string(),
        (None, _) => "no batch yet".to_string(),
        _ => "idle".to_string(),
    }
}

/// The output table of a query, from its progress or its `query.json`; a relative path that
/// does not exist from here is taken relative to the checkpoints folder's parent.
fn output_table(checkpoint: &Path, last: Option<&QueryProgress>) -> Option<PathBuf> {
    let from_progress = last.and_then(|p| {
        p.sink
            .description
            .strip_prefix("DeltaSink[")?
            .strip_suffix(']')
            .map(PathBuf::from)
    });
    let from_fingerprint = || {
        let text = std::fs::read_to_string(checkpoint.join(crate::checkpoint::fingerprint::FILE)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v.get("sink")?.as_str().map(PathBuf::from)
    };
    let path = from_progress.or_else(from_fingerprint)?;
    if path.is_absolute() || path.exists() {
        return Some(path);
    }
    match checkpoint.parent().and_then(Path::parent) {
        Some(root) if root.join(&path).exists() => Some(root.join(path)),
        _ => Some(path),
    }
}

/// The query id from `<checkpoint>/metadata`.
fn query_id(checkpoint: &Path) -> Option<String> {
    let text = std::fs::read_to_string(checkpoint.join("metadata")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("id")?.as_str().map(str::to_owned)
}

/// Whether `dir` looks like a query checkpoint.
pub fn is_checkpoint(dir: &Path) -> bool {
    dir.join("metadata").is_file() || dir.join("progress.jsonl").is_file()
}

/// What changes when a batch lands: `progress.jsonl`'s length and mtime.
type Stamp = Option<(u64, SystemTime)>;

fn stamp(checkpoint: &Path) -> Stamp {
    let m = std::fs::metadata(checkpoint.join("progress.jsonl")).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// The tables' part of a view (late rows, windows), which is slow to read.
#[derive(Debug, Clone, Default)]
struct Tables {
    late: Vec<LatePoint>,
    late_total: usize,
    windows: Vec<WindowSpan>,
    notes: Vec<String>,
}

/// Views already read, by checkpoint, kept while the checkpoint's progress is unchanged (the
/// live page asks every few seconds).
#[derive(Debug, Default)]
pub struct Cache {
    views: Mutex<HashMap<PathBuf, (Stamp, Arc<QueryView>)>>,
}

impl Cache {
    fn get(&self, dir: &Path, stamp: &Stamp) -> Option<Arc<QueryView>> {
        let views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        views.get(dir).filter(|(s, _)| s == stamp).map(|(_, v)| v.clone())
    }

    fn put(&self, dir: &Path, stamp: Stamp, view: Arc<QueryView>) {
        let mut views = self.views.lock().unwrap_or_else(|e| e.into_inner());
        views.insert(dir.to_path_buf(), (stamp, view));
    }
}

/// Reads one query's checkpoint (through `cache` when given).
pub async fn load_query(dir: &Path, cache: Option<&Cache>) -> QueryView {
    let stamp = stamp(dir);
    let cached = cache.and_then(|c| c.get(dir, &stamp));
    let mut view = match cached {
        Some(v) => (*v).clone(),
        None => {
            let v = read_query(dir).await;
            if let Some(c) = cache {
                c.put(dir, stamp, Arc::new(v.clone()));
            }
            v
        }
    };
    // The status moves with the clock, not with the files.
    view.status = status(dir);
    view
}

async fn read_query(dir: &Path) -> QueryView {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let mut notes = Vec::new();
    if !dir.join("metadata").is_file() {
        notes.push("no metadata file: not a query checkpoint, or one being created".to_string());
    }
    let progress_path = dir.join("progress.jsonl");
    let records = match std::fs::read_to_string(&progress_path) {
        Ok(text) => {
            let (records, n) = parse_progress(&text);
            notes.extend(n);
            records
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            notes.push(format!("progress.jsonl: {e}"));
            Vec::new()
        }
    };
    if records.is_empty() {
        notes.push("no batch has run yet: nothing to chart".to_string());
    }
    let output = output_table(dir, records.last());
    let tables = match &output {
        Some(out) => read_tables(out, &records).await,
        None => Tables::default(),
    };
    notes.extend(tables.notes);
    let mut batches: Vec<BatchPoint> = records.iter().map(batch_point).collect();
    set_late_thresholds(&mut batches, &tables.late);
    QueryView {
        name,
        id: query_id(dir),
        checkpoint: dir.display().to_string(),
        status: status(dir),
        output: output.map(|o| o.display().to_string()),
        batches,
        late_rows: tables.late,
        late_rows_total: tables.late_total,
        windows: tables.windows,
        notes,
    }
}

async fn read_tables(output: &Path, records: &[QueryProgress]) -> Tables {
    let mut t = Tables::default();
    let late_path = crate::late::late_table_path(output);
    if late_path.join("_delta_log").is_dir() {
        match crate::table::read_table(&late_path).await {
            Ok(data) => {
                let all = late_points(&data.rows);
                t.late_total = all.len();
                t.late = sample(all, MAX_LATE_POINTS);
            }
            Err(e) => t.notes.push(format!("late rows unavailable: {e}")),
        }
    }
    let windowed = records.iter().any(|p| !p.state_operators.is_empty());
    if windowed && output.join("_delta_log").is_dir() {
        match windows(output).await {
            Ok(w) => t.windows = w,
            Err(e) => t.notes.push(format!("windows unavailable: {e}")),
        }
    }
    t
}

/// Each batch's late-row threshold: the one its late rows record, else the previous batch's
/// watermark (Spark 3.5's `eventTimeWatermarkForLateEvents`).
pub fn set_late_thresholds(batches: &mut [BatchPoint], late: &[LatePoint]) {
    let recorded: HashMap<u64, i64> = late
        .iter()
        .filter_map(|l| Some((l.batch_id, l.watermark_ms?)))
        .collect();
    for i in 0..batches.len() {
        let previous = i
            .checked_sub(1)
            .map(|j| &batches[j])
            .filter(|p| p.batch_id + 1 == batches[i].batch_id)
            .and_then(|p| p.watermark_ms);
        let id = batches[i].batch_id;
        batches[i].late_threshold_ms = recorded.get(&id).copied().or(previous).filter(|ms| *ms != 0);
    }
}

/// Every `step`-th item so that at most `max` remain.
fn sample<T>(items: Vec<T>, max: usize) -> Vec<T> {
    if items.len() <= max {
        return items;
    }
    let step = items.len().div_ceil(max);
    items.into_iter().step_by(step).collect()
}

fn micros_to_ms(us: i64) -> i64 {
    us.div_euclid(1000)
}

/// The late-rows table's rows as points (sorted by batch, then event time).
pub fn late_points(rows: &RecordBatch) -> Vec<LatePoint> {
    let ts = |name: &str| {
        rows.column_by_name(name)
            .filter(|c| matches!(c.data_type(), DataType::Timestamp(TimeUnit::Microsecond, _)))
            .map(|c| c.as_primitive::<TimestampMicrosecondType>().clone())
    };
    let (Some(batch), Some(event), Some(wm)) = (
        rows.column_by_name("batch_id")
            .filter(|c| c.data_type() == &DataType::Int64)
            .map(|c| c.as_primitive::<Int64Type>().clone()),
        ts("event_time"),
        ts("watermark"),
    ) else {
        return Vec::new();
    };
    let op = rows
        .column_by_name("operator")
        .and_then(|c| c.as_string_opt::<i32>().cloned());
    let full = rows
        .column_by_name("fully_dropped")
        .and_then(|c| c.as_boolean_opt().cloned());
    let mut out: Vec<LatePoint> = (0..rows.num_rows())
        .filter(|r| batch.is_valid(*r))
        .map(|r| LatePoint {
            batch_id: batch.value(r).max(0) as u64,
            event_time_ms: event.is_valid(r).then(|| micros_to_ms(event.value(r))),
            watermark_ms: wm.is_valid(r).then(|| micros_to_ms(wm.value(r))),
            operator: op
                .as_ref()
                .filter(|o| o.is_valid(r))
                .map(|o| o.value(r).to_string())
                .unwrap_or_default(),
            fully_dropped: full.as_ref().is_some_and(|f| f.is_valid(r) && f.value(r)),
        })
        .collect();
    out.sort_by_key(|p| (p.batch_id, p.event_time_ms));
    out
}

/// The batch of each data file, from the Delta log: file name → the txn version (our batch id)
/// of the commit that added it.
fn file_batches(table: &Path) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let mut logs: Vec<PathBuf> = std::fs::read_dir(table.join("_delta_log"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    logs.sort();
    for log in logs {
        let Ok(text) = std::fs::read_to_string(&log) else {
            continue;
        };
        let actions: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let Some(batch) = actions
            .iter()
            .find_map(|a| a.get("txn")?.get("version")?.as_u64())
        else {
            continue;
        };
        for a in &actions {
            if let Some(path) = a.get("add").and_then(|a| a.get("path")).and_then(|p| p.as_str()) {
                let file = path.rsplit('/').next().unwrap_or(path);
                out.insert(file.to_string(), batch);
            }
        }
    }
    out
}

/// The distinct windows of the output table, each with the batch that last wrote it.
async fn windows(output: &Path) -> Result<Vec<WindowSpan>, crate::sink::SinkError> {
    let delta = |source| crate::sink::SinkError::delta(output.to_path_buf(), source);
    let table = crate::sink::open_existing(output).await?;
    let schema = table.snapshot().map_err(delta)?.snapshot().arrow_schema();
    if schema.index_of("window").is_err() {
        return Ok(Vec::new());
    }
    let batch_of = file_batches(output);
    let mut found: BTreeMap<(i64, i64), Option<u64>> = BTreeMap::new();
    for path in crate::sink::data_files(&table).await.map_err(delta)? {
        let batch = path.filename().and_then(|f| batch_of.get(f)).copied();
        let parts = crate::sink::read_data_files(&table, std::slice::from_ref(&path), &schema)
            .await
            .map_err(delta)?;
        for b in parts {
            for (s, e) in window_bounds(&b) {
                let slot = found.entry((s, e)).or_insert(batch);
                *slot = (*slot).max(batch);
            }
        }
    }
    Ok(found
        .into_iter()
        .map(|((start_ms, end_ms), batch_id)| WindowSpan {
            start_ms,
            end_ms,
            batch_id,
        })
        .collect())
}

/// `(start, end)` in epoch ms of each row's `window` struct column.
pub fn window_bounds(b: &RecordBatch) -> Vec<(i64, i64)> {
    let Some(w) = b.column_by_name("window").and_then(|c| c.as_struct_opt()) else {
        return Vec::new();
    };
    let part = |name: &str| {
        w.column_by_name(name)
            .filter(|c| matches!(c.data_type(), DataType::Timestamp(TimeUnit::Microsecond, _)))
            .map(|c| c.as_primitive::<TimestampMicrosecondType>().clone())
    };
    let (Some(s), Some(e)) = (part("start"), part("end")) else {
        return Vec::new();
    };
    (0..b.num_rows())
        .filter(|r| w.is_valid(*r) && s.is_valid(*r) && e.is_valid(*r))
        .map(|r| (micros_to_ms(s.value(r)), micros_to_ms(e.value(r))))
        .collect()
}

/// Reads every query under `dir` (a checkpoints folder).
pub async fn load_folder(dir: &Path, cache: Option<&Cache>) -> Folder {
    let path = dir.display().to_string();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            let problem = if e.kind() == std::io::ErrorKind::NotFound {
                format!("the checkpoint folder {path} does not exist (yet): no query has run here")
            } else {
                format!("the checkpoint folder {path} cannot be read: {e}")
            };
            return Folder {
                path,
                problem: Some(problem),
                queries: Vec::new(),
            };
        }
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && is_checkpoint(p))
        .collect();
    dirs.sort();
    let mut queries = Vec::new();
    for d in dirs {
        queries.push(load_query(&d, cache).await);
    }
    let problem = queries
        .is_empty()
        .then(|| format!("the checkpoint folder {path} holds no query checkpoint yet"));
    Folder {
        path,
        problem,
        queries,
    }
}

/// Reads what each path names: a query checkpoint, or a folder of them.
pub async fn load_paths(paths: &[PathBuf]) -> Vec<Folder> {
    let mut out = Vec::new();
    for p in paths {
        if is_checkpoint(p) {
            out.push(Folder {
                path: p.parent().map(|d| d.display().to_string()).unwrap_or_default(),
                problem: None,
                queries: vec![load_query(p, None).await],
            });
        } else {
            out.push(load_folder(p, None).await);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(batch: u64, wm: &str) -> String {
        serde_json::json!({
            "id": "q", "runId": "r", "name": "agg", "timestamp": "2026-11-24T10:00:00.000Z",
            "batchId": batch, "batchDuration": 12, "numInputRows": 10 * batch,
            "inputRowsPerSecond": 1.5, "processedRowsPerSecond": 2.5,
            "durationMs": {"addBatch": 7, "walCommit": 2, "triggerExecution": 12},
            "eventTime": {"min": "2026-11-24T10:00:00.000Z", "max": "2026-11-24T10:01:00.000Z",
                          "avg": "2026-11-24T10:00:30.000Z", "watermark": wm},
            "stateOperators": [{"operatorName": "stateStoreSave", "numRowsTotal": 4, "numRowsUpdated": 1,
                "numRowsRemoved": 0, "numRowsDroppedByWatermark": 2, "memoryUsedBytes": 100, "commitTimeMs": 1}],
            "sources": [], "sink": {"description": "DeltaSink[data/x]", "numOutputRows": 3,
                "tableVersion": 1, "skippedAlreadyCommitted": false},
            "numRejectedRows": 1, "numLateInputRows": 5
        })
        .to_string()
    }

    #[test]
    fn progress_lines_become_one_point_per_batch() {
        let text = [
            record(0, "1970-01-01T00:00:00.000Z"),
            record(1, "2026-11-24T09:51:00.000Z"),
        ]
        .join("\n");
        let (records, notes) = parse_progress(&text);
        assert!(notes.is_empty(), "{notes:?}");
        let points: Vec<BatchPoint> = records.iter().map(batch_point).collect();
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].watermark_ms, None, "the epoch is no watermark yet");
        assert_eq!(points[1].watermark_ms, parse_ms("2026-11-24T09:51:00.000Z"));
        assert_eq!(points[1].input_rows, 10);
        assert_eq!(points[1].state_rows, 4);
        assert_eq!(points[1].late_groups_dropped, 2);
        assert_eq!(points[1].late_input_rows, 5);
        assert_eq!(points[1].rejected_rows, 1);
        assert_eq!(points[1].duration_ms["addBatch"], 7);
        assert_eq!(points[1].event_time_max_ms, parse_ms("2026-11-24T10:01:00.000Z"));
        let mut points = points;
        set_late_thresholds(&mut points, &[]);
        assert_eq!(points[0].late_threshold_ms, None);
        assert_eq!(points[1].late_threshold_ms, None, "batch 0 had no watermark yet");
        let wm = parse_ms("2026-11-24T09:51:00.000Z");
        points.push(BatchPoint {
            batch_id: 2,
            ..points[1].clone()
        });
        set_late_thresholds(&mut points, &[]);
        assert_eq!(points[2].late_threshold_ms, wm, "the previous batch's watermark");
    }

    #[test]
    fn a_torn_last_line_is_skipped_with_a_note() {
        let full = record(1, "2026-11-24T09:51:00.000Z");
        let text = format!("{}\n{}\n{}", record(0, "x"), full, &full[..full.len() / 2]);
        let (records, notes) = parse_progress(&text);
        assert_eq!(records.len(), 2);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("last line is incomplete"), "{notes:?}");
    }

    #[test]
    fn a_batch_recorded_twice_keeps_its_newest_record() {
        let text = [
            record(0, "a"),
            record(1, "b"),
            record(1, "2026-11-24T09:52:00.000Z"),
        ]
        .join("\n");
        let (records, _) = parse_progress(&text);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].event_time["watermark"], "2026-11-24T09:52:00.000Z");
    }

    #[tokio::test]
    async fn a_missing_or_empty_folder_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let missing = load_folder(&dir.path().join("nope"), None).await;
        assert!(missing.problem.unwrap().contains("does not exist"));
        let empty = load_folder(dir.path(), None).await;
        assert!(empty.problem.unwrap().contains("no query checkpoint"));
        assert!(empty.queries.is_empty());
    }

    #[tokio::test]
    async fn a_query_with_no_batches_is_listed_with_a_note_beside_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("fresh");
        std::fs::create_dir_all(&fresh).unwrap();
        std::fs::write(fresh.join("metadata"), r#"{"id":"abc"}"#).unwrap();
        let ran = dir.path().join("ran");
        std::fs::create_dir_all(&ran).unwrap();
        std::fs::write(ran.join("metadata"), r#"{"id":"def"}"#).unwrap();
        let torn = format!("{}\n{{\"id\":", record(0, "1970-01-01T00:00:00.000Z"));
        std::fs::write(ran.join("progress.jsonl"), torn).unwrap();
        std::fs::create_dir_all(dir.path().join("not-a-query")).unwrap();
        let f = load_folder(dir.path(), None).await;
        assert_eq!(f.problem, None);
        let names: Vec<&str> = f.queries.iter().map(|q| q.name.as_str()).collect();
        assert_eq!(names, ["fresh", "ran"]);
        assert_eq!(f.queries[0].id.as_deref(), Some("abc"));
        assert!(f.queries[0].batches.is_empty());
        assert!(
            f.queries[0]
                .notes
                .iter()
                .any(|n| n.contains("no batch has run yet"))
        );
        assert_eq!(f.queries[1].batches.len(), 1);
        assert!(f.queries[1].notes.iter().any(|n| n.contains("incomplete")));
        let s = f.queries[1].summary();
        assert_eq!((s.last_batch, s.state_rows), (Some(0), Some(4)));
    }

    #[test]
    fn late_rows_are_read_from_the_late_schema() {
        let rows = vec![crate::operators::LateRow {
            operator: "stateStoreSave",
            row: "{}".into(),
            event_time_us: Some(5_000_000),
            windows_missed: vec![],
            fully_dropped: true,
        }];
        let b = crate::late::late_batch(3, 7_000, &rows).unwrap();
        let pts = late_points(&b);
        assert_eq!(
            pts,
            vec![LatePoint {
                batch_id: 3,
                event_time_ms: Some(5_000),
                watermark_ms: Some(7_000),
                operator: "stateStoreSave".into(),
                fully_dropped: true
            }]
        );
    }
}
