//! Scenario files: a streaming story replayed step by step, with expectations beside the steps
//! (Spark's StreamTest actions — AddData, CheckNewAnswer, StopStream, StartStream,
//! AdvanceManualClock — as TOML). The format is documented in `scenarios/README.md`.
//!
//! [`Scenario::load`] reads and checks a file: an unknown key, step, failpoint, output mode or
//! query is an error naming the file and line, before anything runs. [`runner`] replays it.

pub mod rows;
pub mod runner;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use runner::{Outcome, replay};

/// A problem with a scenario file or its replay, located in the file.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A step's expectation did not hold, or its action failed unexpectedly.
    #[error("{path}:{line}: step {step} ({action}) failed (seed {seed}):\n{message}")]
    Failed {
        /// The file.
        path: PathBuf,
        /// 1-based line of the step.
        line: usize,
        /// 1-based step number.
        step: usize,
        /// The step's action, as written.
        action: String,
        /// The scenario's seed.
        seed: u64,
        /// What differed.
        message: String,
    },
}

/// A scenario file's contents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The story's title.
    pub name: String,
    /// Seed for generated rows (printed with any failure).
    #[serde(default)]
    pub seed: u64,
    /// Relative tolerance for comparing doubles.
    #[serde(default = "default_tolerance")]
    pub float_tolerance: f64,
    /// The query under test.
    pub query: Spanned<QueryDef>,
    /// The steps, in order.
    #[serde(default)]
    pub step: Vec<Spanned<Step>>,
    #[serde(skip)]
    path: PathBuf,
    #[serde(skip)]
    text: String,
}

fn default_tolerance() -> f64 {
    1e-9
}

/// The `[query]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryDef {
    /// A seed query: passthrough | aggregations | late-data | join.
    pub builtin: Option<String>,
    /// Override or set `withWatermark("timestamp", …)`.
    pub watermark: Option<String>,
    /// Window duration (composed queries, or to override a seed query's).
    pub window: Option<String>,
    /// Slide duration.
    pub slide: Option<String>,
    /// Window start offset.
    pub window_start: Option<String>,
    /// Grouping columns besides the window.
    pub group_by: Option<Vec<String>>,
    /// Aggregates: `count`, `sum(col)`, `avg(col)`, `min(col)`, `max(col)`, each `as alias`.
    pub aggregates: Option<Vec<String>>,
    /// append | update | complete.
    pub output_mode: Option<String>,
    /// inner | left (the join).
    pub join: Option<String>,
    /// maxFilesPerTrigger (default 1).
    #[serde(default = "one")]
    pub max_files_per_trigger: i64,
    /// The source schema as Spark writes it (DDL or `StructType` JSON); default the seed's
    /// events. With it, `add_file` rows are written as given (no event defaults).
    pub schema: Option<String>,
    /// The source's reader options (`timestampFormat`, …).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// The pipeline as DataFrame operations, as in a query file (`[[query.op]]`); a join's
    /// table path is relative to the scenario's data folder.
    pub op: Option<Vec<Spanned<crate::query_file::OpDef>>>,
}

fn one() -> i64 {
    1
}

/// One step: an action and/or expectations.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Add an input file with this name.
    pub add_file: Option<String>,
    /// Its rows (inline tables of event fields; missing fields get defaults).
    pub rows: Option<Vec<BTreeMap<String, toml::Value>>>,
    /// Its raw lines (for bad input).
    pub lines: Option<Vec<String>>,
    /// Its rows generated from the scenario's seed.
    pub generate: Option<GenerateDef>,
    /// Its modification time (a time: offset from the epoch like "5s", or ISO); default: one
    /// second after the previous file's.
    pub mtime: Option<String>,
    /// Write (or replace) the users table with these rows.
    pub users: Option<Vec<BTreeMap<String, toml::Value>>>,
    /// Write (or replace) a static Delta table under the data folder.
    pub table: Option<TableDef>,
    /// Advance the manual clock.
    pub advance_clock: Option<String>,
    /// Run triggers: "once" or "until_idle" (no-data batches included).
    pub run: Option<String>,
    /// With `run`: arm this failpoint; the run must stop there, as if the process died.
    pub crash_at: Option<String>,
    /// With `crash_at`: the pass through the failpoint that crashes (default 1).
    pub crash_pass: Option<u64>,
    /// Stop the query and start a new one on the same folders.
    #[serde(default)]
    pub restart: bool,
    /// Stop the query.
    #[serde(default)]
    pub stop: bool,
    /// Start the query.
    #[serde(default)]
    pub start: bool,
    /// The action fails with a message containing this.
    pub expect_error: Option<String>,
    /// The output table's rows (a multiset; only the columns named are compared).
    pub expect_rows: Option<Vec<BTreeMap<String, toml::Value>>>,
    /// The rows the batches of this step emitted, together.
    pub expect_emitted: Option<Vec<BTreeMap<String, toml::Value>>>,
    /// The rows one batch emitted.
    pub expect_batch: Option<BatchExpect>,
    /// The rejects table's rows.
    pub expect_rejects: Option<Vec<BTreeMap<String, toml::Value>>>,
    /// Counters after the step.
    pub expect: Option<Metrics>,
}

/// `table = { path = "customers", schema = "customer STRING, country STRING", rows = [...] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDef {
    /// The table folder, under the scenario's data folder.
    pub path: String,
    /// Its schema (DDL or `StructType` JSON).
    pub schema: String,
    /// Its rows: column → value (times as in expectations).
    pub rows: Vec<BTreeMap<String, toml::Value>>,
}

