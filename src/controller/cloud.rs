//! The cloud gateway sync step (SPEC §11.2): after the output Secret is in
//! place, keep the app at the gateway `spec.connectionRef` names equal to
//! the resource — created with the issued AppKey/AppSecret, every new
//! revision and every name or remark change pushed with the provider's own
//! operation — and report it in `status.gateway` and the `GatewaySynced`
//! condition, written under a field manager of its own.
//!
//! Crash safety: the value pushed is always the one already in the output
//! Secret (fixed there, by revision, before any call), so a call that may or
//! may not have happened is retried with the same value; an app that may
//! have been created is looked up by name (and recognised by its AppKey)
//! before any second create.
//!
//! Order: a new revision for an app that exists at the gateway is pushed
//! before the Secret write ([`before_secret`], its values fixed first in the
//! Secret's pending entry); the first issue writes the Secret first and then
//! creates the app ([`sync`]).

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::{Resource, ResourceExt};
use tracing::{debug, info};

use super::cloud_target::Target;
use super::connection_use;
use super::connections;
use super::context::KindContext;
use super::finalizers;
use crate::api::names::{GATEWAY_CLEANUP_FINALIZER, annotations};
use crate::api::{CloudGatewayStatus, ConditionType, Reason};
use crate::engine::{Intent, Plan, PlannedEvent, Severity};
use crate::kinds::{CloudSync, CredentialKind};
use crate::providers::{AppWrite, GatewayApi, GatewayError, RemoteApp, SecretValue};

/// The field manager of `status.gateway` and the `GatewaySynced` condition.
pub const MANAGER: &str = "keysmith-gateway-sync";

/// What the sync found or did, for the status and for Ready.
#[derive(Debug)]
pub struct Synced {
    pub status: CloudGatewayStatus,
    pub ok: bool,
    pub reason: Reason,
    pub message: String,
    /// Retry soon: the failure may pass on its own.
    pub transient: bool,
    /// What to tell about this pass (a push, a failure).
    pub events: Vec<PlannedEvent>,
}

/// What one reconcile pass decided, as the sync reads it.
pub struct Pass<'a> {
    pub namespace: &'a str,
    pub intent: &'a Intent,
    pub plan: &'a Plan,
    pub now: Timestamp,
}

/// Runs the sync for `object` when it asks for one; `None` otherwise.
/// `pushed`: what [`before_secret`] left at the gateway in this pass.
pub async fn sync<K>(
    ctx: &KindContext<K>,
    object: &K,
    pass: &Pass<'_>,
    secret_value: Option<&str>,
    pushed: Option<CloudGatewayStatus>,
) -> Option<Synced>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let sync = recorded(ctx, object).await?;
    let mut status = pushed.unwrap_or_else(|| sync.status.clone());
    let issued = pass
        .plan
        .state
        .as_ref()
        .and_then(|state| Some((state, state.key.clone()?, state.revision?, secret_value?)));
    let Some((state, key, revision, secret)) = issued else {
        let message = "waiting for the credentials to be issued".to_string();
        return Some(failed(status, Reason::GatewaySyncFailed, message, false));
    };
    let (resolved, want) = match prepare(ctx, &sync, pass.namespace, key, secret).await {
        Ok(ready) => ready,
        Err(refused) => return Some(refused.with(status)),
    };
    status.connection = Some(resolved.label.clone());
    let finalizer = (pass.intent.owned, resolved.label.as_str());
    if let Err(e) = ensure_finalizer(ctx, object, &sync, finalizer).await {
        let message = format!("adding the gateway cleanup finalizer: {e}");
        return Some(failed(status, Reason::GatewaySyncFailed, message, true));
    }
    let gateway = target(&resolved, &sync);
    let overlap = overlap_of(pass, &gateway, state);
    let before = sync.status.clone();
    let outcome = push(&gateway, &sync, &mut status, &want, revision, &overlap).await;
    Some(match outcome {
        Ok(()) => {
            let at = Held {
                label: &resolved.label,
                revision,
                now: pass.now,
            };
            succeeded(ctx, object, (status, &before), &want, at)
        }
        Err(failure) => failure.into_synced(status),
    })
}

