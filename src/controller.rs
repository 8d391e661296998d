//! The thin shell around the plan: observe, plan, apply (Secret first, status
//! second, both by server-side apply as `keysmith`), record events.
//!
//! Watches: each kind (cached by its controller), and one Secret *metadata*
//! watch shared by both (no Secret data is ever cached) to notice changes to
//! output Secrets and `…SecretFrom` sources and to know which Secrets exist.
//! Secret data is read by name when a reconcile needs it; a first issue whose
//! Secret does not exist reads nothing. Our own writes coming back through the
//! watches trigger no second pass.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::channel::mpsc;
use futures::{SinkExt, Stream, StreamExt, TryStreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::core::{NamespaceResourceScope, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::utils::ResetTimerBackoff;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource, ResourceExt};
use tracing::{debug, info, warn};

use crate::crd::{
    FIELD_MANAGER, GatewayApp, MANAGED_BY_LABEL, MANAGED_BY_VALUE, READY, SignatureKey,
};
use crate::generate;
use crate::http::Health;
use crate::index::{Entry, Holder, KeyIndex, SourceIndex};
use crate::kinds::CredentialKind;
use crate::metrics::{ErrorLabels, KindLabels, Metrics, ObjectState, RotationLabels};
use crate::plan::{self, Observed, ObservedSecret, PlanError, Severity, SourceValue};
use crate::secret_names::SecretNames;

/// Errors of one reconcile. None carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading Secret {namespace}/{name}: {source}")]
    ReadSecret {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing Secret {namespace}/{name}: {source}")]
    WriteSecret {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("writing the status of {object}: {source}")]
    WriteStatus {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("reading {object}: {source}")]
    ReadObject {
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0} has no namespace")]
    NoNamespace(String),
    #[error(transparent)]
    Plan(#[from] PlanError),
}

impl Error {
    /// A fixed, short name for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::ReadSecret { .. } => "ReadSecret",
            Error::ReadObject { .. } => "ReadObject",
            Error::WriteSecret { .. } => "WriteSecret",
            Error::WriteStatus { .. } => "WriteStatus",
            Error::NoNamespace(_) => "NoNamespace",
            Error::Plan(_) => "Generate",
        }
    }

    /// A write conflict or a busy apiserver passes; requeue soon.
    fn retry_after(&self) -> Duration {
        match self {
            Error::NoNamespace(_) => Duration::from_secs(300),
            _ => Duration::from_secs(5),
        }
    }
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    /// Events go out from a background task, off the reconcile path.
    pub events: mpsc::Sender<(Event, ObjectReference)>,
    /// resourceVersion of each object's last status write by us, by uid: tells
    /// a lagging cache (skip the write) from a real difference (write).
    pub status_written: Mutex<HashMap<String, String>>,
    pub keys: Mutex<KeyIndex>,
    /// `…SecretFrom` readers, one index per kind (each kind's re-list resyncs its own).
    pub app_sources: Mutex<SourceIndex>,
    pub key_sources: Mutex<SourceIndex>,
    /// Secrets that exist, from the one Secret metadata watch.
    pub secret_names: Mutex<SecretNames>,
    /// resourceVersion of each Secret we wrote, by namespace/name, until the
    /// watch shows it: that event is our own write coming back, not news.
    pub secret_written: Mutex<HashMap<String, String>>,
    /// Each kind's cache, set when its controller starts.
    pub app_cache: OnceLock<Store<GatewayApp>>,
    pub key_cache: OnceLock<Store<SignatureKey>>,
}

impl Context {
    fn cache<K: CredentialKind>(&self) -> Option<&OnceLock<Store<K>>> {
        let cache: &dyn Any = if is_app::<K>() {
            &self.app_cache
        } else {
            &self.key_cache
        };
        cache.downcast_ref()
    }

    /// The cache's newest copy of `object`: the copy a reconcile was handed
    /// may predate a write it or an earlier pass made.
    fn newest<K: CredentialKind>(&self, object: &Arc<K>) -> Arc<K> {
        self.cache::<K>()
            .and_then(OnceLock::get)
            .and_then(|cache| cache.get(&ObjectRef::from_obj(&**object)))
            .filter(|cached| cached.meta().uid == object.meta().uid)
            .unwrap_or_else(|| object.clone())
    }

    fn sources<K: CredentialKind>(&self) -> &Mutex<SourceIndex> {
        if is_app::<K>() {
            &self.app_sources
        } else {
            &self.key_sources
        }
    }
}

