//! `luminate query`: a query in the JSON query language (CONTRACT §4) from a file, stdin or flags —
//! flags override the file's fields — sent to `POST /api/v1/query` and printed as an aligned table
//! (the default on a terminal), the server's JSON (the default otherwise) or CSV.
//!
//! Rows: `range` one per point (`timestamp`, the dimension keys, `value`); `aggregate` one per group
//! (the `groupBy` keys, `value`, `count`), or with `interval` one per group and bucket (`timestamp`
//! after the keys); `rate` one per group and bucket (`rate`); `listDimensionValues` one per value
//! (`value`, `points`). Tables show timestamps in RFC 3339 (UTC), CSV as Unix ms.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Map, Value, json};

use super::client::{Client, Retry};
use super::{EXIT_INCOMPLETE, EXIT_OK, ServerArgs, usage_error};

/// How answers are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns.
    Table,
    /// The server's answer, as it came.
    Json,
    /// Comma-separated, with a header row.
    Csv,
}

/// `luminate query` arguments.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// A JSON query file (`-`: stdin); the flags below override its fields.
    file: Option<PathBuf>,
    /// `queryType`: range, aggregate, rate or listDimensionValues (default: aggregate with --agg,
    /// else range).
    #[arg(long = "type")]
    query_type: Option<String>,
    /// `metricName`.
    #[arg(long)]
    metric: Option<String>,
    /// `aggregation`: avg, sum, count, min, max, p50, p95, p99, integral.
    #[arg(long)]
    agg: Option<String>,
    /// A `groupBy` key (repeat for several, in order).
    #[arg(long = "by")]
    group_by: Vec<String>,
    /// A filter `key=value`; `key=v1|v2` (or the key repeated) matches any of the values.
    #[arg(long = "filter")]
    filters: Vec<String>,
    /// `timeRange.relative`: the range ending now (`15m`, `1h`, `7d`).
    #[arg(long, conflicts_with_all = ["start", "end"])]
    range: Option<String>,
    /// `timeRange.start` (Unix ms or RFC 3339).
    #[arg(long, requires = "end")]
    start: Option<String>,
    /// `timeRange.end` (Unix ms or RFC 3339).
    #[arg(long, requires = "start")]
    end: Option<String>,
    /// `interval`: bucket width (`1m`).
    #[arg(long)]
    interval: Option<String>,
    /// `limit`.
    #[arg(long)]
    limit: Option<u64>,
    /// `timeout` (`10s`).
    #[arg(long)]
    timeout: Option<String>,
    /// `dimension` (listDimensionValues).
    #[arg(long)]
    dimension: Option<String>,
    /// How to print the answer: table on a terminal, json otherwise.
    #[arg(long, value_enum)]
    output: Option<Output>,
}

/// Runs `luminate query`.
pub fn run(args: QueryArgs) -> ExitCode {
    let query = match build(&args) {
        Ok(query) => query,
        Err(e) => return usage_error("query", &e),
    };
    let output = args.output.unwrap_or(if std::io::stdout().is_terminal() {
        Output::Table
    } else {
        Output::Json
    });
    let client = Client::new(&args.server);
    let body = query.to_string();
    let reply = client.post(
        "/api/v1/query",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
        Retry::Query,
        |reason| eprintln!("luminate query: retrying: {reason}"),
    );
    let reply = match reply {
        Ok(reply) if reply.status == 200 => reply,
        Ok(reply) => {
            eprintln!("luminate query: {}", reply.error_message());
            return ExitCode::from(EXIT_INCOMPLETE);
        }
        Err(e) => {
            eprintln!("luminate query: {e}");
            return ExitCode::from(EXIT_INCOMPLETE);
        }
    };
    if output == Output::Json {
        println!("{}", reply.body.trim_end());
        return ExitCode::from(EXIT_OK);
    }
    let answer: Value = match serde_json::from_str(&reply.body) {
        Ok(answer) => answer,
        Err(e) => {
            eprintln!("luminate query: the answer is not JSON: {e}");
            return ExitCode::from(EXIT_INCOMPLETE);
        }
    };
    let (header, rows) = rows(&answer);
    match output {
        Output::Table => print!("{}", table(&header, &rows)),
        Output::Csv => print!("{}", csv(&header, &rows)),
        Output::Json => {}
    }
    if answer["truncated"] == json!(true) {
        eprintln!("luminate query: the answer was cut at the query's limit (truncated: true)");
    }
    ExitCode::from(EXIT_OK)
}

