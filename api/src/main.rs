//! `cairn`: the log and event correlation appliance.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use cairn_api::config::{ConfigFile, ListenAddr, Overrides};
use clap::{Parser, Subcommand};
use mimalloc::MiMalloc;
use tokio_util::sync::CancellationToken;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "cairn", version, about = "Log and event correlation appliance")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the appliance: syslog and HTTP ingest, signatures, indexing, search API.
    Serve(ServeArgs),
    /// Work with Sigma rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Run detection and correlation over log files (or stdin) offline and print every alert as
    /// one JSON line; a summary goes to stderr. The backtest tool.
    Replay(ReplayArgs),
    /// Make API tokens for `[[auth.token]]`.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a new random token, then the `[[auth.token]]` entry (with its SHA-256, never the
    /// token) to paste into the config.
    New {
        /// The token's name in logs and metrics.
        #[arg(long, default_value = "api")]
        name: String,
        /// ingest, read or admin.
        #[arg(long, default_value = "read", value_parser = ["ingest", "read", "admin"])]
        role: String,
    },
    /// Read a token from stdin and print its SHA-256, the `sha256` of `[[auth.token]]`.
    Hash,
}

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// Sigma rule file or folder to run (repeatable). Without any, the built-in pack runs.
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// How lines are read.
    #[arg(long, value_enum, default_value = "auto")]
    format: cairn_api::replay::InputFormat,
    /// Year of RFC 3164 timestamps (which carry none). Default: inferred from today's date.
    #[arg(long, value_name = "Y")]
    year: Option<i32>,
    /// TOML config whose [parse], [rules] mappings, [normalise] patterns and [correlation]
    /// settings apply (see deploy/cairn.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Parse threads (default: the number of cores).
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Input files, or `-` for stdin.
    #[arg(required = true, value_name = "FILE")]
    inputs: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Load and compile rule files and folders; print each rule as loaded or rejected (with the
    /// reason). Exits 1 when any rule is rejected.
    Check {
        /// Rule files or folders (`.yml`/`.yaml`, searched recursively).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
#[command(args_override_self = true)]
struct ServeArgs {
    /// TOML config file (every key optional; see deploy/cairn.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (default ./cairn-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// HTTP API address, or `off` (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR", value_parser = ListenAddr::parse)]
    http: Option<ListenAddr>,
    /// Syslog UDP address, or `off` (default 0.0.0.0:5514).
    #[arg(long, value_name = "ADDR", value_parser = ListenAddr::parse)]
    syslog_udp: Option<ListenAddr>,
    /// Syslog TCP address, or `off` (default 0.0.0.0:5514).
    #[arg(long, value_name = "ADDR", value_parser = ListenAddr::parse)]
    syslog_tcp: Option<ListenAddr>,
    /// Syslog over TLS address, or `off` (default off; needs `[syslog] tls_cert` and `tls_key`).
    #[arg(long, value_name = "ADDR", value_parser = ListenAddr::parse)]
    syslog_tls: Option<ListenAddr>,
    /// RELP address, or `off` (default off).
    #[arg(long, value_name = "ADDR", value_parser = ListenAddr::parse)]
    relp: Option<ListenAddr>,
    /// Sigma rule file or folder, in addition to the built-in pack (repeatable).
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Rules(RulesCommand::Check { paths }) => check_rules(&paths),
        Command::Replay(args) => replay(args),
        Command::Token(command) => token(command),
    }
}

/// `cairn token new` / `cairn token hash`.
fn token(command: TokenCommand) -> anyhow::Result<()> {
    use cairn_api::http::auth::{new_token, token_sha256_hex};
    let mut out = std::io::stdout().lock();
    match command {
        TokenCommand::New { name, role } => {
            let token = new_token().context("the system's random source failed")?;
            writeln!(out, "token: {token}")?;
            writeln!(
                out,
                "\n# Keep the token secret; the config holds only its hash.\n[[auth.token]]\nname = {name:?}\nrole = {role:?}\nsha256 = \"{}\"",
                token_sha256_hex(&token)
            )?;
        }
        TokenCommand::Hash => {
            let mut token = String::new();
            std::io::stdin()
                .read_line(&mut token)
                .context("cannot read the token from stdin")?;
            let token = token.trim();
            anyhow::ensure!(!token.is_empty(), "no token on stdin");
            writeln!(out, "{}", token_sha256_hex(token))?;
        }
    }
    Ok(())
}

/// `cairn replay`: exits 1 when a rule is rejected (nothing runs), 2 on an input error.
fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    use cairn_api::replay::{Input, ReplayOptions};
    use cairn_api::signatures::{RuleSet, RuleSources};
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let config = file.validate()?;
    let sources = RuleSources {
        builtin: args.rules.is_empty(),
        paths: args.rules.clone(),
        options: config.rules.options.clone(),
    };
    let (set, problems) = RuleSet::load(&sources);
    if !problems.is_empty() {
        for problem in &problems {
            eprintln!(
                "rejected  {}  {}: {}",
                problem.source,
                problem.title.as_deref().unwrap_or("(untitled)"),
                problem.reason
            );
        }
        eprintln!("{} rules rejected; nothing replayed", problems.len());
        std::process::exit(1);
    }
    let inputs: Vec<Input> = args
        .inputs
        .iter()
        .map(|path| {
            if path.as_os_str() == "-" {
                Input::Stdin
            } else {
                Input::File(path.clone())
            }
        })
        .collect();
    let workers = args.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|cores| cores.get())
            .unwrap_or(1)
    });
    let options = ReplayOptions {
        matcher: Arc::new(set.matcher),
        correlations: set.correlations,
        engine: config.correlation.clone(),
        normaliser: Arc::clone(&config.normaliser),
        parse: cairn_ingest::parse::ParseOptions {
            default_tz: config.default_timezone.clone(),
            max_json_fields: config.max_json_fields,
            max_json_depth: config.max_json_depth,
            year: args.year,
        },
        format: args.format,
        workers,
        skip_unmatchable: true,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let summary = match cairn_api::replay::run(&inputs, &options, &mut out) {
        Ok(summary) => summary,
        Err(error) => {
            drop(out);
            eprintln!("cairn replay: {error}");
            std::process::exit(2);
        }
    };
    drop(out);
    eprintln!(
        "replay: {} lines, {} events ({} parse errors, {} rejected lines), {} matched, \
         {} alerts, {} late observations, in {:.2} s ({:.0} lines/s)",
        summary.lines,
        summary.events,
        summary.parse_errors,
        summary.rejected_lines,
        summary.matched_events,
        summary.alerts,
        summary.late_observations,
        summary.elapsed_secs,
        summary.lines_per_sec
    );
    Ok(())
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => ConfigFile::load(path)?,
        None => ConfigFile::default(),
    };
    let config = file
        .with_overrides(Overrides {
            data_dir: args.data_dir,
            http: args.http,
            syslog_udp: args.syslog_udp,
            syslog_tcp: args.syslog_tcp,
            syslog_tls: args.syslog_tls,
            relp: args.relp,
            rules: args.rules,
        })
        .validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cairn-io")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let signal_token = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            signal_token.cancel();
        });
        let reload_rules = Arc::new(tokio::sync::Notify::new());
        forward_sighup(Arc::clone(&reload_rules));
        cairn_api::server::run(config, shutdown, reload_rules).await
    })?;
    Ok(())
}

