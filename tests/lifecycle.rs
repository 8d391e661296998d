//! Lifecycles that only a control plane with kube-controller-manager shows:
//! the garbage collector removing a `Delete` Secret (not keysmith: it is
//! stopped first, and it never deletes), a `Retain` Secret staying, and a
//! namespace full of keysmith resources being deleted while keysmith runs.

mod support;

use support::needs_control_plane;
use support::{control_plane, operator, wait};

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Secret};
use keysmith::api::*;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};
use operator::Operator;
use serde_json::json;

// Namespace deletion on a busy 2-core machine can take tens of seconds.
const TIMEOUT: Duration = Duration::from_secs(150);

async fn create_app(client: &Client, ns: &str, name: &str, spec: serde_json::Value) {
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    let app: GatewayApp = serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap();
    apps.create(&PostParams::default(), &app).await.unwrap();
}

async fn create_key(client: &Client, ns: &str, name: &str) {
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), ns);
    let key: SignatureKey = serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "SignatureKey",
        "metadata": {"name": name}, "spec": {}
    }))
    .unwrap();
    keys.create(&PostParams::default(), &key).await.unwrap();
}

/// Polls `check` until it holds or the timeout passes (then fails with
/// `what` and the operator's log).
async fn eventually<F, Fut>(what: &str, operator: Option<&Operator>, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let logs = || operator.map(|o| o.logs()).unwrap_or_default();
    wait::eventually(what, TIMEOUT, logs, check).await;
}

async fn secret_exists(client: &Client, ns: &str, name: &str) -> bool {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    secrets.get_opt(name).await.unwrap().is_some()
}

#[tokio::test]
async fn the_garbage_collector_removes_delete_secrets_and_keeps_retain_ones() {
    needs_control_plane!();
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "gc").await;
    let mut operator = Operator::start(control_plane::control_plane(), &ns);
    create_app(&client, &ns, "owned", json!({})).await;
    create_app(
        &client,
        &ns,
        "kept",
        json!({"secret": {"deletionPolicy": "Retain"}}),
    )
    .await;
    eventually("both Secrets issued", Some(&operator), || async {
        secret_exists(&client, &ns, "owned").await && secret_exists(&client, &ns, "kept").await
    })
    .await;

    // keysmith is stopped: whatever removes a Secret now is the garbage collector.
    operator.stop();
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), &ns);
    for name in ["owned", "kept"] {
        apps.delete(name, &DeleteParams::default()).await.unwrap();
    }
    eventually("the Delete Secret collected", None, || async {
        !secret_exists(&client, &ns, "owned").await
    })
    .await;
    // The collector has acted on this namespace; the Retain Secret stays.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(secret_exists(&client, &ns, "kept").await);
}

#[tokio::test]
async fn a_namespace_full_of_keysmith_resources_is_deleted_while_keysmith_runs() {
    needs_control_plane!();
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "nsdelete").await;
    let operator = Operator::start(control_plane::control_plane(), &ns);
    for i in 0..10 {
        create_app(&client, &ns, &format!("app-{i}"), json!({})).await;
        create_key(&client, &ns, &format!("key-{i}")).await;
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    eventually("20 Secrets issued", Some(&operator), || async {
        secrets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len()
            >= 20
    })
    .await;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    eventually("the namespace gone", Some(&operator), || async {
        namespaces.get_opt(&ns).await.unwrap().is_none()
    })
    .await;
    assert!(
        !operator.logs().contains("\"level\":\"ERROR\""),
        "keysmith logged errors while its namespace went away"
    );
    drop(operator);
    // Nothing of it survives, and nothing was recreated by keysmith.
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), &ns);
    assert!(
        apps.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let left: Vec<String> = secrets
        .list(&ListParams::default())
        .await
        .unwrap()
        .iter()
        .map(|s| s.name_any())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
