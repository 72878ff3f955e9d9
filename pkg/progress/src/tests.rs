//! Golden tests of the renderers: one build's events (a var, a cached target with output, a
//! failure, a cancellation under `-j`) rendered in every mode with a hand-set clock, compared
//! with `golden/*` (`UPDATE_GOLDEN=1` rewrites them).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use brewkit_build::{BuildEvent, NodeFailure, NodeResult, NodeStatus};
use brewkit_buildkit::status::{Event, LogStream, RawStatus};

use super::*;

fn golden(name: &str, actual: &str) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(actual, expected, "{} differs", path.display());
}

fn progress(node: &str, event: Event) -> BuildEvent {
    BuildEvent::Progress {
        node: node.into(),
        event,
    }
}

fn started(vertex: &str, name: &str) -> Event {
    Event::Started {
        vertex: vertex.into(),
        name: name.into(),
        at: UNIX_EPOCH,
    }
}

fn completed(vertex: &str, name: &str, millis: u64, error: Option<&str>) -> Event {
    Event::Completed {
        vertex: vertex.into(),
        name: name.into(),
        duration: Some(Duration::from_millis(millis)),
        error: error.map(str::to_owned),
    }
}

fn cached(vertex: &str, name: &str) -> Event {
    Event::Cached {
        vertex: vertex.into(),
        name: name.into(),
    }
}

fn log(vertex: &str, data: &str) -> Event {
    Event::Log {
        vertex: vertex.into(),
        stream: LogStream::Stdout,
        data: data.as_bytes().to_vec(),
    }
}

const COMMAND: &str = "echo failing1; echo failing2; exit 3";
const ERROR: &str = "bad failed running `echo failing1; echo failing2; exit 3`: exit code: 3\nlast 2 log lines:\nfailing1\nfailing2";

/// A build under `-j`: `var v`, then `ok` (cached, an output), `bad` (fails) and `slow`
/// (cancelled) at once; `all` never starts. Each event moves the clock 100 ms on.
fn build() -> Vec<BuildEvent> {
    let image = "docker-image://docker.io/library/busybox:latest";
    vec![
        BuildEvent::Planned {
            nodes: ["var v", "ok", "bad", "slow", "all"].map(String::from).to_vec(),
            jobs: None,
            no_cache: false,
        },
        BuildEvent::Started {
            node: "var v".into(),
        },
        progress("var v", started("v1", "echo 1.0")),
        progress("var v", log("v1", "1.0\n")),
        progress("var v", completed("v1", "echo 1.0", 200, None)),
        BuildEvent::Finished {
            node: "var v".into(),
            duration: Duration::from_millis(300),
        },
        BuildEvent::Started { node: "ok".into() },
        BuildEvent::Started {
            node: "bad".into(),
        },
        BuildEvent::Started {
            node: "slow".into(),
        },
        progress("ok", started("i", image)),
        progress("ok", completed("i", image, 0, None)),
        progress("ok", cached("i", image)),
        progress("ok", cached("m", "mkdir /w")),
        progress("ok", completed("m", "mkdir /w", 0, None)),
        progress("ok", cached("e", "echo hi; printf \"a\\rb\\rc\\n\"")),
        progress("ok", completed("e", "echo hi; printf \"a\\rb\\rc\\n\"", 0, None)),
        progress("bad", started("b", COMMAND)),
        progress("slow", started("s", "sleep 3\necho slow")),
        progress("bad", log("b", "failing1\nfail")),
        progress("slow", log("s", "10%\r50%\r")),
        progress("bad", log("b", "ing2\n")),
        BuildEvent::Exported {
            node: "ok".into(),
            local: "/project/out".into(),
        },
        BuildEvent::Finished {
            node: "ok".into(),
            duration: Duration::from_millis(1200),
        },
        progress(
            "bad",
            completed(
                "b",
                COMMAND,
                400,
                Some("executor failed running [/bin/sh -c echo failing1; echo failing2; exit 3]: exit code: 3"),
            ),
        ),
        BuildEvent::Failed {
            node: "bad".into(),
            duration: Duration::from_millis(1500),
            failure: NodeFailure {
                message: ERROR.into(),
                reason: "exit code: 3".into(),
                command: Some(COMMAND.into()),
                exit_code: Some(3),
                log_tail: vec!["failing1".into(), "failing2".into()],
            },
        },
        progress(
            "slow",
            completed("s", "sleep 3\necho slow", 500, Some("context canceled")),
        ),
        BuildEvent::Cancelled {
            node: "slow".into(),
            duration: Duration::from_millis(1600),
        },
        BuildEvent::Ended {
            nodes: vec![
                NodeResult {
                    node: "var v".into(),
                    status: NodeStatus::Done,
                    duration: Some(Duration::from_millis(300)),
                },
                NodeResult {
                    node: "ok".into(),
                    status: NodeStatus::Done,
                    duration: Some(Duration::from_millis(1200)),
                },
                NodeResult {
                    node: "bad".into(),
                    status: NodeStatus::Failed,
                    duration: Some(Duration::from_millis(1500)),
                },
                NodeResult {
                    node: "slow".into(),
                    status: NodeStatus::Cancelled,
                    duration: Some(Duration::from_millis(1600)),
                },
                NodeResult {
                    node: "all".into(),
                    status: NodeStatus::Skipped,
                    duration: None,
                },
            ],
        },
    ]
}

