//! The function registry: each scalar function's arity, argument coercion and result type
//! (resolution), and its evaluation on Arrow arrays. Aggregates are listed so the analyzer can
//! tell them apart; the aggregation operator evaluates them.

use std::sync::Arc;

use chrono::format::{Parsed, StrftimeItems};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use deltalake::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array,
    Int64Array, StringArray, TimestampMicrosecondArray,
};
use deltalake::arrow::compute::kernels::{boolean, temporal, zip::zip};
use deltalake::arrow::compute::{DatePart, nullif};
use deltalake::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimestampMicrosecondType,
};

use super::eval::Node;
use super::eval::{
    cast_array, datetime, div_half_up, double_to_decimal, eval_error, micros, pow10, repeat, true_mask,
};
use super::resolve::{Resolver, cast_to, mismatch, physical, quoted, struct_fields};
use super::types::{self, is_integral, is_numeric, is_string, wider_all};
use super::{EvalContext, Expr, ExprError, Literal, PhysicalExpr};

/// Aggregate functions, sorted.
pub const AGGREGATES: &[&str] = &[
    "approx_count_distinct",
    "avg",
    "collect_list",
    "collect_set",
    "count",
    "first",
    "last",
    "max",
    "mean",
    "min",
    "sum",
];

const MANY: usize = usize::MAX;

/// Scalar functions: (name, fewest arguments, most arguments), sorted by name.
const SCALARS: &[(&str, usize, usize)] = &[
    ("abs", 1, 1),
    ("ceil", 1, 1),
    ("ceiling", 1, 1),
    ("char_length", 1, 1),
    ("coalesce", 1, MANY),
    ("concat", 0, MANY),
    ("concat_ws", 1, MANY),
    ("current_date", 0, 0),
    ("current_timestamp", 0, 0),
    ("date_add", 2, 2),
    ("date_format", 2, 2),
    ("date_sub", 2, 2),
    ("date_trunc", 2, 2),
    ("datediff", 2, 2),
    ("day", 1, 1),
    ("dayofmonth", 1, 1),
    ("floor", 1, 1),
    ("from_unixtime", 1, 2),
    ("hour", 1, 1),
    ("if", 3, 3),
    ("ifnull", 2, 2),
    ("isnan", 1, 1),
    ("isnotnull", 1, 1),
    ("isnull", 1, 1),
    ("lcase", 1, 1),
    ("length", 1, 1),
    ("lower", 1, 1),
    ("ltrim", 1, 2),
    ("minute", 1, 1),
    ("month", 1, 1),
    ("named_struct", 2, MANY),
    ("now", 0, 0),
    ("nullif", 2, 2),
    ("nvl", 2, 2),
    ("pow", 2, 2),
    ("power", 2, 2),
    ("regexp_extract", 2, 3),
    ("regexp_replace", 3, 4),
    ("rlike", 2, 2),
    ("round", 1, 2),
    ("rtrim", 1, 2),
    ("second", 1, 1),
    ("sqrt", 1, 1),
    ("struct", 1, MANY),
    ("substr", 2, 3),
    ("substring", 2, 3),
    ("timestamp_seconds", 1, 1),
    ("to_date", 1, 2),
    ("to_timestamp", 1, 2),
    ("trim", 1, 2),
    ("ucase", 1, 1),
    ("unix_timestamp", 0, 2),
    ("upper", 1, 1),
    ("year", 1, 1),
];

/// Every function name microbatch knows (scalars and aggregates), sorted.
pub fn function_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = SCALARS
        .iter()
        .map(|(n, ..)| *n)
        .chain(AGGREGATES.iter().copied())
        .collect();
    v.push("window");
    v.sort_unstable();
    v
}

/// A resolved scalar function.
#[derive(Debug, Clone)]
pub enum Func {
    /// upper
    Upper,
    /// lower
    Lower,
    /// concat
    Concat,
    /// concat_ws
    ConcatWs,
    /// substring
    Substring,
    /// length
    Length,
    /// trim / ltrim / rtrim (left, right)
    Trim(bool, bool),
    /// regexp_extract (the pattern, the group)
    RegexpExtract(Box<regex::Regex>, usize),
    /// regexp_replace (the pattern, the replacement in Rust's syntax)
    RegexpReplace(Box<regex::Regex>, String),
    /// abs
    Abs,
    /// round (HALF_UP) to a scale
    Round(i32),
    /// floor
    Floor,
    /// ceil
    Ceil,
    /// sqrt
    Sqrt,
    /// pow
    Pow,
    /// isnan
    IsNan,
    /// to_date with a chrono format (None: cast)
    ToDate(Option<String>),
    /// to_timestamp with a chrono format (None: cast)
    ToTimestamp(Option<String>),
    /// date_trunc
    DateTrunc(Trunc),
    /// date_add (+1) / date_sub (-1)
    DateAdd(i32),
    /// datediff(end, start)
    DateDiff,
    /// date_format with a chrono format
    DateFormat(String),
    /// year, month, day, hour, minute, second
    Part(DatePart),
    /// unix_timestamp of a timestamp, a date or a string in a chrono format
    UnixTimestamp(String),
    /// from_unixtime with a chrono format
    FromUnixtime(String),
    /// current_timestamp / now
    CurrentTimestamp,
    /// current_date
    CurrentDate,
    /// struct / named_struct
    Struct(deltalake::arrow::datatypes::Fields),
    /// coalesce
    Coalesce,
    /// if(cond, a, b)
    If,
    /// nullif(a, b)
    NullIf,
}

