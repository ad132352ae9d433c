//! Real crashes: the `microbatch` binary runs the four seed queries and is killed with SIGKILL at
//! seeded random moments, restarted each time; at the end every table, txn version and state
//! store equals an uninterrupted run's.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use microbatch::operators::aggregate::{AggValue, GroupKey};
use microbatch::query::SeedQuery;
use microbatch::state::StateStore;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_microbatch"))
}

fn prepare(dir: &Path) {
    let o = bin()
        .current_dir(dir)
        .args([
            "generate",
            "--batches",
            "24",
            "--events-per-batch",
            "400",
            "--seed",
            "3",
        ])
        .args([
            "--late-fraction",
            "0.15",
            "--step",
            "2 minutes",
            "--users",
            "data",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn run_all(dir: &Path) -> std::process::Child {
    bin()
        .current_dir(dir)
        .args(["run", "all", "--max-files-per-trigger", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Everything that must not depend on crashes, per seed query.
async fn outcome(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for q in SeedQuery::ALL {
        let table = dir.join("data").join(q.table_name());
        let t = microbatch::table::read_table(&table).await.unwrap();
        let rows: Vec<String> = (0..t.rows.num_rows())
            .map(|r| {
                t.rows
                    .columns()
                    .iter()
                    .map(|c| microbatch::table::cell(c, r))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect();
        if q == SeedQuery::Passthrough {
            let unique: BTreeSet<&String> = rows.iter().collect();
            assert_eq!(unique.len(), rows.len(), "{}: duplicate rows", dir.display());
        }
        let cp = dir.join("checkpoints").join(q.checkpoint_name());
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(cp.join("metadata")).unwrap()).unwrap();
        let txn = microbatch::table::txn_version(&table, meta["id"].as_str().unwrap())
            .await
            .unwrap();
        let last_commit = std::fs::read_dir(cp.join("commits"))
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().to_str()?.parse::<i64>().ok())
            .max();
        assert_eq!(txn, last_commit, "{q:?}: the txn version is the last batch id");
        out.push(format!("{q:?}: {} rows: {}", rows.len(), rows.join(";")));
        out.push(format!("{q:?}: last batch {last_commit:?}"));
        if matches!(q, SeedQuery::Aggregations | SeedQuery::LateData) {
            let version = last_commit.map_or(0, |c| c as u64 + 1);
            let store: StateStore<GroupKey, AggValue> =
                StateStore::open(&cp.join("state/0/0"), version, 10).unwrap();
            out.push(format!("{q:?}: state {:?}", store.iter().collect::<Vec<_>>()));
        }
    }
    out
}

async fn kill_and_compare(kills: u32, seed: u64) {
    let reference = tempfile::tempdir().unwrap();
    prepare(reference.path());
    let status = run_all(reference.path()).wait().unwrap();
    assert!(status.success());
    let expected = outcome(reference.path()).await;

    let crashed = tempfile::tempdir().unwrap();
    prepare(crashed.path());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut killed = 0;
    let mut finished_runs = 0;
    let started = Instant::now();
    while killed < kills {
        let mut child = run_all(crashed.path());
        std::thread::sleep(Duration::from_millis(rng.random_range(5..250)));
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "a run between kills failed: {status}");
                finished_runs += 1;
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "kill loop took too long"
        );
    }
    // The kills hit real work: the killed runs committed batches, and left some for the last run.
    let commits = |dir: &Path| -> usize {
        SeedQuery::ALL
            .iter()
            .map(|q| {
                std::fs::read_dir(dir.join("checkpoints").join(q.checkpoint_name()).join("commits"))
                    .map_or(0, |d| d.count())
            })
            .sum()
    };
    let done_by_killed_runs = commits(crashed.path());
    let total = commits(reference.path());
    assert!(done_by_killed_runs > 0, "no killed run committed anything");
    let status = run_all(crashed.path()).wait().unwrap();
    assert!(status.success());
    eprintln!(
        "{killed} kills, {finished_runs} runs finished between kills; killed runs committed {done_by_killed_runs} of {total} batches"
    );
    let got = outcome(crashed.path()).await;
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert!(
            g == e,
            "after {killed} kills (seed {seed}, {finished_runs} runs finished):\n got {:.300}\nwant {:.300}",
            g,
            e
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_sigkills_at_random_moments_change_nothing() {
    kill_and_compare(30, 20261124).await;
}

/// The soak test: `MICROBATCH_SOAK_KILLS` kills (default 300), seed `MICROBATCH_SOAK_SEED`.
/// Run with `cargo test --release -- --ignored soak`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn soak_many_sigkills_change_nothing() {
    let kills = std::env::var("MICROBATCH_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let seed = std::env::var("MICROBATCH_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    kill_and_compare(kills, seed).await;
}
