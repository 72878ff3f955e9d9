use std::fs;

use super::*;

fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn missing_default_file_is_the_empty_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::load_from(&dir.path().join("config"), false).unwrap();
    assert_eq!(config, Config::default());
}

#[test]
fn missing_explicit_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Config::load_from(&dir.path().join("nope"), true).unwrap_err();
    assert!(matches!(err, Error::Missing { .. }));
    assert!(err.to_string().contains("BREWKIT_CONFIG"), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn json_config() {
    let (_dir, path) = write(
        r#"{"secrets": [{"id": "aws", "path": "${HOME}/.aws/credentials"}], "entitlements": ["network.host"]}"#,
    );
    let config = Config::load_from(&path, true).unwrap();
    assert_eq!(config.secrets.len(), 1);
    assert_eq!(
        config.secret("aws").unwrap().path,
        "${HOME}/.aws/credentials"
    );
    assert!(config.allows(Entitlement::NetworkHost));
    assert_eq!(config.path.as_deref(), Some(path.as_path()));
}

#[test]
fn jsonnet_config_with_comments() {
    let (_dir, path) = write(
        "// comment\nlocal s(id) = {id: id, path: '/tmp/' + id};\n{ secrets: [s('a'), s('b')] }",
    );
    let config = Config::load_from(&path, true).unwrap();
    assert_eq!(
        config
            .secrets
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(!config.allows(Entitlement::NetworkHost));
}

#[test]
fn default_config_parses_and_grants_nothing() {
    let (_dir, path) = write(DEFAULT_CONFIG);
    let config = Config::load_from(&path, true).unwrap();
    assert!(config.secrets.is_empty());
    assert!(config.entitlements.is_empty());
}

#[test]
fn schema_violations_are_reported_with_paths() {
    let (_dir, path) = write(r#"{"secrets": [{"id": "a"}], "entitlement": []}"#);
    let err = Config::load_from(&path, true).unwrap_err().to_string();
    assert!(
        err.contains("secrets[0]: missing required key \"path\""),
        "{err}"
    );
    assert!(
        err.contains("entitlement: unknown key \"entitlement\"; did you mean \"entitlements\"?"),
        "{err}"
    );
}

#[test]
fn duplicate_secret_ids_are_refused() {
    let (_dir, path) =
        write(r#"{"secrets": [{"id": "a", "path": "/x"}, {"id": "a", "path": "/y"}]}"#);
    let err = Config::load_from(&path, true).unwrap_err().to_string();
    assert!(
        err.contains("secrets[1].id: secret id \"a\" is declared twice"),
        "{err}"
    );
}

#[test]
fn jsonnet_errors_name_the_config() {
    let (_dir, path) = write("{ secrets: [ }");
    let err = Config::load_from(&path, true).unwrap_err().to_string();
    assert!(err.contains("host config"), "{err}");
    assert!(err.contains("syntax error"), "{err}");
}

#[test]
fn expansion_replaces_both_forms_as_os_expand_env() {
    let lookup = |v: &str| match v {
        "HOME" => Some("/home/u".to_owned()),
        "D_1" => Some("d".to_owned()),
        _ => None,
    };
    for (path, expanded) in [
        ("${HOME}/a/$HOME", "/home/u/a//home/u"),
        ("$HOME.aws/$D_1-x/${D_1}y", "/home/u.aws/d-x/dy"),
        // `$` before anything but a name (or `{`) stays.
        ("/a$/b$.c/$-/$ $", "/a$/b$.c/$-/$ $"),
        ("/é$HOMEé", "/é/home/ué"),
    ] {
        assert_eq!(expand("s", path, lookup).unwrap(), expanded, "{path}");
    }
    for (path, reference) in [
        ("${NOPE}/x", "${NOPE}"),
        ("$NOPE/x", "$NOPE"),
        ("$HOMEX/x", "$HOMEX"),
    ] {
        let err = expand("s", path, lookup).unwrap_err();
        assert!(matches!(err, Error::UnsetVariable { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "secret \"s\": path {path:?} uses {reference}, which is not set in the environment"
            )
        );
    }
    for bad in ["${HOME", "${}", "${HOME:-x}", "x/${ HOME}"] {
        assert!(
            matches!(expand("s", bad, lookup), Err(Error::BadPattern { .. })),
            "{bad}"
        );
    }
}

#[test]
fn secret_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    fs::write(&file, "x").unwrap();
    let config = Config {
        path: Some(dir.path().join("config")),
        secrets: vec![
            SecretSource {
                id: "ok".into(),
                path: file.display().to_string(),
            },
            SecretSource {
                id: "gone".into(),
                path: dir.path().join("gone").display().to_string(),
            },
            SecretSource {
                id: "dir".into(),
                path: dir.path().display().to_string(),
            },
        ],
        entitlements: BTreeSet::new(),
    };
    assert_eq!(
        config
            .secret_file(config.secret("ok").unwrap(), MAX)
            .unwrap(),
        file
    );
    let err = config
        .secret_file(config.secret("gone").unwrap(), MAX)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("secret \"gone\"") && err.contains("gone"),
        "{err}"
    );
    let err = config
        .secret_file(config.secret("dir").unwrap(), MAX)
        .unwrap_err();
    assert!(matches!(err, Error::SecretNotFile { .. }), "{err}");
    assert!(err.to_string().contains("is a directory"), "{err}");
}

/// BuildKit's limit, as `brewkit_buildkit::MAX_SECRET_SIZE`.
const MAX: u64 = 500 * 1024;

fn one_secret(dir: &Path, id: &str, path: &Path) -> Config {
    Config {
        path: Some(dir.join("config")),
        secrets: vec![SecretSource {
            id: id.into(),
            path: path.display().to_string(),
        }],
        entitlements: BTreeSet::new(),
    }
}

#[test]
fn a_fifo_secret_is_refused_without_opening_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let config = one_secret(dir.path(), "pipe", &fifo);
    // Opening the FIFO would block this thread until a writer comes: the check runs on
    // another, so that a regression fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(config.secret_file(config.secret("pipe").unwrap(), MAX));
    });
    let err = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the check returns without waiting for a writer")
        .unwrap_err();
    assert!(matches!(err, Error::SecretNotFile { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("secret \"pipe\""), "{message}");
    assert!(message.contains("FIFO"), "{message}");
    assert!(message.contains(&fifo.display().to_string()), "{message}");
}

#[test]
fn a_secret_over_the_limit_is_refused_and_symlinks_are_followed() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    fs::write(&big, vec![b'x'; 600 * 1024]).unwrap();
    let config = one_secret(dir.path(), "big", &big);
    let err = config
        .secret_file(config.secret("big").unwrap(), MAX)
        .unwrap_err();
    assert!(
        matches!(err, Error::SecretTooLarge { size, max, .. } if size == 600 * 1024 && max == MAX),
        "{err}"
    );
    assert!(err.to_string().contains("secret \"big\""), "{err}");

    // Exactly the limit is fine, and so is a symlink to a regular file.
    let fits = dir.path().join("fits");
    fs::write(&fits, vec![b'x'; MAX as usize]).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&fits, &link).unwrap();
    let config = one_secret(dir.path(), "link", &link);
    assert_eq!(
        config
            .secret_file(config.secret("link").unwrap(), MAX)
            .unwrap(),
        link
    );
}

