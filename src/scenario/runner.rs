//! Replays a scenario against the real engine, in a folder of its own, with a manual clock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use deltalake::arrow::compute::concat_batches;
use deltalake::arrow::datatypes::{DataType, Schema, SchemaRef};

use super::rows::{actual_rows, compare, parse_time};
use super::{Metrics, QueryDef, Scenario, ScenarioError, Step};
use crate::clock::{Clock, ManualClock, SharedClock};
use crate::execution::{EngineError, QueryConfig, StreamingQuery};
use crate::failpoints;
use crate::generator::{
    EventStream, GeneratorConfig, users_schema, write_input_file, write_static_table, write_users_table,
};
use crate::plan::LogicalPlan;
use crate::query::{self, AggExpr, OutputMode, Query, SeedQuery};
use crate::rejects::rejects_table_path;

/// The manual clock's start: 2026-11-24T10:00:00Z.
pub const CLOCK_START_MS: i64 = 1_795_514_400_000;

/// What a replay produced: one line per step and batch, without anything run-dependent, so
/// two replays of a scenario must give the same trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The trace.
    pub trace: Vec<String>,
}

fn parse_agg(text: &str) -> Result<AggExpr, String> {
    let (expr, alias) = match text.split_once(" as ") {
        Some((e, a)) => (e.trim(), Some(a.trim())),
        None => (text.trim(), None),
    };
    let e = if expr == "count" || expr == "count(*)" {
        query::count()
    } else {
        let (f, col) = expr
            .strip_suffix(')')
            .and_then(|e| e.split_once('('))
            .ok_or_else(|| format!("aggregate `{text}`: write count, sum(col), avg(col), min(col) or max(col), optionally `as name`"))?;
        match f {
            "sum" => query::sum(col),
            "avg" => query::avg(col),
            "min" => query::min(col),
            "max" => query::max(col),
            "count" => query::count(),
            _ => return Err(format!("unknown aggregate `{f}` in `{text}`")),
        }
    };
    Ok(match alias {
        Some(a) => e.alias(a),
        None => e,
    })
}

/// True when `[query]` describes its own pipeline (`schema` or `[[query.op]]`) rather than the
/// seed's events with the shorthand keys.
fn is_pipeline(def: &QueryDef) -> bool {
    def.schema.is_some() || def.op.is_some() || !def.options.is_empty()
}

/// The plan of a `[query]` with `schema`/`op`; an error carries the offending op's offset.
pub fn build_ops(def: &QueryDef, data: &Path) -> Result<Option<LogicalPlan>, (Option<usize>, String)> {
    if !is_pipeline(def) {
        return Ok(None);
    }
    let shorthand = [
        ("builtin", def.builtin.is_some()),
        ("watermark", def.watermark.is_some()),
        ("window", def.window.is_some()),
        ("slide", def.slide.is_some()),
        ("window_start", def.window_start.is_some()),
        ("group_by", def.group_by.is_some()),
        ("aggregates", def.aggregates.is_some()),
        ("join", def.join.is_some()),
    ];
    if let Some((k, _)) = shorthand.iter().find(|(_, set)| *set) {
        return Err((
            None,
            format!(
                "`{k}` describes the seed's query; with `schema`, `options` or [[query.op]] write the whole pipeline as [[query.op]] (watermark, group_by + agg, join, …)"
            ),
        ));
    }
    let source = crate::query_file::SourceDef {
        path: PathBuf::from("input"),
        format: None,
        schema: def.schema.clone(),
        options: def.options.clone(),
        max_files_per_trigger: None,
    };
    let mut plan = crate::query_file::source_plan(&source).map_err(|m| (None, m))?;
    for op in def.op.iter().flatten() {
        plan = crate::query_file::apply_op(plan, op.get_ref(), &|p: &Path| data.join(p))
            .map_err(|m| (Some(op.span().start), m))?;
    }
    Ok(Some(plan))
}

