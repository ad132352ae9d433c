//! The demo, end to end, with the tables it must produce.

use std::collections::BTreeMap;
use std::process::Command;

use microbatch::demo::{DemoConfig, run_demo};
use microbatch::generator::{EventStream, GeneratorConfig};

use crate::common::*;

#[tokio::test]
async fn the_demo_writes_the_four_tables_and_leaves_nothing_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = DemoConfig {
        input: d.join("input"),
        data: d.join("data"),
        checkpoints: d.join("checkpoints"),
        batches: 6,
        events_per_batch: 80,
        pace: std::time::Duration::from_millis(30),
        seed: 9,
        late_fraction: 0.0,
        max_files_per_trigger: std::num::NonZeroUsize::new(2).unwrap(),
        start: T0,
        fresh: false,
        show_rows: 2,
    };
    let mut out = Vec::new();
    let report = run_demo(&cfg, &mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    assert_eq!(report.files_written, 6);
    assert!(text.contains("event_aggregates — "), "{text}");
    assert!(text.contains("pl.read_delta"), "{text}");

    // What the generator wrote.
    let mut stream = EventStream::new(GeneratorConfig {
        seed: 9,
        start: T0,
        step: 60_000_000,
        events_per_batch: 80,
        late_fraction: 0.0,
        num_users: 1000,
    })
    .unwrap();
    let events: Vec<_> = (0..6).flat_map(|_| stream.next_batch()).collect();
    let mut expected: Vec<Row> = events.iter().map(row_of).collect();
    expected.sort();
    assert_eq!(table_rows(&cfg.data.join("events")).await, expected);

    let enriched = microbatch::table::read_table(&cfg.data.join("enriched_events"))
        .await
        .unwrap();
    assert_eq!(
        enriched.rows.num_rows(),
        events.iter().filter(|e| e.user_id <= 980).count()
    );

    // Aggregations: every (window, type) with its full count.
    let mut agg: BTreeMap<(i64, String), i64> = BTreeMap::new();
    for e in &events {
        *agg.entry((e.timestamp.div_euclid(300_000_000), e.event_type.to_string()))
            .or_default() += 1;
    }
    let t = microbatch::table::read_table(&cfg.data.join("event_aggregates"))
        .await
        .unwrap()
        .rows;
    assert_eq!(t.num_rows(), agg.len());
    let total: i64 = (0..t.num_rows())
        .map(|r| microbatch::table::cell(t.column(2), r).parse::<i64>().unwrap())
        .sum();
    assert_eq!(total, events.len() as i64);

    // Late data: exactly the windows closed by the final watermark (max event time − 10 min).
    let wm = events.iter().map(|e| e.timestamp.div_euclid(1000)).max().unwrap() - 600_000;
    let mut windows = std::collections::BTreeSet::new();
    for e in &events {
        let last = e.timestamp.div_euclid(60_000_000) * 60_000_000;
        for k in 0..5 {
            let start = last - k * 60_000_000;
            if start + 300_000_000 <= wm * 1000 {
                windows.insert((start, e.user_id));
            }
        }
    }
    let t = microbatch::table::read_table(&cfg.data.join("user_activity"))
        .await
        .unwrap()
        .rows;
    assert_eq!(t.num_rows(), windows.len());

    // `status` sees nothing waiting.
    let o = Command::new(env!("CARGO_BIN_EXE_microbatch"))
        .current_dir(d)
        .args(["status", "checkpoints/agg"])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{s}");
    assert!(s.contains("0 input file(s) waiting"), "{s}");
    assert!(s.contains("committed through batch"), "{s}");

    // A second run continues from the checkpoints and the generator's position.
    let report = run_demo(&cfg, &mut Vec::new()).await.unwrap();
    assert_eq!(report.files_written, 6);
    let rows = table_rows(&cfg.data.join("events")).await;
    assert_eq!(rows.len(), 12 * 80);
    assert!(rows.iter().any(|r| r.0.starts_with("b00011-")));
}
