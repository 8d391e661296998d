//! Upgrade safety from the previous `main` (SPEC §5, Upgrades), with real
//! binaries: the last `main` that landed (`scripts/previous-release main`,
//! passed in `KEYSMITH_PREVIOUS_MAIN` by `scripts/test`) issues credentials
//! for every main use — each example in `examples/` and
//! `examples/gateways/` (every gateway layout among them), a rollout, apps
//! at both cloud gateways and a signature key at one — and resets some of
//! them. Then this build starts on what it wrote, as a user upgrading
//! would: its CRDs, then its binary.
//!
//! Nothing may be written: no object of the namespace moves its
//! resourceVersion, the apiserver serves no write request on keysmith's
//! kinds or Secrets (not even one that changes nothing), no pod template
//! gains a mark, and neither gateway sees a write call. Then this build carries on
//! from what it found: a reset after the upgrade reaches the gateway.
//!
//! `tests/upgrade.rs` does the same from an older release, the last before
//! Secrets carried the owner's uid and keysmith's seal: the one migration.

mod support;

use support::cloud::{apply_connection, connection_spec, synced_at};
use support::conditions::{condition, is_ready};
use support::conformance::{self, ConformanceServer, writes};
use support::env::{Env, SETTLE, tail};
use support::fixtures::repo_root;
use support::operator::Operator;
use support::{control_plane, leak, needs_control_plane, upgrade};

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use keysmith::api::{GatewayApp, GatewayConnection, SignatureKey};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

/// The variable naming the previous main's `keysmith`.
const EARLIER: &str = "KEYSMITH_PREVIOUS_MAIN";

/// The example with `keepPrevious` (examples/gateway-app-rotation-overlap.yaml).
const OVERLAP: &str = "inventory-client";

/// Restarted its targets for `revision`, and says so in RolloutReady.
fn restarted_at(revision: i64) -> impl Fn(&GatewayApp) -> bool {
    move |app| {
        let Some(status) = app.status.as_ref() else {
            return false;
        };
        let ready = condition(app, "RolloutReady").is_some_and(|c| c.0 == "True");
        let marked = status
            .rotation
            .rollout
            .iter()
            .any(|t| t.revision == Some(revision));
        ready && marked && status.rotation.revision == Some(revision)
    }
}

/// What only keysmith writes here (the CRDs are installed before the count
/// starts; the controller manager writes the Deployment and events).
const KEYSMITH_RESOURCES: [&str; 4] = [
    "gatewayapps",
    "signaturekeys",
    "gatewayconnections",
    "secrets",
];

