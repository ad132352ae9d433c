//! Expressions end to end: a query written as Spark SQL strings (`filter` / `selectExpr`) over
//! the seed's events, its Delta table's columns named as Spark names them.

use deltalake::arrow::array::{Array, AsArray};
use deltalake::arrow::datatypes::{Float64Type, Int32Type, TimestampMicrosecondType};
use microbatch::execution::{StreamingQuery, Trigger};
use microbatch::generator::EventStream;
use microbatch::query::Query;

use crate::common::{Workspace, gen_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_and_filter_expressions_write_spark_names_and_values() {
    let mut ws = Workspace::new();
    let mut stream = EventStream::new(gen_config(11, 40)).unwrap();
    let rows = ws.add_stream_batches(&mut stream, 0, 2);
    let mut c = ws.config(1);
    c.query = Query::events()
        .filter_expr("value > 500 AND event_type <> 'view'")
        .unwrap()
        .select_expr(&[
            "event_id",
            "upper(event_type)",
            "value * 2",
            "CAST(value AS INT)",
            "date_trunc('hour', timestamp) AS hour",
            "CASE WHEN user_id % 2 = 0 THEN 'even' ELSE 'odd' END AS parity",
        ])
        .unwrap();
    let mut q = StreamingQuery::start(c).await.unwrap();
    q.run(Trigger::AvailableNow, |_| {}).await.unwrap();
    let t = microbatch::table::read_table(&ws.events_table()).await.unwrap();
    let b = &t.rows;
    let names: Vec<&str> = b
        .schema_ref()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(
        names,
        [
            "event_id",
            "upper(event_type)",
            "(value * 2)",
            "value",
            "hour",
            "parity"
        ]
    );
    let mut want: Vec<(String, String, f64, i32, i64, &str)> = rows
        .iter()
        .filter(|r| f64::from_bits(r.4) > 500.0 && r.3 != "view")
        .map(|r| {
            let v = f64::from_bits(r.4);
            let hour = r.1.div_euclid(3_600_000_000) * 3_600_000_000;
            let parity = if r.2 % 2 == 0 { "even" } else { "odd" };
            (r.0.clone(), r.3.to_uppercase(), v * 2.0, v as i32, hour, parity)
        })
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!want.is_empty());
    let mut got: Vec<(String, String, f64, i32, i64, &str)> = (0..b.num_rows())
        .map(|i| {
            assert!(!b.column(1).is_null(i));
            let parity = b.column(5).as_string::<i32>().value(i);
            (
                b.column(0).as_string::<i32>().value(i).to_string(),
                b.column(1).as_string::<i32>().value(i).to_string(),
                b.column(2).as_primitive::<Float64Type>().value(i),
                b.column(3).as_primitive::<Int32Type>().value(i),
                b.column(4).as_primitive::<TimestampMicrosecondType>().value(i),
                if parity == "even" { "even" } else { "odd" },
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);
}

#[test]
fn bad_expression_strings_are_query_errors() {
    let e = Query::events().select_expr(&["value +"]).unwrap_err();
    assert!(e.to_string().contains("PARSE_SYNTAX_ERROR"), "{e}");
    assert!(Query::events().filter_expr("").is_err());
}
