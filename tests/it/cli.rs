//! The `microbatch` binary: generate → run passthrough → show, exit codes and messages.

use std::path::Path;
use std::process::{Command, Output};

fn microbatch(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_microbatch"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run microbatch")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn generate_run_show_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = microbatch(
        d,
        &[
            "generate",
            "--batches",
            "3",
            "--events-per-batch",
            "40",
            "--seed",
            "7",
            "--users",
            "data",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("wrote 3 files of 40 events"), "{}", text(&o));
    assert!(text(&o).contains("wrote 980 users"), "{}", text(&o));

    let o = microbatch(d, &["run", "passthrough", "--max-files-per-trigger", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("2 batches, 120 rows written to data/events"),
        "{}",
        text(&o)
    );

    let o = microbatch(d, &["run", "passthrough", "--max-files-per-trigger", "2"]);
    assert!(
        text(&o).contains("0 batches, 0 rows"),
        "a rerun has nothing to do: {}",
        text(&o)
    );

    let o = microbatch(d, &["show", "data/events", "--limit", "3"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("|     event_id|           timestamp|user_id|event_type| value|"),
        "{out}"
    );
    assert!(out.contains("|b00000-000000|2026-11-24 10:00:...|"), "{out}");
    assert!(out.contains("only showing top 3 rows"), "{out}");
    assert!(out.contains("120 rows, table version 2"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("|b0000")).count(),
        3,
        "{out}"
    );

    let o = microbatch(d, &["show", "data/events", "--limit", "1", "--no-truncate"]);
    let full = text(&o);
    let ts = full
        .lines()
        .nth(3)
        .and_then(|l| l.split('|').nth(2))
        .unwrap_or_default()
        .trim()
        .to_string();
    assert!(ts.starts_with("2026-11-24 10:00:") && ts.len() > 20, "{full}");

    let o = microbatch(d, &["show", "data/users", "--limit", "1"]);
    assert!(text(&o).contains("980 rows, table version 1"), "{}", text(&o));
}

#[test]
fn bad_arguments_exit_non_zero_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = microbatch(
        dir.path(),
        &["run", "passthrough", "--max-files-per-trigger", "0"],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("maxFilesPerTrigger must be a positive integer, got `0`"),
        "{err}"
    );

    let o = microbatch(dir.path(), &["show", "data/nothing"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));

    // A folder that is there but is no Delta table says so.
    std::fs::create_dir_all(dir.path().join("data/plain")).unwrap();
    let o = microbatch(dir.path(), &["show", "data/plain"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("data/plain is not a Delta table: the folder has no _delta_log"),
        "{err}"
    );

    let o = microbatch(dir.path(), &["run", "passthrough", "--trigger", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("trigger must be"));

    // clap's own errors: one line too, exit 2, as the README says.
    for args in [&["run", "passthrough", "--nope"][..], &["frobnicate"], &["run"]] {
        let o = microbatch(dir.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn run_join_left_outer_keeps_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = microbatch(
        d,
        &[
            "generate",
            "--batches",
            "2",
            "--events-per-batch",
            "300",
            "--seed",
            "7",
            "--users",
            "data",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = microbatch(
        d,
        &["run", "join", "--left-outer", "--max-files-per-trigger", "2"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("1 batches, 600 rows written to data/enriched_events"),
        "{}",
        text(&o)
    );
    let o = microbatch(d, &["show", "data/enriched_events", "--limit", "1000"]);
    assert!(
        text(&o).contains("|   NULL|"),
        "users 981..1000 are null-filled: {}",
        text(&o)
    );
    // The flag belongs to `run join` alone: elsewhere it is an argument error.
    let o = microbatch(d, &["run", "passthrough", "--left-outer"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unexpected argument '--left-outer'"), "{err}");
    let help = text(&microbatch(d, &["run", "passthrough", "--help"]));
    assert!(!help.contains("left-outer"), "{help}");
    let help = text(&microbatch(d, &["run", "join", "--help"]));
    assert!(help.contains("--left-outer"), "{help}");
}

/// The README's worked example, command by command: a non-seed pipeline from a query file.
#[test]
fn the_orders_example_runs_from_a_query_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/orders");
    std::fs::create_dir_all(d.join("examples/orders/input")).unwrap();
    std::fs::copy(src.join("query.toml"), d.join("examples/orders/query.toml")).unwrap();
    std::fs::copy(
        src.join("customers.jsonl"),
        d.join("examples/orders/customers.jsonl"),
    )
    .unwrap();
    for (i, f) in [
        "orders-0001.json",
        "orders-0002.json",
        "orders-0003.json",
        "orders-0004.json",
    ]
    .iter()
    .enumerate()
    {
        let to = d.join("examples/orders/input").join(f);
        std::fs::copy(src.join("input").join(f), &to).unwrap();
        filetime::set_file_mtime(
            &to,
            filetime::FileTime::from_unix_time(1_800_000_000 + i as i64, 0),
        )
        .unwrap();
    }
    let o = microbatch(
        d,
        &[
            "load-table",
            "data/customers",
            "examples/orders/customers.jsonl",
            "--schema",
            "customer STRING, country STRING, tier STRING",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("wrote 3 rows to data/customers"),
        "{}",
        text(&o)
    );
    let o = microbatch(d, &["run", "examples/orders/query.toml"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("1 rejected"), "{}", text(&o));
    let out = text(&microbatch(
        d,
        &["show", "data/orders_by_country", "--no-truncate"],
    ));
    for row in [
        // Spark's show(truncate = false) pads on the right: the values are left-aligned.
        "|{2026-12-01 10:00:00, 2026-12-01 10:10:00}|NO     |243.29 |4     |120.10     |",
        "|{2026-12-01 10:00:00, 2026-12-01 10:10:00}|SE     |5.00   |1     |5.00       |",
        "|{2026-12-01 10:10:00, 2026-12-01 10:20:00}|SE     |42.00  |1     |42.00      |",
    ] {
        assert!(out.contains(row), "{row} in\n{out}");
    }
    assert!(out.contains("3 rows"), "{out}");
    let late = text(&microbatch(
        d,
        &["show", "data/orders_by_country_late", "--no-truncate"],
    ));
    assert!(late.contains("o11") && late.contains("1 rows"), "{late}");
    let rejects = text(&microbatch(
        d,
        &["show", "data/orders_by_country_rejects", "--no-truncate"],
    ));
    assert!(
        rejects.contains("column `amount`: expected decimal(10,2)"),
        "{rejects}"
    );
    // A mistake in the file names its line.
    std::fs::write(
        d.join("bad.toml"),
        "[source]\n[sink]\npath = \"o\"\n[[op]]\nfliter = \"x\"\n",
    )
    .unwrap();
    let o = microbatch(d, &["run", "bad.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("bad.toml:5: unknown field `fliter`"),
        "{}",
        text(&o)
    );
}
