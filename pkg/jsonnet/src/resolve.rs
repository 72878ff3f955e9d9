//! Import resolution as the `jsonnet` CLI does it: the importing file's directory first (the
//! current directory for a definition read from a stream), then each library path in order.
//!
//! jrsonnet's own resolver reports a failed import without the places it tried and refuses a
//! directory as a "special file"; this one keeps a [`Log`] of what it read and of the import that
//! failed, so that the error can name the import's place and every path searched.

use std::{
    any::Any,
    cell::RefCell,
    fmt,
    hash::{Hash, Hasher},
    io::ErrorKind as IoErrorKind,
    path::{Path, PathBuf},
    rc::Rc,
};

use jrsonnet_evaluator::{
    error::{ErrorKind, Result},
    AsPathLike, IBytes, ImportResolver, Source, SourcePath,
};
use jrsonnet_gcmodule::Acyclic;
use jrsonnet_ir::{SourceDirectory, SourceFifo, SourceFile, SourcePathT};

/// What the resolver read and what it could not, shared with the error rendering.
#[derive(Default, Acyclic)]
pub(crate) struct Log {
    /// Every Jsonnet source read, in the order read (the evaluated file first).
    pub loaded: Vec<Source>,
    /// The last import that failed: evaluation stops at the first error, so it is that error's.
    pub failed: Option<ImportFailure>,
}

/// An import that found no file, or found a directory.
#[derive(Acyclic)]
pub(crate) struct ImportFailure {
    /// The importing file.
    pub from: SourcePath,
    /// The path as written in the import.
    pub path: String,
    /// Every candidate tried, in order, with where it came from.
    pub searched: Vec<(PathBuf, &'static str)>,
    /// The candidate that is a directory, when that is why it failed.
    pub directory: Option<PathBuf>,
}

#[derive(Acyclic)]
pub(crate) struct Resolver {
    /// Library directories, highest priority first.
    pub jpath: Vec<PathBuf>,
    pub log: Rc<RefCell<Log>>,
    /// A file read from memory instead of from disk (its canonical path and text): `brewkit
    /// fmt` evaluates the formatted text as if it were the file, before writing it.
    pub overlay: Option<(PathBuf, String)>,
}

impl Resolver {
    /// The directories an import from `from` searches, in order, with where each came from.
    fn directories(&self, from: &SourcePath) -> Result<Vec<(PathBuf, &'static str)>> {
        let base = if let Some(file) = from.downcast_ref::<SourceFile>() {
            let dir = file.path().parent().map(Path::to_owned).unwrap_or_default();
            (dir, "the importing file's directory")
        } else if let Some(dir) = from.downcast_ref::<SourceDirectory>() {
            (dir.path().to_owned(), "the importing directory")
        } else {
            // The file given on the command line (resolved from the working directory), or a
            // definition read from a stream, which has no directory of its own: `jsonnet -` does
            // the same.
            let cwd = std::env::current_dir().map_err(|e| ErrorKind::ImportIo(e.to_string()))?;
            (cwd, "the current directory")
        };
        let mut out = vec![base];
        out.extend(
            self.jpath
                .iter()
                .map(|dir| (dir.clone(), "library path, -J or JSONNET_PATH")),
        );
        Ok(out)
    }

