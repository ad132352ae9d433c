//! What a windowed aggregation keeps per group: its key, and one running value per aggregate,
//! with their encodings in the state store's files and how two of them fold into one.

use std::collections::BTreeSet;

use smallvec::SmallVec;

use super::AggFunc;
use crate::state::order::{bytes_word, int_word};
use crate::state::{Codec, OrderPrefix, enc};

/// A state key: the window (if grouped by one) and the other grouping values in row format.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    /// `[start, end)` in µs.
    pub window: Option<(i64, i64)>,
    /// The plain grouping values, as arrow's row format encodes them (inline up to 16 bytes:
    /// a number or a short string).
    pub values: KeyBytes,
}

impl OrderPrefix for GroupKey {
    fn order_prefix(&self) -> [u64; 4] {
        // As the derived order compares: the window (none first), then the values' bytes.
        match self.window {
            None => [0, 0, 0, bytes_word(&self.values, 0)],
            Some((s, e)) => [1, int_word(s), int_word(e), bytes_word(&self.values, 0)],
        }
    }
}

/// Row-format bytes of a group's values.
pub type KeyBytes = SmallVec<[u8; 16]>;

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
            values: enc::read_bytes(input)?.into(),
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
    SumD(Option<Wide>),
    /// avg of doubles: sum and count
    Avg(f64, i64),
    /// avg of decimals: unscaled sum at the input scale and count
    AvgD(Wide, i64),
    /// min/max of any type: the value in row format
    Extreme(Option<Vec<u8>>),
    /// first/last of any type: `Some(value)` once seen (the value itself may encode null)
    Pick(Option<Vec<u8>>),
    /// collect_list: values in row format, in order
    List(Vec<Vec<u8>>),
    /// collect_set: distinct values in row format, sorted
    Set(BTreeSet<Vec<u8>>),
}

/// An i128 kept as two 64-bit words: an accumulator then needs 8-byte alignment, not 16, and
/// takes 32 bytes instead of 48 (each group in the state holds up to two inline).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wide([u64; 2]);

impl Wide {
    /// The value.
    pub fn get(self) -> i128 {
        ((u128::from(self.0[1]) << 64) | u128::from(self.0[0])) as i128
    }
}

impl From<i128> for Wide {
    fn from(v: i128) -> Self {
        let u = v as u128;
        Self([u as u64, (u >> 64) as u64])
    }
}

/// The aggregates of one group (inline up to two).
#[derive(Debug, Clone, PartialEq)]
pub struct AggValue(pub SmallVec<[Acc; 2]>);

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
                    out.extend_from_slice(&v.map_or(0, Wide::get).to_le_bytes());
                }
                Acc::Avg(s, c) => {
                    out.push(4);
                    enc::i64(out, s.to_bits() as i64);
                    enc::i64(out, *c);
                }
                Acc::AvgD(s, c) => {
                    out.push(5);
                    out.extend_from_slice(&s.get().to_le_bytes());
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
        let mut v = SmallVec::with_capacity(n.min(64) as usize);
        for _ in 0..n {
            let tag = enc::read_u8(input)?;
            v.push(match tag {
                0 => Acc::Count(enc::read_i64(input)?),
                1 => Acc::SumI(enc::read_opt_i64(input)?),
                2 => Acc::SumF(enc::read_opt_i64(input)?.map(|b| f64::from_bits(b as u64))),
                3 => {
                    let some = enc::read_u8(input)? == 1;
                    let x = enc::read_i128(input)?;
                    Acc::SumD(some.then_some(x.into()))
                }
                4 => {
                    let s = f64::from_bits(enc::read_i64(input)? as u64);
                    Acc::Avg(s, enc::read_i64(input)?)
                }
                5 => {
                    let s = enc::read_i128(input)?;
                    Acc::AvgD(s.into(), enc::read_i64(input)?)
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

/// Folds `b` (later rows) into `a` (earlier rows) of aggregate function `func`.
pub fn merge(func: AggFunc, a: &mut Acc, b: &Acc) {
    match (a, b) {
        (Acc::Count(x), Acc::Count(y)) => *x += y,
        (Acc::SumI(x), Acc::SumI(Some(y))) => *x = Some(x.map_or(*y, |x| x.wrapping_add(*y))),
        (Acc::SumF(x), Acc::SumF(Some(y))) => *x = Some(x.map_or(*y, |x| x + y)),
        (Acc::SumD(x), Acc::SumD(Some(y))) => {
            *x = Some(x.map_or(y.get(), |x| x.get().wrapping_add(y.get())).into())
        }
        (Acc::Avg(s, c), Acc::Avg(s2, c2)) => {
            *s += s2;
            *c += c2;
        }
        (Acc::AvgD(s, c), Acc::AvgD(s2, c2)) => {
            *s = s.get().wrapping_add(s2.get()).into();
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

/// True when `x` (unscaled) has at most `precision` digits: a decimal sum that overflows its
/// type is null, as Spark's non-ANSI `sum`.
pub fn fits(x: i128, precision: u8) -> bool {
    let limit = 10i128.checked_pow(u32::from(precision)).unwrap_or(i128::MAX);
    x.unsigned_abs() < limit.unsigned_abs()
}

/// `sum / count` of decimals at `in_scale`, to `out_scale`, rounded half up (Spark's
/// `Average` on decimals divides at a higher precision and rounds HALF_UP).
pub fn avg_decimal(sum: i128, count: i64, in_scale: i8, out_scale: i8) -> Option<i128> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_codecs_round_trip() {
        let k = GroupKey {
            window: Some((-5, 10)),
            values: KeyBytes::from_slice(&[1, 2, 3, 0, 255]),
        };
        let v = AggValue(smallvec::smallvec![
            Acc::Count(3),
            Acc::Avg(1.5, 2),
            Acc::SumI(None),
            Acc::SumD(Some((-12345678901234567890i128).into())),
            Acc::SumD(Some(i128::MIN.into())),
            Acc::AvgD(77i128.into(), 2),
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
        assert_eq!(back.0[..10], v.0[..10]);
        assert!(matches!(back.0[10], Acc::SumF(Some(f)) if f.is_nan()));
        assert!(input.is_empty());
        for x in [i128::MIN, -1, 0, 1, i128::MAX, -12345678901234567890] {
            assert_eq!(Wide::from(x).get(), x);
        }
        assert_eq!(
            std::mem::size_of::<Acc>(),
            32,
            "an accumulator in two words of alignment 8"
        );
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
