//! DiffCopy tests: our sender into our receiver over in-memory channels, and each side against
//! a scripted peer.

use std::{
    collections::BTreeMap,
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::*;
use brewkit_proto::fsutil::types::{packet::PacketType, Packet, Stat};

type Tx = mpsc::Sender<Result<Packet, Status>>;
type Rx = mpsc::Receiver<Result<Packet, Status>>;

fn channel() -> (Tx, Rx) {
    mpsc::channel(16)
}

/// Deterministic pseudo-random bytes.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

fn chmod(root: &Path, rel: &str, mode: u32) {
    fs::set_permissions(root.join(rel), fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs our sender into our receiver.
async fn transfer(
    src: &Path,
    dest: &Path,
    filter: &Filter,
) -> (Result<SendStats, Error>, Result<ReceiveStats, Error>) {
    let (to_receiver, from_sender) = channel();
    let (to_sender, from_receiver) = channel();
    let options = ReceiveOptions::default();
    tokio::join!(
        send(src, filter, ReceiverStream::new(from_receiver), to_receiver),
        receive(dest, ReceiverStream::new(from_sender), to_sender, &options),
    )
}

#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir(u32),
    File(u32, Vec<u8>),
    Symlink(PathBuf),
}

/// Everything under `root`, by relative path.
fn snapshot(root: &Path) -> BTreeMap<String, Entry> {
    fn visit(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let meta = fs::symlink_metadata(&path).unwrap();
            let perm = meta.mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.insert(rel, Entry::Symlink(fs::read_link(&path).unwrap()));
            } else if meta.is_dir() {
                out.insert(rel, Entry::Dir(perm));
                visit(root, &path, out);
            } else {
                out.insert(rel, Entry::File(perm, fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(root, root, &mut out);
    out
}

/// Temporary files under `root`. Tolerates directories vanishing while it looks: a failed
/// transfer's writer removes the empty directories it made.
fn temp_files(root: &Path) -> Vec<String> {
    fn visit(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(".brewkit-tmp-") {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                visit(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    visit(root, root, &mut out);
    out
}

fn stat_packet(path: &str, mode: u32, linkname: &str) -> Packet {
    let mut p = packet(PacketType::PacketStat, 0, Vec::new());
    p.stat = Some(Stat {
        path: path.to_string(),
        mode,
        linkname: linkname.to_string(),
        ..Stat::default()
    });
    p
}

fn end_of_listing() -> Packet {
    packet(PacketType::PacketStat, 0, Vec::new())
}

fn kind(p: &Packet) -> PacketType {
    PacketType::try_from(p.r#type).unwrap()
}

async fn next(rx: &mut Rx) -> Packet {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no packet in time")
        .expect("channel closed")
        .expect("status instead of a packet")
}

/// Starts our receiver against a scripted sender.
fn scripted_receiver(
    dest: &Path,
) -> (tokio::task::JoinHandle<Result<ReceiveStats, Error>>, Tx, Rx) {
    let (to_receiver, from_sender) = channel();
    let (to_sender, from_receiver) = channel();
    let dest = dest.to_path_buf();
    let task = tokio::spawn(async move {
        receive(
            &dest,
            ReceiverStream::new(from_sender),
            to_sender,
            &ReceiveOptions::default(),
        )
        .await
    });
    (task, to_receiver, from_receiver)
}

/// Starts our sender against a scripted receiver.
fn scripted_sender(
    root: &Path,
    filter: Filter,
) -> (tokio::task::JoinHandle<Result<SendStats, Error>>, Tx, Rx) {
    let (to_receiver, from_sender) = channel();
    let (to_sender, from_receiver) = channel();
    let root = root.to_path_buf();
    let task = tokio::spawn(async move {
        send(
            &root,
            &filter,
            ReceiverStream::new(from_receiver),
            to_receiver,
        )
        .await
    });
    (task, to_sender, from_sender)
}

/// Reads STAT packets up to the end of the listing.
async fn read_listing(rx: &mut Rx) -> Vec<Stat> {
    let mut stats = Vec::new();
    loop {
        let p = next(rx).await;
        assert_eq!(kind(&p), PacketType::PacketStat, "{p:?}");
        match p.stat {
            Some(stat) => stats.push(stat),
            None => return stats,
        }
    }
}

#[tokio::test]
async fn round_trip_keeps_tree_modes_links_and_content() {
    let src = tempfile::tempdir().unwrap();
    let root = src.path();
    write(root, "a.txt", b"hello\n");
    write(root, "dir/sub/nested.txt", b"nested");
    write(root, "dir/b.bin", &bytes(70_000, 7));
    write(root, "dir/private", b"secret");
    chmod(root, "dir/private", 0o600);
    write(root, "run.sh", b"#!/bin/sh\necho hi\n");
    chmod(root, "run.sh", 0o755);
    write(root, "zero", b"");
    fs::create_dir(root.join("empty")).unwrap();
    fs::create_dir(root.join("ro")).unwrap();
    write(root, "ro/file", b"in a read-only dir");
    chmod(root, "ro", 0o555);
    std::os::unix::fs::symlink("dir/sub/nested.txt", root.join("link")).unwrap();
    std::os::unix::fs::symlink("../a.txt", root.join("dir/up")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/outside", root.join("dangling")).unwrap();
    let big = bytes(10 * 1024 * 1024, 42);
    write(root, "big.bin", &big);
    write(root, "hard1", b"linked");
    fs::hard_link(root.join("hard1"), root.join("hard2")).unwrap();
    let mtime = fs::symlink_metadata(root.join("a.txt"))
        .unwrap()
        .mtime_nsec();

    let dst = tempfile::tempdir().unwrap();
    let dest = dst.path().join("out");
    fs::create_dir(&dest).unwrap();
    write(&dest, "keep.txt", b"not deleted");
    let before = snapshot(&dest);
    let (sent, received) = transfer(root, &dest, &Filter::all()).await;
    let sent = sent.unwrap();
    let received = received.unwrap();

    let mut expected = snapshot(root);
    expected.extend(before);
    let got = snapshot(&dest);
    // Let the temporary directories be removed even when not root.
    chmod(root, "ro", 0o755);
    chmod(&dest, "ro", 0o755);
    assert_eq!(got, expected);
    assert_eq!(got["ro"], Entry::Dir(0o555));
    assert_eq!(
        got["run.sh"],
        Entry::File(0o755, b"#!/bin/sh\necho hi\n".to_vec())
    );
    assert!(temp_files(&dest).is_empty());

    // Hard links stay hard links.
    let h1 = fs::metadata(dest.join("hard1")).unwrap();
    let h2 = fs::metadata(dest.join("hard2")).unwrap();
    assert_eq!((h1.dev(), h1.ino()), (h2.dev(), h2.ino()));
    // Times are kept.
    let a = fs::symlink_metadata(dest.join("a.txt")).unwrap();
    assert_eq!(a.mtime_nsec(), mtime);
    assert_eq!(
        a.mtime(),
        fs::symlink_metadata(root.join("a.txt")).unwrap().mtime()
    );

    let regular = 9; // all regular files but hard2
    let content = 6 + 6 + 70_000 + 6 + 18 + 18 + big.len() as u64 + 6;
    assert_eq!(sent.files_read, regular);
    assert_eq!(sent.bytes_read, content);
    assert_eq!(sent.entries_sent, expected.len() - 1);
    assert_eq!(
        received,
        ReceiveStats {
            files: regular,
            bytes: content,
            dirs: 4,
            symlinks: 3,
            hardlinks: 1,
            skipped: 0,
        }
    );
}

#[tokio::test]
async fn listing_order_ids_modes_and_chunks() {
    let src = tempfile::tempdir().unwrap();
    let root = src.path();
    write(root, "a/b", b"ab");
    write(root, "a-b", b"dash");
    write(root, "a.txt", &bytes(CHUNK_SIZE * 2 + 5, 1));
    write(root, "B", b"upper");
    chmod(root, "B", 0o750);
    std::os::unix::fs::symlink("a.txt", root.join("c")).unwrap();
    chmod(root, "a", 0o755);

    let (task, tx, mut rx) = scripted_sender(root, Filter::all());
    let listing = read_listing(&mut rx).await;
    let paths: Vec<&str> = listing.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, ["B", "a", "a/b", "a-b", "a.txt", "c"]);
    let by_path = |p: &str| listing.iter().find(|s| s.path == p).unwrap();
    assert_eq!(by_path("B").mode, 0o750);
    assert_eq!(by_path("a").mode, mode::MODE_DIR | 0o755);
    assert_eq!(by_path("a").size, 0);
    assert_eq!(by_path("c").mode, mode::MODE_SYMLINK | 0o777);
    assert_eq!(by_path("c").linkname, "a.txt");
    let meta = fs::metadata(root.join("a.txt")).unwrap();
    assert_eq!(
        by_path("a.txt").mod_time,
        meta.mtime() * 1_000_000_000 + meta.mtime_nsec()
    );
    assert_eq!(by_path("a.txt").uid, meta.uid());
    assert_eq!(by_path("a.txt").size, meta.len() as i64);

    // Ids are indexes among the STATs: a.txt is the fifth.
    tx.send(Ok(packet(PacketType::PacketReq, 4, Vec::new())))
        .await
        .unwrap();
    let mut sizes = Vec::new();
    let mut data = Vec::new();
    loop {
        let p = next(&mut rx).await;
        assert_eq!((kind(&p), p.id), (PacketType::PacketData, 4));
        if p.data.is_empty() {
            break;
        }
        sizes.push(p.data.len());
        data.extend(p.data);
    }
    assert_eq!(sizes, [CHUNK_SIZE, CHUNK_SIZE, 5]);
    assert_eq!(data, fs::read(root.join("a.txt")).unwrap());

    tx.send(Ok(packet(PacketType::PacketFin, 0, Vec::new())))
        .await
        .unwrap();
    assert_eq!(kind(&next(&mut rx).await), PacketType::PacketFin);
    let stats = task.await.unwrap().unwrap();
    assert_eq!(stats.files_read, 1);
    assert_eq!(stats.bytes_read, data.len() as u64);
}

/// A context with a large directory beside what is asked for.
fn context_with_large_sibling() -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    let root = src.path();
    write(root, "Dockerfile", b"FROM scratch\n");
    write(root, "src/main.rs", b"fn main() {}\n");
    write(root, "src/lib.rs", b"");
    write(root, "src/notes.txt", b"not rust");
    write(root, "docs/readme.md", b"# docs");
    write(root, "docs/keep.md", b"# keep");
    for d in 0..20 {
        for f in 0..10 {
            write(root, &format!("huge/d{d}/sub/f{f}"), b"x");
        }
    }
    src
}

#[tokio::test]
async fn include_patterns_send_and_read_only_what_is_asked() {
    let src = context_with_large_sibling();
    let dst = tempfile::tempdir().unwrap();
    let filter = Filter {
        include_patterns: vec!["src/*.rs".into(), "Dockerfile".into()],
        ..Filter::default()
    };
    let (sent, received) = transfer(src.path(), dst.path(), &filter).await;
    let sent = sent.unwrap();
    received.unwrap();

    let got: Vec<String> = snapshot(dst.path()).into_keys().collect();
    assert_eq!(got, ["Dockerfile", "src", "src/lib.rs", "src/main.rs"]);
    // Only the root and src were listed: not huge, not docs.
    assert_eq!(sent.dirs_listed, ["", "src"]);
    assert_eq!(sent.dirs_read, 2);
    // lstat only for what was sent (src itself included, once).
    assert_eq!(sent.entries_stat, 4);
    assert_eq!(sent.entries_sent, 4);
    assert_eq!(sent.files_read, 3);
    assert_eq!(sent.bytes_read, 13 + 13);
}

#[tokio::test]
async fn include_directory_sends_its_contents_and_parents() {
    let src = context_with_large_sibling();
    let dst = tempfile::tempdir().unwrap();
    let filter = Filter {
        include_patterns: vec!["huge/d3/sub".into()],
        ..Filter::default()
    };
    let (sent, received) = transfer(src.path(), dst.path(), &filter).await;
    let sent = sent.unwrap();
    received.unwrap();
    let got: Vec<String> = snapshot(dst.path()).into_keys().collect();
    let mut expected = vec!["huge".to_string(), "huge/d3".into(), "huge/d3/sub".into()];
    expected.extend((0..10).map(|f| format!("huge/d3/sub/f{f}")));
    assert_eq!(got, expected);
    assert_eq!(sent.dirs_listed, ["", "huge", "huge/d3", "huge/d3/sub"]);
}

#[tokio::test]
async fn exclude_patterns_with_exceptions() {
    let src = context_with_large_sibling();
    let dst = tempfile::tempdir().unwrap();
    let filter = Filter {
        exclude_patterns: vec![
            "huge".into(),
            "docs/*.md".into(),
            "!docs/keep.md".into(),
            "**/*.txt".into(),
        ],
        ..Filter::default()
    };
    let (sent, received) = transfer(src.path(), dst.path(), &filter).await;
    let sent = sent.unwrap();
    received.unwrap();
    let got: Vec<String> = snapshot(dst.path()).into_keys().collect();
    assert_eq!(
        got,
        [
            "Dockerfile",
            "docs",
            "docs/keep.md",
            "src",
            "src/lib.rs",
            "src/main.rs"
        ]
    );
    assert_eq!(sent.dirs_listed, ["", "docs", "src"]);

    // An exception below an excluded directory: only the way to it is walked.
    let dst = tempfile::tempdir().unwrap();
    let filter = Filter {
        exclude_patterns: vec!["huge".into(), "!huge/d3/sub/f1".into()],
        ..Filter::default()
    };
    let (sent, received) = transfer(src.path(), dst.path(), &filter).await;
    let sent = sent.unwrap();
    received.unwrap();
    let got: Vec<String> = snapshot(dst.path())
        .into_keys()
        .filter(|p| p.starts_with("huge"))
        .collect();
    assert_eq!(got, ["huge", "huge/d3", "huge/d3/sub", "huge/d3/sub/f1"]);
    assert_eq!(
        sent.dirs_listed,
        ["", "docs", "huge", "huge/d3", "huge/d3/sub", "src"]
    );
}

#[tokio::test]
async fn follow_paths_add_symlink_targets() {
    let src = tempfile::tempdir().unwrap();
    let root = src.path();
    write(root, "build/Dockerfile.real", b"FROM scratch\n");
    write(root, "build/other", b"not asked");
    write(root, "unrelated", b"not asked");
    std::os::unix::fs::symlink("build/Dockerfile.real", root.join("Dockerfile")).unwrap();
    let dst = tempfile::tempdir().unwrap();
    let filter = Filter {
        follow_paths: vec!["Dockerfile".into()],
        ..Filter::default()
    };
    let (sent, received) = transfer(root, dst.path(), &filter).await;
    sent.unwrap();
    received.unwrap();
    let got = snapshot(dst.path());
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ["Dockerfile", "build", "build/Dockerfile.real"]
    );
    assert_eq!(
        got["Dockerfile"],
        Entry::Symlink(PathBuf::from("build/Dockerfile.real"))
    );
}

#[tokio::test]
async fn symlinks_are_never_followed_by_the_sender() {
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret", b"outside the context");
    let src = tempfile::tempdir().unwrap();
    let root = src.path();
    std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
    write(root, "file", b"in");
    let dst = tempfile::tempdir().unwrap();
    let filter = Filter {
        include_patterns: vec!["out/secret".into(), "out".into(), "file".into()],
        ..Filter::default()
    };
    let (sent, received) = transfer(root, dst.path(), &filter).await;
    let sent = sent.unwrap();
    received.unwrap();
    assert_eq!(sent.dirs_listed, [""]);
    let got = snapshot(dst.path());
    assert_eq!(got.len(), 2);
    assert_eq!(got["out"], Entry::Symlink(outside.path().to_path_buf()));
}

#[tokio::test]
async fn receiver_refuses_paths_outside_dest() {
    for bad in ["../escape", "/abs", "a/../../x", "a//b", "./a", "", "a/.."] {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        let (task, tx, mut rx) = scripted_receiver(&dest);
        tx.send(Ok(stat_packet("a", mode::MODE_DIR | 0o755, "")))
            .await
            .unwrap();
        tx.send(Ok(stat_packet(bad, 0o644, ""))).await.unwrap();
        let err = task.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, Error::UnsafePath { path, .. } if path == bad),
            "{bad}: {err}"
        );
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        // The sender is told, with the path.
        let p = next(&mut rx).await;
        assert_eq!(kind(&p), PacketType::PacketErr);
        assert!(String::from_utf8_lossy(&p.data).contains(&format!("{bad:?}")));
        // Nothing is left: dest and dest/a were made, then removed as the transfer failed.
        assert!(snapshot(dir.path()).is_empty(), "{bad}");
    }
}

#[tokio::test]
async fn receiver_refuses_writing_through_symlinks() {
    let outside = tempfile::tempdir().unwrap();
    for target in [outside.path().to_str().unwrap(), "..", "../.."] {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        let (task, tx, _rx) = scripted_receiver(&dest);
        tx.send(Ok(stat_packet("link", mode::MODE_SYMLINK | 0o777, target)))
            .await
            .unwrap();
        tx.send(Ok(stat_packet("link/x", 0o644, ""))).await.unwrap();
        let err = task.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, Error::UnsafePath { path, .. } if path == "link/x"),
            "{target}: {err}"
        );
        // The link itself was made (links are kept as they are); nothing through it.
        assert_eq!(
            fs::read_link(dest.join("link")).unwrap(),
            PathBuf::from(target)
        );
        assert!(snapshot(outside.path()).is_empty());
        assert_eq!(snapshot(dir.path()).len(), 2);
    }

    // A symlink already in dest; a directory, then a file, below it.
    for second in ["pre/d", "pre/d/x"] {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        fs::create_dir(&dest).unwrap();
        std::os::unix::fs::symlink(outside.path(), dest.join("pre")).unwrap();
        let (task, tx, _rx) = scripted_receiver(&dest);
        let m = if second == "pre/d" {
            mode::MODE_DIR | 0o755
        } else {
            0o644
        };
        tx.send(Ok(stat_packet(second, m, ""))).await.unwrap();
        let err = task.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, Error::UnsafePath { path, .. } if path == second),
            "{err}"
        );
        assert!(snapshot(outside.path()).is_empty());
    }

    // A symlink replacing a directory of the transfer is refused (it would be deleted).
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let (task, tx, _rx) = scripted_receiver(&dest);
    tx.send(Ok(stat_packet("d", mode::MODE_DIR | 0o755, "")))
        .await
        .unwrap();
    tx.send(Ok(stat_packet("d", mode::MODE_SYMLINK | 0o777, "/tmp")))
        .await
        .unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    // The directory was never replaced (then, empty, removed with the failed transfer).
    assert!(fs::symlink_metadata(dest.join("d")).map_or(true, |m| m.is_dir()));

    // A directory where a symlink is: refused, the symlink is not followed.
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let (task, tx, _rx) = scripted_receiver(&dest);
    tx.send(Ok(stat_packet("l", mode::MODE_SYMLINK | 0o777, "/tmp")))
        .await
        .unwrap();
    tx.send(Ok(stat_packet("l", mode::MODE_DIR | 0o755, "")))
        .await
        .unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::UnsafePath { path, .. } if path == "l"),
        "{err}"
    );
}

