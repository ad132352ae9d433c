//! Spark Connect relations and expressions → the engine's [`LogicalPlan`] and [`Expr`].
//!
//! A relation becomes a [`Rel`]: an engine plan (streaming, or over static Delta tables), rows
//! the client sent (`createDataFrame`), or a batch-only step (`sort`, `limit`, `show`) over
//! another `Rel`. Plan steps applied over rows that are not a plan are kept as
//! [`Rel::Over`]: a plan whose stream leaf stands for those rows.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use deltalake::arrow::array::RecordBatch;

use super::proto::spark::{self as pb, expression, relation};
use super::{ConnectError, Root};
use crate::expr::{BinaryOp, Expr, LikeKind, Literal, SqlType, UnaryOp};
use crate::operators::join::JoinKind;
use crate::plan::{JoinOn, LogicalPlan};

/// The stream a streaming relation reads.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInput {
    /// The folder its JSON-lines files arrive in.
    pub path: PathBuf,
    /// `maxFilesPerTrigger` (Spark's default: no limit).
    pub max_files_per_trigger: Option<NonZeroUsize>,
}

/// A sort key of `orderBy`.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// The expression sorted by.
    pub expr: Expr,
    /// Descending.
    pub descending: bool,
    /// Nulls first (Spark's default: first when ascending, last when descending).
    pub nulls_first: bool,
}

/// A translated relation.
#[derive(Debug, Clone)]
pub enum Rel {
    /// An engine plan; `stream` is set when it reads a stream.
    Plan {
        /// The plan.
        plan: LogicalPlan,
        /// The stream it reads.
        stream: Option<StreamInput>,
    },
    /// Rows the client sent.
    Local(RecordBatch),
    /// `plan` over the rows of `input`: its stream leaf stands for them.
    Over {
        /// The rows.
        input: Box<Rel>,
        /// The steps over them.
        plan: LogicalPlan,
    },
    /// `orderBy`.
    Sort {
        /// The input.
        input: Box<Rel>,
        /// The keys, most significant first.
        keys: Vec<SortKey>,
    },
    /// `limit(n)`.
    Limit {
        /// The input.
        input: Box<Rel>,
        /// Rows kept.
        n: usize,
    },
    /// `offset(n)`.
    Offset {
        /// The input.
        input: Box<Rel>,
        /// Rows skipped.
        n: usize,
    },
    /// `tail(n)`.
    Tail {
        /// The input.
        input: Box<Rel>,
        /// Rows kept from the end.
        n: usize,
    },
    /// `toDF(names…)`.
    ToDf {
        /// The input.
        input: Box<Rel>,
        /// The new column names.
        names: Vec<String>,
    },
    /// `show()`: one row, one column `show_string`.
    Show {
        /// The input.
        input: Box<Rel>,
        /// Rows shown.
        rows: usize,
        /// Cut values longer than this (0: never).
        truncate: usize,
        /// One block per row.
        vertical: bool,
    },
}

impl Rel {
    /// True when the relation reads a stream.
    pub fn is_streaming(&self) -> bool {
        match self {
            Self::Plan { stream, .. } => stream.is_some(),
            Self::Local(_) => false,
            Self::Over { input, .. }
            | Self::Sort { input, .. }
            | Self::Limit { input, .. }
            | Self::Offset { input, .. }
            | Self::Tail { input, .. }
            | Self::ToDf { input, .. }
            | Self::Show { input, .. } => input.is_streaming(),
        }
    }
}

/// The leaf of [`Rel::Over`]'s plan: the input rows.
pub fn rows_leaf() -> LogicalPlan {
    LogicalPlan::StreamSource {
        schema: None,
        options: BTreeMap::new(),
    }
}

fn missing(what: &str) -> ConnectError {
    ConnectError::InvalidRequest(format!("{what} is missing"))
}

fn unserved(what: impl Into<String>, hint: impl Into<String>) -> ConnectError {
    ConnectError::Unserved {
        what: what.into(),
        hint: hint.into(),
    }
}

