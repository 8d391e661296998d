//! Connections to cloud API gateways (SPEC §11.1): resolving a resource's
//! `spec.connectionRef` into a provider client, and the controllers that
//! check each `GatewayConnection` and `ClusterGatewayConnection` with a
//! read-only call and report `Ready`.
//!
//! A namespaced connection's credentials come from a Secret in its own
//! namespace that opted in (`keysmith.dev/allow-source: "true"`, as any
//! source); a cluster connection's from keysmith's own namespace, and only
//! namespaces its `namespaceSelector` picks may use it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::utils::PredicateConfig;
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Client, Resource, ResourceExt};
use tracing::{debug, info};

use super::connection_use;
use super::lock;
use super::rollout::selector_text;
use crate::api::names::{CONNECTION_IN_USE_FINALIZER, annotations};
use crate::api::{
    ClientLimits, ClusterGatewayConnection, ConnectionKind, ConnectionRef, CredentialsRef,
    GatewayConnection, GatewayConnectionStatus, GatewayProvider,
};
use crate::providers::{self, AccessKey, GatewayApi, Limits, Provider, SecretValue};

/// The field manager of connection statuses.
const MANAGER: &str = "keysmith";
/// How often a Ready connection is checked again.
const RECHECK: Duration = Duration::from_secs(300);
/// How soon a connection that is not Ready is checked again.
const RETRY: Duration = Duration::from_secs(30);
/// How soon a connection being deleted looks again for its last user.
const IN_USE_RECHECK: Duration = Duration::from_secs(2);
/// A drift check requeued for exactly its interval is due, though the timer
/// fires a little early or the last check ended a little late.
const DRIFT_SLACK: Duration = Duration::from_secs(1);
/// Default data keys of the credentials Secret.
const ACCESS_KEY_ID_KEY: &str = "accessKeyId";
const ACCESS_KEY_SECRET_KEY: &str = "accessKeySecret";

/// Why a connection cannot be used: the reason word for conditions and the
/// message (never a credential).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub reason: &'static str,
    pub message: String,
    /// The connection or its credentials do not exist (and no client built
    /// with them is left): nothing can reach the gateway through it.
    pub gone: bool,
}

impl Problem {
    fn new(reason: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            reason,
            message: message.into(),
            gone: false,
        }
    }

    fn gone(reason: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            gone: true,
            ..Problem::new(reason, message)
        }
    }
}

/// The parts both connection kinds share, borrowed.
struct View<'a> {
    provider: GatewayProvider,
    endpoint: &'a str,
    region: Option<&'a str>,
    project_id: Option<&'a str>,
    instance_id: Option<&'a str>,
    credentials: &'a CredentialsRef,
    ca_bundle: Option<&'a str>,
    limits: Option<&'a ClientLimits>,
}

fn view_of_namespaced(c: &GatewayConnection) -> View<'_> {
    let s = &c.spec;
    View {
        provider: s.provider,
        endpoint: &s.endpoint,
        region: s.region.as_deref(),
        project_id: s.project_id.as_deref(),
        instance_id: s.instance_id.as_deref(),
        credentials: &s.credentials_ref,
        ca_bundle: s.ca_bundle.as_deref(),
        limits: s.limits.as_ref(),
    }
}

fn view_of_cluster(c: &ClusterGatewayConnection) -> View<'_> {
    let s = &c.spec;
    View {
        provider: s.provider,
        endpoint: &s.endpoint,
        region: s.region.as_deref(),
        project_id: s.project_id.as_deref(),
        instance_id: s.instance_id.as_deref(),
        credentials: &s.credentials_ref,
        ca_bundle: s.ca_bundle.as_deref(),
        limits: s.limits.as_ref(),
    }
}

/// A resolved connection: its client and how status names it.
#[derive(Clone)]
pub struct Resolved {
    /// `GatewayConnection/NAME` or `ClusterGatewayConnection/NAME`.
    pub label: String,
    pub provider: Provider,
    pub client: providers::Client,
}

/// Clients by connection uid, rebuilt when the connection's spec or its
/// credentials change. A connection being deleted keeps its last client when
/// its credentials Secret is already gone (a namespace deletion removes
/// Secrets at once), so the resources that use it can still remove their
/// apps at the gateway; it is forgotten when the connection is released.
#[derive(Default)]
pub struct Clients {
    by_connection: Mutex<HashMap<String, (String, Provider, providers::Client)>>,
    /// Told of every gateway request (the metrics).
    observer: Option<providers::http::Observer>,
}

