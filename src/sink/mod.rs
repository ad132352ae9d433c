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
//! The log is read once, at open. After that the sink writes each commit itself — the actions
//! serialised by delta-rs's `CommitData` and written with the log store's atomic
//! create-if-absent — and keeps the table version, the query's txn version and (when a mode
//! needs them) the active files in memory. delta-rs's own commit path re-materialises the
//! whole file list, re-parsing every file's statistics, after each commit: a per-batch cost
//! that grew with the table's history (7 ms at version 10, 158 ms at version 1,000). A Delta
//! checkpoint is written every `delta.checkpointInterval` versions (default 100) so readers
//! never replay more than that many commits ([`checkpoint`]).
//!
//! Output modes: append adds the batch's rows; complete removes every current file and adds the
//! whole result in the same commit; update is an upsert by key ([`upsert`]).

pub mod checkpoint;
pub mod compaction;
mod concurrency;
pub mod upsert;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::{Schema, SchemaRef};
use deltalake::datafile::DataFileReader;
use deltalake::datafile::reader::ParquetFileReader;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitData, PROTOCOL, TransactionError};
use deltalake::kernel::{Action, Remove, StructType, Transaction};
use deltalake::logstore::CommitOrBytes;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::config::TablePropertiesExt as _;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableError};
use futures::TryStreamExt;

use crate::checkpoint::atomic::{self, Durability};

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
    /// The folder exists but holds no Delta log.
    #[error("{0} is not a Delta table: the folder has no _delta_log")]
    NotATable(PathBuf),
    /// A table file could not be fsynced (`fsync` on).
    #[error("fsync of {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Another writer committed to the table while this query ran, in a way this batch's
    /// commit cannot be reconciled with.
    #[error(
        "Delta table {path}: version {version}, written by another writer while this query ran, conflicts with this batch's commit: {why}; nothing was written over it — restart the query (it re-reads the table)"
    )]
    ConcurrentWriter {
        /// The table folder.
        path: PathBuf,
        /// The version the other writer took.
        version: u64,
        /// What conflicts.
        why: String,
    },
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
        return Err(if path.is_dir() {
            SinkError::NotATable(path.to_path_buf())
        } else {
            SinkError::Missing(path.to_path_buf())
        });
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

/// A batch with at least this many rows per core is written as one parquet file per core.
const ROWS_PER_PARALLEL_FILE: usize = 100_000;

/// Splits a batch's rows into the parts written as separate files: one part, or — for a batch
/// of at least [`ROWS_PER_PARALLEL_FILE`] rows per core — one contiguous slice per core.
fn write_parts(batches: &[RecordBatch], rows: usize) -> Vec<Vec<RecordBatch>> {
    let non_empty: Vec<RecordBatch> = batches.iter().filter(|b| b.num_rows() > 0).cloned().collect();
    if non_empty.is_empty() {
        return Vec::new();
    }
    let cores = crate::cores();
    let parts = cores.min(rows / ROWS_PER_PARALLEL_FILE).max(1);
    if parts == 1 {
        return vec![non_empty];
    }
    // Contiguous runs of about `per` rows each, a batch sliced where a run ends (slices share
    // the columns: nothing is copied).
    let per = rows.div_ceil(parts);
    let mut out: Vec<Vec<RecordBatch>> = Vec::with_capacity(parts);
    let (mut run, mut run_rows) = (Vec::new(), 0);
    for mut b in non_empty {
        while run_rows + b.num_rows() > per && out.len() + 1 < parts {
            let head = per - run_rows;
            run.push(b.slice(0, head));
            out.push(std::mem::take(&mut run));
            run_rows = 0;
            b = b.slice(head, b.num_rows() - head);
        }
        if b.num_rows() > 0 {
            run_rows += b.num_rows();
            run.push(b);
        }
    }
    if !run.is_empty() {
        out.push(run);
    }
    out
}

/// Writes `batches` through `writer` as new parquet files of its table — staged, not yet
/// committed — and returns their adds.
async fn write_file(
    mut writer: RecordBatchWriter,
    batches: impl IntoIterator<Item = RecordBatch>,
) -> std::result::Result<Vec<deltalake::kernel::Add>, DeltaTableError> {
    for b in batches.into_iter().filter(|b| b.num_rows() > 0) {
        writer.write(b).await?;
    }
    writer.flush().await
}

