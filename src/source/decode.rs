//! JSON lines → Arrow rows of any schema, following Spark's JSON source (`JacksonParser`).
//!
//! One JSON object per line (`multiLine=false`); blank lines produce nothing (R6.2); unknown
//! fields are ignored and field names match case-sensitively (R6.5); a missing field or a JSON
//! `null` is a null value (R6.5) — unless the column is `NOT NULL`, when the record is rejected.
//!
//! Where Spark would emit a row of nulls or a row with some fields null (PERMISSIVE, R6.3,
//! R6.4), this engine never makes up nulls: the record is rejected — it goes to the rejects table
//! with its file, line, raw text and a reason naming the column — and the other lines flow on.
//!
//! Conversions, by declared type (Spark's `makeConverter`):
//! - `string`: any non-null value; a non-string is kept as its JSON text, without the blanks
//!   between tokens (numbers are kept as written; Spark re-prints them through Java's number
//!   formatting, so `1.50` is `1.5` there).
//! - `boolean`: `true` or `false` only.
//! - `tinyint`…`bigint`: a JSON integer within the type's range (a fraction, an exponent or a
//!   string is a mismatch; out of range is a reject naming the value and the range).
//! - `float`, `double`: any JSON number, or (with `allowNonNumericNumbers`, the default) the
//!   strings `NaN`, `Infinity`, `+Infinity`, `+INF`, `-Infinity`, `-INF`. A number too large for
//!   the type is rejected (Jackson would read it as infinity; the seed's parser rejects it too).
//! - `decimal(p,s)`: a JSON number or a numeric string (commas are dropped, as Spark's en-US
//!   parser does; an exponent is allowed). More fraction digits than `s` are rounded HALF_UP, as
//!   Spark's `Decimal.set` does; more than `p` digits after rounding is rejected (Spark: null).
//! - `date`: a string in `dateFormat`, else Spark's default forms (`yyyy-MM-dd`, `yyyy-M-d`,
//!   `yyyy-MM`, `yyyy`, anything after `T` or a space ignored, or a whole number of days).
//! - `timestamp`: a string in `timestampFormat`, else ISO-8601 (`T` or space, optional fraction
//!   and zone, UTC without one) or a date alone; or a JSON integer of seconds since the epoch.
//! - `timestamp_ntz`: a string in `timestampNTZFormat`, else ISO-8601 without a zone.
//! - `binary`: a base64 string (Jackson's `getBinaryValue`; padding optional, blanks ignored).
//! - `struct`: a JSON object, recursively; `array`: a JSON array; `map`: a JSON object, whose
//!   keys are the map's keys (a non-string key type reads the key text as that type); a key
//!   given twice is rejected (Spark's default `mapKeyDedupPolicy=EXCEPTION`).
//!
//! A line that is not a JSON object is rejected; Spark would read a top-level array of objects
//! as several rows, which this engine does not do (one line, one record). JSON extensions that
//! Spark can enable (single quotes, comments, unquoted names, leading zeros, bare `NaN`) are
//! malformed JSON here, and the options that would enable them are refused.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, MapArray, PrimitiveArray, RecordBatch, RecordBatchOptions,
    StringArray, StructArray,
};
use deltalake::arrow::buffer::{Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use deltalake::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, FieldRef, Fields, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::datetime::{
    DateTimePattern, PatternError, parse_default_date, parse_default_timestamp, parse_default_timestamp_ntz,
};
use super::parse::{self, Parsed, Piece, Rejected, run_split_pieces};
use crate::event::event_schema;
use crate::schema::SchemaError;

/// What to do with a record that cannot become a row (Spark's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Spark: a row of nulls (or partial nulls). Here: the record is rejected, with its reason,
    /// and the batch goes on.
    #[default]
    Permissive,
    /// Spark: the record is dropped silently. Here: the same as `Permissive` — the record is
    /// not a row, and it is still listed in the rejects table, so nothing is lost unseen.
    DropMalformed,
    /// Spark: the query fails on the first bad record. Here too: the batch fails with an error
    /// naming the first rejected record's file, line and reason, before anything is written.
    FailFast,
}

/// How the JSON source reads values (the Spark reader options this engine implements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonOptions {
    /// `timestampFormat`; `None`: ISO-8601 and Spark's fallback forms.
    pub timestamp_format: Option<DateTimePattern>,
    /// `timestampNTZFormat`; `None`: ISO-8601 without a zone.
    pub timestamp_ntz_format: Option<DateTimePattern>,
    /// `dateFormat`; `None`: `yyyy-MM-dd` and Spark's fallback forms.
    pub date_format: Option<DateTimePattern>,
    /// `mode`.
    pub mode: Mode,
    /// `allowNonNumericNumbers` (default true): the strings `NaN`, `Infinity`, … in float and
    /// double columns.
    pub allow_non_numeric_numbers: bool,
}

impl Default for JsonOptions {
    fn default() -> Self {
        Self {
            timestamp_format: None,
            timestamp_ntz_format: None,
            date_format: None,
            mode: Mode::Permissive,
            allow_non_numeric_numbers: true,
        }
    }
}

/// Why a reader option was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// Not a Spark JSON option this engine knows.
    #[error("unknown JSON source option `{name}`; supported: {}", SUPPORTED.join(", "))]
    Unknown {
        /// The option as given.
        name: String,
    },
    /// A value that does not parse (`mode`, a boolean).
    #[error("option `{option}` = `{value}`: expected {expected}")]
    BadValue {
        /// The option.
        option: String,
        /// Its value.
        value: String,
        /// What it may be.
        expected: &'static str,
    },
    /// A Spark setting this engine does not implement.
    #[error("option `{option}` = `{value}` is not supported: {why}")]
    Unsupported {
        /// The option.
        option: String,
        /// Its value.
        value: String,
        /// Why, and what to do.
        why: &'static str,
    },
    /// A datetime pattern that cannot be used.
    #[error("option `{option}`: {source}")]
    Pattern {
        /// The option.
        option: String,
        /// What is wrong with the pattern.
        source: PatternError,
    },
}

