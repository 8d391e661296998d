//! The two kinds seen through one lens: how each turns its spec into an
//! [`Intent`] for the plan, and a plan back into its status. Pure.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crd::{
    AppType, CommonSpec, Creator, DeletionPolicy, GATEWAY_APP_LABEL, GatewayApp, GatewayAppStatus,
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, READY, RESET_REQUEST_ANNOTATION, RotationStatus,
    SIGNATURE_KEY_LABEL, SignAlgorithm, SignType, SignatureKey, SignatureKeyStatus,
};
use crate::plan::{Intent, KeyGenerator, Plan, PreviousStatus};
use crate::rules::{self, FormatRule};
use crate::secret_keys;
use crate::validate::{SIGN_ALGORITHM_DATA, SIGN_TYPE_DATA, sign_key_rule, sign_secret_rule};

/// What the controller needs of a kind.
pub trait CredentialKind:
    Resource<DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Serialize
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The label on the output Secret naming its resource.
    const OWNER_LABEL: &'static str;
    fn intent(&self) -> Intent;
    fn previous_status(&self) -> PreviousStatus;
    /// The full status to apply after `plan`.
    fn desired_status(&self, intent: &Intent, plan: &Plan, now: Timestamp) -> serde_json::Value;
    /// The status as it is, in the same JSON form.
    fn current_status(&self) -> serde_json::Value;
    /// The rotation part of the status as it is (read by the metrics).
    fn recorded_rotation(&self) -> Option<&RotationStatus>;
    /// Keys that must be unique across objects of this kind (AppKeys: the
    /// custom one asked for and the one issued); none by default.
    fn unique_keys(&self) -> BTreeSet<String> {
        BTreeSet::new()
    }
}

fn time(t: Option<Timestamp>) -> Option<Time> {
    t.map(Time)
}

fn secret_labels(
    spec_labels: Option<&BTreeMap<String, String>>,
    owner_label: &str,
    name: &str,
) -> BTreeMap<String, String> {
    let mut labels = spec_labels.cloned().unwrap_or_default();
    // keysmith's own labels win: they are how it recognises its Secrets.
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY_VALUE.into());
    labels.insert(owner_label.into(), name.into());
    labels
}

/// What differs between the kinds when building an [`Intent`].
struct KindParts {
    key_label: &'static str,
    custom_key: Option<String>,
    key_rule: &'static FormatRule,
    key_generator: KeyGenerator,
    secret_rule: &'static FormatRule,
    key_data_key: String,
    secret_data_key: String,
    previous_data_key: String,
    fixed_data: BTreeMap<String, String>,
    attributes: BTreeMap<String, String>,
}

/// The rest of an [`Intent`] comes from the fields both specs share.
fn intent_from<K: CredentialKind, S: CommonSpec>(object: &K, spec: &S, parts: KindParts) -> Intent {
    let generator = spec.generator();
    let parse = |d: Option<&str>| d.and_then(rules::parse_duration);
    Intent {
        generator_length: generator_length(generator.and_then(|g| g.length), parts.secret_rule),
        symbols: generator.and_then(|g| g.symbols).unwrap_or(false),
        secret_from: spec
            .secret_from()
            .map(|s| (s.secret_key_ref.name.clone(), s.secret_key_ref.key.clone())),
        interval: parse(spec.interval()),
        rotate_key: spec.rotate_key().unwrap_or(false),
        keep_previous: parse(spec.keep_previous()),
        reset_request: spec.reset_request().map(String::from),
        reset_annotation: object.annotations().get(RESET_REQUEST_ANNOTATION).cloned(),
        secret_name: spec
            .secret_name()
            .map(String::from)
            .unwrap_or_else(|| object.name_any()),
        labels: secret_labels(spec.secret_labels(), K::OWNER_LABEL, &object.name_any()),
        annotations: spec.secret_annotations().cloned().unwrap_or_default(),
        owned: spec.deletion_policy().unwrap_or_default() == DeletionPolicy::Delete,
        key_label: parts.key_label,
        custom_key: parts.custom_key,
        key_rule: parts.key_rule,
        key_generator: parts.key_generator,
        secret_rule: parts.secret_rule,
        key_data_key: parts.key_data_key,
        secret_data_key: parts.secret_data_key,
        previous_data_key: parts.previous_data_key,
        fixed_data: parts.fixed_data,
        attributes: parts.attributes,
    }
}

fn ready_condition(
    previous: Option<&Condition>,
    plan: &Plan,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if plan.readiness.ready {
        "True"
    } else {
        "False"
    };
    // lastTransitionTime moves only when the status flips.
    let last_transition_time = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Time(now),
    };
    Condition {
        type_: READY.into(),
        status: status.into(),
        reason: plan.readiness.reason.into(),
        message: plan.readiness.message.clone(),
        last_transition_time,
        observed_generation: generation,
    }
}