/// Builds the query a `[query]` table describes, and the name of its output table.
pub fn build_query(def: &QueryDef, data: &Path) -> Result<(Query, String), String> {
    if let Some(plan) = build_ops(def, data).map_err(|(_, m)| m)? {
        let mode = crate::query_file::output_mode(def.output_mode.as_deref())?;
        if def.max_files_per_trigger < 1 {
            return Err(format!(
                "maxFilesPerTrigger must be a positive integer, got `{}`",
                def.max_files_per_trigger
            ));
        }
        let q = Query::from_plan(plan).output_mode(mode);
        if q.plan.static_tables().is_empty() {
            q.validate().map_err(|e| e.to_string())?;
        }
        return Ok((q, "output".to_string()));
    }
    let seed = def
        .builtin
        .as_deref()
        .map(str::parse::<SeedQuery>)
        .transpose()
        .map_err(|e| e.to_string())?;
    let mut watermark = def.watermark.clone();
    let mut window = def.window.clone();
    let mut slide = def.slide.clone();
    let mut group_by = def.group_by.clone();
    let mut aggs = def.aggregates.clone();
    let mut mode = def.output_mode.clone();
    let (table, join) = match seed {
        Some(SeedQuery::Aggregations) => {
            watermark.get_or_insert("10 minutes".into());
            window.get_or_insert("5 minutes".into());
            group_by.get_or_insert(vec!["event_type".into()]);
            aggs.get_or_insert(vec![
                "count as event_count".into(),
                "avg(value) as avg_value".into(),
            ]);
            mode.get_or_insert("update".into());
            ("event_aggregates", false)
        }
        Some(SeedQuery::LateData) => {
            watermark.get_or_insert("10 minutes".into());
            window.get_or_insert("5 minutes".into());
            slide.get_or_insert("1 minute".into());
            group_by.get_or_insert(vec!["user_id".into()]);
            aggs.get_or_insert(vec!["count".into()]);
            mode.get_or_insert("append".into());
            ("user_activity", false)
        }
        Some(SeedQuery::Join) => ("enriched_events", true),
        Some(SeedQuery::Passthrough) => ("events", false),
        None => ("output", false),
    };
    let mut q = Query::events();
    if let Some(w) = &watermark {
        q = q.with_watermark("timestamp", w).map_err(|e| e.to_string())?;
    }
    if join {
        let left = match def.join.as_deref() {
            None | Some("inner") => false,
            Some("left") | Some("left_outer") => true,
            Some(o) => return Err(format!("join must be \"inner\" or \"left\", not \"{o}\"")),
        };
        q = q.join(data.join("users"), "user_id", left);
    } else if def.join.is_some() {
        return Err("`join` goes with builtin = \"join\"".into());
    }
    let keys: Vec<&str> = group_by.iter().flatten().map(String::as_str).collect();
    if let Some(w) = &window {
        q = q
            .group_by_window(
                "timestamp",
                w,
                slide.as_deref(),
                def.window_start.as_deref(),
                &keys,
            )
            .map_err(|e| e.to_string())?;
    } else if group_by.is_some() {
        q = q.group_by(&keys);
    }
    if let Some(a) = &aggs {
        if window.is_none() && group_by.is_none() {
            return Err("aggregates need a window or group_by".into());
        }
        q = q.agg(a.iter().map(|t| parse_agg(t)).collect::<Result<_, _>>()?);
    }
    if let Some(m) = &mode {
        q = q.output_mode(m.parse::<OutputMode>().map_err(|e| e.to_string())?);
    }
    if def.max_files_per_trigger < 1 {
        return Err(format!(
            "maxFilesPerTrigger must be a positive integer, got `{}`",
            def.max_files_per_trigger
        ));
    }
    // A query over a static table is checked when it starts: the table may be written by
    // the scenario's own steps.
    if q.plan.static_tables().is_empty() {
        q.validate().map_err(|e| e.to_string())?;
    }
    Ok((q, table.to_string()))
}

struct Runner<'a> {
    s: &'a Scenario,
    /// The `[query]`'s own source schema, if it has one: rows are written by it.
    source_schema: Option<SchemaRef>,
    dir: PathBuf,
    clock: ManualClock,
    config: QueryConfig,
    query: Option<StreamingQuery>,
    next_mtime_ms: i64,
    generated: u64,
    emitted: BTreeMap<u64, RecordBatch>,
    trace: Vec<String>,
}

/// What one step's run did.
#[derive(Default)]
struct RunStats {
    batches: u64,
    dropped: u64,
    input_rows: u64,
    rejected: u64,
    emitted: Vec<RecordBatch>,
}

