//! `brewkit`: argument parsing, wiring and exit codes. The work is done in `pkg/`.

mod cli;
mod completion;
mod show;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::ExitCode,
};

use brewkit_definition::Plan;
use clap::{error::ErrorKind, Parser};
use cli::{BuildCommand, Cli, Command, ConfigCommand, DefinitionArgs, JsonnetArgs};

/// Exit codes: documented in docs/cli.md.
mod exit {
    pub(crate) const BUILD_FAILED: u8 = 1;
    pub(crate) const BAD_INPUT: u8 = 2;
    pub(crate) const UNREACHABLE: u8 = 3;
    // A build cancelled by a signal: 128 + the signal's number, as shells report a command that
    // a signal ended.
    pub(crate) const HANGUP: u8 = 129;
    pub(crate) const INTERRUPTED: u8 = 130;
    pub(crate) const TERMINATED: u8 = 143;
}

/// How long the shutdown after a signal waits for blocking work (an export's file writer
/// removing its temporary file) before brewkit exits anyway, for a writer stuck on a hung disk.
const CLEANUP_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// An error on its way to the top: what to print and the exit code.
struct Failure {
    code: u8,
    message: String,
    /// The progress renderer has already reported it (`--progress json`).
    reported: bool,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reported: false,
        }
    }

    fn bad_input(error: impl std::fmt::Display) -> Self {
        Self::new(exit::BAD_INPUT, error.to_string())
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(bare_jobs_last(std::env::args_os().collect())) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    // Under `--progress json` every line on stderr is a JSON object, errors included.
    let json = matches!(&cli.command, Command::Build(build)
        if build.command.is_none() && build.progress.resolve() == brewkit_progress::Mode::Json);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // Not `eprintln!`, which panics when stderr is gone: after SIGHUP, the terminal
            // may be, and the exit code must still say what happened.
            let mut stderr = std::io::stderr().lock();
            if json && !failure.reported {
                let lines = brewkit_progress::json::failure_lines(&failure.message, failure.code);
                let _ = stderr.write_all(lines.as_bytes());
            } else if !failure.reported {
                let _ = writeln!(stderr, "brewkit: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let definition = cli.definition();
    match cli.command {
        Command::Build(build) => match build.command {
            Some(BuildCommand::Definition(_)) => {
                let loaded = load(&definition.jsonnet)?;
                print_json(&loaded.normalized)
            }
            Some(BuildCommand::DefinitionDebug(_)) => {
                let (file, options) = jsonnet_input(&definition.jsonnet);
                let raw =
                    brewkit_definition::compile(&file, &options).map_err(Failure::bad_input)?;
                print_json(&raw)
            }
            None => {
                let loaded = load(&definition.jsonnet)?;
                let plan =
                    Plan::new(&loaded.definition, &build.targets).map_err(Failure::bad_input)?;
                let config = brewkit_config::Config::load().map_err(Failure::bad_input)?;
                plan.check_host(&loaded.definition, &config)
                    .map_err(Failure::bad_input)?;
                for warning in &plan.warnings {
                    if build.progress.resolve() == brewkit_progress::Mode::Json {
                        eprint!("{}", brewkit_progress::json::warning_line(warning));
                    } else {
                        eprintln!("brewkit: warning: {warning}");
                    }
                }
                let context = build_context(&definition, &loaded.file)?;
                if build.dry_run {
                    let absolute = std::fs::canonicalize(&context).unwrap_or(context);
                    let text =
                        show::plan(&loaded.definition, &plan, &absolute, build.jobs.is_some());
                    return stdout_result(std::io::stdout().lock().write_all(text.as_bytes()));
                }
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
        Command::Graph {
            format, targets, ..
        } => {
            let loaded = load(&definition.jsonnet)?;
            let format = match format {
                cli::GraphFormatArg::Dot => brewkit_definition::graph::GraphFormat::Dot,
                cli::GraphFormatArg::Mermaid => brewkit_definition::graph::GraphFormat::Mermaid,
            };
            let text = brewkit_definition::graph::render(&loaded.definition, &targets, format)
                .map_err(Failure::bad_input)?;
            stdout_result(std::io::stdout().lock().write_all(text.as_bytes()))
        }
        Command::Targets { json, .. } => {
            let loaded = load(&definition.jsonnet)?;
            if json {
                print_json(&show::targets_json(&loaded.definition))
            } else {
                let text = show::targets(&loaded.definition);
                stdout_result(std::io::stdout().lock().write_all(text.as_bytes()))
            }
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
        Command::CompleteTargets(_) => {
            // While a shell completes `brewkit -f - build <TAB>`, stdin is the terminal: reading
            // the definition from it would hang the shell.
            let file = definition.jsonnet.file.as_deref();
            if file.is_some_and(brewkit_jsonnet::is_stream) {
                return Ok(());
            }
            let loaded = load(&definition.jsonnet)?;
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
                let failed =
                    |e: brewkit_buildkit::Error| Failure::new(exit::BUILD_FAILED, e.to_string());
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
                return Err(Failure::new(
                    exit::BUILD_FAILED,
                    format!("not formatted: {}", changed.join(", ")),
                ));
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

/// Reports a command-line error as brewkit's own (`brewkit: …`, exit 2); help and version go to
/// stdout as clap prints them. clap's tip to put `-- ` before a flag is left out: for `build` it
/// would make the flag a target name.
fn usage_error(error: &clap::Error) -> ExitCode {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return ExitCode::from(if error.use_stderr() {
            exit::BAD_INPUT
        } else {
            0
        });
    }
    let text = error.render().to_string();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or_default();
    let mut message = format!("brewkit: {}", first.trim_start_matches("error: "));
    for line in lines {
        let line = line.trim();
        if let Some(tip) = line.strip_prefix("tip: ") {
            if !tip.contains("'-- ") {
                message.push_str(&format!("\n  {tip}"));
            }
        } else if let Some(more) = line.strip_prefix("For more information, try ") {
            message.push_str(&format!("\n  see {}", more.trim_end_matches('.')));
        } else {
            message.push_str(&format!("\n  {line}"));
        }
    }
    let _ = writeln!(std::io::stderr().lock(), "{message}");
    ExitCode::from(exit::BAD_INPUT)
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
        let (events, mut received) = tokio::sync::mpsc::channel(brewkit_build::EVENT_BUFFER);
        let mode = build.progress;
        if mode == brewkit_progress::Mode::RawJson {
            brewkit_buildkit::status::keep_raw();
        }
        // Set when a signal cancels the build: the progress channel may stay open until the
        // runtime shuts down (detached tasks hold senders), and the renderer must be done
        // before that, when its timer stops working.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The renderer writes to the terminal, so it gets a thread of its own; it wakes for
        // each event, for the end of the build, and every tick to animate a tty. It comes
        // back when the build is over, to end the output with how the build ended.
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
            renderer
        });
        let finish = |renderer: Result<brewkit_progress::Renderer<std::io::Stderr>, _>,
                      failure: Option<Failure>| {
            let Ok(mut renderer) = renderer else {
                return failure;
            };
            renderer.finish(failure.as_ref().map(|f| (f.message.as_str(), f.code)));
            let reported = renderer.reports_errors();
            failure.map(|f| Failure { reported, ..f })
        };
        let building = brewkit_build::build(&client, definition, plan, config, options, events);
        let result = tokio::select! {
            result = building => result,
            signal = signals.next() => {
                // The build future is dropped here: its solves are cancelled and the exports'
                // receivers told to stop (their writers remove their temporary files).
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(finish(renderer.await, Some(signal)).unwrap_or_else(|| unreachable!()));
            }
        };
        let failure = result.err().map(|e| {
            Failure::new(
                match &e {
                    brewkit_build::Error::Host(_) => exit::BAD_INPUT,
                    brewkit_build::Error::BuildKit(e) if e.is_unreachable() => exit::UNREACHABLE,
                    _ => exit::BUILD_FAILED,
                },
                e.to_string(),
            )
        });
        match finish(renderer.await, failure) {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
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
            signal(kind).map_err(|e| {
                Failure::new(exit::BUILD_FAILED, format!("cannot handle signals: {e}"))
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
        Failure::new(
            code,
            format!("interrupted ({name}): the build was cancelled"),
        )
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Runtime::new().map_err(|e| {
        Failure::new(
            exit::BUILD_FAILED,
            format!("cannot start the async runtime: {e}"),
        )
    })
}

/// Connects to BuildKit (exit code 3 when nothing answers, TLS failures included; 2 for a bad
/// address or TLS file).
async fn connect(args: &cli::DaemonArgs) -> Result<brewkit_buildkit::Client, Failure> {
    let tls = brewkit_buildkit::transport::TlsFiles {
        ca: args.tls_ca.clone(),
        cert: args.tls_cert.clone(),
        key: args.tls_key.clone(),
        server_name: args.tls_server_name.clone(),
    };
    brewkit_buildkit::Client::connect(args.addr.as_deref(), &tls)
        .await
        .map_err(|e| {
            Failure::new(
                if e.is_unreachable() {
                    exit::UNREACHABLE
                } else {
                    exit::BAD_INPUT
                },
                e.to_string(),
            )
        })
}

fn jsonnet_input(args: &JsonnetArgs) -> (PathBuf, brewkit_jsonnet::Options) {
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

fn load(args: &JsonnetArgs) -> Result<brewkit_definition::Loaded, Failure> {
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
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::new(
            exit::BUILD_FAILED,
            format!("cannot write to stdout: {e}"),
        )),
        _ => Ok(()),
    }
}
