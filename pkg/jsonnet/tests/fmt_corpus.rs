//! `brewkit fmt` against `jsonnetfmt` (Debian's `jsonnet` package, 0.18) as the oracle: every
//! file of the corpus (tests/fixtures/fmt) and every Jsonnet file of the repository formats to
//! exactly what `jsonnetfmt` writes, a second run changes nothing, no comment is lost; and the
//! repository's own files are formatted.

// Helpers outside `#[test]` functions are test code too: a failed setup step should panic there.
#![allow(clippy::unwrap_used)]

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use brewkit_jsonnet::format::{format_file, format_text, lost_comment};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The corpus inputs, deliberately not formatted.
fn corpus_dir() -> PathBuf {
    root().join("tests/fixtures/fmt")
}

/// Directories of the repository whose Jsonnet files are not expected to be formatted (relative
/// to the root): the corpus inputs. Deliberately broken fixtures used by error tests go here too.
const NOT_FORMATTED: &[&str] = &["tests/fixtures/fmt"];

/// Every `.jsonnet` and `.libsonnet` file under `dir`, build output and hidden directories
/// aside.
fn jsonnet_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target") {
                jsonnet_files(&path, out);
            }
        } else if name.ends_with(".jsonnet") || name.ends_with(".libsonnet") {
            out.push(path);
        }
    }
}

/// The repository's own Jsonnet files (examples, fixtures, its build), the corpus aside.
fn own_files() -> Vec<PathBuf> {
    let root = root().canonicalize().unwrap();
    let mut files = Vec::new();
    jsonnet_files(&root, &mut files);
    files.retain(|f| {
        let relative = f.strip_prefix(&root).unwrap();
        !NOT_FORMATTED.iter().any(|dir| relative.starts_with(dir))
    });
    files
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    jsonnet_files(&corpus_dir(), &mut files);
    files
}

/// What `jsonnetfmt` writes for `file`; `None` when it refuses the file. Fails, rather than
/// passing, when `jsonnetfmt` is not installed.
fn jsonnetfmt(file: &Path) -> Option<String> {
    jsonnetfmt_args(&[file.as_os_str()])
}

/// What `jsonnetfmt` writes for `text`.
fn jsonnetfmt_text(text: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.jsonnet");
    std::fs::write(&file, text).unwrap();
    jsonnetfmt(&file)
}

fn jsonnetfmt_args(args: &[&std::ffi::OsStr]) -> Option<String> {
    let output = match Command::new("jsonnetfmt").args(args).output() {
        Ok(output) => output,
        Err(e) => panic!(
            "jsonnetfmt cannot run ({e}): it is the oracle of these tests; install the `jsonnet` \
             package (apt-get install jsonnet; scripts/backend up does it)"
        ),
    };
    output
        .status
        .success()
        .then(|| String::from_utf8(output.stdout).expect("jsonnetfmt writes UTF-8"))
}

fn show(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_file_formats_as_jsonnetfmt_formats_it() {
    let mut files = corpus_files();
    let corpus = files.len();
    files.extend(own_files());
    assert!(
        files.len() >= 60,
        "the corpus has {} files, fewer than 60",
        files.len()
    );
    let mut failures = Vec::new();
    let mut not_idempotent = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let Some(expected) = jsonnetfmt(file) else {
            failures.push(format!("{}: jsonnetfmt refuses it", show(file)));
            continue;
        };
        let ours = match format_text(&text) {
            Ok(ours) => ours,
            Err(e) => {
                failures.push(format!("{}: not formatted: {e}", show(file)));
                continue;
            }
        };
        if ours != expected {
            let line = ours
                .lines()
                .zip(expected.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| ours.lines().count().min(expected.lines().count()));
            failures.push(format!(
                "{}: differs from jsonnetfmt at output line {}:\n  ours:       {:?}\n  jsonnetfmt: {:?}",
                show(file),
                line + 1,
                ours.lines().nth(line).unwrap_or("<end>"),
                expected.lines().nth(line).unwrap_or("<end>"),
            ));
            continue;
        }
        // A second run changes nothing, but where jsonnetfmt's own second run changes the text
        // (`(((e)))` loses one pair of parentheses a run; a comment moved next to another one
        // lexes differently the next time): then it does what jsonnetfmt does.
        let again = format_text(&ours).ok();
        if again.as_ref() != Some(&ours) {
            let theirs = jsonnetfmt_text(&ours);
            if again.is_none() || again != theirs {
                failures.push(format!("{}: a second run changes the text", show(file)));
            } else {
                not_idempotent.push(show(file));
            }
        }
        if let Some((line, comment)) = lost_comment(&text, &ours) {
            failures.push(format!(
                "{}: the comment of line {line} is lost: {comment:?}",
                show(file)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} files ({corpus} in the corpus):\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    // The files where jsonnetfmt is not idempotent (see above), known and few.
    assert!(
        not_idempotent.len() <= 8,
        "a second run changes these (as jsonnetfmt's does): {not_idempotent:?}"
    );
}

#[test]
fn the_corpus_inputs_are_not_formatted_already() {
    // A repository-wide `brewkit fmt` would empty the corpus of its purpose.
    let formatted: Vec<String> = corpus_files()
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            format_text(&text).is_ok_and(|ours| ours == text)
        })
        .map(|f| show(f))
        .collect();
    assert!(
        formatted.is_empty(),
        "already formatted: {}",
        formatted.join(", ")
    );
}

#[test]
fn format_file_writes_the_same_and_its_checks_pass() {
    // The whole of `brewkit fmt` (comment and meaning checks, the atomic write) on copies.
    let dir = tempfile::tempdir().unwrap();
    for file in corpus_files() {
        let copy = dir.path().join(file.file_name().unwrap());
        std::fs::copy(&file, &copy).unwrap();
        let expected = jsonnetfmt(&file).unwrap();
        match format_file(&copy, true) {
            Ok(changed) => assert!(changed, "{}: --check says formatted", show(&file)),
            Err(e) => panic!("{}: --check: {e}", show(&file)),
        }
        if let Err(e) = format_file(&copy, false) {
            panic!("{}: {e}", show(&file));
        }
        assert_eq!(
            std::fs::read_to_string(&copy).unwrap(),
            expected,
            "{}",
            show(&file)
        );
        let settled = jsonnetfmt_text(&expected).unwrap() == expected;
        assert_eq!(
            format_file(&copy, true).unwrap(),
            !settled,
            "{}: formatted once, --check agrees with jsonnetfmt --test",
            show(&file)
        );
    }
}

#[test]
fn the_projects_own_jsonnet_files_are_formatted() {
    let files = own_files();
    assert!(files.len() >= 9, "found only {files:?}");
    let unformatted: Vec<String> = files
        .iter()
        .filter(|f| match format_file(f, true) {
            Ok(changed) => changed,
            Err(e) => panic!("{e}"),
        })
        .map(|f| show(f))
        .collect();
    assert!(
        unformatted.is_empty(),
        "not formatted (run brewkit fmt on them): {}",
        unformatted.join(", ")
    );
}
