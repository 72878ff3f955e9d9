//! Fodder: the whitespace and comments in front of a token, in the shape `jsonnetfmt` reasons
//! about them. The formatter never reflows text; it rewrites fodder (line breaks, blank lines,
//! indentation, comment markers) and prints tokens between it.

/// One piece of fodder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Elem {
    pub kind: Kind,
    /// Blank lines after the line end (not for [`Kind::Interstitial`]).
    pub blanks: usize,
    /// Indentation of the line that follows (not for [`Kind::Interstitial`]): as written (a tab
    /// counts 8), used where `jsonnetfmt` leaves it; elsewhere the printer decides.
    pub indent: usize,
    /// The comment: none for a bare line end, one line for `//`, `#` and `/* */` on one line,
    /// the lines of a `/* */` paragraph otherwise (later lines with their relative indentation).
    pub comment: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A `/* */` comment between tokens on one line.
    Interstitial,
    /// The end of a line, with the comment that ends it if any.
    LineEnd,
    /// Comment lines of their own.
    Paragraph,
}

/// The fodder in front of a token.
pub(super) type Fodder = Vec<Elem>;

impl Elem {
    pub(super) fn line_end(blanks: usize, indent: usize, comment: Option<String>) -> Self {
        Self {
            kind: Kind::LineEnd,
            blanks,
            indent,
            comment: comment.into_iter().collect(),
        }
    }

    pub(super) fn interstitial(comment: String) -> Self {
        Self {
            kind: Kind::Interstitial,
            blanks: 0,
            indent: 0,
            comment: vec![comment],
        }
    }

    pub(super) fn paragraph(blanks: usize, indent: usize, lines: Vec<String>) -> Self {
        Self {
            kind: Kind::Paragraph,
            blanks,
            indent,
            comment: lines,
        }
    }
}

/// Whether the fodder ends at the start of a fresh line.
pub(super) fn has_clean_endline(fodder: &Fodder) -> bool {
    fodder.last().is_some_and(|e| e.kind != Kind::Interstitial)
}

/// Whether the fodder breaks the line anywhere.
pub(super) fn has_newline(fodder: &Fodder) -> bool {
    fodder.iter().any(|e| e.kind != Kind::Interstitial)
}

/// Appends `elem`, merging a bare line end into a line end already there (a line end with a
/// comment after a line break becomes a one-line paragraph) and breaking the line before a
/// paragraph.
pub(super) fn push(fodder: &mut Fodder, elem: Elem) {
    if !has_clean_endline(fodder) && elem.kind == Kind::Paragraph {
        fodder.push(Elem::line_end(0, elem.indent, None));
    }
    if has_clean_endline(fodder) && elem.kind == Kind::LineEnd {
        if elem.comment.is_empty() {
            let last = fodder.last_mut().expect("a clean line end");
            last.indent = elem.indent;
            last.blanks += elem.blanks;
        } else {
            fodder.push(Elem {
                kind: Kind::Paragraph,
                ..elem
            });
        }
    } else {
        fodder.push(elem);
    }
}

/// `a` then `b`, the first element of `b` merged as [`push`] does.
pub(super) fn concat(mut a: Fodder, b: Fodder) -> Fodder {
    if a.is_empty() {
        return b;
    }
    let mut rest = b.into_iter();
    if let Some(first) = rest.next() {
        push(&mut a, first);
        a.extend(rest);
    }
    a
}

/// Moves all of `from` to the front of `to`.
pub(super) fn move_front(to: &mut Fodder, from: &mut Fodder) {
    if from.is_empty() {
        return;
    }
    let tail = std::mem::take(to);
    *to = concat(std::mem::take(from), tail);
}

/// Makes the fodder end with a line break.
pub(super) fn ensure_clean_newline(fodder: &mut Fodder) {
    if !has_clean_endline(fodder) {
        push(fodder, Elem::line_end(0, 0, None));
    }
}
