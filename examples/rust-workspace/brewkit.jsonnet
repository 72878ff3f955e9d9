// A Cargo workspace: one toolchain target, caches for the registry and the target directory,
// build, test and clippy, and the release binary written to ./bin.
local cache = std.native('cache');
local copy = std.native('copy');
local copyFrom = std.native('copyFrom');

local caches = [
  cache('rust-workspace-registry', '/usr/local/cargo/registry'),
  cache('rust-workspace-target', '/src/target'),
];

// A cargo command on the sources, with the caches.
local cargo(command, extra={}) = {
  from: '_toolchain',
  workdir: '/src',
  cache: caches,
  copy: copyFrom('_sources', '/src', '/src'),
  command: command,
} + extra;

{
  apiVersion: 'brewkit/v1',
  targets: {
    all: ['build', 'check'],
    check: ['test', 'clippy'],

    // Only these paths are sent to BuildKit.
    _sources: {
      from: 'scratch',
      workdir: '/src',
      copy: [copy(p, p) for p in ['Cargo.toml', 'Cargo.lock', 'app', 'greeting']],
    },

    _toolchain: {
      from: 'rust:1.88-slim-bookworm',
      command: 'rustup component add clippy',
    },

    // The target directory is a cache mount, so the binary is copied out of it.
    build: cargo('cargo build --release && mkdir -p /out && cp target/release/app /out/', {
      output: '/out/app:bin',
    }),
    test: cargo('cargo test --workspace'),
    clippy: cargo('cargo clippy --workspace --all-targets -- -D warnings'),
  },
}
