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
        exported: bool,
    },
    Done,
    Failed,
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
mod tests {
    use super::*;
    use brewkit_definition::{PlannedTarget, PlannedVar};
    use std::collections::{BTreeMap, BTreeSet};

    /// A plan from `(name, prerequisites, vars)`; names in `order` must come after their needs.
    fn plan(targets: &[(&str, &[&str], &[&str])], vars: &[(&str, &[&str])]) -> Plan {
        let mut nodes = Vec::new();
        let mut planned_vars = BTreeMap::new();
        for (name, prerequisites) in vars {
            planned_vars.insert(
                (*name).to_owned(),
                PlannedVar {
                    base: Base::Scratch,
                    copy_sources: Vec::new(),
                    prerequisites: prerequisites.iter().map(|p| (*p).to_owned()).collect(),
                },
            );
        }
        let mut planned = BTreeMap::new();
        let mut order = Vec::new();
        let mut vars_placed = BTreeSet::new();
        for (name, prerequisites, target_vars) in targets {
            for var in *target_vars {
                if vars_placed.insert(*var) {
                    nodes.push(Node::Var((*var).to_owned()));
                }
            }
            planned.insert(
                (*name).to_owned(),
                PlannedTarget {
                    prerequisites: prerequisites.iter().map(|p| (*p).to_owned()).collect(),
                    base: Some(Base::Scratch),
                    copy_sources: Vec::new(),
                    vars: target_vars.iter().map(|v| (*v).to_owned()).collect(),
                },
            );
            order.push((*name).to_owned());
            nodes.push(Node::Target((*name).to_owned()));
        }
        Plan {
            requested: Vec::new(),
            order,
            targets: planned,
            vars: planned_vars,
            nodes,
            warnings: Vec::new(),
        }
    }

    fn t(name: &str) -> Node {
        Node::Target(name.to_owned())
    }

    fn v(name: &str) -> Node {
        Node::Var(name.to_owned())
    }

    fn scheduler(plan: &Plan, jobs: Option<usize>, keep_going: bool) -> Scheduler {
        Scheduler::new(
            plan,
            |name| name != "all",
            |_| Footprint::default(),
            jobs,
            keep_going,
        )
    }

    fn names(nodes: &[Node]) -> Vec<String> {
        nodes.iter().map(Node::label).collect()
    }

    #[test]
    fn one_job_runs_targets_in_order_one_at_a_time() {
        let plan = plan(
            &[
                ("a", &[], &[]),
                ("b", &[], &[]),
                ("c", &[], &[]),
                ("all", &["a", "b", "c"], &[]),
            ],
            &[],
        );
        let mut s = scheduler(&plan, Some(1), false);
        assert_eq!(names(&s.ready()), ["a"]);
        assert!(s.ready().is_empty(), "b waits for a");
        s.finish(&t("a"), Outcome::Ok);
        assert_eq!(names(&s.ready()), ["b"]);
        s.finish(&t("b"), Outcome::Ok);
        assert_eq!(names(&s.ready()), ["c"]);
        s.finish(&t("c"), Outcome::Ok);
        assert_eq!(
            names(&s.ready()),
            ["all"],
            "a composite starts when its members are done"
        );
        s.finish(&t("all"), Outcome::Ok);
        assert!(s.settled());
        assert!(s.statuses().all(|(_, status)| status == Status::Done));
    }

