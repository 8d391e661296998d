//! keysmith registers its apps with the cloud API gateways (SPEC §11), on
//! the real control plane, against the conformance servers (which the
//! providers' official SDKs vouch for: tests/conformance_*.rs): a
//! connection is Ready only with working credentials; a GatewayApp with
//! `spec.connectionRef` is created at the gateway with the Secret's
//! credential, a reset reaches the gateway, Ready waits for the gateway, and
//! a cluster connection serves only the namespaces it selects.

mod support;

use k8s_openapi::api::core::v1::Namespace;
use keysmith::api::ClusterGatewayConnection;
use keysmith::api::names::annotations;
use keysmith::providers::{self, GatewayApi, SecretValue};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use support::cloud::{
    apply_connection, connection_spec, credentials_secret, provider_of, reader, synced_at,
    wait_connection,
};
use support::conditions::condition;
use support::conformance::{self, ConformanceServer};
use support::control_plane;
use support::env::{Env, SETTLE};

/// The whole journey at one provider.
async fn journey(provider: &'static str) {
    let server = ConformanceServer::start(provider);
    let env = Env::new(&format!("cloud-{provider}")).await;
    env.gateway_credentials().await;
    credentials_secret(
        &env.client,
        &env.ns,
        "gw-wrong",
        "not-the-secret-0123456789",
        true,
    )
    .await;

    // Wrong credentials: not Ready, with the provider's refusal.
    apply_connection(&env, "wrong", connection_spec(&server, "gw-wrong")).await;
    let (reason, message) = wait_connection(&env, "wrong", "False").await;
    assert_eq!(reason, "InvalidCredentials", "{message}");
    assert!(!message.contains("not-the-secret"), "{message}");

    apply_connection(&env, "gw", connection_spec(&server, "gw-credentials")).await;
    let (reason, _) = wait_connection(&env, "gw", "True").await;
    assert_eq!(reason, "Connected");

    // Created at the gateway with the Secret's credential.
    env.apply_app(
        "orders",
        json!({"appName": "orders_app", "remark": "r1", "connectionRef": {"name": "gw"}}),
    )
    .await;
    let app = env.wait_app("orders", "synced", |a| synced_at(a, 1)).await;
    let (key, secret) = env.credential("orders", "app_key", "app_secret").await;
    let remote = reader(&server)
        .find_app("orders_app")
        .await
        .unwrap()
        .expect("the app at the gateway");
    assert_eq!(
        Some(remote.id.as_str()),
        app.status
            .as_ref()
            .unwrap()
            .gateway
            .as_ref()
            .unwrap()
            .id
            .as_deref()
    );
    assert_eq!(remote.remark, "r1");
    assert!(remote.keys.iter().any(|p| p.key == key && p.secret.as_ref().map(|s| s.expose()) == Some(secret.as_str())), "the gateway holds the Secret's credential");

    // A reset reaches the gateway.
    env.reset("orders", "r2").await;
    env.wait_app("orders", "reset synced", |a| synced_at(a, 2))
        .await;
    let (key2, secret2) = env.credential("orders", "app_key", "app_secret").await;
    assert_ne!(secret2, secret);
    let remote = reader(&server)
        .find_app("orders_app")
        .await
        .unwrap()
        .unwrap();
    assert!(
        remote
            .keys
            .iter()
            .any(|p| p.key == key2
                && p.secret.as_ref().map(|s| s.expose()) == Some(secret2.as_str())),
        "the gateway holds the reset credential"
    );

    // A remark change is pushed.
    env.apply_app("orders", json!({"appName": "orders_app", "remark": "r2", "connectionRef": {"name": "gw"}, "resetRequest": "r2"})).await;
    let deadline = tokio::time::Instant::now() + SETTLE;
    while reader(&server)
        .find_app("orders_app")
        .await
        .unwrap()
        .unwrap()
        .remark
        != "r2"
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "remark never pushed\n{}",
            support::env::tail(&env.operator.logs())
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    // An app of the same name made by someone else is not taken over.
    let foreign = providers::AppWrite {
        name: "taken_app".into(),
        remark: String::new(),
        key: "foreignkey0123456".into(),
        secret: SecretValue::new("ForeignSecret0123456789"),
    };
    reader(&server).create_app(&foreign).await.unwrap();
    env.apply_app(
        "taken",
        json!({"appName": "taken_app", "connectionRef": {"name": "gw"}}),
    )
    .await;
    let app = env
        .wait_app("taken", "refused", |a| {
            condition(a, "Ready").is_some_and(|c| c.1 == "GatewayConflict")
        })
        .await;
    assert!(
        condition(&app, "Ready")
            .unwrap()
            .2
            .contains(annotations::ADOPT_GATEWAY_APP)
    );
    let still = reader(&server)
        .find_app("taken_app")
        .await
        .unwrap()
        .unwrap();
    assert!(
        still.keys.iter().any(|p| p.key == "foreignkey0123456"),
        "the other app was not touched"
    );

    // Deleted with deletionPolicy Delete: the app goes from the gateway
    // first (the finalizer); with Retain it stays.
    env.apply_app("kept", json!({"appName": "kept_app", "connectionRef": {"name": "gw"}, "secret": {"deletionPolicy": "Retain"}})).await;
    env.wait_app("kept", "synced", |a| synced_at(a, 1)).await;
    assert!(
        env.app("kept").await.metadata.finalizers.is_none(),
        "Retain needs no finalizer"
    );
    let app = env.app("orders").await;
    assert_eq!(
        app.metadata.finalizers.as_deref(),
        Some(&["keysmith.dev/gateway-cleanup".to_string()][..])
    );
    for name in ["orders", "kept"] {
        env.apps().delete(name, &Default::default()).await.unwrap();
    }
    let logs = || support::env::tail(&env.operator.logs());
    support::wait::gone(&env.apps(), "orders", SETTLE, logs).await;
    assert!(
        reader(&server)
            .find_app("orders_app")
            .await
            .unwrap()
            .is_none(),
        "Delete removes the app at the gateway"
    );
    assert!(
        reader(&server)
            .find_app("kept_app")
            .await
            .unwrap()
            .is_some(),
        "Retain keeps the app at the gateway"
    );
    env.wait_event("orders", "GatewayCleanedUp").await;

    // Every gateway request is counted with bounded labels.
    let (code, metrics) = env
        .operator
        .http_get(env.operator.metrics_port, "/metrics")
        .expect("the metrics endpoint");
    assert_eq!(code, 200);
    let label = provider_of(&server).0;
    let counted: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("keysmith_gateway_requests_total{") && l.contains(label))
        .collect();
    assert!(counted.len() >= 3, "{counted:?}");
    assert!(
        counted
            .iter()
            .all(|l| l.contains("operation=\"") && l.contains("code=\""))
    );
    assert!(metrics.contains("keysmith_gateway_request_duration_seconds_bucket{"));
    for value in [&secret, &secret2] {
        assert!(
            !metrics.contains(value.as_str()),
            "a credential reached a metric"
        );
    }

    // No credential in the operator's log.
    let logs = env.operator.logs();
    for value in [
        &secret,
        &secret2,
        &conformance::ACCESS_KEY_SECRET.to_string(),
    ] {
        assert!(
            !logs.contains(value.as_str()),
            "a credential reached the log"
        );
    }
}

