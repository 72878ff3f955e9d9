//! The Auth attachable: registry credentials found as the docker CLI finds them, in its config
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): the registry's `credHelpers`
//! entry, else `credsStore`, each through its `docker-credential-<name>` helper; else the
//! file's `auths`; anonymous when none has any.

mod helpers;

use std::{
    collections::HashMap,
    io::ErrorKind,
    path::{Path, PathBuf},
};

use base64::Engine as _;
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use crate::proto::moby::filesync::v1::{
    auth_server::Auth, CredentialsRequest, CredentialsResponse, FetchTokenRequest,
    FetchTokenResponse, GetTokenAuthorityRequest, GetTokenAuthorityResponse,
    VerifyTokenAuthorityRequest, VerifyTokenAuthorityResponse,
};
use helpers::HelperError;

/// The server address Docker stores Docker Hub's credentials under (`registry.IndexServer`).
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// (user name, secret): both empty for anonymous, no user name for an identity token.
type Credentials = (String, String);

/// Registry credentials from the Docker CLI's config and credential helpers.
pub(super) struct AuthService {
    config: Option<PathBuf>,
    /// Each registry's answer, so that a helper runs once per registry and session however
    /// often BuildKit asks (it asks again for every pull and token); an error is kept too, so
    /// that every pull from that registry reports it the same way.
    answers: Mutex<HashMap<String, Result<Credentials, AuthError>>>,
}

impl AuthService {
    /// Answers from the config file at `config` (none: anonymous).
    pub(super) fn new(config: Option<PathBuf>) -> Self {
        Self {
            config,
            answers: Mutex::default(),
        }
    }
}

/// Why a registry's credentials could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum AuthError {
    /// The config file exists but cannot be read or is not JSON: not taken as "no credentials",
    /// which would turn a typo into a puzzling 401.
    #[error("registry credentials for {registry}: cannot read {}: {reason}", path.display())]
    Config {
        registry: String,
        path: PathBuf,
        reason: String,
    },
    /// The helper the config names is not installed.
    #[error("registry credentials for {registry}: docker-credential-{helper} is not installed (not found on PATH); install docker-credential-{helper} or remove {setting} {}", path.display())]
    HelperMissing {
        registry: String,
        helper: String,
        /// Which setting names the helper, worded to be followed by the file.
        setting: String,
        path: PathBuf,
    },
    /// The helper ran and failed.
    #[error("registry credentials for {registry}: docker-credential-{helper} get failed: {reason}; fix docker-credential-{helper} or remove {setting} {}", path.display())]
    HelperFailed {
        registry: String,
        helper: String,
        setting: String,
        path: PathBuf,
        reason: String,
    },
}

impl From<AuthError> for Status {
    fn from(error: AuthError) -> Self {
        // Any code but Unimplemented: BuildKit takes that one as "no credentials" and goes on
        // anonymously, which would hide the cause behind a 401.
        Status::failed_precondition(error.to_string())
    }
}

pub(super) fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) if !dir.is_empty() => Some(Path::new(&dir).join("config.json")),
        _ => dirs::home_dir().map(|home| home.join(".docker").join("config.json")),
    }
}

/// The server address the docker CLI looks a registry host up by in `credHelpers` and hands
/// helpers: Docker Hub's legacy index URL for Docker Hub (as buildx's auth provider does), the
/// host for the others.
fn server_address(host: &str) -> &str {
    match host {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => DOCKER_HUB,
        other => other,
    }
}

/// The helper that holds `server`'s credentials and the setting that names it, as the docker
/// CLI picks it (`ConfigFile.GetCredentialsStore`): the server's `credHelpers` entry, else
/// `credsStore`; none means the file's `auths`. An empty `credHelpers` entry means `auths`.
fn helper_for<'a>(config: &'a serde_json::Value, server: &str) -> Option<(&'a str, String)> {
    if let Some(helper) = config
        .get("credHelpers")
        .and_then(|h| h.get(server))
        .and_then(|h| h.as_str())
    {
        return (!helper.is_empty())
            .then(|| (helper, format!("\"{server}\" from \"credHelpers\" in")));
    }
    config
        .get("credsStore")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .map(|helper| (helper, "\"credsStore\" from".to_owned()))
}

/// `host`'s credentials as the docker CLI finds them with the config file at `path`.
async fn lookup(path: Option<&Path>, host: &str) -> Result<Credentials, AuthError> {
    let Some(path) = path else {
        return Ok(Credentials::default());
    };
    let config_error = |reason: String| AuthError::Config {
        registry: host.to_owned(),
        path: path.to_owned(),
        reason,
    };
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        // No config is no credentials, as for the docker CLI.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Credentials::default()),
        Err(e) => return Err(config_error(e.to_string())),
    };
    // An empty file is an empty config to the docker CLI too.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Credentials::default());
    }
    let config: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| config_error(format!("not JSON: {e}")))?;
    let server = server_address(host);
    let Some((helper, setting)) = helper_for(&config, server) else {
        return Ok(credentials_for(&config, host).unwrap_or_default());
    };
    helpers::get(helper, server).await.map_err(|e| {
        let (registry, helper, path) = (host.to_owned(), helper.to_owned(), path.to_owned());
        match e {
            HelperError::Missing => AuthError::HelperMissing {
                registry,
                helper,
                setting,
                path,
            },
            HelperError::Failed(reason) => AuthError::HelperFailed {
                registry,
                helper,
                setting,
                path,
                reason,
            },
        }
    })
}

