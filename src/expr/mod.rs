//! PLACEHOLDER of the expression layer's contract, replaced by the real module (being written
//! on its own branch). Only column references resolve here.

use deltalake::arrow::array::{ArrayRef, RecordBatch};
use deltalake::arrow::datatypes::{DataType, Schema};
use serde::{Deserialize, Serialize};

/// A literal value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    /// NULL
    Null,
    /// a boolean
    Boolean(bool),
    /// an int
    Int(i32),
    /// a bigint
    Long(i64),
    /// a string
    String(String),
}

/// A unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnaryOp {
    /// NOT
    Not,
    /// -
    Negate,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryOp {
    /// =
    Eq,
    /// AND
    And,
}

/// An expression as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// a column
    Column(String),
    /// a literal
    Literal(Literal),
    /// unary
    Unary {
        /// op
        op: UnaryOp,
        /// operand
        expr: Box<Expr>,
    },
    /// binary
    Binary {
        /// op
        op: BinaryOp,
        /// left
        left: Box<Expr>,
        /// right
        right: Box<Expr>,
    },
    /// a function call
    Function {
        /// lower-case name
        name: String,
        /// arguments
        args: Vec<Expr>,
        /// DISTINCT
        distinct: bool,
    },
    /// AS
    Alias {
        /// the expression
        expr: Box<Expr>,
        /// its name
        name: String,
    },
    /// `*`
    Star,
}

/// Errors of expressions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    /// unknown column
    #[error("[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column or function parameter with name `{name}` cannot be resolved. Did you mean one of the following? [{}]", available.join(", "))]
    UnknownColumn {
        /// the name
        name: String,
        /// the columns there are
        available: Vec<String>,
    },
    /// not parsed
    #[error("[PARSE_SYNTAX_ERROR] {text}: {why}")]
    Parse {
        /// text
        text: String,
        /// why
        why: String,
    },
}

/// `col(name)`.
pub fn col(name: &str) -> Expr {
    Expr::Column(name.to_string())
}

/// Parses a Spark SQL expression.
pub fn parse_expr(sql: &str) -> Result<Expr, ExprError> {
    Err(ExprError::Parse {
        text: sql.into(),
        why: "expressions are not available yet".into(),
    })
}

/// The batch's context.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext {
    /// `current_timestamp()`
    pub batch_timestamp_ms: i64,
}

/// A resolved expression.
#[derive(Debug, Clone)]
pub struct PhysicalExpr {
    index: usize,
    data_type: DataType,
}

impl PhysicalExpr {
    /// Its type.
    pub fn data_type(&self) -> &DataType {
        &self.data_type
    }
    /// Nullable.
    pub fn nullable(&self) -> bool {
        true
    }
    /// Evaluates it.
    pub fn evaluate(&self, batch: &RecordBatch, _ctx: &EvalContext) -> Result<ArrayRef, ExprError> {
        Ok(batch.column(self.index).clone())
    }
}

impl Expr {
    /// Spark's name.
    pub fn output_name(&self) -> String {
        match self {
            Expr::Column(c) => c.rsplit('.').next().unwrap_or(c).to_string(),
            Expr::Alias { name, .. } => name.clone(),
            Expr::Star => "*".into(),
            Expr::Function { name, args, .. } => format!(
                "{name}({})",
                args.iter()
                    .map(|a| match a {
                        Expr::Star => "1".to_string(),
                        a => a.output_name(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => format!("{other:?}"),
        }
    }

    /// Resolves against `schema`.
    pub fn resolve(&self, schema: &Schema) -> Result<PhysicalExpr, ExprError> {
        match self {
            Expr::Column(c) => {
                let i = schema
                    .fields()
                    .iter()
                    .position(|f| f.name().eq_ignore_ascii_case(c))
                    .ok_or_else(|| ExprError::UnknownColumn {
                        name: c.clone(),
                        available: schema
                            .fields()
                            .iter()
                            .map(|f| format!("`{}`", f.name()))
                            .collect(),
                    })?;
                Ok(PhysicalExpr {
                    index: i,
                    data_type: schema.field(i).data_type().clone(),
                })
            }
            Expr::Alias { expr, .. } => expr.resolve(schema),
            other => Err(ExprError::Parse {
                text: format!("{other:?}"),
                why: "expressions are not available yet".into(),
            }),
        }
    }
}

/// Aggregate function names.
pub fn is_aggregate_function(name: &str) -> bool {
    matches!(
        name,
        "count"
            | "sum"
            | "avg"
            | "mean"
            | "min"
            | "max"
            | "first"
            | "last"
            | "collect_list"
            | "collect_set"
            | "approx_count_distinct"
    )
}
