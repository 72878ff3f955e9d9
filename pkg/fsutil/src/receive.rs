//! The receiving side of DiffCopy: writing what BuildKit's local exporter sends
//! (`FileSend.DiffCopy`) into a directory.

use std::{
    collections::VecDeque,
    path::Path,
    pin::pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tonic::Status;

use super::{report_error, write::write, Error};
use brewkit_proto::fsutil::types::{packet::PacketType, Packet};

/// How [`receive`] writes files.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiveOptions {
    /// Give files and directories the sender's modification times (default: yes).
    pub preserve_mod_time: bool,
    /// Replace an existing file or symlink at a received path (default: yes). When not set,
    /// one is an error. A directory is never replaced, whatever this says.
    pub overwrite: bool,
}

impl Default for ReceiveOptions {
    fn default() -> Self {
        Self {
            preserve_mod_time: true,
            overwrite: true,
        }
    }
}

/// What a [`receive`] wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReceiveStats {
    /// Regular files written (hard links not counted).
    pub files: usize,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Directories received (created, or already there).
    pub dirs: usize,
    /// Symlinks created.
    pub symlinks: usize,
    /// Hard links created.
    pub hardlinks: usize,
    /// Entries not written: devices, FIFOs and sockets.
    pub skipped: usize,
}

/// Receives a DiffCopy stream into `dest`, as fsutil's `Receive` does: the role of the server
/// in `FileSend.DiffCopy`, where BuildKit's local exporter sends files.
///
/// For each STAT packet the entry is checked and made: directories are created (as are missing
/// parents), symlinks created as they are (their targets are not checked, nor ever followed),
/// and each regular file is requested with a REQ packet carrying its id (its index among the
/// STAT packets). Its DATA packets are written to a temporary file in its final directory, which
/// the empty DATA packet renames into place with the sent permission bits. Hard links (a regular
/// file whose `linkname` names an earlier file of the transfer) are made once all content has
/// arrived, then directories get their modes. Then FIN is sent, and the sender's FIN (or the end
/// of its stream) ends the transfer.
///
/// Safety: a path that is absolute, unclean or holds `..`, or that reaches through a symlink
/// (already in `dest`, or received earlier), is refused with [`Error::UnsafePath`]; `dest`
/// itself must hold no symlink ([`Error::SymlinkInDestination`]). Directories that exist keep
/// their modes and times: only those the transfer creates get the sender's. Nothing is
/// deleted: a directory in the way is an error. Owners are not changed, and set-id and sticky
/// bits are dropped. Special files are skipped. If the transfer fails, no temporary file is
/// left behind, nor an empty directory it created (what was renamed into place stays); if this future is dropped, the writer
/// removes its temporary file right after the write under way.
///
/// The file system work runs on a blocking thread fed by a bounded queue of packets, so memory
/// stays bounded whatever the size of the transfer.
///
/// On an error of ours an ERR packet naming it is sent before returning the error; an ERR from
/// the sender is returned as [`Error::Remote`].
pub async fn receive<S>(
    dest: &Path,
    incoming: S,
    outgoing: mpsc::Sender<Result<Packet, Status>>,
    options: &ReceiveOptions,
) -> Result<ReceiveStats, Error>
where
    S: Stream<Item = Result<Packet, Status>>,
{
    report_error(run(dest, incoming, &outgoing, options).await, &outgoing)
}

/// Packets queued for the writer at most: with fsutil's 32 KiB chunks, about 2 MiB in flight.
const WRITE_QUEUE: usize = 64;

