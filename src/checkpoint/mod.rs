//! A query's checkpoint folder, in Spark's layout (R1.1–R1.5):
//!
//! ```text
//! <checkpoint>/metadata        {"id":"<query uuid>"}              written once, kept across restarts
//! <checkpoint>/offsets/<N>     v1 / {batchWatermarkMs,batchTimestampMs,conf} / source offsets
//!                              written before batch N runs (the write-ahead log)
//! <checkpoint>/commits/<N>     v1 / {"nextBatchWatermarkMs":…}      written after batch N is durable
//! <checkpoint>/sources/0/<k>   the file source's log (see `source`)
//! <checkpoint>/state/…         state store versions (stateful queries)
//! <checkpoint>/.lock           held by the one process running the query
//! ```
//!
//! Every file is created atomically and never overwritten ([`atomic::create_new`], fsynced with
//! [`Durability::PowerLoss`]); a batch file that already exists is a "concurrent update" error,
//! as in Spark. Logs are purged as Spark
//! purges them: after `offsets/N` is written, entries older than `N - 100` go.

pub mod atomic;
pub mod fingerprint;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use fs2::FileExt;
use serde::{Deserialize, Serialize};

pub use atomic::Durability;

use crate::clock::Millis;

/// Spark's `spark.sql.streaming.minBatchesToRetain` default.
pub const MIN_BATCHES_TO_RETAIN: u64 = 100;

/// Errors of the checkpoint folder, each naming the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Another process (or another query in this one) holds the checkpoint.
    #[error(
        "checkpoint {0} is in use by another running query (its .lock is held); stop that query or use another checkpoint folder"
    )]
    Locked(PathBuf),
    /// An I/O error on a checkpoint file.
    #[error("checkpoint file {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A checkpoint file exists but its content is not what the engine writes.
    #[error(
        "checkpoint file {path} is corrupt: {why}. If a crash left it half-written, move it aside and restart; the batch will be re-planned"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// A batch file that should be new already exists: two writers on one checkpoint.
    #[error(
        "{0} already exists: another query wrote this batch concurrently (multiple queries must not share a checkpoint)"
    )]
    ConcurrentUpdate(PathBuf),
    /// The log has a gap where a batch file is needed.
    #[error(
        "checkpoint {dir} has offsets for batch {batch} but not for batch {missing}; the log is incomplete"
    )]
    MissingBatch {
        /// The log folder.
        dir: PathBuf,
        /// The batch being recovered.
        batch: u64,
        /// The batch whose file is missing.
        missing: u64,
    },
}

type Result<T> = std::result::Result<T, CheckpointError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Metadata written with each batch's offsets (Spark's `OffsetSeqMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchMetadata {
    /// The watermark batch N runs with (eviction threshold).
    pub batch_watermark_ms: Millis,
    /// The batch's timestamp from the query clock; a re-run uses the logged value.
    pub batch_timestamp_ms: Millis,
    /// Settings pinned for the life of the checkpoint, and per-batch facts such as the static
    /// table version a join used.
    #[serde(default)]
    pub conf: BTreeMap<String, String>,
}

/// The content of `offsets/N`: what batch N reads and with which metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct OffsetSeq {
    /// Metadata of the batch.
    pub metadata: BatchMetadata,
    /// One entry per source: its end offset as JSON, or `None` when it has none yet.
    pub sources: Vec<Option<serde_json::Value>>,
}

impl OffsetSeq {
    fn serialize(&self) -> String {
        let mut s = String::from("v1\n");
        // Serializing a struct of integers and a string map cannot fail.
        s.push_str(&serde_json::to_string(&self.metadata).expect("metadata serializes"));
        for src in &self.sources {
            s.push('\n');
            match src {
                Some(v) => s.push_str(&v.to_string()),
                None => s.push('-'),
            }
        }
        s
    }

    fn parse(path: &Path, text: &str) -> Result<Self> {
        let corrupt = |why: String| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            why,
        };
        let mut lines = text.split('\n');
        match lines.next() {
            Some("v1") => {}
            other => return Err(corrupt(format!("expected version line `v1`, found {other:?}"))),
        }
        let meta_line = lines.next().ok_or_else(|| corrupt("no metadata line".into()))?;
        let metadata: BatchMetadata =
            serde_json::from_str(meta_line).map_err(|e| corrupt(format!("metadata line: {e}")))?;
        let mut sources = Vec::new();
        for line in lines {
            if line == "-" {
                sources.push(None);
            } else {
                sources.push(Some(
                    serde_json::from_str(line).map_err(|e| corrupt(format!("source offset: {e}")))?,
                ));
            }
        }
        if sources.is_empty() {
            return Err(corrupt("no source offset line (truncated file?)".into()));
        }
        Ok(Self { metadata, sources })
    }
}

/// The content of `commits/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitMetadata {
    /// The watermark computed after batch N, used by batch N+1.
    #[serde(default)]
    pub next_batch_watermark_ms: Millis,
}

