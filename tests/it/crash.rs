//! Exactly once across crashes: stop the engine at every durable step, start a new one on the
//! same folders, and the table must hold every input row exactly once.

use microbatch::execution::{EngineError, StreamingQuery, Trigger};
use microbatch::failpoints::{self, InjectedCrash};
use microbatch::generator::EventStream;
use proptest::prelude::*;

use crate::common::*;

/// The failpoints a pass-through batch passes (it has no state store).
const PASSTHROUGH_POINTS: [&str; 5] = [
    failpoints::AFTER_SOURCE_LOG,
    failpoints::AFTER_OFFSETS,
    failpoints::AFTER_FILES_WRITTEN,
    failpoints::AFTER_DELTA_COMMIT,
    failpoints::BEFORE_COMMIT_LOG,
];

fn arm(ws: &Workspace, point: &'static str, nth: u64) {
    failpoints::arm(point, &ws.checkpoint(), Some(nth)).expect("arm failpoint");
}

async fn expect_crash(ws: &Workspace, max_files: usize, point: &'static str) {
    let mut q = ws.start(max_files).await;
    let err = q.run(Trigger::AvailableNow, |_| {}).await.unwrap_err();
    assert!(
        matches!(err, EngineError::InjectedCrash(InjectedCrash(p)) if p == point),
        "expected a crash at {point}, got {err}"
    );
    // Using the failed query again is refused until it is restarted.
    let again = q.run_once().await.unwrap_err();
    assert!(
        again.to_string().contains("failed earlier in this run"),
        "{again}"
    );
}

#[test]
fn failpoints_are_live_in_tests() {
    assert!(failpoints::enabled());
}

