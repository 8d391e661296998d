//! Never two secrets for one trigger (SPEC §11.2), on the real control plane
//! against the conformance servers: the gateway failing each write call once
//! (5xx, throttling, a timeout after it acted, a connection dropped after it
//! acted), keysmith killed while a create or a reset is in flight, and an
//! idle restart. Each ends with one app at the gateway holding one
//! credential, the one in the output Secret, at the resource's revision —
//! never skipped, never doubled — and the idle restart writes nothing.
//!
//! The order of the Secret write and the push is not assumed (keysmith may
//! push first and keep the pending value in the Secret); only end states and
//! the server's call counts are.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use keysmith::api::names::annotations;
use keysmith::providers::{GatewayApi, RemoteApp};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use support::cloud::{apply_connection, connection_spec, reader, synced_at, wait_connection};
use support::conformance::{self, ConformanceServer, calls, reads, writes};
use support::control_plane;
use support::env::{Env, SETTLE, tail};

/// The fault kinds of the conformance servers.
const KINDS: [&str; 4] = [
    "unavailable",
    "throttled",
    "timeout_after_acting",
    "drop_after_acting",
];

/// The Secret's data key holding a credential fixed before its push.
const PENDING: &str = ".keysmith-pending";

/// Whether the server performs the call before failing it.
fn acts(kind: &str) -> bool {
    kind.ends_with("_after_acting")
}

/// The provider's names of the create and reset operations (its SDK's for
/// Huawei, the Action for Alibaba).
fn write_ops(provider: &str) -> (&'static str, &'static str) {
    match provider {
        "huawei" => ("CreateAnAppV2", "ResettingAppSecretV2"),
        _ => ("CreateApp", "ResetAppSecret"),
    }
}

/// A connection to `server` whose requests time out after `timeout`.
fn timed_connection_spec(server: &ConformanceServer, credentials: &str, timeout: &str) -> Value {
    let mut spec = connection_spec(server, credentials);
    spec["limits"] = json!({"timeout": timeout});
    spec
}

/// The output Secret: (app_key, app_secret, its revision annotation, its data keys).
async fn output_secret(env: &Env, name: &str) -> (String, String, Option<String>, Vec<String>) {
    let secret = env.secrets().get(name).await.unwrap();
    let revision = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::REVISION).cloned());
    let data = secret.data.unwrap_or_default();
    let text = |k: &str| {
        String::from_utf8(
            data.get(k)
                .unwrap_or_else(|| panic!("Secret {name} has no {k}"))
                .0
                .clone(),
        )
        .unwrap()
    };
    (
        text("app_key"),
        text("app_secret"),
        revision,
        data.keys().cloned().collect(),
    )
}

async fn fault(server: &ConformanceServer, operation: &str, kind: &str, delay_ms: u64) {
    server
        .control(
            "POST",
            "/_conformance/faults",
            Some(json!({"operation": operation, "kind": kind, "times": 1, "delay_ms": delay_ms})),
        )
        .await;
}

async fn latency(server: &ConformanceServer, ms: u64) {
    server
        .control("POST", "/_conformance/latency", Some(json!({"ms": ms})))
        .await;
}

