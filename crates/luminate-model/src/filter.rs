//! Filters of the query language (CONTRACT §4): a dimension equals a value, or any of a list of values
//! (what a multi-value dashboard variable becomes). Owns the JSON shape of a filter value, its checks
//! and bounds, and the [`Filter`] a plan carries to the backends.
//!
//! A point without the dimension has the value `""`, so `""` selects the points without it, alone or
//! among other values.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

use crate::query::{QueryError, invalid, over_limit};
use crate::validate::is_identifier;

/// Most values in one filter's list: as many as a `listDimensionValues` query returns at most, so every
/// value a dashboard variable offers can be selected at once.
pub const MAX_FILTER_VALUES: usize = crate::query::MAX_VALUES_LIMIT;

/// A filter value as the request gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterValue {
    /// `"v"`: the dimension equals it.
    One(String),
    /// `["a", "b"]`: the dimension equals any of them (repeats are harmless).
    AnyOf(Vec<String>),
}

impl<'de> Deserialize<'de> for FilterValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = FilterValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FilterValue, E> {
                Ok(FilterValue::One(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<FilterValue, E> {
                Ok(FilterValue::One(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FilterValue, A::Error> {
                let mut values = Vec::new();
                while let Some(v) = seq.next_element::<String>()? {
                    values.push(v);
                }
                Ok(FilterValue::AnyOf(values))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

impl Serialize for FilterValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::One(v) => serializer.serialize_str(v),
            Self::AnyOf(values) => values.serialize(serializer),
        }
    }
}

/// One filter of a plan: the dimension `key` has one of `values` (a missing dimension has `""`).
/// The values are sorted byte-wise and unique; a plan from a request has at least one (an empty list
/// would select nothing, and every backend treats it so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    key: String,
    values: Vec<String>,
}

impl Filter {
    /// The dimension `key` equals `value`.
    pub fn equals(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            values: vec![value.into()],
        }
    }

    /// The dimension `key` equals any of `values`.
    pub fn any_of<V: Into<String>>(
        key: impl Into<String>,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        let mut values: Vec<String> = values.into_iter().map(Into::into).collect();
        values.sort_unstable();
        values.dedup();
        Self {
            key: key.into(),
            values,
        }
    }

    /// The dimension key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The accepted values, sorted byte-wise, without repeats.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// True when points without the dimension match (`""` is among the values).
    pub fn matches_missing(&self) -> bool {
        // Sorted: `""` comes first when present.
        self.values.first().is_some_and(String::is_empty)
    }
}

/// Checks a request's filters and turns them into a plan's, sorted by key. Values may not contain a
/// control character nor be longer than `max_value_len` characters (the longest value a point may
/// carry: a longer one could match nothing); a list may not be empty nor hold more than
/// [`MAX_FILTER_VALUES`].
pub(crate) fn check_filters(
    filters: BTreeMap<String, FilterValue>,
    max_value_len: usize,
) -> Result<Vec<Filter>, QueryError> {
    filters
        .into_iter()
        .map(|(key, value)| {
            if !is_identifier(&key) {
                return Err(invalid(format!(
                    "filters: {key:?} is not a valid dimension key"
                )));
            }
            let values = match value {
                FilterValue::One(v) => vec![v],
                FilterValue::AnyOf(values) if values.is_empty() => {
                    return Err(invalid(format!(
                        "filters: {key:?} has an empty list of values; give at least one"
                    )));
                }
                FilterValue::AnyOf(values) if values.len() > MAX_FILTER_VALUES => {
                    return Err(over_limit(format!(
                        "filters: {key:?} has {} values, more than the maximum of {MAX_FILTER_VALUES}",
                        values.len()
                    )));
                }
                FilterValue::AnyOf(values) => values,
            };
            for v in &values {
                if v.chars().any(char::is_control) {
                    return Err(invalid(format!(
                        "filters: value of {key:?} contains a control character"
                    )));
                }
                if v.chars().count() > max_value_len {
                    return Err(invalid(format!(
                        "filters: value of {key:?} is longer than the longest dimension value \
                         ({max_value_len} characters)"
                    )));
                }
            }
            Ok(Filter::any_of(key, values))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn parse(text: &str) -> Result<FilterValue, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_value_is_a_string_or_an_array_of_strings() {
        assert_eq!(parse(r#""eu""#), Ok(FilterValue::One("eu".into())));
        assert_eq!(
            parse(r#"["eu", "", "eu"]"#),
            Ok(FilterValue::AnyOf(vec![
                "eu".into(),
                "".into(),
                "eu".into()
            ]))
        );
        assert_eq!(parse("[]"), Ok(FilterValue::AnyOf(vec![])));
        for (text, why) in [
            (
                "5",
                "invalid type: integer `5`, expected a string or an array of strings",
            ),
            (
                "null",
                "invalid type: null, expected a string or an array of strings",
            ),
            (
                r#"{"a": "b"}"#,
                "invalid type: map, expected a string or an array of strings",
            ),
            (
                r#"["a", 5]"#,
                "invalid type: integer `5`, expected a string",
            ),
            (r#"[["a"]]"#, "invalid type: sequence, expected a string"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(why), "{text}: {e}");
        }
    }

    #[test]
    fn any_of_sorts_and_drops_repeats() {
        let f = Filter::any_of("k", ["b", "", "a", "b"]);
        assert_eq!(f.key(), "k");
        assert_eq!(f.values(), ["", "a", "b"]);
        assert!(f.matches_missing());
        assert!(!Filter::any_of("k", ["a"]).matches_missing());
        assert!(!Filter::any_of("k", Vec::<String>::new()).matches_missing());
        assert_eq!(Filter::equals("k", "a"), Filter::any_of("k", ["a", "a"]));
    }

    fn check(key: &str, value: FilterValue) -> Result<Vec<Filter>, QueryError> {
        check_filters([(key.to_owned(), value)].into(), 8)
    }

    #[test]
    fn checks_name_the_key_and_the_bound() {
        let many = |n: usize| FilterValue::AnyOf((0..n).map(|i| i.to_string()).collect());
        assert_eq!(
            check("k", many(MAX_FILTER_VALUES)).unwrap()[0]
                .values()
                .len(),
            MAX_FILTER_VALUES
        );
        for (key, value, code, message) in [
            (
                "k",
                FilterValue::AnyOf(vec![]),
                ErrorCode::InvalidQuery,
                r#"filters: "k" has an empty list of values; give at least one"#,
            ),
            (
                "k",
                many(MAX_FILTER_VALUES + 1),
                ErrorCode::QueryLimitExceeded,
                r#"filters: "k" has 1001 values, more than the maximum of 1000"#,
            ),
            (
                "a-b",
                FilterValue::One("x".into()),
                ErrorCode::InvalidQuery,
                r#"filters: "a-b" is not a valid dimension key"#,
            ),
            (
                "k",
                FilterValue::AnyOf(vec!["ok".into(), "a\nb".into()]),
                ErrorCode::InvalidQuery,
                r#"filters: value of "k" contains a control character"#,
            ),
            (
                "k",
                FilterValue::One("123456789".into()),
                ErrorCode::InvalidQuery,
                r#"filters: value of "k" is longer than the longest dimension value (8 characters)"#,
            ),
            (
                "k",
                FilterValue::AnyOf(vec!["".into(), "ééééééééé".into()]),
                ErrorCode::InvalidQuery,
                r#"filters: value of "k" is longer than the longest dimension value (8 characters)"#,
            ),
        ] {
            let e = check(key, value).unwrap_err();
            assert_eq!((e.code, e.message.as_str()), (code, message));
        }
        // Length is counted in characters, not bytes; `""` is always allowed.
        assert!(check("k", FilterValue::AnyOf(vec!["".into(), "éééééééé".into()])).is_ok());
    }
}
