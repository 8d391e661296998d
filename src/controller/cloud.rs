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
//! This pass pushes after the Secret write; the push-first order SPEC §11.2
//! asks for providers without overlap (Huawei) is not built yet
//! (docs/gateways.md says so).

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::{Resource, ResourceExt};
use tracing::{debug, info};

use super::connections::{self, Problem};
use super::context::KindContext;
use crate::api::names::annotations;
use crate::api::{CloudGatewayStatus, ConditionType, Reason};
use crate::engine::{Intent, Plan};
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
}

/// Runs the sync for `object` when it asks for one; `None` otherwise.
pub async fn sync<K>(
    ctx: &KindContext<K>,
    object: &K,
    namespace: &str,
    intent: &Intent,
    plan: &Plan,
    secret_value: Option<&str>,
    now: Timestamp,
) -> Option<Synced>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let sync = object.cloud_sync()?;
    let mut status = sync.status.clone();
    let (Some(state), Some(secret)) = (plan.state.as_ref(), secret_value) else {
        return Some(failed(
            status,
            Reason::GatewaySyncFailed,
            "waiting for the credentials to be issued".into(),
            false,
        ));
    };
    let (Some(key), Some(revision)) = (state.key.clone(), state.revision) else {
        return Some(failed(
            status,
            Reason::GatewaySyncFailed,
            "waiting for the credentials to be issued".into(),
            false,
        ));
    };
    let shared = &ctx.shared;
    let resolved = connections::resolve(
        &shared.client,
        &shared.gateway_clients,
        shared.own_namespace.as_deref(),
        namespace,
        &sync.reference,
    )
    .await;
    let resolved = match resolved {
        Ok(r) => r,
        Err(problem) => return Some(connection_problem(status, problem)),
    };
    status.connection = Some(resolved.label.clone());
    let want = AppWrite {
        name: sync.name.clone(),
        remark: sync.remark.clone(),
        key,
        secret: SecretValue::new(secret),
    };
    if let Err(breach) = resolved.client.check_app_rules(&want) {
        let message = format!("the gateway's own rules refuse this app: {breach}");
        return Some(failed(status, Reason::GatewayRejected, message, false));
    }
    let _ = intent;
    let outcome = push(&resolved.client, &sync, &mut status, &want, revision).await;
    Some(match outcome {
        Ok(()) => {
            status.last_sync_time = Some(Time(now));
            Synced {
                message: format!("{} holds revision {revision}", resolved.label),
                status,
                ok: true,
                reason: Reason::GatewaySynced,
                transient: false,
            }
        }
        Err(Failure::Conflict(message)) => failed(status, Reason::GatewayConflict, message, false),
        Err(Failure::Call(error)) => {
            let reason = if error.is_permanent() {
                Reason::GatewayRejected
            } else {
                Reason::GatewaySyncFailed
            };
            let transient = !error.is_permanent();
            failed(status, reason, error.to_string(), transient)
        }
    })
}

enum Failure {
    Conflict(String),
    Call(GatewayError),
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
) -> Result<(), Failure> {
    let attributes = digest(&want.name, &want.remark);
    let Some(id) = status.id.clone() else {
        let app = first_sync(gateway, sync, want).await?;
        record(status, &app.id, want, revision, attributes);
        return Ok(());
    };
    if status.revision != Some(revision) || status.key.as_deref() != Some(want.key.as_str()) {
        let current = status.key.clone().unwrap_or_else(|| want.key.clone());
        gateway
            .reset_secret(&id, &current, &want.key, &want.secret)
            .await?;
        info!(id, revision, "gateway app credentials pushed");
        status.revision = Some(revision);
        status.key = Some(want.key.clone());
    }
    if status.attributes.as_deref() != Some(attributes.as_str()) {
        gateway.update_app(&id, want).await?;
        info!(id, "gateway app name and remark pushed");
        status.attributes = Some(attributes);
    }
    Ok(())
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
        status,
        ok: false,
        reason,
        message,
        transient,
    }
}

fn connection_problem(status: CloudGatewayStatus, problem: Problem) -> Synced {
    let reason = match problem.reason {
        "ConnectionNotAllowed" => Reason::ConnectionNotAllowed,
        _ => Reason::ConnectionNotReady,
    };
    failed(status, reason, problem.message, true)
}

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
    Ok(())
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
