//! What the build needs from the host, checked before anything runs: the session's attachments
//! (context, secret files, ssh agent) and what each node reads and writes on the host.

use std::{
    collections::BTreeMap,
    path::{Component, Path, PathBuf},
};

use brewkit_buildkit::SessionOptions;
use brewkit_config::Config;
use brewkit_definition::{Definition, Node, Plan, Run};

use crate::{lower, schedule::Footprint, Error, HostError};

/// The session's attachments: the context, the secret files, the ssh agent, registry auth.
pub(crate) fn session_options(
    definition: &Definition,
    plan: &Plan,
    config: &Config,
    context: &Path,
) -> Result<SessionOptions, Error> {
    let runs = planned_runs(definition, plan);
    let mut secrets = BTreeMap::new();
    let mut ssh = false;
    for (owner, run) in &runs {
        for secret in &run.secrets {
            if secrets.contains_key(&secret.id) {
                continue;
            }
            let source = config
                .secret(&secret.id)
                .ok_or_else(|| HostError::SecretNotDeclared {
                    owner: owner.clone(),
                    id: secret.id.clone(),
                })?;
            let file = config
                .secret_file(source, brewkit_buildkit::MAX_SECRET_SIZE)
                .map_err(|source| HostError::SecretFile {
                    owner: owner.clone(),
                    source: Box::new(source),
                })?;
            secrets.insert(secret.id.clone(), file);
        }
        ssh |= run.ssh.is_some();
    }
    let ssh_agent = if ssh {
        let owner = runs
            .iter()
            .find(|(_, run)| run.ssh.is_some())
            .map(|(owner, _)| owner.clone())
            .unwrap_or_default();
        let socket = std::env::var_os("SSH_AUTH_SOCK")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| HostError::NoSshAgent {
                owner: owner.clone(),
            })?;
        if !socket.exists() {
            return Err(HostError::SshAgentMissing { owner, socket }.into());
        }
        Some(socket)
    } else {
        None
    };
    let context = canonical_context(context)?;
    Ok(SessionOptions {
        name: "brewkit".to_owned(),
        shared_key: shared_key(&context),
        dirs: [(lower::CONTEXT.to_owned(), context)].into(),
        exports: Vec::new(),
        secrets,
        ssh_agent,
        registry_auth: true,
    })
}

/// The context directory, canonical: what the session serves and outputs are checked against.
fn canonical_context(context: &Path) -> Result<PathBuf, HostError> {
    context.canonicalize().map_err(|source| HostError::Context {
        path: context.to_owned(),
        source,
    })
}

/// A stable key for a context directory, so that BuildKit can reuse what it received before.
pub(crate) fn shared_key(context: &Path) -> String {
    // FNV-1a: stable across runs and versions, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in context.as_os_str().as_encoded_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("brewkit-context-{hash:016x}")
}

/// Checks that every output of the plan lands inside the project directory (`context`), or
/// under a directory the host config grants with `fs.write=<path>` (buildx bake's entitlement):
/// a definition never writes elsewhere on the host without the host's consent.
pub(crate) fn check_outputs(
    definition: &Definition,
    plan: &Plan,
    config: &Config,
    context: &Path,
) -> Result<(), Error> {
    let context = canonical_context(context)?;
    for name in &plan.order {
        let Some(stage) = definition.stage(name) else {
            continue;
        };
        for output in &stage.output {
            let local = clean_join(&context, &output.local);
            if local.starts_with(&context) || config.writable(&local).is_some() {
                continue;
            }
            let config_name = config
                .path
                .as_ref()
                .map_or("~/.brewkit/config, or $BREWKIT_CONFIG".to_owned(), |p| {
                    p.display().to_string()
                });
            return Err(HostError::OutputOutsideProject {
                target: name.clone(),
                output: output.local.clone(),
                local,
                context,
                config: config_name,
            }
            .into());
        }
    }
    Ok(())
}

/// Every run the plan will do, with its owner for messages.
pub(crate) fn planned_runs<'d>(definition: &'d Definition, plan: &Plan) -> Vec<(String, &'d Run)> {
    let targets = plan.order.iter().filter_map(|name| {
        definition
            .stage(name)
            .map(|s| (format!("target \"{name}\""), &s.run))
    });
    let vars = plan
        .vars
        .keys()
        .map(|name| (format!("var \"{name}\""), &definition.vars[name].run));
    targets.chain(vars).collect()
}

