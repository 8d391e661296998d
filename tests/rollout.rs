//! Rollout on rotation (SPEC §9.1) on a control plane with
//! kube-controller-manager: Deployments get real ReplicaSets (pods stay
//! Pending without scheduler and kubelet, which is enough to see a rollout
//! start), so "one restart" is "one new ReplicaSet".

mod support;

use support::conditions::{condition, revision};
use support::control_plane;
use support::env::Env;
use support::needs_control_plane;

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use keysmith::api::names::restarted_for_key;
use keysmith::api::*;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

fn pod_template(app: &str) -> serde_json::Value {
    json!({"metadata": {"labels": {"app": app}},
           "spec": {"containers": [{"name": "c", "image": "example.invalid/app:1"}]}})
}

impl Env {
    fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn create_deployment(&self, name: &str, labels: serde_json::Value) {
        let deployment: Deployment = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": pod_template(name)}
        }))
        .unwrap();
        self.deployments()
            .create(&PostParams::default(), &deployment)
            .await
            .unwrap();
    }

    /// ReplicaSets of a Deployment once its controller has caught up.
    async fn replica_sets(&self, deployment: &str) -> usize {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let d = self.deployments().get(deployment).await.unwrap();
            let observed = d.status.as_ref().and_then(|s| s.observed_generation);
            if observed == d.metadata.generation {
                let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &self.ns);
                let list = sets
                    .list(&ListParams::default().labels(&format!("app={deployment}")))
                    .await
                    .unwrap();
                return list.items.len();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{deployment} never settled"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn restarts_metric(&self, target_kind: &str) -> f64 {
        let body = self
            .operator
            .http_get(self.operator.metrics_port, "/metrics")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let prefix = format!(
            "keysmith_rollout_restarts_total{{kind=\"GatewayApp\",target_kind=\"{target_kind}\"}}"
        );
        body.lines()
            .find(|l| l.starts_with(&prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(-1.0)
    }
}

fn rolled_out(app: &GatewayApp) -> bool {
    condition(app, "RolloutReady").is_some_and(|c| c.0 == "True")
}

#[tokio::test]
async fn one_new_revision_restarts_each_target_once_and_nothing_else_restarts_it() {
    needs_control_plane!();
    let mut env = Env::new("rollout").await;
    env.create_deployment("web", json!({})).await;
    env.create_deployment("api", json!({"tier": "backend"}))
        .await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(env.client.clone(), &env.ns);
    let sts: StatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "labels": {"tier": "backend"}},
        "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}}, "template": pod_template("db")}
    }))
    .unwrap();
    statefulsets
        .create(&PostParams::default(), &sts)
        .await
        .unwrap();
    env.apply_app(
        "client",
        json!({"rollout": {"targets": [{"kind": "Deployment", "name": "web"}],
                           "selector": {"matchLabels": {"tier": "backend"}}}}),
    )
    .await;
    let app = env.wait_app("client", "rolled out", rolled_out).await;
    let key = restarted_for_key(Kind::GatewayApp, &env.ns, "client");
    let status = &app.status.as_ref().unwrap().rotation.rollout;
    assert_eq!(status.len(), 3, "{status:?}");
    assert!(status.iter().all(|s| s.revision == Some(1)));
    let web = env.replica_sets("web").await;
    assert_eq!(web, 2, "the first issue restarts a target once");
    let db = statefulsets.get("db").await.unwrap();
    let mark = db.spec.template.metadata.unwrap().annotations.unwrap()[&key].clone();
    assert_eq!(mark, "GatewayApp/client@1");

    // One reset: exactly one more ReplicaSet per Deployment.
    env.reset("client", "r1").await;
    env.wait_app("client", "rolled out for revision 2", |a| {
        revision(a) == Some(2) && rolled_out(a)
    })
    .await;
    assert_eq!(env.replica_sets("web").await, 3);
    assert_eq!(env.replica_sets("api").await, 3);
    assert_eq!(env.restarts_metric("Deployment"), 4.0);
    assert_eq!(env.restarts_metric("StatefulSet"), 2.0);

    // None of these restarts anything: an operator restart (a re-list), a
    // label change, an annotation change, reconciles of an unchanged object.
    env.operator.restart();
    env.apps()
        .patch(
            "client",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "x"}}})),
        )
        .await
        .unwrap();
    env.apps()
        .patch(
            "client",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"note": "unrelated"}}})),
        )
        .await
        .unwrap();
    // An edit of the Secret that keeps its values (the same bytes written
    // back by another client).
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(env.client.clone(), &env.ns);
    let secret = secrets.get("client").await.unwrap();
    let same = secret.data.clone().unwrap()["app_secret"].clone();
    secrets
        .patch(
            "client",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"app_secret": same}})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(env.replica_sets("web").await, 3);
    assert_eq!(env.replica_sets("api").await, 3);
    assert_eq!(revision(&env.app("client").await), Some(2));
}

