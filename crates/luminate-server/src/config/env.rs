//! Environment overrides: which `LUMINATE_*` variable sets which configuration key.
//!
//! Two forms are accepted. The general one, `LUMINATE__SECTION__KEY` (double underscores separate path
//! segments, so keys that contain `_` stay unambiguous: `LUMINATE__STORAGE__EMBEDDED__DATA_DIR`). And the
//! seed's single-underscore names (`LUMINATE_SERVER_PORT`, `LUMINATE_CLICKHOUSE_ADDRESSES`), which are
//! resolved by matching the whole name against the known key paths rather than by guessing where the
//! separators are; for `storage.<backend>.*` the `storage` segment may be left out, as the seed does. A
//! `LUMINATE_` variable that matches no key is an error: a typo must not be silently ignored.

use super::LoadError;

/// Every scalar (or scalar-list) key that the environment may set, as a dotted path.
/// `retention.policies` is a list of objects and can only be set in the file.
pub const KEY_PATHS: &[&str] = &[
    "server.host",
    "server.port",
    "server.read_timeout",
    "server.write_timeout",
    "server.shutdown_timeout",
    "server.allow_unauthenticated_network",
    "auth.enabled",
    "auth.jwt_secret",
    "auth.jwt_public_key_path",
    "auth.token_expiry",
    "auth.issuer",
    "auth.audience",
    "auth.leeway",
    "storage.backend",
    "storage.embedded.data_dir",
    "storage.embedded.sync",
    "storage.embedded.sync_interval",
    "storage.embedded.wal_segment_size",
    "storage.embedded.head_max_points",
    "storage.embedded.head_max_age",
    "storage.embedded.value_log_max_entries",
    "storage.clickhouse.addresses",
    "storage.clickhouse.database",
    "storage.clickhouse.username",
    "storage.clickhouse.password",
    "storage.clickhouse.max_open_conns",
    "storage.clickhouse.max_idle_conns",
    "storage.clickhouse.conn_max_lifetime",
    "storage.clickhouse.cluster",
    "storage.clickhouse.connect_timeout",
    "storage.clickhouse.request_timeout",
    "storage.clickhouse.breaker_failure_threshold",
    "storage.clickhouse.breaker_cool_down",
    "storage.clickhouse.max_response_bytes",
    "health.min_free_disk_bytes",
    "health.min_free_disk_ratio",
    "rate_limits.write_requests_per_second",
    "rate_limits.query_requests_per_second",
    "rate_limits.metrics_per_second",
    "rate_limits.concurrent_queries",
    "cardinality_limits.max_dimensions_per_metric",
    "cardinality_limits.max_dimension_key_length",
    "cardinality_limits.max_dimension_value_length",
    "cardinality_limits.max_unique_series_per_metric",
    "cardinality_limits.max_metrics_per_tenant",
    "query_limits.max_query_timeout",
    "query_limits.default_query_timeout",
    "query_limits.max_query_time_range",
    "query_limits.max_result_points",
    "query_limits.max_group_by_cardinality",
    "query_limits.memory_budget_bytes",
    "query_limits.memory_wait",
    "batch_write.max_batch_size",
    "batch_write.max_request_size_bytes",
    "batch_write.compression",
    "validation.max_past",
    "validation.max_future",
    "retention.default_retention",
    "retention.cleanup_interval",
    "logging.level",
    "logging.format",
    "logging.output",
    "metrics.enabled",
    "metrics.path",
    "metrics.interval",
    "metrics.bearer_token",
    "metrics.listen",
    "metrics.max_tenant_labels",
    "metrics.top_metrics",
];

/// Keys whose value is a list; the environment gives them comma-separated.
const LIST_KEYS: &[&str] = &["storage.clickhouse.addresses"];

/// `LUMINATE_` variables that are not configuration keys: `LUMINATE_CONFIG` is read by the command line
/// (`--config`), `LUMINATE_URL` tells clients (`examples/demo.sh`, later `luminate write|query`) where
/// the server is. Both are commonly exported in the same shell that starts the server.
pub const NON_KEY_VARIABLES: &[&str] = &["LUMINATE_CONFIG", "LUMINATE_URL"];

/// Short names that are not derived from a key path: `LUMINATE_DATA_DIR` (used by `scripts/run.sh`).
const ALIASES: &[(&str, &str)] = &[("data_dir", "storage.embedded.data_dir")];

const PREFIX: &str = "LUMINATE_";

/// A value taken from the environment for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A scalar, parsed later by the key's type.
    Scalar(String),
    /// A comma-separated list, split.
    List(Vec<String>),
}

/// One override: the key path, its value, and the variable it came from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvOverride {
    /// Dotted key path.
    pub key: &'static str,
    /// The value.
    pub value: EnvValue,
    /// The variable name.
    pub variable: String,
}

