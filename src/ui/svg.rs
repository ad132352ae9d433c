//! The charts, as hand-written SVG: one function per kind of chart, each returning a
//! `<figure>` with the chart, its legend, and the table of the numbers behind it.
//!
//! Every mark that stands for a batch carries `class="pt"`, `data-series` and `data-batch`
//! (and a `<title>`: the browser's tooltip names the batch and its figures), so a test — or a
//! person with the developer tools — can read the figures back from the page.

use std::fmt::Write;

use super::model::{BatchPoint, QueryView};
use crate::progress::format_ms;

/// The Okabe–Ito palette (distinguishable with the common colour-vision deficiencies).
pub mod palette {
    /// Orange.
    pub const ORANGE: &str = "#E69F00";
    /// Sky blue.
    pub const SKY: &str = "#56B4E9";
    /// Bluish green.
    pub const GREEN: &str = "#009E73";
    /// Yellow.
    pub const YELLOW: &str = "#F0E442";
    /// Blue.
    pub const BLUE: &str = "#0072B2";
    /// Vermillion.
    pub const VERMILLION: &str = "#D55E00";
    /// Reddish purple.
    pub const PURPLE: &str = "#CC79A7";
    /// Black.
    pub const BLACK: &str = "#000000";
}
use palette::*;

const W: f64 = 640.0;
const H: f64 = 270.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 46.0;

/// Escapes text for HTML and SVG.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number for people: integers whole, others with one or two decimals.
pub fn num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else if v.abs() < 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    }
}

/// Epoch ms as `HH:MM:SS` UTC.
fn hms(ms: i64) -> String {
    let s = format_ms(ms);
    s.get(11..19).unwrap_or(&s).to_string()
}

/// A step of 1, 2 or 5 × 10^k that cuts `span` into about `target` parts.
fn nice_step(span: f64, target: f64) -> f64 {
    let raw = (span / target).max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let n = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * mag
}

/// A y scale from 0 to a round number at or above `max`, with its ticks.
fn zero_based(max: f64) -> (f64, Vec<f64>) {
    let max = if max.is_finite() && max > 0.0 { max } else { 1.0 };
    let step = nice_step(max, 5.0);
    let top = (max / step).ceil() * step;
    let ticks = (0..=((top / step).round() as usize))
        .map(|i| i as f64 * step)
        .collect();
    (top, ticks)
}

/// Ticks for an event-time axis from `lo` to `hi` ms: a round step, about five of them.
fn time_ticks(lo: i64, hi: i64) -> (i64, Vec<i64>) {
    const STEPS: [i64; 16] = [
        1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
        3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000,
    ];
    let span = (hi - lo).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 6)
        .unwrap_or(86_400_000 * (span / 86_400_000 / 6 + 1));
    let first = lo.div_euclid(step) * step + if lo.rem_euclid(step) == 0 { 0 } else { step };
    let ticks = (0..).map(|i| first + i * step).take_while(|t| *t <= hi).collect();
    (step, ticks)
}

/// The event-time chart's size (it spans the page).
const EW: f64 = 1300.0;
const EH: f64 = 420.0;

/// The layout: a `w`×`h` frame, one slot per batch, in batch order.
struct Slots {
    n: usize,
    w: f64,
    h: f64,
}

impl Slots {
    fn width(&self) -> f64 {
        (self.w - LEFT - RIGHT) / self.n.max(1) as f64
    }
    fn center(&self, i: usize) -> f64 {
        LEFT + (i as f64 + 0.5) * self.width()
    }
    /// The bottom of the plot area.
    fn base(&self) -> f64 {
        self.h - BOTTOM
    }
    fn plot_h(&self) -> f64 {
        self.h - TOP - BOTTOM
    }
}

/// Frame, x axis (batch ids) and its label; `every` labels every k-th batch.
fn x_axis(out: &mut String, batches: &[BatchPoint], slots: &Slots) {
    let (w, h) = (slots.w, slots.h);
    let every = batches.len().div_ceil(if w > W { 25 } else { 12 }).max(1);
    let y = h - BOTTOM;
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="{y}" x2="{}" y2="{y}"/>"#,
        w - RIGHT
    );
    for (i, b) in batches.iter().enumerate() {
        if i % every == 0 {
            let x = slots.center(i);
            let _ = write!(
                out,
                r#"<line class="tick" x1="{x:.1}" y1="{y}" x2="{x:.1}" y2="{}"/><text class="tl" x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
                y + 4.0,
                y + 16.0,
                b.batch_id
            );
        }
    }
    let _ = write!(
        out,
        r#"<text class="al" x="{}" y="{}" text-anchor="middle">batch id (trigger times, UTC, in the tooltips and the table)</text>"#,
        LEFT + (w - LEFT - RIGHT) / 2.0,
        h - 8.0
    );
}

