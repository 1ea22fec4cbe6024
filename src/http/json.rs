//! The JSON codec of `POST /rank` (DESIGN.md §2): a body decoded into the core's
//! [`RankRequest`] in one pass with borrowed strings, an error naming the field at fault
//! (`candidates[3].values[1]`), and the response body.

use serde::Serialize;

use crate::ranker::{RankError, RankRequest, Ranked};

/// Decodes a request body; the error message names the offending field.
pub fn decode(body: &[u8]) -> Result<RankRequest<'_>, RankError> {
    // Tracking the path costs as much as the decoding itself, so it is done only to
    // explain a body that has already failed.
    serde_json::from_slice(body).or_else(|_| decode_with_path(body))
}

/// Decodes `body` tracking the path of each value, for the error message.
fn decode_with_path(body: &[u8]) -> Result<RankRequest<'_>, RankError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let request: RankRequest<'_> =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                RankError::Invalid(format!("invalid request: {inner}"))
            } else {
                RankError::Invalid(format!("{path}: {inner}"))
            }
        })?;
    deserializer
        .end()
        .map_err(|e| RankError::Invalid(format!("invalid request: {e}")))?;
    Ok(request)
}

/// The response body of `POST /rank`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RankResponse<'a> {
    /// The request's `request_id`, else its `x-request-id` header.
    pub request_id: Option<&'a str>,
    /// The model version that ranked the request.
    pub model_version: String,
    /// The profile that ranked the request.
    pub profile: &'a str,
    /// The M used: how many candidates were reranked (the size of the recalled set).
    pub m: usize,
    /// `null` when the whole profile ran; else how the answer was degraded to fit the
    /// deadline: `reduced_m` (fewer candidates reranked) or `recall_only` (no rerank).
    pub degraded: Option<&'static str>,
    /// The first `k` candidates of the final order.
    pub items: Vec<Item<'a>>,
}

/// One candidate of the response, best first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Item<'a> {
    pub id: &'a str,
    /// The rerank key for reranked items (`stage2_score`, or its fusion with
    /// `direct_score` when the profile's alpha < 1), else `direct_score`.
    pub score: f64,
    /// The profile's score model's output.
    pub direct_score: f64,
    /// The rerank model's output; `null` outside the recalled set.
    pub stage2_score: Option<f64>,
    pub reranked: bool,
}

/// The JSON response body for `ranked`, by model version `version`; its `request_id` is
/// the body's, else `header_id`.
pub fn response(
    version: u64,
    request: &RankRequest<'_>,
    ranked: &Ranked,
    header_id: Option<&str>,
) -> Result<Vec<u8>, RankError> {
    let items = ranked
        .items
        .iter()
        .map(|item| Item {
            id: &request.candidates[item.index].id,
            score: item.score,
            direct_score: item.direct_score,
            stage2_score: item.stage2_score,
            reranked: item.stage2_score.is_some(),
        })
        .collect();
    let response = RankResponse {
        request_id: request.request_id.as_deref().or(header_id),
        model_version: version.to_string(),
        profile: &ranked.profile,
        m: ranked.m,
        degraded: ranked.degraded.map(|d| d.as_str()),
        items,
    };
    serde_json::to_vec(&response)
        .map_err(|e| RankError::Internal(format!("encoding the response: {e}")))
}
