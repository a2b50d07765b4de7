//! The client subcommands of the binary, which talk to a running server over its HTTP API:
//! `luminate write` (points from arguments or stdin), `luminate query` (a query from a file, stdin or
//! flags, printed as a table, JSON or CSV), `luminate import` (files in Luminate JSON lines, CSV,
//! Prometheus text, OpenMetrics or VictoriaMetrics' JSON export) and `luminate export` (the points of
//! a time range streamed from the server into JSON lines, CSV or OpenMetrics, which `import` reads). `write` and `import` share one
//! sending pipeline ([`send`]): batches, gzip, concurrent connections, retries, 413 splits and
//! idempotency keys. `luminate backup` copies a running server's embedded engine through its admin
//! backup routes, and `luminate restore` writes a data directory back from such a copy ([`backup`]).
//! See docs/cli.md.
//!
//! `luminate check` and `luminate repair` ([`check`], [`repair`]) are not clients: they work on a
//! stopped server's data directory, with exit codes of their own (docs/cli.md).
//!
//! Exit codes: [`EXIT_OK`] when everything was done, [`EXIT_INCOMPLETE`] when something was not (a
//! point rejected, an input line unreadable, a request failed, a query refused),
//! [`EXIT_USAGE`] for a usage error found before anything was sent.

pub mod backup;
pub mod check;
pub mod client;
pub mod export;
pub mod import;
mod points;
pub mod query;
pub mod repair;
mod send;
pub mod write;

use std::process::ExitCode;

/// Everything done.
pub const EXIT_OK: u8 = 0;
/// Something was not done: the report says what.
pub const EXIT_INCOMPLETE: u8 = 1;
/// Bad flags or unreadable input, before anything was sent.
pub const EXIT_USAGE: u8 = 2;

/// Which server, as whom.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server's base URL.
    #[arg(
        long,
        visible_alias = "server",
        env = "LUMINATE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// Bearer token (a JWT; `luminate token` mints one for development). The tenant is the token's
    /// `tenant_id`: the API has no tenant header.
    #[arg(long, env = "LUMINATE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Attempts per request at most, the first included: 429, 503 and failed connections are retried,
    /// and for writes every 5xx (after `Retry-After` when the server gives one, at most 30 s apart).
    #[arg(long, default_value_t = 8)]
    pub attempts: u32,
}

/// A usage error: printed after the subcommand's name, exit [`EXIT_USAGE`].
fn usage_error(command: &str, message: &str) -> ExitCode {
    eprintln!("luminate {command}: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// FNV-1a, 64 bits: a hash that is the same in every build and version (std's `DefaultHasher` is not
/// promised to be), for the idempotency keys a later run must derive again.
#[derive(Debug, Clone, Copy)]
pub struct StableHash(u64);

impl Default for StableHash {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl StableHash {
    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash so far, as 16 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_hash_is_fnv1a() {
        let mut h = StableHash::default();
        assert_eq!(h.hex(), "cbf29ce484222325");
        h.update(b"a");
        assert_eq!(h.hex(), "af63dc4c8601ec8c");
    }
}
