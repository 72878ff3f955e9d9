//! A recursive-descent parser for Jsonnet (the language of `jsonnetfmt` 0.18) that keeps every
//! token: the tree points into the token list, so no whitespace or comment is lost.

use super::ast::*;
use super::lexer::{TokKind, Token, KEYWORDS};

mod lists;

/// Why the tokens do not make a Jsonnet expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParseError {
    pub line: usize,
    pub message: String,
}

pub(super) type Result<T> = std::result::Result<T, ParseError>;

/// Binding power of `a.b`, `a[b]`, `a(b)` and `a {b}`.
const APPLY: u8 = 2;
/// Binding power of unary operators.
const UNARY: u8 = 4;
/// The loosest binding power: a whole expression.
const MAX: u8 = 15;

fn binary_precedence(op: &str) -> Option<u8> {
    Some(match op {
        "*" | "/" | "%" => 5,
        "+" | "-" => 6,
        "<<" | ">>" => 7,
        "<" | "<=" | ">" | ">=" | "in" => 8,
        "==" | "!=" => 9,
        "&" => 10,
        "^" => 11,
        "|" => 12,
        "&&" => 13,
        "||" => 14,
        _ => return None,
    })
}

struct Parser<'a, 's> {
    toks: &'a mut Vec<Token<'s>>,
    pos: usize,
}

/// Parses the whole token list (which ends with [`TokKind::Eof`]). Tokens may be added to the
/// list (the second colon of `::` in a slice).
pub(super) fn parse(toks: &mut Vec<Token<'_>>) -> Result<Expr> {
    let mut p = Parser { toks, pos: 0 };
    let expr = p.expr(MAX)?;
    if p.peek().kind != TokKind::Eof {
        return Err(p.unexpected("after the expression"));
    }
    Ok(expr)
}

