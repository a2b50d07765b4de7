//! The server's configuration: every section and key of the seed's `config.yaml` (CONTRACT §9), typed,
//! with defaults that let `luminate serve` run without a file, and the checks that stop start-up on a bad
//! value with a message naming the key.
//!
//! Loading order, later wins: built-in defaults → the YAML file (after `${VAR}` interpolation, see
//! [`interpolate`]) → `LUMINATE_*` environment variables (see [`env`]). Command-line flags are applied by
//! the binary on top of the result. Unknown keys anywhere are errors (`deny_unknown_fields`).

#[macro_use]
mod forms;
mod check;
pub mod env;
pub mod interpolate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use luminate_model::{QueryLimits, ValidationRules};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use self::env::{EnvOverride, EnvValue};
use self::forms::{compression, duration_text, glob_text, optional_duration_text};
use self::interpolate::InterpolateError;

/// Why the configuration could not be loaded. Every variant names the file, variable or key at fault.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `${VAR}` interpolation failed.
    #[error(transparent)]
    Interpolate(#[from] InterpolateError),
    /// A `LUMINATE__SECTION__KEY` variable that names no key.
    #[error(
        "unknown configuration key in environment variable {variable}{hint}: a LUMINATE__SECTION__KEY variable must name a key (docs/configuration.md lists them)"
    )]
    UnknownEnvironmentVariable {
        /// The variable.
        variable: String,
        /// ` (did you mean LUMINATE__SERVER__PORT?)` when a key is close, else empty.
        hint: String,
    },
    /// The YAML is malformed, a key is unknown, or a value has the wrong type or format. The message
    /// comes from the parser and names the key (`... for key `server.port``).
    #[error("invalid configuration{origin}: {message}")]
    Parse {
        /// ` in <file>` or empty.
        origin: String,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A value parsed but is out of range or inconsistent with another.
    #[error("invalid configuration: {key}: {message}")]
    Invalid {
        /// Dotted key path.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)] // each section documents itself
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub storage: StorageConfig,
    pub health: HealthConfig,
    pub rate_limits: RateLimitsConfig,
    pub cardinality_limits: CardinalityLimitsConfig,
    pub query_limits: QueryLimitsConfig,
    pub dashboards: DashboardsConfig,
    pub batch_write: BatchWriteConfig,
    pub validation: ValidationConfig,
    pub retention: RetentionConfig,
    pub logging: LoggingConfig,
    pub metrics: MetricsConfig,
    pub otlp: OtlpConfig,
}

/// `server`: where to listen and how long to wait.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind. Loopback by default: exposing the API is a decision, not an accident.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Longest time to receive a request body.
    #[serde(with = "duration_text")]
    pub read_timeout: Duration,
    /// Longest time to produce a response (queries have their own `timeout` instead).
    #[serde(with = "duration_text")]
    pub write_timeout: Duration,
    /// Longest time to finish in-flight requests after a shutdown signal.
    #[serde(with = "duration_text")]
    pub shutdown_timeout: Duration,
    /// Most connections open at once on the API's address; unset: derived from the open-file limit
    /// (`crate::conn::open_files`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Longest time to receive a request head: from the accept for a connection's first request, from
    /// its first byte for later ones.
    #[serde(with = "duration_text")]
    pub header_read_timeout: Duration,
    /// Longest time a keep-alive connection may stay idle (no request running, nothing received or
    /// written) before it is closed.
    #[serde(with = "duration_text")]
    pub idle_timeout: Duration,
    /// Protected mode: with `auth.enabled: false`, start-up refuses a `host` other than loopback unless
    /// this says that open, unauthenticated access from the network is intended.
    pub allow_unauthenticated_network: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
            max_connections: None,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            allow_unauthenticated_network: false,
        }
    }
}