/// The include patterns of the build's shared context source: the paths of every context copy
/// of `runs`, sorted and without repeats; empty when one of them copies the whole context.
pub(crate) fn context_paths(runs: &[(String, &Run)]) -> Vec<String> {
    let mut paths = std::collections::BTreeSet::new();
    for copy in runs.iter().flat_map(|(_, run)| &run.copy) {
        if copy.from.is_some() {
            continue;
        }
        match lower::context_path(&copy.src).0 {
            Some(pattern) => {
                paths.insert(pattern);
            }
            None => return Vec::new(),
        }
    }
    paths.into_iter().collect()
}

/// The run of a node, if it has one.
pub(crate) fn run_of<'d>(definition: &'d Definition, node: &Node) -> Option<&'d Run> {
    match node {
        Node::Target(name) => definition.stage(name).map(|s| &s.run),
        Node::Var(name) => definition.vars.get(name).map(|v| &v.run),
    }
}

/// What `node` reads from the host (its context copies, up to the first wildcard, and its secret
/// files) and where its outputs go. `context` is canonical.
pub(crate) fn footprint(
    definition: &Definition,
    plan: &Plan,
    session: &SessionOptions,
    context: &Path,
    node: &Node,
) -> Footprint {
    let Some(run) = run_of(definition, node) else {
        return Footprint::default();
    };
    let copy_sources = match node {
        Node::Target(name) => plan.targets.get(name).map(|t| &t.copy_sources),
        Node::Var(name) => plan.vars.get(name).map(|v| &v.copy_sources),
    };
    let mut reads: Vec<PathBuf> = run
        .copy
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            copy_sources.is_none_or(|sources| sources.get(*i).is_none_or(Option::is_none))
        })
        .map(|(_, copy)| context_read(context, &copy.src))
        .collect();
    reads.extend(
        run.secrets
            .iter()
            .filter_map(|secret| session.secrets.get(&secret.id))
            .map(|file| clean_join(context, &file.to_string_lossy())),
    );
    let writes = match node {
        Node::Target(name) => definition
            .stage(name)
            .map(|stage| {
                stage
                    .output
                    .iter()
                    .map(|o| clean_join(context, &o.local))
                    .collect()
            })
            .unwrap_or_default(),
        Node::Var(_) => Vec::new(),
    };
    Footprint { reads, writes }
}

/// The host path a context copy of `src` reads: `src` relative to the context (an absolute one
/// from the context root), up to its first component with a wildcard.
pub(crate) fn context_read(context: &Path, src: &str) -> PathBuf {
    let fixed: Vec<&str> = src
        .split('/')
        .take_while(|part| !part.contains(['*', '?', '[', '\\']))
        .collect();
    let relative = fixed.join("/");
    let relative = relative.trim_start_matches('/');
    let joined = clean_join(context, relative);
    // `..` cannot take a copy out of the context.
    if joined.starts_with(context) {
        joined
    } else {
        context.to_path_buf()
    }
}

/// Whether the wildcard of a context copy of `src` matches nothing in `context`, as BuildKit
/// would find it (each `*`, `?` or `[…]` within one path component, as Go's `filepath.Match`).
/// A `src` without a wildcard is never reported here: a missing file fails its copy.
pub(crate) fn wildcard_matches_nothing(context: &Path, src: &str) -> bool {
    let Some(relative) = lower::context_path(src).0 else {
        return false;
    };
    let parts: Vec<&str> = relative.split('/').collect();
    let Some(first) = parts.iter().position(|part| part.contains(['*', '?', '['])) else {
        return false;
    };
    let Ok(glob) = globset::GlobBuilder::new(&relative)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
    else {
        return false;
    };
    let glob = glob.compile_matcher();
    // Breadth first from the last fixed directory, one level per remaining component.
    let mut level = vec![parts[..first].join("/")];
    for _ in first..parts.len() {
        let mut next = Vec::new();
        for dir in &level {
            let Ok(entries) = std::fs::read_dir(context.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let path = if dir.is_empty() {
                    name.to_string_lossy().into_owned()
                } else {
                    format!("{dir}/{}", name.to_string_lossy())
                };
                if glob.is_match(&path) {
                    return false;
                }
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    next.push(path);
                }
            }
        }
        level = next;
    }
    true
}

/// `base/path` without `.` components and with `..` applied lexically (`./out` under `.` is
/// `out`, `../dist` under `/p/app` is `/p/dist`).
pub(crate) fn clean_join(base: &Path, path: &str) -> PathBuf {
    let mut joined = PathBuf::new();
    for component in base.join(path).components() {
        match component {
            Component::CurDir => {}
            // Lexically, like the shell's `cd`, so that outputs' common root is right.
            Component::ParentDir
                if joined
                    .components()
                    .next_back()
                    .is_some_and(|c| matches!(c, Component::Normal(_))) =>
            {
                joined.pop();
            }
            other => joined.push(other),
        }
    }
    if joined.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        joined
    }
}
