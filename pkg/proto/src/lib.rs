//! Generated protobuf/gRPC bindings for the BuildKit wire protocol.
//!
//! The `.proto` sources live in `proto/` at the crate root, holding only the messages and
//! services BrewKit uses. They are our own
//! files carrying BuildKit's wire facts (package, message and field names,
//! field numbers, types), compiled at build time by `protox` and
//! `tonic-prost-build`. The module tree mirrors the protobuf packages, because
//! the generated code refers across packages with `super::` paths.
//!
//! All `map<..>` fields are generated as [`BTreeMap`](std::collections::BTreeMap)
//! so that encoding is deterministic: LLB vertices are identified by the
//! digest of their encoded bytes.
//!
//! With the `grpc` feature (the default), every service gets both a client (`*_client`) and a
//! server (`*_server`) module; BrewKit calls the daemon's services and serves the session ones.
//! Without it, only the messages are compiled, with no dependency on tonic: that is all LLB
//! needs.

#![allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::nursery,
    rustdoc::all,
    unreachable_pub
)]

/// Encoded `FileDescriptorSet` of every compiled `.proto` file (including
/// the well-known imports), as produced by `protox` at build time.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/buildkit_descriptor.bin"));

/// LLB, BuildKit's low-level build graph (`package pb`).
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/pb.rs"));
}

/// fsutil, the file-sync framing used by BuildKit sessions.
pub mod fsutil {
    /// `package fsutil.types`: file stats and DiffCopy packets.
    pub mod types {
        include!(concat!(env!("OUT_DIR"), "/fsutil.types.rs"));
    }
}

/// Google API types used on the wire.
pub mod google {
    /// `package google.rpc`: the gRPC error model.
    pub mod rpc {
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

/// Packages under the `moby` namespace.
pub mod moby {
    /// BuildKit APIs.
    pub mod buildkit {
        /// `package moby.buildkit.v1`: the Control service.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/moby.buildkit.v1.rs"));

            /// `package moby.buildkit.v1.types`: worker records.
            pub mod types {
                include!(concat!(env!("OUT_DIR"), "/moby.buildkit.v1.types.rs"));
            }

            /// `package moby.buildkit.v1.apicaps`: capability advertisement.
            pub mod apicaps {
                include!(concat!(env!("OUT_DIR"), "/moby.buildkit.v1.apicaps.rs"));
            }

            /// `package moby.buildkit.v1.sourcepolicy`: source policies.
            pub mod sourcepolicy {
                include!(concat!(
                    env!("OUT_DIR"),
                    "/moby.buildkit.v1.sourcepolicy.rs"
                ));
            }

            /// `package moby.buildkit.v1.frontend`: the LLBBridge gateway.
            pub mod frontend {
                include!(concat!(env!("OUT_DIR"), "/moby.buildkit.v1.frontend.rs"));
            }
        }

        /// Session secrets.
        pub mod secrets {
            /// `package moby.buildkit.secrets.v1`: the Secrets service.
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/moby.buildkit.secrets.v1.rs"));
            }
        }
    }

    /// Session file transfer and registry auth.
    pub mod filesync {
        /// `package moby.filesync.v1`: FileSync, FileSend and Auth services.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/moby.filesync.v1.rs"));
        }
    }

    /// Session ssh-agent forwarding.
    pub mod sshforward {
        /// `package moby.sshforward.v1`: the SSH service.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/moby.sshforward.v1.rs"));
        }
    }
}

// Two attributes rather than `all(test, ..)`: clippy's allow-unwrap-in-tests
// only recognises a plain `cfg(test)`.
#[cfg(test)]
#[cfg(feature = "grpc")]
mod tests;
