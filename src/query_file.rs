//! A pipeline written down: the `[source]`, `[[op]]` and `[sink]` of a query file
//! (`microbatch run my_query.toml`), the same operations a scenario's `[query]` takes.
//!
//! Each `[[op]]` is one DataFrame call, in Spark's vocabulary, with Spark SQL expression
//! strings (`filter = "amount > 10 AND country IS NOT NULL"`); the file becomes a
//! [`LogicalPlan`], which the analyzer checks with Spark's streaming rules at start. An unknown
//! key, an op with two calls in it or none, or an expression that does not parse is an error
//! naming the file and line, before anything runs.
//!
//! ```toml
//! name = "orders_by_country"
//!
//! [source]
//! path = "input/orders"
//! schema = "order_id STRING, ts TIMESTAMP, customer STRING, amount DECIMAL(10,2), country STRING"
//! max_files_per_trigger = 1
//!
//! [[op]]
//! filter = "amount > 10"
//!
//! [[op]]
//! join = { table = "data/customers", on = ["customer"], how = "inner" }
//!
//! [[op]]
//! watermark = { column = "ts", delay = "10 minutes" }
//!
//! [[op]]
//! group_by = ["window(ts, '10 minutes')", "country"]
//! agg = ["sum(amount) AS total", "count(*) AS orders"]
//!
//! [sink]
//! path = "data/orders_by_country"
//! output_mode = "append"
//! ```

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::expr::{Expr, parse_expr};
use crate::operators::join::JoinKind;
use crate::plan::{JoinOn, LogicalPlan};
use crate::query::{OutputMode, Query};

/// A problem with a query file, located in it.
#[derive(Debug, thiserror::Error)]
pub enum QueryFileError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid query.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// A query file's contents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryFile {
    /// The query's name (its checkpoint folder's default name); default: the file's stem.
    pub name: Option<String>,
    /// The stream it reads.
    pub source: Spanned<SourceDef>,
    /// The DataFrame operations, in order.
    #[serde(default)]
    pub op: Vec<Spanned<OpDef>>,
    /// Where it writes.
    pub sink: Spanned<SinkDef>,
}

/// `[source]`: `spark.readStream.format("json").schema(…).options(…).load(path)`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDef {
    /// The input folder (default `input`).
    #[serde(default = "default_input")]
    pub path: PathBuf,
    /// `json` (the one format served).
    pub format: Option<String>,
    /// The schema as Spark writes it: DDL or `StructType` JSON; default the seed's events.
    pub schema: Option<String>,
    /// Reader options (`timestampFormat`, `dateFormat`, `mode`, …).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// `maxFilesPerTrigger` (default 1).
    pub max_files_per_trigger: Option<i64>,
}

fn default_input() -> PathBuf {
    PathBuf::from("input")
}

/// `[sink]`: `writeStream.format("delta").outputMode(…).option("checkpointLocation", …).start(path)`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkDef {
    /// The Delta table folder.
    pub path: PathBuf,
    /// append (default) | update | complete.
    pub output_mode: Option<String>,
    /// The checkpoint folder; default `checkpoints/<name>`.
    pub checkpoint: Option<PathBuf>,
    /// `available-now` (default) or an interval like `5s`.
    pub trigger: Option<String>,
    /// Keep the rows a watermark drops in `<path>_late` (default true).
    pub late_rows: Option<bool>,
    /// Fsync every durable write, for exactly-once across power loss (default false).
    pub fsync: Option<bool>,
}

/// `with_column = { name = "total", expr = "amount * qty" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedExpr {
    /// The column's name.
    pub name: String,
    /// Its expression.
    pub expr: String,
}

/// `with_column_renamed = { from = "qty", to = "quantity" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    /// The old name.
    pub from: String,
    /// The new name.
    pub to: String,
}

/// `watermark = { column = "ts", delay = "10 minutes" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatermarkDef {
    /// The event-time column.
    pub column: String,
    /// The delay, as Spark writes it.
    pub delay: String,
}

/// `join = { table = "data/users", on = ["user_id"], how = "inner" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinDef {
    /// The static Delta table (`spark.read.format("delta").load(table)`).
    pub table: PathBuf,
    /// Columns named alike on both sides (a USING join)…
    pub on: Option<Vec<String>>,
    /// …or a condition over both sides' columns.
    pub condition: Option<String>,
    /// inner (default) | left_outer | left_semi | left_anti.
    pub how: Option<String>,
    /// A filter on the static side first.
    pub filter: Option<String>,
    /// A select on the static side first.
    pub select: Option<Vec<String>>,
}

