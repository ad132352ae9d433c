//! Spark SQL text → [`Expr`], through `sqlparser`'s Spark dialect: its AST is mapped onto ours,
//! with Spark's literal typing (`1` int, `3000000000` bigint, `1.5` decimal(2,1), `1.5e3` and
//! `1.5D` double, `1L` bigint).

use sqlparser::ast::{
    self, AccessExpr, BinaryOperator, CeilFloorKind, DuplicateTreatment, FunctionArg, FunctionArgExpr,
    FunctionArguments, SelectItem, TrimWhereField, UnaryOperator, Value,
};
use sqlparser::dialect::{Dialect, SparkSqlDialect};
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use super::{BinaryOp, Expr, ExprError, LikeKind, Literal, SqlType, UnaryOp};

/// `sqlparser`'s Spark dialect, with Spark's backslash escapes in string literals (`'it\'s'`;
/// `'\\d'` is `\d`; `\%` and `\_` stay escaped for LIKE), as Spark's parser unescapes them.
#[derive(Debug)]
struct Spark;

impl Dialect for Spark {
    fn dialect(&self) -> std::any::TypeId {
        std::any::TypeId::of::<SparkSqlDialect>()
    }
    fn supports_string_literal_backslash_escape(&self) -> bool {
        true
    }
    fn ignores_wildcard_escapes(&self) -> bool {
        true
    }
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        SparkSqlDialect.is_delimited_identifier_start(ch)
    }
    fn is_identifier_start(&self, ch: char) -> bool {
        SparkSqlDialect.is_identifier_start(ch)
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        SparkSqlDialect.is_identifier_part(ch)
    }
    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }
    fn supports_group_by_expr(&self) -> bool {
        true
    }
    fn supports_lambda_functions(&self) -> bool {
        true
    }
    fn supports_struct_literal(&self) -> bool {
        true
    }
    fn supports_nested_comments(&self) -> bool {
        true
    }
    fn supports_long_type_as_bigint(&self) -> bool {
        true
    }
    fn require_interval_qualifier(&self) -> bool {
        true
    }
    fn supports_bang_not_operator(&self) -> bool {
        true
    }
    fn supports_map_literal_with_angle_brackets(&self) -> bool {
        true
    }
    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &ast::Expr,
        precedence: u8,
    ) -> Option<Result<ast::Expr, ParserError>> {
        SparkSqlDialect.parse_infix(parser, expr, precedence)
    }
}

/// Nesting deeper than this is a parse error (not a stack overflow).
const RECURSION_LIMIT: usize = 64;

fn parse_error(text: &str, why: impl ToString) -> ExprError {
    ExprError::Parse {
        text: text.to_string(),
        why: why.to_string(),
    }
}

fn unsupported(what: impl std::fmt::Display) -> ExprError {
    ExprError::Unsupported(what.to_string())
}

/// Parses one Spark SQL expression, as `selectExpr` / `expr()` take it: `value * 2`,
/// `upper(event_type) AS kind`, `*`, `CASE WHEN … END`, `window(timestamp, '5 minutes')`.
pub fn parse_expr(sql: &str) -> Result<Expr, ExprError> {
    let tokens = Tokenizer::new(&Spark, sql)
        .tokenize_with_location()
        .map_err(|e| parse_error(sql, e))?;
    let mut parser = Parser::new(&Spark)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(typed_numbers(tokens));
    if parser.peek_token().token == Token::EOF {
        return Err(parse_error(sql, "empty expression"));
    }
    let item = parser.parse_select_item().map_err(|e| parse_error(sql, e))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(parse_error(
            sql,
            format!("unexpected `{}` at {}", next.token, next.span.start),
        ));
    }
    match item {
        SelectItem::UnnamedExpr(e) => convert(&e),
        SelectItem::ExprWithAlias { expr, alias } => Ok(Expr::Alias {
            expr: Box::new(convert(&expr)?),
            name: alias.value,
        }),
        SelectItem::Wildcard(_) => Ok(Expr::Star),
        other => Err(unsupported(format!("the select item `{other}`"))),
    }
}

/// Spark's typed number literals (`2Y`, `3S`, `1.5D`, `1.5F`, `1.5BD`): a number with a suffix
/// right after it is one number token (sqlparser would read the suffix as an alias).
fn typed_numbers(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    for t in tokens {
        if let (Token::Word(w), Some(prev)) = (&t.token, out.last_mut())
            && w.quote_style.is_none()
            && matches!(
                w.value.to_ascii_lowercase().as_str(),
                "y" | "s" | "d" | "f" | "bd" | "l"
            )
            && let Token::Number(n, false) = &prev.token
            && prev.span.end == t.span.start
        {
            prev.token = Token::Number(format!("{n}{}", w.value), false);
            prev.span.end = t.span.end;
            continue;
        }
        out.push(t);
    }
    out
}

