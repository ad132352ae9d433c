//! Expected rows in scenario files, and how they are compared with a table or a batch.
//!
//! An expected row is an inline table of column → value. Only the columns it names are
//! compared; rows form a multiset. Times are written as an offset from the epoch (`"10s"`,
//! `"-1 minute"`) or as an ISO-8601 string; a `window` as `["10s", "15s"]`; doubles match within
//! the scenario's relative tolerance; `"NULL"` matches a null.

use std::collections::BTreeMap;

use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{
    DataType, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
};

use crate::event::{format_timestamp, parse_timestamp};

/// A time in a scenario: ISO-8601, or a duration from the epoch (`"10s"`, `"-5 minutes"`), in µs.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(us) = parse_timestamp(text) {
        return Ok(us);
    }
    let (sign, rest) = match text.trim().strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, text.trim()),
    };
    crate::duration::parse_duration_ms(rest)
        .map(|ms| sign * ms * 1000)
        .map_err(|_| {
            format!(
                "`{text}` is not a time: write an ISO-8601 timestamp or an offset from the epoch like \"10s\""
            )
        })
}

/// A comparable cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// null
    Null,
    /// any integer
    Int(i64),
    /// a double
    Float(f64),
    /// a string
    Str(String),
    /// a timestamp, µs
    Time(i64),
    /// a window, µs
    Window(i64, i64),
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = |t: i64| {
            let s = format_timestamp(t);
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        };
        match self {
            Cell::Null => f.write_str("NULL"),
            Cell::Int(i) => write!(f, "{i}"),
            Cell::Float(x) => write!(f, "{x}"),
            Cell::Str(s) => write!(f, "{s:?}"),
            Cell::Time(t) => f.write_str(&time(*t)),
            Cell::Window(a, b) => write!(f, "[{}, {})", time(*a), time(*b)),
        }
    }
}

/// The cell at `row` of `col`.
pub fn actual_cell(col: &ArrayRef, row: usize) -> Cell {
    if col.is_null(row) {
        return Cell::Null;
    }
    match col.data_type() {
        DataType::Int8 => Cell::Int(i64::from(col.as_primitive::<Int8Type>().value(row))),
        DataType::Int16 => Cell::Int(i64::from(col.as_primitive::<Int16Type>().value(row))),
        DataType::Int32 => Cell::Int(i64::from(col.as_primitive::<Int32Type>().value(row))),
        DataType::Int64 => Cell::Int(col.as_primitive::<Int64Type>().value(row)),
        DataType::Float64 => Cell::Float(col.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Cell::Str(col.as_string::<i32>().value(row).to_string()),
        DataType::Timestamp(..) => Cell::Time(col.as_primitive::<TimestampMicrosecondType>().value(row)),
        DataType::Struct(_) => {
            let s = col.as_struct();
            if s.num_columns() != 2 {
                return Cell::Str(crate::table::cell(col, row));
            }
            match (actual_cell(s.column(0), row), actual_cell(s.column(1), row)) {
                (Cell::Time(a), Cell::Time(b)) => Cell::Window(a, b),
                _ => Cell::Str(crate::table::cell(col, row)),
            }
        }
        _ => Cell::Str(crate::table::cell(col, row)),
    }
}

/// An expected value read for a column of type `t`.
pub fn expected_cell(v: &toml::Value, t: &DataType) -> Result<Cell, String> {
    if v.as_str() == Some("NULL") {
        return Ok(Cell::Null);
    }
    let bad = || format!("`{v}` is not a value for a column of type {t}");
    // A value compared as its show() text: a TOML string as written, anything else as TOML.
    let text = || {
        Cell::Str(match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    Ok(match t {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            Cell::Int(v.as_integer().ok_or_else(bad)?)
        }
        // A decimal as its text with the column's scale ("12.50"), written as a string.
        DataType::Decimal128(..) | DataType::Boolean | DataType::Date32 => text(),
        DataType::Float64 => Cell::Float(
            v.as_float()
                .or_else(|| v.as_integer().map(|i| i as f64))
                .ok_or_else(bad)?,
        ),
        DataType::Utf8 => text(),
        DataType::Timestamp(..) => Cell::Time(parse_time(v.as_str().ok_or_else(bad)?)?),
        DataType::Struct(f)
            if f.len() != 2 || !f.iter().all(|f| matches!(f.data_type(), DataType::Timestamp(..))) =>
        {
            text()
        }
        DataType::Struct(_) => {
            let a = v
                .as_array()
                .filter(|a| a.len() == 2)
                .ok_or_else(|| format!("`{v}` is not a window: write [\"start\", \"end\"]"))?;
            let time = |x: &toml::Value| parse_time(x.as_str().ok_or_else(bad)?);
            Cell::Window(time(&a[0])?, time(&a[1])?)
        }
        // Other types (lists, maps, dates, …) as their show() text, written as a string.
        _ => text(),
    })
}

fn same(a: &Cell, e: &Cell, tol: f64) -> bool {
    match (a, e) {
        (Cell::Float(x), Cell::Float(y)) => {
            (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= tol * y.abs().max(x.abs()).max(1.0)
        }
        _ => a == e,
    }
}

/// Expected rows as cells, checked against `batch`'s columns.
pub fn expected_rows(
    batch: &RecordBatch,
    rows: &[BTreeMap<String, toml::Value>],
) -> Result<Vec<BTreeMap<String, Cell>>, String> {
    let schema = batch.schema();
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|(k, v)| {
                    let field = schema.field_with_name(k).map_err(|_| {
                        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                        format!("unknown column `{k}`; the rows have {}", names.join(", "))
                    })?;
                    Ok((k.clone(), expected_cell(v, field.data_type())?))
                })
                .collect()
        })
        .collect()
}

