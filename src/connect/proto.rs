//! The Spark Connect messages and service, generated at build time from
//! `proto/spark_connect.proto` (see `build.rs`), and the two `google.rpc` messages an error
//! answer carries.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// `spark.connect`.
pub mod spark {
    tonic::include_proto!("spark.connect");
}

/// `google.rpc.Status`: what a failed call carries in its `grpc-status-details-bin` trailer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

/// `google.rpc.ErrorInfo`: its `metadata["classes"]` names the Java exception the PySpark
/// client raises as `AnalysisException`, `StreamingQueryException`, ….
#[derive(Clone, PartialEq, prost::Message)]
pub struct ErrorInfo {
    #[prost(string, tag = "1")]
    pub reason: String,
    #[prost(string, tag = "2")]
    pub domain: String,
    #[prost(map = "string, string", tag = "3")]
    pub metadata: std::collections::HashMap<String, String>,
}