fn event_line(row: &BTreeMap<String, toml::Value>, n: usize) -> Result<String, String> {
    let mut obj = serde_json::Map::new();
    obj.insert("event_id".into(), format!("r{n}").into());
    obj.insert("timestamp".into(), "0s".into());
    obj.insert("user_id".into(), 1.into());
    obj.insert("event_type".into(), "click".into());
    obj.insert("value".into(), serde_json::Value::from(1.0));
    for (k, v) in row {
        let key = if k == "ts" { "timestamp" } else { k.as_str() };
        let json = match v {
            toml::Value::String(s) => serde_json::Value::String(s.clone()),
            toml::Value::Integer(i) => (*i).into(),
            toml::Value::Float(f) => serde_json::Value::from(*f),
            toml::Value::Boolean(b) => (*b).into(),
            other => serde_json::Value::String(other.to_string()),
        };
        obj.insert(key.to_string(), json);
    }
    if let Some(serde_json::Value::String(t)) = obj.get("timestamp").cloned() {
        let us = parse_time(&t)?;
        obj.insert("timestamp".into(), crate::event::format_timestamp(us).into());
    }
    Ok(serde_json::Value::Object(obj).to_string())
}

fn toml_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => serde_json::Value::from(*f),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Array(a) => serde_json::Value::Array(a.iter().map(toml_json).collect()),
        toml::Value::Table(t) => {
            serde_json::Value::Object(t.iter().map(|(k, v)| (k.clone(), toml_json(v))).collect())
        }
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
    }
}

/// A row of a pipeline's own schema as one JSON line: values as written, except that a string
/// in a top-level timestamp column may be a scenario time (`"10s"`), written out in full.
fn schema_line(row: &BTreeMap<String, toml::Value>, schema: &Schema) -> Result<String, String> {
    let mut obj = serde_json::Map::new();
    for (k, v) in row {
        let is_time = schema
            .fields()
            .iter()
            .any(|f| f.name() == k && matches!(f.data_type(), DataType::Timestamp(..)));
        let json = match v {
            toml::Value::String(t) if is_time => match parse_time(t) {
                Ok(us) => crate::event::format_timestamp(us).into(),
                Err(_) => t.clone().into(),
            },
            other => toml_json(other),
        };
        obj.insert(k.clone(), json);
    }
    Ok(serde_json::Value::Object(obj).to_string())
}

/// A static table's rows, decoded by its schema as the file source would.
fn table_rows(def: &super::TableDef) -> Result<RecordBatch, String> {
    let schema = crate::schema::parse_schema(&def.schema).map_err(|e| format!("table {}: {e}", def.path))?;
    let text: String = def
        .rows
        .iter()
        .map(|r| schema_line(r, &schema).map(|l| l + "\n"))
        .collect::<Result<_, _>>()?;
    crate::source::decode::Decoder::try_new(schema, Default::default())
        .map_err(|e| format!("table {}: {e}", def.path))?
        .decode_table("table", text.as_bytes())
        .map_err(|(r, _)| format!("table {} row {}: {}", def.path, r.line, r.reason))
}

fn users_rows(rows: &[BTreeMap<String, toml::Value>]) -> Result<RecordBatch, String> {
    let mut ids = Vec::new();
    let mut names = Vec::new();
    let mut countries = Vec::new();
    let mut tiers = Vec::new();
    for r in rows {
        let id = r
            .get("user_id")
            .and_then(toml::Value::as_integer)
            .ok_or("every users row needs an integer user_id")? as i32;
        let s = |k: &str, d: String| r.get(k).and_then(|v| v.as_str().map(str::to_owned)).unwrap_or(d);
        ids.push(id);
        names.push(s("name", format!("user_{id:04}")));
        countries.push(s("country", "US".into()));
        tiers.push(s("tier", "free".into()));
        if let Some(k) = r
            .keys()
            .find(|k| !["user_id", "name", "country", "tier"].contains(&k.as_str()))
        {
            return Err(format!(
                "unknown users column `{k}`; the users table has user_id, name, country, tier"
            ));
        }
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(ids)),
        Arc::new(StringArray::from(names)),
        Arc::new(StringArray::from(countries)),
        Arc::new(StringArray::from(tiers)),
    ];
    RecordBatch::try_new(users_schema(), cols).map_err(|e| e.to_string())
}

fn canonical(batch: &RecordBatch) -> String {
    let mut rows: Vec<String> = actual_rows(batch, &[])
        .iter()
        .map(|r| r.values().map(|c| c.to_string()).collect::<Vec<_>>().join("|"))
        .collect();
    rows.sort();
    rows.join("; ")
}

