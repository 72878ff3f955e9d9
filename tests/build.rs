//! `brewkit build` end to end against the test backend (scripts/backend): one test at least per
//! directive and rule of docs/reference.md, busybox as the base image.

use std::{fs, path::Path, process::Command};

mod common;

use common::{
    brewkit_in, clean, configured_project, docker, docker_address, docker_command, docker_host,
    free_port, outcome, process_with, read, registry, signal, token, wait_at_most, wait_until,
};

/// `brewkit build` in the project `dir` (a clean environment, see tests/common) against the
/// test backend, with `dir/config.json` as host config and plain progress; callers add arguments
/// and environment.
fn build_command(dir: &Path) -> Command {
    build_command_showing(dir, "plain")
}

/// As [`build_command`], with `--progress mode`.
fn build_command_showing(dir: &Path, mode: &str) -> Command {
    let mut command = brewkit_in(dir);
    command
        .env("BREWKIT_CONFIG", dir.join("config.json"))
        .arg("build")
        .args(["--addr", &docker_address(), "--progress", mode]);
    command
}

fn build(dir: &Path, args: &[&str]) -> (i32, String) {
    outcome(build_command(dir).args(args).output().unwrap())
}

/// Tests that rely on BuildKit's cache between two builds hold this for reading; the test that
/// prunes the cache holds it for writing, so that it never prunes in between.
static CACHE: std::sync::RwLock<()> = std::sync::RwLock::new(());

#[test]
fn hello_example_writes_its_output() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello");
    let dir = tempfile::tempdir().unwrap();
    for file in ["brewkit.jsonnet", "name.txt"] {
        fs::copy(example.join(file), dir.path().join(file)).unwrap();
    }
    fs::write(dir.path().join("config.json"), "{}").unwrap();
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(dir.path(), "out/greeting.txt"), "hello, BrewKit\n");
}

#[test]
fn from_target_inherits_env_and_workdir_and_image_env_applies() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{
  apiVersion: 'brewkit/v1',
  targets: {{
    base: {{ from: 'busybox', workdir: '/app', env: {{ GREETING: 'hi-{t}' }}, command: 'echo base > base.txt' }},
    child: {{ from: 'base', command: 'pwd > where.txt && echo "$GREETING" > env.txt && echo "$PATH" > path.txt',
              output: [{{ artifact: '/app/*.txt', 'local': 'out' }}] }},
  }},
}}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &["child"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(dir.path(), "out/where.txt"), "/app\n");
    assert_eq!(read(dir.path(), "out/env.txt"), format!("hi-{t}\n"));
    assert_eq!(read(dir.path(), "out/base.txt"), "base\n");
    assert!(
        read(dir.path(), "out/path.txt").contains("/bin"),
        "the image's PATH applies"
    );
}

#[test]
fn copies_files_directories_and_wildcards_from_the_context() {
    let dir = configured_project(
        r#"local copy = std.native('copy');
{
  apiVersion: 'brewkit/v1',
  targets: {
    all: {
      from: 'busybox', workdir: '/w',
      copy: [copy('one.txt', 'one.txt'), copy('dir', 'dir'), copy('*.md', 'docs/')],
      command: 'find . -type f | sort > /listing',
      output: '/listing:out',
    },
  },
}"#,
        "{}",
    );
    fs::write(dir.path().join("one.txt"), "1").unwrap();
    fs::create_dir_all(dir.path().join("dir/sub")).unwrap();
    fs::write(dir.path().join("dir/sub/two.txt"), "2").unwrap();
    fs::write(dir.path().join("a.md"), "a").unwrap();
    fs::write(dir.path().join("b.md"), "b").unwrap();
    fs::write(dir.path().join("unrelated.bin"), "x").unwrap();
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        read(dir.path(), "out/listing"),
        "./dir/sub/two.txt\n./docs/a.md\n./docs/b.md\n./one.txt\n"
    );
}

#[test]
fn copy_from_a_target_and_from_an_image() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"local copyFrom = std.native('copyFrom');
{{
  apiVersion: 'brewkit/v1',
  targets: {{
    _producer: {{ from: 'busybox', command: 'mkdir -p /made && echo {t} > /made/file' }},
    all: {{
      from: 'scratch',
      copy: [copyFrom('_producer', '/made/file', '/result/file'), copyFrom('busybox', '/bin/busybox', '/result/busybox')],
      output: '/result:out',
    }},
  }},
}}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(dir.path(), "out/file"), format!("{t}\n"));
    assert!(dir.path().join("out/busybox").exists());
}

#[test]
fn vars_are_substituted_and_shell_variables_are_left_alone() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{
  apiVersion: 'brewkit/v1',
  vars: {{
    version: {{ from: 'busybox', command: 'echo v-{t}; echo' }},
    broken: {{ from: 'busybox', command: 'exit 7' }},
  }},
  targets: {{
    all: {{ from: 'busybox', env: {{ X: 'from-env' }},
            command: 'echo "${{version}}|$HOME|${{X}}|${{nope:-unset}}" > /out.txt',
            output: '/out.txt:out' }},
  }},
}}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "an unreferenced var must not run: {log}");
    assert_eq!(
        read(dir.path(), "out/out.txt"),
        format!("v-{t}|/root|from-env|unset\n")
    );
}

#[test]
fn a_bare_dollar_name_is_a_var_reference_too() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{
  apiVersion: 'brewkit/v1',
  vars: {{ ver: {{ from: 'busybox', command: 'echo {t}' }} }},
  targets: {{
    all: {{ from: 'busybox',
            command: 'echo $ver > /ver.txt && echo "$ver.tgz|${{ver}}-x|$verx|$HOME" > /more.txt',
            output: '/*.txt:out' }},
  }},
}}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(dir.path(), "out/ver.txt"), format!("{t}\n"));
    assert_eq!(
        read(dir.path(), "out/more.txt"),
        format!("{t}.tgz|{t}-x||/root\n"),
        "$verx is the shell's (unset), $HOME too"
    );
}

#[test]
fn depends_on_sees_the_outputs_of_what_it_depends_on() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"local copy = std.native('copy');
{{
  apiVersion: 'brewkit/v1',
  targets: {{
    generate: {{ from: 'busybox', command: 'echo generated-{t} > /gen.txt', output: '/gen.txt:generated' }},
    all: {{ from: 'busybox', dependsOn: ['generate'], copy: copy('generated/gen.txt', '/in.txt'),
            command: 'cat /in.txt > /out.txt', output: '/out.txt:out' }},
  }},
}}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(dir.path(), "out/out.txt"), format!("generated-{t}\n"));
}

#[test]
fn cache_mount_persists_across_builds_and_stays_out_of_outputs() {
    let _cache = CACHE.read().unwrap_or_else(|e| e.into_inner());
    let t = token();
    // The copied file changes between the builds, so the command runs again (not from cache).
    let definition = format!(
        r#"local cache = std.native('cache');
local copy = std.native('copy');
{{
  apiVersion: 'brewkit/v1',
  targets: {{
    all: {{ from: 'busybox', cache: cache('test-{t}', '/cache'), copy: copy('round.txt', '/round.txt'),
            command: 'cat /round.txt >> /cache/runs; wc -l < /cache/runs > /count',
            output: [{{ artifact: '/count', 'local': 'out' }}, {{ artifact: '/cache', 'local': 'cache-out' }}] }},
  }},
}}"#
    );
    let dir = configured_project(&definition, "{}");
    fs::write(dir.path().join("round.txt"), "first\n").unwrap();
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(dir.path(), "out/count").trim(), "1");
    fs::write(dir.path().join("round.txt"), "second\n").unwrap();
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        read(dir.path(), "out/count").trim(),
        "2",
        "the cache mount kept the first run's file"
    );
    assert!(
        !dir.path().join("cache-out/runs").exists(),
        "the cache is not in the target's filesystem"
    );
}

#[test]
fn no_cache_runs_commands_again() {
    let _cache = CACHE.read().unwrap_or_else(|e| e.into_inner());
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{ all: {{ from: 'busybox',
  command: 'echo ran-{t}; head -c 16 /dev/urandom | od -An -tx1 > /stamp', output: '/stamp:out' }} }} }}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    let first = read(dir.path(), "out/stamp");
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        read(dir.path(), "out/stamp"),
        first,
        "cached without --no-cache"
    );
    let (code, log) = build(dir.path(), &["--no-cache"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        log.matches(&format!("| ran-{t}")).count(),
        1,
        "ran once, not once per output: {log}"
    );
    assert_ne!(
        read(dir.path(), "out/stamp"),
        first,
        "--no-cache ran it again"
    );
}

