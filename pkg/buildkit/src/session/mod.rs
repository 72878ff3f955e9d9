//! The session: a gRPC server of ours that BuildKit calls back through `Control.Session`, for the
//! files, secrets, ssh agent and registry credentials of this host.
//!
//! `Control.Session` is a bidirectional stream of byte messages. We tunnel an HTTP/2 connection
//! through it, with BuildKit as the client and our tonic server as the server. The methods we serve
//! are announced in the call's `X-Docker-Expose-Session-*` headers.

mod auth;
mod files;
mod health;
mod secrets;
mod ssh;
mod tasks;
mod tunnel;

use std::{collections::BTreeMap, path::PathBuf, pin::Pin};

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{
    metadata::{AsciiMetadataValue, MetadataMap},
    server::NamedService,
    service::Routes,
    Status,
};

use crate::{
    new_id,
    proto::moby::{
        buildkit::{secrets::v1::secrets_server::SecretsServer, v1::BytesMessage},
        filesync::v1::{
            auth_server::AuthServer, file_send_server::FileSendServer,
            file_sync_server::FileSyncServer,
        },
        sshforward::v1::ssh_server::SshServer,
    },
    Client, Error,
};
use auth::AuthService;
use files::{FileSendService, FileSyncService, Transfers};
use secrets::SecretsService;
use ssh::SshService;
use tasks::Tasks;
use tunnel::{pump_in, pump_out, Tunnel, CHUNK};

/// A stream of a service's answers.
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

const HEADER_ID: &str = "x-docker-expose-session-uuid";
const HEADER_NAME: &str = "x-docker-expose-session-name";
const HEADER_SHARED_KEY: &str = "x-docker-expose-session-sharedkey";
const HEADER_METHOD: &str = "x-docker-expose-session-grpc-method";

pub use files::Transfer;

/// The largest secret BuildKit accepts, in bytes: its own session provider refuses more
/// (`MaxSecretSize = 500 * 1024` in session/secrets/secretsprovider/secretsprovider.go, v0.8.3).
pub const MAX_SECRET_SIZE: u64 = 500 * 1024;

/// What the session lends to BuildKit.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Local directories BuildKit may read (local sources name them), by name.
    pub dirs: BTreeMap<String, PathBuf>,
    /// Where local exports are written, by exporter id (a solve with one exporter uses id 0).
    pub exports: Vec<PathBuf>,
    /// Shown by BuildKit in its logs and session listings.
    pub name: String,
    /// Keys BuildKit's cache of local sources: the same key for the same directory lets a second
    /// build send only what changed.
    pub shared_key: String,
    /// Secret id → host file, read when BuildKit asks for the secret.
    pub secrets: BTreeMap<String, PathBuf>,
    /// The ssh agent socket to forward (as id `default`), usually `$SSH_AUTH_SOCK`.
    pub ssh_agent: Option<PathBuf>,
    /// Answer registry credential requests from `~/.docker/config.json`.
    pub registry_auth: bool,
}

/// A running session. Dropping it (or [`Session::close`]) ends it.
#[derive(Debug)]
pub struct Session {
    id: String,
    transfers: files::Transfers,
    cancel: CancellationToken,
    /// The tunnel's two pumps, the server and the services' calls: aborted when the session is
    /// dropped, awaited when it is closed.
    tasks: Tasks,
}

impl Session {
    /// Opens the session on `client`'s connection and starts serving it.
    pub async fn start(client: &Client, options: SessionOptions) -> Result<Self, Error> {
        let id = new_id();
        let transfers = files::Transfers::default();
        let tasks = Tasks::default();
        let (routes, methods) = routes(&options, &transfers, &tasks);

        let (to_daemon, to_daemon_rx) = mpsc::channel::<BytesMessage>(64);
        let mut request = tonic::Request::new(ReceiverStream::new(to_daemon_rx));
        set_headers(request.metadata_mut(), &id, &options, &methods)?;
        let inbound = client
            .control()
            .session(request)
            .await
            .map_err(Error::call("Session"))?
            .into_inner();

        let cancel = CancellationToken::new();
        let (server_side, tunnel_side) = tokio::io::duplex(4 * CHUNK);
        let (tunnel_read, tunnel_write) = tokio::io::split(tunnel_side);
        tasks.spawn(pump_out(tunnel_read, to_daemon, cancel.clone()));
        tasks.spawn(pump_in(inbound, tunnel_write, cancel.clone()));

        let shutdown = cancel.clone();
        tasks.spawn(async move {
            // One connection, and then nothing: an incoming stream that ended would make the
            // server shut that connection down.
            let incoming = futures::stream::iter([Ok::<_, std::io::Error>(Tunnel(server_side))])
                .chain(futures::stream::pending());
            let _ = tonic::transport::Server::builder()
                // Exports stream into us: large windows keep BuildKit sending.
                .initial_connection_window_size(16 << 20)
                .initial_stream_window_size(4 << 20)
                .add_routes(routes)
                .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                .await;
        });
        Ok(Self {
            id,
            transfers,
            cancel,
            tasks,
        })
    }

