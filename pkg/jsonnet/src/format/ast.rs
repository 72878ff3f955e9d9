//! The syntax tree the formatter works on. Nodes hold indices into the token list (so fodder
//! stays with its token and passes can move it); nothing is desugared.

/// Index of a token in the token list.
pub(super) type Tok = usize;

/// An expression.
#[derive(Debug)]
pub(super) enum Expr {
    /// `null`, `true`, `false`, `self`, `$`, a number, a string or a variable.
    Atom(Tok),
    Apply(Box<Apply>),
    /// `a { … }`: an object applied to an expression without `+`.
    ApplyBrace(Box<Expr>, Box<Expr>),
    Array(Box<Array>),
    ArrayComp(Box<ArrayComp>),
    Assert(Box<Assert>),
    Binary(Box<Binary>),
    Conditional(Box<Conditional>),
    Error(Tok, Box<Expr>),
    Function(Box<Function>),
    /// `import` or `importstr` and the string token.
    Import(Tok, Tok),
    /// `e in super`: the expression, `in`, `super`.
    InSuper(Box<Expr>, Tok, Tok),
    Index(Box<Index>),
    Local(Box<Local>),
    Object(Box<Object>),
    ObjectComp(Box<ObjectComp>),
    Parens(Box<Parens>),
    /// `super.x` or `super[e]`.
    SuperIndex(Tok, Box<Access>),
    /// A unary operator and its operand.
    Unary(Tok, Box<Expr>),
}

#[derive(Debug)]
pub(super) struct Apply {
    pub target: Expr,
    pub open: Tok,
    pub args: Vec<Arg>,
    pub close: Tok,
    pub tailstrict: Option<Tok>,
}

#[derive(Debug)]
pub(super) struct Arg {
    /// A named argument's name and `=`.
    pub name: Option<(Tok, Tok)>,
    pub expr: Expr,
    /// The comma after the argument (after the last one: a trailing comma).
    pub comma: Option<Tok>,
}

#[derive(Debug)]
pub(super) struct Array {
    pub open: Tok,
    /// Elements with the comma after each.
    pub elems: Vec<(Expr, Option<Tok>)>,
    pub close: Tok,
}

#[derive(Debug)]
pub(super) struct ArrayComp {
    pub open: Tok,
    pub body: Expr,
    /// A comma between the body and the first `for`.
    pub comma: Option<Tok>,
    pub specs: Vec<Spec>,
    pub close: Tok,
}

/// A `for x in e` or `if e` of a comprehension.
#[derive(Debug)]
pub(super) enum Spec {
    For {
        for_: Tok,
        id: Tok,
        in_: Tok,
        expr: Expr,
    },
    If {
        if_: Tok,
        expr: Expr,
    },
}

#[derive(Debug)]
pub(super) struct Assert {
    pub assert: Tok,
    pub cond: Expr,
    /// `:` and the message.
    pub message: Option<(Tok, Expr)>,
    pub semi: Tok,
    pub rest: Expr,
}

#[derive(Debug)]
pub(super) struct Binary {
    pub left: Expr,
    pub op: Tok,
    pub right: Expr,
}

#[derive(Debug)]
pub(super) struct Conditional {
    pub if_: Tok,
    pub cond: Expr,
    pub then: Tok,
    pub branch_true: Expr,
    /// `else` and the false branch.
    pub branch_false: Option<(Tok, Expr)>,
}

#[derive(Debug)]
pub(super) struct Function {
    pub function: Tok,
    pub params: Params,
    pub body: Expr,
}

/// A parenthesized parameter list.
#[derive(Debug)]
pub(super) struct Params {
    pub open: Tok,
    pub params: Vec<Param>,
    pub close: Tok,
}

#[derive(Debug)]
pub(super) struct Param {
    pub id: Tok,
    /// `=` and the default value.
    pub default: Option<(Tok, Expr)>,
    pub comma: Option<Tok>,
}

#[derive(Debug)]
pub(super) struct Index {
    pub target: Expr,
    pub access: Access,
}