fn render_with(
    mode: Mode,
    github: bool,
    events: &[BuildEvent],
    error: Option<(&str, u8)>,
) -> String {
    let clock = Clock::manual(UNIX_EPOCH + Duration::from_secs(1_714_566_896));
    let mut out = Vec::new();
    {
        let options = Options {
            clock: clock.clone(),
            color: false,
            github,
        };
        let mut renderer = Renderer::with_options(mode, &mut out, options);
        for event in events {
            renderer.event(event);
            clock.advance(Duration::from_millis(100));
        }
        renderer.finish(error);
    }
    String::from_utf8(out).unwrap()
}

fn render(mode: Mode, events: &[BuildEvent]) -> String {
    render_with(mode, false, events, Some((ERROR, 1)))
}

#[test]
fn plain_golden() {
    let text = render(Mode::Plain, &build());
    golden("plain.txt", &text);
    assert_eq!(
        text.matches("mkdir /w").count(),
        1,
        "one CACHED line for a cached step: {text}"
    );
    assert!(!text.contains("/bin/sh -c"), "{text}");
    assert_eq!(text.matches(COMMAND).count(), 1, "{text}");
    assert!(
        text.contains("[slow] 0.800 | 50%\n"),
        "a redrawn line keeps its last text: {text}"
    );
    assert!(
        text.ends_with(
            "4 targets, 1 var: 2 done (1 cached), 1 failed (bad), 1 cancelled, 1 skipped in 2.8 s\n"
        ),
        "{text}"
    );
}

#[test]
fn github_actions_groups_targets_and_annotates_failures() {
    let text = render_with(Mode::Plain, true, &build(), Some((ERROR, 1)));
    golden("github.txt", &text);
    // Groups never nest or interleave.
    let mut open = false;
    for line in text.lines() {
        if line.starts_with("::group::") {
            assert!(!open, "{text}");
            open = true;
        } else if line == "::endgroup::" {
            assert!(open, "{text}");
            open = false;
        }
    }
    assert!(!open, "{text}");
    assert!(
        text.contains("::error title=bad failed::bad failed running `echo failing1; echo failing2; exit 3`: exit code: 3%0Alast 2 log lines:%0Afailing1%0Afailing2\n"),
        "{text}"
    );
    let bad = text.find("::group::bad").unwrap();
    assert!(text[bad..].find("[bad] failed in").is_some(), "{text}");
}

#[test]
fn workflow_command_escapes() {
    assert_eq!(plain::escape_data("50%\r\nx"), "50%25%0D%0Ax");
    assert_eq!(plain::escape_property("a: b, c"), "a%3A b%2C c");
}

#[test]
fn json_golden_every_line_an_object_with_version_time_and_type() {
    let text = render(Mode::Json, &build());
    golden("json.txt", &text);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for line in &lines {
        assert_eq!(line["v"], 1, "{line}");
        assert!(line["time"].as_str().unwrap().ends_with('Z'), "{line}");
        assert!(line["type"].is_string(), "{line}");
    }
    let failed = lines.iter().find(|l| l["type"] == "failed").unwrap();
    assert_eq!(failed["exitCode"], 3);
    assert_eq!(failed["command"], COMMAND);
    assert_eq!(
        failed["logTail"],
        serde_json::json!(["failing1", "failing2"])
    );
    let error = &lines[lines.len() - 2];
    assert_eq!(error["type"], "error");
    assert_eq!(error["exitCode"], 1);
    let result = lines.last().unwrap();
    assert_eq!(result["type"], "result");
    assert_eq!(result["status"], "failed");
    assert_eq!(result["counts"]["failed"], 1);
    assert_eq!(result["targets"][1]["name"], "ok");
    assert_eq!(result["targets"][1]["cached"], true);
    assert_eq!(result["targets"][4]["status"], "skipped");
}

#[test]
fn json_of_a_successful_build_ends_with_an_ok_result() {
    let events = vec![
        BuildEvent::Planned {
            nodes: vec!["a".into()],
            jobs: Some(1),
            no_cache: false,
        },
        BuildEvent::Started { node: "a".into() },
        BuildEvent::Finished {
            node: "a".into(),
            duration: Duration::from_millis(100),
        },
    ];
    let text = render_with(Mode::Json, false, &events, None);
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "ok");
    assert_eq!(last["targets"][0]["status"], "done", "{text}");
    assert!(!text.contains("\"error\""), "{text}");
}

