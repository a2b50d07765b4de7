//! Environment overrides: which `LUMINATE_*` variable sets which configuration key, and which
//! `LUMINATE_*` variables are not meant for the server at all.
//!
//! The prefix is shared: Kubernetes gives every pod of a namespace service-link variables for each
//! Service (`luminate` gives `LUMINATE_SERVICE_HOST`, `LUMINATE_PORT=tcp://10.0.0.7:8080`, ...), and
//! wrapper scripts use it for their own settings (`LUMINATE_BIN`, `LUMINATE_DATA`). So the rule is:
//!
//! - The general form `LUMINATE__SECTION__KEY` (double underscores separate path segments, so keys that
//!   contain `_` stay unambiguous: `LUMINATE__STORAGE__EMBEDDED__DATA_DIR`) is only ever written for
//!   Luminate: one that names no key stops start-up, naming the variable and the closest key.
//! - The seed's single-underscore names (`LUMINATE_SERVER_PORT`, `LUMINATE_CLICKHOUSE_ADDRESSES`) are
//!   resolved by matching the whole name against the known key paths rather than by guessing where the
//!   separators are; for `storage.<backend>.*` the `storage` segment may be left out, as the seed does.
//!   Any other single-underscore name is ignored; start-up warns about one within edit distance 2 of a
//!   known name (a typo, named with the variable it probably meant) and lists the rest.
//! - Kubernetes service links are recognised by their shape and ignored silently, before the seed's
//!   names are matched: no key has such a name, and no key takes a `tcp://IP:PORT` value (a Service
//!   named `luminate-server` gives `LUMINATE_SERVER_PORT=tcp://...`, which is not the port to bind).

use super::LoadError;

/// Every scalar (or scalar-list) key that the environment may set, as a dotted path.
/// `retention.policies` is a list of objects and can only be set in the file.
pub const KEY_PATHS: &[&str] = &[
    "server.host",
    "server.port",
    "server.read_timeout",
    "server.write_timeout",
    "server.shutdown_timeout",
    "server.max_connections",
    "server.header_read_timeout",
    "server.idle_timeout",
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
    "storage.clickhouse.dimension_columns",
    "storage.clickhouse.sort_dimensions",
    "storage.clickhouse.ttl",
    "storage.clickhouse.rollups",
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
    "dashboards.max_body_bytes",
    "dashboards.max_panels",
    "dashboards.max_per_tenant",
    "batch_write.max_batch_size",
    "batch_write.max_request_size_bytes",
    "batch_write.compression",
    "batch_write.idempotency_key_ttl",
    "batch_write.idempotency_max_keys",
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
    "otlp.promote_resource_attributes",
    "otlp.grpc.enabled",
    "otlp.grpc.port",
    "otlp.grpc.max_concurrent_streams",
];

/// Keys whose value is a list; the environment gives them comma-separated.
const LIST_KEYS: &[&str] = &[
    "storage.clickhouse.addresses",
    "storage.clickhouse.dimension_columns",
    "storage.clickhouse.sort_dimensions",
    "otlp.promote_resource_attributes",
];

/// `LUMINATE_` variables that are not configuration keys but are used, so start-up does not list them
/// as ignored: `LUMINATE_CONFIG` is read by the command line (`--config`), `LUMINATE_URL` tells
/// clients (`examples/demo.sh`, `luminate write|query|import`) where the server is, and
/// `LUMINATE_TOKEN` is those subcommands' bearer token. All are commonly exported in the same shell
/// that starts the server.
pub const NON_KEY_VARIABLES: &[&str] = &["LUMINATE_CONFIG", "LUMINATE_URL", "LUMINATE_TOKEN"];

/// Short names that are not derived from a key path: `LUMINATE_DATA_DIR` (used by `scripts/run.sh`).
const ALIASES: &[(&str, &str)] = &[("data_dir", "storage.embedded.data_dir")];

