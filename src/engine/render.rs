//! Step five: render the outcome into a [`Plan`]: the Secret keysmith wants
//! (and whether the one observed already carries it), the state the status
//! reports, the Ready condition, and the events.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::gateway::GatewayWrite;
use super::guards::Blocked;
use super::inputs::{Intent, ObservedSecret, PreviousStatus};
use super::outcome::{self, Outcome};
use super::seal::{self, RecordKey};
use super::snapshot::{Snapshot, format_time};
use crate::api::names::annotations;
use crate::api::{Reason, RotationReason, SecretType};

/// Event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    pub severity: Severity,
    pub reason: Reason,
    /// Never contains a secret value.
    pub note: String,
}

/// The Ready condition to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    pub reason: Reason,
    pub message: String,
}

/// The output Secret keysmith wants (its fields only; others' fields stay).
/// (Debug shows data keys, never values.)
#[derive(Clone, PartialEq, Eq)]
pub struct DesiredSecret {
    pub name: String,
    pub type_: SecretType,
    pub data: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owned: bool,
}

impl std::fmt::Debug for DesiredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredSecret")
            .field("name", &self.name)
            .field("type", &self.type_)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .field("owned", &self.owned)
            .finish()
    }
}

/// The credential state after this pass (what status reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    pub key: Option<String>,
    pub revision: Option<i64>,
    pub register_time: Option<Timestamp>,
    pub update_time: Option<Timestamp>,
    pub last_rotation_time: Option<Timestamp>,
    pub last_rotation_reason: Option<RotationReason>,
    pub next_rotation_time: Option<Timestamp>,
    pub previous_expiry_time: Option<Timestamp>,
    pub observed_reset_request: Option<String>,
    pub observed_reset_annotation: Option<String>,
    /// The Secret carries keysmith's seal from now on (`status.rotation.sealed`).
    pub sealed: bool,
}

/// What one pass decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Apply this Secret (server-side apply) before anything else.
    pub secret: Option<DesiredSecret>,
    /// Then bring the gateway Secrets in step with it.
    pub gateway: Vec<GatewayWrite>,
    /// The state to report; `None` leaves the status's credential fields as they are.
    pub state: Option<State>,
    pub readiness: Readiness,
    pub events: Vec<PlannedEvent>,
    pub requeue_after: Option<Duration>,
    /// Set when this pass issues a new credential set.
    pub rotation: Option<RotationReason>,
}

/// A blocked pass: nothing written, Ready=False, and a Warning event unless
/// the condition already says so.
pub fn render_blocked(blocked: Blocked, previous: &PreviousStatus) -> Plan {
    let events = if previous.ready_reason == Some(blocked.reason) {
        vec![]
    } else {
        vec![PlannedEvent {
            severity: Severity::Warning,
            reason: blocked.reason,
            note: blocked.message.clone(),
        }]
    };
    Plan {
        secret: None,
        gateway: Vec::new(),
        state: None,
        readiness: Readiness {
            ready: false,
            reason: blocked.reason,
            message: blocked.message,
        },
        events,
        requeue_after: None,
        rotation: None,
    }
}

pub fn render_plan(s: &Snapshot, outcome: &Outcome) -> Plan {
    let intent = s.intent;
    let desired = desired_secret(intent, outcome, s.record_key);
    let write = outcome.edited
        || s.secret
            .is_none_or(|observed| !matches_desired(observed, &desired, intent));
    Plan {
        gateway: Vec::new(),
        secret: write.then_some(desired),
        state: Some(state(outcome, s.status.sealed || sealed_now(s, outcome))),
        readiness: Readiness {
            ready: true,
            reason: Reason::Issued,
            message: format!(
                "credentials issued in Secret {} (revision {})",
                intent.secret_name, outcome.revision
            ),
        },
        events: event(intent, outcome).into_iter().collect(),
        requeue_after: outcome::requeue_after(outcome, s.now),
        rotation: outcome.rotation,
    }
}

/// This pass issues a sealed credential set: from now on the status says
/// the Secret must carry a seal (SPEC §5, Upgrades: a Secret of an earlier
/// release is sealed in place without that, and trusted as it was until
/// its next credential set).
fn sealed_now(s: &Snapshot, outcome: &Outcome) -> bool {
    s.record_key.is_some() && outcome.rotation.is_some()
}

fn state(outcome: &Outcome, sealed: bool) -> State {
    State {
        sealed,
        key: outcome.key.clone(),
        revision: Some(outcome.revision),
        register_time: Some(outcome.issued_at),
        update_time: outcome.update_time,
        last_rotation_time: Some(outcome.rotated_at),
        last_rotation_reason: outcome.rotation_reason,
        next_rotation_time: outcome.next_rotation,
        previous_expiry_time: outcome.previous.as_ref().map(|(_, expiry)| *expiry),
        observed_reset_request: outcome.observed_reset_request.clone(),
        observed_reset_annotation: outcome.observed_reset_annotation.clone(),
    }
}

