//! `GatewayConnection` and `ClusterGatewayConnection` (SPEC §11.1): one
//! cloud API gateway's management API — which provider, where, and with
//! which credentials — that GatewayApps and SignatureKeys sync to through
//! `spec.connectionRef`. The pair follows cert-manager's Issuer/ClusterIssuer.

// kube-derive takes one `printcolumn(...)` per column; clippy reads the
// repeated `type_ =` keys inside them as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The management APIs keysmith speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum GatewayProvider {
    /// Huawei Cloud API Gateway (APIG), dedicated instances (API v2).
    #[default]
    #[serde(rename = "HuaweiAPIG")]
    HuaweiApig,
    /// Alibaba Cloud API Gateway (CloudAPI 2016-07-14).
    #[serde(rename = "AlibabaAPIGateway")]
    AlibabaApiGateway,
}

/// A Secret holding the access key keysmith signs its requests with.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsRef {
    /// The Secret's name: in the connection's namespace for a
    /// GatewayConnection (and opted in with `keysmith.dev/allow-source: "true"`,
    /// like any source), in keysmith's own namespace for a
    /// ClusterGatewayConnection.
    pub name: String,
    /// The data key holding the access key id. Default `accessKeyId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id_key: Option<String>,
    /// The data key holding the access key secret. Default `accessKeySecret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_secret_key: Option<String>,
}

/// Client-side limits, kept below the providers' documented API quotas by default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientLimits {
    /// Sustained requests per second to this gateway (1–1000). Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<u32>,
    /// Requests allowed at once above that rate (1–1000). Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// One request's timeout, a Go duration (`10s`). Default 10s, at most 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// Where a gateway's management API is and how keysmith talks to it.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "keysmith.dev",
    version = "v1alpha1",
    kind = "GatewayConnection",
    doc = "A cloud API gateway's management API (Huawei APIG, Alibaba API Gateway) that GatewayApps and SignatureKeys in this namespace sync to with spec.connectionRef. Ready once a read-only call with the credentials succeeded.",
    plural = "gatewayconnections",
    shortname = "gwconn",
    category = "keysmith",
    namespaced,
    status = "GatewayConnectionStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "Provider", type_ = "string", json_path = ".spec.provider"),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".spec.endpoint"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Checked", type_ = "date", json_path = ".status.lastCheckTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConnectionSpec {
    pub provider: GatewayProvider,
    /// The management API's base URL: `https://…` (a private endpoint or a
    /// region's public one); plain `http://` only to a loopback host.
    pub endpoint: String,
    /// The region the endpoint serves (`cn-north-4`, `cn-hangzhou`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Huawei: the project id (required for HuaweiAPIG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Huawei: the APIG instance id (required for HuaweiAPIG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    pub credentials_ref: CredentialsRef,
    /// PEM certificates trusted beside the system's roots, for private endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ClientLimits>,
    /// How often keysmith compares every synced app with the gateway (paged
    /// lists) and repairs drift, a Go duration. Default 10m, at least 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_check_interval: Option<String>,
}

/// The same, cluster-wide: usable from the namespaces `namespaceSelector` picks.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "keysmith.dev",
    version = "v1alpha1",
    kind = "ClusterGatewayConnection",
    doc = "A cloud API gateway's management API usable from every namespace its namespaceSelector picks (none when unset). Its credentials Secret lives in keysmith's own namespace.",
    plural = "clustergatewayconnections",
    shortname = "cgwconn",
    category = "keysmith",
    status = "GatewayConnectionStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "Provider", type_ = "string", json_path = ".spec.provider"),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".spec.endpoint"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Checked", type_ = "date", json_path = ".status.lastCheckTime"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterGatewayConnectionSpec {
    pub provider: GatewayProvider,
    /// The management API's base URL: `https://…`; plain `http://` only to a loopback host.
    pub endpoint: String,
    /// The region the endpoint serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Huawei: the project id (required for HuaweiAPIG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Huawei: the APIG instance id (required for HuaweiAPIG).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    pub credentials_ref: CredentialsRef,
    /// PEM certificates trusted beside the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ClientLimits>,
    /// How often synced apps are compared with the gateway. Default 10m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_check_interval: Option<String>,
    /// The namespaces whose resources may use this connection (by their
    /// labels). Unset: none may; `{}`: every namespace. Any other namespace
    /// that refers to it gets Ready=False, ConnectionNotAllowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
}

/// What keysmith last found when it checked the connection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConnectionStatus {
    /// When the last read-only check ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<Time>,
    /// The metadata.generation the last check used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`: the credentials work against the endpoint; otherwise the
    /// reason names the provider's error (bad credentials, unknown instance,
    /// unreachable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// Which connection kind `spec.connectionRef` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ConnectionKind {
    #[default]
    GatewayConnection,
    ClusterGatewayConnection,
}

/// `spec.connectionRef`: keep this resource's app (or signature key) at a
/// cloud gateway equal to the resource (SPEC §11.2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionRef {
    /// `GatewayConnection` (default; same namespace) or `ClusterGatewayConnection`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ConnectionKind>,
    /// The connection's name.
    pub name: String,
}

/// `status.gateway`: what the cloud gateway holds for this resource.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudGatewayStatus {
    /// `GatewayConnection/NAME` or `ClusterGatewayConnection/NAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    /// The gateway's own id of the app or signature key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The credential revision the gateway holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// The AppKey (or sign key name) the gateway holds: an identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A digest of the name and remark the gateway holds (a change is pushed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<String>,
    /// A keyed digest of the secret the gateway holds (keysmith's record
    /// key; not the value): the drift check compares it with the gateway's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_digest: Option<String>,
    /// The previous AppKey still held at the gateway for the overlap
    /// (providers with several key pairs per app); removed when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_key: Option<String>,
    /// When keysmith last wrote to or checked the gateway for this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<Time>,
    /// The deletion cleanup's state while the finalizer waits
    /// (`keysmith.dev/skip-gateway-cleanup: "true"` releases it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup: Option<String>,
}
