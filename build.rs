//! Two generated pieces:
//! - one test per scenario file (`scenarios/*.toml`) for the integration test binary, so
//!   `cargo test` names each scenario and no extra test binary has to link deltalake;
//! - the Spark Connect messages and service (`proto/spark_connect.proto`), compiled by protox,
//!   which is pure Rust: a fresh machine needs no `protoc`.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    spark_connect();
    scenario_tests();
}

fn spark_connect() {
    println!("cargo:rerun-if-changed=proto/spark_connect.proto");
    let fds = protox::compile(["proto/spark_connect.proto"], ["proto"])
        .unwrap_or_else(|e| panic!("proto/spark_connect.proto does not compile: {e}"));
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Maps in field order of their keys: what reaches an output is deterministic.
        .btree_map(".")
        .compile_fds(fds)
        .unwrap_or_else(|e| panic!("generating the Spark Connect code failed: {e}"));
}

fn scenario_tests() {
    println!("cargo:rerun-if-changed=scenarios");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("scenarios"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    let mut code = String::new();
    for f in files {
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("scenario");
        let name: String = stem
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        // The path is joined to the manifest folder when the test compiles, not here: a target
        // folder shared by two clones must not send one clone's tests to the other's files.
        let file = f.file_name().and_then(|s| s.to_str()).unwrap_or_default();
        let _ = writeln!(
            code,
            "#[tokio::test(flavor = \"multi_thread\", worker_threads = 2)]\nasync fn s{name}() {{ crate::scenarios::replay_twice(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/scenarios/\", {file:?})).await }}\n"
        );
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("scenario_tests.rs");
    std::fs::write(out, code).expect("write the generated scenario tests");
}
