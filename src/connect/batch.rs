//! Batch relations evaluated to rows: Delta tables read by path, rows the client sent, and the
//! engine's operators over them as one batch (an aggregation in complete mode gives every
//! group, as Spark's batch aggregation does); `sort`, `limit`, `show` on the result.

use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, RecordBatch, StringArray};
use deltalake::arrow::compute::{SortColumn, SortOptions, cast, lexsort_to_indices, take};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::ConnectError;
use super::translate::{Rel, SortKey, rows_leaf};
use crate::expr::Expr;
use crate::plan::LogicalPlan;
use crate::query::OutputMode;

fn arrow(e: deltalake::arrow::error::ArrowError) -> ConnectError {
    ConnectError::Engine(format!("arrow: {e}"))
}

fn analysis(e: impl std::fmt::Display) -> ConnectError {
    ConnectError::Analysis(e.to_string())
}

/// `rows` with the columns of `schema` (by position), cast to its types.
pub fn conform(rows: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ConnectError> {
    if rows.num_columns() != schema.fields().len() {
        return Err(ConnectError::Analysis(format!(
            "the rows have {} columns but the schema names {}",
            rows.num_columns(),
            schema.fields().len()
        )));
    }
    let cols = rows
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                cast(c, f.data_type()).map_err(|e| {
                    ConnectError::Analysis(format!(
                        "column `{}` of type {} cannot be read as {}: {e}",
                        f.name(),
                        c.data_type(),
                        f.data_type()
                    ))
                })
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Nullability follows the rows: a column the client declared NOT NULL may still be
    // checked by the writer.
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(&cols)
        .map(|(f, c)| {
            f.as_ref()
                .clone()
                .with_nullable(f.is_nullable() || c.null_count() > 0)
        })
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(arrow)
}

/// The leftmost leaf of a batch plan: the Delta table its rows start from.
fn first_table(plan: &LogicalPlan) -> Option<&std::path::Path> {
    match plan {
        LogicalPlan::DeltaTable { path } => Some(path),
        LogicalPlan::StreamSource { .. } => None,
        LogicalPlan::Join { left, .. } => first_table(left),
        other => other.children().first().and_then(|c| first_table(c)),
    }
}

/// `plan` with its leftmost Delta table leaf replaced by a stream leaf of `schema`.
fn replace_first_table(plan: LogicalPlan, schema: &Schema) -> LogicalPlan {
    let leaf = || LogicalPlan::StreamSource {
        schema: Some(crate::schema::to_struct_type_json(schema)),
        options: Default::default(),
    };
    match plan {
        LogicalPlan::DeltaTable { .. } => leaf(),
        other => other.map_first_child(|c| replace_first_table(c, schema)),
    }
}

/// `plan`'s stream leaf given `schema`.
fn with_rows_schema(plan: LogicalPlan, schema: &Schema) -> LogicalPlan {
    match plan {
        LogicalPlan::StreamSource { .. } => LogicalPlan::StreamSource {
            schema: Some(crate::schema::to_struct_type_json(schema)),
            options: Default::default(),
        },
        other => other.map_first_child(|c| with_rows_schema(c, schema)),
    }
}

/// `count(DISTINCT x)` as the engine's exact distinct count: a batch aggregation sees every row
/// at once, so what Spark refuses on a stream is exact here (Spark's column name kept).
fn exact_distinct(plan: LogicalPlan) -> LogicalPlan {
    fn exact(e: &Expr) -> Option<Expr> {
        match e {
            Expr::Function {
                name,
                args,
                distinct: true,
            } if name.eq_ignore_ascii_case("count") && args.len() == 1 => {
                Some(crate::expr::call("approx_count_distinct", args.clone()))
            }
            _ => None,
        }
    }
    fn rewrite(e: Expr) -> Expr {
        match e {
            Expr::Alias { expr, name } => match exact(&expr) {
                Some(c) => c.alias(&name),
                None => Expr::Alias { expr, name },
            },
            other => match exact(&other) {
                Some(c) => {
                    let spark_name = match &other {
                        Expr::Function { args, .. } => format!("count(DISTINCT {})", args[0].output_name()),
                        _ => other.output_name(),
                    };
                    c.alias(&spark_name)
                }
                None => other,
            },
        }
    }
    match plan {
        LogicalPlan::Aggregate {
            input,
            group_by,
            aggregates,
        } => LogicalPlan::Aggregate {
            input: Box::new(exact_distinct(*input)),
            group_by,
            aggregates: aggregates.into_iter().map(rewrite).collect(),
        },
        other => other.map_first_child(exact_distinct),
    }
}

fn has_aggregate(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Aggregate { .. }) || plan.children().iter().any(|c| has_aggregate(c))
}

