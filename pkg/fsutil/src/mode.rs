//! File modes on the wire: fsutil sends Go's `os.FileMode` bits, not Unix `st_mode`.
//!
//! A Go mode keeps the permission bits (`0o777`) where Unix has them but puts the file type and
//! the setuid/setgid/sticky bits in the high bits: a directory is `MODE_DIR | 0o755`, a symlink
//! `MODE_SYMLINK | 0o777`, a regular file has no type bit at all.

/// `os.ModeDir`.
pub const MODE_DIR: u32 = 1 << 31;
/// `os.ModeAppend` (never produced on Unix).
pub const MODE_APPEND: u32 = 1 << 30;
/// `os.ModeExclusive` (never produced on Unix).
pub const MODE_EXCLUSIVE: u32 = 1 << 29;
/// `os.ModeTemporary` (never produced on Unix).
pub const MODE_TEMPORARY: u32 = 1 << 28;
/// `os.ModeSymlink`.
pub const MODE_SYMLINK: u32 = 1 << 27;
/// `os.ModeDevice`: a block device, or with [`MODE_CHAR_DEVICE`] a character device.
pub const MODE_DEVICE: u32 = 1 << 26;
/// `os.ModeNamedPipe`: a FIFO.
pub const MODE_NAMED_PIPE: u32 = 1 << 25;
/// `os.ModeSocket` (fsutil clears it before sending).
pub const MODE_SOCKET: u32 = 1 << 24;
/// `os.ModeSetuid`.
pub const MODE_SETUID: u32 = 1 << 23;
/// `os.ModeSetgid`.
pub const MODE_SETGID: u32 = 1 << 22;
/// `os.ModeCharDevice`.
pub const MODE_CHAR_DEVICE: u32 = 1 << 21;
/// `os.ModeSticky`.
pub const MODE_STICKY: u32 = 1 << 20;
/// `os.ModeIrregular`: a file of unknown type.
pub const MODE_IRREGULAR: u32 = 1 << 19;
/// `os.ModeType`: every type bit. A mode with none of them is a regular file.
pub const MODE_TYPE: u32 = MODE_DIR
    | MODE_SYMLINK
    | MODE_NAMED_PIPE
    | MODE_SOCKET
    | MODE_DEVICE
    | MODE_CHAR_DEVICE
    | MODE_IRREGULAR;
/// `os.ModePerm`: the Unix permission bits.
pub const MODE_PERM: u32 = 0o777;

const S_IFMT: u32 = 0o170_000;
const S_IFSOCK: u32 = 0o140_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;
const S_IFBLK: u32 = 0o060_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;

/// Converts a Unix `st_mode` to Go `os.FileMode` bits, as Go's `os.Lstat` does.
pub fn from_unix(st_mode: u32) -> u32 {
    let mut mode = st_mode & MODE_PERM;
    mode |= match st_mode & S_IFMT {
        S_IFBLK => MODE_DEVICE,
        S_IFCHR => MODE_DEVICE | MODE_CHAR_DEVICE,
        S_IFDIR => MODE_DIR,
        S_IFIFO => MODE_NAMED_PIPE,
        S_IFLNK => MODE_SYMLINK,
        S_IFSOCK => MODE_SOCKET,
        S_IFREG => 0,
        _ => MODE_IRREGULAR,
    };
    if st_mode & S_ISUID != 0 {
        mode |= MODE_SETUID;
    }
    if st_mode & S_ISGID != 0 {
        mode |= MODE_SETGID;
    }
    if st_mode & S_ISVTX != 0 {
        mode |= MODE_STICKY;
    }
    mode
}

/// Converts Go `os.FileMode` bits to a Unix `st_mode` (type, special and permission bits).
pub fn to_unix(mode: u32) -> u32 {
    let kind = if mode & MODE_DIR != 0 {
        S_IFDIR
    } else if mode & MODE_SYMLINK != 0 {
        S_IFLNK
    } else if mode & MODE_DEVICE != 0 {
        if mode & MODE_CHAR_DEVICE != 0 {
            S_IFCHR
        } else {
            S_IFBLK
        }
    } else if mode & MODE_NAMED_PIPE != 0 {
        S_IFIFO
    } else if mode & MODE_SOCKET != 0 {
        S_IFSOCK
    } else {
        S_IFREG
    };
    let mut out = kind | (mode & MODE_PERM);
    if mode & MODE_SETUID != 0 {
        out |= S_ISUID;
    }
    if mode & MODE_SETGID != 0 {
        out |= S_ISGID;
    }
    if mode & MODE_STICKY != 0 {
        out |= S_ISVTX;
    }
    out
}

/// Whether a Go mode is a regular file: the only entries whose content is transferred
/// (fsutil's `fileCanRequestData`).
pub fn is_regular(mode: u32) -> bool {
    mode & MODE_TYPE == 0
}

/// Whether a Go mode is a directory.
pub fn is_dir(mode: u32) -> bool {
    mode & MODE_DIR != 0
}

/// Whether a Go mode is a symbolic link.
pub fn is_symlink(mode: u32) -> bool {
    mode & MODE_SYMLINK != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(from_unix(0o100_644), 0o644);
        assert_eq!(from_unix(0o100_755), 0o755);
        assert_eq!(from_unix(0o040_755), MODE_DIR | 0o755);
        assert_eq!(from_unix(0o120_777), MODE_SYMLINK | 0o777);
        assert_eq!(from_unix(0o010_644), MODE_NAMED_PIPE | 0o644);
        assert_eq!(from_unix(0o020_666), MODE_DEVICE | MODE_CHAR_DEVICE | 0o666);
        assert_eq!(from_unix(0o060_660), MODE_DEVICE | 0o660);
        assert_eq!(from_unix(0o104_755), MODE_SETUID | 0o755);
        assert_eq!(from_unix(0o041_777), MODE_DIR | MODE_STICKY | 0o777);
        for st in [
            0o100_644, 0o040_755, 0o120_777, 0o010_600, 0o020_666, 0o106_755,
        ] {
            assert_eq!(to_unix(from_unix(st)), st);
        }
        assert!(is_regular(0o644));
        assert!(!is_regular(MODE_DIR | 0o755));
        assert!(is_dir(MODE_DIR));
        assert!(is_symlink(MODE_SYMLINK | 0o777));
    }
}
