//! Source schemas as Spark writes them: a DDL string (`"a INT, b STRUCT<c: STRING>"`, what
//! `DataStreamReader.schema(str)` takes) or the JSON of PySpark's `StructType.json()`.
//!
//! Spark types map to Arrow types as Delta stores them:
//!
//! | Spark | Arrow |
//! |---|---|
//! | `string` (`char(n)`, `varchar(n)`) | `Utf8` |
//! | `boolean` | `Boolean` |
//! | `tinyint`/`byte`, `smallint`/`short`, `int`/`integer`, `bigint`/`long` | `Int8`..`Int64` |
//! | `float`/`real`, `double` | `Float32`, `Float64` |
//! | `decimal(p,s)` (`dec`, `numeric`; plain = `(10,0)`, `p ≤ 38`) | `Decimal128(p,s)` |
//! | `date` | `Date32` |
//! | `timestamp` (`timestamp_ltz`) | `Timestamp(µs, "UTC")` |
//! | `timestamp_ntz` | `Timestamp(µs, none)` |
//! | `binary` | `Binary` |
//! | `array<t>` | `List` of an `element` field |
//! | `map<k,v>` | `Map` of `key_value` entries with a non-null `key` and a `value` |
//! | `struct<…>` | `Struct` |
//!
//! The map's entry names are delta-kernel's (`key_value`/`key`/`value`), so batches match the
//! schema Delta reads back. Every field is nullable unless declared `NOT NULL` (DDL) or
//! `"nullable":false` (JSON). A DDL `COMMENT 'text'` becomes the field metadata `comment`, as
//! in Spark; JSON metadata values are kept as Arrow metadata strings (a non-string value as
//! its JSON text). DDL cannot say that an array's elements or a map's values are non-null, so a
//! schema with `containsNull: false` round-trips through [`to_struct_type_json`] but not through
//! [`to_ddl`].

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use deltalake::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::event::timestamp_type;

/// The largest decimal precision (Spark's and Arrow's `Decimal128`).
pub const MAX_DECIMAL_PRECISION: u8 = 38;

/// Why a schema text was refused. Positions are 0-based character offsets into the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The text does not follow the DDL or JSON grammar.
    #[error("schema syntax error at position {at} of `{text}`: {why}")]
    Syntax {
        /// The text being parsed.
        text: String,
        /// Where the error is.
        at: usize,
        /// What was expected there.
        why: String,
    },
    /// A type name Spark does not have (or this engine does not support).
    #[error(
        "unknown type `{name}` at position {at}; use one of string, boolean, tinyint, smallint, int, bigint, float, double, decimal(p,s), date, timestamp, timestamp_ntz, binary, array<…>, map<…,…>, struct<…>"
    )]
    UnknownType {
        /// The type name as written.
        name: String,
        /// Where it is.
        at: usize,
    },
    /// A decimal whose precision or scale is out of range.
    #[error(
        "decimal({precision},{scale}) at position {at}: precision must be 1 to 38 and scale 0 to the precision"
    )]
    DecimalPrecision {
        /// Declared precision.
        precision: u32,
        /// Declared scale.
        scale: u32,
        /// Where it is.
        at: usize,
    },
    /// Two fields of one struct with the same name (compared case-insensitively, as Spark's
    /// analyzer does by default).
    #[error("column `{name}` is declared twice; rename one of them")]
    DuplicateColumn {
        /// The repeated name.
        name: String,
    },
    /// A schema with no column.
    #[error("the schema has no column; declare at least one, e.g. `id STRING`")]
    Empty,
    /// An Arrow type with no Spark equivalent (when writing a schema out or building a decoder).
    #[error("column `{column}` has type {arrow}, which has no Spark type")]
    Unsupported {
        /// The column.
        column: String,
        /// The Arrow type, as Arrow prints it.
        arrow: String,
    },
}

/// Parses a schema given as a Spark DDL string or as PySpark's `StructType.json()`.
///
/// Text whose first non-blank character is `{` is read as JSON, anything else as DDL. A DDL
/// string may also be wrapped as `STRUCT<…>`.
pub fn parse_schema(text: &str) -> Result<SchemaRef, SchemaError> {
    let fields = if text.trim_start().starts_with('{') {
        json::parse_schema(text)?
    } else {
        let mut p = ddl::Parser::new(text);
        p.skip_ws();
        let fields = if p.peek_keyword("struct") && p.after_keyword_is('<') {
            match p.data_type()? {
                DataType::Struct(fields) => fields.iter().map(|f| f.as_ref().clone()).collect(),
                _ => unreachable!("struct<…> parses to a struct"),
            }
        } else {
            p.fields(None)?
        };
        p.skip_ws();
        if !p.at_end() {
            return Err(p.syntax("expected `,` and another column, or the end of the schema"));
        }
        fields
    };
    if fields.is_empty() {
        return Err(SchemaError::Empty);
    }
    check_duplicates(&fields)?;
    Ok(Arc::new(Schema::new(fields)))
}

