//! Secret I/O: reading the output Secret and a `…SecretFrom` source, seeing
//! them as the engine does, and applying the output Secret. Applying returns
//! [`SecretInPlace`] — the only other way to get one is a write refused for
//! good ([`SecretInPlace::refused`]): the status step takes it, so "Secret
//! before status" (crash safety) is held by the types.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    FieldsV1, ManagedFieldsEntry, ObjectMeta, OwnerReference,
};
use kube::ResourceExt;
use kube::api::{Api, GetParams, Patch, PatchParams, PostParams};

use super::error::{ApplySecretError, ObserveError};
use crate::api::FIELD_MANAGER;
use crate::api::names::annotations;
use crate::engine::{
    self, Claimant, DesiredSecret, Intent, ObservedSecret, Plan, PreviousStatus, SecretIdentity,
    SourceValue,
};
use crate::kinds::CredentialKind;

/// Proof that the Secret step is done: the plan's Secret written now or
/// already as wanted, or a write the apiserver refused for good reported in
/// its place (the Secret then stays as it was). Carries the plan on to the
/// status step.
#[derive(Debug)]
pub struct SecretInPlace {
    plan: Plan,
    applied: Applied,
}

/// What the Secret step did with the plan's Secret.
#[derive(Debug)]
pub enum Applied {
    /// Written now, at this resourceVersion (if the apiserver said).
    Written(Option<String>),
    /// The plan writes no Secret: it is as wanted, or the pass is blocked.
    NotNeeded,
    /// The apiserver refused the write for good; the plan is the one that
    /// reports the refusal, and nothing was written.
    Refused,
}

impl SecretInPlace {
    /// A write the apiserver refused for good, reported by `plan` (from
    /// `engine::plan_refused`): nothing is written, the status says why.
    pub fn refused(plan: Plan) -> SecretInPlace {
        SecretInPlace {
            plan,
            applied: Applied::Refused,
        }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn written_version(&self) -> Option<&str> {
        match &self.applied {
            Applied::Written(rv) => rv.as_deref(),
            Applied::NotNeeded | Applied::Refused => None,
        }
    }

    /// Ready waits for something after the Secret (the cloud gateway sync):
    /// a Ready plan becomes not Ready with this reason; one already not
    /// Ready keeps its own reason.
    pub fn hold_ready(&mut self, reason: crate::api::Reason, message: &str) {
        if self.plan.readiness.ready {
            self.plan.readiness.ready = false;
            self.plan.readiness.reason = reason;
            self.plan.readiness.message = message.to_string();
        }
    }
}

/// Where to read a Secret from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadFrom {
    /// etcd: the newest copy.
    Quorum,
    /// The apiserver's watch cache: cheaper, may lag.
    WatchCache,
}