/// The name of a relation type, as Spark's protocol calls it (for errors).
fn rel_name(r: &relation::RelType) -> &'static str {
    use relation::RelType as R;
    match r {
        R::Read(_) => "read",
        R::Project(_) => "project",
        R::Filter(_) => "filter",
        R::Join(_) => "join",
        R::SetOp(_) => "set_op (union, intersect, except)",
        R::Sort(_) => "sort",
        R::Limit(_) => "limit",
        R::Aggregate(_) => "aggregate",
        R::Sql(_) => "sql",
        R::LocalRelation(_) => "local_relation",
        R::Sample(_) => "sample",
        R::Offset(_) => "offset",
        R::Deduplicate(_) => "deduplicate",
        R::Range(_) => "range",
        R::SubqueryAlias(_) => "subquery_alias",
        R::Repartition(_) => "repartition",
        R::ToDf(_) => "to_df",
        R::WithColumnsRenamed(_) => "with_columns_renamed",
        R::ShowString(_) => "show_string",
        R::Drop(_) => "drop",
        R::Tail(_) => "tail",
        R::WithColumns(_) => "with_columns",
        R::Hint(_) => "hint",
        R::Unpivot(_) => "unpivot",
        R::ToSchema(_) => "to_schema",
        R::RepartitionByExpression(_) => "repartition_by_expression",
        R::MapPartitions(_) => "map_partitions (Python UDFs)",
        R::CollectMetrics(_) => "collect_metrics (observe)",
        R::Parse(_) => "parse (from_json on a DataFrame)",
        R::GroupMap(_) => "group_map (applyInPandas)",
        R::CoGroupMap(_) => "co_group_map",
        R::WithWatermark(_) => "with_watermark",
        R::ApplyInPandasWithState(_) => "apply_in_pandas_with_state",
        R::HtmlString(_) => "html_string",
        R::CachedLocalRelation(_) => "cached_local_relation (a createDataFrame over 64 MiB)",
        R::CachedRemoteRelation(_) => "cached_remote_relation",
        R::CommonInlineUserDefinedTableFunction(_) => "a Python table function",
        R::FillNa(_) => "fill_na",
        R::DropNa(_) => "drop_na",
        R::Replace(_) => "replace",
        R::Summary(_) => "summary",
        R::Crosstab(_) => "crosstab",
        R::Describe(_) => "describe",
        R::Cov(_) => "cov",
        R::Corr(_) => "corr",
        R::ApproxQuantile(_) => "approx_quantile",
        R::FreqItems(_) => "freq_items",
        R::SampleBy(_) => "sample_by",
        R::Catalog(_) => "catalog",
        R::Extension(_) => "extension",
        R::Unknown(_) => "unknown",
    }
}

/// Translates the client's messages, resolving paths under the server's root.
#[derive(Debug)]
pub struct Translator<'a> {
    root: &'a Root,
}

impl<'a> Translator<'a> {
    /// A translator confining paths to `root`.
    pub fn new(root: &'a Root) -> Self {
        Self { root }
    }

    fn input(&self, r: &Option<Box<pb::Relation>>, what: &str) -> Result<Rel, ConnectError> {
        self.relation(
            r.as_deref()
                .ok_or_else(|| missing(&format!("the input of {what}")))?,
        )
    }

    /// `f` applied to the plan under `rel`.
    fn apply(rel: Rel, f: impl FnOnce(LogicalPlan) -> LogicalPlan) -> Result<Rel, ConnectError> {
        Ok(match rel {
            Rel::Plan { plan, stream } => Rel::Plan {
                plan: f(plan),
                stream,
            },
            Rel::Over { input, plan } => Rel::Over { input, plan: f(plan) },
            Rel::Show { .. } => {
                return Err(ConnectError::Analysis(
                    "show() returns text, not a DataFrame; it cannot have further steps".into(),
                ));
            }
            other if other.is_streaming() => {
                return Err(ConnectError::Analysis(
                    "Sorting, limit, offset and tail are not supported on streaming DataFrames/Datasets in microbatch".into(),
                ));
            }
            other => Rel::Over {
                input: Box::new(other),
                plan: f(rows_leaf()),
            },
        })
    }

