//! A model check: a plain, obviously-correct function computes what the seed's two stateful
//! queries emit batch by batch from the list of input files, straight from the rules in
//! `shared/spark-semantics.md` §7–§9; proptest compares the engine with it on seeded inputs
//! with late events and random maxFilesPerTrigger.

use std::collections::{BTreeMap, BTreeSet};

use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use microbatch::execution::StreamingQuery;
use microbatch::generator::{Event, EventStream, GeneratorConfig};
use microbatch::query::SeedQuery;
use proptest::prelude::*;

use crate::common::*;

const MIN: i64 = 60_000_000;
const DELAY_MS: i64 = 10 * 60_000;

/// One emitted row: window start and end (µs), key, count, avg(value) (aggregations only).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    pub start: i64,
    pub end: i64,
    pub key: String,
    pub count: i64,
    pub avg: Option<f64>,
}

/// One batch as the model sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelBatch {
    pub watermark_ms: i64,
    pub rows: Vec<ModelRow>,
    pub dropped: u64,
    pub state_rows: u64,
}

fn windows(ts: i64, size: i64, slide: i64) -> Vec<(i64, i64)> {
    // Every window start that is a multiple of `slide` with start <= ts < start + size.
    let mut out = Vec::new();
    let mut start = ts.div_euclid(slide) * slide;
    while start > ts - size {
        out.push((start, start + size));
        start -= slide;
    }
    out.reverse();
    out
}

/// The model of `query` (Aggregations or LateData) over `files`, `max_files` per batch, all
/// files present at start (available-now).
pub fn model(query: SeedQuery, files: &[Vec<Event>], max_files: usize) -> Vec<ModelBatch> {
    let (slide, update) = match query {
        SeedQuery::Aggregations => (5 * MIN, true),
        SeedQuery::LateData => (MIN, false),
        _ => unreachable!("the model covers the two stateful seed queries"),
    };
    let key_of = |e: &Event| match query {
        SeedQuery::Aggregations => e.event_type.to_string(),
        _ => e.user_id.to_string(),
    };
    // (start, end, key) -> (count, sum)
    let mut state: BTreeMap<(i64, i64, String), (i64, f64)> = BTreeMap::new();
    let mut watermark = 0i64;
    let mut prev_batch_watermark = 0i64;
    let mut out = Vec::new();
    let mut batches: Vec<Vec<Event>> = files.chunks(max_files).map(|c| c.concat()).collect();
    let mut last_batch_watermark = None;
    let mut i = 0;
    loop {
        let events = if i < batches.len() {
            std::mem::take(&mut batches[i])
        } else if last_batch_watermark.is_some_and(|w| watermark > w) {
            Vec::new() // the trailing no-data batch
        } else {
            break;
        };
        i += 1;
        let batch_watermark = watermark;
        let late = prev_batch_watermark * 1000;
        let evict = batch_watermark * 1000;
        let mut touched = BTreeSet::new();
        let mut dropped = BTreeSet::new();
        for e in &events {
            for (s, en) in windows(e.timestamp, 5 * MIN, slide) {
                let k = (s, en, key_of(e));
                if en <= late {
                    dropped.insert(k);
                } else {
                    let v = state.entry(k.clone()).or_insert((0, 0.0));
                    v.0 += 1;
                    v.1 += e.value;
                    touched.insert(k);
                }
            }
        }
        let row = |k: &(i64, i64, String), v: &(i64, f64)| ModelRow {
            start: k.0,
            end: k.1,
            key: k.2.clone(),
            count: v.0,
            avg: update.then(|| v.1 / v.0 as f64),
        };
        let mut rows = Vec::new();
        if update {
            rows.extend(touched.iter().map(|k| row(k, &state[k])));
        }
        let closed: Vec<_> = state.keys().filter(|k| k.1 <= evict).cloned().collect();
        for k in closed {
            let v = state.remove(&k).expect("key listed from the map");
            if !update {
                rows.push(row(&k, &v));
            }
        }
        if let Some(max) = events.iter().map(|e| e.timestamp.div_euclid(1000)).max() {
            watermark = watermark.max(max - DELAY_MS);
        }
        out.push(ModelBatch {
            watermark_ms: batch_watermark,
            rows,
            dropped: dropped.len() as u64,
            state_rows: state.len() as u64,
        });
        prev_batch_watermark = batch_watermark;
        last_batch_watermark = Some(batch_watermark);
    }
    out
}

fn engine_rows(query: SeedQuery, b: &RecordBatch) -> Vec<ModelRow> {
    let w = b.column(0).as_struct();
    let s = w.column(0).as_primitive::<TimestampMicrosecondType>();
    let e = w.column(1).as_primitive::<TimestampMicrosecondType>();
    (0..b.num_rows())
        .map(|i| {
            let (key, count, avg) = match query {
                SeedQuery::Aggregations => (
                    b.column(1).as_string::<i32>().value(i).to_string(),
                    b.column(2).as_primitive::<Int64Type>().value(i),
                    Some(b.column(3).as_primitive::<Float64Type>().value(i)),
                ),
                _ => (
                    b.column(1).as_primitive::<Int32Type>().value(i).to_string(),
                    b.column(2).as_primitive::<Int64Type>().value(i),
                    None,
                ),
            };
            assert!(!b.column(1).is_null(i));
            ModelRow {
                start: s.value(i),
                end: e.value(i),
                key,
                count,
                avg,
            }
        })
        .collect()
}

