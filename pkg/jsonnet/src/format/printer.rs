//! Prints the tree with `jsonnetfmt`'s spacing and indentation. Each construct decides, from the
//! fodder before its parts, whether they stay lined up with something on the current line or go
//! one step in from the enclosing indentation. The column lining up is based on is the output
//! column, except after the few fodders `jsonnetfmt` leaves as written, where it keeps counting
//! from where it was (as `jsonnetfmt` does).

use super::ast::*;
use super::fodder::{Fodder, Kind};
use super::lexer::{TokKind, Token};

mod tokens;

/// Indentation of the lines inside a construct: `base` for lines that start a new part,
/// `line_up` for lines that continue one.
#[derive(Debug, Clone, Copy)]
struct Indent {
    base: usize,
    line_up: usize,
}

/// Spaces per indentation step.
const STEP: usize = 2;

/// One step in from `old`, for what starts on a line of its own.
fn step_in(old: Indent) -> Indent {
    let base = old.base + STEP;
    Indent {
        base,
        line_up: base,
    }
}

fn starts_on_line(fodder: &Fodder) -> bool {
    fodder.first().is_none_or(|e| e.kind == Kind::Interstitial)
}

pub(super) struct Printer<'a> {
    toks: &'a [Token<'a>],
    out: String,
    column: usize,
    /// Whether a comment has been printed yet (a `#!` line is kept only as the first).
    first_elem: bool,
    /// Tokens whose comments keep their `#` (see [`super::passes::unstyled`]).
    unstyled: &'a [bool],
    /// Whether the fodder being printed is one of those.
    keep_marker: bool,
    /// Whether the next fodder is printed with a space before it that the column does not count.
    uncounted_space: bool,
    /// Whether the next fodder is printed without a space before it that the column counts.
    phantom_space: bool,
}

