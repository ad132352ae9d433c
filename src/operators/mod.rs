//! What a query does to each batch's rows, between the source and the sink.
//!
//! Every physical operator implements [`Operator`], with one hook per moment of a micro-batch —
//! as Arroyo's `ArrowOperator` does:
//!
//! - [`Operator::pin`] when the batch is planned: settings to record in `offsets/N` (a join's
//!   static table version), so a re-run batch reads the same inputs;
//! - [`Operator::prepare`] before the batch's rows arrive, with the pinned settings;
//! - [`Operator::process_batch`] with the batch's rows (none in a no-data batch);
//! - [`Operator::handle_watermark`] after them, with the batch's eviction threshold: a
//!   stateful operator emits what the watermark closed and evicts;
//! - [`Operator::commit`] writes the state version the batch produced.
//!
//! A [`Pipeline`] is the chain of a query's operators; the execution loop drives the chain and
//! never an operator's insides.

pub mod aggregate;
pub mod dedup;
pub mod join;
pub mod project;
pub mod watermark;
pub mod window;

use std::collections::BTreeMap;
use std::fmt::Debug;

use deltalake::arrow::array::{Array, ArrayRef, RecordBatch};
use deltalake::arrow::compute::concat_batches;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::error::ArrowError;
use futures::future::BoxFuture;

use crate::progress::StateOperatorProgress;
use crate::query::QueryError;
use crate::sink::SinkError;
use crate::state::StateError;
use watermark::EventTimeStats;

/// A lookup map of the operators' per-row work: foldhash with a fixed seed instead of the
/// standard SipHash, a third of a windowed aggregation's time. Only looked up, never iterated
/// into an output, so its order never matters.
pub(crate) type LookupMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

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

/// An input row a stateful operator dropped because the watermark had passed it.
#[derive(Debug, Clone, PartialEq)]
pub struct LateRow {
    /// The operator that dropped it (`stateStoreSave`, `dedupe`, …).
    pub operator: &'static str,
    /// The row, as a JSON object of the operator's input columns.
    pub row: String,
    /// Its event time, µs (`None` when the operator's key has no single event time).
    pub event_time_us: Option<i64>,
    /// The windows `[start, end)` µs it missed (aggregations over a window).
    pub windows_missed: Vec<(i64, i64)>,
    /// True when the row counted nowhere (it missed every window it belongs to).
    pub fully_dropped: bool,
}

/// What a watermark operator saw in a batch: its delay and the event times of its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatermarkObservation {
    /// `withWatermark`'s delay, ms.
    pub delay_ms: i64,
    /// Event-time statistics of the rows that reached it (`None`: no rows).
    pub stats: Option<EventTimeStats>,
}

/// What the loop hands every operator for one batch, and what operators report back.
#[derive(Debug)]
pub struct BatchContext<'a> {
    /// The batch id.
    pub batch_id: u64,
    /// The batch's timestamp (`current_timestamp()`), epoch ms.
    pub batch_timestamp_ms: i64,
    /// The two watermark thresholds.
    pub thresholds: Thresholds,
    /// The settings pinned in `offsets/N`.
    pub conf: &'a BTreeMap<String, String>,
    /// Rows dropped by the watermark, in operator then row order.
    pub late: Vec<LateRow>,
    /// One entry per watermark operator, in plan order.
    pub watermarks: Vec<WatermarkObservation>,
}

impl<'a> BatchContext<'a> {
    /// A context for batch `batch_id`.
    pub fn new(
        batch_id: u64,
        batch_timestamp_ms: i64,
        thresholds: Thresholds,
        conf: &'a BTreeMap<String, String>,
    ) -> Self {
        Self {
            batch_id,
            batch_timestamp_ms,
            thresholds,
            conf,
            late: Vec::new(),
            watermarks: Vec::new(),
        }
    }
}

/// A state version an operator committed, and what it holds.
pub type StateReport = StateOperatorProgress;

/// One physical operator of a query. `Sync`, as a row-local one processes a batch's parts on
/// several threads at once ([`process_apart`]).
pub trait Operator: Send + Sync + Debug {
    /// The schema of the rows it emits.
    fn schema(&self) -> SchemaRef;

