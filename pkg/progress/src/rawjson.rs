//! `--progress rawjson`: BuildKit's status messages as JSON lines, as `buildctl --progress
//! rawjson` prints its `SolveStatus`: `vertexes`, `statuses`, `logs`, `warnings`, with
//! buildctl's field names, empty fields left out (Go's `omitempty`), bytes in base64 and times
//! in RFC 3339 with nanoseconds.

use base64::{engine::general_purpose::STANDARD, Engine};
use brewkit_buildkit::status::RawStatus;
use serde_json::{json, Map, Value};

use crate::text::rfc3339_nanos;

/// Go's zero time, which buildctl prints for a missing timestamp that has no `omitempty`.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A protobuf timestamp (an `Option`) in RFC 3339, if there is one.
macro_rules! time {
    ($timestamp:expr) => {
        $timestamp
            .as_ref()
            .map(|t| rfc3339_nanos(t.seconds, t.nanos))
    };
}

/// An object of the pairs whose value is not empty (`omitempty`).
fn object(pairs: Vec<(&str, Value)>) -> Value {
    let mut map = Map::new();
    for (key, value) in pairs {
        let empty = match &value {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_i64() == Some(0),
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(_) => false,
        };
        if !empty {
            map.insert(key.to_owned(), value);
        }
    }
    Value::Object(map)
}

/// The JSON of one status message.
pub fn to_json(status: &RawStatus) -> Value {
    let status = &*status.0;
    let vertexes: Vec<Value> = status
        .vertexes
        .iter()
        .map(|v| {
            object(vec![
                ("digest", json!(v.digest)),
                ("inputs", json!(v.inputs)),
                ("name", json!(v.name)),
                ("started", json!(time!(v.started))),
                ("completed", json!(time!(v.completed))),
                ("cached", json!(v.cached)),
                ("error", json!(v.error)),
            ])
        })
        .collect();
    let statuses: Vec<Value> = status
        .statuses
        .iter()
        .map(|s| {
            let mut value = object(vec![
                ("id", json!(s.id)),
                ("vertex", json!(s.vertex)),
                ("name", json!(s.name)),
                ("total", json!(s.total)),
                (
                    "timestamp",
                    json!(time!(s.timestamp).unwrap_or_else(|| ZERO_TIME.to_owned())),
                ),
                ("started", json!(time!(s.started))),
                ("completed", json!(time!(s.completed))),
            ]);
            // Neither `id` nor `current` is `omitempty` in buildctl.
            value["id"] = json!(s.id);
            value["current"] = json!(s.current);
            value
        })
        .collect();
    let logs: Vec<Value> = status
        .logs
        .iter()
        .map(|l| {
            let mut value = object(vec![
                ("vertex", json!(l.vertex)),
                ("stream", json!(l.stream)),
            ]);
            value["data"] = json!(STANDARD.encode(&l.msg));
            value["timestamp"] = json!(time!(l.timestamp).unwrap_or_else(|| ZERO_TIME.to_owned()));
            value
        })
        .collect();
    let warnings: Vec<Value> = status
        .warnings
        .iter()
        .map(|w| {
            object(vec![
                ("vertex", json!(w.vertex)),
                ("level", json!(w.level)),
                (
                    "short",
                    json!((!w.short.is_empty()).then(|| STANDARD.encode(&w.short))),
                ),
                (
                    "detail",
                    json!(w
                        .detail
                        .iter()
                        .map(|d| STANDARD.encode(d))
                        .collect::<Vec<_>>()),
                ),
                ("url", json!(w.url)),
            ])
        })
        .collect();
    object(vec![
        ("vertexes", json!(vertexes)),
        ("statuses", json!(statuses)),
        ("logs", json!(logs)),
        ("warnings", json!(warnings)),
    ])
}
