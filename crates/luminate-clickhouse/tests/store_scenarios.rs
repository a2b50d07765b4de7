//! Scenarios of the ClickHouse backend against a real server: tenant isolation on every call, hostile
//! strings stored and queried back verbatim, deletes and retention overrides, discovery orders,
//! schema creation and credentials, and `quantileExact`'s positions against the contract's.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::time::Duration;

use common::{count, plan, point, query, server, settings, store, write};
use luminate_clickhouse::testing::PASSWORD_USER;
use luminate_clickhouse::{ClickhouseSettings, ClickhouseStore, OpenError};
use luminate_model::query::{Aggregation, QueryKind};
use luminate_model::reference::ReferenceStore;
use luminate_model::result::{KeyCardinality, MetricCardinality, ValueCount};
use luminate_model::semantics::quantile_index;
use luminate_model::store::{HealthStatus, RetentionOverride};
use luminate_model::testkit::diff_results;
use luminate_model::{Filter, MetricsStore, Point, QueryPlan, QueryResult, Tenant};

/// Every query kind and option over `metric`, for comparing two tenants' or two stores' answers.
fn plans(metric: &str) -> Vec<QueryPlan> {
    let mut out = vec![plan(QueryKind::Range, metric)];
    for agg in Aggregation::ALL {
        let mut p = plan(QueryKind::Aggregate(agg), metric);
        p.group_by = vec!["k".into()];
        p.interval_ms = Some(1_000);
        out.push(p);
    }
    let mut rate = plan(QueryKind::Rate, metric);
    rate.interval_ms = Some(1_000);
    rate.group_by = vec!["k".into()];
    out.push(rate);
    out
}

#[tokio::test]
async fn tenants_never_see_each_others_points() {
    let store = store("isolation").await;
    let (a, b) = (Tenant::new("acme"), Tenant::new("acme' OR tenant != '"));
    let pa = vec![
        point("m", 1_000, 1.0, &[("k", "x")]),
        point("m", 2_000, 3.0, &[("k", "x")]),
        point("only_a", 1_000, 1.0, &[("secret", "a")]),
    ];
    let pb = vec![
        point("m", 1_000, 10.0, &[("k", "y")]),
        point("m", 3_000, 40.0, &[("k", "y")]),
    ];
    write(&store, &a, &pa).await;
    write(&store, &b, &pb).await;
    let mut reference = ReferenceStore::new();
    for p in &pa {
        reference.insert(&a, p.clone());
    }
    for p in &pb {
        reference.insert(&b, p.clone());
    }
    for tenant in [&a, &b, &Tenant::new("nobody")] {
        for p in plans("m").iter().chain(&plans("only_a")) {
            let expected = reference.query(tenant, p);
            let actual = query(&store, tenant, p).await;
            assert_eq!(diff_results(&expected, &actual), None, "{tenant} {p:?}");
        }
        assert_eq!(
            store.metric_names(tenant).await.unwrap(),
            reference.metric_names(tenant)
        );
        assert_eq!(
            store.dimension_keys(tenant, "m").await.unwrap(),
            reference.dimension_keys(tenant, "m")
        );
        assert_eq!(
            store
                .dimension_values(tenant, "m", "k", "", 10)
                .await
                .unwrap(),
            reference.dimension_values(tenant, "m", "k", "", 10)
        );
        assert_eq!(
            store.cardinality(tenant, None).await.unwrap(),
            reference.cardinality(tenant, None)
        );
    }
    assert_eq!(
        store.dimension_keys(&b, "only_a").await.unwrap(),
        None,
        "b does not know a's metric"
    );
    // A delete by one tenant leaves the other's points of the same metric alone.
    assert_eq!(store.delete_before(&b, "m", i64::MAX).await.unwrap(), 2);
    assert_eq!(count(&store, &a, "m").await, 2);
    assert_eq!(count(&store, &b, "m").await, 0);
    assert_eq!(
        store.tenants().await.unwrap(),
        vec![a.clone()],
        "b has no points left and no override"
    );
}

/// Strings that break naive SQL building.
const HOSTILE: [&str; 9] = [
    "'; DROP TABLE points; --",
    "it's",
    r"back\slash\",
    "nul\0byte",
    "new\nline\r\n",
    "tab\there",
    "unicode é ☃ 日本 🎉",
    r"\'; DROP DATABASE injection; --",
    "`backtick` \"double\"",
];