/// The `auths` key a registry host is stored under: Docker Hub under its legacy index URL,
/// others by host, with or without a scheme.
fn credentials_for(config: &serde_json::Value, host: &str) -> Option<(String, String)> {
    let auths = config.get("auths")?.as_object()?;
    let wanted = match host {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => "index.docker.io",
        other => other,
    };
    let entry = auths.iter().find_map(|(key, entry)| {
        let bare = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let bare = bare.split('/').next().unwrap_or(bare);
        (bare == wanted).then_some(entry)
    })?;
    if let Some(token) = entry
        .get("identitytoken")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
    {
        return Some((String::new(), token.to_owned()));
    }
    let encoded = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, secret) = text.split_once(':')?;
    Some((user.to_owned(), secret.to_owned()))
}

#[tonic::async_trait]
impl Auth for AuthService {
    async fn credentials(
        &self,
        request: Request<CredentialsRequest>,
    ) -> Result<Response<CredentialsResponse>, Status> {
        let host = request.into_inner().host;
        // Held while the helper runs: BuildKit asks for a registry from several pulls at once,
        // and one run answers them all.
        let mut answers = self.answers.lock().await;
        let answer = match answers.get(&host) {
            Some(answer) => answer.clone(),
            None => {
                let answer = lookup(self.config.as_deref(), &host).await;
                answers.insert(host, answer.clone());
                answer
            }
        };
        let (username, secret) = answer?;
        Ok(Response::new(CredentialsResponse { username, secret }))
    }

    async fn fetch_token(
        &self,
        _: Request<FetchTokenRequest>,
    ) -> Result<Response<FetchTokenResponse>, Status> {
        Err(Status::unimplemented("BuildKit fetches tokens itself"))
    }

    async fn get_token_authority(
        &self,
        _: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }

    async fn verify_token_authority(
        &self,
        _: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn credentials_from_docker_config() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("me:pass");
        let config = json!({"auths": {
            "https://index.docker.io/v1/": {"auth": encoded},
            "127.0.0.1:5000": {"auth": encoded},
            "ghcr.io": {"identitytoken": "tok"}
        }});
        assert_eq!(
            credentials_for(&config, "registry-1.docker.io"),
            Some(("me".into(), "pass".into()))
        );
        assert_eq!(
            credentials_for(&config, "127.0.0.1:5000"),
            Some(("me".into(), "pass".into()))
        );
        assert_eq!(
            credentials_for(&config, "ghcr.io"),
            Some((String::new(), "tok".into()))
        );
        assert_eq!(credentials_for(&config, "quay.io"), None);
        assert_eq!(credentials_for(&json!({}), "ghcr.io"), None);
    }

    #[test]
    fn cred_helpers_come_before_creds_store_which_comes_before_auths() {
        let config = json!({
            "auths": {"127.0.0.1:5000": {"auth": "bWU6cGFzcw=="}},
            "credHelpers": {"127.0.0.1:5000": "one", "ghcr.io": "", "https://index.docker.io/v1/": "hub"},
            "credsStore": "store"
        });
        let helper = |host| helper_for(&config, server_address(host)).map(|(h, _)| h);
        assert_eq!(helper("127.0.0.1:5000"), Some("one"));
        assert_eq!(helper("quay.io"), Some("store"));
        assert_eq!(
            helper("registry-1.docker.io"),
            Some("hub"),
            "Docker Hub by its index URL"
        );
        assert_eq!(helper("ghcr.io"), None, "an empty entry means auths");
        let no_store = json!({"credsStore": "", "auths": {}});
        assert_eq!(helper_for(&no_store, "quay.io"), None);
    }

    #[tokio::test]
    async fn a_missing_or_broken_config_is_anonymous_or_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        assert_eq!(
            lookup(Some(&path), "quay.io").await,
            Ok(Credentials::default())
        );
        std::fs::write(&path, "\n").unwrap();
        assert_eq!(
            lookup(Some(&path), "quay.io").await,
            Ok(Credentials::default())
        );
        std::fs::write(&path, r#"{"auths": {"#).unwrap();
        let error = lookup(Some(&path), "quay.io")
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("EOF while parsing"), "{error}");
    }

    #[tokio::test]
    async fn a_helper_that_is_not_installed_names_itself_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credsStore": "brewkit-none"}"#).unwrap();
        let error = lookup(Some(&path), "quay.io")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "registry credentials for quay.io: docker-credential-brewkit-none is not installed \
                 (not found on PATH); install docker-credential-brewkit-none or remove \
                 \"credsStore\" from {}",
                path.display()
            )
        );
        std::fs::write(&path, r#"{"credHelpers": {"quay.io": "brewkit-none"}}"#).unwrap();
        let error = lookup(Some(&path), "quay.io")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with(&format!(
                "remove \"quay.io\" from \"credHelpers\" in {}",
                path.display()
            )),
            "{error}"
        );
    }
}
