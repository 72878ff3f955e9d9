//! The sending side of DiffCopy: serving a local directory (`FileSync.DiffCopy`).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    pin::pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, PoisonError,
    },
};

use futures::{Stream, StreamExt};
use tokio::{io::AsyncReadExt, sync::mpsc};
use tonic::Status;

use super::{
    mode, packet, report_error,
    walk::{walk, WalkStats},
    Error, Filter, CHUNK_SIZE,
};
use brewkit_proto::fsutil::types::{packet::PacketType, Packet, Stat};

/// What a [`send`] did: what it read from disk and what it sent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SendStats {
    /// Directories whose entries were listed (the root included).
    pub dirs_read: usize,
    /// Entries `lstat`ed: only those sent (and, at most once, the directories above them).
    pub entries_stat: usize,
    /// STAT packets sent (entries sent).
    pub entries_sent: usize,
    /// Files whose content was read, one per REQ.
    pub files_read: usize,
    /// Bytes of file content read and sent.
    pub bytes_read: u64,
    /// Relative paths of the directories listed, in order ("" is the root).
    #[cfg(test)]
    pub(crate) dirs_listed: Vec<String>,
}

/// Sets a flag when dropped, to stop the walk when [`send`] ends or is dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Serves `root` over a DiffCopy stream, as fsutil's `Send` does: the role of the client in
/// `FileSync.DiffCopy`, where BuildKit asks for a local directory.
///
/// Walks `root` (see [`Filter`] for what is sent) and sends one STAT packet per entry, then an
/// empty STAT. Meanwhile answers each REQ packet with the content of the file numbered by its
/// id, in DATA packets of at most [`CHUNK_SIZE`] bytes ended by an empty one. Returns once the
/// receiver sends FIN, after answering it with FIN.
///
/// `incoming` is what the receiver sends, `outgoing` where our packets go. On an error of ours
/// (an unreadable file, a bad request), an ERR packet naming it is sent before returning the
/// error; an ERR from the receiver is returned as [`Error::Remote`].
pub async fn send<S>(
    root: &Path,
    filter: &Filter,
    incoming: S,
    outgoing: mpsc::Sender<Result<Packet, Status>>,
) -> Result<SendStats, Error>
where
    S: Stream<Item = Result<Packet, Status>>,
{
    report_error(run(root, filter, incoming, &outgoing).await, &outgoing)
}

async fn run<S>(
    root: &Path,
    filter: &Filter,
    incoming: S,
    outgoing: &mpsc::Sender<Result<Packet, Status>>,
) -> Result<SendStats, Error>
where
    S: Stream<Item = Result<Packet, Status>>,
{
    filter.validate()?;
    let root = tokio::fs::canonicalize(root)
        .await
        .map_err(Error::io("resolve", root))?;
    let meta = tokio::fs::metadata(&root)
        .await
        .map_err(Error::io("stat", &root))?;
    if !meta.is_dir() {
        return Err(Error::Io {
            op: "walk",
            path: root,
            source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
        });
    }

    let files: Arc<Mutex<HashMap<u32, String>>> = Arc::default();
    let cancelled = Arc::new(AtomicBool::new(false));
    let cancel = CancelOnDrop(cancelled.clone());
    let mut walker = tokio::task::spawn_blocking({
        let root = root.clone();
        let filter = filter.clone();
        let files = files.clone();
        let outgoing = outgoing.clone();
        move || walk_and_send(&root, &filter, &cancelled, &files, &outgoing)
    });
    let mut walking = true;
    let mut walk_stats = WalkStats::default();

    let mut stats = SendStats::default();
    let mut incoming = pin!(incoming);
    let mut buf = vec![0u8; CHUNK_SIZE];
    loop {
        tokio::select! {
            joined = &mut walker, if walking => {
                walking = false;
                walk_stats = joined.map_err(|e| Error::Protocol(format!("walk failed: {e}")))??;
            }
            next = incoming.next() => {
                let Some(next) = next else {
                    return Err(Error::Protocol(
                        "the receiver closed the stream before FIN".to_string(),
                    ));
                };
                let p = next.map_err(|status| Error::Transport(Box::new(status)))?;
                match PacketType::try_from(p.r#type) {
                    Ok(PacketType::PacketReq) => {
                        let path = files
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&p.id)
                            .ok_or_else(|| Error::Protocol(format!("invalid file id {}", p.id)))?;
                        let n = send_file(&root.join(&path), p.id, &mut buf, outgoing).await?;
                        stats.files_read += 1;
                        stats.bytes_read += n;
                    }
                    Ok(PacketType::PacketFin) => {
                        if walking {
                            // FIN before our listing ended: the receiver wants no more. Stop the
                            // walk without waiting for it (it may be blocked on a full stream).
                            cancel.0.store(true, Ordering::Relaxed);
                        }
                        // The receiver may already be gone; it has all it asked for.
                        let _ = outgoing.send(Ok(packet(PacketType::PacketFin, 0, Vec::new()))).await;
                        stats.dirs_read = walk_stats.dirs_read;
                        stats.entries_stat = walk_stats.entries_stat;
                        stats.entries_sent = walk_stats.entries_sent;
                        #[cfg(test)]
                        {
                            stats.dirs_listed = walk_stats.dirs_listed;
                        }
                        return Ok(stats);
                    }
                    Ok(PacketType::PacketErr) => {
                        return Err(Error::Remote(String::from_utf8_lossy(&p.data).into_owned()));
                    }
                    // fsutil ignores anything else.
                    Ok(PacketType::PacketStat | PacketType::PacketData) | Err(_) => {}
                }
            }
        }
    }
}

