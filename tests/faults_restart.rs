//! The control plane restarts under keysmith: kube-apiserver several times and
//! etcd once, while resources are being issued and reset. The operator is
//! never restarted; it must converge within 30 s of the last restart. Its own
//! test binary, because these restarts would disturb any other test.

mod support;

use support::{control_plane, faults, operator};

use std::collections::BTreeMap;
use std::time::Duration;

use faults::*;
use keysmith::api::*;
use kube::api::{Api, Patch, PatchParams};
use operator::Operator;
use serde_json::json;

#[tokio::test]
async fn keysmith_rides_out_apiserver_and_etcd_restarts() {
    if control_plane::skipped() {
        return;
    }
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
