//! Property tests of the renderers: builds made up at random, but as a build could report them (a
//! plan of 1–8 targets and vars, targets started under `-j`, steps run, cached, failed or
//! cancelled, log chunks of any bytes, warnings, outputs, failures and cancellations in any
//! order, progress that trails its target's end, an `Ended` that agrees with it all, or none
//! when the build was interrupted), rendered in every mode and checked against what
//! docs/cli.md promises. Arbitrary, ill-formed event streams check that no renderer panics.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::PathBuf,
    sync::Arc,
    time::{Duration, UNIX_EPOCH},
};

use base64::{engine::general_purpose::STANDARD, Engine};
use brewkit_build::{BuildEvent, NodeFailure, NodeResult, NodeStatus};
use brewkit_buildkit::{
    proto::moby::buildkit::v1::{StatusResponse, Vertex, VertexLog},
    status::{Event, LogStream, RawStatus},
};
use proptest::{collection::vec, prelude::*, sample::select, test_runner::Config};
use serde_json::Value;

use crate::{text::Lines, Clock, Mode, Options, Renderer};

/// A modest number of cases (fewer where the live view draws: off a terminal, crossterm asks
/// `tput` for the width at every redraw); `PROPTEST_CASES` sets another for a longer run by
/// hand. Failures are not saved: a case worth keeping becomes a test of its own.
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

// The longest partial line `Lines` keeps: a longer line is cut where a chunk ends, so the
// lines of a stream with one are not compared.
use brewkit_buildkit::log::PARTIAL_LIMIT;

const TARGETS: [&str; 12] = [
    "app",
    "lint",
    "test",
    "api:v2",
    "x,y",
    "50%",
    "two words",
    "büild",
    "deploy",
    "docs",
    "e2e",
    "img-1",
];
const VARS: [&str; 3] = ["var v", "var sha", "var version"];
const LOOKUP: &str = "resolve image config for ";

// ---------------------------------------------------------------------------------------------
// What a build does, as random choices.

#[derive(Debug, Clone)]
enum StepKind {
    /// Started, later completed (or not).
    Run,
    /// Cached, not (yet) completed.
    Cached,
    /// Cached then completed, as BuildKit reports a cache hit.
    CachedDone,
    /// An image lookup: started and completed at once (may come before its target starts).
    Lookup,
}

#[derive(Debug, Clone)]
enum How {
    Ok,
    /// BuildKit's error for the step.
    Error(String),
    Cancelled,
}

/// One thing that happens. Each `usize` picks among what it may apply to (running targets, open
/// steps…), modulo their number; an action that applies to nothing is left out.
#[derive(Debug, Clone)]
enum Action {
    Start(usize),
    Step(usize, StepKind, String),
    /// A log chunk for an open step of a running target.
    Log(usize, usize, bool, Vec<u8>),
    /// A text written in two chunks cut at a byte (maybe inside a character).
    SplitLog(usize, String, usize),
    Complete(usize, usize, How),
    /// BuildKit marks a step it has seen start (or end) cached.
    CacheAgain(usize, usize),
    Warning(usize, String),
    Transfer(usize),
    Export(usize),
    Finish(usize),
    /// A target fails (its command, the error's text); without `--keep-going` nothing starts
    /// after, and what runs may be cancelled.
    Fail(usize, Option<String>, String),
    Cancel(usize),
    /// Progress of a target that has ended: a step cancelled, or a log chunk.
    Late(usize, Vec<u8>),
}

#[derive(Debug, Clone)]
struct Script {
    plan: Vec<String>,
    jobs: Option<usize>,
    no_cache: bool,
    keep_going: bool,
    /// The build stops after this many actions without an `Ended` (Ctrl-C).
    interrupt: Option<usize>,
    actions: Vec<Action>,
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9 ./$%-]{1,16}",
        1 => "[a-z ]{1,8}\n[a-z ]{1,8}",
        1 => "[a-z]{1,5}\r[a-z]{0,5}",
        1 => "\\PC{1,8}",
    ]
}

