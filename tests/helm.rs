//! The Helm chart and the plain manifests: lint, render, stay in sync with
//! `crds/`, and — the real proof — keysmith reconciles the examples with
//! exactly the chart's RBAC, on an apiserver that enforces it.

mod support;

use support::conditions::is_ready;
use support::conformance::{self, ConformanceServer};
use support::helm::{helm, render, run, service_account_kubeconfig, text};
use support::needs_control_plane;
use support::{control_plane, fixtures, operator, wait};

use std::time::Duration;

use k8s_openapi::api::rbac::v1::ClusterRole;
use keysmith::api::*;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;

/// How long keysmith, installed by the chart, may take to make a resource Ready.
const RBAC_SETTLE: Duration = Duration::from_secs(40);

fn kinds(rendered: &str) -> Vec<String> {
    keysmith::admission::manifest::parse_documents(rendered)
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn chart_crds_are_the_crds() {
    let root = fixtures::repo_root();
    let names = |dir: &str| {
        let mut names: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let fix = "regenerate with scripts/render-deploy";
    assert_eq!(names("charts/keysmith/crds"), names("crds"), "{fix}");
    for name in names("crds") {
        let chart = std::fs::read_to_string(root.join("charts/keysmith/crds").join(&name)).unwrap();
        let crds = std::fs::read_to_string(root.join("crds").join(&name)).unwrap();
        assert!(
            chart == crds,
            "charts/keysmith/crds/{name} differs from crds/{name}: {fix}"
        );
    }
}

#[test]
fn helm_lint_passes() {
    let output = run(helm(), &["lint", "--strict", "charts/keysmith"], None);
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn the_chart_renders_a_restricted_least_privilege_operator() {
    let single = render(&[]);
    assert_eq!(
        kinds(&single),
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "Role",
            "Role",
            "RoleBinding",
            "RoleBinding",
            "Service",
            "Deployment"
        ]
    );
    let documents = keysmith::admission::manifest::parse_documents(&single).unwrap();
    let deployment = documents
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"][0],
        "ALL"
    );
    assert_eq!(container["image"], "ghcr.io/keysmith-dev/keysmith:0.1.0");
    assert!(container["resources"]["limits"]["memory"].is_string());
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        !args.contains(&"--leader-election"),
        "one replica needs no election"
    );
    assert!(
        args.contains(&"--record-key-secret=keysmith-system/keysmith-record-key"),
        "the seal's key in the release namespace: {args:?}"
    );
    let role = documents
        .iter()
        .find(|d| d["kind"] == "ClusterRole")
        .unwrap();
    let rules = serde_json::to_string(&role["rules"]).unwrap();
    assert!(
        !rules.contains("delete") && !rules.contains("\"*\""),
        "{rules}"
    );

    let ha = render(&["--set", "replicaCount=2"]);
    let ha_kinds = kinds(&ha);
    assert!(
        ha_kinds.contains(&"PodDisruptionBudget".to_string())
            && ha_kinds.contains(&"Role".to_string())
    );
    assert!(ha.contains("- --leader-election\n"));

    let namespaced = render(&[
        "--set",
        "rbac.clusterWide=false",
        "--set",
        "watchNamespace=shop",
    ]);
    assert!(
        kinds(&namespaced).contains(&"Role".to_string()) && !namespaced.contains("ClusterRole")
    );
    assert!(namespaced.contains("- --namespace=shop"));

    let monitored = render(&["--set", "metrics.serviceMonitor.enabled=true"]);
    assert!(kinds(&monitored).contains(&"ServiceMonitor".to_string()));

    let refused = run(
        helm(),
        &["template", "k", "charts/keysmith", "--set", "logFormat=xml"],
        None,
    );
    assert!(
        !refused.status.success(),
        "values.schema.json refuses bad values"
    );
    let refused = run(
        helm(),
        &[
            "template",
            "k",
            "charts/keysmith",
            "--set",
            "rbac.clusterWide=false",
        ],
        None,
    );
    assert!(text(&refused).contains("needs watchNamespace"));
}

#[test]
fn plain_manifests_are_rendered_from_the_chart() {
    let root = fixtures::repo_root();
    let fix = "regenerate with scripts/render-deploy and commit deploy/";
    let keysmith_yaml =
        std::fs::read_to_string(root.join("deploy/keysmith.yaml")).unwrap_or_default();
    let rendered = render(&["--skip-crds"]);
    assert!(
        keysmith_yaml.ends_with(&rendered),
        "deploy/keysmith.yaml is stale: {fix}"
    );
    let crds_yaml = std::fs::read_to_string(root.join("deploy/crds.yaml")).unwrap_or_default();
    let crds = [
        "gatewayapps.keysmith.dev.yaml",
        "signaturekeys.keysmith.dev.yaml",
        "gatewayconnections.keysmith.dev.yaml",
        "clustergatewayconnections.keysmith.dev.yaml",
    ]
    .map(|n| std::fs::read_to_string(root.join("crds").join(n)).unwrap())
    .concat();
    assert!(crds_yaml == crds, "deploy/crds.yaml is stale: {fix}");
}

