//! A model-based test of the engine: random sequences of what happens to a
//! resource — spec edits, resets on both channels, time jumps, Secret
//! deletions and edits, foreign Secrets, source changes, and crashes between
//! the Secret write and the status write — with SPEC §5's invariants checked
//! after every pass:
//!
//! - issued values always satisfy their rules;
//! - a foreign Secret is never written;
//! - one rotation per trigger: a pass right after a pass changes nothing;
//! - the credential changes only with a recorded reason, and the revision
//!   moves by exactly one per rotation;
//! - values someone else put in the Secret are never overwritten unless they
//!   are replaced by a rotation the resource asked for;
//! - a Secret holding another existing resource's identity or an owner
//!   reference (forged, leftover or live; `ownership::decide` on random
//!   facts) is never written;
//! - a value keysmith did not produce (a planted previous value with a
//!   far-future expiry) is never published, in the Secret or a gateway Secret.
//!
//! The rollout decisions have a model of their own below
//! (`rollout_sequences`).
//!
//! `PROPTEST_CASES` sets the number of sequences (CI: the default below).

use std::time::Duration;

use proptest::prelude::*;

use super::fixtures::{intent, rng, status_after, t, written};
use super::*;

#[derive(Clone, Debug)]
enum Step {
    Pass,
    /// The Secret is written, then the process dies before the status write.
    CrashAfterSecret,
    SetCustomKey(Option<&'static str>),
    SetInterval(Option<u64>),
    SetKeepPrevious(Option<u64>),
    SetRotateKey(bool),
    ResetBySpec(u8),
    ResetByAnnotation(u8),
    Wait(i64),
    DeleteSecret,
    /// Someone edits the secret value: valid (kept) or not (blocks).
    EditSecret(bool),
    ForeignSecret,
    /// A Secret with random identity facts, judged by `ownership::decide`.
    Identity(IdentityFacts),
    /// Someone plants a previous value with a far-future expiry.
    PlantPrevious,
    /// Use a source Secret with this value (None: back to generated).
    Source(Option<&'static str>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Pass),
        2 => Just(Step::CrashAfterSecret),
        1 => proptest::option::of(proptest::sample::select(vec!["custom-key-0001", "custom-key-0002"]))
            .prop_map(Step::SetCustomKey),
        1 => proptest::option::of(proptest::sample::select(vec![60u64, 3600])).prop_map(Step::SetInterval),
        1 => proptest::option::of(proptest::sample::select(vec![0u64, 30, 600])).prop_map(Step::SetKeepPrevious),
        1 => any::<bool>().prop_map(Step::SetRotateKey),
        1 => (0u8..3).prop_map(Step::ResetBySpec),
        1 => (0u8..3).prop_map(Step::ResetByAnnotation),
        2 => (0i64..200).prop_map(Step::Wait),
        1 => Just(Step::DeleteSecret),
        1 => any::<bool>().prop_map(Step::EditSecret),
        1 => Just(Step::ForeignSecret),
        1 => identity_facts().prop_map(Step::Identity),
        1 => Just(Step::PlantPrevious),
        1 => proptest::option::of(proptest::sample::select(vec!["Source-Value-0001", "Source-Value-0002", "bad"]))
            .prop_map(Step::Source),
    ]
}

/// What a pre-existing Secret says about its owner, drawn at random.
#[derive(Clone, Debug)]
struct IdentityFacts {
    labelled: bool,
    own_uid: bool,
    live_other: bool,
    owner_reference: bool,
    opted_in: bool,
    asks: bool,
}

fn identity_facts() -> impl Strategy<Value = IdentityFacts> {
    (any::<[bool; 6]>()).prop_map(|b| IdentityFacts {
        labelled: b[0],
        own_uid: b[1],
        live_other: b[2],
        owner_reference: b[3],
        opted_in: b[4],
        asks: b[5],
    })
}

const PLANTED: &str = "Planted-Previous-0001";

struct Model {
    intent: Intent,
    secret: Option<ObservedSecret>,
    status: PreviousStatus,
    source: Option<SourceValue>,
    now: i64,
    rng: rand::rngs::StdRng,
    record_key: RecordKey,
    /// The Secret holds another existing resource's identity: never written.
    taken: bool,
}

/// The Secret after our server-side apply: our fields as desired (every
/// one taken back), labels others added kept.
fn as_written(desired: &DesiredSecret, before: Option<&ObservedSecret>) -> ObservedSecret {
    let mut secret = written(desired);
    let mut labels = before.map(|b| b.labels.clone()).unwrap_or_default();
    labels.extend(secret.labels);
    secret.labels = labels;
    secret
}

impl Model {
    fn new() -> Model {
        Model {
            intent: intent(),
            secret: None,
            status: PreviousStatus::default(),
            source: None,
            now: 0,
            rng: rng(),
            record_key: RecordKey::for_tests(),
            taken: false,
        }
    }

