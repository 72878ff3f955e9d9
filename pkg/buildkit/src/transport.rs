//! Reaching a BuildKit daemon: `unix://`, `tcp://` (optionally TLS) and `docker://` (Docker's
//! embedded BuildKit, reached by `POST /grpc` upgraded to h2c on the Docker API socket), and the
//! auto-detection order of docs/architecture.md ("Connecting").

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use http::Uri;
use hyper_util::rt::TokioIo;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::Error;

/// The environment variable naming the daemon, as with `buildctl`.
pub const BUILDKIT_HOST_ENV: &str = "BUILDKIT_HOST";
/// Docker's daemon address, as with the `docker` CLI.
pub const DOCKER_HOST_ENV: &str = "DOCKER_HOST";
const DEFAULT_BUILDKIT_SOCKET: &str = "/run/buildkit/buildkitd.sock";
const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// How long one candidate of auto-detection may take to answer.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a BuildKit daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// buildkitd's own socket.
    Unix(PathBuf),
    /// buildkitd on TCP, `host:port`.
    Tcp(String),
    /// Docker's embedded BuildKit, through the Docker API at this address.
    Docker(DockerHost),
}

/// Where the Docker API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerHost {
    Unix(PathBuf),
    Tcp(String),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp(host) => write!(f, "tcp://{host}"),
            Self::Docker(DockerHost::Unix(path)) => write!(f, "docker://unix://{}", path.display()),
            Self::Docker(DockerHost::Tcp(host)) => write!(f, "docker://tcp://{host}"),
        }
    }
}

/// Client certificates for `tcp://` with TLS.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }
}

impl Address {
    /// Parses `unix:///path`, `tcp://host:port`, `docker://` (the `DOCKER_HOST` or the default
    /// Docker socket), `docker://unix:///path`, `docker:///path` or `docker://tcp://host:port`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::InvalidAddress {
            address: text.to_owned(),
            reason: why.to_owned(),
        };
        if let Some(rest) = text.strip_prefix("docker://") {
            let host = if rest.is_empty() {
                docker_host_from_env()
            } else if rest.starts_with('/') {
                DockerHost::Unix(PathBuf::from(rest))
            } else {
                parse_docker_host(rest).ok_or_else(|| {
                    invalid("expected docker://, docker://unix:///path or docker://tcp://host:port")
                })?
            };
            return Ok(Self::Docker(host));
        }
        if let Some(path) = text.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(invalid("the socket path is empty"));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if let Some(host) = text.strip_prefix("tcp://") {
            return host_port(host)
                .map(Self::Tcp)
                .ok_or_else(|| invalid("expected tcp://host:port"));
        }
        Err(invalid("supported schemes: unix://, tcp://, docker://"))
    }

    /// The candidates of auto-detection, in order: buildkitd's system socket, its rootless socket
    /// under `$XDG_RUNTIME_DIR`, and Docker (`DOCKER_HOST` or the default socket).
    pub fn candidates() -> Vec<Self> {
        let mut out = vec![Self::Unix(PathBuf::from(DEFAULT_BUILDKIT_SOCKET))];
        if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
            out.push(Self::Unix(
                Path::new(&runtime).join("buildkit").join("buildkitd.sock"),
            ));
        }
        out.push(Self::Docker(docker_host_from_env()));
        out
    }

    /// Opens a gRPC channel to the daemon. Lazy transports may connect on first call.
    pub async fn connect(&self, tls: &TlsFiles) -> Result<Channel, Error> {
        let connect_error = |e: &dyn fmt::Display| Error::Connect {
            address: self.to_string(),
            reason: e.to_string(),
        };
        if !tls.is_empty() && !matches!(self, Self::Tcp(_)) {
            return Err(Error::InvalidAddress {
                address: self.to_string(),
                reason: "TLS options only apply to tcp:// addresses".into(),
            });
        }
        // The authority is not used by unix sockets or Docker, but h2 needs one.
        let endpoint = match self {
            Self::Tcp(host) if !tls.is_empty() => {
                let tls_config = tls_config(host, tls).await.map_err(|e| connect_error(&e))?;
                Endpoint::from_shared(format!("https://{host}"))
                    .map_err(|e| connect_error(&e))?
                    .tls_config(tls_config)
                    .map_err(|e| connect_error(&e))?
            }
            Self::Tcp(host) => {
                Endpoint::from_shared(format!("http://{host}")).map_err(|e| connect_error(&e))?
            }
            _ => Endpoint::from_static("http://buildkitd"),
        }
        .connect_timeout(PROBE_TIMEOUT)
        .tcp_nodelay(true)
        // Large LLB definitions and file transfers go through; the defaults are 64 KiB windows.
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(16 << 20));

        let channel = match self.clone() {
            Self::Tcp(_) => endpoint.connect().await,
            Self::Unix(path) => {
                endpoint
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(&path).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(stream))
                        }
                    }))
                    .await
            }
            Self::Docker(host) => {
                endpoint
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let host = host.clone();
                        async move { docker_grpc(&host).await }
                    }))
                    .await
            }
        };
        channel.map_err(|e| connect_error(&ErrorChain(&e)))
    }
}

fn parse_docker_host(text: &str) -> Option<DockerHost> {
    if let Some(path) = text.strip_prefix("unix://") {
        return (!path.is_empty()).then(|| DockerHost::Unix(PathBuf::from(path)));
    }
    if let Some(host) = text.strip_prefix("tcp://") {
        return host_port(host).map(DockerHost::Tcp);
    }
    None
}

