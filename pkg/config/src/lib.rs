//! The host config (docs/config.md): which secrets this machine can provide and which entitlements it
//! grants. Read from `$BREWKIT_CONFIG`, else `~/.brewkit/config`; JSON or Jsonnet; validated by
//! `data/specification/config/v1.json`.

use std::{
    collections::BTreeSet,
    fmt,
    io::Write,
    path::{Path, PathBuf},
};

use brewkit_schema::Schema;
use serde::Deserialize;

/// The environment variable that names the config file.
pub const CONFIG_ENV: &str = "BREWKIT_CONFIG";

/// What `brewkit config init` writes: valid Jsonnet, commented, granting nothing.
pub const DEFAULT_CONFIG: &str = r#"// BrewKit host config: what this machine lends to builds.
// Reference: docs/config.md. JSON or Jsonnet; ${VAR} or $VAR in a path expands from the environment.
{
  // Secrets that targets mount by id, e.g.
  //   { id: 'aws', path: '${HOME}/.aws/credentials' },
  // A target names the id and the path in the container: secret('aws', '/root/.aws/credentials').
  secrets: [],

  // Privileges targets may ask for, e.g.
  //   'network.host'       a target may use network: 'host'
  //   'ssh'                a target may use ssh: {} (this machine's SSH agent)
  //   'fs.write=${HOME}/dist'  outputs may be written there, outside the project directory
  entitlements: [],
}
"#;

/// Errors of reading or using the host config.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file exists but does not evaluate as Jsonnet (or is not readable).
    #[error("host config {}: {source}", path.display())]
    Evaluate {
        /// The config file.
        path: PathBuf,
        /// The evaluator's error, with its `file:line:col`.
        #[source]
        source: brewkit_jsonnet::Error,
    },
    /// `$BREWKIT_CONFIG` names a file that does not exist. (A missing `~/.brewkit/config` is
    /// not an error: it is the empty config.)
    #[error("${CONFIG_ENV} names {}, which does not exist; create it (brewkit config init) or unset ${CONFIG_ENV}", path.display())]
    Missing {
        /// The path `$BREWKIT_CONFIG` gives.
        path: PathBuf,
    },
    /// The config evaluates but breaks the config schema, declares a secret id twice or
    /// names an entitlement that cannot be used.
    #[error("host config {}:\n{}", path.display(), violations.join("\n"))]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Every problem found, one a line, indented; each names where in the config it is
        /// when it can (`  secrets[1].id: …`).
        violations: Vec<String>,
    },
    /// `$BREWKIT_CONFIG` is not set and the home directory cannot be determined, so there is
    /// no default config location.
    #[error("cannot find the home directory to locate ~/.brewkit/config; set ${CONFIG_ENV}")]
    NoHome,
    /// A secret's path refers to an environment variable that is not set.
    #[error(
        "secret \"{id}\": path {path:?} uses {reference}, which is not set in the environment"
    )]
    UnsetVariable {
        /// The secret's id, as declared in the config.
        id: String,
        /// The secret's path as written in the config, before expansion.
        path: String,
        /// As written: `${HOME}` or `$HOME`.
        reference: String,
    },
    /// A secret's path has a `${` that is not `${NAME}` (shell forms like `${X:-y}` are not
    /// supported).
    #[error("secret \"{id}\": path {path:?} has a ${{ not followed by a variable name and }}")]
    BadPattern {
        /// The secret's id, as declared in the config.
        id: String,
        /// The secret's path as written in the config, before expansion.
        path: String,
    },
    /// A secret's host file cannot be inspected: usually it does not exist.
    #[error("secret \"{id}\": cannot read {}: {source} (from the host config {})", path.display(), config.display())]
    SecretFile {
        /// The secret's id, as declared in the config.
        id: String,
        /// The host file, `$VAR`s expanded.
        path: PathBuf,
        /// The config file that declares the secret.
        config: PathBuf,
        /// Why the file's metadata could not be read.
        #[source]
        source: std::io::Error,
    },
    /// A secret's host path is not a regular file (after following symlinks).
    #[error("secret \"{id}\": {} is {what}, not a regular file (from the host config {})", path.display(), config.display())]
    SecretNotFile {
        /// The secret's id, as declared in the config.
        id: String,
        /// The host path, `$VAR`s expanded.
        path: PathBuf,
        /// What it is instead: "a directory", "a FIFO (named pipe)"…
        what: &'static str,
        /// The config file that declares the secret.
        config: PathBuf,
    },
    /// A secret's host file is larger than BuildKit accepts for a secret.
    #[error("secret \"{id}\": {} is {size} bytes, more than the {max} bytes BuildKit accepts for a secret (from the host config {})", path.display(), config.display())]
    SecretTooLarge {
        /// The secret's id, as declared in the config.
        id: String,
        /// The host file, `$VAR`s expanded.
        path: PathBuf,
        /// The file's size, in bytes.
        size: u64,
        /// The largest secret allowed, in bytes.
        max: u64,
        /// The config file that declares the secret.
        config: PathBuf,
    },
    /// `brewkit config init` found a file already there and did not overwrite it.
    #[error("{} already exists; it was left as it is", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// `brewkit config init` could not create the file or its directory.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The config file being created.
        path: PathBuf,
        /// Why the operating system refused.
        #[source]
        source: std::io::Error,
    },
}

