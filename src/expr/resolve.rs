//! Name resolution and type checking: Spark 3.5's analyzer for one expression over one schema.
//! Names match case-insensitively (`spark.sql.caseSensitive=false`); `a.b.c` walks into
//! structs; operands are coerced as Spark's `TypeCoercion` rules do (numeric widening, strings
//! compared with numbers cast to the number, decimal precision rules); errors carry Spark's
//! error classes.

use deltalake::arrow::datatypes::{DataType, Field, Fields, Schema};

use super::eval::{Arith, Cmp, Node, literal_array};
use super::names::sql;
use super::types::{
    self, adjust_decimal, comparison, integral_decimal, is_integral, is_numeric, is_string, literal_decimal,
    normalise, spark_type_name, tightest, wider_all,
};
use super::{BinaryOp, Expr, ExprError, LikeKind, Literal, PhysicalExpr, UnaryOp};

pub(super) fn resolve(e: &Expr, schema: &Schema) -> Result<PhysicalExpr, ExprError> {
    Resolver { schema }.expr(e)
}

pub(super) struct Resolver<'a> {
    pub schema: &'a Schema,
}

pub(super) fn physical(node: Node, data_type: DataType, nullable: bool) -> PhysicalExpr {
    PhysicalExpr {
        node,
        data_type,
        nullable,
    }
}

/// `p` as type `t` (a cast when it is not one already).
pub(super) fn cast_to(p: PhysicalExpr, t: &DataType) -> PhysicalExpr {
    if &p.data_type == t {
        return p;
    }
    if let Node::Literal(a) = &p.node
        && let Ok(c) = super::eval::cast_array(a, t)
    {
        return physical(Node::Literal(c), t.clone(), p.nullable);
    }
    let nullable = p.nullable;
    physical(Node::Cast(Box::new(p)), t.clone(), nullable)
}

pub(super) fn mismatch(class: &str, e: &Expr, why: impl Into<String>) -> ExprError {
    ExprError::TypeMismatch {
        class: class.into(),
        expr: sql(e),
        why: why.into(),
    }
}

pub(super) fn quoted(t: &DataType) -> String {
    format!("\"{}\"", spark_type_name(t))
}

/// Levenshtein distance, for Spark's "did you mean" suggestions.
pub(super) fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The 5 candidates closest to `name`, as Spark orders its suggestions.
pub(super) fn suggestions<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let lower = name.to_ascii_lowercase();
    let mut c: Vec<(usize, &str)> = candidates
        .map(|c| (distance(&lower, &c.to_ascii_lowercase()), c))
        .collect();
    c.sort();
    c.into_iter().take(5).map(|(_, c)| format!("`{c}`")).collect()
}

fn is_boolean(t: &DataType) -> bool {
    matches!(t, DataType::Boolean | DataType::Null)
}

/// Whether Spark's `Cast.canCast` allows `from` → `to`.
fn can_cast(from: &DataType, to: &DataType) -> bool {
    use DataType as D;
    let atomic = |t: &DataType| {
        is_numeric(t) || is_string(t) || matches!(t, D::Boolean | D::Date32 | D::Timestamp(..))
    };
    match (from, to) {
        (f, t) if f == t => true,
        (D::Null, _) => true,
        (_, t) if is_string(t) => true,
        (f, D::Binary) => is_string(f) || is_integral(f),
        (D::Boolean | D::Date32, D::Date32) => false,
        (f, D::Date32) => is_string(f) || matches!(f, D::Timestamp(..)),
        (D::Struct(a), D::Struct(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b.iter())
                    .all(|(x, y)| can_cast(x.data_type(), y.data_type()))
        }
        (f, t) => atomic(f) && atomic(t) && !(matches!(f, D::Boolean) && matches!(t, D::Date32)),
    }
}