#[tokio::test]
async fn receiver_refuses_bad_hard_links() {
    for (linkname, unsafe_path) in [("../x", true), ("/etc/passwd", true), ("never-sent", false)] {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        let (task, tx, _rx) = scripted_receiver(&dest);
        tx.send(Ok(stat_packet("h", 0o644, linkname)))
            .await
            .unwrap();
        let err = task.await.unwrap().unwrap_err();
        if unsafe_path {
            assert!(
                matches!(&err, Error::UnsafePath { path, .. } if path == linkname),
                "{err}"
            );
        } else {
            assert!(matches!(err, Error::Protocol(_)), "{err}");
        }
        assert!(snapshot(dir.path()).is_empty());
    }
}

/// Feeds the receiver the start of a file and waits until its temporary file exists.
async fn start_file(tx: &Tx, rx: &mut Rx, dest: &Path) {
    tx.send(Ok(stat_packet("d", mode::MODE_DIR | 0o755, "")))
        .await
        .unwrap();
    tx.send(Ok(stat_packet("d/big", 0o644, ""))).await.unwrap();
    tx.send(Ok(end_of_listing())).await.unwrap();
    let req = next(rx).await;
    assert_eq!((kind(&req), req.id), (PacketType::PacketReq, 1));
    for _ in 0..3 {
        tx.send(Ok(packet(PacketType::PacketData, 1, bytes(CHUNK_SIZE, 3))))
            .await
            .unwrap();
    }
    for _ in 0..500 {
        if !temp_files(dest).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no temporary file appeared");
}

#[tokio::test]
async fn receiver_dropped_mid_file_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let (task, tx, mut rx) = scripted_receiver(&dest);
    start_file(&tx, &mut rx, &dest).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    // The writer thread notices at its next packet or when its queue closes.
    for _ in 0..500 {
        if temp_files(&dest).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(temp_files(&dest).is_empty());
    assert!(!dest.join("d/big").exists());
}

#[tokio::test]
async fn receiver_stream_failing_mid_file_leaves_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let (task, tx, mut rx) = scripted_receiver(&dest);
    start_file(&tx, &mut rx, &dest).await;
    tx.send(Err(Status::cancelled("client went away")))
        .await
        .unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err}");
    assert!(temp_files(&dest).is_empty());

    // The stream just ending mid-file is an error too.
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let (task, tx, mut rx) = scripted_receiver(&dest);
    start_file(&tx, &mut rx, &dest).await;
    drop(tx);
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    assert!(temp_files(&dest).is_empty());

    // And an ERR from the sender.
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let (task, tx, mut rx) = scripted_receiver(&dest);
    start_file(&tx, &mut rx, &dest).await;
    tx.send(Ok(packet(
        PacketType::PacketErr,
        0,
        b"disk on fire".to_vec(),
    )))
    .await
    .unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Remote(m) if m == "disk on fire"),
        "{err}"
    );
    assert!(temp_files(&dest).is_empty());
}

