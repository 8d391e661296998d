//! One reconcile, as named steps:
//!
//! ```text
//! decide_on ──▶ observe ──▶ plan ──▶ apply_gateway ──▶ apply_secret ──▶ roll_out ──▶ apply_status ──▶ emit
//! (the copy)    (reads)     (pure)   (gateway copies)  (SecretInPlace)   (workloads)  (takes both)    (events, log)
//! ```
//!
//! The gateway Secrets go first: a gateway accepts a new credential before
//! any client can read it from the output Secret (a pass that fails in
//! between is repaired by the next, which re-plans from the output Secret).
//!
//! Each step has its own error type (`super::error`); the driver wraps them
//! and `error_policy` decides the retry from whether the error is permanent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::core::NamespaceResourceScope;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::{info, warn};

use super::cloud;
use super::context::KindContext;
use super::error::{ApplySecretError, Error, ObserveError, PERMANENT_RETRY, Result};
use super::rollout::{self, RolloutDone};
use super::secrets::{self, ReadFrom, SecretInPlace};
use super::status;
use crate::engine::{self, Intent, Observed, Plan, PlannedEvent, PreviousStatus};
use crate::kinds::CredentialKind;

/// What one pass works from: the engine's [`Observed`] — the one copy of
/// what was read, handed to the engine as it is — and beside it only what
/// the shell needs to act on the plan.
struct Seen<'c> {
    namespace: String,
    intent: Intent,
    now: Timestamp,
    /// The ownership upgrade a found output Secret needs before keysmith's
    /// first apply (`secrets::ownership_upgrade`).
    upgrade: Option<secrets::OwnershipUpgrade>,
    observed: Observed<'c>,
}

/// The reconcile kube-runtime calls, timed and counted.
pub async fn run_reconcile<K>(object: Arc<K>, ctx: Arc<KindContext<K>>) -> Result<Action>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let started = Instant::now();
    let uid = object.meta().uid.clone().unwrap_or_default();
    let result = reconcile(object, &ctx).await;
    ctx.shared
        .metrics
        .record_reconcile(K::KIND, started.elapsed());
    if result.is_ok() {
        ctx.backoff.succeeded(&uid);
    }
    result
}

async fn reconcile<K>(object: Arc<K>, ctx: &KindContext<K>) -> Result<Action>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let _ = ctx.shared.writes.take_status_echo(&*object);
    let Some(decided) = decide_on(object, ctx).await? else {
        // Gone meanwhile: its deletion is on its way through the watch.
        return Ok(Action::await_change());
    };
    let object = decided.object.clone();
    if object.meta().deletion_timestamp.is_some() {
        // Owner references clean up the Secrets; the cloud gateway's app
        // goes first where a finalizer asks for it.
        let retry = super::cloud::clean_up(ctx, &object)
            .await
            .map_err(Error::Cleanup)?;
        return Ok(retry.map_or_else(Action::await_change, Action::requeue));
    }
    let mut events = Vec::new();
    let result = steps(&decided, ctx, &mut events).await;
    emit(&*object, ctx, &events);
    result
}

/// The copy of the object a pass decides on.
pub struct Decided<K> {
    pub object: Arc<K>,
    /// Read from the apiserver because the cache lagged behind our own
    /// status write: later steps must not swap it for the cache's copy.
    pub read_fresh: bool,
}

/// Step 0: the copy of the object this pass decides on. The cache's newest,
/// since the copy the pass was handed may predate a status an earlier pass
/// wrote; and never one older than our own last status write: a pass
/// planning on a status from before it would issue a revision twice or
/// carry out a reset twice. When the cache does not show that write yet,
/// its echo is usually on its way: the pass waits for it (up to
/// [`CATCH_UP`]), and reads the object fresh if it does not come. `None`:
/// gone.
async fn decide_on<K>(
    object: Arc<K>,
    ctx: &KindContext<K>,
) -> Result<Option<Decided<K>>, ObserveError>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    match cache_catches_up(&object, ctx).await {
        Caught::Up(newest) => {
            return Ok(Some(Decided {
                object: newest,
                read_fresh: false,
            }));
        }
        Caught::Gone => return Ok(None),
        Caught::Lagging => {}
    }
    let namespace = object.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.shared.client.clone(), &namespace);
    let fresh =
        api.get_opt(&object.name_any())
            .await
            .map_err(|source| ObserveError::ReadObject {
                object: format!("{}/{namespace}/{}", K::KIND.as_str(), object.name_any()),
                source,
            })?;
    let fresh = fresh.filter(|fresh| fresh.meta().uid == object.meta().uid);
    if let Some(fresh) = &fresh {
        ctx.shared.writes.status_read_fresh(fresh);
    }
    Ok(fresh.map(|fresh| Decided {
        object: Arc::new(fresh),
        read_fresh: true,
    }))
}

