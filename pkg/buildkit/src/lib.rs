//! BuildKit client for BrewKit.
//!
//! For now this crate holds the wire definitions: protobuf messages and gRPC
//! clients/servers for BuildKit's Control API, the frontend gateway
//! (LLBBridge), the LLB graph (`pb`) and the session services (file sync,
//! auth, secrets, ssh forwarding). See [`proto`].

pub mod proto;

#[cfg(test)]
mod proto_tests;
