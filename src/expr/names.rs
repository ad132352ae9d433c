//! Spark's output column names: what `SELECT <expr>` calls its column when there is no alias
//! (Spark's `toPrettySQL` of the analysed expression, with the analyzer's `ResolveAliases`
//! exceptions: a struct field path names the field, a top-level `CAST` of a column keeps the
//! column's name). Spark fills in defaulted arguments (`round(d)` → `round(d, 0)`), spells a few
//! functions in capitals (`CEIL`, `FLOOR`, `SQRT`, `POWER`, `RLIKE`) and writes `a <> b` as
//! `(NOT (a = b))` and `BETWEEN` as its two comparisons.

use deltalake::arrow::datatypes::{DataType, Schema};

use super::{BinaryOp, Expr, LikeKind, Literal, UnaryOp};

/// The output name of `e` at the top of a select list.
pub fn output_name(e: &Expr) -> String {
    match e {
        Expr::Column(c) => c.rsplit('.').next().unwrap_or(c).to_string(),
        Expr::Alias { name, .. } => name.clone(),
        // A top-level cast of a column keeps the column's name (not of a struct field path).
        Expr::Cast { expr, to } => match expr.as_ref() {
            Expr::Column(c) if !c.contains('.') => output_name(expr),
            _ => sql(&Expr::Cast {
                expr: expr.clone(),
                to: *to,
            }),
        },
        other => sql(other),
    }
}

/// The output name of `e` over `schema`: [`output_name`] after the rewrites Spark's analyzer
/// makes from types before it names a column: an integral value compared with a decimal
/// literal compares with the literal's floor or ceiling (`i > 1.5` is `(i > 1)`), and a date
/// plus or minus days is `date_add` / `date_sub`.
pub fn output_name_in(e: &Expr, schema: &Schema) -> String {
    output_name(&typed(e, schema))
}

fn type_of(e: &Expr, schema: &Schema) -> Option<DataType> {
    e.resolve(schema).ok().map(|p| p.data_type().clone())
}

fn typed(e: &Expr, schema: &Schema) -> Expr {
    let t = |x: &Expr| Box::new(typed(x, schema));
    match e {
        Expr::Binary { op, left, right } => {
            let (l, r) = (t(left), t(right));
            let integral = |x: &Expr| type_of(x, schema).is_some_and(|t| super::types::is_integral(&t));
            let whole = |v: i128, s: i8, up: bool| -> Option<Expr> {
                let d = super::eval::pow10(s as i32)?;
                let q = v.div_euclid(d) + i128::from(up && v.rem_euclid(d) != 0);
                i64::try_from(q).ok().map(|q| Expr::Literal(Literal::Long(q)))
            };
            let dec = |x: &Expr| match x {
                Expr::Literal(Literal::Decimal { value, scale, .. }) => Some((*value, *scale)),
                _ => None,
            };
            // (integral OP decimal literal): `>` and `<=` take the floor, `>=` and `<` the ceiling.
            let rewrite = match (op, dec(&r), dec(&l)) {
                (BinaryOp::Gt | BinaryOp::LtEq, Some((v, s)), _) if integral(&l) => {
                    whole(v, s, false).map(|x| (l.clone(), Box::new(x)))
                }
                (BinaryOp::GtEq | BinaryOp::Lt, Some((v, s)), _) if integral(&l) => {
                    whole(v, s, true).map(|x| (l.clone(), Box::new(x)))
                }
                (BinaryOp::Lt | BinaryOp::GtEq, _, Some((v, s))) if integral(&r) => {
                    whole(v, s, false).map(|x| (Box::new(x), r.clone()))
                }
                (BinaryOp::Gt | BinaryOp::LtEq, _, Some((v, s))) if integral(&r) => {
                    whole(v, s, true).map(|x| (Box::new(x), r.clone()))
                }
                _ => None,
            };
            if let Some((left, right)) = rewrite {
                return Expr::Binary { op: *op, left, right };
            }
            if matches!(op, BinaryOp::Plus | BinaryOp::Minus)
                && type_of(&l, schema) == Some(DataType::Date32)
                && type_of(&r, schema).is_some_and(|t| super::types::is_integral(&t))
            {
                let name = if *op == BinaryOp::Plus {
                    "date_add"
                } else {
                    "date_sub"
                };
                return Expr::Function {
                    name: name.into(),
                    args: vec![*l, *r],
                    distinct: false,
                };
            }
            Expr::Binary {
                op: *op,
                left: l,
                right: r,
            }
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
            let b = typed(&b, schema);
            if *negated {
                Expr::Unary {
                    op: UnaryOp::Not,
                    expr: Box::new(b),
                }
            } else {
                b
            }
        }
        Expr::Unary { op, expr } => Expr::Unary {
            op: *op,
            expr: t(expr),
        },
        Expr::Alias { expr, name } => Expr::Alias {
            expr: t(expr),
            name: name.clone(),
        },
        Expr::Function { name, args, distinct } => Expr::Function {
            name: name.clone(),
            args: args.iter().map(|a| typed(a, schema)).collect(),
            distinct: *distinct,
        },
        Expr::Cast { expr, to } => Expr::Cast {
            expr: t(expr),
            to: *to,
        },
        Expr::Case {
            operand,
            branches,
            otherwise,
        } => Expr::Case {
            operand: operand.as_deref().map(t),
            branches: branches
                .iter()
                .map(|(c, v)| (typed(c, schema), typed(v, schema)))
                .collect(),
            otherwise: otherwise.as_deref().map(t),
        },
        Expr::IsNull { expr, negated } => Expr::IsNull {
            expr: t(expr),
            negated: *negated,
        },
        Expr::InList { expr, list, negated } => Expr::InList {
            expr: t(expr),
            list: list.iter().map(|a| typed(a, schema)).collect(),
            negated: *negated,
        },
        Expr::Like {
            expr,
            pattern,
            kind,
            negated,
        } => Expr::Like {
            expr: t(expr),
            pattern: t(pattern),
            kind: *kind,
            negated: *negated,
        },
        Expr::Field { expr, name } => Expr::Field {
            expr: t(expr),
            name: name.clone(),
        },
        Expr::Column(_) | Expr::Literal(_) | Expr::Star => e.clone(),
    }
}

