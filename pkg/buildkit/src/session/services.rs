//! The services a session serves: health (BuildKit checks it every few seconds), secrets,
//! registry credentials and ssh agent forwarding.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    pin::Pin,
};

use base64::Engine as _;
use futures::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::{server::NamedService, service::Routes, Request, Response, Status, Streaming};

use super::{
    files::{FileSendService, FileSyncService, Transfers},
    SessionOptions, MAX_SECRET_SIZE,
};
use crate::proto::moby::{
    buildkit::secrets::v1::{
        secrets_server::{Secrets, SecretsServer},
        GetSecretRequest, GetSecretResponse,
    },
    filesync::v1::{
        auth_server::{Auth, AuthServer},
        file_send_server::FileSendServer,
        file_sync_server::FileSyncServer,
        CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
        GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
        VerifyTokenAuthorityResponse,
    },
    sshforward::v1::{
        ssh_server::{Ssh, SshServer},
        BytesMessage as SshBytes, CheckAgentRequest, CheckAgentResponse,
    },
};

/// The ssh id BuildKit asks for when a mount names none.
const DEFAULT_SSH_ID: &str = "default";
/// gRPC metadata key carrying the ssh id of a ForwardAgent call.
const SSH_ID_KEY: &str = "buildkit.ssh.id";

pub(super) type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The routes to serve and the method paths to announce for them.
pub(super) fn routes(options: &SessionOptions, transfers: &Transfers) -> (Routes, Vec<String>) {
    let mut methods = Vec::new();
    let mut announce = |service: &str, names: &[&str]| {
        methods.extend(names.iter().map(|m| format!("/{service}/{m}")));
    };

    let (_, health) = tonic_health::server::health_reporter();
    announce("grpc.health.v1.Health", &["Check", "Watch"]);
    let mut routes = Routes::new(health);

    let secrets = SecretsService {
        files: options.secrets.clone(),
    };
    announce(SecretsServer::<SecretsService>::NAME, &["GetSecret"]);
    routes = routes.add_service(SecretsServer::new(secrets));

    if !options.dirs.is_empty() {
        announce(FileSyncServer::<FileSyncService>::NAME, &["DiffCopy"]);
        routes = routes.add_service(
            FileSyncServer::new(FileSyncService {
                dirs: options.dirs.clone(),
                transfers: transfers.clone(),
            })
            .max_decoding_message_size(usize::MAX),
        );
    }
    if !options.exports.is_empty() {
        announce(FileSendServer::<FileSendService>::NAME, &["DiffCopy"]);
        routes = routes.add_service(
            FileSendServer::new(FileSendService {
                exports: options.exports.clone(),
                transfers: transfers.clone(),
            })
            .max_decoding_message_size(usize::MAX),
        );
    }
    if options.registry_auth {
        announce(AuthServer::<AuthService>::NAME, &["Credentials"]);
        routes = routes.add_service(AuthServer::new(AuthService {
            config: docker_config_path(),
        }));
    }
    if let Some(agent) = &options.ssh_agent {
        announce(
            SshServer::<SshService>::NAME,
            &["CheckAgent", "ForwardAgent"],
        );
        routes = routes.add_service(SshServer::new(SshService {
            agent: agent.clone(),
        }));
    }
    (routes, methods)
}

/// Secrets from host files, read on each request so that nothing is kept in memory longer than
/// the call.
pub(super) struct SecretsService {
    pub(super) files: BTreeMap<String, PathBuf>,
}

#[tonic::async_trait]
impl Secrets for SecretsService {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = request.into_inner().id;
        let Some(path) = self.files.get(&id) else {
            return Err(Status::not_found(format!("secret {id} not found")));
        };
        let path = path.clone();
        let data = tokio::task::spawn_blocking(move || read_secret(&id, &path))
            .await
            .map_err(|e| Status::internal(format!("reading a secret: {e}")))??;
        Ok(Response::new(GetSecretResponse { data }))
    }
}

