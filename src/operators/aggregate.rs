//! Stateful (windowed) aggregation with Spark 3.5's semantics (R7.5–R7.7, R9.2, §17).
//!
//! Per batch:
//! 1. every input row is aggregated per (window, group key) into a batch-local partial — one
//!    event counts in each of its sliding windows;
//! 2. with a watermark on the window column (and not in complete mode), a partial group whose
//!    `window.end <= late threshold` (the *previous* batch's watermark) is dropped and counted in
//!    `numRowsDroppedByWatermark` — one per (window, key), as Spark counts its pre-aggregated
//!    rows; other groups merge into the state store;
//! 3. output by mode — **update**: every group the batch put, then groups with
//!    `window.end <= eviction threshold` (this batch's watermark) are removed silently;
//!    **append**: groups with `window.end <= eviction threshold` are emitted once and removed;
//!    **complete**: every group in the state, nothing ever removed.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use deltalake::arrow::array::{
    Array, ArrayRef, AsArray, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    StructArray, TimestampMicrosecondArray,
};
use deltalake::arrow::datatypes::{
    DataType, Field, Fields, Float64Type, Int32Type, Schema, SchemaRef, TimestampMicrosecondType,
};
use deltalake::arrow::row::{RowConverter, SortField};

use super::window::windows_of;
use super::{OperatorError, Thresholds};
use crate::event::timestamp_type;
use crate::query::{AggFunc, Aggregation, OutputMode, Query, WindowSpec};
use crate::state::{Codec, CommitStats, StateStore, enc};

/// One grouping value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyValue {
    /// An int column's value.
    Int(i64),
    /// A string column's value.
    Str(String),
}

/// A state key: the window (if grouped by one) and the grouping values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    /// `[start, end)` in µs.
    pub window: Option<(i64, i64)>,
    /// The other grouping columns' values, in order.
    pub values: Vec<KeyValue>,
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
        out.push(self.values.len() as u8);
        for v in &self.values {
            match v {
                KeyValue::Int(i) => {
                    out.push(0);
                    enc::i64(out, *i);
                }
                KeyValue::Str(s) => {
                    out.push(1);
                    enc::str(out, s);
                }
            }
        }
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let window = match enc::read_u8(input)? {
            1 => Some((enc::read_i64(input)?, enc::read_i64(input)?)),
            0 => None,
            _ => return None,
        };
        let n = enc::read_u8(input)?;
        let mut values = Vec::with_capacity(n as usize);
        for _ in 0..n {
            values.push(match enc::read_u8(input)? {
                0 => KeyValue::Int(enc::read_i64(input)?),
                1 => KeyValue::Str(enc::read_str(input)?),
                _ => return None,
            });
        }
        Some(Self { window, values })
    }
    fn mem_size(&self) -> usize {
        40 + self
            .values
            .iter()
            .map(|v| match v {
                KeyValue::Int(_) => 16,
                KeyValue::Str(s) => 16 + s.len(),
            })
            .sum::<usize>()
    }
}

/// One aggregate's running value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Acc {
    /// count
    Count(i64),
    /// sum of doubles
    SumF(f64),
    /// sum of ints
    SumI(i64),
    /// avg: sum and count
    Avg(f64, i64),
    /// min/max of doubles
    MinF(f64),
    /// max of doubles
    MaxF(f64),
    /// min of ints
    MinI(i64),
    /// max of ints
    MaxI(i64),
}

impl Acc {
    fn merge(&mut self, other: &Acc) {
        match (self, other) {
            (Acc::Count(a), Acc::Count(b)) | (Acc::SumI(a), Acc::SumI(b)) => *a += b,
            (Acc::SumF(a), Acc::SumF(b)) => *a += b,
            (Acc::Avg(s, c), Acc::Avg(s2, c2)) => {
                *s += s2;
                *c += c2;
            }
            (Acc::MinF(a), Acc::MinF(b)) => *a = a.min(*b),
            (Acc::MaxF(a), Acc::MaxF(b)) => *a = a.max(*b),
            (Acc::MinI(a), Acc::MinI(b)) => *a = (*a).min(*b),
            (Acc::MaxI(a), Acc::MaxI(b)) => *a = (*a).max(*b),
            // Accumulators of one key always come from the same aggregate list.
            _ => {}
        }
    }
}