/// A GatewayApp synced to a cloud gateway (a conformance server) through a
/// GatewayConnection, then deleted: with the chart's RBAC keysmith adds and
/// releases both finalizers (the app's cleanup, the connection's in-use)
/// and removes the app at the gateway.
async fn cloud_sync_and_cleanup_need_nothing_more(
    client: &kube::Client,
    ns: &str,
    operator: &operator::Operator,
) {
    let server = ConformanceServer::start("huawei");
    let objects = [
        serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "gw-credentials", "annotations": {"keysmith.dev/allow-source": "true"}},
            "stringData": {"accessKeyId": conformance::ACCESS_KEY_ID,
                           "accessKeySecret": conformance::ACCESS_KEY_SECRET}}),
        serde_json::json!({"apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayConnection",
            "metadata": {"name": "gw"},
            "spec": {"provider": "HuaweiAPIG", "endpoint": server.endpoint,
                     "region": conformance::REGION, "projectId": conformance::PROJECT_ID,
                     "instanceId": conformance::INSTANCE_ID,
                     "credentialsRef": {"name": "gw-credentials"}}}),
        serde_json::json!({"apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
            "metadata": {"name": "synced"},
            "spec": {"appName": "rbac_synced", "connectionRef": {"name": "gw"}}}),
    ];
    for object in &objects {
        let api = kube::Api::<kube::api::DynamicObject>::namespaced_with(
            client.clone(),
            ns,
            &kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
                object["apiVersion"]
                    .as_str()
                    .unwrap()
                    .split_once('/')
                    .map_or("", |(g, _)| g),
                object["apiVersion"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap(),
                object["kind"].as_str().unwrap(),
            )),
        );
        let name = object["metadata"]["name"].as_str().unwrap();
        api.patch(
            name,
            &PatchParams::apply("keysmith-tests"),
            &Patch::Apply(object),
        )
        .await
        .unwrap();
    }
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    let synced = |app: Option<&GatewayApp>| {
        app.and_then(|a| a.status.as_ref()).is_some_and(|s| {
            s.rotation
                .conditions
                .iter()
                .any(|c| c.type_ == "GatewaySynced" && c.status == "True")
        })
    };
    tokio::time::timeout(
        Duration::from_secs(40),
        await_condition(apps.clone(), "synced", synced),
    )
    .await
    .unwrap_or_else(|_| panic!("not synced with the chart's RBAC:\n{}", operator.logs()))
    .unwrap();
    let connections: Api<GatewayConnection> = Api::namespaced(client.clone(), ns);
    let connection = connections.get("gw").await.unwrap();
    assert!(
        connection
            .metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"keysmith.dev/connection-in-use".to_string()),
        "the connection is marked in use"
    );
    apps.delete("synced", &Default::default()).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(40),
        await_condition(apps.clone(), "synced", |a: Option<&GatewayApp>| a.is_none()),
    )
    .await
    .unwrap_or_else(|_| panic!("not cleaned up with the chart's RBAC:\n{}", operator.logs()))
    .unwrap();
    let stats = server.stats().await;
    assert_eq!(
        stats["calls"]["DeleteAppV2"],
        1,
        "the app was removed at the gateway: {stats}\n{}",
        operator.logs()
    );
}

