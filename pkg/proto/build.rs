//! Compiles our BuildKit `.proto` files into Rust with `protox` (a pure-Rust
//! protobuf compiler, so no `protoc` binary is needed) and
//! `tonic-prost-build`.

use std::path::PathBuf;

/// Every file we compile, relative to `proto/`.
const PROTOS: &[&str] = &[
    "pb/ops.proto",
    "google/rpc/status.proto",
    "fsutil/types/stat.proto",
    "fsutil/types/wire.proto",
    "moby/buildkit/v1/apicaps/caps.proto",
    "moby/buildkit/v1/sourcepolicy/policy.proto",
    "moby/buildkit/v1/types/worker.proto",
    "moby/buildkit/v1/control.proto",
    "moby/buildkit/v1/frontend/gateway.proto",
    "moby/filesync/v1/filesync.proto",
    "moby/filesync/v1/auth.proto",
    "moby/buildkit/secrets/v1/secrets.proto",
    "moby/sshforward/v1/ssh.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", root.display());
    for file in PROTOS {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }

    let fds = protox::compile(PROTOS, [&root])?;

    // Keep the descriptor set so tests (and later tooling) can check the
    // wire names and field numbers that were actually compiled.
    std::fs::write(
        out_dir.join("buildkit_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    // The services' clients and servers only with the `grpc` feature: LLB needs the messages
    // alone, without tonic.
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    tonic_prost_build::configure()
        // BTreeMap makes map-field encoding order deterministic, which
        // matters because LLB op digests are hashes of the encoded bytes.
        .btree_map(".")
        .build_client(grpc)
        .build_server(grpc)
        // Connections to buildkitd use custom connectors (unix sockets,
        // docker hijack), so the `connect(url)` helpers are not generated.
        .build_transport(false)
        .compile_fds(fds)?;

    Ok(())
}
