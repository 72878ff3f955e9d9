//! The passes that change line breaks and shape before printing, each one a rule of
//! `jsonnetfmt`: line breaks spread over a whole list, trailing commas follow line breaks,
//! `((e))` loses a pair of parentheses, `a + {…}` becomes `a {…}`, `a[b:c:]` loses its last colon,
//! and field names lose quotes and brackets they do not need.

use super::ast::*;
use super::fodder::{self, Elem, Fodder};
use super::lexer::{TokKind, Token, KEYWORDS};

/// The tokens, with helpers to reach and move their fodder.
pub(super) struct Toks<'a, 's>(pub &'a mut Vec<Token<'s>>);

impl Toks<'_, '_> {
    pub(super) fn newline(&self, t: Tok) -> bool {
        fodder::has_newline(&self.0[t].fodder)
    }

    pub(super) fn clean_newline(&mut self, t: Tok) {
        fodder::ensure_clean_newline(&mut self.0[t].fodder);
    }

    /// Moves the fodder of `from` to the front of the fodder of `to`.
    pub(super) fn move_front(&mut self, to: Tok, from: Tok) {
        let mut moved = std::mem::take(&mut self.0[from].fodder);
        fodder::move_front(&mut self.0[to].fodder, &mut moved);
    }

    /// A new token with no fodder.
    pub(super) fn add(&mut self, kind: TokKind, text: &'static str) -> Tok {
        self.0.push(Token::synthetic(kind, text));
        self.0.len() - 1
    }
}

/// Calls `f` on each expression directly inside `e`, in source order.
pub(super) fn each_child(e: &mut Expr, f: &mut dyn FnMut(&mut Expr)) {
    fn params(p: &mut Params, f: &mut dyn FnMut(&mut Expr)) {
        for param in &mut p.params {
            if let Some((_, default)) = &mut param.default {
                f(default);
            }
        }
    }
    fn specs(specs: &mut [Spec], f: &mut dyn FnMut(&mut Expr)) {
        for spec in specs {
            match spec {
                Spec::For { expr, .. } | Spec::If { expr, .. } => f(expr),
            }
        }
    }
    fn fields(fields: &mut [Field], f: &mut dyn FnMut(&mut Expr)) {
        for field in fields {
            match &mut field.member {
                Member::Local {
                    params: p, body, ..
                } => {
                    if let Some(p) = p {
                        params(p, f);
                    }
                    f(body);
                }
                Member::Assert { cond, message, .. } => {
                    f(cond);
                    if let Some((_, message)) = message {
                        f(message);
                    }
                }
                Member::Field {
                    name,
                    params: p,
                    body,
                    ..
                } => {
                    if let FieldName::Expr(_, e, _) = name {
                        f(e);
                    }
                    if let Some(p) = p {
                        params(p, f);
                    }
                    f(body);
                }
            }
        }
    }
    fn access(access: &mut Access, f: &mut dyn FnMut(&mut Expr)) {
        match access {
            Access::Dot(..) => {}
            Access::Bracket(_, e, _) => f(e),
            Access::Slice(s) => {
                for part in [&mut s.start, &mut s.end, &mut s.step]
                    .into_iter()
                    .flatten()
                {
                    f(part);
                }
            }
        }
    }
    match e {
        Expr::Atom(_) | Expr::Import(..) => {}
        Expr::Apply(a) => {
            f(&mut a.target);
            for arg in &mut a.args {
                f(&mut arg.expr);
            }
        }
        Expr::ApplyBrace(l, r) => {
            f(l);
            f(r);
        }
        Expr::Array(a) => {
            for (elem, _) in &mut a.elems {
                f(elem);
            }
        }
        Expr::ArrayComp(a) => {
            f(&mut a.body);
            specs(&mut a.specs, f);
        }
        Expr::Assert(a) => {
            f(&mut a.cond);
            if let Some((_, message)) = &mut a.message {
                f(message);
            }
            f(&mut a.rest);
        }
        Expr::Binary(b) => {
            f(&mut b.left);
            f(&mut b.right);
        }
        Expr::Conditional(c) => {
            f(&mut c.cond);
            f(&mut c.branch_true);
            if let Some((_, branch)) = &mut c.branch_false {
                f(branch);
            }
        }
        Expr::Error(_, e) | Expr::InSuper(e, _, _) | Expr::Unary(_, e) => f(e),
        Expr::Function(func) => {
            params(&mut func.params, f);
            f(&mut func.body);
        }
        Expr::Index(i) => {
            f(&mut i.target);
            access(&mut i.access, f);
        }
        Expr::Local(l) => {
            for bind in &mut l.binds {
                if let Some(p) = &mut bind.params {
                    params(p, f);
                }
                f(&mut bind.body);
            }
            f(&mut l.body);
        }
        Expr::Object(o) => fields(&mut o.fields, f),
        Expr::ObjectComp(o) => {
            fields(&mut o.fields, f);
            specs(&mut o.specs, f);
        }
        Expr::Parens(p) => f(&mut p.expr),
        Expr::SuperIndex(_, a) => access(a, f),
    }
}

