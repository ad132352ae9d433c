//! Auto compaction, when a table asks for it with Delta's own property
//! `delta.autoOptimize.autoCompact = true` (off by default, as in Delta).
//!
//! A streaming append adds one file per batch. When at least [`MIN_SMALL_FILES`] live files are
//! smaller than [`SMALL_FILE_BYTES`] (Delta's `autoCompact` defaults: 50 files, 128 MB), the
//! batch's commit also rewrites them as one file: their removes and its add carry
//! `dataChange = false`, so streaming readers of the table see no new data, and the rows, the
//! version count and the txn are those of the batch. The rewrite is staged with the batch's
//! own files, so a crash leaves it where it leaves the batch: uncommitted, cleaned at restart,
//! redone by the re-run.

use deltalake::DeltaTableError;
use deltalake::kernel::Action;

use super::{DeltaSink, SinkError, read_data_files, remove_of, write_file};

/// Small live files that make a batch compact them.
pub const MIN_SMALL_FILES: usize = 50;
/// A file below this size is small.
pub const SMALL_FILE_BYTES: i64 = 128 << 20;

/// The table property that turns auto compaction on.
pub const AUTO_COMPACT_PROPERTY: &str = "delta.autoOptimize.autoCompact";

/// Whether the property's value turns auto compaction on (`true` or `auto`, as Delta reads it).
pub fn enabled(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("auto"))
}

impl DeltaSink {
    /// The actions that rewrite the table's small files as one, when enough of them are live;
    /// none otherwise. The rewritten file is written now (staged), not yet visible.
    pub(super) async fn stage_compaction(&mut self, timestamp_ms: i64) -> Result<Vec<Action>, SinkError> {
        let path = self.path.clone();
        let delta = |e: DeltaTableError| SinkError::delta(path.clone(), e);
        let small: Vec<(String, super::LiveFile)> = self
            .active_files()
            .await?
            .by_path
            .iter()
            .filter(|(_, f)| f.size < SMALL_FILE_BYTES)
            .map(|(p, f)| (p.clone(), f.clone()))
            .collect();
        if small.len() < MIN_SMALL_FILES {
            return Ok(Vec::new());
        }
        let schema = self.table.snapshot().map_err(delta)?.snapshot().arrow_schema();
        let paths: Vec<deltalake::Path> = small
            .iter()
            .map(|(p, _)| deltalake::Path::from(p.as_str()))
            .collect();
        let parts = read_data_files(&self.table, &paths, &schema)
            .await
            .map_err(delta)?;
        let writer = super::data_writer(&self.table, parts.first()).map_err(delta)?;
        let mut actions: Vec<Action> = write_file(writer, parts)
            .await
            .map_err(delta)?
            .into_iter()
            .map(|mut add| {
                add.data_change = false;
                Action::Add(add)
            })
            .collect();
        actions.extend(small.iter().map(|(p, f)| {
            let mut remove = remove_of(p, f, timestamp_ms);
            remove.data_change = false;
            Action::Remove(remove)
        }));
        Ok(actions)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_property_turns_it_on_as_delta_reads_it() {
        assert!(super::enabled(Some("true")));
        assert!(super::enabled(Some("AUTO")));
        assert!(!super::enabled(Some("false")));
        assert!(!super::enabled(None));
    }
}
