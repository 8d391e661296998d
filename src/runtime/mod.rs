//! `keysmith run`: wiring the controllers, the HTTP endpoints, leader
//! election and signals together. (The allocator is chosen in `main.rs`.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info};

use crate::controller::{self, Health, Metrics, Options, shutdown_signal};

pub mod http;
pub mod leader;
pub mod metrics_auth;
mod signals;
pub mod tls;

use leader::{Election, LeaderOptions};
use signals::watch_signals;

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub controller: Options,
    pub metrics_addr: Option<SocketAddr>,
    /// Serve `/metrics` over HTTPS to authorized callers only.
    pub metrics_secure: Option<SecureMetrics>,
    pub health_addr: Option<SocketAddr>,
    pub leader: Option<LeaderOptions>,
}

#[derive(Clone, Debug, Default)]
pub struct SecureMetrics {
    /// Holds `tls.crt` and `tls.key`; without it a self-signed certificate is made at start.
    pub cert_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no Kubernetes configuration found (KUBECONFIG, ~/.kube/config or in-cluster): {0}")]
    Config(#[source] kube::Error),
    #[error("{0}")]
    Crds(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("metrics TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("leader election: {0}")]
    Leader(#[from] kube_lease_manager::LeaseManagerError),
    #[error("lost the leader lease; exiting so that a fresh start competes again")]
    LostLeadership,
    #[error(transparent)]
    RecordKey(#[from] controller::record_key::RecordKeyError),
}

pub async fn run(config: RunConfig) -> Result<(), RunError> {
    let client = kube::Client::try_default()
        .await
        .map_err(RunError::Config)?;
    let namespace = &config.controller.namespace;
    patiently(
        || controller::check_crds(&client, namespace),
        controller::CrdCheck::is_transient,
    )
    .await
    .map_err(|e| RunError::Crds(e.to_string()))?;
    let mut config = config;
    if let Some(at) = &config.controller.record_key_secret {
        let load = || controller::record_key::load(&client, at);
        let key = patiently(load, controller::record_key::RecordKeyError::is_transient).await?;
        config.controller.record_key = Some(key);
    }

    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::new(2));
    let signals = watch_signals();

    let servers = start_servers(&config, &client, &metrics, &health, &signals).await?;

    let result = match &config.leader {
        None => {
            controller::run(
                client,
                config.controller.clone(),
                metrics,
                health,
                signals.clone(),
            )
            .await;
            Ok(())
        }
        Some(options) => {
            run_as_candidate(client, &config, options, metrics, health, signals.clone()).await
        }
    };
    for server in servers {
        server.abort();
    }
    result
}

/// How long a start-up step keeps asking an apiserver that cannot answer
/// (a restart as keysmith starts) before keysmith gives up and exits.
const STARTUP_PATIENCE: Duration = Duration::from_secs(60);

/// Runs a start-up step again while its error is `transient` (250 ms
/// doubling up to 4 s, for up to [`STARTUP_PATIENCE`]); any other error, or
/// the last one, is returned.
async fn patiently<T, E, Fut>(
    mut step: impl FnMut() -> Fut,
    transient: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    Fut: std::future::Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let deadline = tokio::time::Instant::now() + STARTUP_PATIENCE;
    let mut delay = Duration::from_millis(250);
    loop {
        match step().await {
            Err(error) if transient(&error) && tokio::time::Instant::now() + delay < deadline => {
                tracing::warn!(%error, "start-up: the apiserver cannot answer yet; asking again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(4));
            }
            done => return done,
        }
    }
}

/// The probe and metrics listeners, bound before the controllers start.
async fn start_servers(
    config: &RunConfig,
    client: &kube::Client,
    metrics: &Arc<Metrics>,
    health: &Arc<Health>,
    signals: &watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, RunError> {
    let mut servers = Vec::new();
    // One plain listener when both addresses are the same.
    let mut routes: Vec<(SocketAddr, axum::Router)> = Vec::new();
    if let Some(addr) = config.health_addr {
        routes.push((addr, http::health_routes(health.clone())));
    }
    match (config.metrics_addr, &config.metrics_secure) {
        (Some(addr), Some(secure)) => {
            let tls = tls::server_config(secure.cert_dir.as_deref())?;
            let auth = Arc::new(metrics_auth::MetricsAuth::new(client.clone()));
            let router = http::secure_metrics_routes(metrics.clone(), auth);
            let server = http::serve_tls(addr, tls, router, shutdown_signal(signals.clone()))
                .await
                .map_err(|source| RunError::Listen { addr, source })?;
            let certificate = if secure.cert_dir.is_some() {
                "from --metrics-cert-dir"
            } else {
                "self-signed"
            };
            info!(%addr, certificate, "serving /metrics over HTTPS to authorized callers");
            servers.push(server);
        }
        (Some(addr), None) => {
            let metrics_routes = http::metrics_routes(metrics.clone());
            match routes.iter_mut().find(|(a, _)| *a == addr) {
                Some((_, existing)) => *existing = existing.clone().merge(metrics_routes),
                None => routes.push((addr, metrics_routes)),
            }
        }
        (None, _) => {}
    }
    for (addr, router) in routes {
        let server = http::serve(addr, router, shutdown_signal(signals.clone()))
            .await
            .map_err(|source| RunError::Listen { addr, source })?;
        info!(%addr, "serving HTTP");
        servers.push(server);
    }
    Ok(servers)
}

async fn run_as_candidate(
    client: kube::Client,
    config: &RunConfig,
    options: &LeaderOptions,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    signals: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let mut election = leader::start(client.clone(), options).await?;
    // A standby is ready: it only waits for the lease.
    health.set_standby(true);
    info!(lease = %options.lease_name, namespace = %options.lease_namespace, identity = %options.identity, "waiting for the leader lease");
    if !election.acquired(shutdown_signal(signals.clone())).await {
        election.release().await;
        return Ok(());
    }
    info!("acquired the leader lease; starting the controllers");
    health.set_standby(false);

    // Stop on SIGTERM, or as soon as the lease is lost.
    let (stop_tx, stop_rx) = watch::channel(false);
    let lost = Election::lost(election.is_leader.clone());
    let mut signal_rx = signals.clone();
    let lost_leadership = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = lost_leadership.clone();
    let relay = tokio::spawn(async move {
        tokio::select! {
            _ = signal_rx.wait_for(|stop| *stop) => {}
            () = lost => {
                error!("lost the leader lease");
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let _ = stop_tx.send(true);
    });
    controller::run(client, config.controller.clone(), metrics, health, stop_rx).await;
    relay.abort();
    // Drained: hand the lease over now rather than let it expire.
    tokio::time::timeout(Duration::from_secs(5), election.release())
        .await
        .ok();
    if lost_leadership.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(RunError::LostLeadership);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[derive(Debug)]
    struct Failure(bool);

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "transient: {}", self.0)
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_up_step_is_asked_again_only_while_the_apiserver_cannot_answer() {
        let tries = Cell::new(0);
        let transient = |e: &Failure| e.0;
        // Unreachable three times, then answers: keysmith starts.
        let step = || {
            tries.set(tries.get() + 1);
            std::future::ready(if tries.get() <= 3 {
                Err(Failure(true))
            } else {
                Ok(tries.get())
            })
        };
        assert_eq!(patiently(step, transient).await.unwrap(), 4);

        // Refused: at once.
        tries.set(0);
        let refused = || {
            tries.set(tries.get() + 1);
            std::future::ready(Err::<(), _>(Failure(false)))
        };
        assert!(patiently(refused, transient).await.is_err());
        assert_eq!(tries.get(), 1);

        // Never answers: gives up within STARTUP_PATIENCE.
        let started = tokio::time::Instant::now();
        let never = || std::future::ready(Err::<(), _>(Failure(true)));
        assert!(patiently(never, transient).await.is_err());
        assert!(started.elapsed() <= STARTUP_PATIENCE);
        assert!(started.elapsed() >= STARTUP_PATIENCE - Duration::from_secs(4));
    }

    #[test]
    fn only_an_apiserver_that_cannot_answer_is_worth_asking_again() {
        let api = |code: u16| {
            kube::Error::Api(
                kube::core::Status::failure("x", "X")
                    .with_code(code)
                    .boxed(),
            )
        };
        assert!(controller::unavailable(&api(503)));
        assert!(controller::unavailable(&api(429)));
        assert!(!controller::unavailable(&api(403)));
        assert!(!controller::unavailable(&api(404)));
        assert!(controller::unavailable(&kube::Error::Service(
            "connect".into()
        )));
        assert!(!controller::unavailable(&kube::Error::TlsRequired));
    }
}
