//! How configuration values are spelled: durations as the contract's text (`30s`, `7d`), globs checked
//! when read, `batch_write.compression` as a boolean or `gzip`/`none`, and enums with a fixed set of
//! spellings whose error lists them.

/// A configuration enum read from and written as one of fixed spellings, with an error that lists them
/// (serde's derived message names Rust types instead).
macro_rules! text_enum {
    ($name:ident { $($variant:ident => $text:literal $(| $alias:literal)*),+ $(,)? }) => {
        impl $name {
            /// The spelling in the configuration.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                match text.as_str() {
                    $($text $(| $alias)* => Ok(Self::$variant),)+
                    other => Err(serde::de::Error::custom(format!(
                        "unknown value {other:?}, expected one of: {}",
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

/// Durations as the contract's text (`30s`, `7d`), read with `luminate_model::time::parse_duration`.
pub(super) mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        luminate_model::time::parse_duration(&text).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&luminate_model::time::format_duration(*value))
    }
}

/// An optional duration as text (`30d`), absent or `null` for none.
pub(super) mod optional_duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => luminate_model::time::parse_duration(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_str(&luminate_model::time::format_duration(*d)),
            None => s.serialize_none(),
        }
    }
}

/// Glob patterns as text, checked when read.
pub(super) mod glob_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<glob::Pattern, D::Error> {
        let text = String::deserialize(d)?;
        glob::Pattern::new(&text)
            .map_err(|e| serde::de::Error::custom(format!("invalid glob pattern {text:?}: {e}")))
    }

    pub fn serialize<S: Serializer>(value: &glob::Pattern, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(value.as_str())
    }
}

/// `batch_write.compression`: a boolean, or the seed's `gzip` / `none`.
pub(super) mod compression {
    use std::fmt;

    use serde::Deserializer;
    use serde::de::{self, Visitor};

    struct CompressionVisitor;

    impl Visitor<'_> for CompressionVisitor {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true, false, \"gzip\" or \"none\"")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            match v {
                "gzip" | "true" => Ok(true),
                "none" | "false" => Ok(false),
                other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        d.deserialize_any(CompressionVisitor)
    }
}