fn is_app<K: CredentialKind>() -> bool {
    K::kind(&()) == "GatewayApp"
}

/// Watch retry delays: 250 ms doubling up to 4 s (kube's default climbs to
/// 30 s and only resets after 2 quiet minutes), so that keysmith is back
/// within seconds of an apiserver or etcd restart, however many it saw.
fn watch_backoff() -> ResetTimerBackoff<watcher::ExponentialBackoff> {
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
fn skip_watch_errors<T: Send>(
    stream: impl Stream<Item = Result<T, watcher::Error>> + Send,
) -> impl Stream<Item = Result<T, watcher::Error>> + Send {
    stream.filter(|item| {
        if let Err(error) = item {
            warn!(%error, "watch failed; retrying");
        }
        std::future::ready(item.is_ok())
    })
}

/// How `keysmith run` runs the controllers.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Watch one namespace; `None` for all.
    pub namespace: Option<String>,
    /// Reconciles at once per kind (0: unbounded).
    pub concurrency: u16,
}

fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
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

/// keysmith never installs its CRDs; it says clearly when they are missing.
/// Asks with a one-item list of each kind: the permission it needs anyway.
pub async fn check_crds(client: &Client, namespace: &Option<String>) -> Result<(), String> {
    let probe = kube::api::ListParams::default().limit(1);
    let apps = api::<GatewayApp>(client, namespace)
        .list_metadata(&probe)
        .await
        .map(|_| ());
    let keys = api::<SignatureKey>(client, namespace)
        .list_metadata(&probe)
        .await
        .map(|_| ());
    for (name, result) in [
        ("gatewayapps.keysmith.dev", apps),
        ("signaturekeys.keysmith.dev", keys),
    ] {
        match result {
            Ok(()) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {
                return Err(format!(
                    "CRD {name} is not installed: kubectl apply --server-side -f crds/"
                ));
            }
            Err(error) => return Err(format!("cannot list {name}: {error}")),
        }
    }
    Ok(())
}

/// Resolves once `shutdown` turns true (SIGTERM, or leadership lost).
pub async fn shutdown_signal(mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Runs both controllers until `shutdown`; in-flight reconciles finish first.
pub async fn run(
    client: Client,
    options: Options,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let reporter = Reporter {
        controller: "keysmith".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let (events, event_queue) = mpsc::channel(1024);
    let publisher = tokio::spawn(publish_events(client.clone(), reporter, event_queue));
    let ctx = Arc::new(Context {
        events,
        status_written: Mutex::new(HashMap::new()),
        client: client.clone(),
        metrics,
        keys: Mutex::new(KeyIndex::default()),
        app_sources: Mutex::new(SourceIndex::default()),
        key_sources: Mutex::new(SourceIndex::default()),
        secret_names: Mutex::new(SecretNames::default()),
        secret_written: Mutex::new(HashMap::new()),
        app_cache: OnceLock::new(),
        key_cache: OnceLock::new(),
    });
    let (app_triggers, app_triggered) = mpsc::unbounded();
    let (key_triggers, key_triggered) = mpsc::unbounded();
    let secrets = tokio::spawn(watch_secrets(
        ctx.clone(),
        options.namespace.clone(),
        app_triggers,
        key_triggers,
    ));
    let apps = controller::<GatewayApp>(
        ctx.clone(),
        &options,
        app_triggered,
        health.clone(),
        shutdown.clone(),
    );
    let keys = controller::<SignatureKey>(ctx.clone(), &options, key_triggered, health, shutdown);
    info!(
        namespace = options.namespace.as_deref().unwrap_or("<all>"),
        "keysmith controllers started"
    );
    futures::join!(apps, keys);
    secrets.abort();
    // Drained: let the queued events out (briefly) before returning.
    drop(ctx);
    let _ = tokio::time::timeout(Duration::from_secs(5), publisher).await;
}

/// kube's `Recorder` keeps every event it published (to turn repeats into a
/// series) and drops expired ones (older than 6 minutes) only when it
/// publishes the next one: after a burst of 20k `Issued` events that is tens
/// of MiB held until some later event. Once that long has passed without an
/// event, every entry has expired, and a fresh `Recorder` (empty cache)
/// replaces the old one without losing anything.
const RECORDER_CACHE_TTL: Duration = Duration::from_secs(6 * 60);

/// Publishes queued events, a few at a time.
async fn publish_events(
    client: Client,
    reporter: Reporter,
    queue: mpsc::Receiver<(Event, ObjectReference)>,
) {
    struct InUse {
        recorder: Recorder,
        last_event: std::time::Instant,
    }
    let fresh = move || InUse {
        recorder: Recorder::new(client.clone(), reporter.clone()),
        last_event: std::time::Instant::now(),
    };
    let current = Arc::new(Mutex::new(fresh()));
    let refresher = tokio::spawn({
        let current = current.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let mut current = lock(&current);
                if current.last_event.elapsed() >= RECORDER_CACHE_TTL {
                    *current = fresh();
                }
            }
        }
    });
    queue
        .for_each_concurrent(4, |(event, reference)| {
            let recorder = {
                let mut current = lock(&current);
                current.last_event = std::time::Instant::now();
                current.recorder.clone()
            };
            async move {
                if let Err(error) = recorder.publish(&event, &reference).await {
                    warn!(%error, reason = event.reason, "could not record an event");
                }
            }
        })
        .await;
    refresher.abort();
}

