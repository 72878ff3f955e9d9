//! The command line (docs/cli.md).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Container-native builds on BuildKit, described in brewkit.jsonnet.
#[derive(Debug, Parser)]
#[command(name = "brewkit", version, about, long_about = None)]
pub(crate) struct Cli {
    /// The definition's options given before the command (see [`Cli::definition`]).
    #[command(flatten)]
    pub before_command: DefinitionArgs,
    #[command(subcommand)]
    pub command: Command,
}

// The definition's options are accepted before the command and after each command that reads
// the definition (not global: `version --help` or `cache du --help` would list options they
// ignore). `Cli::definition` merges the levels.

/// Where the build definition is and what its Jsonnet may see.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct JsonnetArgs {
    /// Build definition file; - reads it from stdin [default: ./brewkit.jsonnet]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Library directory for Jsonnet imports (repeatable; the last one wins; then JSONNET_PATH)
    #[arg(short = 'J', long = "jpath", value_name = "DIR")]
    pub jpath: Vec<PathBuf>,
    /// Jsonnet external variable as a string: NAME=VALUE, or NAME to take $NAME
    #[arg(long = "ext-str", value_name = "NAME[=VALUE]", value_parser = parse_ext_str)]
    pub ext_str: Vec<brewkit_jsonnet::ExtVar>,
    /// Jsonnet external variable as code: NAME=CODE, or NAME to take $NAME
    #[arg(long = "ext-code", value_name = "NAME[=CODE]", value_parser = parse_ext_code)]
    pub ext_code: Vec<brewkit_jsonnet::ExtVar>,
    /// How deep Jsonnet calls may nest before evaluation stops with a stack overflow [default: 500]
    #[arg(long = "max-stack", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_stack: Option<u32>,
}

impl JsonnetArgs {
    /// Every `--ext-str` and `--ext-code`, strings first.
    pub(crate) fn ext_vars(&self) -> Vec<brewkit_jsonnet::ExtVar> {
        self.ext_str.iter().chain(&self.ext_code).cloned().collect()
    }

    /// These options with `inner`'s (given after a later command) added: a file or stack size
    /// given later wins, repeated options accumulate in command-line order.
    fn then(mut self, inner: &JsonnetArgs) -> Self {
        self.file = inner.file.clone().or(self.file);
        self.jpath.extend(inner.jpath.iter().cloned());
        self.ext_str.extend(inner.ext_str.iter().cloned());
        self.ext_code.extend(inner.ext_code.iter().cloned());
        self.max_stack = inner.max_stack.or(self.max_stack);
        self
    }
}

/// The definition's options and the build context: what `brewkit` takes before its command.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct DefinitionArgs {
    #[command(flatten)]
    pub jsonnet: JsonnetArgs,
    /// Build context [default: the directory of the definition file; the current directory for -f -]
    #[arg(short = 'c', long = "context", value_name = "DIR")]
    pub context: Option<PathBuf>,
}

impl Cli {
    /// The definition's options as given before the command and after it (and after `build`'s
    /// own command), later ones winning.
    pub(crate) fn definition(&self) -> DefinitionArgs {
        let outer = &self.before_command;
        let mut jsonnet = outer.jsonnet.clone();
        let mut context = outer.context.clone();
        match &self.command {
            Command::Build(build) => {
                jsonnet = jsonnet.then(&build.jsonnet);
                context = build.context.clone().or(context);
                match &build.command {
                    Some(BuildCommand::Definition(inner))
                    | Some(BuildCommand::DefinitionDebug(inner)) => jsonnet = jsonnet.then(inner),
                    None => {}
                }
            }
            Command::Targets { jsonnet: inner, .. }
            | Command::Graph { jsonnet: inner, .. }
            | Command::CompleteTargets(inner) => jsonnet = jsonnet.then(inner),
            _ => {}
        }
        DefinitionArgs { jsonnet, context }
    }
}

fn parse_ext_str(arg: &str) -> Result<brewkit_jsonnet::ExtVar, String> {
    brewkit_jsonnet::ExtVar::parse(arg, false)
}