/// Y axis with grid lines and a rotated label.
fn y_axis(out: &mut String, ticks: &[(f64, String)], label: &str, slots: &Slots) {
    let (w, h) = (slots.w, slots.h);
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}"/>"#,
        h - BOTTOM
    );
    for (y, text) in ticks {
        let _ = write!(
            out,
            r#"<line class="grid" x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}"/><text class="tl" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            w - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            esc(text)
        );
    }
    let cy = TOP + (h - TOP - BOTTOM) / 2.0;
    let _ = write!(
        out,
        r#"<text class="al" x="16" y="{cy:.1}" text-anchor="middle" transform="rotate(-90 16 {cy:.1})">{}</text>"#,
        esc(label)
    );
}

fn legend(items: &[(&str, &str, &str)]) -> String {
    let mut out = String::from(r#"<ul class="legend">"#);
    for (name, colour, shape) in items {
        let _ = write!(
            out,
            r#"<li><span class="sw {shape}" style="background:{colour};border-color:{colour}"></span>{}</li>"#,
            esc(name)
        );
    }
    out.push_str("</ul>");
    out
}

/// A table of the numbers behind a chart, folded away under a `<details>`.
fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::from(
        r#"<details class="numbers"><summary>Table: the numbers behind this chart</summary><table><thead><tr>"#,
    );
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></details>");
    out
}

fn figure(query: &str, chart: &str, title: &str, points: usize, body: &str) -> String {
    format!(
        r#"<figure class="chart" id="{}-{chart}" data-chart="{chart}" data-points="{points}"><figcaption>{}</figcaption>{body}</figure>"#,
        esc(query),
        esc(title)
    )
}

fn svg_open(title: &str, slots: &Slots) -> String {
    format!(
        r#"<svg viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}">"#,
        esc(title),
        w = slots.w,
        h = slots.h
    )
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Points joined by a line.
    Line,
    /// Bars side by side.
    Bars,
    /// Bars stacked in series order.
    Stacked,
}

/// One series over the batches.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its name (legend, tooltip, `data-series`).
    pub name: String,
    /// Its colour.
    pub colour: &'static str,
    /// One value per batch.
    pub values: Vec<f64>,
}

/// A chart of series over the batches.
#[derive(Debug, Clone)]
pub struct BatchChart<'a> {
    /// The query.
    pub query: &'a str,
    /// `data-chart`, the id's suffix.
    pub chart: &'a str,
    /// The caption.
    pub title: &'a str,
    /// The y axis label, with its unit.
    pub y_label: &'a str,
    /// The unit in the tooltips.
    pub unit: &'a str,
    /// How the series are drawn.
    pub mark: Mark,
    /// The series.
    pub series: Vec<Series>,
}

/// The tooltip of batch `b`: its id and trigger time, then `lines`.
fn tip(b: &BatchPoint, lines: &[String]) -> String {
    let mut t = format!("batch {} · {} UTC", b.batch_id, b.timestamp.trim_end_matches('Z'));
    for l in lines {
        t.push('\n');
        t.push_str(l);
    }
    format!("<title>{}</title>", esc(&t))
}

