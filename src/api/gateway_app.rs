//! `GatewayApp`: an API-gateway app with its AppKey/AppSecret pair.

// kube-derive takes one `printcolumn(...)` per column; clippy reads the
// repeated `type_ =` keys inside them as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    CloudGatewayStatus, ConnectionRef, DeletionPolicy, GatewayLayout, Generator, Rollout,
    RotationStatus, SecretSource, StringMap,
};

/// What the GatewayApp should be. Every field is optional; effective values
/// of defaulted fields are reported in status.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "keysmith.dev",
    version = "v1alpha1",
    kind = "GatewayApp",
    doc = "An API-gateway app: an identity that calls APIs with an AppKey/AppSecret pair. keysmith issues the pair (generated, or custom values you supply), writes it into a Secret, and rotates it on schedule or on request.",
    plural = "gatewayapps",
    shortname = "gwapp",
    shortname = "gwapps",
    category = "keysmith",
    namespaced,
    status = "GatewayAppStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "AppKey", type_ = "string", json_path = ".status.appKey"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Secret", type_ = "string", json_path = ".status.secretName"),
    printcolumn(
        name = "Rotated",
        type_ = "date",
        json_path = ".status.lastRotationTime"
    ),
    printcolumn(
        name = "Next Rotation",
        type_ = "string",
        json_path = ".status.nextRotationTime"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayAppSpec {
    // The larger optional parts are boxed: each cached object pays the inline
    // size of every field, present or not (BENCHMARKS.md, memory).
    /// App name: 3–64 characters, starting with a letter; letters, digits and
    /// '_'. Default: metadata.name with '-' and '.' replaced by '_' (which must
    /// then satisfy the same rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    /// Description of the app, at most 255 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remark: Option<String>,
    /// Who created the app: USER (effective default) or MARKET.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<Creator>,
    /// App type: apig (effective default) or roma.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_type: Option<AppType>,
    /// Custom AppKey: 8–64 characters, starting with a letter or digit;
    /// letters, digits, '_' and '-'. Must be unique among all GatewayApps.
    /// Generated (UUID format) when absent; removing it later keeps the key in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_key: Option<String>,
    /// Custom AppSecret, read from a Secret in this namespace. It must be 8–64
    /// characters, starting with a letter or digit; letters, digits and
    /// _ - ! @ # $ %. Generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_secret_from: Option<Box<SecretSource>>,
    /// How a generated AppSecret is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<Generator>,
    /// Scheduled rotation and overlap. Absent: never rotate on a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Box<AppRotation>>,
    /// Any new value asks for exactly one reset (a new generated AppSecret, and
    /// a new AppKey with rotation.rotateAppKey). Declarative, for GitOps; the
    /// annotation keysmith.dev/reset-request does the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_request: Option<String>,
    /// The output Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Box<AppSecretTemplate>>,
    /// Workloads to restart when the issued credentials change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Box<Rollout>>,
    /// A Secret shaped for an API gateway, written beside the output Secret
    /// and kept in step with it (docs/gateways.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Box<GatewaySecret>>,
    /// Keep this app at a cloud API gateway equal to the resource (SPEC
    /// §11.2): created there with the issued AppKey/AppSecret, every reset,
    /// rotation and name or remark change pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_ref: Option<Box<ConnectionRef>>,
}

/// The gateway Secret: what one gateway reads, and nothing else.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySecret {
    /// The gateway's shape (docs/gateways.md shows each with the gateway's own objects).
    pub layout: GatewayLayout,
    /// Name of the gateway Secret. Default: the output Secret's name plus
    /// `-gateway`. Gateways that read one credential per Secret (Kong, APISIX)
    /// also get `<name>-previous`: the previous credential during a
    /// keepPrevious overlap, a random placeholder nobody is given otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Who created the app (the seeds' `creator`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Creator {
    /// Created by the API user.
    #[default]
    #[serde(rename = "USER")]
    User,
    /// Allocated by the marketplace.
    #[serde(rename = "MARKET")]
    Market,
}

/// The seeds' `app_type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AppType {
    #[default]
    #[serde(rename = "apig")]
    Apig,
    #[serde(rename = "roma")]
    Roma,
}

/// Rotation of a GatewayApp's credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppRotation {
    /// Rotate this long after the last rotation: a Go duration such as 720h or
    /// 1h30m, at least 1m. Not applied to a secret from appSecretFrom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// A rotation or reset also issues a new generated AppKey. Effective default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_app_key: Option<bool>,
    /// Keep the replaced AppSecret in the Secret (under `<appSecret key>_previous`)
    /// for this long, so consumers can accept both during the overlap. A Go
    /// duration; absent or 0 keeps nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_previous: Option<String>,
}

/// The Secret a GatewayApp's credentials are written to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppSecretTemplate {
    /// Secret name. Default: metadata.name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The Secret's type: Opaque (default) or kubernetes.io/basic-auth
    /// (username = the key, password = the secret; the data keys of those two
    /// cannot be renamed). Immutable, as a Secret's type is: changing it
    /// needs a new secret name.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<super::SecretType>,
    /// Names of the data keys (e.g. Kong's key-auth wants `key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<AppSecretKeys>,
    /// Labels copied onto the Secret (the resource's own labels never are):
    /// at most 64, with Kubernetes' label keys and values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<StringMap>,
    /// Annotations copied onto the Secret: at most 64, each value at most
    /// 4096 characters, keys and values together at most 16384.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// Delete (default): the Secret is owned by the GatewayApp and deleted with
    /// it. Retain: it stays behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// Data key names in a GatewayApp's Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppSecretKeys {
    /// Key holding the AppKey. Default app_key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_key: Option<String>,
    /// Key holding the AppSecret. Default app_secret; the kept previous secret
    /// goes under this name plus `_previous`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_secret: Option<String>,
    /// Key holding the app ID. Default app_id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
}

/// What keysmith issued, with the effective values of every defaulted field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayAppStatus {
    /// App ID: the object's uid, stable for its lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// Effective app name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    /// The AppKey in use (an identifier, not a secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_key: Option<String>,
    /// Effective creator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<Creator>,
    /// Effective app type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_type: Option<AppType>,
    /// When the credentials were first issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_time: Option<Time>,
    /// When the key, the secret or the app's attributes last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<Time>,
    /// With `spec.connectionRef`: what the cloud gateway holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Box<CloudGatewayStatus>>,
    #[serde(flatten)]
    pub rotation: RotationStatus,
}

super::common_spec!(GatewayAppSpec, app_secret_from, rotate_app_key);
