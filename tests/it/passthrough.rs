//! Seed Example 1: JSON files → micro-batches → the `events` Delta table.

use std::fs;

use microbatch::checkpoint::CheckpointError;
use microbatch::clock::ManualClock;
use microbatch::execution::{EngineError, StreamingQuery, Trigger};
use microbatch::generator::{EventStream, write_batches};
use microbatch::source::parse_max_files;

use crate::common::*;

#[tokio::test]
async fn every_input_row_lands_once_in_batches_of_max_files() {
    let mut ws = Workspace::new();
    let mut stream = EventStream::new(gen_config(1, 50)).unwrap();
    let mut expected = ws.add_stream_batches(&mut stream, 0, 7);
    expected.sort();

    let mut q = ws.start(3).await;
    let mut seen = Vec::new();
    let n = q
        .run(Trigger::AvailableNow, |p| seen.push(p.clone()))
        .await
        .unwrap();
    assert_eq!(n, 3, "7 files at 3 per trigger is 3 batches");
    assert_eq!(
        seen.iter()
            .map(|p| p.sources[0].num_input_files)
            .collect::<Vec<_>>(),
        [3, 3, 1]
    );
    assert_eq!(seen.iter().map(|p| p.num_input_rows).sum::<u64>(), 350);
    assert_eq!(seen[0].sources[0].start_offset, None);
    assert_eq!(
        seen[0].sources[0].end_offset,
        Some(serde_json::json!({"logOffset": 0}))
    );
    assert_eq!(
        seen[2].sources[0].start_offset,
        Some(serde_json::json!({"logOffset": 1}))
    );

    assert_eq!(table_rows(&ws.events_table()).await, expected);
    let txn = microbatch::table::txn_version(&ws.events_table(), q.id())
        .await
        .unwrap();
    assert_eq!(txn, Some(2), "txn version is the last batch id");

    // Spark's checkpoint layout, with the source log written as entries 0..=2.
    let cp = ws.checkpoint();
    for f in [
        "metadata",
        "offsets/0",
        "offsets/2",
        "commits/2",
        "sources/0/0",
        "sources/0/2",
    ] {
        assert!(cp.join(f).is_file(), "{f} missing");
    }
    let log = fs::read_to_string(cp.join("sources/0/0")).unwrap();
    assert!(log.starts_with("v1\n{\"path\":\"batch_0.json\""), "{log}");
    assert_eq!(log.lines().count(), 4);
}