/// Parses a Spark SQL type name (`int`, `bigint`, `decimal(10,2)`, `string`, `timestamp`).
pub fn parse_type(text: &str) -> Result<SqlType, ExprError> {
    let mut parser = Parser::new(&Spark)
        .try_with_sql(text)
        .map_err(|e| parse_error(text, e))?;
    let t = parser.parse_data_type().map_err(|e| parse_error(text, e))?;
    if parser.peek_token().token != Token::EOF {
        return Err(parse_error(text, "unexpected text after the type"));
    }
    convert_type(&t)
}

fn number_info(info: &ast::ExactNumberInfo) -> Result<SqlType, ExprError> {
    let (p, s) = match info {
        ast::ExactNumberInfo::None => (10, 0),
        ast::ExactNumberInfo::Precision(p) => (*p, 0),
        ast::ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
    };
    if !(1..=38).contains(&p) || s < 0 || s as u64 > p {
        return Err(ExprError::Parse {
            text: format!("DECIMAL({p},{s})"),
            why: "[DECIMAL_PRECISION_EXCEEDS_MAX_PRECISION] a decimal's precision must be 1..38 and its scale 0..precision".into(),
        });
    }
    Ok(SqlType::Decimal(p as u8, s as i8))
}

fn convert_type(t: &ast::DataType) -> Result<SqlType, ExprError> {
    use ast::DataType as D;
    Ok(match t {
        D::Boolean | D::Bool => SqlType::Boolean,
        D::TinyInt(_) => SqlType::Byte,
        D::SmallInt(_) | D::Int2(_) => SqlType::Short,
        D::Int(_) | D::Integer(_) | D::Int4(_) => SqlType::Int,
        D::BigInt(_) | D::Int8(_) => SqlType::Long,
        D::Float(_) | D::Real | D::Float4 => SqlType::Float,
        D::Double(_) | D::DoublePrecision | D::Float8 => SqlType::Double,
        D::Decimal(i) | D::Numeric(i) | D::Dec(i) => number_info(i)?,
        D::String(_) | D::Varchar(_) | D::Char(_) | D::Text | D::CharacterVarying(_) => SqlType::String,
        D::Binary(_) | D::Varbinary(_) | D::Bytes(_) => SqlType::Binary,
        D::Date => SqlType::Date,
        D::Timestamp(..) | D::Datetime(_) => SqlType::Timestamp,
        D::Custom(name, modifiers) if modifiers.is_empty() => {
            match name.to_string().to_ascii_lowercase().as_str() {
                "long" => SqlType::Long,
                "short" => SqlType::Short,
                "byte" => SqlType::Byte,
                "timestamp_ltz" => SqlType::Timestamp,
                other => return Err(unsupported(format!("the type `{other}`"))),
            }
        }
        other => return Err(unsupported(format!("the type `{other}`"))),
    })
}

fn binary(op: BinaryOp, l: Expr, r: Expr) -> Expr {
    Expr::Binary {
        op,
        left: Box::new(l),
        right: Box::new(r),
    }
}

fn function(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function {
        name: name.to_string(),
        args,
        distinct: false,
    }
}

/// A numeric literal, typed as Spark types it.
fn number(text: &str) -> Result<Literal, ExprError> {
    let bad = || parse_error(text, "not a number");
    let lower = text.to_ascii_lowercase();
    let (body, suffix) = match lower.find(|c: char| c.is_ascii_alphabetic() && c != 'e') {
        Some(i) => (&lower[..i], &lower[i..]),
        None => (lower.as_str(), ""),
    };
    match suffix {
        "l" => return body.parse().map(Literal::Long).map_err(|_| bad()),
        "s" => return body.parse().map(Literal::Short).map_err(|_| bad()),
        "y" => return body.parse().map(Literal::Byte).map_err(|_| bad()),
        "d" => return body.parse().map(Literal::Double).map_err(|_| bad()),
        "f" => return body.parse().map(Literal::Float).map_err(|_| bad()),
        "bd" => return decimal(body).ok_or_else(bad),
        "" => {}
        _ => return Err(bad()),
    }
    if body.contains('e') {
        return body.parse().map(Literal::Double).map_err(|_| bad());
    }
    if body.contains('.') {
        return decimal(body).ok_or_else(bad);
    }
    if let Ok(v) = body.parse::<i32>() {
        return Ok(Literal::Int(v));
    }
    if let Ok(v) = body.parse::<i64>() {
        return Ok(Literal::Long(v));
    }
    decimal(body).ok_or_else(bad)
}

