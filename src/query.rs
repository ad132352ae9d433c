//! A streaming query as Spark users write one: `withWatermark`, `window`, `groupBy`, aggregates,
//! and an output mode — checked at start with Spark's rules (R10), so a query Spark would reject
//! fails here too, with the same reason.
//!
//! ```
//! use microbatch::query::{Query as Q, count, avg, OutputMode};
//! let q = Q::events()
//!     .with_watermark("timestamp", "10 minutes").unwrap()
//!     .group_by_window("timestamp", "5 minutes", None, None, &["event_type"]).unwrap()
//!     .agg(vec![count().alias("event_count"), avg("value").alias("avg_value")])
//!     .output_mode(OutputMode::Update);
//! q.validate().unwrap();
//! ```

use deltalake::arrow::datatypes::{DataType, SchemaRef};

use crate::checkpoint::atomic::Durability;
use crate::duration::parse_duration_ms;
use crate::event::event_schema;
use crate::expr::{Expr, col};
use crate::operators::join::JoinKind;
use crate::plan::{JoinOn, LogicalPlan};

/// Spark's output modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Emit each result row once: for aggregations, when the watermark passes its window.
    Append,
    /// Emit every result row the batch changed.
    Update,
    /// Emit the whole result every batch.
    Complete,
}

impl std::str::FromStr for OutputMode {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        match s.to_ascii_lowercase().as_str() {
            "append" => Ok(Self::Append),
            "update" => Ok(Self::Update),
            "complete" => Ok(Self::Complete),
            _ => Err(QueryError::Invalid(format!(
                "output mode must be append, update or complete, got `{s}`"
            ))),
        }
    }
}

impl std::fmt::Display for OutputMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Append => "append",
            Self::Update => "update",
            Self::Complete => "complete",
        })
    }
}

/// Errors in a query's definition, found before it runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The query shape is not allowed.
    #[error("{0}")]
    Invalid(String),
    /// A column does not exist.
    #[error("column `{column}` does not exist; the input has {available}")]
    UnknownColumn {
        /// The name used.
        column: String,
        /// The columns there are.
        available: String,
    },
}

/// `window(column, duration, slide, start)`, all in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    /// Window length.
    pub duration: i64,
    /// Slide (= duration for tumbling windows).
    pub slide: i64,
    /// Start offset from the epoch.
    pub start: i64,
}

/// An aggregate column of the result: `count()`, `avg("value").alias("avg_value")`.
#[derive(Debug, Clone, PartialEq)]
pub struct AggExpr(pub Expr);

impl AggExpr {
    /// Names the result column.
    pub fn alias(self, name: &str) -> Self {
        let inner = match self.0 {
            Expr::Alias { expr, .. } => *expr,
            e => e,
        };
        Self(Expr::Alias {
            expr: Box::new(inner),
            name: name.to_string(),
        })
    }
}

fn call(name: &str, args: Vec<Expr>) -> AggExpr {
    AggExpr(Expr::Function {
        name: name.to_string(),
        args,
        distinct: false,
    })
}

/// `count(*)`, named `count` unless aliased (as PySpark's `groupBy(...).count()`).
pub fn count() -> AggExpr {
    call("count", vec![Expr::Star]).alias("count")
}
/// `sum(col)`.
pub fn sum(column: &str) -> AggExpr {
    call("sum", vec![col(column)])
}
/// `avg(col)`.
pub fn avg(column: &str) -> AggExpr {
    call("avg", vec![col(column)])
}
/// `min(col)`.
pub fn min(column: &str) -> AggExpr {
    call("min", vec![col(column)])
}
/// `max(col)`.
pub fn max(column: &str) -> AggExpr {
    call("max", vec![col(column)])
}

/// A whole streaming query: its logical plan and output mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// What it computes.
    pub plan: LogicalPlan,
    /// `groupBy(...)` waiting for its `.agg(...)`.
    pending_group: Option<Vec<Expr>>,
    /// The output mode.
    pub output_mode: OutputMode,
    /// Keep the rows a watermark drops in `<output>_late` (on by default).
    late_rows: bool,
    /// What the query's durable writes survive (the process dying, by default).
    durability: Durability,
}

/// Parses a Spark interval to microseconds (`"5 minutes"` → 300_000_000).
pub fn interval_us(text: &str) -> Result<i64, QueryError> {
    parse_duration_ms(text)
        .map(|ms| ms * 1000)
        .map_err(|e| QueryError::Invalid(e.to_string()))
}

fn lit_str(s: &str) -> Expr {
    Expr::Literal(crate::expr::Literal::String(s.to_string()))
}

impl Query {
    /// The seed's event stream as it is: a pass-through query in append mode.
    pub fn events() -> Self {
        Self::from_plan(LogicalPlan::seed_events())
    }

