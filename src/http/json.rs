//! The JSON codec of `POST /rank` (DESIGN.md §2): a body decoded into the core's
//! [`RankRequest`] in one pass with borrowed strings, an error naming the field at fault
//! (`candidates[3].values[1]`), and the response body.
//!
//! # Which decoder
//! A body is decoded by sonic-rs (SIMD scanning, correctly rounded floats); one it refuses
//! is decoded again by serde_json with path tracking, whose error names the field. Both
//! drive the same serde `Deserialize` of [`RankRequest`], so they accept the same bodies;
//! the tests below hold sonic-rs to serde_json on tricky bodies, on random floats' bits and
//! on randomly mutated bodies. One difference is left: sonic-rs reads `-0` and `-0.0` as
//! 0, which no model can tell apart (inputs of ±0 are stored as 0, LightGBM's view).
//!
//! Measured on the service's own request type (`cargo bench --bench rank -- decode`,
//! medians, 2-core Intel Xeon with AVX-512, the portable build sonic-rs gets without
//! `target-cpu` flags): 1,000 sparse candidates 325 µs with serde_json
//! (`float_roundtrip`) → 220 µs with sonic-rs; 1,000 dense 220 → 177 µs; 5,000 sparse
//! 1,758 → 1,228 µs; 5,000 dense 1,132 → 910 µs. simd-json, also correctly rounded, took
//! 498–625 µs on 1,000 sparse candidates (it copies the body to parse it in place).

use serde::Serialize;

use crate::ranker::{RankError, RankRequest, Ranked};

/// Decodes a request body; the error message names the offending field.
pub fn decode(body: &[u8]) -> Result<RankRequest<'_>, RankError> {
    // Tracking the path costs as much as the decoding itself, so it is done only to
    // explain a body that has already failed.
    sonic_rs::from_slice(body).or_else(|_| decode_with_path(body))
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The decoded request's debug form, ±0 made one: the models see them alike (both are
    /// stored as 0), and sonic-rs reads `-0` and `-0.0` as 0 where serde_json keeps the sign.
    fn decoded(request: RankRequest<'_>) -> String {
        format!("{request:?}").replace("Number(-0.0)", "Number(0.0)")
    }

    fn by_serde_json(body: &[u8]) -> Option<String> {
        serde_json::from_slice(body).ok().map(decoded)
    }

    fn by_sonic_rs(body: &[u8]) -> Option<String> {
        sonic_rs::from_slice(body).ok().map(decoded)
    }

    /// What the fast decoder accepts, serde_json accepts too, and decodes to the same
    /// request (what it refuses is decoded again by serde_json to name the field).
    fn assert_agree(body: &[u8]) {
        if let Some(fast) = by_sonic_rs(body) {
            assert_eq!(
                Some(fast),
                by_serde_json(body),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_fast_decoder_takes_tricky_bodies_as_serde_json_does() {
        let candidate =
            |value: &str| format!(r#"{{"candidates":[{{"id":"a","features":{{"x":{value}}}}}]}}"#);
        let mut bodies: Vec<Vec<u8>> = [
            "1e400",
            "-1e400",
            "1e-400",
            "18446744073709551616",
            "-9223372036854775809",
            "01",
            "1.",
            ".5",
            "-",
            "NaN",
            "Infinity",
            "+1",
            "1,",
            "true",
            "[1]",
            "-0",
            "-0.0",
            "0.1000000000000000055511151231257827021181583404541015625",
            "2.2250738585072011e-308",
            "1E5",
            "1e+5",
            "123456789012345678901234567890",
        ]
        .iter()
        .map(|v| candidate(v).into_bytes())
        .collect();
        for body in [
            r#"{"candidates":[{"id":"\ud800"}]}"#,
            r#"{"candidates":[{"id":"\ud800\u0041"}]}"#,
            r#"{"candidates":[{"id":"\udc00"}]}"#,
            r#"{"candidates":[{"id":"a\"b\\c\/d\u00e9\n"}]}"#,
            r#"{"candidates":[{"id":"a",}]}"#,
            r#"{"candidates":[{"id":"a"},]}"#,
            r#"{"candidates":[{"id":"a","features":{"x":1,"x":2}}]}"#,
            r#"{"candidates":[{"id":"a","values":[1,null,"b",2.5e-3]}],"feature_names":["x","y","z","w"]}"#,
            r#"{"candidates":[],"m":1.0}"#,
            r#"{"candidates":[],"m":-1}"#,
            r#"{"candidates":[],"m":1e2}"#,
            r#"{"candidates":[],"m":18446744073709551616}"#,
            r#"{"candidates":[],"alpha":1}"#,
            r#"{"candidates":[],"alpha":"1"}"#,
            r#"{"candidates":[],"candidates":[]}"#,
            r#"{"candidates":[],"allow_degraded":null}"#,
            r#"{"candidates":[],"request_id":null}"#,
            r#"{"candidates":[]} x"#,
            "{\"candidates\":[]}  \n",
            r#"{"candidates":null}"#,
            "{}",
            "[]",
            "",
        ] {
            bodies.push(body.as_bytes().to_vec());
        }
        for body in [
            &b"{\"candidates\":[{\"id\":\"a\x01b\"}]}"[..],
            b"{\"candidates\":[{\"id\":\"a\xffb\"}]}",
            b"{\"candidates\":[{\"id\":\"a\xc3\"}]}",
            b"\xef\xbb\xbf{\"candidates\":[]}",
        ] {
            bodies.push(body.to_vec());
        }
        for body in &bodies {
            assert_eq!(
                by_sonic_rs(body),
                by_serde_json(body),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// A small valid body with both forms' features, escapes, a label and a null.
    const BODY: &str = r#"{"request_id":"r\u00e9-1","context":{"u":3,"city":"a\"b"},"candidates":[{"id":"c1","features":{"x":1.5,"y":null,"z":-2e-3}},{"id":"c\/2","features":{"x":0,"cat":"v"}}],"m":2,"k":1,"alpha":0.25,"timeout_ms":80,"allow_degraded":false}"#;

    proptest! {
        #[test]
        fn numbers_decode_to_the_same_bits(bits in any::<u64>(), int in any::<i64>(), digits in 1usize..30) {
            let x = f64::from_bits(bits);
            prop_assume!(x.is_finite());
            for text in [format!("{x}"), format!("{x:e}"), format!("{x:.digits$e}"), int.to_string(), (int as u64).to_string()] {
                let body = format!(r#"{{"candidates":[{{"id":"a","values":[{text}]}}],"feature_names":["x"]}}"#);
                prop_assert_eq!(by_sonic_rs(body.as_bytes()), by_serde_json(body.as_bytes()), "{}", text);
            }
        }

        #[test]
        fn a_mutated_body_is_accepted_only_as_serde_json_accepts_it(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(
                b"{}[]\",:\\ 0123456789.eE+-nultrfa\x00\x1f\x7f\xc3\xa9\xff/u".to_vec())), 1..4),
        ) {
            let mut body = BODY.as_bytes().to_vec();
            for (at, kind, byte) in edits {
                let i = at.index(body.len());
                match kind {
                    0 => body[i] = byte,
                    1 => body.insert(i, byte),
                    _ => { body.remove(i); }
                }
            }
            assert_agree(&body);
        }
    }

    #[test]
    fn the_sample_body_decodes() {
        assert!(by_sonic_rs(BODY.as_bytes()).is_some());
        assert_eq!(by_sonic_rs(BODY.as_bytes()), by_serde_json(BODY.as_bytes()));
    }
}
