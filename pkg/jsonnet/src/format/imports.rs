//! Sorting of the imports at the top of a file (`jsonnetfmt`'s sort-imports): the `local x =
//! import '…';` bindings that open the file, in groups separated by a blank line or a comment
//! line, are ordered by imported path, one binding per `local`. Comments on a binding's line go
//! with it; a group with a variable bound twice is left in its order.

use super::ast::{Bind, Expr, Local, Tok};
use super::fodder::{self, Elem, Fodder};
use super::lexer::{TokKind, Token};

/// An import binding and the fodder that follows it on its line.
struct Import {
    /// The path as written (the sort key).
    key: String,
    bind: Bind,
    adjacent: Fodder,
}

/// Whether `e` is a `local` whose every binding is `x = import '…'`.
fn is_import_local(e: &Expr, toks: &[Token<'_>]) -> bool {
    let Expr::Local(l) = e else {
        return false;
    };
    l.binds.iter().all(|b| {
        b.params.is_none() && matches!(b.body, Expr::Import(kw, _) if toks[kw].text == "import")
    })
}

/// Splits fodder after its first line break: what stays on the previous token's line, and what
/// comes before the next token (blank lines go with the second part).
fn split(fodder: Fodder) -> (Fodder, Fodder) {
    let mut after_prev = Fodder::new();
    let mut before_next = Fodder::new();
    let mut second = false;
    for elem in fodder {
        if second {
            fodder::push(&mut before_next, elem);
            continue;
        }
        let breaks = elem.kind != fodder::Kind::Interstitial;
        let (blanks, indent) = (elem.blanks, elem.indent);
        after_prev.push(elem);
        if breaks {
            second = true;
            if blanks > 0 {
                after_prev.last_mut().expect("just pushed").blanks = 0;
                before_next.push(Elem::line_end(blanks, indent, None));
            }
        }
    }
    (after_prev, before_next)
}

/// Whether the import group ends after `local`: the next expression is not an import `local`,
/// or a blank line or a second line break comes before it.
fn group_ends_after(local: &Local, toks: &[Token<'_>]) -> bool {
    if !is_import_local(&local.body, toks) {
        return true;
    }
    let mut newline = false;
    for elem in &toks[local.body.first()].fodder {
        if newline || elem.blanks > 0 {
            return true;
        }
        if elem.kind != fodder::Kind::Interstitial {
            newline = true;
        }
    }
    false
}

/// Sorts the imports at the top of `root`.
pub(super) fn sort_imports(root: Expr, toks: &mut Vec<Token<'_>>) -> Expr {
    if !is_import_local(&root, toks) {
        return root;
    }
    let open = std::mem::take(&mut toks[root.first()].fodder);
    group(root, Vec::new(), open, toks)
}

/// Adds the bindings of `e` (an import `local`) to `imports`, then sorts and rebuilds the group
/// when it ends there; `open` is the fodder before the group.
fn group(e: Expr, mut imports: Vec<Import>, open: Fodder, toks: &mut Vec<Token<'_>>) -> Expr {
    let Expr::Local(local) = e else {
        unreachable!("called on import locals only");
    };
    let ends = group_ends_after(&local, toks);
    let Local { binds, body, .. } = *local;
    let (mut adjacent, before_next) = split(std::mem::take(&mut toks[body.first()].fodder));
    fodder::ensure_clean_newline(&mut adjacent);
    let count = binds.len();
    // What follows a binding on its line, for every binding but the last: taken from the fodder
    // before the next binding's name.
    let mut between: Vec<Fodder> = Vec::with_capacity(count);
    for next in binds.iter().skip(1) {
        let (mut after, before) = split(std::mem::take(&mut toks[next.id].fodder));
        fodder::ensure_clean_newline(&mut after);
        toks[next.id].fodder = before;
        between.push(after);
    }
    let mut between = between.into_iter();
    for (i, bind) in binds.into_iter().enumerate() {
        let Expr::Import(_, path) = bind.body else {
            unreachable!("checked by is_import_local");
        };
        // Each binding becomes a `local` of its own, ended by `;`.
        toks[bind.end].kind = TokKind::Semi;
        toks[bind.end].text = ";".into();
        let adjacent = if i + 1 == count {
            std::mem::take(&mut adjacent)
        } else {
            between.next().expect("one per binding but the last")
        };
        imports.push(Import {
            key: toks[path].text.to_string(),
            bind,
            adjacent,
        });
    }
    if !ends {
        return group(body, imports, open, toks);
    }
    let mut names: Vec<&str> = imports
        .iter()
        .map(|i| toks[i.bind.id].text.as_ref())
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.len() == imports.len() {
        imports.sort_by(|a, b| a.key.cmp(&b.key));
    }
    let after_group = std::mem::take(&mut imports.last_mut().expect("a group").adjacent);
    let mut before_next = before_next;
    fodder::ensure_clean_newline(&mut before_next);
    let next_open = fodder::concat(after_group, before_next);
    let mut rest = if is_import_local(&body, toks) {
        group(body, Vec::new(), next_open, toks)
    } else {
        toks[body.first()].fodder = next_open;
        body
    };
    // Rebuild from the last binding: each `local` carries the fodder that followed the binding
    // before it.
    let mut fodders: Vec<Fodder> = Vec::with_capacity(imports.len());
    fodders.push(open);
    let last = imports.len() - 1;
    for import in &mut imports[..last] {
        fodders.push(std::mem::take(&mut import.adjacent));
    }
    for (import, fodder) in imports.into_iter().zip(fodders).rev() {
        toks.push(Token::synthetic(TokKind::Ident, "local"));
        let local: Tok = toks.len() - 1;
        toks[local].fodder = fodder;
        rest = Expr::Local(Box::new(Local {
            local,
            binds: vec![import.bind],
            body: rest,
        }));
    }
    rest
}