/// Every object keysmith reads or writes in `ns`, by `Kind/name`, and its
/// resourceVersion; the Deployment's pod-template annotations (its status
/// moves with the controller manager, its template only with a restart).
async fn snapshot(client: &Client, ns: &str) -> BTreeMap<String, String> {
    let mut seen = BTreeMap::new();
    let kinds = [
        ("keysmith.dev", "v1alpha1", "GatewayApp", "gatewayapps"),
        ("keysmith.dev", "v1alpha1", "SignatureKey", "signaturekeys"),
        (
            "keysmith.dev",
            "v1alpha1",
            "GatewayConnection",
            "gatewayconnections",
        ),
        ("", "v1", "Secret", "secrets"),
    ];
    for (group, version, kind, plural) in kinds {
        let resource =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
        for object in api.list(&ListParams::default()).await.unwrap() {
            let version = object.resource_version().unwrap_or_default();
            seen.insert(format!("{kind}/{}", object.name_any()), version);
        }
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let web = deployments.get("web").await.unwrap();
    let template = web.spec.template.metadata;
    let marks = template.and_then(|m| m.annotations).unwrap_or_default();
    seen.insert("Deployment/web template".into(), format!("{marks:?}"));
    seen
}

/// keysmith's kinds and the Secrets they read, of every example file
/// (`examples/gateways/` also holds the gateways' own objects: left out).
/// The two directories are meant to be applied apart and reuse names, so
/// the second's resources are renamed `gw-…` (their Secrets with them).
async fn apply_examples(client: &Client, ns: &str) -> usize {
    let mut resources = 0;
    for (dir, prefix) in [("examples", ""), ("examples/gateways", "gw-")] {
        let mut files: Vec<_> = std::fs::read_dir(repo_root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for doc in text.split("\n---") {
                let content = doc
                    .lines()
                    .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
                if !content {
                    continue;
                }
                let object: serde_json::Value = serde_norway::from_str(doc)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                let kind = object["kind"].as_str().unwrap_or_default().to_string();
                let plural = match kind.as_str() {
                    "GatewayApp" => "gatewayapps",
                    "SignatureKey" => "signaturekeys",
                    "Secret" => "secrets",
                    _ => continue,
                };
                let (group, version) = match object["apiVersion"].as_str().unwrap() {
                    "v1" => ("", "v1"),
                    other => other.split_once('/').unwrap(),
                };
                let gvk = GroupVersionKind::gvk(group, version, &kind);
                let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
                let mut object: DynamicObject = serde_json::from_value(object).unwrap();
                if kind != "Secret" {
                    object.metadata.name = Some(format!("{prefix}{}", object.name_any()));
                }
                api.create(&PostParams::default(), &object)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {kind}: {e}", file.display()));
                resources += usize::from(kind != "Secret");
            }
        }
    }
    resources
}

/// Waits until every GatewayApp and SignatureKey of the namespace is Ready,
/// and each with a `connectionRef` synced at its own revision.
async fn wait_settled(env: &Env, what: &str) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let apps = env.apps().list(&ListParams::default()).await.unwrap();
        let keys = env.keys().list(&ListParams::default()).await.unwrap();
        let app_synced = |a: &GatewayApp| {
            let revision = a.status.as_ref().and_then(|s| s.rotation.revision);
            a.spec.connection_ref.is_none() || revision.is_some_and(|r| synced_at(a, r))
        };
        let key_synced = |k: &SignatureKey| {
            let status = k.status.as_ref();
            let at_gateway = status.and_then(|s| s.gateway.as_ref()?.revision);
            k.spec.connection_ref.is_none()
                || at_gateway == status.and_then(|s| s.rotation.revision)
        };
        // A connection's check is its own (the apps sync through a
        // connection before its first check has written Ready).
        let connections = env
            .connections()
            .list(&ListParams::default())
            .await
            .unwrap();
        let settled = apps.iter().all(|a| is_ready(a) && app_synced(a))
            && keys.iter().all(|k| is_ready(k) && key_synced(k))
            && connections.iter().all(connection_checked);
        if settled {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not every resource Ready and synced:\n{}",
            tail(&env.operator.logs())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The connections' statuses (no credential in them), to say what changed.
async fn connection_statuses(env: &Env) -> String {
    let connections = env
        .connections()
        .list(&ListParams::default())
        .await
        .unwrap();
    let statuses: BTreeMap<String, _> = connections
        .into_iter()
        .map(|c| (c.name_any(), c.status))
        .collect();
    serde_json::to_string(&statuses).unwrap()
}

/// Ready, for the connection's current spec.
fn connection_checked(connection: &GatewayConnection) -> bool {
    let status = connection.status.as_ref();
    let ready = status.and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    ready.is_some_and(|c| c.status == "True")
        && status.and_then(|s| s.observed_generation) == connection.metadata.generation
}

/// The Deployment `web`, and an app that restarts it on each new revision.
async fn apply_rollout(env: &Env) {
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.ns);
    let web: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:1"}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &web)
        .await
        .unwrap();
    let targets = json!({"targets": [{"kind": "Deployment", "name": "web"}]});
    env.apply_app("rolled", json!({"rollout": targets})).await;
}

/// A connection to each server, an app at each, a signature key at Huawei.
async fn apply_cloud(env: &Env, servers: &[ConformanceServer]) {
    env.gateway_credentials().await;
    for server in servers {
        let provider = server.provider;
        apply_connection(env, provider, connection_spec(server, "gw-credentials")).await;
        let app =
            json!({"appName": format!("upgrade_{provider}"), "connectionRef": {"name": provider}});
        env.apply_app(&format!("cloud-{provider}"), app).await;
    }
    let keys: Api<SignatureKey> = env.keys();
    let key: SignatureKey = serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "SignatureKey",
        "metadata": {"name": "cloud-sign"},
        "spec": {"keyName": "upgrade_sign", "signType": "hmac", "connectionRef": {"name": "huawei"}}
    }))
    .unwrap();
    keys.create(&PostParams::default(), &key).await.unwrap();
}

/// Secret data a status or a spec shows by design: AppKeys, app ids,
/// shown sign_keys, sign types and algorithms, the access key's id, and
/// short values (a revision, a sign type) that would match by chance.
async fn shown_values(env: &Env) -> BTreeSet<String> {
    let mut shown = BTreeSet::from([conformance::ACCESS_KEY_ID.to_string()]);
    for app in env.apps().list(&ListParams::default()).await.unwrap() {
        let status = app.status.unwrap_or_default();
        shown.extend(status.app_key.into_iter().chain(status.app_id));
    }
    for key in env.keys().list(&ListParams::default()).await.unwrap() {
        let status = key.status.unwrap_or_default();
        shown.extend(status.sign_key);
    }
    let mut short = BTreeSet::new();
    for secret in env.secrets().list(&ListParams::default()).await.unwrap() {
        for value in secret.data.unwrap_or_default().into_values() {
            let value = String::from_utf8_lossy(&value.0).into_owned();
            if value.len() < 8 {
                short.insert(value);
            }
        }
    }
    shown.extend(short);
    shown.extend(["hmac", "basic", "aes", "aes-128-cfb", "aes-256-cfb"].map(String::from));
    shown
}

