//! The expression layer against Spark's own answers (`spark_cases/cases.tsv`, made by
//! `spark_cases/spark_cases.py` in PySpark 3.5.9), and its API's other promises.

use std::sync::Arc;

use deltalake::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array,
    Int64Array, RecordBatch, StringArray, StructArray, TimestampMicrosecondArray,
};
use deltalake::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Fields, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, Schema, TimestampMicrosecondType,
};
use proptest::prelude::*;
use serde_json::Value;

use super::types::simple_string;
use super::*;

const CASES: &str = include_str!("spark_cases/cases.tsv");

fn ts(s: &str) -> i64 {
    eval::parse_timestamp(s).expect("a timestamp")
}

/// The rows of `spark_cases.py`'s table `t`.
fn input() -> RecordBatch {
    let t = types::timestamp();
    let wf: Fields = vec![
        Field::new("start", t.clone(), true),
        Field::new("end", t.clone(), true),
    ]
    .into();
    let tsa = |v: Vec<Option<&str>>| -> ArrayRef {
        Arc::new(
            v.into_iter()
                .map(|x| x.map(ts))
                .collect::<TimestampMicrosecondArray>()
                .with_timezone("UTC"),
        )
    };
    let w = StructArray::try_new(
        wf.clone(),
        vec![
            tsa(vec![
                Some("2024-03-15 13:45:00"),
                Some("1999-12-31 23:55:00"),
                None,
                Some("1970-01-01 00:00:00"),
            ]),
            tsa(vec![
                Some("2024-03-15 13:50:00"),
                Some("2000-01-01 00:00:00"),
                None,
                Some("1970-01-01 00:05:00"),
            ]),
        ],
        Some(vec![true, true, false, true].into()),
    )
    .unwrap();
    let schema = Schema::new(vec![
        Field::new("i", DataType::Int32, true),
        Field::new("l", DataType::Int64, true),
        Field::new("d", DataType::Float64, true),
        Field::new("m", DataType::Decimal128(10, 2), true),
        Field::new("s", DataType::Utf8, true),
        Field::new("b", DataType::Boolean, true),
        Field::new("ts", t.clone(), true),
        Field::new("dt", DataType::Date32, true),
        Field::new("w", DataType::Struct(wf), true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(vec![Some(1), Some(-3), None, Some(i32::MAX)])),
        Arc::new(Int64Array::from(vec![Some(10), Some(20), None, Some(i64::MAX)])),
        Arc::new(Float64Array::from(vec![Some(1.5), Some(-2.5), None, Some(0.0)])),
        Arc::new(
            Decimal128Array::from(vec![Some(125), Some(-350), None, Some(10000)])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        ),
        Arc::new(StringArray::from(vec![
            Some("Hello"),
            Some(" a b "),
            None,
            Some("42"),
        ])),
        Arc::new(BooleanArray::from(vec![
            Some(true),
            Some(false),
            None,
            Some(true),
        ])),
        tsa(vec![
            Some("2024-03-15 13:45:30.123456"),
            Some("1999-12-31 23:59:59"),
            None,
            Some("1970-01-01 00:00:00"),
        ]),
        Arc::new(Date32Array::from(vec![
            eval::parse_date("2024-03-15"),
            eval::parse_date("2000-02-29"),
            None,
            Some(0),
        ])),
        Arc::new(w),
    ];
    RecordBatch::try_new(Arc::new(schema), cols).unwrap()
}

const CTX: EvalContext = EvalContext {
    batch_timestamp_ms: 1_700_000_000_123,
};

/// One value of `a` as the oracle's JSON writes it.
fn json(a: &dyn Array, i: usize) -> Value {
    if a.is_null(i) || a.data_type() == &DataType::Null {
        return Value::Null;
    }
    let float = |v: f64| {
        if v.is_nan() {
            Value::String("nan".into())
        } else if v.is_infinite() {
            Value::String(if v > 0.0 { "inf" } else { "-inf" }.into())
        } else {
            serde_json::json!(v)
        }
    };
    match a.data_type() {
        DataType::Boolean => Value::Bool(a.as_boolean().value(i)),
        DataType::Int8 => a.as_primitive::<Int8Type>().value(i).into(),
        DataType::Int16 => a.as_primitive::<Int16Type>().value(i).into(),
        DataType::Int32 => a.as_primitive::<Int32Type>().value(i).into(),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i).into(),
        DataType::Float32 => float(a.as_primitive::<Float32Type>().value(i) as f64),
        DataType::Float64 => float(a.as_primitive::<Float64Type>().value(i)),
        DataType::Decimal128(_, s) => {
            names::decimal_text(a.as_primitive::<Decimal128Type>().value(i), *s).into()
        }
        DataType::Utf8 => a.as_string::<i32>().value(i).into(),
        DataType::Date32 => eval::date_text(a.as_primitive::<Date32Type>().value(i)).into(),
        DataType::Timestamp(..) => {
            let us = a.as_primitive::<TimestampMicrosecondType>().value(i);
            eval::datetime(us)
                .unwrap()
                .format("%Y-%m-%d %H:%M:%S%.6f")
                .to_string()
                .into()
        }
        DataType::Struct(fs) => {
            let s = a.as_struct();
            Value::Object(
                fs.iter()
                    .zip(s.columns())
                    .map(|(f, c)| (f.name().clone(), json(c.as_ref(), i)))
                    .collect(),
            )
        }
        other => format!("<{other}>").into(),
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
            }
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| k1 == k2 && same(v1, v2))
        }
        _ => a == b,
    }
}

