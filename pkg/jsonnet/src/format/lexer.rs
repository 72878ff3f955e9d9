//! Splits Jsonnet source into tokens, each with the fodder (whitespace and comments) before it,
//! the way `jsonnetfmt` sees them: operators are runs of operator characters, a `//` or `#`
//! comment is a line end when it follows a token on its line and a paragraph otherwise, a `/* */`
//! comment is interstitial when it fits on one line.

use std::borrow::Cow;

use super::fodder::{self, Elem, Fodder};

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokKind {
    BraceL,
    BraceR,
    BracketL,
    BracketR,
    Comma,
    Dot,
    ParenL,
    ParenR,
    Semi,
    Dollar,
    /// `+`, `==`, `::`, `+:`, `=`…: the parser tells them apart by their text.
    Operator,
    /// Identifiers and keywords.
    Ident,
    Number,
    /// `"…"`; the text is what stands between the quotes, escapes as written.
    StrDouble,
    /// `'…'`, likewise.
    StrSingle,
    /// `@"…"`, the text as written between the quotes (doubled quotes kept).
    VerbatimDouble,
    /// `@'…'`, likewise.
    VerbatimSingle,
    /// `|||` text block; the text is the value: the lines without their indentation, each ending
    /// with a newline.
    Block,
    Eof,
}

/// A token and the fodder in front of it.
#[derive(Debug, Clone)]
pub(super) struct Token<'a> {
    pub kind: TokKind,
    /// As written (a slice of the source), or as a pass rewrote it.
    pub text: Cow<'a, str>,
    pub fodder: Fodder,
    /// 1-based line where the token starts, for error messages.
    pub line: usize,
}

impl Token<'_> {
    /// A token the formatter adds (a trailing comma, a `local`), with no fodder.
    pub(super) fn synthetic(kind: TokKind, text: &'static str) -> Self {
        Self {
            kind,
            text: Cow::Borrowed(text),
            fodder: Fodder::new(),
            line: 0,
        }
    }

    /// Whether this is the keyword or operator `text`.
    pub(super) fn is(&self, text: &str) -> bool {
        matches!(self.kind, TokKind::Ident | TokKind::Operator) && self.text == text
    }

    /// Whether this is a string literal of any kind.
    pub(super) fn is_string(&self) -> bool {
        matches!(
            self.kind,
            TokKind::StrDouble
                | TokKind::StrSingle
                | TokKind::VerbatimDouble
                | TokKind::VerbatimSingle
                | TokKind::Block
        )
    }
}

/// Why the source does not lex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LexError {
    pub line: usize,
    pub message: &'static str,
}

/// The keywords of the language (0.18: no `importbin`).
pub(super) const KEYWORDS: &[&str] = &[
    "assert",
    "else",
    "error",
    "false",
    "for",
    "function",
    "if",
    "import",
    "importstr",
    "in",
    "local",
    "null",
    "tailstrict",
    "then",
    "self",
    "super",
    "true",
];

fn is_operator_char(c: u8) -> bool {
    b"!$:~+-&|^=<>*/%".contains(&c)
}

struct Lexer<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    line: usize,
    line_start: usize,
}

impl<'a> Lexer<'a> {
    fn peek(&self, ahead: usize) -> u8 {
        self.src.get(self.pos + ahead).copied().unwrap_or(0)
    }

    fn at(&self, s: &str) -> bool {
        self.src[self.pos..].starts_with(s.as_bytes())
    }

    fn error(&self, message: &'static str) -> LexError {
        LexError {
            line: self.line,
            message,
        }
    }

    /// Skips spaces, tabs, carriage returns and newlines; returns how many newlines, and the
    /// indentation after the last (a tab counts 8).
    fn whitespace(&mut self) -> (usize, usize) {
        let mut newlines = 0;
        let mut indent = 0;
        while let Some(&c) = self.src.get(self.pos) {
            match c {
                b' ' => indent += 1,
                b'\t' => indent += 8,
                b'\r' => {}
                b'\n' => {
                    newlines += 1;
                    indent = 0;
                    self.line += 1;
                    self.line_start = self.pos + 1;
                }
                _ => break,
            }
            self.pos += 1;
        }
        (newlines, indent)
    }

    /// Advances over `len` bytes, counting the newlines in them.
    fn advance(&mut self, len: usize) {
        for i in self.pos..self.pos + len {
            if self.src[i] == b'\n' {
                self.line += 1;
                self.line_start = i + 1;
            }
        }
        self.pos += len;
    }

