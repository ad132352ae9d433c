//! The analyzer: resolves a [`LogicalPlan`] against schemas, applies Spark's streaming rules
//! (`UnsupportedOperationChecker`, R10) and decides — once — the physical steps, the output
//! schema, the write mode and the stateful operators' layout.
//!
//! Event time travels as Spark carries it: `withWatermark` marks its column's field with the
//! metadata key `spark.watermarkDelayMs`; a projection of the column, a `window()` over it
//! and an aggregation's grouping column keep the mark, so an operator knows whether its keys
//! carry event time.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::{JoinOn, LogicalPlan};
use crate::event::event_schema;
use crate::expr::{BinaryOp, Expr, PhysicalExpr};
use crate::operators::OperatorError;
use crate::operators::aggregate::{AggCall, AggFunc, AggregateSpec, EventTimeKey, GroupColumn, window_type};
use crate::operators::dedup::DedupSpec;
use crate::operators::join::{JoinKind, JoinSpec, open_static_table};
use crate::query::{OutputMode, QueryError, WindowSpec, interval_us, simple_type};
use crate::sink::upsert::UpsertLayout;

/// The field metadata key Spark marks an event-time column with.
pub const WATERMARK_DELAY_KEY: &str = "spark.watermarkDelayMs";

/// One physical step, in data-flow order.
#[derive(Debug)]
pub enum Step {
    /// Computes the output columns.
    Project {
        /// Expression and output field per column.
        exprs: Vec<(PhysicalExpr, Field)>,
        /// The output schema.
        schema: SchemaRef,
    },
    /// Keeps rows for which the condition is true.
    Filter {
        /// The condition (boolean).
        condition: PhysicalExpr,
        /// The schema (unchanged).
        schema: SchemaRef,
    },
    /// Observes event time.
    Watermark {
        /// Column index.
        column: usize,
        /// Delay, ms.
        delay_ms: i64,
        /// The schema (unchanged, the column marked).
        schema: SchemaRef,
    },
    /// A stateful aggregation.
    Aggregate {
        /// Its input schema.
        input: SchemaRef,
        /// What it computes.
        spec: AggregateSpec,
    },
    /// Stateful deduplication.
    Dedup {
        /// Its input schema.
        input: SchemaRef,
        /// What it keys on.
        spec: DedupSpec,
    },
    /// A stream–static join.
    Join {
        /// The stream side's schema.
        input: SchemaRef,
        /// The static table, opened.
        table: Box<DeltaTable>,
        /// The static table's schema as read.
        table_schema: SchemaRef,
        /// Stateless steps over the static table's rows (its select/filter).
        static_steps: Vec<Step>,
        /// The static side's schema after them.
        static_schema: SchemaRef,
        /// The join.
        spec: JoinSpec,
    },
}

/// How the output rows reach the Delta table, decided by the plan and the output mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    /// Each batch's rows are added.
    Append,
    /// Each batch's rows replace the table's contents (complete mode).
    ReplaceAll,
    /// Each batch's rows replace the rows with the same key (update mode of an aggregation).
    Upsert(UpsertLayout),
}

/// What a stateful operator keeps, for the checkpoint's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatefulOperator {
    /// Its id (`state/<id>/`).
    pub id: usize,
    /// Spark's operator name (`stateStoreSave`, `dedupe`, `dedupeWithinWatermark`).
    pub name: String,
    /// The key columns and types.
    pub key: String,
    /// The value columns and types.
    pub value: String,
}

/// A resolved query.
#[derive(Debug)]
pub struct Analyzed {
    /// The stream's schema (what the source decodes).
    pub source_schema: SchemaRef,
    /// The source's reader options.
    pub source_options: BTreeMap<String, String>,
    /// The physical steps, source to sink.
    pub steps: Vec<Step>,
    /// The rows the sink receives.
    pub output_schema: SchemaRef,
    /// How they are written.
    pub write: WriteMode,
    /// The output mode.
    pub output_mode: OutputMode,
    /// The stateful operators, in plan order.
    pub stateful: Vec<StatefulOperator>,
    /// True when the plan defines a watermark.
    pub has_watermark: bool,
}

/// A relation as analysed so far.
struct Node {
    schema: SchemaRef,
    /// The steps that produce it from the stream, or from its static table.
    steps: Vec<Step>,
    /// The static table it reads, if it is a static relation.
    table: Option<(PathBuf, Box<DeltaTable>, SchemaRef)>,
    /// Aggregations met so far (Spark allows one).
    aggregations: usize,
    /// Key columns of the last aggregation, by output name (for update mode's upsert).
    group_names: Vec<String>,
    window_name: Option<String>,
    /// Stateful operators so far.
    stateful: Vec<StatefulOperator>,
}

