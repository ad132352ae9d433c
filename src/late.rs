//! The late-rows table: input rows a watermark dropped, kept where users can query them.
//!
//! Beside each output table `<data>/<table>` of a query with a watermark lives
//! `<data>/<table>_late`, a Delta table with one row per input row a stateful operator dropped
//! because the watermark had passed it: the batch, the operator, the row's event time, the
//! watermark that dropped it (the batch's late-input threshold, R7.5), the windows it missed,
//! whether it counted nowhere, and the row itself as JSON. It is committed with the batch's
//! txn, so a re-run batch does not write its late rows twice. A query can opt out
//! (`QueryConfig::keep_late_rows = false`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::arrow::array::{
    ArrayRef, BooleanArray, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray,
};
use deltalake::arrow::buffer::OffsetBuffer;
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::arrow::error::ArrowError;

use crate::event::timestamp_type;
use crate::operators::LateRow;
use crate::operators::aggregate::{window_fields, window_type};

/// The late-rows table beside an output table: `<output>_late`.
pub fn late_table_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push("_late");
    output.with_file_name(name)
}

fn windows_field() -> Arc<Field> {
    Arc::new(Field::new("element", window_type(), true))
}

/// Schema of the late-rows table.
pub fn late_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("batch_id", DataType::Int64, true),
        Field::new("operator", DataType::Utf8, true),
        Field::new("event_time", timestamp_type(), true),
        Field::new("watermark", timestamp_type(), true),
        Field::new("windows_missed", DataType::List(windows_field()), true),
        Field::new("fully_dropped", DataType::Boolean, true),
        Field::new("row", DataType::Utf8, true),
    ]))
}

/// The rows of batch `batch_id`'s late rows, dropped with the late threshold `watermark_ms`.
pub fn late_batch(batch_id: u64, watermark_ms: i64, late: &[LateRow]) -> Result<RecordBatch, ArrowError> {
    let n = late.len();
    let mut offsets = vec![0i32];
    let (mut starts, mut ends) = (Vec::new(), Vec::new());
    for l in late {
        for (s, e) in &l.windows_missed {
            starts.push(*s);
            ends.push(*e);
        }
        offsets.push(starts.len() as i32);
    }
    let windows = StructArray::try_new(
        window_fields(),
        vec![
            Arc::new(TimestampMicrosecondArray::from(starts).with_timezone("UTC")) as ArrayRef,
            Arc::new(TimestampMicrosecondArray::from(ends).with_timezone("UTC")),
        ],
        None,
    )?;
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![batch_id as i64; n])),
        Arc::new(StringArray::from_iter_values(late.iter().map(|l| l.operator))),
        Arc::new(
            TimestampMicrosecondArray::from(late.iter().map(|l| l.event_time_us).collect::<Vec<_>>())
                .with_timezone("UTC"),
        ),
        Arc::new(
            TimestampMicrosecondArray::from(vec![watermark_ms.saturating_mul(1000); n]).with_timezone("UTC"),
        ),
        Arc::new(ListArray::try_new(
            windows_field(),
            OffsetBuffer::new(offsets.into()),
            Arc::new(windows),
            None,
        )?),
        Arc::new(BooleanArray::from(
            late.iter().map(|l| l.fully_dropped).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from_iter_values(late.iter().map(|l| l.row.as_str()))),
    ];
    RecordBatch::try_new(late_schema(), cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_rows_become_a_batch_of_the_late_schema() {
        let rows = vec![
            LateRow {
                operator: "stateStoreSave",
                row: r#"{"a":1}"#.into(),
                event_time_us: Some(5),
                windows_missed: vec![(0, 10), (5, 15)],
                fully_dropped: false,
            },
            LateRow {
                operator: "dedupe",
                row: r#"{"a":2}"#.into(),
                event_time_us: None,
                windows_missed: vec![],
                fully_dropped: true,
            },
        ];
        let b = late_batch(3, 7, &rows).unwrap();
        assert_eq!(b.num_rows(), 2);
        assert_eq!(b.schema(), late_schema());
        let w = b.column(4).as_any().downcast_ref::<ListArray>().unwrap();
        assert_eq!(w.value_length(0), 2);
        assert_eq!(w.value_length(1), 0);
        assert_eq!(late_table_path(Path::new("data/x")), PathBuf::from("data/x_late"));
    }
}
