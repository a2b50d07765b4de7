//! Filters as SQL: conditions over the dimension arrays, the same text for the points table and for
//! the series table (both hold `dim_keys` / `dim_values`).

use luminate_model::Filter;

use crate::sql::quote;

/// A dimension's value read from the arrays: `''` when the row lacks the key (`indexOf` is 0 and
/// element 0 of an array is the default value). A dimension column of `points` holds the same value
/// (see `schema::Tables::dimension`).
pub(crate) fn from_arrays(key: &str) -> String {
    format!("dim_values[indexOf(dim_keys, {})]", quote(key))
}

/// ` AND <condition>` of one filter on `column` (the filter's dimension, as [`from_arrays`] or a
/// dimension column reads it): the dimension equals the value, or is `IN` the list. Without `""` among
/// the values, `has`/`hasAny` over `dim_values` is implied and lets the bloom-filter index skip
/// granules. An empty list (which no request gives) selects nothing, as everywhere.
pub(crate) fn condition(column: &str, filter: &Filter, skip_indexes: bool) -> String {
    let hint = skip_indexes && !filter.matches_missing();
    match filter.values() {
        [] => " AND 0".to_owned(),
        [value] => {
            let value = quote(value);
            let mut sql = format!(" AND {column} = {value}");
            if hint {
                sql.push_str(&format!(" AND has(dim_values, {value})"));
            }
            sql
        }
        values => {
            let list = values
                .iter()
                .map(|v| quote(v))
                .collect::<Vec<_>>()
                .join(", ");
            let mut sql = format!(" AND {column} IN ({list})");
            if hint {
                sql.push_str(&format!(" AND hasAny(dim_values, [{list}])"));
            }
            sql
        }
    }
}
