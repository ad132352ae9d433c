//! What a checkpoint was made for: the query's name, its output table, its stateful operators'
//! key and value layouts, and its plan — stored in `<checkpoint>/query.json` when the query
//! first starts and compared at every later start, so a checkpoint reused by another query is
//! refused instead of silently corrupting a table (Spark checks state schemas and operators at
//! start the same way).
//!
//! A compatible change passes, as in Spark: anything that keeps the output table and every
//! stateful operator's keys and values (a new column in a stateless select, a changed filter).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{CheckpointError, atomic};
use crate::plan::analyze::StatefulOperator;

/// The file's name in the checkpoint folder.
pub const FILE: &str = "query.json";

/// A query's identity as far as its checkpoint is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The query's name.
    pub name: String,
    /// The output table (as given, not canonicalised, so a checkpoint can move with its data).
    pub sink: String,
    /// Each stateful operator's layout, in plan order.
    pub stateful: Vec<StatefulOperator>,
    /// The plan, as `tree_string` prints it (for the message; not compared).
    pub plan: String,
}

/// Why a checkpoint does not fit a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The checkpoint folder.
    pub checkpoint: PathBuf,
    /// What the checkpoint was made for.
    pub stored: Fingerprint,
    /// The query now starting.
    pub now: Fingerprint,
    /// What differs.
    pub why: String,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "checkpoint {} was made for query `{}` writing {}, not for query `{}` writing {}: {}. Use a checkpoint folder of its own for each query (or delete this one to start over)",
            self.checkpoint.display(),
            self.stored.name,
            self.stored.sink,
            self.now.name,
            self.now.sink,
            self.why
        )
    }
}

fn describe(ops: &[StatefulOperator]) -> String {
    if ops.is_empty() {
        return "no state".into();
    }
    ops.iter()
        .map(|o| format!("{} keyed by ({}) holding ({})", o.name, o.key, o.value))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The first difference that makes `stored`'s checkpoint unusable for `now`.
pub fn incompatibility(stored: &Fingerprint, now: &Fingerprint) -> Option<String> {
    if stored.sink != now.sink {
        return Some(format!(
            "its output table was {}, this query's is {}",
            stored.sink, now.sink
        ));
    }
    if stored.stateful != now.stateful {
        return Some(format!(
            "its state is {}, this query's is {}",
            describe(&stored.stateful),
            describe(&now.stateful)
        ));
    }
    None
}

/// Checks `now` against the fingerprint stored in checkpoint `root`, writing it if there is
/// none yet (a new checkpoint, or one made before fingerprints existed).
pub fn check_or_store(root: &Path, now: &Fingerprint) -> Result<Result<(), Mismatch>, CheckpointError> {
    let path = root.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let stored: Fingerprint =
                serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Corrupt {
                    path: path.clone(),
                    why: e.to_string(),
                })?;
            Ok(match incompatibility(&stored, now) {
                Some(why) => Err(Mismatch {
                    checkpoint: root.to_path_buf(),
                    stored,
                    now: now.clone(),
                    why,
                }),
                None => {
                    if stored != *now {
                        // A compatible change: the file follows the query.
                        let text = serde_json::to_vec_pretty(now).unwrap_or_default();
                        atomic::replace(&path, &text, atomic::Durability::PowerLoss)
                            .map_err(|source| CheckpointError::Io { path, source })?;
                    }
                    Ok(())
                }
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Serialising a struct of strings cannot fail.
            let text = serde_json::to_vec_pretty(now).unwrap_or_default();
            atomic::replace(&path, &text, atomic::Durability::PowerLoss)
                .map_err(|source| CheckpointError::Io { path, source })?;
            Ok(Ok(()))
        }
        Err(source) => Err(CheckpointError::Io { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(name: &str, sink: &str, key: &str) -> Fingerprint {
        Fingerprint {
            name: name.into(),
            sink: sink.into(),
            stateful: vec![StatefulOperator {
                id: 0,
                name: "stateStoreSave".into(),
                key: key.into(),
                value: "count bigint".into(),
            }],
            plan: String::new(),
        }
    }

    #[test]
    fn which_changes_a_checkpoint_accepts() {
        let agg = fp("agg", "data/event_aggregates", "window struct, event_type string");
        assert_eq!(incompatibility(&agg, &agg), None);
        let mut renamed = agg.clone();
        renamed.plan = "Project [a, b]".into();
        assert_eq!(incompatibility(&agg, &renamed), None, "a stateless change passes");
        let late = fp("late", "data/user_activity", "window struct, user_id int");
        let why = incompatibility(&agg, &late).unwrap();
        assert!(why.contains("output table"), "{why}");
        let other_keys = fp("agg", "data/event_aggregates", "window struct, user_id int");
        let why = incompatibility(&agg, &other_keys).unwrap();
        assert!(
            why.contains("event_type string") && why.contains("user_id int"),
            "{why}"
        );
    }

    #[test]
    fn stored_once_then_compared() {
        let dir = tempfile::tempdir().unwrap();
        let agg = fp("agg", "data/a", "k int");
        assert_eq!(check_or_store(dir.path(), &agg).unwrap(), Ok(()));
        assert_eq!(check_or_store(dir.path(), &agg).unwrap(), Ok(()));
        let m = check_or_store(dir.path(), &fp("late", "data/b", "k int"))
            .unwrap()
            .unwrap_err();
        let text = m.to_string();
        assert!(
            text.contains("`agg`") && text.contains("`late`") && text.contains("data/b"),
            "{text}"
        );
    }
}
