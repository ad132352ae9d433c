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

use std::collections::{BTreeMap, BTreeSet};
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
use deltalake::arrow::row::{RowConverter, Rows, SortField};

use super::window::windows_of;
use super::{BatchContext, LateRow, Operator, OperatorError, StateReport};
use crate::event::timestamp_type;
use crate::query::{OutputMode, QueryError, WindowSpec};
use crate::state::{Codec, StateStore, enc};

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

/// A state key: the window (if grouped by one) and the other grouping values in row format.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    /// `[start, end)` in µs.
    pub window: Option<(i64, i64)>,
    /// The plain grouping values, as arrow's row format encodes them.
    pub values: Vec<u8>,
}

impl Codec for GroupKey {
    fn encode(&self, out: &mut Vec<u8>) {
        match self.window {
            Some((s, e)) => {
                out.push(1);
                enc::i64(out, s);
                enc::i64(out, e);
            }
            None => out.push(0),
        }
        enc::bytes(out, &self.values);
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let window = match enc::read_u8(input)? {
            1 => Some((enc::read_i64(input)?, enc::read_i64(input)?)),
            0 => None,
            _ => return None,
        };
        Some(Self {
            window,
            values: enc::read_bytes(input)?,
        })
    }
    fn mem_size(&self) -> usize {
        48 + self.values.len()
    }
}

/// One aggregate's running value.
#[derive(Debug, Clone, PartialEq)]
pub enum Acc {
    /// count
    Count(i64),
    /// sum of integers (wrapping, as Spark's non-ANSI `long` sum); `None` before a non-null value
    SumI(Option<i64>),
    /// sum of doubles
    SumF(Option<f64>),
    /// sum of decimals (unscaled, at the result scale); `None` before a value
    SumD(Option<i128>),
    /// avg of doubles: sum and count
    Avg(f64, i64),
    /// avg of decimals: unscaled sum at the input scale and count
    AvgD(i128, i64),
    /// min/max of any type: the value in row format
    Extreme(Option<Vec<u8>>),
    /// first/last of any type: `Some(value)` once seen (the value itself may encode null)
    Pick(Option<Vec<u8>>),
    /// collect_list: values in row format, in order
    List(Vec<Vec<u8>>),
    /// collect_set: distinct values in row format, sorted
    Set(BTreeSet<Vec<u8>>),
}

/// The aggregates of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct AggValue(pub Vec<Acc>);

impl Codec for AggValue {
    fn encode(&self, out: &mut Vec<u8>) {
        enc::u32(out, self.0.len() as u32);
        for a in &self.0 {
            match a {
                Acc::Count(c) => {
                    out.push(0);
                    enc::i64(out, *c);
                }
                Acc::SumI(v) => {
                    out.push(1);
                    enc::opt_i64(out, *v);
                }
                Acc::SumF(v) => {
                    out.push(2);
                    enc::opt_i64(out, v.map(|f| f.to_bits() as i64));
                }
                Acc::SumD(v) => {
                    out.push(3);
                    out.push(u8::from(v.is_some()));
                    out.extend_from_slice(&v.unwrap_or(0).to_le_bytes());
                }
                Acc::Avg(s, c) => {
                    out.push(4);
                    enc::i64(out, s.to_bits() as i64);
                    enc::i64(out, *c);
                }
                Acc::AvgD(s, c) => {
                    out.push(5);
                    out.extend_from_slice(&s.to_le_bytes());
                    enc::i64(out, *c);
                }
                Acc::Extreme(v) | Acc::Pick(v) => {
                    out.push(if matches!(a, Acc::Extreme(_)) { 6 } else { 7 });
                    out.push(u8::from(v.is_some()));
                    if let Some(b) = v {
                        enc::bytes(out, b);
                    }
                }
                Acc::List(vs) => {
                    out.push(8);
                    enc::u32(out, vs.len() as u32);
                    vs.iter().for_each(|b| enc::bytes(out, b));
                }
                Acc::Set(vs) => {
                    out.push(9);
                    enc::u32(out, vs.len() as u32);
                    vs.iter().for_each(|b| enc::bytes(out, b));
                }
            }
        }
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let n = enc::read_u32(input)?;
        let mut v = Vec::with_capacity(n.min(64) as usize);
        for _ in 0..n {
            let tag = enc::read_u8(input)?;
            v.push(match tag {
                0 => Acc::Count(enc::read_i64(input)?),
                1 => Acc::SumI(enc::read_opt_i64(input)?),
                2 => Acc::SumF(enc::read_opt_i64(input)?.map(|b| f64::from_bits(b as u64))),
                3 => {
                    let some = enc::read_u8(input)? == 1;
                    let x = enc::read_i128(input)?;
                    Acc::SumD(some.then_some(x))
                }
                4 => {
                    let s = f64::from_bits(enc::read_i64(input)? as u64);
                    Acc::Avg(s, enc::read_i64(input)?)
                }
                5 => {
                    let s = enc::read_i128(input)?;
                    Acc::AvgD(s, enc::read_i64(input)?)
                }
                6 | 7 => {
                    let value = match enc::read_u8(input)? {
                        1 => Some(enc::read_bytes(input)?),
                        _ => None,
                    };
                    if tag == 6 {
                        Acc::Extreme(value)
                    } else {
                        Acc::Pick(value)
                    }
                }
                8 | 9 => {
                    let m = enc::read_u32(input)?;
                    let mut items = Vec::with_capacity(m.min(1024) as usize);
                    for _ in 0..m {
                        items.push(enc::read_bytes(input)?);
                    }
                    if tag == 8 {
                        Acc::List(items)
                    } else {
                        Acc::Set(items.into_iter().collect())
                    }
                }
                _ => return None,
            });
        }
        Some(Self(v))
    }
    fn mem_size(&self) -> usize {
        24 + self
            .0
            .iter()
            .map(|a| match a {
                Acc::Extreme(Some(b)) | Acc::Pick(Some(b)) => 32 + b.len(),
                Acc::List(vs) => 32 + vs.iter().map(|b| 24 + b.len()).sum::<usize>(),
                Acc::Set(vs) => 32 + vs.iter().map(|b| 40 + b.len()).sum::<usize>(),
                _ => 24,
            })
            .sum::<usize>()
    }
}