pub async fn fetch_secret(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
    from: ReadFrom,
) -> Result<Option<Secret>, ObserveError> {
    let result = match from {
        ReadFrom::WatchCache => match api.get_with(name, &GetParams::any()).await {
            Ok(secret) => Ok(Some(secret)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(error) => Err(error),
        },
        ReadFrom::Quorum => api.get_opt(name).await,
    };
    result.map_err(|source| ObserveError::ReadSecret {
        namespace: namespace.into(),
        name: name.into(),
        source,
    })
}

/// The user-supplied secret, as the engine sees it. Its metadata is read
/// first: the data of a Secret that has not opted in is never fetched.
pub async fn fetch_source(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<SourceValue, ObserveError> {
    let meta = api
        .get_metadata_opt(name)
        .await
        .map_err(|source| ObserveError::ReadSecret {
            namespace: namespace.into(),
            name: name.into(),
            source,
        })?;
    match meta {
        None => return Ok(SourceValue::SecretMissing),
        Some(meta) if !opted_in_to_reading(meta.annotations(), meta.labels()) => {
            return Ok(SourceValue::NotAllowed);
        }
        Some(_) => {}
    }
    Ok(
        match fetch_secret(api, namespace, name, ReadFrom::Quorum).await? {
            None => SourceValue::SecretMissing,
            Some(source) if !allows_reading(&source) => SourceValue::NotAllowed,
            Some(source) => match source.data.as_ref().and_then(|d| d.get(key)) {
                None => SourceValue::KeyMissing,
                Some(bytes) => match String::from_utf8(bytes.0.clone()) {
                    Ok(value) => SourceValue::Found(value),
                    Err(_) => SourceValue::NotUtf8,
                },
            },
        },
    )
}

/// A source Secret opted in: `keysmith.dev/allow-source: "true"` as an
/// annotation or a label (SPEC §10).
pub fn allows_reading(secret: &Secret) -> bool {
    opted_in_to_reading(secret.annotations(), secret.labels())
}

fn opted_in_to_reading(
    on_annotations: &BTreeMap<String, String>,
    on_labels: &BTreeMap<String, String>,
) -> bool {
    let opted_in = |map: &BTreeMap<String, String>| {
        map.get(annotations::ALLOW_SOURCE).map(String::as_str)
            == Some(annotations::ALLOW_SOURCE_VALUE)
    };
    opted_in(on_annotations) || opted_in(on_labels)
}

/// What `secret` says about its owner, read by the engine's ownership
/// check. `is_live` tells whether a uid names an existing resource of `K`
/// other than the one asking.
pub fn identity_of<K: CredentialKind>(
    secret: &Secret,
    is_live: &dyn Fn(&str) -> bool,
) -> SecretIdentity {
    let owner_reference_uids = secret
        .owner_references()
        .iter()
        .map(|r| r.uid.clone())
        .collect();
    SecretIdentity::read(
        secret.labels(),
        secret.annotations(),
        owner_reference_uids,
        K::OWNER_LABEL,
        is_live,
    )
}

/// The resource asking, read by the engine's ownership check.
pub fn claimant_of<K: CredentialKind>(owner: &K, status: &PreviousStatus) -> Claimant {
    let issued_into = owner
        .recorded_rotation()
        .and_then(|r| r.secret_name.clone())
        .zip(status.revision);
    Claimant::read(
        &owner.name_any(),
        owner.meta().uid.clone(),
        owner.annotations(),
        issued_into,
    )
}

/// What keysmith sees of its output Secret.
pub fn observe_secret<K: CredentialKind>(
    secret: &Secret,
    owner: &K,
    intent: &Intent,
    status: &PreviousStatus,
    is_live: &dyn Fn(&str) -> bool,
) -> ObservedSecret {
    let data: BTreeMap<String, Option<String>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).ok()))
        .collect();
    let ownership = engine::ownership::decide(
        &secret.name_any(),
        &identity_of::<K>(secret, is_live),
        &claimant_of(owner, status),
    );
    let others = engine::ownership::entries_of_others(
        ownership,
        &data,
        data_keys_we_own(secret).as_ref(),
        [&intent.key_data_key, &intent.secret_data_key],
    );
    let uid = owner.meta().uid.as_ref();
    ObservedSecret {
        foreign_data: others.any,
        edited_keys: others.edited,
        ownership,
        data,
        labels: secret.labels().clone(),
        annotations: secret.annotations().clone(),
        owner_referenced: secret
            .owner_references()
            .iter()
            .any(|r| Some(&r.uid) == uid),
    }
}

/// Data fields keysmith's field manager still owns (server-side apply's
/// field ownership): a field someone else changed moved to their manager.
/// `None` when keysmith has never applied this Secret.
fn data_keys_we_own(secret: &Secret) -> Option<BTreeSet<String>> {
    secret
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| {
            m.manager.as_deref() == Some(FIELD_MANAGER) && m.operation.as_deref() == Some("Apply")
        })
        .map(|m| {
            m.fields_v1
                .as_ref()
                .and_then(|f| f.0.get("f:data"))
                .and_then(|d| d.as_object())
                .map(|d| {
                    d.keys()
                        .filter_map(|k| k.strip_prefix("f:"))
                        .map(String::from)
                        .collect::<BTreeSet<String>>()
                })
                .unwrap_or_default()
        })
        .reduce(|mut all, more| {
            all.extend(more);
            all
        })
}