/// Parses one type, DDL (`decimal(10,2)`, `array<string>`) or JSON (`"integer"`,
/// `{"type":"array",…}`).
pub fn parse_data_type(text: &str) -> Result<DataType, SchemaError> {
    let t = text.trim_start();
    if t.starts_with('{') || t.starts_with('"') {
        return json::parse_type_text(text);
    }
    let mut p = ddl::Parser::new(text);
    let dt = p.data_type()?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.syntax("expected the end of the type"));
    }
    Ok(dt)
}

fn check_duplicates(fields: &[Field]) -> Result<(), SchemaError> {
    let mut seen = HashSet::new();
    for f in fields {
        if !seen.insert(f.name().to_lowercase()) {
            return Err(SchemaError::DuplicateColumn {
                name: f.name().clone(),
            });
        }
    }
    Ok(())
}

/// The Arrow type of Spark's `array<element>`.
pub fn list_type(element: DataType, contains_null: bool) -> DataType {
    DataType::List(Arc::new(Field::new("element", element, contains_null)))
}

/// The Arrow type of Spark's `map<key,value>` (keys are never null).
pub fn map_type(key: DataType, value: DataType, value_contains_null: bool) -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", key, false),
        Field::new("value", value, value_contains_null),
    ]);
    DataType::Map(
        Arc::new(Field::new("key_value", DataType::Struct(entries), false)),
        false,
    )
}

/// The Arrow type of a Spark type name without parameters (`int`, `long`, `timestamp`, …),
/// case-insensitively.
fn primitive(name: &str) -> Option<DataType> {
    Some(match name.to_ascii_lowercase().as_str() {
        "string" => DataType::Utf8,
        "boolean" | "bool" => DataType::Boolean,
        "tinyint" | "byte" => DataType::Int8,
        "smallint" | "short" => DataType::Int16,
        "int" | "integer" => DataType::Int32,
        "bigint" | "long" => DataType::Int64,
        "float" | "real" => DataType::Float32,
        "double" => DataType::Float64,
        "date" => DataType::Date32,
        "timestamp" | "timestamp_ltz" => timestamp_type(),
        "timestamp_ntz" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "binary" => DataType::Binary,
        _ => return None,
    })
}

fn decimal(precision: u32, scale: u32, at: usize) -> Result<DataType, SchemaError> {
    if precision == 0 || precision > u32::from(MAX_DECIMAL_PRECISION) || scale > precision {
        return Err(SchemaError::DecimalPrecision { precision, scale, at });
    }
    Ok(DataType::Decimal128(precision as u8, scale as i8))
}

fn unsupported(column: &str, dt: &DataType) -> SchemaError {
    SchemaError::Unsupported {
        column: column.to_string(),
        arrow: dt.to_string(),
    }
}

/// Spark's `simpleString` of a type: `int`, `bigint`, `decimal(10,2)`, `array<string>`,
/// `map<string,int>`, `struct<a:int,b:string>`, `timestamp`, `timestamp_ntz`. An Arrow type
/// with no Spark type is shown as Arrow prints it.
pub fn simple_string(dt: &DataType) -> String {
    let mut out = String::new();
    write_simple(dt, &mut out);
    out
}

fn write_simple(dt: &DataType, out: &mut String) {
    let name = match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string",
        DataType::Boolean => "boolean",
        DataType::Int8 => "tinyint",
        DataType::Int16 => "smallint",
        DataType::Int32 => "int",
        DataType::Int64 => "bigint",
        DataType::Float32 => "float",
        DataType::Float64 => "double",
        DataType::Date32 => "date",
        DataType::Timestamp(_, Some(_)) => "timestamp",
        DataType::Timestamp(_, None) => "timestamp_ntz",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary",
        DataType::Null => "void",
        DataType::Decimal128(p, s) => {
            let _ = write!(out, "decimal({p},{s})");
            return;
        }
        DataType::List(f) | DataType::LargeList(f) => {
            out.push_str("array<");
            write_simple(f.data_type(), out);
            out.push('>');
            return;
        }
        DataType::Map(entries, _) => {
            out.push_str("map<");
            if let DataType::Struct(kv) = entries.data_type()
                && kv.len() == 2
            {
                write_simple(kv[0].data_type(), out);
                out.push(',');
                write_simple(kv[1].data_type(), out);
            }
            out.push('>');
            return;
        }
        DataType::Struct(fields) => {
            out.push_str("struct<");
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(f.name());
                out.push(':');
                write_simple(f.data_type(), out);
            }
            out.push('>');
            return;
        }
        other => {
            let _ = write!(out, "{other}");
            return;
        }
    };
    out.push_str(name);
}