fn holder_of<K: Resource>(object: &K) -> Holder {
    Holder {
        created: object.meta().creation_timestamp.as_ref().map(|t| t.0),
        uid: object.meta().uid.clone().unwrap_or_default(),
        namespace: object.meta().namespace.clone().unwrap_or_default(),
        name: object.meta().name.clone().unwrap_or_default(),
    }
}

fn source_of<K: CredentialKind>(object: &K) -> BTreeSet<(String, String)> {
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    object
        .intent()
        .secret_from
        .map(|(name, _)| (namespace, name))
        .into_iter()
        .collect()
}

/// Keeps the indexes in step with a kind's watch stream; sends the objects a
/// change affects to `requeue`.
fn index_events<K: CredentialKind>(
    ctx: Arc<Context>,
    requeue: mpsc::UnboundedSender<ObjectRef<K>>,
    health: Arc<Health>,
) -> impl FnMut(&watcher::Event<K>) {
    let mut synced = false;
    move |event| {
        let mut affected = BTreeSet::new();
        let mut sources = lock(ctx.sources::<K>());
        let mut keys = ctx.keys.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            watcher::Event::Init => {
                sources.begin_resync();
                if is_app::<K>() {
                    keys.begin_resync();
                }
            }
            watcher::Event::InitApply(object) | watcher::Event::Apply(object) => {
                let holder = holder_of(object);
                sources.upsert(Entry {
                    holder: holder.clone(),
                    values: source_of(object),
                });
                if is_app::<K>() {
                    affected.extend(keys.upsert(Entry {
                        holder,
                        values: object.unique_keys(),
                    }));
                }
            }
            watcher::Event::Delete(object) => {
                if let Some(uid) = &object.meta().uid {
                    lock(&ctx.status_written).remove(uid);
                }
                let uid = object.meta().uid.clone().unwrap_or_default();
                sources.remove(&uid);
                if is_app::<K>() {
                    affected.extend(keys.remove(&uid));
                }
            }
            watcher::Event::InitDone => {
                affected.extend(sources.end_resync());
                if is_app::<K>() {
                    affected.extend(keys.end_resync());
                }
                // The first complete list: this kind's cache is synced.
                if !synced {
                    synced = true;
                    debug!(kind = kind_label::<K>(), "cache synced");
                    health.cache_synced();
                }
            }
        }
        for holder in affected {
            let _ = requeue.unbounded_send(ObjectRef::new(&holder.name).within(&holder.namespace));
        }
    }
}

