//! Every image the build starts from or copies from, resolved once at the start and pinned by
//! digest, as the Dockerfile frontend does: a tag that moves during the build cannot give two
//! targets different bases, and every solve names the same vertex.

use std::collections::{BTreeMap, HashMap};

use brewkit_buildkit::gateway::{self, Gateway, ImageRunConfig};
use brewkit_definition::{Base, Definition, Node, Plan};
use brewkit_llb::ResolveMode;
use brewkit_llb::State;

use crate::{host::run_of, lower, route::Router, Error};

/// An image and the platform it is wanted for.
type Key = (String, Option<String>);

/// The resolved images of a build.
#[derive(Debug, Default)]
pub(crate) struct Images {
    resolved: HashMap<Key, Resolved>,
    pull: bool,
}

#[derive(Debug)]
struct Resolved {
    /// The reference with its digest (`…:tag@sha256:…`) when the daemon gave one.
    pinned: String,
    config: ImageRunConfig,
}

impl Images {
    /// Resolves every image `plan` uses, in plan order; each resolution's progress is shown
    /// under the first node that needs the image.
    pub(crate) async fn resolve(
        gateway: &Gateway,
        router: &Router,
        definition: &Definition,
        plan: &Plan,
        pull: bool,
    ) -> Result<Self, Error> {
        let mut wanted: BTreeMap<Key, String> = BTreeMap::new();
        let mut order = Vec::new();
        for node in &plan.nodes {
            let Some(run) = run_of(definition, node) else {
                continue;
            };
            let (base, copy_sources) = match node {
                Node::Target(name) => {
                    let planned = &plan.targets[name];
                    (planned.base.as_ref(), &planned.copy_sources)
                }
                Node::Var(name) => {
                    let planned = &plan.vars[name];
                    (Some(&planned.base), &planned.copy_sources)
                }
            };
            let images = base
                .into_iter()
                .chain(copy_sources.iter().flatten())
                .filter_map(|b| match b {
                    Base::Image(image) => Some(image.clone()),
                    _ => None,
                });
            for image in images {
                let key = (image, run.platform.clone());
                if !wanted.contains_key(&key) {
                    wanted.insert(key.clone(), node.label());
                    order.push(key);
                }
            }
        }
        let mode = if pull {
            ResolveMode::ForcePull
        } else {
            ResolveMode::Default
        };
        let mut resolved = HashMap::new();
        for key in order {
            let (image, platform) = &key;
            let needed_by = &wanted[&key];
            let parsed = platform.as_deref().and_then(lower::platform);
            router.claim_name(needed_by, gateway::resolve_log_name(image, parsed.as_ref()));
            let answer = gateway
                .resolve_image_config(image, parsed, mode)
                .await
                .map_err(|e| Error::Failed {
                    node: needed_by.clone(),
                    command: None,
                    failure: crate::SolveFailure {
                        message: format!("resolving image {image}: {e}"),
                        ..crate::SolveFailure::default()
                    },
                })?;
            resolved.insert(
                key.clone(),
                Resolved {
                    pinned: pin(image, &answer.digest),
                    config: answer.config,
                },
            );
        }
        Ok(Self { resolved, pull })
    }

    /// The image's filesystem, pinned, without its config (for a copy source).
    pub(crate) fn filesystem(&self, image: &str, platform: &Option<String>) -> Option<State> {
        let resolved = self.resolved.get(&(image.to_owned(), platform.clone()))?;
        let mode = if self.pull {
            ResolveMode::ForcePull
        } else {
            ResolveMode::Default
        };
        Some(State::image(
            &resolved.pinned,
            mode,
            platform.as_deref().and_then(lower::platform),
        ))
    }

    /// The image's filesystem, pinned, with its config (env, user, workdir) applied: a base.
    pub(crate) fn base(&self, image: &str, platform: &Option<String>) -> Option<State> {
        let resolved = self.resolved.get(&(image.to_owned(), platform.clone()))?;
        let state = self.filesystem(image, platform)?;
        Some(lower::apply_image_config(state, &resolved.config))
    }
}

/// `image` pinned to `digest`, keeping its tag for people (`…/busybox:latest@sha256:…`); as it
/// is when the daemon gave no digest (Docker's image store answers none for a local image) or
/// the reference has one already.
pub(crate) fn pin(image: &str, digest: &str) -> String {
    if digest.is_empty() || image.contains('@') {
        image.to_owned()
    } else {
        format!("{image}@{digest}")
    }
}

#[cfg(test)]
mod tests {
    use super::pin;

    #[test]
    fn images_are_pinned_by_digest_when_there_is_one() {
        let digest = "sha256:0123";
        assert_eq!(
            pin("docker.io/library/busybox:latest", digest),
            "docker.io/library/busybox:latest@sha256:0123"
        );
        assert_eq!(
            pin("docker.io/library/busybox:latest", ""),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            pin("docker.io/library/busybox@sha256:aaaa", digest),
            "docker.io/library/busybox@sha256:aaaa"
        );
    }
}
