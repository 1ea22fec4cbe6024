//! `POST /rank`: what can be refused cheaply is refused first (content type, a declared
//! length over the limit, no place free, nothing serving), with `Connection: close` as the
//! body stays unread; then, holding its admission, the body is read under the size limit
//! and the deadline (counted from arrival), its own `timeout_ms` is read ahead of decoding
//! when it can be (`early_deadline`), and it is ranked off the async runtime by the core.
//! Bodies are JSON or protobuf (`application/x-protobuf`); the response is protobuf when
//! the request is or `Accept` asks for it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Version};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use prost::Message;
use tower_http::timeout::TimeoutError;

use super::early_deadline;
use super::error::{ErrorBody, HttpError};
use super::json::{self, RankResponse};
use crate::proto::convert;
use crate::ranker::pipeline::shadow_rank;
use crate::ranker::{
    rank_request, Admission, Arrived, Deadline, RankError, RankRequest, Ranker, Routing,
};

/// Ranks one impression's candidates (DESIGN.md §1, §2).
#[utoipa::path(post, path = "/rank", tag = "ranking",
    request_body(
        description = "JSON, or protobuf giftrank.v1.RankRequest (proto/giftrank/v1/ranker.proto) as application/x-protobuf",
        content((RankRequest = "application/json"), (Object = "application/x-protobuf"))),
    responses(
        (status = 200, description = "The ranked candidates (protobuf giftrank.v1.RankResponse when the request is protobuf or Accept asks for it)", body = RankResponse),
        (status = 400, description = "Malformed or invalid; the message names the field", body = ErrorBody),
        (status = 408, description = "The body stalled longer than body_read_timeout_ms", body = ErrorBody),
        (status = 413, description = "Body or candidate count over the limit", body = ErrorBody),
        (status = 415, description = "Neither JSON nor protobuf", body = ErrorBody),
        (status = 503, description = "Not ready, or overloaded (shed at once)", body = ErrorBody,
            headers(("Retry-After" = u32, description = "seconds"))),
        (status = 504, description = "The deadline (counted from arrival) passed", body = ErrorBody)))]
pub async fn handle(
    State(ranker): State<Arc<Ranker>>,
    Extension(Arrived(arrived)): Extension<Arrived>,
    request: Request,
) -> Result<Response, HttpError> {
    let deadline = Deadline::from_arrival(arrived, ranker.config.request_timeout(), None);
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let Admitted {
        format,
        answer,
        declared,
        admission,
    } = match admit_unread(&ranker, headers) {
        Ok(admitted) => admitted,
        Err(refused) => return Ok(closing(refused, parts.version)),
    };
    let body = read_body(&ranker, body, declared, deadline).await?;
    let deadline = deadline.capped(
        match format {
            Format::Json => early_deadline::json(&body),
            Format::Protobuf => early_deadline::protobuf(&body),
        }
        .map(Duration::from_millis),
    );
    let header_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let encoded = ranker
        .run(admission, deadline, move |ranker, routing, deadline| {
            rank(
                ranker,
                routing,
                body,
                (format, answer),
                header_id.as_deref(),
                deadline,
            )
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, answer.media_type())], encoded).into_response())
}

/// A request let in before its body is read: the body's format and the response's, the
/// body's declared length, and its place among the requests in flight.
struct Admitted {
    format: Format,
    answer: Format,
    declared: Option<u64>,
    admission: Admission,
}

/// What is checked before the body is read.
fn admit_unread(ranker: &Ranker, headers: &HeaderMap) -> Result<Admitted, HttpError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(format) = Format::of(content_type) else {
        ranker.count_rejected("unsupported_media_type");
        return Err(HttpError::UnsupportedMediaType(format!(
            "Content-Type `{content_type}` is not supported; send application/json or application/x-protobuf"
        )));
    };
    let answer = if format == Format::Protobuf || accepts_protobuf(headers) {
        Format::Protobuf
    } else {
        Format::Json
    };
    let declared = declared_length(headers);
    if declared.is_some_and(|n| n > ranker.config.max_body_bytes as u64) {
        return Err(too_large(ranker).into());
    }
    Ok(Admitted {
        format,
        answer,
        declared,
        admission: ranker.admit()?,
    })
}

