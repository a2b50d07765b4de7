//! The checks a dashboard passes before it is saved, each problem named by its JSON path: ids valid
//! and unique, panels inside the 24-column grid, every variable well formed and every `$variable` a
//! panel uses declared, and every panel query accepted by the parser of `POST /api/v1/query` as a
//! viewer would run it (variables bound to their default, else a placeholder).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::document::{Dashboard, Panel, SCHEMA_VERSION, Variable, VariableType};
use super::resolve::resolve;
use super::{GRID_COLUMNS, Problem, is_valid_id};
use crate::filter::FilterValue;
use crate::query::{
    LIST_DIMENSION_VALUES, PlannedQuery, QueryLimits, QueryRequest, TimeRangeRequest,
    resolve_time_range,
};
use crate::time::{now_ms, parse_duration};
use crate::validate::is_identifier;

/// Bounds of one dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardLimits {
    /// Most panels.
    pub max_panels: usize,
    /// The limits every panel query is checked against (the server's).
    pub query: QueryLimits,
}

/// Most variables of one dashboard.
pub const MAX_VARIABLES: usize = 50;
/// Most digits after the decimal point a panel may show.
pub const MAX_DECIMALS: u8 = 10;
/// The value a variable without a default or options stands for while its panels are checked.
const PLACEHOLDER: &str = "placeholder";

/// Every problem of `dashboard`, in document order; empty when it may be saved.
pub fn validate(dashboard: &Dashboard, limits: &DashboardLimits) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |path: String, message: String| problems.push(Problem::new(path, message));
    if !is_valid_id(&dashboard.id) {
        problem("id".into(), id_rule(&dashboard.id));
    }
    if dashboard.title.trim().is_empty() {
        problem("title".into(), "must not be empty".into());
    }
    for (i, tag) in dashboard.tags.iter().enumerate() {
        if tag.trim().is_empty() {
            problem(format!("tags[{i}]"), "must not be empty".into());
        }
    }
    if let Some(range) = &dashboard.time_range
        && let Err((path, message)) = check_time_range(range)
    {
        // The parser names `timeRange` itself (`.timeRange.start`).
        let path = path.strip_prefix(".timeRange").unwrap_or(&path);
        problem(format!("timeRange{path}"), message);
    }
    if let Some(refresh) = &dashboard.refresh_interval
        && let Err(e) = parse_duration(refresh)
    {
        problem("refreshInterval".into(), e.to_string());
    }
    if dashboard.schema_version != SCHEMA_VERSION {
        problem(
            "schemaVersion".into(),
            format!(
                "{} is not supported; this server reads {SCHEMA_VERSION}",
                dashboard.schema_version
            ),
        );
    }
    if dashboard.panels.len() > limits.max_panels {
        problem(
            "panels".into(),
            format!(
                "{} panels, more than the maximum of {} (dashboards.max_panels)",
                dashboard.panels.len(),
                limits.max_panels
            ),
        );
    }
    if dashboard.variables.len() > MAX_VARIABLES {
        problem(
            "variables".into(),
            format!(
                "{} variables, more than the maximum of {MAX_VARIABLES}",
                dashboard.variables.len()
            ),
        );
    }
    let mut names = HashSet::new();
    for (i, variable) in dashboard.variables.iter().enumerate() {
        if !names.insert(variable.name.as_str()) {
            problem(
                format!("variables[{i}].name"),
                format!("{:?} is declared twice", variable.name),
            );
        }
        check_variable(variable, limits, &mut |path, message| {
            problem(format!("variables[{i}]{path}"), message)
        });
    }
    let mut ids = HashSet::new();
    for (i, panel) in dashboard.panels.iter().enumerate() {
        let at = |field: &str| format!("panels[{i}].{field}");
        if !is_valid_id(&panel.id) {
            problem(at("id"), id_rule(&panel.id));
        } else if !ids.insert(panel.id.as_str()) {
            problem(at("id"), format!("{:?} is used by another panel", panel.id));
        }
        let g = panel.grid_position;
        if g.w == 0 || g.h == 0 {
            problem(at("gridPosition"), "w and h must be at least 1".into());
        } else if g.x.saturating_add(g.w) > GRID_COLUMNS {
            problem(
                at("gridPosition"),
                format!(
                    "x + w is {}, past the grid's {GRID_COLUMNS} columns",
                    u64::from(g.x) + u64::from(g.w)
                ),
            );
        }
        if let Some(decimals) = panel.display.as_ref().and_then(|d| d.decimals)
            && decimals > MAX_DECIMALS
        {
            problem(
                at("display.decimals"),
                format!("{decimals} is more than the maximum of {MAX_DECIMALS}"),
            );
        }
        check_panel_query(dashboard, panel, limits, &mut |path, message| {
            problem(format!("panels[{i}].query{path}"), message)
        });
    }
    problems
}

