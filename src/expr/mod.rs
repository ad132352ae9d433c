//! The expression layer: Spark SQL expressions as written ([`Expr`], parsed from text by
//! [`parse_expr`]), resolved against a schema with Spark 3.5's analyzer rules (case-insensitive
//! names, nested field access, implicit type coercion; [`Expr::resolve`]) into a
//! [`PhysicalExpr`] that evaluates a column at a time on Arrow arrays with Spark's non-ANSI
//! semantics (`spark.sql.ansi.enabled=false`: overflow wraps, division by zero and bad casts
//! give NULL).
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | the types and the API |
//! | `parse.rs` | Spark SQL text → [`Expr`] (through `sqlparser`'s Spark dialect) |
//! | `names.rs` | Spark's output column names (`(value * 2)`, `count(1)`, `CAST(v AS INT)`) |
//! | `types.rs` | Spark's types: names, coercion (widening, decimal precision rules) |
//! | `resolve.rs` | name resolution and type checking |
//! | `functions.rs` | the function registry: arity, result type, evaluation |
//! | `eval.rs` | evaluation of operators, casts, CASE, IN, LIKE |
//!
//! Aggregate functions (`count`, `sum`, …) parse into [`Expr::Function`] and are recognised by
//! [`is_aggregate_function`], but the aggregation operator evaluates them: resolving one here is
//! an error. So is `window(...)`, which the analyzer turns into a grouping key.
//!
//! What is checked against Spark: `spark_cases/cases.tsv` holds PySpark 3.5.9's answers (values,
//! type, column name, or error message) for ~280 expressions over one 4-row table, made by
//! `spark_cases/spark_cases.py`; `tests.rs` asserts every one. Known differences, each kept out
//! of that table:
//! - Spark names a few expressions from their operands' types: [`Expr::output_name_in`] (given
//!   the schema) does as Spark (`i > 1.5` on an integer `i` is `(i > 1)`, `d + 1` on a date is
//!   `date_add(d, 1)`); [`Expr::output_name`] (no schema) keeps them as written.
//! - Regular expressions use Rust's `regex` syntax, not Java's (the same for common patterns;
//!   no backreferences or look-around); datetime patterns map Spark's letters onto chrono's
//!   (the usual `yyyy MM dd HH mm ss SSS EEE MMM a` ones; others are an error).
//! - Interval literals and timestamp arithmetic, `\uXXXX` escapes in strings, and DISTINCT /
//!   FILTER / OVER on calls are not supported (an `[UNSUPPORTED_FEATURE]` error).
//!
//! Spark's own naming rule worth knowing: a top-level `CAST(col AS T)` of a plain column keeps
//! the column's name (`CAST(value AS INT)` is named `value`, as Spark's `ResolveAliases` does).

mod eval;
mod functions;
mod names;
mod parse;
mod resolve;
mod types;

#[cfg(test)]
mod tests;

use deltalake::arrow::array::{ArrayRef, RecordBatch};
use deltalake::arrow::datatypes::{DataType, Schema};
use serde::{Deserialize, Serialize};

pub use functions::function_names;
pub use parse::{parse_expr, parse_type};
pub use types::{simple_string, spark_type_name};

/// A literal value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    /// NULL
    Null,
    /// a boolean
    Boolean(bool),
    /// a tinyint
    Byte(i8),
    /// a smallint
    Short(i16),
    /// an int
    Int(i32),
    /// a bigint
    Long(i64),
    /// a float
    Float(f32),
    /// a double
    Double(f64),
    /// a decimal: `value` × 10^-`scale`
    Decimal {
        /// the unscaled value
        value: i128,
        /// digits in all
        precision: u8,
        /// digits after the point
        scale: i8,
    },
    /// a string
    String(String),
    /// a date: days since 1970-01-01
    Date(i32),
    /// a timestamp: microseconds since the epoch, UTC
    Timestamp(i64),
}

