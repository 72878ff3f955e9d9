//! Against a real BuildKit: Docker's embedded one, provisioned by scripts/backend.
//! `BREWKIT_TEST_DOCKER_HOST` (set by `eval "$(scripts/backend up)"`, which scripts/test does)
//! names the Docker API socket. These tests fail, never skip, when it is missing.

// Helpers outside `#[test]` functions are test code too: a failed setup step should panic there.
#![allow(clippy::unwrap_used)]

use brewkit_buildkit::{transport::TlsFiles, Client, Session, SessionOptions};

fn docker_address() -> String {
    let host = std::env::var("BREWKIT_TEST_DOCKER_HOST").unwrap_or_else(|_| {
        panic!("BREWKIT_TEST_DOCKER_HOST is not set: run scripts/test, or eval \"$(scripts/backend up)\" first")
    });
    format!("docker://{host}")
}

async fn client() -> Client {
    Client::connect(Some(&docker_address()), &TlsFiles::default())
        .await
        .expect("the test backend answers")
}

/// A plain BuildKit socket made from Docker's: each connection to a unix socket of ours is
/// forwarded to dockerd after the `POST /grpc` → `101 Switching Protocols` upgrade, so the
/// `unix://` transport talks gRPC to BuildKit directly, as with buildkitd.
async fn plain_socket_bridge() -> (tempfile::TempDir, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let docker = std::env::var("BREWKIT_TEST_DOCKER_HOST").expect("BREWKIT_TEST_DOCKER_HOST");
    let docker = docker
        .strip_prefix("unix://")
        .expect("a unix:// Docker host")
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("buildkitd.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let docker = docker.clone();
            tokio::spawn(async move {
                let mut upstream = tokio::net::UnixStream::connect(&docker).await.unwrap();
                upstream
                    .write_all(b"POST /grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n")
                    .await
                    .unwrap();
                // Read the response head byte by byte so that nothing after it is consumed.
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8; 1];
                    if upstream.read(&mut byte).await.unwrap() == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                assert!(
                    head.starts_with(b"HTTP/1.1 101"),
                    "{}",
                    String::from_utf8_lossy(&head)
                );
                let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
            });
        }
    });
    let address = format!("unix://{}", path.display());
    (dir, address)
}

/// A client on each transport: `docker://` and the plain socket (through the bridge).
async fn clients() -> (tempfile::TempDir, Vec<(&'static str, Client)>) {
    let (bridge_dir, bridge) = plain_socket_bridge().await;
    let plain = Client::connect(Some(&bridge), &TlsFiles::default())
        .await
        .expect("the plain-socket bridge answers");
    (
        bridge_dir,
        vec![("docker", client().await), ("unix", plain)],
    )
}

#[tokio::test]
async fn lists_workers_on_both_transports() {
    let (_bridge, clients) = clients().await;
    for (transport, client) in clients {
        let workers = client.list_workers().await.unwrap();
        assert!(!workers.is_empty(), "{transport}");
        assert!(
            workers[0].platforms.iter().any(|p| p.os == "linux"),
            "{transport}: {workers:?}"
        );
    }
}

#[tokio::test]
async fn unreachable_daemon_is_reported_as_such() {
    let err = Client::connect(
        Some("unix:///nonexistent/buildkitd.sock"),
        &TlsFiles::default(),
    )
    .await
    .unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/buildkitd.sock"),
        "{err}"
    );
}

