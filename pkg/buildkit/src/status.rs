//! BuildKit's status stream turned into typed progress events for a renderer.
//!
//! BuildKit sends a vertex again whenever something about it changes; the decoder keeps what it
//! has already reported so that each vertex is started, cached and completed at most once.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, SystemTime},
};

use crate::proto::moby::buildkit::v1::StatusResponse;

/// Which output of a command a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output (BuildKit's stream 1, and any stream number other than 2).
    Stdout,
    /// Standard error (BuildKit's stream 2).
    Stderr,
}

/// Something that happened during a solve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A vertex (an op of the graph) started running.
    Started {
        /// The vertex's digest (`sha256:…`), as in the definition.
        vertex: String,
        /// The vertex's progress name (its `llb.customname`, or what BuildKit made of the op).
        name: String,
        /// When the daemon started it, by the daemon's clock.
        at: SystemTime,
    },
    /// A vertex's result came from the cache; it will not run.
    Cached {
        /// The vertex's digest (`sha256:…`).
        vertex: String,
        /// The vertex's progress name.
        name: String,
    },
    /// A vertex finished, successfully or with `error`.
    Completed {
        /// The vertex's digest (`sha256:…`).
        vertex: String,
        /// The vertex's progress name.
        name: String,
        /// From its start to its completion by the daemon's clock; `None` if it was never seen
        /// starting (a cached vertex) or the clock went backwards.
        duration: Option<Duration>,
        /// BuildKit's error text for the vertex; `None` if it succeeded.
        error: Option<String>,
    },
    /// Output of a running vertex.
    Log {
        /// The digest of the vertex whose process wrote it.
        vertex: String,
        /// Which output it was written to.
        stream: LogStream,
        /// The bytes as written, not split into lines: a chunk may end mid-line or mid-character.
        data: Vec<u8>,
    },
    /// Progress of a transfer or sub-step of a vertex (pulling a layer, sending the context).
    Transfer {
        /// The digest of the vertex it belongs to.
        vertex: String,
        /// Names the sub-step within the vertex (a layer digest, or a text such as
        /// "transferring context"); later updates of the same step carry the same id.
        id: String,
        /// How much is done, in the step's unit (bytes for layers and context transfers).
        current: i64,
        /// How much there is in all, in the same unit; 0 when the daemon does not know.
        total: i64,
        /// Whether the daemon marked the step completed.
        completed: bool,
    },
    /// A warning BuildKit attached to a vertex.
    Warning {
        /// The digest of the vertex it is about.
        vertex: String,
        /// Its short text (BuildKit's `short`; details and source ranges are left out).
        message: String,
    },
    /// A status message as BuildKit sent it, before the events above (only after
    /// [`keep_raw`]: `--progress rawjson` prints it).
    Raw(RawStatus),
}

/// A status message as BuildKit sent it; equal only to itself.
#[derive(Debug, Clone)]
pub struct RawStatus(pub Arc<StatusResponse>);

impl PartialEq for RawStatus {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for RawStatus {}

/// Whether decoders pass on the status messages as they came (a process-wide switch, so that
/// no decoder pays for a copy nobody reads).
static KEEP_RAW: AtomicBool = AtomicBool::new(false);

/// From now on, every decoder sends [`Event::Raw`] before the events of each status message.
pub fn keep_raw() {
    KEEP_RAW.store(true, Ordering::Relaxed);
}

#[derive(Debug, Default, Clone)]
struct Seen {
    started: Option<SystemTime>,
    cached: bool,
    completed: bool,
}

/// Turns status responses into [`Event`]s.
#[derive(Debug, Default)]
pub struct StatusDecoder {
    vertices: HashMap<String, Seen>,
}

fn time(timestamp: &Option<prost_types::Timestamp>) -> Option<SystemTime> {
    let t = timestamp.as_ref()?;
    let seconds = u64::try_from(t.seconds).ok()?;
    let nanos = u32::try_from(t.nanos).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos))
}

