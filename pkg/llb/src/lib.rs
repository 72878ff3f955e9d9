//! An LLB builder in the spirit of BuildKit's `client/llb`: a [`State`] is an immutable value
//! (a filesystem plus the defaults a run inherits: env, working directory, user, platform); each
//! operation returns a new one. [`State::marshal`] turns the graph into a `pb::Definition` whose
//! bytes, and so digests, depend only on the graph (sorted maps, sorted mounts, no random ids).
//!
//! Only ops that Docker 20.10's BuildKit (v0.8) runs are produced: source, exec and file ops.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    sync::Arc,
};

pub use brewkit_proto::pb;
use pb::{file_action, op};
use prost::Message;
use sha2::{Digest, Sha256};

/// BuildKit's marker for "no input" (a scratch mount).
const EMPTY: i64 = -1;
/// BuildKit's marker for "this mount has no output".
const SKIP_OUTPUT: i64 = -1;
/// Where an ssh agent socket is mounted, as BuildKit's own client does.
pub const SSH_AGENT_SOCKET: &str = "/run/buildkit/ssh_agent.0";
/// Metadata key of the name shown in progress.
const CUSTOM_NAME: &str = "llb.customname";

/// One op of the graph, with its inputs as outputs of other vertices.
///
/// A graph may be a chain of thousands of vertices (one file op per copy), so nothing walks it
/// by recursion: marshalling, dropping and `Debug` each take a bounded amount of stack.
struct Vertex {
    /// The op without `inputs`, which are filled in from `inputs` when marshalling.
    op: pb::Op,
    inputs: Vec<Output>,
    metadata: pb::OpMetadata,
}

impl Drop for Vertex {
    /// Frees the vertices only this one holds with a worklist: the default drop would drop each
    /// input inside its reader's drop, one stack frame per vertex of a chain.
    fn drop(&mut self) {
        let mut pending: Vec<Arc<Vertex>> = self.inputs.drain(..).map(|o| o.vertex).collect();
        while let Some(vertex) = pending.pop() {
            // `None` when someone else still holds it: then it is theirs to free.
            if let Some(mut vertex) = Arc::into_inner(vertex) {
                pending.extend(vertex.inputs.drain(..).map(|o| o.vertex));
            }
        }
    }
}

/// An output of a vertex: what a mount or a later op reads.
#[derive(Clone)]
struct Output {
    vertex: Arc<Vertex>,
    index: i64,
}

impl fmt::Debug for Output {
    /// The op and how many inputs it has, not the inputs themselves: a derived `Debug` would
    /// print the whole graph below, recursively.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("op", &self.vertex.op)
            .field("inputs", &self.vertex.inputs.len())
            .field("index", &self.index)
            .finish()
    }
}

impl Output {
    fn same(&self, other: &Output) -> bool {
        Arc::ptr_eq(&self.vertex, &other.vertex) && self.index == other.index
    }
}

/// How an image's reference is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolveMode {
    /// The local store when it has the image, else the registry.
    #[default]
    Default,
    /// Always ask the registry (`--pull`).
    ForcePull,
}

/// A filesystem and the defaults a run on it inherits.
#[derive(Debug, Clone, Default)]
pub struct State {
    output: Option<Output>,
    env: Vec<(String, String)>,
    cwd: Option<String>,
    user: Option<String>,
    platform: Option<pb::Platform>,
}

/// Options of a local source (files sent by the session's FileSync).
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    /// The session that serves the directory.
    pub session_id: Option<String>,
    /// Only these paths (fsutil patterns) are sent.
    pub include_patterns: Vec<String>,
    pub exclude_patterns: Vec<String>,
    /// Lets BuildKit reuse what it received before for the same directory.
    pub shared_key_hint: Option<String>,
    /// Makes the source a vertex of its own (`local.unique`), so that it is read from the host
    /// again, although an equal source was read earlier in the same build; not part of its
    /// cache key.
    pub unique_id: Option<String>,
    /// Name shown in progress.
    pub custom_name: Option<String>,
}

/// A mount of a run besides its root.
#[derive(Debug, Clone)]
pub enum Mount {
    /// `state` at `dest`, read-only, no output.
    ReadOnly { dest: String, state: State },
    /// `state` (or scratch) at `dest`, writable; its result is an output of the run.
    Writable { dest: String, state: State },
    /// A persistent cache directory.
    Cache {
        dest: String,
        id: String,
        sharing: CacheSharing,
    },
    /// A secret file from the session, read-only, never part of an output.
    Secret { dest: String, id: String },
    /// The session's ssh agent as a socket at [`SSH_AGENT_SOCKET`]; `SSH_AUTH_SOCK` points at it.
    Ssh,
}