#[tokio::test]
async fn hostile_strings_are_stored_and_queried_back_verbatim() {
    let store = store("injection").await;
    let tenant = Tenant::new("tenant '; DROP TABLE points; --\\");
    let mut points: Vec<Point> = Vec::new();
    for (i, s) in HOSTILE.iter().enumerate() {
        let t = 1_000 * i as i64;
        // As a metric name, as a dimension key, and as a dimension value.
        points.push(point(s, t, i as f64, &[("plain", s)]));
        points.push(point("m", t, i as f64, &[(s, s)]));
    }
    write(&store, &tenant, &points).await;
    let mut reference = ReferenceStore::new();
    for p in &points {
        reference.insert(&tenant, p.clone());
    }

    let mut names: Vec<String> = HOSTILE.iter().map(|s| (*s).to_owned()).collect();
    names.push("m".into());
    names.sort();
    assert_eq!(store.metric_names(&tenant).await.unwrap(), names);
    assert_eq!(store.tenants().await.unwrap(), vec![tenant.clone()]);

    for s in HOSTILE {
        // The metric named `s`: its point and its dimension value come back byte for byte.
        let range = query(&store, &tenant, &plan(QueryKind::Range, s)).await;
        assert_eq!(
            diff_results(
                &reference.query(&tenant, &plan(QueryKind::Range, s)),
                &range
            ),
            None,
            "{s:?}"
        );
        let QueryResult::Range { results, .. } = &range else {
            panic!("{range:?}")
        };
        assert_eq!(results[0].dimensions.get("plain"), Some(s));

        // `s` as a filter value, a group-by key and a discovery prefix.
        for p in [
            QueryPlan {
                filters: vec![Filter::equals(s, s)],
                ..plan(QueryKind::Range, "m")
            },
            // In a list, with `""` (every point of `m` without the key `s`) and a value nobody has.
            QueryPlan {
                filters: vec![Filter::any_of(s, [s, "it's", "", "nobody"])],
                ..plan(QueryKind::Range, "m")
            },
            QueryPlan {
                filters: vec![Filter::any_of("plain", HOSTILE)],
                ..plan(QueryKind::Aggregate(Aggregation::Count), s)
            },
            QueryPlan {
                group_by: vec![s.to_owned()],
                interval_ms: Some(500),
                ..plan(QueryKind::Aggregate(Aggregation::Sum), "m")
            },
            QueryPlan {
                group_by: vec![s.to_owned(), "plain".to_owned()],
                interval_ms: Some(500),
                ..plan(QueryKind::Rate, "m")
            },
            QueryPlan {
                filters: vec![Filter::equals("plain", s)],
                ..plan(QueryKind::Aggregate(Aggregation::Integral), s)
            },
        ] {
            let expected = reference.query(&tenant, &p);
            assert_eq!(
                diff_results(&expected, &query(&store, &tenant, &p).await),
                None,
                "{p:?}"
            );
        }
        assert_eq!(
            store
                .dimension_values(&tenant, "m", s, &s[..2], 10)
                .await
                .unwrap(),
            reference.dimension_values(&tenant, "m", s, &s[..2], 10)
        );
        assert_eq!(
            store
                .dimension_values(&tenant, s, "plain", s, 10)
                .await
                .unwrap(),
            Some(vec![ValueCount {
                value: s.to_owned(),
                points: 1
            }])
        );
    }
    assert_eq!(
        store.dimension_keys(&tenant, "m").await.unwrap(),
        reference.dimension_keys(&tenant, "m")
    );
    assert_eq!(
        store.cardinality(&tenant, None).await.unwrap(),
        reference.cardinality(&tenant, None)
    );

    // Retention and deletes take hostile metric names too.
    let day = Duration::from_secs(86_400);
    for s in HOSTILE {
        store.set_retention(&tenant, s, day).await.unwrap();
    }
    let mut expected: Vec<RetentionOverride> = HOSTILE
        .iter()
        .map(|s| RetentionOverride {
            metric: (*s).to_owned(),
            retention: day,
        })
        .collect();
    expected.sort_by(|a, b| a.metric.cmp(&b.metric));
    assert_eq!(store.retention_overrides(&tenant).await.unwrap(), expected);
    assert_eq!(
        store
            .delete_before(&tenant, HOSTILE[0], i64::MAX)
            .await
            .unwrap(),
        1
    );

    // Nothing was dropped or created along the way.
    assert_eq!(
        server()
            .sql("SELECT name FROM system.tables WHERE database = 'injection' ORDER BY name")
            .unwrap(),
        "dashboards\npoints\nretention_overrides\n"
    );
    assert_eq!(
        server()
            .sql("SELECT count() FROM system.databases WHERE name = 'injection'")
            .unwrap(),
        "1\n"
    );
    assert_eq!(count(&store, &tenant, "m").await, HOSTILE.len() as u64);
}