/// `generate = { events = 100, late_fraction = 0.1 }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateDef {
    /// Events in the file.
    pub events: usize,
    /// Fraction of late events.
    #[serde(default)]
    pub late_fraction: f64,
    /// Users ids 1..=users.
    #[serde(default = "thousand")]
    pub users: i32,
}

fn thousand() -> i32 {
    1000
}

/// `expect_batch = { id = 3, rows = [...] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchExpect {
    /// The batch id.
    pub id: u64,
    /// Its rows.
    pub rows: Vec<BTreeMap<String, toml::Value>>,
}

/// `expect = { … }`: counters checked after the step.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Batches the step ran.
    pub batches: Option<u64>,
    /// The watermark the next batch runs with (a time).
    pub watermark: Option<String>,
    /// Keys in the state.
    pub state_rows: Option<u64>,
    /// Late groups dropped by the step's batches.
    pub dropped: Option<u64>,
    /// Rows the step's batches read.
    pub input_rows: Option<u64>,
    /// Rows rejected by the step's batches.
    pub rejected: Option<u64>,
    /// The output table's txn version for the query (the last batch id committed).
    pub txn_version: Option<i64>,
    /// The output table's version.
    pub table_version: Option<u64>,
    /// The id of the next batch.
    pub next_batch: Option<u64>,
}

impl Step {
    /// The step's action as written, for messages.
    pub fn action(&self) -> String {
        let mut parts = Vec::new();
        if let Some(f) = &self.add_file {
            parts.push(format!("add_file {f}"));
        }
        if self.users.is_some() {
            parts.push("users".into());
        }
        if let Some(t) = &self.table {
            parts.push(format!("table {}", t.path));
        }
        if let Some(c) = &self.advance_clock {
            parts.push(format!("advance_clock {c}"));
        }
        if self.restart {
            parts.push("restart".into());
        }
        if self.stop {
            parts.push("stop".into());
        }
        if self.start {
            parts.push("start".into());
        }
        if let Some(r) = &self.run {
            parts.push(format!("run {r}"));
        }
        if let Some(c) = &self.crash_at {
            parts.push(format!("crash_at {c}"));
        }
        if parts.is_empty() {
            parts.push("expect".into());
        }
        parts.join(", ")
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and checks scenario text (`path` names it in messages).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ScenarioError> {
        let mut s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Invalid {
            path: path.to_path_buf(),
            line: e.span().map_or(1, |sp| line_of(text, sp.start)),
            message: e.message().to_string(),
        })?;
        s.path = path.to_path_buf();
        s.text = text.to_string();
        s.check()?;
        Ok(s)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The 1-based line where byte `offset` lies.
    pub fn line(&self, offset: usize) -> usize {
        line_of(&self.text, offset)
    }

    fn invalid(&self, offset: usize, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.clone(),
            line: self.line(offset),
            message: message.into(),
        }
    }

    fn check(&self) -> Result<(), ScenarioError> {
        let q = self.query.get_ref();
        let qpos = self.query.span().start;
        // Each operation on its own line first, so a mistake names it.
        runner::build_ops(q, Path::new("data")).map_err(|(at, m)| self.invalid(at.unwrap_or(qpos), m))?;
        runner::build_query(q, Path::new("data")).map_err(|m| self.invalid(qpos, m))?;
        for st in &self.step {
            let pos = st.span().start;
            let s = st.get_ref();
            let actions = [
                s.add_file.is_some(),
                s.users.is_some(),
                s.table.is_some(),
                s.advance_clock.is_some(),
                s.run.is_some(),
                s.restart,
                s.stop,
                s.start,
            ]
            .iter()
            .filter(|a| **a)
            .count();
            let expects = s.expect_error.is_some()
                || s.expect_rows.is_some()
                || s.expect_emitted.is_some()
                || s.expect_batch.is_some()
                || s.expect_rejects.is_some()
                || s.expect.is_some();
            if actions == 0 && !expects {
                return Err(self.invalid(pos, "a step needs an action (add_file, users, table, advance_clock, run, restart, stop, start) or an expectation"));
            }
            if actions > 1 && !(actions == 2 && s.restart && s.run.is_some()) {
                return Err(self.invalid(pos, format!("one action per step (found: {})", s.action())));
            }
            if let Some(f) = &s.add_file {
                let sources = [s.rows.is_some(), s.lines.is_some(), s.generate.is_some()];
                if sources.iter().filter(|x| **x).count() != 1 {
                    return Err(self.invalid(
                        pos,
                        format!("add_file {f} needs exactly one of rows, lines, generate"),
                    ));
                }
            } else if s.rows.is_some() || s.lines.is_some() || s.generate.is_some() || s.mtime.is_some() {
                return Err(self.invalid(pos, "rows, lines, generate and mtime go with add_file"));
            }
            if let Some(r) = &s.run
                && r != "once"
                && r != "until_idle"
            {
                return Err(self.invalid(
                    pos,
                    format!("run must be \"once\" or \"until_idle\", not \"{r}\""),
                ));
            }
            if let Some(c) = &s.crash_at {
                if s.run.is_none() {
                    return Err(self.invalid(pos, "crash_at goes with run"));
                }
                if crate::failpoints::by_name(c).is_none() {
                    return Err(self.invalid(
                        pos,
                        format!(
                            "unknown failpoint `{c}`; the failpoints are {}",
                            crate::failpoints::ALL.join(", ")
                        ),
                    ));
                }
            }
            for t in [&s.advance_clock, &s.mtime].into_iter().flatten() {
                rows::parse_time(t).map_err(|e| self.invalid(pos, e))?;
            }
            if let Some(m) = &s.expect
                && let Some(w) = &m.watermark
            {
                rows::parse_time(w).map_err(|e| self.invalid(pos, e))?;
            }
        }
        Ok(())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
