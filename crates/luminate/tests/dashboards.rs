//! The dashboards API end to end, on each backend (issue 13): create, list, export, replace, delete;
//! `409 CONFLICT` on a stale version; validation problems named by JSON path; the `dashboards.*`
//! bounds; tenant isolation and scopes; import → export → import identity with the shipped design
//! dashboard; and a panel query resolved by the model answering as the same query sent by hand. On the
//! embedded engine, durability across a restart and a kill -9; on ClickHouse, two replicas over one
//! database seeing the same dashboards.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;
mod tenant_client;

use common::{Backend, Launch, Luminate, now_ms, point};
use luminate_model::dashboard::document::from_value;
use luminate_model::dashboard::panel_query;
use luminate_model::dashboard::variables::Choices;
use luminate_model::filter::FilterValue;
use serde_json::{Value, json};
use tenant_client::{Client, Reply, token, with_secret};

const LIST: &str = "/api/v1/dashboards";

fn shipped() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/dashboards/customer_overview.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn dashboard(id: &str, title: &str, tags: &[&str]) -> Value {
    json!({"id": id, "title": title, "tags": tags, "timeRange": {"relative": "1h"},
        "panels": [{"id": "p", "title": "latency", "type": "timeseries",
            "gridPosition": {"x": 0, "y": 0, "w": 24, "h": 6},
            "query": {"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p95"}}]})
}

/// Calls without a token (auth off).
struct Api(Client);

impl Api {
    fn of(server: &Luminate) -> Self {
        Self(Client::of(server))
    }
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        self.0.send(method, path, None, body)
    }
    fn post(&self, body: &Value) -> Reply {
        self.call("POST", LIST, Some(body))
    }
    fn put(&self, id: &str, body: &Value) -> Reply {
        self.call("PUT", &format!("{LIST}/{id}"), Some(body))
    }
    fn get(&self, path: &str) -> Reply {
        self.call("GET", path, None)
    }
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.body["dashboards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

fn create_list_replace_delete_and_a_stale_version_conflicts(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let api = Api::of(&server);

    let created = api.post(&dashboard("ops", "Ops", &["team"]));
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["dashboard"]["version"], 1);
    api.post(&json!({"dashboard": dashboard("cost", "Cost", &["finance"])}));
    let again = api.post(&dashboard("ops", "Ops again", &[]));
    assert_eq!((again.status, again.code()), (409, "CONFLICT"));

    let listed = api.get(LIST);
    assert_eq!(
        listed.body,
        json!({"dashboards": [
            {"id": "cost", "title": "Cost", "tags": ["finance"], "version": 1},
            {"id": "ops", "title": "Ops", "tags": ["team"], "version": 1}]})
    );
    assert_eq!(ids(&api.get(&format!("{LIST}?tag=team"))), ["ops"]);
    assert_eq!(
        ids(&api.get(&format!("{LIST}?tag=none"))),
        Vec::<String>::new()
    );

    let mut change = dashboard("ops", "Ops v2", &["team"]);
    change["version"] = json!(1);
    let replaced = api.put("ops", &change);
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["dashboard"]["version"], 2);
    // A second writer who also read version 1 is refused, told the current version.
    let stale = api.put("ops", &change);
    assert_eq!((stale.status, stale.code()), (409, "CONFLICT"));
    assert_eq!(stale.body["error"]["details"]["current_version"], 2);
    assert!(
        stale.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is at version 2, not 1"),
        "{}",
        stale.body
    );
    let exported = api.get(&format!("{LIST}/ops"));
    assert_eq!(exported.body["dashboard"]["title"], "Ops v2");
    // The path and the document must name the same dashboard.
    let other = api.put("cost", &change);
    assert_eq!((other.status, other.code()), (400, "INVALID_REQUEST"));

    assert_eq!(api.call("DELETE", &format!("{LIST}/ops"), None).status, 204);
    assert_eq!(api.get(&format!("{LIST}/ops")).status, 404);
    assert_eq!(api.call("DELETE", &format!("{LIST}/ops"), None).status, 404);
    assert_eq!(ids(&api.get(LIST)), ["cost"]);
}

