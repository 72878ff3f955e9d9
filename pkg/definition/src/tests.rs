use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
};

use brewkit_config::{Config, SecretSource};
use serde_json::json;

use super::*;

fn definition(targets: Value) -> Definition {
    definition_with(json!({}), targets)
}

/// A typed definition whose names are not resolved yet, so that the plan's own refusals (unknown
/// targets, cycles) can be tested; [`validate`] refuses those before any plan.
fn definition_with(vars: Value, targets: Value) -> Definition {
    let raw = json!({"apiVersion": "brewkit/v1", "vars": vars, "targets": targets});
    validate_model(Path::new("brewkit.jsonnet"), &raw)
        .unwrap()
        .1
}

fn plan(definition: &Definition, targets: &[&str]) -> Result<Plan, Error> {
    let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
    Plan::new(definition, &targets)
}

fn load_text(text: &str) -> Result<Loaded, Error> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("brewkit.jsonnet");
    fs::write(&file, text).unwrap();
    load(&file, &Default::default())
}

// --- natives -------------------------------------------------------------------------------

#[test]
fn natives_return_the_reference_objects() {
    let loaded = load_text(
        r#"
local cache = std.native('cache');
local copy = std.native('copy');
local copyFrom = std.native('copyFrom');
local secret = std.native('secret');
{
  apiVersion: 'brewkit/v1',
  targets: {
    _src: { from: 'scratch', copy: copy('src', '/src') },
    build: {
      from: 'busybox',
      cache: cache('go-build', '/root/.cache/go-build'),
      copy: [copyFrom('_src', '/src', '/app'), copy('go.mod', 'go.mod')],
      secrets: secret('aws', '/root/.aws/credentials'),
    },
  },
}
"#,
    )
    .unwrap();
    let build = &loaded.raw["targets"]["build"];
    assert_eq!(
        build["cache"],
        json!({"id": "go-build", "path": "/root/.cache/go-build"})
    );
    assert_eq!(
        build["copy"],
        json!([{"from": "_src", "src": "/src", "dst": "/app"}, {"src": "go.mod", "dst": "go.mod"}])
    );
    assert_eq!(
        build["secrets"],
        json!({"id": "aws", "path": "/root/.aws/credentials"})
    );
    assert_eq!(
        loaded.raw["targets"]["_src"]["copy"],
        json!({"src": "src", "dst": "/src"})
    );
}

#[test]
fn native_misuse_names_the_native_and_the_argument() {
    let err =
        load_text("{apiVersion: 'brewkit/v1', targets: {a: {copy: std.native('copy')('a', 1)}}}")
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("std.native('copy'): argument `dst` must be a string, got number"),
        "{err}"
    );
    let err = load_text(
        "{apiVersion: 'brewkit/v1', targets: {a: {copy: std.native('copyFrom')('a', 'b')}}}",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("copyFrom") && err.contains("dst"), "{err}");
    let err = load_text(
        "{apiVersion: 'brewkit/v1', targets: {a: {cache: std.native('cache')('a', 'b', 'c')}}}",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("cache"), "{err}");
    let err = load_text(
        "{apiVersion: 'brewkit/v1', targets: {a: {secrets: std.native('secret')(null, 'b')}}}",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("std.native('secret'): argument `id` must be a string, got null"),
        "{err}"
    );
}

// --- loading and validation ------------------------------------------------------------------

#[test]
fn jsonnet_syntax_error_has_file_line_col() {
    let err =
        load_text("{\n  apiVersion: 'brewkit/v1',\n  targets: { a: { from: } },\n}").unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Jsonnet(brewkit_jsonnet::Error::Syntax { .. })),
        "{text}"
    );
    assert!(text.contains("brewkit.jsonnet:3:"), "{text}");
}

#[test]
fn jsonnet_runtime_error_has_the_stack() {
    let err = load_text(
        "local t = { from: error 'no base given' };\n{apiVersion: 'brewkit/v1', targets: {a: t}}",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no base given"), "{err}");
    assert!(err.contains("Jsonnet stack:"), "{err}");
    assert!(err.contains("brewkit.jsonnet:1:"), "{err}");
}

#[test]
fn missing_api_version() {
    let err = load_text("{targets: {}}").unwrap_err();
    assert!(matches!(err, Error::MissingApiVersion { .. }), "{err}");
}

#[test]
fn unsupported_api_version_names_the_supported_ones() {
    let err = load_text("{apiVersion: 'brewkit/v3'}")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "apiVersion \"brewkit/v3\" is not supported; supported: brewkit/v1, brewkit/v2"
        ),
        "{err}"
    );
    let err = load_text("{apiVersion: 1}").unwrap_err().to_string();
    assert!(err.contains("apiVersion 1 is not supported"), "{err}");
}