/// The schema as Spark's `StructType.toDDL` writes it:
/// ``a INT NOT NULL,`b c` STRUCT<`x`: STRING COMMENT 'it''s'>``.
pub fn to_ddl(schema: &Schema) -> String {
    let mut out = String::new();
    for (i, f) in schema.fields().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote_if_needed(f.name()));
        out.push(' ');
        write_sql(f.data_type(), &mut out);
        write_field_suffix(f, &mut out);
    }
    out
}

fn write_field_suffix(f: &Field, out: &mut String) {
    if !f.is_nullable() {
        out.push_str(" NOT NULL");
    }
    if let Some(c) = f.metadata().get("comment") {
        let _ = write!(out, " COMMENT '{}'", c.replace('\\', "\\\\").replace('\'', "\\'"));
    }
}

fn quote_if_needed(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain { name.to_string() } else { quote(name) }
}

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn write_sql(dt: &DataType, out: &mut String) {
    match dt {
        DataType::List(f) | DataType::LargeList(f) => {
            out.push_str("ARRAY<");
            write_sql(f.data_type(), out);
            out.push('>');
        }
        DataType::Map(entries, _) => {
            out.push_str("MAP<");
            if let DataType::Struct(kv) = entries.data_type()
                && kv.len() == 2
            {
                write_sql(kv[0].data_type(), out);
                out.push_str(", ");
                write_sql(kv[1].data_type(), out);
            }
            out.push('>');
        }
        DataType::Struct(fields) => {
            out.push_str("STRUCT<");
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&quote(f.name()));
                out.push_str(": ");
                write_sql(f.data_type(), out);
                write_field_suffix(f, out);
            }
            out.push('>');
        }
        other => out.push_str(&simple_string(other).to_ascii_uppercase()),
    }
}

/// The schema as PySpark's `StructType.json()` writes it: compact, keys sorted, non-ASCII
/// escaped as `\uXXXX` (Python's `json.dumps(…, separators=(",", ":"), sort_keys=True)`).
///
/// An Arrow type with no Spark type is written with its Arrow name, which [`parse_schema`]
/// then refuses; use [`check_spark_types`] first to get an error instead.
pub fn to_struct_type_json(schema: &Schema) -> String {
    let mut out = String::new();
    json::write_struct(schema.fields(), &mut out);
    out
}

/// Checks that every column (nested too) has a Spark type.
pub fn check_spark_types(schema: &Schema) -> Result<(), SchemaError> {
    fn check(name: &str, dt: &DataType) -> Result<(), SchemaError> {
        match dt {
            DataType::Utf8
            | DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Date32
            | DataType::Binary
            | DataType::Decimal128(..)
            | DataType::Timestamp(TimeUnit::Microsecond, _) => Ok(()),
            DataType::List(f) => check(&format!("{name}.element"), f.data_type()),
            DataType::Map(e, _) => match e.data_type() {
                DataType::Struct(kv) if kv.len() == 2 => {
                    check(&format!("{name}.key"), kv[0].data_type())?;
                    check(&format!("{name}.value"), kv[1].data_type())
                }
                _ => Err(unsupported(name, dt)),
            },
            DataType::Struct(fs) => fs
                .iter()
                .try_for_each(|f| check(&format!("{name}.{}", f.name()), f.data_type())),
            _ => Err(unsupported(name, dt)),
        }
    }
    schema
        .fields()
        .iter()
        .try_for_each(|f| check(f.name(), f.data_type()))
}

mod ddl {
    //! Spark's DDL grammar for schemas (`CatalystSqlParser.parseTableSchema`).

    use super::*;

