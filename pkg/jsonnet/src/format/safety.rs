//! The checks a formatted file passes before it is written, independent of the formatter's own
//! lexer and parser: every comment is still there (a scanner of its own finds them), and the file
//! means the same: the same tokens in the same order (that scanner again), or else the same tree
//! by jrsonnet's parser (positions aside), or else the same JSON (natives stubbed).

use std::{any::Any, cell::RefCell, collections::HashMap, path::Path, rc::Rc};

use jrsonnet_evaluator::{
    error::ErrorKind,
    function::{
        builtin::Builtin, CallLocation, FuncVal, FunctionSignature, ParamDefault, ParamName,
        ParamParse,
    },
    manifest::JsonFormat,
    trace::PathResolver,
    Source, SourcePath, State, Thunk, Val,
};
use jrsonnet_gcmodule::Trace;
use jrsonnet_ir::{SourceFile, SourceVirtual};
use serde::Deserialize;

use crate::{
    locate::{self, Wanted},
    resolve::{Log, Resolver},
    Options, DEFAULT_MAX_STACK,
};

/// A comment: the line it starts on (1-based) and its text without the marker (`//`, `#`,
/// `/* */`) and with every run of whitespace made one space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Comment {
    pub line: usize,
    pub text: String,
}

fn normalize(comment: &str) -> String {
    let inner = if let Some(rest) = comment.strip_prefix("/*") {
        rest.strip_suffix("*/").unwrap_or(rest)
    } else if let Some(rest) = comment.strip_prefix("//") {
        rest
    } else {
        comment.strip_prefix('#').unwrap_or(comment)
    };
    inner.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What the checks need of a text: its comments, and its other tokens as written.
struct Scan<'a> {
    comments: Vec<Comment>,
    tokens: Vec<&'a [u8]>,
}

