//! Seed Examples 2 and 3: watermarks, windows, state and output modes, checked against cases
//! computed by hand from Spark's rules (the way Spark's own EventTimeWatermarkSuite does).

use std::path::PathBuf;

use deltalake::arrow::array::{AsArray, RecordBatch};
use deltalake::arrow::datatypes::{Int64Type, TimestampMicrosecondType};
use microbatch::execution::{QueryConfig, StreamingQuery};
use microbatch::progress::QueryProgress;
use microbatch::query::{OutputMode, Query, count};

use crate::common::*;

/// A windowed count over `window` seconds (sliding by `slide`), watermark `delay` seconds,
/// no grouping key beyond the window.
pub fn windowed_count(window: u32, slide: u32, delay: u32, mode: OutputMode) -> Query {
    Query::events()
        .with_watermark("timestamp", &format!("{delay} seconds"))
        .unwrap()
        .group_by_window(
            "timestamp",
            &format!("{window} seconds"),
            Some(&format!("{slide} seconds")),
            None,
            &[],
        )
        .unwrap()
        .agg(vec![count()])
        .output_mode(mode)
}

/// An event at `secs` seconds after the epoch.
pub fn at(id: &str, secs: i64) -> String {
    format!(
        r#"{{"event_id":"{id}","timestamp":"{}","user_id":1,"event_type":"click","value":1.0}}"#,
        microbatch::event::format_timestamp(secs * 1_000_000)
    )
}