/// One `[[op]]`: exactly one DataFrame call (`group_by` goes with `agg`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpDef {
    /// `select(exprs…)` / `selectExpr(…)`.
    pub select: Option<Vec<String>>,
    /// `withColumn(name, expr)`.
    pub with_column: Option<NamedExpr>,
    /// `withColumnRenamed(from, to)`.
    pub with_column_renamed: Option<Rename>,
    /// `drop(cols…)`.
    pub drop: Option<Vec<String>>,
    /// `filter(condition)`.
    pub filter: Option<String>,
    /// `where(condition)`, the same.
    #[serde(rename = "where")]
    pub where_: Option<String>,
    /// `withWatermark(column, delay)`.
    pub watermark: Option<WatermarkDef>,
    /// `dropDuplicates(cols…)` (every column when empty).
    pub drop_duplicates: Option<Vec<String>>,
    /// `dropDuplicatesWithinWatermark(cols…)`.
    pub drop_duplicates_within_watermark: Option<Vec<String>>,
    /// `groupBy(exprs…)`, with `agg`.
    pub group_by: Option<Vec<String>>,
    /// `.agg(exprs…)`.
    pub agg: Option<Vec<String>>,
    /// `join(spark.read.format("delta").load(table), on, how)`.
    pub join: Option<JoinDef>,
}

impl OpDef {
    /// The calls it names, for messages.
    fn calls(&self) -> Vec<&'static str> {
        let mut calls = Vec::new();
        let mut add = |set: bool, name: &'static str| {
            if set {
                calls.push(name);
            }
        };
        add(self.select.is_some(), "select");
        add(self.with_column.is_some(), "with_column");
        add(self.with_column_renamed.is_some(), "with_column_renamed");
        add(self.drop.is_some(), "drop");
        add(self.filter.is_some(), "filter");
        add(self.where_.is_some(), "where");
        add(self.watermark.is_some(), "watermark");
        add(self.drop_duplicates.is_some(), "drop_duplicates");
        add(
            self.drop_duplicates_within_watermark.is_some(),
            "drop_duplicates_within_watermark",
        );
        add(self.group_by.is_some() || self.agg.is_some(), "group_by/agg");
        add(self.join.is_some(), "join");
        calls
    }
}

fn expr(text: &str) -> Result<Expr, String> {
    parse_expr(text).map_err(|e| format!("`{text}`: {e}"))
}

fn exprs(texts: &[String]) -> Result<Vec<Expr>, String> {
    texts.iter().map(|t| expr(t)).collect()
}

/// The source relation `[source]` describes.
pub fn source_plan(s: &SourceDef) -> Result<LogicalPlan, String> {
    if let Some(f) = &s.format
        && !f.eq_ignore_ascii_case("json")
    {
        return Err(format!(
            "source format `{f}` is not served: microbatch reads JSON-lines files (format = \"json\")"
        ));
    }
    if let Some(schema) = &s.schema {
        // A schema that does not parse is an error here, with the file's line.
        crate::plan::analyze::source_schema(Some(schema)).map_err(|e| e.to_string())?;
    }
    Ok(LogicalPlan::StreamSource {
        schema: s.schema.clone(),
        options: s.options.clone(),
    })
}

