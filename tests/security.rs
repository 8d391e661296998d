//! The holes of the second security review (SPEC §10 as amended), each
//! reproduced on the real control plane: a forged owner label, a planted
//! previous value,
//! an edit hidden behind keysmith's field manager name, two resources
//! issuing into one Secret at once, and aes key material in status. (A
//! `Retain` leftover taken without the Secret's consent: tests/controller.rs,
//! `a_secret_left_behind_by_retain_…`; AppKey squatting across namespaces:
//! tests/uniqueness.rs.)

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use keysmith::api::names::{annotations, labels};
use keysmith::api::{GatewayApp, SignatureKey};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use support::conditions::{is_ready, ready, reason_is};
use support::control_plane;
use support::env::{Env, SETTLE, text_data};
use support::needs_control_plane;

impl Env {
    /// Server-side apply of a Secret patch under `manager`.
    async fn apply_secret_as(&self, manager: &str, name: &str, patch: serde_json::Value) {
        let mut patch = patch;
        patch["apiVersion"] = json!("v1");
        patch["kind"] = json!("Secret");
        patch["metadata"]["name"] = json!(name);
        self.secrets()
            .patch(
                name,
                &PatchParams::apply(manager).force(),
                &Patch::Apply(&patch),
            )
            .await
            .unwrap_or_else(|e| panic!("applying Secret {name} as {manager}: {e}"));
    }

