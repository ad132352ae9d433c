//! Every failpoint of the engine, by name, in one place.
//!
//! A failpoint sits at each durable step of a micro-batch. A test or a scenario replay arms one
//! with [`arm`]; the engine then stops at that step with [`InjectedCrash`], leaving on disk
//! exactly what a process killed there would leave, and the test starts a new engine on the
//! same folders. They are live in every build, the release binary included (so `microbatch
//! replay` runs crash scenarios): while none is armed, passing one costs a counter increment
//! and one atomic load (the `failpoint_unarmed` bench).
//!
//! The argument scopes a failpoint to one query, so tests running in parallel in one process do
//! not trip each other's engines: `return(SCOPE)` crashes only the query whose scope (its
//! checkpoint folder) is `SCOPE`, and `return(SCOPE@K)` only on that query's K-th pass through the
//! point (counting from 1, per query run). A bare `return` crashes every query.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// True while some failpoint is armed: the fast path of [`FailScope::hit`].
static ANY_ARMED: AtomicBool = AtomicBool::new(false);
/// The failpoints armed now.
static ARMED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

/// After the file source wrote `sources/0/<k>`, before `offsets/<N>`.
pub const AFTER_SOURCE_LOG: &str = "source.after_source_log";
/// After `offsets/<N>` was written, before the batch runs.
pub const AFTER_OFFSETS: &str = "offsets.after_write";
/// After the state store wrote version `N+1`, before the sink ran.
pub const AFTER_STATE_COMMIT: &str = "state.after_commit";
/// After the batch's parquet files were written, before the Delta commit.
pub const AFTER_FILES_WRITTEN: &str = "sink.after_files_written";
/// After the Delta commit of batch N, before `commits/<N>`.
pub const AFTER_DELTA_COMMIT: &str = "sink.after_delta_commit";
/// Just before `commits/<N>` is written.
pub const BEFORE_COMMIT_LOG: &str = "commits.before_write";

/// All failpoints, in the order a batch passes them.
pub const ALL: &[&str] = &[
    AFTER_SOURCE_LOG,
    AFTER_OFFSETS,
    AFTER_STATE_COMMIT,
    AFTER_FILES_WRITTEN,
    AFTER_DELTA_COMMIT,
    BEFORE_COMMIT_LOG,
];

/// True when this build evaluates failpoints (every build now; kept for callers that ask).
pub fn enabled() -> bool {
    fail::has_failpoints()
}

/// The engine stopped at an armed failpoint, as if the process had been killed there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("injected crash at failpoint `{0}`")]
pub struct InjectedCrash(pub &'static str);

/// One query's view of the failpoints: its scope name and how often it passed each point.
#[derive(Debug)]
pub struct FailScope {
    scope: String,
    /// Passes through each point of [`ALL`], by its index there.
    hits: [AtomicU64; ALL.len()],
}

impl FailScope {
    /// A scope named `scope` (the engine uses the checkpoint folder's path).
    pub fn new(scope: impl Into<String>) -> Self {
        Self {
            scope: scope.into(),
            hits: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn counter(&self, name: &str) -> Option<&AtomicU64> {
        ALL.iter().position(|n| *n == name).map(|i| &self.hits[i])
    }

    /// How many times this scope passed `name` so far.
    pub fn passes(&self, name: &str) -> u64 {
        self.counter(name).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Passes the failpoint `name`; `Err` when it is armed for this scope (and this pass).
    /// Unarmed, that is a count and one atomic load.
    pub fn hit(&self, name: &'static str) -> Result<(), InjectedCrash> {
        // A scenario arms "the K-th pass from now", so passes are counted armed or not.
        let pass = self
            .counter(name)
            .map_or(0, |c| c.fetch_add(1, Ordering::Relaxed) + 1);
        if !ANY_ARMED.load(Ordering::Acquire) {
            return Ok(());
        }
        self.check(name, pass)
    }

    fn check(&self, name: &'static str, pass: u64) -> Result<(), InjectedCrash> {
        fail::fail_point!(name, |arg: Option<String>| {
            let Some(arg) = arg else {
                return Err(InjectedCrash(name));
            };
            let (scope, nth) = match arg.rsplit_once('@') {
                Some((s, k)) if k.parse::<u64>().is_ok() => (s, k.parse::<u64>().ok()),
                _ => (arg.as_str(), None),
            };
            if scope == self.scope && nth.is_none_or(|k| k == pass) {
                Err(InjectedCrash(name))
            } else {
                Ok(())
            }
        });
        Ok(())
    }
}

/// Serializes whoever arms failpoints in this process (tests, scenario replays): the `fail`
/// registry is global, so two arming the same point at once would overwrite each other.
/// Queries of others are not affected while it is held, since every armed point is scoped.
pub static ARMING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Looks up a failpoint by name.
pub fn by_name(name: &str) -> Option<&'static str> {
    ALL.iter().copied().find(|n| *n == name)
}

/// Arms `name` for the query whose scope (checkpoint folder) is `scope`, on its `nth` pass
/// (every pass when `None`). Hold [`ARMING`] from arming to [`disarm`].
pub fn arm(name: &'static str, scope: &std::path::Path, nth: Option<u64>) -> Result<(), String> {
    let arg = match nth {
        Some(k) => format!("{}@{k}", scope.display()),
        None => scope.display().to_string(),
    };
    fail::cfg(name, &format!("return({arg})"))?;
    let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
    armed.insert(name);
    ANY_ARMED.store(true, Ordering::Release);
    Ok(())
}

/// Disarms `name`.
pub fn disarm(name: &str) {
    fail::remove(name);
    let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
    armed.remove(name);
    ANY_ARMED.store(!armed.is_empty(), Ordering::Release);
}
