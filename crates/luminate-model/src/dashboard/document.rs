//! The dashboard document (the design's "Dashboard Definition"): its fields, their JSON names, and how
//! a file or request body becomes one ([`parse_document`]: the design's `{"dashboard": {...}}` wrapper or
//! a bare document, with the JSON path of the first shape error). Panel and variable queries are kept as
//! the JSON the author wrote, so an export gives back exactly what was imported; what they mean is
//! checked by [`super::validate`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use super::Problem;
use crate::filter::FilterValue;

/// The `schemaVersion` this server writes and accepts.
pub const SCHEMA_VERSION: u32 = 1;

/// A dashboard: panels on a grid, template variables, and the server-kept `version`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Dashboard {
    /// Unique within the tenant; `A-Z a-z 0-9 _ -`, at most [`super::MAX_ID_LEN`] characters.
    pub id: String,
    /// Shown in lists and above the grid.
    pub title: String,
    /// Free labels; the list route filters by one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The query language's `timeRange` (`{"relative": "24h"}` or `start` and `end`): the range of
    /// every panel whose query has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<Map<String, Value>>,
    /// How often a viewer refetches the panels (`"30s"`); none: only on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_interval: Option<String>,
    /// The panels, in reading order.
    #[serde(default)]
    pub panels: Vec<Panel>,
    /// Template variables referenced as `$name` or `${name}` in panel filter values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    /// The document format's version ([`SCHEMA_VERSION`]).
    #[serde(default = "schema_version")]
    pub schema_version: u32,
    /// Kept by the server: 1 when created, one more at every replace. A replace must name the version
    /// it read (optimistic concurrency); an import may leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

fn schema_version() -> u32 {
    SCHEMA_VERSION
}

/// One panel: a query and how to show its answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Panel {
    /// Unique within the dashboard.
    pub id: String,
    /// Shown above the panel.
    pub title: String,
    /// How the answer is drawn.
    #[serde(rename = "type")]
    pub panel_type: PanelType,
    /// Where on the 24-column grid.
    pub grid_position: GridPosition,
    /// A query of `POST /api/v1/query`, possibly with variables in its filter values and without a
    /// `timeRange` (then the dashboard's) or an `interval` (then chosen, for timeseries panels).
    pub query: Map<String, Value>,
    /// Display settings; all optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<Display>,
}

/// The four panel types.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)] // the names are the design's
pub enum PanelType {
    Timeseries,
    Table,
    Gauge,
    Bar,
}

/// A rectangle on the grid, in grid units: columns `x..x+w` of 24, rows `y..y+h`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct GridPosition {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

/// How a panel shows numbers.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Display {
    /// Appended to values (`"ms"`, `"req/s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Digits after the decimal point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimals: Option<u8>,
    /// Values at or above `warning` / `critical` are marked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
    /// The series legend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legend: Option<Legend>,
}

/// Threshold levels of a panel, kept as written (`200` stays `200`, not `200.0`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Threshold {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub warning: Option<Number>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub critical: Option<Number>,
}

/// Whether and where the legend is shown.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Legend {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<LegendPosition>,
}

/// Where the legend goes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum LegendPosition {
    Bottom,
    Right,
}

/// A template variable: a name panels refer to, and where its choices come from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// Referenced as `$name` or `${name}`; an identifier.
    pub name: String,
    /// Shown beside the selector; the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Where the choices come from.
    #[serde(rename = "type")]
    pub variable_type: VariableType,
    /// For `query` variables: a `listDimensionValues` query whose values are the choices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Map<String, Value>>,
    /// For `custom` variables: the choices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Whether several values may be chosen at once (the filter then matches any of them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub multi: bool,
    /// The value (or, for `multi`, values) chosen when the viewer has chosen none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<FilterValue>,
}

/// Where a variable's choices come from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum VariableType {
    Query,
    Custom,
}

/// Reads a dashboard from JSON: the design's `{"dashboard": {...}}` file or the bare document. A
/// document that does not have the dashboard's shape gives the JSON path of its first problem.
pub fn parse_document(body: &[u8]) -> Result<Dashboard, Problem> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Problem {
        path: ".".into(),
        message: format!("not a JSON document: {e}"),
    })?;
    from_value(value)
}

/// [`parse_document`] over parsed JSON.
pub fn from_value(value: Value) -> Result<Dashboard, Problem> {
    let value = match value {
        Value::Object(mut object) if object.len() == 1 && object.contains_key("dashboard") => {
            object.remove("dashboard").unwrap_or(Value::Null)
        }
        other => other,
    };
    serde_path_to_error::deserialize(value).map_err(|e| Problem {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_wrapper_and_the_bare_document_read_the_same() {
        let bare = json!({"id": "d", "title": "T", "panels": []});
        let wrapped = json!({"dashboard": bare.clone()});
        let a = from_value(bare).unwrap();
        assert_eq!(a, from_value(wrapped).unwrap());
        assert_eq!(a.schema_version, SCHEMA_VERSION);
        assert_eq!(a.version, None);
    }

    #[test]
    fn a_shape_error_names_its_json_path() {
        let doc = json!({"id": "d", "title": "T", "panels": [
            {"id": "a", "title": "A", "type": "timeseries", "gridPosition": {"x": 0, "y": 0, "w": 1, "h": 1}, "query": {}},
            {"id": "b", "title": "B", "type": "pie", "gridPosition": {"x": 0, "y": 0, "w": 1, "h": 1}, "query": {}}
        ]});
        let e = from_value(doc).unwrap_err();
        assert_eq!(e.path, "panels[1].type");
        assert!(
            e.message.starts_with("unknown variant `pie`"),
            "{}",
            e.message
        );
        let e = from_value(json!({"id": "d", "title": "T", "colour": "red"})).unwrap_err();
        assert_eq!(e.path, "colour");
        assert!(
            e.message.starts_with("unknown field `colour`"),
            "{}",
            e.message
        );
        let e = parse_document(b"{").unwrap_err();
        assert!(
            e.message.starts_with("not a JSON document"),
            "{}",
            e.message
        );
    }

    #[test]
    fn serializing_gives_back_what_was_read() {
        let doc = json!({"id": "d", "title": "T", "tags": ["x"], "timeRange": {"relative": "24h"},
            "refreshInterval": "30s",
            "panels": [{"id": "a", "title": "A", "type": "gauge",
                "gridPosition": {"x": 0, "y": 0, "w": 6, "h": 4},
                "query": {"queryType": "aggregate", "metricName": "m", "aggregation": "p95"},
                "display": {"unit": "ms", "decimals": 2, "threshold": {"warning": 200, "critical": 500.5},
                    "legend": {"show": true, "position": "bottom"}}}],
            "variables": [{"name": "region", "label": "Region", "type": "custom",
                "options": ["a", "b"], "multi": true, "default": ["a"]}],
            "schemaVersion": 1, "version": 3});
        let d = from_value(doc.clone()).unwrap();
        assert_eq!(serde_json::to_value(&d).unwrap(), doc);
    }
}
