//! The rollout step (SPEC §9.1): after the Secret, before the status. Finds
//! the targets of `spec.rollout`, lets the engine decide which to restart,
//! and restarts them the `kubectl rollout restart` way — a pod-template
//! annotation — by server-side apply under a field manager of this resource
//! alone, so several keysmith resources can mark one workload without
//! undoing each other's marks, and GitOps tools see no drift of theirs.
//! A missing or unpatchable target never blocks issuing: it is reported in
//! `RolloutReady` and a Warning event.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::context::KindContext;
use super::secrets::SecretInPlace;
use crate::api::names::{restarted_for_key, rollout_field_manager};
use crate::api::{ConditionType, Reason, Rollout, RolloutTarget, WorkloadKind};
use crate::engine::rollout::{Found, RolloutPlan, plan_rollout};
use crate::engine::{PlannedEvent, Severity};
use crate::kinds::{CredentialKind, RolloutReport};

/// What the rollout step did: the status step takes it.
#[derive(Debug)]
pub enum RolloutDone {
    Absent,
    Unchanged,
    Planned(RolloutPlan),
}

impl RolloutDone {
    pub fn report(&self) -> RolloutReport<'_> {
        match self {
            RolloutDone::Absent => RolloutReport::Absent,
            RolloutDone::Unchanged => RolloutReport::Unchanged,
            RolloutDone::Planned(plan) => RolloutReport::Planned(plan),
        }
    }

    pub fn requeue_after(&self) -> Option<std::time::Duration> {
        match self {
            RolloutDone::Planned(plan) => plan.requeue_after,
            _ => None,
        }
    }
}

fn workloads(client: &Client, namespace: &str, kind: WorkloadKind) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "apps".into(),
        version: "v1".into(),
        api_version: "apps/v1".into(),
        kind: kind.as_str().into(),
        plural: kind.plural().into(),
    };
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// The label selector in the syntax of `?labelSelector=`, or why it is
/// not one: an unknown operator, or values where the operator takes none
/// (or none where it needs some), never reads as a broader selector.
pub fn selector_text(selector: &LabelSelector) -> Result<String, String> {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default();
        let list = values.join(",");
        parts.push(match (e.operator.as_str(), values.is_empty()) {
            ("In", false) => format!("{} in ({list})", e.key),
            ("NotIn", false) => format!("{} notin ({list})", e.key),
            ("Exists", true) => e.key.clone(),
            ("DoesNotExist", true) => format!("!{}", e.key),
            ("In" | "NotIn", true) => {
                return Err(format!(
                    "operator {} of key {} needs values",
                    e.operator, e.key
                ));
            }
            ("Exists" | "DoesNotExist", false) => {
                return Err(format!(
                    "operator {} of key {} takes no values",
                    e.operator, e.key
                ));
            }
            (other, _) => {
                return Err(format!(
                    "unknown operator {other:?} of key {} (In, NotIn, Exists or DoesNotExist)",
                    e.key
                ));
            }
        });
    }
    Ok(parts.join(","))
}

fn mark_of(object: &DynamicObject, key: &str) -> Option<String> {
    object.data["spec"]["template"]["metadata"]["annotations"][key]
        .as_str()
        .map(String::from)
}

/// Every target, by name and by selector, as found.
async fn find_targets(
    client: &Client,
    namespace: &str,
    rollout: &Rollout,
    key: &str,
) -> Vec<Found> {
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    let named: BTreeSet<&RolloutTarget> = rollout.targets.iter().flatten().collect();
    for target in named {
        seen.insert((target.kind, target.name.clone()));
        found.push(
            match workloads(client, namespace, target.kind)
                .get_opt(&target.name)
                .await
            {
                Ok(Some(object)) => Found::Present {
                    kind: target.kind,
                    name: target.name.clone(),
                    mark: mark_of(&object, key),
                },
                Ok(None) => Found::Missing {
                    kind: target.kind,
                    name: target.name.clone(),
                },
                Err(error) => Found::Unreadable {
                    what: format!("{}/{}", target.kind.as_str(), target.name),
                    message: error.to_string(),
                },
            },
        );
    }
    let Some(selector) = &rollout.selector else {
        return found;
    };
    let text = match selector_text(selector) {
        Ok(text) => text,
        Err(message) => {
            found.push(Found::Unreadable {
                what: "spec.rollout.selector".into(),
                message,
            });
            return found;
        }
    };
    let params = ListParams::default().labels(&text);
    for kind in WorkloadKind::ALL {
        match workloads(client, namespace, kind).list(&params).await {
            Ok(list) => {
                for object in list {
                    if seen.insert((kind, object.name_any())) {
                        found.push(Found::Present {
                            kind,
                            name: object.name_any(),
                            mark: mark_of(&object, key),
                        });
                    }
                }
            }
            Err(error) => found.push(Found::Unreadable {
                what: format!("{}s matching spec.rollout.selector", kind.as_str()),
                message: error.to_string(),
            }),
        }
    }
    found
}

/// Restarts one target: sets this resource's mark on its pod template.
async fn restart(
    client: &Client,
    namespace: &str,
    (kind, name): &(WorkloadKind, String),
    key: &str,
    mark: &str,
    field_manager: &str,
) -> Result<(), kube::Error> {
    let patch = json!({
        "apiVersion": "apps/v1", "kind": kind.as_str(),
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"metadata": {"annotations": {key: mark}}}},
    });
    workloads(client, namespace, *kind)
        .patch(
            name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map(|_| ())
}

