//! Renders build progress: `tty` (a live view of the running targets, see [`tty`]), `plain` (a
//! line per event, `[target]` prefixes, command output), `json` (a JSON object per line) and
//! `quiet` (nothing). `auto` is `tty` on a terminal, `plain` elsewhere. `NO_COLOR` turns colors
//! off.

pub mod cache;
pub mod tty;

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use brewkit_build::BuildEvent;
use brewkit_buildkit::progress::{Event, LogStream};
use serde_json::json;

/// How progress is shown (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Auto,
    Tty,
    Plain,
    Json,
    Quiet,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "auto" => Self::Auto,
            "tty" => Self::Tty,
            "plain" => Self::Plain,
            "json" => Self::Json,
            "quiet" => Self::Quiet,
            other => {
                return Err(format!(
                    "unknown progress mode {other:?}: auto, tty, plain, json or quiet"
                ))
            }
        })
    }
}

impl Mode {
    /// `auto` made concrete: `tty` when stderr is a terminal, `plain` otherwise.
    pub fn resolve(self) -> Self {
        match self {
            Self::Auto if std::io::stderr().is_terminal() => Self::Tty,
            Self::Auto => Self::Plain,
            other => other,
        }
    }
}

/// Whether colors are wanted: not when `NO_COLOR` is set (to anything non-empty).
pub fn color_enabled() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Writes events to `out` in a mode.
pub struct Renderer<W: Write> {
    mode: Mode,
    out: Option<W>,
    live: Option<tty::Live<W>>,
}

fn seconds(duration: &Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

impl<W: Write> Renderer<W> {
    /// A renderer writing to `out` (`auto` resolved against stderr).
    pub fn new(mode: Mode, out: W) -> Self {
        let mode = mode.resolve();
        if mode == Mode::Tty {
            return Self {
                mode,
                out: None,
                live: Some(tty::Live::new(out, color_enabled())),
            };
        }
        Self {
            mode,
            out: Some(out),
            live: None,
        }
    }

    /// Renders one event. Errors writing are ignored: progress must never fail a build.
    pub fn event(&mut self, event: &BuildEvent) {
        if let Some(live) = &mut self.live {
            live.event(event);
            return;
        }
        let Some(out) = &mut self.out else { return };
        let _ = match self.mode {
            Mode::Json => writeln!(out, "{}", to_json(event)),
            Mode::Plain => plain(out, event),
            _ => Ok(()),
        };
    }

    /// Lets the live view refresh its clocks; call it while no event comes.
    pub fn tick(&mut self) {
        if let Some(live) = &mut self.live {
            live.tick();
        }
    }

    /// Ends the output (clears the live area).
    pub fn finish(&mut self) {
        if let Some(live) = &mut self.live {
            live.finish();
        }
    }
}

fn plain(out: &mut impl Write, event: &BuildEvent) -> std::io::Result<()> {
    match event {
        BuildEvent::Started { node } => writeln!(out, "[{node}] started"),
        BuildEvent::Finished { node, duration } => {
            writeln!(out, "[{node}] done in {}", seconds(duration))
        }
        BuildEvent::Exported { node, local } => {
            writeln!(out, "[{node}] output written to {}", local.display())
        }
        BuildEvent::Progress { node, event } => match event {
            Event::Started { name, .. } => writeln!(out, "[{node}] {name}"),
            Event::Cached { name, .. } => writeln!(out, "[{node}] CACHED {name}"),
            Event::Completed {
                name,
                error: Some(error),
                ..
            } => writeln!(out, "[{node}] ERROR {name}: {error}"),
            Event::Completed {
                name,
                duration: Some(duration),
                error: None,
                ..
            } => writeln!(out, "[{node}] DONE {} {name}", seconds(duration)),
            Event::Log { data, .. } => {
                for line in String::from_utf8_lossy(data).lines() {
                    writeln!(out, "[{node}] | {line}")?;
                }
                Ok(())
            }
            Event::Warning { message, .. } => {
                writeln!(out, "[{node}] WARNING {message}")
            }
            Event::Completed { .. } | Event::Transfer { .. } => Ok(()),
        },
    }
}

/// The JSON form of an event.
pub fn to_json(event: &BuildEvent) -> serde_json::Value {
    match event {
        BuildEvent::Started { node } => json!({"event": "started", "node": node}),
        BuildEvent::Finished { node, duration } => {
            json!({"event": "finished", "node": node, "seconds": duration.as_secs_f64()})
        }
        BuildEvent::Exported { node, local } => {
            json!({"event": "exported", "node": node, "local": local})
        }
        BuildEvent::Progress { node, event } => match event {
            Event::Started { vertex, name, .. } => {
                json!({"event": "vertex-started", "node": node, "vertex": vertex, "name": name})
            }
            Event::Cached { vertex, name } => {
                json!({"event": "vertex-cached", "node": node, "vertex": vertex, "name": name})
            }
            Event::Completed {
                vertex,
                name,
                duration,
                error,
            } => json!({
                "event": "vertex-completed", "node": node, "vertex": vertex, "name": name,
                "seconds": duration.map(|d| d.as_secs_f64()), "error": error,
            }),
            Event::Log {
                vertex,
                stream,
                data,
            } => json!({
                "event": "log", "node": node, "vertex": vertex,
                "stream": if *stream == LogStream::Stderr { "stderr" } else { "stdout" },
                "data": String::from_utf8_lossy(data),
            }),
            Event::Transfer {
                vertex,
                id,
                current,
                total,
                completed,
            } => json!({
                "event": "transfer", "node": node, "vertex": vertex, "id": id,
                "current": current, "total": total, "completed": completed,
            }),
            Event::Warning { vertex, message } => {
                json!({"event": "warning", "node": node, "vertex": vertex, "message": message})
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(mode: Mode, events: &[BuildEvent]) -> String {
        let mut out = Vec::new();
        let mut renderer = Renderer::new(mode, &mut out);
        for event in events {
            renderer.event(event);
        }
        String::from_utf8(out).unwrap()
    }

    fn sample() -> Vec<BuildEvent> {
        vec![
            BuildEvent::Started {
                node: "build".into(),
            },
            BuildEvent::Progress {
                node: "build".into(),
                event: Event::Cached {
                    vertex: "sha256:a".into(),
                    name: "[build] copy".into(),
                },
            },
            BuildEvent::Progress {
                node: "build".into(),
                event: Event::Log {
                    vertex: "sha256:b".into(),
                    stream: LogStream::Stdout,
                    data: b"one\ntwo\n".to_vec(),
                },
            },
            BuildEvent::Finished {
                node: "build".into(),
                duration: Duration::from_millis(1500),
            },
        ]
    }

    #[test]
    fn plain_prefixes_every_line_with_its_target() {
        let text = render(Mode::Plain, &sample());
        assert_eq!(
            text,
            "[build] started\n[build] CACHED [build] copy\n[build] | one\n[build] | two\n[build] done in 1.5s\n"
        );
    }

    #[test]
    fn json_is_one_object_per_line() {
        let text = render(Mode::Json, &sample());
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[2]["event"], "log");
        assert_eq!(lines[2]["data"], "one\ntwo\n");
        assert_eq!(lines[3]["seconds"], 1.5);
    }

    #[test]
    fn quiet_says_nothing() {
        assert_eq!(render(Mode::Quiet, &sample()), "");
    }

    #[test]
    fn modes_parse() {
        assert_eq!("plain".parse::<Mode>().unwrap(), Mode::Plain);
        assert!("fancy".parse::<Mode>().is_err());
    }
}
