//! The `brewkit` binary end to end, for everything that needs no BuildKit: definitions, errors and
//! their exit codes, `targets`, `config init`, `version`, and golden outputs of tests/fixtures/.

use std::{fs, path::Path, process::Command};

mod common;

use common::{brewkit_in as brewkit, fixtures, project, run, run_with_stdin};

const BAD_INPUT: i32 = 2;

/// Compares `actual` to the golden file, or rewrites it when UPDATE_GOLDEN is set.
fn golden(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(path, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "{} differs (UPDATE_GOLDEN=1 rewrites it)",
        path.display()
    );
}

#[test]
fn golden_definitions_and_target_lists() {
    for name in ["go-service", "every-directive", "split-imports"] {
        let dir = fixtures().join(name);
        let (code, stdout, stderr) = run(brewkit(&dir).args(["build", "definition"]));
        assert_eq!(code, 0, "{name}: {stderr}");
        golden(&dir.join("definition.json"), &stdout);

        let (code, stdout, stderr) = run(brewkit(&dir).arg("targets"));
        assert_eq!(code, 0, "{name}: {stderr}");
        golden(&dir.join("targets.txt"), &stdout);

        for (format, file) in [("dot", "graph.dot"), ("mermaid", "graph.mmd")] {
            let (code, stdout, stderr) = run(brewkit(&dir).args(["graph", "--format", format]));
            assert_eq!(code, 0, "{name}: {stderr}");
            golden(&dir.join(file), &stdout);
        }
    }
}

#[test]
fn normal_form_has_lists_and_output_objects() {
    let dir = fixtures().join("every-directive");
    let (code, stdout, _) = run(brewkit(&dir).args(["build", "definition"]));
    assert_eq!(code, 0);
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let single = &value["targets"]["single"];
    assert_eq!(
        single["copy"],
        serde_json::json!([{"src": "a", "dst": "b"}])
    );
    assert_eq!(
        single["output"],
        serde_json::json!([{"artifact": "a", "local": "b"}])
    );
    assert_eq!(value["vars"]["version"]["secrets"][0]["id"], "token");
}

#[test]
fn definition_debug_prints_the_raw_json() {
    let dir = fixtures().join("every-directive");
    let (code, stdout, stderr) = run(brewkit(&dir).args(["build", "definition-debug"]));
    assert_eq!(code, 0, "{stderr}");
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["targets"]["single"]["output"], "a:b");
    assert_eq!(
        value["targets"]["single"]["copy"],
        serde_json::json!({"src": "a", "dst": "b"})
    );
}

#[test]
fn definition_debug_does_not_validate() {
    let dir = project("{apiVersion: 'nope', whatever: 1}");
    let (code, stdout, _) = run(brewkit(dir.path()).args(["build", "definition-debug"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("\"whatever\": 1"), "{stdout}");
}

#[test]
fn file_flag_and_alias() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custom.jsonnet");
    fs::write(&file, "{apiVersion: 'brewkit/v1', targets: {a: {}}}").unwrap();
    let (code, stdout, stderr) =
        run(brewkit(dir.path()).args(["b", "definition", "-f", "custom.jsonnet"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"a\": {}"), "{stdout}");
}

#[test]
fn missing_definition_file() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "definition"]));
    assert_eq!(code, BAD_INPUT);
    assert!(stderr.contains("cannot read brewkit.jsonnet"), "{stderr}");
}

#[test]
fn syntax_error_exits_2_with_file_line_col() {
    let dir = project("{\n  apiVersion: 'brewkit/v1',\n  targets: {\n    a: { from: 'x' command: 'y' },\n  },\n}\n");
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "definition"]));
    assert_eq!(code, BAD_INPUT);
    assert!(stderr.contains("brewkit.jsonnet:4:"), "{stderr}");
    assert!(stderr.contains("syntax error"), "{stderr}");
}

#[test]
fn runtime_error_exits_2_with_the_stack() {
    let dir = project("local image(name) = if name == '' then error 'image name is empty' else name;\n{apiVersion: 'brewkit/v1', targets: {a: {from: image('')}}}\n");
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "definition"]));
    assert_eq!(code, BAD_INPUT);
    assert!(stderr.contains("image name is empty"), "{stderr}");
    assert!(stderr.contains("Jsonnet stack:"), "{stderr}");
    assert!(stderr.contains("brewkit.jsonnet:2:"), "{stderr}");
}

#[test]
fn schema_violations_exit_2_with_paths_targets_and_hints() {
    let dir = project("{apiVersion: 'brewkit/v1', targets: {build: {secret: {id: 'a', path: '/a'}}, test: {output: '/x'}}}");
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "definition"]));
    assert_eq!(code, BAD_INPUT);
    assert!(stderr.contains("targets.build.secret: unknown key \"secret\"; did you mean \"secrets\"? (target \"build\")"), "{stderr}");
    assert!(
        stderr.contains("targets.test.output: \"/x\" does not match"),
        "{stderr}"
    );
    assert!(stderr.contains("(target \"test\")"), "{stderr}");
}

#[test]
fn unsupported_api_version_exits_2() {
    let dir = project("{apiVersion: 'brewkit/v9', targets: {}}");
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "definition"]));
    assert_eq!(code, BAD_INPUT);
    assert!(
        stderr.contains("supported: brewkit/v1, brewkit/v2"),
        "{stderr}"
    );
}

#[test]
fn native_misuse_exits_2() {
    let dir =
        project("{apiVersion: 'brewkit/v1', targets: {a: {copy: std.native('copy')('src')}}}");
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "definition"]));
    assert_eq!(code, BAD_INPUT);
    assert!(
        stderr.contains("function argument is not passed: dst"),
        "{stderr}"
    );
    assert!(stderr.contains("function <copy>"), "{stderr}");
}

