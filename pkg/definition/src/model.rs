//! The typed build definition, read from JSON that the schema has already accepted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The supported `apiVersion` values. v2 (BrewKit 1.1 files) shares v1's schema.
pub const API_VERSIONS: [&str; 2] = ["brewkit/v1", "brewkit/v2"];

/// The target built when none is named.
pub const DEFAULT_TARGET: &str = "all";

/// A validated build definition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Definition {
    /// One of [`API_VERSIONS`]; both mean the same schema.
    pub api_version: String,
    /// The vars by name: runs whose output `${name}` in a command stands for.
    #[serde(default)]
    pub vars: BTreeMap<String, Var>,
    /// The targets by name; names starting with `_` are private.
    #[serde(default)]
    pub targets: BTreeMap<String, Target>,
}

/// A target: a stage (a container run) or a composite (a list of targets to build).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)] // A definition holds a few thousand at most; boxing buys nothing.
pub enum Target {
    /// Names of other targets, built one after another in this order.
    Composite(Vec<String>),
    /// A container run, with what it depends on and what it outputs.
    Stage(Stage),
}

/// The directives a stage target and a var share.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    /// Another target, `scratch`, or an image reference.
    /// `None` is `scratch`, an empty filesystem.
    pub from: Option<String>,
    /// BuildKit's `os/arch[/variant]` (`linux/amd64`) to run and pull images for; `None`: the
    /// daemon's own platform.
    pub platform: Option<String>,
    /// Working directory of the copies and the command, created if missing; relative to the
    /// base's working directory. `None` keeps the base's.
    pub workdir: Option<String>,
    /// Environment variables set on top of the base's (an image's `Env` or another target's).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// BuildKit cache mounts for the command; never part of the target's filesystem.
    #[serde(default)]
    pub cache: Vec<Cache>,
    /// Copies made before the command, in this order.
    #[serde(default)]
    pub copy: Vec<Copy>,
    /// Host-config secrets mounted for the command only, never written to a layer.
    #[serde(default)]
    pub secrets: Vec<SecretMount>,
    /// The command's network; `None` is [`Network::Default`].
    pub network: Option<Network>,
    /// `Some` forwards the host's SSH agent (`$SSH_AUTH_SOCK`) to the command.
    pub ssh: Option<Ssh>,
    /// Run as `/bin/sh -c`, with `${var}` references replaced; `None`: no command, the
    /// filesystem is the base plus workdir and copies.
    pub command: Option<String>,
}

/// A stage target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    /// What the stage runs (the directives it shares with vars).
    #[serde(flatten)]
    pub run: Run,
    /// Targets that must finish, outputs included, before this one starts (`dependsOn`).
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Files copied to the host after the target succeeds.
    #[serde(default)]
    pub output: Vec<Output>,
}

/// A var: a run whose stdout is the value of `${name}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Var {
    /// What the var runs; its value is the command's stdout without trailing line breaks.
    #[serde(flatten)]
    pub run: Run,
}

/// A BuildKit cache mount.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Cache {
    /// BuildKit's cache id: runs that name the same id share the cache, across builds.
    pub id: String,
    /// Where the cache is mounted in the container.
    pub path: String,
}

/// A copy into the run's filesystem, from the build context or (with `from`) a target or image.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Copy {
    /// A target or an image to read `src` from (`copyFrom`); `None`: the build context.
    pub from: Option<String>,
    /// What to copy: a path or wildcard, relative to the build context (or, with `from`, in
    /// that filesystem); a directory copies its contents.
    pub src: String,
    /// Where it lands in the run's filesystem; relative to the workdir.
    pub dst: String,
}

impl Copy {
    /// Whether this is a copy from the build context (no `from`) whose relative `src`, cleaned
    /// lexically (`a/../..` is `..`), names something outside the context. An absolute `src`
    /// is read from the context root, so it never leaves it.
    pub fn leaves_context(&self) -> bool {
        if self.from.is_some() || self.src.starts_with('/') {
            return false;
        }
        let mut depth = 0usize;
        for part in self.src.split('/') {
            match part {
                "" | "." => {}
                ".." if depth == 0 => return true,
                ".." => depth -= 1,
                _ => depth += 1,
            }
        }
        false
    }
}

/// A secret from the host config mounted at `path`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SecretMount {
    /// The secret's id, as declared in the host config's `secrets`.
    pub id: String,
    /// Where the secret file is mounted in the container.
    pub path: String,
}

/// An output: `artifact` in the target's filesystem copied to `local` on the host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Output {
    /// A path or wildcard in the target's filesystem.
    pub artifact: String,
    /// The host directory it is copied into; a relative path starts at the build context.
    pub local: String,
}

/// The network of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// BuildKit's default: the container's own, isolated network.
    #[default]
    Default,
    /// No network: the command sees only a loopback interface.
    None,
    /// The host's network; needs the `network.host` entitlement.
    Host,
}