#[tokio::test]
async fn delta_log_carries_streaming_update_and_txn() {
    let mut ws = Workspace::new();
    ws.add_file(
        "a.json",
        r#"{"event_id":"x","timestamp":"2026-11-24T10:00:00","user_id":1,"event_type":"click","value":2.5}"#,
    );
    let mut q = ws.start(1).await;
    q.run(Trigger::AvailableNow, |_| {}).await.unwrap();
    let log = fs::read_to_string(ws.events_table().join("_delta_log/00000000000000000001.json")).unwrap();
    assert!(log.contains(r#""operation":"STREAMING UPDATE""#), "{log}");
    assert!(
        log.contains(&format!(r#""txn":{{"appId":"{}","version":0"#, q.id())),
        "{log}"
    );
    assert!(log.contains(r#""outputMode":"Append""#), "{log}");
}

#[tokio::test]
async fn restart_with_no_new_files_writes_nothing_and_new_files_continue() {
    let mut ws = Workspace::new();
    let mut stream = EventStream::new(gen_config(2, 20)).unwrap();
    let first = stream.next_batch();
    ws.add_events("batch_0.json", &first);
    assert_eq!(ws.run_to_end(1).await, 1);
    let version_before = microbatch::table::read_table(&ws.events_table())
        .await
        .unwrap()
        .version;

    assert_eq!(ws.run_to_end(1).await, 0, "no new files: no batch");
    let t = microbatch::table::read_table(&ws.events_table()).await.unwrap();
    assert_eq!(t.version, version_before, "no new table version");
    assert!(!ws.checkpoint().join("offsets/1").exists());

    let second = stream.next_batch();
    ws.add_events("batch_1.json", &second);
    let mut q = ws.start(1).await;
    assert_eq!(q.next_batch_id(), 1);
    q.run(Trigger::AvailableNow, |_| {}).await.unwrap();
    let mut expected: Vec<Row> = first.iter().chain(&second).map(row_of).collect();
    expected.sort();
    assert_eq!(table_rows(&ws.events_table()).await, expected);
}

#[tokio::test]
async fn a_second_runner_on_the_same_checkpoint_is_refused() {
    let ws = Workspace::new();
    let _first = ws.start(1).await;
    let err = StreamingQuery::start(ws.config(1)).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Checkpoint(CheckpointError::Locked(_))),
        "{err}"
    );
    assert!(
        err.to_string().contains("in use by another running query"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_lines_go_to_the_rejects_table_and_good_rows_flow() {
    let mut ws = Workspace::new();
    let good = |id: &str| {
        format!(
            r#"{{"event_id":"{id}","timestamp":"2026-11-24T10:00:0{}Z","user_id":3,"event_type":"view","value":1.5}}"#,
            id.len()
        )
    };
    let text = [
        good("g1"),
        "{broken".to_string(),
        String::new(),
        r#"{"event_id":"m","timestamp":"2026-11-24T10:00:00","event_type":"click","value":1}"#.to_string(),
        good("g22"),
        r#"{"event_id":"t","timestamp":"2026-11-24T10:00:00","user_id":"seven","event_type":"click","value":1}"#.to_string(),
    ]
    .join("\n");
    ws.add_file("mixed.json", &text);
    ws.add_file("more.json", &good("g333"));

    let mut q = ws.start(10).await;
    let mut progress = Vec::new();
    q.run(Trigger::AvailableNow, |p| progress.push(p.clone()))
        .await
        .unwrap();
    assert_eq!(progress.len(), 1);
    assert_eq!(progress[0].num_input_rows, 3);
    assert_eq!(progress[0].num_rejected_rows, 3);

    let ids: Vec<String> = table_rows(&ws.events_table())
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(ids, ["g1", "g22", "g333"]);

    let rejects = microbatch::table::read_table(&ws.rejects_table())
        .await
        .unwrap()
        .rows;
    assert_eq!(rejects.num_rows(), 3);
    let cell = |c: usize, r: usize| microbatch::table::cell(rejects.column(c), r);
    // Sorted by batch_id, file, line.
    assert_eq!((cell(1, 0), cell(2, 0)), ("mixed.json".into(), "2".into()));
    assert!(cell(5, 0).contains("malformed JSON"), "{}", cell(5, 0));
    assert_eq!(cell(3, 0), "{broken");
    assert_eq!((cell(1, 1), cell(2, 1)), ("mixed.json".into(), "4".into()));
    assert!(cell(5, 1).contains("missing or null field `user_id`"));
    assert_eq!((cell(1, 2), cell(2, 2)), ("mixed.json".into(), "6".into()));
    assert!(cell(5, 2).contains("must be a JSON integer"));
    assert_eq!(cell(0, 2), "0", "rejects carry their batch id");
}

#[tokio::test]
async fn invalid_utf8_and_a_vanished_file_are_counted_rejects() {
    let mut ws = Workspace::new();
    let mut bytes =
        br#"{"event_id":"ok","timestamp":"2026-11-24T10:00:00","user_id":1,"event_type":"click","value":1}"#
            .to_vec();
    bytes.extend_from_slice(b"\n{\"event_id\":\"\xff\"}\n");
    microbatch::generator::write_input_file(&ws.input(), "a.json", &bytes, T0 / 1000).unwrap();
    ws.next_mtime_ms += 1000;
    ws.add_file(
        "b.json",
        r#"{"event_id":"gone","timestamp":"2026-11-24T10:00:00","user_id":1,"event_type":"click","value":1}"#,
    );

    let mut q = ws.start(10).await;
    // List (and log) both files, then delete one before the batch reads it: the loss is a
    // counted reject naming the file, not a crash.
    let mut source = microbatch::source::FileSource::open(
        &ws.input(),
        &ws.dir.path().join("scratch-log"),
        parse_max_files("10").unwrap(),
    )
    .unwrap();
    assert_eq!(source.latest_offset(None).unwrap().offset(), Some(0));
    fs::remove_file(ws.input().join("b.json")).unwrap();
    let batch = source.read_batch(None, 0).unwrap();
    assert_eq!(batch.num_rows(), 1);
    assert_eq!(batch.rejects.len(), 2);
    assert!(
        batch
            .rejects
            .iter()
            .any(|r| r.file == "b.json" && r.line == 0 && r.reason.contains("deleted"))
    );
    assert!(
        batch
            .rejects
            .iter()
            .any(|r| r.file == "a.json" && r.line == 2 && r.reason.contains("invalid UTF-8"))
    );

    let mut progress = Vec::new();
    q.run(Trigger::AvailableNow, |p| progress.push(p.clone()))
        .await
        .unwrap();
    assert_eq!(progress[0].num_input_rows, 1);
    assert_eq!(progress[0].num_rejected_rows, 1);
    let rejects = microbatch::table::read_table(&ws.rejects_table())
        .await
        .unwrap()
        .rows;
    assert_eq!(rejects.num_rows(), 1);
    assert_eq!(
        microbatch::table::cell(rejects.column(3), 0),
        "{\"event_id\":\"\u{fffd}\"}"
    );
}

#[tokio::test]
async fn files_arriving_with_older_mtimes_are_read_next_and_temp_names_are_ignored() {
    let mut ws = Workspace::new();
    let line = |id: &str| {
        format!(
            r#"{{"event_id":"{id}","timestamp":"2026-11-24T10:00:00","user_id":1,"event_type":"click","value":1}}"#
        )
    };
    ws.add_file("new.json", &line("new"));
    ws.add_file(".partial.json", &line("partial"));
    ws.add_file("_hidden.json", &line("hidden"));
    assert_eq!(ws.run_to_end(1).await, 1);
    // A file with an mtime older than everything already read still gets read (Spark would
    // too unless it is older than maxFileAge; we have no maxFileAge).
    microbatch::generator::write_input_file(&ws.input(), "old.json", line("old").as_bytes(), 1_000).unwrap();
    // A rewrite of a file already read is ignored, as in Spark.
    fs::write(ws.input().join("new.json"), line("rewritten")).unwrap();
    let mut q = ws.start(1).await;
    let mut files = Vec::new();
    q.run(Trigger::AvailableNow, |p| {
        files.push(p.sources[0].num_input_files)
    })
    .await
    .unwrap();
    assert_eq!(files, [1]);
    let ids: Vec<String> = table_rows(&ws.events_table())
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(ids, ["new", "old"]);
}

#[tokio::test]
async fn same_mtime_files_are_ordered_by_name() {
    let ws = Workspace::new();
    let line = |id: &str| {
        format!(
            r#"{{"event_id":"{id}","timestamp":"2026-11-24T10:00:00","user_id":1,"event_type":"click","value":1}}"#
        )
    };
    for name in ["c.json", "a.json", "b.json"] {
        microbatch::generator::write_input_file(&ws.input(), name, line(name).as_bytes(), 5_000).unwrap();
    }
    let mut source = microbatch::source::FileSource::open(
        &ws.input(),
        &ws.dir.path().join("log"),
        parse_max_files("2").unwrap(),
    )
    .unwrap();
    let names: Vec<String> = source
        .list_unseen()
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(names, ["a.json", "b.json", "c.json"]);
    source.latest_offset(None).unwrap();
    let first: Vec<String> = source
        .entries(None, 0)
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(first, ["a.json", "b.json"]);
}

#[tokio::test]
async fn max_files_per_trigger_must_be_a_positive_integer() {
    for bad in ["0", "-1", "abc", "1.5", ""] {
        let err = parse_max_files(bad).unwrap_err().to_string();
        assert!(
            err.contains("maxFilesPerTrigger must be a positive integer"),
            "{bad}: {err}"
        );
    }
    assert_eq!(parse_max_files("100").unwrap().get(), 100);
}

#[test]
fn generator_is_byte_identical_for_a_seed() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let cfg = gen_config(99, 100);
    for dir in [a.path(), b.path()] {
        let clock = ManualClock::new(T0 / 1000);
        write_batches(&cfg, dir, 0, 5, &clock).unwrap();
    }
    for i in 0..5 {
        let name = format!("batch_{i}.json");
        let (fa, fb) = (a.path().join(&name), b.path().join(&name));
        assert_eq!(fs::read(&fa).unwrap(), fs::read(&fb).unwrap(), "{name}");
        let ma = fs::metadata(&fa).unwrap().modified().unwrap();
        assert_eq!(ma, fs::metadata(&fb).unwrap().modified().unwrap());
    }
    // Continuing from batch 5 in one call equals writing 0..7 in another.
    let c = tempfile::tempdir().unwrap();
    write_batches(&cfg, c.path(), 0, 7, &ManualClock::new(0)).unwrap();
    write_batches(&cfg, a.path(), 5, 2, &ManualClock::new(0)).unwrap();
    assert_eq!(
        fs::read(a.path().join("batch_6.json")).unwrap(),
        fs::read(c.path().join("batch_6.json")).unwrap()
    );
    // Refuses to overwrite.
    let err = write_batches(&cfg, c.path(), 6, 1, &ManualClock::new(0)).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    // The file names sort by mtime in batch order.
    let t: Vec<_> = (0..5)
        .map(|i| {
            fs::metadata(b.path().join(format!("batch_{i}.json")))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    assert!(t.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_run_writes_delta_checkpoints_that_stand_alone() {
    let mut ws = Workspace::new();
    let mut stream = EventStream::new(gen_config(9, 3)).unwrap();
    let mut expected = ws.add_stream_batches(&mut stream, 0, 105);
    let mut q = ws.start(1).await;
    let id = q.id().to_string();
    assert_eq!(q.run(Trigger::AvailableNow, |_| {}).await.unwrap(), 105);
    drop(q);
    let log = ws.events_table().join("_delta_log");
    // Version 0 creates the table; batch 98 is version 99, the first checkpoint.
    assert!(log.join("00000000000000000099.checkpoint.parquet").is_file());
    let last: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(log.join("_last_checkpoint")).unwrap()).unwrap();
    assert_eq!(last["version"], 99);
    // The checkpoint stands in for the commits it covers: without them the table still reads
    // whole, and the query's txn (its last batch id) survives.
    for v in 0..=99 {
        fs::remove_file(log.join(format!("{v:020}.json"))).unwrap();
    }
    expected.sort();
    let t = microbatch::table::read_table(&ws.events_table()).await.unwrap();
    assert_eq!(t.version, 105);
    assert_eq!(rows_of_batch(&t.rows), expected);
    assert_eq!(
        microbatch::table::txn_version(&ws.events_table(), &id)
            .await
            .unwrap(),
        Some(104)
    );
    // A restart opens the table from the checkpoint and goes on exactly once.
    expected.extend(ws.add_stream_batches(&mut stream, 105, 1));
    expected.sort();
    let mut q = ws.start(1).await;
    assert_eq!(q.next_batch_id(), 105);
    assert_eq!(q.run(Trigger::AvailableNow, |_| {}).await.unwrap(), 1);
    assert_eq!(table_rows(&ws.events_table()).await, expected);
}

/// Spark's unread-files cache (R5.4): what a listing finds beyond maxFilesPerTrigger is taken
/// by the next batches without listing again, so a file that arrives meanwhile waits for the
/// cache to run out, whatever its mtime; a remainder under 0.2 × maxFilesPerTrigger is not
/// cached.
#[tokio::test]
async fn unread_files_are_cached_between_batches_as_in_spark() {
    let ws = Workspace::new();
    let write = |name: &str, mtime: i64| {
        microbatch::generator::write_input_file(&ws.input(), name, b"{}\n", mtime).unwrap();
    };
    let batch = |source: &mut microbatch::source::FileSource| -> Vec<String> {
        let before = source.latest_log_id();
        source.latest_offset(before).unwrap();
        let k = source.latest_log_id().unwrap();
        if Some(k) == before {
            return Vec::new();
        }
        source
            .entries(before, k)
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect()
    };
    for (i, name) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        write(&format!("{name}.json"), 10_000 + i as i64 * 1000);
    }
    let open = |max: &str, log: &str| {
        microbatch::source::FileSource::open(
            &ws.input(),
            &ws.dir.path().join(log),
            parse_max_files(max).unwrap(),
        )
        .unwrap()
    };
    let mut source = open("2", "log2");
    assert_eq!(batch(&mut source), ["a.json", "b.json"]);
    write("old.json", 1_000);
    assert_eq!(batch(&mut source), ["c.json", "d.json"], "from the cache");
    assert_eq!(batch(&mut source), ["e.json"], "from the cache");
    assert_eq!(batch(&mut source), ["old.json"], "listed again");
    assert!(batch(&mut source).is_empty());

    // maxFilesPerTrigger 10 over 7 files (+old): nothing left over; then 11 → 1 left, which
    // is under 0.2 × 10, so not cached: a newly arrived older file is listed first.
    let mut source = open("10", "log10");
    assert_eq!(batch(&mut source).len(), 6);
    for i in 0..11 {
        write(&format!("n{i:02}.json"), 20_000 + i * 1000);
    }
    assert_eq!(batch(&mut source).len(), 10);
    write("older.json", 2_000);
    assert_eq!(batch(&mut source), ["older.json", "n10.json"]);
}

/// A large batch is written as one parquet file per core, encoded in parallel; every row lands
/// once, in one commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_is_written_as_one_file_per_core() {
    use microbatch::source::parse::EventBuilder;

    let ws = Workspace::new();
    let n = 250_000usize;
    let mut b = EventBuilder::default();
    for i in 0..n {
        b.append(
            &format!("e{i}"),
            T0 + i as i64,
            (i % 1000) as i32,
            "click",
            i as f64,
        );
    }
    let rows = b.finish();
    let (staged, _) = append_as(&ws.events_table(), "big", &rows).await;
    assert_eq!(staged, n as u64);

    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let files = fs::read_dir(ws.events_table())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
        .count();
    assert_eq!(files, cores.clamp(1, n / 100_000));
    let t = microbatch::table::read_table(&ws.events_table()).await.unwrap();
    assert_eq!(t.version, 1, "one commit");
    assert_eq!(rows_of_batch(&t.rows), rows_of_batch(&rows));
}

/// Auto compaction, when the table asks for it (`delta.autoOptimize.autoCompact`): the live
/// files stay under 50 however many batches land, the rewrite carries no data change, every row
/// is there once — also after a crash in the very batch that compacts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_asking_for_auto_compaction_keeps_few_files_and_every_row() {
    use deltalake::kernel::StructType;
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;

    let mut ws = Workspace::new();
    let table = ws.events_table();
    fs::create_dir_all(&table).unwrap();
    let st: StructType = microbatch::event::event_schema()
        .as_ref()
        .try_into_kernel()
        .unwrap();
    let url = deltalake::ensure_table_uri(std::path::absolute(&table).unwrap().to_string_lossy()).unwrap();
    deltalake::DeltaTable::try_from_url(url)
        .await
        .unwrap()
        .create()
        .with_columns(st.fields().cloned())
        .with_configuration_property(deltalake::TableProperty::AutoOptimizeAutoCompact, Some("true"))
        .await
        .unwrap();

    let mut stream = EventStream::new(gen_config(12, 3)).unwrap();
    let mut expected = ws.add_stream_batches(&mut stream, 0, 120);
    expected.sort();
    {
        // Batch 50 is the first to find 50 small files: crash it after its files are written.
        let _g = fail_lock_async().await;
        microbatch::failpoints::arm(
            microbatch::failpoints::AFTER_FILES_WRITTEN,
            &ws.checkpoint(),
            Some(51),
        )
        .unwrap();
        let mut q = ws.start(1).await;
        let err = q.run(Trigger::AvailableNow, |_| {}).await.unwrap_err();
        microbatch::failpoints::disarm(microbatch::failpoints::AFTER_FILES_WRITTEN);
        assert!(
            err.to_string()
                .contains(microbatch::failpoints::AFTER_FILES_WRITTEN),
            "{err}"
        );
        assert_eq!(q.next_batch_id(), 50);
    }
    assert_eq!(ws.run_to_end(1).await, 70);
    assert_eq!(table_rows(&table).await, expected);

    let t = microbatch::sink::open_existing(&table).await.unwrap();
    let live = microbatch::sink::data_files(&t).await.unwrap().len();
    // Batch 50 rewrites batches 0–49 as one file; batch 99 rewrites that one and batches
    // 50–98; batches 99–119 stay: 22 live files.
    assert_eq!(live, 22, "live files after 120 batches");
    let log = fs::read_to_string(table.join("_delta_log/00000000000000000051.json")).unwrap();
    assert!(log.contains(r#""dataChange":false"#), "batch 50 compacts: {log}");
    let on_disk = fs::read_dir(&table)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
        .count();
    assert_eq!(
        on_disk,
        live + 50 + 50,
        "live files plus the removed ones (kept for VACUUM)"
    );
}