fn sort_rows(rows: &mut [ModelRow]) {
    rows.sort_by(|a, b| (a.start, a.end, &a.key).cmp(&(b.start, b.end, &b.key)));
}

/// Asserts two batch lists agree: rows as multisets, counts exactly, averages to 1e-9.
pub fn assert_same(query: SeedQuery, engine: &[ModelBatch], model: &[ModelBatch], ctx: &str) {
    assert_eq!(engine.len(), model.len(), "{ctx}: batch count");
    for (i, (a, b)) in engine.iter().zip(model).enumerate() {
        let mut ra = a.rows.clone();
        let mut rb = b.rows.clone();
        sort_rows(&mut ra);
        sort_rows(&mut rb);
        assert_eq!(a.watermark_ms, b.watermark_ms, "{ctx}: batch {i} watermark");
        assert_eq!(a.dropped, b.dropped, "{ctx}: batch {i} dropped by watermark");
        assert_eq!(a.state_rows, b.state_rows, "{ctx}: batch {i} state rows");
        assert_eq!(
            ra.len(),
            rb.len(),
            "{ctx}: batch {i} row count ({query:?})\nengine {ra:?}\nmodel  {rb:?}"
        );
        for (x, y) in ra.iter().zip(&rb) {
            assert_eq!(
                (x.start, x.end, &x.key, x.count),
                (y.start, y.end, &y.key, y.count),
                "{ctx}: batch {i}"
            );
            if let (Some(p), Some(q)) = (x.avg, y.avg) {
                assert!(
                    (p - q).abs() <= 1e-9 * q.abs().max(1.0),
                    "{ctx}: batch {i} avg {p} vs {q}"
                );
            }
        }
    }
}

/// Runs the seed query over `files` in a fresh workspace and returns each batch as the model
/// sees it.
pub async fn run_engine(query: SeedQuery, files: &[Vec<Event>], max_files: usize) -> Vec<ModelBatch> {
    let texts: Vec<String> = files
        .iter()
        .map(|f| f.iter().map(|e| e.to_json_line() + "\n").collect())
        .collect();
    run_engine_texts(query, &texts, max_files).await.0
}

/// Runs the seed query over input files with these contents (named `batch_<i>.json`, mtimes in
/// order); each batch as the model sees it, and the final table's rows.
pub async fn run_engine_texts(
    query: SeedQuery,
    texts: &[String],
    max_files: usize,
) -> (Vec<ModelBatch>, Vec<ModelRow>) {
    let mut ws = Workspace::new();
    for (i, text) in texts.iter().enumerate() {
        ws.add_file(&format!("batch_{i}.json"), text);
    }
    let table = ws.dir.path().join("data").join(query.table_name());
    let mut cfg = ws.config(max_files);
    cfg.output = table.clone();
    cfg.query = query.query(&ws.dir.path().join("data"));
    let mut q = StreamingQuery::start(cfg).await.unwrap();
    let mut out = Vec::new();
    while let Some(p) = q.run_once().await.unwrap() {
        let state = &p.state_operators[0];
        let wm = p.event_time["watermark"].trim_end_matches('Z');
        out.push(ModelBatch {
            watermark_ms: microbatch::event::parse_timestamp(wm).unwrap().div_euclid(1000),
            rows: engine_rows(query, &q.last_output().unwrap().unwrap()),
            dropped: state.num_rows_dropped_by_watermark,
            state_rows: state.num_rows_total,
        });
    }
    let final_rows = engine_rows(query, &microbatch::table::read_table(&table).await.unwrap().rows);
    (out, final_rows)
}

pub fn files(seed: u64, n: usize, events: usize, late: f64) -> Vec<Vec<Event>> {
    let mut s = EventStream::new(GeneratorConfig {
        seed,
        start: T0,
        step: 3 * MIN,
        events_per_batch: events,
        late_fraction: late,
        num_users: 20,
    })
    .unwrap();
    (0..n).map(|_| s.next_batch()).collect()
}

#[test]
fn model_windows_match_the_spark_formula() {
    assert_eq!(windows(7 * MIN, 5 * MIN, 5 * MIN), [(5 * MIN, 10 * MIN)]);
    assert_eq!(windows(7 * MIN, 5 * MIN, MIN).len(), 5);
    assert_eq!(windows(5 * MIN, 5 * MIN, MIN)[4], (5 * MIN, 10 * MIN));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_the_model_batch_by_batch(
        seed in any::<u64>(),
        n in 2usize..9,
        events in 1usize..40,
        max_files in 1usize..4,
        late in 0.0f64..0.5,
    ) {
        let fs = files(seed, n, events, late);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        for query in [SeedQuery::Aggregations, SeedQuery::LateData] {
            let engine = rt.block_on(run_engine(query, &fs, max_files));
            let expected = model(query, &fs, max_files);
            assert_same(query, &engine, &expected, &format!("seed {seed}, {n} files, max {max_files}"));
        }
    }
}