fn rotation_status(
    previous: &RotationStatus,
    intent: &Intent,
    plan: &Plan,
    generation: Option<i64>,
    now: Timestamp,
) -> RotationStatus {
    let previous_ready = previous.conditions.iter().find(|c| c.type_ == READY);
    let mut conditions: Vec<Condition> = previous
        .conditions
        .iter()
        .filter(|c| c.type_ != READY)
        .cloned()
        .collect();
    conditions.insert(0, ready_condition(previous_ready, plan, generation, now));
    match &plan.state {
        Some(state) => RotationStatus {
            secret_name: Some(intent.secret_name.clone()),
            last_rotation_time: time(state.last_rotation_time),
            last_rotation_reason: state.last_rotation_reason,
            next_rotation_time: time(state.next_rotation_time),
            previous_secret_expiry_time: time(state.previous_expiry_time),
            revision: state.revision,
            observed_reset_request: state.observed_reset_request.clone(),
            observed_reset_annotation: state.observed_reset_annotation.clone(),
            observed_generation: generation,
            generator_length: Some(intent.generator_length as u32),
            conditions,
        },
        // Blocked: keep what was issued, report why.
        None => RotationStatus {
            observed_generation: generation,
            conditions,
            ..previous.clone()
        },
    }
}

fn previous_rotation(
    status: &RotationStatus,
    key: Option<String>,
    register: Option<&Time>,
    update: Option<&Time>,
) -> PreviousStatus {
    PreviousStatus {
        key,
        revision: status.revision,
        last_rotation_time: status.last_rotation_time.as_ref().map(|t| t.0),
        last_rotation_reason: status.last_rotation_reason,
        register_time: register.map(|t| t.0),
        update_time: update.map(|t| t.0),
        observed_reset_request: status.observed_reset_request.clone(),
        observed_reset_annotation: status.observed_reset_annotation.clone(),
        attributes: None,
        ready_reason: status
            .conditions
            .iter()
            .find(|c| c.type_ == READY)
            .map(|c| c.reason.clone()),
    }
}

fn generator_length(spec_length: Option<u32>, rule: &FormatRule) -> usize {
    spec_length
        .map(|l| l as usize)
        .unwrap_or_else(|| rules::default_generated_len(rule))
}

// ---- GatewayApp --------------------------------------------------------------

impl GatewayApp {
    pub fn effective_app_name(&self) -> String {
        self.spec
            .app_name
            .clone()
            .unwrap_or_else(|| rules::derived_name(&self.name_any()))
    }

    fn attributes(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("appName".into(), self.effective_app_name()),
            (
                "creator".into(),
                format!("{:?}", self.spec.creator.unwrap_or_default()),
            ),
            (
                "appType".into(),
                format!("{:?}", self.spec.app_type.unwrap_or_default()),
            ),
        ])
    }

    fn status_attributes(status: &GatewayAppStatus) -> Option<BTreeMap<String, String>> {
        Some(BTreeMap::from([
            ("appName".into(), status.app_name.clone()?),
            ("creator".into(), format!("{:?}", status.creator?)),
            ("appType".into(), format!("{:?}", status.app_type?)),
        ]))
    }
}

impl CredentialKind for GatewayApp {
    fn unique_keys(&self) -> BTreeSet<String> {
        let issued = self.status.as_ref().and_then(|s| s.app_key.clone());
        self.spec.app_key.iter().cloned().chain(issued).collect()
    }

    const OWNER_LABEL: &'static str = GATEWAY_APP_LABEL;

    fn intent(&self) -> Intent {
        let spec = &self.spec;
        let keys = secret_keys::app_keys(spec);
        intent_from(
            self,
            spec,
            KindParts {
                key_label: "AppKey",
                custom_key: spec.app_key.clone(),
                key_rule: &rules::APP_KEY,
                key_generator: KeyGenerator::Uuid,
                secret_rule: &rules::APP_SECRET,
                key_data_key: keys.app_key,
                secret_data_key: keys.app_secret,
                previous_data_key: keys.app_secret_previous,
                fixed_data: BTreeMap::from([(keys.app_id, self.uid().unwrap_or_default())]),
                attributes: self.attributes(),
            },
        )
    }

    fn previous_status(&self) -> PreviousStatus {
        let status = self.status.clone().unwrap_or_default();
        PreviousStatus {
            attributes: Self::status_attributes(&status),
            ..previous_rotation(
                &status.rotation,
                status.app_key.clone(),
                status.register_time.as_ref(),
                status.update_time.as_ref(),
            )
        }
    }