/// One chunk of a command's output: any bytes, lines ended every way, progress bars, colors,
/// unicode, now and then a very long line.
fn chunk() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => "[a-z0-9 %.]{0,12}(\n|\r|\r\n)?".prop_map(String::into_bytes),
        3 => vec(any::<u8>(), 0..24),
        2 => "[\\PC\n\r]{0,12}".prop_map(String::into_bytes),
        2 => select(vec![
            "\u{1b}[31mred\u{1b}[0m\n",
            "\u{1b}[2K\r",
            "\u{1b}[1A",
            "\u{1b}[1;32mok",
            "\u{1b}]0;title\u{7}",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        2 => (0..=100u8).prop_map(|p| format!("{p}%\r").into_bytes()),
        1 => Just(b"\n".to_vec()),
        1 => (8000..9000usize, any::<bool>()).prop_map(|(n, end)| {
            let mut line = "x".repeat(n);
            if end {
                line.push('\n');
            }
            line.into_bytes()
        }),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    let who = 0..16usize;
    let kind = prop_oneof![
        3 => Just(StepKind::Run),
        1 => Just(StepKind::Cached),
        3 => Just(StepKind::CachedDone),
        1 => Just(StepKind::Lookup),
    ];
    let how = prop_oneof![
        4 => Just(How::Ok),
        1 => Just(How::Cancelled),
        1 => "[a-z ]{0,8}(\n[a-z ]{0,8})?".prop_map(|detail| How::Error(format!(
            "process \"/bin/sh -c make\" did not complete successfully: exit code: 2{detail}"
        ))),
    ];
    prop_oneof![
        4 => who.clone().prop_map(Action::Start),
        6 => (who.clone(), kind, text()).prop_map(|(w, k, t)| Action::Step(w, k, t)),
        10 => (who.clone(), who.clone(), any::<bool>(), chunk())
            .prop_map(|(w, v, e, d)| Action::Log(w, v, e, d)),
        1 => (who.clone(), "\\PC{1,6}\n?", 0..24usize)
            .prop_map(|(w, t, at)| Action::SplitLog(w, t, at)),
        4 => (who.clone(), who.clone(), how).prop_map(|(w, v, h)| Action::Complete(w, v, h)),
        1 => (who.clone(), who.clone()).prop_map(|(w, v)| Action::CacheAgain(w, v)),
        1 => (who.clone(), text()).prop_map(|(w, t)| Action::Warning(w, t)),
        1 => who.clone().prop_map(Action::Transfer),
        1 => who.clone().prop_map(Action::Export),
        2 => who.clone().prop_map(Action::Finish),
        1 => (who.clone(), proptest::option::of(text()), "[a-z\n\r%:,]{0,20}")
            .prop_map(|(w, c, m)| Action::Fail(w, c, m)),
        1 => who.clone().prop_map(Action::Cancel),
        1 => (who, chunk()).prop_map(|(w, d)| Action::Late(w, d)),
    ]
}

fn script() -> impl Strategy<Value = Script> {
    let plan = (
        proptest::sample::subsequence(TARGETS.to_vec(), 1..=8),
        proptest::sample::subsequence(VARS.to_vec(), 0..=2),
    )
        .prop_flat_map(|(targets, vars)| {
            let nodes: Vec<String> = vars.into_iter().chain(targets).map(String::from).collect();
            Just(nodes).prop_shuffle()
        });
    let jobs = prop_oneof![Just(Some(1)), (2..4usize).prop_map(Some), Just(None)];
    (
        plan,
        jobs,
        any::<bool>(),
        any::<bool>(),
        proptest::option::weighted(0.15, 0..40usize),
        vec(action(), 0..80),
    )
        .prop_map(
            |(plan, jobs, no_cache, keep_going, interrupt, actions)| Script {
                plan,
                jobs,
                no_cache,
                keep_going,
                interrupt,
                actions,
            },
        )
}

// ---------------------------------------------------------------------------------------------
// The build those choices make: its events, and what they say.

#[derive(Debug, Clone)]
struct Step {
    node: String,
    id: String,
    name: String,
    lookup: bool,
    started: bool,
    cached: bool,
    /// Its first event was `Cached`: a step from the cache, one `CACHED` line and nothing else.
    cached_first: bool,
    /// It was marked cached before it completed (after, the mark says nothing new).
    cached_early: bool,
    completed: bool,
}

#[derive(Debug)]
struct Running {
    node: String,
    at: usize,
}

/// A made-up build.
#[derive(Debug)]
struct Build {
    plan: Vec<String>,
    jobs: Option<usize>,
    no_cache: bool,
    events: Vec<BuildEvent>,
    steps: Vec<Step>,
    /// How each node of the plan ended, in plan order (as `Ended` says, or as the events tell
    /// when the build was interrupted).
    results: Vec<NodeResult>,
    started: Vec<String>,
    ended: Vec<(String, NodeStatus)>,
    outputs: Vec<(String, PathBuf)>,
    /// Each (node, vertex, stream)'s output: its bytes, in pieces that each end where the step
    /// or its node ended (what was left of a line then is a line).
    logs: BTreeMap<(String, String, bool), Vec<Vec<u8>>>,
    error: Option<(String, u8)>,
}

struct Sim {
    events: Vec<BuildEvent>,
    pending: Vec<String>,
    running: Vec<Running>,
    ended: Vec<(String, NodeStatus, Duration)>,
    steps: Vec<Step>,
    started: Vec<String>,
    outputs: Vec<(String, PathBuf)>,
    logs: BTreeMap<(String, String, bool), Vec<Vec<u8>>>,
    failed: bool,
    stopped: bool,
}

impl Sim {
    fn emit(&mut self, event: BuildEvent) {
        self.events.push(event);
    }

    fn progress(&mut self, node: &str, event: Event) {
        self.emit(BuildEvent::Progress {
            node: node.to_owned(),
            event,
        });
    }

    fn duration(&self, at: usize) -> Duration {
        Duration::from_millis(100 * (self.events.len() - at) as u64)
    }

    fn new_step(&mut self, node: &str, name: &str, lookup: bool) -> usize {
        let n = self.steps.len();
        let name = if lookup {
            format!(
                "{LOOKUP}docker.io/library/s{n}>{}",
                name.replace(['\n', '\r'], "")
            )
        } else {
            format!("s{n}> {name}")
        };
        self.steps.push(Step {
            node: node.to_owned(),
            id: format!("sha256:{n:04}"),
            name,
            lookup,
            started: false,
            cached: false,
            cached_first: false,
            cached_early: false,
            completed: false,
        });
        n
    }

    fn start_step(&mut self, step: usize) {
        let s = &mut self.steps[step];
        s.started = true;
        let (node, vertex, name) = (s.node.clone(), s.id.clone(), s.name.clone());
        self.progress(
            &node,
            Event::Started {
                vertex,
                name,
                at: UNIX_EPOCH,
            },
        );
    }

    fn cache_step(&mut self, step: usize) {
        let s = &mut self.steps[step];
        if s.cached {
            return;
        }
        s.cached_first = !s.started && !s.completed;
        s.cached_early = !s.completed;
        s.cached = true;
        let (node, vertex, name) = (s.node.clone(), s.id.clone(), s.name.clone());
        self.progress(&node, Event::Cached { vertex, name });
    }

    fn complete_step(&mut self, step: usize, how: &How) {
        let s = &mut self.steps[step];
        if s.completed {
            return;
        }
        s.completed = true;
        let duration = s.started.then_some(Duration::from_millis(250));
        let (node, vertex, name) = (s.node.clone(), s.id.clone(), s.name.clone());
        self.cut_logs(|(n, v, _)| *n == node && *v == vertex);
        let error = match how {
            How::Ok => None,
            How::Error(error) => Some(error.clone()),
            How::Cancelled => Some("context canceled".to_owned()),
        };
        self.progress(
            &node,
            Event::Completed {
                vertex,
                name,
                duration,
                error,
            },
        );
    }

    /// The renderers show what is left of a line when its step or node ends.
    fn cut_logs(&mut self, which: impl Fn(&(String, String, bool)) -> bool) {
        for (_, pieces) in self.logs.iter_mut().filter(|(key, _)| which(key)) {
            pieces.push(Vec::new());
        }
    }

    fn open_steps(&self, node: &str) -> Vec<usize> {
        (0..self.steps.len())
            .filter(|&i| {
                let s = &self.steps[i];
                s.node == node && s.started && !s.completed
            })
            .collect()
    }

    fn log(&mut self, step: usize, stderr: bool, data: Vec<u8>) {
        let (node, vertex) = (self.steps[step].node.clone(), self.steps[step].id.clone());
        let pieces = self
            .logs
            .entry((node.clone(), vertex.clone(), stderr))
            .or_insert_with(|| vec![Vec::new()]);
        if let Some(last) = pieces.last_mut() {
            last.extend_from_slice(&data);
        }
        let stream = if stderr {
            LogStream::Stderr
        } else {
            LogStream::Stdout
        };
        self.progress(
            &node,
            Event::Log {
                vertex,
                stream,
                data,
            },
        );
    }

    /// The step of `node` that a log goes to: an open one, else a new one started.
    fn log_step(&mut self, node: &str, which: usize) -> usize {
        let open = self.open_steps(node);
        if open.is_empty() {
            let step = self.new_step(node, "sh -c job", false);
            self.start_step(step);
            step
        } else {
            open[which % open.len()]
        }
    }

    fn running(&self, who: usize) -> Option<String> {
        (!self.running.is_empty()).then(|| self.running[who % self.running.len()].node.clone())
    }

    fn end(&mut self, node: &str, status: NodeStatus, failure: Option<NodeFailure>) {
        let Some(at) = self.running.iter().position(|r| r.node == node) else {
            return;
        };
        let running = self.running.remove(at);
        self.cut_logs(|(n, _, _)| n == node);
        let duration = self.duration(running.at);
        self.ended.push((node.to_owned(), status, duration));
        let node = node.to_owned();
        self.emit(match (status, failure) {
            (NodeStatus::Done, _) => BuildEvent::Finished { node, duration },
            (NodeStatus::Failed, Some(failure)) => BuildEvent::Failed {
                node,
                duration,
                failure,
            },
            _ => BuildEvent::Cancelled { node, duration },
        });
    }

    fn start(&mut self, which: usize, jobs: Option<usize>) {
        if self.stopped
            || self.pending.is_empty()
            || jobs.is_some_and(|jobs| self.running.len() >= jobs)
        {
            return;
        }
        let node = self.pending.remove(which % self.pending.len());
        self.emit(BuildEvent::Started { node: node.clone() });
        self.started.push(node.clone());
        self.running.push(Running {
            node,
            at: self.events.len(),
        });
    }

    fn finish(&mut self, node: &str) {
        for step in self.open_steps(node) {
            self.complete_step(step, &How::Ok);
        }
        self.end(node, NodeStatus::Done, None);
    }

    fn cancel(&mut self, node: &str) {
        for step in self.open_steps(node) {
            self.complete_step(step, &How::Cancelled);
        }
        self.end(node, NodeStatus::Cancelled, None);
    }

    fn act(&mut self, action: &Action, script: &Script) {
        match action {
            Action::Start(which) => self.start(*which, script.jobs),
            Action::Step(who, kind, name) => {
                let node = match (self.running(*who), kind) {
                    // Images are resolved before anything starts (their progress may come
                    // late, while others run).
                    (running, StepKind::Lookup)
                        if !self.pending.is_empty() && (running.is_none() || who % 2 == 1) =>
                    {
                        self.pending[who % self.pending.len()].clone()
                    }
                    (Some(node), _) => node,
                    (None, _) => return,
                };
                match kind {
                    StepKind::Run => {
                        let step = self.new_step(&node, name, false);
                        self.start_step(step);
                    }
                    StepKind::Cached => {
                        let step = self.new_step(&node, name, false);
                        self.cache_step(step);
                    }
                    StepKind::CachedDone => {
                        let step = self.new_step(&node, name, false);
                        self.cache_step(step);
                        self.complete_step(step, &How::Ok);
                    }
                    StepKind::Lookup => {
                        let step = self.new_step(&node, name, true);
                        self.start_step(step);
                        self.complete_step(step, &How::Ok);
                    }
                }
            }
            Action::Log(who, which, stderr, data) => {
                let Some(node) = self.running(*who) else {
                    return;
                };
                let step = self.log_step(&node, *which);
                self.log(step, *stderr, data.clone());
            }
            Action::SplitLog(who, text, at) => {
                let Some(node) = self.running(*who) else {
                    return;
                };
                let step = self.log_step(&node, 0);
                let bytes = text.as_bytes();
                let at = (*at).min(bytes.len());
                self.log(step, false, bytes[..at].to_vec());
                self.log(step, false, bytes[at..].to_vec());
            }
            Action::Complete(who, which, how) => {
                let Some(node) = self.running(*who) else {
                    return;
                };
                let open = self.open_steps(&node);
                if !open.is_empty() {
                    self.complete_step(open[which % open.len()], how);
                }
            }
            Action::CacheAgain(who, which) => {
                let Some(node) = self.running(*who) else {
                    return;
                };
                let seen: Vec<usize> = (0..self.steps.len())
                    .filter(|&i| self.steps[i].node == node && !self.steps[i].lookup)
                    .collect();
                if !seen.is_empty() {
                    self.cache_step(seen[which % seen.len()]);
                }
            }
            Action::Warning(who, message) => {
                let Some(node) = self.running(*who) else {
                    return;
                };
                let vertex = self
                    .steps
                    .iter()
                    .rev()
                    .find(|s| s.node == node)
                    .map(|s| s.id.clone())
                    .unwrap_or_default();
                self.progress(
                    &node,
                    Event::Warning {
                        vertex,
                        message: message.clone(),
                    },
                );
            }
            Action::Transfer(who) => {
                let Some(node) = self.running(*who) else {
                    return;
                };
                self.progress(
                    &node,
                    Event::Transfer {
                        vertex: "sha256:layer".into(),
                        id: "transferring context".into(),
                        current: 5,
                        total: 10,
                        completed: false,
                    },
                );
            }
            Action::Export(who) => {
                let Some(node) = self.running(*who).filter(|n| !n.starts_with("var ")) else {
                    return;
                };
                let local = PathBuf::from(format!("/project/out/{}", self.outputs.len()));
                self.outputs.push((node.clone(), local.clone()));
                self.emit(BuildEvent::Exported { node, local });
            }
            Action::Finish(who) => {
                if let Some(node) = self.running(*who) {
                    self.finish(&node);
                }
            }
            Action::Fail(who, command, message) => {
                let Some(node) = self.running(*who) else {
                    return;
                };
                let open = self.open_steps(&node);
                let error =
                    "process \"/bin/sh -c false\" did not complete successfully: exit code: 1";
                if let Some(&step) = open.first() {
                    self.complete_step(step, &How::Error(error.to_owned()));
                }
                let failure = NodeFailure {
                    message: format!("{node} failed: {message}"),
                    reason: "exit code: 1".into(),
                    command: command.clone(),
                    exit_code: Some(1),
                    log_tail: vec![message.clone()],
                };
                self.end(&node, NodeStatus::Failed, Some(failure));
                self.failed = true;
                self.stopped |= !script.keep_going;
            }
            Action::Cancel(who) => {
                if !self.failed {
                    return;
                }
                if let Some(node) = self.running(*who) {
                    self.cancel(&node);
                }
            }
            Action::Late(who, data) => {
                if self.ended.is_empty() {
                    return;
                }
                let node = self.ended[who % self.ended.len()].0.clone();
                let open = self.open_steps(&node);
                if let Some(&step) = open.first() {
                    self.complete_step(step, &How::Cancelled);
                } else if let Some(step) = self
                    .steps
                    .iter()
                    .rposition(|s| s.node == node && s.started && !s.lookup)
                {
                    self.log(step, false, data.clone());
                }
            }
        }
    }
}

fn build(script: &Script) -> Build {
    let mut sim = Sim {
        events: vec![BuildEvent::Planned {
            nodes: script.plan.clone(),
            jobs: script.jobs,
            no_cache: script.no_cache,
        }],
        pending: script.plan.clone(),
        running: Vec::new(),
        ended: Vec::new(),
        steps: Vec::new(),
        started: Vec::new(),
        outputs: Vec::new(),
        logs: BTreeMap::new(),
        failed: false,
        stopped: false,
    };
    let interrupted = script
        .interrupt
        .filter(|&stop| stop <= script.actions.len());
    for action in &script.actions[..interrupted.unwrap_or(script.actions.len())] {
        sim.act(action, script);
    }
    if interrupted.is_none() {
        // What is still running ends: cancelled after a failure, done otherwise; what never
        // started runs unless something failed.
        while let Some(running) = sim.running.first() {
            let node = running.node.clone();
            if sim.stopped {
                sim.cancel(&node);
            } else {
                sim.finish(&node);
            }
        }
        while !sim.failed && !sim.pending.is_empty() {
            sim.start(0, None);
            let node = sim.started.last().cloned().unwrap_or_default();
            let step = sim.new_step(&node, "make", false);
            sim.cache_step(step);
            sim.complete_step(step, &How::Ok);
            sim.finish(&node);
        }
    }
    let results: Vec<NodeResult> = script
        .plan
        .iter()
        .map(|node| {
            let ended = sim.ended.iter().find(|(n, _, _)| n == node);
            let status = match ended {
                Some((_, status, _)) => *status,
                None if sim.running.iter().any(|r| r.node == *node) => NodeStatus::Cancelled,
                None => NodeStatus::Skipped,
            };
            NodeResult {
                node: node.clone(),
                status,
                duration: ended.map(|(_, _, d)| *d),
            }
        })
        .collect();
    if interrupted.is_none() {
        sim.emit(BuildEvent::Ended {
            nodes: results.clone(),
        });
    }
    let error = if interrupted.is_some() {
        Some(("interrupted".to_owned(), 130))
    } else if sim.failed {
        Some(("the build failed".to_owned(), 1))
    } else {
        None
    };
    Build {
        plan: script.plan.clone(),
        jobs: script.jobs,
        no_cache: script.no_cache,
        events: sim.events,
        steps: sim.steps,
        results,
        started: sim.started,
        ended: sim.ended.into_iter().map(|(n, s, _)| (n, s)).collect(),
        outputs: sim.outputs,
        logs: sim.logs,
        error,
    }
}

impl Build {
    /// Whether every step of `node` came from the cache (and there was one), as the summary's
    /// `(N cached)` and JSON's `cached` count it: never under `--no-cache`.
    fn all_cached(&self, node: &str) -> bool {
        let steps: Vec<&Step> = self
            .steps
            .iter()
            .filter(|s| s.node == node && !s.lookup)
            .collect();
        !self.no_cache && !steps.is_empty() && steps.iter().all(|s| s.cached)
    }

    fn cached(&self, result: &NodeResult) -> bool {
        result.status == NodeStatus::Done && self.all_cached(&result.node)
    }

    fn count(&self, status: NodeStatus) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }

    fn failed_names(&self) -> Vec<&str> {
        self.results
            .iter()
            .filter(|r| r.status == NodeStatus::Failed)
            .map(|r| r.node.as_str())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering and reading the output.

fn render(mode: Mode, github: bool, color: bool, build: &Build) -> String {
    let bytes = render_events(mode, github, color, &build.events, build.error.as_ref());
    String::from_utf8(bytes).expect("renderers write UTF-8 whatever the logs' bytes")
}

fn render_events(
    mode: Mode,
    github: bool,
    color: bool,
    events: &[BuildEvent],
    error: Option<&(String, u8)>,
) -> Vec<u8> {
    let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_714_566_896));
    let mut out = Vec::new();
    {
        let options = Options {
            clock: clock.clone(),
            color,
            github,
        };
        let mut renderer = Renderer::with_options(mode, &mut out, options);
        for event in events {
            renderer.event(event);
            clock.advance(Duration::from_millis(100));
        }
        renderer.tick();
        renderer.finish(error.map(|(message, code)| (message.as_str(), *code)));
    }
    out
}