impl StatusDecoder {
    /// The events that `status` adds to what was seen so far.
    pub fn decode(&mut self, status: StatusResponse) -> Vec<Event> {
        let mut events = Vec::new();
        if KEEP_RAW.load(Ordering::Relaxed) {
            events.push(Event::Raw(RawStatus(Arc::new(status.clone()))));
        }
        for vertex in status.vertexes {
            let seen = self.vertices.entry(vertex.digest.clone()).or_default();
            if vertex.cached && !seen.cached {
                seen.cached = true;
                events.push(Event::Cached {
                    vertex: vertex.digest.clone(),
                    name: vertex.name.clone(),
                });
            }
            if let Some(started) = time(&vertex.started) {
                if seen.started.is_none() && !vertex.cached {
                    events.push(Event::Started {
                        vertex: vertex.digest.clone(),
                        name: vertex.name.clone(),
                        at: started,
                    });
                }
                seen.started.get_or_insert(started);
            }
            if let Some(completed) = time(&vertex.completed) {
                if !seen.completed {
                    seen.completed = true;
                    let duration = seen
                        .started
                        .and_then(|started| completed.duration_since(started).ok());
                    events.push(Event::Completed {
                        vertex: vertex.digest,
                        name: vertex.name,
                        duration,
                        error: (!vertex.error.is_empty()).then_some(vertex.error),
                    });
                }
            }
        }
        for status in status.statuses {
            events.push(Event::Transfer {
                vertex: status.vertex,
                id: status.id,
                current: status.current,
                total: status.total,
                completed: status.completed.is_some(),
            });
        }
        for log in status.logs {
            events.push(Event::Log {
                vertex: log.vertex,
                stream: if log.stream == 2 {
                    LogStream::Stderr
                } else {
                    LogStream::Stdout
                },
                data: log.msg,
            });
        }
        for warning in status.warnings {
            events.push(Event::Warning {
                vertex: warning.vertex,
                message: String::from_utf8_lossy(&warning.short).into_owned(),
            });
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use prost_types::Timestamp;

    use super::*;
    use crate::proto::moby::buildkit::v1::{Vertex, VertexLog, VertexStatus};

    fn at(seconds: i64) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos: 0 })
    }

    fn vertex(digest: &str, started: Option<i64>, completed: Option<i64>, cached: bool) -> Vertex {
        Vertex {
            digest: digest.into(),
            name: format!("run {digest}"),
            cached,
            started: started.and_then(at),
            completed: completed.and_then(at),
            ..Vertex::default()
        }
    }

    #[test]
    fn each_vertex_starts_and_completes_once() {
        let mut decoder = StatusDecoder::default();
        let first = decoder.decode(StatusResponse {
            vertexes: vec![vertex("a", Some(10), None, false)],
            ..StatusResponse::default()
        });
        assert!(matches!(&first[..], [Event::Started { vertex, .. }] if vertex == "a"));
        let again = decoder.decode(StatusResponse {
            vertexes: vec![vertex("a", Some(10), None, false)],
            ..StatusResponse::default()
        });
        assert!(again.is_empty(), "{again:?}");
        let done = decoder.decode(StatusResponse {
            vertexes: vec![vertex("a", Some(10), Some(13), false)],
            ..StatusResponse::default()
        });
        assert_eq!(
            done,
            vec![Event::Completed {
                vertex: "a".into(),
                name: "run a".into(),
                duration: Some(Duration::from_secs(3)),
                error: None
            }]
        );
        assert!(decoder
            .decode(StatusResponse {
                vertexes: vec![vertex("a", Some(10), Some(13), false)],
                ..StatusResponse::default()
            })
            .is_empty());
    }

    #[test]
    fn cached_vertices_are_marked_not_started() {
        let mut decoder = StatusDecoder::default();
        let events = decoder.decode(StatusResponse {
            vertexes: vec![vertex("b", Some(5), Some(5), true)],
            ..StatusResponse::default()
        });
        assert!(matches!(events[0], Event::Cached { .. }), "{events:?}");
        assert!(matches!(events[1], Event::Completed { .. }), "{events:?}");
        assert_eq!(events.len(), 2);
    }

    #[test]
    fn failures_logs_and_transfers() {
        let mut decoder = StatusDecoder::default();
        let mut failed = vertex("c", Some(1), Some(2), false);
        failed.error = "exit code: 1".into();
        let events = decoder.decode(StatusResponse {
            vertexes: vec![failed],
            logs: vec![VertexLog {
                vertex: "c".into(),
                stream: 2,
                msg: b"boom\n".to_vec(),
                ..VertexLog::default()
            }],
            statuses: vec![VertexStatus {
                id: "sha256:layer".into(),
                vertex: "c".into(),
                current: 5,
                total: 10,
                ..VertexStatus::default()
            }],
            ..StatusResponse::default()
        });
        assert!(events
            .iter()
            .any(|e| matches!(e, Event::Completed { error: Some(m), .. } if m == "exit code: 1")));
        assert!(events.iter().any(
            |e| matches!(e, Event::Log { stream: LogStream::Stderr, data, .. } if data == b"boom\n")
        ));
        assert!(events.iter().any(|e| matches!(
            e,
            Event::Transfer {
                current: 5,
                total: 10,
                completed: false,
                ..
            }
        )));
    }
}
