//! Reaching a BuildKit daemon: `unix://`, `tcp://` (optionally TLS) and `docker://` (Docker's
//! embedded BuildKit, reached by `POST /grpc` upgraded to h2c on the Docker API socket), and the
//! auto-detection order of docs/architecture.md ("Connecting").

mod context;
mod docker;
mod tls;

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use http::Uri;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

pub use docker::{DockerEndpoint, DockerHost};
pub use tls::TlsFiles;

use crate::Error;
use docker::{docker_grpc, parse_docker_host};
use tls::{Explained, TlsClient, TlsSettings, ALPN_H2, ALPN_HTTP1};

/// The environment variable naming the daemon, as with `buildctl`.
pub const BUILDKIT_HOST_ENV: &str = "BUILDKIT_HOST";
/// Docker's daemon address, as with the `docker` CLI.
pub const DOCKER_HOST_ENV: &str = "DOCKER_HOST";
const DEFAULT_BUILDKIT_SOCKET: &str = "/run/buildkit/buildkitd.sock";
pub(crate) const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// How long one candidate of auto-detection may take to answer.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a BuildKit daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// buildkitd's own socket.
    Unix(PathBuf),
    /// buildkitd on TCP, `host:port`.
    Tcp(String),
    /// Docker's embedded BuildKit, through the Docker API at this endpoint.
    Docker(DockerEndpoint),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp(host) => write!(f, "tcp://{host}"),
            Self::Docker(endpoint) => {
                write!(f, "docker://{}", endpoint.host)?;
                match &endpoint.context {
                    Some(context) => write!(f, " (Docker context \"{context}\")"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl Address {
    /// Parses `unix:///path`, `tcp://host:port`, `docker://` (Docker as the docker CLI finds it:
    /// `DOCKER_HOST`, `DOCKER_CONTEXT`, the current context, the default socket),
    /// `docker://unix:///path`, `docker:///path`, `docker://tcp://host:port` or
    /// `docker://ssh://[user@]host[:port]`.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let invalid = |why: &str| Error::InvalidAddress {
            address: text.to_owned(),
            reason: why.to_owned(),
        };
        if let Some(rest) = text.strip_prefix("docker://") {
            if rest.is_empty() {
                return context::resolve().map(Self::Docker);
            }
            let host = if rest.starts_with('/') {
                DockerHost::Unix(PathBuf::from(rest))
            } else {
                parse_docker_host(rest).ok_or_else(|| {
                    invalid(
                        "expected docker://, docker://unix:///path, docker://tcp://host:port \
                         or docker://ssh://[user@]host[:port]",
                    )
                })?
            };
            return Ok(Self::Docker(context::with_env_tls(host)));
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
    /// under `$XDG_RUNTIME_DIR`, and Docker as `docker://` finds it (which may fail: a context
    /// that does not exist).
    pub fn candidates() -> Vec<Result<Self, Error>> {
        let mut out = vec![Ok(Self::Unix(PathBuf::from(DEFAULT_BUILDKIT_SOCKET)))];
        if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
            out.push(Ok(Self::Unix(
                Path::new(&runtime).join("buildkit").join("buildkitd.sock"),
            )));
        }
        out.push(context::resolve().map(Self::Docker));
        out
    }

    /// Opens a gRPC channel to the daemon. Lazy transports may connect on first call. TLS
    /// options (`tls`) apply to `tcp://` and to Docker on TCP (where they win over
    /// `DOCKER_CERT_PATH` and the context's).
    pub async fn connect(&self, tls: &TlsFiles) -> Result<Channel, Error> {
        self.connect_diagnosed(tls)
            .await
            .map(|(channel, _)| channel)
    }

    /// [`Self::connect`], and what can tell later why a call failed.
    pub(crate) async fn connect_diagnosed(
        &self,
        tls: &TlsFiles,
    ) -> Result<(Channel, Diagnosis), Error> {
        let connect_error = |e: &dyn fmt::Display| Error::Connect {
            address: self.to_string(),
            reason: e.to_string(),
        };
        let flags = (!tls.is_empty()).then(|| TlsSettings {
            files: tls.clone(),
            skip_verify: false,
            origin: "--tlscacert, --tlscert, --tlskey".into(),
        });
        // Files are read before connecting: a missing one is bad input, not an unreachable daemon.
        let tls_client = match (self, flags) {
            (Self::Tcp(host), Some(flags)) => Some(TlsClient::new(&flags, host, ALPN_H2).await?),
            (
                Self::Docker(DockerEndpoint {
                    host: DockerHost::Tcp(host),
                    tls: from_env,
                    ..
                }),
                flags,
            ) => match (flags.as_ref(), from_env.as_ref()) {
                (Some(flags), Some(docker)) => {
                    // Each option given replaces its counterpart of DOCKER_CERT_PATH or the
                    // context; the others stay.
                    let files = TlsFiles {
                        ca: tls.ca.clone().or(docker.files.ca.clone()),
                        cert: tls.cert.clone().or(docker.files.cert.clone()),
                        key: tls.key.clone().or(docker.files.key.clone()),
                        server_name: tls.server_name.clone(),
                    };
                    let settings = TlsSettings {
                        files,
                        skip_verify: docker.skip_verify && tls.ca.is_none(),
                        origin: format!("{}, and {}", flags.origin, docker.origin),
                    };
                    Some(TlsClient::new(&settings, host, ALPN_HTTP1).await?)
                }
                (Some(settings), None) | (None, Some(settings)) => {
                    Some(TlsClient::new(settings, host, ALPN_HTTP1).await?)
                }
                (None, None) => None,
            },
            (_, Some(_)) => {
                return Err(Error::InvalidAddress {
                    address: self.to_string(),
                    reason: "TLS options only apply to tcp:// and docker://tcp:// addresses".into(),
                })
            }
            (_, None) => None,
        };
        // The authority is not used by unix sockets or Docker, but h2 needs one.
        let endpoint = match self {
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

        let diagnosis = Diagnosis(tls_client.clone());
        let channel = match (self.clone(), tls_client) {
            (Self::Tcp(_), None) => endpoint.connect().await,
            (Self::Tcp(host), Some(tls)) => {
                endpoint
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let (host, tls) = (host.clone(), tls.clone());
                        async move {
                            let stream = tokio::net::TcpStream::connect(&host).await?;
                            stream.set_nodelay(true)?;
                            let stream = tls.handshake(stream).await?;
                            Ok::<_, std::io::Error>(TokioIo::new(Explained::new(stream, tls)))
                        }
                    }))
                    .await
            }
            (Self::Unix(path), _) => {
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
            (Self::Docker(docker), tls) => {
                endpoint
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let (host, tls) = (docker.host.clone(), tls.clone());
                        async move { docker_grpc(&host, tls.as_ref()).await }
                    }))
                    .await
            }
        };
        match channel {
            Ok(channel) => Ok((channel, diagnosis)),
            Err(e) => Err(connect_error(&diagnosis.reason(&e))),
        }
    }
}

