//! What a build reports as it goes.

use std::{path::PathBuf, time::Duration};

use brewkit_buildkit::progress::Event;

/// What a build reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A target or var started (`node` is the target's name, or `var NAME`).
    Started { node: String },
    /// BuildKit progress of a node's solve.
    Progress { node: String, event: Event },
    /// An output was written to the host.
    Exported { node: String, local: PathBuf },
    /// A node finished.
    Finished { node: String, duration: Duration },
}
