//! Upgrade safety (SPEC §5, Upgrades), with real binaries: the previous
//! release (`scripts/previous-release`, passed in `KEYSMITH_PREVIOUS_RELEASE`
//! by `scripts/test`) issues, rotates and resets credentials; then this build
//! starts on what it wrote. It must recognise every Secret and status as its
//! own: no status written, no credential changed, no rotation, every
//! resource Ready. The one bookkeeping migration allowed: each Secret gains
//! the owner's uid (`keysmith.dev/owner-uid`, SPEC §10), in place. Then it
//! carries on from that record (one reset, one revision, the kept previous
//! secret still there).
//!
//! The previous release runs with its own CRDs (`keysmith crds` of that
//! binary) and this build with this build's, applied in between as a user
//! upgrading the chart would: a changed schema (conditions became a map
//! keyed by `type`) must keep every existing status intact.
//!
//! Release note that goes with it: `…SecretFrom` sources must now opt in;
//! before upgrading, `kubectl annotate secret NAME keysmith.dev/allow-source=true`
//! for each source (this test does so, as users are told to).

mod support;

use support::conditions::is_ready;
use support::wait::{self, tail};
use support::{control_plane, leak, operator, upgrade};

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use keysmith::api::names::annotations;
use keysmith::api::*;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use operator::Operator;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

/// What this test compares before and after the upgrade: each object's
/// resourceVersion (a write of any kind moves it) and what it holds.
#[derive(Debug, PartialEq)]
struct Seen {
    version: String,
    /// Status (resources) or annotations + labels + data lengths (Secrets).
    shape: serde_json::Value,
    /// A Secret's data, compared but never printed.
    data: Data,
}

#[derive(PartialEq)]
struct Data(BTreeMap<String, Vec<u8>>);

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "data keys {:?}", self.0.keys().collect::<Vec<_>>())
    }
}

async fn snapshot(client: &Client, ns: &str) -> BTreeMap<String, Seen> {
    let mut seen = BTreeMap::new();
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    for app in apps.list(&ListParams::default()).await.unwrap() {
        seen.insert(
            format!("GatewayApp/{}", app.name_any()),
            Seen {
                version: app.resource_version().unwrap_or_default(),
                shape: serde_json::to_value(&app.status).unwrap(),
                data: Data(BTreeMap::new()),
            },
        );
    }
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), ns);
    for key in keys.list(&ListParams::default()).await.unwrap() {
        seen.insert(
            format!("SignatureKey/{}", key.name_any()),
            Seen {
                version: key.resource_version().unwrap_or_default(),
                shape: serde_json::to_value(&key.status).unwrap(),
                data: Data(BTreeMap::new()),
            },
        );
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for secret in secrets.list(&ListParams::default()).await.unwrap() {
        let data: BTreeMap<String, Vec<u8>> = secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        // The migration this release makes: the owner's uid and keysmith's
        // seal, added in place.
        let mut annotations = secret.annotations().clone();
        annotations.remove(annotations::OWNER_UID);
        annotations.remove(annotations::SEAL);
        seen.insert(
            format!("Secret/{}", secret.name_any()),
            Seen {
                version: secret.resource_version().unwrap_or_default(),
                shape: json!({
                    "annotations": annotations,
                    "labels": secret.labels(),
                    "owners": secret.owner_references().len(),
                    "migrated": secret.annotations().contains_key(annotations::OWNER_UID)
                        && secret.annotations().contains_key(annotations::SEAL),
                }),
                data: Data(data),
            },
        );
    }
    seen
}

/// Waits until every resource of the namespace is Ready and `extra` holds.
async fn wait_all_ready(client: &Client, ns: &str, operator: &Operator, what: &str) {
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), ns);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let apps_ready = apps
            .list(&ListParams::default())
            .await
            .unwrap()
            .iter()
            .all(is_ready);
        let keys_ready = keys
            .list(&ListParams::default())
            .await
            .unwrap()
            .iter()
            .all(is_ready);
        if apps_ready && keys_ready {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not every resource Ready; operator log tail:\n{}",
            tail(&operator.logs())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn create(client: &Client, ns: &str, manifest: serde_json::Value) {
    let kind = manifest["kind"].as_str().unwrap().to_string();
    match kind.as_str() {
        "GatewayApp" => {
            let api: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
            api.create(
                &PostParams::default(),
                &serde_json::from_value(manifest).unwrap(),
            )
            .await
            .unwrap();
        }
        _ => {
            let api: Api<SignatureKey> = Api::namespaced(client.clone(), ns);
            api.create(
                &PostParams::default(),
                &serde_json::from_value(manifest).unwrap(),
            )
            .await
            .unwrap();
        }
    }
}

fn app(name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp", "metadata": {"name": name}, "spec": spec})
}

fn key(name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "keysmith.dev/v1alpha1", "kind": "SignatureKey", "metadata": {"name": name}, "spec": spec})
}

async fn annotate_reset(client: &Client, ns: &str, name: &str, value: &str) {
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    apps.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {(annotations::RESET_REQUEST): value}}})),
    )
    .await
    .unwrap();
}

async fn app_status(client: &Client, ns: &str, name: &str) -> GatewayAppStatus {
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    apps.get(name).await.unwrap().status.unwrap_or_default()
}

/// Waits until the GatewayApp's status satisfies `check`.
async fn wait_status(
    client: &Client,
    ns: &str,
    name: &str,
    what: &str,
    check: impl Fn(&GatewayAppStatus) -> bool,
) {
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    let check = |app: &GatewayApp| check(&app.status.clone().unwrap_or_default());
    wait::until(&apps, name, what, TIMEOUT, check, String::new).await;
}