#[tokio::test]
async fn crash_at_every_failpoint_in_every_batch_loses_and_doubles_nothing() {
    let _guard = fail_lock_async().await;
    let mut stream = EventStream::new(gen_config(5, 30)).unwrap();
    let batches: Vec<_> = (0..4).map(|_| stream.next_batch()).collect();
    let mut expected: Vec<Row> = batches.iter().flatten().map(row_of).collect();
    expected.sort();

    for point in PASSTHROUGH_POINTS {
        for nth in 1..=2u64 {
            let mut ws = Workspace::new();
            for (b, events) in batches.iter().enumerate() {
                ws.add_events(&format!("batch_{b}.json"), events);
            }
            arm(&ws, point, nth);
            expect_crash(&ws, 2, point).await;
            failpoints::disarm(point);

            let mut q = ws.start(2).await;
            q.run(Trigger::AvailableNow, |_| {}).await.unwrap();
            let ctx = format!("crash at {point} on pass {nth}");
            assert_eq!(table_rows(&ws.events_table()).await, expected, "{ctx}");
            assert_eq!(
                q.next_batch_id(),
                2,
                "{ctx}: 4 files at 2 per batch are 2 batches"
            );
            let txn = microbatch::table::txn_version(&ws.events_table(), q.id())
                .await
                .unwrap();
            assert_eq!(txn, Some(1), "{ctx}: txn version is the last batch id");
            let t = microbatch::table::read_table(&ws.events_table()).await.unwrap();
            assert_eq!(
                t.version, 2,
                "{ctx}: one Delta commit per batch (after the create)"
            );
            assert!(
                !ws.checkpoint().join("offsets/2").exists(),
                "{ctx}: no extra batch"
            );
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    files: Vec<usize>,
    max_files: usize,
    crashes: Vec<(usize, u64)>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<u64>(),
        prop::collection::vec(0usize..15, 1..7),
        1usize..4,
        prop::collection::vec((0..PASSTHROUGH_POINTS.len(), 1u64..4), 0..4),
    )
        .prop_map(|(seed, files, max_files, crashes)| Case {
            seed,
            files,
            max_files,
            crashes,
        })
}

async fn check_case(c: Case) {
    let mut ws = Workspace::new();
    let mut stream = EventStream::new(gen_config(c.seed, 1)).unwrap();
    let mut expected = Vec::new();
    for (i, n) in c.files.iter().enumerate() {
        let mut events = Vec::new();
        for _ in 0..*n {
            let mut e = stream.next_batch().remove(0);
            e.event_id = format!("f{i}-{}", events.len());
            events.push(e);
        }
        expected.extend(events.iter().map(row_of));
        ws.add_events(&format!("in_{i}.json"), &events);
    }
    expected.sort();
    for (p, nth) in &c.crashes {
        let point = PASSTHROUGH_POINTS[*p];
        arm(&ws, point, *nth);
        let mut q = ws.start(c.max_files).await;
        let result = q.run(Trigger::AvailableNow, |_| {}).await;
        failpoints::disarm(point);
        if let Err(e) = result {
            assert!(matches!(e, EngineError::InjectedCrash(_)), "{e}");
        }
    }
    let mut q = ws.start(c.max_files).await;
    q.run(Trigger::AvailableNow, |_| {}).await.unwrap();
    assert_eq!(table_rows(&ws.events_table()).await, expected, "{c:?}");
    let batches = c.files.len().div_ceil(c.max_files) as u64;
    assert_eq!(q.next_batch_id(), batches, "{c:?}");
    let txn = microbatch::table::txn_version(&ws.events_table(), q.id())
        .await
        .unwrap();
    assert_eq!(txn, Some(batches as i64 - 1), "{c:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_files_batches_and_crashes_give_the_input_multiset(c in case()) {
        let _guard = fail_lock();
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(check_case(c));
    }
}

/// Everything a run leaves that must not depend on crashes: the table's rows (as text), the
/// txn version, the state store's contents at the final version.
async fn outcome(
    ws: &Workspace,
    query: microbatch::query::SeedQuery,
    q: &StreamingQuery,
) -> (Vec<Vec<String>>, Option<i64>, String) {
    use microbatch::operators::aggregate::{AggValue, GroupKey};
    let table = ws.dir.path().join("data").join(query.table_name());
    let t = microbatch::table::read_table(&table).await.unwrap();
    let rows = (0..t.rows.num_rows())
        .map(|r| {
            t.rows
                .columns()
                .iter()
                .map(|c| microbatch::table::cell(c, r))
                .collect()
        })
        .collect();
    let txn = microbatch::table::txn_version(&table, q.id()).await.unwrap();
    let store: microbatch::state::StateStore<GroupKey, AggValue> =
        microbatch::state::StateStore::open(&ws.checkpoint().join("state/0/0"), q.next_batch_id(), 10)
            .unwrap();
    let state = format!("{:?}", store.iter().collect::<Vec<_>>());
    (rows, txn, state)
}

fn stateful_config(
    ws: &Workspace,
    query: microbatch::query::SeedQuery,
) -> microbatch::execution::QueryConfig {
    let mut cfg = ws.config(2);
    cfg.output = ws.dir.path().join("data").join(query.table_name());
    cfg.query = query.query(&ws.dir.path().join("data"));
    cfg
}

#[tokio::test]
async fn stateful_crash_at_every_failpoint_equals_an_uninterrupted_run() {
    use microbatch::query::SeedQuery;
    let _guard = fail_lock_async().await;
    let files = crate::model::files(11, 5, 30, 0.2);
    let setup = || {
        let mut ws = Workspace::new();
        for (i, f) in files.iter().enumerate() {
            ws.add_events(&format!("batch_{i}.json"), f);
        }
        ws
    };
    for query in [SeedQuery::Aggregations, SeedQuery::LateData] {
        let reference = setup();
        let mut q = StreamingQuery::start(stateful_config(&reference, query))
            .await
            .unwrap();
        q.run(Trigger::AvailableNow, |_| {}).await.unwrap();
        // 5 files at 2 per batch: 3 data batches and the trailing no-data batch.
        assert_eq!(q.next_batch_id(), 4, "{query:?}");
        let expected = outcome(&reference, query, &q).await;
        assert_eq!(expected.1, Some(3));
        drop(q);

        for point in failpoints::ALL.iter().copied() {
            // The source log is written by data batches only (3 of them).
            let passes = if point == failpoints::AFTER_SOURCE_LOG {
                3
            } else {
                4
            };
            for nth in 1..=passes {
                let ws = setup();
                arm(&ws, point, nth);
                let mut q = StreamingQuery::start(stateful_config(&ws, query)).await.unwrap();
                let err = q.run(Trigger::AvailableNow, |_| {}).await.unwrap_err();
                failpoints::disarm(point);
                assert!(
                    matches!(err, EngineError::InjectedCrash(InjectedCrash(p)) if p == point),
                    "{query:?} {point}@{nth}: {err}"
                );
                drop(q);
                let mut q = StreamingQuery::start(stateful_config(&ws, query)).await.unwrap();
                q.run(Trigger::AvailableNow, |_| {}).await.unwrap();
                let got = outcome(&ws, query, &q).await;
                assert_eq!(q.next_batch_id(), 4, "{query:?} crash at {point} on pass {nth}");
                assert!(
                    got == expected,
                    "{query:?} crash at {point} on pass {nth}: tables, txn or state differ"
                );
            }
        }
    }
}
