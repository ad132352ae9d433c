//! Spark's time windows (R8.3): start inclusive, end exclusive, aligned to the Unix epoch plus
//! the start offset, in microseconds.

use crate::query::WindowSpec;

/// The windows `[start, end)` an event at `ts` belongs to, oldest first.
pub fn windows_of(ts: i64, w: &WindowSpec) -> impl Iterator<Item = (i64, i64)> + '_ {
    pane_of(ts, w).windows(w)
}

/// The events that fall in the same windows: those with the same newest window start and the
/// same number of windows. An aggregation looks a pane's windows up once, not once per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pane {
    /// The start of the newest window, in µs.
    pub last_start: i64,
    /// How many windows (the newest and the ones before it, a slide apart).
    pub count: u32,
}

impl Pane {
    /// The pane's windows `[start, end)`, oldest first.
    pub fn windows(self, w: &WindowSpec) -> impl Iterator<Item = (i64, i64)> + '_ {
        (0..i64::from(self.count)).rev().map(move |i| {
            let start = self.last_start - i * w.slide;
            (start, start + w.duration)
        })
    }
}

/// The pane of an event at `ts`: Spark's candidate windows (R8.3), those that do not hold
/// `ts` left out.
pub fn pane_of(ts: i64, w: &WindowSpec) -> Pane {
    // Spark: lastStart = ts - ((ts - startTime) % slide, made non-negative).
    let rem = (ts - w.start).rem_euclid(w.slide);
    let last_start = ts - rem;
    let n = w.duration.div_euclid(w.slide) + i64::from(w.duration % w.slide != 0);
    // Candidates `last_start - i * slide` for i in 0..n: every one starts at or before `ts`;
    // those ending at or before `ts` are the oldest ones, so the windows are the newest `count`.
    let count = (0..n)
        .take_while(|i| ts < last_start - i * w.slide + w.duration)
        .count();
    Pane {
        last_start,
        count: count as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn spec(duration: i64, slide: i64, start: i64) -> WindowSpec {
        WindowSpec {
            duration: duration * S,
            slide: slide * S,
            start: start * S,
        }
    }

    fn wins(ts: i64, w: &WindowSpec) -> Vec<(i64, i64)> {
        windows_of(ts * S, w).map(|(a, b)| (a / S, b / S)).collect()
    }

    #[test]
    fn tumbling_start_inclusive_end_exclusive() {
        let w = spec(300, 300, 0);
        assert_eq!(wins(725, &w), [(600, 900)]);
        assert_eq!(wins(600, &w), [(600, 900)], "12:05 is in [12:05, 12:10)");
        assert_eq!(wins(599, &w), [(300, 600)]);
    }

    #[test]
    fn sliding_from_spark_suite() {
        // DataFrameTimeWindowingSuite: 10 s window, 3 s slide.
        let w = spec(10, 3, 0);
        assert_eq!(wins(27, &w), [(18, 28), (21, 31), (24, 34), (27, 37)]);
        assert_eq!(wins(34, &w).len(), 3);
        assert_eq!(wins(56, &w).len(), 3);
        // The seed's 5-minute window sliding by 1 minute: 5 windows.
        let w = spec(300, 60, 0);
        assert_eq!(
            wins(630, &w),
            [(360, 660), (420, 720), (480, 780), (540, 840), (600, 900)]
        );
    }

    #[test]
    fn start_offset_and_times_before_1970() {
        // startTime = -5 s, 10 s windows: :25 and :30 both fall in [:25, :35).
        let w = spec(10, 10, -5);
        assert_eq!(wins(25, &w), [(25, 35)]);
        assert_eq!(wins(30, &w), [(25, 35)]);
        // -1 s with a 5 s window gives [-5 s, 0).
        assert_eq!(wins(-1, &spec(5, 5, 0)), [(-5, 0)]);
        assert_eq!(wins(-6, &spec(10, 5, 0)), [(-15, -5), (-10, 0)]);
    }
}
