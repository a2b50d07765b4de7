//! Loading scenarios: defaults, the seed's file, interpolation, both environment forms, and every kind of
//! bad input, each of which must name the key at fault.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, LoadError> {
    Config::load_from(Some(("test.yaml", yaml)), &vars(env))
}

fn load_err(yaml: &str, env: &[(&str, &str)]) -> String {
    load(yaml, env)
        .expect_err("configuration should be refused")
        .to_string()
}

/// The seed's `config.yaml`, verbatim except `auth.enabled` (so that it loads without a JWT_SECRET).
const SEED_FILE: &str = r#"
server:
  host: "0.0.0.0"
  port: 8080
  read_timeout: "30s"
  write_timeout: "30s"
  shutdown_timeout: "10s"

auth:
  enabled: false
  jwt_secret: "${JWT_SECRET}"  # From environment variable
  token_expiry: "24h"

storage:
  backend: "badger"  # or "clickhouse"

  # BadgerDB configuration
  badger:
    data_dir: "/var/lib/luminate/data"
    value_log_max_entries: 1000000

  # ClickHouse configuration
  clickhouse:
    addresses: ["localhost:9000"]
    database: "luminate"
    username: "${CLICKHOUSE_USER}"
    password: "${CLICKHOUSE_PASSWORD}"
    max_open_conns: 10
    max_idle_conns: 5
    conn_max_lifetime: "1h"

rate_limits:
  write_requests_per_second: 100
  query_requests_per_second: 50
  metrics_per_second: 10000
  concurrent_queries: 10

cardinality_limits:
  max_dimensions_per_metric: 20
  max_dimension_key_length: 128
  max_dimension_value_length: 256
  max_unique_series_per_metric: 1000000
  max_metrics_per_tenant: 1000

query_limits:
  max_query_timeout: "30s"
  default_query_timeout: "10s"
  max_query_time_range: "90d"
  max_result_points: 10000
  max_group_by_cardinality: 1000

batch_write:
  max_batch_size: 10000
  max_request_size_bytes: 10485760  # 10 MB
  compression: true

retention:
  default_retention: "30d"          # Default retention period
  cleanup_interval: "1h"            # How often to run cleanup
  policies:
    - metric_pattern: "debug_*"
      retention: "7d"
    - metric_pattern: "api_*"
      retention: "90d"
    - metric_pattern: "*"
      retention: "30d"

logging:
  level: "info"  # debug, info, warn, error
  format: "json" # json or text
  output: "stdout"

metrics:
  enabled: true  # Expose Luminate's own metrics
  path: "/metrics"
  interval: "10s"
"#;

const SEED_ENV: &[(&str, &str)] = &[
    ("JWT_SECRET", "s3cret"),
    ("CLICKHOUSE_USER", "ch_user"),
    ("CLICKHOUSE_PASSWORD", "ch_pass"),
];

