use serde_json::json;

use super::*;

fn definition_violations(value: serde_json::Value) -> Vec<(String, String)> {
    validate(Schema::BuildDefinitionV1, &value)
        .into_iter()
        .map(|v| (v.path_string(), v.message))
        .collect()
}

fn assert_one(value: serde_json::Value, path: &str, needle: &str) {
    let violations = definition_violations(value);
    assert!(
        violations
            .iter()
            .any(|(p, m)| p == path && m.contains(needle)),
        "no violation at {path} containing {needle:?}: {violations:#?}"
    );
}

#[test]
fn embedded_schemas_compile_and_judge() {
    // Each compiles (a panic otherwise) and tells a valid document from an invalid one.
    let valid = [
        (
            Schema::BuildDefinitionV1,
            serde_json::json!({"apiVersion": "brewkit/v1", "targets": {}}),
        ),
        (
            Schema::ConfigV1,
            serde_json::json!({"entitlements": ["ssh"]}),
        ),
    ];
    for (schema, document) in valid {
        assert!(validate(schema, &document).is_empty(), "{document}");
        assert!(
            !validate(schema, &serde_json::json!({"nope": 1})).is_empty(),
            "an unknown key is refused"
        );
    }
}

#[test]
fn a_definition_using_every_directive_is_valid() {
    let value = json!({
        "apiVersion": "brewkit/v1",
        "vars": {
            "gitcommit": {
                "from": "alpine/git", "platform": "linux/amd64", "workdir": "/src",
                "env": {"A": "b"}, "cache": {"id": "c", "path": "/c"},
                "copy": {"src": ".git", "dst": ".git"},
                "secrets": [{"id": "s", "path": "/s"}], "network": "none", "ssh": {},
                "command": "git rev-parse HEAD"
            }
        },
        "targets": {
            "all": ["build", "_private"],
            "_private": {},
            "build": {
                "from": "golang:1.22", "dependsOn": ["_private"], "platform": "linux/arm64/v8",
                "workdir": "/app", "env": {"GOFLAGS": "-mod=vendor"},
                "cache": [{"id": "go", "path": "/root/.cache"}],
                "copy": [{"src": "cmd", "dst": "cmd"}, {"from": "_private", "src": "/a", "dst": "/b"}],
                "secrets": {"id": "aws", "path": "/root/.aws/credentials"},
                "network": "host", "ssh": {}, "command": "go build ./...",
                "output": ["/app/bin:./bin", {"artifact": "/app/x", "local": "."}]
            },
            "single-output": {"output": "/a:b"},
            "object-output": {"output": {"artifact": "/a", "local": "b"}}
        }
    });
    assert_eq!(definition_violations(value), vec![]);
}

#[test]
fn api_version_is_required() {
    assert_one(
        json!({"targets": {}}),
        "$",
        "missing required key \"apiVersion\"",
    );
}

#[test]
fn unknown_api_version_lists_the_supported_ones() {
    assert_one(
        json!({"apiVersion": "brewkit/v3"}),
        "apiVersion",
        "\"brewkit/v3\" is not one of \"brewkit/v1\", \"brewkit/v2\"",
    );
}

#[test]
fn unknown_target_key_gets_a_hint() {
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"a": {"secret": {"id": "x", "path": "/x"}}}}),
        "targets.a.secret",
        "unknown key \"secret\"; did you mean \"secrets\"?",
    );
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"a": {"depends_on": []}}}),
        "targets.a.depends_on",
        "did you mean \"dependsOn\"?",
    );
}

#[test]
fn unknown_key_far_from_everything_lists_the_known_keys() {
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"a": {"zzz": 1}}}),
        "targets.a.zzz",
        "known keys: ",
    );
}

#[test]
fn unknown_key_in_a_copy_entry_and_at_the_root() {
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"a": {"copy": [{"src": "a", "dest": "b"}]}}}),
        "targets.a.copy[0].dest",
        "did you mean \"dst\"?",
    );
    assert_one(
        json!({"apiVersion": "brewkit/v1", "target": {}}),
        "target",
        "did you mean \"targets\"?",
    );
}

#[test]
fn var_needs_from_and_command() {
    let violations =
        definition_violations(json!({"apiVersion": "brewkit/v1", "vars": {"v": {"workdir": "/"}}}));
    assert!(violations.contains(&("vars.v".into(), "missing required key \"from\"".into())));
    assert!(violations.contains(&("vars.v".into(), "missing required key \"command\"".into())));
}

#[test]
fn vars_have_no_output_or_depends_on() {
    assert_one(
        json!({"apiVersion": "brewkit/v1", "vars": {"v": {"from": "a", "command": "b", "output": "a:b"}}}),
        "vars.v.output",
        "unknown key \"output\"",
    );
}

#[test]
fn composite_items_are_names() {
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"all": ["a", 1]}}),
        "targets.all[1]",
        "expected a string, got number 1",
    );
}

#[test]
fn target_must_be_object_or_array() {
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"a": "b"}}),
        "targets.a",
        "expected an object, got string",
    );
}

#[test]
fn network_is_an_enum() {
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"a": {"network": "bridge"}}}),
        "targets.a.network",
        "\"bridge\" is not one of \"default\", \"none\", \"host\"",
    );
}

