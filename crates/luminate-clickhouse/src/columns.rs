//! Dimension columns: the keys of `storage.clickhouse.dimension_columns` get a column of their own on
//! the points table, `dim__<key> String DEFAULT dim_values[indexOf(dim_keys, '<key>')]`, so that a
//! group-by or filter on them reads one string column instead of unpacking both arrays of every row.
//! The value is the arrays' own (`''` when a point lacks the key), so answers do not change.
//!
//! A column is added on open when the table lacks it (`ALTER TABLE … ADD COLUMN`, which writes
//! nothing). Parts written before it do not hold it, and ClickHouse 18.16 cannot compute it for them
//! when a query reads it without the arrays ("Unknown identifier: dim_keys … while reading from part"),
//! so open then rewrites, partition by partition (`OPTIMIZE … PARTITION … FINAL`), every part that lacks
//! a configured column, and serves only once none is left: on a table holding data, the first start
//! with a new column takes as long as rewriting it. Parts written after the `ALTER` hold the column.
//!
//! `DEFAULT` rather than `MATERIALIZED`: a cluster's `Distributed` table declares the column too, so
//! queries through it may name it, and an insert through it computes the value and sends it to the
//! shards, which take a `DEFAULT` column (an explicit value for a `MATERIALIZED` one is refused). No
//! insert of Luminate names the column, and no statement reads `SELECT *`.
//!
//! A key removed from the configuration keeps its column (unread; drop it by hand if wanted).

use std::time::Duration;

use luminate_model::StoreError;

use crate::rowbinary::RowReader;
use crate::service::Service;
use crate::sql::{quote, quote_ident};

/// The longest the rewrite of one partition may take.
const REWRITE_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Rounds of rewriting before open gives up (a merge ClickHouse declines leaves the part as it was).
const REWRITE_ROUNDS: usize = 3;

/// The (unquoted) name of `key`'s column. Keys match `[a-zA-Z_][a-zA-Z0-9_]*` (CONTRACT §2), so the
/// prefix keeps every name apart from the table's own columns.
pub fn name(key: &str) -> String {
    format!("dim__{key}")
}

/// `key`'s column as a table declares it: `` `dim__key` String DEFAULT <the arrays' value> ``.
pub fn definition(key: &str) -> String {
    format!(
        "{} String DEFAULT {}",
        quote_ident(&name(key)),
        crate::filters::from_arrays(key)
    )
}

/// `ALTER TABLE … ADD COLUMN` of `key`'s column on `table`.
fn add(table: &str, key: &str) -> String {
    format!("ALTER TABLE {table} ADD COLUMN {}", definition(key))
}

fn decode_error(e: crate::rowbinary::DecodeError) -> StoreError {
    StoreError::Internal {
        message: e.to_string(),
    }
}

/// Adds the configured columns that the points table lacks (and a cluster's `Distributed` table), then
/// rewrites the parts that do not hold them, on each node. Another replica doing the same at the same
/// moment is not an error.
pub async fn ensure(service: &Service) -> Result<(), StoreError> {
    let tables = &service.tables;
    if tables.dimension_columns.is_empty() {
        return Ok(());
    }
    let mut targets = vec![(tables.points_storage, tables.points_storage_table())];
    if tables.cluster.is_some() {
        targets.push(("points", tables.points.clone()));
    }
    for node in service.storage_nodes() {
        for (table_name, table) in &targets {
            let present = table_columns(service, node, table_name).await?;
            for key in &tables.dimension_columns {
                if present.contains(&name(key)) {
                    continue;
                }
                let added = service
                    .run_on_node(node, &add(table, key), service.request_timeout)
                    .await;
                if let Err(e) = added
                    && !table_columns(service, node, table_name)
                        .await?
                        .contains(&name(key))
                {
                    return Err(e);
                }
                tracing::info!(%table, column = %name(key), "added a dimension column");
            }
        }
        rewrite_parts_without_columns(service, node).await?;
    }
    Ok(())
}

/// The columns of `table_name` in the database, on `node`.
async fn table_columns(
    service: &Service,
    node: Option<usize>,
    table_name: &str,
) -> Result<Vec<String>, StoreError> {
    let sql = format!(
        "SELECT name FROM system.columns WHERE database = {} AND table = {} FORMAT RowBinary",
        quote(&service.tables.database),
        quote(table_name)
    );
    strings(service, node, &sql).await
}

/// The one `String` column of a statement's rows, run on `node`.
async fn strings(
    service: &Service,
    node: Option<usize>,
    sql: &str,
) -> Result<Vec<String>, StoreError> {
    let body = service
        .run_on_node(node, sql, service.request_timeout)
        .await?;
    let mut r = RowReader::new(&body);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(r.string().map_err(decode_error)?);
    }
    Ok(out)
}

/// Rewrites, partition by partition, the active parts of the storage table that lack a configured
/// column, until none is left.
async fn rewrite_parts_without_columns(
    service: &Service,
    node: Option<usize>,
) -> Result<(), StoreError> {
    let tables = &service.tables;
    let (database, table) = (quote(&tables.database), quote(tables.points_storage));
    let columns: Vec<String> = tables
        .dimension_columns
        .iter()
        .map(|k| quote(&name(k)))
        .collect();
    // A part lacks a column when system.parts_columns does not list it for that part.
    let lacking = format!(
        "SELECT DISTINCT partition_id FROM system.parts WHERE database = {database} AND table = {table} \
         AND active AND (name, toUInt64({n})) NOT IN (SELECT name, toUInt64(count()) FROM system.parts_columns \
         WHERE database = {database} AND table = {table} AND active AND column IN ({list}) \
         GROUP BY name) ORDER BY partition_id FORMAT RowBinary",
        n = columns.len(),
        list = columns.join(", ")
    );
    for round in 0..=REWRITE_ROUNDS {
        let partitions = strings(service, node, &lacking).await?;
        if partitions.is_empty() {
            return Ok(());
        }
        if round == REWRITE_ROUNDS {
            return Err(StoreError::Internal {
                message: format!(
                    "the points table still has parts without the dimension columns in partitions \
                     {} after {REWRITE_ROUNDS} rewrites (OPTIMIZE … FINAL); see ClickHouse's log",
                    partitions.join(", ")
                ),
            });
        }
        tracing::info!(
            partitions = partitions.len(),
            "rewriting parts written before the dimension columns (once)"
        );
        for partition in &partitions {
            let optimize = format!(
                "OPTIMIZE TABLE {} PARTITION ID {} FINAL",
                tables.points_storage_table(),
                quote(partition)
            );
            service
                .run_on_node(node, &optimize, REWRITE_TIMEOUT)
                .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_default_to_the_arrays_value() {
        assert_eq!(name("customer_id"), "dim__customer_id");
        assert_eq!(
            add("`db`.points", "customer_id"),
            "ALTER TABLE `db`.points ADD COLUMN `dim__customer_id` String DEFAULT \
             dim_values[indexOf(dim_keys, 'customer_id')]"
        );
    }
}