/// Runs one oracle case; Err says what differs.
fn run_case(line: &str, batch: &RecordBatch) -> Result<(), String> {
    let cols: Vec<&str> = line.split('\t').collect();
    let [text, name, ty, expected] = cols.as_slice() else {
        return Err(format!("bad line {line:?}"));
    };
    if *name == "ERROR" {
        let class = *ty;
        let err = match parse_expr(text).and_then(|e| e.resolve(batch.schema_ref())) {
            Ok(_) => return Err(format!("resolved, but Spark says {class}")),
            Err(e) => e.to_string(),
        };
        // Spark's message, less where it points in the statement.
        let spark = expected.split("; line ").next().unwrap_or(expected);
        return if err == spark {
            Ok(())
        } else {
            Err(format!("error {err:?} is not Spark's {spark:?}"))
        };
    }
    let e = parse_expr(text).map_err(|e| format!("parse: {e}"))?;
    let named = e.output_name_in(batch.schema_ref());
    if named != *name {
        return Err(format!("name {named:?}, Spark's {name:?}"));
    }
    if let Expr::Function { name, .. } = &e
        && is_aggregate_function(name)
    {
        // Spark aggregated the table; here an aggregate only parses and is recognised.
        return match e.resolve(batch.schema_ref()) {
            Err(ExprError::NotAllowed(_)) => Ok(()),
            other => Err(format!("an aggregate resolved to {other:?}")),
        };
    }
    let p = e
        .resolve(batch.schema_ref())
        .map_err(|e| format!("resolve: {e}"))?;
    let t = simple_string(p.data_type());
    if t != *ty {
        return Err(format!("type {t}, Spark's {ty}"));
    }
    let out = p.evaluate(batch, &CTX).map_err(|e| format!("evaluate: {e}"))?;
    if out.data_type() != p.data_type() {
        return Err(format!(
            "evaluated to {}, resolved as {}",
            out.data_type(),
            p.data_type()
        ));
    }
    let got = Value::Array((0..out.len()).map(|i| json(out.as_ref(), i)).collect());
    let want: Value = serde_json::from_str(expected).map_err(|e| format!("bad expected values: {e}"))?;
    if !same(&got, &want) {
        return Err(format!("values {got}, Spark's {want}"));
    }
    Ok(())
}

#[test]
fn spark_oracle_cases() {
    let batch = input();
    let mut failures = Vec::new();
    let mut n = 0;
    for line in CASES.lines().filter(|l| !l.trim().is_empty()) {
        n += 1;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(line, &batch)))
            .unwrap_or_else(|_| Err("panicked".into()));
        if let Err(why) = r {
            failures.push(format!("{}: {why}", line.split('\t').next().unwrap_or(line)));
        }
    }
    assert!(n >= 100, "only {n} cases");
    assert!(
        failures.is_empty(),
        "{} of {n} cases differ from Spark:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn eval_one(text: &str) -> ArrayRef {
    let batch = input();
    let p = parse_expr(text).unwrap().resolve(batch.schema_ref()).unwrap();
    p.evaluate(&batch, &CTX).unwrap()
}