/// The first token of an argument: its name when named.
fn arg_first(arg: &Arg) -> Tok {
    arg.name.map_or_else(|| arg.expr.first(), |(id, _)| id)
}

fn spec_first(spec: &Spec) -> Tok {
    match spec {
        Spec::For { for_, .. } => *for_,
        Spec::If { if_, .. } => *if_,
    }
}

/// A line break before every one of `items` (and the closing token) when any has one.
fn expand_all(t: &mut Toks<'_, '_>, items: &[Tok]) {
    if items.iter().any(|&i| t.newline(i)) {
        for &i in items {
            t.clean_newline(i);
        }
    }
}

/// Lists in parentheses: a line break before any item but the first puts every item but the
/// first on its own line; a line break before the first item or the `)` puts both on their own
/// (an empty list is left alone).
fn expand_in_parens(t: &mut Toks<'_, '_>, items: &[Tok], close: Tok) {
    if items.is_empty() {
        return;
    }
    if items.iter().skip(1).any(|&i| t.newline(i)) {
        for &i in &items[1..] {
            t.clean_newline(i);
        }
    }
    if items.first().is_some_and(|&i| t.newline(i)) || t.newline(close) {
        if let Some(&first) = items.first() {
            t.clean_newline(first);
        }
        t.clean_newline(close);
    }
}

fn expand_params(t: &mut Toks<'_, '_>, params: &Params) {
    let items: Vec<Tok> = params.params.iter().map(|p| p.id).collect();
    expand_in_parens(t, &items, params.close);
}

/// Spreads line breaks (`jsonnetfmt`'s FixNewlines).
pub(super) fn fix_newlines(e: &mut Expr, t: &mut Toks<'_, '_>) {
    match e {
        Expr::Array(a) => {
            let mut items: Vec<Tok> = a.elems.iter().map(|(e, _)| e.first()).collect();
            items.push(a.close);
            expand_all(t, &items);
        }
        Expr::Object(o) => {
            let mut items: Vec<Tok> = o.fields.iter().map(|f| f.member.first()).collect();
            items.push(o.close);
            expand_all(t, &items);
        }
        Expr::ArrayComp(a) => {
            let mut items = vec![a.body.first()];
            items.extend(a.specs.iter().map(spec_first));
            items.push(a.close);
            expand_all(t, &items);
        }
        Expr::ObjectComp(o) => {
            let mut items: Vec<Tok> = o.fields.iter().map(|f| f.member.first()).collect();
            items.extend(o.specs.iter().map(spec_first));
            items.push(o.close);
            expand_all(t, &items);
        }
        Expr::Parens(p) => expand_in_parens(t, &[p.expr.first()], p.close),
        Expr::Apply(a) => {
            let items: Vec<Tok> = a.args.iter().map(arg_first).collect();
            expand_in_parens(t, &items, a.close);
        }
        Expr::Function(f) => expand_params(t, &f.params),
        Expr::Local(l) => {
            if l.binds.iter().any(|b| t.newline(b.id)) {
                for b in &l.binds[1..] {
                    t.clean_newline(b.id);
                }
            }
            for b in &l.binds {
                if let Some(p) = &b.params {
                    expand_params(t, p);
                }
            }
        }
        _ => {}
    }
    if let Expr::Object(o) = e {
        member_params(t, &o.fields);
    } else if let Expr::ObjectComp(o) = e {
        member_params(t, &o.fields);
    }
    each_child(e, &mut |child| fix_newlines(child, t));
}

