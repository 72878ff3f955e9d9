//! What part of a directory a DiffCopy sends: include and exclude patterns and follow paths, as
//! BuildKit asks for them in the gRPC metadata of a `FileSync.DiffCopy` call.

use std::{
    collections::BTreeSet,
    io,
    path::{Path, PathBuf},
};

use super::{
    pattern::{clean_path, has_wildcards, Glob, Matcher},
    Error,
};

/// Metadata key of the name of the directory BuildKit asks for (`context`, `dockerfile`, ...).
pub const KEY_DIR_NAME: &str = "dir-name";
/// Metadata key of the include patterns, one value each.
pub const KEY_INCLUDE_PATTERNS: &str = "include-patterns";
/// Metadata key of the exclude patterns, one value each.
pub const KEY_EXCLUDE_PATTERNS: &str = "exclude-patterns";
/// Metadata key of the follow paths, one value each.
pub const KEY_FOLLOW_PATHS: &str = "followpaths";

/// Which paths of a directory to send, with fsutil's semantics.
///
/// - `include_patterns`: when not empty, only paths matching one of them are sent, together with
///   everything below a matching directory and the directories leading to a sent path. Patterns
///   use the `.dockerignore` syntax (`*`, `?`, `[...]`, `**`, `!` for an exception).
/// - `exclude_patterns`: paths matching them (and everything below them) are not sent, except
///   where a later `!` exception matches.
/// - `follow_paths`: paths whose symlinks (in any element, with wildcards in the last element of
///   each step) are resolved inside the directory; the links and their targets are added to the
///   include patterns. Links are still sent as links, never followed while walking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Patterns a path must match (or be below, or lead to) to be sent; empty means everything.
    pub include_patterns: Vec<String>,
    /// Patterns whose matches are not sent.
    pub exclude_patterns: Vec<String>,
    /// Paths whose symlinks are resolved into include patterns.
    pub follow_paths: Vec<String>,
}

impl Filter {
    /// A filter that sends everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// Checks that every pattern is valid.
    pub fn validate(&self) -> Result<(), Error> {
        Matcher::new(&self.include_patterns)?;
        Matcher::new(&self.exclude_patterns)?;
        Ok(())
    }

    /// Resolves follow paths against `root` and compiles the patterns (fsutil's `NewFilterFS`).
    /// Blocking: reads symlinks under `root`.
    pub(crate) fn compile(&self, root: &Path) -> Result<CompiledFilter, Error> {
        let mut includes = self.include_patterns.clone();
        if !self.follow_paths.is_empty() {
            if let Some(targets) = follow_links(root, &self.follow_paths)? {
                includes.extend(targets);
                // As fsutil: a follow path resolving to the root lifts the include filter.
                includes = dedupe_paths(includes).unwrap_or_default();
            }
        }
        let include = if includes.is_empty() {
            None
        } else {
            Some(Matcher::new(&includes)?)
        };
        let exclude = if self.exclude_patterns.is_empty() {
            None
        } else {
            Some(Matcher::new(&self.exclude_patterns)?)
        };
        Ok(CompiledFilter { include, exclude })
    }
}

/// What BuildKit asked for in a `FileSync.DiffCopy` call's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncRequest {
    /// The local directory's name (`dir-name`), empty when absent.
    pub dir_name: String,
    /// The paths to send.
    pub filter: Filter,
}

impl SyncRequest {
    /// Reads `dir-name`, `include-patterns`, `exclude-patterns` and `followpaths` from gRPC
    /// metadata. Newer BuildKit URL-encodes the values of a key holding non-ASCII text and marks
    /// it with `<key>-encoded: 1`; such values are decoded.
    pub fn from_metadata(metadata: &tonic::metadata::MetadataMap) -> Result<Self, Error> {
        let values = |key: &str| -> Result<Vec<String>, Error> {
            let encoded = metadata
                .get(format!("{key}-encoded").as_str())
                .and_then(|v| v.to_str().ok())
                .is_some_and(parse_go_bool);
            let mut out = Vec::new();
            for value in metadata.get_all(key) {
                let text = value.to_str().map_err(|_| Error::InvalidMetadata {
                    key: key.to_string(),
                    reason: "not ASCII text".to_string(),
                })?;
                out.push(if encoded {
                    query_unescape(text).ok_or_else(|| Error::InvalidMetadata {
                        key: key.to_string(),
                        reason: format!("bad URL encoding in {text:?}"),
                    })?
                } else {
                    text.to_string()
                });
            }
            Ok(out)
        };
        let filter = Filter {
            include_patterns: values(KEY_INCLUDE_PATTERNS)?,
            exclude_patterns: values(KEY_EXCLUDE_PATTERNS)?,
            follow_paths: values(KEY_FOLLOW_PATHS)?,
        };
        filter.validate()?;
        Ok(Self {
            dir_name: values(KEY_DIR_NAME)?.into_iter().next().unwrap_or_default(),
            filter,
        })
    }
}