    /// Waits a few reconciles' worth and checks `check` still holds.
    async fn holds_for(&self, name: &str, what: &str, check: impl Fn(&GatewayApp) -> bool) {
        for _ in 0..20 {
            let app = self.app(name).await;
            assert!(check(&app), "{name}: {what}: {:#?}", app.status);
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

/// Hole 1: a resource named after another's hashed owner label, asking to
/// adopt, took over the other's live Secret. Identity is the uid (and the
/// full name beside a hashed label).
#[tokio::test]
async fn a_forged_owner_label_never_takes_a_live_secret() {
    needs_control_plane!();
    let env = Env::new("forged-label").await;
    let victim = format!("orders-{}", "x".repeat(70));
    env.apply_app(
        &victim,
        json!({"appName": "victim_app", "secret": {"name": "victim-credentials"}}),
    )
    .await;
    env.wait_app(&victim, "issued", is_ready).await;
    let before = env.secret("victim-credentials").await;
    let label = labels::owner_value(&victim);
    assert_ne!(label, victim, "the label holds a hash");

    let forger = env.apps();
    let app = json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
        "metadata": {"name": label, "annotations": {(annotations::ADOPT_SECRET): "true"}},
        "spec": {"secret": {"name": "victim-credentials"}},
    });
    forger
        .patch(
            &label,
            &PatchParams::apply("keysmith-tests"),
            &Patch::Apply(&app),
        )
        .await
        .unwrap();
    let refused = env
        .wait_app(&label, "refused", reason_is("SecretConflict"))
        .await;
    let message = ready(&refused).unwrap().2;
    assert!(message.contains("victim-credentials"), "{message}");
    env.holds_for(&label, "stays refused", reason_is("SecretConflict"))
        .await;

    let after = env.secret("victim-credentials").await;
    assert_eq!(
        text_data(&after),
        text_data(&before),
        "the victim's values are intact"
    );
    assert_eq!(after.owner_references(), before.owner_references());
    assert_eq!(after.annotations(), before.annotations());
    // Deleting the forger collects nothing of the victim's.
    forger
        .delete(&label, &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        env.secrets()
            .get_opt("victim-credentials")
            .await
            .unwrap()
            .is_some()
    );
    assert!(is_ready(&env.app(&victim).await));
}

/// Hole 5: a previous value planted in the output Secret (with a far-future
/// expiry, under keysmith's own field manager name) was published to the
/// gateway Secret. Now it is reported and never published.
#[tokio::test]
async fn a_planted_previous_value_is_never_published() {
    needs_control_plane!();
    let env = Env::new("planted").await;
    env.apply_app(
        "orders",
        json!({"gateway": {"layout": "EnvoyGatewayApiKey"}, "rotation": {"keepPrevious": "1h"}}),
    )
    .await;
    env.wait_app("orders", "issued", is_ready).await;
    let planted = "Planted-backdoor-0123456789";
    env.apply_secret_as(
        "keysmith",
        "orders",
        json!({
            "metadata": {"annotations": {(annotations::PREVIOUS_EXPIRES_AT): "2099-01-01T00:00:00Z"}},
            "data": {"app_secret_previous": ByteString(planted.as_bytes().to_vec())},
        }),
    )
    .await;
    let reported = env
        .wait_app("orders", "reported", reason_is("SecretEdited"))
        .await;
    assert!(
        ready(&reported).unwrap().2.contains("app_secret_previous"),
        "{:?}",
        ready(&reported)
    );
    env.holds_for("orders", "stays reported", reason_is("SecretEdited"))
        .await;
    let gateway = text_data(&env.secret("orders-gateway").await);
    assert!(
        gateway.values().all(|v| !v.contains(planted)),
        "the planted value reached the gateway Secret"
    );
}

/// Hole 5, second half: an edit applied under keysmith's own field manager
/// name was invisible. The seal sees it: the valid edit is kept and reported.
#[tokio::test]
async fn an_edit_under_keysmiths_field_manager_name_is_still_seen() {
    needs_control_plane!();
    let env = Env::new("edit-as-keysmith").await;
    env.apply_app("orders", json!({})).await;
    let issued = env.wait_app("orders", "issued", is_ready).await;
    let revision = issued.status.unwrap().rotation.revision;
    let edited = "Edited-by-someone-0123456789";
    env.apply_secret_as(
        "keysmith",
        "orders",
        json!({"data": {"app_secret": ByteString(edited.as_bytes().to_vec())}}),
    )
    .await;
    env.wait_event("orders", "SecretEdited").await;
    let app = env.wait_app("orders", "ready", is_ready).await;
    assert_eq!(
        app.status.unwrap().rotation.revision,
        revision,
        "no rotation"
    );
    assert_eq!(
        text_data(&env.secret("orders").await)["app_secret"],
        edited,
        "kept"
    );
}

/// Hole 6: two resources naming one Secret inside the watch's lag merged
/// into it as the one field manager. The first issue is exclusive.
#[tokio::test]
async fn the_first_issue_is_exclusive() {
    needs_control_plane!();
    let env = Env::new("exclusive").await;
    let (a, b) = tokio::join!(
        env.apply_app("first", json!({"secret": {"name": "shared"}})),
        env.apply_app("second", json!({"secret": {"name": "shared"}})),
    );
    let ((), ()) = (a, b);
    let settled = |app: &GatewayApp| is_ready(app) || reason_is("SecretConflict")(app);
    let first = env.wait_app("first", "settled", settled).await;
    let second = env.wait_app("second", "settled", settled).await;
    let winners: Vec<&GatewayApp> = [&first, &second].into_iter().filter(is_ready).collect();
    assert_eq!(
        winners.len(),
        1,
        "one owner: {:?} {:?}",
        ready(&first),
        ready(&second)
    );
    let winner = winners[0];
    let secret = env.secret("shared").await;
    assert_eq!(
        secret.annotations().get(annotations::OWNER_UID),
        winner.uid().as_ref(),
        "the Secret is the winner's alone"
    );
    assert_eq!(
        text_data(&secret)["app_key"],
        winner.status.as_ref().unwrap().app_key.clone().unwrap()
    );
}

/// Hole 8: an aes sign_key is key material: not in status (nor, so, in the
/// printer column), only in the Secret.
#[tokio::test]
async fn an_aes_sign_key_stays_in_the_secret() {
    needs_control_plane!();
    let env = Env::new("aes-status").await;
    let keys: Api<SignatureKey> = Api::namespaced(env.client.clone(), &env.ns);
    let key = json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "SignatureKey",
        "metadata": {"name": "signing"},
        "spec": {"signType": "aes", "signAlgorithm": "aes-128-cfb"},
    });
    keys.patch(
        "signing",
        &PatchParams::apply("keysmith-tests"),
        &Patch::Apply(&key),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + SETTLE;
    let status = loop {
        let found = keys.get("signing").await.unwrap();
        if let Some(status) = found.status.filter(|s| s.rotation.revision.is_some()) {
            break status;
        }
        assert!(tokio::time::Instant::now() < deadline, "not issued");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.sign_key, None);
    let secret = text_data(&env.secret("signing").await);
    assert_eq!(secret["sign_key"].len(), 16);
    let shown = serde_json::to_string(&status).unwrap();
    assert!(!shown.contains(&secret["sign_key"]));
}

