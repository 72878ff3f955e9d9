//! Runs (exec ops) and their mounts.

use std::sync::Arc;

use crate::{
    pb,
    pb::op,
    state::{metadata, Output, Vertex},
    State, EMPTY, SKIP_OUTPUT,
};

/// Where an ssh agent socket is mounted, as BuildKit's own client does.
pub const SSH_AGENT_SOCKET: &str = "/run/buildkit/ssh_agent.0";

/// A mount of a run besides its root.
#[derive(Debug, Clone)]
pub enum Mount {
    /// `state` at `dest`, read-only, no output.
    ReadOnly {
        /// Absolute path in the run's filesystem.
        dest: String,
        /// The filesystem mounted there.
        state: State,
    },
    /// `state` (or scratch) at `dest`, writable; its result is an output of the run.
    Writable {
        /// Absolute path in the run's filesystem; [`Exec::output`] finds the result by it.
        dest: String,
        /// The filesystem the mount starts with ([`State::scratch`] for an empty directory).
        state: State,
    },
    /// A persistent cache directory.
    Cache {
        /// Absolute path in the run's filesystem.
        dest: String,
        /// BuildKit's cache id: every run mounting the same id sees the same directory, across
        /// builds, until the cache is pruned.
        id: String,
        /// What happens when runs use the cache at the same time.
        sharing: CacheSharing,
    },
    /// A secret file from the session, read-only, never part of an output.
    Secret {
        /// Absolute path of the file in the run's filesystem (mode 0400).
        dest: String,
        /// The id the session's Secrets service is asked for.
        id: String,
    },
    /// The session's ssh agent as a socket at [`SSH_AGENT_SOCKET`]; `SSH_AUTH_SOCK` points at it.
    Ssh,
}

/// How concurrent runs share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CacheSharing {
    /// Concurrent runs use the same directory at once.
    #[default]
    Shared,
    /// A run that finds the directory in use gets a new one of its own.
    Private,
    /// A run that finds the directory in use waits until it is released.
    Locked,
}

/// The network of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// BuildKit's default: the run's own sandboxed network (`NetMode` unset).
    #[default]
    Default,
    /// No network but loopback.
    None,
    /// The daemon host's network; BuildKit refuses it unless the solve grants the
    /// `network.host` entitlement.
    Host,
}

/// A run (exec op): arguments and mounts; env, working directory and user come from the state.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The command line, executed directly (`["/bin/sh", "-c", script]` for a shell).
    pub args: Vec<String>,
    /// Mounts besides the root, in any order: they are sorted by destination.
    pub mounts: Vec<Mount>,
    /// The run's network.
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

impl State {
    /// Runs `run` with this state as the root filesystem.
    pub fn run(&self, run: RunOptions) -> Exec {
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
}

pub(crate) fn mount_dest(mount: &Mount) -> String {
    match mount {
        Mount::ReadOnly { dest, .. }
        | Mount::Writable { dest, .. }
        | Mount::Cache { dest, .. }
        | Mount::Secret { dest, .. } => dest.clone(),
        Mount::Ssh => SSH_AGENT_SOCKET.to_owned(),
    }
}