/// Where the gateway now holds a revision, and when it was seen to.
struct Held<'a> {
    /// The connection, as status names it.
    label: &'a str,
    revision: i64,
    now: Timestamp,
}

/// The end of a successful sync: the record (`status`, against the one
/// `before` the pass), and an event when anything at the gateway changed.
fn succeeded<K: CredentialKind + Resource>(
    ctx: &KindContext<K>,
    object: &K,
    (mut status, before): (CloudGatewayStatus, &CloudGatewayStatus),
    want: &AppWrite,
    Held {
        label,
        revision,
        now,
    }: Held<'_>,
) -> Synced {
    status.secret_digest = secret_digest(ctx, object, &want.secret);
    let pushed = status != *before;
    if pushed {
        status.last_sync_time = Some(Time(now));
    }
    let message = format!("{label} holds revision {revision}");
    Synced {
        events: pushed
            .then(|| PlannedEvent {
                severity: Severity::Normal,
                reason: Reason::GatewaySynced,
                note: message.clone(),
            })
            .into_iter()
            .collect(),
        message,
        status,
        ok: true,
        reason: Reason::GatewaySynced,
        transient: false,
    }
}

/// Why a sync cannot start, before any gateway call.
struct Refused {
    reason: Reason,
    message: String,
    transient: bool,
}

impl Refused {
    fn with(self, status: CloudGatewayStatus) -> Synced {
        failed(status, self.reason, self.message, self.transient)
    }
}

/// The connection resolved and what the resource wants there, checked
/// against the gateway's own rules: everything before the first call.
async fn prepare<K>(
    ctx: &KindContext<K>,
    sync: &CloudSync,
    namespace: &str,
    key: String,
    secret: &str,
) -> Result<(connections::Resolved, AppWrite), Refused>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let shared = &ctx.shared;
    let resolved = connections::resolve(
        &shared.client,
        &shared.gateway_clients,
        shared.own_namespace.as_deref(),
        (namespace, &sync.reference),
        connections::Purpose::Sync,
    )
    .await
    .map_err(|problem| Refused {
        reason: match problem.reason {
            "ConnectionNotAllowed" => Reason::ConnectionNotAllowed,
            _ => Reason::ConnectionNotReady,
        },
        message: problem.message,
        transient: true,
    })?;
    let want = AppWrite {
        name: sync.name.clone(),
        remark: sync.remark.clone(),
        key,
        secret: SecretValue::new(secret),
    };
    target(&resolved, sync)
        .check_rules(&want)
        .map_err(|breach| Refused {
            reason: Reason::GatewayRejected,
            message: format!("the gateway's own rules refuse it: {breach}"),
            transient: false,
        })?;
    Ok((resolved, want))
}

/// Whether this pass overlaps at the gateway, and until when.
fn overlap_of(pass: &Pass<'_>, gateway: &Target<'_>, state: &crate::engine::State) -> Overlap {
    Overlap {
        keep: pass.intent.keep_previous.is_some_and(|d| !d.is_zero())
            && gateway.holds_several_keys(),
        previous_until: state.previous_expiry_time.filter(|t| *t > pass.now),
    }
}

/// Overlap at the gateway: where an app holds several key pairs and the
/// resource keeps its previous credential, a new AppKey is added beside the
/// old pair, and the old pair goes when the overlap ends.
struct Overlap {
    keep: bool,
    /// The kept previous credential's expiry, while it is still ahead.
    previous_until: Option<Timestamp>,
}

/// The resolved client, seen through what `sync` keeps at the gateway.
fn target<'a>(resolved: &'a connections::Resolved, sync: &'a CloudSync) -> Target<'a> {
    Target {
        client: &resolved.client,
        signature: sync.signature.as_ref(),
    }
}

/// What the push before the Secret write left.
pub enum Before {
    /// Nothing goes first: no sync, no app at the gateway yet (the first
    /// sync creates it after the Secret), or no new revision.
    Nothing,
    /// The gateway holds the new revision: the Secret may follow. `staged`:
    /// a pending entry is in the Secret and goes once the data holds it.
    Pushed {
        status: CloudGatewayStatus,
        staged: bool,
    },
    /// The gateway did not take it: the Secret keeps the credential the
    /// gateway still accepts, and nothing else happens in this pass.
    Failed(Synced),
}

