//! SIGTERM and SIGINT, as a shutdown flag.

use tokio::sync::watch;
use tracing::{info, warn};

/// Turns SIGTERM/SIGINT into `true` on the returned channel.
pub fn watch_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(error) => {
                    warn!(%error, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            () = terminate => info!("SIGTERM: draining in-flight reconciles"),
            _ = tokio::signal::ctrl_c() => info!("SIGINT: draining in-flight reconciles"),
        }
        let _ = tx.send(true);
    });
    rx
}
