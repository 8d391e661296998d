//! The pure core: given what a resource asks for and what exists, decide what
//! to write. No I/O; time and randomness come in as arguments.
//!
//! Both kinds share this logic. A kind is described by an [`Intent`] (its spec
//! normalised) and the observed world by an [`Observed`]. The output Secret is
//! the source of truth for the issued credentials *and* for the rotation
//! bookkeeping (revision, reason, times, the reset requests carried out), kept
//! in its annotations: the Secret is written first, so if keysmith dies before
//! the status write, the next pass rebuilds the status from the Secret instead
//! of rotating again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rand::TryCryptoRng;

use crate::crd::RotationReason;
use crate::generate::{self, GenerateError};
use crate::rules::FormatRule;

/// Annotations keysmith keeps on the Secrets it writes.
pub mod annotations {
    pub const REVISION: &str = crate::crd::REVISION_ANNOTATION;
    pub const ROTATED_AT: &str = "keysmith.dev/rotated-at";
    pub const ROTATION_REASON: &str = "keysmith.dev/rotation-reason";
    pub const ISSUED_AT: &str = "keysmith.dev/issued-at";
    pub const PREVIOUS_EXPIRES_AT: &str = "keysmith.dev/previous-expires-at";
    pub const OBSERVED_RESET_REQUEST: &str = "keysmith.dev/observed-reset-request";
    pub const OBSERVED_RESET_ANNOTATION: &str = "keysmith.dev/observed-reset-annotation";
    pub const ALL: [&str; 7] = [
        REVISION,
        ROTATED_AT,
        ROTATION_REASON,
        ISSUED_AT,
        PREVIOUS_EXPIRES_AT,
        OBSERVED_RESET_REQUEST,
        OBSERVED_RESET_ANNOTATION,
    ];
}

/// How a key is generated when none is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyGenerator {
    /// A UUID-format AppKey.
    Uuid,
    /// A value of the rule at this length (sign_key).
    Rule { length: usize },
}

/// A resource's spec, normalised for planning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    /// "AppKey" / "sign_key": for messages.
    pub key_label: &'static str,
    pub custom_key: Option<String>,
    pub key_rule: &'static FormatRule,
    pub key_generator: KeyGenerator,
    pub secret_rule: &'static FormatRule,
    pub generator_length: usize,
    pub symbols: bool,
    /// `(secret name, key)` of a user-supplied secret.
    pub secret_from: Option<(String, String)>,
    pub interval: Option<Duration>,
    pub rotate_key: bool,
    pub keep_previous: Option<Duration>,
    pub reset_request: Option<String>,
    pub reset_annotation: Option<String>,
    /// Data key names in the output Secret.
    pub key_data_key: String,
    pub secret_data_key: String,
    pub previous_data_key: String,
    /// Other data keysmith writes as given (app_id, sign_type, sign_algorithm).
    pub fixed_data: BTreeMap<String, String>,
    pub secret_name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owned: bool,
    /// The resource's own attributes (names, types): a change moves updateTime.
    pub attributes: BTreeMap<String, String>,
}

/// The output Secret as found. (Debug shows data keys, never values.)
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ObservedSecret {
    /// Created by keysmith for this resource (its labels say so).
    pub ours: bool,
    /// Data; `None` for a value that is not UTF-8.
    pub data: BTreeMap<String, Option<String>>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owner_referenced: bool,
    /// Data keys whose value keysmith's field manager no longer owns:
    /// someone else changed them since keysmith's last write.
    pub edited_keys: BTreeSet<String>,
}

/// A user-supplied secret source as found.
/// (Debug never shows the value.)
#[derive(Clone, PartialEq, Eq)]
pub enum SourceValue {
    Found(String),
    SecretMissing,
    KeyMissing,
    NotUtf8,
}

/// What the status said last time (the part planning needs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreviousStatus {
    pub key: Option<String>,
    pub revision: Option<i64>,
    pub last_rotation_time: Option<Timestamp>,
    pub last_rotation_reason: Option<RotationReason>,
    pub register_time: Option<Timestamp>,
    pub update_time: Option<Timestamp>,
    pub observed_reset_request: Option<String>,
    pub observed_reset_annotation: Option<String>,
    pub attributes: Option<BTreeMap<String, String>>,
    pub ready_reason: Option<String>,
}

