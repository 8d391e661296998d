//! Step four: the outcome. Given the snapshot and what the triggers asked
//! for, the values issued now and the bookkeeping that goes with them:
//! revision, times, the kept previous secret and its expiry, the reset
//! requests carried out, and when to look again.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use rand::TryCryptoRng;

use super::generate::{self, GenerateError};
use super::inputs::{Intent, KeyGenerator, Pending};
use super::snapshot::{Snapshot, add};
use super::triggers::{self, Renew, Renewal};
use crate::api::RotationReason;

/// The credential state after this pass, with its bookkeeping.
#[derive(Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Set when this pass issues a new credential set.
    pub rotation: Option<RotationReason>,
    pub key: Option<String>,
    pub secret: Option<String>,
    /// The kept previous secret and when it goes.
    pub previous: Option<(String, Timestamp)>,
    /// The key the kept previous secret was issued with (for gateway
    /// Secrets, whose entries are per key); `None` when not known.
    pub previous_key: Option<String>,
    pub revision: i64,
    pub rotated_at: Timestamp,
    pub rotation_reason: Option<RotationReason>,
    pub issued_at: Timestamp,
    pub update_time: Option<Timestamp>,
    pub next_rotation: Option<Timestamp>,
    pub observed_reset_request: Option<String>,
    pub observed_reset_annotation: Option<String>,
    /// Someone else changed the Secret's values, and they are kept.
    pub edited: bool,
}

/// The new values the renewal asks for: `(key, secret)`. A value to be
/// generated for the revision a pending set was fixed for is that set's
/// value instead: one trigger, one credential, whatever crashed between.
pub fn issue_values<R: TryCryptoRng>(
    intent: &Intent,
    renewal: &Renewal,
    pending: Option<&Pending>,
    rng: &mut R,
) -> Result<(Option<String>, Option<String>), GenerateError> {
    let key = match &renewal.key {
        None => None,
        Some(Renew::Use(value)) => Some(value.clone()),
        Some(Renew::Generate) => match pending {
            Some(p) => Some(p.key.clone()),
            None => Some(generate_key(intent, rng)?),
        },
    };
    let secret = match &renewal.secret {
        None => None,
        Some(Renew::Use(value)) => Some(value.clone()),
        Some(Renew::Generate) => match pending {
            Some(p) => Some(p.secret.clone()),
            None => Some(generate::value(
                rng,
                intent.secret_rule,
                intent.generator_length,
                intent.symbols,
            )?),
        },
    };
    Ok((key, secret))
}

fn generate_key<R: TryCryptoRng>(intent: &Intent, rng: &mut R) -> Result<String, GenerateError> {
    match intent.key_generator {
        KeyGenerator::Uuid => generate::app_key(rng),
        KeyGenerator::Rule { length } => generate::value(rng, intent.key_rule, length, false),
    }
}

/// Everything after the new values are known.
pub fn decide(
    s: &Snapshot,
    rotation: Option<RotationReason>,
    new_key: Option<String>,
    new_secret: Option<String>,
) -> Outcome {
    let rotated = rotation.is_some();
    let rotated_at = match rotation {
        Some(_) => s.now,
        None => s.record.rotated_at.unwrap_or(s.now),
    };
    let edited = s.issued.as_ref().is_some_and(|i| i.edited());
    let previous = plan_previous(s, new_secret.is_some());
    Outcome {
        previous_key: previous
            .as_ref()
            .and_then(|_| previous_key(s, new_secret.is_some())),
        previous,
        key: new_key.or_else(|| s.current_key().cloned()),
        secret: new_secret.or_else(|| s.current_secret().cloned()),
        revision: match rotation {
            Some(_) => s.record.revision.unwrap_or(0) + 1,
            None => s.record.revision.unwrap_or(1),
        },
        rotation_reason: rotation.or(s.record.reason),
        issued_at: s.record.issued_at.unwrap_or(s.now),
        update_time: plan_update_time(s, rotated || edited, rotated_at),
        next_rotation: triggers::next_rotation(s, Some(rotated_at)),
        observed_reset_request: observed_reset(
            triggers::reset_by_spec(s),
            rotation,
            &s.intent.reset_request,
            &s.record.observed_reset_request,
        ),
        observed_reset_annotation: observed_reset(
            triggers::reset_by_annotation(s),
            rotation,
            &s.intent.reset_annotation,
            &s.record.observed_reset_annotation,
        ),
        rotated_at,
        rotation,
        edited,
    }
}

