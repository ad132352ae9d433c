//! JSON lines → Arrow rows of the event schema, and rejected records for everything else.
//!
//! One JSON object per line, as Spark's JSON source reads it (`multiLine=false`). Blank or
//! whitespace-only lines produce nothing (R6.2). Unknown fields are ignored (R6.5). Where Spark's
//! PERMISSIVE mode would emit a row of nulls for a bad record (R6.3, R6.4), we reject it instead:
//! the record goes to the rejects table with its file, line, raw text and a reason, and the good
//! lines of the same file still flow. A record is bad when
//! - the line is not valid UTF-8, or not a JSON object;
//! - a field is missing or `null` (every event field is required);
//! - a field has the wrong type: `user_id` must be a JSON integer within `int`, `value` a JSON
//!   number (or `"NaN"`/`"Infinity"`/`"-Infinity"`, which Spark also accepts), `timestamp` an
//!   ISO-8601 string or an integer number of seconds since the epoch (Spark's two forms);
//!   `event_id` and `event_type` take any non-null value, a non-string kept as its JSON text
//!   (Spark's rule for string columns).

use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, Float64Builder, Int32Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use deltalake::arrow::datatypes::SchemaRef;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::event::{Micros, event_schema, parse_timestamp};

/// Raw text kept per rejected record, at most (longer lines are cut; `raw_bytes` keeps the size).
pub const MAX_RAW_BYTES: usize = 64 * 1024;

/// A record that did not become a row, with enough context to find and fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Input file name, relative to the input folder.
    pub file: String,
    /// 1-based line number in the file (0 when the whole file is concerned).
    pub line: u64,
    /// The line's text (invalid UTF-8 replaced by U+FFFD), cut to [`MAX_RAW_BYTES`].
    pub raw: String,
    /// The line's full length in bytes.
    pub raw_bytes: u64,
    /// Why it was rejected.
    pub reason: String,
}

impl Rejected {
    /// A rejection of raw bytes `raw` at `file:line`.
    pub fn new(file: &str, line: u64, raw: &[u8], reason: String) -> Self {
        let cut = &raw[..raw.len().min(MAX_RAW_BYTES)];
        Self {
            file: file.to_string(),
            line,
            raw: String::from_utf8_lossy(cut).into_owned(),
            raw_bytes: raw.len() as u64,
            reason,
        }
    }
}

/// Builds event rows column by column.
#[derive(Debug, Default)]
pub struct EventBuilder {
    event_id: StringBuilder,
    timestamp: TimestampMicrosecondBuilder,
    user_id: Int32Builder,
    event_type: StringBuilder,
    value: Float64Builder,
    rows: usize,
}

impl EventBuilder {
    /// A builder sized for the lines of `pieces` (one row each at most, strings no longer than
    /// a quarter of the text each), so its columns never grow by copying; room not used is
    /// never touched, so it costs address space, not memory.
    pub fn for_text(pieces: &[Piece<'_>]) -> Self {
        let bytes: usize = pieces.iter().map(|p| p.bytes.len()).sum();
        let rows: usize = pieces
            .iter()
            .map(|p| memchr::memchr_iter(b'\n', p.bytes).count() + 1)
            .sum();
        EventBuilder {
            event_id: StringBuilder::with_capacity(rows, bytes / 4),
            timestamp: TimestampMicrosecondBuilder::with_capacity(rows),
            user_id: Int32Builder::with_capacity(rows),
            event_type: StringBuilder::with_capacity(rows, bytes / 4),
            value: Float64Builder::with_capacity(rows),
            rows: 0,
        }
    }

    /// Rows appended so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when no row was appended.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one event.
    pub fn append(&mut self, event_id: &str, ts: Micros, user_id: i32, event_type: &str, value: f64) {
        self.event_id.append_value(event_id);
        self.timestamp.append_value(ts);
        self.user_id.append_value(user_id);
        self.event_type.append_value(event_type);
        self.value.append_value(value);
        self.rows += 1;
    }

    /// The rows as one record batch of [`event_schema`].
    pub fn finish(mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.timestamp.finish().with_timezone("UTC")),
            Arc::new(self.user_id.finish()),
            Arc::new(self.event_type.finish()),
            Arc::new(self.value.finish()),
        ];
        // The five columns match the schema's five fields in type, nullability and length.
        RecordBatch::try_new(event_schema(), columns).expect("event columns match the event schema")
    }
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow)]
    event_id: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a RawValue>,
    #[serde(borrow)]
    user_id: Option<&'a RawValue>,
    #[serde(borrow)]
    event_type: Option<&'a RawValue>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
}

