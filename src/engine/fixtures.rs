//! Test fixtures shared by the engine's unit tests: a fixed clock, a seeded
//! generator, a GatewayApp-shaped intent, and Secrets as keysmith writes them.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use rand::SeedableRng;

use super::inputs::{
    Intent, KeyGenerator, ObservedSecret, OtherGatewaySecret, PreviousStatus, SourceValue,
};
use super::ownership::Ownership;
use super::seal::RecordKey;
use super::snapshot::Snapshot;
use super::{DesiredSecret, Observed, Plan};
use crate::api::names::annotations;
use crate::api::{Attributes, RotationReason, SecretType};
use crate::rules;

pub fn rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(42)
}

/// A fixed instant plus `seconds`.
pub fn t(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

pub fn intent() -> Intent {
    Intent {
        key_label: "AppKey",
        key_changed_reason: RotationReason::AppKeyChanged,
        custom_key: None,
        key_rule: &rules::APP_KEY,
        key_generator: KeyGenerator::Uuid,
        secret_rule: &rules::APP_SECRET,
        generator_length: 32,
        symbols: false,
        secret_from: None,
        interval: None,
        rotate_key: false,
        keep_previous: None,
        reset_request: None,
        reset_annotation: None,
        key_data_key: "app_key".into(),
        secret_data_key: "app_secret".into(),
        previous_data_key: "app_secret_previous".into(),
        fixed_data: BTreeMap::from([("app_id".to_string(), "uid-1".to_string())]),
        secret_name: "orders".into(),
        secret_type: SecretType::Opaque,
        gateway: None,
        labels: BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_string(),
            "keysmith".to_string(),
        )]),
        annotations: BTreeMap::new(),
        owned: true,
        attributes: Attributes::named("orders"),
    }
}

pub const KEY: &str = "key-0001-in-use";
pub const SECRET: &str = "SecretInUse0123456789abcdefgh";

/// keysmith's Secret at revision 1, issued and rotated at `t(0)`.
pub fn issued_secret() -> ObservedSecret {
    ObservedSecret {
        ownership: Ownership::Ours,
        data: BTreeMap::from([
            ("app_key".into(), Some(KEY.into())),
            ("app_secret".into(), Some(SECRET.into())),
            ("app_id".into(), Some("uid-1".into())),
        ]),
        labels: intent().labels,
        annotations: BTreeMap::from([
            (annotations::REVISION.into(), "1".into()),
            (annotations::ROTATED_AT.into(), t(0).to_string()),
            (annotations::ROTATION_REASON.into(), "Initial".into()),
            (annotations::ISSUED_AT.into(), t(0).to_string()),
        ]),
        owner_referenced: true,
        edited_keys: Default::default(),
        foreign_data: false,
    }
}

/// The Secret as the apiserver would hold it after applying `desired`.
pub fn written(desired: &DesiredSecret) -> ObservedSecret {
    ObservedSecret {
        ownership: Ownership::Ours,
        data: desired
            .data
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect(),
        labels: desired.labels.clone(),
        annotations: desired.annotations.clone(),
        owner_referenced: desired.owned,
        edited_keys: Default::default(),
        foreign_data: false,
    }
}

/// The world a check sees, built step by step.
pub struct World {
    pub intent: Intent,
    pub secret: Option<ObservedSecret>,
    pub source: Option<SourceValue>,
    pub status: PreviousStatus,
    pub key_held_by: Option<String>,
    pub gateway: BTreeMap<String, ObservedSecret>,
    pub now: Timestamp,
    pub record_key: Option<RecordKey>,
    pub gateway_others: Vec<OtherGatewaySecret>,
    pub pending: Option<crate::engine::Pending>,
}

impl World {
    /// Issued at `t(0)`, looked at `t(10)`.
    pub fn issued() -> World {
        World {
            intent: intent(),
            secret: Some(issued_secret()),
            source: None,
            status: PreviousStatus::default(),
            key_held_by: None,
            gateway: BTreeMap::new(),
            now: t(10),
            record_key: None,
            gateway_others: Vec::new(),
            pending: None,
        }
    }

    /// Nothing issued yet.
    pub fn new() -> World {
        World {
            secret: None,
            ..World::issued()
        }
    }

    pub fn observed(&self) -> Observed<'_> {
        Observed {
            secret: self.secret.clone(),
            source: self.source.clone(),
            status: self.status.clone(),
            key_held_by: self.key_held_by.clone(),
            gateway: self.gateway.clone(),
            record_key: self.record_key.as_ref(),
            gateway_others: self.gateway_others.clone(),
            pending: self.pending.clone(),
        }
    }

    /// Runs `check` on this world's snapshot.
    pub fn check<T>(&self, check: impl FnOnce(&Snapshot) -> T) -> T {
        let observed = self.observed();
        check(&Snapshot::gather(&self.intent, &observed, self.now))
    }

    pub fn set_data(&mut self, key: &str, value: Option<&str>) {
        let secret = self.secret.as_mut().expect("a Secret");
        match value {
            Some(value) => secret.data.insert(key.into(), Some(value.into())),
            None => secret.data.remove(key),
        };
    }

    pub fn set_annotation(&mut self, key: &str, value: &str) {
        let secret = self.secret.as_mut().expect("a Secret");
        secret.annotations.insert(key.into(), value.into());
    }
}

/// The status as the status step would leave it after `plan`.
pub fn status_after(plan: &Plan, intent: &Intent, previous: &PreviousStatus) -> PreviousStatus {
    match &plan.state {
        Some(state) => PreviousStatus {
            key: state.key.clone(),
            revision: state.revision,
            last_rotation_time: state.last_rotation_time,
            last_rotation_reason: state.last_rotation_reason,
            register_time: state.register_time,
            update_time: state.update_time,
            observed_reset_request: state.observed_reset_request.clone(),
            observed_reset_annotation: state.observed_reset_annotation.clone(),
            attributes: Some(intent.attributes.clone()),
            ready_reason: Some(plan.readiness.reason),
            previous_expiry_time: state.previous_expiry_time,
            sealed: state.sealed,
        },
        None => PreviousStatus {
            ready_reason: Some(plan.readiness.reason),
            ..previous.clone()
        },
    }
}
