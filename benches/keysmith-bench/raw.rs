//! The raw baseline (SPEC §8): a tuned client of ours doing exactly
//! keysmith's minimal writes for each resource — one Secret create and one
//! status apply of the same sizes — at the concurrency that saturates the
//! apiserver; and what one Secret write costs by create and by apply.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use keysmith::api::{GatewayApp, SignatureKey};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::BoxError;
use crate::measure::CpuSeconds;

/// Exactly what keysmith writes per resource: a Secret of the same shape, and a status.
/// A Secret of the size and shape keysmith writes.
fn bench_secret(name: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([
                (
                    "app.kubernetes.io/managed-by".to_string(),
                    "keysmith-bench".to_string(),
                ),
                ("keysmith.dev/gatewayapp".to_string(), name.to_string()),
            ])),
            annotations: Some(BTreeMap::from([
                ("keysmith.dev/revision".to_string(), "1".to_string()),
                (
                    "keysmith.dev/rotated-at".to_string(),
                    "2026-11-24T10:00:00Z".to_string(),
                ),
                (
                    "keysmith.dev/rotation-reason".to_string(),
                    "Initial".to_string(),
                ),
                (
                    "keysmith.dev/issued-at".to_string(),
                    "2026-11-24T10:00:00Z".to_string(),
                ),
            ])),
            ..Default::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            ("app_key".to_string(), ByteString(vec![b'k'; 36])),
            ("app_secret".to_string(), ByteString(vec![b's'; 32])),
            ("app_id".to_string(), ByteString(vec![b'i'; 36])),
        ])),
        ..Default::default()
    }
}

/// N plain creates, then N server-side applies (new names) of the same
/// Secrets: seconds and CPU of each.
pub async fn secret_write_cost(
    client: &Client,
    ns: &str,
    n: usize,
    concurrency: usize,
) -> Result<(), BoxError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for apply in [false, true] {
        let cpu_before = CpuSeconds::sample(None);
        let started = Instant::now();
        stream::iter(0..n)
            .map(|i| {
                let secrets = secrets.clone();
                async move {
                    let name = format!("cost-{}-{i}", if apply { "apply" } else { "create" });
                    let secret = bench_secret(&name);
                    if apply {
                        let params = PatchParams::apply("keysmith-bench");
                        secrets
                            .patch(&name, &params, &Patch::Apply(&secret))
                            .await
                            .map(|_| ())
                    } else {
                        secrets
                            .create(&PostParams::default(), &secret)
                            .await
                            .map(|_| ())
                    }
                }
            })
            .buffer_unordered(concurrency)
            .try_collect::<Vec<_>>()
            .await?;
        let seconds = started.elapsed().as_secs_f64();
        let cpu = CpuSeconds::sample(None).since(cpu_before);
        let how = if apply {
            "server-side apply"
        } else {
            "create (POST)"
        };
        eprintln!("secret write cost: {n} × {how}: {seconds:.2}s; CPU s: {cpu}");
        println!("  {n} Secret writes by {how:<26} {seconds:>8.2} s   CPU s: {cpu}");
    }
    Ok(())
}

pub async fn raw_writes(
    client: &Client,
    ns: &str,
    objects: &[(bool, String)],
    concurrency: usize,
    secret_by_apply: bool,
) -> Result<Duration, BoxError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), ns);
    let started = Instant::now();
    stream::iter(objects.iter().cloned())
        .map(|(is_app, name)| {
            let (secrets, apps, keys) = (secrets.clone(), apps.clone(), keys.clone());
            async move {
                let secret = bench_secret(&name);
                if secret_by_apply {
                    let params = PatchParams::apply("keysmith-bench");
                    secrets.patch(&name, &params, &Patch::Apply(&secret)).await?;
                } else {
                    secrets.create(&PostParams::default(), &secret).await?;
                }
                let status = json!({
                    "apiVersion": "keysmith.dev/v1alpha1",
                    "kind": if is_app { "GatewayApp" } else { "SignatureKey" },
                    "status": {
                        "secretName": name, "revision": 1, "lastRotationReason": "Initial",
                        "lastRotationTime": "2026-11-24T10:00:00Z", "updateTime": "2026-11-24T10:00:00Z",
                        "observedGeneration": 1, "generatorLength": 32,
                        "conditions": [{"type": "Ready", "status": "True", "reason": "Issued",
                            "message": format!("credentials issued in Secret {name} (revision 1)"),
                            "lastTransitionTime": "2026-11-24T10:00:00Z", "observedGeneration": 1}]
                    }
                });
                let params = PatchParams::apply("keysmith-bench").force();
                if is_app {
                    apps.patch_status(&name, &params, &Patch::Apply(&status)).await.map(|_| ())
                } else {
                    keys.patch_status(&name, &params, &Patch::Apply(&status)).await.map(|_| ())
                }
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(started.elapsed())
}
