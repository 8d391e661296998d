//! Faults (SPEC section 8): the operator SIGKILLed at random moments while
//! issuing and resetting, other clients writing the same objects, and a leak
//! scan over the whole run. Control-plane restarts live in
//! `tests/faults_restart.rs` (they would disturb the other tests here).
//!
//! Sizes: `KEYSMITH_FAULT_RESOURCES` (default 60) and `KEYSMITH_FAULT_KILLS`
//! (default 20). The full size of SPEC section 8 is
//! `KEYSMITH_FAULT_RESOURCES=1000 KEYSMITH_FAULT_KILLS=40 cargo test --test faults`
//! (with `KUBEBUILDER_ASSETS` from `scripts/provision`).

mod support;

use support::needs_control_plane;
use support::{control_plane, faults, leak, operator};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faults::*;
use keysmith::api::names::labels;
use keysmith::api::*;
use kube::api::{Api, Patch, PatchParams};
use leak::assert_no_leak;
use operator::Operator;
use rand::RngExt;
use serde_json::json;

fn env_size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test]
async fn sigkill_at_random_moments_loses_nothing_and_rotates_nothing_twice() {
    needs_control_plane!();
    let count = env_size("KEYSMITH_FAULT_RESOURCES", 60);
    let kills = env_size("KEYSMITH_FAULT_KILLS", 20);
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "sigkill").await;
    let cp = control_plane::control_plane();
    let seen = SecretValues::watch(client.clone(), &ns);
    let mut operator = Operator::start(cp, &ns);
    let names = create_resources(&client, &ns, count).await;

    // Resets on a third of the resources while the operator keeps dying.
    let resets: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let resetter = {
        let (client, ns, names, resets) =
            (client.clone(), ns.clone(), names.clone(), resets.clone());
        tokio::spawn(async move {
            for round in 0..4 {
                for (i, (is_app, name)) in names.iter().enumerate() {
                    if i % 3 != 0 {
                        continue;
                    }
                    let patch = json!({"spec": {"resetRequest": format!("reset-{round}")}});
                    let result = if *is_app {
                        Api::<GatewayApp>::namespaced(client.clone(), &ns)
                            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                            .map(|_| ())
                    } else {
                        Api::<SignatureKey>::namespaced(client.clone(), &ns)
                            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await
                            .map(|_| ())
                    };
                    result.expect("reset patch");
                    *resets.lock().unwrap().entry(name.clone()).or_default() += 1;
                }
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
        })
    };
    for _ in 0..kills {
        let wait = rand::rng().random_range(50..600);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        operator.kill();
        operator.restart();
    }
    resetter.await.unwrap();

    let expected_reset: BTreeMap<String, String> = resets
        .lock()
        .unwrap()
        .keys()
        .map(|n| (n.clone(), "reset-3".to_string()))
        .collect();
    let states = wait_converged(
        &client,
        &ns,
        &names,
        &expected_reset,
        Duration::from_secs(120),
    )
    .await;
    // Let anything in flight land, then judge.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let values = seen.snapshot();
    let resets = resets.lock().unwrap().clone();
    for (name, state) in &states {
        let requested = resets.get(name).copied().unwrap_or(0) as i64;
        assert!(
            state.revision >= 1 && state.revision <= 1 + requested,
            "{name}: revision {} after {requested} reset requests",
            state.revision
        );
        let distinct = values.get(name).map(BTreeSet::len).unwrap_or(0) as i64;
        if requested == 0 {
            assert_eq!(
                distinct, 1,
                "{name}: a credential that was never to rotate changed"
            );
            assert_eq!(state.revision, 1, "{name}");
        } else {
            assert!(
                distinct <= 1 + requested,
                "{name}: {distinct} credentials for {requested} resets"
            );
        }
    }
    assert_nothing_orphaned(&client, &ns, &names).await;
    operator.stop();
    assert_no_leak(&operator.logs(), &client, &ns, values.values().flatten()).await;
}

#[tokio::test]
async fn concurrent_writers_lose_nothing_and_cause_no_hot_loop() {
    needs_control_plane!();
    let count = env_size("KEYSMITH_FAULT_RESOURCES", 60).min(60);
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "writers").await;
    let cp = control_plane::control_plane();
    let _operator = Operator::start(cp, &ns);
    let names = create_resources(&client, &ns, count).await;

    // Another client keeps labelling and annotating the resources and their Secrets.
    let writer = {
        let (client, ns, names) = (client.clone(), ns.clone(), names.clone());
        tokio::spawn(async move {
            let secrets: Api<k8s_openapi::api::core::v1::Secret> =
                Api::namespaced(client.clone(), &ns);
            for round in 0..6 {
                for (is_app, name) in &names {
                    let patch = json!({"metadata": {
                        "labels": {format!("writer-{round}"): "x"},
                        "annotations": {"writer/round": round.to_string()},
                    }});
                    let params = PatchParams::default();
                    let _ = if *is_app {
                        Api::<GatewayApp>::namespaced(client.clone(), &ns)
                            .patch(name, &params, &Patch::Merge(&patch))
                            .await
                            .map(|_| ())
                    } else {
                        Api::<SignatureKey>::namespaced(client.clone(), &ns)
                            .patch(name, &params, &Patch::Merge(&patch))
                            .await
                            .map(|_| ())
                    };
                    // The Secret may not exist yet early on.
                    let _ = secrets.patch(name, &params, &Patch::Merge(&patch)).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    writer.await.unwrap();
    wait_converged(
        &client,
        &ns,
        &names,
        &BTreeMap::new(),
        Duration::from_secs(60),
    )
    .await;

    // No lost update: the writer's last labels are all there, on objects and Secrets.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), &ns);
    for (_, name) in &names {
        let secret = secrets.get(name).await.unwrap();
        assert!(
            secret
                .metadata
                .labels
                .as_ref()
                .unwrap()
                .contains_key("writer-5"),
            "{name}: label lost"
        );
        assert_eq!(
            secret.metadata.labels.as_ref().unwrap()[labels::MANAGED_BY],
            labels::MANAGED_BY_VALUE
        );
    }
    // No hot loop: once converged, nothing changes any more.
    let before = resource_versions(&client, &ns).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        resource_versions(&client, &ns).await,
        before,
        "keysmith kept writing after the writers stopped"
    );
    let states = wait_converged(
        &client,
        &ns,
        &names,
        &BTreeMap::new(),
        Duration::from_secs(5),
    )
    .await;
    assert!(
        states.values().all(|s| s.revision == 1),
        "labels and annotations are no reason to rotate"
    );
}
