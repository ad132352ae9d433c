//! Progress records and status with Spark's names, and the running-query handle.

use std::time::Duration;

use microbatch::execution::{StreamingQuery, Trigger};
use microbatch::progress::ProgressLog;
use microbatch::query::OutputMode;

use crate::common::*;
use crate::stateful::{config, lines, windowed_count};

#[tokio::test]
async fn progress_names_and_values_on_a_known_input() {
    let mut ws = Workspace::new();
    ws.add_file("f0.json", &lines("a", &[10, 11, 12, 13, 14, 15]));
    ws.add_file("f1.json", &(lines("b", &[25, 10]) + "\nnot json"));
    let mut q = StreamingQuery::start(config(&ws, windowed_count(5, 5, 10, OutputMode::Append), 1))
        .await
        .unwrap();
    let mut all = Vec::new();
    q.run(Trigger::AvailableNow, |p| {
        all.push(serde_json::to_value(p).unwrap())
    })
    .await
    .unwrap();
    assert_eq!(all.len(), 3, "two data batches and the trailing no-data batch");
    let b1 = &all[1];
    for key in [
        "id",
        "runId",
        "name",
        "timestamp",
        "batchId",
        "batchDuration",
        "numInputRows",
        "inputRowsPerSecond",
        "processedRowsPerSecond",
        "durationMs",
        "eventTime",
        "stateOperators",
        "sources",
        "sink",
    ] {
        assert!(b1.get(key).is_some(), "missing {key}: {b1}");
    }
    assert_eq!(b1["id"], q.id());
    assert_eq!(b1["name"], "raw");
    assert_eq!(b1["batchId"], 1);
    assert_eq!(
        b1["timestamp"], "2026-11-24T10:00:00.000Z",
        "the manual clock's time"
    );
    assert_eq!(b1["numInputRows"], 2);
    assert_eq!(b1["numRejectedRows"], 1);
    assert_eq!(
        b1["eventTime"]["watermark"], "1970-01-01T00:00:05.000Z",
        "batch 0 saw max 15 s"
    );
    assert_eq!(b1["eventTime"]["min"], "1970-01-01T00:00:10.000Z");
    assert_eq!(b1["eventTime"]["max"], "1970-01-01T00:00:25.000Z");
    assert_eq!(b1["eventTime"]["avg"], "1970-01-01T00:00:17.500Z");
    let s = &b1["stateOperators"][0];
    assert_eq!(s["operatorName"], "stateStoreSave");
    assert_eq!(s["numRowsTotal"], 3);
    assert_eq!(s["numRowsUpdated"], 2);
    assert_eq!(
        s["numRowsDroppedByWatermark"], 0,
        "10 s is late only against watermark 15 s"
    );
    assert!(s["memoryUsedBytes"].as_u64().unwrap() > 0);
    let src = &b1["sources"][0];
    assert_eq!(src["startOffset"], serde_json::json!({"logOffset": 0}));
    assert_eq!(src["endOffset"], serde_json::json!({"logOffset": 1}));
    assert!(
        src["description"]
            .as_str()
            .unwrap()
            .starts_with("FileStreamSource[")
    );
    assert!(
        b1["sink"]["description"]
            .as_str()
            .unwrap()
            .starts_with("DeltaSink[")
    );
    assert!(b1["durationMs"]["triggerExecution"].is_u64());
    assert!(b1["durationMs"]["addBatch"].is_u64());
    let b2 = &all[2];
    assert_eq!(b2["numInputRows"], 0);
    assert_eq!(b2["eventTime"]["watermark"], "1970-01-01T00:00:15.000Z");
    assert!(
        b2["eventTime"].get("min").is_none(),
        "no rows: no event-time stats"
    );
    assert_eq!(
        b2["sources"][0]["startOffset"], b2["sources"][0]["endOffset"],
        "a no-data batch reads nothing"
    );
    assert_eq!(b2["stateOperators"][0]["numRowsRemoved"], 1);
    assert_eq!(b2["sink"]["numOutputRows"], 1);

    // Kept in the checkpoint and read back after a restart.
    drop(q);
    let log = ProgressLog::open(&ws.checkpoint().join("progress.jsonl"));
    assert_eq!(log.recent().count(), 3);
    let q = StreamingQuery::start(config(&ws, windowed_count(5, 5, 10, OutputMode::Append), 1))
        .await
        .unwrap();
    assert_eq!(q.last_progress().map(|p| p.batch_id), Some(2));
    assert_eq!(q.status().message, "Initializing sources");
}

#[tokio::test]
async fn the_progress_log_stays_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("progress.jsonl");
    let mut ws = Workspace::new();
    ws.add_file("f.json", &lines("a", &[1]));
    let mut q = ws.start(1).await;
    q.run(Trigger::AvailableNow, |_| {}).await.unwrap();
    let p = q.last_progress().unwrap().clone();
    let mut log = ProgressLog::open(&path);
    for i in 0..(3 * ProgressLog::KEEP as u64) {
        let mut p = p.clone();
        p.batch_id = i;
        log.push(p).unwrap();
    }
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    assert!(lines < 2 * ProgressLog::KEEP, "{lines} lines");
    let reread = ProgressLog::open(&path);
    assert_eq!(reread.recent().count(), ProgressLog::KEEP);
    assert_eq!(reread.last().unwrap().batch_id, 3 * ProgressLog::KEEP as u64 - 1);
}

#[tokio::test]
async fn a_running_query_reports_status_and_stops_cleanly() {
    let mut ws = Workspace::new();
    ws.add_file("a.json", &lines("a", &[1, 2]));
    let q = ws.start(1).await;
    let handle = q.spawn(Trigger::ProcessingTime { interval_ms: 1000 }, |_| {});
    // The first trigger runs at once; then the query waits on the manual clock.
    let mut waited = 0;
    while handle.last_progress().is_none() && waited < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(handle.last_progress().unwrap().num_input_rows, 2);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let st = handle.status();
    assert_eq!(st.message, "Waiting for next trigger");
    assert!(!st.is_trigger_active);
    // A new file and a clock tick: the next trigger picks it up.
    ws.add_file("b.json", &lines("b", &[3]));
    ws.clock.advance(1000);
    let mut waited = 0;
    while handle.recent_progress().len() < 2 && waited < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(handle.recent_progress()[1].num_input_rows, 1);
    handle.stop();
    let (q, batches) = handle.await_termination().await.unwrap();
    assert_eq!(batches, 2);
    assert_eq!(q.status().message, "Stopped");
    assert_eq!(table_rows(&ws.events_table()).await.len(), 3);
}