#[test]
fn secrets_are_readable_but_never_land_in_the_filesystem() {
    let t = token();
    // A secret is not part of a run's cache key: the token keeps this run from the cache.
    let dir = configured_project(
        &r#"local secret = std.native('secret');
{
  apiVersion: 'brewkit/v1',
  targets: {
    all: { from: 'busybox', secrets: secret('token', '/run/secrets/token'),
           command: 'mkdir -p /o && stat -c %a /run/secrets/token > /o/mode && wc -c < /run/secrets/token > /o/size && ls /run/secrets > /o/listing && cp /run/secrets/token /o/copy && echo copied',
           output: [{ artifact: '/o', 'local': 'out' }, { artifact: '/run', 'local': 'run-out' }] },
  },
}"#
        .replace("echo copied", &format!("echo copied {t}")),
        r#"{"secrets": [{"id": "token", "path": "${BREWKIT_TEST_SECRET_DIR}/token.txt"}]}"#,
    );
    // Not valid UTF-8, so that reading files as text cannot miss it.
    let mut secret = format!("secret-{t}-").into_bytes();
    secret.extend([0xff, 0xfe, 0x00, 0x01]);
    fs::write(dir.path().join("token.txt"), &secret).unwrap();
    let (code, log) = outcome(
        build_command(dir.path())
            .env("BREWKIT_TEST_SECRET_DIR", dir.path())
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{log}");
    // The run read it, through a read-only mount of mode 0400...
    assert_eq!(
        read(dir.path(), "out/size").trim(),
        secret.len().to_string()
    );
    assert_eq!(read(dir.path(), "out/mode").trim(), "400");
    assert_eq!(read(dir.path(), "out/listing").trim(), "token");
    assert_eq!(
        fs::read(dir.path().join("out/copy")).unwrap(),
        secret,
        "{log}"
    );
    // ...and it is nowhere else: not in the log, not in the target's filesystem (its mount
    // point is left empty, if at all), not in the printed definition.
    let contains = |haystack: &[u8]| haystack.windows(secret.len()).any(|w| w == secret);
    assert!(!contains(log.as_bytes()), "the secret reached the log");
    let mut stack = vec![dir.path().join("run-out")];
    while let Some(path) = stack.pop() {
        let meta = fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            stack.extend(fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if meta.is_file() {
            assert!(!contains(&fs::read(&path).unwrap()), "{}", path.display());
        }
    }
    assert!(
        fs::metadata(dir.path().join("run-out/secrets/token")).map_or(true, |m| m.len() == 0),
        "the mount point holds nothing"
    );
    let definition = brewkit_in(dir.path())
        .env("BREWKIT_CONFIG", dir.path().join("config.json"))
        .env("BREWKIT_TEST_SECRET_DIR", dir.path())
        .args(["build", "definition"])
        .output()
        .unwrap();
    assert!(definition.status.success());
    assert!(!contains(&definition.stdout));
}

#[test]
fn missing_secret_file_is_bad_input() {
    let dir = configured_project(
        r#"local secret = std.native('secret');
{ apiVersion: 'brewkit/v1', targets: { all: { from: 'busybox', secrets: secret('token', '/t'), command: 'true' } } }"#,
        r#"{"secrets": [{"id": "token", "path": "/nonexistent/token.txt"}]}"#,
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("/nonexistent/token.txt"), "{log}");
}

#[test]
fn network_none_has_only_loopback() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{ all: {{ from: 'busybox', network: 'none',
  command: 'ls /sys/class/net > /ifaces # {t}', output: '/ifaces:out' }} }} }}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(dir.path(), "out/ifaces"), "lo\n");
}

#[test]
fn failing_command_exits_1_with_target_command_and_log_tail() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{ all: {{ from: 'busybox',
  command: 'for i in $(seq 1 30); do echo line-$i-{t}; done; exit 4' }} }} }}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 1, "{log}");
    let error = log
        .lines()
        .skip_while(|l| !l.starts_with("brewkit: "))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(error.contains("all failed running `for i in"), "{error}");
    assert!(error.contains("exit code: 4"), "{error}");
    assert!(error.contains(&format!("line-30-{t}")), "{error}");
    assert!(error.contains(&format!("line-11-{t}")), "{error}");
    assert!(
        !error.contains(&format!("line-10-{t}")),
        "only the last 20 lines: {error}"
    );
}

#[test]
fn an_unchanged_project_rebuilds_fully_cached_even_when_an_unrelated_file_changes() {
    let _cache = CACHE.read().unwrap_or_else(|e| e.into_inner());
    let t = token();
    let dir = configured_project(
        &format!(
            r#"local copy = std.native('copy');
{{ apiVersion: 'brewkit/v1', targets: {{ all: {{ from: 'busybox', copy: copy('input.txt', '/input.txt'),
  command: 'cat /input.txt > /out.txt; echo {t} >> /out.txt', output: '/out.txt:out' }} }} }}"#
        ),
        "{}",
    );
    fs::write(dir.path().join("input.txt"), "in").unwrap();
    fs::write(dir.path().join("unrelated.txt"), "1").unwrap();
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    fs::write(dir.path().join("unrelated.txt"), "2").unwrap();
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains(&format!(
            "CACHED cat /input.txt > /out.txt; echo {t} >> /out.txt"
        )),
        "{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.starts_with("[all] ") && l.contains(" | ")),
        "nothing ran: {log}"
    );
}

#[test]
fn ctrl_c_cancels_the_build_exits_130_and_writes_no_output() {
    let t = token();
    // The shell stays (it waits for sleep) with the token in its command line, so that this
    // test finds its own container's process and no other test's.
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{ all: {{ from: 'busybox',
  command: 'echo {t} > /out.txt; sleep 48 & wait', output: '/out.txt:out' }} }} }}"#
        ),
        "{}",
    );
    let mut child = build_command(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the command starts", 60, || process_with(&t));
    signal(&child, "INT");
    let exit = wait_at_most(&mut child, 30);
    assert_eq!(exit.code(), Some(130));
    wait_until("the container stops", 30, || !process_with(&t));
    assert!(
        !dir.path().join("out/out.txt").exists(),
        "no partial output"
    );
}

/// A socket anyone may use that forwards its connections to the test backend's Docker socket,
/// so that brewkit can run as an unprivileged user.
fn open_proxy(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let docker = docker_host();
    let docker = docker
        .strip_prefix("unix://")
        .expect("a unix:// Docker host")
        .to_owned();
    let path = dir.join("docker.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let docker = docker.clone();
            std::thread::spawn(move || {
                let upstream = std::os::unix::net::UnixStream::connect(&docker).unwrap();
                let (mut a, mut b) = (conn.try_clone().unwrap(), upstream.try_clone().unwrap());
                let forward = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut a, &mut b);
                    let _ = b.shutdown(std::net::Shutdown::Write);
                });
                let (mut c, mut d) = (upstream, conn);
                let _ = std::io::copy(&mut c, &mut d);
                let _ = d.shutdown(std::net::Shutdown::Write);
                let _ = forward.join();
            });
        }
    });
    format!("docker://unix://{}", path.display())
}

#[test]
fn outputs_belong_to_the_invoking_user_with_modes_kept() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{ all: {{ from: 'busybox', workdir: '/o',
  command: 'echo {t} > run.sh && chmod 0755 run.sh && echo s > secret && chmod 0600 secret && mkdir -p d && echo x > d/x',
  output: '/o:out' }} }} }}"#
        ),
        "{}",
    );
    let proxy_dir = tempfile::tempdir().unwrap();
    fs::set_permissions(proxy_dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let address = open_proxy(proxy_dir.path());
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let output = clean(&mut Command::new("setpriv"), dir.path())
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_brewkit"))
        .args(["build", "--addr", &address, "--progress", "plain"])
        .current_dir(dir.path())
        .env("BREWKIT_CONFIG", dir.path().join("config.json"))
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(0), "{log}");
    for (path, mode) in [
        ("out/run.sh", 0o755),
        ("out/secret", 0o600),
        ("out/d/x", 0o644),
    ] {
        let meta = fs::metadata(dir.path().join(path)).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (65534, 65534),
            "{path} belongs to the user who ran brewkit"
        );
        assert_eq!(
            meta.permissions().mode() & 0o777,
            mode,
            "{path} keeps its mode"
        );
    }
    assert_eq!(fs::metadata(dir.path().join("out/d")).unwrap().uid(), 65534);
    assert_eq!(read(dir.path(), "out/run.sh"), format!("{t}\n"));
}

#[test]
fn ssh_agent_reaches_the_command() {
    let dir = configured_project(
        r#"local copy = std.native('copy');
{ apiVersion: 'brewkit/v1', targets: { all: { from: 'busybox', ssh: {},
  copy: copy('sshtools', '/sshtools'),
  command: 'LOADER=$(ls /sshtools/ld-linux*); $LOADER --library-path /sshtools /sshtools/ssh-add -l > /keys',
  output: '/keys:out' } } }"#,
        r#"{"entitlements": ["ssh"]}"#,
    );
    // The host's ssh-add and the libraries it loads, so that busybox can run it.
    let tools = dir.path().join("sshtools");
    fs::create_dir(&tools).unwrap();
    let ldd = Command::new("ldd")
        .arg("/usr/bin/ssh-add")
        .output()
        .unwrap();
    let mut files = vec!["/usr/bin/ssh-add".to_owned()];
    for line in String::from_utf8(ldd.stdout).unwrap().lines() {
        if let Some(path) = line.split_whitespace().find(|w| w.starts_with('/')) {
            files.push(path.to_owned());
        }
    }
    for file in files {
        fs::copy(&file, tools.join(Path::new(&file).file_name().unwrap())).unwrap();
    }
    let comment = format!("brewkit-build-{}", token());
    let key = dir.path().join("key");
    assert!(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", &comment, "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success());
    let socket = dir.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the agent listens", 10, || socket.exists());
    assert!(Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success());

    let (code, log) = outcome(
        build_command(dir.path())
            .env("SSH_AUTH_SOCK", &socket)
            .arg("--no-cache")
            .output()
            .unwrap(),
    );
    let (without_agent, without_log) = outcome(
        build_command(dir.path())
            .env_remove("SSH_AUTH_SOCK")
            .output()
            .unwrap(),
    );
    let _ = agent.kill();
    let _ = agent.wait();
    assert_eq!(code, 0, "{log}");
    assert!(
        read(dir.path(), "out/keys").contains(&comment),
        "ssh-add -l lists the key"
    );
    assert_eq!(without_agent, 2, "no agent is bad input: {without_log}");
    assert!(without_log.contains("SSH_AUTH_SOCK"), "{without_log}");
}

#[test]
fn pull_resolves_images_from_their_registry() {
    let registry = registry();
    let t = token();
    // The registry holds a newer image under the tag than the daemon's store: one with /marker.
    let image = format!("{registry}/brewkit-pull-{t}:latest");
    let container = format!("brewkit-pull-{t}");
    docker(&[
        "run",
        "--name",
        &container,
        "busybox:latest",
        "touch",
        "/marker",
    ]);
    docker(&["commit", &container, &image]);
    docker(&["rm", &container]);
    docker(&["push", &image]);
    docker(&["tag", "busybox:latest", &image]);
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{ all: {{ from: '{image}',
  command: 'if test -e /marker; then echo registry-{t}; else echo local-{t}; fi > /p', output: '/p:out' }} }} }}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        read(dir.path(), "out/p"),
        format!("local-{t}\n"),
        "without --pull the daemon's own image is used: {log}"
    );
    let (code, log) = build(dir.path(), &["--pull"]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        read(dir.path(), "out/p"),
        format!("registry-{t}\n"),
        "--pull resolves the tag in the registry: {log}"
    );
    docker(&["rmi", &image]);
}

