//! Secret I/O: reading the output Secret and a `…SecretFrom` source, seeing
//! them as the engine does, and applying the output Secret. Applying returns
//! [`SecretInPlace`], the only way to get one: the status step takes it, so
//! "Secret before status" (crash safety) is held by the types.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;
use kube::api::{Api, GetParams, Patch, PatchParams};

use super::error::{ApplySecretError, ObserveError};
use crate::api::FIELD_MANAGER;
use crate::api::names::{annotations, labels};
use crate::engine::{DesiredSecret, Intent, ObservedSecret, Plan, PreviousStatus, SourceValue};
use crate::kinds::CredentialKind;

/// Proof that the plan's Secret is in place: written now, or already as
/// wanted. Carries the plan on to the status step.
#[derive(Debug)]
pub struct SecretInPlace {
    plan: Plan,
    /// The resourceVersion of our write, if this pass wrote.
    written: Option<String>,
}

impl SecretInPlace {
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn written_version(&self) -> Option<&str> {
        self.written.as_deref()
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

/// The user-supplied secret, as the engine sees it.
pub async fn fetch_source(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<SourceValue, ObserveError> {
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
    let opted_in = |map: &BTreeMap<String, String>| {
        map.get(annotations::ALLOW_SOURCE).map(String::as_str)
            == Some(annotations::ALLOW_SOURCE_VALUE)
    };
    opted_in(secret.annotations()) || opted_in(secret.labels())
}

/// Whose a Secret of the target name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Issued by keysmith for this resource.
    Ours,
    /// Issued by keysmith for an earlier resource, taken over on request:
    /// its values count as someone else's (validated, never overwritten).
    Adopted,
    Foreign,
}

/// Whose `secret` is (SPEC §10, adoption is explicit). Ours: keysmith's
/// labels naming the owner *and* the owner's identity. A Secret written by
/// this release carries the owner's uid. One written by an earlier release
/// (labels only) is recognised when the owner's own status — which only
/// keysmith writes — says it issued into this Secret at the Secret's
/// revision (or one before: a crash between the two writes); the uid is
/// added at the next apply. A Secret keysmith wrote for an earlier resource
/// of the same name is adopted only when the resource asks
/// (`keysmith.dev/adopt-secret: "true"`). Anything else that merely looks
/// like keysmith's is foreign.
pub fn ownership<K: CredentialKind>(
    secret: &Secret,
    owner: &K,
    status: &PreviousStatus,
) -> Ownership {
    let labels = secret.labels();
    let labelled = labels.get(labels::MANAGED_BY).map(String::as_str)
        == Some(labels::MANAGED_BY_VALUE)
        && labels.get(K::OWNER_LABEL) == Some(&labels::owner_value(&owner.name_any()));
    if !labelled {
        return Ownership::Foreign;
    }
    let uid = secret.annotations().get(annotations::OWNER_UID);
    let asks_to_adopt = owner
        .annotations()
        .get(annotations::ADOPT_SECRET)
        .map(String::as_str)
        == Some("true");
    match uid {
        Some(uid) if owner.meta().uid.as_ref() == Some(uid) => Ownership::Ours,
        None if issued_by_an_earlier_release(secret, owner, status) => Ownership::Ours,
        _ if asks_to_adopt => Ownership::Adopted,
        _ => Ownership::Foreign,
    }
}

fn issued_by_an_earlier_release<K: CredentialKind>(
    secret: &Secret,
    owner: &K,
    status: &PreviousStatus,
) -> bool {
    let revision = secret
        .annotations()
        .get(annotations::REVISION)
        .and_then(|r| r.parse::<i64>().ok());
    let recorded = owner.recorded_rotation();
    let same_secret = recorded.and_then(|r| r.secret_name.as_deref()) == Some(&secret.name_any());
    match (revision, status.revision) {
        (Some(secret_rev), Some(status_rev)) => {
            same_secret && (secret_rev == status_rev || secret_rev == status_rev + 1)
        }
        _ => false,
    }
}

/// What keysmith sees of its output Secret.
pub fn observe_secret<K: CredentialKind>(
    secret: &Secret,
    owner: &K,
    intent: &Intent,
    status: &PreviousStatus,
) -> ObservedSecret {
    let data: BTreeMap<String, Option<String>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).ok()))
        .collect();
    let ownership = ownership(secret, owner, status);
    let owned = data_keys_we_own(secret);
    let edited_keys = [&intent.key_data_key, &intent.secret_data_key]
        .into_iter()
        .filter(|k| data.contains_key(*k))
        .filter(|k| {
            ownership == Ownership::Adopted
                || owned.as_ref().is_none_or(|owned| !owned.contains(*k))
        })
        .cloned()
        .collect();
    let foreign_data = ownership == Ownership::Adopted
        || owned
            .as_ref()
            .is_none_or(|owned| data.keys().any(|k| !owned.contains(k)));
    let uid = owner.meta().uid.as_ref();
    ObservedSecret {
        foreign_data,
        ours: ownership != Ownership::Foreign,
        data,
        labels: secret.labels().clone(),
        annotations: secret.annotations().clone(),
        owner_referenced: secret
            .owner_references()
            .iter()
            .any(|r| Some(&r.uid) == uid),
        edited_keys,
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

/// Applies the plan's Secret, if it wants one. `take_over` forces: it takes
/// back fields someone else changed in a Secret that is ours; without it, a
/// Secret that already exists with other values conflicts (a first issue
/// never takes over a Secret that appeared meanwhile).
pub async fn apply_secret<K: CredentialKind>(
    api: &Api<Secret>,
    owner: &K,
    namespace: &str,
    plan: Plan,
    take_over: bool,
) -> Result<SecretInPlace, Box<NotApplied>> {
    let Some(desired) = &plan.secret else {
        return Ok(SecretInPlace {
            plan,
            written: None,
        });
    };
    match apply_desired(api, owner, namespace, desired, take_over).await {
        Ok(written) => Ok(SecretInPlace { written, plan }),
        Err(error) => Err(Box::new(NotApplied { error, plan })),
    }
}

/// Applies one Secret keysmith wants; returns the written resourceVersion.
/// `take_over` as for [`apply_secret`].
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
        .map_err(|source| ApplySecretError {
            namespace: namespace.into(),
            name: desired.name.clone(),
            source,
        })
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
            "metadata": {"name": "orders", "namespace": "shop", "labels": labels, "annotations": annotations},
        }))
        .unwrap()
    }

    fn ours_labels() -> serde_json::Value {
        json!({"app.kubernetes.io/managed-by": "keysmith", "keysmith.dev/gatewayapp": "orders"})
    }

    fn issued(revision: i64) -> serde_json::Value {
        json!({"secretName": "orders", "revision": revision})
    }

    fn whose(secret: &Secret, app: &GatewayApp) -> Ownership {
        ownership(
            secret,
            app,
            &crate::kinds::CredentialKind::previous_status(app),
        )
    }

    #[test]
    fn labels_and_the_owners_uid_make_a_secret_ours() {
        let app = app(json!({}), json!({}));
        let s = secret(ours_labels(), json!({"keysmith.dev/owner-uid": UID}));
        assert_eq!(
            whose(&s, &app),
            Ownership::Ours,
            "also before the status: a crash"
        );
        let other = secret(ours_labels(), json!({"keysmith.dev/owner-uid": "another"}));
        assert_eq!(whose(&other, &app), Ownership::Foreign);
        let unlabelled = secret(json!({}), json!({"keysmith.dev/owner-uid": UID}));
        assert_eq!(whose(&unlabelled, &app), Ownership::Foreign);
    }

    #[test]
    fn labels_alone_are_a_forgery_unless_the_status_vouches_for_them() {
        let forged = secret(ours_labels(), json!({"keysmith.dev/revision": "1"}));
        assert_eq!(
            whose(&forged, &app(json!({}), json!({}))),
            Ownership::Foreign
        );
        // Written by an earlier release: the status (only keysmith writes it) agrees.
        assert_eq!(whose(&forged, &app(json!({}), issued(1))), Ownership::Ours);
        let ahead = secret(ours_labels(), json!({"keysmith.dev/revision": "2"}));
        assert_eq!(
            whose(&ahead, &app(json!({}), issued(1))),
            Ownership::Ours,
            "a crash"
        );
        let far = secret(ours_labels(), json!({"keysmith.dev/revision": "7"}));
        assert_eq!(whose(&far, &app(json!({}), issued(1))), Ownership::Foreign);
    }

    #[test]
    fn a_secret_of_an_earlier_resource_is_adopted_only_on_request() {
        let left = secret(ours_labels(), json!({"keysmith.dev/owner-uid": "earlier"}));
        assert_eq!(whose(&left, &app(json!({}), json!({}))), Ownership::Foreign);
        let asking = app(json!({"keysmith.dev/adopt-secret": "true"}), json!({}));
        assert_eq!(whose(&left, &asking), Ownership::Adopted);
        let foreign = secret(json!({}), json!({}));
        assert_eq!(
            whose(&foreign, &asking),
            Ownership::Foreign,
            "never without the labels"
        );
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