    /// Settings to pin in `offsets/N` when batch N is planned.
    fn pin(&mut self) -> BoxFuture<'_, Result<BTreeMap<String, String>, OperatorError>> {
        Box::pin(async { Ok(BTreeMap::new()) })
    }

    /// Gets ready for a batch planned with `conf` (e.g. loads the pinned static table version).
    fn prepare<'a>(
        &'a mut self,
        conf: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), OperatorError>> {
        let _ = conf;
        Box::pin(async { Ok(()) })
    }

    /// Processes the batch's rows; returns the rows it emits now.
    fn process_batch(
        &mut self,
        rows: RecordBatch,
        ctx: &mut BatchContext<'_>,
    ) -> Result<RecordBatch, OperatorError>;

    /// `Some` when each row it emits comes from one input row alone (and the batch's context)
    /// and it reads only `&self`: filters, projections, a stream–static join. A batch may then
    /// reach it in parts, processed apart — on several threads at once when the batch is big —
    /// their outputs in the parts' order. Its [`Operator::handle_watermark`] emits nothing. An
    /// operator that is not row-local gets each batch in one part, unless its
    /// [`Operator::process_parts`] takes them otherwise.
    fn row_local(&self) -> Option<&dyn RowLocal> {
        None
    }

    /// Processes one batch that arrives in `parts` (in row order, at least one, each of
    /// `schema`); returns what it emits, in parts. By default a row-local operator takes the
    /// parts apart ([`process_apart`]) and any other operator the parts joined into one batch;
    /// an operator that can read the parts as they are (or needs only some columns joined)
    /// says so here.
    fn process_parts(
        &mut self,
        parts: Vec<RecordBatch>,
        schema: &SchemaRef,
        ctx: &mut BatchContext<'_>,
    ) -> Result<Vec<RecordBatch>, OperatorError> {
        if let Some(op) = self.row_local() {
            process_apart(op, parts, ctx.batch_timestamp_ms)
        } else if parts.len() == 1 {
            parts.into_iter().map(|p| self.process_batch(p, ctx)).collect()
        } else {
            Ok(vec![self.process_batch(concat_freeing(schema, parts)?, ctx)?])
        }
    }

    /// Called once per batch after [`Operator::process_batch`], with the eviction threshold in
    /// `ctx`: emits what the watermark closed (append mode) and evicts.
    fn handle_watermark(&mut self, ctx: &mut BatchContext<'_>) -> Result<Option<RecordBatch>, OperatorError> {
        let _ = ctx;
        Ok(None)
    }

    /// Writes the state version the batch produced; `None` for a stateless operator.
    fn commit(&mut self) -> Result<Option<StateReport>, OperatorError> {
        Ok(None)
    }

    /// True when a watermark advance alone calls for a batch (Spark's `shouldRunAnotherBatch`).
    fn runs_no_data_batches(&self) -> bool {
        false
    }

    /// Keys in its state (0 for stateless operators).
    fn state_rows(&self) -> u64 {
        0
    }
}

/// A row-local operator's work on rows, through `&self`: what [`Operator::row_local`] returns.
pub trait RowLocal: Sync {
    /// The rows `rows` (a batch, or one part of it) give in the batch timestamped
    /// `batch_timestamp_ms` (`current_timestamp()`).
    fn process_rows(&self, rows: RecordBatch, batch_timestamp_ms: i64) -> Result<RecordBatch, OperatorError>;
}

/// Below this many rows a batch's parts are processed on the calling thread: starting threads
/// (tens of microseconds) would cost more than a small batch's rows.
const APART_MIN_ROWS: usize = 32_768;

/// Runs `op` on each of `parts`, on every core when they hold at least [`APART_MIN_ROWS`]
/// rows, each part freed once processed; the outputs come back in the parts' order.
pub fn process_apart(
    op: &dyn RowLocal,
    parts: Vec<RecordBatch>,
    batch_timestamp_ms: i64,
) -> Result<Vec<RecordBatch>, OperatorError> {
    let rows: usize = parts.iter().map(|p| p.num_rows()).sum();
    let threads = if rows < APART_MIN_ROWS { 1 } else { crate::cores() };
    let slots: Vec<std::sync::Mutex<Option<RecordBatch>>> = parts
        .into_iter()
        .map(|p| std::sync::Mutex::new(Some(p)))
        .collect();
    crate::parallel::run_each(&slots, threads, |slot| {
        // `run_each` hands each slot to exactly one call, so the part is still in it; a lock
        // poisoned by a panic elsewhere (which `run_each` re-raises) still holds its part.
        let part = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        op.process_rows(part.expect("each slot is taken once"), batch_timestamp_ms)
    })
    .into_iter()
    .collect()
}

