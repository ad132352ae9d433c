//! The seed's event record: its Arrow schema and its timestamp text format.
//!
//! Event time is carried as microseconds since the Unix epoch, UTC (Spark's `timestamp`), in an
//! Arrow `Timestamp(Microsecond, "UTC")` column, which Delta stores as `timestamp`.

use std::sync::{Arc, LazyLock};

use chrono::{DateTime, NaiveDate};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

/// Column names of the event schema, in order.
pub const EVENT_ID: &str = "event_id";
/// Event time column.
pub const TIMESTAMP: &str = "timestamp";
/// User id column (int, joins with the users table).
pub const USER_ID: &str = "user_id";
/// Event type column (click | view | purchase from the generator; any string is accepted).
pub const EVENT_TYPE: &str = "event_type";
/// Event value column (double).
pub const VALUE: &str = "value";

/// The Arrow type of every event-time column: microseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

static EVENT_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    // Nullable like every column of a Spark streaming file source (R5.9); the source never
    // produces nulls, because a record missing a field is rejected instead.
    Arc::new(Schema::new(vec![
        Field::new(EVENT_ID, DataType::Utf8, true),
        Field::new(TIMESTAMP, timestamp_type(), true),
        Field::new(USER_ID, DataType::Int32, true),
        Field::new(EVENT_TYPE, DataType::Utf8, true),
        Field::new(VALUE, DataType::Float64, true),
    ]))
});

/// The schema of the input events and of the `events` table.
pub fn event_schema() -> SchemaRef {
    EVENT_SCHEMA.clone()
}

/// Formats event time as the generator writes it: `YYYY-MM-DDTHH:MM:SS.ffffff`, no zone (UTC).
pub fn format_timestamp(ts: Micros) -> String {
    match DateTime::from_timestamp_micros(ts) {
        Some(dt) => dt.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        None => format!("<out-of-range timestamp {ts}µs>"),
    }
}

/// Why a timestamp string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an ISO-8601 timestamp (YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|±HH:MM]): {why}")]
pub struct TimestampError {
    /// The text that failed.
    pub text: String,
    /// What was wrong with it.
    pub why: &'static str,
}

/// Parses `YYYY-MM-DD[T| ]HH:MM[:SS[.f{1,9}]][Z|z|±HH[:MM|MM]]` to epoch microseconds.
///
/// A timestamp without a zone is UTC (the generator's format); one with `Z` or an offset is
/// converted to UTC. Fractions beyond microseconds are truncated, as Spark does.
pub fn parse_timestamp(text: &str) -> Result<Micros, TimestampError> {
    let err = |why| TimestampError {
        text: text.to_string(),
        why,
    };
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0u32, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0'))
        })
    };
    let year = num(0..4).ok_or_else(|| err("bad year"))?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(err("expected `-` between year, month and day"));
    }
    let month = num(5..7).ok_or_else(|| err("bad month"))?;
    let day = num(8..10).ok_or_else(|| err("bad day"))?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return Err(err("expected `T` or a space after the date"));
    }
    let hour = num(11..13).ok_or_else(|| err("bad hour"))?;
    if b.get(13) != Some(&b':') {
        return Err(err("expected `:` after the hour"));
    }
    let minute = num(14..16).ok_or_else(|| err("bad minute"))?;
    let mut pos = 16;
    let mut second = 0;
    if b.get(pos) == Some(&b':') {
        second = num(17..19).ok_or_else(|| err("bad second"))?;
        pos = 19;
    }
    let mut frac_us: i64 = 0;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            if pos - start < 6 {
                frac_us = frac_us * 10 + i64::from(b[pos] - b'0');
            }
            pos += 1;
        }
        let n = pos - start;
        if n == 0 || n > 9 {
            return Err(err("the fraction of a second needs 1 to 9 digits"));
        }
        for _ in n..6 {
            frac_us *= 10;
        }
    }
    let offset_s: i64 = match b.get(pos) {
        None => 0,
        Some(b'Z' | b'z') if pos + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let hh = num(pos + 1..pos + 3).ok_or_else(|| err("bad zone offset"))?;
            let rest = &b[pos + 3..];
            let mm = match rest {
                [] => 0,
                [b':', _, _] => num(pos + 4..pos + 6).ok_or_else(|| err("bad zone offset"))?,
                [_, _] => num(pos + 3..pos + 5).ok_or_else(|| err("bad zone offset"))?,
                _ => return Err(err("bad zone offset")),
            };
            if hh > 18 || mm > 59 {
                return Err(err("zone offset out of range"));
            }
            let s = i64::from(hh * 3600 + mm * 60);
            if sign == b'+' { s } else { -s }
        }
        Some(_) => return Err(err("unexpected text after the time")),
    };
    let date = NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(|| err("no such date"))?;
    let time = date
        .and_hms_opt(hour, minute, second)
        .ok_or_else(|| err("no such time of day"))?;
    let secs = time.and_utc().timestamp() - offset_s;
    Ok(secs * 1_000_000 + frac_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Micros = 1_795_514_400_000_000; // 2026-11-24T10:00:00Z

    #[test]
    fn parses_the_generator_format_as_utc() {
        assert_eq!(parse_timestamp("2026-11-24T10:00:00.000000"), Ok(BASE));
        assert_eq!(parse_timestamp("2026-11-24T10:00:00.123456"), Ok(BASE + 123_456));
        assert_eq!(format_timestamp(BASE + 123_456), "2026-11-24T10:00:00.123456");
    }

    #[test]
    fn converts_zones_and_truncates_nanos() {
        assert_eq!(parse_timestamp("2026-11-24T10:00:00Z"), Ok(BASE));
        assert_eq!(parse_timestamp("2026-11-24T11:30:00+01:30"), Ok(BASE));
        assert_eq!(parse_timestamp("2026-11-24T05:00:00-0500"), Ok(BASE));
        assert_eq!(parse_timestamp("2026-11-24 12:00:00+02"), Ok(BASE));
        assert_eq!(parse_timestamp("2026-11-24T10:00:00.1234567"), Ok(BASE + 123_456));
        assert_eq!(parse_timestamp("2026-11-24T10:00"), Ok(BASE));
        assert_eq!(parse_timestamp("1969-12-31T23:59:59.5"), Ok(-500_000));
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00",
            "2026-02-30T00:00:00",
            "2026-11-24T25:00:00",
            "2026-11-24T10:00:00.",
            "2026-11-24T10:00:00 junk",
            "2026-11-24T10:00:00+25:00",
            "2026-11-24",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