#[tokio::test]
async fn receiver_requests_by_id_and_finishes_with_fin() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let (task, tx, mut rx) = scripted_receiver(&dest);
    for p in [
        stat_packet("a", mode::MODE_DIR | 0o700, ""),
        stat_packet("a/f", 0o640, ""),
        stat_packet("fifo", mode::MODE_NAMED_PIPE | 0o644, ""),
        stat_packet("g", 0o755, ""),
        end_of_listing(),
    ] {
        tx.send(Ok(p)).await.unwrap();
    }
    let mut ids = [next(&mut rx).await, next(&mut rx).await];
    ids.sort_by_key(|p| p.id);
    assert!(ids.iter().all(|p| kind(p) == PacketType::PacketReq));
    assert_eq!(ids.iter().map(|p| p.id).collect::<Vec<_>>(), [1, 3]);
    // Interleaved, as fsutil's parallel senders do.
    for (id, data) in [(3, &b"g1"[..]), (1, b"f1"), (3, b"g2"), (1, b""), (3, b"")] {
        tx.send(Ok(packet(PacketType::PacketData, id, data.to_vec())))
            .await
            .unwrap();
    }
    assert_eq!(kind(&next(&mut rx).await), PacketType::PacketFin);
    tx.send(Ok(packet(PacketType::PacketFin, 0, Vec::new())))
        .await
        .unwrap();
    let stats = task.await.unwrap().unwrap();
    assert_eq!(stats.files, 2);
    assert_eq!(stats.skipped, 1);
    assert_eq!(fs::read(dest.join("a/f")).unwrap(), b"f1");
    assert_eq!(fs::read(dest.join("g")).unwrap(), b"g1g2");
    let mode_of = |p: &str| fs::symlink_metadata(dest.join(p)).unwrap().mode() & 0o7777;
    assert_eq!(mode_of("a"), 0o700);
    assert_eq!(mode_of("a/f"), 0o640);
    assert_eq!(mode_of("g"), 0o755);
    assert!(!dest.join("fifo").exists());
}

