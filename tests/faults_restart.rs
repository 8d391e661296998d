//! The control plane restarts under keysmith: kube-apiserver several times and
//! etcd once, while resources are being issued and reset. The operator is
//! never restarted; it must converge within 30 s of the last restart. Its own
//! test binary, because these restarts would disturb any other test; its
//! tests take turns.

mod support;

use support::conditions::revision;
use support::env::Env;
use support::{control_plane, faults, operator};

use std::collections::BTreeMap;
use std::time::Duration;

use faults::*;
use keysmith::api::*;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use operator::Operator;
use serde_json::json;

/// One test at a time: each restarts the control plane under the other.
static RESTARTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn keysmith_rides_out_apiserver_and_etcd_restarts() {
    if control_plane::skipped() {
        return;
    }
    let _turn = RESTARTS.lock().await;
    let cp = control_plane::control_plane();
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "restarts").await;
    let mut operator = Operator::start(cp, &ns);
    let names = create_resources(&client, &ns, 40).await;

    for round in 0..3 {
        cp.restart_apiserver().await;
        // A fresh client: the old connections died with the apiserver.
        let client = control_plane::client().await;
        for (is_app, name) in names.iter().filter(|(is_app, _)| *is_app).take(5) {
            let patch = json!({"spec": {"resetRequest": format!("restart-{round}")}});
            assert!(is_app);
            Api::<GatewayApp>::namespaced(client.clone(), &ns)
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("reset after an apiserver restart");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    cp.restart_etcd().await;
    let client = control_plane::client().await;
    let more = create_resources(&client, &ns, 0).await; // the apiserver answers writes again
    assert!(more.is_empty());

    let expected: BTreeMap<String, String> = names
        .iter()
        .filter(|(is_app, _)| *is_app)
        .take(5)
        .map(|(_, name)| (name.clone(), "restart-2".to_string()))
        .collect();
    wait_converged(&client, &ns, &names, &expected, Duration::from_secs(30)).await;
    assert!(
        !operator.has_exited(),
        "the operator died instead of riding out the restarts"
    );
    assert_nothing_orphaned(&client, &ns, &names).await;
    operator.stop();
}

/// A Secret deleted while keysmith's watch is down: when the watch comes
/// back it either resumes (and the delete event comes) or re-lists (the new
/// apiserver's cache may not reach back to where it stopped), and a re-list
/// simply no longer shows the Secret. Either way keysmith must recreate it.
/// (Which one happens is the apiserver's choice, so the re-list alone is
/// checked by the unit tests of `controller::secret_names` and
/// `controller::watches`; when the resources' own watch re-lists too, every
/// resource is reconciled anyway.)
#[tokio::test]
async fn a_secret_deleted_while_the_watch_is_down_is_recreated() {
    if control_plane::skipped() {
        return;
    }
    let _turn = RESTARTS.lock().await;
    let mut env = Env::new("relist").await;
    env.create_app("app", json!({})).await;
    env.wait_app("app", "issued", |a| revision(a) == Some(1))
        .await;

    // The operator sleeps through the restart: its watches break with the
    // old apiserver, and the Secret goes while they are down.
    env.operator.pause();
    control_plane::control_plane().restart_apiserver().await;
    env.client = control_plane::client().await;
    env.secrets()
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    env.operator.resume();

    let app = env
        .wait_app("app", "recreated", |a| revision(a) == Some(2))
        .await;
    assert_eq!(
        app.status.unwrap().rotation.last_rotation_reason,
        Some(RotationReason::SecretRecreated)
    );
    assert!(env.secrets().get_opt("app").await.unwrap().is_some());
}
