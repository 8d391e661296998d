//! The parts of a status both kinds share: the Ready condition and the
//! rotation bookkeeping, built from a plan; and the reverse, what the
//! engine needs of the last status (its rotation and rollout records).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::time;
use crate::api::{ConditionType, Reason, RolloutTargetStatus, RotationStatus};
use crate::engine::rollout::{RolloutRecord, RolloutSettled, TargetStatus};
use crate::engine::{Intent, Plan, PreviousStatus};

/// What this pass says about `spec.rollout`.
#[derive(Clone, Copy, Debug)]
pub enum RolloutReport<'a> {
    /// No `spec.rollout`: no rollout status, no `RolloutReady`.
    Absent,
    /// Not evaluated this pass (it is blocked): keep what the status says.
    Unchanged,
    Settled(&'a RolloutSettled),
}

/// A condition; `lastTransitionTime` moves only when its status flips.
fn condition(
    type_: ConditionType,
    previous: &[Condition],
    (ready, reason, message): (bool, Reason, &str),
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status = if ready { "True" } else { "False" };
    let last_transition_time = match previous.iter().find(|c| c.type_ == type_.as_str()) {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Time(now),
    };
    Condition {
        type_: type_.as_str().into(),
        status: status.into(),
        reason: reason.as_str().into(),
        message: message.into(),
        last_transition_time,
        observed_generation: generation,
    }
}

/// Ready first, then RolloutReady (as the report says): keysmith's own
/// conditions only. The list is a map keyed by `type`, so server-side apply
/// leaves every other writer's conditions where they are.
fn conditions(
    previous: &[Condition],
    plan: &Plan,
    rollout: RolloutReport,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let readiness = &plan.readiness;
    let mut out = vec![condition(
        ConditionType::Ready,
        previous,
        (readiness.ready, readiness.reason, &readiness.message),
        generation,
        now,
    )];
    let rollout_ready = ConditionType::RolloutReady.as_str();
    match rollout {
        RolloutReport::Settled(p) => out.push(condition(
            ConditionType::RolloutReady,
            previous,
            (p.ready, p.reason, &p.message),
            generation,
            now,
        )),
        RolloutReport::Unchanged => out.extend(
            previous
                .iter()
                .filter(|c| c.type_ == rollout_ready)
                .cloned(),
        ),
        RolloutReport::Absent => {}
    }
    out
}

/// The conditions keysmith writes, in the order it writes them: what a
/// status shows of keysmith's own, to compare with what it would write.
pub(crate) fn own_conditions(conditions: &[Condition]) -> Vec<Condition> {
    ConditionType::ALL
        .iter()
        .filter_map(|t| conditions.iter().find(|c| c.type_ == t.as_str()))
        .cloned()
        .collect()
}

pub(crate) fn rotation_status(
    previous: &RotationStatus,
    intent: &Intent,
    plan: &Plan,
    rollout: RolloutReport,
    generation: Option<i64>,
    now: Timestamp,
) -> RotationStatus {
    let conditions = conditions(&previous.conditions, plan, rollout, generation, now);
    let rollout = match rollout {
        RolloutReport::Settled(p) => keep_restart_times(&p.status, &previous.rollout),
        RolloutReport::Unchanged => previous.rollout.clone(),
        RolloutReport::Absent => Vec::new(),
    };
    match &plan.state {
        Some(state) => RotationStatus {
            secret_name: Some(intent.secret_name.clone()),
            last_rotation_time: time(state.last_rotation_time),
            last_rotation_reason: state.last_rotation_reason,
            next_rotation_time: time(state.next_rotation_time),
            previous_secret_expiry_time: time(state.previous_expiry_time),
            revision: state.revision,
            observed_reset_request: state.observed_reset_request.clone(),
            observed_reset_annotation: state.observed_reset_annotation.clone(),
            observed_generation: generation,
            generator_length: Some(intent.generator_length as u32),
            sealed: never_unsealed(state.sealed, previous.sealed),
            rollout,
            conditions,
        },
        // Blocked: keep what was issued, report why.
        None => RotationStatus {
            observed_generation: generation,
            conditions,
            rollout,
            ..previous.clone()
        },
    }
}

pub(crate) fn previous_rotation(
    status: &RotationStatus,
    key: Option<String>,
    register: Option<&Time>,
    update: Option<&Time>,
) -> PreviousStatus {
    PreviousStatus {
        key,
        revision: status.revision,
        last_rotation_time: status.last_rotation_time.as_ref().map(|t| t.0),
        last_rotation_reason: status.last_rotation_reason,
        register_time: register.map(|t| t.0),
        update_time: update.map(|t| t.0),
        observed_reset_request: status.observed_reset_request.clone(),
        observed_reset_annotation: status.observed_reset_annotation.clone(),
        previous_expiry_time: status.previous_secret_expiry_time.as_ref().map(|t| t.0),
        sealed: status.sealed == Some(true),
        attributes: None,
        ready_reason: status
            .conditions
            .iter()
            .find(|c| c.type_ == ConditionType::Ready.as_str())
            .and_then(|c| Reason::parse(&c.reason)),
    }
}