#[tokio::test]
async fn this_build_starts_on_what_the_previous_main_wrote_without_a_write() {
    needs_control_plane!();
    let earlier = upgrade::earlier_build(EARLIER);
    let cp = control_plane::control_plane();
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "from-main").await;
    upgrade::install_crds_of(&client, &earlier).await;
    let operator = Operator::start_binary(cp, &ns, &earlier);
    let mut env = Env {
        client,
        ns,
        operator,
    };

    // What users have in their clusters, issued by the previous main.
    let servers = [
        ConformanceServer::start("huawei"),
        ConformanceServer::start("alibaba"),
    ];
    let examples = apply_examples(&env.client, &env.ns).await;
    apply_rollout(&env).await;
    apply_cloud(&env, &servers).await;
    wait_settled(&env, "the previous main").await;
    // Resets under the previous main: new revisions at the gateways, a
    // restarted Deployment, a kept previous secret.
    for name in ["cloud-huawei", "cloud-alibaba", "rolled", OVERLAP] {
        env.request_reset(name, "before-upgrade").await;
    }
    for name in ["cloud-huawei", "cloud-alibaba"] {
        env.wait_app(name, "synced at revision 2", |a| synced_at(a, 2))
            .await;
    }
    env.wait_app("rolled", "restarted at revision 2", restarted_at(2))
        .await;
    env.wait_app(OVERLAP, "revision 2, the previous kept", |a| {
        let rotation = a.status.as_ref().map(|s| &s.rotation);
        rotation.is_some_and(|r| r.revision == Some(2) && r.previous_secret_expiry_time.is_some())
    })
    .await;
    wait_settled(&env, "the previous main, after the resets").await;
    // It stops before anything is counted: what it still does is not this build's.
    env.operator.stop();
    let before = snapshot(&env.client, &env.ns).await;
    let connections_before = connection_statuses(&env).await;
    assert!(
        before["Deployment/web template"].contains("keysmith"),
        "the rollout never marked the Deployment: {}",
        before["Deployment/web template"]
    );
    for server in &servers {
        let stats = server.stats().await;
        assert!(
            writes(&stats) > 0,
            "{}: no write counted ({stats})",
            server.provider
        );
        server.zero_stats().await;
    }
    let requests_before = upgrade::writes_to(&env.client, &KEYSMITH_RESOURCES).await;
    for counted in ["gatewayapps/status APPLY", "secrets/ POST"] {
        let n = requests_before.get(counted).copied().unwrap_or(0.0);
        assert!(n > 0.0, "{counted} not counted: {requests_before:?}");
    }

    // The upgrade: this build's CRDs, then this build.
    upgrade::install_crds(&env.client, keysmith::admission::schema::crds()).await;
    env.operator.switch_to(&Operator::this_build());
    let resources = examples + 4; // rolled, the two cloud apps, cloud-sign
    upgrade::wait_reconciles(&env.operator, resources as u64).await;
    let after = snapshot(&env.client, &env.ns).await;
    let written: Vec<&String> = before
        .iter()
        .filter(|(name, version)| after.get(*name) != Some(version))
        .map(|(name, _)| name)
        .collect();
    assert!(
        written.is_empty() && after.len() == before.len(),
        "this build wrote on the upgrade: {written:?} (objects before {}, after {})\n\
         connection statuses before: {connections_before}\nafter: {}\n{}",
        before.len(),
        after.len(),
        connection_statuses(&env).await,
        tail(&env.operator.logs())
    );
    let requests = upgrade::writes_to(&env.client, &KEYSMITH_RESOURCES).await;
    let requests = upgrade::grown(&requests_before, &requests);
    assert!(
        requests.is_empty(),
        "this build sent writes that changed nothing on the upgrade: {requests:?}\n{}",
        tail(&env.operator.logs())
    );
    for server in &servers {
        let stats = server.stats().await;
        assert_eq!(
            writes(&stats),
            0,
            "{}: the upgrade wrote at the gateway ({stats})",
            server.provider
        );
    }
    wait_settled(&env, "this build").await;

    // It carries on from what it found: the next reset is revision 3, at
    // the gateway too.
    env.request_reset("cloud-huawei", "after-upgrade").await;
    env.wait_app("cloud-huawei", "synced at revision 3", |a| synced_at(a, 3))
        .await;
    let connections: Api<GatewayConnection> = env.connections();
    for connection in connections.list(&ListParams::default()).await.unwrap() {
        assert!(is_ready(&connection), "{}", connection.name_any());
    }

    // No secret value in either build's logs, the events or the statuses:
    // every value of every Secret here but those a status rightly shows.
    let shown = shown_values(&env).await;
    let mut values = Vec::new();
    for secret in env.secrets().list(&ListParams::default()).await.unwrap() {
        for value in secret.data.unwrap_or_default().into_values() {
            let value = String::from_utf8_lossy(&value.0).into_owned();
            if !shown.contains(&value) {
                values.push(value);
            }
        }
    }
    leak::assert_no_leak(&env.operator.logs(), &env.client, &env.ns, &values).await;
}
