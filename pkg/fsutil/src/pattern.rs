//! Path patterns with the semantics of Docker's `patternmatcher` (the `.dockerignore` syntax),
//! which fsutil uses for include and exclude patterns.
//!
//! A pattern is cleaned like a path (`./a//b/` is `a/b`); `*` matches any run of characters
//! but `/`, `?` one character but `/`, `[a-z]` / `[^a-z]` a character class, `\x` the character
//! `x`, and `**` any number of whole directories (`a/**/b` matches `a/b` and `a/x/y/b`). A leading
//! `!` makes the pattern an exception. Matching is of the whole path, and the caller supplies
//! what the parent directory matched, so that a pattern matching a directory also matches
//! everything under it.
//!
//! Besides matching, a pattern answers whether it could match anything *below* a directory, which
//! lets the walk skip directories that no pattern can reach.

use super::Error;

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// This exact character.
    Char(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one character other than `/`.
    Question,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**` followed by more pattern: nothing, or anything ending with `/` (the regular
    /// expression `(.*/)?`).
    DoubleStar,
    /// Anything at all (`.*`), as a trailing `**` means.
    Any,
}

impl Tok {
    fn class_matches(negated: bool, ranges: &[(char, char)], c: char) -> bool {
        ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != negated
    }
}

/// A compiled pattern: a small NFA over [`Tok`]s.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    toks: Vec<Tok>,
    exclusion: bool,
}

/// The states of a pattern's NFA: `at[k]` means "about to match token k" (k = len is
/// accepting); `inner[k]` means "inside the `.*` of the [`Tok::DoubleStar`] at k".
#[derive(Clone)]
struct States {
    at: Vec<bool>,
    inner: Vec<bool>,
}

impl Pattern {
    /// Compiles one pattern as `patternmatcher.New` does: trimmed, cleaned, `!` for an exception.
    /// Returns `None` for a pattern that is empty once trimmed (it is ignored).
    pub(crate) fn new(raw: &str) -> Result<Option<Self>, Error> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let cleaned = clean_path(trimmed);
        let (exclusion, body) = match cleaned.strip_prefix('!') {
            Some("") => return Err(invalid(raw, "\"!\" alone excludes nothing")),
            Some(rest) => (true, rest),
            None => (false, cleaned.as_str()),
        };
        let toks = compile(body).map_err(|reason| invalid(raw, reason))?;
        Ok(Some(Self { toks, exclusion }))
    }

    /// Whether the whole of `path` (slash-separated, relative) matches.
    pub(crate) fn matches(&self, path: &str) -> bool {
        match self.run(path) {
            Some(states) => states.at[self.toks.len()],
            None => false,
        }
    }

    /// Whether some path strictly below the directory `dir` could match.
    pub(crate) fn could_match_below(&self, dir: &str) -> bool {
        let mut input = String::with_capacity(dir.len() + 1);
        input.push_str(dir);
        input.push('/');
        // Every token can be satisfied by some continuation, so any live state other than the
        // bare accepting one means a longer path can match.
        self.run(&input).is_some_and(|states| {
            states.inner.iter().any(|&s| s) || states.at[..self.toks.len()].iter().any(|&s| s)
        })
    }

    /// Runs the NFA over `input`; `None` once no state is alive.
    fn run(&self, input: &str) -> Option<States> {
        let n = self.toks.len();
        let mut cur = States {
            at: vec![false; n + 1],
            inner: vec![false; n + 1],
        };
        cur.at[0] = true;
        self.close(&mut cur);
        let mut next = cur.clone();
        for c in input.chars() {
            next.at.iter_mut().for_each(|s| *s = false);
            next.inner.iter_mut().for_each(|s| *s = false);
            let mut alive = false;
            for k in 0..=n {
                if cur.inner[k] {
                    next.inner[k] = true;
                    alive = true;
                    if c == '/' {
                        next.at[k + 1] = true;
                    }
                }
                if !cur.at[k] || k == n {
                    continue;
                }
                match &self.toks[k] {
                    Tok::Char(x) if *x == c => next.at[k + 1] = true,
                    Tok::Char(_) => continue,
                    Tok::Star if c != '/' => next.at[k] = true,
                    Tok::Question if c != '/' => next.at[k + 1] = true,
                    Tok::Star | Tok::Question => continue,
                    Tok::Class { negated, ranges } => {
                        if Tok::class_matches(*negated, ranges, c) {
                            next.at[k + 1] = true;
                        } else {
                            continue;
                        }
                    }
                    Tok::DoubleStar => {
                        next.inner[k] = true;
                        if c == '/' {
                            next.at[k + 1] = true;
                        }
                    }
                    Tok::Any => next.at[k] = true,
                }
                alive = true;
            }
            if !alive {
                return None;
            }
            self.close(&mut next);
            std::mem::swap(&mut cur, &mut next);
        }
        Some(cur)
    }

    /// Follows the empty moves: `*`, `**` and a trailing `**` may match nothing.
    fn close(&self, states: &mut States) {
        for k in 0..self.toks.len() {
            if states.at[k] && matches!(self.toks[k], Tok::Star | Tok::DoubleStar | Tok::Any) {
                states.at[k + 1] = true;
            }
        }
    }
}

fn invalid(pattern: &str, reason: &'static str) -> Error {
    Error::InvalidPattern {
        pattern: pattern.to_string(),
        reason,
    }
}

/// How `patternmatcher` classifies a pattern, which decides a few corner cases.
#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    /// No wildcard: the path must equal the pattern.
    Exact,
    /// Literal text then a trailing `**`: the path must start with the text.
    Prefix,
    /// A leading `**` then literal text: the path must end with the text.
    Suffix,
    /// Anything else: a regular expression over the whole path.
    Regexp,
}

/// Compiles a cleaned pattern (without its `!`) into tokens, following the translation
/// `patternmatcher` makes into a regular expression.
fn compile(pattern: &str) -> Result<Vec<Tok>, &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut kind = Kind::Exact;
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        kind = Kind::Regexp;
                    }
                    toks.push(Tok::Any);
                } else {
                    toks.push(Tok::DoubleStar);
                    kind = Kind::Regexp;
                }
                if first {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                kind = Kind::Regexp;
            }
            '?' => {
                toks.push(Tok::Question);
                kind = Kind::Regexp;
            }
            '\\' => match chars.get(i) {
                Some(&next) => {
                    i += 1;
                    toks.push(Tok::Char(next));
                    kind = Kind::Regexp;
                }
                None => return Err("trailing backslash"),
            },
            '[' => {
                let (tok, used) = parse_class(&chars[i..])?;
                i += used;
                toks.push(tok);
                kind = Kind::Regexp;
            }
            ']' => {
                toks.push(Tok::Char(']'));
                kind = Kind::Regexp;
            }
            c => toks.push(Tok::Char(c)),
        }
        first = false;
    }
    if kind == Kind::Suffix {
        // patternmatcher matches a leading-`**` pattern without other wildcards as "the path
        // ends with the rest" (or, for `**/x`, is `x`); `**x` therefore matches `ax` too.
        if let Some(Tok::DoubleStar) = toks.first() {
            if !pattern.starts_with("**/") {
                toks[0] = Tok::Any;
            }
        }
    }
    Ok(toks)
}

/// Parses a character class after its `[`, with the syntax Go's `filepath.Match` accepts
/// (which `patternmatcher` checks every pattern against). Returns the token and the number of
/// characters used, including the closing `]`.
fn parse_class(chars: &[char]) -> Result<(Tok, usize), &'static str> {
    let mut i = 0;
    let negated = chars.first() == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        match chars.get(i) {
            None => return Err("unterminated character class"),
            Some(']') if !ranges.is_empty() => return Ok((Tok::Class { negated, ranges }, i + 1)),
            _ => {}
        }
        let (lo, used) = class_char(&chars[i..])?;
        i += used;
        let mut hi = lo;
        if chars.get(i) == Some(&'-') {
            let (h, used) = class_char(&chars[i + 1..])?;
            hi = h;
            i += 1 + used;
            if hi < lo {
                return Err("character range out of order");
            }
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char]) -> Result<(char, usize), &'static str> {
    match chars {
        [] => Err("unterminated character class"),
        ['-' | ']', ..] => Err("bad character class"),
        ['\\', c, ..] => Ok((*c, 2)),
        ['\\'] => Err("trailing backslash"),
        [c, ..] => Ok((*c, 1)),
    }
}

/// A Go `filepath.Match` glob for one path element (used to expand wildcards in follow paths):
/// `*`, `?`, classes and `\` escapes, no `**`.
pub(crate) struct Glob {
    pattern: Pattern,
}

impl Glob {
    /// Compiles `name`; `None` if it is not a valid glob.
    pub(crate) fn new(name: &str) -> Option<Self> {
        let chars: Vec<char> = name.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let ch = chars[i];
            i += 1;
            match ch {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Question),
                '\\' => {
                    toks.push(Tok::Char(*chars.get(i)?));
                    i += 1;
                }
                '[' => {
                    let (tok, used) = parse_class(&chars[i..]).ok()?;
                    i += used;
                    toks.push(tok);
                }
                c => toks.push(Tok::Char(c)),
            }
        }
        Some(Self {
            pattern: Pattern {
                toks,
                exclusion: false,
            },
        })
    }

    /// Whether `name` matches.
    pub(crate) fn matches(&self, name: &str) -> bool {
        self.pattern.matches(name)
    }
}

/// Whether a path element holds glob wildcards (`*`, `?`, `[`), honouring `\` escapes.
pub(crate) fn has_wildcards(name: &str) -> bool {
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Go's `path.Clean`: the shortest lexically equivalent slash path.
pub(crate) fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|last| *last != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// A list of patterns evaluated together, as `patternmatcher.PatternMatcher` does.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    pub(crate) fn new(patterns: &[String]) -> Result<Self, Error> {
        let mut out = Vec::with_capacity(patterns.len());
        for p in patterns {
            if let Some(p) = Pattern::new(p)? {
                out.push(p);
            }
        }
        Ok(Self { patterns: out })
    }

    /// Whether `path` is matched (the last pattern to match it, in order, is not an exception;
    /// a pattern matching the parent directory matches it too). `parent` is what
    /// [`Matcher::matches`] returned for the parent directory, or empty at the top level.
    /// Returns the result and the per-pattern record to pass for the path's children
    /// (`patternmatcher`'s `MatchesUsingParentResults`).
    pub(crate) fn matches(&self, path: &str, parent: &[bool]) -> (bool, Vec<bool>) {
        let use_parent = parent.len() == self.patterns.len() && !parent.is_empty();
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, pattern) in self.patterns.iter().enumerate() {
            let mut hit = use_parent && parent[i];
            if !hit {
                // An inclusion cannot change a path already matched, nor an exception one not
                // matched yet.
                if pattern.exclusion != matched {
                    continue;
                }
                hit = pattern.matches(path);
                if !hit && !use_parent {
                    // No record for the parent: try every ancestor directory.
                    hit = ancestors(path).any(|a| pattern.matches(a));
                }
            }
            info[i] = hit;
            if hit {
                matched = !pattern.exclusion;
            }
        }
        (matched, info)
    }

    /// Whether a path below `dir` could be matched by a non-exception pattern.
    pub(crate) fn inclusion_could_match_below(&self, dir: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| !p.exclusion && p.could_match_below(dir))
    }

    /// Whether a path below `dir` could be matched by an exception (`!`) pattern.
    pub(crate) fn exception_could_match_below(&self, dir: &str) -> bool {
        self.patterns
            .iter()
            .any(|p| p.exclusion && p.could_match_below(dir))
    }
}

/// The proper ancestors of a relative path, shortest first: `a/b/c` gives `a`, `a/b`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        Pattern::new(pattern).unwrap().unwrap().matches(path)
    }

    #[test]
    fn literal_star_question_class() {
        assert!(m("foo", "foo"));
        assert!(!m("foo", "foo/bar"));
        assert!(m("./foo/", "foo"));
        assert!(m("*.rs", "main.rs"));
        assert!(!m("*.rs", "src/main.rs"));
        assert!(m("src/*.rs", "src/main.rs"));
        assert!(m("fo?", "foo"));
        assert!(!m("fo?", "fo/"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("[^a-c]x", "dx"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("a.b", "a.b"));
        assert!(!m("a.b", "axb"));
    }

    #[test]
    fn double_star() {
        assert!(m("**", "a"));
        assert!(m("**", "a/b/c"));
        assert!(m("**/foo", "foo"));
        assert!(m("**/foo", "a/b/foo"));
        assert!(!m("**/foo", "a/bfoo"));
        assert!(m("**foo", "a/bfoo"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/y/b"));
        assert!(!m("a/**/b", "a/xb"));
        assert!(m("a/**", "a/x"));
        assert!(m("a/**", "a/x/y"));
        assert!(!m("a/**", "a"));
        assert!(m("**/*.txt", "x/y/z.txt"));
        assert!(m("**/*.txt", "z.txt"));
        assert!(m("a**", "abc/d"));
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(m("]", "]"));
        for p in ["[", "a[b", "[]", "a\\", "!", "[z-a]"] {
            assert!(Pattern::new(p).is_err(), "{p}");
        }
        assert!(Pattern::new("   ").unwrap().is_none());
    }

    #[test]
    fn could_match_below() {
        let p = |s: &str| Pattern::new(s).unwrap().unwrap();
        assert!(p("a/b/c").could_match_below("a"));
        assert!(p("a/b/c").could_match_below("a/b"));
        assert!(!p("a/b/c").could_match_below("a/b/c"));
        assert!(!p("a/b/c").could_match_below("x"));
        assert!(p("src/*.rs").could_match_below("src"));
        assert!(!p("src/*.rs").could_match_below("docs"));
        assert!(p("*/x").could_match_below("anything"));
        assert!(!p("*/x").could_match_below("a/b"));
        assert!(p("**/x").could_match_below("a/b"));
        assert!(p("a/**").could_match_below("a/b"));
        assert!(!p("a/**").could_match_below("b"));
    }

    #[test]
    fn matcher_parent_results_and_exceptions() {
        let pm = Matcher::new(&["foo*".into(), "!foo/bar2".into()]).unwrap();
        let (foo, info) = pm.matches("foo", &[]);
        assert!(foo);
        assert!(pm.matches("foo/bar", &info).0);
        assert!(!pm.matches("foo/bar2", &info).0);
        assert!(pm.exception_could_match_below("foo"));
        assert!(!pm.exception_could_match_below("zzz"));
        // Without a parent record every ancestor is tried.
        assert!(pm.matches("foo/x/y", &[]).0);
    }

    #[test]
    fn clean() {
        assert_eq!(clean_path(""), ".");
        assert_eq!(clean_path("./a//b/"), "a/b");
        assert_eq!(clean_path("a/../../b"), "../b");
        assert_eq!(clean_path("/../a"), "/a");
        assert_eq!(clean_path("a/.."), ".");
    }

    #[test]
    fn glob() {
        assert!(Glob::new("l*").unwrap().matches("l1"));
        assert!(!Glob::new("l?").unwrap().matches("l12"));
        assert!(has_wildcards("l*"));
        assert!(!has_wildcards("l\\*"));
    }
}