/// Forwarding of the host's ssh agent. Empty for now: the reference keeps it an object so that
/// options can be added later.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Ssh {}

impl Definition {
    /// The stage target `name`, if it is one.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        match self.targets.get(name) {
            Some(Target::Stage(stage)) => Some(stage),
            _ => None,
        }
    }

    /// Target names that may be given on the command line (not starting with `_`).
    pub fn public_targets(&self) -> impl Iterator<Item = &str> {
        self.targets
            .keys()
            .map(String::as_str)
            .filter(|name| !is_private(name))
    }
}

/// Whether a target is private: usable by other targets, refused on the command line.
pub fn is_private(name: &str) -> bool {
    name.starts_with('_')
}

/// Rewrites schema-valid JSON into its normal form: every list-able directive (`copy`, `cache`,
/// `secrets`, `output`) a list, every output `{"artifact", "local"}`. Keys are the input's own.
pub fn normalize(value: &Value) -> Value {
    let mut out = value.clone();
    for section in ["vars", "targets"] {
        let Some(entries) = out.get_mut(section).and_then(Value::as_object_mut) else {
            continue;
        };
        for entry in entries.values_mut() {
            if let Value::Object(run) = entry {
                normalize_run(run);
            }
        }
    }
    out
}

fn normalize_run(run: &mut Map<String, Value>) {
    for key in ["copy", "cache", "secrets", "output"] {
        if let Some(value) = run.get_mut(key) {
            if !value.is_array() {
                *value = Value::Array(vec![value.take()]);
            }
        }
    }
    if let Some(Value::Array(outputs)) = run.get_mut("output") {
        for output in outputs {
            if let Value::String(short) = output {
                // The schema allows exactly one ':' in the short form.
                let (artifact, local) = short.split_once(':').unwrap_or((short.as_str(), ""));
                *output = serde_json::json!({"artifact": artifact, "local": local});
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn normalize_makes_lists_and_output_objects() {
        let raw = json!({
            "apiVersion": "brewkit/v1",
            "vars": {"v": {"from": "a", "command": "b", "copy": {"src": "x", "dst": "y"}}},
            "targets": {
                "all": ["a"],
                "a": {"cache": {"id": "c", "path": "/c"}, "secrets": {"id": "s", "path": "/s"},
                      "output": "/app/bin:./bin"},
                "b": {"output": ["/x:y", {"artifact": "/z", "local": "w"}], "copy": []}
            }
        });
        let normal = normalize(&raw);
        assert_eq!(
            normal["vars"]["v"]["copy"],
            json!([{"src": "x", "dst": "y"}])
        );
        assert_eq!(normal["targets"]["all"], json!(["a"]));
        assert_eq!(
            normal["targets"]["a"]["cache"],
            json!([{"id": "c", "path": "/c"}])
        );
        assert_eq!(
            normal["targets"]["a"]["secrets"],
            json!([{"id": "s", "path": "/s"}])
        );
        assert_eq!(
            normal["targets"]["a"]["output"],
            json!([{"artifact": "/app/bin", "local": "./bin"}])
        );
        assert_eq!(
            normal["targets"]["b"]["output"],
            json!([{"artifact": "/x", "local": "y"}, {"artifact": "/z", "local": "w"}])
        );
        assert_eq!(normal["targets"]["b"]["copy"], json!([]));
        // No key is added that the input did not have.
        assert!(normal["targets"]["a"].get("copy").is_none());
        let typed: Definition = serde_json::from_value(normal).unwrap();
        assert_eq!(typed.targets["all"], Target::Composite(vec!["a".into()]));
        assert_eq!(typed.stage("a").unwrap().output[0].local, "./bin");
    }

    #[test]
    fn an_empty_object_is_a_stage() {
        let typed: Definition =
            serde_json::from_value(json!({"apiVersion": "brewkit/v1", "targets": {"a": {}}}))
                .unwrap();
        assert_eq!(typed.targets["a"], Target::Stage(Stage::default()));
    }

    #[test]
    fn a_context_copy_leaves_the_context_only_through_dot_dot() {
        let copy = |from: Option<&str>, src: &str| Copy {
            from: from.map(str::to_owned),
            src: src.to_owned(),
            dst: "x".to_owned(),
        };
        for src in [
            "..",
            "../x",
            "./..",
            "a/../..",
            "a/../../b",
            "a/b/../../../c",
            "*/../../*",
        ] {
            assert!(copy(None, src).leaves_context(), "{src}");
        }
        for src in [
            ".",
            "./",
            "x",
            "a/..",
            "a/b/../../c",
            "..x",
            "x..",
            "/..",
            "/../x",
            "a//b/",
        ] {
            assert!(!copy(None, src).leaves_context(), "{src}");
        }
        assert!(
            !copy(Some("_src"), "../x").leaves_context(),
            "copyFrom reads another filesystem"
        );
    }

    #[test]
    fn private_targets() {
        assert!(is_private("_sources"));
        assert!(!is_private("build"));
    }
}
