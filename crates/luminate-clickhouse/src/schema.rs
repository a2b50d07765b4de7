//! Luminate's tables in ClickHouse: their DDL, the server features they depend on, and the check that
//! an existing table has the columns the backend reads and writes.
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS `luminate`.points (
//!     tenant     String,        -- LowCardinality(String) on servers >= 20.1
//!     metric     String,        -- LowCardinality(String) on servers >= 20.1
//!     series     UInt64 DEFAULT cityHash64(dim_keys, dim_values),
//!     timestamp  Int64,         -- Unix ms
//!     value      Float64,
//!     dim_keys   Array(String), -- sorted by key, as `Dimensions` keeps them
//!     dim_values Array(String), -- dim_values[i] belongs to dim_keys[i]
//!     write_id   UInt64         -- one random id per `write` call (see `write`)
//!     -- servers >= 20.1: INDEX dim_values_bloom dim_values TYPE bloom_filter(0.01) GRANULARITY 4
//!     -- storage.clickhouse.rollups (servers >= 23.8): PROJECTION luminate_hourly (see `rollups`)
//! ) ENGINE = MergeTree()
//! PARTITION BY intDiv(timestamp, 86400000)   -- one partition per UTC day (days since the epoch)
//! ORDER BY (tenant, metric, series, timestamp)
//! SETTINGS index_granularity = 1024;
//!
//! CREATE TABLE IF NOT EXISTS `luminate`.retention_overrides (
//!     tenant String, metric String, retention_ns UInt64, version UInt64
//! ) ENGINE = ReplacingMergeTree(version) ORDER BY (tenant, metric);
//!
//! CREATE TABLE IF NOT EXISTS `luminate`.dashboards (
//!     tenant String, id String, written UInt64, deleted UInt8, document String
//! ) ENGINE = ReplacingMergeTree(written) ORDER BY (tenant, id);
//! ```
//!
//! With a `cluster` (two or more shards), each node holds `points_local` and
//! `retention_overrides_local` with the DDL above, and `points` / `retention_overrides` are
//! `Distributed` tables over them (sharded by `series`, so a series lives on one shard), created on
//! every node so that any node can take a query or an insert. Every statement of the backend reads and
//! writes the `Distributed` tables, except deletes, which are mutations of the local tables on each
//! node (a `Distributed` table cannot be altered). 18.16 creates tables `ON CLUSTER` only through
//! ZooKeeper, so the backend runs the DDL on each configured address itself.
//!
//! The sort key puts a tenant's metric's series together and each series' points in time order, so a
//! query reads one contiguous key range per (tenant, metric) and the per-series arrays of rate and
//! integral are built from adjacent rows. `series` is computed by ClickHouse on insert, so every writer
//! agrees on it. Dimensions are parallel arrays rather than `Map` (absent before 21.x), which also lets
//! one statement read a dimension as `dim_values[indexOf(dim_keys, 'k')]`: `''` when the key is
//! missing, exactly the contract's rule; keys configured as dimension columns (`crate::columns`) are
//! also read from a column of their own. `retention_overrides` keeps every `set_retention` as a row; the
//! newest `version` (nanoseconds since the epoch) wins, on read and, eventually, on merge.

use std::time::Duration;

use luminate_model::StoreError;

use crate::rowbinary::RowReader;
use crate::service::Service;
use crate::sql::{quote, quote_ident};

/// Milliseconds of one partition (a UTC day).
pub const DAY_MS: i64 = 86_400_000;

/// Rows per granule of the points table (ClickHouse's default is 8 192). One customer's points are ~170
/// series, each a few rows somewhere in the sort key, and every granule holding one is read whole: at
/// 1 024 rows such a filter reads 8× fewer rows (one customer of the benchmark's data: 0.22 → 0.07 s,
/// when its series are known), while scans measured the same; the index grows to one mark per 1 024
/// rows, 11 000 for 11 M points.
pub const INDEX_GRANULARITY: u32 = 1024;

/// `major.minor.patch` of the server, from `SELECT version()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    /// Major (the year since 18.x).
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl ServerVersion {
    /// Parses `18.16.1` or `23.8.2.7` (extra parts ignored).
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
        Some(Self {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next().flatten().unwrap_or(0),
        })
    }

    fn at_least(self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// What the backend may use on this server.
    pub fn features(self) -> Features {
        Features {
            // Skip indexes and LowCardinality left their experimental flags in 19.x; from 20.1 on they
            // need no setting at all.
            skip_indexes: self.at_least(20, 1),
            low_cardinality: self.at_least(20, 1),
            // Before 19.11, a query keeps running when its HTTP client goes away (KILL QUERY is then
            // the only way to stop it, which the backend always does as well).
            cancel_on_client_close: self.at_least(19, 11),
            // TTL came in 19.6; removing one (`REMOVE TTL`) and `MODIFY SETTING` are verified from
            // 20.1 on only through chDB 26 (docs/clickhouse.md), and 18.16 has none of them.
            ttl: self.at_least(20, 1),
            // Projections came in 21.6 as an experiment and were used by default from 22.x on; 23.8
            // (LTS) is the first release the backend takes them from. Verified through chDB 26 only.
            projections: self.at_least(23, 8),
        }
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Optional server features the backend uses when present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// A bloom-filter skip index on dimension values (used by filters through `has(dim_values, v)`).
    pub skip_indexes: bool,
    /// `LowCardinality(String)` for the tenant and metric columns.
    pub low_cardinality: bool,
    /// The `cancel_http_readonly_queries_on_client_close` setting.
    pub cancel_on_client_close: bool,
    /// A table TTL, to delete expired points in merges (`storage.clickhouse.ttl`).
    pub ttl: bool,
    /// Aggregate projections, for the hourly rollups (`storage.clickhouse.rollups`).
    pub projections: bool,
}

/// Columns of `points` and their types as `system.columns` shows them, in insert order where written.
pub const POINT_COLUMNS: [(&str, &str); 8] = [
    ("tenant", "String"),
    ("metric", "String"),
    ("series", "UInt64"),
    ("timestamp", "Int64"),
    ("value", "Float64"),
    ("dim_keys", "Array(String)"),
    ("dim_values", "Array(String)"),
    ("write_id", "UInt64"),
];

/// The columns an insert names (all but `series`, which ClickHouse computes).
pub const INSERT_COLUMNS: &str =
    "(tenant, metric, timestamp, value, dim_keys, dim_values, write_id)";

/// Names of Luminate's tables in one database.
#[derive(Debug, Clone)]
pub struct Tables {
    /// The database, as given.
    pub database: String,
    /// The cluster, when the tables are distributed.
    pub cluster: Option<String>,
    /// `` `db`.points ``: what every read and insert names.
    pub points: String,
    /// `` `db`.retention_overrides ``.
    pub retention: String,
    /// `` `db`.dashboards ``.
    pub dashboards: String,
    /// Name (unqualified) of the `MergeTree` table holding the points: `points`, or `points_local` on
    /// each node of a cluster. Deletes mutate it.
    pub points_storage: &'static str,
    /// Dimension keys with a column of their own on the points table (`dim__<key>`, computed from the
    /// arrays on insert; see `crate::columns`), sorted. Group-bys and filters on them read the column.
    pub dimension_columns: Vec<String>,
    /// Dimension keys put in the points table's sort key after the metric, in order, when the table is
    /// created (each also has a dimension column). A table created otherwise keeps its key.
    pub sort_dimensions: Vec<String>,
    /// The points table's TTL (`storage.clickhouse.ttl`, see `ttl`), when set.
    pub ttl: Option<Duration>,
    /// Whether the points table keeps hourly rollups (`storage.clickhouse.rollups`, see `rollups`).
    pub rollups: bool,
}

impl Tables {
    /// The tables of `database`, distributed over `cluster` when given, with a column of their own for
    /// each of `dimension_columns` (dimension keys).
    pub fn new(database: &str, cluster: Option<&str>, dimension_columns: &[String]) -> Self {
        let db = quote_ident(database);
        let mut dimension_columns = dimension_columns.to_vec();
        dimension_columns.sort();
        dimension_columns.dedup();
        Self {
            dimension_columns,
            sort_dimensions: Vec::new(),
            ttl: None,
            rollups: false,
            database: database.to_owned(),
            cluster: cluster.map(str::to_owned),
            points: format!("{db}.points"),
            retention: format!("{db}.retention_overrides"),
            dashboards: format!("{db}.dashboards"),
            points_storage: if cluster.is_some() {
                "points_local"
            } else {
                "points"
            },
        }
    }

    fn qualified(&self, name: &str) -> String {
        format!("{}.{name}", quote_ident(&self.database))
    }

    /// `` `db`.points `` or `` `db`.points_local ``.
    pub fn points_storage_table(&self) -> String {
        self.qualified(self.points_storage)
    }

    /// These tables with `keys` in the points table's sort key (see [`Tables::sort_dimensions`]);
    /// each gets a dimension column too.
    #[must_use]
    pub fn with_sort_dimensions(mut self, keys: &[String]) -> Self {
        for key in keys {
            if !self.sort_dimensions.contains(key) {
                self.sort_dimensions.push(key.clone());
            }
        }
        self.dimension_columns.extend(keys.iter().cloned());
        self.dimension_columns.sort();
        self.dimension_columns.dedup();
        self
    }

    /// These tables with the points table's TTL (see the `ttl` module).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// These tables with hourly rollups on the points table (see the `rollups` module).
    #[must_use]
    pub fn with_rollups(mut self, rollups: bool) -> Self {
        self.rollups = rollups;
        self
    }

    /// Whether `key` has a dimension column.
    pub fn has_dimension_column(&self, key: &str) -> bool {
        self.dimension_columns
            .binary_search_by(|k| k.as_str().cmp(key))
            .is_ok()
    }

    /// A dimension's value on the points table: its column when it has one, else read from the arrays
    /// (the same value either way: `''` when the point lacks the key).
    pub fn dimension(&self, key: &str) -> String {
        if self.has_dimension_column(key) {
            quote_ident(&crate::columns::name(key))
        } else {
            crate::filters::from_arrays(key)
        }
    }

    /// The statements that create everything on one node, in order, each idempotent.
    pub fn create_all(&self, features: Features) -> Vec<String> {
        let (retention_storage, dashboards_storage) = match self.cluster {
            Some(_) => (
                self.qualified("retention_overrides_local"),
                self.qualified("dashboards_local"),
            ),
            None => (self.retention.clone(), self.dashboards.clone()),
        };
        let mut ddl = vec![
            format!(
                "CREATE DATABASE IF NOT EXISTS {}",
                quote_ident(&self.database)
            ),
            self.create_points(features),
            format!(
                "CREATE TABLE IF NOT EXISTS {retention_storage} (tenant String, metric String, \
                 retention_ns UInt64, version UInt64) ENGINE = ReplacingMergeTree(version) \
                 ORDER BY (tenant, metric)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {dashboards_storage} (tenant String, id String, \
                 written UInt64, deleted UInt8, document String) \
                 ENGINE = ReplacingMergeTree(written) ORDER BY (tenant, id)"
            ),
        ];
        if let Some(cluster) = &self.cluster {
            let distributed = |table: &str, local: &str, sharding: &str| {
                format!(
                    "CREATE TABLE IF NOT EXISTS {} AS {} ENGINE = Distributed({}, {}, {}, {sharding})",
                    table,
                    self.qualified(local),
                    quote(cluster),
                    quote(&self.database),
                    quote(local),
                )
            };
            ddl.push(distributed(&self.points, "points_local", "series"));
            ddl.push(distributed(
                &self.retention,
                "retention_overrides_local",
                "cityHash64(tenant, metric)",
            ));
            ddl.push(distributed(
                &self.dashboards,
                "dashboards_local",
                "cityHash64(tenant, id)",
            ));
        }
        ddl
    }

    /// `CREATE TABLE IF NOT EXISTS` for the table holding the points, with its dimension columns and
    /// the sort dimensions in its key.
    pub fn create_points(&self, features: Features) -> String {
        let name_type = name_type(features);
        let index = if features.skip_indexes {
            ",\n    INDEX dim_values_bloom dim_values TYPE bloom_filter(0.01) GRANULARITY 4"
        } else {
            ""
        };
        let columns: String = self
            .dimension_columns
            .iter()
            .map(|key| format!(",\n    {}", crate::columns::definition(key)))
            .collect();
        let projection = if self.rollups {
            format!(",\n    {}", crate::rollups::definition())
        } else {
            String::new()
        };
        let sort: String = self
            .sort_dimensions
            .iter()
            .map(|key| format!("{}, ", quote_ident(&crate::columns::name(key))))
            .collect();
        format!(
            "CREATE TABLE IF NOT EXISTS {} (\n    \
             tenant {name_type},\n    \
             metric {name_type},\n    \
             series UInt64 DEFAULT cityHash64(dim_keys, dim_values),\n    \
             timestamp Int64,\n    \
             value Float64,\n    \
             dim_keys Array(String),\n    \
             dim_values Array(String),\n    \
             write_id UInt64{columns}{index}{projection}\n\
             ) ENGINE = MergeTree()\n\
             PARTITION BY intDiv(timestamp, {DAY_MS})\n\
             ORDER BY (tenant, metric, {sort}series, timestamp)\n\
             {ttl}SETTINGS index_granularity = {INDEX_GRANULARITY}{ttl_settings}",
            self.points_storage_table(),
            ttl = self
                .ttl
                .map(|ttl| format!("{}\n", crate::ttl::clause(ttl)))
                .unwrap_or_default(),
            ttl_settings = if self.ttl.is_some() {
                crate::ttl::TABLE_SETTINGS
            } else {
                ""
            },
        )
    }

    /// The columns of the points table as ClickHouse knows them (name, type).
    pub fn describe_points(&self) -> String {
        format!(
            "SELECT name, type FROM system.columns WHERE database = {} AND table = 'points' \
             FORMAT RowBinary",
            quote(&self.database)
        )
    }
}

/// The type of the tenant and metric columns.
fn name_type(features: Features) -> &'static str {
    if features.low_cardinality {
        "LowCardinality(String)"
    } else {
        "String"
    }
}

/// Why an existing points table cannot be used, if it cannot: each expected column must exist with its
/// type (`LowCardinality(String)` counts as `String`).
pub fn incompatibility(found: &[(String, String)]) -> Option<String> {
    let missing: Vec<String> = POINT_COLUMNS
        .iter()
        .filter(|(name, ty)| {
            !found.iter().any(|(n, t)| {
                n == name && (t == ty || (*ty == "String" && t == "LowCardinality(String)"))
            })
        })
        .map(|(name, ty)| format!("{name} {ty}"))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the existing points table lacks the columns {} (it was not created by this version of \
             Luminate; use another database or migrate it)",
            missing.join(", ")
        )
    })
}