/// How concurrent runs share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheSharing {
    #[default]
    Shared,
    Private,
    Locked,
}

/// The network of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    #[default]
    Default,
    None,
    Host,
}

/// A run (exec op): arguments and mounts; env, working directory and user come from the state.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub args: Vec<String>,
    pub mounts: Vec<Mount>,
    pub network: Network,
    /// Never take the result from the cache.
    pub ignore_cache: bool,
    /// Name shown in progress.
    pub custom_name: Option<String>,
}

/// The result of a run: its root and its writable mounts.
#[derive(Debug, Clone)]
pub struct Exec {
    root: State,
    outputs: Vec<(String, State)>,
}

impl Exec {
    /// The root filesystem after the run, with the defaults of the state it ran on.
    pub fn root(&self) -> State {
        self.root.clone()
    }

    /// The writable mount at `dest` after the run.
    pub fn output(&self, dest: &str) -> Option<State> {
        self.outputs
            .iter()
            .find(|(d, _)| d == dest)
            .map(|(_, s)| s.clone())
    }
}

/// Options of a copy between states.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// `src` may contain wildcards.
    pub allow_wildcard: bool,
    /// Copy a directory's contents rather than the directory (like Dockerfile COPY).
    pub dir_contents: bool,
    /// Create missing parents of `dest`.
    pub create_dest_path: bool,
    /// Follow a symlink at `src`.
    pub follow_symlink: bool,
    /// A wildcard `src` that matches nothing copies nothing (else it is an error).
    pub allow_empty_wildcard: bool,
    /// Name shown in progress.
    pub custom_name: Option<String>,
}

fn metadata(custom_name: Option<&str>, ignore_cache: bool) -> pb::OpMetadata {
    let mut description = BTreeMap::new();
    if let Some(name) = custom_name {
        description.insert(CUSTOM_NAME.to_owned(), name.to_owned());
    }
    pb::OpMetadata {
        ignore_cache,
        description,
        ..pb::OpMetadata::default()
    }
}

impl State {
    /// The empty filesystem.
    pub fn scratch() -> Self {
        Self::default()
    }

    fn from_source(
        identifier: String,
        attrs: BTreeMap<String, String>,
        platform: Option<pb::Platform>,
        name: Option<&str>,
    ) -> Self {
        let vertex = Vertex {
            op: pb::Op {
                op: Some(op::Op::Source(pb::SourceOp { identifier, attrs })),
                platform: platform.clone(),
                ..pb::Op::default()
            },
            inputs: Vec::new(),
            metadata: metadata(name, false),
        };
        Self {
            output: Some(Output {
                vertex: Arc::new(vertex),
                index: 0,
            }),
            platform,
            ..Self::default()
        }
    }

    /// An image's filesystem. `reference` should be fully qualified
    /// (`docker.io/library/busybox:latest`). Its config (env, user, workdir) is not applied here:
    /// resolve it through the gateway and set it with [`State::with_env`] and friends.
    pub fn image(reference: &str, mode: ResolveMode, platform: Option<pb::Platform>) -> Self {
        let mut attrs = BTreeMap::new();
        if mode == ResolveMode::ForcePull {
            attrs.insert("image.resolvemode".to_owned(), "pull".to_owned());
        }
        Self::from_source(format!("docker-image://{reference}"), attrs, platform, None)
    }

    /// A directory of the host, sent by the session named in `options`.
    pub fn local(name: &str, options: &LocalOptions) -> Self {
        let mut attrs = BTreeMap::new();
        // BuildKit reads pattern lists as JSON arrays.
        let json = |patterns: &[String]| serde_json::to_string(patterns).unwrap_or_default();
        if let Some(session) = &options.session_id {
            attrs.insert("local.session".to_owned(), session.clone());
        }
        if !options.include_patterns.is_empty() {
            attrs.insert(
                "local.includepattern".to_owned(),
                json(&options.include_patterns),
            );
        }
        if !options.exclude_patterns.is_empty() {
            attrs.insert(
                "local.excludepatterns".to_owned(),
                json(&options.exclude_patterns),
            );
        }
        if let Some(hint) = &options.shared_key_hint {
            attrs.insert("local.sharedkeyhint".to_owned(), hint.clone());
        }
        if let Some(unique) = &options.unique_id {
            attrs.insert("local.unique".to_owned(), unique.clone());
        }
        Self::from_source(
            format!("local://{name}"),
            attrs,
            None,
            options.custom_name.as_deref(),
        )
    }

