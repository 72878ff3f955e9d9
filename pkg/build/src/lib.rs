//! `brewkit build`: the plan's targets and vars lowered to LLB and run on BuildKit, make-like.
//!
//! A node (target or var) starts when everything it needs has finished: its prerequisite targets
//! (outputs written on the host included) and the vars its command references. Ready nodes run
//! at once, up to `--jobs`. Vars go through a gateway build (solved, never cached, read back);
//! targets are Control solves; a target's outputs are local exports of the paths it names.

pub mod lower;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use brewkit_buildkit::{
    gateway::{Gateway, ResolveMode},
    progress::Event,
    Client, Session, SessionOptions, SolveRequest,
};
use brewkit_config::Config;
use brewkit_definition::{Base, Definition, Plan, Run, Target};
use brewkit_llb::State;
use lower::{CopySource, Lowering};
use tokio::{
    sync::{mpsc::UnboundedSender, Semaphore},
    task::JoinSet,
};

/// How many log lines of a failed command are shown.
pub const LOG_TAIL: usize = 20;

/// Options of a build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The build context (local copies read from here, outputs are written relative to it).
    pub context: PathBuf,
    /// At most this many nodes at once; `None`: every ready one.
    pub jobs: Option<usize>,
    /// Run every command again.
    pub no_cache: bool,
    /// Resolve images from their registry even when the daemon has them.
    pub pull: bool,
}

/// What a build reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A target or var started (`node` is the target's name, or `var NAME`).
    Started { node: String },
    /// BuildKit progress of a node's solve.
    Progress { node: String, event: Event },
    /// An output was written to the host.
    Exported { node: String, local: PathBuf },
    /// A node finished.
    Finished { node: String, duration: Duration },
}

/// Why a build stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something the host must provide is missing (a secret file, the ssh agent): bad input.
    #[error("{0}")]
    Host(String),
    /// A target's or var's solve failed.
    #[error("{node} failed {}: {}{}", failed_where(command, &failure.step), failure.message, render_tail(&failure.log_tail))]
    Failed {
        node: String,
        command: Option<String>,
        failure: SolveFailure,
    },
    /// An output could not be written.
    #[error("{node}: output to {}: {message}", local.display())]
    Output {
        node: String,
        local: PathBuf,
        message: String,
    },
    /// Talking to BuildKit failed outside a node (session, gateway, image configs).
    #[error(transparent)]
    BuildKit(#[from] brewkit_buildkit::Error),
}

/// What BuildKit said about a failed solve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SolveFailure {
    /// BuildKit's message (for a command: its exit code).
    pub message: String,
    /// The name of the step that failed, when BuildKit said which.
    pub step: Option<String>,
    /// The last log lines of the solve, at most [`LOG_TAIL`].
    pub log_tail: Vec<String>,
}

fn failed_where(command: &Option<String>, step: &Option<String>) -> String {
    match (command, step) {
        (Some(command), Some(step)) if step != command => format!("at `{step}`"),
        (Some(command), _) => format!("running `{command}`"),
        (None, Some(step)) => format!("at `{step}`"),
        (None, None) => "to build".to_owned(),
    }
}

fn render_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    format!("\nlast {} log lines:\n{}", lines.len(), lines.join("\n"))
}

/// A node of the schedule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Node {
    Target(String),
    Var(String),
}

impl Node {
    fn label(&self) -> String {
        match self {
            Self::Target(name) => name.clone(),
            Self::Var(name) => format!("var {name}"),
        }
    }
}

/// Everything the nodes share.
struct Shared {
    client: Client,
    definition: Definition,
    plan: Plan,
    options: BuildOptions,
    session: SessionOptions,
    session_id: String,
    gateway: Gateway,
    images: HashMap<(String, Option<String>), State>,
    events: UnboundedSender<BuildEvent>,
}