const SUPPORTED: &[&str] = &[
    "mode",
    "timestampFormat",
    "timestampNTZFormat",
    "dateFormat",
    "allowNonNumericNumbers",
    "multiLine (false)",
    "encoding/charset (UTF-8)",
    "lineSep (\\n)",
    "timeZone (UTC)",
    "locale (en-US)",
    "allowSingleQuotes, allowComments, allowUnquotedFieldNames, allowNumericLeadingZeros, allowBackslashEscapingAnyCharacter, allowUnquotedControlChars (false)",
];

/// Spark options that only matter for schema inference or for writing, accepted and ignored.
pub const IGNORED_OPTIONS: &[&str] = &[
    "samplingRatio",
    "primitivesAsString",
    "prefersDecimal",
    "dropFieldIfAllNull",
    "inferTimestamp",
    "ignoreNullFields",
    "maxFilesPerTrigger",
    "path",
];

impl JsonOptions {
    /// Reads Spark's option names (case-insensitively, as Spark does).
    pub fn from_spark(options: &BTreeMap<String, String>) -> Result<Self, OptionError> {
        let mut out = Self::default();
        for (name, value) in options {
            let key = name.to_ascii_lowercase();
            let v = value.trim();
            let bad = |expected| OptionError::BadValue {
                option: name.clone(),
                value: value.clone(),
                expected,
            };
            let unsupported = |why| OptionError::Unsupported {
                option: name.clone(),
                value: value.clone(),
                why,
            };
            let boolean = || match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(bad("true or false")),
            };
            let pattern = || {
                DateTimePattern::compile(value).map_err(|source| OptionError::Pattern {
                    option: name.clone(),
                    source,
                })
            };
            match key.as_str() {
                "mode" => {
                    out.mode = match v.to_ascii_uppercase().as_str() {
                        "PERMISSIVE" => Mode::Permissive,
                        "DROPMALFORMED" => Mode::DropMalformed,
                        "FAILFAST" => Mode::FailFast,
                        _ => return Err(bad("PERMISSIVE, DROPMALFORMED or FAILFAST")),
                    }
                }
                "timestampformat" => out.timestamp_format = Some(pattern()?),
                "timestampntzformat" => out.timestamp_ntz_format = Some(pattern()?),
                "dateformat" => out.date_format = Some(pattern()?),
                "allownonnumericnumbers" => out.allow_non_numeric_numbers = boolean()?,
                "multiline" => {
                    if boolean()? {
                        return Err(unsupported("the source reads one JSON object per line"));
                    }
                }
                "encoding" | "charset" => {
                    if !matches!(v.to_ascii_lowercase().as_str(), "utf-8" | "utf8") {
                        return Err(unsupported("input files must be UTF-8"));
                    }
                }
                "linesep" => {
                    if value != "\n" && value != "\r\n" {
                        return Err(unsupported("lines end with \\n (or \\r\\n)"));
                    }
                }
                "timezone" => {
                    if !matches!(
                        v.to_ascii_uppercase().as_str(),
                        "UTC" | "GMT" | "Z" | "ETC/UTC" | "+00:00" | "UTC+0" | "GMT+0"
                    ) {
                        return Err(unsupported("the engine's session time zone is UTC"));
                    }
                }
                "locale" => {
                    if !matches!(v, "en-US" | "en_US" | "en") {
                        return Err(unsupported("numbers and month names are read as en-US"));
                    }
                }
                "allowsinglequotes"
                | "allowcomments"
                | "allowunquotedfieldnames"
                | "allownumericleadingzeros"
                | "allowbackslashescapinganycharacter"
                | "allowunquotedcontrolchars" => {
                    if boolean()? {
                        return Err(unsupported(
                            "the source reads standard JSON only; remove the option or set it to false",
                        ));
                    }
                }
                "columnnameofcorruptrecord" => {
                    return Err(unsupported(
                        "bad records go to the rejects table with their reason; there is no corrupt-record column",
                    ));
                }
                _ if IGNORED_OPTIONS.iter().any(|o| o.eq_ignore_ascii_case(&key)) => {}
                _ => return Err(OptionError::Unknown { name: name.clone() }),
            }
        }
        Ok(out)
    }
}

/// Reads JSON lines into rows of one schema.
#[derive(Debug, Clone)]
pub struct Decoder {
    schema: SchemaRef,
    options: JsonOptions,
    /// `None`: the seed's event schema, through [`parse::parse_pieces`].
    general: Option<Arc<StructConv>>,
}

impl Decoder {
    /// A decoder of `schema`. A column whose Arrow type has no Spark type (see
    /// [`crate::schema::check_spark_types`]) makes every record a reject naming it; use
    /// [`Decoder::try_new`] to refuse such a schema up front.
    pub fn new(schema: SchemaRef, options: JsonOptions) -> Self {
        let general = Some(Arc::new(StructConv::new(schema.fields())));
        Self {
            schema,
            options,
            general,
        }
    }

    /// [`Decoder::new`], refusing a schema with a type the JSON source cannot read.
    pub fn try_new(schema: SchemaRef, options: JsonOptions) -> Result<Self, SchemaError> {
        crate::schema::check_spark_types(&schema)?;
        Ok(Self::new(schema, options))
    }

    /// The seed's event schema, read by the seed's fast parser (every field required).
    pub fn seed() -> Self {
        Self {
            schema: event_schema(),
            options: JsonOptions::default(),
            general: None,
        }
    }

    /// The schema of the rows.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The options.
    pub fn options(&self) -> &JsonOptions {
        &self.options
    }

    /// Decodes the JSON lines of a whole table (named `name` in rejects), which loads whole or
    /// not at all: the rows, or the first rejected line and how many were rejected.
    pub fn decode_table(&self, name: &str, bytes: &[u8]) -> Result<RecordBatch, (Rejected, usize)> {
        let parsed = self.decode(&parse::pieces(name, bytes, 1 << 20), 1);
        let count = parsed.rejects.len();
        match parsed.rejects.into_iter().next() {
            Some(first) => Err((first, count)),
            None => Ok(parsed.rows),
        }
    }

