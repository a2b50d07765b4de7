//! The ClickHouse side of `luminate bench --clickhouse ADDR`: the spawned server then stores in
//! ClickHouse, so the benchmark prepares an empty database for the run (dropped before, so that the
//! answer checks see only this dataset, and after, so that runs leave nothing behind), reads the bytes
//! of its active parts from `system.parts` (Luminate's data directory is empty in that mode), and — when
//! it is given ClickHouse's PID, i.e. ClickHouse runs on this machine — its memory and CPU time.
//! Speaks ClickHouse's HTTP interface with the benchmark's own client; knows nothing of Luminate's
//! tables beyond their database.

use super::BenchError;
use super::http;
use super::procstat::{self, Memory};

/// A ClickHouse server the benchmark stores in.
#[derive(Debug, Clone)]
pub struct ClickhouseTarget {
    /// HTTP `host:port`.
    pub address: String,
    /// The database of this run.
    pub database: String,
    /// ClickHouse's process id, when known.
    pub pid: Option<u32>,
    agent: ureq::Agent,
}

impl ClickhouseTarget {
    /// A target at `address` (HTTP `host:port`) using `database`.
    pub fn new(address: &str, database: &str, pid: Option<u32>) -> Result<Self, BenchError> {
        let valid = !database.is_empty()
            && database
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(BenchError::Server(format!(
                "--clickhouse-database {database:?}: use letters, digits and _"
            )));
        }
        let address = address.trim_start_matches("http://").trim_end_matches('/');
        Ok(Self {
            address: address.to_owned(),
            database: database.to_owned(),
            pid,
            agent: http::agent(),
        })
    }

    /// Runs one statement; returns the answer's text.
    fn sql(&self, sql: &str) -> Result<String, BenchError> {
        let url = format!("http://{}/", self.address);
        let (status, body) = http::post(&self.agent, &url, &[], sql.as_bytes())?;
        if status != 200 {
            return Err(BenchError::Status {
                request: format!("ClickHouse at {}: {sql}", self.address),
                status,
                body,
            });
        }
        Ok(body)
    }

    /// Drops the run's database if it exists (before the run: the checks need an empty one; after:
    /// nothing is left behind).
    pub fn drop_database(&self) -> Result<(), BenchError> {
        self.sql(&format!("DROP DATABASE IF EXISTS `{}`", self.database))
            .map(drop)
    }

    /// Bytes on disk of the database's active parts (compressed columns, marks, indexes).
    pub fn disk_bytes(&self) -> Result<u64, BenchError> {
        let text = self.sql(&format!(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = '{}' AND active",
            self.database
        ))?;
        text.trim().parse().map_err(|_| BenchError::Status {
            request: "ClickHouse system.parts".into(),
            status: 200,
            body: text,
        })
    }

    /// ClickHouse's memory, when its PID is known and readable.
    pub fn memory(&self) -> Option<Memory> {
        procstat::memory(&self.pid?.to_string())
    }

    /// ClickHouse's CPU seconds so far, when its PID is known and readable.
    pub fn cpu_seconds(&self) -> Option<f64> {
        procstat::cpu_seconds(&self.pid?.to_string())
    }
}
