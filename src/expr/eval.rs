//! Evaluation of resolved expressions, a column at a time with Arrow's compute kernels, with
//! Spark's non-ANSI semantics: integer overflow wraps, division (and `%`) by zero is NULL,
//! AND/OR are three-valued, a cast that cannot convert a value gives NULL.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use deltalake::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int8Array, Int16Array, Int32Array, Int64Array, PrimitiveArray, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray, UInt32Array, new_null_array,
};
use deltalake::arrow::compute::kernels::{boolean, cmp, comparison, numeric, zip::zip};
use deltalake::arrow::compute::{CastOptions, cast_with_options, nullif, take};
use deltalake::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
};
use deltalake::arrow::error::ArrowError;

use super::functions::{self, Func};
use super::types::{is_integral, is_string};
use super::{EvalContext, ExprError, LikeKind, PhysicalExpr};

/// Arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    /// +
    Add,
    /// -
    Sub,
    /// *
    Mul,
    /// /
    Div,
    /// %
    Rem,
    /// `div`
    IntDiv,
}

/// Comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// =
    Eq,
    /// <
    Lt,
    /// <=
    LtEq,
    /// >
    Gt,
    /// >=
    GtEq,
    /// <=>
    NullSafeEq,
}

/// What a [`PhysicalExpr`] computes.
#[derive(Debug, Clone)]
pub enum Node {
    /// a column of the batch
    Column(usize),
    /// a field of a struct
    Field(Box<PhysicalExpr>, usize),
    /// a constant: one value, repeated
    Literal(ArrayRef),
    /// a cast to the expression's type
    Cast(Box<PhysicalExpr>),
    /// arithmetic over operands of one type (decimals: each its own type; the result's
    /// precision and scale is the expression's)
    Arith(Arith, Box<PhysicalExpr>, Box<PhysicalExpr>),
    /// `-x`
    Negate(Box<PhysicalExpr>),
    /// a comparison of operands of one type
    Cmp(Cmp, Box<PhysicalExpr>, Box<PhysicalExpr>),
    /// AND (three-valued)
    And(Box<PhysicalExpr>, Box<PhysicalExpr>),
    /// OR (three-valued)
    Or(Box<PhysicalExpr>, Box<PhysicalExpr>),
    /// NOT
    Not(Box<PhysicalExpr>),
    /// IS [NOT] NULL
    IsNull(Box<PhysicalExpr>, bool),
    /// IN (all of one type)
    In(Box<PhysicalExpr>, Vec<PhysicalExpr>),
    /// CASE WHEN … (results of the expression's type)
    Case(Vec<(PhysicalExpr, PhysicalExpr)>, Option<Box<PhysicalExpr>>),
    /// LIKE / ILIKE over strings; RLIKE with its regular expression compiled
    Like(Box<PhysicalExpr>, Box<PhysicalExpr>, LikeKind),
    /// RLIKE with a constant pattern
    RLike(Box<PhysicalExpr>, Box<regex::Regex>),
    /// a function
    Call(Func, Vec<PhysicalExpr>),
}

pub(super) fn eval_error(e: impl std::fmt::Display, what: &str) -> ExprError {
    ExprError::Eval {
        expr: what.to_string(),
        why: e.to_string(),
    }
}

fn arrow(e: ArrowError) -> ExprError {
    eval_error(e, "an Arrow kernel")
}

/// `arr`'s first value, `n` times.
pub(super) fn repeat(arr: &ArrayRef, n: usize) -> Result<ArrayRef, ExprError> {
    if arr.len() == n {
        return Ok(arr.clone());
    }
    if arr.is_null(0) {
        return Ok(new_null_array(arr.data_type(), n));
    }
    take(arr.as_ref(), &UInt32Array::from(vec![0u32; n]), None).map_err(arrow)
}