/// The new revision a pass issues for an app that exists at the gateway:
/// the state, key, revision and secret, and the gateway's id of the app.
fn new_revision<'p>(
    pass: &'p Pass<'_>,
    sync: &CloudSync,
) -> Option<(&'p crate::engine::State, String, i64, &'p String, String)> {
    let secret = pass
        .plan
        .secret
        .as_ref()
        .and_then(|s| s.data.get(&pass.intent.secret_data_key));
    let state = pass.plan.state.as_ref()?;
    Some((
        state,
        state.key.clone()?,
        state.revision?,
        secret?,
        sync.status.id.clone()?,
    ))
}

/// A new revision for an app that exists at the gateway goes to the gateway
/// first (SPEC §11.2): the values are fixed in the Secret's pending entry,
/// then pushed (a reset, or a second key pair for an overlap); only then
/// does the Secret change and the rollout start.
pub async fn before_secret<K>(
    ctx: &KindContext<K>,
    object: &K,
    pass: &Pass<'_>,
    found: Option<&crate::engine::Pending>,
) -> Before
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let intent = pass.intent;
    if object.cloud_sync().is_none() || pass.plan.rotation.is_none() {
        return Before::Nothing;
    }
    let Some(sync) = recorded(ctx, object).await else {
        return Before::Nothing;
    };
    let Some((state, key, revision, secret, id)) = new_revision(pass, &sync) else {
        return Before::Nothing;
    };
    let mut status = sync.status.clone();
    let (resolved, want) = match prepare(ctx, &sync, pass.namespace, key, secret).await {
        Ok(ready) => ready,
        Err(refused) => return Before::Failed(refused.with(status)),
    };
    let pending = crate::engine::Pending {
        revision,
        key: want.key.clone(),
        secret: secret.clone(),
    };
    let staged = match stage(ctx, object, pass.namespace, intent, &pending, found).await {
        Ok(staged) => staged,
        Err(e) => {
            let message = format!(
                "fixing the new credential in Secret {}: {e}",
                intent.secret_name
            );
            return Before::Failed(failed(status, Reason::GatewaySyncFailed, message, true));
        }
    };
    let gateway = target(&resolved, &sync);
    let overlap = overlap_of(pass, &gateway, state);
    match push_credential(&gateway, &id, &mut status, &want, &overlap).await {
        Ok(()) => {
            status.revision = Some(revision);
            status.last_sync_time = Some(Time(pass.now));
            status.secret_digest = secret_digest(ctx, object, &want.secret);
            Before::Pushed { status, staged }
        }
        Err(failure) => Before::Failed(failure.into_synced(status)),
    }
}

/// Fixes `pending` in the Secret unless it is there already; whether a
/// pending entry is in the Secret now.
async fn stage<K>(
    ctx: &KindContext<K>,
    object: &K,
    namespace: &str,
    intent: &Intent,
    pending: &crate::engine::Pending,
    found: Option<&crate::engine::Pending>,
) -> kube::Result<bool>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    if found == Some(pending) {
        return Ok(true);
    }
    let Some(record_key) = ctx.shared.record_key.as_ref() else {
        return Ok(found.is_some()); // nothing seals: nothing is trusted after a crash either
    };
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(ctx.shared.client.clone(), namespace);
    let uid = object.meta().uid.clone().unwrap_or_default();
    super::pending::stage(&api, &intent.secret_name, pending, record_key, &uid).await?;
    Ok(true)
}

enum Failure {
    Conflict(String),
    Call(GatewayError),
}

impl Failure {
    /// A failed call as the sync reports it: permanent refusals are
    /// `GatewayRejected` and wait for a change; the rest retry soon.
    fn into_synced(self, status: CloudGatewayStatus) -> Synced {
        match self {
            Failure::Conflict(message) => failed(status, Reason::GatewayConflict, message, false),
            Failure::Call(error) if error.is_permanent() => {
                failed(status, Reason::GatewayRejected, error.to_string(), false)
            }
            Failure::Call(error) => {
                failed(status, Reason::GatewaySyncFailed, error.to_string(), true)
            }
        }
    }
}