#[test]
fn current_timestamp_is_the_batch_timestamp() {
    for f in ["current_timestamp()", "now()", "current_timestamp"] {
        let a = eval_one(f);
        assert_eq!(a.data_type(), &types::timestamp());
        let a = a.as_primitive::<TimestampMicrosecondType>();
        assert_eq!(a.len(), 4);
        assert!(a.iter().all(|v| v == Some(1_700_000_000_123_000)), "{f}");
    }
    assert_eq!(
        parse_expr("current_timestamp()").unwrap().output_name(),
        "current_timestamp()"
    );
    assert_eq!(parse_expr("now()").unwrap().output_name(), "now()");
    let d = eval_one("current_date()");
    assert_eq!(
        eval::date_text(d.as_primitive::<Date32Type>().value(0)),
        "2023-11-14"
    );
    let u = eval_one("unix_timestamp()");
    assert_eq!(u.as_primitive::<Int64Type>().value(3), 1_700_000_000);
}

#[test]
fn aggregates_parse_but_do_not_resolve() {
    let schema = input().schema();
    for (text, name, func) in [
        ("count(*)", "count(1)", "count"),
        ("count(DISTINCT s)", "count(DISTINCT s)", "count"),
        ("sum(l)", "sum(l)", "sum"),
        ("avg(d)", "avg(d)", "avg"),
        ("mean(d)", "mean(d)", "mean"),
        ("min(ts)", "min(ts)", "min"),
        ("max(ts)", "max(ts)", "max"),
        ("first(s)", "first(s)", "first"),
        ("last(s)", "last(s)", "last"),
        ("collect_list(s)", "collect_list(s)", "collect_list"),
        ("collect_set(s)", "collect_set(s)", "collect_set"),
        (
            "approx_count_distinct(s)",
            "approx_count_distinct(s)",
            "approx_count_distinct",
        ),
        ("COUNT(1)", "count(1)", "count"),
    ] {
        let e = parse_expr(text).unwrap();
        assert_eq!(e.output_name(), name);
        let Expr::Function {
            name: n,
            distinct,
            args,
        } = &e
        else {
            panic!("{text} parsed to {e:?}");
        };
        assert_eq!(n, func);
        assert!(is_aggregate_function(n));
        assert_eq!(*distinct, text.contains("DISTINCT"));
        if text == "count(*)" {
            assert_eq!(args, &vec![Expr::Star]);
        }
        let err = e.resolve(&schema).unwrap_err();
        assert!(matches!(err, ExprError::NotAllowed(_)), "{err}");
        assert!(err.to_string().contains("aggregation"), "{err}");
    }
    assert!(!is_aggregate_function("upper"));
}

#[test]
fn window_parses_with_literal_durations() {
    let e = parse_expr("window(timestamp, '5 minutes', '1 minute')").unwrap();
    assert_eq!(
        e,
        Expr::Function {
            name: "window".into(),
            args: vec![
                col("timestamp"),
                Expr::Literal(Literal::String("5 minutes".into())),
                Expr::Literal(Literal::String("1 minute".into())),
            ],
            distinct: false,
        }
    );
    let e = parse_expr("window(ts, '5 minutes')").unwrap();
    assert!(matches!(
        e.resolve(&input().schema()),
        Err(ExprError::NotAllowed(_))
    ));
}

#[test]
fn parse_shapes() {
    assert_eq!(parse_expr("*").unwrap(), Expr::Star);
    assert_eq!(
        parse_expr("value * 2 AS doubled").unwrap(),
        Expr::Alias {
            expr: Box::new(col("value").multiply(lit(2))),
            name: "doubled".into()
        }
    );
    assert_eq!(parse_expr("window.start").unwrap(), col("window.start"));
    assert_eq!(parse_expr("`event type`").unwrap(), col("event type"));
    assert_eq!(
        parse_expr("a = b AND c = d").unwrap(),
        col("a").eq(col("b")).and(col("c").eq(col("d")))
    );
    assert_eq!(parse_expr("1L").unwrap(), lit(1i64));
    assert_eq!(parse_expr("-2147483648").unwrap(), lit(i32::MIN));
    assert!(matches!(parse_expr(""), Err(ExprError::Parse { .. })));
    assert!(matches!(parse_expr("a +"), Err(ExprError::Parse { .. })));
    assert!(matches!(parse_expr("a b c"), Err(ExprError::Parse { .. })));
    assert!(parse_expr("(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))").is_err());
    assert_eq!(parse_type("decimal(10,2)").unwrap(), SqlType::Decimal(10, 2));
    assert_eq!(parse_type("long").unwrap(), SqlType::Long);
    assert_eq!(parse_type("STRING").unwrap(), SqlType::String);
}