/// A Spark SQL type as written in `CAST(x AS type)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SqlType {
    /// BOOLEAN
    Boolean,
    /// TINYINT / BYTE
    Byte,
    /// SMALLINT / SHORT
    Short,
    /// INT / INTEGER
    Int,
    /// BIGINT / LONG
    Long,
    /// FLOAT / REAL
    Float,
    /// DOUBLE
    Double,
    /// DECIMAL(precision, scale)
    Decimal(u8, i8),
    /// STRING / VARCHAR
    String,
    /// BINARY
    Binary,
    /// DATE
    Date,
    /// TIMESTAMP
    Timestamp,
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
    /// +
    Plus,
    /// -
    Minus,
    /// *
    Multiply,
    /// / (always fractional: integers divide as doubles)
    Divide,
    /// `div` (integral division, bigint)
    IntDivide,
    /// %
    Modulo,
    /// =
    Eq,
    /// `<>` / `!=` (Spark: `NOT (a = b)`)
    NotEq,
    /// <
    Lt,
    /// <=
    LtEq,
    /// >
    Gt,
    /// >=
    GtEq,
    /// `<=>` (null-safe equality)
    NullSafeEq,
    /// AND
    And,
    /// OR
    Or,
}

/// How [`Expr::Like`] matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LikeKind {
    /// `LIKE` (`%`, `_`, escape `\`)
    Like,
    /// `ILIKE` (case-insensitive LIKE)
    ILike,
    /// `RLIKE` / `REGEXP` (a regular expression found anywhere in the string)
    RLike,
}

/// An expression as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// a column, possibly a dotted path into structs (`window.start`)
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
    /// `CAST(expr AS to)`
    Cast {
        /// the value
        expr: Box<Expr>,
        /// the type
        to: SqlType,
    },
    /// `CASE [operand] WHEN … THEN … [ELSE …] END` (`when(…).otherwise(…)`)
    Case {
        /// `CASE operand WHEN value …`: compared for equality with each branch's condition
        operand: Option<Box<Expr>>,
        /// (condition, result) pairs, in order
        branches: Vec<(Expr, Expr)>,
        /// ELSE
        otherwise: Option<Box<Expr>>,
    },
    /// `expr IS [NOT] NULL`
    IsNull {
        /// the value
        expr: Box<Expr>,
        /// IS NOT NULL
        negated: bool,
    },
    /// `expr [NOT] IN (list)` (`isin`)
    InList {
        /// the value
        expr: Box<Expr>,
        /// the candidates
        list: Vec<Expr>,
        /// NOT IN
        negated: bool,
    },
    /// `expr [NOT] BETWEEN low AND high`
    Between {
        /// the value
        expr: Box<Expr>,
        /// lower bound (inclusive)
        low: Box<Expr>,
        /// upper bound (inclusive)
        high: Box<Expr>,
        /// NOT BETWEEN
        negated: bool,
    },
    /// `expr [NOT] LIKE / ILIKE / RLIKE pattern`
    Like {
        /// the string
        expr: Box<Expr>,
        /// the pattern
        pattern: Box<Expr>,
        /// which kind of match
        kind: LikeKind,
        /// NOT LIKE
        negated: bool,
    },
    /// `expr.name`: a field of a struct-valued expression (a column path is a [`Expr::Column`])
    Field {
        /// the struct
        expr: Box<Expr>,
        /// the field
        name: String,
    },
}

