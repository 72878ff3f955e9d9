//! fsutil DiffCopy: sending a local directory to BuildKit and receiving an export from it.
//!
//! BuildKit moves file trees over a bidirectional stream of [`Packet`]s (the protocol of
//! `tonistiigi/fsutil`, unchanged since BuildKit v0.8 / Docker 20.10):
//!
//! 1. The sender walks its tree and sends one `STAT` packet per entry, depth first, each
//!    directory's entries in byte order of their names and a directory right before its
//!    contents; an empty `STAT` (no stat) ends the listing. Paths are relative and
//!    slash-separated; modes are Go `os.FileMode` bits (see [`mode`]); symlinks carry their
//!    target in `linkname`, and the second and later links of a hard-linked file the path of the
//!    first.
//! 2. The receiver asks for the content of a regular file with a `REQ` packet whose id is the
//!    index of its `STAT` among all `STAT`s (from 0).
//! 3. The sender answers with `DATA` packets for that id (fsutil reads in [`CHUNK_SIZE`]
//!    chunks), then an empty `DATA` packet.
//! 4. When it has everything, the receiver sends `FIN`; the sender answers `FIN` and the
//!    transfer is over. Either side reports a failure with an `ERR` packet holding the message.
//!
//! [`send`] is our side of `FileSync.DiffCopy` (BuildKit reads the build context, with the
//! [`Filter`] it asks for in the call's metadata: see [`SyncRequest`]); [`receive`] is our side
//! of `FileSend.DiffCopy` (BuildKit's local exporter writes into a directory). Both take the
//! peer's packets as a stream and put theirs on an mpsc channel, as a tonic handler has them.
//! Note that `FileSend.DiffCopy` is declared with `BytesMessage` but the local exporter sends
//! `Packet`s on it: its handler must decode them as such.
//!
//! Unix only. Extended attributes are neither sent nor written.

mod filter;
pub mod mode;
mod pattern;
mod receive;
mod send;
mod walk;
mod write;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use filter::{
    Filter, SyncRequest, KEY_DIR_NAME, KEY_EXCLUDE_PATTERNS, KEY_FOLLOW_PATHS, KEY_INCLUDE_PATTERNS,
};
pub use receive::{receive, ReceiveOptions, ReceiveStats};
pub use send::{send, SendStats};

use brewkit_proto::fsutil::types::{packet::PacketType, Packet};

/// The size of the DATA packets the sender fills (fsutil's copy buffer, 32 KiB).
pub const CHUNK_SIZE: usize = 32 * 1024;

/// Errors of a DiffCopy transfer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("open", "read", "rename", ...).
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An include or exclude pattern is malformed.
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A metadata value of the request could not be read.
    #[error("invalid {key} metadata: {reason}")]
    InvalidMetadata {
        /// The metadata key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The sender named a path that would be written outside the destination (absolute, with
    /// `..`, or through a symlink), or that is not a clean relative path.
    #[error("refusing path {path:?} from the sender: {reason}")]
    UnsafePath {
        /// The path as received.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// A received entry cannot be written without deleting what is in its way.
    #[error("cannot write {}: {reason}", path.display())]
    Conflict {
        /// The local path.
        path: PathBuf,
        /// What is in the way.
        reason: &'static str,
    },
    /// The destination of a transfer holds a symlink, which is never followed.
    #[error("{}", symlink_in_destination(path, dest))]
    SymlinkInDestination {
        /// The symlink.
        path: PathBuf,
        /// The destination.
        dest: PathBuf,
    },
    /// A local path to send is not valid UTF-8, which the protocol cannot carry.
    #[error("path is not valid UTF-8: {}", .0.display())]
    NonUtf8Path(PathBuf),
    /// The peer broke the protocol.
    #[error("DiffCopy protocol error: {0}")]
    Protocol(String),
    /// The peer reported an error (an ERR packet).
    #[error("error from the other side: {0}")]
    Remote(String),
    /// The stream of incoming packets failed.
    #[error("DiffCopy stream failed: {0}")]
    Transport(Box<tonic::Status>),
    /// The outgoing channel was closed.
    #[error("DiffCopy stream closed")]
    Closed,
    /// The thread writing received files stopped unexpectedly (a bug: please report it).
    #[error("the file writer stopped unexpectedly (please report this bug): {0}")]
    Writer(String),
}

impl Error {
    /// Maps an I/O error on `path`.
    pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_path_buf();
        move |source| Self::Io { op, path, source }
    }

    /// Whether the error is ours to report to the peer with an ERR packet (rather than the
    /// peer's, or the stream's).
    pub(crate) fn is_local(&self) -> bool {
        !matches!(self, Self::Remote(_) | Self::Transport(_) | Self::Closed)
    }
}

fn symlink_in_destination(path: &Path, dest: &Path) -> String {
    let on_the_way = if path == dest {
        String::new()
    } else {
        format!(" on the way to {}", dest.display())
    };
    format!(
        "{} is a symlink, which is never followed{on_the_way}: write to the path it points to instead",
        path.display()
    )
}

/// Tells the peer about an error of ours with an ERR packet, then passes the result on.
pub(crate) fn report_error<T>(
    result: Result<T, Error>,
    outgoing: &tokio::sync::mpsc::Sender<Result<Packet, tonic::Status>>,
) -> Result<T, Error> {
    if let Err(e) = &result {
        if e.is_local() {
            // Best effort: the stream may be gone or full, and we must not wait on it.
            let _ = outgoing.try_send(Ok(packet(
                PacketType::PacketErr,
                0,
                e.to_string().into_bytes(),
            )));
        }
    }
    result
}

/// A packet of `kind` with an id and data.
pub(crate) fn packet(kind: PacketType, id: u32, data: Vec<u8>) -> Packet {
    Packet {
        r#type: kind as i32,
        stat: None,
        id,
        data,
    }
}