#[test]
fn v2_is_accepted_with_the_same_schema() {
    let loaded = load_text("{apiVersion: 'brewkit/v2', targets: {a: {from: 'busybox'}}}").unwrap();
    assert_eq!(loaded.definition.api_version, "brewkit/v2");
}

#[test]
fn schema_violations_name_path_and_target() {
    let err = load_text(
        "{apiVersion: 'brewkit/v1', targets: {build: {secret: {id: 'a', path: '/a'}, network: 'bridge'}}, vars: {v: {from: 'x'}}}",
    )
    .unwrap_err();
    let text = err.to_string();
    let Error::Invalid { violations, .. } = &err else {
        panic!("{text}")
    };
    assert_eq!(violations.len(), 3, "{text}");
    assert!(text.contains("  targets.build.secret: unknown key \"secret\"; did you mean \"secrets\"? (target \"build\")"), "{text}");
    assert!(text.contains("  targets.build.network: \"bridge\" is not one of \"default\", \"none\", \"host\" (target \"build\")"), "{text}");
    assert!(
        text.contains("  vars.v: missing required key \"command\" (var \"v\")"),
        "{text}"
    );
}

#[test]
fn var_names_must_be_identifiers() {
    let err =
        load_text("{apiVersion: 'brewkit/v1', vars: {'git-commit': {from: 'a', command: 'b'}}}")
            .unwrap_err()
            .to_string();
    assert!(err.contains("vars"), "{err}");
    assert!(err.contains("git-commit"), "{err}");
}

#[test]
fn definition_is_normalized() {
    let loaded = load_text(
        "{apiVersion: 'brewkit/v1', targets: {all: ['a'], a: {from: 'busybox', output: '/a:b', copy: std.native('copy')('x', 'y')}}}",
    )
    .unwrap();
    assert_eq!(
        loaded.normalized,
        json!({"apiVersion": "brewkit/v1", "targets": {
            "all": ["a"],
            "a": {"from": "busybox", "output": [{"artifact": "/a", "local": "b"}], "copy": [{"src": "x", "dst": "y"}]}
        }})
    );
}

// --- plan ------------------------------------------------------------------------------------

#[test]
fn all_is_the_default_target() {
    let d = definition(json!({"all": ["a", "b"], "a": {}, "b": {}, "c": {}}));
    let p = plan(&d, &[]).unwrap();
    assert_eq!(p.requested, ["all"]);
    assert_eq!(p.order, ["a", "b", "all"]);
    assert!(!p.targets.contains_key("c"));
    assert_eq!(p.targets["all"].prerequisites, ["a", "b"]);
    assert_eq!(p.targets["all"].base, None);
}

#[test]
fn without_all_a_target_must_be_named() {
    let d = definition(json!({"a": {}, "_b": {}}));
    let err = plan(&d, &[]).unwrap_err().to_string();
    assert!(
        err.contains("no \"all\" target") && err.contains("name one of: a"),
        "{err}"
    );
    assert!(!err.contains("_b"), "{err}");
}

#[test]
fn private_targets_are_refused_on_the_command_line() {
    let d = definition(json!({"_src": {}, "build": {"from": "_src"}}));
    let err = plan(&d, &["_src"]).unwrap_err();
    assert!(matches!(err, Error::PrivateTarget { .. }), "{err}");
    let p = plan(&d, &["build"]).unwrap();
    assert_eq!(p.order, ["_src", "build"]);
}

#[test]
fn unknown_target_on_the_command_line_suggests_a_public_one() {
    let d = definition(json!({"build": {}, "_buildx": {}}));
    let err = plan(&d, &["biuld"]).unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown target \"biuld\" in the command line; did you mean \"build\"?"
    );
}

#[test]
fn unknown_dependency_names_the_referrer_and_the_nearest() {
    let d = definition(json!({"build": {"dependsOn": ["generat"]}, "generate": {}}));
    let err = plan(&d, &["build"]).unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown target \"generat\" in dependsOn of target \"build\"; did you mean \"generate\"?"
    );
    let d = definition(json!({"all": ["tset"], "test": {}}));
    let err = plan(&d, &[]).unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown target \"tset\" in composite target \"all\"; did you mean \"test\"?"
    );
}

