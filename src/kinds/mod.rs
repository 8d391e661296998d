//! The only place that names a kind. Each kind implements [`CredentialKind`]:
//! how its spec becomes the engine's [`Intent`], how a plan becomes its
//! status, which label marks its Secrets, which keys must be unique. Code
//! above this layer is generic over the trait and never asks which kind it
//! has. Pure.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::RotationReason;
use crate::api::names::{annotations, gateway as gateway_names, labels};
use crate::api::{CommonSpec, DeletionPolicy, GatewayLayout, Kind, RotationStatus};
use crate::engine::{GatewayIntent, Intent, KeyGenerator, Plan, PreviousStatus};
use crate::rules::{self, FormatRule};

mod gateway_app;
mod signature_key;
mod status;

pub use status::{RolloutReport, rollout_record};

/// A resource's side of the cloud gateway sync.
#[derive(Clone, Debug, PartialEq)]
pub struct CloudSync {
    pub reference: crate::api::ConnectionRef,
    /// The app's name and remark at the gateway.
    pub name: String,
    pub remark: String,
    /// What the gateway holds, as last recorded.
    pub status: crate::api::CloudGatewayStatus,
    /// `keysmith.dev/adopt-gateway-app: "true"`.
    pub adopt: bool,
    /// `Some` for a SignatureKey: it keeps a signature key, not an app.
    pub signature: Option<SignatureShape>,
}

impl CloudSync {
    /// The sync of a resource whose spec names `reference` (none without one).
    pub(crate) fn of(
        object: &impl kube::Resource,
        reference: Option<&crate::api::ConnectionRef>,
        (name, remark): (String, String),
        status: Option<&crate::api::CloudGatewayStatus>,
        signature: Option<SignatureShape>,
    ) -> Option<CloudSync> {
        Some(CloudSync {
            reference: reference?.clone(),
            name,
            remark,
            status: status.cloned().unwrap_or_default(),
            adopt: object
                .meta()
                .annotations
                .as_ref()
                .and_then(|a| a.get(annotations::ADOPT_GATEWAY_APP))
                .is_some_and(|v| v == "true"),
            signature,
        })
    }
}

/// A signature key's fixed traits at the gateway: its name and sign type
/// (and algorithm).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignatureShape {
    pub name: String,
    pub sign_type: String,
    pub algorithm: Option<String>,
}

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
    /// The kind, for metric labels and messages.
    const KIND: Kind;
    /// The label on the output Secret naming its resource.
    const OWNER_LABEL: &'static str;
    fn intent(&self) -> Intent;
    fn previous_status(&self) -> PreviousStatus;
    /// The kind's status. What keysmith would write and what the object
    /// shows are compared as values of it: a write happens only when they
    /// differ.
    type Status: Serialize + PartialEq + Clone + std::fmt::Debug + Send + Sync;
    /// The full status to apply after `plan` (and the rollout step): the
    /// fields keysmith owns, with the gateway sync's left out.
    fn desired_status(
        &self,
        intent: &Intent,
        plan: &Plan,
        rollout: RolloutReport,
        now: Timestamp,
    ) -> Self::Status;
    /// The status as it is, reduced to the same fields.
    fn current_status(&self) -> Self::Status;
    /// The rotation part of the status as it is (read by the metrics).
    fn recorded_rotation(&self) -> Option<&RotationStatus>;
    /// Keys that must be unique across objects of this kind (AppKeys: the
    /// custom one asked for and the one issued); none by default.
    fn unique_keys(&self) -> BTreeSet<String> {
        BTreeSet::new()
    }
    /// The unique key this object's issued credentials carry (it keeps it
    /// against later claims); none by default.
    fn issued_unique_key(&self) -> Option<String> {
        None
    }
    /// `spec.rollout`: the workloads to restart when the credentials change.
    fn rollout(&self) -> Option<&crate::api::Rollout>;

    /// With `spec.connectionRef`: what the cloud gateway sync needs (SPEC §11.2).
    fn cloud_sync(&self) -> Option<CloudSync> {
        None
    }
    /// The unique key this object wants to hold now (checked against older
    /// holders before anything is issued); none by default.
    fn unique_key_wanted(&self, _intent: &Intent) -> Option<String> {
        None
    }
}

