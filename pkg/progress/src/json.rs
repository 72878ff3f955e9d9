//! `--progress json`: one JSON object per line on stderr, failures included, so that CI can
//! read a build without scraping text. Every object has `v` (the schema's version, 1), `time`
//! (RFC 3339, UTC) and `type`; docs/cli.md lists the types and their fields.

use std::{collections::HashMap, io::Write};

use brewkit_build::BuildEvent;
use brewkit_buildkit::status::LogStream;
use serde_json::{json, Value};

use crate::{
    steps::{News, Steps},
    tally::Tally,
    text::rfc3339,
    Clock,
};

/// The version of the JSON events' schema: a field is only ever added within a version.
pub const SCHEMA_VERSION: u64 = 1;

/// The JSON renderer's state.
pub(crate) struct Json<W: Write> {
    out: W,
    steps: HashMap<String, Steps>,
}

/// One event: `v`, `time` and `type` first (for people reading the stream), then `fields`.
fn line(clock: &Clock, kind: &str, fields: Value) -> String {
    let head = format!(
        "{{\"v\":{SCHEMA_VERSION},\"time\":{},\"type\":{}",
        json!(rfc3339(clock.now())),
        json!(kind)
    );
    match fields {
        Value::Object(fields) if !fields.is_empty() => {
            let rest = Value::Object(fields).to_string();
            format!("{head},{}", &rest[1..])
        }
        _ => format!("{head}}}"),
    }
}

/// The lines that end a JSON progress stream that failed outside a build (bad input, BuildKit
/// unreachable): an `error`, then a failed `result` with no targets.
pub fn failure_lines(message: &str, exit_code: u8) -> String {
    let clock = Clock::system();
    let tally = Tally::new(&clock);
    format!(
        "{}\n{}\n",
        line(
            &clock,
            "error",
            json!({"message": message, "exitCode": exit_code})
        ),
        line(&clock, "result", tally.result(false, &clock))
    )
}

/// A warning (`brewkit: warning: …` in the other modes) as a JSON line.
pub fn warning_line(message: &str) -> String {
    format!(
        "{}\n",
        line(&Clock::system(), "warning", json!({"message": message}))
    )
}

impl<W: Write> Json<W> {
    pub(crate) fn new(out: W) -> Self {
        Self {
            out,
            steps: HashMap::new(),
        }
    }

    fn write(&mut self, clock: &Clock, kind: &str, fields: Value) {
        let _ = writeln!(self.out, "{}", line(clock, kind, fields));
    }

    pub(crate) fn event(&mut self, event: &BuildEvent, tally: &Tally, clock: &Clock) {
        match event {
            BuildEvent::Planned {
                nodes,
                jobs,
                no_cache,
            } => self.write(
                clock,
                "plan",
                json!({"targets": nodes, "jobs": jobs, "noCache": no_cache}),
            ),
            BuildEvent::Started { node } => self.write(clock, "started", json!({"target": node})),
            BuildEvent::Progress { node, event } => {
                let news = self
                    .steps
                    .entry(node.clone())
                    .or_default()
                    .news(event, clock);
                for news in news {
                    self.news(node, news, clock);
                }
            }
            BuildEvent::Exported { node, local } => {
                self.write(clock, "output", json!({"target": node, "path": local}))
            }
            BuildEvent::Finished { node, duration } => {
                self.flush_steps(node, clock);
                let cached = tally.cache_note(node) == " CACHED";
                self.write(
                    clock,
                    "done",
                    json!({"target": node, "seconds": duration.as_secs_f64(), "cached": cached}),
                );
            }
            BuildEvent::Failed {
                node,
                duration,
                failure,
            } => {
                self.flush_steps(node, clock);
                self.write(
                    clock,
                    "failed",
                    json!({
                        "target": node,
                        "seconds": duration.as_secs_f64(),
                        "reason": failure.reason,
                        "exitCode": failure.exit_code,
                        "command": failure.command,
                        "logTail": failure.log_tail,
                        "message": failure.message,
                    }),
                );
            }
            BuildEvent::Cancelled { node, duration } => {
                self.flush_steps(node, clock);
                self.write(
                    clock,
                    "cancelled",
                    json!({"target": node, "seconds": duration.as_secs_f64()}),
                );
            }
            BuildEvent::Ended { .. } => {}
        }
    }

    fn flush_steps(&mut self, node: &str, clock: &Clock) {
        let news = match self.steps.get_mut(node) {
            Some(steps) => steps.flush(clock),
            None => return,
        };
        for news in news {
            self.news(node, news, clock);
        }
    }

    fn news(&mut self, node: &str, news: News, clock: &Clock) {
        let (kind, fields) = match news {
            News::Started { vertex, name } => (
                "step",
                json!({"target": node, "vertex": vertex, "step": name, "status": "started"}),
            ),
            News::Cached { vertex, name } => (
                "cached",
                json!({"target": node, "vertex": vertex, "step": name}),
            ),
            News::Done {
                vertex,
                name,
                duration,
            } => (
                "step",
                json!({"target": node, "vertex": vertex, "step": name, "status": "done",
                       "seconds": duration.map(|d| d.as_secs_f64())}),
            ),
            News::Error {
                vertex,
                name,
                reason,
            } => (
                "step",
                json!({"target": node, "vertex": vertex, "step": name, "status": "error",
                       "error": reason}),
            ),
            News::Cancelled { vertex, name } => (
                "step",
                json!({"target": node, "vertex": vertex, "step": name, "status": "cancelled"}),
            ),
            News::Line {
                vertex,
                name,
                stream,
                seconds,
                text,
            } => (
                "log",
                json!({"target": node, "vertex": vertex, "step": name,
                       "stream": if stream == LogStream::Stderr { "stderr" } else { "stdout" },
                       "seconds": (seconds * 1000.0).round() / 1000.0, "line": text}),
            ),
            News::Warning { vertex, message } => (
                "warning",
                json!({"target": node, "vertex": vertex, "message": message}),
            ),
        };
        self.write(clock, kind, fields);
    }

    /// Ends the stream: the error that ended the build, if one did, then the `result`.
    pub(crate) fn finish(&mut self, error: Option<(&str, u8)>, tally: &Tally, clock: &Clock) {
        let nodes: Vec<String> = self.steps.keys().cloned().collect();
        for node in nodes {
            self.flush_steps(&node, clock);
        }
        if let Some((message, code)) = error {
            self.write(
                clock,
                "error",
                json!({"message": message, "exitCode": code}),
            );
        }
        let result = tally.result(error.is_none(), clock);
        self.write(clock, "result", result);
        let _ = self.out.flush();
    }
}