#[test]
fn cycle_exits_2_with_the_chain() {
    let dir = project("{apiVersion: 'brewkit/v1', targets: {a: {dependsOn: ['b']}, b: {from: 'c'}, c: {dependsOn: ['a']}}}");
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "a"]));
    assert_eq!(code, BAD_INPUT);
    assert!(stderr.contains("cycle: a -> b -> c -> a"), "{stderr}");
}

#[test]
fn unknown_and_private_targets_exit_2() {
    let dir = project("{apiVersion: 'brewkit/v1', targets: {build: {}, _internal: {}}}");
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "buidl"]));
    assert_eq!(code, BAD_INPUT);
    assert!(
        stderr.contains("unknown target \"buidl\" in the command line; did you mean \"build\"?"),
        "{stderr}"
    );
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "_internal"]));
    assert_eq!(code, BAD_INPUT);
    assert!(stderr.contains("private"), "{stderr}");
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build"]));
    assert_eq!(code, BAD_INPUT);
    assert!(stderr.contains("no \"all\" target"), "{stderr}");
}

#[test]
fn an_unknown_short_target_gets_a_did_you_mean() {
    let dir = project("{apiVersion: 'brewkit/v1', targets: {all: ['gen'], gen: {}, test: {}}}");
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "gne"]));
    assert_eq!(code, BAD_INPUT, "{stderr}");
    assert!(
        stderr.contains("unknown target \"gne\" in the command line; did you mean \"gen\"?"),
        "{stderr}"
    );
}

#[test]
fn cycles_and_unknown_references_anywhere_are_refused_by_every_command() {
    // `ok` is valid; the rest of each file is not, where no build of `ok` goes.
    let files = [
        (
            "{apiVersion: 'brewkit/v1', targets: {ok: {}, a: {dependsOn: ['b']}, b: {from: 'a'}}}",
            "brewkit: cycle: a -> b -> a\n",
        ),
        (
            "{apiVersion: 'brewkit/v1', targets: {ok: {}, b: {dependsOn: ['nope']}}}",
            "brewkit: unknown target \"nope\" in dependsOn of target \"b\"\n",
        ),
        (
            "{apiVersion: 'brewkit/v1', targets: {ok: {}, all: ['ok'], c: {copy: std.native('copyFrom')('all', '/a', '/b')}}}",
            "brewkit: target \"c\": copy[0].from \"all\" is a composite target; use a stage target or an image there\n",
        ),
        (
            "{apiVersion: 'brewkit/v1', targets: {ok: {}, d: {from: 'Not:An:Image'}}}",
            "brewkit: target \"d\": from \"Not:An:Image\" is neither a target nor a valid image reference",
        ),
    ];
    for (text, message) in files {
        let dir = project(text);
        for args in [
            &["build", "definition"][..],
            &["targets"],
            &["graph"],
            &["graph", "ok"],
            &["build", "ok"],
        ] {
            let (code, stdout, stderr) = run(brewkit(dir.path()).args(args));
            assert_eq!(code, BAD_INPUT, "{args:?} on {text}: {stdout}{stderr}");
            assert!(stderr.starts_with(message), "{args:?} on {text}: {stderr}");
            assert!(stdout.is_empty(), "{args:?}: {stdout}");
        }
    }
}

#[test]
fn a_reference_close_to_a_var_warns_before_the_build() {
    let dir = project(
        "{apiVersion: 'brewkit/v1', vars: {version: {from: 'busybox', command: 'echo 1'}}, targets: {all: {command: 'echo ${verison} $HOME $PATH $1'}}}",
    );
    let (code, _, stderr) = run(brewkit(dir.path())
        .args(["build", "--addr"])
        .arg(format!("unix://{}/none.sock", dir.path().display())));
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(
        stderr.matches("warning").count(),
        1,
        "$HOME, $PATH and $1 are the shell's: {stderr}"
    );
    assert!(
        stderr.contains("brewkit: warning: target \"all\": ${verison} in the command is not a var, so the shell expands it; did you mean var \"version\"?"),
        "{stderr}"
    );
}

#[test]
fn targets_lists_public_targets_only() {
    let dir = project("{apiVersion: 'brewkit/v1', targets: {all: ['build'], build: {from: '_base', output: '/a:dist'}, _base: {}}}");
    let (code, stdout, stderr) = run(brewkit(dir.path()).arg("targets"));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "all    composite: build\nbuild  from _base; outputs to dist\n"
    );
}

#[test]
fn jpath_and_jsonnet_path() {
    let dir = project("local lib = import 'shared.libsonnet';\n{apiVersion: 'brewkit/v1', targets: {a: {from: lib.image}}}");
    let libs = dir.path().join("libs");
    fs::create_dir(&libs).unwrap();
    fs::write(libs.join("shared.libsonnet"), "{image: 'busybox:1'}").unwrap();

    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "definition"]));
    assert_eq!(code, BAD_INPUT, "import must fail without a library path");
    assert!(stderr.contains("shared.libsonnet"), "{stderr}");

    let (code, stdout, stderr) =
        run(brewkit(dir.path()).args(["build", "definition", "-J", "libs"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("busybox:1"), "{stdout}");

    let (code, stdout, stderr) = run(brewkit(dir.path())
        .args(["build", "definition"])
        .env("JSONNET_PATH", &libs));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("busybox:1"), "{stdout}");
}

#[test]
fn ext_str_and_ext_code() {
    let dir = project("{apiVersion: 'brewkit/v1', targets: {a: {from: std.extVar('image'), env: std.extVar('env')}}}");
    let (code, stdout, stderr) = run(brewkit(dir.path()).args([
        "build",
        "definition",
        "--ext-str",
        "image=busybox",
        "--ext-code",
        "env={GREETING: 'hi'}",
    ]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"from\": \"busybox\""), "{stdout}");
    assert!(stdout.contains("\"GREETING\": \"hi\""), "{stdout}");

    let (code, stdout, stderr) = run(brewkit(dir.path())
        .args([
            "build",
            "definition",
            "--ext-str",
            "image",
            "--ext-code",
            "env={}",
        ])
        .env("image", "from-environment"));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("from-environment"), "{stdout}");
}

