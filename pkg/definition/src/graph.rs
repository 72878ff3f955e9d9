//! The target graph as text for Graphviz (`dot`) or Mermaid: one node per target (private ones
//! marked), images as their own nodes, and edges by kind: `from`, `copyFrom`, `dependsOn`,
//! composite members, and the vars a command uses.

use std::collections::BTreeSet;

use crate::{
    model::{is_private, Definition, Target},
    plan::{var_references, Base},
    Error, Plan,
};

/// The output format of [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphFormat {
    /// Graphviz `digraph`, for `dot -Tsvg`.
    #[default]
    Dot,
    /// A Mermaid `flowchart`, which GitHub and GitLab render in Markdown.
    Mermaid,
}

/// Why one node points at another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EdgeKind {
    /// The target starts from the other target or image (`from`).
    From,
    /// The target copies from the other target or image (`copy[].from`).
    CopyFrom,
    /// The other target must finish first (`dependsOn`).
    DependsOn,
    /// The other target is a member of this composite target.
    Member,
    /// The target's command references the var.
    UsesVar,
}

impl EdgeKind {
    fn label(self) -> &'static str {
        match self {
            Self::From => "from",
            Self::CopyFrom => "copyFrom",
            Self::DependsOn => "dependsOn",
            Self::Member => "member",
            Self::UsesVar => "uses",
        }
    }
}

/// A node of the graph.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum GraphNode {
    /// A target, by name.
    Target(String),
    /// An image a target starts from or copies from, fully qualified.
    Image(String),
    /// A var a command references, by name.
    Var(String),
}

/// The edges of the targets reached from `targets` (every target when empty), sorted.
pub fn edges(
    definition: &Definition,
    targets: &[String],
) -> Result<BTreeSet<(GraphNode, EdgeKind, GraphNode)>, Error> {
    let names: Vec<String> = if targets.is_empty() {
        definition.targets.keys().cloned().collect()
    } else {
        Plan::new(definition, targets)?.order
    };
    let mut out = BTreeSet::new();
    let base = |b: &Base| match b {
        Base::Target(t) => Some(GraphNode::Target(t.clone())),
        Base::Image(i) => Some(GraphNode::Image(i.clone())),
        Base::Scratch => None,
    };
    // One plan for everything gives every resolved `from`; planning each target alone would
    // refuse private ones, which the graph shows.
    let plan = Plan::new(definition, &names).or_else(|_| {
        let public: Vec<String> = names.iter().filter(|n| !is_private(n)).cloned().collect();
        Plan::new(definition, &public)
    })?;
    for name in plan.order.iter().filter(|n| names.contains(n)) {
        let me = GraphNode::Target(name.clone());
        let planned = &plan.targets[name];
        match &definition.targets[name] {
            Target::Composite(members) => {
                for member in members {
                    out.insert((
                        me.clone(),
                        EdgeKind::Member,
                        GraphNode::Target(member.clone()),
                    ));
                }
            }
            Target::Stage(stage) => {
                if let Some(node) = planned.base.as_ref().and_then(base) {
                    out.insert((me.clone(), EdgeKind::From, node));
                }
                for source in planned.copy_sources.iter().flatten() {
                    if let Some(node) = base(source) {
                        out.insert((me.clone(), EdgeKind::CopyFrom, node));
                    }
                }
                for dependency in &stage.depends_on {
                    out.insert((
                        me.clone(),
                        EdgeKind::DependsOn,
                        GraphNode::Target(dependency.clone()),
                    ));
                }
                if let Some(command) = &stage.run.command {
                    for var in var_references(command, |v| definition.vars.contains_key(v)) {
                        out.insert((me.clone(), EdgeKind::UsesVar, GraphNode::Var(var)));
                    }
                }
            }
        }
    }
    Ok(out)
}

fn id(node: &GraphNode) -> String {
    let (prefix, name) = match node {
        GraphNode::Target(n) => ("t", n),
        GraphNode::Image(n) => ("i", n),
        GraphNode::Var(n) => ("v", n),
    };
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}_{cleaned}_{:x}", fnv(name))
}

