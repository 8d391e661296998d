//! Uninstalling keysmith the way the README says — deleting its CRDs —
//! deletes every GatewayApp and SignatureKey and, through their owner
//! references, the Secrets they own (`deletionPolicy: Delete`); `Retain`
//! Secrets stay. Its own test binary: it removes the CRDs of its control
//! plane.
//!
//! As in a real cluster, the CRDs exist for a while before they are deleted:
//! the garbage collector watches a kind only after its discovery resync (every
//! 30 s) has seen it, and a dependent whose owner's kind is gone before then
//! is never collected (a Kubernetes limitation, not keysmith's).

mod support;

use support::{control_plane, operator};

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use keysmith::api::*;
use kube::api::{Api, DeleteParams, PostParams};
use operator::Operator;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn deleting_the_crds_removes_the_resources_and_the_secrets_they_own() {
    if control_plane::skipped() {
        return;
    }
    let client = control_plane::client().await;
    let crds_installed = tokio::time::Instant::now();
    let ns = control_plane::namespace(&client, "uninstall").await;
    let operator = Operator::start(control_plane::control_plane(), &ns);
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), &ns);
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), &ns);
    for (name, spec) in [
        ("owned", json!({})),
        ("kept", json!({"secret": {"deletionPolicy": "Retain"}})),
    ] {
        let app: GatewayApp = serde_json::from_value(json!({
            "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        apps.create(&PostParams::default(), &app).await.unwrap();
    }
    let key: SignatureKey = serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "SignatureKey",
        "metadata": {"name": "signing"}, "spec": {}
    }))
    .unwrap();
    keys.create(&PostParams::default(), &key).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    for name in ["owned", "kept", "signing"] {
        while secrets.get_opt(name).await.unwrap().is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} not issued:\n{}",
                operator.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // The garbage collector's discovery resync (30 s) has seen the kinds.
    tokio::time::sleep_until(crds_installed + Duration::from_secs(35)).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ["gatewayapps.keysmith.dev", "signaturekeys.keysmith.dev"] {
        crds.delete(crd, &DeleteParams::default()).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let crds_gone = crds
            .get_opt("gatewayapps.keysmith.dev")
            .await
            .unwrap()
            .is_none()
            && crds
                .get_opt("signaturekeys.keysmith.dev")
                .await
                .unwrap()
                .is_none();
        let owned_gone = secrets.get_opt("owned").await.unwrap().is_none()
            && secrets.get_opt("signing").await.unwrap().is_none();
        if crds_gone && owned_gone {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "uninstall did not finish: CRDs gone {crds_gone}, owned Secrets gone {owned_gone}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        secrets.get_opt("kept").await.unwrap().is_some(),
        "a Retain Secret outlives its resource"
    );
}