    /// A relation.
    pub fn relation(&self, r: &pb::Relation) -> Result<Rel, ConnectError> {
        use relation::RelType as R;
        let rel = r
            .rel_type
            .as_ref()
            .ok_or_else(|| missing("the relation's type"))?;
        match rel {
            R::Read(read) => self.read(read),
            R::Project(p) => {
                let input = self.input(&p.input, "select")?;
                let exprs = p
                    .expressions
                    .iter()
                    .map(|e| self.expr(e))
                    .collect::<Result<Vec<_>, _>>()?;
                Self::apply(input, |plan| plan.select(exprs))
            }
            R::Filter(f) => {
                let input = self.input(&f.input, "filter")?;
                let c = self.expr(
                    f.condition
                        .as_ref()
                        .ok_or_else(|| missing("the filter condition"))?,
                )?;
                Self::apply(input, |plan| LogicalPlan::Filter {
                    input: Box::new(plan),
                    condition: c,
                })
            }
            R::WithWatermark(w) => {
                let input = self.input(&w.input, "withWatermark")?;
                let (column, delay) = (w.event_time.clone(), w.delay_threshold.clone());
                Self::apply(input, |plan| LogicalPlan::WithWatermark {
                    input: Box::new(plan),
                    column,
                    delay,
                })
            }
            R::Aggregate(a) => {
                if a.group_type != pb::aggregate::GroupType::Groupby as i32 {
                    return Err(unserved(
                        "rollup, cube and pivot",
                        "group with groupBy(...).agg(...)",
                    ));
                }
                let input = self.input(&a.input, "groupBy")?;
                let group_by = a
                    .grouping_expressions
                    .iter()
                    .map(|e| self.expr(e))
                    .collect::<Result<Vec<_>, _>>()?;
                let aggregates = a
                    .aggregate_expressions
                    .iter()
                    .map(|e| self.expr(e))
                    .collect::<Result<Vec<_>, _>>()?;
                Self::apply(input, |plan| LogicalPlan::Aggregate {
                    input: Box::new(plan),
                    group_by,
                    aggregates,
                })
            }
            R::Deduplicate(d) => {
                let input = self.input(&d.input, "dropDuplicates")?;
                let columns = if d.all_columns_as_keys.unwrap_or(false) {
                    Vec::new()
                } else {
                    d.column_names.clone()
                };
                let within_watermark = d.within_watermark.unwrap_or(false);
                Self::apply(input, |plan| LogicalPlan::Deduplicate {
                    input: Box::new(plan),
                    columns,
                    within_watermark,
                })
            }
            R::WithColumns(w) => {
                let input = self.input(&w.input, "withColumns")?;
                let mut columns = Vec::new();
                for a in &w.aliases {
                    let name = match a.name.as_slice() {
                        [n] => n.clone(),
                        _ => return Err(unserved("a multi-part alias", "name the column with one name")),
                    };
                    let e = self.expr(
                        a.expr
                            .as_deref()
                            .ok_or_else(|| missing("withColumn's expression"))?,
                    )?;
                    columns.push((name, e));
                }
                Self::apply(input, |plan| plan.with_columns(columns))
            }
            R::WithColumnsRenamed(w) => {
                let input = self.input(&w.input, "withColumnsRenamed")?;
                let renames: Vec<(String, String)> = w
                    .rename_columns_map
                    .iter()
                    .map(|(a, b)| (a.clone(), b.clone()))
                    .collect();
                Self::apply(input, |plan| LogicalPlan::WithColumnsRenamed {
                    input: Box::new(plan),
                    renames,
                })
            }
            R::Drop(d) => {
                let input = self.input(&d.input, "drop")?;
                let mut columns = d.column_names.clone();
                for e in &d.columns {
                    match self.expr(e)? {
                        Expr::Column(c) => columns.push(c),
                        other => {
                            return Err(ConnectError::Analysis(format!(
                                "drop() takes column names; `{}` is an expression",
                                other.output_name()
                            )));
                        }
                    }
                }
                Self::apply(input, |plan| LogicalPlan::Drop {
                    input: Box::new(plan),
                    columns,
                })
            }
            R::Join(j) => self.join(j),
            R::SubqueryAlias(s) => self.input(&s.input, "alias"),
            R::LocalRelation(l) => self.local(l),
            R::Sort(s) => {
                let input = self.input(&s.input, "orderBy")?;
                if input.is_streaming() {
                    return Err(ConnectError::Analysis(
                        "Sorting is not supported on streaming DataFrames/Datasets, unless it is on aggregated DataFrame/Dataset in Complete output mode; microbatch does not sort streams".into(),
                    ));
                }
                let keys = s
                    .order
                    .iter()
                    .map(|o| self.sort_key(o))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Rel::Sort {
                    input: Box::new(input),
                    keys,
                })
            }
            R::Limit(l) => self.batch_only(&l.input, "limit", l.limit, |input, n| Rel::Limit { input, n }),
            R::Offset(o) => {
                self.batch_only(&o.input, "offset", o.offset, |input, n| Rel::Offset { input, n })
            }
            R::Tail(t) => self.batch_only(&t.input, "tail", t.limit, |input, n| Rel::Tail { input, n }),
            R::ToDf(t) => {
                let input = self.input(&t.input, "toDF")?;
                Ok(Rel::ToDf {
                    input: Box::new(input),
                    names: t.column_names.clone(),
                })
            }
            R::ShowString(s) => {
                let input = self.input(&s.input, "show")?;
                if input.is_streaming() {
                    return Err(ConnectError::Analysis(
                        "Queries with streaming sources must be executed with writeStream.start(); show() reads a batch DataFrame (read the sink's Delta table)".into(),
                    ));
                }
                Ok(Rel::Show {
                    input: Box::new(input),
                    rows: usize::try_from(s.num_rows).unwrap_or(0),
                    truncate: usize::try_from(s.truncate).unwrap_or(0),
                    vertical: s.vertical,
                })
            }
            other => Err(unserved(
                format!("relation '{}'", rel_name(other)),
                "the README's \"From PySpark\" section lists what is served",
            )),
        }
    }

    fn batch_only(
        &self,
        input: &Option<Box<pb::Relation>>,
        what: &str,
        n: i32,
        make: impl FnOnce(Box<Rel>, usize) -> Rel,
    ) -> Result<Rel, ConnectError> {
        let input = self.input(input, what)?;
        if input.is_streaming() {
            return Err(ConnectError::Analysis(format!(
                "{what}() on a streaming DataFrame is not served by microbatch"
            )));
        }
        let n = usize::try_from(n)
            .map_err(|_| ConnectError::Analysis(format!("{what}() needs a non-negative number, got {n}")))?;
        Ok(make(Box::new(input), n))
    }

    fn read(&self, read: &pb::Read) -> Result<Rel, ConnectError> {
        let ds = match &read.read_type {
            Some(pb::read::ReadType::DataSource(ds)) => ds,
            Some(pb::read::ReadType::NamedTable(t)) => {
                return Err(unserved(
                    format!("reading the table `{}` by name", t.unparsed_identifier),
                    "this server has no catalog; read a Delta table by its path: spark.read.format(\"delta\").load(path)",
                ));
            }
            None => return Err(missing("the read's source")),
        };
        let format = ds
            .format
            .clone()
            .unwrap_or_else(|| "parquet".into())
            .to_ascii_lowercase();
        let mut options: BTreeMap<String, String> =
            ds.options.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut paths = ds.paths.clone();
        if let Some(p) = options.remove("path") {
            paths.push(p);
        }
        let path = match paths.as_slice() {
            [p] => self.root.confine(p)?,
            [] => {
                return Err(ConnectError::Analysis(
                    "'path' is not specified: load(path) names the folder to read".into(),
                ));
            }
            _ => return Err(unserved("reading several paths at once", "read one folder")),
        };
        match (format.as_str(), read.is_streaming) {
            ("json", true) => {
                let schema = ds.schema.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                    ConnectError::Analysis(
                        "Schema must be specified when creating a streaming source DataFrame. If some files already exist in the directory, then depending on the file format you may be able to create a static DataFrame on that directory with 'spark.read.load(directory)' and infer schema from it.".into(),
                    )
                })?;
                crate::plan::analyze::source_schema(Some(&schema))
                    .map_err(|e| ConnectError::Analysis(e.to_string()))?;
                let mut mfpt = None;
                options.retain(|k, v| {
                    if k.eq_ignore_ascii_case("maxFilesPerTrigger") {
                        mfpt = Some(v.clone());
                        false
                    } else {
                        true
                    }
                });
                let max_files_per_trigger = match mfpt {
                    None => None,
                    Some(v) => Some(v.trim().parse::<NonZeroUsize>().map_err(|_| {
                        ConnectError::Analysis(format!(
                            "Invalid value '{v}' for option 'maxFilesPerTrigger', must be a positive integer"
                        ))
                    })?),
                };
                Ok(Rel::Plan {
                    plan: LogicalPlan::StreamSource {
                        schema: Some(schema),
                        options,
                    },
                    stream: Some(StreamInput {
                        path,
                        max_files_per_trigger,
                    }),
                })
            }
            ("delta", false) => Ok(Rel::Plan {
                plan: LogicalPlan::DeltaTable { path },
                stream: None,
            }),
            ("delta", true) => Err(unserved(
                "a Delta table as a streaming source",
                "stream JSON-lines files (readStream.format(\"json\")); Delta tables are read as static tables (spark.read.format(\"delta\"))",
            )),
            (f, true) => Err(unserved(
                format!("the streaming source format '{f}'"),
                "streams read JSON-lines files: readStream.format(\"json\").schema(...).load(folder)",
            )),
            (f, false) => Err(unserved(
                format!("the batch source format '{f}'"),
                "batch reads are of Delta tables: spark.read.format(\"delta\").load(path)",
            )),
        }
    }

    fn join(&self, j: &pb::Join) -> Result<Rel, ConnectError> {
        use pb::join::JoinType as J;
        let left = self.input(&j.left, "join")?;
        let right = self.input(&j.right, "join")?;
        let kind = match J::try_from(j.join_type).unwrap_or(J::Unspecified) {
            J::Inner | J::Unspecified => JoinKind::Inner,
            J::LeftOuter => JoinKind::LeftOuter,
            J::LeftSemi => JoinKind::LeftSemi,
            J::LeftAnti => JoinKind::LeftAnti,
            J::Cross if j.join_condition.is_none() && j.using_columns.is_empty() => {
                return Err(unserved("a cross join", "join on columns or a condition"));
            }
            J::Cross => JoinKind::Inner,
            other => {
                return Err(unserved(
                    format!("the join type {}", other.as_str_name()),
                    "microbatch joins a stream with a static table: inner, left outer, left semi or left anti",
                ));
            }
        };
        let on = match (&j.join_condition, j.using_columns.is_empty()) {
            (Some(c), true) => JoinOn::Condition(self.expr(c)?),
            (None, false) => JoinOn::Using(j.using_columns.clone()),
            (None, true) => {
                return Err(unserved(
                    "a join without columns or a condition",
                    "join on columns or a condition",
                ));
            }
            (Some(_), false) => {
                return Err(ConnectError::InvalidRequest(
                    "a join with both a condition and using columns".into(),
                ));
            }
        };
        match (left, right) {
            (
                Rel::Plan { plan: l, stream },
                Rel::Plan {
                    plan: r,
                    stream: None,
                },
            ) => Ok(Rel::Plan {
                plan: LogicalPlan::Join {
                    left: Box::new(l),
                    right: Box::new(r),
                    on,
                    kind,
                },
                stream,
            }),
            (Rel::Plan { stream: None, .. }, Rel::Plan { stream: Some(_), .. }) => Err(unserved(
                "a join with the stream on the right",
                "put the stream on the left: stream_df.join(static_df, ...)",
            )),
            (Rel::Plan { stream: Some(_), .. }, Rel::Plan { stream: Some(_), .. }) => Err(unserved(
                "a stream–stream join",
                "microbatch joins one stream with static Delta tables",
            )),
            _ => Err(unserved(
                "a join of rows sent by the client or of a sorted/limited DataFrame",
                "join a stream or a Delta table with a Delta table read by path; write local rows to a Delta table first",
            )),
        }
    }

    fn local(&self, l: &pb::LocalRelation) -> Result<Rel, ConnectError> {
        let declared = match l.schema.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                Some(crate::schema::parse_schema(s).map_err(|e| ConnectError::Analysis(e.to_string()))?)
            }
            None => None,
        };
        let rows = match (&l.data, &declared) {
            (Some(data), _) => {
                let (schema, batches) = super::types::read_ipc(data)?;
                let all = deltalake::arrow::compute::concat_batches(&schema, &batches).map_err(|e| {
                    ConnectError::InvalidRequest(format!("the local relation's batches: {e}"))
                })?;
                match declared {
                    Some(d) => super::batch::conform(&all, &d)?,
                    None => all,
                }
            }
            (None, Some(d)) => RecordBatch::new_empty(d.clone()),
            (None, None) => return Err(missing("the local relation's data and schema")),
        };
        Ok(Rel::Local(rows))
    }

    fn sort_key(&self, o: &expression::SortOrder) -> Result<SortKey, ConnectError> {
        use expression::sort_order::{NullOrdering, SortDirection};
        let expr = self.expr(o.child.as_deref().ok_or_else(|| missing("the sort key"))?)?;
        let descending = o.direction == SortDirection::Descending as i32;
        let nulls_first =
            match NullOrdering::try_from(o.null_ordering).unwrap_or(NullOrdering::SortNullsUnspecified) {
                NullOrdering::SortNullsFirst => true,
                NullOrdering::SortNullsLast => false,
                NullOrdering::SortNullsUnspecified => !descending,
            };
        Ok(SortKey {
            expr,
            descending,
            nulls_first,
        })
    }

    /// An expression.
    pub fn expr(&self, e: &pb::Expression) -> Result<Expr, ConnectError> {
        use expression::ExprType as E;
        let kind = e
            .expr_type
            .as_ref()
            .ok_or_else(|| missing("the expression's type"))?;
        Ok(match kind {
            E::Literal(l) => Expr::Literal(literal(l)?),
            E::UnresolvedAttribute(a) => attribute(&a.unparsed_identifier)?,
            E::UnresolvedStar(s) => match s.unparsed_target.as_deref() {
                None | Some("*") => Expr::Star,
                Some(t) => {
                    return Err(unserved(
                        format!("the qualified star `{t}`"),
                        "select `*` or name the columns",
                    ));
                }
            },
            E::ExpressionString(s) => {
                crate::expr::parse_expr(&s.expression).map_err(|e| ConnectError::Analysis(e.to_string()))?
            }
            E::Alias(a) => {
                let inner = self.expr(
                    a.expr
                        .as_deref()
                        .ok_or_else(|| missing("the aliased expression"))?,
                )?;
                match a.name.as_slice() {
                    [n] => inner.alias(n),
                    _ => return Err(unserved("a multi-part alias", "give the column one name")),
                }
            }
            E::Cast(c) => {
                let inner = self.expr(
                    c.expr
                        .as_deref()
                        .ok_or_else(|| missing("the cast's expression"))?,
                )?;
                let to = match &c.cast_to_type {
                    Some(expression::cast::CastToType::TypeStr(t)) => {
                        crate::expr::parse_type(t).map_err(|e| ConnectError::Analysis(e.to_string()))?
                    }
                    Some(expression::cast::CastToType::Type(t)) => sql_type(&super::types::from_proto(t)?)?,
                    None => return Err(missing("the cast's type")),
                };
                Expr::Cast {
                    expr: Box::new(inner),
                    to,
                }
            }
            E::UnresolvedFunction(f) => self.function(f)?,
            E::UnresolvedExtractValue(x) => {
                let child = self.expr(x.child.as_deref().ok_or_else(|| missing("the extracted value"))?)?;
                match x.extraction.as_deref().map(|e| self.expr(e)).transpose()? {
                    Some(Expr::Literal(Literal::String(name))) => child.field(&name),
                    Some(Expr::Literal(Literal::Int(i))) => crate::expr::call(
                        "element_at",
                        vec![child, Expr::Literal(Literal::Int(i.saturating_add(1)))],
                    ),
                    _ => {
                        return Err(unserved(
                            "this kind of value extraction",
                            "use a field name or an index",
                        ));
                    }
                }
            }
            E::SortOrder(_) => {
                return Err(ConnectError::Analysis(
                    "a sort order is only valid in orderBy()".into(),
                ));
            }
            other => {
                let name = match other {
                    E::UnresolvedRegex(_) => "colRegex",
                    E::LambdaFunction(_) => "a lambda function (higher-order functions)",
                    E::Window(_) => "a window function (over(...))",
                    E::UpdateFields(_) => "withField/dropFields",
                    E::UnresolvedNamedLambdaVariable(_) => "a lambda variable",
                    E::CommonInlineUserDefinedFunction(_) => "a Python UDF",
                    E::CallFunction(_) => "call_function",
                    _ => "this expression",
                };
                return Err(unserved(
                    format!("expression '{name}'"),
                    "the README's \"From PySpark\" section lists what is served",
                ));
            }
        })
    }

    fn function(&self, f: &expression::UnresolvedFunction) -> Result<Expr, ConnectError> {
        let args = f
            .arguments
            .iter()
            .map(|a| self.expr(a))
            .collect::<Result<Vec<_>, _>>()?;
        let name = f.function_name.as_str();
        let argc = args.len();
        let arity = |n: usize| -> Result<(), ConnectError> {
            if argc == n {
                Ok(())
            } else {
                Err(ConnectError::Analysis(format!(
                    "[WRONG_NUM_ARGS.WITHOUT_SUGGESTION] The `{name}` requires {n} parameters but the actual number is {argc}."
                )))
            }
        };
        let binary = |op: BinaryOp, args: Vec<Expr>| -> Result<Expr, ConnectError> {
            arity(2)?;
            let mut it = args.into_iter();
            match (it.next(), it.next()) {
                (Some(left), Some(right)) => Ok(Expr::Binary {
                    op,
                    left: Box::new(left),
                    right: Box::new(right),
                }),
                _ => Err(missing("an operand")),
            }
        };
        let op = match name {
            "==" => Some(BinaryOp::Eq),
            "!=" => Some(BinaryOp::NotEq),
            "<" => Some(BinaryOp::Lt),
            "<=" => Some(BinaryOp::LtEq),
            ">" => Some(BinaryOp::Gt),
            ">=" => Some(BinaryOp::GtEq),
            "<=>" => Some(BinaryOp::NullSafeEq),
            "and" => Some(BinaryOp::And),
            "or" => Some(BinaryOp::Or),
            "+" => Some(BinaryOp::Plus),
            "-" => Some(BinaryOp::Minus),
            "*" => Some(BinaryOp::Multiply),
            "/" => Some(BinaryOp::Divide),
            "%" => Some(BinaryOp::Modulo),
            "div" => Some(BinaryOp::IntDivide),
            _ => None,
        };
        if let Some(op) = op {
            return binary(op, args);
        }
        let mut it = args.clone().into_iter();
        let mut one = |what: &str| it.next().ok_or_else(|| missing(what));
        Ok(match name {
            "not" => {
                arity(1)?;
                Expr::Unary {
                    op: UnaryOp::Not,
                    expr: Box::new(one("not's operand")?),
                }
            }
            "negative" => {
                arity(1)?;
                Expr::Unary {
                    op: UnaryOp::Negate,
                    expr: Box::new(one("the negated operand")?),
                }
            }
            "isNull" | "isnull" => {
                arity(1)?;
                one("isNull's operand")?.is_null()
            }
            "isNotNull" | "isnotnull" => {
                arity(1)?;
                one("isNotNull's operand")?.is_not_null()
            }
            "in" => {
                let e = one("in's operand")?;
                Expr::InList {
                    expr: Box::new(e),
                    list: it.collect(),
                    negated: false,
                }
            }
            "like" | "ilike" | "rlike" => {
                arity(2)?;
                let kind = match name {
                    "like" => LikeKind::Like,
                    "ilike" => LikeKind::ILike,
                    _ => LikeKind::RLike,
                };
                Expr::Like {
                    expr: Box::new(one("like's operand")?),
                    pattern: Box::new(one("like's pattern")?),
                    kind,
                    negated: false,
                }
            }
            "when" => {
                if args.len() < 2 {
                    return Err(missing("when()'s condition and value"));
                }
                let mut branches = Vec::new();
                let mut rest = args.into_iter();
                let mut otherwise = None;
                loop {
                    match (rest.next(), rest.next()) {
                        (Some(c), Some(v)) => branches.push((c, v)),
                        (Some(e), None) => {
                            otherwise = Some(Box::new(e));
                            break;
                        }
                        _ => break,
                    }
                }
                Expr::Case {
                    operand: None,
                    branches,
                    otherwise,
                }
            }
            _ if f.is_user_defined_function => {
                return Err(unserved(
                    format!("the user-defined function `{name}`"),
                    "use built-in functions",
                ));
            }
            _ => Expr::Function {
                name: name.to_string(),
                args,
                distinct: f.is_distinct,
            },
        })
    }
}