pub struct Observed<'a> {
    pub secret: Option<&'a ObservedSecret>,
    pub source: Option<SourceValue>,
    pub status: &'a PreviousStatus,
    /// Another resource holds the key this one wants (`namespace/name`).
    pub key_held_by: Option<String>,
}

/// Event types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Normal,
    Warning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    pub severity: Severity,
    pub reason: &'static str,
    /// Never contains a secret value.
    pub note: String,
}

/// The Ready condition to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    pub reason: &'static str,
    pub message: String,
}

/// The output Secret keysmith wants (its fields only; others' fields stay).
/// (Debug shows data keys, never values.)
#[derive(Clone, PartialEq, Eq)]
pub struct DesiredSecret {
    pub name: String,
    pub data: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub owned: bool,
}

// Hand-written Debug for the types that hold credential values, so that no
// `{:?}`, failed assertion or panic can print one.

impl std::fmt::Debug for ObservedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedSecret")
            .field("ours", &self.ours)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .field("owner_referenced", &self.owner_referenced)
            .field("edited_keys", &self.edited_keys)
            .finish()
    }
}

impl std::fmt::Debug for SourceValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SourceValue::Found(_) => "Found(<redacted>)",
            SourceValue::SecretMissing => "SecretMissing",
            SourceValue::KeyMissing => "KeyMissing",
            SourceValue::NotUtf8 => "NotUtf8",
        })
    }
}

impl std::fmt::Debug for DesiredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DesiredSecret")
            .field("name", &self.name)
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
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Apply this Secret (server-side apply) before anything else.
    pub secret: Option<DesiredSecret>,
    /// The state to report; `None` leaves the status's credential fields as they are.
    pub state: Option<State>,
    pub readiness: Readiness,
    pub events: Vec<PlannedEvent>,
    pub requeue_after: Option<Duration>,
    /// Set when this pass issues a new credential set.
    pub rotation: Option<RotationReason>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Generate(#[from] GenerateError),
}

/// Whole seconds: Kubernetes stores times to the second, so anything finer
/// would differ from what is read back and trigger endless status writes.
pub fn truncate_to_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

fn format_time(t: Timestamp) -> String {
    truncate_to_second(t).to_string()
}

