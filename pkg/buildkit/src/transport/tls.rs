//! TLS for `tcp://` daemons and for Docker API hosts on TCP: the client configuration built from
//! PEM files, the handshake, and failures told as their cause and the file to check (rustls'
//! own errors are terse, and tonic hides them behind "transport error").

use std::{
    fmt,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};
use tokio_rustls::{
    client::TlsStream,
    rustls::{
        self,
        client::{
            danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
            ResolvesClientCert,
        },
        pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, ServerName, UnixTime},
        sign::CertifiedKey,
        AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore,
        SignatureScheme,
    },
    TlsConnector,
};

use crate::Error;

/// The system's CA bundle (Debian's ca-certificates), trusted when no CA file is given, as Go
/// clients (buildctl) trust the system's roots.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// ALPN for gRPC: HTTP/2. Servers that negotiate no protocol (older ones) are still spoken
/// HTTP/2 to, as Go's gRPC client does.
pub(crate) const ALPN_H2: &[u8] = b"h2";
/// ALPN for the Docker API: `POST /grpc` is HTTP/1.1 (the upgrade to h2c follows); a Go server
/// offered `h2` would pick it and never see the upgrade.
pub(crate) const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Certificates for TLS: `--tlscacert`, `--tlscert`, `--tlskey` and `--tlsservername`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signed the server's certificate (else the system's CAs).
    pub ca: Option<PathBuf>,
    /// The client certificate, for servers that require one (mutual TLS).
    pub cert: Option<PathBuf>,
    /// The client certificate's key.
    pub key: Option<PathBuf>,
    /// The name the server's certificate must hold, instead of the address's host.
    pub server_name: Option<String>,
}

impl TlsFiles {
    /// Whether no TLS option was given (plain TCP).
    pub fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none() && self.server_name.is_none()
    }
}

/// How to speak TLS to one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    pub files: TlsFiles,
    /// Trust any certificate (a Docker context's `SkipTLSVerify`, `DOCKER_TLS` without
    /// `DOCKER_TLS_VERIFY`).
    pub skip_verify: bool,
    /// Where the files came from, for messages: `--tlscacert`, `DOCKER_CERT_PATH`, a context.
    pub origin: String,
}

/// A TLS failure told for people: its cause and what to check. Found in an error's source
/// chain by [`find_failure`], wherever hyper and tonic wrapped it.
#[derive(Debug)]
pub(crate) struct TlsFailure(pub String);

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsFailure {}

/// What every [`TlsFailure`] starts with: h2 keeps only the text of an I/O error (its kind and
/// message), so a failure that went through it is known by this.
const FAILURE_PREFIX: &str = "TLS handshake failed";

/// The explanation of the [`TlsFailure`] in `error`'s chain, if any. `io::Error::source` skips
/// the error it wraps, so wrapped ones are looked into.
pub(crate) fn find_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(failure) = error.downcast_ref::<TlsFailure>() {
            return Some(failure.0.clone());
        }
        if let Some(inner) = error
            .downcast_ref::<std::io::Error>()
            .and_then(|e| e.get_ref())
        {
            if let Some(failure) = find_failure(inner) {
                return Some(failure);
            }
            let text = inner.to_string();
            if text.starts_with(FAILURE_PREFIX) {
                return Some(text);
            }
        }
        next = error.source();
    }
    None
}

/// A TLS client for one server: the configuration and the name its certificate must hold.
#[derive(Clone)]
pub(crate) struct TlsClient {
    connector: TlsConnector,
    /// What the connections saw, for [`Self::refused`].
    pub seen: Seen,
    name: ServerName<'static>,
    settings: TlsSettings,
}