/// The lines a terminal shows of `bytes`, as docs/cli.md describes: the text after the last
/// carriage return of each line; a last line without its newline shown if not empty.
fn reference_lines(bytes: &[u8]) -> Vec<String> {
    fn shown(line: &str) -> String {
        let line = line.trim_end_matches('\r');
        line.rsplit('\r').next().unwrap_or(line).to_owned()
    }
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<&str> = text.split('\n').collect();
    let last = lines.pop().unwrap_or_default();
    let mut out: Vec<String> = lines.into_iter().map(shown).collect();
    let last = shown(last);
    if !last.is_empty() {
        out.push(last);
    }
    out
}

/// Whether a stream's lines are short enough that chunk boundaries do not cut them.
fn short_lines(pieces: &[Vec<u8>]) -> bool {
    pieces.iter().all(|bytes| {
        String::from_utf8_lossy(bytes)
            .split('\n')
            .all(|line| line.len() < PARTIAL_LIMIT - 64)
    })
}

/// The lines of a stream cut in pieces.
fn reference_pieces(pieces: &[Vec<u8>]) -> Vec<String> {
    pieces
        .iter()
        .flat_map(|bytes| reference_lines(bytes))
        .collect()
}

/// The numbers of the one-line summary, read from its text.
#[derive(Debug, PartialEq)]
struct Summary {
    targets: usize,
    vars: usize,
    done: usize,
    cached: usize,
    failed: usize,
    failed_names: String,
    cancelled: usize,
    skipped: usize,
}