/// How one aggregate reads its input column in a batch.
enum Input {
    Star,
    I64(Int64Array),
    F64(Float64Array),
    Dec(Decimal128Array),
    Rows(Rows, ArrayRef),
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
    /// Groups the batch put, in key order (update mode emits them).
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
            store: StateStore::open(state_dir, version, 10)?,
            schema: Arc::new(Schema::new(fields)),
            spec,
            updated: Vec::new(),
            dropped: 0,
        })
    }

    fn evicts(&self) -> bool {
        self.spec.mode != OutputMode::Complete && self.spec.event_time != EventTimeKey::None
    }

    /// The event time (µs) of a key that the watermark is compared with, if any.
    fn key_time(&self, key: &GroupKey) -> Option<i64> {
        match self.spec.event_time {
            EventTimeKey::None => None,
            EventTimeKey::Window => key.window.map(|(_, end)| end),
            EventTimeKey::Column(i) => {
                let conv = self.key_converter.as_ref()?;
                let parser = conv.parser();
                let cols = conv.convert_rows([parser.parse(&key.values)]).ok()?;
                let ts = cols.get(i)?.as_primitive_opt::<TimestampMicrosecondType>()?;
                ts.is_valid(0).then(|| ts.value(0))
            }
        }
    }

    fn read_inputs(&self, rows: &RecordBatch) -> Result<Vec<Input>, OperatorError> {
        let mut out = Vec::with_capacity(self.spec.aggs.len());
        for (a, (read_as, codec)) in self.spec.aggs.iter().zip(&self.inputs) {
            let (Some(c), Some(t)) = (a.input, read_as) else {
                out.push(Input::Star);
                continue;
            };
            let col = cast(rows.column(c), t)?;
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

    /// The accumulator of aggregate `i` over the single row `r`.
    fn row_acc(&self, i: usize, r: usize, inputs: &[Input]) -> Acc {
        let func = self.spec.aggs[i].func;
        let input = &inputs[i];
        let valid = match input {
            Input::Star => true,
            Input::I64(a) => a.is_valid(r),
            Input::F64(a) => a.is_valid(r),
            Input::Dec(a) => a.is_valid(r),
            Input::Rows(_, a) => a.is_valid(r),
        };
        match (func, input) {
            (AggFunc::CountStar, _) => Acc::Count(1),
            (AggFunc::Count, _) => Acc::Count(i64::from(valid)),
            (AggFunc::Sum, Input::I64(a)) => Acc::SumI(valid.then(|| a.value(r))),
            (AggFunc::Sum, Input::F64(a)) => Acc::SumF(valid.then(|| a.value(r))),
            (AggFunc::Sum, Input::Dec(a)) => Acc::SumD(valid.then(|| a.value(r))),
            (AggFunc::Avg, Input::F64(a)) => match valid {
                true => Acc::Avg(a.value(r), 1),
                false => Acc::Avg(0.0, 0),
            },
            (AggFunc::Avg, Input::Dec(a)) => match valid {
                true => Acc::AvgD(a.value(r), 1),
                false => Acc::AvgD(0, 0),
            },
            (AggFunc::Min | AggFunc::Max, Input::Rows(rows, _)) => {
                Acc::Extreme(valid.then(|| rows.row(r).data().to_vec()))
            }
            (AggFunc::First | AggFunc::Last, Input::Rows(rows, _)) => {
                Acc::Pick(Some(rows.row(r).data().to_vec()))
            }
            (AggFunc::CollectList, Input::Rows(rows, _)) => Acc::List(if valid {
                vec![rows.row(r).data().to_vec()]
            } else {
                Vec::new()
            }),
            (AggFunc::CollectSet | AggFunc::ApproxCountDistinct, Input::Rows(rows, _)) => {
                Acc::Set(if valid {
                    BTreeSet::from([rows.row(r).data().to_vec()])
                } else {
                    BTreeSet::new()
                })
            }
            // `read_inputs` pairs every function with the input kind it folds.
            _ => Acc::Count(0),
        }
    }

    /// Folds `b` (later rows) into `a` (earlier rows) for aggregate `i`.
    fn merge(&self, i: usize, a: &mut Acc, b: &Acc) {
        let func = self.spec.aggs[i].func;
        match (a, b) {
            (Acc::Count(x), Acc::Count(y)) => *x += y,
            (Acc::SumI(x), Acc::SumI(Some(y))) => *x = Some(x.map_or(*y, |x| x.wrapping_add(*y))),
            (Acc::SumF(x), Acc::SumF(Some(y))) => *x = Some(x.map_or(*y, |x| x + y)),
            (Acc::SumD(x), Acc::SumD(Some(y))) => *x = Some(x.map_or(*y, |x| x.wrapping_add(*y))),
            (Acc::Avg(s, c), Acc::Avg(s2, c2)) => {
                *s += s2;
                *c += c2;
            }
            (Acc::AvgD(s, c), Acc::AvgD(s2, c2)) => {
                *s = s.wrapping_add(*s2);
                *c += c2;
            }
            (Acc::Extreme(x), Acc::Extreme(Some(y))) => {
                let replace = match x {
                    None => true,
                    Some(x) if func == AggFunc::Min => y < x,
                    Some(x) => y > x,
                };
                if replace {
                    *x = Some(y.clone());
                }
            }
            (Acc::Pick(x), Acc::Pick(y)) if x.is_none() || (func == AggFunc::Last && y.is_some()) => {
                *x = y.clone();
            }
            (Acc::List(x), Acc::List(y)) => x.extend(y.iter().cloned()),
            (Acc::Set(x), Acc::Set(y)) => x.extend(y.iter().cloned()),
            _ => {}
        }
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

    fn to_batch(&self, rows: &[(GroupKey, AggValue)]) -> Result<RecordBatch, OperatorError> {
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
                                Acc::SumD(x) => x.filter(|x| fits(*x, *p)),
                                Acc::AvgD(sum, c) if *c > 0 => {
                                    avg_decimal(*sum, *c, in_scale, *s).filter(|x| fits(*x, *p))
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

/// Windows `[start, end)` in µs.
type Windows = Vec<(i64, i64)>;
/// A late input row: its index, the windows it missed, and whether it missed all of them.
type LateInput = (u32, Windows, bool);

/// True when `x` (unscaled) has at most `precision` digits: a decimal sum that overflows its
/// type is null, as Spark's non-ANSI `sum`.
fn fits(x: i128, precision: u8) -> bool {
    let limit = 10i128.checked_pow(u32::from(precision)).unwrap_or(i128::MAX);
    x.unsigned_abs() < limit.unsigned_abs()
}

/// `sum / count` of decimals at `in_scale`, to `out_scale`, rounded half up (Spark's
/// `Average` on decimals divides at a higher precision and rounds HALF_UP).
fn avg_decimal(sum: i128, count: i64, in_scale: i8, out_scale: i8) -> Option<i128> {
    let shift = u32::try_from(i32::from(out_scale) - i32::from(in_scale)).ok()?;
    let num = sum.checked_mul(10i128.checked_pow(shift)?)?;
    let den = i128::from(count);
    let (q, r) = (num / den, num % den);
    // Half up, away from zero.
    Some(if (r.abs() * 2) >= den.abs() {
        q + num.signum()
    } else {
        q
    })
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

impl Operator for AggregateOp {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process_batch(
        &mut self,
        rows: RecordBatch,
        ctx: &mut BatchContext<'_>,
    ) -> Result<RecordBatch, OperatorError> {
        let cols = rows.columns();
        let inputs = self.read_inputs(&rows)?;
        let key_arrays: Vec<ArrayRef> = self.keys.iter().map(|k| cols[*k].clone()).collect();
        let key_rows = match &self.key_converter {
            Some(conv) => Some(conv.convert_columns(&key_arrays)?),
            None => None,
        };
        let window_col = self
            .window
            .as_ref()
            .map(|(c, w)| (cols[*c].as_primitive::<TimestampMicrosecondType>(), w));
        // This batch's groups in first-seen order — (window, a row of the group, accumulators)
        // — each folded over its rows in row order, as a sequential fold would.
        type Window = Option<(i64, i64)>;
        let late_us = ctx.thresholds.late_ms.saturating_mul(1000);
        let evicts = self.evicts();
        let key_is_time = matches!(self.spec.event_time, EventTimeKey::Column(_));
        let mut index: super::LookupMap<(Window, &[u8]), usize> =
            super::LookupMap::with_capacity_and_hasher(rows.num_rows().min(1 << 16), Default::default());
        let mut groups: Vec<(Window, usize, Vec<Acc>)> = Vec::new();
        // Late input rows: (row, windows missed, every window missed).
        let mut late_rows: Vec<LateInput> = Vec::new();
        let mut late_groups: BTreeSet<(Window, Vec<u8>)> = BTreeSet::new();
        for r in 0..rows.num_rows() {
            let key: &[u8] = key_rows.as_ref().map_or(&[], |k| k.row(r).data());
            let mut add = |window: Window| match index.entry((window, key)) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(groups.len());
                    let acc = (0..self.spec.aggs.len())
                        .map(|i| self.row_acc(i, r, &inputs))
                        .collect();
                    groups.push((window, r, acc));
                }
                std::collections::hash_map::Entry::Occupied(o) => {
                    let g = *o.get();
                    for i in 0..self.spec.aggs.len() {
                        let b = self.row_acc(i, r, &inputs);
                        let mut a = std::mem::replace(&mut groups[g].2[i], Acc::Count(0));
                        self.merge(i, &mut a, &b);
                        groups[g].2[i] = a;
                    }
                }
            };
            match window_col {
                Some((col, w)) => {
                    // Spark drops rows whose event time is null: they have no window (R8.4).
                    if col.is_null(r) {
                        continue;
                    }
                    let mut missed = Vec::new();
                    let mut all = 0;
                    for win in windows_of(col.value(r), w) {
                        all += 1;
                        if evicts && self.spec.event_time == EventTimeKey::Window && win.1 <= late_us {
                            missed.push(win);
                            late_groups.insert((Some(win), key.to_vec()));
                        } else {
                            add(Some(win));
                        }
                    }
                    if !missed.is_empty() {
                        let fully = missed.len() == all;
                        late_rows.push((r as u32, missed, fully));
                    }
                }
                None => add(None),
            }
        }
        let mut partial: BTreeMap<GroupKey, Vec<Acc>> = BTreeMap::new();
        let mut late_by_key: Vec<(u32, GroupKey)> = Vec::new();
        for (window, r, acc) in groups {
            let values = key_rows
                .as_ref()
                .map_or_else(Vec::new, |k| k.row(r).data().to_vec());
            partial.insert(GroupKey { window, values }, acc);
        }
        // A plain timestamp key with a watermark: a group is late when its key time is at or
        // before the late threshold; every row of it is late.
        if key_is_time && evicts {
            let late_keys: BTreeSet<GroupKey> = partial
                .keys()
                .filter(|k| self.key_time(k).is_some_and(|t| t <= late_us))
                .cloned()
                .collect();
            if !late_keys.is_empty() {
                for r in 0..rows.num_rows() {
                    let values = key_rows
                        .as_ref()
                        .map_or_else(Vec::new, |k| k.row(r).data().to_vec());
                    let k = GroupKey { window: None, values };
                    if late_keys.contains(&k) {
                        late_by_key.push((r as u32, k));
                    }
                }
                for k in &late_keys {
                    partial.remove(k);
                }
                self.dropped += late_keys.len() as u64;
            }
        }
        self.dropped += late_groups.len() as u64;

        self.updated.clear();
        for (key, acc) in partial {
            let merged = match self.store.get(&key) {
                Some(old) => {
                    let mut m = old.0.clone();
                    for (i, (a, b)) in m.iter_mut().zip(&acc).enumerate() {
                        self.merge(i, a, b);
                    }
                    m
                }
                None => acc,
            };
            self.store.put(key.clone(), AggValue(merged));
            self.updated.push(key);
        }

        // The late rows, for the `<output>_late` table.
        let window_time = |r: u32| window_col.map(|(c, _)| c.value(r as usize));
        let mut all_late: Vec<(u32, Windows, bool, Option<i64>)> = late_rows
            .into_iter()
            .map(|(r, m, f)| (r, m, f, window_time(r)))
            .collect();
        for (r, k) in late_by_key {
            all_late.push((r, Vec::new(), true, self.key_time(&k)));
        }
        all_late.sort_by_key(|l| l.0);
        let json = rows_to_json(&rows, &all_late.iter().map(|l| l.0).collect::<Vec<_>>())?;
        for ((_, missed, fully, t), row) in all_late.into_iter().zip(json) {
            ctx.late.push(LateRow {
                operator: "stateStoreSave",
                row,
                event_time_us: t,
                windows_missed: missed,
                fully_dropped: fully,
            });
        }

        let out: Vec<(GroupKey, AggValue)> = match self.spec.mode {
            OutputMode::Update => self
                .updated
                .iter()
                .filter_map(|k| self.store.get(k).map(|v| (k.clone(), v.clone())))
                .collect(),
            OutputMode::Complete => self.store.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            OutputMode::Append => Vec::new(),
        };
        self.to_batch(&out)
    }

    fn handle_watermark(&mut self, ctx: &mut BatchContext<'_>) -> Result<Option<RecordBatch>, OperatorError> {
        if !self.evicts() {
            return Ok(None);
        }
        let evict_us = ctx.thresholds.evict_ms.saturating_mul(1000);
        let closed: Vec<GroupKey> = match self.spec.event_time {
            // Keys sort by window start; with a fixed duration, ends sort the same way.
            EventTimeKey::Window => self
                .store
                .iter()
                .map(|(k, _)| k)
                .take_while(|k| k.window.is_some_and(|(_, end)| end <= evict_us))
                .cloned()
                .collect(),
            _ => self
                .store
                .iter()
                .map(|(k, _)| k)
                .filter(|k| self.key_time(k).is_some_and(|t| t <= evict_us))
                .cloned()
                .collect(),
        };
        let mut emitted = Vec::new();
        for k in closed {
            if let Some(v) = self.store.remove(&k)
                && self.spec.mode == OutputMode::Append
            {
                emitted.push((k, v));
            }
        }
        match self.spec.mode {
            OutputMode::Append => Ok(Some(self.to_batch(&emitted)?)),
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
    use super::*;

    #[test]
    fn state_codecs_round_trip() {
        let k = GroupKey {
            window: Some((-5, 10)),
            values: vec![1, 2, 3, 0, 255],
        };
        let v = AggValue(vec![
            Acc::Count(3),
            Acc::Avg(1.5, 2),
            Acc::SumI(None),
            Acc::SumD(Some(-12345678901234567890)),
            Acc::AvgD(77, 2),
            Acc::Extreme(Some(vec![9, 9])),
            Acc::Pick(None),
            Acc::List(vec![vec![1], vec![]]),
            Acc::Set(BTreeSet::from([vec![2], vec![1]])),
            Acc::SumF(Some(f64::NAN)),
        ]);
        let mut buf = Vec::new();
        k.encode(&mut buf);
        v.encode(&mut buf);
        let mut input = buf.as_slice();
        assert_eq!(GroupKey::decode(&mut input), Some(k));
        let back = AggValue::decode(&mut input).unwrap();
        assert_eq!(back.0[..9], v.0[..9]);
        assert!(matches!(back.0[9], Acc::SumF(Some(f)) if f.is_nan()));
        assert!(input.is_empty());
    }

    #[test]
    fn decimal_average_rounds_half_up() {
        // (1.00 + 2.01) / 2 = 1.505 → 1.5050 at scale 4; 1/3 at scale 2 → 0.33.
        assert_eq!(avg_decimal(301, 2, 2, 4), Some(15050));
        assert_eq!(avg_decimal(100, 3, 2, 2), Some(33));
        assert_eq!(avg_decimal(-5, 2, 0, 0), Some(-3), "half away from zero");
        assert!(fits(99_999, 5) && !fits(100_000, 5));
    }
}