#[tokio::test]
async fn an_app_lives_at_alibaba_api_gateway_as_in_its_secret() {
    if control_plane::skipped() {
        return;
    }
    journey("alibaba").await;
}

#[tokio::test]
async fn an_app_lives_at_huawei_apig_as_in_its_secret() {
    if control_plane::skipped() {
        return;
    }
    journey("huawei").await;
}

#[tokio::test]
async fn a_cluster_connection_serves_only_the_namespaces_it_selects() {
    if control_plane::skipped() {
        return;
    }
    let server = ConformanceServer::start("alibaba");
    let env = Env::new("cloud-cluster").await;
    // keysmith's own namespace in the tests is `default` (no POD_NAMESPACE).
    credentials_secret(
        &env.client,
        "default",
        &format!("{}-cred", env.ns),
        conformance::ACCESS_KEY_SECRET,
        false,
    )
    .await;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .patch(
            &env.ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"gateway-access": "yes"}}})),
        )
        .await
        .unwrap();
    let api: Api<ClusterGatewayConnection> = Api::all(env.client.clone());
    for (name, selector) in [
        (
            format!("{}-allowed", env.ns),
            json!({"matchLabels": {"gateway-access": "yes"}}),
        ),
        (
            format!("{}-refused", env.ns),
            json!({"matchLabels": {"gateway-access": "never"}}),
        ),
    ] {
        let mut spec = connection_spec(&server, &format!("{}-cred", env.ns));
        spec["namespaceSelector"] = selector;
        let object = json!({"apiVersion": "keysmith.dev/v1alpha1", "kind": "ClusterGatewayConnection",
                            "metadata": {"name": name}, "spec": spec});
        api.patch(
            &name,
            &PatchParams::apply("keysmith-tests"),
            &Patch::Apply(&object),
        )
        .await
        .unwrap();
    }
    env.apply_app("allowed", json!({"appName": "allowed_app", "connectionRef": {"kind": "ClusterGatewayConnection", "name": format!("{}-allowed", env.ns)}})).await;
    env.apply_app("refused", json!({"appName": "refused_app", "connectionRef": {"kind": "ClusterGatewayConnection", "name": format!("{}-refused", env.ns)}})).await;
    env.wait_app("allowed", "synced", |a| synced_at(a, 1)).await;
    env.wait_app("refused", "not allowed", |a| {
        condition(a, "Ready").is_some_and(|c| c.0 == "False" && c.1 == "ConnectionNotAllowed")
    })
    .await;
    assert!(
        reader(&server)
            .find_app("refused_app")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn alibaba_overlaps_at_the_gateway_with_a_second_key_pair() {
    if control_plane::skipped() {
        return;
    }
    let server = ConformanceServer::start("alibaba");
    let env = Env::new("cloud-overlap").await;
    env.gateway_credentials().await;
    apply_connection(&env, "gw", connection_spec(&server, "gw-credentials")).await;
    env.apply_app(
        "rotating",
        json!({"appName": "rotating_app", "connectionRef": {"name": "gw"},
               "rotation": {"keepPrevious": "1h", "rotateAppKey": true}}),
    )
    .await;
    env.wait_app("rotating", "synced", |a| synced_at(a, 1))
        .await;
    let (old_key, old_secret) = env.credential("rotating", "app_key", "app_secret").await;
    env.reset("rotating", "r2").await;
    let app = env
        .wait_app("rotating", "reset synced", |a| synced_at(a, 2))
        .await;
    let (new_key, new_secret) = env.credential("rotating", "app_key", "app_secret").await;
    assert_ne!(new_key, old_key);
    let gateway = app.status.as_ref().unwrap().gateway.as_ref().unwrap();
    assert_eq!(gateway.previous_key.as_deref(), Some(old_key.as_str()));
    // Both pairs work at the gateway during the overlap.
    let remote = reader(&server)
        .find_app("rotating_app")
        .await
        .unwrap()
        .unwrap();
    let holds = |key: &str, secret: &str| {
        remote
            .keys
            .iter()
            .any(|p| p.key == key && p.secret.as_ref().map(|s| s.expose()) == Some(secret))
    };
    assert!(
        holds(&old_key, &old_secret),
        "the previous pair stays for the overlap"
    );
    assert!(holds(&new_key, &new_secret), "the new pair is there");
    assert_eq!(remote.keys.len(), 2);
}

#[tokio::test]
async fn a_namespace_with_synced_apps_is_deleted() {
    if control_plane::skipped() {
        return;
    }
    let server = ConformanceServer::start("huawei");
    let env = Env::new("cloud-nsdel").await;
    env.gateway_credentials().await;
    apply_connection(&env, "gw", connection_spec(&server, "gw-credentials")).await;
    for i in 0..3 {
        env.apply_app(
            &format!("app{i}"),
            json!({"appName": format!("ns_app_{i}"), "connectionRef": {"name": "gw"}}),
        )
        .await;
    }
    for i in 0..3 {
        env.wait_app(&format!("app{i}"), "synced", |a| synced_at(a, 1))
            .await;
    }
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .delete(&env.ns, &Default::default())
        .await
        .unwrap();
    let logs = || support::env::tail(&env.operator.logs());
    support::wait::gone(&namespaces, &env.ns, SETTLE, logs).await;
    // The connection stayed (its in-use finalizer) while the apps' cleanups
    // ran, on the client built before its credentials Secret went.
    let gateway = reader(&server);
    for i in 0..3 {
        let left = gateway.find_app(&format!("ns_app_{i}")).await.unwrap();
        assert!(
            left.is_none(),
            "ns_app_{i} was left at the gateway\n{}",
            env.operator
                .logs()
                .lines()
                .filter(|l| l.contains("\"INFO\"")
                    || l.contains("\"WARN\"")
                    || l.contains("\"ERROR\""))
                .filter(|l| !l.contains("could not record an event"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    // At least one delete each (a cleanup whose finalizer release failed
    // deletes again, and is told NotFound).
    let stats = server.stats().await;
    let deletes = stats["calls"]["DeleteAppV2"].as_u64().unwrap_or(0);
    assert!(deletes >= 3, "{stats}");
    eprintln!("deletes at the gateway: {deletes}");
}

#[tokio::test]
async fn a_new_credential_reaches_the_gateway_before_the_secret() {
    if control_plane::skipped() {
        return;
    }
    let server = ConformanceServer::start("huawei");
    let env = Env::new("cloud-pushfirst").await;
    env.gateway_credentials().await;
    apply_connection(&env, "gw", connection_spec(&server, "gw-credentials")).await;
    env.apply_app(
        "first",
        json!({"appName": "first_app", "connectionRef": {"name": "gw"}}),
    )
    .await;
    env.wait_app("first", "synced", |a| synced_at(a, 1)).await;
    let (key, secret) = env.credential("first", "app_key", "app_secret").await;

    // The gateway refuses every reset for now: the Secret keeps the
    // credential the gateway still accepts, the new one waits, fixed.
    server
        .control(
            "POST",
            "/_conformance/faults",
            Some(
                json!({"operation": "ResettingAppSecretV2", "kind": "unavailable", "times": 1000}),
            ),
        )
        .await;
    env.request_reset("first", "r2").await;
    let app = env
        .wait_app("first", "sync failing", |a| {
            condition(a, "GatewaySynced").is_some_and(|c| c.0 == "False")
        })
        .await;
    assert_eq!(
        condition(&app, "GatewaySynced").unwrap().1,
        "GatewaySyncFailed"
    );
    assert_eq!(
        app.status.as_ref().unwrap().rotation.revision,
        Some(1),
        "no revision before the gateway has it"
    );
    let stored = env.secrets().get("first").await.unwrap();
    let data = stored.data.clone().unwrap();
    assert_eq!(
        String::from_utf8(data["app_secret"].0.clone()).unwrap(),
        secret,
        "the Secret keeps the working credential"
    );
    assert!(
        data.contains_key(".keysmith-pending"),
        "the new credential is fixed in the Secret"
    );
    let remote = reader(&server)
        .find_app("first_app")
        .await
        .unwrap()
        .unwrap();
    assert!(remote.keys.iter().any(|p| p.key == key && p.secret.as_ref().map(|s| s.expose()) == Some(secret.as_str())));

    // Several failed passes later the gateway takes it: the one fixed value.
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    let pending_before =
        env.secrets().get("first").await.unwrap().data.unwrap()[".keysmith-pending"].clone();
    server.control("DELETE", "/_conformance/faults", None).await;
    env.wait_app("first", "synced after the gateway recovered", |a| {
        synced_at(a, 2)
    })
    .await;
    let (key2, secret2) = env.credential("first", "app_key", "app_secret").await;
    assert_ne!(secret2, secret);
    let pending: serde_json::Value = serde_json::from_slice(&pending_before.0).unwrap();
    assert_eq!(
        pending["secret"].as_str(),
        Some(secret2.as_str()),
        "the value fixed before the first try is the one issued"
    );
    let remote = reader(&server)
        .find_app("first_app")
        .await
        .unwrap()
        .unwrap();
    assert!(
        remote
            .keys
            .iter()
            .any(|p| p.key == key2
                && p.secret.as_ref().map(|s| s.expose()) == Some(secret2.as_str()))
    );
    let stored = env.secrets().get("first").await.unwrap();
    assert!(
        !stored.data.unwrap().contains_key(".keysmith-pending"),
        "the pending entry goes once the Secret holds it"
    );
}

#[tokio::test]
async fn a_secret_reset_in_the_console_is_repaired_and_idle_sync_writes_nothing() {
    if control_plane::skipped() {
        return;
    }
    let server = ConformanceServer::start("huawei");
    let env = Env::new("cloud-drift").await;
    env.gateway_credentials().await;
    let mut spec = connection_spec(&server, "gw-credentials");
    spec["driftCheckInterval"] = json!("10s");
    apply_connection(&env, "gw", spec).await;
    for name in ["drifting", "steady"] {
        env.apply_app(
            name,
            json!({"appName": format!("{name}_app"), "connectionRef": {"name": "gw"}}),
        )
        .await;
    }
    for name in ["drifting", "steady"] {
        env.wait_app(name, "synced", |a| synced_at(a, 1)).await;
    }
    let (key, secret) = env.credential("drifting", "app_key", "app_secret").await;

    // Idle: only reads (the connection check and the drift lists), no write.
    server.zero_stats().await;
    tokio::time::sleep(std::time::Duration::from_secs(22)).await;
    let stats = server.stats().await;
    assert_eq!(
        stats["writes"], 0,
        "idle sync wrote to the gateway: {stats}"
    );
    assert!(
        stats["calls"]["ListAppsV2"].as_u64().unwrap_or(0) >= 1,
        "no drift check ran: {stats}"
    );

    // Someone resets the secret in the console: repaired within the interval.
    let gateway = reader(&server);
    let id = gateway.find_app("drifting_app").await.unwrap().unwrap().id;
    gateway
        .reset_secret(
            &id,
            &key,
            &key,
            &SecretValue::new("Console-reset-secret-0001"),
        )
        .await
        .unwrap();
    env.wait_event("drifting", "GatewayDrift").await;
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let remote = gateway.find_app("drifting_app").await.unwrap().unwrap();
        if remote
            .keys
            .iter()
            .any(|p| p.key == key && p.secret.as_ref().map(|s| s.expose()) == Some(secret.as_str()))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "drift never repaired\n{}",
            support::env::tail(&env.operator.logs())
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    // The Secret was not touched: the resource's credential is the truth.
    assert_eq!(
        env.credential("drifting", "app_key", "app_secret").await,
        (key, secret)
    );
    assert!(
        env.events_for("steady")
            .await
            .iter()
            .all(|e| e.1 != "GatewayDrift")
    );
}

#[tokio::test]
async fn a_signature_key_lives_at_the_gateway_as_in_its_secret() {
    if control_plane::skipped() {
        return;
    }
    {
        let provider = "huawei";
        let server = ConformanceServer::start(provider);
        let env = Env::new(&format!("cloud-sign-{provider}")).await;
        env.gateway_credentials().await;
        let mut spec = connection_spec(&server, "gw-credentials");
        spec["driftCheckInterval"] = json!("10s");
        apply_connection(&env, "gw", spec).await;
        let keys: Api<keysmith::api::SignatureKey> = Api::namespaced(env.client.clone(), &env.ns);
        let apply = |reset: &str| {
            json!({"apiVersion": "keysmith.dev/v1alpha1", "kind": "SignatureKey",
                   "metadata": {"name": "backend"},
                   "spec": {"keyName": "backend_sign", "signType": "hmac", "resetRequest": reset,
                            "connectionRef": {"name": "gw"}}})
        };
        let synced = |revision: i64| {
            move |k: &keysmith::api::SignatureKey| {
                let s = k.status.as_ref();
                let ok = |t: &str| {
                    s.is_some_and(|s| {
                        s.rotation
                            .conditions
                            .iter()
                            .any(|c| c.type_ == t && c.status == "True")
                    })
                };
                ok("Ready")
                    && ok("GatewaySynced")
                    && s.and_then(|s| s.gateway.as_ref()).and_then(|g| g.revision) == Some(revision)
                    && s.and_then(|s| s.rotation.revision) == Some(revision)
            }
        };
        let params = PatchParams::apply("keysmith-tests");
        for (reset, revision) in [("first", 1), ("second", 2)] {
            keys.patch("backend", &params, &Patch::Apply(&apply(reset)))
                .await
                .unwrap();
            let deadline = tokio::time::Instant::now() + SETTLE;
            while !keys
                .get("backend")
                .await
                .ok()
                .is_some_and(|k| synced(revision)(&k))
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{provider}: signature key not synced at revision {revision}: {:?}\n{}",
                    keys.get("backend").await.ok().and_then(|k| k.status),
                    support::env::tail(&env.operator.logs())
                );
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            let data = env.secrets().get("backend").await.unwrap().data.unwrap();
            let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
            let remote = reader(&server)
                .find_signature("backend_sign")
                .await
                .unwrap()
                .expect("the signature key at the gateway");
            assert_eq!(remote.key, text("sign_key"), "{provider}");
            assert_eq!(
                remote.secret.as_ref().map(|s| s.expose().to_string()),
                Some(text("sign_secret")),
                "{provider}"
            );
        }
        // Someone changes the signature key's secret in the console: the
        // drift check finds it and pushes the Secret's value again.
        let data = env.secrets().get("backend").await.unwrap().data.unwrap();
        let text = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
        let (sign_key, sign_secret) = (text("sign_key"), text("sign_secret"));
        let gateway = reader(&server);
        let remote = gateway
            .find_signature("backend_sign")
            .await
            .unwrap()
            .unwrap();
        let console = providers::SignatureWrite {
            name: "backend_sign".into(),
            sign_type: "hmac".into(),
            algorithm: None,
            key: sign_key.clone(),
            secret: SecretValue::new("Console-changed-sign-secret-0001"),
        };
        gateway
            .update_signature(&remote.id, &console)
            .await
            .unwrap();
        env.wait_event("backend", "GatewayDrift").await;
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let remote = gateway
                .find_signature("backend_sign")
                .await
                .unwrap()
                .unwrap();
            if remote.secret.as_ref().map(|s| s.expose()) == Some(sign_secret.as_str()) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "signature key drift never repaired\n{}",
                support::env::tail(&env.operator.logs())
            );
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        keys.delete("backend", &Default::default()).await.unwrap();
        let logs = || support::env::tail(&env.operator.logs());
        support::wait::gone(&keys, "backend", SETTLE, logs).await;
        assert!(
            reader(&server)
                .find_signature("backend_sign")
                .await
                .unwrap()
                .is_none(),
            "{provider}: deleted at the gateway"
        );
    }
}

#[tokio::test]
async fn the_gateways_own_rules_are_checked_before_any_call() {
    if control_plane::skipped() {
        return;
    }
    // Alibaba holds signature keys of 6-20 characters; a generated one has 32.
    let server = ConformanceServer::start("alibaba");
    let env = Env::new("cloud-rules").await;
    env.gateway_credentials().await;
    apply_connection(&env, "gw", connection_spec(&server, "gw-credentials")).await;
    wait_connection(&env, "gw", "True").await;
    server.zero_stats().await;
    let keys: Api<keysmith::api::SignatureKey> = Api::namespaced(env.client.clone(), &env.ns);
    let key = json!({"apiVersion": "keysmith.dev/v1alpha1", "kind": "SignatureKey",
                     "metadata": {"name": "backend"},
                     "spec": {"keyName": "backend_sign", "signType": "hmac", "connectionRef": {"name": "gw"}}});
    keys.patch(
        "backend",
        &PatchParams::apply("keysmith-tests"),
        &Patch::Apply(&key),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + SETTLE;
    let (reason, message) = loop {
        let found = keys.get("backend").await.unwrap();
        let ready = found.status.as_ref().and_then(|s| {
            s.rotation
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready" && c.status == "False")
        });
        if let Some(c) = ready.filter(|c| c.reason == "GatewayRejected") {
            break (c.reason.clone(), c.message.clone());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never rejected: {:?}",
            found.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(reason, "GatewayRejected");
    assert!(
        message.contains("SignatureKey") && message.contains("6 to 20"),
        "{message}"
    );
    let stats = server.stats().await;
    assert_eq!(stats["writes"], 0, "a call was made: {stats}");
}

#[tokio::test]
async fn adoption_and_a_released_cleanup_are_asked_for_explicitly() {
    if control_plane::skipped() {
        return;
    }
    let server = ConformanceServer::start("huawei");
    let env = Env::new("cloud-adopt").await;
    env.gateway_credentials().await;
    apply_connection(&env, "gw", connection_spec(&server, "gw-credentials")).await;
    let gateway = reader(&server);
    let existing = providers::AppWrite {
        name: "legacy_app".into(),
        remark: "made by hand".into(),
        key: "legacykey0123456".into(),
        secret: SecretValue::new("LegacySecret0123456789"),
    };
    let id = gateway.create_app(&existing).await.unwrap().id;

    // Asked for: keysmith takes the app over and pushes its own credential.
    let apps = env.apps();
    let app = json!({"apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
                     "metadata": {"name": "legacy", "annotations": {annotations::ADOPT_GATEWAY_APP: "true"}},
                     "spec": {"appName": "legacy_app", "remark": "now keysmith's", "connectionRef": {"name": "gw"}}});
    apps.patch(
        "legacy",
        &PatchParams::apply("keysmith-tests"),
        &Patch::Apply(&app),
    )
    .await
    .unwrap();
    let synced = env.wait_app("legacy", "adopted", |a| synced_at(a, 1)).await;
    assert_eq!(
        synced
            .status
            .as_ref()
            .unwrap()
            .gateway
            .as_ref()
            .unwrap()
            .id
            .as_deref(),
        Some(id.as_str())
    );
    let (key, secret) = env.credential("legacy", "app_key", "app_secret").await;
    let remote = gateway.find_app("legacy_app").await.unwrap().unwrap();
    assert_eq!(remote.id, id, "the same app, not a new one");
    assert_eq!(remote.remark, "now keysmith's");
    assert!(remote.keys.iter().any(|p| p.key == key && p.secret.as_ref().map(|s| s.expose()) == Some(secret.as_str())));

    // The gateway cannot be reached: the finalizer holds, says why, and the
    // annotation releases it, leaving the app there.
    server
        .control(
            "POST",
            "/_conformance/faults",
            Some(json!({"operation": "DeleteAppV2", "kind": "unavailable", "times": 1000})),
        )
        .await;
    apps.delete("legacy", &Default::default()).await.unwrap();
    let held = env
        .wait_app("legacy", "cleanup held", |a| {
            a.status
                .as_ref()
                .and_then(|s| s.gateway.as_ref())
                .and_then(|g| g.cleanup.as_deref())
                .is_some()
        })
        .await;
    let why = held.status.unwrap().gateway.unwrap().cleanup.unwrap();
    assert!(why.contains(annotations::SKIP_GATEWAY_CLEANUP), "{why}");
    apps.patch(
        "legacy",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {annotations::SKIP_GATEWAY_CLEANUP: "true"}}}),
        ),
    )
    .await
    .unwrap();
    let logs = || support::env::tail(&env.operator.logs());
    support::wait::gone(&apps, "legacy", SETTLE, logs).await;
    assert!(
        gateway.find_app("legacy_app").await.unwrap().is_some(),
        "left at the gateway"
    );
    env.wait_event("legacy", "GatewayCleanupSkipped").await;
}

#[tokio::test]
async fn a_private_endpoint_is_trusted_through_the_ca_bundle() {
    if control_plane::skipped() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("keysmith-conformance-tls-{}", std::process::id()));
    let server = ConformanceServer::start_tls("alibaba", &dir);
    assert!(
        server.endpoint.starts_with("https://"),
        "{}",
        server.endpoint
    );
    let ca = std::fs::read_to_string(dir.join("tls.crt")).unwrap();
    let env = Env::new("cloud-tls").await;
    env.gateway_credentials().await;

    // Without the CA: the certificate is unknown, nothing is sent.
    apply_connection(
        &env,
        "untrusted",
        connection_spec(&server, "gw-credentials"),
    )
    .await;
    let (reason, message) = wait_connection(&env, "untrusted", "False").await;
    assert_eq!(reason, "Unreachable", "{message}");
    assert!(message.to_lowercase().contains("certificate"), "{message}");

    let mut spec = connection_spec(&server, "gw-credentials");
    spec["caBundle"] = json!(ca);
    apply_connection(&env, "trusted", spec).await;
    wait_connection(&env, "trusted", "True").await;
    env.apply_app(
        "private",
        json!({"appName": "private_app", "connectionRef": {"name": "trusted"}}),
    )
    .await;
    env.wait_app("private", "synced over TLS", |a| synced_at(a, 1))
        .await;
    let _ = std::fs::remove_dir_all(&dir);
}
