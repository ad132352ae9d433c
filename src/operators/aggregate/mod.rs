//! Stateful (windowed) aggregation with Spark 3.5's semantics (R7.5–R7.7, R9.2, §17), over
//! grouping columns of any type.
//!
//! Per batch:
//! 1. every input row is aggregated per (window, group key) into a batch-local partial — one
//!    event counts in each of its sliding windows;
//! 2. with a watermark on the event time (the grouping window's column, or a grouping column
//!    itself) and not in complete mode, a partial group whose event time (`window.end` for a
//!    window) is `<=` the late threshold — the *previous* batch's watermark — is dropped and
//!    counted in `numRowsDroppedByWatermark`, one per (window, key), as Spark counts its
//!    pre-aggregated rows; the input rows it held are kept as late rows; other groups merge into
//!    the state store;
//! 3. output by mode — **update**: every group the batch put, then groups whose event time is
//!    `<=` the eviction threshold (this batch's watermark) are removed silently; **append**:
//!    those groups are emitted once and removed; **complete**: every group in the state, nothing
//!    ever removed.
//!
//! Keys are held in arrow's row format (byte strings that sort as the values do), so grouping
//! needs no allocation per row and any column type can be a key. Accumulators fold each group's
//! rows in row order, so sums are those of a sequential fold.

mod accumulator;
mod fold;

use std::path::Path;
use std::sync::Arc;

use deltalake::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array, ListArray, RecordBatch, StructArray,
    TimestampMicrosecondArray, UInt32Array, new_null_array,
};
use deltalake::arrow::buffer::OffsetBuffer;
use deltalake::arrow::compute::{cast, take};
use deltalake::arrow::datatypes::{
    DataType, Decimal128Type, Field, Fields, Float64Type, Int64Type, Schema, SchemaRef,
    TimestampMicrosecondType,
};
use deltalake::arrow::row::{RowConverter, SortField};

pub use accumulator::{Acc, AggValue, GroupKey, KeyBytes, Wide};
use accumulator::{avg_decimal, fits, merge};
use fold::{Column, Grouping, Input, LateRule};

use super::{BatchContext, LateRow, Operator, OperatorError, StateReport};
use crate::event::timestamp_type;
use crate::query::{OutputMode, QueryError, WindowSpec};
use crate::state::StateStore;
use crate::state::order::by_key;

/// An aggregate function, as the state folds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AggFunc {
    /// `count(*)` / `count(1)`: rows.
    CountStar,
    /// `count(col)`: non-null values.
    Count,
    /// `sum(col)`.
    Sum,
    /// `avg(col)`.
    Avg,
    /// `min(col)`.
    Min,
    /// `max(col)`.
    Max,
    /// `first(col)`: the first value seen (nulls included, as Spark's default).
    First,
    /// `last(col)`: the last value seen.
    Last,
    /// `collect_list(col)`: non-null values in arrival order.
    CollectList,
    /// `collect_set(col)`: distinct non-null values, in the values' sort order.
    CollectSet,
    /// `approx_count_distinct(col)`: distinct non-null values, counted exactly here (Spark
    /// estimates with HyperLogLog++, relative error 5 %; the two agree on small counts).
    ApproxCountDistinct,
}

impl AggFunc {
    /// From a Spark function name (lower case).
    pub fn from_name(name: &str, star: bool) -> Option<Self> {
        Some(match name {
            "count" if star => Self::CountStar,
            "count" => Self::Count,
            "sum" => Self::Sum,
            "avg" | "mean" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "first" | "first_value" => Self::First,
            "last" | "last_value" => Self::Last,
            "collect_list" | "array_agg" => Self::CollectList,
            "collect_set" => Self::CollectSet,
            "approx_count_distinct" => Self::ApproxCountDistinct,
            _ => return None,
        })
    }

