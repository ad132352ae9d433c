//! `microbatch serve`: a Spark Connect server, so PySpark code written for Spark
//! (`SparkSession.builder.remote("sc://localhost:15002")`) runs on this engine unchanged.
//!
//! Only translation and transport live here; no streaming logic does:
//!
//! | file | what |
//! | --- | --- |
//! | `proto.rs` | the messages and the service, generated from `proto/spark_connect.proto` |
//! | `types.rs` | Spark Connect `DataType` ⇄ Arrow types; Arrow IPC bytes |
//! | `translate.rs` | relations and expressions → the engine's [`LogicalPlan`](crate::plan::LogicalPlan) |
//! | `batch.rs` | batch relations (`spark.read`, `createDataFrame`) evaluated to rows; `show()` text |
//! | `session.rs` | a client session: its config and its streaming queries |
//! | `service.rs` | the gRPC service: sessions by id, answers, errors as Spark's exception classes |
//!
//! A request this server does not serve is answered with an `AnalysisException`-class error
//! that names it; nothing a client sends panics the server or touches another session.

pub mod batch;
pub mod messages;
pub mod proto;
pub mod service;
pub mod session;
pub mod translate;
pub mod types;

use std::path::{Path, PathBuf};

pub use service::{ServeOptions, serve};

/// Errors answered to a client. Each maps to the Java exception class the PySpark client turns
/// into its own exception (`AnalysisException`, `StreamingQueryException`, …).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// A plan Spark's analyzer rejects (an unknown column or function, a streaming rule).
    #[error("{0}")]
    Analysis(String),
    /// A relation, expression, command or option this server does not serve.
    #[error("[UNSUPPORTED_FEATURE] {what} is not served by microbatch: {hint}")]
    Unserved {
        /// What was asked for (`relation 'sample'`).
        what: String,
        /// What to do instead.
        hint: String,
    },
    /// A path outside the folder the server may read and write.
    #[error(
        "[PATH_OUTSIDE_ROOT] {}: this server reads and writes only under {} (its --root); name a path inside it",
        path.display(),
        root.display()
    )]
    PathOutsideRoot {
        /// The path as the client named it, resolved.
        path: PathBuf,
        /// The server's root.
        root: PathBuf,
    },
    /// A streaming query that failed, or that is not known to this session.
    #[error("{0}")]
    StreamingQuery(String),
    /// A message that does not make sense (a required field missing).
    #[error("[INVALID_REQUEST] {0}")]
    InvalidRequest(String),
    /// The engine failed running a batch job or starting a query.
    #[error("{0}")]
    Engine(String),
    /// A fault in this server (a bug): the message says where.
    #[error("[INTERNAL_ERROR] {0}")]
    Internal(String),
}

impl ConnectError {
    /// The Java exception classes the client looks for, most specific first.
    pub fn classes(&self) -> &'static [&'static str] {
        match self {
            Self::Analysis(_) | Self::Unserved { .. } | Self::PathOutsideRoot { .. } => &[
                "org.apache.spark.sql.AnalysisException",
                "org.apache.spark.SparkThrowable",
                "java.lang.Exception",
            ],
            Self::StreamingQuery(_) => &[
                "org.apache.spark.sql.streaming.StreamingQueryException",
                "org.apache.spark.SparkThrowable",
                "java.lang.Exception",
            ],
            Self::InvalidRequest(_) => &["java.lang.IllegalArgumentException", "java.lang.Exception"],
            Self::Engine(_) | Self::Internal(_) => &[
                "org.apache.spark.SparkRuntimeException",
                "org.apache.spark.SparkThrowable",
                "java.lang.Exception",
            ],
        }
    }

    /// The gRPC status: the message, and the `ErrorInfo` detail that names the classes.
    pub fn to_status(&self) -> tonic::Status {
        use prost::Message;
        let message = self.to_string();
        let code = tonic::Code::Internal;
        let classes: Vec<String> = self.classes().iter().map(|c| c.to_string()).collect();
        let info = proto::ErrorInfo {
            reason: classes.first().cloned().unwrap_or_default(),
            domain: "org.apache.spark".into(),
            metadata: [(
                "classes".to_string(),
                serde_json::to_string(&classes).unwrap_or_else(|_| "[]".into()),
            )]
            .into_iter()
            .collect(),
        };
        let status = proto::RpcStatus {
            code: code as i32,
            message: message.clone(),
            details: vec![prost_types::Any {
                type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
                value: info.encode_to_vec(),
            }],
        };
        tonic::Status::with_details(code, message, status.encode_to_vec().into())
    }
}

