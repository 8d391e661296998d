//! The Huawei APIG conformance server (SPEC §11.3): the dedicated-instance
//! v2 operations keysmith uses, under
//! `/v2/{project_id}/apigw/instances/{instance_id}/...`, with the real API's
//! bodies, error shapes and `SDK-HMAC-SHA256` verification; an in-memory
//! store; faults and latency from `control.rs`. Operation names (for faults
//! and stats) are the SDK's: `CreateAnAppV2`, `ListAppsV2`, ...
//!
//! Which answers are documented by Huawei and which assumed is listed in
//! `docs/cloud-huawei.md`.

mod auth;
mod store;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use percent_encoding::percent_decode_str;

use crate::{FaultKind, Shared};
use store::{Answer, ApiError, Store};

struct Huawei {
    shared: Arc<Shared>,
    store: Mutex<Store>,
}

pub fn router(shared: Arc<Shared>) -> Router {
    let store = Store::new(&shared.project_id, &shared.instance_id);
    let state = Arc::new(Huawei {
        shared,
        store: Mutex::new(store),
    });
    Router::new().fallback(handle).with_state(state)
}

/// An operation and the id in its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    ShowInstance,
    CreateApp,
    ListApps,
    ShowApp(String),
    UpdateApp(String),
    ResetSecret(String),
    DeleteApp(String),
    CreateSign,
    ListSigns,
    UpdateSign(String),
    DeleteSign(String),
}

impl Op {
    /// The SDK's operation name.
    fn name(&self) -> &'static str {
        match self {
            Op::ShowInstance => "ShowDetailsOfInstanceV2",
            Op::CreateApp => "CreateAnAppV2",
            Op::ListApps => "ListAppsV2",
            Op::ShowApp(_) => "ShowDetailsOfAppV2",
            Op::UpdateApp(_) => "UpdateAppV2",
            Op::ResetSecret(_) => "ResettingAppSecretV2",
            Op::DeleteApp(_) => "DeleteAppV2",
            Op::CreateSign => "CreateSignatureKeyV2",
            Op::ListSigns => "ListSignatureKeysV2",
            Op::UpdateSign(_) => "UpdateSignatureKeyV2",
            Op::DeleteSign(_) => "DeleteSignatureKeyV2",
        }
    }

    fn is_write(&self) -> bool {
        !matches!(
            self,
            Op::ShowInstance | Op::ListApps | Op::ShowApp(_) | Op::ListSigns
        )
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Route {
    project: String,
    instance: String,
    op: Op,
}

/// Maps method and path to an operation; `None` for anything else.
fn route(method: &Method, path: &str) -> Option<Route> {
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let [v2, project, apigw, instances, instance, rest @ ..] = segments.as_slice() else {
        return None;
    };
    if v2 != "v2" || apigw != "apigw" || instances != "instances" {
        return None;
    }
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let op = match (method.as_str(), rest.as_slice()) {
        ("GET", []) => Op::ShowInstance,
        ("POST", ["apps"]) => Op::CreateApp,
        ("GET", ["apps"]) => Op::ListApps,
        ("PUT", ["apps", "secret", id]) => Op::ResetSecret(id.to_string()),
        ("GET", ["apps", id]) => Op::ShowApp(id.to_string()),
        ("PUT", ["apps", id]) => Op::UpdateApp(id.to_string()),
        ("DELETE", ["apps", id]) => Op::DeleteApp(id.to_string()),
        ("POST", ["signs"]) => Op::CreateSign,
        ("GET", ["signs"]) => Op::ListSigns,
        ("PUT", ["signs", id]) => Op::UpdateSign(id.to_string()),
        ("DELETE", ["signs", id]) => Op::DeleteSign(id.to_string()),
        _ => return None,
    };
    Some(Route {
        project: project.clone(),
        instance: instance.clone(),
        op,
    })
}

/// Decoded query pairs (`+` stays `+`: the SDK escapes spaces as `%20`).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

async fn handle(State(huawei): State<Arc<Huawei>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return ApiError::bad_parameter("body").into_response();
    };
    let now = SystemTime::now();
    if let Err(denied) = auth::verify(&huawei.shared, &parts, &body, now) {
        return denied.into_response();
    }
    let Some(route) = route(&parts.method, parts.uri.path()) else {
        return ApiError::no_such_api().into_response();
    };
    let fault = huawei
        .shared
        .control
        .call(route.op.name(), route.op.is_write());
    tokio::time::sleep(huawei.shared.control.latency()).await;
    if route.project != huawei.shared.project_id || route.instance != huawei.shared.instance_id {
        return ApiError::no_instance(&route.instance).into_response();
    }
    let query = query_pairs(parts.uri.query());
    let act = || {
        let mut store = huawei.store.lock().unwrap_or_else(|e| e.into_inner());
        store.execute(&route.op, &query, &body, now)
    };
    match fault.as_ref().map(|f| f.kind) {
        None => answer(act()),
        Some(FaultKind::Unavailable) => ApiError::system_error().into_response(),
        Some(FaultKind::Throttled) => ApiError::throttled().into_response(),
        Some(FaultKind::TimeoutAfterActing) => {
            let answered = act();
            let delay = fault.and_then(|f| f.delay_ms).unwrap_or(30_000);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            answer(answered)
        }
        Some(FaultKind::DropAfterActing) => dropped(act()),
    }
}

fn answer(result: Answer) -> Response {
    match result {
        Ok((status, json)) if status == StatusCode::NO_CONTENT => {
            let _ = json;
            StatusCode::NO_CONTENT.into_response()
        }
        Ok((status, json)) => (status, axum::Json(json)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// The answer's head and half its body, then a broken connection: the
/// gateway acted, the caller cannot know.
fn dropped(result: Answer) -> Response {
    let (status, json) = match result {
        Ok(ok) => ok,
        Err(error) => (error.status, error.body()),
    };
    let bytes = serde_json::to_vec(&json).unwrap_or_default();
    let half = Bytes::copy_from_slice(&bytes[..bytes.len() / 2]);
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(half),
        Err(std::io::Error::other("connection dropped after acting")),
    ];
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: Method, path: &str) -> Option<Op> {
        route(&method, path).map(|r| r.op)
    }

    #[test]
    fn paths_map_to_the_sdk_operations() {
        let base = "/v2/p1/apigw/instances/i1";
        assert_eq!(op(Method::GET, base), Some(Op::ShowInstance));
        assert_eq!(
            op(Method::POST, &format!("{base}/apps")),
            Some(Op::CreateApp)
        );
        assert_eq!(
            op(Method::PUT, &format!("{base}/apps/secret/a1")),
            Some(Op::ResetSecret("a1".into()))
        );
        assert_eq!(
            op(Method::PUT, &format!("{base}/apps/a1")),
            Some(Op::UpdateApp("a1".into()))
        );
        assert_eq!(
            op(Method::DELETE, &format!("{base}/signs/s1")),
            Some(Op::DeleteSign("s1".into()))
        );
        assert_eq!(op(Method::PATCH, &format!("{base}/apps")), None);
        assert_eq!(op(Method::GET, "/v1/p1/apigw/instances/i1"), None);
    }

    #[test]
    fn query_pairs_are_decoded() {
        assert_eq!(
            query_pairs(Some("name=a%20b%2Bc&limit=2&flag")),
            vec![
                ("name".into(), "a b+c".into()),
                ("limit".into(), "2".into()),
                ("flag".into(), String::new())
            ]
        );
    }
}
