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

/// The output Secret's `type` (immutable in Kubernetes: changing it needs a
/// new Secret name).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SecretType {
    /// A generic Secret with keysmith's data keys.
    #[default]
    Opaque,
    /// `username` holds the key and `password` the secret, as Kubernetes
    /// requires of this type (the data keys cannot be renamed).
    #[serde(rename = "kubernetes.io/basic-auth")]
    BasicAuth,
}

impl SecretType {
    /// The wire spelling (as serde writes it; a unit test holds them equal).
    pub const fn as_str(self) -> &'static str {
        match self {
            SecretType::Opaque => "Opaque",
            SecretType::BasicAuth => "kubernetes.io/basic-auth",
        }
    }
}

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

impl RotationReason {
    pub const ALL: [RotationReason; 7] = [
        RotationReason::Initial,
        RotationReason::Schedule,
        RotationReason::ResetRequest,
        RotationReason::AppKeyChanged,
        RotationReason::KeyChanged,
        RotationReason::SecretFromChanged,
        RotationReason::SecretRecreated,
    ];

    /// The wire spelling (as serde writes it; a unit test holds them equal).
    pub const fn as_str(self) -> &'static str {
        match self {
            RotationReason::Initial => "Initial",
            RotationReason::Schedule => "Schedule",
            RotationReason::ResetRequest => "ResetRequest",
            RotationReason::AppKeyChanged => "AppKeyChanged",
            RotationReason::KeyChanged => "KeyChanged",
            RotationReason::SecretFromChanged => "SecretFromChanged",
            RotationReason::SecretRecreated => "SecretRecreated",
        }
    }

    pub fn parse(text: &str) -> Option<RotationReason> {
        RotationReason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Workloads whose pods restart when the issued credentials change (SPEC
/// §9.1), so that pods reading the Secret as environment variables or at
/// start-up pick up the new values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollout {
    /// Deployments, StatefulSets and DaemonSets of this namespace, by kind
    /// and name: at most 32.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<RolloutTarget>>,
    /// Also every Deployment, StatefulSet and DaemonSet of this namespace whose
    /// labels match this selector: at most 16 matchLabels and 16
    /// matchExpressions; an expression's operator is In or NotIn (with 1–16
    /// values) or Exists or DoesNotExist (without).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    /// At most one restart of a target per this interval (a Go duration such
    /// as 10m): several rotations inside it cause one restart at its end.
    /// Absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_interval: Option<String>,
}

/// One workload to restart.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct RolloutTarget {
    /// Deployment, StatefulSet or DaemonSet.
    pub kind: WorkloadKind,
    /// Its name, in this namespace.
    pub name: String,
}

/// The workload kinds keysmith can restart.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
pub enum WorkloadKind {
    #[default]
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 3] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }

    /// The resource's plural under `apps/v1`.
    pub const fn plural(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployments",
            WorkloadKind::StatefulSet => "statefulsets",
            WorkloadKind::DaemonSet => "daemonsets",
        }
    }
}

/// A rollout target as keysmith last restarted it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutTargetStatus {
    /// Deployment, StatefulSet or DaemonSet.
    pub kind: WorkloadKind,
    /// The workload's name.
    pub name: String,
    /// The credential revision its pods were restarted for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// When keysmith restarted it (absent: it already carried the revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<Time>,
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
    /// True once this resource's Secret carries keysmith's seal (set at the
    /// first credential set issued since): from then on a Secret without a
    /// valid seal holds nothing keysmith trusts as its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<bool>,
    /// Effective length of generated secrets (generator.length or its default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_length: Option<u32>,
    /// Each rollout target and the revision it was restarted for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollout: Vec<RolloutTargetStatus>,
    /// Current state. `Ready` is True once the credentials are issued and the
    /// Secret matches them; its reason says why not otherwise. `RolloutReady`
    /// (with `spec.rollout`) says whether every target runs the current
    /// revision. A map keyed by `type`, as the Kubernetes API conventions
    /// ask: keysmith owns only its own condition types, so a condition
    /// another controller adds stays.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

