//! BrewKit's JSON schemas, embedded in the binary, and validation that reports every violation with
//! its JSON path and a message a user can act on (unknown keys get a "did you mean" hint).

use std::sync::OnceLock;

use jsonschema::{error::ValidationErrorKind, Validator};
use serde_json::Value;

/// One of the embedded schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// `data/specification/build-definition/v1.json`: what `brewkit.jsonnet` evaluates to.
    BuildDefinitionV1,
    /// `data/specification/config/v1.json`: the host config.
    ConfigV1,
}

impl Schema {
    /// The schema's JSON text, as shipped in `data/specification/`.
    pub fn text(self) -> &'static str {
        match self {
            Self::BuildDefinitionV1 => {
                include_str!("../../../data/specification/build-definition/v1.json")
            }
            Self::ConfigV1 => include_str!("../../../data/specification/config/v1.json"),
        }
    }

    fn compiled(self) -> &'static (Value, Validator) {
        static DEFINITION: OnceLock<(Value, Validator)> = OnceLock::new();
        static CONFIG: OnceLock<(Value, Validator)> = OnceLock::new();
        let cell = match self {
            Self::BuildDefinitionV1 => &DEFINITION,
            Self::ConfigV1 => &CONFIG,
        };
        cell.get_or_init(|| {
            let schema: Value =
                serde_json::from_str(self.text()).expect("embedded schema is valid JSON");
            // Every $ref is local, so nothing is ever fetched.
            let validator = jsonschema::options()
                .should_validate_formats(false)
                .build(&schema)
                .expect("embedded schema compiles");
            (schema, validator)
        })
    }
}

/// A place in a JSON document: object keys and array indices from the root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathSegment {
    /// A member of an object, by its key (unescaped, as written in the document).
    Key(String),
    /// An element of an array, counted from 0.
    Index(usize),
}

/// One way a document breaks a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where, from the document root.
    pub path: Vec<PathSegment>,
    /// What is wrong, and where it helps, what to do.
    pub message: String,
}

impl Violation {
    /// The path as users write it in Jsonnet: `targets.build.copy[0].src` (`$` for the root).
    pub fn path_string(&self) -> String {
        render_path(&self.path)
    }
}

/// Renders a path as `targets.build.copy[0]`; keys that are not identifiers are quoted.
pub fn render_path(path: &[PathSegment]) -> String {
    if path.is_empty() {
        return "$".to_owned();
    }
    let mut out = String::new();
    for segment in path {
        match segment {
            PathSegment::Index(i) => out.push_str(&format!("[{i}]")),
            PathSegment::Key(k) if is_identifier(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSegment::Key(k) => out.push_str(&format!("[{}]", Value::String(k.clone()))),
        }
    }
    out
}

fn is_identifier(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Validates `value` against `schema`; every violation, sorted by path.
pub fn validate(schema: Schema, value: &Value) -> Vec<Violation> {
    let (schema_json, validator) = schema.compiled();
    let mut out = Vec::new();
    for error in validator.iter_errors(value) {
        let path = parse_pointer(&error.instance_path().to_string(), value);
        let schema_path = error.schema_path().to_string();
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected } => {
                let known = sibling_properties(schema_json, &schema_path);
                for key in unexpected {
                    let mut at = path.clone();
                    at.push(PathSegment::Key(key.clone()));
                    let mut message = format!("unknown key \"{key}\"");
                    match did_you_mean(key, known.iter().map(String::as_str)) {
                        Some(hint) => message.push_str(&format!("; did you mean \"{hint}\"?")),
                        None if !known.is_empty() => {
                            message.push_str(&format!("; known keys: {}", known.join(", ")))
                        }
                        None => message.push_str("; no keys are allowed here"),
                    }
                    out.push(Violation { path: at, message });
                }
            }
            // A key that breaks `propertyNames`: the violation is the key's, so the path names
            // it (`targets.build.env["A B"]`), and the message is the one its own schema gives.
            ValidationErrorKind::PropertyNames { error: inner } => {
                let mut at = path;
                if let Value::String(key) = inner.instance().as_ref() {
                    at.push(PathSegment::Key(key.clone()));
                }
                out.push(Violation {
                    path: at,
                    message: describe(
                        inner.kind(),
                        inner.instance(),
                        schema_json,
                        &inner.schema_path().to_string(),
                        &inner.to_string(),
                    ),
                });
            }
            kind => out.push(Violation {
                path,
                message: describe(
                    kind,
                    error.instance(),
                    schema_json,
                    &schema_path,
                    &error.to_string(),
                ),
            }),
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path).then_with(|| a.message.cmp(&b.message)));
    out.dedup();
    out
}