    /// A query over any plan, in append mode.
    pub fn from_plan(plan: LogicalPlan) -> Self {
        Self {
            plan,
            pending_group: None,
            output_mode: OutputMode::Append,
            late_rows: true,
            durability: Durability::ProcessCrash,
        }
    }

    fn map(mut self, f: impl FnOnce(LogicalPlan) -> LogicalPlan) -> Self {
        self.plan = f(self.plan);
        self
    }

    /// `withWatermark(column, delay)`; the delay as Spark writes it ("10 minutes").
    pub fn with_watermark(self, column: &str, delay: &str) -> Result<Self, QueryError> {
        parse_duration_ms(delay).map_err(|e| QueryError::Invalid(e.to_string()))?;
        Ok(self.map(|p| p.with_watermark(column, delay)))
    }

    /// `filter(condition)`.
    pub fn filter(self, condition: Expr) -> Self {
        self.map(|p| p.filter(condition))
    }

    /// `select(exprs...)`.
    pub fn select(self, exprs: Vec<Expr>) -> Self {
        self.map(|p| p.select(exprs))
    }

    /// `withColumn(name, expr)`: a column added, or replaced in place where `name` exists.
    pub fn with_column(self, name: &str, expr: Expr) -> Self {
        self.map(|p| p.with_columns(vec![(name.to_string(), expr)]))
    }

    /// `withColumnRenamed(from, to)`.
    pub fn with_column_renamed(self, from: &str, to: &str) -> Self {
        self.map(|p| p.with_columns_renamed(vec![(from.to_string(), to.to_string())]))
    }

    /// `drop(cols...)`.
    pub fn drop(self, columns: &[&str]) -> Self {
        let columns = columns.iter().map(|c| c.to_string()).collect();
        self.map(|p| p.drop_columns(columns))
    }

