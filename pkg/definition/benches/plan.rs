//! Benchmark (docs/performance.md): evaluate + validate + plan of a generated 2,000-target definition.
//!
//! `cargo bench -p brewkit-definition --bench plan` prints a table of the median and fastest
//! time of each phase over the runs. Not a test: nothing here passes or fails on time.

use std::{
    path::Path,
    time::{Duration, Instant},
};

const TARGETS: usize = 2_000;
const RUNS: usize = 15;

/// A definition shaped like a large monorepo: every target copies its own sources, mounts a
/// cache, has env, a command using a var, an output and a dependency on an earlier target;
/// one target in ten starts from an image, the others from an earlier target.
fn definition(targets: usize) -> String {
    format!(
        r#"
local cache = std.native('cache');
local copy = std.native('copy');
local copyFrom = std.native('copyFrom');
local n = {targets};
local name(i) = 'target-%d' % i;
local target(i) = {{
  from: if i % 10 == 0 then 'golang:1.22' else name(i - 1 - (i % 7)),
  workdir: '/app',
  env: {{ INDEX: std.toString(i), GOFLAGS: '-mod=readonly' }},
  cache: [cache('go-build', '/root/.cache/go-build'), cache('go-mod', '/go/pkg/mod')],
  copy: [copy('services/%d' % i, 'services/%d' % i)]
        + (if i > 20 then [copyFrom(name(i - 20), '/app/bin', '/deps/%d' % i)] else []),
  command: 'go build -ldflags "-X main.Commit=${{commit}}" -o bin/%d ./services/%d' % [i, i],
  output: '/app/bin/%d:./bin' % i,
  dependsOn: if i > 3 then [name(i - 3)] else [],
}};
{{
  apiVersion: 'brewkit/v1',
  vars: {{
    commit: {{ from: 'alpine/git', workdir: '/src', copy: copy('.git', '.git'), command: 'git rev-parse HEAD' }},
  }},
  targets: {{ [name(i)]: target(i) for i in std.range(0, n - 1) }}
           + {{ all: [name(i) for i in std.range(0, n - 1)] }},
}}
"#
    )
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("brewkit.jsonnet");
    std::fs::write(&file, definition(TARGETS)).expect("write definition");
    let options = brewkit_jsonnet::Options::default();

    let mut evaluate = Vec::new();
    let mut validate = Vec::new();
    let mut plan = Vec::new();
    let mut total = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        let raw = brewkit_definition::compile(&file, &options).expect("evaluates");
        let evaluated = Instant::now();
        let (_, definition) =
            brewkit_definition::validate(Path::new("brewkit.jsonnet"), &raw).expect("valid");
        let validated = Instant::now();
        let planned = brewkit_definition::Plan::new(&definition, &[]).expect("plans");
        let done = Instant::now();
        assert_eq!(planned.order.len(), TARGETS + 1);
        evaluate.push(evaluated - start);
        validate.push(validated - evaluated);
        plan.push(done - validated);
        total.push(done - start);
    }

    println!("evaluate + validate + plan, {TARGETS} targets, {RUNS} runs");
    println!("| phase    | median    | fastest   |");
    println!("|----------|-----------|-----------|");
    for (phase, samples) in [
        ("evaluate", evaluate),
        ("validate", validate),
        ("plan", plan),
        ("total", total),
    ] {
        let fastest = *samples.iter().min().expect("samples");
        println!(
            "| {phase:<8} | {:>6.1} ms | {:>6.1} ms |",
            median(samples).as_secs_f64() * 1e3,
            fastest.as_secs_f64() * 1e3
        );
    }
}
