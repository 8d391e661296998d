//! End to end through a real gateway: Traefik's `basicAuth` middleware reads
//! its users from a Kubernetes Secret on the test control plane, and HTTP
//! requests through the protected route are let in or answered 401. The
//! first tests prove the harness (tests/support/traefik.rs) with Secrets made
//! by hand; the rest put keysmith in front (SPEC §9.2): its credentials pass,
//! wrong ones do not, a reset reaches the gateway within seconds, and the
//! previous credential stays valid exactly through the overlap.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use keysmith::api::names::gateway::KONG_CREDENTIAL;
use kube::Client;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use support::conditions::{ready, reason_is};
use support::control_plane;
use support::env::{Env, SETTLE};
use support::needs_control_plane;
use support::traefik::{self, NOOP_STATUS, Traefik, htpasswd_sha};

/// Traefik applies a Secret change in about 0.2 s; this is the bound a test accepts.
const RELOAD: Duration = Duration::from_secs(10);
const UNAUTHORIZED: u16 = 401;

async fn apply_secret(
    client: &Client,
    namespace: &str,
    name: &str,
    type_: &str,
    data: &[(&str, &str)],
) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        type_: Some(type_.into()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        ),
        ..Default::default()
    };
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    secrets
        .patch(
            name,
            &PatchParams::apply("keysmith-tests").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap_or_else(|e| panic!("applying Secret {namespace}/{name}: {e}"));
}

#[test]
fn htpasswd_sha_lines_match_openssl() {
    // printf %s pw1 | openssl sha1 -binary | base64
    assert_eq!(
        htpasswd_sha("user1", "pw1"),
        "user1:{SHA}AsWT/Zr4JUuFnUJqdrbNQoR/vsE="
    );
    assert_eq!(
        htpasswd_sha("user2", "pw2"),
        "user2:{SHA}8Wyi36Noi/CMek4hVErxW9WYy3A="
    );
    // printf x%.0s $(seq 60) | openssl sha1 -binary | base64: 60 bytes,
    // so the length goes into a second block.
    let long = "x".repeat(60);
    assert_eq!(
        traefik::base64(&traefik::sha1(long.as_bytes())),
        "Bs7S4HDljCxO2fK4y4kPDFEs5g0="
    );
    assert_eq!(traefik::base64(b"user1:pw1"), "dXNlcjE6cHcx");
    assert_eq!(traefik::base64(b"ab"), "YWI=");
}

#[tokio::test]
async fn basic_auth_secret_admits_its_user_and_rejects_wrong_or_missing_credentials() {
    needs_control_plane!();
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "gateway-basic-auth").await;
    let gateway = Traefik::start(&client, &ns).await;

    apply_secret(
        &client,
        &ns,
        "shop-credentials",
        "kubernetes.io/basic-auth",
        &[("username", "alice"), ("password", "correct horse")],
    )
    .await;
    traefik::apply_basic_auth_route(&client, &ns, "shop", "/shop", "shop-credentials").await;

    let alice = Some(("alice", "correct horse"));
    gateway
        .wait_until_status("/shop", alice, NOOP_STATUS, RELOAD)
        .await;
    assert_eq!(gateway.get("/shop/cart?id=1", alice), Some(NOOP_STATUS));
    assert_eq!(
        gateway.get("/shop", Some(("alice", "battery staple"))),
        Some(UNAUTHORIZED)
    );
    assert_eq!(
        gateway.get("/shop", Some(("bob", "correct horse"))),
        Some(UNAUTHORIZED)
    );
    assert_eq!(gateway.get("/shop", None), Some(UNAUTHORIZED));
    // Outside the route's prefix there is no route at all.
    assert_eq!(gateway.get("/elsewhere", alice), Some(404));
}

#[tokio::test]
async fn htpasswd_secret_admits_each_user_until_a_secret_update_drops_one() {
    needs_control_plane!();
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "gateway-htpasswd").await;
    let gateway = Traefik::start(&client, &ns).await;

    let user1 = htpasswd_sha("user1", "pw1");
    let user2 = htpasswd_sha("user2", "pw2");
    let both = format!("{user1}\n{user2}\n");
    apply_secret(&client, &ns, "api-users", "Opaque", &[("users", &both)]).await;
    traefik::apply_basic_auth_route(&client, &ns, "api", "/api", "api-users").await;

    gateway
        .wait_until_status("/api", Some(("user1", "pw1")), NOOP_STATUS, RELOAD)
        .await;
    assert_eq!(
        gateway.get("/api", Some(("user2", "pw2"))),
        Some(NOOP_STATUS)
    );
    assert_eq!(
        gateway.get("/api", Some(("user2", "pw1"))),
        Some(UNAUTHORIZED)
    );

    apply_secret(
        &client,
        &ns,
        "api-users",
        "Opaque",
        &[("users", &format!("{user1}\n"))],
    )
    .await;
    let took = gateway
        .wait_until_status("/api", Some(("user2", "pw2")), UNAUTHORIZED, RELOAD)
        .await;
    eprintln!("Traefik dropped user2 {took:?} after the Secret update");
    assert_eq!(
        gateway.get("/api", Some(("user1", "pw1"))),
        Some(NOOP_STATUS)
    );
}

