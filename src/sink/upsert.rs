//! Update mode into Delta: an upsert by key in one commit.
//!
//! Delta's own Spark sink rejects update mode (R14.1); users write `foreachBatch` + `MERGE`. We
//! make it work as written: each batch's updated rows replace the rows with the same key, in
//! **one** Delta commit that removes the files holding those keys and adds them rewritten, so
//! every table version reads as exactly one row per key.
//!
//! Layout: rows are written into files by *bucket* — the window start divided by a bucket span
//! (12 windows), or a single bucket without a window. A batch updates recent windows, so it
//! rewrites only the file(s) of one or two buckets, however long the table's history. The
//! bucket → files index is rebuilt from the table's files when the sink first upserts after a
//! start (a read of the table) and kept up to date in memory after that.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use deltalake::Path;
use deltalake::arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use deltalake::arrow::compute::{concat_batches, filter_record_batch, take_record_batch};
use deltalake::arrow::datatypes::TimestampMicrosecondType;
use deltalake::arrow::row::{RowConverter, SortField};
use deltalake::kernel::Action;
use deltalake::{DeltaTable, DeltaTableError};

use super::{DeltaSink, SinkError, Staged, read_data_files, remove_of, write_file};

/// How an update-mode table is keyed and laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsertLayout {
    /// The columns that form the key (the `window` and the grouping columns).
    pub key_columns: Vec<usize>,
    /// The `window` struct column whose `start` buckets the rows, and the bucket span in µs;
    /// `None`: one bucket.
    pub bucket: Option<(usize, i64)>,
}

/// Which files hold which buckets.
#[derive(Debug, Default)]
pub struct BucketIndex {
    files: BTreeMap<i64, BTreeSet<Path>>,
}

fn buckets_of(batch: &RecordBatch, layout: &UpsertLayout) -> Vec<i64> {
    match layout.bucket {
        Some((column, span)) => {
            let window = batch.column(column).as_struct();
            let start = window.column(0).as_primitive::<TimestampMicrosecondType>();
            (0..batch.num_rows())
                .map(|i| {
                    if start.is_null(i) {
                        0
                    } else {
                        start.value(i).div_euclid(span)
                    }
                })
                .collect()
        }
        None => vec![0; batch.num_rows()],
    }
}

impl BucketIndex {
    /// Reads each of `files` (the table's active files) to learn which buckets it holds.
    async fn build(
        table: &DeltaTable,
        files: Vec<Path>,
        layout: &UpsertLayout,
    ) -> Result<Self, DeltaTableError> {
        let schema = table.snapshot()?.snapshot().arrow_schema();
        let mut index = Self::default();
        for path in files {
            for b in read_data_files(table, std::slice::from_ref(&path), &schema).await? {
                for bucket in buckets_of(&b, layout) {
                    index.files.entry(bucket).or_default().insert(path.clone());
                }
            }
        }
        Ok(index)
    }
}

/// The index change a staged upsert makes once committed.
#[derive(Debug, Default)]
pub struct IndexChange {
    removed: BTreeSet<Path>,
    added: BTreeMap<i64, Path>,
}

impl BucketIndex {
    pub(super) fn apply(&mut self, change: IndexChange) {
        for files in self.files.values_mut() {
            files.retain(|f| !change.removed.contains(f));
        }
        for (bucket, path) in change.added {
            self.files.entry(bucket).or_default().insert(path);
        }
        self.files.retain(|_, f| !f.is_empty());
    }
}

impl DeltaSink {
    /// Stages an upsert of `rows` (one row per key) for batch `batch_id`: the files holding
    /// the rows' buckets are read, rows with the same keys dropped, and each bucket written
    /// anew; the commit then removes the old files and adds the new ones.
    pub async fn stage_upsert(
        &mut self,
        batch_id: u64,
        rows: &RecordBatch,
        layout: UpsertLayout,
        timestamp_ms: i64,
    ) -> Result<Staged, SinkError> {
        let path = self.path.clone();
        let delta = |e: DeltaTableError| SinkError::delta(path.clone(), e);
        let arrow = |e: deltalake::arrow::error::ArrowError| SinkError::delta(path.clone(), e.into());
        if rows.num_rows() == 0 {
            return Ok(Staged {
                batch_id: batch_id as i64,
                actions: Vec::new(),
                rows: 0,
                index: None,
            });
        }
        if self.buckets.is_none() {
            let files: Vec<Path> = self
                .active_files()
                .await?
                .by_path
                .keys()
                .map(|p| Path::from(p.as_str()))
                .collect();
            self.buckets = Some(
                BucketIndex::build(&self.table, files, &layout)
                    .await
                    .map_err(delta)?,
            );
        }
        let index = self.buckets.as_ref().map(|b| &b.files);
        let schema = rows.schema();
        let fields: Vec<SortField> = layout
            .key_columns
            .iter()
            .map(|&c| SortField::new(schema.field(c).data_type().clone()))
            .collect();
        let converter = RowConverter::new(fields).map_err(arrow)?;
        let key_of = |b: &RecordBatch| -> Vec<deltalake::arrow::array::ArrayRef> {
            layout.key_columns.iter().map(|&c| b.column(c).clone()).collect()
        };
        let new_keys = converter.convert_columns(&key_of(rows)).map_err(arrow)?;
        let updated: HashSet<&[u8]> = new_keys.iter().map(|r| r.data()).collect();

        let new_buckets = buckets_of(rows, &layout);
        let mut affected: BTreeSet<Path> = BTreeSet::new();
        for b in new_buckets.iter().collect::<BTreeSet<_>>() {
            if let Some(files) = index.and_then(|i| i.get(b)) {
                affected.extend(files.iter().cloned());
            }
        }
        let affected: Vec<Path> = affected.into_iter().collect();
        let mut parts = read_data_files(&self.table, &affected, &schema)
            .await
            .map_err(delta)?;
        // Keep the old rows whose key the batch did not update.
        for part in &mut parts {
            let keys = converter.convert_columns(&key_of(part)).map_err(arrow)?;
            let keep: deltalake::arrow::array::BooleanArray =
                keys.iter().map(|k| Some(!updated.contains(k.data()))).collect();
            *part = filter_record_batch(part, &keep).map_err(arrow)?;
        }
        parts.push(rows.clone());
        let all = concat_batches(&schema, &parts).map_err(arrow)?;

        // One file per bucket.
        let mut by_bucket: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        for (i, b) in buckets_of(&all, &layout).into_iter().enumerate() {
            by_bucket.entry(b).or_default().push(i as u32);
        }
        let mut actions = Vec::new();
        let mut change = IndexChange::default();
        for (bucket, idx) in by_bucket {
            let part = take_record_batch(&all, &UInt32Array::from(idx)).map_err(arrow)?;
            let writer = super::data_writer(&self.table, Some(&part)).map_err(delta)?;
            for add in write_file(writer, [part]).await.map_err(delta)? {
                change.added.insert(bucket, Path::from(add.path.as_str()));
                actions.push(Action::Add(add));
            }
        }
        let files = self.active_files().await?;
        for p in &affected {
            if let Some(file) = files.by_path.get(p.as_ref()) {
                actions.push(Action::Remove(remove_of(p.as_ref(), file, timestamp_ms)));
            }
        }
        change.removed = affected.into_iter().collect();
        Ok(Staged {
            batch_id: batch_id as i64,
            actions,
            rows: rows.num_rows() as u64,
            index: Some(change),
        })
    }
}