/// Java's `Double.toString` (what Spark prints for doubles): `1.5`, `1500.0`, `1.0E20`.
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let a = v.abs();
    if (1e-3..1e7).contains(&a) {
        let s = format!("{v}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{v:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.to_string()
        } else {
            format!("{m}.0")
        };
        format!("{m}E{e}")
    }
}

/// Java's `Float.toString`.
pub fn java_float(v: f32) -> String {
    if v.is_finite() && v != 0.0 && (1e-3..1e7).contains(&v.abs()) {
        let s = format!("{v}");
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    java_double(v as f64)
}

/// A decimal's unscaled value as text (`125`, scale 2 → `1.25`).
pub fn decimal_text(value: i128, scale: i8) -> String {
    if scale <= 0 {
        let mut s = value.to_string();
        if value != 0 {
            s.extend(std::iter::repeat_n('0', (-scale) as usize));
        }
        return s;
    }
    let neg = value < 0;
    let digits = value.unsigned_abs().to_string();
    let scale = scale as usize;
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale - digits.len() + 1))
    } else {
        digits
    };
    let (i, f) = padded.split_at(padded.len() - scale);
    format!("{}{i}.{f}", if neg { "-" } else { "" })
}

fn literal(l: &Literal) -> String {
    match l {
        Literal::Null => "NULL".into(),
        Literal::Boolean(b) => b.to_string(),
        Literal::Byte(v) => v.to_string(),
        Literal::Short(v) => v.to_string(),
        Literal::Int(v) => v.to_string(),
        Literal::Long(v) => v.to_string(),
        Literal::Float(v) => java_float(*v),
        Literal::Double(v) => java_double(*v),
        Literal::Decimal { value, scale, .. } => decimal_text(*value, *scale),
        Literal::String(s) => s.clone(),
        Literal::Date(d) => format!("DATE '{}'", super::eval::date_text(*d)),
        Literal::Timestamp(t) => format!("TIMESTAMP '{}'", super::eval::timestamp_text(*t)),
    }
}

fn op_text(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Plus => "+",
        BinaryOp::Minus => "-",
        BinaryOp::Multiply => "*",
        BinaryOp::Divide => "/",
        BinaryOp::IntDivide => "div",
        BinaryOp::Modulo => "%",
        BinaryOp::Eq | BinaryOp::NotEq => "=",
        BinaryOp::Lt => "<",
        BinaryOp::LtEq => "<=",
        BinaryOp::Gt => ">",
        BinaryOp::GtEq => ">=",
        BinaryOp::NullSafeEq => "<=>",
        BinaryOp::And => "AND",
        BinaryOp::Or => "OR",
    }
}

fn list(args: &[Expr]) -> String {
    args.iter().map(sql).collect::<Vec<_>>().join(", ")
}