    /// The id to put in solve requests and local sources.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The file transfers, in the order they ended, once none is running (waiting at most
    /// 30 s): a solve may return before our side of its export has finished writing.
    pub async fn transfers(&self) -> Vec<Transfer> {
        self.transfers
            .settled(std::time::Duration::from_secs(30))
            .await
    }

    /// Ends the session and waits for its server, tunnel and calls to stop.
    pub async fn close(self) {
        self.cancel.cancel();
        self.tasks.shutdown().await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.tasks.abort_all();
    }
}

/// The routes to serve and the method paths to announce for them.
fn routes(options: &SessionOptions, transfers: &Transfers, tasks: &Tasks) -> (Routes, Vec<String>) {
    let mut methods = Vec::new();
    let mut announce = |service: &str, names: &[&str]| {
        methods.extend(names.iter().map(|m| format!("/{service}/{m}")));
    };

    announce(health::NAME, health::METHODS);
    let mut routes = Routes::new(health::service());

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
                tasks: tasks.clone(),
            })
            .max_decoding_message_size(crate::MAX_MESSAGE_SIZE),
        );
    }
    if !options.exports.is_empty() {
        announce(FileSendServer::<FileSendService>::NAME, &["DiffCopy"]);
        routes = routes.add_service(
            FileSendServer::new(FileSendService {
                exports: options.exports.clone(),
                transfers: transfers.clone(),
                tasks: tasks.clone(),
            })
            .max_decoding_message_size(crate::MAX_MESSAGE_SIZE),
        );
    }
    if options.registry_auth {
        announce(AuthServer::<AuthService>::NAME, &["Credentials"]);
        routes = routes.add_service(AuthServer::new(
            AuthService::new(auth::docker_config_path()),
        ));
    }
    if let Some(agent) = &options.ssh_agent {
        announce(
            SshServer::<SshService>::NAME,
            &["CheckAgent", "ForwardAgent"],
        );
        routes = routes.add_service(SshServer::new(SshService {
            agent: agent.clone(),
            tasks: tasks.clone(),
        }));
    }
    (routes, methods)
}

fn set_headers(
    metadata: &mut MetadataMap,
    id: &str,
    options: &SessionOptions,
    methods: &[String],
) -> Result<(), Error> {
    let value = |text: &str| {
        AsciiMetadataValue::try_from(text).map_err(|e| {
            Error::internal(
                format!("{text:?} cannot be sent in a header"),
                Some(e.into()),
            )
        })
    };
    metadata.insert(HEADER_ID, value(id)?);
    metadata.insert(HEADER_NAME, value(&options.name)?);
    metadata.insert(HEADER_SHARED_KEY, value(&options.shared_key)?);
    for method in methods {
        metadata.append(HEADER_METHOD, value(method)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_announce_every_method() {
        let mut metadata = MetadataMap::new();
        let options = SessionOptions {
            name: "brewkit".into(),
            shared_key: "key".into(),
            ..SessionOptions::default()
        };
        let methods = vec!["/a.B/C".to_owned(), "/a.B/D".to_owned()];
        set_headers(&mut metadata, "id1", &options, &methods).unwrap();
        assert_eq!(metadata.get(HEADER_ID).unwrap(), "id1");
        let announced: Vec<_> = metadata
            .get_all(HEADER_METHOD)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(announced, methods);
    }

    #[test]
    fn routes_announce_what_is_served() {
        let options = SessionOptions {
            registry_auth: true,
            ssh_agent: Some("/tmp/agent.sock".into()),
            ..SessionOptions::default()
        };
        let (_, methods) = routes(&options, &Transfers::default(), &Tasks::default());
        for expected in [
            "/grpc.health.v1.Health/Check",
            "/moby.buildkit.secrets.v1.Secrets/GetSecret",
            "/moby.filesync.v1.Auth/Credentials",
            "/moby.sshforward.v1.SSH/ForwardAgent",
        ] {
            assert!(methods.iter().any(|m| m == expected), "{methods:?}");
        }
        let (_, bare) = routes(
            &SessionOptions::default(),
            &Transfers::default(),
            &Tasks::default(),
        );
        assert!(!bare.iter().any(|m| m.contains("SSH") || m.contains("Auth")));
    }
}
