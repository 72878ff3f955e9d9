//! Which Docker daemon `docker://` means, as the docker CLI decides: `DOCKER_HOST`, else the
//! context named by `DOCKER_CONTEXT`, else `currentContext` in `$DOCKER_CONFIG/config.json`
//! (default `~/.docker`); the context `default` (or none) is the default socket. TLS comes from
//! `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`, or from the context store's TLS files.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{
    docker::{parse_docker_host, DockerEndpoint, DockerHost},
    tls::{TlsFiles, TlsSettings},
    DEFAULT_DOCKER_SOCKET, DOCKER_HOST_ENV,
};
use crate::Error;

const DOCKER_CONTEXT_ENV: &str = "DOCKER_CONTEXT";
const DOCKER_CONFIG_ENV: &str = "DOCKER_CONFIG";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `$DOCKER_CONFIG`, else `~/.docker`.
fn config_dir() -> PathBuf {
    env(DOCKER_CONFIG_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            dirs::home_dir()
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".docker")
        })
}

fn invalid(reason: String) -> Error {
    Error::InvalidAddress {
        address: "docker://".into(),
        reason,
    }
}

/// The Docker endpoint `docker://` means here.
pub(crate) fn resolve() -> Result<DockerEndpoint, Error> {
    if let Some(text) = env(DOCKER_HOST_ENV) {
        let host = parse_docker_host(&text).ok_or_else(|| {
            invalid(format!(
                "${DOCKER_HOST_ENV} is \"{text}\"; expected unix:///path, tcp://host:port or ssh://[user@]host[:port]"
            ))
        })?;
        return Ok(with_env_tls(host));
    }
    let (name, from) = match env(DOCKER_CONTEXT_ENV) {
        Some(name) => (Some(name), format!("${DOCKER_CONTEXT_ENV}")),
        None => {
            let config = config_dir().join("config.json");
            (current_context(&config)?, config.display().to_string())
        }
    };
    let Some(name) = name.filter(|n| n != "default") else {
        let mut endpoint = with_env_tls(DockerHost::Unix(DEFAULT_DOCKER_SOCKET.into()));
        endpoint.context = env(DOCKER_CONTEXT_ENV);
        return Ok(endpoint);
    };
    let mut endpoint = read_context(&config_dir().join("contexts"), &name)
        .map_err(|why| invalid(format!("Docker context \"{name}\" (from {from}): {why}")))?;
    endpoint.context = Some(name);
    Ok(endpoint)
}

/// `host` with TLS as `DOCKER_TLS_VERIFY`, `DOCKER_TLS` and `DOCKER_CERT_PATH` ask (the docker
/// CLI's defaults: each of `ca.pem`, `cert.pem`, `key.pem` used when it exists).
pub(crate) fn with_env_tls(host: DockerHost) -> DockerEndpoint {
    let verify = env("DOCKER_TLS_VERIFY").is_some();
    let mut endpoint = DockerEndpoint::new(host);
    if verify || env("DOCKER_TLS").is_some() {
        let dir = env("DOCKER_CERT_PATH").map_or_else(config_dir, PathBuf::from);
        endpoint.tls = Some(TlsSettings {
            files: tls_files(&dir),
            skip_verify: !verify,
            origin: format!(
                "ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH={}",
                dir.display()
            ),
        });
    }
    endpoint
}

fn tls_files(dir: &Path) -> TlsFiles {
    let existing = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
    TlsFiles {
        ca: existing("ca.pem"),
        cert: existing("cert.pem"),
        key: existing("key.pem"),
        server_name: None,
    }
}

/// `currentContext` of the docker CLI's config file; none when the file does not exist.
fn current_context(config: &Path) -> Result<Option<String>, Error> {
    let text = match std::fs::read_to_string(config) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(invalid(format!("{}: {e}", config.display()))),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(format!("{}: {e}", config.display())))?;
    Ok(value
        .get("currentContext")
        .and_then(|v| v.as_str())
        .filter(|v| !v.is_empty())
        .map(str::to_owned))
}

/// The context store's directory of `name`: the SHA-256 of the name, in hex.
fn store_id(name: &str) -> String {
    format!("{:x}", Sha256::digest(name.as_bytes()))
}

/// The docker endpoint of context `name` in the store under `contexts`.
fn read_context(contexts: &Path, name: &str) -> Result<DockerEndpoint, String> {
    let id = store_id(name);
    let meta = contexts.join("meta").join(&id).join("meta.json");
    let text = std::fs::read_to_string(&meta).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("no such context ({} does not exist)", meta.display())
        } else {
            format!("{}: {e}", meta.display())
        }
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", meta.display()))?;
    let docker = &value["Endpoints"]["docker"];
    let host = docker["Host"]
        .as_str()
        .ok_or_else(|| format!("{}: no Endpoints.docker.Host", meta.display()))?;
    let host = parse_docker_host(host).ok_or_else(|| {
        format!(
            "{}: Host \"{host}\" is not unix://, tcp:// or ssh://",
            meta.display()
        )
    })?;
    let skip_verify = docker["SkipTLSVerify"].as_bool().unwrap_or(false);
    let dir = contexts.join("tls").join(&id).join("docker");
    let files = tls_files(&dir);
    let mut endpoint = DockerEndpoint::new(host);
    if skip_verify || files.ca.is_some() || files.cert.is_some() {
        endpoint.tls = Some(TlsSettings {
            files,
            skip_verify,
            origin: format!(
                "ca.pem, cert.pem and key.pem of Docker context \"{name}\" in {}",
                dir.display()
            ),
        });
    }
    Ok(endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_ids_are_the_names_sha256() {
        // `printf default | sha256sum`
        assert_eq!(
            store_id("default"),
            "37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f"
        );
    }

    #[test]
    fn reads_a_context_as_the_docker_cli_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let id = store_id("remote");
        let meta = dir.path().join("meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"remote","Metadata":{},"Endpoints":{"docker":{"Host":"tcp://10.0.0.1:2376","SkipTLSVerify":false}}}"#,
        )
        .unwrap();
        let tls = dir.path().join("tls").join(&id).join("docker");
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::write(tls.join("ca.pem"), "").unwrap();
        let endpoint = read_context(dir.path(), "remote").unwrap();
        assert_eq!(endpoint.host, DockerHost::Tcp("10.0.0.1:2376".into()));
        let settings = endpoint.tls.unwrap();
        assert_eq!(settings.files.ca, Some(tls.join("ca.pem")));
        assert_eq!(settings.files.cert, None);
        let err = read_context(dir.path(), "other").unwrap_err();
        assert!(err.contains("no such context"), "{err}");
    }
}
