//! Template variables in panel queries: a filter value that is exactly `$name` or `${name}` (alone or
//! as an element of a list) stands for the variable's value(s). One value becomes the filter's value;
//! several become an "any of" list; none ("all": a multi-value variable with nothing chosen and no
//! default) drops the filter. Any other string is a literal value.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::filter::FilterValue;
use crate::validate::is_identifier;

/// The values a viewer chose, by variable name.
pub type Choices = BTreeMap<String, FilterValue>;

/// The variable a filter value refers to, if it is exactly `$name` or `${name}`.
pub fn reference(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('$')?;
    let name = match rest.strip_prefix('{') {
        Some(braced) => braced.strip_suffix('}')?,
        None => rest,
    };
    is_identifier(name).then_some(name)
}

/// Replaces the references in `query`'s `filters` by the values `bind` gives (`None`: the variable is
/// not declared). Returns the filter keys whose values named an undeclared variable, with its name;
/// those filters are left as they were.
pub fn substitute(
    query: &mut Map<String, Value>,
    bind: impl Fn(&str) -> Option<Vec<String>>,
) -> Vec<(String, String)> {
    let mut undeclared = Vec::new();
    let Some(Value::Object(filters)) = query.get_mut("filters") else {
        return undeclared;
    };
    let mut dropped = Vec::new();
    for (key, value) in filters.iter_mut() {
        let (values, was_list) = match value {
            Value::String(s) => (vec![Value::String(s.clone())], false),
            Value::Array(items) => (items.clone(), true),
            _ => continue,
        };
        let mut expanded = Vec::new();
        let mut referenced = false;
        let mut ok = true;
        for item in values {
            match item.as_str().and_then(reference) {
                Some(name) => match bind(name) {
                    Some(vs) => {
                        referenced = true;
                        expanded.extend(vs.into_iter().map(Value::String));
                    }
                    None => {
                        undeclared.push((key.clone(), name.to_owned()));
                        ok = false;
                    }
                },
                None => expanded.push(item),
            }
        }
        if !ok || !referenced {
            continue;
        }
        *value = match expanded.len() {
            0 => {
                dropped.push(key.clone());
                continue;
            }
            1 if !was_list => expanded.swap_remove(0),
            _ => Value::Array(expanded),
        };
    }
    for key in dropped {
        filters.remove(&key);
    }
    undeclared
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bind(name: &str) -> Option<Vec<String>> {
        match name {
            "one" => Some(vec!["a".into()]),
            "many" => Some(vec!["b".into(), "c".into()]),
            "all" => Some(vec![]),
            _ => None,
        }
    }

    fn substituted(filters: Value) -> (Value, Vec<(String, String)>) {
        let mut query = json!({"filters": filters}).as_object().unwrap().clone();
        let undeclared = substitute(&mut query, bind);
        (query["filters"].clone(), undeclared)
    }

    #[test]
    fn references_are_whole_values() {
        assert_eq!(reference("$region"), Some("region"));
        assert_eq!(reference("${region}"), Some("region"));
        for literal in [
            "region",
            "$",
            "${region",
            "$region}",
            "eu-$region",
            "$1a",
            "${}",
            "$a-b",
        ] {
            assert_eq!(reference(literal), None, "{literal}");
        }
    }

    #[test]
    fn one_value_many_values_and_all() {
        let (filters, undeclared) = substituted(json!({
            "a": "$one", "b": "${many}", "c": "$all", "d": "literal",
            "e": ["x", "$many"], "f": ["$all"], "g": ["$one"]
        }));
        assert!(undeclared.is_empty());
        assert_eq!(
            filters,
            json!({"a": "a", "b": ["b", "c"], "d": "literal", "e": ["x", "b", "c"], "g": ["a"]})
        );
    }

    #[test]
    fn an_undeclared_variable_is_reported_and_left() {
        let (filters, undeclared) = substituted(json!({"r": "$nope", "s": ["$one", "${gone}"]}));
        assert_eq!(
            undeclared,
            [("r".into(), "nope".into()), ("s".into(), "gone".into())]
        );
        assert_eq!(filters, json!({"r": "$nope", "s": ["$one", "${gone}"]}));
    }
}