/// A privilege the host grants to builds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entitlement {
    /// Targets may use `network: host`.
    NetworkHost,
    /// Targets may use `ssh` (the host's SSH agent).
    Ssh,
    /// Outputs may be written under this directory, outside the project (absolute, clean,
    /// `$VAR` expanded). Written `fs.write=<path>`, as buildx bake's entitlement.
    FsWrite(PathBuf),
}

impl fmt::Display for Entitlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NetworkHost => f.write_str("network.host"),
            Self::Ssh => f.write_str("ssh"),
            Self::FsWrite(path) => write!(f, "fs.write={}", path.display()),
        }
    }
}

/// Parses an entitlement as written in the config; `lookup` reads the environment.
fn entitlement(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Entitlement, String> {
    match text {
        "network.host" => return Ok(Entitlement::NetworkHost),
        "ssh" => return Ok(Entitlement::Ssh),
        _ => {}
    }
    let Some(path) = text.strip_prefix("fs.write=") else {
        return Err(format!(
            "unknown entitlement {text:?}: use \"network.host\", \"ssh\" or \"fs.write=<path>\""
        ));
    };
    let expanded = expand("", path, lookup).map_err(|e| match e {
        Error::UnsetVariable { reference, .. } => {
            format!("{text:?} uses {reference}, which is not set in the environment")
        }
        _ => format!("{text:?} has a ${{ not followed by a variable name and }}"),
    })?;
    let path = Path::new(&expanded);
    if !path.is_absolute() {
        return Err(format!(
            "{text:?}: the path must be absolute (after $VAR expansion)"
        ));
    }
    // Lexically clean: outputs are compared with it the same way.
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                clean.pop();
            }
            std::path::Component::CurDir => {}
            other => clean.push(other),
        }
    }
    Ok(Entitlement::FsWrite(clean))
}

/// A secret the host can provide, as written in the config (the path not yet expanded).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SecretSource {
    /// The id targets mount the secret by (`secret('aws', …)`); unique in the config.
    pub id: String,
    /// The host file holding the secret, as written: `${VAR}` and `$VAR` are expanded only when
    /// the secret is used ([`Config::secret_file`]).
    pub path: String,
}

/// The host config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// Where it was read from; `None` when no file exists (the empty config).
    pub path: Option<PathBuf>,
    /// The secrets this machine can provide, in the config's order; ids are unique.
    pub secrets: Vec<SecretSource>,
    /// The privileges granted to builds; empty grants nothing.
    pub entitlements: BTreeSet<Entitlement>,
}

#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    secrets: Vec<SecretSource>,
    #[serde(default)]
    entitlements: Vec<String>,
}

/// Where the config is: `$BREWKIT_CONFIG`, else `~/.brewkit/config`. The flag tells whether the
/// user named it explicitly (then a missing file is an error).
pub fn location() -> Result<(PathBuf, bool), Error> {
    match std::env::var_os(CONFIG_ENV) {
        Some(path) if !path.is_empty() => Ok((PathBuf::from(path), true)),
        _ => dirs::home_dir()
            .map(|home| (home.join(".brewkit").join("config"), false))
            .ok_or(Error::NoHome),
    }
}

impl Config {
    /// Loads the config from its [`location`].
    pub fn load() -> Result<Self, Error> {
        let (path, explicit) = location()?;
        Self::load_from(&path, explicit)
    }

    /// Loads the config at `path`. A missing file is the empty config unless `required`.
    pub fn load_from(path: &Path, required: bool) -> Result<Self, Error> {
        if !path.exists() {
            return if required {
                Err(Error::Missing {
                    path: path.to_owned(),
                })
            } else {
                Ok(Self::default())
            };
        }
        let value =
            brewkit_jsonnet::evaluate_file(path, &Default::default(), &[]).map_err(|source| {
                Error::Evaluate {
                    path: path.to_owned(),
                    source,
                }
            })?;
        let mut violations: Vec<String> = brewkit_schema::validate(Schema::ConfigV1, &value)
            .into_iter()
            .map(|v| format!("  {}: {}", v.path_string(), v.message))
            .collect();
        let invalid = |violations| Error::Invalid {
            path: path.to_owned(),
            violations,
        };
        if !violations.is_empty() {
            return Err(invalid(violations));
        }
        let raw: RawConfig =
            serde_json::from_value(value).map_err(|e| invalid(vec![format!("  {e}")]))?;
        let mut seen = BTreeSet::new();
        for (i, secret) in raw.secrets.iter().enumerate() {
            if !seen.insert(secret.id.as_str()) {
                violations.push(format!(
                    "  secrets[{i}].id: secret id \"{}\" is declared twice",
                    secret.id
                ));
            }
        }
        let mut entitlements = BTreeSet::new();
        for (i, text) in raw.entitlements.iter().enumerate() {
            match entitlement(text, |v| std::env::var(v).ok()) {
                Ok(e) => {
                    entitlements.insert(e);
                }
                Err(message) => violations.push(format!("  entitlements[{i}]: {message}")),
            }
        }
        if !violations.is_empty() {
            return Err(invalid(violations));
        }
        Ok(Self {
            path: Some(path.to_owned()),
            secrets: raw.secrets,
            entitlements,
        })
    }

