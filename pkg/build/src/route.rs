//! The gateway build's progress, one stream for every solve of the run, sent on under the node
//! that owns each vertex: the first node whose solve contained it.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use brewkit_buildkit::{log::Lines, status::Event};
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
    /// Per vertex, what came after its last newline: BuildKit's log chunks may end mid-line or
    /// mid-character.
    partial: HashMap<String, Lines>,
}

impl Tail {
    /// Adds `data`, written by `vertex`, keeping only the last [`LOG_TAIL`] lines.
    fn log(&mut self, vertex: &str, data: &[u8]) {
        // As a terminal shows them: what the last `\r` redraw wrote, so that a progress bar
        // never breaks the error's layout.
        let lines = self
            .partial
            .entry(vertex.to_owned())
            .or_default()
            .push(data);
        for line in lines {
            self.push(line);
        }
    }

    fn push(&mut self, line: String) {
        if self.lines.len() == LOG_TAIL {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// The last lines, with what each vertex wrote after its last newline.
    fn last_lines(&self) -> Vec<String> {
        let mut tail = Tail {
            lines: self.lines.clone(),
            ..Tail::default()
        };
        let mut unfinished: Vec<(&String, &Lines)> = self.partial.iter().collect();
        unfinished.sort_by_key(|(vertex, _)| *vertex);
        for (_, lines) in unfinished {
            if let Some(line) = lines.clone().flush() {
                tail.push(line);
            }
        }
        tail.lines.into()
    }
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
                Event::Log { vertex, data, .. } => tail.log(vertex, data),
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
            log_tail: tail.map(Tail::last_lines).unwrap_or_default(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_split_across_chunks_are_whole_in_the_tail() {
        let mut tail = Tail::default();
        let text = "first line\nsecond é line\r\nthird";
        let bytes = text.as_bytes();
        // Every chunk boundary, the one inside 'é' (two bytes) included.
        for cut in 0..bytes.len() {
            let mut tail_at = Tail::default();
            tail_at.log("v", &bytes[..cut]);
            tail_at.log("v", &bytes[cut..]);
            assert_eq!(
                tail_at.last_lines(),
                ["first line", "second é line", "third"],
                "cut at {cut}"
            );
        }
        // Two vertices writing at once keep their own partial lines.
        tail.log("a", b"from a, ");
        tail.log("b", b"from b\n");
        tail.log("a", b"still a\n");
        assert_eq!(tail.last_lines(), ["from b", "from a, still a"]);
    }

    #[test]
    fn the_tail_keeps_the_last_lines_and_what_a_redraw_shows() {
        let mut tail = Tail::default();
        for i in 0..LOG_TAIL + 5 {
            tail.log("v", format!("line {i}\n").as_bytes());
        }
        tail.log("v", b"10%\r50%\r100%\n");
        let lines = tail.last_lines();
        assert_eq!(lines.len(), LOG_TAIL);
        assert_eq!(lines.last().map(String::as_str), Some("100%"));
        assert_eq!(lines[0], format!("line {}", 6));
        // A very long line without a newline is kept, not held forever: the next line comes
        // after it.
        let limit = brewkit_buildkit::log::PARTIAL_LIMIT;
        let mut tail = Tail::default();
        tail.log("v", &vec![b'x'; limit + 1]);
        tail.log("v", b"next\n");
        let lines = tail.last_lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0].len(), limit + 1);
        assert_eq!(lines[1], "next");
    }
}