    pub(super) struct Parser<'a> {
        text: &'a str,
        chars: Vec<char>,
        pos: usize,
    }

    impl<'a> Parser<'a> {
        pub(super) fn new(text: &'a str) -> Self {
            Self {
                text,
                chars: text.chars().collect(),
                pos: 0,
            }
        }

        pub(super) fn syntax(&self, why: impl Into<String>) -> SchemaError {
            SchemaError::Syntax {
                text: self.text.to_string(),
                at: self.pos,
                why: why.into(),
            }
        }

        pub(super) fn at_end(&self) -> bool {
            self.pos >= self.chars.len()
        }

        fn peek(&self) -> Option<char> {
            self.chars.get(self.pos).copied()
        }

        pub(super) fn skip_ws(&mut self) {
            while self.peek().is_some_and(char::is_whitespace) {
                self.pos += 1;
            }
        }

        fn eat(&mut self, c: char) -> bool {
            self.skip_ws();
            if self.peek() == Some(c) {
                self.pos += 1;
                true
            } else {
                false
            }
        }

        fn expect(&mut self, c: char, what: &str) -> Result<(), SchemaError> {
            if self.eat(c) {
                Ok(())
            } else {
                Err(self.syntax(format!("expected `{c}` {what}")))
            }
        }

        /// An identifier word at the cursor (letters, digits, `_`), without moving.
        fn word_at(&self, at: usize) -> String {
            self.chars[at.min(self.chars.len())..]
                .iter()
                .take_while(|c| c.is_alphanumeric() || **c == '_')
                .collect()
        }

        pub(super) fn peek_keyword(&self, kw: &str) -> bool {
            self.word_at(self.pos).eq_ignore_ascii_case(kw)
        }

        pub(super) fn after_keyword_is(&self, c: char) -> bool {
            let mut at = self.pos + self.word_at(self.pos).chars().count();
            while self.chars.get(at).is_some_and(|c| c.is_whitespace()) {
                at += 1;
            }
            self.chars.get(at) == Some(&c)
        }

        fn eat_keyword(&mut self, kw: &str) -> bool {
            self.skip_ws();
            if self.peek_keyword(kw) {
                self.pos += kw.chars().count();
                true
            } else {
                false
            }
        }

        fn name(&mut self) -> Result<String, SchemaError> {
            self.skip_ws();
            if self.peek() == Some('`') {
                self.pos += 1;
                let mut name = String::new();
                loop {
                    match self.peek() {
                        None => return Err(self.syntax("unterminated `quoted` name")),
                        Some('`') if self.chars.get(self.pos + 1) == Some(&'`') => {
                            name.push('`');
                            self.pos += 2;
                        }
                        Some('`') => {
                            self.pos += 1;
                            return Ok(name);
                        }
                        Some(c) => {
                            name.push(c);
                            self.pos += 1;
                        }
                    }
                }
            }
            let w = self.word_at(self.pos);
            if w.is_empty() {
                return Err(self.syntax("expected a column name (use `backquotes` for other characters)"));
            }
            self.pos += w.chars().count();
            Ok(w)
        }

        fn string_literal(&mut self) -> Result<String, SchemaError> {
            self.skip_ws();
            let Some(q @ ('\'' | '"')) = self.peek() else {
                return Err(self.syntax("expected a quoted comment after COMMENT"));
            };
            self.pos += 1;
            let mut s = String::new();
            loop {
                match self.peek() {
                    None => return Err(self.syntax("unterminated comment string")),
                    Some('\\') => {
                        let Some(c) = self.chars.get(self.pos + 1).copied() else {
                            return Err(self.syntax("unterminated comment string"));
                        };
                        s.push(match c {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            c => c,
                        });
                        self.pos += 2;
                    }
                    Some(c) if c == q => {
                        self.pos += 1;
                        // A doubled quote stands for itself.
                        if self.peek() == Some(q) {
                            self.pos += 1;
                            s.push(q);
                            continue;
                        }
                        return Ok(s);
                    }
                    Some(c) => {
                        s.push(c);
                        self.pos += 1;
                    }
                }
            }
        }

        fn number(&mut self) -> Result<u32, SchemaError> {
            self.skip_ws();
            let start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            let digits: String = self.chars[start..self.pos].iter().collect();
            digits.parse().map_err(|_| {
                self.pos = start;
                self.syntax("expected a number")
            })
        }

        /// `name [:] type [NOT NULL] [COMMENT '…']`, separated by commas; stops before `close`.
        pub(super) fn fields(&mut self, close: Option<char>) -> Result<Vec<Field>, SchemaError> {
            let mut fields = Vec::new();
            loop {
                self.skip_ws();
                if self.at_end() || close.is_some_and(|c| self.peek() == Some(c)) {
                    if !fields.is_empty() && close.is_none() {
                        return Err(self.syntax("expected a column after `,`"));
                    }
                    return Ok(fields);
                }
                let name = self.name()?;
                self.eat(':');
                self.skip_ws();
                let dt = self.data_type()?;
                let mut nullable = true;
                if self.eat_keyword("not") {
                    if !self.eat_keyword("null") {
                        return Err(self.syntax("expected NULL after NOT"));
                    }
                    nullable = false;
                }
                let mut field = Field::new(name, dt, nullable);
                if self.eat_keyword("comment") {
                    let c = self.string_literal()?;
                    field = field.with_metadata(HashMap::from([("comment".to_string(), c)]));
                }
                fields.push(field);
                if !self.eat(',') {
                    return Ok(fields);
                }
            }
        }

        pub(super) fn data_type(&mut self) -> Result<DataType, SchemaError> {
            self.skip_ws();
            let at = self.pos;
            let word = self.word_at(at);
            if word.is_empty() {
                return Err(self.syntax("expected a type"));
            }
            self.pos += word.chars().count();
            let lower = word.to_ascii_lowercase();
            match lower.as_str() {
                "array" => {
                    self.expect('<', "after ARRAY")?;
                    let element = self.data_type()?;
                    self.expect('>', "to close ARRAY<…>")?;
                    Ok(list_type(element, true))
                }
                "map" => {
                    self.expect('<', "after MAP")?;
                    let key = self.data_type()?;
                    self.expect(',', "between the key and value types of MAP<…>")?;
                    let value = self.data_type()?;
                    self.expect('>', "to close MAP<…>")?;
                    Ok(map_type(key, value, true))
                }
                "struct" => {
                    self.expect('<', "after STRUCT")?;
                    let fields = self.fields(Some('>'))?;
                    self.expect('>', "or `,` in STRUCT<…>")?;
                    check_duplicates(&fields)?;
                    Ok(DataType::Struct(fields.into()))
                }
                "decimal" | "dec" | "numeric" => {
                    if !self.eat('(') {
                        return decimal(10, 0, at);
                    }
                    let precision = self.number()?;
                    let scale = if self.eat(',') { self.number()? } else { 0 };
                    self.expect(')', "to close DECIMAL(…)")?;
                    decimal(precision, scale, at)
                }
                "char" | "varchar" => {
                    self.expect('(', &format!("and a length after {}", word.to_uppercase()))?;
                    self.number()?;
                    self.expect(')', &format!("to close {}(…)", word.to_uppercase()))?;
                    Ok(DataType::Utf8)
                }
                _ => primitive(&lower).ok_or(SchemaError::UnknownType { name: word, at }),
            }
        }
    }
}

