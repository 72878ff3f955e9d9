//! The gateway build's progress, one stream for every solve of the run, sent on under the node
//! that owns each vertex: the first node whose solve contained it.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use brewkit_buildkit::status::Event;
use brewkit_llb::pb;
use tokio::sync::{
    mpsc::{Receiver, Sender},
    Notify,
};

use crate::{BuildEvent, SolveFailure, LOG_TAIL};

/// How long a failed solve's last progress may trail its answer: long enough for a loaded
/// machine (the wait ends as soon as the failed step arrives, which is usually at once).
const FAILURE_SETTLE: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
struct Routes {
    owners: HashMap<String, String>,
    /// Vertices known by name only (BuildKit makes up their digests), by name.
    named: HashMap<String, String>,
    default: String,
    tails: HashMap<String, Tail>,
}

#[derive(Debug, Default)]
struct Tail {
    lines: VecDeque<String>,
    failed_step: Option<String>,
}

/// Routes progress events to their nodes and keeps each node's last log lines.
#[derive(Debug, Clone)]
pub(crate) struct Router {
    routes: Arc<Mutex<Routes>>,
    changed: Arc<Notify>,
    events: Sender<BuildEvent>,
}

/// The vertex digests of `definition` (its last op is the terminal, which names no vertex).
pub(crate) fn vertices(definition: &pb::Definition) -> impl Iterator<Item = String> + '_ {
    let count = definition.def.len().saturating_sub(1);
    definition.def[..count]
        .iter()
        .map(|bytes| brewkit_llb::digest(bytes))
}

impl Router {
    /// A router sending on to `events`; unclaimed vertices go under `default`.
    pub(crate) fn new(events: Sender<BuildEvent>, default: &str) -> Self {
        Self {
            routes: Arc::new(Mutex::new(Routes {
                default: default.to_owned(),
                ..Routes::default()
            })),
            changed: Arc::new(Notify::new()),
            events,
        }
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        // A panic while holding the lock leaves the routes usable: they are only names.
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routes every event from `received` until it ends.
    pub(crate) async fn forward(self, mut received: Receiver<Event>) {
        while let Some(event) = received.recv().await {
            let node = self.owner_of(&event);
            self.send(node, event).await;
        }
    }

    fn owner_of(&self, event: &Event) -> String {
        let mut routes = self.routes();
        if let Some(owner) = routes.owners.get(vertex_of(event)) {
            return owner.clone();
        }
        let by_name = match event {
            Event::Started { name, .. }
            | Event::Cached { name, .. }
            | Event::Completed { name, .. } => routes.named.get(name).cloned(),
            _ => None,
        };
        match by_name {
            Some(owner) => {
                let vertex = vertex_of(event).to_owned();
                routes.owners.insert(vertex, owner.clone());
                owner
            }
            None => routes.default.clone(),
        }
    }

    /// Sends `event` under `node`, keeping its log lines and failed step.
    pub(crate) async fn send(&self, node: String, mut event: Event) {
        if let Event::Completed {
            error: Some(error), ..
        } = &mut event
        {
            *error = crate::lower::hide_var_wrapper(error);
        }
        {
            let mut routes = self.routes();
            let tail = routes.tails.entry(node.clone()).or_default();
            match &event {
                Event::Log { data, .. } => {
                    for line in String::from_utf8_lossy(data).lines() {
                        if tail.lines.len() == LOG_TAIL {
                            tail.lines.pop_front();
                        }
                        // As a terminal shows it: what the last `\r` redraw wrote, so that
                        // a progress bar never breaks the error's layout.
                        let line = line.trim_end_matches('\r');
                        let shown = line.rsplit('\r').next().unwrap_or(line);
                        tail.lines.push_back(shown.to_owned());
                    }
                }
                Event::Completed {
                    name,
                    error: Some(_),
                    ..
                } => {
                    tail.failed_step.get_or_insert_with(|| name.clone());
                }
                _ => {}
            }
        }
        self.changed.notify_waiters();
        let _ = self.events.send(BuildEvent::Progress { node, event }).await;
    }

    /// Claims for `node` every vertex of `definition` that no node claimed before.
    pub(crate) fn claim(&self, node: &str, definition: &pb::Definition) {
        let mut routes = self.routes();
        for vertex in vertices(definition) {
            routes
                .owners
                .entry(vertex)
                .or_insert_with(|| node.to_owned());
        }
    }

    /// Where build events go.
    pub(crate) fn events(&self) -> &Sender<BuildEvent> {
        &self.events
    }

    /// Claims for `node` the vertex named `name` (one whose digest BuildKit makes up).
    pub(crate) fn claim_name(&self, node: &str, name: String) {
        self.routes()
            .named
            .entry(name)
            .or_insert_with(|| node.to_owned());
    }

    /// Whether a node claimed `vertex`.
    pub(crate) fn claimed(&self, vertex: &str) -> bool {
        self.routes().owners.contains_key(vertex)
    }

    /// What went wrong in `node`'s solve, which BuildKit answered with `message`: its failed
    /// step and last log lines, waiting a little for progress that trails the answer.
    pub(crate) async fn failure(&self, node: &str, message: String) -> SolveFailure {
        let deadline = tokio::time::Instant::now() + FAILURE_SETTLE;
        loop {
            let changed = self.changed.notified();
            if self
                .routes()
                .tails
                .get(node)
                .is_some_and(|t| t.failed_step.is_some())
            {
                break;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                break;
            }
        }
        let routes = self.routes();
        let tail = routes.tails.get(node);
        SolveFailure {
            message: crate::lower::hide_var_wrapper(&message),
            step: tail.and_then(|t| t.failed_step.clone()),
            log_tail: tail
                .map(|t| t.lines.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

/// The vertex an event is about.
pub(crate) fn vertex_of(event: &Event) -> &str {
    match event {
        Event::Started { vertex, .. }
        | Event::Cached { vertex, .. }
        | Event::Completed { vertex, .. }
        | Event::Log { vertex, .. }
        | Event::Transfer { vertex, .. }
        | Event::Warning { vertex, .. } => vertex,
        Event::Raw(_) => "",
    }
}