/// `col("a.b")`, `` col("`a.b`") ``: a column, and fields of it.
fn attribute(text: &str) -> Result<Expr, ConnectError> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '`' if quoted && chars.peek() == Some(&'`') => {
                chars.next();
                cur.push('`');
            }
            '`' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(ConnectError::Analysis(format!(
            "[PARSE_SYNTAX_ERROR] Syntax error in the column name `{text}`: unclosed backtick"
        )));
    }
    parts.push(cur);
    if text == "*" {
        return Ok(Expr::Star);
    }
    let mut it = parts.into_iter();
    let first = it.next().unwrap_or_default();
    Ok(it.fold(Expr::Column(first), |e, f| e.field(&f)))
}

fn literal(l: &expression::Literal) -> Result<Literal, ConnectError> {
    use expression::literal::LiteralType as L;
    let t = l
        .literal_type
        .as_ref()
        .ok_or_else(|| missing("the literal's value"))?;
    Ok(match t {
        L::Null(_) => Literal::Null,
        L::Boolean(b) => Literal::Boolean(*b),
        L::Byte(v) => Literal::Byte(*v as i8),
        L::Short(v) => Literal::Short(*v as i16),
        L::Integer(v) => Literal::Int(*v),
        L::Long(v) => Literal::Long(*v),
        L::Float(v) => Literal::Float(*v),
        L::Double(v) => Literal::Double(*v),
        L::String(s) => Literal::String(s.clone()),
        L::Date(d) => Literal::Date(*d),
        L::Timestamp(t) | L::TimestampNtz(t) => Literal::Timestamp(*t),
        L::Decimal(d) => {
            let text = d.value.trim();
            let (int, frac) = text.split_once('.').unwrap_or((text, ""));
            let digits = format!("{int}{frac}");
            let value: i128 = digits
                .parse()
                .map_err(|_| ConnectError::InvalidRequest(format!("the decimal literal `{text}`")))?;
            let scale = d.scale.unwrap_or(frac.len() as i32);
            let precision = d
                .precision
                .unwrap_or((digits.trim_start_matches('-').len() as i32).max(1));
            Literal::Decimal {
                value,
                precision: u8::try_from(precision).unwrap_or(38),
                scale: i8::try_from(scale).unwrap_or(0),
            }
        }
        L::Binary(_) => return Err(unserved("a binary literal", "compare with a string")),
        L::CalendarInterval(_) | L::YearMonthInterval(_) | L::DayTimeInterval(_) => {
            return Err(unserved(
                "an interval literal",
                "write intervals as strings (\"10 minutes\")",
            ));
        }
        L::Array(_) | L::Map(_) | L::Struct(_) => {
            return Err(unserved(
                "an array, map or struct literal",
                "use array(), map() or struct() of literals",
            ));
        }
    })
}