#[tokio::test]
async fn deletes_count_exactly_and_survive_across_day_partitions() {
    let store = store("deletes").await;
    let t = Tenant::new("t");
    const DAY: i64 = 86_400_000;
    let points: Vec<Point> = (0..30)
        .map(|i| point("m", i * DAY / 10, i as f64, &[("k", "v")]))
        .chain([point("other", 0, 1.0, &[])])
        .collect();
    write(&store, &t, &points).await;
    // Points at 0 .. 0.9 days, 1.0 .. 1.9, 2.0 .. 2.9: the cut at 1.55 days straddles a partition.
    assert_eq!(
        store
            .delete_before(&t, "m", DAY + DAY / 2 + 1)
            .await
            .unwrap(),
        16
    );
    assert_eq!(
        store
            .delete_before(&t, "m", DAY + DAY / 2 + 1)
            .await
            .unwrap(),
        0,
        "nothing left to delete"
    );
    assert_eq!(store.delete_before(&t, "ghost", i64::MAX).await.unwrap(), 0);
    assert_eq!(count(&store, &t, "m").await, 14);
    assert_eq!(count(&store, &t, "other").await, 1, "another metric stays");
    let QueryResult::Range { results, .. } = query(&store, &t, &plan(QueryKind::Range, "m")).await
    else {
        panic!()
    };
    assert_eq!(results[0].timestamp, 16 * DAY / 10);
    assert_eq!(store.delete_before(&t, "m", i64::MAX).await.unwrap(), 14);
    assert_eq!(store.dimension_keys(&t, "m").await.unwrap(), None);
    assert_eq!(store.metric_names(&t).await.unwrap(), vec!["other"]);
}

#[tokio::test]
async fn retention_overrides_replace_and_survive_reopening() {
    let (a, b, c) = (Tenant::new("a"), Tenant::new("b"), Tenant::new("c"));
    let day = Duration::from_secs(86_400);
    {
        let store = store("retention").await;
        store.set_retention(&a, "requests", 7 * day).await.unwrap();
        store.set_retention(&a, "latency", day).await.unwrap();
        store.set_retention(&a, "requests", 3 * day).await.unwrap(); // replaces
        store.set_retention(&b, "latency", 30 * day).await.unwrap();
        write(&store, &c, &[point("m", 1, 1.0, &[])]).await;
        store.close().await.unwrap();
    }
    let store = store("retention").await;
    let ov = |metric: &str, retention| RetentionOverride {
        metric: metric.to_owned(),
        retention,
    };
    assert_eq!(
        store.retention_overrides(&a).await.unwrap(),
        vec![ov("latency", day), ov("requests", 3 * day)]
    );
    assert_eq!(
        store.retention_overrides(&b).await.unwrap(),
        vec![ov("latency", 30 * day)]
    );
    assert_eq!(store.retention_overrides(&c).await.unwrap(), vec![]);
    assert_eq!(store.tenants().await.unwrap(), vec![a, b, c]);
    // Also after ClickHouse merged the replaced rows away.
    server()
        .sql("OPTIMIZE TABLE retention.retention_overrides FINAL")
        .unwrap();
    assert_eq!(
        store.retention_overrides(&Tenant::new("a")).await.unwrap(),
        vec![ov("latency", day), ov("requests", 3 * day)]
    );
}

