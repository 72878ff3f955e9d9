//! Reaching a daemon (docs/cli.md, "Reaching a daemon") against real peers: TLS over `tcp://`
//! (containerd's gRPC TCP listener: a Go gRPC server that negotiates ALPN `h2`; BuildKit's
//! services answer "unknown service" there, which proves TLS and HTTP/2 worked), Docker on TCP
//! with TLS from `DOCKER_CERT_PATH` and from a context (a second dockerd with `--tlsverify`, whose
//! TLS negotiates no ALPN), Docker contexts, and `ssh://` through OpenSSH's sshd. Certificates
//! and keys are made in the tests (openssl, ssh-keygen).

use std::{
    fs,
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

mod common;

use common::{brewkit, docker_host as backend_socket, free_port, outcome};

/// Fails (never skips) when a peer program is missing, naming its Debian package.
fn require(program: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
        let path = Path::new(dir).join(program);
        if path.exists() {
            return path;
        }
    }
    panic!("{program} is missing: install the Debian package {package} (scripts/backend up does)");
}

/// A CA, a server certificate for 127.0.0.1 and localhost, a client certificate (named as the
/// docker CLI expects them in `DOCKER_CERT_PATH`: ca.pem, cert.pem, key.pem), a second CA that
/// signed none of them, and in `stranger/` a client certificate that the second CA signed.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let openssl = require("openssl", "openssl");
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let output = Command::new(&openssl)
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        fs::create_dir(dir.path().join("other")).unwrap();
        for (key, cert, cn) in [
            ("ca-key.pem", "ca.pem", "brewkit test CA"),
            ("other/ca-key.pem", "other/ca.pem", "another CA"),
        ] {
            run(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                key,
                "-out",
                cert,
                "-subj",
                &format!("/CN={cn}"),
            ]);
        }
        fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("client.ext"),
            "extendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        for (key, cert, ext, cn) in [
            ("server-key.pem", "server.pem", "server.ext", "localhost"),
            ("key.pem", "cert.pem", "client.ext", "client"),
        ] {
            run(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                key,
                "-out",
                "req.csr",
                "-subj",
                &format!("/CN={cn}"),
            ]);
            run(&[
                "x509",
                "-req",
                "-in",
                "req.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                cert,
                "-extfile",
                ext,
            ]);
        }
        // A client certificate from the CA that no server here trusts.
        fs::create_dir(dir.path().join("stranger")).unwrap();
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "stranger/key.pem",
            "-out",
            "req.csr",
            "-subj",
            "/CN=stranger",
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            "req.csr",
            "-CA",
            "other/ca.pem",
            "-CAkey",
            "other/ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "stranger/cert.pem",
            "-extfile",
            "client.ext",
        ]);
        fs::copy(
            dir.path().join("ca.pem"),
            dir.path().join("stranger/ca.pem"),
        )
        .unwrap();
        // DOCKER_CERT_PATH directories: the CA only, and a CA that signed nothing here.
        fs::create_dir(dir.path().join("ca-only")).unwrap();
        fs::copy(dir.path().join("ca.pem"), dir.path().join("ca-only/ca.pem")).unwrap();
        for file in ["cert.pem", "key.pem"] {
            fs::copy(dir.path().join(file), dir.path().join("other").join(file)).unwrap();
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }
}

