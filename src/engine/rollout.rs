//! Rollout on rotation (SPEC §9.1), decided purely over one set of facts
//! ([`RolloutFacts`]: the current revision, the targets as found — each
//! with the mark keysmith left on its pod template, if any — and what the
//! last status recorded), in two steps around the controller's restarts:
//!
//! 1. [`plan_rollout`] — which targets to restart now and which wait for
//!    `minInterval`;
//! 2. [`settle_rollout`] — given how each restart went, what
//!    `status.rollout` and `RolloutReady` say and which events go out. The
//!    controller emits those events and nothing else.
//!
//! A target restarts when its mark is not this resource's current revision —
//! so never twice for one revision, and not on an operator restart, a
//! re-list, or any pass that issued nothing new.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use super::render::{PlannedEvent, Severity};
use super::snapshot::add;
use crate::api::{Reason, WorkloadKind};

/// How soon a pass with a missing or unreadable target looks again.
pub const RETRY_PROBLEMS: Duration = Duration::from_secs(60);

/// A workload, by kind and name.
pub type Target = (WorkloadKind, String);

/// A target as the controller found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// It exists; `mark` is its pod template's `restarted-for` value for this resource.
    Present {
        kind: WorkloadKind,
        name: String,
        mark: Option<String>,
    },
    /// Named in `spec.rollout.targets` but not there.
    Missing { kind: WorkloadKind, name: String },
    /// Could not be read (forbidden, a bad selector, …): the apiserver's words.
    Unreadable { what: String, message: String },
}

/// A target as `status.rollout` records it. The engine's own type, with a
/// plain timestamp: `kinds` translates it to and from the API's
/// `RolloutTargetStatus`, so the engine needs no Kubernetes type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetStatus {
    pub kind: WorkloadKind,
    pub name: String,
    /// The revision its pods were restarted for.
    pub revision: Option<i64>,
    /// When keysmith restarted it (absent: it already carried the revision).
    pub restarted_at: Option<Timestamp>,
}

/// What the last status says of the rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RolloutRecord {
    /// `status.rollout`.
    pub targets: Vec<TargetStatus>,
    /// `RolloutReady`'s reason and message, when the reason is keysmith's.
    pub reported: Option<(Reason, String)>,
}

/// Everything a rollout decision is made on.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutFacts {
    /// `<Kind>/<name>` of the keysmith resource.
    pub resource: String,
    /// The credential revision the targets must run.
    pub revision: i64,
    pub found: Vec<Found>,
    pub record: RolloutRecord,
    pub min_interval: Option<Duration>,
    pub now: Timestamp,
}

/// What the rollout step does, and what it reports if every restart succeeds.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutPlan {
    /// Restart these now (set the mark to `mark`).
    pub restart: Vec<Target>,
    /// The mark of the current revision: `<Kind>/<name>@<revision>`.
    pub mark: String,
    /// `status.rollout`, assuming the restarts succeed.
    pub status: Vec<TargetStatus>,
    pub ready: bool,
    pub reason: Reason,
    pub message: String,
    /// When a target waiting for `minInterval` is due.
    pub requeue_after: Option<Duration>,
}

/// How one restart went: `Err` holds the apiserver's words.
pub type Restarted = (Target, Result<(), String>);

/// The rollout once the restarts were tried: what the status step writes
/// and the events to emit.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutSettled {
    /// The targets restarted this pass, in order.
    pub restarted: Vec<Target>,
    pub status: Vec<TargetStatus>,
    pub ready: bool,
    pub reason: Reason,
    pub message: String,
    pub requeue_after: Option<Duration>,
    /// A Normal event per restart, then a Warning if the rollout failed anew.
    pub events: Vec<PlannedEvent>,
}

/// What one present target needs.
enum Step {
    /// It carries the current mark.
    Done(TargetStatus),
    /// It waits for `minInterval` until this instant.
    Wait(TargetStatus, Timestamp),
    Restart(TargetStatus),
}

/// The decision for one present target.
fn plan_target(
    (kind, name, current): (WorkloadKind, &str, Option<&str>),
    mark: &str,
    facts: &RolloutFacts,
) -> Step {
    let last = recorded(&facts.record.targets, &(kind, name.to_string())).cloned();
    let last_restart = last.as_ref().and_then(|l| l.restarted_at);
    let entry = |revision, restarted_at| TargetStatus {
        kind,
        name: name.to_string(),
        revision,
        restarted_at,
    };
    if current == Some(mark) {
        return Step::Done(entry(Some(facts.revision), last_restart));
    }
    let due = facts
        .min_interval
        .zip(last_restart)
        .map(|(interval, last)| add(last, interval))
        .filter(|due| *due > facts.now);
    match due {
        Some(due) => Step::Wait(last.unwrap_or(entry(None, None)), due),
        None => Step::Restart(entry(Some(facts.revision), Some(facts.now))),
    }
}