#[test]
fn cycles_are_reported_with_the_chain() {
    let d = definition(
        json!({"a": {"dependsOn": ["b"]}, "b": {"from": "c"}, "c": {"copy": {"from": "a", "src": "/x", "dst": "/y"}}}),
    );
    let err = plan(&d, &["a"]).unwrap_err().to_string();
    assert_eq!(err, "cycle: a -> b -> c -> a");
    let d = definition(json!({"a": {"dependsOn": ["a"]}}));
    assert_eq!(plan(&d, &["a"]).unwrap_err().to_string(), "cycle: a -> a");
    let d = definition(json!({"all": ["x"], "x": {"dependsOn": ["all"]}}));
    assert_eq!(
        plan(&d, &[]).unwrap_err().to_string(),
        "cycle: all -> x -> all"
    );
}

#[test]
fn cycles_through_vars_are_reported() {
    let d = definition_with(
        json!({"v": {"from": "build", "command": "cat /version"}}),
        json!({"build": {"from": "busybox", "command": "echo ${v}"}}),
    );
    assert_eq!(
        plan(&d, &["build"]).unwrap_err().to_string(),
        "cycle: build -> var v -> build"
    );
}

#[test]
fn validation_refuses_bad_references_anywhere_in_the_file() {
    let refused = |vars: Value, targets: Value| {
        let raw = json!({"apiVersion": "brewkit/v1", "vars": vars, "targets": targets});
        validate(Path::new("brewkit.jsonnet"), &raw)
            .unwrap_err()
            .to_string()
    };
    // `ok` is fine; each file breaks elsewhere, where no build of `ok` goes.
    let ok = json!({"from": "busybox"});
    assert_eq!(
        refused(
            json!({}),
            json!({"ok": ok, "a": {"dependsOn": ["b"]}, "b": {"from": "a"}})
        ),
        "cycle: a -> b -> a"
    );
    assert_eq!(
        refused(json!({}), json!({"ok": ok, "_p": {"dependsOn": ["_p"]}})),
        "cycle: _p -> _p"
    );
    assert_eq!(
        refused(json!({}), json!({"ok": ok, "b": {"dependsOn": ["okk"]}})),
        "unknown target \"okk\" in dependsOn of target \"b\"; did you mean \"ok\"?"
    );
    assert_eq!(
        refused(json!({}), json!({"ok": ok, "all": ["ok", "nope"]})),
        "unknown target \"nope\" in composite target \"all\""
    );
    assert_eq!(
        refused(
            json!({}),
            json!({"ok": ok, "c": {"copy": {"from": "all", "src": "/a", "dst": "/b"}}, "all": ["ok"]})
        ),
        "target \"c\": copy[0].from \"all\" is a composite target; use a stage target or an image there"
    );
    assert!(
        refused(json!({}), json!({"ok": ok, "d": {"from": "Bad:Ref"}}))
            .starts_with("target \"d\": from \"Bad:Ref\" is neither a target")
    );
    // A var nobody references is checked too.
    assert!(refused(
        json!({"v": {"from": "busybox", "copy": {"from": "Bad:Ref", "src": "/a", "dst": "/b"}, "command": "x"}}),
        json!({"ok": ok})
    )
    .starts_with("var \"v\": copy[0].from \"Bad:Ref\""));
    assert_eq!(
        refused(
            json!({"v": {"from": "b", "command": "x"}}),
            json!({"ok": ok, "b": {"from": "busybox", "command": "echo $v"}})
        ),
        "cycle: b -> var v -> b"
    );
}

#[test]
fn diamond_is_not_a_cycle() {
    let d = definition(
        json!({"a": {"dependsOn": ["b", "c"]}, "b": {"from": "d"}, "c": {"from": "d"}, "d": {}}),
    );
    let p = plan(&d, &["a"]).unwrap();
    assert_eq!(p.order, ["d", "b", "c", "a"]);
}