#[test]
fn missing_config_named_by_brewkit_config_exits_2() {
    let dir = project("{apiVersion: 'brewkit/v1', targets: {a: {}}}");
    let (code, _, stderr) = run(brewkit(dir.path())
        .args(["build", "a"])
        .env("BREWKIT_CONFIG", dir.path().join("absent")));
    assert_eq!(code, BAD_INPUT);
    assert!(stderr.contains("BREWKIT_CONFIG names"), "{stderr}");
    assert!(stderr.contains("absent"), "{stderr}");
}

#[test]
fn network_host_needs_the_entitlement_before_anything_runs() {
    let dir = project("{apiVersion: 'brewkit/v1', targets: {a: {network: 'host'}}}");
    let config = dir.path().join("config.jsonnet");
    fs::write(&config, "{entitlements: []}").unwrap();
    let (code, _, stderr) = run(brewkit(dir.path())
        .args(["build", "a"])
        .env("BREWKIT_CONFIG", &config));
    assert_eq!(code, BAD_INPUT);
    assert!(stderr.contains("network.host"), "{stderr}");

    // Granted, the plan passes every check (--dry-run stops before contacting BuildKit).
    fs::write(&config, "{entitlements: ['network.host']}").unwrap();
    let (code, stdout, stderr) = run(brewkit(dir.path())
        .args(["build", "--dry-run", "a"])
        .env("BREWKIT_CONFIG", &config));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1. a"), "{stdout}");
}

#[test]
fn unknown_secret_exits_2_and_a_declared_one_passes() {
    let dir = project("local secret = std.native('secret');\n{apiVersion: 'brewkit/v1', targets: {a: {secrets: secret('aws', '/root/.aws/credentials')}}}");
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "a"]));
    assert_eq!(code, BAD_INPUT);
    assert!(
        stderr.contains("secret \"aws\" is not declared in the host config"),
        "{stderr}"
    );

    let home = dir.path().join("home/.brewkit");
    fs::create_dir_all(&home).unwrap();
    fs::write(
        home.join("config"),
        "{secrets: [{id: 'aws', path: '${HOME}/creds'}]}",
    )
    .unwrap();
    let (code, stdout, stderr) = run(brewkit(dir.path()).args(["build", "--dry-run", "a"]));
    assert_eq!(
        code, 0,
        "declared, the secret passes the plan's checks: {stderr}"
    );
    assert!(stdout.contains("1. a"), "{stdout}");
}

#[test]
fn config_init_writes_once() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(brewkit(dir.path()).args(["config", "init"]));
    assert_eq!(code, 0, "{stderr}");
    let path = dir.path().join("home/.brewkit/config");
    assert!(stdout.contains(&path.display().to_string()), "{stdout}");
    let written = fs::read_to_string(&path).unwrap();
    assert!(written.contains("entitlements"), "{written}");

    fs::write(&path, "{secrets: []} // mine").unwrap();
    let (code, _, stderr) = run(brewkit(dir.path()).args(["config", "init"]));
    assert_eq!(code, BAD_INPUT);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(fs::read_to_string(&path).unwrap(), "{secrets: []} // mine");

    let custom = dir.path().join("custom-config");
    let (code, _, _) = run(brewkit(dir.path())
        .args(["config", "init"])
        .env("BREWKIT_CONFIG", &custom));
    assert_eq!(code, 0);
    assert!(custom.exists());
}

#[test]
fn version_names_the_supported_api_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, _) = run(brewkit(dir.path()).arg("version"));
    assert_eq!(code, 0);
    assert!(
        stdout.starts_with(&format!("brewkit {}", env!("CARGO_PKG_VERSION"))),
        "{stdout}"
    );
    assert!(stdout.contains("brewkit/v1, brewkit/v2"), "{stdout}");
}

#[test]
fn bad_arguments_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, _) = run(brewkit(dir.path()).args(["build", "--no-such-flag"]));
    assert_eq!(code, BAD_INPUT);
    let (code, _, stderr) =
        run(brewkit(dir.path()).args(["build", "definition", "--ext-str", "=x"]));
    assert_eq!(code, BAD_INPUT);
    assert!(stderr.contains("name is empty"), "{stderr}");
}

#[test]
fn unreachable_buildkit_exits_3_listing_every_address_tried() {
    let dir = project("{apiVersion: 'brewkit/v1', targets: {all: {}}}");
    let (code, _, stderr) = run(brewkit(dir.path())
        .arg("build")
        .env_remove("BUILDKIT_HOST")
        .env("XDG_RUNTIME_DIR", dir.path().join("xdg"))
        .env(
            "DOCKER_HOST",
            format!("unix://{}/no-docker.sock", dir.path().display()),
        ));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("no BuildKit daemon answered"), "{stderr}");
    assert!(
        stderr.contains("unix:///run/buildkit/buildkitd.sock"),
        "{stderr}"
    );
    assert!(stderr.contains("xdg/buildkit/buildkitd.sock"), "{stderr}");
    assert!(stderr.contains("no-docker.sock"), "{stderr}");
    assert!(stderr.contains("--addr"), "{stderr}");

    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "--addr", "ftp://nowhere"]));
    assert_eq!(code, BAD_INPUT, "{stderr}");
    assert!(stderr.contains("supported schemes"), "{stderr}");
}