/// Errors of expressions: parsing, resolution (with Spark's error classes) and evaluation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    /// unknown column
    #[error("[UNRESOLVED_COLUMN.WITH_SUGGESTION] A column or function parameter with name `{name}` cannot be resolved. Did you mean one of the following? [{}].", available.join(", "))]
    UnknownColumn {
        /// the name
        name: String,
        /// Spark's suggestions: the (at most 5) columns closest to the name, back-quoted
        available: Vec<String>,
    },
    /// a name matching several columns
    #[error("[AMBIGUOUS_REFERENCE] Reference `{name}` is ambiguous, could be: [{}].", candidates.join(", "))]
    Ambiguous {
        /// the name
        name: String,
        /// what it matches
        candidates: Vec<String>,
    },
    /// a struct without the field asked for
    #[error("[FIELD_NOT_FOUND] No such struct field `{field}` in {available}.")]
    UnknownField {
        /// the field
        field: String,
        /// the struct's fields
        available: String,
    },
    /// not parsed
    #[error("[PARSE_SYNTAX_ERROR] Syntax error in `{text}`: {why}")]
    Parse {
        /// text
        text: String,
        /// why
        why: String,
    },
    /// an unknown function
    #[error("[UNRESOLVED_ROUTINE] Cannot resolve function `{name}` on search path [`system`.`builtin`, `system`.`session`, `spark_catalog`.`default`].{}", if suggestion.is_empty() { String::new() } else { format!(" Did you mean one of: {}?", suggestion.join(", ")) })]
    UnknownFunction {
        /// the name
        name: String,
        /// known functions with a similar name
        suggestion: Vec<String>,
    },
    /// a function called with the wrong number of arguments
    #[error(
        "[WRONG_NUM_ARGS.WITHOUT_SUGGESTION] The `{name}` requires {expected} parameters but the actual number is {actual}."
    )]
    WrongArgs {
        /// the function
        name: String,
        /// what it takes (`1`, `[2, 3]`, `> 0`)
        expected: String,
        /// what it got
        actual: usize,
    },
    /// operand types the operator or function does not accept
    #[error("[DATATYPE_MISMATCH.{class}] Cannot resolve \"{expr}\" due to data type mismatch: {why}.")]
    TypeMismatch {
        /// the sub-class (`BINARY_OP_DIFF_TYPES`, `UNEXPECTED_INPUT_TYPE`, `CAST_WITHOUT_SUGGESTION`, …)
        class: String,
        /// the expression (Spark's name of it)
        expr: String,
        /// what is wrong
        why: String,
    },
    /// an expression that is valid Spark but not in this place (aggregates, `window`, `*`)
    #[error("{0}")]
    NotAllowed(String),
    /// an expression that is valid Spark but that microbatch does not evaluate
    #[error("[UNSUPPORTED_FEATURE] {0} is not supported by microbatch's expressions")]
    Unsupported(String),
    /// evaluation failed (an Arrow kernel's error)
    #[error("evaluating `{expr}`: {why}")]
    Eval {
        /// the expression
        expr: String,
        /// why
        why: String,
    },
}

/// `col(name)`.
pub fn col(name: &str) -> Expr {
    Expr::Column(name.to_string())
}

/// `lit(value)`.
pub fn lit(value: impl Into<Literal>) -> Expr {
    Expr::Literal(value.into())
}

/// `when(condition, value)`: a CASE with one branch; `.when(..)` / `.otherwise(..)` add more.
pub fn when(condition: Expr, value: Expr) -> Expr {
    Expr::Case {
        operand: None,
        branches: vec![(condition, value)],
        otherwise: None,
    }
}

/// A function call (`name` lower-cased).
pub fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function {
        name: name.to_ascii_lowercase(),
        args,
        distinct: false,
    }
}

impl From<bool> for Literal {
    fn from(v: bool) -> Self {
        Literal::Boolean(v)
    }
}
impl From<i32> for Literal {
    fn from(v: i32) -> Self {
        Literal::Int(v)
    }
}
impl From<i64> for Literal {
    fn from(v: i64) -> Self {
        Literal::Long(v)
    }
}
impl From<f64> for Literal {
    fn from(v: f64) -> Self {
        Literal::Double(v)
    }
}
impl From<&str> for Literal {
    fn from(v: &str) -> Self {
        Literal::String(v.to_string())
    }
}
impl From<String> for Literal {
    fn from(v: String) -> Self {
        Literal::String(v)
    }
}