/// Go's `strconv.ParseBool` truths.
fn parse_go_bool(s: &str) -> bool {
    matches!(s, "1" | "t" | "T" | "true" | "TRUE" | "True")
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; `None` on a bad escape or bytes that
/// are not UTF-8.
fn query_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A [`Filter`] ready for a walk.
#[derive(Debug, Clone)]
pub(crate) struct CompiledFilter {
    include: Option<Matcher>,
    exclude: Option<Matcher>,
}

/// What the walk does with one entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Not sent, and (a directory) not walked: nothing below it can be sent.
    Prune,
    /// Not sent itself, but (a directory) walked, as something below it may be.
    Skip,
    /// Sent.
    Send,
}

/// The per-pattern match records of a directory, handed to its children.
#[derive(Debug, Clone, Default)]
pub(crate) struct MatchState {
    include: Vec<bool>,
    exclude: Vec<bool>,
}

impl CompiledFilter {
    /// Decides about `path` (slash-separated, relative), a directory or not, given its parent's
    /// [`MatchState`] (the default one at the top level). Mirrors fsutil's `filterFS.Walk`,
    /// except that a directory is pruned whenever no pattern can match below it, also for
    /// patterns with wildcards (fsutil only prunes for literal patterns; what is sent is the
    /// same).
    pub(crate) fn decide(
        &self,
        path: &str,
        is_dir: bool,
        parent: &MatchState,
    ) -> (Decision, MatchState) {
        let mut state = MatchState::default();
        let mut skip = false;
        if let Some(include) = &self.include {
            let (matched, info) = include.matches(path, &parent.include);
            state.include = info;
            if !matched {
                if is_dir && !include.inclusion_could_match_below(path) {
                    return (Decision::Prune, state);
                }
                skip = true;
            }
        }
        if let Some(exclude) = &self.exclude {
            let (matched, info) = exclude.matches(path, &parent.exclude);
            state.exclude = info;
            if matched {
                if is_dir && !exclude.exception_could_match_below(path) {
                    return (Decision::Prune, state);
                }
                skip = true;
            }
        }
        let decision = if skip { Decision::Skip } else { Decision::Send };
        (decision, state)
    }
}

/// Removes paths below an earlier one (`a/b` after `a`); `None` if one is `.` (everything).
/// Like fsutil's `dedupePaths`, it expects (but does not require) sorted input.
fn dedupe_paths(paths: Vec<String>) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(paths.len());
    for p in paths {
        if p == "." {
            return None;
        }
        if let Some(last) = out.last() {
            if p.len() > last.len()
                && p.starts_with(last.as_str())
                && p.as_bytes()[last.len()] == b'/'
            {
                continue;
            }
        }
        out.push(p);
    }
    Some(out)
}

/// fsutil's `FollowLinks`: the symlinks met while resolving `paths` inside `root` and the paths
/// they lead to, all relative to `root` (a link to `/x` means `root/x`, `..` stops at `root`).
/// Wildcards are allowed in path elements. `None` when a path resolves to the root itself.
fn follow_links(root: &Path, paths: &[String]) -> Result<Option<Vec<String>>, Error> {
    let mut resolver = Resolver {
        root,
        resolved: BTreeSet::new(),
    };
    for p in paths {
        resolver.append(p)?;
    }
    Ok(dedupe_paths(resolver.resolved.into_iter().collect()))
}

struct Resolver<'a> {
    root: &'a Path,
    resolved: BTreeSet<String>,
}

