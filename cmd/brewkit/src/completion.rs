//! Shell completion: clap_complete's scripts, with target names completed for `build`, `b` and
//! `graph` by asking `brewkit __complete-targets` (the public targets of the definition in the
//! current directory, or of `-f FILE` when given earlier on the line).

use clap::CommandFactory;
use clap_complete::{generate, Shell};

use crate::cli::{Cli, CompletionShell};

const BASH_TARGETS: &str = r#"
# Target names of the definition, for `brewkit build|b|graph`.
_brewkit_with_targets() {
    _brewkit "$@"
    local i sub="" file=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            build|b|graph) [[ -z "$sub" ]] && sub=${COMP_WORDS[i]} ;;
            -f|--file) file=(-f "${COMP_WORDS[i+1]}") ;;
        esac
    done
    if [[ -n "$sub" && "${COMP_WORDS[COMP_CWORD]}" != -* ]]; then
        local targets
        targets=$(brewkit "${file[@]}" __complete-targets 2>/dev/null)
        COMPREPLY+=($(compgen -W "$targets" -- "${COMP_WORDS[COMP_CWORD]}"))
    fi
}
complete -F _brewkit_with_targets -o bashdefault -o default brewkit
"#;

const ZSH_TARGETS: &str = r#"
# Target names of the definition, for `brewkit build|b|graph`.
_brewkit_targets() {
    local -a targets
    targets=(${(f)"$(brewkit __complete-targets 2>/dev/null)"})
    _describe 'target' targets
}
"#;

const FISH_TARGETS: &str = r#"
# Target names of the definition, for `brewkit build|b|graph`.
complete -c brewkit -n "__fish_seen_subcommand_from build b graph" -f -a "(brewkit __complete-targets 2>/dev/null)"
"#;

/// The completion script for `shell`.
pub(crate) fn script(shell: CompletionShell) -> String {
    let mut command = visible(Cli::command());
    let mut out = Vec::new();
    let generator = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    generate(generator, &mut command, "brewkit", &mut out);
    let mut text = String::from_utf8_lossy(&out).into_owned();
    match shell {
        CompletionShell::Bash => text.push_str(BASH_TARGETS),
        CompletionShell::Zsh => {
            // Positional TARGET arguments complete with the definition's targets.
            text = text.replace(
                "::targets -- Targets to build:'",
                "::targets -- Targets to build:_brewkit_targets'",
            );
            text = text.replace(
                "every target\\]:_default'",
                "every target\\]:_brewkit_targets'",
            );
            text.push_str(ZSH_TARGETS);
        }
        CompletionShell::Fish => text.push_str(FISH_TARGETS),
    }
    text
}

/// `full` without its hidden subcommands: clap_complete offers hidden subcommands as
/// completions, and `__complete-targets` is for the scripts, not for people.
fn visible(full: clap::Command) -> clap::Command {
    let mut command = clap::Command::new("brewkit").version(env!("CARGO_PKG_VERSION"));
    if let Some(about) = full.get_about() {
        command = command.about(about.clone());
    }
    for arg in full.get_arguments() {
        command = command.arg(arg.clone());
    }
    for sub in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        command = command.subcommand(sub.clone());
    }
    command.subcommand_required(full.is_subcommand_required_set())
}
