//! One test's world: a namespace on this binary's control plane with the
//! operator running in it, and the reads, writes and waits tests share.
//! Test files add their own methods with `impl Env` blocks.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use keysmith::api::names::annotations;
use keysmith::api::{GatewayApp, SignatureKey};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::conditions::is_ready;
use super::control_plane;
use super::operator::Operator;
use super::wait;
pub use super::wait::tail;

/// How long keysmith may take to issue, reset or report.
pub const SETTLE: Duration = Duration::from_secs(60);

pub struct Env {
    pub client: Client,
    pub ns: String,
    pub operator: Operator,
}

impl Env {
    /// A fresh namespace named after `hint`, with the operator watching it.
    pub async fn new(hint: &str) -> Env {
        let client = control_plane::client().await;
        let ns = control_plane::namespace(&client, hint).await;
        let operator = Operator::start(control_plane::control_plane(), &ns);
        Env {
            client,
            ns,
            operator,
        }
    }

    pub fn apps(&self) -> Api<GatewayApp> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn keys(&self) -> Api<SignatureKey> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub async fn app(&self, name: &str) -> GatewayApp {
        self.apps().get(name).await.unwrap()
    }

    pub async fn secret(&self, name: &str) -> Secret {
        self.secrets().get(name).await.unwrap()
    }
}

/// Writing the resources and Secrets a test starts from.
impl Env {
    /// Applies a GatewayApp with `spec` (server-side apply, as `kubectl apply --server-side`).
    pub async fn apply_app(&self, name: &str, spec: serde_json::Value) {
        let app = json!({
            "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
            "metadata": {"name": name}, "spec": spec
        });
        self.apps()
            .patch(
                name,
                &PatchParams::apply("keysmith-tests"),
                &Patch::Apply(&app),
            )
            .await
            .unwrap_or_else(|e| panic!("creating GatewayApp {name}: {e}"));
    }

    /// Creates a GatewayApp with `spec`, as keysmith's own types serialize it.
    pub async fn create_app(&self, name: &str, spec: serde_json::Value) -> GatewayApp {
        self.apps()
            .create(&PostParams::default(), &typed("GatewayApp", name, spec))
            .await
            .unwrap()
    }

    /// Creates a SignatureKey with `spec`, as keysmith's own types serialize it.
    pub async fn create_key(&self, name: &str, spec: serde_json::Value) -> SignatureKey {
        self.keys()
            .create(&PostParams::default(), &typed("SignatureKey", name, spec))
            .await
            .unwrap()
    }

    /// Merge-patches a GatewayApp as a user with kubectl would.
    pub async fn patch_app(&self, name: &str, patch: serde_json::Value) {
        self.apps()
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .unwrap();
    }

    /// A Secret that may be read as a source (it carries the opt-in).
    pub async fn create_secret(&self, name: &str, data: &[(&str, &str)]) {
        self.create_secret_with(name, data, &[(annotations::ALLOW_SOURCE, "true")], &[])
            .await;
    }

    pub async fn create_secret_with(
        &self,
        name: &str,
        data: &[(&str, &str)],
        annotations: &[(&str, &str)],
        labels: &[(&str, &str)],
    ) {
        let map = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: map(annotations),
                labels: map(labels),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        };
        self.secrets()
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }

    /// Sets `spec.resetRequest` (does not wait for it).
    pub async fn request_reset(&self, name: &str, value: &str) {
        self.patch_app(name, json!({"spec": {"resetRequest": value}}))
            .await;
    }
}

/// Reading what keysmith wrote.
impl Env {
    /// The Secret's data as text.
    pub async fn secret_data(&self, name: &str) -> BTreeMap<String, String> {
        text_data(&self.secret(name).await)
    }

    /// The Secret's data as text (None: no such Secret).
    pub async fn secret_data_opt(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let secret = self.secrets().get_opt(name).await.unwrap()?;
        Some(text_data(&secret))
    }

    /// `(key, secret)`: two entries of the Secret's data as it holds them now.
    pub async fn credential(&self, name: &str, key: &str, secret: &str) -> (String, String) {
        let data = self.secret_data_opt(name).await.expect("the output Secret");
        (data[key].clone(), data[secret].clone())
    }

    /// The Secrets' resourceVersions.
    pub async fn secret_versions(&self, names: &[&str]) -> Vec<Option<String>> {
        let mut all = Vec::new();
        for name in names {
            all.push(self.secret(name).await.resource_version());
        }
        all
    }

    /// The events about object `name`: (type, reason, note).
    pub async fn events_for(&self, name: &str) -> Vec<(String, String, String)> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        let list = events.list(&ListParams::default()).await.unwrap();
        list.items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }
}

/// Waiting for keysmith: each fails with what it waited for, the object's
/// status and the end of the operator's log.
impl Env {
    /// Waits until object `name` of `api` satisfies `check`.
    pub async fn wait_for<K>(
        &self,
        api: Api<K>,
        name: &str,
        what: &str,
        check: impl Fn(&K) -> bool,
    ) -> K
    where
        K: Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    {
        wait::until(&api, name, what, SETTLE, check, || self.log_tail()).await
    }

    pub async fn wait_app(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&GatewayApp) -> bool,
    ) -> GatewayApp {
        self.wait_for(self.apps(), name, what, check).await
    }

    pub async fn wait_key(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&SignatureKey) -> bool,
    ) -> SignatureKey {
        self.wait_for(self.keys(), name, what, check).await
    }

    /// Waits until the GatewayApp is Ready.
    pub async fn wait_ready(&self, name: &str) -> GatewayApp {
        self.wait_app(name, "Ready", is_ready).await
    }

    /// Waits for an event with `reason` about `name`; returns it.
    pub async fn wait_event(&self, name: &str, reason: &str) -> (String, String, String) {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let found = self
                .events_for(name)
                .await
                .into_iter()
                .find(|e| e.1 == reason);
            if let Some(event) = found {
                return event;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {reason} event for {name}\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sets `spec.resetRequest` and waits until the status records it.
    pub async fn reset(&self, name: &str, value: &str) -> GatewayApp {
        self.request_reset(name, value).await;
        self.wait_app(name, "reset carried out", |a| {
            a.status
                .as_ref()
                .and_then(|s| s.rotation.observed_reset_request.as_deref())
                == Some(value)
        })
        .await
    }

    /// The end of the operator's log.
    pub fn log_tail(&self) -> String {
        format!("operator log tail:\n{}", tail(&self.operator.logs()))
    }
}

/// `kind` named `name` with `spec`, as keysmith's type `K` holds it.
fn typed<K: DeserializeOwned>(kind: &str, name: &str, spec: serde_json::Value) -> K {
    serde_json::from_value(json!({
        "apiVersion": "keysmith.dev/v1alpha1", "kind": kind,
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap()
}

/// A Secret's data as text.
pub fn text_data(secret: &Secret) -> BTreeMap<String, String> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect()
}