#[test]
fn builders_match_spark_names() {
    let e = when(col("i").gt(lit(0)), lit("pos")).otherwise(lit("neg"));
    assert_eq!(e.output_name(), "CASE WHEN (i > 0) THEN pos ELSE neg END");
    assert_eq!(col("s").is_null().output_name(), "(s IS NULL)");
    assert_eq!(col("s").is_not_null().output_name(), "(s IS NOT NULL)");
    assert_eq!(col("i").isin(vec![lit(1), lit(2)]).output_name(), "(i IN (1, 2))");
    assert_eq!(col("i").cast(SqlType::Int).output_name(), "i");
    assert_eq!(
        col("i").plus(lit(1)).cast(SqlType::Long).output_name(),
        "CAST((i + 1) AS BIGINT)"
    );
    assert_eq!(
        call("upper", vec![col("event_type")]).output_name(),
        "upper(event_type)"
    );
    assert_eq!(col("w").field("start"), col("w.start"));
    assert_eq!(col("w").field("start").output_name(), "start");
    let f = call("named_struct", vec![lit("a"), col("i")]).field("a");
    assert_eq!(f.output_name(), "named_struct(a, i).a");
    let p = f.resolve(&input().schema()).unwrap();
    assert_eq!(p.data_type(), &DataType::Int32);
    // Types and nullability as Spark's analyzer gives them.
    let schema = Schema::new(vec![Field::new("x", DataType::Int32, false)]);
    let p = parse_expr("x + 1").unwrap().resolve(&schema).unwrap();
    assert!(!p.nullable());
    let p = parse_expr("x / 2").unwrap().resolve(&schema).unwrap();
    assert_eq!(p.data_type(), &DataType::Float64);
    assert!(p.nullable());
    assert!(
        !parse_expr("x IS NULL")
            .unwrap()
            .resolve(&schema)
            .unwrap()
            .nullable()
    );
    let e = parse_expr("CASE WHEN x > 1 THEN upper('a') ELSE NULL END").unwrap();
    let back: Expr = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    assert_eq!(back, e);
    let a = when(col("i").gt(lit(0)), lit(1))
        .when(col("i").lt(lit(0)), lit(-1))
        .otherwise(lit(0));
    let out = a
        .resolve(&input().schema())
        .unwrap()
        .evaluate(&input(), &CTX)
        .unwrap();
    assert_eq!(
        out.as_primitive::<Int32Type>().values().to_vec(),
        vec![1, -1, 0, 1]
    );
}

#[test]
fn resolution_is_case_insensitive_and_nested() {
    let batch = input();
    let a = eval_one("W.START");
    assert_eq!(a.data_type(), &types::timestamp());
    assert!(a.is_null(2));
    assert_eq!(parse_expr("W.START").unwrap().output_name(), "START");
    let err = parse_expr("w.nope")
        .unwrap()
        .resolve(batch.schema_ref())
        .unwrap_err();
    assert!(err.to_string().contains("FIELD_NOT_FOUND"), "{err}");
    let err = parse_expr("i.x")
        .unwrap()
        .resolve(batch.schema_ref())
        .unwrap_err();
    assert!(
        err.to_string().contains("INVALID_EXTRACT_BASE_FIELD_TYPE"),
        "{err}"
    );
    let err = parse_expr("valu + 1")
        .unwrap()
        .resolve(batch.schema_ref())
        .unwrap_err();
    let ExprError::UnknownColumn { name, available } = &err else {
        panic!("{err}");
    };
    assert_eq!(name, "valu");
    assert!(available.len() <= 5);
    // A dotted name that is one column wins over a path.
    let schema = Schema::new(vec![Field::new("a.b", DataType::Int32, true)]);
    assert!(col("a.b").resolve(&schema).is_ok());
    let schema = Schema::new(vec![
        Field::new("x", DataType::Int32, true),
        Field::new("X", DataType::Int32, true),
    ]);
    assert!(matches!(
        col("x").resolve(&schema),
        Err(ExprError::Ambiguous { .. })
    ));
}