#[tokio::test]
async fn sender_reports_a_file_it_cannot_read() {
    // Tests may run as root, where a mode of 000 does not stop reading: make the file
    // unreadable by replacing it between its STAT and the request for it.
    for replacement in ["dir", "symlink", "removed"] {
        let src = tempfile::tempdir().unwrap();
        let root = src.path();
        write(root, "victim", b"content");
        let (task, tx, mut rx) = scripted_sender(root, Filter::all());
        let listing = read_listing(&mut rx).await;
        assert_eq!(listing.len(), 1);
        let victim = root.join("victim");
        fs::remove_file(&victim).unwrap();
        match replacement {
            "dir" => fs::create_dir(&victim).unwrap(),
            "symlink" => std::os::unix::fs::symlink("/etc/hostname", &victim).unwrap(),
            _ => {}
        }
        tx.send(Ok(packet(PacketType::PacketReq, 0, Vec::new())))
            .await
            .unwrap();
        let err = task.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, Error::Io { path, .. } if path.ends_with("victim")),
            "{replacement}: {err}"
        );
        let p = next(&mut rx).await;
        assert_eq!(kind(&p), PacketType::PacketErr, "{replacement}");
        assert!(String::from_utf8_lossy(&p.data).contains("victim"));
    }
}

#[tokio::test]
async fn sender_reports_an_unreadable_file_when_not_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Root reads any file, whatever its mode: run this very test again as `nobody`.
        let name = "tests::sender_reports_an_unreadable_file_when_not_root";
        let output = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", name, "--test-threads=1"])
            .env("TMPDIR", std::env::temp_dir())
            .output()
            .expect("setpriv (util-linux) runs the test as an unprivileged user");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "as nobody: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let root = src.path();
    write(root, "locked", b"content");
    chmod(root, "locked", 0o000);
    assert!(
        fs::File::open(root.join("locked")).is_err(),
        "not root, so the mode applies"
    );
    let dst = tempfile::tempdir().unwrap();
    let (sent, received) = transfer(root, dst.path(), &Filter::all()).await;
    let err = sent.unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path.ends_with("locked")),
        "{err}"
    );
    let err = received.unwrap_err();
    assert!(
        matches!(&err, Error::Remote(m) if m.contains("locked")),
        "{err}"
    );
    assert!(temp_files(dst.path()).is_empty());
}

