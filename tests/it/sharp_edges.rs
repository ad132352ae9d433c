//! The sharp edges a new user hit (issue 14), each as the command that showed it, run with the
//! binary: every one of these failed on the main before the fix.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn microbatch(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_microbatch"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run microbatch")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn generate(dir: &Path, batches: &str, users: bool) {
    generate_from(dir, "0", batches, users)
}

fn generate_from(dir: &Path, from: &str, batches: &str, users: bool) {
    let mut args = vec![
        "generate",
        "--from-batch",
        from,
        "--batches",
        batches,
        "--events-per-batch",
        "200",
        "--seed",
        "7",
    ];
    if users {
        args.extend(["--users", "data"]);
    }
    let o = microbatch(dir, &args);
    assert!(o.status.success(), "{}", stderr(&o));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn a_checkpoint_copied_to_another_query_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "4", false);
    let o = microbatch(d, &["run", "aggregations"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = microbatch(d, &["run", "late-data"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let late_before = microbatch(d, &["show", "data/user_activity", "--limit", "100000"]);

    // The user's command: the aggregation's checkpoint under the late-data query's name.
    std::fs::remove_dir_all(d.join("checkpoints/late")).unwrap();
    copy_dir(&d.join("checkpoints/agg"), &d.join("checkpoints/late"));
    let o = microbatch(d, &["run", "late-data"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("checkpoints/late"), "{err}");
    assert!(
        err.contains("made for query `agg`"),
        "names the query it was made for: {err}"
    );
    assert!(
        err.contains("not for query `late`"),
        "names the query started: {err}"
    );
    // Nothing was written to the late-data query's table.
    let late_after = microbatch(d, &["show", "data/user_activity", "--limit", "100000"]);
    assert_eq!(stdout(&late_before), stdout(&late_after));

    // And the reverse.
    copy_dir(&d.join("checkpoints/agg"), &d.join("agg-saved"));
    std::fs::remove_dir_all(d.join("checkpoints/agg")).unwrap();
    std::fs::remove_dir_all(d.join("checkpoints/late")).unwrap();
    let o = microbatch(d, &["run", "late-data"]);
    assert!(o.status.success(), "{}", stderr(&o));
    copy_dir(&d.join("checkpoints/late"), &d.join("checkpoints/agg"));
    let o = microbatch(d, &["run", "aggregations"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("checkpoints/agg"), "{}", stderr(&o));
}

#[test]
fn a_missing_input_folder_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = microbatch(d, &["run", "passthrough", "--input", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("[PATH_NOT_FOUND] Path does not exist: nope"),
        "{err}"
    );
    assert!(!d.join("checkpoints").exists(), "no checkpoint made");
    assert!(!d.join("data").exists(), "no table made");
}

#[test]
fn a_batch_rejecting_every_line_warns_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("input")).unwrap();
    std::fs::write(d.join("input/a.json"), "{\"id\": 1}\n{\"id\": 2}\n").unwrap();
    let o = microbatch(d, &["run", "passthrough"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning: [raw] batch 0 rejected all 2 of its lines")
            && err.contains("data/events_rejects"),
        "{err}"
    );
    assert!(!stdout(&o).contains("warning"), "warnings stay off stdout");
}

#[test]
fn json_mode_prints_json_only_and_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "3", false);
    let o = microbatch(d, &["run", "aggregations", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.lines().count() >= 3, "{out}");
    for l in out.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"));
    }
    assert!(stderr(&o).contains("batches, "), "the summary goes to stderr");

    let o = microbatch(d, &["status", "checkpoints/agg", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("status --json is one JSON document");
    assert_eq!(v["name"], "agg");
    assert!(stderr(&o).contains("committed through batch"), "{}", stderr(&o));

    // `| head -1`: the reader goes away after the first line.
    generate_from(d, "3", "6", false);
    let mut child = Command::new(env!("CARGO_BIN_EXE_microbatch"))
        .current_dir(d)
        .args([
            "run",
            "passthrough",
            "--json",
            "--checkpoints",
            "cp2",
            "--data",
            "data2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let out = child.stdout.take().unwrap();
        let mut first = String::new();
        std::io::BufReader::new(out).read_line(&mut first).unwrap();
        assert!(first.starts_with('{'), "{first}");
        // Dropping the reader closes the pipe.
    }
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    assert!(o.status.success(), "{err}");
    // The batch in flight finished: every committed batch is whole (offsets = commits).
    let count = |sub: &str| std::fs::read_dir(d.join("cp2/raw").join(sub)).unwrap().count();
    assert_eq!(count("offsets"), count("commits"));
}

#[test]
fn run_all_checks_every_query_before_any_starts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "2", false); // no users table
    let o = microbatch(d, &["run", "all"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("data/users does not exist"), "{err}");
    assert!(!d.join("checkpoints").exists(), "no query ran: {err}");
    assert!(!d.join("data/events").exists(), "no table written: {err}");
}

#[test]
fn a_zero_trigger_interval_runs_as_fast_as_possible() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "2", false);
    let mut child = Command::new(env!("CARGO_BIN_EXE_microbatch"))
        .current_dir(d)
        .args(["run", "passthrough", "--trigger", "0s", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let out = child.stdout.take().unwrap();
    let lines: Vec<String> = std::io::BufReader::new(out)
        .lines()
        .take(2)
        .map(Result::unwrap)
        .collect();
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(lines.len(), 2, "both files' batches ran");
}

#[test]
fn watermark_zero_reads_none_yet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "1", false);
    let o = microbatch(d, &["run", "aggregations"]);
    let out = stdout(&o);
    let first = out.lines().next().unwrap_or_default();
    assert!(first.contains("watermark none yet"), "{out}");
    assert!(!out.contains("1970-01-01"), "{out}");
    assert!(
        out.contains("groups dropped") && out.contains("input rows)"),
        "{out}"
    );
}

#[test]
fn status_finds_the_input_from_any_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "2", false);
    let o = microbatch(d, &["run", "passthrough"]);
    assert!(o.status.success(), "{}", stderr(&o));
    generate_from(d, "2", "1", false); // batch_2.json is new
    let elsewhere = tempfile::tempdir().unwrap();
    let cp = d.join("checkpoints/raw");
    let o = microbatch(elsewhere.path(), &["status", cp.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("1 input file(s) waiting"), "{}", stdout(&o));
}

#[test]
fn a_failing_replay_keeps_the_folder_it_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.toml"),
        r#"
name = "wrong on purpose"
[query]
builtin = "passthrough"
[[step]]
add_file = "a.json"
rows = [{ event_id = "x" }]
[[step]]
run = "until_idle"
expect_rows = [{ event_id = "y" }]
"#,
    )
    .unwrap();
    let o = microbatch(d, &["replay", "s.toml"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let kept = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("kept its folder: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(Path::new(kept).join("data/events/_delta_log").is_dir(), "{out}");
    std::fs::remove_dir_all(kept).unwrap();
}

#[test]
fn demo_fresh_removes_only_what_the_demo_made() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("input")).unwrap();
    std::fs::create_dir_all(d.join("data/mytable")).unwrap();
    std::fs::write(d.join("input/mynote.txt"), "mine").unwrap();
    std::fs::write(d.join("data/mytable/x"), "mine").unwrap();
    let args = [
        "demo",
        "--batches",
        "4",
        "--events-per-batch",
        "50",
        "--pace",
        "1ms",
        "--show",
        "0",
    ];
    let o = microbatch(d, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut fresh = args.to_vec();
    fresh.push("--fresh");
    let o = microbatch(d, &fresh);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(d.join("input/mynote.txt").is_file());
    assert!(d.join("data/mytable/x").is_file());
    // Started over: 4 files again, not 8.
    let files = std::fs::read_dir(d.join("input"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("batch_")
        })
        .count();
    assert_eq!(files, 4);
}

#[test]
fn the_demo_is_reproducible_to_the_row() {
    // Two demos with one seed, one at a slow pace and one fast: the same tables.
    let mut shows = Vec::new();
    for pace in ["1ms", "60ms"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let o = microbatch(
            d,
            &[
                "demo",
                "--batches",
                "6",
                "--events-per-batch",
                "300",
                "--pace",
                pace,
                "--late-fraction",
                "0.3",
                "--show",
                "0",
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let tables: Vec<String> = ["events", "event_aggregates", "user_activity", "enriched_events"]
            .iter()
            .map(|t| {
                stdout(&microbatch(
                    d,
                    &["show", &format!("data/{t}"), "--limit", "100000"],
                ))
            })
            .collect();
        shows.push(tables);
    }
    assert_eq!(shows[0], shows[1]);
}

/// Sends SIGINT to `child` as Ctrl-C would.
fn interrupt(child: &std::process::Child) {
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn ctrl_c_stops_after_the_batch_in_flight_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    generate(d, "2", false);
    let mut child = Command::new(env!("CARGO_BIN_EXE_microbatch"))
        .current_dir(d)
        .args(["run", "passthrough", "--trigger", "200ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::BufRead;
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        assert!(first.contains("batch    0"), "{first}");
        interrupt(&child);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("stopping after the batch in flight"),
        "{}",
        stderr(&o)
    );
    let count = |sub: &str| {
        std::fs::read_dir(d.join("checkpoints/raw").join(sub))
            .unwrap()
            .count()
    };
    assert_eq!(count("offsets"), count("commits"), "no batch left half done");
}

#[test]
fn the_binary_replays_crash_scenarios() {
    // Failpoints are live in every build: the shipped binary replays a scenario with a crash.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let o = microbatch(
        dir.path(),
        &[
            "replay",
            root.join("scenarios/04_passthrough_crash_before_commit_log.toml")
                .to_str()
                .unwrap(),
            root.join("scenarios/14_update_mode_crash_after_state_commit.toml")
                .to_str()
                .unwrap(),
        ],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("2 passed, 0 failed"), "{}", stdout(&o));
}

#[test]
fn a_restarted_demo_shows_this_runs_batches_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let args = [
        "demo",
        "--batches",
        "4",
        "--events-per-batch",
        "50",
        "--pace",
        "1ms",
        "--show",
        "0",
    ];
    let o = microbatch(d, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = microbatch(d, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    // The first view line comes after one file, before this run's first batch.
    let first_view = out
        .lines()
        .find(|l| l.starts_with("[#"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        first_view.contains("raw waiting for its first batch"),
        "{first_view}"
    );
}
