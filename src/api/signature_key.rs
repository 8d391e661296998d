//! `SignatureKey`: a sign_key/sign_secret pair a gateway signs backend requests with.

// kube-derive takes one `printcolumn(...)` per column; clippy reads the
// repeated `type_ =` keys inside them as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    CloudGatewayStatus, ConnectionRef, DeletionPolicy, Generator, Rollout, RotationStatus,
    SecretSource, StringMap,
};

/// What the SignatureKey should be. Every field is optional; effective values
/// of defaulted fields are reported in status.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "keysmith.dev",
    version = "v1alpha1",
    kind = "SignatureKey",
    doc = "A signature key: the sign_key/sign_secret pair an API gateway uses to sign requests to a backend. keysmith issues it (generated, or custom values you supply), writes it into a Secret, and rotates it on schedule or on request.",
    plural = "signaturekeys",
    shortname = "sigkey",
    shortname = "sigkeys",
    category = "keysmith",
    namespaced,
    status = "SignatureKeyStatus",
    derive = "PartialEq",
    derive = "Default",
    printcolumn(name = "SignKey", type_ = "string", json_path = ".status.signKey"),
    printcolumn(name = "Type", type_ = "string", json_path = ".status.signType"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
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
pub struct SignatureKeySpec {
    // The larger optional parts are boxed: each cached object pays the inline
    // size of every field, present or not (BENCHMARKS.md, memory).
    /// Signature key name: 3–64 characters, starting with a letter; letters,
    /// digits and '_'. Default: metadata.name with '-' and '.' replaced by '_'
    /// (which must then satisfy the same rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// Signature type: hmac (effective default), basic or aes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_type: Option<SignType>,
    /// Algorithm for signType aes (required then, forbidden otherwise):
    /// aes-128-cfb (16-character sign_key) or aes-256-cfb (32-character sign_key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_algorithm: Option<SignAlgorithm>,
    /// Custom sign_key. hmac: 8–32 characters, starting with a letter or digit;
    /// basic: 4–32, starting with a letter; aes: exactly 16 or 32 by algorithm,
    /// starting with a letter or digit. Always letters, digits, '-' and '_'.
    /// Generated when absent; removing it later keeps the key in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_key: Option<String>,
    /// Custom sign_secret, read from a Secret in this namespace. hmac: 16–64
    /// characters; basic: 8–64; aes: exactly 16. Starting with a letter or
    /// digit; letters, digits and - _ ! @ # $ %. Generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_secret_from: Option<Box<SecretSource>>,
    /// How a generated sign_secret is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<Generator>,
    /// Scheduled rotation and overlap. Absent: never rotate on a schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Box<SignKeyRotation>>,
    /// Any new value asks for exactly one reset (a new generated sign_secret,
    /// and a new sign_key with rotation.rotateSignKey). The annotation
    /// keysmith.dev/reset-request does the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_request: Option<String>,
    /// The output Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Box<SignKeySecretTemplate>>,
    /// Workloads to restart when the issued credentials change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Box<Rollout>>,
    /// Keep this signature key at a cloud API gateway equal to the resource
    /// (SPEC §11.2): created there with the issued key and secret, every
    /// reset, rotation and name change pushed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_ref: Option<Box<ConnectionRef>>,
}

/// How a gateway signs backend requests with this key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SignType {
    #[default]
    Hmac,
    Basic,
    Aes,
}

/// The aes algorithm; fixes the sign_key length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SignAlgorithm {
    #[serde(rename = "aes-128-cfb")]
    Aes128Cfb,
    #[serde(rename = "aes-256-cfb")]
    Aes256Cfb,
}

// What keysmith decides by the sign type and algorithm (the format rules,
// whether the sign_key is shown) is their row: `SignType::rules` and
// `SignAlgorithm::key_rule` in `crate::rules`.

impl SignType {
    pub const ALL: [SignType; 3] = [SignType::Hmac, SignType::Basic, SignType::Aes];