impl Expr {
    fn binary(self, op: BinaryOp, other: Expr) -> Expr {
        Expr::Binary {
            op,
            left: Box::new(self),
            right: Box::new(other),
        }
    }
    /// `self AS name`.
    pub fn alias(self, name: &str) -> Expr {
        Expr::Alias {
            expr: Box::new(self),
            name: name.to_string(),
        }
    }
    /// `self = other`.
    pub fn eq(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Eq, other)
    }
    /// `self > other`.
    pub fn gt(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Gt, other)
    }
    /// `self < other`.
    pub fn lt(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Lt, other)
    }
    /// `self AND other`.
    pub fn and(self, other: Expr) -> Expr {
        self.binary(BinaryOp::And, other)
    }
    /// `self OR other`.
    pub fn or(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Or, other)
    }
    /// `self + other`.
    pub fn plus(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Plus, other)
    }
    /// `self * other`.
    pub fn multiply(self, other: Expr) -> Expr {
        self.binary(BinaryOp::Multiply, other)
    }
    /// `self IS NULL` (`isNull`).
    pub fn is_null(self) -> Expr {
        Expr::IsNull {
            expr: Box::new(self),
            negated: false,
        }
    }
    /// `self IS NOT NULL` (`isNotNull`).
    pub fn is_not_null(self) -> Expr {
        Expr::IsNull {
            expr: Box::new(self),
            negated: true,
        }
    }
    /// `self IN (list)` (`isin`).
    pub fn isin(self, list: Vec<Expr>) -> Expr {
        Expr::InList {
            expr: Box::new(self),
            list,
            negated: false,
        }
    }
    /// `self.name`: a field of a struct (on a column, the dotted path `col.name`).
    pub fn field(self, name: &str) -> Expr {
        match self {
            Expr::Column(c) => Expr::Column(format!("{c}.{name}")),
            other => Expr::Field {
                expr: Box::new(other),
                name: name.to_string(),
            },
        }
    }
    /// `CAST(self AS to)`.
    pub fn cast(self, to: SqlType) -> Expr {
        Expr::Cast {
            expr: Box::new(self),
            to,
        }
    }
    /// Another branch of a `when(…)`; on anything else, a CASE with this one branch.
    pub fn when(self, condition: Expr, value: Expr) -> Expr {
        match self {
            Expr::Case {
                operand,
                mut branches,
                otherwise: None,
            } => {
                branches.push((condition, value));
                Expr::Case {
                    operand,
                    branches,
                    otherwise: None,
                }
            }
            _ => when(condition, value),
        }
    }
    /// The ELSE of a `when(…)`.
    pub fn otherwise(self, value: Expr) -> Expr {
        match self {
            Expr::Case {
                operand, branches, ..
            } => Expr::Case {
                operand,
                branches,
                otherwise: Some(Box::new(value)),
            },
            other => other,
        }
    }

    /// The name Spark gives the column this expression computes (`(value * 2)`, `avg(value)`,
    /// `count(1)` for `count(*)`, `CAST(value AS INT)`, `start` for `window.start`).
    pub fn output_name(&self) -> String {
        names::output_name(self)
    }

    /// [`Expr::output_name`] as Spark names the column over `schema`: the same, but for the few
    /// names Spark derives from types (`i > 1.5` on an integer `i` is `(i > 1)`, `d + 1` on a
    /// date `d` is `date_add(d, 1)`). What a projection over a known schema should use.
    pub fn output_name_in(&self, schema: &Schema) -> String {
        names::output_name_in(self, schema)
    }

    /// Resolves the expression against `schema` (names case-insensitively, Spark's implicit
    /// casts inserted) into an evaluable [`PhysicalExpr`].
    pub fn resolve(&self, schema: &Schema) -> Result<PhysicalExpr, ExprError> {
        resolve::resolve(self, schema)
    }
}

/// The batch's context.
#[derive(Debug, Clone, Copy)]
pub struct EvalContext {
    /// `current_timestamp()` / `now()`: the micro-batch's timestamp, the same for every row of
    /// the batch as in Spark.
    pub batch_timestamp_ms: i64,
}

/// A resolved expression, ready to evaluate on batches of the schema it was resolved against.
#[derive(Debug, Clone)]
pub struct PhysicalExpr {
    node: eval::Node,
    data_type: DataType,
    nullable: bool,
}

impl PhysicalExpr {
    /// Column `index` of `schema` as it is (what `*` expands to: no name lookup, so duplicate
    /// names are no ambiguity). None when there is no such column.
    pub fn column(schema: &Schema, index: usize) -> Option<PhysicalExpr> {
        let f = schema.fields().get(index)?;
        Some(PhysicalExpr {
            node: eval::Node::Column(index),
            data_type: f.data_type().clone(),
            nullable: f.is_nullable(),
        })
    }
    /// Its type.
    pub fn data_type(&self) -> &DataType {
        &self.data_type
    }
    /// Whether it can be NULL.
    pub fn nullable(&self) -> bool {
        self.nullable
    }
    /// Evaluates it on every row of `batch`: an array of `batch.num_rows()` values of
    /// [`PhysicalExpr::data_type`].
    pub fn evaluate(&self, batch: &RecordBatch, ctx: &EvalContext) -> Result<ArrayRef, ExprError> {
        eval::evaluate(self, batch, ctx)
    }
}

/// Aggregate function names (evaluated by the aggregation operator, not here).
pub fn is_aggregate_function(name: &str) -> bool {
    functions::AGGREGATES.contains(&name)
}