/// The first issue is a create; later applies must still remove what it
/// wrote (its fields belong to an `Update` entry until keysmith hands them
/// to its apply entry): a label and an annotation taken out of the spec, the
/// owner reference of a policy switched to Retain, an expired previous secret.
#[tokio::test]
async fn later_applies_remove_what_the_create_wrote() {
    needs_control_plane!();
    let env = Env::new("create-then-apply").await;
    let extras = json!({"labels": {"team": "a"}, "annotations": {"note": "b"}});
    env.apply_app(
        "orders",
        json!({"rotation": {"keepPrevious": "3s"}, "secret": extras}),
    )
    .await;
    env.wait_app("orders", "issued", is_ready).await;
    let created = env.secret("orders").await;
    assert_eq!(created.owner_references().len(), 1);
    assert!(created.labels().contains_key("team") && created.annotations().contains_key("note"));

    env.apply_app(
        "orders",
        json!({"rotation": {"keepPrevious": "3s"}, "secret": {"deletionPolicy": "Retain"}}),
    )
    .await;
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let secret = env.secret("orders").await;
        if !secret.labels().contains_key("team")
            && !secret.annotations().contains_key("note")
            && secret.owner_references().is_empty()
        {
            assert_eq!(
                text_data(&secret),
                text_data(&created),
                "the same credential"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the create's fields stayed: labels {:?}, owners {}",
            secret.labels(),
            secret.owner_references().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    env.reset("orders", "rotate").await;
    assert!(text_data(&env.secret("orders").await).contains_key("app_secret_previous"));
    let deadline = tokio::time::Instant::now() + SETTLE;
    while text_data(&env.secret("orders").await).contains_key("app_secret_previous") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the previous secret never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Item 8: a `…SecretFrom` source is read by its metadata first, so a
/// Secret that has not opted in never has its data read by keysmith. The
/// apiserver's audit log (scripts/control-plane audits reads of Secrets
/// named `keysmith-audited-source`, answers included) shows what was read.
#[tokio::test]
async fn a_source_that_has_not_opted_in_is_never_read_in_full() {
    needs_control_plane!();
    let env = Env::new("audited").await;
    let source = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("keysmith-audited-source".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "secret".to_string(),
            ByteString(b"Audited-Secret-0123456789".to_vec()),
        )])),
        ..Default::default()
    };
    env.secrets()
        .create(&Default::default(), &source)
        .await
        .unwrap();
    env.apply_app(
        "reader",
        json!({"appSecretFrom": {"secretKeyRef": {"name": "keysmith-audited-source", "key": "secret"}}}),
    )
    .await;
    env.wait_app("reader", "refused", |a| {
        ready(a).is_some_and(|r| r.1 == "SourceNotAllowed")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await; // the audit backend writes in batches
    let log = std::fs::read_to_string(control_plane::control_plane().dir.join("audit.log"))
        .expect("the apiserver's audit log");
    let reads: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| {
            e["objectRef"]["namespace"] == env.ns.as_str()
                && e["objectRef"]["name"] == "keysmith-audited-source"
                && e["verb"] == "get"
        })
        .collect();
    assert!(
        !reads.is_empty(),
        "keysmith never looked at the source (audit log has no read)"
    );
    for read in &reads {
        let kind = read["responseObject"]["kind"].as_str().unwrap_or_default();
        assert_ne!(
            kind, "Secret",
            "the source was read in full before its opt-in was checked: {read}"
        );
        assert!(
            !read.to_string().contains("QXVkaXRlZC1TZWNyZXQ"),
            "the value reached the audit log"
        );
    }
}
