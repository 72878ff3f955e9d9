//! Why a build stopped.

use std::{path::PathBuf, sync::Arc, time::Duration};

/// How many log lines of a failed command are shown.
pub const LOG_TAIL: usize = 20;

// Messages quote text that can be huge: a command's log line, or BuildKit's message quoting the
// command as it ran, with vars (up to 128 KiB each) substituted. They show at most this many
// characters of each; see `cut`.
/// A quoted value: a command, a step.
const QUOTE_LIMIT: usize = 200;
/// BuildKit's message: an error chain, longer than a value, but it quotes the command run.
const MESSAGE_LIMIT: usize = 1000;
/// One log line: [`LOG_TAIL`] of them are shown.
const LOG_LINE_LIMIT: usize = 300;
/// How many of the limit's characters are taken from the end of the text: where BuildKit's
/// message puts the exit code and a line its last words.
const KEEP_END: usize = 40;

/// Why a build stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something the host must provide is missing or refused (a secret file, the ssh agent, an
    /// output outside the project): bad input.
    #[error(transparent)]
    Host(#[from] HostError),
    /// A target's or var's solve failed.
    #[error("{node} failed {}: {}{}{}", failed_where(command, &failure.step), cut(&reason(&failure.message), MESSAGE_LIMIT), login_hint(&failure.message), render_tail(&failure.log_tail))]
    Failed {
        /// The node, as labelled in progress (`target x`, `var y`).
        node: String,
        /// The command it runs, if it has one.
        command: Option<String>,
        /// What BuildKit said.
        failure: SolveFailure,
    },
    /// An output could not be written.
    #[error("{node}: output to {}: {source}", local.display())]
    Output {
        /// The target whose output it is.
        node: String,
        /// The host directory it was written into.
        local: PathBuf,
        /// Why it failed.
        #[source]
        source: OutputError,
    },
    /// Several targets failed (`--keep-going`): each is named.
    #[error("{} targets failed:\n{}", .0.len(), .0.iter().map(|e| format!("- {e}")).collect::<Vec<_>>().join("\n"))]
    Several(Vec<Error>),
    /// A bug in brewkit: a task panicked or a state that must exist was missing.
    #[error("internal error: {0} (this is a bug in brewkit; please report it with the command and definition that caused it)")]
    Internal(String),
    /// Talking to BuildKit failed outside a node (session, gateway, image configs).
    #[error(transparent)]
    BuildKit(#[from] brewkit_buildkit::Error),
}

/// What the host must provide and does not, found before anything runs.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A run mounts a secret the host config does not declare.
    #[error("{owner}: secret \"{id}\" is not in the host config")]
    SecretNotDeclared {
        /// The node that mounts it.
        owner: String,
        /// The secret's id.
        id: String,
    },
    /// A declared secret's file cannot be used (missing variable, missing or oversized file).
    #[error("{owner}: {source}")]
    SecretFile {
        /// The node that mounts it.
        owner: String,
        /// Why, naming the config file and the path.
        #[source]
        source: Box<brewkit_config::Error>,
    },
    /// A run forwards the ssh agent and no agent is set.
    #[error("{owner} uses ssh, but SSH_AUTH_SOCK is not set: start an agent (eval \"$(ssh-agent)\") and add a key (ssh-add)")]
    NoSshAgent {
        /// The first node that uses ssh.
        owner: String,
    },
    /// SSH_AUTH_SOCK names a socket that is not there.
    #[error("{owner} uses ssh, but the agent socket {} (SSH_AUTH_SOCK) does not exist", socket.display())]
    SshAgentMissing {
        /// The first node that uses ssh.
        owner: String,
        /// The path SSH_AUTH_SOCK names.
        socket: PathBuf,
    },
    /// The build context directory cannot be resolved.
    #[error("build context {}: {source}", path.display())]
    Context {
        /// The context as given.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An output goes outside the project directory without the host's consent.
    #[error("target \"{target}\": output {output:?} goes to {}, outside the project directory {}; to allow it, add \"fs.write={}\" (or a directory holding it) to \"entitlements\" in the host config ({config})", local.display(), context.display(), local.display())]
    OutputOutsideProject {
        /// The target.
        target: String,
        /// The output's destination as the definition writes it.
        output: String,
        /// Where that lands.
        local: PathBuf,
        /// The project directory.
        context: PathBuf,
        /// The host config file to add the entitlement to.
        config: String,
    },
}

/// Why an output was not written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutputError {
    /// Writing the files BuildKit sent failed, or a path it sent was refused.
    #[error(transparent)]
    Receive(Arc<brewkit_buildkit::filesync::Error>),
    /// The session stopped waiting for the transfer: its outcome is unknown.
    #[error("{running} transfer(s) still writing after {} s; the output may be incomplete", limit.as_secs())]
    Unfinished {
        /// How many transfers were still running.
        running: usize,
        /// How long the session waited.
        limit: Duration,
    },
}