impl Clients {
    /// Clients whose requests `observer` is told of.
    pub fn observed(observer: providers::http::Observer) -> Clients {
        Clients {
            by_connection: Mutex::default(),
            observer: Some(observer),
        }
    }

    fn get_or_build(
        &self,
        uid: &str,
        fingerprint: String,
        build: impl FnOnce() -> Result<(Provider, providers::Client), Problem>,
    ) -> Result<(Provider, providers::Client), Problem> {
        if let Some((seen, provider, client)) = lock(&self.by_connection).get(uid)
            && *seen == fingerprint
        {
            return Ok((*provider, client.clone()));
        }
        let (provider, mut client) = build()?;
        if let Some(observer) = &self.observer {
            client.observe(observer.clone());
        }
        let entry = (fingerprint, provider, client.clone());
        lock(&self.by_connection).insert(uid.to_string(), entry);
        Ok((provider, client))
    }

    /// The last client built for connection `uid`, whatever changed since.
    fn last(&self, uid: &str) -> Option<(Provider, providers::Client)> {
        lock(&self.by_connection)
            .get(uid)
            .map(|(_, provider, client)| (*provider, client.clone()))
    }

    /// Drops connection `uid`'s client (the connection is going).
    pub fn forget(&self, uid: &str) {
        lock(&self.by_connection).remove(uid);
    }
}

/// What a connection is resolved for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Syncing a live resource: the credentials must be readable now.
    Sync,
    /// Removing a deleted resource's app: when the credentials Secret is
    /// already gone (a namespace deletion removes Secrets first, in any
    /// order with the connection), the last client built for the connection
    /// still serves.
    Cleanup,
}

/// Resolves `reference` for a resource in `namespace`: the connection
/// exists, the namespace may use it, its credentials are readable.
pub async fn resolve(
    client: &Client,
    clients: &Clients,
    own_namespace: Option<&str>,
    (namespace, reference): (&str, &ConnectionRef),
    purpose: Purpose,
) -> Result<Resolved, Problem> {
    let kind = reference.kind.unwrap_or_default();
    let name = &reference.name;
    match kind {
        ConnectionKind::GatewayConnection => {
            let api: Api<GatewayConnection> = Api::namespaced(client.clone(), namespace);
            let connection = get(&api, kind, name).await?;
            let label = format!("GatewayConnection/{name}");
            let at = (namespace, true);
            build(
                client,
                clients,
                label,
                &connection,
                view_of_namespaced(&connection),
                at,
                purpose,
            )
            .await
        }
        ConnectionKind::ClusterGatewayConnection => {
            let api: Api<ClusterGatewayConnection> = Api::all(client.clone());
            let connection = get(&api, kind, name).await?;
            namespace_allowed(client, &connection, namespace).await?;
            let label = format!("ClusterGatewayConnection/{name}");
            let own = own_namespace.ok_or_else(|| {
                Problem::new(
                    "ConnectionNotReady",
                    "keysmith does not know its own namespace (set --record-key-secret or POD_NAMESPACE)",
                )
            })?;
            build(
                client,
                clients,
                label,
                &connection,
                view_of_cluster(&connection),
                (own, false),
                purpose,
            )
            .await
        }
    }
}

async fn get<K>(api: &Api<K>, kind: ConnectionKind, name: &str) -> Result<K, Problem>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.get_opt(name).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(Problem::gone(
            "ConnectionNotFound",
            format!("spec.connectionRef: {kind:?} {name} does not exist"),
        )),
        Err(e) => Err(Problem::new(
            "ConnectionNotReady",
            format!("reading {kind:?} {name}: {e}"),
        )),
    }
}

