//! Conformance with real Apache Spark 3.5.9: the fixtures under `tests/fixtures/spark/` were
//! recorded by `shared/spark-oracle` (see the fixture's README for the command); the engine must
//! produce the same micro-batches from the same files.

use std::fs;
use std::path::Path;

use microbatch::query::SeedQuery;
use serde_json::Value;

use crate::model::{ModelBatch, ModelRow, assert_same, run_engine_texts};

fn fixture() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/spark/seed7"))
}

fn inputs() -> Vec<String> {
    let dir = fixture().join("input");
    let mut names: Vec<(u64, String)> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| {
            let i = n.strip_prefix("batch_")?.strip_suffix(".json")?.parse().ok()?;
            Some((i, n))
        })
        .collect();
    names.sort();
    names
        .iter()
        .map(|(_, n)| fs::read_to_string(dir.join(n)).unwrap())
        .collect()
}

fn jsonl(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn micros(v: &Value) -> i64 {
    microbatch::event::parse_timestamp(v.as_str().unwrap()).unwrap()
}

fn spark_row(query: SeedQuery, v: &Value) -> ModelRow {
    let (key, count, avg) = match query {
        SeedQuery::Aggregations => (
            v["event_type"].as_str().unwrap().to_string(),
            v["event_count"].as_i64().unwrap(),
            Some(v["avg_value"].as_f64().unwrap()),
        ),
        _ => (v["user_id"].to_string(), v["count"].as_i64().unwrap(), None),
    };
    ModelRow {
        start: micros(&v["window_start"]),
        end: micros(&v["window_end"]),
        key,
        count,
        avg,
    }
}

fn spark_batches(query: SeedQuery, dir: &Path) -> Vec<ModelBatch> {
    let rows = jsonl(&dir.join("batches.jsonl"));
    jsonl(&dir.join("progress.jsonl"))
        .iter()
        .map(|p| {
            let id = p["batch_id"].as_i64().unwrap();
            ModelBatch {
                watermark_ms: p["watermark_ms"].as_i64().unwrap(),
                rows: rows
                    .iter()
                    .filter(|r| r["batch_id"].as_i64() == Some(id))
                    .map(|r| spark_row(query, r))
                    .collect(),
                dropped: p["num_rows_dropped_by_watermark"].as_u64().unwrap(),
                state_rows: p["state"][0]["num_rows_total"].as_u64().unwrap(),
            }
        })
        .collect()
}

async fn conforms(query: SeedQuery, max_files: usize) {
    let dir = fixture().join(format!("mf{max_files}")).join(match query {
        SeedQuery::Aggregations => "aggregations",
        _ => "late_data",
    });
    let spark = spark_batches(query, &dir);
    assert!(
        spark.len() > 3 && spark.iter().any(|b| b.dropped > 0),
        "the fixture exercises lateness"
    );
    let (engine, final_rows) = run_engine_texts(query, &inputs(), max_files).await;
    let ctx = format!("{query:?} at maxFilesPerTrigger {max_files} vs Spark 3.5.9");
    assert_same(query, &engine, &spark, &ctx);
    // The final table equals Spark's final state (update mode applied as upserts).
    let expected: Vec<ModelRow> = jsonl(&dir.join("final.jsonl"))
        .iter()
        .map(|r| spark_row(query, r))
        .collect();
    let as_batch = |rows: Vec<ModelRow>| {
        vec![ModelBatch {
            watermark_ms: 0,
            rows,
            dropped: 0,
            state_rows: 0,
        }]
    };
    assert_same(
        query,
        &as_batch(final_rows),
        &as_batch(expected),
        &format!("{ctx}: final table"),
    );
}

#[tokio::test]
async fn aggregations_match_spark_one_file_per_trigger() {
    conforms(SeedQuery::Aggregations, 1).await;
}

#[tokio::test]
async fn aggregations_match_spark_three_files_per_trigger() {
    conforms(SeedQuery::Aggregations, 3).await;
}

#[tokio::test]
async fn late_data_matches_spark_one_file_per_trigger() {
    conforms(SeedQuery::LateData, 1).await;
}

#[tokio::test]
async fn late_data_matches_spark_three_files_per_trigger() {
    conforms(SeedQuery::LateData, 3).await;
}