/// How long a pass waits for the cache to show its own status write before
/// it reads the object from the apiserver instead.
const CATCH_UP: std::time::Duration = std::time::Duration::from_secs(1);

/// What the cache shows of an object a pass is about to decide on.
enum Caught<K> {
    /// Its newest copy, showing our own last status write (if any).
    Up(Arc<K>),
    /// Not there any more (deleted).
    Gone,
    /// Still without our own last status write after [`CATCH_UP`].
    Lagging,
}

/// Waits (up to [`CATCH_UP`]) for the cache to show our own last status
/// write of `object`; at once when there is none.
async fn cache_catches_up<K: CredentialKind>(object: &Arc<K>, ctx: &KindContext<K>) -> Caught<K> {
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    loop {
        // Listening before looking: a move between the two is not missed.
        let moved = ctx.cache_moved.notified();
        let mut moved = std::pin::pin!(moved);
        moved.as_mut().enable();
        let Some(newest) = ctx.cached(object) else {
            return Caught::Gone;
        };
        if !ctx.shared.writes.status_lags(&*newest) {
            return Caught::Up(newest);
        }
        if tokio::time::timeout_at(deadline, moved).await.is_err() {
            return Caught::Lagging;
        }
    }
}

/// The steps of one pass. Each step that decided events (the engine's
/// plan and rollout settlement, the cloud sync) adds them to `events` once
/// it has done what they tell; `emit` sends them, also when a later step
/// fails.
async fn steps<K>(
    decided: &Decided<K>,
    ctx: &KindContext<K>,
    events: &mut Vec<PlannedEvent>,
) -> Result<Action>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let object = &decided.object;
    let mut seen = observe(object, ctx).await?;
    let mut plan = plan(&seen)?;
    if !plan.gateway.is_empty() && engine::gateway::needs_others(&seen.intent) {
        plan = with_gateway_others(&mut seen, ctx).await?;
    }
    let pass = cloud::Pass {
        namespace: &seen.namespace,
        intent: &seen.intent,
        plan: &plan,
        now: seen.now,
    };
    let pending = seen.observed.pending.as_ref();
    let pushed = match cloud::before_secret(ctx, &**object, &pass, pending).await {
        cloud::Before::Failed(synced) => {
            events.extend_from_slice(&synced.events);
            return Ok(cloud_failed(object, ctx, &synced, seen.now).await);
        }
        cloud::Before::Pushed { status, staged } => Some((status, staged)),
        cloud::Before::Nothing => None,
    };
    let mut applied = apply_secret(object, ctx, &seen, plan).await?;
    if pushed.as_ref().is_some_and(|p| p.1) || pending.is_some() {
        clear_pending(ctx, &seen, &applied).await;
    }
    let synced = sync_cloud(object, ctx, &seen, &mut applied, pushed.map(|p| p.0)).await;
    let rollout = rollout::roll_out(&**object, ctx, &seen.namespace, &applied, seen.now).await;
    events.extend_from_slice(rollout.events());
    status::apply_status(ctx, decided, &seen.intent, &applied, &rollout, seen.now).await?;
    if let Some(synced) = &synced {
        if let Err(error) = cloud::write_status(ctx, object, synced, seen.now).await {
            warn!(%error, "writing status.gateway failed; the next pass writes it");
        }
        events.extend_from_slice(&synced.events);
    }
    events.extend_from_slice(&applied.plan().events);
    log_pass(&**object, &seen, &applied);
    Ok(match synced.is_some_and(|s| s.transient) {
        true => Action::requeue(CLOUD_RETRY),
        false => next_action(applied.plan(), &rollout),
    })
}

