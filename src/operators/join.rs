//! Stream–static join with a Delta table (seed Example 4, R11).
//!
//! Each batch joins its new rows with the static table's **latest version**, as Spark does
//! with a Delta static side (R11.2). Unlike Spark (R11.3), the version is pinned when the batch
//! is planned and recorded in `offsets/N` (conf key [`STATIC_VERSION_KEY`]), so a batch re-run
//! after a crash joins the same version and writes the same rows.
//!
//! Output columns, as Spark's `join(users, "user_id")` orders them: the join column, the other
//! stream columns, then the static table's other columns. Inner join drops rows without a
//! match; left outer keeps them with nulls.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use deltalake::arrow::compute::{concat_batches, take};
use deltalake::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};

use super::OperatorError;
use crate::query::{JoinSpec, Query, QueryError};
use crate::sink::{SinkError, data_files, open_existing, read_data_files};

/// The `offsets/N` conf key holding the static table version batch N joins.
pub const STATIC_VERSION_KEY: &str = "microbatch.join.staticTableVersion";

/// One loaded version of the static side, indexed by join key.
#[derive(Debug)]
struct StaticSide {
    version: u64,
    rows: RecordBatch,
    index: HashMap<i32, Vec<u32>>,
}

/// The join operator.
pub struct JoinOp {
    spec: JoinSpec,
    table: DeltaTable,
    stream_key: usize,
    static_key: usize,
    static_schema: SchemaRef,
    schema: SchemaRef,
    loaded: Option<StaticSide>,
}

impl std::fmt::Debug for JoinOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinOp")
            .field("spec", &self.spec)
            .field("version", &self.loaded.as_ref().map(|s| s.version))
            .finish()
    }
}

impl JoinOp {
    /// Opens the static table; a missing table or join column is an error now, at start.
    pub async fn open(query: &Query, spec: &JoinSpec) -> Result<Self, OperatorError> {
        let table = match open_existing(&spec.table).await {
            Err(SinkError::Missing(p)) => {
                return Err(QueryError::Invalid(format!(
                    "the join's static Delta table {} does not exist; write it with `microbatch generate --users {}`",
                    p.display(),
                    p.parent().map_or_else(|| ".".into(), |d| d.display().to_string())
                ))
                .into());
            }
            other => other?,
        };
        let static_schema = table
            .snapshot()
            .map_err(|e| SinkError::delta(spec.table.clone(), e))?
            .snapshot()
            .arrow_schema();
        let input = query.input_schema();
        let stream_key = input.index_of(&spec.on).map_err(|_| QueryError::UnknownColumn {
            column: spec.on.clone(),
            available: "the event columns".into(),
        })?;
        let static_key = static_schema.index_of(&spec.on).map_err(|_| {
            QueryError::Invalid(format!(
                "the static table {} has no join column `{}`",
                spec.table.display(),
                spec.on
            ))
        })?;
        if static_schema.field(static_key).data_type() != &DataType::Int32
            || input.field(stream_key).data_type() != &DataType::Int32
        {
            return Err(QueryError::Invalid(format!(
                "join column `{}` must be an int on both sides (the static table has {})",
                spec.on,
                static_schema.field(static_key).data_type()
            ))
            .into());
        }
        let mut fields: Vec<Field> = vec![input.field(stream_key).clone()];
        fields.extend(
            input
                .fields()
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != stream_key)
                .map(|(_, f)| f.as_ref().clone()),
        );
        fields.extend(
            static_schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != static_key)
                .map(|(_, f)| f.as_ref().clone().with_nullable(true)),
        );
        Ok(Self {
            spec: spec.clone(),
            table,
            stream_key,
            static_key,
            static_schema,
            schema: Arc::new(Schema::new(fields)),
            loaded: None,
        })
    }

    /// The output schema.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The static table's path.
    pub fn table_path(&self) -> &PathBuf {
        &self.spec.table
    }

    /// The static table's latest version, to pin for the batch being planned.
    pub async fn latest_version(&mut self) -> Result<u64, OperatorError> {
        if !self.spec.table.join("_delta_log").is_dir() {
            return Err(SinkError::Missing(self.spec.table.clone()).into());
        }
        self.table
            .get_latest_version()
            .await
            .map_err(|e| SinkError::delta(self.spec.table.clone(), e).into())
    }

    async fn load(&mut self, version: u64) -> Result<(), OperatorError> {
        if self.loaded.as_ref().is_some_and(|s| s.version == version) {
            return Ok(());
        }
        let path = self.spec.table.clone();
        let delta = |e| SinkError::delta(path.clone(), e);
        if !self.spec.table.join("_delta_log").is_dir() {
            return Err(SinkError::Missing(self.spec.table.clone()).into());
        }
        self.table.load_version(version as _).await.map_err(delta)?;
        let files = data_files(&self.table).await.map_err(delta)?;
        let batches = read_data_files(&self.table, &files, &self.static_schema)
            .await
            .map_err(delta)?;
        let rows = concat_batches(&self.static_schema, &batches)?;
        let keys = rows.column(self.static_key).as_primitive::<Int32Type>();
        let mut index: HashMap<i32, Vec<u32>> = HashMap::new();
        for i in 0..rows.num_rows() {
            if keys.is_valid(i) {
                index.entry(keys.value(i)).or_default().push(i as u32);
            }
        }
        self.loaded = Some(StaticSide { version, rows, index });
        Ok(())
    }

    /// Joins one batch with the static table at the version pinned in `conf`.
    pub async fn process(
        &mut self,
        rows: &RecordBatch,
        conf: &BTreeMap<String, String>,
    ) -> Result<RecordBatch, OperatorError> {
        let version = match conf.get(STATIC_VERSION_KEY).and_then(|v| v.parse().ok()) {
            Some(v) => v,
            None => self.latest_version().await?,
        };
        self.load(version).await?;
        // `load` just set `loaded`.
        let side = self.loaded.as_ref().expect("static side loaded");
        let keys = rows.column(self.stream_key).as_primitive::<Int32Type>();
        let mut left = Vec::new();
        let mut right: Vec<Option<u32>> = Vec::new();
        for i in 0..rows.num_rows() {
            match keys.is_valid(i).then(|| side.index.get(&keys.value(i))).flatten() {
                Some(matches) => {
                    for m in matches {
                        left.push(i as u32);
                        right.push(Some(*m));
                    }
                }
                None if self.spec.left_outer => {
                    left.push(i as u32);
                    right.push(None);
                }
                None => {}
            }
        }
        let left = UInt32Array::from(left);
        let right = UInt32Array::from(right);
        let mut cols: Vec<ArrayRef> = vec![take(rows.column(self.stream_key), &left, None)?];
        for (i, c) in rows.columns().iter().enumerate() {
            if i != self.stream_key {
                cols.push(take(c, &left, None)?);
            }
        }
        for (i, c) in side.rows.columns().iter().enumerate() {
            if i != self.static_key {
                cols.push(take(c, &right, None)?);
            }
        }
        Ok(RecordBatch::try_new(self.schema.clone(), cols)?)
    }
}
