//! Sources: images and the session's local directories.

use std::collections::BTreeMap;

use crate::{
    pb,
    pb::op,
    state::{metadata, Output, Vertex},
    State,
};
use std::sync::Arc;

/// How an image reference is resolved, for an image source and for the gateway's
/// ResolveImageConfig alike (BuildKit's `llb.ResolveMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolveMode {
    /// The local store when it has the image, else the registry.
    #[default]
    Default,
    /// Always ask the registry (`--pull`).
    ForcePull,
}

impl ResolveMode {
    /// The mode as BuildKit spells it on the wire (`image.resolvemode`, ResolveImageConfig).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::ForcePull => "pull",
        }
    }
}

/// How a local source is read: which session serves the directory and which of its paths are
/// sent (BuildKit's `llb.LocalOption`s).
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    /// The session that serves the directory.
    pub session_id: Option<String>,
    /// Only these paths (fsutil patterns) are sent.
    pub include_patterns: Vec<String>,
    /// Paths (fsutil patterns; `!` re-includes) never sent, even when an include pattern
    /// matches them.
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

impl State {
    pub(crate) fn from_source(
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
            attrs.insert("image.resolvemode".to_owned(), mode.as_str().to_owned());
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
}
