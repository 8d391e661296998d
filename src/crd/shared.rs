//! Types shared by `GatewayApp` and `SignatureKey`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a user-supplied secret value comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretSource {
    /// A key of a Secret in the same namespace as this resource. keysmith reads
    /// it, validates it against the format rule, and copies it into the output
    /// Secret; a changed value is propagated (reason SecretFromChanged).
    pub secret_key_ref: SecretKeyRef,
}

/// A key in a Secret of the resource's namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Name of the Secret.
    pub name: String,
    /// Key within the Secret's data.
    pub key: String,
}

/// How generated secrets are made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Generator {
    /// Length of a generated secret. Must lie within the secret's format rule
    /// and give at least 128 bits of entropy (22 characters without symbols,
    /// 21 with); the aes sign_secret is always exactly 16. Effective default 32
    /// (16 for aes), reported in status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u32>,
    /// Also draw from the rule's special characters (_ - ! @ # $ %). The first
    /// character is always a letter or digit. Effective default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbols: Option<bool>,
}

/// What happens to the output Secret when the resource is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// The Secret carries an owner reference and is garbage-collected with the resource.
    #[default]
    Delete,
    /// The Secret stays behind when the resource is deleted.
    Retain,
}

/// The Ready condition's type.
pub const READY: &str = "Ready";

/// Why the issued credentials last changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RotationReason {
    /// First issue.
    Initial,
    /// `rotation.interval` elapsed.
    Schedule,
    /// A new `spec.resetRequest` or `keysmith.dev/reset-request` annotation value.
    ResetRequest,
    /// `spec.appKey` changed (GatewayApp).
    AppKeyChanged,
    /// `spec.signKey` changed (SignatureKey).
    KeyChanged,
    /// The value in the `…SecretFrom` Secret changed.
    SecretFromChanged,
    /// The output Secret was deleted and new credentials were issued.
    SecretRecreated,
}

/// Status fields common to both kinds: the rotation bookkeeping.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotationStatus {
    /// Name of the output Secret holding the credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// When the credentials (key or secret) last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation_time: Option<Time>,
    /// Why they last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation_reason: Option<RotationReason>,
    /// When the next scheduled rotation is due. Absent without
    /// `rotation.interval`, and when the secret comes from a `…SecretFrom` Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_time: Option<Time>,
    /// While a replaced secret is kept under `*_previous`: when it will be removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_expiry_time: Option<Time>,
    /// Increases by one per issued credential set; the Secret carries the same
    /// number in its `keysmith.dev/revision` annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// The last spec.resetRequest value that was carried out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_reset_request: Option<String>,
    /// The last keysmith.dev/reset-request annotation value that was carried
    /// out (kept apart from observedResetRequest so that using one never
    /// re-triggers the other).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_reset_annotation: Option<String>,
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Effective length of generated secrets (generator.length or its default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_length: Option<u32>,
    /// Current state. `Ready` is True once the credentials are issued and the
    /// Secret matches them; its reason says why not otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Labels and annotations copied onto the output Secret.
pub type StringMap = BTreeMap<String, String>;
