//! Stream–static join with a Delta table (seed Example 4, R11), on key columns of any type.
//!
//! Each batch joins its new rows with the static table's **latest version**, as Spark does
//! with a Delta static side (R11.2). Unlike Spark (R11.3), the version is pinned when the batch
//! is planned and recorded in `offsets/N` (conf key [`static_version_key`]), so a batch re-run
//! after a crash joins the same version and writes the same rows.
//!
//! Output columns, as Spark's `join(other, on=[cols])` orders them: the join columns, the other
//! stream columns, then the static table's other columns; a left semi or anti join keeps only
//! the stream's columns. Inner drops rows without a match; left outer keeps them with nulls;
//! left semi keeps each stream row with a match once; left anti keeps those without. A null key
//! matches nothing, as in SQL.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use deltalake::arrow::compute::{cast, concat_batches, filter, take};
use deltalake::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use deltalake::arrow::row::{RowConverter, SortField};
use futures::future::BoxFuture;

use super::{BatchContext, Operator, OperatorError, RowLocal};
use crate::query::QueryError;
use crate::sink::{SinkError, data_files, open_existing, read_data_files};

/// The `offsets/N` conf key of the seed's join (the first static table of a query).
pub const STATIC_VERSION_KEY: &str = "microbatch.join.staticTableVersion";

/// The `offsets/N` conf key holding the version of the `i`-th static table batch N joins.
pub fn static_version_key(i: usize) -> String {
    match i {
        0 => STATIC_VERSION_KEY.to_string(),
        i => format!("{STATIC_VERSION_KEY}.{i}"),
    }
}

/// Spark's stream–static join types that keep the stream on the left (R10.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum JoinKind {
    /// `inner`.
    Inner,
    /// `left`, `left_outer`, `leftouter`.
    LeftOuter,
    /// `left_semi`, `semi`.
    LeftSemi,
    /// `left_anti`, `anti`.
    LeftAnti,
}

impl std::str::FromStr for JoinKind {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Self, QueryError> {
        Ok(match s.to_ascii_lowercase().replace('_', "").as_str() {
            "inner" => Self::Inner,
            "left" | "leftouter" => Self::LeftOuter,
            "leftsemi" | "semi" => Self::LeftSemi,
            "leftanti" | "anti" => Self::LeftAnti,
            "cross" | "right" | "rightouter" | "full" | "fullouter" | "outer" => {
                return Err(QueryError::Invalid(format!(
                    "[UNSUPPORTED_STREAMING_OPERATION] {s} join between a streaming DataFrame on the left and a static one on the right is not supported; the stream–static joins are inner, left outer, left semi and left anti"
                )));
            }
            _ => {
                return Err(QueryError::Invalid(format!(
                    "[UNSUPPORTED_JOIN_TYPE] Unsupported join type '{s}'. Supported join types include: 'inner', 'left', 'left_outer', 'left_semi', 'semi', 'left_anti', 'anti'"
                )));
            }
        })
    }
}

impl std::fmt::Display for JoinKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Inner => "inner",
            Self::LeftOuter => "left_outer",
            Self::LeftSemi => "left_semi",
            Self::LeftAnti => "left_anti",
        })
    }
}

/// A resolved stream–static equi-join.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinSpec {
    /// The static Delta table.
    pub table: PathBuf,
    /// Its position among the query's static tables (for the pinned version's key).
    pub index: usize,
    /// Pairs of (stream column, static column) that must be equal.
    pub keys: Vec<(usize, usize)>,
    /// The join type.
    pub kind: JoinKind,
    /// True for `join(other, on=[names])`: each key appears once, first (Spark's USING join);
    /// false: every stream column, then every static column.
    pub using: bool,
    /// True when the stream is the join's left side (as written); an inner join with the
    /// static table on the left puts the static columns first.
    pub stream_left: bool,
}

/// The output columns of a join: (from the stream?, column index), in Spark's order.
fn output_columns(spec: &JoinSpec, n_stream: usize, n_static: usize) -> Vec<(bool, usize)> {
    let keeps_static = matches!(spec.kind, JoinKind::Inner | JoinKind::LeftOuter);
    let stream_cols: Vec<(bool, usize)> = (0..n_stream)
        .filter(|i| !spec.using || !spec.keys.iter().any(|&(l, _)| l == *i))
        .map(|i| (true, i))
        .collect();
    let static_cols: Vec<(bool, usize)> = (0..n_static)
        .filter(|i| keeps_static && (!spec.using || !spec.keys.iter().any(|&(_, r)| r == *i)))
        .map(|i| (false, i))
        .collect();
    let mut columns: Vec<(bool, usize)> = Vec::new();
    if spec.using {
        columns.extend(spec.keys.iter().map(|&(l, _)| (true, l)));
    }
    if spec.stream_left {
        columns.extend(stream_cols);
        columns.extend(static_cols);
    } else {
        columns.extend(static_cols);
        columns.extend(stream_cols);
    }
    columns
}