fn parse_ext_code(arg: &str) -> Result<brewkit_jsonnet::ExtVar, String> {
    brewkit_jsonnet::ExtVar::parse(arg, true)
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build targets (`all` when none is named)
    #[command(visible_alias = "b")]
    Build(Box<BuildArgs>),
    /// List the public targets and what each one is
    Targets {
        /// Print a JSON array: name, kind (stage or composite), description, from, dependsOn, outputs
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        jsonnet: JsonnetArgs,
    },
    /// Draw the target graph: from, copyFrom, dependsOn, composite members and vars
    Graph {
        /// Output format
        #[arg(long = "format", value_enum, default_value = "dot")]
        format: GraphFormatArg,
        /// Only what these targets reach [default: every target]
        #[arg(value_name = "TARGET")]
        targets: Vec<String>,
        #[command(flatten)]
        jsonnet: JsonnetArgs,
    },
    /// Manage the host config (~/.brewkit/config or $BREWKIT_CONFIG)
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print the version and the supported build definition versions
    Version,
    /// Format Jsonnet files in place (atomically)
    Fmt {
        /// Change nothing; list the files that are not formatted and exit with 1 if any
        #[arg(long)]
        check: bool,
        /// Files to format [default: ./brewkit.jsonnet]
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// BuildKit's build cache
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Print a shell completion script (targets of ./brewkit.jsonnet complete too)
    Completion {
        /// bash, zsh or fish
        shell: CompletionShell,
    },
    /// Public target names, one a line (used by the completion scripts)
    #[command(name = "__complete-targets", hide = true)]
    CompleteTargets(JsonnetArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    #[command(subcommand)]
    pub command: Option<BuildCommand>,
    /// Targets to build
    #[arg(value_name = "TARGET", value_hint = clap::ValueHint::Other)]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub jsonnet: JsonnetArgs,
    /// Build context [default: the directory of the definition file; the current directory for -f -]
    #[arg(short = 'c', long = "context", value_name = "DIR")]
    pub context: Option<PathBuf>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// Progress output: auto, tty, plain, json, rawjson or quiet
    #[arg(
        long = "progress",
        value_name = "MODE",
        default_value = "auto",
        env = "BUILDKIT_PROGRESS"
    )]
    pub progress: brewkit_progress::Mode,
    /// Run up to N targets at once; bare -j: no limit [default: one at a time, in the listed order]
    #[arg(long = "jobs", short = 'j', value_name = "N", num_args = 0..=1, value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<Option<u32>>,
    /// After a failure, go on with the targets that do not need the failed one
    #[arg(long = "keep-going", short = 'k')]
    pub keep_going: bool,
    /// Run every command again, ignoring the cache
    #[arg(long = "no-cache")]
    pub no_cache: bool,
    /// Ask the registry for images even when the daemon has them
    #[arg(long = "pull")]
    pub pull: bool,
    /// Print the plan (vars, images, order or rounds under -j, outputs) and build nothing
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

/// Where BuildKit is.
#[derive(Debug, Args)]
pub(crate) struct DaemonArgs {
    /// BuildKit address: unix://PATH, tcp://HOST:PORT or docker://[HOST] [default: $BUILDKIT_HOST, else the first that answers of buildkitd's sockets and Docker]
    #[arg(long = "addr", value_name = "ADDRESS")]
    pub addr: Option<String>,
    /// CA certificate for tcp:// (or docker://tcp://) with TLS
    #[arg(long = "tlscacert", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate for tcp:// with TLS
    #[arg(long = "tlscert", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Client key for tcp:// with TLS
    #[arg(long = "tlskey", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Name the daemon's TLS certificate holds, when it is not the address's host
    #[arg(long = "tlsservername", value_name = "NAME")]
    pub tls_server_name: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BuildCommand {
    /// Print the validated definition as JSON, in normal form
    Definition(JsonnetArgs),
    /// Print the JSON the definition file evaluates to, before validation
    DefinitionDebug(JsonnetArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// Show the build cache's disk usage
    Du {
        /// One line per cache record
        #[arg(long, short)]
        verbose: bool,
        /// Only records matching a BuildKit filter, e.g. description~=go (repeatable)
        #[arg(long = "filter", value_name = "FILTER")]
        filters: Vec<String>,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
    /// Remove unused build cache records
    Clear {
        /// Remove everything not in use, not only what BuildKit would collect first
        #[arg(long, short)]
        all: bool,
        /// Only records matching a BuildKit filter, e.g. description~=go (repeatable)
        #[arg(long = "filter", value_name = "FILTER")]
        filters: Vec<String>,
        #[command(flatten)]
        daemon: DaemonArgs,
    },
}

/// Shells `brewkit completion` writes for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// `brewkit graph --format`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum GraphFormatArg {
    /// Graphviz
    Dot,
    /// Mermaid flowchart
    Mermaid,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Write a commented default config; an existing file is never overwritten
    Init,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn build_takes_targets_or_a_subcommand() {
        let cli = Cli::try_parse_from(["brewkit", "build", "a", "b"]).unwrap();
        let Command::Build(build) = cli.command else {
            panic!()
        };
        assert_eq!(build.targets, ["a", "b"]);
        assert!(build.command.is_none());

        let cli = Cli::try_parse_from(["brewkit", "b", "-f", "x.jsonnet", "definition"]).unwrap();
        let Command::Build(build) = &cli.command else {
            panic!()
        };
        assert!(matches!(build.command, Some(BuildCommand::Definition(_))));
        assert_eq!(
            cli.definition().jsonnet.file,
            Some(PathBuf::from("x.jsonnet"))
        );
    }

    #[test]
    fn only_commands_that_read_the_definition_take_its_options() {
        for command in [
            vec!["version"],
            vec!["fmt"],
            vec!["completion", "bash"],
            vec!["cache", "du"],
            vec!["config", "init"],
        ] {
            let mut args = vec!["brewkit"];
            args.extend(&command);
            args.extend(["-f", "x.jsonnet"]);
            let error = Cli::try_parse_from(&args).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::UnknownArgument,
                "{command:?}"
            );
        }
        for command in [
            vec!["build"],
            vec!["build", "definition"],
            vec!["build", "definition-debug"],
            vec!["targets"],
            vec!["graph"],
            vec!["__complete-targets"],
        ] {
            let mut args = vec!["brewkit"];
            args.extend(&command);
            args.extend(["-f", "x.jsonnet", "-J", "lib"]);
            let cli = Cli::try_parse_from(&args).unwrap();
            let definition = cli.definition();
            assert_eq!(
                definition.jsonnet.file,
                Some(PathBuf::from("x.jsonnet")),
                "{command:?}"
            );
            assert_eq!(definition.jsonnet.jpath, [PathBuf::from("lib")]);
        }
        // The build context is `build`'s alone.
        assert!(Cli::try_parse_from(["brewkit", "targets", "-c", "."]).is_err());
        let cli = Cli::try_parse_from(["brewkit", "build", "-c", "dir"]).unwrap();
        assert_eq!(cli.definition().context, Some(PathBuf::from("dir")));
    }

    #[test]
    fn options_given_at_several_levels_merge_later_ones_winning() {
        let cli = Cli::try_parse_from([
            "brewkit",
            "-f",
            "a",
            "-J",
            "1",
            "-c",
            "x",
            "build",
            "-f",
            "b",
            "-J",
            "2",
            "-c",
            "y",
            "definition",
            "-f",
            "c",
            "-J",
            "3",
        ])
        .unwrap();
        let definition = cli.definition();
        assert_eq!(definition.jsonnet.file, Some(PathBuf::from("c")));
        assert_eq!(
            definition.jsonnet.jpath,
            ["1", "2", "3"].map(PathBuf::from),
            "-J accumulates in command-line order (the last one wins a lookup)"
        );
        assert_eq!(definition.context, Some(PathBuf::from("y")));
        let cli = Cli::try_parse_from(["brewkit", "-f", "a", "--max-stack", "9", "graph"]).unwrap();
        assert_eq!(cli.definition().jsonnet.file, Some(PathBuf::from("a")));
        assert_eq!(cli.definition().jsonnet.max_stack, Some(9));
    }

    #[test]
    fn ext_vars_parse() {
        let cli = Cli::try_parse_from([
            "brewkit",
            "--ext-str",
            "a=1",
            "build",
            "--ext-code",
            "b={}",
            "definition",
        ])
        .unwrap();
        assert_eq!(
            cli.definition().jsonnet.ext_vars(),
            [
                brewkit_jsonnet::ExtVar::Str {
                    name: "a".into(),
                    value: "1".into()
                },
                brewkit_jsonnet::ExtVar::Code {
                    name: "b".into(),
                    code: "{}".into()
                },
            ]
        );
    }
}
