//! Which node runs when: a synchronous state machine over the plan's graph, with no I/O, so that
//! readiness, order, `--jobs` and `--keep-going` are unit-tested on their own.
//!
//! - A node starts when everything it needs is built (a need's outputs may still be on their
//!   way to the host) and no built node's pending outputs could be read by it (see
//!   [`Footprint`]): a target may read files its prerequisites, or the targets before it in the
//!   listed order, wrote on the host.
//! - With one job (the default), targets start strictly in the plan's order, one at a time, as
//!   make does without `-j`. With more, any ready target starts, in plan order, while fewer than
//!   that many run. Vars and composites never count as jobs; vars start as soon as they can.
//! - A target built on another one (`from`, `copyFrom`, transitively: its *base*) may start while
//!   that one still runs: its solve contains the other's, so BuildKit runs its command only
//!   after the other's. Such a running base neither counts against its jobs nor delays it,
//!   unless it writes outputs the target reads.
//! - A failure stops new work (the caller cancels what is running), unless `keep_going`: then
//!   only what needs the failed node is skipped.
//! - A node is done when it and everything it needs is done, outputs included.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use brewkit_definition::{Base, Node, Plan};

/// What a node reads from the host and writes to it, as absolute, lexically clean paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Paths whose files the node reads (its copies' sources up to the first wildcard, its
    /// secret files).
    pub reads: Vec<PathBuf>,
    /// Directories its outputs are written into.
    pub writes: Vec<PathBuf>,
}

impl Footprint {
    /// Whether this node could read something that `other` writes.
    pub fn reads_from(&self, other: &Footprint) -> bool {
        self.reads
            .iter()
            .any(|read| other.writes.iter().any(|write| overlaps(read, write)))
    }
}

/// Whether one path lies under the other (or they are equal).
pub fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// How a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It and its outputs are done.
    Ok,
    /// Its run or one of its outputs failed.
    Failed,
    /// It was stopped because something else failed.
    Cancelled,
}

/// Where a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not started yet.
    Waiting,
    /// Started, not built yet.
    Running,
    /// Built; `exported` once its outputs are on the host. Done when its needs are done too.
    Built {
        /// Whether its outputs are on the host.
        exported: bool,
    },
    /// It, its outputs and everything it needs are done.
    Done,
    /// Its run or an output failed, or a need failed after it was built.
    Failed,
    /// It was stopped while running.
    Cancelled,
    /// Never started: something it needs failed, or the build stopped first.
    Skipped,
}

/// The state machine.
#[derive(Debug)]
pub struct Scheduler {
    nodes: Vec<Node>,
    index: HashMap<Node, usize>,
    needs: Vec<Vec<usize>>,
    /// Targets with a run of their own: what `jobs` counts.
    stage: Vec<bool>,
    footprints: Vec<Footprint>,
    /// For each node, the targets its solve contains (bit sets over node indices).
    bases: Vec<Vec<u64>>,
    status: Vec<Status>,
    jobs: Option<usize>,
    keep_going: bool,
    stopped: bool,
}

