//! The Alibaba Cloud API Gateway conformance server (SPEC §11.3): CloudAPI
//! 2016-07-14 as the official SDK speaks it — `POST /` (any method is
//! read the same), parameters in the query, `x-acs-action` and
//! `x-acs-version` headers, an `ACS3-HMAC-SHA256` `Authorization` header —
//! answering Alibaba's JSON bodies and error shapes.
//!
//! Authentication is checked first (unknown AccessKeyId, stale
//! `x-acs-date`, wrong body hash or signature, replayed nonce), then the
//! control's fault for the action plays: `unavailable` and `throttled`
//! answer before acting, `timeout_after_acting` and `drop_after_acting`
//! act, then stall or break the answer.

mod store;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use keysmith::providers::alibaba::sign::{self, Signable};
use keysmith::providers::alibaba::wire;
use serde_json::{Value, json};

use crate::{FaultKind, Shared};
use store::{ApiError, Store};

struct Gateway {
    shared: Arc<Shared>,
    store: Mutex<Store>,
}

pub fn router(shared: Arc<Shared>) -> Router {
    let store = Mutex::new(Store::new(&shared.region));
    let gateway = Arc::new(Gateway { shared, store });
    Router::new().route("/", any(handle)).with_state(gateway)
}

async fn handle(
    State(gateway): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = request_id();
    let action = match authenticate(&gateway, &method, &uri, &headers, &body) {
        Ok(action) => action,
        Err(error) => return error_answer(&request_id, error),
    };
    let fault = gateway.shared.control.call(&action, Store::writes(&action));
    tokio::time::sleep(gateway.shared.control.latency()).await;
    match fault.as_ref().map(|f| f.kind) {
        Some(FaultKind::Unavailable) => return error_answer(&request_id, unavailable()),
        Some(FaultKind::Throttled) => return error_answer(&request_id, throttled()),
        _ => {}
    }
    let answer = gateway.store.lock().unwrap().act(&action, &uri);
    let answer = match answer {
        Some(Ok(body)) => success_answer(&request_id, body),
        Some(Err(error)) => error_answer(&request_id, error),
        None => error_answer(&request_id, unknown_action(&action)),
    };
    match fault {
        Some(f) if f.kind == FaultKind::TimeoutAfterActing => {
            tokio::time::sleep(Duration::from_millis(f.delay_ms.unwrap_or(30_000))).await;
            answer
        }
        Some(f) if f.kind == FaultKind::DropAfterActing => broken_answer(),
        _ => answer,
    }
}

/// Checks the V3 signature of a request and returns its action.
fn authenticate(
    gateway: &Gateway,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, ApiError> {
    let shared = &gateway.shared;
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = text("authorization")
        .and_then(sign::parse_authorization)
        .ok_or_else(incomplete_signature)?;
    if authorization.access_key_id != shared.access_key_id {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        ));
    }
    check_date(text("x-acs-date"))?;
    let signed = signed_headers(headers, &authorization.signed_headers)?;
    let payload_hash = text("x-acs-content-sha256").ok_or_else(incomplete_signature)?;
    if payload_hash != sign::hex_sha256(body) {
        return Err(signature_mismatch());
    }
    let query = query_map(uri)?;
    let signable = Signable {
        method: method.as_str(),
        path: uri.path(),
        query: &query,
        headers: &signed,
        payload_hash,
    };
    let expected = signable.signature(&shared.access_key_secret);
    if !sign::same_signature(&expected, &authorization.signature) {
        return Err(signature_mismatch());
    }
    let nonce = text("x-acs-signature-nonce").ok_or_else(incomplete_signature)?;
    if !gateway.store.lock().unwrap().take_nonce(nonce) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }
    check_version(text("x-acs-version"))?;
    text("x-acs-action").map(str::to_string).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "MissingAction",
            "Action is mandatory.",
        )
    })
}

/// The headers named in `SignedHeaders`, which must include the ones V3
/// requires.
fn signed_headers(
    headers: &HeaderMap,
    names: &[String],
) -> Result<Vec<(String, String)>, ApiError> {
    const REQUIRED: [&str; 5] = [
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
    ];
    if REQUIRED.iter().any(|r| !names.iter().any(|n| n == r)) {
        return Err(incomplete_signature());
    }
    let mut signed = Vec::new();
    for name in names {
        let values = headers.get_all(name.as_str());
        let mut any = false;
        for value in values {
            let value = value.to_str().map_err(|_| signature_mismatch())?;
            signed.push((name.clone(), value.to_string()));
            any = true;
        }
        if !any {
            return Err(incomplete_signature());
        }
    }
    Ok(signed)
}

fn query_map(uri: &Uri) -> Result<std::collections::BTreeMap<String, String>, ApiError> {
    axum::extract::Query::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|_| signature_mismatch())
}

fn check_date(date: Option<&str>) -> Result<(), ApiError> {
    let stamp = date.and_then(sign::parse_timestamp).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        )
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    if (now - stamp).abs() > sign::VALIDITY_SECONDS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    Ok(())
}

fn check_version(version: Option<&str>) -> Result<(), ApiError> {
    if version == Some(wire::VERSION) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "InvalidVersion",
        "Specified parameter Version is not valid.",
    ))
}

fn incomplete_signature() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "IncompleteSignature",
        "The request signature does not conform to Aliyun standards.",
    )
}

fn signature_mismatch() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "SignatureDoesNotMatch",
        "Specified signature does not match our calculation.",
    )
}

fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        "The request has failed due to a temporary failure of the server.",
    )
}

fn throttled() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "Throttling.User",
        "Request was denied due to user flow control.",
    )
}

fn unknown_action(action: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "InvalidAction.NotFound",
        &format!("Specified api {action} is not found, please check your url and method."),
    )
}

/// A RequestId in Alibaba's shape (uppercase UUID).
fn request_id() -> String {
    let hex = sign::nonce().to_uppercase();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn json_answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn success_answer(request_id: &str, mut body: Value) -> Response {
    if let Value::Object(fields) = &mut body {
        fields.insert("RequestId".into(), Value::String(request_id.to_string()));
    }
    json_answer(StatusCode::OK, body)
}

fn error_answer(request_id: &str, error: ApiError) -> Response {
    let body = json!({
        "RequestId": request_id,
        "HostId": "apigateway.aliyuncs.com",
        "Code": error.code,
        "Message": error.message,
        "Recommend": format!(
            "https://api.aliyun.com/troubleshoot?q={}&product=CloudAPI&requestId={request_id}",
            error.code
        ),
    });
    json_answer(error.status, body)
}

/// An answer that starts, then breaks: the client sees the connection die
/// after the gateway acted.
fn broken_answer() -> Response {
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"{\"RequestId\":")),
        Err(std::io::Error::other("connection dropped after acting")),
    ];
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json;charset=utf-8")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