/// The text of `root` with the fodder at the end of the file.
pub(super) fn print(root: &Expr, eof: Tok, toks: &[Token<'_>], unstyled: &[bool]) -> String {
    let mut p = Printer {
        toks,
        unstyled,
        keep_marker: false,
        uncounted_space: false,
        phantom_space: false,
        out: String::with_capacity(toks.len() * 8),
        column: 0,
        first_elem: true,
    };
    let top = Indent {
        base: 0,
        line_up: 0,
    };
    p.expr(root, top, false);
    p.fill(&toks[eof].fodder, true, false, Some((0, 0)), true);
    if !p.out.ends_with('\n') {
        p.out.push('\n');
    }
    p.out
}

impl<'a> Printer<'a> {
    fn fodder(&self, t: Tok) -> &'a Fodder {
        &self.toks[t].fodder
    }

    /// Same line: line up at `line_up`; own line: one step in.
    fn new_indent(&self, t: Tok, old: Indent, line_up: usize) -> Indent {
        if starts_on_line(self.fodder(t)) {
            Indent {
                base: old.base,
                line_up,
            }
        } else {
            step_in(old)
        }
    }

    /// As [`Self::new_indent`], but lines on the same line start at `line_up` too.
    fn new_indent_strong(&self, t: Tok, old: Indent, line_up: usize) -> Indent {
        if starts_on_line(self.fodder(t)) {
            Indent {
                base: line_up,
                line_up,
            }
        } else {
            step_in(old)
        }
    }

    /// Same line: line up continuation lines at `line_up`; own line: as before.
    fn align(&self, t: Tok, old: Indent, line_up: usize) -> Indent {
        if starts_on_line(self.fodder(t)) {
            Indent {
                base: old.base,
                line_up,
            }
        } else {
            old
        }
    }

    /// The indentation of continuation lines of an expression that starts here (after a space
    /// when `space`): lined up with its start.
    fn align_here(&self, e: &Expr, old: Indent, space: bool) -> Indent {
        self.align(e.first(), old, self.column + usize::from(space))
    }

    /// Whether the fodder before `t` breaks the line.
    fn breaks(&self, t: Tok) -> bool {
        super::fodder::has_newline(self.fodder(t))
    }

    fn spaces(&mut self, n: usize) {
        self.out.extend(std::iter::repeat_n(' ', n));
    }

    fn expr(&mut self, e: &Expr, indent: Indent, space: bool) {
        match e {
            Expr::Atom(t) => self.atom(*t, indent, space),
            Expr::Apply(a) => self.apply(a, indent, space),
            Expr::ApplyBrace(left, right) => {
                let indent = self.align_here(left, indent, space);
                self.expr(left, indent, space);
                self.expr(right, indent, true);
            }
            Expr::Array(a) => self.array(a, indent, space),
            Expr::ArrayComp(a) => {
                self.tok(a.open, space, true, indent.line_up);
                let inner = self.new_indent(a.body.first(), indent, self.column);
                self.expr(&a.body, inner, false);
                if let Some(comma) = a.comma {
                    self.tok(comma, false, false, inner.line_up);
                }
                self.specs(&a.specs, inner);
                self.tok2(a.close, true, false, inner.line_up, indent.base);
            }
            Expr::Assert(a) => {
                self.tok(a.assert, space, true, indent.line_up);
                let inner = self.new_indent(a.cond.first(), indent, self.column + 1);
                self.expr(&a.cond, inner, true);
                if let Some((colon, message)) = &a.message {
                    self.tok(*colon, true, true, inner.line_up);
                    self.expr(message, inner, true);
                }
                self.tok(a.semi, false, false, inner.line_up);
                self.expr(&a.rest, indent, true);
            }
            Expr::Binary(b) => {
                // Continuation lines line up with the left operand, as in `a &&\n b &&\n c`;
                // when the operator or the right operand starts a line, what is inside the
                // operands is indented from there too.
                let broken = self.breaks(b.op) || self.breaks(b.right.first());
                let indent = if broken && starts_on_line(self.fodder(b.left.first())) {
                    let line_up = self.column + usize::from(space);
                    Indent {
                        base: line_up,
                        line_up,
                    }
                } else {
                    self.align_here(&b.left, indent, space)
                };
                self.expr(&b.left, indent, space);
                self.tok(b.op, true, true, indent.line_up);
                self.expr(&b.right, indent, true);
            }
            Expr::Conditional(c) => {
                self.tok(c.if_, space, true, indent.line_up);
                let inner = self.new_indent(c.cond.first(), indent, self.column + 1);
                self.expr(&c.cond, inner, true);
                self.tok(c.then, true, true, indent.base);
                let inner = self.new_indent(c.branch_true.first(), indent, self.column + 1);
                self.expr(&c.branch_true, inner, true);
                if let Some((else_, branch)) = &c.branch_false {
                    self.tok(*else_, true, true, indent.base);
                    let inner = self.new_indent(branch.first(), indent, self.column + 1);
                    self.expr(branch, inner, true);
                }
            }
            Expr::Error(t, body) => {
                self.tok(*t, space, true, indent.line_up);
                let inner = self.new_indent(body.first(), indent, self.column + 1);
                self.expr(body, inner, true);
            }
            Expr::Function(f) => {
                self.tok(f.function, space, true, indent.line_up);
                self.params(&f.params, indent);
                let inner = self.new_indent(f.body.first(), indent, self.column + 1);
                self.expr(&f.body, inner, true);
            }
            Expr::Import(t, file) => {
                self.tok(*t, space, true, indent.line_up);
                let inner = self.new_indent(*file, indent, self.column + 1);
                self.atom(*file, inner, true);
            }
            Expr::InSuper(e, in_, super_) => {
                // jsonnetfmt prints a space before `e` even at the start of a line or after `[`,
                // and does not count it.
                self.uncounted_space = true;
                self.expr(e, indent, space);
                self.tok(*in_, true, true, indent.line_up);
                self.tok(*super_, true, true, indent.line_up);
            }
            Expr::Index(i) => {
                self.expr(&i.target, indent, space);
                self.access(&i.access, indent);
            }
            Expr::Local(l) => self.local(l, indent, space),
            Expr::Object(o) => {
                self.tok(o.open, space, true, indent.line_up);
                let first = o.fields.first().map_or(o.close, |f| f.member.first());
                let inner = self.new_indent(first, indent, self.column + 1);
                self.fields(&o.fields, inner, true);
                self.tok2(
                    o.close,
                    !o.fields.is_empty(),
                    true,
                    inner.line_up,
                    indent.base,
                );
            }
            Expr::ObjectComp(o) => {
                self.tok(o.open, space, true, indent.line_up);
                let first = o.fields.first().map_or(o.close, |f| f.member.first());
                let inner = self.new_indent(first, indent, self.column + 1);
                self.fields(&o.fields, inner, true);
                self.specs(&o.specs, inner);
                self.tok2(o.close, true, true, inner.line_up, indent.base);
            }
            Expr::Parens(p) => {
                self.tok(p.open, space, true, indent.line_up);
                let inner = self.new_indent_strong(p.expr.first(), indent, self.column);
                self.expr(&p.expr, inner, false);
                self.tok2(p.close, false, false, inner.line_up, indent.base);
            }
            Expr::SuperIndex(t, access) => {
                self.tok(*t, space, true, indent.line_up);
                if let Access::Dot(dot, id) = **access {
                    // Unlike `a.b`, lined up after the dot.
                    self.tok(dot, false, false, indent.line_up);
                    let inner = self.new_indent(id, indent, self.column);
                    self.tok(id, false, false, inner.line_up);
                } else {
                    self.access(access, indent);
                }
            }
            Expr::Unary(op, e) => {
                self.tok(*op, space, true, indent.line_up);
                // jsonnetfmt counts a space between the operator and a `$` (`-$.x`) that it does
                // not print.
                let mut leftmost: &Expr = e;
                while let Some(left) = match leftmost {
                    Expr::Apply(a) => Some(&a.target),
                    Expr::ApplyBrace(left, _) => Some(&**left),
                    Expr::Index(i) => Some(&i.target),
                    _ => None,
                } {
                    leftmost = left;
                }
                if matches!(leftmost, Expr::Atom(t) if self.toks[*t].kind == TokKind::Dollar) {
                    self.phantom_space = true;
                }
                let inner = self.new_indent(e.first(), indent, self.column);
                self.expr(e, inner, false);
            }
        }
    }

    fn apply(&mut self, a: &Apply, indent: Indent, space: bool) {
        let aligned = self.align_here(&a.target, indent, space);
        self.expr(&a.target, aligned, space);
        self.tok(a.open, false, false, aligned.line_up);
        let firsts: Vec<Tok> = a
            .args
            .iter()
            .map(|arg| arg.name.map_or_else(|| arg.expr.first(), |(id, _)| id))
            .collect();
        let first = firsts.first().copied().unwrap_or(a.close);
        let strong = firsts.iter().skip(1).any(|&t| self.breaks(t));
        let inner = if strong {
            self.new_indent_strong(first, indent, self.column)
        } else {
            self.new_indent(first, indent, self.column)
        };
        for (i, arg) in a.args.iter().enumerate() {
            let space = i > 0;
            if let Some((id, eq)) = arg.name {
                self.tok(id, space, true, inner.line_up);
                // jsonnetfmt prints a space between a comment (or the comma) and the name, but
                // does not count it: what lines up later on the line is one column to the left.
                let counted = match self.fodder(id).last() {
                    Some(last) => last.kind != Kind::Interstitial,
                    None => !space,
                };
                if !counted {
                    self.column -= 1;
                }
                self.tok(eq, false, false, inner.line_up);
                self.expr(&arg.expr, inner, false);
            } else {
                self.expr(&arg.expr, inner, space);
            }
            if let Some(comma) = arg.comma {
                self.tok(comma, false, false, inner.line_up);
            }
        }
        self.tok2(a.close, false, false, inner.line_up, indent.base);
        if let Some(t) = a.tailstrict {
            self.tok(t, true, true, indent.base);
        }
    }

    fn array(&mut self, a: &Array, indent: Indent, space: bool) {
        self.tok(a.open, space, true, indent.line_up);
        let first = a.elems.first().map_or(a.close, |(e, _)| e.first());
        let strong = a.elems.iter().skip(1).any(|(e, _)| self.breaks(e.first()));
        let inner = if strong {
            self.new_indent_strong(first, indent, self.column)
        } else {
            self.new_indent(first, indent, self.column)
        };
        for (i, (elem, comma)) in a.elems.iter().enumerate() {
            self.expr(elem, inner, i > 0);
            if let Some(comma) = comma {
                self.tok(*comma, false, false, inner.line_up);
            }
        }
        self.tok2(
            a.close,
            !a.elems.is_empty(),
            false,
            inner.line_up,
            indent.base,
        );
    }

    fn specs(&mut self, specs: &[Spec], indent: Indent) {
        for spec in specs {
            match spec {
                Spec::For {
                    for_,
                    id,
                    in_,
                    expr,
                } => {
                    self.tok(*for_, true, true, indent.line_up);
                    self.tok(*id, true, true, indent.line_up);
                    self.tok(*in_, true, true, indent.line_up);
                    let inner = self.new_indent(expr.first(), indent, self.column);
                    self.expr(expr, inner, true);
                }
                Spec::If { if_, expr } => {
                    self.tok(*if_, true, true, indent.line_up);
                    let inner = self.new_indent(expr.first(), indent, self.column);
                    self.expr(expr, inner, true);
                }
            }
        }
    }

    fn params(&mut self, p: &Params, indent: Indent) {
        self.tok(p.open, false, false, indent.line_up);
        let first = p.params.first().map_or(p.close, |p| p.id);
        let inner = self.new_indent(first, indent, self.column);
        for (i, param) in p.params.iter().enumerate() {
            self.tok(param.id, i > 0, true, inner.line_up);
            if let Some((eq, default)) = &param.default {
                self.tok(*eq, false, false, inner.line_up);
                self.expr(default, inner, false);
            }
            if let Some(comma) = param.comma {
                self.tok(comma, false, false, inner.line_up);
            }
        }
        self.tok2(p.close, false, false, inner.line_up, indent.line_up);
    }

    fn access(&mut self, access: &Access, indent: Indent) {
        match access {
            Access::Dot(dot, id) => {
                self.tok(*dot, false, false, indent.line_up);
                let inner = self.new_indent(*id, indent, self.column - 1);
                self.tok(*id, false, false, inner.line_up);
            }
            Access::Bracket(open, index, close) => {
                self.tok(*open, false, false, indent.line_up);
                let inner = self.new_indent(index.first(), indent, self.column);
                self.expr(index, inner, false);
                self.tok2(*close, false, false, inner.line_up, indent.base);
            }
            Access::Slice(s) => {
                self.tok(s.open, false, false, indent.line_up);
                let mut inner = Indent {
                    base: 0,
                    line_up: 0,
                };
                if let Some(start) = &s.start {
                    inner = self.new_indent(start.first(), indent, self.column);
                    self.expr(start, inner, false);
                }
                // The rest lines up after the start, or one step in when the colon starts a
                // line. jsonnetfmt leaves the fodder before the colon of `a[b:]` and before the
                // `]` as written.
                if s.start.is_none() || s.end.is_some() || s.step.is_some() {
                    inner = self.new_indent(s.colon, indent, self.column);
                    self.tok(s.colon, false, false, inner.line_up);
                } else {
                    // Nor does it count that colon.
                    self.tok_as_written(s.colon);
                    self.column -= 1;
                }
                if let Some(end) = &s.end {
                    self.expr(end, inner, false);
                }
                if let Some(colon) = s.step_colon {
                    self.tok(colon, false, false, inner.line_up);
                    if let Some(step) = &s.step {
                        self.expr(step, inner, false);
                    }
                }
                self.tok_as_written(s.close);
            }
        }
    }

    fn local(&mut self, l: &Local, indent: Indent, space: bool) {
        self.tok(l.local, space, true, indent.line_up);
        let inner = self.new_indent(l.binds[0].id, indent, self.column + 1);
        for bind in &l.binds {
            self.tok(bind.id, true, true, inner.line_up);
            if let Some(p) = &bind.params {
                self.params(p, inner);
            }
            self.tok(bind.eq, true, true, inner.line_up);
            let body = self.new_indent(bind.body.first(), inner, self.column + 1);
            self.expr(&bind.body, body, true);
            self.tok2(bind.end, false, false, body.line_up, indent.base);
        }
        self.expr(&l.body, indent, true);
    }

    fn fields(&mut self, fields: &[Field], indent: Indent, space_first: bool) {
        for (i, field) in fields.iter().enumerate() {
            let space = i > 0 || space_first;
            match &field.member {
                Member::Local {
                    local,
                    id,
                    params,
                    eq,
                    body,
                } => {
                    self.tok(*local, space, true, indent.line_up);
                    self.tok(*id, true, true, indent.line_up);
                    if let Some(p) = params {
                        self.params(p, indent);
                    }
                    self.tok(*eq, true, true, indent.line_up);
                    let inner = self.new_indent(body.first(), indent, self.column);
                    self.expr(body, inner, true);
                }
                Member::Assert {
                    assert,
                    cond,
                    message,
                } => {
                    self.tok(*assert, space, true, indent.line_up);
                    let inner = self.new_indent(cond.first(), indent, self.column + 1);
                    self.expr(cond, indent, true);
                    if let Some((colon, message)) = message {
                        self.tok(*colon, true, true, inner.line_up);
                        self.expr(message, inner, true);
                    }
                }
                Member::Field {
                    name,
                    params,
                    op,
                    body,
                } => {
                    match name {
                        FieldName::Id(t) => self.tok(*t, space, true, indent.line_up),
                        FieldName::Str(t) => self.atom(*t, indent, space),
                        FieldName::Expr(open, e, close) => {
                            self.tok(*open, space, true, indent.line_up);
                            self.expr(e, indent, false);
                            self.tok(*close, false, false, indent.line_up);
                        }
                    }
                    if let Some(p) = params {
                        self.params(p, indent);
                    }
                    self.tok(*op, false, false, indent.line_up);
                    let inner = self.new_indent(body.first(), indent, self.column);
                    self.expr(body, inner, true);
                }
            }
            if let Some(comma) = field.comma {
                self.tok(comma, false, false, indent.line_up);
            }
        }
    }
}
