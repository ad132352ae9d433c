//! `dropDuplicates(cols)` and `dropDuplicatesWithinWatermark(cols)` with their state (R12.8).
//!
//! - **dropDuplicates**: the first row of each key is emitted, later ones dropped. When the
//!   event-time column (with a watermark) is among the keys, a row whose event time is `<=` the
//!   late threshold is dropped as late, and keys whose event time is `<=` the eviction
//!   threshold are removed from the state; without it the state keeps every key forever.
//! - **dropDuplicatesWithinWatermark** (Spark 3.5): the key need not hold the event time; a key
//!   is remembered until `its first event time + delay` falls behind the watermark, so
//!   duplicates arriving within the delay are dropped. Late rows are dropped as above.
//!
//! Keys are held in arrow's row format; the value is the key's event time (or its expiry).

use std::path::Path;

use deltalake::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use deltalake::arrow::compute::filter_record_batch;
use deltalake::arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use deltalake::arrow::row::{RowConverter, SortField};

use super::aggregate::rows_to_json;
use super::{BatchContext, LateRow, Operator, OperatorError, StateReport};
use crate::state::order::bytes_word;
use crate::state::{Codec, OrderPrefix, StateStore, enc};

/// A resolved deduplication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupSpec {
    /// Key columns (input indices).
    pub keys: Vec<usize>,
    /// The event-time column with a watermark (among the keys for dropDuplicates).
    pub event_time: Option<usize>,
    /// `dropDuplicatesWithinWatermark`: the watermark delay, ms.
    pub within_watermark: Option<i64>,
}

/// A state key: the key columns in row format.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DedupKey(pub Vec<u8>);

impl Codec for DedupKey {
    fn encode(&self, out: &mut Vec<u8>) {
        enc::bytes(out, &self.0);
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        enc::read_bytes(input).map(Self)
    }
    fn mem_size(&self) -> usize {
        32 + self.0.len()
    }
}

impl OrderPrefix for DedupKey {
    fn order_prefix(&self) -> [u64; 4] {
        let b = &self.0;
        [
            bytes_word(b, 0),
            bytes_word(b, 8),
            bytes_word(b, 16),
            bytes_word(b, 24),
        ]
    }
}

/// The time (µs) a key is evicted at or after: its event time, or its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupValue(pub Option<i64>);

impl Codec for DedupValue {
    fn encode(&self, out: &mut Vec<u8>) {
        enc::opt_i64(out, self.0);
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        enc::read_opt_i64(input).map(Self)
    }
    fn mem_size(&self) -> usize {
        16
    }
}

/// The deduplication operator.
#[derive(Debug)]
pub struct DedupOp {
    spec: DedupSpec,
    schema: SchemaRef,
    converter: RowConverter,
    store: StateStore<DedupKey, DedupValue>,
    dropped_late: u64,
    dropped_duplicates: u64,
}

impl DedupOp {
    /// Opens the operator over rows of `schema` with its state at `version` in `state_dir`.
    pub fn open(
        schema: SchemaRef,
        spec: DedupSpec,
        state_dir: &Path,
        version: u64,
        durability: crate::checkpoint::Durability,
    ) -> Result<Self, OperatorError> {
        let converter = RowConverter::new(
            spec.keys
                .iter()
                .map(|k| SortField::new(schema.field(*k).data_type().clone()))
                .collect(),
        )?;
        Ok(Self {
            spec,
            schema,
            converter,
            store: StateStore::open(state_dir, version, 10)?.with_durability(durability),
            dropped_late: 0,
            dropped_duplicates: 0,
        })
    }

    fn name(&self) -> &'static str {
        if self.spec.within_watermark.is_some() {
            "dedupeWithinWatermark"
        } else {
            "dedupe"
        }
    }
}

impl Operator for DedupOp {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process_batch(
        &mut self,
        rows: RecordBatch,
        ctx: &mut BatchContext<'_>,
    ) -> Result<RecordBatch, OperatorError> {
        let keys = self.converter.convert_columns(
            &self
                .spec
                .keys
                .iter()
                .map(|k| rows.column(*k).clone())
                .collect::<Vec<_>>(),
        )?;
        let times = self
            .spec
            .event_time
            .map(|c| rows.column(c).as_primitive::<TimestampMicrosecondType>().clone());
        let late_us = ctx.thresholds.late_ms.saturating_mul(1000);
        let delay_us = self.spec.within_watermark.map(|d| d.saturating_mul(1000));
        let mut keep = Vec::with_capacity(rows.num_rows());
        let mut late = Vec::new();
        for r in 0..rows.num_rows() {
            let t = times.as_ref().and_then(|t| t.is_valid(r).then(|| t.value(r)));
            if t.is_some_and(|t| t <= late_us) {
                late.push((r as u32, t));
                keep.push(false);
                continue;
            }
            let key = DedupKey(keys.row(r).data().to_vec());
            if self.store.get(&key).is_some() {
                self.dropped_duplicates += 1;
                keep.push(false);
                continue;
            }
            let value = match delay_us {
                Some(d) => t.map(|t| t.saturating_add(d)),
                None => t,
            };
            self.store.put(key, DedupValue(value));
            keep.push(true);
        }
        self.dropped_late += late.len() as u64;
        let json = rows_to_json(&rows, &late.iter().map(|l| l.0).collect::<Vec<_>>())?;
        for ((_, t), row) in late.into_iter().zip(json) {
            ctx.late.push(LateRow {
                operator: self.name(),
                row,
                event_time_us: t,
                windows_missed: Vec::new(),
                fully_dropped: true,
            });
        }
        Ok(filter_record_batch(&rows, &BooleanArray::from(keep))?)
    }

    fn handle_watermark(&mut self, ctx: &mut BatchContext<'_>) -> Result<Option<RecordBatch>, OperatorError> {
        if self.spec.event_time.is_none() {
            return Ok(None);
        }
        let evict_us = ctx.thresholds.evict_ms.saturating_mul(1000);
        self.store.remove_where(|_, v| v.0.is_some_and(|t| t <= evict_us));
        Ok(None)
    }

    fn commit(&mut self) -> Result<Option<StateReport>, OperatorError> {
        let t = std::time::Instant::now();
        let stats = self.store.commit()?;
        self.dropped_duplicates = 0;
        Ok(Some(StateReport {
            operator_name: self.name().into(),
            num_rows_total: stats.total,
            num_rows_updated: stats.updated,
            num_rows_removed: stats.removed,
            num_rows_dropped_by_watermark: std::mem::take(&mut self.dropped_late),
            memory_used_bytes: self.store.memory_bytes(),
            commit_time_ms: t.elapsed().as_millis() as u64,
        }))
    }

    fn runs_no_data_batches(&self) -> bool {
        self.spec.event_time.is_some()
    }

    fn state_rows(&self) -> u64 {
        self.store.len() as u64
    }
}
