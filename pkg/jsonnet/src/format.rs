//! `brewkit fmt`: Jsonnet laid out exactly as `jsonnetfmt` (0.18, default options) lays it
//! out, by a printer of our own over a syntax tree that keeps every comment. Before a file is
//! written, the result is checked: every comment is still there and the file means the same.

use std::{io::Write, path::Path};

mod ast;
mod fodder;
mod imports;
mod lexer;
mod parser;
mod passes;
mod printer;
mod safety;
mod style;

/// Why a text is not formatted: it is not valid Jsonnet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SyntaxError {
    /// 1-based line of the offending token.
    pub line: usize,
    /// What the lexer or parser expected or found there.
    pub message: String,
}

impl From<lexer::LexError> for SyntaxError {
    fn from(e: lexer::LexError) -> Self {
        Self {
            line: e.line,
            message: e.message.to_owned(),
        }
    }
}

impl From<parser::ParseError> for SyntaxError {
    fn from(e: parser::ParseError) -> Self {
        Self {
            line: e.line,
            message: e.message,
        }
    }
}

/// Why a file was not formatted.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The file could not be read; nothing is written.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file given to `brewkit fmt`.
        path: std::path::PathBuf,
        /// Why the operating system refused it.
        source: std::io::Error,
    },
    /// The file is not valid Jsonnet, so it has no layout to give; it is left as it is.
    #[error("{}: not valid Jsonnet ({source}), left as it is (brewkit build definition-debug -f {} shows where)", path.display(), path.display())]
    Parse {
        /// The file given to `brewkit fmt`.
        path: std::path::PathBuf,
        /// Where and why the formatter's parser stopped.
        source: SyntaxError,
    },
    /// The formatted text lacks a comment of the file: a formatter bug; nothing is written.
    #[error("{}:{line}: formatting would lose the comment on line {line} ({comment:?}); the file is left as it is (please report this)", path.display())]
    CommentLost {
        /// The file given to `brewkit fmt`.
        path: std::path::PathBuf,
        /// The comment's first line in the file, 1-based.
        line: usize,
        /// The comment's text, without its marker.
        comment: String,
    },
    /// The formatted text would evaluate differently: a formatter bug; nothing is written.
    #[error("{}: the formatted text would not evaluate to what the file evaluates to; the file is left as it is (please report this)", path.display())]
    Changed {
        /// The file given to `brewkit fmt`.
        path: std::path::PathBuf,
    },
    /// The formatted text could not be written (temporary file, permissions or rename); the
    /// original file is unchanged, since it is only ever replaced by an atomic rename.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// The file given to `brewkit fmt` (when it is a symlink, the link, not its target).
        path: std::path::PathBuf,
        /// Why the operating system refused it.
        source: std::io::Error,
    },
}

/// `text` formatted as `jsonnetfmt` formats it.
pub fn format_text(text: &str) -> Result<String, SyntaxError> {
    let mut toks = lexer::lex(text)?;
    let eof = toks.len() - 1;
    let root = parser::parse(&mut toks)?;
    let mut root = imports::sort_imports(root, &mut toks);
    let first = root.first();
    // jsonnetfmt's passes, in its order: each sees what the one before changed (a trailing comma
    // follows a line break that `fix_newlines` added; blank lines are capped before commas move
    // fodder, so merged fodder may hold more).
    passes::remove_initial_newlines(&mut toks[first].fodder);
    let skip = passes::unstyled(&mut root, toks.len());
    passes::max_blank_lines(&mut toks, MAX_BLANK_LINES, &skip);
    let mut t = passes::Toks(&mut toks);
    passes::fix_newlines(&mut root, &mut t);
    passes::fix_trailing_commas(&mut root, &mut t);
    passes::fix_parens(&mut root, &mut t);
    passes::fix_plus_object(&mut root, &mut t);
    passes::no_redundant_slice_colon(&mut root, &mut t);
    passes::pretty_field_names(&mut root, &mut t);
    style::string_style(&mut toks)?;
    let skip = passes::unstyled(&mut root, toks.len());
    Ok(printer::print(&root, eof, &toks, &skip))
}

/// The first comment of `before` (its line, 1-based, and its text without the marker) that
/// `after` lacks. Comments are found by a scanner apart from the formatter's lexer, and compared
/// without their marker (`//`, `#`, `/* */`) and with whitespace runs made one space.
pub fn lost_comment(before: &str, after: &str) -> Option<(usize, String)> {
    safety::first_lost(before, after).map(|c| (c.line, c.text))
}

/// `jsonnetfmt`'s default limit of consecutive blank lines.
const MAX_BLANK_LINES: usize = 2;

/// Formats the file at `path`. With `check`, only tells whether it is formatted. Otherwise a
/// changed file is replaced atomically (written to a temporary file beside it, then renamed),
/// keeping its permissions; when `path` is a symlink, the file it points to is the one replaced
/// and the link stays. Returns whether the file was (or, with `check`, would be) changed.
///
/// Whatever the formatter does, a result that lacks a comment of the file, or that evaluates
/// differently (when the file evaluates), is refused before anything is written, with or
/// without `check`.
pub fn format_file(path: &Path, check: bool) -> Result<bool, FormatError> {
    format_file_with(path, check, format_text)
}

/// [`format_file`] with another formatter (the tests give it broken ones).
fn format_file_with(
    path: &Path,
    check: bool,
    format: impl Fn(&str) -> Result<String, SyntaxError>,
) -> Result<bool, FormatError> {
    let text = std::fs::read_to_string(path).map_err(|source| FormatError::Read {
        path: path.to_owned(),
        source,
    })?;
    let formatted = format(&text).map_err(|source| FormatError::Parse {
        path: path.to_owned(),
        source,
    })?;
    if formatted == text {
        return Ok(false);
    }
    match safety::check(path, &text, &formatted) {
        Ok(()) => {}
        Err(safety::Problem::Lost(comment)) => {
            return Err(FormatError::CommentLost {
                path: path.to_owned(),
                line: comment.line,
                comment: comment.text,
            })
        }
        Err(safety::Problem::Changed) => {
            return Err(FormatError::Changed {
                path: path.to_owned(),
            })
        }
    }
    if check {
        return Ok(true);
    }
    let write_error = |source| FormatError::Write {
        path: path.to_owned(),
        source,
    };
    // Renaming onto a symlink would replace the link with a regular file: write the file it
    // points to instead (in that file's directory, so that the rename stays atomic).
    let mut meta = std::fs::symlink_metadata(path).map_err(write_error)?;
    let target = if meta.file_type().is_symlink() {
        let target = std::fs::canonicalize(path).map_err(write_error)?;
        meta = std::fs::metadata(&target).map_err(write_error)?;
        target
    } else {
        path.to_owned()
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(write_error)?;
    temp.write_all(formatted.as_bytes()).map_err(write_error)?;
    temp.as_file()
        .set_permissions(meta.permissions())
        .map_err(write_error)?;
    temp.persist(&target).map_err(|e| write_error(e.error))?;
    Ok(true)
}

#[cfg(test)]
mod tests;
