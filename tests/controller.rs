//! The controller end to end: the built `keysmith run` binary against the real
//! control plane, one operator and one namespace per test (SPEC section 5).

mod support;

use support::conditions::{is_ready, ready, reason_is, revision};
use support::env::Env;
use support::needs_control_plane;
use support::{control_plane, leak, policy};

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use keysmith::api::names::{annotations, labels};
use keysmith::api::*;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::wait::await_condition;
use leak::base64;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn issues_generated_and_custom_credentials_on_create() {
    needs_control_plane!();
    let env = Env::new("issue").await;
    env.create_secret("byo", &[("secret", "Custom-Secret-2026")])
        .await;
    env.create_app("generated-app", json!({"remark": "r"}))
        .await;
    env.create_app("custom-app", json!({"appKey": "custom-key-01", "appSecretFrom": {"secretKeyRef": {"name": "byo", "key": "secret"}}}))
        .await;

    let app = env.wait_app("generated-app", "Ready", is_ready).await;
    let status = app.status.clone().unwrap();
    assert_eq!(status.app_id, app.uid());
    assert_eq!(status.app_name.as_deref(), Some("generated_app"));
    assert_eq!(status.creator, Some(Creator::User));
    assert_eq!(status.app_type, Some(AppType::Apig));
    assert_eq!(
        status.rotation.secret_name.as_deref(),
        Some("generated-app")
    );
    assert_eq!(status.rotation.revision, Some(1));
    assert_eq!(
        status.rotation.last_rotation_reason,
        Some(RotationReason::Initial)
    );
    assert!(
        status.register_time.is_some()
            && status.update_time.is_some()
            && status.rotation.last_rotation_time.is_some()
    );
    assert_eq!(status.rotation.next_rotation_time, None);
    assert_eq!(status.rotation.observed_generation, Some(1));

    let secret = env.secrets().get("generated-app").await.unwrap();
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert_eq!(
        secret.labels().get(labels::MANAGED_BY).map(String::as_str),
        Some("keysmith")
    );
    assert_eq!(
        secret.labels().get(labels::GATEWAY_APP).map(String::as_str),
        Some("generated-app")
    );
    assert_eq!(
        secret
            .annotations()
            .get(annotations::REVISION)
            .map(String::as_str),
        Some("1")
    );
    let owner = &secret.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("GatewayApp", app.uid().unwrap().as_str())
    );
    let data = env.secret_data("generated-app").await;
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["app_id", "app_key", "app_secret"]
    );
    assert_eq!(Some(&data["app_key"]), status.app_key.as_ref());
    assert_eq!(data["app_key"].len(), 36);
    assert_eq!(data["app_secret"].len(), 32);
    assert!(keysmith::rules::APP_SECRET.is_valid(&data["app_secret"]));
    assert_eq!(Some(&data["app_id"]), app.uid().as_ref());
    env.wait_event("generated-app", "Issued").await;

    env.wait_app("custom-app", "Ready", is_ready).await;
    let data = env.secret_data("custom-app").await;
    assert_eq!(data["app_key"], "custom-key-01");
    assert_eq!(data["app_secret"], "Custom-Secret-2026");
}

#[tokio::test]
async fn issues_every_signature_key_type() {
    needs_control_plane!();
    let env = Env::new("sigkeys").await;
    env.create_key("hmac-key", json!({})).await;
    env.create_key("basic-key", json!({"signType": "basic", "signKey": "abcd"}))
        .await;
    env.create_key(
        "aes-short",
        json!({"signType": "aes", "signAlgorithm": "aes-128-cfb"}),
    )
    .await;
    env.create_key(
        "aes-long",
        json!({"signType": "aes", "signAlgorithm": "aes-256-cfb"}),
    )
    .await;

    let key = env.wait_key("hmac-key", "Ready", is_ready).await;
    let status = key.status.clone().unwrap();
    assert_eq!(status.id, key.uid().map(|u| u.replace('-', "")));
    assert_eq!(status.key_name.as_deref(), Some("hmac_key"));
    assert_eq!(status.sign_type, Some(SignType::Hmac));
    assert!(status.create_time.is_some());
    let data = env.secret_data("hmac-key").await;
    assert_eq!(data["sign_type"], "hmac");
    assert!(keysmith::rules::SIGN_KEY_HMAC.is_valid(&data["sign_key"]));
    assert!(keysmith::rules::SIGN_SECRET_HMAC.is_valid(&data["sign_secret"]));
    assert!(!data.contains_key("sign_algorithm"));
    assert_eq!(status.sign_key.as_ref(), Some(&data["sign_key"]));

    env.wait_key("basic-key", "Ready", is_ready).await;
    let data = env.secret_data("basic-key").await;
    assert_eq!(data["sign_key"], "abcd");
    assert!(keysmith::rules::SIGN_SECRET_BASIC.is_valid(&data["sign_secret"]));

    for (name, key_len, algorithm) in [
        ("aes-short", 16, "aes-128-cfb"),
        ("aes-long", 32, "aes-256-cfb"),
    ] {
        env.wait_key(name, "Ready", is_ready).await;
        let data = env.secret_data(name).await;
        assert_eq!(data["sign_key"].len(), key_len, "{name}");
        assert_eq!(data["sign_secret"].len(), 16, "{name}");
        assert_eq!(data["sign_algorithm"], algorithm);
        assert_eq!(data["sign_type"], "aes");
    }
}