fn required<'a>(v: Option<&'a str>, name: &str) -> Result<&'a str, String> {
    v.ok_or_else(|| format!("missing or null field `{name}`"))
}

/// The event's five fields' text (`None`: missing or `null`), in the schema's order.
type EventFields<'a> = [Option<&'a str>; 5];

/// The five fields of a line the flat scanner read, or `None` to let serde_json read it (a
/// repeated field, which serde_json rejects with its reason).
fn scanned_fields(line: &str) -> Option<EventFields<'_>> {
    let mut fields: EventFields<'_> = [None; 5];
    let mut seen = [false; 5];
    let read = crate::source::flat::scan(line, |key, value| {
        let i = match key {
            "event_id" => 0,
            "timestamp" => 1,
            "user_id" => 2,
            "event_type" => 3,
            "value" => 4,
            _ => return true,
        };
        // serde reads `null` into an `Option` as `None`.
        fields[i] = (value != "null").then_some(value);
        !std::mem::replace(&mut seen[i], true)
    });
    read.then_some(fields)
}

/// The five fields by serde_json, which gives the reason when the line is not an event object.
fn parsed_fields(line: &str) -> Result<EventFields<'_>, String> {
    let ev: RawEvent = serde_json::from_str(line).map_err(|e| not_an_event(line, &e))?;
    Ok([ev.event_id, ev.timestamp, ev.user_id, ev.event_type, ev.value].map(|v| v.map(RawValue::get)))
}

/// The text of `raw`, a JSON string the line's parse validated already: without escapes it is
/// what lies between the quotes, with no second parse.
pub(crate) fn unquoted(raw: &str) -> Option<&str> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    (!inner.contains('\\')).then_some(inner)
}

fn string_field<'a>(raw: &'a str, name: &str) -> Result<std::borrow::Cow<'a, str>, String> {
    if let Some(text) = unquoted(raw) {
        Ok(std::borrow::Cow::Borrowed(text))
    } else if raw.starts_with('"') {
        serde_json::from_str::<std::borrow::Cow<'a, str>>(raw).map_err(|e| format!("field `{name}`: {e}"))
    } else {
        Ok(std::borrow::Cow::Borrowed(raw))
    }
}

/// A valid JSON number that is an integer in digits only: read without a second JSON parse.
fn plain_integer(raw: &str) -> Option<i64> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

fn int_field(raw: &str, name: &str) -> Result<i32, String> {
    if let Some(n) = plain_integer(raw) {
        return i32::try_from(n).map_err(|_| format!("field `{name}` = {n} is out of range for int"));
    }
    let n: i64 = serde_json::from_str(raw)
        .map_err(|_| format!("field `{name}` must be a JSON integer, found `{}`", short(raw)))?;
    i32::try_from(n).map_err(|_| format!("field `{name}` = {n} is out of range for int"))
}

fn double_field(raw: &str, name: &str) -> Result<f64, String> {
    // A valid JSON number (the line's parse checked it), read correctly rounded as the
    // general decoder and Spark's Jackson read it; out of range goes on to the reason below.
    if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit())
        && let Ok(v) = raw.parse::<f64>()
        && v.is_finite()
    {
        return Ok(v);
    }
    if raw.starts_with('"') {
        let s: String = serde_json::from_str(raw).map_err(|e| format!("field `{name}`: {e}"))?;
        return match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" | "+Infinity" | "INF" | "+INF" => Ok(f64::INFINITY),
            "-Infinity" | "-INF" => Ok(f64::NEG_INFINITY),
            _ => Err(format!(
                "field `{name}` must be a number, found string `{}`",
                short(raw)
            )),
        };
    }
    serde_json::from_str::<f64>(raw).map_err(|e| {
        if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            format!("field `{name}` = {}: {e}", short(raw))
        } else {
            format!("field `{name}` must be a number, found `{}`", short(raw))
        }
    })
}

