//! What a build reports as it goes.

use std::{path::PathBuf, time::Duration};

use brewkit_buildkit::status::Event;

use crate::Error;

/// What a build reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// The build is about to start: the nodes it may run, in plan order (targets by name, vars
    /// as `var NAME`), how many targets may run at once (`None`: no limit) and whether the
    /// cache is ignored (`--no-cache`), which makes cache figures meaningless.
    Planned {
        /// Every node of the plan, in plan order.
        nodes: Vec<String>,
        /// `--jobs`: how many targets may run at once; `None` for no limit.
        jobs: Option<usize>,
        /// `--no-cache`: nothing will be cached.
        no_cache: bool,
    },
    /// A target or var started (`node` is the target's name, or `var NAME`).
    Started {
        /// The node.
        node: String,
    },
    /// BuildKit progress of a node's solve.
    Progress {
        /// The node whose solve first contained the step.
        node: String,
        /// What BuildKit reported.
        event: Event,
    },
    /// An output was written to the host.
    Exported {
        /// The target whose output it is.
        node: String,
        /// The host directory written into (absolute).
        local: PathBuf,
    },
    /// A node finished, its outputs on the host.
    Finished {
        /// The node.
        node: String,
        /// From its start to its outputs on the host.
        duration: Duration,
    },
    /// A node failed by itself (not because something it needs did).
    Failed {
        /// The node.
        node: String,
        /// From its start to its failure.
        duration: Duration,
        /// What failed, and how.
        failure: NodeFailure,
    },
    /// A running node was stopped because something else failed.
    Cancelled {
        /// The node.
        node: String,
        /// From its start to its cancellation.
        duration: Duration,
    },
    /// The build is over: how every node of the plan ended, in plan order.
    Ended {
        /// One result per node of the plan.
        nodes: Vec<NodeResult>,
    },
}

/// What is known about a node's failure, for renderers that show it apart from the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFailure {
    /// The whole error, as `brewkit:` prints it.
    pub message: String,
    /// BuildKit's reason without the command it quotes (`exit code: 3`), or the error's.
    pub reason: String,
    /// The command that failed, when a command did.
    pub command: Option<String>,
    /// The command's exit code, when BuildKit said.
    pub exit_code: Option<i32>,
    /// The last log lines of the node's solve.
    pub log_tail: Vec<String>,
}

impl NodeFailure {
    /// The failure `error` describes.
    pub(crate) fn of(error: &Error) -> Self {
        let message = error.to_string();
        match error {
            Error::Failed {
                command, failure, ..
            } => Self {
                reason: crate::error::reason(&failure.message),
                exit_code: exit_code(&failure.message),
                command: command.clone(),
                log_tail: failure.log_tail.clone(),
                message,
            },
            Error::Output { source, .. } => Self {
                reason: source.to_string(),
                message,
                ..Self::default()
            },
            _ => Self {
                reason: message.clone(),
                message,
                ..Self::default()
            },
        }
    }
}

/// The exit code BuildKit's message names (`…: exit code: 3`).
pub fn exit_code(message: &str) -> Option<i32> {
    let (_, after) = message.rsplit_once("exit code: ")?;
    let digits: String = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

/// How a node of the plan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    /// It and its outputs are done.
    Done,
    /// It failed, or something it had built on failed after it was built.
    Failed,
    /// It was stopped while running because something else failed.
    Cancelled,
    /// It never started: something it needs failed, or the build stopped first.
    Skipped,
}

/// How one node ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeResult {
    /// The target's name, or `var NAME`.
    pub node: String,
    /// How it ended.
    pub status: NodeStatus,
    /// From its start to its end; `None` when it never started.
    pub duration: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_read_from_buildkits_message() {
        assert_eq!(
            exit_code("executor failed running [/bin/sh -c exit 3]: exit code: 3"),
            Some(3)
        );
        assert_eq!(
            exit_code(r#"process "/bin/sh -c false" did not complete successfully: exit code: 1"#),
            Some(1)
        );
        assert_eq!(exit_code("context canceled"), None);
    }
}