fn invalid(msg: impl Into<String>) -> OperatorError {
    QueryError::Invalid(msg.into()).into()
}

fn expr_error(e: crate::expr::ExprError) -> OperatorError {
    QueryError::Invalid(e.to_string()).into()
}

/// The schema a stream source decodes.
pub fn source_schema(schema: Option<&str>) -> Result<SchemaRef, OperatorError> {
    match schema {
        None => Ok(event_schema()),
        Some(text) => crate::plan::physical::parse_source_schema(text),
    }
}

/// Index of column `name` (case-insensitive, as Spark by default), or Spark's error.
fn column_index(schema: &Schema, name: &str) -> Result<usize, OperatorError> {
    let found: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.name().eq_ignore_ascii_case(name))
        .map(|(i, _)| i)
        .collect();
    match found.as_slice() {
        [i] => Ok(*i),
        [] => Err(QueryError::UnknownColumn {
            column: name.to_string(),
            available: schema
                .fields()
                .iter()
                .map(|f| format!("`{}`", f.name()))
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into()),
        _ => Err(invalid(format!(
            "[AMBIGUOUS_REFERENCE] Reference `{name}` is ambiguous, could be: {}",
            found
                .iter()
                .map(|i| format!("`{}`", schema.field(*i).name()))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn watermark_delay(f: &Field) -> Option<i64> {
    f.metadata().get(WATERMARK_DELAY_KEY).and_then(|v| v.parse().ok())
}

fn is_timestamp(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(..))
}

/// The plain column an expression names, if it is one (possibly aliased).
fn as_column(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c),
        Expr::Alias { expr, .. } => as_column(expr),
        _ => None,
    }
}

fn output_name(e: &Expr) -> String {
    e.output_name()
}

/// `window(col, duration[, slide[, start]])`, if `e` is one: its column expression and spec.
fn window_call(e: &Expr) -> Result<Option<(&Expr, WindowSpec)>, OperatorError> {
    let (name, args) = match e {
        Expr::Function { name, args, .. } => (name, args),
        Expr::Alias { expr, .. } => return window_call(expr),
        _ => return Ok(None),
    };
    if name != "window" {
        return Ok(None);
    }
    let text = |i: usize| -> Result<Option<String>, OperatorError> {
        match args.get(i) {
            None => Ok(None),
            Some(Expr::Literal(crate::expr::Literal::String(s))) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(format!(
                "window(): argument {} must be an interval string like '5 minutes', got {}",
                i + 1,
                other.output_name()
            ))),
        }
    };
    let Some(column) = args.first() else {
        return Err(invalid("window() needs a time column and a duration"));
    };
    let duration = interval_us(&text(1)?.ok_or_else(|| invalid("window() needs a duration"))?)?;
    let slide = text(2)?.map(|s| interval_us(&s)).transpose()?.unwrap_or(duration);
    let start = match text(3)? {
        Some(s) if s.trim_start().starts_with('-') => -interval_us(s.trim_start().trim_start_matches('-'))?,
        Some(s) => interval_us(&s)?,
        None => 0,
    };
    let w = WindowSpec {
        duration,
        slide,
        start,
    };
    if w.duration <= 0 {
        return Err(invalid("The window duration must be positive"));
    }
    if w.slide <= 0 {
        return Err(invalid("The slide duration must be positive"));
    }
    if w.slide > w.duration {
        return Err(invalid(
            "The slide duration must be less than or equal to the window duration",
        ));
    }
    if w.start.abs() >= w.slide {
        return Err(invalid(
            "The absolute value of the start time must be less than the slide duration",
        ));
    }
    Ok(Some((column, w)))
}

/// An aggregate call: its function, input and whether it counts rows.
fn aggregate_call(e: &Expr) -> Option<(&str, &[Expr], bool)> {
    match e {
        Expr::Function { name, args, distinct } if crate::expr::is_aggregate_function(name) => {
            Some((name.as_str(), args.as_slice(), *distinct))
        }
        Expr::Alias { expr, .. } => aggregate_call(expr),
        _ => None,
    }
}

/// Resolves `exprs` over `schema` into a projection step (also used for the hidden columns an
/// aggregation or join needs): each expression's output field, event time kept on a column
/// passed through.
fn project(schema: &SchemaRef, exprs: &[Expr]) -> Result<Step, OperatorError> {
    let mut out = Vec::new();
    for e in exprs {
        if matches!(e, Expr::Star) {
            for (i, f) in schema.fields().iter().enumerate() {
                let p =
                    PhysicalExpr::column(schema, i).ok_or_else(|| invalid("a column that is not there"))?;
                out.push((p, f.as_ref().clone()));
            }
            continue;
        }
        if aggregate_call(e).is_some() {
            return Err(invalid(format!(
                "[MISSING_GROUP_BY] The query does not include a GROUP BY clause: the aggregate {} is only allowed in agg() after groupBy()",
                e.output_name()
            )));
        }
        if window_call(e)?.is_some() {
            return Err(invalid(
                "window() is supported in groupBy() only (microbatch does not expand windows in a select)",
            ));
        }
        let p = e.resolve(schema).map_err(expr_error)?;
        let mut field = Field::new(e.output_name_in(schema), p.data_type().clone(), true);
        // A column passed through keeps its metadata (a struct field path like `window.start`
        // is not one column).
        if let Some(c) = as_column(e)
            && let Ok(i) = column_index(schema, c)
        {
            field = field.with_metadata(schema.field(i).metadata().clone());
        }
        out.push((p, field));
    }
    let schema = Arc::new(Schema::new(
        out.iter().map(|(_, f)| f.clone()).collect::<Vec<_>>(),
    ));
    Ok(Step::Project { exprs: out, schema })
}

fn step_schema(s: &Step) -> SchemaRef {
    match s {
        Step::Project { schema, .. } | Step::Filter { schema, .. } | Step::Watermark { schema, .. } => {
            schema.clone()
        }
        Step::Aggregate { input, spec } => aggregate_schema(input, spec),
        Step::Dedup { input, .. } => input.clone(),
        Step::Join {
            input,
            static_schema,
            spec,
            ..
        } => {
            crate::operators::join::join_schema(input, static_schema, spec).unwrap_or_else(|_| input.clone())
        }
    }
}

fn aggregate_schema(input: &SchemaRef, spec: &AggregateSpec) -> SchemaRef {
    let mut fields = Vec::new();
    for g in &spec.group {
        match g {
            GroupColumn::Window(c, _) => {
                let mut f = Field::new("window", window_type(), true);
                if let Some(d) = watermark_delay(input.field(*c)) {
                    f = f.with_metadata(HashMap::from([(WATERMARK_DELAY_KEY.to_string(), d.to_string())]));
                }
                fields.push(f);
            }
            GroupColumn::Column(c) => fields.push(input.field(*c).as_ref().clone().with_nullable(true)),
        }
    }
    for a in &spec.aggs {
        let t = a
            .func
            .result_type(a.input.map(|c| input.field(c).data_type()))
            .unwrap_or(DataType::Null);
        fields.push(Field::new(&a.name, t, true));
    }
    Arc::new(Schema::new(fields))
}

fn describe_fields(fields: &[Field]) -> String {
    fields
        .iter()
        .map(|f| format!("{} {}", f.name(), simple_type(f.data_type())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Analyses `plan` written with `mode`; opens the static tables it reads.
pub async fn analyze(plan: &LogicalPlan, mode: OutputMode) -> Result<Analyzed, OperatorError> {
    if !plan.is_streaming() {
        return Err(invalid(
            "Queries with streaming sources must be executed with writeStream.start(): the plan reads no stream",
        ));
    }
    let mut source = None;
    // Spark's optimizer moves filters below the watermark where they do not read event time.
    let optimized = crate::plan::optimize::push_filters_below_watermark(plan.clone());
    let mut node = analyze_node(&optimized, &mut source).await?;
    let (source_schema, source_options) = source.ok_or_else(|| invalid("the plan reads no stream"))?;
    if node.table.is_some() {
        return Err(invalid("the query's result is not streaming"));
    }
    let has_watermark = plan.has_watermark();
    match mode {
        OutputMode::Complete if node.aggregations == 0 => {
            return Err(invalid(
                "Complete output mode not supported when there are no streaming aggregations on streaming DataFrames/Datasets",
            ));
        }
        _ => {}
    }
    // Append mode with an aggregation needs the watermark on its grouping keys (R10.2).
    for s in &node.steps {
        if let Step::Aggregate { spec, .. } = s
            && mode == OutputMode::Append
            && spec.event_time == EventTimeKey::None
        {
            return Err(invalid(
                "Append output mode not supported when there are streaming aggregations on streaming DataFrames/DataSets without watermark (the watermark must be on a grouping column or the grouping window's event-time column)",
            ));
        }
    }
    // The aggregation's output mode is the query's.
    for s in &mut node.steps {
        if let Step::Aggregate { spec, .. } = s {
            spec.mode = mode;
        }
    }
    let output_schema = node
        .steps
        .last()
        .map_or_else(|| source_schema.clone(), step_schema);
    let output_schema = strip_metadata(&output_schema);
    let mut seen = std::collections::BTreeSet::new();
    for f in output_schema.fields() {
        if !seen.insert(f.name().to_ascii_lowercase()) {
            return Err(invalid(format!(
                "[DELTA_DUPLICATE_COLUMNS_FOUND] Found duplicate column(s) in the data to save: `{}`; rename one (alias or withColumnRenamed)",
                f.name()
            )));
        }
    }
    let write = match mode {
        OutputMode::Append => WriteMode::Append,
        OutputMode::Complete => WriteMode::ReplaceAll,
        // Update without an aggregation is append (R9.3).
        OutputMode::Update if node.aggregations == 0 => WriteMode::Append,
        OutputMode::Update => {
            let mut key_columns = Vec::new();
            for name in node.window_name.iter().chain(&node.group_names) {
                key_columns.push(output_schema.index_of(name).map_err(|_| {
                    invalid(format!(
                        "update mode writes an upsert by the grouping columns, but the grouping column `{name}` is not in the output; keep it in the select after the aggregation"
                    ))
                })?);
            }
            let bucket = match &node.window_name {
                Some(w) => {
                    let c = output_schema
                        .index_of(w)
                        .map_err(|_| invalid("window column lost"))?;
                    let duration = node.steps.iter().find_map(|s| match s {
                        Step::Aggregate { spec, .. } => spec.group.iter().find_map(|g| match g {
                            GroupColumn::Window(_, w) => Some(w.duration),
                            GroupColumn::Column(_) => None,
                        }),
                        _ => None,
                    });
                    // 12 windows per bucket: a batch touches the newest one or two.
                    duration.map(|d| (c, d.saturating_mul(12)))
                }
                None => None,
            };
            WriteMode::Upsert(UpsertLayout { key_columns, bucket })
        }
    };
    Ok(Analyzed {
        source_schema,
        source_options,
        steps: node.steps,
        output_schema,
        write,
        output_mode: mode,
        stateful: node.stateful,
        has_watermark,
    })
}

fn strip_metadata(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_metadata(HashMap::new()))
            .collect::<Vec<_>>(),
    ))
}

/// `withColumns`: each input column, replaced in place where a new one has its name
/// (case-insensitive, as Spark), then the new ones in order.
fn with_columns(schema: &Schema, columns: &[(String, Expr)]) -> Vec<Expr> {
    let alias = |name: &str, e: &Expr| Expr::Alias {
        expr: Box::new(e.clone()),
        name: name.to_string(),
    };
    let mut exprs: Vec<Expr> = schema
        .fields()
        .iter()
        .map(
            |f| match columns.iter().find(|(n, _)| n.eq_ignore_ascii_case(f.name())) {
                Some((n, e)) => alias(n, e),
                None => Expr::Column(f.name().clone()),
            },
        )
        .collect();
    for (n, e) in columns {
        if !schema.fields().iter().any(|f| f.name().eq_ignore_ascii_case(n)) {
            exprs.push(alias(n, e));
        }
    }
    exprs
}

/// `withColumnsRenamed`: every column, those named renamed (a name not there is ignored, as
/// in Spark).
fn renamed(schema: &Schema, renames: &[(String, String)]) -> Vec<Expr> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let c = Expr::Column(f.name().clone());
            match renames
                .iter()
                .find(|(from, _)| from.eq_ignore_ascii_case(f.name()))
            {
                Some((_, to)) => Expr::Alias {
                    expr: Box::new(c),
                    name: to.clone(),
                },
                None => c,
            }
        })
        .collect()
}

