//! Discovery and the cardinality explorer (CONTRACT §5) over the points table: metric names, a metric's
//! dimension keys, a key's values by number of stored points, series and distinct values per key.
//!
//! Everything is computed from the stored points of the tenant (the sort key's prefix), so answers are
//! exact and follow deletes; orders are the model's (`semantics::order_value_counts`,
//! `semantics::order_cardinality`), applied in Rust after ClickHouse has done the counting.

use std::collections::BTreeMap;

use luminate_model::result::{KeyCardinality, MetricCardinality, ValueCount};
use luminate_model::semantics::{order_cardinality, order_value_counts};
use luminate_model::{StoreError, Tenant};

use crate::rowbinary::{DecodeError, RowReader};
use crate::service::Service;
use crate::sql::quote;

fn decode_error(e: DecodeError) -> StoreError {
    StoreError::Internal {
        message: e.to_string(),
    }
}

/// `tenant = … [AND metric = …]`.
fn scope(tenant: &Tenant, metric: Option<&str>) -> String {
    let mut sql = format!("tenant = {}", quote(tenant.as_str()));
    if let Some(m) = metric {
        sql.push_str(&format!(" AND metric = {}", quote(m)));
    }
    sql
}

/// Sorted metric names with stored points.
pub async fn metric_names(service: &Service, tenant: &Tenant) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        "SELECT DISTINCT metric FROM {} WHERE {} FORMAT RowBinary",
        service.tables.points,
        scope(tenant, None)
    );
    let body = service.run(&sql).await?;
    let mut r = RowReader::new(&body);
    let mut names = Vec::new();
    while !r.is_empty() {
        names.push(r.string().map_err(decode_error)?);
    }
    names.sort_unstable();
    Ok(names)
}

/// Sorted dimension keys of a metric; `None` when it has no points.
pub async fn dimension_keys(
    service: &Service,
    tenant: &Tenant,
    metric: &str,
) -> Result<Option<Vec<String>>, StoreError> {
    let sql = format!(
        "SELECT count(), groupUniqArrayArray(dim_keys) FROM {} WHERE {} FORMAT RowBinary",
        service.tables.points,
        scope(tenant, Some(metric))
    );
    let body = service.run(&sql).await?;
    let mut r = RowReader::new(&body);
    let points = r.u64().map_err(decode_error)?;
    let mut keys = r.strings().map_err(decode_error)?;
    if points == 0 {
        return Ok(None);
    }
    keys.sort_unstable();
    Ok(Some(keys))
}

/// Values of `key` starting with `prefix`, by stored points descending then value, at most `limit`;
/// `None` when the metric has no points.
pub async fn dimension_values(
    service: &Service,
    tenant: &Tenant,
    metric: &str,
    key: &str,
    prefix: &str,
    limit: usize,
) -> Result<Option<Vec<ValueCount>>, StoreError> {
    let metric_scope = scope(tenant, Some(metric));
    let exists = format!(
        "SELECT count() FROM (SELECT 1 FROM {} WHERE {metric_scope} LIMIT 1) FORMAT RowBinary",
        service.tables.points
    );
    let body = service.run(&exists).await?;
    if RowReader::new(&body).u64().map_err(decode_error)? == 0 {
        return Ok(None);
    }
    let value = service.tables.dimension(key);
    // Points that carry the key. A dimension column holds `''` for the others, and a stored value is
    // never empty (CONTRACT §2), so the column alone tells them apart without reading the arrays.
    let carries = if service.tables.has_dimension_column(key) {
        format!("{value} != ''")
    } else {
        format!("has(dim_keys, {})", quote(key))
    };
    let sql = format!(
        "SELECT {value} AS v, count() AS c FROM {} \
         WHERE {metric_scope} AND {carries} AND startsWith(v, {}) \
         GROUP BY v ORDER BY c DESC, v LIMIT {limit} FORMAT RowBinary",
        service.tables.points,
        quote(prefix),
    );
    let body = service.run(&sql).await?;
    let mut r = RowReader::new(&body);
    let mut values = Vec::new();
    while !r.is_empty() {
        let value = r.string().map_err(decode_error)?;
        let points = r.u64().map_err(decode_error)?;
        values.push(ValueCount { value, points });
    }
    order_value_counts(&mut values);
    Ok(Some(values))
}

/// Series per metric and distinct values per key, largest first; only `metric` when given.
pub async fn cardinality(
    service: &Service,
    tenant: &Tenant,
    metric: Option<&str>,
) -> Result<Vec<MetricCardinality>, StoreError> {
    let where_ = scope(tenant, metric);
    // `series` identifies a series (it is `cityHash64(dim_keys, dim_values)`, which rate and integral
    // already group by): one UInt64 per row to count instead of both arrays.
    let series_sql = format!(
        "SELECT metric, uniqExact(series) FROM {} WHERE {where_} GROUP BY metric \
         FORMAT RowBinary",
        service.tables.points
    );
    let body = service.run(&series_sql).await?;
    let mut r = RowReader::new(&body);
    let mut metrics: BTreeMap<String, MetricCardinality> = BTreeMap::new();
    while !r.is_empty() {
        let name = r.string().map_err(decode_error)?;
        let series = r.u64().map_err(decode_error)?;
        metrics.insert(
            name.clone(),
            MetricCardinality {
                metric: name,
                series,
                dimensions: Vec::new(),
            },
        );
    }
    if metrics.is_empty() {
        return Ok(Vec::new());
    }
    let keys_sql = format!(
        "SELECT metric, k, uniqExact(v) FROM {} ARRAY JOIN dim_keys AS k, dim_values AS v \
         WHERE {where_} GROUP BY metric, k FORMAT RowBinary",
        service.tables.points
    );
    let body = service.run(&keys_sql).await?;
    let mut r = RowReader::new(&body);
    while !r.is_empty() {
        let name = r.string().map_err(decode_error)?;
        let key = r.string().map_err(decode_error)?;
        let distinct_values = r.u64().map_err(decode_error)?;
        // A metric written between the two statements is left out rather than half reported.
        if let Some(m) = metrics.get_mut(&name) {
            m.dimensions.push(KeyCardinality {
                key,
                distinct_values,
            });
        }
    }
    let mut out: Vec<MetricCardinality> = metrics.into_values().collect();
    order_cardinality(&mut out);
    Ok(out)
}