fn validation_names_the_json_path_of_each_problem(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let api = Api::of(&server);
    let mut doc = dashboard("bad", "Bad", &[]);
    doc["panels"].as_array_mut().unwrap().push(json!({
        "id": "q", "title": "q", "type": "table", "gridPosition": {"x": 20, "y": 0, "w": 6, "h": 2},
        "query": {"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p42",
                  "filters": {"region": "$region"}}}));
    let reply = api.post(&doc);
    assert_eq!((reply.status, reply.code()), (400, "INVALID_REQUEST"));
    let problems: Vec<(String, String)> = reply.body["error"]["details"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_owned(),
                p["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        problems,
        [
            (
                "panels[1].gridPosition".into(),
                "x + w is 26, past the grid's 24 columns".into()
            ),
            (
                "panels[1].query.filters.region".into(),
                "variable $region is not declared".into()
            ),
        ]
    );
    // With the variable declared, the parser of /api/v1/query has its say.
    doc["variables"] = json!([{"name": "region", "type": "custom", "options": ["eu"]}]);
    doc["panels"][1]["gridPosition"]["x"] = json!(0);
    let reply = api.post(&doc);
    assert_eq!(
        reply.body["error"]["message"],
        "invalid dashboard: panels[1].query.aggregation: unknown \"p42\"; expected one of avg, sum, \
         count, min, max, p50, p95, p99, integral"
    );
    // A shape problem names its path too.
    doc["panels"][0]["type"] = json!("pie");
    let reply = api.post(&doc);
    assert_eq!(
        reply.body["error"]["details"]["problems"][0]["path"],
        "panels[0].type"
    );
    assert_eq!(api.get(LIST).body, json!({"dashboards": []}));
}

fn bounds_of_size_panels_and_dashboards_per_tenant(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend
        .launch(dir.path())
        .env("LUMINATE_DASHBOARDS_MAX_PANELS", "1")
        .env("LUMINATE_DASHBOARDS_MAX_PER_TENANT", "2")
        .env("LUMINATE_DASHBOARDS_MAX_BODY_BYTES", "2048")
        .start();
    let api = Api::of(&server);
    let mut two_panels = dashboard("two", "Two", &[]);
    let second = two_panels["panels"][0].clone();
    two_panels["panels"].as_array_mut().unwrap().push(second);
    two_panels["panels"][1]["id"] = json!("p2");
    let reply = api.post(&two_panels);
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body["error"]["message"],
        "invalid dashboard: panels: 2 panels, more than the maximum of 1 (dashboards.max_panels)"
    );
    let mut big = dashboard("big", "Big", &[]);
    big["title"] = json!("x".repeat(3000));
    let reply = api.post(&big);
    assert_eq!((reply.status, reply.code()), (413, "PAYLOAD_TOO_LARGE"));
    assert_eq!(reply.body["error"]["details"]["max_body_bytes"], 2048);
    assert_eq!(api.post(&dashboard("a", "A", &[])).status, 201);
    assert_eq!(api.post(&dashboard("b", "B", &[])).status, 201);
    let third = api.post(&dashboard("c", "C", &[]));
    assert_eq!((third.status, third.code()), (400, "INVALID_REQUEST"));
    assert!(
        third.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dashboards.max_per_tenant"),
        "{}",
        third.body
    );
    // Replacing one is not a new one.
    let mut a = dashboard("a", "A2", &[]);
    a["version"] = json!(1);
    assert_eq!(api.put("a", &a).status, 200);
}

