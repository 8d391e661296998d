//! Every name keysmith writes into or reads from the cluster, in one place:
//! labels, annotations, the field manager, default data keys, the kinds,
//! condition types and reasons. Each enum's `as_str` is the wire spelling.
//!
//! Changing an annotation or label here changes what existing clusters hold:
//! the Secret annotations are the rotation record (SPEC §5, Upgrades).

/// The server-side-apply field manager for everything keysmith writes.
pub const FIELD_MANAGER: &str = "keysmith";

/// The finalizer on a resource with `spec.connectionRef` and deletionPolicy
/// Delete: the app (or signature key) at the cloud gateway goes first.
pub const GATEWAY_CLEANUP_FINALIZER: &str = "keysmith.dev/gateway-cleanup";
/// The finalizer on a `GatewayConnection` that resources with the cleanup
/// finalizer use: it stays until their cleanups are done.
pub const CONNECTION_IN_USE_FINALIZER: &str = "keysmith.dev/connection-in-use";

pub mod labels {
    /// On every Secret keysmith writes.
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    pub const MANAGED_BY_VALUE: &str = "keysmith";
    /// The GatewayApp a Secret belongs to.
    pub const GATEWAY_APP: &str = "keysmith.dev/gatewayapp";
    /// The SignatureKey a Secret belongs to.
    pub const SIGNATURE_KEY: &str = "keysmith.dev/signaturekey";
    /// On a gateway Secret: its layout, so the duplicate check finds the
    /// namespace's gateway Secrets of one layout with a label selector.
    pub const GATEWAY_LAYOUT: &str = "keysmith.dev/gateway-layout";
    /// Longest label value Kubernetes accepts.
    pub const MAX_VALUE_LEN: usize = 63;

    /// The owner label's value for a resource name: the name itself when it
    /// fits a label value, else a prefix of it and a stable hash of the whole
    /// (names may have 253 characters; the full name then goes into the
    /// `keysmith.dev/owner-name` annotation).
    pub fn owner_value(name: &str) -> String {
        if name.len() <= MAX_VALUE_LEN {
            return name.to_string();
        }
        let prefix = name[..46].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        format!("{prefix}-{:016x}", fnv1a(name.as_bytes()))
    }

    /// FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not).
    pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
}

/// Annotations: the reset request users set on a resource, and the rotation
/// record keysmith keeps on each Secret it writes (the crash-safe source of
/// truth for revision, times and the reset requests carried out).
pub mod annotations {
    /// On a GatewayApp or SignatureKey: a new value asks for one reset.
    pub const RESET_REQUEST: &str = "keysmith.dev/reset-request";
    /// On a Secret, `"true"`: it may be read as a `…SecretFrom` source (SPEC §10).
    pub const ALLOW_SOURCE: &str = "keysmith.dev/allow-source";
    /// On a resource with `spec.connectionRef`: take over an app of the same
    /// name that already exists at the cloud gateway (SPEC §11.2).
    pub const ADOPT_GATEWAY_APP: &str = "keysmith.dev/adopt-gateway-app";
    /// On a resource being deleted, `"true"`: release the gateway cleanup
    /// finalizer without removing the app at the gateway.
    pub const SKIP_GATEWAY_CLEANUP: &str = "keysmith.dev/skip-gateway-cleanup";
    /// The value of [`ALLOW_SOURCE`] that opts in.
    pub const ALLOW_SOURCE_VALUE: &str = "true";

    /// On a GatewayApp or SignatureKey, `"true"`: take over a Secret of the
    /// target name that keysmith wrote for an earlier resource (one left
    /// behind by `deletionPolicy: Retain`); its values must pass their rules.
    pub const ADOPT_SECRET: &str = "keysmith.dev/adopt-secret";
    /// On a Secret left behind by `Retain`: whoever may edit it consents to
    /// its adoption by a new resource of the same name (SPEC §10).
    pub const ADOPT: &str = "keysmith.dev/adopt";
    /// The value of [`ADOPT`] and [`ADOPT_SECRET`] that asks.
    pub const ADOPT_VALUE: &str = "true";

    /// On a workload's pod template: `<prefix><hash of the keysmith resource>`
    /// = `<Kind>/<name>@<revision>`, one per keysmith resource (SPEC §9.1).
    pub const RESTARTED_FOR_PREFIX: &str = "keysmith.dev/restarted-for-";

    /// On the Secret: the uid of the resource it belongs to (its identity:
    /// a Secret without it, or with another uid, is not the resource's).
    pub const OWNER_UID: &str = "keysmith.dev/owner-uid";
    /// On the Secret, when the resource's name does not fit a label value
    /// (over 63 characters): the name; the owner label then holds a hash.
    pub const OWNER_NAME: &str = "keysmith.dev/owner-name";