/// A unit of `date_trunc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trunc {
    /// YEAR
    Year,
    /// QUARTER
    Quarter,
    /// MONTH
    Month,
    /// WEEK (to Monday)
    Week,
    /// DAY
    Day,
    /// HOUR
    Hour,
    /// MINUTE
    Minute,
    /// SECOND
    Second,
    /// MILLISECOND
    Millisecond,
    /// MICROSECOND
    Microsecond,
}

/// Compiles a (Java) regular expression; an invalid one is Spark's error.
pub fn regex(pattern: &str, e: &Expr) -> Result<regex::Regex, ExprError> {
    regex::Regex::new(pattern).map_err(|err| ExprError::TypeMismatch {
        class: "INVALID_PARAMETER_VALUE.PATTERN".into(),
        expr: super::names::sql(e),
        why: format!("the regular expression '{pattern}' is invalid: {err}"),
    })
}

fn literal_string(e: &Expr) -> Option<&str> {
    match e {
        Expr::Literal(Literal::String(s)) => Some(s),
        Expr::Alias { expr, .. } => literal_string(expr),
        _ => None,
    }
}

fn literal_int(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(Literal::Int(v)) => Some(*v as i64),
        Expr::Literal(Literal::Long(v)) => Some(*v),
        Expr::Literal(Literal::Short(v)) => Some(*v as i64),
        Expr::Literal(Literal::Byte(v)) => Some(*v as i64),
        _ => None,
    }
}

fn needs_constant(e: &Expr, what: &str) -> ExprError {
    mismatch(
        "NON_FOLDABLE_INPUT",
        e,
        format!("the input {what} should be a foldable (constant) expression"),
    )
}

