//! Lowering: a target's or var's directives turned into LLB on top of its base (docs/reference.md).

use std::{collections::BTreeMap, path::Path};

use brewkit_buildkit::gateway::ImageRunConfig;
use brewkit_definition::{substitute, Network, Run};
use brewkit_llb::{CacheSharing, CopyOptions, LocalOptions, Mount, State};

/// Name of the build context among the session's directories.
pub const CONTEXT: &str = "context";

/// What lowering needs besides the run itself.
#[derive(Debug, Clone, Default)]
pub struct Lowering {
    /// Values of the vars, for `${name}` in commands.
    pub vars: BTreeMap<String, String>,
    /// Keys BuildKit's cache of the context across builds.
    pub shared_key: String,
    /// The include patterns of the build's shared context source (empty: the whole context):
    /// every context copy of the build reads that one source (synced once, in one transfer)
    /// unless it has a `unique`. `None`: each copy reads a source of its own path.
    pub context_paths: Option<Vec<String>>,
    /// Never take runs from the cache (`--no-cache`).
    pub no_cache: bool,
    /// Per entry of the run's `copy`: a `local.unique` for a context copy whose paths the build
    /// has written to since an equal copy may have read them.
    pub unique: Vec<Option<String>>,
}

pub use brewkit_llb::platform;

/// Applies an image's config to a state: its env in order, its user and working directory.
pub fn apply_image_config(state: State, config: &ImageRunConfig) -> State {
    state.with_image_config(&config.env, &config.user, &config.working_dir)
}

/// Where a copy reads from.
#[derive(Debug, Clone)]
pub enum CopySource {
    /// The build context; only `src` is sent.
    Context,
    /// Another target's or an image's filesystem.
    State(Box<State>),
}

/// Lowers `run` on `base`: workdir (created), env (sorted), copies, then the command with its
/// mounts. `copy_sources` has one entry per `run.copy`.
pub fn lower_run(
    run: &Run,
    base: State,
    copy_sources: &[CopySource],
    lowering: &Lowering,
) -> State {
    let state = prepare(run, base, copy_sources, lowering);
    match &run.command {
        Some(command) => {
            let script = substitute(command, &lowering.vars);
            exec(&state, run, script, Vec::new(), lowering.no_cache, command).root()
        }
        None => state,
    }
}

/// Where a var's run writes its stdout.
pub const VAR_OUTPUT_DIR: &str = "/.brewkit-var";
/// The file holding a var's stdout, in [`VAR_OUTPUT_DIR`].
pub const VAR_OUTPUT_FILE: &str = "stdout";

/// What a var's script runs before its command: stdout to the output mount's file.
const VAR_WRAPPER: &str = "exec >/.brewkit-var/stdout\n";

/// `text` (a BuildKit message, which quotes a failed command's arguments) without the wrapper
/// of a var's script: users see their own command.
pub fn hide_var_wrapper(text: &str) -> String {
    text.replace(VAR_WRAPPER, "")
}

/// Lowers a var: its run with the command's stdout sent to a file in an output mount, never
/// cached. Returns the output mount's state. A var's command substitutes no vars.
pub fn lower_var(
    run: &Run,
    base: State,
    copy_sources: &[CopySource],
    lowering: &Lowering,
) -> State {
    let command = run.command.clone().unwrap_or_default();
    let state = prepare(run, base, copy_sources, lowering);
    let output = Mount::Writable {
        dest: VAR_OUTPUT_DIR.to_owned(),
        state: State::scratch(),
    };
    let script = format!("{VAR_WRAPPER}{command}");
    exec(&state, run, script, vec![output], true, &command)
        .output(VAR_OUTPUT_DIR)
        .expect("the output mount exists")
}

/// Workdir (created), env (sorted) and copies.
fn prepare(run: &Run, base: State, copy_sources: &[CopySource], lowering: &Lowering) -> State {
    let mut state = base;
    if let Some(workdir) = &run.workdir {
        state = state.with_cwd(workdir);
        let dir = state.cwd().to_owned();
        state = state.mkdir(&dir, 0o755);
    }
    // BTreeMap iteration is sorted: the same env gives the same LLB.
    for (key, value) in &run.env {
        state = state.with_env(key, value);
    }
    let mut copies: Vec<(State, String, &str)> = Vec::new();
    for (i, (copy, source)) in run.copy.iter().zip(copy_sources).enumerate() {
        let (from, src) = match source {
            CopySource::Context => {
                let (pattern, path) = context_path(&copy.src);
                let unique_id = lowering.unique.get(i).cloned().flatten();
                // The copy's cache key is the content of what it copies, not the source's
                // patterns, so sharing one source costs no cache hits.
                let include_patterns = match (&unique_id, &lowering.context_paths) {
                    (None, Some(shared)) => shared.clone(),
                    _ => pattern.into_iter().collect(),
                };
                let custom_name = Some(context_name(&include_patterns));
                let from = State::local(
                    CONTEXT,
                    &LocalOptions {
                        include_patterns,
                        shared_key_hint: Some(lowering.shared_key.clone()),
                        unique_id,
                        custom_name,
                        ..LocalOptions::default()
                    },
                );
                (from, path)
            }
            CopySource::State(state) => ((**state).clone(), copy.src.clone()),
        };
        copies.push((from, src, &copy.dst));
    }
    // All of a run's copies are one file op, so one snapshot: however many there are, a target
    // adds one layer for them (overlayfs stacks at most about 128 layers).
    let options = CopyOptions {
        allow_wildcard: true,
        dir_contents: true,
        create_dest_path: true,
        follow_symlink: true,
        // As in BrewKit 1.1; the build warns about a context copy's (docs/reference.md, copy).
        allow_empty_wildcard: true,
        custom_name: Some(copies_name(&run.copy)),
    };
    let copies: Vec<(&State, &str, &str)> = copies
        .iter()
        .map(|(from, src, dst)| (from, src.as_str(), *dst))
        .collect();
    state = state.copy_all(&copies, &options);
    state
}

