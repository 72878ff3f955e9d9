//! Docker's embedded BuildKit: `POST /grpc` with `Upgrade: h2c` on the Docker API, over a unix
//! socket, TCP (with TLS as the docker CLI configures it) or `ssh … docker system dial-stdio`.

use std::{
    path::PathBuf,
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::tls::{Explained, TlsClient, TlsSettings};

/// Where the Docker API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerHost {
    /// `unix:///path`: the Docker API socket at this path.
    Unix(PathBuf),
    /// `tcp://host:port`: the Docker API on TCP, `host:port`; TLS only if the endpoint has it.
    Tcp(String),
    /// `ssh://[user@]host[:port]`: reached through `ssh … docker system dial-stdio`.
    Ssh {
        /// Passed as `ssh -l`; `None` leaves it to ssh (its config, then the local user).
        user: Option<String>,
        /// The host as written, which may be an alias of `~/.ssh/config`.
        host: String,
        /// Passed as `ssh -p`; `None` leaves it to ssh (its config, then 22).
        port: Option<u16>,
    },
}

/// A Docker API endpoint: its host, TLS for a TCP host, and the Docker context it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEndpoint {
    /// Where the Docker API listens.
    pub host: DockerHost,
    /// `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH` or the context's TLS material (TCP hosts only).
    pub(crate) tls: Option<TlsSettings>,
    /// The Docker context named by `DOCKER_CONTEXT` or `currentContext`, if any.
    pub context: Option<String>,
}

impl DockerEndpoint {
    /// A bare host: no TLS, no context.
    pub fn new(host: DockerHost) -> Self {
        Self {
            host,
            tls: None,
            context: None,
        }
    }
}

impl std::fmt::Display for DockerHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp(host) => write!(f, "tcp://{host}"),
            Self::Ssh { user, host, port } => {
                f.write_str("ssh://")?;
                if let Some(user) = user {
                    write!(f, "{user}@")?;
                }
                f.write_str(host)?;
                if let Some(port) = port {
                    write!(f, ":{port}")?;
                }
                Ok(())
            }
        }
    }
}

/// `unix:///path`, `tcp://host:port` or `ssh://[user@]host[:port]`, as in `DOCKER_HOST`.
pub(crate) fn parse_docker_host(text: &str) -> Option<DockerHost> {
    if let Some(path) = text.strip_prefix("unix://") {
        return (!path.is_empty()).then(|| DockerHost::Unix(PathBuf::from(path)));
    }
    if let Some(host) = text.strip_prefix("tcp://") {
        return super::host_port(host).map(DockerHost::Tcp);
    }
    if let Some(rest) = text.strip_prefix("ssh://") {
        let rest = rest.trim_end_matches('/');
        let authority: http::uri::Authority = rest.parse().ok()?;
        if authority.as_str() != rest || authority.host().is_empty() {
            return None;
        }
        let user = rest
            .rsplit_once('@')
            .map(|(user, _)| user.to_owned())
            .filter(|u| !u.is_empty());
        let port = match authority.as_str().rsplit_once(':') {
            Some((_, p)) if !p.ends_with(']') => Some(p.parse().ok()?),
            _ => None,
        };
        return Some(DockerHost::Ssh {
            user,
            host: authority.host().to_owned(),
            port,
        });
    }
    None
}

/// Opens Docker's gRPC endpoint on `host` (TLS with `tls` on TCP).
pub(crate) async fn docker_grpc(
    host: &DockerHost,
    tls: Option<&TlsClient>,
) -> std::io::Result<hyper::upgrade::Upgraded> {
    match (host, tls) {
        (DockerHost::Unix(path), _) => upgrade(tokio::net::UnixStream::connect(path).await?).await,
        (DockerHost::Tcp(addr), None) => upgrade(tokio::net::TcpStream::connect(addr).await?).await,
        (DockerHost::Tcp(addr), Some(tls)) => {
            let stream = tls
                .handshake(tokio::net::TcpStream::connect(addr).await?)
                .await?;
            upgrade(Explained::new(stream, tls.clone())).await
        }
        (DockerHost::Ssh { user, host, port }, _) => ssh_grpc(user.as_deref(), host, *port).await,
    }
}

/// `ssh [-l user] [-p port] -- host docker system dial-stdio`, as the docker CLI runs it; its
/// stdin and stdout carry the Docker API. A failure tells ssh's own stderr.
async fn ssh_grpc(
    user: Option<&str>,
    host: &str,
    port: Option<u16>,
) -> std::io::Result<hyper::upgrade::Upgraded> {
    let mut command = tokio::process::Command::new("ssh");
    if let Some(user) = user {
        command.args(["-l", user]);
    }
    if let Some(port) = port {
        command.args(["-p", &port.to_string()]);
    }
    command
        .args(["--", host, "docker", "system", "dial-stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| {
        std::io::Error::other(format!("cannot run ssh: {e} (install openssh-client)"))
    })?;
    let (Some(stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("ssh without pipes"));
    };
    // Collected as it comes, so that a full pipe never stalls ssh, and told if the upgrade fails.
    let said = Arc::new(Mutex::new(Vec::new()));
    let reader = tokio::spawn({
        let said = said.clone();
        async move {
            let mut buffer = [0; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buffer).await {
                said.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&buffer[..n]);
            }
        }
    });
    // The child lives as long as the connection: it ends when its stdin closes.
    let exited = tokio::spawn(async move { child.wait().await });
    match upgrade(tokio::io::join(stdout, stdin)).await {
        Ok(upgraded) => Ok(upgraded),
        Err(e) => {
            let _ = tokio::time::timeout(Duration::from_secs(5), exited).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
            let said = said.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let said = String::from_utf8_lossy(&said).trim().to_owned();
            Err(std::io::Error::other(if said.is_empty() {
                format!("ssh {host} docker system dial-stdio: {e}")
            } else {
                format!("ssh {host} docker system dial-stdio: {said}")
            }))
        }
    }
}