/// Renders a [`BatchChart`] over `batches`.
pub fn batch_chart(c: &BatchChart, batches: &[BatchPoint]) -> String {
    let title = c.title;
    if batches.is_empty() {
        return figure(c.query, c.chart, title, 0, r#"<p class="empty">no batch yet</p>"#);
    }
    let slots = Slots {
        n: batches.len(),
        w: W,
        h: H,
    };
    let max = match c.mark {
        Mark::Stacked => (0..batches.len())
            .map(|i| {
                c.series
                    .iter()
                    .map(|s| s.values.get(i).copied().unwrap_or(0.0))
                    .sum()
            })
            .fold(0.0, f64::max),
        _ => c
            .series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .fold(0.0, f64::max),
    };
    let (top, ticks) = zero_based(max);
    let y = |v: f64| slots.base() - v / top * slots.plot_h();
    let mut out = svg_open(title, &slots);
    y_axis(
        &mut out,
        &ticks.iter().map(|t| (y(*t), num(*t))).collect::<Vec<_>>(),
        c.y_label,
        &slots,
    );
    x_axis(&mut out, batches, &slots);
    let sw = slots.width();
    let all_lines = |i: usize| -> Vec<String> {
        c.series
            .iter()
            .map(|s| {
                format!(
                    "{}: {} {}",
                    s.name,
                    num(s.values.get(i).copied().unwrap_or(0.0)),
                    c.unit
                )
            })
            .collect()
    };
    match c.mark {
        Mark::Line => {
            for s in &c.series {
                let pts: Vec<String> = s
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| format!("{:.1},{:.1}", slots.center(i), y(*v)))
                    .collect();
                let _ = write!(
                    out,
                    r#"<polyline class="series" fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
                    s.colour,
                    pts.join(" ")
                );
            }
            for s in &c.series {
                for (i, (b, v)) in batches.iter().zip(&s.values).enumerate() {
                    let _ = write!(
                        out,
                        r#"<circle class="pt" data-series="{}" data-batch="{}" data-value="{}" cx="{:.1}" cy="{:.1}" r="3.5" fill="{}">{}</circle>"#,
                        esc(&s.name),
                        b.batch_id,
                        v,
                        slots.center(i),
                        y(*v),
                        s.colour,
                        tip(b, &all_lines(i))
                    );
                }
            }
        }
        Mark::Bars | Mark::Stacked => {
            let k = if c.mark == Mark::Bars {
                c.series.len().max(1)
            } else {
                1
            };
            let bw = (sw * 0.7 / k as f64).max(1.0);
            for (i, b) in batches.iter().enumerate() {
                let mut base = 0.0;
                for (j, s) in c.series.iter().enumerate() {
                    let v = s.values.get(i).copied().unwrap_or(0.0);
                    let (x, from) = match c.mark {
                        Mark::Bars => (slots.center(i) - sw * 0.35 + j as f64 * bw, 0.0),
                        _ => (slots.center(i) - bw / 2.0, base),
                    };
                    let (y0, y1) = (y(from), y(from + v));
                    let _ = write!(
                        out,
                        r#"<rect class="pt" data-series="{}" data-batch="{}" data-value="{}" x="{x:.1}" y="{y1:.1}" width="{bw:.1}" height="{:.1}" fill="{}">{}</rect>"#,
                        esc(&s.name),
                        b.batch_id,
                        v,
                        (y0 - y1).max(0.0),
                        s.colour,
                        tip(b, &all_lines(i))
                    );
                    base += v;
                }
            }
        }
    }
    out.push_str("</svg>");
    let shape = if c.mark == Mark::Line { "dot" } else { "box" };
    let items: Vec<(&str, &str, &str)> = c
        .series
        .iter()
        .map(|s| (s.name.as_str(), s.colour, shape))
        .collect();
    out.push_str(&legend(&items));
    let mut head = vec!["batch", "trigger time (UTC)"];
    head.extend(c.series.iter().map(|s| s.name.as_str()));
    let rows: Vec<Vec<String>> = batches
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut r = vec![b.batch_id.to_string(), b.timestamp.clone()];
            r.extend(
                c.series
                    .iter()
                    .map(|s| num(s.values.get(i).copied().unwrap_or(0.0))),
            );
            r
        })
        .collect();
    out.push_str(&table(&head, &rows));
    figure(c.query, c.chart, title, batches.len(), &out)
}

/// The phases of a trigger, in the order they run (Spark's `durationMs` keys).
pub const PHASES: [&str; 5] = [
    "latestOffset",
    "walCommit",
    "getBatch",
    "addBatch",
    "commitOffsets",
];

