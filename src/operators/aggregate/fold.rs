//! One batch's rows folded into per-group accumulators, a column at a time.
//!
//! Rows are grouped in two steps. Each row's grouping values get a key id (one hash of the
//! row-format bytes a row); with a window, the row's *pane* — its newest window start and how
//! many windows hold it — with the key id is looked up next, and only a pane seen for the first
//! time looks its windows' groups up. A row in a sliding window of five costs two lookups, not
//! five. Each aggregate then folds its input column into a typed vector over the groups, the
//! rows in row order, so every group's fold is the sequential one (a double's sum adds the
//! group's values in the order the rows came).

use std::collections::BTreeSet;

use deltalake::arrow::array::{
    Array, ArrayRef, Decimal128Array, Float64Array, Int64Array, TimestampMicrosecondArray,
};
use deltalake::arrow::row::Rows;

use super::AggFunc;
use super::accumulator::{Acc, Wide, merge};
use crate::operators::LookupMap;
use crate::operators::window::{Pane, pane_of};
use crate::query::WindowSpec;

/// A group's window `[start, end)` in µs, if grouped by one.
pub type Window = Option<(i64, i64)>;

/// How one aggregate reads its input column in a batch.
pub enum Input {
    /// `count(*)`: no column.
    Star,
    /// A long column (sums of integers).
    I64(Int64Array),
    /// A double column.
    F64(Float64Array),
    /// A decimal column, at the sum's precision.
    Dec(Decimal128Array),
    /// Values compared or collected as they are, in row format, with the column (for nulls).
    Rows(Rows, ArrayRef),
}

impl Input {
    fn is_valid(&self, r: usize) -> bool {
        match self {
            Input::Star => true,
            Input::I64(a) => a.is_valid(r),
            Input::F64(a) => a.is_valid(r),
            Input::Dec(a) => a.is_valid(r),
            Input::Rows(_, a) => a.is_valid(r),
        }
    }
}

