//! What the benchmark creates and deletes: namespaces, GatewayApps and
//! SignatureKeys (half each, by name), unrelated Secrets.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use keysmith::api::{GatewayApp, SignatureKey};
use kube::Client;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use crate::BoxError;

fn app_object(name: &str) -> GatewayApp {
    serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
        "metadata": {"name": name}, "spec": {}
    }))
    .expect("static object")
}

fn key_object(name: &str) -> SignatureKey {
    serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": "SignatureKey",
        "metadata": {"name": name}, "spec": {}
    }))
    .expect("static object")
}

pub fn names(prefix: &str, count: usize) -> Vec<(bool, String)> {
    (0..count)
        .map(|i| (i % 2 == 0, format!("{prefix}-{i:06}")))
        .collect()
}

/// Creates the GatewayApp (`is_app`) or the SignatureKey `name`.
pub async fn create_one(
    apps: &Api<GatewayApp>,
    keys: &Api<SignatureKey>,
    is_app: bool,
    name: &str,
) -> Result<(), kube::Error> {
    let params = PostParams::default();
    if is_app {
        apps.create(&params, &app_object(name)).await.map(|_| ())
    } else {
        keys.create(&params, &key_object(name)).await.map(|_| ())
    }
}

pub async fn create_namespace(client: &Client, name: &str) -> Result<(), BoxError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
    api.create(&PostParams::default(), &ns).await?;
    Ok(())
}

pub async fn create_resources(
    client: &Client,
    ns: &str,
    objects: &[(bool, String)],
    concurrency: usize,
) -> Result<(), BoxError> {
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), ns);
    stream::iter(objects.iter().cloned())
        .map(|(is_app, name)| {
            let (apps, keys) = (apps.clone(), keys.clone());
            async move { create_one(&apps, &keys, is_app, &name).await }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Deletes the namespaces and waits until they are gone (the control
/// plane's namespace controller and garbage collector remove everything in
/// them); the seconds that took.
pub async fn delete_namespaces(client: &Client, all: &[&String]) -> Result<f64, BoxError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in all {
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(900);
    for ns in all {
        while namespaces.get_opt(ns).await?.is_some() {
            if Instant::now() > deadline {
                return Err(format!("namespace {ns} still terminating after 15 minutes").into());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

pub async fn unrelated_secrets(
    client: &Client,
    ns: &str,
    count: usize,
    concurrency: usize,
) -> Result<(), BoxError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    stream::iter(0..count)
        .map(|i| {
            let secrets = secrets.clone();
            async move {
                let secret = Secret {
                    metadata: ObjectMeta {
                        name: Some(format!("unrelated-{i:06}")),
                        ..Default::default()
                    },
                    data: Some(BTreeMap::from([(
                        "payload".to_string(),
                        ByteString(vec![b'x'; 64]),
                    )])),
                    ..Default::default()
                };
                secrets
                    .create(&PostParams::default(), &secret)
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}