/// The status entry recorded for `target`, if any.
fn recorded<'a>(targets: &'a [TargetStatus], (kind, name): &Target) -> Option<&'a TargetStatus> {
    targets.iter().find(|t| t.kind == *kind && t.name == *name)
}

/// Step 1: which targets restart now, which wait, and what `RolloutReady`
/// says if the restarts succeed.
pub fn plan_rollout(facts: &RolloutFacts) -> RolloutPlan {
    let mark = format!("{}@{}", facts.resource, facts.revision);
    let (mut restart, mut status, mut waiting, mut problems) = (vec![], vec![], vec![], vec![]);
    let mut due_at: Option<Timestamp> = None;
    for target in &facts.found {
        let present = match target {
            Found::Present { kind, name, mark } => (*kind, name.as_str(), mark.as_deref()),
            Found::Missing { kind, name } => {
                problems.push(format!("{}/{name} does not exist", kind.as_str()));
                continue;
            }
            Found::Unreadable { what, message } => {
                problems.push(format!("{what}: {message}"));
                continue;
            }
        };
        match plan_target(present, &mark, facts) {
            Step::Done(entry) => status.push(entry),
            Step::Wait(entry, due) => {
                waiting.push(format!("{}/{} at {due}", present.0.as_str(), present.1));
                due_at = Some(due_at.map_or(due, |d| d.min(due)));
                status.push(entry);
            }
            Step::Restart(entry) => {
                restart.push((entry.kind, entry.name.clone()));
                status.push(entry);
            }
        }
    }
    sort(&mut status);
    let (ready, reason, message) = summarize(facts.revision, &problems, &waiting);
    RolloutPlan {
        restart,
        mark,
        status,
        ready,
        reason,
        message,
        requeue_after: requeue_after(due_at, !problems.is_empty(), facts.now),
    }
}

fn sort(status: &mut [TargetStatus]) {
    status.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
}

/// When to look again: a waiting target's due time; within a minute after
/// a problem (a missing target may appear, a permission may be granted).
fn requeue_after(due_at: Option<Timestamp>, problems: bool, now: Timestamp) -> Option<Duration> {
    let wait =
        due_at.map(|due| Duration::from_secs(due.duration_since(now).as_secs().max(1) as u64));
    let retry = problems.then_some(RETRY_PROBLEMS);
    [wait, retry].into_iter().flatten().min()
}

/// `RolloutReady`: problems first, then waiting targets, else rolled out.
fn summarize(revision: i64, problems: &[String], waiting: &[String]) -> (bool, Reason, String) {
    if !problems.is_empty() {
        (false, Reason::RolloutFailed, problems.join("; "))
    } else if !waiting.is_empty() {
        (
            false,
            Reason::RolloutPending,
            format!("waiting for rollout.minInterval: {}", waiting.join(", ")),
        )
    } else {
        (
            true,
            Reason::RolledOut,
            format!("every target runs revision {revision}"),
        )
    }
}

/// Step 2: the rollout after the controller tried `plan`'s restarts.
pub fn settle_rollout(
    facts: &RolloutFacts,
    plan: RolloutPlan,
    results: Vec<Restarted>,
) -> RolloutSettled {
    let (mut restarted, mut failures) = (Vec::new(), Vec::new());
    for (target, result) in results {
        match result {
            Ok(()) => restarted.push(target),
            Err(message) => failures.push((target, message)),
        }
    }
    let mut settled = RolloutSettled {
        events: restart_events(&restarted, facts.revision),
        restarted,
        status: plan.status,
        ready: plan.ready,
        reason: plan.reason,
        message: plan.message,
        requeue_after: plan.requeue_after,
    };
    record_failures(&mut settled, failures, &facts.record.targets);
    settled
        .events
        .extend(failure_event(&settled, facts.record.reported.as_ref()));
    settled
}

/// A Normal event per target restarted.
fn restart_events(restarted: &[Target], revision: i64) -> Vec<PlannedEvent> {
    restarted
        .iter()
        .map(|(kind, name)| PlannedEvent {
            severity: Severity::Normal,
            reason: Reason::RolloutTriggered,
            note: format!("restarted {}/{name} for revision {revision}", kind.as_str()),
        })
        .collect()
}