fn id_rule(id: &str) -> String {
    format!(
        "{id:?} is not a valid id: 1 to {} characters of A-Z a-z 0-9 _ -",
        super::MAX_ID_LEN
    )
}

fn check_time_range(range: &Map<String, Value>) -> Result<(), (String, String)> {
    let request: TimeRangeRequest = serde_json::from_value(Value::Object(range.clone()))
        .map_err(|e| (String::new(), e.to_string()))?;
    resolve_time_range(Some(request), now_ms())
        .map(drop)
        .map_err(|e| split_field(&e.message))
}

/// Parses a query as `POST /api/v1/query` does; a problem's path (relative to the query, `""` or
/// `.field`) and message.
fn parse(query: Map<String, Value>, limits: &QueryLimits) -> Result<(), (String, String)> {
    let request: QueryRequest =
        serde_json::from_value(Value::Object(query)).map_err(|e| (String::new(), e.to_string()))?;
    PlannedQuery::from_request(request, now_ms(), limits)
        .map(drop)
        .map_err(|e| split_field(&e.message))
}

/// The query parser's messages start with the field they are about (`aggregation: unknown "p42"`):
/// that field goes into the path.
fn split_field(message: &str) -> (String, String) {
    if let Some((field, rest)) = message.split_once(": ")
        && !field.is_empty()
        && field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
    {
        return (format!(".{field}"), rest.to_owned());
    }
    (String::new(), message.to_owned())
}

fn check_variable(
    variable: &Variable,
    limits: &DashboardLimits,
    problem: &mut impl FnMut(String, String),
) {
    if !is_identifier(&variable.name) {
        problem(
            ".name".into(),
            format!(
                "{:?} is not a valid variable name (a letter or _, then letters, digits or _)",
                variable.name
            ),
        );
    }
    match variable.variable_type {
        VariableType::Query => match &variable.query {
            None => problem(
                ".query".into(),
                "a query variable needs a listDimensionValues query".into(),
            ),
            Some(query) => {
                if query.get("queryType").and_then(Value::as_str) != Some(LIST_DIMENSION_VALUES) {
                    problem(
                        ".query.queryType".into(),
                        format!("must be {LIST_DIMENSION_VALUES}"),
                    );
                } else if let Err((path, message)) = parse(query.clone(), &limits.query) {
                    problem(format!(".query{path}"), message);
                }
            }
        },
        VariableType::Custom => {
            if variable.options.is_empty() {
                problem(
                    ".options".into(),
                    "a custom variable needs at least one option".into(),
                );
            }
            if variable.query.is_some() {
                problem(".query".into(), "only query variables have a query".into());
            }
        }
    }
    let defaults = match &variable.default {
        None => return,
        Some(FilterValue::One(v)) => std::slice::from_ref(v),
        Some(FilterValue::AnyOf(vs)) => {
            if !variable.multi {
                problem(
                    ".default".into(),
                    "a list of values needs \"multi\": true".into(),
                );
            }
            vs.as_slice()
        }
    };
    if variable.variable_type == VariableType::Custom {
        for value in defaults {
            if !variable.options.contains(value) {
                problem(
                    ".default".into(),
                    format!("{value:?} is not one of the options"),
                );
            }
        }
    }
}

