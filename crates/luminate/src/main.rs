//! The `luminate` binary: a thin shell over `luminate-server`. Parses the command line, loads the
//! configuration (file ← environment ← flags), sets up logging, and serves until SIGINT or SIGTERM.
//! `luminate bench` runs the end-to-end benchmark of the `bench` module against a server it spawns
//! from this executable, and `luminate soak` its long crash-and-load run (the `soak` module). `luminate token` mints a development JWT with the configured secret.
//! `luminate write`, `query`, `import`, `export` and `backup` are clients of a running server, and
//! `restore` writes a data directory from a backup (the `cli` module, whose exit codes are its own: see
//! docs/cli.md). `luminate check` and `repair` verify and repair a stopped server's data directory (the
//! `cli` module too).
//!
//! Exit codes: 0 after a clean shutdown, 2 for a configuration or usage error (the message names the
//! key or flag), 1 when the server cannot start or stop (locked data directory, port in use, ...).

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        reason = "a test fails loudly on the first unexpected error"
    )
)]

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

mod bench;
mod cli;
mod soak;

use clap::{Parser, Subcommand};
use luminate_server::Config;
use luminate_server::config::{LogFormat, LogOutput, env};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// Luminate: a metrics database for high-cardinality dimensions.
#[derive(Debug, Parser)]
#[command(name = "luminate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API over the configured storage.
    Serve(ServeArgs),
    /// Benchmark ingest and queries end to end over HTTP (see docs/benchmarks.md).
    Bench(bench::BenchArgs),
    /// Soak a spawned server: sustained writes and queries, kill -9 and restart on a schedule, then
    /// check that every acknowledged point is stored exactly once (see docs/operations.md).
    Soak(soak::SoakArgs),
    /// Print a JWT for a tenant, signed (HS256) with the configured auth.jwt_secret (for development).
    Token(TokenArgs),
    /// Send points to a server, from the arguments or stdin (JSON objects or `name{k="v"} value [ts]`).
    Write(cli::write::WriteArgs),
    /// Query a server: the JSON query language from a file, stdin or flags; a table, JSON or CSV.
    Query(cli::query::QueryArgs),
    /// Import files (JSON lines, CSV, Prometheus text, OpenMetrics, VictoriaMetrics export) into a server.
    Import(cli::import::ImportArgs),
    /// Export a server's points in a time range to JSON lines, CSV or OpenMetrics (what import reads).
    Export(cli::export::ExportArgs),
    /// Verify a stopped server's data directory (embedded engine): every file, each problem with its offset.
    Check(cli::check::CheckArgs),
    /// Make a damaged data directory startable: damaged files set aside in quarantine/, losses printed.
    Repair(cli::repair::RepairArgs),
    /// Copy a running server's embedded engine, online, into a backup directory (admin scope).
    Backup(cli::backup::BackupArgs),
    /// Write a data directory from a backup, checking every file (the directory must be empty).
    Restore(cli::backup::RestoreArgs),
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// YAML configuration file (the environment applies as for `serve`).
    #[arg(long, env = "LUMINATE_CONFIG")]
    config: Option<PathBuf>,
    /// The tenant the token acts for.
    #[arg(long)]
    tenant: String,
    /// Comma-separated scopes among read, write, admin.
    #[arg(long, default_value = "read,write", value_delimiter = ',')]
    scopes: Vec<String>,
    /// Lifetime (`90s`, `15m`, `24h`, `7d`); auth.token_expiry by default.
    #[arg(long)]
    ttl: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// YAML configuration file (defaults apply without one); the flag wins over LUMINATE_CONFIG.
    #[arg(long, env = "LUMINATE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory of the embedded engine (overrides storage.embedded.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on, `HOST:PORT` (overrides server.host and server.port; port 0 picks one).
    #[arg(long)]
    listen: Option<String>,
}

/// jemalloc rather than glibc's malloc: glibc's per-thread arenas kept the freed buffers of queries and
/// flushes resident, so the server's peak memory was a quarter higher (see the Cargo.toml comment).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::Bench(args) => bench::run(args),
        Command::Soak(args) => soak::run(args),
        Command::Token(args) => token(args),
        Command::Write(args) => cli::write::run(args),
        Command::Query(args) => cli::query::run(args),
        Command::Import(args) => cli::import::run(args),
        Command::Export(args) => cli::export::run(args),
        Command::Check(args) => cli::check::run(args),
        Command::Repair(args) => cli::repair::run(args),
        Command::Backup(args) => cli::backup::run_backup(args),
        Command::Restore(args) => cli::backup::run_restore(args),
    }
}

