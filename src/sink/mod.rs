//! The Delta sink: one Delta commit per micro-batch, exactly once (R14.2–R14.6).
//!
//! Every commit carries the application transaction `txn(appId = query id, version = batch id)`
//! and the operation `STREAMING UPDATE` with `{outputMode, queryId, epochId}`, the shape Spark's
//! `DeltaSink` writes. A batch whose id is at or below the table's txn version for the query has
//! already landed and is skipped — that is what makes re-running a batch after a crash between
//! the Delta commit and `commits/N` harmless.
//!
//! Writing is split in two so the execution loop can place a failpoint between them:
//! [`DeltaSink::stage`] writes the parquet files (not yet visible), [`DeltaSink::commit`] makes
//! them the next table version. Files staged by a batch that never committed are unreferenced;
//! readers never see them.
//!
//! The table handle and the query's txn version are kept across batches: the log is read once
//! at open, never replayed per batch.
//!
//! Output modes: append adds the batch's rows; complete removes every current file and adds the
//! whole result in the same commit; update is an upsert by key ([`upsert`]).

pub mod upsert;

use std::path::{Path, PathBuf};

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::{Schema, SchemaRef};
use deltalake::datafile::DataFileReader;
use deltalake::datafile::reader::ParquetFileReader;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, StructType, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use futures::TryStreamExt;

pub use deltalake::protocol::OutputMode;

/// Errors of a Delta table, each naming the table.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// delta-rs failed on this table.
    #[error("Delta table {path}: {source}")]
    Delta {
        /// The table folder.
        path: PathBuf,
        /// The error (boxed: delta-rs errors are large).
        #[source]
        source: Box<DeltaTableError>,
    },
    /// The table exists with another schema than the query writes.
    #[error(
        "Delta table {path} has schema {found} but the query writes {expected}; write to another table or delete this one"
    )]
    SchemaMismatch {
        /// The table folder.
        path: PathBuf,
        /// The table's schema.
        found: String,
        /// The query's schema.
        expected: String,
    },
    /// The table does not exist (when it must, e.g. a static join side).
    #[error("Delta table {0} does not exist")]
    Missing(PathBuf),
}

type Result<T> = std::result::Result<T, SinkError>;

impl SinkError {
    /// A delta-rs error on the table at `path`.
    pub fn delta(path: impl Into<PathBuf>, source: DeltaTableError) -> Self {
        Self::Delta {
            path: path.into(),
            source: Box::new(source),
        }
    }
}

/// A short `name: type, …` rendering of a schema for messages.
pub fn describe_schema(schema: &Schema) -> String {
    let fields: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect();
    format!("({})", fields.join(", "))
}

fn table_url(path: &Path) -> std::result::Result<url::Url, DeltaTableError> {
    let abs = std::path::absolute(path).map_err(|e| DeltaTableError::InvalidTableLocation(e.to_string()))?;
    deltalake::ensure_table_uri(abs.to_string_lossy())
}

/// Opens the existing Delta table at `path`; [`SinkError::Missing`] if there is none.
pub async fn open_existing(path: &Path) -> Result<DeltaTable> {
    let delta = |source| SinkError::delta(path.to_path_buf(), source);
    if !path.join("_delta_log").is_dir() {
        return Err(SinkError::Missing(path.to_path_buf()));
    }
    let url = table_url(path).map_err(delta)?;
    deltalake::open_table(url).await.map_err(delta)
}

/// The data files of the table's current version, as object-store paths, sorted.
pub async fn data_files(table: &DeltaTable) -> std::result::Result<Vec<deltalake::Path>, DeltaTableError> {
    let snapshot = table.snapshot()?;
    let mut paths = Vec::new();
    let mut views = snapshot.snapshot().file_views(table.log_store().as_ref(), None);
    while let Some(v) = views.try_next().await? {
        paths.push(v.object_store_path());
    }
    paths.sort();
    Ok(paths)
}