/// The accumulator of `func` over the single row `r` of `input`.
pub fn row_acc(func: AggFunc, input: &Input, r: usize) -> Acc {
    let valid = input.is_valid(r);
    match (func, input) {
        (AggFunc::CountStar, _) => Acc::Count(1),
        (AggFunc::Count, _) => Acc::Count(i64::from(valid)),
        (AggFunc::Sum, Input::I64(a)) => Acc::SumI(valid.then(|| a.value(r))),
        (AggFunc::Sum, Input::F64(a)) => Acc::SumF(valid.then(|| a.value(r))),
        (AggFunc::Sum, Input::Dec(a)) => Acc::SumD(valid.then(|| a.value(r).into())),
        (AggFunc::Avg, Input::F64(a)) => match valid {
            true => Acc::Avg(a.value(r), 1),
            false => Acc::Avg(0.0, 0),
        },
        (AggFunc::Avg, Input::Dec(a)) => match valid {
            true => Acc::AvgD(a.value(r).into(), 1),
            false => Acc::AvgD(0i128.into(), 0),
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
        (AggFunc::CollectSet | AggFunc::ApproxCountDistinct, Input::Rows(rows, _)) => Acc::Set(if valid {
            BTreeSet::from([rows.row(r).data().to_vec()])
        } else {
            BTreeSet::new()
        }),
        // The operator's `read_inputs` pairs every function with the input kind it folds.
        _ => Acc::Count(0),
    }
}

/// Which rows are late, and why: the operator's late threshold applied while grouping.
#[derive(Debug, Clone, Copy)]
pub enum LateRule<'a> {
    /// Nothing is late (no watermark on the keys, or complete mode).
    None,
    /// A window ending at or before the threshold (µs) is late.
    Window(i64),
    /// A row whose grouping timestamp (this column) is at or before the threshold (µs) is late
    /// in every group.
    KeyTime(&'a TimestampMicrosecondArray, i64),
}

/// A row that missed groups because they were late.
#[derive(Debug, Clone, PartialEq)]
pub struct LateInput {
    /// The row.
    pub row: u32,
    /// The windows it missed (none when its key time was late).
    pub windows_missed: Vec<(i64, i64)>,
    /// Whether it missed every group it belongs to.
    pub fully: bool,
    /// The event time the threshold was compared with.
    pub event_time_us: Option<i64>,
}

/// A batch's rows, grouped.
#[derive(Debug, Default)]
pub struct Grouping {
    /// Per group, in first-seen order: its window and key id.
    pub groups: Vec<(Window, u32)>,
    /// Per key id: a row that has those grouping values.
    pub key_rows: Vec<u32>,
    /// Per row: its pane, or [`NO_PANE`] when it is in no group.
    row_pane: Vec<u32>,
    /// Per pane: the range of its groups in `pane_groups`.
    pane_ranges: Vec<(u32, u32)>,
    pane_groups: Vec<u32>,
    /// Late groups: (window start or `i64::MIN` without a window, key id).
    late_groups: LookupMap<(i64, u32), ()>,
    /// The rows that missed a group, in row order.
    pub late: Vec<LateInput>,
}

/// A row in no group.
const NO_PANE: u32 = u32::MAX;
/// A row with no key id (its event time is null).
const NO_KEY: u32 = u32::MAX;
/// The one pane of an aggregation without a window.
const NO_WINDOW_PANE: Pane = Pane {
    last_start: 0,
    count: 1,
};

/// The pane id of each (pane, key id) a batch has seen. A dense table over the batch's span
/// of panes times its keys when that is small next to the rows (the common case: each lookup
/// an index, in a table that stays in the cache), else a map.
enum PaneIds {
    Dense {
        /// The oldest pane's newest window start, the slide, and the most windows a pane has.
        first: i64,
        slide: i64,
        full: u32,
        keys: usize,
        /// Per (pane slot, key id): the pane id, or `NO_PANE`. A slot is a newest window start
        /// and whether the pane has all `full` windows or one fewer (the only counts a pane
        /// can have).
        table: Vec<u32>,
        /// Any pane outside the table (none, by the arithmetic of panes; kept so that a
        /// mistake in it costs a lookup, not a wrong group).
        spill: LookupMap<(Pane, u32), u32>,
    },
    Map(LookupMap<(Pane, u32), u32>),
}

impl PaneIds {
    /// For a batch of `rows` rows and `keys` key ids, its event times in `span` (µs).
    fn new(window: Option<&WindowSpec>, span: (i64, i64), keys: usize, rows: usize) -> Self {
        let (first, slide, full, slots) = match window {
            None => (0, 1, 1, 1),
            Some(_) if span.0 > span.1 => (0, 1, 1, 0),
            Some(w) => {
                let (a, b) = (pane_of(span.0, w), pane_of(span.1, w));
                let full = w.duration.div_euclid(w.slide) + i64::from(w.duration % w.slide != 0);
                let slots = (b.last_start - a.last_start) / w.slide + 1;
                (a.last_start, w.slide, full as u32, slots as usize)
            }
        };
        // At most 8 entries (32 bytes) a row, and 64 Ki entries for small batches.
        let size = slots.saturating_mul(2).saturating_mul(keys);
        if size <= rows.saturating_mul(8).saturating_add(1 << 16) {
            PaneIds::Dense {
                first,
                slide,
                full,
                keys,
                table: vec![NO_PANE; size],
                spill: LookupMap::default(),
            }
        } else {
            PaneIds::Map(LookupMap::default())
        }
    }

    /// The id of (`pane`, `kid`), given `next` when it is new.
    #[inline]
    fn get_or_insert(&mut self, pane: Pane, kid: u32, next: u32) -> u32 {
        match self {
            PaneIds::Dense {
                first,
                slide,
                full,
                keys,
                table,
                spill,
            } => {
                // Every pane of the batch lies in its span and has `full` or `full - 1` windows.
                let slot = u64::try_from((pane.last_start - *first) / *slide)
                    .ok()
                    .zip(full.checked_sub(pane.count).filter(|v| *v <= 1))
                    .map(|(s, v)| (s as usize * 2 + v as usize) * *keys + kid as usize);
                match slot.and_then(|i| table.get_mut(i)) {
                    Some(e) => {
                        if *e == NO_PANE {
                            *e = next;
                        }
                        *e
                    }
                    None => *spill.entry((pane, kid)).or_insert(next),
                }
            }
            PaneIds::Map(m) => *m.entry((pane, kid)).or_insert(next),
        }
    }
}

impl Grouping {
    /// Groups `n` rows: `keys` holds their grouping values in row format (none: one group per
    /// window), `window` the event-time column and the spec to window it by, `late` says what
    /// is late.
    pub fn new(
        n: usize,
        keys: Option<&Rows>,
        window: Option<(&TimestampMicrosecondArray, &WindowSpec)>,
        late: LateRule<'_>,
    ) -> Self {
        let mut g = Grouping {
            row_pane: Vec::with_capacity(n),
            ..Default::default()
        };
        // First each row's key id (one lookup in a map of the batch's distinct grouping
        // values, which stays in the cache), and the batch's span of event times.
        let key_of = |r: usize| -> &[u8] { keys.map_or(&[], |k| k.row(r).data()) };
        let mut key_ids: LookupMap<&[u8], u32> = LookupMap::default();
        let mut kids = Vec::with_capacity(n);
        let mut span = (i64::MAX, i64::MIN);
        for r in 0..n {
            if let Some((col, _)) = window {
                // Spark drops rows whose event time is null: they have no window (R8.4).
                if col.is_null(r) {
                    kids.push(NO_KEY);
                    continue;
                }
                let t = col.value(r);
                span = (span.0.min(t), span.1.max(t));
            }
            kids.push(g.key_id(&mut key_ids, key_of(r), r));
        }
        let mut panes = PaneIds::new(window.map(|(_, w)| w), span, g.key_rows.len(), n);
        let mut group_ids: LookupMap<(Window, u32), u32> = LookupMap::default();
        for (r, &kid) in kids.iter().enumerate() {
            if kid == NO_KEY {
                g.row_pane.push(NO_PANE);
                continue;
            }
            // A late key time drops the row from every group it is in.
            if let LateRule::KeyTime(times, threshold) = late
                && times.is_valid(r)
                && times.value(r) <= threshold
            {
                let windows: Vec<Window> = match window {
                    Some((col, w)) => pane_of(col.value(r), w).windows(w).map(Some).collect(),
                    None => vec![None],
                };
                for win in windows {
                    g.late_groups.insert((win.map_or(i64::MIN, |w| w.0), kid), ());
                }
                g.late.push(LateInput {
                    row: r as u32,
                    windows_missed: Vec::new(),
                    fully: true,
                    event_time_us: Some(times.value(r)),
                });
                g.row_pane.push(NO_PANE);
                continue;
            }
            let (pane, ts) = match window {
                Some((col, w)) => (pane_of(col.value(r), w), Some(col.value(r))),
                None => (NO_WINDOW_PANE, None),
            };
            // One lookup a row: the pane with its key id.
            let next = g.pane_ranges.len() as u32;
            let p = panes.get_or_insert(pane, kid, next);
            if p == next {
                // A new pane: its windows' groups, late ones left out.
                let first = g.pane_groups.len() as u32;
                let wins: Vec<Window> = match window {
                    Some((_, w)) => pane.windows(w).map(Some).collect(),
                    None => vec![None],
                };
                for win in wins {
                    if let (LateRule::Window(threshold), Some((start, end))) = (late, win)
                        && end <= threshold
                    {
                        g.late_groups.insert((start, kid), ());
                        continue;
                    }
                    let next_group = g.groups.len() as u32;
                    let id = *group_ids.entry((win, kid)).or_insert(next_group);
                    if id == next_group {
                        g.groups.push((win, kid));
                    }
                    g.pane_groups.push(id);
                }
                g.pane_ranges.push((first, g.pane_groups.len() as u32));
            }
            let (a, b) = g.pane_ranges[p as usize];
            let total = pane.count as usize;
            let kept = (b - a) as usize;
            if kept < total
                && let (LateRule::Window(threshold), Some((_, w))) = (late, window)
            {
                g.late.push(LateInput {
                    row: r as u32,
                    windows_missed: pane.windows(w).filter(|&(_, end)| end <= threshold).collect(),
                    fully: kept == 0,
                    event_time_us: ts,
                });
            }
            g.row_pane.push(if kept == 0 { NO_PANE } else { p });
        }
        g
    }

    /// The key id of grouping values `key`, first seen at row `r`.
    fn key_id<'k>(&mut self, ids: &mut LookupMap<&'k [u8], u32>, key: &'k [u8], r: usize) -> u32 {
        let next = self.key_rows.len() as u32;
        let id = *ids.entry(key).or_insert(next);
        if id == next {
            self.key_rows.push(r as u32);
        }
        id
    }

    /// Late groups, each counted once (Spark's `numRowsDroppedByWatermark` counts the
    /// pre-aggregated rows it drops).
    pub fn late_group_count(&self) -> u64 {
        self.late_groups.len() as u64
    }

    /// Calls `f(row, group)` for every row and group it is in, in row order.
    #[inline]
    fn for_each(&self, mut f: impl FnMut(usize, usize)) {
        for (r, &p) in self.row_pane.iter().enumerate() {
            if p == NO_PANE {
                continue;
            }
            let (a, b) = self.pane_ranges[p as usize];
            for &g in &self.pane_groups[a as usize..b as usize] {
                f(r, g as usize);
            }
        }
    }

    /// Folds `input` into one accumulator per group for `func`.
    pub fn fold(&self, func: AggFunc, input: &Input) -> Column {
        let n = self.groups.len();
        match (func, input) {
            (AggFunc::CountStar, _) => {
                let mut c = vec![0i64; n];
                self.for_each(|_, g| c[g] += 1);
                Column::Count(c)
            }
            (AggFunc::Count, _) => {
                let mut c = vec![0i64; n];
                self.for_each(|r, g| c[g] += i64::from(input.is_valid(r)));
                Column::Count(c)
            }
            (AggFunc::Sum, Input::I64(a)) => {
                let mut s: Vec<Option<i64>> = vec![None; n];
                self.for_each(|r, g| {
                    if a.is_valid(r) {
                        let y = a.value(r);
                        s[g] = Some(s[g].map_or(y, |x| x.wrapping_add(y)));
                    }
                });
                Column::SumI(s)
            }
            (AggFunc::Sum, Input::F64(a)) => {
                let mut s: Vec<Option<f64>> = vec![None; n];
                self.for_each(|r, g| {
                    if a.is_valid(r) {
                        let y = a.value(r);
                        s[g] = Some(s[g].map_or(y, |x| x + y));
                    }
                });
                Column::SumF(s)
            }
            (AggFunc::Sum, Input::Dec(a)) => {
                let mut s: Vec<Option<i128>> = vec![None; n];
                self.for_each(|r, g| {
                    if a.is_valid(r) {
                        let y = a.value(r);
                        s[g] = Some(s[g].map_or(y, |x| x.wrapping_add(y)));
                    }
                });
                Column::SumD(s)
            }
            (AggFunc::Avg, Input::F64(a)) => {
                // (sum, count), `None` before the group's first row: the sum starts at that
                // row's value, or at 0 when it is null, as the row-by-row fold starts.
                let mut s: Vec<Option<(f64, i64)>> = vec![None; n];
                self.for_each(|r, g| {
                    let valid = a.is_valid(r);
                    match &mut s[g] {
                        Some((sum, c)) if valid => {
                            *sum += a.value(r);
                            *c += 1;
                        }
                        Some(_) => {}
                        slot => *slot = Some(if valid { (a.value(r), 1) } else { (0.0, 0) }),
                    }
                });
                Column::Avg(s)
            }
            (AggFunc::Avg, Input::Dec(a)) => {
                let mut s: Vec<(i128, i64)> = vec![(0, 0); n];
                self.for_each(|r, g| {
                    if a.is_valid(r) {
                        let (sum, c) = &mut s[g];
                        *sum = sum.wrapping_add(a.value(r));
                        *c += 1;
                    }
                });
                Column::AvgD(s)
            }
            _ => {
                let mut accs: Vec<Option<Acc>> = vec![None; n];
                self.for_each(|r, g| {
                    let b = row_acc(func, input, r);
                    match &mut accs[g] {
                        Some(a) => merge(func, a, &b),
                        slot => *slot = Some(b),
                    }
                });
                Column::Other(accs)
            }
        }
    }
}

