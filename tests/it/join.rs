//! Seed Example 4: events joined with the static Delta table `users`.

use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use microbatch::execution::{EngineError, QueryConfig, StreamingQuery, Trigger};
use microbatch::failpoints::{self, InjectedCrash};
use microbatch::generator::{users_schema, write_users_table};
use microbatch::query::Query;

use crate::common::*;

fn users(rows: &[(i32, &str)]) -> RecordBatch {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| format!("user_{}", r.0)),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|_| "free"))),
    ];
    RecordBatch::try_new(users_schema(), cols).unwrap()
}

fn event(id: &str, user: i32) -> String {
    format!(
        r#"{{"event_id":"{id}","timestamp":"2026-11-24T10:00:00","user_id":{user},"event_type":"click","value":1.0}}"#
    )
}

fn config(ws: &Workspace, left_outer: bool) -> QueryConfig {
    let mut c = ws.config(1);
    c.output = ws.dir.path().join("data/enriched_events");
    c.query = Query::events().join(ws.dir.path().join("data/users"), "user_id", left_outer);
    c
}

/// (event_id, user_id, country) rows of the enriched table, sorted.
async fn enriched(ws: &Workspace) -> Vec<(String, i32, String)> {
    let t = microbatch::table::read_table(&ws.dir.path().join("data/enriched_events"))
        .await
        .unwrap();
    let names: Vec<&str> = t.schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "user_id",
            "event_id",
            "timestamp",
            "event_type",
            "value",
            "name",
            "country",
            "tier"
        ]
    );
    let mut rows: Vec<_> = (0..t.rows.num_rows())
        .map(|r| {
            let cell = |c: usize| microbatch::table::cell(t.rows.column(c), r);
            (cell(1), cell(0).parse().unwrap(), cell(6))
        })
        .collect();
    rows.sort();
    rows
}

async fn set_users(ws: &Workspace, rows: &[(i32, &str)]) {
    write_users_table(&ws.dir.path().join("data/users"), &users(rows), 0)
        .await
        .unwrap();
}

#[tokio::test]
async fn inner_join_drops_unknown_users_and_left_outer_keeps_them_with_nulls() {
    for left_outer in [false, true] {
        let mut ws = Workspace::new();
        set_users(&ws, &[(1, "US"), (2, "DE")]).await;
        ws.add_file(
            "a.json",
            &[event("e1", 1), event("e2", 2), event("e3", 3), event("e4", 1)].join("\n"),
        );
        let mut q = StreamingQuery::start(config(&ws, left_outer)).await.unwrap();
        q.run(Trigger::AvailableNow, |_| {}).await.unwrap();
        let mut expected = vec![
            ("e1".to_string(), 1, "US".to_string()),
            ("e2".into(), 2, "DE".into()),
            ("e4".into(), 1, "US".into()),
        ];
        if left_outer {
            expected.push(("e3".into(), 3, "NULL".into()));
            expected.sort();
        }
        assert_eq!(enriched(&ws).await, expected, "left outer: {left_outer}");
    }
}

