//! The kube-runtime shell around the engine.
//!
//! - [`reconcile`]: one pass as named steps (decide on a copy → observe →
//!   plan → apply Secret → apply status → emit), with `error_policy`;
//! - [`secrets`] and [`status`]: the I/O of the two writes, Secret first
//!   (held by the types: the status step takes the Secret step's result);
//! - [`rollout`]: restarting `spec.rollout`'s workloads, between the two;
//! - [`echo`]: own-write bookkeeping, with its invariant;
//! - [`watches`]: one watch per kind, one Secret metadata watch for all,
//!   index upkeep and the Secret → resource fan-out;
//! - [`context`]: shared and per-kind state; [`index`], [`secret_names`]:
//!   the pure indexes it holds;
//! - [`events`], [`metrics`], [`health`]: what the controller reports;
//! - [`error`]: one error type per step, permanent or transient;
//!   [`backoff`]: how long a failing object waits.

pub mod backoff;
pub mod cloud;
pub mod cloud_target;
pub mod connection_use;
pub mod connections;
pub mod context;
pub mod drift;
pub mod echo;
pub mod error;
pub mod events;
pub mod finalizers;
pub mod gateway_others;
pub mod health;
pub mod index;
pub mod metrics;
pub mod pending;
pub mod reconcile;
pub mod record_key;
pub mod rollout;
pub mod secret_names;
pub mod secrets;
pub mod status;
pub mod watches;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc;
use kube::core::NamespaceResourceScope;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::reflector;
use kube::{Client, Resource};
use tracing::{debug, info};

pub use error::Error;
pub use health::Health;
pub use metrics::Metrics;

use crate::api::{GatewayApp, SignatureKey};
use crate::kinds::CredentialKind;
use context::{KindContext, Shared};
use echo::OwnWrites;
use events::EventQueue;
use secret_names::SecretNames;
use watches::{SecretListener, SecretTriggers};

/// How `keysmith run` runs the controllers.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Watch one namespace; `None` for all.
    pub namespace: Option<String>,
    /// Reconciles at once per kind (0: unbounded).
    pub concurrency: u16,
    /// Where the key of keysmith's seals lives.
    pub record_key_secret: Option<record_key::RecordKeySecret>,
    /// That key, once loaded (`runtime::run` loads it before the controllers
    /// start); `None` seals nothing.
    pub record_key: Option<crate::engine::RecordKey>,
    /// Serve ClusterGatewayConnections (off in a namespaced install).
    pub cluster_connections: bool,
}

/// keysmith never installs its CRDs; it says clearly when they are missing.
/// Asks with a one-item list of each kind: the permission it needs anyway.
pub async fn check_crds(client: &Client, namespace: &Option<String>) -> Result<(), CrdCheck> {
    check_crd::<GatewayApp>(client, namespace).await?;
    check_crd::<SignatureKey>(client, namespace).await
}