    /// Decodes `pieces` on up to `threads` threads, as [`parse::parse_pieces`] does: rows and
    /// rejects in file and line order, exactly those of a sequential decode.
    pub fn decode(&self, pieces: &[Piece<'_>], threads: usize) -> Parsed {
        let Some(root) = &self.general else {
            return parse::parse_pieces(pieces, threads);
        };
        let run = |ps: &[Piece<'_>]| {
            let mut cols: Vec<Col> = root.fields.iter().map(|f| Col::new(&f.conv)).collect();
            let mut rows = 0usize;
            let mut rejects = Vec::new();
            let mut records = 0u64;
            for p in ps {
                records += self.decode_piece(root, p, &mut cols, &mut rows, &mut rejects);
            }
            Parsed {
                rows: self.finish(root, cols, rows),
                rejects,
                records,
            }
        };
        Parsed::join(&self.schema, run_split_pieces(pieces, threads, run))
    }

    fn decode_piece(
        &self,
        root: &StructConv,
        piece: &Piece<'_>,
        cols: &mut [Col],
        rows: &mut usize,
        rejects: &mut Vec<Rejected>,
    ) -> u64 {
        let mut records = 0;
        let bytes = piece.bytes.strip_suffix(b"\n").unwrap_or(piece.bytes);
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
            let result = match std::str::from_utf8(line) {
                Ok(text) => self.decode_line(root, text, cols),
                Err(e) => Err(format!("invalid UTF-8 at byte {}", e.valid_up_to())),
            };
            match result {
                Ok(()) => *rows += 1,
                Err(reason) => {
                    // Undo whatever the record appended before it failed.
                    cols.iter_mut().for_each(|c| c.truncate(*rows));
                    rejects.push(Rejected::new(
                        piece.file,
                        i as u64 + piece.first_line,
                        line,
                        reason,
                    ));
                }
            }
        }
        records
    }

    fn decode_line(&self, root: &StructConv, line: &str, cols: &mut [Col]) -> Result<(), String> {
        let t = line.trim_start();
        if !t.starts_with('{') {
            return Err(match serde_json::from_str::<IgnoredAny>(t) {
                Ok(_) => format!(
                    "a line must hold one JSON object, found {} `{}`",
                    kind_of(t.trim_end()).article(),
                    short(t.trim_end())
                ),
                Err(e) => format!("malformed JSON: {e}"),
            });
        }
        let slots = object_slots(line, root).map_err(|e| format!("malformed JSON: {e}"))?;
        self.convert_fields(root, &slots, cols, &Path::Root)
    }

    fn convert_fields(
        &self,
        conv: &StructConv,
        slots: &[Option<&str>],
        cols: &mut [Col],
        parent: &Path<'_>,
    ) -> Result<(), String> {
        for ((f, slot), col) in conv.fields.iter().zip(slots).zip(cols) {
            let path = Path::Field(parent, &f.name);
            match slot {
                Some(raw) => self.convert(&f.conv, f.nullable, raw.trim(), col, &path)?,
                None if f.nullable => col.push_null(),
                None => return Err(format!("column `{path}` is NOT NULL but the field is missing")),
            }
        }
        Ok(())
    }