#[tokio::test]
async fn kubectl_wait_and_get_show_readiness_and_columns() {
    needs_control_plane!();
    let env = Env::new("kubectl").await;
    env.create_app("shown-app", json!({"rotation": {"interval": "720h"}}))
        .await;
    env.create_key("shown-key", json!({})).await;
    let cp = control_plane::control_plane();
    let kubectl = |args: &[&str]| {
        std::process::Command::new("kubectl")
            .args(args)
            .args(["-n", &env.ns])
            .env("KUBECONFIG", &cp.kubeconfig)
            .output()
            .expect("kubectl")
    };
    let waited = kubectl(&[
        "wait",
        "--for=condition=Ready",
        "--timeout=30s",
        "gwapp/shown-app",
        "sigkey/shown-key",
    ]);
    assert!(
        waited.status.success(),
        "{}",
        String::from_utf8_lossy(&waited.stderr)
    );
    let app = env.apps().get("shown-app").await.unwrap();
    let listed = kubectl(&["get", "gwapps,sigkeys"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("APPKEY") && text.contains("NEXT ROTATION") && text.contains("SIGNKEY"),
        "{text}"
    );
    assert!(
        text.contains(app.status.unwrap().app_key.as_deref().unwrap()),
        "{text}"
    );
    assert!(text.contains("True") && text.contains("hmac"), "{text}");
    let all = kubectl(&["get", "keysmith"]);
    let text = String::from_utf8_lossy(&all.stdout);
    assert!(
        text.contains("gatewayapp.keysmith.dev/shown-app")
            && text.contains("signaturekey.keysmith.dev/shown-key"),
        "{text}"
    );
}

#[tokio::test]
async fn changing_the_app_key_keeps_the_secret() {
    needs_control_plane!();
    let env = Env::new("keychange").await;
    env.create_app("app", json!({"appKey": "first-key-01"}))
        .await;
    env.wait_app("app", "Ready", is_ready).await;
    let before = env.secret_data("app").await;

    env.patch_app("app", json!({"spec": {"appKey": "second-key-02"}}))
        .await;
    let app = env
        .wait_app("app", "revision 2", |a| revision(a) == Some(2))
        .await;
    let after = env.secret_data("app").await;
    assert_eq!(after["app_key"], "second-key-02");
    assert_eq!(after["app_secret"], before["app_secret"]);
    assert_eq!(
        app.status.as_ref().unwrap().rotation.last_rotation_reason,
        Some(RotationReason::AppKeyChanged)
    );
    env.wait_event("app", "KeyChanged").await;

    // Removing the field keeps the key in use.
    env.patch_app("app", json!({"spec": {"appKey": null}}))
        .await;
    env.wait_app("app", "observed the new generation", |a| {
        a.status
            .as_ref()
            .and_then(|s| s.rotation.observed_generation)
            == a.metadata.generation
    })
    .await;
    assert_eq!(env.secret_data("app").await["app_key"], "second-key-02");
    assert_eq!(revision(&env.apps().get("app").await.unwrap()), Some(2));
}

#[tokio::test]
async fn each_reset_request_resets_exactly_once() {
    needs_control_plane!();
    let env = Env::new("reset").await;
    env.create_app(
        "app",
        json!({"resetRequest": "a", "rotation": {"rotateAppKey": true}}),
    )
    .await;
    env.wait_app("app", "Ready", is_ready).await;
    let first = env.secret_data("app").await;

    env.patch_app("app", json!({"spec": {"resetRequest": "b"}}))
        .await;
    let app = env
        .wait_app("app", "reset by spec", |a| revision(a) == Some(2))
        .await;
    let status = app.status.unwrap();
    assert_eq!(status.rotation.observed_reset_request.as_deref(), Some("b"));
    assert_eq!(
        status.rotation.last_rotation_reason,
        Some(RotationReason::ResetRequest)
    );
    let second = env.secret_data("app").await;
    assert_ne!(second["app_secret"], first["app_secret"]);
    assert_ne!(
        second["app_key"], first["app_key"],
        "rotateAppKey replaces the generated key too"
    );
    env.wait_event("app", "Reset").await;

    // The same value again, and an unrelated change: nothing happens.
    env.patch_app("app", json!({"spec": {"resetRequest": "b", "remark": "unrelated"}, "metadata": {"labels": {"x": "y"}}}))
        .await;
    env.wait_app("app", "saw generation", |a| {
        a.status
            .as_ref()
            .and_then(|s| s.rotation.observed_generation)
            == a.metadata.generation
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(revision(&env.apps().get("app").await.unwrap()), Some(2));
    assert_eq!(env.secret_data("app").await, second);

    // The annotation, like `keysmith reset`.
    env.patch_app(
        "app",
        json!({"metadata": {"annotations": {(annotations::RESET_REQUEST): "2026-11-24T10:00:00Z"}}}),
    )
    .await;
    let app = env
        .wait_app("app", "reset by annotation", |a| revision(a) == Some(3))
        .await;
    assert_eq!(
        app.status
            .unwrap()
            .rotation
            .observed_reset_annotation
            .as_deref(),
        Some("2026-11-24T10:00:00Z")
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        revision(&env.apps().get("app").await.unwrap()),
        Some(3),
        "exactly one reset per value"
    );
}

#[tokio::test]
async fn rotates_on_schedule_and_keeps_the_previous_secret_for_the_overlap() {
    needs_control_plane!();
    let env = Env::new("schedule").await;
    env.create_app(
        "app",
        json!({"rotation": {"interval": "1m", "keepPrevious": "15s"}}),
    )
    .await;
    env.create_secret("byo", &[("secret", "Supplied-Secret-1")])
        .await;
    env.create_app("supplied", json!({"rotation": {"interval": "1m"}, "appSecretFrom": {"secretKeyRef": {"name": "byo", "key": "secret"}}}))
        .await;
    let app = env.wait_app("app", "Ready", is_ready).await;
    let status = app.status.unwrap();
    let last = status.rotation.last_rotation_time.unwrap().0;
    let next = status.rotation.next_rotation_time.unwrap().0;
    assert_eq!(next.as_second() - last.as_second(), 60);
    let first = env.secret_data("app").await;

    let supplied = env.wait_app("supplied", "Ready", is_ready).await;
    assert_eq!(
        supplied.status.unwrap().rotation.next_rotation_time,
        None,
        "the owner rotates a supplied secret"
    );

    let rotated = tokio::time::timeout(
        Duration::from_secs(90),
        await_condition(env.apps(), "app", |a: Option<&GatewayApp>| {
            a.and_then(revision) == Some(2)
        }),
    )
    .await
    .expect("rotation within 90s")
    .unwrap()
    .unwrap();
    let status = rotated.status.unwrap();
    let rotated_at = status.rotation.last_rotation_time.unwrap().0;
    assert!(
        (rotated_at.as_second() - next.as_second()).abs() <= 5,
        "rotated at the due instant"
    );
    assert_eq!(
        status.rotation.last_rotation_reason,
        Some(RotationReason::Schedule)
    );
    assert_eq!(
        status.rotation.next_rotation_time.unwrap().0.as_second(),
        rotated_at.as_second() + 60
    );
    let expiry = status.rotation.previous_secret_expiry_time.unwrap().0;
    assert_eq!(expiry.as_second(), rotated_at.as_second() + 15);
    let data = env.secret_data("app").await;
    assert_eq!(data["app_secret_previous"], first["app_secret"]);
    assert_ne!(data["app_secret"], first["app_secret"]);
    env.wait_event("app", "Rotated").await;

    // The kept secret goes away by itself when the overlap ends.
    let expired = tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(env.apps(), "app", |a: Option<&GatewayApp>| {
            a.is_some_and(|a| {
                a.status
                    .as_ref()
                    .is_some_and(|s| s.rotation.previous_secret_expiry_time.is_none())
            })
        }),
    )
    .await
    .expect("previous secret removed");
    assert!(expired.is_ok());
    assert!(
        !env.secret_data("app")
            .await
            .contains_key("app_secret_previous")
    );
    assert_eq!(
        revision(&env.apps().get("supplied").await.unwrap()),
        Some(1)
    );
}

#[tokio::test]
async fn app_keys_are_unique_and_the_newer_app_waits() {
    needs_control_plane!();
    let env = Env::new("unique").await;
    env.create_app("holder", json!({"appKey": "shared-key-01"}))
        .await;
    env.wait_app("holder", "Ready", is_ready).await;
    // Creation times have whole seconds; within one second the uid decides.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    env.create_app("newcomer", json!({"appKey": "shared-key-01"}))
        .await;
    let app = env
        .wait_app("newcomer", "AppKeyConflict", reason_is("AppKeyConflict"))
        .await;
    let (status, _, message) = ready(&app).unwrap();
    assert_eq!(status, "False");
    assert!(message.contains(&format!("{}/holder", env.ns)), "{message}");
    assert!(
        env.secrets().get_opt("newcomer").await.unwrap().is_none(),
        "nothing is written for it"
    );
    env.wait_event("newcomer", "AppKeyConflict").await;

    // The holder moves to another key: the newcomer becomes Ready on its own.
    env.patch_app("holder", json!({"spec": {"appKey": "holder-key-02"}}))
        .await;
    env.wait_app("newcomer", "Ready after the holder moved", is_ready)
        .await;
    assert_eq!(
        env.secret_data("newcomer").await["app_key"],
        "shared-key-01"
    );

    // And again when the holder is deleted.
    env.create_app("third", json!({"appKey": "holder-key-02"}))
        .await;
    env.wait_app("third", "AppKeyConflict", reason_is("AppKeyConflict"))
        .await;
    env.apps()
        .delete("holder", &DeleteParams::default())
        .await
        .unwrap();
    env.wait_app("third", "Ready after the holder was deleted", is_ready)
        .await;
}

#[tokio::test]
async fn foreign_secrets_are_never_touched_and_deletion_policy_switches_ownership() {
    needs_control_plane!();
    let env = Env::new("owner").await;
    env.create_secret("taken", &[("app_key", "someone-elses")])
        .await;
    let before = env.secrets().get("taken").await.unwrap();
    env.create_app("taken", json!({})).await;
    env.wait_app("taken", "SecretConflict", reason_is("SecretConflict"))
        .await;
    env.wait_event("taken", "SecretConflict").await;
    let after = env.secrets().get("taken").await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );

    env.create_app("owned", json!({})).await;
    env.wait_app("owned", "Ready", is_ready).await;
    assert_eq!(
        env.secrets()
            .get("owned")
            .await
            .unwrap()
            .owner_references()
            .len(),
        1
    );
    env.patch_app(
        "owned",
        json!({"spec": {"secret": {"deletionPolicy": "Retain"}}}),
    )
    .await;
    env.wait_for(env.secrets(), "owned", "owner reference removed", |s| {
        s.owner_references().is_empty()
    })
    .await;
    env.patch_app(
        "owned",
        json!({"spec": {"secret": {"deletionPolicy": "Delete"}}}),
    )
    .await;
    env.wait_for(env.secrets(), "owned", "owner reference added back", |s| {
        !s.owner_references().is_empty()
    })
    .await;
    assert_eq!(
        revision(&env.apps().get("owned").await.unwrap()),
        Some(1),
        "ownership is not a rotation"
    );
}

#[tokio::test]
async fn drift_deleted_edited_and_broken_secrets() {
    needs_control_plane!();
    let env = Env::new("drift").await;
    env.create_app("app", json!({})).await;
    let app = env.wait_app("app", "Ready", is_ready).await;
    let first = env.secret_data("app").await;
    let update_time = app.status.unwrap().update_time.unwrap();

    // Deleted: new credentials, reason SecretRecreated, a Warning.
    env.secrets()
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    let app = env
        .wait_app("app", "recreated", |a| revision(a) == Some(2))
        .await;
    assert_eq!(
        app.status.unwrap().rotation.last_rotation_reason,
        Some(RotationReason::SecretRecreated)
    );
    let recreated = env.secret_data("app").await;
    assert_ne!(recreated["app_secret"], first["app_secret"]);
    let event = env.wait_event("app", "SecretRecreated").await;
    assert_eq!(event.0, "Warning");

    // Edited with valid values: kept, SecretEdited, updateTime moves.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let edit = |value: &str| json!({"data": {"app_secret": base64(value)}});
    env.secrets()
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(edit("Hand-Edited-Value-1")),
        )
        .await
        .unwrap();
    env.wait_event("app", "SecretEdited").await;
    let app = env
        .wait_app("app", "updateTime moved", |a| {
            a.status
                .as_ref()
                .and_then(|s| s.update_time.clone())
                .is_some_and(|t| t.0 > update_time.0)
        })
        .await;
    assert_eq!(revision(&app), Some(2));
    assert_eq!(
        env.secret_data("app").await["app_secret"],
        "Hand-Edited-Value-1"
    );

    // Edited with an invalid value: InvalidSecretData, not overwritten.
    env.secrets()
        .patch("app", &PatchParams::default(), &Patch::Merge(edit("no")))
        .await
        .unwrap();
    let app = env
        .wait_app("app", "InvalidSecretData", reason_is("InvalidSecretData"))
        .await;
    let message = ready(&app).unwrap().2;
    assert!(
        message.contains("app_secret") && message.contains("8–64 characters"),
        "{message}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.secret_data("app").await["app_secret"], "no");
    env.wait_event("app", "InvalidSecretData").await;

    // Fixed by hand: Ready again, with the fixed value.
    env.secrets()
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(edit("Fixed-By-Hand-2")),
        )
        .await
        .unwrap();
    env.wait_app("app", "Ready again", is_ready).await;
    assert_eq!(
        env.secret_data("app").await["app_secret"],
        "Fixed-By-Hand-2"
    );
}