#[tokio::test]
async fn the_chart_rbac_is_enough_and_every_rule_is_needed() {
    needs_control_plane!();
    let cp = control_plane::control_plane();
    let client = control_plane::client().await;
    let install = run(
        helm(),
        &[
            "install",
            "keysmith",
            "charts/keysmith",
            "--namespace",
            "keysmith-system",
            "--create-namespace",
            "--skip-crds",
            "--set",
            "replicaCount=2",
            "--wait=false",
        ],
        Some(&cp.kubeconfig),
    );
    assert!(install.status.success(), "helm install: {}", text(&install));

    // keysmith as the chart's ServiceAccount, with the chart's arguments.
    let kubeconfig = cp.dir.join("keysmith-sa.kubeconfig");
    service_account_kubeconfig(&client, "keysmith-system", "keysmith", &kubeconfig).await;
    let ns = control_plane::namespace(&client, "rbac").await;
    let sa_plane = control_plane::ControlPlane {
        dir: cp.dir.clone(),
        kubeconfig: kubeconfig.clone(),
        supervisor: cp.supervisor,
    };
    let mut operator = operator::Operator::start_with(
        &sa_plane,
        &ns,
        "-sa",
        &[
            "--leader-election",
            "--leader-election-namespace",
            "keysmith-system",
        ],
    );
    let apply = run(
        "kubectl",
        &["apply", "--server-side", "-n", &ns, "-f", "examples/"],
        Some(&cp.kubeconfig),
    );
    assert!(apply.status.success(), "{}", text(&apply));
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), &ns);
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), &ns);
    for app in apps.list(&ListParams::default()).await.unwrap() {
        let name = app.metadata.name.clone().unwrap();
        let what = "Ready with the chart's RBAC";
        wait::until(&apps, &name, what, RBAC_SETTLE, is_ready, || {
            operator.logs()
        })
        .await;
    }
    for key in keys.list(&ListParams::default()).await.unwrap() {
        let name = key.metadata.name.clone().unwrap();
        let what = "Ready with the chart's RBAC";
        wait::until(&keys, &name, what, RBAC_SETTLE, is_ready, || {
            operator.logs()
        })
        .await;
    }
    cloud_sync_and_cleanup_need_nothing_more(&client, &ns, &operator).await;
    assert!(
        !operator.logs().contains("forbidden"),
        "a permission was missing:\n{}",
        operator.logs()
    );

    // spec.rollout without rollout.enabled: issuing works, the rollout says
    // "forbidden" on the resource. With it (only get/list/watch/patch on the
    // three workload kinds), the rollout goes through.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), &ns);
    let deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "example.invalid/app:1"}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let app: GatewayApp = serde_json::from_value(serde_json::json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
        "metadata": {"name": "rolling"},
        "spec": {"rollout": {"targets": [{"kind": "Deployment", "name": "web"}]}}
    }))
    .unwrap();
    apps.create(&PostParams::default(), &app).await.unwrap();
    let rollout_condition = |app: Option<&GatewayApp>| {
        app.and_then(|a| a.status.as_ref()).and_then(|s| {
            s.rotation
                .conditions
                .iter()
                .find(|c| c.type_ == "RolloutReady")
                .map(|c| (c.status.clone(), c.message.clone()))
        })
    };
    let forbidden = tokio::time::timeout(
        Duration::from_secs(40),
        await_condition(apps.clone(), "rolling", move |a: Option<&GatewayApp>| {
            a.is_some_and(is_ready) && rollout_condition(a).is_some_and(|c| c.0 == "False")
        }),
    )
    .await
    .expect("RolloutReady=False without the rollout RBAC")
    .unwrap();
    let message = rollout_condition(forbidden.as_ref()).unwrap().1;
    assert!(message.contains("forbidden"), "{message}");
    let upgrade = run(
        helm(),
        &[
            "upgrade",
            "keysmith",
            "charts/keysmith",
            "--namespace",
            "keysmith-system",
            "--reuse-values",
            "--set",
            "rollout.enabled=true",
            "--wait=false",
        ],
        Some(&cp.kubeconfig),
    );
    assert!(upgrade.status.success(), "helm upgrade: {}", text(&upgrade));
    // A change to the resource makes keysmith look again at once.
    apps.patch(
        "rolling",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"annotations": {"retry": "1"}}})),
    )
    .await
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(40),
        await_condition(apps.clone(), "rolling", move |a: Option<&GatewayApp>| {
            rollout_condition(a).is_some_and(|c| c.0 == "True")
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("not rolled out with rollout.enabled:\n{}", operator.logs()))
    .unwrap();

    // Take away one needed permission (creating Secrets: a first issue is a
    // create): the failure says what is missing.
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let mut role = roles.get("keysmith").await.unwrap();
    for rule in role.rules.iter_mut().flatten() {
        if rule
            .resources
            .as_ref()
            .is_some_and(|r| r.contains(&"secrets".to_string()))
        {
            rule.verbs.retain(|v| v != "create");
        }
    }
    role.metadata.managed_fields = None;
    roles
        .replace("keysmith", &PostParams::default(), &role)
        .await
        .unwrap();
    operator.restart();
    let app: GatewayApp = serde_json::from_value(serde_json::json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
        "metadata": {"name": "needs-patch"}, "spec": {}
    }))
    .unwrap();
    apps.create(&PostParams::default(), &app).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let logs = operator.logs();
        if logs.contains("cannot create resource \\\"secrets\\\"") && logs.contains("WriteSecret") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no clear report of the missing permission:\n{logs}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = roles
        .patch(
            "keysmith",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({})),
        )
        .await;
}

