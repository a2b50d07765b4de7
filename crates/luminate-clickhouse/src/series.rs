//! The series table: one row per (tenant, metric, series) with the series' dimensions, so that a filter
//! finds its series among the series (2 M rows on the benchmark) instead of unpacking the dimension
//! arrays of every point (10 M rows), and the points are then read by their sort key.
//!
//! A filtered query first asks the series table which series match ([`lookup`]). When they are few (one
//! customer's 170), the points are read by those series' ranges of the sort key ([`restriction`]);
//! when they are many (a region's 400 000), the points are read as without the table, by the filter's
//! condition, since most granules hold a match anyway and a long list costs more than it saves. The
//! lookup stops at the first series past the limit, so a broad filter's costs little; a filter that
//! matches few series reads the whole table (0.15 s for 2 M series on a 2-core machine).
//!
//! The table is written by ClickHouse itself: a materialised view on the points table (see `schema`)
//! inserts, with every insert of points, one row per series of that insert. Every writer, including an
//! older Luminate during a rolling upgrade and anyone inserting by hand, therefore keeps it complete. In
//! a cluster the view sits on each node's `points_local`, so a series' row lives on the shard that
//! holds its points, and the lookup reads the `Distributed` table `series` over every shard's
//! `series_local`.
//!
//! A points table older than the series table (a database created by an earlier version) is filled
//! once, on open, from the points already stored ([`fill_once`]); a step row marks it done per node.
//! Rows are never deleted: the table may hold series whose points retention or a delete removed. A
//! filter therefore reads it as a superset (`series IN (…)` narrows the points, and the filter's own
//! condition on the points still decides), so a left-over row costs a little reading and never changes
//! an answer. (A left-over row can push a filter past the limit, which only costs speed.)

use std::time::Duration;

use luminate_model::{Filter, StoreError, Tenant};

use crate::filters;
use crate::rowbinary::RowReader;
use crate::service::Service;
use crate::sql::quote;

/// The name of the one-time fill in `schema_steps`.
const FILL_STEP: &str = "series-table-filled";

/// The longest a one-time fill may take: it reads every stored point once (about 10 s for 10 M points
/// on a 2-core machine), far longer than a request.
const FILL_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Most series a filter may match for its points to be read by series: past this, the filter is broad
/// (a region, a status code) and its points are many granules anyway, so they are read by the filter's
/// condition alone, as without the series table. 4 096 ids keep the statement under 100 KB (ClickHouse
/// refuses queries over 256 KiB by default).
pub const MAX_LISTED_SERIES: usize = 4096;

/// The statement finding the series of the tenant's metric that match every filter, at most one more
/// than [`MAX_LISTED_SERIES`] (`None` without filters: every series would match).
pub(crate) fn lookup(
    series_table: &str,
    tenant: &Tenant,
    metric: &str,
    filters: &[Filter],
) -> Option<String> {
    if filters.is_empty() {
        return None;
    }
    let conditions: String = filters
        .iter()
        .map(|f| filters::condition(&filters::from_arrays(f.key()), f, false))
        .collect();
    Some(format!(
        "SELECT DISTINCT series FROM {series_table} WHERE tenant = {} AND metric = {}{conditions} \
         LIMIT {}",
        quote(tenant.as_str()),
        quote(metric),
        MAX_LISTED_SERIES + 1
    ))
}

/// The condition a [`lookup`]'s answer (`UInt64` ids in `RowBinary`) adds to the points' selection:
/// ` AND series IN (…)` listing them, ` AND 0` when none match, nothing when there are too many to list.
pub(crate) fn restriction(answer: &[u8]) -> Result<String, StoreError> {
    let mut r = RowReader::new(answer);
    let mut ids = Vec::new();
    while !r.is_empty() {
        ids.push(r.u64().map_err(|e| StoreError::Internal {
            message: e.to_string(),
        })?);
    }
    Ok(match ids.len() {
        0 => " AND 0".to_owned(),
        n if n > MAX_LISTED_SERIES => String::new(),
        _ => {
            ids.sort_unstable();
            let list: Vec<String> = ids.iter().map(u64::to_string).collect();
            format!(" AND series IN ({})", list.join(", "))
        }
    })
}

/// Fills the series table from the stored points unless that was done (on each node of a cluster). The
/// materialised view exists before this runs, so a point inserted meanwhile reaches the table either
/// way; a series found by both only has two rows until they merge.
pub async fn fill_once(service: &Service) -> Result<(), StoreError> {
    let tables = &service.tables;
    let check = format!(
        "SELECT count() FROM {} WHERE name = {} FORMAT RowBinary",
        tables.schema_steps,
        quote(FILL_STEP)
    );
    let fill = format!(
        "INSERT INTO {} SELECT tenant, metric, series, any(dim_keys), any(dim_values) FROM {} \
         GROUP BY tenant, metric, series",
        tables.series_storage_table(),
        tables.points_storage_table()
    );
    let done = format!(
        "INSERT INTO {} (name, applied) VALUES ({}, {})",
        tables.schema_steps,
        quote(FILL_STEP),
        crate::retention::next_version()
    );
    let timeout = FILL_TIMEOUT.max(service.request_timeout);
    for node in service.storage_nodes() {
        let body = service
            .run_on_node(node, &check, service.request_timeout)
            .await?;
        let steps = RowReader::new(&body)
            .u64()
            .map_err(|e| StoreError::Internal {
                message: e.to_string(),
            })?;
        if steps > 0 {
            continue;
        }
        tracing::info!(
            node = node.unwrap_or(0),
            table = %tables.series_storage_table(),
            "filling the series table from the stored points (once, on the first start after an \
             upgrade; it reads every point)"
        );
        service.run_on_node(node, &fill, timeout).await?;
        service
            .run_on_node(node, &done, service.request_timeout)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_quote_every_string_and_stop_past_the_limit() {
        assert_eq!(lookup("s", &Tenant::new("t"), "m", &[]), None);
        let filters = [Filter::equals("k", "it's"), Filter::any_of("z", ["", "x"])];
        assert_eq!(
            lookup("s", &Tenant::new("t'1"), "m", &filters).unwrap(),
            "SELECT DISTINCT series FROM s WHERE tenant = 't\\'1' AND metric = 'm' \
             AND dim_values[indexOf(dim_keys, 'k')] = 'it\\'s' \
             AND dim_values[indexOf(dim_keys, 'z')] IN ('', 'x') LIMIT 4097"
        );
    }

    fn ids(n: u64) -> Vec<u8> {
        (0..n).rev().flat_map(u64::to_le_bytes).collect()
    }

    #[test]
    fn few_series_are_listed_none_select_nothing_and_many_add_nothing() {
        assert_eq!(restriction(&ids(0)).unwrap(), " AND 0");
        assert_eq!(restriction(&ids(3)).unwrap(), " AND series IN (0, 1, 2)");
        let listed = restriction(&ids(MAX_LISTED_SERIES as u64)).unwrap();
        assert_eq!(listed.matches(", ").count(), MAX_LISTED_SERIES - 1);
        assert_eq!(restriction(&ids(MAX_LISTED_SERIES as u64 + 1)).unwrap(), "");
        assert!(restriction(&[1, 2, 3]).is_err(), "a truncated id");
    }
}
