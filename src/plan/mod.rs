//! The logical plan: a query as Spark's analyzer sees it — a tree of relations over
//! expressions — and what [`analyze`] makes of it: the physical chain of operators, the output
//! schema, the write mode and the state layout, each decided once.
//!
//! ```text
//! Rust builder / query file / scenario / Spark Connect ──► LogicalPlan ──analyze──► Analyzed
//!                                                                       (steps, output schema,
//!                                                                        write mode, fingerprint)
//! ```

pub mod analyze;
pub mod optimize;
mod physical;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use analyze::{Analyzed, Step, WriteMode, analyze};
pub use physical::{build_pipeline, decoder_for};

use crate::expr::Expr;
use crate::operators::join::JoinKind;

/// A relation of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogicalPlan {
    /// `spark.readStream.format("json").schema(…).options(…).load(dir)`: the query's stream
    /// (its folder is the query's input).
    StreamSource {
        /// The schema as Spark writes it (DDL or `StructType` JSON); `None`: the seed's events.
        schema: Option<String>,
        /// Reader options (`timestampFormat`, `mode`, …).
        #[serde(default)]
        options: BTreeMap<String, String>,
    },
    /// `spark.read.format("delta").load(path)`: a static Delta table.
    DeltaTable {
        /// The table folder.
        path: PathBuf,
    },
    /// `select(…)`, `withColumn`, `withColumnRenamed`, `drop`: the output columns.
    Project {
        /// The input.
        input: Box<LogicalPlan>,
        /// One expression per output column (`*` expands to every input column).
        exprs: Vec<Expr>,
    },
    /// `withColumn(name, e)` / `withColumns({…})`: columns added, or replaced in place.
    WithColumns {
        /// The input.
        input: Box<LogicalPlan>,
        /// Name and expression of each.
        columns: Vec<(String, Expr)>,
    },
    /// `withColumnRenamed(from, to)` / `withColumnsRenamed({…})`.
    WithColumnsRenamed {
        /// The input.
        input: Box<LogicalPlan>,
        /// Old and new name of each.
        renames: Vec<(String, String)>,
    },
    /// `drop(cols)`.
    Drop {
        /// The input.
        input: Box<LogicalPlan>,
        /// The columns dropped.
        columns: Vec<String>,
    },
    /// `filter(…)` / `where(…)`.
    Filter {
        /// The input.
        input: Box<LogicalPlan>,
        /// Rows for which it is true pass.
        condition: Expr,
    },
    /// `withWatermark(column, delay)`.
    WithWatermark {
        /// The input.
        input: Box<LogicalPlan>,
        /// The event-time column.
        column: String,
        /// The delay, as Spark writes it (`"10 minutes"`).
        delay: String,
    },
    /// `groupBy(…).agg(…)`.
    Aggregate {
        /// The input.
        input: Box<LogicalPlan>,
        /// Grouping expressions (columns, `window(…)`, expressions).
        group_by: Vec<Expr>,
        /// Aggregate expressions (`count(*)`, `avg(value).alias(…)`).
        aggregates: Vec<Expr>,
    },
    /// `dropDuplicates(cols)` / `dropDuplicatesWithinWatermark(cols)`.
    Deduplicate {
        /// The input.
        input: Box<LogicalPlan>,
        /// The key columns; empty: every column.
        columns: Vec<String>,
        /// `dropDuplicatesWithinWatermark`.
        within_watermark: bool,
    },
    /// `join(other, on, how)`.
    Join {
        /// The left side.
        left: Box<LogicalPlan>,
        /// The right side.
        right: Box<LogicalPlan>,
        /// The join condition.
        on: JoinOn,
        /// The join type.
        kind: JoinKind,
    },
}

/// How a join matches rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinOn {
    /// `on=["a", "b"]`: equal values of columns named alike on both sides (a USING join).
    Using(Vec<String>),
    /// `on=<condition>`: a condition over both sides' columns.
    Condition(Expr),
}

impl LogicalPlan {
    /// The seed's event stream.
    pub fn seed_events() -> Self {
        Self::StreamSource {
            schema: None,
            options: BTreeMap::new(),
        }
    }

