//! The fence around rollout's workload rights (SPEC §10 "Least privilege,
//! contained", §9.1): with the chart's ValidatingAdmissionPolicy, keysmith's
//! ServiceAccount can change nothing on a workload but its own
//! `restarted-for-*` pod-template annotations — refused by the real
//! apiserver — while keysmith's rollouts still go through; and
//! `rollout.namespaces` grants the right only where it is listed.

mod support;

use support::conditions::condition;
use support::needs_control_plane;
use support::{control_plane, helm, operator, wait};

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use keysmith::api::names::{restarted_for_key, rollout_field_manager};
use keysmith::api::*;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn render(args: &[&str]) -> Vec<Value> {
    keysmith::admission::manifest::parse_documents(&helm::render(args)).unwrap()
}

fn find<'a>(documents: &'a [Value], kind: &str) -> Vec<&'a Value> {
    documents.iter().filter(|d| d["kind"] == kind).collect()
}

fn grants_workloads(role: &Value) -> bool {
    serde_json::to_string(&role["rules"])
        .unwrap()
        .contains("deployments")
}

#[test]
fn the_fence_and_the_namespaced_rights_render_only_when_asked() {
    let plain = render(&[]);
    assert!(find(&plain, "ValidatingAdmissionPolicy").is_empty());
    assert!(!grants_workloads(find(&plain, "ClusterRole")[0]));

    let rollout = render(&["--set", "rollout.enabled=true"]);
    let policy = find(&rollout, "ValidatingAdmissionPolicy");
    let binding = find(&rollout, "ValidatingAdmissionPolicyBinding");
    assert_eq!((policy.len(), binding.len()), (1, 1));
    assert_eq!(
        policy[0]["spec"]["matchConditions"][0]["expression"],
        "request.userInfo.username == \"system:serviceaccount:keysmith-system:keysmith\""
    );
    assert_eq!(
        binding[0]["spec"]["policyName"],
        policy[0]["metadata"]["name"]
    );
    assert_eq!(binding[0]["spec"]["validationActions"], json!(["Deny"]));
    assert!(grants_workloads(find(&rollout, "ClusterRole")[0]));
    // (The Roles are the seal key's and the cluster connections'
    // credentials', in the release namespace.)
    assert!(find(&rollout, "Role").iter().all(|r| !grants_workloads(r)));

    let unfenced = render(&[
        "--set",
        "rollout.enabled=true",
        "--set",
        "rollout.admissionPolicy=false",
    ]);
    assert!(find(&unfenced, "ValidatingAdmissionPolicy").is_empty());

    let listed = render(&[
        "--set",
        "rollout.enabled=true",
        "--set",
        "rollout.namespaces={shop,web}",
    ]);
    assert!(!grants_workloads(find(&listed, "ClusterRole")[0]));
    let roles: Vec<&Value> = find(&listed, "Role")
        .into_iter()
        .filter(|r| grants_workloads(r))
        .collect();
    let bindings: Vec<&Value> = find(&listed, "RoleBinding")
        .into_iter()
        .filter(|b| b["roleRef"]["name"].as_str().unwrap().ends_with("-rollout"))
        .collect();
    let namespaces = |documents: &[&Value]| -> Vec<String> {
        documents
            .iter()
            .map(|d| d["metadata"]["namespace"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(namespaces(&roles), ["shop", "web"]);
    assert_eq!(namespaces(&bindings), ["shop", "web"]);
    assert!(roles.iter().all(|r| grants_workloads(r)));
    assert_eq!(
        bindings[0]["subjects"][0],
        json!({"kind": "ServiceAccount", "name": "keysmith", "namespace": "keysmith-system"})
    );
    assert_eq!(find(&listed, "ValidatingAdmissionPolicy").len(), 1);

    // Namespaced keysmith: the list may name only its own namespace.
    let own = render(&[
        "--set",
        "rbac.clusterWide=false",
        "--set",
        "watchNamespace=shop",
        "--set",
        "rollout.enabled=true",
        "--set",
        "rollout.namespaces={shop}",
    ]);
    let roles = find(&own, "Role");
    assert_eq!(
        roles.len(),
        4,
        "keysmith's, rollout's, the seal key's, the cluster connections' credentials'"
    );
    assert!(roles.iter().filter(|r| grants_workloads(r)).count() == 1);
    let refused = helm::run(
        helm::helm(),
        &[
            "template",
            "k",
            "charts/keysmith",
            "--set",
            "rbac.clusterWide=false",
            "--set",
            "watchNamespace=shop",
            "--set",
            "rollout.enabled=true",
            "--set",
            "rollout.namespaces={other}",
        ],
        None,
    );
    assert!(
        helm::text(&refused).contains("may list only watchNamespace"),
        "{}",
        helm::text(&refused)
    );
    let refused = helm::run(
        helm::helm(),
        &[
            "template",
            "k",
            "charts/keysmith",
            "--set",
            "rollout.namespaces={Not_A_Namespace}",
        ],
        None,
    );
    assert!(!refused.status.success(), "values.schema.json checks names");
}

/// Installs the chart as `release` in `<release>-system`, with `values`.
fn install(release: &str, values: &[&str]) {
    let cp = control_plane::control_plane();
    let namespace = format!("{release}-system");
    let mut args = vec![
        "install",
        release,
        "charts/keysmith",
        "--namespace",
        &namespace,
        "--create-namespace",
        "--skip-crds",
        "--wait=false",
    ];
    for value in values {
        args.extend(["--set", value]);
    }
    let output = helm::run(helm::helm(), &args, Some(&cp.kubeconfig));
    assert!(
        output.status.success(),
        "helm install: {}",
        helm::text(&output)
    );
}

/// A client acting as the chart's ServiceAccount `<release>-keysmith`, and its kubeconfig.
async fn as_keysmith(admin: &Client, release: &str) -> (Client, PathBuf) {
    let cp = control_plane::control_plane();
    let path = cp.dir.join(format!("{release}-sa.kubeconfig"));
    let account = format!("{release}-keysmith");
    let accounts: Api<ServiceAccount> =
        Api::namespaced(admin.clone(), &format!("{release}-system"));
    // helm created it just now; the token controller needs nothing, the account must exist.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while accounts.get_opt(&account).await.unwrap().is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ServiceAccount {account}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    helm::service_account_kubeconfig(admin, &format!("{release}-system"), &account, &path).await;
    let client = control_plane::client_for(&path).await.unwrap();
    (client, path)
}

async fn deployment(client: &Client, namespace: &str, name: &str) -> Deployment {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}, "annotations": {"team": "web"}},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}, "annotations": {"team/owner": "web"}},
            "spec": {"containers": [{"name": "c", "image": "example.invalid/app:1"}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap()
}

/// The apply keysmith sends to restart a target (src/controller/rollout.rs):
/// its own mark on the pod template, under its own field manager.
fn mark_apply(
    kind: &str,
    namespace: &str,
    name: &str,
    resource: &str,
    mark: &str,
) -> (Value, String) {
    let key = restarted_for_key(Kind::GatewayApp, namespace, resource);
    let apply = json!({
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"metadata": {"annotations": {key: mark}}}},
    });
    (
        apply,
        rollout_field_manager(Kind::GatewayApp, namespace, resource),
    )
}

