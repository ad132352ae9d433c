//! Reading Delta tables back: all rows of a version, the txn version of a query, and Spark's
//! `show()` rendering. Used by `microbatch show`, the scenario runner and the tests.
//!
//! Rows are returned sorted (by every column, in column order) so that reads are deterministic:
//! a Delta table has no row order.

use std::path::Path;

use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use deltalake::arrow::compute::{SortColumn, concat_batches, lexsort_to_indices, take_record_batch};
use deltalake::arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMicrosecondType};
use deltalake::arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::event::format_timestamp;
use crate::sink::{SinkError, data_files, open_existing, read_data_files};

type Result<T> = std::result::Result<T, SinkError>;

/// The contents of one version of a Delta table.
#[derive(Debug, Clone)]
pub struct TableData {
    /// The version read.
    pub version: u64,
    /// The table schema.
    pub schema: SchemaRef,
    /// All rows, sorted by every column.
    pub rows: RecordBatch,
}

/// Reads every row of the latest version of the Delta table at `path`.
pub async fn read_table(path: &Path) -> Result<TableData> {
    read_table_at(path, None).await
}

/// Reads every row of version `version` (the latest when `None`) of the Delta table at `path`.
pub async fn read_table_at(path: &Path, version: Option<u64>) -> Result<TableData> {
    let mut table = open_existing(path).await?;
    let delta = |source| SinkError::delta(path.to_path_buf(), source);
    if let Some(v) = version {
        table.load_version(v as _).await.map_err(delta)?;
    }
    let snapshot = table.snapshot().map_err(delta)?;
    let schema = snapshot.snapshot().arrow_schema();
    let version = snapshot.version() as u64;
    let paths = data_files(&table).await.map_err(delta)?;
    let batches = read_data_files(&table, &paths, &schema).await.map_err(delta)?;
    let all = concat_batches(&schema, &batches).map_err(|e| delta(e.into()))?;
    Ok(TableData {
        version,
        schema,
        rows: sort_rows(&all).map_err(|e| delta(e.into()))?,
    })
}

/// Sorts a batch by all its (sortable) columns, in column order.
pub fn sort_rows(b: &RecordBatch) -> std::result::Result<RecordBatch, deltalake::arrow::error::ArrowError> {
    if b.num_rows() < 2 {
        return Ok(b.clone());
    }
    fn keys_of(c: &ArrayRef, out: &mut Vec<SortColumn>) {
        match c.data_type() {
            DataType::Struct(_) => c
                .as_struct()
                .columns()
                .iter()
                .for_each(|child| keys_of(child, out)),
            DataType::List(_) | DataType::Map(..) => {}
            _ => out.push(SortColumn {
                values: c.clone(),
                options: None,
            }),
        }
    }
    let mut keys = Vec::new();
    b.columns().iter().for_each(|c| keys_of(c, &mut keys));
    if keys.is_empty() {
        return Ok(b.clone());
    }
    let idx = lexsort_to_indices(&keys, None)?;
    take_record_batch(b, &idx)
}

/// The txn version the Delta table at `path` holds for `app_id` (the last batch id committed).
pub async fn txn_version(path: &Path, app_id: &str) -> Result<Option<i64>> {
    let table = open_existing(path).await?;
    let delta = |source| SinkError::delta(path.to_path_buf(), source);
    table
        .snapshot()
        .map_err(delta)?
        .transaction_version(table.log_store().as_ref(), app_id)
        .await
        .map_err(delta)
}

/// Renders one cell as text: timestamps as `YYYY-MM-DD HH:MM:SS[.ffffff]` UTC (Spark's `show`),
/// a `window` struct as `{start, end}`, nulls as `NULL`.
pub fn cell(col: &ArrayRef, row: usize) -> String {
    if col.is_null(row) {
        return "NULL".into();
    }
    match col.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let v = col.as_primitive::<TimestampMicrosecondType>().value(row);
            let s = format_timestamp(v).replace('T', " ");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        DataType::Struct(_) => {
            let s = col.as_struct();
            let parts: Vec<String> = s.columns().iter().map(|c| cell(c, row)).collect();
            format!("{{{}}}", parts.join(", "))
        }
        _ => {
            let opts = FormatOptions::default().with_null("NULL");
            match ArrayFormatter::try_new(col.as_ref(), &opts) {
                Ok(f) => f.value(row).to_string(),
                Err(_) => "?".into(),
            }
        }
    }
}

/// Renders up to `limit` rows the way Spark's `DataFrame.show()` does: a boxed grid, values
/// right-aligned, and with `truncate` strings longer than 20 characters cut to 17 plus `...`.
pub fn show(rows: &RecordBatch, limit: usize, truncate: bool) -> String {
    show_text(rows, limit, if truncate { 20 } else { 0 }, false)
}

/// Spark's `Dataset.showString(numRows, truncate, vertical)`: values longer than `truncate`
/// characters cut (to `truncate - 3` and `...`; 0 keeps them whole), right-aligned when cut
/// and left-aligned otherwise, or one `-RECORD n-` block per row when `vertical`.
pub fn show_text(rows: &RecordBatch, limit: usize, truncate: usize, vertical: bool) -> String {
    let schema = rows.schema();
    let n = rows.num_rows().min(limit);
    let trunc = |s: String| {
        if truncate > 0 && s.chars().count() > truncate {
            if truncate < 4 {
                s.chars().take(truncate).collect()
            } else {
                format!("{}...", s.chars().take(truncate - 3).collect::<String>())
            }
        } else {
            s
        }
    };
    let width = |s: &str| s.chars().count();
    let header: Vec<String> = schema.fields().iter().map(|f| trunc(f.name().clone())).collect();
    let body: Vec<Vec<String>> = (0..n)
        .map(|r| rows.columns().iter().map(|c| trunc(cell(c, r))).collect())
        .collect();
    let more = rows.num_rows() > n;
    let footer = |out: &mut String| {
        if more {
            out.push_str(&format!(
                "only showing top {n} row{}\n",
                if n == 1 { "" } else { "s" }
            ));
        }
    };
    if vertical {
        let name_w = header.iter().map(|h| width(h)).chain([3]).max().unwrap_or(3);
        let data_w = body
            .iter()
            .flatten()
            .map(|c| width(c))
            .chain([3])
            .max()
            .unwrap_or(3);
        let mut out = String::new();
        for (i, row) in body.iter().enumerate() {
            let head = format!("-RECORD {i}");
            let pad = (name_w + data_w + 5).saturating_sub(width(&head));
            out.push_str(&format!("{head}{}\n", "-".repeat(pad)));
            for (name, c) in header.iter().zip(row) {
                out.push_str(&format!(
                    " {name}{} | {c}{} \n",
                    " ".repeat(name_w - width(name)),
                    " ".repeat(data_w - width(c))
                ));
            }
        }
        if body.is_empty() {
            out.push_str("(0 rows)\n");
        } else {
            footer(&mut out);
        }
        return out;
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            body.iter()
                .map(|row| width(&row[i]))
                .chain([width(&header[i]), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    let sep = format!(
        "+{}+\n",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("+")
    );
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| {
                let pad = " ".repeat(w - width(c));
                if truncate > 0 {
                    format!("{pad}{c}")
                } else {
                    format!("{c}{pad}")
                }
            })
            .collect();
        format!("|{}|\n", padded.join("|"))
    };
    let mut out = sep.clone();
    out.push_str(&line(&header));
    out.push_str(&sep);
    for row in &body {
        out.push_str(&line(row));
    }
    out.push_str(&sep);
    footer(&mut out);
    out
}