    /// This plan under `Project`.
    pub fn select(self, exprs: Vec<Expr>) -> Self {
        Self::Project {
            input: Box::new(self),
            exprs,
        }
    }

    /// `withColumns`: these columns added, or replaced where the name exists.
    pub fn with_columns(self, columns: Vec<(String, Expr)>) -> Self {
        Self::WithColumns {
            input: Box::new(self),
            columns,
        }
    }

    /// `withColumnsRenamed`.
    pub fn with_columns_renamed(self, renames: Vec<(String, String)>) -> Self {
        Self::WithColumnsRenamed {
            input: Box::new(self),
            renames,
        }
    }

    /// `drop(cols)`.
    pub fn drop_columns(self, columns: Vec<String>) -> Self {
        Self::Drop {
            input: Box::new(self),
            columns,
        }
    }

    /// This plan under `Filter`.
    pub fn filter(self, condition: Expr) -> Self {
        Self::Filter {
            input: Box::new(self),
            condition,
        }
    }

    /// This plan under `WithWatermark`.
    pub fn with_watermark(self, column: &str, delay: &str) -> Self {
        Self::WithWatermark {
            input: Box::new(self),
            column: column.to_string(),
            delay: delay.to_string(),
        }
    }

    /// This plan under `Aggregate`.
    pub fn aggregate(self, group_by: Vec<Expr>, aggregates: Vec<Expr>) -> Self {
        Self::Aggregate {
            input: Box::new(self),
            group_by,
            aggregates,
        }
    }

    /// This plan under `Deduplicate`.
    pub fn drop_duplicates(self, columns: Vec<String>, within_watermark: bool) -> Self {
        Self::Deduplicate {
            input: Box::new(self),
            columns,
            within_watermark,
        }
    }

    /// This plan joined with `right`.
    pub fn join(self, right: LogicalPlan, on: JoinOn, kind: JoinKind) -> Self {
        Self::Join {
            left: Box::new(self),
            right: Box::new(right),
            on,
            kind,
        }
    }

    /// The plan's inputs.
    pub fn children(&self) -> Vec<&LogicalPlan> {
        match self {
            Self::StreamSource { .. } | Self::DeltaTable { .. } => Vec::new(),
            Self::Project { input, .. }
            | Self::WithColumns { input, .. }
            | Self::WithColumnsRenamed { input, .. }
            | Self::Drop { input, .. }
            | Self::Filter { input, .. }
            | Self::WithWatermark { input, .. }
            | Self::Aggregate { input, .. }
            | Self::Deduplicate { input, .. } => vec![input],
            Self::Join { left, right, .. } => vec![left, right],
        }
    }

    /// The plan with `f` applied to each input, with the input's position (a join's right side
    /// is 1, every other input 0); a leaf unchanged.
    pub fn map_inputs(self, mut f: impl FnMut(LogicalPlan, usize) -> LogicalPlan) -> Self {
        let mut boxed = |b: Box<LogicalPlan>, i| Box::new(f(*b, i));
        match self {
            Self::StreamSource { .. } | Self::DeltaTable { .. } => self,
            Self::Project { input, exprs } => Self::Project {
                input: boxed(input, 0),
                exprs,
            },
            Self::WithColumns { input, columns } => Self::WithColumns {
                input: boxed(input, 0),
                columns,
            },
            Self::WithColumnsRenamed { input, renames } => Self::WithColumnsRenamed {
                input: boxed(input, 0),
                renames,
            },
            Self::Drop { input, columns } => Self::Drop {
                input: boxed(input, 0),
                columns,
            },
            Self::Filter { input, condition } => Self::Filter {
                input: boxed(input, 0),
                condition,
            },
            Self::WithWatermark { input, column, delay } => Self::WithWatermark {
                input: boxed(input, 0),
                column,
                delay,
            },
            Self::Aggregate {
                input,
                group_by,
                aggregates,
            } => Self::Aggregate {
                input: boxed(input, 0),
                group_by,
                aggregates,
            },
            Self::Deduplicate {
                input,
                columns,
                within_watermark,
            } => Self::Deduplicate {
                input: boxed(input, 0),
                columns,
                within_watermark,
            },
            Self::Join {
                left,
                right,
                on,
                kind,
            } => Self::Join {
                left: boxed(left, 0),
                right: boxed(right, 1),
                on,
                kind,
            },
        }
    }

