//! The watches: one per kind (cached by its controller; keeps the kind's
//! indexes current) and one Secret *metadata* watch shared by all kinds (no
//! Secret data is ever cached). A Secret change is fanned out to each kind
//! through a [`SecretListener`]: to the Secret's owner (by label) and to
//! whoever reads it as a source. Our own writes coming back trigger nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::{NamespaceResourceScope, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::utils::ResetTimerBackoff;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource, ResourceExt};
use tracing::{debug, warn};

use super::context::{KindContext, Shared, holder_of};
use super::health::Health;
use super::index::{Entry, Holder};
use super::lock;
use super::secret_names::Vanished;
use crate::api::names::{annotations, labels};
use crate::kinds::CredentialKind;

/// Watch retry delays: 250 ms doubling up to 4 s (kube's default climbs to
/// 30 s and only resets after 2 quiet minutes), so that keysmith is back
/// within seconds of an apiserver or etcd restart, however many it saw.
pub(super) fn watch_backoff() -> ResetTimerBackoff<watcher::ExponentialBackoff> {
    let builder = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(4))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    ResetTimerBackoff::new(builder.into(), Duration::from_secs(30))
}

/// Logs and drops watch errors once the watch's own backoff has paced them.
/// Passed on, they would also hit the controller's trigger backoff, which
/// pauses every trigger of the kind (kube's default climbs past 30 s).
pub(super) fn skip_watch_errors<T: Send>(
    stream: impl Stream<Item = Result<T, watcher::Error>> + Send,
) -> impl Stream<Item = Result<T, watcher::Error>> + Send {
    stream.filter(|item| {
        if let Err(error) = item {
            warn!(%error, "watch failed; retrying");
        }
        std::future::ready(item.is_ok())
    })
}

/// All namespaces, or one.
pub fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The objects of kind `K` whose change a controller must see: every watch
/// event, cached by `writer`, indexes kept current (sending the objects an
/// index change affects to `requeue`), except our own status writes coming
/// back (the reconcile that wrote one already decided what comes next).
pub fn watch_kind<K>(
    ctx: Arc<KindContext<K>>,
    writer: reflector::store::Writer<K>,
    namespace: &Option<String>,
    requeue: mpsc::UnboundedSender<ObjectRef<K>>,
    health: Arc<Health>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + use<K>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let stream = watcher(
        api::<K>(&ctx.shared.client, namespace),
        watcher::Config::default().any_semantic(),
    )
    .backoff(watch_backoff())
    // Cache less: nothing here reads managed fields or client-side apply's copy.
    .modify(|object: &mut K| {
        object.meta_mut().managed_fields = None;
        if let Some(annotations) = object.meta_mut().annotations.as_mut() {
            annotations.remove(annotations::LAST_APPLIED);
        }
    })
    .inspect_ok(index_events(ctx.clone(), requeue, health));
    let echo_ctx = ctx.clone();
    // A re-list changes the cache only at its end, with no object to pass on.
    let relisted = reflector::reflector(writer, stream).inspect_ok(move |event| {
        if matches!(event, watcher::Event::InitDone) {
            ctx.cache_moved.notify_waiters();
        }
    });
    skip_watch_errors(relisted.applied_objects()).filter(move |object| {
        // Only once the cache shows it: during a re-list the store changes at its end.
        let echo = object.as_ref().is_ok_and(|object| {
            let cached = echo_ctx.cache.get(&ObjectRef::from_obj(object));
            cached.is_some_and(|c| c.meta().resource_version == object.meta().resource_version)
                && echo_ctx.shared.writes.take_status_echo(object)
        });
        echo_ctx.cache_moved.notify_waiters();
        std::future::ready(!echo)
    })
}