#[test]
fn from_resolves_targets_scratch_and_images() {
    let d = definition(json!({
        "base": {"from": "golang:1.22"},
        "app": {"from": "base", "copy": [
            {"src": "go.mod", "dst": "."},
            {"from": "alpine/git", "src": "/usr/bin/git", "dst": "/bin/git"},
            {"from": "tools", "src": "/bin/x", "dst": "/bin/x"}
        ]},
        "tools": {"from": "scratch"},
        "empty": {}
    }));
    let p = plan(&d, &["app", "empty"]).unwrap();
    assert_eq!(
        p.targets["base"].base,
        Some(Base::Image("docker.io/library/golang:1.22".into()))
    );
    assert_eq!(p.targets["app"].base, Some(Base::Target("base".into())));
    assert_eq!(
        p.targets["app"].copy_sources,
        vec![
            None,
            Some(Base::Image("docker.io/alpine/git:latest".into())),
            Some(Base::Target("tools".into()))
        ]
    );
    assert_eq!(p.targets["app"].prerequisites, ["base", "tools"]);
    assert_eq!(p.targets["tools"].base, Some(Base::Scratch));
    assert_eq!(p.targets["empty"].base, Some(Base::Scratch));
}

#[test]
fn from_a_composite_is_refused() {
    let d = definition(json!({"all": ["a"], "a": {}, "b": {"from": "all"}}));
    let err = plan(&d, &["b"]).unwrap_err().to_string();
    assert_eq!(
        err,
        "target \"b\": from \"all\" is a composite target; use a stage target or an image there"
    );
}

#[test]
fn invalid_image_reference_is_refused() {
    let d = definition(json!({"a": {"from": "Golang:1.22"}}));
    let err = plan(&d, &["a"]).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "target \"a\": from \"Golang:1.22\" is neither a target nor a valid image reference"
        ),
        "{err}"
    );
}