    fn slice(&self, start: usize, end: usize) -> Cow<'a, str> {
        Cow::Borrowed(&self.text[start..end])
    }

    /// A `//` or `#` comment, up to the end of its line (trailing whitespace dropped).
    fn line_comment(&mut self) -> String {
        let start = self.pos;
        while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
            self.pos += 1;
        }
        self.text[start..self.pos].trim_end().to_owned()
    }

    /// A `/* */` comment: its text and the column it starts at.
    fn block_comment(&mut self) -> Result<(String, usize), LexError> {
        let start = self.pos;
        let margin = self.pos - self.line_start;
        let Some(len) = self.text[start + 2..].find("*/") else {
            return Err(self.error("multi-line comment has no terminating */"));
        };
        self.advance(len + 4);
        Ok((self.text[start..self.pos].to_owned(), margin))
    }

    fn number(&mut self) -> Result<Cow<'a, str>, LexError> {
        let start = self.pos;
        let digits = |l: &mut Self| {
            let from = l.pos;
            while l.peek(0).is_ascii_digit() {
                l.pos += 1;
            }
            l.pos > from
        };
        if self.peek(0) == b'0' {
            self.pos += 1;
        } else {
            digits(self);
        }
        if self.peek(0) == b'.' {
            self.pos += 1;
            if !digits(self) {
                return Err(self.error("junk after decimal point in number"));
            }
        }
        if matches!(self.peek(0), b'e' | b'E') {
            self.pos += 1;
            if matches!(self.peek(0), b'+' | b'-') {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(self.error("junk after exponent in number"));
            }
        }
        Ok(self.slice(start, self.pos))
    }

    /// A quoted string after its opening quote: the text up to the closing quote.
    fn quoted(&mut self, quote: u8) -> Result<Cow<'a, str>, LexError> {
        let start = self.pos;
        loop {
            match self.src.get(self.pos) {
                None => return Err(self.error("unterminated string")),
                Some(&c) if c == quote => break,
                Some(b'\\') if self.pos + 1 < self.src.len() => self.advance(2),
                Some(_) => self.advance(1),
            }
        }
        let text = self.slice(start, self.pos);
        self.pos += 1;
        Ok(text)
    }

    /// A verbatim string after `@` and its opening quote (a doubled quote stands for one).
    fn verbatim(&mut self, quote: u8) -> Result<Cow<'a, str>, LexError> {
        let start = self.pos;
        loop {
            match self.src.get(self.pos) {
                None => return Err(self.error("unterminated verbatim string")),
                Some(&c) if c == quote && self.peek(1) == quote => self.pos += 2,
                Some(&c) if c == quote => break,
                Some(_) => self.advance(1),
            }
        }
        let text = self.slice(start, self.pos);
        self.pos += 1;
        Ok(text)
    }

    /// A text block after its `|||`: the value (the lines without the first line's indentation).
    fn text_block(&mut self) -> Result<String, LexError> {
        while matches!(self.peek(0), b' ' | b'\t' | b'\r') {
            self.pos += 1;
        }
        if self.peek(0) != b'\n' {
            return Err(self.error("text block syntax requires new line after |||"));
        }
        self.advance(1);
        let mut value = String::new();
        while self.peek(0) == b'\n' {
            self.advance(1);
            value.push('\n');
        }
        let first = self.pos;
        let indent_len = self.src[first..]
            .iter()
            .take_while(|c| matches!(c, b' ' | b'\t'))
            .count();
        if indent_len == 0 {
            return Err(self.error("text block's first line must start with whitespace"));
        }
        let indent = &self.src[first..first + indent_len];
        loop {
            self.pos += indent_len;
            let start = self.pos;
            while self.peek(0) != b'\n' {
                if self.pos >= self.src.len() {
                    return Err(self.error("unexpected end of file in text block"));
                }
                self.pos += 1;
            }
            // A CRLF file's carriage returns do not make it into the value.
            let line = &self.text[start..self.pos];
            value.push_str(line.strip_suffix('\r').unwrap_or(line));
            value.push('\n');
            self.advance(1);
            while self.peek(0) == b'\n' {
                self.advance(1);
                value.push('\n');
            }
            if !self.src[self.pos..].starts_with(indent) {
                while matches!(self.peek(0), b' ' | b'\t') {
                    self.pos += 1;
                }
                if !self.at("|||") {
                    return Err(self.error("text block not terminated with |||"));
                }
                self.pos += 3;
                return Ok(value);
            }
        }
    }

    /// An operator: the longest run of operator characters that does not start a comment or a
    /// text block, wound back so that it does not end with `+ - ~ ! $` (unless one character).
    fn operator(&mut self) -> Cow<'a, str> {
        let start = self.pos;
        while is_operator_char(self.peek(0)) {
            if self.at("//") || self.at("/*") || self.at("|||") {
                break;
            }
            self.pos += 1;
        }
        while self.pos > start + 1 && b"+-~!$".contains(&self.src[self.pos - 1]) {
            self.pos -= 1;
        }
        self.slice(start, self.pos)
    }
}

