//! File ops: mkdir, mkfile and copies, each action on the previous one's result.

use std::sync::Arc;

use crate::{
    pb,
    pb::{file_action, op},
    state::{metadata, Output, Vertex},
    State, EMPTY, SKIP_OUTPUT,
};

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

impl State {
    /// A file op of one action (mkdir, mkfile) on this state.
    fn file(&self, action: file_action::Action) -> Self {
        let (inputs, input) = match &self.output {
            None => (Vec::new(), EMPTY),
            Some(output) => (vec![output.clone()], 0),
        };
        let vertex = Vertex {
            op: pb::Op {
                op: Some(op::Op::File(pb::FileOp {
                    actions: vec![pb::FileAction {
                        input,
                        secondary_input: EMPTY,
                        output: 0,
                        action: Some(action),
                    }],
                })),
                platform: self.platform.clone(),
                ..pb::Op::default()
            },
            inputs,
            metadata: metadata(None, false),
        };
        self.with_output(Output {
            vertex: Arc::new(vertex),
            index: 0,
        })
    }

    /// Creates directory `path` (relative to the working directory) with its parents.
    pub fn mkdir(&self, path: &str, mode: u32) -> Self {
        self.file(file_action::Action::Mkdir(pb::FileActionMkDir {
            path: self.resolve(path),
            mode: mode as i32,
            make_parents: true,
            timestamp: -1,
            ..pb::FileActionMkDir::default()
        }))
    }

    /// Writes a file with `data` at `path` (relative to the working directory).
    pub fn mkfile(&self, path: &str, mode: u32, data: Vec<u8>) -> Self {
        self.file(file_action::Action::Mkfile(pb::FileActionMkFile {
            path: self.resolve(path),
            mode: mode as i32,
            data,
            timestamp: -1,
            ..pb::FileActionMkFile::default()
        }))
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
        self.copy_all(&[(from, src, dest)], options)
    }
}
