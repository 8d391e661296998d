//! SignatureKey as a [`CredentialKind`]: sign_key and sign_secret rules by
//! sign type (and algorithm), `sign_type`/`sign_algorithm` in the Secret.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};

use super::status::{
    RolloutReport, never_earlier, own_conditions, previous_rotation, rotation_status,
};
use super::{CredentialKind, KindParts, intent_from, time};
use crate::api::Attributes;
use crate::api::names::{data_keys, labels};
use crate::api::{
    Kind, RotationReason, RotationStatus, SignAlgorithm, SignType, SignatureKey, SignatureKeyStatus,
};
use crate::engine::{Intent, KeyGenerator, Plan, PreviousStatus};
use crate::rules::{self, sign_key_rule, sign_secret_rule};

impl SignatureKey {
    pub fn effective_key_name(&self) -> String {
        self.spec
            .key_name
            .clone()
            .unwrap_or_else(|| rules::derived_name(&self.name_any()))
    }

    /// The sign_key as status and the printer column may show it: key
    /// material (aes) stays in the Secret (SPEC §10).
    fn shown_sign_key(&self, key: Option<&String>) -> Option<String> {
        let material = self.effective_sign_type().rules().key_is_material;
        key.filter(|_| !material).cloned()
    }

    pub fn effective_sign_type(&self) -> SignType {
        self.spec.sign_type.unwrap_or_default()
    }

    /// aes without an algorithm cannot pass admission; its row says the
    /// safe reading (aes-128).
    fn effective_algorithm(&self) -> Option<SignAlgorithm> {
        let key = self.effective_sign_type().rules().key;
        key.algorithm(self.spec.sign_algorithm)
    }

    fn attributes(&self) -> Attributes {
        Attributes::Signature {
            name: self.effective_key_name(),
            sign_type: self.effective_sign_type(),
            algorithm: self.effective_algorithm(),
        }
    }

    /// The attributes the status records (none before the first issue).
    fn status_attributes(status: &SignatureKeyStatus) -> Option<Attributes> {
        Some(Attributes::Signature {
            name: status.key_name.clone()?,
            sign_type: status.sign_type?,
            algorithm: status.sign_algorithm,
        })
    }
}

impl CredentialKind for SignatureKey {
    const KIND: Kind = Kind::SignatureKey;
    type Status = SignatureKeyStatus;
    const OWNER_LABEL: &'static str = labels::SIGNATURE_KEY;

    fn intent(&self) -> Intent {
        let spec = &self.spec;
        let sign_type = self.effective_sign_type();
        let algorithm = self.effective_algorithm();
        let key_rule = sign_key_rule(sign_type, algorithm);
        let keys = spec.data_keys();
        let mut fixed_data = BTreeMap::from([(
            data_keys::SIGN_TYPE.to_string(),
            sign_type.as_str().to_string(),
        )]);
        if let Some(algorithm) = algorithm {
            fixed_data.insert(data_keys::SIGN_ALGORITHM.into(), algorithm.as_str().into());
        }
        intent_from(
            self,
            spec,
            KindParts {
                key_label: "sign_key",
                key_changed_reason: RotationReason::KeyChanged,
                custom_key: spec.sign_key.clone(),
                key_rule,
                // Generated sign_keys take the longest length their rule allows.
                key_generator: KeyGenerator::Rule {
                    length: key_rule.max_len,
                },
                secret_rule: sign_secret_rule(sign_type),
                key_data_key: keys.sign_key,
                secret_data_key: keys.sign_secret,
                previous_data_key: keys.sign_secret_previous,
                fixed_data,
                attributes: self.attributes(),
                gateway: None,
            },
        )
    }

    fn previous_status(&self) -> PreviousStatus {
        let status = self.status.clone().unwrap_or_default();
        PreviousStatus {
            attributes: Self::status_attributes(&status),
            ..previous_rotation(
                &status.rotation,
                status.sign_key.clone(),
                status.create_time.as_ref(),
                status.update_time.as_ref(),
            )
        }
    }

    fn desired_status(
        &self,
        intent: &Intent,
        plan: &Plan,
        rollout: RolloutReport,
        now: Timestamp,
    ) -> SignatureKeyStatus {
        let previous = self.status.clone().unwrap_or_default();
        let rotation = rotation_status(
            &previous.rotation,
            intent,
            plan,
            rollout,
            self.meta().generation,
            now,
        );
        match &plan.state {
            Some(state) => SignatureKeyStatus {
                id: self.uid().map(|u| u.replace('-', "")),
                key_name: Some(self.effective_key_name()),
                sign_type: Some(self.effective_sign_type()),
                sign_algorithm: self.effective_algorithm(),
                sign_key: self.shown_sign_key(state.key.as_ref()),
                create_time: time(state.register_time),
                update_time: never_earlier(state.update_time, previous.update_time.as_ref()),
                // Written by the gateway sync under its own field manager.
                gateway: None,
                rotation,
            },
            None => SignatureKeyStatus {
                rotation,
                gateway: None,
                ..previous
            },
        }
    }

    /// The status as keysmith would write it: its own conditions only.
    fn current_status(&self) -> SignatureKeyStatus {
        let mut status = self.status.clone().unwrap_or_default();
        status.rotation.conditions = own_conditions(&status.rotation.conditions);
        status.gateway = None;
        status
    }

    fn rollout(&self) -> Option<&crate::api::Rollout> {
        crate::api::CommonSpec::rollout(&self.spec)
    }

    fn cloud_sync(&self) -> Option<super::CloudSync> {
        let name = self.effective_key_name();
        let signature = super::SignatureShape {
            name: name.clone(),
            sign_type: self.effective_sign_type().as_str().to_string(),
            algorithm: self.effective_algorithm().map(|a| a.as_str().to_string()),
        };
        super::CloudSync::of(
            self,
            self.spec.connection_ref.as_deref(),
            (name, String::new()),
            self.status.as_ref().and_then(|s| s.gateway.as_deref()),
            Some(signature),
        )
    }

    fn recorded_rotation(&self) -> Option<&RotationStatus> {
        self.status.as_ref().map(|s| &s.rotation)
    }
}
