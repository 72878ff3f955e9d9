//! Jsonnet evaluation for BrewKit.
//!
//! One job: turn a Jsonnet file into JSON, the way the `jsonnet` CLI would (imports relative to the
//! importing file, library paths from `-J` and `JSONNET_PATH`, `--ext-str`/`--ext-code`), plus the
//! string-argument natives the caller registers. Errors carry `file:line:col` and the Jsonnet stack.
//! The jrsonnet types stay inside this crate.

use std::{
    any::Any,
    cell::RefCell,
    fmt,
    io::Read,
    path::{Path, PathBuf},
    rc::Rc,
};

pub mod format;
mod locate;
mod resolve;

use jrsonnet_evaluator::{
    error::ErrorKind,
    function::{
        builtin::Builtin, CallLocation, FuncVal, FunctionSignature, ParamDefault, ParamName,
        ParamParse,
    },
    manifest::JsonFormat,
    trace::PathResolver,
    typed::ValType,
    IBytes, SourcePath, SourceVirtual, State, Thunk, Val,
};
use jrsonnet_gcmodule::Trace;
use jrsonnet_ir::{SourceFifo, SourceFile};
use locate::Wanted;
use resolve::{Log, Resolver};
use serde::Deserialize;

/// An external variable, as `--ext-str name=value` or `--ext-code name=code` give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtVar {
    /// `std.extVar(name)` is the string `value`.
    Str {
        /// The name `std.extVar` is called with.
        name: String,
        /// The string it returns, taken verbatim.
        value: String,
    },
    /// `std.extVar(name)` is the result of evaluating `code`.
    Code {
        /// The name `std.extVar` is called with.
        name: String,
        /// Jsonnet source; the variable's value is what it evaluates to.
        code: String,
    },
}

impl ExtVar {
    /// Parses `name=value` (the CLI form). `name` alone takes the value of the environment variable
    /// of that name, as the `jsonnet` CLI does.
    pub fn parse(arg: &str, code: bool) -> Result<Self, String> {
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => {
                let value = std::env::var(arg).map_err(|_| {
                    format!(
                        "`{arg}` has no `=value` and no environment variable of that name is set"
                    )
                })?;
                (arg.to_owned(), value)
            }
        };
        if name.is_empty() {
            return Err(format!("`{arg}`: the variable name is empty"));
        }
        Ok(if code {
            Self::Code { name, code: value }
        } else {
            Self::Str { name, value }
        })
    }
}

/// What a Jsonnet evaluation may see besides the file itself.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Library directories for `import`, highest priority first.
    pub jpath: Vec<PathBuf>,
    /// `std.extVar` values.
    pub ext_vars: Vec<ExtVar>,
    /// How deep calls may nest before evaluation stops with a stack overflow (the `jsonnet` CLI's
    /// `--max-stack`); `None`: [`DEFAULT_MAX_STACK`].
    pub max_stack: Option<usize>,
}

/// The nesting limit when [`Options::max_stack`] is not set: the `jsonnet` CLI's default.
pub const DEFAULT_MAX_STACK: usize = 500;

impl Options {
    /// Library paths as the `jsonnet` CLI orders them: the `-J` directories (the last given wins),
    /// then `JSONNET_PATH` (the first entry wins).
    pub fn jpath_with_env(cli: &[PathBuf]) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = cli.iter().rev().cloned().collect();
        if let Some(env) = std::env::var_os("JSONNET_PATH") {
            out.extend(std::env::split_paths(&env).filter(|p| !p.as_os_str().is_empty()));
        }
        out
    }
}

/// A native function reachable as `std.native(name)`: every parameter is a string, the result is
/// built from them as JSON.
#[derive(Clone, Copy)]
pub struct Native {
    /// Name given to `std.native`.
    pub name: &'static str,
    /// Parameter names, in call order.
    pub params: &'static [&'static str],
    /// Builds the result from the arguments, one per parameter.
    pub build: fn(&[String]) -> serde_json::Value,
}

impl fmt::Debug for Native {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name, self.params.join(", "))
    }
}