/// Waits until the server has seen `operation` at least `n` times.
async fn wait_calls(env: &Env, server: &ConformanceServer, operation: &str, n: u64) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let stats = server.stats().await;
        if calls(&stats, operation) >= n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: never saw {operation} ({stats})\n{}",
            server.provider,
            tail(&env.operator.logs())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every app the server holds (each test's server serves that test alone).
async fn all_apps(server: &ConformanceServer) -> Vec<RemoteApp> {
    let client = reader(server);
    let mut apps = Vec::new();
    let mut page = Some(1);
    while let Some(p) = page {
        let answer = client.list_apps(p).await.expect("listing the apps");
        apps.extend(answer.items);
        page = answer.next;
    }
    apps
}

/// The end state SPEC §11.2 asks for: the resource Ready and GatewaySynced
/// at `revision`, `status.gateway` at that revision with the Secret's
/// AppKey, the Secret's revision annotation equal to it, exactly one app of
/// that name at the gateway holding exactly one pair — the Secret's AppKey
/// and AppSecret. Returns the Secret's (app_key, app_secret).
async fn assert_one_credential(
    env: &Env,
    server: &ConformanceServer,
    resource: &str,
    app_name: &str,
    revision: i64,
) -> (String, String) {
    let app = env
        .wait_app(resource, &format!("synced at revision {revision}"), |a| {
            synced_at(a, revision)
        })
        .await;
    let status = app.status.as_ref().unwrap();
    let gateway = status.gateway.as_ref().unwrap();
    // The Secret follows (or went first); a pending entry goes once the
    // data holds its values.
    let deadline = tokio::time::Instant::now() + SETTLE;
    let (key, secret, secret_revision, data_keys) = loop {
        let found = output_secret(env, resource).await;
        let settled = found.2.as_deref() == Some(revision.to_string().as_str())
            && !found.3.iter().any(|k| k == PENDING);
        if settled || tokio::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let context = format!(
        "{} {resource} at revision {revision}: status {status:#?}\nSecret data keys {data_keys:?}\n{}",
        server.provider,
        tail(&env.operator.logs())
    );
    assert_eq!(
        secret_revision.as_deref(),
        Some(revision.to_string().as_str()),
        "the Secret's revision: {context}"
    );
    assert!(
        !data_keys.iter().any(|k| k == PENDING),
        "the pending entry stayed in the Secret: {context}"
    );
    assert_eq!(
        gateway.key.as_deref(),
        Some(key.as_str()),
        "status.gateway.key: {context}"
    );
    // One app of that name: the servers refuse a second one (a duplicate
    // create would have ended GatewayRejected, not Ready); every app a test's
    // server holds is listed at the end of the test (`assert_apps_are`).
    let remote = reader(server)
        .find_app(app_name)
        .await
        .unwrap()
        .expect("the app at the gateway");
    assert_eq!(
        gateway.id.as_deref(),
        Some(remote.id.as_str()),
        "status.gateway.id: {context}"
    );
    let pairs: Vec<(String, Option<String>)> = remote
        .keys
        .iter()
        .map(|p| {
            (
                p.key.clone(),
                p.secret.as_ref().map(|s| s.expose().to_string()),
            )
        })
        .collect();
    assert_eq!(
        pairs.len(),
        1,
        "one key pair at the gateway (keys: {:?}); {context}",
        pairs.iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    assert_eq!(pairs[0].0, key, "the gateway's AppKey: {context}");
    assert!(
        pairs[0].1.as_deref() == Some(secret.as_str()),
        "the gateway's AppSecret is not the Secret's app_secret (gateway holds {}): {context}",
        match &pairs[0].1 {
            None => "no readable secret",
            Some(_) => "another secret",
        }
    );
    (key, secret)
}

/// The server holds exactly the apps `names`, listed page by page from
/// page 1 as `GatewayApi::list_apps` documents (a drift check will list so).
async fn assert_apps_are(server: &ConformanceServer, names: &[String]) {
    let mut listed: Vec<String> = all_apps(server).await.into_iter().map(|a| a.name).collect();
    listed.sort();
    let mut names = names.to_vec();
    names.sort();
    let mut found = Vec::new();
    for name in &names {
        if reader(server).find_app(name).await.unwrap().is_some() {
            found.push(name.clone());
        }
    }
    assert_eq!(
        listed, names,
        "{}: the apps list_apps(1, 2, ...) shows; find_app finds {found:?}",
        server.provider
    );
}

/// Every credential value seen for each app while a test runs: in its
/// output Secret (`app_secret`, and the secret of a pending entry), by a
/// watch on the Secrets, and at the gateway, by polling the app there. One
/// trigger must add one value to each, never two.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<BTreeMap<String, BTreeSet<String>>>>);

impl Seen {
    fn record(&self, what: String, value: String) {
        self.0
            .lock()
            .unwrap()
            .entry(what)
            .or_default()
            .insert(value);
    }

    fn values(&self, what: &str) -> BTreeSet<String> {
        self.0
            .lock()
            .unwrap()
            .get(what)
            .cloned()
            .unwrap_or_default()
    }

    /// Watches the namespace's Secrets; `secret/NAME` collects NAME's values.
    fn watch_secrets(&self, env: &Env) {
        let api: Api<Secret> = Api::namespaced(env.client.clone(), &env.ns);
        let seen = self.clone();
        tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Some(next) = stream.next().await {
                let Ok(secret) = next else { continue };
                let what = format!("secret/{}", secret.name_any());
                let data = secret.data.unwrap_or_default();
                if let Some(ByteString(bytes)) = data.get("app_secret") {
                    seen.record(what.clone(), String::from_utf8_lossy(bytes).into_owned());
                }
                if let Some(ByteString(bytes)) = data.get(PENDING) {
                    // Sealed JSON with the values; an unreadable one counts as itself.
                    let value = serde_json::from_slice::<Value>(bytes)
                        .ok()
                        .and_then(|v| v["secret"].as_str().map(str::to_string))
                        .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned());
                    seen.record(what, value);
                }
            }
        });
    }

    /// Polls the app `name` at `server`; `gateway/NAME` collects its values.
    fn poll_gateway(
        &self,
        server: &ConformanceServer,
        name: String,
    ) -> tokio::task::JoinHandle<()> {
        let client = reader(server);
        let seen = self.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(Some(app)) = client.find_app(&name).await {
                    for pair in app.keys {
                        if let Some(secret) = pair.secret {
                            seen.record(format!("gateway/{name}"), secret.expose().to_string());
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    /// The Secret and the gateway saw exactly `values` for the app.
    fn assert_only(&self, resource: &str, app_name: &str, values: &[&String]) {
        let want: BTreeSet<String> = values.iter().map(|v| v.to_string()).collect();
        for what in [format!("secret/{resource}"), format!("gateway/{app_name}")] {
            let seen = self.values(&what);
            assert!(
                seen.is_subset(&want),
                "{what}: {} credential values seen for {} issued: another secret for the same trigger",
                seen.len(),
                want.len()
            );
        }
        assert_eq!(
            self.values(&format!("secret/{resource}")),
            want,
            "secret/{resource}: every issued value is seen"
        );
    }
}

fn k8s_name(kind: &str) -> String {
    kind.replace('_', "-")
}

/// The app name at the gateway (Alibaba: 4–26 characters, a letter first).
fn gateway_name(kind: &str) -> String {
    format!("f_{kind}")
}

fn assert_no_credential_logged(env: &Env, values: &[&str]) {
    let logs = env.operator.logs();
    for value in values
        .iter()
        .copied()
        .chain([conformance::ACCESS_KEY_SECRET])
    {
        assert!(!logs.contains(value), "a credential reached the log");
    }
}

// --- 1. the gateway fails each write call once -----------------------------

/// Per fault kind its own server, connection and app, all in one namespace
/// under one keysmith: the create call fails once with that kind, then the
/// reset call does.
async fn each_write_call_fails_once(provider: &'static str) {
    let (create, reset) = write_ops(provider);
    let env = Env::new(&format!("faults-{provider}")).await;
    env.gateway_credentials().await;
    let servers: Vec<(&str, ConformanceServer)> = KINDS
        .iter()
        .map(|kind| (*kind, ConformanceServer::start(provider)))
        .collect();
    for (kind, server) in &servers {
        // A 2 s request timeout; the server answers a timeout fault after 5 s.
        apply_connection(
            &env,
            &k8s_name(kind),
            timed_connection_spec(server, "gw-credentials", "2s"),
        )
        .await;
    }
    for (kind, _) in &servers {
        wait_connection(&env, &k8s_name(kind), "True").await;
    }
    let seen = Seen::default();
    seen.watch_secrets(&env);
    let pollers: Vec<_> = servers
        .iter()
        .map(|(kind, server)| seen.poll_gateway(server, gateway_name(kind)))
        .collect();

    // The create call fails once.
    for (kind, server) in &servers {
        server.zero_stats().await;
        fault(server, create, kind, 5_000).await;
        env.apply_app(
            &k8s_name(kind),
            json!({"appName": gateway_name(kind), "connectionRef": {"name": k8s_name(kind)}}),
        )
        .await;
    }
    let mut first = BTreeMap::new();
    for (kind, server) in &servers {
        assert_one_credential(&env, server, &k8s_name(kind), &gateway_name(kind), 1).await;
    }
    // Let any late pass play out before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (kind, server) in &servers {
        let issued =
            assert_one_credential(&env, server, &k8s_name(kind), &gateway_name(kind), 1).await;
        seen.assert_only(&k8s_name(kind), &gateway_name(kind), &[&issued.1]);
        let stats = server.stats().await;
        // Failed without acting: a second create was needed. Acted: the app
        // was found by name and AppKey, no second create.
        let creates = if acts(kind) { 1 } else { 2 };
        assert_eq!(
            calls(&stats, create),
            creates,
            "{provider} {kind} on {create}: create calls ({stats})"
        );
        assert_eq!(
            writes(&stats),
            creates,
            "{provider} {kind} on {create}: no write but the creates ({stats})"
        );
        eprintln!("{provider} {kind} on {create}: {stats}");
        first.insert(*kind, issued);
    }

    // The reset call fails once.
    for (kind, server) in &servers {
        server.zero_stats().await;
        fault(server, reset, kind, 5_000).await;
        env.request_reset(&k8s_name(kind), "r2").await;
    }
    for (kind, server) in &servers {
        assert_one_credential(&env, server, &k8s_name(kind), &gateway_name(kind), 2).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (kind, server) in &servers {
        let (key, secret) =
            assert_one_credential(&env, server, &k8s_name(kind), &gateway_name(kind), 2).await;
        let (key1, secret1) = &first[kind];
        seen.assert_only(&k8s_name(kind), &gateway_name(kind), &[secret1, &secret]);
        assert_eq!(&key, key1, "{provider} {kind}: the AppKey stays on a reset");
        assert_ne!(
            &secret, secret1,
            "{provider} {kind}: the reset changed nothing"
        );
        let stats = server.stats().await;
        let resets = calls(&stats, reset);
        // A reset that failed without acting must be sent again; one that
        // acted may be sent again, with the same value (checked above).
        let range = if acts(kind) { 1..=2 } else { 2..=2 };
        assert!(
            range.contains(&resets),
            "{provider} {kind} on {reset}: {resets} reset calls ({stats})"
        );
        assert_eq!(
            writes(&stats),
            resets,
            "{provider} {kind} on {reset}: no write but the resets ({stats})"
        );
        assert_eq!(
            calls(&stats, create),
            0,
            "{provider} {kind}: no create on a reset ({stats})"
        );
        eprintln!("{provider} {kind} on {reset}: {stats}");
        assert_no_credential_logged(&env, &[&secret, secret1]);
    }
    for poller in pollers {
        poller.abort();
    }
    for (kind, server) in &servers {
        assert_apps_are(server, &[gateway_name(kind)]).await;
    }
}

#[tokio::test]
async fn huawei_each_write_call_failing_once_leaves_one_credential() {
    if control_plane::skipped() {
        return;
    }
    each_write_call_fails_once("huawei").await;
}

#[tokio::test]
async fn alibaba_each_write_call_failing_once_leaves_one_credential() {
    if control_plane::skipped() {
        return;
    }
    each_write_call_fails_once("alibaba").await;
}

// --- 2. keysmith killed mid-sync -------------------------------------------

/// Kills keysmith (SIGKILL) as soon as every server has seen `operation`,
/// lets the slow server's held call play out (it acts after its latency, or
/// never if the dropped connection ends it), and starts keysmith again.
async fn kill_when_seen(env: &mut Env, servers: &[(&str, &ConformanceServer)], operation: &str) {
    for (_, server) in servers {
        wait_calls(env, server, operation, 1).await;
    }
    env.operator.kill();
    for (_, server) in servers {
        latency(server, 0).await;
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    env.operator.restart();
}

/// Two servers under one keysmith: at `acted` the write call acts at once and
/// its answer is held back 20 s; at `slow` every answer waits 3 s before the
/// server acts. keysmith is killed (SIGKILL) as soon as both servers have
/// seen the create call, started again, and the same once more for a reset.
async fn killed_mid_sync(provider: &'static str) {
    let (create, reset) = write_ops(provider);
    let mut env = Env::new(&format!("kill-{provider}")).await;
    env.gateway_credentials().await;
    let acted = ConformanceServer::start(provider);
    let slow = ConformanceServer::start(provider);
    let servers = [("acted", &acted), ("slow", &slow)];
    for (name, server) in servers {
        apply_connection(
            &env,
            name,
            timed_connection_spec(server, "gw-credentials", "30s"),
        )
        .await;
    }
    for (name, _) in servers {
        wait_connection(&env, name, "True").await;
    }
    let app_name = |name: &str| format!("k_{name}_app");
    let seen = Seen::default();
    seen.watch_secrets(&env);
    let pollers: Vec<_> = servers
        .iter()
        .map(|(name, server)| seen.poll_gateway(server, app_name(name)))
        .collect();

    // Killed while the create is in flight.
    for (_, server) in servers {
        server.zero_stats().await;
    }
    fault(&acted, create, "timeout_after_acting", 20_000).await;
    latency(&slow, 3_000).await;
    for (name, _) in servers {
        env.apply_app(
            name,
            json!({"appName": app_name(name), "connectionRef": {"name": name}}),
        )
        .await;
    }
    kill_when_seen(&mut env, &servers, create).await;
    for (name, server) in servers {
        assert_one_credential(&env, server, name, &app_name(name), 1).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut first = BTreeMap::new();
    for (name, server) in servers {
        let issued = assert_one_credential(&env, server, name, &app_name(name), 1).await;
        seen.assert_only(name, &app_name(name), &[&issued.1]);
        let stats = server.stats().await;
        eprintln!("{provider} killed during {create} at {name}: {stats}");
        if name == "acted" {
            // The first create acted: found by name and AppKey, not repeated.
            assert_eq!(calls(&stats, create), 1, "{provider} {name}: {stats}");
        }
        first.insert(name, issued);
    }

    // Killed while the reset is in flight.
    for (_, server) in servers {
        server.zero_stats().await;
    }
    fault(&acted, reset, "timeout_after_acting", 20_000).await;
    latency(&slow, 3_000).await;
    for (name, _) in servers {
        env.request_reset(name, "r2").await;
    }
    kill_when_seen(&mut env, &servers, reset).await;
    for (name, server) in servers {
        assert_one_credential(&env, server, name, &app_name(name), 2).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (name, server) in servers {
        let (key, secret) = assert_one_credential(&env, server, name, &app_name(name), 2).await;
        let (key1, secret1) = &first[name];
        seen.assert_only(name, &app_name(name), &[secret1, &secret]);
        assert_eq!(&key, key1, "{provider} {name}: the AppKey stays on a reset");
        assert_ne!(
            &secret, secret1,
            "{provider} {name}: the reset changed nothing"
        );
        let stats = server.stats().await;
        eprintln!("{provider} killed during {reset} at {name}: {stats}");
        assert_eq!(calls(&stats, create), 0, "{provider} {name}: {stats}");
        // After a restart the call count is not bounded: the process that
        // remembered its last status.gateway is gone, and a pass may repeat
        // the reset on a cache older than its own write. What holds is what
        // SPEC §11.2 asks: the same value every time (`seen` above), one
        // app, no create. The count is reported, not asserted.
        eprintln!(
            "{provider} {name}: {} reset calls after the restart",
            calls(&stats, reset)
        );
        assert_no_credential_logged(&env, &[&secret, secret1]);
    }
    for poller in pollers {
        poller.abort();
    }
    for (name, server) in servers {
        assert_apps_are(server, &[app_name(name)]).await;
    }
}

#[tokio::test]
async fn huawei_keysmith_killed_mid_sync_leaves_one_credential() {
    if control_plane::skipped() {
        return;
    }
    killed_mid_sync("huawei").await;
}

#[tokio::test]
async fn alibaba_keysmith_killed_mid_sync_leaves_one_credential() {
    if control_plane::skipped() {
        return;
    }
    killed_mid_sync("alibaba").await;
}

// --- 3. an idle restart makes no gateway writes ----------------------------

#[tokio::test]
async fn an_idle_restart_makes_no_gateway_writes() {
    if control_plane::skipped() {
        return;
    }
    let mut env = Env::new("idle-restart").await;
    env.gateway_credentials().await;
    let servers = [
        ConformanceServer::start("huawei"),
        ConformanceServer::start("alibaba"),
    ];
    for server in &servers {
        apply_connection(
            &env,
            server.provider,
            timed_connection_spec(server, "gw-credentials", "10s"),
        )
        .await;
    }
    for server in &servers {
        wait_connection(&env, server.provider, "True").await;
    }
    let resource = |provider: &str, i: usize| format!("{provider}-{i}");
    let app_name = |provider: &str, i: usize| format!("idle_{provider}_{i}");
    for server in &servers {
        for i in 0..3 {
            env.apply_app(
                &resource(server.provider, i),
                json!({"appName": app_name(server.provider, i),
                       "connectionRef": {"name": server.provider}}),
            )
            .await;
        }
    }
    // One of each has been reset as well.
    for server in &servers {
        for i in 0..3 {
            assert_one_credential(
                &env,
                server,
                &resource(server.provider, i),
                &app_name(server.provider, i),
                1,
            )
            .await;
        }
        env.request_reset(&resource(server.provider, 0), "r2").await;
    }
    let mut before = BTreeMap::new();
    for server in &servers {
        for i in 0..3 {
            let revision = if i == 0 { 2 } else { 1 };
            let name = resource(server.provider, i);
            let issued =
                assert_one_credential(&env, server, &name, &app_name(server.provider, i), revision)
                    .await;
            before.insert(name, (issued, revision));
        }
    }

    for server in &servers {
        server.zero_stats().await;
    }
    env.operator.stop();
    env.operator.restart();
    tokio::time::sleep(Duration::from_secs(10)).await;
    for server in &servers {
        let stats = server.stats().await;
        eprintln!(
            "{}: after an idle restart, {} reads, {} writes: {stats}",
            server.provider,
            reads(&stats),
            writes(&stats)
        );
        assert_eq!(
            writes(&stats),
            0,
            "{}: an idle restart wrote at the gateway ({stats})\n{}",
            server.provider,
            tail(&env.operator.logs())
        );
    }
    for server in &servers {
        for i in 0..3 {
            let name = resource(server.provider, i);
            let (issued, revision) = &before[&name];
            let now = assert_one_credential(
                &env,
                server,
                &name,
                &app_name(server.provider, i),
                *revision,
            )
            .await;
            assert_eq!(&now, issued, "{name}: the restart changed the credential");
        }
        let names: Vec<String> = (0..3).map(|i| app_name(server.provider, i)).collect();
        assert_apps_are(server, &names).await;
    }
}
