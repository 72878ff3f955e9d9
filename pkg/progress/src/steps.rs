//! BuildKit's vertex events made into what a line-based renderer shows: each step started once,
//! ended once (a cached step is one `CACHED`, never `CACHED` then `DONE`), its output cut into
//! whole lines with the seconds since the step started.

use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

use brewkit_buildkit::status::{Event, LogStream};

use crate::{
    text::{one_line, Lines},
    Clock,
};

/// What a line-based renderer shows for a step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum News {
    Started {
        vertex: String,
        name: String,
    },
    Cached {
        vertex: String,
        name: String,
    },
    Done {
        vertex: String,
        name: String,
        duration: Option<Duration>,
    },
    /// The step failed; `reason` without the command BuildKit quotes.
    Error {
        vertex: String,
        name: String,
        reason: String,
    },
    /// The step was stopped because the build was (another target failed).
    Cancelled {
        vertex: String,
        name: String,
    },
    /// A line of output, `seconds` after its step started.
    Line {
        vertex: String,
        name: String,
        stream: LogStream,
        seconds: f64,
        text: String,
    },
    Warning {
        vertex: String,
        message: String,
    },
}

#[derive(Debug, Default)]
struct Step {
    name: String,
    started: Option<SystemTime>,
    cached: bool,
    ended: bool,
    stdout: Lines,
    stderr: Lines,
}

/// The steps of one node.
#[derive(Debug, Default)]
pub(crate) struct Steps {
    steps: HashMap<String, Step>,
}

/// Whether BuildKit's error only says that the step was cancelled.
fn is_cancel(error: &str) -> bool {
    error.ends_with("context canceled") || error.ends_with("context cancelled")
}

impl Steps {
    /// What `event` adds, at `clock`'s time.
    pub(crate) fn news(&mut self, event: &Event, clock: &Clock) -> Vec<News> {
        let mut news = Vec::new();
        match event {
            Event::Started { vertex, name, .. } => {
                let step = self.step(vertex, name);
                if step.started.is_none() && !step.cached && !step.ended {
                    step.started = Some(clock.now());
                    news.push(News::Started {
                        vertex: vertex.clone(),
                        name: one_line(name),
                    });
                }
            }
            Event::Cached { vertex, name } => {
                let step = self.step(vertex, name);
                if !step.cached && !step.ended {
                    step.cached = true;
                    news.push(News::Cached {
                        vertex: vertex.clone(),
                        name: one_line(name),
                    });
                }
            }
            Event::Completed {
                vertex,
                name,
                duration,
                error,
            } => {
                let step = self.step(vertex, name);
                if step.ended {
                    return news;
                }
                step.ended = true;
                news.extend(Self::flush_step(vertex, step, clock));
                let name = one_line(name);
                let vertex = vertex.clone();
                match error {
                    Some(error) if is_cancel(error) => news.push(News::Cancelled { vertex, name }),
                    Some(error) => news.push(News::Error {
                        vertex,
                        name,
                        reason: brewkit_build::failure_reason(error),
                    }),
                    None if step.cached => {}
                    None => news.push(News::Done {
                        vertex,
                        name,
                        duration: *duration,
                    }),
                }
            }
            Event::Log {
                vertex,
                stream,
                data,
            } => {
                let step = self.step(vertex, "");
                let seconds = elapsed(step, clock);
                let lines = match stream {
                    LogStream::Stdout => step.stdout.push(data),
                    LogStream::Stderr => step.stderr.push(data),
                };
                for text in lines {
                    news.push(News::Line {
                        vertex: vertex.clone(),
                        name: one_line(&step.name),
                        stream: *stream,
                        seconds,
                        text,
                    });
                }
            }
            Event::Warning { vertex, message } => news.push(News::Warning {
                vertex: vertex.clone(),
                message: one_line(message),
            }),
            Event::Transfer { .. } | Event::Raw(_) => {}
        }
        news
    }

    /// Partial lines still waiting for their end, as lines (the node ended).
    pub(crate) fn flush(&mut self, clock: &Clock) -> Vec<News> {
        let mut vertices: Vec<&String> = self.steps.keys().collect();
        vertices.sort();
        let vertices: Vec<String> = vertices.into_iter().cloned().collect();
        let mut news = Vec::new();
        for vertex in vertices {
            if let Some(step) = self.steps.get_mut(&vertex) {
                news.extend(Self::flush_step(&vertex, step, clock));
            }
        }
        news
    }

    fn step(&mut self, vertex: &str, name: &str) -> &mut Step {
        let step = self.steps.entry(vertex.to_owned()).or_default();
        if step.name.is_empty() {
            step.name = name.to_owned();
        }
        step
    }

    fn flush_step(vertex: &str, step: &mut Step, clock: &Clock) -> Vec<News> {
        let seconds = elapsed(step, clock);
        let mut news = Vec::new();
        for (stream, lines) in [
            (LogStream::Stdout, &mut step.stdout),
            (LogStream::Stderr, &mut step.stderr),
        ] {
            if let Some(text) = lines.flush() {
                news.push(News::Line {
                    vertex: vertex.to_owned(),
                    name: one_line(&step.name),
                    stream,
                    seconds,
                    text,
                });
            }
        }
        news
    }
}

fn elapsed(step: &Step, clock: &Clock) -> f64 {
    step.started
        .map_or(0.0, |started| clock.since(started).as_secs_f64())
}
