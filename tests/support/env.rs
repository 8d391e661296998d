//! One test's world: a namespace on this binary's control plane with the
//! operator running in it, and the reads and waits tests of GatewayApps
//! share. Test files add their own methods with `impl Env` blocks.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use keysmith::api::GatewayApp;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use super::control_plane;
use super::operator::Operator;

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

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Applies a GatewayApp with `spec`.
    pub async fn create_app(&self, name: &str, spec: serde_json::Value) {
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

    pub async fn app(&self, name: &str) -> GatewayApp {
        self.apps().get(name).await.unwrap()
    }

    /// Waits until `check` holds for the app; fails with its status and the
    /// end of the operator's log.
    pub async fn wait_app(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&GatewayApp) -> bool,
    ) -> GatewayApp {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            if let Ok(app) = self.apps().get(name).await
                && check(&app)
            {
                return app;
            }
            if tokio::time::Instant::now() > deadline {
                let app = self.apps().get(name).await.ok();
                panic!(
                    "{name}: {what}: {:#?}\n{}",
                    app.and_then(|a| a.status),
                    tail(&self.operator.logs())
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
                tail(&self.operator.logs())
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Sets `spec.resetRequest` (does not wait for it).
    pub async fn request_reset(&self, name: &str, value: &str) {
        self.apps()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"resetRequest": value}})),
            )
            .await
            .unwrap();
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
}

/// The last 15 lines of a log.
pub fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
