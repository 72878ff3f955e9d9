//! `brewkit build`: the plan's targets and vars lowered to LLB and run on BuildKit as one build.
//!
//! One invocation is one BuildKit build: one session, every image resolved once and pinned by
//! digest, and one gateway build in which every target and var is solved. BuildKit keeps the
//! vertices of that build active until it ends, so each runs at most once and each context path
//! is sent once, whatever the number of targets. A target's outputs are then exported by a solve
//! of their own, which shares those active vertices. [`schedule`] decides what runs when.

pub mod lower;
pub mod schedule;

mod error;
mod event;
mod export;
mod host;
mod images;
mod node;
mod route;

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    sync::Arc,
    time::Instant,
};

use brewkit_buildkit::{Client, Session};
use brewkit_config::Config;
use brewkit_definition::{Definition, Node, Plan, Run};
use brewkit_llb::State;
use tokio::{
    sync::mpsc::{channel, Sender},
    task::JoinSet,
};

pub use error::{reason as failure_reason, Error, HostError, OutputError, SolveFailure, LOG_TAIL};
pub use event::{exit_code, BuildEvent, NodeFailure, NodeResult, NodeStatus};

use export::{Exporter, Exports, Request};
use images::Images;
use node::{Before, Done, Shared};
use route::Router;
use schedule::{Outcome, Scheduler, Status};

/// How long a built target's outputs wait for another target to finish, so that targets
/// finishing together (a cached rebuild, where they come a few milliseconds apart) go out in
/// one export: a cached 20-target chain took 50 ms this way against 65 ms exporting each at
/// once. Longer waits cost a cold build: BuildKit runs a chain faster when each stage's output
/// is read as it ends (as docker build's last stage does), and a cold 20-target chain took
/// 4.92 s waiting up to 1 s, 4.59 s waiting 5 ms (medians of 8 alternated runs,
/// docs/performance.md).
const EXPORT_BURST: std::time::Duration = std::time::Duration::from_millis(5);

/// The longest built outputs wait for a burst to end, for people watching the output directory.
const EXPORT_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// When held exports go out if nothing else flushes them first: `EXPORT_BURST` after the
/// latest of them was built, at most `EXPORT_DELAY` after the oldest. Only exports that may go
/// out now (every target before them built, `first_running`) count; `None` when there are none.
fn export_deadline(
    held: &BTreeMap<usize, (Request, Instant)>,
    first_running: usize,
) -> Option<Instant> {
    let times = held.range(..first_running).map(|(_, (_, at))| *at);
    let (oldest, newest) = times.fold(None, |range: Option<(Instant, Instant)>, at| {
        Some(range.map_or((at, at), |(o, n)| (o.min(at), n.max(at))))
    })?;
    Some((oldest + EXPORT_DELAY).min(newest + EXPORT_BURST))
}

/// How many events a channel of the build holds before its sender waits for the reader: the
/// renderer's pace holds BuildKit's status stream back instead of filling memory.
pub const EVENT_BUFFER: usize = 1024;

/// Options of a build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The build context (local copies read from here, outputs are written relative to it).
    pub context: PathBuf,
    /// At most this many targets at once; `Some(1)` (make's default) runs them in order, one
    /// after another; `None`: every ready one.
    pub jobs: Option<usize>,
    /// After a failure, go on with what does not need the failed target.
    pub keep_going: bool,
    /// Run every command again.
    pub no_cache: bool,
    /// Resolve images from their registry even when the daemon has them.
    pub pull: bool,
}

/// Builds `plan` (already checked against `config`) on `client`.
pub async fn build(
    client: &Client,
    definition: &Definition,
    plan: &Plan,
    config: &Config,
    options: &BuildOptions,
    events: Sender<BuildEvent>,
) -> Result<(), Error> {
    host::check_outputs(definition, plan, config, &options.context)?;
    let planned = BuildEvent::Planned {
        nodes: plan.nodes.iter().map(Node::label).collect(),
        jobs: options.jobs,
        no_cache: options.no_cache,
    };
    let _ = events.send(planned).await;
    let session_options = host::session_options(definition, plan, config, &options.context)?;
    let context = session_options.dirs[lower::CONTEXT].clone();
    let session = Session::start(client, session_options.clone()).await?;
    let router = Router::new(events, "build");
    let (gateway_events, received) = channel(EVENT_BUFFER);
    let forwarding = tokio::spawn(router.clone().forward(received));
    let runs = host::planned_runs(definition, plan);
    let gateway = match client
        .gateway(
            Some(session.id().to_owned()),
            entitlements(runs.iter().map(|(_, run)| *run)),
            Some(gateway_events),
        )
        .await
    {
        Ok(gateway) => gateway,
        Err(e) => {
            session.close().await;
            forwarding.abort();
            return Err(e.into());
        }
    };
    let images = match Images::resolve(&gateway, &router, definition, plan, options.pull).await {
        Ok(images) => images,
        Err(e) => {
            drop(gateway);
            session.close().await;
            forwarding.abort();
            return Err(e);
        }
    };
    let shared = Arc::new(Shared {
        client: client.clone(),
        definition: definition.clone(),
        plan: plan.clone(),
        options: options.clone(),
        session: session_options,
        context,
        context_paths: host::context_paths(&runs),
        gateway,
        images,
        router,
    });
    let result = run(shared.clone()).await;
    let ended = match Arc::try_unwrap(shared) {
        Ok(shared) => shared.gateway.finish().await.map_err(Error::from),
        Err(_) => Err(Error::Internal(
            "a node's task outlived the build".to_owned(),
        )),
    };
    session.close().await;
    // The gateway's progress ends with its build; what is left is a moment away.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), forwarding).await;
    result.and(ended)
}