    fn desired_status(&self, intent: &Intent, plan: &Plan, now: Timestamp) -> serde_json::Value {
        let previous = self.status.clone().unwrap_or_default();
        let rotation = rotation_status(
            &previous.rotation,
            intent,
            plan,
            self.meta().generation,
            now,
        );
        let status = match &plan.state {
            Some(state) => GatewayAppStatus {
                app_id: self.uid(),
                app_name: Some(self.effective_app_name()),
                app_key: state.key.clone(),
                creator: Some(self.spec.creator.unwrap_or(Creator::User)),
                app_type: Some(self.spec.app_type.unwrap_or(AppType::Apig)),
                register_time: time(state.register_time),
                update_time: time(state.update_time),
                rotation,
            },
            None => GatewayAppStatus {
                rotation,
                ..previous
            },
        };
        serde_json::to_value(status).unwrap_or_default()
    }

    fn current_status(&self) -> serde_json::Value {
        serde_json::to_value(self.status.clone().unwrap_or_default()).unwrap_or_default()
    }

    fn recorded_rotation(&self) -> Option<&RotationStatus> {
        self.status.as_ref().map(|s| &s.rotation)
    }
}

// ---- SignatureKey ------------------------------------------------------------

impl SignatureKey {
    pub fn effective_key_name(&self) -> String {
        self.spec
            .key_name
            .clone()
            .unwrap_or_else(|| rules::derived_name(&self.name_any()))
    }

    pub fn effective_sign_type(&self) -> SignType {
        self.spec.sign_type.unwrap_or_default()
    }

    /// aes without an algorithm cannot pass admission; aes-128 is the safe reading.
    fn effective_algorithm(&self) -> Option<SignAlgorithm> {
        match self.effective_sign_type() {
            SignType::Aes => Some(self.spec.sign_algorithm.unwrap_or(SignAlgorithm::Aes128Cfb)),
            _ => None,
        }
    }

    fn attributes(&self) -> BTreeMap<String, String> {
        let mut a = BTreeMap::from([
            ("keyName".into(), self.effective_key_name()),
            (
                "signType".into(),
                format!("{:?}", self.effective_sign_type()),
            ),
        ]);
        if let Some(algorithm) = self.effective_algorithm() {
            a.insert("signAlgorithm".into(), format!("{algorithm:?}"));
        }
        a
    }

    fn status_attributes(status: &SignatureKeyStatus) -> Option<BTreeMap<String, String>> {
        let mut a = BTreeMap::from([
            ("keyName".into(), status.key_name.clone()?),
            ("signType".into(), format!("{:?}", status.sign_type?)),
        ]);
        if let Some(algorithm) = status.sign_algorithm {
            a.insert("signAlgorithm".into(), format!("{algorithm:?}"));
        }
        Some(a)
    }
}

fn sign_type_name(t: SignType) -> &'static str {
    match t {
        SignType::Hmac => "hmac",
        SignType::Basic => "basic",
        SignType::Aes => "aes",
    }
}

fn algorithm_name(a: SignAlgorithm) -> &'static str {
    match a {
        SignAlgorithm::Aes128Cfb => "aes-128-cfb",
        SignAlgorithm::Aes256Cfb => "aes-256-cfb",
    }
}

impl CredentialKind for SignatureKey {
    const OWNER_LABEL: &'static str = SIGNATURE_KEY_LABEL;

    fn intent(&self) -> Intent {
        let spec = &self.spec;
        let sign_type = self.effective_sign_type();
        let algorithm = self.effective_algorithm();
        let key_rule = sign_key_rule(sign_type, algorithm);
        let keys = secret_keys::sign_keys(spec);
        let mut fixed_data = BTreeMap::from([(
            SIGN_TYPE_DATA.to_string(),
            sign_type_name(sign_type).to_string(),
        )]);
        if let Some(algorithm) = algorithm {
            fixed_data.insert(SIGN_ALGORITHM_DATA.into(), algorithm_name(algorithm).into());
        }
        intent_from(
            self,
            spec,
            KindParts {
                key_label: "sign_key",
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

    fn desired_status(&self, intent: &Intent, plan: &Plan, now: Timestamp) -> serde_json::Value {
        let previous = self.status.clone().unwrap_or_default();
        let rotation = rotation_status(
            &previous.rotation,
            intent,
            plan,
            self.meta().generation,
            now,
        );
        let status = match &plan.state {
            Some(state) => SignatureKeyStatus {
                id: self.uid().map(|u| u.replace('-', "")),
                key_name: Some(self.effective_key_name()),
                sign_type: Some(self.effective_sign_type()),
                sign_algorithm: self.effective_algorithm(),
                sign_key: state.key.clone(),
                create_time: time(state.register_time),
                update_time: time(state.update_time),
                rotation,
            },
            None => SignatureKeyStatus {
                rotation,
                ..previous
            },
        };
        serde_json::to_value(status).unwrap_or_default()
    }

    fn current_status(&self) -> serde_json::Value {
        serde_json::to_value(self.status.clone().unwrap_or_default()).unwrap_or_default()
    }

    fn recorded_rotation(&self) -> Option<&RotationStatus> {
        self.status.as_ref().map(|s| &s.rotation)
    }
}