/// A cluster connection serves only the namespaces its selector picks
/// (none when unset).
async fn namespace_allowed(
    client: &Client,
    connection: &ClusterGatewayConnection,
    namespace: &str,
) -> Result<(), Problem> {
    let refused = || {
        Problem::new(
            "ConnectionNotAllowed",
            format!(
                "ClusterGatewayConnection {} does not serve namespace {namespace} (its spec.namespaceSelector does not select it)",
                connection.name_any()
            ),
        )
    };
    let Some(selector) = &connection.spec.namespace_selector else {
        return Err(refused());
    };
    if selects_everything(selector) {
        return Ok(());
    }
    let text = selector_text(selector).map_err(|e| {
        Problem::new(
            "ConnectionNotAllowed",
            format!("spec.namespaceSelector: {e}"),
        )
    })?;
    let api: Api<Namespace> = Api::all(client.clone());
    let params = ListParams::default()
        .labels(&text)
        .fields(&format!("metadata.name={namespace}"));
    match api.list_metadata(&params).await {
        Ok(list) if !list.items.is_empty() => Ok(()),
        Ok(_) => Err(refused()),
        Err(e) => Err(Problem::new(
            "ConnectionNotReady",
            format!("reading namespace {namespace}: {e}"),
        )),
    }
}

fn selects_everything(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
}

/// Reads the credentials and builds (or reuses) the client.
async fn build<K: Resource>(
    client: &Client,
    clients: &Clients,
    label: String,
    connection: &K,
    view: View<'_>,
    (secret_namespace, must_opt_in): (&str, bool),
    purpose: Purpose,
) -> Result<Resolved, Problem> {
    let reference = view.credentials;
    let uid = connection.meta().uid.clone().unwrap_or_default();
    let Some(secret) = read_credentials(client, secret_namespace, reference).await? else {
        // A cleanup, or a connection being deleted: the resources that use
        // it remove their apps with the client it had.
        let deleting = connection.meta().deletion_timestamp.is_some();
        let last_resort = deleting || purpose == Purpose::Cleanup;
        let missing = || {
            let name = &reference.name;
            let message =
                format!("spec.credentialsRef: Secret {secret_namespace}/{name} does not exist");
            Problem::gone("ConnectionNotReady", message)
        };
        let (provider, client) = clients
            .last(&uid)
            .filter(|_| last_resort)
            .ok_or_else(missing)?;
        return Ok(Resolved {
            label,
            provider,
            client,
        });
    };
    if must_opt_in && !opted_in(&secret) {
        let (name, opt_in) = (&reference.name, annotations::ALLOW_SOURCE);
        let message = format!(
            "spec.credentialsRef: Secret {secret_namespace}/{name} has not opted in: annotate it {opt_in}=true"
        );
        return Err(Problem::new("ConnectionNotReady", message));
    }
    let access_key = access_key(&secret, reference)?;
    // The spec's generation, not the resourceVersion: every check writes the
    // connection's status, and a new client would start a new rate budget.
    let fingerprint = format!(
        "{}/{}",
        connection.meta().generation.unwrap_or_default(),
        secret.resource_version().unwrap_or_default()
    );
    let settings = settings(&view, access_key)?;
    let connect = || match providers::Client::connect(&settings) {
        Ok(client) => Ok((settings.provider, client)),
        Err(e) => Err(Problem::new("ConnectionNotReady", e.to_string())),
    };
    let (provider, client) = clients.get_or_build(&uid, fingerprint, connect)?;
    Ok(Resolved {
        label,
        provider,
        client,
    })
}

/// The credentials Secret, or `None` when it does not exist.
async fn read_credentials(
    client: &Client,
    namespace: &str,
    reference: &CredentialsRef,
) -> Result<Option<Secret>, Problem> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    secrets.get_opt(&reference.name).await.map_err(|e| {
        let name = &reference.name;
        let message = format!("reading credentials Secret {namespace}/{name}: {e}");
        Problem::new("ConnectionNotReady", message)
    })
}

fn opted_in(secret: &Secret) -> bool {
    secret
        .annotations()
        .get(annotations::ALLOW_SOURCE)
        .map(String::as_str)
        == Some(annotations::ALLOW_SOURCE_VALUE)
}

fn access_key(secret: &Secret, reference: &CredentialsRef) -> Result<AccessKey, Problem> {
    let read = |key: &str| -> Result<String, Problem> {
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .ok_or_else(|| {
                Problem::new(
                    "ConnectionNotReady",
                    format!(
                        "spec.credentialsRef: Secret {} has no key {key}",
                        reference.name
                    ),
                )
            })?;
        String::from_utf8(value.0.clone()).map_err(|_| {
            Problem::new(
                "ConnectionNotReady",
                format!(
                    "spec.credentialsRef: key {key} of Secret {} is not UTF-8",
                    reference.name
                ),
            )
        })
    };
    let id_key = reference
        .access_key_id_key
        .as_deref()
        .unwrap_or(ACCESS_KEY_ID_KEY);
    let secret_key = reference
        .access_key_secret_key
        .as_deref()
        .unwrap_or(ACCESS_KEY_SECRET_KEY);
    Ok(AccessKey {
        id: read(id_key)?.trim().to_string(),
        secret: SecretValue::new(read(secret_key)?.trim().to_string()),
    })
}