/// `POST /grpc` with `Upgrade: h2c`: after `101 Switching Protocols` the connection carries
/// BuildKit's HTTP/2 directly.
async fn upgrade<S>(stream: S) -> std::io::Result<hyper::upgrade::Upgraded>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io_error = |e: hyper::Error| std::io::Error::other(e);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io_error)?;
    tokio::spawn(async move {
        // Ends when the upgraded connection is handed over or closed.
        let _ = connection.with_upgrades().await;
    });
    let request = http::Request::post("/grpc")
        .header(http::header::HOST, "docker")
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "h2c")
        .body(String::new())
        .map_err(std::io::Error::other)?;
    let response = sender.send_request(request).await.map_err(io_error)?;
    if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status();
        let body = body_start(response.into_body()).await;
        return Err(std::io::Error::other(refusal(status, &body)));
    }
    hyper::upgrade::on(response).await.map_err(io_error)
}

/// How much of a refusal's body goes into the message: room for an error text, not for a page.
const REFUSAL_BODY_LIMIT: usize = 1024;
/// How long the body of a refusal may take: a server that keeps the connection open without
/// sending more must not hold the connection attempt.
const REFUSAL_BODY_TIMEOUT: Duration = Duration::from_secs(2);

/// The first [`REFUSAL_BODY_LIMIT`] bytes of `body`, or what came of them before it ended,
/// failed or [`REFUSAL_BODY_TIMEOUT`] passed (a server that closes the connection may reset it
/// after the answer: what arrived still counts).
async fn body_start(mut body: hyper::body::Incoming) -> Vec<u8> {
    use hyper::body::Body;
    let mut bytes = Vec::new();
    let read = async {
        while bytes.len() < REFUSAL_BODY_LIMIT {
            match std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        bytes.extend_from_slice(&data);
                    }
                }
                Some(Err(_)) | None => break,
            }
        }
    };
    let _ = tokio::time::timeout(REFUSAL_BODY_TIMEOUT, read).await;
    bytes.truncate(REFUSAL_BODY_LIMIT);
    bytes
}

/// What Go's net/http writes to a client that speaks plain HTTP to its TLS listener.
const PLAIN_HTTP_TO_TLS: &str = "Client sent an HTTP request to an HTTPS server";

/// Why Docker did not upgrade `POST /grpc`: its `status`, what its `body` says (the `message` of
/// a Docker API error, else the text on one line), and what to do about it.
fn refusal(status: http::StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ApiError {
        message: String,
    }
    let said = match serde_json::from_slice::<ApiError>(body) {
        Ok(error) => error.message,
        Err(_) => String::from_utf8_lossy(body)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    };
    let mut message = format!("Docker answered {status} to POST /grpc");
    if !said.is_empty() {
        message.push_str(&format!(": {said}"));
    }
    if said.contains(PLAIN_HTTP_TO_TLS) {
        message.push_str(
            " (this daemon wants TLS: set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the \
             directory of ca.pem, cert.pem and key.pem, or pass --tlscacert, --tlscert and \
             --tlskey, or use a Docker context with TLS material)",
        );
    } else {
        message.push_str(" (is it Docker 20.10 or newer, with BuildKit?)");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hosts() {
        assert_eq!(
            parse_docker_host("ssh://me@build.example:2222"),
            Some(DockerHost::Ssh {
                user: Some("me".into()),
                host: "build.example".into(),
                port: Some(2222)
            })
        );
        assert_eq!(
            parse_docker_host("ssh://build.example"),
            Some(DockerHost::Ssh {
                user: None,
                host: "build.example".into(),
                port: None
            })
        );
        for text in ["ssh://me@h:22", "ssh://h", "tcp://h:1", "unix:///d.sock"] {
            assert_eq!(parse_docker_host(text).unwrap().to_string(), text);
        }
        for bad in ["ssh://", "ssh://h:x", "ssh://h/path", "ftp://h"] {
            assert_eq!(parse_docker_host(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_refused_upgrade_says_what_the_server_said() {
        let bad_request = http::StatusCode::BAD_REQUEST;
        // Go's answer to plain HTTP on a TLS listener, as dockerd --tlsverify sends it.
        let tls = refusal(
            bad_request,
            b"Client sent an HTTP request to an HTTPS server.\n",
        );
        assert!(
            tls.starts_with(
                "Docker answered 400 Bad Request to POST /grpc: \
                 Client sent an HTTP request to an HTTPS server. (this daemon wants TLS: \
                 set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH"
            ),
            "{tls}"
        );
        assert!(
            tls.contains("--tlscacert") && tls.contains("Docker context"),
            "{tls}"
        );
        assert!(!tls.contains("20.10"), "{tls}");
        // A Docker API error: its message, on one line, with the hint about Docker's version.
        assert_eq!(
            refusal(
                http::StatusCode::NOT_FOUND,
                br#"{"message":"page not found"}"#
            ),
            "Docker answered 404 Not Found to POST /grpc: page not found \
             (is it Docker 20.10 or newer, with BuildKit?)"
        );
        assert_eq!(
            refusal(bad_request, b"  bad\r\n  request\n"),
            "Docker answered 400 Bad Request to POST /grpc: bad request \
             (is it Docker 20.10 or newer, with BuildKit?)"
        );
        // No body: the message as it always was.
        assert_eq!(
            refusal(bad_request, b""),
            "Docker answered 400 Bad Request to POST /grpc \
             (is it Docker 20.10 or newer, with BuildKit?)"
        );
    }
}
