//! [`State`]: a filesystem (an output of a vertex of the graph) and the defaults a run on it
//! inherits.

use std::{collections::BTreeMap, fmt, sync::Arc};

use crate::{pb, CUSTOM_NAME};

/// One op of the graph, with its inputs as outputs of other vertices.
///
/// A graph may be a chain of thousands of vertices (one file op per copy), so nothing walks it
/// by recursion: marshalling, dropping and `Debug` each take a bounded amount of stack.
pub(crate) struct Vertex {
    /// The op without `inputs`, which are filled in from `inputs` when marshalling.
    pub(crate) op: pb::Op,
    pub(crate) inputs: Vec<Output>,
    pub(crate) metadata: pb::OpMetadata,
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
pub(crate) struct Output {
    pub(crate) vertex: Arc<Vertex>,
    pub(crate) index: i64,
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
    pub(crate) fn same(&self, other: &Output) -> bool {
        Arc::ptr_eq(&self.vertex, &other.vertex) && self.index == other.index
    }
}

/// A filesystem and the defaults a run on it inherits.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub(crate) output: Option<Output>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) cwd: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) platform: Option<pb::Platform>,
}

impl State {
    /// The empty filesystem.
    pub fn scratch() -> Self {
        Self::default()
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
    pub(crate) fn with_output(&self, output: Output) -> Self {
        Self {
            output: Some(output),
            ..self.clone()
        }
    }

    /// Applies an image's config: its env in order, its user and working directory (each only
    /// when set), as the Dockerfile frontend does for `FROM`.
    pub fn with_image_config(&self, env: &[String], user: &str, working_dir: &str) -> Self {
        let mut state = self.clone();
        for entry in env {
            if let Some((key, value)) = entry.split_once('=') {
                state = state.with_env(key, value);
            }
        }
        if !user.is_empty() {
            state = state.with_user(user);
        }
        if !working_dir.is_empty() {
            state = state.with_cwd(working_dir);
        }
        state
    }
}

/// Parses `os/arch[/variant]`.
pub fn platform(text: &str) -> Option<pb::Platform> {
    let mut parts = text.split('/');
    let os = parts.next()?.to_owned();
    let architecture = parts.next()?.to_owned();
    let variant = parts.next().unwrap_or_default().to_owned();
    Some(pb::Platform {
        os,
        architecture,
        variant,
        ..pb::Platform::default()
    })
}

pub(crate) fn metadata(custom_name: Option<&str>, ignore_cache: bool) -> pb::OpMetadata {
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