/// Labels and annotations copied onto the output Secret.
pub type StringMap = BTreeMap<String, String>;

/// The parts of both specs that mean the same thing, so that validation and
/// planning are written once.
pub trait CommonSpec {
    /// The `…SecretFrom` field.
    fn secret_from(&self) -> Option<&SecretSource>;
    fn generator(&self) -> Option<&Generator>;
    fn interval(&self) -> Option<&str>;
    fn keep_previous(&self) -> Option<&str>;
    /// `rotateAppKey` / `rotateSignKey`.
    fn rotate_key(&self) -> Option<bool>;
    fn reset_request(&self) -> Option<&str>;
    fn secret_name(&self) -> Option<&str>;
    fn secret_labels(&self) -> Option<&StringMap>;
    fn secret_annotations(&self) -> Option<&StringMap>;
    /// The output Secret's type (default Opaque).
    fn secret_type(&self) -> SecretType;
    fn deletion_policy(&self) -> Option<DeletionPolicy>;
    fn rollout(&self) -> Option<&Rollout>;
}

/// Implements [`CommonSpec`] for a spec whose rotation type has `$rotate_key`.
macro_rules! common_spec {
    ($spec:ty, $secret_from:ident, $rotate_key:ident) => {
        impl $crate::api::CommonSpec for $spec {
            fn secret_from(&self) -> Option<&$crate::api::SecretSource> {
                self.$secret_from.as_deref()
            }
            fn generator(&self) -> Option<&$crate::api::Generator> {
                self.generator.as_ref()
            }
            fn interval(&self) -> Option<&str> {
                self.rotation.as_ref().and_then(|r| r.interval.as_deref())
            }
            fn keep_previous(&self) -> Option<&str> {
                self.rotation
                    .as_ref()
                    .and_then(|r| r.keep_previous.as_deref())
            }
            fn rotate_key(&self) -> Option<bool> {
                self.rotation.as_ref().and_then(|r| r.$rotate_key)
            }
            fn reset_request(&self) -> Option<&str> {
                self.reset_request.as_deref()
            }
            fn secret_name(&self) -> Option<&str> {
                self.secret.as_ref().and_then(|t| t.name.as_deref())
            }
            fn secret_labels(&self) -> Option<&$crate::api::StringMap> {
                self.secret.as_ref().and_then(|t| t.labels.as_ref())
            }
            fn secret_annotations(&self) -> Option<&$crate::api::StringMap> {
                self.secret.as_ref().and_then(|t| t.annotations.as_ref())
            }
            fn secret_type(&self) -> $crate::api::SecretType {
                self.secret
                    .as_ref()
                    .and_then(|t| t.type_)
                    .unwrap_or_default()
            }
            fn deletion_policy(&self) -> Option<$crate::api::DeletionPolicy> {
                self.secret.as_ref().and_then(|t| t.deletion_policy)
            }
            fn rollout(&self) -> Option<&$crate::api::Rollout> {
                self.rollout.as_deref()
            }
        }
    };
}
pub(crate) use common_spec;

#[cfg(test)]
mod tests {
    use super::*;

    /// A reason missing from `ALL` could not be read back from a Secret's
    /// record (`parse`) and its rotation counter would not be registered.
    #[test]
    fn all_lists_every_rotation_reason_and_workload_kind_the_schema_offers() {
        let offered = |schema: schemars::Schema| {
            let mut out = Vec::new();
            crate::api::offered(schema.as_value(), &mut out);
            out
        };
        let reasons: Vec<&str> = RotationReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(offered(schemars::schema_for!(RotationReason)), reasons);
        let kinds: Vec<&str> = WorkloadKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(offered(schemars::schema_for!(WorkloadKind)), kinds);
    }
}