/// `auth`: JWT bearer tokens (see `crate::auth`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require a token on every route but health.
    pub enabled: bool,
    /// HMAC secret (HS256/384/512).
    pub jwt_secret: Option<String>,
    /// PEM public key (RS*/ES*), instead of a secret.
    pub jwt_public_key_path: Option<PathBuf>,
    /// Lifetime of tokens minted by `luminate token`.
    #[serde(with = "duration_text")]
    pub token_expiry: Duration,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf`.
    #[serde(with = "duration_text")]
    pub leeway: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            jwt_secret: None,
            jwt_public_key_path: None,
            token_expiry: Duration::from_secs(24 * 3600),
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(60),
        }
    }
}

/// Which storage backend serves the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded engine. `badger` (the seed's name for its embedded store) means the same.
    Embedded,
    /// ClickHouse (`luminate-clickhouse`, in builds with the `clickhouse` feature).
    Clickhouse,
}

text_enum!(Backend { Embedded => "embedded" | "badger", Clickhouse => "clickhouse" });

/// `storage`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// The backend.
    pub backend: Backend,
    /// Settings of the embedded engine (`badger:` in the seed's file is read as this section).
    #[serde(alias = "badger")]
    pub embedded: EmbeddedConfig,
    /// Settings of the ClickHouse backend.
    pub clickhouse: ClickhouseConfig,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Embedded,
            embedded: EmbeddedConfig::default(),
            clickhouse: ClickhouseConfig::default(),
        }
    }
}

/// When acknowledged writes reach stable storage (see `luminate_engine::SyncPolicy` for what a power loss
/// costs under each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// fsync before every reply (group commit).
    Always,
    /// fsync every `sync_interval`.
    Interval,
    /// Leave flushing to the OS.
    None,
}

text_enum!(SyncMode { Always => "always", Interval => "interval", None => "none" });

/// `storage.embedded`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// Directory of the WAL, parts and lock file.
    pub data_dir: PathBuf,
    /// Durability policy.
    pub sync: SyncMode,
    /// fsync period under `sync: interval`.
    #[serde(with = "duration_text")]
    pub sync_interval: Duration,
    /// Bytes at which the WAL rolls to a new segment.
    pub wal_segment_size: u64,
    /// Points at which the in-memory head is flushed to on-disk parts.
    pub head_max_points: u64,
    /// Age of the head's first point at which it is flushed to parts.
    #[serde(with = "duration_text")]
    pub head_max_age: Duration,
    /// A BadgerDB setting from the seed's file; accepted so that file loads, and ignored with a warning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_log_max_entries: Option<u64>,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            sync: SyncMode::Always,
            sync_interval: Duration::from_secs(1),
            wal_segment_size: 64 << 20,
            head_max_points: 2_000_000,
            head_max_age: Duration::from_secs(600),
            value_log_max_entries: None,
        }
    }
}

/// `storage.clickhouse`: the seed's keys, plus the timeouts, circuit-breaker and response bounds of the
/// ClickHouse backend. Defaults equal `luminate_clickhouse::ClickhouseSettings::default()` (a test
/// keeps them equal); [`ClickhouseConfig::settings`] maps the section onto them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClickhouseConfig {
    /// ClickHouse HTTP endpoints, `host:port` (the HTTP port, 8123 by default — not the native 9000).
    pub addresses: Vec<String>,
    /// Database of Luminate's tables; created if missing.
    pub database: String,
    /// A cluster of the servers' `remote_servers`: every address is then one node of it, and Luminate
    /// reads and writes through `Distributed` tables (docs/clickhouse.md).
    pub cluster: Option<String>,
    /// ClickHouse user.
    pub username: String,
    /// Its password.
    pub password: String,
    /// Most requests in flight at once, over all endpoints.
    pub max_open_conns: u32,
    /// Idle keep-alive connections kept per endpoint.
    pub max_idle_conns: u32,
    /// Connections are not reused for new requests past this age.
    #[serde(with = "duration_text")]
    pub conn_max_lifetime: Duration,
    /// Longest wait for a TCP connection before trying the next address.
    #[serde(with = "duration_text")]
    pub connect_timeout: Duration,
    /// Deadline of a statement that is not a query (writes, discovery, deletes); queries use their own
    /// timeout.
    #[serde(with = "duration_text")]
    pub request_timeout: Duration,
    /// Consecutive connection failures or timeouts that open the circuit breaker.
    pub breaker_failure_threshold: u32,
    /// How long an open circuit fails fast before one probe request is let through.
    #[serde(with = "duration_text")]
    pub breaker_cool_down: Duration,
    /// Largest ClickHouse answer read, in bytes (bounds memory per request).
    pub max_response_bytes: u64,
    /// Dimension keys given a column of their own on the points table (added on start if missing):
    /// group-bys and filters on them read that column instead of the dimension arrays.
    pub dimension_columns: Vec<String>,
    /// Dimension keys put in the points table's sort key when Luminate creates it (new databases only):
    /// one customer's points become one range of the key.
    pub sort_dimensions: Vec<String>,
    /// A TTL on the points table (ClickHouse 20.1 or later): ClickHouse deletes older points in its
    /// merges, and retention queues no mutation for the metrics whose retention it is. At least every
    /// retention (checked).
    #[serde(with = "optional_duration_text")]
    pub ttl: Option<Duration>,
    /// Per-series hourly rollups (count, sum, min, max) kept by ClickHouse in every part of the points
    /// table (an aggregate projection; ClickHouse 23.8 or later): count, sum, avg, min and max over
    /// whole hours read them instead of the points. Off by default: each insert costs ClickHouse more.
    pub rollups: bool,
}

impl Default for ClickhouseConfig {
    fn default() -> Self {
        Self {
            addresses: vec!["localhost:8123".into()],
            database: "luminate".into(),
            cluster: None,
            username: "default".into(),
            password: String::new(),
            max_open_conns: 10,
            max_idle_conns: 5,
            conn_max_lifetime: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(30),
            breaker_failure_threshold: 5,
            breaker_cool_down: Duration::from_secs(5),
            max_response_bytes: 256 << 20,
            dimension_columns: Vec::new(),
            sort_dimensions: Vec::new(),
            ttl: None,
            rollups: false,
        }
    }
}

#[cfg(feature = "clickhouse")]
impl ClickhouseConfig {
    /// The backend's settings from this section.
    pub fn settings(&self) -> luminate_clickhouse::ClickhouseSettings {
        luminate_clickhouse::ClickhouseSettings {
            addresses: self.addresses.clone(),
            database: self.database.clone(),
            cluster: self.cluster.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            max_open_conns: self.max_open_conns,
            max_idle_conns: self.max_idle_conns,
            conn_max_lifetime: self.conn_max_lifetime,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            breaker_failure_threshold: self.breaker_failure_threshold,
            breaker_cool_down: self.breaker_cool_down,
            max_response_bytes: usize::try_from(self.max_response_bytes).unwrap_or(usize::MAX),
            dimension_columns: self.dimension_columns.clone(),
            sort_dimensions: self.sort_dimensions.clone(),
            ttl: self.ttl,
            rollups: self.rollups,
        }
    }
}

/// `health`: thresholds of the checks of `/api/v1/health` (see `crate::health`). Only the embedded
/// backend checks disk space: ClickHouse's disks are ClickHouse's to watch.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// `disk_space` warns when the data directory's filesystem has fewer bytes than this available;
    /// 0 turns the byte floor off. An absolute floor because what a flush or a WAL segment needs does
    /// not shrink with the size of the disk.
    pub min_free_disk_bytes: u64,
    /// ... or when less than this share of it is available (0 to 1); 0 turns the ratio floor off.
    /// A share because how fast a disk fills grows with what it holds.
    pub min_free_disk_ratio: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            min_free_disk_bytes: 1 << 30,
            min_free_disk_ratio: 0.05,
        }
    }
}

/// `rate_limits`: per-tenant token buckets and query slots (see `crate::limits`). Quotas keep tenants
/// from hurting each other, so a key left unset has two meanings: with auth enabled, the seed's
/// per-tenant default ([`Quotas::SEED`]); with auth disabled (protected mode, one implicit tenant), no
/// limit. A key set in the file or the environment applies in both modes ([`RateLimitsConfig::active`]).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)] // names say what they limit
pub struct RateLimitsConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_requests_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_requests_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrent_queries: Option<u32>,
    /// Per-tenant overrides by tenant id; a key left out keeps the default above.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tenants: BTreeMap<String, RateLimitOverride>,
}

/// One `rate_limits.tenants.<id>` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)] // same keys as `rate_limits`
pub struct RateLimitOverride {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_requests_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_requests_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_per_second: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrent_queries: Option<u32>,
}

/// The quotas in force for a tenant without an override; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // the `rate_limits` keys
pub struct Quotas {
    pub write_requests_per_second: Option<u32>,
    pub query_requests_per_second: Option<u32>,
    pub metrics_per_second: Option<u32>,
    pub concurrent_queries: Option<u32>,
}

impl Quotas {
    /// The seed's per-tenant defaults: what an authenticated server applies to a key left unset.
    pub const SEED: Self = Self {
        write_requests_per_second: Some(100),
        query_requests_per_second: Some(50),
        metrics_per_second: Some(10_000),
        concurrent_queries: Some(10),
    };

    /// No limit at all: protected mode with no key set.
    pub const NONE: Self = Self {
        write_requests_per_second: None,
        query_requests_per_second: None,
        metrics_per_second: None,
        concurrent_queries: None,
    };

    /// Each quota with its key, in the order of the configuration.
    pub fn keyed(&self) -> [(&'static str, Option<u32>); 4] {
        [
            ("write_requests_per_second", self.write_requests_per_second),
            ("query_requests_per_second", self.query_requests_per_second),
            ("metrics_per_second", self.metrics_per_second),
            ("concurrent_queries", self.concurrent_queries),
        ]
    }
}

impl RateLimitsConfig {
    /// The default keys as set in the file or the environment; `None` where unset.
    pub fn set(&self) -> Quotas {
        Quotas {
            write_requests_per_second: self.write_requests_per_second,
            query_requests_per_second: self.query_requests_per_second,
            metrics_per_second: self.metrics_per_second,
            concurrent_queries: self.concurrent_queries,
        }
    }

    /// The default quotas in force: each key as set, else (auth enabled) the seed's, else no limit.
    pub fn active(&self, auth_enabled: bool) -> Quotas {
        let set = self.set();
        let fallback = if auth_enabled {
            Quotas::SEED
        } else {
            Quotas::NONE
        };
        Quotas {
            write_requests_per_second: set
                .write_requests_per_second
                .or(fallback.write_requests_per_second),
            query_requests_per_second: set
                .query_requests_per_second
                .or(fallback.query_requests_per_second),
            metrics_per_second: set.metrics_per_second.or(fallback.metrics_per_second),
            concurrent_queries: set.concurrent_queries.or(fallback.concurrent_queries),
        }
    }
}

impl From<&RateLimitOverride> for Quotas {
    fn from(o: &RateLimitOverride) -> Self {
        Self {
            write_requests_per_second: o.write_requests_per_second,
            query_requests_per_second: o.query_requests_per_second,
            metrics_per_second: o.metrics_per_second,
            concurrent_queries: o.concurrent_queries,
        }
    }
}

/// `cardinality_limits`: per-point shape limits (validation) and per-tenant growth limits (engine).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)] // names say what they limit
pub struct CardinalityLimitsConfig {
    pub max_dimensions_per_metric: usize,
    pub max_dimension_key_length: usize,
    pub max_dimension_value_length: usize,
    pub max_unique_series_per_metric: u64,
    pub max_metrics_per_tenant: u64,
}

impl Default for CardinalityLimitsConfig {
    fn default() -> Self {
        Self {
            max_dimensions_per_metric: 20,
            max_dimension_key_length: 128,
            max_dimension_value_length: 256,
            max_unique_series_per_metric: 1_000_000,
            max_metrics_per_tenant: 1_000,
        }
    }
}

/// `query_limits` (CONTRACT §4), and the server's query memory budget.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryLimitsConfig {
    /// See [`QueryLimits::max_timeout`].
    #[serde(with = "duration_text")]
    pub max_query_timeout: Duration,
    /// See [`QueryLimits::default_timeout`].
    #[serde(with = "duration_text")]
    pub default_query_timeout: Duration,
    /// See [`QueryLimits::max_time_range`].
    #[serde(with = "duration_text")]
    pub max_query_time_range: Duration,
    /// See [`QueryLimits::max_result_points`].
    pub max_result_points: usize,
    /// See [`QueryLimits::max_group_by_cardinality`].
    pub max_group_by_cardinality: usize,
    /// Bytes that all running queries together may hold, by their stores' estimates
    /// (`crate::query_memory`). A fixed size rather than a share of the machine's memory: what the
    /// machine reports is not what a container may use. 1 GiB by default, at least 1 MiB.
    pub memory_budget_bytes: u64,
    /// Longest a query waits for room in the budget (never past its own deadline) before `503`.
    #[serde(with = "duration_text")]
    pub memory_wait: Duration,
}

impl Default for QueryLimitsConfig {
    fn default() -> Self {
        let d = QueryLimits::default();
        Self {
            max_query_timeout: d.max_timeout,
            default_query_timeout: d.default_timeout,
            max_query_time_range: d.max_time_range,
            max_result_points: d.max_result_points,
            max_group_by_cardinality: d.max_group_by_cardinality,
            memory_budget_bytes: 1 << 30,
            memory_wait: Duration::from_secs(5),
        }
    }
}

/// `dashboards`: the bounds of the dashboards API.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardsConfig {
    /// Largest dashboard document a create or replace may send, in bytes.
    pub max_body_bytes: usize,
    /// Most panels of one dashboard.
    pub max_panels: usize,
    /// Most dashboards of one tenant.
    pub max_per_tenant: usize,
}

impl Default for DashboardsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_panels: 100,
            max_per_tenant: 1_000,
        }
    }
}

/// `batch_write` (CONTRACT §3).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchWriteConfig {
    /// Most points in one write.
    pub max_batch_size: usize,
    /// Largest body, counted after decompression.
    pub max_request_size_bytes: usize,
    /// Accept `Content-Encoding: gzip`. The seed writes both `true` and `gzip`; `false`/`none` refuse it.
    #[serde(deserialize_with = "compression::deserialize")]
    pub compression: bool,
    /// How long a write's `Idempotency-Key` is remembered (CONTRACT §3: 10 minutes). On the embedded
    /// engine also across restarts, from the time its write was logged.
    #[serde(with = "duration_text")]
    pub idempotency_key_ttl: Duration,
    /// Idempotency keys remembered at most; the oldest is forgotten first.
    pub idempotency_max_keys: usize,
}

impl Default for BatchWriteConfig {
    fn default() -> Self {
        Self {
            max_batch_size: 10_000,
            max_request_size_bytes: 10 << 20,
            compression: true,
            idempotency_key_ttl: crate::idempotency::TTL,
            idempotency_max_keys: crate::idempotency::DEFAULT_CAPACITY,
        }
    }
}

/// `validation`: the accepted timestamp window (CONTRACT §2).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// How far in the past a point may be.
    #[serde(with = "duration_text")]
    pub max_past: Duration,
    /// How far in the future a point may be.
    #[serde(with = "duration_text")]
    pub max_future: Duration,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            max_past: Duration::from_secs(7 * 86_400),
            max_future: Duration::from_secs(3_600),
        }
    }
}

/// `retention` (CONTRACT §6).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Retention of metrics no policy or override matches.
    #[serde(with = "duration_text")]
    pub default_retention: Duration,
    /// Period of the cleanup task.
    #[serde(with = "duration_text")]
    pub cleanup_interval: Duration,
    /// Per-metric policies; the first matching pattern wins.
    pub policies: Vec<RetentionPolicy>,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            default_retention: Duration::from_secs(30 * 86_400),
            cleanup_interval: Duration::from_secs(3_600),
            policies: Vec::new(),
        }
    }
}

/// One `retention.policies` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// A glob over metric names (`debug_*`).
    #[serde(with = "glob_text")]
    pub metric_pattern: glob::Pattern,
    /// Retention of matching metrics.
    #[serde(with = "duration_text")]
    pub retention: Duration,
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

// The spellings are also the names `tracing_subscriber::EnvFilter` understands.
text_enum!(LogLevel { Trace => "trace", Debug => "debug", Info => "info", Warn => "warn", Error => "error" });

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for collectors.
    Json,
    /// Human-readable lines.
    Text,
}

text_enum!(LogFormat { Json => "json", Text => "text" });

/// Where logs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum LogOutput {
    Stdout,
    Stderr,
}

text_enum!(LogOutput { Stdout => "stdout", Stderr => "stderr" });

/// `logging`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)]
pub struct LoggingConfig {
    pub level: LogLevel,
    /// Text by default: a terminal is the first place a new user sees logs; collectors set `json`.
    pub format: LogFormat,
    pub output: LogOutput,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: LogLevel::Info,
            format: LogFormat::Text,
            output: LogOutput::Stdout,
        }
    }
}

/// `otlp`: OTLP metrics ingestion, over HTTP (`POST /v1/metrics` on the API's address) and gRPC (a port
/// of its own), docs/ingest.md.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// Resource attributes that become dimensions of every point of their resource. Only these: the
    /// others (the Python SDK's random `service.instance.id`, `telemetry.sdk.*`) would make a new series
    /// per process.
    pub promote_resource_attributes: Vec<String>,
    /// OTLP over gRPC.
    pub grpc: OtlpGrpcConfig,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            promote_resource_attributes: crate::otlp::DEFAULT_PROMOTED_RESOURCE_ATTRIBUTES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            grpc: OtlpGrpcConfig::default(),
        }
    }
}

/// OTLP's default gRPC port.
pub const OTLP_GRPC_PORT: u16 = 4317;

/// `otlp.grpc`: `opentelemetry.proto.collector.metrics.v1.MetricsService/Export` on `server.host` and a
/// port of its own (gRPC is HTTP/2 only; the API's connections are HTTP/1.1).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpGrpcConfig {
    /// Whether the gRPC listener is opened at all (in a build with the `grpc` feature).
    pub enabled: bool,
    /// Port to bind; unset: [`OTLP_GRPC_PORT`], or 0 (a free one) when `server.port` is 0, so that
    /// servers started on OS-chosen ports (tests, `luminate bench`) never contend for 4317.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Requests (HTTP/2 streams) one connection may have open at once.
    pub max_concurrent_streams: u32,
}

impl Default for OtlpGrpcConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            port: None,
            max_concurrent_streams: 16,
        }
    }
}

impl Config {
    /// The gRPC port to bind (see [`OtlpGrpcConfig::port`]).
    pub fn otlp_grpc_port(&self) -> u16 {
        match self.otlp.grpc.port {
            Some(port) => port,
            None if self.server.port == 0 => 0,
            None => OTLP_GRPC_PORT,
        }
    }
}

/// `metrics`: Luminate's own Prometheus metrics (see `crate::telemetry`), served at `path`. A JWT never
/// opens the exposition (scrapers have none, and it spans tenants); because its labels carry tenant ids
/// it can be put behind a static bearer token or on a listen address of its own (protected mode applies
/// to that address too: see [`Config::check_exposure`]). With `auth.enabled` and neither, the API's
/// address refuses every scrape (`crate::auth::ScrapeAccess`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Expose them.
    pub enabled: bool,
    /// Route of the exposition.
    pub path: String,
    /// Refresh period of the gauges that cost more than a scrape should (`crate::telemetry::collector`).
    #[serde(with = "duration_text")]
    pub interval: Duration,
    /// When set, scrapes must send `Authorization: Bearer <this>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// When set (`HOST:PORT`), the exposition is served there instead of on the API's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Distinct tenants that get a `tenant` label of their own; later ones are counted as `other`, so a
    /// flood of tenants cannot grow the exposition without bound.
    pub max_tenant_labels: usize,
    /// Metrics (over every tenant) whose series count is exposed with a `metric` label: only the
    /// largest, so that metric names cannot grow the exposition.
    pub top_metrics: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            path: "/metrics".into(),
            interval: Duration::from_secs(10),
            bearer_token: None,
            listen: None,
            max_tenant_labels: 100,
            top_metrics: 20,
        }
    }
}