/// The provider client's settings from the connection's spec.
fn settings(view: &View<'_>, access_key: AccessKey) -> Result<providers::Connection, Problem> {
    let provider = match view.provider {
        GatewayProvider::HuaweiApig => Provider::HuaweiApig,
        GatewayProvider::AlibabaApiGateway => Provider::AlibabaApiGateway,
    };
    if provider == Provider::HuaweiApig && (view.project_id.is_none() || view.instance_id.is_none())
    {
        return Err(Problem::new(
            "ConnectionNotReady",
            "spec.projectId and spec.instanceId are required for HuaweiAPIG",
        ));
    }
    Ok(providers::Connection {
        provider,
        endpoint: view.endpoint.to_string(),
        region: view.region.unwrap_or_default().to_string(),
        project_id: view.project_id.map(str::to_string),
        instance_id: view.instance_id.map(str::to_string),
        access_key,
        ca_bundle: view.ca_bundle.map(|pem| pem.as_bytes().to_vec()),
        limits: limits(view.limits)?,
    })
}

fn limits(spec: Option<&ClientLimits>) -> Result<Limits, Problem> {
    let default = Limits::default();
    let Some(spec) = spec else {
        return Ok(default);
    };
    let timeout = match spec.timeout.as_deref() {
        None => default.timeout,
        Some(text) => crate::rules::parse_duration(text)
            .filter(|d| !d.is_zero() && *d <= Duration::from_secs(300))
            .ok_or_else(|| {
                Problem::new(
                    "ConnectionNotReady",
                    format!("spec.limits.timeout: {text:?} is not a duration between 1s and 5m"),
                )
            })?,
    };
    Ok(Limits {
        requests_per_second: f64::from(spec.requests_per_second.unwrap_or(10).clamp(1, 1000)),
        burst: spec.burst.unwrap_or(20).clamp(1, 1000),
        timeout,
    })
}

/// Shared by the connection controllers.
pub struct ConnectionContext {
    pub client: Client,
    pub clients: Arc<Clients>,
    pub own_namespace: Option<String>,
    /// For the drift checks: events, the record key, and the GatewayApps.
    pub shared: Arc<super::context::Shared>,
    pub apps: kube::runtime::reflector::Store<crate::api::GatewayApp>,
    /// With the apps: who uses a connection (its in-use finalizer).
    pub keys: kube::runtime::reflector::Store<crate::api::SignatureKey>,
    /// When each connection's last drift check ran.
    pub last_drift: Mutex<HashMap<String, std::time::Instant>>,
}

/// Checks one connection with a read-only call; the outcome as a
/// condition, and the client when it works.
async fn check(
    resolved: Result<Resolved, Problem>,
) -> ((bool, &'static str, String), Option<Resolved>) {
    let resolved = match resolved {
        Ok(r) => r,
        Err(p) => return ((false, p.reason, p.message), None),
    };
    match resolved.client.check().await {
        Ok(()) => {
            let message = format!(
                "{} answered a read-only call with these credentials",
                resolved.provider.label()
            );
            ((true, "Connected", message), Some(resolved))
        }
        Err(e) => ((false, reason_of(&e), e.to_string()), None),
    }
}

/// The drift interval of a connection's spec (default 10 minutes, at least 10 s).
fn drift_interval(spec: Option<&str>) -> Duration {
    spec.and_then(crate::rules::parse_duration)
        .map(|d| d.max(Duration::from_secs(10)))
        .unwrap_or(Duration::from_secs(600))
}

/// Runs the drift check when it is due; when the next check is due.
async fn drift_if_due(
    ctx: &ConnectionContext,
    served: &super::drift::Served<'_>,
    working: Option<&Resolved>,
    interval: Duration,
) -> Duration {
    let Some(resolved) = working else {
        return interval;
    };
    let due = lock(&ctx.last_drift)
        .get(&resolved.label)
        .is_none_or(|last| last.elapsed() + DRIFT_SLACK >= interval);
    if due {
        lock(&ctx.last_drift).insert(resolved.label.clone(), std::time::Instant::now());
        match super::drift::check(
            &ctx.shared,
            (&ctx.apps, &ctx.keys),
            served,
            &resolved.client,
        )
        .await
        {
            Ok(0) => debug!(connection = resolved.label, "drift check: nothing drifted"),
            Ok(n) => info!(
                connection = resolved.label,
                repaired = n,
                "drift check: pushing again"
            ),
            Err(error) => {
                info!(connection = resolved.label, %error, "drift check failed; tried again at the next interval")
            }
        }
    }
    interval
}

/// The condition reason for a failed check, from the error's kind.
fn reason_of(error: &providers::GatewayError) -> &'static str {
    use providers::GatewayError as E;
    match error {
        E::Unauthorized { .. } => "InvalidCredentials",
        E::NotFound { .. } => "NotFound",
        E::Unreachable { .. } | E::Uncertain { .. } => "Unreachable",
        E::Throttled { .. } => "Throttled",
        _ => "GatewayError",
    }
}