async fn apply_mark<K>(
    api: &Api<K>,
    name: &str,
    resource: &str,
    mark: &str,
) -> Result<K, kube::Error>
where
    K: kube::Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let namespace = api.namespace().unwrap().to_string();
    let (apply, manager) = mark_apply(&K::kind(&()), &namespace, name, resource, mark);
    api.patch(
        name,
        &PatchParams::apply(&manager).force(),
        &Patch::Apply(&apply),
    )
    .await
}

/// Waits until `attempt` fails with a message containing `needle` (the
/// policy, or a RoleBinding, takes a moment to load), and returns it.
async fn refused_with<F, Fut, T>(needle: &str, mut attempt: F) -> String
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let outcome = attempt().await.err().map(|e| e.to_string());
        match outcome {
            Some(message) if message.contains(needle) => return message,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "never refused with {needle:?}; last outcome: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const POLICY: &str = "fence-keysmith-workload-fence";

#[tokio::test]
async fn keysmith_may_change_nothing_on_a_workload_but_its_own_marks() {
    needs_control_plane!();
    let admin = control_plane::client().await;
    let ns = control_plane::namespace(&admin, "fence").await;
    install("fence", &["rollout.enabled=true"]);
    let (keysmith, kubeconfig) = as_keysmith(&admin, "fence").await;
    let before = deployment(&admin, &ns, "web").await;
    let deployments: Api<Deployment> = Api::namespaced(keysmith.clone(), &ns);

    // Every change but keysmith's own marks, by every kind of patch.
    let image = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "example.invalid/evil:1"}]}}}});
    // A dry run goes through admission: it shows when the policy is loaded.
    let dry_run = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    let probe = Patch::Strategic(image.clone());
    refused_with(POLICY, || deployments.patch("web", &dry_run, &probe)).await;
    let (mut sneaky, manager) = mark_apply("Deployment", &ns, "web", "app", "GatewayApp/app@1");
    sneaky["spec"]["template"]["spec"] = image["spec"]["template"]["spec"].clone();
    let forbidden: [(&str, Patch<Value>); 10] = [
        ("image", Patch::Strategic(image.clone())),
        ("image inside a mark apply", Patch::Apply(sneaky)),
        ("replicas", Patch::Merge(json!({"spec": {"replicas": 5}}))),
        (
            "label",
            Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        ),
        (
            "annotation",
            Patch::Merge(json!({"metadata": {"annotations": {"x": "y"}}})),
        ),
        (
            "finalizer",
            Patch::Merge(json!({"metadata": {"finalizers": ["example.invalid/hold"]}})),
        ),
        (
            "pod-template label",
            Patch::Merge(json!({"spec": {"template": {"metadata": {"labels": {"x": "y"}}}}})),
        ),
        (
            "foreign pod-template annotation",
            Patch::Merge(
                json!({"spec": {"template": {"metadata": {"annotations": {"team/owner": "evil"}}}}}),
            ),
        ),
        (
            "foreign pod-template annotation removed",
            Patch::Merge(
                json!({"spec": {"template": {"metadata": {"annotations": {"team/owner": null}}}}}),
            ),
        ),
        (
            "kubectl rollout restart's annotation",
            Patch::Merge(json!({"spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": "2026-12-01T00:00:00Z"}}}}})),
        ),
    ];
    for (what, patch) in &forbidden {
        let params = match patch {
            Patch::Apply(_) => PatchParams::apply(&manager).force(),
            _ => PatchParams::default(),
        };
        let refused = deployments.patch("web", &params, patch).await;
        let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains(POLICY),
            "a {what} change by keysmith's account was not refused by the policy: {message:?}"
        );
    }
    let after = Api::<Deployment>::namespaced(admin.clone(), &ns)
        .get("web")
        .await
        .unwrap();
    // (the deployment controller writes its status and revision meanwhile)
    assert_eq!(after.metadata.generation, before.metadata.generation);
    assert_eq!(after.metadata.labels, before.metadata.labels);
    assert_eq!(after.metadata.finalizers, before.metadata.finalizers);
    assert!(!after.metadata.annotations.unwrap().contains_key("x"));
    assert_eq!(after.spec, before.spec);

    // keysmith's own restarts go through, and change nothing else.
    let marked = apply_mark(&deployments, "web", "app", "GatewayApp/app@1")
        .await
        .expect("keysmith's mark is allowed");
    let remarked = apply_mark(&deployments, "web", "app", "GatewayApp/app@2")
        .await
        .expect("a new revision's mark is allowed");
    let other = apply_mark(&deployments, "web", "other", "GatewayApp/other@1")
        .await
        .expect("a second resource's mark is allowed");
    assert_eq!(
        (
            marked.metadata.generation,
            remarked.metadata.generation,
            other.metadata.generation
        ),
        (Some(2), Some(3), Some(4))
    );
    let annotations = other.spec.template.metadata.unwrap().annotations.unwrap();
    assert_eq!(annotations.len(), 3, "{annotations:?}");
    assert_eq!(annotations["team/owner"], "web");

    // StatefulSets and DaemonSets alike (a DaemonSet's template change also
    // moves its template-generation annotation: the policy allows that).
    other_kinds_alike(&admin, &keysmith, &ns).await;

    // Even where RBAC is widened, the policy refuses creating, deleting and scaling.
    widen_rbac(&admin, &ns, "fence").await;
    let copy = {
        let mut copy = before.clone();
        copy.metadata = kube::api::ObjectMeta {
            name: Some("copy".into()),
            ..Default::default()
        };
        copy.status = None;
        copy
    };
    let (post, delete) = (PostParams::default(), DeleteParams::default());
    let create = refused_with(POLICY, || deployments.create(&post, &copy)).await;
    assert!(create.contains("may not create or delete"), "{create}");
    refused_with(POLICY, || deployments.delete("web", &delete)).await;
    let scale = Patch::Merge(json!({"spec": {"replicas": 0}}));
    let params = PatchParams::default();
    refused_with(POLICY, || deployments.patch_scale("web", &params, &scale)).await;

    // The real thing: keysmith, as the chart's ServiceAccount, rolls out.
    let cp = control_plane::control_plane();
    let sa_plane = control_plane::ControlPlane {
        dir: cp.dir.clone(),
        kubeconfig,
        supervisor: cp.supervisor,
    };
    let mut operator = operator::Operator::start_with(&sa_plane, &ns, "-fence", &[]);
    rolls_out(&admin, &ns, "web", &mut operator).await;
}