#[test]
fn short_output_needs_one_colon() {
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"a": {"output": "/app/bin"}}}),
        "targets.a.output",
        "Short output notation",
    );
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"a": {"output": ["a:b", "c"]}}}),
        "targets.a.output[1]",
        "does not match",
    );
}

#[test]
fn output_object_needs_both_keys() {
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"a": {"output": {"artifact": "/a"}}}}),
        "targets.a.output",
        "missing required key \"local\"",
    );
}

#[test]
fn cache_and_secret_entries_need_id_and_path() {
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"a": {"cache": {"id": "x"}}}}),
        "targets.a.cache",
        "missing required key \"path\"",
    );
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"a": {"secrets": [{"path": "/x"}]}}}),
        "targets.a.secrets[0]",
        "missing required key \"id\"",
    );
}

#[test]
fn ssh_takes_no_keys() {
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"a": {"ssh": {"agent": "x"}}}}),
        "targets.a.ssh.agent",
        "no keys are allowed here",
    );
}

#[test]
fn env_values_are_strings() {
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"a": {"env": {"N": 1}}}}),
        "targets.a.env.N",
        "expected a string, got number 1",
    );
}

#[test]
fn every_violation_is_reported() {
    let violations = definition_violations(json!({
        "apiVersion": "brewkit/v1",
        "targets": {"a": {"network": "x"}, "b": {"command": 1}}
    }));
    assert_eq!(violations.len(), 2, "{violations:#?}");
}

#[test]
fn config_schema() {
    let ok =
        json!({"secrets": [{"id": "aws", "path": "${HOME}/x"}], "entitlements": ["network.host"]});
    assert!(validate(Schema::ConfigV1, &ok).is_empty());
    let bad = validate(
        Schema::ConfigV1,
        &json!({"secret": [], "entitlements": ["root"]}),
    );
    let rendered: Vec<_> = bad
        .iter()
        .map(|v| (v.path_string(), v.message.clone()))
        .collect();
    assert!(rendered
        .iter()
        .any(|(p, m)| p == "secret" && m.contains("did you mean \"secrets\"")));
    assert!(rendered.iter().any(|(p, _)| p == "entitlements[0]"));
}

#[test]
fn paths_render_like_jsonnet() {
    let path = vec![
        PathSegment::Key("targets".into()),
        PathSegment::Key("my-target".into()),
        PathSegment::Key("copy".into()),
        PathSegment::Index(2),
    ];
    assert_eq!(render_path(&path), "targets[\"my-target\"].copy[2]");
    assert_eq!(render_path(&[]), "$");
}

#[test]
fn numeric_target_names_stay_keys() {
    let value = json!({"apiVersion": "brewkit/v1", "targets": {"1": {"network": "x"}}});
    let violations = validate(Schema::BuildDefinitionV1, &value);
    assert_eq!(
        violations[0].path,
        vec![
            PathSegment::Key("targets".into()),
            PathSegment::Key("1".into()),
            PathSegment::Key("network".into())
        ]
    );
}

#[test]
fn did_you_mean_needs_a_close_candidate() {
    assert_eq!(did_you_mean("biuld", ["build", "test"]), Some("build"));
    assert_eq!(did_you_mean("xyz", ["build", "test"]), None);
}

#[test]
fn did_you_mean_catches_one_typo_in_a_short_word() {
    assert_eq!(did_you_mean("gne", ["all", "gen", "test"]), Some("gen"));
    assert_eq!(did_you_mean("tst", ["all", "gen", "test"]), Some("test"));
    assert_eq!(did_you_mean("ab", ["ba", "xb"]), None, "too short to tell");
    assert_eq!(did_you_mean("HOME", ["version", "home"]), None);
}

#[test]
fn env_names_are_variable_names_and_the_path_names_the_key() {
    for bad in ["A B", "A=B", "1A", "A\u{0}B", "A-B", ""] {
        for section in ["targets", "vars"] {
            let run = json!({"from": "x", "command": "y", "env": {bad: "v"}});
            let value = json!({"apiVersion": "brewkit/v1", section: {"a": run}});
            let path = render_path(&[
                PathSegment::Key(section.into()),
                PathSegment::Key("a".into()),
                PathSegment::Key("env".into()),
                PathSegment::Key(bad.into()),
            ]);
            assert_one(value, &path, "An environment variable name");
        }
    }
    assert_one(
        json!({"apiVersion": "brewkit/v1", "targets": {"build": {"env": {"A B": "v"}}}}),
        "targets.build.env[\"A B\"]",
        "\"A B\" does not match ^[A-Za-z_][A-Za-z0-9_]*$",
    );
    let ok = json!({"apiVersion": "brewkit/v1", "targets": {"a": {"env": {"_A1": "", "b": "x"}}}});
    assert_eq!(definition_violations(ok), []);
}

#[test]
fn an_invalid_var_name_is_named_by_its_path() {
    assert_one(
        json!({"apiVersion": "brewkit/v1", "vars": {"git-commit": {"from": "a", "command": "b"}}}),
        "vars[\"git-commit\"]",
        "A var name",
    );
}