#[test]
fn cache_du_and_clear() {
    let _cache = CACHE.write().unwrap_or_else(|e| e.into_inner());
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{ all: {{ from: 'busybox',
  command: 'head -c 3000000 /dev/urandom > /blob-{t}' }} }} }}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    let cache = |args: &[&str]| cache_command(dir.path(), args);
    // Only this test's records, so that other tests' caches stay.
    let filter = format!("description~={t}");
    let (code, text) = cache(&["du", "--verbose", "--filter", &filter]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("blob-{t}")), "{text}");
    assert!(text.contains("records:      1"), "{text}");
    assert!(text.contains("total:        3.0 MB"), "{text}");
    // BuildKit v0.8's prune ignores `description~=` filters but honours `id==`.
    let id = text
        .lines()
        .find(|l| l.contains(&format!("blob-{t}")))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let (code, text) = cache(&["clear", "--filter", &format!("id=={id}")]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(text, "freed 3.0 MB in 1 records\n");
    let (_, text) = cache(&["du", "--filter", &filter]);
    assert!(text.contains("records:      0"), "{text}");
    let (code, text) = cache(&["du"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("reclaimable:"), "{text}");
}

/// `brewkit cache ARGS` against the test backend, run in `dir`: its exit code and stdout.
fn cache_command(dir: &Path, args: &[&str]) -> (i32, String) {
    let output = brewkit_in(dir)
        .arg("cache")
        .args(args)
        .args(["--addr", &docker_address()])
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn cache_clear_keeps_a_record_an_image_uses_and_clear_all_removes_it() {
    let _cache = CACHE.write().unwrap_or_else(|e| e.into_inner());
    let t = token();
    let image = format!("brewkit-test-clear-all-{t}");
    /// Removes the image however the test ends.
    struct Image<'a>(&'a str);
    impl Drop for Image<'_> {
        fn drop(&mut self) {
            let config = tempfile::tempdir().unwrap();
            let _ = docker_command(config.path()).args(["rmi", self.0]).output();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM busybox\nRUN echo {t} > /f && head -c 2000000 /dev/urandom > /blob\n"),
    )
    .unwrap();
    // The RUN's record in the daemon's BuildKit holds a layer of an image in Docker's store:
    // BuildKit's prune counts it as shared, kept unless `-a`.
    docker(&["build", "-q", "-t", &image, &dir.path().to_string_lossy()]);
    let _image = Image(&image);
    let cache = |args: &[&str]| cache_command(dir.path(), args);
    let filter = format!("description~={t}");
    let (code, text) = cache(&["du", "--verbose", "--filter", &filter]);
    assert_eq!(code, 0, "{text}");
    let line = text
        .lines()
        .find(|l| l.contains(&format!("echo {t} > /f")))
        .unwrap_or_else(|| panic!("the RUN's record: {text}"))
        .to_owned();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[1..4], ["2.0", "MB", "shared"], "{text}");
    // Only this record, so that other tests' caches stay (v0.8's prune honours `id==`).
    let id = format!("id=={}", fields[0]);
    let (code, text) = cache(&["clear", "--filter", &id]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(text, "freed 0 B in 0 records\n");
    let (_, text) = cache(&["du", "--verbose", "--filter", &filter]);
    assert!(text.contains(&line), "clear kept the shared record: {text}");
    let (code, text) = cache(&["clear", "-a", "--filter", &id]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(text, "freed 2.0 MB in 1 records\n");
    let (_, text) = cache(&["du", "--filter", &filter]);
    assert!(text.contains("records:      0"), "{text}");
}

#[test]
fn a_var_on_the_host_network_gets_the_entitlement() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1',
  vars: {{ ifaces: {{ from: 'busybox', network: 'host', command: 'echo {t}; ls /sys/class/net' }} }},
  targets: {{ all: {{ from: 'busybox', command: 'echo "${{ifaces}}" > /v', output: '/v:out' }} }} }}"#
        ),
        r#"{"entitlements": ["network.host"]}"#,
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    let value = read(dir.path(), "out/v");
    assert!(value.starts_with(&t), "{value}");
    // On the host network the run sees the host's interfaces (the backend's dockerd shares
    // this machine's), not a container's lo and eth0. Other tests' containers come and go as
    // veth pairs, so those are left out of the comparison.
    let mut seen: Vec<&str> = value
        .lines()
        .skip(1)
        .filter(|name| !name.starts_with("veth"))
        .collect();
    seen.sort_unstable();
    let mut host: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with("veth"))
        .collect();
    host.sort();
    assert_eq!(seen, host, "{log}");
    assert!(
        host.len() > 2,
        "the host has more than lo and eth0: {host:?}"
    );
    assert!(
        log.contains("[var ifaces] DONE"),
        "var progress is shown under the var: {log}"
    );
}

/// A busybox image that is only in the test registry, under a new name: resolving it goes to
/// the registry, as on a cold daemon.
fn registry_only_image() -> String {
    let registry = registry();
    let image = format!("{registry}/brewkit-cold-{}:latest", token());
    docker(&["tag", "busybox:latest", &image]);
    docker(&["push", &image]);
    docker(&["rmi", &image]);
    image
}

#[test]
fn a_base_target_runs_once_on_a_cold_daemon_and_images_are_pinned() {
    let image = registry_only_image();
    let t = token();
    let dir = configured_project(
        &format!(
            r#"local cache = std.native('cache');
{{
  apiVersion: 'brewkit/v1',
  targets: {{
    all: ['build', 'check', 'count'],
    build: {{ from: '{image}', cache: cache('runs-{t}', '/runs'),
              command: 'echo run >> /runs/count; echo built-{t} > /b', output: '/b:out' }},
    check: {{ from: 'build', command: 'cat /b > /c', output: '/c:out' }},
    count: {{ from: 'busybox', dependsOn: ['check'], cache: cache('runs-{t}', '/runs'),
              command: 'wc -l < /runs/count > /n', output: '/n:out' }},
  }},
}}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(dir.path(), "out/c"), format!("built-{t}\n"));
    assert_eq!(
        read(dir.path(), "out/n").trim(),
        "1",
        "build's command ran once in one invocation: {log}"
    );
    assert!(
        log.contains(&format!("docker-image://docker.io/{image}@sha256:"))
            || log.contains(&format!("docker-image://{image}@sha256:")),
        "the image is pinned by digest: {log}"
    );
}

#[test]
fn composite_members_run_in_the_listed_order() {
    let t = token();
    let definition = format!(
        r#"local copy = std.native('copy');
{{
  apiVersion: 'brewkit/v1',
  targets: {{
    all: ['generate', 'build'],
    generate: {{ from: 'busybox', command: 'echo gen-{t} > /g.txt', output: '/g.txt:gen' }},
    build: {{ from: 'busybox', copy: copy('gen/g.txt', '/in.txt'), command: 'cat /in.txt > /o.txt',
              output: '/o.txt:out' }},
  }},
}}"#
    );
    // A clean checkout: build copies what generate writes, with no dependsOn.
    let clean = configured_project(&definition, "{}");
    let (code, log) = build(clean.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(clean.path(), "out/o.txt"), format!("gen-{t}\n"));
    // A stale file on disk is replaced before build reads it.
    let stale = configured_project(&definition, "{}");
    fs::create_dir(stale.path().join("gen")).unwrap();
    fs::write(stale.path().join("gen/g.txt"), "stale\n").unwrap();
    let (code, log) = build(stale.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(stale.path(), "out/o.txt"), format!("gen-{t}\n"));
}

/// Four independent targets that record when they ran (the host's uptime, which containers
/// share), built with `args`; returns each one's (start, end).
fn four_timed_targets(args: &[&str]) -> Vec<(f64, f64)> {
    let t = token();
    let targets: String = (1..=4)
        .map(|i| {
            format!(
                "s{i}: {{ from: 'busybox', command: 'cut -d\" \" -f1 /proc/uptime > /t; sleep 1.5; cut -d\" \" -f1 /proc/uptime >> /t # {t} {i}', output: '/t:out{i}' }},\n"
            )
        })
        .collect();
    let dir = configured_project(
        &format!(
            "{{ apiVersion: 'brewkit/v1', targets: {{ all: ['s1', 's2', 's3', 's4'],\n{targets} }} }}"
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), args);
    assert_eq!(code, 0, "{log}");
    (1..=4)
        .map(|i| {
            let text = read(dir.path(), &format!("out{i}/t"));
            let times: Vec<f64> = text.lines().map(|l| l.parse().unwrap()).collect();
            (times[0], times[1])
        })
        .collect()
}

#[test]
fn jobs_run_independent_targets_at_once_and_one_job_runs_them_in_turn() {
    let parallel = four_timed_targets(&["-j", "4"]);
    let latest_start = parallel.iter().map(|t| t.0).fold(f64::MIN, f64::max);
    let earliest_end = parallel.iter().map(|t| t.1).fold(f64::MAX, f64::min);
    assert!(
        latest_start < earliest_end,
        "with -j 4 all four run at once: {parallel:?}"
    );
    let serial = four_timed_targets(&[]);
    for pair in serial.windows(2) {
        assert!(
            pair[0].1 <= pair[1].0,
            "without -j, s1..s4 run one after another, in order: {serial:?}"
        );
    }
}

#[test]
fn keep_going_lets_a_sibling_of_a_failed_target_finish() {
    let definition = |t: &str| {
        format!(
            r#"{{
  apiVersion: 'brewkit/v1',
  targets: {{
    all: ['bad', 'slow', 'after'],
    bad: {{ from: 'busybox', command: 'echo failing-{t}; exit 3' }},
    slow: {{ from: 'busybox', command: 'sleep 2; echo slow-{t} > /s', output: '/s:out' }},
    after: {{ from: 'busybox', dependsOn: ['bad'], command: 'echo after-{t} > /a', output: '/a:after' }},
  }},
}}"#
        )
    };
    let t = token();
    let going = configured_project(&definition(&t), "{}");
    let (code, log) = build(going.path(), &["-j", "-k"]);
    assert_eq!(code, 1, "{log}");
    assert_eq!(read(going.path(), "out/s"), format!("slow-{t}\n"));
    assert!(
        !going.path().join("after").exists(),
        "after needs bad: {log}"
    );
    assert!(log.contains("bad failed"), "{log}");
    assert!(
        !log.contains("after failed"),
        "after was skipped, not failed: {log}"
    );
    let stopping = configured_project(&definition(&token()), "{}");
    let (code, log) = build(stopping.path(), &["-j"]);
    assert_eq!(code, 1, "{log}");
    assert!(
        !stopping.path().join("out/s").exists(),
        "without -k the running sibling is cancelled: {log}"
    );
}