impl Parser<'_, '_> {
    fn peek(&self) -> &Token<'_> {
        &self.toks[self.pos]
    }

    fn peek_at(&self, ahead: usize) -> &Token<'_> {
        &self.toks[(self.pos + ahead).min(self.toks.len() - 1)]
    }

    fn pop(&mut self) -> Tok {
        let at = self.pos;
        if self.toks[at].kind != TokKind::Eof {
            self.pos += 1;
        }
        at
    }

    fn unexpected(&self, context: &str) -> ParseError {
        let tok = self.peek();
        let what = if tok.kind == TokKind::Eof {
            "end of file".to_owned()
        } else {
            format!("`{}`", tok.text)
        };
        ParseError {
            line: tok.line,
            message: format!("unexpected {what} {context}"),
        }
    }

    fn expect_kind(&mut self, kind: TokKind, context: &str) -> Result<Tok> {
        if self.peek().kind == kind {
            Ok(self.pop())
        } else {
            Err(self.unexpected(context))
        }
    }

    fn expect(&mut self, text: &str, context: &str) -> Result<Tok> {
        if self.peek().is(text) {
            Ok(self.pop())
        } else {
            Err(self.unexpected(context))
        }
    }

    fn at(&self, text: &str) -> bool {
        self.peek().is(text)
    }

    /// Whether `.x`, `[e]`, `(args)` or `{…}` follows.
    fn at_postfix(&self) -> bool {
        matches!(
            self.peek().kind,
            TokKind::Dot | TokKind::BracketL | TokKind::ParenL | TokKind::BraceL
        )
    }

    fn at_kind(&self, kind: TokKind) -> bool {
        self.peek().kind == kind
    }

    /// An identifier that is not a keyword.
    fn identifier(&mut self, context: &str) -> Result<Tok> {
        let tok = self.peek();
        if tok.kind == TokKind::Ident && !KEYWORDS.contains(&tok.text.as_ref()) {
            Ok(self.pop())
        } else {
            Err(self.unexpected(context))
        }
    }

    fn comma(&mut self) -> Option<Tok> {
        self.at_kind(TokKind::Comma).then(|| self.pop())
    }

    fn expr(&mut self, max: u8) -> Result<Expr> {
        let tok = self.peek();
        match (tok.kind, tok.text.as_ref()) {
            (TokKind::Ident, "assert") => {
                let assert = self.pop();
                let cond = self.expr(MAX)?;
                let message = self.assert_message()?;
                let semi = self.expect_kind(TokKind::Semi, "after assert")?;
                let rest = self.expr(MAX)?;
                return Ok(Expr::Assert(Box::new(Assert {
                    assert,
                    cond,
                    message,
                    semi,
                    rest,
                })));
            }
            (TokKind::Ident, "error") => {
                let error = self.pop();
                return Ok(Expr::Error(error, Box::new(self.expr(MAX)?)));
            }
            (TokKind::Ident, "if") => {
                let if_ = self.pop();
                let cond = self.expr(MAX)?;
                let then = self.expect("then", "after the if condition")?;
                let branch_true = self.expr(MAX)?;
                let branch_false = if self.at("else") {
                    let else_ = self.pop();
                    Some((else_, self.expr(MAX)?))
                } else {
                    None
                };
                return Ok(Expr::Conditional(Box::new(Conditional {
                    if_,
                    cond,
                    then,
                    branch_true,
                    branch_false,
                })));
            }
            (TokKind::Ident, "function") => {
                let function = self.pop();
                let open = self.expect_kind(TokKind::ParenL, "after function")?;
                let params = self.params(open)?;
                let body = self.expr(MAX)?;
                return Ok(Expr::Function(Box::new(Function {
                    function,
                    params,
                    body,
                })));
            }
            (TokKind::Ident, "import" | "importstr") => {
                let import = self.pop();
                let file = self.expr(MAX)?;
                return match file {
                    Expr::Atom(t)
                        if self.toks[t].is_string() && self.toks[t].kind != TokKind::Block =>
                    {
                        Ok(Expr::Import(import, t))
                    }
                    _ => Err(ParseError {
                        line: self.toks[import].line,
                        message: "computed imports are not allowed".to_owned(),
                    }),
                };
            }
            (TokKind::Ident, "local") => {
                let local = self.pop();
                let mut binds = Vec::new();
                loop {
                    let id = self.identifier("after local")?;
                    if binds
                        .iter()
                        .any(|b: &Bind| self.toks[b.id].text == self.toks[id].text)
                    {
                        return Err(ParseError {
                            line: self.toks[id].line,
                            message: format!("duplicate local var: {}", self.toks[id].text),
                        });
                    }
                    let params = self.maybe_params()?;
                    let eq = self.expect("=", "in a local binding")?;
                    let body = self.expr(MAX)?;
                    let end = self.pop();
                    let kind = self.toks[end].kind;
                    binds.push(Bind {
                        id,
                        params,
                        eq,
                        body,
                        end,
                    });
                    match kind {
                        TokKind::Semi => break,
                        TokKind::Comma => {}
                        _ => {
                            self.pos = end;
                            return Err(self.unexpected("after a local binding (, or ;)"));
                        }
                    }
                }
                let body = self.expr(MAX)?;
                return Ok(Expr::Local(Box::new(Local { local, binds, body })));
            }
            _ => {}
        }
        // Operators by precedence climbing: the operand of a unary operator binds tighter than
        // any binary operator, `.x`, `[e]`, `(args)` and `{…}` tighter still; binary operators
        // of one precedence group to the left.
        let mut lhs = if self.peek().kind == TokKind::Operator {
            if !matches!(self.peek().text.as_ref(), "-" | "+" | "!" | "~") {
                return Err(self.unexpected("(not a unary operator)"));
            }
            let op = self.pop();
            Expr::Unary(op, Box::new(self.expr(UNARY)?))
        } else {
            let mut lhs = self.terminal()?;
            while self.at_postfix() {
                lhs = self.postfix_or_binary(lhs, APPLY)?;
            }
            lhs
        };
        loop {
            let tok = self.peek();
            let binary = tok.kind == TokKind::Operator || tok.is("in");
            match binary_precedence(&tok.text) {
                Some(p) if binary && p <= max => lhs = self.postfix_or_binary(lhs, p)?,
                _ => return Ok(lhs),
            }
        }
    }

    /// What follows `lhs`: `.x`, `[…]`, `(…)`, `{…}`, `in super`, or a binary operator of
    /// precedence `max` and its right operand.
    fn postfix_or_binary(&mut self, lhs: Expr, max: u8) -> Result<Expr> {
        let op = self.pop();
        Ok(match self.toks[op].kind {
            TokKind::Dot => {
                let id = self.identifier("after .")?;
                Expr::Index(Box::new(Index {
                    target: lhs,
                    access: Access::Dot(op, id),
                }))
            }
            TokKind::BracketL => {
                let access = self.index(op)?;
                Expr::Index(Box::new(Index {
                    target: lhs,
                    access,
                }))
            }
            TokKind::ParenL => {
                let (args, close) = self.args()?;
                let tailstrict = self.at("tailstrict").then(|| self.pop());
                Expr::Apply(Box::new(Apply {
                    target: lhs,
                    open: op,
                    args,
                    close,
                    tailstrict,
                }))
            }
            TokKind::BraceL => {
                let right = self.object(op)?;
                Expr::ApplyBrace(Box::new(lhs), Box::new(right))
            }
            _ if self.toks[op].text == "in" && self.at("super") => {
                let super_ = self.pop();
                // `.x`, `[e]`, `(args)` and `{…}` after `in super` apply to the whole (as in
                // jsonnetfmt's parser).
                let mut lhs = Expr::InSuper(Box::new(lhs), op, super_);
                while self.at_postfix() {
                    lhs = self.postfix_or_binary(lhs, APPLY)?;
                }
                lhs
            }
            _ => {
                let right = self.expr(max - 1)?;
                Expr::Binary(Box::new(Binary {
                    left: lhs,
                    op,
                    right,
                }))
            }
        })
    }

    /// What follows `[` after an expression: an index or a slice.
    fn index(&mut self, open: Tok) -> Result<Access> {
        let start = if self.at(":") || self.at("::") {
            None
        } else {
            Some(self.expr(MAX)?)
        };
        let (colon, end, step_colon, step);
        if self.at("::") {
            // `a[b::c]`: one token, two colons.
            colon = self.pop();
            self.toks[colon].text = ":".into();
            self.toks.push(Token::synthetic(TokKind::Operator, ":"));
            step_colon = Some(self.toks.len() - 1);
            end = None;
            step = self.slice_part()?;
        } else if self.at(":") {
            colon = self.pop();
            end = if self.at(":") {
                None
            } else {
                self.slice_part()?
            };
            if self.at(":") {
                step_colon = Some(self.pop());
                step = self.slice_part()?;
            } else {
                (step_colon, step) = (None, None);
            }
        } else {
            let close = self.expect_kind(TokKind::BracketR, "after the index")?;
            let index = start.expect("an index without a colon has an expression");
            return Ok(Access::Bracket(open, index, close));
        }
        let close = self.expect_kind(TokKind::BracketR, "after the slice")?;
        Ok(Access::Slice(Box::new(Slice {
            open,
            start,
            colon,
            end,
            step_colon,
            step,
            close,
        })))
    }

    fn slice_part(&mut self) -> Result<Option<Expr>> {
        if self.at_kind(TokKind::BracketR) {
            Ok(None)
        } else {
            Ok(Some(self.expr(MAX)?))
        }
    }

    fn assert_message(&mut self) -> Result<Option<(Tok, Expr)>> {
        if self.at(":") {
            let colon = self.pop();
            Ok(Some((colon, self.expr(MAX)?)))
        } else {
            Ok(None)
        }
    }

    fn terminal(&mut self) -> Result<Expr> {
        let tok = self.peek();
        match tok.kind {
            TokKind::BraceL => {
                let open = self.pop();
                self.object(open)
            }
            TokKind::BracketL => {
                let open = self.pop();
                self.array(open)
            }
            TokKind::ParenL => {
                let open = self.pop();
                let expr = self.expr(MAX)?;
                let close = self.expect_kind(TokKind::ParenR, "(expected ))")?;
                Ok(Expr::Parens(Box::new(Parens { open, expr, close })))
            }
            TokKind::Number
            | TokKind::StrDouble
            | TokKind::StrSingle
            | TokKind::VerbatimDouble
            | TokKind::VerbatimSingle
            | TokKind::Block
            | TokKind::Dollar => Ok(Expr::Atom(self.pop())),
            TokKind::Ident => match tok.text.as_ref() {
                "null" | "true" | "false" | "self" => Ok(Expr::Atom(self.pop())),
                "super" => {
                    let super_ = self.pop();
                    let access = if self.at_kind(TokKind::Dot) {
                        let dot = self.pop();
                        Access::Dot(dot, self.identifier("after super.")?)
                    } else if self.at_kind(TokKind::BracketL) {
                        let open = self.pop();
                        let index = self.expr(MAX)?;
                        let close = self.expect_kind(TokKind::BracketR, "after super[…")?;
                        Access::Bracket(open, index, close)
                    } else {
                        return Err(self.unexpected("after super (expected . or [)"));
                    };
                    Ok(Expr::SuperIndex(super_, Box::new(access)))
                }
                text if KEYWORDS.contains(&text) => Err(self.unexpected("")),
                _ => Ok(Expr::Atom(self.pop())),
            },
            _ => Err(self.unexpected("where an expression was expected")),
        }
    }
}