/// A pass must never decide on a status older than the one keysmith itself
/// last wrote, even when its watch has not shown that write yet. Here each
/// output Secret is deleted the moment it appears: the pass that deleting
/// it triggers runs as soon as the first pass has written its status, before
/// the watch can show that status. It must see a recreation (revision 2,
/// SecretRecreated, a Warning), never a second first issue (revision 1
/// again with new values and nothing said).
#[tokio::test]
async fn a_secret_deleted_as_it_is_first_issued_is_recreated_not_issued_again() {
    needs_control_plane!();
    let env = Env::new("lag").await;
    let names: Vec<String> = (0..8).map(|i| format!("app-{i}")).collect();
    let deleter = tokio::spawn(delete_each_secret_once(env.secrets(), names.clone()));
    for name in &names {
        env.create_app(name, json!({})).await;
    }
    tokio::time::timeout(TIMEOUT, deleter)
        .await
        .expect("every Secret appeared")
        .unwrap();
    for name in &names {
        let app = env
            .wait_app(name, "recreated as revision 2", |a| revision(a) == Some(2))
            .await;
        assert_eq!(
            app.status.unwrap().rotation.last_rotation_reason,
            Some(RotationReason::SecretRecreated),
            "{name}"
        );
        env.wait_event(name, "SecretRecreated").await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for app in env.apps().list(&ListParams::default()).await.unwrap() {
        assert_eq!(
            revision(&app),
            Some(2),
            "{}: recreated once",
            app.name_any()
        );
    }
}

/// Deletes each of `names`' Secrets as soon as the watch shows it.
async fn delete_each_secret_once(secrets: Api<Secret>, names: Vec<String>) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, watcher};
    let mut waiting: std::collections::BTreeSet<String> = names.into_iter().collect();
    let stream = watcher(secrets.clone(), watcher::Config::default()).applied_objects();
    let mut stream = std::pin::pin!(stream);
    while let Some(secret) = stream.next().await {
        let name = secret.expect("the Secret watch").name_any();
        if waiting.remove(&name) {
            secrets
                .delete(&name, &DeleteParams::default())
                .await
                .unwrap();
            if waiting.is_empty() {
                return;
            }
        }
    }
}

