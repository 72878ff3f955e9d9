//! Why a build stopped.

use std::path::PathBuf;

/// How many log lines of a failed command are shown.
pub const LOG_TAIL: usize = 20;

/// Why a build stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something the host must provide is missing (a secret file, the ssh agent): bad input.
    #[error("{0}")]
    Host(String),
    /// A target's or var's solve failed.
    #[error("{node} failed {}: {}{}", failed_where(command, &failure.step), failure.message, render_tail(&failure.log_tail))]
    Failed {
        node: String,
        command: Option<String>,
        failure: SolveFailure,
    },
    /// An output could not be written.
    #[error("{node}: output to {}: {message}", local.display())]
    Output {
        node: String,
        local: PathBuf,
        message: String,
    },
    /// Several targets failed (`--keep-going`): each is named.
    #[error("{} targets failed:\n{}", .0.len(), .0.iter().map(|e| format!("- {e}")).collect::<Vec<_>>().join("\n"))]
    Several(Vec<Error>),
    /// A bug in brewkit: a task panicked or a state that must exist was missing.
    #[error("internal error: {0} (this is a bug in brewkit; please report it with the command and definition that caused it)")]
    Internal(String),
    /// Talking to BuildKit failed outside a node (session, gateway, image configs).
    #[error(transparent)]
    BuildKit(#[from] brewkit_buildkit::Error),
}

/// What BuildKit said about a failed solve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SolveFailure {
    /// BuildKit's message (for a command: its exit code).
    pub message: String,
    /// The name of the step that failed, when BuildKit said which.
    pub step: Option<String>,
    /// The last log lines of the solve, at most [`LOG_TAIL`].
    pub log_tail: Vec<String>,
}

fn failed_where(command: &Option<String>, step: &Option<String>) -> String {
    match (command, step) {
        (Some(command), Some(step)) if step != command => format!("at `{step}`"),
        (Some(command), _) => format!("running `{command}`"),
        (None, Some(step)) => format!("at `{step}`"),
        (None, None) => "to build".to_owned(),
    }
}

fn render_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    format!("\nlast {} log lines:\n{}", lines.len(), lines.join("\n"))
}