/// Reads data files of `table`, each batch cast to `schema` (parquet hands timestamps back as
/// they were stored; the table's type carries the UTC zone).
pub async fn read_data_files(
    table: &DeltaTable,
    paths: &[deltalake::Path],
    schema: &SchemaRef,
) -> std::result::Result<Vec<RecordBatch>, DeltaTableError> {
    let reader = ParquetFileReader::new(table.object_store());
    let mut out = Vec::new();
    for p in paths {
        let mut stream = reader.read_file(p.clone()).await?;
        while let Some(b) = stream.try_next().await? {
            let cols = b
                .columns()
                .iter()
                .zip(schema.fields())
                .map(|(c, f)| deltalake::arrow::compute::cast(c, f.data_type()))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            out.push(RecordBatch::try_new(schema.clone(), cols)?);
        }
    }
    Ok(out)
}

/// Parquet files written for a batch but not yet committed.
#[derive(Debug)]
pub struct Staged {
    batch_id: i64,
    actions: Vec<Action>,
    /// Rows in the staged files.
    pub rows: u64,
    index: Option<upsert::IndexChange>,
}

/// A Delta table written by one streaming query.
pub struct DeltaSink {
    path: PathBuf,
    table: DeltaTable,
    app_id: String,
    committed: Option<i64>,
    buckets: Option<upsert::BucketIndex>,
}

impl std::fmt::Debug for DeltaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaSink")
            .field("path", &self.path)
            .field("app_id", &self.app_id)
            .field("committed", &self.committed)
            .finish()
    }
}

impl DeltaSink {
    /// Opens the table at `path`, creating it with `schema` if it does not exist, and reads the
    /// txn version of `app_id` once.
    pub async fn open(path: &Path, schema: &SchemaRef, app_id: &str) -> Result<Self> {
        let delta = |source| SinkError::delta(path.to_path_buf(), source);
        let url = table_url(path).map_err(delta)?;
        let table = DeltaTable::try_from_url(url).await.map_err(delta)?;
        let table = if table.version().is_some() {
            let found = table.snapshot().map_err(delta)?.snapshot().arrow_schema();
            let same = found.fields().len() == schema.fields().len()
                && found
                    .fields()
                    .iter()
                    .zip(schema.fields())
                    .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
            if !same {
                return Err(SinkError::SchemaMismatch {
                    path: path.to_path_buf(),
                    found: describe_schema(&found),
                    expected: describe_schema(schema),
                });
            }
            table
        } else {
            let st: StructType = schema.as_ref().try_into_kernel().map_err(|e| delta(e.into()))?;
            table
                .create()
                .with_columns(st.fields().cloned())
                .with_save_mode(SaveMode::Ignore)
                .await
                .map_err(delta)?
        };
        let committed = table
            .snapshot()
            .map_err(delta)?
            .transaction_version(table.log_store().as_ref(), app_id)
            .await
            .map_err(delta)?;
        Ok(Self {
            path: path.to_path_buf(),
            table,
            app_id: app_id.to_string(),
            committed,
            buckets: None,
        })
    }

