//! Range and consistency checks of a parsed [`Config`]: what the types cannot express (a zero where at
//! least one is needed, a default above its maximum, auth enabled without a key). Each
//! failure names the key.

use super::{Config, LoadError, Quotas};

/// Smallest `query_limits.memory_budget_bytes`: below it not even a query's fixed overhead fits.
const MIN_QUERY_MEMORY_BUDGET: u64 = 1 << 20;

impl Config {
    /// Range and consistency checks the types cannot express.
    pub(super) fn check(&self) -> Result<(), LoadError> {
        let invalid = |key: &str, message: String| {
            Err(LoadError::Invalid {
                key: key.to_owned(),
                message,
            })
        };
        let positive = |key: &str, value: u64| {
            if value == 0 {
                invalid(key, "must be at least 1".into())
            } else {
                Ok(())
            }
        };

        if let Some(ttl) = self.storage.clickhouse.ttl {
            // A table TTL deletes every metric's points at its age: a longer retention would lose them.
            let longest = self
                .retention
                .policies
                .iter()
                .map(|p| {
                    (
                        p.retention,
                        format!("retention.policies ({})", p.metric_pattern),
                    )
                })
                .chain([(
                    self.retention.default_retention,
                    "retention.default_retention".to_owned(),
                )])
                .max_by_key(|(retention, _)| *retention);
            if let Some((retention, key)) = longest.filter(|(retention, _)| *retention > ttl) {
                return invalid(
                    "storage.clickhouse.ttl",
                    format!(
                        "{} is shorter than {key}, {}: ClickHouse would delete points that retention \
                         keeps. Set it to at least the longest retention, or leave it unset",
                        luminate_model::time::format_duration(ttl),
                        luminate_model::time::format_duration(retention),
                    ),
                );
            }
            if ttl.as_secs() == 0 {
                return invalid("storage.clickhouse.ttl", "must be at least 1s".into());
            }
        }
        if self.server.host.trim().is_empty() {
            return invalid("server.host", "must not be empty".into());
        }
        if self.otlp.grpc.max_concurrent_streams == 0 {
            return invalid(
                "otlp.grpc.max_concurrent_streams",
                "must be at least 1".into(),
            );
        }
        if self.server.max_connections == Some(0) {
            return invalid("server.max_connections", "must be at least 1".into());
        }
        let auth = &self.auth;
        if auth.jwt_secret.as_deref().is_some_and(str::is_empty) {
            return invalid("auth.jwt_secret", "must not be empty when set".into());
        }
        if auth.jwt_secret.is_some() && auth.jwt_public_key_path.is_some() {
            return invalid(
                "auth.jwt_public_key_path",
                "set either auth.jwt_secret or auth.jwt_public_key_path, not both".into(),
            );
        }
        if auth.enabled && auth.jwt_secret.is_none() && auth.jwt_public_key_path.is_none() {
            // The container image enables auth and listens on all interfaces, so this is the first
            // thing a `docker run` without a secret says: it names both ways out, environment included.
            return invalid(
                "auth.enabled",
                "requires auth.jwt_secret or auth.jwt_public_key_path. Set a secret \
                 (LUMINATE_AUTH_JWT_SECRET=...) or a public key (LUMINATE_AUTH_JWT_PUBLIC_KEY_PATH=...); \
                 or, if open access without authentication is intended, set auth.enabled: false \
                 (LUMINATE_AUTH_ENABLED=false) and, on a network address, \
                 server.allow_unauthenticated_network: true \
                 (LUMINATE_SERVER_ALLOW_UNAUTHENTICATED_NETWORK=true)"
                    .into(),
            );
        }

        let embedded = &self.storage.embedded;
        if embedded.data_dir.as_os_str().is_empty() {
            return invalid("storage.embedded.data_dir", "must not be empty".into());
        }
        if !(1 << 20..=4 << 30).contains(&embedded.wal_segment_size) {
            return invalid(
                "storage.embedded.wal_segment_size",
                format!("{} is outside 1 MiB..=4 GiB", embedded.wal_segment_size),
            );
        }
        if embedded.head_max_points == 0 {
            return invalid(
                "storage.embedded.head_max_points",
                "must be at least 1".into(),
            );
        }
        if embedded.head_max_age.is_zero() {
            return invalid("storage.embedded.head_max_age", "must be positive".into());
        }
        let ch = &self.storage.clickhouse;
        if ch.addresses.is_empty() {
            return invalid(
                "storage.clickhouse.addresses",
                "must list at least one host:port".into(),
            );
        }
        if !luminate_model::validate::is_identifier(&ch.database) {
            return invalid(
                "storage.clickhouse.database",
                format!("{:?} is not a valid database name", ch.database),
            );
        }
        positive(
            "storage.clickhouse.max_open_conns",
            ch.max_open_conns.into(),
        )?;
        if ch.max_idle_conns > ch.max_open_conns {
            return invalid(
                "storage.clickhouse.max_idle_conns",
                format!(
                    "{} exceeds max_open_conns of {}",
                    ch.max_idle_conns, ch.max_open_conns
                ),
            );
        }
        // The backend's own checks (addresses are host:port of the HTTP interface, timeouts positive, a
        // cluster name not empty); they name the key. Without the backend the section is only parsed.
        #[cfg(feature = "clickhouse")]
        if let Err(e) = ch.settings().check() {
            return invalid(&format!("storage.clickhouse.{}", e.key), e.message);
        }

        let ratio = self.health.min_free_disk_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            return invalid(
                "health.min_free_disk_ratio",
                format!("{ratio} is outside 0..=1 (a share of the filesystem's size)"),
            );
        }