    fn plan(&mut self) -> Plan {
        let observed = Observed {
            secret: self.secret.clone(),
            source: self.source.clone(),
            status: self.status.clone(),
            key_held_by: None,
            gateway: Default::default(),
            record_key: Some(&self.record_key),
            gateway_others: Vec::new(),
            pending: None,
        };
        plan(&self.intent, &observed, t(self.now), &mut self.rng).expect("a plan")
    }

    fn value(&self, key: &str) -> Option<String> {
        self.secret.as_ref()?.data.get(key).cloned().flatten()
    }

    /// One pass, with the invariants; `crash` loses the status write.
    fn pass(&mut self, crash: bool) {
        let foreign = self.secret.as_ref().is_some_and(|s| !s.ours());
        let before = (self.value("app_key"), self.value("app_secret"));
        let revision_before = self
            .secret
            .as_ref()
            .and_then(|s| s.annotations.get(crate::api::names::annotations::REVISION))
            .and_then(|r| r.parse::<i64>().ok())
            .or(self.status.revision);
        let plan = self.plan();

        if foreign || self.taken {
            assert!(plan.secret.is_none(), "a foreign Secret was written");
        }
        let published = plan
            .secret
            .iter()
            .chain(plan.gateway.iter().map(|w| &w.secret));
        for desired in published {
            assert!(
                desired.data.values().all(|v| !v.contains(PLANTED)),
                "a planted value was published in {}",
                desired.name
            );
        }
        if let Some(desired) = &plan.secret {
            let key = &desired.data[&self.intent.key_data_key];
            let secret = &desired.data[&self.intent.secret_data_key];
            assert!(
                self.intent.key_rule.is_valid(key),
                "issued key breaks its rule"
            );
            assert!(
                self.intent.secret_rule.is_valid(secret),
                "issued secret breaks its rule"
            );
            let after = (Some(key.clone()), Some(secret.clone()));
            let state = plan.state.as_ref().expect("a state with a Secret");
            if after != before && before.0.is_some() && plan.rotation.is_none() {
                panic!("the credential changed without a rotation: {plan:?}");
            }
            if let Some(reason) = plan.rotation {
                assert_eq!(state.last_rotation_reason, Some(reason));
                assert_eq!(state.revision, Some(revision_before.unwrap_or(0) + 1));
            }
            self.secret = Some(as_written(desired, self.secret.as_ref()));
            self.taken = false;
        } else if plan.rotation.is_some() {
            panic!("a rotation without a Secret write");
        }
        if !crash {
            self.status = status_after(&plan, &self.intent, &self.status);
            // One rotation per trigger: the next pass, at once, is quiet.
            if plan.readiness.ready {
                let again = self.plan();
                assert_eq!(again.rotation, None, "a second rotation for one trigger");
                assert!(again.secret.is_none(), "a second write for one trigger");
            }
        }
    }

