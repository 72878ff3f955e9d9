//! One node of the build: lowered with what the nodes before it left (their states, the vars'
//! values), then solved in the run's gateway build.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
};

use brewkit_buildkit::{gateway::Gateway, Client, SessionOptions};
use brewkit_definition::{Base, Definition, Node, Plan, Target};
use brewkit_llb::State;

use crate::{
    host::{clean_join, context_read},
    images::Images,
    lower::{self, CopySource, Lowering},
    route::Router,
    schedule::overlaps,
    BuildOptions, Error, SolveFailure,
};

/// Everything the nodes of a build share.
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) definition: Definition,
    pub(crate) plan: Plan,
    pub(crate) options: BuildOptions,
    pub(crate) session: SessionOptions,
    /// The canonical context directory.
    pub(crate) context: PathBuf,
    /// The include patterns of the build's one shared context source.
    pub(crate) context_paths: Vec<String>,
    pub(crate) gateway: Gateway,
    pub(crate) images: Images,
    pub(crate) router: Router,
}

/// What a node will do.
// One per node, moved once into its task: the size of the target variant does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Work {
    Composite,
    Target {
        state: State,
        /// The state marshalled, its vertices claimed for this node's progress.
        definition: Box<brewkit_llb::pb::Definition>,
        command: Option<String>,
        outputs: Vec<(String, PathBuf)>,
    },
    Var {
        /// The var's run marshalled, its vertices claimed for this node's progress.
        definition: Box<brewkit_llb::pb::Definition>,
        command: Option<String>,
    },
}

/// What a finished node leaves for the nodes after it.
pub(crate) enum Done {
    Composite,
    Target {
        state: Box<State>,
        outputs: Vec<(String, PathBuf)>,
    },
    Var(String),
}

/// What the nodes before this one left.
pub(crate) struct Before<'a> {
    pub(crate) states: &'a HashMap<String, State>,
    pub(crate) values: &'a BTreeMap<String, String>,
    /// Host directories this build has written outputs to so far.
    pub(crate) written: &'a [PathBuf],
}

impl Shared {
    fn base(
        &self,
        base: &Base,
        platform: &Option<String>,
        before: &Before<'_>,
    ) -> Result<State, Error> {
        match base {
            Base::Scratch => Ok(State::scratch()),
            Base::Target(name) => before.states.get(name).cloned().ok_or_else(|| {
                Error::Internal(format!("target \"{name}\" is needed before it was built"))
            }),
            Base::Image(image) => self
                .images
                .base(image, platform)
                .ok_or_else(|| Error::Internal(format!("image {image} was not resolved"))),
        }
    }

    fn copy_sources(
        &self,
        sources: &[Option<Base>],
        platform: &Option<String>,
        before: &Before<'_>,
    ) -> Result<Vec<CopySource>, Error> {
        sources
            .iter()
            .map(|source| match source {
                None => Ok(CopySource::Context),
                Some(Base::Image(image)) => self
                    .images
                    .filesystem(image, platform)
                    .map(|s| CopySource::State(Box::new(s)))
                    .ok_or_else(|| Error::Internal(format!("image {image} was not resolved"))),
                Some(base) => Ok(CopySource::State(Box::new(
                    self.base(base, platform, before)?,
                ))),
            })
            .collect()
    }

    fn lowering(&self, run: &brewkit_definition::Run, before: &Before<'_>) -> Lowering {
        // A context copy reading where this build wrote is read from the host again.
        let unique = run
            .copy
            .iter()
            .map(|copy| {
                if copy.from.is_some() {
                    return None;
                }
                let read = context_read(&self.context, &copy.src);
                let writes = before.written.iter().filter(|w| overlaps(&read, w)).count();
                (writes > 0).then(|| writes.to_string())
            })
            .collect();
        Lowering {
            vars: before.values.clone(),
            shared_key: self.session.shared_key.clone(),
            context_paths: Some(self.context_paths.clone()),
            no_cache: self.options.no_cache,
            unique,
        }
    }