#[test]
fn errors_name_spark_classes() {
    let schema = input().schema();
    let err = |t: &str| parse_expr(t).unwrap().resolve(&schema).unwrap_err().to_string();
    assert!(
        err("upper(i, s)").contains("[WRONG_NUM_ARGS"),
        "{}",
        err("upper(i, s)")
    );
    assert!(err("uper(s)").contains("`upper`"), "{}", err("uper(s)"));
    assert!(err("CAST(b AS DATE)").contains("[DATATYPE_MISMATCH.CAST_WITHOUT_SUGGESTION]"));
    assert!(err("NOT i").contains("[DATATYPE_MISMATCH.UNEXPECTED_INPUT_TYPE]"));
    assert!(err("CASE WHEN i THEN 1 END").contains("[DATATYPE_MISMATCH"));
    assert!(err("regexp_extract(s, '(a)', 2)").contains("REGEX_GROUP_INDEX"));
    assert!(err("s RLIKE '('").contains("PATTERN"));
    assert!(err("date_format(ts, 'yyyy-MM-dd GG')").contains("INVALID_DATETIME_PATTERN"));
    assert!(err("upper(*)").contains("*"));
    assert!(err("upper(DISTINCT s)").contains("DISTINCT"));
}

#[test]
fn decimal_overflow_and_division_by_zero_are_null() {
    let schema = Schema::new(vec![Field::new("m", DataType::Decimal128(38, 0), true)]);
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![Arc::new(
            Decimal128Array::from(vec![Some(10i128.pow(37) * 9), Some(5)])
                .with_precision_and_scale(38, 0)
                .unwrap(),
        )],
    )
    .unwrap();
    let run = |t: &str| {
        parse_expr(t)
            .unwrap()
            .resolve(batch.schema_ref())
            .unwrap()
            .evaluate(&batch, &CTX)
            .unwrap()
    };
    let a = run("m + m");
    assert!(a.is_null(0));
    assert_eq!(json(a.as_ref(), 1), Value::from("10"));
    let a = run("m / 0");
    assert!(a.is_null(0) && a.is_null(1));
    let a = run("m % 0");
    assert!(a.is_null(1));
}

#[test]
fn evaluation_keeps_row_count_on_empty_batches() {
    let batch = input().slice(0, 0);
    for t in [
        "i + 1",
        "upper(s)",
        "current_timestamp()",
        "CASE WHEN b THEN 1 END",
        "struct(i, s)",
        "'x'",
    ] {
        let p = parse_expr(t).unwrap().resolve(batch.schema_ref()).unwrap();
        assert_eq!(p.evaluate(&batch, &CTX).unwrap().len(), 0, "{t}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Random text never panics the parser.
    #[test]
    fn parse_never_panics(s in "\\PC{0,60}") {
        let _ = parse_expr(&s);
    }

    /// Random expression-like text never panics parsing, resolution or evaluation.
    #[test]
    fn expression_soup_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("i"), Just("l"), Just("d"), Just("m"), Just("s"), Just("b"), Just("ts"), Just("dt"),
        Just("w.start"), Just("nope"), Just("1"), Just("0"), Just("-1"), Just("2.5"), Just("'x'"),
        Just("NULL"), Just("true"), Just("+"), Just("-"), Just("*"), Just("/"), Just("%"), Just("="),
        Just("<>"), Just("<"), Just(">="), Just("<=>"), Just("AND"), Just("OR"), Just("NOT"), Just("("),
        Just(")"), Just(","), Just("IS NULL"), Just("IN"), Just("BETWEEN"), Just("LIKE"), Just("CAST("),
        Just("AS INT)"), Just("AS STRING)"), Just("CASE WHEN"), Just("THEN"), Just("ELSE"), Just("END"),
        Just("upper("), Just("substring("), Just("round("), Just("coalesce("), Just("date_trunc('hour',"),
        Just("concat_ws('-',"), Just("regexp_extract("), Just("struct("), Just("count("), Just("div"),
        Just("floor("), Just("to_date("), Just("from_unixtime("), Just("named_struct('a',"),
    ], 1..14)) {
        let text = parts.join(" ");
        let batch = input();
        if let Ok(e) = parse_expr(&text) {
            let _ = e.output_name();
            if let Ok(p) = e.resolve(batch.schema_ref()) {
                let _ = p.evaluate(&batch, &CTX);
            }
        }
    }
}