#[tokio::test]
async fn a_session_serves_solves_until_it_is_closed() {
    let client = client().await;
    let context = tempfile::tempdir().unwrap();
    let token = brewkit_buildkit::new_id();
    std::fs::write(context.path().join("f.txt"), &token).unwrap();
    let session = Session::start(
        &client,
        SessionOptions {
            name: "test".into(),
            shared_key: token.clone(),
            dirs: [("ctx".to_owned(), context.path().to_owned())].into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(session.id().len(), 25);
    // `include` makes each local source a cache key of its own, so BuildKit asks the session.
    let read = |session: &Session, include: &str| {
        busybox()
            .run(brewkit_llb::RunOptions {
                args: sh("cat /ctx/f.txt"),
                mounts: vec![brewkit_llb::Mount::ReadOnly {
                    dest: "/ctx".into(),
                    state: local(session, "ctx", vec![include.to_owned()]),
                }],
                ignore_cache: true,
                ..Default::default()
            })
            .root()
    };
    // BuildKit drops a session that fails its health checks (v0.8 checks every second): one
    // that still serves files seconds after it opened answered them.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let (result, events) = solve_on(&client, &read(&session, "f.txt"), Some(&session)).await;
    result.unwrap_or_else(|e| panic!("{e}: {}", logs(&events)));
    assert!(logs(&events).contains(&token), "{}", logs(&events));

    // Closed, it is gone from BuildKit: a solve that names it fails.
    let request = brewkit_buildkit::SolveOptions {
        definition: Some(read(&session, "f.t?t").marshal()),
        session: Some(session.id().to_owned()),
        ..Default::default()
    };
    session.close().await;
    let error = client
        .solve(&brewkit_buildkit::new_id(), request, None)
        .await
        .expect_err("the closed session served a solve");
    assert!(error.to_string().contains("no active session"), "{error}");
}

fn busybox() -> brewkit_llb::State {
    brewkit_llb::State::image(
        "docker.io/library/busybox:latest",
        brewkit_llb::ResolveMode::Default,
        None,
    )
}

/// The session's directory `name` as a local source (only `include`, when given).
fn local(session: &Session, name: &str, include: Vec<String>) -> brewkit_llb::State {
    brewkit_llb::State::local(
        name,
        &brewkit_llb::LocalOptions {
            session_id: Some(session.id().to_owned()),
            include_patterns: include,
            ..Default::default()
        },
    )
}

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

/// Solves `state` (on `session`, if any), returning the result and every progress event.
async fn solve_on(
    client: &Client,
    state: &brewkit_llb::State,
    session: Option<&Session>,
) -> (
    Result<(), brewkit_buildkit::Error>,
    Vec<brewkit_buildkit::status::Event>,
) {
    let (events, mut received) = tokio::sync::mpsc::channel(16);
    // Read while the solve runs: the channel is bounded, as the build's are.
    let collector = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Some(event) = received.recv().await {
            all.push(event);
        }
        all
    });
    let request = brewkit_buildkit::SolveOptions {
        definition: Some(state.marshal()),
        session: session.map(|s| s.id().to_owned()),
        ..Default::default()
    };
    let result = client
        .solve(&brewkit_buildkit::new_id(), request, Some(events))
        .await
        .map(|_| ());
    (result, collector.await.unwrap())
}

/// Solves `state` without a session.
async fn solve(
    client: &Client,
    state: &brewkit_llb::State,
) -> (
    Result<(), brewkit_buildkit::Error>,
    Vec<brewkit_buildkit::status::Event>,
) {
    solve_on(client, state, None).await
}

