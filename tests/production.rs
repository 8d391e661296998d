//! `keysmith run` as production runs it: probes, metrics, graceful shutdown,
//! leader election between two processes, and `keysmith reset`.

mod support;

use support::conditions::is_ready;
use support::needs_control_plane;
use support::{control_plane, operator, policy, secure_metrics, wait};

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use keysmith::api::*;
use kube::api::{Api, PostParams};
use kube::runtime::wait::await_condition;
use operator::Operator;
use serde_json::json;

async fn create_app(api: &Api<GatewayApp>, name: &str, spec: serde_json::Value) {
    let app: GatewayApp = serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap();
    api.create(&PostParams::default(), &app).await.unwrap();
}

async fn wait_ready(api: &Api<GatewayApp>, name: &str, within: Duration) -> GatewayApp {
    wait::until(api, name, "Ready", within, is_ready, String::new).await
}

async fn wait_http(operator: &Operator, port: u16, path: &str, want: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((code, body)) = operator.http_get(port, path)
            && code == want
        {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} never answered {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the first sample line starting with `prefix`.
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn a_fresh_operator_exports_every_fixed_series_at_zero() {
    needs_control_plane!();
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "fresh").await;
    let operator = Operator::start(control_plane::control_plane(), &ns);
    let metrics = wait_http(&operator, operator.metrics_port, "/metrics", 200).await;
    for kind in ["GatewayApp", "SignatureKey"] {
        assert_eq!(
            sample(
                &metrics,
                &format!("keysmith_reconciles_total{{kind=\"{kind}\"}}")
            ),
            Some(0.0),
            "{metrics}"
        );
        for reason in [
            "ReadSecret",
            "WriteSecret",
            "WriteStatus",
            "ReadObject",
            "NoNamespace",
            "Generate",
        ] {
            assert_eq!(
                sample(
                    &metrics,
                    &format!(
                        "keysmith_reconcile_errors_total{{kind=\"{kind}\",reason=\"{reason}\"}}"
                    )
                ),
                Some(0.0),
                "{metrics}"
            );
        }
        for reason in [
            "Initial",
            "Schedule",
            "ResetRequest",
            "SecretRecreated",
            "SecretFromChanged",
        ] {
            assert_eq!(
                sample(
                    &metrics,
                    &format!("keysmith_rotations_total{{kind=\"{kind}\",reason=\"{reason}\"}}")
                ),
                Some(0.0),
                "{metrics}"
            );
        }
        assert!(
            metrics.contains(&format!(
                "keysmith_reconcile_duration_seconds_count{{kind=\"{kind}\"}} 0"
            )),
            "{metrics}"
        );
    }
}

#[tokio::test]
async fn probes_and_metrics_report_what_happened() {
    needs_control_plane!();
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "metrics").await;
    let operator = Operator::start(control_plane::control_plane(), &ns);
    wait_http(&operator, operator.health_port, "/healthz", 200).await;
    wait_http(&operator, operator.health_port, "/readyz", 200).await;

    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), &ns);
    create_app(
        &apps,
        "scheduled",
        json!({"rotation": {"interval": "720h"}}),
    )
    .await;
    create_app(
        &apps,
        "blocked",
        json!({"appSecretFrom": {"secretKeyRef": {"name": "missing", "key": "k"}}}),
    )
    .await;
    // A Secret write the apiserver refuses (a cluster policy): the write fails, and is counted.
    policy::refuse_labelled_secrets(&client, &ns).await;
    create_app(
        &apps,
        "unwritable",
        json!({"secret": {"labels": {(policy::REFUSE_LABEL): "yes"}}}),
    )
    .await;
    let app = wait_ready(&apps, "scheduled", Duration::from_secs(30)).await;
    let next = app
        .status
        .unwrap()
        .rotation
        .next_rotation_time
        .unwrap()
        .0
        .as_second() as f64;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let metrics = wait_http(&operator, operator.metrics_port, "/metrics", 200).await;
    let object = format!("{{kind=\"GatewayApp\",namespace=\"{ns}\",name=\"scheduled\"}}");
    assert_eq!(
        sample(
            &metrics,
            &format!("keysmith_next_rotation_timestamp_seconds{object}")
        ),
        Some(next),
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            &format!("keysmith_last_rotation_timestamp_seconds{object}")
        )
        .is_some()
    );
    assert_eq!(
        sample(&metrics, &format!("keysmith_ready{object}")),
        Some(1.0)
    );
    let blocked = format!("{{kind=\"GatewayApp\",namespace=\"{ns}\",name=\"blocked\"}}");
    assert_eq!(
        sample(&metrics, &format!("keysmith_ready{blocked}")),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &metrics,
            "keysmith_rotations_total{kind=\"GatewayApp\",reason=\"Initial\"}"
        ),
        Some(1.0)
    );
    assert!(sample(&metrics, "keysmith_reconciles_total{kind=\"GatewayApp\"}").unwrap() >= 2.0);
    assert!(
        metrics.contains("keysmith_reconcile_duration_seconds_bucket{le="),
        "{metrics}"
    );
    assert!(
        sample(
            &metrics,
            "keysmith_reconcile_errors_total{kind=\"GatewayApp\",reason=\"WriteSecret\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{metrics}"
    );
    // Bounded labels: nothing but kind, reason, target kind and the object's identity.
    for line in metrics.lines().filter(|l| l.starts_with("keysmith_")) {
        let labels = line
            .split_once('{')
            .map(|(_, rest)| rest.split_once('}').unwrap().0)
            .unwrap_or("");
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let key = pair.split('=').next().unwrap();
            assert!(
                ["kind", "reason", "target_kind", "namespace", "name", "le"].contains(&key),
                "unexpected label in {line}"
            );
        }
    }

    // A deleted object's series go away.
    apps.delete("scheduled", &Default::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = wait_http(&operator, operator.metrics_port, "/metrics", 200).await;
        if !metrics.contains("name=\"scheduled\"") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "series of a deleted object remain"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn sigterm_exits_promptly_and_cleanly() {
    needs_control_plane!();
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "sigterm").await;
    let mut operator = Operator::start(control_plane::control_plane(), &ns);
    wait_http(&operator, operator.health_port, "/readyz", 200).await;
    let pid = operator.pid().unwrap();
    let started = Instant::now();
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    while !operator.has_exited() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still running 5s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = operator.logs();
    assert!(logs.contains("SIGTERM: draining"), "{logs}");
    assert!(logs.contains("\"stopped\""), "{logs}");
}