/// Evaluates `p` on `batch`.
pub fn evaluate(p: &PhysicalExpr, batch: &RecordBatch, ctx: &EvalContext) -> Result<ArrayRef, ExprError> {
    let n = batch.num_rows();
    let ev = |x: &PhysicalExpr| evaluate(x, batch, ctx);
    let out: ArrayRef = match &p.node {
        Node::Column(i) => {
            let c = batch
                .columns()
                .get(*i)
                .ok_or_else(|| eval_error(format!("the batch has no column {i}"), "a column"))?;
            if c.data_type() == &p.data_type {
                c.clone()
            } else {
                cast_array(c, &p.data_type)?
            }
        }
        Node::Field(s, i) => {
            let s = ev(s)?;
            let s = s
                .as_struct_opt()
                .ok_or_else(|| eval_error("not a struct", "a field access"))?;
            let f = s.column(*i).clone();
            match s.nulls() {
                // A field of a NULL struct is NULL.
                Some(nulls) if nulls.null_count() > 0 => {
                    nullif(f.as_ref(), &BooleanArray::new(!nulls.inner(), None)).map_err(arrow)?
                }
                _ => f,
            }
        }
        Node::Literal(a) => repeat(a, n)?,
        Node::Cast(x) => cast_array(&ev(x)?, &p.data_type)?,
        Node::Arith(op, l, r) => arith(*op, &ev(l)?, &ev(r)?, &p.data_type)?,
        Node::Negate(x) => negate(&ev(x)?)?,
        Node::Cmp(op, l, r) => {
            let (l, r) = (ev(l)?, ev(r)?);
            let b = match op {
                Cmp::Eq => cmp::eq(&l, &r),
                Cmp::Lt => cmp::lt(&l, &r),
                Cmp::LtEq => cmp::lt_eq(&l, &r),
                Cmp::Gt => cmp::gt(&l, &r),
                Cmp::GtEq => cmp::gt_eq(&l, &r),
                Cmp::NullSafeEq => cmp::not_distinct(&l, &r),
            }
            .map_err(arrow)?;
            Arc::new(b)
        }
        Node::And(l, r) => {
            Arc::new(boolean::and_kleene(ev(l)?.as_boolean(), ev(r)?.as_boolean()).map_err(arrow)?)
        }
        Node::Or(l, r) => {
            Arc::new(boolean::or_kleene(ev(l)?.as_boolean(), ev(r)?.as_boolean()).map_err(arrow)?)
        }
        Node::Not(x) => Arc::new(boolean::not(ev(x)?.as_boolean()).map_err(arrow)?),
        Node::IsNull(x, negated) => {
            let a = ev(x)?;
            Arc::new(
                if *negated {
                    boolean::is_not_null(&a)
                } else {
                    boolean::is_null(&a)
                }
                .map_err(arrow)?,
            )
        }
        Node::In(x, list) => {
            let v = ev(x)?;
            let mut acc = BooleanArray::from(vec![false; n]);
            for c in list {
                let e = cmp::eq(&v, &ev(c)?).map_err(arrow)?;
                acc = boolean::or_kleene(&acc, &e).map_err(arrow)?;
            }
            // A NULL value is NULL even for an empty list.
            Arc::new(match v.logical_nulls() {
                Some(nulls) => BooleanArray::new(
                    acc.values().clone(),
                    deltalake::arrow::buffer::NullBuffer::union(acc.nulls(), Some(&nulls)),
                ),
                None => acc,
            })
        }
        Node::Case(branches, otherwise) => {
            let mut out = match otherwise {
                Some(o) => ev(o)?,
                None => new_null_array(&p.data_type, n),
            };
            for (c, v) in branches.iter().rev() {
                let c = ev(c)?;
                let mask = true_mask(c.as_boolean());
                out = zip(&mask, &ev(v)?, &out).map_err(arrow)?;
            }
            out
        }
        Node::Like(x, pat, kind) => {
            let (x, pat) = (ev(x)?, ev(pat)?);
            Arc::new(
                match kind {
                    LikeKind::ILike => comparison::ilike(&x, &pat),
                    _ => comparison::like(&x, &pat),
                }
                .map_err(arrow)?,
            )
        }
        Node::RLike(x, re) => {
            let x = ev(x)?;
            let s = x.as_string::<i32>();
            Arc::new(
                s.iter()
                    .map(|v| v.map(|v| re.is_match(v)))
                    .collect::<BooleanArray>(),
            )
        }
        Node::Call(f, args) => {
            let args = args.iter().map(ev).collect::<Result<Vec<_>, _>>()?;
            functions::evaluate(f, &args, n, ctx, &p.data_type)?
        }
    };
    if out.data_type() != &p.data_type {
        return cast_array(&out, &p.data_type);
    }
    Ok(out)
}