/// Creates the database and tables if missing (on every node of a cluster), checks that an existing
/// points table fits, and adds the configured dimension columns it lacks. Every statement is
/// idempotent, so concurrent Luminate instances may all run it.
pub async fn ensure(service: &Service) -> Result<(), SchemaError> {
    let tables = &service.tables;
    crate::ttl::check_supported(service)?;
    crate::rollups::check_supported(service)?;
    for ddl in tables.create_all(service.features) {
        if tables.cluster.is_some() {
            service.run_on_each(&ddl).await.map(drop)
        } else {
            service.run(&ddl).await.map(drop)
        }
        .map_err(SchemaError::Statement)?;
    }
    let body = service
        .run(&tables.describe_points())
        .await
        .map_err(SchemaError::Statement)?;
    let mut r = RowReader::new(&body);
    let mut found = Vec::new();
    while !r.is_empty() {
        let decoded = r.string().and_then(|name| Ok((name, r.string()?)));
        found.push(decoded.map_err(|e| {
            SchemaError::Statement(StoreError::Internal {
                message: e.to_string(),
            })
        })?);
    }
    if let Some(why) = incompatibility(&found) {
        return Err(SchemaError::Incompatible(why));
    }
    crate::columns::ensure(service)
        .await
        .map_err(SchemaError::Statement)?;
    crate::ttl::ensure(service).await?;
    crate::rollups::ensure(service).await
}