/// `plan` with one `[[op]]` applied; `table` resolves a join's table path.
pub fn apply_op(
    plan: LogicalPlan,
    op: &OpDef,
    table: &dyn Fn(&Path) -> PathBuf,
) -> Result<LogicalPlan, String> {
    let calls = op.calls();
    match calls.as_slice() {
        [_] => {}
        [] => return Err("an [[op]] needs one operation: select, with_column, with_column_renamed, drop, filter, where, watermark, drop_duplicates, drop_duplicates_within_watermark, group_by + agg, join".into()),
        many => return Err(format!("one operation per [[op]] (found {})", many.join(", "))),
    }
    Ok(if let Some(s) = &op.select {
        plan.select(exprs(s)?)
    } else if let Some(w) = &op.with_column {
        plan.with_columns(vec![(w.name.clone(), expr(&w.expr)?)])
    } else if let Some(r) = &op.with_column_renamed {
        plan.with_columns_renamed(vec![(r.from.clone(), r.to.clone())])
    } else if let Some(d) = &op.drop {
        plan.drop_columns(d.clone())
    } else if let Some(c) = op.filter.as_ref().or(op.where_.as_ref()) {
        plan.filter(expr(c)?)
    } else if let Some(w) = &op.watermark {
        crate::duration::parse_duration_ms(&w.delay).map_err(|e| format!("watermark delay: {e}"))?;
        plan.with_watermark(&w.column, &w.delay)
    } else if let Some(cols) = &op.drop_duplicates {
        plan.drop_duplicates(cols.clone(), false)
    } else if let Some(cols) = &op.drop_duplicates_within_watermark {
        plan.drop_duplicates(cols.clone(), true)
    } else if op.group_by.is_some() || op.agg.is_some() {
        let (Some(g), Some(a)) = (&op.group_by, &op.agg) else {
            return Err("group_by and agg go together: group_by = [...] with agg = [...]".into());
        };
        if a.is_empty() {
            return Err("agg needs at least one aggregate, e.g. \"count(*) AS n\"".into());
        }
        plan.aggregate(exprs(g)?, exprs(a)?)
    } else if let Some(j) = &op.join {
        let on = match (&j.on, &j.condition) {
            (Some(cols), None) if !cols.is_empty() => JoinOn::Using(cols.clone()),
            (None, Some(c)) => JoinOn::Condition(expr(c)?),
            _ => return Err("a join needs exactly one of on = [columns] or condition = \"…\"".into()),
        };
        let kind: JoinKind = j
            .how
            .as_deref()
            .unwrap_or("inner")
            .parse()
            .map_err(|e: crate::query::QueryError| e.to_string())?;
        let mut right = LogicalPlan::DeltaTable {
            path: table(&j.table),
        };
        if let Some(f) = &j.filter {
            right = right.filter(expr(f)?);
        }
        if let Some(s) = &j.select {
            right = right.select(exprs(s)?);
        }
        plan.join(right, on, kind)
    } else {
        unreachable!("calls() found exactly one operation")
    })
}

/// An output mode as written.
pub fn output_mode(text: Option<&str>) -> Result<OutputMode, String> {
    match text.map(str::to_ascii_lowercase).as_deref() {
        None | Some("append") => Ok(OutputMode::Append),
        Some("update") => Ok(OutputMode::Update),
        Some("complete") => Ok(OutputMode::Complete),
        Some(o) => Err(format!(
            "output_mode must be append, update or complete, not `{o}`"
        )),
    }
}

/// A query file made ready to run.
#[derive(Debug, Clone)]
pub struct LoadedQuery {
    /// Its name.
    pub name: String,
    /// The input folder.
    pub input: PathBuf,
    /// The output table.
    pub output: PathBuf,
    /// The checkpoint folder.
    pub checkpoint: PathBuf,
    /// `maxFilesPerTrigger`.
    pub max_files_per_trigger: NonZeroUsize,
    /// The trigger as written (`available-now` when absent).
    pub trigger: Option<String>,
    /// The query.
    pub query: Query,
}

impl QueryFile {
    /// Reads and checks a query file; its paths are taken as written (relative ones against
    /// the working folder, as Spark takes them).
    pub fn load(path: &Path) -> Result<LoadedQuery, QueryFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| QueryFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses query-file text (`path` names it in messages).
    pub fn parse(path: &Path, text: &str) -> Result<LoadedQuery, QueryFileError> {
        Self::parse_in(path, text, Path::new(""))
    }