impl From<GatewayError> for Failure {
    fn from(error: GatewayError) -> Self {
        Failure::Call(error)
    }
}

/// The calls that bring the gateway to `want` at `revision`; `status`
/// records each step as it completes.
async fn push<G: GatewayApi>(
    gateway: &G,
    sync: &CloudSync,
    status: &mut CloudGatewayStatus,
    want: &AppWrite,
    revision: i64,
    overlap: &Overlap,
) -> Result<(), Failure> {
    let attributes = digest(&want.name, &want.remark);
    let Some(id) = status.id.clone() else {
        let app = first_sync(gateway, sync, want).await?;
        record(status, &app.id, want, revision, attributes);
        return Ok(());
    };
    if status.revision != Some(revision) || status.key.as_deref() != Some(want.key.as_str()) {
        push_credential(gateway, &id, status, want, overlap).await?;
        status.revision = Some(revision);
    }
    if let Some(previous) = status.previous_key.clone()
        && overlap.previous_until.is_none()
    {
        remove_pair(gateway, &id, &previous).await?;
        info!(
            id,
            "the previous key pair left the gateway: the overlap ended"
        );
        status.previous_key = None;
    }
    if status.attributes.as_deref() != Some(attributes.as_str()) {
        gateway.update_app(&id, want).await?;
        info!(id, "gateway app name and remark pushed");
        status.attributes = Some(attributes);
    }
    Ok(())
}

/// A new credential: beside the old pair when overlapping with a new AppKey,
/// else in place of it.
async fn push_credential<G: GatewayApi>(
    gateway: &G,
    id: &str,
    status: &mut CloudGatewayStatus,
    want: &AppWrite,
    overlap: &Overlap,
) -> Result<(), Failure> {
    let current = status.key.clone().unwrap_or_else(|| want.key.clone());
    let new_key = current != want.key;
    if overlap.keep && new_key && overlap.previous_until.is_some() {
        // An earlier overlap's pair goes first: an app keeps two at most.
        if let Some(older) = status.previous_key.take() {
            remove_pair(gateway, id, &older).await?;
        }
        match gateway.add_key(id, &want.key, &want.secret).await {
            Ok(()) => {}
            // Perhaps added by a call whose answer was lost: ours only if
            // our app holds the pair now.
            Err(GatewayError::Rejected { code, .. }) if code.contains("Repeated") => {
                let app = gateway.find_app(&want.name).await?;
                if !app.is_some_and(|a| a.id == id && holds(&a, want)) {
                    return Err(Failure::Conflict(format!(
                        "the gateway refused AppKey {}: another app holds it",
                        want.key
                    )));
                }
            }
            Err(e) => return Err(e.into()),
        }
        status.previous_key = Some(current);
        info!(
            id,
            "new key pair added beside the previous one for the overlap"
        );
    } else {
        gateway
            .reset_secret(id, &current, &want.key, &want.secret)
            .await?;
        info!(id, "gateway app credentials pushed");
    }
    status.key = Some(want.key.clone());
    Ok(())
}

