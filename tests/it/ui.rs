//! `microbatch ui` and `microbatch report` on a checkpoint folder the demo made: the API's
//! figures equal progress.jsonl's, the page (in headless Chromium, when installed) shows every
//! chart with one point per batch and the recorded watermarks, and the report holds the same.

use std::path::{Path, PathBuf};
use std::process::Command;

use microbatch::demo::{DemoConfig, run_demo};
use microbatch::ui::UiServer;
use serde_json::Value;

use crate::common::T0;

const CHARTS: [&str; 9] = [
    "event-time",
    "rates",
    "input-rows",
    "batch-duration",
    "operation-duration",
    "state-rows",
    "state-memory",
    "late",
    "rejected",
];

/// What progress.jsonl says of a query: batch ids, recorded watermarks (not the initial
/// epoch), late input rows in all.
struct Recorded {
    batches: Vec<u64>,
    watermarks: Vec<String>,
    late_rows: u64,
}

fn recorded(checkpoint: &Path) -> Recorded {
    let text = std::fs::read_to_string(checkpoint.join("progress.jsonl")).unwrap();
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    Recorded {
        batches: records.iter().map(|r| r["batchId"].as_u64().unwrap()).collect(),
        watermarks: records
            .iter()
            .filter_map(|r| r["eventTime"]["watermark"].as_str())
            .filter(|w| !w.starts_with("1970-01-01T00:00:00.000"))
            .map(str::to_owned)
            .collect(),
        late_rows: records
            .iter()
            .map(|r| r["numLateInputRows"].as_u64().unwrap())
            .sum(),
    }
}

/// A GET over a plain TCP connection (the server answers with a Content-Length body).
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The part of a page about one query: its `<section>`.
fn section<'a>(dom: &'a str, name: &str) -> &'a str {
    let start = dom
        .find(&format!(r#"<section class="query" id="q-{name}""#))
        .unwrap_or_else(|| panic!("no section for {name}"));
    let rest = &dom[start..];
    let end = rest[1..].find("<section").map(|e| e + 1).unwrap_or(rest.len());
    &rest[..end]
}

/// The `<figure>` of one chart of a section.
fn figure<'a>(section: &'a str, name: &str, chart: &str) -> &'a str {
    let start = section
        .find(&format!(r#"id="{name}-{chart}""#))
        .unwrap_or_else(|| panic!("{name}: no {chart} chart"));
    let rest = &section[start..];
    &rest[..rest.find("</figure>").unwrap()]
}

fn attr<'a>(text: &'a str, name: &str) -> &'a str {
    let key = format!(r#"{name}=""#);
    let start = text.find(&key).unwrap_or_else(|| panic!("no {name}")) + key.len();
    &text[start..start + text[start..].find('"').unwrap()]
}