/// `drop(cols)`: every column but those named (a name not there is ignored, as in Spark).
fn dropped(schema: &Schema, columns: &[String]) -> Vec<Expr> {
    schema
        .fields()
        .iter()
        .filter(|f| !columns.iter().any(|c| c.eq_ignore_ascii_case(f.name())))
        .map(|f| Expr::Column(f.name().clone()))
        .collect()
}

/// A projection over node `n`: its step, and the grouping and window names carried through.
fn project_node(mut n: Node, exprs: &[Expr]) -> Result<Node, OperatorError> {
    let step = project(&n.schema, exprs)?;
    // Grouping columns keep their names through a projection only as plain columns.
    let renames: Vec<(String, String)> = exprs
        .iter()
        .filter_map(|e| as_column(e).map(|c| (c.to_ascii_lowercase(), output_name(e))))
        .collect();
    let rename = |name: &String| {
        renames
            .iter()
            .find(|(from, _)| *from == name.to_ascii_lowercase())
            .map(|(_, to)| to.clone())
    };
    let star = exprs.iter().any(|e| matches!(e, Expr::Star));
    n.group_names = n
        .group_names
        .iter()
        .filter_map(|g| if star { Some(g.clone()) } else { rename(g) })
        .collect();
    n.window_name = n
        .window_name
        .as_ref()
        .and_then(|w| if star { Some(w.clone()) } else { rename(w) });
    n.schema = step_schema(&step);
    n.steps.push(step);
    Ok(n)
}