#[test]
fn a_from_that_looks_like_a_typo_warns() {
    let d = definition(json!({"build": {"from": "busybox"}, "test": {"from": "biuld"}}));
    let p = plan(&d, &["test"]).unwrap();
    assert_eq!(p.warnings.len(), 1);
    assert!(
        p.warnings[0].contains("did you mean target \"build\""),
        "{:?}",
        p.warnings
    );
    let p = plan(&d, &["build"]).unwrap();
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn only_referenced_vars_are_planned() {
    let d = definition_with(
        json!({
            "commit": {"from": "alpine/git", "command": "git rev-parse HEAD"},
            "unused": {"from": "busybox", "command": "exit 1"},
            "other": {"from": "busybox", "command": "echo"}
        }),
        json!({
            "build": {"from": "busybox", "command": "echo ${commit} $HOME ${HOME} ${nope}"},
            "test": {"from": "build", "command": "echo ${other}"}
        }),
    );
    let p = plan(&d, &["build"]).unwrap();
    assert_eq!(p.vars.keys().collect::<Vec<_>>(), ["commit"]);
    assert_eq!(
        p.targets["build"].vars,
        BTreeSet::from(["commit".to_owned()])
    );
    let p = plan(&d, &["test"]).unwrap();
    assert_eq!(p.vars.keys().collect::<Vec<_>>(), ["commit", "other"]);
}

#[test]
fn vars_from_targets_are_prerequisites() {
    let d = definition_with(
        json!({"version": {"from": "tools", "command": "cat /v"}}),
        json!({"tools": {"from": "busybox"}, "build": {"from": "busybox", "command": "echo ${version}"}}),
    );
    let p = plan(&d, &["build"]).unwrap();
    assert_eq!(p.vars["version"].prerequisites, ["tools"]);
    assert_eq!(p.order, ["tools", "build"]);
}

#[test]
fn substitution_replaces_declared_vars_only() {
    let values = [("commit".to_owned(), "abc".to_owned())]
        .into_iter()
        .collect();
    assert_eq!(
        substitute(
            "go build -X main.C=${commit} $HOME ${HOME} ${commit}${ unterminated",
            &values
        ),
        "go build -X main.C=abc $HOME ${HOME} abc${ unterminated"
    );
    assert_eq!(
        var_references("${a}${b}$c ${", |v| v == "a" || v == "c"),
        BTreeSet::from(["a".to_owned(), "c".to_owned()])
    );
}

#[test]
fn substitution_replaces_both_forms_as_os_expand_does() {
    let values: BTreeMap<String, String> = [("ver", "1.2"), ("v", "x")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let cases = [
        ("echo $ver", "echo 1.2"),
        ("echo ${ver}", "echo 1.2"),
        ("a${ver}b", "a1.2b"),
        (
            r#"$ver.tar.gz $ver/x $ver-rc "$ver""#,
            r#"1.2.tar.gz 1.2/x 1.2-rc "1.2""#,
        ),
        // A longer name is another (shell) variable.
        ("$verx $ver_1 $ver2 ${verx}", "$verx $ver_1 $ver2 ${verx}"),
        ("$v$ver${v}", "x1.2x"),
        // `$$` is the shell's PID: `$$ver` is the PID and "ver".
        ("echo $$ $$ver $$$ver", "echo $$ $$ver $$1.2"),
        ("$ ${ $} ${} ${ver x", "$ ${ $} ${} ${ver x"),
        (
            "${ver:-0} ${#ver} ${X:-${ver}}",
            "${ver:-0} ${#ver} ${X:-1.2}",
        ),
        ("$HOME ${PATH} $1 ${10} $@", "$HOME ${PATH} $1 ${10} $@"),
        ("trailing $", "trailing $"),
        ("é$verü", "é1.2ü"),
    ];
    for (command, expected) in cases {
        assert_eq!(substitute(command, &values), expected, "{command}");
    }
    assert_eq!(
        var_references("echo $ver ${v} $verx $$v", |n| n == "ver" || n == "v"),
        BTreeSet::from(["v".to_owned(), "ver".to_owned()])
    );
}

#[test]
fn a_bare_reference_plans_its_var() {
    let d = definition_with(
        json!({"ver": {"from": "busybox", "command": "echo 1"}}),
        json!({"build": {"from": "busybox", "command": "echo $ver"}}),
    );
    let p = plan(&d, &["build"]).unwrap();
    assert_eq!(p.vars.keys().collect::<Vec<_>>(), ["ver"]);
    assert_eq!(
        p.needs(&Node::Target("build".into())),
        [Node::Var("ver".into())]
    );
}

#[test]
fn a_reference_close_to_a_var_warns() {
    let d = definition_with(
        json!({"version": {"from": "busybox", "command": "echo 1"}}),
        json!({
            "braced": {"from": "busybox", "command": "echo ${verison}"},
            "bare": {"from": "busybox", "command": "echo $versio"},
            "shell": {"from": "busybox",
                      "command": "echo $HOME $PATH $1 $v ${PWD} $version ${version} ${VERSION}"}
        }),
    );
    let p = plan(&d, &["braced"]).unwrap();
    assert_eq!(
        p.warnings,
        ["target \"braced\": ${verison} in the command is not a var, so the shell expands it; did you mean var \"version\"?"]
    );
    let p = plan(&d, &["bare"]).unwrap();
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(
        p.warnings[0].contains("$versio in the command") && p.warnings[0].contains("\"version\""),
        "{:?}",
        p.warnings
    );
    let p = plan(&d, &["shell"]).unwrap();
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

// --- host checks -----------------------------------------------------------------------------

fn config(secrets: &[&str], host: bool) -> Config {
    Config {
        path: Some(PathBuf::from("/home/u/.brewkit/config")),
        secrets: secrets
            .iter()
            .map(|id| SecretSource {
                id: id.to_string(),
                path: format!("/secrets/{id}"),
            })
            .collect(),
        entitlements: if host {
            [Entitlement::NetworkHost].into()
        } else {
            Default::default()
        },
    }
}

#[test]
fn unknown_secrets_are_refused_for_targets_being_built() {
    let d = definition(json!({
        "a": {"secrets": {"id": "aws", "path": "/root/.aws"}},
        "b": {"secrets": [{"id": "npm", "path": "/root/.npmrc"}]}
    }));
    let p = plan(&d, &["a"]).unwrap();
    p.check_host(&d, &config(&["aws"], false)).unwrap();
    let err = p
        .check_host(&d, &config(&["aws2"], false))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "target \"a\": secret \"aws\" is not declared in the host config (/home/u/.brewkit/config); did you mean \"aws2\"?");
    // b is not built, so its secret is not needed.
    let err = p
        .check_host(&d, &Config::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("none found: create one with brewkit config init"),
        "{err}"
    );
}

#[test]
fn secrets_of_needed_vars_are_checked() {
    let d = definition_with(
        json!({"token": {"from": "busybox", "command": "cat /t", "secrets": {"id": "t", "path": "/t"}}}),
        json!({"a": {"command": "echo ${token}"}}),
    );
    let p = plan(&d, &["a"]).unwrap();
    let err = p
        .check_host(&d, &config(&[], false))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("var \"token\": secret \"t\""), "{err}");
}

#[test]
fn network_host_needs_the_entitlement() {
    let d = definition(json!({"a": {"network": "host"}, "b": {"network": "none"}}));
    let p = plan(&d, &["a"]).unwrap();
    let err = p
        .check_host(&d, &config(&[], false))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("target \"a\": network: host needs the \"network.host\" entitlement"),
        "{err}"
    );
    p.check_host(&d, &config(&[], true)).unwrap();
    plan(&d, &["b"])
        .unwrap()
        .check_host(&d, &config(&[], false))
        .unwrap();
}