#[tokio::test]
async fn several_rotations_inside_min_interval_restart_once_at_its_end() {
    needs_control_plane!();
    let env = Env::new("interval").await;
    env.create_deployment("web", json!({})).await;
    env.apply_app(
        "client",
        json!({"rollout": {"targets": [{"kind": "Deployment", "name": "web"}], "minInterval": "12s"}}),
    )
    .await;
    env.wait_app("client", "rolled out", rolled_out).await;
    let first = tokio::time::Instant::now();
    assert_eq!(env.replica_sets("web").await, 2);

    for value in ["a", "b", "c"] {
        env.reset("client", value).await;
    }
    let app = env
        .wait_app("client", "pending", |a| {
            condition(a, "RolloutReady").is_some_and(|c| c.1 == "RolloutPending")
        })
        .await;
    assert_eq!(revision(&app), Some(4));
    assert_eq!(
        env.replica_sets("web").await,
        2,
        "inside minInterval: no restart"
    );
    env.wait_app("client", "rolled out at the end of minInterval", |a| {
        rolled_out(a) && a.status.as_ref().unwrap().rotation.rollout[0].revision == Some(4)
    })
    .await;
    assert!(
        first.elapsed() >= Duration::from_secs(10),
        "not before the interval ended"
    );
    assert_eq!(
        env.replica_sets("web").await,
        3,
        "one restart for three rotations"
    );
}

#[tokio::test]
async fn two_resources_marking_one_deployment_never_undo_each_other() {
    needs_control_plane!();
    let env = Env::new("shared").await;
    env.create_deployment("web", json!({})).await;
    let rollout = json!({"rollout": {"targets": [{"kind": "Deployment", "name": "web"}]}});
    env.apply_app("one", rollout.clone()).await;
    env.wait_app("one", "rolled out", rolled_out).await;
    env.apply_app("two", rollout).await;
    env.wait_app("two", "rolled out", rolled_out).await;
    let settled = env.replica_sets("web").await;
    assert_eq!(settled, 3, "one restart each");

    env.reset("one", "x").await;
    env.wait_app("one", "rolled out", |a| {
        revision(a) == Some(2) && rolled_out(a)
    })
    .await;
    env.reset("two", "x").await;
    env.wait_app("two", "rolled out", |a| {
        revision(a) == Some(2) && rolled_out(a)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(env.replica_sets("web").await, settled + 2, "no ping-pong");
    let template = env.deployments().get("web").await.unwrap().spec.template;
    let marks = template.metadata.unwrap().annotations.unwrap();
    assert_eq!(
        marks[&restarted_for_key(Kind::GatewayApp, &env.ns, "one")],
        "GatewayApp/one@2"
    );
    assert_eq!(
        marks[&restarted_for_key(Kind::GatewayApp, &env.ns, "two")],
        "GatewayApp/two@2"
    );
}

#[tokio::test]
async fn a_missing_target_never_blocks_issuing() {
    needs_control_plane!();
    let env = Env::new("missing").await;
    env.apply_app(
        "client",
        json!({"rollout": {"targets": [{"kind": "Deployment", "name": "absent"}]}}),
    )
    .await;
    let app = env
        .wait_app("client", "RolloutFailed", |a| {
            condition(a, "RolloutReady").is_some_and(|c| c.1 == "RolloutFailed")
        })
        .await;
    assert_eq!(
        condition(&app, "Ready").unwrap().0,
        "True",
        "credentials issued"
    );
    let message = condition(&app, "RolloutReady").unwrap().2;
    assert!(
        message.contains("Deployment/absent does not exist"),
        "{message}"
    );
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &env.ns);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !events
        .list(&ListParams::default())
        .await
        .unwrap()
        .iter()
        .any(|e| e.reason.as_deref() == Some("RolloutFailed"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no RolloutFailed event"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn gitops_sees_no_drift_on_a_marked_deployment() {
    needs_control_plane!();
    let mut env = Env::new("gitops").await;
    let cp = control_plane::control_plane();
    let manifest = std::env::temp_dir().join(format!("keysmith-gitops-{}.yaml", env.ns));
    std::fs::write(
        &manifest,
        serde_json::to_string(&json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": env.ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": pod_template("web")}
        }))
        .unwrap(),
    )
    .unwrap();
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &cp.kubeconfig)
            .output()
            .expect("kubectl (scripts/provision --helm installs it)")
    };
    let path = manifest.to_str().unwrap();
    let applied = kubectl(&[
        "apply",
        "--server-side",
        "--field-manager",
        "gitops",
        "-f",
        path,
    ]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    env.apply_app(
        "client",
        json!({"rollout": {"targets": [{"kind": "Deployment", "name": "web"}]}}),
    )
    .await;
    env.wait_app("client", "rolled out", rolled_out).await;
    env.reset("client", "r").await;
    env.wait_app("client", "rolled out", |a| {
        revision(a) == Some(2) && rolled_out(a)
    })
    .await;
    env.operator.restart();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let diff = kubectl(&[
        "diff",
        "--server-side",
        "--field-manager",
        "gitops",
        "-f",
        path,
    ]);
    assert_eq!(
        diff.status.code(),
        Some(0),
        "drift:\n{}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );
    let _ = std::fs::remove_file(&manifest);
    // The mark is keysmith's field, under its own manager.
    let web = env.deployments().get("web").await.unwrap();
    let managers: Vec<String> = web
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.iter().any(|m| m.starts_with("keysmith-rollout-")),
        "{managers:?}"
    );
}
