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
fn expansion_replaces_braced_variables_only() {
    let lookup = |v: &str| (v == "HOME").then(|| "/home/u".to_owned());
    assert_eq!(
        expand("s", "${HOME}/a/$HOME", lookup).unwrap(),
        "/home/u/a/$HOME"
    );
    let err = expand("s", "${NOPE}/x", lookup).unwrap_err();
    assert!(err.to_string().contains("${NOPE}"), "{err}");
    assert!(matches!(
        expand("s", "${HOME", lookup),
        Err(Error::BadPattern { .. })
    ));
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
        config.secret_file(config.secret("ok").unwrap()).unwrap(),
        file
    );
    let err = config
        .secret_file(config.secret("gone").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("secret \"gone\"") && err.contains("gone"),
        "{err}"
    );
    assert!(config.secret_file(config.secret("dir").unwrap()).is_err());
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