    fn convert(
        &self,
        conv: &Conv,
        nullable: bool,
        raw: &str,
        col: &mut Col,
        path: &Path<'_>,
    ) -> Result<(), String> {
        let kind = kind_of(raw);
        if kind == Kind::Null {
            if nullable {
                col.push_null();
                return Ok(());
            }
            return Err(format!("column `{path}` is NOT NULL but the value is null"));
        }
        let mismatch = || {
            format!(
                "column `{path}`: expected {}, found {} `{}`",
                conv.simple(),
                kind.name(),
                short(raw)
            )
        };
        match (conv, col) {
            (Conv::Utf8, Col::Bytes(b)) => {
                let text = match kind {
                    Kind::String => unescape(raw).map_err(|e| format!("column `{path}`: {e}"))?,
                    Kind::Object | Kind::Array => minify(raw),
                    _ => Cow::Borrowed(raw),
                };
                b.push(text.as_bytes(), path)?;
            }
            (Conv::Bool, Col::Bool(b)) => match kind {
                Kind::True => b.push(true),
                Kind::False => b.push(false),
                _ => return Err(mismatch()),
            },
            (Conv::Int(width), col) => {
                if kind != Kind::Number || raw.contains(['.', 'e', 'E']) {
                    return Err(mismatch());
                }
                let n: i64 = raw.parse().map_err(|_| out_of_range(path, raw, conv))?;
                let (lo, hi) = width.range();
                if n < lo || n > hi {
                    return Err(out_of_range(path, raw, conv));
                }
                match col {
                    Col::I8(p) => p.push(n as i8),
                    Col::I16(p) => p.push(n as i16),
                    Col::I32(p) => p.push(n as i32),
                    Col::I64(p) => p.push(n),
                    _ => unreachable!("an int column's builder"),
                }
            }
            (Conv::Float(double), col) => {
                let v: f64 = match kind {
                    Kind::Number => {
                        let v: f64 = raw.parse().map_err(|_| mismatch())?;
                        let too_big = v.is_infinite() || (!*double && (v as f32).is_infinite());
                        if too_big {
                            return Err(out_of_range(path, raw, conv));
                        }
                        v
                    }
                    Kind::String if self.options.allow_non_numeric_numbers => match &raw[1..raw.len() - 1] {
                        "NaN" => f64::NAN,
                        "Infinity" | "+Infinity" | "+INF" => f64::INFINITY,
                        "-Infinity" | "-INF" => f64::NEG_INFINITY,
                        _ => return Err(mismatch()),
                    },
                    _ => return Err(mismatch()),
                };
                match col {
                    Col::F32(p) if !*double => {
                        // Parse as f32 directly so rounding is that of the text, not of an f64.
                        let v32 = if kind == Kind::Number {
                            raw.parse().unwrap_or(v as f32)
                        } else {
                            v as f32
                        };
                        p.push(v32);
                    }
                    Col::F64(p) => p.push(v),
                    _ => unreachable!("a float column's builder"),
                }
            }
            (Conv::Decimal(precision, scale), Col::Dec(p)) => {
                let text = match kind {
                    Kind::Number => Cow::Borrowed(raw),
                    Kind::String if raw.len() > 2 => {
                        let s = unescape(raw).map_err(|e| format!("column `{path}`: {e}"))?;
                        if s.contains(',') {
                            Cow::Owned(s.replace(',', ""))
                        } else {
                            s
                        }
                    }
                    _ => return Err(mismatch()),
                };
                match parse_decimal(&text, *precision, *scale) {
                    Ok(v) => p.push(v),
                    Err(DecimalError::Syntax) => return Err(mismatch()),
                    Err(DecimalError::Overflow) => {
                        return Err(format!(
                            "column `{path}`: {} does not fit {} (more than {} digits after rounding to {} decimal places)",
                            short(raw),
                            conv.simple(),
                            precision,
                            scale
                        ));
                    }
                }
            }
            (Conv::Date, Col::I32(p)) => {
                if kind != Kind::String {
                    return Err(mismatch());
                }
                let s = unescape(raw).map_err(|e| format!("column `{path}`: {e}"))?;
                let d = match &self.options.date_format {
                    Some(f) => f.parse_date(&s),
                    None => parse_default_date(&s),
                };
                p.push(d.map_err(|e| format!("column `{path}`: {e}"))?);
            }
            (Conv::Timestamp { ntz }, Col::I64(p)) => {
                let ts = match kind {
                    Kind::String => {
                        let s = unescape(raw).map_err(|e| format!("column `{path}`: {e}"))?;
                        let r = match (
                            ntz,
                            &self.options.timestamp_format,
                            &self.options.timestamp_ntz_format,
                        ) {
                            (false, Some(f), _) => f.parse_timestamp(&s),
                            (false, None, _) => parse_default_timestamp(&s),
                            (true, _, Some(f)) => f.parse_timestamp_ntz(&s),
                            (true, _, None) => parse_default_timestamp_ntz(&s),
                        };
                        r.map_err(|e| format!("column `{path}`: {e}"))?
                    }
                    // Spark reads a JSON integer as seconds since the epoch (timestamp only).
                    Kind::Number if !ntz && !raw.contains(['.', 'e', 'E']) => raw
                        .parse::<i64>()
                        .ok()
                        .and_then(|s| s.checked_mul(1_000_000))
                        .ok_or_else(|| {
                            format!(
                                "column `{path}`: {} seconds since the epoch is out of range",
                                short(raw)
                            )
                        })?,
                    _ => return Err(mismatch()),
                };
                p.push(ts);
            }
            (Conv::Binary, Col::Bytes(b)) => {
                if kind != Kind::String {
                    return Err(mismatch());
                }
                let s = unescape(raw).map_err(|e| format!("column `{path}`: {e}"))?;
                let bytes = base64_decode(&s).map_err(|e| format!("column `{path}`: {e}"))?;
                b.push(&bytes, path)?;
            }
            (Conv::Struct(sc), Col::Struct { children, valid }) => {
                if kind != Kind::Object {
                    return Err(mismatch());
                }
                let slots = object_slots(raw, sc).map_err(|e| format!("column `{path}`: {e}"))?;
                self.convert_fields(sc, &slots, children, path)?;
                valid.push(true);
            }
            (
                Conv::List(elem),
                Col::List {
                    offsets,
                    child,
                    valid,
                },
            ) => {
                if kind != Kind::Array {
                    return Err(mismatch());
                }
                let items: Vec<&RawValue> =
                    serde_json::from_str(raw).map_err(|e| format!("column `{path}`: {e}"))?;
                for (i, item) in items.iter().enumerate() {
                    self.convert(
                        &elem.conv,
                        elem.nullable,
                        item.get().trim(),
                        child,
                        &Path::Index(path, i),
                    )?;
                }
                offsets.push(offset(child.len(), path)?);
                valid.push(true);
            }
            (
                Conv::Map { key, value },
                Col::Map {
                    offsets,
                    keys,
                    values,
                    valid,
                },
            ) => {
                if kind != Kind::Object {
                    return Err(mismatch());
                }
                let pairs = object_pairs(raw).map_err(|e| format!("column `{path}`: {e}"))?;
                let mut seen = HashSet::with_capacity(pairs.len());
                for (k, v) in &pairs {
                    if !seen.insert(k.as_ref()) {
                        return Err(format!("column `{path}`: map key `{}` appears twice", short(k)));
                    }
                    let key_raw: Cow<str> = if matches!(**key, Conv::Utf8) || !is_json_scalar(k) {
                        // A JSON string with the key's text (serializing a string cannot fail).
                        Cow::Owned(serde_json::to_string(k.as_ref()).expect("a string serializes"))
                    } else {
                        Cow::Borrowed(k.as_ref())
                    };
                    self.convert(key, false, &key_raw, keys, &Path::Key(path))?;
                    self.convert(
                        &value.conv,
                        value.nullable,
                        v.get().trim(),
                        values,
                        &Path::Value(path, k),
                    )?;
                }
                offsets.push(offset(keys.len(), path)?);
                valid.push(true);
            }
            (Conv::Unsupported(arrow), _) => {
                return Err(format!(
                    "column `{path}` has type {arrow}, which the JSON source cannot read; declare a Spark type"
                ));
            }
            _ => unreachable!("builders are made from the same conversions"),
        }
        Ok(())
    }