    /// On the Secret: the revision of the credential set it holds.
    pub const REVISION: &str = "keysmith.dev/revision";
    pub const ROTATED_AT: &str = "keysmith.dev/rotated-at";
    pub const ROTATION_REASON: &str = "keysmith.dev/rotation-reason";
    pub const ISSUED_AT: &str = "keysmith.dev/issued-at";
    pub const PREVIOUS_EXPIRES_AT: &str = "keysmith.dev/previous-expires-at";
    pub const OBSERVED_RESET_REQUEST: &str = "keysmith.dev/observed-reset-request";
    pub const OBSERVED_RESET_ANNOTATION: &str = "keysmith.dev/observed-reset-annotation";
    /// On a gateway Secret `<name>-previous` outside an overlap: it holds a
    /// random credential nobody is given (docs/gateways.md).
    pub const PLACEHOLDER: &str = "keysmith.dev/placeholder";
    pub const PLACEHOLDER_VALUE: &str = "true";
    /// The key the kept previous secret belongs to; written only for a
    /// resource with a gateway Secret (it names the previous entry there).
    pub const PREVIOUS_KEY: &str = "keysmith.dev/previous-key";
    /// keysmith's seal over the credential values and the rotation record it
    /// wrote (keyed MACs, `engine::seal`): what it trusts as its own.
    pub const SEAL: &str = "keysmith.dev/seal";
    /// The whole rotation record (a stale entry is removed when a write drops it).
    pub const RECORD: [&str; 8] = [
        REVISION,
        ROTATED_AT,
        ROTATION_REASON,
        ISSUED_AT,
        PREVIOUS_EXPIRES_AT,
        OBSERVED_RESET_REQUEST,
        OBSERVED_RESET_ANNOTATION,
        PREVIOUS_KEY,
    ];
    /// keysmith's own annotations on the Secrets it writes (the record, the
    /// owner's identity, the placeholder mark): never copied from
    /// `spec.secret.annotations`, where a user value could forge them.
    pub fn reserved(key: &str) -> bool {
        RECORD.contains(&key) || [OWNER_UID, OWNER_NAME, PLACEHOLDER, SEAL, ADOPT].contains(&key)
    }
    /// Written by `kubectl apply` (client-side); keysmith never reads it.
    pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
}

/// Default data key names in the output Secrets (`spec.secret.keys` renames them).
pub mod data_keys {
    pub const APP_KEY: &str = "app_key";
    pub const APP_SECRET: &str = "app_secret";
    pub const APP_ID: &str = "app_id";
    pub const SIGN_KEY: &str = "sign_key";
    pub const SIGN_SECRET: &str = "sign_secret";
    /// Not renamable.
    pub const SIGN_TYPE: &str = "sign_type";
    pub const SIGN_ALGORITHM: &str = "sign_algorithm";
    /// The kept previous secret: the secret's data key plus this suffix.
    pub const PREVIOUS_SUFFIX: &str = "_previous";
    /// With `spec.connectionRef`: the credential set fixed for the next
    /// revision while it is pushed to the cloud gateway, before the data
    /// changes (sealed JSON; written and removed under its own field manager).
    pub const PENDING: &str = ".keysmith-pending";
    /// The fixed data keys of a `kubernetes.io/basic-auth` Secret.
    pub const USERNAME: &str = "username";
    pub const PASSWORD: &str = "password";
}

/// The names gateways read in the gateway Secrets of `spec.gateway`.
pub mod gateway {
    /// Kong's label marking a credential Secret, and its values.
    pub const KONG_CREDENTIAL: &str = "konghq.com/credential";
    pub const KONG_KEY_AUTH: &str = "key-auth";
    pub const KONG_BASIC_AUTH: &str = "basic-auth";
    pub const KONG_HMAC_AUTH: &str = "hmac-auth";
    /// Data keys (`username`/`password` as in a basic-auth Secret).
    pub use super::data_keys::{PASSWORD, USERNAME};
    pub const KEY: &str = "key";
    pub const SECRET: &str = "secret";
    pub const KEY_ID: &str = "key_id";
    pub const SECRET_KEY: &str = "secret_key";
    pub const USERS: &str = "users";
    /// Envoy Gateway's basic-auth Secret entry (api/v1alpha1/basic_auth_types.go).
    pub const HTPASSWD: &str = ".htpasswd";
    /// Default gateway Secret name: the output Secret's plus this.
    pub const DEFAULT_SUFFIX: &str = "-gateway";
    /// The second gateway Secret, holding the previous credential during
    /// the overlap: the gateway Secret's name plus this.
    pub const PREVIOUS_SUFFIX: &str = "-previous";
    /// Envoy Gateway's client ID of the previous entry when the AppKey did
    /// not change: the AppKey plus this.
    pub const PREVIOUS_CLIENT_SUFFIX: &str = ".previous";
}

