//! The receiver's writer: the file system side of [`receive`](super::receive), on a blocking
//! thread. It makes what the STAT and DATA packets describe under the destination, never
//! through a symlink, and tells the receiving loop which files to request.

use std::{
    collections::{hash_map::RandomState, HashMap, HashSet},
    fs::Permissions,
    hash::{BuildHasher, Hasher},
    io::{self, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Component, Path, PathBuf},
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tokio::sync::mpsc;

use super::{mode, packet, Error, ReceiveOptions, ReceiveStats};
use brewkit_proto::fsutil::types::{packet::PacketType, Packet, Stat};

/// The writer: makes what the STAT and DATA packets describe, sends REQs and then FIN to the
/// loop, and returns once the loop closes its channel (the transfer is over) or `stopped` is set.
pub(crate) fn write(
    dest: PathBuf,
    options: ReceiveOptions,
    mut packets: mpsc::Receiver<Packet>,
    to_loop: mpsc::UnboundedSender<Packet>,
    stopped: &AtomicBool,
) -> Result<ReceiveStats, Error> {
    let mut r = Receiver {
        dest: PathBuf::new(),
        options,
        next_id: 0,
        pending: HashMap::new(),
        dirs_ok: HashSet::new(),
        dir_meta: Vec::new(),
        created: Vec::new(),
        regular: HashSet::new(),
        hardlinks: Vec::new(),
        stats: ReceiveStats::default(),
    };
    let result = r
        .make_dest(&dest)
        .and_then(|()| r.receive(&mut packets, &to_loop, stopped));
    if result.is_err() {
        // What this transfer created and left empty goes; what was written into place stays.
        r.pending.clear();
        for dir in r.created.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    result.map(|()| r.stats)
}

impl Receiver {
    /// Runs the transfer, packet by packet, until the loop closes the channel.
    fn receive(
        &mut self,
        packets: &mut mpsc::Receiver<Packet>,
        to_loop: &mpsc::UnboundedSender<Packet>,
        stopped: &AtomicBool,
    ) -> Result<(), Error> {
        let send = |p: Packet| to_loop.send(p).map_err(|_| Error::Closed);
        let mut listing_done = false;
        let mut fin_sent = false;
        while let Some(p) = packets.blocking_recv() {
            if stopped.load(Ordering::Relaxed) {
                return Err(Error::Closed);
            }
            if p.r#type == PacketType::PacketData as i32 {
                self.data(p.id, p.data)?;
            } else {
                match p.stat {
                    Some(stat) if !listing_done => {
                        if let Some(id) = self.stat(stat)? {
                            send(packet(PacketType::PacketReq, id, Vec::new()))?;
                        }
                    }
                    Some(stat) => {
                        return Err(Error::Protocol(format!(
                            "stat for {:?} after the end of the listing",
                            stat.path
                        )))
                    }
                    None => listing_done = true,
                }
            }
            if listing_done && !fin_sent && self.pending.is_empty() {
                self.finish()?;
                send(packet(PacketType::PacketFin, 0, Vec::new()))?;
                fin_sent = true;
            }
        }
        // The loop closes the channel when the transfer is over, or failed on its side.
        if stopped.load(Ordering::Relaxed) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Makes `dest` (absolute, or relative to the working directory) a directory, creating what
    /// is missing, without following a symlink on the way: the path must be its own real path.
    fn make_dest(&mut self, dest: &Path) -> Result<(), Error> {
        let dest = if dest.is_absolute() {
            dest.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(Error::io("resolve", dest))?
                .join(dest)
        };
        let mut path = PathBuf::new();
        for component in dest.components() {
            match component {
                Component::RootDir => path.push("/"),
                Component::CurDir => {}
                Component::Normal(name) => {
                    path.push(name);
                    match ensure_dir(&path)? {
                        Dir::Created => self.created.push(path.clone()),
                        Dir::Existing => {}
                        Dir::Symlink => {
                            return Err(Error::SymlinkInDestination {
                                path: path.clone(),
                                dest: dest.clone(),
                            })
                        }
                        Dir::Other => return Err(conflict(&path, "not a directory")),
                    }
                }
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(Error::Conflict {
                        path: dest.clone(),
                        reason: "the destination is not a clean path",
                    })
                }
            }
        }
        self.dest = dest;
        Ok(())
    }
}

/// A requested file.
struct Pending {
    /// The directory it goes into.
    dir: PathBuf,
    target: PathBuf,
    mode: u32,
    mod_time: i64,
    /// Created at the first DATA packet.
    temp: Option<TempFile>,
    written: u64,
}

struct Receiver {
    dest: PathBuf,
    options: ReceiveOptions,
    /// The id of the next STAT.
    next_id: u32,
    /// Requested files by id.
    pending: HashMap<u32, Pending>,
    /// Relative paths known to be real directories (not symlinks) in `dest`.
    dirs_ok: HashSet<String>,
    /// Directories this transfer created, to get their modes and times at the end. Directories
    /// that were already there keep theirs.
    dir_meta: Vec<(PathBuf, u32, i64)>,
    /// Every directory this transfer created, in order, removed (when empty) if it fails.
    created: Vec<PathBuf>,
    /// Regular files received, which hard links may name.
    regular: HashSet<String>,
    /// Hard links to make at the end: (path, existing path).
    hardlinks: Vec<(String, String)>,
    stats: ReceiveStats,
}

impl Receiver {
    /// Makes the entry a STAT describes; returns the id to request when it is a file to send.
    fn stat(&mut self, stat: Stat) -> Result<Option<u32>, Error> {
        let id = self.next_id;
        self.next_id = self
            .next_id
            .checked_add(1)
            .ok_or_else(|| Error::Protocol("too many entries".to_string()))?;
        let rel = stat.path;
        check_path(&rel)?;
        let dir = self.parent_dir(&rel)?;
        let target = self.dest.join(&rel);

        if mode::is_dir(stat.mode) {
            match ensure_dir(&target)? {
                Dir::Created => {
                    self.created.push(target.clone());
                    self.dir_meta.push((target, stat.mode, stat.mod_time));
                }
                Dir::Existing => {}
                Dir::Symlink => {
                    return Err(unsafe_path(
                        &rel,
                        "a symlink is in the way of this directory",
                    ))
                }
                Dir::Other => {
                    return Err(conflict(&target, "a file is in the way of this directory"))
                }
            }
            self.regular.remove(&rel);
            self.dirs_ok.insert(rel);
            self.stats.dirs += 1;
            return Ok(None);
        }

        if !mode::is_regular(stat.mode) && !mode::is_symlink(stat.mode) {
            self.stats.skipped += 1;
            return Ok(None);
        }
        self.check_replaceable(&target)?;

        if mode::is_symlink(stat.mode) {
            if stat.linkname.is_empty() {
                return Err(Error::Protocol(format!("symlink {rel:?} without a target")));
            }
            // Created under a temporary name, then renamed.
            let temp = with_temp_name(&dir, |temp| {
                std::os::unix::fs::symlink(&stat.linkname, temp)
            })?;
            std::fs::rename(&temp, &target).map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                Error::io("rename", &target)(e)
            })?;
            self.regular.remove(&rel);
            self.stats.symlinks += 1;
            return Ok(None);
        }

        if !stat.linkname.is_empty() {
            // A hard link to a file sent earlier.
            check_path(&stat.linkname)?;
            if !self.regular.contains(&stat.linkname) {
                return Err(Error::Protocol(format!(
                    "hard link {rel:?} to {:?}, which is not a file received before",
                    stat.linkname
                )));
            }
            self.regular.remove(&rel);
            self.hardlinks.push((rel, stat.linkname));
            return Ok(None);
        }

        self.regular.insert(rel);
        self.pending.insert(
            id,
            Pending {
                dir,
                target,
                mode: stat.mode,
                mod_time: stat.mod_time,
                temp: None,
                written: 0,
            },
        );
        Ok(Some(id))
    }

    fn data(&mut self, id: u32, data: Vec<u8>) -> Result<(), Error> {
        let Some(file) = self.pending.get_mut(&id) else {
            return Err(Error::Protocol(format!(
                "data for file id {id}, which is not being received"
            )));
        };
        if file.temp.is_none() {
            file.temp = Some(TempFile::create(&file.dir)?);
        }
        if !data.is_empty() {
            if let Some(temp) = &mut file.temp {
                temp.write(&data)?;
            }
            file.written += data.len() as u64;
            return Ok(());
        }
        // The empty DATA: the file is complete.
        let Some(mut file) = self.pending.remove(&id) else {
            return Ok(());
        };
        let mod_time = self
            .options
            .preserve_mod_time
            .then(|| system_time(file.mod_time))
            .flatten();
        if let Some(temp) = file.temp.take() {
            // The target may have become a directory since it was requested.
            self.check_replaceable(&file.target)?;
            temp.commit(mode::to_unix(file.mode) & 0o777, mod_time, &file.target)?;
        }
        self.stats.files += 1;
        self.stats.bytes += file.written;
        Ok(())
    }

    /// Makes the hard links, then gives directories their modes and times.
    fn finish(&mut self) -> Result<(), Error> {
        for (rel, existing) in std::mem::take(&mut self.hardlinks) {
            if !self.regular.contains(&existing) {
                return Err(Error::Protocol(format!(
                    "hard link {rel:?} to {existing:?}, which is no longer a file"
                )));
            }
            let dir = self.parent_dir(&rel)?;
            let target = self.dest.join(&rel);
            self.check_replaceable(&target)?;
            let source = self.dest.join(&existing);
            let temp = with_temp_name(&dir, |temp| std::fs::hard_link(&source, temp))?;
            std::fs::rename(&temp, &target).map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                Error::io("rename", &target)(e)
            })?;
            self.regular.insert(rel);
            self.stats.hardlinks += 1;
        }
        // Deepest first, so that a read-only directory is closed after its contents.
        for (path, dir_mode, mod_time) in self.dir_meta.iter().rev() {
            if self.options.preserve_mod_time {
                if let Some(time) = system_time(*mod_time) {
                    // Best effort, as for any directory time: not worth failing a transfer.
                    if let Ok(dir) = std::fs::File::open(path) {
                        let _ = dir.set_modified(time);
                    }
                }
            }
            let perm = mode::to_unix(*dir_mode) & 0o777;
            std::fs::set_permissions(path, Permissions::from_mode(perm))
                .map_err(Error::io("set permissions of", path))?;
        }
        Ok(())
    }

    /// Makes sure the directories leading to `rel` are real directories in `dest`, creating
    /// missing ones; returns the parent's path. A symlink on the way is refused.
    fn parent_dir(&mut self, rel: &str) -> Result<PathBuf, Error> {
        let mut dir = self.dest.clone();
        let Some((parent, _)) = rel.rsplit_once('/') else {
            return Ok(dir);
        };
        for (end, _) in parent.match_indices('/').chain([(parent.len(), "")]) {
            let prefix = &parent[..end];
            let name = prefix.rsplit('/').next().unwrap_or(prefix);
            dir.push(name);
            if self.dirs_ok.contains(prefix) {
                continue;
            }
            match ensure_dir(&dir)? {
                Dir::Created => self.created.push(dir.clone()),
                Dir::Existing => {}
                Dir::Symlink => {
                    return Err(unsafe_path(
                        rel,
                        &format!("{prefix:?} is a symlink, which is not followed"),
                    ));
                }
                Dir::Other => return Err(conflict(&dir, "not a directory")),
            }
            self.dirs_ok.insert(prefix.to_string());
        }
        Ok(dir)
    }

    /// Whether a non-directory may be put at `target`: never over a directory, over anything
    /// else only with [`ReceiveOptions::overwrite`].
    fn check_replaceable(&self, target: &Path) -> Result<(), Error> {
        match std::fs::symlink_metadata(target) {
            Ok(meta) if meta.is_dir() => Err(conflict(target, "a directory is in the way")),
            Ok(_) if !self.options.overwrite => Err(conflict(target, "it exists already")),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("stat", target)(e)),
        }
    }
}

