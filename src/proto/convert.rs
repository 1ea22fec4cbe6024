//! Protobuf messages to and from the ranking core, shared by `POST /rank` with
//! `application/x-protobuf` and the gRPC `Ranker`: a decoded message becomes the same
//! [`RankRequest`] the JSON path builds (its strings moved, not copied), so one
//! validation and ranking code serves every transport; a [`Ranked`] becomes a
//! `RankResponse`.

use std::borrow::Cow;

use prost::Message;

use super::v1 as pb;
use crate::ranker::request::{Candidate, FeatureValue, Features, RankRequest};
use crate::ranker::{RankError, Ranked};
use pb::feature_value::Kind;

/// Decodes a protobuf `RankRequest` body.
pub fn decode(body: &[u8]) -> Result<RankRequest<'static>, RankError> {
    let message = pb::RankRequest::decode(body)
        .map_err(|e| RankError::Invalid(format!("body: not a protobuf RankRequest: {e}")))?;
    request(message)
}

/// The request a message stands for. A form is recognised by what is not empty, as
/// protobuf cannot tell empty from absent: dense when `feature_names` is not empty.
/// Errors name the field as the JSON path does (`candidates[3].values[1]`).
pub fn request(message: pb::RankRequest) -> Result<RankRequest<'static>, RankError> {
    let dense = !message.feature_names.is_empty();
    let context = features(message.context, |name| format!("context.{name}"))?;
    let candidates = message
        .candidates
        .into_iter()
        .enumerate()
        .map(|(i, candidate)| {
            let features = features(candidate.features, |name| {
                format!("candidates[{i}].features.{name}")
            })?;
            let values = if dense || !candidate.values.is_empty() {
                let values = candidate
                    .values
                    .into_iter()
                    .enumerate()
                    .map(|(j, v)| value(v, || format!("candidates[{i}].values[{j}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(values)
            } else {
                None
            };
            Ok(Candidate {
                id: Cow::Owned(candidate.id),
                features,
                values,
            })
        })
        .collect::<Result<Vec<_>, RankError>>()?;
    Ok(RankRequest {
        request_id: message.request_id.map(Cow::Owned),
        context,
        feature_names: dense.then(|| message.feature_names.into_iter().map(Cow::Owned).collect()),
        candidates,
        profile: message.profile.map(Cow::Owned),
        m: message.m,
        alpha: message.alpha,
        k: message.k,
        timeout_ms: message.timeout_ms,
        allow_degraded: message.allow_degraded,
        routing_key: message.routing_key.map(Cow::Owned),
    })
}

/// A `features` or `context` map; `None` when empty.
fn features(
    map: impl IntoIterator<Item = (String, pb::FeatureValue)>,
    field: impl Fn(&str) -> String,
) -> Result<Option<Features<'static>>, RankError> {
    let pairs = map
        .into_iter()
        .map(|(name, v)| {
            let value = value(v, || field(&name))?;
            Ok((Cow::Owned(name), value))
        })
        .collect::<Result<Vec<_>, RankError>>()?;
    Ok((!pairs.is_empty()).then_some(Features(pairs)))
}

/// One value: an unset `kind` is missing; a number must be finite.
fn value(
    value: pb::FeatureValue,
    field: impl FnOnce() -> String,
) -> Result<FeatureValue<'static>, RankError> {
    match value.kind {
        None => Ok(FeatureValue::Missing),
        Some(Kind::Number(x)) if x.is_finite() => Ok(FeatureValue::Number(x)),
        Some(Kind::Number(x)) => Err(RankError::Invalid(format!(
            "{}: {x} is not a finite number (leave the value unset for missing)",
            field()
        ))),
        Some(Kind::Label(label)) => Ok(FeatureValue::Label(Cow::Owned(label))),
    }
}

/// The response to `request`, ranked by model version `version`. `request_id` is the
/// request's, else `header_id` (the `x-request-id` header or metadata).
pub fn response(
    version: u64,
    request: &RankRequest<'_>,
    ranked: &Ranked,
    header_id: Option<&str>,
) -> pb::RankResponse {
    let items = ranked
        .items
        .iter()
        .map(|item| pb::RankedItem {
            id: request.candidates[item.index].id.clone().into_owned(),
            score: item.score,
            direct_score: item.direct_score,
            stage2_score: item.stage2_score,
            reranked: item.stage2_score.is_some(),
        })
        .collect();
    pb::RankResponse {
        request_id: request
            .request_id
            .as_deref()
            .or(header_id)
            .map(str::to_owned),
        model_version: version.to_string(),
        profile: ranked.profile.clone(),
        degraded: ranked.degraded.map(|d| d.as_str().to_owned()),
        m: ranked.m as u64,
        items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(x: f64) -> pb::FeatureValue {
        pb::FeatureValue {
            kind: Some(Kind::Number(x)),
        }
    }

    #[test]
    fn forms_are_told_apart_by_what_is_not_empty() {
        let sparse = request(pb::RankRequest {
            candidates: vec![pb::Candidate {
                id: "a".into(),
                features: [("fans".to_owned(), number(3.0))].into(),
                values: vec![],
            }],
            ..Default::default()
        })
        .unwrap();
        assert!(sparse.feature_names.is_none() && sparse.context.is_none());
        let a = &sparse.candidates[0];
        assert!(a.values.is_none());
        assert_eq!(
            a.features.as_ref().unwrap().0,
            vec![(Cow::from("fans"), FeatureValue::Number(3.0))]
        );

        let dense = request(pb::RankRequest {
            feature_names: vec!["fans".into(), "hour".into()],
            candidates: vec![pb::Candidate {
                id: "a".into(),
                values: vec![number(1.0), pb::FeatureValue { kind: None }],
                ..Default::default()
            }],
            m: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(dense.feature_names.as_ref().map(Vec::len), Some(2));
        assert_eq!(
            dense.candidates[0].values,
            Some(vec![FeatureValue::Number(1.0), FeatureValue::Missing])
        );
        assert!(dense.candidates[0].features.is_none());
        // m = 0 is kept, for the shared validation to refuse.
        assert_eq!(dense.m, Some(0));
    }

    #[test]
    fn dense_candidates_without_values_still_get_a_length_check() {
        let dense = request(pb::RankRequest {
            feature_names: vec!["fans".into()],
            candidates: vec![pb::Candidate {
                id: "a".into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(dense.candidates[0].values, Some(vec![]));
    }

    #[test]
    fn non_finite_numbers_are_refused_by_field() {
        let err = request(pb::RankRequest {
            context: [("hour".to_owned(), number(f64::INFINITY))].into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("context.hour: "), "{err}");
        let err = request(pb::RankRequest {
            feature_names: vec!["fans".into()],
            candidates: vec![pb::Candidate {
                id: "a".into(),
                values: vec![number(f64::NAN)],
                ..Default::default()
            }],
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            err.to_string().starts_with("candidates[0].values[0]: NaN"),
            "{err}"
        );
    }

    #[test]
    fn garbage_is_invalid() {
        let err = decode(b"\xff\xff\xff").unwrap_err();
        assert!(matches!(err, RankError::Invalid(_)), "{err:?}");
        assert!(err.to_string().starts_with("body: "), "{err}");
    }
}
