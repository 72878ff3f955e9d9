//! The build definition: `brewkit.jsonnet` evaluated (with the natives `cache`, `copy`,
//! `copyFrom`, `secret`), checked against the v1 schema, typed, and planned.
//!
//! ```text
//! brewkit.jsonnet ──compile──▶ raw JSON ──load (apiVersion, schema, normalize)──▶ Definition
//!                 ──Plan::new (targets asked for)──▶ Plan ──check_host (config)──▶ ready to build
//! ```

pub mod graph;
mod image;
mod model;
pub mod natives;
mod plan;

use std::path::{Path, PathBuf};

use brewkit_config::Entitlement;
use brewkit_schema::{PathSegment, Schema, Violation};
use serde_json::Value;

pub use image::normalize as normalize_image;
pub use model::{
    is_private, normalize, Cache, Copy, Definition, Network, Output, Run, SecretMount, Ssh, Stage,
    Target, Var, API_VERSIONS, DEFAULT_TARGET,
};
pub use plan::{substitute, var_references, Base, Node, Plan, PlannedTarget, PlannedVar};

/// The file read when `-f` is not given.
pub const DEFAULT_FILE: &str = "brewkit.jsonnet";

/// Why a definition cannot be built. Every variant is bad input (exit code 2 at the CLI).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file does not evaluate: a Jsonnet syntax or runtime error, or an unreadable file.
    #[error(transparent)]
    Jsonnet(#[from] brewkit_jsonnet::Error),
    /// The file evaluates to an object without `apiVersion`.
    #[error("{}: apiVersion is missing; add apiVersion: '{}' at the top level", file.display(), API_VERSIONS[0])]
    MissingApiVersion {
        /// The definition file.
        file: PathBuf,
    },
    /// `apiVersion` is not one of [`API_VERSIONS`].
    #[error("{}: apiVersion {found} is not supported; supported: {}", file.display(), API_VERSIONS.join(", "))]
    UnsupportedApiVersion {
        /// The definition file.
        file: PathBuf,
        /// The value the file gives, whatever its JSON type.
        found: Value,
    },
    /// The JSON breaks the build-definition schema, or a context copy's `src` leaves the build
    /// context.
    #[error("{}: the build definition is not valid:\n{}", file.display(), render_violations(violations))]
    Invalid {
        /// The definition file.
        file: PathBuf,
        /// Every problem found, each with its JSON path.
        violations: Vec<Violation>,
    },
    /// A name that should be a target is not one.
    #[error("unknown target \"{name}\" in {referrer}{}", hint(suggestion))]
    UnknownTarget {
        /// The name as written.
        name: String,
        /// Where it was written: "the command line", `dependsOn of target "x"`,
        /// `composite target "x"`.
        referrer: String,
        /// The closest target name, when one is close enough to be a likely typo.
        suggestion: Option<String>,
    },
    /// A private target (its name starts with `_`) was named on the command line.
    #[error("target \"{name}\" is private (its name starts with _): other targets may use it, the command line may not")]
    PrivateTarget {
        /// The target's name.
        name: String,
    },
    /// No target was named and the definition has no [`DEFAULT_TARGET`].
    #[error("no target named and no \"{DEFAULT_TARGET}\" target to build by default; name one of: {}", public.join(", "))]
    NoDefaultTarget {
        /// The targets that may be named on the command line, sorted.
        public: Vec<String>,
    },
    /// Targets and vars need each other in a circle, through `from`, `copy[].from`,
    /// `dependsOn`, composite members or `${var}` references.
    #[error("cycle: {}", chain.join(" -> "))]
    Cycle {
        /// The circle as [`Node::label`]s, its first element repeated at the end
        /// (`a -> b -> a`).
        chain: Vec<String>,
    },
    /// `from` or `copy[].from` names a composite target, which has no filesystem to start from
    /// or copy from.
    #[error(
        "{owner}: {field} \"{name}\" is a composite target; use a stage target or an image there"
    )]
    FromComposite {
        /// The run that refers to it: `target "x"` or `var "x"`.
        owner: String,
        /// The directive: `from` or `copy[N].from`.
        field: String,
        /// The composite target's name.
        name: String,
    },
    /// `from` or `copy[].from` is neither a target, `scratch`, nor a valid image reference.
    #[error("{owner}: {field} \"{reference}\" is neither a target nor a valid image reference: {reason}")]
    InvalidImage {
        /// The run that refers to it: `target "x"` or `var "x"`.
        owner: String,
        /// The directive: `from` or `copy[N].from`.
        field: String,
        /// The value as written.
        reference: String,
        /// What makes it an invalid image reference.
        reason: String,
    },
    /// A run mounts a secret that the host config does not declare.
    #[error(
        "{owner}: secret \"{id}\" is not declared in the host config ({}){}",
        config_name(config),
        hint(suggestion)
    )]
    UnknownSecret {
        /// The run that mounts it: `target "x"` or `var "x"`.
        owner: String,
        /// The secret id as written in the definition.
        id: String,
        /// The host config file; `None` when there is none.
        config: Option<PathBuf>,
        /// The closest declared secret id, when one is close enough to be a likely typo.
        suggestion: Option<String>,
    },
    /// A run asks for a privilege the host config does not grant.
    #[error("{owner}: {what} needs the \"{entitlement}\" entitlement; add it to \"entitlements\" in the host config ({})", config_name(config))]
    EntitlementMissing {
        /// The run that asks for it: `target "x"` or `var "x"`.
        owner: String,
        /// The directive that needs it (`network: host`, `ssh`).
        what: &'static str,
        /// The entitlement to grant.
        entitlement: Entitlement,
        /// The host config file; `None` when there is none.
        config: Option<PathBuf>,
    },
}