/// A peer daemon this test started, stopped (SIGTERM, then SIGKILL) when dropped.
struct Peer {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Peer {
    /// Starts `program args` and waits until 127.0.0.1:`port` accepts connections.
    fn start(program: &Path, args: &[String], port: u16, dir: tempfile::TempDir) -> Self {
        let log = dir.path().join("log");
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let mut peer = Self {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline || peer.child.try_wait().unwrap().is_some() {
                let stderr = fs::read_to_string(peer.log.with_file_name("stderr"));
                panic!("{} did not listen on {port}: {stderr:?}", program.display());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        peer
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// containerd with a TLS gRPC listener on TCP; `mutual` makes it require client certificates.
fn containerd(pki: &Pki, mutual: bool) -> Peer {
    let program = require("containerd", "containerd (or docker.io)");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = dir.path().display();
    let ca = if mutual {
        format!("tcp_tls_ca = \"{}\"", pki.path("ca.pem"))
    } else {
        String::new()
    };
    let config = format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{d}/containerd.sock"
  tcp_address = "127.0.0.1:{port}"
  {ca}
  tcp_tls_cert = "{}"
  tcp_tls_key = "{}"
"#,
        pki.path("server.pem"),
        pki.path("server-key.pem"),
    );
    fs::write(dir.path().join("config.toml"), config).unwrap();
    let args = vec![
        "--config".to_owned(),
        dir.path().join("config.toml").display().to_string(),
    ];
    Peer::start(&program, &args, port, dir)
}

/// A second dockerd, API on 127.0.0.1 with `--tlsverify` (client certificates required), its
/// own data and exec roots and its own containerd (which it starts), no bridge.
fn tls_dockerd(pki: &Pki) -> Peer {
    let program = require("dockerd", "docker.io");
    let dir = tempfile::Builder::new()
        .prefix("bkd")
        .tempdir_in("/tmp")
        .unwrap();
    let port = free_port();
    fs::write(
        dir.path().join("daemon.json"),
        r#"{"features": {"buildkit": true}}"#,
    )
    .unwrap();
    let d = dir.path().display();
    let args: Vec<String> = [
        format!("--config-file={d}/daemon.json"),
        format!("--data-root={d}/data"),
        format!("--exec-root={d}/exec"),
        format!("--pidfile={d}/dockerd.pid"),
        format!("--host=tcp://127.0.0.1:{port}"),
        "--tlsverify".into(),
        format!("--tlscacert={}", pki.path("ca.pem")),
        format!("--tlscert={}", pki.path("server.pem")),
        format!("--tlskey={}", pki.path("server-key.pem")),
        "--bridge=none".into(),
        "--iptables=false".into(),
        "--ip6tables=false".into(),
        "--ip-masq=false".into(),
        "--ip-forward=false".into(),
    ]
    .into();
    Peer::start(&program, &args, port, dir)
}

/// `brewkit cache du` with `args`.
fn du(home: &Path, args: &[&str]) -> (i32, String) {
    outcome(
        brewkit(home)
            .args(["cache", "du"])
            .args(args)
            .output()
            .unwrap(),
    )
}

/// A project whose one target copies a file from the context to an output: no image, no
/// command, so any daemon builds it.
fn trivial_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a.txt"), "reached\n").unwrap();
    fs::write(dir.path().join("config.json"), "{}").unwrap();
    fs::write(
        dir.path().join("brewkit.jsonnet"),
        "local copy = std.native('copy');\n{ apiVersion: 'brewkit/v1', targets: { all: \
         { copy: copy('a.txt', '/a.txt'), output: '/a.txt:./out' } } }\n",
    )
    .unwrap();
    dir
}

/// `brewkit build` of [`trivial_project`] with `command`'s environment; checks the output when
/// it succeeded.
fn build_trivial(mut command: Command, args: &[&str]) -> (i32, String) {
    let project = trivial_project();
    let result = outcome(
        command
            .current_dir(project.path())
            .env("BREWKIT_CONFIG", project.path().join("config.json"))
            .args(["build", "--progress", "plain"])
            .args(args)
            .output()
            .unwrap(),
    );
    if result.0 == 0 {
        let out = fs::read_to_string(project.path().join("out/a.txt")).unwrap();
        assert_eq!(out, "reached\n");
    }
    result
}

/// Proof that TLS and HTTP/2 worked: containerd answered the BuildKit call itself.
fn assert_grpc_answered((code, text): (i32, String)) {
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("unknown service moby.buildkit.v1.Control"),
        "{text}"
    );
}

#[test]
fn tcp_tls_with_a_ca_only_reaches_a_grpc_server_that_negotiates_h2() {
    let pki = Pki::new();
    let peer = containerd(&pki, false);
    let home = tempfile::tempdir().unwrap();
    let addr = format!("tcp://127.0.0.1:{}", peer.port);
    assert_grpc_answered(du(
        home.path(),
        &["--addr", &addr, "--tlscacert", &pki.path("ca.pem")],
    ));
    // The name the certificate holds, given instead of the address's host.
    assert_grpc_answered(du(
        home.path(),
        &[
            "--addr",
            &addr,
            "--tlscacert",
            &pki.path("ca.pem"),
            "--tlsservername",
            "localhost",
        ],
    ));

    let (code, text) = du(
        home.path(),
        &[
            "--addr",
            &addr,
            "--tlscacert",
            &pki.path("ca.pem"),
            "--tlsservername",
            "elsewhere.example",
        ],
    );
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("certificate"), "{text}");
    assert!(text.contains("\"elsewhere.example\""), "{text}");
    assert!(text.contains("--tlsservername"), "{text}");

