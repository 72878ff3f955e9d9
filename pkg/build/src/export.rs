//! Outputs: the artifacts of built targets written to the host, in the order the targets were
//! built. Exports queued while one is running go out together, in one solve with one local
//! exporter, when they all land inside the project; the later target's files win a collision.
//!
//! An export is a `Control.Solve` of its own, on a session of its own (before BuildKit v0.13 a
//! session serves a single local export destination). The targets' runs are active vertices of
//! the run's gateway build, which BuildKit shares with the export's job: nothing runs again.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use brewkit_buildkit::{status::Event, Client, Session, SessionOptions, SolveOptions, Transfer};
use brewkit_definition::Node;
use brewkit_llb::State;
use tokio::{
    // The queues hold at most one entry per target of the plan; events are bounded.
    sync::mpsc::{channel, unbounded_channel, UnboundedReceiver, UnboundedSender},
    task::JoinHandle,
};

use crate::{
    lower,
    route::{vertex_of, Router},
    BuildEvent, Error, OutputError,
};

/// A built target's outputs to write.
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) node: Node,
    pub(crate) state: State,
    /// (artifact in the target's filesystem, absolute and clean host directory)
    pub(crate) outputs: Vec<(String, PathBuf)>,
}

/// How a target's export ended.
#[derive(Debug)]
pub(crate) struct Written {
    pub(crate) node: Node,
    pub(crate) result: Result<(), Error>,
}

/// What exports need of the build.
#[derive(Debug, Clone)]
pub(crate) struct Exports {
    pub(crate) client: Client,
    /// The build session's attachments (an export may read the context too).
    pub(crate) session: SessionOptions,
    pub(crate) router: Router,
    /// The canonical project directory: exports inside it may go out together.
    pub(crate) context: PathBuf,
}

/// The export queue and its worker.
#[derive(Debug)]
pub(crate) struct Exporter {
    requests: Option<UnboundedSender<Request>>,
    written: UnboundedReceiver<Written>,
    pending: usize,
    worker: JoinHandle<()>,
}

impl Exporter {
    pub(crate) fn start(exports: Exports) -> Self {
        let (requests, received) = unbounded_channel();
        let (done, written) = unbounded_channel();
        let worker = tokio::spawn(work(exports, received, done));
        Self {
            requests: Some(requests),
            written,
            pending: 0,
            worker,
        }
    }

    /// Queues `request` behind the exports already queued.
    pub(crate) fn queue(&mut self, request: Request) {
        if let Some(requests) = &self.requests {
            if requests.send(request).is_ok() {
                self.pending += 1;
            }
        }
    }

    /// How many queued exports have not ended.
    pub(crate) fn pending(&self) -> usize {
        self.pending
    }

    /// The next export that ended.
    pub(crate) async fn next(&mut self) -> Option<Written> {
        let written = self.written.recv().await?;
        self.pending -= 1;
        Some(written)
    }

    /// Stops the worker (an export in flight is cancelled).
    pub(crate) async fn stop(mut self) {
        self.requests.take();
        self.worker.abort();
        let _ = (&mut self.worker).await;
    }
}

impl Drop for Exporter {
    /// A build dropped mid-export (a signal) cancels the export in flight.
    fn drop(&mut self) {
        self.worker.abort();
    }
}