/// keysmith's kinds, for metric labels and the command line. The controller's
/// behaviour is never chosen by matching on this: it lives in `crate::kinds`'
/// trait impls. Only `keysmith validate`, below `kinds`, picks each kind's
/// admission rules by it (`admission::manifest`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    GatewayApp,
    SignatureKey,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::GatewayApp, Kind::SignatureKey];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::GatewayApp => "GatewayApp",
            Kind::SignatureKey => "SignatureKey",
        }
    }

    /// The resource's plural (its REST path segment).
    pub const fn plural(self) -> &'static str {
        match self {
            Kind::GatewayApp => "gatewayapps",
            Kind::SignatureKey => "signaturekeys",
        }
    }

    /// The kind from what `kubectl` accepts: kind, plural, short names,
    /// `plural.group`, in any case.
    pub fn parse(text: &str) -> Option<Kind> {
        match text.to_ascii_lowercase().as_str() {
            "gatewayapp" | "gatewayapps" | "gwapp" | "gwapps" | "gatewayapps.keysmith.dev" => {
                Some(Kind::GatewayApp)
            }
            "signaturekey"
            | "signaturekeys"
            | "sigkey"
            | "sigkeys"
            | "signaturekeys.keysmith.dev" => Some(Kind::SignatureKey),
            _ => None,
        }
    }
}

/// Condition types keysmith sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    Ready,
    /// With `spec.rollout`: every target runs the current revision.
    RolloutReady,
    /// With `spec.connectionRef`: the cloud gateway holds the current revision
    /// (written by the gateway sync under its own field manager).
    GatewaySynced,
}

impl ConditionType {
    /// Every condition type keysmith writes; any other belongs to someone else.
    pub const ALL: [ConditionType; 2] = [ConditionType::Ready, ConditionType::RolloutReady];

    pub const fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::RolloutReady => "RolloutReady",
            ConditionType::GatewaySynced => "GatewaySynced",
        }
    }
}

/// The annotation key a keysmith resource marks its rollout targets with:
/// its own, so several resources can target one workload without undoing
/// each other's marks.
pub fn restarted_for_key(kind: Kind, namespace: &str, name: &str) -> String {
    let identity = format!("{}/{namespace}/{name}", kind.as_str());
    format!(
        "{}{:016x}",
        annotations::RESTARTED_FOR_PREFIX,
        labels::fnv1a(identity.as_bytes())
    )
}

/// The server-side-apply field manager of one keysmith resource's rollout
/// marks (one per resource: a shared one would drop the other resources'
/// marks on each apply).
pub fn rollout_field_manager(kind: Kind, namespace: &str, name: &str) -> String {
    let key = restarted_for_key(kind, namespace, name);
    let hash = key.trim_start_matches(annotations::RESTARTED_FOR_PREFIX);
    format!("{FIELD_MANAGER}-rollout-{hash}")
}

/// Reasons of the Ready condition and of events (SPEC §5, Events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Ready: credentials issued. Also the event of a first issue.
    Issued,
    Rotated,
    Reset,
    KeyChanged,
    AppKeyConflict,
    SecretConflict,
    InvalidSecretFrom,
    SecretRecreated,
    SecretEdited,
    InvalidSecretData,
    /// The `…SecretFrom` Secret has not opted in (SPEC §10).
    SourceNotAllowed,
    /// The apiserver refused the Secret write as invalid or forbidden.
    SecretRefused,
    /// The credential would appear twice at a gateway: another resource's
    /// gateway Secret of the same layout holds the same key, username or
    /// secret; this resource's entry is not written.
    GatewayConflict,
    /// RolloutReady: every target carries the current revision.
    RolledOut,
    /// RolloutReady=False: a target waits for `minInterval`.
    RolloutPending,
    /// RolloutReady=False and a Warning: a target is missing or cannot be patched.
    RolloutFailed,
    /// Event: a target was restarted.
    RolloutTriggered,
    /// The spec breaks a floor the engine holds even without admission
    /// (128-bit generated secrets, 1-minute rotation interval; SPEC §10).
    InvalidSpec,
    /// GatewaySynced=True: the cloud gateway holds the current revision.
    GatewaySynced,
    /// The cloud gateway does not hold the current revision yet, or a call failed.
    GatewaySyncFailed,
    /// A value breaks the target gateway's own rules, or the gateway refused it for good.
    GatewayRejected,
    /// `spec.connectionRef` names no connection, or it cannot be used.
    ConnectionNotReady,
    /// A ClusterGatewayConnection does not serve this namespace.
    ConnectionNotAllowed,
    /// Event: the gateway no longer held what keysmith pushed; pushed again.
    GatewayDrift,
    /// Event: the app was removed from the gateway before the resource went.
    GatewayCleanedUp,
    /// Event: the resource went without removing the app at the gateway.
    GatewayCleanupSkipped,
}