/// true where `b` is true (NULL counts as false).
pub(super) fn true_mask(b: &BooleanArray) -> BooleanArray {
    match b.nulls() {
        Some(n) => BooleanArray::new(b.values() & n.inner(), None),
        None => BooleanArray::new(b.values().clone(), None),
    }
}

fn is_zero(a: &ArrayRef) -> Result<BooleanArray, ExprError> {
    let zero = cast_with_options(
        &(Arc::new(Int32Array::from(vec![0])) as ArrayRef),
        a.data_type(),
        &CastOptions::default(),
    )
    .map_err(arrow)?;
    cmp::eq(a, &deltalake::arrow::array::Scalar::new(zero)).map_err(arrow)
}

macro_rules! int_binary {
    ($l:expr, $r:expr, $t:ty, $f:expr) => {{
        let l = $l.as_primitive::<$t>();
        let r = $r.as_primitive::<$t>();
        let out: PrimitiveArray<$t> = deltalake::arrow::compute::binary(l, r, $f).map_err(arrow)?;
        Arc::new(out) as ArrayRef
    }};
}

fn arith(op: Arith, l: &ArrayRef, r: &ArrayRef, out: &DataType) -> Result<ArrayRef, ExprError> {
    if let DataType::Decimal128(p, s) = out
        && op != Arith::IntDiv
    {
        return decimal_arith(op, l, r, *p, *s);
    }
    let res = match op {
        Arith::Add => numeric::add_wrapping(l, r),
        Arith::Sub => numeric::sub_wrapping(l, r),
        Arith::Mul => numeric::mul_wrapping(l, r),
        Arith::Div | Arith::Rem | Arith::IntDiv => {
            let r = nullif(r.as_ref(), &is_zero(r)?).map_err(arrow)?;
            let t = l.data_type().clone();
            let int = is_integral(&t);
            return Ok(match (op, int) {
                (Arith::Rem, true) => match t {
                    DataType::Int8 => int_binary!(l, r, Int8Type, |a: i8, b: i8| if b == 0 {
                        0
                    } else {
                        a.wrapping_rem(b)
                    }),
                    DataType::Int16 => int_binary!(l, r, Int16Type, |a: i16, b: i16| if b == 0 {
                        0
                    } else {
                        a.wrapping_rem(b)
                    }),
                    DataType::Int32 => int_binary!(l, r, Int32Type, |a: i32, b: i32| if b == 0 {
                        0
                    } else {
                        a.wrapping_rem(b)
                    }),
                    _ => int_binary!(l, r, Int64Type, |a: i64, b: i64| if b == 0 {
                        0
                    } else {
                        a.wrapping_rem(b)
                    }),
                },
                (Arith::IntDiv, _) => {
                    let l = cast_array(l, &DataType::Int64)?;
                    let r = cast_array(&r, &DataType::Int64)?;
                    int_binary!(l, r, Int64Type, |a: i64, b: i64| if b == 0 {
                        0
                    } else {
                        a.wrapping_div(b)
                    })
                }
                (Arith::Rem, false) => numeric::rem(l, &r).map_err(arrow)?,
                _ => numeric::div(l, &r).map_err(arrow)?,
            });
        }
    };
    res.map_err(arrow)
}

const POW10: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// 10^n, when it fits.
pub(super) fn pow10(n: i32) -> Option<i128> {
    usize::try_from(n).ok().and_then(|n| POW10.get(n).copied())
}

/// `v / d` rounded half away from zero (Java's HALF_UP).
pub(super) fn div_half_up(v: i128, d: i128) -> i128 {
    let q = v / d;
    let r = v % d;
    if r.unsigned_abs() * 2 >= d.unsigned_abs() {
        if (v < 0) != (d < 0) { q - 1 } else { q + 1 }
    } else {
        q
    }
}

