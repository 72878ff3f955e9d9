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
