//! Spark's types over Arrow's: their names, and the analyzer's implicit type coercion
//! (`TypeCoercion` / `DecimalPrecision` of Spark 3.5, non-ANSI).

use deltalake::arrow::datatypes::{DataType, TimeUnit};

use super::SqlType;

/// Spark's largest decimal precision.
pub const MAX_PRECISION: u8 = 38;

/// Spark's name of a type, as its error messages and `CAST(... AS T)` write it (`INT`,
/// `BIGINT`, `DECIMAL(10,2)`, `STRUCT<a: INT>`).
pub fn spark_type_name(t: &DataType) -> String {
    match t {
        DataType::Null => "VOID".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "BINARY".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP_NTZ".into(),
        DataType::Struct(fs) => format!(
            "STRUCT<{}>",
            fs.iter()
                .map(|f| format!("{}: {}", f.name(), spark_type_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        DataType::List(f) | DataType::LargeList(f) => format!("ARRAY<{}>", spark_type_name(f.data_type())),
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "MAP<{}, {}>",
                spark_type_name(kv[0].data_type()),
                spark_type_name(kv[1].data_type())
            ),
            _ => "MAP".into(),
        },
        other => other.to_string().to_ascii_uppercase(),
    }
}

/// Spark's `simpleString` of a type (`int`, `decimal(10,2)`, `struct<a:int,b:string>`).
pub fn simple_string(t: &DataType) -> String {
    match t {
        DataType::Struct(fs) => format!(
            "struct<{}>",
            fs.iter()
                .map(|f| format!("{}:{}", f.name(), simple_string(f.data_type())))
                .collect::<Vec<_>>()
                .join(",")
        ),
        DataType::List(f) | DataType::LargeList(f) => format!("array<{}>", simple_string(f.data_type())),
        other => spark_type_name(other).to_ascii_lowercase(),
    }
}

/// The Arrow type of a Spark SQL type (timestamps are microseconds in UTC, as the engine's).
pub fn arrow_type(t: SqlType) -> DataType {
    match t {
        SqlType::Boolean => DataType::Boolean,
        SqlType::Byte => DataType::Int8,
        SqlType::Short => DataType::Int16,
        SqlType::Int => DataType::Int32,
        SqlType::Long => DataType::Int64,
        SqlType::Float => DataType::Float32,
        SqlType::Double => DataType::Float64,
        SqlType::Decimal(p, s) => DataType::Decimal128(p, s),
        SqlType::String => DataType::Utf8,
        SqlType::Binary => DataType::Binary,
        SqlType::Date => DataType::Date32,
        SqlType::Timestamp => timestamp(),
    }
}

/// The engine's timestamp type.
pub fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Strings of any Arrow layout.
pub fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Integral types.
pub fn is_integral(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

/// Numeric types (integral, fractional, decimal).
pub fn is_numeric(t: &DataType) -> bool {
    is_integral(t)
        || matches!(
            t,
            DataType::Float32 | DataType::Float64 | DataType::Decimal128(..)
        )
}

/// Datetime types.
pub fn is_datetime(t: &DataType) -> bool {
    matches!(t, DataType::Date32 | DataType::Timestamp(..))
}

/// The type Spark keeps a column of `t` as (unsigned integers and other string layouts
/// normalised), so the kernels see few types.
pub fn normalise(t: &DataType) -> DataType {
    match t {
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 => DataType::Int64,
        DataType::UInt64 => DataType::Decimal128(20, 0),
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::Float16 => DataType::Float32,
        DataType::Timestamp(_, Some(_)) => timestamp(),
        DataType::Date64 => DataType::Date32,
        other => other.clone(),
    }
}

fn numeric_rank(t: &DataType) -> Option<u8> {
    Some(match t {
        DataType::Int8 => 1,
        DataType::Int16 => 2,
        DataType::Int32 => 3,
        DataType::Int64 => 4,
        DataType::Float32 => 5,
        DataType::Float64 => 6,
        _ => return None,
    })
}

/// The decimal an integral type converts to without loss (`INT` → `DECIMAL(10,0)`).
pub fn integral_decimal(t: &DataType) -> Option<(u8, i8)> {
    Some(match t {
        DataType::Int8 => (3, 0),
        DataType::Int16 => (5, 0),
        DataType::Int32 => (10, 0),
        DataType::Int64 => (20, 0),
        DataType::Decimal128(p, s) => (*p, *s),
        _ => return None,
    })
}

/// Spark's `DecimalType.adjustPrecisionScale` (allowPrecisionLoss = true).
pub fn adjust_decimal(p: i32, s: i32) -> DataType {
    let max = MAX_PRECISION as i32;
    if p <= max {
        return DataType::Decimal128(p.max(1) as u8, s as i8);
    }
    let int_digits = p - s;
    let min_scale = s.min(6);
    let scale = (max - int_digits).max(min_scale);
    DataType::Decimal128(MAX_PRECISION, scale as i8)
}

/// `DECIMAL(p1,s1)` and `DECIMAL(p2,s2)` widened to hold both.
pub fn wider_decimal((p1, s1): (u8, i8), (p2, s2): (u8, i8)) -> DataType {
    let s = s1.max(s2) as i32;
    let int = (p1 as i32 - s1 as i32).max(p2 as i32 - s2 as i32);
    let p = (int + s).min(MAX_PRECISION as i32);
    DataType::Decimal128(p as u8, s.min(p) as i8)
}

/// Spark's `findTightestCommonType` plus decimal widening: the type both numbers (or equal
/// types, or NULL and anything) convert to.
pub fn tightest(a: &DataType, b: &DataType) -> Option<DataType> {
    if a == b {
        return Some(a.clone());
    }
    match (a, b) {
        (DataType::Null, t) | (t, DataType::Null) => return Some(t.clone()),
        (DataType::Date32, DataType::Timestamp(..)) | (DataType::Timestamp(..), DataType::Date32) => {
            return Some(timestamp());
        }
        _ => {}
    }
    if let (Some(ra), Some(rb)) = (numeric_rank(a), numeric_rank(b)) {
        return Some(if ra >= rb { a.clone() } else { b.clone() });
    }
    match (a, b) {
        (DataType::Decimal128(..), DataType::Float32 | DataType::Float64)
        | (DataType::Float32 | DataType::Float64, DataType::Decimal128(..)) => Some(DataType::Float64),
        _ => match (integral_decimal(a), integral_decimal(b)) {
            (Some(x), Some(y)) => Some(wider_decimal(x, y)),
            _ => None,
        },
    }
}

/// Spark's `findWiderTypeForTwo`: [`tightest`], else a string with any atomic type but binary
/// and boolean → string (CASE branches, `coalesce`, `IN` lists).
pub fn wider(a: &DataType, b: &DataType) -> Option<DataType> {
    if let Some(t) = tightest(a, b) {
        return Some(t);
    }
    let atomic = |t: &DataType| is_numeric(t) || is_datetime(t) || is_string(t);
    if (is_string(a) && atomic(b)) || (is_string(b) && atomic(a)) {
        return Some(DataType::Utf8);
    }
    if let (DataType::Struct(fa), DataType::Struct(fb)) = (a, b)
        && fa.len() == fb.len()
    {
        let mut fields = Vec::new();
        for (x, y) in fa.iter().zip(fb.iter()) {
            if !x.name().eq_ignore_ascii_case(y.name()) {
                return None;
            }
            let t = wider(x.data_type(), y.data_type())?;
            fields.push(deltalake::arrow::datatypes::Field::new(x.name(), t, true));
        }
        return Some(DataType::Struct(fields.into()));
    }
    None
}

/// [`wider`] over a list.
pub fn wider_all<'a>(types: impl IntoIterator<Item = &'a DataType>) -> Option<DataType> {
    let mut out = DataType::Null;
    for t in types {
        out = wider(&out, t)?;
    }
    Some(out)
}

/// Spark's `findCommonTypeForBinaryComparison`, then [`tightest`]: a string compared with a
/// number becomes that number (a decimal: double), with a date or timestamp that type.
pub fn comparison(a: &DataType, b: &DataType) -> Option<DataType> {
    match (a, b) {
        (s, DataType::Null) | (DataType::Null, s) if is_string(s) => Some(DataType::Utf8),
        (s, d) | (d, s) if is_string(s) && is_datetime(d) => Some(d.clone()),
        (s, DataType::Decimal128(..)) | (DataType::Decimal128(..), s) if is_string(s) => {
            Some(DataType::Float64)
        }
        (s, t) | (t, s)
            if is_string(s) && !is_string(t) && (is_numeric(t) || matches!(t, DataType::Boolean)) =>
        {
            Some(t.clone())
        }
        _ => tightest(a, b),
    }
}

/// Digits of an integer literal, for Spark's `DecimalType.fromLiteral` (`3` → `DECIMAL(1,0)`).
pub fn literal_decimal(v: i64) -> (u8, i8) {
    let digits = v.unsigned_abs().checked_ilog10().map_or(1, |d| d + 1);
    (digits as u8, 0)
}