    fn apply(&mut self, step: &Step) {
        match step {
            Step::Pass => self.pass(false),
            Step::CrashAfterSecret => self.pass(true),
            Step::SetCustomKey(key) => self.intent.custom_key = key.map(String::from),
            Step::SetInterval(s) => self.intent.interval = s.map(Duration::from_secs),
            Step::SetKeepPrevious(s) => self.intent.keep_previous = s.map(Duration::from_secs),
            Step::SetRotateKey(on) => self.intent.rotate_key = *on,
            Step::ResetBySpec(n) => self.intent.reset_request = Some(format!("spec-{n}")),
            Step::ResetByAnnotation(n) => {
                self.intent.reset_annotation = Some(format!("annotation-{n}"))
            }
            Step::Wait(seconds) => self.now += seconds,
            Step::DeleteSecret => {
                self.secret = None;
                self.taken = false;
            }
            Step::Identity(facts) => self.secret_with_identity(facts),
            Step::PlantPrevious => {
                if let Some(secret) = self.secret.as_mut().filter(|s| s.ours()) {
                    let previous = self.intent.previous_data_key.clone();
                    secret.data.insert(previous, Some(PLANTED.into()));
                    secret.annotations.insert(
                        crate::api::names::annotations::PREVIOUS_EXPIRES_AT.into(),
                        "2099-01-01T00:00:00Z".into(),
                    );
                }
            }
            Step::EditSecret(valid) => {
                if let Some(secret) = self.secret.as_mut().filter(|s| s.ours()) {
                    let value = if *valid { "Edited-By-Hand-0001" } else { "x" };
                    secret.data.insert("app_secret".into(), Some(value.into()));
                    secret.edited_keys.insert("app_secret".into());
                }
            }
            Step::ForeignSecret => {
                self.secret = Some(ObservedSecret {
                    ownership: crate::engine::Ownership::Foreign(
                        crate::engine::Foreign::NotKeysmiths,
                    ),
                    ..Default::default()
                })
            }
            Step::Source(value) => match value {
                Some(value) => {
                    self.intent.secret_from = Some(("byo".into(), "secret".into()));
                    self.source = Some(SourceValue::Found(value.to_string()));
                }
                None => {
                    self.intent.secret_from = None;
                    self.source = None;
                }
            },
        }
    }
}

impl Model {
    /// The Secret as found, with the identity `facts` say — as labels,
    /// annotations and owner references, read and judged by the engine's
    /// ownership check; the data is a valid-looking credential.
    fn secret_with_identity(&mut self, facts: &IdentityFacts) {
        use crate::api::names::{annotations, labels};
        let asking = [(annotations::ADOPT_SECRET, facts.asks.to_string())];
        let claimant = Claimant::read("orders", Some("uid-1".into()), &map(&asking), None);
        let own_uid = if facts.own_uid { "uid-1" } else { "uid-other" };
        let managed_by = if facts.labelled {
            "keysmith"
        } else {
            "someone"
        };
        let secret_labels = [
            (labels::MANAGED_BY, managed_by.to_string()),
            (labels::GATEWAY_APP, "orders".to_string()),
        ];
        let secret_annotations = [
            (annotations::OWNER_UID, own_uid.to_string()),
            (annotations::REVISION, "1".to_string()),
            (annotations::ADOPT, facts.opted_in.to_string()),
        ];
        let references = facts.owner_reference.then(|| "uid-other".to_string());
        let live = |uid: &str| facts.live_other && uid == "uid-other";
        let identity = SecretIdentity::read(
            &map(&secret_labels),
            &map(&secret_annotations),
            references.into_iter().collect(),
            labels::GATEWAY_APP,
            &live,
        );
        let ownership = ownership::decide("orders", &identity, &claimant);
        self.taken = !facts.own_uid && (facts.live_other || facts.owner_reference);
        if self.taken {
            assert!(
                !ownership.ours(),
                "another resource's Secret judged ours: {facts:?}"
            );
        }
        self.secret = Some(ObservedSecret {
            ownership,
            data: [
                ("app_key".to_string(), Some("found-key-0001".to_string())),
                (
                    "app_secret".to_string(),
                    Some("Found-Secret-000000000001".to_string()),
                ),
            ]
            .into(),
            ..Default::default()
        });
    }
}

fn map(entries: &[(&str, String)]) -> std::collections::BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(200),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_sequence_keeps_the_invariants(steps in proptest::collection::vec(step(), 1..40)) {
        let mut model = Model::new();
        for step in &steps {
            model.apply(step);
        }
        model.pass(false);
    }
}