    /// `selectExpr(exprs...)`: Spark SQL expression strings (`"upper(event_type) AS kind"`,
    /// `"value * 2"`, `"*"`).
    pub fn select_expr(self, exprs: &[&str]) -> Result<Self, QueryError> {
        let exprs = exprs
            .iter()
            .map(|e| crate::expr::parse_expr(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| QueryError::Invalid(e.to_string()))?;
        Ok(self.select(exprs))
    }

    /// `filter("condition")` / `where("condition")`: a Spark SQL boolean expression.
    pub fn filter_expr(self, condition: &str) -> Result<Self, QueryError> {
        let c = crate::expr::parse_expr(condition).map_err(|e| QueryError::Invalid(e.to_string()))?;
        Ok(self.filter(c))
    }

    /// `dropDuplicates(cols)` (every column when empty), or `dropDuplicatesWithinWatermark`.
    pub fn drop_duplicates(self, columns: &[&str], within_watermark: bool) -> Self {
        let columns = columns.iter().map(|c| c.to_string()).collect();
        self.map(|p| p.drop_duplicates(columns, within_watermark))
    }

    /// `groupBy(window(column, duration[, slide[, start]]), keys...)`.
    pub fn group_by_window(
        mut self,
        column: &str,
        duration: &str,
        slide: Option<&str>,
        start: Option<&str>,
        keys: &[&str],
    ) -> Result<Self, QueryError> {
        interval_us(duration)?;
        let mut args = vec![col(column), lit_str(duration)];
        if let Some(s) = slide {
            interval_us(s)?;
            args.push(lit_str(s));
        }
        if let Some(s) = start {
            if slide.is_none() {
                args.push(lit_str(duration));
            }
            args.push(lit_str(s));
        }
        let mut group = vec![Expr::Function {
            name: "window".into(),
            args,
            distinct: false,
        }];
        group.extend(keys.iter().map(|k| col(k)));
        self.pending_group = Some(group);
        Ok(self)
    }

    /// `groupBy(keys...)` without a window.
    pub fn group_by(mut self, keys: &[&str]) -> Self {
        self.pending_group = Some(keys.iter().map(|k| col(k)).collect());
        self
    }

    /// `groupBy(exprs...)`: any grouping expressions (`window(...)` among them).
    pub fn group_by_exprs(mut self, group: Vec<Expr>) -> Self {
        self.pending_group = Some(group);
        self
    }

    /// `.agg(...)` after a `groupBy`.
    pub fn agg(mut self, aggs: Vec<AggExpr>) -> Self {
        let group = self.pending_group.take().unwrap_or_default();
        self.map(|p| p.aggregate(group, aggs.into_iter().map(|a| a.0).collect()))
    }

    /// `.join(static Delta table, on=[column], how="inner"|"left")`.
    pub fn join(self, table: impl Into<std::path::PathBuf>, on: &str, left_outer: bool) -> Self {
        let kind = if left_outer {
            JoinKind::LeftOuter
        } else {
            JoinKind::Inner
        };
        self.join_with(
            LogicalPlan::DeltaTable { path: table.into() },
            JoinOn::Using(vec![on.to_string()]),
            kind,
        )
    }

    /// `.join(other, on, how)` with any static relation, condition and join type.
    pub fn join_with(self, other: LogicalPlan, on: JoinOn, kind: JoinKind) -> Self {
        self.map(|p| p.join(other, on, kind))
    }

    /// `.outputMode(...)`.
    pub fn output_mode(mut self, mode: OutputMode) -> Self {
        self.output_mode = mode;
        self
    }

    /// Whether the rows a watermark drops are kept in the `<output>_late` table (default yes).
    pub fn keep_late_rows(mut self, keep: bool) -> Self {
        self.late_rows = keep;
        self
    }

    /// True when the rows a watermark drops are kept in `<output>_late`.
    pub fn keeps_late_rows(&self) -> bool {
        self.late_rows
    }

    /// Whether every durable write is fsynced — the checkpoint's files and folders and the
    /// output tables' new files and log entries — so exactly-once holds across power loss too
    /// (default no: across the process dying, as Spark on a local file system).
    pub fn fsync(mut self, fsync: bool) -> Self {
        self.durability = Durability::from_fsync(fsync);
        self
    }

    /// What the query's durable writes survive.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// True when the query keeps state between batches.
    pub fn is_stateful(&self) -> bool {
        fn stateful(p: &LogicalPlan) -> bool {
            matches!(p, LogicalPlan::Aggregate { .. } | LogicalPlan::Deduplicate { .. })
                || p.children().into_iter().any(stateful)
        }
        stateful(&self.plan)
    }

    /// True when the query defines a watermark.
    pub fn has_watermark(&self) -> bool {
        self.plan.has_watermark()
    }

    /// Checks the query against its schemas and Spark's rules (reading the static tables'
    /// schemas); the first problem found.
    pub fn validate(&self) -> Result<(), QueryError> {
        if self.pending_group.is_some() {
            return Err(QueryError::Invalid(
                "groupBy() needs .agg(...) (an aggregation needs at least one aggregate)".into(),
            ));
        }
        let plan = self.plan.clone();
        let mode = self.output_mode;
        // The analyzer is async (it opens static tables); a runtime of its own on a thread of
        // its own lets this be called from anywhere, inside an async context too.
        let result = std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| {
                        QueryError::Invalid(format!("cannot start a runtime to check the query: {e}"))
                    })?
                    .block_on(async { crate::plan::analyze(&plan, mode).await.map(|_| ()) })
                    .map_err(|e| match e {
                        crate::operators::OperatorError::Query(q) => q,
                        other => QueryError::Invalid(other.to_string()),
                    })
            })
            .join()
        });
        result.unwrap_or_else(|_| Err(QueryError::Invalid("the query check panicked".into())))
    }

    /// The input schema the query reads.
    pub fn input_schema(&self) -> SchemaRef {
        event_schema()
    }
}

/// A type's name as Spark writes it (`int`, `bigint`, `decimal(10,2)`, `struct<a:int>`).
pub fn simple_type(t: &DataType) -> String {
    match t {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary | DataType::LargeBinary => "binary".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp".into(),
        DataType::Timestamp(_, None) => "timestamp_ntz".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::List(f) => format!("array<{}>", simple_type(f.data_type())),
        DataType::Struct(fs) => format!(
            "struct<{}>",
            fs.iter()
                .map(|f| format!("{}:{}", f.name(), simple_type(f.data_type())))
                .collect::<Vec<_>>()
                .join(",")
        ),
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map<{},{}>",
                simple_type(kv[0].data_type()),
                simple_type(kv[1].data_type())
            ),
            _ => "map".into(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg_query() -> Query {
        Query::events()
            .with_watermark("timestamp", "10 minutes")
            .unwrap()
            .group_by_window("timestamp", "5 minutes", Some("1 minute"), None, &["user_id"])
            .unwrap()
            .agg(vec![count()])
    }

    #[test]
    fn spark_validity_rules() {
        assert!(agg_query().output_mode(OutputMode::Append).validate().is_ok());
        let no_wm = Query::events()
            .group_by_window("timestamp", "5 minutes", None, None, &["event_type"])
            .unwrap()
            .agg(vec![count()]);
        let e = no_wm
            .clone()
            .output_mode(OutputMode::Append)
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("Append output mode not supported"), "{e}");
        assert!(no_wm.clone().output_mode(OutputMode::Update).validate().is_ok());
        assert!(no_wm.output_mode(OutputMode::Complete).validate().is_ok());
        let e = Query::events()
            .output_mode(OutputMode::Complete)
            .validate()
            .unwrap_err();
        assert!(
            e.to_string().contains("Complete output mode not supported"),
            "{e}"
        );
        let e = Query::events()
            .with_watermark("user_id", "1 minute")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("`user_id` is of type int"), "{e}");
        let e = Query::events()
            .with_watermark("ts", "1 minute")
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(matches!(e, QueryError::UnknownColumn { .. }), "{e}");
        let e = Query::events()
            .group_by_window("timestamp", "1 minute", Some("5 minutes"), None, &[])
            .unwrap()
            .agg(vec![count()])
            .output_mode(OutputMode::Update)
            .validate()
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("slide duration must be less than or equal"),
            "{e}"
        );
        let e = Query::events()
            .group_by_window(
                "timestamp",
                "10 minutes",
                Some("5 minutes"),
                Some("5 minutes"),
                &[],
            )
            .unwrap()
            .agg(vec![count()])
            .output_mode(OutputMode::Update)
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("start time"), "{e}");
        let e = Query::events()
            .with_watermark("timestamp", "10 minutes")
            .unwrap()
            .group_by_window("timestamp", "5 minutes", None, None, &["user_id"])
            .unwrap()
            .agg(vec![sum("event_type")])
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("needs a numeric input"), "{e}");
        let e = agg_query().agg(vec![count()]).validate().unwrap_err();
        assert!(e.to_string().contains("Multiple streaming aggregations"), "{e}");
    }
}