/// A place in a Jsonnet source file, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as shown to the user (relative to the working directory where possible).
    pub file: String,
    /// Line in that file, counting from 1.
    pub line: usize,
    /// Column on that line, counting from 1.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// Why a file did not evaluate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file itself could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file as it was asked for.
        path: PathBuf,
        /// Why the operating system refused it.
        #[source]
        source: std::io::Error,
    },
    /// The parser refused the source (of the file or of a file it imports).
    #[error("{location}: syntax error: {message}")]
    Syntax {
        /// Where the parser stopped.
        location: Location,
        /// The parser's complaint, without the location.
        message: String,
    },
    /// Evaluation failed: `error`, a missing field, a type error, a failed import, a native misuse…
    #[error("{}{message}{}", location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default(), render_stack(stack))]
    Runtime {
        /// The innermost place with a source location.
        location: Option<Location>,
        /// What went wrong, in the evaluator's words; for a failed import, a missing field, an
        /// unknown native or a stack overflow, BrewKit's fuller explanation instead.
        message: String,
        /// The Jsonnet stack, innermost first, one frame a line.
        stack: Vec<String>,
    },
    /// The result is not representable as JSON (a function at the top level, say).
    #[error("{0}")]
    Manifest(String),
}

/// How many frames of the Jsonnet stack an error shows (the `jsonnet` CLI's `--max-trace`).
const MAX_TRACE: usize = 20;

fn render_stack(stack: &[String]) -> String {
    if stack.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nJsonnet stack:");
    // A deep recursion has hundreds of frames alike: keep both ends, as the `jsonnet` CLI's
    // --max-trace does.
    let (head, tail) = if stack.len() > MAX_TRACE {
        (
            &stack[..MAX_TRACE / 2],
            &stack[stack.len() - MAX_TRACE / 2..],
        )
    } else {
        (stack, &[][..])
    };
    for frame in head {
        out.push_str("\n    ");
        out.push_str(frame);
    }
    if !tail.is_empty() {
        out.push_str(&format!(
            "\n    ... {} more frames ...",
            stack.len() - head.len() - tail.len()
        ));
    }
    for frame in tail {
        out.push_str("\n    ");
        out.push_str(frame);
    }
    out
}

/// Whether `path` names a stream rather than a file: `-` or `/dev/stdin` (standard input, as the
/// `jsonnet` CLI reads `-`), or a pipe or device such as `<(command)`. A stream is read once;
/// its imports resolve from the current directory, as it has no directory of its own.
pub fn is_stream(path: &Path) -> bool {
    path == Path::new("-")
        || path == Path::new("/dev/stdin")
        || std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Evaluates `path` and returns its JSON value. `-` (or `/dev/stdin`) reads standard input; see
/// [`is_stream`].
pub fn evaluate_file(
    path: &Path,
    options: &Options,
    natives: &[Native],
) -> Result<serde_json::Value, Error> {
    let main = open(path)?;
    let log = Rc::new(RefCell::new(Log::default()));
    let paths = PathResolver::new_cwd_fallback();
    let context = jrsonnet_stdlib::ContextInitializer::new(paths.clone());
    let max_stack = options.max_stack.unwrap_or(DEFAULT_MAX_STACK);
    let report = Report {
        paths: &paths,
        log: &log,
        natives,
        max_stack,
    };
    for var in &options.ext_vars {
        match var {
            ExtVar::Str { name, value } => {
                context.add_ext_str(name.as_str().into(), value.as_str().into())
            }
            ExtVar::Code { name, code } => context
                .add_ext_code(name, code)
                .map_err(|e| report.convert(&e))?,
        }
    }
    for native in natives {
        context.add_native(native.name, FuncVal::builtin(NativeBuiltin(*native)));
    }
    let mut builder = State::builder();
    builder
        .import_resolver(Resolver {
            jpath: options.jpath.clone(),
            log: log.clone(),
            overlay: None,
        })
        .context_initializer(context);
    let state = builder.build();
    let _entered = state.enter();
    // The limit counts from the current depth and is restored when the guard drops.
    let _depth = jrsonnet_evaluator::stack::limit_stack_depth(max_stack);

    let manifested = state
        .import_resolved(main)
        .and_then(|value| value.manifest(JsonFormat::minify()))
        .map_err(|e| report.convert(&e))?;
    serde_json::from_str(&manifested).map_err(|e| Error::Manifest(e.to_string()))
}

/// The source to evaluate for `path`: a file, or a stream read now.
fn open(path: &Path) -> Result<SourcePath, Error> {
    let read_error = |source| Error::Read {
        path: path.to_owned(),
        source,
    };
    if is_stream(path) {
        let mut bytes = Vec::new();
        let read = if path == Path::new("-") || path == Path::new("/dev/stdin") {
            // Not by opening /dev/stdin: that fails where stdin is a socket.
            std::io::stdin().lock().read_to_end(&mut bytes)
        } else {
            std::fs::File::open(path).and_then(|mut f| f.read_to_end(&mut bytes))
        };
        read.map_err(read_error)?;
        let name = if path == Path::new("-") {
            "<stdin>".to_owned()
        } else {
            path.display().to_string()
        };
        return Ok(resolve::Stream::source(
            name,
            IBytes::from(bytes.as_slice()),
        ));
    }
    // Checked here so that a missing file or a directory is a plain I/O error, not a Jsonnet
    // import error.
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    if metadata.is_dir() {
        return Err(read_error(std::io::Error::from(
            std::io::ErrorKind::IsADirectory,
        )));
    }
    let absolute = std::fs::canonicalize(path).map_err(read_error)?;
    Ok(SourcePath::new(SourceFile::new(absolute)))
}

/// What turning a jrsonnet error into ours needs to know.
struct Report<'a> {
    /// How file names are shown (relative to the working directory where possible).
    paths: &'a PathResolver,
    log: &'a RefCell<Log>,
    natives: &'a [Native],
    max_stack: usize,
}