/// A numbered log folder (`offsets/` or `commits/`): files named by decimal batch id.
#[derive(Debug)]
struct BatchLog {
    dir: PathBuf,
    latest: Option<u64>,
    durability: Durability,
}

impl BatchLog {
    fn open(dir: PathBuf) -> Result<Self> {
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut latest = None;
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            if let Some(id) = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) {
                latest = latest.max(Some(id));
            }
        }
        Ok(Self {
            dir,
            latest,
            durability: Durability::ProcessCrash,
        })
    }

    fn path(&self, id: u64) -> PathBuf {
        self.dir.join(id.to_string())
    }

    fn read(&self, id: u64) -> Result<Option<String>> {
        let path = self.path(id);
        match fs::read(&path) {
            Ok(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| CheckpointError::Corrupt {
                    path,
                    why: "not UTF-8 text".into(),
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CheckpointError::Io { path, source: e }),
        }
    }

    fn add(&mut self, id: u64, text: &str) -> Result<()> {
        let path = self.path(id);
        match atomic::create_new(&path, text.as_bytes(), self.durability) {
            Ok(()) => {
                self.latest = self.latest.max(Some(id));
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(CheckpointError::ConcurrentUpdate(path))
            }
            Err(e) => Err(CheckpointError::Io { path, source: e }),
        }
    }

    /// Renames batch file `id` to `.<id>.corrupt-<uuid>` (ignored by the log) and forgets it.
    fn set_aside(&mut self, id: u64) -> Result<PathBuf> {
        let from = self.path(id);
        let to = self
            .dir
            .join(format!(".{id}.corrupt-{}", uuid::Uuid::new_v4().simple()));
        fs::rename(&from, &to).map_err(io_err(&from))?;
        if self.latest == Some(id) {
            self.latest = id.checked_sub(1).filter(|prev| self.path(*prev).is_file());
        }
        Ok(to)
    }

    fn remove(&self, id: u64) -> Result<()> {
        let path = self.path(id);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(CheckpointError::Io { path, source: e }),
            _ => Ok(()),
        }
    }
}

/// An open checkpoint folder, locked for this process until dropped.
#[derive(Debug)]
pub struct Checkpoint {
    root: PathBuf,
    query_id: String,
    offsets: BatchLog,
    commits: BatchLog,
    _lock: File,
}

