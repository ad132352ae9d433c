//! Event-time statistics and the watermark rule (R7.2, R7.3), and the `withWatermark`
//! operator that observes them.

use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{SchemaRef, TimestampMicrosecondType};

use super::{BatchContext, Operator, OperatorError, WatermarkObservation};

/// `withWatermark(column, delay)`: rows pass through unchanged; the operator records the
/// event times of every row reaching it — late ones too (R7.2) — for the watermark the next
/// batch runs with.
#[derive(Debug)]
pub struct WatermarkOp {
    schema: SchemaRef,
    column: usize,
    delay_ms: i64,
}

impl WatermarkOp {
    /// A watermark on column `column` of `schema` (a timestamp column) with `delay_ms`.
    pub fn new(schema: SchemaRef, column: usize, delay_ms: i64) -> Self {
        Self {
            schema,
            column,
            delay_ms,
        }
    }
}

impl Operator for WatermarkOp {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process_batch(
        &mut self,
        rows: RecordBatch,
        ctx: &mut BatchContext<'_>,
    ) -> Result<RecordBatch, OperatorError> {
        ctx.watermarks.push(WatermarkObservation {
            delay_ms: self.delay_ms,
            stats: event_time_stats(std::slice::from_ref(&rows), self.column),
        });
        Ok(rows)
    }

    /// Observes the event times of every part, and passes the parts on as they are.
    fn process_parts(
        &mut self,
        parts: Vec<RecordBatch>,
        _schema: &SchemaRef,
        ctx: &mut BatchContext<'_>,
    ) -> Result<Vec<RecordBatch>, OperatorError> {
        ctx.watermarks.push(WatermarkObservation {
            delay_ms: self.delay_ms,
            stats: event_time_stats(&parts, self.column),
        });
        Ok(parts)
    }
}

/// Spark's `WatermarkTracker` (R7.3, R7.4) under the default `min` policy: one value per
/// watermark operator, kept for the run (not checkpointed), each only rising; the global
/// watermark is the smallest of them, and it too only rises.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatermarkTracker {
    per_operator: Vec<Option<i64>>,
}

impl WatermarkTracker {
    /// The global watermark after a batch whose watermark operators saw `observed`, starting
    /// from `current_ms` (the watermark the query had).
    pub fn update(&mut self, current_ms: i64, observed: &[WatermarkObservation]) -> i64 {
        if observed.is_empty() {
            return current_ms;
        }
        self.per_operator.resize(observed.len(), None);
        for (value, o) in self.per_operator.iter_mut().zip(observed) {
            *value = match (o.stats, *value) {
                (Some(s), Some(v)) => Some(v.max(s.max_ms - o.delay_ms)),
                (Some(s), None) => Some(s.max_ms - o.delay_ms),
                (None, Some(v)) => Some(v),
                (None, None) => Some(0),
            };
        }
        let candidate = self.per_operator.iter().flatten().copied().min().unwrap_or(0);
        current_ms.max(candidate)
    }
}

/// Event-time statistics of one batch's rows, in ms (µs floor-divided, as Spark's
/// `microsToMillis`). Every row counts, late ones included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTimeStats {
    /// Earliest event time.
    pub min_ms: i64,
    /// Latest event time.
    pub max_ms: i64,
    /// Average, truncated to whole ms.
    pub avg_ms: i64,
    /// Rows counted.
    pub count: u64,
}

/// The statistics of column `col` over the batch in `parts`, `None` when there are no
/// non-null values.
pub fn event_time_stats(parts: &[RecordBatch], col: usize) -> Option<EventTimeStats> {
    let mut stats: Option<(i64, i64, i128, u64)> = None;
    for rows in parts {
        let ts = rows.column(col).as_primitive::<TimestampMicrosecondType>();
        for i in 0..ts.len() {
            if ts.is_null(i) {
                continue;
            }
            let ms = ts.value(i).div_euclid(1000);
            stats = Some(match stats {
                None => (ms, ms, i128::from(ms), 1),
                Some((lo, hi, sum, n)) => (lo.min(ms), hi.max(ms), sum + i128::from(ms), n + 1),
            });
        }
    }
    stats.map(|(min_ms, max_ms, sum, count)| EventTimeStats {
        min_ms,
        max_ms,
        avg_ms: (sum / i128::from(count)) as i64,
        count,
    })
}

/// The watermark after a batch: `max event time − delay` if that is later than the current
/// watermark, else the current one. It never moves back and starts at 0.
pub fn next_watermark(current_ms: i64, batch_max_ms: Option<i64>, delay_ms: i64) -> i64 {
    match batch_max_ms {
        Some(max) => current_ms.max(max - delay_ms),
        None => current_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_only_moves_forward() {
        assert_eq!(next_watermark(0, Some(25_000), 10_000), 15_000);
        assert_eq!(
            next_watermark(15_000, Some(20_000), 10_000),
            15_000,
            "an older max does not move it back"
        );
        assert_eq!(next_watermark(15_000, None, 10_000), 15_000, "no rows, no change");
        assert_eq!(
            next_watermark(0, Some(5_000), 10_000),
            0,
            "it starts at 0 and a negative candidate is ignored"
        );
    }

    #[test]
    fn stats_floor_micros_to_millis() {
        use deltalake::arrow::array::TimestampMicrosecondArray;
        use deltalake::arrow::datatypes::{Field, Schema};
        use std::sync::Arc;
        let a = TimestampMicrosecondArray::from(vec![Some(1_999), None, Some(-1), Some(4_000)])
            .with_timezone("UTC");
        let schema = Arc::new(Schema::new(vec![Field::new("t", a.data_type().clone(), true)]));
        let b = RecordBatch::try_new(schema, vec![Arc::new(a)]).unwrap();
        let s = event_time_stats(&[b.slice(0, 2), b.slice(2, 2)], 0).unwrap();
        assert_eq!((s.min_ms, s.max_ms, s.count), (-1, 4, 3));
        assert_eq!(s.avg_ms, 1, "(1 - 1 + 4) / 3 truncated");
    }
}
