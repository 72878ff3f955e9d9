//! The crate's error type.

use crate::transport::BUILDKIT_HOST_ENV;

/// Errors of talking to BuildKit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid BuildKit address \"{address}\": {reason}")]
    InvalidAddress { address: String, reason: String },
    /// A TLS file (CA, certificate, key) that cannot be read or holds no PEM: bad input.
    #[error("TLS file {}: {reason}", path.display())]
    TlsFile {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("cannot connect to BuildKit at {address}: {reason}")]
    Connect { address: String, reason: String },
    #[error(
        "no BuildKit daemon answered; tried:\n{}\nStart one (buildkitd, or Docker 20.10 or newer, whose BuildKit is used through docker://), or name it with --addr or ${BUILDKIT_HOST_ENV}",
        tried.iter().map(|(a, why)| format!("  {a}: {why}")).collect::<Vec<_>>().join("\n")
    )]
    NoDaemon { tried: Vec<(String, String)> },
    #[error("BuildKit {call}: {}", status_text(status))]
    Call {
        call: &'static str,
        status: tonic::Status,
    },
    #[error("session: {0}")]
    Session(String),
}

impl Error {
    /// Whether the daemon could not be reached at all (exit code 3 at the CLI).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Connect { .. } | Self::NoDaemon { .. })
    }

    /// The daemon's own message for a failed call (without which call it was), else the error.
    pub fn message(&self) -> String {
        match self {
            Self::Call { status, .. } => status_text(status),
            other => other.to_string(),
        }
    }

    pub(crate) fn call(call: &'static str) -> impl FnOnce(tonic::Status) -> Self {
        move |status| Self::Call { call, status }
    }
}

fn status_text(status: &tonic::Status) -> String {
    if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        status.message().to_owned()
    }
}