/// One column of the points table's row in `system.tables` on `node` (`engine_full`,
/// `create_table_query`): what `ttl` and `rollups` compare with the configuration.
pub(crate) async fn points_table_text(
    service: &Service,
    node: Option<usize>,
    column: &str,
) -> Result<String, SchemaError> {
    let tables = &service.tables;
    let describe = format!(
        "SELECT {column} FROM system.tables WHERE database = {} AND name = {} FORMAT RowBinary",
        quote(&tables.database),
        quote(tables.points_storage)
    );
    let body = service
        .run_on_node(node, &describe, service.request_timeout)
        .await
        .map_err(SchemaError::Statement)?;
    let text = RowReader::new(&body).string().map_err(|e| {
        SchemaError::Statement(StoreError::Internal {
            message: e.to_string(),
        })
    })?;
    Ok(text.to_owned())
}

/// Runs `statements` (alterations of the points table) on `node`, each logged as bringing the table to
/// the configuration's `setting`.
pub(crate) async fn alter_points_table(
    service: &Service,
    node: Option<usize>,
    statements: &[String],
    setting: &str,
) -> Result<(), SchemaError> {
    for sql in statements {
        tracing::info!(sql, "bringing the points table to {setting}");
        service
            .run_on_node(node, sql, service.request_timeout)
            .await
            .map_err(SchemaError::Statement)?;
    }
    Ok(())
}

