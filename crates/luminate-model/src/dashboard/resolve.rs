//! What a panel's query becomes for a viewer: variables replaced by the chosen values
//! ([`super::variables`]), the time range filled in when the query has none (the viewer's, else the
//! dashboard's), and a timeseries panel's bucket width chosen when the query names none
//! ([`super::interval`]). The result is a query of `POST /api/v1/query`.

use std::time::Duration;

use serde_json::{Map, Value};

use super::interval::auto_interval;
use super::variables::{Choices, substitute};
use super::{Dashboard, Panel, PanelType, Problem};
use crate::filter::FilterValue;
use crate::query::{LIST_DIMENSION_VALUES, TimeRangeRequest, resolve_time_range};
use crate::time::{format_duration, now_ms};

/// `panel`'s query as a viewer of `dashboard` runs it: with `choices` for its variables (a variable
/// not chosen takes its `default`; without one it means all values: its filter is dropped) and
/// `time_range` (the viewer's pick; `None`: the dashboard's). A filter naming an undeclared variable
/// (a document saved unchecked) is a problem at its JSON path.
pub fn panel_query(
    dashboard: &Dashboard,
    panel: &Panel,
    choices: &Choices,
    time_range: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, Problem> {
    let bind = |name: &str| {
        let variable = dashboard.variables.iter().find(|v| v.name == name)?;
        let chosen = choices.get(name).or(variable.default.as_ref());
        Some(match chosen {
            Some(FilterValue::One(v)) => vec![v.clone()],
            Some(FilterValue::AnyOf(vs)) => vs.clone(),
            None => Vec::new(),
        })
    };
    let range = time_range.or(dashboard.time_range.as_ref());
    resolve(panel, bind, range).map_err(|(key, name)| {
        let at = dashboard
            .panels
            .iter()
            .position(|p| p.id == panel.id)
            .map_or_else(
                || format!("panel {:?}", panel.id),
                |i| format!("panels[{i}]"),
            );
        Problem::new(
            format!("{at}.query.filters.{key}"),
            format!("variable ${name} is not declared"),
        )
    })
}

/// [`panel_query`] with variables bound by `bind`; the first filter naming an undeclared variable
/// (its key and the name) is an error.
pub(crate) fn resolve(
    panel: &Panel,
    bind: impl Fn(&str) -> Option<Vec<String>>,
    time_range: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, (String, String)> {
    let mut query = panel.query.clone();
    if let Some(first) = substitute(&mut query, bind).into_iter().next() {
        return Err(first);
    }
    let query_type = query
        .get("queryType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if query_type == LIST_DIMENSION_VALUES {
        return Ok(query);
    }
    if !query.contains_key("timeRange")
        && let Some(range) = time_range
    {
        query.insert("timeRange".into(), Value::Object(range.clone()));
    }
    let bucketed = matches!(query_type.as_str(), "aggregate" | "rate");
    if panel.panel_type == PanelType::Timeseries
        && bucketed
        && !query.contains_key("interval")
        && let Some(span) = query.get("timeRange").and_then(span_of)
    {
        query.insert(
            "interval".into(),
            Value::String(format_duration(auto_interval(span))),
        );
    }
    Ok(query)
}

/// The length of a `timeRange`, if it is a valid one.
pub(crate) fn span_of(range: &Value) -> Option<Duration> {
    let request: TimeRangeRequest = serde_json::from_value(range.clone()).ok()?;
    let (start, end) = resolve_time_range(Some(request), now_ms()).ok()?;
    Some(Duration::from_millis(end.abs_diff(start)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::document::from_value;
    use serde_json::json;

    fn dashboard() -> Dashboard {
        from_value(json!({"id": "d", "title": "T", "timeRange": {"relative": "24h"},
            "panels": [
                {"id": "ts", "title": "p95", "type": "timeseries",
                 "gridPosition": {"x": 0, "y": 0, "w": 12, "h": 4},
                 "query": {"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p95",
                           "filters": {"customer_id": "$customer_id", "region": "${region}"}}},
                {"id": "own", "title": "rate", "type": "timeseries",
                 "gridPosition": {"x": 12, "y": 0, "w": 12, "h": 4},
                 "query": {"queryType": "rate", "metricName": "total_requests",
                           "timeRange": {"relative": "1h"}, "interval": "1m"}},
                {"id": "tbl", "title": "top", "type": "table",
                 "gridPosition": {"x": 0, "y": 4, "w": 24, "h": 4},
                 "query": {"queryType": "aggregate", "metricName": "api_requests", "aggregation": "count",
                           "groupBy": ["customer_id"], "filters": {"region": "$region"}}}
            ],
            "variables": [
                {"name": "customer_id", "type": "query", "query": {"queryType": "listDimensionValues",
                 "metricName": "api_latency", "dimension": "customer_id"}},
                {"name": "region", "type": "custom", "options": ["us-west-2", "us-east-1", "eu-west-1"],
                 "multi": true, "default": "us-west-2"}
            ]}))
        .unwrap()
    }

    fn query_of(panel: usize, choices: Choices, range: Option<Value>) -> Value {
        let d = dashboard();
        let range = range.map(|r| r.as_object().unwrap().clone());
        Value::Object(panel_query(&d, &d.panels[panel], &choices, range.as_ref()).unwrap())
    }

    #[test]
    fn defaults_the_dashboard_range_and_an_auto_interval() {
        // customer_id: no choice, no default: all customers (the filter is dropped).
        assert_eq!(
            query_of(0, Choices::new(), None),
            json!({"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p95",
                   "filters": {"region": "us-west-2"}, "timeRange": {"relative": "24h"},
                   "interval": "5m"})
        );
    }

    #[test]
    fn choices_and_the_viewers_range_win() {
        let choices = Choices::from([
            ("customer_id".into(), FilterValue::One("cust_1".into())),
            (
                "region".into(),
                FilterValue::AnyOf(vec!["eu-west-1".into(), "us-east-1".into()]),
            ),
        ]);
        assert_eq!(
            query_of(0, choices, Some(json!({"relative": "1h"}))),
            json!({"queryType": "aggregate", "metricName": "api_latency", "aggregation": "p95",
                   "filters": {"customer_id": "cust_1", "region": ["eu-west-1", "us-east-1"]},
                   "timeRange": {"relative": "1h"}, "interval": "15s"})
        );
    }

    #[test]
    fn an_undeclared_variable_is_named_by_its_path() {
        let mut d = dashboard();
        d.variables.pop();
        let e = panel_query(&d, &d.panels[2], &Choices::new(), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "panels[2].query.filters.region: variable $region is not declared"
        );
    }

    #[test]
    fn a_panels_own_range_and_interval_are_kept_and_tables_get_no_interval() {
        assert_eq!(
            query_of(1, Choices::new(), Some(json!({"relative": "7d"}))),
            json!({"queryType": "rate", "metricName": "total_requests",
                   "timeRange": {"relative": "1h"}, "interval": "1m"})
        );
        assert_eq!(
            query_of(2, Choices::new(), None),
            json!({"queryType": "aggregate", "metricName": "api_requests", "aggregation": "count",
                   "groupBy": ["customer_id"], "filters": {"region": "us-west-2"},
                   "timeRange": {"relative": "24h"}})
        );
    }
}
