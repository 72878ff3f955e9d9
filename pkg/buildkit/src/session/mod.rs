//! The session: a gRPC server of ours that BuildKit calls back through `Control.Session`, for the
//! files, secrets, ssh agent and registry credentials of this host.
//!
//! `Control.Session` is a bidirectional stream of byte messages. We tunnel an HTTP/2 connection
//! through it, with BuildKit as the client and our tonic server as the server. The methods we serve
//! are announced in the call's `X-Docker-Expose-Session-*` headers.

mod files;
mod services;

use std::{collections::BTreeMap, path::PathBuf, pin::Pin, task::Poll};

use futures::StreamExt;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream},
    sync::mpsc,
    task::JoinHandle,
};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{
    metadata::{AsciiMetadataValue, MetadataMap},
    transport::server::Connected,
};

use crate::{new_id, proto::moby::buildkit::v1::BytesMessage, Client, Error};

const HEADER_ID: &str = "x-docker-expose-session-uuid";
const HEADER_NAME: &str = "x-docker-expose-session-name";
const HEADER_SHARED_KEY: &str = "x-docker-expose-session-sharedkey";
const HEADER_METHOD: &str = "x-docker-expose-session-grpc-method";

/// Size of one tunnelled message, as BuildKit's own tunnel uses.
const CHUNK: usize = 32 * 1024;

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
    server: Option<JoinHandle<()>>,
}

impl Session {
    /// Opens the session on `client`'s connection and starts serving it.
    pub async fn start(client: &Client, options: SessionOptions) -> Result<Self, Error> {
        let id = new_id();
        let transfers = files::Transfers::default();
        let (routes, methods) = services::routes(&options, &transfers);

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
        tokio::spawn(pump_out(tunnel_read, to_daemon, cancel.clone()));
        tokio::spawn(pump_in(inbound, tunnel_write, cancel.clone()));

        let shutdown = cancel.clone();
        let server = tokio::spawn(async move {
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
            server: Some(server),
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

    /// Ends the session and waits for its server to stop.
    pub async fn close(mut self) {
        self.cancel.cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn set_headers(
    metadata: &mut MetadataMap,
    id: &str,
    options: &SessionOptions,
    methods: &[String],
) -> Result<(), Error> {
    let value = |text: &str| {
        AsciiMetadataValue::try_from(text)
            .map_err(|_| Error::Session(format!("{text:?} cannot be sent in a header")))
    };
    metadata.insert(HEADER_ID, value(id)?);
    metadata.insert(HEADER_NAME, value(&options.name)?);
    metadata.insert(HEADER_SHARED_KEY, value(&options.shared_key)?);
    for method in methods {
        metadata.append(HEADER_METHOD, value(method)?);
    }
    Ok(())
}

/// Tunnel → daemon: what our server writes goes out as byte messages.
async fn pump_out(
    mut tunnel: tokio::io::ReadHalf<DuplexStream>,
    to_daemon: mpsc::Sender<BytesMessage>,
    cancel: CancellationToken,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = tokio::select! {
            _ = cancel.cancelled() => break,
            read = tunnel.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
        };
        let message = BytesMessage {
            data: buf[..n].to_vec(),
        };
        if to_daemon.send(message).await.is_err() {
            break;
        }
    }
    // Dropping the sender ends our half of the stream.
    cancel.cancel();
}

/// Daemon → tunnel: byte messages are written to our server's connection.
async fn pump_in(
    mut inbound: tonic::Streaming<BytesMessage>,
    mut tunnel: tokio::io::WriteHalf<DuplexStream>,
    cancel: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            _ = cancel.cancelled() => break,
            message = inbound.message() => message,
        };
        match message {
            Ok(Some(message)) => {
                if tunnel.write_all(&message.data).await.is_err() {
                    break;
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    let _ = tunnel.shutdown().await;
    cancel.cancel();
}

/// The server's end of the tunnel, as a connection tonic can serve.
struct Tunnel(DuplexStream);

impl Connected for Tunnel {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Tunnel {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tunnel {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
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
}