#[test]
fn defaults_without_file_or_environment() {
    let c = Config::load_from(None, &[]).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!((c.server.host.as_str(), c.server.port), ("127.0.0.1", 8080));
    assert_eq!(c.storage.backend, Backend::Embedded);
    assert_eq!(c.storage.embedded.data_dir, PathBuf::from("./data"));
    assert_eq!(c.storage.embedded.sync, SyncMode::Always);
    assert!(!c.auth.enabled);
    assert_eq!(c.batch_write.max_request_size_bytes, 10_485_760);
    assert_eq!(c.validation.max_past, Duration::from_secs(7 * 86_400));
    assert_eq!(
        c.retention.default_retention,
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(c.query_limits(), QueryLimits::default());
    assert_eq!(c.validation_rules(), ValidationRules::default());
    assert!(c.warnings().is_empty());
}

#[test]
fn empty_file_means_defaults() {
    assert_eq!(load("", &[]).unwrap(), Config::default());
    assert_eq!(load("# nothing here\n", &[]).unwrap(), Config::default());
}

#[test]
fn seed_file_loads_with_interpolation() {
    let c = load(SEED_FILE, SEED_ENV).unwrap();
    assert_eq!(c.server.host, "0.0.0.0");
    assert_eq!(c.auth.jwt_secret.as_deref(), Some("s3cret"));
    assert_eq!(c.auth.token_expiry, Duration::from_secs(86_400));
    assert_eq!(
        c.storage.backend,
        Backend::Embedded,
        "badger is the embedded engine"
    );
    assert_eq!(
        c.storage.embedded.data_dir,
        PathBuf::from("/var/lib/luminate/data")
    );
    assert_eq!(c.storage.embedded.value_log_max_entries, Some(1_000_000));
    assert_eq!(c.warnings().len(), 1);
    assert_eq!(c.storage.clickhouse.username, "ch_user");
    assert_eq!(c.storage.clickhouse.password, "ch_pass");
    assert_eq!(
        c.storage.clickhouse.conn_max_lifetime,
        Duration::from_secs(3600)
    );
    assert_eq!(c.rate_limits.concurrent_queries, Some(10));
    assert_eq!(c.cardinality_limits.max_unique_series_per_metric, 1_000_000);
    assert_eq!(
        c.query_limits.max_query_time_range,
        Duration::from_secs(90 * 86_400)
    );
    assert!(c.batch_write.compression);
    assert_eq!(c.logging.format, LogFormat::Json);
    assert_eq!(c.metrics.interval, Duration::from_secs(10));
    assert_eq!(
        c.policy_retention("debug_requests"),
        Duration::from_secs(7 * 86_400)
    );
    assert_eq!(
        c.policy_retention("api_latency"),
        Duration::from_secs(90 * 86_400)
    );
    assert_eq!(
        c.policy_retention("cpu_usage"),
        Duration::from_secs(30 * 86_400)
    );
}

#[test]
fn every_key_of_our_own_sections() {
    let c = load(
        r#"
server: {host: "::1", port: 0, read_timeout: 5s, write_timeout: 6s, shutdown_timeout: 7s, max_connections: 50, header_read_timeout: 2s, idle_timeout: 90s}
auth: {enabled: false, jwt_public_key_path: /etc/key.pem, issuer: luminate, audience: api, leeway: 30s}
storage:
  backend: embedded
  embedded: {data_dir: /tmp/x, sync: interval, sync_interval: 250ms, wal_segment_size: 1048576}
  clickhouse: {addresses: ["a:9000", "b:9000"]}
batch_write: {compression: none}
validation: {max_past: 1d, max_future: 5m}
retention: {default_retention: 2w, cleanup_interval: 1s}
logging: {level: debug, format: text, output: stderr}
metrics: {enabled: false, path: /internal/metrics, interval: 1m}
"#,
        &[],
    )
    .unwrap();
    assert_eq!(c.server.port, 0);
    assert_eq!(c.server.shutdown_timeout, Duration::from_secs(7));
    assert_eq!(c.server.max_connections, Some(50));
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(2));
    assert_eq!(c.server.idle_timeout, Duration::from_secs(90));
    assert_eq!(
        c.auth.jwt_public_key_path,
        Some(PathBuf::from("/etc/key.pem"))
    );
    assert_eq!(c.auth.leeway, Duration::from_secs(30));
    assert_eq!(c.storage.embedded.sync, SyncMode::Interval);
    assert_eq!(c.storage.embedded.sync_interval, Duration::from_millis(250));
    assert_eq!(
        c.storage.clickhouse.addresses,
        vec!["a:9000".to_owned(), "b:9000".to_owned()]
    );
    assert!(!c.batch_write.compression);
    assert_eq!(c.validation_rules().max_future, Duration::from_secs(300));
    assert_eq!(c.logging.level, LogLevel::Debug);
    assert_eq!(c.logging.output, LogOutput::Stderr);
    assert!(!c.metrics.enabled);
}

#[test]
fn key_paths_list_every_scalar_key() {
    fn leaves(prefix: &str, value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&path, v, out);
                }
            }
            _ => out.push(prefix.to_owned()),
        }
    }
    let mut config = Config::default();
    config.server.max_connections = Some(1);
    config.auth.jwt_secret = Some("x".into());
    config.auth.jwt_public_key_path = Some("k".into());
    config.auth.issuer = Some("i".into());
    config.auth.audience = Some("a".into());
    config.storage.embedded.value_log_max_entries = Some(1);
    config.storage.clickhouse.cluster = Some("c".into());
    config.metrics.bearer_token = Some("t".into());
    config.metrics.listen = Some("127.0.0.1:9100".into());
    config.rate_limits.write_requests_per_second = Some(1);
    config.rate_limits.query_requests_per_second = Some(1);
    config.rate_limits.metrics_per_second = Some(1);
    config.rate_limits.concurrent_queries = Some(1);
    config.otlp.grpc.port = Some(4317);
    let mut found = Vec::new();
    leaves("", &serde_json::to_value(&config).unwrap(), &mut found);
    found.retain(|k| k != "retention.policies");
    found.sort();
    let mut listed: Vec<String> = env::KEY_PATHS.iter().map(|k| (*k).to_owned()).collect();
    listed.sort();
    assert_eq!(found, listed);
}

#[test]
fn missing_interpolated_variable_is_named() {
    let err = load(SEED_FILE, &[("JWT_SECRET", "s")]).unwrap_err();
    assert!(err.to_string().contains("CLICKHOUSE_USER"), "{err}");
}