impl Report<'_> {
    fn file_name(&self, source_path: &SourcePath) -> String {
        if let Some(path) = source_path.path() {
            return self.paths.resolve(path);
        }
        // jrsonnet's in-memory sources (`--ext-code`): their name, not `fifo("<inline code>")`.
        if let Some(code) = source_path.downcast_ref::<SourceFifo>() {
            return code.0.clone();
        }
        if let Some(virtual_source) = source_path.downcast_ref::<SourceVirtual>() {
            return virtual_source.0.to_string();
        }
        source_path.to_string()
    }

    fn location(&self, span: &jrsonnet_evaluator::Span) -> Location {
        let [start, _] = span.0.map_source_locations(&[span.1, span.2]);
        Location {
            file: self.file_name(span.0.source_path()),
            line: start.line,
            column: start.column,
        }
    }

    fn convert(&self, error: &jrsonnet_evaluator::Error) -> Error {
        if let ErrorKind::ImportSyntaxError { path, error } = error.error() {
            let offset = (error.location.1 as usize).min(path.code().len()) as u32;
            let [at] = path.map_source_locations(&[offset]);
            return Error::Syntax {
                location: Location {
                    file: self.file_name(path.source_path()),
                    line: at.line,
                    column: at.column,
                },
                message: error.message.clone(),
            };
        }
        let mut location = None;
        let mut stack = Vec::new();
        for frame in &error.trace().0 {
            match &frame.location {
                Some(span) => {
                    let here = self.location(span);
                    stack.push(format!("{here}: {}", frame.desc));
                    location.get_or_insert(here);
                }
                None => stack.push(frame.desc.clone()),
            }
        }
        let mut message = error.error().to_string();
        if let Some((at, explained)) = self.explain(error.error()) {
            location = at.or(location);
            message = explained;
        }
        if location.is_none() {
            // Nothing on the stack has a place (`1 / 0` in a field): the outermost frames say
            // which field was being manifested, so point at that field in the source.
            let path: Option<Vec<locate::Step>> = error
                .trace()
                .0
                .iter()
                .rev()
                .map_while(|frame| {
                    frame
                        .location
                        .is_none()
                        .then(|| locate::Step::parse(&frame.desc))
                        .flatten()
                })
                .collect::<Vec<_>>()
                .into();
            location = path
                .and_then(|path| locate::field_at(&self.log.borrow().loaded, &path))
                .map(|span| self.location(&span));
        }
        Error::Runtime {
            location,
            message,
            stack,
        }
    }

    /// A better message, and the place, for the errors jrsonnet raises without a span.
    fn explain(&self, kind: &ErrorKind) -> Option<(Option<Location>, String)> {
        match kind {
            ErrorKind::ImportFileNotFound(..) | ErrorKind::ImportIsADirectory(_) => {
                self.explain_import()
            }
            ErrorKind::NoSuchField(name, _) => {
                let found = self.find_everywhere(Wanted::Field(name));
                let (first, _) = found.first()?;
                let mut message = kind.to_string();
                if found.len() > 1 {
                    // No way to tell which one failed: name them all, the first as the place.
                    let places: Vec<String> = found.iter().map(|(at, _)| at.to_string()).collect();
                    let count = found.len();
                    let places = places.join(", ");
                    message.push_str(&format!("\n(.{name} is read in {count} places: {places})"));
                }
                Some((Some(first.clone()), message))
            }
            ErrorKind::OnlyFunctionsCanBeCalledGot(ValType::Null) => self.explain_unknown_native(),
            ErrorKind::StackOverflow => {
                let limit = self.max_stack;
                let message = format!(
                    "stack overflow: calls nested deeper than {limit}; \
                     reduce the recursion, or raise the limit with --max-stack N"
                );
                Some((None, message))
            }
            _ => None,
        }
    }

    /// A failed import: its place in the importing file, and every path searched.
    fn explain_import(&self) -> Option<(Option<Location>, String)> {
        let log = self.log.borrow();
        let failed = log.failed.as_ref()?;
        let importing = log
            .loaded
            .iter()
            .find(|source| source.source_path() == &failed.from);
        let at = importing
            .and_then(|source| {
                locate::find(source, Wanted::Import(&failed.path))
                    .into_iter()
                    .next()
            })
            .map(|(span, _)| self.location(&span));
        let path = &failed.path;
        let message = match &failed.directory {
            Some(dir) => format!("cannot import \"{path}\": {} is a directory", dir.display()),
            None => {
                let mut message =
                    format!("cannot import \"{path}\": no such file; searched, in order:");
                for (candidate, origin) in &failed.searched {
                    message.push_str(&format!("\n    {} ({origin})", candidate.display()));
                }
                message
            }
        };
        Some((at, message))
    }

    /// A call of what `std.native(name)` returned for a name never registered: null, and calling
    /// it says no more than "got null". Named, with the natives there are, at the `std.native`.
    fn explain_unknown_native(&self) -> Option<(Option<Location>, String)> {
        let (at, name) = self
            .find_everywhere(Wanted::Native)
            .into_iter()
            .find(|(_, name)| !self.natives.iter().any(|n| n.name == name))?;
        let known: Vec<&str> = self.natives.iter().map(|n| n.name).collect();
        let known = if known.is_empty() {
            "there are none".to_owned()
        } else {
            format!("the natives are {}", known.join(", "))
        };
        let message =
            format!("std.native('{name}') is null: there is no native \"{name}\"; {known}");
        Some((Some(at), message))
    }

    /// Every place in the sources read that matches, the evaluated file's first.
    fn find_everywhere(&self, wanted: Wanted<'_>) -> Vec<(Location, String)> {
        self.log
            .borrow()
            .loaded
            .iter()
            .flat_map(|source| locate::find(source, wanted))
            .map(|(span, text)| (self.location(&span), text))
            .collect()
    }
}