/// The cast target of an Arrow type.
fn sql_type(t: &deltalake::arrow::datatypes::DataType) -> Result<SqlType, ConnectError> {
    use deltalake::arrow::datatypes::DataType as D;
    Ok(match t {
        D::Boolean => SqlType::Boolean,
        D::Int8 => SqlType::Byte,
        D::Int16 => SqlType::Short,
        D::Int32 => SqlType::Int,
        D::Int64 => SqlType::Long,
        D::Float32 => SqlType::Float,
        D::Float64 => SqlType::Double,
        D::Decimal128(p, s) => SqlType::Decimal(*p, *s),
        D::Utf8 => SqlType::String,
        D::Binary => SqlType::Binary,
        D::Date32 => SqlType::Date,
        D::Timestamp(_, _) => SqlType::Timestamp,
        other => return Err(unserved(format!("a cast to {other}"), "cast to a primitive type")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_split_on_dots_outside_backticks() {
        assert_eq!(attribute("a").unwrap(), Expr::Column("a".into()));
        assert_eq!(attribute("a.b").unwrap(), Expr::Column("a".into()).field("b"));
        assert_eq!(attribute("`a.b`").unwrap(), Expr::Column("a.b".into()));
        assert_eq!(
            attribute("event-type").unwrap(),
            Expr::Column("event-type".into())
        );
        assert!(attribute("`a").is_err());
    }
}