/// The replaced secret is kept for `keepPrevious`; a kept one stays until it expires.
fn plan_previous(s: &Snapshot, secret_replaced: bool) -> Option<(String, Timestamp)> {
    if secret_replaced {
        let keep = s.intent.keep_previous.filter(|keep| !keep.is_zero())?;
        return Some((s.current_secret()?.clone(), add(s.now, keep)));
    }
    let value = s.issued.as_ref()?.previous.clone()?;
    let expiry = s.record.previous_expires_at?;
    (s.now < expiry).then_some((value, expiry))
}

/// The key of the kept previous secret: the key in use before this pass
/// when the secret is replaced now, else the one recorded with it (an
/// annotation anyone who may edit the Secret can change: it must pass the
/// key's rule, or it is not used).
fn previous_key(s: &Snapshot, secret_replaced: bool) -> Option<String> {
    if secret_replaced {
        s.current_key().cloned()
    } else {
        let recorded = s.record.previous_key.clone();
        recorded.filter(|key| s.intent.key_rule.is_valid(key))
    }
}

/// A reset value counts as carried out when it triggered this pass, and any
/// value present at the first issue is taken as already carried out.
fn observed_reset(
    triggered: bool,
    rotation: Option<RotationReason>,
    asked: &Option<String>,
    observed: &Option<String>,
) -> Option<String> {
    if triggered || rotation == Some(RotationReason::Initial) {
        asked.clone()
    } else {
        observed.clone()
    }
}

/// `updateTime` moves when the credentials, their values or the resource's
/// attributes change; a status lost in a crash is rebuilt from the Secret's times.
fn plan_update_time(s: &Snapshot, changed: bool, rotated_at: Timestamp) -> Option<Timestamp> {
    let attributes_changed = s
        .status
        .attributes
        .as_ref()
        .is_some_and(|a| a != &s.intent.attributes);
    if changed || attributes_changed {
        Some(s.now)
    } else {
        s.status.update_time.max(Some(rotated_at))
    }
}