/// Why the schema could not be put in place.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemaError {
    /// A DDL or catalogue statement failed.
    #[error("creating Luminate's tables failed: {0}")]
    Statement(StoreError),
    /// The points table exists with other columns.
    #[error("{0}")]
    Incompatible(String),
    /// The configuration asks for what this server does not have.
    #[error("{0}")]
    Unsupported(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_gate_features() {
        let v = ServerVersion::parse("18.16.1").unwrap();
        assert_eq!(v.to_string(), "18.16.1");
        assert_eq!(
            v.features(),
            Features {
                skip_indexes: false,
                low_cardinality: false,
                cancel_on_client_close: false,
                ttl: false,
                projections: false,
            }
        );
        let v = ServerVersion::parse("23.8.2.7\n").unwrap();
        assert_eq!(
            (v.major, v.minor, v.patch),
            (23, 8, 2),
            "a fourth part is ignored"
        );
        assert!(v.features().skip_indexes && v.features().cancel_on_client_close);
        assert!(
            ServerVersion::parse("19.11")
                .unwrap()
                .features()
                .cancel_on_client_close
        );
        assert_eq!(ServerVersion::parse("x.1"), None);
    }

    #[test]
    fn points_ddl_uses_features_only_when_present() {
        let t = Tables::new("lum`x", None, &[]);
        let old = t.create_points(ServerVersion::parse("18.16.1").unwrap().features());
        assert!(old.starts_with("CREATE TABLE IF NOT EXISTS `lum\\`x`.points ("));
        assert!(!old.contains("LowCardinality") && !old.contains("INDEX"));
        assert!(old.contains("PARTITION BY intDiv(timestamp, 86400000)"));
        assert!(old.ends_with(
            "ORDER BY (tenant, metric, series, timestamp)\nSETTINGS index_granularity = 1024"
        ));
        let sorted = Tables::new("db", None, &["region".into()])
            .with_sort_dimensions(&["customer_id".into()])
            .create_points(ServerVersion::parse("18.16.1").unwrap().features());
        assert!(
            sorted.contains(
                "write_id UInt64,\n    \
             `dim__customer_id` String DEFAULT dim_values[indexOf(dim_keys, 'customer_id')],\n    \
             `dim__region` String DEFAULT dim_values[indexOf(dim_keys, 'region')]\n)"
            ),
            "{sorted}"
        );
        assert!(
            sorted.contains("ORDER BY (tenant, metric, `dim__customer_id`, series, timestamp)"),
            "{sorted}"
        );
        let new = t.create_points(ServerVersion::parse("24.3.1").unwrap().features());
        assert!(new.contains("tenant LowCardinality(String)"));
        assert!(new.contains("INDEX dim_values_bloom dim_values TYPE bloom_filter(0.01)"));
        assert!(!new.contains("TTL"));
        let expiring = t
            .clone()
            .with_ttl(Some(Duration::from_secs(86_400)))
            .create_points(ServerVersion::parse("24.3.1").unwrap().features());
        assert!(
            expiring.ends_with(
                "ORDER BY (tenant, metric, series, timestamp)\n\
                 TTL toDateTime(intDiv(timestamp, 1000)) + toIntervalSecond(86400)\n\
                 SETTINGS index_granularity = 1024, merge_with_ttl_timeout = 3600"
            ),
            "{expiring}"
        );
        assert!(ServerVersion::parse("20.1").unwrap().features().ttl);
    }

    #[test]
    fn a_cluster_gets_local_tables_and_distributed_ones_over_them() {
        let features = ServerVersion::parse("18.16.1").unwrap().features();
        let single = Tables::new("db", None, &[]).create_all(features);
        assert_eq!(single.len(), 4);
        assert!(single[1].contains("`db`.points ("));
        assert!(single[3].contains("`db`.dashboards ("));
        let t = Tables::new("db", Some("two'shards"), &[]);
        assert_eq!(t.points_storage_table(), "`db`.points_local");
        let ddl = t.create_all(features);
        assert_eq!(ddl.len(), 7);
        assert!(ddl[3].contains("`db`.dashboards_local ("));
        assert!(ddl[1].contains("`db`.points_local ("));
        assert!(ddl[2].contains("`db`.retention_overrides_local ("));
        assert_eq!(
            ddl[4],
            "CREATE TABLE IF NOT EXISTS `db`.points AS `db`.points_local ENGINE = \
             Distributed('two\\'shards', 'db', 'points_local', series)"
        );
    }

    #[test]
    fn incompatible_tables_are_named() {
        let mut cols: Vec<(String, String)> = POINT_COLUMNS
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        assert_eq!(incompatibility(&cols), None);
        cols[0].1 = "LowCardinality(String)".into();
        assert_eq!(incompatibility(&cols), None);
        cols[3].1 = "DateTime".into();
        cols.pop();
        let why = incompatibility(&cols).unwrap();
        assert!(why.contains("timestamp Int64, write_id UInt64"), "{why}");
    }
}
