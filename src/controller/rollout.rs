//! The rollout step (SPEC §9.1): after the Secret, before the status. Finds
//! the targets of `spec.rollout`, lets the engine plan which to restart,
//! restarts them the `kubectl rollout restart` way — a pod-template
//! annotation — by server-side apply under a field manager of this resource
//! alone (so several keysmith resources can mark one workload without
//! undoing each other's marks, and GitOps tools see no drift of theirs),
//! and hands how each went back to the engine, which settles the status,
//! `RolloutReady` and the events. This module does I/O only; the reconcile
//! emits the events with the pass's others. A missing or unpatchable target
//! never blocks issuing: it is reported in `RolloutReady` and a Warning.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::context::KindContext;
use super::secrets::SecretInPlace;
use crate::api::names::{restarted_for_key, rollout_field_manager};
use crate::api::{Rollout, RolloutTarget, WorkloadKind};
use crate::engine::PlannedEvent;
use crate::engine::rollout::{
    Found, Restarted, RolloutFacts, RolloutSettled, Target, plan_rollout, settle_rollout,
};
use crate::kinds::{CredentialKind, RolloutReport, rollout_record};

/// What the rollout step did: the status step takes it.
#[derive(Debug)]
pub enum RolloutDone {
    Absent,
    Unchanged,
    Settled(RolloutSettled),
}

impl RolloutDone {
    pub fn report(&self) -> RolloutReport<'_> {
        match self {
            RolloutDone::Absent => RolloutReport::Absent,
            RolloutDone::Unchanged => RolloutReport::Unchanged,
            RolloutDone::Settled(settled) => RolloutReport::Settled(settled),
        }
    }

    pub fn requeue_after(&self) -> Option<std::time::Duration> {
        match self {
            RolloutDone::Settled(settled) => settled.requeue_after,
            RolloutDone::Absent | RolloutDone::Unchanged => None,
        }
    }

    /// The events the engine settled on, for the reconcile to emit.
    pub fn events(&self) -> &[PlannedEvent] {
        match self {
            RolloutDone::Settled(settled) => &settled.events,
            RolloutDone::Absent | RolloutDone::Unchanged => &[],
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
    let named: BTreeSet<&RolloutTarget> = rollout.targets.iter().flatten().collect();
    let mut found = Vec::new();
    for target in &named {
        found.push(find_named(client, namespace, target, key).await);
    }
    if let Some(selector) = &rollout.selector {
        let seen: BTreeSet<Target> = named.iter().map(|t| (t.kind, t.name.clone())).collect();
        found.extend(find_selected(client, namespace, selector, key, seen).await);
    }
    found
}

/// A target named in `spec.rollout.targets`.
async fn find_named(client: &Client, namespace: &str, target: &RolloutTarget, key: &str) -> Found {
    let read = workloads(client, namespace, target.kind)
        .get_opt(&target.name)
        .await;
    match read {
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
    }
}

/// The workloads `spec.rollout.selector` matches, but those in `seen`.
async fn find_selected(
    client: &Client,
    namespace: &str,
    selector: &LabelSelector,
    key: &str,
    mut seen: BTreeSet<Target>,
) -> Vec<Found> {
    let text = match selector_text(selector) {
        Ok(text) => text,
        Err(message) => {
            let what = "spec.rollout.selector".into();
            return vec![Found::Unreadable { what, message }];
        }
    };
    let params = ListParams::default().labels(&text);
    let mut found = Vec::new();
    for kind in WorkloadKind::ALL {
        match workloads(client, namespace, kind).list(&params).await {
            Ok(list) => found.extend(
                list.into_iter()
                    .filter(|object| seen.insert((kind, object.name_any())))
                    .map(|object| Found::Present {
                        kind,
                        name: object.name_any(),
                        mark: mark_of(&object, key),
                    }),
            ),
            Err(error) => found.push(Found::Unreadable {
                what: format!("{}s matching spec.rollout.selector", kind.as_str()),
                message: error.to_string(),
            }),
        }
    }
    found
}

/// Where and how one resource marks its targets.
struct Marking<'a> {
    namespace: &'a str,
    key: &'a str,
    mark: &'a str,
    field_manager: &'a str,
}

/// Restarts one target: sets this resource's mark on its pod template.
async fn restart(
    client: &Client,
    marking: &Marking<'_>,
    (kind, name): &Target,
) -> Result<(), kube::Error> {
    let namespace = marking.namespace;
    let patch = json!({
        "apiVersion": "apps/v1", "kind": kind.as_str(),
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"metadata": {"annotations": {marking.key: marking.mark}}}},
    });
    workloads(client, namespace, *kind)
        .patch(
            name,
            &PatchParams::apply(marking.field_manager).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map(|_| ())
}

/// Tries each restart, in order; says how each went.
async fn restart_all(client: &Client, marking: &Marking<'_>, targets: &[Target]) -> Vec<Restarted> {
    let mut results = Vec::with_capacity(targets.len());
    for target in targets {
        let result = restart(client, marking, target).await;
        results.push((target.clone(), result.map_err(|error| error.to_string())));
    }
    results
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
        return RolloutDone::Unchanged; // the pass is blocked: nothing to roll out
    };
    let client = &ctx.shared.client;
    let name = object.name_any();
    let key = restarted_for_key(K::KIND, namespace, &name);
    let facts = RolloutFacts {
        resource: format!("{}/{name}", K::KIND.as_str()),
        revision,
        found: find_targets(client, namespace, rollout, &key).await,
        record: rollout_record(object.recorded_rotation()),
        min_interval: (rollout.min_interval.as_deref()).and_then(crate::rules::parse_duration),
        now,
    };
    let plan = plan_rollout(&facts);
    let marking = Marking {
        namespace,
        key: &key,
        mark: &plan.mark,
        field_manager: &rollout_field_manager(K::KIND, namespace, &name),
    };
    let results = restart_all(client, &marking, &plan.restart).await;
    let settled = settle_rollout(&facts, plan, results);
    for (kind, _) in &settled.restarted {
        ctx.shared.metrics.record_restart(K::KIND, *kind);
    }
    RolloutDone::Settled(settled)
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
