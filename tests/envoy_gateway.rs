//! End to end through a second real gateway: Envoy Gateway (tests/support/
//! envoy.rs) reads keysmith's gateway Secrets through `SecurityPolicy`
//! objects on the test control plane, and HTTP requests through the
//! protected routes are let in (to a loopback backend that echoes what it
//! was sent) or refused. Both Envoy Gateway layouts: API keys
//! (`EnvoyGatewayApiKey`) and basic auth (`EnvoyGatewayBasicAuth`), through a
//! reset with an overlap; a deleted Secret; and the duplicate check (two
//! resources with the same custom secret never both reach the gateway).
//!
//! One Envoy Gateway serves every test of this binary; each test has its own
//! namespace and path prefix.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use keysmith::api::GatewayApp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use support::conditions::{is_ready, ready, reason_is};
use support::env::{Env, SETTLE};
use support::envoy::{self, API_KEY_HEADER, Backend, CLIENT_ID_HEADER, USERNAME_HEADER};
use support::needs_control_plane;

/// Envoy Gateway applies a Secret change in well under a second; this is
/// the bound a test accepts.
const RELOAD: Duration = Duration::from_secs(20);
const OK: u16 = 200;
const UNAUTHORIZED: u16 = 401;
/// What Envoy Gateway answers on a route whose policy it cannot build (a
/// missing Secret, a duplicated API key).
const BROKEN: u16 = 500;

/// How a client presents a credential `(AppKey, AppSecret)` to a route.
#[derive(Clone, Copy)]
enum Scheme {
    /// The AppSecret as the API key.
    ApiKey,
    /// HTTP basic auth, AppKey and AppSecret.
    Basic,
}

impl Scheme {
    fn headers(self, (key, secret): &(String, String)) -> Vec<(&'static str, String)> {
        match self {
            Scheme::ApiKey => vec![(API_KEY_HEADER, secret.clone())],
            Scheme::Basic => vec![(
                "Authorization",
                format!(
                    "Basic {}",
                    support::traefik::base64(format!("{key}:{secret}").as_bytes())
                ),
            )],
        }
    }

    /// The header in which the backend learns who called.
    fn identity_header(self) -> &'static str {
        match self {
            Scheme::ApiKey => CLIENT_ID_HEADER,
            Scheme::Basic => USERNAME_HEADER,
        }
    }
}

/// One protected route in a test's namespace.
struct Route<'a> {
    eg: &'a envoy::EnvoyGateway,
    path: String,
    scheme: Scheme,
}

impl Route<'_> {
    /// Status, and the identity the backend was told (if it was reached).
    fn call(&self, credential: &(String, String)) -> (Option<u16>, Option<String>) {
        let headers = self.scheme.headers(credential);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        match self.eg.request(&self.path, &headers) {
            Some((status, body)) => (
                Some(status),
                envoy::echoed_header(&body, self.scheme.identity_header()),
            ),
            None => (None, None),
        }
    }

    fn status(&self, credential: &(String, String)) -> Option<u16> {
        self.call(credential).0
    }

    /// [`Route::call`] as a client with one transport retry sees it: a
    /// request that got no HTTP answer, or an upstream error (502, 503, 504:
    /// the proxy could not reach the local backend), is sent once more at
    /// once, as HTTP clients do for an idempotent GET. A credential refusal
    /// (401, 403) or a broken policy (500) is never retried.
    fn call_past_transport(&self, credential: &(String, String)) -> (Option<u16>, Option<String>) {
        let first = self.call(credential);
        match first.0 {
            None | Some(502..=504) => {
                eprintln!("transport failure {:?}; one retry", first.0);
                self.call(credential)
            }
            _ => first,
        }
    }

    async fn wait_until(&self, credential: &(String, String), expected: u16) -> Duration {
        let headers = self.scheme.headers(credential);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.eg
            .wait_until_status(&self.path, &headers, expected, RELOAD)
            .await
    }
}