/// Where and how one resource marks its targets.
struct Marking<'a> {
    namespace: &'a str,
    key: &'a str,
    field_manager: &'a str,
    revision: i64,
}

/// Restarts the plan's targets; keeps in `plan.restart` those that were,
/// returns their events and the failures.
async fn restart_all<K: CredentialKind>(
    ctx: &KindContext<K>,
    marking: &Marking<'_>,
    plan: &mut RolloutPlan,
) -> (Vec<PlannedEvent>, Vec<((WorkloadKind, String), String)>) {
    let client = &ctx.shared.client;
    let (mut events, mut failures) = (Vec::new(), Vec::new());
    for target in std::mem::take(&mut plan.restart) {
        let (kind, name) = (target.0.as_str(), &target.1);
        let restarted = restart(
            client,
            marking.namespace,
            &target,
            marking.key,
            &plan.mark,
            marking.field_manager,
        )
        .await;
        match restarted {
            Ok(()) => {
                ctx.shared.metrics.record_restart(K::KIND, target.0);
                events.push(PlannedEvent {
                    severity: Severity::Normal,
                    reason: Reason::RolloutTriggered,
                    note: format!("restarted {kind}/{name} for revision {}", marking.revision),
                });
                plan.restart.push(target);
            }
            Err(error) => {
                let message = format!("{kind}/{name}: {error}");
                failures.push((target, message));
            }
        }
    }
    (events, failures)
}

/// Targets whose restart failed keep their last status entry, and the
/// failures join `RolloutReady`'s message.
fn record_failures(
    plan: &mut RolloutPlan,
    failures: Vec<((WorkloadKind, String), String)>,
    previous: &[crate::api::RolloutTargetStatus],
) {
    if failures.is_empty() {
        return;
    }
    let mut problems = Vec::new();
    if plan.reason == Reason::RolloutFailed {
        problems.push(plan.message.clone());
    }
    for ((kind, name), message) in failures {
        plan.status.retain(|s| (s.kind, &s.name) != (kind, &name));
        if let Some(last) = previous.iter().find(|s| (s.kind, &s.name) == (kind, &name)) {
            plan.status.push(last.clone());
        }
        problems.push(message);
    }
    plan.status
        .sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    plan.ready = false;
    plan.reason = Reason::RolloutFailed;
    plan.message = problems.join("; ");
}

/// A Warning when the rollout fails anew (not on every pass it stays failed).
fn failure_event(plan: &RolloutPlan, reported: Option<(&str, &str)>) -> Option<PlannedEvent> {
    let failed = plan.reason == Reason::RolloutFailed;
    let already = reported == Some((plan.reason.as_str(), plan.message.as_str()));
    (failed && !already).then(|| PlannedEvent {
        severity: Severity::Warning,
        reason: Reason::RolloutFailed,
        note: plan.message.clone(),
    })
}

/// Step 3c: the rollout, once the Secret is in place.
pub async fn roll_out<K: CredentialKind>(
    object: &K,
    ctx: &KindContext<K>,
    namespace: &str,
    applied: &SecretInPlace,
    now: Timestamp,
) -> RolloutDone {
    let Some(rollout) = object.rollout() else {
        return RolloutDone::Absent;
    };
    let Some(revision) = applied.plan().state.as_ref().and_then(|s| s.revision) else {
        return RolloutDone::Unchanged; // nothing issued: nothing to roll out
    };
    let client = &ctx.shared.client;
    let name = object.name_any();
    let key = restarted_for_key(K::KIND, namespace, &name);
    let found = find_targets(client, namespace, rollout, &key).await;
    let previous = object.recorded_rotation();
    let min_interval = rollout
        .min_interval
        .as_deref()
        .and_then(crate::rules::parse_duration);
    let resource = format!("{}/{name}", K::KIND.as_str());
    let mut plan = plan_rollout(
        &resource,
        revision,
        &found,
        previous.map(|r| r.rollout.as_slice()).unwrap_or_default(),
        min_interval,
        now,
    );
    let field_manager = rollout_field_manager(K::KIND, namespace, &name);
    let marking = Marking {
        namespace,
        key: &key,
        field_manager: &field_manager,
        revision,
    };
    let (mut events, failures) = restart_all(ctx, &marking, &mut plan).await;
    let previous_status = previous.map(|r| r.rollout.as_slice()).unwrap_or_default();
    record_failures(&mut plan, failures, previous_status);
    let reported = previous.and_then(|r| {
        r.conditions
            .iter()
            .find(|c| c.type_ == ConditionType::RolloutReady.as_str())
    });
    events.extend(failure_event(
        &plan,
        reported.map(|c| (c.reason.as_str(), c.message.as_str())),
    ));
    ctx.shared.events.emit(object.object_ref(&()), &events);
    RolloutDone::Planned(plan)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    #[test]
    fn selectors_read_as_the_apiserver_expects() {
        let selector = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into(), "b".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert_eq!(
            selector_text(&selector).unwrap(),
            "app=web,tier in (a,b),!canary"
        );
        let with = |operator: &str, values: Option<Vec<String>>| LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: operator.into(),
                values,
            }]),
            ..Default::default()
        };
        let unknown = selector_text(&with("Gt", Some(vec!["1".into()]))).unwrap_err();
        assert!(unknown.contains("unknown operator \"Gt\""), "{unknown}");
        assert!(selector_text(&with("In", None)).is_err());
        assert!(selector_text(&with("Exists", Some(vec!["a".into()]))).is_err());
        assert!(selector_text(&with("DoesNotExist", None)).is_ok());
    }
}
