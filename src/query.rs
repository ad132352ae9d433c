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

use crate::duration::parse_duration_ms;
use crate::event::{event_schema, timestamp_type};

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

/// `withWatermark(column, delay)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// The event-time column.
    pub column: String,
    /// The delay in ms.
    pub delay_ms: i64,
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

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    /// `count(*)` (or `count(col)`: input columns are never null).
    Count,
    /// `sum(col)`.
    Sum,
    /// `avg(col)`.
    Avg,
    /// `min(col)`.
    Min,
    /// `max(col)`.
    Max,
}

/// One aggregate column of the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggExpr {
    /// The function.
    pub func: AggFunc,
    /// Its input column (`None` for `count(*)`).
    pub column: Option<String>,
    /// The result column's name.
    pub alias: String,
}

impl AggExpr {
    /// Names the result column.
    pub fn alias(mut self, name: &str) -> Self {
        self.alias = name.to_string();
        self
    }
}

/// `count(*)`, named `count` unless aliased.
pub fn count() -> AggExpr {
    AggExpr {
        func: AggFunc::Count,
        column: None,
        alias: "count".into(),
    }
}

fn agg(func: AggFunc, name: &str, column: &str) -> AggExpr {
    AggExpr {
        func,
        column: Some(column.to_string()),
        alias: format!("{name}({column})"),
    }
}

/// `sum(col)`.
pub fn sum(column: &str) -> AggExpr {
    agg(AggFunc::Sum, "sum", column)
}
/// `avg(col)`.
pub fn avg(column: &str) -> AggExpr {
    agg(AggFunc::Avg, "avg", column)
}
/// `min(col)`.
pub fn min(column: &str) -> AggExpr {
    agg(AggFunc::Min, "min", column)
}
/// `max(col)`.
pub fn max(column: &str) -> AggExpr {
    agg(AggFunc::Max, "max", column)
}

/// `groupBy(window(...)?, cols...).agg(...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregation {
    /// The window over the event-time column, if grouped by one.
    pub window: Option<(String, WindowSpec)>,
    /// Other grouping columns.
    pub keys: Vec<String>,
    /// Aggregate columns.
    pub aggs: Vec<AggExpr>,
}

/// A stream–static join (seed Example 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinSpec {
    /// The static Delta table.
    pub table: std::path::PathBuf,
    /// The join column (on both sides).
    pub on: String,
    /// Keep stream rows without a match (null-filled) instead of dropping them.
    pub left_outer: bool,
}

/// What the query computes, before output mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Every input row as it is.
    Passthrough,
    /// A (windowed) aggregation.
    Aggregate(Aggregation),
    /// Each row joined with a static table.
    Join(JoinSpec),
}

/// A whole query over the event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// `withWatermark`, if any.
    pub watermark: Option<Watermark>,
    /// The computation.
    pub plan: Plan,
    /// The output mode.
    pub output_mode: OutputMode,
}

/// Parses a Spark interval to microseconds (`"5 minutes"` → 300_000_000).
pub fn interval_us(text: &str) -> Result<i64, QueryError> {
    parse_duration_ms(text)
        .map(|ms| ms * 1000)
        .map_err(|e| QueryError::Invalid(e.to_string()))
}

impl Query {
    /// The input stream as it is: a pass-through query in append mode.
    pub fn events() -> Self {
        Self {
            watermark: None,
            plan: Plan::Passthrough,
            output_mode: OutputMode::Append,
        }
    }

    /// `withWatermark(column, delay)`; the delay as Spark writes it ("10 minutes").
    pub fn with_watermark(mut self, column: &str, delay: &str) -> Result<Self, QueryError> {
        let delay_ms = parse_duration_ms(delay).map_err(|e| QueryError::Invalid(e.to_string()))?;
        self.watermark = Some(Watermark {
            column: column.to_string(),
            delay_ms,
        });
        Ok(self)
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
        let duration = interval_us(duration)?;
        let slide = slide.map(interval_us).transpose()?.unwrap_or(duration);
        let start = match start {
            Some(s) if s.trim_start().starts_with('-') => {
                -interval_us(s.trim_start().trim_start_matches('-'))?
            }
            Some(s) => interval_us(s)?,
            None => 0,
        };
        self.plan = Plan::Aggregate(Aggregation {
            window: Some((
                column.to_string(),
                WindowSpec {
                    duration,
                    slide,
                    start,
                },
            )),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            aggs: Vec::new(),
        });
        Ok(self)
    }

    /// `groupBy(keys...)` without a window.
    pub fn group_by(mut self, keys: &[&str]) -> Self {
        self.plan = Plan::Aggregate(Aggregation {
            window: None,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            aggs: Vec::new(),
        });
        self
    }

    /// `.agg(...)` after a `groupBy`.
    pub fn agg(mut self, aggs: Vec<AggExpr>) -> Self {
        if let Plan::Aggregate(a) = &mut self.plan {
            a.aggs = aggs;
        }
        self
    }

    /// `.join(static table, on)`.
    pub fn join(mut self, table: impl Into<std::path::PathBuf>, on: &str, left_outer: bool) -> Self {
        self.plan = Plan::Join(JoinSpec {
            table: table.into(),
            on: on.to_string(),
            left_outer,
        });
        self
    }

