//! BuildKit client for BrewKit: wire definitions ([`proto`]), and the fsutil DiffCopy protocol
//! ([`filesync`]) that session services use to move files between the host and BuildKit.

pub mod filesync;
pub mod proto;

#[cfg(test)]
mod proto_tests;