/// The seed's four queries, with the table and checkpoint names the seed gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SeedQuery {
    /// Example 1: every event into `events` (append), checkpoint `raw`.
    Passthrough,
    /// Example 2: 5-minute tumbling windows by `event_type`, `count(*) as event_count`,
    /// `avg(value) as avg_value`, watermark 10 minutes, update mode, into `event_aggregates`,
    /// checkpoint `agg`.
    Aggregations,
    /// Example 3: 5-minute windows sliding by 1 minute by `user_id`, `count`, watermark 10
    /// minutes, append mode, into `user_activity`, checkpoint `late`.
    LateData,
    /// Example 4: events inner-joined on `user_id` with the static table `users`, appended to
    /// `enriched_events`, checkpoint `enriched`.
    Join,
}

impl SeedQuery {
    /// All four, in the seed's order.
    pub const ALL: [SeedQuery; 4] = [Self::Passthrough, Self::Aggregations, Self::LateData, Self::Join];

    /// The CLI name (`passthrough`, `aggregations`, `late-data`, `join`).
    pub fn cli_name(self) -> &'static str {
        match self {
            Self::Passthrough => "passthrough",
            Self::Aggregations => "aggregations",
            Self::LateData => "late-data",
            Self::Join => "join",
        }
    }

    /// The checkpoint folder's name (and the progress `name`).
    pub fn checkpoint_name(self) -> &'static str {
        match self {
            Self::Passthrough => "raw",
            Self::Aggregations => "agg",
            Self::LateData => "late",
            Self::Join => "enriched",
        }
    }

    /// The output table's folder name.
    pub fn table_name(self) -> &'static str {
        match self {
            Self::Passthrough => "events",
            Self::Aggregations => "event_aggregates",
            Self::LateData => "user_activity",
            Self::Join => "enriched_events",
        }
    }

    /// The query, with `data` the folder holding the tables (for the join's `users`).
    pub fn query(self, data: &std::path::Path) -> Query {
        // The seed's definitions are fixed and valid: every unwrap below parses a literal.
        match self {
            Self::Passthrough => Query::events(),
            Self::Aggregations => Query::events()
                .with_watermark("timestamp", "10 minutes")
                .expect("literal delay")
                .group_by_window("timestamp", "5 minutes", None, None, &["event_type"])
                .expect("literal window")
                .agg(vec![
                    count().alias("event_count"),
                    avg("value").alias("avg_value"),
                ])
                .output_mode(OutputMode::Update),
            Self::LateData => Query::events()
                .with_watermark("timestamp", "10 minutes")
                .expect("literal delay")
                .group_by_window("timestamp", "5 minutes", Some("1 minute"), None, &["user_id"])
                .expect("literal window")
                .agg(vec![count()])
                .output_mode(OutputMode::Append),
            Self::Join => Query::events().join(data.join("users"), "user_id", false),
        }
    }
}

impl std::str::FromStr for SeedQuery {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        Self::ALL
            .into_iter()
            .find(|q| q.cli_name() == s || q.checkpoint_name() == s)
            .ok_or_else(|| {
                QueryError::Invalid(format!(
                    "unknown query `{s}`; the seed's queries are passthrough, aggregations, late-data, join"
                ))
            })
    }
}