/// What BuildKit said about a failed solve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SolveFailure {
    /// BuildKit's message (for a command: its exit code).
    pub message: String,
    /// The name of the step that failed, when BuildKit said which.
    pub step: Option<String>,
    /// The last log lines of the solve, at most [`LOG_TAIL`].
    pub log_tail: Vec<String>,
}

fn failed_where(command: &Option<String>, step: &Option<String>) -> String {
    match (command, step) {
        (Some(command), Some(step)) if step != command => format!("at `{}`", quote_cut(step)),
        (Some(command), _) => format!("running `{}`", quote_cut(command)),
        (None, Some(step)) => format!("at `{}`", quote_cut(step)),
        (None, None) => "to build".to_owned(),
    }
}

/// BuildKit's `message` without the command line it quotes (`executor failed running
/// [/bin/sh -c …]: exit code: 3`, or `process "/bin/sh -c …" did not complete successfully:
/// exit code: 3` since v0.11): the error already names the command once.
pub fn reason(message: &str) -> String {
    let quoted = if message.starts_with("executor failed running [") {
        message.rsplit_once("]: ")
    } else if message.starts_with("process \"") {
        message.rsplit_once("\" did not complete successfully: ")
    } else {
        None
    };
    quoted.map_or_else(|| message.to_owned(), |(_, reason)| reason.to_owned())
}

/// Ways BuildKit and the registries it quotes say that a pull was refused for lack of
/// credentials (lowercase).
const UNAUTHORIZED: [&str; 4] = [
    "401 unauthorized",
    "unauthorized",
    "authorization failed",
    "no basic auth credentials",
];

/// For a failure a registry refused for lack of credentials: how to give brewkit some. It reads
/// the docker CLI's config, so `docker login` is the way.
pub(crate) fn login_hint(message: &str) -> String {
    let lower = message.to_lowercase();
    if !UNAUTHORIZED.iter().any(|u| lower.contains(u)) {
        return String::new();
    }
    let registry = registry_in(message).unwrap_or_else(|| "<registry>".to_owned());
    format!("\nhint: log in with \"docker login {registry}\" (brewkit reads the docker CLI's credentials)")
}

/// The registry a BuildKit message names: the host it pulled from, else the registry of the
/// image it was resolving.
fn registry_in(message: &str) -> Option<String> {
    // The word after `marker`, without the ':' or ',' that ends it in a sentence.
    let word_after = |marker: &str| {
        let (_, rest) = message.split_once(marker)?;
        let word = rest.split_whitespace().next()?;
        Some(word.trim_end_matches([':', ',']).to_owned()).filter(|w| !w.is_empty())
    };
    if let Some(host) = word_after("pulling from host ") {
        return Some(host);
    }
    let image = word_after("resolving image ").or_else(|| word_after("docker-image://"))?;
    Some(registry_of(&image))
}

/// The registry of an image reference, as Docker reads it: the first component when it looks
/// like a host (a '.' or ':' in it, or `localhost`), else Docker Hub.
fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first.to_owned(),
        _ => "docker.io".to_owned(),
    }
}

fn render_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = lines.iter().map(|l| cut(l, LOG_LINE_LIMIT)).collect();
    format!("\nlast {} log lines:\n{}", lines.len(), lines.join("\n"))
}

/// `text` as an error quotes it: at most [`QUOTE_LIMIT`] characters of it.
pub(crate) fn quote_cut(text: &str) -> String {
    cut(text, QUOTE_LIMIT)
}

