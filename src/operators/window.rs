//! Spark's time windows (R8.3): start inclusive, end exclusive, aligned to the Unix epoch plus
//! the start offset, in microseconds.

use crate::query::WindowSpec;

/// The windows `[start, end)` an event at `ts` belongs to, oldest first.
pub fn windows_of(ts: i64, w: &WindowSpec) -> impl Iterator<Item = (i64, i64)> + '_ {
    // Spark: lastStart = ts - ((ts - startTime) % slide, made non-negative).
    let rem = (ts - w.start).rem_euclid(w.slide);
    let last_start = ts - rem;
    let n = w.duration.div_euclid(w.slide) + i64::from(w.duration % w.slide != 0);
    (0..n)
        .rev()
        .map(move |i| {
            let start = last_start - i * w.slide;
            (start, start + w.duration)
        })
        .filter(move |&(start, end)| start <= ts && ts < end)
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
