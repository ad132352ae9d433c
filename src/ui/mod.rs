//! Watching a stream: `microbatch ui` (a live page on 127.0.0.1) and `microbatch report` (the
//! same charts in one self-contained HTML file).
//!
//! [`model`] reads checkpoints into chart data, [`svg`] draws the charts (hand-written SVG),
//! [`page`] puts them in HTML, [`server`] serves the page and the JSON API, [`report`] writes
//! the file. The assets (`assets/ui.css`, `assets/ui.js`) are compiled into the binary: the
//! page works offline.

pub mod model;
pub mod page;
pub mod report;
pub mod server;
pub mod svg;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use server::UiServer;

/// Errors of the UI and the report.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The port is taken (or not ours to use).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Starts the UI for a run (`run --ui`, the demo): the server, or `None` with a note on stderr
/// when the port is taken — a run never fails for its UI.
pub async fn start_for_run(checkpoints: &std::path::Path, port: u16) -> Option<UiServer> {
    match UiServer::start(checkpoints, port).await {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("note: no UI for this run ({e}); `microbatch ui --port <other>` shows it later");
            None
        }
    }
}
