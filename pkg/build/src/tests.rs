use brewkit_definition::{Cache, Copy, SecretMount, Ssh};
use brewkit_llb::pb;
use prost::Message;

use std::path::{Path, PathBuf};

use super::export::common_root;
use super::host::{clean_join, context_read, shared_key};
use super::lower::*;
use super::*;

fn ops(state: &State) -> Vec<pb::Op> {
    state
        .marshal()
        .def
        .iter()
        .map(|b| pb::Op::decode(b.as_slice()).unwrap())
        .collect()
}

fn exec_of(state: &State) -> pb::ExecOp {
    ops(state)
        .into_iter()
        .rev()
        .find_map(|op| match op.op {
            Some(pb::op::Op::Exec(exec)) => Some(exec),
            _ => None,
        })
        .expect("an exec op")
}

fn busybox() -> State {
    State::image(
        "docker.io/library/busybox:latest",
        brewkit_llb::ResolveMode::Default,
        None,
    )
}

#[test]
fn command_runs_in_a_shell_with_vars_substituted() {
    let run = Run {
        command: Some("echo ${commit} $HOME ${HOME}".into()),
        workdir: Some("/app".into()),
        env: [
            ("B".to_owned(), "2".to_owned()),
            ("A".to_owned(), "1".to_owned()),
        ]
        .into(),
        ..Run::default()
    };
    let lowering = Lowering {
        vars: [("commit".to_owned(), "abc123".to_owned())].into(),
        ..Lowering::default()
    };
    let exec = exec_of(&lower_run(&run, busybox(), &[], &lowering));
    let meta = exec.meta.unwrap();
    assert_eq!(meta.args, ["/bin/sh", "-c", "echo abc123 $HOME ${HOME}"]);
    assert_eq!(meta.cwd, "/app");
    assert_eq!(meta.env, ["A=1", "B=2"], "env applied in sorted key order");
}

#[test]
fn image_config_env_user_and_workdir_are_applied_then_overridden() {
    let config = brewkit_buildkit::gateway::ImageRunConfig {
        env: vec![
            "PATH=/usr/local/go/bin:/usr/bin".into(),
            "GOPATH=/go".into(),
        ],
        user: "builder".into(),
        working_dir: "/go".into(),
    };
    let base = apply_image_config(busybox(), &config);
    let run = Run {
        command: Some("go build".into()),
        env: [("GOPATH".to_owned(), "/work".to_owned())].into(),
        ..Run::default()
    };
    let meta = exec_of(&lower_run(&run, base, &[], &Lowering::default()))
        .meta
        .unwrap();
    assert_eq!(
        meta.env,
        ["PATH=/usr/local/go/bin:/usr/bin", "GOPATH=/work"]
    );
    assert_eq!(meta.user, "builder");
    assert_eq!(meta.cwd, "/go");
}

#[test]
fn workdir_is_created_and_copies_resolve_against_it() {
    let run = Run {
        workdir: Some("/app".into()),
        copy: vec![Copy {
            from: None,
            src: "go.mod".into(),
            dst: "go.mod".into(),
        }],
        ..Run::default()
    };
    let state = lower_run(
        &run,
        busybox(),
        &[CopySource::Context],
        &Lowering {
            shared_key: "k".into(),
            ..Lowering::default()
        },
    );
    let ops = ops(&state);
    let mkdir = ops.iter().find_map(|op| match &op.op {
        Some(pb::op::Op::File(file)) => match &file.actions[0].action {
            Some(pb::file_action::Action::Mkdir(m)) => Some(m.clone()),
            _ => None,
        },
        _ => None,
    });
    assert_eq!(mkdir.unwrap().path, "/app");
    let copy = ops.iter().find_map(|op| match &op.op {
        Some(pb::op::Op::File(file)) => match &file.actions[0].action {
            Some(pb::file_action::Action::Copy(c)) => Some(c.clone()),
            _ => None,
        },
        _ => None,
    });
    let copy = copy.unwrap();
    assert_eq!(
        (copy.src.as_str(), copy.dest.as_str()),
        ("/go.mod", "/app/go.mod")
    );
    assert!(copy.allow_wildcard && copy.dir_copy_contents && copy.create_dest_path);
    let local = ops.iter().find_map(|op| match &op.op {
        Some(pb::op::Op::Source(s)) if s.identifier.starts_with("local://") => Some(s.clone()),
        _ => None,
    });
    let local = local.unwrap();
    assert_eq!(local.identifier, "local://context");
    assert_eq!(
        local.attrs["local.includepattern"], r#"["go.mod"]"#,
        "only what is copied is sent"
    );
    assert_eq!(local.attrs["local.sharedkeyhint"], "k");
}