#[test]
fn a_malformed_address_is_bad_input_and_a_silent_one_unreachable() {
    let dir = project("{apiVersion: 'brewkit/v1', targets: {all: {}}}");
    for bad in ["tcp://[::1", "tcp://h:port", "docker://tcp://[::1"] {
        let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "--addr", bad]));
        assert_eq!(code, BAD_INPUT, "{bad}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid BuildKit address \"{bad}\"")),
            "{stderr}"
        );
        let (code, _, stderr) = run(brewkit(dir.path())
            .args(["cache", "du"])
            .env("BUILDKIT_HOST", bad));
        assert_eq!(code, BAD_INPUT, "{bad} in BUILDKIT_HOST: {stderr}");
    }
    // Parses, but nothing listens there (port 1 on loopback refuses).
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "--addr", "tcp://[::1]:1"]));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("cannot connect to BuildKit"), "{stderr}");
}

#[test]
fn the_test_backend_is_reached_with_addr() {
    let host = std::env::var("BREWKIT_TEST_DOCKER_HOST")
        .expect("BREWKIT_TEST_DOCKER_HOST is not set: run scripts/test");
    let dir = project("{apiVersion: 'brewkit/v1', targets: {all: {}}}");
    let (code, _, stderr) =
        run(brewkit(dir.path()).args(["build", "--addr", &format!("docker://{host}")]));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn graph_draws_every_edge_of_a_fixture() {
    let dir = fixtures().join("every-directive");
    let (code, stdout, stderr) = run(brewkit(&dir).args(["graph", "--format", "dot"]));
    assert_eq!(code, 0, "{stderr}");
    let edges: Vec<&str> = stdout.lines().filter(|l| l.contains(" -> ")).collect();
    for (from, label, to) in [
        ("all", "member", "artifacts"),
        ("all", "member", "publish"),
        ("artifacts", "from", "_base"),
        ("artifacts", "dependsOn", "tools"),
        ("artifacts", "copyFrom", "tools"),
        ("artifacts", "copyFrom", "docker.io/library/busybox:1.36"),
        ("artifacts", "uses", "${version}"),
        ("publish", "dependsOn", "artifacts"),
        ("single", "from", "_base"),
        ("_base", "from", "docker.io/library/busybox:latest"),
        ("tools", "from", "registry.local:5000/team/tools:1.0"),
    ] {
        let id = |name: &str| {
            stdout
                .lines()
                .find(|l| l.contains(&format!("[label={name:?},")))
                .and_then(|l| l.split_whitespace().next())
                .unwrap_or_else(|| panic!("no node {name}: {stdout}"))
                .to_owned()
        };
        let (a, b) = (id(from), id(to));
        assert!(
            edges
                .iter()
                .any(|e| e.contains(&format!("{a} -> {b} [label={label:?}"))),
            "{from} -{label}-> {to} missing: {stdout}"
        );
    }
    assert_eq!(edges.len(), 11, "{stdout}");
    let (code, _, stderr) = run(brewkit(&dir).args(["graph", "nope"]));
    assert_eq!(code, BAD_INPUT);
    assert!(stderr.contains("unknown target"), "{stderr}");
}

#[test]
fn completion_scripts_for_each_shell() {
    let dir = project("{apiVersion: 'brewkit/v1', targets: {build: {}, test: {}, _private: {}}}");
    for (shell, marker) in [
        ("bash", "complete -F _brewkit_with_targets"),
        ("zsh", "#compdef brewkit"),
        ("fish", "complete -c brewkit"),
    ] {
        let (code, stdout, stderr) = run(brewkit(dir.path()).args(["completion", shell]));
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert!(stdout.contains(marker), "{shell}: {stdout}");
        assert!(
            stdout.contains("__complete-targets"),
            "{shell} completes target names"
        );
    }
    let (code, stdout, _) = run(brewkit(dir.path()).arg("__complete-targets"));
    assert_eq!(code, 0);
    assert_eq!(stdout, "build\ntest\n");
}

#[test]
fn bash_completes_target_names_from_the_definition() {
    let dir = project(
        "{apiVersion: 'brewkit/v1', targets: {build: {}, bench: {}, test: {}, _private: {}}}",
    );
    let (_, script, _) = run(brewkit(dir.path()).args(["completion", "bash"]));
    fs::write(dir.path().join("brewkit.bash"), script).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_brewkit"))
        .parent()
        .unwrap()
        .to_owned();
    let output = Command::new("bash")
        .current_dir(dir.path())
        .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
        .arg("-c")
        .arg(
            "source ./brewkit.bash; COMP_WORDS=(brewkit build b); COMP_CWORD=2; \
             _brewkit_with_targets brewkit b build; printf '%s\\n' \"${COMPREPLY[@]}\" | sort -u",
        )
        .output()
        .unwrap();
    let words = String::from_utf8_lossy(&output.stdout);
    assert!(words.lines().any(|w| w == "build"), "{words}");
    assert!(words.lines().any(|w| w == "bench"), "{words}");
    assert!(
        !words.lines().any(|w| w == "test" || w == "_private"),
        "{words}"
    );
}

#[test]
fn fmt_formats_then_check_passes() {
    let dir = project("{apiVersion:'brewkit/v1',\n   targets:{a:{from:'busybox',command:'true'}}}");
    let (code, _, stderr) = run(brewkit(dir.path()).args(["fmt", "--check"]));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("not formatted: brewkit.jsonnet"),
        "{stderr}"
    );
    assert!(
        fs::read_to_string(dir.path().join("brewkit.jsonnet"))
            .unwrap()
            .starts_with("{apiVersion:'brewkit/v1',"),
        "--check changes nothing"
    );

    let (code, stdout, stderr) = run(brewkit(dir.path()).args(["fmt", "brewkit.jsonnet"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "formatted brewkit.jsonnet\n");
    let (code, _, stderr) = run(brewkit(dir.path()).args(["fmt", "--check", "brewkit.jsonnet"]));
    assert_eq!(code, 0, "{stderr}");
    // Formatting changed nothing the definition means.
    let (code, stdout, _) = run(brewkit(dir.path()).args(["build", "definition"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("\"command\": \"true\""), "{stdout}");

    fs::write(dir.path().join("broken.jsonnet"), "{ a: ").unwrap();
    let (code, _, stderr) = run(brewkit(dir.path()).args(["fmt", "broken.jsonnet"]));
    assert_eq!(code, BAD_INPUT, "{stderr}");
    assert!(
        stderr.contains("broken.jsonnet: not valid Jsonnet"),
        "{stderr}"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("broken.jsonnet")).unwrap(),
        "{ a: "
    );
}

#[test]
fn fmt_writes_what_jsonnetfmt_writes_and_keeps_every_comment() {
    // The file of the issue "brewkit fmt: the same text as jsonnetfmt, and it never loses a
    // comment"; the expected text is jsonnetfmt 0.18's.
    let dir = project(
        "// Header comment: the build of a service.
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
",
    );
    let (code, stdout, stderr) = run(brewkit(dir.path()).args(["fmt"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "formatted brewkit.jsonnet\n");
    assert_eq!(
        fs::read_to_string(dir.path().join("brewkit.jsonnet")).unwrap(),
        "// Header comment: the build of a service.
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
"
    );
    let (code, _, stderr) = run(brewkit(dir.path()).args(["fmt", "--check"]));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn the_projects_own_build_and_the_examples_are_valid() {
    let root = common::root();
    let (code, stdout, stderr) = run(brewkit(&root).args(["build", "definition"]));
    assert_eq!(code, 0, "{stderr}");
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["targets"]["build"]["output"][0]["local"], "bin");
    let (code, stdout, stderr) = run(brewkit(&root).args(["graph", "--format", "dot"]));
    assert_eq!(code, 0, "{stderr}");
    for target in ["build", "test", "clippy", "fmt", "_sources", "_toolchain"] {
        assert!(
            stdout.contains(&format!("[label={target:?}")),
            "{target}: {stdout}"
        );
    }
    assert!(
        stdout.contains("docker.io/library/rust:1.88-bookworm"),
        "{stdout}"
    );
    let (code, stdout, _) = run(brewkit(&root).arg("targets"));
    assert_eq!(code, 0);
    assert!(
        stdout.contains("build   from _toolchain; outputs to bin"),
        "{stdout}"
    );

    for example in ["hello", "go-service", "rust-workspace"] {
        let file = root.join("examples").join(example).join("brewkit.jsonnet");
        let (code, _, stderr) = run(brewkit(&root)
            .arg("build")
            .arg("definition")
            .arg("-f")
            .arg(&file));
        assert_eq!(code, 0, "{example}: {stderr}");
    }
}

#[test]
fn env_names_that_are_not_variable_names_exit_2_with_the_path() {
    let dir = project(
        "{apiVersion: 'brewkit/v1', targets: {build: {env: {'A B': 'x', '1X': 'y', OK_1: 'z'}}}, vars: {v: {from: 'a', command: 'b', env: {'A=B': 'c'}}}}",
    );
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "definition"]));
    assert_eq!(code, BAD_INPUT, "{stderr}");
    for path in [
        "targets.build.env[\"A B\"]: \"A B\" does not match",
        "targets.build.env[\"1X\"]: \"1X\" does not match",
        "vars.v.env[\"A=B\"]: \"A=B\" does not match",
    ] {
        assert!(stderr.contains(path), "{path}: {stderr}");
    }
    assert!(stderr.contains("(target \"build\")"), "{stderr}");
    assert!(!stderr.contains("OK_1"), "{stderr}");
}

#[test]
fn a_copy_leaving_the_context_exits_2_before_anything_runs() {
    let dir = project(
        "{apiVersion: 'brewkit/v1', targets: {all: ['build'], build: {from: 'busybox', copy: [std.native('copy')('go.mod', '.'), std.native('copy')('src/../../x', 'x')]}}}",
    );
    for args in [
        &["build", "definition"][..],
        &["targets"],
        &["graph"],
        // Refused before BuildKit is reached: no daemon listens at this address.
        &["build", "--addr", "unix:///nonexistent/buildkitd.sock"],
    ] {
        let (code, _, stderr) = run(brewkit(dir.path()).args(args));
        assert_eq!(code, BAD_INPUT, "{args:?}: {stderr}");
        assert!(
            stderr.contains("targets.build.copy[1].src: \"src/../../x\" leaves the build context"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("(target \"build\")"), "{args:?}: {stderr}");
    }
}

#[test]
fn every_jsonnet_error_exits_2_with_file_line_col() {
    let cases = [
        (
            "local c = import 'lib/common.libsonnet';\n{apiVersion: 'brewkit/v1', targets: c}\n",
            "brewkit: brewkit.jsonnet:1:11: cannot import \"lib/common.libsonnet\": no such file; searched, in order:\n",
        ),
        (
            "{\n  apiVersion: 'brewkit/v1',\n  targets: {}.nope,\n}\n",
            "brewkit: brewkit.jsonnet:3:15: no such field: nope\n",
        ),
        (
            "{\n  apiVersion: 'brewkit/v1',\n  targets: { a: { copy: std.native('nope')('x') } },\n}\n",
            "brewkit: brewkit.jsonnet:3:29: std.native('nope') is null: there is no native \"nope\"; the natives are cache, copy, copyFrom, secret\n",
        ),
        (
            "{\n  apiVersion: 'brewkit/v1',\n  targets: import 'lib',\n}\n",
            "brewkit: brewkit.jsonnet:3:12: cannot import \"lib\": ",
        ),
        (
            "local f(n) = f(n + 1);\n{apiVersion: 'brewkit/v1', targets: f(0)}\n",
            "brewkit: brewkit.jsonnet:1:15: stack overflow: calls nested deeper than 500; reduce the recursion, or raise the limit with --max-stack N\n",
        ),
        (
            "{\n  apiVersion: 'brewkit/v1',\n  targets: { a: { command: 1 / 0 } },\n}\n",
            "brewkit: brewkit.jsonnet:3:19: attempted to divide by zero\n",
        ),
    ];
    for (text, expected) in cases {
        let dir = project(text);
        fs::create_dir(dir.path().join("lib")).unwrap();
        let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "definition"]));
        assert_eq!(code, BAD_INPUT, "{stderr}");
        assert!(stderr.starts_with(expected), "{text}\n{stderr}");
    }
}