#[tokio::test]
async fn bad_secret_sources_block_without_leaking_and_recover() {
    needs_control_plane!();
    let env = Env::new("source").await;
    env.create_app(
        "app",
        json!({"appSecretFrom": {"secretKeyRef": {"name": "byo", "key": "secret"}}}),
    )
    .await;
    let app = env
        .wait_app("app", "InvalidSecretFrom", reason_is("InvalidSecretFrom"))
        .await;
    assert!(ready(&app).unwrap().2.contains("Secret byo does not exist"));
    assert!(env.secrets().get_opt("app").await.unwrap().is_none());
    env.wait_event("app", "InvalidSecretFrom").await;

    env.create_secret("byo", &[("other", "x")]).await;
    env.wait_app("app", "key missing", |a| {
        ready(a).is_some_and(|r| r.2.contains("has no such key"))
    })
    .await;

    env.secrets()
        .patch(
            "byo",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"secret": base64("Zq#bad value")}})),
        )
        .await
        .unwrap();
    let app = env
        .wait_app("app", "value breaks the rule", |a| {
            ready(a).is_some_and(|r| {
                r.2.contains("key secret of Secret byo") && r.2.contains("AppSecret")
            })
        })
        .await;
    assert!(
        !ready(&app).unwrap().2.contains("Zq#bad"),
        "never the value"
    );

    env.secrets()
        .patch(
            "byo",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"secret": base64("Good-Value-2026")}})),
        )
        .await
        .unwrap();
    env.wait_app("app", "Ready once fixed", is_ready).await;
    assert_eq!(
        env.secret_data("app").await["app_secret"],
        "Good-Value-2026"
    );

    // A changed source value is propagated.
    env.secrets()
        .patch(
            "byo",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"secret": base64("Newer-Value-2027")}})),
        )
        .await
        .unwrap();
    let app = env
        .wait_app("app", "propagated", |a| revision(a) == Some(2))
        .await;
    assert_eq!(
        app.status.unwrap().rotation.last_rotation_reason,
        Some(RotationReason::SecretFromChanged)
    );
    assert_eq!(
        env.secret_data("app").await["app_secret"],
        "Newer-Value-2027"
    );
    assert!(!env.operator.logs().contains("Good-Value-2026"));
}