fn timestamp_field(raw: &str, name: &str) -> Result<Micros, String> {
    if let Some(s) = unquoted(raw) {
        return parse_timestamp(s).map_err(|e| format!("field `{name}`: {e}"));
    }
    if raw.starts_with('"') {
        let s: std::borrow::Cow<str> =
            serde_json::from_str(raw).map_err(|e| format!("field `{name}`: {e}"))?;
        return parse_timestamp(&s).map_err(|e| format!("field `{name}`: {e}"));
    }
    // Spark reads an integer timestamp as seconds since the epoch.
    let secs: i64 = serde_json::from_str(raw).map_err(|_| {
        format!(
            "field `{name}` must be an ISO-8601 string or integer seconds, found `{}`",
            short(raw)
        )
    })?;
    secs.checked_mul(1_000_000)
        .ok_or_else(|| format!("field `{name}` = {secs} seconds is out of range"))
}

fn short(raw: &str) -> String {
    const MAX: usize = 80;
    if raw.len() <= MAX {
        raw.to_string()
    } else {
        let mut end = MAX;
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &raw[..end])
    }
}

/// Why a line did not deserialize as an event object, in plain words: serde's own text names
/// our internal types (`struct RawEvent with 5 elements`) and repeats the line number.
fn not_an_event(line: &str, e: &serde_json::Error) -> String {
    let kind = match line.trim_start().as_bytes().first() {
        Some(b'{') => None,
        Some(b'[') => Some("a JSON array"),
        Some(b'"') => Some("a JSON string"),
        Some(b't' | b'f') => Some("a JSON boolean"),
        Some(b'n') => Some("JSON null"),
        Some(b'-' | b'0'..=b'9') => Some("a JSON number"),
        _ => None,
    };
    if let (Some(kind), true) = (kind, e.is_data()) {
        return format!("not a JSON object: the line is {kind}; one event object per line is expected");
    }
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text);
    let text = text.replace("struct RawEvent with 5 elements", "an event object");
    if e.is_data() {
        format!("not an event object: {text} (column {})", e.column())
    } else {
        format!("malformed JSON at column {}: {text}", e.column())
    }
}

fn parse_line(line: &str, out: &mut EventBuilder) -> Result<(), String> {
    let [event_id, ts, user_id, event_type, value] = match scanned_fields(line) {
        Some(fields) => fields,
        None => parsed_fields(line)?,
    };
    let event_id = string_field(required(event_id, "event_id")?, "event_id")?;
    let ts = timestamp_field(required(ts, "timestamp")?, "timestamp")?;
    let user_id = int_field(required(user_id, "user_id")?, "user_id")?;
    let event_type = string_field(required(event_type, "event_type")?, "event_type")?;
    let value = double_field(required(value, "value")?, "value")?;
    out.append(&event_id, ts, user_id, &event_type, value);
    Ok(())
}

/// Parses the bytes of one JSON-lines file named `file`, appending good rows to `out` and
/// bad records to `rejects`. Returns the number of records (non-blank lines) seen.
pub fn parse_json_lines(
    file: &str,
    bytes: &[u8],
    out: &mut EventBuilder,
    rejects: &mut Vec<Rejected>,
) -> u64 {
    parse_json_lines_from(file, bytes, 1, out, rejects)
}

/// [`parse_json_lines`] for a piece of a file whose first line is line `first_line`.
pub fn parse_json_lines_from(
    file: &str,
    bytes: &[u8],
    first_line: u64,
    out: &mut EventBuilder,
    rejects: &mut Vec<Rejected>,
) -> u64 {
    let mut records = 0;
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
    let mut start = 0;
    for (i, end) in ends.enumerate() {
        let mut line = &bytes[start..end];
        start = end + 1;
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        records += 1;
        let line_no = i as u64 + first_line;
        let result = match std::str::from_utf8(line) {
            Ok(text) => parse_line(text, out),
            Err(e) => Err(format!("invalid UTF-8 at byte {}", e.valid_up_to())),
        };
        if let Err(reason) = result {
            rejects.push(Rejected::new(file, line_no, line, reason));
        }
    }
    records
}