/// The query body: the file's object, then each flag given.
fn build(args: &QueryArgs) -> Result<Value, String> {
    let mut query = match &args.file {
        None => Map::new(),
        Some(path) => {
            let mut text = String::new();
            let read = if path.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)
            } else {
                std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
            };
            read.map_err(|e| format!("{}: {e}", path.display()))?;
            match serde_json::from_str(&text) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(format!("{}: expected a JSON object", path.display())),
                Err(e) => return Err(format!("{}: not JSON: {e}", path.display())),
            }
        }
    };
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            query.insert(key.to_owned(), value);
        }
    };
    set("metricName", args.metric.clone().map(Value::from));
    set("aggregation", args.agg.clone().map(Value::from));
    set("interval", args.interval.clone().map(Value::from));
    set("limit", args.limit.map(Value::from));
    set("timeout", args.timeout.clone().map(Value::from));
    set("dimension", args.dimension.clone().map(Value::from));
    set(
        "timeRange",
        match (&args.range, &args.start, &args.end) {
            (Some(relative), _, _) => Some(json!({ "relative": relative })),
            (None, Some(start), Some(end)) => Some(json!({
                "start": timestamp_value(start),
                "end": timestamp_value(end),
            })),
            _ => None,
        },
    );
    if !args.group_by.is_empty() {
        set("groupBy", Some(json!(args.group_by)));
    }
    if !args.filters.is_empty() {
        set("filters", Some(Value::Object(filters(&args.filters)?)));
    }
    let query_type = args.query_type.clone().or_else(|| {
        (!query.contains_key("queryType")).then(|| {
            if query.contains_key("aggregation") {
                "aggregate".to_owned()
            } else {
                "range".to_owned()
            }
        })
    });
    if let Some(query_type) = query_type {
        query.insert("queryType".into(), query_type.into());
    }
    if !query.contains_key("metricName") {
        return Err("give --metric (or a query file with metricName)".into());
    }
    Ok(Value::Object(query))
}

/// Unix ms as a number, anything else (RFC 3339) as a string.
pub(super) fn timestamp_value(text: &str) -> Value {
    text.parse::<i64>()
        .map_or_else(|_| Value::from(text), Value::from)
}

/// `--filter k=v`, `k=v1|v2` and repeated keys as the `filters` object (a list for any-of).
pub(super) fn filters(specs: &[String]) -> Result<Map<String, Value>, String> {
    let mut out: Map<String, Value> = Map::new();
    for spec in specs {
        let (key, values) = spec
            .split_once('=')
            .ok_or_else(|| format!("--filter {spec:?}: expected key=value or key=v1|v2"))?;
        let mut values: Vec<Value> = values.split('|').map(Value::from).collect();
        let entry = out.entry(key.to_owned());
        match entry {
            serde_json::map::Entry::Vacant(slot) => {
                slot.insert(if values.len() == 1 {
                    values.remove(0)
                } else {
                    Value::Array(values)
                });
            }
            serde_json::map::Entry::Occupied(mut slot) => {
                let existing = slot.get_mut();
                if let Value::String(single) = existing {
                    *existing = Value::Array(vec![Value::from(single.clone())]);
                }
                if let Value::Array(list) = existing {
                    list.extend(values);
                }
            }
        }
    }
    Ok(out)
}

/// A cell: `Timestamp` is Unix ms, shown per output format.
enum Cell {
    Text(String),
    Number(String),
    Timestamp(i64),
}