impl Reason {
    pub const ALL: [Reason; 26] = [
        Reason::Issued,
        Reason::Rotated,
        Reason::Reset,
        Reason::KeyChanged,
        Reason::AppKeyConflict,
        Reason::SecretConflict,
        Reason::InvalidSecretFrom,
        Reason::SecretRecreated,
        Reason::SecretEdited,
        Reason::InvalidSecretData,
        Reason::SourceNotAllowed,
        Reason::SecretRefused,
        Reason::GatewayConflict,
        Reason::RolledOut,
        Reason::RolloutPending,
        Reason::RolloutFailed,
        Reason::RolloutTriggered,
        Reason::InvalidSpec,
        Reason::GatewaySynced,
        Reason::GatewaySyncFailed,
        Reason::GatewayRejected,
        Reason::ConnectionNotReady,
        Reason::ConnectionNotAllowed,
        Reason::GatewayDrift,
        Reason::GatewayCleanedUp,
        Reason::GatewayCleanupSkipped,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Issued => "Issued",
            Reason::Rotated => "Rotated",
            Reason::Reset => "Reset",
            Reason::KeyChanged => "KeyChanged",
            Reason::AppKeyConflict => "AppKeyConflict",
            Reason::SecretConflict => "SecretConflict",
            Reason::InvalidSecretFrom => "InvalidSecretFrom",
            Reason::SecretRecreated => "SecretRecreated",
            Reason::SecretEdited => "SecretEdited",
            Reason::InvalidSecretData => "InvalidSecretData",
            Reason::SourceNotAllowed => "SourceNotAllowed",
            Reason::SecretRefused => "SecretRefused",
            Reason::GatewayConflict => "GatewayConflict",
            Reason::RolledOut => "RolledOut",
            Reason::RolloutPending => "RolloutPending",
            Reason::RolloutFailed => "RolloutFailed",
            Reason::RolloutTriggered => "RolloutTriggered",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::GatewaySynced => "GatewaySynced",
            Reason::GatewaySyncFailed => "GatewaySyncFailed",
            Reason::GatewayRejected => "GatewayRejected",
            Reason::ConnectionNotReady => "ConnectionNotReady",
            Reason::ConnectionNotAllowed => "ConnectionNotAllowed",
            Reason::GatewayDrift => "GatewayDrift",
            Reason::GatewayCleanedUp => "GatewayCleanedUp",
            Reason::GatewayCleanupSkipped => "GatewayCleanupSkipped",
        }
    }

    /// The reason a status carries, read back (`None` for one keysmith does not set).
    pub fn parse(text: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RotationReason;

    #[test]
    fn rotation_reasons_are_spelled_as_serde_spells_them() {
        for reason in RotationReason::ALL {
            let serde = serde_json::to_value(reason).unwrap();
            assert_eq!(serde, serde_json::Value::from(reason.as_str()));
            assert_eq!(RotationReason::parse(reason.as_str()), Some(reason));
        }
        for layout in crate::api::GatewayLayout::ALL {
            let serde = serde_json::to_value(layout).unwrap();
            assert_eq!(serde, serde_json::Value::from(layout.as_str()));
        }
        for secret_type in [
            crate::api::SecretType::Opaque,
            crate::api::SecretType::BasicAuth,
        ] {
            let serde = serde_json::to_value(secret_type).unwrap();
            assert_eq!(serde, serde_json::Value::from(secret_type.as_str()));
        }
    }

    #[test]
    fn owner_label_values_fit_a_label_for_every_valid_name() {
        assert_eq!(labels::owner_value("orders-client"), "orders-client");
        let long = format!("{}.{}", "a".repeat(200), "b-c".repeat(17));
        let value = labels::owner_value(&long);
        assert!(value.len() <= 63, "{value}");
        assert!(value.starts_with("aaaa"));
        assert!(value.chars().last().unwrap().is_ascii_alphanumeric());
        assert_eq!(value, labels::owner_value(&long), "stable");
        assert_ne!(value, labels::owner_value(&format!("{long}x")));
        // A prefix cut at a '.' or '-' still ends the prefix with a letter or digit.
        let dotted = format!("{}.{}", "a".repeat(45), "b".repeat(30));
        assert!(!labels::owner_value(&dotted).contains(".-"));
        assert_eq!(labels::owner_value(&"x".repeat(63)), "x".repeat(63));
    }

    #[test]
    fn reasons_read_back() {
        for reason in Reason::ALL {
            assert_eq!(Reason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(Reason::parse("Other"), None);
    }
}