    /// Spark's result type over an input of type `input` (R: `Sum`, `Average` result types).
    pub fn result_type(self, input: Option<&DataType>) -> Result<DataType, QueryError> {
        use DataType::*;
        let bad = |what: &str| {
            QueryError::Invalid(format!(
                "[DATATYPE_MISMATCH.UNEXPECTED_INPUT_TYPE] {what} needs a numeric input, got {}",
                input.map_or_else(|| "none".to_string(), crate::query::simple_type)
            ))
        };
        Ok(match (self, input) {
            (Self::CountStar | Self::Count, _) | (Self::ApproxCountDistinct, Some(_)) => Int64,
            (Self::Sum, Some(Int8 | Int16 | Int32 | Int64)) => Int64,
            (Self::Sum, Some(Float32 | Float64)) => Float64,
            (Self::Sum, Some(Decimal128(p, s))) => Decimal128((*p + 10).min(38), *s),
            (Self::Sum, _) => return Err(bad("sum")),
            (Self::Avg, Some(Int8 | Int16 | Int32 | Int64 | Float32 | Float64)) => Float64,
            (Self::Avg, Some(Decimal128(p, s))) => Decimal128((*p + 4).min(38), (*s + 4).min(38)),
            (Self::Avg, _) => return Err(bad("avg")),
            (Self::Min | Self::Max | Self::First | Self::Last, Some(t)) => t.clone(),
            (Self::CollectList | Self::CollectSet, Some(t)) => {
                List(Arc::new(Field::new("element", t.clone(), true)))
            }
            (_, None) => return Err(QueryError::Invalid(format!("{self:?} needs an input column"))),
        })
    }
}

/// One grouping column of the result, in output order.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupColumn {
    /// `window(col, …)` over input column `col`: the output struct `{start, end}`.
    Window(usize, WindowSpec),
    /// An input column as it is.
    Column(usize),
}

/// Which part of the key carries event time with a watermark: the operator's late filter and
/// eviction apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTimeKey {
    /// No watermark on the keys: nothing is dropped or evicted.
    None,
    /// The window (`window.end` is compared).
    Window,
    /// The `i`-th plain grouping column (a timestamp; its value is compared).
    Column(usize),
}

/// One aggregate of the result.
#[derive(Debug, Clone, PartialEq)]
pub struct AggCall {
    /// The function.
    pub func: AggFunc,
    /// Its input column (`None` for `count(*)`).
    pub input: Option<usize>,
    /// The result column's name.
    pub name: String,
}

/// A resolved aggregation over input columns.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateSpec {
    /// The grouping columns, in output order (at most one window).
    pub group: Vec<GroupColumn>,
    /// The aggregates, after the grouping columns.
    pub aggs: Vec<AggCall>,
    /// The output mode.
    pub mode: OutputMode,
    /// Where the watermark applies.
    pub event_time: EventTimeKey,
}

/// A per-aggregate converter between values and their row format, for min/max/first/last and
/// the collections.
#[derive(Debug)]
struct ValueCodec {
    converter: RowConverter,
    /// The row-format bytes of a null value.
    null: Vec<u8>,
}

/// The stateful aggregation operator.
#[derive(Debug)]
pub struct AggregateOp {
    spec: AggregateSpec,
    /// The window's input column and spec, if grouped by one.
    window: Option<(usize, WindowSpec)>,
    /// The plain grouping columns' input indices, in output order.
    keys: Vec<usize>,
    key_converter: Option<RowConverter>,
    /// Per aggregate: its input type after coercion and, for byte-valued ones, its codec.
    inputs: Vec<(Option<DataType>, Option<ValueCodec>)>,
    input_schema: SchemaRef,
    store: StateStore<GroupKey, AggValue>,
    schema: SchemaRef,
    /// Groups the batch put (update mode emits them, in key order).
    updated: Vec<GroupKey>,
    dropped: u64,
}

/// The Arrow type of the `window` column.
pub fn window_type() -> DataType {
    DataType::Struct(window_fields())
}