/// `host:port` (a trailing `/` dropped) when it is one, as a URI's authority: a malformed one
/// (`[::1`, `h:x`) is bad input, found here rather than as a connection that fails.
fn host_port(text: &str) -> Option<String> {
    let text = text.trim_end_matches('/');
    let authority: http::uri::Authority = text.parse().ok()?;
    let valid = authority.as_str() == text
        && !authority.host().is_empty()
        && !text.contains('@')
        && authority.port_u16().is_some();
    valid.then(|| text.to_owned())
}

fn docker_host_from_env() -> DockerHost {
    std::env::var(DOCKER_HOST_ENV)
        .ok()
        .and_then(|v| parse_docker_host(&v))
        .unwrap_or_else(|| DockerHost::Unix(PathBuf::from(DEFAULT_DOCKER_SOCKET)))
}

async fn tls_config(host: &str, tls: &TlsFiles) -> Result<ClientTlsConfig, String> {
    let read = |path: &PathBuf| {
        let path = path.clone();
        async move {
            tokio::fs::read(&path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))
        }
    };
    let domain = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let mut config = ClientTlsConfig::new().domain_name(domain);
    if let Some(ca) = &tls.ca {
        config = config.ca_certificate(Certificate::from_pem(read(ca).await?));
    }
    match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            config = config.identity(Identity::from_pem(read(cert).await?, read(key).await?));
        }
        (None, None) => {}
        _ => return Err("--tlscert and --tlskey go together".into()),
    }
    Ok(config)
}

/// Opens Docker's gRPC endpoint: `POST /grpc` with `Upgrade: h2c` on the Docker API, and after
/// `101 Switching Protocols` the connection carries BuildKit's HTTP/2 directly.
async fn docker_grpc(host: &DockerHost) -> std::io::Result<hyper::upgrade::Upgraded> {
    match host {
        DockerHost::Unix(path) => upgrade(tokio::net::UnixStream::connect(path).await?).await,
        DockerHost::Tcp(addr) => upgrade(tokio::net::TcpStream::connect(addr).await?).await,
    }
}

async fn upgrade<S>(stream: S) -> std::io::Result<hyper::upgrade::Upgraded>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
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
        return Err(std::io::Error::other(format!(
            "Docker answered {} to POST /grpc (is it Docker 20.10 or newer, with BuildKit?)",
            response.status()
        )));
    }
    hyper::upgrade::on(response).await.map_err(io_error)
}

/// Displays an error with its sources, which tonic keeps out of its own message.
struct ErrorChain<'e>(&'e (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        let mut source = self.0.source();
        while let Some(error) = source {
            let more = error.to_string();
            // Some errors repeat their source in their own message.
            if !text.contains(&more) {
                text.push_str(": ");
                text.push_str(&more);
            }
            source = error.source();
        }
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        assert_eq!(
            Address::parse("unix:///run/buildkit/buildkitd.sock").unwrap(),
            Address::Unix("/run/buildkit/buildkitd.sock".into())
        );
        assert_eq!(
            Address::parse("tcp://127.0.0.1:1234").unwrap(),
            Address::Tcp("127.0.0.1:1234".into())
        );
        assert_eq!(
            Address::parse("docker://unix:///tmp/d.sock").unwrap(),
            Address::Docker(DockerHost::Unix("/tmp/d.sock".into()))
        );
        assert_eq!(
            Address::parse("docker:///tmp/d.sock").unwrap(),
            Address::Docker(DockerHost::Unix("/tmp/d.sock".into()))
        );
        assert_eq!(
            Address::parse("docker://tcp://10.0.0.1:2375").unwrap(),
            Address::Docker(DockerHost::Tcp("10.0.0.1:2375".into()))
        );
        assert_eq!(
            Address::parse("tcp://[::1]:1234/").unwrap(),
            Address::Tcp("[::1]:1234".into())
        );
        assert_eq!(
            Address::parse("tcp://buildkitd.example:1234").unwrap(),
            Address::Tcp("buildkitd.example:1234".into())
        );
        assert!(matches!(
            Address::parse("docker://").unwrap(),
            Address::Docker(_)
        ));
    }

    #[test]
    fn refuses_unknown_schemes_and_incomplete_addresses() {
        for bad in [
            "http://x",
            "unix://",
            "tcp://host",
            "tcp://[::1",
            "tcp://[::1]",
            "tcp://::1:1234",
            "tcp://h:port",
            "tcp://h:",
            "tcp://:1234",
            "tcp://h:99999",
            "tcp://u@h:1",
            "tcp://h:1/path",
            "docker://tcp://[::1",
            "docker://tcp://h:x",
            "docker://ftp://x",
            "/tmp/sock",
        ] {
            let err = Address::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn addresses_display_as_they_parse() {
        for text in [
            "unix:///a.sock",
            "tcp://h:1",
            "docker://unix:///d.sock",
            "docker://tcp://h:2",
        ] {
            assert_eq!(Address::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn candidates_end_with_docker() {
        let candidates = Address::candidates();
        assert_eq!(candidates[0], Address::Unix(DEFAULT_BUILDKIT_SOCKET.into()));
        assert!(matches!(candidates.last(), Some(Address::Docker(_))));
    }

    #[tokio::test]
    async fn tls_options_need_tcp() {
        let tls = TlsFiles {
            ca: Some("/ca.pem".into()),
            ..TlsFiles::default()
        };
        let err = Address::Unix("/x.sock".into())
            .connect(&tls)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("TLS"), "{err}");
    }
}