const PREFIX: &str = "LUMINATE_";

/// How far (in single-character edits) an unknown name may be from a known one to be reported as a
/// probable typo of it: `PROT` for `PORT` is two.
const TYPO_DISTANCE: usize = 2;

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

/// What one `LUMINATE_*` variable is to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Meaning {
    /// It sets this key.
    Key(&'static str),
    /// A Kubernetes service link, or one of [`NON_KEY_VARIABLES`]: nothing to say about it.
    NotForTheServer,
    /// `LUMINATE__...` naming no key; the closest key's variable, if any is close.
    UnknownGeneral { probably: Option<String> },
    /// A single-underscore name matching no key; the known name it is probably a typo of.
    Unknown { probably: Option<String> },
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

/// Every single-underscore name (without the prefix, lower case) with its key.
fn all_short_names() -> impl Iterator<Item = (String, &'static str)> {
    let aliases = ALIASES
        .iter()
        .map(|(alias, key)| ((*alias).to_owned(), *key));
    let derived = KEY_PATHS
        .iter()
        .flat_map(|key| short_names(key).into_iter().map(move |name| (name, *key)));
    aliases.chain(derived)
}

/// Whether `variable` (with `value`) has the shape of what Kubernetes injects for a Service whose name
/// starts with `luminate`: `<SVC>_SERVICE_HOST`, `<SVC>_SERVICE_PORT`, `<SVC>_SERVICE_PORT_<PORT_NAME>`,
/// `<SVC>_PORT=<proto>://<ip>:<port>`, and `<SVC>_PORT_<port>_<PROTO>` alone or followed by `_ADDR`,
/// `_PORT` or `_PROTO`.
fn is_service_link(variable: &str, value: &str) -> bool {
    let segments: Vec<&str> = variable.split('_').collect();
    if segments.ends_with(&["SERVICE", "HOST"]) {
        return true;
    }
    // After the first segment (`LUMINATE`): the Service's own name may hold any segments.
    if segments[1..]
        .windows(2)
        .any(|pair| pair == ["SERVICE", "PORT"])
    {
        return true;
    }
    let is_protocol = |s: &str| ["TCP", "UDP", "SCTP"].contains(&s);
    for (i, segment) in segments.iter().enumerate().skip(1) {
        if *segment != "PORT" {
            continue;
        }
        match &segments[i + 1..] {
            [] => return is_link_url(value),
            [port, protocol, rest @ ..]
                if !port.is_empty()
                    && port.bytes().all(|b| b.is_ascii_digit())
                    && is_protocol(protocol) =>
            {
                if matches!(rest, [] | ["ADDR" | "PORT" | "PROTO"]) {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// `tcp://10.0.0.7:8080` (or `udp://`, `sctp://`, an IPv6 address in brackets).
fn is_link_url(value: &str) -> bool {
    ["tcp://", "udp://", "sctp://"]
        .iter()
        .find_map(|scheme| value.strip_prefix(scheme))
        .and_then(|address| address.rsplit_once(':'))
        .is_some_and(|(host, port)| {
            !host.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
        })
}

/// The edit (Levenshtein) distance between two ASCII names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// The candidate closest to `name`, when it is within [`TYPO_DISTANCE`].
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, _)| *distance <= TYPO_DISTANCE)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// What `variable` (already known to start with the prefix) means.
fn meaning(variable: &str, value: &str) -> Meaning {
    let rest = &variable[PREFIX.len()..];
    // The general form first: Kubernetes never writes `__` (a Service name is a DNS label).
    if let Some(general) = rest.strip_prefix('_') {
        let path = general
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join(".");
        if let Some(key) = KEY_PATHS.iter().copied().find(|k| *k == path) {
            return Meaning::Key(key);
        }
        let probably = closest(&path, KEY_PATHS.iter().copied()).map(|key| {
            format!(
                "{PREFIX}_{}",
                key.split('.')
                    .map(str::to_ascii_uppercase)
                    .collect::<Vec<_>>()
                    .join("__")
            )
        });
        return Meaning::UnknownGeneral { probably };
    }
    if is_service_link(variable, value) || NON_KEY_VARIABLES.contains(&variable) {
        return Meaning::NotForTheServer;
    }
    let name = rest.to_ascii_lowercase();
    let names: Vec<(String, &'static str)> = all_short_names().collect();
    if let Some((_, key)) = names.iter().find(|(known, _)| *known == name) {
        return Meaning::Key(key);
    }
    let probably = closest(&name, names.iter().map(|(known, _)| known.as_str()))
        .map(|known| format!("{PREFIX}{}", known.to_ascii_uppercase()));
    Meaning::Unknown { probably }
}

/// The `LUMINATE_*` variables among `vars`, with their values.
fn ours(vars: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    vars.iter()
        .filter(|(variable, _)| variable.starts_with(PREFIX))
        .map(|(variable, value)| (variable.as_str(), value.as_str()))
}

/// The process environment. Variables that are not valid Unicode cannot be configuration values and
/// are left out (a `${VAR}` naming one reports it as not set).
pub fn process_vars() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Turns the `LUMINATE_*` variables among `vars` that name keys into overrides. A general-form
/// variable naming no key is an error; anything else that is not a key is left to [`ignored`].
pub fn overrides(vars: &[(String, String)]) -> Result<Vec<EnvOverride>, LoadError> {
    let mut out: Vec<EnvOverride> = Vec::new();
    for (variable, raw) in ours(vars) {
        let key = match meaning(variable, raw) {
            Meaning::Key(key) => key,
            Meaning::UnknownGeneral { probably } => {
                return Err(LoadError::UnknownEnvironmentVariable {
                    variable: variable.to_owned(),
                    hint: probably
                        .map(|name| format!(" (did you mean {name}?)"))
                        .unwrap_or_default(),
                });
            }
            Meaning::NotForTheServer | Meaning::Unknown { .. } => continue,
        };
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
            EnvValue::Scalar(raw.to_owned())
        };
        out.push(EnvOverride {
            key,
            value,
            variable: variable.to_owned(),
        });
    }
    Ok(out)
}

/// The single-underscore `LUMINATE_*` variables that set nothing and are not known to be meant for
/// something else (service links, [`NON_KEY_VARIABLES`]): what start-up reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ignored {
    /// `(variable, the known variable it is probably a typo of)`.
    pub misspelt: Vec<(String, String)>,
    /// The others, sorted: a wrapper's own settings, most likely.
    pub others: Vec<String>,
}

impl Ignored {
    /// One warning per probable typo, naming the variable it probably meant.
    pub fn warnings(&self) -> Vec<String> {
        self.misspelt
            .iter()
            .map(|(variable, meant)| {
                format!(
                    "environment variable {variable} is not a configuration key and is ignored: did you mean {meant}?"
                )
            })
            .collect()
    }

    /// One line listing the other ignored variables, if any.
    pub fn summary(&self) -> Option<String> {
        (!self.others.is_empty()).then(|| {
            format!(
                "ignoring environment variables that are not configuration keys: {}",
                self.others.join(", ")
            )
        })
    }
}

/// The `LUMINATE_*` variables among `vars` that [`overrides`] passed over without a word.
pub fn ignored(vars: &[(String, String)]) -> Ignored {
    let mut out = Ignored::default();
    for (variable, value) in ours(vars) {
        if let Meaning::Unknown { probably } = meaning(variable, value) {
            match probably {
                Some(meant) => out.misspelt.push((variable.to_owned(), meant)),
                None => out.others.push(variable.to_owned()),
            }
        }
    }
    out.misspelt.sort();
    out.others.sort();
    out
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

    fn key(variable: &str) -> Option<&'static str> {
        match meaning(variable, "1") {
            Meaning::Key(key) => Some(key),
            _ => None,
        }
    }

    /// What Kubernetes injects for a Service `luminate` with a port 8080 named `http`, and for a
    /// Service `luminate-clickhouse`.
    const SERVICE_LINKS: &[(&str, &str)] = &[
        ("LUMINATE_SERVICE_HOST", "10.0.0.7"),
        ("LUMINATE_SERVICE_PORT", "8080"),
        ("LUMINATE_SERVICE_PORT_HTTP", "8080"),
        ("LUMINATE_PORT", "tcp://10.0.0.7:8080"),
        ("LUMINATE_PORT_8080_TCP", "tcp://10.0.0.7:8080"),
        ("LUMINATE_PORT_8080_TCP_ADDR", "10.0.0.7"),
        ("LUMINATE_PORT_8080_TCP_PORT", "8080"),
        ("LUMINATE_PORT_8080_TCP_PROTO", "tcp"),
        ("LUMINATE_CLICKHOUSE_SERVICE_HOST", "10.0.0.9"),
        ("LUMINATE_CLICKHOUSE_SERVICE_PORT", "8123"),
        ("LUMINATE_CLICKHOUSE_PORT", "tcp://10.0.0.9:8123"),
        ("LUMINATE_CLICKHOUSE_PORT_8123_TCP_ADDR", "10.0.0.9"),
        ("LUMINATE_SERVER_PORT", "tcp://10.0.0.8:8080"),
        ("LUMINATE_PORT_9000_UDP_PROTO", "udp"),
        ("LUMINATE_PORT_53_SCTP", "sctp://[fd00::7]:53"),
    ];

    #[test]
    fn seed_names_and_general_form_resolve() {
        assert_eq!(key("LUMINATE_SERVER_PORT"), Some("server.port"));
        assert_eq!(key("LUMINATE_AUTH_JWT_SECRET"), Some("auth.jwt_secret"));
        assert_eq!(key("LUMINATE_STORAGE_BACKEND"), Some("storage.backend"));
        assert_eq!(
            key("LUMINATE_CLICKHOUSE_ADDRESSES"),
            Some("storage.clickhouse.addresses")
        );
        assert_eq!(
            key("LUMINATE_STORAGE_EMBEDDED_DATA_DIR"),
            Some("storage.embedded.data_dir")
        );
        assert_eq!(key("LUMINATE_DATA_DIR"), Some("storage.embedded.data_dir"));
        assert_eq!(key("LUMINATE__SERVER__PORT"), Some("server.port"));
        assert_eq!(
            key("LUMINATE__STORAGE__EMBEDDED__DATA_DIR"),
            Some("storage.embedded.data_dir")
        );
        assert_eq!(key("LUMINATE__SERVER_PORT"), None);
        assert_eq!(key("LUMINATE_SERVER_PROT"), None);
    }

    #[test]
    fn every_short_name_is_unambiguous() {
        let mut seen = std::collections::HashMap::new();
        for (name, key) in all_short_names() {
            assert_eq!(
                seen.insert(name.clone(), key),
                None,
                "{name} names two keys"
            );
        }
    }

    #[test]
    fn kubernetes_service_links_are_neither_keys_nor_reported() {
        for (variable, value) in SERVICE_LINKS {
            assert_eq!(
                meaning(variable, value),
                Meaning::NotForTheServer,
                "{variable}={value}"
            );
        }
        let env = vars(SERVICE_LINKS);
        assert_eq!(overrides(&env).unwrap(), Vec::new());
        assert_eq!(ignored(&env), Ignored::default());
    }

    #[test]
    fn a_port_that_is_not_a_link_url_is_still_a_key_or_reported() {
        assert_eq!(key("LUMINATE_SERVER_PORT"), Some("server.port"));
        let env = vars(&[("LUMINATE_PORT", "9090"), ("LUMINATE_PORT_HTTP_TCP", "x")]);
        assert_eq!(
            ignored(&env).others,
            ["LUMINATE_PORT", "LUMINATE_PORT_HTTP_TCP"]
        );
    }

    #[test]
    fn wrapper_variables_are_ignored_and_listed() {
        let env = vars(&[
            ("LUMINATE_BIN", "/usr/local/bin/luminate"),
            ("LUMINATE_DATA", "/srv/luminate"),
            ("LUMINATE_CONFIG", "/etc/luminate.yaml"),
            ("LUMINATE_URL", "http://127.0.0.1:8080"),
            ("LUMINATE_TOKEN", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"),
            ("PATH", "/bin"),
        ]);
        assert_eq!(overrides(&env).unwrap(), Vec::new());
        let ignored = ignored(&env);
        assert_eq!(ignored.others, ["LUMINATE_BIN", "LUMINATE_DATA"]);
        assert!(ignored.misspelt.is_empty());
        assert_eq!(
            ignored.summary().as_deref(),
            Some(
                "ignoring environment variables that are not configuration keys: LUMINATE_BIN, LUMINATE_DATA"
            )
        );
    }

    #[test]
    fn a_single_underscore_typo_is_ignored_and_reported_with_the_name_it_meant() {
        let env = vars(&[
            ("LUMINATE_SERVER_PROT", "1"),
            ("LUMINATE_AUTH_JWT_SECRT", "s"),
            ("LUMINATE_DATADIR", "/srv"),
            ("LUMINATE_SERVER__PORT", "1"),
        ]);
        assert_eq!(overrides(&env).unwrap(), Vec::new());
        let ignored = ignored(&env);
        assert_eq!(
            ignored.misspelt,
            [
                (
                    "LUMINATE_AUTH_JWT_SECRT".into(),
                    "LUMINATE_AUTH_JWT_SECRET".into()
                ),
                ("LUMINATE_DATADIR".into(), "LUMINATE_DATA_DIR".into()),
                ("LUMINATE_SERVER_PROT".into(), "LUMINATE_SERVER_PORT".into()),
                (
                    "LUMINATE_SERVER__PORT".into(),
                    "LUMINATE_SERVER_PORT".into()
                ),
            ]
        );
        assert!(ignored.others.is_empty());
        assert_eq!(
            ignored.warnings()[2],
            "environment variable LUMINATE_SERVER_PROT is not a configuration key and is ignored: did you mean LUMINATE_SERVER_PORT?"
        );
    }

    #[test]
    fn an_unknown_general_form_stops_start_up_naming_it_and_the_closest_key() {
        let err = overrides(&vars(&[("LUMINATE__SERVER__PROTT", "1")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown configuration key in environment variable LUMINATE__SERVER__PROTT (did you mean LUMINATE__SERVER__PORT?): a LUMINATE__SECTION__KEY variable must name a key (docs/configuration.md lists them)"
        );
        let err = overrides(&vars(&[("LUMINATE__NOTHING__LIKE_IT", "1")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown configuration key in environment variable LUMINATE__NOTHING__LIKE_IT: a LUMINATE__SECTION__KEY variable must name a key (docs/configuration.md lists them)"
        );
        // A link-shaped value does not excuse the general form: Kubernetes never writes `__`.
        assert!(overrides(&vars(&[("LUMINATE__SERVICE__PORT", "tcp://10.0.0.7:80")])).is_err());
    }

    #[test]
    fn lists_are_comma_separated() {
        let got = overrides(&vars(&[(
            "LUMINATE_CLICKHOUSE_ADDRESSES",
            "h1:9000, h2:9000,",
        )]))
        .unwrap();
        assert_eq!(
            got[0].value,
            EnvValue::List(vec!["h1:9000".into(), "h2:9000".into()])
        );
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

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("server_prot", "server_port"), 2);
        assert_eq!(edit_distance("data_dir", "datadir"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("bin", "bin"), 0);
    }
}