#[tokio::test]
async fn a_crash_between_secret_and_status_is_completed_without_rotating_again() {
    needs_control_plane!();
    let mut env = Env::new("crash").await;
    env.create_app("app", json!({"resetRequest": "one"})).await;
    env.wait_app("app", "Ready", is_ready).await;
    env.operator.stop();

    // Prepare exactly the state a crash leaves: the Secret carries revision 2
    // for reset "two" (written first), the status still says revision 1.
    let mut secret = env.secrets().get("app").await.unwrap();
    let annotations = secret.metadata.annotations.get_or_insert_default();
    annotations.insert(annotations::REVISION.into(), "2".into());
    annotations.insert("keysmith.dev/rotation-reason".into(), "ResetRequest".into());
    annotations.insert("keysmith.dev/observed-reset-request".into(), "two".into());
    secret.data.get_or_insert_default().insert(
        "app_secret".into(),
        ByteString(b"Written-Before-Crash-1".to_vec()),
    );
    // Sealed as keysmith seals what it writes (its key is in its own Secret).
    let seal = seal_as_keysmith(&env, &secret).await;
    secret
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(annotations::SEAL.into(), seal);
    // Applied whole, as keysmith's own field manager wrote it.
    secret.metadata.managed_fields = None;
    secret.metadata.resource_version = None;
    secret.metadata.uid = None;
    secret.metadata.creation_timestamp = None;
    env.secrets()
        .patch(
            "app",
            &PatchParams::apply("keysmith").force(),
            &Patch::Apply(&secret),
        )
        .await
        .unwrap();
    env.patch_app("app", json!({"spec": {"resetRequest": "two"}}))
        .await;
    assert_eq!(revision(&env.apps().get("app").await.unwrap()), Some(1));

    env.operator.restart();
    let app = env
        .wait_app("app", "status completed", |a| revision(a) == Some(2))
        .await;
    let status = app.status.unwrap();
    assert_eq!(
        status.rotation.observed_reset_request.as_deref(),
        Some("two")
    );
    assert_eq!(
        status.rotation.last_rotation_reason,
        Some(RotationReason::ResetRequest)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        env.secret_data("app").await["app_secret"],
        "Written-Before-Crash-1",
        "not rotated again"
    );
    assert_eq!(revision(&env.apps().get("app").await.unwrap()), Some(2));
}

