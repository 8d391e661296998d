//! A namespaced `GatewayConnection` stays while resources still need it to
//! remove their apps at the gateway (SPEC §11.2, the cleanup finalizer).
//!
//! A namespace deletion deletes everything in it at once: the resources
//! (kept by their `keysmith.dev/gateway-cleanup` finalizer), the connection
//! and its credentials Secret. Without a finalizer of its own the connection
//! would be gone before the first cleanup ran, and every app would be left
//! at the gateway. So a connection that a resource with the cleanup
//! finalizer uses carries `keysmith.dev/connection-in-use`, added when that
//! resource's finalizer is added (and, for resources from before this
//! finalizer existed, by the connection's own check). Once the connection
//! is being deleted the finalizer goes when no resource with the cleanup
//! finalizer names it any more. Its credentials come from the client built
//! before the Secret went ([`super::connections::Clients`]).
//!
//! A cluster connection needs none: a namespace deletion does not touch it.

use kube::api::{Api, PatchParams};
use kube::runtime::reflector::Store;
use kube::{Client, Resource, ResourceExt};
use tracing::info;

use super::finalizers;
use crate::api::names::{CONNECTION_IN_USE_FINALIZER, GATEWAY_CLEANUP_FINALIZER};
use crate::api::{ConnectionKind, ConnectionRef, GatewayApp, GatewayConnection, SignatureKey};

/// What a connection's check does about its in-use finalizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Used and not yet marked: add the finalizer.
    Add,
    /// Being deleted and used by no one: remove it; the connection goes.
    Release,
    /// Being deleted, still used: keep it and look again soon.
    Wait,
    /// Nothing to change.
    Keep,
}

/// The step for a connection: whether it is being deleted, how many
/// resources with the cleanup finalizer use it, whether it holds the
/// finalizer. A live connection keeps the finalizer once added (resources
/// come and go; a write each time would be churn).
pub fn step(deleting: bool, users: usize, held: bool) -> Step {
    match (deleting, users > 0, held) {
        (false, true, false) => Step::Add,
        (true, false, true) => Step::Release,
        (true, true, _) => Step::Wait,
        (false, _, _) | (true, false, false) => Step::Keep,
    }
}

/// Whether `reference`, from a resource in its own namespace, names the
/// namespaced connection `name`.
fn names_connection(reference: Option<&ConnectionRef>, name: &str) -> bool {
    reference.is_some_and(|r| {
        r.kind.unwrap_or_default() == ConnectionKind::GatewayConnection && r.name == name
    })
}

fn awaits_cleanup<K: Resource>(object: &K) -> bool {
    object
        .meta()
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == GATEWAY_CLEANUP_FINALIZER)
}

/// The resources in `namespace` with the cleanup finalizer that name
/// connection `name`, from the kinds' caches.
pub fn users(
    apps: &Store<GatewayApp>,
    keys: &Store<SignatureKey>,
    namespace: &str,
    name: &str,
) -> usize {
    let in_namespace = |meta: &kube::api::ObjectMeta| meta.namespace.as_deref() == Some(namespace);
    let app_users = apps.state().into_iter().filter(|a| {
        in_namespace(&a.metadata)
            && awaits_cleanup(&**a)
            && names_connection(a.spec.connection_ref.as_deref(), name)
    });
    let key_users = keys.state().into_iter().filter(|k| {
        in_namespace(&k.metadata)
            && awaits_cleanup(&**k)
            && names_connection(k.spec.connection_ref.as_deref(), name)
    });
    app_users.count() + key_users.count()
}

/// Marks the namespaced connection a resource in `namespace` names as in
/// use, before the resource's own cleanup finalizer is added. Nothing for a
/// cluster connection, one that is gone, or one already being deleted (a
/// finalizer cannot be added then).
pub async fn protect(
    client: &Client,
    namespace: &str,
    reference: &ConnectionRef,
) -> kube::Result<()> {
    if reference.kind.unwrap_or_default() != ConnectionKind::GatewayConnection {
        return Ok(());
    }
    let api: Api<GatewayConnection> = Api::namespaced(client.clone(), namespace);
    hold(&api, &reference.name).await
}

/// Adds the in-use finalizer to connection `name` as the apiserver has it
/// now: a cached copy may lag behind an add by a resource's pass, whose
/// version guard would then refuse this one. Nothing for a connection that
/// is gone or being deleted.
pub async fn hold(api: &Api<GatewayConnection>, name: &str) -> kube::Result<()> {
    let mut tries = 0;
    loop {
        let Some(connection) = api.get_opt(name).await? else {
            return Ok(());
        };
        if connection.meta().deletion_timestamp.is_some() {
            return Ok(());
        }
        // Many resources may add it at once: one add wins, the others are
        // refused by its version guard and find it there the next time.
        match mark(api, &connection, true).await {
            Err(kube::Error::Api(e)) if e.code == 422 && tries < PROTECT_TRIES => tries += 1,
            done => return done,
        }
    }
}

/// How often [`hold`] reads again after losing a race to add.
const PROTECT_TRIES: u32 = 3;

/// Adds (`held`) or removes the in-use finalizer.
pub async fn mark(
    api: &Api<GatewayConnection>,
    connection: &GatewayConnection,
    held: bool,
) -> kube::Result<()> {
    let meta = connection.meta();
    let Some(patch) = finalizers::change(
        meta,
        CONNECTION_IN_USE_FINALIZER,
        held,
        finalizers::Adders::Many,
    ) else {
        return Ok(());
    };
    api.patch(&connection.name_any(), &PatchParams::default(), &patch)
        .await?;
    info!(
        namespace = connection.namespace().unwrap_or_default(),
        name = connection.name_any(),
        held,
        "connection in-use finalizer"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_used_connection_is_marked_and_released_only_when_unused_and_deleted() {
        assert_eq!(step(false, 1, false), Step::Add);
        assert_eq!(step(false, 1, true), Step::Keep);
        assert_eq!(step(false, 0, true), Step::Keep, "no churn while live");
        assert_eq!(step(false, 0, false), Step::Keep);
        assert_eq!(step(true, 2, true), Step::Wait);
        assert_eq!(step(true, 1, false), Step::Wait);
        assert_eq!(step(true, 0, true), Step::Release);
        assert_eq!(step(true, 0, false), Step::Keep);
    }

    #[test]
    fn only_a_reference_to_this_namespaced_connection_counts() {
        let named = |kind, name: &str| ConnectionRef {
            kind,
            name: name.to_string(),
        };
        assert!(names_connection(Some(&named(None, "gw")), "gw"));
        let explicit = named(Some(ConnectionKind::GatewayConnection), "gw");
        assert!(names_connection(Some(&explicit), "gw"));
        assert!(!names_connection(Some(&named(None, "other")), "gw"));
        let cluster = named(Some(ConnectionKind::ClusterGatewayConnection), "gw");
        assert!(!names_connection(Some(&cluster), "gw"));
        assert!(!names_connection(None, "gw"));
    }
}