impl Config {
    /// Loads defaults ← `file` ← the process environment, and checks the result.
    pub fn load(file: Option<&Path>) -> Result<Self, LoadError> {
        let text = match file {
            Some(path) => {
                Some(
                    std::fs::read_to_string(path).map_err(|source| LoadError::Read {
                        path: path.to_owned(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        let vars = env::process_vars();
        let origin = file.map(|p| p.display().to_string());
        Self::load_from(origin.as_deref().zip(text.as_deref()), &vars)
    }

    /// Loads defaults ← `file` (`(origin, text)`) ← the `LUMINATE_*` variables among `vars`, which
    /// also serve `${VAR}` interpolation. The process environment is not read (tests pass their own).
    pub fn load_from(
        file: Option<(&str, &str)>,
        vars: &[(String, String)],
    ) -> Result<Self, LoadError> {
        let lookup = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let overrides = env::overrides(vars)?;
        let mut builder = config::Config::builder();
        let mut origin = String::new();
        // Whether the file names the embedded section by the seed's `badger`: environment overrides of
        // `storage.embedded.*` must then land there, or the two spellings would collide as duplicates.
        let mut embedded_section = "storage.embedded.";
        if let Some((name, text)) = file {
            origin = format!(" in {name}");
            let expanded = interpolate::interpolate(text, lookup)?;
            let source = config::File::from_str(&expanded, config::FileFormat::Yaml);
            let file_only = config::Config::builder().add_source(source.clone()).build();
            if file_only
                .and_then(|c| c.get_table("storage"))
                .is_ok_and(|t| t.contains_key("badger"))
            {
                embedded_section = "storage.badger.";
            }
            builder = builder.add_source(source);
        }
        let parse_error = |e: config::ConfigError| LoadError::Parse {
            origin: origin.clone(),
            message: explain(e, &overrides),
        };
        for o in &overrides {
            let key = match o.key.strip_prefix("storage.embedded.") {
                Some(leaf) => format!("{embedded_section}{leaf}"),
                None => o.key.to_owned(),
            };
            builder = match &o.value {
                EnvValue::Scalar(s) => builder.set_override(key, s.as_str()),
                EnvValue::List(items) => builder.set_override(key, items.clone()),
            }
            .map_err(parse_error)?;
        }
        let config: Self = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(parse_error)?;
        config.check()?;
        Ok(config)
    }

    /// Things that loaded but deserve a line in the log.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.storage.embedded.value_log_max_entries.is_some() {
            out.push("storage.embedded.value_log_max_entries is a BadgerDB setting and has no effect on the embedded engine".into());
        }
        if self.storage.backend == Backend::Clickhouse {
            for address in &self.storage.clickhouse.addresses {
                if address.trim_end_matches('/').ends_with(":9000") {
                    out.push(format!(
                        "storage.clickhouse.addresses: {address} uses port 9000, ClickHouse's native-protocol \
                         port by default; this backend speaks HTTP (port 8123 by default)"
                    ));
                }
            }
            out.push(
                "cardinality_limits.max_unique_series_per_metric is enforced approximately on the ClickHouse \
                 backend (a HyperLogLog count per metric in this process, starting empty at each start; \
                 docs/configuration.md#limits)"
                    .into(),
            );
        }
        out
    }

    /// The start-up log's line on rate limits: the quotas in force, or that there are none.
    pub fn rate_limit_summary(&self) -> String {
        let active = self.rate_limits.active(self.auth.enabled);
        let overrides = match self.rate_limits.tenants.len() {
            0 => String::new(),
            n => format!("; overrides for {n} tenant(s) in rate_limits.tenants"),
        };
        if active == Quotas::NONE {
            return format!(
                "rate limits: off (auth disabled; set rate_limits.* to enable){overrides}"
            );
        }
        let quotas: Vec<String> = active
            .keyed()
            .iter()
            .map(|(key, value)| match value {
                Some(n) => format!("{key}={n}"),
                None => format!("{key}=off"),
            })
            .collect();
        format!("rate limits per tenant: {}{overrides}", quotas.join(" "))
    }

    /// Per-point validation rules from `validation` and `cardinality_limits`.
    pub fn validation_rules(&self) -> ValidationRules {
        let cl = &self.cardinality_limits;
        ValidationRules {
            max_dimensions: cl.max_dimensions_per_metric,
            max_key_len: cl.max_dimension_key_length,
            max_value_len: cl.max_dimension_value_length,
            max_past: self.validation.max_past,
            max_future: self.validation.max_future,
            ..ValidationRules::default()
        }
    }

    /// Query limits from `query_limits`, and the longest filter value from
    /// `cardinality_limits.max_dimension_value_length` (a longer one could match no stored point).
    pub fn query_limits(&self) -> QueryLimits {
        let ql = &self.query_limits;
        QueryLimits {
            default_timeout: ql.default_query_timeout,
            max_timeout: ql.max_query_timeout,
            max_time_range: ql.max_query_time_range,
            max_result_points: ql.max_result_points,
            max_group_by_cardinality: ql.max_group_by_cardinality,
            max_value_len: self.cardinality_limits.max_dimension_value_length,
        }
    }

    /// The retention of `metric` under the configured policies (admin overrides are checked first by
    /// the retention task, not here): the first matching pattern, else the default.
    pub fn policy_retention(&self, metric: &str) -> Duration {
        self.retention
            .policies
            .iter()
            .find(|p| p.metric_pattern.matches(metric))
            .map_or(self.retention.default_retention, |p| p.retention)
    }
}

/// The parser's message, plus which environment variable set the key when one did.
fn explain(e: config::ConfigError, overrides: &[EnvOverride]) -> String {
    // The `config` crate joins a list index and the next segment without a dot
    // (`policies[0]retention`); restore it so the path reads as written in the file.
    let mut message = String::with_capacity(e.to_string().len() + 4);
    let raw = e.to_string();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        message.push(c);
        if c == ']'
            && chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == '_')
        {
            message.push('.');
        }
    }
    match overrides
        .iter()
        .find(|o| message.contains(&format!("`{}`", o.key)))
    {
        Some(o) => format!("{message} (set by environment variable {})", o.variable),
        None => message,
    }
}

#[cfg(test)]
mod tests;
