//! The rejects table: input records that did not become rows, kept where users can query them.
//!
//! Beside each output table `<data>/<table>` lives `<data>/<table>_rejects`, a Delta table with
//! one row per rejected record: the batch, the input file and line, the raw text (cut at
//! 64 KiB), its full size, and the reason. It is committed with the batch's txn, so a re-run batch
//! does not write its rejects twice.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::source::parse::Rejected;

/// The rejects table beside an output table: `<output>_rejects`.
pub fn rejects_table_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push("_rejects");
    output.with_file_name(name)
}

/// Schema of the rejects table.
pub fn rejects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("batch_id", DataType::Int64, true),
        Field::new("file", DataType::Utf8, true),
        Field::new("line", DataType::Int64, true),
        Field::new("raw", DataType::Utf8, true),
        Field::new("raw_bytes", DataType::Int64, true),
        Field::new("reason", DataType::Utf8, true),
    ]))
}

/// The rows of batch `batch_id`'s rejected records.
pub fn rejects_batch(batch_id: u64, rejects: &[Rejected]) -> RecordBatch {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![batch_id as i64; rejects.len()])),
        Arc::new(StringArray::from_iter_values(
            rejects.iter().map(|r| r.file.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(
            rejects.iter().map(|r| r.line as i64),
        )),
        Arc::new(StringArray::from_iter_values(
            rejects.iter().map(|r| r.raw.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(
            rejects.iter().map(|r| r.raw_bytes as i64),
        )),
        Arc::new(StringArray::from_iter_values(
            rejects.iter().map(|r| r.reason.as_str()),
        )),
    ];
    // Six columns of equal length matching the six fields of `rejects_schema`.
    RecordBatch::try_new(rejects_schema(), cols).expect("reject columns match the rejects schema")
}