/// The Secret keysmith wants: the credentials, the fixed data, the user's
/// labels and annotations, and the rotation record.
pub fn desired_secret(
    intent: &Intent,
    outcome: &Outcome,
    record_key: Option<&RecordKey>,
) -> DesiredSecret {
    let mut data = intent.fixed_data.clone();
    if let Some(key) = &outcome.key {
        data.insert(intent.key_data_key.clone(), key.clone());
    }
    if let Some(value) = &outcome.secret {
        data.insert(intent.secret_data_key.clone(), value.clone());
    }
    if let Some((value, _)) = &outcome.previous {
        data.insert(intent.previous_data_key.clone(), value.clone());
    }
    let mut annotations = intent.annotations.clone();
    let record: BTreeMap<String, String> =
        record_annotations(intent, outcome).into_iter().collect();
    if let Some(key) = record_key {
        let credentials = [
            &intent.key_data_key,
            &intent.secret_data_key,
            &intent.previous_data_key,
        ];
        let values: BTreeMap<&str, &str> = credentials
            .into_iter()
            .filter_map(|k| Some((k.as_str(), data.get(k)?.as_str())))
            .collect();
        let at = seal::Binding {
            owner_uid: intent.owner_uid(),
            secret_name: &intent.secret_name,
        };
        annotations.insert(
            annotations::SEAL.into(),
            seal::seal(key, &at, &values, &record),
        );
    }
    annotations.extend(record);
    DesiredSecret {
        name: intent.secret_name.clone(),
        type_: intent.secret_type,
        data,
        labels: intent.labels.clone(),
        annotations,
        owned: intent.owned,
    }
}

/// The rotation record, as the Secret's annotations. The previous key is
/// recorded only where a gateway Secret needs it (older Secrets stay as
/// they were: SPEC §5, Upgrades).
fn record_annotations(intent: &Intent, outcome: &Outcome) -> Vec<(String, String)> {
    let entries = [
        (annotations::REVISION, Some(outcome.revision.to_string())),
        (
            annotations::ROTATED_AT,
            Some(format_time(outcome.rotated_at)),
        ),
        (
            annotations::ROTATION_REASON,
            outcome.rotation_reason.map(|r| r.as_str().to_string()),
        ),
        (annotations::ISSUED_AT, Some(format_time(outcome.issued_at))),
        (
            annotations::PREVIOUS_EXPIRES_AT,
            outcome.previous.as_ref().map(|(_, t)| format_time(*t)),
        ),
        (
            annotations::OBSERVED_RESET_REQUEST,
            outcome.observed_reset_request.clone(),
        ),
        (
            annotations::OBSERVED_RESET_ANNOTATION,
            outcome.observed_reset_annotation.clone(),
        ),
        (
            annotations::PREVIOUS_KEY,
            intent
                .gateway
                .as_ref()
                .and(outcome.previous.as_ref())
                .and(outcome.previous_key.clone()),
        ),
    ];
    entries
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_string(), value?)))
        .collect()
}

/// The event for what happened: the rotation, or kept edits.
fn event(intent: &Intent, outcome: &Outcome) -> Option<PlannedEvent> {
    let revision = outcome.revision;
    let secret = &intent.secret_name;
    let (severity, reason, note) = match outcome.rotation {
        Some(RotationReason::Initial) => (
            Severity::Normal,
            Reason::Issued,
            format!("issued credentials (revision {revision}) into Secret {secret}"),
        ),
        Some(RotationReason::SecretRecreated) => (
            Severity::Warning,
            Reason::SecretRecreated,
            format!("Secret {secret} was deleted; issued new credentials (revision {revision})"),
        ),
        Some(RotationReason::ResetRequest) => (
            Severity::Normal,
            Reason::Reset,
            format!("reset on request (revision {revision})"),
        ),
        Some(RotationReason::AppKeyChanged | RotationReason::KeyChanged) => (
            Severity::Normal,
            Reason::KeyChanged,
            format!("{} changed (revision {revision})", intent.key_label),
        ),
        Some(RotationReason::Schedule) => (
            Severity::Normal,
            Reason::Rotated,
            format!("rotated on schedule (revision {revision})"),
        ),
        Some(RotationReason::SecretFromChanged) => (
            Severity::Normal,
            Reason::Rotated,
            format!("propagated the changed value of the source Secret (revision {revision})"),
        ),
        None if outcome.edited => (
            Severity::Warning,
            Reason::SecretEdited,
            format!("Secret {secret} was edited; the new values satisfy their rules and are kept"),
        ),
        None => return None,
    };
    Some(PlannedEvent {
        severity,
        reason,
        note,
    })
}

/// Does the observed Secret already carry everything keysmith wants on it?
/// Fields others added (labels, annotations, data keys) are not ours to judge,
/// except what keysmith itself manages (a stale `_previous`, the record).
fn matches_desired(observed: &ObservedSecret, desired: &DesiredSecret, intent: &Intent) -> bool {
    let data_matches = desired
        .data
        .iter()
        .all(|(k, v)| observed.data.get(k).and_then(|o| o.as_ref()) == Some(v))
        && (desired.data.contains_key(&intent.previous_data_key)
            || !observed.data.contains_key(&intent.previous_data_key));
    let labels_match = desired
        .labels
        .iter()
        .all(|(k, v)| observed.labels.get(k) == Some(v));
    let annotations_match = desired
        .annotations
        .iter()
        .all(|(k, v)| observed.annotations.get(k) == Some(v))
        && annotations::RECORD.iter().all(|a| {
            desired.annotations.contains_key(*a) || !observed.annotations.contains_key(*a)
        });
    data_matches && labels_match && annotations_match && observed.owner_referenced == desired.owned
}
