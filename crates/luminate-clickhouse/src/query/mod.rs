//! Queries (CONTRACT §4) as ClickHouse SQL, one file per query type; this module holds what they
//! share: the row selection, group and bucket expressions, and the decoding of answers.
//!
//! Every statement selects `tenant = … AND metric = …` first (the sort key's prefix, and the tenant
//! isolation rule), then the half-open time range and the filters. Strings reach the SQL only through
//! [`crate::sql::quote`]; numbers are formatted by Rust.
//!
//! Exactness: ClickHouse computes the same IEEE operations as the reference (sums of `Float64`,
//! `avg` as sum / count, `quantileExact`'s position `floor(level × n)` which `semantics::quantile_index`
//! equals, integral and rate from each series' points sorted by (timestamp, value) with `arraySort`).
//! Group order and the cut of `limit` are decided in SQL (`ORDER BY … LIMIT limit + 1`, the extra row
//! telling `truncated`); strings compare byte-wise in ClickHouse as in Rust.

mod aggregate;
mod range;
mod rate;

use luminate_model::query::QueryKind;
use luminate_model::result::GroupKey;
use luminate_model::{QueryContext, QueryPlan, QueryResult, StoreError, Tenant};

use crate::filters;
use crate::rowbinary::{DecodeError, RowReader};
use crate::schema::Tables;
use crate::service::Service;
use crate::sql::quote;

/// Answers a query.
pub async fn run(
    service: &Service,
    tenant: &Tenant,
    plan: &QueryPlan,
    ctx: &QueryContext,
) -> Result<QueryResult, StoreError> {
    let rollup = service.tables.rollups && crate::rollups::answer(plan);
    let q = Query {
        service,
        plan,
        ctx,
        rollup,
        selection: selection(
            tenant,
            plan,
            &service.tables,
            service.features.skip_indexes,
            rollup,
        ),
    };
    match plan.kind {
        QueryKind::Range => range::run(&q).await,
        QueryKind::Aggregate(agg) => aggregate::run(&q, agg).await,
        QueryKind::Rate => rate::run(&q).await,
    }
}

/// One query being answered.
struct Query<'a> {
    service: &'a Service,
    plan: &'a QueryPlan,
    ctx: &'a QueryContext,
    /// Asked in the form the hourly rollups answer (see `crate::rollups`): hours as blocks,
    /// dimensions from the arrays.
    rollup: bool,
    /// The `WHERE` condition selecting the plan's points.
    selection: String,
}