/// `v` (scale `from`) at scale `to`, rounding half up; None on overflow.
pub(super) fn rescale(v: i128, from: i32, to: i32) -> Option<i128> {
    if to >= from {
        v.checked_mul(pow10(to - from)?)
    } else {
        Some(div_half_up(v, pow10(from - to)?))
    }
}

fn decimal_parts(a: &ArrayRef) -> Result<(Decimal128Array, i32), ExprError> {
    match a.data_type() {
        DataType::Decimal128(_, s) => Ok((
            a.as_primitive::<deltalake::arrow::datatypes::Decimal128Type>()
                .clone(),
            *s as i32,
        )),
        t if is_integral(t) => {
            let v = cast_array(a, &DataType::Int64)?;
            let v = v.as_primitive::<Int64Type>();
            Ok((v.iter().map(|x| x.map(i128::from)).collect(), 0))
        }
        t => Err(eval_error(format!("{t} is not a decimal"), "decimal arithmetic")),
    }
}

/// Decimal arithmetic as Spark's `DecimalPrecision`: exact in i128, rounded half up to the
/// result's scale, NULL when the result does not fit its precision.
fn decimal_arith(op: Arith, l: &ArrayRef, r: &ArrayRef, p: u8, s: i8) -> Result<ArrayRef, ExprError> {
    let (l, ls) = decimal_parts(l)?;
    let (r, rs) = decimal_parts(r)?;
    let s = s as i32;
    let limit = pow10(p as i32).unwrap_or(i128::MAX);
    let f = |a: i128, b: i128| -> Option<i128> {
        let v = match op {
            Arith::Add | Arith::Sub | Arith::Rem => {
                let m = ls.max(rs);
                let (a, b) = (rescale(a, ls, m)?, rescale(b, rs, m)?);
                let v = match op {
                    Arith::Add => a.checked_add(b)?,
                    Arith::Sub => a.checked_sub(b)?,
                    _ => {
                        if b == 0 {
                            return None;
                        }
                        a.checked_rem(b)?
                    }
                };
                rescale(v, m, s)?
            }
            Arith::Mul => rescale(a.checked_mul(b)?, ls + rs, s)?,
            Arith::Div => {
                if b == 0 {
                    return None;
                }
                // a / b at scale s: a * 10^(s - ls + rs) / b.
                let e = s - ls + rs;
                if e >= 0 {
                    div_half_up(a.checked_mul(pow10(e)?)?, b)
                } else {
                    div_half_up(a, b.checked_mul(pow10(-e)?)?)
                }
            }
            Arith::IntDiv => return None,
        };
        (v.unsigned_abs() < limit.unsigned_abs()).then_some(v)
    };
    let out: Decimal128Array = l
        .iter()
        .zip(r.iter())
        .map(|(a, b)| match (a, b) {
            (Some(a), Some(b)) => f(a, b),
            _ => None,
        })
        .collect();
    Ok(Arc::new(out.with_precision_and_scale(p, s as i8).map_err(arrow)?))
}

fn negate(a: &ArrayRef) -> Result<ArrayRef, ExprError> {
    numeric::neg_wrapping(a.as_ref()).map_err(arrow)
}

// ---- casts -------------------------------------------------------------------------------

/// Days since the epoch of a date.
fn days(d: NaiveDate) -> i32 {
    (d - NaiveDate::default()).num_days() as i32
}

fn epoch_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::default().checked_add_signed(chrono::Duration::days(days as i64))
}

