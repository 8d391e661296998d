//! AppKey uniqueness across namespaces (SPEC §5 as amended), with one
//! operator watching every namespace: this test binary's control plane holds
//! nothing else. The holder of an issued AppKey keeps it, however old the
//! claimant, and a claimant in another namespace learns nothing about it.

mod support;

use std::time::Duration;

use keysmith::api::GatewayApp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use support::conditions::{is_ready, ready, reason_is};
use support::control_plane;
use support::env::SETTLE;
use support::operator::Operator;
use support::wait::{self, tail};

async fn apply(apps: &Api<GatewayApp>, name: &str, spec: serde_json::Value) {
    let app = json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
        "metadata": {"name": name}, "spec": spec,
    });
    apps.patch(
        name,
        &PatchParams::apply("keysmith-tests"),
        &Patch::Apply(&app),
    )
    .await
    .unwrap();
}

async fn wait(
    apps: &Api<GatewayApp>,
    operator: &Operator,
    name: &str,
    what: &str,
    check: impl Fn(&GatewayApp) -> bool,
) -> GatewayApp {
    wait::until(apps, name, what, SETTLE, check, || tail(&operator.logs())).await
}

/// Hole 4: editing a long-existing resource in another namespace to claim
/// an AppKey that a newer resource already uses took the key away (the
/// older by creation time won), and the message named the holder.
#[tokio::test]
async fn an_issued_appkey_is_never_squatted_from_another_namespace() {
    if control_plane::skipped() {
        return;
    }
    let client = control_plane::client().await;
    let tenant = control_plane::namespace(&client, "tenant").await;
    let squatter = control_plane::namespace(&client, "squatter").await;
    let operator = Operator::start_cluster_wide(control_plane::control_plane());
    let theirs: Api<GatewayApp> = Api::namespaced(client.clone(), &squatter);
    let ours: Api<GatewayApp> = Api::namespaced(client.clone(), &tenant);

    // The squatter's resource is older.
    apply(&theirs, "old", json!({})).await;
    wait(&theirs, &operator, "old", "Ready", is_ready).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let key = "tenant-key-0001";
    apply(&ours, "holder", json!({"appKey": key})).await;
    wait(&ours, &operator, "holder", "Ready", is_ready).await;

    // The squat: the older resource claims the issued key.
    apply(&theirs, "old", json!({"appKey": key})).await;
    let conflict = reason_is("AppKeyConflict");
    let refused = wait(&theirs, &operator, "old", "AppKeyConflict", &conflict).await;
    let message = ready(&refused).unwrap().2;
    assert!(message.contains("another GatewayApp"), "{message}");
    assert!(
        !message.contains(&tenant) && !message.contains("holder"),
        "{message}"
    );
    for _ in 0..20 {
        let holder = ours.get("holder").await.unwrap();
        assert!(
            is_ready(&holder),
            "the holder keeps it: {:?}",
            ready(&holder)
        );
        assert_eq!(holder.status.unwrap().app_key.as_deref(), Some(key));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }

    // In one namespace the holder is named.
    apply(&ours, "newcomer", json!({"appKey": key})).await;
    let refused = wait(&ours, &operator, "newcomer", "AppKeyConflict", &conflict).await;
    let message = ready(&refused).unwrap().2;
    assert!(message.contains(&format!("{tenant}/holder")), "{message}");
}
