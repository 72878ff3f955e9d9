//! Every ```jsonnet block of README.md and docs/*.md is evaluated by `brewkit`, so that a snippet
//! a reader copies works (no missing comma, no unknown native). The convention, also in
//! docs/testing.md:
//!
//! - A block that is a Jsonnet file on its own is evaluated with the natives (`cache`, `copy`,
//!   `copyFrom`, `secret`), as `brewkit build definition-debug` does. If it evaluates to an object
//!   with `apiVersion`, it is a complete definition and must pass `brewkit build definition`
//!   (schema, references, cycles) as well.
//! - Any other block is a fragment of an object: a member list such as `targets: {…}` or
//!   `command: '…',`, after optional `local x = …;` lines, and an optional `// ...` line that
//!   stands for the rest of the file. Its `local` lines are kept in front and the rest is
//!   wrapped in `{ … }`; that must evaluate with the natives.
//! - A block whose first line is a comment showing a command line (`// brewkit --ext-str
//!   goVersion=1.22 build`) is evaluated with the `--ext-str`/`--ext-code` flags it shows.

use std::{
    fs,
    path::{Path, PathBuf},
};

mod common;

use common::{brewkit, root, run_with_stdin};

/// One ```jsonnet block: where it is and what it says.
struct Snippet {
    file: PathBuf,
    line: usize,
    text: String,
}

/// The markdown files whose snippets are checked.
fn documents() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files.push(root().join("README.md"));
    files
}

/// The ```jsonnet blocks of a markdown text, dedented to their fence.
fn snippets(file: &Path) -> Vec<Snippet> {
    let text = fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    let mut open: Option<(usize, usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            None if trimmed.starts_with("```jsonnet") => {
                open = Some((i + 1, indent, String::new()))
            }
            Some((start, _, body)) if trimmed.starts_with("```") => {
                out.push(Snippet {
                    file: file.to_owned(),
                    line: *start,
                    text: std::mem::take(body),
                });
                open = None;
            }
            Some((_, indent, body)) => {
                body.push_str(line.get(*indent..).unwrap_or(line.trim_start()));
                body.push('\n');
            }
            None => {}
        }
    }
    assert!(
        open.is_none(),
        "{}: a ```jsonnet block is not closed",
        file.display()
    );
    out
}

/// The `--ext-str`/`--ext-code` flags of a first-line `// brewkit …` comment.
fn flags(text: &str) -> Vec<String> {
    let Some(command) = text
        .lines()
        .next()
        .and_then(|l| l.trim().strip_prefix("//"))
        .and_then(|l| l.trim().strip_prefix("brewkit "))
    else {
        return Vec::new();
    };
    let words: Vec<&str> = command.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "--ext-str" || w[0] == "--ext-code")
        .flat_map(|w| [w[0].to_owned(), w[1].to_owned()])
        .collect()
}

/// `brewkit [flags] build SUBCOMMAND -f -` with `text` on stdin: exit code, stdout, stderr.
fn evaluate(dir: &Path, flags: &[String], subcommand: &str, text: &str) -> (i32, String, String) {
    run_with_stdin(
        brewkit(dir)
            .current_dir(dir)
            .args(flags)
            .args(["build", subcommand, "-f", "-"]),
        text,
    )
}

/// A fragment as a file: its leading `local` (and comment) lines, then the rest in `{ … }`.
fn wrap(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let head = lines
        .iter()
        .take_while(|l| {
            let l = l.trim_start();
            l.is_empty() || l.starts_with("local ") || l.starts_with("//")
        })
        .count();
    format!(
        "{}\n{{\n{}\n}}\n",
        lines[..head].join("\n"),
        lines[head..].join("\n")
    )
}

/// What is wrong with a snippet, if anything.
fn check(dir: &Path, snippet: &Snippet) -> Option<String> {
    let flags = flags(&snippet.text);
    let (code, stdout, stderr) = evaluate(dir, &flags, "definition-debug", &snippet.text);
    if code != 0 {
        if !stderr.contains("syntax error") {
            return Some(stderr);
        }
        let wrapped = wrap(&snippet.text);
        let (code, _, wrapped_stderr) = evaluate(dir, &flags, "definition-debug", &wrapped);
        return (code != 0).then(|| {
            format!("as a file: {stderr}as a fragment in {{ … }}: {wrapped_stderr}{wrapped}")
        });
    }
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // Not a definition (a host config, say): evaluating was the check.
    value.get("apiVersion")?;
    let (code, _, stderr) = evaluate(dir, &flags, "definition", &snippet.text);
    (code != 0).then_some(stderr)
}