fn tenants_see_only_their_own_dashboards_and_scopes_apply(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = with_secret(backend.launch(dir.path())).start();
    let client = Client::of(&server);
    let rw = ["read", "write"];
    let (a, b) = (token("tenant_a", &rw), token("tenant_b", &rw));
    let a_reader = token("tenant_a", &["read"]);
    let post = |t: &str, body: &Value| client.post(LIST, t, body);

    assert_eq!(post(&a, &dashboard("ops", "A's ops", &[])).status, 201);
    assert_eq!(ids(&client.get(LIST, &b)), Vec::<String>::new());
    assert_eq!(client.get(&format!("{LIST}/ops"), &b).status, 404);
    assert_eq!(client.delete(&format!("{LIST}/ops"), &b).status, 404);
    // The same id is free in another tenant.
    assert_eq!(post(&b, &dashboard("ops", "B's ops", &[])).status, 201);
    assert_eq!(
        client.get(&format!("{LIST}/ops"), &a).body["dashboard"]["title"],
        "A's ops"
    );
    // `read` views, `write` changes.
    assert_eq!(client.get(&format!("{LIST}/ops"), &a_reader).status, 200);
    assert_eq!(post(&a_reader, &dashboard("x", "X", &[])).status, 403);
    assert_eq!(client.delete(&format!("{LIST}/ops"), &a_reader).status, 403);
    assert_eq!(client.send("GET", LIST, None, None).status, 401);
}

on_each_backend!(
    create_list_replace_delete_and_a_stale_version_conflicts,
    validation_names_the_json_path_of_each_problem,
    bounds_of_size_panels_and_dashboards_per_tenant,
    tenants_see_only_their_own_dashboards_and_scopes_apply,
    import_export_import_gives_the_same_dashboard,
    a_panel_query_with_variables_answers_as_the_same_query_by_hand,
);

#[test]
fn dashboards_survive_a_restart_and_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let api = Api::of(&server);
    assert_eq!(api.post(&dashboard("ops", "Ops", &[])).status, 201);
    let before = api.get(&format!("{LIST}/ops")).body;
    server.terminate();

    let server = Luminate::start(dir.path());
    let api = Api::of(&server);
    assert_eq!(api.get(&format!("{LIST}/ops")).body, before);
    let mut change = dashboard("ops", "Ops v2", &[]);
    change["version"] = json!(1);
    assert_eq!(api.put("ops", &change).status, 200);
    assert_eq!(api.post(&dashboard("new", "New", &[])).status, 201);
    let acknowledged = api.get(LIST).body;
    server.kill9();

    let server = Luminate::start(dir.path());
    let api = Api::of(&server);
    assert_eq!(api.get(LIST).body, acknowledged);
    assert_eq!(
        api.get(&format!("{LIST}/ops")).body["dashboard"]["version"],
        2
    );
}

fn import_export_import_gives_the_same_dashboard(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let api = Api::of(&server);
    let imported = api.post(&shipped());
    assert_eq!(imported.status, 201, "{}", imported.body);
    let exported = api.get(&format!("{LIST}/customer_overview")).body;
    let mut expected = shipped();
    expected["dashboard"]["version"] = json!(1);
    assert_eq!(exported, expected);

    assert_eq!(
        api.call("DELETE", &format!("{LIST}/customer_overview"), None)
            .status,
        204
    );
    assert_eq!(api.post(&exported).status, 201);
    assert_eq!(api.get(&format!("{LIST}/customer_overview")).body, exported);

    // Any text survives the trip through storage unchanged.
    let hostile = "it's \\ \"quoted\" '; DROP TABLE dashboards; -- é 🚀";
    let created = api.post(&dashboard("hostile", hostile, &[hostile])).body;
    assert_eq!(created["dashboard"]["title"], hostile);
    assert_eq!(api.get(&format!("{LIST}/hostile")).body, created);
}

