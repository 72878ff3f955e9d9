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