    fn delta(&self) -> impl FnOnce(DeltaTableError) -> SinkError + '_ {
        |source| SinkError::delta(self.path.clone(), source)
    }

    /// The table folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes data files a crash left behind: parquet files in the table folder that no
    /// version references — neither the current one nor a removal still in the log (what
    /// VACUUM would keep). Such files were written by a batch whose Delta commit never
    /// happened; readers never saw them. Returns the files removed. An output table belongs to
    /// one query: another writer's uncommitted files would look the same.
    pub async fn remove_orphans(&self) -> Result<Vec<PathBuf>> {
        let snapshot = self.table.snapshot().map_err(self.delta())?;
        let mut known = std::collections::BTreeSet::new();
        let mut views = snapshot
            .snapshot()
            .file_views(self.table.log_store().as_ref(), None);
        while let Some(v) = views.try_next().await.map_err(self.delta())? {
            known.insert(v.path().into_owned());
        }
        let mut tombstones = snapshot.all_tombstones(self.table.log_store().as_ref());
        while let Some(t) = tombstones.try_next().await.map_err(self.delta())? {
            known.insert(t.path().into_owned());
        }
        let mut removed = Vec::new();
        let mut stack = vec![self.path.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                let name = e.file_name();
                if name == "_delta_log" {
                    continue;
                }
                if p.is_dir() {
                    stack.push(p);
                } else if name.to_string_lossy().ends_with(".parquet") {
                    let rel = p
                        .strip_prefix(&self.path)
                        .unwrap_or(&p)
                        .to_string_lossy()
                        .into_owned();
                    if !known.contains(&rel) && std::fs::remove_file(&p).is_ok() {
                        removed.push(p);
                    }
                }
            }
        }
        removed.sort();
        Ok(removed)
    }

    /// The highest batch id this query committed to the table (its txn version).
    pub fn committed_batch(&self) -> Option<i64> {
        self.committed
    }

    /// True when batch `batch_id` already landed (the replay case: skip it).
    pub fn has_committed(&self, batch_id: u64) -> bool {
        self.committed.is_some_and(|v| v >= batch_id as i64)
    }

    /// The table's current version.
    pub fn version(&self) -> Option<u64> {
        self.table.version()
    }

    /// Writes `batches` as parquet files for batch `batch_id`; with `replace_all`, also marks
    /// every current file for removal (complete mode: the commit replaces the table's contents).
    pub async fn stage(
        &mut self,
        batch_id: u64,
        batches: &[RecordBatch],
        replace_all: bool,
    ) -> Result<Staged> {
        let mut actions = Vec::new();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if rows > 0 {
            let mut writer = RecordBatchWriter::for_table(&self.table).map_err(self.delta())?;
            for b in batches.iter().filter(|b| b.num_rows() > 0) {
                writer.write(b.clone()).await.map_err(self.delta())?;
            }
            actions.extend(
                writer
                    .flush()
                    .await
                    .map_err(self.delta())?
                    .into_iter()
                    .map(Action::Add),
            );
        }
        if replace_all {
            let snapshot = self.table.snapshot().map_err(self.delta())?;
            let mut files = snapshot
                .snapshot()
                .file_views(self.table.log_store().as_ref(), None);
            while let Some(f) = files.try_next().await.map_err(self.delta())? {
                actions.push(Action::Remove(f.remove_action(true)));
            }
        }
        Ok(Staged {
            batch_id: batch_id as i64,
            actions,
            rows: rows as u64,
            index: None,
        })
    }

    /// Commits staged files as one table version carrying `txn(query id, batch id)`.
    /// `timestamp_ms` becomes the txn's `lastUpdated` (the batch timestamp, from the query clock).
    pub async fn commit(&mut self, staged: Staged, mode: OutputMode, timestamp_ms: i64) -> Result<u64> {
        let props = CommitProperties::default()
            .with_application_transaction(Transaction::new_with_last_update(
                &self.app_id,
                staged.batch_id,
                Some(timestamp_ms),
            ))
            // Log cleanup would read the wall clock; the log is the table's history, keep it.
            .with_cleanup_expired_logs(Some(false));
        let op = DeltaOperation::StreamingUpdate {
            output_mode: mode,
            query_id: self.app_id.clone(),
            epoch_id: staged.batch_id,
        };
        let snapshot = self.table.snapshot().map_err(self.delta())?;
        let done = CommitBuilder::from(props)
            .with_actions(staged.actions)
            .build(Some(snapshot), self.table.log_store(), op)
            .await
            .map_err(self.delta())?;
        self.table.state = Some(done.snapshot());
        self.committed = Some(staged.batch_id);
        if let (Some(change), Some(index)) = (staged.index, self.buckets.as_mut()) {
            index.apply(change);
        }
        Ok(done.version() as u64)
    }
}