    /// Reads a query file whose relative paths are taken against `root` (a test's folder).
    pub fn load_in(path: &Path, root: &Path) -> Result<LoadedQuery, QueryFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| QueryFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_in(path, &text, root)
    }

    /// [`QueryFile::parse`] with relative paths taken against `root`.
    pub fn parse_in(path: &Path, text: &str, root: &Path) -> Result<LoadedQuery, QueryFileError> {
        let invalid = |offset: usize, message: String| QueryFileError::Invalid {
            path: path.to_path_buf(),
            line: text[..offset.min(text.len())].matches('\n').count() + 1,
            message,
        };
        let f: QueryFile = toml::from_str(text)
            .map_err(|e| invalid(e.span().map_or(0, |s| s.start), e.message().to_string()))?;
        let name = f
            .name
            .clone()
            .or_else(|| path.file_stem().and_then(|s| s.to_str()).map(str::to_string))
            .unwrap_or_else(|| "query".into());
        let source = f.source.get_ref();
        let mut plan = source_plan(source).map_err(|m| invalid(f.source.span().start, m))?;
        for op in &f.op {
            plan = apply_op(plan, op.get_ref(), &|p: &Path| root.join(p))
                .map_err(|m| invalid(op.span().start, m))?;
        }
        let sink = f.sink.get_ref();
        let spos = f.sink.span().start;
        let mode = output_mode(sink.output_mode.as_deref()).map_err(|m| invalid(spos, m))?;
        let max = source.max_files_per_trigger.unwrap_or(1);
        let max = usize::try_from(max)
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| {
                invalid(
                    f.source.span().start,
                    format!("max_files_per_trigger must be a positive integer, got {max}"),
                )
            })?;
        if let Some(t) = &sink.trigger {
            t.parse::<crate::execution::Trigger>()
                .map_err(|m| invalid(spos, m))?;
        }
        let query = Query::from_plan(plan)
            .output_mode(mode)
            .keep_late_rows(sink.late_rows.unwrap_or(true))
            .fsync(sink.fsync.unwrap_or(false));
        Ok(LoadedQuery {
            checkpoint: root.join(
                sink.checkpoint
                    .clone()
                    .unwrap_or_else(|| Path::new("checkpoints").join(&name)),
            ),
            name,
            input: root.join(&source.path),
            output: root.join(&sink.path),
            max_files_per_trigger: max,
            trigger: sink.trigger.clone(),
            query,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LoadedQuery, QueryFileError> {
        QueryFile::parse(Path::new("q.toml"), text)
    }

    #[test]
    fn a_file_becomes_a_plan_with_its_paths_and_mode() {
        let q = parse(
            r#"
[source]
path = "in"
max_files_per_trigger = 3

[[op]]
watermark = { column = "timestamp", delay = "10 minutes" }

[[op]]
drop_duplicates = ["event_id"]

[[op]]
with_column_renamed = { from = "value", to = "v" }

[sink]
path = "out"
output_mode = "append"
fsync = true
"#,
        )
        .unwrap();
        assert_eq!(q.name, "q");
        assert_eq!(q.query.durability(), crate::checkpoint::Durability::PowerLoss);
        assert_eq!(q.input, PathBuf::from("in"));
        assert_eq!(q.checkpoint, PathBuf::from("checkpoints/q"));
        assert_eq!(q.max_files_per_trigger.get(), 3);
        let tree = q.query.plan.tree_string();
        assert!(
            tree.starts_with("WithColumnsRenamed [value AS v]\n+- Deduplicate [event_id]"),
            "{tree}"
        );
        assert!(
            tree.contains("EventTimeWatermark timestamp, 10 minutes"),
            "{tree}"
        );
    }

    #[test]
    fn mistakes_are_errors_with_the_line() {
        let cases = [
            (
                "[source]\n[sink]\npath = \"o\"\n[[op]]\nfilter = \"x\"\nselect = [\"a\"]\n",
                4,
                "one operation per [[op]] (found select, filter)",
            ),
            (
                "[source]\n[sink]\npath = \"o\"\n[[op]]\n",
                4,
                "an [[op]] needs one operation",
            ),
            (
                "[source]\n[sink]\npath = \"o\"\n[[op]]\ngroup_by = [\"a\"]\n",
                4,
                "group_by and agg go together",
            ),
            (
                "[source]\n[sink]\npath = \"o\"\noutput_mode = \"upsert\"\n",
                2,
                "output_mode must be append, update or complete",
            ),
            (
                "[source]\nformat = \"csv\"\n[sink]\npath = \"o\"\n",
                1,
                "source format `csv` is not served",
            ),
            (
                "[source]\nmax_files_per_trigger = 0\n[sink]\npath = \"o\"\n",
                1,
                "max_files_per_trigger must be a positive integer",
            ),
            (
                "[source]\n[sink]\npath = \"o\"\n[[op]]\njoin = { table = \"t\", how = \"full\", on = [\"a\"] }\n",
                4,
                "full join between a streaming DataFrame",
            ),
            (
                "[source]\n[sink]\npath = \"o\"\n[[op]]\njoin = { table = \"t\" }\n",
                4,
                "exactly one of on = [columns] or condition",
            ),
            (
                "[source]\n[sink]\npath = \"o\"\n[[op]]\nfliter = \"a\"\n",
                5,
                "unknown field `fliter`",
            ),
            (
                "[source]\n[sink]\npath = \"o\"\ntrigger = \"soon\"\n",
                2,
                "trigger must be",
            ),
        ];
        for (text, line, want) in cases {
            let e = parse(text).unwrap_err();
            let QueryFileError::Invalid { line: l, message, .. } = &e else {
                panic!("{e}")
            };
            assert!(message.contains(want), "{text}: {message}");
            assert_eq!(*l, line, "{text}: {e}");
        }
    }
}