/// Every chart over the batches of `q`, in page order (the event-time chart first).
pub fn all_charts(q: &QueryView) -> String {
    let b = &q.batches;
    let col = |f: fn(&BatchPoint) -> f64| b.iter().map(f).collect::<Vec<f64>>();
    let s = |name: &str, colour: &'static str, values: Vec<f64>| Series {
        name: name.to_string(),
        colour,
        values,
    };
    let phase_colours = [SKY, ORANGE, GREEN, BLUE, PURPLE];
    let phases: Vec<Series> = PHASES
        .iter()
        .zip(phase_colours)
        .map(|(p, colour)| {
            s(
                p,
                colour,
                b.iter()
                    .map(|x| x.duration_ms.get(*p).copied().unwrap_or(0) as f64)
                    .collect(),
            )
        })
        .collect();
    let charts = [
        BatchChart {
            query: &q.name,
            chart: "rates",
            title: "Input rate vs process rate",
            y_label: "rows per second",
            unit: "rows/s",
            mark: Mark::Line,
            series: vec![
                s("input rate", BLUE, col(|x| x.input_rows_per_second)),
                s("process rate", ORANGE, col(|x| x.processed_rows_per_second)),
            ],
        },
        BatchChart {
            query: &q.name,
            chart: "input-rows",
            title: "Input rows per batch",
            y_label: "rows",
            unit: "rows",
            mark: Mark::Bars,
            series: vec![
                s("input rows", SKY, col(|x| x.input_rows as f64)),
                s("output rows", GREEN, col(|x| x.output_rows as f64)),
            ],
        },
        BatchChart {
            query: &q.name,
            chart: "batch-duration",
            title: "Batch duration",
            y_label: "milliseconds",
            unit: "ms",
            mark: Mark::Line,
            series: vec![s(
                "batch duration",
                VERMILLION,
                col(|x| x.batch_duration_ms as f64),
            )],
        },
        BatchChart {
            query: &q.name,
            chart: "operation-duration",
            title: "Operation duration by phase (stacked)",
            y_label: "milliseconds",
            unit: "ms",
            mark: Mark::Stacked,
            series: phases,
        },
        BatchChart {
            query: &q.name,
            chart: "state-rows",
            title: "State rows (all stateful operators)",
            y_label: "rows in state",
            unit: "rows",
            mark: Mark::Line,
            series: vec![s("state rows", GREEN, col(|x| x.state_rows as f64))],
        },
        BatchChart {
            query: &q.name,
            chart: "state-memory",
            title: "State memory",
            y_label: "memory (KiB)",
            unit: "KiB",
            mark: Mark::Line,
            series: vec![s(
                "state memory",
                PURPLE,
                col(|x| x.state_memory_bytes as f64 / 1024.0),
            )],
        },
        BatchChart {
            query: &q.name,
            chart: "late",
            title: "Late rows dropped by the watermark",
            y_label: "rows or groups",
            unit: "",
            mark: Mark::Bars,
            series: vec![
                s("late input rows", VERMILLION, col(|x| x.late_input_rows as f64)),
                s(
                    "late groups (Spark's numRowsDroppedByWatermark)",
                    ORANGE,
                    col(|x| x.late_groups_dropped as f64),
                ),
            ],
        },
        BatchChart {
            query: &q.name,
            chart: "rejected",
            title: "Rejected input records",
            y_label: "records",
            unit: "records",
            mark: Mark::Bars,
            series: vec![s("rejected records", BLACK, col(|x| x.rejected_rows as f64))],
        },
    ];
    let mut out = event_time_chart(q);
    for c in &charts {
        out.push_str(&batch_chart(c, b));
    }
    out
}