/// Adapts a [`Native`] to jrsonnet's builtin interface, checking that every argument is a string.
struct NativeBuiltin(Native);

impl Trace for NativeBuiltin {
    fn is_type_tracked() -> bool {
        false
    }
}

impl Builtin for NativeBuiltin {
    fn name(&self) -> &str {
        self.0.name
    }

    fn params(&self) -> FunctionSignature {
        FunctionSignature::new(
            self.0
                .params
                .iter()
                .map(|p| ParamParse::new(ParamName::Named((*p).into()), ParamDefault::None))
                .collect(),
        )
    }

    fn call(
        &self,
        _location: CallLocation<'_>,
        args: &[Option<Thunk<Val>>],
    ) -> jrsonnet_evaluator::Result<Val> {
        let native = &self.0;
        let mut strings = Vec::with_capacity(args.len());
        for (param, arg) in native.params.iter().zip(args) {
            let Some(arg) = arg else {
                return Err(missing_argument(native, param));
            };
            match arg.evaluate()? {
                Val::Str(s) => strings.push(s.to_string()),
                other => {
                    return Err(ErrorKind::RuntimeError(
                        format!(
                            "std.native('{}'): argument `{param}` must be a string, got {}",
                            native.name,
                            other.value_type()
                        )
                        .into(),
                    )
                    .into())
                }
            }
        }
        if strings.len() != native.params.len() {
            return Err(missing_argument(native, native.params[strings.len()]));
        }
        let json = (native.build)(&strings);
        Val::deserialize(json).map_err(|e| ErrorKind::RuntimeError(e.to_string().into()).into())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

fn missing_argument(native: &Native, param: &str) -> jrsonnet_evaluator::Error {
    ErrorKind::RuntimeError(
        format!(
            "std.native('{}'): argument `{param}` is missing; call it as {}({})",
            native.name,
            native.name,
            native.params.join(", ")
        )
        .into(),
    )
    .into()
}

#[cfg(test)]
mod tests;