#[tokio::test]
async fn fifo_is_sent_as_a_pipe_and_never_read() {
    let src = tempfile::tempdir().unwrap();
    let root = src.path();
    write(root, "a", b"a");
    let path = std::ffi::CString::new(root.join("pipe").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0, "mkfifo");
    chmod(root, "pipe", 0o644);
    let (task, tx, mut rx) = scripted_sender(root, Filter::all());
    let listing = read_listing(&mut rx).await;
    assert_eq!(listing[1].path, "pipe");
    assert_eq!(listing[1].mode, mode::MODE_NAMED_PIPE | 0o644);
    // Asking for its content is refused: only regular files have content.
    tx.send(Ok(packet(PacketType::PacketReq, 1, Vec::new())))
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");

    // Our receiver skips it.
    let dst = tempfile::tempdir().unwrap();
    let (sent, received) = transfer(root, dst.path(), &Filter::all()).await;
    sent.unwrap();
    assert_eq!(received.unwrap().skipped, 1);
    assert_eq!(snapshot(dst.path()).len(), 1);
}

#[tokio::test]
async fn sender_stops_on_receiver_error_and_bad_requests() {
    let src = context_with_large_sibling();
    let (task, tx, mut rx) = scripted_sender(src.path(), Filter::all());
    let _ = next(&mut rx).await;
    tx.send(Ok(packet(PacketType::PacketErr, 0, b"no space".to_vec())))
        .await
        .unwrap();
    // The walk may still be filling the channel: keep draining.
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(&err, Error::Remote(m) if m == "no space"), "{err}");
    drop(tx);
    drain.await.unwrap();

    let (task, tx, mut rx) = scripted_sender(src.path(), Filter::all());
    let listing = read_listing(&mut rx).await;
    let dir_id = listing.iter().position(|s| s.path == "docs").unwrap() as u32;
    tx.send(Ok(packet(PacketType::PacketReq, dir_id, Vec::new())))
        .await
        .unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err}");
}