/// The seal keysmith would write on `secret` (an output Secret of a
/// GatewayApp): its key from keysmith's own Secret, bound to the owner uid.
async fn seal_as_keysmith(env: &Env, secret: &Secret) -> String {
    use keysmith::engine::seal;
    let keys: Api<Secret> = Api::namespaced(env.client.clone(), "default");
    let material = keys.get("keysmith-record-key").await.unwrap().data.unwrap();
    let key = keysmith::engine::RecordKey::new(&material["key"].0).unwrap();
    let annotations = secret.annotations();
    let at = seal::Binding {
        owner_uid: &annotations[annotations::OWNER_UID],
        secret_name: &secret.name_any(),
    };
    let data: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).unwrap()))
        .collect();
    let values: BTreeMap<&str, &str> = ["app_key", "app_secret", "app_secret_previous"]
        .into_iter()
        .filter_map(|k| Some((k, data.get(k)?.as_str())))
        .collect();
    let record = keysmith::engine::snapshot::record_annotations(annotations);
    seal::seal(&key, &at, &values, &record)
}

async fn resource_versions(env: &Env) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for app in env.apps().list(&ListParams::default()).await.unwrap() {
        out.insert(
            format!("app/{}", app.name_any()),
            app.resource_version().unwrap(),
        );
    }
    for key in env.keys().list(&ListParams::default()).await.unwrap() {
        out.insert(
            format!("key/{}", key.name_any()),
            key.resource_version().unwrap(),
        );
    }
    for secret in env.secrets().list(&ListParams::default()).await.unwrap() {
        out.insert(
            format!("secret/{}", secret.name_any()),
            secret.resource_version().unwrap(),
        );
    }
    out
}

#[tokio::test]
async fn once_ready_a_restart_and_forced_reconciles_write_nothing() {
    needs_control_plane!();
    let mut env = Env::new("idle").await;
    env.create_app(
        "app-one",
        json!({"rotation": {"interval": "720h", "keepPrevious": "1h"}}),
    )
    .await;
    env.create_app("app-two", json!({"appKey": "idle-key-0001", "secret": {"name": "custom-name", "deletionPolicy": "Retain"}}))
        .await;
    env.create_key(
        "key-one",
        json!({"signType": "aes", "signAlgorithm": "aes-256-cfb"}),
    )
    .await;
    env.create_key("key-two", json!({"signType": "basic"}))
        .await;
    for name in ["app-one", "app-two"] {
        env.wait_app(name, "Ready", is_ready).await;
    }
    for name in ["key-one", "key-two"] {
        env.wait_key(name, "Ready", is_ready).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = resource_versions(&env).await;

    // A restart reconciles everything from scratch.
    env.operator.restart();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        resource_versions(&env).await,
        before,
        "a restart wrote something"
    );

    // Secret metadata changes force reconciles of their owners.
    for secret in ["app-one", "custom-name", "key-one", "key-two"] {
        env.secrets()
            .patch(
                secret,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
            )
            .await
            .unwrap();
    }
    let touched = resource_versions(&env).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        resource_versions(&env).await,
        touched,
        "a forced reconcile wrote something"
    );
    let logs = env.operator.logs();
    assert!(
        logs.contains("reconciling object"),
        "the touches did trigger reconciles"
    );
}