mod json {
    //! PySpark's `StructType.json()` / `jsonValue()` form.

    use serde_json::Value;

    use super::*;

    fn syntax(text: &str, why: impl Into<String>) -> SchemaError {
        SchemaError::Syntax {
            text: text.to_string(),
            at: 0,
            why: why.into(),
        }
    }

    fn parse_value(text: &str) -> Result<Value, SchemaError> {
        serde_json::from_str(text).map_err(|e| {
            // serde_json counts lines and columns from 1; convert to a character offset.
            let at = text
                .split_inclusive('\n')
                .take(e.line().saturating_sub(1))
                .map(|l| l.chars().count())
                .sum::<usize>()
                + e.column().saturating_sub(1);
            SchemaError::Syntax {
                text: text.to_string(),
                at,
                why: format!("not valid JSON ({e})"),
            }
        })
    }

    pub(super) fn parse_schema(text: &str) -> Result<Vec<Field>, SchemaError> {
        let v = parse_value(text)?;
        match data_type(text, &v, "the schema")? {
            DataType::Struct(fields) => Ok(fields.iter().map(|f| f.as_ref().clone()).collect()),
            _ => Err(syntax(
                text,
                "the schema must be a JSON object with \"type\":\"struct\"",
            )),
        }
    }

    pub(super) fn parse_type_text(text: &str) -> Result<DataType, SchemaError> {
        let v = parse_value(text)?;
        data_type(text, &v, "the type")
    }

