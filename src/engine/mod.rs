//! The pure core: given what a resource asks for and what exists, decide what
//! to write. No I/O, no kinds and no Kubernetes types (`tests/layers.rs`);
//! time and randomness come in as arguments ([`generate::os_rng`] only
//! names the OS generator the controller passes in).
//!
//! A pass is five steps, each in its own module, each a set of small named
//! checks with unit tests of their own (in the manner of cert-manager's
//! certificate policies):
//!
//! 1. [`snapshot`] — gather: the Secret's data checked against the rules and
//!    its rotation record (annotations) read, into one [`Snapshot`];
//! 2. [`guards`] — conflicts, ownership, bad sources, unusable data: the
//!    first that fails blocks the pass (Ready=False, nothing written);
//! 3. [`triggers`] — initial, recreated, reset, schedule, key change, source
//!    change, stale values: the first that fires names the rotation reason;
//! 4. [`outcome`] — the new values, revision, times, overlap and requeue;
//! 5. [`render`] — the Secret to apply, the state for status, the Ready
//!    condition and the events.
//!
//! Beside the pass, two decisions of their own: [`ownership`] (whose a
//! Secret is, from what its metadata says) and [`rollout`] (which workloads
//! restart, and what the status and events make of the restarts).
//!
//! The output Secret is the source of truth for the issued credentials *and*
//! for the rotation record (kept in its annotations): the Secret is written
//! first, so if keysmith dies before the status write, the next pass rebuilds
//! the status from the Secret instead of rotating again.

pub mod gateway;
pub mod generate;
pub mod guards;
mod inputs;
pub mod outcome;
pub mod ownership;
mod render;
pub mod rollout;
pub mod seal;
pub mod snapshot;
pub mod triggers;

use k8s_openapi::jiff::Timestamp;
use rand::TryCryptoRng;

pub use gateway::GatewayWrite;
pub use generate::GenerateError;
pub use inputs::{
    GatewayIntent, Intent, KeyGenerator, Observed, ObservedSecret, OtherGatewaySecret, Pending,
    PreviousStatus, SourceValue,
};
pub use ownership::{Claimant, Foreign, Ownership, SecretIdentity};
pub use render::{DesiredSecret, Plan, PlannedEvent, Readiness, Severity, State};
pub use seal::RecordKey;
pub use snapshot::{Snapshot, truncate_to_second};

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Generate(#[from] GenerateError),
}

/// Decides one reconcile pass.
pub fn plan<R: TryCryptoRng>(
    intent: &Intent,
    observed: &Observed,
    now: Timestamp,
    rng: &mut R,
) -> Result<Plan, PlanError> {
    let snapshot = Snapshot::gather(intent, observed, now);
    if let Some(blocked) = guards::first_failure(&snapshot) {
        let conflict = blocked.reason == crate::api::Reason::GatewayConflict;
        let mut plan = render::render_blocked(blocked, &observed.status);
        if conflict && snapshot.issued.is_none() {
            plan.gateway = gateway::empty_writes(&snapshot);
        }
        return Ok(plan);
    }
    let renewal = triggers::evaluate(&snapshot);
    let next_revision = snapshot.record.revision.unwrap_or(0) + 1;
    let pending = observed
        .pending
        .as_ref()
        .filter(|p| renewal.reason.is_some() && p.revision == next_revision);
    let (key, secret) = outcome::issue_values(intent, &renewal, pending, rng)?;
    let outcome = outcome::decide(&snapshot, renewal.reason, key, secret);
    let mut plan = render::render_plan(&snapshot, &outcome);
    plan.gateway = gateway::writes(&snapshot, &outcome, rng)?;
    Ok(plan)
}

/// The plan after the apiserver refused this pass's Secret write for good
/// (invalid or forbidden): Ready=False with the apiserver's own words — any
/// of `values` in them (the credentials the write carried) redacted — and a
/// Warning event; nothing else changes.
pub fn plan_refused(
    secret_name: &str,
    apiserver_message: &str,
    values: &[&str],
    previous: &PreviousStatus,
) -> Plan {
    let mut said = apiserver_message.to_string();
    for value in values.iter().filter(|v| !v.is_empty()) {
        said = said.replace(value, "<redacted>");
    }
    let blocked = guards::Blocked {
        reason: crate::api::Reason::SecretRefused,
        message: format!(
            "the apiserver refused to write Secret {secret_name}: {said}; change the resource to try again"
        ),
    };
    render::render_blocked(blocked, previous)
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