/// The event-time picture: per batch the event-time range of its input (a bar from min to
/// max), the rows dropped as late (points), the watermark it ran with (a step line) and the
/// windows it wrote (green marks beside the bar).
pub fn event_time_chart(q: &QueryView) -> String {
    const TITLE: &str = "Event time, the watermark and late rows";
    let b = &q.batches;
    let mut values: Vec<i64> = Vec::new();
    for p in b {
        values.extend(p.event_time_min_ms);
        values.extend(p.event_time_max_ms);
        values.extend(p.watermark_ms);
    }
    let index: std::collections::HashMap<u64, usize> =
        b.iter().enumerate().map(|(i, p)| (p.batch_id, i)).collect();
    let late: Vec<_> = q
        .late_rows
        .iter()
        .filter_map(|l| Some((l, *index.get(&l.batch_id)?, l.event_time_ms?)))
        .collect();
    values.extend(late.iter().map(|(_, _, t)| *t));
    let windows: Vec<_> = q
        .windows
        .iter()
        .filter_map(|w| Some((w, *index.get(&w.batch_id?)?)))
        .collect();
    for (w, _) in &windows {
        values.extend([w.start_ms, w.end_ms]);
    }
    let (Some(lo), Some(hi)) = (values.iter().min().copied(), values.iter().max().copied()) else {
        let why = if b.is_empty() {
            "no batch yet"
        } else {
            "no event-time figures: the query has no watermark (progress records carry eventTime only then)"
        };
        return figure(
            &q.name,
            "event-time",
            TITLE,
            0,
            &format!(r#"<p class="empty">{why}</p>"#),
        );
    };
    let pad = ((hi - lo) / 20).max(1_000);
    let (lo, hi) = (lo - pad, hi + pad);
    let (_, ticks) = time_ticks(lo, hi);
    let slots = Slots {
        n: b.len(),
        w: EW,
        h: EH,
    };
    let y = |t: i64| slots.base() - (t - lo) as f64 / (hi - lo) as f64 * slots.plot_h();
    let sw = slots.width();
    let mut out = svg_open(TITLE, &slots);
    let day = format_ms(lo).get(..10).unwrap_or("").to_string();
    y_axis(
        &mut out,
        &ticks
            .iter()
            .map(|t| (y(*t), hms(*t)[..5].to_string()))
            .collect::<Vec<_>>(),
        &format!("event time (UTC, {day})"),
        &slots,
    );
    x_axis(&mut out, b, &slots);
    let late_in = |i: usize| late.iter().filter(|(_, j, _)| *j == i).count();
    let windows_in = |i: usize| windows.iter().filter(|(_, j)| *j == i).count();
    let batch_tip = |i: usize, p: &BatchPoint| {
        tip(
            p,
            &[
                format!(
                    "event time: {} – {} UTC",
                    p.event_time_min.as_deref().unwrap_or("none"),
                    p.event_time_max.as_deref().unwrap_or("none")
                ),
                format!(
                    "late-row threshold: {}",
                    p.late_threshold_ms
                        .map(format_ms)
                        .unwrap_or_else(|| "none".into())
                ),
                format!(
                    "watermark: {}",
                    p.watermark
                        .as_deref()
                        .map(|w| crate::progress::watermark_label(w, false))
                        .unwrap_or_else(|| "none".into())
                ),
                format!("input rows: {}, late rows: {}", p.input_rows, p.late_input_rows),
                format!("windows written: {}", windows_in(i)),
            ],
        )
    };
    // Input ranges.
    for (i, p) in b.iter().enumerate() {
        if let (Some(min), Some(max)) = (p.event_time_min_ms, p.event_time_max_ms) {
            let (y0, y1) = (y(min), y(max));
            let _ = write!(
                out,
                r#"<rect class="pt range" data-series="event-time range" data-batch="{}" data-min="{}" data-max="{}" x="{:.1}" y="{y1:.1}" width="{:.1}" height="{:.1}" fill="{SKY}" fill-opacity="0.55" stroke="{SKY}">{}</rect>"#,
                p.batch_id,
                esc(p.event_time_min.as_deref().unwrap_or("")),
                esc(p.event_time_max.as_deref().unwrap_or("")),
                slots.center(i) - sw * 0.15,
                sw * 0.3,
                (y0 - y1).max(1.0),
                batch_tip(i, p)
            );
        }
    }
    // Windows written, beside the bar.
    for (w, i) in &windows {
        let (y0, y1) = (y(w.start_ms), y(w.end_ms));
        let _ = write!(
            out,
            r#"<rect class="window" data-batch="{}" data-start="{}" data-end="{}" x="{:.1}" y="{y1:.1}" width="{:.1}" height="{:.1}" fill="{GREEN}" fill-opacity="0.18" stroke="{GREEN}" stroke-width="0.6"><title>{}</title></rect>"#,
            b[*i].batch_id,
            format_ms(w.start_ms),
            format_ms(w.end_ms),
            slots.center(*i) + sw * 0.18,
            (sw * 0.14).max(2.0),
            (y0 - y1).max(1.0),
            esc(&format!(
                "window [{} – {}) UTC\nwritten by batch {}",
                format_ms(w.start_ms),
                format_ms(w.end_ms),
                b[*i].batch_id
            ))
        );
    }
    // The two watermarks, as steps (each is constant during a batch): the late-row threshold
    // (dashed) and the eviction watermark (solid, with one point per batch).
    let step = |f: fn(&BatchPoint) -> Option<i64>| {
        let mut path = String::new();
        for (i, p) in b.iter().enumerate() {
            if let Some(wm) = f(p) {
                let (x0, x1, yy) = (slots.center(i) - sw / 2.0, slots.center(i) + sw / 2.0, y(wm));
                let cmd = if i == 0 || f(&b[i - 1]).is_none() {
                    'M'
                } else {
                    'L'
                };
                let _ = write!(path, "{cmd}{x0:.1},{yy:.1} L{x1:.1},{yy:.1} ");
            }
        }
        let values: Vec<String> = b.iter().filter_map(f).map(|v| v.to_string()).collect();
        (path.trim_end().to_string(), values.join(","))
    };
    let (d, values) = step(|p| p.late_threshold_ms);
    let _ = write!(
        out,
        r#"<path class="late-threshold" data-values="{values}" d="{d}" fill="none" stroke="{BLACK}" stroke-width="1.4" stroke-dasharray="5 4"/>"#
    );
    let (d, values) = step(|p| p.watermark_ms);
    let _ = write!(
        out,
        r#"<path class="watermark" data-values="{values}" d="{d}" fill="none" stroke="{BLUE}" stroke-width="2.4"/>"#
    );
    for (i, p) in b.iter().enumerate() {
        if let Some(wm) = p.watermark_ms {
            let _ = write!(
                out,
                r#"<circle class="pt wm" data-series="watermark" data-batch="{}" data-watermark="{}" cx="{:.1}" cy="{:.1}" r="3.5" fill="{BLUE}">{}</circle>"#,
                p.batch_id,
                esc(p.watermark.as_deref().unwrap_or("")),
                slots.center(i),
                y(wm),
                batch_tip(i, p)
            );
        }
    }
    // Late rows, spread a little across the slot so that they do not hide one another.
    for (k, (l, i, t)) in late.iter().enumerate() {
        let jitter = ((k * 7919) % 97) as f64 / 97.0 - 0.5;
        let x = slots.center(*i) - sw * 0.3 + jitter * sw * 0.16;
        let colour = if l.fully_dropped { VERMILLION } else { PURPLE };
        let _ = write!(
            out,
            r#"<circle class="late" data-batch="{}" data-event-time="{t}" cx="{x:.1}" cy="{:.1}" r="2.4" fill="{colour}" fill-opacity="0.8"><title>{}</title></circle>"#,
            l.batch_id,
            y(*t),
            esc(&format!(
                "late row, dropped by batch {} ({})\nevent time {} UTC\nwatermark {} UTC\n{}",
                l.batch_id,
                l.operator,
                format_ms(*t),
                l.watermark_ms.map(format_ms).unwrap_or_default(),
                if l.fully_dropped {
                    "counted in no window"
                } else {
                    "missed some of its windows"
                }
            ))
        );
    }
    out.push_str("</svg>");
    out.push_str(&legend(&[
        ("event-time range of the batch's input (min – max)", SKY, "box"),
        (
            "watermark of the batch (eviction: windows ending at or before it are final)",
            BLUE,
            "line",
        ),
        (
            "late-row threshold (the previous batch's watermark; older rows are dropped)",
            BLACK,
            "line dash",
        ),
        ("late row, counted in no window", VERMILLION, "dot"),
        ("late row, missed some of its windows", PURPLE, "dot"),
        (
            "window in the output table, at the batch that last wrote it",
            GREEN,
            "box",
        ),
    ]));
    if q.late_rows_total > q.late_rows.len() {
        let _ = write!(
            out,
            r#"<p class="note">{} of {} late rows drawn (evenly sampled).</p>"#,
            q.late_rows.len(),
            q.late_rows_total
        );
    }
    let rows: Vec<Vec<String>> = b
        .iter()
        .enumerate()
        .map(|(i, p)| {
            vec![
                p.batch_id.to_string(),
                p.timestamp.clone(),
                p.event_time_min.clone().unwrap_or_default(),
                p.event_time_max.clone().unwrap_or_default(),
                p.watermark.clone().unwrap_or_default(),
                p.late_threshold_ms.map(format_ms).unwrap_or_default(),
                p.late_input_rows.to_string(),
                late_in(i).to_string(),
                windows_in(i).to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "batch",
            "trigger time (UTC)",
            "event time min",
            "event time max",
            "watermark",
            "late-row threshold",
            "late input rows",
            "late rows drawn",
            "windows written",
        ],
        &rows,
    ));
    figure(&q.name, "event-time", TITLE, b.len(), &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            zero_based(93.0),
            (100.0, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0])
        );
        assert_eq!(zero_based(0.0).0, 1.0);
        let (step, t) = time_ticks(1_000, 1_000 + 20 * 60_000);
        assert_eq!(step, 300_000);
        assert_eq!(t.len(), 4);
        assert_eq!(esc("<a&\"b\">"), "&lt;a&amp;&quot;b&quot;&gt;");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(2.345), "2.35");
    }
}