/// When to look again: the next rotation or the previous secret's expiry,
/// at least a second away (never a hot loop, whatever the clocks say).
pub fn requeue_after(outcome: &Outcome, now: Timestamp) -> Option<Duration> {
    let expiry = outcome.previous.as_ref().map(|(_, expiry)| *expiry);
    [outcome.next_rotation, expiry]
        .into_iter()
        .flatten()
        .min()
        .map(|due| Duration::from_secs(due.duration_since(now).as_secs().max(1) as u64))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::api::names::annotations;
    use crate::engine::fixtures::{KEY, SECRET, World, t};

    fn decided(world: &World, rotation: Option<RotationReason>, secret: Option<&str>) -> Outcome {
        world.check(|s| decide(s, rotation, None, secret.map(String::from)))
    }

    #[test]
    fn without_a_rotation_everything_is_carried_from_the_record() {
        let world = World::issued();
        let outcome = decided(&world, None, None);
        assert_eq!(outcome.revision, 1);
        assert_eq!(outcome.rotated_at, t(0));
        assert_eq!(outcome.rotation_reason, Some(RotationReason::Initial));
        assert_eq!(outcome.issued_at, t(0));
        assert_eq!(outcome.key.as_deref(), Some(KEY));
        assert_eq!(outcome.secret.as_deref(), Some(SECRET));
        assert_eq!(
            outcome.update_time,
            Some(t(0)),
            "rebuilt from the Secret's times"
        );
        assert_eq!(outcome.previous, None);
    }

    #[test]
    fn a_rotation_moves_revision_and_times_to_now() {
        let world = World::issued();
        let outcome = decided(
            &world,
            Some(RotationReason::Schedule),
            Some("NewSecret0123456789abcdefg"),
        );
        assert_eq!(outcome.revision, 2);
        assert_eq!(outcome.rotated_at, t(10));
        assert_eq!(outcome.update_time, Some(t(10)));
        assert_eq!(outcome.issued_at, t(0), "registerTime never moves");
        assert_eq!(outcome.rotation_reason, Some(RotationReason::Schedule));
    }

    #[test]
    fn the_replaced_secret_is_kept_for_keep_previous_and_dropped_at_expiry() {
        let mut world = World::issued();
        world.intent.keep_previous = Some(Duration::from_secs(30));
        let outcome = decided(
            &world,
            Some(RotationReason::ResetRequest),
            Some("NewSecret0123456789abcdefg"),
        );
        assert_eq!(outcome.previous, Some((SECRET.to_string(), t(40))));
        assert_eq!(
            requeue_after(&outcome, t(10)),
            Some(Duration::from_secs(30))
        );

        // Carried while it lasts, then gone.
        world.set_data("app_secret_previous", Some("OldSecret"));
        world.set_annotation(annotations::PREVIOUS_EXPIRES_AT, &t(40).to_string());
        world.now = t(39);
        assert_eq!(
            decided(&world, None, None).previous,
            Some(("OldSecret".into(), t(40)))
        );
        world.now = t(40);
        assert_eq!(decided(&world, None, None).previous, None);
    }

    #[test]
    fn a_zero_keep_previous_keeps_nothing() {
        let mut world = World::issued();
        world.intent.keep_previous = Some(Duration::ZERO);
        let outcome = decided(
            &world,
            Some(RotationReason::ResetRequest),
            Some("NewSecret0123456789abcdefg"),
        );
        assert_eq!(outcome.previous, None);
    }

    #[test]
    fn next_rotation_and_requeue_follow_the_interval() {
        let mut world = World::issued();
        world.intent.interval = Some(Duration::from_secs(60));
        let outcome = decided(&world, None, None);
        assert_eq!(outcome.next_rotation, Some(t(60)));
        assert_eq!(
            requeue_after(&outcome, t(10)),
            Some(Duration::from_secs(50))
        );
        assert_eq!(
            requeue_after(&outcome, t(100)),
            Some(Duration::from_secs(1)),
            "never a hot loop"
        );
    }

    #[test]
    fn reset_values_present_at_the_first_issue_count_as_carried_out() {
        let mut world = World::new();
        world.intent.reset_request = Some("a".into());
        let outcome = decided(&world, Some(RotationReason::Initial), None);
        assert_eq!(outcome.observed_reset_request.as_deref(), Some("a"));
    }

    #[test]
    fn an_attribute_change_moves_update_time_only() {
        let mut world = World::issued();
        world.status.attributes = Some(crate::api::Attributes::named("renamed"));
        let outcome = decided(&world, None, None);
        assert_eq!(outcome.update_time, Some(t(10)));
        assert_eq!(outcome.revision, 1);
    }

    #[test]
    fn generated_values_follow_the_intent() {
        let world = World::issued();
        let renewal = Renewal {
            reason: Some(RotationReason::ResetRequest),
            key: Some(Renew::Generate),
            secret: Some(Renew::Generate),
        };
        let (key, secret) = issue_values(
            &world.intent,
            &renewal,
            None,
            &mut crate::engine::fixtures::rng(),
        )
        .unwrap();
        assert_eq!(key.unwrap().len(), 36, "a UUID");
        let secret = secret.unwrap();
        assert_eq!(secret.len(), 32);
        assert!(world.intent.secret_rule.is_valid(&secret));
    }
}
