//! `brewkit`: argument parsing, wiring and exit codes. The work is done in `pkg/`.

mod cli;
mod completion;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

use brewkit_definition::{Definition, Plan, Target};
use clap::Parser;
use cli::{BuildCommand, Cli, Command, ConfigCommand, DefinitionArgs};

/// Exit codes (design §6): documented in docs/cli.md.
mod exit {
    pub const BUILD_FAILED: u8 = 1;
    pub const BAD_INPUT: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    // A build cancelled by a signal: 128 + the signal's number, as shells report a command that
    // a signal ended.
    pub const HANGUP: u8 = 129;
    pub const INTERRUPTED: u8 = 130;
    pub const TERMINATED: u8 = 143;
}

/// How long the shutdown after a signal waits for blocking work (an export's file writer
/// removing its temporary file) before brewkit exits anyway, for a writer stuck on a hung disk.
const CLEANUP_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// An error on its way to the top: what to print and the exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn bad_input(error: impl std::fmt::Display) -> Self {
        Self {
            code: exit::BAD_INPUT,
            message: error.to_string(),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(bare_jobs_last(std::env::args_os().collect()));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // Not `eprintln!`, which panics when stderr is gone: after SIGHUP, the terminal
            // may be, and the exit code must still say what happened.
            let _ = writeln!(std::io::stderr().lock(), "brewkit: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Build(build) => match build.command {
            Some(BuildCommand::Definition) => {
                let loaded = load(&cli.definition)?;
                print_json(&loaded.normalized)
            }
            Some(BuildCommand::DefinitionDebug) => {
                let (file, options) = jsonnet_input(&cli.definition);
                let raw =
                    brewkit_definition::compile(&file, &options).map_err(Failure::bad_input)?;
                print_json(&raw)
            }
            None => {
                let loaded = load(&cli.definition)?;
                let plan =
                    Plan::new(&loaded.definition, &build.targets).map_err(Failure::bad_input)?;
                let config = brewkit_config::Config::load().map_err(Failure::bad_input)?;
                plan.check_host(&loaded.definition, &config)
                    .map_err(Failure::bad_input)?;
                for warning in &plan.warnings {
                    eprintln!("brewkit: warning: {warning}");
                }
                let context = build_context(&cli.definition, &loaded.file)?;
                let options = brewkit_build::BuildOptions {
                    context,
                    // make's rule: one at a time unless -j; bare -j: no limit.
                    jobs: match build.jobs {
                        None => Some(1),
                        Some(None) => None,
                        Some(Some(n)) => Some(n as usize),
                    },
                    keep_going: build.keep_going,
                    no_cache: build.no_cache,
                    pull: build.pull,
                };
                run_build(&build, &loaded.definition, &plan, &config, &options)
            }
        },
        Command::Graph { format, targets } => {
            let loaded = load(&cli.definition)?;
            let format = match format {
                cli::GraphFormatArg::Dot => brewkit_definition::graph::GraphFormat::Dot,
                cli::GraphFormatArg::Mermaid => brewkit_definition::graph::GraphFormat::Mermaid,
            };
            let text = brewkit_definition::graph::render(&loaded.definition, &targets, format)
                .map_err(Failure::bad_input)?;
            stdout_result(std::io::stdout().lock().write_all(text.as_bytes()))
        }
        Command::Targets => {
            let loaded = load(&cli.definition)?;
            print_targets(&loaded.definition)
        }
        Command::Config {
            command: ConfigCommand::Init,
        } => {
            let (path, _) = brewkit_config::location().map_err(Failure::bad_input)?;
            brewkit_config::init(&path).map_err(Failure::bad_input)?;
            println!("wrote {}", path.display());
            Ok(())
        }
        Command::Completion { shell } => stdout_result(
            std::io::stdout()
                .lock()
                .write_all(completion::script(shell).as_bytes()),
        ),
        Command::CompleteTargets => {
            // While a shell completes `brewkit -f - build <TAB>`, stdin is the terminal: reading
            // the definition from it would hang the shell.
            let file = cli.definition.file.as_deref();
            if file.is_some_and(brewkit_jsonnet::is_stream) {
                return Ok(());
            }
            let loaded = load(&cli.definition)?;
            let names: String = loaded
                .definition
                .public_targets()
                .map(|t| format!("{t}\n"))
                .collect();
            stdout_result(std::io::stdout().lock().write_all(names.as_bytes()))
        }
        Command::Cache { command } => {
            let daemon = match &command {
                cli::CacheCommand::Du { daemon, .. } | cli::CacheCommand::Clear { daemon, .. } => {
                    daemon
                }
            };
            let output = runtime()?.block_on(async {
                let client = connect(daemon).await?;
                let failed = |e: brewkit_buildkit::Error| Failure {
                    code: exit::BUILD_FAILED,
                    message: e.to_string(),
                };
                match &command {
                    cli::CacheCommand::Du {
                        verbose, filters, ..
                    } => {
                        let records = client.disk_usage(filters).await.map_err(failed)?;
                        Ok(brewkit_progress::cache::usage(&records, *verbose))
                    }
                    cli::CacheCommand::Clear { all, filters, .. } => {
                        let records = client.prune(*all, filters).await.map_err(failed)?;
                        Ok(brewkit_progress::cache::pruned(&records))
                    }
                }
            })?;
            stdout_result(std::io::stdout().lock().write_all(output.as_bytes()))
        }
        Command::Fmt { check, files } => {
            let files = if files.is_empty() {
                vec![PathBuf::from(brewkit_definition::DEFAULT_FILE)]
            } else {
                files
            };
            let mut changed = Vec::new();
            for file in &files {
                if brewkit_jsonnet::format::format_file(file, check).map_err(Failure::bad_input)? {
                    changed.push(file.display().to_string());
                }
            }
            if check && !changed.is_empty() {
                return Err(Failure {
                    code: exit::BUILD_FAILED,
                    message: format!("not formatted: {}", changed.join(", ")),
                });
            }
            for file in &changed {
                println!("formatted {file}");
            }
            Ok(())
        }
        Command::Version => {
            let commit = option_env!("BREWKIT_COMMIT")
                .filter(|c| !c.is_empty())
                .map(|c| format!(", commit {c}"))
                .unwrap_or_default();
            println!(
                "brewkit {}{commit} (build definition {})",
                env!("CARGO_PKG_VERSION"),
                brewkit_definition::API_VERSIONS.join(", ")
            );
            Ok(())
        }
    }
}

