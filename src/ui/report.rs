//! `microbatch report`: the live page's charts as one self-contained HTML file (inline SVG and
//! style, no script, no network).

use std::path::{Path, PathBuf};

use super::UiError;
use super::model::load_paths;
use super::page;

/// The report of the queries `paths` name (query checkpoints, or folders of them).
pub async fn render(paths: &[PathBuf]) -> String {
    let folders = load_paths(paths).await;
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let made = crate::progress::format_ms(chrono::Utc::now().timestamp_millis());
    page::document(
        "microbatch — streaming query report",
        &format!("{} · made {made}", names.join(", ")),
        &page::body(&folders),
        false,
    )
}

/// Writes the report of `paths` to `out`; the number of queries in it.
pub async fn write(paths: &[PathBuf], out: &Path) -> Result<usize, UiError> {
    let folders = load_paths(paths).await;
    let n = folders.iter().map(|f| f.queries.len()).sum();
    let html = render(paths).await;
    std::fs::write(out, html).map_err(|source| UiError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    Ok(n)
}
