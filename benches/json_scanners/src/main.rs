//! Nanoseconds per line for each JSON scanner on the same event lines, one thread, median of
//! seven rounds. Each reads a line into the five fields the seed's decoder needs: as raw
//! values (what the decoder does, then converts each field) and as typed fields.

use serde::Deserialize;
use std::time::{Duration, Instant};

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    event_id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    user_id: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    event_type: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    value: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct Lazy<'a> {
    #[serde(borrow)]
    event_id: Option<sonic_rs::LazyValue<'a>>,
    #[serde(borrow)]
    timestamp: Option<sonic_rs::LazyValue<'a>>,
    #[serde(borrow)]
    user_id: Option<sonic_rs::LazyValue<'a>>,
    #[serde(borrow)]
    event_type: Option<sonic_rs::LazyValue<'a>>,
    #[serde(borrow)]
    value: Option<sonic_rs::LazyValue<'a>>,
}

#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(borrow)]
    event_id: &'a str,
    #[serde(borrow)]
    timestamp: &'a str,
    user_id: i64,
    #[serde(borrow)]
    event_type: &'a str,
    value: f64,
}

impl Typed<'_> {
    fn sum(&self) -> usize {
        self.event_id.len() + self.timestamp.len() + self.event_type.len() + self.user_id as usize + self.value as usize
    }
}

fn median(mut f: impl FnMut() -> usize, lines: usize) -> (f64, usize) {
    let mut times = Vec::new();
    let mut check = 0;
    for _ in 0..7 {
        let t = Instant::now();
        check = f();
        times.push(t.elapsed());
    }
    times.sort();
    let d: Duration = times[times.len() / 2];
    (d.as_nanos() as f64 / lines as f64, check)
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: json_scanners DIR (JSON-lines files of the seed's events)");
        std::process::exit(2)
    });
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    let mut text = String::new();
    for p in names.iter().take(20) {
        text.push_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let n = lines.len();
    let bad = |what: &str| -> ! { panic!("{what} refused a line the others read") };
    let runs: Vec<(&str, (f64, usize))> = vec![
        (
            "serde_json, raw fields (the decoder's)",
            median(
                || {
                    lines
                        .iter()
                        .map(|l| {
                            let e: Raw = serde_json::from_str(l).unwrap_or_else(|_| bad("serde_json"));
                            [e.event_id, e.timestamp, e.user_id, e.event_type, e.value]
                                .iter()
                                .map(|v| v.map_or(0, |v| v.get().len()))
                                .sum::<usize>()
                        })
                        .sum()
                },
                n,
            ),
        ),
        (
            "sonic-rs, raw fields (LazyValue)",
            median(
                || {
                    lines
                        .iter()
                        .map(|l| {
                            let e: Lazy = sonic_rs::from_str(l).unwrap_or_else(|_| bad("sonic-rs"));
                            [&e.event_id, &e.timestamp, &e.user_id, &e.event_type, &e.value]
                                .iter()
                                .map(|v| v.as_ref().map_or(0, |v| v.as_raw_str().len()))
                                .sum::<usize>()
                        })
                        .sum()
                },
                n,
            ),
        ),
        (
            "serde_json, typed fields",
            median(
                || {
                    lines
                        .iter()
                        .map(|l| serde_json::from_str::<Typed>(l).unwrap_or_else(|_| bad("serde_json")).sum())
                        .sum()
                },
                n,
            ),
        ),
        (
            "sonic-rs, typed fields",
            median(
                || {
                    lines
                        .iter()
                        .map(|l| sonic_rs::from_str::<Typed>(l).unwrap_or_else(|_| bad("sonic-rs")).sum())
                        .sum()
                },
                n,
            ),
        ),
        (
            "simd-json, typed fields (a copy per line: it parses in place)",
            median(
                || {
                    let mut buf = Vec::new();
                    lines
                        .iter()
                        .map(|l| {
                            buf.clear();
                            buf.extend_from_slice(l.as_bytes());
                            simd_json::serde::from_slice::<Typed>(&mut buf)
                                .unwrap_or_else(|_| bad("simd-json"))
                                .sum()
                        })
                        .sum()
                },
                n,
            ),
        ),
    ];
    println!("{n} lines from {} files of {dir}, one thread, median of 7 rounds:", names.len().min(20));
    for (name, (ns, check)) in &runs {
        println!("  {ns:7.0} ns/line  {name}  (checksum {check})");
    }
}