/// The joined rows are right whether every stream row is kept once (its columns reused), some
/// are dropped (a filter) or one matches two static rows (a gather, in stream order).
#[tokio::test]
async fn every_row_once_some_rows_and_repeated_rows_join_alike() {
    type Case<'a> = (&'a [(i32, &'a str)], &'a [(&'a str, i32, &'a str)]);
    let cases: [Case; 3] = [
        (
            &[(1, "US"), (2, "DE")],
            &[("e1", 1, "US"), ("e2", 2, "DE"), ("e3", 1, "US")],
        ),
        (&[(1, "US")], &[("e1", 1, "US"), ("e3", 1, "US")]),
        (
            &[(1, "US"), (2, "DE"), (1, "FR")],
            &[
                ("e1", 1, "FR"),
                ("e1", 1, "US"),
                ("e2", 2, "DE"),
                ("e3", 1, "FR"),
                ("e3", 1, "US"),
            ],
        ),
    ];
    for (users, expected) in cases {
        let mut ws = Workspace::new();
        set_users(&ws, users).await;
        ws.add_file(
            "a.json",
            &[event("e1", 1), event("e2", 2), event("e3", 1)].join("\n"),
        );
        let mut q = StreamingQuery::start(config(&ws, false)).await.unwrap();
        q.run(Trigger::AvailableNow, |_| {}).await.unwrap();
        let expected: Vec<(String, i32, String)> = expected
            .iter()
            .map(|&(e, u, c)| (e.to_string(), u, c.to_string()))
            .collect();
        assert_eq!(enriched(&ws).await, expected, "users {users:?}");
    }
}

#[tokio::test]
async fn a_users_update_between_batches_is_seen_by_the_next_batch() {
    let mut ws = Workspace::new();
    set_users(&ws, &[(1, "US")]).await;
    ws.add_file("a.json", &event("e1", 1));
    let mut q = StreamingQuery::start(config(&ws, false)).await.unwrap();
    q.run(Trigger::AvailableNow, |_| {}).await.unwrap();
    set_users(&ws, &[(1, "FR"), (2, "JP")]).await;
    ws.add_file("b.json", &[event("e2", 1), event("e3", 2)].join("\n"));
    q.run(Trigger::AvailableNow, |_| {}).await.unwrap();
    assert_eq!(
        enriched(&ws).await,
        [
            ("e1".to_string(), 1, "US".to_string()),
            ("e2".into(), 1, "FR".into()),
            ("e3".into(), 2, "JP".into())
        ]
    );
    let offsets = std::fs::read_to_string(ws.checkpoint().join("offsets/1")).unwrap();
    // Version 0 created the users table, 1 wrote it, 2 updated it.
    assert!(
        offsets.contains(r#""microbatch.join.staticTableVersion":"2""#),
        "{offsets}"
    );
    let first = std::fs::read_to_string(ws.checkpoint().join("offsets/0")).unwrap();
    assert!(
        first.contains(r#""microbatch.join.staticTableVersion":"1""#),
        "{first}"
    );
}

#[tokio::test]
async fn a_rerun_batch_joins_the_version_it_was_planned_with() {
    let _guard = fail_lock_async().await;
    for point in [
        failpoints::AFTER_OFFSETS,
        failpoints::AFTER_FILES_WRITTEN,
        failpoints::AFTER_DELTA_COMMIT,
    ] {
        let mut ws = Workspace::new();
        set_users(&ws, &[(1, "US"), (2, "DE")]).await;
        ws.add_file("a.json", &[event("e1", 1), event("e2", 2)].join("\n"));
        microbatch::failpoints::arm(point, &ws.checkpoint(), None).unwrap();
        let mut q = StreamingQuery::start(config(&ws, false)).await.unwrap();
        let err = q.run(Trigger::AvailableNow, |_| {}).await.unwrap_err();
        microbatch::failpoints::disarm(point);
        assert!(
            matches!(err, EngineError::InjectedCrash(InjectedCrash(p)) if p == point),
            "{err}"
        );
        drop(q);
        // The users table changes while the query is down.
        set_users(&ws, &[(1, "BR")]).await;
        let mut q = StreamingQuery::start(config(&ws, false)).await.unwrap();
        q.run(Trigger::AvailableNow, |_| {}).await.unwrap();
        assert_eq!(
            enriched(&ws).await,
            [
                ("e1".to_string(), 1, "US".to_string()),
                ("e2".into(), 2, "DE".into())
            ],
            "crash at {point}: the re-run batch joined the version it was planned with"
        );
        let t = microbatch::table::read_table(&ws.dir.path().join("data/enriched_events"))
            .await
            .unwrap();
        assert_eq!(t.version, 1, "crash at {point}: one commit for the one batch");
        // The next batch sees the new version.
        ws.add_file("b.json", &event("e3", 1));
        q.run(Trigger::AvailableNow, |_| {}).await.unwrap();
        assert!(
            enriched(&ws)
                .await
                .contains(&("e3".to_string(), 1, "BR".to_string()))
        );
    }
}

#[tokio::test]
async fn a_missing_users_table_is_a_clear_error() {
    let ws = Workspace::new();
    let err = StreamingQuery::start(config(&ws, false)).await.unwrap_err();
    assert!(err.to_string().contains("data/users does not exist"), "{err}");
}
