use prost::Message;

use super::*;
use pb::{file_action, op};

fn ops(definition: &pb::Definition) -> Vec<pb::Op> {
    definition
        .def
        .iter()
        .map(|bytes| pb::Op::decode(bytes.as_slice()).unwrap())
        .collect()
}

fn busybox() -> State {
    State::image(
        "docker.io/library/busybox:latest",
        ResolveMode::Default,
        None,
    )
}

#[test]
fn image_and_exec_marshal_in_dependency_order() {
    let state = busybox()
        .with_env("B", "2")
        .with_env("A", "1")
        .with_cwd("/app")
        .run(RunOptions {
            args: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
            custom_name: Some("say hi".into()),
            ..RunOptions::default()
        })
        .root();
    let definition = state.marshal();
    let ops = ops(&definition);
    assert_eq!(ops.len(), 3);
    let Some(op::Op::Source(source)) = &ops[0].op else {
        panic!("{:?}", ops[0])
    };
    assert_eq!(
        source.identifier,
        "docker-image://docker.io/library/busybox:latest"
    );
    let Some(op::Op::Exec(exec)) = &ops[1].op else {
        panic!("{:?}", ops[1])
    };
    let meta = exec.meta.as_ref().unwrap();
    assert_eq!(meta.env, ["B=2", "A=1"]);
    assert_eq!(meta.cwd, "/app");
    assert_eq!(exec.mounts[0].dest, "/");
    assert_eq!(exec.mounts[0].input, 0);
    assert_eq!(ops[1].inputs[0].digest, digest(&definition.def[0]));
    // The terminal op names the exec's root output.
    assert!(ops[2].op.is_none());
    assert_eq!(ops[2].inputs[0].digest, digest(&definition.def[1]));
    let name = &definition.metadata[&digest(&definition.def[1])].description[CUSTOM_NAME];
    assert_eq!(name, "say hi");
}

#[test]
fn marshalling_is_deterministic() {
    let build = || {
        let sources = State::local(
            "context",
            &LocalOptions {
                session_id: Some("s".into()),
                include_patterns: vec!["src".into(), "go.mod".into()],
                shared_key_hint: Some("ctx".into()),
                ..LocalOptions::default()
            },
        );
        busybox()
            .with_cwd("/app")
            .copy(
                &sources,
                "/",
                ".",
                &CopyOptions {
                    dir_contents: true,
                    create_dest_path: true,
                    ..CopyOptions::default()
                },
            )
            .run(RunOptions {
                args: vec!["make".into()],
                mounts: vec![
                    Mount::Secret {
                        dest: "/run/secrets/t".into(),
                        id: "t".into(),
                    },
                    Mount::Cache {
                        dest: "/cache".into(),
                        id: "c".into(),
                        sharing: CacheSharing::Locked,
                    },
                    Mount::Ssh,
                ],
                ..RunOptions::default()
            })
            .root()
            .marshal()
    };
    let a = build();
    let b = build();
    assert_eq!(a.def, b.def);
    assert_eq!(a.metadata, b.metadata);
    assert_eq!(a.encode_to_vec(), b.encode_to_vec());
}

#[test]
fn shared_inputs_are_marshalled_once() {
    let base = busybox();
    let left = base
        .run(RunOptions {
            args: vec!["a".into()],
            ..RunOptions::default()
        })
        .root();
    let merged = left.copy(&base, "/bin/busybox", "/b", &CopyOptions::default());
    let ops = ops(&merged.marshal());
    let sources = ops
        .iter()
        .filter(|o| matches!(o.op, Some(op::Op::Source(_))))
        .count();
    assert_eq!(sources, 1);
    assert_eq!(ops.len(), 4);
}

#[test]
fn mounts_are_sorted_and_typed() {
    let base = busybox();
    let exec = base.run(RunOptions {
        args: vec!["true".into()],
        mounts: vec![
            Mount::Writable {
                dest: "/out".into(),
                state: State::scratch(),
            },
            Mount::Cache {
                dest: "/cache".into(),
                id: "go".into(),
                sharing: CacheSharing::Shared,
            },
            Mount::ReadOnly {
                dest: "/in".into(),
                state: base.clone(),
            },
            Mount::Secret {
                dest: "/run/secrets/aws".into(),
                id: "aws".into(),
            },
            Mount::Ssh,
        ],
        network: Network::None,
        ..RunOptions::default()
    });
    assert!(exec.output("/out").is_some());
    let definition = exec.root().marshal();
    let ops = ops(&definition);
    let Some(op::Op::Exec(op)) = &ops[1].op else {
        panic!()
    };
    let dests: Vec<&str> = op.mounts.iter().map(|m| m.dest.as_str()).collect();
    assert_eq!(
        dests,
        [
            "/",
            "/cache",
            "/in",
            "/out",
            SSH_AGENT_SOCKET,
            "/run/secrets/aws"
        ]
    );
    assert_eq!(op.network, pb::NetMode::None as i32);
    let cache = &op.mounts[1];
    assert_eq!(cache.mount_type, pb::MountType::Cache as i32);
    assert_eq!(cache.output, SKIP_OUTPUT);
    // The root image and the read-only image are the same output: one input.
    assert_eq!(ops[1].inputs.len(), 1);
    assert_eq!(op.mounts[2].input, 0);
    assert!(op.mounts[2].readonly);
    assert_eq!(op.mounts[3].input, EMPTY);
    assert_eq!(op.mounts[3].output, 1);
    assert_eq!(op.mounts[5].mount_type, pb::MountType::Secret as i32);
    assert!(op
        .meta
        .as_ref()
        .unwrap()
        .env
        .contains(&format!("SSH_AUTH_SOCK={SSH_AGENT_SOCKET}")));
}