/// A GatewayApp `name` with `spec`, its route and policy (`scheme`) on the
/// one Gateway, issued and accepted.
async fn protected_app<'a>(
    env: &Env,
    eg: &'a envoy::EnvoyGateway,
    backend: &Backend,
    name: &str,
    scheme: Scheme,
    spec: serde_json::Value,
) -> (Route<'a>, (String, String)) {
    env.apply_app(name, spec).await;
    let path = format!("/{}/{name}", env.ns);
    envoy::apply_route(&env.client, &env.ns, name, &path, backend.port).await;
    let secret = format!("{name}-gateway");
    match scheme {
        Scheme::ApiKey => {
            envoy::apply_api_key_policy(&env.client, &env.ns, name, name, &[&secret]).await
        }
        Scheme::Basic => {
            envoy::apply_basic_auth_policy(&env.client, &env.ns, name, name, &secret).await
        }
    }
    env.wait_ready(name).await;
    let first = env.credential(name, "app_key", "app_secret").await;
    let route = Route { eg, path, scheme };
    let took = route.wait_until(&first, OK).await;
    eprintln!("{name}: Envoy Gateway accepted the first credential after {took:?}");
    (route, first)
}

/// What a reset with an overlap looked like at the gateway.
#[derive(Debug, Default)]
struct Overlap {
    old_accepted: u32,
    old_refused_early: u32,
    switching_failures: u32,
    /// Each failure the switching client met: when (since the reset),
    /// whether it had switched, and the answer (None: no HTTP answer).
    failures: Vec<(Duration, bool, Option<u16>)>,
    new_accepted_after: Option<Duration>,
    old_refused_after: Option<Duration>,
    /// Identities the backend was told for the previous credential.
    old_identities: std::collections::BTreeSet<String>,
}

