//! `--progress plain`: a line per event, each prefixed with its target, log lines with the
//! seconds since their step started (as buildctl's `#5 0.596 …`), and a summary at the end.
//!
//! On GitHub Actions (`GITHUB_ACTIONS=true`) each target's lines sit in a collapsible
//! `::group::`. Groups cannot interleave, so while one target's group is open, the lines of
//! targets running beside it wait and come out, grouped, when it closes. A failure also writes
//! an `::error` annotation.

use std::{collections::HashMap, io::Write};

use brewkit_build::BuildEvent;

use crate::{
    steps::{News, Steps},
    tally::Tally,
    text::{one_line, seconds},
    Clock,
};

/// The plain renderer's state.
pub(crate) struct Plain<W: Write> {
    out: W,
    github: bool,
    steps: HashMap<String, Steps>,
    /// GitHub Actions: the target whose group is open.
    open: Option<String>,
    /// GitHub Actions: lines of other targets, and whether each has ended, in start order.
    waiting: Vec<(String, Vec<String>, bool)>,
    /// GitHub Actions: lines of targets neither open nor waiting (progress that trails a
    /// target's end, or comes before its start) while a group is open: they never go into
    /// another target's group, but come out between groups when it closes.
    strays: Vec<String>,
}

impl<W: Write> Plain<W> {
    pub(crate) fn new(out: W, github: bool) -> Self {
        Self {
            out,
            github,
            steps: HashMap::new(),
            open: None,
            waiting: Vec::new(),
            strays: Vec::new(),
        }
    }

    pub(crate) fn event(&mut self, event: &BuildEvent, tally: &Tally, clock: &Clock) {
        match event {
            BuildEvent::Planned { .. } | BuildEvent::Ended { .. } => {}
            BuildEvent::Started { node } => {
                if self.github && self.open.is_none() {
                    self.open_group(node);
                } else if self.github {
                    self.waiting.push((node.clone(), Vec::new(), false));
                }
                self.line(node, format!("[{node}] started"));
            }
            BuildEvent::Progress { node, event } => {
                let news = self
                    .steps
                    .entry(node.clone())
                    .or_default()
                    .news(event, clock);
                for news in news {
                    let line = render(node, news);
                    self.line(node, line);
                }
            }
            BuildEvent::Exported { node, local } => {
                self.line(
                    node,
                    format!("[{node}] output written to {}", local.display()),
                );
            }
            BuildEvent::Finished { node, duration } => {
                self.flush_steps(node, clock);
                let note = tally.cache_note(node);
                self.line(
                    node,
                    format!("[{node}] done in {}{note}", seconds(*duration)),
                );
                self.ended(node);
            }
            BuildEvent::Failed {
                node,
                duration,
                failure,
            } => {
                self.flush_steps(node, clock);
                self.line(node, format!("[{node}] failed in {}", seconds(*duration)));
                if self.github {
                    let title = escape_property(&format!("{node} failed"));
                    let message = escape_data(&failure.message);
                    self.line(node, format!("::error title={title}::{message}"));
                }
                self.ended(node);
            }
            BuildEvent::Cancelled { node, duration } => {
                self.flush_steps(node, clock);
                self.line(
                    node,
                    format!("[{node}] CANCELED after {}", seconds(*duration)),
                );
                self.ended(node);
            }
        }
    }

    /// Ends the output: what still waits, then the summary.
    pub(crate) fn finish(&mut self, tally: &Tally, clock: &Clock) {
        let nodes: Vec<String> = self.steps.keys().cloned().collect();
        for node in nodes {
            self.flush_steps(&node, clock);
        }
        if let Some(open) = self.open.take() {
            self.end_group();
            self.waiting.retain(|(node, _, _)| *node != open);
        }
        for (node, lines, _) in std::mem::take(&mut self.waiting) {
            self.write_group(&node, &lines);
        }
        if tally.planned() {
            let _ = writeln!(self.out, "{}", tally.summary(clock));
        }
        let _ = self.out.flush();
    }

    fn flush_steps(&mut self, node: &str, clock: &Clock) {
        let news = match self.steps.get_mut(node) {
            Some(steps) => steps.flush(clock),
            None => return,
        };
        for news in news {
            let line = render(node, news);
            self.line(node, line);
        }
    }

    /// Writes `line` of `node` now, or keeps it until its group can open.
    fn line(&mut self, node: &str, line: String) {
        if self.github && self.open.as_deref() != Some(node) {
            if let Some((_, lines, _)) = self.waiting.iter_mut().find(|(n, _, _)| n == node) {
                lines.push(line);
                return;
            }
            if self.open.is_some() {
                self.strays.push(line);
                return;
            }
        }
        let _ = writeln!(self.out, "{line}");
    }

    /// Closes the open group; the lines that could not go into it follow.
    fn end_group(&mut self) {
        let _ = writeln!(self.out, "::endgroup::");
        for line in std::mem::take(&mut self.strays) {
            let _ = writeln!(self.out, "{line}");
        }
    }

    fn open_group(&mut self, node: &str) {
        let _ = writeln!(self.out, "::group::{}", escape_data(node));
        self.open = Some(node.to_owned());
    }

    fn write_group(&mut self, node: &str, lines: &[String]) {
        let _ = writeln!(self.out, "::group::{}", escape_data(node));
        for line in lines {
            let _ = writeln!(self.out, "{line}");
        }
        let _ = writeln!(self.out, "::endgroup::");
    }

    /// `node` has ended: its group closes; the targets that ended meanwhile come out, and the
    /// first one still running gets the open group.
    fn ended(&mut self, node: &str) {
        if !self.github {
            return;
        }
        if self.open.as_deref() != Some(node) {
            if let Some(entry) = self.waiting.iter_mut().find(|(n, _, _)| n == node) {
                entry.2 = true;
            }
            return;
        }
        self.end_group();
        self.open = None;
        while let Some((node, lines, done)) =
            (!self.waiting.is_empty()).then(|| self.waiting.remove(0))
        {
            if done {
                self.write_group(&node, &lines);
            } else {
                self.open_group(&node);
                for line in lines {
                    let _ = writeln!(self.out, "{line}");
                }
                break;
            }
        }
    }
}

fn render(node: &str, news: News) -> String {
    match news {
        News::Started { name, .. } => format!("[{node}] {name}"),
        News::Cached { name, .. } => format!("[{node}] CACHED {name}"),
        News::Done { name, duration, .. } => match duration {
            Some(duration) => format!("[{node}] DONE {} {name}", seconds(duration)),
            None => format!("[{node}] DONE {name}"),
        },
        News::Error { reason, .. } => format!("[{node}] ERROR {}", one_line(&reason)),
        News::Cancelled { name, .. } => format!("[{node}] CANCELED {name}"),
        News::Line { seconds, text, .. } => format!("[{node}] {seconds:.3} | {text}"),
        News::Warning { message, .. } => format!("[{node}] WARNING {message}"),
    }
}

/// A workflow command's message as GitHub requires: `%`, `\r` and `\n` escaped.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property (`title=…`): its message escapes, and `:` and `,`.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}