#[test]
fn ssh_needs_the_entitlement() {
    let d = definition(json!({"a": {"ssh": {}}}));
    let p = plan(&d, &["a"]).unwrap();
    let err = p
        .check_host(&d, &config(&[], true))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("target \"a\": ssh needs the \"ssh\" entitlement")
            && err.contains("/home/u/.brewkit/config"),
        "{err}"
    );
    let mut granted = config(&[], false);
    granted.entitlements.insert(Entitlement::Ssh);
    p.check_host(&d, &granted).unwrap();
}

#[test]
fn long_dependency_chains_plan() {
    let n = 3_000;
    let targets: serde_json::Map<String, Value> = (0..n)
        .map(|i| {
            let depends: Vec<String> = if i > 0 {
                vec![format!("t{}", i - 1)]
            } else {
                vec![]
            };
            (format!("t{i}"), json!({"dependsOn": depends}))
        })
        .collect();
    let d = definition(Value::Object(targets));
    let p = plan(&d, &[&format!("t{}", n - 1)]).unwrap();
    assert_eq!(p.order.len(), n);
    assert_eq!(p.order[0], "t0");
}

// --- host safety -----------------------------------------------------------------------------

#[test]
fn a_context_copy_leaving_the_context_is_refused_naming_owner_and_copy() {
    let raw = json!({
        "apiVersion": "brewkit/v1",
        "vars": {"v": {"from": "a", "command": "b", "copy": {"src": "a/../../x", "dst": "x"}}},
        "targets": {
            "all": ["build"],
            "build": {"copy": [
                {"src": "ok", "dst": "ok"},
                {"src": "../secret", "dst": "x"},
                {"from": "_src", "src": "../fine", "dst": "y"},
                {"src": "/abs", "dst": "z"}
            ]},
            "_src": {}
        }
    });
    let err = validate(Path::new("brewkit.jsonnet"), &raw).unwrap_err();
    let text = err.to_string();
    let Error::Invalid { violations, .. } = &err else {
        panic!("{text}")
    };
    assert_eq!(violations.len(), 2, "{text}");
    assert!(
        text.contains(
            "  targets.build.copy[1].src: \"../secret\" leaves the build context (the definition file's directory, or -c DIR); a copy without from reads only files inside it (target \"build\")"
        ),
        "{text}"
    );
    // A single copy, not a list: no index.
    assert!(
        text.contains("  vars.v.copy.src: \"a/../../x\" leaves the build context"),
        "{text}"
    );
    assert!(text.contains("(var \"v\")"), "{text}");
}

#[test]
fn copies_inside_the_context_and_copy_from_pass() {
    let d = definition(json!({
        "a": {"copy": [{"src": "a/..", "dst": "x"}, {"src": "/..", "dst": "y"}, {"from": "b", "src": "../z", "dst": "z"}]},
        "b": {}
    }));
    assert_eq!(d.stage("a").unwrap().run.copy.len(), 3);
}

/// Planning walks a `from` chain as long as the file makes it with a bounded stack.
#[test]
fn a_5000_long_from_chain_plans_and_graphs_on_a_small_stack() {
    let n = 5_000;
    let order = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let targets: serde_json::Map<String, Value> = (0..n)
                .map(|i| {
                    let from = if i == 0 {
                        "scratch".to_owned()
                    } else {
                        format!("t{}", i - 1)
                    };
                    (format!("t{i}"), json!({"from": from}))
                })
                .collect();
            let d = definition(Value::Object(targets));
            let p = plan(&d, &[&format!("t{}", n - 1)]).unwrap();
            let edges = graph::edges(&d, &[]).unwrap();
            assert_eq!(edges.len(), n - 1);
            p.order
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
    assert_eq!(order.len(), n);
    assert_eq!(order[0], "t0");
}