fn logs(events: &[brewkit_buildkit::status::Event]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            brewkit_buildkit::status::Event::Log { data, .. } => {
                Some(String::from_utf8_lossy(data).into_owned())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn hand_built_llb_runs_on_both_transports() {
    let (_bridge, clients) = clients().await;
    for (transport, client) in clients {
        hand_built_llb_runs(transport, &client).await;
    }
}

async fn hand_built_llb_runs(transport: &str, client: &Client) {
    let marker = brewkit_buildkit::new_id();
    let state = busybox()
        .run(brewkit_llb::RunOptions {
            args: sh(&format!("echo hello-{marker}")),
            custom_name: Some("greet".into()),
            ..Default::default()
        })
        .root();
    let (result, events) = solve(client, &state).await;
    result.unwrap_or_else(|e| panic!("{transport}: {e}"));
    assert!(
        logs(&events).contains(&format!("hello-{marker}")),
        "{transport}: {events:#?}"
    );
    assert!(events.iter().any(|e| matches!(e, brewkit_buildkit::status::Event::Completed { name, error: None, .. } if name == "greet")), "{transport}: {events:#?}");
}

#[tokio::test]
async fn failing_command_fails_the_solve() {
    let client = client().await;
    let state = busybox()
        .run(brewkit_llb::RunOptions {
            args: sh(&format!(
                "echo about-to-fail-{}; exit 3",
                brewkit_buildkit::new_id()
            )),
            ..Default::default()
        })
        .root();
    let (result, events) = solve(&client, &state).await;
    let err = result.unwrap_err().to_string();
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(logs(&events).contains("about-to-fail"), "{events:#?}");
    assert!(events.iter().any(|e| matches!(
        e,
        brewkit_buildkit::status::Event::Completed { error: Some(_), .. }
    )));
}

#[tokio::test]
async fn gateway_resolves_solves_and_reads() {
    let client = client().await;
    let gateway = client.gateway(None, Vec::new(), None).await.unwrap();
    let image = gateway
        .resolve_image_config(
            "docker.io/library/busybox:latest",
            None,
            brewkit_llb::ResolveMode::Default,
        )
        .await
        .unwrap();
    // An image from Docker's local store (docker import) has no registry digest, but a config.
    assert!(
        image.config.env.iter().any(|e| e.starts_with("PATH=")),
        "{image:?}"
    );

    let marker = brewkit_buildkit::new_id();
    let exec = busybox().run(brewkit_llb::RunOptions {
        args: sh(&format!("printf 'value-{marker}\\n' > /out/stdout")),
        mounts: vec![brewkit_llb::Mount::Writable {
            dest: "/out".into(),
            state: brewkit_llb::State::scratch(),
        }],
        ignore_cache: true,
        ..Default::default()
    });
    let reference = gateway
        .solve(exec.output("/out").unwrap().marshal())
        .await
        .unwrap();
    let data = gateway.read_file(&reference, "stdout").await.unwrap();
    assert_eq!(
        String::from_utf8(data).unwrap(),
        format!("value-{marker}\n")
    );
    gateway.finish().await.unwrap();
}

#[tokio::test]
async fn secret_mount_is_readable_in_the_container() {
    let (_bridge, clients) = clients().await;
    for (transport, client) in clients {
        secret_mount(transport, &client).await;
    }
}

async fn secret_mount(transport: &str, client: &Client) {
    let dir = tempfile::tempdir().unwrap();
    let secret = format!("token-{}", brewkit_buildkit::new_id());
    std::fs::write(dir.path().join("token"), &secret).unwrap();
    let session = Session::start(
        client,
        SessionOptions {
            name: "secret-test".into(),
            secrets: [("token".to_owned(), dir.path().join("token"))].into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let state = busybox()
        .run(brewkit_llb::RunOptions {
            args: sh(&format!(
                "test \"$(cat /run/secrets/token)\" = '{secret}' && test ! -e /probe && echo secret-ok"
            )),
            mounts: vec![brewkit_llb::Mount::Secret {
                dest: "/run/secrets/token".into(),
                id: "token".into(),
            }],
            ignore_cache: true,
            ..Default::default()
        })
        .root();
    let (result, all) = solve_on(client, &state, Some(&session)).await;
    result.unwrap_or_else(|e| panic!("{transport}: {e}"));
    assert!(logs(&all).contains("secret-ok"), "{transport}: {all:#?}");
    assert!(
        !logs(&all).contains(&secret),
        "the secret must not reach the log"
    );
    session.close().await;
}

/// The host's `ssh-add` with its shared libraries and loader, copied into `dir`, and the
/// command that runs it from `/sshtools` in a busybox container.
fn host_ssh_add(dir: &std::path::Path) -> Vec<String> {
    let ldd = std::process::Command::new("ldd")
        .arg("/usr/bin/ssh-add")
        .output()
        .unwrap();
    let mut files = vec!["/usr/bin/ssh-add".to_owned()];
    let mut loader = None;
    for line in String::from_utf8(ldd.stdout).unwrap().lines() {
        if let Some(path) = line.split_whitespace().find(|w| w.starts_with('/')) {
            if line.contains("ld-linux") {
                loader = Some(path.to_owned());
            }
            files.push(path.to_owned());
        }
    }
    for file in &files {
        let name = std::path::Path::new(file).file_name().unwrap();
        std::fs::copy(file, dir.join(name)).unwrap();
    }
    let loader = loader.expect("a dynamic loader");
    let loader_name = std::path::Path::new(&loader)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    vec![
        format!("/sshtools/{loader_name}"),
        "--library-path".into(),
        "/sshtools".into(),
        "/sshtools/ssh-add".into(),
        "-l".into(),
    ]
}

#[tokio::test]
async fn ssh_agent_is_forwarded() {
    let client = client().await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let comment = format!("brewkit-test-{}", brewkit_buildkit::new_id());
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", &comment, "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    let socket = dir.path().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if socket.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let added = std::process::Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(added.success());

    let tools = tempfile::tempdir().unwrap();
    let args = host_ssh_add(tools.path());
    let session = Session::start(
        &client,
        SessionOptions {
            name: "ssh-test".into(),
            ssh_agent: Some(socket.clone()),
            dirs: [("sshtools".to_owned(), tools.path().to_owned())].into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let tools_state = local(&session, "sshtools", Vec::new());
    let state = busybox()
        .run(brewkit_llb::RunOptions {
            args,
            mounts: vec![
                brewkit_llb::Mount::Ssh,
                brewkit_llb::Mount::ReadOnly {
                    dest: "/sshtools".into(),
                    state: tools_state,
                },
            ],
            ignore_cache: true,
            ..Default::default()
        })
        .root();
    let (result, all) = solve_on(&client, &state, Some(&session)).await;
    session.close().await;
    let _ = agent.kill();
    let _ = agent.wait();
    result.unwrap_or_else(|e| panic!("{e}: {all:#?}"));
    assert!(
        logs(&all).contains(&comment),
        "ssh-add -l must list the key: {all:#?}"
    );
}

/// Every kind of entry a context can hold.
fn populate_context(root: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("src/nested/deeper")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("README.md"), "hello\n").unwrap();
    std::fs::write(root.join("src/nested/deeper/data.txt"), "deep data").unwrap();
    std::fs::write(root.join("src/run.sh"), "#!/bin/sh\necho run\n").unwrap();
    std::fs::set_permissions(
        root.join("src/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("nested/deeper/data.txt", root.join("src/link")).unwrap();
    let big: Vec<u8> = (0..10 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(root.join("big.bin"), big).unwrap();
}

/// Relative path → (kind and mode, content or link target) for every entry under `root`.
fn tree(root: &std::path::Path) -> std::collections::BTreeMap<String, (String, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(
                    rel,
                    ("link".into(), target.to_string_lossy().as_bytes().to_vec()),
                );
            } else if meta.is_dir() {
                out.insert(rel, (format!("dir {mode:o}"), Vec::new()));
                stack.push(path);
            } else {
                out.insert(
                    rel,
                    (format!("file {mode:o}"), std::fs::read(&path).unwrap()),
                );
            }
        }
    }
    out
}

/// Sends `context` (only `include`, when given) as a local source and exports it back into
/// `export` in one solve; returns the session's transfers.
async fn upload_and_export(
    client: &Client,
    context: &std::path::Path,
    include: Vec<String>,
    export: &std::path::Path,
) -> Result<Vec<brewkit_buildkit::Transfer>, brewkit_buildkit::Error> {
    let session = Session::start(
        client,
        SessionOptions {
            name: "round-trip".into(),
            shared_key: brewkit_buildkit::new_id(),
            dirs: [("context".to_owned(), context.to_owned())].into(),
            exports: vec![export.to_owned()],
            ..Default::default()
        },
    )
    .await?;
    let source = local(&session, "context", include);
    let request = brewkit_buildkit::SolveOptions {
        definition: Some(source.marshal()),
        session: Some(session.id().to_owned()),
        export_local: true,
        ..Default::default()
    };
    let result = client
        .solve(&brewkit_buildkit::new_id(), request, None)
        .await;
    let transfers = session.transfers().await;
    session.close().await;
    result.map(|_| transfers)
}

#[tokio::test]
async fn context_uploads_and_exports_back_byte_identical() {
    let (_bridge, clients) = clients().await;
    for (transport, client) in clients {
        let context = tempfile::tempdir().unwrap();
        populate_context(context.path());
        let export = tempfile::tempdir().unwrap();
        std::fs::write(export.path().join("keep.txt"), "not deleted").unwrap();
        let transfers = upload_and_export(&client, context.path(), Vec::new(), export.path())
            .await
            .unwrap_or_else(|e| panic!("{transport}: {e}"));

        let mut expected = tree(context.path());
        expected.insert(
            "keep.txt".into(),
            ("file 644".into(), b"not deleted".to_vec()),
        );
        let actual = tree(export.path());
        assert_eq!(
            actual.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{transport}"
        );
        for (path, entry) in &expected {
            assert!(
                actual[path] == *entry,
                "{transport}: {path} differs: {:?} vs {:?}",
                &actual[path].0,
                entry.0
            );
        }
        assert!(
            transfers
                .iter()
                .any(|t| matches!(t, brewkit_buildkit::Transfer::Sent { result: Ok(_), .. })),
            "{transfers:?}"
        );
        assert!(
            transfers.iter().any(|t| matches!(
                t,
                brewkit_buildkit::Transfer::Received { result: Ok(_), .. }
            )),
            "{transfers:?}"
        );
    }
}

#[tokio::test]
async fn include_patterns_send_only_what_is_asked() {
    let client = client().await;
    let context = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(context.path().join("wanted/sub")).unwrap();
    std::fs::write(context.path().join("wanted/a.txt"), "a").unwrap();
    std::fs::write(context.path().join("wanted/sub/b.txt"), "b").unwrap();
    std::fs::create_dir_all(context.path().join("unrelated")).unwrap();
    for i in 0..200 {
        std::fs::write(context.path().join(format!("unrelated/{i}.txt")), "x").unwrap();
    }
    std::fs::write(context.path().join("other.txt"), "o").unwrap();
    let export = tempfile::tempdir().unwrap();
    let transfers = upload_and_export(
        &client,
        context.path(),
        vec!["wanted".into()],
        export.path(),
    )
    .await
    .unwrap();
    let sent: Vec<_> = transfers
        .iter()
        .filter_map(|t| match t {
            brewkit_buildkit::Transfer::Sent {
                result: Ok(stats), ..
            } => Some(stats.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 1, "{transfers:?}");
    assert_eq!(sent[0].files_read, 2, "{:?}", sent[0]);
    assert!(
        sent[0].entries_stat < 10,
        "the unrelated directory must not be walked: {:?}",
        sent[0]
    );
    let exported = tree(export.path());
    assert_eq!(
        exported.keys().map(String::as_str).collect::<Vec<_>>(),
        ["wanted", "wanted/a.txt", "wanted/sub", "wanted/sub/b.txt"]
    );
}

fn temp_files(dir: &std::path::Path) -> Vec<String> {
    tree(dir)
        .into_keys()
        .filter(|p| {
            p.rsplit('/')
                .next()
                .unwrap_or(p)
                .starts_with(".brewkit-tmp-")
        })
        .collect()
}

/// Whether a process on this machine (a container's included) has `token` in its command line:
/// a test finds its own container's process by a token no other test uses.
fn process_with(token: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        entry.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit())
            // A process may exit between the listing and the read: it is then not running.
            && std::fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| {
                cmdline
                    .windows(token.len())
                    .any(|w| w == token.as_bytes())
            })
    })
}

#[tokio::test]
async fn cancelling_a_solve_stops_the_run() {
    let client = client().await;
    // The shell stays (it waits for sleep) with the token in its command line.
    let token = brewkit_buildkit::new_id();
    let state = busybox()
        .run(brewkit_llb::RunOptions {
            args: sh(&format!("echo started {token}; sleep 47 & wait")),
            ignore_cache: true,
            ..Default::default()
        })
        .root();
    let (events, mut received) = tokio::sync::mpsc::channel(1024);
    let solve_client = client.clone();
    let request = brewkit_buildkit::SolveOptions {
        definition: Some(state.marshal()),
        ..Default::default()
    };
    let solve = tokio::spawn(async move {
        solve_client
            .solve(&brewkit_buildkit::new_id(), request, Some(events))
            .await
    });
    let running = || process_with(&token);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    solve.abort();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while running() {
        assert!(
            std::time::Instant::now() < deadline,
            "the container still runs 20 s after the solve was cancelled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    while received.try_recv().is_ok() {}
}

#[tokio::test]
async fn cancelling_an_export_mid_transfer_leaves_no_temporary_files() {
    let client = client().await;
    let export = tempfile::tempdir().unwrap();
    let session = Session::start(
        &client,
        SessionOptions {
            name: "cancel-export".into(),
            exports: vec![export.path().to_owned()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let exec = busybox().run(brewkit_llb::RunOptions {
        args: sh("dd if=/dev/urandom of=/out/big bs=1M count=400 2>/dev/null"),
        mounts: vec![brewkit_llb::Mount::Writable {
            dest: "/out".into(),
            state: brewkit_llb::State::scratch(),
        }],
        ignore_cache: true,
        ..Default::default()
    });
    let request = brewkit_buildkit::SolveOptions {
        definition: Some(exec.output("/out").unwrap().marshal()),
        session: Some(session.id().to_owned()),
        export_local: true,
        ..Default::default()
    };
    let solve_client = client.clone();
    let solve = tokio::spawn(async move {
        solve_client
            .solve(&brewkit_buildkit::new_id(), request, None)
            .await
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut saw_transfer = false;
    while std::time::Instant::now() < deadline && !solve.is_finished() {
        if !temp_files(export.path()).is_empty() {
            saw_transfer = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    solve.abort();
    session.close().await;
    assert!(saw_transfer, "the export never started writing");
    // The receiver removes its temporary files as it stops, which may end after close returns.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !temp_files(export.path()).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(temp_files(export.path()), Vec::<String>::new());
}

/// A registry without auth: the session's Auth service answers "no credentials" and the pull
/// goes on. Credentials from the session against a registry that requires them (and a 401
/// without them) are tested end to end in tests/build.rs (`auth_registry`).
#[tokio::test]
async fn image_is_pulled_from_a_registry_through_the_session() {
    let registry = std::env::var("BREWKIT_TEST_REGISTRY")
        .expect("BREWKIT_TEST_REGISTRY is not set: run scripts/test");
    let client = client().await;
    let session = Session::start(
        &client,
        SessionOptions {
            name: "registry".into(),
            registry_auth: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let reference = format!("{registry}/busybox:latest");
    let gateway = client
        .gateway(Some(session.id().to_owned()), Vec::new(), None)
        .await
        .unwrap();
    let image = gateway
        .resolve_image_config(&reference, None, brewkit_llb::ResolveMode::ForcePull)
        .await
        .unwrap();
    assert!(
        image.digest.starts_with("sha256:"),
        "a registry image has a digest: {image:?}"
    );
    gateway.finish().await.unwrap();

    let marker = brewkit_buildkit::new_id();
    let state = brewkit_llb::State::image(&reference, brewkit_llb::ResolveMode::ForcePull, None)
        .run(brewkit_llb::RunOptions {
            args: sh(&format!("echo pulled-{marker}")),
            ..Default::default()
        })
        .root();
    let (result, all) = solve_on(&client, &state, Some(&session)).await;
    result.unwrap();
    session.close().await;
    assert!(logs(&all).contains(&format!("pulled-{marker}")), "{all:#?}");
}

#[tokio::test]
async fn thousands_of_small_files_upload_on_one_session() {
    let client = client().await;
    let context = tempfile::tempdir().unwrap();
    for i in 0..4000 {
        let dir = context.path().join(format!("d{}", i % 20));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("f{i}")), i.to_string()).unwrap();
    }
    let session = Session::start(
        &client,
        SessionOptions {
            name: "small-files".into(),
            shared_key: brewkit_buildkit::new_id(),
            dirs: [("context".to_owned(), context.path().to_owned())].into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let source = local(&session, "context", Vec::new());
    let state = busybox()
        .run(brewkit_llb::RunOptions {
            args: sh("test \"$(find /ctx -type f | wc -l)\" -eq 4000 && cat /ctx/d7/f3987"),
            mounts: vec![brewkit_llb::Mount::ReadOnly {
                dest: "/ctx".into(),
                state: source,
            }],
            ignore_cache: true,
            ..Default::default()
        })
        .root();
    let request = brewkit_buildkit::SolveOptions {
        definition: Some(state.marshal()),
        session: Some(session.id().to_owned()),
        ..Default::default()
    };
    let result = client
        .solve(&brewkit_buildkit::new_id(), request, None)
        .await;
    let transfers = session.transfers().await;
    session.close().await;
    result.unwrap_or_else(|e| panic!("{e}; transfers: {transfers:?}"));
}