impl Checkpoint {
    /// Opens (creating if needed) the checkpoint at `root` and takes its lock. Fails with
    /// [`CheckpointError::Locked`] when another query holds it — after a quarter of a second of
    /// retries, which a lock only just released needs (a query that just stopped, whose lock
    /// file a child process being started elsewhere in this process still shares until it
    /// runs its program).
    pub fn open(root: &Path) -> Result<Self> {
        fs::create_dir_all(root).map_err(io_err(root))?;
        let lock_path = root.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        let mut tries = 0;
        while lock.try_lock_exclusive().is_err() {
            tries += 1;
            if tries > 25 {
                return Err(CheckpointError::Locked(root.to_path_buf()));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let query_id = Self::read_or_create_metadata(root)?;
        Ok(Self {
            root: root.to_path_buf(),
            query_id,
            offsets: BatchLog::open(root.join("offsets"))?,
            commits: BatchLog::open(root.join("commits"))?,
            _lock: lock,
        })
    }

    /// Writes `offsets/N` and `commits/N` with `durability` (fsynced or not).
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.offsets.durability = durability;
        self.commits.durability = durability;
        self
    }

    fn read_or_create_metadata(root: &Path) -> Result<String> {
        #[derive(Serialize, Deserialize)]
        struct Meta {
            id: String,
        }
        let path = root.join("metadata");
        let parse = |text: &str| -> Result<String> {
            let meta: Meta = serde_json::from_str(text.trim()).map_err(|e| CheckpointError::Corrupt {
                path: path.clone(),
                why: format!("expected {{\"id\":\"<uuid>\"}}: {e}"),
            })?;
            uuid::Uuid::parse_str(&meta.id).map_err(|e| CheckpointError::Corrupt {
                path: path.clone(),
                why: format!("query id is not a UUID: {e}"),
            })?;
            Ok(meta.id)
        };
        match fs::read_to_string(&path) {
            Ok(text) => parse(&text),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let id = uuid::Uuid::new_v4().to_string();
                let text = serde_json::to_string(&Meta { id: id.clone() }).expect("serializes");
                // Written once, when the checkpoint is made: always fsynced.
                atomic::create_new(&path, text.as_bytes(), Durability::PowerLoss).map_err(io_err(&path))?;
                Ok(id)
            }
            Err(e) => Err(CheckpointError::Io { path, source: e }),
        }
    }

    /// The checkpoint folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The query id (a UUID), stable across restarts: the appId of every Delta txn.
    pub fn query_id(&self) -> &str {
        &self.query_id
    }

    /// The folder of source `i`'s own log.
    pub fn source_dir(&self, i: usize) -> PathBuf {
        self.root.join("sources").join(i.to_string())
    }

    /// The folder of stateful operator `op`'s state store.
    pub fn state_dir(&self, op: usize) -> PathBuf {
        self.root.join("state").join(op.to_string())
    }

    /// The highest batch id in the offsets log.
    pub fn latest_offsets_id(&self) -> Option<u64> {
        self.offsets.latest
    }

    /// The highest batch id in the commits log.
    pub fn latest_commit_id(&self) -> Option<u64> {
        self.commits.latest
    }

    /// Reads `offsets/N`, `None` if absent.
    pub fn read_offsets(&self, id: u64) -> Result<Option<OffsetSeq>> {
        let path = self.offsets.path(id);
        self.offsets
            .read(id)?
            .map(|t| OffsetSeq::parse(&path, &t))
            .transpose()
    }

    /// Reads `offsets/N`, which must exist.
    pub fn expect_offsets(&self, id: u64, for_batch: u64) -> Result<OffsetSeq> {
        self.read_offsets(id)?
            .ok_or_else(|| CheckpointError::MissingBatch {
                dir: self.offsets.dir.clone(),
                batch: for_batch,
                missing: id,
            })
    }

    /// Reads `commits/N`, `None` if absent.
    pub fn read_commit(&self, id: u64) -> Result<Option<CommitMetadata>> {
        let path = self.commits.path(id);
        let Some(text) = self.commits.read(id)? else {
            return Ok(None);
        };
        let body = text
            .strip_prefix("v1\n")
            .ok_or_else(|| CheckpointError::Corrupt {
                path: path.clone(),
                why: "expected version line `v1`".into(),
            })?;
        serde_json::from_str(body)
            .map(Some)
            .map_err(|e| CheckpointError::Corrupt {
                path,
                why: format!("commit metadata: {e}"),
            })
    }

    /// Sets a corrupt `offsets/N` aside (renamed to `offsets/.N.corrupt-…`); returns the new name.
    pub fn set_aside_offsets(&mut self, id: u64) -> Result<PathBuf> {
        self.offsets.set_aside(id)
    }

    /// Sets a corrupt `commits/N` aside (renamed to `commits/.N.corrupt-…`); returns the new name.
    pub fn set_aside_commit(&mut self, id: u64) -> Result<PathBuf> {
        self.commits.set_aside(id)
    }

    /// Writes `offsets/N` (never overwriting), then purges entries older than the retention.
    pub fn write_offsets(&mut self, id: u64, offsets: &OffsetSeq) -> Result<()> {
        self.offsets.add(id, &offsets.serialize())?;
        if id > MIN_BATCHES_TO_RETAIN {
            // Spark deletes every id < N - minBatchesToRetain; the ones before were deleted by
            // earlier batches, so one id per batch keeps this constant-time.
            let old = id - MIN_BATCHES_TO_RETAIN - 1;
            self.offsets.remove(old)?;
            self.commits.remove(old)?;
        }
        Ok(())
    }