/// Builds `plan` (already checked against `config`) on `client`.
pub async fn build(
    client: &Client,
    definition: &Definition,
    plan: &Plan,
    config: &Config,
    options: &BuildOptions,
    events: UnboundedSender<BuildEvent>,
) -> Result<(), Error> {
    let session_options = session_options(definition, plan, config, &options.context)?;
    let session = Session::start(client, session_options.clone()).await?;
    // Vars run in the gateway build: it carries their entitlements, and its progress is
    // reported under "vars".
    let entitlements = entitlements(plan.vars.keys().map(|name| &definition.vars[name].run));
    let (var_events, mut var_received) = tokio::sync::mpsc::unbounded_channel();
    let forward_to = events.clone();
    tokio::spawn(async move {
        while let Some(event) = var_received.recv().await {
            let _ = forward_to.send(BuildEvent::Progress {
                node: "vars".to_owned(),
                event,
            });
        }
    });
    let gateway = client
        .gateway(
            Some(session.id().to_owned()),
            entitlements,
            Some(var_events),
        )
        .await?;
    let images = resolve_images(&gateway, definition, plan, options.pull).await?;
    let shared = Arc::new(Shared {
        client: client.clone(),
        definition: definition.clone(),
        plan: plan.clone(),
        options: options.clone(),
        session_id: session.id().to_owned(),
        session: session_options,
        gateway,
        images,
        events,
    });
    let result = schedule(shared.clone()).await;
    if let Ok(shared) = Arc::try_unwrap(shared) {
        if result.is_ok() {
            shared.gateway.finish().await?;
        }
    }
    session.close().await;
    result
}

/// The session's attachments: the context, the secret files, the ssh agent, registry auth.
fn session_options(
    definition: &Definition,
    plan: &Plan,
    config: &Config,
    context: &Path,
) -> Result<SessionOptions, Error> {
    let runs = planned_runs(definition, plan);
    let mut secrets = BTreeMap::new();
    let mut ssh = false;
    for (owner, run) in &runs {
        for secret in &run.secrets {
            if secrets.contains_key(&secret.id) {
                continue;
            }
            let source = config.secret(&secret.id).ok_or_else(|| {
                Error::Host(format!(
                    "{owner}: secret \"{}\" is not in the host config",
                    secret.id
                ))
            })?;
            let file = config
                .secret_file(source)
                .map_err(|e| Error::Host(format!("{owner}: {e}")))?;
            secrets.insert(secret.id.clone(), file);
        }
        ssh |= run.ssh.is_some();
    }
    let ssh_agent = if ssh {
        let owner = runs
            .iter()
            .find(|(_, run)| run.ssh.is_some())
            .map(|(owner, _)| owner.clone())
            .unwrap_or_default();
        let socket = std::env::var_os("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| {
                Error::Host(format!(
                    "{owner} uses ssh, but SSH_AUTH_SOCK is not set: start an agent (eval \"$(ssh-agent)\") and add a key (ssh-add)"
                ))
            })?;
        if !socket.exists() {
            return Err(Error::Host(format!(
                "{owner} uses ssh, but the agent socket {} (SSH_AUTH_SOCK) does not exist",
                socket.display()
            )));
        }
        Some(socket)
    } else {
        None
    };
    let context = context
        .canonicalize()
        .map_err(|e| Error::Host(format!("build context {}: {e}", context.display())))?;
    Ok(SessionOptions {
        name: "brewkit".to_owned(),
        shared_key: shared_key(&context),
        dirs: [(lower::CONTEXT.to_owned(), context)].into(),
        exports: Vec::new(),
        secrets,
        ssh_agent,
        registry_auth: true,
    })
}

/// A stable key for a context directory, so that BuildKit can reuse what it received before.
fn shared_key(context: &Path) -> String {
    // FNV-1a: stable across runs and versions, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in context.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("brewkit-context-{hash:016x}")
}

/// Every run the plan will do, with its owner for messages.
fn planned_runs<'d>(definition: &'d Definition, plan: &Plan) -> Vec<(String, &'d Run)> {
    let targets = plan.order.iter().filter_map(|name| {
        definition
            .stage(name)
            .map(|s| (format!("target \"{name}\""), &s.run))
    });
    let vars = plan
        .vars
        .keys()
        .map(|name| (format!("var \"{name}\""), &definition.vars[name].run));
    targets.chain(vars).collect()
}

