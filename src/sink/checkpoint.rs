//! Delta checkpoints for a table the sink writes.
//!
//! Every `delta.checkpointInterval` versions (default 100, as Spark and delta-rs) the state of
//! the table is written as a parquet checkpoint, so a reader — and the sink itself at its next
//! start — reads one checkpoint and at most that many commit files instead of the whole log.
//!
//! The checkpoint is built by delta-kernel from the previous checkpoint plus the commits since:
//! its cost follows the table's live files, never its history of commits, and it is paid once
//! per interval. A checkpoint is an optimisation, not part of the commit: a crash while writing
//! one leaves the table correct (the parquet file and `_last_checkpoint` are each written
//! whole), and the next interval writes another.

use std::sync::Arc;

use delta_kernel::{Snapshot, SnapshotRef};
use deltalake::DeltaTableError;
use deltalake::logstore::LogStoreRef;

type Written = Result<SnapshotRef, DeltaTableError>;

/// Writes a checkpoint after every `interval`-th version, in the background: the batch that
/// reaches the interval does not wait for it. At most one checkpoint is in flight; its error,
/// if any, is returned by the next [`Checkpointer::after_commit`] or [`Checkpointer::finish`].
pub struct Checkpointer {
    log_store: LogStoreRef,
    interval: u64,
    /// The kernel's view of the table at the last checkpoint this run wrote: the next one
    /// starts from it and lists only the log written since.
    last: Option<SnapshotRef>,
    in_flight: Option<tokio::task::JoinHandle<Written>>,
    /// With `fsync` on, the `_delta_log` folder whose checkpoint files are fsynced once written.
    sync_log: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("interval", &self.interval)
            .field("last", &self.last.as_ref().map(|s| s.version()))
            .field("in_flight", &self.in_flight.is_some())
            .finish()
    }
}

impl Checkpointer {
    /// A checkpointer for the table behind `log_store`, writing every `interval` versions.
    pub fn new(log_store: LogStoreRef, interval: u64) -> Self {
        Self {
            log_store,
            interval: interval.max(1),
            last: None,
            in_flight: None,
            sync_log: None,
        }
    }

    /// Fsyncs each checkpoint's files in `log` (the table's `_delta_log`) once written.
    pub fn sync_log(&mut self, log: Option<std::path::PathBuf>) {
        self.sync_log = log;
    }

    /// Called after version `version` was committed: starts writing its checkpoint when
    /// `version + 1` is a multiple of the interval (delta-rs's and Delta Spark's rule).
    pub async fn after_commit(&mut self, version: u64) -> Result<(), DeltaTableError> {
        if self.in_flight.as_ref().is_some_and(|t| t.is_finished()) {
            self.finish().await?;
        }
        if (version + 1).is_multiple_of(self.interval) {
            self.finish().await?;
            self.in_flight = Some(self.spawn(version));
        }
        Ok(())
    }

    /// Waits for the checkpoint in flight, if any.
    pub async fn finish(&mut self) -> Result<(), DeltaTableError> {
        if let Some(task) = self.in_flight.take() {
            let snapshot = task
                .await
                .map_err(|e| DeltaTableError::Generic(format!("checkpoint task: {e}")))??;
            self.last = Some(snapshot);
        }
        Ok(())
    }

    fn spawn(&self, version: u64) -> tokio::task::JoinHandle<Written> {
        let log_store = self.log_store.clone();
        let mut root = self.log_store.config().location().clone();
        if !root.path().ends_with('/') {
            // The kernel joins paths onto the root: without the slash it would replace the
            // last segment.
            let with_slash = format!("{}/", root.path());
            root.set_path(&with_slash);
        }
        let last = self.last.clone();
        let sync_log = self.sync_log.clone();
        tokio::task::spawn_blocking(move || -> Written {
            // On a thread of its own at the lowest priority: the checkpoint covers every live
            // file, so it grows with the table, and it must take only CPU the batches leave.
            // (The pool's blocking threads are reused, and a thread's priority cannot be raised
            // back.) Its I/O too: the kernel's engine is made on that thread, inside a runtime
            // of its own, so the engine's executor thread and the file reads it starts are
            // created from it and inherit the priority, instead of running on the query's
            // runtime beside the batches.
            std::thread::scope(|s| {
                let work = s.spawn(|| {
                    lower_thread_priority();
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| DeltaTableError::Generic(format!("checkpoint runtime: {e}")))?;
                    let _entered = runtime.enter();
                    let engine = log_store.engine(None);
                    write_checkpoint(engine, root, last, sync_log, version)
                });
                // The checkpoint writer returns its errors; if it panicked, the panic goes on.
                work.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
            })
        })
    }
}

/// Lowers the calling thread's priority to the lowest: Linux's `SCHED_IDLE` (it runs only on a
/// core nothing else wants; any other thread waking up takes the core at once), else nice 19.
/// A failure only leaves the priority as it was.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: both calls take plain values and act on the calling thread (pid 0); the
    // parameter struct outlives the call.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        }
    }
}

/// Builds the table's snapshot at `version` (from `last`, the previous checkpoint's, when there
/// is one) and writes its checkpoint.
fn write_checkpoint(
    engine: Arc<dyn delta_kernel::Engine>,
    root: url::Url,
    last: Option<SnapshotRef>,
    sync_log: Option<std::path::PathBuf>,
    version: u64,
) -> Written {
    let builder = match last {
        Some(prev) if prev.version() <= version => Snapshot::builder_from(prev),
        _ => Snapshot::builder_for(root.as_str()),
    };
    let snapshot = builder.at_version(version).build(engine.as_ref())?;
    let (_, snapshot) = snapshot.checkpoint(engine.as_ref(), None)?;
    if let Some(log) = sync_log {
        sync_checkpoint(&log, version).map_err(|e| {
            DeltaTableError::Generic(format!("fsync of the checkpoint in {}: {e}", log.display()))
        })?;
    }
    Ok(Arc::clone(&snapshot))
}

/// Fsyncs version `version`'s checkpoint files and `_last_checkpoint` in `log`, then `log`.
fn sync_checkpoint(log: &std::path::Path, version: u64) -> std::io::Result<()> {
    use crate::checkpoint::atomic::{sync_dir, sync_file};
    let prefix = format!("{version:020}.checkpoint");
    for entry in std::fs::read_dir(log)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&prefix) || name == "_last_checkpoint" {
            sync_file(&log.join(name.as_ref()))?;
        }
    }
    sync_dir(log)
}
