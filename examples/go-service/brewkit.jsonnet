// A Go service built the way the reference describes: sources staged in a private target,
// a compiler image with a build cache, the commit baked in through a var, tests and lint.
local cache = std.native('cache');
local copy = std.native('copy');
local copyFrom = std.native('copyFrom');

local goImage = 'golang:1.22';
local goCache = [
  cache('go-build', '/root/.cache/go-build'),
  cache('go-mod', '/go/pkg/mod'),
];

{
  apiVersion: 'brewkit/v1',

  vars: {
    gitcommit: {
      from: 'alpine/git',
      workdir: '/src',
      copy: copy('.git', '.git'),
      command: 'git rev-parse HEAD',
    },
  },

  targets: {
    all: ['build', 'check'],
    check: ['test', 'lint'],

    _sources: {
      from: 'scratch',
      workdir: '/app',
      copy: [
        copy('go.mod', 'go.mod'),
        copy('go.sum', 'go.sum'),
        copy('cmd', 'cmd'),
        copy('pkg', 'pkg'),
      ],
    },

    gocompiler: {
      from: goImage,
      workdir: '/app',
      env: { CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' },
      cache: goCache,
      copy: copyFrom('_sources', '/app', '/app'),
      command: 'go mod download',
    },

    build: {
      from: 'gocompiler',
      workdir: '/app',
      cache: goCache,
      command: 'go build -trimpath -ldflags "-X main.Commit=${gitcommit}" -o bin/service ./cmd/service',
      output: '/app/bin/service:./bin',
    },

    test: {
      from: 'gocompiler',
      workdir: '/app',
      cache: goCache,
      command: 'go test ./...',
    },

    lint: {
      from: 'golangci/golangci-lint:v1.59',
      workdir: '/app',
      cache: cache('golangci-lint', '/root/.cache/golangci-lint'),
      copy: copyFrom('_sources', '/app', '/app'),
      command: 'golangci-lint run ./...',
    },
  },
}
