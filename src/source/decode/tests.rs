use std::collections::BTreeMap;

use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::datatypes::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimestampMicrosecondType,
};
use proptest::prelude::*;

use super::*;
use crate::schema::parse_schema;

const BASE: i64 = 1_795_514_400_000_000; // 2026-11-24T10:00:00Z

fn decoder(schema: &str, options: JsonOptions) -> Decoder {
    Decoder::new(parse_schema(schema).unwrap(), options)
}

fn run(d: &Decoder, text: &str) -> Parsed {
    d.decode(
        &[Piece {
            file: "f.json",
            bytes: text.as_bytes(),
            first_line: 1,
        }],
        1,
    )
}

fn decode(schema: &str, text: &str) -> Parsed {
    run(&decoder(schema, JsonOptions::default()), text)
}

/// The reason the single line `line` was rejected (asserting it was).
fn reject(schema: &str, line: &str) -> String {
    let p = decode(schema, line);
    assert_eq!(p.rows.num_rows(), 0, "{line} should be rejected");
    assert_eq!(p.rejects.len(), 1, "{line}");
    assert_eq!(p.records, 1);
    p.rejects[0].reason.clone()
}

#[test]
fn every_type_converts() {
    let schema = "s STRING, b BOOLEAN, i8 TINYINT, i16 SMALLINT, i32 INT, i64 BIGINT, f FLOAT, d DOUBLE, \
                  dec DECIMAL(10,2), dt DATE, ts TIMESTAMP, ntz TIMESTAMP_NTZ, bin BINARY, \
                  st STRUCT<x: INT, y: ARRAY<STRING>>, a ARRAY<INT>, m MAP<STRING, DOUBLE>";
    let line = r#"{"s":"h\u00e9","b":true,"i8":-128,"i16":32767,"i32":-5,"i64":9223372036854775807,"f":1.5,"d":2,"dec":"12.345","dt":"2026-11-24","ts":"2026-11-24T11:00:00+01:00","ntz":"2026-11-24 10:00:00.000001","bin":"aGk=","st":{"x":3,"y":["p",null]},"a":[1,null,3],"m":{"k":1.5,"n":null}}"#;
    let p = decode(schema, line);
    assert!(p.rejects.is_empty(), "{:?}", p.rejects);
    let r = &p.rows;
    assert_eq!(r.num_rows(), 1);
    assert_eq!(r.column(0).as_string::<i32>().value(0), "hé");
    assert!(r.column(1).as_boolean().value(0));
    assert_eq!(r.column(2).as_primitive::<Int8Type>().value(0), -128);
    assert_eq!(r.column(3).as_primitive::<Int16Type>().value(0), 32767);
    assert_eq!(r.column(4).as_primitive::<Int32Type>().value(0), -5);
    assert_eq!(r.column(5).as_primitive::<Int64Type>().value(0), i64::MAX);
    assert_eq!(r.column(6).as_primitive::<Float32Type>().value(0), 1.5);
    assert_eq!(r.column(7).as_primitive::<Float64Type>().value(0), 2.0);
    // 12.345 rounds HALF_UP to 12.35.
    assert_eq!(r.column(8).as_primitive::<Decimal128Type>().value(0), 1235);
    assert_eq!(r.column(9).as_primitive::<Date32Type>().value(0), 20_781);
    assert_eq!(
        r.column(10).as_primitive::<TimestampMicrosecondType>().value(0),
        BASE
    );
    assert_eq!(
        r.column(11).as_primitive::<TimestampMicrosecondType>().value(0),
        BASE + 1
    );
    assert_eq!(r.column(12).as_binary::<i32>().value(0), b"hi");
    let st = r.column(13).as_struct();
    assert_eq!(st.column(0).as_primitive::<Int32Type>().value(0), 3);
    let y = st.column(1).as_list::<i32>().value(0);
    assert_eq!(y.as_string::<i32>().value(0), "p");
    assert!(y.is_null(1));
    let a = r.column(14).as_list::<i32>().value(0);
    assert_eq!(a.len(), 3);
    assert!(a.is_null(1));
    let m = r.column(15).as_map();
    assert_eq!(m.value(0).len(), 2);
    assert_eq!(m.keys().as_string::<i32>().value(1), "n");
    assert!(m.values().is_null(1));
    assert_eq!(r.schema(), parse_schema(schema).unwrap());
}

