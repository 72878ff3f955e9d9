//! BuildKit client for BrewKit: transports ([`transport`]), the Control API ([`Client`]), the
//! session and its services ([`session`]) and the gateway ([`gateway`]). The wire definitions
//! ([`proto`]) and the fsutil DiffCopy protocol ([`filesync`]) are crates of their own,
//! re-exported here.

mod client;
mod error;
pub mod gateway;
pub mod log;
pub mod session;
pub mod status;
pub mod transport;

/// fsutil's DiffCopy protocol (the `brewkit-fsutil` crate), which the session's file services
/// speak.
pub use brewkit_fsutil as filesync;
/// BuildKit's wire definitions (the `brewkit-proto` crate, with its gRPC services).
pub use brewkit_proto as proto;

pub use client::{Client, SolveOptions};
pub use error::Error;
pub use session::{Session, SessionOptions, Transfer, MAX_SECRET_SIZE};

/// The largest gRPC message sent or accepted, either way: 16 MiB, what BuildKit's own client
/// allows (containerd's `DefaultMaxRecvMsgSize` and `DefaultMaxSendMsgSize`). A definition of
/// thousands of ops is about 1.5 MB; tonic's default of 4 MiB would refuse a large var's value.
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;

/// A fresh random id for a session or a solve, 25 hex digits like BuildKit's own: unique per
/// daemon, safe in headers.
pub fn new_id() -> String {
    use std::{
        collections::hash_map::RandomState,
        hash::{BuildHasher, Hasher},
    };
    let mut out = String::with_capacity(32);
    while out.len() < 25 {
        // Each RandomState is seeded afresh from the OS.
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out.truncate(25);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_unique_and_header_safe() {
        let a = super::new_id();
        let b = super::new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 25);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