fn member_params(t: &mut Toks<'_, '_>, fields: &[Field]) {
    for field in fields {
        if let Member::Local {
            params: Some(p), ..
        }
        | Member::Field {
            params: Some(p), ..
        } = &field.member
        {
            expand_params(t, p);
        }
    }
}

/// A trailing comma exactly when the closing token is on its own line.
fn fix_comma(t: &mut Toks<'_, '_>, comma: &mut Option<Tok>, close: Tok) {
    let need = t.newline(close) || comma.is_some_and(|c| t.newline(c));
    match *comma {
        Some(c) if !need => {
            t.move_front(close, c);
            *comma = None;
        }
        Some(c) if t.newline(c) => t.move_front(close, c),
        None if need => *comma = Some(t.add(TokKind::Comma, ",")),
        _ => {}
    }
}

/// Removes a comma, its fodder going to the front of `to`.
fn remove_comma(t: &mut Toks<'_, '_>, comma: &mut Option<Tok>, to: Tok) {
    if let Some(c) = comma.take() {
        t.move_front(to, c);
    }
}

/// Adds and removes trailing commas (FixTrailingCommas).
pub(super) fn fix_trailing_commas(e: &mut Expr, t: &mut Toks<'_, '_>) {
    match e {
        Expr::Array(a) => {
            if let Some((_, comma)) = a.elems.last_mut() {
                fix_comma(t, comma, a.close);
            }
        }
        Expr::Object(o) => {
            if let Some(field) = o.fields.last_mut() {
                fix_comma(t, &mut field.comma, o.close);
            }
        }
        Expr::ArrayComp(a) => {
            let to = spec_first(&a.specs[0]);
            remove_comma(t, &mut a.comma, to);
        }
        Expr::ObjectComp(o) => {
            if let Some(field) = o.fields.last_mut() {
                remove_comma(t, &mut field.comma, o.close);
            }
        }
        _ => {}
    }
    each_child(e, &mut |child| fix_trailing_commas(child, t));
}

/// `((e))` becomes `(e)` (FixParens).
pub(super) fn fix_parens(e: &mut Expr, t: &mut Toks<'_, '_>) {
    if let Expr::Parens(outer) = e {
        if let Expr::Parens(_) = &outer.expr {
            let Expr::Parens(inner) = std::mem::replace(&mut outer.expr, Expr::Atom(0)) else {
                unreachable!("checked above");
            };
            let inner = *inner;
            t.move_front(inner.expr.first(), inner.open);
            t.move_front(outer.close, inner.close);
            outer.expr = inner.expr;
        }
    }
    each_child(e, &mut |child| fix_parens(child, t));
}

/// `a + { … }` becomes `a { … }` when `a` is a variable or an index (FixPlusObject).
pub(super) fn fix_plus_object(e: &mut Expr, t: &mut Toks<'_, '_>) {
    if let Expr::Binary(b) = e {
        let var = matches!(b.left, Expr::Atom(a) if t.0[a].kind == TokKind::Ident
            && !KEYWORDS.contains(&t.0[a].text.as_ref()));
        let left_ok = var || matches!(b.left, Expr::Index(_));
        if left_ok && t.0[b.op].text == "+" && matches!(b.right, Expr::Object(_)) {
            let Expr::Binary(b) = std::mem::replace(e, Expr::Atom(0)) else {
                unreachable!("checked above");
            };
            let b = *b;
            t.move_front(b.right.first(), b.op);
            *e = Expr::ApplyBrace(Box::new(b.left), Box::new(b.right));
        }
    }
    each_child(e, &mut |child| fix_plus_object(child, t));
}

/// `a[b:c:]` becomes `a[b:c]` (NoRedundantSliceColon).
pub(super) fn no_redundant_slice_colon(e: &mut Expr, t: &mut Toks<'_, '_>) {
    if let Expr::Index(i) = e {
        if let Access::Slice(s) = &mut i.access {
            if s.step.is_none() {
                if let Some(colon) = s.step_colon.take() {
                    t.move_front(s.close, colon);
                }
            }
        }
    }
    each_child(e, &mut |child| no_redundant_slice_colon(child, t));
}