/// Removes a key pair; one already gone is fine.
async fn remove_pair<G: GatewayApi>(gateway: &G, id: &str, key: &str) -> Result<(), Failure> {
    match gateway.remove_key(id, key).await {
        Ok(()) | Err(GatewayError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// No app recorded yet: the one of this name if it is ours (an earlier
/// create whose answer was lost carries our AppKey) or adoption was asked
/// for, else a new one.
async fn first_sync<G: GatewayApi>(
    gateway: &G,
    sync: &CloudSync,
    want: &AppWrite,
) -> Result<RemoteApp, Failure> {
    match gateway.find_app(&want.name).await? {
        Some(app) if app.keys.iter().any(|pair| pair.key == want.key) => {
            debug!(id = app.id, "found the app an earlier create made");
            if !holds(&app, want) {
                gateway
                    .reset_secret(&app.id, &want.key, &want.key, &want.secret)
                    .await?;
            }
            Ok(app)
        }
        Some(app) if sync.adopt => {
            let current = app.keys.first().map(|p| p.key.clone()).unwrap_or_default();
            gateway
                .reset_secret(&app.id, &current, &want.key, &want.secret)
                .await?;
            gateway.update_app(&app.id, want).await?;
            info!(id = app.id, "adopted the gateway app of the same name");
            Ok(app)
        }
        Some(_) => Err(Failure::Conflict(format!(
            "an app named {} already exists at the gateway and is not this resource's; annotate the resource {}=true to take it over",
            want.name,
            annotations::ADOPT_GATEWAY_APP
        ))),
        None => {
            let app = gateway.create_app(want).await?;
            info!(id = app.id, "gateway app created");
            Ok(app)
        }
    }
}

/// The keyed digest of `secret` for `status.gateway.secretDigest`.
fn secret_digest<K: CredentialKind + Resource>(
    ctx: &KindContext<K>,
    object: &K,
    secret: &SecretValue,
) -> Option<String> {
    let key = ctx.shared.record_key.as_ref()?;
    let uid = object.meta().uid.as_deref()?;
    Some(crate::engine::seal::gateway_digest(
        key,
        uid,
        secret.expose(),
    ))
}

/// Whether the app's pair for our key is known to hold our secret.
fn holds(app: &RemoteApp, want: &AppWrite) -> bool {
    app.keys
        .iter()
        .any(|pair| pair.key == want.key && pair.secret.as_ref() == Some(&want.secret))
}

fn record(
    status: &mut CloudGatewayStatus,
    id: &str,
    want: &AppWrite,
    revision: i64,
    attributes: String,
) {
    status.id = Some(id.to_string());
    status.revision = Some(revision);
    status.key = Some(want.key.clone());
    status.attributes = Some(attributes);
}

/// The attribute digest of an app as the gateway holds it.
pub fn attributes_of(app: &RemoteApp) -> Option<String> {
    Some(digest(&app.name, &app.remark))
}

/// A short digest of the name and remark (no secret in it).
fn digest(name: &str, remark: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(name.as_bytes());
    ctx.update(&[0]);
    ctx.update(remark.as_bytes());
    ctx.finish().as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn failed(status: CloudGatewayStatus, reason: Reason, message: String, transient: bool) -> Synced {
    Synced {
        events: vec![PlannedEvent {
            severity: Severity::Warning,
            reason,
            note: message.clone(),
        }],
        status,
        ok: false,
        reason,
        message,
        transient,
    }
}

/// Adds the gateway cleanup finalizer to a resource whose deletion policy
/// is Delete (before anything exists at the gateway), removes it from one
/// whose policy became Retain. With the finalizer, the namespaced connection
/// it uses is kept until the cleanup is done ([`connection_use::protect`]):
/// marked when the finalizer is added and when the resource moves to
/// another connection (`label`, the connection it resolved to now).
async fn ensure_finalizer<K>(
    ctx: &KindContext<K>,
    object: &K,
    sync: &CloudSync,
    (wanted, label): (bool, &str),
) -> kube::Result<()>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let patch = finalizers::change(
        object.meta(),
        GATEWAY_CLEANUP_FINALIZER,
        wanted,
        finalizers::Adders::One,
    );
    let moved = sync.status.connection.as_deref() != Some(label);
    let namespace = object.namespace().unwrap_or_default();
    if wanted && (patch.is_some() || moved) {
        connection_use::protect(&ctx.shared.client, &namespace, &sync.reference).await?;
    }
    let Some(patch) = patch else {
        return Ok(());
    };
    let api: Api<K> = Api::namespaced(ctx.shared.client.clone(), &namespace);
    api.patch(&object.name_any(), &PatchParams::default(), &patch)
        .await
        .map(|_| ())
}

/// A resource being deleted that carries the cleanup finalizer: remove its
/// app at the gateway, then the finalizer. A namespace deletion keeps the
/// connection (its in-use finalizer, [`connection_use`]) and deletes the
/// credentials Secret in any order: the cleanup then uses the client built
/// before. The finalizer is released without a cleanup when asked
/// (`keysmith.dev/skip-gateway-cleanup`), or when the connection is gone or
/// its credentials are and no client was built with them (keysmith
/// restarted meanwhile): nothing could ever clean up then. Otherwise a
/// failure keeps it, with the reason in `status.gateway.cleanup`.
pub async fn clean_up<K>(
    ctx: &KindContext<K>,
    object: &Arc<K>,
) -> kube::Result<Option<std::time::Duration>>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    if !object
        .finalizers()
        .iter()
        .any(|f| f == GATEWAY_CLEANUP_FINALIZER)
    {
        return Ok(None);
    }
    let Some(sync) = object.cloud_sync() else {
        return release(ctx, &**object, None).await;
    };
    let skip = object
        .annotations()
        .get(annotations::SKIP_GATEWAY_CLEANUP)
        .is_some_and(|v| v == "true");
    if skip {
        let note = format!(
            "{} was asked to leave app {} at the gateway",
            annotations::SKIP_GATEWAY_CLEANUP,
            sync.name
        );
        return release(ctx, &**object, Some((Reason::GatewayCleanupSkipped, note))).await;
    }
    let resolved = match resolve_for_cleanup(ctx, &**object, &sync).await {
        Ok(r) => r,
        Err(problem) if problem.gone => {
            let note = format!(
                "app {} stays at the gateway: {}",
                sync.name, problem.message
            );
            return release(ctx, &**object, Some((Reason::GatewayCleanupSkipped, note))).await;
        }
        Err(problem) => return hold(ctx, object, &sync, problem.message).await,
    };
    match delete_remote(&target(&resolved, &sync), &sync).await {
        Ok(()) => {
            let note = format!("app {} removed from {}", sync.name, resolved.label);
            release(ctx, &**object, Some((Reason::GatewayCleanedUp, note))).await
        }
        Err(error) => hold(ctx, object, &sync, error.to_string()).await,
    }
}

async fn resolve_for_cleanup<K>(
    ctx: &KindContext<K>,
    object: &K,
    sync: &CloudSync,
) -> Result<connections::Resolved, connections::Problem>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let namespace = object.namespace().unwrap_or_default();
    let shared = &ctx.shared;
    connections::resolve(
        &shared.client,
        &shared.gateway_clients,
        shared.own_namespace.as_deref(),
        (&namespace, &sync.reference),
        connections::Purpose::Cleanup,
    )
    .await
}

/// Deletes the resource's app at the gateway: by its recorded id, or the
/// app of its name that holds its key (a create whose answer was lost).
async fn delete_remote<G: GatewayApi>(gateway: &G, sync: &CloudSync) -> Result<(), GatewayError> {
    let id = match sync.status.id.clone() {
        Some(id) => Some(id),
        None => gateway
            .find_app(&sync.name)
            .await?
            .filter(|app| {
                let key = sync.status.key.as_deref();
                app.keys.iter().any(|p| Some(p.key.as_str()) == key)
            })
            .map(|app| app.id),
    };
    match id {
        None => Ok(()),
        Some(id) => match gateway.delete_app(&id).await {
            Ok(()) | Err(GatewayError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        },
    }
}

async fn release<K>(
    ctx: &KindContext<K>,
    object: &K,
    event: Option<(Reason, String)>,
) -> kube::Result<Option<std::time::Duration>>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    super::lock(&ctx.shared.cloud_written).remove(object.meta().uid.as_deref().unwrap_or_default());
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.shared.client.clone(), &namespace);
    if let Some(patch) = finalizers::change(
        object.meta(),
        GATEWAY_CLEANUP_FINALIZER,
        false,
        finalizers::Adders::One,
    ) {
        api.patch(&object.name_any(), &PatchParams::default(), &patch)
            .await?;
    }
    if let Some((reason, note)) = event {
        let severity = match reason {
            Reason::GatewayCleanedUp => Severity::Normal,
            _ => Severity::Warning,
        };
        info!(
            namespace,
            name = object.name_any(),
            reason = reason.as_str(),
            "gateway cleanup finalizer released"
        );
        ctx.shared.events.emit(
            object.object_ref(&()),
            &[PlannedEvent {
                severity,
                reason,
                note,
            }],
        );
    }
    Ok(None)
}