#[test]
fn the_context_is_sent_once_per_build_and_copies_stay_cached_by_content() {
    let _cache = CACHE.read();
    let t = token();
    let dir = configured_project(
        &format!(
            r#"local copy = std.native('copy');
{{
  apiVersion: 'brewkit/v1',
  targets: {{
    all: ['a', 'b', 'c'],
    a: {{ from: 'busybox', copy: copy('a.txt', '/a.txt'), command: 'cat /a.txt > /o # {t}', output: '/o:out/a' }},
    b: {{ from: 'a', copy: copy('b.txt', '/b.txt'), command: 'cat /b.txt > /o', output: '/o:out/b' }},
    c: {{ from: 'busybox', copy: copy('sub', '/sub'), command: 'cat /sub/c.txt > /o # {t}', output: '/o:out/c' }},
  }},
}}"#
        ),
        "{}",
    );
    fs::write(dir.path().join("a.txt"), "a1\n").unwrap();
    fs::write(dir.path().join("b.txt"), "b1\n").unwrap();
    fs::create_dir(dir.path().join("sub")).unwrap();
    fs::write(dir.path().join("sub/c.txt"), "c1\n").unwrap();
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    let transfers = |log: &str| {
        log.lines()
            .filter(|l| {
                l.contains("] context ") && !l.contains(" DONE ") && !l.contains(" CACHED ")
            })
            .count()
    };
    assert_eq!(
        transfers(&log),
        1,
        "one context transfer for three copies: {log}"
    );
    assert_eq!(read(dir.path(), "out/b/o"), "b1\n");

    // A changed file runs again only what copies it.
    fs::write(dir.path().join("b.txt"), "b2\n").unwrap();
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(dir.path(), "out/b/o"), "b2\n");
    assert!(log.contains("[a] CACHED copy a.txt /a.txt"), "{log}");
    assert!(log.contains("[c] CACHED copy sub /sub"), "{log}");
    assert!(!log.contains("[b] CACHED copy b.txt /b.txt"), "{log}");
}

/// Every `.brewkit-tmp-*` entry under `dir`, at any depth.
fn temporary_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(".brewkit-tmp-")
            {
                found.push(path.clone());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    found
}

#[test]
fn sigterm_during_an_export_exits_143_and_leaves_no_temporary_file() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{ all: {{ from: 'busybox',
  command: 'echo {t} > /t && head -c 209715200 /dev/zero > /big', output: '/big:out' }} }} }}"#
        ),
        "{}",
    );
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = build_command(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let log_text = || fs::read_to_string(log.path()).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while temporary_files(dir.path()).is_empty() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "brewkit exited ({status}) before its export was seen writing: {}",
                log_text()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the export starts within 120 s: {}",
            log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    signal(&child, "TERM");
    let status = wait_at_most(&mut child, 60);
    assert_eq!(status.code(), Some(143), "{status}: {}", log_text());
    assert!(log_text().contains("SIGTERM"), "{}", log_text());
    assert_eq!(
        temporary_files(dir.path()),
        Vec::<std::path::PathBuf>::new(),
        "no temporary file is left"
    );
}

#[test]
fn sighup_cancels_the_build_and_exits_129() {
    let t = token();
    // As above: the shell waits, with the token in its command line.
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{ all: {{ from: 'busybox',
  command: 'echo {t}; sleep 30 & wait' }} }} }}"#
        ),
        "{}",
    );
    let mut child = build_command(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the command starts", 60, || process_with(&t));
    let sent = std::time::Instant::now();
    signal(&child, "HUP");
    let status = wait_at_most(&mut child, 20);
    assert_eq!(status.code(), Some(129), "{status}");
    assert!(
        sent.elapsed() < std::time::Duration::from_secs(10),
        "exits promptly, not after the command: {:?}",
        sent.elapsed()
    );
    wait_until("the container stops", 30, || !process_with(&t));
}

#[test]
fn a_fifo_secret_is_refused_before_anything_runs() {
    let dir = configured_project(
        r#"local secret = std.native('secret');
{ apiVersion: 'brewkit/v1', targets: { all: { from: 'busybox', secrets: secret('pipe', '/run/secrets/pipe'), command: 'cat /run/secrets/pipe' } } }"#,
        r#"{"secrets": [{"id": "pipe", "path": "${BREWKIT_TEST_SECRET_DIR}/pipe"}]}"#,
    );
    let fifo = dir.path().join("pipe");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = build_command(dir.path())
        .env("BREWKIT_TEST_SECRET_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let status = wait_at_most(&mut child, 20);
    let log = fs::read_to_string(log.path()).unwrap();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("secret \"pipe\""), "{log}");
    assert!(log.contains("target \"all\""), "{log}");
    assert!(log.contains(&fifo.display().to_string()), "{log}");
}

#[test]
fn a_huge_var_value_in_a_failing_command_gives_a_short_message() {
    let t = token();
    // 100 kB: the most a var can be in a command (Linux refuses an argument over 128 KiB), and
    // the command's error quotes a path made of it.
    let dir = configured_project(
        &format!(
            r#"{{
  apiVersion: 'brewkit/v1',
  vars: {{ big: {{ from: 'busybox', command: 'echo {t} >/dev/null; head -c 100000 /dev/zero | tr "\\0" a' }} }},
  targets: {{ all: {{ from: 'busybox', command: 'cat /${{big}}' }} }},
}}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    let error = log
        .lines()
        .skip_while(|l| !l.starts_with("brewkit: "))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(code, 1, "{}", &log[..log.len().min(4000)]);
    assert!(
        error.len() < 8 * 1024,
        "{} bytes: {}",
        error.len(),
        &error[..error.len().min(4000)]
    );
    assert!(error.contains("bytes)"), "{error}");
}

#[test]
fn outputs_leave_the_modes_of_existing_directories_alone() {
    use std::os::unix::fs::PermissionsExt;
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{
  apiVersion: 'brewkit/v1',
  targets: {{
    all: {{ from: 'busybox', command: 'mkdir -p /o/a /o/b /o/c && echo {t} > /o/a/f && echo b > /o/b/f && echo c > /o/c/f && chmod 750 /o/c',
            output: ['/o/a:shared/out1', '/o/b:private/out2', '/o/c:new'] }},
  }},
}}"#
        ),
        "{}",
    );
    for (name, mode) in [("shared", 0o1777), ("private", 0o700)] {
        let path = dir.path().join(name);
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(dir.path(), "shared/out1/f"), format!("{t}\n"));
    assert_eq!(read(dir.path(), "private/out2/f"), "b\n");
    let mode = |rel: &str| {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(dir.path().join(rel)).unwrap().mode() & 0o7777
    };
    assert_eq!(mode("shared"), 0o1777, "{log}");
    assert_eq!(mode("private"), 0o700, "{log}");
}

/// Builds `targets` (which receive the victim directory and a token) and checks that the
/// output into `out/d/evil`, a symlink to the victim an earlier output made, was refused: the
/// symlink is kept, nothing reached the victim or a path inside the exported tree. Returns the
/// log.
fn symlink_refused(targets: impl Fn(&str, &str) -> String) -> String {
    let victim = tempfile::tempdir().unwrap();
    let t = token();
    let dir = configured_project(
        &format!(
            "{{ apiVersion: 'brewkit/v1', targets: {{ {} }} }}",
            targets(&victim.path().display().to_string(), &t)
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(
        fs::symlink_metadata(dir.path().join("out/d/evil"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "{log}"
    );
    assert_eq!(fs::read_dir(victim.path()).unwrap().count(), 0, "{log}");
    assert!(!dir.path().join("out/tmp").exists(), "{log}");
    assert!(
        log.contains("is a symlink, which is never followed"),
        "{log}"
    );
    log
}

#[test]
fn an_exported_symlink_is_never_followed_by_a_later_output() {
    let log = symlink_refused(|victim, t| {
        format!(
            "all: ['link', 'write'],
    link: {{ from: 'busybox', command: 'mkdir -p /x/d && ln -s {victim} /x/d/evil # {t}', output: '/x:out' }},
    write: {{ from: 'busybox', dependsOn: ['link'], command: 'echo pwned > /p # {t}', output: '/p:out/d/evil' }},"
        )
    });
    assert!(
        log.contains("[write]") || log.contains("target \"write\"") || log.contains("write:"),
        "{log}"
    );
}

#[test]
fn a_targets_own_output_never_follows_a_symlink_its_other_output_made() {
    symlink_refused(|victim, t| {
        format!(
            "all: {{ from: 'busybox', command: 'mkdir -p /x/d && ln -s {victim} /x/d/evil && echo pwned > /p # {t}',
            output: ['/x:out', '/p:out/d/evil'] }},"
        )
    });
}

#[test]
fn targets_exporting_into_one_folder_at_once_all_succeed() {
    let _cache = CACHE.read();
    let t = token();
    let targets: String = (1..=4)
        .map(|i| {
            format!(
                "    t{i}: {{ from: 'busybox', command: 'mkdir -p /d/share/doc/t{i} && echo {i} > /d/share/doc/t{i}/README && echo {i} > /d/share/doc/common # {t}', output: '/d:dist' }},\n"
            )
        })
        .collect();
    let dir = configured_project(
        &format!(
            "{{ apiVersion: 'brewkit/v1', targets: {{\n    all: ['t1', 't2', 't3', 't4'],\n{targets}}} }}"
        ),
        "{}",
    );
    for run in 0..10 {
        let (code, log) = build(dir.path(), &["-j", "4"]);
        assert_eq!(code, 0, "run {run}: {log}");
        for i in 1..=4 {
            assert_eq!(
                read(dir.path(), &format!("dist/share/doc/t{i}/README")),
                format!("{i}\n")
            );
        }
        // Outputs land in plan order: the last target's file wins the collision.
        assert_eq!(
            read(dir.path(), "dist/share/doc/common"),
            "4\n",
            "run {run}"
        );
    }
}

#[test]
fn a_failed_output_leaves_no_directory_it_created() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{
    all: {{ from: 'busybox', command: 'true # {t}', output: '/missing:out/new/deeper' }},
}} }}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(!dir.path().join("out").exists(), "{log}");
}