    #[test]
    fn jobs_limit_how_many_targets_run_at_once_and_none_means_all() {
        let targets: Vec<(&str, &[&str], &[&str])> = vec![
            ("a", &[], &[]),
            ("b", &[], &[]),
            ("c", &[], &[]),
            ("d", &[], &[]),
        ];
        let plan = plan(&targets, &[]);
        let mut two = scheduler(&plan, Some(2), false);
        assert_eq!(names(&two.ready()), ["a", "b"]);
        assert!(two.ready().is_empty());
        two.finish(&t("b"), Outcome::Ok);
        assert_eq!(names(&two.ready()), ["c"]);
        let mut all = scheduler(&plan, None, false);
        assert_eq!(names(&all.ready()), ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_target_waits_for_what_it_needs_even_with_free_jobs() {
        let plan = plan(
            &[("base", &[], &[]), ("app", &["base"], &[]), ("x", &[], &[])],
            &[],
        );
        let mut s = scheduler(&plan, None, false);
        assert_eq!(names(&s.ready()), ["base", "x"]);
        s.finish(&t("x"), Outcome::Ok);
        assert!(s.ready().is_empty());
        s.finish(&t("base"), Outcome::Ok);
        assert_eq!(names(&s.ready()), ["app"]);
    }

    #[test]
    fn vars_run_at_once_and_never_count_as_jobs() {
        let plan = plan(
            &[("a", &[], &["v1"]), ("b", &[], &["v2"]), ("c", &[], &[])],
            &[("v1", &[]), ("v2", &[])],
        );
        let mut s = scheduler(&plan, Some(1), false);
        // Both vars start; the first target in order waits for its var, and in strict order
        // nothing overtakes it.
        assert_eq!(names(&s.ready()), ["var v1", "var v2"]);
        s.finish(&v("v2"), Outcome::Ok);
        assert!(s.ready().is_empty(), "b and c may not overtake a");
        s.finish(&v("v1"), Outcome::Ok);
        assert_eq!(names(&s.ready()), ["a"]);
        // With more jobs, c does not wait for a's var.
        let mut free = scheduler(&plan, None, false);
        assert_eq!(names(&free.ready()), ["var v1", "var v2", "c"]);
    }

    #[test]
    fn a_failure_stops_new_work_without_keep_going() {
        let plan = plan(&[("a", &[], &[]), ("b", &[], &[]), ("c", &[], &[])], &[]);
        let mut s = scheduler(&plan, Some(2), false);
        assert_eq!(names(&s.ready()), ["a", "b"]);
        s.finish(&t("a"), Outcome::Failed);
        assert!(s.stopped());
        assert!(s.ready().is_empty());
        assert_eq!(s.status(&t("c")), Some(Status::Skipped));
        assert!(!s.settled(), "b still runs until the caller cancels it");
        s.finish(&t("b"), Outcome::Cancelled);
        assert!(s.settled());
    }

    #[test]
    fn keep_going_runs_what_does_not_need_the_failed_target() {
        let plan = plan(
            &[
                ("a", &[], &[]),
                ("needs-a", &["a"], &[]),
                ("after-needs-a", &["needs-a"], &[]),
                ("b", &[], &[]),
            ],
            &[],
        );
        let mut s = scheduler(&plan, Some(1), true);
        assert_eq!(names(&s.ready()), ["a"]);
        s.finish(&t("a"), Outcome::Failed);
        assert!(!s.stopped());
        assert_eq!(s.status(&t("needs-a")), Some(Status::Skipped));
        assert_eq!(s.status(&t("after-needs-a")), Some(Status::Skipped));
        assert_eq!(names(&s.ready()), ["b"]);
        s.finish(&t("b"), Outcome::Ok);
        assert!(s.settled());
        assert_eq!(s.status(&t("b")), Some(Status::Done));
    }

    #[test]
    fn keep_going_lets_a_running_sibling_finish() {
        let plan = plan(&[("slow", &[], &[]), ("bad", &[], &[])], &[]);
        let mut s = scheduler(&plan, None, true);
        assert_eq!(names(&s.ready()), ["slow", "bad"]);
        s.finish(&t("bad"), Outcome::Failed);
        assert_eq!(s.status(&t("slow")), Some(Status::Running));
        s.finish(&t("slow"), Outcome::Ok);
        assert_eq!(s.status(&t("slow")), Some(Status::Done));
    }

    #[test]
    fn a_built_target_lets_the_next_start_unless_it_reads_its_outputs() {
        let plan = plan(
            &[
                ("generate", &[], &[]),
                ("build", &[], &[]),
                ("other", &[], &[]),
            ],
            &[],
        );
        let footprint = |node: &Node| match node.label().as_str() {
            "generate" => Footprint {
                reads: vec![],
                writes: vec!["/p/gen".into()],
            },
            "build" => Footprint {
                reads: vec!["/p/gen/file.txt".into()],
                writes: vec![],
            },
            _ => Footprint {
                reads: vec!["/p/src".into()],
                writes: vec![],
            },
        };
        let mut s = Scheduler::new(&plan, |_| true, footprint, Some(1), false);
        assert_eq!(names(&s.ready()), ["generate"]);
        s.built(&t("generate"));
        assert!(s.ready().is_empty(), "build reads what generate is writing");
        s.finish(&t("generate"), Outcome::Ok);
        assert_eq!(names(&s.ready()), ["build"]);
        s.built(&t("build"));
        assert_eq!(
            names(&s.ready()),
            ["other"],
            "other reads nothing build writes, so it need not wait for build's outputs"
        );
        assert_eq!(
            s.status(&t("build")),
            Some(Status::Built { exported: false })
        );
    }

    #[test]
    fn a_target_is_done_only_when_what_it_needs_is_done() {
        let plan = plan(&[("base", &[], &[]), ("app", &["base"], &[])], &[]);
        let mut s = scheduler(&plan, Some(1), true);
        s.ready();
        s.built(&t("base"));
        assert_eq!(
            names(&s.ready()),
            ["app"],
            "app builds on base while base exports"
        );
        s.finish(&t("app"), Outcome::Ok);
        assert_eq!(s.status(&t("app")), Some(Status::Built { exported: true }));
        s.finish(&t("base"), Outcome::Failed);
        assert_eq!(
            s.status(&t("app")),
            Some(Status::Failed),
            "base's outputs failed, so app, built on it, fails too"
        );
        assert!(s.settled());
    }

    #[test]
    fn a_var_waits_for_the_target_it_starts_from() {
        let plan = plan(
            &[("tool", &[], &[]), ("use", &[], &["version"])],
            &[("version", &["tool"])],
        );
        // The var comes before `use` but after `tool` in node order.
        let mut plan = plan;
        plan.nodes = vec![t("tool"), v("version"), t("use")];
        let mut s = scheduler(&plan, None, false);
        assert_eq!(names(&s.ready()), ["tool"]);
        s.finish(&t("tool"), Outcome::Ok);
        assert_eq!(names(&s.ready()), ["var version"]);
        s.finish(&v("version"), Outcome::Ok);
        assert_eq!(names(&s.ready()), ["use"]);
    }

    /// `chain[i]` starts from `chain[i - 1]`.
    fn chain(names: &[&str]) -> Plan {
        let targets: Vec<(&str, &[&str], &[&str])> =
            names.iter().map(|n| (*n, &[][..], &[][..])).collect();
        let mut plan = plan(&targets, &[]);
        for pair in names.windows(2) {
            let target = plan.targets.get_mut(pair[1]).unwrap();
            target.base = Some(Base::Target(pair[0].to_owned()));
            target.prerequisites = vec![pair[0].to_owned()];
        }
        plan
    }

    #[test]
    fn a_target_starts_while_its_base_runs_but_an_unrelated_one_waits() {
        let mut plan = chain(&["a", "b", "c"]);
        plan.order.push("x".into());
        plan.nodes.push(t("x"));
        plan.targets.insert("x".into(), plan.targets["a"].clone());
        let mut s = scheduler(&plan, Some(1), false);
        assert_eq!(
            names(&s.ready()),
            ["a", "b", "c"],
            "b and c are built on a: BuildKit runs their commands after a's"
        );
        s.built(&t("a"));
        s.built(&t("b"));
        assert!(
            s.ready().is_empty(),
            "x is not built on c, so it waits for c"
        );
        s.built(&t("c"));
        assert_eq!(names(&s.ready()), ["x"]);
        assert!(
            s.finish(&t("b"), Outcome::Ok).is_empty(),
            "b is done only after a"
        );
        assert_eq!(names(&s.finish(&t("a"), Outcome::Ok)), ["a", "b"]);
    }

    #[test]
    fn a_target_waits_for_a_running_base_whose_outputs_it_reads() {
        let plan = chain(&["gen", "use"]);
        let footprint = |node: &Node| match node.label().as_str() {
            "gen" => Footprint {
                reads: vec![],
                writes: vec!["/p/out".into()],
            },
            _ => Footprint {
                reads: vec!["/p/out/x".into()],
                writes: vec![],
            },
        };
        let mut s = Scheduler::new(&plan, |_| true, footprint, Some(1), false);
        assert_eq!(names(&s.ready()), ["gen"]);
        s.built(&t("gen"));
        assert!(s.ready().is_empty());
        s.finish(&t("gen"), Outcome::Ok);
        assert_eq!(names(&s.ready()), ["use"]);
    }

    #[test]
    fn waiting_readers_and_the_first_running_node_are_known() {
        let plan = plan(
            &[("gen", &[], &[]), ("x", &[], &[]), ("use", &[], &[])],
            &[],
        );
        let footprint = |node: &Node| match node.label().as_str() {
            "gen" => Footprint {
                reads: vec![],
                writes: vec!["/p/out".into()],
            },
            "use" => Footprint {
                reads: vec!["/p/out/f".into()],
                writes: vec![],
            },
            _ => Footprint::default(),
        };
        let mut s = Scheduler::new(&plan, |_| true, footprint, None, false);
        assert_eq!(s.first_running(), None);
        assert!(
            s.read_by_waiting(&t("gen")),
            "use waits and reads gen's outputs"
        );
        assert!(!s.read_by_waiting(&t("x")));
        assert_eq!(
            names(&s.ready()),
            ["gen", "x"],
            "use waits for gen's outputs"
        );
        s.built(&t("gen"));
        assert_eq!(s.first_running(), s.position(&t("x")));
        assert!(s.read_by_waiting(&t("gen")));
        s.finish(&t("gen"), Outcome::Ok);
        assert_eq!(names(&s.ready()), ["use"]);
        assert!(!s.read_by_waiting(&t("gen")), "use no longer waits");
    }

    #[test]
    fn a_failed_base_breaks_what_was_started_on_it() {
        let plan = chain(&["a", "b"]);
        let mut s = scheduler(&plan, Some(1), true);
        assert_eq!(names(&s.ready()), ["a", "b"]);
        s.finish(&t("a"), Outcome::Failed);
        assert!(s.need_broken(&t("b")), "b's failure is a's");
    }

    #[test]
    fn overlap_is_by_whole_components() {
        assert!(overlaps(Path::new("/p/out"), Path::new("/p/out/a")));
        assert!(overlaps(Path::new("/p"), Path::new("/p/out")));
        assert!(!overlaps(Path::new("/p/out"), Path::new("/p/output")));
        assert!(!overlaps(Path::new("/p/a"), Path::new("/p/b")));
    }
}
