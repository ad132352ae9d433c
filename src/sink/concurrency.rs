//! Other writers on a query's output table, handled as Delta's optimistic concurrency does.
//!
//! The sink commits with create-if-absent. When another writer took the version, the sink reads
//! that writer's commits and decides with [`conflict`] whether its own commit still holds: a
//! blind append or a compaction next to an append, or a compaction of files an upsert does not
//! touch, is absorbed (the sink's version and live files follow) and the commit retried at the
//! next version; anything else is a [`SinkError::ConcurrentWriter`] naming the version and why.

use deltalake::DeltaTableError;
use deltalake::kernel::Action;

use super::{DeltaSink, SinkError};

impl DeltaSink {
    /// Reads the commits other writers made from `from` on, checks each against `ours` (the
    /// actions being committed) and takes them into account: the version moves past them and
    /// the live files follow their adds and removes.
    pub(super) async fn absorb_commits_from(&mut self, from: u64, ours: &[Action]) -> Result<(), SinkError> {
        let store = self.table.log_store();
        let mut v = from;
        while let Some(bytes) = store
            .read_commit_entry(v)
            .await
            .map_err(|e| SinkError::delta(self.path.clone(), e))?
        {
            let mut theirs = Vec::new();
            for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let action: Action = serde_json::from_slice(line).map_err(|e| {
                    SinkError::delta(
                        self.path.clone(),
                        DeltaTableError::Generic(format!("commit {v} of another writer: {e}")),
                    )
                })?;
                theirs.push(action);
            }
            if let Some(why) = conflict(&theirs, ours, &self.app_id) {
                return Err(SinkError::ConcurrentWriter {
                    path: self.path.clone(),
                    version: v,
                    why,
                });
            }
            let touches_files = theirs
                .iter()
                .any(|a| matches!(a, Action::Add(_) | Action::Remove(_)));
            if let Some(files) = self.files.as_mut() {
                files.apply(&theirs);
            }
            if touches_files {
                // Rebuilt from the live files when next needed.
                self.buckets = None;
            }
            self.version = v;
            v += 1;
        }
        Ok(())
    }
}

/// Commits by other writers a batch's commit is retried over, at most.
pub(super) const MAX_COMMIT_ATTEMPTS: usize = 15;

/// Why another writer's commit `theirs` conflicts with this batch's actions `ours`, if it does.
/// Compatible: their appends and compactions next to our append; their compaction (files
/// rewritten without data change) next to our upsert or complete replacement, unless it
/// removed a file we remove. Conflicts: a schema or protocol change, a commit by another run
/// of this query (our txn appId), new rows while we replace or upsert rows (our removals were
/// computed without them), a file we remove already removed.
fn conflict(theirs: &[Action], ours: &[Action], app_id: &str) -> Option<String> {
    let our_removes: std::collections::HashSet<&str> = ours
        .iter()
        .filter_map(|a| match a {
            Action::Remove(r) => Some(r.path.as_str()),
            _ => None,
        })
        .collect();
    // Removals that change data (an upsert, a replacement) were chosen without the other
    // writer's rows; a compaction's (no data change) were not about rows at all.
    let replaces_rows = ours
        .iter()
        .any(|a| matches!(a, Action::Remove(r) if r.data_change));
    for a in theirs {
        match a {
            Action::Metadata(_) | Action::Protocol(_) => {
                return Some("it changed the table's schema, properties or protocol".into());
            }
            Action::Txn(t) if t.app_id == app_id => {
                return Some(format!(
                    "it was committed by another run of this query (txn appId {app_id}, batch {})",
                    t.version
                ));
            }
            Action::Add(add) if add.data_change && replaces_rows => {
                return Some(format!(
                    "it added rows ({}) while this batch replaces or upserts rows",
                    add.path
                ));
            }
            Action::Remove(r) if our_removes.contains(r.path.as_str()) => {
                return Some(format!("it removed {}, which this batch rewrites", r.path));
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::kernel::{Add, Remove, StructType, Transaction};

    fn add(path: &str, data_change: bool) -> Action {
        Action::Add(Add {
            path: path.into(),
            data_change,
            ..Default::default()
        })
    }

    fn remove(path: &str, data_change: bool) -> Action {
        Action::Remove(Remove {
            path: path.into(),
            data_change,
            ..Default::default()
        })
    }

    #[test]
    fn which_commits_of_other_writers_conflict() {
        let append = [add("ours.parquet", true)];
        let upsert = [remove("a.parquet", true), add("a2.parquet", true)];
        let their_append = [add("theirs.parquet", true)];
        let their_compaction = [
            remove("b.parquet", false),
            remove("c.parquet", false),
            add("bc.parquet", false),
        ];
        let their_compaction_of_ours = [remove("a.parquet", false), add("a3.parquet", false)];
        let our_compaction = [
            add("ours.parquet", true),
            remove("d.parquet", false),
            add("d2.parquet", false),
        ];
        let their_txn = [Action::Txn(Transaction::new("q", 7))];
        let other_txn = [Action::Txn(Transaction::new("other", 7))];

        // Compatible.
        assert_eq!(conflict(&their_append, &append, "q"), None);
        assert_eq!(conflict(&their_compaction, &append, "q"), None);
        assert_eq!(conflict(&their_compaction, &upsert, "q"), None);
        assert_eq!(conflict(&other_txn, &upsert, "q"), None);
        assert_eq!(conflict(&their_append, &our_compaction, "q"), None);
        // Conflicts.
        let why = conflict(&their_append, &upsert, "q").unwrap();
        assert!(why.contains("added rows"), "{why}");
        let why = conflict(&their_compaction_of_ours, &upsert, "q").unwrap();
        assert!(why.contains("removed a.parquet"), "{why}");
        let their_compaction_of_our_compaction = [remove("d.parquet", false)];
        let why = conflict(&their_compaction_of_our_compaction, &our_compaction, "q").unwrap();
        assert!(why.contains("removed d.parquet"), "{why}");
        let why = conflict(&their_txn, &append, "q").unwrap();
        assert!(why.contains("another run of this query"), "{why}");
        let schema = [Action::Metadata(
            deltalake::kernel::new_metadata(
                &StructType::try_new(vec![]).unwrap(),
                Vec::<String>::new(),
                std::iter::empty::<(String, String)>(),
            )
            .unwrap(),
        )];
        let why = conflict(&schema, &append, "q").unwrap();
        assert!(why.contains("schema"), "{why}");
    }
}
