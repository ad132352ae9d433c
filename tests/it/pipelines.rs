//! Conformance with real Spark 3.5.9 for pipelines beyond the seed: each fixture under
//! `tests/fixtures/spark/pipelines/<name>/` holds what Spark emitted batch by batch
//! (`record.py` made them; its README names the command) and `query.toml`, the same pipeline as
//! a microbatch query file. The engine must emit the same rows in the same batches, with the
//! same watermarks, late drops and state sizes, under Spark's output column names, and leave
//! the same final table.
//!
//! One difference is not compared on purpose: Spark pushes a filter into its JSON reader, and
//! rows removed there are not counted in `numInputRows`; microbatch counts every row it read.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{
    DataType, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use microbatch::clock::{ManualClock, SharedClock};
use microbatch::execution::{QueryConfig, StreamingQuery};
use microbatch::query_file::QueryFile;
use serde_json::Value;

use crate::common::append_as;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spark/pipelines")
}

fn jsonl(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A cell as the fixtures write it: timestamps `YYYY-MM-DDTHH:MM:SS.ffffff`, decimals as
/// strings with their scale, structs as objects.
fn cell(col: &ArrayRef, row: usize) -> Value {
    if col.is_null(row) {
        return Value::Null;
    }
    match col.data_type() {
        DataType::Utf8 => col.as_string::<i32>().value(row).into(),
        DataType::LargeUtf8 => col.as_string::<i64>().value(row).into(),
        DataType::Boolean => col.as_boolean().value(row).into(),
        DataType::Int8 => col.as_primitive::<Int8Type>().value(row).into(),
        DataType::Int16 => col.as_primitive::<Int16Type>().value(row).into(),
        DataType::Int32 => col.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => col.as_primitive::<Int64Type>().value(row).into(),
        DataType::Float64 => col.as_primitive::<Float64Type>().value(row).into(),
        DataType::Timestamp(..) => {
            microbatch::event::format_timestamp(col.as_primitive::<TimestampMicrosecondType>().value(row))
                .into()
        }
        DataType::Decimal128(_, scale) => {
            let v = col
                .as_primitive::<deltalake::arrow::datatypes::Decimal128Type>()
                .value(row);
            let scale = *scale as u32;
            let sign = if v < 0 { "-" } else { "" };
            let a = v.unsigned_abs();
            let p = 10u128.pow(scale);
            if scale == 0 {
                format!("{sign}{a}").into()
            } else {
                format!("{sign}{}.{:0width$}", a / p, a % p, width = scale as usize).into()
            }
        }
        DataType::Struct(fields) => {
            let s = col.as_struct();
            let mut obj = serde_json::Map::new();
            for (i, f) in fields.iter().enumerate() {
                obj.insert(f.name().clone(), cell(s.column(i), row));
            }
            Value::Object(obj)
        }
        other => panic!("no fixture encoding for {other}"),
    }
}

fn rows(b: &RecordBatch) -> Vec<Value> {
    let schema = b.schema();
    (0..b.num_rows())
        .map(|r| {
            let mut obj = serde_json::Map::new();
            for (i, f) in schema.fields().iter().enumerate() {
                obj.insert(f.name().clone(), cell(b.column(i), r));
            }
            Value::Object(obj)
        })
        .collect()
}

/// Equal, doubles within a relative 1e-9.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
            _ => x == y,
        },
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Multiset equality of rows: a diff both ways, empty when equal.
fn diff(expected: &[Value], actual: &[Value]) -> String {
    let mut left: Vec<&Value> = actual.iter().collect();
    let mut missing = Vec::new();
    for e in expected {
        match left.iter().position(|a| same(e, a)) {
            Some(i) => {
                left.remove(i);
            }
            None => missing.push(e.to_string()),
        }
    }
    if missing.is_empty() && left.is_empty() {
        return String::new();
    }
    let mut s = String::new();
    for m in missing {
        s.push_str(&format!("  - {m}\n"));
    }
    for l in left {
        s.push_str(&format!("  + {l}\n"));
    }
    s
}

/// The fixture's static tables, written as Delta tables under `root/static/`.
async fn write_static_tables(fixture: &Path, root: &Path) {
    let dir = fixture.join("static");
    let Ok(entries) = fs::read_dir(&dir) else { return };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(".jsonl").map(str::to_string))
        .collect();
    names.sort();
    for name in names {
        let ddl = fs::read_to_string(dir.join(format!("{name}.schema.ddl"))).unwrap();
        let schema = microbatch::schema::parse_schema(ddl.trim()).unwrap();
        let decoder = microbatch::source::decode::Decoder::new(schema, Default::default());
        let bytes = fs::read(dir.join(format!("{name}.jsonl"))).unwrap();
        let rows = decoder
            .decode_table("static", &bytes)
            .unwrap_or_else(|(r, n)| panic!("{name}: {n} bad line(s), first: {r:?}"));
        append_as(&root.join("static").join(&name), "fixture", &rows).await;
    }
}