async fn lease_holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("keysmith")
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
}

async fn wait_holder(leases: &Api<Lease>, want: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if lease_holder(leases).await.as_deref() == Some(want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{want} did not take the lease within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn one_leader_writes_and_a_standby_takes_over() {
    needs_control_plane!();
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "leader").await;
    let cp = control_plane::control_plane();
    let election = |id: &'static str| {
        vec![
            "--leader-election",
            "--leader-election-namespace",
            Box::leak(ns.clone().into_boxed_str()),
            "--leader-election-lease-duration",
            "6",
            "--leader-election-renew-grace",
            "2",
            "--leader-election-identity",
            id,
        ]
    };
    let mut first = Operator::start_with(cp, &ns, "-a", &election("replica-a"));
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    wait_holder(&leases, "replica-a", Duration::from_secs(20)).await;
    let mut second = Operator::start_with(cp, &ns, "-b", &election("replica-b"));
    // Both are ready: the standby does not wait for leadership to pass its probe.
    wait_http(&first, first.health_port, "/readyz", 200).await;
    wait_http(&second, second.health_port, "/readyz", 200).await;

    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), &ns);
    create_app(&apps, "led", json!({})).await;
    wait_ready(&apps, "led", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        first.logs().contains("\"reconciled\""),
        "the leader reconciles"
    );
    assert!(
        !second.logs().contains("\"reconciled\""),
        "the standby writes nothing"
    );

    // The leader dies without a word: the standby takes over once the lease expires.
    first.kill();
    let took = wait_holder(&leases, "replica-b", Duration::from_secs(20)).await;
    assert!(
        took <= Duration::from_secs(12),
        "takeover took {took:?} with a 6s lease"
    );
    create_app(&apps, "after-kill", json!({})).await;
    wait_ready(&apps, "after-kill", Duration::from_secs(30)).await;

    // A SIGTERM'd leader releases the lease: the standby takes over at once.
    first.restart();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(lease_holder(&leases).await.as_deref(), Some("replica-b"));
    second.stop();
    let handover = wait_holder(&leases, "replica-a", Duration::from_secs(20)).await;
    assert!(
        handover < Duration::from_secs(4),
        "handover after SIGTERM took {handover:?}"
    );
    create_app(&apps, "after-term", json!({})).await;
    wait_ready(&apps, "after-term", Duration::from_secs(30)).await;
}

