//! The JSON write body (`{"metrics": [point, ...]}`), decoded leniently per point.
//!
//! A point whose fields have the wrong JSON type must not fail the whole batch: the contract reports it
//! at its index with a code (`INVALID_VALUE` for `"value": "abc"`). So each point decodes into a
//! [`WirePoint`] that records what arrived, and `validate` turns it into a [`crate::Point`] or an error.
//! Only malformed JSON, or a body that is not `{"metrics": [...]}`, fails the request as a whole.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};

/// A JSON scalar as it arrived; containers are remembered only by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum WireScalar {
    /// Field absent.
    Missing,
    /// An integer that fits i64.
    Int(i64),
    /// Any other number.
    Float(f64),
    /// A string.
    Str(String),
    /// `null`, a boolean, an array or an object: named for the error message.
    Other(&'static str),
}

impl WireScalar {
    /// The JSON kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Int(_) | Self::Float(_) => "number",
            Self::Str(_) => "string",
            Self::Other(kind) => kind,
        }
    }
}

impl<'de> Deserialize<'de> for WireScalar {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = WireScalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_i64<E>(self, v: i64) -> Result<WireScalar, E> {
                Ok(WireScalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<WireScalar, E> {
                Ok(i64::try_from(v).map_or(WireScalar::Float(v as f64), WireScalar::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<WireScalar, E> {
                Ok(WireScalar::Float(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<WireScalar, E> {
                Ok(WireScalar::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<WireScalar, E> {
                Ok(WireScalar::Str(v))
            }
            fn visit_bool<E>(self, _: bool) -> Result<WireScalar, E> {
                Ok(WireScalar::Other("boolean"))
            }
            fn visit_unit<E>(self) -> Result<WireScalar, E> {
                Ok(WireScalar::Other("null"))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<WireScalar, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(WireScalar::Other("array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireScalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(WireScalar::Other("object"))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// The `dimensions` field as it arrived.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum WireDimensions {
    /// Absent or `null`: no dimensions.
    #[default]
    None,
    /// An object; values are kept as scalars so a non-string value is reported per point.
    Pairs(Vec<(String, WireScalar)>),
    /// Not an object (named kind).
    NotAnObject(&'static str),
}

impl<'de> Deserialize<'de> for WireDimensions {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DimsVisitor;
        impl<'de> Visitor<'de> for DimsVisitor {
            type Value = WireDimensions;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireDimensions, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(4).min(32));
                while let Some((k, v)) = map.next_entry::<String, WireScalar>()? {
                    pairs.push((k, v));
                }
                Ok(WireDimensions::Pairs(pairs))
            }
            fn visit_unit<E>(self) -> Result<WireDimensions, E> {
                Ok(WireDimensions::None)
            }
            fn visit_i64<E>(self, _: i64) -> Result<WireDimensions, E> {
                Ok(WireDimensions::NotAnObject("number"))
            }
            fn visit_u64<E>(self, _: u64) -> Result<WireDimensions, E> {
                Ok(WireDimensions::NotAnObject("number"))
            }
            fn visit_f64<E>(self, _: f64) -> Result<WireDimensions, E> {
                Ok(WireDimensions::NotAnObject("number"))
            }
            fn visit_str<E>(self, _: &str) -> Result<WireDimensions, E> {
                Ok(WireDimensions::NotAnObject("string"))
            }
            fn visit_bool<E>(self, _: bool) -> Result<WireDimensions, E> {
                Ok(WireDimensions::NotAnObject("boolean"))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<WireDimensions, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(WireDimensions::NotAnObject("array"))
            }
        }
        deserializer.deserialize_any(DimsVisitor)
    }
}

/// One point of a write body, before validation. Unknown fields are ignored so that clients may send
/// extra attributes (units, descriptions) without failing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WirePoint {
    /// Metric name.
    #[serde(default = "missing")]
    pub name: WireScalar,
    /// Unix ms (number) or RFC 3339 / Unix ms (string).
    #[serde(default = "missing")]
    pub timestamp: WireScalar,
    /// A JSON number.
    #[serde(default = "missing")]
    pub value: WireScalar,
    /// Optional object of string values.
    #[serde(default)]
    pub dimensions: WireDimensions,
}

fn missing() -> WireScalar {
    WireScalar::Missing
}

/// The write body. Unknown top-level fields are rejected: they signal a client speaking another protocol.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBody {
    /// The batch.
    pub metrics: Vec<WirePoint>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_types_decode_per_point() {
        let body: WriteBody = serde_json::from_str(
            r#"{"metrics":[
                {"name":"a","timestamp":1,"value":2.5,"dimensions":{"k":"v"}},
                {"name":7,"timestamp":"2024-01-01T00:00:00Z","value":"x","dimensions":{"k":1}},
                {"extra":true,"dimensions":[1]}
            ]}"#,
        )
        .unwrap();
        assert_eq!(body.metrics[0].value, WireScalar::Float(2.5));
        assert_eq!(body.metrics[0].timestamp, WireScalar::Int(1));
        assert_eq!(
            body.metrics[0].dimensions,
            WireDimensions::Pairs(vec![("k".into(), WireScalar::Str("v".into()))])
        );
        assert_eq!(body.metrics[1].name, WireScalar::Int(7));
        assert_eq!(body.metrics[1].value, WireScalar::Str("x".into()));
        assert_eq!(body.metrics[2].name, WireScalar::Missing);
        assert_eq!(
            body.metrics[2].dimensions,
            WireDimensions::NotAnObject("array")
        );
    }

    #[test]
    fn malformed_body_fails_whole() {
        assert!(serde_json::from_str::<WriteBody>(r#"{"metrics":[{"name":"a",}]}"#).is_err());
        assert!(serde_json::from_str::<WriteBody>(r#"{"points":[]}"#).is_err());
        assert!(serde_json::from_str::<WriteBody>(r#"{"metrics":{}}"#).is_err());
        assert!(serde_json::from_str::<WriteBody>(r#"{"metrics":[{"value":NaN}]}"#).is_err());
    }
}
