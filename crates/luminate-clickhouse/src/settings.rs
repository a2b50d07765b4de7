//! [`ClickhouseSettings`]: how to reach ClickHouse and how hard to try. The seed's `storage.clickhouse`
//! keys, plus the timeouts and circuit-breaker knobs the seed left implicit. Plain data: the server maps
//! its configuration onto it.

use std::time::Duration;

use thiserror::Error;

/// Connection settings of the ClickHouse backend.
#[derive(Debug, Clone, PartialEq)]
pub struct ClickhouseSettings {
    /// ClickHouse HTTP endpoints, `host:port` (or `http://host:port`). Requests go round-robin over
    /// them; a request that cannot connect moves on to the next one.
    pub addresses: Vec<String>,
    /// Database holding Luminate's tables; created if missing.
    pub database: String,
    /// Name of a cluster of the servers' `remote_servers` configuration. When set, every address is
    /// one node of that cluster: the store creates local tables on each and reads and writes through
    /// `Distributed` tables (see `schema`). When unset, the addresses must all serve the same data
    /// (replicas, or proxies in front of one server).
    pub cluster: Option<String>,
    /// ClickHouse user.
    pub username: String,
    /// Its password.
    pub password: String,
    /// Most requests in flight at once (one connection each), over all endpoints.
    pub max_open_conns: u32,
    /// Idle keep-alive connections kept per endpoint.
    pub max_idle_conns: u32,
    /// A connection is not reused for new requests once its pool is this old (see `transport`).
    pub conn_max_lifetime: Duration,
    /// Longest wait for a TCP connection before trying the next endpoint.
    pub connect_timeout: Duration,
    /// Deadline of a request that is not a query (writes, discovery, schema, deletes); a query's
    /// deadline is its own timeout.
    pub request_timeout: Duration,
    /// Consecutive connection failures or timeouts that open the circuit.
    pub breaker_failure_threshold: u32,
    /// How long an open circuit fails fast before one probe request is let through.
    pub breaker_cool_down: Duration,
    /// Largest response body read (bounds memory per request); a larger answer is `QueryTooLarge`.
    pub max_response_bytes: usize,
    /// Dimension keys given a column of their own on the points table, added on open if missing
    /// (computed from the arrays, so it holds the same values; parts written before it are rewritten
    /// once, see `columns`). Group-bys and filters on these keys read the column instead of unpacking
    /// the arrays of every row.
    pub dimension_columns: Vec<String>,
    /// Dimension keys put in the points table's sort key after the metric, in order, when the backend
    /// creates the table (each also gets a dimension column). One customer's points are then one range
    /// of the key. A table that exists keeps its key: this applies to new databases only.
    pub sort_dimensions: Vec<String>,
    /// Points older than this are deleted by ClickHouse itself, in its merges (a table TTL; ClickHouse
    /// 20.1 or later, see `ttl`). It applies to every metric, so it must be at least every retention;
    /// the retention task then queues no mutation for the metrics whose retention it is.
    pub ttl: Option<Duration>,
    /// Per-series hourly rollups kept by ClickHouse in every part (an aggregate projection; 23.8 or
    /// later, see `rollups`): count, sum, avg, min and max over whole hours read them.
    pub rollups: bool,
}

impl Default for ClickhouseSettings {
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

/// A setting that cannot work, named.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("storage.clickhouse.{key}: {message}")]
pub struct SettingsError {
    /// The configuration key.
    pub key: &'static str,
    /// What is wrong with it.
    pub message: String,
}

/// One HTTP endpoint: the authority of its URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port`.
    pub authority: String,
}

impl ClickhouseSettings {
    /// The endpoints, checked: plain HTTP only (this client has no TLS), a port is required.
    pub fn endpoints(&self) -> Result<Vec<Endpoint>, SettingsError> {
        let bad = |message: String| SettingsError {
            key: "addresses",
            message,
        };
        if self.addresses.is_empty() {
            return Err(bad("at least one address is required".into()));
        }
        self.addresses
            .iter()
            .map(|raw| {
                let address = raw.trim();
                let authority = match address.split_once("://") {
                    None => address,
                    Some(("http", rest)) => rest.trim_end_matches('/'),
                    Some((scheme, _)) => {
                        return Err(bad(format!(
                            "{raw:?}: scheme {scheme} is not supported; use host:port of ClickHouse's HTTP interface"
                        )));
                    }
                };
                let valid_port = authority
                    .rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
                if !valid_port || authority.contains(['/', '?', '#', '@', ' ']) {
                    return Err(bad(format!(
                        "{raw:?} is not host:port (ClickHouse's HTTP port, 8123 by default)"
                    )));
                }
                Ok(Endpoint {
                    authority: authority.to_owned(),
                })
            })
            .collect()
    }