/// Fsyncs the data files `actions` add under the table at `root`, then their folders. Returns
/// the files and folders synced, in order; on failure the path and the error.
fn sync_added_files(
    root: &Path,
    actions: &[Action],
) -> std::result::Result<Vec<PathBuf>, (PathBuf, std::io::Error)> {
    let mut synced = Vec::new();
    let mut dirs = std::collections::BTreeSet::new();
    for action in actions {
        let Action::Add(add) = action else { continue };
        // Paths in the log are relative and percent-encoded (partition values may hold any
        // character).
        let relative = percent_encoding::percent_decode_str(&add.path).decode_utf8_lossy();
        let file = root.join(relative.as_ref());
        atomic::sync_file(&file).map_err(|e| (file.clone(), e))?;
        if let Some(dir) = file.parent() {
            dirs.insert(dir.to_path_buf());
        }
        synced.push(file);
    }
    for dir in dirs {
        atomic::sync_dir(&dir).map_err(|e| (dir.clone(), e))?;
        synced.push(dir);
    }
    Ok(synced)
}

/// A writer of new data files for `table`: snappy, as delta-rs writes, with dictionary
/// encoding only for the columns whose values repeat (see [`writer_properties`]); `sample` is the
/// first batch the writer will write, if known.
pub(crate) fn data_writer(
    table: &DeltaTable,
    sample: Option<&RecordBatch>,
) -> std::result::Result<RecordBatchWriter, DeltaTableError> {
    let writer = RecordBatchWriter::for_table(table)?;
    let props = writer_properties(&writer.arrow_schema(), sample);
    Ok(writer.with_writer_properties(props))
}

/// Rows of the sample looked at to decide whether a string column's values repeat.
const DICTIONARY_SAMPLE_ROWS: usize = 1024;

/// Parquet properties of the data files: snappy pages, and dictionary encoding only where
/// values repeat. Doubles and timestamps are nearly all distinct in a stream, and so are string
/// columns such as ids: the writer would intern every value until its 1 MiB dictionary page
/// overflowed, then write them plain anyway — the dictionary was a quarter of the cost of
/// writing a file. A string column goes without a dictionary when at least 90 % of the first
/// [`DICTIONARY_SAMPLE_ROWS`] values of `sample` are distinct (a function of the data only, so
/// the same input writes the same files). Readers see ordinary parquet either way.
pub fn writer_properties(
    schema: &Schema,
    sample: Option<&RecordBatch>,
) -> deltalake::parquet::file::properties::WriterProperties {
    use deltalake::arrow::datatypes::DataType;
    use deltalake::parquet::schema::types::ColumnPath;
    let mut b = deltalake::parquet::file::properties::WriterProperties::builder()
        .set_compression(deltalake::parquet::basic::Compression::SNAPPY);
    for f in schema.fields() {
        let plain = match f.data_type() {
            DataType::Float32 | DataType::Float64 | DataType::Timestamp(..) => true,
            DataType::Utf8 => sample
                .and_then(|s| s.column_by_name(f.name()))
                .and_then(|c| c.as_any().downcast_ref::<deltalake::arrow::array::StringArray>())
                .is_some_and(mostly_distinct),
            _ => false,
        };
        if plain {
            b = b.set_column_dictionary_enabled(ColumnPath::from(f.name().as_str()), false);
        }
    }
    b.build()
}