/// Values fixed for a cloud gateway push are in the Secret now: the
/// pending entry goes (a failure is repaired by the next pass).
async fn clear_pending<K: CredentialKind>(
    ctx: &KindContext<K>,
    seen: &Seen<'_>,
    applied: &SecretInPlace,
) {
    if applied.plan().secret.is_none() {
        return;
    }
    let api: Api<Secret> = Api::namespaced(ctx.shared.client.clone(), &seen.namespace);
    if let Err(error) = super::pending::clear(&api, &seen.intent.secret_name).await {
        warn!(%error, "removing the pending entry failed; the next pass removes it");
    }
}

/// The gateway did not take a new revision: the Secret, the status and the
/// workloads stay as they are; only `GatewaySynced` and the sync's event
/// (emitted with the pass's others) say why.
async fn cloud_failed<K>(
    object: &Arc<K>,
    ctx: &KindContext<K>,
    synced: &cloud::Synced,
    now: Timestamp,
) -> Action
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    if let Err(error) = cloud::write_status(ctx, object, synced, now).await {
        warn!(%error, "writing status.gateway failed; the next pass writes it");
    }
    Action::requeue(match synced.transient {
        true => CLOUD_RETRY,
        false => PERMANENT_RETRY,
    })
}

/// How soon a sync that failed for a reason that may pass is tried again.
const CLOUD_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

/// Step 3b, with `spec.connectionRef`: the cloud gateway sync; Ready waits
/// for it (SPEC §11.2: Ready means the Secret and the gateway both hold the
/// current revision).
async fn sync_cloud<K>(
    object: &Arc<K>,
    ctx: &KindContext<K>,
    seen: &Seen<'_>,
    applied: &mut SecretInPlace,
    pushed: Option<crate::api::CloudGatewayStatus>,
) -> Option<super::cloud::Synced>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let key = &seen.intent.secret_data_key;
    let written = applied
        .plan()
        .secret
        .as_ref()
        .and_then(|s| s.data.get(key).cloned());
    let found = || {
        seen.observed
            .secret
            .as_ref()
            .and_then(|s| s.data.get(key).cloned().flatten())
    };
    let value = written.or_else(found);
    let pass = cloud::Pass {
        namespace: &seen.namespace,
        intent: &seen.intent,
        plan: applied.plan(),
        now: seen.now,
    };
    let synced = cloud::sync(ctx, &**object, &pass, value.as_deref(), pushed).await?;
    if !synced.ok {
        applied.hold_ready(synced.reason, &synced.message);
    }
    Some(synced)
}

/// Step 1: read what the pass decides on.
async fn observe<'c, K>(object: &Arc<K>, ctx: &'c KindContext<K>) -> Result<Seen<'c>, ObserveError>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let namespace = object.namespace().ok_or_else(|| {
        ObserveError::NoNamespace(format!("{}/{}", K::KIND.as_str(), object.name_any()))
    })?;
    let intent = object.intent();
    ctx.shared
        .writes
        .forget_secret(&namespace, &intent.secret_name);
    let api: Api<Secret> = Api::namespaced(ctx.shared.client.clone(), &namespace);
    let status = object.previous_status();
    let from = read_from(&**object, ctx, &status, &namespace, &intent);
    let mut secret = match from {
        None => None,
        Some(from) => secrets::fetch_secret(&api, &namespace, &intent.secret_name, from).await?,
    };
    let own_uid = object.meta().uid.clone();
    let record_key = ctx.shared.record_key.as_ref();
    let pending = secret
        .as_mut()
        .and_then(|s| super::pending::take(s, record_key, own_uid.as_deref().unwrap_or_default()));
    let gateway = fetch_gateway(ctx, &api, &namespace, &intent, from).await?;
    let source = match &intent.secret_from {
        None => None,
        Some((name, key)) => Some(secrets::fetch_source(&api, &namespace, name, key).await?),
    };
    let is_live = |uid: &str| own_uid.as_deref() != Some(uid) && ctx.is_live(uid);
    let see =
        |found: &Secret| secrets::observe_secret(found, &**object, &intent, &status, &is_live);
    let observed = Observed {
        secret: secret.as_ref().map(see),
        gateway: gateway.iter().map(|(n, s)| (n.clone(), see(s))).collect(),
        key_held_by: ctx.key_held_by(object, &intent),
        source,
        status,
        record_key,
        gateway_others: Vec::new(),
        pending,
    };
    Ok(Seen {
        upgrade: secret.as_ref().and_then(secrets::ownership_upgrade),
        now: engine::truncate_to_second(Timestamp::now()),
        namespace,
        intent,
        observed,
    })
}