/// The fields of the `window` struct: `start` and `end` timestamps.
pub fn window_fields() -> Fields {
    Fields::from(vec![
        Field::new("start", timestamp_type(), true),
        Field::new("end", timestamp_type(), true),
    ])
}

/// The type an aggregate's input is read as.
fn input_type(func: AggFunc, t: &DataType) -> DataType {
    use DataType::*;
    match (func, t) {
        (AggFunc::Sum, Int8 | Int16 | Int32 | Int64) => Int64,
        (AggFunc::Sum | AggFunc::Avg, Float32 | Float64) => Float64,
        (AggFunc::Avg, Int8 | Int16 | Int32 | Int64) => Float64,
        (AggFunc::Sum, Decimal128(p, s)) => Decimal128((*p + 10).min(38), *s),
        (AggFunc::Avg, Decimal128(p, s)) => Decimal128((*p + 10).min(38), *s),
        _ => t.clone(),
    }
}

impl AggregateOp {
    /// Opens the aggregation over rows of `input` with its state at `version` in `state_dir`.
    pub fn open(
        input: SchemaRef,
        spec: AggregateSpec,
        state_dir: &Path,
        version: u64,
        durability: crate::checkpoint::Durability,
    ) -> Result<Self, OperatorError> {
        let mut fields = Vec::new();
        let mut window = None;
        let mut keys = Vec::new();
        for g in &spec.group {
            match g {
                GroupColumn::Window(c, w) => {
                    if window.is_some() {
                        return Err(QueryError::Invalid(
                            "Multiple time/session window expressions would result in a cartesian product of rows, therefore they are currently not supported.".into(),
                        )
                        .into());
                    }
                    window = Some((*c, *w));
                    fields.push(Field::new("window", window_type(), true));
                }
                GroupColumn::Column(c) => {
                    keys.push(*c);
                    fields.push(input.field(*c).as_ref().clone().with_nullable(true));
                }
            }
        }
        let key_converter = if keys.is_empty() {
            None
        } else {
            Some(RowConverter::new(
                keys.iter()
                    .map(|k| SortField::new(input.field(*k).data_type().clone()))
                    .collect(),
            )?)
        };
        let mut inputs = Vec::new();
        for a in &spec.aggs {
            let in_type = a.input.map(|c| input.field(c).data_type().clone());
            let out_type = a.func.result_type(in_type.as_ref())?;
            let read_as = in_type.as_ref().map(|t| input_type(a.func, t));
            let codec = match (a.func, &read_as) {
                (
                    AggFunc::Min
                    | AggFunc::Max
                    | AggFunc::First
                    | AggFunc::Last
                    | AggFunc::CollectList
                    | AggFunc::CollectSet
                    | AggFunc::ApproxCountDistinct,
                    Some(t),
                ) => {
                    let converter = RowConverter::new(vec![SortField::new(t.clone())])?;
                    let null = converter
                        .convert_columns(&[new_null_array(t, 1)])?
                        .row(0)
                        .data()
                        .to_vec();
                    Some(ValueCodec { converter, null })
                }
                _ => None,
            };
            inputs.push((read_as, codec));
            fields.push(Field::new(&a.name, out_type, true));
        }
        Ok(Self {
            window,
            keys,
            key_converter,
            inputs,
            input_schema: input,
            store: StateStore::open(state_dir, version, 10)?.with_durability(durability),
            schema: Arc::new(Schema::new(fields)),
            spec,
            updated: Vec::new(),
            dropped: 0,
        })
    }

    fn evicts(&self) -> bool {
        self.spec.mode != OutputMode::Complete && self.spec.event_time != EventTimeKey::None
    }

