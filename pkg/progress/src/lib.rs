//! Renders build progress: `tty` (a live view of the running targets, see [`tty`]), `plain` (a
//! line per event, `[target]` prefixes, command output, see [`plain`]), `json` (a JSON object
//! per line, see [`json`]), `rawjson` (BuildKit's own status as buildctl prints it, see
//! [`rawjson`]) and `quiet` (nothing). `auto` is `tty` on a terminal, `plain` elsewhere.
//! `NO_COLOR` turns colors off. Every mode but `quiet` and `rawjson` ends with how each target
//! ended: a summary line, or JSON's `result`.

pub mod cache;
pub mod json;
pub mod plain;
pub mod rawjson;
pub mod text;
pub mod tty;

mod steps;
mod tally;

use std::{
    io::{IsTerminal, Write},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use brewkit_build::BuildEvent;
use brewkit_buildkit::status::Event;

/// How progress is shown (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// `tty` when stderr is a terminal, `plain` otherwise (see [`Mode::resolve`]).
    #[default]
    Auto,
    /// A live view of the running targets, redrawn in place.
    Tty,
    /// A line per event with `[target]` prefixes, and the commands' output.
    Plain,
    /// A JSON object per line, ending with each target's result.
    Json,
    /// BuildKit's own status messages, as `buildctl --progress rawjson` prints them.
    RawJson,
    /// Nothing.
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
            "rawjson" => Self::RawJson,
            "quiet" => Self::Quiet,
            other => {
                return Err(format!(
                    "unknown progress mode {other:?}: auto, tty, plain, json, rawjson or quiet"
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

/// Whether this runs in a GitHub Actions job (`GITHUB_ACTIONS=true`).
pub fn github_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// Where renderers read the time: the system's, or one set by hand (golden tests).
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<Mutex<SystemTime>>>);

impl Clock {
    /// The system's clock.
    pub fn system() -> Self {
        Self(None)
    }

    /// A clock standing at `at` until [`Clock::advance`] moves it.
    pub fn manual(at: SystemTime) -> Self {
        Self(Some(Arc::new(Mutex::new(at))))
    }

    /// Moves a manual clock on (the system's moves by itself).
    pub fn advance(&self, by: Duration) {
        if let Some(at) = &self.0 {
            *at.lock().unwrap_or_else(|e| e.into_inner()) += by;
        }
    }

    /// The time now.
    pub fn now(&self) -> SystemTime {
        match &self.0 {
            Some(at) => *at.lock().unwrap_or_else(|e| e.into_inner()),
            None => SystemTime::now(),
        }
    }

    /// The time from `earlier` to now (zero if the clock went back).
    pub fn since(&self, earlier: SystemTime) -> Duration {
        self.now().duration_since(earlier).unwrap_or_default()
    }
}

/// How a renderer is set up besides its mode.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where timestamps and durations are read; [`Clock::system`] but in golden tests.
    pub clock: Clock,
    /// Colors in `tty` mode.
    pub color: bool,
    /// GitHub Actions groups and annotations in `plain` mode.
    pub github: bool,
}

impl Options {
    /// From the environment: the system clock, `NO_COLOR`, `GITHUB_ACTIONS`.
    pub fn from_env() -> Self {
        Self {
            clock: Clock::system(),
            color: color_enabled(),
            github: github_actions(),
        }
    }
}

enum Output<W: Write> {
    Live(tty::Live<W>),
    Plain(plain::Plain<W>),
    Json(json::Json<W>),
    RawJson(W),
    Quiet,
}

/// Writes events to `out` in a mode.
pub struct Renderer<W: Write> {
    output: Output<W>,
    tally: tally::Tally,
    clock: Clock,
}

impl<W: Write> Renderer<W> {
    /// A renderer writing to `out` (`auto` resolved against stderr), set up from the
    /// environment.
    pub fn new(mode: Mode, out: W) -> Self {
        Self::with_options(mode, out, Options::from_env())
    }

    /// A renderer writing to `out` with `options`.
    pub fn with_options(mode: Mode, out: W, options: Options) -> Self {
        let output = match mode.resolve() {
            Mode::Tty => Output::Live(tty::Live::new(out, options.color)),
            Mode::Json => Output::Json(json::Json::new(out)),
            Mode::RawJson => Output::RawJson(out),
            Mode::Quiet => Output::Quiet,
            Mode::Plain | Mode::Auto => Output::Plain(plain::Plain::new(out, options.github)),
        };
        Self {
            output,
            tally: tally::Tally::new(&options.clock),
            clock: options.clock,
        }
    }

    /// Renders one event. Errors writing are ignored: progress must never fail a build.
    pub fn event(&mut self, event: &BuildEvent) {
        self.tally.event(event);
        match &mut self.output {
            Output::Live(live) => live.event(event, &self.tally),
            Output::Plain(plain) => plain.event(event, &self.tally, &self.clock),
            Output::Json(json) => json.event(event, &self.tally, &self.clock),
            Output::RawJson(out) => {
                if let BuildEvent::Progress {
                    event: Event::Raw(status),
                    ..
                } = event
                {
                    let _ = writeln!(out, "{}", rawjson::to_json(status));
                }
            }
            Output::Quiet => {}
        }
    }

    /// Lets the live view refresh its clocks; call it while no event comes.
    pub fn tick(&mut self) {
        if let Output::Live(live) = &mut self.output {
            live.tick(&self.tally);
        }
    }

    /// Ends the output: clears the live area and sums the build up. `error` is the message and
    /// exit code the build ended with: the JSON stream reports it as its `error` event (the
    /// caller prints it in the other modes, see [`Renderer::reports_errors`]).
    pub fn finish(&mut self, error: Option<(&str, u8)>) {
        match &mut self.output {
            Output::Live(live) => live.finish(&self.tally, &self.clock),
            Output::Plain(plain) => plain.finish(&self.tally, &self.clock),
            Output::Json(json) => json.finish(error, &self.tally, &self.clock),
            Output::RawJson(out) => {
                let _ = out.flush();
            }
            Output::Quiet => {}
        }
    }

    /// Whether [`Renderer::finish`] reports the build's error itself (JSON).
    pub fn reports_errors(&self) -> bool {
        matches!(self.output, Output::Json(_))
    }
}

#[cfg(test)]
mod tests;