/// `123.45` → decimal(5,2); precision at least the scale, at most 38.
fn decimal(text: &str) -> Option<Literal> {
    let (neg, text) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text),
    };
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let int = int.trim_start_matches('0');
    let digits = format!("{int}{frac}");
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let scale = frac.len();
    let precision = (int.len() + scale).max(scale).max(1);
    if precision > 38 {
        return None;
    }
    Some(Literal::Decimal {
        value: if neg { -value } else { value },
        precision: precision as u8,
        scale: scale as i8,
    })
}

fn negate_literal(l: Literal) -> Option<Literal> {
    Some(match l {
        Literal::Int(v) => Literal::Int(v.checked_neg()?),
        Literal::Long(v) => Literal::Long(v.checked_neg()?),
        Literal::Short(v) => Literal::Short(v.checked_neg()?),
        Literal::Byte(v) => Literal::Byte(v.checked_neg()?),
        Literal::Double(v) => Literal::Double(-v),
        Literal::Float(v) => Literal::Float(-v),
        Literal::Decimal {
            value,
            precision,
            scale,
        } => Literal::Decimal {
            value: -value,
            precision,
            scale,
        },
        _ => return None,
    })
}

fn string_value(v: &Value) -> Option<&str> {
    match v {
        Value::SingleQuotedString(s)
        | Value::DoubleQuotedString(s)
        | Value::EscapedStringLiteral(s)
        | Value::SingleQuotedRawStringLiteral(s)
        | Value::DoubleQuotedRawStringLiteral(s)
        | Value::TripleSingleQuotedString(s)
        | Value::TripleDoubleQuotedString(s)
        | Value::NationalStringLiteral(s) => Some(s),
        _ => None,
    }
}

fn value(v: &Value) -> Result<Literal, ExprError> {
    if let Some(s) = string_value(v) {
        return Ok(Literal::String(s.to_string()));
    }
    match v {
        Value::Number(n, long) => {
            if *long {
                n.parse()
                    .map(Literal::Long)
                    .map_err(|_| parse_error(n, "not a bigint"))
            } else {
                number(n)
            }
        }
        Value::Boolean(b) => Ok(Literal::Boolean(*b)),
        Value::Null => Ok(Literal::Null),
        other => Err(unsupported(format!("the literal `{other}`"))),
    }
}

/// `DATE'2024-01-02'` / `TIMESTAMP'2024-01-02 03:04:05'`.
fn typed_string(t: &ast::DataType, text: &str) -> Result<Literal, ExprError> {
    let bad = |what: &str| ExprError::Parse {
        text: text.to_string(),
        why: format!("[INVALID_TYPED_LITERAL] The value of the typed literal {what} is invalid: '{text}'"),
    };
    match convert_type(t)? {
        SqlType::Date => super::eval::parse_date(text)
            .map(Literal::Date)
            .ok_or_else(|| bad("DATE")),
        SqlType::Timestamp => super::eval::parse_timestamp(text)
            .map(Literal::Timestamp)
            .ok_or_else(|| bad("TIMESTAMP")),
        SqlType::String => Ok(Literal::String(text.to_string())),
        other => Err(unsupported(format!("a typed literal of type {other:?}"))),
    }
}

fn function_args(f: &ast::Function) -> Result<(Vec<Expr>, bool), ExprError> {
    if f.filter.is_some() || f.over.is_some() || !f.within_group.is_empty() {
        return Err(unsupported(format!("`{f}` (FILTER / OVER / WITHIN GROUP)")));
    }
    match &f.args {
        FunctionArguments::None => Ok((Vec::new(), false)),
        FunctionArguments::Subquery(_) => Err(unsupported("a subquery")),
        FunctionArguments::List(list) => {
            if !list.clauses.is_empty() {
                return Err(unsupported(format!("the clauses of `{f}`")));
            }
            let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
            let mut args = Vec::with_capacity(list.args.len());
            for a in &list.args {
                args.push(match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => convert(e)?,
                    FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => Expr::Star,
                    other => return Err(unsupported(format!("the argument `{other}`"))),
                });
            }
            Ok((args, distinct))
        }
    }
}