    fn read_inputs(&self, cols: &[ArrayRef]) -> Result<Vec<Input>, OperatorError> {
        let mut out = Vec::with_capacity(self.spec.aggs.len());
        for (a, (read_as, codec)) in self.spec.aggs.iter().zip(&self.inputs) {
            let (Some(c), Some(t)) = (a.input, read_as) else {
                out.push(Input::Star);
                continue;
            };
            let col = cast(&cols[c], t)?;
            out.push(match (codec, t) {
                (Some(codec), _) => {
                    Input::Rows(codec.converter.convert_columns(std::slice::from_ref(&col))?, col)
                }
                (None, DataType::Int64) => Input::I64(col.as_primitive::<Int64Type>().clone()),
                (None, DataType::Float64) => Input::F64(col.as_primitive::<Float64Type>().clone()),
                (None, DataType::Decimal128(..)) => Input::Dec(col.as_primitive::<Decimal128Type>().clone()),
                (None, _) if a.func == AggFunc::Count => Input::Rows(
                    RowConverter::new(vec![SortField::new(t.clone())])?
                        .convert_columns(std::slice::from_ref(&col))?,
                    col,
                ),
                (None, other) => {
                    return Err(QueryError::Invalid(format!(
                        "{:?} over a column of type {} is not supported",
                        a.func,
                        crate::query::simple_type(other)
                    ))
                    .into());
                }
            });
        }
        Ok(out)
    }

    /// Writes the state version this batch produced.
    fn commit_store(&mut self) -> Result<StateReport, OperatorError> {
        let t = std::time::Instant::now();
        let stats = self.store.commit()?;
        Ok(StateReport {
            operator_name: "stateStoreSave".into(),
            num_rows_total: stats.total,
            num_rows_updated: stats.updated,
            num_rows_removed: stats.removed,
            num_rows_dropped_by_watermark: std::mem::take(&mut self.dropped),
            memory_used_bytes: self.store.memory_bytes(),
            commit_time_ms: t.elapsed().as_millis() as u64,
        })
    }