#[test]
fn local_source_attributes() {
    let state = State::local(
        "context",
        &LocalOptions {
            session_id: Some("sess".into()),
            include_patterns: vec!["a \"b\"".into()],
            shared_key_hint: Some("key".into()),
            ..LocalOptions::default()
        },
    );
    let ops = ops(&state.marshal());
    let Some(op::Op::Source(source)) = &ops[0].op else {
        panic!()
    };
    assert_eq!(source.identifier, "local://context");
    assert_eq!(source.attrs["local.session"], "sess");
    assert_eq!(source.attrs["local.includepattern"], r#"["a \"b\""]"#);
    assert_eq!(source.attrs["local.sharedkeyhint"], "key");
}

#[test]
fn relative_paths_resolve_against_the_working_directory() {
    let state = State::scratch().with_cwd("/app").with_cwd("sub");
    assert_eq!(state.cwd(), "/app/sub");
    assert_eq!(state.resolve("x"), "/app/sub/x");
    assert_eq!(state.resolve("/y"), "/y");
    let ops = ops(&state.mkdir("bin", 0o755).marshal());
    let Some(op::Op::File(file)) = &ops[0].op else {
        panic!()
    };
    let Some(file_action::Action::Mkdir(mkdir)) = &file.actions[0].action else {
        panic!()
    };
    assert_eq!(mkdir.path, "/app/sub/bin");
    assert_eq!(file.actions[0].input, EMPTY);
}

#[test]
fn scratch_marshals_to_an_empty_definition() {
    assert!(State::scratch().marshal().def.is_empty());
}

#[test]
fn force_pull_and_platform() {
    let platform = pb::Platform {
        os: "linux".into(),
        architecture: "arm64".into(),
        ..Default::default()
    };
    let state = State::image(
        "docker.io/library/busybox:1",
        ResolveMode::ForcePull,
        Some(platform.clone()),
    );
    let ops = ops(&state.marshal());
    let Some(op::Op::Source(source)) = &ops[0].op else {
        panic!()
    };
    assert_eq!(source.attrs["image.resolvemode"], "pull");
    assert_eq!(ops[0].platform.as_ref(), Some(&platform));
}

#[test]
fn mkfile_carries_its_data() {
    let ops = ops(&State::scratch()
        .with_cwd("/t")
        .mkfile("f", 0o755, b"data".to_vec())
        .marshal());
    let Some(op::Op::File(file)) = &ops[0].op else {
        panic!()
    };
    let Some(file_action::Action::Mkfile(mkfile)) = &file.actions[0].action else {
        panic!()
    };
    assert_eq!(
        (mkfile.path.as_str(), mkfile.mode, mkfile.data.as_slice()),
        ("/t/f", 0o755, &b"data"[..])
    );
}

/// Runs `f` on a thread with a small stack: what it does must not need stack in proportion to
/// the size of the graph (a tokio worker has 2 MiB; recursion overflowed it at 1,500 copies).
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .expect("no stack overflow")
}

#[test]
fn a_chain_of_5000_copies_marshals_prints_and_drops_on_a_small_stack() {
    const COPIES: usize = 5_000;
    let (definition, printed) = on_small_stack(|| {
        let context = State::local("context", &LocalOptions::default());
        let mut state = busybox();
        for i in 0..COPIES {
            let (src, dest) = (format!("f{i}"), format!("/f{i}"));
            state = state.copy(&context, &src, &dest, &CopyOptions::default());
        }
        let definition = state.marshal();
        let printed = format!("{state:?}");
        drop(state);
        (definition, printed)
    });
    assert!(printed.contains("FileOp"), "{printed}");
    let ops = ops(&definition);
    // The image, the context, one file op per copy, the terminal op.
    assert_eq!(ops.len(), COPIES + 3);
    let file_ops = ops
        .iter()
        .filter(|o| matches!(o.op, Some(op::Op::File(_))))
        .count();
    assert_eq!(file_ops, COPIES);
    // Inputs before the ops that read them: each copy reads the one before it.
    for k in 1..COPIES {
        assert_eq!(
            ops[2 + k].inputs[0].digest,
            digest(&definition.def[1 + k]),
            "copy {k}"
        );
    }
    assert_eq!(
        ops[COPIES + 2].inputs[0].digest,
        digest(&definition.def[COPIES + 1])
    );
}

#[test]
fn equal_vertices_built_apart_merge_their_metadata() {
    let base = State::image(
        "docker.io/library/busybox:latest",
        ResolveMode::Default,
        None,
    );
    let run = |ignore_cache: bool, name: &str| {
        base.run(RunOptions {
            args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
            ignore_cache,
            custom_name: Some(name.into()),
            ..RunOptions::default()
        })
        .root()
    };
    // The same op twice, once cached with a name, once ignoring the cache with another.
    let first = run(false, "first");
    let second = run(true, "second");
    let both = State::scratch().copy_all(
        &[(&first, "/a", "/a"), (&second, "/b", "/b")],
        &CopyOptions::default(),
    );
    let definition = both.marshal();
    let execs: Vec<(String, pb::OpMetadata)> = definition
        .def
        .iter()
        .zip(definition.def.iter().map(|b| digest(b)))
        .filter(|(bytes, _)| {
            matches!(
                pb::Op::decode(bytes.as_slice()).unwrap().op,
                Some(op::Op::Exec(_))
            )
        })
        .map(|(_, d)| (d.clone(), definition.metadata[&d].clone()))
        .collect();
    assert_eq!(execs.len(), 1, "one op for the two equal runs");
    let metadata = &execs[0].1;
    assert!(
        metadata.ignore_cache,
        "either ignoring the cache ignores it"
    );
    assert_eq!(metadata.description["llb.customname"], "second");
}