impl Resolver<'_> {
    fn append(&mut self, path: &str) -> Result<(), Error> {
        // Go's filepath.Join(".", p): cleaned, and an absolute path made relative.
        let mut rest = clean_path(path.trim_start_matches('/'));
        let mut current = ".".to_string();
        loop {
            let (first, tail) = match rest.split_once('/') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (rest.clone(), String::new()),
            };
            current = clean_path(&format!("{current}/{first}"));
            let targets = self.read_symlink(&current, true)?;
            rest = tail;
            if (rest.is_empty() || targets.is_some()) && self.resolved.contains(&current) {
                return Ok(());
            }
            if let Some(targets) = targets {
                self.resolved.insert(current);
                for target in targets {
                    self.append(&format!("{target}/{rest}"))?;
                }
                return Ok(());
            }
            if rest.is_empty() {
                self.resolved.insert(current);
                return Ok(());
            }
        }
    }

    /// The targets (absolute within the root) of the symlink at relative `p`, or of every
    /// symlink matching `p`'s last element as a glob; `None` when there is none.
    fn read_symlink(&self, p: &str, allow_wildcard: bool) -> Result<Option<Vec<String>>, Error> {
        if p == "." || p == ".." || p.starts_with("../") {
            return Ok(None);
        }
        let (dir, base) = match p.rsplit_once('/') {
            Some((d, b)) => (d, b),
            None => (".", p),
        };
        if allow_wildcard && has_wildcards(base) {
            let Some(glob) = Glob::new(base) else {
                return Ok(None);
            };
            let dir_path = self.root.join(dir);
            let entries = match std::fs::read_dir(&dir_path) {
                Ok(entries) => entries,
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => return Err(Error::io("read directory", &dir_path)(e)),
            };
            let mut names = Vec::new();
            for entry in entries {
                let entry = entry.map_err(Error::io("read directory", &dir_path))?;
                if let Some(name) = entry.file_name().to_str() {
                    if glob.matches(name) {
                        names.push(name.to_string());
                    }
                }
            }
            names.sort();
            let mut out = Vec::new();
            for name in names {
                let child = if dir == "." {
                    name
                } else {
                    format!("{dir}/{name}")
                };
                if let Some(t) = self.read_symlink(&child, false)? {
                    out.extend(t);
                }
            }
            return Ok(if out.is_empty() { None } else { Some(out) });
        }
        let full: PathBuf = self.root.join(p);
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(Error::io("stat", &full)(e)),
        };
        if !meta.file_type().is_symlink() {
            return Ok(None);
        }
        let link = std::fs::read_link(&full).map_err(Error::io("read link", &full))?;
        let link = link
            .to_str()
            .ok_or_else(|| Error::NonUtf8Path(full.clone()))?
            .to_string();
        let link = clean_path(&link);
        if link.starts_with('/') {
            return Ok(Some(vec![link]));
        }
        Ok(Some(vec![clean_path(&format!("/{dir}/{link}"))]))
    }
}

pub(crate) fn is_not_found(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupe() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            dedupe_paths(v(&["a", "a/b", "ab", "c"])),
            Some(v(&["a", "ab", "c"]))
        );
        assert_eq!(dedupe_paths(v(&["a", "."])), None);
    }

    #[test]
    fn unescape() {
        assert_eq!(query_unescape("a%2Fb+c").as_deref(), Some("a/b c"));
        assert_eq!(query_unescape("%C3%A9").as_deref(), Some("é"));
        assert_eq!(query_unescape("%zz"), None);
        assert_eq!(query_unescape("%4"), None);
    }

    #[test]
    fn metadata() {
        let mut md = tonic::metadata::MetadataMap::new();
        md.insert("dir-name", "context".parse().unwrap());
        md.append("include-patterns", "src".parse().unwrap());
        md.append("include-patterns", "%C3%A9t%C3%A9".parse().unwrap());
        md.insert("include-patterns-encoded", "1".parse().unwrap());
        md.append("exclude-patterns", "target".parse().unwrap());
        md.append("exclude-patterns", "!target/keep".parse().unwrap());
        md.append("followpaths", "Dockerfile".parse().unwrap());
        let req = SyncRequest::from_metadata(&md).unwrap();
        assert_eq!(req.dir_name, "context");
        assert_eq!(req.filter.include_patterns, ["src", "été"]);
        assert_eq!(req.filter.exclude_patterns, ["target", "!target/keep"]);
        assert_eq!(req.filter.follow_paths, ["Dockerfile"]);

        let mut bad = tonic::metadata::MetadataMap::new();
        bad.append("exclude-patterns", "[".parse().unwrap());
        assert!(matches!(
            SyncRequest::from_metadata(&bad),
            Err(Error::InvalidPattern { .. })
        ));
    }

    #[test]
    fn follow_links_resolves_inside_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("foo")).unwrap();
        std::fs::create_dir(root.join("baz")).unwrap();
        std::fs::write(root.join("bar"), "").unwrap();
        std::fs::write(root.join("bax"), "").unwrap();
        std::fs::write(root.join("baz/one"), "").unwrap();
        std::os::unix::fs::symlink("/baz/one", root.join("foo/l1")).unwrap();
        std::os::unix::fs::symlink("/baz/two", root.join("foo/l2")).unwrap();
        std::os::unix::fs::symlink("../bax", root.join("baz/two")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("up")).unwrap();
        let got = follow_links(root, &["foo/l*".into(), "bar".into(), "up/passwd".into()])
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            [
                "bar",
                "bax",
                "baz/one",
                "baz/two",
                "etc/passwd",
                "foo/l*",
                "up"
            ]
        );

        std::os::unix::fs::symlink(".", root.join("self")).unwrap();
        assert_eq!(follow_links(root, &["self".into()]).unwrap(), None);
    }
}