type SourceInfo = Option<(SchemaRef, BTreeMap<String, String>)>;

fn analyze_node<'a>(
    plan: &'a LogicalPlan,
    source: &'a mut SourceInfo,
) -> futures::future::BoxFuture<'a, Result<Node, OperatorError>> {
    Box::pin(async move {
        let leaf = |schema: SchemaRef| Node {
            schema,
            steps: Vec::new(),
            table: None,
            aggregations: 0,
            group_names: Vec::new(),
            window_name: None,
            stateful: Vec::new(),
        };
        match plan {
            LogicalPlan::StreamSource { schema, options } => {
                if source.is_some() {
                    return Err(invalid(
                        "the query reads two streams (a stream–stream join or union): microbatch runs one stream per query",
                    ));
                }
                let s = source_schema(schema.as_deref())?;
                // Options and types the decoder cannot serve fail here, before anything runs.
                crate::plan::physical::decoder_for(&s, options)?;
                *source = Some((s.clone(), options.clone()));
                Ok(leaf(s))
            }
            LogicalPlan::DeltaTable { path } => {
                let (table, schema) = open_static_table(path).await?;
                let mut n = leaf(schema.clone());
                n.table = Some((path.clone(), Box::new(table), schema));
                Ok(n)
            }
            LogicalPlan::Project { input, exprs } => {
                let n = analyze_node(input, source).await?;
                project_node(n, exprs)
            }
            LogicalPlan::WithColumns { input, columns } => {
                let n = analyze_node(input, source).await?;
                let exprs = with_columns(&n.schema, columns);
                project_node(n, &exprs)
            }
            LogicalPlan::WithColumnsRenamed { input, renames } => {
                let n = analyze_node(input, source).await?;
                let exprs = renamed(&n.schema, renames);
                project_node(n, &exprs)
            }
            LogicalPlan::Drop { input, columns } => {
                let n = analyze_node(input, source).await?;
                let exprs = dropped(&n.schema, columns);
                project_node(n, &exprs)
            }
            LogicalPlan::Filter { input, condition } => {
                let mut n = analyze_node(input, source).await?;
                if aggregate_call(condition).is_some() {
                    return Err(invalid(
                        "an aggregate in filter(): filter the aggregated columns after agg() by name instead",
                    ));
                }
                let c = condition.resolve(&n.schema).map_err(expr_error)?;
                if c.data_type() != &DataType::Boolean {
                    return Err(invalid(format!(
                        "[DATATYPE_MISMATCH.FILTER_NOT_BOOLEAN] Filter expression `{}` of type {} is not a boolean",
                        condition.output_name(),
                        simple_type(c.data_type())
                    )));
                }
                n.steps.push(Step::Filter {
                    condition: c,
                    schema: n.schema.clone(),
                });
                Ok(n)
            }
            LogicalPlan::WithWatermark { input, column, delay } => {
                let mut n = analyze_node(input, source).await?;
                let i = column_index(&n.schema, column)?;
                let t = n.schema.field(i).data_type();
                if !is_timestamp(t) {
                    return Err(invalid(format!(
                        "Event time must be defined on a window or a timestamp, but `{}` is of type {}",
                        n.schema.field(i).name(),
                        simple_type(t)
                    )));
                }
                let delay_ms =
                    crate::duration::parse_duration_ms(delay).map_err(|e| invalid(e.to_string()))?;
                if delay_ms < 0 {
                    return Err(invalid("delay threshold should not be negative."));
                }
                let fields: Vec<Field> = n
                    .schema
                    .fields()
                    .iter()
                    .enumerate()
                    .map(|(j, f)| {
                        let f = f.as_ref().clone();
                        if j == i {
                            let mut m = f.metadata().clone();
                            m.insert(WATERMARK_DELAY_KEY.to_string(), delay_ms.to_string());
                            f.with_metadata(m)
                        } else {
                            f
                        }
                    })
                    .collect();
                n.schema = Arc::new(Schema::new(fields));
                if n.table.is_some() {
                    // Ignored on a static relation, as Spark ignores it in batch queries.
                    return Ok(n);
                }
                n.steps.push(Step::Watermark {
                    column: i,
                    delay_ms,
                    schema: n.schema.clone(),
                });
                Ok(n)
            }
            LogicalPlan::Aggregate {
                input,
                group_by,
                aggregates,
            } => {
                let mut n = analyze_node(input, source).await?;
                if n.table.is_some() {
                    return Err(invalid(
                        "an aggregation of a static table is not supported in a streaming query",
                    ));
                }
                if n.aggregations > 0 {
                    return Err(invalid(
                        "Multiple streaming aggregations are not supported with streaming DataFrames/Datasets",
                    ));
                }
                // Columns each grouping/aggregate input refers to; expressions become hidden
                // columns of a projection first.
                let mut extra: Vec<Expr> = Vec::new();
                let base = n.schema.fields().len();
                // A computed key or argument becomes a hidden column; a grouping key is named
                // as Spark names it (`device.site` → `site`) unless an input column has that name.
                let mut col_of = |e: &Expr, schema: &SchemaRef, key: bool| -> Result<usize, OperatorError> {
                    match e {
                        Expr::Column(c) if column_index(schema, c).is_ok() => column_index(schema, c),
                        other => {
                            let spark = other.output_name();
                            let taken = schema
                                .fields()
                                .iter()
                                .any(|f| f.name().eq_ignore_ascii_case(&spark))
                                || extra.iter().any(|x| x.output_name().eq_ignore_ascii_case(&spark));
                            let name = if key && !taken {
                                spark
                            } else {
                                format!("__microbatch_{}", extra.len())
                            };
                            extra.push(Expr::Alias {
                                expr: Box::new(other.clone()),
                                name,
                            });
                            Ok(base + extra.len() - 1)
                        }
                    }
                };
                let mut group = Vec::new();
                let mut group_names = Vec::new();
                let mut window_name = None;
                let mut event_time = EventTimeKey::None;
                let mut plain = 0;
                for g in group_by {
                    if let Some((c, w)) = window_call(g)? {
                        if window_name.is_some() {
                            return Err(invalid(
                                "Multiple time/session window expressions would result in a cartesian product of rows, therefore they are currently not supported.",
                            ));
                        }
                        let i = col_of(c, &n.schema, false)?;
                        group.push(GroupColumn::Window(i, w));
                        window_name = Some(match g {
                            Expr::Alias { name, .. } => name.clone(),
                            _ => "window".to_string(),
                        });
                        if let Expr::Column(name) = c
                            && let Ok(ci) = column_index(&n.schema, name)
                            && watermark_delay(n.schema.field(ci)).is_some()
                        {
                            event_time = EventTimeKey::Window;
                        }
                    } else if aggregate_call(g).is_some() {
                        return Err(invalid(format!(
                            "[GROUP_BY_AGGREGATE] Aggregate functions are not allowed in GROUP BY, but found {}",
                            g.output_name()
                        )));
                    } else {
                        let i = col_of(g, &n.schema, true)?;
                        if let Expr::Column(name) = g
                            && let Ok(ci) = column_index(&n.schema, name)
                        {
                            let f = n.schema.field(ci);
                            if watermark_delay(f).is_some() && event_time == EventTimeKey::None {
                                event_time = EventTimeKey::Column(plain);
                            }
                        }
                        group.push(GroupColumn::Column(i));
                        group_names.push(g.output_name_in(&n.schema));
                        plain += 1;
                    }
                }
                let mut aggs = Vec::new();
                for a in aggregates {
                    let Some((name, args, distinct)) = aggregate_call(a) else {
                        return Err(invalid(format!(
                            "[MISSING_AGGREGATION] {} is not an aggregate function; agg() takes aggregates such as count, sum, avg, min, max (compute other columns in a select after the aggregation)",
                            a.output_name()
                        )));
                    };
                    if distinct {
                        return Err(invalid(
                            "Distinct aggregations are not supported on streaming DataFrames/Datasets. Consider using approx_count_distinct() instead.",
                        ));
                    }
                    let star = matches!(args, [Expr::Star])
                        || (name == "count" && matches!(args, [Expr::Literal(_)]));
                    let func = AggFunc::from_name(name, star).ok_or_else(|| {
                        invalid(format!(
                            "the aggregate {name}() is not supported by microbatch yet; supported: count, sum, avg, min, max, first, last, collect_list, collect_set, approx_count_distinct"
                        ))
                    })?;
                    let input = match (func, args) {
                        (AggFunc::CountStar, _) => None,
                        (_, [arg]) => Some(col_of(arg, &n.schema, false)?),
                        _ => {
                            return Err(invalid(format!(
                                "{name}() takes one column, got {} arguments",
                                args.len()
                            )));
                        }
                    };
                    aggs.push(AggCall {
                        func,
                        input,
                        name: a.output_name_in(&n.schema),
                    });
                }
                if !extra.is_empty() {
                    let mut exprs = vec![Expr::Star];
                    exprs.extend(extra);
                    let step = project(&n.schema, &exprs)?;
                    n.schema = step_schema(&step);
                    n.steps.push(step);
                }
                let spec = AggregateSpec {
                    group,
                    aggs,
                    mode: OutputMode::Append,
                    event_time,
                };
                // Types are checked now, not at the first batch.
                for a in &spec.aggs {
                    a.func
                        .result_type(a.input.map(|c| n.schema.field(c).data_type()))?;
                }
                let out = aggregate_schema(&n.schema, &spec);
                let nk = spec.group.len();
                n.stateful.push(StatefulOperator {
                    id: n.stateful.len(),
                    name: "stateStoreSave".into(),
                    key: describe_fields(
                        &out.fields()[..nk]
                            .iter()
                            .map(|f| f.as_ref().clone())
                            .collect::<Vec<_>>(),
                    ),
                    value: describe_fields(
                        &out.fields()[nk..]
                            .iter()
                            .map(|f| f.as_ref().clone())
                            .collect::<Vec<_>>(),
                    ),
                });
                n.steps.push(Step::Aggregate {
                    input: n.schema.clone(),
                    spec,
                });
                n.schema = out;
                n.aggregations += 1;
                n.group_names = group_names;
                n.window_name = window_name;
                Ok(n)
            }
            LogicalPlan::Deduplicate {
                input,
                columns,
                within_watermark,
            } => {
                let mut n = analyze_node(input, source).await?;
                if n.aggregations > 0 {
                    return Err(invalid(
                        "dropDuplicates after an aggregation: a stateful operator cannot follow a streaming aggregation (R10.6)",
                    ));
                }
                let keys: Vec<usize> = if columns.is_empty() {
                    (0..n.schema.fields().len()).collect()
                } else {
                    columns
                        .iter()
                        .map(|c| column_index(&n.schema, c))
                        .collect::<Result<_, _>>()?
                };
                let marked = n
                    .schema
                    .fields()
                    .iter()
                    .enumerate()
                    .find_map(|(i, f)| watermark_delay(f).map(|d| (i, d)));
                let spec = if *within_watermark {
                    let (col, delay) = marked.ok_or_else(|| {
                        invalid(
                            "dropDuplicatesWithinWatermark needs a watermark: call withWatermark before it",
                        )
                    })?;
                    DedupSpec {
                        keys,
                        event_time: Some(col),
                        within_watermark: Some(delay),
                    }
                } else {
                    DedupSpec {
                        event_time: keys
                            .iter()
                            .copied()
                            .find(|k| watermark_delay(n.schema.field(*k)).is_some()),
                        keys,
                        within_watermark: None,
                    }
                };
                let key_fields: Vec<Field> = spec
                    .keys
                    .iter()
                    .map(|k| n.schema.field(*k).as_ref().clone())
                    .collect();
                n.stateful.push(StatefulOperator {
                    id: n.stateful.len(),
                    name: if *within_watermark {
                        "dedupeWithinWatermark"
                    } else {
                        "dedupe"
                    }
                    .into(),
                    key: describe_fields(&key_fields),
                    value: if *within_watermark {
                        "expiresAt timestamp".into()
                    } else {
                        String::new()
                    },
                });
                n.steps.push(Step::Dedup {
                    input: n.schema.clone(),
                    spec,
                });
                Ok(n)
            }
            LogicalPlan::Join {
                left,
                right,
                on,
                kind,
            } => {
                let l = analyze_node(left, source).await?;
                let r = analyze_node(right, source).await?;
                join_nodes(l, r, on, *kind)
            }
        }
    })
}