async fn replay(name: &str) {
    let fixture = fixtures().join(name);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Spark took the files in mtime order, set in name order by record.py.
    let mut files: Vec<String> = fs::read_dir(fixture.join("input"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    fs::create_dir_all(root.join("input")).unwrap();
    for (i, f) in files.iter().enumerate() {
        let bytes = fs::read(fixture.join("input").join(f)).unwrap();
        microbatch::generator::write_input_file(
            &root.join("input"),
            f,
            &bytes,
            1_700_000_000_000 + i as i64 * 10_000,
        )
        .unwrap();
    }
    write_static_tables(&fixture, root).await;
    let q = QueryFile::load_in(&fixture.join("query.toml"), root).unwrap_or_else(|e| panic!("{e}"));
    let clock = ManualClock::new(1_700_000_000_000);
    let cfg = QueryConfig {
        name: q.name,
        input: q.input,
        output: q.output.clone(),
        checkpoint: q.checkpoint,
        max_files_per_trigger: q.max_files_per_trigger,
        query: q.query,
        clock: Arc::new(clock.clone()) as SharedClock,
    };
    let mut query = StreamingQuery::start(cfg)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));

    let schema: Value =
        serde_json::from_str(&fs::read_to_string(fixture.join("schema.json")).unwrap()).unwrap();
    let columns: Vec<String> = query
        .output_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let spark_columns: Vec<String> = schema["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(columns, spark_columns, "{name}: output column names");

    let mut expected: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    for mut r in jsonl(&fixture.join("batches.jsonl")) {
        let id = r["batch_id"].as_u64().unwrap();
        r.as_object_mut().unwrap().remove("batch_id");
        expected.entry(id).or_default().push(r);
    }
    let progress = jsonl(&fixture.join("progress.jsonl"));
    let mut problems = Vec::new();
    let mut batch = 0u64;
    while let Some(p) = query.run_once().await.unwrap_or_else(|e| panic!("{name}: {e}")) {
        clock.advance(1000);
        let Some(sp) = progress.get(batch as usize) else {
            problems.push(format!("batch {batch}: Spark ran no such batch"));
            batch += 1;
            continue;
        };
        let out = query
            .last_output()
            .unwrap()
            .as_ref()
            .map(rows)
            .unwrap_or_default();
        let d = diff(expected.get(&batch).map_or(&[][..], Vec::as_slice), &out);
        if !d.is_empty() {
            problems.push(format!("batch {batch} rows (- Spark, + microbatch):\n{d}"));
        }
        if let Some(w) = sp["watermark"].as_str() {
            let ours = p.event_time.get("watermark").cloned().unwrap_or_default();
            let ms = microbatch::event::parse_timestamp(w).unwrap() / 1000;
            if ours != microbatch::progress::format_ms(ms) {
                problems.push(format!("batch {batch}: watermark {ours}, Spark {w}"));
            }
        }
        if let Some(states) = sp["state"].as_array() {
            for (i, s) in states.iter().enumerate() {
                let ours = p.state_operators.get(i);
                let total = ours.map(|o| o.num_rows_total);
                let dropped = ours.map(|o| o.num_rows_dropped_by_watermark);
                if total != s["num_rows_total"].as_u64()
                    || dropped != s["num_rows_dropped_by_watermark"].as_u64()
                {
                    problems.push(format!(
                        "batch {batch}: state operator {i}: rows {total:?} dropped {dropped:?}, Spark {} {}",
                        s["num_rows_total"], s["num_rows_dropped_by_watermark"]
                    ));
                }
            }
        }
        batch += 1;
    }
    if batch as usize != progress.len() {
        problems.push(format!("{batch} batches, Spark ran {}", progress.len()));
    }
    let table = microbatch::table::read_table(&q.output).await.unwrap();
    let d = diff(&jsonl(&fixture.join("final.jsonl")), &rows(&table.rows));
    if !d.is_empty() {
        problems.push(format!("final table (- Spark, + microbatch):\n{d}"));
    }
    assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
}

#[tokio::test]
async fn orders_filter_project() {
    replay("orders_filter_project").await;
}

#[tokio::test]
async fn orders_dedup_watermark() {
    replay("orders_dedup_watermark").await;
}

#[tokio::test]
async fn orders_dedup_within_watermark() {
    replay("orders_dedup_within_watermark").await;
}

#[tokio::test]
async fn orders_join_agg() {
    replay("orders_join_agg").await;
}

#[tokio::test]
async fn orders_decimal_sum_update() {
    replay("orders_decimal_sum_update").await;
}

#[tokio::test]
async fn sensors_nested_computed_time() {
    replay("sensors_nested_computed_time").await;
}

#[tokio::test]
async fn clicks_left_join_composite() {
    replay("clicks_left_join_composite").await;
}

#[tokio::test]
async fn events_complete_count() {
    replay("events_complete_count").await;
}

#[tokio::test]
async fn events_left_anti_join() {
    replay("events_left_anti_join").await;
}