fn render(row: &BTreeMap<String, Cell>) -> String {
    let parts: Vec<String> = row.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    format!("{{ {} }}", parts.join(", "))
}

/// Renders `batch` as rows of the named columns (all when `columns` is empty).
pub fn actual_rows(batch: &RecordBatch, columns: &[String]) -> Vec<BTreeMap<String, Cell>> {
    let schema = batch.schema();
    let cols: Vec<(String, &ArrayRef)> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, _)| columns.is_empty() || columns.contains(f.name()))
        .map(|(f, c)| (f.name().clone(), c))
        .collect();
    (0..batch.num_rows())
        .map(|r| cols.iter().map(|(n, c)| (n.clone(), actual_cell(c, r))).collect())
        .collect()
}

/// Compares `batch` with the expected rows as multisets; `Err` holds the difference in both
/// directions, or an unknown-column message.
pub fn compare(
    batch: &RecordBatch,
    expected: &[BTreeMap<String, toml::Value>],
    tol: f64,
) -> Result<(), String> {
    let want = expected_rows(batch, expected)?;
    let mut columns: Vec<String> = want.iter().flat_map(|r| r.keys().cloned()).collect();
    columns.sort();
    columns.dedup();
    let have = actual_rows(batch, &columns);
    let mut used = vec![false; have.len()];
    let mut missing = Vec::new();
    for w in &want {
        let found = have
            .iter()
            .enumerate()
            .position(|(i, h)| !used[i] && w.iter().all(|(k, v)| h.get(k).is_some_and(|a| same(a, v, tol))));
        match found {
            Some(i) => used[i] = true,
            None => missing.push(render(w)),
        }
    }
    let unexpected: Vec<String> = have
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(h, _)| render(h))
        .collect();
    if missing.is_empty() && unexpected.is_empty() {
        return Ok(());
    }
    let mut msg = format!("expected {} row(s), found {}\n", want.len(), have.len());
    if !missing.is_empty() {
        msg.push_str("  expected but not found:\n");
        missing.iter().for_each(|m| msg.push_str(&format!("    - {m}\n")));
    }
    if !unexpected.is_empty() {
        msg.push_str("  found but not expected:\n");
        unexpected
            .iter()
            .for_each(|m| msg.push_str(&format!("    + {m}\n")));
    }
    Err(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_or_offsets() {
        assert_eq!(parse_time("10s"), Ok(10_000_000));
        assert_eq!(parse_time("-1 minute"), Ok(-60_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:10"), Ok(10_000_000));
        assert!(parse_time("soon").is_err());
    }
}