impl Query<'_> {
    /// Runs one statement of the query (`FORMAT RowBinary` is appended).
    async fn fetch(&self, sql: &str) -> Result<bytes::Bytes, StoreError> {
        let sql = format!("{sql} FORMAT RowBinary");
        tracing::trace!(sql, "query");
        self.service.query(&sql, self.ctx, self.plan.timeout).await
    }

    fn points_table(&self) -> &str {
        &self.service.tables.points
    }

    /// `g0, g1, …`, the group columns' aliases (empty without groupBy).
    fn group_list(&self) -> String {
        (0..self.plan.group_by.len())
            .map(|i| format!("g{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A dimension's value: its column or the arrays (see `Tables::dimension`); the arrays when the
    /// rollups answer, since the projection keeps them and not the columns.
    fn dimension(&self, key: &str) -> String {
        dimension(&self.service.tables, key, self.rollup)
    }

    /// `<dimension> AS g0, … ` for a SELECT list, or nothing without groupBy.
    fn group_columns(&self) -> String {
        self.plan
            .group_by
            .iter()
            .enumerate()
            .map(|(i, key)| format!("{} AS g{i}, ", self.dimension(key)))
            .collect()
    }

    /// ` AND (<dimensions>) IN (…)`: only the groups in `keys` (those that survived the limit).
    fn only_groups(&self, keys: &[GroupKey]) -> String {
        if self.plan.group_by.is_empty() {
            return String::new();
        }
        let dims: Vec<String> = self
            .plan
            .group_by
            .iter()
            .map(|k| self.dimension(k))
            .collect();
        let tuples: Vec<String> = keys
            .iter()
            .map(|key| {
                let values: Vec<String> = key.0.iter().map(|(_, v)| quote(v)).collect();
                if values.len() == 1 {
                    values.concat()
                } else {
                    format!("({})", values.join(", "))
                }
            })
            .collect();
        if dims.len() == 1 {
            format!(" AND {} IN ({})", dims[0], tuples.join(", "))
        } else {
            format!(" AND ({}) IN ({})", dims.join(", "), tuples.join(", "))
        }
    }

    /// Reads the group key columns `g0…` of one row.
    fn read_group_key(&self, r: &mut RowReader<'_>) -> Result<GroupKey, StoreError> {
        let mut pairs = Vec::with_capacity(self.plan.group_by.len());
        for key in &self.plan.group_by {
            pairs.push((key.clone(), r.string().map_err(decode_error)?));
        }
        Ok(GroupKey(pairs))
    }
}

/// `list, ` to lead a column list (empty for an empty list).
fn lead(list: &str) -> String {
    if list.is_empty() {
        String::new()
    } else {
        format!("{list}, ")
    }
}

/// `, list` to follow a column list (empty for an empty list).
fn trail(list: &str) -> String {
    if list.is_empty() {
        String::new()
    } else {
        format!(", {list}")
    }
}

/// ` GROUP BY list` (empty for an empty list).
fn group_by(list: &str) -> String {
    if list.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {list}")
    }
}

/// The bucket of `column`: `floor(t / interval) * interval`, also for negative `t` (ClickHouse's `%`
/// takes the dividend's sign, so it is corrected). The interval is an `Int64` on purpose: `%` takes
/// its result type from the divisor, and a literal like 60000 is a `UInt16` that `+ 60000` overflows.
fn bucket(column: &str, interval_ms: i64) -> String {
    let i = format!("toInt64({interval_ms})");
    format!("({column} - ((({column} % {i}) + {i}) % {i}))")
}

/// A dimension's value (see [`Query::dimension`]).
fn dimension(tables: &Tables, key: &str, rollup: bool) -> String {
    if rollup {
        filters::from_arrays(key)
    } else {
        tables.dimension(key)
    }
}

/// The condition selecting a plan's points for a tenant. For the rollups the range is of whole hours
/// after the epoch's first (`rollups::answer`), which the blocks select exactly.
fn selection(
    tenant: &Tenant,
    plan: &QueryPlan,
    tables: &Tables,
    skip_indexes: bool,
    rollup: bool,
) -> String {
    let (tenant, metric) = (quote(tenant.as_str()), quote(&plan.metric));
    let mut sql = if rollup {
        let block = crate::rollups::BLOCK;
        let hour = crate::rollups::BLOCK_MS;
        format!(
            "tenant = {tenant} AND metric = {metric} AND {block} >= {} AND {block} < {}",
            plan.start / hour,
            plan.end / hour
        )
    } else {
        format!(
            "tenant = {tenant} AND metric = {metric} AND timestamp >= {} AND timestamp < {}",
            plan.start, plan.end
        )
    };
    for filter in &plan.filters {
        sql.push_str(&filters::condition(
            &dimension(tables, filter.key(), rollup),
            filter,
            skip_indexes,
        ));
    }
    sql
}

/// The per-series arrays every series computation starts from: the series' points sorted by
/// (timestamp, value), the contract's order for integral and rate.
const SORTED_POINTS: &str = "arraySort(groupArray((timestamp, value)))";

fn decode_error(e: DecodeError) -> StoreError {
    StoreError::Internal {
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use luminate_model::Filter;
    use luminate_model::query::Aggregation;

    use super::*;

    fn tables() -> Tables {
        Tables::new("db", None, &[])
    }

    fn plan() -> QueryPlan {
        QueryPlan {
            kind: QueryKind::Aggregate(Aggregation::Sum),
            metric: "m".into(),
            start: -5,
            end: 10,
            filters: vec![Filter::equals("k", "it's"), Filter::equals("z", "")],
            group_by: vec![],
            interval_ms: None,
            limit: 1,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn selection_quotes_every_string() {
        assert_eq!(
            selection(&Tenant::new("t'1"), &plan(), &tables(), false, false),
            "tenant = 't\\'1' AND metric = 'm' AND timestamp >= -5 AND timestamp < 10 \
             AND dim_values[indexOf(dim_keys, 'k')] = 'it\\'s' \
             AND dim_values[indexOf(dim_keys, 'z')] = ''"
        );
        let with_index = selection(&Tenant::new("t"), &plan(), &tables(), true, false);
        assert!(with_index.contains("AND has(dim_values, 'it\\'s')"));
        assert!(!with_index.contains("has(dim_values, '')"));
    }

    #[test]
    fn any_of_filters_are_in_lists_of_quoted_values() {
        let filters = vec![
            Filter::any_of("k", ["it's", "a\\b"]),
            Filter::any_of("z", ["", "x"]),
            Filter::any_of("e", Vec::<String>::new()),
        ];
        let plan = QueryPlan { filters, ..plan() };
        let sql = selection(&Tenant::new("t"), &plan, &tables(), false, false);
        assert_eq!(
            sql,
            "tenant = 't' AND metric = 'm' AND timestamp >= -5 AND timestamp < 10 \
             AND dim_values[indexOf(dim_keys, 'k')] IN ('a\\\\b', 'it\\'s') \
             AND dim_values[indexOf(dim_keys, 'z')] IN ('', 'x') AND 0"
        );
        let with_index = selection(&Tenant::new("t"), &plan, &tables(), true, false);
        assert!(with_index.contains(" AND hasAny(dim_values, ['a\\\\b', 'it\\'s'])"));
        // `''` among the values: points without the key match, so the index cannot skip them.
        assert!(!with_index.contains("hasAny(dim_values, ['', 'x'])"));
    }

    #[test]
    fn dimension_columns_are_read_instead_of_the_arrays() {
        let tables = Tables::new("db", None, &["k".into()]);
        let sql = selection(&Tenant::new("t"), &plan(), &tables, false, false);
        assert!(
            sql.ends_with(" AND `dim__k` = 'it\\'s' AND dim_values[indexOf(dim_keys, 'z')] = ''")
        );
    }

    #[test]
    fn the_rollup_form_selects_blocks_and_reads_the_arrays() {
        let tables = Tables::new("db", None, &["k".into()]).with_rollups(true);
        let hour = crate::rollups::BLOCK_MS;
        let plan = QueryPlan {
            start: 2 * hour,
            end: 5 * hour,
            ..plan()
        };
        assert_eq!(
            selection(&Tenant::new("t"), &plan, &tables, true, true),
            "tenant = 't' AND metric = 'm' AND intDiv(timestamp, 3600000) >= 2 \
             AND intDiv(timestamp, 3600000) < 5 \
             AND dim_values[indexOf(dim_keys, 'k')] = 'it\\'s' AND has(dim_values, 'it\\'s') \
             AND dim_values[indexOf(dim_keys, 'z')] = ''"
        );
    }

    #[test]
    fn buckets_floor_negative_timestamps() {
        assert_eq!(
            bucket("t", 60000),
            "(t - (((t % toInt64(60000)) + toInt64(60000)) % toInt64(60000)))"
        );
    }
}