impl TlsClient {
    /// Reads the files of `settings` for a server at `host` (`host:port`), offering `alpn`.
    /// Unreadable or malformed files are bad input ([`Error::TlsFile`]).
    pub(super) async fn new(
        settings: &TlsSettings,
        host: &str,
        alpn: &[u8],
    ) -> Result<Self, Error> {
        let files = &settings.files;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::InvalidAddress {
                address: host.to_owned(),
                reason: format!("TLS: {e}"),
            })?;
        let builder = if settings.skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerifier(provider.clone())))
        } else {
            let mut roots = RootCertStore::empty();
            match &files.ca {
                Some(ca) => {
                    for cert in read_certs(ca).await? {
                        roots.add(cert).map_err(|e| file_error(ca, &e))?;
                    }
                }
                None => {
                    // Without a bundle, nothing is trusted: the handshake says so.
                    if let Ok(certs) = read_certs(Path::new(SYSTEM_CA_BUNDLE)).await {
                        roots.add_parsable_certificates(certs);
                    }
                }
            }
            builder.with_root_certificates(roots)
        };
        let key = match (&files.cert, &files.key) {
            (Some(cert), Some(key)) => {
                let chain = read_certs(cert).await?;
                let pem = read(key).await?;
                let key_der = PrivateKeyDer::from_pem_slice(&pem)
                    .map_err(|e| file_error(key, &format!("no private key in it ({e})")))?;
                let certified = CertifiedKey::from_der(chain, key_der, &provider).map_err(|e| {
                    file_error(key, &format!("does not suit {}: {e}", cert.display()))
                })?;
                Some(Arc::new(certified))
            }
            (None, None) => None,
            _ => {
                return Err(Error::TlsFile {
                    path: files.cert.clone().or(files.key.clone()).unwrap_or_default(),
                    reason: "a client certificate and its key go together (--tlscert and --tlskey)"
                        .into(),
                })
            }
        };
        let seen = Seen::default();
        let mut config = builder.with_client_cert_resolver(Arc::new(ClientCert {
            key,
            asked: seen.asked.clone(),
        }));
        config.alpn_protocols = vec![alpn.to_vec()];
        let name = files
            .server_name
            .clone()
            .unwrap_or_else(|| host_name(host).to_owned());
        let name = ServerName::try_from(name.clone()).map_err(|e| Error::InvalidAddress {
            address: host.to_owned(),
            reason: format!("\"{name}\" is not a TLS server name: {e}"),
        })?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            seen,
            name,
            settings: settings.clone(),
        })
    }

    /// Why a connection failed, when the server asked for a client certificate and closed
    /// before it sent anything: it refused the certificate, or the lack of one. With TLS 1.3
    /// the server's alert comes after the handshake and may be lost to a write that fails
    /// first (hyper then reports a cancelled request, or a broken pipe).
    pub(super) fn refused(&self) -> Option<String> {
        let refused =
            self.seen.asked.load(Ordering::Relaxed) && !self.seen.answered.load(Ordering::Relaxed);
        refused.then(|| match &self.settings.files.cert {
            None => format!(
                "{FAILURE_PREFIX}: the server requires a client certificate and none was given; \
                 give one ({})",
                self.settings.origin
            ),
            Some(cert) => format!(
                "{FAILURE_PREFIX}: the server asked for a client certificate and closed the \
                 connection without an answer: it refused {}; check that a CA the server \
                 trusts signed it",
                cert.display()
            ),
        })
    }

    /// The TLS handshake on `stream`; a failure is a [`TlsFailure`] in an `io::Error`.
    pub(super) async fn handshake(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        self.connector
            .connect(self.name.clone(), stream)
            .await
            .map_err(|e| std::io::Error::other(TlsFailure(self.explain(&e))))
    }

    /// The cause of a failed handshake (or of an alert right after it: a server that requires a
    /// client certificate tells so once TLS 1.3's handshake is over), and the file to check.
    pub(super) fn explain(&self, error: &std::io::Error) -> String {
        let files = &self.settings.files;
        let origin = &self.settings.origin;
        let ca = files.ca.as_ref().map_or_else(
            || format!("none was given ({origin}), so only the system's CAs are trusted"),
            |p| p.display().to_string(),
        );
        let Some(tls) = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        else {
            return self
                .refused()
                .unwrap_or_else(|| format!("{FAILURE_PREFIX}: {error}"));
        };
        let name = match &self.name {
            ServerName::DnsName(name) => name.as_ref().to_owned(),
            ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
            other => format!("{other:?}"),
        };
        match tls {
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "{FAILURE_PREFIX}: the server's certificate is not valid for the name \"{name}\" \
                 (certificate name mismatch); check the names in the server's certificate, or give \
                 the name it holds with --tlsservername"
            ),
            rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::BadSignature,
            ) => format!(
                "{FAILURE_PREFIX}: the server's certificate is not signed by a trusted CA \
                 (certificate signed by unknown authority); check the CA certificate: {ca}"
            ),
            rustls::Error::InvalidCertificate(
                e @ (CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. }),
            ) => format!(
                "{FAILURE_PREFIX}: the server's certificate is out of its validity period ({e:?}); \
                 check the server's certificate and this machine's clock"
            ),
            rustls::Error::InvalidCertificate(e) => format!(
                "{FAILURE_PREFIX}: the server's certificate is refused ({e:?}); check the CA \
                 certificate: {ca}"
            ),
            rustls::Error::AlertReceived(
                alert @ (AlertDescription::CertificateRequired
                | AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::HandshakeFailure
                | AlertDescription::CertificateUnknown),
            ) => match &files.cert {
                None => format!(
                    "{FAILURE_PREFIX}: the server requires a client certificate and none was \
                     given (TLS alert {alert:?}); give one ({origin})"
                ),
                Some(cert) => format!(
                    "{FAILURE_PREFIX}: the server refused the client certificate (TLS alert \
                     {alert:?}); check that {} is signed by a CA the server trusts",
                    cert.display()
                ),
            },
            rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
                format!("{FAILURE_PREFIX}: {tls} (does the server speak TLS on this port?)")
            }
            other => format!("{FAILURE_PREFIX}: {other}"),
        }
    }
}

