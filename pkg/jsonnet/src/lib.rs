//! Jsonnet evaluation for BrewKit.
//!
//! One job: turn a Jsonnet file into JSON, the way the `jsonnet` CLI would (imports relative to the
//! importing file, library paths from `-J` and `JSONNET_PATH`, `--ext-str`/`--ext-code`), plus the
//! string-argument natives the caller registers. Errors carry `file:line:col` and the Jsonnet stack.
//! The jrsonnet types stay inside this crate.

use std::{
    any::Any,
    borrow::Cow,
    fmt,
    path::{Path, PathBuf},
};

pub mod format;

use jrsonnet_evaluator::{
    error::ErrorKind,
    function::{
        builtin::Builtin, CallLocation, FuncVal, FunctionSignature, ParamDefault, ParamName,
        ParamParse,
    },
    manifest::JsonFormat,
    trace::PathResolver,
    FileImportResolver, State, Thunk, Val,
};
use jrsonnet_gcmodule::Trace;
use serde::Deserialize;

/// An external variable, as `--ext-str name=value` or `--ext-code name=code` give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtVar {
    /// `std.extVar(name)` is the string `value`.
    Str { name: String, value: String },
    /// `std.extVar(name)` is the result of evaluating `code`.
    Code { name: String, code: String },
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
}

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
    pub line: usize,
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
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The parser refused the source (of the file or of a file it imports).
    #[error("{location}: syntax error: {message}")]
    Syntax { location: Location, message: String },
    /// Evaluation failed: `error`, a missing field, a type error, a failed import, a native misuse…
    #[error("{}{message}{}", location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default(), render_stack(stack))]
    Runtime {
        /// The innermost place with a source location.
        location: Option<Location>,
        message: String,
        /// The Jsonnet stack, innermost first, one frame a line.
        stack: Vec<String>,
    },
    /// The result is not representable as JSON (a function at the top level, say).
    #[error("{0}")]
    Manifest(String),
}

fn render_stack(stack: &[String]) -> String {
    if stack.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nJsonnet stack:");
    for frame in stack {
        out.push_str("\n    ");
        out.push_str(frame);
    }
    out
}

/// Evaluates `path` and returns its JSON value.
pub fn evaluate_file(
    path: &Path,
    options: &Options,
    natives: &[Native],
) -> Result<serde_json::Value, Error> {
    // Read it ourselves first so that a missing file is a plain I/O error, not a Jsonnet import error.
    let absolute = std::fs::canonicalize(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    std::fs::metadata(&absolute).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;

    let resolver = PathResolver::new_cwd_fallback();
    let context = jrsonnet_stdlib::ContextInitializer::new(resolver.clone());
    for var in &options.ext_vars {
        match var {
            ExtVar::Str { name, value } => {
                context.add_ext_str(name.as_str().into(), value.as_str().into())
            }
            ExtVar::Code { name, code } => context
                .add_ext_code(name, code)
                .map_err(|e| convert_error(&e, &resolver))?,
        }
    }
    for native in natives {
        context.add_native(native.name, FuncVal::builtin(NativeBuiltin(*native)));
    }
    let mut builder = State::builder();
    builder
        .import_resolver(FileImportResolver::new(options.jpath.clone()))
        .context_initializer(context);
    let state = builder.build();
    let _entered = state.enter();

    let manifested = state
        .import(Cow::Borrowed(absolute.as_path()))
        .and_then(|value| value.manifest(JsonFormat::minify()))
        .map_err(|e| convert_error(&e, &resolver))?;
    serde_json::from_str(&manifested).map_err(|e| Error::Manifest(e.to_string()))
}

fn convert_error(error: &jrsonnet_evaluator::Error, resolver: &PathResolver) -> Error {
    let file_name = |source_path: &jrsonnet_evaluator::SourcePath| {
        source_path
            .path()
            .map_or_else(|| source_path.to_string(), |p| resolver.resolve(p))
    };
    if let ErrorKind::ImportSyntaxError { path, error } = error.error() {
        let offset = (error.location.1 as usize).min(path.code().len()) as u32;
        let [at] = path.map_source_locations(&[offset]);
        return Error::Syntax {
            location: Location {
                file: file_name(path.source_path()),
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
                let [start, _] = span.0.map_source_locations(&[span.1, span.2]);
                let here = Location {
                    file: file_name(span.0.source_path()),
                    line: start.line,
                    column: start.column,
                };
                stack.push(format!("{here}: {}", frame.desc));
                location.get_or_insert(here);
            }
            None => stack.push(frame.desc.clone()),
        }
    }
    Error::Runtime {
        location,
        message: error.error().to_string(),
        stack,
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