    fn finish(&self, root: &StructConv, cols: Vec<Col>, rows: usize) -> RecordBatch {
        let columns: Vec<ArrayRef> = cols
            .into_iter()
            .zip(self.schema.fields())
            .map(|(c, f)| c.finish(f.data_type()))
            .collect();
        debug_assert_eq!(root.fields.len(), columns.len());
        // Each column was built for its field, with one value per accepted row; a non-null
        // column never got a null (the record was rejected instead).
        RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .expect("columns match the schema")
    }
}

fn out_of_range(path: &Path<'_>, raw: &str, conv: &Conv) -> String {
    let range = match conv {
        Conv::Int(w) => {
            let (lo, hi) = w.range();
            format!(" ({lo} to {hi})")
        }
        _ => String::new(),
    };
    format!(
        "column `{path}`: {} is out of range for {}{range}",
        short(raw),
        conv.simple()
    )
}

fn offset(len: usize, path: &Path<'_>) -> Result<i32, String> {
    i32::try_from(len)
        .map_err(|_| format!("column `{path}`: more than 2^31 values in one batch; lower maxFilesPerTrigger"))
}

/// Where a value is, for reasons: `addr.city`, `tags[2]`, `m.key`, `m["k"]`.
enum Path<'a> {
    Root,
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
    Key(&'a Path<'a>),
    Value(&'a Path<'a>, &'a str),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Field(Path::Root, name) => write!(f, "{name}"),
            Path::Field(p, name) => write!(f, "{p}.{name}"),
            Path::Index(p, i) => write!(f, "{p}[{i}]"),
            Path::Key(p) => write!(f, "{p} key"),
            Path::Value(p, k) => write!(f, "{p}[\"{}\"]", short(k)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Object,
    Array,
    True,
    False,
    Null,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Number => "number",
            Kind::Object => "object",
            Kind::Array => "array",
            Kind::True | Kind::False => "boolean",
            Kind::Null => "null",
        }
    }

    fn article(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Object => "an object",
            Kind::Array => "an array",
            Kind::True | Kind::False => "a boolean",
            Kind::Null => "null",
        }
    }
}

/// The kind of a syntactically valid JSON value, from its first character.
fn kind_of(raw: &str) -> Kind {
    match raw.as_bytes().first() {
        Some(b'"') => Kind::String,
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b't') => Kind::True,
        Some(b'f') => Kind::False,
        Some(b'n') | None => Kind::Null,
        _ => Kind::Number,
    }
}

fn is_json_scalar(text: &str) -> bool {
    matches!(
        text.as_bytes().first(),
        Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n')
    ) && serde_json::from_str::<&RawValue>(text).is_ok()
}

fn short(raw: &str) -> String {
    const MAX: usize = 60;
    if raw.len() <= MAX {
        return raw.to_string();
    }
    let mut end = MAX;
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &raw[..end])
}

/// The text of a JSON string literal (validated by the JSON parser already).
fn unescape(raw: &str) -> Result<Cow<'_, str>, String> {
    if let Some(inner) = parse::unquoted(raw) {
        return Ok(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(raw)
        .map(Cow::Owned)
        .map_err(|e| format!("bad string escape ({e})"))
}

/// A JSON text without the blanks between tokens.
fn minify(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

enum DecimalError {
    Syntax,
    Overflow,
}

/// Parses a decimal number (Java `BigDecimal` syntax: sign, digits, fraction, exponent) to the
/// unscaled value at `scale`, rounding HALF_UP; more than `precision` digits is an overflow.
fn parse_decimal(text: &str, precision: u8, scale: i8) -> Result<i128, DecimalError> {
    let b = text.as_bytes();
    let mut pos = 0;
    let negative = match b.first() {
        Some(b'-') => {
            pos = 1;
            true
        }
        Some(b'+') => {
            pos = 1;
            false
        }
        _ => false,
    };
    let int_start = pos;
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let int = &b[int_start..pos];
    let mut frac: &[u8] = &[];
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let s = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        frac = &b[s..pos];
    }
    if int.is_empty() && frac.is_empty() {
        return Err(DecimalError::Syntax);
    }
    let mut exp: i64 = 0;
    if matches!(b.get(pos), Some(b'e' | b'E')) {
        pos += 1;
        let neg = match b.get(pos) {
            Some(b'-') => {
                pos += 1;
                true
            }
            Some(b'+') => {
                pos += 1;
                false
            }
            _ => false,
        };
        let s = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            exp = (exp * 10 + i64::from(b[pos] - b'0')).min(1 << 40);
            pos += 1;
        }
        if pos == s {
            return Err(DecimalError::Syntax);
        }
        if neg {
            exp = -exp;
        }
    }
    if pos != b.len() {
        return Err(DecimalError::Syntax);
    }
    let digits: Vec<u8> = int
        .iter()
        .chain(frac)
        .map(|d| d - b'0')
        .skip_while(|&d| d == 0)
        .collect();
    if digits.is_empty() {
        return Ok(0);
    }
    let len = digits.len() as i64;
    let shift = exp - frac.len() as i64 + i64::from(scale);
    let value = |ds: &[u8]| ds.iter().fold(0i128, |acc, &d| acc * 10 + i128::from(d));
    let unscaled = if shift >= 0 {
        if len + shift > i64::from(precision) {
            return Err(DecimalError::Overflow);
        }
        value(&digits) * 10i128.pow(shift as u32)
    } else {
        let drop = -shift;
        if drop > len {
            0
        } else {
            let keep = (len - drop) as usize;
            if keep > usize::from(precision) {
                return Err(DecimalError::Overflow);
            }
            value(&digits[..keep]) + i128::from(digits[keep] >= 5)
        }
    };
    if unscaled >= 10i128.pow(u32::from(precision)) {
        return Err(DecimalError::Overflow);
    }
    Ok(if negative { -unscaled } else { unscaled })
}

/// Base64 (standard alphabet) as Jackson reads it; `=` padding optional, blanks ignored.
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits, mut n, mut pad) = (0u32, 0u32, 0usize, 0usize);
    for (i, c) in text.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pad += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => continue,
            _ => return Err(format!("not base64: unexpected character at position {i}")),
        };
        if pad > 0 {
            return Err(format!("not base64: data after `=` padding at position {i}"));
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        n += 1;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if n % 4 == 1 || pad > 2 {
        return Err("not base64: truncated".into());
    }
    Ok(out)
}

