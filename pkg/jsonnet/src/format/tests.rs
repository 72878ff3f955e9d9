use std::path::Path;

use super::*;

#[test]
fn formats_and_is_stable() {
    let messy = "{a:1,\n      b:[1,2],\n// note\nc: {d:'x'}}";
    let once = format_text(messy).unwrap();
    assert_ne!(once, messy);
    assert!(once.contains("// note"), "comments are kept: {once}");
    assert_eq!(
        format_text(&once).unwrap(),
        once,
        "formatting is idempotent"
    );
}

#[test]
fn invalid_jsonnet_is_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonnet");
    std::fs::write(&path, "{ a: ").unwrap();
    assert!(matches!(
        format_file(&path, false),
        Err(FormatError::Parse { .. })
    ));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ a: ");
}

#[test]
fn check_reports_without_writing_and_writing_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jsonnet");
    std::fs::write(&path, "{a:1}").unwrap();
    assert!(format_file(&path, true).unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{a:1}");
    assert!(format_file(&path, false).unwrap());
    assert!(!format_file(&path, true).unwrap(), "formatted now");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporary file left"
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_is_written_through_and_stays_a_link() {
    use std::os::unix::fs::{symlink, PermissionsExt};

    let dir = tempfile::tempdir().unwrap();
    // The link and its target in different directories, the link relative.
    let (shared, project) = (dir.path().join("shared"), dir.path().join("project"));
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::create_dir_all(&project).unwrap();
    let target = shared.join("base.libsonnet");
    std::fs::write(&target, "{a:1}").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = project.join("brewkit.jsonnet");
    symlink("../shared/base.libsonnet", &link).unwrap();

    assert!(format_file(&link, false).unwrap());
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_symlink(), "the link is still a link");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("../shared/base.libsonnet")
    );
    let formatted = std::fs::read_to_string(&target).unwrap();
    assert_eq!(formatted, format_text("{a:1}").unwrap());
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640, "the target keeps its permissions");
    assert!(!format_file(&link, true).unwrap(), "formatted now");
    for dir in [&shared, &project] {
        assert_eq!(
            std::fs::read_dir(dir).unwrap().count(),
            1,
            "no temporary file left in {}",
            dir.display()
        );
    }
}

/// The file of the issue: every comment kept, laid out as jsonnetfmt lays it out.
const ISSUE: &str = "// Header comment: the build of a service.
local copy = std.native('copy');   // trailing comment on a local
# hash comment before a local
local base = 'golang:1.22';
/* block comment
   over two lines */
local step(name, cmd) = {
  from: base,  // the image
  command: cmd,
};

// Explains the targets object.
{ apiVersion: 'brewkit/v1', targets: { all: ['a'], a: step('a', 'make a') } }
";

#[test]
fn the_issue_file_keeps_every_comment() {
    let expected = "// Header comment: the build of a service.
local copy = std.native('copy');  // trailing comment on a local
// hash comment before a local
local base = 'golang:1.22';
/* block comment
   over two lines */
local step(name, cmd) = {
  from: base,  // the image
  command: cmd,
};

// Explains the targets object.
{ apiVersion: 'brewkit/v1', targets: { all: ['a'], a: step('a', 'make a') } }
";
    let formatted = format_text(ISSUE).unwrap();
    assert_eq!(formatted, expected);
    assert_eq!(lost_comment(ISSUE, &formatted), None);
    assert_eq!(format_text(&formatted).unwrap(), formatted);
}

#[test]
fn jsonnetfmt_rules() {
    for (input, expected) in [
        // Padding inside objects, not arrays; single quotes; `//` comments; field names unquoted.
        (
            "{\"a\":[ 1,2 ],'b c':\"it's\"} # c",
            "{ a: [1, 2], 'b c': \"it's\" }  // c\n",
        ),
        // A line break before any element spreads the array, with a trailing comma.
        ("[1, 2,\n3]", "[\n  1,\n  2,\n  3,\n]\n"),
        // Parameters stay as written, lined up after the parenthesis.
        ("local f(a,\nb) = a; f", "local f(a,\n        b) = a; f\n"),
        // At most two blank lines; none at the start of the file.
        ("\n\n1 +\n\n\n\n\n2", "1 +\n\n\n2\n"),
        // `x['a']` becomes `x.a`, `a + {}` becomes `a {}`, `((e))` loses a pair.
        ("x['a'] + y + {} + ((1))", "x.a + y + {} + (1)\n"),
        // Imports sorted by path, one binding a line.
        (
            "local b = import 'b.libsonnet'; local a = import 'a.libsonnet'; a + b",
            "local a = import 'a.libsonnet';\nlocal b = import 'b.libsonnet';\na + b\n",
        ),
        // Text blocks indented from the enclosing line.
        (
            "{a: |||\n      x\n        y\n    |||}",
            "{ a: |||\n  x\n    y\n||| }\n",
        ),
        // A shebang stays as it is.
        (
            "#!/usr/bin/env jsonnet\n# c\n1",
            "#!/usr/bin/env jsonnet\n// c\n1\n",
        ),
    ] {
        assert_eq!(format_text(input).unwrap(), expected, "{input:?}");
    }
}

