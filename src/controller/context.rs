//! What every reconcile shares: the [`Shared`] parts (client, metrics, the
//! event queue, own-write records, which Secrets exist) and, per kind, a
//! typed [`KindContext`] with that kind's cache and indexes. No downcasts
//! and no kind names: a controller for kind `K` holds a `KindContext<K>`.

use std::sync::{Arc, Mutex};

use kube::Client;
use kube::runtime::reflector::{ObjectRef, Store};

use super::backoff::Backoff;
use super::echo::OwnWrites;
use super::events::EventQueue;
use super::index::{Holder, KeyIndex, SourceIndex, key_holder};
use super::lock;
use super::metrics::Metrics;
use super::secret_names::SecretNames;
use crate::engine::{Intent, RecordKey};
use crate::kinds::CredentialKind;

/// Shared by the controllers of every kind.
pub struct Shared {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    /// Events go out from a background task, off the reconcile path.
    pub events: EventQueue,
    pub writes: OwnWrites,
    /// Secrets that exist, from the one Secret metadata watch.
    pub secret_names: Mutex<SecretNames>,
    /// The key of keysmith's seals (`None` seals nothing).
    pub record_key: Option<RecordKey>,
    /// Cloud gateway clients, one per connection (SPEC §11).
    pub gateway_clients: Arc<super::connections::Clients>,
    /// keysmith's own namespace: where cluster connections' credentials live.
    pub own_namespace: Option<String>,
    /// The `status.gateway` this process last wrote, by object uid: what the
    /// next pass decides on, whatever the cache shows yet (a stale revision
    /// would push the same value twice).
    pub cloud_written: Mutex<std::collections::HashMap<String, crate::api::CloudGatewayStatus>>,
}

/// One kind's controller state.
pub struct KindContext<K: CredentialKind> {
    pub shared: Arc<Shared>,
    /// The kind's cache (the controller's reflector store).
    pub cache: Store<K>,
    /// Which objects read which `…SecretFrom` Secret (each kind's re-list resyncs its own).
    pub sources: Mutex<SourceIndex>,
    /// Which objects hold which unique key (empty for kinds without unique keys).
    pub keys: Mutex<KeyIndex>,
    /// Retry delays of failing objects.
    pub backoff: Backoff,
    /// Told of every object the watch has put in the cache (a pass waiting
    /// for the cache to show its own status write looks again).
    pub cache_moved: tokio::sync::Notify,
}

impl<K: CredentialKind> KindContext<K> {
    pub fn new(shared: Arc<Shared>, cache: Store<K>) -> Self {
        KindContext {
            shared,
            cache,
            sources: Mutex::new(SourceIndex::default()),
            keys: Mutex::new(KeyIndex::default()),
            backoff: Backoff::default(),
            cache_moved: tokio::sync::Notify::new(),
        }
    }

    /// The cache's newest copy of `object`: the copy a reconcile was handed
    /// may predate a write it or an earlier pass made.
    pub fn newest(&self, object: &Arc<K>) -> Arc<K> {
        self.cached(object).unwrap_or_else(|| object.clone())
    }

    /// The cache's copy of `object` (same uid), if it still holds one.
    pub fn cached(&self, object: &K) -> Option<Arc<K>> {
        self.cache
            .get(&ObjectRef::from_obj(object))
            .filter(|cached| cached.meta().uid == object.meta().uid)
    }

    /// Whether an object of this kind with this uid exists (a scan of the
    /// cache: asked only of a Secret naming another resource's uid).
    pub fn is_live(&self, uid: &str) -> bool {
        self.cache
            .state()
            .iter()
            .any(|object| object.meta().uid.as_deref() == Some(uid))
    }

    /// Another object of this kind holding the unique key `object` wants,
    /// named only when it is in the same namespace (SPEC §5: probing keys
    /// reveals nothing about other namespaces).
    pub fn key_held_by(&self, object: &K, intent: &Intent) -> Option<String> {
        let wanted = object.unique_key_wanted(intent)?;
        let me = holder_of(object);
        let mine = object.issued_unique_key().as_ref() == Some(&wanted);
        // Whether a holder has issued the key: its cached status says so.
        let issued = |h: &Holder| {
            let found = self
                .cache
                .get(&ObjectRef::new(&h.name).within(&h.namespace));
            found.is_some_and(|o| {
                o.meta().uid.as_deref() == Some(h.uid.as_str())
                    && o.issued_unique_key().as_ref() == Some(&wanted)
            })
        };
        let claims = lock(&self.keys);
        let holder = key_holder(&claims, &wanted, &me, mine, &issued)?;
        Some(match holder.namespace == me.namespace {
            true => format!("{} {}", K::KIND.as_str(), holder.display()),
            false => format!("another {}", K::KIND.as_str()),
        })
    }
}

/// An object as the indexes know it.
pub fn holder_of<K: kube::Resource>(object: &K) -> Holder {
    Holder {
        created: object.meta().creation_timestamp.as_ref().map(|t| t.0),
        uid: object.meta().uid.clone().unwrap_or_default(),
        namespace: object.meta().namespace.clone().unwrap_or_default(),
        name: object.meta().name.clone().unwrap_or_default(),
    }
}