const DEFAULT_TIME_FORMAT: &str = "yyyy-MM-dd HH:mm:ss";

fn function(name: &str, args: &[Expr], distinct: bool) -> String {
    let with = |extra: &str| format!("{name}({}, {extra})", list(args));
    match (name, args.len()) {
        ("count", _) if matches!(args, [Expr::Star]) => "count(1)".into(),
        (_, _) if distinct => format!("{name}(DISTINCT {})", list(args)),
        ("isnull", 1) => format!("({} IS NULL)", sql(&args[0])),
        ("isnotnull", 1) => format!("({} IS NOT NULL)", sql(&args[0])),
        ("ceil" | "floor" | "sqrt" | "power" | "exp" | "rlike", _) => {
            format!("{}({})", name.to_ascii_uppercase(), list(args))
        }
        ("if", 3) => format!("(IF({}))", list(args)),
        ("trim" | "ltrim" | "rtrim", 2) => {
            let side = match name {
                "trim" => "BOTH",
                "ltrim" => "LEADING",
                _ => "TRAILING",
            };
            format!("TRIM({side} {} FROM {})", sql(&args[1]), sql(&args[0]))
        }
        ("ceiling", _) => format!("ceiling({})", list(args)),
        ("round" | "bround", 1) => with("0"),
        ("substring" | "substr", 2) => with("2147483647"),
        ("regexp_replace", 3) => with("1"),
        ("regexp_extract", 2) => with("1"),
        ("unix_timestamp", 0) => format!("unix_timestamp(current_timestamp(), {DEFAULT_TIME_FORMAT})"),
        ("unix_timestamp" | "from_unixtime", 1) => with(DEFAULT_TIME_FORMAT),
        _ => format!("{name}({})", list(args)),
    }
}

/// Spark's pretty SQL of `e` inside a bigger expression.
pub fn sql(e: &Expr) -> String {
    match e {
        Expr::Column(c) => c.clone(),
        Expr::Literal(l) => literal(l),
        Expr::Star => "*".into(),
        Expr::Alias { expr, name } => format!("{} AS {name}", sql(expr)),
        Expr::Unary {
            op: UnaryOp::Not,
            expr,
        } => format!("(NOT {})", sql(expr)),
        Expr::Unary {
            op: UnaryOp::Negate,
            expr,
        } => format!("(- {})", sql(expr)),
        Expr::Binary {
            op: BinaryOp::NotEq,
            left,
            right,
        } => format!("(NOT ({} = {}))", sql(left), sql(right)),
        Expr::Binary { op, left, right } => format!("({} {} {})", sql(left), op_text(*op), sql(right)),
        Expr::Function { name, args, distinct } => function(name, args, *distinct),
        Expr::Cast { expr, to } => format!(
            "CAST({} AS {})",
            sql(expr),
            super::types::spark_type_name(&super::types::arrow_type(*to))
        ),
        Expr::Case {
            operand,
            branches,
            otherwise,
        } => {
            let mut s = String::from("CASE");
            for (c, v) in branches {
                let c = match operand {
                    Some(o) => format!("({} = {})", sql(o), sql(c)),
                    None => sql(c),
                };
                s.push_str(&format!(" WHEN {c} THEN {}", sql(v)));
            }
            if let Some(o) = otherwise {
                s.push_str(&format!(" ELSE {}", sql(o)));
            }
            s.push_str(" END");
            s
        }
        Expr::IsNull { expr, negated } => {
            format!("({} IS {}NULL)", sql(expr), if *negated { "NOT " } else { "" })
        }
        Expr::InList {
            expr,
            list: l,
            negated,
        } => {
            let s = format!("({} IN ({}))", sql(expr), list(l));
            if *negated { format!("(NOT {s})") } else { s }
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let x = sql(expr);
            let s = format!("(({x} >= {}) AND ({x} <= {}))", sql(low), sql(high));
            if *negated { format!("(NOT {s})") } else { s }
        }
        Expr::Like {
            expr,
            pattern,
            kind,
            negated,
        } => {
            let s = match kind {
                LikeKind::Like => format!("{} LIKE {}", sql(expr), sql(pattern)),
                LikeKind::ILike => format!("ilike({}, {})", sql(expr), sql(pattern)),
                LikeKind::RLike => format!("RLIKE({}, {})", sql(expr), sql(pattern)),
            };
            if *negated { format!("(NOT {s})") } else { s }
        }
        Expr::Field { expr, name } => format!("{}.{name}", sql(expr)),
    }
}
