//! Helpers of the fault tests: bulk resources, a watch that records every
//! credential value each Secret ever held, convergence and invariant checks.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use keysmith::api::names::labels;
use keysmith::api::*;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::conditions::is_ready;

/// Creates `count` resources, alternating GatewayApps and SignatureKeys.
pub async fn create_resources(client: &Client, ns: &str, count: usize) -> Vec<(bool, String)> {
    let names: Vec<(bool, String)> = (0..count)
        .map(|i| (i % 2 == 0, format!("res-{i:04}")))
        .collect();
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), ns);
    stream::iter(names.clone())
        .map(|(is_app, name)| {
            let (apps, keys) = (apps.clone(), keys.clone());
            async move {
                let object = json!({"apiVersion": "keysmith.dev/v1alpha1", "metadata": {"name": name}, "spec": {}});
                if is_app {
                    let mut app = object;
                    app["kind"] = json!("GatewayApp");
                    apps.create(&PostParams::default(), &serde_json::from_value(app).unwrap()).await.map(|_| ())
                } else {
                    let mut key = object;
                    key["kind"] = json!("SignatureKey");
                    keys.create(&PostParams::default(), &serde_json::from_value(key).unwrap()).await.map(|_| ())
                }
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .expect("create resources");
    names
}

/// Every credential secret value each output Secret ever held, by owner name.
#[derive(Clone, Default)]
pub struct SecretValues(Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>);

impl SecretValues {
    pub fn watch(client: Client, ns: &str) -> SecretValues {
        let values = SecretValues::default();
        let recorder = values.clone();
        let api: Api<Secret> = Api::namespaced(client, ns);
        let config = watcher::Config::default().labels(&format!(
            "{}={}",
            labels::MANAGED_BY,
            labels::MANAGED_BY_VALUE
        ));
        tokio::spawn(async move {
            let mut stream = watcher(api, config)
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Some(next) = stream.next().await {
                let Ok(secret) = next else { continue };
                let owner = secret
                    .labels()
                    .get(labels::GATEWAY_APP)
                    .or_else(|| secret.labels().get(labels::SIGNATURE_KEY))
                    .cloned()
                    .unwrap_or_default();
                let data = secret.data.unwrap_or_default();
                for key in ["app_secret", "sign_secret"] {
                    if let Some(ByteString(bytes)) = data.get(key) {
                        let value = String::from_utf8_lossy(bytes).into_owned();
                        recorder
                            .0
                            .lock()
                            .unwrap()
                            .entry(owner.clone())
                            .or_default()
                            .insert(value);
                    }
                }
            }
        });
        values
    }

    pub fn snapshot(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.0.lock().unwrap().clone()
    }
}

#[derive(Clone, Debug)]
pub struct Converged {
    pub revision: i64,
}

/// Waits until every resource is Ready and has carried out the reset
/// request expected of it; returns each one's revision.
pub async fn wait_converged(
    client: &Client,
    ns: &str,
    names: &[(bool, String)],
    expected_reset: &BTreeMap<String, String>,
    timeout: Duration,
) -> BTreeMap<String, Converged> {
    let apps: Api<GatewayApp> = Api::namespaced(client.clone(), ns);
    let keys: Api<SignatureKey> = Api::namespaced(client.clone(), ns);
    let deadline = Instant::now() + timeout;
    loop {
        let mut states = BTreeMap::new();
        let mut waiting = Vec::new();
        let app_list = apps.list(&ListParams::default()).await;
        let key_list = keys.list(&ListParams::default()).await;
        if let (Ok(app_list), Ok(key_list)) = (app_list, key_list) {
            let rotation_of =
                |name: String, status: Option<&RotationStatus>| (name, status.cloned());
            let all: Vec<(String, Option<RotationStatus>)> = app_list
                .items
                .iter()
                .map(|a| rotation_of(a.name_any(), a.status.as_ref().map(|s| &s.rotation)))
                .chain(
                    key_list
                        .items
                        .iter()
                        .map(|k| rotation_of(k.name_any(), k.status.as_ref().map(|s| &s.rotation))),
                )
                .collect();
            for (name, status) in all {
                let done = status.as_ref().is_some_and(|s| {
                    is_ready(s)
                        && expected_reset
                            .get(&name)
                            .is_none_or(|r| s.observed_reset_request.as_ref() == Some(r))
                });
                if done {
                    states.insert(
                        name,
                        Converged {
                            revision: status.and_then(|s| s.revision).unwrap_or(0),
                        },
                    );
                } else {
                    waiting.push(name);
                }
            }
            if waiting.is_empty() && states.len() == names.len() {
                return states;
            }
        }
        assert!(
            Instant::now() < deadline,
            "not converged after {timeout:?}: {} waiting, e.g. {:?}",
            waiting.len(),
            waiting.first()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every resource has its Secret, and every keysmith Secret its resource.
pub async fn assert_nothing_orphaned(client: &Client, ns: &str, names: &[(bool, String)]) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let managed = secrets
        .list(&ListParams::default().labels(&format!(
            "{}={}",
            labels::MANAGED_BY,
            labels::MANAGED_BY_VALUE
        )))
        .await
        .unwrap();
    let secret_names: BTreeSet<String> = managed.items.iter().map(|s| s.name_any()).collect();
    let resource_names: BTreeSet<String> = names.iter().map(|(_, n)| n.clone()).collect();
    assert_eq!(
        secret_names, resource_names,
        "Secrets and resources do not match one to one"
    );
}

pub async fn resource_versions(client: &Client, ns: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for app in Api::<GatewayApp>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
    {
        out.insert(
            format!("app/{}", app.name_any()),
            app.resource_version().unwrap_or_default(),
        );
    }
    for key in Api::<SignatureKey>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
    {
        out.insert(
            format!("key/{}", key.name_any()),
            key.resource_version().unwrap_or_default(),
        );
    }
    for secret in Api::<Secret>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
    {
        out.insert(
            format!("secret/{}", secret.name_any()),
            secret.resource_version().unwrap_or_default(),
        );
    }
    out
}