async fn other_kinds_alike(admin: &Client, keysmith: &Client, ns: &str) {
    let pod = json!({
        "metadata": {"labels": {"app": "other"}},
        "spec": {"containers": [{"name": "c", "image": "example.invalid/app:1"}]}
    });
    let statefulset: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "other"}}, "template": pod}
    }))
    .unwrap();
    Api::<StatefulSet>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &statefulset)
        .await
        .unwrap();
    let daemonset: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "other"}}, "template": pod}
    }))
    .unwrap();
    Api::<DaemonSet>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &daemonset)
        .await
        .unwrap();
    let image = Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "example.invalid/evil:1"}]}}}}));
    let params = PatchParams::default();

    let statefulsets: Api<StatefulSet> = Api::namespaced(keysmith.clone(), ns);
    for revision in 1..=2 {
        let mark = format!("GatewayApp/app@{revision}");
        let marked = apply_mark(&statefulsets, "db", "app", &mark)
            .await
            .unwrap_or_else(|e| panic!("keysmith's mark on a StatefulSet: {e}"));
        assert_eq!(marked.metadata.generation, Some(1 + revision));
    }
    let refused = statefulsets.patch("db", &params, &image).await.unwrap_err();
    assert!(refused.to_string().contains(POLICY), "{refused}");

    let daemonsets: Api<DaemonSet> = Api::namespaced(keysmith.clone(), ns);
    for revision in 1..=2 {
        let mark = format!("GatewayApp/app@{revision}");
        let marked = apply_mark(&daemonsets, "agent", "app", &mark)
            .await
            .unwrap_or_else(|e| panic!("keysmith's mark on a DaemonSet: {e}"));
        assert_eq!(marked.metadata.generation, Some(1 + revision));
    }
    let refused = daemonsets
        .patch("agent", &params, &image)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains(POLICY), "{refused}");
}