fn ready_condition(
    previous: &[Condition],
    (ready, reason, message): (bool, &'static str, String),
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if ready { "True" } else { "False" };
    let last_transition_time = match previous.iter().find(|c| c.type_ == "Ready") {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Time(now),
    };
    Condition {
        type_: "Ready".into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time,
        observed_generation: generation,
    }
}

async fn write_status<K>(
    api: &Api<K>,
    object: &K,
    status: GatewayConnectionStatus,
) -> kube::Result<()>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"uid": object.meta().uid},
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map(|_| ())
}

/// The next check: the sooner of the connection check and the drift check.
fn next_check(ready: bool, drift: Duration) -> Action {
    Action::requeue(if ready { RECHECK.min(drift) } else { RETRY })
}

async fn reconcile_namespaced(
    object: Arc<GatewayConnection>,
    ctx: Arc<ConnectionContext>,
) -> Result<Action, kube::Error> {
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<GatewayConnection> = Api::namespaced(ctx.client.clone(), &namespace);
    let step = in_use_step(&ctx, &object);
    match step {
        connection_use::Step::Add => connection_use::hold(&api, &object.name_any()).await?,
        connection_use::Step::Release => {
            connection_use::mark(&api, &object, false).await?;
            ctx.clients
                .forget(object.meta().uid.as_deref().unwrap_or_default());
            return Ok(Action::await_change());
        }
        connection_use::Step::Wait | connection_use::Step::Keep => {}
    }
    let label = format!("GatewayConnection/{}", object.name_any());
    let resolved = build(
        &ctx.client,
        &ctx.clients,
        label,
        &*object,
        view_of_namespaced(&object),
        (&namespace, true),
        Purpose::Sync,
    )
    .await;
    let name = object.name_any();
    let served = super::drift::Served {
        kind: ConnectionKind::GatewayConnection,
        name: &name,
        namespace: Some(&namespace),
    };
    let drift = object.spec.drift_check_interval.as_deref();
    let previous = object.status.clone();
    let next = report(&ctx, &api, &*object, resolved, &served, drift, previous).await?;
    Ok(match step {
        // Being deleted: look again soon for the last user's cleanup.
        connection_use::Step::Wait => Action::requeue(IN_USE_RECHECK),
        _ => next,
    })
}

/// The connection's in-use step, from the kinds' caches.
fn in_use_step(ctx: &ConnectionContext, object: &GatewayConnection) -> connection_use::Step {
    let namespace = object.namespace().unwrap_or_default();
    let users = connection_use::users(&ctx.apps, &ctx.keys, &namespace, &object.name_any());
    let deleting = object.meta().deletion_timestamp.is_some();
    let held = object
        .finalizers()
        .iter()
        .any(|f| f == CONNECTION_IN_USE_FINALIZER);
    connection_use::step(deleting, users, held)
}