// ---- conversions, built once from the schema ----

#[derive(Debug, Clone, Copy)]
enum IntWidth {
    I8,
    I16,
    I32,
    I64,
}

impl IntWidth {
    fn range(self) -> (i64, i64) {
        match self {
            IntWidth::I8 => (i8::MIN.into(), i8::MAX.into()),
            IntWidth::I16 => (i16::MIN.into(), i16::MAX.into()),
            IntWidth::I32 => (i32::MIN.into(), i32::MAX.into()),
            IntWidth::I64 => (i64::MIN, i64::MAX),
        }
    }
}

#[derive(Debug)]
enum Conv {
    Utf8,
    Bool,
    Int(IntWidth),
    /// `true`: double.
    Float(bool),
    Decimal(u8, i8),
    Date,
    Timestamp {
        ntz: bool,
    },
    Binary,
    Struct(StructConv),
    List(Box<FieldConv>),
    Map {
        key: Box<Conv>,
        value: Box<FieldConv>,
    },
    Unsupported(String),
}

#[derive(Debug)]
struct FieldConv {
    name: String,
    nullable: bool,
    conv: Conv,
}

#[derive(Debug)]
struct StructConv {
    fields: Vec<FieldConv>,
    /// Field index by name, for structs too wide for a linear search.
    index: Option<HashMap<String, usize>>,
}

impl StructConv {
    fn new(fields: &Fields) -> Self {
        let fields: Vec<FieldConv> = fields
            .iter()
            .map(|f| FieldConv {
                name: f.name().clone(),
                nullable: f.is_nullable(),
                conv: Conv::new(f.data_type()),
            })
            .collect();
        let index = (fields.len() > 12).then(|| {
            let mut m = HashMap::new();
            for (i, f) in fields.iter().enumerate() {
                m.entry(f.name.clone()).or_insert(i);
            }
            m
        });
        Self { fields, index }
    }

    fn find(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(m) => m.get(name).copied(),
            None => self.fields.iter().position(|f| f.name == name),
        }
    }
}

impl Conv {
    fn new(dt: &DataType) -> Self {
        match dt {
            DataType::Utf8 => Conv::Utf8,
            DataType::Boolean => Conv::Bool,
            DataType::Int8 => Conv::Int(IntWidth::I8),
            DataType::Int16 => Conv::Int(IntWidth::I16),
            DataType::Int32 => Conv::Int(IntWidth::I32),
            DataType::Int64 => Conv::Int(IntWidth::I64),
            DataType::Float32 => Conv::Float(false),
            DataType::Float64 => Conv::Float(true),
            DataType::Decimal128(p, s) if *s >= 0 && s.unsigned_abs() <= *p && *p <= 38 => {
                Conv::Decimal(*p, *s)
            }
            DataType::Date32 => Conv::Date,
            DataType::Timestamp(TimeUnit::Microsecond, tz) => Conv::Timestamp { ntz: tz.is_none() },
            DataType::Binary => Conv::Binary,
            DataType::Struct(fs) => Conv::Struct(StructConv::new(fs)),
            DataType::List(f) => Conv::List(Box::new(FieldConv {
                name: f.name().clone(),
                nullable: f.is_nullable(),
                conv: Conv::new(f.data_type()),
            })),
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => Conv::Map {
                    key: Box::new(Conv::new(kv[0].data_type())),
                    value: Box::new(FieldConv {
                        name: kv[1].name().clone(),
                        nullable: kv[1].is_nullable(),
                        conv: Conv::new(kv[1].data_type()),
                    }),
                },
                other => Conv::Unsupported(other.to_string()),
            },
            other => Conv::Unsupported(other.to_string()),
        }
    }

    /// Spark's name of the type, for reasons.
    fn simple(&self) -> String {
        match self {
            Conv::Utf8 => "string".into(),
            Conv::Bool => "boolean".into(),
            Conv::Int(IntWidth::I8) => "tinyint".into(),
            Conv::Int(IntWidth::I16) => "smallint".into(),
            Conv::Int(IntWidth::I32) => "int".into(),
            Conv::Int(IntWidth::I64) => "bigint".into(),
            Conv::Float(false) => "float".into(),
            Conv::Float(true) => "double".into(),
            Conv::Decimal(p, s) => format!("decimal({p},{s})"),
            Conv::Date => "date".into(),
            Conv::Timestamp { ntz: false } => "timestamp".into(),
            Conv::Timestamp { ntz: true } => "timestamp_ntz".into(),
            Conv::Binary => "binary".into(),
            Conv::Struct(s) => {
                let inner: Vec<String> = s
                    .fields
                    .iter()
                    .map(|f| format!("{}:{}", f.name, f.conv.simple()))
                    .collect();
                let text = format!("struct<{}>", inner.join(","));
                short(&text)
            }
            Conv::List(e) => short(&format!("array<{}>", e.conv.simple())),
            Conv::Map { key, value } => short(&format!("map<{},{}>", key.simple(), value.conv.simple())),
            Conv::Unsupported(a) => a.clone(),
        }
    }
}

// ---- parsing objects ----

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// An object's values by schema field (the last wins when a name repeats).
struct Slots<'s>(&'s StructConv);

impl<'de> Visitor<'de> for Slots<'_> {
    type Value = Vec<Option<&'de RawValue>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots = vec![None; self.0.fields.len()];
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.0.find(&key) {
                Some(i) => slots[i] = Some(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(slots)
    }
}