impl<'a> Runner<'a> {
    fn new(s: &'a Scenario, dir: &Path) -> Result<Self, String> {
        let data = dir.join("data");
        let (query, table) = build_query(s.query.get_ref(), &data)?;
        let clock = ManualClock::new(CLOCK_START_MS);
        let max = crate::source::parse_max_files(&s.query.get_ref().max_files_per_trigger.to_string())
            .map_err(|e| e.to_string())?;
        // The story's input folder exists from the start, as a job's landing folder would.
        std::fs::create_dir_all(dir.join("input"))
            .map_err(|e| format!("{}: {e}", dir.join("input").display()))?;
        let source_schema = match &s.query.get_ref().schema {
            Some(text) => Some(crate::schema::parse_schema(text).map_err(|e| format!("schema: {e}"))?),
            None => None,
        };
        Ok(Self {
            s,
            source_schema,
            dir: dir.to_path_buf(),
            config: QueryConfig {
                name: "scenario".into(),
                input: dir.join("input"),
                output: data.join(&table),
                checkpoint: dir.join("checkpoints/scenario"),
                max_files_per_trigger: max,
                query,
                clock: Arc::new(clock.clone()) as SharedClock,
            },
            clock,
            query: None,
            next_mtime_ms: 1_000_000,
            generated: 0,
            emitted: BTreeMap::new(),
            trace: Vec::new(),
        })
    }

    async fn start(&mut self) -> Result<(), EngineError> {
        self.query = None;
        self.query = Some(StreamingQuery::start(self.config.clone()).await?);
        Ok(())
    }

    async fn run(&mut self, mode: &str, crash: Option<(&'static str, u64)>) -> Result<RunStats, String> {
        if self.query.is_none() {
            self.start().await.map_err(|e| e.to_string())?;
        }
        let _arming = match crash {
            Some((name, pass)) => {
                let guard = failpoints::ARMING.lock().await;
                // Passes count from now: add the ones this query run already made.
                let before = self.query.as_ref().map_or(0, |q| q.failpoint_passes(name));
                failpoints::arm(name, &self.config.checkpoint, Some(before + pass))?;
                Some(guard)
            }
            None => None,
        };
        let mut stats = RunStats::default();
        let result = async {
            // A query exists: it was started above.
            let q = self.query.as_mut().ok_or("no query")?;
            loop {
                match q.run_once().await.map_err(|e| e.to_string())? {
                    None => break,
                    Some(p) => {
                        let rows = q
                            .last_output()
                            .map_err(|e| e.to_string())?
                            .unwrap_or_else(|| RecordBatch::new_empty(q.output_schema()));
                        stats.batches += 1;
                        stats.input_rows += p.num_input_rows;
                        stats.rejected += p.num_rejected_rows;
                        stats.dropped += p
                            .state_operators
                            .first()
                            .map_or(0, |s| s.num_rows_dropped_by_watermark);
                        self.trace.push(format!(
                            "batch {}: in {} rejected {} out {} dropped {} watermark {} rows {}",
                            p.batch_id,
                            p.num_input_rows,
                            p.num_rejected_rows,
                            rows.num_rows(),
                            stats.dropped,
                            p.event_time.get("watermark").cloned().unwrap_or_default(),
                            canonical(&rows)
                        ));
                        self.emitted.insert(p.batch_id, rows.clone());
                        stats.emitted.push(rows);
                        if mode == "once" {
                            break;
                        }
                    }
                }
            }
            Ok::<_, String>(())
        }
        .await;
        if let Some((name, _)) = crash {
            failpoints::disarm(name);
        }
        match (result, crash) {
            (Ok(()), Some((name, pass))) => Err(format!(
                "the run finished without reaching failpoint `{name}` (pass {pass}){}",
                if failpoints::enabled() {
                    ""
                } else {
                    "; this build has no failpoints: run it under `cargo test` or `cargo run --features failpoints`"
                }
            )),
            (Ok(()), None) => Ok(stats),
            (Err(e), _) => {
                // A failed query is dead, as a killed process would be.
                self.query = None;
                Err(e)
            }
        }
    }

    fn query_id(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.config.checkpoint.join("metadata")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["id"].as_str().map(str::to_owned)
    }

    async fn check_metrics(&self, m: &Metrics, stats: &RunStats) -> Result<(), String> {
        let mut errs = Vec::new();
        let mut check = |what: &str, want: String, got: String| {
            if want != got {
                errs.push(format!("  {what}: expected {want}, found {got}"));
            }
        };
        let q = self.query.as_ref();
        let need_query = || "this expectation needs a running query (start or run first)".to_string();
        if let Some(b) = m.batches {
            check("batches", b.to_string(), stats.batches.to_string());
        }
        if let Some(d) = m.dropped {
            check(
                "rows dropped by watermark",
                d.to_string(),
                stats.dropped.to_string(),
            );
        }
        if let Some(d) = m.input_rows {
            check("input rows", d.to_string(), stats.input_rows.to_string());
        }
        if let Some(d) = m.rejected {
            check("rejected records", d.to_string(), stats.rejected.to_string());
        }
        if let Some(w) = &m.watermark {
            let q = q.ok_or_else(need_query)?;
            let want = parse_time(w)? / 1000;
            check(
                "watermark",
                crate::progress::format_ms(want),
                crate::progress::format_ms(q.watermark_ms()),
            );
        }
        if let Some(n) = m.state_rows {
            let q = q.ok_or_else(need_query)?;
            check("state rows", n.to_string(), q.state_rows().to_string());
        }
        if let Some(n) = m.next_batch {
            let q = q.ok_or_else(need_query)?;
            check("next batch", n.to_string(), q.next_batch_id().to_string());
        }
        if let Some(v) = m.txn_version {
            let id = self.query_id().ok_or("the query has no id yet")?;
            let got = crate::table::txn_version(&self.config.output, &id)
                .await
                .map_err(|e| e.to_string())?;
            check(
                "txn version",
                v.to_string(),
                got.map_or("none".into(), |g| g.to_string()),
            );
        }
        if let Some(v) = m.table_version {
            let got = crate::table::read_table(&self.config.output)
                .await
                .map_err(|e| e.to_string())?
                .version;
            check("table version", v.to_string(), got.to_string());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("\n"))
        }
    }