fn owner_reference<K: CredentialKind>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into(),
        kind: K::kind(&()).into(),
        name: owner.name_any(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        // blockOwnerDeletion would need update on the owner's finalizers; not worth the permission.
        block_owner_deletion: None,
    }
}

/// The apply patch: keysmith's fields of the Secret.
fn secret_object<K: CredentialKind>(owner: &K, namespace: &str, desired: &DesiredSecret) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(desired.name.clone()),
            namespace: Some(namespace.into()),
            labels: Some(desired.labels.clone()),
            annotations: Some(desired.annotations.clone()),
            owner_references: desired.owned.then(|| vec![owner_reference(owner)]),
            ..Default::default()
        },
        // Always sent, as earlier releases sent `Opaque`: the field stays ours.
        type_: Some(desired.type_.as_str().into()),
        data: Some(
            desired
                .data
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone().into_bytes())))
                .collect(),
        ),
        ..Default::default()
    }
}

/// Writes the plan's Secret, if it wants one. A Secret not found is
/// **created** (SPEC §10, the first issue is exclusive): one that appeared
/// since — planted, or another resource issuing into the same name at the
/// same moment — makes the create fail with 409 instead of receiving
/// keysmith's fields, and the retry reads it. A Secret found is applied
/// with force, taking back fields someone else changed; `upgrade` first
/// hands the fields of keysmith's create to its apply entry.
pub async fn apply_output_secret<K: CredentialKind>(
    api: &Api<Secret>,
    owner: &K,
    namespace: &str,
    plan: Plan,
    found: Option<Option<&OwnershipUpgrade>>,
) -> Result<SecretInPlace, Box<NotApplied>> {
    let Some(desired) = &plan.secret else {
        return Ok(SecretInPlace {
            plan,
            applied: Applied::NotNeeded,
        });
    };
    let written = match found {
        None => create_desired(api, owner, namespace, desired).await,
        Some(upgrade) => match upgrade_ownership(api, namespace, &desired.name, upgrade).await {
            Ok(()) => apply_desired(api, owner, namespace, desired, true).await,
            Err(error) => Err(error),
        },
    };
    match written {
        Ok(written) => Ok(SecretInPlace {
            applied: Applied::Written(written),
            plan,
        }),
        Err(error) => Err(Box::new(NotApplied { error, plan })),
    }
}

/// Applies one Secret keysmith wants; returns the written resourceVersion.
/// `take_over` forces: it takes back fields someone else changed in a
/// Secret that is ours; without it, a Secret that already exists with other
/// values conflicts.
pub async fn apply_desired<K: CredentialKind>(
    api: &Api<Secret>,
    owner: &K,
    namespace: &str,
    desired: &DesiredSecret,
    take_over: bool,
) -> Result<Option<String>, ApplySecretError> {
    let secret = secret_object(owner, namespace, desired);
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.force = take_over;
    api.patch(&desired.name, &params, &Patch::Apply(&secret))
        .await
        .map(|written| written.metadata.resource_version)
        .map_err(|source| write_error(namespace, &desired.name, source, desired))
}

/// Creates the Secret keysmith wants (field manager `keysmith`); fails with
/// 409 AlreadyExists on any Secret of that name.
async fn create_desired<K: CredentialKind>(
    api: &Api<Secret>,
    owner: &K,
    namespace: &str,
    desired: &DesiredSecret,
) -> Result<Option<String>, ApplySecretError> {
    let secret = secret_object(owner, namespace, desired);
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    api.create(&params, &secret)
        .await
        .map(|written| written.metadata.resource_version)
        .map_err(|source| write_error(namespace, &desired.name, source, desired))
}

fn write_error(
    namespace: &str,
    name: &str,
    source: kube::Error,
    desired: &DesiredSecret,
) -> ApplySecretError {
    ApplySecretError {
        namespace: namespace.into(),
        name: name.into(),
        source: redacted(source, desired.data.values()),
    }
}