/// What follows the indexed expression (or `super`).
#[derive(Debug)]
pub(super) enum Access {
    /// `.` and the field.
    Dot(Tok, Tok),
    /// `[`, the index, `]`.
    Bracket(Tok, Expr, Tok),
    Slice(Box<Slice>),
}

/// `[start:end:step]`, each part optional.
#[derive(Debug)]
pub(super) struct Slice {
    pub open: Tok,
    pub start: Option<Expr>,
    pub colon: Tok,
    pub end: Option<Expr>,
    /// The second colon, when written.
    pub step_colon: Option<Tok>,
    pub step: Option<Expr>,
    pub close: Tok,
}

#[derive(Debug)]
pub(super) struct Local {
    pub local: Tok,
    pub binds: Vec<Bind>,
    pub body: Expr,
}

/// `x = e` or `f(params) = e`, with the `,` or `;` after it.
#[derive(Debug)]
pub(super) struct Bind {
    pub id: Tok,
    pub params: Option<Params>,
    pub eq: Tok,
    pub body: Expr,
    pub end: Tok,
}

#[derive(Debug)]
pub(super) struct Object {
    pub open: Tok,
    pub fields: Vec<Field>,
    pub close: Tok,
}

#[derive(Debug)]
pub(super) struct ObjectComp {
    pub open: Tok,
    /// The locals and the one computed field; a comma after the last is before the `for`.
    pub fields: Vec<Field>,
    pub specs: Vec<Spec>,
    pub close: Tok,
}

/// A member of an object and the comma after it.
#[derive(Debug)]
pub(super) struct Field {
    pub member: Member,
    pub comma: Option<Tok>,
}

#[derive(Debug)]
pub(super) enum Member {
    Local {
        local: Tok,
        id: Tok,
        params: Option<Params>,
        eq: Tok,
        body: Expr,
    },
    Assert {
        assert: Tok,
        cond: Expr,
        message: Option<(Tok, Expr)>,
    },
    Field {
        name: FieldName,
        params: Option<Params>,
        /// `:`, `::`, `:::`, with or without `+`.
        op: Tok,
        body: Expr,
    },
}

#[derive(Debug)]
pub(super) enum FieldName {
    Id(Tok),
    /// A string literal token.
    Str(Tok),
    /// `[`, the expression, `]`.
    Expr(Tok, Expr, Tok),
}

#[derive(Debug)]
pub(super) struct Parens {
    pub open: Tok,
    pub expr: Expr,
    pub close: Tok,
}

impl Expr {
    /// The first token of the expression (its fodder is the expression's opening fodder).
    pub(super) fn first(&self) -> Tok {
        match self {
            Expr::Atom(t)
            | Expr::Error(t, _)
            | Expr::Import(t, _)
            | Expr::SuperIndex(t, _)
            | Expr::Unary(t, _) => *t,
            Expr::Apply(a) => a.target.first(),
            Expr::ApplyBrace(left, _) => left.first(),
            Expr::Array(a) => a.open,
            Expr::ArrayComp(a) => a.open,
            Expr::Assert(a) => a.assert,
            Expr::Binary(b) => b.left.first(),
            Expr::Conditional(c) => c.if_,
            Expr::Function(f) => f.function,
            Expr::InSuper(e, _, _) => e.first(),
            Expr::Index(i) => i.target.first(),
            Expr::Local(l) => l.local,
            Expr::Object(o) => o.open,
            Expr::ObjectComp(o) => o.open,
            Expr::Parens(p) => p.open,
        }
    }
}

impl FieldName {
    /// The first token of the field name.
    pub(super) fn first(&self) -> Tok {
        match self {
            FieldName::Id(t) | FieldName::Str(t) | FieldName::Expr(t, _, _) => *t,
        }
    }
}

impl Member {
    /// The first token of the member.
    pub(super) fn first(&self) -> Tok {
        match self {
            Member::Local { local, .. } => *local,
            Member::Assert { assert, .. } => *assert,
            Member::Field { name, .. } => name.first(),
        }
    }
}