#[test]
fn outputs_outside_the_project_and_ssh_need_the_hosts_consent() {
    let t = token();
    let outside = tempfile::tempdir().unwrap();
    let dest = outside.path().join("dist");
    let definition = format!(
        r#"{{ apiVersion: 'brewkit/v1', targets: {{
    all: {{ from: 'busybox', command: 'echo {t} > /o', output: '/o:{}' }},
}} }}"#,
        dest.display()
    );
    let dir = configured_project(&definition, "{}");
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("outside the project directory"), "{log}");
    assert!(
        log.contains(&format!("\"fs.write={}\"", dest.display())),
        "{log}"
    );
    assert!(
        !log.contains(&format!("echo {t}")),
        "refused before anything runs: {log}"
    );
    assert!(!dest.exists());

    // Granted for a directory holding it: written.
    let config = format!(
        r#"{{"entitlements": ["fs.write={}"]}}"#,
        outside.path().display()
    );
    fs::write(dir.path().join("config.json"), config).unwrap();
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(&dest, "o"), format!("{t}\n"));

    // `..` out of the project is outside too.
    let dir = configured_project(
        r#"{ apiVersion: 'brewkit/v1', targets: { all: { from: 'busybox', command: 'true', output: '/etc/hostname:../up' } } }"#,
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("outside the project directory"), "{log}");

    // ssh without the entitlement.
    let dir = configured_project(
        r#"{ apiVersion: 'brewkit/v1', targets: { all: { from: 'busybox', ssh: {}, command: 'true' } } }"#,
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("ssh needs the \"ssh\" entitlement"), "{log}");
}

#[test]
fn a_target_with_two_thousand_copies_builds() {
    // Each copy used to be a file op of its own, one snapshot each: past about 128, overlayfs
    // refused to stack them ("max depth exceeded"), and marshalling them recursively overflowed
    // the stack. A run's copies are one file op now.
    let t = token();
    let copies: String = (0..2000).map(|i| format!("copy('f', '/c/{i}'),")).collect();
    let dir = configured_project(
        &format!(
            "local copy = std.native('copy');\n{{ apiVersion: 'brewkit/v1', targets: {{ all: {{ from: 'busybox', copy: [{copies}], command: 'ls /c | wc -l > /n # {t}', output: '/n:out' }} }} }}"
        ),
        "{}",
    );
    fs::write(dir.path().join("f"), "x").unwrap();
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(dir.path(), "out/n").trim(), "2000");
}

#[test]
fn copy_sources_dot_dir_slash_absolute_and_empty_wildcards() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"local copy = std.native('copy');
{{
  apiVersion: 'brewkit/v1',
  targets: {{
    all: ['whole', 'dotslash', 'dirslash', 'absolute', 'empty'],
    whole: {{ from: 'busybox', copy: copy('.', '/w'), command: 'cd /w && find . -type f | sort > /list # {t}', output: '/list:out/whole' }},
    dotslash: {{ from: 'busybox', workdir: '/d', copy: copy('./', '.'), command: 'find . -type f | sort > /list # {t}', output: '/list:out/dotslash' }},
    dirslash: {{ from: 'busybox', copy: copy('src/', '/s'), command: 'cd /s && find . -type f | sort > /list # {t}', output: '/list:out/dirslash' }},
    absolute: {{ from: 'busybox', copy: [copy('/a.txt', '/abs/'), copy('/src/nested', '/n/')], command: 'find /abs /n -type f | sort > /list # {t}', output: '/list:out/absolute' }},
    empty: {{ from: 'busybox', copy: [copy('*.none', '/e/'), copy('src/*.txt', '/t/')], command: 'find /t -type f | sort > /list; test ! -e /e/x # {t}', output: '/list:out/empty' }},
  }},
}}"#
        ),
        "{}",
    );
    let root = dir.path();
    fs::write(root.join("a.txt"), "a").unwrap();
    fs::write(root.join(".hidden"), "h").unwrap();
    fs::create_dir_all(root.join("src/nested/deep")).unwrap();
    fs::write(root.join("src/x.txt"), "x").unwrap();
    fs::write(root.join("src/.dot"), "d").unwrap();
    fs::write(root.join("src/nested/deep/y.txt"), "y").unwrap();
    let (code, log) = build(root, &[]);
    assert_eq!(code, 0, "{log}");
    let lines = |name: &str| -> Vec<String> {
        read(root, &format!("out/{name}/list"))
            .lines()
            .map(str::to_owned)
            .collect()
    };
    for name in ["whole", "dotslash"] {
        let list = lines(name);
        for file in [
            "./a.txt",
            "./.hidden",
            "./brewkit.jsonnet",
            "./src/x.txt",
            "./src/.dot",
            "./src/nested/deep/y.txt",
        ] {
            assert!(
                list.contains(&file.to_owned()),
                "{name}: {file} in {list:?}\n{log}"
            );
        }
    }
    assert_eq!(
        lines("dirslash"),
        ["./.dot", "./nested/deep/y.txt", "./x.txt"],
        "a directory's contents, dotfiles and nested directories included"
    );
    assert_eq!(lines("absolute"), ["/abs/a.txt", "/n/deep/y.txt"]);
    assert_eq!(lines("empty"), ["/t/x.txt"]);
    assert!(
        log.contains("[empty] WARNING copy *.none /e/: the wildcard matches nothing"),
        "{log}"
    );
    assert!(!log.contains("src/*.txt /t/: the wildcard"), "{log}");
}

#[test]
fn a_failed_var_shows_its_own_command() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1',
  vars: {{ v: {{ from: 'busybox', command: 'echo {t}; exit 3' }} }},
  targets: {{ all: {{ from: 'busybox', command: 'echo ${{v}}' }} }} }}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 1, "{log}");
    assert!(log.contains(&format!("`echo {t}; exit 3`")), "{log}");
    assert!(!log.contains(".brewkit-var"), "no wrapper of ours: {log}");
}

#[test]
fn a_definition_from_stdin_builds_with_the_current_directory_as_context() {
    use std::io::Write as _;
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello");
    let definition = fs::read_to_string(example.join("brewkit.jsonnet")).unwrap();
    for file in ["-", "/dev/stdin"] {
        let dir = tempfile::tempdir().unwrap();
        fs::copy(example.join("name.txt"), dir.path().join("name.txt")).unwrap();
        fs::write(dir.path().join("config.json"), "{}").unwrap();
        let mut child = build_command(dir.path())
            .args(["-f", file])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(definition.as_bytes())
            .unwrap();
        let (code, log) = outcome(child.wait_with_output().unwrap());
        assert_eq!(code, 0, "-f {file}: {log}");
        assert_eq!(read(dir.path(), "out/greeting.txt"), "hello, BrewKit\n");
    }
}

/// Three targets at once: `ok` is done quickly, `bad` fails a moment later (its last line
/// redrawn with `\r`), `slow` is still running then and is cancelled; `all` never starts.
fn one_failure_and_one_cancellation() -> (tempfile::TempDir, String) {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{
  all: ['ok', 'bad', 'slow'],
  ok: {{ from: 'busybox', command: 'echo ok-{t}' }},
  bad: {{ from: 'busybox', command: 'echo failing-{t}; sleep 1; printf "50%%\\r100%%\\n"; exit 3' }},
  slow: {{ from: 'busybox', command: 'sleep 20; echo slow-{t}' }},
}} }}"#
        ),
        "{}",
    );
    (dir, t)
}

