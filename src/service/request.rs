//! The JSON body of `POST /rank` (DESIGN.md §2), decoded in one pass with borrowed
//! strings; a decoding error names the field at fault (`candidates[3].values[1]`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::error::ApiError;

/// A `/rank` request, sparse (`features` per candidate) or dense (`feature_names` +
/// `values` per candidate).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankRequest<'a> {
    #[serde(borrow, default)]
    pub request_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub context: Option<Features<'a>>,
    #[serde(borrow, default)]
    pub feature_names: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    pub candidates: Vec<Candidate<'a>>,
    #[serde(default)]
    pub m: Option<u64>,
    #[serde(default)]
    pub k: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Candidate<'a> {
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    #[serde(borrow, default)]
    pub features: Option<Features<'a>>,
    #[serde(borrow, default)]
    pub values: Option<Vec<FeatureValue<'a>>>,
}

/// A feature value: a number, missing (`null`), or a category label.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureValue<'a> {
    Number(f64),
    Missing,
    Label(Cow<'a, str>),
}

/// The `name: value` pairs of a `features` or `context` object, in the order given.
#[derive(Debug, Default)]
pub struct Features<'a>(pub Vec<(Cow<'a, str>, FeatureValue<'a>)>);

impl<'a> RankRequest<'a> {
    /// Decodes a request body; the error message names the offending field.
    pub fn decode(body: &'a [u8]) -> Result<Self, ApiError> {
        // Tracking the path costs as much as the decoding itself, so it is done only to
        // explain a body that has already failed.
        serde_json::from_slice(body).or_else(|_| Self::decode_with_path(body))
    }

    /// Decodes `body` tracking the path of each value, for the error message.
    fn decode_with_path(body: &'a [u8]) -> Result<Self, ApiError> {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let request: Self = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                ApiError::Invalid(format!("invalid request: {inner}"))
            } else {
                ApiError::Invalid(format!("{path}: {inner}"))
            }
        })?;
        deserializer
            .end()
            .map_err(|e| ApiError::Invalid(format!("invalid request: {e}")))?;
        Ok(request)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for FeatureValue<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FeatureValueVisitor)
    }
}

struct FeatureValueVisitor;

impl<'de> Visitor<'de> for FeatureValueVisitor {
    type Value = FeatureValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, null, or a category label")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if v.is_finite() {
            Ok(FeatureValue::Number(v))
        } else {
            Err(E::custom("a non-finite number"))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(FeatureValue::Number(v as f64))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(FeatureValue::Number(v as f64))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(FeatureValue::Missing)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(FeatureValue::Missing)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(FeatureValue::Label(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(FeatureValue::Label(Cow::Owned(v.to_owned())))
    }
}

/// A map key, borrowed from the body when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a feature name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Features<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FeaturesVisitor;
        impl<'de> Visitor<'de> for FeaturesVisitor {
            type Value = Features<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of feature values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(Key(name)) = map.next_key()? {
                    let value: FeatureValue<'de> = map.next_value()?;
                    pairs.push((name, value));
                }
                Ok(Features(pairs))
            }
        }
        deserializer.deserialize_map(FeaturesVisitor)
    }
}