/// Resolves every image a run starts from, with its config applied.
async fn resolve_images(
    gateway: &Gateway,
    definition: &Definition,
    plan: &Plan,
    pull: bool,
) -> Result<HashMap<(String, Option<String>), State>, Error> {
    let mut wanted = BTreeSet::new();
    for name in &plan.order {
        if let (Some(stage), Some(Some(Base::Image(image)))) = (
            definition.stage(name),
            plan.targets.get(name).map(|t| t.base.clone()),
        ) {
            wanted.insert((image, stage.run.platform.clone()));
        }
    }
    for (name, var) in &plan.vars {
        if let Base::Image(image) = &var.base {
            wanted.insert((image.clone(), definition.vars[name].run.platform.clone()));
        }
    }
    let mode = if pull {
        ResolveMode::ForcePull
    } else {
        ResolveMode::Default
    };
    let mut images = HashMap::new();
    for (image, platform) in wanted {
        let parsed = platform.as_deref().and_then(lower::platform);
        let resolved = gateway
            .resolve_image_config(&image, parsed.clone(), mode)
            .await?;
        let state = State::image(
            &image,
            if pull {
                brewkit_llb::ResolveMode::ForcePull
            } else {
                brewkit_llb::ResolveMode::Default
            },
            parsed,
        );
        images.insert(
            (image, platform),
            lower::apply_image_config(state, &resolved.config),
        );
    }
    Ok(images)
}

/// What a finished node leaves for the nodes after it.
enum Done {
    Target(State),
    Var(String),
    Composite,
}

/// Runs the nodes in dependency order, ready ones at once.
async fn schedule(shared: Arc<Shared>) -> Result<(), Error> {
    let mut needs: BTreeMap<Node, BTreeSet<Node>> = BTreeMap::new();
    for (name, target) in &shared.plan.targets {
        let mut set: BTreeSet<Node> = target
            .prerequisites
            .iter()
            .cloned()
            .map(Node::Target)
            .collect();
        set.extend(target.vars.iter().cloned().map(Node::Var));
        needs.insert(Node::Target(name.clone()), set);
    }
    for (name, var) in &shared.plan.vars {
        needs.insert(
            Node::Var(name.clone()),
            var.prerequisites
                .iter()
                .cloned()
                .map(Node::Target)
                .collect(),
        );
    }
    let semaphore = Arc::new(Semaphore::new(
        shared.options.jobs.unwrap_or(Semaphore::MAX_PERMITS).max(1),
    ));
    let mut states: HashMap<String, State> = HashMap::new();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut finished: BTreeSet<Node> = BTreeSet::new();
    let mut started: BTreeSet<Node> = BTreeSet::new();
    let mut running = JoinSet::new();
    loop {
        let ready: VecDeque<Node> = needs
            .iter()
            .filter(|(node, deps)| !started.contains(*node) && deps.is_subset(&finished))
            .map(|(node, _)| node.clone())
            .collect();
        for node in ready {
            started.insert(node.clone());
            let task = prepare(&shared, &node, &states, &values);
            let shared = shared.clone();
            let semaphore = semaphore.clone();
            running.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let start = Instant::now();
                let _ = shared
                    .events
                    .send(BuildEvent::Started { node: node.label() });
                let result = run_node(&shared, &node, task).await;
                if result.is_ok() {
                    let _ = shared.events.send(BuildEvent::Finished {
                        node: node.label(),
                        duration: start.elapsed(),
                    });
                }
                (node, result)
            });
        }
        let Some(joined) = running.join_next().await else {
            return Ok(());
        };
        let (node, result) = joined.map_err(|e| Error::Host(format!("build task: {e}")))?;
        match (node.clone(), result?) {
            (Node::Target(name), Done::Target(state)) => {
                states.insert(name, state);
            }
            (Node::Var(name), Done::Var(value)) => {
                values.insert(name, value);
            }
            _ => {}
        }
        finished.insert(node);
    }
}

/// `base/path` without `.` components and with `..` applied lexically (`./out` under `.` is
/// `out`, `../dist` under `/p/app` is `/p/dist`).
fn clean_join(base: &Path, path: &str) -> PathBuf {
    let mut joined = PathBuf::new();
    for component in base.join(path).components() {
        match component {
            std::path::Component::CurDir => {}
            // Lexically, like the shell's `cd`, so that outputs' common root is right.
            std::path::Component::ParentDir
                if joined
                    .components()
                    .next_back()
                    .is_some_and(|c| matches!(c, std::path::Component::Normal(_))) =>
            {
                joined.pop();
            }
            other => joined.push(other),
        }
    }
    if joined.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        joined
    }
}