/// Splits a multi-line `/* */` comment into lines, taking up to `margin` columns of leading
/// whitespace off the later lines (their indentation relative to the comment's start stays).
fn paragraph_lines(comment: &str, margin: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for (i, line) in comment.split('\n').enumerate() {
        let line = line.trim_end();
        if i == 0 {
            lines.push(line.to_owned());
            continue;
        }
        let strip = line
            .bytes()
            .take(margin)
            .take_while(|c| matches!(c, b' ' | b'\t'))
            .count();
        lines.push(line[strip..].to_owned());
    }
    // Lines that all start with `*` line up under the first line's `*`.
    if lines[1..].iter().all(|l| l.starts_with('*')) {
        for line in &mut lines[1..] {
            line.insert(0, ' ');
        }
    }
    lines
}

/// The tokens of `text`, the last one [`TokKind::Eof`] holding the fodder at the end of the file.
pub(super) fn lex(text: &str) -> Result<Vec<Token<'_>>, LexError> {
    let mut l = Lexer {
        src: text.as_bytes(),
        text,
        pos: 0,
        line: 1,
        line_start: 0,
    };
    let mut tokens = Vec::new();
    let mut fodder = Fodder::new();
    // Whether nothing but whitespace and comments came since the last line break.
    let mut fresh_line = true;
    loop {
        let (newlines, indent) = l.whitespace();
        if l.pos >= l.src.len() {
            tokens.push(Token {
                kind: TokKind::Eof,
                text: Cow::Borrowed(""),
                fodder,
                line: l.line,
            });
            return Ok(tokens);
        }
        if newlines > 0 {
            fodder::push(&mut fodder, Elem::line_end(newlines - 1, indent, None));
            fresh_line = true;
        }
        let line = l.line;
        let c = l.peek(0);
        if c == b'#' || l.at("//") {
            let comment = l.line_comment();
            let (newlines, indent) = l.whitespace();
            let blanks = newlines.saturating_sub(1);
            if fresh_line {
                fodder.push(Elem::paragraph(blanks, indent, vec![comment]));
            } else {
                fodder::push(&mut fodder, Elem::line_end(blanks, indent, Some(comment)));
            }
            fresh_line = true;
            continue;
        }
        if l.at("/*") {
            let (comment, margin) = l.block_comment()?;
            let (newlines, indent) = l.whitespace();
            if !comment.contains('\n') {
                fodder.push(Elem::interstitial(comment));
                if newlines > 0 {
                    fodder::push(&mut fodder, Elem::line_end(newlines - 1, indent, None));
                    fresh_line = true;
                }
            } else {
                // A paragraph starts a line of its own (`push` breaks the line before it).
                let lines = paragraph_lines(&comment, margin);
                let indent = if newlines == 0 { 0 } else { indent };
                fodder::push(
                    &mut fodder,
                    Elem::paragraph(newlines.max(1) - 1, indent, lines),
                );
                fresh_line = true;
            }
            continue;
        }
        let single = match c {
            b'{' => Some(TokKind::BraceL),
            b'}' => Some(TokKind::BraceR),
            b'[' => Some(TokKind::BracketL),
            b']' => Some(TokKind::BracketR),
            b',' => Some(TokKind::Comma),
            b'.' => Some(TokKind::Dot),
            b'(' => Some(TokKind::ParenL),
            b')' => Some(TokKind::ParenR),
            b';' => Some(TokKind::Semi),
            _ => None,
        };
        let (kind, text) = if let Some(kind) = single {
            l.pos += 1;
            (kind, l.slice(l.pos - 1, l.pos))
        } else if c.is_ascii_digit() {
            (TokKind::Number, l.number()?)
        } else if c == b'"' || c == b'\'' {
            l.pos += 1;
            let kind = if c == b'"' {
                TokKind::StrDouble
            } else {
                TokKind::StrSingle
            };
            (kind, l.quoted(c)?)
        } else if c == b'@' {
            let quote = l.peek(1);
            let kind = match quote {
                b'"' => TokKind::VerbatimDouble,
                b'\'' => TokKind::VerbatimSingle,
                _ => return Err(l.error("couldn't lex verbatim string, junk after '@'")),
            };
            l.pos += 2;
            (kind, l.verbatim(quote)?)
        } else if l.at("|||") {
            l.pos += 3;
            (TokKind::Block, Cow::Owned(l.text_block()?))
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = l.pos;
            while l.peek(0).is_ascii_alphanumeric() || l.peek(0) == b'_' {
                l.pos += 1;
            }
            (TokKind::Ident, l.slice(start, l.pos))
        } else if is_operator_char(c) {
            let op = l.operator();
            if op == "$" {
                (TokKind::Dollar, op)
            } else {
                (TokKind::Operator, op)
            }
        } else {
            return Err(l.error("could not lex the character"));
        };
        tokens.push(Token {
            kind,
            text,
            fodder: std::mem::take(&mut fodder),
            line,
        });
        fresh_line = false;
    }
}
