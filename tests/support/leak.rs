//! The leak scan shared by the controller and fault tests: no secret value
//! in the operator's logs, the namespace's events, or the resources.

#![allow(dead_code)]

use k8s_openapi::ByteString;
use k8s_openapi::api::events::v1::Event;
use keysmith::api::{GatewayApp, SignatureKey};
use kube::Client;
use kube::api::{Api, ListParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A value as Secret data carries it over the wire (base64; ByteString does that).
pub fn base64(value: &str) -> String {
    serde_json::to_value(ByteString(value.as_bytes().to_vec()))
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

async fn listed<K>(client: &Client, ns: &str) -> String
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let items = Api::<K>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    serde_json::to_string(&items).unwrap()
}

/// None of `values` appears, raw or base64, in `logs` (which must be at debug
/// level) or in the events, GatewayApps and SignatureKeys of `ns`.
pub async fn assert_no_leak<'a>(
    logs: &str,
    client: &Client,
    ns: &str,
    values: impl IntoIterator<Item = &'a String>,
) {
    assert!(logs.contains("DEBUG"), "the scan needs debug-level logs");
    let haystack = [
        logs.to_string(),
        listed::<Event>(client, ns).await,
        listed::<GatewayApp>(client, ns).await,
        listed::<SignatureKey>(client, ns).await,
    ]
    .concat();
    let values: Vec<&String> = values.into_iter().collect();
    assert!(!values.is_empty(), "no values were recorded to scan for");
    for value in values {
        assert!(!haystack.contains(value.as_str()), "a secret value leaked");
        assert!(
            !haystack.contains(&base64(value)),
            "a secret value leaked (base64)"
        );
    }
}