/// One piece of parsing work: part of a file, with the number of its first line.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    /// File name.
    pub file: &'a str,
    /// The bytes (whole lines).
    pub bytes: &'a [u8],
    /// Line number of the first line.
    pub first_line: u64,
}

/// Cuts a file into pieces of about `target` bytes at line boundaries.
pub fn pieces<'a>(file: &'a str, bytes: &'a [u8], target: usize) -> Vec<Piece<'a>> {
    let mut out = Vec::new();
    let (mut start, mut line) = (0usize, 1u64);
    while start < bytes.len() {
        let mut end = (start + target.max(1)).min(bytes.len());
        if end < bytes.len() && bytes[end - 1] != b'\n' {
            end = memchr::memchr(b'\n', &bytes[end..]).map_or(bytes.len(), |i| end + i + 1);
        }
        let piece = &bytes[start..end];
        out.push(Piece {
            file,
            bytes: piece,
            first_line: line,
        });
        line += memchr::memchr_iter(b'\n', piece).count() as u64;
        start = end;
    }
    out
}

/// What parsing some pieces produced.
#[derive(Debug)]
pub struct Parsed {
    /// Good rows, in piece order.
    pub rows: RecordBatch,
    /// Rejected records, in piece order.
    pub rejects: Vec<Rejected>,
    /// Records seen.
    pub records: u64,
}

impl Parsed {
    /// The parts of one decode, in order, as one: rows concatenated, rejects and record counts
    /// kept in order. Every part must have `schema`.
    pub fn join(schema: &SchemaRef, parts: Vec<Parsed>) -> Parsed {
        let batches: Vec<RecordBatch> = parts.iter().map(|p| p.rows.clone()).collect();
        // Every part was built by one decoder, for its schema.
        let rows = deltalake::arrow::compute::concat_batches(schema, &batches).expect("same schema");
        let mut rejects = Vec::new();
        let mut records = 0;
        for p in parts {
            rejects.extend(p.rejects);
            records += p.records;
        }
        Parsed {
            rows,
            rejects,
            records,
        }
    }
}

/// Decoded parts of a batch kept apart: their rows in order, and their rejects and record
/// counts together.
#[derive(Debug)]
pub struct Parts {
    /// Each part's rows, in order (empty parts left out).
    pub rows: Vec<RecordBatch>,
    /// The rejected records, in order.
    pub rejects: Vec<Rejected>,
    /// Records seen.
    pub records: u64,
}

impl Parts {
    /// The parts' rows, rejects and counts.
    pub fn of(parts: Vec<Parsed>) -> Self {
        let mut out = Parts {
            rows: Vec::with_capacity(parts.len()),
            rejects: Vec::new(),
            records: 0,
        };
        for p in parts {
            if p.rows.num_rows() > 0 {
                out.rows.push(p.rows);
            }
            out.rejects.extend(p.rejects);
            out.records += p.records;
        }
        out
    }
}

/// [`run_split`](crate::parallel::run_split) over pieces, by their bytes: one thread for less than 256 KiB.
pub(crate) fn run_split_pieces<'p, T: Send>(
    pieces: &'p [Piece<'p>],
    threads: usize,
    run: impl Fn(&'p [Piece<'p>]) -> T + Sync,
) -> Vec<T> {
    crate::parallel::run_split(pieces, threads, |p| p.bytes.len(), 256 * 1024, run)
}