/// The schema a join emits: see [`output_columns`]; the static side's columns are nullable.
pub fn join_schema(
    input: &SchemaRef,
    static_schema: &SchemaRef,
    spec: &JoinSpec,
) -> Result<SchemaRef, OperatorError> {
    let fields: Vec<Field> = output_columns(spec, input.fields().len(), static_schema.fields().len())
        .iter()
        .map(|&(stream, i)| match stream {
            true => input.field(i).as_ref().clone(),
            false => static_schema.field(i).as_ref().clone().with_nullable(true),
        })
        .collect();
    Ok(Arc::new(Schema::new(fields)))
}

/// One loaded version of the static side, indexed by join key.
#[derive(Debug)]
struct StaticSide {
    version: u64,
    rows: RecordBatch,
    index: super::LookupMap<Vec<u8>, Vec<u32>>,
}

/// The join operator.
pub struct JoinOp {
    spec: JoinSpec,
    table: DeltaTable,
    /// The static table's schema as stored.
    table_schema: SchemaRef,
    /// Its select/filter, applied to its rows when a version is loaded.
    static_steps: Vec<Box<dyn Operator>>,
    /// The key type of each pair (both sides are cast to it).
    key_types: Vec<DataType>,
    converter: RowConverter,
    schema: SchemaRef,
    /// Output columns: (from the stream?, column index).
    columns: Vec<(bool, usize)>,
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

/// Opens a static Delta table, or says how to make one.
pub async fn open_static_table(path: &std::path::Path) -> Result<(DeltaTable, SchemaRef), OperatorError> {
    let table = match open_existing(path).await {
        Err(SinkError::Missing(p)) => {
            return Err(QueryError::Invalid(format!(
                "the join's static Delta table {} does not exist; write it with `microbatch generate --users {}` (the seed's users table) or any Delta writer",
                p.display(),
                p.parent().map_or_else(|| ".".into(), |d| d.display().to_string())
            ))
            .into());
        }
        other => other?,
    };
    let schema = table
        .snapshot()
        .map_err(|e| SinkError::delta(path.to_path_buf(), e))?
        .snapshot()
        .arrow_schema();
    Ok((table, schema))
}

impl JoinOp {
    /// The join of rows of `input` with the static table `table` (opened with
    /// [`open_static_table`], schema `table_schema`), whose rows go through `static_steps`
    /// (stateless) to become rows of `static_schema`.
    pub fn new(
        input: &SchemaRef,
        table: DeltaTable,
        table_schema: SchemaRef,
        static_steps: Vec<Box<dyn Operator>>,
        static_schema: SchemaRef,
        spec: JoinSpec,
    ) -> Result<Self, OperatorError> {
        let mut key_types = Vec::new();
        for &(l, r) in &spec.keys {
            let (lt, rt) = (input.field(l).data_type(), static_schema.field(r).data_type());
            key_types.push(common_key_type(lt, rt).ok_or_else(|| {
                QueryError::Invalid(format!(
                    "[DATATYPE_MISMATCH.BINARY_OP_DIFF_TYPES] the join keys `{}` ({}) and `{}` ({}) have types that cannot be compared",
                    input.field(l).name(),
                    crate::query::simple_type(lt),
                    static_schema.field(r).name(),
                    crate::query::simple_type(rt)
                ))
            })?);
        }
        let converter = RowConverter::new(key_types.iter().map(|t| SortField::new(t.clone())).collect())?;
        let columns = output_columns(&spec, input.fields().len(), static_schema.fields().len());
        let schema = join_schema(input, &static_schema, &spec)?;
        Ok(Self {
            spec,
            table,
            table_schema,
            static_steps,
            key_types,
            converter,
            schema,
            columns,
            loaded: None,
        })
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

    fn key_rows(
        &self,
        rows: &RecordBatch,
        stream: bool,
    ) -> Result<deltalake::arrow::row::Rows, OperatorError> {
        let cols = self
            .spec
            .keys
            .iter()
            .zip(&self.key_types)
            .map(|(&(l, r), t)| cast(rows.column(if stream { l } else { r }), t))
            .collect::<Result<Vec<ArrayRef>, _>>()?;
        Ok(self.converter.convert_columns(&cols)?)
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
        let batches = read_data_files(&self.table, &files, &self.table_schema)
            .await
            .map_err(delta)?;
        let mut rows = concat_batches(&self.table_schema, &batches)?;
        if !self.static_steps.is_empty() {
            let conf = BTreeMap::new();
            let thresholds = super::Thresholds {
                late_ms: 0,
                evict_ms: 0,
            };
            let mut ctx = BatchContext::new(0, 0, thresholds, &conf);
            for step in &mut self.static_steps {
                rows = step.process_batch(rows, &mut ctx)?;
            }
        }
        let keys = self.key_rows(&rows, false)?;
        let mut index: super::LookupMap<Vec<u8>, Vec<u32>> = super::LookupMap::default();
        for i in 0..rows.num_rows() {
            if self.spec.keys.iter().all(|&(_, r)| rows.column(r).is_valid(i)) {
                index
                    .entry(keys.row(i).data().to_vec())
                    .or_default()
                    .push(i as u32);
            }
        }
        self.loaded = Some(StaticSide { version, rows, index });
        Ok(())
    }
}

/// The type both sides of a join key are compared as: equal types, or the wider of two
/// numeric ones (Spark's implicit widening).
fn common_key_type(a: &DataType, b: &DataType) -> Option<DataType> {
    use DataType::*;
    if a == b {
        return Some(a.clone());
    }
    let rank = |t: &DataType| match t {
        Int8 => Some(1),
        Int16 => Some(2),
        Int32 => Some(3),
        Int64 => Some(4),
        Float32 => Some(6),
        Float64 => Some(7),
        _ => None,
    };
    match (rank(a)?, rank(b)?) {
        (x, y) if x >= y => Some(a.clone()),
        _ => Some(b.clone()),
    }
}

impl Operator for JoinOp {
    fn row_local(&self) -> Option<&dyn RowLocal> {
        Some(self)
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn pin(&mut self) -> BoxFuture<'_, Result<BTreeMap<String, String>, OperatorError>> {
        Box::pin(async move {
            let v = self.latest_version().await?;
            Ok(BTreeMap::from([(
                static_version_key(self.spec.index),
                v.to_string(),
            )]))
        })
    }

