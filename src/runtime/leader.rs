//! Leader election on a coordination.k8s.io Lease (kube-lease-manager):
//! with several replicas, only the holder of the Lease reconciles.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;

#[derive(Clone, Debug)]
pub struct LeaderOptions {
    pub lease_name: String,
    pub lease_namespace: String,
    pub identity: String,
    /// A lease not renewed for this long may be taken over.
    pub lease_duration: Duration,
    /// The holder renews this long before the lease would expire.
    pub renew_grace: Duration,
}

/// A running election: `is_leader` follows the lease.
pub struct Election {
    pub is_leader: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

pub async fn start(
    client: Client,
    options: &LeaderOptions,
) -> kube_lease_manager::Result<Election> {
    let manager = LeaseManagerBuilder::new(client, &options.lease_name)
        .with_namespace(&options.lease_namespace)
        .with_identity(&options.identity)
        .with_duration(options.lease_duration.as_secs().max(2))
        .with_grace(options.renew_grace.as_secs().max(1))
        .with_field_manager("keysmith-leader-election")
        .build()
        .await?;
    let (is_leader, task) = manager.watch().await;
    Ok(Election { is_leader, task })
}

impl Election {
    /// Waits until this replica leads, or `stop` fires first (then `false`).
    pub async fn acquired(&mut self, stop: impl std::future::Future<Output = ()>) -> bool {
        tokio::select! {
            led = self.is_leader.wait_for(|leader| *leader) => led.is_ok(),
            () = stop => false,
        }
    }

    /// Resolves when leadership is lost after having been acquired.
    pub async fn lost(mut is_leader: watch::Receiver<bool>) {
        let _ = is_leader.wait_for(|leader| !*leader).await;
    }

    /// Gives the lease up so a standby takes over at once.
    pub async fn release(self) {
        drop(self.is_leader); // closing the channel makes the manager release the lease
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("released the leader lease"),
            Ok(Err(error)) => tracing::warn!(%error, "could not release the leader lease"),
            Err(error) => tracing::warn!(%error, "leader election task failed"),
        }
    }
}