/// Grants the account what the chart never does — creating, deleting and
/// scaling workloads — to show the policy refuses them on its own.
async fn widen_rbac(admin: &Client, namespace: &str, release: &str) {
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "widened"},
        "rules": [
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create", "delete"]},
            {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch", "update"]}
        ]
    }))
    .unwrap();
    Api::<Role>::namespaced(admin.clone(), namespace)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "widened"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "widened"},
        "subjects": [{"kind": "ServiceAccount", "name": format!("{release}-keysmith"),
            "namespace": format!("{release}-system")}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), namespace)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

/// A GatewayApp targeting `target` gets it restarted by the running operator.
async fn rolls_out(
    admin: &Client,
    namespace: &str,
    target: &str,
    operator: &mut operator::Operator,
) {
    let apps: Api<GatewayApp> = Api::namespaced(admin.clone(), namespace);
    let app: GatewayApp = serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
        "metadata": {"name": "rolling"},
        "spec": {"rollout": {"targets": [{"kind": "Deployment", "name": target}]}}
    }))
    .unwrap();
    apps.create(&PostParams::default(), &app).await.unwrap();
    let rolled_out = |a: &GatewayApp| condition(a, "RolloutReady").is_some_and(|c| c.0 == "True");
    let logs = || format!("no rollout behind the fence:\n{}", operator.logs());
    wait::until(
        &apps,
        "rolling",
        "RolloutReady",
        Duration::from_secs(40),
        rolled_out,
        logs,
    )
    .await;
    let key = restarted_for_key(Kind::GatewayApp, namespace, "rolling");
    let restarted = Api::<Deployment>::namespaced(admin.clone(), namespace)
        .get(target)
        .await
        .unwrap();
    let annotations = restarted
        .spec
        .template
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert_eq!(annotations[&key], "GatewayApp/rolling@1");
    assert!(!operator.logs().contains("denied"), "{}", operator.logs());
}

