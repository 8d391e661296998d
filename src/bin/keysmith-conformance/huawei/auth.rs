//! Verifies `SDK-HMAC-SHA256` as Huawei Cloud's API gateway does: the one
//! known access key, a signature over the headers the caller signed, and an
//! `X-Sdk-Date` within 15 minutes of the server's clock (Huawei's signing
//! FAQ). Failures answer 401 `APIGW.0301` with the messages of Huawei's
//! "Common Errors Related to IAM Authentication Information" page.

use std::time::{Duration, SystemTime};

use axum::http::request::Parts;
use keysmith::providers::huawei::sign::{self, SignInput};
use keysmith::providers::huawei::time::parse_sdk_date;

use super::query_pairs;
use super::store::ApiError;
use crate::Shared;

const SKEW: Duration = Duration::from_secs(15 * 60);

pub fn verify(
    shared: &Shared,
    parts: &Parts,
    body: &[u8],
    now: SystemTime,
) -> Result<(), ApiError> {
    let authorization = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(sign::parse_authorization)
        .ok_or_else(|| ApiError::unauthorized("Incorrect IAM authentication information: Authorization header is missing or malformed"))?;
    if authorization.access != shared.access_key_id {
        return Err(ApiError::unauthorized(
            "Incorrect IAM authentication information: Get secretKey failed,ak:******,err:ak not exist",
        ));
    }
    let date = header(parts, sign::DATE_HEADER).and_then(parse_sdk_date);
    let fresh = date.is_some_and(|d| match now.duration_since(d) {
        Ok(behind) => behind <= SKEW,
        Err(ahead) => ahead.duration() <= SKEW,
    });
    let signed_date = authorization
        .signed_headers
        .iter()
        .any(|h| h == "x-sdk-date");
    if !fresh || !signed_date {
        return Err(verify_failed());
    }
    let expected = expected_signature(shared, parts, body, &authorization.signed_headers);
    if sign::signatures_match(&expected, &authorization.signature) {
        Ok(())
    } else {
        Err(verify_failed())
    }
}

/// The signature the request should carry, over the headers it says it signed.
fn expected_signature(shared: &Shared, parts: &Parts, body: &[u8], signed: &[String]) -> String {
    let headers: Vec<(String, String)> = signed
        .iter()
        .map(|name| (name.clone(), header(parts, name).unwrap_or("").to_string()))
        .collect();
    let query = query_pairs(parts.uri.query());
    let input = SignInput {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: &query,
        headers: &headers,
        body,
    };
    sign::signature(&shared.access_key_secret, &input, signed)
}

fn verify_failed() -> ApiError {
    ApiError::unauthorized("Incorrect IAM authentication information: verify aksk signature fail")
}

fn header<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts.headers.get(name).and_then(|v| v.to_str().ok())
}
