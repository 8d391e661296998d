//! Drift at the cloud gateway (SPEC §11.2): someone resetting a secret in
//! the cloud console breaks every caller. At each connection's
//! `driftCheckInterval` keysmith lists the gateway's apps page by page
//! (cost ≈ apps ÷ page size, never a call per app) and compares each synced
//! GatewayApp's record with what the gateway holds; the same for
//! SignatureKeys against the gateway's signature keys. Where they differ it
//! forgets the part the gateway lost in `status.gateway` and says so
//! (Warning `GatewayDrift`); the reconcile that status change triggers
//! pushes the resource's credential again. No write call happens here.

use std::collections::HashMap;
use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use super::cloud_target::Target;
use super::context::Shared;
use crate::api::{CloudGatewayStatus, ConnectionKind, GatewayApp, Reason, SignatureKey};
use crate::engine::{PlannedEvent, Severity};
use crate::kinds::{CloudSync, CredentialKind, SignatureShape};
use crate::providers::{self, GatewayApi, RemoteApp};

/// Which resources a connection serves: a namespaced one those of its
/// namespace, a cluster one any namespace's.
pub struct Served<'a> {
    pub kind: ConnectionKind,
    pub name: &'a str,
    /// `Some` for a GatewayConnection: its namespace.
    pub namespace: Option<&'a str>,
}

/// One drift check of one connection: its GatewayApps against the
/// gateway's apps, its SignatureKeys against its signature keys (each list
/// read only when a resource of that kind uses the connection); how many
/// resources were repaired.
pub async fn check(
    shared: &Arc<Shared>,
    (apps, keys): (&Store<GatewayApp>, &Store<SignatureKey>),
    served: &Served<'_>,
    client: &providers::Client,
) -> Result<usize, providers::GatewayError> {
    let as_apps = Target {
        client,
        signature: None,
    };
    let shape = SignatureShape::default();
    let as_keys = Target {
        client,
        signature: Some(&shape),
    };
    let repaired = check_kind(shared, apps, served, &as_apps).await?;
    Ok(repaired + check_kind(shared, keys, served, &as_keys).await?)
}

/// The drift check of one kind's resources that `served` serves.
async fn check_kind<K>(
    shared: &Arc<Shared>,
    store: &Store<K>,
    served: &Served<'_>,
    gateway: &Target<'_>,
) -> Result<usize, providers::GatewayError>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let synced: Vec<(Arc<K>, CloudGatewayStatus)> = store
        .state()
        .into_iter()
        .filter_map(|object| {
            let sync = object.cloud_sync()?;
            let recorded = serves(served, &*object, &sync).then_some(sync.status)?;
            recorded.id.is_some().then_some((object, recorded))
        })
        .collect();
    if synced.is_empty() {
        return Ok(0);
    }
    let remote = list_all(gateway).await?;
    let mut repaired = 0;
    for (object, recorded) in synced {
        let id = recorded.id.as_deref().unwrap_or_default();
        let found = remote.get(id);
        let carries_keys = gateway.list_carries_keys();
        if let Some((what, status)) = lost(shared, &*object, &recorded, found, carries_keys) {
            forget(shared, &*object, status, &what).await;
            repaired += 1;
        }
    }
    Ok(repaired)
}

fn serves<K: ResourceExt>(served: &Served<'_>, object: &K, sync: &CloudSync) -> bool {
    let reference = &sync.reference;
    reference.kind.unwrap_or_default() == served.kind
        && reference.name == served.name
        && served
            .namespace
            .is_none_or(|ns| object.namespace().as_deref() == Some(ns))
}

/// Every app (or signature key) at the gateway, by id, read page by page.
async fn list_all(
    gateway: &Target<'_>,
) -> Result<HashMap<String, RemoteApp>, providers::GatewayError> {
    let mut all = HashMap::new();
    let mut page = Some(1);
    while let Some(number) = page {
        let listed = gateway.list_apps(number).await?;
        all.extend(listed.items.into_iter().map(|a| (a.id.clone(), a)));
        page = listed.next;
    }
    Ok(all)
}

/// What the gateway lost of what keysmith recorded, and the record to keep
/// so that the next pass pushes it again; `None` when nothing drifted.
fn lost<K: Resource>(
    shared: &Shared,
    object: &K,
    recorded: &CloudGatewayStatus,
    remote: Option<&RemoteApp>,
    carries_keys: bool,
) -> Option<(String, CloudGatewayStatus)> {
    let mut status = recorded.clone();
    let Some(remote) = remote else {
        status.id = None;
        status.revision = None;
        return Some(("the app is gone from the gateway".into(), status));
    };
    if crate::controller::cloud::attributes_of(remote) != recorded.attributes {
        status.attributes = None;
        return Some((
            "the app's name or remark changed at the gateway".into(),
            status,
        ));
    }
    if !carries_keys {
        return None; // the list shows no keys (Alibaba): only existence and attributes
    }
    let key = recorded.key.as_deref()?;
    let pair = remote.keys.iter().find(|p| p.key == key);
    let Some(pair) = pair else {
        status.revision = None;
        return Some((
            format!("AppKey {key} is gone from the gateway's app"),
            status,
        ));
    };
    let (Some(record_key), Some(uid), Some(digest), Some(secret)) = (
        shared.record_key.as_ref(),
        object.meta().uid.as_deref(),
        recorded.secret_digest.as_deref(),
        pair.secret.as_ref(),
    ) else {
        return None;
    };
    if crate::engine::seal::gateway_digest(record_key, uid, secret.expose()) != digest {
        status.revision = None;
        return Some(("the AppSecret was changed at the gateway".into(), status));
    }
    None
}

/// Records what the gateway lost and tells; the status change triggers the
/// reconcile that pushes again.
async fn forget<K>(shared: &Shared, object: &K, status: CloudGatewayStatus, what: &str)
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(shared.client.clone(), &namespace);
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"uid": object.meta().uid},
        "status": {"gateway": status},
    });
    let params = PatchParams::apply(crate::controller::cloud::MANAGER).force();
    if let Err(error) = api
        .patch_status(&name, &params, &Patch::Apply(&patch))
        .await
    {
        warn!(namespace, name, %error, "recording drift failed; the next check finds it again");
        return;
    }
    crate::controller::cloud::remember(
        shared,
        object.meta().uid.as_deref().unwrap_or_default(),
        &status,
    );
    info!(namespace, name, what, "drift at the gateway: pushing again");
    shared.events.emit(
        object.object_ref(&()),
        &[PlannedEvent {
            severity: Severity::Warning,
            reason: Reason::GatewayDrift,
            note: format!("{what}; keysmith pushes the resource's credential again"),
        }],
    );
}