    fn prepare<'a>(
        &'a mut self,
        conf: &'a BTreeMap<String, String>,
    ) -> BoxFuture<'a, Result<(), OperatorError>> {
        Box::pin(async move {
            let version = match conf
                .get(&static_version_key(self.spec.index))
                .and_then(|v| v.parse().ok())
            {
                Some(v) => v,
                None => self.latest_version().await?,
            };
            self.load(version).await
        })
    }

    fn process_batch(
        &mut self,
        rows: RecordBatch,
        ctx: &mut BatchContext<'_>,
    ) -> Result<RecordBatch, OperatorError> {
        self.process_rows(rows, ctx.batch_timestamp_ms)
    }
}

impl RowLocal for JoinOp {
    fn process_rows(
        &self,
        rows: RecordBatch,
        _batch_timestamp_ms: i64,
    ) -> Result<RecordBatch, OperatorError> {
        let keys = self.key_rows(&rows, true)?;
        let Some(side) = self.loaded.as_ref() else {
            return Err(QueryError::Invalid("the join ran before its static table was loaded".into()).into());
        };
        let n = rows.num_rows();
        let mut left = Vec::with_capacity(n);
        let mut right: Vec<Option<u32>> = Vec::with_capacity(n);
        // Whether each stream row is kept at most once, in order: then the stream's columns are
        // the batch's own (every row kept) or a filter of them, not a gather.
        let mut at_most_once = true;
        for i in 0..n {
            let has_nulls = self.spec.keys.iter().any(|&(l, _)| rows.column(l).is_null(i));
            let matches = (!has_nulls).then(|| side.index.get(keys.row(i).data())).flatten();
            match (self.spec.kind, matches) {
                (JoinKind::Inner | JoinKind::LeftOuter, Some(ms)) => {
                    at_most_once &= ms.len() == 1;
                    for m in ms {
                        left.push(i as u32);
                        right.push(Some(*m));
                    }
                }
                (JoinKind::LeftOuter, None) | (JoinKind::LeftAnti, None) | (JoinKind::LeftSemi, Some(_)) => {
                    left.push(i as u32);
                    right.push(None);
                }
                _ => {}
            }
        }
        let stream_rows = StreamRows::of(left, n, at_most_once);
        let right = UInt32Array::from(right);
        let cols = self
            .columns
            .iter()
            .map(|&(stream, c)| match stream {
                true => stream_rows.select(rows.column(c)),
                false => take(side.rows.column(c), &right, None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), cols)?)
    }
}

/// The stream rows a joined batch keeps, in output order.
enum StreamRows {
    /// Every row, once, in order.
    All,
    /// Some rows, each at most once, in order.
    Mask(BooleanArray),
    /// Rows repeated (a key with several matches): a gather.
    Take(UInt32Array),
}

impl StreamRows {
    /// `left`: the kept rows' indices among `n`; `at_most_once`: no index repeats (then they
    /// ascend, as the join walks the rows in order).
    fn of(left: Vec<u32>, n: usize, at_most_once: bool) -> Self {
        match at_most_once {
            true if left.len() == n => Self::All,
            true => {
                let mut keep = vec![false; n];
                for i in left {
                    keep[i as usize] = true;
                }
                Self::Mask(BooleanArray::from(keep))
            }
            false => Self::Take(UInt32Array::from(left)),
        }
    }

    fn select(&self, column: &ArrayRef) -> Result<ArrayRef, deltalake::arrow::error::ArrowError> {
        match self {
            Self::All => Ok(column.clone()),
            Self::Mask(keep) => filter(column, keep),
            Self::Take(idx) => take(column, idx, None),
        }
    }
}