/// Where a context copy of `src` reads: the include pattern that sends it (`None`: the whole
/// context, for `.`, `./` or `/`) and its path in the local source. `src` is relative to the
/// context root, an absolute one too (as Dockerfile `COPY` reads it); `.` parts are dropped and
/// `..` applied (validation refused any that leaves the context); `dir/` is `dir`, whose
/// contents are copied.
pub fn context_path(src: &str) -> (Option<String>, String) {
    let mut parts: Vec<&str> = Vec::new();
    for part in src.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return (None, "/".to_owned());
    }
    let relative = parts.join("/");
    let path = format!("/{relative}");
    (Some(relative), path)
}

/// The progress name of a run's copies: each `copy src dst`, the first few when many.
fn copies_name(copies: &[brewkit_definition::Copy]) -> String {
    const SHOWN: usize = 3;
    let shown: Vec<String> = copies
        .iter()
        .take(SHOWN)
        .map(|copy| format!("{} {}", copy.src, copy.dst))
        .collect();
    let mut name = format!("copy {}", shown.join(", "));
    if copies.len() > SHOWN {
        name.push_str(&format!(" and {} more", copies.len() - SHOWN));
    }
    name
}

/// The progress name of a context source: its paths, the first few of them when many.
fn context_name(paths: &[String]) -> String {
    if paths.is_empty() {
        return "context .".to_owned();
    }
    const SHOWN: usize = 3;
    let shown = paths.iter().take(SHOWN).map(String::as_str);
    let mut name = format!("context {}", shown.collect::<Vec<_>>().join(", "));
    if paths.len() > SHOWN {
        name.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    name
}

/// The command as `/bin/sh -c script` with the run's cache, secret and ssh mounts and network.
fn exec(
    state: &State,
    run: &Run,
    script: String,
    mut mounts: Vec<Mount>,
    ignore_cache: bool,
    command: &str,
) -> brewkit_llb::Exec {
    mounts.extend(run.cache.iter().map(|cache| Mount::Cache {
        dest: state.resolve(&cache.path),
        id: cache.id.clone(),
        sharing: CacheSharing::Shared,
    }));
    mounts.extend(run.secrets.iter().map(|secret| Mount::Secret {
        dest: state.resolve(&secret.path),
        id: secret.id.clone(),
    }));
    if run.ssh.is_some() {
        mounts.push(Mount::Ssh);
    }
    state.run(brewkit_llb::RunOptions {
        args: vec!["/bin/sh".to_owned(), "-c".to_owned(), script],
        mounts,
        network: match run.network {
            None | Some(Network::Default) => brewkit_llb::Network::Default,
            Some(Network::None) => brewkit_llb::Network::None,
            Some(Network::Host) => brewkit_llb::Network::Host,
        },
        ignore_cache,
        custom_name: Some(command.to_owned()),
    })
}

/// The tree of an export: each `(target, artifact, relative)` copies `artifact` (a path or
/// wildcard of `target`) into `relative`, the output's local directory relative to the export
/// root, in order, in one file op. A directory's contents are copied, as `copy` does.
pub fn output_tree(outputs: &[(&State, &str, &Path)], name: &str) -> State {
    let dests: Vec<String> = outputs
        .iter()
        .map(|(_, _, relative)| {
            let dest = format!("/{}/", relative.to_string_lossy().trim_matches('/'));
            if dest == "//" {
                "/".to_owned()
            } else {
                dest
            }
        })
        .collect();
    let copies: Vec<(&State, &str, &str)> = outputs
        .iter()
        .zip(&dests)
        .map(|((target, artifact, _), dest)| (*target, *artifact, dest.as_str()))
        .collect();
    State::scratch().copy_all(
        &copies,
        &CopyOptions {
            allow_wildcard: true,
            dir_contents: true,
            create_dest_path: true,
            follow_symlink: true,
            // An output that matches nothing fails the target.
            allow_empty_wildcard: false,
            custom_name: Some(name.to_owned()),
        },
    )
}

/// A var's value: its stdout without trailing newlines.
pub fn var_value(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .trim_end_matches(['\n', '\r'])
        .to_owned()
}
