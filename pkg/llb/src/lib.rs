//! An LLB builder in the spirit of BuildKit's `client/llb`: a [`State`] is an immutable value
//! (a filesystem plus the defaults a run inherits: env, working directory, user, platform); each
//! operation returns a new one. [`State::marshal`] turns the graph into a `pb::Definition` whose
//! bytes, and so digests, depend only on the graph (sorted maps, sorted mounts, no random ids).
//!
//! Only ops that Docker 20.10's BuildKit (v0.8) runs are produced: source, exec and file ops.
//!
//! The modules follow BuildKit's `client/llb`: [`State`] and its defaults (`state`), sources
//! (`source`), runs (`exec`), file ops (`file`) and marshalling (`marshal`).

mod exec;
mod file;
mod marshal;
mod source;
mod state;

pub use brewkit_proto::pb;
pub use exec::{CacheSharing, Exec, Mount, Network, RunOptions, SSH_AGENT_SOCKET};
pub use file::CopyOptions;
pub use marshal::digest;
pub use source::{LocalOptions, ResolveMode};
pub use state::{platform, State};

/// BuildKit's marker for "no input" (a scratch mount).
const EMPTY: i64 = -1;
/// BuildKit's marker for "this mount has no output".
const SKIP_OUTPUT: i64 = -1;
/// Metadata key of the name shown in progress.
const CUSTOM_NAME: &str = "llb.customname";

#[cfg(test)]
mod tests;