/// An object's values' text by schema field (the last wins when a name repeats): from the flat
/// scanner when it reads the object (`source/flat.rs`), else from serde_json, which then gives
/// the reason when it is not an object.
fn object_slots<'a>(text: &'a str, conv: &StructConv) -> Result<Vec<Option<&'a str>>, serde_json::Error> {
    let mut slots = vec![None; conv.fields.len()];
    let read = super::flat::scan(text, |key, value| {
        if let Some(i) = conv.find(key) {
            slots[i] = Some(value);
        }
        true
    });
    if read {
        return Ok(slots);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let slots = serde::Deserializer::deserialize_map(&mut de, Slots(conv))?;
    de.end()?;
    Ok(slots.into_iter().map(|v| v.map(RawValue::get)).collect())
}

/// An object's entries in order.
struct Pairs;

impl<'de> Visitor<'de> for Pairs {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            out.push((key, map.next_value::<&'de RawValue>()?));
        }
        Ok(out)
    }
}

fn object_pairs(text: &str) -> Result<Vec<(Cow<'_, str>, &RawValue)>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let pairs = serde::Deserializer::deserialize_map(&mut de, Pairs)?;
    de.end()?;
    Ok(pairs)
}

// ---- column builders that can drop a failed record's values ----

#[derive(Debug, Default)]
struct Prim<T> {
    values: Vec<T>,
    valid: Vec<bool>,
}

impl<T: Copy + Default> Prim<T> {
    fn push(&mut self, v: T) {
        self.values.push(v);
        self.valid.push(true);
    }
    fn push_null(&mut self) {
        self.values.push(T::default());
        self.valid.push(false);
    }
    fn truncate(&mut self, n: usize) {
        self.values.truncate(n);
        self.valid.truncate(n);
    }
    fn finish<A: ArrowPrimitiveType<Native = T>>(self) -> PrimitiveArray<A>
    where
        T: deltalake::arrow::datatypes::ArrowNativeType,
    {
        PrimitiveArray::<A>::new(ScalarBuffer::from(self.values), nulls(self.valid))
    }
}

#[derive(Debug)]
struct BytesCol {
    offsets: Vec<i32>,
    data: Vec<u8>,
    valid: Vec<bool>,
}

impl BytesCol {
    fn push(&mut self, v: &[u8], path: &Path<'_>) -> Result<(), String> {
        // Offsets are i32: a column cannot hold more than 2 GiB in one batch.
        let end = i32::try_from(self.data.len() + v.len()).map_err(|_| {
            format!("column `{path}`: more than 2 GiB of text in one batch; lower maxFilesPerTrigger")
        })?;
        self.data.extend_from_slice(v);
        self.offsets.push(end);
        self.valid.push(true);
        Ok(())
    }
    fn len(&self) -> usize {
        self.valid.len()
    }
}

#[derive(Debug)]
enum Col {
    Bytes(BytesCol),
    Bool(Prim<bool>),
    I8(Prim<i8>),
    I16(Prim<i16>),
    I32(Prim<i32>),
    I64(Prim<i64>),
    F32(Prim<f32>),
    F64(Prim<f64>),
    Dec(Prim<i128>),
    Struct {
        children: Vec<Col>,
        valid: Vec<bool>,
    },
    List {
        offsets: Vec<i32>,
        child: Box<Col>,
        valid: Vec<bool>,
    },
    Map {
        offsets: Vec<i32>,
        keys: Box<Col>,
        values: Box<Col>,
        valid: Vec<bool>,
    },
    /// A column no value can be converted into.
    Never(Vec<bool>),
}

fn nulls(valid: Vec<bool>) -> Option<NullBuffer> {
    if valid.iter().all(|&v| v) {
        None
    } else {
        Some(NullBuffer::from(valid))
    }
}