    fn to_batch(&self, rows: &[(&GroupKey, &AggValue)]) -> Result<RecordBatch, OperatorError> {
        let key_cols: Vec<ArrayRef> = match &self.key_converter {
            Some(conv) => {
                let parser = conv.parser();
                conv.convert_rows(rows.iter().map(|(k, _)| parser.parse(&k.values)))?
            }
            None => Vec::new(),
        };
        let mut cols: Vec<ArrayRef> = Vec::new();
        let mut next_key = 0;
        for g in &self.spec.group {
            match g {
                GroupColumn::Window(..) => {
                    let starts: TimestampMicrosecondArray = rows
                        .iter()
                        .map(|(k, _)| k.window.map(|w| w.0))
                        .collect::<TimestampMicrosecondArray>()
                        .with_timezone("UTC");
                    let ends: TimestampMicrosecondArray = rows
                        .iter()
                        .map(|(k, _)| k.window.map(|w| w.1))
                        .collect::<TimestampMicrosecondArray>()
                        .with_timezone("UTC");
                    cols.push(Arc::new(StructArray::new(
                        window_fields(),
                        vec![Arc::new(starts) as ArrayRef, Arc::new(ends)],
                        None,
                    )));
                }
                GroupColumn::Column(_) => {
                    let c = key_cols[next_key].clone();
                    let t = self.schema.field(cols.len()).data_type();
                    cols.push(if c.data_type() == t { c } else { cast(&c, t)? });
                    next_key += 1;
                }
            }
        }
        for (j, a) in self.spec.aggs.iter().enumerate() {
            let out_type = self.schema.field(cols.len()).data_type().clone();
            let values = rows.iter().map(|(_, v)| &v.0[j]);
            let col: ArrayRef = match (&self.inputs[j].1, a.func) {
                (Some(_), AggFunc::ApproxCountDistinct) => Arc::new(
                    values
                        .map(|v| match v {
                            Acc::Set(xs) => xs.len() as i64,
                            _ => 0,
                        })
                        .collect::<Int64Array>(),
                ),
                (Some(codec), AggFunc::CollectList | AggFunc::CollectSet) => {
                    let mut offsets = vec![0i32];
                    let mut items: Vec<&[u8]> = Vec::new();
                    for v in values {
                        match v {
                            Acc::List(xs) => items.extend(xs.iter().map(Vec::as_slice)),
                            Acc::Set(xs) => items.extend(xs.iter().map(Vec::as_slice)),
                            _ => {}
                        }
                        offsets.push(items.len() as i32);
                    }
                    let parser = codec.converter.parser();
                    let flat = codec
                        .converter
                        .convert_rows(items.iter().map(|b| parser.parse(b)))?;
                    let DataType::List(field) = &out_type else {
                        return Err(QueryError::Invalid(format!("{} is not a list", a.name)).into());
                    };
                    Arc::new(ListArray::try_new(
                        field.clone(),
                        OffsetBuffer::new(offsets.into()),
                        flat[0].clone(),
                        None,
                    )?)
                }
                (Some(codec), _) => {
                    let parser = codec.converter.parser();
                    let picked: Vec<&[u8]> = values
                        .map(|v| match v {
                            Acc::Extreme(Some(b)) | Acc::Pick(Some(b)) => b.as_slice(),
                            _ => codec.null.as_slice(),
                        })
                        .collect();
                    let c = codec
                        .converter
                        .convert_rows(picked.iter().map(|b| parser.parse(b)))?;
                    c[0].clone()
                }
                (None, _) => match &out_type {
                    DataType::Int64 => Arc::new(
                        values
                            .map(|v| match v {
                                Acc::Count(c) => Some(*c),
                                Acc::SumI(s) => *s,
                                _ => None,
                            })
                            .collect::<Int64Array>(),
                    ),
                    DataType::Float64 => Arc::new(
                        values
                            .map(|v| match v {
                                Acc::SumF(s) => *s,
                                Acc::Avg(s, c) if *c > 0 => Some(s / *c as f64),
                                _ => None,
                            })
                            .collect::<Float64Array>(),
                    ),
                    DataType::Decimal128(p, s) => {
                        let in_scale = match &self.inputs[j].0 {
                            Some(DataType::Decimal128(_, s)) => *s,
                            _ => *s,
                        };
                        let a: Decimal128Array = values
                            .map(|v| match v {
                                Acc::SumD(x) => x.map(Wide::get).filter(|x| fits(*x, *p)),
                                Acc::AvgD(sum, c) if *c > 0 => {
                                    avg_decimal(sum.get(), *c, in_scale, *s).filter(|x| fits(*x, *p))
                                }
                                _ => None,
                            })
                            .collect();
                        Arc::new(a.with_precision_and_scale(*p, *s)?)
                    }
                    other => {
                        return Err(QueryError::Invalid(format!(
                            "no result of type {} for {:?}",
                            crate::query::simple_type(other),
                            a.func
                        ))
                        .into());
                    }
                },
            };
            cols.push(col);
        }
        Ok(RecordBatch::try_new(self.schema.clone(), cols)?)
    }
}

/// The event time (µs) of a key that the watermark is compared with, if any: the window's end,
/// or the value of the grouping column `i` (decoded from the key's row format).
fn key_time(event_time: EventTimeKey, conv: Option<&RowConverter>, key: &GroupKey) -> Option<i64> {
    match event_time {
        EventTimeKey::None => None,
        EventTimeKey::Window => key.window.map(|(_, end)| end),
        EventTimeKey::Column(i) => {
            let conv = conv?;
            let parser = conv.parser();
            let cols = conv.convert_rows([parser.parse(&key.values)]).ok()?;
            let ts = cols.get(i)?.as_primitive_opt::<TimestampMicrosecondType>()?;
            ts.is_valid(0).then(|| ts.value(0))
        }
    }
}