#[test]
fn jsonnetfmt_quirks_are_reproduced() {
    // Where jsonnetfmt's layout follows from how it counts columns or leaves fodder alone, not
    // from a rule one would write down; byte-for-byte equality needs them all.
    for (input, expected) in [
        // A space before the left side of `in super`, even at the start of a line.
        ("{} in super", " {} in super\n"),
        // A space counted, not printed, between a unary operator and `$`.
        ("a(~$ + a(1,\n2))", "a(~$ + a(1,\n          2))\n"),
        // A space printed, not counted, before a named argument.
        ("foooo(x, bbbbbbbb= 1 +\n2)", "foooo(x, bbbbbbbb=1 +\n                 2)\n"),
        // The fodder before a slice's `]` keeps its indentation; the colon of `a[b:]` is not
        // counted.
        ("xx[1:2\n     ]", "xx[1:2\n     ]\n"),
        ("x[1:]\n+ [a(1,\n2)]", "x[1:]\n+ [a(1,\n     2)]\n"),
        // A comment counts its bytes, a string its characters.
        ("f(/* é */ 1, g(1,\n2))", "f(/* é */ 1, g(1,\n                2))\n"),
        // A field's value lines up after the colon, not after the space.
        ("{c: x\n.y}", "{ c: x\n    .y }\n"),
        // An operator on a line of its own indents the operands from the left one's column.
        (
            "local x = {\na: 1}\n+ {\nb: 1}; x",
            "local x = {\n            a: 1,\n          }\n          + {\n            b: 1,\n          }; x\n",
        ),
    ] {
        assert_eq!(format_text(input).unwrap(), expected, "{input:?}");
    }
}

#[test]
fn comments_jsonnetfmt_would_drop_are_kept() {
    // jsonnetfmt writes `f(1, b=2) + { x: 1 }.x`, deleting both comments.
    let text = "local f(a=1, b=2) = a;\nf(1, b /* why */ = 2) + {x: 1}['x' /* kept */]\n";
    let formatted = format_text(text).unwrap();
    assert_eq!(
        formatted,
        "local f(a=1, b=2) = a;\nf(1, b/* why */=2) + { x: 1 }['x'/* kept */]\n"
    );
    assert_eq!(lost_comment(text, &formatted), None);
    // Without a comment there, the same text as jsonnetfmt.
    assert_eq!(
        format_text("f(b\n= 2) + {x: 1}['x'\n]").unwrap(),
        "f(b=2) + { x: 1 }.x\n"
    );
}

#[test]
fn syntax_errors_name_the_line() {
    for (text, line) in [
        ("{\n  a: 1\n  b: 2\n}", 3),
        ("local x = 1;\n'unterminated", 2),
        ("{ a: 1, a: 2 }", 1),
        ("f(a=1, 2)", 1),
        ("x + import 'a' + 'b'", 1),
        ("1 +\n'\\q'", 2),
    ] {
        let err = format_text(text).unwrap_err();
        assert_eq!(err.line, line, "{text:?}: {err}");
    }
}

#[test]
fn crlf_files_come_out_with_line_feeds() {
    let text = "{\r\n  a: |||\r\n    x\r\n  |||, // c\r\n}\r\n";
    assert_eq!(
        format_text(text).unwrap(),
        "{\n  a: |||\n    x\n  |||,  // c\n}\n"
    );
}

#[test]
fn lost_comments_are_found_whatever_their_marker() {
    let before = "# one\nlocal a = 1; /* two\n  lines */ a // three\n";
    assert_eq!(
        lost_comment(before, "// one\n/* two lines */ // three\n"),
        None
    );
    assert_eq!(
        lost_comment(before, "// one\n// three\n"),
        Some((2, "two lines".to_owned()))
    );
    // Counted: a comment twice must stay twice.
    assert_eq!(
        lost_comment("// x\n// x\n1", "// x\n1"),
        Some((2, "x".to_owned()))
    );
    assert_eq!(
        lost_comment("/** a **/ 1 /* b */", "/** a **/ 1"),
        Some((1, "b".to_owned()))
    );
    // Not comments: in strings and text blocks.
    let text = "['// a', \"# b\", @'/* c */', |||\n  // d\n    ||| e\n|||, /* f */]";
    let found: Vec<String> = safety::comments(text).into_iter().map(|c| c.text).collect();
    assert_eq!(found, ["f"]);
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_formatter_that_loses_a_comment_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "brewkit.jsonnet", ISSUE);
    // A formatter that drops hash comments, as the old one did.
    let lossy = |text: &str| -> Result<String, SyntaxError> {
        let formatted = format_text(text)?;
        Ok(formatted.replace("// hash comment before a local\n", ""))
    };
    for check in [true, false] {
        let err = format_file_with(&path, check, lossy).unwrap_err();
        assert!(
            matches!(&err, FormatError::CommentLost { line: 3, comment, .. } if comment == "hash comment before a local"),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{}:3: ", path.display())),
            "{message}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), ISSUE);
    }
}

#[test]
fn a_formatter_that_changes_the_value_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Natives are stubbed: the change of a native's argument shows.
    let text = "local copy = std.native('copy');\n{a:copy('src','/app')}";
    let path = write(dir.path(), "brewkit.jsonnet", text);
    let changing = |text: &str| format_text(text).map(|f| f.replace("/app", "/other"));
    let err = format_file_with(&path, false, changing).unwrap_err();
    assert!(matches!(err, FormatError::Changed { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

    // A different tree with the same value (`a + {}` is `a {}`), imported files resolved from
    // the file's directory.
    write(dir.path(), "lib.libsonnet", "{ x: 1 }");
    let text = "local lib = import 'lib.libsonnet';\nlib + {y: 2}";
    let path = write(dir.path(), "tree.jsonnet", text);
    assert!(format_file(&path, false).unwrap());
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "local lib = import 'lib.libsonnet';\nlib { y: 2 }\n"
    );

    // A file that does not evaluate (an unknown variable) is formatted all the same.
    let path = write(dir.path(), "broken.jsonnet", "{a:unknown}");
    assert!(format_file(&path, false).unwrap());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ a: unknown }\n");
}