/// Whether at least 90 % of the first [`DICTIONARY_SAMPLE_ROWS`] values (of at least 64) are
/// distinct.
fn mostly_distinct(values: &deltalake::arrow::array::StringArray) -> bool {
    use deltalake::arrow::array::Array;
    let n = values.len().min(DICTIONARY_SAMPLE_ROWS);
    if n < 64 {
        return false;
    }
    let mut seen = foldhash::HashSet::with_capacity_and_hasher(n, foldhash::fast::RandomState::default());
    for i in 0..n {
        seen.insert(values.is_valid(i).then(|| values.value(i)));
    }
    seen.len() * 10 >= n * 9
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

/// The data files of the table's current version as the sink knows them: loaded from the
/// table once, when a mode first needs them (complete and update modes remove files), then
/// kept up to date by the sink's own commits.
#[derive(Debug, Default)]
struct ActiveFiles {
    by_path: BTreeMap<String, LiveFile>,
}

/// What removing a live file needs to say about it.
#[derive(Debug, Clone)]
struct LiveFile {
    size: i64,
    partition_values: HashMap<String, Option<String>>,
}

impl ActiveFiles {
    fn apply(&mut self, actions: &[Action]) {
        for a in actions {
            match a {
                Action::Add(add) => {
                    let live = LiveFile {
                        size: add.size,
                        partition_values: add.partition_values.clone(),
                    };
                    self.by_path.insert(add.path.clone(), live);
                }
                Action::Remove(r) => {
                    self.by_path.remove(&r.path);
                }
                _ => {}
            }
        }
    }
}

/// The action that removes the live file at `path`, stamped with the batch time (not the wall
/// clock, so a replay writes the same log).
fn remove_of(path: &str, file: &LiveFile, deletion_ms: i64) -> Remove {
    Remove {
        path: path.to_string(),
        data_change: true,
        deletion_timestamp: Some(deletion_ms),
        extended_file_metadata: Some(true),
        partition_values: Some(file.partition_values.clone()),
        size: Some(file.size),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
    }
}

/// A Delta table written by one streaming query.
pub struct DeltaSink {
    path: PathBuf,
    /// The table as read at open: schema, protocol and properties (which a streaming query does
    /// not change). Its file list is not advanced by the sink's commits.
    table: DeltaTable,
    app_id: String,
    /// The table's current version (the last one this sink read or wrote).
    version: u64,
    committed: Option<i64>,
    files: Option<ActiveFiles>,
    buckets: Option<upsert::BucketIndex>,
    /// The table asks for auto compaction ([`compaction`]).
    auto_compact: bool,
    checkpoints: checkpoint::Checkpointer,
    /// Whether new data files and log entries are fsynced.
    durability: Durability,
}

impl std::fmt::Debug for DeltaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaSink")
            .field("path", &self.path)
            .field("app_id", &self.app_id)
            .field("version", &self.version)
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
        let snapshot = table.snapshot().map_err(delta)?;
        // A table we cannot write (reader/writer features delta-rs lacks) fails here, at open.
        PROTOCOL.can_write_to(snapshot).map_err(|e| delta(e.into()))?;
        let committed = snapshot
            .transaction_version(table.log_store().as_ref(), app_id)
            .await
            .map_err(delta)?;
        let version = snapshot.version() as u64;
        let interval = snapshot.table_config().checkpoint_interval().get();
        let auto_compact = compaction::enabled(
            snapshot
                .metadata()
                .configuration()
                .get(compaction::AUTO_COMPACT_PROPERTY)
                .map(String::as_str),
        );
        let checkpoints = checkpoint::Checkpointer::new(table.log_store(), interval);
        Ok(Self {
            path: path.to_path_buf(),
            table,
            app_id: app_id.to_string(),
            version,
            committed,
            files: None,
            buckets: None,
            auto_compact,
            checkpoints,
            durability: Durability::ProcessCrash,
        })
    }

    /// Fsyncs, with [`Durability::PowerLoss`], every data file a commit adds before the commit
    /// and its log entry after it, with their folders; Delta checkpoints once written.
    /// The table's current log entry is fsynced at once (it may be the one that created it).
    pub fn with_durability(mut self, durability: Durability) -> Result<Self> {
        self.durability = durability;
        let log = self.path.join("_delta_log");
        if durability.fsyncs() {
            let entry = log.join(format!("{:020}.json", self.version));
            atomic::sync_file(&entry)
                .and_then(|()| atomic::sync_dir(&log))
                .and_then(|()| atomic::sync_dir(&self.path))
                .map_err(|source| SinkError::Io { path: entry, source })?;
        }
        self.checkpoints.sync_log(durability.fsyncs().then_some(log));
        Ok(self)
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
    /// VACUUM would keep) — and that were written at or after `written_since` (when the batch
    /// that crashed was planned). Such files were written by a batch whose Delta commit never
    /// happened; readers never saw them. Older unreferenced files are left alone: they may be
    /// another writer's (an `OPTIMIZE` still writing), which only VACUUM, with its retention,
    /// may judge. Returns the files removed.
    pub async fn remove_orphans(&mut self, written_since: std::time::SystemTime) -> Result<Vec<PathBuf>> {
        self.catch_up().await?;
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
                    let recent = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t >= written_since);
                    if recent && !known.contains(&rel) && std::fs::remove_file(&p).is_ok() {
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

    /// Waits for the Delta checkpoint in flight, if any.
    pub async fn settle(&mut self) -> Result<()> {
        let path = self.path.clone();
        self.checkpoints
            .finish()
            .await
            .map_err(|e| SinkError::delta(path, e))
    }

    /// The table's current version.
    pub fn version(&self) -> Option<u64> {
        Some(self.version)
    }

    /// Brings the table handle to the sink's version (after the sink's own commits it lags).
    async fn catch_up(&mut self) -> Result<()> {
        if self.table.version() != Some(self.version) {
            let path = self.path.clone();
            self.table
                .load_version(self.version)
                .await
                .map_err(|e| SinkError::delta(path, e))?;
        }
        Ok(())
    }

    /// The active files, read from the table the first time they are needed.
    async fn active_files(&mut self) -> Result<&ActiveFiles> {
        if self.files.is_none() {
            self.catch_up().await?;
            let snapshot = self.table.snapshot().map_err(self.delta())?;
            let mut files = ActiveFiles::default();
            let mut views = snapshot
                .snapshot()
                .file_views(self.table.log_store().as_ref(), None);
            while let Some(v) = views.try_next().await.map_err(self.delta())? {
                let live = LiveFile {
                    size: v.size(),
                    partition_values: v.partition_values_map().into_iter().collect(),
                };
                files.by_path.insert(v.path().into_owned(), live);
            }
            self.files = Some(files);
        }
        // Set just above when it was None.
        Ok(self.files.get_or_insert_with(ActiveFiles::default))
    }

    /// Writes `batches` as parquet files for batch `batch_id`; with `replace_all`, also marks
    /// every current file for removal (complete mode: the commit replaces the table's contents).
    /// `timestamp_ms` stamps the removals (the batch time).
    pub async fn stage(
        &mut self,
        batch_id: u64,
        batches: &[RecordBatch],
        replace_all: bool,
        timestamp_ms: i64,
    ) -> Result<Staged> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let parts = write_parts(batches, rows);
        let mut tasks = Vec::with_capacity(parts.len());
        for part in parts {
            let writer = data_writer(&self.table, part.first()).map_err(self.delta())?;
            // Each part is encoded on its own task, so a large batch's parquet files are
            // written on every core; the adds are taken in part order.
            tasks.push(tokio::spawn(write_file(writer, part)));
        }
        let mut actions = Vec::new();
        for task in tasks {
            let adds = task
                .await
                .map_err(|e| DeltaTableError::Generic(format!("parquet writer task: {e}")))
                .and_then(|r| r)
                .map_err(self.delta())?;
            actions.extend(adds.into_iter().map(Action::Add));
        }
        if self.auto_compact && !replace_all {
            actions.extend(self.stage_compaction(timestamp_ms).await?);
        }
        if replace_all {
            let files = self.active_files().await?;
            actions.extend(
                files
                    .by_path
                    .iter()
                    .map(|(p, f)| Action::Remove(remove_of(p, f, timestamp_ms))),
            );
        }
        Ok(Staged {
            batch_id: batch_id as i64,
            actions,
            rows: rows as u64,
            index: None,
        })
    }

    /// Commits staged files as the table's next version, carrying `txn(query id, batch id)`.
    /// `timestamp_ms` becomes the txn's `lastUpdated` (the batch timestamp, from the query clock).
    ///
    /// The commit file is written with create-if-absent. If another writer took the version,
    /// its commits are read and, when compatible (see `sink/concurrency.rs`), taken into account and
    /// the commit retried at the next version — as Delta's optimistic concurrency does for a
    /// blind append next to another append or a compaction; otherwise nothing is written and
    /// [`SinkError::ConcurrentWriter`] says what conflicts.
    pub async fn commit(&mut self, staged: Staged, mode: OutputMode, timestamp_ms: i64) -> Result<u64> {
        let op = DeltaOperation::StreamingUpdate {
            output_mode: mode,
            query_id: self.app_id.clone(),
            epoch_id: staged.batch_id,
        };
        let snapshot = self.table.snapshot().map_err(self.delta())?;
        PROTOCOL
            .can_commit(snapshot, &staged.actions, &op)
            .map_err(|e| SinkError::delta(self.path.clone(), e.into()))?;
        let txn = Transaction::new_with_last_update(&self.app_id, staged.batch_id, Some(timestamp_ms));
        let data = CommitData::new(staged.actions, op, HashMap::new(), vec![txn]);
        let bytes = data
            .get_bytes()
            .map_err(|e| SinkError::delta(self.path.clone(), e.into()))?;
        if self.durability.fsyncs() {
            // The files a log entry names are durable before the entry is.
            sync_added_files(&self.path, &data.actions)
                .map_err(|(path, source)| SinkError::Io { path, source })?;
        }
        let mut version = self.version + 1;
        let mut attempts = 0;
        loop {
            let write = self
                .table
                .log_store()
                .write_commit_entry(
                    version,
                    CommitOrBytes::LogBytes(bytes.clone()),
                    uuid::Uuid::new_v4(),
                )
                .await;
            match write {
                Ok(()) => break,
                Err(TransactionError::VersionAlreadyExists(_))
                    if attempts < concurrency::MAX_COMMIT_ATTEMPTS =>
                {
                    attempts += 1;
                    self.absorb_commits_from(version, &data.actions).await?;
                    version = self.version + 1;
                }
                Err(TransactionError::VersionAlreadyExists(v)) => {
                    return Err(SinkError::ConcurrentWriter {
                        path: self.path.clone(),
                        version: v,
                        why: format!(
                            "other writers took {} versions in a row",
                            concurrency::MAX_COMMIT_ATTEMPTS
                        ),
                    });
                }
                Err(e) => return Err(SinkError::delta(self.path.clone(), e.into())),
            }
        }
        if self.durability.fsyncs() {
            let log = self.path.join("_delta_log");
            let entry = log.join(format!("{version:020}.json"));
            atomic::sync_file(&entry)
                .and_then(|()| atomic::sync_dir(&log))
                .map_err(|source| SinkError::Io { path: entry, source })?;
        }
        self.version = version;
        self.committed = Some(staged.batch_id);
        if let Some(files) = self.files.as_mut() {
            files.apply(&data.actions);
        }
        if let (Some(change), Some(index)) = (staged.index, self.buckets.as_mut()) {
            index.apply(change);
        }
        self.checkpoints
            .after_commit(version)
            .await
            .map_err(|e| SinkError::delta(self.path.clone(), e))?;
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use deltalake::kernel::{Add, Remove};

    use super::*;

    /// A big batch given in parts is cut into one contiguous run per core, of the sizes an even
    /// split of the whole gives, the rows in order; a small one stays whole.
    #[test]
    fn parts_are_cut_into_even_contiguous_runs() {
        use deltalake::arrow::array::{Array, Int64Array};
        use deltalake::arrow::datatypes::{DataType, Field};
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch = |from: i64, n: i64| {
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from_iter_values(from..from + n))],
            )
            .unwrap()
        };
        let values = |runs: &[RecordBatch]| -> Vec<i64> {
            runs.iter()
                .flat_map(|b| {
                    let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                    a.values().to_vec()
                })
                .collect()
        };
        for sizes in [
            vec![10_000i64; 100],
            vec![333_333, 1, 666_666],
            vec![1_000_000],
            vec![0, 250_001, 0, 2],
        ] {
            let mut from = 0;
            let batches: Vec<RecordBatch> = sizes
                .iter()
                .map(|&n| {
                    let b = batch(from, n);
                    from += n;
                    b
                })
                .collect();
            let rows = from as usize;
            let runs = write_parts(&batches, rows);
            let parts = crate::cores().min(rows / ROWS_PER_PARALLEL_FILE).max(1);
            assert_eq!(runs.len(), parts, "{sizes:?}");
            let per = rows.div_ceil(parts);
            for (i, run) in runs.iter().enumerate() {
                let n: usize = run.iter().map(RecordBatch::num_rows).sum();
                assert_eq!(n, per.min(rows - i * per), "run {i} of {sizes:?}");
            }
            let all: Vec<i64> = runs.iter().flat_map(|r| values(r)).collect();
            assert_eq!(all, (0..from).collect::<Vec<_>>(), "{sizes:?}");
        }
    }

    /// Dictionary encoding stays on for columns whose values repeat (ints, strings with few
    /// values, strings of a small sample) and is off for doubles, timestamps and strings whose
    /// sampled values are nearly all distinct.
    #[test]
    fn only_repeating_columns_get_a_dictionary() {
        use deltalake::arrow::array::{Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
        use deltalake::arrow::datatypes::{DataType, Field, TimeUnit};
        use deltalake::parquet::schema::types::ColumnPath;
        let n = 2000;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("kind", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("x", DataType::Float64, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]));
        let ids: Vec<String> = (0..n).map(|i| format!("id-{i}")).collect();
        let kinds: Vec<&str> = (0..n).map(|i| ["a", "b", "c"][i % 3]).collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(
                    ids.iter().map(String::as_str).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(kinds)),
                Arc::new(Int64Array::from_iter_values(0..n as i64)),
                Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64))),
                Arc::new(TimestampMicrosecondArray::from_iter_values(0..n as i64)),
            ],
        )
        .unwrap();
        let dict = |p: &deltalake::parquet::file::properties::WriterProperties, c: &str| {
            p.dictionary_enabled(&ColumnPath::from(c))
        };
        let p = writer_properties(&schema, Some(&batch));
        assert!(!dict(&p, "id"), "distinct strings are written plain");
        assert!(dict(&p, "kind"), "repeating strings keep their dictionary");
        assert!(dict(&p, "n"));
        assert!(!dict(&p, "x"));
        assert!(!dict(&p, "ts"));
        // Without a sample, or with too few rows to judge, strings keep the dictionary.
        assert!(dict(&writer_properties(&schema, None), "id"));
        assert!(dict(&writer_properties(&schema, Some(&batch.slice(0, 10))), "id"));
        // 89 % distinct is not enough.
        let mostly: Vec<String> = (0..1000)
            .map(|i| if i < 890 { format!("v{i}") } else { "same".into() })
            .collect();
        assert!(!mostly_distinct(&StringArray::from(
            mostly.iter().map(String::as_str).collect::<Vec<_>>()
        )));
    }

    /// With `fsync` on, a commit first fsyncs every file it adds — found from the log's
    /// percent-encoded relative paths — then their folders; removed files are not touched; a
    /// file that is not there is an error naming it.
    #[test]
    fn added_files_and_their_folders_are_synced_before_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("day=2026-12-03 10:00")).unwrap();
        std::fs::write(root.join("a.parquet"), b"a").unwrap();
        std::fs::write(root.join("day=2026-12-03 10:00/b.parquet"), b"b").unwrap();
        let add = |path: &str| {
            Action::Add(Add {
                path: path.into(),
                ..Default::default()
            })
        };
        let actions = [
            add("a.parquet"),
            Action::Remove(Remove {
                path: "gone.parquet".into(),
                ..Default::default()
            }),
            add("day=2026-12-03%2010%3A00/b.parquet"),
        ];
        let synced = sync_added_files(root, &actions).unwrap();
        assert_eq!(
            synced,
            [
                root.join("a.parquet"),
                root.join("day=2026-12-03 10:00/b.parquet"),
                root.to_path_buf(),
                root.join("day=2026-12-03 10:00"),
            ]
        );
        let (path, e) = sync_added_files(root, &[add("missing.parquet")]).unwrap_err();
        assert_eq!(
            (path, e.kind()),
            (root.join("missing.parquet"), std::io::ErrorKind::NotFound)
        );
    }
}
