//! Reading the next batch's files while this batch is processed and written.
//!
//! When the files of batch N+1 are known before it is planned — an available-now run's list,
//! or the source's unread-files cache — they are read and parsed on a blocking thread as soon
//! as batch N has its rows, so the parse overlaps N's operators and writes instead of starting
//! after `commits/N`. Nothing durable happens here: batch N+1 is still planned in Spark's
//! order (its source log and `offsets/N+1` after `commits/N`), and it uses what was read ahead
//! only when it planned exactly those files; otherwise the read-ahead is dropped and the
//! files are read as usual. Reading a file a few milliseconds early is what Spark's own
//! listing already assumes: a file in the source folder does not change once it is there.

use tokio::task::JoinHandle;

use super::{EngineError, Result};
use crate::source::{BatchReader, FileEntry, SourceBatch, SourceError};

/// One batch's files being read ahead.
#[derive(Debug)]
pub struct ReadAhead {
    /// The files, by name and listed modification time, in order.
    files: Vec<(String, i64)>,
    task: JoinHandle<std::result::Result<SourceBatch, SourceError>>,
}

/// The name and listed modification time of each file: what makes two plans read the same
/// bytes (the log id a file is recorded under is only known when it is planned).
fn identity(files: &[FileEntry]) -> Vec<(String, i64)> {
    files.iter().map(|f| (f.path.clone(), f.timestamp)).collect()
}

impl ReadAhead {
    /// Starts reading `reader`'s files on a blocking thread.
    pub fn start(reader: BatchReader) -> Self {
        Self {
            files: identity(reader.files()),
            task: tokio::task::spawn_blocking(move || reader.read()),
        }
    }

    /// Reads the batch `reader` plans: the read-ahead's result when it read the same files
    /// (with the planned log entries), else a read of its own. Dropping a read-ahead that is not
    /// used leaves its thread to finish and its rows to be freed.
    pub async fn read(ahead: Option<Self>, reader: BatchReader) -> Result<SourceBatch> {
        match ahead {
            Some(a) if a.files == identity(reader.files()) => {
                let mut batch = join(a.task).await?;
                batch.files = reader.files().to_vec();
                Ok(batch)
            }
            _ => join(tokio::task::spawn_blocking(move || reader.read())).await,
        }
    }
}

async fn join(task: JoinHandle<std::result::Result<SourceBatch, SourceError>>) -> Result<SourceBatch> {
    Ok(task
        .await
        .map_err(|e| EngineError::Task(format!("reading the batch's files: {e}")))??)
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::*;
    use crate::source::FileSource;

    fn line(user: i64) -> String {
        format!(
            r#"{{"event_id":"e{user}","timestamp":"2026-11-24T10:00:00","user_id":{user},"event_type":"click","value":1.0}}"#
        ) + "\n"
    }

    /// A read-ahead of other files than the batch planned is not used: the batch reads its own.
    /// One of the same files is used, with the planned log entries.
    #[tokio::test]
    async fn a_read_ahead_is_used_only_for_the_files_it_read() {
        let input = tempfile::tempdir().unwrap();
        let log = tempfile::tempdir().unwrap();
        std::fs::write(input.path().join("a.json"), line(1)).unwrap();
        std::fs::write(input.path().join("b.json"), line(2) + &line(3)).unwrap();
        let source = FileSource::open(input.path(), log.path(), NonZeroUsize::MIN).unwrap();
        let entry = |path: &str, batch_id| FileEntry {
            path: path.into(),
            timestamp: 5,
            batch_id,
        };
        let ahead = ReadAhead::start(source.reader_of(vec![entry("a.json", 0)]));
        let got = ReadAhead::read(Some(ahead), source.reader_of(vec![entry("b.json", 1)]))
            .await
            .unwrap();
        assert_eq!(got.num_rows(), 2, "b.json's rows, not a.json's");
        assert_eq!(got.files, vec![entry("b.json", 1)]);

        let ahead = ReadAhead::start(source.reader_of(vec![entry("a.json", 0)]));
        let got = ReadAhead::read(Some(ahead), source.reader_of(vec![entry("a.json", 3)]))
            .await
            .unwrap();
        assert_eq!(got.num_rows(), 1);
        assert_eq!(got.files, vec![entry("a.json", 3)], "the planned entry");
    }
}
