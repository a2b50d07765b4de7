//! The document and the router agree: every (method, path) the router serves is documented and every
//! documented one is served, under the default configuration and when the exposition moves or goes.
//! The router's list is read from the router itself, so a route added without a `#[utoipa::path]`
//! attribute (and its entry in [`super::ApiDoc`]) fails here.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use super::document;
use crate::config::Config;
use crate::testing::{MemoryStore, router_over};

/// The methods axum's `MethodRouter` has a field for, in its `Debug` order.
const METHODS: [&str; 9] = [
    "get", "head", "delete", "options", "patch", "post", "put", "trace", "connect",
];

/// (METHOD, path) of every route of `router`. axum keeps no public list of its routes, so this reads
/// its `Debug` output: the main path router's `node` maps each route id to its path, and its
/// `routes` map each id to a `MethodRouter` whose method fields are `None` or an endpoint. (A change
/// of that output in an axum upgrade makes the parse find nothing, which fails loudly below.)
fn served(router: &axum::Router) -> BTreeSet<(String, String)> {
    let debug = format!("{router:?}");
    // The fallback router comes after the main one and holds only the fallbacks.
    let main = debug
        .split_once("fallback_router:")
        .map_or(debug.as_str(), |(main, _)| main);
    let (routes, node) = main
        .split_once("node: Node { paths: {")
        .expect("the router's Debug output lists its paths");
    let paths: Vec<(u64, String)> = node
        .split("RouteId(")
        .skip(1)
        .map(|entry| {
            let (id, rest) = entry.split_once(')').expect("RouteId(n)");
            let path = rest
                .split('"')
                .nth(1)
                .expect("a quoted path after the route id");
            (id.parse().expect("a numeric route id"), path.to_owned())
        })
        .collect();
    let mut served = BTreeSet::new();
    for entry in routes.split("RouteId(").skip(1) {
        let (id, endpoint) = entry.split_once(')').expect("RouteId(n)");
        let id: u64 = id.parse().expect("a numeric route id");
        let (_, path) = paths
            .iter()
            .find(|(i, _)| *i == id)
            .unwrap_or_else(|| panic!("route id {id} has a path"));
        assert!(
            endpoint.contains("MethodRouter"),
            "{path}: not a method router: {endpoint}"
        );
        for method in METHODS {
            let field = [format!("{{ {method}: "), format!(", {method}: ")]
                .into_iter()
                .find_map(|f| endpoint.find(&f).map(|at| at + f.len()))
                .unwrap_or_else(|| panic!("{path}: no `{method}` field in {endpoint}"));
            if !endpoint[field..].starts_with("None") {
                // A catch-all segment (`{*path}`) is a path parameter to OpenAPI (`{path}`).
                served.insert((method.to_uppercase(), path.replace("{*", "{")));
            }
        }
    }
    served
}

/// (METHOD, path) of every operation of the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    documented
}

/// The web UI's static files (`/`, `/ui`, `/ui/…`) are pages, not API: the document leaves them out.
fn is_ui(path: &str) -> bool {
    path == "/" || path == crate::ui::PREFIX || path.starts_with("/ui/")
}

fn assert_in_sync(config: Config) -> BTreeSet<(String, String)> {
    let doc = document(&config);
    let router = router_over(Arc::new(MemoryStore::default()), config);
    let served: BTreeSet<_> = served(&router)
        .into_iter()
        .filter(|(_, path)| !is_ui(path))
        .collect();
    assert!(
        served.contains(&("POST".into(), "/api/v1/write".into())),
        "the router's routes were not read: {served:?}"
    );
    let documented = documented(&doc);
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "served but not in the OpenAPI document (add a #[utoipa::path] attribute to the handler and \
         list it in openapi::ApiDoc): {undocumented:?}\ndocumented but not served: {not_served:?}"
    );
    served
}

#[test]
fn every_served_route_is_documented_and_every_documented_one_served() {
    let served = assert_in_sync(Config::default());
    assert!(served.contains(&("GET".into(), "/metrics".into())));
    assert!(served.contains(&("GET".into(), super::PATH.into())));
    assert!(served.contains(&("POST".into(), "/prometheus/api/v1/query".into())));
}

#[test]
fn the_exposition_is_documented_where_the_configuration_serves_it() {
    let mut moved = Config::default();
    moved.metrics.path = "/internal/metrics".into();
    let served = assert_in_sync(moved);
    assert!(served.contains(&("GET".into(), "/internal/metrics".into())));
    assert!(!served.iter().any(|(_, path)| path == "/metrics"));

    let mut disabled = Config::default();
    disabled.metrics.enabled = false;
    let served = assert_in_sync(disabled);
    assert!(!served.iter().any(|(_, path)| path == "/metrics"));
}

#[test]
fn guarded_operations_name_their_scope_and_the_guards_refusals() {
    let doc = document(&Config::default());
    let query = &doc["paths"]["/api/v1/query"]["post"];
    assert!(
        query["description"]
            .as_str()
            .unwrap()
            .ends_with("Scope: `read` (with `auth.enabled`)."),
        "{query}"
    );
    for status in ["401", "403", "429", "503"] {
        assert!(query["responses"][status].is_object(), "{status}: {query}");
    }
    let health = &doc["paths"]["/api/v1/health"]["get"];
    assert!(health.get("security").is_none());
    assert!(health["responses"].get("401").is_none());
    assert_eq!(doc["openapi"], "3.1.0");
}

#[test]
fn operation_ids_are_unique_and_no_get_takes_a_body() {
    let doc = document(&Config::default());
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap().to_owned();
            assert!(ids.insert(id.clone()), "{method} {path}: {id} repeated");
            if method == "get" {
                assert!(operation.get("requestBody").is_none(), "{path}");
            }
        }
    }
    assert!(ids.contains("promQuery") && ids.contains("promQueryPost"));
}