/// A status time, in whole seconds as the apiserver keeps it (a `Time` is
/// written `%Y-%m-%dT%H:%M:%SZ`): a time with a fraction — a rotation due
/// after an interval such as `90.5s` — would never equal what is read back,
/// and every pass would write the status again.
pub(crate) fn time(t: Option<Timestamp>) -> Option<Time> {
    t.map(|t| Time(crate::engine::truncate_to_second(t)))
}

fn secret_labels(
    spec_labels: Option<&BTreeMap<String, String>>,
    owner_label: &str,
    name: &str,
) -> BTreeMap<String, String> {
    let mut labels = spec_labels.cloned().unwrap_or_default();
    // keysmith's own labels win: they are how it recognises its Secrets.
    labels.insert(labels::MANAGED_BY.into(), labels::MANAGED_BY_VALUE.into());
    labels.insert(owner_label.into(), labels::owner_value(name));
    labels
}

/// The user's annotations plus the owner's identity (uid, and the name
/// when it does not fit the owner label).
fn secret_annotations(
    spec_annotations: Option<&BTreeMap<String, String>>,
    name: &str,
    uid: Option<&String>,
) -> BTreeMap<String, String> {
    let mut annotations = spec_annotations.cloned().unwrap_or_default();
    annotations.retain(|key, _| !annotations::reserved(key));
    if let Some(uid) = uid {
        annotations.insert(annotations::OWNER_UID.into(), uid.clone());
    }
    if labels::owner_value(name) != name {
        annotations.insert(annotations::OWNER_NAME.into(), name.into());
    }
    annotations
}

/// What differs between the kinds when building an [`Intent`].
pub(crate) struct KindParts {
    pub key_label: &'static str,
    pub key_changed_reason: RotationReason,
    pub custom_key: Option<String>,
    pub key_rule: &'static FormatRule,
    pub key_generator: KeyGenerator,
    pub secret_rule: &'static FormatRule,
    pub key_data_key: String,
    pub secret_data_key: String,
    pub previous_data_key: String,
    pub fixed_data: BTreeMap<String, String>,
    pub attributes: crate::api::Attributes,
    /// `spec.gateway`: the layout, and the name if given.
    pub gateway: Option<(GatewayLayout, Option<String>)>,
}

/// The rest of an [`Intent`] comes from the fields both specs share.
pub(crate) fn intent_from<K: CredentialKind, S: CommonSpec>(
    object: &K,
    spec: &S,
    parts: KindParts,
) -> Intent {
    let generator = spec.generator();
    let parse = |d: Option<&str>| d.and_then(rules::parse_duration);
    let secret_name = spec
        .secret_name()
        .map(String::from)
        .unwrap_or_else(|| object.name_any());
    let gateway = parts.gateway.map(|(layout, name)| GatewayIntent {
        layout,
        name: name.unwrap_or_else(|| format!("{secret_name}{}", gateway_names::DEFAULT_SUFFIX)),
    });
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
        reset_annotation: object
            .annotations()
            .get(annotations::RESET_REQUEST)
            .cloned(),
        secret_name,
        secret_type: spec.secret_type(),
        gateway,
        labels: secret_labels(spec.secret_labels(), K::OWNER_LABEL, &object.name_any()),
        annotations: secret_annotations(
            spec.secret_annotations(),
            &object.name_any(),
            object.meta().uid.as_ref(),
        ),
        owned: spec.deletion_policy().unwrap_or_default() == DeletionPolicy::Delete,
        key_label: parts.key_label,
        key_changed_reason: parts.key_changed_reason,
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

pub(crate) fn generator_length(spec_length: Option<u32>, rule: &FormatRule) -> usize {
    spec_length
        .map(|l| l as usize)
        .unwrap_or_else(|| rules::default_generated_len(rule))
}

#[cfg(test)]
mod tests;