    /// Writes `commits/N` (never overwriting).
    pub fn write_commit(&mut self, id: u64, commit: &CommitMetadata) -> Result<()> {
        // Serializing a struct of one integer cannot fail.
        let body = serde_json::to_string(commit).expect("commit metadata serializes");
        self.commits.add(id, &format!("v1\n{body}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(wm: i64, k: u64) -> OffsetSeq {
        OffsetSeq {
            metadata: BatchMetadata {
                batch_watermark_ms: wm,
                batch_timestamp_ms: 1_000,
                conf: BTreeMap::from([("a".into(), "b".into())]),
            },
            sources: vec![Some(serde_json::json!({"logOffset": k}))],
        }
    }

    #[test]
    fn offsets_and_commits_round_trip_in_spark_format() {
        let dir = tempfile::tempdir().unwrap();
        let mut cp = Checkpoint::open(dir.path()).unwrap();
        cp.write_offsets(0, &seq(0, 0)).unwrap();
        cp.write_commit(
            0,
            &CommitMetadata {
                next_batch_watermark_ms: 5,
            },
        )
        .unwrap();
        let text = fs::read_to_string(dir.path().join("offsets/0")).unwrap();
        assert_eq!(
            text,
            "v1\n{\"batchWatermarkMs\":0,\"batchTimestampMs\":1000,\"conf\":{\"a\":\"b\"}}\n{\"logOffset\":0}"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("commits/0")).unwrap(),
            "v1\n{\"nextBatchWatermarkMs\":5}"
        );
        assert_eq!(cp.read_offsets(0).unwrap(), Some(seq(0, 0)));
        assert_eq!(cp.read_commit(0).unwrap().unwrap().next_batch_watermark_ms, 5);
        assert!(matches!(
            cp.write_offsets(0, &seq(1, 1)),
            Err(CheckpointError::ConcurrentUpdate(_))
        ));
    }

    #[test]
    fn query_id_survives_reopen_and_lock_refuses_a_second_opener() {
        let dir = tempfile::tempdir().unwrap();
        let id = {
            let cp = Checkpoint::open(dir.path()).unwrap();
            let err = Checkpoint::open(dir.path()).unwrap_err();
            assert!(matches!(err, CheckpointError::Locked(_)));
            assert!(err.to_string().contains("in use by another running query"));
            cp.query_id().to_string()
        };
        let cp = Checkpoint::open(dir.path()).unwrap();
        assert_eq!(cp.query_id(), id);
    }

    #[test]
    fn torn_files_are_reported_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let cp = Checkpoint::open(dir.path()).unwrap();
        fs::write(dir.path().join("offsets/3"), "v1\n{\"batchWatermarkMs\":0,").unwrap();
        fs::write(dir.path().join("commits/3"), "garbage").unwrap();
        let e = cp.read_offsets(3).unwrap_err().to_string();
        assert!(e.contains("offsets/3") && e.contains("corrupt"), "{e}");
        let e = cp.read_commit(3).unwrap_err().to_string();
        assert!(e.contains("commits/3") && e.contains("corrupt"), "{e}");
        drop(cp);
        fs::write(dir.path().join("metadata"), "{\"id\":").unwrap();
        let e = Checkpoint::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("metadata") && e.contains("corrupt"), "{e}");
    }

    #[test]
    fn old_batches_are_purged_after_retention() {
        let dir = tempfile::tempdir().unwrap();
        let mut cp = Checkpoint::open(dir.path()).unwrap();
        for n in 0..=MIN_BATCHES_TO_RETAIN + 5 {
            cp.write_offsets(n, &seq(0, n)).unwrap();
            cp.write_commit(
                n,
                &CommitMetadata {
                    next_batch_watermark_ms: 0,
                },
            )
            .unwrap();
        }
        assert!(cp.read_offsets(4).unwrap().is_none());
        assert!(cp.read_offsets(5).unwrap().is_some());
        assert_eq!(fs::read_dir(dir.path().join("offsets")).unwrap().count(), 101);
    }
}