/// `text` if it has at most `limit` characters; else its beginning and its last [`KEEP_END`]
/// characters around `… (N bytes) …`, N being its whole length. Cut on character boundaries.
fn cut(text: &str, limit: usize) -> String {
    // At most `limit` bytes is at most `limit` characters: no need to count them.
    if text.len() <= limit || text.chars().count() <= limit {
        return text.to_owned();
    }
    let keep_end = KEEP_END.min(limit / 2);
    let head_end = text
        .char_indices()
        .nth(limit - keep_end)
        .map_or(text.len(), |(i, _)| i);
    let tail_start = if keep_end == 0 {
        text.len()
    } else {
        text.char_indices()
            .rev()
            .nth(keep_end - 1)
            .map_or(0, |(i, _)| i)
    };
    format!(
        "{}… ({} bytes) …{}",
        &text[..head_end],
        text.len(),
        &text[tail_start..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_leaves_out_the_quoted_command() {
        assert_eq!(
            reason("executor failed running [/bin/sh -c echo a]: b]: exit code: 3"),
            "exit code: 3"
        );
        assert_eq!(
            reason(r#"process "/bin/sh -c false" did not complete successfully: exit code: 1"#),
            "exit code: 1"
        );
        assert_eq!(reason("context canceled"), "context canceled");
    }

    #[test]
    fn an_unauthorized_pull_hints_at_docker_login() {
        let hint = |message: &str| login_hint(message);
        assert_eq!(
            hint("resolving image 127.0.0.1:5001/private:latest: BuildKit ResolveImageConfig: pulling from host 127.0.0.1:5001 failed with status code [manifests latest]: 401 Unauthorized"),
            "\nhint: log in with \"docker login 127.0.0.1:5001\" (brewkit reads the docker CLI's credentials)"
        );
        assert!(hint("resolving image ghcr.io/me/app:1: failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized")
            .contains("\"docker login ghcr.io\""));
        assert!(hint("resolving image me/app: pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed")
            .contains("\"docker login docker.io\""));
        assert!(hint("failed to load cache key: no basic auth credentials")
            .contains("\"docker login <registry>\""));
        assert_eq!(
            hint("executor failed running [/bin/sh -c false]: exit code: 1"),
            ""
        );
        let error = Error::Failed {
            node: "all".into(),
            command: None,
            failure: SolveFailure {
                message: "resolving image localhost:5000/a: unauthorized: authentication required"
                    .into(),
                ..SolveFailure::default()
            },
        };
        assert!(
            error.to_string().ends_with(
                "\"docker login localhost:5000\" (brewkit reads the docker CLI's credentials)"
            ),
            "{error}"
        );
    }

    #[test]
    fn short_text_is_quoted_whole() {
        assert_eq!(quote_cut(""), "");
        assert_eq!(quote_cut("make test"), "make test");
        let exact = "é".repeat(QUOTE_LIMIT);
        assert_eq!(
            quote_cut(&exact),
            exact,
            "characters are counted, not bytes"
        );
    }

    #[test]
    fn long_text_keeps_its_ends_and_its_length() {
        let text = format!("start{}end", "a".repeat(3_000_000));
        let quoted = quote_cut(&text);
        assert!(quoted.starts_with("startaaa"), "{quoted}");
        assert!(quoted.ends_with("aaaend"), "{quoted}");
        assert!(quoted.contains("… (3000008 bytes) …"), "{quoted}");
        assert!(quoted.chars().count() < QUOTE_LIMIT + 30, "{quoted}");
    }

    #[test]
    fn multibyte_text_is_cut_on_character_boundaries() {
        for text in [
            "é".repeat(1000),
            "日本".repeat(700),
            format!("a{}", "🦀".repeat(500)),
        ] {
            let quoted = quote_cut(&text);
            let (head, rest) = quoted.split_once('…').unwrap();
            let tail = rest.rsplit_once('…').unwrap().1;
            assert!(text.starts_with(head) && text.ends_with(tail), "{quoted}");
            assert_eq!(head.chars().count() + tail.chars().count(), QUOTE_LIMIT);
            assert!(quoted.contains(&format!("({} bytes)", text.len())));
        }
    }

    #[test]
    fn a_failure_quoting_a_huge_value_stays_short() {
        let value = "v".repeat(3_000_000);
        let error = Error::Failed {
            node: "all".into(),
            command: Some(format!("cat /{value}")),
            failure: SolveFailure {
                message: format!("executor failed running [/bin/sh -c cat /{value}]: exit code: 1"),
                step: None,
                log_tail: vec![format!("cat: can't open '/{value}': File name too long"); LOG_TAIL],
            },
        };
        let message = error.to_string();
        assert!(message.len() < 10 * 1024, "{} bytes", message.len());
        assert!(message.contains("`: exit code: 1"), "{message}");
        assert!(
            !message.contains("[/bin/sh -c"),
            "the command is quoted once: {message}"
        );
        assert!(message.contains("File name too long"), "{message}");
        assert_eq!(message.lines().count(), 2 + LOG_TAIL, "every line is kept");
    }
}
