//! The sender's walk: the entries of a directory, filtered, as fsutil `Stat`s in fsutil's order.
//!
//! Order: depth first, each directory's entries sorted by the bytes of their names, a directory
//! right before its contents (so `a`, `a/b`, `a.txt`: what fsutil's receiver checks). A
//! directory is listed only when something below it may be sent, and an entry is `lstat`ed only
//! when it is sent. A directory that is not sent itself but holds something sent is sent just
//! before the first such entry. Symlinks are never followed.

use std::{
    collections::{hash_map::Entry, HashMap},
    ffi::OsString,
    fs::{FileType, Metadata},
    os::unix::{
        ffi::OsStrExt,
        fs::{FileTypeExt, MetadataExt},
    },
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use super::{
    filter::{is_not_found, CompiledFilter, Decision, MatchState},
    mode, Error,
};
use brewkit_proto::fsutil::types::Stat;

/// What a walk looked at.
#[derive(Debug, Default, Clone)]
pub(crate) struct WalkStats {
    /// Directories listed (the root included).
    pub(crate) dirs_read: usize,
    /// Entries `lstat`ed.
    pub(crate) entries_stat: usize,
    /// Stats emitted.
    pub(crate) entries_sent: usize,
    /// Relative paths of the directories listed ("" for the root), in order.
    #[cfg(test)]
    pub(crate) dirs_listed: Vec<String>,
}

struct Frame {
    /// Relative slash path ("" for the root).
    rel: String,
    /// Whether `rel` had to be converted lossily from a non-UTF-8 name.
    lossy: bool,
    abs: PathBuf,
    entries: std::vec::IntoIter<(OsString, FileType)>,
    state: MatchState,
    /// Whether the directory's own stat was emitted (always for the root, which has none).
    sent: bool,
}

/// Walks `root` (a directory, not followed if a symlink: resolve it first), calling `emit` with
/// each stat to send, in order. Stops with [`Error::Closed`] once `cancelled` is set.
pub(crate) fn walk(
    root: &Path,
    filter: &CompiledFilter,
    cancelled: &AtomicBool,
    stats: &mut WalkStats,
    emit: &mut dyn FnMut(Stat) -> Result<(), Error>,
) -> Result<(), Error> {
    let entries = read_dir_sorted(root).map_err(Error::io("read directory", root))?;
    stats.dirs_read += 1;
    #[cfg(test)]
    stats.dirs_listed.push(String::new());
    let mut stack = vec![Frame {
        rel: String::new(),
        lossy: false,
        abs: root.to_path_buf(),
        entries: entries.into_iter(),
        state: MatchState::default(),
        sent: true,
    }];
    let mut hardlinks = HashMap::new();

    loop {
        if cancelled.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        let Some(top) = stack.last_mut() else {
            return Ok(());
        };
        let Some((name, file_type)) = top.entries.next() else {
            stack.pop();
            continue;
        };
        let (name_str, lossy) = match name.to_str() {
            Some(s) => (s.to_string(), top.lossy),
            None => (name.to_string_lossy().into_owned(), true),
        };
        let rel = if top.rel.is_empty() {
            name_str
        } else {
            format!("{}/{}", top.rel, name_str)
        };
        let abs = top.abs.join(&name);
        let (decision, state) = filter.decide(&rel, file_type.is_dir(), &top.state);
        let send = match decision {
            Decision::Prune => continue,
            Decision::Skip => false,
            Decision::Send => true,
        };

        let mut is_dir = file_type.is_dir();
        if send {
            let meta = match std::fs::symlink_metadata(&abs) {
                Ok(meta) => meta,
                // Gone since the directory was listed.
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(Error::io("stat", &abs)(e)),
            };
            stats.entries_stat += 1;
            is_dir = meta.is_dir();
            let Some(stat) = make_stat(&rel, &abs, &meta, &mut hardlinks)? else {
                continue;
            };
            if lossy {
                return Err(Error::NonUtf8Path(abs));
            }
            // Directories on the way that were not sent yet (they did not match themselves).
            for frame in stack.iter_mut().filter(|f| !f.sent) {
                if frame.lossy {
                    return Err(Error::NonUtf8Path(frame.abs.clone()));
                }
                let meta =
                    std::fs::symlink_metadata(&frame.abs).map_err(Error::io("stat", &frame.abs))?;
                stats.entries_stat += 1;
                if let Some(parent) = make_stat(&frame.rel, &frame.abs, &meta, &mut hardlinks)? {
                    emit(parent)?;
                    stats.entries_sent += 1;
                }
                frame.sent = true;
            }
            emit(stat)?;
            stats.entries_sent += 1;
        }

        if is_dir {
            match read_dir_sorted(&abs) {
                Ok(entries) => {
                    stats.dirs_read += 1;
                    #[cfg(test)]
                    stats.dirs_listed.push(rel.clone());
                    stack.push(Frame {
                        rel,
                        lossy,
                        abs,
                        entries: entries.into_iter(),
                        state,
                        sent: send,
                    });
                }
                Err(e) if is_not_found(&e) => {}
                // As fsutil: an unreadable directory that is not sent itself is passed over.
                Err(e) if !send && e.kind() == std::io::ErrorKind::PermissionDenied => {}
                Err(e) => return Err(Error::io("read directory", &abs)(e)),
            }
        }
    }
}

/// A directory's entries with their types, sorted by name bytes (Go's `os.ReadDir` order).
fn read_dir_sorted(dir: &Path) -> std::io::Result<Vec<(OsString, FileType)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(e),
        };
        out.push((entry.file_name(), file_type));
    }
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

/// The fsutil stat of one entry (`mkstat`), or `None` for a socket, which is not sent.
///
/// `hardlinks` maps the inodes of regular files already sent with more than one link to their
/// paths; a later link to one is sent with `linkname` set to the first path.
fn make_stat(
    rel: &str,
    abs: &Path,
    meta: &Metadata,
    hardlinks: &mut HashMap<(u64, u64), String>,
) -> Result<Option<Stat>, Error> {
    let file_type = meta.file_type();
    if file_type.is_socket() {
        return Ok(None);
    }
    let mut stat = Stat {
        path: rel.to_string(),
        mode: mode::from_unix(meta.mode()),
        uid: meta.uid(),
        gid: meta.gid(),
        mod_time: meta
            .mtime()
            .saturating_mul(1_000_000_000)
            .saturating_add(meta.mtime_nsec()),
        ..Stat::default()
    };
    if file_type.is_dir() {
        return Ok(Some(stat));
    }
    stat.size = i64::try_from(meta.size()).unwrap_or(i64::MAX);
    if file_type.is_block_device() || file_type.is_char_device() {
        // The (old, 12+20 bit) encoding fsutil uses.
        let rdev = meta.rdev();
        stat.devmajor = ((rdev >> 8) & 0xfff) as i64;
        stat.devminor = ((rdev & 0xff) | ((rdev >> 12) & 0xf_ff00)) as i64;
    }
    if file_type.is_symlink() {
        let target = std::fs::read_link(abs).map_err(Error::io("read link", abs))?;
        stat.linkname = target
            .to_str()
            .ok_or_else(|| Error::NonUtf8Path(abs.to_path_buf()))?
            .to_string();
    } else if file_type.is_file() && meta.nlink() > 1 {
        match hardlinks.entry((meta.dev(), meta.ino())) {
            Entry::Occupied(first) => stat.linkname = first.get().clone(),
            Entry::Vacant(slot) => {
                slot.insert(rel.to_string());
            }
        }
    }
    Ok(Some(stat))
}