#[tokio::test]
async fn invalid_patterns_are_errors() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let filter = Filter {
        exclude_patterns: vec!["a[".into()],
        ..Filter::default()
    };
    let (sent, _received) = transfer(src.path(), dst.path(), &filter).await;
    assert!(matches!(sent, Err(Error::InvalidPattern { .. })));
}

#[tokio::test]
async fn existing_directories_keep_their_modes_and_new_ones_get_the_senders() {
    // The sender's tree: shared/ and private/ (0755 there) each holding a file, and a new
    // directory with mode 0750.
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "shared/out1", b"1");
    write(src.path(), "private/out2", b"2");
    write(src.path(), "new/out3", b"3");
    chmod(src.path(), "shared", 0o755);
    chmod(src.path(), "private", 0o755);
    chmod(src.path(), "new", 0o750);
    // On the host, shared/ is 1777 and private/ 0700; never touch the real /tmp's modes.
    let dst = tempfile::tempdir().unwrap();
    let dest = dst.path().join("dest");
    fs::create_dir_all(dest.join("shared")).unwrap();
    fs::create_dir_all(dest.join("private")).unwrap();
    chmod(&dest, "shared", 0o1777);
    chmod(&dest, "private", 0o700);
    chmod(&dest, ".", 0o711);
    let (sent, received) = transfer(src.path(), &dest, &Filter::default()).await;
    sent.unwrap();
    received.unwrap();
    let mode = |rel: &str| fs::metadata(dest.join(rel)).unwrap().mode() & 0o7777;
    assert_eq!(mode("shared"), 0o1777);
    assert_eq!(mode("private"), 0o700);
    assert_eq!(mode("."), 0o711, "the destination itself is not changed");
    assert_eq!(
        mode("new"),
        0o750,
        "a directory the transfer made gets the sender's mode"
    );
    assert_eq!(fs::read(dest.join("private/out2")).unwrap(), b"2");
}

