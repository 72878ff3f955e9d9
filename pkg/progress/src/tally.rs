//! What every renderer needs to know about the targets of a build: which are queued, how each
//! ended, how many of its steps came from the cache; and the build's summary from that.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, SystemTime},
};

use brewkit_build::{BuildEvent, NodeResult, NodeStatus};
use brewkit_buildkit::status::Event;
use serde_json::{json, Value};

use crate::Clock;

/// What is known of one node.
#[derive(Debug, Default)]
struct Node {
    started: bool,
    status: Option<NodeStatus>,
    duration: Option<Duration>,
    steps: HashSet<String>,
    cached: HashSet<String>,
}

/// How one node ended, for the summary.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ended {
    pub(crate) node: String,
    pub(crate) status: NodeStatus,
    pub(crate) duration: Option<Duration>,
    /// Every step of it came from the cache (never said under `--no-cache`).
    pub(crate) cached: bool,
}

/// The targets of a build as its events tell them.
#[derive(Debug)]
pub(crate) struct Tally {
    started: SystemTime,
    planned: Vec<String>,
    jobs: Option<usize>,
    no_cache: bool,
    nodes: HashMap<String, Node>,
    ended: Option<Vec<NodeResult>>,
}

/// Steps that look a value up rather than build something: BuildKit never caches them, so
/// counting them would keep any target from being fully cached.
fn is_lookup(name: &str) -> bool {
    name.starts_with("resolve image config for ")
}

impl Tally {
    pub(crate) fn new(clock: &Clock) -> Self {
        Self {
            started: clock.now(),
            planned: Vec::new(),
            jobs: Some(1),
            no_cache: false,
            nodes: HashMap::new(),
            ended: None,
        }
    }

    pub(crate) fn event(&mut self, event: &BuildEvent) {
        match event {
            BuildEvent::Planned {
                nodes,
                jobs,
                no_cache,
            } => {
                self.planned = nodes.clone();
                self.jobs = *jobs;
                self.no_cache = *no_cache;
            }
            BuildEvent::Started { node } => self.node(node).started = true,
            BuildEvent::Finished { node, duration } => self.end(node, NodeStatus::Done, *duration),
            BuildEvent::Failed { node, duration, .. } => {
                self.end(node, NodeStatus::Failed, *duration)
            }
            BuildEvent::Cancelled { node, duration } => {
                self.end(node, NodeStatus::Cancelled, *duration)
            }
            BuildEvent::Ended { nodes } => self.ended = Some(nodes.clone()),
            BuildEvent::Progress { node, event } => match event {
                Event::Started { vertex, name, .. } | Event::Completed { vertex, name, .. }
                    if !is_lookup(name) =>
                {
                    self.node(node).steps.insert(vertex.clone());
                }
                Event::Cached { vertex, name } if !is_lookup(name) => {
                    let entry = self.node(node);
                    entry.steps.insert(vertex.clone());
                    entry.cached.insert(vertex.clone());
                }
                _ => {}
            },
            BuildEvent::Exported { .. } => {}
        }
    }

    fn node(&mut self, node: &str) -> &mut Node {
        self.nodes.entry(node.to_owned()).or_default()
    }

    fn end(&mut self, node: &str, status: NodeStatus, duration: Duration) {
        let entry = self.node(node);
        entry.status = Some(status);
        entry.duration = Some(duration);
    }

    /// Whether a plan came: a build that stopped before it has no targets to sum up.
    pub(crate) fn planned(&self) -> bool {
        !self.planned.is_empty()
    }

    /// Whether targets may run at once (`-j`).
    pub(crate) fn parallel(&self) -> bool {
        self.jobs != Some(1)
    }

    /// What to say about the cache for a finished node: ` CACHED` when every step came from
    /// it, `(N of M steps cached)` when some did; nothing under `--no-cache`, where only the
    /// steps that run no command can be cached.
    pub(crate) fn cache_note(&self, node: &str) -> String {
        let Some(entry) = self.nodes.get(node).filter(|_| !self.no_cache) else {
            return String::new();
        };
        let (steps, cached) = (entry.steps.len(), entry.cached.len());
        if steps > 0 && cached == steps {
            " CACHED".to_owned()
        } else if cached > 0 {
            format!(" ({cached} of {steps} steps cached)")
        } else {
            String::new()
        }
    }

    fn all_cached(&self, node: &str) -> bool {
        !self.no_cache
            && self
                .nodes
                .get(node)
                .is_some_and(|n| !n.steps.is_empty() && n.cached.len() == n.steps.len())
    }