/// What a create leaves behind: the fields it wrote belong to keysmith's
/// managedFields entry of operation `Update`, which no later apply can
/// remove (a renamed data key, an owner reference switched off would
/// stay). Before its first apply keysmith hands them to its `Apply` entry,
/// as client-go's csaupgrade does — one write, once in a Secret's life.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnershipUpgrade {
    resource_version: String,
    managed_fields: Vec<ManagedFieldsEntry>,
}

/// The upgrade `secret` needs, if keysmith owns some of its fields through
/// an `Update` entry.
pub fn ownership_upgrade(secret: &Secret) -> Option<OwnershipUpgrade> {
    let entries = secret.metadata.managed_fields.as_ref()?;
    let ours = |e: &ManagedFieldsEntry, op: &str| {
        e.manager.as_deref() == Some(FIELD_MANAGER)
            && e.operation.as_deref() == Some(op)
            && e.subresource.as_deref().unwrap_or_default().is_empty()
    };
    let updated = entries.iter().find(|e| ours(e, "Update"))?;
    let mut managed_fields: Vec<ManagedFieldsEntry> = entries
        .iter()
        .filter(|e| !ours(e, "Update"))
        .cloned()
        .collect();
    match managed_fields.iter_mut().find(|e| ours(e, "Apply")) {
        Some(applied) => {
            let mut fields = applied.fields_v1.take().map(|f| f.0).unwrap_or_default();
            merge_fields(&mut fields, updated.fields_v1.as_ref().map(|f| &f.0));
            applied.fields_v1 = Some(FieldsV1(fields));
        }
        None => managed_fields.push(ManagedFieldsEntry {
            operation: Some("Apply".into()),
            ..updated.clone()
        }),
    }
    Some(OwnershipUpgrade {
        resource_version: secret.metadata.resource_version.clone()?,
        managed_fields,
    })
}

/// `into` ∪ `from`, for fieldsV1 trees (objects of objects).
fn merge_fields(into: &mut serde_json::Value, from: Option<&serde_json::Value>) {
    let (Some(into), Some(serde_json::Value::Object(from))) = (into.as_object_mut(), from) else {
        return;
    };
    for (key, value) in from {
        match into.get_mut(key) {
            Some(existing) => merge_fields(existing, Some(value)),
            None => {
                into.insert(key.clone(), value.clone());
            }
        }
    }
}

async fn upgrade_ownership(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
    upgrade: Option<&OwnershipUpgrade>,
) -> Result<(), ApplySecretError> {
    let Some(upgrade) = upgrade else {
        return Ok(());
    };
    // The resourceVersion makes it conditional: a Secret changed since it was read conflicts.
    let patch = serde_json::json!({"metadata": {
        "resourceVersion": upgrade.resource_version,
        "managedFields": upgrade.managed_fields,
    }});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|source| ApplySecretError {
            namespace: namespace.into(),
            name: name.into(),
            source,
        })
}

/// The error with every value of the refused write (raw, and base64 as the
/// wire shows it) taken out of the apiserver's message: it reaches logs.
pub fn redacted<'a>(error: kube::Error, values: impl Iterator<Item = &'a String>) -> kube::Error {
    let kube::Error::Api(mut status) = error else {
        return error;
    };
    for value in values.filter(|v| !v.is_empty()) {
        let wire = base64::engine::general_purpose::STANDARD.encode(value);
        let redact = |text: &mut String| {
            *text = text
                .replace(value.as_str(), "<redacted>")
                .replace(&wire, "<redacted>")
        };
        redact(&mut status.message);
        for cause in status.details.iter_mut().flat_map(|d| &mut d.causes) {
            redact(&mut cause.message);
        }
    }
    kube::Error::Api(status)
}

/// Removes data entries from a Secret (entries someone else added to one
/// keysmith derives entirely); returns the written resourceVersion.
pub async fn remove_data_keys(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
    keys: &[String],
) -> Result<Option<String>, ApplySecretError> {
    let nulls: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| (k.clone(), serde_json::Value::Null))
        .collect();
    let patch = serde_json::json!({ "data": nulls });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    api.patch(name, &params, &Patch::Merge(&patch))
        .await
        .map(|written| written.metadata.resource_version)
        .map_err(|source| ApplySecretError {
            namespace: namespace.into(),
            name: name.into(),
            source,
        })
}