        let rl = &self.rate_limits;
        let overrides = rl
            .tenants
            .iter()
            .map(|(tenant, o)| (Some(tenant), Quotas::from(o)));
        for (tenant, quotas) in std::iter::once((None, rl.set())).chain(overrides) {
            let section = match tenant {
                None => "rate_limits".to_owned(),
                Some(tenant) => {
                    let key = format!("rate_limits.tenants.{tenant}");
                    if let Err(message) = crate::auth::validate_tenant_id(tenant) {
                        return invalid(&key, message);
                    }
                    key
                }
            };
            for (name, value) in quotas.keyed() {
                if value == Some(0) {
                    return invalid(&format!("{section}.{name}"), "must be at least 1".into());
                }
            }
        }

        let cl = &self.cardinality_limits;
        positive(
            "cardinality_limits.max_dimensions_per_metric",
            cl.max_dimensions_per_metric as u64,
        )?;
        positive(
            "cardinality_limits.max_dimension_key_length",
            cl.max_dimension_key_length as u64,
        )?;
        positive(
            "cardinality_limits.max_dimension_value_length",
            cl.max_dimension_value_length as u64,
        )?;
        positive(
            "cardinality_limits.max_unique_series_per_metric",
            cl.max_unique_series_per_metric,
        )?;
        positive(
            "cardinality_limits.max_metrics_per_tenant",
            cl.max_metrics_per_tenant,
        )?;

        let ql = &self.query_limits;
        if ql.default_query_timeout > ql.max_query_timeout {
            return invalid(
                "query_limits.default_query_timeout",
                "exceeds query_limits.max_query_timeout".into(),
            );
        }
        positive(
            "query_limits.max_result_points",
            ql.max_result_points as u64,
        )?;
        positive(
            "query_limits.max_group_by_cardinality",
            ql.max_group_by_cardinality as u64,
        )?;
        if ql.memory_budget_bytes < MIN_QUERY_MEMORY_BUDGET {
            return invalid(
                "query_limits.memory_budget_bytes",
                format!(
                    "{} is below the minimum of 1 MiB ({MIN_QUERY_MEMORY_BUDGET}): no query would fit",
                    ql.memory_budget_bytes
                ),
            );
        }

        let db = &self.dashboards;
        if !(1 << 10..=1 << 26).contains(&db.max_body_bytes) {
            return invalid(
                "dashboards.max_body_bytes",
                format!("{} is outside 1 KiB..=64 MiB", db.max_body_bytes),
            );
        }
        positive("dashboards.max_panels", db.max_panels as u64)?;
        positive("dashboards.max_per_tenant", db.max_per_tenant as u64)?;

