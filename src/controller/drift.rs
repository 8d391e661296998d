//! Drift at the cloud gateway (SPEC §11.2): someone resetting a secret in
//! the cloud console breaks every caller. At each connection's
//! `driftCheckInterval` keysmith lists the gateway's apps page by page
//! (cost ≈ apps ÷ page size, never a call per app) and compares each synced
//! GatewayApp's record with what the gateway holds. Where they differ it
//! forgets the part the gateway lost in `status.gateway` and says so
//! (Warning `GatewayDrift`); the reconcile that status change triggers
//! pushes the resource's credential again. No write call happens here.

use std::collections::HashMap;
use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use super::context::Shared;
use crate::api::{CloudGatewayStatus, ConnectionKind, GatewayApp, Reason};
use crate::engine::{PlannedEvent, Severity};
use crate::kinds::CredentialKind;
use crate::providers::{self, GatewayApi, RemoteApp};

/// Which resources a connection serves: a namespaced one those of its
/// namespace, a cluster one any namespace's.
pub struct Served<'a> {
    pub kind: ConnectionKind,
    pub name: &'a str,
    /// `Some` for a GatewayConnection: its namespace.
    pub namespace: Option<&'a str>,
}

/// One drift check of one connection; how many apps were repaired.
pub async fn check(
    shared: &Arc<Shared>,
    apps: &Store<GatewayApp>,
    served: &Served<'_>,
    client: &providers::Client,
) -> Result<usize, providers::GatewayError> {
    let synced: Vec<Arc<GatewayApp>> = apps
        .state()
        .into_iter()
        .filter(|app| serves(served, app))
        .collect();
    if synced.is_empty() {
        return Ok(0);
    }
    let remote = list_all(client).await?;
    let mut repaired = 0;
    for app in synced {
        let Some(found) = app.cloud_sync() else {
            continue;
        };
        let Some(id) = found.status.id.clone() else {
            continue;
        };
        let lost = lost(
            shared,
            &app,
            &found.status,
            remote.get(&id),
            client.list_carries_keys(),
        );
        if let Some((what, status)) = lost {
            forget(shared, &app, status, &what).await;
            repaired += 1;
        }
    }
    Ok(repaired)
}

fn serves(served: &Served<'_>, app: &GatewayApp) -> bool {
    let Some(reference) = app.spec.connection_ref.as_deref() else {
        return false;
    };
    reference.kind.unwrap_or_default() == served.kind
        && reference.name == served.name
        && served
            .namespace
            .is_none_or(|ns| app.namespace().as_deref() == Some(ns))
}

/// Every app at the gateway, by id, read page by page.
async fn list_all(
    client: &providers::Client,
) -> Result<HashMap<String, RemoteApp>, providers::GatewayError> {
    let mut all = HashMap::new();
    let mut page = Some(1);
    while let Some(number) = page {
        let listed = client.list_apps(number).await?;
        all.extend(listed.items.into_iter().map(|a| (a.id.clone(), a)));
        page = listed.next;
    }
    Ok(all)
}

/// What the gateway lost of what keysmith recorded, and the record to keep
/// so that the next pass pushes it again; `None` when nothing drifted.
fn lost(
    shared: &Shared,
    app: &GatewayApp,
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
        app.meta().uid.as_deref(),
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
async fn forget(shared: &Shared, app: &GatewayApp, status: CloudGatewayStatus, what: &str) {
    let namespace = app.namespace().unwrap_or_default();
    let name = app.name_any();
    let api: Api<GatewayApp> = Api::namespaced(shared.client.clone(), &namespace);
    let patch = serde_json::json!({
        "apiVersion": GatewayApp::api_version(&()),
        "kind": GatewayApp::kind(&()),
        "metadata": {"uid": app.meta().uid},
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
        app.meta().uid.as_deref().unwrap_or_default(),
        &status,
    );
    info!(namespace, name, what, "drift at the gateway: pushing again");
    shared.events.emit(
        app.object_ref(&()),
        &[PlannedEvent {
            severity: Severity::Warning,
            reason: Reason::GatewayDrift,
            note: format!("{what}; keysmith pushes the resource's credential again"),
        }],
    );
}