#[tokio::test]
async fn no_secret_value_reaches_logs_events_or_objects() {
    needs_control_plane!();
    let mut env = Env::new("leak").await;
    let custom_secret = "Custom-Leak-Canary-77";
    let custom_sign_secret = "Sign-Leak-Canary-0123456789";
    env.create_secret("byo", &[("secret", custom_secret)]).await;
    env.create_secret("byo-sign", &[("secret", custom_sign_secret)])
        .await;
    env.create_app("gen", json!({"rotation": {"keepPrevious": "1h"}}))
        .await;
    env.create_app(
        "custom",
        json!({"appSecretFrom": {"secretKeyRef": {"name": "byo", "key": "secret"}}}),
    )
    .await;
    env.create_key("sig", json!({"signType": "basic"})).await;
    env.create_key(
        "sig-custom",
        json!({"signSecretFrom": {"secretKeyRef": {"name": "byo-sign", "key": "secret"}}}),
    )
    .await;
    for name in ["gen", "custom"] {
        env.wait_app(name, "Ready", is_ready).await;
    }
    for name in ["sig", "sig-custom"] {
        env.wait_key(name, "Ready", is_ready).await;
    }
    // Exercise more paths: a reset with overlap, an invalid source, a restart.
    env.patch_app("gen", json!({"spec": {"resetRequest": "leak-1"}}))
        .await;
    env.wait_app("gen", "reset", |a| revision(a) == Some(2))
        .await;
    env.secrets()
        .patch(
            "byo",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"secret": base64("Bad Canary Value")}})),
        )
        .await
        .unwrap();
    env.wait_app(
        "custom",
        "InvalidSecretFrom",
        reason_is("InvalidSecretFrom"),
    )
    .await;
    env.operator.restart();
    tokio::time::sleep(Duration::from_secs(3)).await;
    env.operator.stop();

    let mut values: Vec<String> = vec![
        custom_secret.into(),
        custom_sign_secret.into(),
        "Bad Canary Value".into(),
    ];
    for (secret, keys) in [
        ("gen", &["app_secret", "app_secret_previous"][..]),
        ("custom", &["app_secret"][..]),
        ("sig", &["sign_secret"][..]),
        ("sig-custom", &["sign_secret"][..]),
    ] {
        let data = env.secret_data(secret).await;
        for key in keys {
            values.push(
                data.get(*key)
                    .unwrap_or_else(|| panic!("{secret} has {key}"))
                    .clone(),
            );
        }
    }
    leak::assert_no_leak(&env.operator.logs(), &env.client, &env.ns, &values).await;
}

#[tokio::test]
async fn a_source_is_read_only_when_it_opts_in() {
    needs_control_plane!();
    let env = Env::new("optin").await;
    env.create_secret_with("plain", &[("secret", "Not-Opted-In-2026")], &[], &[])
        .await;
    env.create_app(
        "copier",
        json!({"appSecretFrom": {"secretKeyRef": {"name": "plain", "key": "secret"}}}),
    )
    .await;
    let app = env
        .wait_app("copier", "SourceNotAllowed", reason_is("SourceNotAllowed"))
        .await;
    let message = ready(&app).unwrap().2;
    assert!(message.contains("Secret plain"), "{message}");
    assert!(message.contains("keysmith.dev/allow-source"), "{message}");
    env.wait_event("copier", "SourceNotAllowed").await;
    assert!(
        env.secrets().get_opt("copier").await.unwrap().is_none(),
        "nothing copied"
    );

    // The label opts in as well as the annotation; the watch notices.
    env.secrets()
        .patch(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"keysmith.dev/allow-source": "true"}}})),
        )
        .await
        .unwrap();
    env.wait_app("copier", "Ready once opted in", is_ready)
        .await;
    assert_eq!(
        env.secret_data("copier").await["app_secret"],
        "Not-Opted-In-2026"
    );
    leak::assert_no_leak(
        &env.operator.logs(),
        &env.client,
        &env.ns,
        &["Not-Opted-In-2026".to_string()],
    )
    .await;
}

#[tokio::test]
async fn a_secret_that_only_looks_like_keysmiths_is_never_adopted() {
    needs_control_plane!();
    let env = Env::new("forged").await;
    // keysmith's labels for the resource about to be created, chosen values.
    env.create_secret_with(
        "forged",
        &[
            ("app_key", "attacker-chosen-key"),
            ("app_secret", "Attacker-Chosen-Secret-1"),
        ],
        &[(annotations::REVISION, "1")],
        &[
            (labels::MANAGED_BY, labels::MANAGED_BY_VALUE),
            (labels::GATEWAY_APP, "forged"),
        ],
    )
    .await;
    let before = env.secrets().get("forged").await.unwrap();
    env.create_app("forged", json!({})).await;
    let app = env
        .wait_app("forged", "SecretConflict", reason_is("SecretConflict"))
        .await;
    assert!(app.status.unwrap().app_key.is_none(), "nothing adopted");
    let after = env.secrets().get("forged").await.unwrap();
    assert_eq!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );

    // The uid of another resource does not make it ours either.
    env.create_secret_with(
        "other-uid",
        &[("app_key", "attacker-chosen-key2")],
        &[(
            annotations::OWNER_UID,
            "00000000-0000-0000-0000-000000000000",
        )],
        &[
            (labels::MANAGED_BY, labels::MANAGED_BY_VALUE),
            (labels::GATEWAY_APP, "other-uid"),
        ],
    )
    .await;
    env.create_app("other-uid", json!({})).await;
    env.wait_app("other-uid", "SecretConflict", reason_is("SecretConflict"))
        .await;
}

