//! The Auth attachable: registry credentials from the Docker CLI's config.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use tonic::{Request, Response, Status};

use crate::proto::moby::filesync::v1::{
    auth_server::Auth, CredentialsRequest, CredentialsResponse, FetchTokenRequest,
    FetchTokenResponse, GetTokenAuthorityRequest, GetTokenAuthorityResponse,
    VerifyTokenAuthorityRequest, VerifyTokenAuthorityResponse,
};

/// Registry credentials from the Docker CLI's config (`auths`); anonymous when absent.
pub(super) struct AuthService {
    pub(super) config: Option<PathBuf>,
}

pub(super) fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) if !dir.is_empty() => Some(Path::new(&dir).join("config.json")),
        _ => dirs::home_dir().map(|home| home.join(".docker").join("config.json")),
    }
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
        let config = match &self.config {
            Some(path) => match tokio::fs::read(path).await {
                Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
                Err(_) => serde_json::Value::Null,
            },
            None => serde_json::Value::Null,
        };
        let (username, secret) = credentials_for(&config, &host).unwrap_or_default();
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
}