fn ident_path(idents: &[ast::Ident]) -> String {
    idents
        .iter()
        .map(|i| i.value.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

/// Maps sqlparser's AST onto [`Expr`].
fn convert(e: &ast::Expr) -> Result<Expr, ExprError> {
    use ast::Expr as E;
    let b = |e: &ast::Expr| convert(e).map(Box::new);
    Ok(match e {
        E::Identifier(i) => {
            let lower = i.value.to_ascii_lowercase();
            if i.quote_style.is_none() && matches!(lower.as_str(), "current_timestamp" | "current_date") {
                function(&lower, Vec::new())
            } else {
                Expr::Column(i.value.clone())
            }
        }
        E::CompoundIdentifier(idents) => Expr::Column(ident_path(idents)),
        E::CompoundFieldAccess { root, access_chain } => {
            let mut out = convert(root)?;
            for a in access_chain {
                let name = match a {
                    AccessExpr::Dot(E::Identifier(i)) => i.value.clone(),
                    AccessExpr::Dot(E::CompoundIdentifier(is)) => ident_path(is),
                    AccessExpr::Subscript(ast::Subscript::Index { index: E::Value(v) })
                        if string_value(&v.value).is_some() =>
                    {
                        string_value(&v.value).unwrap_or_default().to_string()
                    }
                    other => return Err(unsupported(format!("the access `{other}`"))),
                };
                out = match out {
                    Expr::Column(c) => Expr::Column(format!("{c}.{name}")),
                    other => Expr::Field {
                        expr: Box::new(other),
                        name,
                    },
                };
            }
            out
        }
        E::IsNull(x) => Expr::IsNull {
            expr: b(x)?,
            negated: false,
        },
        E::IsNotNull(x) => Expr::IsNull {
            expr: b(x)?,
            negated: true,
        },
        E::IsNotDistinctFrom(l, r) => binary(BinaryOp::NullSafeEq, convert(l)?, convert(r)?),
        E::IsDistinctFrom(l, r) => Expr::Unary {
            op: UnaryOp::Not,
            expr: Box::new(binary(BinaryOp::NullSafeEq, convert(l)?, convert(r)?)),
        },
        E::InList { expr, list, negated } => Expr::InList {
            expr: b(expr)?,
            list: list.iter().map(convert).collect::<Result<_, _>>()?,
            negated: *negated,
        },
        E::Between {
            expr,
            negated,
            low,
            high,
        } => Expr::Between {
            expr: b(expr)?,
            low: b(low)?,
            high: b(high)?,
            negated: *negated,
        },
        E::BinaryOp { left, op, right } => {
            let (l, r) = (convert(left)?, convert(right)?);
            let op = match op {
                BinaryOperator::Plus => BinaryOp::Plus,
                BinaryOperator::Minus => BinaryOp::Minus,
                BinaryOperator::Multiply => BinaryOp::Multiply,
                BinaryOperator::Divide => BinaryOp::Divide,
                BinaryOperator::Modulo => BinaryOp::Modulo,
                BinaryOperator::MyIntegerDivide | BinaryOperator::DuckIntegerDivide => BinaryOp::IntDivide,
                BinaryOperator::Gt => BinaryOp::Gt,
                BinaryOperator::Lt => BinaryOp::Lt,
                BinaryOperator::GtEq => BinaryOp::GtEq,
                BinaryOperator::LtEq => BinaryOp::LtEq,
                BinaryOperator::Eq => BinaryOp::Eq,
                BinaryOperator::NotEq => BinaryOp::NotEq,
                BinaryOperator::Spaceship => BinaryOp::NullSafeEq,
                BinaryOperator::And => BinaryOp::And,
                BinaryOperator::Or => BinaryOp::Or,
                BinaryOperator::StringConcat => return Ok(function("concat", vec![l, r])),
                other => return Err(unsupported(format!("the operator `{other}`"))),
            };
            binary(op, l, r)
        }
        E::Like {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        } => Expr::Like {
            expr: b(expr)?,
            pattern: b(pattern)?,
            kind: LikeKind::Like,
            negated: *negated,
        },
        E::ILike {
            negated,
            any: false,
            expr,
            pattern,
            escape_char: None,
        } => Expr::Like {
            expr: b(expr)?,
            pattern: b(pattern)?,
            kind: LikeKind::ILike,
            negated: *negated,
        },
        E::RLike {
            negated,
            expr,
            pattern,
            ..
        } => Expr::Like {
            expr: b(expr)?,
            pattern: b(pattern)?,
            kind: LikeKind::RLike,
            negated: *negated,
        },
        E::UnaryOp { op, expr } => match op {
            UnaryOperator::Not | UnaryOperator::BangNot => Expr::Unary {
                op: UnaryOp::Not,
                expr: b(expr)?,
            },
            UnaryOperator::Plus => convert(expr)?,
            UnaryOperator::Minus => match (expr.as_ref(), convert(expr)?) {
                // Spark's grammar makes the sign part of a number (`-2147483648` is an int).
                (
                    E::Value(ast::ValueWithSpan {
                        value: Value::Number(n, false),
                        ..
                    }),
                    _,
                ) => Expr::Literal(number(&format!("-{n}"))?),
                (_, x) => match x {
                    Expr::Literal(l) => match negate_literal(l.clone()) {
                        Some(n) => Expr::Literal(n),
                        None => Expr::Unary {
                            op: UnaryOp::Negate,
                            expr: Box::new(Expr::Literal(l)),
                        },
                    },
                    other => Expr::Unary {
                        op: UnaryOp::Negate,
                        expr: Box::new(other),
                    },
                },
            },
            other => return Err(unsupported(format!("the operator `{other}`"))),
        },
        E::Cast {
            expr,
            data_type,
            format: None,
            array: false,
            ..
        } => Expr::Cast {
            expr: b(expr)?,
            to: convert_type(data_type)?,
        },
        E::Ceil { expr, field } | E::Floor { expr, field } => {
            let name = if matches!(e, E::Ceil { .. }) {
                "ceil"
            } else {
                "floor"
            };
            let mut args = vec![convert(expr)?];
            match field {
                CeilFloorKind::Scale(v) => args.push(Expr::Literal(value(&v.value)?)),
                CeilFloorKind::DateTimeField(ast::DateTimeField::NoDateTime) => {}
                CeilFloorKind::DateTimeField(f) => return Err(unsupported(format!("{name}( … TO {f})"))),
            }
            function(name, args)
        }
        E::Substring {
            expr,
            substring_from,
            substring_for,
            shorthand,
            ..
        } => {
            let mut args = vec![convert(expr)?];
            if let Some(f) = substring_from {
                args.push(convert(f)?);
            }
            if let Some(f) = substring_for {
                args.push(convert(f)?);
            }
            function(if *shorthand { "substr" } else { "substring" }, args)
        }
        E::Trim {
            trim_where,
            trim_what,
            expr,
            trim_characters,
        } => {
            let name = match trim_where {
                None | Some(TrimWhereField::Both) => "trim",
                Some(TrimWhereField::Leading) => "ltrim",
                Some(TrimWhereField::Trailing) => "rtrim",
            };
            let mut args = vec![convert(expr)?];
            if let Some(w) = trim_what {
                args.push(convert(w)?);
            }
            if let Some(cs) = trim_characters {
                for c in cs {
                    args.push(convert(c)?);
                }
            }
            function(name, args)
        }
        E::Nested(x) => convert(x)?,
        E::Value(v) => Expr::Literal(value(&v.value)?),
        E::TypedString(ts) => match string_value(&ts.value.value) {
            Some(s) => Expr::Literal(typed_string(&ts.data_type, s)?),
            None => return Err(unsupported(format!("the literal `{e}`"))),
        },
        E::Function(f) => {
            let name = match f.name.0.last() {
                Some(ast::ObjectNamePart::Identifier(i)) if f.name.0.len() == 1 => {
                    i.value.to_ascii_lowercase()
                }
                _ => return Err(unsupported(format!("the function name `{}`", f.name))),
            };
            let (args, distinct) = function_args(f)?;
            Expr::Function { name, args, distinct }
        }
        E::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            if conditions.is_empty() {
                return Err(parse_error(&e.to_string(), "CASE without WHEN"));
            }
            Expr::Case {
                operand: operand.as_deref().map(convert).transpose()?.map(Box::new),
                branches: conditions
                    .iter()
                    .map(|w| Ok((convert(&w.condition)?, convert(&w.result)?)))
                    .collect::<Result<_, ExprError>>()?,
                otherwise: else_result.as_deref().map(convert).transpose()?.map(Box::new),
            }
        }
        E::Struct { values, fields } if fields.is_empty() => {
            function("struct", values.iter().map(convert).collect::<Result<_, _>>()?)
        }
        E::Named { expr, name } => Expr::Alias {
            expr: b(expr)?,
            name: name.value.clone(),
        },
        other => return Err(unsupported(format!("the expression `{other}`"))),
    })
}
