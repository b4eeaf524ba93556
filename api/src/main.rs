//! `cairn`: the log and event correlation appliance.

use std::path::PathBuf;

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
    /// Run the appliance: syslog and HTTP ingest, indexing, search API.
    Serve(ServeArgs),
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
    }
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
        cairn_api::server::run(config, shutdown).await
    })?;
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
