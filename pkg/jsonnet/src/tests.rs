use std::fs;

use serde_json::json;

use super::*;

const PAIR: Native = Native {
    name: "pair",
    params: &["left", "right"],
    build: |args| json!({"l": args[0], "r": args[1]}),
};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&path, text).unwrap();
    path
}

fn eval(text: &str) -> Result<serde_json::Value, Error> {
    eval_with(text, &Options::default())
}

fn eval_with(text: &str, options: &Options) -> Result<serde_json::Value, Error> {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "main.jsonnet", text);
    evaluate_file(&file, options, &[PAIR])
}

#[test]
fn evaluates_to_json() {
    let value = eval("local x = 1; {a: x + 1, b: [std.length('abc')]}").unwrap();
    assert_eq!(value, json!({"a": 2, "b": [3]}));
}

#[test]
fn syntax_error_names_file_line_and_column() {
    let err = eval("{\n  a: 1,\n  b: [1 2],\n}").unwrap_err();
    let Error::Syntax { location, message } = &err else {
        panic!("expected a syntax error, got {err:?}")
    };
    assert!(location.file.ends_with("main.jsonnet"), "{location}");
    assert_eq!((location.line, location.column), (3, 9));
    assert!(message.contains("expected"), "{message}");
    assert!(
        err.to_string().contains("main.jsonnet:3:9: syntax error:"),
        "{err}"
    );
}

#[test]
fn runtime_error_carries_the_jsonnet_stack() {
    let err = eval("local f(x) = error 'boom: ' + x;\n{\n  a: f('here'),\n}").unwrap_err();
    let Error::Runtime {
        location,
        message,
        stack,
    } = &err
    else {
        panic!("expected a runtime error, got {err:?}")
    };
    assert!(message.contains("boom: here"), "{message}");
    let location = location.as_ref().expect("a location");
    assert_eq!(location.line, 1, "{err}");
    assert!(
        stack.iter().any(|f| f.contains("main.jsonnet:3:")),
        "{stack:?}"
    );
    assert!(stack.iter().any(|f| f.contains("field <a>")), "{stack:?}");
    assert!(err.to_string().contains("Jsonnet stack:"), "{err}");
}

#[test]
fn missing_file_is_a_read_error() {
    let err = evaluate_file(
        Path::new("/nonexistent/brewkit.jsonnet"),
        &Options::default(),
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/brewkit.jsonnet"),
        "{err}"
    );
}

#[test]
fn imports_are_relative_to_the_importing_file() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "lib/inner.libsonnet", "{ v: 'inner' }");
    write(
        dir.path(),
        "lib/outer.libsonnet",
        "(import 'inner.libsonnet') + { w: importstr 'data.txt' }",
    );
    write(dir.path(), "lib/data.txt", "text");
    let main = write(dir.path(), "main.jsonnet", "import 'lib/outer.libsonnet'");
    let value = evaluate_file(&main, &Options::default(), &[]).unwrap();
    assert_eq!(value, json!({"v": "inner", "w": "text"}));
}

#[test]
fn jpath_directories_are_searched_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "first/lib.libsonnet", "'first'");
    write(dir.path(), "second/lib.libsonnet", "'second'");
    write(dir.path(), "second/only.libsonnet", "'only-second'");
    let main = write(
        dir.path(),
        "project/main.jsonnet",
        "[import 'lib.libsonnet', import 'only.libsonnet']",
    );
    let options = Options {
        jpath: vec![dir.path().join("first"), dir.path().join("second")],
        ..Options::default()
    };
    let value = evaluate_file(&main, &options, &[]).unwrap();
    assert_eq!(value, json!(["first", "only-second"]));
}

#[test]
fn the_last_cli_jpath_wins() {
    let ordered = Options::jpath_with_env(&[PathBuf::from("a"), PathBuf::from("b")]);
    assert_eq!(&ordered[..2], &[PathBuf::from("b"), PathBuf::from("a")]);
}

#[test]
fn import_of_a_missing_file_names_it() {
    let err = eval("import 'nope.libsonnet'").unwrap_err();
    assert!(err.to_string().contains("nope.libsonnet"), "{err}");
}