pub fn lines(ids: &str, secs: &[i64]) -> String {
    secs.iter()
        .enumerate()
        .map(|(i, s)| at(&format!("{ids}{i}"), *s))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn config(ws: &Workspace, query: Query, max_files: usize) -> QueryConfig {
    let mut c = ws.config(max_files);
    c.output = ws.dir.path().join("data/out");
    c.query = query;
    c
}

pub fn out_table(ws: &Workspace) -> PathBuf {
    ws.dir.path().join("data/out")
}

/// (window start s, window end s, count) rows of a windowed count result.
pub fn counts(b: &RecordBatch) -> Vec<(i64, i64, i64)> {
    let w = b.column(0).as_struct();
    let s = w.column(0).as_primitive::<TimestampMicrosecondType>();
    let e = w.column(1).as_primitive::<TimestampMicrosecondType>();
    let c = b.column(b.num_columns() - 1).as_primitive::<Int64Type>();
    let mut v: Vec<_> = (0..b.num_rows())
        .map(|i| (s.value(i) / 1_000_000, e.value(i) / 1_000_000, c.value(i)))
        .collect();
    v.sort();
    v
}

/// Runs triggers until idle (no-data batches included); each batch's progress and output.
pub async fn until_idle(q: &mut StreamingQuery) -> Vec<(QueryProgress, RecordBatch)> {
    let mut out = Vec::new();
    while let Some(p) = q.run_once().await.unwrap() {
        out.push((p, q.last_output().unwrap().unwrap()));
    }
    out
}

fn state_op(p: &QueryProgress) -> &microbatch::progress::StateOperatorProgress {
    &p.state_operators[0]
}

/// Spark's EventTimeWatermarkSuite "append mode", file by file.
#[tokio::test]
async fn append_mode_emits_a_window_once_when_the_watermark_passes_its_end() {
    let mut ws = Workspace::new();
    let mut q = StreamingQuery::start(config(&ws, windowed_count(5, 5, 10, OutputMode::Append), 1))
        .await
        .unwrap();

    ws.add_file("f0.json", &lines("a", &[10, 11, 12, 13, 14, 15]));
    let b = until_idle(&mut q).await;
    // Data batch 0, then a no-data batch 1 because the watermark moved 0 → 5 s.
    assert_eq!(b.len(), 2);
    assert!(
        b.iter().all(|(_, rows)| rows.num_rows() == 0),
        "nothing closed yet"
    );
    assert_eq!(state_op(&b[0].0).num_rows_total, 2);
    assert_eq!(b[1].0.num_input_rows, 0);
    assert_eq!(b[1].0.event_time["watermark"], "1970-01-01T00:00:05.000Z");

    ws.add_file("f1.json", &lines("b", &[25]));
    let b = until_idle(&mut q).await;
    assert_eq!(
        b.len(),
        2,
        "data batch, then the no-data batch that evicts at watermark 15 s"
    );
    assert_eq!(counts(&b[0].1), []);
    assert_eq!(
        counts(&b[1].1),
        [(10, 15, 5)],
        "[10,15) closes exactly at watermark 15 (inclusive)"
    );
    assert_eq!(state_op(&b[1].0).num_rows_total, 2);
    assert_eq!(state_op(&b[1].0).num_rows_removed, 1);

    ws.add_file("f2.json", &lines("c", &[10]));
    let b = until_idle(&mut q).await;
    assert_eq!(b.len(), 1, "the watermark did not move: no no-data batch");
    assert_eq!(counts(&b[0].1), []);
    assert_eq!(
        state_op(&b[0].0).num_rows_dropped_by_watermark,
        1,
        "10 s is in [10,15), closed"
    );
    assert_eq!(state_op(&b[0].0).num_rows_total, 2);

    let t = microbatch::table::read_table(&out_table(&ws)).await.unwrap();
    assert_eq!(counts(&t.rows), [(10, 15, 5)]);
    assert_eq!(t.version, 5, "one commit per batch, no-data batches included");
}

/// Spark's "update mode": every touched window is emitted, closed ones evicted silently.
#[tokio::test]
async fn update_mode_emits_touched_windows_and_upserts_them() {
    let mut ws = Workspace::new();
    let mut q = StreamingQuery::start(config(&ws, windowed_count(5, 5, 10, OutputMode::Update), 1))
        .await
        .unwrap();
    ws.add_file("f0.json", &lines("a", &[10, 11, 12, 13, 14, 15]));
    let b = until_idle(&mut q).await;
    assert_eq!(counts(&b[0].1), [(10, 15, 5), (15, 20, 1)]);
    ws.add_file("f1.json", &lines("b", &[25, 16]));
    let b = until_idle(&mut q).await;
    assert_eq!(counts(&b[0].1), [(15, 20, 2), (25, 30, 1)]);
    assert_eq!(
        counts(&b[1].1),
        [],
        "the no-data batch evicts [10,15) without output"
    );
    assert_eq!(state_op(&b[1].0).num_rows_removed, 1);
    assert_eq!(state_op(&b[1].0).num_rows_total, 2);
    ws.add_file("f2.json", &lines("c", &[10, 26]));
    let b = until_idle(&mut q).await;
    assert_eq!(counts(&b[0].1), [(25, 30, 2)]);
    assert_eq!(state_op(&b[0].0).num_rows_dropped_by_watermark, 1);

    // The table is upserted: one row per window, the latest value.
    let t = microbatch::table::read_table(&out_table(&ws)).await.unwrap();
    assert_eq!(counts(&t.rows), [(10, 15, 5), (15, 20, 2), (25, 30, 2)]);
    // ... at every version.
    for v in 1..=t.version {
        let rows = microbatch::table::read_table_at(&out_table(&ws), Some(v))
            .await
            .unwrap()
            .rows;
        let c = counts(&rows);
        let mut windows: Vec<_> = c.iter().map(|r| (r.0, r.1)).collect();
        windows.dedup();
        assert_eq!(windows.len(), c.len(), "version {v}: one row per window: {c:?}");
    }
    let log = std::fs::read_to_string(out_table(&ws).join("_delta_log/00000000000000000003.json")).unwrap();
    assert!(
        log.contains(r#""outputMode":"Update""#) && log.contains(r#""remove""#),
        "{log}"
    );
}

/// Complete mode keeps everything, ignores the watermark, and replaces the table each batch.
#[tokio::test]
async fn complete_mode_replaces_the_table_and_never_drops_or_evicts() {
    let mut ws = Workspace::new();
    let mut q = StreamingQuery::start(config(&ws, windowed_count(5, 5, 10, OutputMode::Complete), 1))
        .await
        .unwrap();
    ws.add_file("f0.json", &lines("a", &[10, 11, 12, 13, 14, 15]));
    ws.add_file("f1.json", &lines("b", &[25]));
    ws.add_file("f2.json", &lines("c", &[10]));
    let b = until_idle(&mut q).await;
    assert_eq!(b.len(), 3, "complete mode runs no no-data batch");
    assert_eq!(
        counts(&b[2].1),
        [(10, 15, 6), (15, 20, 1), (25, 30, 1)],
        "the late 10 s still counts"
    );
    assert_eq!(state_op(&b[2].0).num_rows_dropped_by_watermark, 0);
    let t = microbatch::table::read_table(&out_table(&ws)).await.unwrap();
    assert_eq!(counts(&t.rows), [(10, 15, 6), (15, 20, 1), (25, 30, 1)]);
    let v1 = microbatch::table::read_table_at(&out_table(&ws), Some(1))
        .await
        .unwrap();
    assert_eq!(
        counts(&v1.rows),
        [(10, 15, 5), (15, 20, 1)],
        "version 1 held batch 0's whole result"
    );
}

/// One event, several sliding windows: some lost to lateness, others kept (R7.7).
#[tokio::test]
async fn a_sliding_window_event_loses_only_its_closed_windows() {
    let mut ws = Workspace::new();
    let mut q = StreamingQuery::start(config(&ws, windowed_count(10, 5, 10, OutputMode::Append), 1))
        .await
        .unwrap();
    ws.add_file("f0.json", &lines("a", &[35]));
    until_idle(&mut q).await; // watermark 25 s, applied by the no-data batch
    ws.add_file("f1.json", &lines("b", &[22]));
    let b = until_idle(&mut q).await;
    // 22 s is in [15,25) (closed: 25 <= 25) and [20,30) (open).
    assert_eq!(state_op(&b[0].0).num_rows_dropped_by_watermark, 1);
    ws.add_file("f2.json", &lines("c", &[60]));
    let b = until_idle(&mut q).await;
    let emitted: Vec<_> = b.iter().flat_map(|(_, r)| counts(r)).collect();
    assert!(emitted.contains(&(20, 30, 1)), "{emitted:?}");
    assert!(!emitted.iter().any(|r| r.0 == 15), "{emitted:?}");
}

/// Back-to-back data batches: the late filter uses the previous batch's watermark, eviction the
/// current one, so a row between the two is aggregated and emitted in the same batch (R7.5).
#[tokio::test]
async fn late_filter_lags_eviction_by_one_batch() {
    let mut ws = Workspace::new();
    ws.add_file("f0.json", &lines("a", &[30]));
    ws.add_file("f1.json", &lines("b", &[12, 31]));
    let mut q = StreamingQuery::start(config(&ws, windowed_count(5, 5, 10, OutputMode::Append), 1))
        .await
        .unwrap();
    let b = until_idle(&mut q).await;
    // Batch 1 runs with watermark 20 s but filters late input with batch 0's, 0 s: the event at
    // 12 s (window [10,15), below 20 s) is accepted, then emitted at once.
    assert_eq!(b[1].0.event_time["watermark"], "1970-01-01T00:00:20.000Z");
    assert_eq!(state_op(&b[1].0).num_rows_dropped_by_watermark, 0);
    assert_eq!(counts(&b[1].1), [(10, 15, 1)]);
}

/// The watermark survives a restart, and an eviction that was due when the query stopped runs
/// at once. (Spark would wait for new data, R4.2a; we differ on purpose so that results do not
/// depend on where a run was stopped.)
#[tokio::test]
async fn restart_restores_the_watermark_and_runs_a_pending_eviction() {
    let mut ws = Workspace::new();
    ws.add_file("f0.json", &lines("a", &[10, 11]));
    ws.add_file("f1.json", &lines("b", &[40]));
    {
        let mut q = StreamingQuery::start(config(&ws, windowed_count(5, 5, 10, OutputMode::Append), 1))
            .await
            .unwrap();
        // Run the two data batches only, stopping before the no-data batch.
        q.run_once().await.unwrap().unwrap();
        q.run_once().await.unwrap().unwrap();
        assert_eq!(q.watermark_ms(), 30_000);
    }
    let mut q = StreamingQuery::start(config(&ws, windowed_count(5, 5, 10, OutputMode::Append), 1))
        .await
        .unwrap();
    assert_eq!(q.watermark_ms(), 30_000, "restored from commits/1");
    let b = until_idle(&mut q).await;
    assert_eq!(b.len(), 1, "the due no-data batch, and nothing more");
    assert_eq!(b[0].0.num_input_rows, 0);
    assert_eq!(b[0].0.event_time["watermark"], "1970-01-01T00:00:30.000Z");
    assert_eq!(
        counts(&b[0].1),
        [(10, 15, 2)],
        "the pending window is emitted after the restart"
    );
}

#[tokio::test]
async fn invalid_queries_fail_at_start_with_sparks_reason() {
    let ws = Workspace::new();
    let q = Query::events()
        .group_by_window("timestamp", "5 seconds", None, None, &[])
        .unwrap()
        .agg(vec![count()])
        .output_mode(OutputMode::Append);
    let err = StreamingQuery::start(config(&ws, q, 1)).await.unwrap_err();
    assert!(
        err.to_string().contains("Append output mode not supported"),
        "{err}"
    );
    let err = StreamingQuery::start(config(&ws, Query::events().output_mode(OutputMode::Complete), 1))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("Complete output mode not supported"),
        "{err}"
    );
}

/// Update mode over a long run: each batch's upsert rewrites at most the files of two window
/// buckets, however long the history, and every version reads as one row per key.
#[tokio::test]
async fn update_mode_rewrites_a_bounded_number_of_files() {
    use microbatch::query::SeedQuery;
    let files = crate::model::files(3, 40, 30, 0.1); // 40 files, 3 minutes apart: 2 hours
    let mut ws = Workspace::new();
    for (i, f) in files.iter().enumerate() {
        ws.add_events(&format!("batch_{i}.json"), f);
    }
    let table = ws.dir.path().join("data/event_aggregates");
    let mut cfg = ws.config(1);
    cfg.output = table.clone();
    cfg.query = SeedQuery::Aggregations.query(&ws.dir.path().join("data"));
    let mut q = StreamingQuery::start(cfg).await.unwrap();
    q.run(microbatch::execution::Trigger::AvailableNow, |_| {})
        .await
        .unwrap();
    let last = microbatch::table::read_table(&table).await.unwrap().version;
    assert!(last >= 40);
    for v in 1..=last {
        let log = std::fs::read_to_string(table.join(format!("_delta_log/{v:020}.json"))).unwrap();
        let removes = log.lines().filter(|l| l.starts_with("{\"remove\"")).count();
        assert!(removes <= 2, "version {v} rewrote {removes} files");
        let t = microbatch::table::read_table_at(&table, Some(v))
            .await
            .unwrap()
            .rows;
        let keys: std::collections::BTreeSet<(String, String)> = (0..t.num_rows())
            .map(|r| {
                (
                    microbatch::table::cell(t.column(0), r),
                    microbatch::table::cell(t.column(1), r),
                )
            })
            .collect();
        assert_eq!(
            keys.len(),
            t.num_rows(),
            "version {v}: one row per (window, event_type)"
        );
    }
}

/// `fsync` on changes how the durable writes are made, not what they hold: the same files give
/// the same emitted windows, late rows and state, and a restart goes on from the fsynced
/// checkpoint.
#[tokio::test]
async fn fsync_on_gives_the_same_results_and_restarts() {
    let mut results = Vec::new();
    for fsync in [false, true] {
        let mut ws = Workspace::new();
        for (i, secs) in [[30, 31, 5], [12, 40, 41], [70, 2, 71]].iter().enumerate() {
            ws.add_file(&format!("f{i}.json"), &lines(&format!("f{i}x"), secs));
        }
        let query = || windowed_count(10, 5, 10, OutputMode::Append).fsync(fsync);
        let mut q = StreamingQuery::start(config(&ws, query(), 1)).await.unwrap();
        let mut batches = until_idle(&mut q).await;
        drop(q);
        ws.add_file("f9.json", &lines("z", &[200]));
        let mut q = StreamingQuery::start(config(&ws, query(), 1)).await.unwrap();
        batches.extend(until_idle(&mut q).await);
        let emitted: Vec<_> = batches.iter().flat_map(|(_, r)| counts(r)).collect();
        let late: u64 = batches.iter().map(|(p, _)| p.num_late_input_rows).sum();
        let state: Vec<_> = batches.iter().map(|(p, _)| state_op(p).num_rows_total).collect();
        results.push((emitted, late, state));
    }
    assert!(!results[0].0.is_empty() && results[0].1 > 0, "{:?}", results[0]);
    assert_eq!(results[0], results[1]);
}