/// Keeps a kind's indexes in step with its watch stream; sends the objects
/// a change affects to `requeue`.
fn index_events<K: CredentialKind>(
    ctx: Arc<KindContext<K>>,
    requeue: mpsc::UnboundedSender<ObjectRef<K>>,
    health: Arc<Health>,
) -> impl FnMut(&watcher::Event<K>) {
    let mut synced = false;
    move |event| {
        let mut affected = BTreeSet::new();
        let mut sources = lock(&ctx.sources);
        let mut keys = lock(&ctx.keys);
        match event {
            watcher::Event::Init => {
                sources.begin_resync();
                keys.begin_resync();
            }
            watcher::Event::InitApply(object) | watcher::Event::Apply(object) => {
                let holder = holder_of(object);
                sources.upsert(Entry {
                    holder: holder.clone(),
                    values: sources_of(object),
                });
                affected.extend(keys.upsert(Entry {
                    holder,
                    values: object.unique_keys(),
                }));
            }
            watcher::Event::Delete(object) => {
                ctx.shared.writes.forget_object(object);
                let uid = object.meta().uid.clone().unwrap_or_default();
                sources.remove(&uid);
                affected.extend(keys.remove(&uid));
            }
            watcher::Event::InitDone => {
                affected.extend(sources.end_resync());
                affected.extend(keys.end_resync());
                // The first complete list: this kind's cache is synced.
                if !synced {
                    synced = true;
                    debug!(kind = K::KIND.as_str(), "cache synced");
                    health.cache_synced();
                }
            }
        }
        for holder in affected {
            let _ = requeue.unbounded_send(object_ref(&holder));
        }
    }
}

fn object_ref<K: CredentialKind>(holder: &Holder) -> ObjectRef<K> {
    ObjectRef::new(&holder.name).within(&holder.namespace)
}

/// The `…SecretFrom` Secret an object reads, as `(namespace, name)`.
fn sources_of<K: CredentialKind>(object: &K) -> BTreeSet<(String, String)> {
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    object
        .intent()
        .secret_from
        .map(|(name, _)| (namespace, name))
        .into_iter()
        .collect()
}

/// One kind's interest in Secret changes.
pub trait SecretListener: Send + Sync {
    /// Requeues the kind's objects that `secret`'s change concerns: its owner
    /// (by label, unless `owner_knows`) and whoever reads it as a source.
    fn secret_changed(&self, secret: &PartialObjectMeta<Secret>, owner_knows: bool);

    /// Requeues the kind's objects that write or read a Secret a re-list
    /// found gone (deleted while the watch was down: no delete event came).
    fn secrets_vanished(&self, vanished: &Vanished);
}

/// The objects that write (output or gateway Secret) or read (source) a
/// Secret in `vanished`.
fn touching_vanished<K: CredentialKind>(objects: &[Arc<K>], vanished: &Vanished) -> Vec<Holder> {
    let touches = |object: &K| {
        let namespace = object.meta().namespace.clone().unwrap_or_default();
        let intent = object.intent();
        let gateway = intent
            .gateway
            .iter()
            .flat_map(crate::engine::gateway::names);
        let source = intent.secret_from.map(|(name, _)| name);
        std::iter::once(intent.secret_name)
            .chain(gateway)
            .chain(source)
            .any(|name| vanished.contains(&namespace, &name))
    };
    objects
        .iter()
        .filter(|object| touches(object))
        .map(|object| holder_of(&**object))
        .collect()
}

/// A kind's controller triggers, fed by the Secret watch.
pub struct SecretTriggers<K: CredentialKind> {
    pub ctx: Arc<KindContext<K>>,
    pub triggers: mpsc::UnboundedSender<ObjectRef<K>>,
}

impl<K: CredentialKind> SecretListener for SecretTriggers<K> {
    fn secret_changed(&self, secret: &PartialObjectMeta<Secret>, owner_knows: bool) {
        let namespace = secret.namespace().unwrap_or_default();
        let labels = secret.labels();
        // The owner's name: the label, or the annotation when it did not fit one.
        let owner = secret
            .annotations()
            .get(annotations::OWNER_NAME)
            .or_else(|| labels.get(K::OWNER_LABEL));
        if !owner_knows
            && labels.get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGED_BY_VALUE)
            && labels.contains_key(K::OWNER_LABEL)
            && let Some(owner) = owner
        {
            let _ = self
                .triggers
                .unbounded_send(ObjectRef::new(owner).within(&namespace));
        }
        let sources = lock(&self.ctx.sources);
        for holder in sources.holders(&(namespace.clone(), secret.name_any())) {
            let _ = self.triggers.unbounded_send(object_ref(holder));
        }
    }

    fn secrets_vanished(&self, vanished: &Vanished) {
        for holder in touching_vanished(&self.ctx.cache.state(), vanished) {
            let _ = self.triggers.unbounded_send(object_ref(&holder));
        }
    }
}

