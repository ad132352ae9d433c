//! What a query does to each batch's rows, between the source and the sink.
//!
//! [`Operator`] is the plan the execution loop drives: it takes the batch's input rows and the
//! two watermark thresholds, returns the rows to write, and — for stateful operators — commits
//! its state version.

pub mod aggregate;
pub mod join;
pub mod watermark;
pub mod window;

use std::collections::BTreeMap;
use std::path::Path;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::error::ArrowError;

use crate::query::{Plan, Query, QueryError};
use crate::sink::SinkError;
use crate::state::{CommitStats, StateError};

/// Errors of an operator.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The query definition.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The state store.
    #[error(transparent)]
    State(#[from] StateError),
    /// A static table (joins).
    #[error(transparent)]
    Table(#[from] SinkError),
    /// Arrow failed to build or convert rows.
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
}

/// The two watermarks a batch runs with (R7.5), in epoch ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Late-input threshold: the previous batch's watermark (0 for batch 0).
    pub late_ms: i64,
    /// Eviction threshold: this batch's watermark.
    pub evict_ms: i64,
}

/// What an operator did with one batch.
#[derive(Debug, Clone)]
pub struct OperatorOutput {
    /// Rows for the sink.
    pub rows: RecordBatch,
    /// Late (window, key) groups dropped by the watermark.
    pub dropped_by_watermark: u64,
}

/// The operator of one query.
#[derive(Debug)]
pub enum Operator {
    /// Rows pass through.
    Passthrough(SchemaRef),
    /// A (windowed) aggregation with state.
    Aggregate(Box<aggregate::AggregateOp>),
    /// A join with a static Delta table.
    Join(Box<join::JoinOp>),
}

impl Operator {
    /// Builds the operator of `query`; a stateful one opens its state at `version` in `state_dir`.
    pub async fn open(query: &Query, state_dir: &Path, version: u64) -> Result<Self, OperatorError> {
        query.validate()?;
        Ok(match &query.plan {
            Plan::Passthrough => Self::Passthrough(query.input_schema()),
            Plan::Aggregate(a) => Self::Aggregate(Box::new(aggregate::AggregateOp::open(
                query, a, state_dir, version,
            )?)),
            Plan::Join(j) => Self::Join(Box::new(join::JoinOp::open(query, j).await?)),
        })
    }

    /// The schema of the rows the operator emits.
    pub fn output_schema(&self) -> SchemaRef {
        match self {
            Self::Passthrough(s) => s.clone(),
            Self::Aggregate(a) => a.schema(),
            Self::Join(j) => j.schema(),
        }
    }

    /// True when a watermark advance alone calls for a batch (a no-data batch, R4.2).
    pub fn runs_no_data_batches(&self) -> bool {
        matches!(self, Self::Aggregate(a) if a.evicts())
    }

    /// Settings to pin in `offsets/N` when batch N is planned: the static table version a join
    /// will read.
    pub async fn pin(&mut self) -> Result<BTreeMap<String, String>, OperatorError> {
        let mut conf = BTreeMap::new();
        if let Self::Join(j) = self {
            conf.insert(
                join::STATIC_VERSION_KEY.to_string(),
                j.latest_version().await?.to_string(),
            );
        }
        Ok(conf)
    }

    /// Processes one batch with the settings pinned in its `offsets/N`.
    pub async fn process(
        &mut self,
        rows: RecordBatch,
        t: Thresholds,
        conf: &BTreeMap<String, String>,
    ) -> Result<OperatorOutput, OperatorError> {
        match self {
            Self::Passthrough(_) => Ok(OperatorOutput {
                rows,
                dropped_by_watermark: 0,
            }),
            Self::Aggregate(a) => {
                let out = a.process(&rows, t)?;
                Ok(OperatorOutput {
                    rows: out.rows.unwrap_or_else(|| RecordBatch::new_empty(a.schema())),
                    dropped_by_watermark: out.dropped_by_watermark,
                })
            }
            Self::Join(j) => Ok(OperatorOutput {
                rows: j.process(&rows, conf).await?,
                dropped_by_watermark: 0,
            }),
        }
    }

    /// Commits the state version the batch produced; `None` for stateless operators.
    pub fn commit_state(&mut self) -> Result<Option<StateCommit>, OperatorError> {
        match self {
            Self::Aggregate(a) => {
                let t = std::time::Instant::now();
                let stats = a.commit()?;
                Ok(Some(StateCommit {
                    stats,
                    memory_bytes: a.state_memory(),
                    commit_ms: t.elapsed().as_millis() as u64,
                }))
            }
            _ => Ok(None),
        }
    }

    /// Keys in the state (0 for stateless operators).
    pub fn state_rows(&self) -> u64 {
        match self {
            Self::Aggregate(a) => a.state_rows(),
            _ => 0,
        }
    }
}

/// A committed state version and what it cost.
#[derive(Debug, Clone, Copy)]
pub struct StateCommit {
    /// The store's counts.
    pub stats: CommitStats,
    /// Bytes held in memory.
    pub memory_bytes: u64,
    /// Time to write it.
    pub commit_ms: u64,
}
