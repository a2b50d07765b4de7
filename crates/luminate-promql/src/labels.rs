//! A series' label set as PromQL sees it: Luminate's dimensions plus `__name__`, the metric name, sorted
//! by name, without empty values (an empty value and a missing label are the same thing in PromQL, and
//! in Luminate a missing dimension is `""`).

use std::fmt;

/// The label holding the metric name.
pub const METRIC_NAME: &str = "__name__";

/// Labels sorted by name, unique, none empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(Vec<(String, String)>);

impl Labels {
    /// From pairs in any order; empty values are dropped, a repeated name keeps its last value.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut v: Vec<(String, String)> =
            pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
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

    /// The value of `name`, `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .map_or("", |i| self.0[i].1.as_str())
    }

    /// The pairs, sorted by name.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Sets `name` to `value` (an empty value removes it).
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => value.clone_into(&mut self.0[i].1),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(i, (name.to_owned(), value.to_owned())),
        }
    }

    /// The same labels without `__name__`.
    pub fn without_name(&self) -> Self {
        self.without(&[])
    }

    /// The same labels without `names` and without `__name__` (what `without` and `ignoring` keep).
    pub fn without(&self, names: &[String]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|(k, _)| k != METRIC_NAME && !names.contains(k))
                .cloned()
                .collect(),
        )
    }

    /// Only the labels in `names` (what `by` and `on` keep).
    pub fn keep(&self, names: &[String]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|(k, _)| names.contains(k))
                .cloned()
                .collect(),
        )
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn empty_values_are_absent_labels() {
        let l = labels(&[("b", "2"), ("a", ""), ("__name__", "m")]);
        assert_eq!(l.pairs().len(), 2);
        assert_eq!(l.get("a"), "");
        assert_eq!(l.get("__name__"), "m");
        let mut l = l;
        l.set("b", "");
        l.set("c", "3");
        assert_eq!(l, labels(&[("__name__", "m"), ("c", "3")]));
    }

    #[test]
    fn by_keeps_and_without_drops_the_name_too() {
        let l = labels(&[("__name__", "m"), ("job", "j"), ("le", "1")]);
        assert_eq!(l.keep(&["job".into()]), labels(&[("job", "j")]));
        assert_eq!(l.without(&["le".into()]), labels(&[("job", "j")]));
        assert_eq!(l.to_string(), r#"{__name__="m", job="j", le="1"}"#);
    }
}