#[test]
fn json_progress_stays_one_object_a_line_on_a_failure() {
    let (dir, t) = one_failure_and_one_cancellation();
    let output = brewkit_in(dir.path())
        .env("BREWKIT_CONFIG", dir.path().join("config.json"))
        .args([
            "build",
            "--addr",
            &docker_address(),
            "--progress",
            "json",
            "-j",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?} in {stderr}")))
        .collect();
    for event in &events {
        assert_eq!(event["v"], 1, "{event}");
        assert!(
            event["time"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{event}"
        );
    }
    let of = |kind: &'static str| events.iter().filter(move |e| e["type"] == kind);
    let failed: Vec<_> = of("failed").collect();
    assert_eq!(failed.len(), 1, "{stderr}");
    assert_eq!(failed[0]["target"], "bad");
    assert_eq!(failed[0]["exitCode"], 3);
    assert!(failed[0]["command"]
        .as_str()
        .unwrap()
        .starts_with("echo failing-"));
    assert_eq!(failed[0]["logTail"][0], format!("failing-{t}"), "{stderr}");
    assert_eq!(
        failed[0]["logTail"][1], "100%",
        "the text after \\r: {stderr}"
    );
    assert!(of("cancelled").any(|e| e["target"] == "slow"), "{stderr}");
    assert!(
        of("log").any(|e| e["line"] == format!("ok-{t}") && e["target"] == "ok"),
        "{stderr}"
    );
    assert_eq!(events[events.len() - 2]["type"], "error", "{stderr}");
    assert_eq!(events[events.len() - 2]["exitCode"], 1, "{stderr}");
    let result = events.last().unwrap();
    assert_eq!(result["type"], "result", "{stderr}");
    assert_eq!(result["status"], "failed");
    assert_eq!(result["counts"]["done"], 1, "{result}");
    assert_eq!(result["counts"]["failed"], 1, "{result}");
    assert_eq!(result["counts"]["cancelled"], 1, "{result}");
    assert_eq!(result["counts"]["skipped"], 1, "{result}");
}

#[test]
fn plain_summary_under_jobs_names_the_failure_and_marks_the_cancellation() {
    let (dir, t) = one_failure_and_one_cancellation();
    let (code, log) = build(dir.path(), &["-j"]);
    assert_eq!(code, 1, "{log}");
    let summary = log
        .lines()
        .find(|l| l.starts_with("4 targets: "))
        .unwrap_or_else(|| panic!("no summary: {log}"));
    assert!(
        summary.starts_with("4 targets: 1 done, 1 failed (bad), 1 cancelled, 1 skipped in "),
        "{summary}"
    );
    assert!(log.contains("[slow] CANCELED"), "{log}");
    assert!(log.contains("[bad] ERROR exit code: 3\n"), "{log}");
    assert_eq!(
        log.matches(&format!("echo failing-{t}; sleep 1")).count(),
        2,
        "the command once at its step, once in the error: {log}"
    );
    assert!(!log.contains("/bin/sh -c"), "{log}");
    let line = log
        .lines()
        .find(|l| l.starts_with("[ok] ") && l.ends_with(&format!(" | ok-{t}")))
        .unwrap_or_else(|| panic!("{log}"));
    let seconds = line["[ok] ".len()..].split(' ').next().unwrap();
    assert!(seconds.parse::<f64>().is_ok(), "elapsed seconds: {line}");
    assert!(log.contains("[bad] "), "{log}");
    assert!(
        log.lines()
            .any(|l| l.starts_with("[bad] ") && l.ends_with(" | 100%")),
        "the text after the last \\r: {log}"
    );
    // The summary comes before the error, which ends the output.
    let at = log.find(summary).unwrap();
    assert!(log[at..].contains("brewkit: bad failed running"), "{log}");
}

#[test]
fn github_actions_groups_each_target_and_annotates_the_failure() {
    let (dir, _) = one_failure_and_one_cancellation();
    let output = build_command(dir.path())
        .env("GITHUB_ACTIONS", "true")
        .args(["-j"])
        .output()
        .unwrap();
    let (code, log) = outcome(output);
    assert_eq!(code, 1, "{log}");
    for group in ["ok", "bad", "slow"] {
        assert_eq!(
            log.matches(&format!("::group::{group}\n")).count(),
            1,
            "{log}"
        );
    }
    assert_eq!(
        log.matches("::group::").count(),
        log.matches("::endgroup::").count(),
        "{log}"
    );
    let error = log
        .lines()
        .find(|l| l.starts_with("::error title=bad failed::"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        error.contains("exit code: 3%0Alast 2 log lines:%0A"),
        "{error}"
    );
    assert!(error.ends_with("%0A100%25"), "% escaped: {error}");
    let bad = log.find("::group::bad").unwrap();
    let end = bad + log[bad..].find("::endgroup::").unwrap();
    assert!(log[bad..end].contains("[bad] failed in"), "{log}");
}

#[test]
fn rawjson_prints_buildkits_status_as_buildctl_does() {
    let t = token();
    let dir = configured_project(
        &format!(
            "{{ apiVersion: 'brewkit/v1', targets: {{ all: {{ from: 'busybox', command: 'echo raw-{t}' }} }} }}"
        ),
        "{}",
    );
    // BUILDKIT_PROGRESS sets the mode when --progress is not given.
    let output = brewkit_in(dir.path())
        .env("BREWKIT_CONFIG", dir.path().join("config.json"))
        .env("BUILDKIT_PROGRESS", "rawjson")
        .args(["build", "--addr", &docker_address()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let statuses: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(
        statuses.iter().any(|s| s["vertexes"]
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v["name"] == format!("echo raw-{t}")
                && v["digest"].as_str().unwrap().starts_with("sha256:")))),
        "{stderr}"
    );
    // Log data is base64, as Go encodes bytes.
    let logged = format!("raw-{t}\n");
    assert!(
        statuses
            .iter()
            .flat_map(|s| s["logs"].as_array().cloned().unwrap_or_default())
            .any(|l| l["data"]
                .as_str()
                .is_some_and(|d| base64_decode(d) == logged.as_bytes())),
        "{stderr}"
    );
}

/// Standard base64, decoded without a crate of its own.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.bytes().filter(|&b| b != b'=') {
        let value = ALPHABET.iter().position(|&a| a == byte).unwrap() as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

/// A docker-registry on a port of its own behind basic auth (user `brewkit`, password `s3cret`),
/// holding `image` (pushed through the backend's docker, then removed from the daemon so that
/// builds must pull it). Stopped when dropped. The daemon pulls from it over plain HTTP because
/// Docker marks registries on 127.0.0.0/8 insecure by itself.
struct AuthRegistry {
    child: std::process::Child,
    addr: String,
    image: String,
    _dir: tempfile::TempDir,
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const REGISTRY_USER: &str = "brewkit";
const REGISTRY_PASSWORD: &str = "s3cret";

fn auth_registry() -> AuthRegistry {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = Command::new("htpasswd")
        .args(["-Bbn", REGISTRY_USER, REGISTRY_PASSWORD])
        .output()
        .expect("htpasswd (apache2-utils; scripts/backend up installs it)");
    assert!(htpasswd.status.success(), "{htpasswd:?}");
    fs::write(dir.path().join("htpasswd"), &htpasswd.stdout).unwrap();
    // The kernel picks the port, the registry takes it over right away.
    let addr = format!("127.0.0.1:{}", free_port());
    let root = dir.path();
    fs::write(
        root.join("config.yml"),
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {data}\n\
             http:\n  addr: {addr}\nauth:\n  htpasswd:\n    realm: brewkit-test\n    path: {htpasswd}\n",
            data = root.join("data").display(),
            htpasswd = root.join("htpasswd").display(),
        ),
    )
    .unwrap();
    let log = fs::File::create(root.join("registry.log")).unwrap();
    let child = Command::new("/usr/bin/docker-registry")
        .arg("serve")
        .arg(root.join("config.yml"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let registry = AuthRegistry {
        child,
        addr: addr.clone(),
        image: format!("{addr}/private-{}:latest", token()),
        _dir: dir,
    };
    wait_until("the auth registry answers", 20, || {
        std::net::TcpStream::connect(&addr).is_ok()
    });
    // The docker CLI logs in with a config dir of its own, pushes, and forgets the image.
    let host = docker_host();
    let config = tempfile::tempdir().unwrap();
    let docker = |args: &[&str]| {
        let output = Command::new("/usr/bin/docker")
            .env("DOCKER_CONFIG", config.path())
            .args(["-H", &host])
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "docker {args:?}: {output:?}");
    };
    docker(&["login", "-u", REGISTRY_USER, "-p", REGISTRY_PASSWORD, &addr]);
    docker(&["tag", "busybox:latest", &registry.image]);
    docker(&["push", &registry.image]);
    docker(&["rmi", &registry.image]);
    registry
}

/// A `DOCKER_CONFIG` directory holding `config`, and a directory for PATH holding
/// `docker-credential-test`, which answers for `registry` with the registry's user and password
/// and records each server it is asked about in `asked`.
fn docker_config_and_helper(config: &str, registry: &str) -> (tempfile::TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("docker")).unwrap();
    fs::write(dir.path().join("docker/config.json"), config).unwrap();
    let bin = dir.path().join("bin");
    fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-test");
    fs::write(
        &helper,
        format!(
            r#"#!/bin/sh
[ "$1" = get ] || exit 2
server=$(cat)
echo "$server" >> {asked}
if [ "$server" = "{registry}" ]; then
  printf '{{"ServerURL":"%s","Username":"{REGISTRY_USER}","Secret":"{REGISTRY_PASSWORD}"}}\n' "$server"
else
  echo "credentials not found in native keychain"
  exit 1
fi
"#,
            asked = dir.path().join("asked").display(),
        ),
    )
    .unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (dir, path)
}

/// `brewkit build --pull` of a target `from` `image`, with the docker config in `docker_dir`
/// and `path` as PATH.
fn build_from_private(image: &str, docker_dir: &Path, path: &str) -> (i32, String) {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{ all: {{ from: '{image}',
  command: 'echo private-{t} > /p', output: '/p:out' }} }} }}"#
        ),
        "{}",
    );
    let (code, log) = outcome(
        build_command(dir.path())
            .env("DOCKER_CONFIG", docker_dir.join("docker"))
            .env("PATH", path)
            .arg("--pull")
            .output()
            .unwrap(),
    );
    if code == 0 {
        assert_eq!(read(dir.path(), "out/p"), format!("private-{t}\n"));
    }
    (code, log)
}