/// What a Secret watch event means to the listeners.
enum Change {
    Secret(Box<PartialObjectMeta<Secret>>),
    Vanished(Vanished),
    None,
}

/// Keeps `shared.secret_names` current with one event.
fn keep_names(shared: &Shared, event: watcher::Event<PartialObjectMeta<Secret>>) -> Change {
    let mut names = lock(&shared.secret_names);
    match event {
        watcher::Event::Init => {
            names.begin_relist();
            Change::None
        }
        watcher::Event::InitDone => {
            let vanished = names.end_relist();
            match vanished.is_empty() {
                true => Change::None,
                false => Change::Vanished(vanished),
            }
        }
        watcher::Event::InitApply(secret) | watcher::Event::Apply(secret) => {
            names.insert(&secret.namespace().unwrap_or_default(), &secret.name_any());
            Change::Secret(Box::new(secret))
        }
        watcher::Event::Delete(secret) => {
            names.remove(&secret.namespace().unwrap_or_default(), &secret.name_any());
            Change::Secret(Box::new(secret))
        }
    }
}

/// One metadata-only watch over Secrets for every kind: keeps
/// `shared.secret_names` current and tells each listener of each change.
pub async fn watch_secrets(
    shared: Arc<Shared>,
    namespace: Option<String>,
    listeners: Vec<Box<dyn SecretListener>>,
) {
    let stream = watcher(
        api::<PartialObjectMeta<Secret>>(&shared.client, &namespace),
        watcher::Config::default().any_semantic(),
    )
    .backoff(watch_backoff());
    let mut stream = std::pin::pin!(skip_watch_errors(stream));
    while let Some(Ok(event)) = stream.next().await {
        match keep_names(&shared, event) {
            Change::Secret(secret) => {
                // Our own write coming back: its owner already knows.
                let namespace = secret.namespace().unwrap_or_default();
                let owner_knows =
                    shared
                        .writes
                        .take_secret_echo(&namespace, &secret.name_any(), &*secret);
                for listener in &listeners {
                    listener.secret_changed(&secret, owner_knows);
                }
            }
            Change::Vanished(vanished) => {
                debug!("a re-list found Secrets deleted while the watch was down");
                for listener in &listeners {
                    listener.secrets_vanished(&vanished);
                }
            }
            Change::None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::GatewayApp;
    use crate::controller::secret_names::SecretNames;
    use serde_json::json;

    fn app(name: &str, spec: serde_json::Value) -> Arc<GatewayApp> {
        Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
                "metadata": {"name": name, "namespace": "ns", "uid": name}, "spec": spec,
            }))
            .unwrap(),
        )
    }

    /// The Secrets of `names` that a re-list no longer shows.
    fn vanished(names: &[&str]) -> Vanished {
        let mut known = SecretNames::default();
        known.begin_relist();
        for name in names {
            known.insert("ns", name);
        }
        known.insert("ns", "kept");
        known.end_relist();
        known.begin_relist();
        known.insert("ns", "kept");
        known.end_relist()
    }

    #[test]
    fn a_relist_requeues_whoever_writes_or_reads_a_vanished_secret() {
        let objects = [
            app("output", json!({})),
            app(
                "gateway",
                json!({"secretName": "kept", "gateway": {"layout": "KongKeyAuth", "name": "gw"}}),
            ),
            app(
                "source",
                json!({"secretName": "kept", "appSecretFrom": {"secretKeyRef": {"name": "byo", "key": "s"}}}),
            ),
            app("untouched", json!({"secretName": "kept"})),
        ];
        let holders = |gone: &[&str]| -> Vec<String> {
            touching_vanished(&objects, &vanished(gone))
                .into_iter()
                .map(|h| h.name)
                .collect()
        };
        assert_eq!(holders(&["output"]), ["output"]);
        assert_eq!(holders(&["gw"]), ["gateway"]);
        assert_eq!(holders(&["byo"]), ["source"]);
        assert_eq!(
            holders(&["output", "gw", "byo"]),
            ["output", "gateway", "source"]
        );
        assert!(holders(&["someone-elses"]).is_empty());
    }
}