    /// Reports each context copy of `run` whose wildcard matches nothing: it copies nothing, as
    /// in BrewKit 1.1, which is seldom what was meant.
    async fn warn_empty_wildcards(&self, node: &Node, run: &brewkit_definition::Run) {
        for copy in run.copy.iter().filter(|copy| copy.from.is_none()) {
            if crate::host::wildcard_matches_nothing(&self.context, &copy.src) {
                let warning = crate::BuildEvent::Progress {
                    node: node.label(),
                    event: brewkit_buildkit::status::Event::Warning {
                        vertex: String::new(),
                        message: format!(
                            "copy {} {}: the wildcard matches nothing in the build context, so nothing is copied",
                            copy.src, copy.dst
                        ),
                    },
                };
                let _ = self.router.events().send(warning).await;
            }
        }
    }

    /// Lowers `node` on what the nodes before it left.
    pub(crate) fn prepare(&self, node: &Node, before: &Before<'_>) -> Result<Work, Error> {
        match node {
            Node::Target(name) => {
                let planned = &self.plan.targets[name];
                let Some(Target::Stage(stage)) = self.definition.targets.get(name) else {
                    return Ok(Work::Composite);
                };
                let run = &stage.run;
                let base = self.base(
                    planned.base.as_ref().unwrap_or(&Base::Scratch),
                    &run.platform,
                    before,
                )?;
                let sources = self.copy_sources(&planned.copy_sources, &run.platform, before)?;
                let state = lower::lower_run(run, base, &sources, &self.lowering(run, before));
                let outputs: Vec<(String, PathBuf)> = stage
                    .output
                    .iter()
                    .map(|o| (o.artifact.clone(), clean_join(&self.context, &o.local)))
                    .collect();
                // With outputs, the target's solve includes what its export copies out, as
                // soon as the run ends; the export then finds it built.
                let solved = crate::export::solo_tree(&crate::export::Request {
                    node: node.clone(),
                    state: state.clone(),
                    outputs: outputs.clone(),
                });
                // Claimed here, in plan order, not in the solve's task: a target built on a
                // running one shares its vertices, which stay under the first.
                let definition = Box::new(solved.as_ref().unwrap_or(&state).marshal());
                self.router.claim(&node.label(), &definition);
                Ok(Work::Target {
                    state,
                    definition,
                    command: run.command.clone(),
                    outputs,
                })
            }
            Node::Var(name) => {
                let planned = &self.plan.vars[name];
                let run = &self.definition.vars[name].run;
                let base = self.base(&planned.base, &run.platform, before)?;
                let sources = self.copy_sources(&planned.copy_sources, &run.platform, before)?;
                let state = lower::lower_var(run, base, &sources, &self.lowering(run, before));
                let definition = Box::new(state.marshal());
                self.router.claim(&node.label(), &definition);
                Ok(Work::Var {
                    definition,
                    command: run.command.clone(),
                })
            }
        }
    }

    /// Solves `work` in the gateway build (each vertex once for the whole run).
    pub(crate) async fn run(&self, node: &Node, work: Work) -> Result<Done, Error> {
        let label = node.label();
        if let Some(run) = crate::host::run_of(&self.definition, node) {
            self.warn_empty_wildcards(node, run).await;
        }
        match work {
            Work::Composite => Ok(Done::Composite),
            Work::Target {
                state,
                definition,
                command,
                outputs,
            } => {
                if !definition.def.is_empty() {
                    self.solve(&label, &command, *definition).await?;
                }
                Ok(Done::Target {
                    state: Box::new(state),
                    outputs,
                })
            }
            Work::Var {
                definition,
                command,
            } => {
                let reference = self.solve(&label, &command, *definition).await?;
                let stdout = self
                    .gateway
                    .read_file(&reference, lower::VAR_OUTPUT_FILE)
                    .await
                    .map_err(|e| Error::Failed {
                        node: label.clone(),
                        command: None,
                        failure: SolveFailure {
                            message: format!("reading its output: {}", e.message()),
                            ..SolveFailure::default()
                        },
                    })?;
                Ok(Done::Var(lower::var_value(&stdout)))
            }
        }
    }

    async fn solve(
        &self,
        label: &str,
        command: &Option<String>,
        definition: brewkit_llb::pb::Definition,
    ) -> Result<String, Error> {
        match self.gateway.solve(definition).await {
            Ok(reference) => Ok(reference),
            Err(e) => Err(Error::Failed {
                node: label.to_owned(),
                command: command.clone(),
                failure: self.router.failure(label, e.message()).await,
            }),
        }
    }
}

/// Whether the plan's target `name` has a run of its own (not a composite).
pub(crate) fn is_stage(definition: &Definition, name: &str) -> bool {
    definition.stage(name).is_some()
}