    let other = pki.path("other/ca.pem");
    let (code, text) = du(home.path(), &["--addr", &addr, "--tlscacert", &other]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("certificate signed by unknown authority"),
        "{text}"
    );
    assert!(text.contains(&other), "{text}");

    // Missing files are bad input, found before connecting.
    let missing = pki.path("missing.pem");
    let (code, text) = du(home.path(), &["--addr", &addr, "--tlscacert", &missing]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains(&missing), "{text}");
}

#[test]
fn tcp_mutual_tls_needs_the_client_certificate() {
    let pki = Pki::new();
    let peer = containerd(&pki, true);
    let home = tempfile::tempdir().unwrap();
    let addr = format!("tcp://127.0.0.1:{}", peer.port);
    let client = [
        "--tlscert",
        &pki.path("cert.pem"),
        "--tlskey",
        &pki.path("key.pem"),
    ];
    let mut args = vec!["--addr", &addr, "--tlscacert"];
    let ca = pki.path("ca.pem");
    args.push(&ca);
    assert_grpc_answered(du(home.path(), &[&args[..], &client[..]].concat()));

    // Several times: with TLS 1.3 the server's alert races the client's first write.
    for _ in 0..3 {
        let (code, text) = du(home.path(), &args);
        assert_eq!(code, 3, "{text}");
        assert!(text.contains("requires a client certificate"), "{text}");
    }

    // A client certificate that a CA the server does not trust signed.
    let untrusted = [
        "--tlscert",
        &pki.path("other/ca.pem"),
        "--tlskey",
        &pki.path("other/ca-key.pem"),
    ];
    let (code, text) = du(home.path(), &[&args[..], &untrusted[..]].concat());
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("certificate"), "{text}");

    let (code, text) = du(
        home.path(),
        &["--addr", &addr, "--tlscert", &pki.path("cert.pem")],
    );
    assert_eq!(code, 2, "{text}");
}