#[tokio::test]
async fn keysmith_reset_requests_one_reset() {
    needs_control_plane!();
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "resetcmd").await;
    let cp = control_plane::control_plane();
    let _operator = Operator::start(cp, &ns);
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), &ns);
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), &ns);
    create_app(&apps, "resettable", json!({})).await;
    let key: SignatureKey = serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "SignatureKey",
        "metadata": {"name": "resettable-key"}, "spec": {}
    }))
    .unwrap();
    keys.create(&PostParams::default(), &key).await.unwrap();
    wait_ready(&apps, "resettable", Duration::from_secs(30)).await;

    let keysmith = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_keysmith"))
            .args(args)
            .env("KUBECONFIG", &cp.kubeconfig)
            .output()
            .unwrap()
    };
    let out = keysmith(&["reset", "gwapp/resettable", "-n", &ns]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "gatewayapp/resettable reset requested\n"
    );
    let revision_is = |n: i64| {
        move |a: Option<&GatewayApp>| {
            a.and_then(|a| a.status.as_ref()?.rotation.revision) == Some(n)
        }
    };
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(apps.clone(), "resettable", revision_is(2)),
    )
    .await
    .expect("reset by keysmith reset")
    .unwrap();

    let out = keysmith(&["reset", "--all", "-n", &ns]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("gatewayapp/resettable") && text.contains("signaturekey/resettable-key"),
        "{text}"
    );
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(apps.clone(), "resettable", revision_is(3)),
    )
    .await
    .expect("reset by --all")
    .unwrap();
    let key_reset =
        |k: Option<&SignatureKey>| k.and_then(|k| k.status.as_ref()?.rotation.revision) == Some(2);
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(keys.clone(), "resettable-key", key_reset),
    )
    .await
    .expect("signature key reset by --all")
    .unwrap();

    let out = keysmith(&["reset", "pods/x", "-n", &ns]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown kind"));
}

/// kubectl from KUBEBUILDER_ASSETS (matching the apiserver), else PATH.
fn kubectl() -> std::path::PathBuf {
    std::env::var("KUBEBUILDER_ASSETS")
        .map(|a| std::path::PathBuf::from(a).join("kubectl"))
        .ok()
        .filter(|p| p.exists())
        .unwrap_or_else(|| "kubectl".into())
}

