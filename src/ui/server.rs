//! The live UI's HTTP server (hyper, HTTP/1.1, on 127.0.0.1 only).
//!
//! Routes: `/` the page, `/fragment` its content (what the page's script refreshes),
//! `/assets/ui.css` and `/assets/ui.js`, `/api/queries` (the query list as JSON) and
//! `/api/queries/<name>` (one query's chart data as JSON). Every request reads the checkpoint
//! folder again (through a cache keyed by each `progress.jsonl`), so queries that appear,
//! run or break while it serves are shown as they are.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::UiError;
use super::model::{Cache, load_folder, load_query};
use super::page;

struct Shared {
    checkpoints: PathBuf,
    cache: Cache,
}

/// A running UI server; it stops when dropped.
#[derive(Debug)]
pub struct UiServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl UiServer {
    /// Listens on `127.0.0.1:port` (0: a free port) and serves the queries under `checkpoints`.
    pub async fn start(checkpoints: &Path, port: u16) -> Result<Self, UiError> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| UiError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| UiError::Bind { addr, source })?;
        let shared = Arc::new(Shared {
            checkpoints: checkpoints.to_path_buf(),
            cache: Cache::default(),
        });
        let task = tokio::spawn(accept_loop(listener, shared));
        Ok(Self { addr, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's address, `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Serves until the task ends (it does not, unless the listener fails).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // A transient accept error (too many open files): wait a little and go on.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(route(&shared, req).await) }
            });
            // A client that goes away mid-answer is no error of ours.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn answer(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    if let Ok(v) = "no-store".parse() {
        r.headers_mut().insert(CACHE_CONTROL, v);
    }
    r
}

fn json(v: &impl serde::Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(v) {
        Ok(b) => answer(StatusCode::OK, "application/json", b),
        Err(e) => answer(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", e.to_string()),
    }
}

fn not_found(what: &str) -> Response<Full<Bytes>> {
    answer(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        format!("not found: {what}\n"),
    )
}

/// `%xx` escapes of a path segment decoded (query names are folder names).
fn decode(segment: &str) -> String {
    let b = segment.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn route(s: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return answer(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET only\n");
    }
    let path = req.uri().path().to_string();
    match path.as_str() {
        "/" | "/index.html" => {
            let folder = load_folder(&s.checkpoints, Some(&s.cache)).await;
            let html = page::document(
                "microbatch — streaming queries",
                &format!("Checkpoints in {}", s.checkpoints.display()),
                &page::body(std::slice::from_ref(&folder)),
                true,
            );
            answer(StatusCode::OK, "text/html; charset=utf-8", html)
        }
        "/fragment" => {
            let folder = load_folder(&s.checkpoints, Some(&s.cache)).await;
            answer(
                StatusCode::OK,
                "text/html; charset=utf-8",
                page::body(std::slice::from_ref(&folder)),
            )
        }
        "/assets/ui.css" => answer(StatusCode::OK, "text/css; charset=utf-8", page::CSS),
        "/assets/ui.js" => answer(StatusCode::OK, "text/javascript; charset=utf-8", page::JS),
        "/api/queries" => {
            let folder = load_folder(&s.checkpoints, Some(&s.cache)).await;
            json(&serde_json::json!({
                "checkpoints": folder.path,
                "problem": folder.problem,
                "queries": folder.queries.iter().map(|q| q.summary()).collect::<Vec<_>>(),
            }))
        }
        p => match p.strip_prefix("/api/queries/") {
            Some(name) if !name.is_empty() => {
                let name = decode(name);
                let dir = s.checkpoints.join(&name);
                if name.contains('/') || name.starts_with('.') || !super::model::is_checkpoint(&dir) {
                    return not_found(&format!("query {name}"));
                }
                json(&load_query(&dir, Some(&s.cache)).await)
            }
            _ => not_found(p),
        },
    }
}