impl Resolver<'_> {
    /// Resolves `e`.
    pub fn expr(&self, e: &Expr) -> Result<PhysicalExpr, ExprError> {
        match e {
            Expr::Column(c) => self.column(c),
            Expr::Literal(l) => Ok(literal(l)),
            Expr::Alias { expr, .. } => self.expr(expr),
            Expr::Star => Err(ExprError::NotAllowed(
                "[INVALID_USAGE_OF_STAR_OR_REGEX] Invalid usage of '*' in an expression: `*` expands only at the top of a select list".into(),
            )),
            Expr::Unary { op, expr } => {
                let x = self.expr(expr)?;
                match op {
                    UnaryOp::Not => {
                        let x = self.boolean(x, e)?;
                        Ok(physical(Node::Not(Box::new(x.clone())), DataType::Boolean, x.nullable))
                    }
                    UnaryOp::Negate => {
                        let x = match &x.data_type {
                            t if is_string(t) => cast_to(x, &DataType::Float64),
                            DataType::Null => cast_to(x, &DataType::Float64),
                            t if is_numeric(t) => x,
                            t => {
                                return Err(mismatch(
                                    "UNEXPECTED_INPUT_TYPE",
                                    e,
                                    format!(
                                        "Parameter 1 requires the \"NUMERIC\" type, however \"{}\" has the type {}",
                                        sql(expr),
                                        quoted(t)
                                    ),
                                ));
                            }
                        };
                        let (t, n) = (x.data_type.clone(), x.nullable);
                        Ok(physical(Node::Negate(Box::new(x)), t, n))
                    }
                }
            }
            Expr::Binary { op, left, right } => self.binary(e, *op, left, right),
            Expr::Function { name, args, distinct } => super::functions::resolve(self, e, name, args, *distinct),
            Expr::Cast { expr, to } => {
                let x = self.expr(expr)?;
                let t = types::arrow_type(*to);
                if !can_cast(&x.data_type, &t) {
                    return Err(mismatch(
                        "CAST_WITHOUT_SUGGESTION",
                        e,
                        format!("cannot cast {} to {}", quoted(&x.data_type), quoted(&t)),
                    ));
                }
                let mut p = cast_to(x, &t);
                p.nullable = true;
                Ok(p)
            }
            Expr::Case {
                operand,
                branches,
                otherwise,
            } => self.case(e, operand.as_deref(), branches, otherwise.as_deref()),
            Expr::IsNull { expr, negated } => {
                let x = self.expr(expr)?;
                Ok(physical(Node::IsNull(Box::new(x), *negated), DataType::Boolean, false))
            }
            Expr::InList { expr, list, negated } => {
                let x = self.expr(expr)?;
                let items = list.iter().map(|i| self.expr(i)).collect::<Result<Vec<_>, _>>()?;
                let t = wider_all(std::iter::once(&x.data_type).chain(items.iter().map(|i| &i.data_type)))
                    .ok_or_else(|| {
                        mismatch(
                            "DATA_DIFF_TYPES",
                            e,
                            format!(
                                "Input to `in` should all be the same type, but it's [{}]",
                                std::iter::once(&x.data_type)
                                    .chain(items.iter().map(|i| &i.data_type))
                                    .map(spark_type_name)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    })?;
                let t = if t == DataType::Null { DataType::Boolean } else { t };
                let x = cast_to(x, &t);
                let items: Vec<PhysicalExpr> = items.into_iter().map(|i| cast_to(i, &t)).collect();
                let p = physical(Node::In(Box::new(x), items), DataType::Boolean, true);
                Ok(if *negated { not(p) } else { p })
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let b = Expr::Binary {
                    op: BinaryOp::And,
                    left: Box::new(Expr::Binary {
                        op: BinaryOp::GtEq,
                        left: expr.clone(),
                        right: low.clone(),
                    }),
                    right: Box::new(Expr::Binary {
                        op: BinaryOp::LtEq,
                        left: expr.clone(),
                        right: high.clone(),
                    }),
                };
                let p = self.expr(&b)?;
                Ok(if *negated { not(p) } else { p })
            }
            Expr::Like {
                expr,
                pattern,
                kind,
                negated,
            } => {
                let x = self.string_arg(self.expr(expr)?, e, 1)?;
                let pat = self.string_arg(self.expr(pattern)?, e, 2)?;
                let p = match (kind, pattern.as_ref()) {
                    (LikeKind::RLike, Expr::Literal(Literal::String(s))) => {
                        let re = super::functions::regex(s, e)?;
                        physical(Node::RLike(Box::new(x), Box::new(re)), DataType::Boolean, true)
                    }
                    (LikeKind::RLike, _) => {
                        return Err(ExprError::Unsupported(format!(
                            "`{}` with a pattern that is not a constant string",
                            sql(e)
                        )));
                    }
                    _ => physical(Node::Like(Box::new(x), Box::new(pat), *kind), DataType::Boolean, true),
                };
                Ok(if *negated { not(p) } else { p })
            }
            Expr::Field { expr, name } => {
                let x = self.expr(expr)?;
                field(x, name)
            }
        }
    }

    /// A column, or a path into a struct column (`window.start`).
    fn column(&self, name: &str) -> Result<PhysicalExpr, ExprError> {
        let fields = self.schema.fields();
        let find = |n: &str| -> Vec<usize> {
            fields
                .iter()
                .enumerate()
                .filter(|(_, f)| f.name().eq_ignore_ascii_case(n))
                .map(|(i, _)| i)
                .collect()
        };
        let top = |i: usize| {
            let f = &fields[i];
            physical(Node::Column(i), normalise(f.data_type()), f.is_nullable())
        };
        let ambiguous = |found: &[usize], n: &str| ExprError::Ambiguous {
            name: n.to_string(),
            candidates: found.iter().map(|i| format!("`{}`", fields[*i].name())).collect(),
        };
        match find(name).as_slice() {
            [i] => return Ok(top(*i)),
            [] => {}
            many => return Err(ambiguous(many, name)),
        }
        let mut parts = name.split('.');
        let first = parts.next().unwrap_or(name);
        let mut p = match find(first).as_slice() {
            [i] if name.contains('.') => top(*i),
            [] | [_] => {
                return Err(ExprError::UnknownColumn {
                    name: name.to_string(),
                    available: suggestions(name, fields.iter().map(|f| f.name().as_str())),
                });
            }
            many => return Err(ambiguous(many, first)),
        };
        for part in parts {
            p = field(p, part)?;
        }
        Ok(p)
    }

    fn boolean(&self, x: PhysicalExpr, e: &Expr) -> Result<PhysicalExpr, ExprError> {
        if is_boolean(&x.data_type) {
            return Ok(cast_to(x, &DataType::Boolean));
        }
        Err(mismatch(
            "UNEXPECTED_INPUT_TYPE",
            e,
            format!(
                "Parameter 1 requires the \"BOOLEAN\" type, however the input has the type {}",
                quoted(&x.data_type)
            ),
        ))
    }

    /// A string parameter: numbers, dates and timestamps are cast to strings, as Spark's
    /// implicit casts do for string functions.
    pub fn string_arg(&self, x: PhysicalExpr, e: &Expr, position: usize) -> Result<PhysicalExpr, ExprError> {
        match &x.data_type {
            t if is_string(t) => Ok(cast_to(x, &DataType::Utf8)),
            t if is_numeric(t)
                || matches!(
                    t,
                    DataType::Date32 | DataType::Timestamp(..) | DataType::Null | DataType::Boolean
                ) =>
            {
                Ok(cast_to(x, &DataType::Utf8))
            }
            t => Err(mismatch(
                "UNEXPECTED_INPUT_TYPE",
                e,
                format!(
                    "Parameter {position} requires the \"STRING\" type, however the input has the type {}",
                    quoted(t)
                ),
            )),
        }
    }

    fn binary(&self, e: &Expr, op: BinaryOp, left: &Expr, right: &Expr) -> Result<PhysicalExpr, ExprError> {
        let (l, r) = (self.expr(left)?, self.expr(right)?);
        let nullable = l.nullable || r.nullable;
        let (lt, rt) = (l.data_type.clone(), r.data_type.clone());
        let diff = || {
            mismatch(
                "BINARY_OP_DIFF_TYPES",
                e,
                format!(
                    "the left and right operands of the binary operator have incompatible types ({} and {})",
                    quoted(&lt),
                    quoted(&rt)
                ),
            )
        };
        let wrong = |t: &DataType, required: &str| {
            mismatch(
                "BINARY_OP_WRONG_TYPE",
                e,
                format!(
                    "the binary operator requires the input type {required}, not {}",
                    quoted(t)
                ),
            )
        };
        match op {
            BinaryOp::And | BinaryOp::Or => {
                if !is_boolean(&lt) || !is_boolean(&rt) {
                    return Err(if lt == rt {
                        wrong(&lt, "\"BOOLEAN\"")
                    } else {
                        diff()
                    });
                }
                let (l, r) = (cast_to(l, &DataType::Boolean), cast_to(r, &DataType::Boolean));
                let node = if op == BinaryOp::And {
                    Node::And(Box::new(l), Box::new(r))
                } else {
                    Node::Or(Box::new(l), Box::new(r))
                };
                Ok(physical(node, DataType::Boolean, nullable))
            }
            BinaryOp::Eq
            | BinaryOp::NotEq
            | BinaryOp::Lt
            | BinaryOp::LtEq
            | BinaryOp::Gt
            | BinaryOp::GtEq
            | BinaryOp::NullSafeEq => {
                let t = comparison(&lt, &rt).ok_or_else(diff)?;
                let t = if t == DataType::Null { DataType::Boolean } else { t };
                if matches!(t, DataType::Struct(_) | DataType::List(_) | DataType::Map(..))
                    && op != BinaryOp::Eq
                {
                    return Err(ExprError::Unsupported(format!(
                        "comparing {} values",
                        spark_type_name(&t)
                    )));
                }
                let (l, r) = (Box::new(cast_to(l, &t)), Box::new(cast_to(r, &t)));
                let c = match op {
                    BinaryOp::Eq | BinaryOp::NotEq => Cmp::Eq,
                    BinaryOp::Lt => Cmp::Lt,
                    BinaryOp::LtEq => Cmp::LtEq,
                    BinaryOp::Gt => Cmp::Gt,
                    BinaryOp::GtEq => Cmp::GtEq,
                    _ => Cmp::NullSafeEq,
                };
                let p = physical(
                    Node::Cmp(c, l, r),
                    DataType::Boolean,
                    nullable && c != Cmp::NullSafeEq,
                );
                Ok(if op == BinaryOp::NotEq { not(p) } else { p })
            }
            _ => self.arithmetic(e, op, l, r, left, right),
        }
    }

    fn arithmetic(
        &self,
        e: &Expr,
        op: BinaryOp,
        l: PhysicalExpr,
        r: PhysicalExpr,
        left: &Expr,
        right: &Expr,
    ) -> Result<PhysicalExpr, ExprError> {
        let (lt0, rt0) = (l.data_type.clone(), r.data_type.clone());
        // Strings (and NULL) in arithmetic are doubles; `div` takes bigints.
        let fix = |t: &DataType, other: &DataType| -> DataType {
            match t {
                t if is_string(t) => DataType::Float64,
                DataType::Null if is_numeric(other) => other.clone(),
                DataType::Null => DataType::Float64,
                t => t.clone(),
            }
        };
        // A date plus or minus days is date_add / date_sub, as Spark rewrites it.
        if matches!(op, BinaryOp::Plus | BinaryOp::Minus) && lt0 == DataType::Date32 && is_integral(&rt0) {
            let f = if op == BinaryOp::Plus {
                "date_add"
            } else {
                "date_sub"
            };
            return super::functions::resolve(self, e, f, &[left.clone(), right.clone()], false);
        }
        let (lt, rt) = (fix(&lt0, &rt0), fix(&rt0, &lt0));
        if !is_numeric(&lt) || !is_numeric(&rt) {
            return Err(
                if lt0 == rt0 || !(is_numeric(&lt) || is_numeric(&rt)) && lt == rt {
                    mismatch(
                        "BINARY_OP_WRONG_TYPE",
                        e,
                        format!(
                            "the binary operator requires the input type (\"NUMERIC\" or \"INTERVAL DAY TO SECOND\" or \"INTERVAL YEAR TO MONTH\" or \"INTERVAL\"), not {}",
                            quoted(&lt0)
                        ),
                    )
                } else {
                    mismatch(
                        "BINARY_OP_DIFF_TYPES",
                        e,
                        format!(
                            "the left and right operands of the binary operator have incompatible types ({} and {})",
                            quoted(&lt0),
                            quoted(&rt0)
                        ),
                    )
                },
            );
        }
        let (l, r) = (cast_to(l, &lt), cast_to(r, &rt));
        let arith = match op {
            BinaryOp::Plus => Arith::Add,
            BinaryOp::Minus => Arith::Sub,
            BinaryOp::Multiply => Arith::Mul,
            BinaryOp::Divide => Arith::Div,
            BinaryOp::Modulo => Arith::Rem,
            _ => Arith::IntDiv,
        };
        if arith == Arith::IntDiv {
            let (l, r) = (cast_to(l, &DataType::Int64), cast_to(r, &DataType::Int64));
            return Ok(physical(
                Node::Arith(arith, Box::new(l), Box::new(r)),
                DataType::Int64,
                true,
            ));
        }
        let decimal = matches!(lt, DataType::Decimal128(..)) || matches!(rt, DataType::Decimal128(..));
        let fractional = |t: &DataType| matches!(t, DataType::Float32 | DataType::Float64);
        if decimal && !fractional(&lt) && !fractional(&rt) {
            // An integer literal counts with its own digits (Spark's DecimalType.fromLiteral).
            let dec = |t: &DataType, x: &Expr| -> (u8, i8) {
                match x {
                    Expr::Literal(Literal::Int(v)) => literal_decimal(*v as i64),
                    Expr::Literal(Literal::Long(v)) => literal_decimal(*v),
                    Expr::Literal(Literal::Short(v)) => literal_decimal(*v as i64),
                    Expr::Literal(Literal::Byte(v)) => literal_decimal(*v as i64),
                    _ => integral_decimal(t).unwrap_or((38, 0)),
                }
            };
            let (p1, s1) = dec(&lt, left);
            let (p2, s2) = dec(&rt, right);
            let (p1, s1, p2, s2) = (p1 as i32, s1 as i32, p2 as i32, s2 as i32);
            let out = match arith {
                Arith::Add | Arith::Sub => {
                    let s = s1.max(s2);
                    adjust_decimal((p1 - s1).max(p2 - s2) + s + 1, s)
                }
                Arith::Mul => adjust_decimal(p1 + p2 + 1, s1 + s2),
                Arith::Div => {
                    let s = 6.max(s1 + p2 + 1);
                    adjust_decimal(p1 - s1 + s2 + s, s)
                }
                _ => {
                    let s = s1.max(s2);
                    adjust_decimal((p1 - s1).min(p2 - s2) + s, s)
                }
            };
            return Ok(physical(Node::Arith(arith, Box::new(l), Box::new(r)), out, true));
        }
        let t = if arith == Arith::Div {
            DataType::Float64
        } else {
            tightest(&lt, &rt).ok_or_else(|| {
                mismatch(
                    "BINARY_OP_DIFF_TYPES",
                    e,
                    format!("incompatible types ({} and {})", quoted(&lt), quoted(&rt)),
                )
            })?
        };
        let (l, r) = (cast_to(l, &t), cast_to(r, &t));
        let nullable = l.nullable || r.nullable || matches!(arith, Arith::Div | Arith::Rem);
        Ok(physical(
            Node::Arith(arith, Box::new(l), Box::new(r)),
            t,
            nullable,
        ))
    }

    fn case(
        &self,
        e: &Expr,
        operand: Option<&Expr>,
        branches: &[(Expr, Expr)],
        otherwise: Option<&Expr>,
    ) -> Result<PhysicalExpr, ExprError> {
        let mut conds = Vec::new();
        let mut values = Vec::new();
        for (j, (c_expr, v)) in branches.iter().enumerate() {
            let c = c_expr;
            let c = match operand {
                Some(o) => self.expr(&Expr::Binary {
                    op: BinaryOp::Eq,
                    left: Box::new(o.clone()),
                    right: Box::new(c.clone()),
                })?,
                None => self.expr(c)?,
            };
            // Spark takes no NULL (VOID) condition here, unlike in AND / OR / NOT.
            if c.data_type != DataType::Boolean {
                return Err(mismatch(
                    "UNEXPECTED_INPUT_TYPE",
                    e,
                    format!(
                        "Parameter {} requires the \"BOOLEAN\" type, however \"{}\" has the type {}",
                        2 * j + 1,
                        sql(c_expr),
                        quoted(&c.data_type)
                    ),
                ));
            }
            conds.push(cast_to(c, &DataType::Boolean));
            values.push(self.expr(v)?);
        }
        let other = otherwise.map(|o| self.expr(o)).transpose()?;
        let t = wider_all(values.iter().chain(other.iter()).map(|v| &v.data_type)).ok_or_else(|| {
            mismatch(
                "DATA_DIFF_TYPES",
                e,
                format!(
                    "Input to `casewhen` should all be the same type, but it's [{}]",
                    values
                        .iter()
                        .chain(other.iter())
                        .map(|v| spark_type_name(&v.data_type))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        let nullable = other.as_ref().is_none_or(|o| o.nullable) || values.iter().any(|v| v.nullable);
        let branches: Vec<(PhysicalExpr, PhysicalExpr)> = conds
            .into_iter()
            .zip(values.into_iter().map(|v| cast_to(v, &t)))
            .collect();
        let other = other.map(|o| Box::new(cast_to(o, &t)));
        Ok(physical(Node::Case(branches, other), t, nullable))
    }
}

pub(super) fn not(p: PhysicalExpr) -> PhysicalExpr {
    let n = p.nullable;
    physical(Node::Not(Box::new(p)), DataType::Boolean, n)
}

pub(super) fn literal(l: &Literal) -> PhysicalExpr {
    let a = literal_array(l);
    let t = a.data_type().clone();
    physical(Node::Literal(a), t, matches!(l, Literal::Null))
}

/// The field `name` of struct-valued `x` (case-insensitive).
fn field(x: PhysicalExpr, name: &str) -> Result<PhysicalExpr, ExprError> {
    let DataType::Struct(fs) = &x.data_type else {
        return Err(ExprError::TypeMismatch {
            class: "INVALID_EXTRACT_BASE_FIELD_TYPE".into(),
            expr: name.to_string(),
            why: format!(
                "can't extract a value from a value of type {}: it needs a STRUCT",
                quoted(&x.data_type)
            ),
        });
    };
    let found: Vec<usize> = fs
        .iter()
        .enumerate()
        .filter(|(_, f)| f.name().eq_ignore_ascii_case(name))
        .map(|(i, _)| i)
        .collect();
    let [i] = found.as_slice() else {
        return Err(ExprError::UnknownField {
            field: name.to_string(),
            available: fs
                .iter()
                .map(|f| format!("`{}`", f.name()))
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let f: &Field = &fs[*i];
    let t = normalise(f.data_type());
    Ok(physical(Node::Field(Box::new(x), *i), t, true))
}

/// Fields of a struct built from `(name, value)` pairs.
pub(super) fn struct_fields(items: &[(String, &PhysicalExpr)]) -> Fields {
    items
        .iter()
        .map(|(n, p)| Field::new(n, p.data_type.clone(), p.nullable))
        .collect::<Vec<_>>()
        .into()
}