impl Col {
    fn new(conv: &Conv) -> Self {
        match conv {
            Conv::Utf8 | Conv::Binary => Col::Bytes(BytesCol {
                offsets: vec![0],
                data: Vec::new(),
                valid: Vec::new(),
            }),
            Conv::Bool => Col::Bool(Prim::default()),
            Conv::Int(IntWidth::I8) => Col::I8(Prim::default()),
            Conv::Int(IntWidth::I16) => Col::I16(Prim::default()),
            Conv::Int(IntWidth::I32) | Conv::Date => Col::I32(Prim::default()),
            Conv::Int(IntWidth::I64) | Conv::Timestamp { .. } => Col::I64(Prim::default()),
            Conv::Float(false) => Col::F32(Prim::default()),
            Conv::Float(true) => Col::F64(Prim::default()),
            Conv::Decimal(..) => Col::Dec(Prim::default()),
            Conv::Struct(s) => Col::Struct {
                children: s.fields.iter().map(|f| Col::new(&f.conv)).collect(),
                valid: Vec::new(),
            },
            Conv::List(e) => Col::List {
                offsets: vec![0],
                child: Box::new(Col::new(&e.conv)),
                valid: Vec::new(),
            },
            Conv::Map { key, value } => Col::Map {
                offsets: vec![0],
                keys: Box::new(Col::new(key)),
                values: Box::new(Col::new(&value.conv)),
                valid: Vec::new(),
            },
            Conv::Unsupported(_) => Col::Never(Vec::new()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Col::Bytes(b) => b.len(),
            Col::Bool(p) => p.valid.len(),
            Col::I8(p) => p.valid.len(),
            Col::I16(p) => p.valid.len(),
            Col::I32(p) => p.valid.len(),
            Col::I64(p) => p.valid.len(),
            Col::F32(p) => p.valid.len(),
            Col::F64(p) => p.valid.len(),
            Col::Dec(p) => p.valid.len(),
            Col::Struct { valid, .. }
            | Col::List { valid, .. }
            | Col::Map { valid, .. }
            | Col::Never(valid) => valid.len(),
        }
    }

    fn push_null(&mut self) {
        match self {
            Col::Bytes(b) => {
                b.offsets.push(*b.offsets.last().unwrap_or(&0));
                b.valid.push(false);
            }
            Col::Bool(p) => p.push_null(),
            Col::I8(p) => p.push_null(),
            Col::I16(p) => p.push_null(),
            Col::I32(p) => p.push_null(),
            Col::I64(p) => p.push_null(),
            Col::F32(p) => p.push_null(),
            Col::F64(p) => p.push_null(),
            Col::Dec(p) => p.push_null(),
            Col::Struct { children, valid } => {
                children.iter_mut().for_each(Col::push_null);
                valid.push(false);
            }
            Col::List { offsets, valid, .. } | Col::Map { offsets, valid, .. } => {
                offsets.push(*offsets.last().unwrap_or(&0));
                valid.push(false);
            }
            Col::Never(valid) => valid.push(false),
        }
    }

    /// Keeps the first `n` values (dropping what a failed record appended).
    fn truncate(&mut self, n: usize) {
        if self.len() <= n && !matches!(self, Col::Struct { .. } | Col::List { .. } | Col::Map { .. }) {
            return;
        }
        match self {
            Col::Bytes(b) => {
                b.offsets.truncate(n + 1);
                b.data.truncate(*b.offsets.last().unwrap_or(&0) as usize);
                b.valid.truncate(n);
            }
            Col::Bool(p) => p.truncate(n),
            Col::I8(p) => p.truncate(n),
            Col::I16(p) => p.truncate(n),
            Col::I32(p) => p.truncate(n),
            Col::I64(p) => p.truncate(n),
            Col::F32(p) => p.truncate(n),
            Col::F64(p) => p.truncate(n),
            Col::Dec(p) => p.truncate(n),
            Col::Struct { children, valid } => {
                children.iter_mut().for_each(|c| c.truncate(n));
                valid.truncate(n);
            }
            Col::List {
                offsets,
                child,
                valid,
            } => {
                offsets.truncate(n + 1);
                child.truncate(*offsets.last().unwrap_or(&0) as usize);
                valid.truncate(n);
            }
            Col::Map {
                offsets,
                keys,
                values,
                valid,
            } => {
                offsets.truncate(n + 1);
                let m = *offsets.last().unwrap_or(&0) as usize;
                keys.truncate(m);
                values.truncate(m);
                valid.truncate(n);
            }
            Col::Never(valid) => valid.truncate(n),
        }
    }

    fn finish(self, dt: &DataType) -> ArrayRef {
        match (self, dt) {
            (Col::Bytes(b), DataType::Binary) => Arc::new(BinaryArray::new(
                OffsetBuffer::new(ScalarBuffer::from(b.offsets)),
                Buffer::from_vec(b.data),
                nulls(b.valid),
            )),
            (Col::Bytes(b), _) => Arc::new(
                // The bytes were appended from `&str`s, so they are UTF-8 at every offset.
                StringArray::try_new(
                    OffsetBuffer::new(ScalarBuffer::from(b.offsets)),
                    Buffer::from_vec(b.data),
                    nulls(b.valid),
                )
                .expect("offsets within the data"),
            ),
            (Col::Bool(p), _) => {
                let n = nulls(p.valid);
                Arc::new(BooleanArray::new(p.values.into_iter().collect(), n))
            }
            (Col::I8(p), _) => Arc::new(p.finish::<Int8Type>()),
            (Col::I16(p), _) => Arc::new(p.finish::<Int16Type>()),
            (Col::I32(p), DataType::Date32) => Arc::new(p.finish::<Date32Type>()),
            (Col::I32(p), _) => Arc::new(p.finish::<Int32Type>()),
            (Col::I64(p), DataType::Timestamp(_, tz)) => Arc::new(
                p.finish::<TimestampMicrosecondType>()
                    .with_timezone_opt(tz.clone()),
            ),
            (Col::I64(p), _) => Arc::new(p.finish::<Int64Type>()),
            (Col::F32(p), _) => Arc::new(p.finish::<Float32Type>()),
            (Col::F64(p), _) => Arc::new(p.finish::<Float64Type>()),
            (Col::Dec(p), DataType::Decimal128(prec, scale)) => Arc::new(
                p.finish::<deltalake::arrow::datatypes::Decimal128Type>()
                    .with_precision_and_scale(*prec, *scale)
                    .expect("precision and scale were checked"),
            ),
            (Col::Struct { children, valid }, DataType::Struct(fields)) => {
                let arrays: Vec<ArrayRef> = children
                    .into_iter()
                    .zip(fields.iter())
                    .map(|(c, f)| c.finish(f.data_type()))
                    .collect();
                let len = valid.len();
                if fields.is_empty() {
                    return Arc::new(StructArray::new_empty_fields(len, nulls(valid)));
                }
                Arc::new(
                    StructArray::try_new(fields.clone(), arrays, nulls(valid))
                        .expect("struct children match"),
                )
            }
            (
                Col::List {
                    offsets,
                    child,
                    valid,
                },
                DataType::List(field),
            ) => {
                let values = child.finish(field.data_type());
                Arc::new(
                    deltalake::arrow::array::ListArray::try_new(
                        field.clone(),
                        OffsetBuffer::new(ScalarBuffer::from(offsets)),
                        values,
                        nulls(valid),
                    )
                    .expect("list values match"),
                )
            }
            (
                Col::Map {
                    offsets,
                    keys,
                    values,
                    valid,
                },
                DataType::Map(entries, sorted),
            ) => {
                let DataType::Struct(kv) = entries.data_type() else {
                    unreachable!("a map's entries are a struct")
                };
                let k = keys.finish(kv[0].data_type());
                let v = values.finish(kv[1].data_type());
                let entries_array =
                    StructArray::try_new(kv.clone(), vec![k, v], None).expect("map entries match");
                let field: FieldRef = entries.clone();
                Arc::new(
                    MapArray::try_new(
                        field,
                        OffsetBuffer::new(ScalarBuffer::from(offsets)),
                        entries_array,
                        nulls(valid),
                        *sorted,
                    )
                    .expect("map entries match"),
                )
            }
            (Col::Never(valid), dt) => deltalake::arrow::array::new_null_array(dt, valid.len()),
            (_, dt) => unreachable!("a builder for {dt}"),
        }
    }
}

#[cfg(test)]
mod tests;