#[test]
fn a_failed_import_lists_the_paths_searched_in_order() {
    let dir = project(
        "local c = import 'lib/common.libsonnet';\n{apiVersion: 'brewkit/v1', targets: c}\n",
    );
    let (code, _, stderr) = run(brewkit(dir.path())
        .args(["-J", "/j1", "-J", "/j2", "build", "definition"])
        .env("JSONNET_PATH", "/e1:/e2"));
    assert_eq!(code, BAD_INPUT, "{stderr}");
    // The importing file's directory, the -J directories (the last given first), then
    // JSONNET_PATH (the first entry first), as the jsonnet CLI searches them.
    let project_dir = dir.path().canonicalize().unwrap();
    let searched: Vec<String> = [
        project_dir.as_path(),
        "/j2".as_ref(),
        "/j1".as_ref(),
        "/e1".as_ref(),
        "/e2".as_ref(),
    ]
    .iter()
    .map(|d| d.join("lib/common.libsonnet").display().to_string())
    .collect();
    let listed: Vec<&str> = stderr
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("    /"))
        .map(|l| l.trim().split(' ').next().unwrap())
        .collect();
    assert_eq!(listed, searched, "{stderr}");
}

#[test]
fn max_stack_raises_the_jsonnet_recursion_limit() {
    let dir = project("local f(n) = if n == 0 then 0 else 1 + f(n - 1);\n{apiVersion: 'brewkit/v1', targets: {a: {command: std.toString(f(1000))}}}\n");
    let (code, _, stderr) = run(brewkit(dir.path()).args(["build", "definition"]));
    assert_eq!(code, BAD_INPUT, "{stderr}");
    assert!(stderr.contains("--max-stack"), "{stderr}");
    let (code, stdout, stderr) =
        run(brewkit(dir.path()).args(["build", "definition", "--max-stack", "5000"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("\"command\": \"1000\""), "{stdout}");
}

#[test]
fn definition_from_stdin_with_dash_and_dev_stdin() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("lib")).unwrap();
    fs::write(
        dir.path().join("lib/targets.libsonnet"),
        "{ a: { from: 'scratch', command: 'true' } }",
    )
    .unwrap();
    // Imports resolve from the current directory, as `jsonnet -` does.
    let text = "{apiVersion: 'brewkit/v1', targets: import 'lib/targets.libsonnet'}";
    for file in ["-", "/dev/stdin"] {
        let (code, stdout, stderr) = run_with_stdin(
            brewkit(dir.path()).args(["build", "definition", "-f", file]),
            text,
        );
        assert_eq!(code, 0, "-f {file}: {stderr}");
        assert!(stdout.contains("\"command\": \"true\""), "{stdout}");
    }
    let (code, _, stderr) = run_with_stdin(
        brewkit(dir.path()).args(["build", "definition", "-f", "-"]),
        "{\n  apiVersion: 'brewkit/v1',\n  targets: {}.nope,\n}\n",
    );
    assert_eq!(code, BAD_INPUT, "{stderr}");
    assert!(
        stderr.starts_with("brewkit: <stdin>:3:15: no such field: nope"),
        "{stderr}"
    );
}

