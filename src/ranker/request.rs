//! A ranking request as the core sees it (DESIGN.md §2), whatever transport brought it:
//! sparse (`features` per candidate) or dense (`feature_names` + `values`). Its serde
//! `Deserialize` borrows strings from the body; JSON decoding itself is `http::json`'s,
//! and protobuf messages become this type in `proto::convert`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;

/// A `/rank` request, sparse (`features` per candidate) or dense (`feature_names` +
/// `values` per candidate). Unknown keys are an error. (Its OpenAPI schema is derived
/// from this type: the doc comments below are the API document's descriptions.)
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RankRequest<'a> {
    /// Echoed in the response (else the `x-request-id` header is).
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>)]
    pub request_id: Option<Cow<'a, str>>,
    /// Feature values shared by every candidate (the user's context); a candidate's own
    /// value wins.
    #[serde(borrow, default)]
    pub context: Option<Features<'a>>,
    /// Dense form: the name of each position of every candidate's `values`, each once.
    #[serde(borrow, default)]
    #[schema(value_type = Option<Vec<String>>)]
    pub feature_names: Option<Vec<Cow<'a, str>>>,
    /// The candidates, each with a unique `id`.
    #[serde(borrow)]
    pub candidates: Vec<Candidate<'a>>,
    /// The ranking profile (DESIGN.md §1.1; default: the version's `default_profile`).
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>)]
    pub profile: Option<Cow<'a, str>>,
    /// The `m` of the profile's first recall source (1 to the profile's `max_m`; default:
    /// the profile's). Only for a profile with recall.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub m: Option<u64>,
    /// Weight of the rerank score in the rerank key, in [0, 1] (default: the profile's).
    /// Only for a profile with a rerank model.
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub alpha: Option<f64>,
    /// How many items to return (at least 1; default: all).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub k: Option<u64>,
    /// This request's deadline in milliseconds from its arrival, capped by the server's
    /// `request_timeout_ms` (at least 1).
    #[serde(default)]
    #[schema(minimum = 1)]
    pub timeout_ms: Option<u64>,
    /// Whether an answer that does not fit the deadline may be degraded (a smaller
    /// recalled set, or no rerank) rather than refused with 504. Default true.
    #[serde(default)]
    pub allow_degraded: Option<bool>,
    /// Picks the canary bucket of `serving.toml` (DESIGN.md §9), e.g. the user id: the
    /// same key always meets the same version. Else `request_id` does; else a random draw.
    #[serde(borrow, default)]
    #[schema(value_type = Option<String>)]
    pub routing_key: Option<Cow<'a, str>>,
}

impl RankRequest<'_> {
    /// The key that picks the canary bucket: `routing_key`, else `request_id`.
    pub fn routing_key(&self) -> Option<&str> {
        self.routing_key.as_deref().or(self.request_id.as_deref())
    }
}

/// One candidate: sparse `features`, or dense `values` in `feature_names` order.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Candidate<'a> {
    #[serde(borrow)]
    #[schema(value_type = String)]
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

impl utoipa::PartialSchema for FeatureValue<'_> {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(Object::with_type(Type::Number))
            .item(Object::with_type(Type::Null))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "a category label, for a feature the models know as a pandas category",
                    )),
            )
            .description(Some(
                "A feature value: a finite number, null (missing), or a category label.",
            ))
            .into()
    }
}

impl utoipa::ToSchema for FeatureValue<'_> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("FeatureValue")
    }
}

impl utoipa::PartialSchema for Features<'_> {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(utoipa::openapi::Ref::from_schema_name("FeatureValue")))
            .description(Some("Feature values by name."))
            .into()
    }
}

impl utoipa::ToSchema for Features<'_> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Features")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((
            "FeatureValue".to_owned(),
            <FeatureValue<'_> as utoipa::PartialSchema>::schema(),
        ));
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