    /// The wire spelling (as serde writes it; a unit test holds them equal).
    pub const fn as_str(self) -> &'static str {
        match self {
            SignType::Hmac => "hmac",
            SignType::Basic => "basic",
            SignType::Aes => "aes",
        }
    }
}

impl SignAlgorithm {
    pub const ALL: [SignAlgorithm; 2] = [SignAlgorithm::Aes128Cfb, SignAlgorithm::Aes256Cfb];

    /// The wire spelling (as serde writes it; a unit test holds them equal).
    pub const fn as_str(self) -> &'static str {
        match self {
            SignAlgorithm::Aes128Cfb => "aes-128-cfb",
            SignAlgorithm::Aes256Cfb => "aes-256-cfb",
        }
    }
}

/// Rotation of a SignatureKey's credentials.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignKeyRotation {
    /// Rotate this long after the last rotation: a Go duration such as 2160h,
    /// at least 1m. Not applied to a secret from signSecretFrom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// A rotation or reset also issues a new generated sign_key. Effective default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_sign_key: Option<bool>,
    /// Keep the replaced sign_secret in the Secret (under `<signSecret key>_previous`)
    /// for this long. A Go duration; absent or 0 keeps nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_previous: Option<String>,
}

/// The Secret a SignatureKey's credentials are written to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignKeySecretTemplate {
    /// Secret name. Default: metadata.name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The Secret's type: Opaque (default) or kubernetes.io/basic-auth
    /// (username = the key, password = the secret; the data keys of those two
    /// cannot be renamed). Immutable, as a Secret's type is: changing it
    /// needs a new secret name.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<super::SecretType>,
    /// Names of the data keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<SignKeySecretKeys>,
    /// Labels copied onto the Secret (the resource's own labels never are):
    /// at most 64, with Kubernetes' label keys and values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<StringMap>,
    /// Annotations copied onto the Secret: at most 64, each value at most
    /// 4096 characters, keys and values together at most 16384.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// Delete (default): the Secret is owned by the SignatureKey and deleted
    /// with it. Retain: it stays behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// Data key names in a SignatureKey's Secret (sign_type and sign_algorithm keep their names).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignKeySecretKeys {
    /// Key holding the sign_key. Default sign_key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_key: Option<String>,
    /// Key holding the sign_secret. Default sign_secret; the kept previous
    /// secret goes under this name plus `_previous`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_secret: Option<String>,
}

/// What keysmith issued, with the effective values of every defaulted field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignatureKeyStatus {
    /// Signature key ID: the object's uid without hyphens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Effective key name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
    /// Effective sign type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_type: Option<SignType>,
    /// Effective algorithm (aes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_algorithm: Option<SignAlgorithm>,
    /// The sign_key in use, for hmac and basic (an identifier, not a
    /// secret). Absent for aes, where it is key material: read it from the Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_key: Option<String>,
    /// When the key was first issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<Time>,
    /// When the key, the secret or the key's attributes last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_time: Option<Time>,
    /// With `spec.connectionRef`: what the cloud gateway holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Box<CloudGatewayStatus>>,
    #[serde(flatten)]
    pub rotation: RotationStatus,
}

super::common_spec!(SignatureKeySpec, sign_secret_from, rotate_sign_key);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_sign_type_and_algorithm_the_schema_offers() {
        let offered = |schema: schemars::Schema| {
            let mut out = Vec::new();
            crate::api::offered(schema.as_value(), &mut out);
            out
        };
        let types: Vec<&str> = SignType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(offered(schemars::schema_for!(SignType)), types);
        let algorithms: Vec<&str> = SignAlgorithm::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(offered(schemars::schema_for!(SignAlgorithm)), algorithms);
    }

    #[test]
    fn sign_types_and_algorithms_are_spelled_as_serde_spells_them() {
        for t in SignType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        for a in SignAlgorithm::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
    }
}