/// The gateway Secrets found (`spec.gateway`), by name; before the first
/// issue, only those the Secret watch has seen are read.
async fn fetch_gateway<K: CredentialKind>(
    ctx: &KindContext<K>,
    api: &Api<Secret>,
    namespace: &str,
    intent: &Intent,
    from: Option<ReadFrom>,
) -> Result<BTreeMap<String, Secret>, ObserveError> {
    let mut gateway = BTreeMap::new();
    for name in intent.gateway.iter().flat_map(engine::gateway::names) {
        ctx.shared.writes.forget_secret(namespace, &name);
        let absent = || super::lock(&ctx.shared.secret_names).surely_absent(namespace, &name);
        let from = from.or_else(|| (!absent()).then_some(ReadFrom::WatchCache));
        let found = match from {
            None => None,
            Some(from) => secrets::fetch_secret(api, namespace, &name, from).await?,
        };
        if let Some(found) = found {
            gateway.insert(name, found);
        }
    }
    Ok(gateway)
}

/// Step 2b, only in a pass that writes a gateway Secret with a custom value
/// (`engine::gateway::needs_others`): reads the other
/// resources' gateway Secrets of the layout and plans again, so the
/// duplicate check (engine guard `check_gateway_unique`) sees them.
async fn with_gateway_others<K>(seen: &mut Seen<'_>, ctx: &KindContext<K>) -> Result<Plan>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    if let Some(gateway) = &seen.intent.gateway {
        let api: Api<Secret> = Api::namespaced(ctx.shared.client.clone(), &seen.namespace);
        let own = engine::gateway::names(gateway);
        seen.observed.gateway_others =
            super::gateway_others::gather(&api, &seen.namespace, gateway, &own).await?;
    }
    plan(seen)
}

/// Where to read the output Secret, or `None` to read nothing. A resource
/// never issued (no revision in status, none written by this process) almost
/// never has a Secret yet: if the Secret watch shows none, nothing is read;
/// otherwise it is read from the apiserver's watch cache. A stale "absent"
/// cannot hurt: the Secret is then created, and a create fails on one that
/// appeared meanwhile (409; the retry reads it).
fn read_from<K: CredentialKind>(
    object: &K,
    ctx: &KindContext<K>,
    previous: &PreviousStatus,
    namespace: &str,
    intent: &Intent,
) -> Option<ReadFrom> {
    let never_issued = previous.revision.is_none() && !ctx.shared.writes.has_status_record(object);
    if !never_issued {
        return Some(ReadFrom::Quorum);
    }
    let absent =
        super::lock(&ctx.shared.secret_names).surely_absent(namespace, &intent.secret_name);
    (!absent).then_some(ReadFrom::WatchCache)
}

/// Step 2: the pure engine decides.
fn plan(seen: &Seen<'_>) -> Result<Plan> {
    Ok(engine::plan(
        &seen.intent,
        &seen.observed,
        seen.now,
        &mut engine::generate::os_rng(),
    )?)
}

/// Step 3b: the gateway Secrets (3a), then the output Secret, before the
/// status. A write the apiserver refuses for good (invalid, forbidden)
/// becomes Ready=False with its message and a Warning event, and the next
/// try waits for a change or a long backoff instead of a retry every few
/// seconds.
async fn apply_secret<K>(
    object: &Arc<K>,
    ctx: &KindContext<K>,
    seen: &Seen<'_>,
    plan: Plan,
) -> Result<SecretInPlace>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let api: Api<Secret> = Api::namespaced(ctx.shared.client.clone(), &seen.namespace);
    let result = match apply_gateway(object, ctx, seen, &plan).await {
        Ok(()) => {
            let found = (seen.observed.secret.as_ref()).map(|_| seen.upgrade.as_ref());
            secrets::apply_output_secret(&api, &**object, &seen.namespace, plan, found).await
        }
        Err(error) => Err(Box::new(secrets::NotApplied { error, plan })),
    };
    let applied = match result {
        Ok(applied) => applied,
        Err(failed) if failed.error.is_permanent() => refused(&**object, ctx, seen, *failed),
        Err(failed) => return Err(failed.error.into()),
    };
    if let Some(rv) = applied.written_version() {
        ctx.shared
            .writes
            .secret_written(&seen.namespace, &seen.intent.secret_name, rv.to_string());
        ctx.shared.events.credential_written();
    }
    if let Some(reason) = applied.plan().rotation {
        ctx.shared.metrics.record_rotation(K::KIND, reason);
    }
    Ok(applied)
}

