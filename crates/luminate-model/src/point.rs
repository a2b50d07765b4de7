//! Points, series identity and tenants: the nouns every backend stores.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::time::TimestampMs;

/// The owner of data. Every read and write is scoped to exactly one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(Arc<str>);

impl Tenant {
    /// The tenant every request belongs to when authentication is disabled.
    pub const DEFAULT_NAME: &'static str = "default";

    /// A tenant by id.
    pub fn new(id: impl AsRef<str>) -> Self {
        Self(Arc::from(id.as_ref()))
    }

    /// The `default` tenant.
    pub fn default_tenant() -> Self {
        Self::new(Self::DEFAULT_NAME)
    }

    /// The tenant id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A point's dimensions, kept sorted by key so that dimension order never matters and two equal sets
/// compare equal. Keys are unique.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dimensions(Vec<(String, String)>);

impl Dimensions {
    /// Builds the set from pairs in any order. A repeated key keeps its last value (points from clients
    /// never have one: validation refuses it).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut v: Vec<(String, String)> = pairs.into_iter().collect();
        // Stable sort then keep the last of equal keys.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(v.len());
        for (k, val) in v {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = val,
                _ => out.push((k, val)),
            }
        }
        Self(out)
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    /// The value of `key` for grouping and filtering: a missing dimension is the empty string.
    pub fn get_or_empty(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// The pairs, sorted by key.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Number of dimensions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no dimensions.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Dimensions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// A validated point: what backends store.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Metric name (validated).
    pub name: String,
    /// Unix milliseconds.
    pub timestamp: TimestampMs,
    /// A finite value.
    pub value: f64,
    /// Dimensions (validated).
    pub dimensions: Dimensions,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(a: &str, b: &str) -> (String, String) {
        (a.to_owned(), b.to_owned())
    }

    #[test]
    fn dimension_order_never_matters() {
        let a = Dimensions::from_pairs([s("region", "eu"), s("customer_id", "c1")]);
        let b = Dimensions::from_pairs([s("customer_id", "c1"), s("region", "eu")]);
        assert_eq!(a, b);
        assert_eq!(a.pairs()[0].0, "customer_id");
        assert_eq!(a.get("region"), Some("eu"));
        assert_eq!(a.get("missing"), None);
        assert_eq!(a.get_or_empty("missing"), "");
    }

    #[test]
    fn repeated_key_keeps_last_value() {
        let d = Dimensions::from_pairs([s("k", "1"), s("k", "2")]);
        assert_eq!(d.pairs(), &[s("k", "2")]);
    }
}