#[test]
fn every_jsonnet_snippet_in_the_docs_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in documents() {
        for snippet in snippets(&file) {
            checked += 1;
            if let Some(problem) = check(dir.path(), &snippet) {
                failures.push(format!(
                    "{}:{}:\n{}\n{problem}",
                    snippet.file.display(),
                    snippet.line,
                    snippet.text
                ));
            }
        }
    }
    assert!(checked >= 20, "only {checked} snippets found");
    assert!(
        failures.is_empty(),
        "{} of {checked} snippets fail:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn fragments_are_wrapped_after_their_locals() {
    assert_eq!(
        wrap("local c = std.native('cache');\n// ...\ncache: c('a', '/a'),\n"),
        "local c = std.native('cache');\n// ...\n{\ncache: c('a', '/a'),\n}\n"
    );
    assert_eq!(
        flags("// brewkit --ext-str v=1 build\n{}"),
        ["--ext-str", "v=1"]
    );
}

#[test]
fn slips_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let snippet = |text: &str| Snippet {
        file: PathBuf::from("example.md"),
        line: 1,
        text: text.to_owned(),
    };
    // The BrewKit 1.x reference's own slips: a missing comma between members…
    let missing_comma = "targets: {\n    gogenerate: {}\n\n    gobuild: {\n        dependsOn: ['gogenerate']\n    }\n}\n";
    let problem = check(dir.path(), &snippet(missing_comma)).expect("a missing comma is caught");
    assert!(problem.contains("syntax error"), "{problem}");
    // …and, in a complete definition, `secret` for `secrets`.
    let misspelt = "local secret = std.native('secret');\n{\n  apiVersion: 'brewkit/v1',\n  targets: { gobuild: { from: 'busybox', command: 'true', secret: secret('aws', '/a') } },\n}\n";
    let problem = check(dir.path(), &snippet(misspelt)).expect("a schema error is caught");
    assert!(problem.contains("did you mean \"secrets\""), "{problem}");
    // An unknown native is caught in a fragment too.
    let problem = check(dir.path(), &snippet("copy: std.native('cpy')('a', 'b'),\n"))
        .expect("an unknown native is caught");
    assert!(problem.contains("cpy"), "{problem}");
    assert!(check(
        dir.path(),
        &snippet("copy: std.native('copy')('a', 'b'),\n")
    )
    .is_none());
}

#[test]
fn every_test_docs_testing_md_names_exists() {
    let text = fs::read_to_string(root().join("docs/testing.md")).unwrap();
    let files = [
        ("cli", "tests/cli.rs"),
        ("build", "tests/build.rs"),
        ("reach", "tests/reach.rs"),
        ("docs", "tests/docs.rs"),
        ("daemon", "pkg/buildkit/tests/daemon.rs"),
        ("config", "pkg/config/src/tests.rs"),
    ];
    let sources: Vec<(&str, String)> = files
        .iter()
        .map(|(prefix, path)| (*prefix, fs::read_to_string(root().join(path)).unwrap()))
        .collect();
    let map = &text[text.find("## What covers what").expect("the map's section")..];
    let mut named = 0;
    let mut missing = Vec::new();
    let rows = map.lines().filter(|l| l.starts_with('|'));
    for code in rows.flat_map(|row| row.split('`').skip(1).step_by(2)) {
        let Some((prefix, name)) = code.split_once("::") else {
            continue;
        };
        let Some((_, source)) = sources.iter().find(|(p, _)| *p == prefix) else {
            continue;
        };
        named += 1;
        if !source.contains(&format!("fn {name}(")) {
            missing.push(code);
        }
    }
    assert!(named > 50, "only {named} tests named in docs/testing.md");
    assert!(
        missing.is_empty(),
        "docs/testing.md names tests that do not exist: {missing:?}"
    );
}
