//! The live terminal view (like buildx's): one line per running target with its current step and
//! elapsed time, and its latest log line; finished targets are printed once above the live area
//! with their duration and how many steps came from the cache.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use brewkit_build::BuildEvent;
use brewkit_buildkit::progress::Event;
use crossterm::{cursor, queue, style, terminal};

/// How often the live area is redrawn at most.
const REDRAW: Duration = Duration::from_millis(80);
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

struct Running {
    node: String,
    started: Instant,
    step: String,
    last_log: String,
    steps: usize,
    cached: usize,
    failed: Option<String>,
}

/// The live view's state.
pub struct Live<W: Write> {
    out: W,
    color: bool,
    running: Vec<Running>,
    /// Lines to print once, above the live area, at the next redraw.
    pending: Vec<(String, Option<style::Color>)>,
    drawn: u16,
    last_draw: Option<Instant>,
    frame: usize,
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

impl<W: Write> Live<W> {
    /// A live view on `out`; `color` false honours `NO_COLOR`.
    pub fn new(out: W, color: bool) -> Self {
        Self {
            out,
            color,
            running: Vec::new(),
            pending: Vec::new(),
            drawn: 0,
            last_draw: None,
            frame: 0,
        }
    }

    fn running(&mut self, node: &str) -> Option<&mut Running> {
        self.running.iter_mut().find(|r| r.node == node)
    }

    /// Takes an event into the view and redraws when due.
    pub fn event(&mut self, event: &BuildEvent) {
        let mut urgent = false;
        match event {
            BuildEvent::Started { node } => self.running.push(Running {
                node: node.clone(),
                started: Instant::now(),
                step: String::new(),
                last_log: String::new(),
                steps: 0,
                cached: 0,
                failed: None,
            }),
            BuildEvent::Finished { node, duration } => {
                if let Some(at) = self.running.iter().position(|r| r.node == *node) {
                    let done = self.running.remove(at);
                    let cached = if done.steps > 0 && done.cached == done.steps {
                        " CACHED".to_owned()
                    } else if done.cached > 0 {
                        format!(" ({} of {} steps cached)", done.cached, done.steps)
                    } else {
                        String::new()
                    };
                    self.pending.push((
                        format!("✔ {node} {}{cached}", seconds(*duration)),
                        Some(style::Color::Green),
                    ));
                }
                urgent = true;
            }
            BuildEvent::Exported { node, local } => {
                self.pending
                    .push((format!("  {node} → {}", local.display()), None));
                urgent = true;
            }
            BuildEvent::Progress {
                node,
                event: Event::Warning { message, .. },
            } => {
                self.pending
                    .push((format!("! {node} {message}"), Some(style::Color::Yellow)));
                urgent = true;
            }
            BuildEvent::Progress { node, event } => {
                let Some(view) = self.running(node) else {
                    return;
                };
                match event {
                    Event::Started { name, .. } => view.step = name.clone(),
                    Event::Cached { .. } => view.cached += 1,
                    Event::Completed { error, name, .. } => {
                        view.steps += 1;
                        if let Some(error) = error {
                            view.failed = Some(format!("{name}: {error}"));
                        }
                    }
                    Event::Log { data, .. } => {
                        if let Some(line) = String::from_utf8_lossy(data)
                            .lines()
                            .rev()
                            .find(|l| !l.trim().is_empty())
                        {
                            view.last_log = line.to_owned();
                        }
                    }
                    Event::Transfer { .. } | Event::Warning { .. } => {}
                }
                if let Some(failed) = self.running(node).and_then(|v| v.failed.take()) {
                    self.pending
                        .push((format!("✘ {node} {failed}"), Some(style::Color::Red)));
                    urgent = true;
                }
            }
        }
        if urgent || self.last_draw.is_none_or(|t| t.elapsed() >= REDRAW) {
            let _ = self.draw();
        }
    }

