//! The HTML around the charts: the query list and one section per query, shared by the live
//! page and the report.

use std::fmt::Write;

use super::model::Folder;
use super::svg::{all_charts, esc};

/// The stylesheet, embedded in the binary.
pub const CSS: &str = include_str!("assets/ui.css");
/// The live page's script (refresh), embedded in the binary.
pub const JS: &str = include_str!("assets/ui.js");

/// An id-safe form of a query name.
pub fn anchor(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The query list and every query's charts.
pub fn body(folders: &[Folder]) -> String {
    let mut out = String::new();
    for f in folders {
        if let Some(p) = &f.problem {
            let _ = write!(out, r#"<p class="problem">{}</p>"#, esc(p));
        }
    }
    let queries: Vec<_> = folders.iter().flat_map(|f| &f.queries).collect();
    if !queries.is_empty() {
        out.push_str(
            r#"<table class="queries" id="query-list"><thead><tr><th>query</th><th>id</th><th>status</th><th>last batch</th><th>input rows</th><th>output rows</th><th>watermark (UTC)</th><th>rejected</th><th>late rows</th><th>state rows</th></tr></thead><tbody>"#,
        );
        for q in &queries {
            let s = q.summary();
            let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "–".into());
            let _ = write!(
                out,
                r##"<tr class="query" data-query="{n}"><td><a href="#q-{a}">{n}</a></td><td class="id">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"##,
                esc(s.id.as_deref().unwrap_or("–")),
                esc(&s.status),
                opt(s.last_batch),
                s.input_rows,
                s.output_rows,
                esc(&s
                    .watermark
                    .as_deref()
                    .map(|w| crate::progress::watermark_label(w, false))
                    .unwrap_or_else(|| "–".into())),
                s.rejected_rows,
                s.late_input_rows,
                opt(s.state_rows),
                n = esc(&s.name),
                a = anchor(&s.name),
            );
        }
        out.push_str("</tbody></table>");
    }
    for q in queries {
        let _ = write!(
            out,
            r#"<section class="query" id="q-{}" data-query="{}"><h2>{}</h2><p class="meta">{} · checkpoint {} · output {} · {} batches recorded</p>"#,
            anchor(&q.name),
            esc(&q.name),
            esc(&q.name),
            esc(&q.status),
            esc(&q.checkpoint),
            esc(q.output.as_deref().unwrap_or("unknown")),
            q.batches.len()
        );
        for n in &q.notes {
            let _ = write!(out, r#"<p class="problem">{}</p>"#, esc(n));
        }
        let _ = write!(out, r#"<div class="charts">{}</div></section>"#, all_charts(q));
    }
    out
}

/// A whole HTML document. `live`: link the served stylesheet and script (the UI); otherwise
/// inline the stylesheet and no script (the report).
pub fn document(title: &str, subtitle: &str, body: &str, live: bool) -> String {
    let head_assets = if live {
        r#"<link rel="stylesheet" href="/assets/ui.css"><script src="/assets/ui.js" defer></script>"#
            .to_string()
    } else {
        format!("<style>{CSS}</style>")
    };
    format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,"><title>{t}</title>{head_assets}</head><body><header><h1>{t}</h1><p class="sub">{s} <span id="updated"></span></p></header><main id="content">{body}</main><footer>Times are UTC. Colours: the Okabe–Ito palette. Hover a mark for its batch and figures; each chart's numbers are in the table below it.</footer></body></html>"#,
        t = esc(title),
        s = esc(subtitle),
    )
}