#[tokio::test]
async fn discovery_orders_by_points_then_value_and_cardinality_by_size() {
    let store = store("discovery").await;
    let t = Tenant::new("t");
    let mut points = Vec::new();
    for (value, n) in [("b", 3), ("a", 3), ("c1", 5), ("c2", 1)] {
        for i in 0..n {
            points.push(point("m", i, 1.0, &[("customer", value), ("region", "eu")]));
        }
    }
    points.push(point("n", 0, 1.0, &[("x", "1")]));
    points.push(point("n", 0, 1.0, &[("x", "2")]));
    write(&store, &t, &points).await;
    let vc = |value: &str, points| ValueCount {
        value: value.to_owned(),
        points,
    };
    assert_eq!(
        store
            .dimension_values(&t, "m", "customer", "", 100)
            .await
            .unwrap(),
        Some(vec![vc("c1", 5), vc("a", 3), vc("b", 3), vc("c2", 1)])
    );
    assert_eq!(
        store
            .dimension_values(&t, "m", "customer", "c", 1)
            .await
            .unwrap(),
        Some(vec![vc("c1", 5)])
    );
    assert_eq!(
        store
            .dimension_values(&t, "m", "absent", "", 10)
            .await
            .unwrap(),
        Some(vec![])
    );
    assert_eq!(
        store
            .dimension_values(&t, "ghost", "customer", "", 10)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.dimension_keys(&t, "m").await.unwrap(),
        Some(vec!["customer".to_owned(), "region".to_owned()])
    );
    let kc = |key: &str, distinct_values| KeyCardinality {
        key: key.to_owned(),
        distinct_values,
    };
    assert_eq!(
        store.cardinality(&t, None).await.unwrap(),
        vec![
            MetricCardinality {
                metric: "m".into(),
                series: 4,
                dimensions: vec![kc("customer", 4), kc("region", 1)],
            },
            MetricCardinality {
                metric: "n".into(),
                series: 2,
                dimensions: vec![kc("x", 2)],
            },
        ]
    );
    assert_eq!(store.cardinality(&t, Some("ghost")).await.unwrap(), vec![]);
}

#[tokio::test]
async fn open_creates_the_schema_once_and_refuses_a_foreign_table() {
    let first = store("schema_twice").await;
    let second = store("schema_twice").await;
    let version = first.server_version().to_string();
    assert!(
        version.starts_with(server().kind().version_prefix()),
        "{version} on {:?}",
        server().kind()
    );
    // The modern-server path: LowCardinality names and the dimension values' skip index from 20.1 on.
    let modern = first.server_version()
        >= luminate_clickhouse::schema::ServerVersion::parse("20.1").unwrap();
    let tenant_type = server()
        .sql(
            "SELECT type FROM system.columns WHERE database = 'schema_twice' AND table = 'points' \
             AND name = 'tenant'",
        )
        .unwrap();
    let expected = if modern {
        "LowCardinality(String)"
    } else {
        "String"
    };
    assert_eq!(tenant_type.trim(), expected);
    if modern {
        let indexes = server()
            .sql(
                "SELECT name, type_full FROM system.data_skipping_indices \
                 WHERE database = 'schema_twice' AND table = 'points'",
            )
            .unwrap();
        assert_eq!(indexes.trim(), "dim_values_bloom\tbloom_filter(0.01)");
    }
    write(&first, &Tenant::new("t"), &[point("m", 1, 1.0, &[])]).await;
    assert_eq!(count(&second, &Tenant::new("t"), "m").await, 1);
    let health = second.health().await;
    assert_eq!(health.status, HealthStatus::Healthy);
    assert!(health.disk_used_bytes.unwrap() > 0);

    server()
        .sql("CREATE DATABASE IF NOT EXISTS foreign_schema")
        .unwrap();
    server()
        .sql(
            "CREATE TABLE IF NOT EXISTS foreign_schema.points (tenant String, metric String, \
             timestamp DateTime, value Float64) ENGINE = MergeTree() ORDER BY tenant",
        )
        .unwrap();
    let err = ClickhouseStore::open(settings("foreign_schema"))
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::Schema(_)), "{err}");
    assert!(err.to_string().contains("timestamp Int64"), "{err}");
}

