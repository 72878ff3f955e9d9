//! Helpers shared by the binary's integration tests (tests/cli.rs, build.rs, reach.rs, docs.rs),
//! each of which includes this module with `mod common;`.

// Every test crate uses a different part of this module.
#![allow(dead_code)]

use std::{
    fs,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

/// The caller's variables that would point `brewkit` at a daemon, a host config, a library path,
/// credentials, an ssh agent or a progress mode. No test inherits them: one that needs a value
/// sets it.
pub(crate) const CALLER_ENVIRONMENT: &[&str] = &[
    "BREWKIT_CONFIG",
    "JSONNET_PATH",
    "BUILDKIT_HOST",
    "BUILDKIT_PROGRESS",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_TLS",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CERT_PATH",
    "XDG_RUNTIME_DIR",
    "SSH_AUTH_SOCK",
    "GITHUB_ACTIONS",
    "NO_COLOR",
];

/// `command` without [`CALLER_ENVIRONMENT`] and with `home` as HOME, so that no config, Docker
/// config or credential of the developer's is read.
pub(crate) fn clean<'a>(command: &'a mut Command, home: &Path) -> &'a mut Command {
    for name in CALLER_ENVIRONMENT {
        command.env_remove(name);
    }
    command.env("HOME", home)
}

/// The `brewkit` binary in a clean environment (see [`clean`]) with `home` as HOME.
pub(crate) fn brewkit(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_brewkit"));
    clean(&mut command, home);
    command
}

/// `brewkit` run in the project directory `dir`, with a home of its own at `dir/home`.
pub(crate) fn brewkit_in(dir: &Path) -> Command {
    let mut command = brewkit(&dir.join("home"));
    command.current_dir(dir);
    command
}

/// Runs `command` to the end: exit code, stdout, stderr (both must be UTF-8).
pub(crate) fn run(command: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("the command runs");
    (
        status.code().expect("exited"),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

/// Runs `command` with `input` on its standard input: exit code, stdout, stderr.
pub(crate) fn run_with_stdin(command: &mut Command, input: &str) -> (i32, String, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    (
        status.code().expect("exited"),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

/// Exit code and stdout followed by stderr of a finished command.
pub(crate) fn outcome(output: Output) -> (i32, String) {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code().expect("exited"), text)
}

/// A temporary project directory holding `brewkit.jsonnet`.
pub(crate) fn project(definition: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("brewkit.jsonnet"), definition).unwrap();
    dir
}

/// A temporary project directory holding `brewkit.jsonnet` and a host config, `config.json`.
pub(crate) fn configured_project(definition: &str, config: &str) -> tempfile::TempDir {
    let dir = project(definition);
    fs::write(dir.path().join("config.json"), config).unwrap();
    dir
}

/// The text of `dir/path`; a missing file fails the test naming it.
pub(crate) fn read(dir: &Path, path: &str) -> String {
    fs::read_to_string(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// The test backend's Docker API (`unix://…`), from scripts/backend.
pub(crate) fn docker_host() -> String {
    std::env::var("BREWKIT_TEST_DOCKER_HOST").expect(
        "BREWKIT_TEST_DOCKER_HOST is not set: run scripts/test, or eval \"$(scripts/backend up)\"",
    )
}

/// The test backend's BuildKit as an `--addr`.
pub(crate) fn docker_address() -> String {
    format!("docker://{}", docker_host())
}

/// The test registry's `host:port`, from scripts/backend.
pub(crate) fn registry() -> String {
    std::env::var("BREWKIT_TEST_REGISTRY").expect(
        "BREWKIT_TEST_REGISTRY is not set: run scripts/test, or eval \"$(scripts/backend up)\"",
    )
}

/// A unique token, so that no two runs of a test share a cache entry, and a test can find its
/// own processes.
pub(crate) fn token() -> String {
    brewkit_buildkit::new_id()
}

/// Polls `done` every 100 ms; fails the test naming `what` after `seconds`.
pub(crate) fn wait_until(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {seconds} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for `child` at most `seconds`; past that it is killed and the test fails.
pub(crate) fn wait_at_most(child: &mut Child, seconds: u64) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process did not exit within {seconds} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends the signal `name` (`INT`, `TERM`, …) to `child`.
pub(crate) fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name}");
}

/// Whether a process on this machine (a container's included: they share its process table)
/// has `token` in its command line. With a token no other test uses, it finds the test's own
/// process and nothing else.
pub(crate) fn process_with(token: &str) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    let own = std::process::id().to_string();
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == own {
            return false;
        }
        // A process may exit between the listing and the read: it is then not running.
        fs::read(entry.path().join("cmdline")).is_ok_and(|cmdline| {
            cmdline
                .split(|&b| b == 0)
                .any(|arg| arg.windows(token.len()).any(|w| w == token.as_bytes()))
        })
    })
}

/// A port on 127.0.0.1 that was free a moment ago (the kernel picked it).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The backend's docker CLI (Docker 20.10 from Debian) with `config` as its config dir;
/// `docker build` goes through the daemon's BuildKit.
pub(crate) fn docker_command(config: &Path) -> Command {
    let mut command = Command::new("/usr/bin/docker");
    command
        .env("DOCKER_CONFIG", config)
        .env("DOCKER_BUILDKIT", "1")
        .args(["-H", &docker_host()]);
    command
}

/// [`docker_command`] with a config dir of its own; fails the test when it fails.
pub(crate) fn docker(args: &[&str]) -> String {
    let config = tempfile::tempdir().unwrap();
    let output = docker_command(config.path()).args(args).output().unwrap();
    assert!(output.status.success(), "docker {args:?}: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