fn number(text: &str, word: &str) -> usize {
    let text = text.trim();
    let (n, rest) = text
        .split_once(' ')
        .unwrap_or_else(|| panic!("{text:?}: no number"));
    assert!(rest == word || rest == format!("{word}s"), "{text:?}");
    assert_eq!(rest == word, n == "1", "singular for one only: {text:?}");
    n.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// Reads `12 targets, 1 var: 9 done (7 cached), 1 failed (lint), 1 cancelled, 1 skipped in
/// 14.2 s`.
fn parse_summary(line: &str) -> Summary {
    let (what, rest) = line
        .split_once(": ")
        .unwrap_or_else(|| panic!("{line:?}: not a summary"));
    let (targets, vars) = match what.split_once(", ") {
        Some((targets, vars)) => (number(targets, "target"), number(vars, "var")),
        None => (number(what, "target"), 0),
    };
    let (mut rest, seconds) = rest
        .rsplit_once(" in ")
        .unwrap_or_else(|| panic!("{line:?}: no time"));
    let seconds = seconds
        .strip_suffix(" s")
        .unwrap_or_else(|| panic!("{line:?}: no unit"));
    assert!(seconds.parse::<f64>().is_ok(), "{line:?}");
    let mut counts = HashMap::new();
    for word in ["skipped", "cancelled"] {
        if let Some(before) = rest.strip_suffix(&format!(" {word}")) {
            let (before, n) = before
                .rsplit_once(", ")
                .unwrap_or_else(|| panic!("{line:?}"));
            counts.insert(
                word,
                n.parse::<usize>()
                    .unwrap_or_else(|e| panic!("{line:?}: {e}")),
            );
            rest = before;
        }
    }
    let (done_part, failed_part) = match rest.split_once(", ") {
        Some((done, failed)) => (done, Some(failed)),
        None => (rest, None),
    };
    let (done, cached) = match done_part.split_once(" done (") {
        Some((done, cached)) => (
            done,
            cached
                .strip_suffix(" cached)")
                .unwrap_or_else(|| panic!("{line:?}"))
                .parse::<usize>()
                .unwrap_or_else(|e| panic!("{line:?}: {e}")),
        ),
        None => (
            done_part
                .strip_suffix(" done")
                .unwrap_or_else(|| panic!("{line:?}")),
            0,
        ),
    };
    let (failed, failed_names) = match failed_part {
        Some(part) => {
            let (n, names) = part
                .split_once(" failed (")
                .unwrap_or_else(|| panic!("{line:?}"));
            let names = names
                .strip_suffix(')')
                .unwrap_or_else(|| panic!("{line:?}"));
            (
                n.parse().unwrap_or_else(|e| panic!("{line:?}: {e}")),
                names.to_owned(),
            )
        }
        None => (0, String::new()),
    };
    Summary {
        targets,
        vars,
        done: done.parse().unwrap_or_else(|e| panic!("{line:?}: {e}")),
        cached,
        failed,
        failed_names,
        cancelled: counts.get("cancelled").copied().unwrap_or(0),
        skipped: counts.get("skipped").copied().unwrap_or(0),
    }
}

/// The summary `build` should end with, by docs/cli.md: every node of the plan, done (and how
/// many entirely cached), failed by name, cancelled and skipped, zero counts but `done` left
/// out.
fn expected_summary(build: &Build) -> Summary {
    let vars = build.plan.iter().filter(|n| n.starts_with("var ")).count();
    Summary {
        targets: build.plan.len() - vars,
        vars,
        done: build.count(NodeStatus::Done),
        cached: build.results.iter().filter(|r| build.cached(r)).count(),
        failed: build.count(NodeStatus::Failed),
        failed_names: build.failed_names().join(", "),
        cancelled: build.count(NodeStatus::Cancelled),
        skipped: build.count(NodeStatus::Skipped),
    }
}

fn check_summary(line: &str, build: &Build) -> Result<(), TestCaseError> {
    let summary = parse_summary(line);
    prop_assert_eq!(
        summary.done + summary.failed + summary.cancelled + summary.skipped,
        build.plan.len(),
        "{}",
        line
    );
    prop_assert_eq!(summary.targets + summary.vars, build.plan.len(), "{}", line);
    prop_assert_eq!(summary, expected_summary(build), "{}", line);
    Ok(())
}

/// `text` without its escape sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL`, and the rest
/// `ESC x`).
fn strip_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                for c in chars.by_ref() {
                    if c == '\u{7}' {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// `text` with its long lines cut, for a failure's message.
fn excerpt(text: &str) -> String {
    text.lines()
        .map(|line| match line.char_indices().nth(200) {
            Some((at, _)) => format!("{}…", &line[..at]),
            None => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The SGR (colour) sequences in `text`: `ESC [ params m`.
fn sgr_sequences(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("\u{1b}[") {
        let tail = &rest[at + 2..];
        let end = tail
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(tail.len());
        if tail[end..].starts_with('m') {
            found.push(format!("ESC[{}m", &tail[..end]));
        }
        rest = &rest[at + 2..];
    }
    found
}

// ---------------------------------------------------------------------------------------------
// The properties.

fn plain_lines(build: &Build, github: bool) -> Result<(), TestCaseError> {
    let text = render(Mode::Plain, github, false, build);
    prop_assert!(text.ends_with('\n'), "{}", excerpt(&text));
    prop_assert!(
        !text.contains('\r'),
        "no carriage return: {:?}",
        excerpt(&text)
    );
    let lines: Vec<&str> = text.lines().collect();
    let (summary, lines) = lines.split_last().expect("a summary at least");
    check_summary(summary, build)?;

    let prefix = |line: &str| -> Option<String> {
        build
            .plan
            .iter()
            .find(|node| line.starts_with(&format!("[{node}] ")))
            .cloned()
    };
    let mut group: Option<String> = None;
    let mut seen_groups = Vec::new();
    let mut by_node: HashMap<String, Vec<String>> = HashMap::new();
    for line in lines {
        if github {
            if let Some(name) = line.strip_prefix("::group::") {
                prop_assert!(group.is_none(), "a group in a group: {}", excerpt(&text));
                let node = build
                    .plan
                    .iter()
                    .find(|n| crate::plain::escape_data(n) == name);
                prop_assert!(node.is_some(), "a group of no node: {}", line);
                prop_assert!(
                    !seen_groups.iter().any(|seen| seen == name),
                    "a second group for {}: {}",
                    name,
                    excerpt(&text)
                );
                group = node.cloned();
                seen_groups.push(name.to_owned());
                continue;
            }
            if *line == "::endgroup::" {
                prop_assert!(
                    group.is_some(),
                    "an endgroup without a group: {}",
                    excerpt(&text)
                );
                group = None;
                continue;
            }
            if let Some(rest) = line.strip_prefix("::error title=") {
                prop_assert!(
                    group.is_some(),
                    "an annotation outside a group: {}",
                    excerpt(&text)
                );
                let node = group.clone().unwrap_or_default();
                let title = crate::plain::escape_property(&format!("{node} failed"));
                prop_assert!(rest.starts_with(&format!("{title}::")), "{}", line);
                prop_assert!(
                    build.ended.contains(&(node.clone(), NodeStatus::Failed)),
                    "{}",
                    line
                );
                continue;
            }
        }
        let node = prefix(line);
        prop_assert!(
            node.is_some(),
            "a line without a node of the plan: {:?}\n{}",
            line,
            excerpt(&text)
        );
        let node = node.unwrap_or_default();
        if let Some(group) = &group {
            prop_assert_eq!(
                group,
                &node,
                "a line in another node's group: {}",
                excerpt(&text)
            );
        }
        let rest = line[node.len() + 3..].to_owned();
        by_node.entry(node).or_default().push(rest);
    }
    prop_assert!(group.is_none(), "a group left open: {}", excerpt(&text));

    for node in &build.plan {
        let lines = by_node.get(node).cloned().unwrap_or_default();
        let count = |f: &dyn Fn(&str) -> bool| lines.iter().filter(|l| f(l)).count();
        let started = build.started.contains(node);
        prop_assert_eq!(count(&|l| l == "started"), usize::from(started), "{}", node);
        let end = build.ended.iter().find(|(n, _)| n == node).map(|(_, s)| *s);
        let ends = [
            (NodeStatus::Done, "done in "),
            (NodeStatus::Failed, "failed in "),
            (NodeStatus::Cancelled, "CANCELED after "),
        ];
        for (status, word) in ends {
            prop_assert_eq!(
                count(&|l| l.starts_with(word)),
                usize::from(end == Some(status)),
                "{} {:?}\n{}",
                node,
                status,
                excerpt(&text)
            );
        }
        // One line per step event at most; a step from the cache is one CACHED line.
        for step in build.steps.iter().filter(|s| s.node == *node) {
            let name = step.name.replace('\r', "\\r").replace('\n', "\\n");
            let cached = count(&|l| l == format!("CACHED {name}"));
            let run = count(&|l| l == name);
            let done = count(&|l| {
                l.strip_prefix("DONE ").is_some_and(|rest| {
                    rest == name
                        || rest
                            .split_once("s ")
                            .is_some_and(|(time, rest)| rest == name && time.parse::<f64>().is_ok())
                })
            });
            prop_assert_eq!(
                cached,
                usize::from(step.cached_early),
                "{}\n{}",
                name,
                excerpt(&text)
            );
            prop_assert!(run <= 1 && done <= 1, "{}\n{}", name, excerpt(&text));
            prop_assert_eq!(
                run,
                usize::from(step.started && !step.cached_first),
                "{}",
                name
            );
            if step.cached_first {
                prop_assert_eq!(done, 0, "a cached step is one line: {}", excerpt(&text));
            }
        }
        // Every line of output, as a terminal shows it (the streams of a node interleave, so
        // compared as a multiset).
        let mut expected: Vec<String> = Vec::new();
        let mut exact = true;
        for ((_, _, _), pieces) in build.logs.iter().filter(|((n, _, _), _)| n == node) {
            exact &= short_lines(pieces);
            expected.extend(reference_pieces(pieces));
        }
        let mut printed: Vec<String> = lines
            .iter()
            .filter_map(|l| {
                let (seconds, shown) = l.split_once(" | ")?;
                let (whole, millis) = seconds.split_once('.')?;
                (whole.bytes().all(|b| b.is_ascii_digit())
                    && millis.len() == 3
                    && millis.bytes().all(|b| b.is_ascii_digit()))
                .then(|| shown.to_owned())
            })
            .collect();
        if exact {
            expected.sort();
            printed.sort();
            prop_assert_eq!(printed, expected, "{}", node);
        }
    }
    if github {
        for node in &build.started {
            prop_assert!(
                seen_groups.contains(&crate::plain::escape_data(node)),
                "{} has no group: {}",
                node,
                excerpt(&text)
            );
        }
    }
    Ok(())
}

const TYPES: [&str; 12] = [
    "plan",
    "started",
    "step",
    "cached",
    "log",
    "warning",
    "output",
    "done",
    "failed",
    "cancelled",
    "error",
    "result",
];

fn json_lines(build: &Build) -> Result<(), TestCaseError> {
    let text = render(Mode::Json, false, false, build);
    let mut lines: Vec<Value> = Vec::new();
    let mut last_time = String::new();
    for line in text.lines() {
        let value: Value = serde_json::from_str(line)
            .map_err(|e| TestCaseError::fail(format!("{e}: {line:?}")))?;
        prop_assert!(value.is_object(), "{}", line);
        prop_assert_eq!(&value["v"], 1, "{}", line);
        let time = value["time"].as_str().unwrap_or_default().to_owned();
        prop_assert!(
            time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{}",
            line
        );
        prop_assert!(time >= last_time, "time goes on: {}", line);
        last_time = time;
        let kind = value["type"].as_str().unwrap_or_default();
        prop_assert!(TYPES.contains(&kind), "{}", line);
        if let Some(target) = value.get("target") {
            let target = target.as_str().unwrap_or_default();
            prop_assert!(build.plan.iter().any(|n| n == target), "{}", line);
        }
        lines.push(value);
    }
    let of = |kind: &str| -> Vec<&Value> { lines.iter().filter(|l| l["type"] == kind).collect() };

    // The plan, first.
    prop_assert_eq!(&lines[0]["type"], "plan");
    prop_assert_eq!(&lines[0]["targets"], &serde_json::json!(build.plan));
    prop_assert_eq!(&lines[0]["jobs"], &serde_json::json!(build.jobs));
    prop_assert_eq!(&lines[0]["noCache"], build.no_cache);

    // The result, last; the error before it when the build failed.
    let result = lines.last().expect("a result");
    prop_assert_eq!(&result["type"], "result");
    prop_assert_eq!(of("result").len(), 1);
    match &build.error {
        Some((message, code)) => {
            let error = &lines[lines.len() - 2];
            prop_assert_eq!(&error["type"], "error");
            prop_assert_eq!(&error["message"], message.as_str());
            prop_assert_eq!(&error["exitCode"], *code);
            prop_assert_eq!(&result["status"], "failed");
        }
        None => {
            prop_assert_eq!(of("error").len(), 0);
            prop_assert_eq!(&result["status"], "ok");
        }
    }
    let counts = &result["counts"];
    let n = |key: &str| counts[key].as_u64().unwrap_or(u64::MAX) as usize;
    prop_assert_eq!(n("total"), build.plan.len());
    prop_assert_eq!(
        n("done") + n("failed") + n("cancelled") + n("skipped"),
        n("total"),
        "{}",
        result
    );
    prop_assert!(n("cached") <= n("done"), "{}", result);
    let targets = result["targets"].as_array().cloned().unwrap_or_default();
    prop_assert_eq!(targets.len(), build.plan.len());
    for (status, key) in [
        ("done", "done"),
        ("failed", "failed"),
        ("cancelled", "cancelled"),
        ("skipped", "skipped"),
    ] {
        let listed = targets.iter().filter(|t| t["status"] == status).count();
        prop_assert_eq!(listed, n(key), "{}", result);
    }
    prop_assert_eq!(
        targets.iter().filter(|t| t["cached"] == true).count(),
        n("cached"),
        "{}",
        result
    );
    for (target, expected) in targets.iter().zip(&build.results) {
        prop_assert_eq!(&target["name"], expected.node.as_str());
        prop_assert_eq!(
            &target["status"],
            crate::tally::status_name(expected.status)
        );
        prop_assert_eq!(&target["cached"], build.cached(expected), "{}", target);
        prop_assert_eq!(
            &target["seconds"],
            &serde_json::json!(expected.duration.map(|d| d.as_secs_f64())),
            "{}",
            target
        );
    }

    // A target's life: started once, ended once, as it went.
    for node in &build.plan {
        let about = |kind: &str| {
            of(kind)
                .into_iter()
                .filter(|l| l["target"] == *node.as_str())
                .count()
        };
        prop_assert_eq!(about("started"), usize::from(build.started.contains(node)));
        let end = build.ended.iter().find(|(n, _)| n == node).map(|(_, s)| *s);
        prop_assert_eq!(about("done"), usize::from(end == Some(NodeStatus::Done)));
        prop_assert_eq!(
            about("failed"),
            usize::from(end == Some(NodeStatus::Failed))
        );
        prop_assert_eq!(
            about("cancelled"),
            usize::from(end == Some(NodeStatus::Cancelled))
        );
    }
    let outputs: Vec<(String, String)> = of("output")
        .iter()
        .map(|l| {
            (
                l["target"].as_str().unwrap_or_default().to_owned(),
                l["path"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = build
        .outputs
        .iter()
        .map(|(n, p)| (n.clone(), p.display().to_string()))
        .collect();
    prop_assert_eq!(outputs, expected);

    // Steps: a step from the cache is one `cached` event and no `step`; each step starts and
    // ends once at most.
    for step in &build.steps {
        let about = |kind: &str, status: Option<&str>| {
            of(kind)
                .into_iter()
                .filter(|l| l["vertex"] == *step.id.as_str())
                .filter(|l| status.is_none_or(|s| l["status"] == s))
                .count()
        };
        prop_assert!(about("cached", None) <= 1, "{:?}", step);
        if step.cached_first {
            prop_assert_eq!(about("cached", None), 1, "{:?}", step);
            prop_assert_eq!(about("step", None), 0, "{:?}", step);
        }
        prop_assert!(about("step", Some("started")) <= 1, "{:?}", step);
        let ends = about("step", Some("done"))
            + about("step", Some("error"))
            + about("step", Some("cancelled"));
        prop_assert!(ends <= 1, "{:?}", step);
    }

    // Logs: every line as a terminal shows it, in order, per step and stream.
    for ((node, vertex, stderr), pieces) in &build.logs {
        let stream = if *stderr { "stderr" } else { "stdout" };
        let printed: Vec<String> = of("log")
            .into_iter()
            .filter(|l| {
                l["target"] == *node.as_str()
                    && l["vertex"] == *vertex.as_str()
                    && l["stream"] == stream
            })
            .map(|l| l["line"].as_str().unwrap_or_default().to_owned())
            .collect();
        if short_lines(pieces) {
            prop_assert_eq!(printed, reference_pieces(pieces), "{} {}", node, vertex);
        }
    }
    Ok(())
}

fn tty_output(build: &Build) -> Result<(), TestCaseError> {
    let text = render(Mode::Tty, false, false, build);
    // Without colors, no colour sequence of the renderer's own; a command's may pass through.
    let mut own: Vec<String> = sgr_sequences(&text);
    let mut theirs: HashSet<String> = HashSet::new();
    for bytes in build.logs.values().flatten() {
        theirs.extend(sgr_sequences(&String::from_utf8_lossy(bytes)));
    }
    own.retain(|s| !theirs.contains(s));
    prop_assert!(
        own.is_empty(),
        "colors when disabled: {:?} in {:?}",
        own,
        excerpt(&text)
    );
    let shown = strip_escapes(&text);
    let last = shown
        .rsplit("\r\n")
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    check_summary(last, build)?;

    let colored = render(Mode::Tty, false, true, build);
    prop_assert!(colored.contains("\u{1b}[38;5;"), "{:?}", colored);
    let shown = strip_escapes(&colored);
    let last = shown
        .rsplit("\r\n")
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    check_summary(last, build)?;
    Ok(())
}

/// A BuildKit status message that says what `event` says, as the decoder keeps it for
/// `--progress rawjson`.
fn raw_of(event: &Event) -> Option<StatusResponse> {
    let vertex = |digest: &str, name: &str, cached: bool, error: Option<&String>| Vertex {
        digest: digest.into(),
        name: name.into(),
        cached,
        error: error.cloned().unwrap_or_default(),
        ..Vertex::default()
    };
    let status = match event {
        Event::Started {
            vertex: v, name, ..
        } => StatusResponse {
            vertexes: vec![vertex(v, name, false, None)],
            ..StatusResponse::default()
        },
        Event::Cached { vertex: v, name } => StatusResponse {
            vertexes: vec![vertex(v, name, true, None)],
            ..StatusResponse::default()
        },
        Event::Completed {
            vertex: v,
            name,
            error,
            ..
        } => StatusResponse {
            vertexes: vec![vertex(v, name, false, error.as_ref())],
            ..StatusResponse::default()
        },
        Event::Log {
            vertex,
            stream,
            data,
            ..
        } => StatusResponse {
            logs: vec![VertexLog {
                vertex: vertex.clone(),
                stream: if *stream == LogStream::Stderr { 2 } else { 1 },
                msg: data.clone(),
                timestamp: None,
            }],
            ..StatusResponse::default()
        },
        _ => return None,
    };
    Some(status)
}

fn rawjson_lines(build: &Build) -> Result<(), TestCaseError> {
    let mut events = Vec::new();
    let mut raws = Vec::new();
    for event in &build.events {
        if let BuildEvent::Progress { node, event: inner } = event {
            if let Some(status) = raw_of(inner) {
                raws.push(status.clone());
                events.push(BuildEvent::Progress {
                    node: node.clone(),
                    event: Event::Raw(RawStatus(Arc::new(status))),
                });
            }
        }
        events.push(event.clone());
    }
    let text = String::from_utf8(render_events(
        Mode::RawJson,
        false,
        false,
        &events,
        build.error.as_ref(),
    ))
    .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let lines: Vec<&str> = text.lines().collect();
    prop_assert_eq!(lines.len(), raws.len(), "one line per status message");
    for (line, raw) in lines.iter().zip(&raws) {
        let value: Value = serde_json::from_str(line)
            .map_err(|e| TestCaseError::fail(format!("{e}: {line:?}")))?;
        for (json, vertex) in value["vertexes"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(&raw.vertexes)
        {
            prop_assert_eq!(&json["digest"], vertex.digest.as_str());
            prop_assert_eq!(&json["name"], vertex.name.as_str());
        }
        for (json, log) in value["logs"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(&raw.logs)
        {
            let data = STANDARD
                .decode(json["data"].as_str().unwrap_or_default())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&data, &log.msg);
        }
        prop_assert_eq!(value["logs"].as_array().map_or(0, Vec::len), raw.logs.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(32))]

    #[test]
    fn tty_writes_no_colors_when_off_and_sums_up(script in script()) {
        tty_output(&build(&script))?;
    }
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn json_is_one_versioned_object_a_line_ending_with_a_result_that_adds_up(script in script()) {
        json_lines(&build(&script))?;
    }

    #[test]
    fn plain_lines_belong_to_a_node_and_the_summary_adds_up(script in script()) {
        plain_lines(&build(&script), false)?;
    }

    #[test]
    fn github_groups_are_balanced_never_nested_and_hold_their_nodes_lines(script in script()) {
        plain_lines(&build(&script), true)?;
    }

    #[test]
    fn quiet_writes_nothing(script in script()) {
        let build = build(&script);
        prop_assert_eq!(render(Mode::Quiet, false, false, &build), "");
    }

    #[test]
    fn rawjson_is_buildkits_status_and_nothing_else(script in script()) {
        rawjson_lines(&build(&script))?;
    }

    /// Output cut into chunks anywhere (even inside a character) comes out as the same lines.
    #[test]
    fn log_lines_do_not_depend_on_how_output_is_cut(
        text in "[a-z\u{e9}\u{65e5}\u{1f980}\r\n ]{0,60}",
        cuts in vec(0..64usize, 0..6),
    ) {
        let bytes = text.as_bytes();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.sort_unstable();
        let mut lines = Lines::default();
        let mut out = Vec::new();
        let mut from = 0;
        for at in cuts.into_iter().chain([bytes.len()]) {
            out.extend(lines.push(&bytes[from..at]));
            from = at;
        }
        out.extend(lines.flush());
        prop_assert_eq!(out, reference_lines(bytes));
    }
}

// ---------------------------------------------------------------------------------------------
// Ill-formed streams: nothing panics.

fn any_event() -> impl Strategy<Value = BuildEvent> {
    let node = || select(vec!["a", "b", "var v", "build", ""]).prop_map(String::from);
    let vertex = || select(vec!["sha256:1", "sha256:2", ""]).prop_map(String::from);
    let status = select(vec![
        NodeStatus::Done,
        NodeStatus::Failed,
        NodeStatus::Cancelled,
        NodeStatus::Skipped,
    ]);
    let millis = || (0..100_000u64).prop_map(Duration::from_millis);
    let inner = prop_oneof![
        (vertex(), text()).prop_map(|(vertex, name)| Event::Started {
            vertex,
            name,
            at: UNIX_EPOCH
        }),
        (vertex(), text()).prop_map(|(vertex, name)| Event::Cached { vertex, name }),
        (
            vertex(),
            text(),
            proptest::option::of(millis()),
            proptest::option::of(text())
        )
            .prop_map(|(vertex, name, duration, error)| Event::Completed {
                vertex,
                name,
                duration,
                error
            }),
        (vertex(), any::<bool>(), chunk()).prop_map(|(vertex, err, data)| Event::Log {
            vertex,
            stream: if err {
                LogStream::Stderr
            } else {
                LogStream::Stdout
            },
            data
        }),
        (vertex(), text()).prop_map(|(vertex, message)| Event::Warning { vertex, message }),
        (vertex(), any::<i64>(), any::<i64>()).prop_map(|(vertex, current, total)| {
            Event::Transfer {
                vertex,
                id: "x".into(),
                current,
                total,
                completed: false,
            }
        }),
        chunk().prop_map(|msg| Event::Raw(RawStatus(Arc::new(StatusResponse {
            logs: vec![VertexLog {
                msg,
                ..VertexLog::default()
            }],
            ..StatusResponse::default()
        })))),
    ];
    prop_oneof![
        1 => (vec(node(), 0..4), proptest::option::of(0..4usize), any::<bool>()).prop_map(
            |(nodes, jobs, no_cache)| BuildEvent::Planned {
                nodes,
                jobs,
                no_cache
            }
        ),
        1 => node().prop_map(|node| BuildEvent::Started { node }),
        6 => (node(), inner).prop_map(|(node, event)| BuildEvent::Progress { node, event }),
        1 => (node(), text()).prop_map(|(node, path)| BuildEvent::Exported {
            node,
            local: path.into()
        }),
        1 => (node(), millis()).prop_map(|(node, duration)| BuildEvent::Finished { node, duration }),
        1 => (node(), millis(), text()).prop_map(|(node, duration, message)| BuildEvent::Failed {
            node,
            duration,
            failure: NodeFailure {
                reason: message.clone(),
                message,
                ..NodeFailure::default()
            }
        }),
        1 => (node(), millis()).prop_map(|(node, duration)| BuildEvent::Cancelled { node, duration }),
        1 => vec(
            (node(), status, proptest::option::of(millis())),
            0..4
        )
        .prop_map(|nodes| BuildEvent::Ended {
            nodes: nodes
                .into_iter()
                .map(|(node, status, duration)| NodeResult {
                    node,
                    status,
                    duration
                })
                .collect()
        }),
    ]
}

proptest! {
    #![proptest_config(config(48))]

    #[test]
    fn no_renderer_panics_whatever_the_events(
        events in vec(any_event(), 0..40),
        error in proptest::option::of(("[a-z\n]{0,10}", any::<u8>())),
    ) {
        for mode in [Mode::Tty, Mode::Plain, Mode::Json, Mode::RawJson, Mode::Quiet] {
            for github in [false, true] {
                let out = render_events(mode, github, github, &events, error.as_ref());
                prop_assert!(String::from_utf8(out.clone()).is_ok());
                if mode == Mode::Json {
                    let text = String::from_utf8_lossy(&out);
                    for line in text.lines() {
                        let value: Value = serde_json::from_str(line)
                            .map_err(|e| TestCaseError::fail(format!("{e}: {line:?}")))?;
                        prop_assert_eq!(&value["v"], 1);
                    }
                    let last: Value = serde_json::from_str(text.lines().last().unwrap_or_default())
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(&last["type"], "result");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cases the properties found, kept as tests of their own.

fn planned(nodes: &[&str], jobs: Option<usize>) -> BuildEvent {
    BuildEvent::Planned {
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
        jobs,
        no_cache: false,
    }
}

fn progress(node: &str, event: Event) -> BuildEvent {
    BuildEvent::Progress {
        node: node.into(),
        event,
    }
}

fn log(vertex: &str, data: &[u8]) -> Event {
    Event::Log {
        vertex: vertex.into(),
        stream: LogStream::Stdout,
        data: data.to_vec(),
    }
}

/// BuildKit cuts output anywhere, inside a character too.
#[test]
fn a_character_cut_between_chunks_is_whole() {
    let mut lines = Lines::default();
    let bytes = "d\u{e9}j\u{e0} \u{1f980}\n".as_bytes();
    assert!(lines.push(&bytes[..2]).is_empty());
    assert!(lines.push(&bytes[2..6]).is_empty());
    assert_eq!(lines.push(&bytes[6..]), ["d\u{e9}j\u{e0} \u{1f980}"]);
    assert!(lines.push(&[0xe6, 0x97]).is_empty());
    assert_eq!(
        lines.flush().as_deref(),
        Some("\u{fffd}"),
        "a cut character never completed"
    );
}

/// A step's error on several lines stays on its `[target]` line.
#[test]
fn a_step_error_on_several_lines_is_one_plain_line() {
    let events = vec![
        planned(&["a"], Some(1)),
        BuildEvent::Started { node: "a".into() },
        progress(
            "a",
            Event::Completed {
                vertex: "v".into(),
                name: "make".into(),
                duration: None,
                error: Some("2 errors occurred:\n\t* one\n\t* two".into()),
            },
        ),
    ];
    let text =
        String::from_utf8(render_events(Mode::Plain, false, false, &events, None)).expect("UTF-8");
    assert!(
        text.contains("[a] ERROR 2 errors occurred:\\n\t* one\\n\t* two\n"),
        "{text}"
    );
}

/// Under GitHub Actions, progress that trails its target's end (a cancelled step's last report)
/// never lands in the group of the target running after it, nor opens a second group: it comes
/// out between groups.
#[test]
fn late_progress_stays_out_of_another_targets_group() {
    let events = vec![
        planned(&["a", "b"], Some(1)),
        BuildEvent::Started { node: "a".into() },
        progress("a", log("v", b"50%")),
        BuildEvent::Cancelled {
            node: "a".into(),
            duration: Duration::from_millis(100),
        },
        BuildEvent::Started { node: "b".into() },
        progress("a", log("v", b"\rlast words\n")),
        BuildEvent::Finished {
            node: "b".into(),
            duration: Duration::from_millis(100),
        },
    ];
    let text =
        String::from_utf8(render_events(Mode::Plain, true, false, &events, None)).expect("UTF-8");
    assert!(
        text.starts_with(
            "::group::a\n[a] started\n[a] 0.000 | 50%\n[a] CANCELED after 0.1s\n::endgroup::\n\
             ::group::b\n[b] started\n[b] done in 0.1s\n::endgroup::\n\
             [a] 0.000 | last words\n2 targets:"
        ),
        "{text}"
    );
}

/// The tty view's summary is printed whole, however wide the terminal: only the live area is
/// cut to its width.
#[test]
fn the_tty_summary_is_never_cut() {
    let names: Vec<String> = (0..12)
        .map(|i| format!("a-rather-long-target-{i}"))
        .collect();
    let nodes: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut events = vec![planned(&nodes, None)];
    for node in &nodes {
        events.push(BuildEvent::Started {
            node: node.to_string(),
        });
        events.push(BuildEvent::Failed {
            node: node.to_string(),
            duration: Duration::from_millis(100),
            failure: NodeFailure::default(),
        });
    }
    let text =
        String::from_utf8(render_events(Mode::Tty, false, false, &events, None)).expect("UTF-8");
    assert!(
        text.contains(&format!(
            "12 targets: 0 done, 12 failed ({}) in ",
            nodes.join(", ")
        )),
        "{text:?}"
    );
}
