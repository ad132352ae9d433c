//! microbatch: a deterministic micro-batch streaming engine with Spark Structured Streaming's
//! semantics, writing real Delta Lake tables.
//!
//! Data flows one way: [`source`] (JSON-lines files) → operators → [`sink`] (Delta), driven by
//! [`execution`], which alone orders the durable writes into the [`checkpoint`].

pub mod checkpoint;
pub mod cli;
pub mod clock;
pub mod connect;
pub mod demo;
pub mod duration;
pub mod event;
pub mod execution;
pub mod expr;
pub mod failpoints;
pub mod generator;
pub mod late;
pub mod operators;
pub mod parallel;
pub mod plan;
pub mod progress;
pub mod query;
pub mod query_file;
pub mod rejects;
pub mod scenario;
pub mod schema;
pub mod sink;
pub mod source;
pub mod state;
pub mod table;
pub mod ui;

/// The cores this process may use, probed once: `available_parallelism` reads the cgroup files
/// on every call, six system calls a batch would otherwise pay.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