#[test]
fn spark_token_rules() {
    // Strings take any value, a non-string as its JSON text without blanks.
    let p = decode(
        "s STRING",
        "{\"s\":17}\n{\"s\":true}\n{\"s\": { \"a\" : [1, 2], \"b\":\"x y\" }}\n{\"s\":1.50}",
    );
    let s = p.rows.column(0).as_string::<i32>();
    assert_eq!(
        (0..4).map(|i| s.value(i)).collect::<Vec<_>>(),
        ["17", "true", r#"{"a":[1,2],"b":"x y"}"#, "1.50"]
    );
    // Doubles take integers and the non-numeric strings.
    let p = decode(
        "d DOUBLE, f FLOAT",
        "{\"d\":\"NaN\",\"f\":\"-INF\"}\n{\"d\":\"+Infinity\",\"f\":3}\n{\"d\":-0.0,\"f\":1e-50}",
    );
    assert!(p.rejects.is_empty(), "{:?}", p.rejects);
    let d = p.rows.column(0).as_primitive::<Float64Type>();
    assert!(d.value(0).is_nan());
    assert_eq!(d.value(1), f64::INFINITY);
    assert_eq!(
        p.rows.column(1).as_primitive::<Float32Type>().value(0),
        f32::NEG_INFINITY
    );
    let off = JsonOptions {
        allow_non_numeric_numbers: false,
        ..JsonOptions::default()
    };
    assert_eq!(run(&decoder("d DOUBLE", off), r#"{"d":"NaN"}"#).rejects.len(), 1);
    // A timestamp may be integer seconds; unknown fields are ignored; names are case-sensitive.
    let p = decode(
        "ts TIMESTAMP, Id INT",
        r#"{"ts":1795514400,"id":5,"other":{"deep":[1,{"x":null}]}}"#,
    );
    assert!(p.rejects.is_empty(), "{:?}", p.rejects);
    assert_eq!(
        p.rows
            .column(0)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        BASE
    );
    assert!(p.rows.column(1).is_null(0));
    // Escaped names match their text; an empty struct takes any object.
    let p = decode("a INT, e STRUCT<>", r#"{"\u0061":3,"e":{"x":1}}"#);
    assert!(p.rejects.is_empty(), "{:?}", p.rejects);
    assert_eq!(p.rows.column(0).as_primitive::<Int32Type>().value(0), 3);
    assert!(p.rows.column(1).is_valid(0));
    // A repeated field: the last one wins.
    let p = decode("a INT", r#"{"a":1,"a":2}"#);
    assert_eq!(p.rows.column(0).as_primitive::<Int32Type>().value(0), 2);
}

#[test]
fn nulls_and_missing_fields() {
    let p = decode(
        "a INT, s STRUCT<x: INT, y: STRING>, l ARRAY<INT>, m MAP<STRING,INT>",
        "{}\n{\"a\":null,\"s\":null,\"l\":null,\"m\":null}\n{\"s\":{}}",
    );
    assert!(p.rejects.is_empty(), "{:?}", p.rejects);
    assert_eq!(p.rows.num_rows(), 3);
    for c in 0..4 {
        assert!(
            p.rows.column(c).is_null(0) && p.rows.column(c).is_null(1),
            "column {c}"
        );
    }
    let s = p.rows.column(1).as_struct();
    assert!(s.is_valid(2) && s.column(0).is_null(2));

    assert_eq!(
        reject("a INT NOT NULL, b INT", r#"{"b":1}"#),
        "column `a` is NOT NULL but the field is missing"
    );
    assert_eq!(
        reject("a INT NOT NULL", r#"{"a":null}"#),
        "column `a` is NOT NULL but the value is null"
    );
    assert_eq!(
        reject("s STRUCT<x: INT NOT NULL>", r#"{"s":{"y":1}}"#),
        "column `s.x` is NOT NULL but the field is missing"
    );
    // Non-null elements and values, from the JSON form.
    let schema = r#"{"type":"struct","fields":[{"name":"l","type":{"type":"array","elementType":"integer","containsNull":false},"nullable":true,"metadata":{}}]}"#;
    assert_eq!(
        reject(schema, r#"{"l":[1,null]}"#),
        "column `l[1]` is NOT NULL but the value is null"
    );
    // A NOT NULL field of a null struct is fine.
    let p = decode("s STRUCT<x: INT NOT NULL>", r#"{"s":null}"#);
    assert!(p.rejects.is_empty() && p.rows.column(0).is_null(0));
}

#[test]
fn integers_must_fit() {
    let cases = [
        (
            "TINYINT",
            "128",
            "column `n`: 128 is out of range for tinyint (-128 to 127)",
        ),
        ("TINYINT", "-129", "out of range for tinyint"),
        ("SMALLINT", "32768", "out of range for smallint (-32768 to 32767)"),
        (
            "INT",
            "2147483648",
            "out of range for int (-2147483648 to 2147483647)",
        ),
        ("BIGINT", "9223372036854775808", "out of range for bigint"),
        ("BIGINT", "-99999999999999999999999", "out of range for bigint"),
        ("INT", "1.0", "column `n`: expected int, found number `1.0`"),
        ("INT", "1e3", "expected int, found number `1e3`"),
        ("INT", "\"5\"", "column `n`: expected int, found string `\"5\"`"),
        ("INT", "true", "expected int, found boolean `true`"),
        ("INT", "[1]", "expected int, found array `[1]`"),
        ("INT", "{\"v\":1}", "expected int, found object `{\"v\":1}`"),
        ("FLOAT", "1e39", "column `n`: 1e39 is out of range for float"),
        ("DOUBLE", "1e999", "out of range for double"),
        ("DOUBLE", "\"1.5\"", "expected double, found string"),
        ("BOOLEAN", "1", "expected boolean, found number `1`"),
        ("BOOLEAN", "\"true\"", "expected boolean, found string"),
    ];
    for (ty, v, want) in cases {
        let r = reject(&format!("n {ty}"), &format!("{{\"n\":{v}}}"));
        assert!(r.contains(want), "{ty} {v}: {r:?} should contain {want:?}");
    }
}

#[test]
fn decimals_round_half_up_and_reject_overflow() {
    let ok = [
        ("DECIMAL(10,2)", "1.005", 101),
        ("DECIMAL(10,2)", "-1.005", -101),
        ("DECIMAL(10,2)", "1.004", 100),
        ("DECIMAL(10,2)", "\"1,234.5\"", 123_450),
        ("DECIMAL(5,2)", "1e2", 10_000),
        ("DECIMAL(5,2)", "\"+.5\"", 50),
        ("DECIMAL(5,2)", "0.000", 0),
        ("DECIMAL(5,2)", "0e99999999999", 0),
        ("DECIMAL(5,2)", "1e-99999999999", 0),
        ("DECIMAL(5,2)", "125E-3", 13),
        ("DECIMAL(4,2)", "99.994", 9999),
        (
            "DECIMAL(38,0)",
            "99999999999999999999999999999999999999",
            99_999_999_999_999_999_999_999_999_999_999_999_999,
        ),
        ("DECIMAL(10,0)", "7", 7),
    ];
    for (ty, v, want) in ok {
        let p = decode(&format!("n {ty}"), &format!("{{\"n\":{v}}}"));
        assert!(p.rejects.is_empty(), "{ty} {v}: {:?}", p.rejects);
        assert_eq!(
            p.rows.column(0).as_primitive::<Decimal128Type>().value(0),
            want,
            "{ty} {v}"
        );
    }
    let bad = [
        (
            "DECIMAL(4,2)",
            "123.45",
            "column `n`: 123.45 does not fit decimal(4,2)",
        ),
        ("DECIMAL(4,2)", "99.995", "does not fit decimal(4,2)"),
        ("DECIMAL(38,0)", "1e38", "does not fit"),
        ("DECIMAL(5,2)", "1e99999999999", "does not fit"),
        (
            "DECIMAL(5,2)",
            "\"abc\"",
            "expected decimal(5,2), found string `\"abc\"`",
        ),
        ("DECIMAL(5,2)", "\"1.2.3\"", "expected decimal(5,2)"),
        ("DECIMAL(5,2)", "\"\"", "expected decimal(5,2)"),
        ("DECIMAL(5,2)", "\"1e\"", "expected decimal(5,2)"),
        ("DECIMAL(5,2)", "true", "expected decimal(5,2), found boolean"),
    ];
    for (ty, v, want) in bad {
        let r = reject(&format!("n {ty}"), &format!("{{\"n\":{v}}}"));
        assert!(r.contains(want), "{ty} {v}: {r:?}");
    }
}

#[test]
fn dates_and_timestamps() {
    let p = decode(
        "d DATE, t TIMESTAMP",
        "{\"d\":\"1970-1-2\",\"t\":\"1970-01-02\"}\n{\"d\":\"1970-01-02T10:00\",\"t\":\"1970-01-01 00:00:01.5Z\"}",
    );
    assert!(p.rejects.is_empty(), "{:?}", p.rejects);
    let d = p.rows.column(0).as_primitive::<Date32Type>();
    assert_eq!((d.value(0), d.value(1)), (1, 1));
    let t = p.rows.column(1).as_primitive::<TimestampMicrosecondType>();
    assert_eq!((t.value(0), t.value(1)), (86_400_000_000, 1_500_000));

    let opts = JsonOptions::from_spark(&BTreeMap::from([
        (
            "timestampFormat".to_string(),
            "dd/MM/yyyy HH:mm[:ss][XXX]".to_string(),
        ),
        ("dateFormat".to_string(), "dd.MM.yyyy".to_string()),
        ("timestampNTZFormat".to_string(), "yyyyMMddHHmmss".to_string()),
    ]))
    .unwrap();
    let d = decoder("d DATE, t TIMESTAMP, n TIMESTAMP_NTZ", opts);
    let p = run(
        &d,
        r#"{"d":"24.11.2026","t":"24/11/2026 11:00+01:00","n":"20261124100000"}"#,
    );
    assert!(p.rejects.is_empty(), "{:?}", p.rejects);
    assert_eq!(p.rows.column(0).as_primitive::<Date32Type>().value(0), 20_781);
    assert_eq!(
        p.rows
            .column(1)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        BASE
    );
    assert_eq!(
        p.rows
            .column(2)
            .as_primitive::<TimestampMicrosecondType>()
            .value(0),
        BASE
    );
    let p = run(&d, r#"{"d":"2026-11-24"}"#);
    assert!(
        p.rejects[0]
            .reason
            .contains("does not match the pattern `dd.MM.yyyy`"),
        "{:?}",
        p.rejects
    );

    let bad = [
        (
            "d DATE",
            r#""2026-13-01""#,
            "column `d`: `2026-13-01` is not a date",
        ),
        ("d DATE", r#""""#, "is not a date"),
        (
            "d DATE",
            "20416",
            "column `d`: expected date, found number `20416`",
        ),
        (
            "t TIMESTAMP",
            r#""soon""#,
            "column `t`: `soon` is not an ISO-8601 timestamp",
        ),
        ("t TIMESTAMP", r#""2026-11-24T25:00:00""#, "no such time of day"),
        ("t TIMESTAMP", "1.5", "expected timestamp, found number `1.5`"),
        (
            "t TIMESTAMP",
            "9223372036854775807",
            "seconds since the epoch is out of range",
        ),
        ("t TIMESTAMP", "{}", "expected timestamp, found object"),
        ("t TIMESTAMP_NTZ", r#""2026-11-24T10:00:00Z""#, "has a time zone"),
        (
            "t TIMESTAMP_NTZ",
            "1795514400",
            "expected timestamp_ntz, found number",
        ),
    ];
    for (schema, v, want) in bad {
        let field = schema.split(' ').next().unwrap();
        let r = reject(schema, &format!("{{\"{field}\":{v}}}"));
        assert!(r.contains(want), "{schema} {v}: {r:?}");
    }
}

#[test]
fn binary_is_base64() {
    let p = decode(
        "b BINARY",
        "{\"b\":\"\"}\n{\"b\":\"AAEC/w\"}\n{\"b\":\"aGVs bG8=\"}",
    );
    assert!(p.rejects.is_empty(), "{:?}", p.rejects);
    let b = p.rows.column(0).as_binary::<i32>();
    assert_eq!(b.value(0), b"");
    assert_eq!(b.value(1), [0, 1, 2, 255]);
    assert_eq!(b.value(2), b"hello");
    for v in [r#""a!""#, r#""a""#, r#""aa=a""#, "[1]"] {
        let r = reject("b BINARY", &format!("{{\"b\":{v}}}"));
        assert!(r.starts_with("column `b`"), "{v}: {r}");
    }
}

#[test]
fn nested_values_and_maps() {
    let p = decode(
        "m MAP<INT, ARRAY<STRUCT<v: DOUBLE>>>",
        r#"{"m":{"1":[{"v":1}],"-2":[],"3":null}}"#,
    );
    assert!(p.rejects.is_empty(), "{:?}", p.rejects);
    let m = p.rows.column(0).as_map();
    assert_eq!(m.keys().as_primitive::<Int32Type>().values(), &[1, -2, 3]);
    let bad = [
        (
            "m MAP<STRING,INT>",
            r#"{"m":{"a":1,"a":2}}"#,
            "column `m`: map key `a` appears twice",
        ),
        (
            "m MAP<INT,INT>",
            r#"{"m":{"x":1}}"#,
            "column `m key`: expected int, found string `\"x\"`",
        ),
        (
            "m MAP<STRING,INT>",
            r#"{"m":{"a":"1"}}"#,
            "column `m[\"a\"]`: expected int",
        ),
        (
            "m MAP<STRING,INT>",
            r#"{"m":[1]}"#,
            "column `m`: expected map<string,int>, found array `[1]`",
        ),
        (
            "a ARRAY<INT>",
            r#"{"a":[1,2,"x"]}"#,
            "column `a[2]`: expected int, found string",
        ),
        (
            "a ARRAY<INT>",
            r#"{"a":{"0":1}}"#,
            "column `a`: expected array<int>, found object",
        ),
        (
            "s STRUCT<a: STRUCT<b: INT>>",
            r#"{"s":{"a":{"b":1.5}}}"#,
            "column `s.a.b`: expected int, found number `1.5`",
        ),
        (
            "s STRUCT<a: INT>",
            r#"{"s":5}"#,
            "column `s`: expected struct<a:int>, found number `5`",
        ),
    ];
    for (schema, line, want) in bad {
        let r = reject(schema, line);
        assert!(r.contains(want), "{line}: {r:?}");
    }
}

#[test]
fn hostile_lines_are_rejects_and_good_lines_flow() {
    let schema = "a INT, s STRING, l ARRAY<ARRAY<INT>>, st STRUCT<x: STRUCT<y: STRING>>";
    let good = r#"{"a":1,"s":"x","l":[[1],[2,3]],"st":{"x":{"y":"z"}}}"#;
    let deep = format!("{{\"l\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_unknown = format!("{{\"zz\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    let huge = format!("{{\"s\":\"{}\"", "x".repeat(4 << 20));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{not json".to_vec(), "malformed JSON"),
        (
            b"[1,2,3]".to_vec(),
            "a line must hold one JSON object, found an array `[1,2,3]`",
        ),
        (b"[{\"a\":1}]".to_vec(), "found an array"),
        (b"\"text\"".to_vec(), "found a string"),
        (b"42".to_vec(), "found a number"),
        (b"null".to_vec(), "found null"),
        (
            b"{\"a\":1} trailing".to_vec(),
            "malformed JSON: trailing characters",
        ),
        (b"{\"a\":1}{\"a\":2}".to_vec(), "malformed JSON"),
        (b"{'a':1}".to_vec(), "malformed JSON"),
        (b"{\"a\":01}".to_vec(), "malformed JSON"),
        (b"{\"a\":NaN}".to_vec(), "malformed JSON"),
        (b"{\"s\":\"\\ud800\"}".to_vec(), "column `s`: bad string escape"),
        (b"{\"s\":\"\xff\xfe\"}".to_vec(), "invalid UTF-8 at byte 6"),
        (
            b"{\"l\":[[1],[\"x\"]]}".to_vec(),
            "column `l[1][0]`: expected int",
        ),
        (
            b"{\"l\":[[1],7]}".to_vec(),
            "column `l[1]`: expected array<int>, found number `7`",
        ),
        (
            b"{\"st\":{\"x\":[]}}".to_vec(),
            "column `st.x`: expected struct<y:string>, found array",
        ),
        (
            deep.into_bytes(),
            "column `l[0][0]`: expected int, found array `[[[[",
        ),
        (huge.clone().into_bytes(), "malformed JSON: EOF while parsing"),
    ];
    for (line, want) in cases {
        let mut text = good.as_bytes().to_vec();
        text.push(b'\n');
        text.extend_from_slice(&line);
        text.extend_from_slice(b"\r\n\n   \n");
        text.extend_from_slice(good.as_bytes());
        let d = decoder(schema, JsonOptions::default());
        let p = d.decode(
            &[Piece {
                file: "f.json",
                bytes: &text,
                first_line: 1,
            }],
            1,
        );
        assert_eq!(p.records, 3);
        assert_eq!(
            p.rows.num_rows(),
            2,
            "good rows still flow around {}",
            short(&String::from_utf8_lossy(&line))
        );
        assert_eq!(p.rejects.len(), 1);
        let r = &p.rejects[0];
        assert_eq!((r.file.as_str(), r.line), ("f.json", 2));
        assert!(r.reason.contains(want), "{:?} should say {want:?}", r.reason);
        assert!(r.raw.len() <= parse::MAX_RAW_BYTES);
        assert_eq!(r.raw_bytes, line.len() as u64);
        // The partial values of the rejected line were dropped: both rows are the good one.
        let l = p.rows.column(2).as_list::<i32>();
        assert_eq!(l.value_offsets(), &[0, 2, 4]);
        assert_eq!(l.values().as_list::<i32>().value_offsets(), &[0, 1, 3, 4, 6]);
    }
    // An unknown field is skipped however deep it nests (and without deep recursion).
    let p = decode(schema, &deep_unknown);
    assert_eq!((p.rows.num_rows(), p.rejects.len()), (1, 0));
}

fn sample(lines: usize) -> String {
    let mut text = String::new();
    for i in 0..lines {
        match i % 13 {
            0 => text.push_str("{broken\n"),
            5 => text.push('\n'),
            7 => text.push_str(&format!("{{\"event_id\":\"e{i}\",\"user_id\":1e3}}\n")),
            _ => text.push_str(&format!(
                "{{\"event_id\":\"e{i}\",\"timestamp\":\"2026-11-24T10:00:00.{:06}\",\"user_id\":{i},\"event_type\":\"click\",\"value\":{}.5,\"tags\":[\"a\",\"b{i}\"]}}\n",
                i % 1_000_000,
                i % 100
            )),
        }
    }
    text
}

#[test]
fn parallel_equals_sequential() {
    let text = sample(20_000);
    let d = Decoder::new(
        parse_schema("event_id STRING, timestamp TIMESTAMP, user_id INT, event_type STRING, value DOUBLE, tags ARRAY<STRING>")
            .unwrap(),
        JsonOptions::default(),
    );
    let seq = run(&d, &text);
    assert!(!seq.rejects.is_empty());
    for (target, threads) in [(1000, 2), (50_000, 2), (1 << 20, 1), (7, 3), (100_000, 4)] {
        let ps = parse::pieces("f.json", text.as_bytes(), target);
        let p = d.decode(&ps, threads);
        assert_eq!(p.rows, seq.rows, "{target} {threads}");
        assert_eq!(p.rejects, seq.rejects);
        assert_eq!(p.records, seq.records);
    }
}

#[test]
fn the_event_schema_reads_like_the_seed() {
    let text = sample(3_000);
    let ps = parse::pieces("f.json", text.as_bytes(), 10_000);
    let seed = Decoder::seed().decode(&ps, 2);
    let general = Decoder::new(event_schema(), JsonOptions::default()).decode(&ps, 2);
    assert_eq!(Decoder::seed().schema(), event_schema());
    assert_eq!(seed.rows, general.rows);
    assert_eq!(seed.records, general.records);
    let lines = |p: &Parsed| p.rejects.iter().map(|r| r.line).collect::<Vec<_>>();
    assert_eq!(lines(&seed), lines(&general));
}

#[test]
fn unsupported_arrow_types_reject_records() {
    use deltalake::arrow::datatypes::{Field, Schema};
    let schema = Arc::new(Schema::new(vec![Field::new("u", DataType::UInt32, true)]));
    assert!(Decoder::try_new(schema.clone(), JsonOptions::default()).is_err());
    let d = Decoder::new(schema, JsonOptions::default());
    let p = run(&d, "{\"u\":1}\n{}");
    assert_eq!(p.rows.num_rows(), 1);
    assert!(
        p.rejects[0].reason.contains("column `u` has type UInt32"),
        "{:?}",
        p.rejects
    );
}

#[test]
fn options_follow_spark_names() {
    let o = |pairs: &[(&str, &str)]| {
        JsonOptions::from_spark(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    assert_eq!(o(&[]).unwrap(), JsonOptions::default());
    let x = o(&[
        ("MODE", "failfast"),
        ("allowNonNumericNumbers", "false"),
        ("samplingRatio", "0.5"),
        ("primitivesAsString", "true"),
        ("multiLine", "false"),
        ("encoding", "UTF-8"),
        ("allowSingleQuotes", "false"),
        ("timeZone", "UTC"),
    ])
    .unwrap();
    assert_eq!(x.mode, Mode::FailFast);
    assert!(!x.allow_non_numeric_numbers);
    assert_eq!(o(&[("mode", "DROPMALFORMED")]).unwrap().mode, Mode::DropMalformed);
    assert!(matches!(o(&[("colour", "red")]), Err(OptionError::Unknown { name }) if name == "colour"));
    assert!(matches!(
        o(&[("mode", "LENIENT")]),
        Err(OptionError::BadValue { .. })
    ));
    assert!(matches!(
        o(&[("allowNonNumericNumbers", "yes")]),
        Err(OptionError::BadValue { .. })
    ));
    for (k, v) in [
        ("multiLine", "true"),
        ("allowSingleQuotes", "true"),
        ("allowNumericLeadingZeros", "true"),
        ("encoding", "UTF-16"),
        ("timeZone", "Europe/Paris"),
        ("columnNameOfCorruptRecord", "_corrupt_record"),
    ] {
        assert!(
            matches!(o(&[(k, v)]), Err(OptionError::Unsupported { .. })),
            "{k}"
        );
    }
    let e = o(&[("dateFormat", "yyyy-MM-dd VV")]).unwrap_err();
    assert!(matches!(e, OptionError::Pattern { .. }));
    assert!(e.to_string().contains("dateFormat"), "{e}");
    assert!(
        o(&[("colour", "red")])
            .unwrap_err()
            .to_string()
            .contains("`colour`")
    );
}

#[test]
fn failfast_fails_the_batch_and_permissive_rejects() {
    use crate::source::{FileSource, LatestOffset};
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("a.json"), "{\"a\":1}\n{\"a\":\"x\"}\n").unwrap();
    let schema = parse_schema("a INT").unwrap();
    for (mode, fails) in [
        ("PERMISSIVE", false),
        ("DROPMALFORMED", false),
        ("FAILFAST", true),
    ] {
        let opts =
            JsonOptions::from_spark(&BTreeMap::from([("mode".to_string(), mode.to_string())])).unwrap();
        let mut src = FileSource::open(&input, &dir.path().join(mode), std::num::NonZeroUsize::MIN)
            .unwrap()
            .with_decoder(Arc::new(Decoder::new(schema.clone(), opts)));
        assert_eq!(src.latest_offset(None).unwrap(), LatestOffset::Logged(0));
        match src.read_batch(None, 0) {
            Ok(b) => {
                assert!(!fails, "{mode}");
                assert_eq!((b.num_rows(), b.rejects.len(), b.records), (1, 1, 2));
            }
            Err(e) => {
                assert!(fails, "{mode}: {e}");
                let msg = e.to_string();
                assert!(
                    msg.contains("a.json line 2") && msg.contains("column `a`"),
                    "{msg}"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let d = decoder("a INT, s STRING, m MAP<STRING, DECIMAL(5,2)>, l ARRAY<STRUCT<t: TIMESTAMP, d: DATE>>, b BINARY", JsonOptions::default());
        let p = d.decode(&[Piece { file: "f", bytes: &bytes, first_line: 1 }], 1);
        prop_assert_eq!(p.records, p.rows.num_rows() as u64 + p.rejects.len() as u64);
    }

    #[test]
    fn random_json_ish_lines_never_panic(lines in proptest::collection::vec(
        proptest::string::string_regex(r#"\{("[adlms]":(-?[0-9]{1,25}(\.[0-9]{0,5})?(e-?[0-9]{1,3})?|"[0-9a-zA-Z:. +-]{0,20}"|\[[0-9,\[\]{}"a:]{0,10}\]|\{("[tdk]":[0-9"a-z:-]{0,12},?){0,3}\}|null|true),?){0,5}\}"#).unwrap(),
        0..20,
    )) {
        let text = lines.join("\n");
        let d = decoder("a INT, s STRING, m MAP<STRING, DECIMAL(5,2)>, l ARRAY<STRUCT<t: TIMESTAMP, d: DATE>>, d DOUBLE", JsonOptions::default());
        let p = d.decode(&[Piece { file: "f", bytes: text.as_bytes(), first_line: 1 }], 1);
        prop_assert_eq!(p.records, p.rows.num_rows() as u64 + p.rejects.len() as u64);
    }
}