/// `status.rollout` as settled, but a target's restart time for a revision
/// is never lost: a pass planned on a copy older than the status that
/// recorded the restart (our own write still on its way to the cache) sees
/// the mark but not the time, and `minInterval` needs the time.
fn keep_restart_times(
    settled: &[TargetStatus],
    recorded: &[RolloutTargetStatus],
) -> Vec<RolloutTargetStatus> {
    settled
        .iter()
        .map(|entry| {
            let known = recorded.iter().find(|r| {
                (r.kind, &r.name, r.revision) == (entry.kind, &entry.name, entry.revision)
            });
            RolloutTargetStatus {
                kind: entry.kind,
                name: entry.name.clone(),
                revision: entry.revision,
                restarted_at: time(entry.restarted_at)
                    .or_else(|| known.and_then(|k| k.restarted_at.clone())),
            }
        })
        .collect()
}

/// What the engine's rollout step needs of the last status: `status.rollout`
/// and `RolloutReady`'s reason and message (empty without a status).
pub fn rollout_record(status: Option<&RotationStatus>) -> RolloutRecord {
    let Some(status) = status else {
        return RolloutRecord::default();
    };
    let targets = status.rollout.iter().map(|t| TargetStatus {
        kind: t.kind,
        name: t.name.clone(),
        revision: t.revision,
        restarted_at: t.restarted_at.as_ref().map(|at| at.0),
    });
    let reported = status
        .conditions
        .iter()
        .find(|c| c.type_ == ConditionType::RolloutReady.as_str())
        .and_then(|c| Some((Reason::parse(&c.reason)?, c.message.clone())));
    RolloutRecord {
        targets: targets.collect(),
        reported,
    }
}

/// `updateTime` as planned, but never earlier than the status already says:
/// a pass planned on a copy older than a status an earlier pass wrote (our
/// own write still on its way to the cache) must not move it backwards.
pub(crate) fn never_earlier(planned: Option<Timestamp>, recorded: Option<&Time>) -> Option<Time> {
    time(planned.max(recorded.map(|t| t.0)))
}

/// `sealed` as planned, but never unset once the status says it: a pass
/// planned on a copy older than the status that set it (our own write still
/// on its way to the cache) must not clear it.
pub(crate) fn never_unsealed(planned: bool, recorded: Option<bool>) -> Option<bool> {
    (planned || recorded == Some(true)).then_some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_is_never_unset() {
        assert_eq!(never_unsealed(true, None), Some(true));
        assert_eq!(
            never_unsealed(false, Some(true)),
            Some(true),
            "a lagging copy"
        );
        assert_eq!(never_unsealed(false, None), None);
    }

    fn entry(revision: i64, at: Option<Time>) -> RolloutTargetStatus {
        RolloutTargetStatus {
            kind: crate::api::WorkloadKind::Deployment,
            name: "web".into(),
            revision: Some(revision),
            restarted_at: at,
        }
    }

    fn settled(revision: i64) -> TargetStatus {
        TargetStatus {
            kind: crate::api::WorkloadKind::Deployment,
            name: "web".into(),
            revision: Some(revision),
            restarted_at: None,
        }
    }

    #[test]
    fn a_recorded_restart_time_is_kept_when_the_plan_lost_it() {
        let t = Time(Timestamp::from_second(1_800_000_000).unwrap());
        let kept = keep_restart_times(&[settled(1)], &[entry(1, Some(t.clone()))]);
        assert_eq!(kept, [entry(1, Some(t.clone()))]);
        let other = keep_restart_times(&[settled(2)], &[entry(1, Some(t))]);
        assert_eq!(other, [entry(2, None)], "only for the same revision");
    }

    #[test]
    fn the_rollout_record_is_read_off_the_status() {
        assert_eq!(rollout_record(None), RolloutRecord::default());
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let reported = |reason: &str| RotationStatus {
            rollout: vec![entry(3, Some(Time(at)))],
            conditions: vec![Condition {
                type_: "RolloutReady".into(),
                status: "False".into(),
                reason: reason.into(),
                message: "Deployment/web: forbidden".into(),
                last_transition_time: Time(at),
                observed_generation: None,
            }],
            ..Default::default()
        };
        let record = rollout_record(Some(&reported("RolloutFailed")));
        let target = TargetStatus {
            restarted_at: Some(at),
            ..settled(3)
        };
        assert_eq!(record.targets, [target]);
        assert_eq!(
            record.reported,
            Some((Reason::RolloutFailed, "Deployment/web: forbidden".into()))
        );
        let foreign = rollout_record(Some(&reported("SomeoneElses")));
        assert_eq!(foreign.reported, None, "not a reason keysmith writes");
    }

    #[test]
    fn update_time_never_moves_backwards() {
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).unwrap();
        assert_eq!(
            never_earlier(Some(t(5)), Some(&Time(t(9)))),
            Some(Time(t(9)))
        );
        assert_eq!(
            never_earlier(Some(t(9)), Some(&Time(t(5)))),
            Some(Time(t(9)))
        );
        assert_eq!(never_earlier(None, Some(&Time(t(5)))), Some(Time(t(5))));
        assert_eq!(never_earlier(Some(t(5)), None), Some(Time(t(5))));
    }
}