fn controller<K>(
    ctx: Arc<Context>,
    options: &Options,
    secret_triggers: mpsc::UnboundedReceiver<ObjectRef<K>>,
    health: Arc<Health>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let client = ctx.client.clone();
    let (requeue_tx, requeue_rx) = mpsc::unbounded();
    let (reader, writer) = reflector::store::<K>();
    if let Some(cache) = ctx.cache::<K>() {
        let _ = cache.set(reader.clone());
    }
    ctx.metrics
        .objects
        .add_source(object_states(reader.clone()));
    let stream = watcher(
        api::<K>(&client, &options.namespace),
        watcher::Config::default().any_semantic(),
    )
    .backoff(watch_backoff())
    // Cache less: nothing here reads managed fields or client-side apply's copy.
    .modify(|object: &mut K| {
        object.meta_mut().managed_fields = None;
        if let Some(annotations) = object.meta_mut().annotations.as_mut() {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    })
    .inspect_ok(index_events(ctx.clone(), requeue_tx, health));
    // The cache keeps every change; our own status write coming back triggers
    // nothing (the reconcile that wrote it already decided what comes next).
    // Only once the cache shows it: during a re-list the store changes at its end.
    let (echo_ctx, cache) = (ctx.clone(), reader.clone());
    let objects = skip_watch_errors(reflector::reflector(writer, stream).applied_objects()).filter(
        move |object| {
            let echo = object.as_ref().is_ok_and(|object| {
                let cached = cache.get(&ObjectRef::from_obj(object));
                cached.is_some_and(|c| c.meta().resource_version == object.meta().resource_version)
                    && forget_status_write_once_cached(object, &echo_ctx)
            });
            std::future::ready(!echo)
        },
    );

    Controller::for_stream(objects, reader)
        .reconcile_on(secret_triggers)
        .reconcile_on(requeue_rx)
        .with_config(ControllerConfig::default().concurrency(options.concurrency))
        .graceful_shutdown_on(shutdown_signal(shutdown))
        .run(timed_reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => debug!(object = %object, "reconciled"),
                Err(error) => debug!(%error, "reconcile loop"),
            }
        })
}

/// One metadata-only watch over Secrets for both controllers (no Secret data
/// is cached): keeps `ctx.secret_names` current and sends each changed
/// Secret's owner and readers to the controller of their kind.
async fn watch_secrets(
    ctx: Arc<Context>,
    namespace: Option<String>,
    apps: mpsc::UnboundedSender<ObjectRef<GatewayApp>>,
    keys: mpsc::UnboundedSender<ObjectRef<SignatureKey>>,
) {
    let stream = watcher(
        api::<PartialObjectMeta<Secret>>(&ctx.client, &namespace),
        watcher::Config::default().any_semantic(),
    )
    .backoff(watch_backoff());
    let mut stream = std::pin::pin!(skip_watch_errors(stream));
    while let Some(Ok(event)) = stream.next().await {
        let changed = {
            let mut names = lock(&ctx.secret_names);
            match event {
                watcher::Event::Init => {
                    names.begin_relist();
                    None
                }
                watcher::Event::InitDone => {
                    names.end_relist();
                    None
                }
                watcher::Event::InitApply(secret) | watcher::Event::Apply(secret) => {
                    names.insert(&secret.namespace().unwrap_or_default(), &secret.name_any());
                    Some(secret)
                }
                watcher::Event::Delete(secret) => {
                    names.remove(&secret.namespace().unwrap_or_default(), &secret.name_any());
                    Some(secret)
                }
            }
        };
        if let Some(secret) = changed {
            // Our own write coming back: its owner already knows.
            let key = secret_key(&secret.namespace().unwrap_or_default(), &secret.name_any());
            let owner_knows = own_write_seen(&ctx.secret_written, &key, &secret);
            for object in concerned::<GatewayApp>(&ctx, &secret, owner_knows) {
                let _ = apps.unbounded_send(object);
            }
            for object in concerned::<SignatureKey>(&ctx, &secret, owner_knows) {
                let _ = keys.unbounded_send(object);
            }
        }
    }
}

/// How `Context::secret_written` names a Secret.
fn secret_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

/// Whether `object` is exactly what we last wrote under `key` (same
/// resourceVersion); the record is dropped once the watch has shown it.
fn own_write_seen(
    written: &Mutex<HashMap<String, String>>,
    key: &str,
    object: &impl Resource,
) -> bool {
    let mut written = lock(written);
    let seen = written
        .get(key)
        .is_some_and(|rv| Some(rv) == object.meta().resource_version.as_ref());
    if seen {
        written.remove(key);
    }
    seen
}

/// The resources of kind `K` a Secret change concerns: its owner (by label,
/// unless `owner_knows`) and whoever reads it as a source.
fn concerned<K: CredentialKind>(
    ctx: &Context,
    secret: &PartialObjectMeta<Secret>,
    owner_knows: bool,
) -> Vec<ObjectRef<K>> {
    let namespace = secret.namespace().unwrap_or_default();
    let mut refs = Vec::new();
    let labels = secret.labels();
    if !owner_knows
        && labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE)
        && let Some(owner) = labels.get(K::OWNER_LABEL)
    {
        refs.push(ObjectRef::new(owner).within(&namespace));
    }
    let sources = lock(ctx.sources::<K>());
    for holder in sources.holders(&(namespace.clone(), secret.name_any())) {
        refs.push(ObjectRef::new(&holder.name).within(&holder.namespace));
    }
    refs
}