#[test]
fn environment_overrides_in_both_forms() {
    let c = load(
        SEED_FILE,
        &[
            SEED_ENV[0],
            SEED_ENV[1],
            SEED_ENV[2],
            ("LUMINATE_SERVER_PORT", "9090"),
            ("LUMINATE_AUTH_JWT_SECRET", "from-env"),
            ("LUMINATE_STORAGE_BACKEND", "clickhouse"),
            ("LUMINATE_CLICKHOUSE_ADDRESSES", "host1:9000,host2:9000"),
            ("LUMINATE__STORAGE__EMBEDDED__DATA_DIR", "/srv/luminate"),
            ("LUMINATE__BATCH_WRITE__COMPRESSION", "false"),
            ("LUMINATE__LOGGING__LEVEL", "warn"),
        ],
    )
    .unwrap();
    assert_eq!(c.server.port, 9090);
    assert_eq!(c.auth.jwt_secret.as_deref(), Some("from-env"));
    assert_eq!(c.storage.backend, Backend::Clickhouse);
    assert_eq!(
        c.storage.clickhouse.addresses,
        vec!["host1:9000".to_owned(), "host2:9000".to_owned()]
    );
    assert_eq!(c.storage.embedded.data_dir, PathBuf::from("/srv/luminate"));
    assert!(!c.batch_write.compression);
    assert_eq!(c.logging.level, LogLevel::Warn);
    let no_file = Config::load_from(
        None,
        &vars(&[
            ("LUMINATE__SERVER__PORT", "7000"),
            ("LUMINATE_SERVER_HOST", "0.0.0.0"),
        ]),
    )
    .unwrap();
    assert_eq!(
        (no_file.server.host.as_str(), no_file.server.port),
        ("0.0.0.0", 7000)
    );
}

