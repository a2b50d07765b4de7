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