fn describe(
    kind: &ValidationErrorKind,
    instance: &Value,
    schema: &Value,
    at: &str,
    fallback: &str,
) -> String {
    match kind {
        ValidationErrorKind::Required { property } => {
            format!("missing required key {property}")
        }
        ValidationErrorKind::Enum { options } => {
            let options = options
                .as_array()
                .map(|o| {
                    o.iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|| options.to_string());
            format!("{instance} is not one of {options}")
        }
        ValidationErrorKind::Type { .. } => {
            let expected = parent(schema, at)
                .and_then(|s| s.get("type"))
                .map(|t| match t {
                    Value::Array(types) => types
                        .iter()
                        .map(|t| t.as_str().unwrap_or_default().to_owned())
                        .collect::<Vec<_>>()
                        .join(" or "),
                    other => other.as_str().unwrap_or_default().to_owned(),
                })
                .unwrap_or_else(|| "another type".to_owned());
            format!(
                "expected {} {expected}, got {} {}",
                article(&expected),
                json_type(instance),
                short(instance)
            )
        }
        ValidationErrorKind::MinLength { .. } => "must not be empty".to_owned(),
        ValidationErrorKind::Pattern { pattern } => {
            let mut message = format!("{instance} does not match {pattern}");
            if let Some(description) = parent(schema, at)
                .and_then(|s| s.get("description"))
                .and_then(Value::as_str)
            {
                message.push_str(&format!(" ({description})"));
            }
            message
        }
        _ => fallback.to_owned(),
    }
}

fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The value shortened for a one-line message.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(57).collect::<String>())
    } else {
        text
    }
}

/// The schema object holding the keyword at `keyword_location` (a JSON pointer into the schema).
fn parent<'s>(schema: &'s Value, keyword_location: &str) -> Option<&'s Value> {
    let parent = keyword_location.rsplit_once('/').map_or("", |(p, _)| p);
    schema.pointer(parent)
}

/// The property names declared beside the `additionalProperties` keyword that refused a key.
fn sibling_properties(schema: &Value, keyword_location: &str) -> Vec<String> {
    parent(schema, keyword_location)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Splits a JSON pointer into segments, telling array indices from keys by walking `document`.
fn parse_pointer(pointer: &str, document: &Value) -> Vec<PathSegment> {
    let mut here = Some(document);
    pointer
        .split('/')
        .skip(1)
        .map(|raw| {
            let key = raw.replace("~1", "/").replace("~0", "~");
            match (here, key.parse::<usize>()) {
                (Some(Value::Array(items)), Ok(i)) => {
                    here = items.get(i);
                    PathSegment::Index(i)
                }
                _ => {
                    here = here.and_then(|v| v.get(&key));
                    PathSegment::Key(key)
                }
            }
        })
        .collect()
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, c)| *score >= 0.8 || one_typo(word, c))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Whether `word` is `candidate` with one letter wrong, missing or extra, or two neighbours
/// swapped. Jaro-Winkler scores such typos low in short words (`gne` for `gen`: 0.6), where its
/// match window is a letter or none. Under 3 letters, one edit turns any word into many others.
fn one_typo(word: &str, candidate: &str) -> bool {
    word.chars().count() >= 3 && strsim::osa_distance(word, candidate) == 1
}

#[cfg(test)]
mod tests;