async fn run<S>(
    dest: &Path,
    incoming: S,
    outgoing: &mpsc::Sender<Result<Packet, Status>>,
    options: &ReceiveOptions,
) -> Result<ReceiveStats, Error>
where
    S: Stream<Item = Result<Packet, Status>>,
{
    // The file system work runs on a blocking thread, fed by a bounded channel: disk writes
    // never stall the runtime, and a slow disk holds the sender back (through HTTP/2 flow
    // control) instead of piling data up in memory.
    let (to_writer, from_loop) = mpsc::channel::<Packet>(WRITE_QUEUE);
    let (to_loop, from_writer) = mpsc::unbounded_channel::<Packet>();
    let stop = StopWriter::default();
    let writer = {
        let dest = dest.to_path_buf();
        let options = options.clone();
        let stopped = stop.0.clone();
        tokio::task::spawn_blocking(move || write(dest, options, from_loop, to_loop, &stopped))
    };
    let flow = pump(incoming, outgoing, &to_writer, from_writer).await;
    if flow.is_err() {
        stop.0.store(true, Ordering::Relaxed);
    }
    // Closed only now: the writer, seeing its queue end, must already know whether the transfer
    // failed (then it removes what it made).
    drop(to_writer);
    // Awaited on every path, so that no temporary file outlives a failed transfer.
    let written = writer
        .await
        .unwrap_or_else(|e| Err(Error::Writer(e.to_string())));
    match flow? {
        Flow::Done => written,
        Flow::WriterStopped => {
            written.and(Err(Error::Writer("it ended without an error".to_string())))
        }
    }
}

/// How [`pump`] ended without an error of its own.
enum Flow {
    /// The transfer is complete and the writer's channel closed.
    Done,
    /// The writer stopped first, which it does only on an error.
    WriterStopped,
}

/// Moves packets: the sender's STAT and DATA to the writer, the writer's REQs and FIN to the
/// sender; handles the sender's FIN and ERR.
async fn pump<S>(
    incoming: S,
    outgoing: &mpsc::Sender<Result<Packet, Status>>,
    to_writer: &mpsc::Sender<Packet>,
    mut from_writer: mpsc::UnboundedReceiver<Packet>,
) -> Result<Flow, Error>
where
    S: Stream<Item = Result<Packet, Status>>,
{
    // Packets for the sender. Queued so that we never stop reading while waiting to send: the
    // sender may itself be waiting for us to read its DATA.
    let mut queue: VecDeque<Packet> = VecDeque::new();
    let mut fin_queued = false;
    let mut incoming = pin!(incoming);
    loop {
        tokio::select! {
            permit = outgoing.reserve(), if !queue.is_empty() => {
                let permit = permit.map_err(|_| Error::Closed)?;
                if let Some(p) = queue.pop_front() {
                    permit.send(Ok(p));
                }
            }
            from = from_writer.recv(), if !fin_queued => match from {
                Some(p) => {
                    fin_queued = p.r#type == PacketType::PacketFin as i32;
                    queue.push_back(p);
                }
                None => return Ok(Flow::WriterStopped),
            },
            next = incoming.next() => {
                let Some(next) = next else {
                    if fin_queued {
                        // The sender hung up instead of answering FIN; all is written.
                        return Ok(Flow::Done);
                    }
                    return Err(Error::Protocol(
                        "the sender closed the stream before the transfer ended".to_string(),
                    ));
                };
                let p = next.map_err(|status| Error::Transport(Box::new(status)))?;
                match PacketType::try_from(p.r#type) {
                    Ok(PacketType::PacketStat | PacketType::PacketData) => {
                        if to_writer.send(p).await.is_err() {
                            return Ok(Flow::WriterStopped);
                        }
                    }
                    Ok(PacketType::PacketFin) => {
                        if fin_queued {
                            return Ok(Flow::Done);
                        }
                        return Err(Error::Protocol(
                            "the sender ended the transfer before it was complete".to_string(),
                        ));
                    }
                    Ok(PacketType::PacketErr) => {
                        return Err(Error::Remote(String::from_utf8_lossy(&p.data).into_owned()));
                    }
                    // fsutil ignores anything else.
                    Ok(PacketType::PacketReq) | Err(_) => {}
                }
            }
        }
    }
}

/// Tells the writer to stop when the receiving future ends or is dropped; its temporary file
/// is then removed on its thread, right after the packet it is writing.
#[derive(Default)]
struct StopWriter(Arc<AtomicBool>);

impl Drop for StopWriter {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