fn parse_time(text: Option<&String>) -> Option<Timestamp> {
    text.and_then(|t| t.parse().ok())
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

fn not_ready(reason: &'static str, message: String, previous: &PreviousStatus) -> Plan {
    let events = if previous.ready_reason.as_deref() == Some(reason) {
        vec![] // already reported; the condition still says so
    } else {
        vec![PlannedEvent {
            severity: Severity::Warning,
            reason,
            note: message.clone(),
        }]
    };
    Plan {
        secret: None,
        state: None,
        readiness: Readiness {
            ready: false,
            reason,
            message,
        },
        events,
        requeue_after: None,
        rotation: None,
    }
}

/// Decides one reconcile pass.
pub fn plan<R: TryCryptoRng>(
    intent: &Intent,
    observed: &Observed,
    now: Timestamp,
    rng: &mut R,
) -> Result<Plan, PlanError> {
    let now = truncate_to_second(now);
    let previous = observed.status;

    if let Some(holder) = &observed.key_held_by {
        return Ok(not_ready(
            "AppKeyConflict",
            format!(
                "the {} is already held by GatewayApp {holder}, which is older; choose another key",
                intent.key_label
            ),
            previous,
        ));
    }

    let secret = match observed.secret {
        Some(secret) if !secret.ours => {
            return Ok(not_ready(
                "SecretConflict",
                format!(
                    "Secret {} exists and was not created by keysmith for this resource; it is left untouched (delete it, or set spec.secret.name to another name)",
                    intent.secret_name
                ),
                previous,
            ));
        }
        other => other,
    };

    // A user-supplied secret must exist and satisfy its rule before anything moves.
    let source_value = match (&intent.secret_from, &observed.source) {
        (None, _) => None,
        (Some((name, key)), source) => {
            let problem = match source {
                Some(SourceValue::Found(value)) => match intent.secret_rule.check(value) {
                    Ok(()) => None,
                    Err(breach) => {
                        Some(format!("its value {}", intent.secret_rule.explain(breach)))
                    }
                },
                Some(SourceValue::KeyMissing) => Some("has no such key".to_string()),
                Some(SourceValue::NotUtf8) => {
                    Some("holds a value that is not UTF-8 text".to_string())
                }
                Some(SourceValue::SecretMissing) | None => Some("does not exist".to_string()),
            };
            if let Some(problem) = problem {
                let subject = match source {
                    Some(SourceValue::SecretMissing) | None => format!("Secret {name}"),
                    _ => format!("key {key} of Secret {name}"),
                };
                return Ok(not_ready(
                    "InvalidSecretFrom",
                    format!(
                        "{subject} {problem} ({} rule); nothing issued was changed",
                        intent.secret_rule.name
                    ),
                    previous,
                ));
            }
            match source {
                Some(SourceValue::Found(value)) => Some(value.clone()),
                _ => None,
            }
        }
    };

    // What is issued now: from the Secret when it exists, else nothing.
    let mut events = Vec::new();
    let mut edited = false;
    let current = match secret {
        Some(secret) => {
            let data_of = |key: &str| secret.data.get(key);
            let mut checked = Vec::new();
            for (data_key, rule) in [
                (&intent.key_data_key, intent.key_rule),
                (&intent.secret_data_key, intent.secret_rule),
            ] {
                let value = match data_of(data_key) {
                    None => {
                        return Ok(not_ready(
                            "InvalidSecretData",
                            format!(
                                "Secret {} has no key {data_key}; restore it, or delete the Secret to have new credentials issued",
                                intent.secret_name
                            ),
                            previous,
                        ));
                    }
                    Some(None) => Err(format!("key {data_key} is not UTF-8 text")),
                    Some(Some(value)) => {
                        rule.check(value).map(|()| value.clone()).map_err(|breach| {
                            format!(
                                "key {data_key} {} ({} rule)",
                                rule.explain(breach),
                                rule.name
                            )
                        })
                    }
                };
                let was_edited = secret.edited_keys.contains(data_key);
                match value {
                    Ok(value) => checked.push(Some(value)),
                    // An edit that breaks the rule is someone's deliberate change: never overwrite it.
                    Err(problem) if was_edited || intent.secret_from.is_some() => {
                        return Ok(not_ready(
                            "InvalidSecretData",
                            format!(
                                "Secret {} was edited and its {problem}; it is not overwritten: fix the value, or delete the Secret to have new credentials issued",
                                intent.secret_name
                            ),
                            previous,
                        ));
                    }
                    // Written by keysmith under a rule that has since changed (sign type): reissue.
                    Err(_) => checked.push(None),
                }
                edited |= was_edited;
            }
            let previous_value = secret
                .data
                .get(&intent.previous_data_key)
                .cloned()
                .flatten();
            Some(Current {
                key: checked[0].clone(),
                secret: checked[1].clone(),
                previous: previous_value,
                revision: secret
                    .annotations
                    .get(annotations::REVISION)
                    .and_then(|r| r.parse().ok()),
                rotated_at: parse_time(secret.annotations.get(annotations::ROTATED_AT)),
                reason: secret
                    .annotations
                    .get(annotations::ROTATION_REASON)
                    .and_then(|r| {
                        serde_json::from_value(serde_json::Value::String(r.clone())).ok()
                    }),
                issued_at: parse_time(secret.annotations.get(annotations::ISSUED_AT)),
                previous_expires_at: parse_time(
                    secret.annotations.get(annotations::PREVIOUS_EXPIRES_AT),
                ),
                observed_reset_request: secret
                    .annotations
                    .get(annotations::OBSERVED_RESET_REQUEST)
                    .cloned(),
                observed_reset_annotation: secret
                    .annotations
                    .get(annotations::OBSERVED_RESET_ANNOTATION)
                    .cloned(),
            })
        }
        None => None,
    };

    // Bookkeeping carried forward: from the Secret if present, else from status.
    let base_revision = current
        .as_ref()
        .and_then(|c| c.revision)
        .or(previous.revision);
    let observed_reset_request = match &current {
        Some(c) => c.observed_reset_request.clone(),
        None => previous.observed_reset_request.clone(),
    };
    let observed_reset_annotation = match &current {
        Some(c) => c.observed_reset_annotation.clone(),
        None => previous.observed_reset_annotation.clone(),
    };
    let last_rotation = current
        .as_ref()
        .and_then(|c| c.rotated_at)
        .or(previous.last_rotation_time);

    // Triggers, most specific reason first.
    let reset_by_spec = intent
        .reset_request
        .as_ref()
        .is_some_and(|r| !r.is_empty() && Some(r) != observed_reset_request.as_ref());
    let reset_by_annotation = intent
        .reset_annotation
        .as_ref()
        .is_some_and(|r| !r.is_empty() && Some(r) != observed_reset_annotation.as_ref());
    let reset = reset_by_spec || reset_by_annotation;
    let schedule_due = intent.secret_from.is_none()
        && intent
            .interval
            .zip(last_rotation)
            .is_some_and(|(interval, last)| now >= add(last, interval));

    let current_key = current.as_ref().and_then(|c| c.key.clone());
    let current_secret = current.as_ref().and_then(|c| c.secret.clone());

    let mut reason: Option<RotationReason> = None;
    let mut new_key: Option<String> = None;
    let mut new_secret: Option<String> = None;
    let rotate_key_allowed = intent.custom_key.is_none();

    match &current {
        None => {
            reason = Some(if base_revision.is_some() {
                RotationReason::SecretRecreated
            } else {
                RotationReason::Initial
            });
            new_key = Some(match &intent.custom_key {
                Some(key) => key.clone(),
                None => generate_key(intent, rng)?,
            });
            new_secret = Some(match &source_value {
                Some(value) => value.clone(),
                None => generate::value(
                    rng,
                    intent.secret_rule,
                    intent.generator_length,
                    intent.symbols,
                )?,
            });
        }
        Some(_) => {
            if reset {
                reason = Some(RotationReason::ResetRequest);
                if source_value.is_none() {
                    new_secret = Some(generate::value(
                        rng,
                        intent.secret_rule,
                        intent.generator_length,
                        intent.symbols,
                    )?);
                }
                if intent.rotate_key && rotate_key_allowed {
                    new_key = Some(generate_key(intent, rng)?);
                }
            } else if schedule_due {
                reason = Some(RotationReason::Schedule);
                new_secret = Some(generate::value(
                    rng,
                    intent.secret_rule,
                    intent.generator_length,
                    intent.symbols,
                )?);
                if intent.rotate_key && rotate_key_allowed {
                    new_key = Some(generate_key(intent, rng)?);
                }
            }
            if let Some(custom) = &intent.custom_key
                && current_key.as_ref() != Some(custom)
                && new_key.is_none()
            {
                new_key = Some(custom.clone());
                reason.get_or_insert(key_changed_reason(intent));
            }
            if let Some(value) = &source_value
                && current_secret.as_ref() != Some(value)
                && new_secret.is_none()
            {
                new_secret = Some(value.clone());
                reason.get_or_insert(RotationReason::SecretFromChanged);
            }
            // Values keysmith wrote that no longer fit (the sign type changed).
            if current_key.is_none() && new_key.is_none() {
                new_key = Some(generate_key(intent, rng)?);
                reason.get_or_insert(key_changed_reason(intent));
            }
            if current_secret.is_none() && new_secret.is_none() {
                new_secret = Some(generate::value(
                    rng,
                    intent.secret_rule,
                    intent.generator_length,
                    intent.symbols,
                )?);
                reason.get_or_insert(key_changed_reason(intent));
            }
        }
    }

    let key = new_key.clone().or(current_key.clone());
    let secret_value = new_secret.clone().or(current_secret.clone());
    let rotated = reason.is_some();
    let revision = if rotated {
        base_revision.unwrap_or(0) + 1
    } else {
        base_revision.unwrap_or(1)
    };
    let rotated_at = if rotated {
        Some(now)
    } else {
        last_rotation.or(Some(now))
    };
    let rotation_reason = if rotated {
        reason
    } else {
        current
            .as_ref()
            .and_then(|c| c.reason)
            .or(previous.last_rotation_reason)
    };
    let issued_at = current
        .as_ref()
        .and_then(|c| c.issued_at)
        .or(previous.register_time)
        .or(Some(now));

    // The kept previous secret: replaced now, or carried until it expires.
    let (previous_value, previous_expires_at) =
        match (&new_secret, &current_secret, intent.keep_previous) {
            (Some(_), Some(old), Some(keep)) if !keep.is_zero() => {
                (Some(old.clone()), Some(add(now, keep)))
            }
            (Some(_), _, _) => (None, None),
            (None, _, _) => match current.as_ref() {
                Some(c) => match (c.previous.clone(), c.previous_expires_at) {
                    (Some(value), Some(expiry)) if now < expiry => (Some(value), Some(expiry)),
                    _ => (None, None),
                },
                None => (None, None),
            },
        };

    let observed_reset_request = if reset_by_spec || reason == Some(RotationReason::Initial) {
        intent.reset_request.clone()
    } else {
        observed_reset_request
    };
    let observed_reset_annotation =
        if reset_by_annotation || reason == Some(RotationReason::Initial) {
            intent.reset_annotation.clone()
        } else {
            observed_reset_annotation
        };

    // The Secret keysmith wants.
    let mut data = intent.fixed_data.clone();
    if let Some(key) = &key {
        data.insert(intent.key_data_key.clone(), key.clone());
    }
    if let Some(value) = &secret_value {
        data.insert(intent.secret_data_key.clone(), value.clone());
    }
    if let Some(value) = &previous_value {
        data.insert(intent.previous_data_key.clone(), value.clone());
    }
    let mut secret_annotations = intent.annotations.clone();
    secret_annotations.insert(annotations::REVISION.into(), revision.to_string());
    if let Some(t) = rotated_at {
        secret_annotations.insert(annotations::ROTATED_AT.into(), format_time(t));
    }
    if let Some(r) = rotation_reason {
        secret_annotations.insert(annotations::ROTATION_REASON.into(), reason_name(r).into());
    }
    if let Some(t) = issued_at {
        secret_annotations.insert(annotations::ISSUED_AT.into(), format_time(t));
    }
    if let Some(t) = previous_expires_at {
        secret_annotations.insert(annotations::PREVIOUS_EXPIRES_AT.into(), format_time(t));
    }
    if let Some(r) = &observed_reset_request {
        secret_annotations.insert(annotations::OBSERVED_RESET_REQUEST.into(), r.clone());
    }
    if let Some(r) = &observed_reset_annotation {
        secret_annotations.insert(annotations::OBSERVED_RESET_ANNOTATION.into(), r.clone());
    }
    let desired = DesiredSecret {
        name: intent.secret_name.clone(),
        data,
        labels: intent.labels.clone(),
        annotations: secret_annotations,
        owned: intent.owned,
    };
    let write_secret =
        edited || secret.is_none_or(|observed| !matches_desired(observed, &desired, intent));

    // Events for what happened.
    if let Some(reason) = reason {
        let (severity, event_reason, note) = match reason {
            RotationReason::Initial => (
                Severity::Normal,
                "Issued",
                format!(
                    "issued credentials (revision {revision}) into Secret {}",
                    intent.secret_name
                ),
            ),
            RotationReason::SecretRecreated => (
                Severity::Warning,
                "SecretRecreated",
                format!(
                    "Secret {} was deleted; issued new credentials (revision {revision})",
                    intent.secret_name
                ),
            ),
            RotationReason::ResetRequest => (
                Severity::Normal,
                "Reset",
                format!("reset on request (revision {revision})"),
            ),
            RotationReason::AppKeyChanged | RotationReason::KeyChanged => (
                Severity::Normal,
                "KeyChanged",
                format!("{} changed (revision {revision})", intent.key_label),
            ),
            RotationReason::Schedule => (
                Severity::Normal,
                "Rotated",
                format!("rotated on schedule (revision {revision})"),
            ),
            RotationReason::SecretFromChanged => (
                Severity::Normal,
                "Rotated",
                format!("propagated the changed value of the source Secret (revision {revision})"),
            ),
        };
        events.push(PlannedEvent {
            severity,
            reason: event_reason,
            note,
        });
    } else if edited {
        events.push(PlannedEvent {
            severity: Severity::Warning,
            reason: "SecretEdited",
            note: format!(
                "Secret {} was edited; the new values satisfy their rules and are kept",
                intent.secret_name
            ),
        });
    }

    let attributes_changed = previous
        .attributes
        .as_ref()
        .is_some_and(|a| a != &intent.attributes);
    let update_time = if rotated || edited || attributes_changed {
        Some(now)
    } else {
        // A status lost in a crash is rebuilt from the Secret's times.
        previous.update_time.max(rotated_at)
    };

    let next_rotation_time = match (intent.secret_from.is_none(), intent.interval, rotated_at) {
        (true, Some(interval), Some(last)) => Some(add(last, interval)),
        _ => None,
    };
    let requeue_after = [next_rotation_time, previous_expires_at]
        .into_iter()
        .flatten()
        .min()
        .map(|due| {
            let wait = due.duration_since(now);
            // At least a second: never a hot loop, whatever the clocks say.
            Duration::from_secs(wait.as_secs().max(1) as u64)
        });

    let state = State {
        key,
        revision: Some(revision),
        register_time: issued_at,
        update_time,
        last_rotation_time: rotated_at,
        last_rotation_reason: rotation_reason,
        next_rotation_time,
        previous_expiry_time: previous_expires_at,
        observed_reset_request,
        observed_reset_annotation,
    };
    Ok(Plan {
        secret: write_secret.then_some(desired),
        state: Some(state),
        readiness: Readiness {
            ready: true,
            reason: "Issued",
            message: format!(
                "credentials issued in Secret {} (revision {revision})",
                intent.secret_name
            ),
        },
        events,
        requeue_after,
        rotation: reason,
    })
}

struct Current {
    key: Option<String>,
    secret: Option<String>,
    previous: Option<String>,
    revision: Option<i64>,
    rotated_at: Option<Timestamp>,
    reason: Option<RotationReason>,
    issued_at: Option<Timestamp>,
    previous_expires_at: Option<Timestamp>,
    observed_reset_request: Option<String>,
    observed_reset_annotation: Option<String>,
}

fn key_changed_reason(intent: &Intent) -> RotationReason {
    match intent.key_generator {
        KeyGenerator::Uuid => RotationReason::AppKeyChanged,
        KeyGenerator::Rule { .. } => RotationReason::KeyChanged,
    }
}

fn generate_key<R: TryCryptoRng>(intent: &Intent, rng: &mut R) -> Result<String, GenerateError> {
    match intent.key_generator {
        KeyGenerator::Uuid => generate::app_key(rng),
        KeyGenerator::Rule { length } => generate::value(rng, intent.key_rule, length, false),
    }
}

pub fn reason_name(reason: RotationReason) -> &'static str {
    match reason {
        RotationReason::Initial => "Initial",
        RotationReason::Schedule => "Schedule",
        RotationReason::ResetRequest => "ResetRequest",
        RotationReason::AppKeyChanged => "AppKeyChanged",
        RotationReason::KeyChanged => "KeyChanged",
        RotationReason::SecretFromChanged => "SecretFromChanged",
        RotationReason::SecretRecreated => "SecretRecreated",
    }
}

/// Does the observed Secret already carry everything keysmith wants on it?
/// Fields others added (labels, annotations, data keys) are not ours to judge,
/// except data keys keysmith itself manages (a stale `_previous`).
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
        && annotations::ALL.iter().all(|a| {
            desired.annotations.contains_key(*a) || !observed.annotations.contains_key(*a)
        });
    data_matches && labels_match && annotations_match && observed.owner_referenced == desired.owned
}

#[cfg(test)]
mod tests;