/// Targets whose restart failed keep their last status entry (or none),
/// and the failures join `RolloutReady`'s message, after the problems
/// found before.
fn record_failures(
    settled: &mut RolloutSettled,
    failures: Vec<(Target, String)>,
    recorded_targets: &[TargetStatus],
) {
    if failures.is_empty() {
        return;
    }
    let mut problems = Vec::new();
    if settled.reason == Reason::RolloutFailed {
        problems.push(settled.message.clone());
    }
    for (target, message) in failures {
        let (kind, name) = &target;
        settled
            .status
            .retain(|s| (s.kind, &s.name) != (*kind, name));
        settled
            .status
            .extend(recorded(recorded_targets, &target).cloned());
        problems.push(format!("{}/{name}: {message}", kind.as_str()));
    }
    sort(&mut settled.status);
    settled.ready = false;
    settled.reason = Reason::RolloutFailed;
    settled.message = problems.join("; ");
}

/// A Warning when the rollout fails anew: not on every pass it stays
/// failed the same way (`reported` is what the last status said).
fn failure_event(
    settled: &RolloutSettled,
    reported: Option<&(Reason, String)>,
) -> Option<PlannedEvent> {
    let failed = settled.reason == Reason::RolloutFailed;
    let already = reported.is_some_and(|(reason, message)| {
        (*reason, message.as_str()) == (settled.reason, settled.message.as_str())
    });
    (failed && !already).then(|| PlannedEvent {
        severity: Severity::Warning,
        reason: Reason::RolloutFailed,
        note: settled.message.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fixtures::t;

    fn present(name: &str, mark: Option<&str>) -> Found {
        Found::Present {
            kind: WorkloadKind::Deployment,
            name: name.into(),
            mark: mark.map(String::from),
        }
    }

    fn restarted(name: &str, revision: i64, at: Timestamp) -> TargetStatus {
        TargetStatus {
            kind: WorkloadKind::Deployment,
            name: name.into(),
            revision: Some(revision),
            restarted_at: Some(at),
        }
    }

    fn web() -> Target {
        (WorkloadKind::Deployment, "web".to_string())
    }

    /// `GatewayApp/a` at `revision`, finding `found`, after a status that
    /// recorded `targets`, at `now`.
    fn facts(
        revision: i64,
        found: &[Found],
        targets: &[TargetStatus],
        now: Timestamp,
    ) -> RolloutFacts {
        RolloutFacts {
            resource: "GatewayApp/a".into(),
            revision,
            found: found.to_vec(),
            record: RolloutRecord {
                targets: targets.to_vec(),
                reported: None,
            },
            min_interval: None,
            now,
        }
    }

    #[test]
    fn a_target_restarts_once_per_revision() {
        let plan = plan_rollout(&facts(
            2,
            &[present("web", Some("GatewayApp/a@1"))],
            &[],
            t(0),
        ));
        assert_eq!(plan.restart, [web()]);
        assert_eq!(plan.status, [restarted("web", 2, t(0))]);
        assert!(plan.ready);
        // The next pass finds the mark: nothing more.
        let found = [present("web", Some("GatewayApp/a@2"))];
        let again = plan_rollout(&facts(2, &found, &plan.status, t(5)));
        assert!(again.restart.is_empty());
        assert_eq!(
            again.status,
            [restarted("web", 2, t(0))],
            "the time of the restart is kept"
        );
        assert_eq!(again.reason, Reason::RolledOut);
    }

    #[test]
    fn another_resources_mark_is_not_ours() {
        let plan = plan_rollout(&facts(
            1,
            &[present("web", Some("GatewayApp/b@1"))],
            &[],
            t(0),
        ));
        assert_eq!(plan.restart.len(), 1);
    }

    #[test]
    fn min_interval_defers_to_the_end_of_the_interval_and_then_restarts_once() {
        let previous = [restarted("web", 1, t(0))];
        let found = [present("web", Some("GatewayApp/a@1"))];
        let at = |now| RolloutFacts {
            min_interval: Some(Duration::from_secs(60)),
            ..facts(3, &found, &previous, now)
        };
        let early = plan_rollout(&at(t(20)));
        assert!(early.restart.is_empty());
        assert_eq!(early.requeue_after, Some(Duration::from_secs(40)));
        assert_eq!(early.reason, Reason::RolloutPending);
        assert_eq!(early.status, previous, "still the last restart");
        let due = plan_rollout(&at(t(60)));
        assert_eq!(due.restart.len(), 1);
        assert_eq!(due.status, [restarted("web", 3, t(60))]);
    }

    #[test]
    fn missing_and_unreadable_targets_are_named_and_block_nothing_else() {
        let found = [
            present("web", None),
            Found::Missing {
                kind: WorkloadKind::StatefulSet,
                name: "db".into(),
            },
            Found::Unreadable {
                what: "DaemonSets".into(),
                message: "forbidden".into(),
            },
        ];
        let plan = plan_rollout(&facts(1, &found, &[], t(0)));
        assert_eq!(plan.restart.len(), 1, "the present one still restarts");
        assert!(!plan.ready);
        assert_eq!(plan.reason, Reason::RolloutFailed);
        assert!(
            plan.message.contains("StatefulSet/db does not exist"),
            "{}",
            plan.message
        );
        assert!(
            plan.message.contains("DaemonSets: forbidden"),
            "{}",
            plan.message
        );
    }

    #[test]
    fn no_targets_is_rolled_out() {
        let plan = plan_rollout(&facts(1, &[], &[], t(0)));
        assert!(plan.ready && plan.restart.is_empty() && plan.status.is_empty());
    }

    #[test]
    fn a_restart_that_succeeds_is_recorded_with_one_normal_event() {
        let facts = facts(2, &[present("web", Some("GatewayApp/a@1"))], &[], t(0));
        let plan = plan_rollout(&facts);
        let settled = settle_rollout(&facts, plan.clone(), vec![(web(), Ok(()))]);
        assert_eq!(settled.restarted, [web()]);
        assert_eq!(settled.status, plan.status);
        assert!(settled.ready);
        assert_eq!(settled.reason, Reason::RolledOut);
        assert_eq!(
            settled.events,
            [PlannedEvent {
                severity: Severity::Normal,
                reason: Reason::RolloutTriggered,
                note: "restarted Deployment/web for revision 2".into(),
            }]
        );
    }

    #[test]
    fn a_failed_restart_keeps_the_last_entry_and_joins_the_problems_found() {
        let found = [
            present("web", Some("GatewayApp/a@1")),
            present("api", None),
            Found::Missing {
                kind: WorkloadKind::StatefulSet,
                name: "db".into(),
            },
        ];
        let facts = facts(2, &found, &[restarted("web", 1, t(0))], t(9));
        let plan = plan_rollout(&facts);
        let api = (WorkloadKind::Deployment, "api".to_string());
        let results = vec![(api.clone(), Ok(())), (web(), Err("forbidden".into()))];
        let settled = settle_rollout(&facts, plan, results);
        assert_eq!(settled.restarted, [api]);
        let api_entry = TargetStatus {
            name: "api".into(),
            ..restarted("web", 2, t(9))
        };
        assert_eq!(settled.status, [api_entry, restarted("web", 1, t(0))]);
        assert!(!settled.ready);
        assert_eq!(settled.reason, Reason::RolloutFailed);
        assert_eq!(
            settled.message,
            "StatefulSet/db does not exist; Deployment/web: forbidden"
        );
        let severities: Vec<_> = settled.events.iter().map(|e| e.severity).collect();
        assert_eq!(severities, [Severity::Normal, Severity::Warning]);
        assert_eq!(settled.events[1].note, settled.message);
    }

    #[test]
    fn a_target_never_restarted_has_no_entry_while_its_restart_fails() {
        let facts = facts(1, &[present("web", None)], &[], t(0));
        let plan = plan_rollout(&facts);
        let settled = settle_rollout(&facts, plan, vec![(web(), Err("forbidden".into()))]);
        assert!(settled.status.is_empty());
        assert!(settled.restarted.is_empty());
    }

    #[test]
    fn a_failure_is_warned_about_once_not_on_every_pass_it_stays() {
        let found = [present("web", None)];
        let first = facts(1, &found, &[], t(0));
        let failed = || vec![(web(), Err("forbidden".to_string()))];
        let settled = settle_rollout(&first, plan_rollout(&first), failed());
        assert_eq!(settled.events.len(), 1);
        let record = RolloutRecord {
            targets: settled.status.clone(),
            reported: Some((settled.reason, settled.message.clone())),
        };
        let again = RolloutFacts {
            record: record.clone(),
            ..first.clone()
        };
        let quiet = settle_rollout(&again, plan_rollout(&again), failed());
        assert!(quiet.events.is_empty(), "{:?}", quiet.events);
        // Failing differently is news.
        let other = vec![(web(), Err("conflict".to_string()))];
        let news = settle_rollout(&again, plan_rollout(&again), other);
        assert_eq!(news.events.len(), 1);
    }
}