fn fnv(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Renders the graph of `targets` (every target when empty).
pub fn render(
    definition: &Definition,
    targets: &[String],
    format: GraphFormat,
) -> Result<String, Error> {
    let edges = edges(definition, targets)?;
    let mut nodes: BTreeSet<GraphNode> = BTreeSet::new();
    if targets.is_empty() {
        nodes.extend(definition.targets.keys().cloned().map(GraphNode::Target));
    }
    for (a, _, b) in &edges {
        nodes.insert(a.clone());
        nodes.insert(b.clone());
    }
    if !targets.is_empty() {
        nodes.extend(targets.iter().cloned().map(GraphNode::Target));
    }
    Ok(match format {
        GraphFormat::Dot => dot(&nodes, &edges),
        GraphFormat::Mermaid => mermaid(&nodes, &edges),
    })
}

fn dot(nodes: &BTreeSet<GraphNode>, edges: &BTreeSet<(GraphNode, EdgeKind, GraphNode)>) -> String {
    let mut out =
        String::from("digraph brewkit {\n  rankdir=LR;\n  node [fontname=\"sans-serif\"];\n");
    for node in nodes {
        let line = match node {
            GraphNode::Target(name) if is_private(name) => format!(
                "  {} [label={:?}, shape=box, style=dashed, tooltip=\"private target\"];\n",
                id(node),
                name
            ),
            GraphNode::Target(name) => format!("  {} [label={:?}, shape=box];\n", id(node), name),
            GraphNode::Image(name) => {
                format!("  {} [label={:?}, shape=cylinder];\n", id(node), name)
            }
            GraphNode::Var(name) => format!(
                "  {} [label={:?}, shape=ellipse];\n",
                id(node),
                format!("${{{name}}}")
            ),
        };
        out.push_str(&line);
    }
    for (from, kind, to) in edges {
        let style = match kind {
            EdgeKind::From => "solid",
            EdgeKind::CopyFrom => "dashed",
            EdgeKind::DependsOn => "dotted",
            EdgeKind::Member => "bold",
            EdgeKind::UsesVar => "dotted, arrowhead=odot",
        };
        out.push_str(&format!(
            "  {} -> {} [label={:?}, style={style}];\n",
            id(from),
            id(to),
            kind.label()
        ));
    }
    out.push_str("}\n");
    out
}

fn mermaid(
    nodes: &BTreeSet<GraphNode>,
    edges: &BTreeSet<(GraphNode, EdgeKind, GraphNode)>,
) -> String {
    let mut out = String::from("flowchart LR\n");
    let quote = |text: &str| text.replace('"', "#quot;");
    for node in nodes {
        let line = match node {
            GraphNode::Target(name) if is_private(name) => {
                format!("  {}[\"{} (private)\"]:::private\n", id(node), quote(name))
            }
            GraphNode::Target(name) => format!("  {}[\"{}\"]\n", id(node), quote(name)),
            GraphNode::Image(name) => format!("  {}[(\"{}\")]\n", id(node), quote(name)),
            GraphNode::Var(name) => format!("  {}([\"${{{}}}\"])\n", id(node), quote(name)),
        };
        out.push_str(&line);
    }
    for (from, kind, to) in edges {
        let arrow = match kind {
            EdgeKind::From => "-->",
            EdgeKind::CopyFrom => "-.->",
            EdgeKind::DependsOn => "-.->",
            EdgeKind::Member => "==>",
            EdgeKind::UsesVar => "-.-o",
        };
        out.push_str(&format!(
            "  {} {arrow}|{}| {}\n",
            id(from),
            kind.label(),
            id(to)
        ));
    }
    out.push_str("  classDef private stroke-dasharray: 5 5\n");
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fixture() -> Definition {
        let raw = json!({
            "apiVersion": "brewkit/v1",
            "vars": {"commit": {"from": "alpine/git", "command": "git rev-parse HEAD"}},
            "targets": {
                "all": ["build", "test"],
                "_src": {"from": "scratch"},
                "build": {"from": "golang:1.22", "copy": {"from": "_src", "src": "/", "dst": "/app"},
                          "command": "go build -X ${commit}"},
                "test": {"from": "build", "dependsOn": ["lint"]},
                "lint": {"from": "build"}
            }
        });
        crate::validate(std::path::Path::new("brewkit.jsonnet"), &raw)
            .unwrap()
            .1
    }

    #[test]
    fn every_edge_kind_is_found() {
        let edges = edges(&fixture(), &[]).unwrap();
        let t = |n: &str| GraphNode::Target(n.into());
        for edge in [
            (t("all"), EdgeKind::Member, t("build")),
            (t("all"), EdgeKind::Member, t("test")),
            (
                t("build"),
                EdgeKind::From,
                GraphNode::Image("docker.io/library/golang:1.22".into()),
            ),
            (t("build"), EdgeKind::CopyFrom, t("_src")),
            (
                t("build"),
                EdgeKind::UsesVar,
                GraphNode::Var("commit".into()),
            ),
            (t("test"), EdgeKind::From, t("build")),
            (t("test"), EdgeKind::DependsOn, t("lint")),
            (t("lint"), EdgeKind::From, t("build")),
        ] {
            assert!(edges.contains(&edge), "{edge:?} missing from {edges:#?}");
        }
        assert_eq!(edges.len(), 8, "{edges:#?}");
    }

    #[test]
    fn a_target_limits_the_graph_to_what_it_reaches() {
        let edges = edges(&fixture(), &["lint".into()]).unwrap();
        assert!(!edges.is_empty(), "lint reaches build");
        assert!(
            edges
                .iter()
                .any(|(a, _, _)| matches!(a, GraphNode::Target(n) if n == "lint")),
            "{edges:?}"
        );
        assert!(edges
            .iter()
            .all(|(a, _, _)| matches!(a, GraphNode::Target(n) if n == "lint" || n == "build")));
    }

    #[test]
    fn dot_and_mermaid_draw_kinds_differently_and_mark_private_targets() {
        let dot = render(&fixture(), &[], GraphFormat::Dot).unwrap();
        assert!(dot.starts_with("digraph brewkit {"));
        assert!(
            dot.contains("label=\"_src\", shape=box, style=dashed"),
            "{dot}"
        );
        assert!(dot.contains("label=\"copyFrom\", style=dashed"), "{dot}");
        assert!(dot.contains("label=\"dependsOn\", style=dotted"), "{dot}");
        assert!(dot.contains("label=\"from\", style=solid"), "{dot}");
        let mermaid = render(&fixture(), &[], GraphFormat::Mermaid).unwrap();
        assert!(mermaid.starts_with("flowchart LR"));
        assert!(
            mermaid.contains("\"_src (private)\"]:::private"),
            "{mermaid}"
        );
        assert!(mermaid.contains("==>|member|"), "{mermaid}");
        assert!(mermaid.contains("-.->|copyFrom|"), "{mermaid}");
    }

    #[test]
    fn unknown_target_is_refused() {
        assert!(render(&fixture(), &["nope".into()], GraphFormat::Dot).is_err());
    }
}
