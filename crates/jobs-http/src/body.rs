//! [`JsonBody`]: a request body read within the configured limit and parsed as one JSON
//! object.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::{AppState, DEFAULT_MAX_BODY_BYTES};

/// A JSON object body: 413 past `JOBS_MAX_BODY_BYTES`, 415 when it is not JSON, 422 when it
/// does not parse, names unknown fields or is not an object. An empty body is `{}`
/// (`T::default()`).
///
/// As an extractor it runs after the extractors listed before it, so a handler that takes
/// [`crate::Caller`] first answers 401 and 403 before the body is read.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(DEFAULT_MAX_BODY_BYTES, |state| state.max_body_bytes);
        Box::pin(async move { read_json(&req, payload, limit).await.map(JsonBody) })
    }
}

async fn read_json<T: DeserializeOwned + Default>(
    req: &HttpRequest,
    payload: Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let body = read_limited(req, payload, limit).await?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if !is_json(req) {
        return Err(ApiError::unsupported_media_type());
    }
    // serde would also read a struct from a JSON array of its fields in order.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::validation("invalid JSON body: expected a JSON object"));
    }
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::validation(format!("invalid JSON body: {e}")))
}

/// The whole body, refused as soon as it (or its declared length) passes `limit`.
async fn read_limited(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::validation(format!("could not read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// `application/json`, or any `application/*+json`, parameters ignored.
fn is_json(req: &HttpRequest) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}