    async fn step(&mut self, st: &Step) -> Result<(), String> {
        let mut stats = RunStats::default();
        let result: Result<(), String> = async {
            if let Some(name) = &st.add_file {
                let text = if let (Some(rows), Some(schema)) = (&st.rows, &self.source_schema) {
                    rows.iter()
                        .map(|r| schema_line(r, schema).map(|l| l + "\n"))
                        .collect::<Result<String, _>>()?
                } else if let Some(rows) = &st.rows {
                    rows.iter()
                        .enumerate()
                        .map(|(i, r)| event_line(r, i).map(|l| l + "\n"))
                        .collect::<Result<String, _>>()?
                } else if let Some(lines) = &st.lines {
                    lines.iter().map(|l| format!("{l}\n")).collect()
                } else if let Some(g) = &st.generate {
                    let mut stream = EventStream::new(GeneratorConfig {
                        seed: self.s.seed,
                        start: CLOCK_START_MS * 1000,
                        step: 60_000_000,
                        events_per_batch: g.events,
                        late_fraction: g.late_fraction,
                        num_users: g.users,
                    })
                    .map_err(|e| e.to_string())?;
                    stream.skip_to(self.generated);
                    self.generated += 1;
                    stream
                        .next_batch()
                        .iter()
                        .map(|e| e.to_json_line() + "\n")
                        .collect()
                } else {
                    String::new()
                };
                let mtime = match &st.mtime {
                    Some(t) => parse_time(t)? / 1000,
                    None => self.next_mtime_ms,
                };
                self.next_mtime_ms = self.next_mtime_ms.max(mtime) + 1000;
                write_input_file(&self.config.input, name, text.as_bytes(), mtime)
                    .map_err(|e| e.to_string())?;
            }
            if let Some(t) = &st.table {
                let batch = table_rows(t)?;
                write_static_table(&self.dir.join("data").join(&t.path), &batch, self.clock.now_ms())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            if let Some(rows) = &st.users {
                let batch = users_rows(rows)?;
                write_users_table(&self.dir.join("data/users"), &batch, self.clock.now_ms())
                    .await
                    .map_err(|e| e.to_string())?;
            }
            if let Some(d) = &st.advance_clock {
                self.clock.advance(parse_time(d)? / 1000);
            }
            if st.stop {
                self.query = None;
            }
            if st.restart || st.start {
                if st.start && self.query.is_some() {
                    return Err("the query is already running".into());
                }
                self.start().await.map_err(|e| e.to_string())?;
            }
            if let Some(mode) = &st.run {
                let crash = st
                    .crash_at
                    .as_deref()
                    .and_then(failpoints::by_name)
                    .map(|n| (n, st.crash_pass.unwrap_or(1)));
                stats = self.run(mode, crash).await?;
                if crash.is_some() {
                    return Err("unreachable: a crash run returns an error".into());
                }
            }
            Ok(())
        }
        .await;
        // A crash is the expected outcome of a crash_at step.
        let result = match (result, &st.crash_at) {
            (Err(e), Some(name)) if e.contains(&format!("injected crash at failpoint `{name}`")) => {
                self.trace.push(format!("crashed at {name}"));
                self.query = None;
                Ok(())
            }
            (r, _) => r,
        };
        match (result, &st.expect_error) {
            (Err(e), Some(want)) if e.contains(want.as_str()) => {
                self.trace.push(format!("error: {want}"));
            }
            (Err(e), Some(want)) => return Err(format!("expected an error containing {want:?}, got: {e}")),
            (Ok(()), Some(want)) => {
                return Err(format!(
                    "expected an error containing {want:?}, but the step succeeded"
                ));
            }
            (Err(e), None) => return Err(format!("unexpected error: {e}")),
            (Ok(()), None) => {}
        }
        let tol = self.s.float_tolerance;
        let mut problems = Vec::new();
        if let Some(rows) = &st.expect_rows {
            match crate::table::read_table(&self.config.output).await {
                Ok(t) => {
                    self.trace.push(format!("table: {}", canonical(&t.rows)));
                    if let Err(d) = compare(&t.rows, rows, tol) {
                        problems.push(format!(
                            "expect_rows (table {}): {d}",
                            self.config.output.display()
                        ));
                    }
                }
                Err(e) => problems.push(format!("expect_rows: {e}")),
            }
        }
        if let Some(rows) = &st.expect_emitted {
            let schema = self.output_schema();
            let all = concat_batches(&schema, &stats.emitted).map_err(|e| e.to_string())?;
            if let Err(d) = compare(&all, rows, tol) {
                problems.push(format!("expect_emitted ({} batch(es) ran): {d}", stats.batches));
            }
        }
        if let Some(b) = &st.expect_batch {
            match self.emitted.get(&b.id) {
                Some(rows) => {
                    if let Err(d) = compare(rows, &b.rows, tol) {
                        problems.push(format!("expect_batch {}: {d}", b.id));
                    }
                }
                None => problems.push(format!(
                    "expect_batch {}: no such batch ran in this scenario (batches run: {:?})",
                    b.id,
                    self.emitted.keys().collect::<Vec<_>>()
                )),
            }
        }
        if let Some(rows) = &st.expect_rejects {
            match crate::table::read_table(&rejects_table_path(&self.config.output)).await {
                Ok(t) => {
                    if let Err(d) = compare(&t.rows, rows, tol) {
                        problems.push(format!("expect_rejects: {d}"));
                    }
                }
                Err(e) => problems.push(format!("expect_rejects: {e}")),
            }
        }
        if let Some(m) = &st.expect
            && let Err(d) = self.check_metrics(m, &stats).await
        {
            problems.push(format!("expect:\n{d}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    fn output_schema(&self) -> deltalake::arrow::datatypes::SchemaRef {
        match &self.query {
            Some(q) => q.output_schema(),
            None => self
                .emitted
                .values()
                .next()
                .map(|b| b.schema())
                .unwrap_or_else(crate::event::event_schema),
        }
    }
}

/// Replays `s` in `dir` (which should be empty), reporting each step to `log`. Stops at the
/// first failing step.
pub async fn replay(s: &Scenario, dir: &Path, mut log: impl FnMut(&str)) -> Result<Outcome, ScenarioError> {
    let qline = s.line(s.query.span().start);
    let mut r = Runner::new(s, dir).map_err(|m| ScenarioError::Invalid {
        path: s.path().to_path_buf(),
        line: qline,
        message: m,
    })?;
    log(&format!("scenario: {} ({})", s.name, s.path().display()));
    for (i, st) in s.step.iter().enumerate() {
        let line = s.line(st.span().start);
        let step = st.get_ref();
        log(&format!("  step {} (line {line}): {}", i + 1, step.action()));
        r.trace.push(format!("step {}", i + 1));
        if let Err(message) = r.step(step).await {
            return Err(ScenarioError::Failed {
                path: s.path().to_path_buf(),
                line,
                step: i + 1,
                action: step.action(),
                seed: s.seed,
                message,
            });
        }
    }
    if r.config.output.join("_delta_log").is_dir()
        && let Ok(t) = crate::table::read_table(&r.config.output).await
    {
        r.trace.push(format!("final table: {}", canonical(&t.rows)));
    }
    Ok(Outcome { trace: r.trace })
}
