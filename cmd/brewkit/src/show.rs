//! What `brewkit targets` and `brewkit build --dry-run` print: the definition's public targets
//! (as text or JSON) and a build's plan, read from the definition alone (no BuildKit).

use std::{
    collections::{BTreeSet, HashMap},
    fmt::Write as _,
    path::{Component, Path, PathBuf},
};

use brewkit_definition::{Base, Definition, Node, Plan, Target};
use serde_json::{json, Value};

/// One line on what a target is: composite members, or base, dependencies and outputs.
pub(crate) fn describe(target: &Target) -> String {
    match target {
        Target::Composite(members) => format!("composite: {}", members.join(", ")),
        Target::Stage(stage) => {
            let mut parts = vec![format!(
                "from {}",
                stage.run.from.as_deref().unwrap_or("scratch")
            )];
            if !stage.depends_on.is_empty() {
                parts.push(format!("after {}", stage.depends_on.join(", ")));
            }
            if !stage.output.is_empty() {
                let locals: Vec<&str> = stage.output.iter().map(|o| o.local.as_str()).collect();
                parts.push(format!("outputs to {}", locals.join(", ")));
            }
            parts.join("; ")
        }
    }
}

/// The public targets, one a line, with what each is.
pub(crate) fn targets(definition: &Definition) -> String {
    let rows: Vec<(&str, String)> = definition
        .public_targets()
        .map(|name| (name, describe(&definition.targets[name])))
        .collect();
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(name, what)| format!("{name:<width$}  {what}\n"))
        .collect()
}

/// The public targets as a JSON array: `name`, `kind` (`stage` or `composite`),
/// `description` (the line `brewkit targets` prints), `from`, `dependsOn` (a composite's
/// members) and `outputs` (`artifact`, `local`).
pub(crate) fn targets_json(definition: &Definition) -> Value {
    let targets: Vec<Value> = definition
        .public_targets()
        .map(|name| {
            let target = &definition.targets[name];
            let description = describe(target);
            match target {
                Target::Composite(members) => json!({
                    "name": name, "kind": "composite", "description": description,
                    "from": null, "dependsOn": members, "outputs": [],
                }),
                Target::Stage(stage) => json!({
                    "name": name, "kind": "stage", "description": description,
                    "from": stage.run.from.as_deref().unwrap_or("scratch"),
                    "dependsOn": stage.depends_on,
                    "outputs": stage.output.iter()
                        .map(|o| json!({"artifact": o.artifact, "local": o.local}))
                        .collect::<Vec<_>>(),
                }),
            }
        })
        .collect();
    Value::Array(targets)
}

/// `context` joined with `path`, `.` and `..` resolved lexically (as the build does).
fn host_path(context: &Path, path: &str) -> PathBuf {
    let mut joined = PathBuf::new();
    for component in context.join(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if joined.file_name().is_some() => {
                joined.pop();
            }
            other => joined.push(other),
        }
    }
    joined
}

/// The plan of a build, as `brewkit build --dry-run` prints it: the vars that will run, the
/// images to resolve, the targets in order (one at a time; under `-j`, in rounds whose targets
/// may run at once) and the outputs with the host paths they are written to.
pub(crate) fn plan(definition: &Definition, plan: &Plan, context: &Path, parallel: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "build {}", plan.requested.join(", "));
    if !plan.vars.is_empty() {
        let _ = writeln!(
            out,
            "\nvars (run at once, before the targets that use them):"
        );
        for name in plan.vars.keys() {
            let _ = writeln!(out, "  {name}");
        }
    }
    let images: BTreeSet<&str> = plan
        .targets
        .values()
        .flat_map(|t| t.base.iter().chain(t.copy_sources.iter().flatten()))
        .chain(
            plan.vars
                .values()
                .flat_map(|v| std::iter::once(&v.base).chain(v.copy_sources.iter().flatten())),
        )
        .filter_map(|base| match base {
            Base::Image(image) => Some(image.as_str()),
            _ => None,
        })
        .collect();
    if !images.is_empty() {
        let _ = writeln!(out, "\nimages to resolve:");
        for image in images {
            let _ = writeln!(out, "  {image}");
        }
    }
    if parallel {
        let _ = writeln!(
            out,
            "\nrounds (-j: the targets of a round may run at once):"
        );
        for (round, names) in rounds(plan).iter().enumerate() {
            let _ = writeln!(out, "  {}. {}", round + 1, names.join(", "));
        }
    } else {
        let _ = writeln!(out, "\norder (one target at a time):");
        for (i, name) in plan.order.iter().enumerate() {
            let _ = writeln!(out, "  {}. {name}", i + 1);
        }
    }
    let outputs: Vec<String> = plan
        .order
        .iter()
        .filter_map(|name| Some((name, definition.stage(name)?)))
        .flat_map(|(name, stage)| {
            stage.output.iter().map(move |o| {
                format!(
                    "  {name}: {} -> {}",
                    o.artifact,
                    host_path(context, &o.local).display()
                )
            })
        })
        .collect();
    if !outputs.is_empty() {
        let _ = writeln!(out, "\noutputs:");
        for line in outputs {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// The plan's targets in rounds: each after every round holding something it needs (vars
/// count as needs but are listed apart).
fn rounds(plan: &Plan) -> Vec<Vec<String>> {
    let mut round_of: HashMap<&Node, usize> = HashMap::new();
    let mut rounds: Vec<Vec<String>> = Vec::new();
    let needs: Vec<Vec<Node>> = plan.nodes.iter().map(|n| plan.needs(n)).collect();
    for (node, needs) in plan.nodes.iter().zip(&needs) {
        // Nodes come after what they need, so their needs' rounds are known.
        let round = needs
            .iter()
            .filter_map(|need| round_of.get(need))
            .map(|r| r + 1)
            .max()
            .unwrap_or(0);
        round_of.insert(node, round);
        if let Node::Target(name) = node {
            if rounds.len() <= round {
                rounds.resize(round + 1, Vec::new());
            }
            rounds[round].push(name.clone());
        }
    }
    rounds.retain(|r| !r.is_empty());
    rounds
}