/// Moves a bare `-j`/`--jobs` (one not followed by a number) to the end of the options, so that
/// `brewkit build -j all` means "no limit, target all", as make reads `make -j all`, rather than
/// a jobs count of "all".
fn bare_jobs_last(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let bare = (1..end).find(|&i| {
        (args[i] == "-j" || args[i] == "--jobs")
            && args
                .get(i + 1)
                .and_then(|next| next.to_str())
                .is_none_or(|next| next.parse::<u32>().is_err())
    });
    if let Some(i) = bare {
        let flag = args.remove(i);
        args.insert(end - 1, flag);
    }
    args
}

/// Connects to BuildKit and runs the build, rendering progress on stderr. SIGINT (Ctrl-C),
/// SIGTERM and SIGHUP cancel the solves (dropping them cancels them in BuildKit) and exit with
/// 130, 143 and 129 once the temporary files of exports in flight are removed.
fn run_build(
    build: &cli::BuildArgs,
    definition: &brewkit_definition::Definition,
    plan: &Plan,
    config: &brewkit_config::Config,
    options: &brewkit_build::BuildOptions,
) -> Result<(), Failure> {
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let mut signals = Signals::listen()?;
        let client = tokio::select! {
            client = connect(&build.daemon) => client?,
            signal = signals.next() => return Err(signal),
        };
        let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
        let mode = build.progress;
        // Set when a signal cancels the build: the progress channel may stay open until the
        // runtime shuts down (detached tasks hold senders), and the renderer must be done
        // before that, when its timer stops working.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The renderer writes to the terminal, so it gets a thread of its own; it wakes for
        // each event, for the end of the build, and every tick to animate a tty.
        let runtime = tokio::runtime::Handle::current();
        let stopped = stop.clone();
        let renderer = tokio::task::spawn_blocking(move || {
            let mut renderer = brewkit_progress::Renderer::new(mode, std::io::stderr());
            let tick = std::time::Duration::from_millis(40);
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                match runtime.block_on(tokio::time::timeout(tick, received.recv())) {
                    Ok(Some(event)) => renderer.event(&event),
                    Ok(None) => break,
                    Err(_) => renderer.tick(),
                }
            }
            renderer.finish();
        });
        let building = brewkit_build::build(&client, definition, plan, config, options, events);
        let result = tokio::select! {
            result = building => result,
            signal = signals.next() => {
                // The build future is dropped here: its solves are cancelled and the exports'
                // receivers told to stop (their writers remove their temporary files).
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                let _ = renderer.await;
                return Err(signal);
            }
        };
        let _ = renderer.await;
        result.map_err(|e| Failure {
            code: match &e {
                brewkit_build::Error::Host(_) => exit::BAD_INPUT,
                brewkit_build::Error::BuildKit(e) if e.is_unreachable() => exit::UNREACHABLE,
                _ => exit::BUILD_FAILED,
            },
            message: e.to_string(),
        })
    });
    // Not a plain drop, which waits for blocking work without end: after a signal, an export's
    // file writer (a blocking task) is still removing its temporary file, and brewkit must not
    // exit before it has (nothing calls `std::process::exit`: `main` returns the exit code after
    // this). Work spawned on the runtime is dropped, which cancels what is left of the build.
    runtime.shutdown_timeout(CLEANUP_GRACE);
    result
}