#[test]
fn json_failure_lines_outside_a_build() {
    let text = json::failure_lines("unknown target \"x\"", 2);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "error");
    assert_eq!(lines[0]["exitCode"], 2);
    assert_eq!(lines[1]["type"], "result");
    assert_eq!(lines[1]["status"], "failed");
}

#[test]
fn rawjson_prints_buildkits_status_with_buildctls_field_names() {
    use brewkit_buildkit::proto::moby::buildkit::v1::{StatusResponse, Vertex, VertexLog};
    let status = StatusResponse {
        vertexes: vec![Vertex {
            digest: "sha256:a".into(),
            inputs: vec!["sha256:b".into()],
            name: "echo hi".into(),
            started: Some(prost_types_timestamp(1_714_566_896, 5)),
            ..Vertex::default()
        }],
        logs: vec![VertexLog {
            vertex: "sha256:a".into(),
            stream: 1,
            msg: b"hi\n".to_vec(),
            timestamp: Some(prost_types_timestamp(1_714_566_897, 0)),
        }],
        ..StatusResponse::default()
    };
    let events = vec![
        BuildEvent::Started { node: "a".into() },
        progress("a", Event::Raw(RawStatus(Arc::new(status)))),
        progress("a", log("sha256:a", "hi\n")),
    ];
    let text = render_with(Mode::RawJson, false, &events, None);
    golden("rawjson.txt", &text);
    assert_eq!(
        text.lines().count(),
        1,
        "only BuildKit's own status: {text}"
    );
}

fn prost_types_timestamp(seconds: i64, nanos: i32) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos }
}

#[test]
fn no_cache_builds_say_nothing_about_the_cache() {
    let events = vec![
        BuildEvent::Planned {
            nodes: vec!["a".into()],
            jobs: Some(1),
            no_cache: true,
        },
        BuildEvent::Started { node: "a".into() },
        progress("a", cached("i", "docker-image://busybox")),
        progress("a", started("r", "make")),
        progress("a", completed("r", "make", 10, None)),
        BuildEvent::Finished {
            node: "a".into(),
            duration: Duration::from_millis(100),
        },
    ];
    let text = render_with(Mode::Plain, false, &events, None);
    assert!(text.contains("[a] done in 0.1s\n"), "{text}");
    assert!(!text.contains("steps cached"), "{text}");
    assert!(text.contains("1 target: 1 done in"), "{text}");
}

#[test]
fn tty_marks_failures_cancellations_and_sums_up() {
    let text = render(Mode::Tty, &build());
    assert!(text.contains("✔ ok 1.2s CACHED"), "{text:?}");
    assert!(text.contains("✘ bad 1.5s exit code: 3\r\n"), "{text:?}");
    assert!(text.contains("⊘ slow 1.6s CANCELED"), "{text:?}");
    assert!(text.contains("queued: ok, bad, slow, all"), "{text:?}");
    assert!(
        text.contains(
            "4 targets, 1 var: 2 done (1 cached), 1 failed (bad), 1 cancelled, 1 skipped in"
        ),
        "{text:?}"
    );
    assert!(
        !text.contains("\u{1b}[38"),
        "no colors when disabled: {text:?}"
    );
}

#[test]
fn tty_queue_is_shown_under_jobs_only() {
    let mut events = build();
    if let BuildEvent::Planned { jobs, .. } = &mut events[0] {
        *jobs = Some(1);
    }
    let text = render(Mode::Tty, &events);
    assert!(!text.contains("queued:"), "{text:?}");
}

#[test]
fn quiet_says_nothing() {
    assert_eq!(render(Mode::Quiet, &build()), "");
}

#[test]
fn modes_parse() {
    assert_eq!("auto".parse::<Mode>().unwrap(), Mode::Auto);
    assert_eq!("tty".parse::<Mode>().unwrap(), Mode::Tty);
    assert_eq!("plain".parse::<Mode>().unwrap(), Mode::Plain);
    assert_eq!("json".parse::<Mode>().unwrap(), Mode::Json);
    assert_eq!("rawjson".parse::<Mode>().unwrap(), Mode::RawJson);
    assert_eq!("quiet".parse::<Mode>().unwrap(), Mode::Quiet);
    assert!("fancy".parse::<Mode>().is_err());
}

#[test]
fn a_manual_clock_moves_only_when_told() {
    let clock = Clock::manual(SystemTime::UNIX_EPOCH);
    clock.advance(Duration::from_secs(2));
    assert_eq!(clock.since(UNIX_EPOCH), Duration::from_secs(2));
}

#[path = "properties.rs"]
mod properties;