/// Parses `pieces` on up to `threads` threads, each taking a contiguous run of pieces, and
/// joins the results in order: rows, rejects and line numbers are exactly those of a
/// sequential parse.
pub fn parse_pieces(pieces: &[Piece<'_>], threads: usize) -> Parsed {
    let run = |ps: &[Piece<'_>]| {
        let mut b = EventBuilder::for_text(ps);
        let mut rejects = Vec::new();
        let records = ps
            .iter()
            .map(|p| parse_json_lines_from(p.file, p.bytes, p.first_line, &mut b, &mut rejects))
            .sum::<u64>();
        Parsed {
            rows: b.finish(),
            rejects,
            records,
        }
    };
    Parsed::join(&event_schema(), run_split_pieces(pieces, threads, run))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::array::{AsArray, Float64Array, Int32Array};
    use deltalake::arrow::datatypes::TimestampMicrosecondType;

    fn parse(text: &[u8]) -> (RecordBatch, Vec<Rejected>, u64) {
        let mut b = EventBuilder::default();
        let mut rej = Vec::new();
        let n = parse_json_lines("f.json", text, &mut b, &mut rej);
        (b.finish(), rej, n)
    }

    #[test]
    fn parallel_pieces_equal_a_sequential_parse() {
        let mut text = String::new();
        for i in 0..5000 {
            if i % 97 == 0 {
                text.push_str("{broken\n");
            } else if i % 89 == 0 {
                text.push('\n');
            } else {
                text.push_str(&format!(
                    "{{\"event_id\":\"e{i}\",\"timestamp\":\"2026-11-24T10:00:00\",\"user_id\":{i},\"event_type\":\"click\",\"value\":1.5}}\n"
                ));
            }
        }
        let (seq_rows, seq_rej, seq_n) = parse(text.as_bytes());
        for (target, threads) in [(1000, 2), (50_000, 2), (1 << 20, 1), (7, 3)] {
            let ps = pieces("f.json", text.as_bytes(), target);
            let p = parse_pieces(&ps, threads);
            assert_eq!(p.rows, seq_rows, "{target} {threads}");
            assert_eq!(p.rejects, seq_rej);
            assert_eq!(p.records, seq_n);
        }
    }

    #[test]
    fn good_lines_become_rows() {
        let (batch, rej, n) = parse(
            b"{\"event_id\":\"a\",\"timestamp\":\"2026-11-24T10:00:00.000001\",\"user_id\":7,\"event_type\":\"click\",\"value\":12.5}\n\
              \n   \r\n\
              {\"event_id\":\"b\",\"timestamp\":\"2026-11-24T11:00:00+01:00\",\"user_id\":8,\"event_type\":\"view\",\"value\":3,\"extra\":{\"x\":[1]}}",
        );
        assert!(rej.is_empty(), "{rej:?}");
        assert_eq!(n, 2);
        assert_eq!(batch.num_rows(), 2);
        let ts = batch.column(1).as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts.value(0), 1_795_514_400_000_001);
        assert_eq!(ts.value(1), 1_795_514_400_000_000);
        let uid = batch.column(2).as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!(uid.values(), &[7, 8]);
        let v = batch.column(4).as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(v.values(), &[12.5, 3.0]);
    }

    #[test]
    fn bad_lines_are_rejected_with_line_and_reason() {
        let good = br#"{"event_id":"ok","timestamp":"2026-11-24T10:00:00","user_id":1,"event_type":"click","value":1.0}"#;
        let cases: Vec<(&[u8], &str)> = vec![
            (b"{not json", "malformed JSON"),
            (b"[1,2,3]", "not a JSON object: the line is a JSON array"),
            (b"42", "not a JSON object: the line is a JSON number"),
            (br#"{"event_id":"x","timestamp":"2026-11-24T10:00:00","event_type":"click","value":1}"#, "missing or null field `user_id`"),
            (br#"{"event_id":"x","timestamp":null,"user_id":1,"event_type":"click","value":1}"#, "missing or null field `timestamp`"),
            (br#"{"event_id":"x","timestamp":"2026-11-24T10:00:00","user_id":"5","event_type":"click","value":1}"#, "must be a JSON integer"),
            (br#"{"event_id":"x","timestamp":"2026-11-24T10:00:00","user_id":3000000000,"event_type":"click","value":1}"#, "out of range for int"),
            (br#"{"event_id":"x","timestamp":"2026-11-24T10:00:00","user_id":1.5,"event_type":"click","value":1}"#, "must be a JSON integer"),
            (br#"{"event_id":"x","timestamp":"soon","user_id":1,"event_type":"click","value":1}"#, "not an ISO-8601 timestamp"),
            (br#"{"event_id":"x","timestamp":"2026-11-24T10:00:00","user_id":1,"event_type":"click","value":"abc"}"#, "must be a number"),
            (br#"{"event_id":"x","timestamp":"2026-11-24T10:00:00","user_id":1,"event_type":"click","value":1e999}"#, "field `value`"),
            (b"{\"event_id\":\"\xff\xfe\",\"user_id\":1}", "invalid UTF-8 at byte 13"),
        ];
        for (line, want) in cases {
            let mut text = good.to_vec();
            text.push(b'\n');
            text.extend_from_slice(line);
            text.push(b'\n');
            text.extend_from_slice(good);
            let (batch, rej, n) = parse(&text);
            assert_eq!(n, 3);
            assert_eq!(batch.num_rows(), 2, "good rows still flow around {line:?}");
            assert!(!rej[0].reason.contains("RawEvent"), "{}", rej[0].reason);
            assert_eq!(rej.len(), 1, "{line:?}");
            assert_eq!(rej[0].line, 2);
            assert_eq!(rej[0].file, "f.json");
            assert!(
                rej[0].reason.contains(want),
                "{:?} should say {want:?}",
                rej[0].reason
            );
            assert_eq!(rej[0].raw_bytes, line.len() as u64);
        }
    }

    #[test]
    fn spark_token_rules_for_strings_timestamps_and_doubles() {
        let (batch, rej, _) = parse(
            br#"{"event_id":17,"timestamp":1795514400,"user_id":1,"event_type":"click","value":"NaN"}"#,
        );
        assert!(rej.is_empty(), "{rej:?}");
        assert_eq!(batch.column(0).as_string::<i32>().value(0), "17");
        assert_eq!(
            batch
                .column(1)
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            1_795_514_400_000_000
        );
        assert!(
            batch
                .column(4)
                .as_primitive::<deltalake::arrow::datatypes::Float64Type>()
                .value(0)
                .is_nan()
        );
    }

    /// The shortcuts that skip a second JSON parse of a field read what that parse reads, and
    /// leave every value they do not read (escapes, exponents, out of range) to it and its
    /// reasons.
    #[test]
    fn field_shortcuts_read_as_the_json_parser() {
        for raw in [
            r#""b00000-009572""#,
            r#""""#,
            r#""a\"b""#,
            r#""\u00e9t\u00e9""#,
            r#""x\\""#,
        ] {
            let want: String = serde_json::from_str(raw).unwrap();
            assert_eq!(string_field(raw, "f").unwrap(), want, "{raw}");
        }
        for raw in ["0", "-7", "2147483647", "-2147483648"] {
            let want: i64 = serde_json::from_str(raw).unwrap();
            assert_eq!(int_field(raw, "f").unwrap() as i64, want, "{raw}");
        }
        let int_reason = |raw: &str| int_field(raw, "user_id").unwrap_err();
        assert!(int_reason("2147483648").contains("out of range for int"));
        assert!(int_reason("99999999999999999999").contains("must be a JSON integer"));
        assert!(int_reason("1.0").contains("must be a JSON integer"));
        assert!(int_reason("1e3").contains("must be a JSON integer"));
        for raw in [
            "650.61",
            "0",
            "-0",
            "1e3",
            "-2.5E-3",
            "0.1",
            "9007199254740993",
            "2.2250738585072014e-308",
        ] {
            let v = double_field(raw, "f").unwrap();
            assert_eq!(v.to_bits(), raw.parse::<f64>().unwrap().to_bits(), "{raw}");
        }
        assert!(double_field("1e400", "value").unwrap_err().contains("1e400"));
        for raw in [r#""2026-11-24T10:00:26.953758""#, r#""2026-11-24T10:00:26Z""#] {
            let text: String = serde_json::from_str(raw).unwrap();
            assert_eq!(
                timestamp_field(raw, "t").unwrap(),
                parse_timestamp(&text).unwrap(),
                "{raw}"
            );
        }
        assert_eq!(
            timestamp_field(r#""2026-11-24\u005410:00:26""#, "t").unwrap(),
            parse_timestamp("2026-11-24T10:00:26").unwrap()
        );
    }

    #[test]
    fn deep_nesting_and_huge_lines_are_rejected_not_fatal() {
        let deep = format!("{{\"event_id\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        let huge = format!("{{\"event_id\":\"{}\"", "x".repeat(10 * 1024 * 1024));
        for line in [deep, huge] {
            let (batch, rej, _) = parse(line.as_bytes());
            assert_eq!(batch.num_rows(), 0);
            assert_eq!(rej.len(), 1);
            assert!(rej[0].raw.len() <= MAX_RAW_BYTES);
            assert_eq!(rej[0].raw_bytes, line.len() as u64);
        }
    }
}
