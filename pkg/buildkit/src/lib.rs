//! BuildKit client for BrewKit: wire definitions ([`proto`]), transports ([`transport`]), the
//! Control API ([`Client`]), and the fsutil DiffCopy protocol ([`filesync`]) that session services
//! use to move files between the host and BuildKit.

mod client;
mod error;
pub mod filesync;
pub mod proto;
pub mod session;
pub mod transport;

pub use client::Client;
pub use error::Error;
pub use session::{Session, SessionOptions};

#[cfg(test)]
mod proto_tests;