fn check_panel_query(
    dashboard: &Dashboard,
    panel: &Panel,
    limits: &DashboardLimits,
    problem: &mut impl FnMut(String, String),
) {
    // The values a viewer who chose nothing would see, never "all": a filter dropped for "all" would
    // hide a value the parser refuses.
    let bind = |name: &str| {
        let variable = dashboard.variables.iter().find(|v| v.name == name)?;
        Some(match &variable.default {
            Some(FilterValue::One(v)) => vec![v.clone()],
            Some(FilterValue::AnyOf(vs)) if !vs.is_empty() => vs.clone(),
            _ => vec![
                variable
                    .options
                    .first()
                    .cloned()
                    .unwrap_or_else(|| PLACEHOLDER.into()),
            ],
        })
    };
    match resolve(panel, bind, dashboard.time_range.as_ref()) {
        Err((key, name)) => problem(
            format!(".filters.{key}"),
            format!("variable ${name} is not declared"),
        ),
        Ok(query) => {
            if let Err((path, message)) = parse(query, &limits.query) {
                problem(path, message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::document::from_value;
    use serde_json::json;

    fn limits() -> DashboardLimits {
        DashboardLimits {
            max_panels: 3,
            query: QueryLimits::default(),
        }
    }

    fn panel(id: &str, x: u32, w: u32, query: Value) -> Value {
        json!({"id": id, "title": id, "type": "timeseries",
               "gridPosition": {"x": x, "y": 0, "w": w, "h": 4}, "query": query})
    }

    fn problems(doc: Value) -> Vec<String> {
        let d = from_value(doc).unwrap();
        validate(&d, &limits())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_shipped_dashboards_are_valid() {
        let limits = DashboardLimits {
            max_panels: 100,
            query: QueryLimits::default(),
        };
        for text in [
            include_str!("../../../../deploy/dashboards/customer_overview.json"),
            include_str!("../../../../deploy/dashboards/demo_api.json"),
        ] {
            let d = super::super::document::parse_document(text.as_bytes()).unwrap();
            assert_eq!(validate(&d, &limits), [], "{}", d.id);
        }
    }

    #[test]
    fn each_problem_is_named_by_its_path() {
        let good = json!({"queryType": "aggregate", "metricName": "m", "aggregation": "p95"});
        let doc = json!({"id": "bad id", "title": " ", "timeRange": {"relative": "24h"},
        "refreshInterval": "soon", "schemaVersion": 2,
        "panels": [
            panel("a", 0, 12, good.clone()),
            panel("a", 20, 6, good.clone()),
            panel("c", 0, 24, json!({"queryType": "aggregate", "metricName": "m", "aggregation": "p42"})),
            panel("d", 0, 0, json!({"queryType": "aggregate", "metricName": "m", "aggregation": "avg",
                "filters": {"region": "$region", "host": "${cust}"}}))
        ],
        "variables": [
            {"name": "cust", "type": "custom", "options": ["a"], "default": ["a"]},
            {"name": "cust", "type": "query", "query": {"queryType": "range", "metricName": "m"}}
        ]});
        assert_eq!(
            problems(doc),
            [
                r#"id: "bad id" is not a valid id: 1 to 128 characters of A-Z a-z 0-9 _ -"#,
                "title: must not be empty",
                "refreshInterval: invalid duration \"soon\": expected a positive integer followed by ms, s, m, h, d or w (e.g. 90s, 15m, 7d)",
                "schemaVersion: 2 is not supported; this server reads 1",
                "panels: 4 panels, more than the maximum of 3 (dashboards.max_panels)",
                "variables[0].default: a list of values needs \"multi\": true",
                "variables[1].name: \"cust\" is declared twice",
                "variables[1].query.queryType: must be listDimensionValues",
                "panels[1].id: \"a\" is used by another panel",
                "panels[1].gridPosition: x + w is 26, past the grid's 24 columns",
                "panels[2].query.aggregation: unknown \"p42\"; expected one of avg, sum, count, min, max, p50, p95, p99, integral",
                "panels[3].gridPosition: w and h must be at least 1",
                "panels[3].query.filters.region: variable $region is not declared",
            ]
        );
    }

    #[test]
    fn panel_queries_are_checked_after_substitution() {
        let doc = |default: Value| {
            json!({"id": "d", "title": "T", "timeRange": {"relative": "1h"},
                "panels": [panel("a", 0, 24, json!({"queryType": "rate", "metricName": "m",
                    "filters": {"region": "$region"}}))],
                "variables": [{"name": "region", "type": "query", "multi": true, "default": default,
                    "query": {"queryType": "listDimensionValues", "metricName": "m", "dimension": "region"}}]})
        };
        // A timeseries rate without interval gets one; the multi default becomes an any-of list.
        assert!(problems(doc(json!(["eu", "us"]))).is_empty());
        assert_eq!(
            problems(doc(json!("bad\nvalue"))),
            ["panels[0].query.filters: value of \"region\" contains a control character"]
        );
        // Without any time range no interval can be chosen: the parser's own words.
        let mut no_range = doc(json!("eu"));
        no_range.as_object_mut().unwrap().remove("timeRange");
        assert_eq!(
            problems(no_range),
            ["panels[0].query: interval is required for rate queries"]
        );
    }
}