async fn timed_reconcile<K>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let kind = kind_label::<K>();
    let started = std::time::Instant::now();
    let result = reconcile(object, ctx.clone()).await;
    ctx.metrics
        .reconciles
        .get_or_create(&KindLabels { kind })
        .inc();
    ctx.metrics
        .reconcile_duration
        .get_or_create(&KindLabels { kind })
        .observe(started.elapsed().as_secs_f64());
    result
}

/// The kind as a static metric label value.
fn kind_label<K: CredentialKind>() -> &'static str {
    if is_app::<K>() {
        "GatewayApp"
    } else {
        "SignatureKey"
    }
}

/// The per-object gauges of one kind, read from its cache at scrape time.
fn object_states<K: CredentialKind>(reader: reflector::Store<K>) -> crate::metrics::StateSource {
    Box::new(move |emit| {
        for object in reader.state() {
            let rotation = object.recorded_rotation();
            let seconds = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
                t.map(|t| t.0.as_second() as f64)
            };
            emit(ObjectState {
                kind: kind_label::<K>(),
                namespace: object.meta().namespace.as_deref().unwrap_or_default(),
                name: object.meta().name.as_deref().unwrap_or_default(),
                ready: rotation.and_then(|r| {
                    r.conditions
                        .iter()
                        .find(|c| c.type_ == READY)
                        .map(|c| c.status == "True")
                }),
                last_rotation: rotation.and_then(|r| seconds(r.last_rotation_time.as_ref())),
                next_rotation: rotation.and_then(|r| seconds(r.next_rotation_time.as_ref())),
            })?;
        }
        Ok(())
    })
}

/// The rotation counter after a pass.
fn record_rotation<K: CredentialKind>(metrics: &Metrics, plan: &plan::Plan) {
    if let Some(reason) = plan.rotation {
        metrics
            .rotations
            .get_or_create(&RotationLabels {
                kind: kind_label::<K>(),
                reason: plan::reason_name(reason),
            })
            .inc();
    }
}

fn error_policy<K: CredentialKind>(object: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics
        .reconcile_errors
        .get_or_create(&ErrorLabels {
            kind: kind_label::<K>(),
            reason: error.reason(),
        })
        .inc();
    warn!(
        kind = K::kind(&()).as_ref(),
        namespace = object.namespace().unwrap_or_default(),
        name = object.name_any(),
        reason = error.reason(),
        %error,
        "reconcile failed"
    );
    Action::requeue(error.retry_after())
}

/// What keysmith sees of its output Secret.
pub fn observe_secret<K: CredentialKind>(
    secret: &Secret,
    owner: &K,
    intent: &plan::Intent,
) -> ObservedSecret {
    let labels = secret.labels();
    let ours = labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY_VALUE)
        && labels.get(K::OWNER_LABEL) == Some(&owner.name_any());
    let data: BTreeMap<String, Option<String>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8(v.0.clone()).ok()))
        .collect();
    // Data fields keysmith's field manager still owns; a field someone else
    // changed moved to their manager (server-side apply's field ownership).
    let owned_fields: Option<BTreeSet<String>> = secret
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
        });
    let edited_keys = [&intent.key_data_key, &intent.secret_data_key]
        .into_iter()
        .filter(|k| data.contains_key(*k))
        .filter(|k| {
            owned_fields
                .as_ref()
                .is_none_or(|owned| !owned.contains(*k))
        })
        .cloned()
        .collect();
    let uid = owner.meta().uid.clone();
    ObservedSecret {
        ours,
        data,
        labels: labels.clone(),
        annotations: secret.annotations().clone(),
        owner_referenced: secret
            .owner_references()
            .iter()
            .any(|r| Some(&r.uid) == uid.as_ref()),
        edited_keys,
    }
}