/// The aggregates of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct AggValue(pub Vec<Acc>);

impl Codec for AggValue {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.0.len() as u8);
        for a in &self.0 {
            let (tag, x, y): (u8, i64, i64) = match *a {
                Acc::Count(c) => (0, c, 0),
                Acc::SumF(f) => (1, f.to_bits() as i64, 0),
                Acc::SumI(i) => (2, i, 0),
                Acc::Avg(s, c) => (3, s.to_bits() as i64, c),
                Acc::MinF(f) => (4, f.to_bits() as i64, 0),
                Acc::MaxF(f) => (5, f.to_bits() as i64, 0),
                Acc::MinI(i) => (6, i, 0),
                Acc::MaxI(i) => (7, i, 0),
            };
            out.push(tag);
            enc::i64(out, x);
            if tag == 3 {
                enc::i64(out, y);
            }
        }
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let n = enc::read_u8(input)?;
        let mut v = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let tag = enc::read_u8(input)?;
            let x = enc::read_i64(input)?;
            let f = f64::from_bits(x as u64);
            v.push(match tag {
                0 => Acc::Count(x),
                1 => Acc::SumF(f),
                2 => Acc::SumI(x),
                3 => Acc::Avg(f, enc::read_i64(input)?),
                4 => Acc::MinF(f),
                5 => Acc::MaxF(f),
                6 => Acc::MinI(x),
                7 => Acc::MaxI(x),
                _ => return None,
            });
        }
        Some(Self(v))
    }
    fn mem_size(&self) -> usize {
        24 + 24 * self.0.len()
    }
}

/// A column read as a grouping key.
#[derive(Debug, Clone, Copy)]
enum KeyCol {
    Int(usize),
    Str(usize),
}

/// An aggregate's input.
#[derive(Debug, Clone, Copy)]
enum AggInput {
    Star,
    F64(usize),
    I32(usize),
}

/// What one batch of the aggregation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AggregateOutput {
    /// The rows the batch emits.
    pub rows: Option<RecordBatch>,
    /// Late (window, key) groups dropped.
    pub dropped_by_watermark: u64,
}

/// The stateful aggregation operator.
#[derive(Debug)]
pub struct AggregateOp {
    spec: Aggregation,
    mode: OutputMode,
    /// Lateness and eviction apply: a watermark on the grouping window's column.
    evicts: bool,
    window_col: Option<usize>,
    window: Option<WindowSpec>,
    keys: Vec<KeyCol>,
    inputs: Vec<(AggFunc, AggInput)>,
    store: StateStore<GroupKey, AggValue>,
    schema: SchemaRef,
}

/// The Arrow type of the `window` column.
pub fn window_type() -> DataType {
    DataType::Struct(window_fields())
}

fn window_fields() -> Fields {
    Fields::from(vec![
        Field::new("start", timestamp_type(), true),
        Field::new("end", timestamp_type(), true),
    ])
}