/// What a node will do, lowered with what its dependencies left.
enum Task {
    Composite,
    Target {
        state: State,
        command: Option<String>,
        outputs: Vec<(String, PathBuf)>,
    },
    Var {
        state: State,
        command: Option<String>,
    },
}

fn base_state(
    shared: &Shared,
    base: &Base,
    platform: &Option<String>,
    states: &HashMap<String, State>,
) -> State {
    match base {
        Base::Scratch => State::scratch(),
        Base::Target(name) => states.get(name).cloned().unwrap_or_default(),
        Base::Image(image) => shared
            .images
            .get(&(image.clone(), platform.clone()))
            .cloned()
            .unwrap_or_else(|| State::image(image, brewkit_llb::ResolveMode::Default, None)),
    }
}

fn copy_sources(sources: &[Option<Base>], states: &HashMap<String, State>) -> Vec<CopySource> {
    sources
        .iter()
        .map(|source| match source {
            None => CopySource::Context,
            Some(Base::Target(name)) => {
                CopySource::State(Box::new(states.get(name).cloned().unwrap_or_default()))
            }
            Some(Base::Image(image)) => CopySource::State(Box::new(State::image(
                image,
                brewkit_llb::ResolveMode::Default,
                None,
            ))),
            Some(Base::Scratch) => CopySource::State(Box::default()),
        })
        .collect()
}

fn prepare(
    shared: &Shared,
    node: &Node,
    states: &HashMap<String, State>,
    values: &BTreeMap<String, String>,
) -> Task {
    let lowering = Lowering {
        vars: values.clone(),
        shared_key: shared.session.shared_key.clone(),
        no_cache: shared.options.no_cache,
    };
    match node {
        Node::Target(name) => {
            let planned = &shared.plan.targets[name];
            let Some(Target::Stage(stage)) = shared.definition.targets.get(name) else {
                return Task::Composite;
            };
            let base = base_state(
                shared,
                planned.base.as_ref().unwrap_or(&Base::Scratch),
                &stage.run.platform,
                states,
            );
            let sources = copy_sources(&planned.copy_sources, states);
            let state = lower::lower_run(&stage.run, base, &sources, &lowering);
            let outputs = stage
                .output
                .iter()
                .map(|o| {
                    (
                        o.artifact.clone(),
                        clean_join(&shared.options.context, &o.local),
                    )
                })
                .collect();
            Task::Target {
                state,
                command: stage.run.command.clone(),
                outputs,
            }
        }
        Node::Var(name) => {
            let planned = &shared.plan.vars[name];
            let run = &shared.definition.vars[name].run;
            let base = base_state(shared, &planned.base, &run.platform, states);
            let sources = copy_sources(&planned.copy_sources, states);
            Task::Var {
                state: lower::lower_var(run, base, &sources, &lowering),
                command: run.command.clone(),
            }
        }
    }
}

/// Solves `state` on `session`, exporting it when `export` is set; progress goes out under
/// `node`, and the log lines are kept for an error message.
async fn solve(
    shared: &Shared,
    node: &str,
    state: &State,
    session: &str,
    export: bool,
) -> Result<(), SolveFailure> {
    let definition = state.marshal();
    if definition.def.is_empty() {
        return Ok(());
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let request = SolveRequest {
        definition: Some(definition),
        session: Some(session.to_owned()),
        export_local: export,
        entitlements: entitlements(shared.definition.stage(node).map(|s| &s.run)),
        ..SolveRequest::default()
    };
    let id = brewkit_buildkit::new_id();
    let solving = shared.client.solve(&id, request, Some(tx));
    tokio::pin!(solving);
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut step: Option<String> = None;
    let forward = |event: Event, tail: &mut VecDeque<String>, step: &mut Option<String>| {
        if let Event::Completed {
            name,
            error: Some(_),
            ..
        } = &event
        {
            step.get_or_insert_with(|| name.clone());
        }
        if let Event::Log { data, .. } = &event {
            for line in String::from_utf8_lossy(data).lines() {
                if tail.len() == LOG_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line.to_owned());
            }
        }
        let _ = shared.events.send(BuildEvent::Progress {
            node: node.to_owned(),
            event,
        });
    };
    let result = loop {
        tokio::select! {
            result = &mut solving => break result,
            Some(event) = rx.recv() => forward(event, &mut tail, &mut step),
        }
    };
    while let Ok(event) = rx.try_recv() {
        forward(event, &mut tail, &mut step);
    }
    result.map(|_| ()).map_err(|e| SolveFailure {
        message: e.message(),
        step,
        log_tail: tail.into_iter().collect(),
    })
}