/// The stream side joined with a static side.
fn join_nodes(l: Node, r: Node, on: &JoinOn, kind: JoinKind) -> Result<Node, OperatorError> {
    let (stream, stat, stream_left) = match (l.table.is_some(), r.table.is_some()) {
        (false, true) => (l, r, true),
        (true, false) => (r, l, false),
        (false, false) => {
            return Err(invalid(
                "a stream–stream join: microbatch runs one stream per query (stream–static joins are supported)",
            ));
        }
        (true, true) => return Err(invalid("a join of two static tables in a streaming query")),
    };
    if stream.aggregations > 0 {
        return Err(invalid(
            "a join after a streaming aggregation is not supported (join first, then aggregate)",
        ));
    }
    let kind = match (stream_left, kind) {
        (true, k) => k,
        (false, JoinKind::Inner) => JoinKind::Inner,
        (false, k) => {
            return Err(invalid(format!(
                "[UNSUPPORTED_STREAMING_OPERATION] {k} join with a streaming DataFrame on the right is not supported (Spark allows only inner and right outer there; put the stream on the left)"
            )));
        }
    };
    let (key_names, using): (Vec<(String, String)>, bool) = match on {
        JoinOn::Using(cols) => (cols.iter().map(|c| (c.clone(), c.clone())).collect(), true),
        JoinOn::Condition(e) => (equi_keys(e, &stream.schema, &stat.schema)?, false),
    };
    if key_names.is_empty() {
        return Err(invalid("a join needs at least one key"));
    }
    let mut keys = Vec::new();
    for (a, b) in &key_names {
        keys.push((column_index(&stream.schema, a)?, column_index(&stat.schema, b).map_err(|_| {
            invalid(format!(
                "[UNRESOLVED_USING_COLUMN_FOR_JOIN] USING column `{b}` cannot be resolved on the static side of the join; it has {}",
                stat.schema.fields().iter().map(|f| format!("`{}`", f.name())).collect::<Vec<_>>().join(", ")
            ))
        })?));
    }
    let Some((path, table, table_schema)) = stat.table else {
        return Err(invalid("static side without a table"));
    };
    let index = stream
        .steps
        .iter()
        .filter(|s| matches!(s, Step::Join { .. }))
        .count();
    let spec = JoinSpec {
        table: path,
        index,
        keys,
        kind,
        using,
        stream_left,
    };
    let mut n = stream;
    let out = crate::operators::join::join_schema(&n.schema, &stat.schema, &spec)?;
    n.steps.push(Step::Join {
        input: n.schema.clone(),
        table,
        table_schema,
        static_steps: stat.steps,
        static_schema: stat.schema,
        spec,
    });
    n.schema = out;
    n.stateful.extend(stat.stateful);
    Ok(n)
}