/// The answer's columns and rows.
fn rows(answer: &Value) -> (Vec<String>, Vec<Vec<Cell>>) {
    let empty = Vec::new();
    let results = answer["results"].as_array().unwrap_or(&empty);
    let number = |v: &Value| Cell::Number(v.to_string());
    // A dimension a point does not carry (`null` here) is shown empty, as the API reads it (`""`).
    let text = |v: &Value| {
        Cell::Text(match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let timestamp = |v: &Value| v.as_i64().map_or_else(|| number(v), Cell::Timestamp);
    match answer["queryType"].as_str().unwrap_or("") {
        "range" => {
            let keys = keys(results.iter().map(|r| &r["dimensions"]), true);
            let mut header = vec!["timestamp".to_owned()];
            header.extend(keys.iter().cloned());
            header.push("value".into());
            let rows = results
                .iter()
                .map(|r| {
                    let mut row = vec![timestamp(&r["timestamp"])];
                    row.extend(keys.iter().map(|k| text(&r["dimensions"][k.as_str()])));
                    row.push(number(&r["value"]));
                    row
                })
                .collect();
            (header, rows)
        }
        "listDimensionValues" => (
            vec!["value".into(), "points".into()],
            results
                .iter()
                .map(|r| vec![text(&r["value"]), number(&r["points"])])
                .collect(),
        ),
        kind => {
            let keys = keys(results.iter().map(|r| &r["groupKey"]), false);
            let rate = kind == "rate";
            let bucketed = rate || results.iter().any(|r| r.get("points").is_some());
            let mut header = keys.clone();
            if bucketed {
                header.push("timestamp".into());
            }
            header.extend(if rate {
                vec!["rate".to_owned()]
            } else {
                vec!["value".to_owned(), "count".to_owned()]
            });
            let mut rows = Vec::new();
            for r in results {
                let group = || keys.iter().map(|k| text(&r["groupKey"][k.as_str()]));
                if !bucketed {
                    let mut row: Vec<Cell> = group().collect();
                    row.extend([number(&r["value"]), number(&r["count"])]);
                    rows.push(row);
                    continue;
                }
                for p in r["points"].as_array().unwrap_or(&empty) {
                    let mut row: Vec<Cell> = group().collect();
                    row.push(timestamp(&p["timestamp"]));
                    if rate {
                        row.push(number(&p["rate"]));
                    } else {
                        row.extend([number(&p["value"]), number(&p["count"])]);
                    }
                    rows.push(row);
                }
            }
            (header, rows)
        }
    }
}

/// The keys of the objects, in the order first seen (`groupBy` order), or sorted.
fn keys<'a>(objects: impl Iterator<Item = &'a Value>, sorted: bool) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for object in objects {
        for key in object.as_object().into_iter().flat_map(|o| o.keys()) {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
    }
    if sorted {
        keys.sort();
    }
    keys
}

/// An aligned table: text left-aligned, numbers right-aligned, two spaces between columns.
fn table(header: &[String], rows: &[Vec<Cell>]) -> String {
    let shown: Vec<Vec<(String, bool)>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| match cell {
                    Cell::Text(t) => (t.clone(), false),
                    Cell::Number(n) => (n.clone(), true),
                    Cell::Timestamp(ms) => (luminate_model::time::format_rfc3339(*ms), false),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            shown
                .iter()
                .map(|row| row[i].0.chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: Vec<(String, bool)>| {
        let mut text = String::new();
        for (i, (cell, right)) in cells.into_iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            if right {
                text.push_str(&" ".repeat(pad));
                text.push_str(&cell);
            } else {
                text.push_str(&cell);
                text.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.iter().map(|h| (h.clone(), false)).collect());
    for row in shown {
        line(row);
    }
    out
}

/// CSV with a header row; timestamps as Unix ms; fields quoted when they need it (RFC 4180).
fn csv(header: &[String], rows: &[Vec<Cell>]) -> String {
    let quote = |field: &str| {
        if field.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", field.replace('"', "\"\""))
        } else {
            field.to_owned()
        }
    };
    let mut out = String::new();
    let fields: Vec<String> = header.iter().map(|h| quote(h)).collect();
    out.push_str(&fields.join(","));
    out.push('\n');
    for row in rows {
        let fields: Vec<String> = row
            .iter()
            .map(|cell| match cell {
                Cell::Text(t) => quote(t),
                Cell::Number(n) => n.clone(),
                Cell::Timestamp(ms) => ms.to_string(),
            })
            .collect();
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_any_of_by_bar_or_repeat() {
        let specs = ["a=x", "b=y|z", "a=w", "c="].map(String::from);
        assert_eq!(
            Value::Object(filters(&specs).unwrap()),
            json!({"a": ["x", "w"], "b": ["y", "z"], "c": ""})
        );
        assert!(filters(&["nokey".into()]).is_err());
    }

    #[test]
    fn aggregate_rows_in_a_table_and_csv() {
        let answer = json!({"queryType": "aggregate", "results": [
            {"groupKey": {"c": "a,b"}, "value": 10.5, "count": 3},
            {"groupKey": {"c": "long_name"}, "value": 2.0, "count": 12}]});
        let (header, rows) = rows(&answer);
        assert_eq!(
            table(&header, &rows),
            "c          value  count\na,b         10.5      3\nlong_name    2.0     12\n"
        );
        assert_eq!(
            csv(&header, &rows),
            "c,value,count\n\"a,b\",10.5,3\nlong_name,2.0,12\n"
        );
    }
}
