//! The bracketed parts of the grammar: arrays, objects, comprehensions, parameters and
//! arguments.

use std::collections::HashSet;

use super::{ParseError, Parser, Result, MAX};
use crate::format::ast::*;
use crate::format::lexer::{TokKind, KEYWORDS};

impl Parser<'_, '_> {
    pub(super) fn array(&mut self, open: Tok) -> Result<Expr> {
        if self.at_kind(TokKind::BracketR) {
            let close = self.pop();
            return Ok(Expr::Array(Box::new(Array {
                open,
                elems: Vec::new(),
                close,
            })));
        }
        let first = self.expr(MAX)?;
        let mut comma = self.comma();
        if self.at("for") {
            let specs = self.specs()?;
            let close = self.expect_kind(TokKind::BracketR, "after the comprehension")?;
            return Ok(Expr::ArrayComp(Box::new(ArrayComp {
                open,
                body: first,
                comma,
                specs,
                close,
            })));
        }
        let mut elems = vec![(first, comma)];
        loop {
            if self.at_kind(TokKind::BracketR) {
                let close = self.pop();
                return Ok(Expr::Array(Box::new(Array { open, elems, close })));
            }
            if comma.is_none() {
                return Err(self.unexpected("in an array (expected a comma)"));
            }
            let elem = self.expr(MAX)?;
            comma = self.comma();
            elems.push((elem, comma));
        }
    }

    /// `for x in e` and the `for`s and `if`s after it, up to the closing bracket or brace.
    fn specs(&mut self) -> Result<Vec<Spec>> {
        let mut specs = Vec::new();
        loop {
            if self.at("for") {
                let for_ = self.pop();
                let id = self.identifier("after for")?;
                let in_ = self.expect("in", "after for x")?;
                let expr = self.expr(MAX)?;
                specs.push(Spec::For {
                    for_,
                    id,
                    in_,
                    expr,
                });
            } else if self.at("if") && !specs.is_empty() {
                let if_ = self.pop();
                let expr = self.expr(MAX)?;
                specs.push(Spec::If { if_, expr });
            } else if specs.is_empty() {
                return Err(self.unexpected("(expected for)"));
            } else {
                return Ok(specs);
            }
        }
    }

    /// The object after its `{`: fields, or the one field and locals of a comprehension.
    pub(super) fn object(&mut self, open: Tok) -> Result<Expr> {
        let mut fields: Vec<Field> = Vec::new();
        // Names of fields (false) and of object locals (true) seen: each at most once.
        let mut names: HashSet<(bool, String)> = HashSet::new();
        loop {
            if self.at_kind(TokKind::BraceR) {
                let close = self.pop();
                return Ok(Expr::Object(Box::new(Object {
                    open,
                    fields,
                    close,
                })));
            }
            if self.at("for") {
                let computed: Vec<&Member> = fields
                    .iter()
                    .map(|f| &f.member)
                    .filter(|m| !matches!(m, Member::Local { .. }))
                    .collect();
                let valid = matches!(computed.as_slice(),
                    [Member::Field { name: FieldName::Expr(..), op, .. }] if self.toks[*op].text == ":");
                if !valid {
                    return Err(
                        self.unexpected("(an object comprehension has one [e]: field, and locals)")
                    );
                }
                let specs = self.specs()?;
                let close = self.expect_kind(TokKind::BraceR, "after the comprehension")?;
                return Ok(Expr::ObjectComp(Box::new(ObjectComp {
                    open,
                    fields,
                    specs,
                    close,
                })));
            }
            if fields.last().is_some_and(|f| f.comma.is_none()) {
                return Err(self.unexpected("in an object (expected a comma)"));
            }
            let line = self.peek().line;
            let member = self.member()?;
            if let Some((local, name)) = self.member_name(&member) {
                if !names.insert((local, name.clone())) {
                    let what = if local { "local var" } else { "field" };
                    return Err(ParseError {
                        line,
                        message: format!("duplicate {what}: {name}"),
                    });
                }
            }
            let comma = self.comma();
            fields.push(Field { member, comma });
        }
    }