/// The signals that cancel a build.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Handles SIGINT, SIGTERM and SIGHUP from now on, instead of dying at once (which leaves
    /// partial files behind).
    fn listen() -> Result<Self, Failure> {
        use tokio::signal::unix::{signal, SignalKind};
        let listen = |kind| {
            signal(kind).map_err(|e| Failure {
                code: exit::BUILD_FAILED,
                message: format!("cannot handle signals: {e}"),
            })
        };
        Ok(Self {
            interrupt: listen(SignalKind::interrupt())?,
            terminate: listen(SignalKind::terminate())?,
            hangup: listen(SignalKind::hangup())?,
        })
    }

    /// The failure for the next signal received.
    async fn next(&mut self) -> Failure {
        let (code, name) = tokio::select! {
            _ = self.interrupt.recv() => (exit::INTERRUPTED, "SIGINT"),
            _ = self.terminate.recv() => (exit::TERMINATED, "SIGTERM"),
            _ = self.hangup.recv() => (exit::HANGUP, "SIGHUP"),
        };
        Failure {
            code,
            message: format!("interrupted ({name}): the build was cancelled"),
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Runtime::new().map_err(|e| Failure {
        code: exit::BUILD_FAILED,
        message: format!("cannot start the async runtime: {e}"),
    })
}

/// Connects to BuildKit (exit code 3 when nothing answers).
async fn connect(args: &cli::DaemonArgs) -> Result<brewkit_buildkit::Client, Failure> {
    let tls = brewkit_buildkit::transport::TlsFiles {
        ca: args.tls_ca.clone(),
        cert: args.tls_cert.clone(),
        key: args.tls_key.clone(),
    };
    brewkit_buildkit::Client::connect(args.addr.as_deref(), &tls)
        .await
        .map_err(|e| Failure {
            code: if e.is_unreachable() {
                exit::UNREACHABLE
            } else {
                exit::BAD_INPUT
            },
            message: e.to_string(),
        })
}

fn jsonnet_input(args: &DefinitionArgs) -> (PathBuf, brewkit_jsonnet::Options) {
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from(brewkit_definition::DEFAULT_FILE));
    let options = brewkit_jsonnet::Options {
        jpath: brewkit_jsonnet::Options::jpath_with_env(&args.jpath),
        ext_vars: args.ext_vars(),
        max_stack: args.max_stack.map(|n| n as usize),
    };
    (file, options)
}

fn load(args: &DefinitionArgs) -> Result<brewkit_definition::Loaded, Failure> {
    let (file, options) = jsonnet_input(args);
    brewkit_definition::load(&file, &options).map_err(Failure::bad_input)
}

/// The build context: `-c DIR`, else the directory of the definition file (the current directory
/// for a definition read from stdin or a pipe, which has none).
fn build_context(args: &DefinitionArgs, file: &Path) -> Result<PathBuf, Failure> {
    let context = match &args.context {
        Some(dir) => dir.clone(),
        None if brewkit_jsonnet::is_stream(file) => PathBuf::from("."),
        None => file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_owned),
    };
    if !context.is_dir() {
        return Err(Failure::bad_input(format!(
            "build context {} is not a directory",
            context.display()
        )));
    }
    Ok(context)
}

fn print_json(value: &serde_json::Value) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out));
    stdout_result(written)
}

/// A reader that went away (`brewkit … | head`) is not an error.
fn stdout_result(written: std::io::Result<()>) -> Result<(), Failure> {
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure {
            code: exit::BUILD_FAILED,
            message: format!("cannot write to stdout: {e}"),
        }),
        _ => Ok(()),
    }
}

fn print_targets(definition: &Definition) -> Result<(), Failure> {
    let rows: Vec<(&str, String)> = definition
        .public_targets()
        .map(|name| (name, describe(&definition.targets[name])))
        .collect();
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    let written = rows
        .iter()
        .try_for_each(|(name, what)| writeln!(out, "{name:<width$}  {what}"));
    stdout_result(written)
}

/// One line on what a target is: composite members, or base, dependencies and outputs.
fn describe(target: &Target) -> String {
    match target {
        Target::Composite(members) => format!("composite: {}", members.join(", ")),
        Target::Stage(stage) => {
            let mut parts = vec![format!(
                "from {}",
                stage.run.from.as_deref().unwrap_or("scratch")
            )];
            if !stage.depends_on.is_empty() {
                parts.push(format!("after {}", stage.depends_on.join(", ")));
            }
            if !stage.output.is_empty() {
                let locals: Vec<&str> = stage.output.iter().map(|o| o.local.as_str()).collect();
                parts.push(format!("outputs to {}", locals.join(", ")));
            }
            parts.join("; ")
        }
    }
}