/// Keeps the finalizer and says why in `status.gateway.cleanup`.
async fn hold<K>(
    ctx: &KindContext<K>,
    object: &Arc<K>,
    sync: &CloudSync,
    why: String,
) -> kube::Result<Option<std::time::Duration>>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let mut status = sync.status.clone();
    let message = format!(
        "removing app {} from the gateway failed ({why}); retrying; annotate {}=true to leave it there",
        sync.name,
        annotations::SKIP_GATEWAY_CLEANUP
    );
    if status.cleanup.as_deref() != Some(message.as_str()) {
        status.cleanup = Some(message.clone());
        let namespace = object.namespace().unwrap_or_default();
        let api: Api<K> = Api::namespaced(ctx.shared.client.clone(), &namespace);
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "metadata": {"uid": object.meta().uid},
            "status": {"gateway": status},
        });
        api.patch_status(
            &object.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        ctx.shared.events.emit(
            object.object_ref(&()),
            &[PlannedEvent {
                severity: Severity::Warning,
                reason: Reason::GatewaySyncFailed,
                note: message,
            }],
        );
    }
    Ok(Some(CLEANUP_RETRY))
}

/// How soon a failed cleanup is tried again.
const CLEANUP_RETRY: std::time::Duration = std::time::Duration::from_secs(15);

