//! The write body decoded through `serde_json`'s `Deserializer` and custom visitors: the decoder the
//! server used before [`super::scan`], kept as the reference the scanner is tested against (the
//! `wire-reference` feature: proptests here, and the `json_write` fuzz target). Not built into the
//! server.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{WireDimensions, WireError, WirePoint, WireScalar};

impl<'de> Deserialize<'de> for WireScalar<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = WireScalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_i64<E>(self, v: i64) -> Result<WireScalar<'de>, E> {
                Ok(WireScalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<WireScalar<'de>, E> {
                Ok(i64::try_from(v).map_or(WireScalar::Float(v as f64), WireScalar::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<WireScalar<'de>, E> {
                Ok(WireScalar::Float(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<WireScalar<'de>, E> {
                Ok(WireScalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<WireScalar<'de>, E> {
                Ok(WireScalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<WireScalar<'de>, E> {
                Ok(WireScalar::Str(Cow::Owned(v)))
            }
            fn visit_bool<E>(self, _: bool) -> Result<WireScalar<'de>, E> {
                Ok(WireScalar::Other("boolean"))
            }
            fn visit_unit<E>(self) -> Result<WireScalar<'de>, E> {
                Ok(WireScalar::Other("null"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WireScalar<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(WireScalar::Other("array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireScalar<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(WireScalar::Other("object"))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// A JSON string (an object key), borrowed from the body unless it had escapes. `Cow<str>`'s own
/// `Deserialize` always copies.
struct WireStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for WireStr<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = WireStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<WireStr<'de>, E> {
                Ok(WireStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<WireStr<'de>, E> {
                Ok(WireStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<WireStr<'de>, E> {
                Ok(WireStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor)
    }
}

/// Decodes `dimensions` into a buffer the caller reuses from point to point.
struct DimsSeed<'a>(Vec<(Cow<'a, str>, WireScalar<'a>)>);

impl<'de> DeserializeSeed<'de> for DimsSeed<'de> {
    type Value = WireDimensions<'de>;
    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DimsSeed<'de> {
    type Value = WireDimensions<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of string values")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireDimensions<'de>, A::Error> {
        let mut pairs = self.0;
        pairs.clear();
        while let Some((WireStr(k), v)) = map.next_entry::<WireStr<'de>, WireScalar<'de>>()? {
            pairs.push((k, v));
        }
        Ok(WireDimensions::Pairs(pairs))
    }
    fn visit_unit<E>(self) -> Result<WireDimensions<'de>, E> {
        Ok(WireDimensions::None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<WireDimensions<'de>, E> {
        Ok(WireDimensions::NotAnObject("number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<WireDimensions<'de>, E> {
        Ok(WireDimensions::NotAnObject("number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<WireDimensions<'de>, E> {
        Ok(WireDimensions::NotAnObject("number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<WireDimensions<'de>, E> {
        Ok(WireDimensions::NotAnObject("string"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<WireDimensions<'de>, E> {
        Ok(WireDimensions::NotAnObject("boolean"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WireDimensions<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(WireDimensions::NotAnObject("array"))
    }
}

const POINT_FIELDS: &[&str] = &["name", "timestamp", "value", "dimensions"];
const BODY_FIELDS: &[&str] = &["metrics"];

/// Decodes one point, its dimensions into the reused buffer.
struct PointSeed<'a>(Vec<(Cow<'a, str>, WireScalar<'a>)>);

impl<'de> DeserializeSeed<'de> for PointSeed<'de> {
    type Value = WirePoint<'de>;
    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_struct("WirePoint", POINT_FIELDS, self)
    }
}

/// Sets a field once; a repeated field fails the body, as a derived `Deserialize` does.
fn once<T, E: de::Error>(slot: &mut Option<T>, field: &'static str, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(field));
    }
    *slot = Some(value);
    Ok(())
}

impl<'de> Visitor<'de> for PointSeed<'de> {
    type Value = WirePoint<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a point object {\"name\", \"timestamp\", \"value\", \"dimensions\"}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WirePoint<'de>, A::Error> {
        let mut scratch = Some(self.0);
        let (mut name, mut timestamp, mut value, mut dimensions) = (None, None, None, None);
        while let Some(WireStr(key)) = map.next_key::<WireStr<'de>>()? {
            match key.as_ref() {
                "name" => once(&mut name, "name", map.next_value()?)?,
                "timestamp" => once(&mut timestamp, "timestamp", map.next_value()?)?,
                "value" => once(&mut value, "value", map.next_value()?)?,
                "dimensions" => {
                    let Some(buffer) = scratch.take() else {
                        return Err(de::Error::duplicate_field("dimensions"));
                    };
                    once(
                        &mut dimensions,
                        "dimensions",
                        map.next_value_seed(DimsSeed(buffer))?,
                    )?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(WirePoint {
            name: name.unwrap_or(WireScalar::Missing),
            timestamp: timestamp.unwrap_or(WireScalar::Missing),
            value: value.unwrap_or(WireScalar::Missing),
            dimensions: dimensions.unwrap_or_default(),
        })
    }
}

/// Decodes the `metrics` array, handing each point to the callback.
struct MetricsSeed<'f, F> {
    each: &'f mut F,
    count: usize,
}

impl<'de, F: FnMut(&WirePoint<'de>)> DeserializeSeed<'de> for &mut MetricsSeed<'_, F> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(&WirePoint<'de>)> Visitor<'de> for &mut MetricsSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of point objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut scratch = Vec::new();
        while let Some(point) = seq.next_element_seed(PointSeed(std::mem::take(&mut scratch)))? {
            (self.each)(&point);
            self.count += 1;
            // Take the dimension buffer back for the next point (its strings are dropped with it).
            if let WireDimensions::Pairs(pairs) = point.dimensions {
                scratch = pairs;
            }
        }
        Ok(())
    }
}

/// Decodes the body object: exactly one field, `metrics`.
struct BodyVisitor<'s, 'f, F>(&'s mut MetricsSeed<'f, F>);

impl<'de, F: FnMut(&WirePoint<'de>)> Visitor<'de> for BodyVisitor<'_, '_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object {\"metrics\": [...]}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(WireStr(key)) = map.next_key::<WireStr<'de>>()? {
            if key != "metrics" {
                return Err(de::Error::unknown_field(&key, BODY_FIELDS));
            }
            if seen {
                return Err(de::Error::duplicate_field("metrics"));
            }
            seen = true;
            map.next_value_seed(&mut *self.0)?;
        }
        if !seen {
            return Err(de::Error::missing_field("metrics"));
        }
        Ok(())
    }
}

/// Decodes a write body, calling `each` with every point in order (the callback may keep strings that
/// borrow the body; a point's owned, unescaped strings live only for the call). Returns the number of
/// points. Fails on malformed JSON or a body that is not `{"metrics": [...]}` of point objects, possibly
/// after some points were handed out.
pub fn decode_write_body<'a>(
    text: &'a str,
    mut each: impl FnMut(&WirePoint<'a>),
) -> Result<usize, serde_json::Error> {
    let mut seed = MetricsSeed {
        each: &mut each,
        count: 0,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    de::Deserializer::deserialize_struct(
        &mut de,
        "WriteBody",
        BODY_FIELDS,
        BodyVisitor(&mut seed),
    )?;
    de.end()?;
    Ok(seed.count)
}

/// The reference's error on `text` as the scanner words it: the same reason, line and column.
pub fn to_wire_error(text: &str, e: &serde_json::Error) -> WireError {
    let full = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    let reason = full.strip_suffix(&position).unwrap_or(&full).to_owned();
    WireError::placed(text.as_bytes(), reason, e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<Vec<WirePoint<'static>>, serde_json::Error> {
        let mut out = Vec::new();
        decode_write_body(text, |p| out.push(owned(p)))?;
        Ok(out)
    }

    fn owned(p: &WirePoint<'_>) -> WirePoint<'static> {
        let scalar = |s: &WireScalar<'_>| match s {
            WireScalar::Str(s) => WireScalar::Str(Cow::Owned(s.to_string())),
            WireScalar::Missing => WireScalar::Missing,
            WireScalar::Int(i) => WireScalar::Int(*i),
            WireScalar::Float(f) => WireScalar::Float(*f),
            WireScalar::Other(k) => WireScalar::Other(k),
        };
        WirePoint {
            name: scalar(&p.name),
            timestamp: scalar(&p.timestamp),
            value: scalar(&p.value),
            dimensions: match &p.dimensions {
                WireDimensions::None => WireDimensions::None,
                WireDimensions::NotAnObject(k) => WireDimensions::NotAnObject(k),
                WireDimensions::Pairs(pairs) => WireDimensions::Pairs(
                    pairs
                        .iter()
                        .map(|(k, v)| (Cow::Owned(k.to_string()), scalar(v)))
                        .collect(),
                ),
            },
        }
    }

    fn s(v: &str) -> WireScalar<'static> {
        WireScalar::Str(Cow::Owned(v.to_owned()))
    }

    #[test]
    fn wrong_types_decode_per_point() {
        let metrics = decode(
            r#"{"metrics":[
                {"name":"a","timestamp":1,"value":2.5,"dimensions":{"k":"v"}},
                {"name":7,"timestamp":"2024-01-01T00:00:00Z","value":"x","dimensions":{"k":1}},
                {"extra":true,"dimensions":[1]},
                {"name":"b","dimensions":null}
            ]}"#,
        )
        .unwrap();
        assert_eq!(metrics[0].value, WireScalar::Float(2.5));
        assert_eq!(metrics[0].timestamp, WireScalar::Int(1));
        assert_eq!(
            metrics[0].dimensions,
            WireDimensions::Pairs(vec![(Cow::Owned("k".into()), s("v"))])
        );
        assert_eq!(metrics[1].name, WireScalar::Int(7));
        assert_eq!(metrics[1].value, s("x"));
        assert_eq!(
            metrics[1].dimensions,
            WireDimensions::Pairs(vec![(Cow::Owned("k".into()), WireScalar::Int(1))])
        );
        assert_eq!(metrics[2].name, WireScalar::Missing);
        assert_eq!(metrics[2].dimensions, WireDimensions::NotAnObject("array"));
        assert_eq!(metrics[3].dimensions, WireDimensions::None);
        assert_eq!(metrics.len(), 4);
    }

    #[test]
    fn strings_borrow_the_body_unless_escaped() {
        let text =
            r#"{"metrics":[{"name":"m","dimensions":{"customer_id":"cust_\u0031","k":"v"}}]}"#;
        let mut seen = Vec::new();
        decode_write_body(text, |p| {
            let WireDimensions::Pairs(pairs) = &p.dimensions else {
                panic!("pairs expected");
            };
            for (k, v) in pairs {
                let WireScalar::Str(v) = v else {
                    panic!("string expected");
                };
                seen.push((
                    matches!(k, Cow::Borrowed(_)),
                    v.to_string(),
                    matches!(v, Cow::Borrowed(_)),
                ));
            }
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (true, "cust_1".to_owned(), false),
                (true, "v".to_owned(), true)
            ]
        );
    }

    #[test]
    fn arrays_in_place_of_objects_fail_the_body() {
        for (bad, expected) in [
            (r#"[[["m", 1, 1.5, {"a": "b"}]]]"#, "expected an object"),
            (r#"[{"metrics": []}]"#, "expected an object"),
            (r#"{"metrics": [["m", 1, 1]]}"#, "expected a point object"),
            (
                r#"{"metrics": [{"name": "m"}, ["m", 1, 1]]}"#,
                "expected a point object",
            ),
            (r#"{"metrics": [[]]}"#, "expected a point object"),
        ] {
            let e = decode(bad).unwrap_err().to_string();
            assert!(
                e.starts_with("invalid type: sequence, ") && e.contains(expected),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_repeated_dimension_key_is_kept_for_validation_to_refuse() {
        let metrics =
            decode(r#"{"metrics":[{"name":"m","dimensions":{"a":"x","a":"y"}}]}"#).unwrap();
        assert_eq!(
            metrics[0].dimensions,
            WireDimensions::Pairs(vec![
                (Cow::Owned("a".into()), s("x")),
                (Cow::Owned("a".into()), s("y"))
            ])
        );
    }

    #[test]
    fn malformed_body_fails_whole() {
        for bad in [
            r#"{"metrics":[{"name":"a",}]}"#,
            r#"{"points":[]}"#,
            r#"{"metrics":{}}"#,
            r#"{"metrics":[{"value":NaN}]}"#,
            r#"{"metrics":[1]}"#,
            r#"{"metrics":[],"metrics":[]}"#,
            r#"{"metrics":[{"name":"a","name":"b"}]}"#,
            r#"{}"#,
            r#"{"metrics":[]} x"#,
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
        let e = decode(r#"{"points":[]}"#).unwrap_err().to_string();
        assert!(
            e.contains("unknown field `points`, expected `metrics`"),
            "{e}"
        );
        let e = decode(r#"{"metrics":[]"#).unwrap_err();
        assert!(e.is_eof(), "{e}");
        assert_eq!(decode(r#"{"metrics":[]}"#).unwrap().len(), 0);
    }
}