#[test]
fn unknown_keys_are_named() {
    let err = load_err("server:\n  prot: 1\n", &[]);
    assert!(err.contains("prot") && err.contains("server"), "{err}");
    let err = load_err("srever:\n  port: 1\n", &[]);
    assert!(err.contains("srever"), "{err}");
    let err = load_err(
        "retention:\n  policies:\n    - metric_pattern: a\n      retention: 1d\n      extra: 1\n",
        &[],
    );
    assert!(
        err.contains("extra") && err.contains("retention.policies"),
        "{err}"
    );
    let err = Config::load_from(None, &vars(&[("LUMINATE__SERVER__PROT", "1")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("LUMINATE__SERVER__PROT"), "{err}");
}

#[test]
fn service_links_wrapper_variables_and_single_underscore_typos_do_not_stop_loading() {
    let c = Config::load_from(
        None,
        &vars(&[
            ("LUMINATE_SERVICE_HOST", "10.0.0.7"),
            ("LUMINATE_SERVICE_PORT", "8080"),
            ("LUMINATE_PORT", "tcp://10.0.0.7:8080"),
            ("LUMINATE_PORT_8080_TCP", "tcp://10.0.0.7:8080"),
            ("LUMINATE_PORT_8080_TCP_ADDR", "10.0.0.7"),
            ("LUMINATE_PORT_8080_TCP_PORT", "8080"),
            ("LUMINATE_PORT_8080_TCP_PROTO", "tcp"),
            ("LUMINATE_BIN", "/usr/local/bin/luminate"),
            ("LUMINATE_DATA", "/srv/luminate"),
            ("LUMINATE_SERVER_PROT", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(c, Config::default());
}

#[test]
fn bad_durations_are_named() {
    let err = load_err("server:\n  read_timeout: \"30 seconds\"\n", &[]);
    assert!(
        err.contains("server.read_timeout") && err.contains("30 seconds"),
        "{err}"
    );
    let err = load_err(
        "retention:\n  policies:\n    - metric_pattern: a\n      retention: forever\n",
        &[],
    );
    assert!(err.contains("retention.policies[0].retention"), "{err}");
    let err = Config::load_from(None, &vars(&[("LUMINATE__VALIDATION__MAX_PAST", "0s")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("validation.max_past") && err.contains("LUMINATE__VALIDATION__MAX_PAST"),
        "{err}"
    );
}

#[test]
fn durations_too_long_to_represent_stop_start_up_naming_the_key() {
    // Every duration key, found from the defaults so that a key added later is covered too.
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let duration_keys: Vec<&str> = env::KEY_PATHS
        .iter()
        .copied()
        .filter(|key| {
            key.split('.')
                .try_fold(&defaults, |v, segment| v.get(segment))
                .and_then(serde_json::Value::as_str)
                .is_some_and(|text| luminate_model::time::parse_duration(text).is_ok())
        })
        .collect();
    assert!(
        duration_keys.contains(&"retention.default_retention") && duration_keys.len() >= 15,
        "{duration_keys:?}"
    );
    for key in duration_keys {
        let variable = format!("LUMINATE__{}", key.replace('.', "__").to_uppercase());
        for absurd in [
            "18446744073709551615s",
            // u64::MAX - 59 999: -60 s once taken as i64 milliseconds.
            "18446744073709491616ms",
            "99999999999999999999d",
            "36501d",
        ] {
            let err = Config::load_from(None, &vars(&[(&variable, absurd)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("`{key}`"))
                    && err.contains(&format!("duration \"{absurd}\" is longer than the maximum"))
                    && err.contains(&variable),
                "{key} = {absurd}: {err}"
            );
        }
    }
    let err = load_err(
        "retention:\n  policies:\n    - metric_pattern: a\n      retention: 18446744073709551615s\n",
        &[],
    );
    assert!(
        err.contains("retention.policies[0].retention") && err.contains("longer than the maximum"),
        "{err}"
    );
    let longest = load("retention:\n  default_retention: 36500d\n", &[]).unwrap();
    assert_eq!(
        longest.retention.default_retention,
        luminate_model::time::MAX_DURATION
    );
}

#[test]
fn bad_enum_values_are_named() {
    let err = load_err("logging:\n  format: xml\n", &[]);
    assert!(
        err.contains("logging.format") && err.contains("xml"),
        "{err}"
    );
    let err = load_err("storage:\n  backend: postgres\n", &[]);
    assert!(
        err.contains("storage.backend") && err.contains("postgres"),
        "{err}"
    );
    let err = load_err("storage:\n  embedded:\n    sync: sometimes\n", &[]);
    assert!(err.contains("storage.embedded.sync"), "{err}");
    let err = load_err("batch_write:\n  compression: zstd\n", &[]);
    assert!(err.contains("batch_write.compression"), "{err}");
}

#[test]
fn bad_types_and_ranges_are_named() {
    let err = Config::load_from(None, &vars(&[("LUMINATE_SERVER_PORT", "eighty")]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("server.port") && err.contains("LUMINATE_SERVER_PORT"),
        "{err}"
    );
    let err = load_err("server:\n  port: 70000\n", &[]);
    assert!(err.contains("server.port"), "{err}");
    let err = load_err("batch_write:\n  max_batch_size: 0\n", &[]);
    assert!(err.contains("batch_write.max_batch_size"), "{err}");
    let err = load_err("batch_write:\n  idempotency_key_ttl: 0s\n", &[]);
    assert!(err.contains("batch_write.idempotency_key_ttl"), "{err}");
    let err = load_err("batch_write:\n  idempotency_max_keys: 0\n", &[]);
    assert!(err.contains("batch_write.idempotency_max_keys"), "{err}");
    let c = load(
        "batch_write:\n  idempotency_key_ttl: 90s\n",
        &[("LUMINATE__BATCH_WRITE__IDEMPOTENCY_MAX_KEYS", "5")],
    )
    .unwrap();
    assert_eq!(
        (
            c.batch_write.idempotency_key_ttl,
            c.batch_write.idempotency_max_keys
        ),
        (std::time::Duration::from_secs(90), 5)
    );
    let err = load_err("query_limits:\n  default_query_timeout: 1m\n", &[]);
    assert!(err.contains("query_limits.default_query_timeout"), "{err}");
    let err = load_err("query_limits:\n  memory_budget_bytes: 65536\n", &[]);
    assert!(
        err.contains("query_limits.memory_budget_bytes") && err.contains("1 MiB"),
        "{err}"
    );
    let err = load_err(
        "retention:\n  policies:\n    - metric_pattern: \"[\"\n      retention: 1d\n",
        &[],
    );
    assert!(err.contains("metric_pattern"), "{err}");
    let err = load_err("server: 5\n", &[]);
    assert!(err.contains("server"), "{err}");
}

#[test]
fn enabling_auth_needs_a_key() {
    let c = load("auth:\n  enabled: true\n  jwt_secret: abc\n", &[]).unwrap();
    assert!(c.auth.enabled);
    let err = load_err("auth:\n  enabled: true\n", &[]);
    assert_eq!(
        err,
        "invalid configuration: auth.enabled: requires auth.jwt_secret or auth.jwt_public_key_path. \
         Set a secret (LUMINATE_AUTH_JWT_SECRET=...) or a public key \
         (LUMINATE_AUTH_JWT_PUBLIC_KEY_PATH=...); or, if open access without authentication is intended, \
         set auth.enabled: false (LUMINATE_AUTH_ENABLED=false) and, on a network address, \
         server.allow_unauthenticated_network: true (LUMINATE_SERVER_ALLOW_UNAUTHENTICATED_NETWORK=true)"
    );
}

#[test]
fn documented_example_file_is_exactly_the_defaults() {
    // examples/luminate.yaml documents every key with its default: it must load and change nothing.
    let example = include_str!("../../../../examples/luminate.yaml");
    assert_eq!(
        load(example, &[]).unwrap(),
        Config::load_from(None, &[]).unwrap()
    );
}

#[test]
fn clickhouse_section_from_file_and_both_environment_forms() {
    let c = load(
        r#"
storage:
  backend: clickhouse
  clickhouse:
    addresses: ["ch1:8123", "http://ch2:8123"]
    database: metrics
    cluster: two_shards
    connect_timeout: 500ms
    request_timeout: 10s
    breaker_failure_threshold: 3
    breaker_cool_down: 1s
    max_response_bytes: 1048576
"#,
        &[
            ("LUMINATE_CLICKHOUSE_USERNAME", "lum"),
            ("LUMINATE__STORAGE__CLICKHOUSE__PASSWORD", "pw"),
            ("LUMINATE_CLICKHOUSE_BREAKER_COOL_DOWN", "2s"),
            (
                "LUMINATE__STORAGE__CLICKHOUSE__DIMENSION_COLUMNS",
                "customer_id,region",
            ),
            (
                "LUMINATE__STORAGE__CLICKHOUSE__SORT_DIMENSIONS",
                "customer_id",
            ),
            ("LUMINATE__STORAGE__CLICKHOUSE__TTL", "45d"),
        ],
    )
    .unwrap();
    let ch = &c.storage.clickhouse;
    assert_eq!(ch.dimension_columns, ["customer_id", "region"]);
    assert_eq!(ch.sort_dimensions, ["customer_id"]);
    assert_eq!(ch.ttl, Some(Duration::from_secs(45 * 86_400)));
    assert_eq!(c.storage.backend, Backend::Clickhouse);
    assert_eq!(ch.addresses, ["ch1:8123", "http://ch2:8123"]);
    assert_eq!(ch.cluster.as_deref(), Some("two_shards"));
    assert_eq!((ch.username.as_str(), ch.password.as_str()), ("lum", "pw"));
    assert_eq!(ch.connect_timeout, Duration::from_millis(500));
    assert_eq!(ch.request_timeout, Duration::from_secs(10));
    assert_eq!(ch.breaker_failure_threshold, 3);
    assert_eq!(
        ch.breaker_cool_down,
        Duration::from_secs(2),
        "the environment wins"
    );
    assert_eq!(ch.max_response_bytes, 1 << 20);
    let c = Config::load_from(
        None,
        &vars(&[("LUMINATE__STORAGE__CLICKHOUSE__CLUSTER", "c1")]),
    )
    .unwrap();
    assert_eq!(c.storage.clickhouse.cluster.as_deref(), Some("c1"));
}

#[test]
fn clickhouse_port_9000_and_approximate_limits_are_warned_about() {
    let c = load(
        "storage:\n  backend: clickhouse\n  clickhouse:\n    addresses: [\"ch:9000\"]\n",
        &[],
    )
    .unwrap();
    let warnings = c.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("ch:9000") && warnings[0].contains("HTTP"));
    assert!(warnings[1].contains("enforced approximately on the ClickHouse backend"));
    // The embedded backend does not use the section: nothing to say.
    let c = load(
        "storage:\n  clickhouse:\n    addresses: [\"ch:9000\"]\n",
        &[],
    )
    .unwrap();
    assert!(c.warnings().is_empty());
}

#[cfg(feature = "clickhouse")]
#[test]
fn clickhouse_defaults_are_the_backends_and_bad_values_are_named() {
    assert_eq!(
        ClickhouseConfig::default().settings(),
        luminate_clickhouse::ClickhouseSettings::default()
    );
    let err = Config::load_from(
        None,
        &vars(&[("LUMINATE_CLICKHOUSE_ADDRESSES", "ch1:8123,ch2")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("storage.clickhouse.addresses") && err.contains("\"ch2\" is not host:port"),
        "{err}"
    );
    let err = load_err(
        "storage:\n  clickhouse:\n    addresses: [\"https://ch:8443\"]\n",
        &[],
    );
    assert!(
        err.contains("storage.clickhouse.addresses") && err.contains("https"),
        "{err}"
    );
    let err = load_err("storage:\n  clickhouse:\n    request_timeout: 0s\n", &[]);
    assert!(err.contains("storage.clickhouse.request_timeout"), "{err}");
    let err = load_err("storage:\n  clickhouse:\n    cluster: \"\"\n", &[]);
    assert!(err.contains("storage.clickhouse.cluster"), "{err}");
    let err = load_err(
        "storage:\n  clickhouse:\n    breaker_failure_threshold: 0\n",
        &[],
    );
    assert!(
        err.contains("storage.clickhouse.breaker_failure_threshold"),
        "{err}"
    );
    let err = load_err("storage:\n  clickhouse:\n    connect_timeout: soon\n", &[]);
    assert!(err.contains("storage.clickhouse.connect_timeout"), "{err}");
}

#[test]
fn metrics_exposure_settings() {
    let c = load(
        "metrics:\n  bearer_token: scrape\n  listen: \"127.0.0.1:9100\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.metrics.bearer_token.as_deref(), Some("scrape"));
    let err = load_err("metrics:\n  listen: \"9100\"\n", &[]);
    assert!(err.contains("metrics.listen"), "{err}");
    let err = load_err("metrics:\n  bearer_token: \"\"\n", &[]);
    assert!(err.contains("metrics.bearer_token"), "{err}");
}

#[test]
fn health_thresholds_from_file_and_environment() {
    let c = load(
        "health:\n  min_free_disk_bytes: 0\n  min_free_disk_ratio: 0.2\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        c.health,
        HealthConfig {
            min_free_disk_bytes: 0,
            min_free_disk_ratio: 0.2
        }
    );
    let c = Config::load_from(
        None,
        &vars(&[
            ("LUMINATE_HEALTH_MIN_FREE_DISK_BYTES", "5000"),
            ("LUMINATE__HEALTH__MIN_FREE_DISK_RATIO", "1"),
        ]),
    )
    .unwrap();
    assert_eq!(
        c.health,
        HealthConfig {
            min_free_disk_bytes: 5000,
            min_free_disk_ratio: 1.0
        }
    );
    for bad in ["1.5", "-0.1"] {
        let err = load_err(&format!("health:\n  min_free_disk_ratio: {bad}\n"), &[]);
        assert_eq!(
            err,
            format!(
                "invalid configuration: health.min_free_disk_ratio: {bad} is outside 0..=1 (a share of the filesystem's size)"
            )
        );
    }
    let err = load_err("health:\n  min_free_disk: 1\n", &[]);
    assert!(
        err.contains("min_free_disk") && err.contains("health"),
        "{err}"
    );
}

#[test]
fn rate_limits_left_unset_apply_only_with_auth() {
    // Unset: the seed's per-tenant quotas with auth enabled, none in protected mode.
    let c = load("", &[]).unwrap();
    assert_eq!(c.rate_limits.active(true), Quotas::SEED);
    assert_eq!(
        Quotas::SEED.keyed(),
        [
            ("write_requests_per_second", Some(100)),
            ("query_requests_per_second", Some(50)),
            ("metrics_per_second", Some(10_000)),
            ("concurrent_queries", Some(10)),
        ]
    );
    assert_eq!(c.rate_limits.active(false), Quotas::NONE);
    assert_eq!(
        c.rate_limit_summary(),
        "rate limits: off (auth disabled; set rate_limits.* to enable)"
    );

    // A key set in the file or the environment applies in both modes; the others keep the mode's default.
    let c = load(
        "rate_limits:\n  metrics_per_second: 500\n",
        &[("LUMINATE__RATE_LIMITS__CONCURRENT_QUERIES", "4")],
    )
    .unwrap();
    let protected = Quotas {
        metrics_per_second: Some(500),
        concurrent_queries: Some(4),
        ..Quotas::NONE
    };
    assert_eq!(c.rate_limits.active(false), protected);
    assert_eq!(
        c.rate_limit_summary(),
        "rate limits per tenant: write_requests_per_second=off query_requests_per_second=off \
         metrics_per_second=500 concurrent_queries=4"
    );
    assert_eq!(
        c.rate_limits.active(true),
        Quotas {
            metrics_per_second: Some(500),
            concurrent_queries: Some(4),
            ..Quotas::SEED
        }
    );

    // With auth enabled and nothing set, the log names the seed's numbers.
    let c = load(
        "auth:\n  enabled: true\n  jwt_secret: s\nrate_limits:\n  tenants:\n    acme:\n      metrics_per_second: 50000\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        c.rate_limit_summary(),
        "rate limits per tenant: write_requests_per_second=100 query_requests_per_second=50 \
         metrics_per_second=10000 concurrent_queries=10; overrides for 1 tenant(s) in rate_limits.tenants"
    );

    // Zero is refused whether the key is a default or an override.
    assert_eq!(
        load_err(
            "",
            &[("LUMINATE_RATE_LIMITS_WRITE_REQUESTS_PER_SECOND", "0")]
        ),
        "invalid configuration: rate_limits.write_requests_per_second: must be at least 1"
    );
}

#[test]
fn connection_limits_from_file_and_environment() {
    let d = Config::default().server;
    assert_eq!(d.max_connections, None, "derived from the open-file limit");
    assert_eq!(d.header_read_timeout, Duration::from_secs(10));
    assert_eq!(d.idle_timeout, Duration::from_secs(60));
    let c = Config::load_from(
        None,
        &vars(&[
            ("LUMINATE_SERVER_MAX_CONNECTIONS", "50"),
            ("LUMINATE__SERVER__HEADER_READ_TIMEOUT", "1s"),
            ("LUMINATE_SERVER_IDLE_TIMEOUT", "500ms"),
        ]),
    )
    .unwrap();
    assert_eq!(c.server.max_connections, Some(50));
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(1));
    assert_eq!(c.server.idle_timeout, Duration::from_millis(500));
    assert_eq!(
        load_err("server:\n  max_connections: 0\n", &[]),
        "invalid configuration: server.max_connections: must be at least 1"
    );
    for key in ["header_read_timeout", "idle_timeout"] {
        let err = load_err(&format!("server:\n  {key}: 0s\n"), &[]);
        assert!(err.contains(&format!("server.{key}")), "{err}");
    }
    let err = load_err("server:\n  max_connections: -5\n", &[]);
    assert!(err.contains("server.max_connections"), "{err}");
}

#[test]
fn rate_limit_overrides_per_tenant() {
    let c = load(
        "rate_limits:\n  tenants:\n    acme:\n      metrics_per_second: 50000\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        c.rate_limits.tenants["acme"].metrics_per_second,
        Some(50_000)
    );
    assert_eq!(c.rate_limits.tenants["acme"].concurrent_queries, None);
    let err = load_err(
        "rate_limits:\n  tenants:\n    acme:\n      concurrent_queries: 0\n",
        &[],
    );
    assert!(
        err.contains("rate_limits.tenants.acme.concurrent_queries"),
        "{err}"
    );
    let err = load_err("rate_limits:\n  tenants:\n    acme:\n      burst: 3\n", &[]);
    assert!(err.contains("burst"), "{err}");
}

#[test]
fn protected_mode_refuses_open_addresses_without_auth() {
    let mut c = Config::default();
    for host in ["127.0.0.1", "::1", "localhost", "127.0.0.53"] {
        c.server.host = host.into();
        assert!(c.check_exposure().is_ok(), "{host}");
    }
    for host in ["0.0.0.0", "::", "10.0.0.1", "example.com"] {
        c.server.host = host.into();
        let err = c.check_exposure().unwrap_err().to_string();
        assert!(
            err.contains("server.allow_unauthenticated_network"),
            "{err}"
        );
    }
    c.server.allow_unauthenticated_network = true;
    assert!(c.check_exposure().is_ok());
    c.server.allow_unauthenticated_network = false;
    c.auth.enabled = true;
    c.auth.jwt_secret = Some("s".into());
    assert!(c.check_exposure().is_ok());
}

#[test]
fn protected_mode_refuses_an_open_metrics_address_without_a_token() {
    let mut c = Config::default();
    c.auth.enabled = true;
    c.auth.jwt_secret = Some("s".into());
    c.metrics.listen = Some("127.0.0.1:9100".into());
    assert!(c.check_exposure().is_ok());
    c.metrics.listen = Some("[::1]:9100".into());
    assert!(c.check_exposure().is_ok());
    // A JWT does not guard the exposition: auth alone is not enough for a network address.
    c.metrics.listen = Some("0.0.0.0:9100".into());
    let err = c.check_exposure().unwrap_err().to_string();
    assert!(err.contains("metrics.listen"), "{err}");
    assert!(err.contains("metrics.bearer_token"), "{err}");
    c.metrics.bearer_token = Some("t".into());
    assert!(c.check_exposure().is_ok());
    c.metrics.bearer_token = None;
    c.server.allow_unauthenticated_network = true;
    assert!(c.check_exposure().is_ok());
    c.server.allow_unauthenticated_network = false;
    c.metrics.enabled = false;
    assert!(c.check_exposure().is_ok());
}

#[test]
fn the_query_memory_budget_defaults_to_a_gibibyte_and_the_environment_sets_it() {
    let defaults = Config::default().query_limits;
    assert_eq!(
        (defaults.memory_budget_bytes, defaults.memory_wait),
        (1 << 30, Duration::from_secs(5))
    );
    let c = load(
        "query_limits:\n  memory_wait: 250ms\n",
        &[("LUMINATE__QUERY_LIMITS__MEMORY_BUDGET_BYTES", "67108864")],
    )
    .unwrap();
    assert_eq!(
        (
            c.query_limits.memory_budget_bytes,
            c.query_limits.memory_wait
        ),
        (64 << 20, Duration::from_millis(250))
    );
}

#[test]
fn dashboards_bounds_from_the_file_and_the_environment_and_their_checks() {
    let c = load(
        "dashboards: {max_body_bytes: 4096, max_panels: 12}\n",
        &[("LUMINATE_DASHBOARDS_MAX_PER_TENANT", "3")],
    )
    .unwrap();
    assert_eq!(
        c.dashboards,
        DashboardsConfig {
            max_body_bytes: 4096,
            max_panels: 12,
            max_per_tenant: 3
        }
    );
    assert_eq!(
        Config::default().dashboards,
        DashboardsConfig {
            max_body_bytes: 1 << 20,
            max_panels: 100,
            max_per_tenant: 1_000
        }
    );
    for (yaml, key) in [
        ("dashboards: {max_panels: 0}\n", "dashboards.max_panels"),
        (
            "dashboards: {max_per_tenant: 0}\n",
            "dashboards.max_per_tenant",
        ),
        (
            "dashboards: {max_body_bytes: 10}\n",
            "dashboards.max_body_bytes",
        ),
    ] {
        let err = load_err(yaml, &[]);
        assert!(err.contains(key), "{yaml}: {err}");
    }
}

#[test]
fn otlp_promoted_resource_attributes_default_to_the_service_and_host_and_take_a_list() {
    let c = load("", &[]).unwrap();
    assert_eq!(
        c.otlp.promote_resource_attributes,
        [
            "service.name",
            "service.namespace",
            "deployment.environment",
            "host.name"
        ]
    );
    let c = load(
        "otlp:\n  promote_resource_attributes: [\"k8s.pod.name\"]\n",
        &[],
    )
    .unwrap();
    assert_eq!(c.otlp.promote_resource_attributes, ["k8s.pod.name"]);
    let c = load(
        "",
        &[(
            "LUMINATE__OTLP__PROMOTE_RESOURCE_ATTRIBUTES",
            "service.name, team",
        )],
    )
    .unwrap();
    assert_eq!(c.otlp.promote_resource_attributes, ["service.name", "team"]);
}

#[test]
fn otlp_grpc_listens_on_4317_unless_set_disabled_or_the_api_port_is_os_chosen() {
    let c = load("", &[]).unwrap();
    assert!(c.otlp.grpc.enabled);
    assert_eq!(c.otlp_grpc_port(), 4317);
    assert_eq!(c.otlp.grpc.max_concurrent_streams, 16);
    let c = load("server:\n  port: 0\n", &[]).unwrap();
    assert_eq!(c.otlp_grpc_port(), 0);
    let c = load("server:\n  port: 0\notlp:\n  grpc:\n    port: 4400\n", &[]).unwrap();
    assert_eq!(c.otlp_grpc_port(), 4400);
    let c = load(
        "",
        &[
            ("LUMINATE_OTLP_GRPC_PORT", "4318"),
            ("LUMINATE_OTLP_GRPC_ENABLED", "false"),
            ("LUMINATE__OTLP__GRPC__MAX_CONCURRENT_STREAMS", "4"),
        ],
    )
    .unwrap();
    assert_eq!(c.otlp_grpc_port(), 4318);
    assert!(!c.otlp.grpc.enabled);
    assert_eq!(c.otlp.grpc.max_concurrent_streams, 4);
    let err = load("otlp:\n  grpc:\n    max_concurrent_streams: 0\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("otlp.grpc.max_concurrent_streams"), "{err}");
}

#[test]
fn a_clickhouse_ttl_must_be_at_least_every_retention() {
    let load = |yaml: &str| Config::load_from(Some(("t.yaml", yaml)), &[]);
    assert_eq!(Config::default().storage.clickhouse.ttl, None);
    let c = load("storage: {clickhouse: {ttl: 30d}}\n").unwrap();
    assert_eq!(
        c.storage.clickhouse.ttl,
        Some(Duration::from_secs(30 * 86_400)),
        "the default retention, 30 days, fits"
    );
    let err = load("storage: {clickhouse: {ttl: 5d}}\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: storage.clickhouse.ttl: 5d is shorter than \
         retention.default_retention, 30d: ClickHouse would delete points that retention keeps. Set \
         it to at least the longest retention, or leave it unset"
    );
    let policy = "retention:\n  default_retention: 7d\n  policies:\n    - metric_pattern: \"billing_*\"\n      retention: 400d\n";
    let err = load(&format!("{policy}storage: {{clickhouse: {{ttl: 30d}}}}\n")).unwrap_err();
    assert!(
        err.to_string()
            .contains("30d is shorter than retention.policies (billing_*), 400d"),
        "{err}"
    );
    assert!(load(&format!("{policy}storage: {{clickhouse: {{ttl: 400d}}}}\n")).is_ok());
    let err = load("storage: {clickhouse: {ttl: soon}}\n").unwrap_err();
    assert!(err.to_string().contains("storage.clickhouse.ttl"), "{err}");
}