/// Writes `status.gateway` and the `GatewaySynced` condition when they
/// changed, under [`MANAGER`] (the status step owns everything else).
pub async fn write_status<K>(
    ctx: &KindContext<K>,
    object: &Arc<K>,
    synced: &Synced,
    now: Timestamp,
) -> Result<(), kube::Error>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let previous = object.cloud_sync().map(|s| s.status).unwrap_or_default();
    let conditions = object
        .recorded_rotation()
        .map(|r| r.conditions.clone())
        .unwrap_or_default();
    let before = conditions
        .iter()
        .find(|c| c.type_ == ConditionType::GatewaySynced.as_str());
    let condition = synced_condition(before, synced, object.meta().generation, now);
    let mut unchanged_status = synced.status.clone();
    unchanged_status.last_sync_time = previous.last_sync_time.clone();
    if unchanged_status == previous && before == Some(&condition) {
        return Ok(());
    }
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.shared.client.clone(), &namespace);
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"uid": object.meta().uid},
        "status": {"gateway": synced.status, "conditions": [condition]},
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    // The next pass must not decide on a cache that predates this write
    // (`recorded`): a stale gateway revision would push the same value twice.
    remember(
        &ctx.shared,
        object.meta().uid.as_deref().unwrap_or_default(),
        &synced.status,
    );
    Ok(())
}

/// The resource's sync as last recorded: the `status.gateway` this process
/// last wrote for it if any (the cache may not show it yet), else the cache's.
async fn recorded<K>(ctx: &KindContext<K>, object: &K) -> Option<CloudSync>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let mut sync = object.cloud_sync()?;
    let uid = object.meta().uid.clone().unwrap_or_default();
    if let Some(written) = super::lock(&ctx.shared.cloud_written).get(&uid) {
        sync.status = written.clone();
    }
    Some(sync)
}

/// Remembers the `status.gateway` just written for the next pass.
pub fn remember(shared: &super::context::Shared, uid: &str, status: &CloudGatewayStatus) {
    super::lock(&shared.cloud_written).insert(uid.to_string(), status.clone());
}

fn synced_condition(
    before: Option<&Condition>,
    synced: &Synced,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if synced.ok { "True" } else { "False" };
    let last_transition_time = match before {
        Some(b) if b.status == status => b.last_transition_time.clone(),
        _ => Time(now),
    };
    Condition {
        type_: ConditionType::GatewaySynced.as_str().into(),
        status: status.into(),
        reason: synced.reason.as_str().into(),
        message: synced.message.clone(),
        last_transition_time,
        observed_generation: generation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attribute_digest_changes_with_name_or_remark_only() {
        assert_eq!(digest("a", "b"), digest("a", "b"));
        assert_ne!(digest("a", "b"), digest("a", "c"));
        assert_ne!(digest("ab", ""), digest("a", "b"));
        assert_eq!(digest("a", "b").len(), 16);
    }
}
