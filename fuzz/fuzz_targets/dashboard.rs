//! Dashboard documents as `POST/PUT /api/v1/dashboards` and `luminate dashboards import` read them:
//! `parse_document`, then `validate` against the server's limits, then each panel's query as a viewer
//! runs it. Any input must end in a dashboard or a problem naming a JSON path, never a panic; a
//! dashboard must serialize and read back to itself (export gives back what was imported), and every
//! panel of a valid dashboard must resolve to a query the query route accepts.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_model::dashboard::document::parse_document;
use luminate_model::dashboard::variables::Choices;
use luminate_model::dashboard::{DashboardLimits, panel_query, validate};
use luminate_model::{PlannedQuery, QueryLimits, QueryRequest};

fuzz_target!(|data: &[u8]| {
    let Ok(dashboard) = parse_document(data) else {
        return;
    };
    let json = serde_json::to_vec(&dashboard).expect("a dashboard serializes");
    assert_eq!(
        parse_document(&json).as_ref(),
        Ok(&dashboard),
        "{}",
        String::from_utf8_lossy(&json)
    );
    let limits = DashboardLimits {
        max_panels: 100,
        query: QueryLimits::default(),
    };
    if !validate(&dashboard, &limits).is_empty() {
        return;
    }
    for panel in &dashboard.panels {
        let query = panel_query(&dashboard, panel, &Choices::new(), None)
            .unwrap_or_else(|p| panic!("a valid dashboard's panel does not resolve: {p}"));
        let request: QueryRequest =
            serde_json::from_value(serde_json::Value::Object(query.clone()))
                .unwrap_or_else(|e| panic!("panel {:?} resolves to {query:?}: {e}", panel.id));
        if let Err(e) = PlannedQuery::from_request(request, 1_800_000_000_000, &limits.query) {
            panic!(
                "panel {:?} of a valid dashboard resolves to {query:?}: {e:?}",
                panel.id
            );
        }
    }
});
