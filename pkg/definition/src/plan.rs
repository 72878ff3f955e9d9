//! The plan: which targets and vars a build reaches, in which order, and what each one needs.
//!
//! A target's prerequisites are the targets it names in `from`, in `copy[].from`, in `dependsOn`
//! and (for a composite) its members; all of them finish, outputs included, before it starts.
//! A target needs the vars its command references as `${name}` or `$name`. Cycles through any of
//! these are refused with the chain that closes them.

use std::collections::{BTreeMap, BTreeSet};

use brewkit_config::{Config, Entitlement};

use crate::{
    image,
    model::{is_private, Definition, Network, Run, Target, DEFAULT_TARGET},
    Error,
};

/// What a run starts from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Base {
    /// An empty filesystem.
    Scratch,
    /// Another target's final filesystem and image config.
    Target(String),
    /// An image, fully qualified (`docker.io/library/golang:1.22`).
    Image(String),
}

/// A target the build reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTarget {
    /// Targets that must have finished (outputs included) before this one starts, in the order
    /// they are declared (from, copy, dependsOn, composite members), each once.
    pub prerequisites: Vec<String>,
    /// `None` for a composite target.
    pub base: Option<Base>,
    /// For each entry of the stage's `copy`, where it reads from: `None` for the build context.
    pub copy_sources: Vec<Option<Base>>,
    /// Vars referenced by the command.
    pub vars: BTreeSet<String>,
}

/// A var the build needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedVar {
    /// What the var's run starts from.
    pub base: Base,
    /// For each entry of the var's `copy`, where it reads from: `None` for the build context.
    pub copy_sources: Vec<Option<Base>>,
    /// Targets the var's run starts from or copies from.
    pub prerequisites: Vec<String>,
}

/// The work of one build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The targets asked for (`all` when none was named).
    pub requested: Vec<String>,
    /// Every target reached, prerequisites before the targets that need them.
    pub order: Vec<String>,
    /// Every target reached, by name.
    pub targets: BTreeMap<String, PlannedTarget>,
    /// Only the vars that some reached target references.
    pub vars: BTreeMap<String, PlannedVar>,
    /// Every target and var reached, each after everything it needs: `order` with the vars in.
    pub nodes: Vec<Node>,
    /// Things that are allowed but look like mistakes.
    pub warnings: Vec<String>,
}

/// A unit of work of a build: a target or a var.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// A target, by name.
    Target(String),
    /// A var, by name (without `${}`).
    Var(String),
}

impl Node {
    /// How messages name it: the target's name, or `var NAME`.
    pub fn label(&self) -> String {
        match self {
            Self::Target(name) => name.clone(),
            Self::Var(name) => format!("var {name}"),
        }
    }
}

/// The vars declared in `vars` that `command` references as `${name}` or `$name`.
pub fn var_references<'v>(command: &str, vars: impl Fn(&str) -> bool + 'v) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    scan_references(command, |reference| {
        if vars(reference.name) {
            found.insert(reference.name.to_owned());
        }
        None
    });
    found
}

/// Replaces `${name}` and `$name` (not followed by a name character) by `values[name]` for every
/// name in `values`, as BrewKit's `os.Expand` does; everything else, `$HOME`, `${OTHER}`,
/// `${name:-x}`, `$$`, is left for the shell (`os.Expand` blanked unknown names: we don't).
pub fn substitute(command: &str, values: &BTreeMap<String, String>) -> String {
    scan_references(command, |reference| {
        values.get(reference.name).map(String::as_str)
    })
}