/// Rows `indices` of `rows`, each as a JSON object (arrow's JSON writer), for the late-rows
/// table.
pub fn rows_to_json(rows: &RecordBatch, indices: &[u32]) -> Result<Vec<String>, OperatorError> {
    if indices.is_empty() {
        return Ok(Vec::new());
    }
    let idx = UInt32Array::from(indices.to_vec());
    let cols = rows
        .columns()
        .iter()
        .map(|c| take(c, &idx, None))
        .collect::<Result<Vec<_>, _>>()?;
    let picked = RecordBatch::try_new(rows.schema(), cols)?;
    let mut w = deltalake::arrow::json::LineDelimitedWriter::new(Vec::new());
    w.write(&picked)?;
    w.finish()?;
    let text = String::from_utf8_lossy(&w.into_inner()).into_owned();
    Ok(text.lines().map(str::to_string).collect())
}

/// Rows `indices` (ascending, numbered across the parts) of the batch in `parts`, as
/// [`rows_to_json`] gives them.
fn rows_to_json_in_parts(parts: &[RecordBatch], indices: &[u32]) -> Result<Vec<String>, OperatorError> {
    let mut out = Vec::with_capacity(indices.len());
    let (mut first, mut rest) = (0u32, indices);
    for part in parts {
        let end = first + part.num_rows() as u32;
        let n = rest.partition_point(|&i| i < end);
        let local: Vec<u32> = rest[..n].iter().map(|i| i - first).collect();
        out.extend(rows_to_json(part, &local)?);
        rest = &rest[n..];
        first = end;
    }
    Ok(out)
}

impl Operator for AggregateOp {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process_batch(
        &mut self,
        rows: RecordBatch,
        ctx: &mut BatchContext<'_>,
    ) -> Result<RecordBatch, OperatorError> {
        self.aggregate(
            rows.columns(),
            rows.num_rows(),
            |late| rows_to_json(&rows, late),
            ctx,
        )
    }

    /// Joins only the columns it reads (the grouping, the window's and the aggregates' inputs);
    /// a late row is read from its part.
    fn process_parts(
        &mut self,
        parts: Vec<RecordBatch>,
        schema: &SchemaRef,
        ctx: &mut BatchContext<'_>,
    ) -> Result<Vec<RecordBatch>, OperatorError> {
        let mut read: Vec<usize> = self.keys.clone();
        read.extend(self.window.map(|(c, _)| c));
        read.extend(self.spec.aggs.iter().filter_map(|a| a.input));
        let mut cols = Vec::with_capacity(schema.fields().len());
        for (c, f) in schema.fields().iter().enumerate() {
            cols.push(match read.contains(&c) {
                true => crate::operators::concat_column(&parts, c)?,
                // Never read (`aggregate` reads only the columns above).
                false => deltalake::arrow::array::new_empty_array(f.data_type()),
            });
        }
        let rows = parts.iter().map(RecordBatch::num_rows).sum();
        let out = self.aggregate(&cols, rows, |late| rows_to_json_in_parts(&parts, late), ctx)?;
        Ok(vec![out])
    }

    fn handle_watermark(&mut self, ctx: &mut BatchContext<'_>) -> Result<Option<RecordBatch>, OperatorError> {
        if !self.evicts() {
            return Ok(None);
        }
        let evict_us = ctx.thresholds.evict_ms.saturating_mul(1000);
        let (event_time, conv) = (self.spec.event_time, self.key_converter.as_ref());
        // Emitted in key order: windows by start, then the grouping values.
        let closed = self
            .store
            .remove_where(|k, _| key_time(event_time, conv, k).is_some_and(|t| t <= evict_us));
        match self.spec.mode {
            OutputMode::Append => Ok(Some(self.to_batch(&closed.in_key_order())?)),
            _ => Ok(None),
        }
    }

    fn commit(&mut self) -> Result<Option<StateReport>, OperatorError> {
        self.commit_store().map(Some)
    }

