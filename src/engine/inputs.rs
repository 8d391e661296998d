//! What the engine is given: a resource's spec normalised into an [`Intent`],
//! and the world as observed. Types that hold credential values print their
//! keys, never their values.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::ownership::Ownership;
use super::seal::RecordKey;
use crate::api::{Attributes, GatewayLayout, Reason, RotationReason, SecretType};
use crate::rules::FormatRule;

/// How a key is generated when none is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyGenerator {
    /// A UUID-format AppKey.
    Uuid,
    /// A value of the rule at this length (sign_key).
    Rule { length: usize },
}

/// A resource's spec, normalised for planning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// "AppKey" / "sign_key": for messages.
    pub key_label: &'static str,
    /// The rotation reason of a changed key (AppKeyChanged / KeyChanged).
    pub key_changed_reason: RotationReason,
    pub custom_key: Option<String>,
    pub key_rule: &'static FormatRule,
    pub key_generator: KeyGenerator,
    pub secret_rule: &'static FormatRule,
    pub generator_length: usize,
    pub symbols: bool,
    /// `(secret name, key)` of a user-supplied secret.
    pub secret_from: Option<(String, String)>,
    pub interval: Option<Duration>,
    pub rotate_key: bool,
    pub keep_previous: Option<Duration>,
    pub reset_request: Option<String>,
    pub reset_annotation: Option<String>,
    /// Data key names in the output Secret.
    pub key_data_key: String,
    pub secret_data_key: String,
    pub previous_data_key: String,
    /// Other data keysmith writes as given (app_id, sign_type, sign_algorithm).
    pub fixed_data: BTreeMap<String, String>,
    pub secret_name: String,
    pub secret_type: SecretType,
    /// The gateway Secret to keep in step (`spec.gateway`).
    pub gateway: Option<GatewayIntent>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owned: bool,
    /// The resource's own attributes (names, types): a change moves updateTime.
    pub attributes: Attributes,
}

impl Intent {
    /// The owner's uid, as the Secret records it (empty before the apiserver gave one).
    pub fn owner_uid(&self) -> &str {
        self.annotations
            .get(crate::api::names::annotations::OWNER_UID)
            .map_or("", String::as_str)
    }
}

/// A gateway Secret: its layout and name (the previous credential's
/// companion, where the layout has one, is this name plus `-previous`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayIntent {
    pub layout: GatewayLayout,
    pub name: String,
}

/// The output Secret as found. (Debug shows data keys, never values.)
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ObservedSecret {
    /// Whose it is (decided by [`super::ownership::decide`]).
    pub ownership: Ownership,
    /// Data; `None` for a value that is not UTF-8.
    pub data: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owner_referenced: bool,
    /// Data keys whose value keysmith's field manager no longer owns:
    /// someone else changed them since keysmith's last write.
    pub edited_keys: BTreeSet<String>,
    /// Some data entry is not keysmith's as it wrote it (changed or added
    /// by someone else, or never applied by keysmith).
    pub foreign_data: bool,
}

/// A user-supplied secret source as found. (Debug never shows the value.)
#[derive(Clone, PartialEq, Eq)]
pub enum SourceValue {
    Found(String),
    /// The Secret exists but has not opted in (`keysmith.dev/allow-source`);
    /// its data was not read.
    NotAllowed,
    SecretMissing,
    KeyMissing,
    NotUtf8,
}

/// What the status said last time (the part planning needs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreviousStatus {
    pub key: Option<String>,
    pub revision: Option<i64>,
    pub last_rotation_time: Option<Timestamp>,
    pub last_rotation_reason: Option<RotationReason>,
    pub register_time: Option<Timestamp>,
    pub update_time: Option<Timestamp>,
    pub observed_reset_request: Option<String>,
    pub observed_reset_annotation: Option<String>,
    pub attributes: Option<Attributes>,
    /// The Ready condition's reason (`None` for one keysmith does not set).
    pub ready_reason: Option<Reason>,
    /// When the kept previous secret expires, as keysmith recorded it.
    pub previous_expiry_time: Option<Timestamp>,
    /// The Secret has carried keysmith's seal since a credential set this
    /// build issued: a Secret without a valid seal is then not trusted.
    pub sealed: bool,
}

/// The world as one reconcile found it: the one observation type. The
/// controller fills it as it reads and keeps it for the whole pass (it only
/// adds what it knows beside it: the namespace, the intent, the clock).
pub struct Observed<'a> {
    pub secret: Option<ObservedSecret>,
    pub source: Option<SourceValue>,
    pub status: PreviousStatus,
    /// Another, older resource holds the key this one wants (`Kind namespace/name`).
    pub key_held_by: Option<String>,
    /// The gateway Secrets found, by name (read only with `spec.gateway`).
    pub gateway: BTreeMap<String, ObservedSecret>,
    /// The key of keysmith's seals; `None` seals nothing (and trusts a
    /// Secret's values and record as an earlier release did).
    pub record_key: Option<&'a RecordKey>,
    /// Other resources' gateway Secrets of the same layout in the namespace
    /// (read only in a pass that writes a gateway Secret): the duplicate check.
    pub gateway_others: Vec<OtherGatewaySecret>,
    /// A credential set fixed for the next revision and pushed (or being
    /// pushed) to a cloud gateway before the Secret's data changed (SPEC
    /// §11.2): the next rotation issues exactly these values.
    pub pending: Option<Pending>,
}

/// Values fixed for a revision before a cloud gateway call, kept in the
/// output Secret (`.keysmith-pending`, sealed) until the Secret holds them.
/// (Debug shows the revision, never the values.)
#[derive(Clone, PartialEq, Eq)]
pub struct Pending {
    pub revision: i64,
    pub key: String,
    pub secret: String,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl ObservedSecret {
    /// keysmith's for this resource: issued for it, or adopted.
    pub fn ours(&self) -> bool {
        self.ownership.ours()
    }
}

/// Another resource's gateway Secret of the same layout, in the same
/// namespace: a gateway that reads both must never see one credential twice.
/// (Debug shows names, never values.)
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OtherGatewaySecret {
    pub name: String,
    /// Its resource, as `Kind name` (same namespace), from its labels.
    pub owner: Option<String>,
    /// UTF-8 entries only (a gateway reads text).
    pub data: BTreeMap<String, String>,
}

impl std::fmt::Debug for ObservedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedSecret")
            .field("ownership", &self.ownership)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .field("owner_referenced", &self.owner_referenced)
            .field("edited_keys", &self.edited_keys)
            .field("foreign_data", &self.foreign_data)
            .finish()
    }
}

impl std::fmt::Debug for OtherGatewaySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtherGatewaySecret")
            .field("name", &self.name)
            .field("owner", &self.owner)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl std::fmt::Debug for SourceValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceValue::Found(_) => "Found(<redacted>)",
            SourceValue::NotAllowed => "NotAllowed",
            SourceValue::SecretMissing => "SecretMissing",
            SourceValue::KeyMissing => "KeyMissing",
            SourceValue::NotUtf8 => "NotUtf8",
        })
    }
}