    /// Sets (or replaces) an environment variable for later runs.
    pub fn with_env(&self, key: &str, value: &str) -> Self {
        let mut next = self.clone();
        match next.env.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => entry.1 = value.to_owned(),
            None => next.env.push((key.to_owned(), value.to_owned())),
        }
        next
    }

    /// Sets the working directory of later runs; relative paths resolve against the current one.
    pub fn with_cwd(&self, dir: &str) -> Self {
        let mut next = self.clone();
        next.cwd = Some(self.resolve(dir));
        next
    }

    /// Sets the user of later runs.
    pub fn with_user(&self, user: &str) -> Self {
        let mut next = self.clone();
        next.user = Some(user.to_owned());
        next
    }

    /// The working directory (`/` when unset).
    pub fn cwd(&self) -> &str {
        self.cwd.as_deref().unwrap_or("/")
    }

    /// The environment, in the order it was set.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// `path` made absolute against the working directory.
    pub fn resolve(&self, path: &str) -> String {
        if path.starts_with('/') {
            path.to_owned()
        } else {
            let base = self.cwd().trim_end_matches('/');
            format!("{base}/{path}")
        }
    }

    /// The same defaults on another filesystem.
    fn with_output(&self, output: Output) -> Self {
        Self {
            output: Some(output),
            ..self.clone()
        }
    }

    /// Runs `run` with this state as the root filesystem.
    pub fn run(&self, run: Run) -> Exec {
        let mut inputs: Vec<Output> = Vec::new();
        let mut input_index = |state: &State| -> i64 {
            match &state.output {
                None => EMPTY,
                Some(output) => match inputs.iter().position(|o| o.same(output)) {
                    Some(i) => i as i64,
                    None => {
                        inputs.push(output.clone());
                        (inputs.len() - 1) as i64
                    }
                },
            }
        };

        // Mounts sorted by destination, as BuildKit's own client does: "/" comes first and
        // parents before children.
        let mut specs: Vec<(String, &Mount)> =
            run.mounts.iter().map(|m| (mount_dest(m), m)).collect();
        specs.sort_by(|a, b| a.0.cmp(&b.0));

        let mut env = self.env.clone();
        let mut mounts = Vec::with_capacity(specs.len() + 1);
        mounts.push(pb::Mount {
            input: input_index(self),
            dest: "/".to_owned(),
            output: 0,
            ..pb::Mount::default()
        });
        let mut writable = Vec::new();
        for (dest, mount) in specs {
            let mut m = pb::Mount {
                input: EMPTY,
                dest: dest.clone(),
                output: SKIP_OUTPUT,
                ..pb::Mount::default()
            };
            match mount {
                Mount::ReadOnly { state, .. } => {
                    m.input = input_index(state);
                    m.readonly = true;
                }
                Mount::Writable { state, .. } => {
                    m.input = input_index(state);
                    m.output = (writable.len() + 1) as i64;
                    writable.push(dest.clone());
                }
                Mount::Cache { id, sharing, .. } => {
                    m.mount_type = pb::MountType::Cache as i32;
                    m.cache_opt = Some(pb::CacheOpt {
                        id: id.clone(),
                        sharing: match sharing {
                            CacheSharing::Shared => pb::CacheSharingOpt::Shared,
                            CacheSharing::Private => pb::CacheSharingOpt::Private,
                            CacheSharing::Locked => pb::CacheSharingOpt::Locked,
                        } as i32,
                    });
                }
                Mount::Secret { id, .. } => {
                    m.mount_type = pb::MountType::Secret as i32;
                    m.secret_opt = Some(pb::SecretOpt {
                        id: id.clone(),
                        mode: 0o400,
                        ..pb::SecretOpt::default()
                    });
                }
                Mount::Ssh => {
                    m.mount_type = pb::MountType::Ssh as i32;
                    m.ssh_opt = Some(pb::SshOpt {
                        id: "default".to_owned(),
                        mode: 0o600,
                        ..pb::SshOpt::default()
                    });
                    if !env.iter().any(|(k, _)| k == "SSH_AUTH_SOCK") {
                        env.push(("SSH_AUTH_SOCK".to_owned(), SSH_AGENT_SOCKET.to_owned()));
                    }
                }
            }
            mounts.push(m);
        }

        let exec = pb::ExecOp {
            meta: Some(pb::Meta {
                args: run.args,
                env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                cwd: self.cwd().to_owned(),
                user: self.user.clone().unwrap_or_default(),
                ..pb::Meta::default()
            }),
            mounts,
            network: match run.network {
                Network::Default => pb::NetMode::Unset,
                Network::None => pb::NetMode::None,
                Network::Host => pb::NetMode::Host,
            } as i32,
            ..pb::ExecOp::default()
        };
        let vertex = Arc::new(Vertex {
            op: pb::Op {
                op: Some(op::Op::Exec(exec)),
                platform: self.platform.clone(),
                ..pb::Op::default()
            },
            inputs,
            metadata: metadata(run.custom_name.as_deref(), run.ignore_cache),
        });
        let output = |index| Output {
            vertex: vertex.clone(),
            index,
        };
        Exec {
            root: self.with_output(output(0)),
            outputs: writable
                .into_iter()
                .enumerate()
                .map(|(i, dest)| (dest, State::scratch().with_output(output(i as i64 + 1))))
                .collect(),
        }
    }

    fn file(
        &self,
        action: file_action::Action,
        secondary: Option<&State>,
        name: Option<&str>,
    ) -> Self {
        let mut inputs = Vec::new();
        let mut index = |state: &State| match &state.output {
            None => EMPTY,
            Some(output) => {
                inputs.push(output.clone());
                (inputs.len() - 1) as i64
            }
        };
        let input = index(self);
        let secondary_input = secondary.map_or(EMPTY, &mut index);
        let vertex = Vertex {
            op: pb::Op {
                op: Some(op::Op::File(pb::FileOp {
                    actions: vec![pb::FileAction {
                        input,
                        secondary_input,
                        output: 0,
                        action: Some(action),
                    }],
                })),
                platform: self.platform.clone(),
                ..pb::Op::default()
            },
            inputs,
            metadata: metadata(name, false),
        };
        self.with_output(Output {
            vertex: Arc::new(vertex),
            index: 0,
        })
    }

    /// Creates directory `path` (relative to the working directory) with its parents.
    pub fn mkdir(&self, path: &str, mode: u32) -> Self {
        self.file(
            file_action::Action::Mkdir(pb::FileActionMkDir {
                path: self.resolve(path),
                mode: mode as i32,
                make_parents: true,
                timestamp: -1,
                ..pb::FileActionMkDir::default()
            }),
            None,
            None,
        )
    }

    /// Writes a file with `data` at `path` (relative to the working directory).
    pub fn mkfile(&self, path: &str, mode: u32, data: Vec<u8>) -> Self {
        self.file(
            file_action::Action::Mkfile(pb::FileActionMkFile {
                path: self.resolve(path),
                mode: mode as i32,
                data,
                timestamp: -1,
                ..pb::FileActionMkFile::default()
            }),
            None,
            None,
        )
    }

    /// The copy of `src` of `from` to `dest` (relative to this state's working directory).
    fn copy_action(
        &self,
        from: &State,
        src: &str,
        dest: &str,
        options: &CopyOptions,
    ) -> pb::FileActionCopy {
        pb::FileActionCopy {
            src: from.resolve(src),
            dest: self.resolve(dest),
            mode: -1,
            timestamp: -1,
            follow_symlink: options.follow_symlink,
            dir_copy_contents: options.dir_contents,
            create_dest_path: options.create_dest_path,
            allow_wildcard: options.allow_wildcard,
            allow_empty_wildcard: options.allow_empty_wildcard,
            ..pb::FileActionCopy::default()
        }
    }

    /// Copies each `(from, src, dest)` in turn, in one file op (one snapshot, however many
    /// copies): a later copy overwrites what an earlier one wrote at the same path. `dest` is
    /// relative to this state's working directory. Returns this state when `copies` is empty.
    pub fn copy_all(&self, copies: &[(&State, &str, &str)], options: &CopyOptions) -> Self {
        if copies.is_empty() {
            return self.clone();
        }
        let mut inputs: Vec<Output> = Vec::new();
        let mut index = |state: &State| match &state.output {
            None => EMPTY,
            Some(output) => match inputs.iter().position(|known| known.same(output)) {
                Some(i) => i as i64,
                None => {
                    inputs.push(output.clone());
                    (inputs.len() - 1) as i64
                }
            },
        };
        let first = index(self);
        let secondaries: Vec<i64> = copies.iter().map(|(from, _, _)| index(from)).collect();
        let count = inputs.len() as i64;
        let actions = copies
            .iter()
            .zip(secondaries)
            .enumerate()
            .map(|(k, ((from, src, dest), secondary_input))| pb::FileAction {
                // The first copy reads this state; each later one the previous copy's result,
                // which BuildKit numbers after the op's inputs.
                input: if k == 0 { first } else { count + k as i64 - 1 },
                secondary_input,
                output: if k + 1 == copies.len() {
                    0
                } else {
                    SKIP_OUTPUT
                },
                action: Some(file_action::Action::Copy(
                    self.copy_action(from, src, dest, options),
                )),
            })
            .collect();
        let vertex = Vertex {
            op: pb::Op {
                op: Some(op::Op::File(pb::FileOp { actions })),
                platform: self.platform.clone(),
                ..pb::Op::default()
            },
            inputs,
            metadata: metadata(options.custom_name.as_deref(), false),
        };
        self.with_output(Output {
            vertex: Arc::new(vertex),
            index: 0,
        })
    }

    /// Copies `src` of `from` to `dest` (relative to this state's working directory).
    pub fn copy(&self, from: &State, src: &str, dest: &str, options: &CopyOptions) -> Self {
        self.file(
            file_action::Action::Copy(self.copy_action(from, src, dest, options)),
            Some(from),
            options.custom_name.as_deref(),
        )
    }

    /// The definition of this state's filesystem, ready for a solve. Equal graphs marshal to equal
    /// bytes.
    pub fn marshal(&self) -> pb::Definition {
        let mut definition = pb::Definition::default();
        let Some(root) = &self.output else {
            return definition;
        };
        let mut digests: HashMap<*const Vertex, String> = HashMap::new();
        let root_digest = marshal_vertex(&root.vertex, &mut digests, &mut definition);
        // The terminal op: only an input, naming the result.
        let terminal = pb::Op {
            inputs: vec![pb::Input {
                digest: root_digest,
                index: root.index,
            }],
            ..pb::Op::default()
        };
        definition.def.push(terminal.encode_to_vec());
        definition
    }
}

