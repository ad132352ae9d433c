//! The integration tests: one binary (each links deltalake, and linking is slow).

mod common;

mod cli;
mod connect;
mod crash;
mod demo;
mod expressions;
mod join;
mod kill;
pub mod model;
mod passthrough;
mod pipelines;
mod progress;
mod reliability;
mod scenarios;
mod sharp_edges;
mod spark;
pub mod stateful;
mod ui;
