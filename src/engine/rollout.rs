//! Rollout on rotation (SPEC §9.1), decided purely: given the current
//! revision, the targets as found (each with the mark keysmith left on its
//! pod template, if any) and when each was last restarted, which targets to
//! restart now, which wait for `minInterval`, and what `RolloutReady` and
//! `status.rollout` say.
//!
//! A target restarts when its mark is not this resource's current revision —
//! so never twice for one revision, and not on an operator restart, a
//! re-list, or any pass that issued nothing new.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::snapshot::add;
use crate::api::{Reason, RolloutTargetStatus, WorkloadKind};

/// How soon a pass with a missing or unreadable target looks again.
pub const RETRY_PROBLEMS: Duration = Duration::from_secs(60);

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

/// What the rollout step does and reports.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutPlan {
    /// Restart these now (set the mark to `mark`).
    pub restart: Vec<(WorkloadKind, String)>,
    /// The mark of the current revision: `<Kind>/<name>@<revision>`.
    pub mark: String,
    /// `status.rollout`, assuming the restarts succeed.
    pub status: Vec<RolloutTargetStatus>,
    pub ready: bool,
    pub reason: Reason,
    pub message: String,
    /// When a target waiting for `minInterval` is due.
    pub requeue_after: Option<Duration>,
}

/// What one present target needs.
enum Step {
    /// It carries the current mark.
    Done(RolloutTargetStatus),
    /// It waits for `minInterval` until this instant.
    Wait(RolloutTargetStatus, Timestamp),
    Restart(RolloutTargetStatus),
}

/// The decision for one present target.
fn plan_target(
    (kind, name, current): (WorkloadKind, &str, Option<&str>),
    mark: &str,
    revision: i64,
    previous: &[RolloutTargetStatus],
    min_interval: Option<Duration>,
    now: Timestamp,
) -> Step {
    let last = previous
        .iter()
        .find(|p| p.kind == kind && p.name == name)
        .cloned();
    let last_restart = last
        .as_ref()
        .and_then(|l| l.restarted_at.as_ref())
        .map(|t| t.0);
    let entry = |revision, restarted_at: Option<Timestamp>| RolloutTargetStatus {
        kind,
        name: name.to_string(),
        revision,
        restarted_at: restarted_at.map(Time),
    };
    if current == Some(mark) {
        return Step::Done(entry(Some(revision), last_restart));
    }
    let due = min_interval
        .zip(last_restart)
        .map(|(interval, last)| add(last, interval))
        .filter(|due| *due > now);
    match due {
        Some(due) => Step::Wait(last.unwrap_or(entry(None, None)), due),
        None => Step::Restart(entry(Some(revision), Some(now))),
    }
}

/// `resource` is `<Kind>/<name>` of the keysmith resource.
pub fn plan_rollout(
    resource: &str,
    revision: i64,
    found: &[Found],
    previous: &[RolloutTargetStatus],
    min_interval: Option<Duration>,
    now: Timestamp,
) -> RolloutPlan {
    let mark = format!("{resource}@{revision}");
    let (mut restart, mut status, mut waiting, mut problems) = (vec![], vec![], vec![], vec![]);
    let mut due_at: Option<Timestamp> = None;
    for target in found {
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
        match plan_target(present, &mark, revision, previous, min_interval, now) {
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
    status.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    let (ready, reason, message) = summarize(revision, &problems, &waiting);
    RolloutPlan {
        restart,
        mark,
        status,
        ready,
        reason,
        message,
        requeue_after: requeue_after(due_at, !problems.is_empty(), now),
    }
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

    fn restarted(name: &str, revision: i64, at: Timestamp) -> RolloutTargetStatus {
        RolloutTargetStatus {
            kind: WorkloadKind::Deployment,
            name: name.into(),
            revision: Some(revision),
            restarted_at: Some(Time(at)),
        }
    }

    #[test]
    fn a_target_restarts_once_per_revision() {
        let plan = plan_rollout(
            "GatewayApp/a",
            2,
            &[present("web", Some("GatewayApp/a@1"))],
            &[],
            None,
            t(0),
        );
        assert_eq!(
            plan.restart,
            [(WorkloadKind::Deployment, "web".to_string())]
        );
        assert_eq!(plan.status, [restarted("web", 2, t(0))]);
        assert!(plan.ready);
        // The next pass finds the mark: nothing more.
        let again = plan_rollout(
            "GatewayApp/a",
            2,
            &[present("web", Some("GatewayApp/a@2"))],
            &plan.status,
            None,
            t(5),
        );
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
        let plan = plan_rollout(
            "GatewayApp/a",
            1,
            &[present("web", Some("GatewayApp/b@1"))],
            &[],
            None,
            t(0),
        );
        assert_eq!(plan.restart.len(), 1);
    }

    #[test]
    fn min_interval_defers_to_the_end_of_the_interval_and_then_restarts_once() {
        let previous = [restarted("web", 1, t(0))];
        let interval = Some(Duration::from_secs(60));
        let early = plan_rollout(
            "GatewayApp/a",
            3,
            &[present("web", Some("GatewayApp/a@1"))],
            &previous,
            interval,
            t(20),
        );
        assert!(early.restart.is_empty());
        assert_eq!(early.requeue_after, Some(Duration::from_secs(40)));
        assert_eq!(early.reason, Reason::RolloutPending);
        assert_eq!(early.status, previous, "still the last restart");
        let due = plan_rollout(
            "GatewayApp/a",
            3,
            &[present("web", Some("GatewayApp/a@1"))],
            &previous,
            interval,
            t(60),
        );
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
        let plan = plan_rollout("SignatureKey/k", 1, &found, &[], None, t(0));
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
        let plan = plan_rollout("GatewayApp/a", 1, &[], &[], None, t(0));
        assert!(plan.ready && plan.restart.is_empty() && plan.status.is_empty());
    }
}