/// The single-underscore names a key answers to: the whole path joined with `_`, and for
/// `storage.<backend>.<key>` also `<backend>_<key>`.
fn short_names(path: &str) -> Vec<String> {
    let mut names = vec![path.replace('.', "_")];
    if let Some(rest) = path.strip_prefix("storage.")
        && rest.contains('.')
    {
        names.push(rest.replace('.', "_"));
    }
    names
}

fn resolve(variable: &str) -> Option<&'static str> {
    let rest = variable.strip_prefix(PREFIX)?;
    if let Some(general) = rest.strip_prefix('_') {
        let path = general
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(".");
        return KEY_PATHS.iter().copied().find(|k| *k == path);
    }
    let name = rest.to_ascii_lowercase();
    if let Some((_, key)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return Some(key);
    }
    KEY_PATHS
        .iter()
        .copied()
        .find(|k| short_names(k).contains(&name))
}

/// Turns the `LUMINATE_*` variables among `vars` into overrides; any other variable is ignored.
pub fn overrides(vars: &[(String, String)]) -> Result<Vec<EnvOverride>, LoadError> {
    let mut out: Vec<EnvOverride> = Vec::new();
    for (variable, raw) in vars {
        if !variable.starts_with(PREFIX) || NON_KEY_VARIABLES.contains(&variable.as_str()) {
            continue;
        }
        let key = resolve(variable).ok_or_else(|| LoadError::UnknownEnvironmentVariable {
            variable: variable.clone(),
        })?;
        if let Some(previous) = out.iter().find(|o| o.key == key) {
            return Err(LoadError::Invalid {
                key: key.to_owned(),
                message: format!(
                    "set twice in the environment, by {} and by {variable}",
                    previous.variable
                ),
            });
        }
        let value = if LIST_KEYS.contains(&key) {
            EnvValue::List(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )
        } else {
            EnvValue::Scalar(raw.clone())
        };
        out.push(EnvOverride {
            key,
            value,
            variable: variable.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn seed_names_and_general_form_resolve() {
        assert_eq!(resolve("LUMINATE_SERVER_PORT"), Some("server.port"));
        assert_eq!(resolve("LUMINATE_AUTH_JWT_SECRET"), Some("auth.jwt_secret"));
        assert_eq!(resolve("LUMINATE_STORAGE_BACKEND"), Some("storage.backend"));
        assert_eq!(
            resolve("LUMINATE_CLICKHOUSE_ADDRESSES"),
            Some("storage.clickhouse.addresses")
        );
        assert_eq!(
            resolve("LUMINATE_STORAGE_EMBEDDED_DATA_DIR"),
            Some("storage.embedded.data_dir")
        );
        assert_eq!(
            resolve("LUMINATE_DATA_DIR"),
            Some("storage.embedded.data_dir")
        );
        assert_eq!(resolve("LUMINATE__SERVER__PORT"), Some("server.port"));
        assert_eq!(
            resolve("LUMINATE__STORAGE__EMBEDDED__DATA_DIR"),
            Some("storage.embedded.data_dir")
        );
        assert_eq!(resolve("LUMINATE__SERVER_PORT"), None);
        assert_eq!(resolve("LUMINATE_SERVER_PROT"), None);
    }

    #[test]
    fn every_short_name_is_unambiguous() {
        let mut seen: std::collections::HashMap<String, &str> = ALIASES
            .iter()
            .map(|(alias, key)| ((*alias).to_owned(), *key))
            .collect();
        for key in KEY_PATHS {
            for name in short_names(key) {
                assert_eq!(
                    seen.insert(name.clone(), *key),
                    None,
                    "{name} names two keys"
                );
            }
        }
    }

    #[test]
    fn lists_are_comma_separated_and_unknown_variables_fail() {
        let got = overrides(&vars(&[
            ("LUMINATE_CLICKHOUSE_ADDRESSES", "h1:9000, h2:9000,"),
            ("PATH", "/bin"),
        ]))
        .unwrap();
        assert_eq!(
            got[0].value,
            EnvValue::List(vec!["h1:9000".into(), "h2:9000".into()])
        );
        let err = overrides(&vars(&[("LUMINATE_SERVR_PORT", "1")])).unwrap_err();
        assert!(err.to_string().contains("LUMINATE_SERVR_PORT"), "{err}");
        let clients = vars(&[
            ("LUMINATE_CONFIG", "/etc/luminate.yaml"),
            ("LUMINATE_URL", "http://127.0.0.1:8080"),
        ]);
        assert!(overrides(&clients).unwrap().is_empty());
    }

    #[test]
    fn both_forms_for_one_key_is_an_error() {
        let err = overrides(&vars(&[
            ("LUMINATE_SERVER_PORT", "1"),
            ("LUMINATE__SERVER__PORT", "2"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("server.port"), "{err}");
    }
}
