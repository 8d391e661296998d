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
    let mut plan = RolloutPlan {
        restart: Vec::new(),
        mark: mark.clone(),
        status: Vec::new(),
        ready: true,
        reason: Reason::RolledOut,
        message: String::new(),
        requeue_after: None,
    };
    let mut waiting = Vec::new();
    let mut problems = Vec::new();
    for target in found {
        let (kind, name, current) = match target {
            Found::Present { kind, name, mark } => (*kind, name, mark),
            Found::Missing { kind, name } => {
                problems.push(format!("{}/{name} does not exist", kind.as_str()));
                continue;
            }
            Found::Unreadable { what, message } => {
                problems.push(format!("{what}: {message}"));
                continue;
            }
        };
        let last = previous
            .iter()
            .find(|p| p.kind == kind && &p.name == name)
            .cloned();
        let last_restart = last
            .as_ref()
            .and_then(|l| l.restarted_at.as_ref())
            .map(|t| t.0);
        if current.as_deref() == Some(mark.as_str()) {
            plan.status.push(RolloutTargetStatus {
                kind,
                name: name.clone(),
                revision: Some(revision),
                restarted_at: last_restart.map(Time),
            });
            continue;
        }
        let due = min_interval
            .zip(last_restart)
            .map(|(interval, last)| add(last, interval))
            .filter(|due| *due > now);
        match due {
            Some(due) => {
                waiting.push(format!("{}/{name} at {due}", kind.as_str()));
                let wait = Duration::from_secs(due.duration_since(now).as_secs().max(1) as u64);
                plan.requeue_after = Some(plan.requeue_after.map_or(wait, |r| r.min(wait)));
                plan.status.push(last.unwrap_or(RolloutTargetStatus {
                    kind,
                    name: name.clone(),
                    revision: None,
                    restarted_at: None,
                }));
            }
            None => {
                plan.restart.push((kind, name.clone()));
                plan.status.push(RolloutTargetStatus {
                    kind,
                    name: name.clone(),
                    revision: Some(revision),
                    restarted_at: Some(Time(now)),
                });
            }
        }
    }
    plan.status
        .sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    if !problems.is_empty() {
        // A missing target may appear, a permission may be granted: look again.
        plan.requeue_after = Some(
            plan.requeue_after
                .map_or(RETRY_PROBLEMS, |r| r.min(RETRY_PROBLEMS)),
        );
    }
    (plan.ready, plan.reason, plan.message) = if !problems.is_empty() {
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
    };
    plan
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