    /// Checks every setting; the error names the key.
    pub fn check(&self) -> Result<(), SettingsError> {
        self.endpoints()?;
        let positive = |key: &'static str, ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(SettingsError {
                    key,
                    message: "must be positive".into(),
                })
            }
        };
        positive("max_open_conns", self.max_open_conns > 0)?;
        positive("conn_max_lifetime", !self.conn_max_lifetime.is_zero())?;
        positive("connect_timeout", !self.connect_timeout.is_zero())?;
        positive("request_timeout", !self.request_timeout.is_zero())?;
        positive(
            "breaker_failure_threshold",
            self.breaker_failure_threshold > 0,
        )?;
        positive("max_response_bytes", self.max_response_bytes > 0)?;
        if self.cluster.as_deref() == Some("") {
            return Err(SettingsError {
                key: "cluster",
                message: "must not be empty when set".into(),
            });
        }
        if self.database.is_empty() {
            return Err(SettingsError {
                key: "database",
                message: "must not be empty".into(),
            });
        }
        for (key, value) in [("username", &self.username), ("password", &self.password)] {
            // They travel in HTTP headers, where control characters are not allowed.
            if value.chars().any(char::is_control) {
                return Err(SettingsError {
                    key,
                    message: "must not contain control characters".into(),
                });
            }
        }
        for (key, keys) in [
            ("dimension_columns", &self.dimension_columns),
            ("sort_dimensions", &self.sort_dimensions),
        ] {
            if let Some(bad) = keys
                .iter()
                .find(|k| !luminate_model::validate::is_identifier(k) || k.len() > 128)
            {
                return Err(SettingsError {
                    key,
                    message: format!(
                        "{bad:?} is not a dimension key (letters, digits and `_`, not starting with \
                         a digit, at most 128 characters)"
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_addresses(addresses: &[&str]) -> ClickhouseSettings {
        ClickhouseSettings {
            addresses: addresses.iter().map(|a| (*a).to_owned()).collect(),
            ..ClickhouseSettings::default()
        }
    }

    #[test]
    fn addresses_accept_host_port_and_http_urls() {
        let eps = with_addresses(&["ch1:8123", "http://ch2:8124/", "[::1]:8123"])
            .endpoints()
            .unwrap();
        let authorities: Vec<&str> = eps.iter().map(|e| e.authority.as_str()).collect();
        assert_eq!(authorities, ["ch1:8123", "ch2:8124", "[::1]:8123"]);
    }

    #[test]
    fn bad_addresses_are_named() {
        for bad in ["ch1", "https://ch1:8443", "ch1:port", ":8123", "ch1:8123/x"] {
            let err = with_addresses(&[bad]).endpoints().unwrap_err();
            assert_eq!(err.key, "addresses", "{bad}");
        }
        assert!(with_addresses(&[]).endpoints().is_err());
    }

    #[test]
    fn check_names_the_key() {
        let s = ClickhouseSettings {
            max_open_conns: 0,
            ..ClickhouseSettings::default()
        };
        assert_eq!(s.check().unwrap_err().key, "max_open_conns");
        let s = ClickhouseSettings {
            password: "a\nb".into(),
            ..ClickhouseSettings::default()
        };
        assert_eq!(s.check().unwrap_err().key, "password");
        let s = ClickhouseSettings {
            dimension_columns: vec!["customer_id".into(), "a-b".into()],
            ..ClickhouseSettings::default()
        };
        let err = s.check().unwrap_err();
        assert_eq!(err.key, "dimension_columns");
        assert!(err.message.contains("\"a-b\""), "{}", err.message);
        let s = ClickhouseSettings {
            sort_dimensions: vec!["9lives".into()],
            ..ClickhouseSettings::default()
        };
        assert_eq!(s.check().unwrap_err().key, "sort_dimensions");
        assert!(ClickhouseSettings::default().check().is_ok());
    }
}