#[test]
fn init_writes_once_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("config");
    init(&path).unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), DEFAULT_CONFIG);
    fs::write(&path, "{}").unwrap();
    let err = init(&path).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }));
    assert_eq!(fs::read_to_string(&path).unwrap(), "{}");
}

#[test]
fn entitlements_ssh_and_fs_write() {
    let lookup = |var: &str| (var == "OUT").then(|| "/srv/out".to_owned());
    assert_eq!(entitlement("ssh", lookup), Ok(Entitlement::Ssh));
    assert_eq!(
        entitlement("fs.write=${OUT}/dist/../bin", lookup),
        Ok(Entitlement::FsWrite("/srv/out/bin".into())),
        "expanded and cleaned"
    );
    let relative = entitlement("fs.write=dist", lookup).unwrap_err();
    assert!(relative.contains("must be absolute"), "{relative}");
    let unset = entitlement("fs.write=${NOPE}/x", lookup).unwrap_err();
    assert!(unset.contains("${NOPE}"), "{unset}");
    assert_eq!(
        entitlement("fs.write=$OUT/bin", lookup),
        Ok(Entitlement::FsWrite("/srv/out/bin".into())),
        "$VAR form"
    );
    let unset = entitlement("fs.write=$NOPE/x", lookup).unwrap_err();
    assert!(
        unset.contains("uses $NOPE, which is not set in the environment"),
        "{unset}"
    );
    let unknown = entitlement("fs.read=/x", lookup).unwrap_err();
    assert!(unknown.contains("unknown entitlement"), "{unknown}");

    let (_dir, path) = write(r#"{"entitlements": ["ssh", "fs.write=/srv/out"]}"#);
    let config = Config::load_from(&path, true).unwrap();
    assert!(config.allows(Entitlement::Ssh));
    assert!(!config.allows(Entitlement::NetworkHost));
    assert_eq!(
        config.writable(Path::new("/srv/out/a/b")),
        Some(&Entitlement::FsWrite("/srv/out".into()))
    );
    assert_eq!(
        config.writable(Path::new("/srv/outside")),
        None,
        "a sibling is not inside"
    );

    let (_dir, path) = write(r#"{"entitlements": ["fs.read=/x"]}"#);
    let err = Config::load_from(&path, true).unwrap_err().to_string();
    assert!(err.contains("entitlements[0]"), "{err}");
    let (_dir, path) = write(r#"{"entitlements": ["fs.write=relative"]}"#);
    let err = Config::load_from(&path, true).unwrap_err().to_string();
    assert!(
        err.contains("entitlements[0]") && err.contains("absolute"),
        "{err}"
    );
}