/// The host of `host:port`, without an IPv6 address's brackets (an IP address is checked
/// against the certificate's IP addresses, as Go does).
fn host_name(host: &str) -> &str {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    name.strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name)
}

fn file_error(path: &Path, reason: &dyn fmt::Display) -> Error {
    Error::TlsFile {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

async fn read(path: &Path) -> Result<Vec<u8>, Error> {
    tokio::fs::read(path)
        .await
        .map_err(|e| file_error(path, &e))
}

async fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = read(path).await?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, &format!("not a PEM certificate ({e})")))?;
    if certs.is_empty() {
        return Err(file_error(path, &"no PEM certificate in it"));
    }
    Ok(certs)
}

/// A TLS stream whose errors after the handshake are explained too: with TLS 1.3 a server that
/// wants a client certificate says so only once the client has finished its handshake.
pub(crate) struct Explained<S> {
    inner: S,
    tls: TlsClient,
}

impl<S> Explained<S> {
    pub(crate) fn new(inner: S, tls: TlsClient) -> Self {
        Self { inner, tls }
    }

    fn explain(&self, error: std::io::Error) -> std::io::Error {
        if error.get_ref().is_some_and(|e| e.is::<rustls::Error>()) {
            std::io::Error::other(TlsFailure(self.tls.explain(&error)))
        } else {
            error
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Explained<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.explain(e))),
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                self.tls.seen.answered.store(true, Ordering::Relaxed);
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Explained<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.explain(e))),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(Err(e)) => Poll::Ready(Err(self.explain(e))),
            other => other,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What a server did on the connections of a [`TlsClient`]: asked for a client certificate,
/// sent data after the handshake (HTTP/2's SETTINGS, or an HTTP answer).
#[derive(Clone, Default)]
pub(crate) struct Seen {
    asked: Arc<AtomicBool>,
    pub answered: Arc<AtomicBool>,
}

/// The client certificate, if any, noting that the server asked for one.
#[derive(Debug)]
struct ClientCert {
    key: Option<Arc<CertifiedKey>>,
    asked: Arc<AtomicBool>,
}

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::Relaxed);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// Trusts any server certificate, checking only the handshake's signatures: what Docker's
/// `SkipTLSVerify` and `--tls` without `--tlsverify` ask for.
#[derive(Debug)]
struct NoVerifier(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_drop_ports_and_brackets() {
        assert_eq!(host_name("127.0.0.1:1234"), "127.0.0.1");
        assert_eq!(host_name("[::1]:1234"), "::1");
        assert_eq!(host_name("buildkitd.example:1234"), "buildkitd.example");
    }

    #[tokio::test]
    async fn missing_files_are_bad_input() {
        let settings = TlsSettings {
            files: TlsFiles {
                ca: Some("/nonexistent/ca.pem".into()),
                ..TlsFiles::default()
            },
            skip_verify: false,
            origin: "--tlscacert".into(),
        };
        let err = TlsClient::new(&settings, "h:1", ALPN_H2)
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::TlsFile { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