/// What a pipeline did with one batch.
#[derive(Debug)]
pub struct PipelineOutput {
    /// The rows for the sink, in order, in parts (a row-local chain keeps the parts the source
    /// read the batch in; none when no row came out).
    pub parts: Vec<RecordBatch>,
    /// Their schema.
    pub schema: SchemaRef,
    /// Rows dropped by a watermark.
    pub late: Vec<LateRow>,
    /// What each watermark operator saw.
    pub watermarks: Vec<WatermarkObservation>,
}

/// Column `c` of `parts` as one array.
pub(crate) fn concat_column(parts: &[RecordBatch], c: usize) -> Result<ArrayRef, ArrowError> {
    match parts {
        [one] => Ok(one.column(c).clone()),
        many => {
            let arrays: Vec<&dyn Array> = many.iter().map(|p| p.column(c).as_ref()).collect();
            deltalake::arrow::compute::concat(&arrays)
        }
    }
}

/// `parts` as one batch, a column at a time, each column's pieces freed once copied: the
/// rows are held twice over for one column at most, not for the whole batch.
fn concat_freeing(schema: &SchemaRef, parts: Vec<RecordBatch>) -> Result<RecordBatch, ArrowError> {
    use deltalake::arrow::array::RecordBatchOptions;
    if parts.is_empty() {
        return Ok(RecordBatch::new_empty(schema.clone()));
    }
    let rows = parts.iter().map(RecordBatch::num_rows).sum();
    let mut columns: Vec<Vec<ArrayRef>> = vec![Vec::with_capacity(parts.len()); schema.fields().len()];
    for part in parts {
        for (pieces, c) in columns.iter_mut().zip(part.columns()) {
            pieces.push(c.clone());
        }
    }
    let mut out = Vec::with_capacity(columns.len());
    for pieces in &mut columns {
        let arrays: Vec<&dyn Array> = pieces.iter().map(|a| a.as_ref()).collect();
        out.push(deltalake::arrow::compute::concat(&arrays)?);
        drop(arrays);
        pieces.clear();
    }
    RecordBatch::try_new_with_options(
        schema.clone(),
        out,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
}

impl PipelineOutput {
    /// The rows as one batch (a copy when there are several parts).
    pub fn rows(&self) -> Result<RecordBatch, OperatorError> {
        Ok(match self.parts.as_slice() {
            [] => RecordBatch::new_empty(self.schema.clone()),
            [one] => one.clone(),
            many => concat_batches(&self.schema, many)?,
        })
    }

    /// How many rows.
    pub fn num_rows(&self) -> usize {
        self.parts.iter().map(RecordBatch::num_rows).sum()
    }
}

/// The chain of a query's operators, from the source's rows to the sink's.
#[derive(Debug)]
pub struct Pipeline {
    input: SchemaRef,
    ops: Vec<Box<dyn Operator>>,
}

impl Pipeline {
    /// A chain over rows of `input`; `ops` in data-flow order.
    pub fn new(input: SchemaRef, ops: Vec<Box<dyn Operator>>) -> Self {
        Self { input, ops }
    }

    /// The schema of the rows it takes.
    pub fn input_schema(&self) -> SchemaRef {
        self.input.clone()
    }

    /// The schema of the rows it emits.
    pub fn output_schema(&self) -> SchemaRef {
        self.ops.last().map_or_else(|| self.input.clone(), |o| o.schema())
    }

    /// True when any operator runs no-data batches.
    pub fn runs_no_data_batches(&self) -> bool {
        self.ops.iter().any(|o| o.runs_no_data_batches())
    }

    /// Keys in the state of every operator.
    pub fn state_rows(&self) -> u64 {
        self.ops.iter().map(|o| o.state_rows()).sum()
    }

    /// Every operator's settings to pin for the batch being planned.
    pub async fn pin(&mut self) -> Result<BTreeMap<String, String>, OperatorError> {
        let mut conf = BTreeMap::new();
        for op in &mut self.ops {
            conf.extend(op.pin().await?);
        }
        Ok(conf)
    }

    /// Runs one batch, given in parts (in order), through the chain: each operator's rows, then
    /// what its watermark hook emits, go to the next. A row-local operator takes the parts one
    /// by one; any other gets them as one batch (an empty one when there are none).
    pub async fn run(
        &mut self,
        parts: Vec<RecordBatch>,
        batch_id: u64,
        batch_timestamp_ms: i64,
        thresholds: Thresholds,
        conf: &BTreeMap<String, String>,
    ) -> Result<PipelineOutput, OperatorError> {
        for op in &mut self.ops {
            op.prepare(conf).await?;
        }
        let mut ctx = BatchContext::new(batch_id, batch_timestamp_ms, thresholds, conf);
        let mut schema = self.input.clone();
        let mut parts = parts;
        for op in &mut self.ops {
            if parts.is_empty() {
                parts.push(RecordBatch::new_empty(schema.clone()));
            }
            let mut out = op.process_parts(parts, &schema, &mut ctx)?;
            if let Some(more) = op.handle_watermark(&mut ctx)? {
                out.push(more);
            }
            parts = out.into_iter().filter(|b| b.num_rows() > 0).collect();
            schema = op.schema();
        }
        Ok(PipelineOutput {
            parts,
            schema,
            late: ctx.late,
            watermarks: ctx.watermarks,
        })
    }

    /// Commits every stateful operator's state version, in plan order.
    pub fn commit(&mut self) -> Result<Vec<StateReport>, OperatorError> {
        let mut reports = Vec::new();
        for op in &mut self.ops {
            if let Some(r) = op.commit()? {
                reports.push(r);
            }
        }
        Ok(reports)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use deltalake::arrow::array::{Int64Array, StringArray};
    use deltalake::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    /// Rows `from..from + n` of (n: every third null, s: "v{i}").
    fn numbered(schema: &SchemaRef, from: i64, n: i64) -> RecordBatch {
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter(
                    (from..from + n).map(|i| (i % 3 != 0).then_some(i)),
                )),
                Arc::new(StringArray::from_iter(
                    (from..from + n).map(|i| Some(format!("v{i}"))),
                )),
            ],
        )
        .unwrap()
    }

    /// Joining parts a column at a time gives what arrow's whole-batch concatenation gives.
    #[test]
    fn parts_join_as_one_concatenation() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let part = |from: i64, n: i64| numbered(&schema, from, n);
        let parts = vec![part(0, 5), part(5, 0), part(5, 1000), part(1005, 3)];
        let want = concat_batches(&schema, &parts).unwrap();
        assert_eq!(concat_freeing(&schema, parts).unwrap(), want);
        assert_eq!(concat_freeing(&schema, Vec::new()).unwrap().num_rows(), 0);
    }

    /// A filter and a projection given a big batch in parts (processed on every core) emit,
    /// part for part and in order, what they emit given the batch whole; so does a small one
    /// (on the calling thread).
    #[test]
    fn row_local_operators_in_parts_emit_the_batch_whole() {
        use crate::expr::{col, lit};
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let part = |from: i64, n: i64| numbered(&schema, from, n);
        let condition = col("n").gt(lit(10i64)).resolve(&schema).unwrap();
        let doubled = col("n").multiply(lit(2i64)).resolve(&schema).unwrap();
        let projected = Arc::new(Schema::new(vec![
            Field::new("doubled", doubled.data_type().clone(), true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let s = col("s").resolve(&schema).unwrap();
        let conf = BTreeMap::new();
        let ctx = || {
            BatchContext::new(
                3,
                0,
                Thresholds {
                    late_ms: 0,
                    evict_ms: 0,
                },
                &conf,
            )
        };
        for sizes in [vec![9_000, 0, 17, 25_000, 1, 8_000, 4_000], vec![5, 0, 300]] {
            let mut from = 0;
            let parts: Vec<RecordBatch> = sizes
                .iter()
                .map(|&n| {
                    from += n;
                    part(from - n, n)
                })
                .collect();
            let whole = concat_batches(&schema, &parts).unwrap();
            let ops: Vec<Box<dyn Operator>> = vec![
                Box::new(project::FilterOp::new(condition.clone(), schema.clone())),
                Box::new(project::ProjectOp::new(
                    vec![doubled.clone(), s.clone()],
                    projected.clone(),
                )),
            ];
            for mut op in ops {
                let got = op.process_parts(parts.clone(), &schema, &mut ctx()).unwrap();
                assert_eq!(got.len(), parts.len(), "one output per part");
                let want = op.process_batch(whole.clone(), &mut ctx()).unwrap();
                assert_eq!(
                    concat_batches(&op.schema(), &got).unwrap(),
                    want,
                    "{op:?}, {sizes:?}"
                );
                assert!(want.num_rows() > 0);
            }
        }
    }
}
