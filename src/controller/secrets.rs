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
use crate::api::names::labels;
use crate::engine::{DesiredSecret, Intent, ObservedSecret, Plan, SourceValue};
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

/// Whether a Secret's labels say keysmith created it for `owner`.
pub fn is_ours<K: CredentialKind>(secret: &Secret, owner: &K) -> bool {
    let labels = secret.labels();
    labels.get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGED_BY_VALUE)
        && labels.get(K::OWNER_LABEL) == Some(&owner.name_any())
}

/// What keysmith sees of its output Secret.
pub fn observe_secret<K: CredentialKind>(
    secret: &Secret,
    owner: &K,
    intent: &Intent,
) -> ObservedSecret {
    let data: BTreeMap<String, Option<String>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).ok()))
        .collect();
    let owned = data_keys_we_own(secret);
    let edited_keys = [&intent.key_data_key, &intent.secret_data_key]
        .into_iter()
        .filter(|k| data.contains_key(*k))
        .filter(|k| owned.as_ref().is_none_or(|owned| !owned.contains(*k)))
        .cloned()
        .collect();
    let uid = owner.meta().uid.as_ref();
    ObservedSecret {
        ours: is_ours(secret, owner),
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
        type_: Some("Opaque".into()),
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
) -> Result<SecretInPlace, ApplySecretError> {
    let Some(desired) = &plan.secret else {
        return Ok(SecretInPlace {
            plan,
            written: None,
        });
    };
    let secret = secret_object(owner, namespace, desired);
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.force = take_over;
    let written = api
        .patch(&desired.name, &params, &Patch::Apply(&secret))
        .await
        .map_err(|source| ApplySecretError {
            namespace: namespace.into(),
            name: desired.name.clone(),
            source,
        })?;
    Ok(SecretInPlace {
        written: written.metadata.resource_version,
        plan,
    })
}