/// One aggregate's accumulators over a batch's groups.
pub enum Column {
    /// `count`.
    Count(Vec<i64>),
    /// `sum` of integers.
    SumI(Vec<Option<i64>>),
    /// `sum` of doubles.
    SumF(Vec<Option<f64>>),
    /// `sum` of decimals.
    SumD(Vec<Option<i128>>),
    /// `avg` of doubles: sum and count.
    Avg(Vec<Option<(f64, i64)>>),
    /// `avg` of decimals: sum and count.
    AvgD(Vec<(i128, i64)>),
    /// Any other: folded row by row.
    Other(Vec<Option<Acc>>),
}

impl Column {
    /// Group `g`'s accumulator, taken out.
    pub fn take(&mut self, g: usize) -> Acc {
        match self {
            Column::Count(c) => Acc::Count(c[g]),
            Column::SumI(s) => Acc::SumI(s[g]),
            Column::SumF(s) => Acc::SumF(s[g]),
            Column::SumD(s) => Acc::SumD(s[g].map(Wide::from)),
            Column::Avg(s) => {
                let (sum, c) = s[g].unwrap_or((0.0, 0));
                Acc::Avg(sum, c)
            }
            Column::AvgD(s) => Acc::AvgD(s[g].0.into(), s[g].1),
            // Every group holds at least one row (a group is made for a row), so every slot
            // was folded; an empty one would be a group of no rows: a count of none.
            Column::Other(a) => a[g].take().unwrap_or(Acc::Count(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use deltalake::arrow::array::Int64Array;
    use deltalake::arrow::datatypes::DataType;
    use deltalake::arrow::row::{RowConverter, SortField};
    use rand::{Rng, SeedableRng};

    use super::*;

    const S: i64 = 1_000_000;

    /// Spark's windows of `ts` by definition: every start `start + k * slide` with
    /// `start <= ts < start + duration`.
    fn brute_windows(ts: i64, w: &WindowSpec) -> Vec<(i64, i64)> {
        let first = ts - w.duration - w.slide;
        let mut s = first - (first - w.start).rem_euclid(w.slide);
        let mut out = Vec::new();
        while s <= ts {
            if ts < s + w.duration {
                out.push((s, s + w.duration));
            }
            s += w.slide;
        }
        out
    }

    #[test]
    fn panes_hold_the_windows_spark_defines() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for (d, sl, st) in [(300, 60, 0), (10, 3, 0), (10, 3, 2), (7, 7, -5), (5, 2, 1)] {
            let w = WindowSpec {
                duration: d * S,
                slide: sl * S,
                start: st * S,
            };
            for _ in 0..2_000 {
                let ts = rng.random_range(-100 * S..100 * S);
                let got: Vec<_> = pane_of(ts, &w).windows(&w).collect();
                assert_eq!(got, brute_windows(ts, &w), "ts {ts}, window {d}/{sl}/{st}");
            }
        }
    }

    /// Grouping by panes and folding a column at a time gives, per group, what folding every
    /// (row, window) pair row by row into a map gives — late windows, late rows and null event
    /// times included — with few keys (pane ids in a dense table) and many (in a map).
    #[test]
    fn column_folds_equal_the_row_by_row_fold() {
        for (keys, dense) in [(7usize, true), (5_000, false)] {
            let w = WindowSpec {
                duration: 10 * S,
                slide: 3 * S,
                start: 0,
            };
            let ids = PaneIds::new(Some(&w), (0, 120 * S), keys, 3_000);
            assert_eq!(matches!(ids, PaneIds::Dense { .. }), dense, "{keys} keys");
            folds_equal_the_row_by_row_fold(keys as i64);
        }
    }

    fn folds_equal_the_row_by_row_fold(keys: i64) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let w = WindowSpec {
            duration: 10 * S,
            slide: 3 * S,
            start: 0,
        };
        let n = 3_000;
        let ts: TimestampMicrosecondArray = (0..n)
            .map(|_| rng.random_bool(0.95).then(|| rng.random_range(0..120 * S)))
            .collect();
        let key: Int64Array = (0..n)
            .map(|_| rng.random_bool(0.9).then(|| rng.random_range(0..keys)))
            .collect();
        let x: Int64Array = (0..n)
            .map(|_| rng.random_bool(0.8).then(|| rng.random_range(-50..50)))
            .collect();
        let f: Float64Array = (0..n)
            .map(|_| rng.random_bool(0.8).then(|| rng.random_range(-1.0..1.0)))
            .collect();
        let key_conv = RowConverter::new(vec![SortField::new(DataType::Int64)]).unwrap();
        let keys = key_conv.convert_columns(&[Arc::new(key) as ArrayRef]).unwrap();
        let min_conv = RowConverter::new(vec![SortField::new(DataType::Int64)]).unwrap();
        let x_ref: ArrayRef = Arc::new(x.clone());
        let inputs = [
            (AggFunc::CountStar, Input::Star),
            (AggFunc::Count, Input::I64(x.clone())),
            (AggFunc::Sum, Input::I64(x.clone())),
            (AggFunc::Sum, Input::F64(f.clone())),
            (AggFunc::Avg, Input::F64(f.clone())),
            (
                AggFunc::Min,
                Input::Rows(
                    min_conv.convert_columns(std::slice::from_ref(&x_ref)).unwrap(),
                    x_ref,
                ),
            ),
        ];
        let threshold = 40 * S;
        let grouping = Grouping::new(n, Some(&keys), Some((&ts, &w)), LateRule::Window(threshold));
        let mut columns: Vec<Column> = inputs.iter().map(|(func, i)| grouping.fold(*func, i)).collect();
        let mut got = BTreeMap::new();
        for (g, (win, kid)) in grouping.groups.iter().enumerate() {
            let k = keys
                .row(grouping.key_rows[*kid as usize] as usize)
                .data()
                .to_vec();
            let accs: Vec<Acc> = columns.iter_mut().map(|c| c.take(g)).collect();
            assert!(
                got.insert((*win, k), accs).is_none(),
                "one group per window and key"
            );
        }

        let mut want: BTreeMap<(Window, Vec<u8>), Vec<Acc>> = BTreeMap::new();
        let (mut late_rows, mut late_groups) = (Vec::new(), std::collections::BTreeSet::new());
        for r in 0..n {
            if ts.is_null(r) {
                continue;
            }
            let k = keys.row(r).data().to_vec();
            let wins = brute_windows(ts.value(r), &w);
            let missed: Vec<_> = wins
                .iter()
                .copied()
                .filter(|&(_, end)| end <= threshold)
                .collect();
            if !missed.is_empty() {
                late_rows.push((r as u32, missed.clone(), missed.len() == wins.len()));
            }
            for win in wins {
                if win.1 <= threshold {
                    late_groups.insert((win, k.clone()));
                    continue;
                }
                let row: Vec<Acc> = inputs.iter().map(|(func, i)| row_acc(*func, i, r)).collect();
                match want.get_mut(&(Some(win), k.clone())) {
                    Some(accs) => {
                        for ((a, b), (func, _)) in accs.iter_mut().zip(&row).zip(&inputs) {
                            merge(*func, a, b);
                        }
                    }
                    None => {
                        want.insert((Some(win), k.clone()), row);
                    }
                }
            }
        }
        assert!(!late_rows.is_empty() && want.len() > 100);
        assert_eq!(got, want);
        assert_eq!(grouping.late_group_count(), late_groups.len() as u64);
        let late: Vec<_> = grouping
            .late
            .iter()
            .map(|l| (l.row, l.windows_missed.clone(), l.fully))
            .collect();
        assert_eq!(late, late_rows);
    }
}