#[tokio::test]
async fn rollout_rights_only_in_the_listed_namespaces() {
    needs_control_plane!();
    let admin = control_plane::client().await;
    let listed = control_plane::namespace(&admin, "listed").await;
    let unlisted = control_plane::namespace(&admin, "unlisted").await;
    let namespaces = format!("rollout.namespaces={{{listed}}}");
    install("fenced", &["rollout.enabled=true", &namespaces]);
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let cluster_role = roles.get("fenced-keysmith").await.unwrap();
    let rules = serde_json::to_string(&cluster_role.rules).unwrap();
    assert!(!rules.contains("deployments"), "{rules}");

    let (keysmith, _) = as_keysmith(&admin, "fenced").await;
    deployment(&admin, &listed, "web").await;
    deployment(&admin, &unlisted, "web").await;
    let in_listed: Api<Deployment> = Api::namespaced(keysmith.clone(), &listed);
    let in_unlisted: Api<Deployment> = Api::namespaced(keysmith.clone(), &unlisted);
    // The RoleBinding takes a moment to reach the authorizer's cache.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Err(error) = apply_mark(&in_listed, "web", "app", "GatewayApp/app@1").await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no rollout right in the listed namespace: {error}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(in_listed.get("web").await.is_ok());
    let refused = apply_mark(&in_unlisted, "web", "app", "GatewayApp/app@1")
        .await
        .expect_err("no rollout right outside the list");
    assert!(
        refused
            .to_string()
            .contains("cannot patch resource \"deployments\""),
        "{refused}"
    );
    let refused = in_unlisted.get("web").await.expect_err("nor reading");
    assert!(refused.to_string().contains("forbidden"), "{refused}");
    // The fence is there too: even in the listed namespace, only marks.
    let replicas = Patch::Merge(json!({"spec": {"replicas": 5}}));
    let params = PatchParams {
        dry_run: true, // (a real patch, once let through before the policy loaded, would make later ones no-ops)
        ..Default::default()
    };
    refused_with("fenced-keysmith-workload-fence", || {
        in_listed.patch("web", &params, &replicas)
    })
    .await;
}
