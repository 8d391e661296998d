//! AppKey uniqueness across namespaces (SPEC §5 as amended), with one
//! operator watching every namespace: this test binary's control plane holds
//! nothing else. The holder of an issued AppKey keeps it, however old the
//! claimant, and a claimant in another namespace learns nothing about it.

mod support;

use std::time::Duration;

use keysmith::api::GatewayApp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use support::control_plane;
use support::env::{SETTLE, tail};
use support::operator::Operator;

fn ready(app: &GatewayApp) -> Option<(String, String, String)> {
    let conditions = &app.status.as_ref()?.rotation.conditions;
    let c = conditions.iter().find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

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
    check: impl Fn(&GatewayApp) -> bool,
) -> GatewayApp {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let app = apps.get(name).await.unwrap();
        if check(&app) {
            return app;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}: {:#?}\n{}",
            app.status,
            tail(&operator.logs())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let is_ready = |a: &GatewayApp| ready(a).is_some_and(|r| r.0 == "True");

    // The squatter's resource is older.
    apply(&theirs, "old", json!({})).await;
    wait(&theirs, &operator, "old", is_ready).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let key = "tenant-key-0001";
    apply(&ours, "holder", json!({"appKey": key})).await;
    wait(&ours, &operator, "holder", is_ready).await;

    // The squat: the older resource claims the issued key.
    apply(&theirs, "old", json!({"appKey": key})).await;
    let refused = wait(&theirs, &operator, "old", |a| {
        ready(a).is_some_and(|r| r.1 == "AppKeyConflict")
    })
    .await;
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
    let refused = wait(&ours, &operator, "newcomer", |a| {
        ready(a).is_some_and(|r| r.1 == "AppKeyConflict")
    })
    .await;
    let message = ready(&refused).unwrap().2;
    assert!(message.contains(&format!("{tenant}/holder")), "{message}");
}