/// A write the apiserver refused for good: counted and logged, and reported
/// by a plan of its own (Ready=False with the apiserver's words, values
/// redacted) instead of the one that asked for the write.
fn refused<K: CredentialKind>(
    object: &K,
    ctx: &KindContext<K>,
    seen: &Seen<'_>,
    failed: secrets::NotApplied,
) -> SecretInPlace {
    let secrets::NotApplied { error, plan } = failed;
    let values = secret_values(&plan);
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let mut refused = engine::plan_refused(
        &error.name,
        &error.apiserver_message(),
        &values,
        &seen.observed.status,
    );
    refused.requeue_after = Some(PERMANENT_RETRY);
    // Logged as redacted for the status: the apiserver's words may quote the request.
    let error = Error::ApplySecret(error);
    report_failure(object, ctx, &error, &refused.readiness.message);
    SecretInPlace::refused(refused)
}

/// Step 3a: the gateway Secrets, before the output Secret: the new
/// credential is valid at the gateway before a client can learn it.
async fn apply_gateway<K>(
    object: &Arc<K>,
    ctx: &KindContext<K>,
    seen: &Seen<'_>,
    plan: &Plan,
) -> Result<(), ApplySecretError>
where
    K: CredentialKind + Resource<Scope = NamespaceResourceScope>,
{
    let api: Api<Secret> = Api::namespaced(ctx.shared.client.clone(), &seen.namespace);
    for write in &plan.gateway {
        let desired = &write.secret;
        let found = seen.observed.gateway.contains_key(&desired.name);
        let rv = secrets::apply_desired(&api, &**object, &seen.namespace, desired, found).await?;
        let rv = match write.remove_keys.is_empty() {
            true => rv,
            false => {
                secrets::remove_data_keys(&api, &seen.namespace, &desired.name, &write.remove_keys)
                    .await?
            }
        };
        if let Some(rv) = rv {
            ctx.shared
                .writes
                .secret_written(&seen.namespace, &desired.name, rv);
        }
    }
    Ok(())
}

/// The values a planned Secret carries, raw and as the wire shows them
/// (base64): none may reach a message.
fn secret_values(plan: &Plan) -> Vec<String> {
    let gateway = plan.gateway.iter().map(|write| &write.secret);
    let data = plan
        .secret
        .iter()
        .chain(gateway)
        .flat_map(|s| s.data.values());
    data.flat_map(|value| {
        let wire = serde_json::to_value(k8s_openapi::ByteString(value.as_bytes().to_vec()))
            .ok()
            .and_then(|v| v.as_str().map(String::from));
        [Some(value.clone()), wire].into_iter().flatten()
    })
    .collect()
}

/// Step 5: the pass's events, as the engine (and the cloud sync) decided
/// them, queued for the publisher off the reconcile path. The one place a
/// reconcile pass emits.
fn emit<K: CredentialKind>(object: &K, ctx: &KindContext<K>, events: &[PlannedEvent]) {
    ctx.shared.events.emit(object.object_ref(&()), events);
}

/// A log line when the pass wrote or told something.
fn log_pass<K: CredentialKind>(object: &K, seen: &Seen<'_>, applied: &SecretInPlace) {
    let plan = applied.plan();
    if plan.secret.is_some() || !plan.events.is_empty() {
        info!(
            kind = K::KIND.as_str(),
            namespace = seen.namespace,
            name = object.name_any(),
            ready = plan.readiness.ready,
            reason = plan.readiness.reason.as_str(),
            revision = plan.state.as_ref().and_then(|s| s.revision),
            "reconciled"
        );
    }
}

/// Requeue for the next rotation, expiry or deferred restart; otherwise
/// wait for a change.
fn next_action(plan: &Plan, rollout: &RolloutDone) -> Action {
    let due = [plan.requeue_after, rollout.requeue_after()]
        .into_iter()
        .flatten()
        .min();
    match due {
        Some(after) => Action::requeue(after),
        None => Action::await_change(),
    }
}

