//! The pending credential set (SPEC §11.2, "never two secrets for one
//! trigger"): before a new credential is pushed to a cloud gateway, the
//! values are fixed in the output Secret under `.keysmith-pending` (sealed
//! JSON), written and removed under a field manager of their own so that
//! keysmith's own apply of the Secret neither takes nor drops it. After a
//! crash the next pass finds them and issues exactly these values.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde::{Deserialize, Serialize};

use crate::api::names::data_keys::PENDING;
use crate::engine::seal::{Binding, pending_mac};
use crate::engine::{Pending, RecordKey};

/// The field manager of the pending entry.
pub const MANAGER: &str = "keysmith-pending";

#[derive(Serialize, Deserialize)]
struct Stored {
    revision: i64,
    key: String,
    secret: String,
    seal: String,
}

/// Takes the pending entry out of `secret`'s data (so the rest is judged
/// as keysmith's own) and returns it when its seal holds.
pub fn take(
    secret: &mut Secret,
    record_key: Option<&RecordKey>,
    owner_uid: &str,
) -> Option<Pending> {
    let raw = secret.data.as_mut()?.remove(PENDING)?;
    let stored: Stored = serde_json::from_slice(&raw.0).ok()?;
    let key = record_key?;
    let name = secret.name_any();
    let at = Binding {
        owner_uid,
        secret_name: &name,
    };
    let expected = pending_mac(key, &at, stored.revision, &stored.key, &stored.secret);
    (expected == stored.seal).then_some(Pending {
        revision: stored.revision,
        key: stored.key,
        secret: stored.secret,
    })
}

/// Writes the pending entry (server-side apply under [`MANAGER`]).
pub async fn stage(
    api: &Api<Secret>,
    secret_name: &str,
    pending: &Pending,
    record_key: &RecordKey,
    owner_uid: &str,
) -> kube::Result<()> {
    let at = Binding {
        owner_uid,
        secret_name,
    };
    let stored = Stored {
        revision: pending.revision,
        key: pending.key.clone(),
        secret: pending.secret.clone(),
        seal: pending_mac(
            record_key,
            &at,
            pending.revision,
            &pending.key,
            &pending.secret,
        ),
    };
    let json = serde_json::to_vec(&stored).unwrap_or_default();
    let data = BTreeMap::from([(
        PENDING.to_string(),
        base64::engine::general_purpose::STANDARD.encode(json),
    )]);
    let patch = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": secret_name},
        "data": data,
    });
    api.patch(
        secret_name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}

/// Removes the pending entry: an apply of nothing under [`MANAGER`] drops
/// the field it owned.
pub async fn clear(api: &Api<Secret>, secret_name: &str) -> kube::Result<()> {
    let patch = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": secret_name},
    });
    api.patch(
        secret_name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}