impl AggregateOp {
    /// Opens the operator for `query` (which must be an aggregation) with its state at `version`.
    pub fn open(
        query: &Query,
        spec: &Aggregation,
        state_dir: &Path,
        version: u64,
    ) -> Result<Self, OperatorError> {
        let input = query.input_schema();
        let idx = |name: &str| {
            input.index_of(name).map_err(|_| {
                OperatorError::Query(crate::query::QueryError::Invalid(format!(
                    "unknown column `{name}`"
                )))
            })
        };
        let mut fields = Vec::new();
        let (window_col, window) = match &spec.window {
            Some((col, w)) => {
                fields.push(Field::new("window", window_type(), true));
                (Some(idx(col)?), Some(*w))
            }
            None => (None, None),
        };
        let mut keys = Vec::new();
        for k in &spec.keys {
            let i = idx(k)?;
            let f = input.field(i);
            keys.push(match f.data_type() {
                DataType::Int32 => KeyCol::Int(i),
                _ => KeyCol::Str(i),
            });
            fields.push(f.as_ref().clone());
        }
        let mut inputs = Vec::new();
        for e in &spec.aggs {
            let (input_kind, in_type) = match &e.column {
                None => (AggInput::Star, DataType::Int64),
                Some(c) => {
                    let i = idx(c)?;
                    match input.field(i).data_type() {
                        DataType::Float64 => (AggInput::F64(i), DataType::Float64),
                        DataType::Int32 => (AggInput::I32(i), DataType::Int32),
                        _ => (AggInput::Star, DataType::Int64),
                    }
                }
            };
            let out_type = match (e.func, &in_type) {
                (AggFunc::Count, _) => DataType::Int64,
                (AggFunc::Avg, _) => DataType::Float64,
                (AggFunc::Sum, DataType::Int32) => DataType::Int64,
                (AggFunc::Sum, _) => DataType::Float64,
                (_, t) => t.clone(),
            };
            let input_kind = if e.func == AggFunc::Count {
                AggInput::Star
            } else {
                input_kind
            };
            inputs.push((e.func, input_kind));
            fields.push(Field::new(&e.alias, out_type, true));
        }
        let evicts = query.output_mode != OutputMode::Complete
            && matches!((&query.watermark, &spec.window), (Some(w), Some((c, _))) if &w.column == c);
        Ok(Self {
            spec: spec.clone(),
            mode: query.output_mode,
            evicts,
            window_col,
            window,
            keys,
            inputs,
            store: StateStore::open(state_dir, version, 10)?,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The result schema: `window` (if any), the grouping columns, the aggregates.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// True when a watermark advance can make this operator emit or evict (Spark's
    /// `shouldRunAnotherBatch`: append or update mode with a watermark on the window).
    pub fn evicts(&self) -> bool {
        self.evicts
    }

    /// Keys in the state.
    pub fn state_rows(&self) -> u64 {
        self.store.len() as u64
    }

    /// Approximate bytes the state holds.
    pub fn state_memory(&self) -> u64 {
        self.store.memory_bytes()
    }

    /// The accumulator of aggregate `i` over the single row `row`.
    fn row_acc(&self, i: usize, row: usize, cols: &[ArrayRef]) -> Acc {
        let fv = |c: usize| cols[c].as_primitive::<Float64Type>().value(row);
        let iv = |c: usize| i64::from(cols[c].as_primitive::<Int32Type>().value(row));
        match self.inputs[i] {
            (AggFunc::Count, _) | (_, AggInput::Star) => Acc::Count(1),
            (AggFunc::Sum, AggInput::F64(c)) => Acc::SumF(fv(c)),
            (AggFunc::Sum, AggInput::I32(c)) => Acc::SumI(iv(c)),
            (AggFunc::Avg, AggInput::F64(c)) => Acc::Avg(fv(c), 1),
            (AggFunc::Avg, AggInput::I32(c)) => Acc::Avg(iv(c) as f64, 1),
            (AggFunc::Min, AggInput::F64(c)) => Acc::MinF(fv(c)),
            (AggFunc::Max, AggInput::F64(c)) => Acc::MaxF(fv(c)),
            (AggFunc::Min, AggInput::I32(c)) => Acc::MinI(iv(c)),
            (AggFunc::Max, AggInput::I32(c)) => Acc::MaxI(iv(c)),
        }
    }

    /// The grouping values of row `row`.
    fn key_values(&self, row: usize, cols: &[ArrayRef]) -> Vec<KeyValue> {
        self.keys
            .iter()
            .map(|k| match *k {
                KeyCol::Int(i) => KeyValue::Int(i64::from(cols[i].as_primitive::<Int32Type>().value(row))),
                KeyCol::Str(i) => KeyValue::Str(cols[i].as_string::<i32>().value(row).to_string()),
            })
            .collect()
    }

    /// Processes one batch's rows (possibly none: a no-data batch).
    pub fn process(&mut self, rows: &RecordBatch, t: Thresholds) -> Result<AggregateOutput, OperatorError> {
        let cols = rows.columns();
        // The grouping columns in arrow's row format: each row's key is a byte slice, so a
        // row finds its group without allocating.
        let key_arrays: Vec<ArrayRef> = self
            .keys
            .iter()
            .map(|k| match *k {
                KeyCol::Int(i) | KeyCol::Str(i) => cols[i].clone(),
            })
            .collect();
        let key_rows = if key_arrays.is_empty() {
            None
        } else {
            let fields = key_arrays
                .iter()
                .map(|a| SortField::new(a.data_type().clone()))
                .collect();
            Some(RowConverter::new(fields)?.convert_columns(&key_arrays)?)
        };
        // This batch's groups in first-seen order — (window, a row of the group, accumulators)
        // — each folded over its rows in row order, as a sequential fold would.
        type Window = Option<(i64, i64)>;
        let mut index: HashMap<(Window, &[u8]), usize> = HashMap::new();
        let mut groups: Vec<(Window, usize, Vec<Acc>)> = Vec::new();
        let window_col = match (self.window_col, &self.window) {
            (Some(c), Some(w)) => Some((cols[c].as_primitive::<TimestampMicrosecondType>(), w)),
            _ => None,
        };
        for r in 0..rows.num_rows() {
            let key: &[u8] = key_rows.as_ref().map_or(&[], |k| k.row(r).data());
            let mut add = |window: Window| match index.entry((window, key)) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(groups.len());
                    let acc = (0..self.inputs.len()).map(|i| self.row_acc(i, r, cols)).collect();
                    groups.push((window, r, acc));
                }
                std::collections::hash_map::Entry::Occupied(o) => {
                    let acc = &mut groups[*o.get()].2;
                    for (i, a) in acc.iter_mut().enumerate() {
                        a.merge(&self.row_acc(i, r, cols));
                    }
                }
            };
            match window_col {
                Some((col, w)) => {
                    // Spark drops rows whose event time is null: they have no window (R8.4).
                    if col.is_null(r) {
                        continue;
                    }
                    for win in windows_of(col.value(r), w) {
                        add(Some(win));
                    }
                }
                None => add(None),
            }
        }
        let mut partial: BTreeMap<GroupKey, Vec<Acc>> = BTreeMap::new();
        for (window, r, acc) in groups {
            let values = self.key_values(r, cols);
            partial.insert(GroupKey { window, values }, acc);
        }

        let late_us = t.late_ms.saturating_mul(1000);
        let evict_us = t.evict_ms.saturating_mul(1000);
        let mut dropped = 0;
        let mut updated = Vec::new();
        for (key, acc) in partial {
            if self.evicts && key.window.is_some_and(|(_, end)| end <= late_us) {
                dropped += 1;
                continue;
            }
            let merged = match self.store.get(&key) {
                Some(old) => {
                    let mut m = old.0.clone();
                    m.iter_mut().zip(&acc).for_each(|(a, b)| a.merge(b));
                    m
                }
                None => acc,
            };
            self.store.put(key.clone(), AggValue(merged));
            updated.push(key);
        }

        let mut out_keys: Vec<(GroupKey, AggValue)> = Vec::new();
        match self.mode {
            OutputMode::Update => {
                for k in &updated {
                    if let Some(v) = self.store.get(k) {
                        out_keys.push((k.clone(), v.clone()));
                    }
                }
                if self.evicts {
                    for k in self.closed_keys(evict_us) {
                        self.store.remove(&k);
                    }
                }
            }
            OutputMode::Append => {
                if self.evicts {
                    for k in self.closed_keys(evict_us) {
                        if let Some(v) = self.store.remove(&k) {
                            out_keys.push((k, v));
                        }
                    }
                }
            }
            OutputMode::Complete => {
                out_keys = self.store.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            }
        }
        Ok(AggregateOutput {
            rows: Some(self.to_batch(&out_keys)?),
            dropped_by_watermark: dropped,
        })
    }

    /// Keys whose window has closed (`end <= evict_us`), oldest first.
    fn closed_keys(&self, evict_us: i64) -> Vec<GroupKey> {
        // Keys sort by window start; with a fixed duration, ends sort the same way.
        self.store
            .iter()
            .map(|(k, _)| k)
            .take_while(|k| k.window.is_some_and(|(_, end)| end <= evict_us))
            .cloned()
            .collect()
    }

    /// Writes the state version this batch produced.
    pub fn commit(&mut self) -> Result<CommitStats, OperatorError> {
        Ok(self.store.commit()?)
    }

    fn to_batch(&self, rows: &[(GroupKey, AggValue)]) -> Result<RecordBatch, OperatorError> {
        let mut cols: Vec<ArrayRef> = Vec::new();
        if self.window.is_some() {
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
        for (i, k) in self.keys.iter().enumerate() {
            match k {
                KeyCol::Int(_) => {
                    let mut b = Int32Builder::with_capacity(rows.len());
                    for (key, _) in rows {
                        match &key.values[i] {
                            KeyValue::Int(v) => b.append_value(*v as i32),
                            KeyValue::Str(_) => b.append_null(),
                        }
                    }
                    cols.push(Arc::new(b.finish()));
                }
                KeyCol::Str(_) => {
                    let mut b = StringBuilder::new();
                    for (key, _) in rows {
                        match &key.values[i] {
                            KeyValue::Str(v) => b.append_value(v),
                            KeyValue::Int(_) => b.append_null(),
                        }
                    }
                    cols.push(Arc::new(b.finish()));
                }
            }
        }
        for (j, (func, input)) in self.inputs.iter().enumerate() {
            let field_type = self.schema.field(cols.len()).data_type().clone();
            let col: ArrayRef = match field_type {
                DataType::Int64 => {
                    let mut b = Int64Builder::with_capacity(rows.len());
                    for (_, v) in rows {
                        b.append_option(match v.0[j] {
                            Acc::Count(c) | Acc::SumI(c) | Acc::MinI(c) | Acc::MaxI(c) => Some(c),
                            _ => None,
                        });
                    }
                    Arc::new(b.finish())
                }
                DataType::Int32 => {
                    let mut b = Int32Builder::with_capacity(rows.len());
                    for (_, v) in rows {
                        b.append_option(match v.0[j] {
                            Acc::MinI(c) | Acc::MaxI(c) => Some(c as i32),
                            _ => None,
                        });
                    }
                    Arc::new(b.finish())
                }
                _ => {
                    let mut b = Float64Builder::with_capacity(rows.len());
                    for (_, v) in rows {
                        b.append_option(match v.0[j] {
                            Acc::SumF(f) | Acc::MinF(f) | Acc::MaxF(f) => Some(f),
                            Acc::Avg(s, c) if c > 0 => Some(s / c as f64),
                            _ => None,
                        });
                    }
                    Arc::new(b.finish())
                }
            };
            let _ = (func, input);
            cols.push(col);
        }
        Ok(RecordBatch::try_new(self.schema.clone(), cols)?)
    }

    /// The aggregation this operator runs.
    pub fn spec(&self) -> &Aggregation {
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
            values: vec![KeyValue::Int(-3), KeyValue::Str("purchase".into())],
        };
        let v = AggValue(vec![
            Acc::Count(3),
            Acc::Avg(1.5, 2),
            Acc::MinI(-1),
            Acc::SumF(f64::NAN),
        ]);
        let mut buf = Vec::new();
        k.encode(&mut buf);
        v.encode(&mut buf);
        let mut input = buf.as_slice();
        assert_eq!(GroupKey::decode(&mut input), Some(k));
        let back = AggValue::decode(&mut input).unwrap();
        assert_eq!(back.0[..3], v.0[..3]);
        assert!(matches!(back.0[3], Acc::SumF(f) if f.is_nan()));
        assert!(input.is_empty());
    }
}