    fn runs_no_data_batches(&self) -> bool {
        self.evicts()
    }

    fn state_rows(&self) -> u64 {
        self.store.len() as u64
    }
}

impl AggregateOp {
    /// Aggregates a batch of `num_rows` rows given as its columns (`cols`, in the input's
    /// order; only those the aggregation reads need hold the rows) into the state; returns
    /// what update and complete mode emit now. `late_json` renders the given rows as JSON for
    /// the late-rows table.
    fn aggregate(
        &mut self,
        cols: &[ArrayRef],
        num_rows: usize,
        late_json: impl FnOnce(&[u32]) -> Result<Vec<String>, OperatorError>,
        ctx: &mut BatchContext<'_>,
    ) -> Result<RecordBatch, OperatorError> {
        let inputs = self.read_inputs(cols)?;
        let key_arrays: Vec<ArrayRef> = self.keys.iter().map(|k| cols[*k].clone()).collect();
        let key_rows = match &self.key_converter {
            Some(conv) => Some(conv.convert_columns(&key_arrays)?),
            None => None,
        };
        let window_col = self
            .window
            .as_ref()
            .map(|(c, w)| (cols[*c].as_primitive::<TimestampMicrosecondType>(), w));
        let late_us = ctx.thresholds.late_ms.saturating_mul(1000);
        let late = match self.spec.event_time {
            _ if !self.evicts() => LateRule::None,
            EventTimeKey::None => LateRule::None,
            EventTimeKey::Window => LateRule::Window(late_us),
            EventTimeKey::Column(i) => {
                match cols[self.keys[i]].as_primitive_opt::<TimestampMicrosecondType>() {
                    Some(times) => LateRule::KeyTime(times, late_us),
                    None => LateRule::None,
                }
            }
        };
        let grouping = Grouping::new(num_rows, key_rows.as_ref(), window_col, late);
        self.dropped += grouping.late_group_count();
        let mut columns: Vec<Column> = self
            .spec
            .aggs
            .iter()
            .zip(&inputs)
            .map(|(a, input)| grouping.fold(a.func, input))
            .collect();

        // Into the state: a group it holds folds the batch's accumulators in after its own.
        let funcs: Vec<AggFunc> = self.spec.aggs.iter().map(|a| a.func).collect();
        let update = self.spec.mode == OutputMode::Update;
        self.updated.clear();
        self.store.reserve(grouping.groups.len());
        for (g, &(window, kid)) in grouping.groups.iter().enumerate() {
            let values = key_rows.as_ref().map_or_else(KeyBytes::new, |k| {
                KeyBytes::from_slice(k.row(grouping.key_rows[kid as usize] as usize).data())
            });
            let key = GroupKey { window, values };
            if update {
                self.updated.push(key.clone());
            }
            let acc = AggValue(columns.iter_mut().map(|c| c.take(g)).collect());
            self.store.upsert(key, acc, |old, new| {
                for ((a, b), func) in old.0.iter_mut().zip(&new.0).zip(&funcs) {
                    merge(*func, a, b);
                }
            });
        }

        // The late rows, for the `<output>_late` table.
        let indices: Vec<u32> = grouping.late.iter().map(|l| l.row).collect();
        let json = late_json(&indices)?;
        for (l, row) in grouping.late.into_iter().zip(json) {
            ctx.late.push(LateRow {
                operator: "stateStoreSave",
                row,
                event_time_us: l.event_time_us,
                windows_missed: l.windows_missed,
                fully_dropped: l.fully,
            });
        }

        let out: Vec<(&GroupKey, &AggValue)> = match self.spec.mode {
            OutputMode::Update => by_key(
                self.updated
                    .iter()
                    .filter_map(|k| self.store.get(k).map(|v| (k, v))),
            ),
            OutputMode::Complete => self.store.iter().collect(),
            OutputMode::Append => Vec::new(),
        };
        self.to_batch(&out)
    }