impl Scheduler {
    /// A scheduler for `plan`'s nodes. `stage(target)` tells a target with a run from a
    /// composite; `footprint(node)` what it reads and writes on the host. `jobs`: at most this
    /// many targets at once, `None` for no limit. A node's bases are the targets its plan entry
    /// starts from or copies from, and theirs.
    pub fn new(
        plan: &Plan,
        stage: impl Fn(&str) -> bool,
        footprint: impl Fn(&Node) -> Footprint,
        jobs: Option<usize>,
        keep_going: bool,
    ) -> Self {
        let nodes = plan.nodes.clone();
        let index: HashMap<Node, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, node)| (node.clone(), i))
            .collect();
        let needs = nodes
            .iter()
            .map(|node| {
                plan.needs(node)
                    .iter()
                    .filter_map(|need| index.get(need).copied())
                    .collect()
            })
            .collect();
        let stage = nodes
            .iter()
            .map(|node| matches!(node, Node::Target(name) if stage(name)))
            .collect();
        let footprints = nodes.iter().map(footprint).collect();
        let words = nodes.len().div_ceil(64);
        let mut bases: Vec<Vec<u64>> = Vec::with_capacity(nodes.len());
        for node in &nodes {
            let mut set = vec![0u64; words];
            let direct: Vec<&String> = match node {
                Node::Target(name) => plan
                    .targets
                    .get(name)
                    .map(|t| in_solve(t.base.iter().chain(t.copy_sources.iter().flatten())))
                    .unwrap_or_default(),
                Node::Var(name) => plan
                    .vars
                    .get(name)
                    .map(|v| {
                        in_solve(std::iter::once(&v.base).chain(v.copy_sources.iter().flatten()))
                    })
                    .unwrap_or_default(),
            };
            for base in direct {
                // Nodes come after what they need, so a base's own set is complete.
                if let Some(&b) = index.get(&Node::Target(base.clone())) {
                    set[b / 64] |= 1 << (b % 64);
                    if let Some(inherited) = bases.get(b) {
                        for (word, bits) in set.iter_mut().zip(inherited) {
                            *word |= bits;
                        }
                    }
                }
            }
            bases.push(set);
        }
        Self {
            bases,
            status: vec![Status::Waiting; nodes.len()],
            nodes,
            index,
            needs,
            stage,
            footprints,
            jobs: jobs.map(|j| j.max(1)),
            keep_going,
            stopped: false,
        }
    }

    /// The nodes to start now, in plan order; they are running from here on.
    pub fn ready(&mut self) -> Vec<Node> {
        let mut started = Vec::new();
        if self.stopped {
            return started;
        }
        let strict = self.jobs == Some(1);
        let mut strict_blocked = false;
        for i in 0..self.nodes.len() {
            if self.status[i] != Status::Waiting {
                continue;
            }
            let target = matches!(self.nodes[i], Node::Target(_));
            if target && strict_blocked {
                continue;
            }
            let full = self.stage[i]
                && self
                    .jobs
                    .is_some_and(|jobs| self.running_besides_bases(i) >= jobs);
            if full || !self.can_start(i) {
                // In strict order, nothing after the next target may overtake it.
                strict_blocked |= strict && target;
                continue;
            }
            self.status[i] = Status::Running;
            started.push(self.nodes[i].clone());
        }
        started
    }

    fn is_base(&self, i: usize, of: usize) -> bool {
        self.bases[of][i / 64] & (1 << (i % 64)) != 0
    }

    /// Running targets that are not bases of node `i`.
    fn running_besides_bases(&self, i: usize) -> usize {
        (0..self.nodes.len())
            .filter(|&r| self.stage[r] && self.status[r] == Status::Running && !self.is_base(r, i))
            .count()
    }

    fn can_start(&self, i: usize) -> bool {
        let needs_met = self.needs[i].iter().all(|&need| match self.status[need] {
            Status::Done | Status::Built { .. } => true,
            Status::Running => self.stage[need] && self.is_base(need, i),
            _ => false,
        });
        needs_met
            && (0..self.nodes.len()).all(|other| {
                !matches!(
                    self.status[other],
                    Status::Running | Status::Built { exported: false }
                ) || !self.footprints[i].reads_from(&self.footprints[other])
            })
    }

    /// Whether something `node` needs failed, was cancelled or skipped: its own failure is then
    /// that one's, not news.
    pub fn need_broken(&self, node: &Node) -> bool {
        self.index.get(node).is_some_and(|&i| {
            self.needs[i].iter().any(|&need| {
                matches!(
                    self.status[need],
                    Status::Failed | Status::Cancelled | Status::Skipped
                )
            })
        })
    }

    /// `node` was built; its outputs are on their way to the host.
    pub fn built(&mut self, node: &Node) {
        let i = self.index[node];
        if self.status[i] == Status::Running {
            self.status[i] = Status::Built { exported: false };
        }
    }

    /// `node` ended (for [`Outcome::Ok`]: with its outputs on the host). Returns the nodes that
    /// are done now, in plan order.
    pub fn finish(&mut self, node: &Node, outcome: Outcome) -> Vec<Node> {
        let i = self.index[node];
        match outcome {
            Outcome::Ok => {
                if matches!(self.status[i], Status::Running | Status::Built { .. }) {
                    self.status[i] = Status::Built { exported: true };
                }
            }
            Outcome::Failed => {
                self.status[i] = Status::Failed;
                if self.keep_going {
                    self.skip_dependents();
                } else {
                    self.stop();
                }
            }
            Outcome::Cancelled => {
                self.status[i] = Status::Cancelled;
                self.skip_dependents();
            }
        }
        self.promote()
    }

    /// Starts nothing more; what is waiting is skipped.
    pub fn stop(&mut self) {
        self.stopped = true;
        for status in &mut self.status {
            if *status == Status::Waiting {
                *status = Status::Skipped;
            }
        }
    }

    /// Whether the build has stopped starting new work after a failure.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Waiting nodes that need a failed, cancelled or skipped node are skipped; built ones fail.
    fn skip_dependents(&mut self) {
        // Nodes come after what they need, so one pass in order reaches every dependent.
        for i in 0..self.nodes.len() {
            let broken = self.needs[i].iter().any(|&need| {
                matches!(
                    self.status[need],
                    Status::Failed | Status::Cancelled | Status::Skipped
                )
            });
            if !broken {
                continue;
            }
            match self.status[i] {
                Status::Waiting => self.status[i] = Status::Skipped,
                Status::Built { .. } => self.status[i] = Status::Failed,
                _ => {}
            }
        }
    }

    /// Built and exported nodes whose needs are all done are done; returns them.
    fn promote(&mut self) -> Vec<Node> {
        let mut done = Vec::new();
        for i in 0..self.nodes.len() {
            if self.status[i] == (Status::Built { exported: true })
                && self.needs[i]
                    .iter()
                    .all(|&need| self.status[need] == Status::Done)
            {
                self.status[i] = Status::Done;
                done.push(self.nodes[i].clone());
            }
        }
        done
    }

    /// Where `node` comes in plan order.
    pub fn position(&self, node: &Node) -> Option<usize> {
        self.index.get(node).copied()
    }

    /// The plan-order position of the first running node, if one runs.
    pub fn first_running(&self) -> Option<usize> {
        self.status.iter().position(|&s| s == Status::Running)
    }

    /// Whether a node that has not started could read what `node` writes.
    pub fn read_by_waiting(&self, node: &Node) -> bool {
        let Some(&writer) = self.index.get(node) else {
            return false;
        };
        (0..self.nodes.len()).any(|i| {
            self.status[i] == Status::Waiting
                && self.footprints[i].reads_from(&self.footprints[writer])
        })
    }

    /// Where `node` is.
    pub fn status(&self, node: &Node) -> Option<Status> {
        self.index.get(node).map(|&i| self.status[i])
    }

    /// Every node with its status, in plan order.
    pub fn statuses(&self) -> impl Iterator<Item = (&Node, Status)> {
        self.nodes.iter().zip(self.status.iter().copied())
    }

    /// Whether nothing is running or waiting for its outputs, and nothing more can start.
    pub fn settled(&self) -> bool {
        self.status.iter().all(|status| {
            !matches!(
                status,
                Status::Running | Status::Built { exported: false } | Status::Waiting
            )
        })
    }
}

/// The targets among `bases`.
fn in_solve<'p>(bases: impl Iterator<Item = &'p Base>) -> Vec<&'p String> {
    bases
        .filter_map(|base| match base {
            Base::Target(name) => Some(name),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