/// `yyyy-MM-dd` of a date (days since the epoch).
pub fn date_text(d: i32) -> String {
    epoch_date(d).map_or_else(|| d.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// The UTC date-time of microseconds since the epoch.
pub(super) fn datetime(us: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(us).map(|d| d.naive_utc())
}

/// Microseconds since the epoch of a UTC date-time.
pub(super) fn micros(d: NaiveDateTime) -> i64 {
    d.and_utc().timestamp_micros()
}

/// Spark's text of a timestamp: `yyyy-MM-dd HH:mm:ss[.fraction without trailing zeros]`.
pub fn timestamp_text(us: i64) -> String {
    let Some(d) = datetime(us) else {
        return us.to_string();
    };
    let mut s = d.format("%Y-%m-%d %H:%M:%S").to_string();
    let frac = d.and_utc().timestamp_subsec_micros();
    if frac != 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s
}

/// Spark's string → date: `yyyy`, `yyyy-[m]m`, `yyyy-[m]m-[d]d`, and anything after a `T` or
/// a space (a time) ignored. None when it is not a date.
pub fn parse_date(text: &str) -> Option<i32> {
    let t = text.trim();
    let t = t.split(['T', ' ']).next()?;
    let mut parts = t.splitn(3, '-');
    let y = parts.next()?;
    if !(4..=7).contains(&y.len()) || !y.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |s: Option<&str>| -> Option<u32> {
        match s {
            None => Some(1),
            Some(s) if (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
            _ => None,
        }
    };
    let m = num(parts.next())?;
    let d = num(parts.next())?;
    NaiveDate::from_ymd_opt(y.parse().ok()?, m, d).map(days)
}

/// Spark's string → timestamp (UTC session time zone): a date, optionally with
/// `[T| ]HH:mm[:ss[.fraction]]` and a zone (`Z`, `+01:00`, `UTC`). None when it is not one.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let t = text.trim();
    let split = t.find(['T', ' ']);
    let (date, rest) = match split {
        Some(i) => (&t[..i], t[i + 1..].trim()),
        None => (t, ""),
    };
    let d = epoch_date(parse_date(date)?)?;
    if rest.is_empty() {
        return Some(micros(d.and_time(NaiveTime::MIN)));
    }
    // Zone suffix.
    let (time, offset_s) = split_zone(rest)?;
    let mut hms = time.splitn(3, ':');
    let h: u32 = digits(hms.next()?, 1, 2)?;
    let m: u32 = digits(hms.next()?, 1, 2)?;
    let (s, us) = match hms.next() {
        None => (0, 0),
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            let s: u32 = digits(whole, 1, 2)?;
            if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let f6: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
            (s, f6.parse::<u32>().ok()?)
        }
    };
    let time = NaiveTime::from_hms_micro_opt(h, m, s, us)?;
    Some(micros(d.and_time(time)) - offset_s * 1_000_000)
}

fn digits<T: std::str::FromStr>(s: &str, min: usize, max: usize) -> Option<T> {
    if (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// A time's zone: (the time, the zone's offset east of UTC in seconds).
fn split_zone(t: &str) -> Option<(&str, i64)> {
    if let Some(x) = t.strip_suffix('Z') {
        return Some((x, 0));
    }
    if let Some(x) = t.strip_suffix("UTC") {
        return Some((x.trim_end(), 0));
    }
    if let Some(i) = t.rfind(['+', '-']) {
        let (time, zone) = (&t[..i], &t[i..]);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let z = &zone[1..];
        let (h, m) = match z.split_once(':') {
            Some((h, m)) => (digits::<i64>(h, 1, 2)?, digits::<i64>(m, 2, 2)?),
            None if z.len() == 4 => (digits::<i64>(&z[..2], 2, 2)?, digits::<i64>(&z[2..], 2, 2)?),
            None => (digits::<i64>(z, 1, 2)?, 0),
        };
        return Some((time, sign * (h * 3600 + m * 60)));
    }
    Some((t, 0))
}

/// Spark's string → integral (non-ANSI): whitespace trimmed, an optional sign, digits, and a
/// fraction that is cut off (`'1.7'` → 1); anything else, or out of range, is NULL.
fn parse_integral(text: &str) -> Option<i64> {
    let t = text.trim_matches(|c: char| c <= ' ');
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let body = int.strip_prefix(['+', '-']).unwrap_or(int);
    if body.is_empty() && frac.is_empty() {
        return None;
    }
    if !body.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if body.is_empty() {
        return Some(0);
    }
    int.parse().ok()
}

fn parse_boolean(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "0" => Some(false),
        _ => None,
    }
}

fn parse_double(text: &str) -> Option<f64> {
    let t = text.trim_matches(|c: char| c <= ' ');
    let t = t.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(t);
    match t.to_ascii_lowercase().as_str() {
        "nan" => Some(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ if t
            .bytes()
            .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E') =>
        {
            None
        }
        _ => t.parse().ok(),
    }
}

fn from_i64s(v: impl Iterator<Item = Option<i64>>, to: &DataType) -> ArrayRef {
    match to {
        DataType::Int8 => Arc::new(v.map(|x| x.map(|x| x as i8)).collect::<Int8Array>()),
        DataType::Int16 => Arc::new(v.map(|x| x.map(|x| x as i16)).collect::<Int16Array>()),
        DataType::Int32 => Arc::new(v.map(|x| x.map(|x| x as i32)).collect::<Int32Array>()),
        _ => Arc::new(v.collect::<Int64Array>()),
    }
}

fn string_values(a: &ArrayRef) -> Result<StringArray, ExprError> {
    Ok(cast_with_options(a, &DataType::Utf8, &CastOptions::default())
        .map_err(arrow)?
        .as_string::<i32>()
        .clone())
}

fn float_values(a: &ArrayRef) -> Result<Float64Array, ExprError> {
    Ok(cast_array(a, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

/// Casts `a` to `to` with Spark's non-ANSI rules (a value that does not convert is NULL;
/// narrowing integers wraps; doubles to integers truncate and saturate; timestamps to and from
/// numbers are seconds; strings as Spark prints and parses them).
pub fn cast_array(a: &ArrayRef, to: &DataType) -> Result<ArrayRef, ExprError> {
    let from = a.data_type();
    if from == to {
        return Ok(a.clone());
    }
    if from == &DataType::Null {
        return Ok(new_null_array(to, a.len()));
    }
    let safe = CastOptions::default();
    let kernel = |a: &ArrayRef, to: &DataType| cast_with_options(a, to, &safe).map_err(arrow);
    match (from, to) {
        // to string, as Spark prints
        (DataType::Float64 | DataType::Float32, DataType::Utf8) => {
            let v = float_values(a)?;
            let f32s = from == &DataType::Float32;
            let fmt = |x: f64| {
                if f32s {
                    super::names::java_float(x as f32)
                } else {
                    super::names::java_double(x)
                }
            };
            Ok(Arc::new(v.iter().map(|x| x.map(fmt)).collect::<StringArray>()))
        }
        (DataType::Timestamp(..), DataType::Utf8) => {
            let v = kernel(a, &super::types::timestamp())?;
            let v = v.as_primitive::<deltalake::arrow::datatypes::TimestampMicrosecondType>();
            Ok(Arc::new(
                v.iter().map(|x| x.map(timestamp_text)).collect::<StringArray>(),
            ))
        }
        (DataType::Date32, DataType::Utf8) => {
            let v = a.as_primitive::<Date32Type>();
            Ok(Arc::new(
                v.iter().map(|x| x.map(date_text)).collect::<StringArray>(),
            ))
        }
        (DataType::Struct(fs), DataType::Utf8) => {
            let s = a.as_struct();
            let cols = s
                .columns()
                .iter()
                .map(|c| string_values(&cast_array(c, &DataType::Utf8)?))
                .collect::<Result<Vec<_>, _>>()?;
            let _ = fs;
            Ok(Arc::new(
                (0..a.len())
                    .map(|i| {
                        (!s.is_null(i)).then(|| {
                            let vals: Vec<&str> = cols
                                .iter()
                                .map(|c| if c.is_null(i) { "null" } else { c.value(i) })
                                .collect();
                            format!("{{{}}}", vals.join(", "))
                        })
                    })
                    .collect::<StringArray>(),
            ))
        }
        // from string, as Spark parses
        (s, t) if is_string(s) => {
            let v = string_values(a)?;
            Ok(match t {
                t if is_integral(t) => {
                    let parsed = v.iter().map(|x| x.and_then(parse_integral));
                    // Out of the target's range is NULL (not wrapped) for strings.
                    let fits = |x: i64| match t {
                        DataType::Int8 => i8::try_from(x).is_ok(),
                        DataType::Int16 => i16::try_from(x).is_ok(),
                        DataType::Int32 => i32::try_from(x).is_ok(),
                        _ => true,
                    };
                    from_i64s(parsed.map(|x| x.filter(|x| fits(*x))), t)
                }
                DataType::Float64 => Arc::new(
                    v.iter()
                        .map(|x| x.and_then(parse_double))
                        .collect::<Float64Array>(),
                ),
                DataType::Float32 => Arc::new(
                    v.iter()
                        .map(|x| x.and_then(parse_double).map(|x| x as f32))
                        .collect::<Float32Array>(),
                ),
                DataType::Boolean => Arc::new(
                    v.iter()
                        .map(|x| x.and_then(parse_boolean))
                        .collect::<BooleanArray>(),
                ),
                DataType::Date32 => {
                    Arc::new(v.iter().map(|x| x.and_then(parse_date)).collect::<Date32Array>())
                }
                DataType::Timestamp(..) => Arc::new(
                    v.iter()
                        .map(|x| x.and_then(parse_timestamp))
                        .collect::<TimestampMicrosecondArray>()
                        .with_timezone("UTC"),
                ),
                DataType::Decimal128(..) => {
                    let trimmed: StringArray = v.iter().map(|x| x.map(|x| x.trim())).collect();
                    kernel(&(Arc::new(trimmed) as ArrayRef), t)?
                }
                _ => kernel(a, t)?,
            })
        }
        // timestamps and numbers: seconds
        (DataType::Timestamp(..), t) if is_integral(t) => {
            let v = kernel(a, &DataType::Int64)?;
            let v = v.as_primitive::<Int64Type>();
            Ok(from_i64s(v.iter().map(|x| x.map(|x| x.div_euclid(1_000_000))), t))
        }
        (DataType::Timestamp(..), DataType::Float64 | DataType::Float32 | DataType::Decimal128(..)) => {
            let v = kernel(a, &DataType::Int64)?;
            let v = v.as_primitive::<Int64Type>();
            let secs: ArrayRef = Arc::new(
                v.iter()
                    .map(|x| x.map(|x| x as f64 / 1e6))
                    .collect::<Float64Array>(),
            );
            kernel(&secs, to)
        }
        (f, DataType::Timestamp(..)) if super::types::is_numeric(f) => {
            let v = float_values(a)?;
            Ok(Arc::new(
                v.iter()
                    .map(|x| x.filter(|x| x.is_finite()).map(|x| (x * 1e6) as i64))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("UTC"),
            ))
        }
        (DataType::Date32, t) if super::types::is_numeric(t) => Ok(new_null_array(t, a.len())),
        // numbers to integers: Java's narrowing (wraps; doubles truncate and saturate)
        (DataType::Float64 | DataType::Float32, t) if is_integral(t) => {
            let v = float_values(a)?;
            Ok(match t {
                DataType::Int64 => from_i64s(v.iter().map(|x| x.map(|x| x as i64)), t),
                // Java: (int) d saturates to int, then narrower types wrap from the int.
                _ => from_i64s(v.iter().map(|x| x.map(|x| x as i32 as i64)), t),
            })
        }
        (f, t) if is_integral(f) && is_integral(t) => {
            let v = kernel(a, &DataType::Int64)?;
            let v = v.as_primitive::<Int64Type>();
            Ok(from_i64s(v.iter(), t))
        }
        (DataType::Decimal128(_, s), t) if is_integral(t) => {
            let v = a.as_primitive::<deltalake::arrow::datatypes::Decimal128Type>();
            let d = pow10(*s as i32).unwrap_or(1);
            Ok(from_i64s(v.iter().map(|x| x.map(|x| (x / d) as i64)), t))
        }
        (DataType::Decimal128(_, s), DataType::Decimal128(p2, s2)) => {
            let v = a.as_primitive::<deltalake::arrow::datatypes::Decimal128Type>();
            let limit = pow10(*p2 as i32).unwrap_or(i128::MAX);
            let out: Decimal128Array = v
                .iter()
                .map(|x| {
                    x.and_then(|x| rescale(x, *s as i32, *s2 as i32))
                        .filter(|x| x.unsigned_abs() < limit.unsigned_abs())
                })
                .collect();
            Ok(Arc::new(out.with_precision_and_scale(*p2, *s2).map_err(arrow)?))
        }
        (DataType::Float64 | DataType::Float32, DataType::Decimal128(p, s)) => {
            // Through the shortest decimal text of the double (Java's BigDecimal(double.toString)),
            // rounded half up.
            let v = float_values(a)?;
            let limit = pow10(*p as i32).unwrap_or(i128::MAX);
            let out: Decimal128Array = v
                .iter()
                .map(|x| {
                    x.filter(|x| x.is_finite())
                        .and_then(|x| double_to_decimal(x, *s as i32))
                        .filter(|x| x.unsigned_abs() < limit.unsigned_abs())
                })
                .collect();
            Ok(Arc::new(out.with_precision_and_scale(*p, *s).map_err(arrow)?))
        }
        _ => kernel(a, to),
    }
}

/// `x` as a decimal of scale `scale` (half up), from its shortest decimal text.
pub(super) fn double_to_decimal(x: f64, scale: i32) -> Option<i128> {
    let s = format!("{x:e}");
    let (m, e) = s.split_once('e')?;
    let e: i32 = e.parse().ok()?;
    let neg = m.starts_with('-');
    let m = m.trim_start_matches('-');
    let (i, f) = m.split_once('.').unwrap_or((m, ""));
    let digits: i128 = format!("{i}{f}").parse().ok()?;
    // value = digits × 10^(e - len(f))
    let v = rescale(digits, f.len() as i32 - e, scale)?;
    Some(if neg { -v } else { v })
}

/// A typed one-value array for a literal.
pub(super) fn literal_array(l: &super::Literal) -> ArrayRef {
    use super::Literal as L;
    match l {
        L::Null => new_null_array(&DataType::Null, 1),
        L::Boolean(b) => Arc::new(BooleanArray::from(vec![*b])),
        L::Byte(v) => Arc::new(Int8Array::from(vec![*v])),
        L::Short(v) => Arc::new(Int16Array::from(vec![*v])),
        L::Int(v) => Arc::new(Int32Array::from(vec![*v])),
        L::Long(v) => Arc::new(Int64Array::from(vec![*v])),
        L::Float(v) => Arc::new(Float32Array::from(vec![*v])),
        L::Double(v) => Arc::new(Float64Array::from(vec![*v])),
        L::Decimal {
            value,
            precision,
            scale,
        } => match Decimal128Array::from(vec![*value]).with_precision_and_scale(*precision, *scale) {
            Ok(a) => Arc::new(a),
            Err(_) => new_null_array(&DataType::Decimal128(38, 0), 1),
        },
        L::String(s) => Arc::new(StringArray::from(vec![s.as_str()])),
        L::Date(d) => Arc::new(Date32Array::from(vec![*d])),
        L::Timestamp(t) => Arc::new(TimestampMicrosecondArray::from(vec![*t]).with_timezone("UTC")),
    }
}

/// A struct array of `fields` and `columns` (never NULL itself).
pub(super) fn struct_array(
    fields: &deltalake::arrow::datatypes::Fields,
    columns: Vec<ArrayRef>,
) -> Result<ArrayRef, ExprError> {
    Ok(Arc::new(
        StructArray::try_new(fields.clone(), columns, None).map_err(arrow)?,
    ))
}

/// A primitive array mapped value by value.
pub(super) fn map_primitive<I: ArrowPrimitiveType, O: ArrowPrimitiveType>(
    a: &ArrayRef,
    f: impl Fn(I::Native) -> Option<O::Native>,
) -> PrimitiveArray<O> {
    a.as_primitive::<I>().iter().map(|x| x.and_then(&f)).collect()
}