/// Runs the nodes as the scheduler says, and their exports, until nothing more can run.
async fn run(shared: Arc<Shared>) -> Result<(), Error> {
    let definition = &shared.definition;
    let mut scheduler = Scheduler::new(
        &shared.plan,
        |name| node::is_stage(definition, name),
        |node| {
            host::footprint(
                definition,
                &shared.plan,
                &shared.session,
                &shared.context,
                node,
            )
        },
        shared.options.jobs,
        shared.options.keep_going,
    );
    let mut exporter = Exporter::start(Exports {
        client: shared.client.clone(),
        session: shared.session.clone(),
        router: shared.router.clone(),
        context: shared.context.clone(),
    });
    let events = shared.router.events().clone();
    // What the closures below report, sent (with back-pressure) once the loop can await.
    let outbox: std::cell::RefCell<Vec<BuildEvent>> = Default::default();
    let emit = |event: BuildEvent| outbox.borrow_mut().push(event);
    let mut tasks: JoinSet<Result<Done, Error>> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, Node> = HashMap::new();
    let mut started: HashMap<Node, Instant> = HashMap::new();
    // How long each node that ended took, for the build's last event.
    let ended: std::cell::RefCell<HashMap<Node, std::time::Duration>> = Default::default();
    let mut states: HashMap<String, State> = HashMap::new();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut written: Vec<PathBuf> = Vec::new();
    let mut exporting: HashMap<Node, Vec<PathBuf>> = HashMap::new();
    let mut errors: Vec<Error> = Vec::new();
    // Built targets' exports wait here, by plan position, until every target before them is
    // built, so that outputs land in plan order (a later target's file wins a collision).
    let mut held: BTreeMap<usize, (Request, Instant)> = BTreeMap::new();

    // A node is finished when it and everything it needs is done, outputs included.
    let took = |node: &Node, started: &HashMap<Node, Instant>| {
        let duration = started.get(node).map(Instant::elapsed).unwrap_or_default();
        ended.borrow_mut().insert(node.clone(), duration);
        duration
    };
    let finished = |done: Vec<Node>, started: &HashMap<Node, Instant>| {
        for node in done {
            if started.contains_key(&node) {
                let duration = took(&node, started);
                emit(BuildEvent::Finished {
                    node: node.label(),
                    duration,
                });
            }
        }
    };
    let cancelled = |node: &Node, started: &HashMap<Node, Instant>| {
        let duration = took(node, started);
        emit(BuildEvent::Cancelled {
            node: node.label(),
            duration,
        });
    };
    // A failure of a node whose need failed is that need's failure, already reported.
    let failed = |node: &Node,
                  e: Error,
                  scheduler: &mut Scheduler,
                  errors: &mut Vec<Error>,
                  started: &HashMap<Node, Instant>| {
        if scheduler.need_broken(node) {
            cancelled(node, started);
            scheduler.finish(node, Outcome::Cancelled);
        } else {
            emit(BuildEvent::Failed {
                node: node.label(),
                duration: took(node, started),
                failure: event::NodeFailure::of(&e),
            });
            errors.push(e);
            scheduler.finish(node, Outcome::Failed);
        }
    };

    loop {
        for node in scheduler.ready() {
            started.insert(node.clone(), Instant::now());
            emit(BuildEvent::Started { node: node.label() });
            let before = Before {
                states: &states,
                values: &values,
                written: &written,
            };
            match shared.prepare(&node, &before) {
                Ok(work) => {
                    // Targets built on this one may be lowered before it finishes.
                    if let (Node::Target(name), node::Work::Target { state, .. }) = (&node, &work) {
                        states.insert(name.clone(), state.clone());
                    }
                    let shared = shared.clone();
                    let task_node = node.clone();
                    let handle = tasks.spawn(async move { shared.run(&task_node, work).await });
                    running.insert(handle.id(), node);
                }
                Err(e) => failed(&node, e, &mut scheduler, &mut errors, &started),
            }
        }
        for event in outbox.take() {
            let _ = events.send(event).await;
        }
        if scheduler.stopped() {
            tasks.abort_all();
        }
        // Exports wait while other targets finish in a burst, so that they go out together:
        // until nothing runs, something waiting reads where they write, or the deadline.
        let first_running = scheduler.first_running().unwrap_or(usize::MAX);
        let deadline = export_deadline(&held, first_running);
        let flush = tasks.is_empty()
            || scheduler.stopped()
            || deadline.is_some_and(|at| Instant::now() >= at)
            || held
                .values()
                .any(|(request, _)| scheduler.read_by_waiting(&request.node));
        if flush {
            while held
                .first_key_value()
                .is_some_and(|(&at, _)| at < first_running)
            {
                if let Some((_, (request, _))) = held.pop_first() {
                    exporter.queue(request);
                }
            }
        }
        if tasks.is_empty() && exporter.pending() == 0 {
            break;
        }
        // A flush sends every export the deadline counts; what stays waits for an earlier
        // target (its end wakes this loop) or for the deadline.
        let wake = deadline.filter(|_| !flush);
        tokio::select! {
            Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                let (id, result) = match joined {
                    Ok((id, result)) => (id, Ok(result)),
                    Err(e) => (e.id(), Err(e)),
                };
                let Some(node) = running.remove(&id) else {
                    errors.push(Error::Internal("a task ended that was never started".into()));
                    break;
                };
                match result {
                    Ok(Ok(Done::Target { state, outputs })) => {
                        if outputs.is_empty() {
                            finished(scheduler.finish(&node, Outcome::Ok), &started);
                        } else {
                            scheduler.built(&node);
                            exporting.insert(node.clone(), outputs.iter().map(|(_, l)| l.clone()).collect());
                            let at = scheduler.position(&node).unwrap_or(usize::MAX);
                            held.insert(at, (Request { node, state: *state, outputs }, Instant::now()));
                        }
                    }
                    Ok(Ok(Done::Var(value))) => {
                        if let Node::Var(name) = &node {
                            values.insert(name.clone(), value);
                        }
                        finished(scheduler.finish(&node, Outcome::Ok), &started);
                    }
                    Ok(Ok(Done::Composite)) => {
                        finished(scheduler.finish(&node, Outcome::Ok), &started);
                    }
                    Ok(Err(e)) => failed(&node, e, &mut scheduler, &mut errors, &started),
                    Err(e) if e.is_panic() => {
                        let e = Error::Internal(format!("the task of {} panicked", node.label()));
                        emit(BuildEvent::Failed {
                            node: node.label(),
                            duration: took(&node, &started),
                            failure: event::NodeFailure::of(&e),
                        });
                        errors.push(e);
                        scheduler.finish(&node, Outcome::Failed);
                    }
                    Err(_) => {
                        cancelled(&node, &started);
                        scheduler.finish(&node, Outcome::Cancelled);
                    }
                }
            }
            _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now).into()), if wake.is_some() => {}
            Some(done) = exporter.next(), if exporter.pending() > 0 => {
                let locals = exporting.remove(&done.node).unwrap_or_default();
                match done.result {
                    Ok(()) => {
                        written.extend(locals);
                        finished(scheduler.finish(&done.node, Outcome::Ok), &started);
                    }
                    Err(e) => failed(&done.node, e, &mut scheduler, &mut errors, &started),
                }
            }
        }
    }
    exporter.stop().await;
    for event in outbox.take() {
        let _ = events.send(event).await;
    }
    let ended = ended.into_inner();
    let nodes = scheduler
        .statuses()
        .map(|(node, status)| NodeResult {
            node: node.label(),
            status: match status {
                Status::Done => NodeStatus::Done,
                Status::Failed => NodeStatus::Failed,
                Status::Cancelled | Status::Running | Status::Built { .. } => NodeStatus::Cancelled,
                Status::Waiting | Status::Skipped => NodeStatus::Skipped,
            },
            duration: ended.get(node).copied(),
        })
        .collect();
    let _ = events.send(BuildEvent::Ended { nodes }).await;
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(Error::Several(errors)),
    }
}

/// The entitlements a build of `runs` must ask BuildKit for: `network.host` when one of them
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

#[cfg(test)]
mod tests;