/// A `$name` or `${name}` in a command.
#[derive(Debug, Clone, Copy)]
struct Reference<'t> {
    name: &'t str,
    /// As written: `${name}` or `$name`.
    text: &'t str,
    braced: bool,
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Walks the `${name}` and `$name` references of `text` (`name` made of letters, digits and `_`),
/// calling `replace` for each; returns the text with the references for which `replace` answered
/// replaced. `$$` is the shell's own (its PID) and never starts a reference; the text of a `${…}`
/// that is not a name (`${X:-${name}}`) is scanned on, so a reference inside it is found.
fn scan_references<'a>(
    text: &str,
    mut replace: impl FnMut(Reference) -> Option<&'a str>,
) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    // `text[copied..at]` is still to be copied as is.
    let mut copied = 0;
    let mut at = 0;
    while let Some(offset) = text[at..].find('$') {
        let dollar = at + offset;
        let reference = match bytes.get(dollar + 1) {
            Some(b'$') => {
                at = dollar + 2;
                continue;
            }
            Some(b'{') => {
                let inner = &bytes[dollar + 2..];
                let len = inner.iter().take_while(|c| is_name_char(**c)).count();
                if len == 0 || inner.get(len) != Some(&b'}') {
                    at = dollar + 2;
                    continue;
                }
                Reference {
                    name: &text[dollar + 2..dollar + 2 + len],
                    text: &text[dollar..dollar + 3 + len],
                    braced: true,
                }
            }
            Some(c) if is_name_char(*c) => {
                let len = bytes[dollar + 1..]
                    .iter()
                    .take_while(|c| is_name_char(**c))
                    .count();
                Reference {
                    name: &text[dollar + 1..dollar + 1 + len],
                    text: &text[dollar..dollar + 1 + len],
                    braced: false,
                }
            }
            _ => {
                at = dollar + 1;
                continue;
            }
        };
        at = dollar + reference.text.len();
        if let Some(value) = replace(reference) {
            out.push_str(&text[copied..dollar]);
            out.push_str(value);
            copied = at;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Warnings for the references of `command` (the command of `owner`) that are not declared vars
/// but are close to one: `${verison}` is most likely a typo of `${version}`. Shell variables
/// written `$x` are many (`$HOME`, `$1`), so the bare form of a short name is not checked.
fn near_misses(owner: &str, command: &str, definition: &Definition) -> Vec<String> {
    let mut warnings = Vec::new();
    scan_references(command, |reference| {
        let checked = reference.braced || reference.name.len() >= 3;
        if checked && !definition.vars.contains_key(reference.name) {
            let vars = definition.vars.keys().map(String::as_str);
            if let Some(var) = brewkit_schema::did_you_mean(reference.name, vars) {
                warnings.push(format!(
                    "{owner}: {} in the command is not a var, so the shell expands it; did you mean var \"{var}\"?",
                    reference.text
                ));
            }
        }
        None
    });
    warnings
}

impl Plan {
    /// Plans the build of `requested` (`all` when empty): resolves every name, refuses private or
    /// unknown targets on the command line and cycles anywhere on the way.
    pub fn new(definition: &Definition, requested: &[String]) -> Result<Self, Error> {
        let requested = if requested.is_empty() {
            if !definition.targets.contains_key(DEFAULT_TARGET) {
                return Err(Error::NoDefaultTarget {
                    public: definition.public_targets().map(str::to_owned).collect(),
                });
            }
            vec![DEFAULT_TARGET.to_owned()]
        } else {
            requested.to_vec()
        };
        for name in &requested {
            if is_private(name) && definition.targets.contains_key(name) {
                return Err(Error::PrivateTarget { name: name.clone() });
            }
            if !definition.targets.contains_key(name) {
                return Err(Error::UnknownTarget {
                    name: name.clone(),
                    referrer: "the command line".into(),
                    suggestion: brewkit_schema::did_you_mean(name, definition.public_targets())
                        .map(str::to_owned),
                });
            }
        }

        let mut walk = Walk::new(definition, requested.clone());
        for name in &requested {
            walk.visit(Node::Target(name.clone()))?;
        }
        Ok(walk.plan)
    }

    /// What `node` needs finished before it can start: for a target, the vars its command
    /// references, then its prerequisites in declared order; for a var, the targets its run
    /// starts from or copies from. Empty for a node the plan does not hold.
    pub fn needs(&self, node: &Node) -> Vec<Node> {
        match node {
            Node::Target(name) => self
                .targets
                .get(name)
                .map(|t| {
                    (t.vars.iter().cloned().map(Node::Var))
                        .chain(t.prerequisites.iter().cloned().map(Node::Target))
                        .collect()
                })
                .unwrap_or_default(),
            Node::Var(name) => self
                .vars
                .get(name)
                .map(|v| v.prerequisites.iter().cloned().map(Node::Target).collect())
                .unwrap_or_default(),
        }
    }

    /// Checks what the plan needs from the host: every secret id declared in the config, the
    /// `network.host` entitlement for `network: host` and `ssh` for `ssh`. Secret files are checked when a build
    /// reads them, not here.
    pub fn check_host(&self, definition: &Definition, config: &Config) -> Result<(), Error> {
        let runs = self
            .order
            .iter()
            .filter_map(|name| {
                definition
                    .stage(name)
                    .map(|s| (format!("target \"{name}\""), &s.run))
            })
            .chain(
                self.vars
                    .keys()
                    .map(|name| (format!("var \"{name}\""), &definition.vars[name].run)),
            );
        for (owner, run) in runs {
            for secret in &run.secrets {
                if config.secret(&secret.id).is_none() {
                    return Err(Error::UnknownSecret {
                        owner,
                        id: secret.id.clone(),
                        config: config.path.clone(),
                        suggestion: brewkit_schema::did_you_mean(
                            &secret.id,
                            config.secrets.iter().map(|s| s.id.as_str()),
                        )
                        .map(str::to_owned),
                    });
                }
            }
            if run.network == Some(Network::Host) && !config.allows(Entitlement::NetworkHost) {
                return Err(Error::EntitlementMissing {
                    owner,
                    what: "network: host",
                    entitlement: Entitlement::NetworkHost,
                    config: config.path.clone(),
                });
            }
            // The host's SSH agent is the user's keys: the host must consent, as buildx bake
            // asks `--allow ssh`.
            if run.ssh.is_some() && !config.allows(Entitlement::Ssh) {
                return Err(Error::EntitlementMissing {
                    owner,
                    what: "ssh",
                    entitlement: Entitlement::Ssh,
                    config: config.path.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Resolves every target and var of `definition`, not only those a build reaches: an unknown
/// target, a cycle, a `from` naming a composite or an invalid image reference anywhere in the
/// file is refused, with the message a build reaching it gives (docs/reference.md: "anywhere in the
/// file"). Private targets are walked too; nothing is refused for being private here.
pub(crate) fn check_references(definition: &Definition) -> Result<(), Error> {
    let mut walk = Walk::new(definition, Vec::new());
    for name in definition.targets.keys() {
        walk.visit(Node::Target(name.clone()))?;
    }
    for name in definition.vars.keys() {
        walk.visit(Node::Var(name.clone()))?;
    }
    Ok(())
}

struct Walk<'d> {
    definition: &'d Definition,
    plan: Plan,
    done: BTreeSet<Node>,
}

/// A run's `from` and `copy[].from` resolved, and the targets among them.
struct ResolvedRun {
    base: Base,
    copy_sources: Vec<Option<Base>>,
    prerequisites: Vec<String>,
}

/// A node being walked: what it resolved to, and the nodes it needs, visited in order.
struct Frame {
    node: Node,
    planned: Planned,
    needs: Vec<Node>,
    next: usize,
}

enum Planned {
    Target(PlannedTarget),
    Var(PlannedVar),
}

impl<'d> Walk<'d> {
    fn new(definition: &'d Definition, requested: Vec<String>) -> Self {
        Self {
            definition,
            plan: Plan {
                requested,
                order: Vec::new(),
                targets: BTreeMap::new(),
                vars: BTreeMap::new(),
                nodes: Vec::new(),
                warnings: Vec::new(),
            },
            done: BTreeSet::new(),
        }
    }

    /// Depth-first from `root`, with an explicit stack so that long chains cannot overflow it.
    /// A node is finished after everything it needs, which gives `order` its prerequisites-first
    /// property.
    fn visit(&mut self, root: Node) -> Result<(), Error> {
        if self.done.contains(&root) {
            return Ok(());
        }
        let mut on_stack = BTreeSet::from([root.clone()]);
        let mut stack = vec![self.expand(root)?];
        while let Some(top) = stack.last_mut() {
            let Some(next) = top.needs.get(top.next).cloned() else {
                let frame = stack.pop().expect("a frame");
                on_stack.remove(&frame.node);
                self.finish(frame);
                continue;
            };
            top.next += 1;
            if self.done.contains(&next) {
                continue;
            }
            if on_stack.contains(&next) {
                let at = stack
                    .iter()
                    .position(|f| f.node == next)
                    .expect("on the stack");
                let mut chain: Vec<String> = stack[at..].iter().map(|f| f.node.label()).collect();
                chain.push(next.label());
                return Err(Error::Cycle { chain });
            }
            on_stack.insert(next.clone());
            stack.push(self.expand(next)?);
        }
        Ok(())
    }

    fn finish(&mut self, frame: Frame) {
        match (frame.node, frame.planned) {
            (Node::Target(name), Planned::Target(planned)) => {
                self.plan.targets.insert(name.clone(), planned);
                self.done.insert(Node::Target(name.clone()));
                self.plan.nodes.push(Node::Target(name.clone()));
                self.plan.order.push(name);
            }
            (Node::Var(name), Planned::Var(planned)) => {
                self.plan.vars.insert(name.clone(), planned);
                self.done.insert(Node::Var(name.clone()));
                self.plan.nodes.push(Node::Var(name));
            }
            _ => unreachable!("a frame plans its own kind of node"),
        }
    }

    fn expand(&mut self, node: Node) -> Result<Frame, Error> {
        let (planned, needs) = match &node {
            Node::Target(name) => {
                let planned = self.plan_target(name)?;
                let needs = (planned.vars.iter().cloned().map(Node::Var))
                    .chain(planned.prerequisites.iter().cloned().map(Node::Target))
                    .collect();
                (Planned::Target(planned), needs)
            }
            Node::Var(name) => {
                let planned = self.plan_var(name)?;
                let needs = planned
                    .prerequisites
                    .iter()
                    .cloned()
                    .map(Node::Target)
                    .collect();
                (Planned::Var(planned), needs)
            }
        };
        Ok(Frame {
            node,
            planned,
            needs,
            next: 0,
        })
    }

    fn plan_target(&mut self, name: &str) -> Result<PlannedTarget, Error> {
        let definition = self.definition;
        Ok(match &definition.targets[name] {
            Target::Composite(members) => {
                let mut prerequisites = Vec::new();
                for member in members {
                    self.require_target(member, || format!("composite target \"{name}\""))?;
                    push_unique(&mut prerequisites, member);
                }
                PlannedTarget {
                    prerequisites,
                    base: None,
                    copy_sources: Vec::new(),
                    vars: BTreeSet::new(),
                }
            }
            Target::Stage(stage) => {
                let owner = format!("target \"{name}\"");
                let ResolvedRun {
                    base,
                    copy_sources,
                    mut prerequisites,
                } = self.resolve_run(&owner, &stage.run)?;
                for dependency in &stage.depends_on {
                    self.require_target(dependency, || format!("dependsOn of target \"{name}\""))?;
                    push_unique(&mut prerequisites, dependency);
                }
                let vars = stage
                    .run
                    .command
                    .as_deref()
                    .map(|c| var_references(c, |v| definition.vars.contains_key(v)))
                    .unwrap_or_default();
                if let Some(command) = &stage.run.command {
                    for warning in near_misses(&owner, command, definition) {
                        if !self.plan.warnings.contains(&warning) {
                            self.plan.warnings.push(warning);
                        }
                    }
                }
                PlannedTarget {
                    prerequisites,
                    base: Some(base),
                    copy_sources,
                    vars,
                }
            }
        })
    }

    fn plan_var(&mut self, name: &str) -> Result<PlannedVar, Error> {
        let run = &self.definition.vars[name].run;
        let resolved = self.resolve_run(&format!("var \"{name}\""), run)?;
        Ok(PlannedVar {
            base: resolved.base,
            copy_sources: resolved.copy_sources,
            prerequisites: resolved.prerequisites,
        })
    }

    /// Resolves a run's `from` and `copy[].from`; returns the targets among them as prerequisites.
    fn resolve_run(&mut self, owner: &str, run: &Run) -> Result<ResolvedRun, Error> {
        let mut prerequisites = Vec::new();
        let base = match &run.from {
            Some(from) => self.resolve_base(owner, "from", from)?,
            None => Base::Scratch,
        };
        if let Base::Target(target) = &base {
            push_unique(&mut prerequisites, target);
        }
        let mut copy_sources = Vec::with_capacity(run.copy.len());
        for (i, copy) in run.copy.iter().enumerate() {
            let source = match &copy.from {
                Some(from) => Some(self.resolve_base(owner, &format!("copy[{i}].from"), from)?),
                None => None,
            };
            if let Some(Base::Target(target)) = &source {
                push_unique(&mut prerequisites, target);
            }
            copy_sources.push(source);
        }
        Ok(ResolvedRun {
            base,
            copy_sources,
            prerequisites,
        })
    }

    fn resolve_base(&mut self, owner: &str, field: &str, from: &str) -> Result<Base, Error> {
        match self.definition.targets.get(from) {
            Some(Target::Stage(_)) => return Ok(Base::Target(from.to_owned())),
            Some(Target::Composite(_)) => {
                return Err(Error::FromComposite {
                    owner: owner.to_owned(),
                    field: field.to_owned(),
                    name: from.to_owned(),
                })
            }
            None => {}
        }
        if from == "scratch" {
            return Ok(Base::Scratch);
        }
        let image = image::normalize(from).map_err(|reason| Error::InvalidImage {
            owner: owner.to_owned(),
            field: field.to_owned(),
            reference: from.to_owned(),
            reason,
        })?;
        // A bare word close to a target name is more likely a typo than an official image.
        if !from.contains(['/', ':', '@', '.']) {
            let targets = self.definition.targets.keys().map(String::as_str);
            if let Some(target) = brewkit_schema::did_you_mean(from, targets) {
                let warning = format!(
                    "{owner}: {field} \"{from}\" is not a target, so it is the image {image}; did you mean target \"{target}\"?"
                );
                if !self.plan.warnings.contains(&warning) {
                    self.plan.warnings.push(warning);
                }
            }
        }
        Ok(Base::Image(image))
    }

    fn require_target(&self, name: &str, referrer: impl Fn() -> String) -> Result<(), Error> {
        if self.definition.targets.contains_key(name) {
            return Ok(());
        }
        Err(Error::UnknownTarget {
            name: name.to_owned(),
            referrer: referrer(),
            suggestion: brewkit_schema::did_you_mean(
                name,
                self.definition.targets.keys().map(String::as_str),
            )
            .map(str::to_owned),
        })
    }
}

fn push_unique(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_owned());
    }
}