#[test]
fn ext_str_and_ext_code() {
    let options = Options {
        ext_vars: vec![
            ExtVar::parse("name=world", false).unwrap(),
            ExtVar::parse("n={a: 1 + 1}", true).unwrap(),
        ],
        ..Options::default()
    };
    let value = eval_with("{s: std.extVar('name'), c: std.extVar('n')}", &options).unwrap();
    assert_eq!(value, json!({"s": "world", "c": {"a": 2}}));
}

#[test]
fn undefined_ext_var_is_an_error() {
    let err = eval("std.extVar('missing')").unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn ext_var_parse_rejects_an_empty_name() {
    assert!(ExtVar::parse("=x", false).is_err());
}

#[test]
fn natives_build_their_result() {
    let value = eval("std.native('pair')('a', 'b')").unwrap();
    assert_eq!(value, json!({"l": "a", "r": "b"}));
    let named = eval("std.native('pair')(right='b', left='a')").unwrap();
    assert_eq!(named, json!({"l": "a", "r": "b"}));
}

#[test]
fn native_with_a_wrong_type_names_the_native_and_the_argument() {
    let err = eval("std.native('pair')('a', 1)").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("std.native('pair'): argument `right` must be a string, got number"),
        "{text}"
    );
}

#[test]
fn native_with_too_few_arguments_names_the_missing_one() {
    let err = eval("std.native('pair')('a')").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("right"), "{text}");
    assert!(text.contains("pair"), "{text}");
}

#[test]
fn native_with_too_many_arguments_is_refused() {
    let err = eval("std.native('pair')('a', 'b', 'c')").unwrap_err();
    let text = err.to_string();
    assert!(text.contains("pair"), "{text}");
    assert!(text.contains("too many"), "{text}");
}

fn runtime(err: &Error) -> (&Location, &str) {
    let Error::Runtime {
        location: Some(location),
        message,
        ..
    } = err
    else {
        panic!("expected a runtime error with a location, got {err:?}")
    };
    (location, message)
}

#[test]
fn failed_import_names_its_place_and_every_path_searched_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "project/main.jsonnet",
        "local x = 1;\nlocal c = import 'lib/common.libsonnet';\n{ c: c }",
    );
    let options = Options {
        jpath: vec![dir.path().join("first"), dir.path().join("second")],
        ..Options::default()
    };
    let err = evaluate_file(&main, &options, &[]).unwrap_err();
    let (location, message) = runtime(&err);
    assert!(location.file.ends_with("main.jsonnet"), "{err}");
    assert_eq!((location.line, location.column), (2, 11), "{err}");
    let searched: Vec<PathBuf> = ["project", "first", "second"]
        .iter()
        .map(|d| dir.path().join(d).join("lib/common.libsonnet"))
        .collect();
    let at: Vec<usize> = searched
        .iter()
        .map(|p| {
            message
                .find(&p.display().to_string())
                .unwrap_or_else(|| panic!("{} not listed: {err}", p.display()))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "not in order: {err}");
    assert!(message.contains("lib/common.libsonnet"), "{err}");
}

#[test]
fn failed_import_in_an_imported_file_is_placed_there() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "lib/a.libsonnet",
        "{\n  b: importstr 'missing.txt',\n}",
    );
    let main = write(dir.path(), "main.jsonnet", "(import 'lib/a.libsonnet').b");
    let err = evaluate_file(&main, &Options::default(), &[]).unwrap_err();
    let (location, message) = runtime(&err);
    assert!(location.file.ends_with("lib/a.libsonnet"), "{err}");
    assert_eq!((location.line, location.column), (2, 6), "{err}");
    assert!(
        message.contains(&dir.path().join("lib/missing.txt").display().to_string()),
        "{err}"
    );
}

#[test]
fn import_of_a_directory_says_so_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("lib")).unwrap();
    let main = write(dir.path(), "main.jsonnet", "{\n  a: import 'lib',\n}");
    let err = evaluate_file(&main, &Options::default(), &[]).unwrap_err();
    let (location, message) = runtime(&err);
    assert_eq!((location.line, location.column), (2, 6), "{err}");
    assert!(message.contains("is a directory"), "{err}");
}