/// What the connection saw that a failed call's error may not tell.
#[derive(Clone, Default)]
pub(crate) struct Diagnosis(Option<TlsClient>);

impl Diagnosis {
    /// Why the connection failed, when its TLS knows better than the error: a server that
    /// refused the client certificate, or its lack (see [`TlsClient::refused`]).
    fn explain(&self) -> Option<String> {
        self.0.as_ref().and_then(TlsClient::refused)
    }

    /// Why `error` happened: the TLS failure in its sources (an untrusted certificate, a name
    /// mismatch), else what the connection saw, else the error with its sources.
    pub(crate) fn reason(&self, error: &(dyn std::error::Error + 'static)) -> String {
        tls::find_failure(error)
            .or_else(|| self.explain())
            .unwrap_or_else(|| ErrorChain(error).to_string())
    }
}

/// Why a call failed, for a probe: a status that only says "transport error" has the cause in
/// its sources.
pub(crate) fn call_reason(error: &Error, diagnosis: &Diagnosis) -> String {
    let source = match error {
        Error::Call { status, .. } => std::error::Error::source(status),
        _ => None,
    };
    match source {
        Some(source) => diagnosis.reason(source),
        None => diagnosis.explain().unwrap_or_else(|| error.to_string()),
    }
}

/// `host:port` (a trailing `/` dropped) when it is one, as a URI's authority: a malformed one
/// (`[::1`, `h:x`) is bad input, found here rather than as a connection that fails.
pub(crate) fn host_port(text: &str) -> Option<String> {
    let text = text.trim_end_matches('/');
    let authority: http::uri::Authority = text.parse().ok()?;
    let valid = authority.as_str() == text
        && !authority.host().is_empty()
        && !text.contains('@')
        && authority.port_u16().is_some();
    valid.then(|| text.to_owned())
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

    /// A Docker address as parsed where no `DOCKER_TLS*` variable is set.
    fn docker(host: DockerHost) -> Address {
        Address::Docker(DockerEndpoint::new(host))
    }

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
            docker(DockerHost::Unix("/tmp/d.sock".into()))
        );
        assert_eq!(
            Address::parse("docker:///tmp/d.sock").unwrap(),
            docker(DockerHost::Unix("/tmp/d.sock".into()))
        );
        assert_eq!(
            Address::parse("docker://tcp://10.0.0.1:2375").unwrap(),
            docker(DockerHost::Tcp("10.0.0.1:2375".into()))
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
            "docker://ssh://me@h:22",
        ] {
            assert_eq!(Address::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn candidates_end_with_docker() {
        let candidates = Address::candidates();
        assert_eq!(
            candidates[0].as_ref().unwrap(),
            &Address::Unix(DEFAULT_BUILDKIT_SOCKET.into())
        );
        assert!(matches!(
            candidates.last(),
            Some(Ok(Address::Docker(_)) | Err(_))
        ));
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