fn token(args: TokenArgs) -> ExitCode {
    let minted = (|| {
        let config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
        let ignored = env::ignored(&env::process_vars());
        for warning in ignored.warnings() {
            eprintln!("luminate token: warning: {warning}");
        }
        let scopes = args
            .scopes
            .iter()
            .map(|s| {
                luminate_server::auth::Scope::parse(s.trim()).ok_or_else(|| {
                    format!("--scopes: unknown scope {s:?}; expected read, write or admin")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ttl = match &args.ttl {
            Some(text) => luminate_model::time::parse_duration(text)
                .map_err(|e| format!("--ttl {text:?}: {e}"))?,
            None => config.auth.token_expiry,
        };
        luminate_server::auth::mint(&config.auth, &args.tenant, &scopes, ttl)
            .map_err(|e| e.to_string())
    })();
    match minted {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("luminate token: {message}");
            ExitCode::from(2)
        }
    }
}

/// Splits `HOST:PORT`, `[IPv6]:PORT` included.
fn parse_listen(text: &str) -> Result<(String, u16), String> {
    let bad =
        || format!("--listen {text:?}: expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port.parse().map_err(|_| bad())?))
}

fn load_config(args: &ServeArgs) -> Result<Config, String> {
    let mut config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(dir) = &args.data_dir {
        config.storage.embedded.data_dir = dir.clone();
    }
    if let Some(listen) = &args.listen {
        (config.server.host, config.server.port) = parse_listen(listen)?;
    }
    config.check_exposure().map_err(|e| e.to_string())?;
    Ok(config)
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(config.logging.level.as_str()));
    let (writer, terminal) = match config.logging.output {
        LogOutput::Stdout => (
            BoxMakeWriter::new(std::io::stdout),
            std::io::stdout().is_terminal(),
        ),
        LogOutput::Stderr => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
        ),
    };
    // Colour codes only for a terminal: in files and pipes they are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(terminal);
    // `try_init` fails only if a subscriber is already installed, which main never does twice.
    let _ = match config.logging.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn serve(args: ServeArgs) -> ExitCode {
    let config = match load_config(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("luminate: {message}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    // Before the store opens and the default connection cap is derived from the limit in force.
    luminate_server::conn::open_files::raise_open_file_limit();
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let ignored = env::ignored(&env::process_vars());
    for warning in ignored.warnings() {
        tracing::warn!("{warning}");
    }
    if let Some(summary) = ignored.summary() {
        tracing::info!("{summary}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("luminate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        // The process's one registry: every component registers its metrics on it, `/metrics` encodes it.
        let registry = luminate_server::telemetry::Registry::default();
        let server = luminate_server::Server::bind(config, registry).await?;
        let addr = server
            .local_addr()
            .map_err(luminate_server::ServeError::Serve)?;
        if let Some(metrics_addr) = server.metrics_addr() {
            let metrics_addr = metrics_addr.map_err(luminate_server::ServeError::Serve)?;
            println!("luminate metrics on http://{metrics_addr}");
        }
        if let Some(grpc_addr) = server.grpc_addr() {
            let grpc_addr = grpc_addr.map_err(luminate_server::ServeError::Serve)?;
            println!("luminate otlp grpc on http://{grpc_addr}");
        }
        // One plain line, whatever the log format: scripts and tests read the bound address from it.
        println!("luminate listening on http://{addr}");
        let _ = std::io::stdout().flush();
        server.run(shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "luminate stopped with an error");
            eprintln!("luminate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("127.0.0.1:0").unwrap(),
            ("127.0.0.1".to_owned(), 0)
        );
        assert_eq!(
            parse_listen("[::1]:8080").unwrap(),
            ("::1".to_owned(), 8080)
        );
        assert_eq!(
            parse_listen("localhost:9090").unwrap(),
            ("localhost".to_owned(), 9090)
        );
        assert!(parse_listen("8080").is_err());
        assert!(parse_listen(":8080").is_err());
        assert!(parse_listen("host:port").is_err());
    }
}
