//! File transfer services of a session: FileSync (BuildKit reads a local directory) and FileSend
//! (BuildKit's local exporter writes into one).

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use tokio::sync::{mpsc, Notify};
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};
use tonic::{Request, Response, Status, Streaming};

use super::{tasks::Tasks, BoxStream};
use crate::{
    filesync::{self, ReceiveOptions, ReceiveStats, SendStats, SyncRequest},
    proto::{
        fsutil::types::Packet,
        moby::filesync::v1::{file_send_server::FileSend, file_sync_server::FileSync},
    },
};

/// Metadata key naming which exporter of a solve a FileSend call is for (absent before
/// BuildKit v0.13, where a solve has a single exporter: id 0).
const EXPORTER_ID_KEY: &str = "buildkit-attachable-exporter-id";

/// One finished transfer, as the session records it.
#[derive(Debug, Clone)]
pub enum Transfer {
    /// A local directory sent to BuildKit.
    Sent {
        /// The local directory's name in the session (the LLB local source's name).
        dir_name: String,
        /// What was sent, or why sending stopped (shared: a record is cloned for each reader).
        result: Result<SendStats, Arc<filesync::Error>>,
    },
    /// An export received from BuildKit.
    Received {
        /// The host directory written into.
        dest: PathBuf,
        /// What was written, or why writing stopped.
        result: Result<ReceiveStats, Arc<filesync::Error>>,
    },
    /// Transfers still running when the session stopped waiting for them: their outcome is not
    /// known, so nothing may count as written.
    Unfinished {
        /// How many.
        running: usize,
        /// How long the session waited.
        limit: std::time::Duration,
    },
}

/// The session's transfers: those that ended, and how many are still running.
#[derive(Clone, Default)]
pub(super) struct Transfers(Arc<TransfersInner>);

impl std::fmt::Debug for Transfers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfers")
            .field("running", &self.0.running.load(Ordering::SeqCst))
            .field("ended", &self.ended())
            .finish()
    }
}

#[derive(Default)]
struct TransfersInner {
    ended: Mutex<Vec<Transfer>>,
    running: AtomicUsize,
    changed: Notify,
}

/// A running transfer; when it is dropped, the transfer counts as ended.
pub(super) struct Running(Transfers);

impl Drop for Running {
    fn drop(&mut self) {
        self.0 .0.running.fetch_sub(1, Ordering::SeqCst);
        self.0 .0.changed.notify_waiters();
    }
}

impl Transfers {
    /// Counts a transfer as running until the returned guard is dropped.
    pub(super) fn start(&self) -> Running {
        self.0.running.fetch_add(1, Ordering::SeqCst);
        Running(self.clone())
    }

    fn record(&self, transfer: Transfer) {
        self.list().push(transfer);
    }

    /// The list, even after a panic elsewhere poisoned its lock: a record is never lost.
    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Transfer>> {
        self.0
            .ended
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The transfers that ended so far.
    pub(super) fn ended(&self) -> Vec<Transfer> {
        self.list().clone()
    }

    /// Waits until no transfer runs (a solve can return before our side of its last transfer
    /// has finished writing), at most `limit`; then the transfers that ended.
    pub(super) async fn settled(&self, limit: std::time::Duration) -> Vec<Transfer> {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let changed = self.0.changed.notified();
                if self.0.running.load(Ordering::SeqCst) == 0 {
                    return;
                }
                changed.await;
            }
        })
        .await;
        let mut ended = self.ended();
        let running = self.0.running.load(Ordering::SeqCst);
        if running > 0 {
            ended.push(Transfer::Unfinished { running, limit });
        }
        ended
    }
}

/// Reads the peer's packets as fast as they come, into a queue of our own.
///
/// BuildKit asks for every file at once (thousands of tiny REQ packets) while we answer one file
/// at a time; left unread in HTTP/2's buffers, that many small frames trip h2's flood protection
/// and it closes the whole session connection ("too_many_data_frames").
fn drain(
    tasks: &Tasks,
    mut stream: Streaming<Packet>,
) -> UnboundedReceiverStream<Result<Packet, Status>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tasks.spawn(async move {
        loop {
            let item = match stream.message().await {
                Ok(Some(packet)) => Ok(packet),
                Ok(None) => break,
                Err(status) => Err(status),
            };
            let failed = item.is_err();
            if tx.send(item).is_err() || failed {
                break;
            }
        }
    });
    UnboundedReceiverStream::new(rx)
}

/// Runs one transfer, either direction, on a task of its own, recorded in `transfers` when it
/// ends (a running transfer holds off [`Transfers::settled`]); returns the packets for BuildKit.
fn serve<F>(
    tasks: &Tasks,
    transfers: &Transfers,
    transfer: impl FnOnce(mpsc::Sender<Result<Packet, Status>>) -> F,
) -> BoxStream<Packet>
where
    F: std::future::Future<Output = Transfer> + Send + 'static,
{
    let (outgoing, rx) = mpsc::channel(64);
    let work = transfer(outgoing);
    let transfers = transfers.clone();
    let running = transfers.start();
    tasks.spawn(async move {
        transfers.record(work.await);
        drop(running);
    });
    Box::pin(ReceiverStream::new(rx))
}

pub(super) struct FileSyncService {
    pub(super) dirs: BTreeMap<String, PathBuf>,
    pub(super) transfers: Transfers,
    pub(super) tasks: Tasks,
}

#[tonic::async_trait]
impl FileSync for FileSyncService {
    type DiffCopyStream = BoxStream<Packet>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let sync = SyncRequest::from_metadata(request.metadata())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        sync.filter
            .validate()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let Some(root) = self.dirs.get(&sync.dir_name).cloned() else {
            return Err(Status::not_found(format!(
                "no access allowed to dir {:?}",
                sync.dir_name
            )));
        };
        let incoming = drain(&self.tasks, request.into_inner());
        Ok(Response::new(serve(
            &self.tasks,
            &self.transfers,
            |outgoing| async move {
                let result = filesync::send(&root, &sync.filter, incoming, outgoing)
                    .await
                    .map_err(Arc::new);
                Transfer::Sent {
                    dir_name: sync.dir_name,
                    result,
                }
            },
        )))
    }

    type TarStreamStream = BoxStream<Packet>;

    async fn tar_stream(
        &self,
        _: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::TarStreamStream>, Status> {
        Err(Status::unimplemented("only DiffCopy is served"))
    }
}

pub(super) struct FileSendService {
    /// Export directory per exporter id.
    pub(super) exports: Vec<PathBuf>,
    pub(super) transfers: Transfers,
    pub(super) tasks: Tasks,
}

#[tonic::async_trait]
impl FileSend for FileSendService {
    type DiffCopyStream = BoxStream<Packet>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let id = match request.metadata().get(EXPORTER_ID_KEY) {
            None => 0,
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| Status::invalid_argument("invalid exporter id"))?,
        };
        let Some(dest) = self.exports.get(id).cloned() else {
            return Err(Status::not_found(format!(
                "no export directory for exporter {id}"
            )));
        };
        // Read as we write: HTTP/2 flow control holds BuildKit back, so memory stays bounded
        // (the daemon's data packets are large; only FileSync's flood of REQs needs draining).
        let incoming = request.into_inner();
        Ok(Response::new(serve(
            &self.tasks,
            &self.transfers,
            |outgoing| async move {
                let result =
                    filesync::receive(&dest, incoming, outgoing, &ReceiveOptions::default())
                        .await
                        .map_err(Arc::new);
                Transfer::Received { dest, result }
            },
        )))
    }
}