    /// Planned nodes that have not started, in plan order.
    pub(crate) fn queued(&self) -> Vec<&str> {
        self.planned
            .iter()
            .filter(|node| {
                self.nodes
                    .get(node.as_str())
                    .is_none_or(|n| !n.started && n.status.is_none())
            })
            .map(String::as_str)
            .collect()
    }

    /// How every planned node ended: as the build said, or (a build that did not get to say,
    /// such as one interrupted) as its events tell.
    pub(crate) fn results(&self) -> Vec<Ended> {
        let results: Vec<NodeResult> = match &self.ended {
            Some(ended) => ended.clone(),
            None => self
                .planned
                .iter()
                .map(|node| {
                    let entry = self.nodes.get(node);
                    NodeResult {
                        node: node.clone(),
                        status: match entry {
                            Some(Node {
                                status: Some(status),
                                ..
                            }) => *status,
                            Some(Node { started: true, .. }) => NodeStatus::Cancelled,
                            _ => NodeStatus::Skipped,
                        },
                        duration: entry.and_then(|e| e.duration),
                    }
                })
                .collect(),
        };
        results
            .into_iter()
            .map(|r| Ended {
                cached: r.status == NodeStatus::Done && self.all_cached(&r.node),
                node: r.node,
                status: r.status,
                duration: r.duration,
            })
            .collect()
    }

    /// The time since the renderer started.
    pub(crate) fn total(&self, clock: &Clock) -> Duration {
        clock.since(self.started)
    }

    /// One line on how the build went: `12 targets: 9 done (7 cached), 1 failed (lint), 1
    /// cancelled, 1 skipped in 14.2 s`. Cancelled nodes were stopped while running; skipped ones
    /// never started.
    pub(crate) fn summary(&self, clock: &Clock) -> String {
        let results = self.results();
        let vars = results
            .iter()
            .filter(|r| r.node.starts_with("var "))
            .count();
        let targets = results.len() - vars;
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let mut what = plural(targets, "target");
        if vars > 0 {
            what.push_str(&format!(", {}", plural(vars, "var")));
        }
        let count = |status: NodeStatus| results.iter().filter(|r| r.status == status).count();
        let mut parts = vec![format!("{} done", count(NodeStatus::Done))];
        let cached = results.iter().filter(|r| r.cached).count();
        if cached > 0 {
            parts[0].push_str(&format!(" ({cached} cached)"));
        }
        let failed: Vec<&str> = results
            .iter()
            .filter(|r| r.status == NodeStatus::Failed)
            .map(|r| r.node.as_str())
            .collect();
        if !failed.is_empty() {
            parts.push(format!("{} failed ({})", failed.len(), failed.join(", ")));
        }
        // Stopped while running, and never started (make's "not remade"), told apart.
        for status in [NodeStatus::Cancelled, NodeStatus::Skipped] {
            let n = count(status);
            if n > 0 {
                parts.push(format!("{n} {}", status_name(status)));
            }
        }
        format!(
            "{what}: {} in {:.1} s",
            parts.join(", "),
            self.total(clock).as_secs_f64()
        )
    }

    /// The `result` event's fields: the build's status, each node's, and the total time.
    pub(crate) fn result(&self, ok: bool, clock: &Clock) -> Value {
        let results = self.results();
        let count = |status: NodeStatus| results.iter().filter(|r| r.status == status).count();
        let targets: Vec<Value> = results
            .iter()
            .map(|r| {
                json!({
                    "name": r.node,
                    "status": status_name(r.status),
                    "cached": r.cached,
                    "seconds": r.duration.map(|d| d.as_secs_f64()),
                })
            })
            .collect();
        json!({
            "status": if ok { "ok" } else { "failed" },
            "seconds": self.total(clock).as_secs_f64(),
            "counts": {
                "total": results.len(),
                "done": count(NodeStatus::Done),
                "cached": results.iter().filter(|r| r.cached).count(),
                "failed": count(NodeStatus::Failed),
                "cancelled": count(NodeStatus::Cancelled),
                "skipped": count(NodeStatus::Skipped),
            },
            "targets": targets,
        })
    }
}

/// A node's status as the JSON output names it.
pub(crate) fn status_name(status: NodeStatus) -> &'static str {
    match status {
        NodeStatus::Done => "done",
        NodeStatus::Failed => "failed",
        NodeStatus::Cancelled => "cancelled",
        NodeStatus::Skipped => "skipped",
    }
}