    /// `.outputMode(...)`.
    pub fn output_mode(mut self, mode: OutputMode) -> Self {
        self.output_mode = mode;
        self
    }

    /// True when the query keeps state between batches.
    pub fn is_stateful(&self) -> bool {
        matches!(self.plan, Plan::Aggregate(_))
    }

    /// Checks the query against the input schema and Spark's rules; the first problem found.
    pub fn validate(&self) -> Result<(), QueryError> {
        let schema = event_schema();
        let column = |name: &str| -> Result<DataType, QueryError> {
            schema
                .field_with_name(name)
                .map(|f| f.data_type().clone())
                .map_err(|_| QueryError::UnknownColumn {
                    column: name.to_string(),
                    available: columns(&schema),
                })
        };
        if let Some(w) = &self.watermark {
            let t = column(&w.column)?;
            if t != timestamp_type() {
                return Err(QueryError::Invalid(format!(
                    "Event time must be defined on a window or a timestamp, but `{}` is of type {}",
                    w.column,
                    simple_type(&t)
                )));
            }
            if w.delay_ms < 0 {
                return Err(QueryError::Invalid(
                    "delay threshold should not be negative.".into(),
                ));
            }
        }
        match &self.plan {
            Plan::Passthrough | Plan::Join(_) => {
                if self.output_mode == OutputMode::Complete {
                    return Err(QueryError::Invalid(
                        "Complete output mode not supported when there are no streaming aggregations on streaming DataFrames/Datasets".into(),
                    ));
                }
                if let Plan::Join(j) = &self.plan {
                    column(&j.on)?;
                }
            }
            Plan::Aggregate(a) => {
                if let Some((col, w)) = &a.window {
                    let t = column(col)?;
                    if t != timestamp_type() {
                        return Err(QueryError::Invalid(format!(
                            "window() needs a timestamp column, `{col}` is of type {}",
                            simple_type(&t)
                        )));
                    }
                    if w.duration <= 0 {
                        return Err(QueryError::Invalid("The window duration must be positive".into()));
                    }
                    if w.slide <= 0 {
                        return Err(QueryError::Invalid("The slide duration must be positive".into()));
                    }
                    if w.slide > w.duration {
                        return Err(QueryError::Invalid(
                            "The slide duration must be less than or equal to the window duration".into(),
                        ));
                    }
                    if w.start.abs() >= w.slide {
                        return Err(QueryError::Invalid(
                            "The absolute value of the start time must be less than the slide duration"
                                .into(),
                        ));
                    }
                }
                for k in &a.keys {
                    match column(k)? {
                        DataType::Utf8 | DataType::Int32 => {}
                        t => {
                            return Err(QueryError::Invalid(format!(
                                "grouping by `{k}` of type {} is not supported (string and int columns are)",
                                simple_type(&t)
                            )));
                        }
                    }
                }
                if a.aggs.is_empty() {
                    return Err(QueryError::Invalid(
                        "an aggregation needs at least one aggregate".into(),
                    ));
                }
                let mut names: Vec<&str> = a.keys.iter().map(String::as_str).collect();
                if a.window.is_some() {
                    names.push("window");
                }
                for e in &a.aggs {
                    if let Some(c) = &e.column {
                        match column(c)? {
                            DataType::Float64 | DataType::Int32 => {}
                            t => {
                                if e.func != AggFunc::Count {
                                    return Err(QueryError::Invalid(format!(
                                        "{:?}({c}) needs a numeric column, `{c}` is of type {}",
                                        e.func,
                                        simple_type(&t)
                                    )));
                                }
                            }
                        }
                    }
                    if names.contains(&e.alias.as_str()) {
                        return Err(QueryError::Invalid(format!(
                            "result column `{}` is defined twice",
                            e.alias
                        )));
                    }
                    names.push(&e.alias);
                }
                if self.output_mode == OutputMode::Append {
                    let watermarked = match (&self.watermark, &a.window) {
                        (Some(w), Some((col, _))) => &w.column == col,
                        (Some(w), None) => a.keys.contains(&w.column),
                        (None, _) => false,
                    };
                    if !watermarked {
                        return Err(QueryError::Invalid(
                            "Append output mode not supported when there are streaming aggregations on streaming DataFrames/DataSets without watermark (the watermark must be on the grouping window's event-time column)".into(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The input schema the query reads.
    pub fn input_schema(&self) -> SchemaRef {
        event_schema()
    }
}

fn columns(schema: &SchemaRef) -> String {
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("`{}`", f.name()))
        .collect();
    names.join(", ")
}

fn simple_type(t: &DataType) -> &'static str {
    match t {
        DataType::Int32 => "int",
        DataType::Int64 => "bigint",
        DataType::Float64 => "double",
        DataType::Utf8 => "string",
        DataType::Timestamp(..) => "timestamp",
        _ => "other",
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
        let e = agg_query().agg(vec![sum("event_type")]).validate().unwrap_err();
        assert!(e.to_string().contains("needs a numeric column"), "{e}");
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