    fn get<'v>(text: &str, obj: &'v Value, key: &str, what: &str) -> Result<&'v Value, SchemaError> {
        obj.get(key)
            .ok_or_else(|| syntax(text, format!("{what} has no \"{key}\"")))
    }

    fn get_bool(text: &str, obj: &Value, key: &str, what: &str) -> Result<bool, SchemaError> {
        match obj.get(key) {
            None => Ok(true),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(syntax(text, format!("\"{key}\" of {what} must be true or false"))),
        }
    }

    fn data_type(text: &str, v: &Value, what: &str) -> Result<DataType, SchemaError> {
        match v {
            Value::String(name) => {
                let mut p = ddl::Parser::new(name);
                let lower = name.to_ascii_lowercase();
                if lower.starts_with("decimal") {
                    let dt = p.data_type().map_err(|e| match e {
                        SchemaError::Syntax { why, .. } => {
                            syntax(text, format!("type \"{name}\" of {what}: {why}"))
                        }
                        e => e,
                    })?;
                    p.skip_ws();
                    if p.at_end() {
                        return Ok(dt);
                    }
                }
                primitive(name).ok_or_else(|| SchemaError::UnknownType {
                    name: name.clone(),
                    at: 0,
                })
            }
            Value::Object(_) => {
                let kind = get(text, v, "type", what)?;
                match kind.as_str() {
                    Some("struct") => {
                        let Value::Array(fs) = get(text, v, "fields", what)? else {
                            return Err(syntax(text, format!("\"fields\" of {what} must be an array")));
                        };
                        let fields = fs.iter().map(|f| field(text, f)).collect::<Result<Vec<_>, _>>()?;
                        check_duplicates(&fields)?;
                        Ok(DataType::Struct(fields.into()))
                    }
                    Some("array") => {
                        let e = data_type(text, get(text, v, "elementType", what)?, "an array's element")?;
                        Ok(list_type(e, get_bool(text, v, "containsNull", what)?))
                    }
                    Some("map") => {
                        let k = data_type(text, get(text, v, "keyType", what)?, "a map's key")?;
                        let val = data_type(text, get(text, v, "valueType", what)?, "a map's value")?;
                        Ok(map_type(k, val, get_bool(text, v, "valueContainsNull", what)?))
                    }
                    Some("udt") => Err(SchemaError::UnknownType {
                        name: "udt".into(),
                        at: 0,
                    }),
                    _ => Err(syntax(
                        text,
                        format!("\"type\" of {what} must be \"struct\", \"array\", \"map\" or a type name"),
                    )),
                }
            }
            _ => Err(syntax(
                text,
                format!("{what} must be a type name or a type object"),
            )),
        }
    }

    fn field(text: &str, f: &Value) -> Result<Field, SchemaError> {
        let Some(name) = f.get("name").and_then(Value::as_str) else {
            return Err(syntax(text, "a field has no string \"name\""));
        };
        let what = format!("field \"{name}\"");
        let dt = data_type(text, get(text, f, "type", &what)?, &what)?;
        let nullable = get_bool(text, f, "nullable", &what)?;
        let mut meta = HashMap::new();
        match f.get("metadata") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    meta.insert(k.clone(), s);
                }
            }
            Some(_) => return Err(syntax(text, format!("\"metadata\" of {what} must be an object"))),
        }
        Ok(Field::new(name, dt, nullable).with_metadata(meta))
    }

    /// A JSON string as Python's `json.dumps` writes it (`ensure_ascii=True`).
    fn write_str(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{08}' => out.push_str("\\b"),
                '\u{0c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || !c.is_ascii() => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        let _ = write!(out, "\\u{unit:04x}");
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    fn write_value(v: &Value, out: &mut String) {
        match v {
            Value::String(s) => write_str(s, out),
            Value::Array(items) => {
                out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_value(x, out);
                }
                out.push(']');
            }
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(k, out);
                    out.push(':');
                    write_value(&m[k], out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }

    fn type_name(dt: &DataType) -> String {
        match dt {
            DataType::Int8 => "byte".into(),
            DataType::Int16 => "short".into(),
            DataType::Int32 => "integer".into(),
            DataType::Int64 => "long".into(),
            other => simple_string(other),
        }
    }

    pub(super) fn write_struct(fields: &Fields, out: &mut String) {
        out.push_str("{\"fields\":[");
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"metadata\":{");
            let mut keys: Vec<&String> = f.metadata().keys().collect();
            keys.sort();
            for (j, k) in keys.into_iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                let v = &f.metadata()[k];
                // A value that was a JSON number, boolean, array or object goes back as one;
                // a comment is always text.
                match serde_json::from_str::<Value>(v) {
                    Ok(parsed) if k != "comment" && !parsed.is_string() => write_value(&parsed, out),
                    _ => write_str(v, out),
                }
            }
            out.push_str("},\"name\":");
            write_str(f.name(), out);
            let _ = write!(out, ",\"nullable\":{},\"type\":", f.is_nullable());
            write_type(f.data_type(), out);
            out.push('}');
        }
        out.push_str("],\"type\":\"struct\"}");
    }

    fn write_type(dt: &DataType, out: &mut String) {
        match dt {
            DataType::Struct(fields) => write_struct(fields, out),
            DataType::List(f) | DataType::LargeList(f) => {
                let _ = write!(out, "{{\"containsNull\":{},\"elementType\":", f.is_nullable());
                write_type(f.data_type(), out);
                out.push_str(",\"type\":\"array\"}");
            }
            DataType::Map(entries, _) => {
                let (k, v) = match entries.data_type() {
                    DataType::Struct(kv) if kv.len() == 2 => (kv[0].clone(), kv[1].clone()),
                    _ => {
                        write_str(&dt.to_string(), out);
                        return;
                    }
                };
                out.push_str("{\"keyType\":");
                write_type(k.data_type(), out);
                let _ = write!(
                    out,
                    ",\"type\":\"map\",\"valueContainsNull\":{},\"valueType\":",
                    v.is_nullable()
                );
                write_type(v.data_type(), out);
                out.push('}');
            }
            other => write_str(&type_name(other), out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DDL: &str = "event_id STRING, timestamp TIMESTAMP, user_id INT, amount DECIMAL(10,2), \
                       tags ARRAY<STRING>, addr STRUCT<city: STRING, zip: INT>, m MAP<STRING,INT>";

    const JSON: &str = r#"{"fields":[{"metadata":{},"name":"event_id","nullable":true,"type":"string"},{"metadata":{},"name":"timestamp","nullable":true,"type":"timestamp"},{"metadata":{},"name":"user_id","nullable":true,"type":"integer"},{"metadata":{},"name":"amount","nullable":true,"type":"decimal(10,2)"},{"metadata":{},"name":"tags","nullable":true,"type":{"containsNull":true,"elementType":"string","type":"array"}},{"metadata":{},"name":"addr","nullable":true,"type":{"fields":[{"metadata":{},"name":"city","nullable":true,"type":"string"},{"metadata":{},"name":"zip","nullable":true,"type":"integer"}],"type":"struct"}},{"metadata":{},"name":"m","nullable":true,"type":{"keyType":"string","type":"map","valueContainsNull":true,"valueType":"integer"}}],"type":"struct"}"#;

    #[test]
    fn ddl_and_json_give_the_same_schema() {
        let a = parse_schema(DDL).unwrap();
        let b = parse_schema(JSON).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.field(0).data_type(), &DataType::Utf8);
        assert_eq!(a.field(1).data_type(), &timestamp_type());
        assert_eq!(a.field(3).data_type(), &DataType::Decimal128(10, 2));
        assert_eq!(
            a.field(6).data_type(),
            &map_type(DataType::Utf8, DataType::Int32, true)
        );
        assert!(a.fields().iter().all(|f| f.is_nullable()));
    }

    #[test]
    fn json_round_trips_exactly_as_pyspark_writes_it() {
        let s = parse_schema(JSON).unwrap();
        assert_eq!(to_struct_type_json(&s), JSON);
        let nested = r#"{"fields":[{"metadata":{"comment":"caf\u00e9 \ud83d\ude00","x":1},"name":"a b","nullable":false,"type":{"containsNull":false,"elementType":{"keyType":"date","type":"map","valueContainsNull":false,"valueType":"binary"},"type":"array"}},{"metadata":{},"name":"t","nullable":true,"type":"timestamp_ntz"},{"metadata":{},"name":"n","nullable":true,"type":"byte"},{"metadata":{},"name":"s","nullable":true,"type":"short"},{"metadata":{},"name":"l","nullable":true,"type":"long"},{"metadata":{},"name":"f","nullable":true,"type":"float"},{"metadata":{},"name":"d","nullable":true,"type":"double"},{"metadata":{},"name":"b","nullable":true,"type":"boolean"}],"type":"struct"}"#;
        let s = parse_schema(nested).unwrap();
        assert_eq!(s.field(0).metadata()["comment"], "café 😀");
        assert_eq!(to_struct_type_json(&s), nested);
        check_spark_types(&s).unwrap();
    }

    #[test]
    fn ddl_round_trips() {
        let ddl = "a INT NOT NULL COMMENT 'it''s \\'x\\'',`b c` STRUCT<`x`: STRING NOT NULL, `y`: ARRAY<DECIMAL(38,18)>>,m MAP<STRING, ARRAY<BIGINT>>,t TIMESTAMP_NTZ,d DATE,bin BINARY,f FLOAT,g DOUBLE,h TINYINT,i SMALLINT,k BOOLEAN";
        let s = parse_schema(ddl).unwrap();
        assert!(!s.field(0).is_nullable());
        assert_eq!(s.field(0).metadata()["comment"], "it's 'x'");
        assert_eq!(s.field(1).name(), "b c");
        let out = to_ddl(&s);
        assert_eq!(parse_schema(&out).unwrap(), s, "{out}");
        assert_eq!(parse_schema(&to_struct_type_json(&s)).unwrap(), s);
        assert_eq!(
            out,
            "a INT NOT NULL COMMENT 'it\\'s \\'x\\'',`b c` STRUCT<`x`: STRING NOT NULL, `y`: ARRAY<DECIMAL(38,18)>>,m MAP<STRING, ARRAY<BIGINT>>,t TIMESTAMP_NTZ,d DATE,bin BINARY,f FLOAT,g DOUBLE,h TINYINT,i SMALLINT,k BOOLEAN"
        );
    }

    #[test]
    fn synonyms_case_and_spacing() {
        let s = parse_schema(
            "  A integer , b Long,c short, d byte, e real, f Decimal, g dec(5), h numeric(7, 3), i VARCHAR(10), j char(2), k timestamp_ltz, l bool, `we``ird` string, n struct<>, o: int ",
        )
        .unwrap();
        let types: Vec<_> = s.fields().iter().map(|f| simple_string(f.data_type())).collect();
        assert_eq!(
            types,
            [
                "int",
                "bigint",
                "smallint",
                "tinyint",
                "float",
                "decimal(10,0)",
                "decimal(5,0)",
                "decimal(7,3)",
                "string",
                "string",
                "timestamp",
                "boolean",
                "string",
                "struct<>",
                "int"
            ]
        );
        assert_eq!(s.field(12).name(), "we`ird");
        assert_eq!(
            parse_schema("struct<a:int, b:string>").unwrap(),
            parse_schema("a INT, b STRING").unwrap()
        );
    }

    #[test]
    fn simple_strings() {
        let cases = [
            ("int", "int"),
            ("bigint", "bigint"),
            ("decimal(10,2)", "decimal(10,2)"),
            ("struct<a:int,b:string>", "struct<a:int,b:string>"),
            ("array<string>", "array<string>"),
            ("map<string,int>", "map<string,int>"),
            ("timestamp", "timestamp"),
            ("timestamp_ntz", "timestamp_ntz"),
            (
                "ARRAY<STRUCT<x: MAP<STRING, DATE>>>",
                "array<struct<x:map<string,date>>>",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(simple_string(&parse_data_type(text).unwrap()), want);
        }
        assert_eq!(parse_data_type("\"integer\"").unwrap(), DataType::Int32);
        assert_eq!(
            parse_data_type(r#"{"type":"array","elementType":"long","containsNull":false}"#).unwrap(),
            list_type(DataType::Int64, false)
        );
    }

    #[test]
    fn every_error_variant() {
        let err = |t: &str| parse_schema(t).unwrap_err();
        assert!(
            matches!(err("a INT,"), SchemaError::Syntax { at: 6, .. }),
            "{:?}",
            err("a INT,")
        );
        assert!(matches!(err("a ARRAY<INT"), SchemaError::Syntax { .. }));
        assert!(matches!(err("a INT b"), SchemaError::Syntax { at: 6, .. }));
        assert!(matches!(err("a INT NOT"), SchemaError::Syntax { .. }));
        assert!(matches!(err("`a INT"), SchemaError::Syntax { .. }));
        assert!(matches!(err("a MAP<STRING>"), SchemaError::Syntax { .. }));
        assert!(matches!(err("{\"type\":\"struct\""), SchemaError::Syntax { .. }));
        assert!(matches!(err("{\"type\":\"struct\"}"), SchemaError::Syntax { .. }));
        assert!(matches!(
            err("{\"type\":\"struct\",\"fields\":[{\"name\":\"a\"}]}"),
            SchemaError::Syntax { .. }
        ));
        assert_eq!(
            err("a INT, b VARCHAR2"),
            SchemaError::UnknownType {
                name: "VARCHAR2".into(),
                at: 9
            }
        );
        assert!(matches!(err("a INTERVAL"), SchemaError::UnknownType { .. }));
        assert!(matches!(
            err(r#"{"type":"struct","fields":[{"name":"a","type":"uuid","nullable":true,"metadata":{}}]}"#),
            SchemaError::UnknownType { .. }
        ));
        assert_eq!(
            err("x DECIMAL(39,2)"),
            SchemaError::DecimalPrecision {
                precision: 39,
                scale: 2,
                at: 2
            }
        );
        assert!(matches!(
            err("x DECIMAL(5,6)"),
            SchemaError::DecimalPrecision { .. }
        ));
        assert!(matches!(
            err("x DECIMAL(0)"),
            SchemaError::DecimalPrecision { .. }
        ));
        assert!(matches!(
            err(r#"{"type":"struct","fields":[{"name":"a","type":"decimal(40,1)"}]}"#),
            SchemaError::DecimalPrecision { .. }
        ));
        assert_eq!(
            err("a INT, A STRING"),
            SchemaError::DuplicateColumn { name: "A".into() }
        );
        assert!(matches!(
            err("s STRUCT<x: INT, x: INT>"),
            SchemaError::DuplicateColumn { .. }
        ));
        assert_eq!(err(""), SchemaError::Empty);
        assert_eq!(err(r#"{"type":"struct","fields":[]}"#), SchemaError::Empty);
        let bad = Schema::new(vec![Field::new("u", DataType::UInt32, true)]);
        assert!(matches!(
            check_spark_types(&bad),
            Err(SchemaError::Unsupported { .. })
        ));
        // Every message says where and what.
        assert!(err("a INT,").to_string().contains("position 6"));
        assert!(
            err("x DECIMAL(39,2)")
                .to_string()
                .contains("precision must be 1 to 38")
        );
        assert!(err("a INT, A STRING").to_string().contains("`A`"));
    }
}