/// Reads a Secret; `cached` reads from the apiserver's watch cache (cheaper, may lag).
async fn fetch_secret(
    api: &Api<Secret>,
    namespace: &str,
    name: &str,
    cached: bool,
) -> Result<Option<Secret>, Error> {
    let result = if cached {
        match api.get_with(name, &kube::api::GetParams::any()).await {
            Ok(secret) => Ok(Some(secret)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(error) => Err(error),
        }
    } else {
        api.get_opt(name).await
    };
    result.map_err(|source| Error::ReadSecret {
        namespace: namespace.into(),
        name: name.into(),
        source,
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

async fn fetch_source(
    secrets: &Api<Secret>,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<SourceValue, Error> {
    Ok(match fetch_secret(secrets, namespace, name, false).await? {
        None => SourceValue::SecretMissing,
        Some(source) => match source.data.as_ref().and_then(|d| d.get(key)) {
            None => SourceValue::KeyMissing,
            Some(bytes) => match String::from_utf8(bytes.0.clone()) {
                Ok(value) => SourceValue::Found(value),
                Err(_) => SourceValue::NotUtf8,
            },
        },
    })
}

fn secret_object<K: CredentialKind>(
    owner: &K,
    namespace: &str,
    desired: &plan::DesiredSecret,
) -> Secret {
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

/// `force` takes back fields someone else changed in a Secret that is ours;
/// without it, a Secret that already exists with other values conflicts.
async fn apply_secret<K: CredentialKind>(
    api: &Api<Secret>,
    owner: &K,
    namespace: &str,
    desired: &plan::DesiredSecret,
    force: bool,
) -> Result<Option<String>, Error> {
    let secret = secret_object(owner, namespace, desired);
    let mut params = PatchParams::apply(FIELD_MANAGER);
    params.force = force;
    let written = api
        .patch(&desired.name, &params, &Patch::Apply(&secret))
        .await
        .map_err(|source| Error::WriteSecret {
            namespace: namespace.into(),
            name: desired.name.clone(),
            source,
        })?;
    Ok(written.metadata.resource_version)
}

async fn reconcile<K>(object: Arc<K>, ctx: Arc<Context>) -> Result<Action, Error>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let name = object.name_any();
    let namespace = object
        .namespace()
        .ok_or_else(|| Error::NoNamespace(format!("{}/{name}", K::kind(&()))))?;
    if object.meta().deletion_timestamp.is_some() {
        return Ok(Action::await_change()); // owner references do the cleanup
    }
    let _ = forget_status_write_once_cached(&*object, &ctx);
    let intent = object.intent();
    // This pass reads the Secret anew: no echo of an earlier write is awaited
    // (and none is kept for a Secret whose echo came before its record).
    lock(&ctx.secret_written).remove(&secret_key(&namespace, &intent.secret_name));
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);

    // A resource never issued (no revision in status, none written by this
    // process) almost never has a Secret yet. If the Secret watch shows none,
    // nothing is read; otherwise it is read from the apiserver's watch cache
    // instead of etcd. A stale "absent" cannot hurt: the Secret is then
    // created without forcing, so one that appeared meanwhile is not taken
    // over (the apply conflicts, and the retry reads it).
    let issued_by_us = object
        .meta()
        .uid
        .as_ref()
        .is_some_and(|uid| lock(&ctx.status_written).contains_key(uid));
    let previous = object.previous_status();
    let never_issued = previous.revision.is_none() && !issued_by_us;
    let surely_absent =
        never_issued && lock(&ctx.secret_names).surely_absent(&namespace, &intent.secret_name);
    let secret = if surely_absent {
        None
    } else {
        fetch_secret(&secrets, &namespace, &intent.secret_name, never_issued).await?
    };
    let observed_secret = secret
        .as_ref()
        .map(|s| observe_secret(s, &*object, &intent));
    let source = match &intent.secret_from {
        None => None,
        Some((source_name, key)) => {
            Some(fetch_source(&secrets, &namespace, source_name, key).await?)
        }
    };
    let now = plan::truncate_to_second(Timestamp::now());
    let observed = Observed {
        secret: observed_secret.as_ref(),
        source,
        status: &previous,
        key_held_by: held_by(&*object, &intent, &ctx),
    };
    let plan = plan::plan(&intent, &observed, now, &mut generate::os_rng())?;
    if let Some(desired) = &plan.secret {
        let take_over_fields = secret.is_some();
        let written =
            apply_secret(&secrets, &*object, &namespace, desired, take_over_fields).await?;
        if let Some(rv) = written {
            lock(&ctx.secret_written).insert(secret_key(&namespace, &desired.name), rv);
        }
    }
    record_rotation::<K>(&ctx.metrics, &plan);
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    // Our own earlier status write may have reached the cache meanwhile.
    let newest = ctx.newest(&object);
    let mut desired_status = newest.desired_status(&intent, &plan, now);
    let mut current_status = newest.current_status();
    if desired_status != current_status
        && let Some(fresh) = fresh_if_cache_lags(&*newest, &api, &ctx).await?
    {
        desired_status = fresh.desired_status(&intent, &plan, now);
        current_status = fresh.current_status();
    }
    if desired_status != current_status {
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": desired_status,
        });
        let written = api
            .patch_status(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(|source| Error::WriteStatus {
                object: format!("{}/{namespace}/{name}", K::kind(&())),
                source,
            })?;
        debug!(
            namespace,
            name,
            rv = written.meta().resource_version.as_deref(),
            "status written"
        );
        if let (Some(uid), Some(rv)) = (
            object.meta().uid.clone(),
            written.meta().resource_version.clone(),
        ) {
            lock(&ctx.status_written).insert(uid, rv);
        }
    }
    for event in &plan.events {
        let event = Event {
            type_: match event.severity {
                Severity::Normal => EventType::Normal,
                Severity::Warning => EventType::Warning,
            },
            reason: event.reason.into(),
            note: Some(event.note.clone()),
            action: "Reconcile".into(),
            secondary: None,
        };
        let mut events = ctx.events.clone();
        if events.send((event, object.object_ref(&()))).await.is_err() {
            warn!("event queue closed; an event was not recorded");
        }
    }
    if plan.secret.is_some() || !plan.events.is_empty() {
        info!(
            kind = K::kind(&()).as_ref(),
            namespace,
            name,
            ready = plan.readiness.ready,
            reason = plan.readiness.reason,
            revision = plan.state.as_ref().and_then(|s| s.revision),
            "reconciled"
        );
    }
    Ok(match plan.requeue_after {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    })
}

/// The cached object's status differs from what we want; but if we wrote a
/// status since the cache last saw the object, the cache may just lag behind
/// our own write. Then read the object fresh, to decide on that.
async fn fresh_if_cache_lags<K>(object: &K, api: &Api<K>, ctx: &Context) -> Result<Option<K>, Error>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let uid = object.meta().uid.clone().unwrap_or_default();
    let written = lock(&ctx.status_written).get(&uid).cloned();
    match written {
        Some(written) if object.meta().resource_version.as_ref() != Some(&written) => {
            let fresh = api
                .get(&object.name_any())
                .await
                .map_err(|source| Error::ReadObject {
                    object: format!("{}/{}", K::kind(&()), object.name_any()),
                    source,
                })?;
            Ok(Some(fresh))
        }
        _ => Ok(None), // never written, or the cache has our write: the difference is real
    }
}

/// The cache shows our last status write: from now on a difference is real,
/// so the record is no longer needed (and is not kept for every object).
/// Returns whether `object` was our last status write.
fn forget_status_write_once_cached<K: Resource>(object: &K, ctx: &Context) -> bool {
    let uid = object.meta().uid.as_deref().unwrap_or_default();
    own_write_seen(&ctx.status_written, uid, object)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// For a GatewayApp: an older app holding the AppKey this one wants.
fn held_by<K: CredentialKind>(object: &K, intent: &plan::Intent, ctx: &Context) -> Option<String> {
    if !is_app::<K>() {
        return None;
    }
    let wanted = intent
        .custom_key
        .clone()
        .or_else(|| object.previous_status().key)?;
    let keys = ctx.keys.lock().unwrap_or_else(|e| e.into_inner());
    keys.older_holder(&wanted, &holder_of(object))
        .map(Holder::display)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_at(rv: &str) -> PartialObjectMeta<Secret> {
        let mut secret = PartialObjectMeta::<Secret>::default();
        secret.metadata.resource_version = Some(rv.into());
        secret
    }

    #[test]
    fn only_the_exact_version_we_wrote_is_our_own_echo_and_only_once() {
        let written = Mutex::new(HashMap::from([(secret_key("ns", "s"), "7".to_string())]));
        assert!(
            !own_write_seen(&written, "ns/s", &secret_at("6")),
            "older: news"
        );
        assert!(
            !own_write_seen(&written, "ns/other", &secret_at("7")),
            "another Secret"
        );
        assert!(own_write_seen(&written, "ns/s", &secret_at("7")));
        assert!(
            !own_write_seen(&written, "ns/s", &secret_at("7")),
            "the record is gone once seen: a later event of the same version is news"
        );
    }
}
