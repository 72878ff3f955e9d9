//! Against a real BuildKit: Docker's embedded one, provisioned by scripts/backend.
//! `BREWKIT_TEST_DOCKER_HOST` (set by `eval "$(scripts/backend up)"`, which scripts/test does)
//! names the Docker API socket. These tests fail, never skip, when it is missing.

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
async fn session_opens_and_closes() {
    let client = client().await;
    let session = Session::start(
        &client,
        SessionOptions {
            name: "test".into(),
            shared_key: "k".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(session.id().len(), 25);
    // Give BuildKit time to health-check us at least once (every 5 s).
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    session.close().await;
}

fn busybox() -> brewkit_llb::State {
    brewkit_llb::State::image(
        "docker.io/library/busybox:latest",
        brewkit_llb::ResolveMode::Default,
        None,
    )
}

fn sh(script: &str) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script.into()]
}

/// Solves `state` without a session, returning the result and every progress event.
async fn solve(
    client: &Client,
    state: &brewkit_llb::State,
) -> (
    Result<(), brewkit_buildkit::Error>,
    Vec<brewkit_buildkit::progress::Event>,
) {
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let request = brewkit_buildkit::SolveRequest {
        definition: Some(state.marshal()),
        ..Default::default()
    };
    let result = client
        .solve(&brewkit_buildkit::new_id(), request, Some(events))
        .await
        .map(|_| ());
    let mut all = Vec::new();
    while let Ok(event) = received.try_recv() {
        all.push(event);
    }
    (result, all)
}

fn logs(events: &[brewkit_buildkit::progress::Event]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            brewkit_buildkit::progress::Event::Log { data, .. } => {
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
        .run(brewkit_llb::Run {
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
    assert!(events.iter().any(|e| matches!(e, brewkit_buildkit::progress::Event::Completed { name, error: None, .. } if name == "greet")), "{transport}: {events:#?}");
}

#[tokio::test]
async fn failing_command_fails_the_solve() {
    let client = client().await;
    let state = busybox()
        .run(brewkit_llb::Run {
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
        brewkit_buildkit::progress::Event::Completed { error: Some(_), .. }
    )));
}

#[tokio::test]
async fn gateway_resolves_solves_and_reads() {
    let client = client().await;
    let mut gateway = client.gateway(None, None).await.unwrap();
    let image = gateway
        .resolve_image_config(
            "docker.io/library/busybox:latest",
            None,
            brewkit_buildkit::gateway::ResolveMode::Default,
        )
        .await
        .unwrap();
    // An image from Docker's local store (docker import) has no registry digest, but a config.
    assert!(
        image.config.env.iter().any(|e| e.starts_with("PATH=")),
        "{image:?}"
    );

    let marker = brewkit_buildkit::new_id();
    let exec = busybox().run(brewkit_llb::Run {
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
        .run(brewkit_llb::Run {
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
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let request = brewkit_buildkit::SolveRequest {
        definition: Some(state.marshal()),
        session: Some(session.id().to_owned()),
        ..Default::default()
    };
    client
        .solve(&brewkit_buildkit::new_id(), request, Some(events))
        .await
        .unwrap_or_else(|e| panic!("{transport}: {e}"));
    let mut all = Vec::new();
    while let Ok(event) = received.try_recv() {
        all.push(event);
    }
    assert!(logs(&all).contains("secret-ok"), "{transport}: {all:#?}");
    assert!(
        !logs(&all).contains(&secret),
        "the secret must not reach the log"
    );
    session.close().await;
}