fn hint(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!("; did you mean \"{s}\"?"))
        .unwrap_or_default()
}

fn config_name(config: &Option<PathBuf>) -> String {
    match config {
        Some(path) => path.display().to_string(),
        None => "none found: create one with brewkit config init".to_owned(),
    }
}

fn render_violations(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| {
            let owner = match v.path.as_slice() {
                [PathSegment::Key(section), PathSegment::Key(name), ..] if section == "targets" => {
                    format!(" (target \"{name}\")")
                }
                [PathSegment::Key(section), PathSegment::Key(name), ..] if section == "vars" => {
                    format!(" (var \"{name}\")")
                }
                _ => String::new(),
            };
            format!("  {}: {}{owner}", v.path_string(), v.message)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A definition read from a file.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The file it was read from.
    pub file: PathBuf,
    /// The JSON the file evaluated to (what `brewkit build definition-debug` prints).
    pub raw: Value,
    /// The validated JSON in normal form (what `brewkit build definition` prints).
    pub normalized: Value,
    /// The typed model of `normalized`.
    pub definition: Definition,
}

/// Evaluates `file` with the build definition's natives; no validation.
pub fn compile(file: &Path, options: &brewkit_jsonnet::Options) -> Result<Value, Error> {
    Ok(brewkit_jsonnet::evaluate_file(
        file,
        options,
        &natives::ALL,
    )?)
}

/// Evaluates, validates and types `file`.
pub fn load(file: &Path, options: &brewkit_jsonnet::Options) -> Result<Loaded, Error> {
    let raw = compile(file, options)?;
    let (normalized, definition) = validate(file, &raw)?;
    Ok(Loaded {
        file: file.to_owned(),
        raw,
        normalized,
        definition,
    })
}

/// Validates compiled JSON (from `file`, for messages) and returns its normal form and typed
/// model. Besides the schema, the names the definition refers to are resolved everywhere in it,
/// so that every command (`build definition`, `targets`, `graph`, `build`) refuses a file with a
/// cycle or an unknown reference, not only a build that reaches it.
pub fn validate(file: &Path, raw: &Value) -> Result<(Value, Definition), Error> {
    let (normalized, definition) = validate_model(file, raw)?;
    plan::check_references(&definition)?;
    Ok((normalized, definition))
}

/// [`validate`] without resolving names: the schema, the typed model and the context copies.
fn validate_model(file: &Path, raw: &Value) -> Result<(Value, Definition), Error> {
    // The version decides which schema applies, so it is checked on its own first.
    if let Value::Object(top) = raw {
        match top.get("apiVersion") {
            None => {
                return Err(Error::MissingApiVersion {
                    file: file.to_owned(),
                })
            }
            Some(Value::String(v)) if API_VERSIONS.contains(&v.as_str()) => {}
            Some(found) => {
                return Err(Error::UnsupportedApiVersion {
                    file: file.to_owned(),
                    found: found.clone(),
                })
            }
        }
    }
    let violations = brewkit_schema::validate(Schema::BuildDefinitionV1, raw);
    if !violations.is_empty() {
        return Err(Error::Invalid {
            file: file.to_owned(),
            violations,
        });
    }
    let normalized = model::normalize(raw);
    let definition = serde_json::from_value(normalized.clone()).map_err(|e| Error::Invalid {
        file: file.to_owned(),
        violations: vec![Violation {
            path: Vec::new(),
            message: e.to_string(),
        }],
    })?;
    let violations = context_violations(raw, &definition);
    if !violations.is_empty() {
        return Err(Error::Invalid {
            file: file.to_owned(),
            violations,
        });
    }
    Ok((normalized, definition))
}

/// Context copies whose `src` leaves the build context, anywhere in the definition (not only in
/// what a build reaches). BuildKit would refuse them mid-build with its own internal paths;
/// here they are named by their path in the file, as the user wrote it (`copy[1]` in a list,
/// `copy` alone).
fn context_violations(raw: &Value, definition: &Definition) -> Vec<Violation> {
    let stages = definition
        .targets
        .iter()
        .filter_map(|(name, target)| match target {
            Target::Stage(stage) => Some(("targets", name, &stage.run)),
            Target::Composite(_) => None,
        });
    let vars = definition
        .vars
        .iter()
        .map(|(name, var)| ("vars", name, &var.run));
    let mut violations = Vec::new();
    for (section, name, run) in stages.chain(vars) {
        let listed = raw[section][name]["copy"].is_array();
        for (i, copy) in run.copy.iter().enumerate() {
            if !copy.leaves_context() {
                continue;
            }
            let mut path = vec![
                PathSegment::Key(section.to_owned()),
                PathSegment::Key(name.clone()),
                PathSegment::Key("copy".to_owned()),
            ];
            if listed {
                path.push(PathSegment::Index(i));
            }
            path.push(PathSegment::Key("src".to_owned()));
            violations.push(Violation {
                path,
                message: format!(
                    "{} leaves the build context (the definition file's directory, or -c DIR); a copy without from reads only files inside it",
                    Value::String(copy.src.clone())
                ),
            });
        }
    }
    violations
}

#[cfg(test)]
mod tests;
