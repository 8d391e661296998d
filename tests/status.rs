//! `status.conditions` is shared: keysmith owns only its own condition
//! types (a map list keyed by `type`, Kubernetes API conventions), so a
//! condition another writer adds survives keysmith's status writes, and
//! keysmith never takes it over.

mod support;

use keysmith::api::GatewayApp;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::conditions::find_condition;
use support::control_plane;
use support::env::Env;

fn ready_at(app: &GatewayApp, revision: i64) -> bool {
    find_condition(app, "Ready").is_some_and(|c| c.status == "True")
        && app.status.as_ref().and_then(|s| s.rotation.revision) == Some(revision)
}

/// What the `policy-engine` field manager owns in the status, per managedFields.
fn owned_condition_types(app: &GatewayApp, manager: &str) -> Vec<String> {
    let mut types = Vec::new();
    for entry in app.managed_fields() {
        if entry.manager.as_deref() != Some(manager)
            || entry.subresource.as_deref() != Some("status")
        {
            continue;
        }
        let fields = entry
            .fields_v1
            .as_ref()
            .map(|f| f.0.to_string())
            .unwrap_or_default();
        for (i, _) in fields.match_indices("k:{\\\"type\\\":\\\"") {
            let rest = &fields[i + "k:{\\\"type\\\":\\\"".len()..];
            types.push(rest.split('\\').next().unwrap_or_default().to_string());
        }
    }
    types.sort();
    types
}

async fn apply_policy_condition(env: &Env, name: &str, status: &str) {
    let uid = env.app(name).await.uid();
    let patch = json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
        "metadata": {"name": name, "uid": uid},
        "status": {"conditions": [{
            "type": "PolicyCompliant", "status": status, "reason": "Checked",
            "message": "checked by the policy engine",
            "lastTransitionTime": "2026-01-01T00:00:00Z"
        }]}
    });
    // Not forced: before conditions were a map, keysmith owned the whole
    // list and this apply was refused as a conflict.
    env.apps()
        .patch_status(
            name,
            &PatchParams::apply("policy-engine"),
            &Patch::Apply(&patch),
        )
        .await
        .unwrap_or_else(|e| panic!("the policy engine's condition on {name}: {e}"));
}

#[tokio::test]
async fn a_condition_another_writer_adds_survives_keysmiths_status_writes() {
    if control_plane::skipped() {
        return;
    }
    let env = Env::new("conditions").await;
    env.apply_app("shared", json!({})).await;
    env.wait_app("shared", "issued", |a| ready_at(a, 1)).await;

    apply_policy_condition(&env, "shared", "True").await;
    for revision in 2..=4 {
        env.reset("shared", &format!("r{revision}")).await;
        let app = env
            .wait_app("shared", "reset and still shared", |a| {
                ready_at(a, revision)
            })
            .await;
        let theirs = find_condition(&app, "PolicyCompliant").unwrap_or_else(|| {
            panic!(
                "keysmith's status write {revision} removed the other writer's condition: {:#?}",
                app.status
            )
        });
        assert_eq!(theirs.status, "True");
        assert_eq!(
            owned_condition_types(&app, "policy-engine"),
            ["PolicyCompliant"]
        );
        assert_eq!(
            owned_condition_types(&app, "keysmith"),
            ["Ready"],
            "keysmith owns only its own conditions"
        );
    }

    // The other writer changes its condition; keysmith's next write keeps the change.
    apply_policy_condition(&env, "shared", "False").await;
    env.reset("shared", "r5").await;
    let app = env
        .wait_app("shared", "reset again", |a| ready_at(a, 5))
        .await;
    assert_eq!(
        find_condition(&app, "PolicyCompliant").map(|c| c.status.as_str()),
        Some("False")
    );
}