    /// Redraws the live area (elapsed times move even without events).
    pub fn tick(&mut self) {
        if self.last_draw.is_none_or(|t| t.elapsed() >= REDRAW) {
            let _ = self.draw();
        }
    }

    /// Clears the live area for good (the build ended).
    pub fn finish(&mut self) {
        self.running.clear();
        let _ = self.draw();
    }

    fn draw(&mut self) -> std::io::Result<()> {
        self.last_draw = Some(Instant::now());
        self.frame = self.frame.wrapping_add(1);
        let width = terminal::size().map_or(100, |(w, _)| w as usize).max(20);
        if self.drawn > 0 {
            queue!(self.out, cursor::MoveUp(self.drawn))?;
        }
        queue!(
            self.out,
            cursor::MoveToColumn(0),
            terminal::Clear(terminal::ClearType::FromCursorDown)
        )?;
        for (line, color) in std::mem::take(&mut self.pending) {
            self.line(&line, color, width)?;
        }
        let spinner = SPINNER[self.frame % SPINNER.len()];
        let mut drawn = 0u16;
        let lines: Vec<(String, Option<style::Color>)> = self
            .running
            .iter()
            .flat_map(|r| {
                let mut out = vec![(
                    format!(
                        "{spinner} {} {} {}",
                        r.node,
                        seconds(r.started.elapsed()),
                        r.step
                    ),
                    Some(style::Color::Blue),
                )];
                if !r.last_log.is_empty() {
                    out.push((format!("  │ {}", r.last_log), Some(style::Color::DarkGrey)));
                }
                out
            })
            .collect();
        for (line, color) in lines {
            self.line(&line, color, width)?;
            drawn += 1;
        }
        self.drawn = drawn;
        self.out.flush()
    }

    fn line(
        &mut self,
        text: &str,
        color: Option<style::Color>,
        width: usize,
    ) -> std::io::Result<()> {
        let text: String = text.chars().take(width - 1).collect();
        match color.filter(|_| self.color) {
            Some(color) => queue!(
                self.out,
                style::SetForegroundColor(color),
                style::Print(text),
                style::ResetColor,
                style::Print("\r\n")
            ),
            None => queue!(self.out, style::Print(text), style::Print("\r\n")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_targets_are_printed_once_with_cache_marks() {
        let mut out = Vec::new();
        {
            let mut live = Live::new(&mut out, false);
            live.event(&BuildEvent::Started {
                node: "build".into(),
            });
            for vertex in ["a", "b"] {
                live.event(&BuildEvent::Progress {
                    node: "build".into(),
                    event: Event::Cached {
                        vertex: vertex.into(),
                        name: vertex.into(),
                    },
                });
                live.event(&BuildEvent::Progress {
                    node: "build".into(),
                    event: Event::Completed {
                        vertex: vertex.into(),
                        name: vertex.into(),
                        duration: None,
                        error: None,
                    },
                });
            }
            live.event(&BuildEvent::Finished {
                node: "build".into(),
                duration: Duration::from_millis(300),
            });
            live.finish();
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("✔ build 0.3s CACHED").count(), 1, "{text:?}");
        assert!(
            !text.contains("\u{1b}[38"),
            "no colors when disabled: {text:?}"
        );
    }

    #[test]
    fn failures_are_printed_in_red_when_colors_are_on() {
        let mut out = Vec::new();
        {
            let mut live = Live::new(&mut out, true);
            live.event(&BuildEvent::Started {
                node: "test".into(),
            });
            live.event(&BuildEvent::Progress {
                node: "test".into(),
                event: Event::Completed {
                    vertex: "v".into(),
                    name: "go test".into(),
                    duration: None,
                    error: Some("exit code: 1".into()),
                },
            });
            live.finish();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("✘ test go test: exit code: 1"), "{text:?}");
        assert!(
            text.contains("\u{1b}[38;5;9m") || text.contains("\u{1b}[38"),
            "{text:?}"
        );
    }
}
