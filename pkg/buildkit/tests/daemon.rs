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

#[tokio::test]
async fn lists_workers_through_docker() {
    let client = client().await;
    let workers = client.list_workers().await.unwrap();
    assert!(!workers.is_empty());
    assert!(
        workers[0].platforms.iter().any(|p| p.os == "linux"),
        "{workers:?}"
    );
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