fn is_operator(c: u8) -> bool {
    b"!$:~+-&|^=<>*/%".contains(&c)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Splits `text` into comments and tokens (a string, a text block, a word, a number, a run of
/// operator characters, or another character). A scanner of its own, apart from the formatter's
/// lexer; what it takes for a comment or whitespace is exactly what the language does.
fn scan(text: &str) -> Scan<'_> {
    let b = text.as_bytes();
    let at = |i: usize, s: &[u8]| b[i..].starts_with(s);
    let mut out = Scan {
        comments: Vec::new(),
        tokens: Vec::new(),
    };
    let mut i = 0;
    // The line of the comment last found, and up to where newlines were counted for it.
    let (mut line, mut counted) = (1, 0);
    while i < b.len() {
        let start = i;
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if at(i, b"//") || b[i] == b'#' || at(i, b"/*") {
            i = if b[i] == b'/' && b[i + 1] == b'*' {
                find(b, i + 2, b"*/").map_or(b.len(), |n| n + 2)
            } else {
                find(b, i, b"\n").unwrap_or(b.len())
            };
            line += b[counted..start].iter().filter(|&&c| c == b'\n').count();
            counted = start;
            out.comments.push(Comment {
                line,
                text: normalize(&String::from_utf8_lossy(&b[start..i])),
            });
            continue;
        }
        if at(i, b"|||") {
            i = text_block_end(text, i + 3);
        } else if at(i, b"@'") || at(i, b"@\"") {
            let quote = b[i + 1];
            i += 2;
            while i < b.len() && (b[i] != quote || b.get(i + 1) == Some(&quote)) {
                i += if b[i] == quote { 2 } else { 1 };
            }
            i += 1;
        } else if b[i] == b'\'' || b[i] == b'"' {
            let quote = b[i];
            i += 1;
            while i < b.len() && b[i] != quote {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if b[i].is_ascii_digit() {
            // A number, `1.5e-3` whole.
            while i < b.len()
                && (is_word(b[i])
                    || (b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
                    || (matches!(b[i], b'+' | b'-') && matches!(b[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
        } else if is_word(b[i]) {
            while i < b.len() && is_word(b[i]) {
                i += 1;
            }
        } else if is_operator(b[i]) {
            while i < b.len() && is_operator(b[i]) && !(at(i, b"//") || at(i, b"/*")) {
                i += 1;
            }
        } else {
            i += 1;
        }
        out.tokens.push(&b[start..i.min(b.len())]);
    }
    out
}

/// Where `needle` starts in `b` at or after `from`.
fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|n| from + n)
}

/// The comments of `text`, in order.
#[cfg(test)]
pub(super) fn comments(text: &str) -> Vec<Comment> {
    scan(text).comments
}

/// Where the text block whose `|||` ends at `at` ends: after the `|||` that closes it (or at the
/// end of a text that does not close it).
fn text_block_end(text: &str, at: usize) -> usize {
    let mut lines = text[at..].split_inclusive('\n');
    let mut pos = at + lines.next().map_or(0, str::len);
    let mut indent: Option<&str> = None;
    for line in lines {
        let content = line.trim_end_matches(['\n', '\r']);
        let start = pos;
        pos += line.len();
        if content.is_empty() {
            continue;
        }
        let ws = &content[..content.len() - content.trim_start().len()];
        match indent {
            None => indent = Some(ws),
            Some(prefix) if content.starts_with(prefix) => {}
            Some(_) => return start + ws.len() + 3,
        }
    }
    text.len()
}

/// The first comment of `before` that `after` does not have (as many times).
pub(super) fn first_lost(before: &str, after: &str) -> Option<Comment> {
    lost(scan(before).comments, &scan(after).comments)
}

fn lost(before: Vec<Comment>, after: &[Comment]) -> Option<Comment> {
    let mut left: HashMap<&str, usize> = HashMap::new();
    for comment in after {
        *left.entry(comment.text.as_str()).or_default() += 1;
    }
    before.into_iter().find(|comment| {
        match left.get_mut(comment.text.as_str()).filter(|n| **n > 0) {
            Some(n) => {
                *n -= 1;
                false
            }
            None => true,
        }
    })
}

/// What is wrong with a formatted text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Problem {
    /// It lacks this comment of the original.
    Lost(Comment),
    /// It means something else than the original, or does not parse or evaluate where the
    /// original does.
    Changed,
}

/// Checks `after`, the formatted text of the file at `path` (which holds `before`): every
/// comment kept, the same meaning.
pub(super) fn check(path: &Path, before: &str, after: &str) -> Result<(), Problem> {
    let (scan_before, scan_after) = (scan(before), scan(after));
    if let Some(comment) = lost(scan_before.comments, &scan_after.comments) {
        return Err(Problem::Lost(comment));
    }
    // The same tokens (layout and comments aside): the same program. Cheap, and the common case.
    if scan_before.tokens == scan_after.tokens || same_meaning(path, before, after) {
        Ok(())
    } else {
        Err(Problem::Changed)
    }
}

/// The syntax tree of `text` without positions, or `None` when it does not parse.
fn tree(text: &str) -> Option<String> {
    let source = Source::new_virtual("<brewkit fmt>".into(), text.into());
    let expr = jrsonnet_ir_parser::parse(
        text,
        &jrsonnet_ir_parser::ParserSettings {
            source: source.clone(),
        },
    )
    .ok()?;
    Some(strip_positions(
        &format!("{expr:?}"),
        &format!("{source:?}:"),
    ))
}

/// `debug` without the `<source>:start-end` positions (and the ` from ` before them).
fn strip_positions(debug: &str, source: &str) -> String {
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug;
    while let Some(at) = rest.find(source) {
        let head = &rest[..at];
        out.push_str(head.strip_suffix(" from ").unwrap_or(head));
        let tail = &rest[at + source.len()..];
        let digits = tail
            .find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap_or(tail.len());
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

/// Whether `after`, the formatted text of the file at `path` (which holds `before`), means what
/// `before` means: the same syntax tree, or the same JSON. Also when `before` does not evaluate
/// (there is nothing to compare with) and `after` parses.
fn same_meaning(path: &Path, before: &str, after: &str) -> bool {
    let Some(tree_after) = tree(after) else {
        return tree(before).is_none();
    };
    let Some(tree_before) = tree(before) else {
        return true;
    };
    if tree_after == tree_before {
        return true;
    }
    // Different trees (`a + {}` made `a {}`, imports sorted…): compare the values.
    let Some(value) = evaluate(path, before, None) else {
        return true;
    };
    evaluate(path, before, Some(after)) == Some(value)
}

/// The JSON the file at `path` evaluates to (its text replaced by `overlay` when given), every
/// `std.native(…)` that `text` names stubbed; `None` when it does not evaluate.
fn evaluate(path: &Path, text: &str, overlay: Option<&str>) -> Option<serde_json::Value> {
    let canonical = std::fs::canonicalize(path).ok()?;
    let main = SourcePath::new(SourceFile::new(canonical.clone()));
    let context = jrsonnet_stdlib::ContextInitializer::new(PathResolver::new_cwd_fallback());
    let virtual_path = SourcePath::new(SourceVirtual("<natives>".into()));
    let mut names: Vec<String> =
        locate::find(&Source::new(virtual_path, text.into()), Wanted::Native)
            .into_iter()
            .map(|(_, name)| name)
            .collect();
    names.sort();
    names.dedup();
    for name in names {
        context.add_native(name.as_str(), FuncVal::builtin(StubNative(name.clone())));
    }
    let mut builder = State::builder();
    builder
        .import_resolver(Resolver {
            jpath: Options::jpath_with_env(&[]),
            log: Rc::new(RefCell::new(Log::default())),
            overlay: overlay.map(|text| (canonical, text.to_owned())),
        })
        .context_initializer(context);
    let state = builder.build();
    let _entered = state.enter();
    let _depth = jrsonnet_evaluator::stack::limit_stack_depth(DEFAULT_MAX_STACK);
    let json = state
        .import_resolved(main)
        .and_then(|value| value.manifest(JsonFormat::minify()))
        .ok()?;
    serde_json::from_str(&json).ok()
}

/// How many arguments a stubbed native takes at most.
const STUB_PARAMS: usize = 16;

/// A native that returns its name and its arguments, whatever they are: enough to tell two
/// evaluations apart without the natives the build registers.
struct StubNative(String);

impl Trace for StubNative {
    fn is_type_tracked() -> bool {
        false
    }
}

impl Builtin for StubNative {
    fn name(&self) -> &str {
        &self.0
    }

    fn params(&self) -> FunctionSignature {
        FunctionSignature::new(
            (0..STUB_PARAMS)
                .map(|i| {
                    ParamParse::new(
                        ParamName::Named(format!("a{i}").as_str().into()),
                        ParamDefault::Exists,
                    )
                })
                .collect(),
        )
    }

    fn call(
        &self,
        _location: CallLocation<'_>,
        args: &[Option<Thunk<Val>>],
    ) -> jrsonnet_evaluator::Result<Val> {
        let mut values = Vec::new();
        for arg in args.iter().flatten() {
            let json = arg.evaluate()?.manifest(JsonFormat::minify())?;
            let value: serde_json::Value = serde_json::from_str(&json)
                .map_err(|e| ErrorKind::RuntimeError(e.to_string().into()))?;
            values.push(value);
        }
        let result = serde_json::json!({ "native": self.0, "args": values });
        Val::deserialize(result).map_err(|e| ErrorKind::RuntimeError(e.to_string().into()).into())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