    /// The plan with `f` applied to its first input (a join's left side); a leaf unchanged.
    pub fn map_first_child(self, f: impl FnOnce(LogicalPlan) -> LogicalPlan) -> Self {
        let mut f = Some(f);
        self.map_inputs(|p, i| match (i, f.take()) {
            (0, Some(f)) => f(p),
            _ => p,
        })
    }

    /// True when some relation reads the stream.
    pub fn is_streaming(&self) -> bool {
        matches!(self, Self::StreamSource { .. }) || self.children().iter().any(|c| c.is_streaming())
    }

    /// True when the plan has an aggregation.
    pub fn has_aggregate(&self) -> bool {
        matches!(self, Self::Aggregate { .. }) || self.children().iter().any(|c| c.has_aggregate())
    }

    /// True when the plan defines a watermark.
    pub fn has_watermark(&self) -> bool {
        matches!(self, Self::WithWatermark { .. }) || self.children().iter().any(|c| c.has_watermark())
    }

    /// The static Delta tables the plan reads, in plan order.
    pub fn static_tables(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        self.visit(&mut |p| {
            if let Self::DeltaTable { path } = p {
                out.push(path.clone());
            }
        });
        out
    }

    fn visit(&self, f: &mut impl FnMut(&LogicalPlan)) {
        for c in self.children() {
            c.visit(f);
        }
        f(self);
    }

    /// A one-line-per-relation description, as Spark's `explain` indents its tree.
    pub fn tree_string(&self) -> String {
        let mut out = String::new();
        self.describe(0, &mut out);
        out
    }

    fn describe(&self, depth: usize, out: &mut String) {
        use std::fmt::Write;
        let pad = if depth == 0 {
            String::new()
        } else {
            format!("{}+- ", "   ".repeat(depth - 1))
        };
        let names = |es: &[Expr]| es.iter().map(Expr::output_name).collect::<Vec<_>>().join(", ");
        let line = match self {
            Self::StreamSource { schema, .. } => format!(
                "StreamingRelation FileStreamSource[json], {}",
                schema.as_deref().unwrap_or("the seed's events")
            ),
            Self::DeltaTable { path } => format!("Relation delta {}", path.display()),
            Self::Project { exprs, .. } => format!("Project [{}]", names(exprs)),
            Self::WithColumns { columns, .. } => format!(
                "WithColumns [{}]",
                columns
                    .iter()
                    .map(|(n, e)| format!("{} AS {n}", e.output_name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::WithColumnsRenamed { renames, .. } => format!(
                "WithColumnsRenamed [{}]",
                renames
                    .iter()
                    .map(|(a, b)| format!("{a} AS {b}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Self::Drop { columns, .. } => format!("Drop [{}]", columns.join(", ")),
            Self::Filter { condition, .. } => format!("Filter {}", condition.output_name()),
            Self::WithWatermark { column, delay, .. } => format!("EventTimeWatermark {column}, {delay}"),
            Self::Aggregate {
                group_by, aggregates, ..
            } => format!("Aggregate [{}], [{}]", names(group_by), names(aggregates)),
            Self::Deduplicate {
                columns,
                within_watermark,
                ..
            } => format!(
                "{} [{}]",
                if *within_watermark {
                    "DeduplicateWithinWatermark"
                } else {
                    "Deduplicate"
                },
                columns.join(", ")
            ),
            Self::Join { on, kind, .. } => match on {
                JoinOn::Using(cols) => format!("Join {kind}, using [{}]", cols.join(", ")),
                JoinOn::Condition(e) => format!("Join {kind}, {}", e.output_name()),
            },
        };
        let _ = writeln!(out, "{pad}{line}");
        for c in self.children() {
            c.describe(depth + 1, out);
        }
    }
}