/// Spark's datetime pattern (`yyyy-MM-dd HH:mm:ss`) as a chrono format string.
pub fn chrono_format(pattern: &str, e: &Expr) -> Result<String, ExprError> {
    let bad = |c: char| {
        mismatch(
            "INVALID_DATETIME_PATTERN",
            e,
            format!("the datetime pattern '{pattern}' has the unsupported letter '{c}'"),
        )
    };
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // quoted text; '' is a quote
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '%' {
                    out.push_str("%%");
                } else {
                    out.push(chars[i]);
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        i += n;
        let f = match (c, n) {
            ('y' | 'u', 2) => "%y",
            ('y' | 'u', _) => "%Y",
            ('M' | 'L', 1) => "%-m",
            ('M' | 'L', 2) => "%m",
            ('M' | 'L', 3) => "%b",
            ('M' | 'L', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('D', 1) => "%-j",
            ('D', _) => "%j",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('h', 1) => "%-I",
            ('h', _) => "%I",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', 1..=3) => "%3f",
            ('S', 4..=6) => "%6f",
            ('S', _) => "%9f",
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('z', _) => "%Z",
            ('Z' | 'x', _) => "%z",
            ('X', _) => "%:z",
            (c, _) if c.is_ascii_alphabetic() => return Err(bad(c)),
            ('%', _) => {
                out.push_str(&"%%".repeat(n));
                continue;
            }
            (c, _) => {
                out.extend(std::iter::repeat_n(c, n));
                continue;
            }
        };
        out.push_str(f);
    }
    Ok(out)
}

/// Parses `s` with a chrono format; missing fields default as Spark's (1970-01-01 00:00:00).
fn parse_with(format: &str, s: &str) -> Option<NaiveDateTime> {
    let mut p = Parsed::new();
    chrono::format::parse(&mut p, s, StrftimeItems::new(format)).ok()?;
    if p.year().is_none() && p.year_mod_100().is_none() {
        p.set_year(1970).ok()?;
    }
    if p.month().is_none() && p.ordinal().is_none() {
        p.set_month(1).ok()?;
    }
    if p.day().is_none() && p.ordinal().is_none() {
        p.set_day(1).ok()?;
    }
    let date = p.to_naive_date().ok()?;
    let h = match (p.hour_div_12(), p.hour_mod_12()) {
        (Some(d), Some(m)) => d * 12 + m,
        (None, Some(m)) => m,
        _ => 0,
    };
    let time = NaiveTime::from_hms_nano_opt(
        h,
        p.minute().unwrap_or(0),
        p.second().unwrap_or(0),
        p.nanosecond().unwrap_or(0),
    )?;
    let dt = date.and_time(time);
    Some(match p.offset() {
        Some(o) => dt.checked_sub_signed(chrono::Duration::seconds(o as i64))?,
        None => dt,
    })
}

fn format_us(format: &str, us: i64) -> Option<String> {
    use std::fmt::Write;
    let d = datetime(us)?;
    let mut s = String::new();
    write!(s, "{}", d.format(format)).ok()?;
    Some(s)
}

const DEFAULT_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

fn arity(name: &str, min: usize, max: usize, actual: usize) -> Result<(), ExprError> {
    if (min..=max).contains(&actual) {
        return Ok(());
    }
    let expected = if min == max {
        min.to_string()
    } else if max == MANY {
        format!("> {}", min.saturating_sub(1))
    } else {
        format!(
            "[{}]",
            (min..=max).map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
        )
    };
    Err(ExprError::WrongArgs {
        name: format!("`{name}`"),
        expected,
        actual,
    })
}

fn call(f: Func, args: Vec<PhysicalExpr>, t: DataType) -> PhysicalExpr {
    physical(Node::Call(f, args), t, true)
}

/// Resolves a function call.
pub(super) fn resolve(
    r: &Resolver<'_>,
    e: &Expr,
    name: &str,
    args: &[Expr],
    distinct: bool,
) -> Result<PhysicalExpr, ExprError> {
    if super::is_aggregate_function(name) {
        return Err(ExprError::NotAllowed(format!(
            "the aggregate function `{}` is computed by an aggregation (groupBy(...).agg(...)), not in a row expression",
            super::names::sql(e)
        )));
    }
    if name == "window" {
        return Err(ExprError::NotAllowed(
            "window(...) is a grouping key: it is allowed in groupBy(...) only".into(),
        ));
    }
    let Some((_, min, max)) = SCALARS.iter().find(|(n, ..)| *n == name) else {
        let mut close: Vec<(usize, &str)> = function_names()
            .into_iter()
            .map(|n| (super::resolve::distance(name, n), n))
            .filter(|(d, _)| *d <= 2)
            .collect();
        close.sort();
        return Err(ExprError::UnknownFunction {
            name: name.to_string(),
            suggestion: close.into_iter().take(3).map(|(_, n)| format!("`{n}`")).collect(),
        });
    };
    arity(name, *min, *max, args.len())?;
    if distinct {
        return Err(ExprError::NotAllowed(format!(
            "[INVALID_DISTINCT] DISTINCT is specified for `{name}`, which is not an aggregate function"
        )));
    }
    // Arguments that name struct fields are not values.
    if name == "named_struct" {
        return named_struct(r, e, args);
    }
    let mut a = args.iter().map(|x| r.expr(x)).collect::<Result<Vec<_>, _>>()?;
    let str_args = |a: Vec<PhysicalExpr>| -> Result<Vec<PhysicalExpr>, ExprError> {
        a.into_iter()
            .enumerate()
            .map(|(i, x)| r.string_arg(x, e, i + 1))
            .collect()
    };
    let numeric = |x: PhysicalExpr, i: usize| -> Result<PhysicalExpr, ExprError> {
        match &x.data_type {
            t if is_numeric(t) => Ok(x),
            t if is_string(t) || t == &DataType::Null => Ok(cast_to(x, &DataType::Float64)),
            t => Err(mismatch(
                "UNEXPECTED_INPUT_TYPE",
                e,
                format!(
                    "Parameter {i} requires the \"NUMERIC\" type, however \"{}\" has the type {}",
                    super::names::sql(&args[i - 1]),
                    quoted(t)
                ),
            )),
        }
    };
    let int_arg = |x: PhysicalExpr, i: usize| -> Result<PhysicalExpr, ExprError> {
        match &x.data_type {
            t if is_integral(t) || is_string(t) || t == &DataType::Null => Ok(cast_to(x, &DataType::Int32)),
            t => Err(mismatch(
                "UNEXPECTED_INPUT_TYPE",
                e,
                format!(
                    "Parameter {i} requires the \"INT\" type, however it has the type {}",
                    quoted(t)
                ),
            )),
        }
    };
    let timestamp_arg = |x: PhysicalExpr| -> Result<PhysicalExpr, ExprError> {
        match &x.data_type {
            t if is_string(t) || matches!(t, DataType::Date32 | DataType::Timestamp(..) | DataType::Null) => {
                Ok(cast_to(x, &types::timestamp()))
            }
            t => Err(mismatch(
                "UNEXPECTED_INPUT_TYPE",
                e,
                format!(
                    "Parameter 1 requires the \"TIMESTAMP\" type, however it has the type {}",
                    quoted(t)
                ),
            )),
        }
    };
    let date_arg = |x: PhysicalExpr| -> Result<PhysicalExpr, ExprError> {
        match &x.data_type {
            t if is_string(t) || matches!(t, DataType::Date32 | DataType::Timestamp(..) | DataType::Null) => {
                Ok(cast_to(x, &DataType::Date32))
            }
            t => Err(mismatch(
                "UNEXPECTED_INPUT_TYPE",
                e,
                format!(
                    "Parameter 1 requires the \"DATE\" type, however it has the type {}",
                    quoted(t)
                ),
            )),
        }
    };
    let format_arg = |i: usize| -> Result<Option<String>, ExprError> {
        match args.get(i) {
            None => Ok(None),
            Some(x) => match literal_string(x) {
                Some(f) => chrono_format(f, e).map(Some),
                None => Err(needs_constant(e, "format")),
            },
        }
    };
    let regex_arg = |i: usize| -> Result<regex::Regex, ExprError> {
        match literal_string(&args[i]) {
            Some(p) => regex(p, e),
            None => Err(ExprError::Unsupported(format!(
                "`{}` with a pattern that is not a constant string",
                super::names::sql(e)
            ))),
        }
    };
    let first = |a: &mut Vec<PhysicalExpr>| a.remove(0);
    Ok(match name {
        "upper" | "ucase" => call(Func::Upper, str_args(a)?, DataType::Utf8),
        "lower" | "lcase" => call(Func::Lower, str_args(a)?, DataType::Utf8),
        "concat" => call(Func::Concat, str_args(a)?, DataType::Utf8),
        "concat_ws" => call(Func::ConcatWs, str_args(a)?, DataType::Utf8),
        "length" | "char_length" => call(Func::Length, str_args(a)?, DataType::Int32),
        "trim" | "ltrim" | "rtrim" => {
            let f = Func::Trim(name != "rtrim", name != "ltrim");
            call(f, str_args(a)?, DataType::Utf8)
        }
        "substring" | "substr" => {
            let mut it = a.into_iter();
            let s = r.string_arg(it.next().expect("arity"), e, 1)?;
            let mut v = vec![s];
            for (i, x) in it.enumerate() {
                v.push(int_arg(x, i + 2)?);
            }
            call(Func::Substring, v, DataType::Utf8)
        }
        "regexp_extract" => {
            let re = regex_arg(1)?;
            let idx = match args.get(2) {
                None => 1,
                Some(x) => literal_int(x).ok_or_else(|| needs_constant(e, "group index"))?,
            };
            let groups = re.captures_len() - 1;
            if idx < 0 || idx as usize > groups {
                return Err(ExprError::TypeMismatch {
                    class: "INVALID_PARAMETER_VALUE.REGEX_GROUP_INDEX".into(),
                    expr: super::names::sql(e),
                    why: format!("expects group index between 0 and {groups}, but got {idx}"),
                });
            }
            let s = r.string_arg(first(&mut a), e, 1)?;
            call(
                Func::RegexpExtract(Box::new(re), idx as usize),
                vec![s],
                DataType::Utf8,
            )
        }
        "regexp_replace" => {
            let re = regex_arg(1)?;
            let rep = literal_string(&args[2]).ok_or_else(|| needs_constant(e, "replacement"))?;
            if args.len() == 4 && literal_int(&args[3]) != Some(1) {
                return Err(ExprError::Unsupported(
                    "regexp_replace with a position other than 1".into(),
                ));
            }
            let s = r.string_arg(first(&mut a), e, 1)?;
            call(
                Func::RegexpReplace(Box::new(re), java_replacement(rep)),
                vec![s],
                DataType::Utf8,
            )
        }
        "rlike" => {
            let re = regex_arg(1)?;
            let s = r.string_arg(first(&mut a), e, 1)?;
            physical(Node::RLike(Box::new(s), Box::new(re)), DataType::Boolean, true)
        }
        "abs" => {
            let x = numeric(first(&mut a), 1)?;
            let t = x.data_type.clone();
            call(Func::Abs, vec![x], t)
        }
        "round" => {
            let scale = match args.get(1) {
                None => 0,
                Some(x) => literal_int(x)
                    .ok_or_else(|| needs_constant(e, "scale"))?
                    .clamp(-64, 64) as i32,
            };
            let x = numeric(first(&mut a), 1)?;
            let t = match &x.data_type {
                DataType::Decimal128(p, s) => {
                    let (p, s) = (*p as i32, *s as i32);
                    let int_digits = p - s + 1;
                    if scale < 0 {
                        DataType::Decimal128(int_digits.max(-scale + 1).min(38) as u8, 0)
                    } else {
                        let ns = s.min(scale);
                        DataType::Decimal128((int_digits + ns).min(38) as u8, ns as i8)
                    }
                }
                t => t.clone(),
            };
            call(Func::Round(scale), vec![x], t)
        }
        "floor" | "ceil" | "ceiling" => {
            let x = numeric(first(&mut a), 1)?;
            let t = match &x.data_type {
                DataType::Decimal128(p, s) => {
                    DataType::Decimal128((*p as i32 - *s as i32 + 1).clamp(1, 38) as u8, 0)
                }
                _ => DataType::Int64,
            };
            call(if name == "floor" { Func::Floor } else { Func::Ceil }, vec![x], t)
        }
        "sqrt" => {
            let x = cast_to(numeric(first(&mut a), 1)?, &DataType::Float64);
            call(Func::Sqrt, vec![x], DataType::Float64)
        }
        "pow" | "power" => {
            let y = cast_to(numeric(a.remove(1), 2)?, &DataType::Float64);
            let x = cast_to(numeric(first(&mut a), 1)?, &DataType::Float64);
            call(Func::Pow, vec![x, y], DataType::Float64)
        }
        "isnan" => {
            let x = cast_to(numeric(first(&mut a), 1)?, &DataType::Float64);
            physical(Node::Call(Func::IsNan, vec![x]), DataType::Boolean, false)
        }
        "to_date" => {
            let f = format_arg(1)?;
            let x = first(&mut a);
            match (&f, &x.data_type) {
                (Some(_), t) if is_string(t) => call(Func::ToDate(f), vec![x], DataType::Date32),
                _ => call(Func::ToDate(None), vec![date_arg(x)?], DataType::Date32),
            }
        }
        "to_timestamp" => {
            let f = format_arg(1)?;
            let x = first(&mut a);
            match (&f, &x.data_type) {
                (Some(_), t) if is_string(t) => call(Func::ToTimestamp(f), vec![x], types::timestamp()),
                _ => call(
                    Func::ToTimestamp(None),
                    vec![timestamp_arg(x)?],
                    types::timestamp(),
                ),
            }
        }
        "date_trunc" => {
            let unit = literal_string(&args[0]).ok_or_else(|| needs_constant(e, "unit"))?;
            let t = match unit.to_ascii_uppercase().as_str() {
                "YEAR" | "YYYY" | "YY" => Trunc::Year,
                "QUARTER" => Trunc::Quarter,
                "MONTH" | "MM" | "MON" => Trunc::Month,
                "WEEK" => Trunc::Week,
                "DAY" | "DD" => Trunc::Day,
                "HOUR" => Trunc::Hour,
                "MINUTE" => Trunc::Minute,
                "SECOND" => Trunc::Second,
                "MILLISECOND" => Trunc::Millisecond,
                "MICROSECOND" => Trunc::Microsecond,
                // Spark: an unknown unit gives NULL
                _ => {
                    return Ok(super::resolve::literal(&Literal::Null))
                        .map(|p| cast_to(p, &types::timestamp()));
                }
            };
            let x = timestamp_arg(a.remove(1))?;
            call(Func::DateTrunc(t), vec![x], types::timestamp())
        }
        "date_add" | "date_sub" => {
            let days = match &a[1].data_type {
                t if is_integral(t) || is_string(t) || t == &DataType::Null => {
                    cast_to(a.remove(1), &DataType::Int32)
                }
                t => {
                    return Err(mismatch(
                        "UNEXPECTED_INPUT_TYPE",
                        e,
                        format!(
                            "Parameter 2 requires the (\"INT\" or \"SMALLINT\" or \"TINYINT\") type, however \"{}\" has the type {}",
                            super::names::sql(&args[1]),
                            quoted(t)
                        ),
                    ));
                }
            };
            let d = date_arg(first(&mut a))?;
            let sign = if name == "date_add" { 1 } else { -1 };
            call(Func::DateAdd(sign), vec![d, days], DataType::Date32)
        }
        "datediff" => {
            let start = date_arg(a.remove(1))?;
            let end = date_arg(first(&mut a))?;
            call(Func::DateDiff, vec![end, start], DataType::Int32)
        }
        "date_format" => {
            let f = format_arg(1)?.unwrap_or_default();
            let x = timestamp_arg(first(&mut a))?;
            call(Func::DateFormat(f), vec![x], DataType::Utf8)
        }
        "year" | "month" | "day" | "dayofmonth" => {
            let part = match name {
                "year" => DatePart::Year,
                "month" => DatePart::Month,
                _ => DatePart::Day,
            };
            call(Func::Part(part), vec![date_arg(first(&mut a))?], DataType::Int32)
        }
        "hour" | "minute" | "second" => {
            let part = match name {
                "hour" => DatePart::Hour,
                "minute" => DatePart::Minute,
                _ => DatePart::Second,
            };
            call(
                Func::Part(part),
                vec![timestamp_arg(first(&mut a))?],
                DataType::Int32,
            )
        }
        "unix_timestamp" => {
            let f = format_arg(1)?.unwrap_or_else(|| DEFAULT_FORMAT.to_string());
            let x = match a.into_iter().next() {
                None => physical(
                    Node::Call(Func::CurrentTimestamp, vec![]),
                    types::timestamp(),
                    false,
                ),
                Some(x) if is_string(&x.data_type) => cast_to(x, &DataType::Utf8),
                Some(x) => timestamp_arg(x)?,
            };
            call(Func::UnixTimestamp(f), vec![x], DataType::Int64)
        }
        "from_unixtime" => {
            let f = format_arg(1)?.unwrap_or_else(|| DEFAULT_FORMAT.to_string());
            let x = cast_to(numeric(first(&mut a), 1)?, &DataType::Int64);
            call(Func::FromUnixtime(f), vec![x], DataType::Utf8)
        }
        // Seconds since the epoch (fractions kept) as a timestamp: Spark's cast of a number.
        "timestamp_seconds" => cast_to(numeric(first(&mut a), 1)?, &types::timestamp()),
        "current_timestamp" | "now" => physical(
            Node::Call(Func::CurrentTimestamp, vec![]),
            types::timestamp(),
            false,
        ),
        "current_date" => physical(Node::Call(Func::CurrentDate, vec![]), DataType::Date32, false),
        "struct" => {
            let names: Vec<String> = args
                .iter()
                .enumerate()
                .map(|(i, x)| match x {
                    Expr::Column(c) => c.rsplit('.').next().unwrap_or(c).to_string(),
                    Expr::Alias { name, .. } => name.clone(),
                    _ => format!("col{}", i + 1),
                })
                .collect();
            let fields = struct_fields(&names.into_iter().zip(a.iter()).collect::<Vec<_>>());
            physical(
                Node::Call(Func::Struct(fields.clone()), a),
                DataType::Struct(fields),
                false,
            )
        }
        "coalesce" | "nvl" | "ifnull" => {
            let t = common(e, name, &a)?;
            let nullable = a.iter().all(|x| x.nullable);
            let a: Vec<PhysicalExpr> = a.into_iter().map(|x| cast_to(x, &t)).collect();
            physical(Node::Call(Func::Coalesce, a), t, nullable)
        }
        "nullif" => {
            let t = types::comparison(&a[0].data_type, &a[1].data_type).ok_or_else(|| {
                mismatch(
                    "DATA_DIFF_TYPES",
                    e,
                    "the two arguments of nullif cannot be compared",
                )
            })?;
            let out = a[0].data_type.clone();
            let a: Vec<PhysicalExpr> = a.into_iter().map(|x| cast_to(x, &t)).collect();
            let mut p = call(Func::NullIf, a, t);
            if out != DataType::Null {
                p = cast_to(p, &out);
            }
            p
        }
        "if" => {
            let c = first(&mut a);
            if !matches!(c.data_type, DataType::Boolean | DataType::Null) {
                return Err(mismatch(
                    "UNEXPECTED_INPUT_TYPE",
                    e,
                    format!(
                        "Parameter 1 requires the \"BOOLEAN\" type, however it has the type {}",
                        quoted(&c.data_type)
                    ),
                ));
            }
            let c = cast_to(c, &DataType::Boolean);
            let t = common(e, name, &a)?;
            let mut v = vec![c];
            v.extend(a.into_iter().map(|x| cast_to(x, &t)));
            call(Func::If, v, t)
        }
        "isnull" | "isnotnull" => physical(
            Node::IsNull(Box::new(first(&mut a)), name == "isnotnull"),
            DataType::Boolean,
            false,
        ),
        other => return Err(ExprError::Unsupported(format!("the function `{other}`"))),
    })
}

fn common(e: &Expr, name: &str, a: &[PhysicalExpr]) -> Result<DataType, ExprError> {
    wider_all(a.iter().map(|x| &x.data_type)).ok_or_else(|| {
        mismatch(
            "DATA_DIFF_TYPES",
            e,
            format!(
                "Input to `{name}` should all be the same type, but it's [{}]",
                a.iter()
                    .map(|x| types::spark_type_name(&x.data_type))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

fn named_struct(r: &Resolver<'_>, e: &Expr, args: &[Expr]) -> Result<PhysicalExpr, ExprError> {
    if !args.len().is_multiple_of(2) {
        return Err(ExprError::WrongArgs {
            name: "`named_struct`".into(),
            expected: "2n (n > 0)".into(),
            actual: args.len(),
        });
    }
    let mut items = Vec::new();
    for pair in args.chunks(2) {
        let Some(n) = literal_string(&pair[0]) else {
            return Err(mismatch(
                "CREATE_NAMED_STRUCT_WITHOUT_FOLDABLE_STRING",
                e,
                "Only foldable `STRING` expressions are allowed to appear at odd position",
            ));
        };
        items.push((n.to_string(), r.expr(&pair[1])?));
    }
    let fields = struct_fields(&items.iter().map(|(n, p)| (n.clone(), p)).collect::<Vec<_>>());
    let values = items.into_iter().map(|(_, p)| p).collect();
    Ok(physical(
        Node::Call(Func::Struct(fields.clone()), values),
        DataType::Struct(fields),
        false,
    ))
}

/// Java's replacement syntax (`$1`, `\$`) in Rust's (`${1}`, `$$`).
fn java_replacement(rep: &str) -> String {
    let mut out = String::new();
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(x) => out.push(x),
                None => {}
            },
            '$' => {
                let mut n = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(*d);
                    chars.next();
                }
                if n.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{n}}}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn strings(a: &ArrayRef) -> &StringArray {
    a.as_string::<i32>()
}

fn map_strings(a: &ArrayRef, f: impl Fn(&str) -> String) -> ArrayRef {
    Arc::new(strings(a).iter().map(|v| v.map(&f)).collect::<StringArray>())
}

/// Spark's `UTF8String.substringSQL`: 1-based, 0 as 1, negative from the end.
fn substring_sql(s: &str, pos: i32, len: i32) -> String {
    let n = s.chars().count() as i64;
    let pos = pos as i64;
    let start = if pos > 0 {
        pos - 1
    } else if pos < 0 {
        n + pos
    } else {
        0
    };
    let end = (start + len as i64).min(n);
    let start = start.max(0);
    if start >= end {
        return String::new();
    }
    s.chars()
        .skip(start as usize)
        .take((end - start) as usize)
        .collect()
}

/// `v` (a double) rounded half up to `scale` digits, through its decimal text (Spark's
/// `BigDecimal(v).setScale(scale, HALF_UP)`).
fn round_double(v: f64, scale: i32) -> f64 {
    if !v.is_finite() {
        return v;
    }
    match double_to_decimal(v, scale.max(0)) {
        Some(d) if scale >= 0 => d as f64 / 10f64.powi(scale),
        _ => {
            let f = 10f64.powi(-scale);
            ((v / f).abs() + 0.5).floor() * f * v.signum()
        }
    }
}

fn round_int(v: i64, scale: i32) -> i64 {
    if scale >= 0 {
        return v;
    }
    match pow10(-scale) {
        Some(f) => div_half_up(v as i128, f).wrapping_mul(f) as i64,
        None => 0,
    }
}

fn truncate(us: i64, unit: Trunc) -> Option<i64> {
    let d = datetime(us)?;
    let date = d.date();
    let day = |d: NaiveDate| Some(micros(d.and_time(NaiveTime::MIN)));
    let sec = us.div_euclid(1_000_000) * 1_000_000;
    match unit {
        Trunc::Year => day(NaiveDate::from_ymd_opt(date.year(), 1, 1)?),
        Trunc::Quarter => day(NaiveDate::from_ymd_opt(
            date.year(),
            (date.month() - 1) / 3 * 3 + 1,
            1,
        )?),
        Trunc::Month => day(NaiveDate::from_ymd_opt(date.year(), date.month(), 1)?),
        Trunc::Week => day(date.checked_sub_signed(chrono::Duration::days(
            date.weekday().num_days_from_monday() as i64,
        ))?),
        Trunc::Day => day(date),
        Trunc::Hour => Some(micros(date.and_hms_opt(d.hour(), 0, 0)?)),
        Trunc::Minute => Some(micros(date.and_hms_opt(d.hour(), d.minute(), 0)?)),
        Trunc::Second => Some(sec),
        Trunc::Millisecond => Some(us.div_euclid(1000) * 1000),
        Trunc::Microsecond => Some(us),
    }
}

fn ts_array(v: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(v.collect::<TimestampMicrosecondArray>().with_timezone("UTC"))
}

fn err(e: deltalake::arrow::error::ArrowError) -> ExprError {
    eval_error(e, "a function")
}

/// Evaluates a function on its evaluated arguments (`n` rows).
pub(super) fn evaluate(
    f: &Func,
    a: &[ArrayRef],
    n: usize,
    ctx: &EvalContext,
    out: &DataType,
) -> Result<ArrayRef, ExprError> {
    let batch_us = ctx.batch_timestamp_ms.saturating_mul(1000);
    Ok(match f {
        Func::Upper => map_strings(&a[0], |s| s.to_uppercase()),
        Func::Lower => map_strings(&a[0], |s| s.to_lowercase()),
        Func::Length => Arc::new(
            strings(&a[0])
                .iter()
                .map(|v| v.map(|s| s.chars().count() as i32))
                .collect::<Int32Array>(),
        ),
        Func::Concat => {
            let cols: Vec<&StringArray> = a.iter().map(strings).collect();
            Arc::new(
                (0..n)
                    .map(|i| {
                        let mut s = String::new();
                        for c in &cols {
                            if c.is_null(i) {
                                return None;
                            }
                            s.push_str(c.value(i));
                        }
                        Some(s)
                    })
                    .collect::<StringArray>(),
            )
        }
        Func::ConcatWs => {
            let sep = strings(&a[0]);
            let cols: Vec<&StringArray> = a[1..].iter().map(strings).collect();
            Arc::new(
                (0..n)
                    .map(|i| {
                        if sep.is_null(i) {
                            return None;
                        }
                        let parts: Vec<&str> = cols
                            .iter()
                            .filter(|c| !c.is_null(i))
                            .map(|c| c.value(i))
                            .collect();
                        Some(parts.join(sep.value(i)))
                    })
                    .collect::<StringArray>(),
            )
        }
        Func::Substring => {
            let s = strings(&a[0]);
            let pos = a[1].as_primitive::<Int32Type>();
            let len = a.get(2).map(|l| l.as_primitive::<Int32Type>());
            Arc::new(
                (0..n)
                    .map(|i| {
                        if s.is_null(i) || pos.is_null(i) || len.is_some_and(|l| l.is_null(i)) {
                            return None;
                        }
                        let l = len.map_or(i32::MAX, |l| l.value(i));
                        Some(substring_sql(s.value(i), pos.value(i), l))
                    })
                    .collect::<StringArray>(),
            )
        }
        Func::Trim(left, right) => {
            let s = strings(&a[0]);
            let chars = a.get(1).map(strings);
            Arc::new(
                (0..n)
                    .map(|i| {
                        if s.is_null(i) || chars.is_some_and(|c| c.is_null(i)) {
                            return None;
                        }
                        let set: Vec<char> = chars.map_or(vec![' '], |c| c.value(i).chars().collect());
                        let mut v = s.value(i);
                        if *left {
                            v = v.trim_start_matches(|c| set.contains(&c));
                        }
                        if *right {
                            v = v.trim_end_matches(|c| set.contains(&c));
                        }
                        Some(v.to_string())
                    })
                    .collect::<StringArray>(),
            )
        }
        Func::RegexpExtract(re, idx) => map_strings(&a[0], |s| {
            re.captures(s)
                .and_then(|c| c.get(*idx).map(|m| m.as_str().to_string()))
                .unwrap_or_default()
        }),
        Func::RegexpReplace(re, rep) => map_strings(&a[0], |s| re.replace_all(s, rep.as_str()).into_owned()),
        Func::Abs => match a[0].data_type() {
            DataType::Int8 => Arc::new(super::eval::map_primitive::<Int8Type, Int8Type>(&a[0], |v| {
                Some(v.wrapping_abs())
            })),
            DataType::Int16 => Arc::new(super::eval::map_primitive::<Int16Type, Int16Type>(&a[0], |v| {
                Some(v.wrapping_abs())
            })),
            DataType::Int32 => Arc::new(super::eval::map_primitive::<Int32Type, Int32Type>(&a[0], |v| {
                Some(v.wrapping_abs())
            })),
            DataType::Int64 => Arc::new(super::eval::map_primitive::<Int64Type, Int64Type>(&a[0], |v| {
                Some(v.wrapping_abs())
            })),
            DataType::Float32 => Arc::new(super::eval::map_primitive::<Float32Type, Float32Type>(
                &a[0],
                |v| Some(v.abs()),
            )),
            DataType::Decimal128(p, s) => Arc::new(
                super::eval::map_primitive::<Decimal128Type, Decimal128Type>(&a[0], |v| {
                    Some(v.wrapping_abs())
                })
                .with_precision_and_scale(*p, *s)
                .map_err(err)?,
            ),
            _ => Arc::new(super::eval::map_primitive::<Float64Type, Float64Type>(
                &cast_array(&a[0], &DataType::Float64)?,
                |v| Some(v.abs()),
            )),
        },
        Func::Round(scale) => match (a[0].data_type(), out) {
            (DataType::Decimal128(_, s), DataType::Decimal128(p2, s2)) => {
                let limit = pow10(*p2 as i32).unwrap_or(i128::MAX);
                let (s, s2, scale) = (*s as i32, *s2 as i32, *scale);
                let arr: Decimal128Array = a[0]
                    .as_primitive::<Decimal128Type>()
                    .iter()
                    .map(|v| {
                        v.and_then(|v| {
                            // round to `scale` digits, then express at the result's scale
                            let r = if scale < s {
                                let f = pow10(s - scale)?;
                                div_half_up(v, f).checked_mul(f)?
                            } else {
                                v
                            };
                            super::eval::rescale(r, s, s2)
                        })
                        .filter(|v| v.unsigned_abs() < limit.unsigned_abs())
                    })
                    .collect();
                Arc::new(arr.with_precision_and_scale(*p2, s2 as i8).map_err(err)?)
            }
            (t, _) if is_integral(t) => {
                let v = cast_array(&a[0], &DataType::Int64)?;
                let r: ArrayRef = Arc::new(super::eval::map_primitive::<Int64Type, Int64Type>(&v, |x| {
                    Some(round_int(x, *scale))
                }));
                // back to the input's width, wrapping as Spark's
                cast_array(&r, t)?
            }
            _ => {
                let v = cast_array(&a[0], &DataType::Float64)?;
                Arc::new(super::eval::map_primitive::<Float64Type, Float64Type>(&v, |x| {
                    Some(round_double(x, *scale))
                }))
            }
        },
        Func::Floor | Func::Ceil => {
            let up = matches!(f, Func::Ceil);
            match (a[0].data_type(), out) {
                (DataType::Decimal128(_, s), DataType::Decimal128(p2, _)) => {
                    let d = pow10(*s as i32).unwrap_or(1);
                    let arr: Decimal128Array = a[0]
                        .as_primitive::<Decimal128Type>()
                        .iter()
                        .map(|v| {
                            v.map(|v| {
                                let q = v.div_euclid(d);
                                if up && v.rem_euclid(d) != 0 { q + 1 } else { q }
                            })
                        })
                        .collect();
                    Arc::new(arr.with_precision_and_scale(*p2, 0).map_err(err)?)
                }
                (t, _) if is_integral(t) => cast_array(&a[0], &DataType::Int64)?,
                _ => {
                    let v = cast_array(&a[0], &DataType::Float64)?;
                    Arc::new(
                        v.as_primitive::<Float64Type>()
                            .iter()
                            .map(|x| x.map(|x| if up { x.ceil() as i64 } else { x.floor() as i64 }))
                            .collect::<Int64Array>(),
                    )
                }
            }
        }
        Func::Sqrt => Arc::new(super::eval::map_primitive::<Float64Type, Float64Type>(
            &a[0],
            |v| Some(v.sqrt()),
        )),
        Func::Pow => {
            let x = a[0].as_primitive::<Float64Type>();
            let y = a[1].as_primitive::<Float64Type>();
            Arc::new(
                x.iter()
                    .zip(y.iter())
                    .map(|(x, y)| Some(x?.powf(y?)))
                    .collect::<Float64Array>(),
            )
        }
        Func::IsNan => Arc::new(
            a[0].as_primitive::<Float64Type>()
                .iter()
                .map(|v| Some(v.is_some_and(|v| v.is_nan())))
                .collect::<BooleanArray>(),
        ),
        Func::ToDate(None) | Func::ToTimestamp(None) => cast_array(&a[0], out)?,
        Func::ToDate(Some(fmt)) => Arc::new(
            strings(&a[0])
                .iter()
                .map(|v| {
                    v.and_then(|s| parse_with(fmt, s))
                        .map(|d| (d.date() - NaiveDate::default()).num_days() as i32)
                })
                .collect::<Date32Array>(),
        ),
        Func::ToTimestamp(Some(fmt)) => ts_array(
            strings(&a[0])
                .iter()
                .map(|v| v.and_then(|s| parse_with(fmt, s)).map(micros)),
        ),
        Func::DateTrunc(unit) => ts_array(
            a[0].as_primitive::<TimestampMicrosecondType>()
                .iter()
                .map(|v| v.and_then(|v| truncate(v, *unit))),
        ),
        Func::DateAdd(sign) => {
            let d = a[0].as_primitive::<Date32Type>();
            let k = a[1].as_primitive::<Int32Type>();
            Arc::new(
                d.iter()
                    .zip(k.iter())
                    .map(|(d, k)| Some(d?.wrapping_add(k?.wrapping_mul(*sign))))
                    .collect::<Date32Array>(),
            )
        }
        Func::DateDiff => {
            let x = a[0].as_primitive::<Date32Type>();
            let y = a[1].as_primitive::<Date32Type>();
            Arc::new(
                x.iter()
                    .zip(y.iter())
                    .map(|(x, y)| Some(x?.wrapping_sub(y?)))
                    .collect::<Int32Array>(),
            )
        }
        Func::DateFormat(fmt) => Arc::new(
            a[0].as_primitive::<TimestampMicrosecondType>()
                .iter()
                .map(|v| v.and_then(|v| format_us(fmt, v)))
                .collect::<StringArray>(),
        ),
        Func::Part(part) => temporal::date_part(a[0].as_ref(), *part).map_err(err)?,
        Func::UnixTimestamp(fmt) => match a[0].data_type() {
            t if is_string(t) => Arc::new(
                strings(&a[0])
                    .iter()
                    .map(|v| {
                        v.and_then(|s| parse_with(fmt, s))
                            .map(|d| micros(d).div_euclid(1_000_000))
                    })
                    .collect::<Int64Array>(),
            ),
            _ => {
                let v = if a[0].len() == n {
                    a[0].clone()
                } else {
                    repeat(&a[0], n)?
                };
                Arc::new(
                    v.as_primitive::<TimestampMicrosecondType>()
                        .iter()
                        .map(|v| v.map(|v| v.div_euclid(1_000_000)))
                        .collect::<Int64Array>(),
                )
            }
        },
        Func::FromUnixtime(fmt) => Arc::new(
            a[0].as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.and_then(|v| format_us(fmt, v.wrapping_mul(1_000_000))))
                .collect::<StringArray>(),
        ),
        Func::CurrentTimestamp => ts_array(std::iter::repeat_n(Some(batch_us), n)),
        Func::CurrentDate => {
            let d = batch_us.div_euclid(86_400_000_000) as i32;
            Arc::new(Date32Array::from(vec![d; n]))
        }
        Func::Struct(fields) => super::eval::struct_array(fields, a.to_vec())?,
        Func::Coalesce => {
            let mut acc = a[a.len() - 1].clone();
            for x in a[..a.len() - 1].iter().rev() {
                let mask = boolean::is_not_null(x).map_err(err)?;
                acc = zip(&mask, x, &acc).map_err(err)?;
            }
            acc
        }
        Func::If => {
            let mask = true_mask(a[0].as_boolean());
            zip(&mask, &a[1], &a[2]).map_err(err)?
        }
        Func::NullIf => {
            let eq = deltalake::arrow::compute::kernels::cmp::eq(&a[0], &a[1]).map_err(err)?;
            nullif(a[0].as_ref(), &true_mask(&eq)).map_err(err)?
        }
    })
}