#[test]
fn completing_targets_never_reads_a_definition_from_stdin() {
    let dir = project("{apiVersion: 'brewkit/v1', targets: {a: {}}}");
    // stdin stays open, as a terminal does while the shell completes.
    let mut child = brewkit(dir.path())
        .args(["-f", "-", "__complete-targets"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("brewkit __complete-targets -f - waits for stdin");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success());
}

#[test]
fn targets_json_names_kind_base_dependencies_and_outputs() {
    let dir = project(
        "{apiVersion: 'brewkit/v1', targets: {all: ['build'], _base: {from: 'busybox'},
          build: {from: '_base', dependsOn: ['gen'], output: '/o:out'}, gen: {}}}",
    );
    let (code, stdout, stderr) = run(brewkit(dir.path()).args(["targets", "--json"]));
    assert_eq!(code, 0, "{stderr}");
    let targets: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        targets,
        serde_json::json!([
            {"name": "all", "kind": "composite", "description": "composite: build",
             "from": null, "dependsOn": ["build"], "outputs": []},
            {"name": "build", "kind": "stage", "description": "from _base; after gen; outputs to out",
             "from": "_base", "dependsOn": ["gen"], "outputs": [{"artifact": "/o", "local": "out"}]},
            {"name": "gen", "kind": "stage", "description": "from scratch",
             "from": "scratch", "dependsOn": [], "outputs": []},
        ])
    );
}

