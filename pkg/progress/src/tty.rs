//! The live terminal view (like buildx's): one line per running target with its current step and
//! elapsed time, and its latest log line; under `-j`, the targets still queued. Finished targets
//! are printed once above the live area with their duration and how many steps came from the
//! cache; failed ones with BuildKit's reason (the command is named once, in the error below),
//! cancelled ones marked `CANCELED`. The build's summary comes last.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use brewkit_build::{BuildEvent, NodeStatus};
use brewkit_buildkit::status::Event;
use crossterm::{cursor, queue, style, terminal};

use crate::{
    tally::Tally,
    text::{one_line, printable, seconds, Lines},
    Clock,
};

/// How often the live area is redrawn at most.
const REDRAW: Duration = Duration::from_millis(80);
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

struct Running {
    node: String,
    started: Instant,
    step: String,
    last_log: String,
    lines: Lines,
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

    /// Takes `node` out of the live area; whether it was there.
    fn ended(&mut self, node: &str) -> bool {
        let at = self.running.iter().position(|r| r.node == node);
        at.map(|at| self.running.remove(at)).is_some()
    }

    /// Takes an event into the view and redraws when due; `tally` knows how targets went.
    pub(crate) fn event(&mut self, event: &BuildEvent, tally: &Tally) {
        let mut urgent = false;
        match event {
            BuildEvent::Planned { .. } | BuildEvent::Ended { .. } => urgent = true,
            BuildEvent::Started { node } => {
                self.running.push(Running {
                    node: node.clone(),
                    started: Instant::now(),
                    step: String::new(),
                    last_log: String::new(),
                    lines: Lines::default(),
                });
                urgent = true;
            }
            BuildEvent::Finished { node, duration } => {
                if self.ended(node) {
                    self.pending.push((
                        format!("✔ {node} {}{}", seconds(*duration), tally.cache_note(node)),
                        Some(style::Color::Green),
                    ));
                }
                urgent = true;
            }
            BuildEvent::Failed {
                node,
                duration,
                failure,
            } => {
                self.ended(node);
                let reason = failure.reason.lines().next().unwrap_or_default();
                self.pending.push((
                    format!("✘ {node} {} {reason}", seconds(*duration)),
                    Some(style::Color::Red),
                ));
                urgent = true;
            }
            BuildEvent::Cancelled { node, duration } => {
                self.ended(node);
                self.pending.push((
                    format!("⊘ {node} {} CANCELED", seconds(*duration)),
                    Some(style::Color::Yellow),
                ));
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
                self.pending.push((
                    format!("! {node} {}", one_line(message)),
                    Some(style::Color::Yellow),
                ));
                urgent = true;
            }
            BuildEvent::Progress { node, event } => {
                let Some(view) = self.running(node) else {
                    return;
                };
                match event {
                    Event::Started { name, .. } => view.step = one_line(name),
                    Event::Log { data, .. } => {
                        // Whole lines only, as a terminal shows them (the text after `\r`).
                        if let Some(line) = view
                            .lines
                            .push(data)
                            .into_iter()
                            .rev()
                            .find(|l| !l.trim().is_empty())
                        {
                            view.last_log = printable(&line);
                        }
                    }
                    _ => {}
                }
            }
        }
        if urgent || self.last_draw.is_none_or(|t| t.elapsed() >= REDRAW) {
            let _ = self.draw(tally);
        }
    }

    /// Redraws the live area (elapsed times move even without events).
    pub(crate) fn tick(&mut self, tally: &Tally) {
        if self.last_draw.is_none_or(|t| t.elapsed() >= REDRAW) {
            let _ = self.draw(tally);
        }
    }

    /// Clears the live area for good (the build ended) and prints the build's summary.
    pub(crate) fn finish(&mut self, tally: &Tally, clock: &Clock) {
        self.running.clear();
        if tally.planned() {
            let failed = tally.results().iter().any(|r| r.status != NodeStatus::Done);
            let color = if failed {
                style::Color::Red
            } else {
                style::Color::Green
            };
            self.pending.push((tally.summary(clock), Some(color)));
        }
        let _ = self.draw_queue(None);
    }

    fn draw(&mut self, tally: &Tally) -> std::io::Result<()> {
        let queued = tally.queued();
        let queued = (tally.parallel() && !queued.is_empty())
            .then(|| format!("  queued: {}", queued.join(", ")));
        self.draw_queue(queued)
    }

    fn draw_queue(&mut self, queued: Option<String>) -> std::io::Result<()> {
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
        // Printed once, above the live area: a line that wraps only scrolls, so none is cut.
        for (line, color) in std::mem::take(&mut self.pending) {
            self.line(&line, color, usize::MAX)?;
        }
        let spinner = SPINNER[self.frame % SPINNER.len()];
        let mut lines: Vec<(String, Option<style::Color>)> = self
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
        lines.extend(queued.map(|q| (q, Some(style::Color::DarkGrey))));
        let mut drawn = 0u16;
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