// ---- keysmith in front of the gateway ----

fn as_pair(credential: &(String, String)) -> Option<(&str, &str)> {
    Some((credential.0.as_str(), credential.1.as_str()))
}

/// A client that switches to the new credential does so when its pod
/// restarts (spec.rollout), which takes longer than this; Traefik applies a
/// Secret change in 0.1–0.3 s (measured on an idle machine), so a client
/// switching the very instant the Secret changes could meet a 401 before
/// the reload.
const SWITCH_AFTER: Duration = Duration::from_secs(2);

#[tokio::test]
async fn keysmith_credentials_pass_traefik_and_the_previous_stays_valid_through_the_overlap() {
    needs_control_plane!();
    let env = Env::new("gateway-traefik").await;
    let gateway = Traefik::start(&env.client, &env.ns).await;
    let overlap = 12;
    env.apply_app(
        "shop",
        json!({
            "gateway": {"layout": "TraefikBasicAuth"},
            "rotation": {"rotateAppKey": true, "keepPrevious": format!("{overlap}s")}
        }),
    )
    .await;
    traefik::apply_basic_auth_route(&env.client, &env.ns, "shop", "/shop", "shop-gateway").await;
    env.wait_ready("shop").await;
    let first = env.credential("shop", "app_key", "app_secret").await;

    // keysmith's credentials are accepted; anything else is not.
    gateway
        .wait_until_status("/shop", as_pair(&first), NOOP_STATUS, RELOAD)
        .await;
    let wrong_secret = (first.0.clone(), format!("{}x", first.1));
    let wrong_key = ("someone-else".to_string(), first.1.clone());
    for (what, credential) in [
        ("a wrong AppSecret", as_pair(&wrong_secret)),
        ("a wrong AppKey", as_pair(&wrong_key)),
        ("no credentials", None),
    ] {
        assert_eq!(
            gateway.get("/shop", credential),
            Some(UNAUTHORIZED),
            "{what}"
        );
    }

    // Reset. One client keeps the first credential; another switches over.
    let reset_at = std::time::Instant::now();
    env.request_reset("shop", "r1").await;
    let mut switching = first.clone();
    let mut switch_at: Option<std::time::Instant> = None;
    let mut switched = false;
    let (mut old_accepted, mut old_refused_early, mut switching_failures) = (0, 0, 0);
    let mut new_accepted_after: Option<Duration> = None;
    let old_refused_after_expiry: Duration;
    let mut expiry: Option<Timestamp> = None;
    let mut second = first.clone();
    let deadline = reset_at + Duration::from_secs(overlap + 30);
    loop {
        let now = std::time::Instant::now();
        assert!(now < deadline, "the overlap never ended at the gateway");
        if expiry.is_none() {
            let app = env.apps().get("shop").await.unwrap();
            let status = app.status.as_ref().unwrap();
            if status.rotation.observed_reset_request.as_deref() == Some("r1") {
                expiry = status
                    .rotation
                    .previous_secret_expiry_time
                    .as_ref()
                    .map(|t| t.0);
                assert!(expiry.is_some(), "an overlap is reported");
                second = env.credential("shop", "app_key", "app_secret").await;
                assert_ne!(
                    second.0, first.0,
                    "rotateAppKey gives the new secret its own AppKey"
                );
                switch_at = Some(std::time::Instant::now() + SWITCH_AFTER);
            }
        }
        if !switched && switch_at.is_some_and(|at| now >= at) {
            switching = second.clone();
            switched = true;
        }
        if switch_at.is_some()
            && new_accepted_after.is_none()
            && gateway.get("/shop", as_pair(&second)) == Some(NOOP_STATUS)
        {
            new_accepted_after = Some(reset_at.elapsed());
        }
        if gateway.get("/shop", as_pair(&switching)) != Some(NOOP_STATUS) {
            switching_failures += 1;
        }
        let wall = Timestamp::now();
        let old = gateway.get("/shop", as_pair(&first));
        match expiry {
            // Inside the overlap (a second's margin for the clock's granularity).
            Some(end) if wall < end - k8s_openapi::jiff::SignedDuration::from_secs(1) => {
                if old == Some(NOOP_STATUS) {
                    old_accepted += 1;
                } else {
                    old_refused_early += 1;
                }
            }
            None => {
                if old == Some(NOOP_STATUS) {
                    old_accepted += 1;
                } else {
                    old_refused_early += 1;
                }
            }
            Some(_) => {
                if old == Some(UNAUTHORIZED) {
                    old_refused_after_expiry = reset_at.elapsed();
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let expiry = expiry.unwrap();
    eprintln!(
        "overlap at Traefik: previous accepted {old_accepted} times, refused early {old_refused_early}, \
         refused {:?} after the reset (expiry {expiry}); switching client failures {switching_failures}; \
         new credential accepted {:?} after the reset",
        old_refused_after_expiry, new_accepted_after
    );
    let new_accepted_after = new_accepted_after.expect("the new credential was accepted");
    assert!(
        new_accepted_after < Duration::from_secs(5),
        "the reset reached the gateway only after {new_accepted_after:?}"
    );
    assert_eq!(
        old_refused_early, 0,
        "the previous credential failed inside the overlap"
    );
    assert!(
        old_accepted > 20,
        "the previous credential was tried through the overlap"
    );
    assert_eq!(
        switching_failures, 0,
        "a client that switched over met a failure"
    );
    let refused_at = Timestamp::now();
    assert!(
        refused_at >= expiry
            && refused_at < expiry + k8s_openapi::jiff::SignedDuration::from_secs(6),
        "the previous credential was refused at {refused_at}, expiry {expiry}"
    );
    // The new credential works, the first one no longer.
    assert_eq!(gateway.get("/shop", as_pair(&second)), Some(NOOP_STATUS));
    assert_eq!(gateway.get("/shop", as_pair(&first)), Some(UNAUTHORIZED));
    let users = env.secret_data_opt("shop-gateway").await.unwrap();
    assert_eq!(users.len(), 1, "Traefik reads a single entry");
    assert_eq!(
        users["users"].lines().count(),
        1,
        "only the current user after expiry"
    );
}

#[tokio::test]
async fn a_basic_auth_secret_from_keysmith_is_read_by_traefik_and_a_reset_reaches_it_in_seconds() {
    needs_control_plane!();
    let env = Env::new("gateway-basic-auth-type").await;
    let gateway = Traefik::start(&env.client, &env.ns).await;
    env.apply_app(
        "plain",
        json!({"secret": {"type": "kubernetes.io/basic-auth"}}),
    )
    .await;
    traefik::apply_basic_auth_route(&env.client, &env.ns, "plain", "/plain", "plain").await;
    env.wait_ready("plain").await;
    let secret = env.secrets().get("plain").await.unwrap();
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/basic-auth"));
    let first = env.credential("plain", "username", "password").await;
    assert!(
        env.secret_data_opt("plain")
            .await
            .unwrap()
            .contains_key("app_id")
    );
    gateway
        .wait_until_status("/plain", as_pair(&first), NOOP_STATUS, RELOAD)
        .await;
    let wrong = (first.0.clone(), "not-the-password".to_string());
    assert_eq!(gateway.get("/plain", as_pair(&wrong)), Some(UNAUTHORIZED));

    env.reset("plain", "r1").await;
    let second = env.credential("plain", "username", "password").await;
    assert_eq!(second.0, first.0, "the key stays; the secret is new");
    assert_ne!(second.1, first.1);
    let took = gateway
        .wait_until_status(
            "/plain",
            as_pair(&second),
            NOOP_STATUS,
            Duration::from_secs(5),
        )
        .await;
    eprintln!("Traefik accepted the reset credential {took:?} after the status showed it");
    assert_eq!(gateway.get("/plain", as_pair(&first)), Some(UNAUTHORIZED));
}

/// The placeholder annotation and the `key` of a Kong key-auth gateway Secret.
async fn kong_key(env: &Env, name: &str) -> (Option<String>, String) {
    let secret = env.secrets().get(name).await.unwrap();
    let placeholder = secret
        .annotations()
        .get("keysmith.dev/placeholder")
        .cloned();
    let data = env.secret_data_opt(name).await.unwrap();
    assert_eq!(data.len(), 1, "{name}: only what Kong reads");
    (placeholder, data["key"].clone())
}

#[tokio::test]
async fn the_second_gateway_secret_holds_the_previous_credential_exactly_through_the_overlap() {
    needs_control_plane!();
    let mut env = Env::new("gateway-kong").await;
    env.apply_app(
        "kong",
        json!({"gateway": {"layout": "KongKeyAuth"}, "rotation": {"keepPrevious": "6s"}}),
    )
    .await;
    let app = env.wait_ready("kong").await;
    let first = env.credential("kong", "app_key", "app_secret").await;
    for name in ["kong-gateway", "kong-gateway-previous"] {
        let secret = env.secrets().get(name).await.unwrap();
        assert_eq!(secret.labels()[KONG_CREDENTIAL], "key-auth", "{name}");
        assert_eq!(
            secret.owner_references()[0].uid,
            app.uid().unwrap(),
            "{name}: collected with its GatewayApp"
        );
    }
    assert_eq!(
        kong_key(&env, "kong-gateway").await,
        (None, first.1.clone())
    );
    // Kong's consumer lists both Secrets, so both exist from the start: the
    // second holds a random key nobody is given until there is a previous one.
    let (marked, placeholder) = kong_key(&env, "kong-gateway-previous").await;
    assert_eq!(marked.as_deref(), Some("true"));
    assert_ne!(placeholder, first.1);

    let app = env.reset("kong", "r1").await;
    let second = env.credential("kong", "app_key", "app_secret").await;
    assert_eq!(
        kong_key(&env, "kong-gateway").await,
        (None, second.1.clone())
    );
    assert_eq!(
        kong_key(&env, "kong-gateway-previous").await,
        (None, first.1.clone()),
        "the previous key is Kong's second credential during the overlap"
    );
    let expiry = app
        .status
        .unwrap()
        .rotation
        .previous_secret_expiry_time
        .unwrap()
        .0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let revoked = loop {
        let (marked, key) = kong_key(&env, "kong-gateway-previous").await;
        if marked.is_some() {
            break key;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the previous key outlived the overlap"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        Timestamp::now() >= expiry,
        "replaced at the expiry, not before"
    );
    assert!(
        revoked != first.1 && revoked != second.1,
        "a fresh placeholder"
    );

    // An entry someone adds (Envoy Gateway would take it as an API key) is removed.
    let extra = json!({"data": {"extra": "c29tZW9uZQ=="}});
    env.secrets()
        .patch(
            "kong-gateway",
            &PatchParams::default(),
            &Patch::Merge(&extra),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while env
        .secret_data_opt("kong-gateway")
        .await
        .unwrap()
        .contains_key("extra")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the added entry stayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Idle, across an operator restart: no write to any of the three Secrets.
    let names = ["kong", "kong-gateway", "kong-gateway-previous"];
    let before = env.secret_versions(&names).await;
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
        env.secret_versions(&names).await,
        "an idle restart writes nothing"
    );
}

#[tokio::test]
async fn a_gateway_secret_keysmith_did_not_make_is_left_alone() {
    needs_control_plane!();
    let env = Env::new("gateway-foreign").await;
    apply_secret(
        &env.client,
        &env.ns,
        "taken-gateway",
        "Opaque",
        &[("key", "theirs")],
    )
    .await;
    env.apply_app("taken", json!({"gateway": {"layout": "ApisixKeyAuth"}}))
        .await;
    let app = env
        .wait_app("taken", "a conflict", |app| {
            ready(app).is_some_and(|r| r.0 != "True")
        })
        .await;
    let (_, reason, message) = ready(&app).unwrap();
    assert_eq!(reason, "SecretConflict");
    assert!(message.contains("taken-gateway"), "{message}");
    assert_eq!(
        env.secret_data_opt("taken-gateway").await.unwrap(),
        BTreeMap::from([("key".to_string(), "theirs".to_string())])
    );
    assert!(
        env.secret_data_opt("taken").await.is_none(),
        "nothing issued"
    );
}

#[tokio::test]
async fn a_gateway_secret_the_apiserver_refuses_is_reported_and_nothing_else_is_written() {
    needs_control_plane!();
    let env = Env::new("gateway-refused").await;
    support::policy::refuse_labelled_secrets(&env.client, &env.ns).await;
    env.apply_app(
        "refused",
        json!({
            "gateway": {"layout": "EnvoyGatewayApiKey"},
            "secret": {"labels": {support::policy::REFUSE_LABEL: "yes"}}
        }),
    )
    .await;
    let app = env
        .wait_app("refused", "SecretRefused", reason_is("SecretRefused"))
        .await;
    let (_, _, message) = ready(&app).unwrap();
    assert!(
        message.contains("refused-gateway"),
        "names the gateway Secret: {message}"
    );
    assert!(message.contains("refused by policy"), "{message}");
    assert!(env.secret_data_opt("refused-gateway").await.is_none());
    assert!(
        env.secret_data_opt("refused").await.is_none(),
        "the output Secret is not written when its gateway Secret cannot be"
    );
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(env.client.clone(), &env.ns);
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let list = events.list(&Default::default()).await.unwrap();
        if list
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("SecretRefused"))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no SecretRefused event"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