/// The entitlements a solve of `runs` must ask BuildKit for: `network.host` when one of them
/// uses the host network.
fn entitlements<'r>(runs: impl IntoIterator<Item = &'r Run>) -> Vec<String> {
    let host = runs
        .into_iter()
        .any(|run| run.network == Some(brewkit_definition::Network::Host));
    if host {
        vec!["network.host".to_owned()]
    } else {
        Vec::new()
    }
}

async fn run_node(shared: &Shared, node: &Node, task: Task) -> Result<Done, Error> {
    let label = node.label();
    let failed = |command: &Option<String>| {
        let command = command.clone();
        let node = label.clone();
        move |failure: SolveFailure| Error::Failed {
            node,
            command,
            failure,
        }
    };
    match task {
        Task::Composite => Ok(Done::Composite),
        Task::Target {
            state,
            command,
            outputs,
        } => {
            if outputs.is_empty() {
                solve(shared, &label, &state, &shared.session_id, false)
                    .await
                    .map_err(failed(&command))?;
            } else {
                export(shared, &label, &state, &outputs)
                    .await
                    .map_err(|e| match e {
                        ExportError::Solve(e) => failed(&command)(e),
                        ExportError::Local(local, message) => Error::Output {
                            node: label.clone(),
                            local,
                            message,
                        },
                    })?;
                for (_, local) in outputs {
                    let _ = shared.events.send(BuildEvent::Exported {
                        node: label.clone(),
                        local,
                    });
                }
            }
            Ok(Done::Target(state))
        }
        Task::Var { state, command } => {
            let failed = failed(&command);
            let reference = shared.gateway.solve(state.marshal()).await.map_err(|e| {
                failed(SolveFailure {
                    message: e.message(),
                    ..SolveFailure::default()
                })
            })?;
            let stdout = shared
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

enum ExportError {
    Solve(SolveFailure),
    Local(PathBuf, String),
}

/// The deepest directory holding every path of `paths` (absolute).
fn common_root(paths: &[PathBuf]) -> PathBuf {
    let mut root = paths[0].clone();
    for path in &paths[1..] {
        while !path.starts_with(&root) {
            if !root.pop() {
                break;
            }
        }
    }
    root
}

/// Runs the target and writes its outputs in one solve: every artifact is copied to its local
/// directory's place under their common root, and that state is exported to the root. So a
/// command runs once whatever the number of outputs (with `--no-cache` too), and only the
/// artifacts' paths are written; nothing else under the root is touched. The export has a
/// session of its own: before BuildKit v0.13 a session serves a single local export target, and
/// targets are exported concurrently.
async fn export(
    shared: &Shared,
    node: &str,
    state: &State,
    outputs: &[(String, PathBuf)],
) -> Result<(), ExportError> {
    let mut locals = Vec::with_capacity(outputs.len());
    for (_, local) in outputs {
        tokio::fs::create_dir_all(local)
            .await
            .map_err(|e| ExportError::Local(local.clone(), e.to_string()))?;
        let absolute = std::path::absolute(local)
            .map_err(|e| ExportError::Local(local.clone(), e.to_string()))?;
        locals.push(absolute);
    }
    let root = common_root(&locals);
    let mut exported = State::scratch();
    for ((artifact, _), local) in outputs.iter().zip(&locals) {
        let relative = local.strip_prefix(&root).unwrap_or(local);
        exported = lower::add_output(&exported, state, artifact, relative);
    }
    let options = SessionOptions {
        exports: vec![root.clone()],
        ..shared.session.clone()
    };
    let session = Session::start(&shared.client, options)
        .await
        .map_err(|e| ExportError::Local(root.clone(), e.to_string()))?;
    let result = solve(shared, node, &exported, session.id(), true).await;
    let transfers = session.transfers().await;
    session.close().await;
    result.map_err(ExportError::Solve)?;
    for transfer in transfers {
        if let brewkit_buildkit::Transfer::Received {
            result: Err(e),
            dest,
        } = transfer
        {
            return Err(ExportError::Local(dest, e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