#[test]
fn a_credential_helper_answers_for_a_private_registry() {
    let registry = auth_registry();
    let config = format!(r#"{{"credHelpers": {{"{}": "test"}}}}"#, registry.addr);
    let (dir, path) = docker_config_and_helper(&config, &registry.addr);
    let (code, log) = build_from_private(&registry.image, dir.path(), &path);
    assert_eq!(code, 0, "{log}");
    let asked = read(dir.path(), "asked");
    assert!(
        asked.lines().all(|l| l == registry.addr),
        "the helper is asked about the registry host: {asked}"
    );
    // credsStore comes after credHelpers, and the file's auths are not read when a store is set.
    let config = format!(
        r#"{{"credsStore": "test", "auths": {{"{}": {{"auth": "bm86bm8="}}}}}}"#,
        registry.addr
    );
    let (dir, path) = docker_config_and_helper(&config, &registry.addr);
    let (code, log) = build_from_private(&registry.image, dir.path(), &path);
    assert_eq!(code, 0, "{log}");
}

#[test]
fn a_missing_credential_helper_is_named_with_the_fix() {
    let registry = auth_registry();
    let (dir, path) = docker_config_and_helper(r#"{"credsStore": "missing"}"#, &registry.addr);
    let (code, log) = build_from_private(&registry.image, dir.path(), &path);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains("docker-credential-missing is not installed"),
        "{log}"
    );
    let config = dir.path().join("docker/config.json");
    assert!(
        log.contains(&format!(
            "install docker-credential-missing or remove \"credsStore\" from {}",
            config.display()
        )),
        "{log}"
    );
    assert!(
        !log.contains("docker login"),
        "no misleading login hint: {log}"
    );
    // A config that is not JSON is said to be so, not taken as no credentials.
    fs::write(&config, r#"{"auths": "#).unwrap();
    let (code, log) = build_from_private(&registry.image, dir.path(), &path);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains(&format!("cannot read {}: not JSON", config.display())),
        "{log}"
    );
}

#[test]
fn a_pull_without_credentials_says_how_to_log_in() {
    let registry = auth_registry();
    let (dir, path) = docker_config_and_helper("{}", &registry.addr);
    let (code, log) = build_from_private(&registry.image, dir.path(), &path);
    assert_eq!(code, 1, "{log}");
    assert!(
        log.contains(&format!("log in with \"docker login {}\"", registry.addr)),
        "{log}"
    );
}

/// SHA-256 of `bytes` in hex, through coreutils' sha256sum.
fn sha256_hex(bytes: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()[..64].to_owned()
}

/// One request to the test registry's HTTP API through curl: status, body, response headers.
fn registry_request(
    method: &str,
    url: &str,
    content_type: Option<&str>,
    body: Option<&[u8]>,
) -> (u16, Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let (headers, response) = (dir.path().join("headers"), dir.path().join("body"));
    let mut command = Command::new("curl");
    command
        .args(["-sS", "-X", method, "-D"])
        .arg(&headers)
        .arg("-o")
        .arg(&response)
        .args(["-w", "%{http_code}"])
        .args([
            "-H",
            "Accept: application/vnd.docker.distribution.manifest.v2+json",
        ]);
    if let Some(content_type) = content_type {
        command.args(["-H", &format!("Content-Type: {content_type}")]);
    }
    if let Some(body) = body {
        let request = dir.path().join("request");
        fs::write(&request, body).unwrap();
        command
            .arg("--data-binary")
            .arg(format!("@{}", request.display()));
    }
    let output = command.arg(url).output().unwrap();
    assert!(
        output.status.success(),
        "curl -X {method} {url}: {output:?}"
    );
    (
        String::from_utf8_lossy(&output.stdout).parse().unwrap(),
        fs::read(&response).unwrap_or_default(),
        fs::read_to_string(&headers).unwrap_or_default(),
    )
}

/// Uploads `bytes` as a blob of `repository` in the test registry; returns its digest.
fn push_blob(repository: &str, bytes: &[u8]) -> String {
    let registry = registry();
    let digest = format!("sha256:{}", sha256_hex(bytes));
    let (status, _, headers) = registry_request(
        "POST",
        &format!("http://{registry}/v2/{repository}/blobs/uploads/"),
        None,
        None,
    );
    assert_eq!(status, 202, "{headers}");
    let location = headers
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("location").then(|| value.trim())
        })
        .unwrap_or_else(|| panic!("no Location: {headers}"));
    let url = if location.starts_with("http") {
        location.to_owned()
    } else {
        format!("http://{registry}{location}")
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    let (status, body, _) = registry_request(
        "PUT",
        &format!("{url}{separator}digest={digest}"),
        Some("application/octet-stream"),
        Some(bytes),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    digest
}

/// A gzipped layer holding `files` (path, content): its bytes and its diff id (the digest of
/// the tar).
fn layer(files: &[(&str, &str)]) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    for (path, content) in files {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
    let tar = Command::new("tar")
        .args(["--owner=0", "--group=0", "--numeric-owner", "-C"])
        .arg(&root)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(tar.status.success(), "{tar:?}");
    fs::write(dir.path().join("layer.tar"), &tar.stdout).unwrap();
    let gzip = Command::new("gzip")
        .args(["-n", "-c"])
        .arg(dir.path().join("layer.tar"))
        .output()
        .unwrap();
    assert!(gzip.status.success(), "{gzip:?}");
    (gzip.stdout, format!("sha256:{}", sha256_hex(&tar.stdout)))
}

/// Pushes to the test registry an index of two images: busybox for linux/amd64 and a copy of
/// it labelled linux/arm64 (the daemon's amd64 binaries, so only files are read from it), each
/// with a layer of its own holding `/platform` (`amd64-TOKEN`, `arm64-TOKEN`). The arm64 config
/// differs too: its working directory is `/arm64`, where its layer puts `here`. Returns the
/// image and the index's digest.
fn push_two_platform_index(t: &str) -> (String, String) {
    let registry = registry();
    let repository = format!("brewkit-platform-{t}");
    let (status, body, _) = registry_request(
        "GET",
        &format!("http://{registry}/v2/busybox/manifests/latest"),
        None,
        None,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let busybox: serde_json::Value = serde_json::from_slice(&body).unwrap();
    // The busybox layers are mounted from the busybox repository, not uploaded again.
    for layer in busybox["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        let (status, _, headers) = registry_request(
            "POST",
            &format!(
                "http://{registry}/v2/{repository}/blobs/uploads/?mount={digest}&from=busybox"
            ),
            None,
            None,
        );
        assert_eq!(status, 201, "mount {digest}: {headers}");
    }
    let (status, config, _) = registry_request(
        "GET",
        &format!(
            "http://{registry}/v2/busybox/blobs/{}",
            busybox["config"]["digest"].as_str().unwrap()
        ),
        None,
        None,
    );
    assert_eq!(status, 200);
    let config: serde_json::Value = serde_json::from_slice(&config).unwrap();

    let mut manifests = Vec::new();
    for arch in ["amd64", "arm64"] {
        let marker = format!("{arch}-{t}\n");
        let mut files = vec![("platform", marker.as_str())];
        let here = format!("arm64-config-{t}\n");
        if arch == "arm64" {
            files.push(("arm64/here", here.as_str()));
        }
        let (bytes, diff_id) = layer(&files);
        let layer_digest = push_blob(&repository, &bytes);
        let mut config = config.clone();
        config["architecture"] = arch.into();
        config["rootfs"]["diff_ids"]
            .as_array_mut()
            .unwrap()
            .push(diff_id.into());
        if let Some(history) = config["history"].as_array_mut() {
            history.push(serde_json::json!({"created_by": format!("brewkit test: {arch}")}));
        }
        if arch == "arm64" {
            config["config"]["WorkingDir"] = "/arm64".into();
        }
        let config = serde_json::to_vec(&config).unwrap();
        let config_digest = push_blob(&repository, &config);
        let mut layers = busybox["layers"].as_array().unwrap().clone();
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": bytes.len(),
            "digest": layer_digest,
        }));
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": config.len(),
                "digest": config_digest,
            },
            "layers": layers,
        }))
        .unwrap();
        let digest = format!("sha256:{}", sha256_hex(&manifest));
        let (status, body, _) = registry_request(
            "PUT",
            &format!("http://{registry}/v2/{repository}/manifests/{digest}"),
            Some("application/vnd.docker.distribution.manifest.v2+json"),
            Some(&manifest),
        );
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": manifest.len(),
            "digest": digest,
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": manifests,
    }))
    .unwrap();
    let (status, body, _) = registry_request(
        "PUT",
        &format!("http://{registry}/v2/{repository}/manifests/latest"),
        Some("application/vnd.docker.distribution.manifest.list.v2+json"),
        Some(&index),
    );
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    (
        format!("{registry}/{repository}:latest"),
        format!("sha256:{}", sha256_hex(&index)),
    )
}

#[test]
fn platform_selects_the_manifest_of_a_multi_platform_image() {
    let t = token();
    let (image, index) = push_two_platform_index(&t);
    // No command runs on arm64 (the daemon cannot run arm64 binaries): its files are exported,
    // and a command of the default platform reads them through a copy.
    let dir = configured_project(
        &format!(
            r#"local copyFrom = std.native('copyFrom');
{{ apiVersion: 'brewkit/v1', targets: {{
  all: ['arm', 'default', 'check'],
  arm: {{ from: '{image}', platform: 'linux/arm64', output: ['/platform:out/arm', 'here:out/arm'] }},
  default: {{ from: '{image}', output: '/platform:out/default' }},
  check: {{ from: 'busybox', copy: copyFrom('arm', '/platform', '/arm'), command: 'cat /arm > /c', output: '/c:out/check' }},
}} }}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    // Both are pinned to the index (what the tag names, as BuildKit resolves it); the platform
    // picks the manifest within it, which the files and the config show.
    for target in ["arm", "default"] {
        assert!(
            log.contains(&format!("[{target}] docker-image://{image}@{index}")),
            "{target}: {log}"
        );
    }
    assert_eq!(read(dir.path(), "out/arm/platform"), format!("arm64-{t}\n"));
    assert_eq!(
        read(dir.path(), "out/arm/here"),
        format!("arm64-config-{t}\n"),
        "the arm64 config's working directory applies: {log}"
    );
    assert_eq!(
        read(dir.path(), "out/default/platform"),
        format!("amd64-{t}\n")
    );
    assert_eq!(read(dir.path(), "out/check/c"), format!("arm64-{t}\n"));
}

#[test]
fn a_failing_var_exits_1_naming_it_and_a_vars_stderr_is_not_its_value() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1',
  vars: {{
    v: {{ from: 'busybox', command: 'echo noise-{t} >&2; echo value-{t}; echo more >&2' }},
    bad: {{ from: 'busybox', command: 'echo {t}; exit 5' }},
  }},
  targets: {{
    all: {{ from: 'busybox', command: 'echo "[${{v}}]" > /v', output: '/v:out' }},
    broken: {{ from: 'busybox', command: 'echo "${{bad}}"' }},
  }} }}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        read(dir.path(), "out/v"),
        format!("[value-{t}]\n"),
        "stderr is not part of the value: {log}"
    );
    assert!(
        log.contains(&format!("noise-{t}")),
        "the var's stderr is shown as progress: {log}"
    );

    let (code, log) = build(dir.path(), &["broken"]);
    assert_eq!(code, 1, "{log}");
    let error = log
        .lines()
        .skip_while(|l| !l.starts_with("brewkit: "))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        error.starts_with(&format!(
            "brewkit: var bad failed running `echo {t}; exit 5`"
        )),
        "{log}"
    );
    assert!(error.contains("exit code: 5"), "{error}");
    assert!(
        !log.contains("[broken] started"),
        "the target that uses it never starts: {log}"
    );
}