/// SIGHUP reloads the rules (as `POST /api/v1/rules/reload` does).
fn forward_sighup(reload_rules: Arc<tokio::sync::Notify>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; reload rules through the API");
            return;
        };
        while hangup.recv().await.is_some() {
            tracing::info!("SIGHUP received: reloading rules");
            reload_rules.notify_one();
        }
    });
    #[cfg(not(unix))]
    drop(reload_rules);
}

/// `cairn rules check`: one line per rule, `ok` or `rejected` with the reason.
fn check_rules(paths: &[PathBuf]) -> anyhow::Result<()> {
    use cairn_correlate::{CompileOptions, Matcher, RuleKind};
    let report = cairn_correlate::load_rules(paths);
    let (matcher, compile_rejections) =
        Matcher::compile(&report.loaded, &CompileOptions::default());
    let mut out = std::io::stdout().lock();
    for info in matcher.rules() {
        let level = info.level.map(|level| level.name()).unwrap_or("-");
        let prefilter = if info.prefiltered {
            "prefiltered"
        } else {
            "evaluated on every event"
        };
        writeln!(
            out,
            "ok        {}  [{level}] {}  ({prefilter}; {})",
            info.id.as_deref().unwrap_or("-"),
            info.title,
            info.source
        )?;
    }
    for rule in &report.loaded {
        if let RuleKind::Correlation { .. } = rule.kind {
            writeln!(
                out,
                "loaded    {}  (correlation; {})",
                rule.title, rule.source
            )?;
        }
    }
    let rejected: Vec<_> = report.rejected.iter().chain(&compile_rejections).collect();
    for rejection in &rejected {
        writeln!(
            out,
            "rejected  {}  {}: {}",
            rejection.source,
            rejection.title.as_deref().unwrap_or("(untitled)"),
            rejection.reason
        )?;
    }
    writeln!(
        out,
        "{} rules usable, {} rejected",
        matcher.len(),
        rejected.len()
    )?;
    if !rejected.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