#[test]
fn dry_run_prints_the_plan_without_contacting_buildkit() {
    let dir = project(
        "{apiVersion: 'brewkit/v1',
          vars: {v: {from: 'alpine/git', command: 'git rev-parse HEAD'}},
          targets: {all: ['a', 'b'], a: {from: 'busybox', command: 'echo ${v}', output: '/o:out/a'},
                    b: {from: 'golang:1.22'}, c: {from: 'a', dependsOn: ['b']}}}",
    );
    // Nothing answers at this address: a dry run never asks.
    let nowhere = format!("unix://{}/nothing.sock", dir.path().display());
    let (code, stdout, stderr) =
        run(brewkit(dir.path()).args(["build", "--dry-run", "--addr", &nowhere]));
    assert_eq!(code, 0, "{stderr}");
    let context = fs::canonicalize(dir.path()).unwrap();
    for expected in [
        "vars (run at once, before the targets that use them):\n  v\n",
        "images to resolve:\n  docker.io/alpine/git:latest\n  docker.io/library/busybox:latest\n  docker.io/library/golang:1.22\n",
        "order (one target at a time):\n  1. a\n  2. b\n  3. all\n",
        &format!("outputs:\n  a: /o -> {}/out/a\n", context.display()),
    ] {
        assert!(stdout.contains(expected), "{expected}\nin:\n{stdout}");
    }
    let (code, stdout, stderr) =
        run(brewkit(dir.path()).args(["build", "--dry-run", "-j", "c", "all", "--addr", &nowhere]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains(
            "rounds (-j: the targets of a round may run at once):\n  1. b\n  2. a\n  3. c, all\n"
        ) || stdout.contains(
            "rounds (-j: the targets of a round may run at once):\n  1. b\n  2. a\n  3. all, c\n"
        ),
        "{stdout}"
    );
}

#[test]
fn json_progress_reports_bad_input_as_json_lines() {
    let dir = project("{apiVersion: 'brewkit/v1', targets: {all: {}}}");
    let (code, stdout, stderr) = run(brewkit(dir.path())
        .env("BUILDKIT_PROGRESS", "json")
        .args(["build", "nope"]));
    assert_eq!(code, BAD_INPUT, "{stderr}");
    assert_eq!(stdout, "");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(lines[0]["type"], "error");
    assert_eq!(lines[0]["v"], 1);
    assert_eq!(lines[0]["exitCode"], BAD_INPUT);
    assert!(
        lines[0]["message"].as_str().unwrap().contains("nope"),
        "{stderr}"
    );
    assert_eq!(lines[1]["type"], "result");
    assert_eq!(lines[1]["status"], "failed");
    // An unknown mode in the environment is refused like one on the command line.
    let (code, _, stderr) = run(brewkit(dir.path())
        .env("BUILDKIT_PROGRESS", "fancy")
        .args(["build"]));
    assert_eq!(code, BAD_INPUT, "{stderr}");
    assert!(stderr.starts_with("brewkit: "), "{stderr}");
}