/// Whether a string's text (as written, escapes and all) is an identifier.
fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&text)
}

fn string_atom(t: &Toks<'_, '_>, e: &Expr) -> Option<Tok> {
    match e {
        Expr::Atom(a) if t.0[*a].is_string() => Some(*a),
        _ => None,
    }
}

/// `x['a']` becomes `x.a`, `{['a']: 1}` and `{'a': 1}` become `{a: 1}` (PrettyFieldNames).
pub(super) fn pretty_field_names(e: &mut Expr, t: &mut Toks<'_, '_>) {
    match e {
        Expr::Index(i) => {
            if let Access::Bracket(open, index, close) = &i.access {
                // Not when a comment stands before the `]`: jsonnetfmt would drop it.
                let comment = t.0[*close].fodder.iter().any(|e| !e.comment.is_empty());
                if let Some(s) = string_atom(t, index).filter(|_| !comment) {
                    if is_identifier(&t.0[s].text) {
                        let open = *open;
                        t.0[s].kind = TokKind::Ident;
                        t.0[open].kind = TokKind::Dot;
                        t.0[open].text = ".".into();
                        i.access = Access::Dot(open, s);
                    }
                }
            }
        }
        Expr::Object(o) => {
            for field in &mut o.fields {
                let Member::Field { name, op, .. } = &mut field.member else {
                    continue;
                };
                if let FieldName::Expr(open, expr, close) = name {
                    if let Some(s) = string_atom(t, expr) {
                        t.move_front(s, *open);
                        if !t.0[*close].fodder.is_empty() {
                            t.move_front(*op, *close);
                        }
                        *name = FieldName::Str(s);
                    }
                }
                if let FieldName::Str(s) = name {
                    if is_identifier(&t.0[*s].text) {
                        t.0[*s].kind = TokKind::Ident;
                        *name = FieldName::Id(*s);
                    }
                }
            }
        }
        _ => {}
    }
    each_child(e, &mut |child| pretty_field_names(child, t));
}

/// The tokens whose fodder `jsonnetfmt`'s style passes (blank lines, comment markers) skip: the
/// punctuation of an index (`.x`, `[`, `]`, `:`), `in super`, and an import's path.
pub(super) fn unstyled(e: &mut Expr, toks: usize) -> Vec<bool> {
    fn access(a: &Access, skip: &mut [bool]) {
        let toks: Vec<Tok> = match a {
            Access::Dot(dot, id) => vec![*dot, *id],
            Access::Bracket(open, _, close) => vec![*open, *close],
            Access::Slice(s) => [Some(s.open), Some(s.colon), s.step_colon, Some(s.close)]
                .into_iter()
                .flatten()
                .collect(),
        };
        for t in toks {
            skip[t] = true;
        }
    }
    fn walk(e: &mut Expr, skip: &mut [bool]) {
        match e {
            Expr::Index(i) => access(&i.access, skip),
            Expr::SuperIndex(_, a) => access(a, skip),
            Expr::InSuper(_, in_, super_) => {
                skip[*in_] = true;
                skip[*super_] = true;
            }
            Expr::Import(_, file) => skip[*file] = true,
            _ => {}
        }
        each_child(e, &mut |child| walk(child, skip));
    }
    let mut skip = vec![false; toks];
    walk(e, &mut skip);
    skip
}

/// Drops the line breaks at the start of the file.
pub(super) fn remove_initial_newlines(fodder: &mut Fodder) {
    let keep = fodder
        .iter()
        .position(|e| e.kind != fodder::Kind::LineEnd)
        .unwrap_or(fodder.len());
    fodder.drain(..keep);
}

/// At most `max` blank lines (but where `skip` says).
pub(super) fn max_blank_lines(toks: &mut [Token], max: usize, skip: &[bool]) {
    for (tok, _) in toks.iter_mut().zip(skip).filter(|(_, &skip)| !skip) {
        for elem in &mut tok.fodder {
            let Elem { kind, blanks, .. } = elem;
            if *kind != fodder::Kind::Interstitial {
                *blanks = (*blanks).min(max);
            }
        }
    }
}