#[tokio::test]
async fn dimension_columns_are_added_to_a_points_table_holding_data() {
    // The layout earlier versions created (8 192 rows per granule, no dimension columns), holding points
    // in two day partitions.
    server().sql("DROP DATABASE IF EXISTS add_columns").unwrap();
    server().sql("CREATE DATABASE add_columns").unwrap();
    server()
        .sql(
            "CREATE TABLE add_columns.points (tenant String, metric String, \
             series UInt64 DEFAULT cityHash64(dim_keys, dim_values), timestamp Int64, \
             value Float64, dim_keys Array(String), dim_values Array(String), write_id UInt64) \
             ENGINE = MergeTree() PARTITION BY intDiv(timestamp, 86400000) \
             ORDER BY (tenant, metric, series, timestamp)",
        )
        .unwrap();
    for (t, v, dims) in [
        (1_000, 1, "['k'], ['x']"),
        (2_000, 2, "['k', 'z'], ['y', 'q']"),
        (86_400_000 + 3_000, 4, "['k'], ['x']"),
        (86_400_000 + 4_000, 8, "[], []"),
    ] {
        server()
            .sql(&format!(
                "INSERT INTO add_columns.points (tenant, metric, timestamp, value, dim_keys, \
                 dim_values, write_id) VALUES ('t', 'm', {t}, {v}, {dims}, 1)"
            ))
            .unwrap();
    }
    let parts_without_the_column = || {
        server()
            .sql(
                "SELECT count() FROM system.parts WHERE database = 'add_columns' \
                 AND table = 'points' AND active AND name NOT IN (SELECT name FROM \
                 system.parts_columns WHERE database = 'add_columns' AND table = 'points' \
                 AND active AND column = 'dim__k')",
            )
            .unwrap()
    };
    assert_eq!(parts_without_the_column(), "4\n");

    let with_columns = || {
        ClickhouseStore::open(ClickhouseSettings {
            dimension_columns: vec!["k".into()],
            ..settings("add_columns")
        })
    };
    let store = with_columns().await.unwrap();
    // Every part written before the column was rewritten with it.
    assert_eq!(parts_without_the_column(), "0\n");
    let tenant = Tenant::new("t");
    let mut by_k = plan(QueryKind::Aggregate(Aggregation::Sum), "m");
    by_k.group_by = vec!["k".into()];
    by_k.end = 2 * 86_400_000;
    let sums = |r: QueryResult| match r {
        QueryResult::Aggregate { results, .. } => results
            .into_iter()
            .map(|g| (g.group_key.0[0].1.clone(), g.value))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    // A point without the key is in the group `""`, as the arrays say.
    let expected = vec![
        ("".to_owned(), 8.0),
        ("x".to_owned(), 5.0),
        ("y".to_owned(), 2.0),
    ];
    assert_eq!(sums(query(&store, &tenant, &by_k).await), expected);
    let mut only_x = by_k.clone();
    only_x.filters = vec![Filter::equals("k", "x")];
    assert_eq!(
        sums(query(&store, &tenant, &only_x).await),
        vec![("x".to_owned(), 5.0)]
    );
    // Points written from now on hold the column.
    write(&store, &tenant, &[point("m", 5_000, 16.0, &[("k", "y")])]).await;
    assert_eq!(
        server()
            .sql("SELECT dim__k FROM add_columns.points WHERE value = 16")
            .unwrap(),
        "y\n"
    );
    // Reopening finds the columns in place; a store without them reads the arrays and agrees.
    drop(store);
    let reopened = with_columns().await.unwrap();
    let without = common::store("add_columns").await;
    assert_eq!(
        query(&reopened, &tenant, &by_k).await,
        query(&without, &tenant, &by_k).await
    );
    assert_eq!(
        sums(query(&without, &tenant, &by_k).await),
        vec![
            ("y".to_owned(), 18.0),
            ("".to_owned(), 8.0),
            ("x".to_owned(), 5.0)
        ]
    );
}

#[tokio::test]
async fn credentials_reach_clickhouse() {
    let (user, password) = PASSWORD_USER;
    let with = |password: &str| ClickhouseSettings {
        username: user.to_owned(),
        password: password.to_owned(),
        ..settings("credentials")
    };
    let store = ClickhouseStore::open(with(password)).await.unwrap();
    write(&store, &Tenant::new("t"), &[point("m", 1, 1.0, &[])]).await;
    let err = ClickhouseStore::open(with("wrong")).await.unwrap_err();
    // 18.16 says "Wrong password for user luminate"; 20.x on, "Authentication failed: password is
    // incorrect, or there is no user with such name".
    let refusal = err.to_string().to_lowercase();
    assert!(
        refusal.contains("wrong password") || refusal.contains("password is incorrect"),
        "the server's refusal is reported: {err}"
    );
}

#[tokio::test]
async fn quantile_exact_positions_equal_the_contract() {
    // For n = 1..=1500 values 0..n, quantileExact(level) must pick index quantile_index(pct, n).
    let body = server()
        .sql(
            "SELECT n, quantileExact(0.5)(x), quantileExact(0.95)(x), quantileExact(0.99)(x) \
             FROM (SELECT n, arrayJoin(range(n)) AS x FROM \
             (SELECT arrayJoin(range(1500)) + 1 AS n)) GROUP BY n ORDER BY n",
        )
        .unwrap();
    let mut rows = 0;
    for line in body.lines() {
        let cols: Vec<usize> = line.split('\t').map(|c| c.parse().unwrap()).collect();
        let n = cols[0];
        for (i, pct) in [50, 95, 99].into_iter().enumerate() {
            assert_eq!(cols[1 + i], quantile_index(pct, n), "p{pct} of {n} values");
        }
        rows += 1;
    }
    assert_eq!(rows, 1500);
}

#[tokio::test]
async fn edge_ranges_buckets_and_empty_answers() {
    let store = store("edges").await;
    let t = Tenant::new("t");
    // Negative timestamps floor to earlier buckets; a series with one point has no rate.
    let points = [
        point("m", -1, 2.0, &[("k", "a")]),
        point("m", -1_000, 1.0, &[("k", "a")]),
        point("m", 0, 5.0, &[("k", "a")]),
        point("m", 999, 4.0, &[("k", "b")]),
        point("m", 1_000, 1.0, &[]),
    ];
    write(&store, &t, &points).await;
    let mut reference = ReferenceStore::new();
    for p in &points {
        reference.insert(&t, p.clone());
    }
    let mut cases = plans("m");
    cases.extend(plans("ghost"));
    for p in plans("m") {
        // Half-open ranges at the edges, and a filter on the empty string (points without `k`).
        cases.push(QueryPlan {
            start: -1,
            end: 1_000,
            ..p.clone()
        });
        cases.push(QueryPlan {
            filters: vec![Filter::equals("k", "")],
            ..p.clone()
        });
        // Any of a list: with `""`, and of values only some of which exist.
        cases.push(QueryPlan {
            filters: vec![Filter::any_of("k", ["", "b", "nobody"])],
            ..p.clone()
        });
        cases.push(QueryPlan {
            filters: vec![Filter::any_of("k", ["a", "nobody"])],
            ..p.clone()
        });
        cases.push(QueryPlan { limit: 1, ..p });
    }
    for p in &cases {
        let expected = reference.query(&t, p);
        assert_eq!(
            diff_results(&expected, &query(&store, &t, p).await),
            None,
            "{p:?}"
        );
    }
    // Without groupBy, rate always has one group, even over no data.
    let mut rate = plan(QueryKind::Rate, "ghost");
    rate.interval_ms = Some(1_000);
    let QueryResult::Rate { results, truncated } = query(&store, &t, &rate).await else {
        panic!()
    };
    assert_eq!(
        (results.len(), results[0].points.len(), truncated),
        (1, 0, false)
    );
}

/// `storage.clickhouse.ttl`: on a server with table TTLs (chDB 26 here), the points table carries it,
/// ClickHouse drops expired points in its merges, the retention task's cut for a metric whose retention
/// is the TTL queues no mutation, a shorter retention still deletes, and reopening with another TTL (or
/// none) changes the table. 18.16 has no TTL: the setting is refused at open, naming the version.
#[tokio::test]
async fn a_ttl_expires_points_in_merges_and_spares_the_retention_mutations() {
    server().sql("DROP DATABASE IF EXISTS ttl").unwrap();
    let day = Duration::from_secs(86_400);
    let with_ttl = |ttl: Option<Duration>| ClickhouseSettings {
        ttl,
        ..settings("ttl")
    };
    let opened = ClickhouseStore::open(with_ttl(Some(30 * day))).await;
    if server().kind() == luminate_clickhouse::testing::ServerKind::Real {
        let err = opened.unwrap_err();
        assert!(matches!(err, OpenError::Schema(_)), "{err}");
        assert!(
            err.to_string().starts_with(
                "storage.clickhouse.ttl needs ClickHouse 20.1 or later (table TTLs); this server is 18.16."
            ),
            "{err}"
        );
        return;
    }
    drop(opened);
    let engine = || {
        server()
            .sql("SELECT engine_full FROM system.tables WHERE database = 'ttl' AND name = 'points'")
            .unwrap()
    };
    let created = engine();
    assert!(
        created.contains("TTL toDateTime(intDiv(timestamp, 1000)) + toIntervalSecond(2592000)")
            && created.contains("merge_with_ttl_timeout = 3600"),
        "{created}"
    );
    let mutations = || {
        server()
            .sql("SELECT count() FROM system.mutations WHERE database = 'ttl'")
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    // Points already expired when they arrive are dropped on insert by a modern server, so the expired
    // points of this test are written while the table has no TTL, and the TTL then put back as an
    // operator's `ALTER` without rewriting the parts would: they stay until a merge.
    server().sql("DROP DATABASE ttl").unwrap();
    let store = ClickhouseStore::open(with_ttl(None)).await.unwrap();
    let t = Tenant::new("t");
    let now = luminate_model::time::now_ms();
    let days_ago = |d: i64| now - d * 86_400_000;
    write(
        &store,
        &t,
        &[
            point("m", days_ago(40), 1.0, &[("k", "old")]),
            point("m", days_ago(35), 2.0, &[("k", "old")]),
            point("m", days_ago(1), 3.0, &[("k", "new")]),
            point("m", days_ago(0), 4.0, &[("k", "new")]),
            point("other", days_ago(31), 5.0, &[]),
        ],
    )
    .await;
    store.close().await.unwrap();
    server()
        .sql(
            "ALTER TABLE ttl.points MODIFY TTL toDateTime(intDiv(timestamp, 1000)) + \
             toIntervalSecond(2592000) SETTINGS materialize_ttl_after_modify = 0",
        )
        .unwrap();
    let store = ClickhouseStore::open(with_ttl(Some(30 * day)))
        .await
        .unwrap();
    assert!(
        engine().contains("merge_with_ttl_timeout = 3600"),
        "{}",
        engine()
    );

    // The retention task's cut for a 30-day retention, while the expired points are still there: left
    // to the TTL, no mutation.
    assert_eq!(count(&store, &t, "m").await, 4);
    assert_eq!(store.expire_before(&t, "m", days_ago(30)).await.unwrap(), 0);
    assert_eq!(mutations(), 0);
    assert_eq!(count(&store, &t, "m").await, 4);
    // What ClickHouse's merges do by themselves within the hour.
    store.settle().await.unwrap();
    assert_eq!(count(&store, &t, "m").await, 2);
    assert_eq!(store.metric_names(&t).await.unwrap(), vec!["m"]);

    // A shorter retention (12 hours) still deletes, by mutation; so does an admin's delete.
    assert_eq!(
        store
            .expire_before(&t, "m", now - 12 * 3_600_000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(mutations(), 1);
    assert_eq!(count(&store, &t, "m").await, 1);
    assert_eq!(store.delete_before(&t, "m", i64::MAX).await.unwrap(), 1);
    store.close().await.unwrap();

    // Another TTL, then none: the table follows the setting.
    let store = ClickhouseStore::open(with_ttl(Some(60 * day)))
        .await
        .unwrap();
    assert!(
        engine().contains("toIntervalSecond(5184000)"),
        "{}",
        engine()
    );
    write(&store, &t, &[point("m", days_ago(45), 6.0, &[])]).await;
    store.settle().await.unwrap();
    assert_eq!(
        count(&store, &t, "m").await,
        1,
        "kept: younger than 60 days"
    );
    store.close().await.unwrap();
    let store = ClickhouseStore::open(with_ttl(None)).await.unwrap();
    assert!(!engine().contains("TTL"), "{}", engine());
    write(&store, &t, &[point("m", days_ago(400), 7.0, &[])]).await;
    store.settle().await.unwrap();
    assert_eq!(
        count(&store, &t, "m").await,
        2,
        "no TTL: nothing expires by itself"
    );
}

/// `storage.clickhouse.rollups`: on a server with projections (chDB 26 here) the points table keeps the
/// hourly projection — added to a table holding points, its parts rewritten with it — and count, sum,
/// avg, min and max over whole hours are answered from it (`force_optimize_projection` makes a query
/// that does not read it fail) exactly as the reference answers them, grouped, filtered, with an
/// interval of whole hours or none. Other ranges read the points, as exactly; reopening without the
/// setting drops the projection. 18.16 has no projections: the setting is refused at open.
#[tokio::test]
async fn hourly_rollups_answer_whole_hours_exactly_from_the_projection() {
    use luminate_clickhouse::testing::{ClickhouseServer, ServerKind};
    if server().kind() == ServerKind::Real {
        let err = ClickhouseStore::open(ClickhouseSettings {
            rollups: true,
            ..settings("rollups")
        })
        .await
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "storage.clickhouse.rollups needs ClickHouse 23.8 or later (aggregate projections); \
                 this server is 18.16."
            ),
            "{err}"
        );
        return;
    }
    // A server of its own: the session-wide `force_optimize_projection` below would fail other
    // tests' queries on a shared one.
    let own = ClickhouseServer::start();
    let with = |rollups: bool| ClickhouseSettings {
        rollups,
        dimension_columns: vec!["k".into()],
        ..own.settings("rollups")
    };
    let create_query = || {
        own.sql("SELECT create_table_query FROM system.tables WHERE database = 'rollups' AND name = 'points'")
            .unwrap()
    };
    let hour = 3_600_000;
    let base = 490_000 * hour;
    let t = Tenant::new("t");
    // Five series over five hours, a few points each hour; values in halves, so every sum is exact
    // in any order.
    let mut points = Vec::new();
    for i in 0..300_i64 {
        let k = ["a", "b", "c", "d", "e"][(i % 5) as usize];
        let z = if i % 3 == 0 { "x" } else { "y" };
        let dims: Vec<(&str, &str)> = if i % 7 == 0 {
            vec![("z", z)]
        } else {
            vec![("k", k), ("z", z)]
        };
        points.push(point(
            "m",
            base + i * 60_001,
            (i % 41) as f64 / 2.0 - 5.0,
            &dims,
        ));
    }
    let (older, newer) = points.split_at(150);
    let store = ClickhouseStore::open(with(false)).await.unwrap();
    write(&store, &t, older).await;
    assert!(!create_query().contains("PROJECTION"), "{}", create_query());
    store.close().await.unwrap();
    let store = ClickhouseStore::open(with(true)).await.unwrap();
    assert!(
        create_query().contains("PROJECTION luminate_hourly (SELECT tenant, metric, series"),
        "{}",
        create_query()
    );
    write(&store, &t, newer).await;
    store.settle().await.unwrap();
    let mut reference = ReferenceStore::new();
    for p in &points {
        reference.insert(&t, p.clone());
    }

    let mut plans = Vec::new();
    for agg in [
        Aggregation::Count,
        Aggregation::Sum,
        Aggregation::Avg,
        Aggregation::Min,
        Aggregation::Max,
    ] {
        for (start, end) in [(base, base + 5 * hour), (base + hour, base + 3 * hour)] {
            for interval_ms in [None, Some(hour), Some(2 * hour)] {
                for (group_by, filters) in [
                    (vec![], vec![]),
                    (vec!["k".to_owned()], vec![]),
                    (
                        vec!["z".to_owned(), "k".to_owned()],
                        vec![Filter::any_of("k", ["a", "", "c"])],
                    ),
                    (vec!["k".to_owned()], vec![Filter::equals("z", "x")]),
                ] {
                    plans.push(QueryPlan {
                        start,
                        end,
                        interval_ms,
                        group_by,
                        filters,
                        limit: 3,
                        ..plan(QueryKind::Aggregate(agg), "m")
                    });
                }
            }
        }
    }
    own.sql("SET force_optimize_projection = 1").unwrap();
    for p in &plans {
        let expected = reference.query(&t, p);
        assert_eq!(
            diff_results(&expected, &query(&store, &t, p).await),
            None,
            "{p:?}"
        );
    }
    own.sql("SET force_optimize_projection = 0").unwrap();
    // Not whole hours, or an aggregation the rollups do not keep: the points, as exactly.
    for p in &plans[..8] {
        for other in [
            QueryPlan {
                start: p.start + 1,
                ..p.clone()
            },
            QueryPlan {
                kind: QueryKind::Aggregate(Aggregation::P95),
                ..p.clone()
            },
        ] {
            let expected = reference.query(&t, &other);
            assert_eq!(
                diff_results(&expected, &query(&store, &t, &other).await),
                None,
                "{other:?}"
            );
        }
    }
    store.close().await.unwrap();
    let store = ClickhouseStore::open(with(false)).await.unwrap();
    assert!(!create_query().contains("PROJECTION"), "{}", create_query());
    let expected = reference.query(&t, &plans[5]);
    assert_eq!(
        diff_results(&expected, &query(&store, &t, &plans[5]).await),
        None
    );
}

/// `settle` right after many inserts, while ClickHouse's background merges are at work: one part per
/// partition at the end. (An `OPTIMIZE` that finds parts held by a running merge answers success having
/// done nothing; settle waits and repeats.)
#[tokio::test]
async fn settling_leaves_one_part_per_partition_even_while_merges_run() {
    let store = store("settle_parts").await;
    let t = Tenant::new("t");
    const DAY: i64 = 86_400_000;
    for i in 0..40 {
        let points: Vec<Point> = (0..200)
            .map(|j| {
                point(
                    "m",
                    (i % 2) * DAY + j,
                    f64::from(j as u32),
                    &[("k", &format!("v{j}"))],
                )
            })
            .collect();
        write(&store, &t, &points).await;
    }
    store.settle().await.unwrap();
    let parts = server()
        .sql(
            "SELECT partition_id, count() FROM system.parts WHERE database = 'settle_parts' \
             AND table = 'points' AND active GROUP BY partition_id ORDER BY partition_id",
        )
        .unwrap();
    assert_eq!(parts, "0\t1\n1\t1\n");
    assert_eq!(count(&store, &t, "m").await, 8_000);
}