    /// The input schema.
    pub fn input_schema(&self) -> &SchemaRef {
        &self.input_schema
    }

    /// How many plain grouping columns and whether there is a window: the upsert key of update
    /// mode is the grouping columns.
    pub fn spec(&self) -> &AggregateSpec {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::{Float64Array, Int32Array};

    use super::*;
    use crate::checkpoint::Durability;
    use crate::operators::Thresholds;

    /// A batch given in parts aggregates as the same batch given whole: the same output, the
    /// same late rows (each read from its own part) and the same count of late groups — also
    /// with a part holding no row and late rows in more than one part.
    #[test]
    fn a_batch_in_parts_aggregates_as_the_batch_whole() {
        let minute = 60_000_000i64;
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", timestamp_type(), true),
            Field::new("user", DataType::Int32, true),
            Field::new("note", DataType::Utf8, true),
            Field::new("value", DataType::Float64, true),
        ]));
        let rows = 500i64;
        let whole = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(
                    TimestampMicrosecondArray::from_iter((0..rows).map(|i| Some((i * 37 % 40) * minute)))
                        .with_timezone("UTC"),
                ),
                Arc::new(Int32Array::from_iter(
                    (0..rows).map(|i| (i % 7 != 0).then_some((i % 5) as i32)),
                )),
                Arc::new(deltalake::arrow::array::StringArray::from_iter(
                    (0..rows).map(|i| Some(format!("row {i}"))),
                )),
                Arc::new(Float64Array::from_iter((0..rows).map(|i| Some(i as f64 * 0.1)))),
            ],
        )
        .unwrap();
        let spec = AggregateSpec {
            group: vec![
                GroupColumn::Window(
                    0,
                    WindowSpec {
                        duration: 10 * minute,
                        slide: 5 * minute,
                        start: 0,
                    },
                ),
                GroupColumn::Column(1),
            ],
            aggs: vec![
                AggCall {
                    func: AggFunc::CountStar,
                    input: None,
                    name: "n".into(),
                },
                AggCall {
                    func: AggFunc::Avg,
                    input: Some(3),
                    name: "avg".into(),
                },
            ],
            mode: OutputMode::Update,
            event_time: EventTimeKey::Window,
        };
        let conf = std::collections::BTreeMap::new();
        // Windows ending at or before minute 15 are late.
        let thresholds = Thresholds {
            late_ms: 15 * 60_000,
            evict_ms: 15 * 60_000,
        };
        // One fresh operator fed the batch by `feed`: what it emitted, its late rows, and the
        // late groups its commit counted.
        let run = |feed: &dyn Fn(&mut AggregateOp, &mut BatchContext<'_>) -> Vec<RecordBatch>| {
            let dir = tempfile::tempdir().unwrap();
            let mut op = AggregateOp::open(
                schema.clone(),
                spec.clone(),
                dir.path(),
                0,
                Durability::ProcessCrash,
            )
            .unwrap();
            let mut ctx = BatchContext::new(0, 0, thresholds, &conf);
            let out = feed(&mut op, &mut ctx);
            let report = op.commit().unwrap().unwrap();
            (out, ctx.late, report.num_rows_dropped_by_watermark)
        };
        let (want, want_late, want_dropped) =
            run(&|op, ctx| vec![op.process_batch(whole.clone(), ctx).unwrap()]);
        assert!(want[0].num_rows() > 0 && want_late.len() > 20 && want_dropped > 0);
        let parts = vec![
            whole.slice(0, 120),
            whole.slice(120, 0),
            whole.slice(120, 300),
            whole.slice(420, 80),
        ];
        let (out, late, dropped) = run(&|op, ctx| op.process_parts(parts.clone(), &schema, ctx).unwrap());
        assert_eq!(out, want);
        assert_eq!(late, want_late);
        assert_eq!(dropped, want_dropped);
    }
}