/// After a failed pass: count it, log it, and retry — a transient error
/// after 5 s doubling per failure in a row, a permanent one after 5 minutes.
pub fn error_policy<K: CredentialKind>(
    object: Arc<K>,
    error: &Error,
    ctx: Arc<KindContext<K>>,
) -> Action {
    report_failure(&*object, &ctx, error, error);
    let uid = object.meta().uid.as_deref().unwrap_or_default();
    Action::requeue(ctx.backoff.failed(uid, error.is_permanent()))
}

/// Counts and logs a failure; `message` names no value.
fn report_failure<K: CredentialKind>(
    object: &K,
    ctx: &KindContext<K>,
    error: &Error,
    message: &dyn std::fmt::Display,
) {
    ctx.shared
        .metrics
        .record_error(K::KIND, error.metric_label());
    warn!(
        kind = K::KIND.as_str(),
        namespace = object.namespace().unwrap_or_default(),
        name = object.name_any(),
        reason = error.metric_label(),
        permanent = error.is_permanent(),
        error = %message,
        "reconcile failed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::GatewayApp;
    use crate::controller::events::EventQueue;
    use crate::controller::{Metrics, Options};
    use kube::runtime::events::Reporter;
    use kube::runtime::{reflector, watcher};
    use std::time::Duration;

    fn app(rv: &str) -> GatewayApp {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "keysmith.dev/v1alpha1", "kind": "GatewayApp",
            "metadata": {"name": "a", "namespace": "ns", "uid": "u", "resourceVersion": rv},
            "spec": {},
        }))
        .unwrap()
    }

    fn rv(caught: Caught<GatewayApp>) -> String {
        match caught {
            Caught::Up(o) => o.meta().resource_version.clone().unwrap(),
            Caught::Gone => "gone".into(),
            Caught::Lagging => "lagging".into(),
        }
    }

    /// A context around an empty cache, with a client that reaches nothing.
    fn context() -> (
        Arc<KindContext<GatewayApp>>,
        reflector::store::Writer<GatewayApp>,
    ) {
        let uri = "http://127.0.0.1:9".parse().unwrap();
        let client = kube::Client::try_from(kube::Config::new(uri)).unwrap();
        let reporter = Reporter {
            controller: "test".into(),
            instance: None,
        };
        let (events, _publisher) = EventQueue::start(client.clone(), reporter);
        let metrics = Arc::new(Metrics::default());
        let shared = super::super::shared_state(client, &Options::default(), metrics, events);
        let (reader, writer) = reflector::store();
        (Arc::new(KindContext::new(shared, reader)), writer)
    }

    #[tokio::test(start_paused = true)]
    async fn a_pass_decides_on_a_copy_that_shows_its_own_last_status_write() {
        let (ctx, mut writer) = context();
        writer.apply_watcher_event(&watcher::Event::Apply(app("1")));
        let handed = Arc::new(app("1"));
        assert_eq!(
            rv(cache_catches_up(&handed, &ctx).await),
            "1",
            "no write of ours: at once"
        );

        // Our write (version 2) is not in the cache yet: the pass waits for its echo.
        ctx.shared.writes.status_written(&*handed, "2".into());
        let waiting = tokio::spawn({
            let (ctx, handed) = (ctx.clone(), handed.clone());
            async move { cache_catches_up(&handed, &ctx).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !waiting.is_finished(),
            "decided on a copy without our write"
        );
        writer.apply_watcher_event(&watcher::Event::Apply(app("2")));
        ctx.cache_moved.notify_waiters();
        assert_eq!(rv(waiting.await.unwrap()), "2");

        // An echo that never comes: given up after CATCH_UP (the pass reads fresh).
        ctx.shared.writes.status_written(&*handed, "3".into());
        let started = tokio::time::Instant::now();
        assert_eq!(rv(cache_catches_up(&handed, &ctx).await), "lagging");
        assert_eq!(started.elapsed(), CATCH_UP);

        // Deleted while the pass waits: gone, not the handed copy.
        let waiting = tokio::spawn({
            let (ctx, handed) = (ctx.clone(), handed.clone());
            async move { cache_catches_up(&handed, &ctx).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        writer.apply_watcher_event(&watcher::Event::Delete(app("4")));
        ctx.shared.writes.forget_object(&app("4"));
        ctx.cache_moved.notify_waiters();
        assert_eq!(rv(waiting.await.unwrap()), "gone");
    }
}
