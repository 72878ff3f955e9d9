//! Docker credential helpers: `docker-credential-<name> get`, the protocol of
//! docker/docker-credential-helpers that the docker CLI speaks.
//!
//! The helper reads the server address on stdin and writes
//! `{"ServerURL": …, "Username": …, "Secret": …}` on stdout; when it has nothing for the server it
//! exits non-zero saying "credentials not found in native keychain", which means anonymous.

use std::{io::ErrorKind, process::Stdio, time::Duration};

use tokio::{io::AsyncWriteExt, process::Command};

/// How long a helper may take. Some ask a keychain or an agent, which can be slow, but a
/// helper that hangs (waiting for a prompt no one sees) must not hang the build.
pub(super) const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// What helpers say when they hold nothing for the server (`credentials.errCredentialsNotFound`).
const NOT_FOUND: &str = "credentials not found in native keychain";

/// The user name with which a helper hands back an identity token instead of a password.
const TOKEN_USERNAME: &str = "<token>";

/// Why a helper gave no answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum HelperError {
    /// `docker-credential-<name>` is not on PATH.
    #[error("is not installed (not found on PATH)")]
    Missing,
    /// It ran and failed, timed out or answered something that is not credentials.
    #[error("{0}")]
    Failed(String),
}

/// The credentials `docker-credential-<name>` holds for `server`: (user name, secret); empty
/// when it holds none (anonymous); an identity token as the secret with no user name.
pub(super) async fn get(name: &str, server: &str) -> Result<(String, String), HelperError> {
    let program = format!("docker-credential-{name}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A helper that times out is killed, not left behind.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => HelperError::Missing,
            _ => HelperError::Failed(format!("cannot run it: {e}")),
        })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let run = async move {
        // A helper that exits without reading its input makes this write fail: its exit status
        // and output say more than the broken pipe.
        let _ = stdin.write_all(server.as_bytes()).await;
        drop(stdin);
        child.wait_with_output().await
    };
    let output = tokio::time::timeout(HELPER_TIMEOUT, run)
        .await
        .map_err(|_| {
            HelperError::Failed(format!("no answer within {} s", HELPER_TIMEOUT.as_secs()))
        })?
        .map_err(|e| HelperError::Failed(format!("cannot run it: {e}")))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        if stdout.trim() == NOT_FOUND {
            return Ok(Default::default());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said = [stdout.trim(), stderr.trim()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let said = if said.is_empty() { "no output" } else { &said };
        return Err(HelperError::Failed(format!("{}: {said}", output.status)));
    }
    parse(&stdout)
}

/// The helper protocol's answer.
#[derive(serde::Deserialize)]
struct Answer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// A helper's answer as (user name, secret).
pub(super) fn parse(stdout: &str) -> Result<(String, String), HelperError> {
    let answer: Answer = serde_json::from_str(stdout.trim())
        .map_err(|e| HelperError::Failed(format!("its answer is not credentials JSON: {e}")))?;
    if answer.username == TOKEN_USERNAME {
        return Ok((String::new(), answer.secret));
    }
    Ok((answer.username, answer.secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_identity_tokens_too() {
        assert_eq!(
            parse(r#"{"ServerURL":"r","Username":"me","Secret":"pw"}"#),
            Ok(("me".into(), "pw".into()))
        );
        assert_eq!(
            parse("{\"Username\":\"<token>\",\"Secret\":\"tok\"}\n"),
            Ok((String::new(), "tok".into()))
        );
        assert!(
            matches!(parse("nope"), Err(HelperError::Failed(m)) if m.contains("not credentials JSON"))
        );
    }

    #[tokio::test]
    async fn a_helper_that_is_not_installed_is_missing() {
        assert_eq!(
            get("brewkit-surely-not-installed", "example.com").await,
            Err(HelperError::Missing)
        );
    }
}