async fn work(
    exports: Exports,
    mut received: UnboundedReceiver<Request>,
    done: UnboundedSender<Written>,
) {
    let mut leftover: Option<Request> = None;
    loop {
        let first = match leftover.take() {
            Some(request) => request,
            None => match received.recv().await {
                Some(request) => request,
                None => return,
            },
        };
        let mut batch = vec![first];
        if inside(&batch[0], &exports.context) {
            while let Ok(next) = received.try_recv() {
                if inside(&next, &exports.context) && joins(&batch, &next) {
                    batch.push(next);
                } else {
                    leftover = Some(next);
                    break;
                }
            }
        }
        let results = if batch.len() == 1 {
            vec![export_one(&exports, &batch[0]).await]
        } else {
            match export(&exports, &batch).await {
                Ok(()) => batch.iter().map(|_| Ok(())).collect(),
                // One at a time, so that the failure is the failing target's alone.
                Err(_) => {
                    let mut results = Vec::new();
                    for request in &batch {
                        results.push(export_one(&exports, request).await);
                    }
                    results
                }
            }
        };
        for (request, result) in batch.into_iter().zip(results) {
            if result.is_ok() {
                for (_, local) in &request.outputs {
                    let written = BuildEvent::Exported {
                        node: request.node.label(),
                        local: local.clone(),
                    };
                    let _ = exports.router.events().send(written).await;
                }
            }
            if done
                .send(Written {
                    node: request.node,
                    result,
                })
                .is_err()
            {
                return;
            }
        }
    }
}

/// Exports `request`'s outputs, in one file op when they may go together (see [`joins`]),
/// else one after another, in their order.
async fn export_one(exports: &Exports, request: &Request) -> Result<(), Error> {
    if joins(&[], request) {
        return export(exports, std::slice::from_ref(request)).await;
    }
    for output in &request.outputs {
        let one = Request {
            node: request.node.clone(),
            state: request.state.clone(),
            outputs: vec![output.clone()],
        };
        export(exports, std::slice::from_ref(&one)).await?;
    }
    Ok(())
}

/// Whether `next` may go out in one file op with `batch` (with none: whether its own outputs
/// may go out together). In one file op a later copy follows
/// what an earlier one made (a symlink, resolved inside the exported tree), where exported on its
/// own it meets the files on the host, whose symlinks the receiver refuses to follow. So a batch
/// either writes into one directory only (a symlink's target then stays inside it), or into
/// directories none of which holds another (no copy goes through what another made).
fn joins(batch: &[Request], next: &Request) -> bool {
    let locals = |request: &Request| -> Vec<PathBuf> {
        request.outputs.iter().map(|(_, l)| l.clone()).collect()
    };
    let all: Vec<PathBuf> = batch.iter().chain([next]).flat_map(locals).collect();
    let one_directory = all.iter().all(|l| Some(l) == all.first());
    let apart = |a: &PathBuf, b: &PathBuf| !a.starts_with(b) && !b.starts_with(a);
    let all_apart = all
        .iter()
        .enumerate()
        .all(|(i, a)| all[i + 1..].iter().all(|b| apart(a, b)));
    one_directory || all_apart
}

fn inside(request: &Request, context: &Path) -> bool {
    request
        .outputs
        .iter()
        .all(|(_, local)| local.starts_with(context))
}