/// The answer to a request refused before its body was read. Over HTTP/1 the connection
/// closes after it (the unread body is not drained), and `Connection: close` says so, so
/// that a client reconnects instead of finding its next request's connection gone.
fn closing(refused: HttpError, version: Version) -> Response {
    let mut response = refused.into_response();
    if version < Version::HTTP_2 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads the whole body, at most `max_body_bytes` of it, before the deadline. A body that
/// stalls for `body_read_timeout_ms` fails sooner (`408`). The frames are copied into one
/// buffer as they arrive, sized by the declared length when there is one, so a body never
/// takes twice its size while it is put together.
async fn read_body(
    ranker: &Ranker,
    body: Body,
    declared: Option<u64>,
    deadline: Deadline,
) -> Result<Bytes, HttpError> {
    let limit = ranker.config.max_body_bytes;
    let mut limited = Limited::new(body, limit);
    let capacity = declared.map_or(0, |n| (n as usize).min(limit));
    let read = async {
        let mut buffer = Vec::with_capacity(capacity);
        while let Some(frame) = limited.frame().await {
            if let Ok(data) = frame?.into_data() {
                buffer.extend_from_slice(&data);
            }
        }
        Ok::<_, axum::BoxError>(Bytes::from(buffer))
    };
    match tokio::time::timeout_at(deadline.at.into(), read).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(too_large(ranker).into()),
        Ok(Err(e)) if caused_by::<TimeoutError>(e.as_ref()) => {
            ranker.count_rejected("body_timeout");
            Err(HttpError::BodyTimeout(format!(
                "body: nothing arrived for {} ms",
                ranker.config.body_read_timeout_ms
            )))
        }
        Ok(Err(e)) => Err(RankError::Invalid(format!("body: {e}")).into()),
        Err(_) => Err(ranker
            .deadline_exceeded(deadline, "while its body was being read")
            .into()),
    }
}

/// Whether `error` or one of its sources is an `E`.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<E>() {
            return true;
        }
        cause = e.source();
    }
    false
}

fn too_large(ranker: &Ranker) -> RankError {
    ranker.reject(
        "body_too_large",
        RankError::TooLarge(format!(
            "body: larger than the limit of {} bytes",
            ranker.config.max_body_bytes
        )),
    )
}

/// The `Content-Length` the client declared, if any.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A body format of `/rank`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Protobuf,
}

impl Format {
    /// The format of a `Content-Type`, if supported (parameters such as charset ignored).
    fn of(media_type: &str) -> Option<Self> {
        let essence = media_type.split(';').next().unwrap_or("").trim();
        if essence.eq_ignore_ascii_case("application/json") {
            Some(Format::Json)
        } else if essence.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Format::Protobuf)
        } else {
            None
        }
    }

    fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Protobuf => "application/x-protobuf",
        }
    }
}

/// Whether an `Accept` header lists `application/x-protobuf`.
fn accepts_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| Format::of(range) == Some(Format::Protobuf))
}

/// Decodes and ranks one request on the version that answers it; returns the response
/// body. `formats` are the request's and the response's. The response's `request_id` is
/// the body's, else the `x-request-id` header's. A request sampled for the shadow version
/// is offered to it afterwards, with its body to decode again.
fn rank(
    ranker: &Ranker,
    routing: &Routing,
    body: Bytes,
    formats: (Format, Format),
    header_id: Option<&str>,
    deadline: Deadline,
) -> Result<Vec<u8>, RankError> {
    let (encoded, ranked, request_id) = {
        let request = decode(&body, formats.0)?;
        let serving = ranker.answerer(routing, request.routing_key());
        let ranked = rank_request(ranker, serving, &request, deadline)?;
        let encoded = if formats.1 == Format::Protobuf {
            convert::response(serving.version, &request, &ranked, header_id).encode_to_vec()
        } else {
            json::response(serving.version, &request, &ranked, header_id)?
        };
        // Only a shadow's log line needs the id after the request is gone.
        let request_id = routing
            .shadow
            .as_ref()
            .and(request.request_id.as_deref().or(header_id))
            .map(str::to_owned);
        (encoded, ranked, request_id)
    };
    ranker.shadow(
        routing,
        || ranked.order(),
        request_id.as_deref(),
        move |shadow| {
            let mut request = decode(&body, formats.0)?;
            request.k = None;
            shadow_rank(shadow, &request)
        },
    );
    Ok(encoded)
}

fn decode(body: &[u8], format: Format) -> Result<RankRequest<'_>, RankError> {
    match format {
        Format::Json => json::decode(body),
        Format::Protobuf => convert::decode(body),
    }
}