    fn fail(&self, failure: ImportFailure) {
        self.log.borrow_mut().failed = Some(failure);
    }
}

impl ImportResolver for Resolver {
    fn resolve_from(&self, from: &SourcePath, path: &dyn AsPathLike) -> Result<SourcePath> {
        let path = path.as_path();
        let relative: &Path = path.as_ref();
        let mut searched: Vec<(PathBuf, &'static str)> = Vec::new();
        for (dir, origin) in self.directories(from)? {
            let candidate = dir.join(relative);
            // An absolute import is the same candidate from every directory: list it once.
            if searched.iter().any(|(seen, _)| *seen == candidate) {
                continue;
            }
            let metadata = match std::fs::metadata(&candidate) {
                Ok(metadata) => metadata,
                Err(e) if e.kind() == IoErrorKind::NotFound => {
                    searched.push((candidate, origin));
                    continue;
                }
                Err(e) => {
                    return Err(ErrorKind::ImportIo(format!("{}: {e}", candidate.display())).into())
                }
            };
            let kind = metadata.file_type();
            if kind.is_file() {
                let canonical = candidate
                    .canonicalize()
                    .map_err(|e| ErrorKind::ImportIo(format!("{}: {e}", candidate.display())))?;
                return Ok(SourcePath::new(SourceFile::new(canonical)));
            }
            if kind.is_dir() {
                searched.push((candidate.clone(), origin));
                self.fail(ImportFailure {
                    from: from.clone(),
                    path: path.to_owned().to_string(),
                    searched,
                    directory: Some(candidate.clone()),
                });
                return Err(
                    ErrorKind::ImportIsADirectory(SourcePath::new(SourceDirectory::new(candidate)))
                        .into(),
                );
            }
            // A pipe or a device (`import '/dev/stdin'`): read once, now.
            let bytes = std::fs::read(&candidate)
                .map_err(|e| ErrorKind::ImportIo(format!("{}: {e}", candidate.display())))?;
            return Ok(Stream::source(
                candidate.display().to_string(),
                IBytes::from(bytes.as_slice()),
            ));
        }
        self.fail(ImportFailure {
            from: from.clone(),
            path: path.to_owned().to_string(),
            searched,
            directory: None,
        });
        Err(ErrorKind::ImportFileNotFound(from.clone(), path.to_owned()).into())
    }

    fn load_file_contents(&self, resolved: &SourcePath) -> Result<Vec<u8>> {
        let overlaid = self.overlay.as_ref().filter(|(path, _)| {
            resolved
                .downcast_ref::<SourceFile>()
                .is_some_and(|file| file.path() == path)
        });
        let bytes = if let Some((_, text)) = overlaid {
            text.as_bytes().to_vec()
        } else if let Some(file) = resolved.downcast_ref::<SourceFile>() {
            std::fs::read(file.path())
                .map_err(|e| ErrorKind::ImportIo(format!("{}: {e}", file.path().display())))?
        } else if let Some(stream) = resolved.downcast_ref::<Stream>() {
            stream.code.to_vec()
        } else if let Some(code) = resolved.downcast_ref::<SourceFifo>() {
            // jrsonnet's own in-memory sources: `--ext-code`.
            code.1.to_vec()
        } else {
            return Err(ErrorKind::ResolvedFileNotFound(resolved.clone()).into());
        };
        // Kept for error messages (finding an expression's place); `importbin` data that is not
        // text is of no use there.
        if let Ok(code) = std::str::from_utf8(&bytes) {
            self.log
                .borrow_mut()
                .loaded
                .push(Source::new(resolved.clone(), code.into()));
        }
        Ok(bytes)
    }
}

/// A source read once (stdin, a pipe), held in memory. Unlike jrsonnet's `SourceFifo`, it shows
/// as its name alone, in errors and in `std.thisFile` (`<stdin>`, as the `jsonnet` CLI has it).
#[derive(Debug, Acyclic)]
pub(crate) struct Stream {
    pub name: String,
    pub code: IBytes,
}

impl Stream {
    /// A stream named `name` holding `code`; its imports resolve from the current directory.
    pub(crate) fn source(name: String, code: IBytes) -> SourcePath {
        SourcePath::new(Self { name, code })
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

// One stream is read once per evaluation, so its name identifies it.
impl PartialEq for Stream {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Hash for Stream {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl SourcePathT for Stream {
    fn is_default(&self) -> bool {
        true
    }

    fn path(&self) -> Option<&Path> {
        None
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn dyn_hash(&self, mut hasher: &mut dyn Hasher) {
        self.hash(&mut hasher);
    }

    fn dyn_eq(&self, other: &dyn SourcePathT) -> bool {
        other
            .as_any()
            .downcast_ref::<Self>()
            .is_some_and(|other| self == other)
    }

    fn dyn_debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