/// The (stream column, static column) pairs of an equi-join condition `a = b AND c = d`.
fn equi_keys(e: &Expr, stream: &Schema, stat: &Schema) -> Result<Vec<(String, String)>, OperatorError> {
    match e {
        Expr::Binary {
            op: BinaryOp::And,
            left,
            right,
        } => {
            let mut k = equi_keys(left, stream, stat)?;
            k.extend(equi_keys(right, stream, stat)?);
            Ok(k)
        }
        Expr::Binary {
            op: BinaryOp::Eq,
            left,
            right,
        } => match (left.as_ref(), right.as_ref()) {
            (Expr::Column(a), Expr::Column(b)) => {
                let strip = |c: &str| c.rsplit('.').next().unwrap_or(c).to_string();
                let (a, b) = (strip(a), strip(b));
                let in_stream = |c: &str| column_index(stream, c).is_ok();
                let in_static = |c: &str| column_index(stat, c).is_ok();
                if in_stream(&a) && in_static(&b) {
                    Ok(vec![(a, b)])
                } else if in_stream(&b) && in_static(&a) {
                    Ok(vec![(b, a)])
                } else {
                    Err(invalid(format!(
                        "the join condition `{}` must compare a stream column with a static column",
                        e.output_name()
                    )))
                }
            }
            _ => Err(invalid(format!(
                "the join condition `{}` is not supported: microbatch joins on equalities of columns (a = b AND c = d)",
                e.output_name()
            ))),
        },
        other => Err(invalid(format!(
            "the join condition `{}` is not supported: microbatch joins on equalities of columns (a = b AND c = d)",
            other.output_name()
        ))),
    }
}