fn mount_dest(mount: &Mount) -> String {
    match mount {
        Mount::ReadOnly { dest, .. }
        | Mount::Writable { dest, .. }
        | Mount::Cache { dest, .. }
        | Mount::Secret { dest, .. } => dest.clone(),
        Mount::Ssh => SSH_AGENT_SOCKET.to_owned(),
    }
}

/// Appends `root` and every vertex it reads, each after its inputs (depth first, inputs in
/// order), to `definition` once; returns the digest of `root`.
fn marshal_vertex(
    root: &Arc<Vertex>,
    digests: &mut HashMap<*const Vertex, String>,
    definition: &mut pb::Definition,
) -> String {
    /// A vertex whose inputs are being marshalled: the digests of those done so far.
    struct Frame<'g> {
        vertex: &'g Arc<Vertex>,
        inputs: Vec<pb::Input>,
    }
    fn frame(vertex: &Arc<Vertex>) -> Frame<'_> {
        Frame {
            vertex,
            inputs: Vec::with_capacity(vertex.inputs.len()),
        }
    }

    if let Some(digest) = digests.get(&Arc::as_ptr(root)) {
        return digest.clone();
    }
    // An explicit stack rather than recursion, which overflowed the thread's stack on a chain of
    // a few thousand ops (one per copy).
    let mut stack = vec![frame(root)];
    loop {
        let top = stack
            .last_mut()
            .expect("the stack holds the root until it returns");
        let vertex: &Arc<Vertex> = top.vertex;
        if let Some(input) = vertex.inputs.get(top.inputs.len()) {
            match digests.get(&Arc::as_ptr(&input.vertex)) {
                Some(digest) => top.inputs.push(pb::Input {
                    digest: digest.clone(),
                    index: input.index,
                }),
                None => stack.push(frame(&input.vertex)),
            }
            continue;
        }
        // Every input is marshalled: this vertex's turn.
        let Frame { vertex, inputs } = stack.pop().expect("the top frame");
        let op = pb::Op {
            inputs,
            ..vertex.op.clone()
        };
        let bytes = op.encode_to_vec();
        let digest = digest(&bytes);
        // Two equal vertices built separately marshal to the same bytes: keep one.
        if !definition.metadata.contains_key(&digest) {
            definition.def.push(bytes);
            definition
                .metadata
                .insert(digest.clone(), vertex.metadata.clone());
        }
        digests.insert(Arc::as_ptr(vertex), digest.clone());
        match stack.last_mut() {
            Some(reader) => {
                let index = reader.vertex.inputs[reader.inputs.len()].index;
                reader.inputs.push(pb::Input { digest, index });
            }
            None => return digest,
        }
    }
}

/// `sha256:<hex>` of `bytes`: how BuildKit names a vertex.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for byte in hash {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests;
