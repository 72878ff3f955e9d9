//! Printing of tokens and of the fodder before them: comments, line breaks, indentation.

use super::{Indent, Printer, STEP};
use crate::format::ast::Tok;
use crate::format::fodder::{Fodder, Kind};
use crate::format::lexer::TokKind;

impl Printer<'_> {
    /// Prints fodder: line breaks indented `all_but_last` except the last at `last`, or as
    /// written when `indents` is `None` (where jsonnetfmt leaves the indentation alone; its idea
    /// of the column then stays where it was, and so does ours).
    pub(super) fn fill(
        &mut self,
        fodder: &Fodder,
        mut space: bool,
        separate: bool,
        indents: Option<(usize, usize)>,
        at_end: bool,
    ) {
        let uncounted = std::mem::take(&mut self.uncounted_space) && !space;
        let phantom = std::mem::take(&mut self.phantom_space) && !space;
        space |= uncounted;
        let breaks = fodder
            .iter()
            .filter(|e| e.kind != Kind::Interstitial)
            .count();
        let mut seen = 0;
        let mut last_indent = 0;
        let mut column = self.column;
        for (i, elem) in fodder.iter().enumerate() {
            let first_elem = self.first_elem && !self.keep_marker;
            if !self.keep_marker {
                self.first_elem = false;
            }
            if elem.kind == Kind::Interstitial {
                if space {
                    self.out.push(' ');
                    column += 1;
                }
                self.out.push_str(&elem.comment[0]);
                // jsonnetfmt counts a comment's bytes (a string's characters).
                column += elem.comment[0].len();
                space = true;
                continue;
            }
            seen += 1;
            let indent = match indents {
                Some((all_but_last, _)) if seen < breaks => all_but_last,
                Some((_, last)) => last,
                None => elem.indent,
            };
            let comment = elem.comment.as_slice();
            if elem.kind == Kind::LineEnd {
                if let Some(c) = comment.first() {
                    self.out.push_str("  ");
                    self.comment_line(c, first_elem);
                }
                self.out.push('\n');
            } else {
                for (j, line) in comment.iter().enumerate() {
                    if !line.is_empty() {
                        if j > 0 {
                            self.spaces(last_indent);
                        }
                        if comment.len() == 1 {
                            self.comment_line(line, first_elem);
                        } else {
                            self.out.push_str(line);
                        }
                    }
                    self.out.push('\n');
                }
            }
            if !(at_end && i + 1 == fodder.len()) {
                for _ in 0..elem.blanks {
                    self.out.push('\n');
                }
                self.spaces(indent);
            }
            column = indent;
            last_indent = indent;
            space = false;
        }
        if separate && space {
            self.out.push(' ');
            column += 1;
        }
        // Whether a space before this fodder shows (before its first comment, or as the space
        // that separates the token when there is no fodder).
        let space_shows = match fodder.first() {
            Some(first) => first.kind == Kind::Interstitial,
            None => separate,
        };
        if uncounted && space_shows {
            column -= 1;
        }
        if phantom && space_shows {
            column += 1;
        }
        if indents.is_some() {
            self.column = column;
        }
    }

    /// A one-line comment, `#` made `//` (but a `#!` first line).
    fn comment_line(&mut self, line: &str, first_elem: bool) {
        match line.strip_prefix('#') {
            Some(rest) if !(self.keep_marker || first_elem && rest.starts_with('!')) => {
                self.out.push_str("//");
                self.out.push_str(rest);
            }
            _ => self.out.push_str(line),
        }
    }

    /// A token and its fodder, all line breaks at `indent`.
    pub(super) fn tok(&mut self, t: Tok, space: bool, separate: bool, indent: usize) {
        self.tok2(t, space, separate, indent, indent);
    }

    /// A token and its fodder, the last line break at `last`, the others at `all_but_last`.
    pub(super) fn tok2(
        &mut self,
        t: Tok,
        space: bool,
        separate: bool,
        all_but_last: usize,
        last: usize,
    ) {
        self.tok_indented(t, space, separate, Some((all_but_last, last)));
    }

    /// A token whose fodder keeps the indentation it was written with.
    pub(super) fn tok_as_written(&mut self, t: Tok) {
        self.tok_indented(t, false, false, None);
    }

    fn tok_indented(
        &mut self,
        t: Tok,
        space: bool,
        separate: bool,
        indents: Option<(usize, usize)>,
    ) {
        let toks = self.toks;
        let tok = &toks[t];
        self.keep_marker = self.unstyled.get(t).copied().unwrap_or(false);
        self.fill(&tok.fodder, space, separate, indents, false);
        self.keep_marker = false;
        self.out.push_str(&tok.text);
        self.column += tok.text.chars().count();
    }

    /// A literal, variable, string or text block.
    pub(super) fn atom(&mut self, t: Tok, indent: Indent, space: bool) {
        let toks = self.toks;
        let tok = &toks[t];
        self.keep_marker = self.unstyled.get(t).copied().unwrap_or(false);
        let line_up = Some((indent.line_up, indent.line_up));
        self.fill(&tok.fodder, space, true, line_up, false);
        self.keep_marker = false;
        match tok.kind {
            TokKind::StrSingle => self.quoted(&tok.text, "'", "'"),
            TokKind::StrDouble => self.quoted(&tok.text, "\"", "\""),
            TokKind::VerbatimSingle => self.quoted(&tok.text, "@'", "'"),
            TokKind::VerbatimDouble => self.quoted(&tok.text, "@\"", "\""),
            TokKind::Block => self.block(&tok.text, indent.base),
            _ => {
                self.out.push_str(&tok.text);
                self.column += tok.text.chars().count();
            }
        }
    }

    fn quoted(&mut self, text: &str, open: &str, close: &str) {
        self.out.push_str(open);
        self.out.push_str(text);
        self.out.push_str(close);
        self.column += open.len() + text.chars().count() + close.len();
    }

    /// A text block, its lines one step in from `base`, its closing `|||` at `base`.
    fn block(&mut self, value: &str, base: usize) {
        self.out.push_str("|||\n");
        let mut lines = value.split('\n').peekable();
        while let Some(line) = lines.next() {
            if lines.peek().is_none() {
                break;
            }
            if !line.is_empty() {
                self.spaces(base + STEP);
                self.out.push_str(line);
            }
            self.out.push('\n');
        }
        self.spaces(base);
        self.out.push_str("|||");
        self.column = base + 3;
    }
}
