//! A query running in the background, and how to ask it to stop (Spark's `StreamingQuery`
//! handle: `status`, `recentProgress`, `lastProgress`, `stop`, `awaitTermination`).

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{EngineError, StreamingQuery, Trigger};
use crate::progress::{ProgressLog, QueryProgress, QueryStatus};

/// What a running query has been asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRequest {
    /// Keep running.
    Run,
    /// Process everything present now (no-data batches included), then stop.
    Drain,
    /// Stop after the batch in flight.
    Stop,
}

/// Tells a running query to stop; cloneable, usable from any task (e.g. a Ctrl-C handler).
#[derive(Debug, Clone)]
pub struct StopHandle(pub(super) Arc<watch::Sender<StopRequest>>);

impl StopHandle {
    /// Stops after the batch in flight; nothing committed is lost, nothing half-done is kept.
    pub fn stop(&self) {
        self.0.send_replace(StopRequest::Stop);
    }

    /// Processes what is present now, then stops.
    pub fn drain(&self) {
        self.0.send_modify(|r| {
            if *r == StopRequest::Run {
                *r = StopRequest::Drain;
            }
        });
    }
}

/// What a running query shares with its handle.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) status: QueryStatus,
    pub(super) progress: ProgressLog,
    /// Triggers started in this run.
    pub(super) triggers: u64,
    /// The number (1-based) of the last trigger that found nothing to do.
    pub(super) last_idle_trigger: u64,
}

/// The shared view, updated by the query as it runs.
pub(super) type SharedState = Arc<Mutex<Shared>>;

pub(super) fn lock(s: &SharedState) -> std::sync::MutexGuard<'_, Shared> {
    // A poisoned lock means a panic while updating plain data; the data is still usable.
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// A query running on the tokio runtime.
#[derive(Debug)]
pub struct QueryHandle {
    id: String,
    name: String,
    shared: SharedState,
    stop: StopHandle,
    task: tokio::task::JoinHandle<Result<(StreamingQuery, u64), EngineError>>,
}

impl QueryHandle {
    pub(super) fn spawn(
        mut query: StreamingQuery,
        trigger: Trigger,
        mut on_batch: impl FnMut(&QueryProgress) + Send + 'static,
    ) -> Self {
        let id = query.id().to_string();
        let name = query.name().to_string();
        let shared = query.shared.clone();
        let stop = query.stop_handle();
        let task = tokio::spawn(async move {
            let n = query.run(trigger, &mut on_batch).await?;
            Ok((query, n))
        });
        Self {
            id,
            name,
            shared,
            stop,
            task,
        }
    }

    /// The query id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The query name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the query is doing now.
    pub fn status(&self) -> QueryStatus {
        lock(&self.shared).status.clone()
    }

    /// The last progress records, oldest first.
    pub fn recent_progress(&self) -> Vec<QueryProgress> {
        lock(&self.shared).progress.recent().cloned().collect()
    }

    /// The newest progress record.
    pub fn last_progress(&self) -> Option<QueryProgress> {
        lock(&self.shared).progress.last().cloned()
    }

    /// A view of the query's status and progress that outlives the handle.
    pub fn view(&self) -> QueryView {
        QueryView(self.shared.clone())
    }

    /// A handle to stop the query from elsewhere.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// Stops after the batch in flight.
    pub fn stop(&self) {
        self.stop.stop();
    }

    /// Waits until the query ends (stopped, drained, or failed); the number of batches it ran,
    /// and the query itself, still holding its checkpoint, for a further run.
    pub async fn await_termination(self) -> Result<(StreamingQuery, u64), EngineError> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(EngineError::Failed {
                name: self.name,
                cause: format!("the query task ended abnormally: {e}"),
            }),
        }
    }
}

/// What a query reports while it runs and after it ended: status and progress.
#[derive(Debug, Clone)]
pub struct QueryView(SharedState);

impl QueryView {
    /// What the query is doing now.
    pub fn status(&self) -> QueryStatus {
        lock(&self.0).status.clone()
    }

    /// The last progress records, oldest first.
    pub fn recent_progress(&self) -> Vec<QueryProgress> {
        lock(&self.0).progress.recent().cloned().collect()
    }

    /// The newest progress record.
    pub fn last_progress(&self) -> Option<QueryProgress> {
        lock(&self.0).progress.last().cloned()
    }

    /// Triggers started so far in this run.
    pub fn triggers_started(&self) -> u64 {
        lock(&self.0).triggers
    }

    /// True once a trigger numbered above `after` found nothing left to do: everything
    /// present when trigger `after` was the last started has been processed (Spark's
    /// `processAllAvailable`).
    pub fn idle_since(&self, after: u64) -> bool {
        lock(&self.0).last_idle_trigger > after
    }
}
