//! Waiting for the cluster to reach a state, the same way in every test:
//! poll, and on a timeout fail saying what was awaited, what was seen and
//! (from the caller) the operator's log tail. `Env` wraps these for one
//! test's namespace and operator.

use std::future::Future;
use std::time::Duration;

use kube::api::Api;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(100);

/// Waits until object `name` of `api` satisfies `check`, for up to
/// `within`. On a timeout it fails with `what`, the object's status (never
/// a Secret's data) and `context()` (the operator's log tail, say).
pub async fn until<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    within: Duration,
    check: impl Fn(&K) -> bool,
    context: impl Fn() -> String,
) -> K
where
    K: Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Ok(object) = api.get(name).await
            && check(&object)
        {
            return object;
        }
        if tokio::time::Instant::now() > deadline {
            let status = api
                .get_opt(name)
                .await
                .ok()
                .flatten()
                .and_then(|o| serde_json::to_value(o).ok())
                .and_then(|v| v.get("status").cloned());
            panic!(
                "{} {name}: {what}: not within {within:?}\nstatus now: {status:#?}\n{}",
                kind_name::<K>(),
                context()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `check` until it holds, for up to `within`; then fails with
/// `what` and `context()`.
pub async fn eventually<F, Fut>(
    what: &str,
    within: Duration,
    context: impl Fn() -> String,
    check: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}\n{}",
            context()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until object `name` of `api` is gone (its finalizers released).
pub async fn gone<K>(api: &Api<K>, name: &str, within: Duration, context: impl Fn() -> String)
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
{
    let what = format!("{name} deleted");
    eventually(&what, within, context, || async {
        api.get_opt(name).await.unwrap().is_none()
    })
    .await;
}

/// The last 15 lines of a log.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// `GatewayApp` for `keysmith::api::GatewayApp`.
fn kind_name<K>() -> &'static str {
    std::any::type_name::<K>()
        .rsplit("::")
        .next()
        .unwrap_or_default()
}