#[tokio::test]
async fn a_symlink_on_the_way_to_the_destination_is_never_followed() {
    let victim = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "p", b"payload");
    // As a first export would leave it: out/d/evil -> victim.
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("out/d")).unwrap();
    std::os::unix::fs::symlink(victim.path(), dir.path().join("out/d/evil")).unwrap();
    for dest in ["out/d/evil", "out/d/evil/below"] {
        let (_, received) = transfer(src.path(), &dir.path().join(dest), &Filter::default()).await;
        let err = received.unwrap_err();
        assert!(
            matches!(&err, Error::SymlinkInDestination { path, .. } if path.ends_with("out/d/evil")),
            "{dest}: {err}"
        );
        assert!(err.to_string().contains("never followed"), "{err}");
        assert!(
            snapshot(victim.path()).is_empty(),
            "nothing written through the link"
        );
    }
}

#[tokio::test]
async fn transfers_into_one_directory_at_once_all_succeed() {
    // Four senders, each with its own file under a shared share/doc/, into one destination at
    // once: creating the same directories concurrently is not an error.
    for round in 0..10 {
        let dst = tempfile::tempdir().unwrap();
        let dest = dst.path().join("dist");
        let sources: Vec<tempfile::TempDir> = (0..4)
            .map(|i| {
                let src = tempfile::tempdir().unwrap();
                write(src.path(), &format!("share/doc/t{i}/README"), b"doc");
                write(src.path(), "share/doc/common", format!("{i}").as_bytes());
                src
            })
            .collect();
        let filter = Filter::default();
        let results = futures::future::join_all(
            sources
                .iter()
                .map(|src| transfer(src.path(), &dest, &filter)),
        )
        .await;
        for (sent, received) in results {
            sent.unwrap();
            received.unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        for i in 0..4 {
            assert_eq!(
                fs::read(dest.join(format!("share/doc/t{i}/README"))).unwrap(),
                b"doc"
            );
        }
        // One of them wrote it last, whole.
        let common = fs::read_to_string(dest.join("share/doc/common")).unwrap();
        assert!(["0", "1", "2", "3"].contains(&common.as_str()), "{common}");
        assert!(temp_files(&dest).is_empty());
    }
}

#[tokio::test]
async fn a_failed_transfer_removes_the_empty_directories_it_made() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("there")).unwrap();
    let dest = dir.path().join("there/new/deeper");
    let (task, tx, mut rx) = scripted_receiver(&dest);
    tx.send(Ok(stat_packet("d", mode::MODE_DIR | 0o755, "")))
        .await
        .unwrap();
    tx.send(Ok(stat_packet("d/e", mode::MODE_DIR | 0o755, "")))
        .await
        .unwrap();
    tx.send(Ok(stat_packet("d/e/f", 0o644, ""))).await.unwrap();
    tx.send(Ok(end_of_listing())).await.unwrap();
    let req = next(&mut rx).await;
    assert_eq!(kind(&req), PacketType::PacketReq);
    tx.send(Ok(packet(
        PacketType::PacketErr,
        0,
        b"disk on fire".to_vec(),
    )))
    .await
    .unwrap();
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Remote(_)), "{err}");
    let left: Vec<String> = snapshot(dir.path()).into_keys().collect();
    assert_eq!(
        left,
        ["there"],
        "what existed stays, what the transfer made goes"
    );
}