/// Where a client may read and write: `--root` and below.
#[derive(Debug, Clone)]
pub struct Root(PathBuf);

impl Root {
    /// The root at `path` (made absolute; it must exist).
    pub fn new(path: &Path) -> std::io::Result<Self> {
        Ok(Self(std::fs::canonicalize(path)?))
    }

    /// The root folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `path` as the client named it (relative ones under the root), refused when it leaves
    /// the root — by `..`, an absolute path elsewhere, or a symbolic link out.
    pub fn confine(&self, path: &str) -> Result<PathBuf, ConnectError> {
        let p = Path::new(path.strip_prefix("file://").unwrap_or(path));
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.0.join(p)
        };
        let mut clean = PathBuf::new();
        for c in joined.components() {
            match c {
                std::path::Component::ParentDir => {
                    clean.pop();
                }
                std::path::Component::CurDir => {}
                other => clean.push(other),
            }
        }
        // The longest existing ancestor, resolved, must be under the root (a link out is
        // followed here, so it is caught).
        let mut existing = clean.as_path();
        let mut rest = Vec::new();
        while !existing.exists() {
            match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_owned());
                    existing = parent;
                }
                _ => break,
            }
        }
        let mut resolved = std::fs::canonicalize(existing).unwrap_or_else(|_| existing.to_path_buf());
        for name in rest.iter().rev() {
            resolved.push(name);
        }
        if resolved.starts_with(&self.0) {
            Ok(resolved)
        } else {
            Err(ConnectError::PathOutsideRoot {
                path: clean,
                root: self.0.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_root() {
        let dir = std::env::temp_dir().join(format!("mb-root-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let root = Root::new(&dir).unwrap();
        let base = root.path().to_path_buf();
        assert_eq!(root.confine("./data/events").unwrap(), base.join("data/events"));
        assert_eq!(root.confine("data/../x").unwrap(), base.join("x"));
        assert_eq!(
            root.confine(&format!("{}/data", base.display())).unwrap(),
            base.join("data")
        );
        for bad in ["../elsewhere", "/etc/passwd", "data/../../x", "file:///tmp"] {
            let e = root.confine(bad).unwrap_err();
            assert!(matches!(e, ConnectError::PathOutsideRoot { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("--root"), "{e}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/tmp", dir.join("out")).unwrap();
            assert!(root.confine("out/x").is_err());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_class_the_client_raises() {
        use prost::Message;
        let e = ConnectError::Analysis("[UNRESOLVED_COLUMN] x".into());
        let s = e.to_status();
        assert_eq!(s.message(), "[UNRESOLVED_COLUMN] x");
        let st = proto::RpcStatus::decode(s.details()).unwrap();
        assert_eq!(st.message, s.message());
        assert_eq!(st.code, s.code() as i32);
        let info = proto::ErrorInfo::decode(st.details[0].value.as_slice()).unwrap();
        assert!(info.metadata["classes"].contains("org.apache.spark.sql.AnalysisException"));
        let q = ConnectError::StreamingQuery("boom".into()).to_status();
        let st = proto::RpcStatus::decode(q.details()).unwrap();
        let info = proto::ErrorInfo::decode(st.details[0].value.as_slice()).unwrap();
        assert!(info.metadata["classes"].contains("StreamingQueryException"));
    }
}