async fn reconcile_cluster(
    object: Arc<ClusterGatewayConnection>,
    ctx: Arc<ConnectionContext>,
) -> Result<Action, kube::Error> {
    let label = format!("ClusterGatewayConnection/{}", object.name_any());
    let resolved = match ctx.own_namespace.as_deref() {
        Some(own) => {
            build(
                &ctx.client,
                &ctx.clients,
                label,
                &*object,
                view_of_cluster(&object),
                (own, false),
                Purpose::Sync,
            )
            .await
        }
        None => Err(Problem::new(
            "ConnectionNotReady",
            "keysmith does not know its own namespace (set --record-key-secret or POD_NAMESPACE)",
        )),
    };
    let name = object.name_any();
    let served = super::drift::Served {
        kind: ConnectionKind::ClusterGatewayConnection,
        name: &name,
        namespace: None,
    };
    let api: Api<ClusterGatewayConnection> = Api::all(ctx.client.clone());
    let drift = object.spec.drift_check_interval.as_deref();
    let previous = object.status.clone();
    report(&ctx, &api, &*object, resolved, &served, drift, previous).await
}

/// Checks the connection, runs a drift check when due, writes `Ready`.
async fn report<K>(
    ctx: &ConnectionContext,
    api: &Api<K>,
    object: &K,
    resolved: Result<Resolved, Problem>,
    served: &super::drift::Served<'_>,
    drift: Option<&str>,
    previous: Option<GatewayConnectionStatus>,
) -> Result<Action, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let (outcome, working) = check(resolved).await;
    let ready = outcome.0;
    let interval = drift_if_due(ctx, served, working.as_ref(), drift_interval(drift)).await;
    let now = Timestamp::now();
    let generation = object.meta().generation;
    let previous = previous.unwrap_or_default();
    let condition = ready_condition(&previous.conditions, outcome, generation, now);
    // Idle costs no write: the status is written when the result changes,
    // and its lastCheckTime refreshed at most every RECHECK.
    let fresh = |t: &Time| now.duration_since(t.0).unsigned_abs() < RECHECK;
    let unchanged = previous.conditions.as_slice() == std::slice::from_ref(&condition)
        && previous.observed_generation == generation
        && previous.last_check_time.as_ref().is_some_and(fresh);
    if !unchanged {
        let status = GatewayConnectionStatus {
            last_check_time: Some(Time(now)),
            observed_generation: generation,
            conditions: vec![condition],
        };
        write_status(api, object, status).await?;
    }
    Ok(next_check(ready, interval))
}

fn retry_later<K>(_: Arc<K>, error: &kube::Error, _: Arc<ConnectionContext>) -> Action {
    debug!(%error, "connection check failed to write its status");
    Action::requeue(RETRY)
}

/// The connections whose spec changed (generation), with the store that
/// holds them: a status write does not trigger the next check; checks repeat
/// on their own schedule.
fn changed<K>(
    api: Api<K>,
) -> (
    impl futures::Stream<Item = Result<K, watcher::Error>> + Send,
    kube::runtime::reflector::Store<K>,
)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = kube::runtime::reflector::store::<K>();
    // The kinds' watch backoff, and errors kept from the controller (whose
    // own backoff would pause every check): after a broken watch, or the
    // 410 a CRD installed a moment ago answers, checks resume within a second.
    let stream = watcher(api, watcher::Config::default())
        .backoff(super::watches::watch_backoff())
        .reflect(writer);
    let stream = super::watches::skip_watch_errors(stream)
        .applied_objects()
        .predicate_filter(predicates::generation, PredicateConfig::default());
    (stream, reader)
}

/// Runs both connection controllers until `shutdown`. Watches only the
/// connection objects (generation changes: status writes do not re-trigger).
pub async fn run(
    ctx: Arc<ConnectionContext>,
    namespace: Option<String>,
    cluster: bool,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let namespaced: Api<GatewayConnection> = match &namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    info!(cluster, "connection controllers started");
    let (namespaced, namespaced_store) = changed(namespaced);
    let one = Controller::for_stream(namespaced, namespaced_store)
        .graceful_shutdown_on(super::shutdown_signal(shutdown.clone()))
        .run(reconcile_namespaced, retry_later, ctx.clone())
        .for_each(|_| async {});
    if !cluster {
        one.await;
        return;
    }
    let (cluster, cluster_store) =
        changed(Api::<ClusterGatewayConnection>::all(ctx.client.clone()));
    let two = Controller::for_stream(cluster, cluster_store)
        .graceful_shutdown_on(super::shutdown_signal(shutdown))
        .run(reconcile_cluster, retry_later, ctx)
        .for_each(|_| async {});
    futures::join!(one, two);
}
