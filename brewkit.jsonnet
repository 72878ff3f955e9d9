// BrewKit's own build, with BrewKit: `brewkit build` builds, tests and lints the workspace in a
// Rust image and writes the release binary to ./bin/brewkit.
// (scripts/test remains the full test suite: its BuildKit tests need the test backend.)
local cache = std.native('cache');
local copy = std.native('copy');
local copyFrom = std.native('copyFrom');

local rustImage = 'rust:1.88-bookworm';

local caches = [
  cache('brewkit-cargo-registry', '/usr/local/cargo/registry'),
  cache('brewkit-cargo-target', '/src/target'),
];

// A cargo command on the workspace sources, with the caches.
local cargo(command, extra={}) = {
  from: '_toolchain',
  workdir: '/src',
  cache: caches,
  copy: copyFrom('_sources', '/src', '/src'),
  command: command,
} + extra;

{
  apiVersion: 'brewkit/v1',

  vars: {
    // Shown by `brewkit version` builds made from a checkout.
    commit: {
      from: 'alpine/git',
      workdir: '/repo',
      copy: copy('.git', '.git'),
      command: 'git rev-parse --short HEAD',
    },
  },

  targets: {
    all: ['build', 'check'],
    check: ['test', 'clippy', 'fmt'],

    // Only the paths the build reads are sent to BuildKit.
    _sources: {
      from: 'scratch',
      workdir: '/src',
      copy: [
        copy(path, path)
        for path in ['Cargo.toml', 'Cargo.lock', 'cmd', 'pkg', 'data', 'tests', 'examples']
      ],
    },

    _toolchain: {
      from: rustImage,
      command: 'rustup component add clippy rustfmt',
    },

    // The target directory is a cache mount: the binary is copied out of it to be exported.
    build: cargo(
      'BREWKIT_COMMIT=${commit} cargo build --release --locked -p brewkit && mkdir -p /out && cp target/release/brewkit /out/',
      { output: '/out/brewkit:bin' },
    ),

    // Unit tests; the tests that need a BuildKit run with scripts/test.
    test: cargo('cargo test --locked --workspace --lib --bins'),
    clippy: cargo('cargo clippy --locked --workspace --all-targets -- -D warnings'),
    fmt: cargo('cargo fmt --all -- --check'),
  },
}
