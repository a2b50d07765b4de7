//! Shape rules shared by the JSON request bodies (query, admin) that serde's derive does not enforce.
//!
//! - A request object must be a JSON object. A derived `Deserialize` of a struct also accepts an array
//!   of the fields in order (`["range", "m", …]`), which the contract does not: a struct that must not
//!   derives with `#[serde(remote = "Self")]` (the derived function becomes inherent), implements
//!   [`FromObject`] with it, and its `Deserialize` is [`deserialize_object`].
//! - A map keyed by dimension keys must not repeat a key: serde keeps the last value of a repeated key
//!   silently, so `{"k": "a", "k": "b"}` would mean `{"k": "b"}` ([`unique_keys`]).
//!
//! The write body has its own hand-written decoder with the same rules (`wire`).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// A struct read from the entries of a JSON object only.
pub trait FromObject<'de>: Sized {
    /// Reads the struct from an object's entries (with the derived, inherent `deserialize` over a
    /// [`de::value::MapAccessDeserializer`]).
    fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

/// Deserializes `T` from a JSON object; anything else (an array above all) is an invalid type.
pub fn deserialize_object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromObject<'de>,
{
    struct ObjectVisitor<T>(PhantomData<T>);
    impl<'de, T: FromObject<'de>> Visitor<'de> for ObjectVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::from_map(map)
        }
    }
    deserializer.deserialize_map(ObjectVisitor(PhantomData))
}

/// Deserializes a JSON object into a map sorted by key, failing on a repeated key with a message that
/// names the field (`what`) and the key.
pub fn unique_keys<'de, D, V>(
    deserializer: D,
    what: &'static str,
) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct UniqueVisitor<V> {
        what: &'static str,
        value: PhantomData<V>,
    }
    impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueVisitor<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{}: an object without repeated keys", self.what)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                match out.entry(key) {
                    Entry::Occupied(e) => {
                        return Err(de::Error::custom(format!(
                            "{}: key {:?} is repeated",
                            self.what,
                            e.key()
                        )));
                    }
                    Entry::Vacant(e) => {
                        e.insert(map.next_value()?);
                    }
                }
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(UniqueVisitor {
        what,
        value: PhantomData,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(remote = "Self", deny_unknown_fields)]
    struct Pair {
        a: u32,
        #[serde(default, deserialize_with = "labels")]
        labels: BTreeMap<String, String>,
    }

    fn labels<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
        unique_keys(d, "labels")
    }

    impl<'de> FromObject<'de> for Pair {
        fn from_map<A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
            Self::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }

    impl<'de> Deserialize<'de> for Pair {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize_object(d)
        }
    }

    fn parse(text: &str) -> Result<Pair, String> {
        serde_json::from_str::<Pair>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn an_object_reads_as_derived() {
        assert_eq!(
            parse(r#"{"a": 1, "labels": {"y": "2", "x": "1"}}"#),
            Ok(Pair {
                a: 1,
                labels: [("x".into(), "1".into()), ("y".into(), "2".into())].into()
            })
        );
    }

    #[test]
    fn an_array_of_the_fields_is_refused() {
        let e = parse("[1]").unwrap_err();
        assert!(
            e.starts_with("invalid type: sequence, expected a JSON object"),
            "{e}"
        );
        assert!(serde_json::from_value::<Pair>(serde_json::json!([1, {}])).is_err());
    }

    #[test]
    fn derived_rules_still_hold() {
        assert!(
            parse(r#"{"a": 1, "a": 2}"#)
                .unwrap_err()
                .contains("duplicate field `a`")
        );
        assert!(
            parse(r#"{"a": 1, "b": 2}"#)
                .unwrap_err()
                .contains("unknown field `b`")
        );
        assert!(parse(r#"{}"#).unwrap_err().contains("missing field `a`"));
    }

    #[test]
    fn a_repeated_key_is_refused_by_name() {
        let e = parse(r#"{"a": 1, "labels": {"k": "x", "j": "y", "k": "x"}}"#).unwrap_err();
        assert!(e.starts_with(r#"labels: key "k" is repeated"#), "{e}");
        assert!(parse(r#"{"a": 1, "labels": ["k", "x"]}"#).is_err());
    }
}