/// Everything a person sees, checked on an HTML text (the live DOM or the report).
fn check_page(html: &str, queries: &[(String, Recorded)]) {
    for (name, r) in queries {
        assert!(
            html.contains(&format!(r#"<tr class="query" data-query="{name}">"#)),
            "{name} is not in the query list"
        );
        let s = section(html, name);
        let n = r.batches.len();
        for chart in CHARTS {
            let f = figure(s, name, chart);
            if chart == "event-time" && r.watermarks.is_empty() {
                continue; // a query without a watermark: the chart says so
            }
            assert_eq!(attr(f, "data-points"), n.to_string(), "{name} {chart}");
        }
        let rates = figure(s, name, "rates");
        assert_eq!(rates.matches(r#"data-series="input rate""#).count(), n, "{name}");
        assert_eq!(
            rates.matches(r#"data-series="process rate""#).count(),
            n,
            "{name}"
        );
        let input = figure(s, name, "input-rows");
        for b in &r.batches {
            assert!(input.contains(&format!(r#"data-series="input rows" data-batch="{b}""#)));
        }
        let et = figure(s, name, "event-time");
        let shown: Vec<&str> = et
            .split(r#"data-watermark=""#)
            .skip(1)
            .map(|p| &p[..p.find('"').unwrap()])
            .collect();
        assert_eq!(shown, r.watermarks, "{name}: the watermark points");
        let expected: Vec<i64> = r
            .watermarks
            .iter()
            .map(|w| {
                chrono::DateTime::parse_from_rfc3339(w)
                    .unwrap()
                    .timestamp_millis()
            })
            .collect();
        if !expected.is_empty() {
            let line: Vec<i64> = attr(&et[et.find(r#"class="watermark""#).unwrap()..], "data-values")
                .split(',')
                .map(|v| v.parse().unwrap())
                .collect();
            assert_eq!(line, expected, "{name}: the watermark line");
            assert_eq!(
                et.matches(r#"class="late""#).count() as u64,
                r.late_rows,
                "{name}: one point per late row"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_and_the_report_show_what_progress_jsonl_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = DemoConfig {
        input: d.join("input"),
        data: d.join("data"),
        checkpoints: d.join("checkpoints"),
        batches: 8,
        events_per_batch: 150,
        pace: std::time::Duration::from_millis(5),
        seed: 11,
        late_fraction: 0.2,
        max_files_per_trigger: std::num::NonZeroUsize::new(2).unwrap(),
        start: T0,
        fresh: false,
        show_rows: 1,
    };
    run_demo(&cfg, &mut Vec::new()).await.unwrap();
    let cp = &cfg.checkpoints;
    let names = ["agg", "enriched", "late", "raw"];
    let queries: Vec<(String, Recorded)> = names
        .iter()
        .map(|n| (n.to_string(), recorded(&cp.join(n))))
        .collect();
    assert!(queries[2].1.late_rows > 0, "the demo drops late rows");
    // Bad input beside them: a query with no batch yet, one whose last line is torn.
    std::fs::create_dir_all(cp.join("fresh")).unwrap();
    std::fs::write(cp.join("fresh/metadata"), r#"{"id":"fresh-id"}"#).unwrap();
    std::fs::create_dir_all(cp.join("torn")).unwrap();
    std::fs::write(cp.join("torn/metadata"), r#"{"id":"torn-id"}"#).unwrap();
    let agg = std::fs::read_to_string(cp.join("agg/progress.jsonl")).unwrap();
    std::fs::write(cp.join("torn/progress.jsonl"), format!("{agg}{}", &agg[..40])).unwrap();

    let server = UiServer::start(cp, 0).await.unwrap();
    let addr = server.addr();
    let (status, list) = get(addr, "/api/queries").await;
    assert_eq!(status, 200);
    let list: Value = serde_json::from_str(&list).unwrap();
    let listed: Vec<&str> = list["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["agg", "enriched", "fresh", "late", "raw", "torn"]);
    for (name, r) in &queries {
        let (status, body) = get(addr, &format!("/api/queries/{name}")).await;
        assert_eq!(status, 200);
        let q: Value = serde_json::from_str(&body).unwrap();
        let batches = q["batches"].as_array().unwrap();
        let ids: Vec<u64> = batches.iter().map(|b| b["batch_id"].as_u64().unwrap()).collect();
        assert_eq!(ids, r.batches, "{name}: points = batches");
        let wms: Vec<String> = batches
            .iter()
            .filter_map(|b| {
                b["watermark_ms"]
                    .as_i64()
                    .map(|_| b["watermark"].as_str().unwrap().to_string())
            })
            .collect();
        assert_eq!(wms, r.watermarks, "{name}: the recorded watermarks");
        assert_eq!(
            q["late_rows_total"].as_u64().unwrap(),
            r.late_rows,
            "{name}: late rows"
        );
    }
    let (_, torn) = get(addr, "/api/queries/torn").await;
    let torn: Value = serde_json::from_str(&torn).unwrap();
    assert_eq!(
        torn["batches"].as_array().unwrap().len(),
        queries[0].1.batches.len()
    );
    assert!(torn["notes"].to_string().contains("incomplete"), "{torn}");
    assert_eq!(get(addr, "/api/queries/nope").await.0, 404);
    let (_, page) = get(addr, "/").await;
    check_page(&page, &queries);
    assert!(page.contains("no batch has run yet"));

    // The report: the same figures, nothing from the network.
    let report = d.join("report.html");
    let o = Command::new(env!("CARGO_BIN_EXE_microbatch"))
        .arg("report")
        .arg(cp)
        .arg("-o")
        .arg(&report)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&report).unwrap();
    check_page(&html, &queries);
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the report refers to the network"
    );
    assert!(!html.contains("<script"), "the report needs no script");

    // The page in a browser.
    let chromium = PathBuf::from("/usr/bin/chromium");
    if !chromium.exists() {
        println!("skipped: chromium not installed");
        return;
    }
    let profile = tempfile::tempdir().unwrap();
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-page.png");
    let url = server.url();
    let run = move |extra: Vec<String>| {
        let profile = profile.path().to_path_buf();
        let url = url.clone();
        move || {
            Command::new("/usr/bin/chromium")
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--enable-logging=stderr",
                    "--v=0",
                    "--virtual-time-budget=5000",
                ])
                .arg(format!("--user-data-dir={}", profile.display()))
                .args(extra)
                .arg(url)
                .output()
                .unwrap()
        }
    };
    let dom = tokio::task::spawn_blocking(run(vec!["--dump-dom".into()]))
        .await
        .unwrap();
    let html = String::from_utf8_lossy(&dom.stdout).to_string();
    let log = String::from_utf8_lossy(&dom.stderr).to_string();
    check_page(&html, &queries);
    assert!(
        html.contains("no batch has run yet"),
        "the query without batches says so"
    );
    assert!(
        html.contains("last line is incomplete"),
        "the torn line is reported"
    );
    assert!(html.contains("· live, checked"), "the page's script ran");
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    let _ = std::fs::remove_file(&shot);
    let out = tokio::task::spawn_blocking(run(vec![
        format!("--screenshot={}", shot.display()),
        "--window-size=1400,2000".into(),
    ]))
    .await
    .unwrap();
    assert!(
        shot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("screenshot: {}", shot.display());
}