fn a_panel_query_with_variables_answers_as_the_same_query_by_hand(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let server = backend.launch(dir.path()).start();
    let api = Api::of(&server);
    let now = now_ms();
    let mut points = Vec::new();
    for i in 0..60 {
        for (customer, region, base) in [
            ("cust_1", "eu-west-1", 100.0),
            ("cust_1", "us-east-1", 900.0),
            ("cust_2", "eu-west-1", 300.0),
            ("cust_3", "us-west-2", 50.0),
        ] {
            let dims = [("customer_id", customer), ("region", region)];
            points.push(point(
                "api_latency",
                now - i * 60_000,
                base + i as f64,
                &dims,
            ));
        }
    }
    assert_eq!(server.write(&points).0, 200);
    api.post(&shipped());
    let exported = api.get(&format!("{LIST}/customer_overview")).body;
    let d = from_value(exported).unwrap();
    let choices = Choices::from([
        (
            "customer_id".to_owned(),
            FilterValue::AnyOf(vec!["cust_1".into(), "cust_2".into()]),
        ),
        (
            "region".to_owned(),
            FilterValue::AnyOf(vec!["eu-west-1".into()]),
        ),
    ]);
    let resolved = Value::Object(panel_query(&d, &d.panels[1], &choices, None).unwrap());
    let by_hand = json!({"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p95",
        "filters": {"customer_id": ["cust_1", "cust_2"], "region": "eu-west-1"},
        "groupBy": ["customer_id"], "limit": 10, "timeRange": {"relative": "24h"}, "interval": "5m"});
    assert_eq!(resolved, by_hand);
    let answer = |q: &Value| {
        let mut body = server.query(q);
        body.as_object_mut().unwrap().remove("executionTimeMs");
        body
    };
    let panel = answer(&resolved);
    assert_eq!(panel, answer(&by_hand));
    let mut groups: Vec<_> = panel["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["groupKey"]["customer_id"].as_str().unwrap().to_owned())
        .collect();
    groups.sort();
    assert_eq!(groups, ["cust_1", "cust_2"]);
}

/// Stateless replicas over one ClickHouse database: a dashboard saved through one is read, replaced
/// and deleted through the other at once, and a stale version is refused across them.
#[cfg(feature = "clickhouse")]
#[test]
fn two_clickhouse_replicas_see_the_same_dashboards() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let address = luminate_clickhouse::testing::shared().address();
    let replica = |dir: &std::path::Path| {
        Launch::new(dir)
            .clickhouse(&[&address], "e2e_dashboard_replicas")
            .start()
    };
    let (a, b) = (replica(dir_a.path()), replica(dir_b.path()));
    let (a, b) = (Api::of(&a), Api::of(&b));
    assert_eq!(a.post(&dashboard("ops", "Ops", &["team"])).status, 201);
    assert_eq!(b.get(LIST).body["dashboards"][0]["title"], "Ops");
    assert_eq!(b.post(&dashboard("ops", "Ops", &[])).status, 409);
    let mut change = dashboard("ops", "Ops v2", &[]);
    change["version"] = json!(1);
    assert_eq!(b.put("ops", &change).status, 200);
    let stale = a.put("ops", &change);
    assert_eq!((stale.status, stale.code()), (409, "CONFLICT"));
    assert_eq!(
        a.get(&format!("{LIST}/ops")).body["dashboard"]["title"],
        "Ops v2"
    );
    assert_eq!(a.call("DELETE", &format!("{LIST}/ops"), None).status, 204);
    assert_eq!(b.get(&format!("{LIST}/ops")).status, 404);
}

/// What `scripts/run.sh` does: the demo data of `examples/demo.sh`, then every file of
/// `deploy/dashboards/` imported; every panel, as a viewer who chose nothing runs it, and every query
/// variable answer with data.
#[test]
fn the_shipped_dashboards_draw_the_demo_data() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let api = Api::of(&server);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let loaded = std::process::Command::new("bash")
        .arg(format!("{root}/examples/demo.sh"))
        .arg("load")
        .env("LUMINATE_URL", &server.base)
        .output()
        .unwrap();
    assert!(loaded.status.success(), "{loaded:?}");
    let mut files: Vec<_> = std::fs::read_dir(format!("{root}/deploy/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    for file in files {
        let document: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let created = api.post(&document);
        assert_eq!(created.status, 201, "{file:?}: {}", created.body);
        let d = from_value(created.body).unwrap();
        for variable in d.variables.iter().filter_map(|v| v.query.clone()) {
            let values = server.query(&Value::Object(variable));
            assert!(
                !values["results"].as_array().unwrap().is_empty(),
                "{file:?}: {values}"
            );
        }
        for panel in &d.panels {
            let query = panel_query(&d, panel, &Choices::new(), None).unwrap();
            let answer = server.query(&Value::Object(query));
            assert!(
                !answer["results"].as_array().unwrap().is_empty(),
                "{file:?} panel {}: {answer}",
                panel.id
            );
        }
    }
}