async fn table_rows(path: &std::path::Path, schema_only: bool) -> Result<RecordBatch, ConnectError> {
    let missing = |p: &std::path::Path| {
        ConnectError::Analysis(format!(
            "[DELTA_TABLE_NOT_FOUND] {} is not a Delta table (no _delta_log): write one first (df.write.format(\"delta\").save(path)) or check the path",
            p.display()
        ))
    };
    if schema_only {
        let (_, schema) = crate::operators::join::open_static_table(path)
            .await
            .map_err(|_| missing(path))?;
        return Ok(RecordBatch::new_empty(schema));
    }
    match crate::table::read_table(path).await {
        Ok(t) => Ok(t.rows),
        Err(crate::sink::SinkError::Missing(p)) => Err(missing(&p)),
        Err(e) => Err(ConnectError::Engine(e.to_string())),
    }
}

/// A global aggregation (no grouping) of no rows: Spark's one row, counts 0 and the rest null.
fn empty_aggregate(schema: &SchemaRef, aggregates: &[Expr]) -> Result<RecordBatch, ConnectError> {
    let counts = |e: &Expr| {
        let inner = match e {
            Expr::Alias { expr, .. } => expr.as_ref(),
            other => other,
        };
        matches!(inner, Expr::Function { name, .. }
            if ["count", "approx_count_distinct", "count_if"].iter().any(|c| name.eq_ignore_ascii_case(c)))
    };
    let cols = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if aggregates.get(i).is_some_and(counts) && f.data_type() == &DataType::Int64 {
                Arc::new(deltalake::arrow::array::Int64Array::from(vec![0i64])) as ArrayRef
            } else {
                deltalake::arrow::array::new_null_array(f.data_type(), 1)
            }
        })
        .collect();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).map_err(arrow)
}

/// Runs `plan` (its stream leaf standing for `rows`) over `rows` as one batch.
async fn run_over(rows: RecordBatch, plan: LogicalPlan) -> Result<RecordBatch, ConnectError> {
    let plan = exact_distinct(with_rows_schema(plan, &rows.schema()));
    let mode = if has_aggregate(&plan) {
        OutputMode::Complete
    } else {
        OutputMode::Append
    };
    let analyzed = crate::plan::analyze(&plan, mode).await.map_err(analysis)?;
    let rows = conform(&rows, &analyzed.source_schema)?;
    let input = analyzed.source_schema.clone();
    // A batch job's state lives only while it runs.
    let state = std::env::temp_dir().join(format!("microbatch-batch-{}", uuid::Uuid::new_v4()));
    let result = async {
        let mut pipeline = crate::plan::build_pipeline(
            input,
            analyzed.steps,
            &state,
            0,
            crate::checkpoint::Durability::ProcessCrash,
        )
        .map_err(analysis)?;
        let conf = pipeline.pin().await.map_err(analysis)?;
        let now = chrono::Utc::now().timestamp_millis();
        let thresholds = crate::operators::Thresholds {
            late_ms: 0,
            evict_ms: 0,
        };
        let out = pipeline
            .run(vec![rows], 0, now, thresholds, &conf)
            .await
            .and_then(|out| out.rows())
            .map_err(|e| ConnectError::Engine(e.to_string()))?;
        match &plan {
            LogicalPlan::Aggregate {
                group_by, aggregates, ..
            } if group_by.is_empty() && out.num_rows() == 0 => empty_aggregate(&out.schema(), aggregates),
            _ => Ok(out),
        }
    }
    .await;
    let _ = std::fs::remove_dir_all(&state);
    result
}

/// The rows of a batch relation; with `schema_only`, none (only their schema, cheaply).
pub fn evaluate(
    rel: &Rel,
    schema_only: bool,
) -> futures::future::BoxFuture<'_, Result<RecordBatch, ConnectError>> {
    Box::pin(async move {
        match rel {
            Rel::Plan { stream: Some(_), .. } => Err(ConnectError::Analysis(
                "Queries with streaming sources must be executed with writeStream.start();".into(),
            )),
            Rel::Plan { plan, stream: None } => {
                let path = first_table(plan)
                    .ok_or_else(|| ConnectError::Internal("a batch plan without a table".into()))?;
                let rows = table_rows(path, schema_only).await?;
                if let LogicalPlan::DeltaTable { .. } = plan {
                    return Ok(rows);
                }
                let over = replace_first_table(plan.clone(), &rows.schema());
                run_over(rows, over).await
            }
            Rel::Local(rows) => Ok(if schema_only {
                RecordBatch::new_empty(rows.schema())
            } else {
                rows.clone()
            }),
            Rel::Over { input, plan } => {
                let rows = evaluate(input, schema_only).await?;
                run_over(rows, plan.clone()).await
            }
            Rel::Sort { input, keys } => {
                let rows = evaluate(input, schema_only).await?;
                sort(&rows, keys).await
            }
            Rel::Limit { input, n } => {
                let rows = evaluate(input, schema_only).await?;
                Ok(rows.slice(0, (*n).min(rows.num_rows())))
            }
            Rel::Offset { input, n } => {
                let rows = evaluate(input, schema_only).await?;
                let skip = (*n).min(rows.num_rows());
                Ok(rows.slice(skip, rows.num_rows() - skip))
            }
            Rel::Tail { input, n } => {
                let rows = evaluate(input, schema_only).await?;
                let keep = (*n).min(rows.num_rows());
                Ok(rows.slice(rows.num_rows() - keep, keep))
            }
            Rel::ToDf { input, names } => {
                let rows = evaluate(input, schema_only).await?;
                if names.len() != rows.num_columns() {
                    return Err(ConnectError::Analysis(format!(
                        "[INVALID_COLUMN_OR_FIELD_DATA_TYPE] toDF() names {} columns but the DataFrame has {}",
                        names.len(),
                        rows.num_columns()
                    )));
                }
                let fields: Vec<Field> = rows
                    .schema()
                    .fields()
                    .iter()
                    .zip(names)
                    .map(|(f, n)| f.as_ref().clone().with_name(n))
                    .collect();
                RecordBatch::try_new(Arc::new(Schema::new(fields)), rows.columns().to_vec()).map_err(arrow)
            }
            Rel::Show {
                input,
                rows: n,
                truncate,
                vertical,
            } => {
                let schema = Arc::new(Schema::new(vec![Field::new(
                    "show_string",
                    DataType::Utf8,
                    false,
                )]));
                if schema_only {
                    return Ok(RecordBatch::new_empty(schema));
                }
                let rows = evaluate(input, false).await?;
                let text = crate::table::show_text(&rows, *n, *truncate, *vertical);
                let col: ArrayRef = Arc::new(StringArray::from(vec![text]));
                RecordBatch::try_new(schema, vec![col]).map_err(arrow)
            }
        }
    })
}