#[test]
fn a_missing_artifact_and_a_wildcard_matching_nothing_fail_the_target() {
    let t = token();
    for (artifact, missing) in [("/nothing-here", "/nothing-here"), ("/o/*.none", "*.none")] {
        let dir = configured_project(
            &format!(
                r#"{{ apiVersion: 'brewkit/v1', targets: {{
  all: {{ from: 'busybox', command: 'mkdir /o && echo {t} > /o/present.txt',
          output: ['/o/present.txt:out', '{artifact}:out'] }},
}} }}"#
            ),
            "{}",
        );
        let (code, log) = build(dir.path(), &[]);
        assert_eq!(code, 1, "{artifact}: {log}");
        let error = log
            .lines()
            .skip_while(|l| !l.starts_with("brewkit: "))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            error.starts_with("brewkit: all failed"),
            "{artifact}: {log}"
        );
        assert!(error.contains(missing), "{artifact}: {error}");
        // One solve writes all of a target's outputs, or none.
        assert!(
            !dir.path().join("out").exists(),
            "{artifact}: nothing is written: {log}"
        );
    }
}

#[test]
fn setuid_setgid_and_sticky_bits_are_dropped_on_output() {
    use std::os::unix::fs::MetadataExt;
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{
  all: {{ from: 'busybox', workdir: '/o',
          command: 'echo {t} > suid && chmod 4755 suid && echo g > sgid && chmod 2750 sgid && mkdir sticky && chmod 1777 sticky && echo s > sticky/f && chmod 0640 sticky/f',
          output: '/o:out' }},
}} }}"#
        ),
        "{}",
    );
    let (code, log) = build(dir.path(), &[]);
    assert_eq!(code, 0, "{log}");
    let mode = |path: &str| fs::symlink_metadata(dir.path().join(path)).unwrap().mode() & 0o7777;
    assert_eq!(read(dir.path(), "out/suid"), format!("{t}\n"));
    assert_eq!(mode("out/suid"), 0o755, "setuid dropped, the rest kept");
    assert_eq!(mode("out/sgid"), 0o750, "setgid dropped, the rest kept");
    assert_eq!(mode("out/sticky"), 0o777, "sticky dropped, the rest kept");
    assert_eq!(mode("out/sticky/f"), 0o640);
}

#[test]
fn a_missing_ssh_agent_socket_is_bad_input_before_anything_runs() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{
  all: {{ from: 'busybox', ssh: {{}}, command: 'echo ran-{t}' }},
}} }}"#
        ),
        r#"{"entitlements": ["ssh"]}"#,
    );
    let socket = dir.path().join("no-agent.sock");
    let (code, log) = outcome(
        build_command(dir.path())
            .env("SSH_AUTH_SOCK", &socket)
            .output()
            .unwrap(),
    );
    assert_eq!(code, 2, "{log}");
    assert!(
        log.contains(&format!(
            "uses ssh, but the agent socket {} (SSH_AUTH_SOCK) does not exist",
            socket.display()
        )),
        "{log}"
    );
    assert!(!log.contains(&format!("ran-{t}")), "nothing ran: {log}");
    assert!(!log.contains("[all] started"), "nothing ran: {log}");
}

/// `brewkit build` in `dir` without `--addr`, in a clean environment plus `env`; the exit code,
/// the log and how long it took.
fn build_found(dir: &Path, env: &[(&str, &str)]) -> (i32, String, std::time::Duration) {
    let mut command = brewkit_in(dir);
    command
        .env("BREWKIT_CONFIG", dir.join("config.json"))
        .args(["build", "--progress", "plain"])
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let started = std::time::Instant::now();
    let child = command.spawn().unwrap();
    let (code, log) = outcome(child.wait_with_output().unwrap());
    (code, log, started.elapsed())
}

#[test]
fn the_daemon_is_found_from_buildkit_host_and_from_docker_host() {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{
  all: {{ from: 'busybox', command: 'echo {t} > /f', output: '/f:out' }},
}} }}"#
        ),
        "{}",
    );
    let nowhere = format!("unix://{}/no-docker.sock", dir.path().display());
    // BUILDKIT_HOST wins over DOCKER_HOST (which answers nothing here).
    let (code, log, _) = build_found(
        dir.path(),
        &[
            ("BUILDKIT_HOST", &docker_address()),
            ("DOCKER_HOST", &nowhere),
        ],
    );
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(dir.path(), "out/f"), format!("{t}\n"));
    fs::remove_dir_all(dir.path().join("out")).unwrap();

    // Without BUILDKIT_HOST: the buildkitd sockets answer nothing, Docker at DOCKER_HOST does.
    let (code, log, _) = build_found(dir.path(), &[("DOCKER_HOST", &docker_host())]);
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(dir.path(), "out/f"), format!("{t}\n"));
    fs::remove_dir_all(dir.path().join("out")).unwrap();

    // A daemon that accepts connections and never answers is given up after the 5 s probe,
    // and the next address is tried.
    let runtime = dir.path().join("xdg");
    fs::create_dir_all(runtime.join("buildkit")).unwrap();
    let _silent =
        std::os::unix::net::UnixListener::bind(runtime.join("buildkit/buildkitd.sock")).unwrap();
    let (code, log, took) = build_found(
        dir.path(),
        &[
            ("XDG_RUNTIME_DIR", runtime.to_str().unwrap()),
            ("DOCKER_HOST", &docker_host()),
        ],
    );
    assert_eq!(code, 0, "{log}");
    assert_eq!(read(dir.path(), "out/f"), format!("{t}\n"));
    assert!(
        took >= std::time::Duration::from_secs(5),
        "the silent daemon was probed for 5 s first: {took:?}"
    );

    // Nothing answers at all: every address is named, with the silent one's time-out.
    let (code, log, took) = build_found(
        dir.path(),
        &[
            ("XDG_RUNTIME_DIR", runtime.to_str().unwrap()),
            ("DOCKER_HOST", &nowhere),
        ],
    );
    assert_eq!(code, 3, "{log}");
    assert!(log.contains("no BuildKit daemon answered"), "{log}");
    assert!(
        log.contains(
            &runtime
                .join("buildkit/buildkitd.sock")
                .display()
                .to_string()
        ),
        "{log}"
    );
    assert!(log.contains("no answer within 5 s"), "{log}");
    assert!(log.contains("no-docker.sock"), "{log}");
    assert!(
        took < std::time::Duration::from_secs(60),
        "each address is given up: {took:?}"
    );
}

/// A project where `ok` is done and then `bad` fails (targets run in turn).
fn done_then_failed() -> (tempfile::TempDir, String) {
    let t = token();
    let dir = configured_project(
        &format!(
            r#"{{ apiVersion: 'brewkit/v1', targets: {{
  all: ['ok', 'bad'],
  ok: {{ from: 'busybox', command: 'echo ok-{t} > /o', output: '/o:out' }},
  bad: {{ from: 'busybox', command: 'echo bad-{t}; exit 3' }},
}} }}"#
        ),
        "{}",
    );
    (dir, t)
}

/// Whether `text` holds an SGR escape sequence (`ESC [ … m`: a color or its reset).
fn has_color(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|rest| {
        rest.chars()
            .find(|c| !c.is_ascii_digit() && *c != ';')
            .is_some_and(|c| c == 'm')
    })
}

#[test]
fn tty_progress_draws_finished_targets_in_color_unless_no_color() {
    for no_color in [false, true] {
        let (dir, t) = done_then_failed();
        // --progress tty is honoured even when stderr is not a terminal.
        let mut command = build_command_showing(dir.path(), "tty");
        if no_color {
            command.env("NO_COLOR", "1");
        }
        let (code, log) = outcome(command.output().unwrap());
        assert_eq!(code, 1, "{log}");
        assert_eq!(read(dir.path(), "out/o"), format!("ok-{t}\n"));
        assert!(log.contains("✔ ok "), "{log:?}");
        assert!(log.contains("✘ bad "), "{log:?}");
        assert!(log.contains("exit code: 3"), "{log:?}");
        assert!(
            log.contains("3 targets: 1 done, 1 failed (bad), 1 skipped in "),
            "{log:?}"
        );
        assert!(!log.contains("[ok] "), "no plain lines: {log:?}");
        assert!(log.contains("brewkit: bad failed running"), "{log:?}");
        assert!(
            log.contains("\x1b["),
            "a live view moves the cursor: {log:?}"
        );
        assert_eq!(has_color(&log), !no_color, "NO_COLOR={no_color}: {log:?}");
    }
}

#[test]
fn quiet_progress_prints_only_the_error_and_auto_is_plain_off_a_terminal() {
    let (dir, t) = done_then_failed();
    let (code, log) = outcome(build_command_showing(dir.path(), "quiet").output().unwrap());
    assert_eq!(code, 1, "{log}");
    assert_eq!(read(dir.path(), "out/o"), format!("ok-{t}\n"));
    assert!(log.starts_with("brewkit: bad failed running"), "{log}");
    assert!(!log.contains(" targets: "), "no summary: {log}");
    assert!(!log.contains("[ok]"), "{log}");

    let (dir, _) = done_then_failed();
    let (code, log) = outcome(build_command_showing(dir.path(), "auto").output().unwrap());
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("[ok] done in "), "{log}");
    assert!(!log.contains('\x1b'), "{log:?}");
}