/// What [`ensure_dir`] found at a path.
enum Dir {
    /// Nothing was there; it is a new directory now.
    Created,
    /// A directory (not a symlink to one).
    Existing,
    /// A symlink, which is never followed.
    Symlink,
    /// Something else: a file, a device...
    Other,
}

/// Makes sure `path` is a directory, creating it if nothing is there. Another writer creating
/// it at the same moment (EEXIST) is fine.
fn ensure_dir(path: &Path) -> Result<Dir, Error> {
    let found = |meta: std::fs::Metadata| {
        if meta.file_type().is_symlink() {
            Dir::Symlink
        } else if meta.is_dir() {
            Dir::Existing
        } else {
            Dir::Other
        }
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(found(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match std::fs::create_dir(path) {
            Ok(()) => Ok(Dir::Created),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => std::fs::symlink_metadata(path)
                .map(found)
                .map_err(Error::io("stat", path)),
            Err(e) => Err(Error::io("create directory", path)(e)),
        },
        Err(e) => Err(Error::io("stat", path)(e)),
    }
}

/// Checks that a received path is a clean relative path that stays inside the destination.
fn check_path(path: &str) -> Result<(), Error> {
    if path.is_empty() {
        return Err(unsafe_path(path, "empty path"));
    }
    if path.starts_with('/') {
        return Err(unsafe_path(path, "absolute path"));
    }
    if path.contains('\0') {
        return Err(unsafe_path(path, "NUL in path"));
    }
    for part in path.split('/') {
        match part {
            ".." => return Err(unsafe_path(path, "\"..\" leaves the destination")),
            "" | "." => return Err(unsafe_path(path, "unclean path")),
            _ => {}
        }
    }
    Ok(())
}

fn unsafe_path(path: &str, reason: &str) -> Error {
    Error::UnsafePath {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

fn conflict(path: &Path, reason: &'static str) -> Error {
    Error::Conflict {
        path: path.to_path_buf(),
        reason,
    }
}

/// Unix nanoseconds as a time, if representable.
fn system_time(nanos: i64) -> Option<SystemTime> {
    if nanos >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_nanos(nanos.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_nanos(nanos.unsigned_abs()))
    }
}

/// A fresh name for a temporary entry in `dir`.
fn temp_name(dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    dir.join(format!(".brewkit-tmp-{:016x}", hasher.finish()))
}

/// Runs `make` with fresh temporary names in `dir` until one is free; returns the name used.
fn with_temp_name(
    dir: &Path,
    mut make: impl FnMut(&Path) -> io::Result<()>,
) -> Result<PathBuf, Error> {
    let mut attempts = 0;
    loop {
        let temp = temp_name(dir);
        match make(&temp) {
            Ok(()) => return Ok(temp),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 16 => attempts += 1,
            Err(e) => return Err(Error::io("create", &temp)(e)),
        }
    }
}

/// A file being received under a temporary name, removed when dropped unless committed.
struct TempFile {
    path: PathBuf,
    file: Option<std::fs::File>,
    committed: bool,
}

impl TempFile {
    /// Creates a new, private temporary file in `dir`.
    fn create(dir: &Path) -> Result<Self, Error> {
        let mut file = None;
        let path = with_temp_name(dir, |temp| {
            file = Some(
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(temp)?,
            );
            Ok(())
        })?;
        Ok(Self {
            path,
            file,
            committed: false,
        })
    }

    fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        let Some(file) = &mut self.file else {
            return Err(Error::Protocol("write after commit".to_string()));
        };
        file.write_all(data).map_err(Error::io("write", &self.path))
    }

    /// Gives the file its permissions and time and renames it to `target`.
    fn commit(
        mut self,
        perm: u32,
        mod_time: Option<SystemTime>,
        target: &Path,
    ) -> Result<(), Error> {
        let Some(file) = self.file.take() else {
            return Err(Error::Protocol("commit twice".to_string()));
        };
        file.set_permissions(Permissions::from_mode(perm))
            .map_err(Error::io("set permissions of", &self.path))?;
        if let Some(time) = mod_time {
            file.set_modified(time)
                .map_err(Error::io("set time of", &self.path))?;
        }
        drop(file);
        std::fs::rename(&self.path, target).map_err(Error::io("rename", target))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