/// A model-based test of the rollout decisions (`engine::rollout`): random
/// sequences of passes (with random restart failures), rotations, time
/// jumps, targets deleted and created, `minInterval` changes and marks
/// removed by someone else, with these invariants after every pass:
///
/// - a target restarts only when it lacks the current mark, so once per
///   revision (again only if someone removed the mark), and never within
///   `minInterval` of its last restart;
/// - one Normal event per restart, naming it; a Warning exactly when the
///   rollout fails anew (not on each pass it stays failed the same way);
/// - a failed restart is named in `RolloutReady` and keeps the target's
///   last status entry;
/// - Ready means every target exists and carries the current mark, and a
///   pass right after a Ready one restarts nothing and says nothing.
mod rollout_sequences {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use proptest::prelude::*;

    use crate::api::{Reason, WorkloadKind};
    use crate::engine::Severity;
    use crate::engine::fixtures::t;
    use crate::engine::rollout::{
        Found, RolloutFacts, RolloutRecord, RolloutSettled, Target, plan_rollout, settle_rollout,
    };

    const NAMES: [&str; 3] = ["api", "db", "web"];

    #[derive(Clone, Debug)]
    enum Step {
        /// A pass; the restarts of the targets marked `true` fail.
        Pass([bool; 3]),
        Rotate,
        Wait(i64),
        /// The target is deleted, or created again (without a mark).
        Toggle(usize),
        SetMinInterval(Option<u64>),
        /// Someone else removes the target's mark.
        Unmark(usize),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => any::<[bool; 3]>().prop_map(Step::Pass),
            2 => Just(Step::Rotate),
            2 => (0i64..120).prop_map(Step::Wait),
            1 => (0usize..3).prop_map(Step::Toggle),
            1 => proptest::option::of(proptest::sample::select(vec![30u64, 90])).prop_map(Step::SetMinInterval),
            1 => (0usize..3).prop_map(Step::Unmark),
        ]
    }

    #[derive(Clone, Debug, Default)]
    struct Workload {
        gone: bool,
        mark: Option<String>,
        /// When keysmith last restarted it (forgotten while it is gone: the
        /// status then drops it too).
        restarted_at: Option<i64>,
    }

    struct Model {
        revision: i64,
        now: i64,
        min_interval: Option<Duration>,
        workloads: [Workload; 3],
        record: RolloutRecord,
        /// `(target, revision)` restarted, and not unmarked since.
        restarted: BTreeSet<(usize, i64)>,
    }

    fn index((_, name): &Target) -> usize {
        NAMES
            .iter()
            .position(|n| n == name)
            .expect("a known target")
    }

    impl Model {
        fn new() -> Model {
            Model {
                revision: 1,
                now: 0,
                min_interval: None,
                workloads: Default::default(),
                record: RolloutRecord::default(),
                restarted: BTreeSet::new(),
            }
        }

        fn mark(&self) -> String {
            format!("GatewayApp/a@{}", self.revision)
        }

        fn facts(&self) -> RolloutFacts {
            let found = NAMES.iter().zip(&self.workloads).map(|(name, w)| {
                let (kind, name) = (WorkloadKind::Deployment, name.to_string());
                match w.gone {
                    true => Found::Missing { kind, name },
                    false => Found::Present {
                        kind,
                        name,
                        mark: w.mark.clone(),
                    },
                }
            });
            RolloutFacts {
                resource: "GatewayApp/a".into(),
                revision: self.revision,
                found: found.collect(),
                record: self.record.clone(),
                min_interval: self.min_interval,
                now: t(self.now),
            }
        }

        /// One pass: plan, restart (failing as `fails` says), settle.
        fn pass(&mut self, fails: [bool; 3]) -> RolloutSettled {
            let facts = self.facts();
            let plan = plan_rollout(&facts);
            let mut results = Vec::new();
            for target in &plan.restart {
                let i = index(target);
                self.check_may_restart(i);
                let result = match fails[i] {
                    true => Err("forbidden".to_string()),
                    false => {
                        let workload = &mut self.workloads[i];
                        workload.mark = Some(plan.mark.clone());
                        workload.restarted_at = Some(self.now);
                        self.restarted.insert((i, self.revision));
                        Ok(())
                    }
                };
                results.push((target.clone(), result));
            }
            let settled = settle_rollout(&facts, plan, results.clone());
            self.check_settled(&facts.record, &results, &settled);
            self.record = RolloutRecord {
                targets: settled.status.clone(),
                reported: Some((settled.reason, settled.message.clone())),
            };
            settled
        }

        fn check_may_restart(&self, i: usize) {
            let workload = &self.workloads[i];
            assert!(!workload.gone, "a missing target restarted");
            assert_ne!(workload.mark, Some(self.mark()), "restarted with the mark");
            assert!(
                !self.restarted.contains(&(i, self.revision)),
                "{} restarted twice for revision {}",
                NAMES[i],
                self.revision
            );
            if let Some((interval, last)) = self.min_interval.zip(workload.restarted_at) {
                assert!(
                    self.now >= last + interval.as_secs() as i64,
                    "{} restarted within minInterval",
                    NAMES[i]
                );
            }
        }

        fn check_settled(
            &self,
            before: &RolloutRecord,
            results: &[(Target, Result<(), String>)],
            settled: &RolloutSettled,
        ) {
            let normal: Vec<_> = (settled.events.iter())
                .filter(|e| e.severity == Severity::Normal)
                .collect();
            assert_eq!(normal.len(), settled.restarted.len());
            for (event, (_, name)) in normal.iter().zip(&settled.restarted) {
                assert_eq!(event.reason, Reason::RolloutTriggered);
                assert!(
                    event.note.contains(name) && event.note.ends_with(&self.revision.to_string())
                );
            }
            let warned = settled
                .events
                .iter()
                .any(|e| e.severity == Severity::Warning);
            let failed = settled.reason == Reason::RolloutFailed;
            let again = before.reported == Some((settled.reason, settled.message.clone()));
            assert_eq!(warned, failed && !again, "{settled:?} after {before:?}");
            for (target, result) in results {
                if result.is_err() {
                    assert!(
                        failed
                            && settled
                                .message
                                .contains(&format!("{}: forbidden", target.1))
                    );
                    let kept = |s: &[crate::engine::rollout::TargetStatus]| {
                        s.iter().find(|e| e.name == target.1).cloned()
                    };
                    assert_eq!(
                        kept(&settled.status),
                        kept(&before.targets),
                        "last entry kept"
                    );
                }
            }
            if settled.ready {
                for w in &self.workloads {
                    assert!(!w.gone && w.mark == Some(self.mark()), "Ready, but {w:?}");
                }
            }
        }

        fn apply(&mut self, step: &Step) {
            match step {
                Step::Pass(fails) => {
                    if self.pass(*fails).ready {
                        let again = self.pass([false; 3]);
                        assert!(again.restarted.is_empty() && again.events.is_empty());
                    }
                }
                Step::Rotate => self.revision += 1,
                Step::Wait(seconds) => self.now += seconds,
                Step::Toggle(i) => {
                    let workload = &mut self.workloads[*i];
                    *workload = Workload {
                        gone: !workload.gone,
                        ..Workload::default()
                    };
                    self.restarted.retain(|(j, _)| j != i);
                }
                Step::SetMinInterval(s) => self.min_interval = s.map(Duration::from_secs),
                Step::Unmark(i) => {
                    self.workloads[*i].mark = None;
                    self.restarted.retain(|(j, _)| j != i);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(200),
            ..ProptestConfig::default()
        })]

        #[test]
        fn any_sequence_keeps_the_rollout_invariants(steps in proptest::collection::vec(step(), 1..40)) {
            let mut model = Model::new();
            for step in &steps {
                model.apply(step);
            }
            model.pass([false; 3]);
        }
    }
}