#[test]
fn missing_field_has_its_place() {
    let err = eval("{\n  a: {}.nope,\n}").unwrap_err();
    let (location, message) = runtime(&err);
    assert!(location.file.ends_with("main.jsonnet"), "{err}");
    assert_eq!((location.line, location.column), (2, 9), "{err}");
    assert!(message.contains("no such field: nope"), "{err}");
    assert!(
        err.to_string().contains("main.jsonnet:2:9: no such field"),
        "{err}"
    );
}

#[test]
fn missing_field_read_in_several_places_names_them_all() {
    let err = eval("local o = {};\n{\n  a: o.nope,\n  b: o.nope,\n}").unwrap_err();
    let (location, message) = runtime(&err);
    assert_eq!(location.line, 3, "{err}");
    assert!(message.contains("main.jsonnet:3:8"), "{err}");
    assert!(message.contains("main.jsonnet:4:8"), "{err}");
}

#[test]
fn calling_an_unknown_native_names_it_and_the_natives_there_are() {
    let err = eval("local n = std.native('nope');\n{\n  a: n('x'),\n}").unwrap_err();
    let (location, message) = runtime(&err);
    assert_eq!((location.line, location.column), (1, 15), "{err}");
    assert!(message.contains("std.native('nope')"), "{err}");
    assert!(message.contains("pair"), "{err}");
}

#[test]
fn errors_without_a_place_of_their_own_point_at_their_field() {
    let err = eval("local t = { b: 1 / 0 };\n{\n  a: {\n    c: 1,\n  } + t,\n}").unwrap_err();
    let (location, message) = runtime(&err);
    assert_eq!((location.line, location.column), (1, 13), "{err}");
    assert!(message.contains("divide by zero"), "{err}");

    let err = eval("{\n  a: [\n    { b: [1][2] },\n  ],\n}").unwrap_err();
    let (location, _) = runtime(&err);
    assert_eq!((location.line, location.column), (3, 7), "{err}");
}

#[test]
fn deep_recursion_stops_at_max_stack_with_a_hint() {
    let code = "local f(n) = if n == 0 then 0 else 1 + f(n - 1);\nf(100)";
    assert_eq!(eval(code).unwrap(), json!(100));
    let options = Options {
        max_stack: Some(50),
        ..Options::default()
    };
    let err = eval_with(code, &options).unwrap_err();
    let (location, message) = runtime(&err);
    assert_eq!(location.line, 1, "{err}");
    assert!(message.contains("--max-stack"), "{err}");
    assert!(message.contains("50"), "{err}");
    // Hundreds of frames alike are cut to both ends.
    let text = err.to_string();
    assert!(text.contains("more frames"), "{text}");
    assert!(text.lines().count() < 30, "{text}");
}

#[test]
fn a_directory_is_not_a_definition() {
    let dir = tempfile::tempdir().unwrap();
    let err = evaluate_file(dir.path(), &Options::default(), &[]).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err:?}");
}

#[test]
fn streams_are_dash_dev_stdin_and_pipes() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "main.jsonnet", "{}");
    assert!(is_stream(Path::new("-")));
    assert!(is_stream(Path::new("/dev/stdin")));
    assert!(is_stream(Path::new("/dev/null")));
    assert!(!is_stream(&file));
    assert!(!is_stream(dir.path()));
    assert!(!is_stream(&dir.path().join("missing")));
}

#[test]
fn a_device_is_read_as_a_stream() {
    // /dev/null reads as an empty stream: a syntax error in it, not an I/O error.
    let err = evaluate_file(Path::new("/dev/null"), &Options::default(), &[]).unwrap_err();
    let Error::Syntax { location, .. } = &err else {
        panic!("expected a syntax error, got {err:?}")
    };
    assert_eq!(location.file, "/dev/null");
}

#[test]
fn errors_in_ext_code_name_the_inline_code() {
    let options = Options {
        ext_vars: vec![ExtVar::parse("n={}.nope", true).unwrap()],
        ..Options::default()
    };
    let err = eval_with("{a: std.extVar('n')}", &options).unwrap_err();
    let (location, _) = runtime(&err);
    assert_eq!(location.to_string(), "<inline code>:1:4", "{err}");
}