/// What Argo CD and Flux do: diff the applied manifests against the live
/// objects. keysmith writes no spec and the CRDs set no defaults, so once
/// everything is Ready there is nothing to show.
#[tokio::test]
async fn gitops_diff_is_empty_after_keysmith_reconciled_the_examples() {
    needs_control_plane!();
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "gitops").await;
    let cp = control_plane::control_plane();
    let _operator = Operator::start(cp, &ns);
    let examples = env!("CARGO_MANIFEST_DIR").to_string() + "/examples/";
    let kubectl = |args: &[&str]| {
        std::process::Command::new(kubectl())
            .args(args)
            .args(["-n", &ns, "-f", &examples])
            .env("KUBECONFIG", &cp.kubeconfig)
            .output()
            .unwrap()
    };
    let applied = kubectl(&[
        "apply",
        "--server-side",
        "--field-manager",
        "argocd-controller",
    ]);
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), &ns);
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), &ns);
    for app in apps.list(&Default::default()).await.unwrap() {
        wait_ready(&apps, &app.metadata.name.unwrap(), Duration::from_secs(30)).await;
    }
    for key in keys.list(&Default::default()).await.unwrap() {
        let name = key.metadata.name.unwrap();
        wait::until(
            &keys,
            &name,
            "Ready",
            Duration::from_secs(30),
            is_ready,
            String::new,
        )
        .await;
    }
    let diff = kubectl(&[
        "diff",
        "--server-side",
        "--field-manager",
        "argocd-controller",
    ]);
    assert_eq!(
        diff.status.code(),
        Some(0),
        "kubectl diff shows drift:\n{}{}",
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );
    assert!(diff.stdout.is_empty());
}

#[tokio::test]
async fn secure_metrics_answer_only_callers_rbac_allows() {
    use secure_metrics::{bind_metrics_reader, https_get, service_account_token, serving_cert};
    needs_control_plane!();
    let cp = control_plane::control_plane();
    let client = control_plane::client().await;
    let ns = control_plane::namespace(&client, "secure-metrics").await;
    let (cert_dir, root) = serving_cert(&cp.dir.join(format!("{ns}-tls")));

    // "scraper" may get /metrics; "stranger" has no RBAC at all.
    let scraper = service_account_token(&client, &ns, "scraper").await;
    let stranger = service_account_token(&client, &ns, "stranger").await;
    let reader = format!("{ns}-metrics-reader");
    bind_metrics_reader(&client, &ns, "scraper", &reader, true).await;

    let cert_dir_arg = cert_dir.to_string_lossy().into_owned();
    let operator = Operator::start_with(
        cp,
        &ns,
        "",
        &["--metrics-secure", "--metrics-cert-dir", &cert_dir_arg],
    );
    // The probes stay plain HTTP.
    wait_http(&operator, operator.health_port, "/healthz", 200).await;
    let port = operator.metrics_port;
    let deadline = Instant::now() + Duration::from_secs(30);
    let unauthenticated = loop {
        if let Some(answer) = https_get(port, &root, None).await {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "no HTTPS on the metrics port:\n{}",
            operator.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(unauthenticated.0, 401, "no token: {unauthenticated:?}");
    let garbage = https_get(port, &root, Some("Bearer not-a-token")).await;
    assert_eq!(garbage.map(|a| a.0), Some(401), "an unknown token");
    let basic = https_get(port, &root, Some("Basic c2NyYXBlcjpwdw==")).await;
    assert_eq!(basic.map(|a| a.0), Some(401), "not a bearer token");

    let forbidden = https_get(port, &root, Some(&format!("Bearer {stranger}"))).await;
    assert_eq!(
        forbidden.as_ref().map(|a| a.0),
        Some(403),
        "a ServiceAccount without RBAC: {forbidden:?}"
    );
    // Twice: the second answer comes from the cache and is the same.
    for _ in 0..2 {
        let (code, body) = https_get(port, &root, Some(&format!("Bearer {scraper}")))
            .await
            .expect("an answer");
        assert_eq!(code, 200, "the reader's ServiceAccount: {body}");
        assert_eq!(
            sample(&body, "keysmith_reconciles_total{kind=\"GatewayApp\"}"),
            Some(0.0),
            "{body}"
        );
    }
    let again = https_get(port, &root, Some(&format!("Bearer {stranger}"))).await;
    assert_eq!(again.map(|a| a.0), Some(403), "a cached refusal");

    // Plain HTTP to the metrics port gets no HTTP answer at all.
    assert_eq!(operator.http_get(port, "/metrics"), None);
    let logs = operator.logs();
    assert!(
        !logs.contains(&scraper) && !logs.contains(&stranger),
        "a token reached the log"
    );
    bind_metrics_reader(&client, &ns, "scraper", &reader, false).await;
}