/// `orderBy(keys)`: the sort keys are evaluated by a projection over the rows.
async fn sort(rows: &RecordBatch, keys: &[SortKey]) -> Result<RecordBatch, ConnectError> {
    if rows.num_rows() < 2 || keys.is_empty() {
        return Ok(rows.clone());
    }
    let exprs: Vec<crate::expr::Expr> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| k.expr.clone().alias(&format!("__sort_{i}")))
        .collect();
    let key_rows = run_over(rows.clone(), rows_leaf().select(exprs)).await?;
    let columns: Vec<SortColumn> = key_rows
        .columns()
        .iter()
        .zip(keys)
        .map(|(c, k)| SortColumn {
            values: c.clone(),
            options: Some(SortOptions {
                descending: k.descending,
                nulls_first: k.nulls_first,
            }),
        })
        .collect();
    let idx = lexsort_to_indices(&columns, None).map_err(arrow)?;
    let cols = rows
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &idx, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(arrow)?;
    RecordBatch::try_new(rows.schema(), cols).map_err(arrow)
}

/// Spark's `printSchema()` text: `root` and one ` |-- name: type (nullable = …)` line per
/// field, nested fields indented.
pub fn tree_string(schema: &Schema, level: Option<usize>) -> String {
    /// Spark's `typeName` (`integer`, `long`), which the tree uses, not `simpleString`.
    fn type_name(t: &DataType) -> String {
        match t {
            DataType::Int8 => "byte".into(),
            DataType::Int16 => "short".into(),
            DataType::Int32 => "integer".into(),
            DataType::Int64 => "long".into(),
            DataType::Float32 => "float".into(),
            DataType::Float64 => "double".into(),
            other => crate::schema::simple_string(other),
        }
    }
    fn field(out: &mut String, f: &Field, depth: usize, max: usize) {
        let prefix = " |   ".repeat(depth);
        let t = f.data_type();
        let name = match t {
            DataType::Struct(_) => "struct".to_string(),
            DataType::List(_) | DataType::LargeList(_) => "array".to_string(),
            DataType::Map(_, _) => "map".to_string(),
            other => type_name(other),
        };
        out.push_str(&format!(
            "{prefix} |-- {}: {name} (nullable = {})\n",
            f.name(),
            f.is_nullable()
        ));
        if depth + 1 >= max {
            return;
        }
        match t {
            DataType::Struct(fields) => {
                for c in fields {
                    field(out, c, depth + 1, max);
                }
            }
            DataType::List(e) | DataType::LargeList(e) => {
                let inner = " |   ".repeat(depth + 1);
                let et = e.data_type();
                let en = match et {
                    DataType::Struct(_) => "struct".to_string(),
                    other => type_name(other),
                };
                out.push_str(&format!(
                    "{inner} |-- element: {en} (containsNull = {})\n",
                    e.is_nullable()
                ));
                if let DataType::Struct(fields) = et {
                    for c in fields {
                        field(out, c, depth + 2, max);
                    }
                }
            }
            DataType::Map(entries, _) => {
                if let DataType::Struct(kv) = entries.data_type()
                    && let (Some(k), Some(v)) = (kv.first(), kv.get(1))
                {
                    let inner = " |   ".repeat(depth + 1);
                    out.push_str(&format!("{inner} |-- key: {}\n", type_name(k.data_type())));
                    out.push_str(&format!(
                        "{inner} |-- value: {} (valueContainsNull = {})\n",
                        type_name(v.data_type()),
                        v.is_nullable()
                    ));
                }
            }
            _ => {}
        }
    }
    let mut out = String::from("root\n");
    let max = level.filter(|l| *l > 0).unwrap_or(usize::MAX);
    for f in schema.fields() {
        field(&mut out, f, 0, max);
    }
    out
}