#[test]
fn usage_errors_are_worded_as_brewkits_and_never_suggest_dash_dash() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["build", "--keep-goin"][..],
        &["graph", "--keep-going"],
        &["build", "-j", "0"],
        &["nosuchcommand"],
    ] {
        let (code, stdout, stderr) = run(brewkit(dir.path()).args(args));
        assert_eq!(code, BAD_INPUT, "{args:?}: {stderr}");
        assert_eq!(stdout, "");
        assert!(stderr.starts_with("brewkit: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("error:"), "{args:?}: {stderr}");
        assert!(!stderr.contains("'-- "), "{args:?}: {stderr}");
    }
    let (_, _, stderr) = run(brewkit(dir.path()).args(["build", "--keep-goin"]));
    assert!(
        stderr.contains("'--keep-going'"),
        "the near miss is named: {stderr}"
    );
    let (code, stdout, _) = run(brewkit(dir.path()).args(["build", "--help"]));
    assert_eq!(code, 0);
    assert!(stdout.contains("--dry-run"), "{stdout}");
}

#[test]
fn completions_never_offer_the_hidden_subcommand() {
    let dir = project("{apiVersion: 'brewkit/v1', targets: {build: {}}}");
    for shell in ["bash", "zsh", "fish"] {
        let (code, stdout, _) = run(brewkit(dir.path()).args(["completion", shell]));
        assert_eq!(code, 0);
        // Only the line of ours that asks for the target names mentions it.
        let mentions: Vec<&str> = stdout
            .lines()
            .filter(|l| l.contains("__complete-targets"))
            .collect();
        assert_eq!(mentions.len(), 1, "{shell}: {mentions:#?}");
        assert!(mentions[0].contains("brewkit"), "{shell}: {mentions:?}");
    }
}

#[test]
fn context_must_be_a_directory_and_dash_dash_names_targets() {
    let dir = project(
        "{apiVersion: 'brewkit/v1', targets: {definition: {from: 'busybox', command: 'true', output: '/etc/hostname:out'}}}",
    );
    fs::write(dir.path().join("file"), "").unwrap();
    let (code, _, stderr) =
        run(brewkit(dir.path()).args(["build", "--dry-run", "-c", "file", "--", "definition"]));
    assert_eq!(code, BAD_INPUT, "{stderr}");
    assert!(stderr.contains("is not a directory"), "{stderr}");

    // -c moves where outputs land.
    fs::create_dir(dir.path().join("ctx")).unwrap();
    let (code, stdout, stderr) =
        run(brewkit(dir.path()).args(["build", "--dry-run", "-c", "ctx", "--", "definition"]));
    assert_eq!(code, 0, "{stderr}");
    let ctx = fs::canonicalize(dir.path().join("ctx")).unwrap();
    assert!(
        stdout.contains(&ctx.join("out").display().to_string()),
        "{stdout}"
    );

    // `build definition` is the subcommand; after `--` it is a target.
    let (code, stdout, _) = run(brewkit(dir.path()).args(["build", "definition"]));
    assert_eq!(code, 0);
    assert!(
        stdout.trim_start().starts_with('{'),
        "the definition as JSON: {stdout}"
    );
    let (code, stdout, stderr) =
        run(brewkit(dir.path()).args(["build", "--dry-run", "--", "definition"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("1. definition"),
        "the target's plan: {stdout}"
    );
}

/// Whether `word` is a flag's name: `-f`, `--file`, `--ext-str` (not `-` or `---`).
fn is_flag(word: &str) -> bool {
    let name = word.trim_start_matches('-');
    (1..=2).contains(&(word.len() - name.len()))
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
}

/// The flags named in backquoted spans of `text`.
fn flags_in(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|code| {
            code.split(|c: char| c.is_whitespace() || "[],|=".contains(c))
                .filter(|word| is_flag(word))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The first cell of a markdown table row, and the whole row.
fn cells(row: &str) -> Option<(&str, &str)> {
    let row = row.trim().strip_prefix('|')?;
    let (first, _) = row.split_once(" |")?;
    Some((first, row))
}

/// The rows of the markdown table whose header line is `header`, after `after`.
fn table_rows<'a>(text: &'a str, after: &str, header: &str) -> Vec<&'a str> {
    let start = text
        .find(after)
        .unwrap_or_else(|| panic!("docs/cli.md: no {after:?}"));
    let rest = &text[start..];
    let table = rest
        .find(header)
        .unwrap_or_else(|| panic!("docs/cli.md: no table {header:?} after {after:?}"));
    rest[table..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect()
}

/// The options `brewkit ARGS --help` lists, each as its names (`["-f", "--file"]`), without
/// clap's own `--help` and `--version`.
fn options_in_help(args: &[&str]) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(brewkit(dir.path()).args(args).arg("--help"));
    assert_eq!(code, 0, "brewkit {args:?} --help: {stderr}");
    stdout
        .lines()
        .skip_while(|l| l.trim() != "Options:")
        .filter_map(|l| {
            let l = l.trim_start();
            // An option's line starts with its name; a value's ("- dot: …") does not.
            l.split([',', ' ']).next().is_some_and(is_flag).then(|| {
                l.split("  ")
                    .next()
                    .unwrap()
                    .split([',', ' '])
                    .filter(|w| is_flag(w))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
        })
        .filter(|names| !names.iter().any(|n| n == "--help" || n == "--version"))
        .collect()
}

#[test]
fn the_flags_in_docs_cli_md_are_the_flags_of_each_commands_help() {
    let text = fs::read_to_string(common::root().join("docs/cli.md")).unwrap();
    let global: Vec<String> = table_rows(&text, "# brewkit command line", "| option | meaning |")
        .into_iter()
        .filter_map(cells)
        .flat_map(|(first, _)| flags_in(first))
        .collect();
    let build: Vec<String> =
        table_rows(&text, "`brewkit build` also takes:", "| option | meaning |")
            .into_iter()
            .filter_map(cells)
            .flat_map(|(first, _)| flags_in(first))
            .collect();
    assert!(global.contains(&"--jpath".to_owned()), "{global:?}");
    assert!(build.contains(&"--dry-run".to_owned()), "{build:?}");
    // Each command's row names its own flags (in either cell); the top level takes the
    // definition's alone.
    let mut commands: Vec<(Vec<String>, Vec<String>)> = vec![(Vec::new(), Vec::new())];
    for row in table_rows(&text, "## Commands", "| command | what it does |") {
        let (first, whole) = cells(row).unwrap();
        let usage = first.split('`').nth(1).unwrap();
        let path: Vec<String> = usage
            .split_whitespace()
            .skip(1)
            .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
            .map(str::to_owned)
            .collect();
        let mut flags = flags_in(whole);
        if path == ["build"] {
            flags.extend(build.iter().cloned());
        }
        commands.push((path, flags));
    }
    assert!(commands.len() > 10, "{commands:?}");
    // As docs/cli.md says: the definition's options go before the command and after the
    // commands that read the definition; the build context is `build`'s alone.
    let reads_definition = |path: &[String]| {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        matches!(
            path.as_slice(),
            [] | ["build"]
                | ["build", "definition"]
                | ["build", "definition-debug"]
                | ["targets"]
                | ["graph"]
        )
    };
    let mut problems = Vec::new();
    for (path, own) in &commands {
        let applies = |flag: &&String| {
            reads_definition(path)
                && (!matches!(flag.as_str(), "-c" | "--context")
                    || path.is_empty()
                    || path == &["build"])
        };
        let documented: Vec<&String> = global.iter().filter(applies).chain(own).collect();
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let options = options_in_help(&args);
        let command = format!("brewkit {}", path.join(" "));
        for names in &options {
            if !names.iter().any(|n| documented.contains(&n)) {
                problems.push(format!("{command}: {names:?} is not in docs/cli.md"));
            }
        }
        for flag in &documented {
            if !options.iter().any(|names| names.contains(flag)) {
                problems.push(format!(
                    "{command}: docs/cli.md names {flag}, --help does not"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn warnings_are_brewkit_warning_lines_or_json_objects() {
    let dir = project(
        "{apiVersion: 'brewkit/v1', vars: {version: {from: 'busybox', command: 'echo 1'}},
          targets: {all: ['app'], build: {}, app: {from: 'biuld', command: 'echo ${verison}'}}}",
    );
    let (code, stdout, stderr) = run(brewkit(dir.path()).args(["build", "--dry-run"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stderr,
        "brewkit: warning: target \"app\": from \"biuld\" is not a target, so it is the image docker.io/library/biuld:latest; did you mean target \"build\"?\n\
         brewkit: warning: target \"app\": ${verison} in the command is not a var, so the shell expands it; did you mean var \"version\"?\n"
    );
    assert!(
        stdout.contains("1. app"),
        "warnings do not stop the build: {stdout}"
    );

    let (code, _, stderr) =
        run(brewkit(dir.path()).args(["build", "--dry-run", "--progress", "json"]));
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    for line in &lines {
        assert_eq!(line["type"], "warning", "{line}");
        assert_eq!(line["v"], 1, "{line}");
    }
    assert!(
        lines[0]["message"]
            .as_str()
            .unwrap()
            .contains("did you mean target \"build\""),
        "{stderr}"
    );
}