#[test]
fn docker_on_tcp_with_tls_from_docker_cert_path_and_from_a_context() {
    let pki = Pki::new();
    let peer = tls_dockerd(&pki);
    let home = tempfile::tempdir().unwrap();
    let addr = format!("docker://tcp://127.0.0.1:{}", peer.port);
    let env_build = |cert_path: &str, args: &[&str]| {
        let mut command = brewkit(home.path());
        command
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", cert_path);
        build_trivial(command, args)
    };
    let (code, text) = env_build(&pki.path(""), &["--addr", &addr]);
    assert_eq!(code, 0, "{text}");

    let (code, text) = env_build(&pki.path("ca-only"), &["--addr", &addr]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("requires a client certificate"), "{text}");
    assert!(text.contains("DOCKER_CERT_PATH"), "{text}");

    let (code, text) = env_build(&pki.path("other"), &["--addr", &addr]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("certificate signed by unknown authority"),
        "{text}"
    );

    // An option replaces its own file of DOCKER_CERT_PATH only: the client certificate stays.
    let (code, text) = env_build(
        &pki.path("other"),
        &["--addr", &addr, "--tlscacert", &pki.path("ca.pem")],
    );
    assert_eq!(code, 0, "{text}");

    // DOCKER_HOST, as the docker CLI takes it, with `--addr docker://`.
    let mut command = brewkit(home.path());
    command
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{}", peer.port))
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", pki.path(""));
    let (code, text) = build_trivial(command, &["--addr", "docker://"]);
    assert_eq!(code, 0, "{text}");

    // The same daemon through a context with the TLS material in the context store.
    let tls = write_context(
        home.path(),
        "tls-remote",
        &format!("tcp://127.0.0.1:{}", peer.port),
        false,
    );
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        fs::copy(pki.dir.path().join(file), tls.join(file)).unwrap();
    }
    let mut command = brewkit(home.path());
    command.env("DOCKER_CONTEXT", "tls-remote");
    let (code, text) = build_trivial(command, &["--addr", "docker://"]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn docker_tls_names_the_client_certificate_the_server_refuses() {
    let pki = Pki::new();
    let peer = tls_dockerd(&pki);
    let home = tempfile::tempdir().unwrap();
    let addr = format!("docker://tcp://127.0.0.1:{}", peer.port);
    let cert = pki.path("stranger/cert.pem");
    let assert_refused = |(code, text): (i32, String)| {
        assert_eq!(code, 3, "{text}");
        assert!(text.contains("refused"), "{text}");
        assert!(text.contains(&cert), "{text}");
        assert!(text.contains("CA"), "{text}");
    };
    // Several times: with TLS 1.3 dockerd judges the client certificate after the handshake, and
    // its alert races the client's first request.
    for _ in 0..3 {
        let mut command = brewkit(home.path());
        command
            .env("DOCKER_TLS_VERIFY", "1")
            .env("DOCKER_CERT_PATH", pki.path("stranger"));
        assert_refused(build_trivial(command, &["--addr", &addr]));
    }
    // The same certificate given by options.
    assert_refused(build_trivial(
        brewkit(home.path()),
        &[
            "--addr",
            &addr,
            "--tlscacert",
            &pki.path("ca.pem"),
            "--tlscert",
            &cert,
            "--tlskey",
            &pki.path("stranger/key.pem"),
        ],
    ));
}

#[test]
fn docker_tls_without_verify_trusts_any_server_certificate() {
    let pki = Pki::new();
    let peer = tls_dockerd(&pki);
    let home = tempfile::tempdir().unwrap();
    let host = format!("tcp://127.0.0.1:{}", peer.port);
    // other/ holds a CA that did not sign dockerd's certificate, and the client certificate
    // dockerd wants: verifying fails, not verifying builds.
    let env_build = |variable: &str| {
        let mut command = brewkit(home.path());
        command
            .env("DOCKER_HOST", &host)
            .env(variable, "1")
            .env("DOCKER_CERT_PATH", pki.path("other"));
        build_trivial(command, &["--addr", "docker://"])
    };
    let (code, text) = env_build("DOCKER_TLS_VERIFY");
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("certificate signed by unknown authority"),
        "{text}"
    );
    let (code, text) = env_build("DOCKER_TLS");
    assert_eq!(code, 0, "{text}");

    // Contexts with the same TLS files, with and without SkipTLSVerify.
    for (name, skip_verify) in [("verified", false), ("unverified", true)] {
        let tls = write_context(home.path(), name, &host, skip_verify);
        for file in ["ca.pem", "cert.pem", "key.pem"] {
            fs::copy(pki.dir.path().join("other").join(file), tls.join(file)).unwrap();
        }
    }
    let context_build = |name: &str| {
        let mut command = brewkit(home.path());
        command.env("DOCKER_CONTEXT", name);
        build_trivial(command, &["--addr", "docker://"])
    };
    let (code, text) = context_build("verified");
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("certificate signed by unknown authority"),
        "{text}"
    );
    assert!(text.contains("Docker context \"verified\""), "{text}");
    let (code, text) = context_build("unverified");
    assert_eq!(code, 0, "{text}");
}

#[test]
fn docker_on_plain_tcp_to_a_tls_daemon_says_to_set_up_tls() {
    let pki = Pki::new();
    let peer = tls_dockerd(&pki);
    let home = tempfile::tempdir().unwrap();
    // DOCKER_HOST without DOCKER_TLS_VERIFY: plain HTTP to dockerd's TLS listener, which answers
    // 400 with Go's text for that.
    let mut command = brewkit(home.path());
    command.env("DOCKER_HOST", format!("tcp://127.0.0.1:{}", peer.port));
    let (code, text) = build_trivial(command, &["--addr", "docker://"]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("Client sent an HTTP request to an HTTPS server"),
        "{text}"
    );
    assert!(text.contains("DOCKER_TLS_VERIFY=1"), "{text}");
    assert!(text.contains("DOCKER_CERT_PATH"), "{text}");
    assert!(text.contains("--tlscacert"), "{text}");
    // The hint for a Docker without BuildKit would send the user the wrong way.
    assert!(!text.contains("20.10"), "{text}");
}