#[test]
fn the_chart_serves_secure_metrics_only_when_asked() {
    let plain = render(&["--set", "metrics.serviceMonitor.enabled=true"]);
    assert!(!plain.contains("--metrics-secure") && !plain.contains("tokenreviews"));
    assert!(!plain.contains("metrics-reader") && !plain.contains("scheme: https"));

    let secure = render(&[
        "--set",
        "metrics.secure=true",
        "--set",
        "metrics.serviceMonitor.enabled=true",
    ]);
    assert!(secure.contains("- --metrics-secure\n") && !secure.contains("--metrics-cert-dir"));
    let documents: Vec<serde_json::Value> = secure
        .split("\n---")
        .filter_map(|d| serde_norway::from_str(d).ok())
        .collect();
    let named = |kind: &str, name: &str| {
        documents
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}:\n{secure}"))
            .clone()
    };
    let reader = named("ClusterRole", "keysmith-metrics-reader");
    assert_eq!(
        reader["rules"],
        serde_json::json!([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}])
    );
    let auth = named("ClusterRole", "keysmith-metrics-auth");
    assert_eq!(
        auth["rules"],
        serde_json::json!([
            {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
            {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}
        ])
    );
    named("ClusterRoleBinding", "keysmith-metrics-auth");
    let service = named("Service", "keysmith-metrics");
    assert_eq!(service["spec"]["ports"][0]["name"], "https");
    let monitor = named("ServiceMonitor", "keysmith");
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], "https");
    assert_eq!(endpoint["scheme"], "https");
    assert_eq!(
        endpoint["bearerTokenFile"],
        "/var/run/secrets/kubernetes.io/serviceaccount/token"
    );
    assert_eq!(endpoint["tlsConfig"]["insecureSkipVerify"], true);

    let with_cert = render(&[
        "--set",
        "metrics.secure=true",
        "--set",
        "metrics.certSecret=metrics-tls",
    ]);
    assert!(with_cert.contains("- --metrics-cert-dir=/etc/keysmith/metrics-tls\n"));
    assert!(with_cert.contains("secretName: metrics-tls\n"));
    let refused = run(
        helm(),
        &[
            "template",
            "k",
            "charts/keysmith",
            "--set",
            "metrics.secure=yes",
        ],
        None,
    );
    assert!(!refused.status.success(), "metrics.secure is a boolean");
}

#[tokio::test]
async fn the_chart_rbac_is_enough_for_secure_metrics() {
    use support::secure_metrics::{
        bind_metrics_reader, https_get, service_account_token, serving_cert,
    };
    needs_control_plane!();
    let cp = control_plane::control_plane();
    let client = control_plane::client().await;
    let install = run(
        helm(),
        &[
            "install",
            "scrape",
            "charts/keysmith",
            "--namespace",
            "scrape-system",
            "--create-namespace",
            "--skip-crds",
            "--set",
            "metrics.secure=true",
            "--wait=false",
        ],
        Some(&cp.kubeconfig),
    );
    assert!(install.status.success(), "helm install: {}", text(&install));

    // keysmith as the chart's ServiceAccount, serving metrics securely.
    let kubeconfig = cp.dir.join("scrape-sa.kubeconfig");
    service_account_kubeconfig(&client, "scrape-system", "scrape-keysmith", &kubeconfig).await;
    let ns = control_plane::namespace(&client, "scrape").await;
    let sa_plane = control_plane::ControlPlane {
        dir: cp.dir.clone(),
        kubeconfig,
        supervisor: cp.supervisor,
    };
    let (cert_dir, root) = serving_cert(&cp.dir.join("scrape-tls"));
    let cert_dir = cert_dir.to_string_lossy().into_owned();
    let operator = operator::Operator::start_with(
        &sa_plane,
        &ns,
        "-scrape",
        &["--metrics-secure", "--metrics-cert-dir", &cert_dir],
    );

    // A scraper bound to the chart's reader ClusterRole gets the metrics; one without, 403.
    let scraper = service_account_token(&client, &ns, "prometheus").await;
    let stranger = service_account_token(&client, &ns, "stranger").await;
    bind_metrics_reader(
        &client,
        &ns,
        "prometheus",
        "scrape-keysmith-metrics-reader",
        true,
    )
    .await;
    let scraper = format!("Bearer {scraper}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (code, body) = loop {
        let answer = https_get(operator.metrics_port, &root, Some(&scraper)).await;
        if let Some(answer) = answer.as_ref().filter(|a| a.0 == 200) {
            break answer.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no metrics for the reader with the chart's RBAC (last: {answer:?}):\n{}",
            operator.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(code, 200);
    assert!(body.contains("keysmith_reconciles_total"), "{body}");
    let refused = https_get(
        operator.metrics_port,
        &root,
        Some(&format!("Bearer {stranger}")),
    )
    .await;
    assert_eq!(refused.map(|a| a.0), Some(403));
    assert!(
        !operator.logs().contains("forbidden"),
        "a permission was missing:\n{}",
        operator.logs()
    );
}