/// The deepest directory holding every path of `paths` (absolute).
pub(crate) fn common_root(paths: &[PathBuf]) -> PathBuf {
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

/// The state an export of `batch` writes: every artifact copied to its local directory's place
/// under their common root (returned beside it), in one file op.
fn tree(batch: &[Request]) -> (PathBuf, State) {
    // The receiver makes the directories (never through a symlink, leaving existing ones'
    // modes alone, removing what it made if the export fails).
    let locals: Vec<PathBuf> = batch
        .iter()
        .flat_map(|request| request.outputs.iter().map(|(_, local)| local.clone()))
        .collect();
    let root = common_root(&locals);
    let mut copies: Vec<(&State, &str, &Path)> = Vec::new();
    for request in batch {
        for (artifact, local) in &request.outputs {
            let relative = local.strip_prefix(&root).unwrap_or(local);
            copies.push((&request.state, artifact.as_str(), relative));
        }
    }
    let name = match batch {
        [one] => format!(
            "output {}",
            one.outputs
                .iter()
                .map(|(artifact, _)| artifact.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => format!(
            "outputs of {}",
            batch
                .iter()
                .map(|r| r.node.label())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let tree = lower::output_tree(&copies, &name);
    (root, tree)
}

/// The state an export of `request` alone writes, when it has outputs and they go out in one
/// file op: the target solves it, so that BuildKit copies the outputs out as soon as the run
/// ends (as docker build's last stage copies each stage's files), and the export finds it built.
pub(crate) fn solo_tree(request: &Request) -> Option<State> {
    let writes = !request.outputs.is_empty() && joins(&[], request);
    writes.then(|| tree(std::slice::from_ref(request)).1)
}

/// Writes the outputs of `batch` in one solve: [`tree`], exported to the common root. Only the
/// artifacts' paths are written; nothing else under the root is touched.
async fn export(exports: &Exports, batch: &[Request]) -> Result<(), Error> {
    let label = batch[0].node.label();
    let (root, tree) = tree(batch);
    let definition = tree.marshal();
    // The export's own vertices, shown under the first target of the batch.
    let owners: HashMap<String, String> = crate::route::vertices(&definition)
        .filter(|vertex| !exports.router.claimed(vertex))
        .map(|vertex| (vertex, label.clone()))
        .collect();
    let session = Session::start(
        &exports.client,
        SessionOptions {
            exports: vec![root.clone()],
            ..exports.session.clone()
        },
    )
    .await?;
    let (tx, mut rx) = channel::<Event>(crate::EVENT_BUFFER);
    let request = SolveOptions {
        definition: Some(definition),
        session: Some(session.id().to_owned()),
        export_local: true,
        ..SolveOptions::default()
    };
    let id = brewkit_buildkit::new_id();
    let solving = exports.client.solve(&id, request, Some(tx));
    tokio::pin!(solving);
    // Only the export's own vertices: the targets' were shown when they were built.
    let forward = |event: Event| async {
        if let Some(owner) = owners.get(vertex_of(&event)) {
            exports.router.send(owner.clone(), event).await;
        }
    };
    let result = loop {
        tokio::select! {
            result = &mut solving => break result,
            Some(event) = rx.recv() => forward(event).await,
        }
    };
    while let Ok(event) = rx.try_recv() {
        forward(event).await;
    }
    let transfers = session.transfers().await;
    session.close().await;
    // The receiver's own error first: BuildKit only sees its end of the stream (often "EOF").
    for transfer in transfers {
        match transfer {
            Transfer::Received {
                result: Err(error),
                dest,
            } => {
                return Err(Error::Output {
                    node: label,
                    local: dest,
                    source: OutputError::Receive(error),
                })
            }
            Transfer::Unfinished { running, limit } => {
                return Err(Error::Output {
                    node: label,
                    local: root,
                    source: OutputError::Unfinished { running, limit },
                })
            }
            _ => {}
        }
    }
    if let Err(e) = result {
        return Err(Error::Failed {
            node: label.clone(),
            command: None,
            failure: exports.router.failure(&label, e.message()).await,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(locals: &[&str]) -> Request {
        Request {
            node: Node::Target("t".into()),
            state: State::scratch(),
            outputs: locals
                .iter()
                .map(|l| ("/a".to_owned(), PathBuf::from(l)))
                .collect(),
        }
    }

    #[test]
    fn a_batch_writes_into_one_directory_or_into_directories_apart() {
        let batch = [request(&["/p/out"])];
        assert!(joins(&batch, &request(&["/p/out"])), "one directory");
        assert!(joins(&batch, &request(&["/p/other"])), "apart");
        assert!(
            !joins(&batch, &request(&["/p/out/d/evil"])),
            "a later output inside an earlier one's directory goes out on its own"
        );
        assert!(!joins(&batch, &request(&["/p"])), "nor one around it");
        let two = [request(&["/p/out"]), request(&["/p/out"])];
        assert!(joins(&two, &request(&["/p/out"])));
        assert!(
            !joins(&two, &request(&["/p/other"])),
            "one directory written twice, then another: a symlink in the first may point anywhere under their common root"
        );
        let apart = [request(&["/p/a"]), request(&["/p/b"])];
        assert!(joins(&apart, &request(&["/p/c"])));
        assert!(!joins(&apart, &request(&["/p/a"])));
        assert!(
            !joins(&apart, &request(&["/p/c", "/p/c/d"])),
            "a target's own outputs, one inside the other"
        );
    }
}