#[tokio::test]
async fn this_build_takes_over_what_the_previous_release_wrote_without_a_write() {
    if control_plane::skipped() {
        return;
    }
    let previous = upgrade::earlier_build("KEYSMITH_PREVIOUS_RELEASE");
    let cp = control_plane::control_plane();
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "upgrade").await;

    // What users have in their clusters: each main use, issued by the previous release.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let source = Secret {
        metadata: ObjectMeta {
            name: Some("byo".into()),
            // The release note's step: sources opt in (the previous release ignores it).
            annotations: Some(BTreeMap::from([(
                annotations::ALLOW_SOURCE.to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "secret".to_string(),
            ByteString(b"Byo-Secret-0123456789".to_vec()),
        )])),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &source)
        .await
        .unwrap();
    for manifest in [
        app("generated", json!({})),
        app(
            "custom",
            json!({"appKey": "upgrade-custom-key-01", "remark": "r"}),
        ),
        app(
            "rotating",
            json!({"rotation": {"interval": "720h", "keepPrevious": "1h", "rotateAppKey": true}}),
        ),
        app(
            "kong-style",
            json!({"secret": {"name": "kong-cred", "keys": {"appKey": "key", "appSecret": "secret", "appId": "id"},
                   "labels": {"konghq.com/credential": "key-auth"}, "deletionPolicy": "Retain"}}),
        ),
        app(
            "from-source",
            json!({"appSecretFrom": {"secretKeyRef": {"name": "byo", "key": "secret"}}}),
        ),
        key("hmac", json!({})),
        key(
            "aes",
            json!({"signType": "aes", "signAlgorithm": "aes-256-cfb", "signKey": "abcdefghijklmnopqrstuvwxyz012345"}),
        ),
        key(
            "basic",
            json!({"signType": "basic", "rotation": {"interval": "2160h", "keepPrevious": "1h"}, "resetRequest": "first"}),
        ),
    ] {
        create(&client, &ns, manifest).await;
    }
    upgrade::install_crds_of(&client, &previous).await;
    let mut operator = Operator::start_binary(cp, &ns, &previous);
    wait_all_ready(&client, &ns, &operator, "the previous release").await;
    // A reset under the previous release: a new revision, a kept previous secret.
    annotate_reset(&client, &ns, "rotating", "before-upgrade").await;
    wait_status(&client, &ns, "rotating", "reset before the upgrade", |s| {
        s.rotation.observed_reset_annotation.as_deref() == Some("before-upgrade")
            && s.rotation.previous_secret_expiry_time.is_some()
    })
    .await;
    wait_all_ready(
        &client,
        &ns,
        &operator,
        "the previous release, after a reset",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await; // let its last writes land
    let before = snapshot(&client, &ns).await;
    assert_eq!(
        before.keys().filter(|k| k.starts_with("Secret/")).count(),
        9
    );

    // The upgrade: this build's CRDs, then this build.
    upgrade::install_crds(&client, keysmith::admission::schema::crds()).await;
    operator.switch_to(&Operator::this_build());
    upgrade::wait_reconciles(&operator, 8).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = snapshot(&client, &ns).await;
    assert_eq!(after.len(), before.len(), "nothing new was written");
    for (name, was) in &before {
        let now = &after[name];
        let what = format!("{name} on upgrade:\n{}", tail(&operator.logs()));
        assert_eq!(now.data, was.data, "credentials changed: {what}");
        if name.starts_with("Secret/byo") {
            assert_eq!(now, was, "the source was written: {what}");
        } else if name.starts_with("Secret/") {
            // Migrated in place: the uid added, nothing else.
            assert_eq!(now.shape["migrated"], json!(true), "not migrated: {what}");
            let mut was_shape = was.shape.clone();
            was_shape["migrated"] = json!(true);
            assert_eq!(now.shape, was_shape, "{what}");
        } else if name == "SignatureKey/aes" {
            // The one status change: an aes sign_key is key material, no longer shown.
            let mut was_shape = was.shape.clone();
            was_shape.as_object_mut().unwrap().remove("signKey");
            assert_eq!(now.shape, was_shape, "{what}");
        } else {
            assert_eq!(now, was, "status written: {what}");
        }
    }
    wait_all_ready(&client, &ns, &operator, "this build").await;

    // And it carries on from the record it found: one reset, one revision,
    // the kept previous secret still within its hour.
    let rotating = app_status(&client, &ns, "rotating").await;
    let revision = rotating.rotation.revision.unwrap();
    annotate_reset(&client, &ns, "rotating", "after-upgrade").await;
    wait_status(&client, &ns, "rotating", "reset after the upgrade", |s| {
        s.rotation.observed_reset_annotation.as_deref() == Some("after-upgrade")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = app_status(&client, &ns, "rotating").await;
    assert_eq!(status.rotation.revision, Some(revision + 1));
    let secret = secrets.get("rotating").await.unwrap();
    assert!(secret.data.unwrap().contains_key("app_secret_previous"));
    let generated = app_status(&client, &ns, "generated").await;
    assert_eq!(
        generated.rotation.revision,
        Some(1),
        "the others rotate nothing"
    );

    // No secret value in either build's logs, the events or the statuses.
    let mut values = Vec::new();
    for secret in secrets.list(&ListParams::default()).await.unwrap() {
        for (key, value) in secret.data.unwrap_or_default() {
            if key.contains("secret") {
                values.push(String::from_utf8(value.0).unwrap());
            }
        }
    }
    leak::assert_no_leak(&operator.logs(), &client, &ns, &values).await;
}
