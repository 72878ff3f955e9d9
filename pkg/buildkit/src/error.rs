//! The crate's error type.

use crate::transport::BUILDKIT_HOST_ENV;

/// Errors of talking to BuildKit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An address brewkit cannot parse or does not support: bad input.
    #[error("invalid BuildKit address \"{address}\": {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A TLS file (CA, certificate, key) that cannot be read or holds no PEM: bad input.
    #[error("TLS file {}: {reason}", path.display())]
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// The daemon at an address could not be reached or did not speak BuildKit's gRPC.
    #[error("cannot connect to BuildKit at {address}: {reason}")]
    Connect {
        /// The address tried.
        address: String,
        /// Why it failed, with what to do where brewkit knows.
        reason: String,
    },
    #[error(
        "no BuildKit daemon answered; tried:\n{}\nStart one (buildkitd, or Docker 20.10 or newer, whose BuildKit is used through docker://), or name it with --addr or ${BUILDKIT_HOST_ENV}",
        tried.iter().map(|(a, why)| format!("  {a}: {why}")).collect::<Vec<_>>().join("\n")
    )]
    /// No address was given and none of the default ones answered.
    NoDaemon {
        /// Each address tried, with why it did not answer.
        tried: Vec<(String, String)>,
    },
    /// The daemon refused or failed a call.
    #[error("BuildKit {call}: {}", status_text(status))]
    Call {
        /// The call, as BuildKit names it ("Solve", "gateway Solve", "ResolveImageConfig", ...).
        call: &'static str,
        /// The daemon's answer.
        #[source]
        status: tonic::Status,
    },
    /// The daemon answered a call with something brewkit cannot use.
    #[error("BuildKit {call}: {what}")]
    Protocol {
        /// The call that was answered.
        call: &'static str,
        /// What is wrong with the answer.
        what: String,
    },
    /// An image's config, as the daemon resolved it, is not the JSON the OCI image spec defines.
    #[error("BuildKit ResolveImageConfig: the config of {reference} is not valid JSON: {source}")]
    ImageConfig {
        /// The image reference resolved.
        reference: String,
        /// Why it could not be parsed.
        #[source]
        source: serde_json::Error,
    },
    /// A bug in brewkit's client: a value it made cannot be sent, or a task of its own failed.
    #[error("internal error in the BuildKit client: {what}")]
    Internal {
        /// What went wrong.
        what: String,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
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

    /// A bug of brewkit's own: `what` went wrong, caused by `source`.
    pub(crate) fn internal(
        what: impl Into<String>,
        source: impl Into<Option<Box<dyn std::error::Error + Send + Sync>>>,
    ) -> Self {
        Self::Internal {
            what: what.into(),
            source: source.into(),
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