    /// The secret declared with `id`.
    pub fn secret(&self, id: &str) -> Option<&SecretSource> {
        self.secrets.iter().find(|s| s.id == id)
    }

    /// Whether the host grants `entitlement`.
    pub fn allows(&self, entitlement: Entitlement) -> bool {
        self.entitlements.contains(&entitlement)
    }

    /// The `fs.write` entitlement that lets outputs be written to `path` (absolute and clean):
    /// the first granted directory holding it.
    pub fn writable(&self, path: &Path) -> Option<&Entitlement> {
        self.entitlements
            .iter()
            .find(|e| matches!(e, Entitlement::FsWrite(dir) if path.starts_with(dir)))
    }

    /// The host file of secret `secret`, with `${VAR}` and `$VAR` expanded, checked to be a
    /// regular file (symlinks followed) of at most `max_size` bytes.
    pub fn secret_file(&self, secret: &SecretSource, max_size: u64) -> Result<PathBuf, Error> {
        let path = PathBuf::from(expand(&secret.id, &secret.path, |v| std::env::var(v).ok())?);
        let config = || self.path.clone().unwrap_or_default();
        // Never opened here: opening a FIFO waits for a writer, which may never come.
        let metadata = std::fs::metadata(&path).map_err(|source| Error::SecretFile {
            id: secret.id.clone(),
            path: path.clone(),
            config: config(),
            source,
        })?;
        if !metadata.is_file() {
            return Err(Error::SecretNotFile {
                id: secret.id.clone(),
                path,
                what: file_kind(&metadata.file_type()),
                config: config(),
            });
        }
        if metadata.len() > max_size {
            return Err(Error::SecretTooLarge {
                id: secret.id.clone(),
                path,
                size: metadata.len(),
                max: max_size,
                config: config(),
            });
        }
        Ok(path)
    }
}

/// What a file that is not a regular file is, for messages.
fn file_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

/// Expands `${VAR}` and `$VAR` in `path` with `lookup`, as BrewKit's `os.ExpandEnv` does, `VAR`
/// being letters, digits and `_`; a `$` followed by anything else is kept as written. Unlike
/// `os.ExpandEnv`, which reads an unset variable as empty (turning `${HOME}/x` into `/x`), an
/// unset variable is an error, and so is a `${` not followed by a name and `}` (`${X:-y}`).
fn expand(id: &str, path: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, Error> {
    let is_name = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    // `path[copied..]` is still to be copied as is.
    let mut copied = 0;
    let mut at = 0;
    while let Some(offset) = path[at..].find('$') {
        let dollar = at + offset;
        let (name, end) = if bytes.get(dollar + 1) == Some(&b'{') {
            let len = bytes[dollar + 2..]
                .iter()
                .take_while(|c| is_name(**c))
                .count();
            if len == 0 || bytes.get(dollar + 2 + len) != Some(&b'}') {
                return Err(Error::BadPattern {
                    id: id.to_owned(),
                    path: path.to_owned(),
                });
            }
            (&path[dollar + 2..dollar + 2 + len], dollar + 3 + len)
        } else {
            let len = bytes[dollar + 1..]
                .iter()
                .take_while(|c| is_name(**c))
                .count();
            if len == 0 {
                at = dollar + 1;
                continue;
            }
            (&path[dollar + 1..dollar + 1 + len], dollar + 1 + len)
        };
        let value = lookup(name).ok_or_else(|| Error::UnsetVariable {
            id: id.to_owned(),
            path: path.to_owned(),
            reference: path[dollar..end].to_owned(),
        })?;
        out.push_str(&path[copied..dollar]);
        out.push_str(&value);
        copied = end;
        at = end;
    }
    out.push_str(&path[copied..]);
    Ok(out)
}

/// Writes [`DEFAULT_CONFIG`] to `path` (creating its directory); an existing file is never touched.
pub fn init(path: &Path) -> Result<(), Error> {
    let write_error = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_error)?;
    }
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::AlreadyExists {
                path: path.to_owned(),
            })
        }
        Err(e) => return Err(write_error(e)),
    };
    file.write_all(DEFAULT_CONFIG.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_error)
}

#[cfg(test)]
mod tests;