/// Why the CRD check failed.
#[derive(Debug, thiserror::Error)]
pub enum CrdCheck {
    #[error("CRD {0} is not installed: kubectl apply --server-side -f crds/")]
    Missing(String),
    #[error("cannot list {name}: {source}")]
    List {
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl CrdCheck {
    /// The apiserver could not answer yet (worth asking again).
    pub fn is_transient(&self) -> bool {
        matches!(self, CrdCheck::List { source, .. } if unavailable(source))
    }
}

/// The apiserver could not be reached or could not answer now (a restart, a
/// busy apiserver): the same request may well succeed in a moment. A
/// refusal (4xx but 429), a bad configuration or credentials are not.
pub fn unavailable(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

async fn check_crd<K>(client: &Client, namespace: &Option<String>) -> Result<(), CrdCheck>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let probe = kube::api::ListParams::default().limit(1);
    let name = format!("{}.{}", K::KIND.plural(), crate::api::GROUP);
    match watches::api::<K>(client, namespace)
        .list_metadata(&probe)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(CrdCheck::Missing(name)),
        Err(source) => Err(CrdCheck::List { name, source }),
    }
}

/// Resolves once `shutdown` turns true (SIGTERM, or leadership lost).
pub async fn shutdown_signal(mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// What every kind's controller shares.
fn shared_state(
    client: Client,
    options: &Options,
    metrics: Arc<Metrics>,
    events: EventQueue,
) -> Arc<Shared> {
    let observed = metrics.clone();
    let gateway_clients =
        connections::Clients::observed(Arc::new(move |provider, operation, code, elapsed| {
            observed.record_gateway_request(provider, operation, code, elapsed)
        }));
    Arc::new(Shared {
        client,
        metrics,
        events,
        writes: OwnWrites::default(),
        secret_names: Mutex::new(SecretNames::default()),
        record_key: options.record_key.clone(),
        gateway_clients: Arc::new(gateway_clients),
        own_namespace: options
            .record_key_secret
            .as_ref()
            .map(|s| s.namespace.clone()),
        cloud_written: Mutex::default(),
    })
}

/// Runs a controller per kind until `shutdown`; in-flight reconciles finish first.
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
    let (events, publisher) = EventQueue::start(client.clone(), reporter);
    let publisher = tokio::spawn(publisher);
    let shared = shared_state(client, &options, metrics, events);
    let (apps, app_listener) = KindController::<GatewayApp>::new(&shared);
    let (keys, key_listener) = KindController::<SignatureKey>::new(&shared);
    let connections = connections::run(
        Arc::new(connections::ConnectionContext {
            client: shared.client.clone(),
            clients: shared.gateway_clients.clone(),
            own_namespace: shared.own_namespace.clone(),
            shared: shared.clone(),
            apps: apps.ctx.cache.clone(),
            keys: keys.ctx.cache.clone(),
            last_drift: Mutex::default(),
        }),
        options.namespace.clone(),
        options.cluster_connections,
        shutdown.clone(),
    );
    let secrets = tokio::spawn(watches::watch_secrets(
        shared.clone(),
        options.namespace.clone(),
        vec![app_listener, key_listener],
    ));
    info!(
        namespace = options.namespace.as_deref().unwrap_or("<all>"),
        "keysmith controllers started"
    );
    futures::join!(
        apps.run(&options, health.clone(), shutdown.clone()),
        keys.run(&options, health, shutdown.clone()),
        // Connection checks are read-only calls and status writes: dropped
        // at shutdown rather than awaited, so SIGTERM never waits on a gateway.
        async {
            tokio::select! {
                _ = connections => {}
                _ = shutdown_signal(shutdown) => {}
            }
        },
    );
    secrets.abort();
    // Drained: let the queued events out (the publisher gives up after
    // events::DRAIN) before returning.
    shared.events.close();
    drop(shared);
    let _ = tokio::time::timeout(events::DRAIN + Duration::from_secs(1), publisher).await;
}

/// One kind's controller, before it runs.
struct KindController<K: CredentialKind> {
    ctx: Arc<KindContext<K>>,
    writer: reflector::store::Writer<K>,
    secret_triggers: mpsc::UnboundedReceiver<reflector::ObjectRef<K>>,
}

impl<K> KindController<K>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    /// The controller and its listener for the Secret watch.
    fn new(shared: &Arc<Shared>) -> (Self, Box<dyn SecretListener>) {
        let (reader, writer) = reflector::store::<K>();
        shared
            .metrics
            .objects
            .add_source(metrics::object_states(reader.clone()));
        let ctx = Arc::new(KindContext::new(shared.clone(), reader));
        let (triggers, secret_triggers) = mpsc::unbounded();
        let listener = Box::new(SecretTriggers {
            ctx: ctx.clone(),
            triggers,
        });
        let controller = KindController {
            ctx,
            writer,
            secret_triggers,
        };
        (controller, listener)
    }

    async fn run(
        self,
        options: &Options,
        health: Arc<Health>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let (requeue, requeued) = mpsc::unbounded();
        let objects = watches::watch_kind(
            self.ctx.clone(),
            self.writer,
            &options.namespace,
            requeue,
            health,
        );
        Controller::for_stream(objects, self.ctx.cache.clone())
            .reconcile_on(self.secret_triggers)
            .reconcile_on(requeued)
            .with_config(ControllerConfig::default().concurrency(options.concurrency))
            .graceful_shutdown_on(shutdown_signal(shutdown))
            .run(
                reconcile::run_reconcile::<K>,
                reconcile::error_policy::<K>,
                self.ctx,
            )
            .for_each(|result| async move {
                match result {
                    Ok((object, _)) => debug!(object = %object, "reconciled"),
                    Err(error) => debug!(%error, "reconcile loop"),
                }
            })
            .await;
    }
}

/// A poisoned lock still holds consistent state here (every critical
/// section is a plain map update), so keep going.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