/// A failed Secret apply, with the plan it carried (so that a refusal can
/// be reported with that plan's values redacted, without copying them first).
#[derive(Debug)]
pub struct NotApplied {
    pub error: ApplySecretError,
    pub plan: Plan,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::GatewayApp;

    const UID: &str = "0d2c5f0e-1111-4222-8333-944445555666";

    fn app(annotations: serde_json::Value, status: serde_json::Value) -> GatewayApp {
        serde_json::from_value(json!({
            "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
            "metadata": {"name": "orders", "namespace": "shop", "uid": UID, "annotations": annotations},
            "spec": {}, "status": status,
        }))
        .unwrap()
    }

    fn secret(labels: serde_json::Value, annotations: serde_json::Value) -> Secret {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "orders", "namespace": "shop", "labels": labels, "annotations": annotations,
                "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "uid-x"}]},
        }))
        .unwrap()
    }

    #[test]
    fn the_facts_are_read_off_the_secret_and_the_resource() {
        let s = secret(
            json!({"app.kubernetes.io/managed-by": "keysmith", "keysmith.dev/gatewayapp": "orders"}),
            json!({"keysmith.dev/owner-uid": "uid-old", "keysmith.dev/owner-name": "orders",
                   "keysmith.dev/revision": "3", "keysmith.dev/adopt": "true"}),
        );
        // The reading itself is tested in engine::ownership; here, that the
        // Secret's parts reach it (the owner references among them).
        let identity = identity_of::<GatewayApp>(&s, &|uid| uid == "uid-old");
        assert_eq!(identity.owner_reference_uids, vec!["uid-x".to_string()]);
        assert_eq!(identity.owner_label.as_deref(), Some("orders"));
        assert!(identity.owner_uid_is_live);
        let asking = app(
            json!({"keysmith.dev/adopt-secret": "true"}),
            json!({"secretName": "orders", "revision": 2}),
        );
        let claimant = claimant_of(&asking, &CredentialKind::previous_status(&asking));
        assert_eq!(claimant.uid.as_deref(), Some(UID));
        assert!(claimant.asks_to_adopt);
        assert_eq!(claimant.issued_into, Some(("orders".into(), 2)));
        let plain = app(json!({}), json!({}));
        let claimant = claimant_of(&plain, &CredentialKind::previous_status(&plain));
        assert!(!claimant.asks_to_adopt);
        assert_eq!(claimant.issued_into, None);
    }

    #[test]
    fn a_write_error_quotes_no_value_raw_or_base64() {
        let value = "Secret-Value-0123456789".to_string();
        let wire = base64::engine::general_purpose::STANDARD.encode(&value);
        let status: kube::core::Status = serde_json::from_value(json!({
            "code": 422, "reason": "Invalid",
            "message": format!("data[x]: Invalid value: {value:?} and {wire}"),
            "details": {"causes": [{"field": "data[x]", "message": format!("Invalid value: {value}")}]},
        }))
        .unwrap();
        let error = redacted(kube::Error::Api(status.boxed()), [&value].into_iter());
        let kube::Error::Api(status) = &error else {
            panic!("still an API error");
        };
        let all = format!("{error} {status:?}");
        assert!(!all.contains(&value) && !all.contains(&wire), "{all}");
        assert!(status.message.contains("<redacted>"));
        assert_eq!(status.code, 422, "the code and reason stay");
    }

    #[test]
    fn sources_opt_in_by_annotation_or_label() {
        assert!(!allows_reading(&secret(json!({}), json!({}))));
        assert!(allows_reading(&secret(
            json!({}),
            json!({"keysmith.dev/allow-source": "true"})
        )));
        assert!(allows_reading(&secret(
            json!({"keysmith.dev/allow-source": "true"}),
            json!({})
        )));
        assert!(!allows_reading(&secret(
            json!({}),
            json!({"keysmith.dev/allow-source": "yes"})
        )));
    }
}
