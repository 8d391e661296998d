//! The status step: server-side apply of the status the plan (and the
//! rollout step) imply, only when it differs from what the object shows. It
//! takes [`SecretInPlace`], so it cannot run before the Secret step.

use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::{Resource, ResourceExt};
use tracing::debug;

use super::context::KindContext;
use super::error::ApplyStatusError;
use super::reconcile::Decided;
use super::rollout::RolloutDone;
use super::secrets::SecretInPlace;
use crate::api::FIELD_MANAGER;
use crate::engine::Intent;
use crate::kinds::CredentialKind;

/// Writes the status if it changed; records our write for the echo check.
pub async fn apply_status<K>(
    ctx: &KindContext<K>,
    decided: &Decided<K>,
    intent: &Intent,
    applied: &SecretInPlace,
    rollout: &RolloutDone,
    now: Timestamp,
) -> Result<(), ApplyStatusError>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let object = &decided.object;
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(ctx.shared.client.clone(), &namespace);
    let plan = applied.plan();
    // Another write may have reached the cache meanwhile; but a copy read
    // fresh because the cache lagged stays (the cache may still lag it).
    let newest = match decided.read_fresh {
        true => object.clone(),
        false => ctx.newest(object),
    };
    let mut desired = newest.desired_status(intent, plan, rollout.report(), now);
    let mut current = newest.current_status();
    if desired != current && ctx.shared.writes.status_lags(&*newest) {
        // The cache may just lag behind our own write: decide on a fresh copy.
        let fresh = api
            .get(&name)
            .await
            .map_err(|source| ApplyStatusError::Read {
                object: describe::<K>(&namespace, &name),
                source,
            })?;
        desired = fresh.desired_status(intent, plan, rollout.report(), now);
        current = fresh.current_status();
    }
    if desired == current {
        return Ok(());
    }
    write(ctx, &api, object, desired).await
}

/// Applies `desired` as the status of `object`; records the write.
async fn write<K>(
    ctx: &KindContext<K>,
    api: &Api<K>,
    object: &Arc<K>,
    desired: impl serde::Serialize,
) -> Result<(), ApplyStatusError>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    // The uid makes the write conditional on the object this pass decided
    // for: a pass still running for a deleted resource must never write its
    // status onto a new resource of the same name (identity is the uid).
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"uid": object.meta().uid},
        "status": desired,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let written = api
        .patch_status(&name, &params, &Patch::Apply(&patch))
        .await
        .map_err(|source| ApplyStatusError::Write {
            object: describe::<K>(&namespace, &name),
            source,
        })?;
    let rv = written.meta().resource_version.clone();
    debug!(namespace, name, rv = rv.as_deref(), "status written");
    if let Some(rv) = rv {
        ctx.shared.writes.status_written(&**object, rv);
    }
    Ok(())
}

fn describe<K: CredentialKind>(namespace: &str, name: &str) -> String {
    format!("{}/{namespace}/{name}", K::KIND.as_str())
}