/// Reads secret `id` from `path`, at most [`MAX_SECRET_SIZE`] bytes. The file was checked when
/// the build started, but it may have been replaced since: it is opened without blocking (opening
/// a FIFO waits for a writer), checked to be a regular file, and read no further than one byte
/// past the limit, so that neither a FIFO nor a huge file can hang the call or fill memory.
fn read_secret(id: &str, path: &Path) -> Result<Vec<u8>, Status> {
    use std::{io::Read, os::unix::fs::OpenOptionsExt};
    let cannot_read = |e: std::io::Error| {
        Status::unavailable(format!("secret {id}: cannot read {}: {e}", path.display()))
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(cannot_read)?;
    if !file.metadata().map_err(cannot_read)?.is_file() {
        return Err(Status::failed_precondition(format!(
            "secret {id}: {} is not a regular file",
            path.display()
        )));
    }
    let mut data = Vec::new();
    file.take(MAX_SECRET_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(cannot_read)?;
    if data.len() as u64 > MAX_SECRET_SIZE {
        return Err(Status::failed_precondition(format!(
            "secret {id}: {} is larger than {MAX_SECRET_SIZE} bytes, the most BuildKit accepts",
            path.display()
        )));
    }
    Ok(data)
}

/// Registry credentials from the Docker CLI's config (`auths`); anonymous when absent.
pub(super) struct AuthService {
    pub(super) config: Option<PathBuf>,
}

fn docker_config_path() -> Option<PathBuf> {
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

/// The host's ssh agent, forwarded as id `default`.
pub(super) struct SshService {
    pub(super) agent: PathBuf,
}

fn check_ssh_id(id: &str) -> Result<(), Status> {
    if id.is_empty() || id == DEFAULT_SSH_ID {
        Ok(())
    } else {
        Err(Status::not_found(format!(
            "unset ssh forward key {id}: only the default agent is forwarded"
        )))
    }
}

#[tonic::async_trait]
impl Ssh for SshService {
    async fn check_agent(
        &self,
        request: Request<CheckAgentRequest>,
    ) -> Result<Response<CheckAgentResponse>, Status> {
        check_ssh_id(&request.into_inner().id)?;
        Ok(Response::new(CheckAgentResponse {}))
    }

    type ForwardAgentStream = BoxStream<SshBytes>;

    async fn forward_agent(
        &self,
        request: Request<Streaming<SshBytes>>,
    ) -> Result<Response<Self::ForwardAgentStream>, Status> {
        let id = request
            .metadata()
            .get(SSH_ID_KEY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(DEFAULT_SSH_ID)
            .to_owned();
        check_ssh_id(&id)?;
        let agent = tokio::net::UnixStream::connect(&self.agent)
            .await
            .map_err(|e| {
                Status::unavailable(format!(
                    "cannot reach the ssh agent at {}: {e}",
                    self.agent.display()
                ))
            })?;
        let (mut agent_read, mut agent_write) = agent.into_split();
        let mut inbound = request.into_inner();
        // BuildKit → agent.
        tokio::spawn(async move {
            while let Ok(Some(message)) = inbound.message().await {
                if agent_write.write_all(&message.data).await.is_err() {
                    return;
                }
            }
            let _ = agent_write.shutdown().await;
        });
        // Agent → BuildKit.
        let outbound = async_stream(move |tx| async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match agent_read.read(&mut buf).await {
                    Ok(0) => return,
                    Ok(n) => {
                        let message = SshBytes {
                            data: buf[..n].to_vec(),
                        };
                        if tx.send(Ok(message)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(Status::unavailable(e.to_string()))).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(outbound))
    }
}

/// A stream fed by a spawned task through a channel.
fn async_stream<T, F, Fut>(produce: F) -> BoxStream<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(produce(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
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

    #[tokio::test]
    async fn secrets_are_read_from_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cr3t").unwrap();
        let service = SecretsService {
            files: [("token".to_owned(), file)].into(),
        };
        let response = service
            .get_secret(Request::new(GetSecretRequest {
                id: "token".into(),
                ..Default::default()
            }))
            .await
            .unwrap();
        assert_eq!(response.into_inner().data, b"s3cr3t");
        let missing = service
            .get_secret(Request::new(GetSecretRequest {
                id: "other".into(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
    }

    /// A secret file swapped for a FIFO or a huge file after the build's checks: the call
    /// answers an error at once, without waiting for a writer or reading the whole file.
    #[tokio::test]
    async fn secrets_that_are_fifos_or_too_large_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 600 * 1024]).unwrap();
        let fits = dir.path().join("fits");
        std::fs::write(&fits, vec![b'x'; MAX_SECRET_SIZE as usize]).unwrap();
        let service = SecretsService {
            files: [
                ("pipe".to_owned(), fifo),
                ("big".to_owned(), big),
                ("fits".to_owned(), fits),
            ]
            .into(),
        };
        let get = |id: &str| {
            let request = Request::new(GetSecretRequest {
                id: id.into(),
                ..Default::default()
            });
            let call = service.get_secret(request);
            async move {
                tokio::time::timeout(std::time::Duration::from_secs(10), call)
                    .await
                    .expect("the call answers without waiting")
            }
        };
        let pipe = get("pipe").await.unwrap_err();
        assert_eq!(pipe.code(), tonic::Code::FailedPrecondition);
        assert!(pipe.message().contains("not a regular file"), "{pipe:?}");
        let big = get("big").await.unwrap_err();
        assert_eq!(big.code(), tonic::Code::FailedPrecondition);
        assert!(big.message().contains("larger than"), "{big:?}");
        let fits = get("fits").await.unwrap();
        assert_eq!(fits.into_inner().data.len() as u64, MAX_SECRET_SIZE);
    }

    #[test]
    fn only_the_default_ssh_id_is_forwarded() {
        assert!(check_ssh_id("").is_ok());
        assert!(check_ssh_id("default").is_ok());
        assert_eq!(
            check_ssh_id("github").unwrap_err().code(),
            tonic::Code::NotFound
        );
    }

    #[test]
    fn routes_announce_what_is_served() {
        let options = SessionOptions {
            registry_auth: true,
            ssh_agent: Some("/tmp/agent.sock".into()),
            ..SessionOptions::default()
        };
        let (_, methods) = routes(&options, &Transfers::default());
        for expected in [
            "/grpc.health.v1.Health/Check",
            "/moby.buildkit.secrets.v1.Secrets/GetSecret",
            "/moby.filesync.v1.Auth/Credentials",
            "/moby.sshforward.v1.SSH/ForwardAgent",
        ] {
            assert!(methods.iter().any(|m| m == expected), "{methods:?}");
        }
        let (_, bare) = routes(&SessionOptions::default(), &Transfers::default());
        assert!(!bare.iter().any(|m| m.contains("SSH") || m.contains("Auth")));
    }
}