/// Writes context `name` for Docker at `host` as `docker context create` does (`skip_verify`:
/// its `--docker skip-tls-verify=true`), and returns its TLS directory (created empty).
fn write_context(home: &Path, name: &str, host: &str, skip_verify: bool) -> PathBuf {
    let id = sha256_hex(name);
    let contexts = home.join(".docker/contexts");
    let meta = contexts.join("meta").join(&id);
    fs::create_dir_all(&meta).unwrap();
    fs::write(
        meta.join("meta.json"),
        format!(
            r#"{{"Name":"{name}","Metadata":{{"Description":"brewkit test"}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":{skip_verify}}}}}}}"#
        ),
    )
    .unwrap();
    let tls = contexts.join("tls").join(&id).join("docker");
    fs::create_dir_all(&tls).unwrap();
    tls
}

/// The context store's id of a name, with sha256sum (coreutils) as a peer of our own hashing.
fn sha256_hex(name: &str) -> String {
    let mut child = Command::new(require("sha256sum", "coreutils"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(name.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8(output.stdout).unwrap()[..64].to_owned()
}

#[test]
fn docker_contexts_are_resolved_as_the_docker_cli_does() {
    let home = tempfile::tempdir().unwrap();
    let backend = backend_socket();
    write_context(home.path(), "backend", &backend, false);
    write_context(
        home.path(),
        "dead",
        "unix:///nonexistent/brewkit-dead.sock",
        false,
    );
    let config = home.path().join(".docker/config.json");

    // currentContext in config.json.
    fs::write(&config, r#"{"currentContext": "backend"}"#).unwrap();
    let (code, text) = build_trivial(brewkit(home.path()), &["--addr", "docker://"]);
    assert_eq!(code, 0, "{text}");

    // DOCKER_CONTEXT wins over currentContext; a dead one is exit 3 naming the context.
    let mut command = brewkit(home.path());
    command.env("DOCKER_CONTEXT", "dead");
    let (code, text) = build_trivial(command, &["--addr", "docker://"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("Docker context \"dead\""), "{text}");
    assert!(text.contains("brewkit-dead.sock"), "{text}");

    // DOCKER_HOST wins over both.
    let mut command = brewkit(home.path());
    command
        .env("DOCKER_CONTEXT", "dead")
        .env("DOCKER_HOST", &backend);
    let (code, text) = build_trivial(command, &["--addr", "docker://"]);
    assert_eq!(code, 0, "{text}");

    // Auto-detection (no --addr) tries the context too, and lists it.
    fs::write(&config, r#"{"currentContext": "dead"}"#).unwrap();
    let (code, text) = build_trivial(brewkit(home.path()), &[]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("Docker context \"dead\""), "{text}");

    // A context that does not exist is bad input, named.
    fs::write(&config, r#"{"currentContext": "nowhere"}"#).unwrap();
    let (code, text) = build_trivial(brewkit(home.path()), &["--addr", "docker://"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("\"nowhere\""), "{text}");
}

/// sshd on a 127.0.0.1 port of its own that lets root in with a key made here. Its sessions get
/// the backend's `DOCKER_HOST` (`SetEnv`), so the `docker system dial-stdio` they run reaches the
/// backend, as on a remote Docker host. `client` is a home directory for the ssh client: its
/// `.ssh` holds that key as the default identity, sshd's host key in `known_hosts`, and a config.
struct Sshd {
    peer: Peer,
    client: tempfile::TempDir,
}

impl Sshd {
    fn start() -> Self {
        let program = require("sshd", "openssh-server");
        let keygen = require("ssh-keygen", "openssh-client");
        assert!(
            Path::new("/run/sshd").is_dir(),
            "/run/sshd (sshd's privilege separation directory) is missing: scripts/backend up makes it"
        );
        let dir = tempfile::tempdir().unwrap();
        let client = tempfile::tempdir().unwrap();
        let ssh = client.path().join(".ssh");
        fs::create_dir(&ssh).unwrap();
        let host_key = dir.path().join("host_key");
        let identity = ssh.join("id_ed25519");
        for (key, comment) in [
            (&host_key, "brewkit test host"),
            (&identity, "brewkit test"),
        ] {
            let output = Command::new(&keygen)
                .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                .arg(key)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "ssh-keygen: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let public = |key: &Path| fs::read_to_string(key.with_extension("pub")).unwrap();
        fs::copy(
            identity.with_extension("pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        // The remote docker CLI reads no config of this machine's root.
        fs::create_dir(dir.path().join("docker-config")).unwrap();
        let port = free_port();
        let d = dir.path().display();
        // StrictModes would refuse files under /tmp (world-writable); PAM is not set up here.
        fs::write(
            dir.path().join("sshd_config"),
            format!(
                "ListenAddress 127.0.0.1:{port}\nHostKey {d}/host_key\nPidFile none\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nAllowUsers root\nLogLevel VERBOSE\n\
                 SetEnv DOCKER_HOST={} DOCKER_CONFIG={d}/docker-config\n",
                backend_socket()
            ),
        )
        .unwrap();
        fs::write(
            ssh.join("known_hosts"),
            format!("[127.0.0.1]:{port} {}", public(&host_key)),
        )
        .unwrap();
        // `builder` is an alias, as users name their remote hosts; never prompt.
        fs::write(
            ssh.join("config"),
            format!(
                "Host builder\n  HostName 127.0.0.1\n  Port {port}\n  User root\n\
                 Host *\n  BatchMode yes\n  StrictHostKeyChecking yes\n  \
                 GlobalKnownHostsFile /dev/null\n"
            ),
        )
        .unwrap();
        let config = dir.path().join("sshd_config").display().to_string();
        let args = ["-D", "-e", "-f", &config].map(String::from);
        let peer = Peer::start(&program, &args, port, dir);
        Self { peer, client }
    }

    /// What sshd logged (-e: to stderr).
    fn log(&self) -> String {
        fs::read_to_string(self.peer.log.with_file_name("stderr")).unwrap_or_default()
    }

    /// `inner` run where the home directory of this user in /etc/passwd is [`Self::client`]
    /// (bound over it in a mount namespace of its own): ssh reads `~/.ssh` from the passwd
    /// entry, never from `$HOME`.
    fn as_client(&self, inner: &Command) -> Command {
        let mut command = Command::new(require("unshare", "util-linux"));
        command
            .args(["--mount", "--propagation", "private", "sh", "-ec"])
            .arg(r#"mount --bind "$1" "$(getent passwd "$(id -u)" | cut -d: -f6)"; shift; exec "$@""#)
            .arg("sh")
            .arg(self.client.path())
            .arg(inner.get_program())
            .args(inner.get_args());
        for (name, value) in inner.get_envs() {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        command
    }
}

#[test]
fn docker_over_ssh_runs_docker_system_dial_stdio() {
    require("ssh", "openssh-client");
    let sshd = Sshd::start();
    let home = sshd.client.path();
    let accepted = || sshd.log().matches("Accepted publickey for root").count();

    // DOCKER_HOST with the user and the port: `ssh -l root -p PORT -- 127.0.0.1 …`.
    let mut command = brewkit(home);
    command.env(
        "DOCKER_HOST",
        format!("ssh://root@127.0.0.1:{}", sshd.peer.port),
    );
    let (code, text) = build_trivial(sshd.as_client(&command), &["--addr", "docker://"]);
    assert_eq!(code, 0, "{text}\nsshd: {}", sshd.log());
    let before = accepted();
    assert!(before > 0, "{}", sshd.log());

    // A context whose host is an alias of ~/.ssh/config, which gives the port and the user.
    write_context(home, "over-ssh", "ssh://builder", false);
    let mut command = brewkit(home);
    command.env("DOCKER_CONTEXT", "over-ssh");
    let (code, text) = build_trivial(sshd.as_client(&command), &["--addr", "docker://"]);
    assert_eq!(code, 0, "{text}\nsshd: {}", sshd.log());
    assert!(accepted() > before, "{}", sshd.log());

    // Failures tell ssh's own message: a user sshd does not let in, a port nothing listens on.
    let mut command = brewkit(home);
    command.env(
        "DOCKER_HOST",
        format!("ssh://nobody@127.0.0.1:{}", sshd.peer.port),
    );
    let (code, text) = build_trivial(sshd.as_client(&command), &["--addr", "docker://"]);
    assert_eq!(code, 3, "{text}");
    assert!(text.contains("Permission denied (publickey)"), "{text}");
    let mut command = brewkit(home);
    command.env("DOCKER_HOST", "ssh://root@127.0.0.1:1");
    let (code, text) = build_trivial(sshd.as_client(&command), &["--addr", "docker://"]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("ssh: connect to host 127.0.0.1 port 1"),
        "{text}"
    );
}
