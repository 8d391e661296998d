//! keysmith in front of a cloud gateway (a conformance server): the
//! credentials Secret, the GatewayConnection, the waits on it, and
//! keysmith's own client to read what the server holds. Shared by
//! tests/cloud_gateway.rs and tests/cloud_faults.rs.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use keysmith::api::names::annotations;
use keysmith::api::{GatewayApp, GatewayConnection};
use keysmith::providers::{self, AccessKey, Limits, Provider, SecretValue};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::conditions::{condition, ready};
use super::conformance::{self, ConformanceServer};
use super::env::Env;

/// Ready and GatewaySynced, `status.revision` and `status.gateway.revision`
/// all at `revision`.
pub fn synced_at(app: &GatewayApp, revision: i64) -> bool {
    let status = app.status.as_ref();
    condition(app, "Ready").is_some_and(|c| c.0 == "True")
        && condition(app, "GatewaySynced").is_some_and(|c| c.0 == "True")
        && status.and_then(|s| s.rotation.revision) == Some(revision)
        && status
            .and_then(|s| s.gateway.as_ref())
            .and_then(|g| g.revision)
            == Some(revision)
}

/// The server's provider: its name in a GatewayConnection, and keysmith's.
pub fn provider_of(server: &ConformanceServer) -> (&'static str, Provider) {
    match server.provider {
        "huawei" => ("HuaweiAPIG", Provider::HuaweiApig),
        _ => ("AlibabaAPIGateway", Provider::AlibabaApiGateway),
    }
}

/// keysmith's own client, to read what the server holds.
pub fn reader(server: &ConformanceServer) -> providers::Client {
    providers::Client::connect(&providers::Connection {
        provider: provider_of(server).1,
        endpoint: server.endpoint.clone(),
        region: conformance::REGION.into(),
        project_id: Some(conformance::PROJECT_ID.into()),
        instance_id: Some(conformance::INSTANCE_ID.into()),
        access_key: AccessKey {
            id: conformance::ACCESS_KEY_ID.into(),
            secret: SecretValue::new(conformance::ACCESS_KEY_SECRET),
        },
        ca_bundle: None,
        limits: Limits::default(),
    })
    .expect("a client of the conformance server")
}

/// A connection's credentials Secret in `ns`: the servers' access key id
/// with `secret`, opted in as a source when `opt_in`.
pub async fn credentials_secret(
    client: &kube::Client,
    ns: &str,
    name: &str,
    secret: &str,
    opt_in: bool,
) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let annotations = opt_in
        .then(|| BTreeMap::from([(annotations::ALLOW_SOURCE.to_string(), "true".to_string())]));
    let object = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            annotations,
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (
                "accessKeyId".to_string(),
                ByteString(conformance::ACCESS_KEY_ID.into()),
            ),
            (
                "accessKeySecret".to_string(),
                ByteString(secret.as_bytes().to_vec()),
            ),
        ])),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

/// A GatewayConnection's spec naming `server` and the Secret `credentials`.
pub fn connection_spec(server: &ConformanceServer, credentials: &str) -> serde_json::Value {
    json!({
        "provider": provider_of(server).0,
        "endpoint": server.endpoint,
        "region": conformance::REGION,
        "projectId": conformance::PROJECT_ID,
        "instanceId": conformance::INSTANCE_ID,
        "credentialsRef": {"name": credentials},
    })
}

/// Applies a GatewayConnection with `spec` in the test's namespace.
pub async fn apply_connection(env: &Env, name: &str, spec: serde_json::Value) {
    let object = json!({"apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayConnection",
                        "metadata": {"name": name}, "spec": spec});
    env.connections()
        .patch(
            name,
            &PatchParams::apply("keysmith-tests"),
            &Patch::Apply(&object),
        )
        .await
        .unwrap();
}

/// Waits until the connection's Ready is `want`; its (reason, message).
pub async fn wait_connection(env: &Env, name: &str, want: &str) -> (String, String) {
    let is = |c: &GatewayConnection| ready(c).is_some_and(|r| r.0 == want);
    let what = format!("Ready={want}");
    let connection = env.wait_for(env.connections(), name, &what, is).await;
    let (_, reason, message) = ready(&connection).expect("a Ready condition");
    (reason, message)
}

/// The credentials Secret most tests' connections name: the conformance
/// servers' access key, opted in.
pub const CREDENTIALS: &str = "gw-credentials";

impl Env {
    /// Creates [`CREDENTIALS`] in the test's namespace.
    pub async fn gateway_credentials(&self) {
        let secret = conformance::ACCESS_KEY_SECRET;
        credentials_secret(&self.client, &self.ns, CREDENTIALS, secret, true).await;
    }

    pub fn connections(&self) -> Api<GatewayConnection> {
        Api::namespaced(self.client.clone(), &self.ns)
    }
}