        let bw = &self.batch_write;
        positive("batch_write.max_batch_size", bw.max_batch_size as u64)?;
        if !(1 << 10..=1 << 30).contains(&bw.max_request_size_bytes) {
            return invalid(
                "batch_write.max_request_size_bytes",
                format!("{} is outside 1 KiB..=1 GiB", bw.max_request_size_bytes),
            );
        }
        if bw.idempotency_key_ttl.is_zero() {
            return invalid(
                "batch_write.idempotency_key_ttl",
                "must be longer than 0s".into(),
            );
        }
        positive(
            "batch_write.idempotency_max_keys",
            bw.idempotency_max_keys as u64,
        )?;

        if self
            .metrics
            .bearer_token
            .as_deref()
            .is_some_and(str::is_empty)
        {
            return invalid("metrics.bearer_token", "must not be empty when set".into());
        }
        if let Some(listen) = &self.metrics.listen
            && !listen
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        {
            return invalid(
                "metrics.listen",
                format!("{listen:?} is not HOST:PORT (e.g. 127.0.0.1:9100)"),
            );
        }
        let path = &self.metrics.path;
        if !path.starts_with('/') || path.starts_with("/api/") || path == "/api" {
            return invalid(
                "metrics.path",
                format!("{path:?} must start with / and lie outside /api"),
            );
        }
        Ok(())
    }
}

impl Config {
    /// Protected mode: with auth disabled, only a loopback `server.host` is accepted unless
    /// `server.allow_unauthenticated_network` says open access is intended. Checked at start-up, after
    /// command-line flags changed the address (not in [`Config::load`]). A host name other than
    /// `localhost` counts as non-loopback: what it resolves to is not known here.
    ///
    /// The same rule holds for `metrics.listen`: its labels name tenants, and JWTs do not guard it, so a
    /// non-loopback metrics address needs `metrics.bearer_token` or
    /// `server.allow_unauthenticated_network`. (On the API's own address the exposition follows the
    /// API's decision: with `auth.enabled` only `metrics.bearer_token` opens it, and without that token
    /// nothing does; with auth disabled it is open unless the token is set: `crate::auth::ScrapeAccess`.)
    pub fn check_exposure(&self) -> Result<(), LoadError> {
        if let Some(listen) = self
            .metrics
            .listen
            .as_deref()
            .filter(|_| self.metrics.enabled)
        {
            let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host);
            if self.metrics.bearer_token.is_none()
                && !self.server.allow_unauthenticated_network
                && !is_loopback(host)
            {
                return Err(LoadError::Invalid {
                    key: "metrics.listen".into(),
                    message: format!(
                        "refusing to serve metrics on {listen:?} without a bearer token (protected mode): \
                         their labels name tenants. Set metrics.bearer_token, listen on 127.0.0.1, or set \
                         server.allow_unauthenticated_network: true if open access is intended"
                    ),
                });
            }
        }
        if self.auth.enabled
            || self.server.allow_unauthenticated_network
            || is_loopback(&self.server.host)
        {
            return Ok(());
        }
        Err(LoadError::Invalid {
            key: "server.host".into(),
            message: format!(
                "refusing to listen on {:?} without authentication (protected mode): anyone who can reach \
                 it could read and write every metric. Enable auth (auth.enabled with auth.jwt_secret or \
                 auth.jwt_public_key_path; LUMINATE_AUTH_ENABLED=true LUMINATE_AUTH_JWT_SECRET=...), \
                 listen on 127.0.0.1, or set server.allow_unauthenticated_network: true \
                 (LUMINATE_SERVER_ALLOW_UNAUTHENTICATED_NETWORK=true) if open access is intended",
                self.server.host
            ),
        })
    }

    /// How the server is exposed, for the start-up log.
    pub fn exposure(&self) -> &'static str {
        match (self.auth.enabled, is_loopback(&self.server.host)) {
            (true, _) => "authenticated: every route but health needs a bearer JWT",
            (false, true) => {
                "protected: auth disabled, loopback only, every request is tenant default"
            }
            (false, false) => {
                "OPEN: auth disabled on a network address (server.allow_unauthenticated_network), every request is tenant default"
            }
        }
    }
}

/// `localhost` or a loopback IP address.
fn is_loopback(host: &str) -> bool {
    let host = host.trim();
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