/// The local sources of `state`: include patterns and unique id of each.
fn locals(state: &State) -> Vec<(String, Option<String>)> {
    ops(state)
        .into_iter()
        .filter_map(|op| match op.op {
            Some(pb::op::Op::Source(s)) if s.identifier.starts_with("local://") => Some((
                s.attrs["local.includepattern"].clone(),
                s.attrs.get("local.unique").cloned(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn context_copies_share_the_builds_one_source_unless_read_again() {
    let copy = |src: &str| Copy {
        from: None,
        src: src.into(),
        dst: format!("/{src}"),
    };
    let run = Run {
        copy: vec![copy("go.mod"), copy("src")],
        ..Run::default()
    };
    let runs = vec![
        ("target \"a\"".to_owned(), &run),
        ("target \"b\"".to_owned(), &run),
    ];
    let paths = super::host::context_paths(&runs);
    assert_eq!(paths, ["go.mod", "src"], "sorted, without repeats");
    let lowering = Lowering {
        shared_key: "k".into(),
        context_paths: Some(vec!["docs".into(), "go.mod".into(), "src".into()]),
        ..Lowering::default()
    };
    let sources = [CopySource::Context, CopySource::Context];
    let state = lower_run(&run, busybox(), &sources, &lowering);
    let union = r#"["docs","go.mod","src"]"#.to_owned();
    assert_eq!(
        locals(&state),
        [(union.clone(), None)],
        "both copies read one source holding every path of the build"
    );

    // A copy of a path the build has written to since reads it again, from a source of its own.
    let state = lower_run(
        &run,
        busybox(),
        &sources,
        &Lowering {
            unique: vec![None, Some("1".into())],
            ..lowering
        },
    );
    let mut found = locals(&state);
    found.sort();
    assert_eq!(
        found,
        [
            (union, None),
            (r#"["src"]"#.to_owned(), Some("1".to_owned()))
        ]
    );
}

#[test]
fn a_runs_copies_are_one_file_op() {
    let run = Run {
        copy: (0..300)
            .map(|i| Copy {
                from: None,
                src: format!("f{i}"),
                dst: format!("/c/{i}"),
            })
            .collect(),
        ..Run::default()
    };
    let sources = vec![CopySource::Context; 300];
    let state = lower_run(&run, busybox(), &sources, &Lowering::default());
    let files: Vec<pb::FileOp> = ops(&state)
        .into_iter()
        .filter_map(|op| match op.op {
            Some(pb::op::Op::File(file)) => Some(file),
            _ => None,
        })
        .collect();
    assert_eq!(files.len(), 1, "one snapshot for every copy");
    assert_eq!(files[0].actions.len(), 300);
    let name = &state.marshal().metadata;
    let names: Vec<&str> = name
        .values()
        .filter_map(|m| m.description.get("llb.customname").map(String::as_str))
        .collect();
    assert!(
        names.contains(&"copy f0 /c/0, f1 /c/1, f2 /c/2 and 297 more"),
        "{names:?}"
    );
}

#[test]
fn cache_secret_and_ssh_mounts() {
    let run = Run {
        command: Some("make".into()),
        workdir: Some("/src".into()),
        cache: vec![Cache {
            id: "go".into(),
            path: "/root/.cache".into(),
        }],
        secrets: vec![SecretMount {
            id: "aws".into(),
            path: "creds".into(),
        }],
        ssh: Some(Ssh {}),
        network: Some(brewkit_definition::Network::None),
        ..Run::default()
    };
    let exec = exec_of(&lower_run(&run, busybox(), &[], &Lowering::default()));
    let kinds: Vec<(String, i32)> = exec
        .mounts
        .iter()
        .map(|m| (m.dest.clone(), m.mount_type))
        .collect();
    assert!(kinds.contains(&("/root/.cache".into(), pb::MountType::Cache as i32)));
    assert!(
        kinds.contains(&("/src/creds".into(), pb::MountType::Secret as i32)),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|(_, t)| *t == pb::MountType::Ssh as i32));
    assert_eq!(exec.network, pb::NetMode::None as i32);
}

#[test]
fn vars_write_stdout_to_an_output_mount_and_are_never_cached() {
    let run = Run {
        from: Some("busybox".into()),
        command: Some("git rev-parse HEAD".into()),
        ..Run::default()
    };
    let state = lower_var(&run, busybox(), &[], &Lowering::default());
    let definition = state.marshal();
    let exec = exec_of(&state);
    let meta = exec.meta.unwrap();
    assert_eq!(
        meta.args[2],
        format!("exec >{VAR_OUTPUT_DIR}/{VAR_OUTPUT_FILE}\ngit rev-parse HEAD")
    );
    // Messages quoting the script show the var's own command.
    let message = format!(
        "executor failed running [/bin/sh -c {}]: exit code: 1",
        meta.args[2]
    );
    assert_eq!(
        hide_var_wrapper(&message),
        "executor failed running [/bin/sh -c git rev-parse HEAD]: exit code: 1"
    );
    assert!(definition.metadata.values().any(|m| m.ignore_cache));
    assert_eq!(var_value(b"abc\n\n"), "abc");
    assert_eq!(var_value(b"a b\n c"), "a b\n c");
}

#[test]
fn lowering_is_deterministic() {
    let run = Run {
        command: Some("echo".into()),
        env: [
            ("Z".to_owned(), "1".to_owned()),
            ("A".to_owned(), "2".to_owned()),
        ]
        .into(),
        copy: vec![Copy {
            from: None,
            src: "a".into(),
            dst: "b".into(),
        }],
        ..Run::default()
    };
    let lower = || {
        lower_run(
            &run,
            busybox(),
            &[CopySource::Context],
            &Lowering::default(),
        )
        .marshal()
        .encode_to_vec()
    };
    assert_eq!(lower(), lower());
}

#[test]
fn platforms_parse() {
    let p = platform("linux/arm64/v8").unwrap();
    assert_eq!(
        (p.os.as_str(), p.architecture.as_str(), p.variant.as_str()),
        ("linux", "arm64", "v8")
    );
    assert!(platform("linux").is_none());
}

#[test]
fn shared_keys_are_stable_and_header_safe() {
    let a = shared_key(Path::new("/home/u/project"));
    assert_eq!(a, shared_key(Path::new("/home/u/project")));
    assert_ne!(a, shared_key(Path::new("/home/u/other")));
    assert!(a.is_ascii());
}

#[test]
fn outputs_share_their_deepest_common_directory() {
    let root = common_root(&[
        PathBuf::from("/p/out/bin"),
        PathBuf::from("/p/out/docs"),
        PathBuf::from("/p/out"),
    ]);
    assert_eq!(root, PathBuf::from("/p/out"));
    assert_eq!(common_root(&[PathBuf::from("/p/a")]), PathBuf::from("/p/a"));
    assert_eq!(
        common_root(&[PathBuf::from("/p/a"), PathBuf::from("/q/b")]),
        PathBuf::from("/")
    );
}

#[test]
fn outputs_land_under_their_relative_directory_in_one_file_op() {
    let target = busybox();
    let other = busybox().with_cwd("/x").mkdir("/x", 0o755);
    let exported = output_tree(
        &[
            (&target, "/app/bin/*", Path::new("out/bin")),
            (&target, "/etc/passwd", Path::new("")),
            (&other, "/x", Path::new("out")),
        ],
        "output",
    );
    let files: Vec<pb::FileOp> = ops(&exported)
        .into_iter()
        .filter_map(|op| match op.op {
            Some(pb::op::Op::File(file)) if file.actions.len() == 3 => Some(file),
            _ => None,
        })
        .collect();
    assert_eq!(files.len(), 1, "one op for every output");
    let copies: Vec<(i64, i64, i64, String)> = files[0]
        .actions
        .iter()
        .map(|a| match &a.action {
            Some(pb::file_action::Action::Copy(c)) => {
                (a.input, a.secondary_input, a.output, c.dest.clone())
            }
            other => panic!("not a copy: {other:?}"),
        })
        .collect();
    // Inputs: busybox (0) and the mkdir on it (1); the scratch base has none. Each copy reads
    // the previous one's result, numbered after the inputs (2 + k - 1).
    assert_eq!(
        copies,
        [
            (-1, 0, -1, "/out/bin/".to_owned()),
            (2, 0, -1, "/".to_owned()),
            (3, 1, 0, "/out/".to_owned()),
        ]
    );
}

#[test]
fn output_paths_are_cleaned_lexically() {
    assert_eq!(clean_join(Path::new("."), "./out"), PathBuf::from("out"));
    assert_eq!(clean_join(Path::new("."), "."), PathBuf::from("."));
    assert_eq!(
        clean_join(Path::new("/p/app"), "../dist"),
        PathBuf::from("/p/dist")
    );
    assert_eq!(
        clean_join(Path::new("/p/app"), "a/../b"),
        PathBuf::from("/p/app/b")
    );
    assert_eq!(clean_join(Path::new(".."), "x"), PathBuf::from("../x"));
}

#[test]
fn host_network_asks_for_its_entitlement() {
    let host = Run {
        network: Some(brewkit_definition::Network::Host),
        ..Run::default()
    };
    let none = Run {
        network: Some(brewkit_definition::Network::None),
        ..Run::default()
    };
    assert_eq!(entitlements([&none, &host]), ["network.host"]);
    assert!(entitlements([&none, &Run::default()]).is_empty());
    assert!(entitlements(None).is_empty());
}

#[test]
fn context_reads_stop_at_the_first_wildcard_and_stay_inside() {
    let context = Path::new("/p");
    assert_eq!(context_read(context, "src/*.rs"), PathBuf::from("/p/src"));
    assert_eq!(context_read(context, "."), PathBuf::from("/p"));
    assert_eq!(context_read(context, "./"), PathBuf::from("/p"));
    assert_eq!(context_read(context, "/a.txt"), PathBuf::from("/p/a.txt"));
    assert_eq!(context_read(context, "dir/"), PathBuf::from("/p/dir"));
    assert_eq!(context_read(context, "../x"), PathBuf::from("/p"));
    assert_eq!(context_read(context, "a/b?/c"), PathBuf::from("/p/a"));
}

#[test]
fn context_paths_of_dot_slash_absolute_and_dir_sources() {
    let whole = (None, "/".to_owned());
    assert_eq!(context_path("."), whole);
    assert_eq!(context_path("./"), whole);
    assert_eq!(context_path("/"), whole);
    assert_eq!(
        context_path("src/"),
        (Some("src".to_owned()), "/src".to_owned())
    );
    assert_eq!(
        context_path("/a.txt"),
        (Some("a.txt".to_owned()), "/a.txt".to_owned()),
        "an absolute src is read from the context root"
    );
    assert_eq!(
        context_path("./src//x/../*.go"),
        (Some("src/*.go".to_owned()), "/src/*.go".to_owned())
    );
}

#[test]
fn wildcards_matching_nothing_are_found_on_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("src/sub")).unwrap();
    std::fs::write(root.join("src/a.go"), "").unwrap();
    std::fs::write(root.join("src/sub/b.go"), "").unwrap();
    let nothing = |src: &str| super::host::wildcard_matches_nothing(root, src);
    assert!(!nothing("src/*.go"));
    assert!(!nothing("src/*/b.go"));
    assert!(!nothing("*"));
    assert!(nothing("*.md"));
    assert!(nothing("src/*.rs"));
    assert!(nothing("missing/*.go"));
    assert!(nothing("src/*.go/x"), "a file has nothing below it");
    assert!(
        !nothing("src/a.go"),
        "no wildcard: not this check's business"
    );
    assert!(nothing("src/?.txt"));
}

#[test]
fn held_exports_go_out_after_a_burst_or_the_longest_wait() {
    let request = |name: &str| Request {
        node: Node::Target(name.to_owned()),
        state: State::scratch(),
        outputs: Vec::new(),
    };
    let start = Instant::now();
    let mut held = BTreeMap::new();
    assert_eq!(export_deadline(&held, usize::MAX), None, "nothing held");
    held.insert(3, (request("c"), start));
    assert_eq!(
        export_deadline(&held, 2),
        None,
        "held behind a running earlier target, which wakes the loop when it ends"
    );
    assert_eq!(export_deadline(&held, 4), Some(start + EXPORT_BURST));
    // Another target ends within the burst: both wait for the later one's burst.
    let later = start + EXPORT_BURST / 2;
    held.insert(5, (request("e"), later));
    assert_eq!(export_deadline(&held, 6), Some(later + EXPORT_BURST));
    assert_eq!(
        export_deadline(&held, 4),
        Some(start + EXPORT_BURST),
        "only those that may go out count"
    );
    // A burst that goes on never holds the first past the longest wait.
    held.insert(7, (request("g"), start + EXPORT_DELAY));
    assert_eq!(export_deadline(&held, 8), Some(start + EXPORT_DELAY));
}

#[test]
fn a_target_solves_what_its_export_alone_copies_out() {
    let request = |outputs: &[(&str, &str)]| Request {
        node: Node::Target("t".to_owned()),
        state: busybox(),
        outputs: outputs
            .iter()
            .map(|(artifact, local)| ((*artifact).to_owned(), PathBuf::from(local)))
            .collect(),
    };
    let one = request(&[("/w/a.txt", "/p/out"), ("/w/b.txt", "/p/out")]);
    let tree = super::export::solo_tree(&one).expect("outputs into one directory go together");
    let copies: Vec<(String, String)> = ops(&tree)
        .into_iter()
        .filter_map(|op| match op.op {
            Some(pb::op::Op::File(file)) => Some(file.actions),
            _ => None,
        })
        .flatten()
        .filter_map(|a| match a.action {
            Some(pb::file_action::Action::Copy(c)) => Some((c.src, c.dest)),
            _ => None,
        })
        .collect();
    assert_eq!(
        copies,
        [
            ("/w/a.txt".to_owned(), "/".to_owned()),
            ("/w/b.txt".to_owned(), "/".to_owned())
        ],
        "both artifacts, under the outputs' common directory"
    );
    assert!(
        super::export::solo_tree(&request(&[])).is_none(),
        "without outputs the target solves its own state"
    );
    let nested = request(&[("/w/a.txt", "/p/out"), ("/w/b.txt", "/p/out/sub")]);
    assert!(
        super::export::solo_tree(&nested).is_none(),
        "nested outputs go out one after another, so the target solves its own state"
    );
}