    /// The name a field or object local has, for duplicate checks: `None` for `[e]` and asserts.
    fn member_name(&self, member: &Member) -> Option<(bool, String)> {
        match member {
            Member::Local { id, .. } => Some((true, self.toks[*id].text.to_string())),
            Member::Field {
                name: FieldName::Id(t) | FieldName::Str(t),
                ..
            } => {
                let tok = &self.toks[*t];
                let name = match tok.kind {
                    TokKind::VerbatimSingle => tok.text.replace("''", "'"),
                    TokKind::VerbatimDouble => tok.text.replace("\"\"", "\""),
                    _ => tok.text.to_string(),
                };
                Some((false, name))
            }
            _ => None,
        }
    }

    fn member(&mut self) -> Result<Member> {
        let tok = self.peek();
        if tok.is("local") {
            let local = self.pop();
            let id = self.identifier("after local")?;
            let params = self.maybe_params()?;
            let eq = self.expect("=", "in an object local")?;
            let body = self.expr(MAX)?;
            return Ok(Member::Local {
                local,
                id,
                params,
                eq,
                body,
            });
        }
        if tok.is("assert") {
            let assert = self.pop();
            let cond = self.expr(MAX)?;
            let message = self.assert_message()?;
            return Ok(Member::Assert {
                assert,
                cond,
                message,
            });
        }
        let name = match tok.kind {
            TokKind::Ident => FieldName::Id(self.identifier("as a field name")?),
            TokKind::BracketL => {
                let open = self.pop();
                let expr = self.expr(MAX)?;
                let close = self.expect_kind(TokKind::BracketR, "after a field name")?;
                FieldName::Expr(open, expr, close)
            }
            _ if tok.is_string() => FieldName::Str(self.pop()),
            _ => return Err(self.unexpected("where a field was expected")),
        };
        let params = self.maybe_params()?;
        let op = self.pop();
        let text = self.toks[op].text.as_ref();
        let colons = text.strip_prefix('+').unwrap_or(text);
        let valid = self.toks[op].kind == TokKind::Operator
            && matches!(colons, ":" | "::" | ":::")
            && !(params.is_some() && text.starts_with('+'));
        if !valid {
            self.pos = op;
            return Err(self.unexpected("after a field name (expected :, ::, :::, +:…)"));
        }
        let body = self.expr(MAX)?;
        Ok(Member::Field {
            name,
            params,
            op,
            body,
        })
    }

    pub(super) fn maybe_params(&mut self) -> Result<Option<Params>> {
        if self.at_kind(TokKind::ParenL) {
            let open = self.pop();
            Ok(Some(self.params(open)?))
        } else {
            Ok(None)
        }
    }

    /// Parameters after their `(`, up to and with the `)`.
    pub(super) fn params(&mut self, open: Tok) -> Result<Params> {
        let mut params: Vec<Param> = Vec::new();
        loop {
            if self.at_kind(TokKind::ParenR) {
                let close = self.pop();
                return Ok(Params {
                    open,
                    params,
                    close,
                });
            }
            if params.last().is_some_and(|p| p.comma.is_none()) {
                return Err(self.unexpected("in parameters (expected a comma)"));
            }
            let id = self.identifier("as a parameter")?;
            let default = if self.at("=") {
                let eq = self.pop();
                Some((eq, self.expr(MAX)?))
            } else {
                None
            };
            let comma = self.comma();
            params.push(Param { id, default, comma });
        }
    }

    /// Arguments after their `(`, and the `)`.
    pub(super) fn args(&mut self) -> Result<(Vec<Arg>, Tok)> {
        let mut args: Vec<Arg> = Vec::new();
        loop {
            if self.at_kind(TokKind::ParenR) {
                return Ok((args, self.pop()));
            }
            if args.last().is_some_and(|a| a.comma.is_none()) {
                return Err(self.unexpected("in arguments (expected a comma)"));
            }
            let named = self.peek().kind == TokKind::Ident
                && !KEYWORDS.contains(&self.peek().text.as_ref())
                && self.peek_at(1).is("=");
            let name = if named {
                let id = self.pop();
                let eq = self.pop();
                // jsonnetfmt drops what stands between a name and its `=`: line breaks go, a
                // comment stays (where it was).
                let fodder = &mut self.toks[eq].fodder;
                if fodder.iter().all(|e| e.comment.is_empty()) {
                    fodder.clear();
                }
                Some((id, eq))
            } else {
                if args.last().is_some_and(|a| a.name.is_some()) {
                    return Err(self.unexpected("(positional argument after a named one)"));
                }
                None
            };
            let expr = self.expr(MAX)?;
            let comma = self.comma();
            args.push(Arg { name, expr, comma });
        }
    }
}
