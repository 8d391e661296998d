//! `/healthz`, `/readyz` and `/metrics`, served from what the controller reports.
//! `/metrics` may be served over HTTPS to authorized callers only
//! ([`secure_metrics_routes`]); the probes stay plain HTTP.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_rustls::rustls::ServerConfig;

use super::metrics_auth::{Decision, MetricsAuth};
use super::tls::TlsListener;
use crate::controller::{Health, Metrics};

pub fn health_routes(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let health = health.clone();
                async move {
                    if health.is_ready() {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
                    }
                }
            }),
        )
}

fn render(metrics: &Metrics) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

pub fn metrics_routes(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move { render(&metrics) }
        }),
    )
}

/// `/metrics` for callers whose bearer token the apiserver recognises and
/// whose user may `get` the non-resource URL `/metrics`.
pub fn secure_metrics_routes(metrics: Arc<Metrics>, auth: Arc<MetricsAuth>) -> Router {
    Router::new().route(
        "/metrics",
        get(move |headers: HeaderMap| {
            let metrics = metrics.clone();
            let auth = auth.clone();
            async move {
                match auth.decide(&headers).await {
                    Ok(Decision::Allowed) => render(&metrics),
                    Ok(Decision::Unauthenticated) => (
                        StatusCode::UNAUTHORIZED,
                        [(header::WWW_AUTHENTICATE, "Bearer")],
                        "Unauthorized",
                    )
                        .into_response(),
                    Ok(Decision::Forbidden) => (StatusCode::FORBIDDEN, "Forbidden").into_response(),
                    Err(error) => {
                        tracing::warn!(%error, "cannot review a metrics caller");
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "cannot review the caller now",
                        )
                            .into_response()
                    }
                }
            }
        }),
    )
}

/// Binds now (so a port clash fails the start) and serves until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    routes: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, routes)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(%error, "HTTP server stopped");
        }
    }))
}

/// Like [`serve`], over TLS.
pub async fn serve_tls(
    addr: SocketAddr,
    config: Arc<ServerConfig>,
    routes: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TlsListener::new(tokio::net::TcpListener::bind(addr).await?, config)?;
    Ok(tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, routes)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(%error, "HTTPS server stopped");
        }
    }))
}
