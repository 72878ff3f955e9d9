//! Finds expressions in Jsonnet sources, for errors that jrsonnet raises without a place: a failed
//! import, a missing field and a call of what an unknown `std.native(name)` returned are reported
//! with no span, and the Jsonnet stack only holds the calls around them.

use jrsonnet_evaluator::{Source, Span};
use jrsonnet_ir::{
    visit::{self, Visitor},
    BinaryOpType, BindSpec, Destruct, Expr, FieldName, IStr, ImportKind, ObjBody,
};

/// What to look for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wanted<'a> {
    /// `import`, `importstr` or `importbin` of this literal path: the keyword's span.
    Import(&'a str),
    /// `x.name` or `x['name']`: the index's span.
    Field(&'a str),
    /// `std.native('…')` with any literal name: the span of `native`.
    Native,
}

/// Every place in `source` that matches, in source order, with the literal matched (the path,
/// the field or the native's name). A source that does not parse has none (its syntax error is
/// reported on its own).
pub(crate) fn find(source: &Source, wanted: Wanted<'_>) -> Vec<(Span, String)> {
    let Some(expr) = parse(source) else {
        return Vec::new();
    };
    let mut finder = Finder {
        wanted,
        found: Vec::new(),
    };
    finder.visit_expr(&expr);
    finder.found.sort_by_key(|(span, _)| span.1);
    finder.found
}

struct Finder<'a> {
    wanted: Wanted<'a>,
    found: Vec<(Span, String)>,
}

fn is_str(expr: &Expr, text: &str) -> bool {
    matches!(expr, Expr::Str(s) if s.as_str() == text)
}

fn literal(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Str(s) => Some(s.as_str()),
        _ => None,
    }
}

impl Visitor for Finder<'_> {
    fn visit_expr(&mut self, e: &Expr) {
        match (self.wanted, e) {
            (Wanted::Import(path), Expr::Import(kind, target)) if is_str(target, path) => {
                self.found.push((kind.span.clone(), path.to_owned()));
            }
            (Wanted::Field(name), Expr::Index { parts, .. }) => self.found.extend(
                parts
                    .iter()
                    .filter(|part| is_str(&part.value, name))
                    .map(|part| (part.span.clone(), name.to_owned())),
            ),
            (Wanted::Native, Expr::Apply(callee, args, _)) => {
                let name = args.unnamed.first().and_then(literal);
                if let (Some(name), Expr::Index { parts, .. }) = (name, &**callee) {
                    if let Some(part) = parts.last().filter(|p| is_str(&p.value, "native")) {
                        self.found.push((part.span.clone(), name.to_owned()));
                    }
                }
            }
            _ => {}
        }
        visit::visit_expr(self, e);
    }
}

/// One step of the path the manifestation was at, from the Jsonnet stack's
/// `field <name> evaluation` and `elem <i> manifestification` frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Field(String),
    Elem(usize),
}

impl Step {
    /// The step a frame of the Jsonnet stack stands for, if it is one.
    pub(crate) fn parse(frame: &str) -> Option<Self> {
        let inner = frame
            .strip_suffix(" evaluation")
            .or_else(|| frame.strip_suffix(" manifestification"))?;
        if let Some(name) = inner.strip_prefix("field <") {
            return Some(Self::Field(name.strip_suffix('>')?.to_owned()));
        }
        let index = inner.strip_prefix("elem <")?.strip_suffix('>')?;
        index.parse().ok().map(Self::Elem)
    }
}

/// The field that `path` (from the top of the evaluated file, `sources[0]`) reaches, as deep as
/// it can be followed through object literals, `+`, locals and imports: the span of its name.
/// Errors with no place of their own (`1 / 0`, an array index out of bounds) are reported there.
pub(crate) fn field_at(sources: &[Source], path: &[Step]) -> Option<Span> {
    let main = sources.first()?;
    let expr = parse(main)?;
    let mut walker = Walker {
        sources,
        budget: 10_000,
    };
    walker
        .walk(&expr, &mut Vec::new(), path, 0)
        .map(|(_, span)| span)
}