#[tokio::test]
async fn every_valid_name_gets_credentials_even_one_too_long_for_a_label() {
    needs_control_plane!();
    let env = Env::new("longname").await;
    let name = format!("{}.{}", "a".repeat(120), "b".repeat(120));
    env.create_app(&name, json!({"appName": "long_named_app"}))
        .await;
    env.wait_app(&name, "Ready", is_ready).await;
    let secret = env.secrets().get(&name).await.unwrap();
    let owner = &secret.labels()[labels::GATEWAY_APP];
    assert!(owner.len() <= 63, "{owner}");
    assert_eq!(secret.annotations()[annotations::OWNER_NAME], name);

    // The Secret's owner is found from the Secret: deleting it reissues.
    env.secrets()
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    env.wait_app(&name, "reissued", |app| revision(app) == Some(2))
        .await;
}

#[tokio::test]
async fn a_write_the_apiserver_refuses_is_reported_on_the_resource_without_a_retry_storm() {
    needs_control_plane!();
    let env = Env::new("refused").await;
    policy::refuse_labelled_secrets(&env.client, &env.ns).await;

    env.create_app(
        "refused",
        json!({"secret": {"labels": {"keysmith-test/refuse": "yes"}}}),
    )
    .await;
    let app = env
        .wait_app("refused", "SecretRefused", reason_is("SecretRefused"))
        .await;
    let message = ready(&app).unwrap().2;
    assert!(message.contains("refused by policy"), "{message}");
    assert!(message.contains("Secret refused"), "{message}");
    env.wait_event("refused", "SecretRefused").await;

    // No retry storm: over 8 s, at most a couple more passes.
    let count = || {
        let metrics = env
            .operator
            .http_get(env.operator.metrics_port, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default();
        metrics
            .lines()
            .find(|l| l.starts_with("keysmith_reconciles_total{kind=\"GatewayApp\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = count();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = count();
    assert!(
        after - before <= 2.0,
        "{before} -> {after} reconciles: a retry loop"
    );

    // A change to the resource is tried at once, and recovers.
    env.patch_app("refused", json!({"spec": {"secret": {"labels": null}}}))
        .await;
    env.wait_app("refused", "Ready after the fix", is_ready)
        .await;
}

#[tokio::test]
async fn a_secret_left_behind_by_retain_is_taken_over_only_with_both_sides_consent() {
    needs_control_plane!();
    let env = Env::new("adopt").await;
    env.create_app("kept", json!({"secret": {"deletionPolicy": "Retain"}}))
        .await;
    env.wait_app("kept", "Ready", is_ready).await;
    let issued = env.secret_data("kept").await;
    env.apps()
        .delete("kept", &DeleteParams::default())
        .await
        .unwrap();
    let logs = || support::env::tail(&env.operator.logs());
    support::wait::gone(&env.apps(), "kept", TIMEOUT, logs).await;

    // A new resource of the same name does not take it over by itself...
    env.create_app("kept", json!({"secret": {"deletionPolicy": "Retain"}}))
        .await;
    let app = env
        .wait_app("kept", "SecretConflict", reason_is("SecretConflict"))
        .await;
    let message = ready(&app).unwrap().2;
    assert!(
        message.contains("keysmith.dev/adopt-secret=true"),
        "{message}"
    );
    assert!(message.contains("keysmith.dev/adopt=true"), "{message}");
    assert_eq!(env.secret_data("kept").await, issued, "left untouched");

    // ...nor when it asks alone (SPEC §10: the Secret itself must consent,
    // or anyone who may create a resource of that name takes it)...
    env.apps()
        .patch(
            "kept",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {(annotations::ADOPT_SECRET): "true"}}}),
            ),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let app = env
        .wait_app("kept", "still SecretConflict", reason_is("SecretConflict"))
        .await;
    assert!(app.status.unwrap().app_key.is_none(), "nothing adopted");
    assert_eq!(env.secret_data("kept").await, issued, "left untouched");

    // ...only when the Secret opts in too; then it keeps the (valid) credentials.
    env.secrets()
        .patch(
            "kept",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {(annotations::ADOPT): "true"}}})),
        )
        .await
        .unwrap();
    let app = env.wait_app("kept", "Ready after adopting", is_ready).await;
    let uid = app.metadata.uid.clone();
    let data = env.secret_data("kept").await;
    assert_eq!(data["app_key"], issued["app_key"]);
    assert_eq!(data["app_secret"], issued["app_secret"]);
    assert_eq!(
        app.status.unwrap().app_key.as_deref(),
        Some(issued["app_key"].as_str())
    );
    let secret = env.secrets().get("kept").await.unwrap();
    assert_eq!(
        secret.annotations().get(annotations::OWNER_UID),
        uid.as_ref(),
        "now carries the new owner's identity"
    );
}