/// The blocking part: walks and sends STAT packets, registering the ids of regular files.
fn walk_and_send(
    root: &Path,
    filter: &Filter,
    cancelled: &AtomicBool,
    files: &Mutex<HashMap<u32, String>>,
    outgoing: &mpsc::Sender<Result<Packet, Status>>,
) -> Result<WalkStats, Error> {
    let compiled = filter.compile(root)?;
    let mut stats = WalkStats::default();
    // Ids number every STAT in order; the receiver counts the same way.
    let mut next_id: u32 = 0;
    let mut emit = |stat: Stat| -> Result<(), Error> {
        let id = next_id;
        next_id = next_id
            .checked_add(1)
            .ok_or_else(|| Error::Protocol("too many entries".to_string()))?;
        if mode::is_regular(stat.mode) {
            files
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id, stat.path.clone());
        }
        let mut p = packet(PacketType::PacketStat, 0, Vec::new());
        p.stat = Some(stat);
        outgoing.blocking_send(Ok(p)).map_err(|_| Error::Closed)
    };
    walk(root, &compiled, cancelled, &mut stats, &mut emit)?;
    // An empty STAT ends the listing.
    outgoing
        .blocking_send(Ok(packet(PacketType::PacketStat, 0, Vec::new())))
        .map_err(|_| Error::Closed)?;
    Ok(stats)
}

/// Sends the content of `path` as DATA packets for `id`, then the empty DATA that ends it.
/// The file is opened without following a symlink or blocking on a FIFO (it was a regular file
/// when walked), and must still be a regular file.
async fn send_file(
    path: &PathBuf,
    id: u32,
    buf: &mut [u8],
    outgoing: &mpsc::Sender<Result<Packet, Status>>,
) -> Result<u64, Error> {
    let mut file = tokio::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .await
        .map_err(Error::io("open", path))?;
    let meta = file.metadata().await.map_err(Error::io("stat", path))?;
    if !meta.is_file() {
        return Err(Error::Io {
            op: "open",
            path: path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no longer a regular file",
            ),
        });
    }
    let mut total = 0u64;
    loop {
        let n = file.read(buf).await.map_err(Error::io("read", path))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        outgoing
            .send(Ok(packet(PacketType::PacketData, id, buf[..n].to_vec())))
            .await
            .map_err(|_| Error::Closed)?;
    }
    outgoing
        .send(Ok(packet(PacketType::PacketData, id, Vec::new())))
        .await
        .map_err(|_| Error::Closed)?;
    Ok(total)
}