/// Resets `name` and drives two clients through the overlap: one keeps the
/// first credential, the other switches to the new one 2 s after it appears
/// (a pod restart takes longer). Ends when the first is refused after expiry.
async fn through_the_overlap(
    env: &Env,
    route: &Route<'_>,
    name: &str,
    first: &(String, String),
    overlap: u64,
) -> (Overlap, (String, String), Timestamp) {
    let reset_at = Instant::now();
    env.request_reset(name, "r1").await;
    let mut seen = Overlap::default();
    let (mut second, mut switching) = (first.clone(), first.clone());
    let (mut expiry, mut switch_at) = (None::<Timestamp>, None::<Instant>);
    let deadline = reset_at + Duration::from_secs(overlap + 30);
    loop {
        let now = Instant::now();
        assert!(now < deadline, "the overlap never ended at the gateway");
        if expiry.is_none() {
            let app = env.app(name).await;
            let status = app.status.as_ref().unwrap();
            if status.rotation.observed_reset_request.as_deref() == Some("r1") {
                expiry = status
                    .rotation
                    .previous_secret_expiry_time
                    .as_ref()
                    .map(|t| t.0);
                assert!(expiry.is_some(), "an overlap is reported");
                second = env.credential(name, "app_key", "app_secret").await;
                switch_at = Some(Instant::now() + Duration::from_secs(2));
            }
        }
        if switch_at.is_some_and(|at| now >= at) {
            switching = second.clone();
        }
        if switch_at.is_some()
            && seen.new_accepted_after.is_none()
            && route.status(&second) == Some(OK)
        {
            seen.new_accepted_after = Some(reset_at.elapsed());
        }
        let answer = route.call_past_transport(&switching).0;
        if answer != Some(OK) {
            seen.switching_failures += 1;
            let switched = switching != *first;
            seen.failures.push((reset_at.elapsed(), switched, answer));
        }
        let (old, identity) = route.call_past_transport(first);
        let inside = match expiry {
            None => true,
            // A second's margin for the clock's granularity.
            Some(end) => Timestamp::now() < end - SignedDuration::from_secs(1),
        };
        if inside {
            match old {
                Some(OK) => seen.old_accepted += 1,
                _ => seen.old_refused_early += 1,
            }
            seen.old_identities.extend(identity);
        } else if old == Some(UNAUTHORIZED) {
            seen.old_refused_after = Some(reset_at.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (seen, second, expiry.unwrap())
}

fn assert_overlap_held(seen: &Overlap, expiry: Timestamp) {
    eprintln!("overlap at Envoy Gateway: {seen:?}, expiry {expiry}");
    let new_after = seen
        .new_accepted_after
        .expect("the new credential was accepted");
    assert!(
        new_after < Duration::from_secs(5),
        "the reset reached the gateway only after {new_after:?}"
    );
    assert_eq!(
        seen.old_refused_early, 0,
        "the previous credential failed inside the overlap"
    );
    assert!(
        seen.old_accepted > 20,
        "the previous credential was tried through the overlap"
    );
    assert_eq!(
        seen.switching_failures, 0,
        "a client that switched over met a failure: {:?} (since the reset, switched, answer)",
        seen.failures
    );
    let refused_at = Timestamp::now();
    // The pass at the expiry, its two writes and Envoy's reload: seconds on
    // an idle machine, 7 s once on a loaded one.
    assert!(
        refused_at >= expiry && refused_at < expiry + SignedDuration::from_secs(12),
        "the previous credential was refused at {refused_at}, expiry {expiry}"
    );
}

/// An idle operator restart writes none of `names`.
async fn idle_restart_writes_nothing(env: &mut Env, names: &[&str]) {
    let before = env.secret_versions(names).await;
    let reconciles = |logs: String| logs.matches("reconciling object").count();
    let seen = reconciles(env.operator.logs());
    env.operator.restart();
    let deadline = tokio::time::Instant::now() + SETTLE;
    while reconciles(env.operator.logs()) <= seen {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the restarted operator never reconciled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        before,
        env.secret_versions(names).await,
        "an idle restart writes nothing"
    );
}

#[tokio::test]
async fn api_keys_from_keysmith_pass_envoy_gateway_and_the_previous_stays_valid_through_the_overlap()
 {
    needs_control_plane!();
    let mut env = Env::new("envoy-api-key").await;
    let eg = envoy::envoy_gateway();
    let backend = Backend::start();
    let overlap = 12;
    let spec = json!({
        "gateway": {"layout": "EnvoyGatewayApiKey"},
        "rotation": {"keepPrevious": format!("{overlap}s")}
    });
    let (route, first) = protected_app(&env, eg, &backend, "shop", Scheme::ApiKey, spec).await;

    // Accepted, and the backend learns the AppKey as the client ID.
    assert_eq!(route.call(&first), (Some(OK), Some(first.0.clone())));
    let wrong = (first.0.clone(), format!("{}x", first.1));
    assert_eq!(route.status(&wrong), Some(UNAUTHORIZED), "a wrong key");
    assert_eq!(eg.get(&route.path, &[]), Some(UNAUTHORIZED), "no key");

    let (seen, second, expiry) = through_the_overlap(&env, &route, "shop", &first, overlap).await;
    assert_overlap_held(&seen, expiry);
    assert_eq!(second.0, first.0, "the AppKey stays; the key is new");
    // Before the reset lands the first key is the current one; after, the
    // client <AppKey>.previous.
    assert_eq!(
        seen.old_identities,
        [first.0.clone(), format!("{}.previous", first.0)].into(),
        "during the overlap the previous key is the client <AppKey>.previous"
    );
    assert_eq!(route.call(&second), (Some(OK), Some(first.0.clone())));
    assert_eq!(route.status(&first), Some(UNAUTHORIZED));
    let entries = env.secret_data_opt("shop-gateway").await.unwrap();
    assert_eq!(entries.len(), 1, "only the current key after expiry");

    idle_restart_writes_nothing(&mut env, &["shop", "shop-gateway"]).await;
    assert_eq!(
        route.status(&second),
        Some(OK),
        "still accepted after the restart"
    );
}

#[tokio::test]
async fn basic_auth_from_keysmith_passes_envoy_gateway_and_the_previous_user_stays_valid_through_the_overlap()
 {
    needs_control_plane!();
    let mut env = Env::new("envoy-basic-auth").await;
    let eg = envoy::envoy_gateway();
    let backend = Backend::start();
    let overlap = 12;
    let spec = json!({
        "gateway": {"layout": "EnvoyGatewayBasicAuth"},
        "rotation": {"rotateAppKey": true, "keepPrevious": format!("{overlap}s")}
    });
    let (route, first) = protected_app(&env, eg, &backend, "billing", Scheme::Basic, spec).await;

    assert_eq!(route.call(&first), (Some(OK), Some(first.0.clone())));
    let wrong_secret = (first.0.clone(), format!("{}x", first.1));
    let wrong_user = ("someone-else".to_string(), first.1.clone());
    assert_eq!(
        route.status(&wrong_secret),
        Some(UNAUTHORIZED),
        "a wrong AppSecret"
    );
    assert_eq!(
        route.status(&wrong_user),
        Some(UNAUTHORIZED),
        "a wrong AppKey"
    );
    assert_eq!(
        eg.get(&route.path, &[]),
        Some(UNAUTHORIZED),
        "no credentials"
    );

    let (seen, second, expiry) =
        through_the_overlap(&env, &route, "billing", &first, overlap).await;
    assert_overlap_held(&seen, expiry);
    assert_ne!(
        second.0, first.0,
        "rotateAppKey: the new secret has its own user"
    );
    assert_eq!(seen.old_identities, [first.0.clone()].into());
    assert_eq!(route.call(&second), (Some(OK), Some(second.0.clone())));
    let users = env.secret_data_opt("billing-gateway").await.unwrap();
    assert_eq!(
        users.keys().collect::<Vec<_>>(),
        [".htpasswd"],
        "Envoy Gateway reads one entry"
    );
    assert_eq!(
        users[".htpasswd"].lines().count(),
        1,
        "only the current user after expiry"
    );

    idle_restart_writes_nothing(&mut env, &["billing", "billing-gateway"]).await;
    assert_eq!(
        route.status(&second),
        Some(OK),
        "still accepted after the restart"
    );
}

/// Calls the route every 50 ms for `window` with the credential the output
/// Secret `name` holds (`credential` while there is none); returns the
/// longest run of 500 answers (first to last) and how many there were.
async fn longest_broken_run(
    route: &Route<'_>,
    env: &Env,
    name: &str,
    mut credential: (String, String),
    window: Duration,
) -> (Duration, u32) {
    let end = Instant::now() + window;
    let (mut longest, mut broken_since, mut count) = (Duration::ZERO, None::<Instant>, 0);
    while Instant::now() < end {
        if let Some(data) = env.secret_data_opt(name).await {
            credential = (data["app_key"].clone(), data["app_secret"].clone());
        }
        match route.status(&credential) {
            Some(BROKEN) => {
                count += 1;
                let since = *broken_since.get_or_insert_with(Instant::now);
                longest = longest.max(since.elapsed());
            }
            _ => broken_since = None,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (longest, count)
}

#[tokio::test]
async fn a_deleted_output_or_gateway_secret_never_leaves_the_route_broken_for_longer_than_a_reconcile()
 {
    needs_control_plane!();
    let env = Env::new("envoy-deleted").await;
    let eg = envoy::envoy_gateway();
    let backend = Backend::start();
    let spec = json!({"gateway": {"layout": "EnvoyGatewayApiKey"}});
    let (route, first) = protected_app(&env, eg, &backend, "orders", Scheme::ApiKey, spec).await;

    let delete = |name: &'static str| {
        let secrets = env.secrets();
        async move {
            secrets
                .delete(name, &DeleteParams::default())
                .await
                .unwrap_or_else(|e| panic!("deleting {name}: {e}"));
        }
    };
    // The output Secret: keysmith issues anew, the gateway Secret first.
    delete("orders").await;
    let (_, broken) = longest_broken_run(
        &route,
        &env,
        "orders",
        first.clone(),
        Duration::from_secs(6),
    )
    .await;
    let second = env.credential("orders", "app_key", "app_secret").await;
    eprintln!("output Secret deleted: {broken} answers 500");
    assert_eq!(broken, 0, "the gateway Secret stayed in place");
    assert_ne!(second.1, first.1, "new credentials were issued");
    route.wait_until(&second, OK).await;

    // The gateway Secret: Envoy Gateway answers 500 until keysmith puts it back.
    let uid = |secret: k8s_openapi::api::core::v1::Secret| secret.uid();
    let before = uid(env.secrets().get("orders-gateway").await.unwrap());
    delete("orders-gateway").await;
    let (broken, count) = longest_broken_run(
        &route,
        &env,
        "orders",
        second.clone(),
        Duration::from_secs(8),
    )
    .await;
    eprintln!("gateway Secret deleted: {count} answers 500, the longest run {broken:?}");
    assert!(
        broken < Duration::from_secs(3),
        "the route answered 500 for {broken:?} after the gateway Secret was deleted"
    );
    let after = uid(env.secrets().get("orders-gateway").await.unwrap());
    assert_ne!(before, after, "recreated by keysmith");
    route.wait_until(&second, OK).await;
}

#[tokio::test]
async fn a_duplicate_custom_secret_is_refused_and_the_gateway_keeps_serving_the_first() {
    needs_control_plane!();
    let env = Env::new("envoy-duplicate").await;
    let eg = envoy::envoy_gateway();
    let backend = Backend::start();
    let shared = "Shared-custom-secret-0001";
    let source = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "byo", "annotations": {"keysmith.dev/allow-source": "true"}},
        "stringData": {"secret": shared},
    });
    env.secrets()
        .patch(
            "byo",
            &PatchParams::apply("keysmith-tests"),
            &Patch::Apply(&source),
        )
        .await
        .unwrap();
    let spec = json!({
        "gateway": {"layout": "EnvoyGatewayApiKey"},
        "appSecretFrom": {"secretKeyRef": {"name": "byo", "key": "secret"}},
    });
    let (route, first) =
        protected_app(&env, eg, &backend, "first", Scheme::ApiKey, spec.clone()).await;
    assert_eq!(first.1, shared);

    // The second resource would put the same API key beside the first.
    env.apply_app("second", spec).await;
    let app = env
        .wait_app("second", "GatewayConflict", reason_is("GatewayConflict"))
        .await;
    let (_, _, message) = ready(&app).unwrap();
    assert!(
        message.contains("GatewayApp first"),
        "names the other: {message}"
    );
    assert!(!message.contains(shared), "never the value: {message}");
    // Its gateway Secret exists, without the entry, so a policy that lists
    // it stays valid for everyone else.
    let second_gateway = env
        .secret_data_opt("second-gateway")
        .await
        .expect("an empty gateway Secret");
    assert!(
        second_gateway.is_empty(),
        "no entry written: {:?}",
        second_gateway.keys()
    );

    envoy::apply_api_key_policy(
        &env.client,
        &env.ns,
        "first",
        "first",
        &["first-gateway", "second-gateway"],
    )
    .await;
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        assert_eq!(
            route.call(&first),
            (Some(OK), Some(first.0.clone())),
            "the route keeps serving the first resource"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        env.secret_data_opt("second").await.is_none(),
        "nothing issued to the second resource"
    );
    let apps: Api<GatewayApp> = env.apps();
    assert!(is_ready(&apps.get("first").await.unwrap()));
}