fn parse(source: &Source) -> Option<Expr> {
    let settings = jrsonnet_ir_parser::ParserSettings {
        source: source.clone(),
    };
    jrsonnet_ir_parser::parse(source.code(), &settings).ok()
}

struct Walker<'s> {
    sources: &'s [Source],
    /// Steps left: a local that refers to itself must not loop.
    budget: usize,
}

impl Walker<'_> {
    /// The deepest field of `path` found in `expr`: how many steps it took, and its name's span.
    /// `env` holds the locals in scope, innermost last.
    fn walk<'e>(
        &mut self,
        expr: &'e Expr,
        env: &mut Vec<(IStr, &'e Expr)>,
        path: &[Step],
        taken: usize,
    ) -> Option<(usize, Span)> {
        if path.is_empty() || self.budget == 0 {
            return None;
        }
        self.budget -= 1;
        match expr {
            Expr::LocalExpr(binds, body) => {
                let scope = env.len();
                env.extend(bindings(binds));
                let found = self.walk(body, env, path, taken);
                env.truncate(scope);
                found
            }
            Expr::Var(name) => {
                let at = env.iter().rposition(|(bound, _)| *bound == name.value)?;
                let value = env[at].1;
                // The binding sees what was in scope where it was made.
                let mut scope = env[..=at].to_vec();
                self.walk(value, &mut scope, path, taken)
            }
            Expr::Import(kind, target) if matches!(kind.value, ImportKind::Normal) => {
                let Expr::Str(target) = &**target else {
                    return None;
                };
                let source = self.sources.iter().find(|source| {
                    source
                        .source_path()
                        .path()
                        .is_some_and(|p| p.ends_with(target.as_str()))
                })?;
                let imported = parse(source)?;
                self.walk(&imported, &mut Vec::new(), path, taken)
            }
            Expr::AssertExpr(assert) => self.walk(&assert.rest, env, path, taken),
            Expr::BinaryOp(op) if op.op == BinaryOpType::Add => {
                let right = self.walk(&op.rhs, env, path, taken);
                let left = self.walk(&op.lhs, env, path, taken);
                deeper(right, left)
            }
            Expr::ObjExtend(base, body) => {
                let right = self.walk_object(body, env, path, taken);
                let left = self.walk(base, env, path, taken);
                deeper(right, left)
            }
            Expr::Obj(body) => self.walk_object(body, env, path, taken),
            Expr::Arr(items) => {
                let Step::Elem(i) = path[0] else {
                    return None;
                };
                self.walk(items.get(i)?, env, &path[1..], taken + 1)
            }
            _ => None,
        }
    }

    fn walk_object<'e>(
        &mut self,
        body: &'e ObjBody,
        env: &mut Vec<(IStr, &'e Expr)>,
        path: &[Step],
        taken: usize,
    ) -> Option<(usize, Span)> {
        let (ObjBody::MemberList(members), Step::Field(wanted)) = (body, &path[0]) else {
            return None;
        };
        let field = members
            .fields
            .iter()
            .rev()
            .find(|f| matches!(&f.name.value, FieldName::Fixed(n) if n.as_str() == wanted))?;
        let here = (taken + 1, field.name.span.clone());
        if field.params.is_some() {
            return Some(here);
        }
        let scope = env.len();
        env.extend(bindings(&members.locals));
        let inner = self.walk(&field.value, env, &path[1..], taken + 1);
        env.truncate(scope);
        deeper(inner, Some(here))
    }
}

/// The locals a group of bindings brings into scope (functions are never indexed into).
fn bindings(binds: &[BindSpec]) -> impl Iterator<Item = (IStr, &Expr)> {
    binds.iter().filter_map(|bind| match bind {
        BindSpec::Field {
            into: Destruct::Full(name),
            value,
        } => Some((name.value.clone(), value)),
        _ => None,
    })
}

/// The one that went further; `first` on a tie.
fn deeper(first: Option<(usize, Span)>, second: Option<(usize, Span)>) -> Option<(usize, Span)> {
    match (first, second) {
        (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
}
