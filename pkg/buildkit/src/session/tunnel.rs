//! The tunnel: an HTTP/2 connection carried inside `Control.Session`'s stream of byte messages,
//! with BuildKit as the client and our server as the server.

use std::{pin::Pin, task::Poll};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream},
    sync::mpsc,
};
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

use crate::proto::moby::buildkit::v1::BytesMessage;

/// Size of one tunnelled message, as BuildKit's own tunnel uses.
pub(super) const CHUNK: usize = 32 * 1024;

/// Tunnel → daemon: what our server writes goes out as byte messages.
pub(super) async fn pump_out(
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
pub(super) async fn pump_in(
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
pub(super) struct Tunnel(pub(super) DuplexStream);

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
