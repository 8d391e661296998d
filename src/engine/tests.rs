//! Table-style tests of the plan with a fixed clock and a seeded generator.

use std::collections::BTreeMap;
use std::time::Duration;

use super::fixtures::{intent, rng, status_after, t, written};
use super::*;
use crate::api::RotationReason;
use crate::api::names::annotations;
use crate::rules;

/// A world that keeps what the plans write, to run passes in sequence.
struct World {
    secret: Option<ObservedSecret>,
    status: PreviousStatus,
    source: Option<SourceValue>,
    rng: rand::rngs::StdRng,
    pending: Option<Pending>,
}

impl World {
    fn new() -> Self {
        World {
            secret: None,
            status: PreviousStatus::default(),
            source: None,
            rng: rng(),
            pending: None,
        }
    }

    fn pass(&mut self, intent: &Intent, now: Timestamp) -> Plan {
        let observed = Observed {
            secret: self.secret.clone(),
            source: self.source.clone(),
            status: self.status.clone(),
            key_held_by: None,
            gateway: Default::default(),
            record_key: None,
            gateway_others: Vec::new(),
            pending: self.pending.clone(),
        };
        let plan = plan(intent, &observed, now, &mut self.rng).unwrap();
        if let Some(secret) = &plan.secret {
            self.secret = Some(written(secret));
        }
        self.status = status_after(&plan, intent, &self.status);
        plan
    }

    fn data(&self, key: &str) -> Option<String> {
        self.secret.as_ref()?.data.get(key).cloned().flatten()
    }
}

fn reasons(plan: &Plan) -> Vec<&'static str> {
    plan.events.iter().map(|e| e.reason.as_str()).collect()
}

#[test]
fn first_pass_issues_generated_credentials() {
    let mut world = World::new();
    let plan = world.pass(&intent(), t(0));
    let secret = plan.secret.as_ref().expect("a Secret to write");
    assert!(rules::APP_KEY.is_valid(&secret.data["app_key"]));
    assert_eq!(secret.data["app_key"].len(), 36);
    assert!(rules::APP_SECRET.is_valid(&secret.data["app_secret"]));
    assert_eq!(secret.data["app_secret"].len(), 32);
    assert_eq!(secret.data["app_id"], "uid-1");
    assert_eq!(secret.annotations[annotations::REVISION], "1");
    let state = plan.state.clone().unwrap();
    assert_eq!(state.revision, Some(1));
    assert_eq!(state.last_rotation_reason, Some(RotationReason::Initial));
    assert_eq!(state.last_rotation_time, Some(t(0)));
    assert_eq!(state.register_time, Some(t(0)));
    assert_eq!(state.next_rotation_time, None);
    assert!(plan.readiness.ready);
    assert_eq!(reasons(&plan), ["Issued"]);
    assert_eq!(plan.requeue_after, None, "no schedule, no polling");
}

#[test]
fn a_second_pass_writes_nothing_and_changes_nothing() {
    let mut world = World::new();
    let first = world.pass(&intent(), t(0));
    let second = world.pass(&intent(), t(500));
    assert_eq!(second.secret, None);
    assert_eq!(
        second.state, first.state,
        "timestamps only move when something happens"
    );
    assert!(second.events.is_empty());
}

#[test]
fn sub_second_clocks_are_truncated() {
    let mut world = World::new();
    let now = Timestamp::from_millisecond(1_800_000_000_123).unwrap();
    let plan = world.pass(&intent(), now);
    assert_eq!(plan.state.unwrap().last_rotation_time, Some(t(0)));
}

#[test]
fn a_custom_key_is_used_and_a_changed_one_replaces_the_key_but_keeps_the_secret() {
    let mut world = World::new();
    let mut intent = intent();
    intent.custom_key = Some("orders-key-1".into());
    world.pass(&intent, t(0));
    assert_eq!(world.data("app_key").as_deref(), Some("orders-key-1"));
    let secret_before = world.data("app_secret");

    intent.custom_key = Some("orders-key-2".into());
    let plan = world.pass(&intent, t(10));
    assert_eq!(world.data("app_key").as_deref(), Some("orders-key-2"));
    assert_eq!(world.data("app_secret"), secret_before);
    let state = plan.state.clone().unwrap();
    assert_eq!(state.revision, Some(2));
    assert_eq!(
        state.last_rotation_reason,
        Some(RotationReason::AppKeyChanged)
    );
    assert_eq!(reasons(&plan), ["KeyChanged"]);

    // Removing the field keeps the key in use.
    intent.custom_key = None;
    let plan = world.pass(&intent, t(20));
    assert_eq!(plan.secret, None);
    assert_eq!(world.data("app_key").as_deref(), Some("orders-key-2"));
}

#[test]
fn a_pending_set_for_the_next_revision_is_what_the_rotation_issues() {
    let mut world = World::new();
    let mut intent = intent();
    intent.rotate_key = true;
    world.pass(&intent, t(0));
    let pending = Pending {
        revision: 2,
        key: "pending-key-0001".into(),
        secret: "Pending-secret-0123456789abcdef".into(),
    };
    // A pending set for another revision is ignored.
    world.pending = Some(Pending {
        revision: 5,
        ..pending.clone()
    });
    intent.reset_request = Some("r1".into());
    let mut other = World {
        rng: rng(),
        ..World::new()
    };
    other.secret = world.secret.clone();
    other.status = world.status.clone();
    other.pending = world.pending.clone();
    other.pass(&intent, t(10));
    assert_ne!(
        other.data("app_secret").as_deref(),
        Some(pending.secret.as_str())
    );

    // The one for the next revision is issued as it is, key and secret.
    world.pending = Some(pending.clone());
    world.pass(&intent, t(10));
    assert_eq!(world.status.revision, Some(2));
    assert_eq!(
        world.data("app_secret").as_deref(),
        Some(pending.secret.as_str())
    );
    assert_eq!(world.data("app_key").as_deref(), Some(pending.key.as_str()));
    // Without a trigger it changes nothing.
    let again = world.pass(&intent, t(20));
    assert_eq!(again.secret, None);
}

#[test]
fn each_new_reset_value_resets_exactly_once() {
    let mut world = World::new();
    let mut intent = intent();
    intent.reset_request = Some("a".into());
    world.pass(&intent, t(0));
    let issued = world.data("app_secret");
    // The value present at creation is not a reset.
    assert_eq!(world.status.revision, Some(1));

    intent.reset_request = Some("b".into());
    let plan = world.pass(&intent, t(10));
    assert_ne!(world.data("app_secret"), issued);
    assert_eq!(
        plan.state.as_ref().unwrap().last_rotation_reason,
        Some(RotationReason::ResetRequest)
    );
    assert_eq!(
        plan.state
            .as_ref()
            .unwrap()
            .observed_reset_request
            .as_deref(),
        Some("b")
    );
    assert_eq!(reasons(&plan), ["Reset"]);
    let key_before = world.data("app_key");
    assert_eq!(world.data("app_key"), key_before);

    let again = world.pass(&intent, t(20));
    assert_eq!(again.secret, None);
    assert_eq!(world.status.revision, Some(2));

    // The annotation is a second, independent channel.
    intent.reset_annotation = Some("x".into());
    intent.rotate_key = true;
    let by_annotation = world.pass(&intent, t(30));
    assert_eq!(
        by_annotation
            .state
            .as_ref()
            .unwrap()
            .observed_reset_annotation
            .as_deref(),
        Some("x")
    );
    assert_ne!(
        world.data("app_key"),
        key_before,
        "rotateAppKey also replaces the generated key"
    );
    assert_eq!(world.status.revision, Some(3));
    assert_eq!(world.pass(&intent, t(40)).secret, None);
    assert_eq!(world.status.revision, Some(3));
}

#[test]
fn scheduled_rotation_happens_at_the_due_instant_and_requeues_for_it() {
    let mut world = World::new();
    let mut intent = intent();
    intent.interval = Some(Duration::from_secs(60));
    let first = world.pass(&intent, t(0));
    assert_eq!(first.requeue_after, Some(Duration::from_secs(60)));
    assert_eq!(first.state.unwrap().next_rotation_time, Some(t(60)));

    let early = world.pass(&intent, t(59));
    assert_eq!(early.secret, None);
    assert_eq!(early.requeue_after, Some(Duration::from_secs(1)));

    let due = world.pass(&intent, t(60));
    let state = due.state.clone().unwrap();
    assert_eq!(state.revision, Some(2));
    assert_eq!(state.last_rotation_reason, Some(RotationReason::Schedule));
    assert_eq!(state.next_rotation_time, Some(t(120)));
    assert_eq!(due.requeue_after, Some(Duration::from_secs(60)));
    assert_eq!(reasons(&due), ["Rotated"]);
}

#[test]
fn keep_previous_keeps_the_old_secret_until_it_expires() {
    let mut world = World::new();
    let mut intent = intent();
    intent.keep_previous = Some(Duration::from_secs(30));
    world.pass(&intent, t(0));
    let old = world.data("app_secret");
    intent.reset_request = Some("r1".into());
    let plan = world.pass(&intent, t(10));
    assert_eq!(world.data("app_secret_previous"), old);
    assert_eq!(
        plan.state.as_ref().unwrap().previous_expiry_time,
        Some(t(40))
    );
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(30)));

    let still = world.pass(&intent, t(39));
    assert_eq!(still.secret, None);
    let expired = world.pass(&intent, t(40));
    assert!(expired.secret.is_some());
    assert_eq!(world.data("app_secret_previous"), None);
    assert_eq!(expired.state.as_ref().unwrap().previous_expiry_time, None);
    assert_eq!(
        expired.state.unwrap().revision,
        Some(2),
        "expiry is not a new revision"
    );
}

#[test]
fn a_secret_from_value_is_validated_and_copied() {
    let mut world = World::new();
    let mut intent = intent();
    intent.secret_from = Some(("byo".into(), "secret".into()));
    intent.interval = Some(Duration::from_secs(60));

    world.source = Some(SourceValue::SecretMissing);
    let missing = world.pass(&intent, t(0));
    assert!(!missing.readiness.ready);
    assert_eq!(missing.readiness.reason.as_str(), "InvalidSecretFrom");
    assert!(
        missing
            .readiness
            .message
            .contains("Secret byo does not exist")
    );
    assert_eq!(missing.secret, None);

    world.source = Some(SourceValue::Found("Zq9".into()));
    let bad = world.pass(&intent, t(1));
    assert_eq!(bad.readiness.reason.as_str(), "InvalidSecretFrom");
    assert!(
        bad.readiness.message.contains("key secret of Secret byo"),
        "{}",
        bad.readiness.message
    );
    assert!(bad.readiness.message.contains("8–64 characters"));
    assert!(!bad.readiness.message.contains("Zq9"), "never the value");
    assert!(
        bad.events.is_empty(),
        "same reason as before: no second event"
    );

    world.source = Some(SourceValue::Found("Valid-Secret-1".into()));
    let ok = world.pass(&intent, t(2));
    assert!(ok.readiness.ready);
    assert_eq!(world.data("app_secret").as_deref(), Some("Valid-Secret-1"));
    assert_eq!(
        ok.state.as_ref().unwrap().next_rotation_time,
        None,
        "the owner rotates a supplied secret"
    );
    assert_eq!(ok.requeue_after, None);
}

/// A resource issued from a valid `secretFrom` value at t(2).
fn issued_from_a_source() -> (World, Intent) {
    let mut world = World::new();
    let mut intent = intent();
    intent.secret_from = Some(("byo".into(), "secret".into()));
    intent.interval = Some(Duration::from_secs(60));
    world.source = Some(SourceValue::Found("Valid-Secret-1".into()));
    assert!(world.pass(&intent, t(2)).readiness.ready);
    (world, intent)
}

#[test]
fn a_secret_from_value_is_propagated_and_a_bad_one_changes_nothing() {
    let (mut world, intent) = issued_from_a_source();
    // No schedule for supplied secrets, however late.
    assert_eq!(world.pass(&intent, t(1000)).secret, None);

    world.source = Some(SourceValue::Found("Valid-Secret-2".into()));
    let changed = world.pass(&intent, t(1001));
    assert_eq!(world.data("app_secret").as_deref(), Some("Valid-Secret-2"));
    assert_eq!(
        changed.state.unwrap().last_rotation_reason,
        Some(RotationReason::SecretFromChanged)
    );

    // A later bad value changes nothing issued.
    world.source = Some(SourceValue::KeyMissing);
    let broken = world.pass(&intent, t(1002));
    assert_eq!(broken.secret, None);
    assert_eq!(broken.state, None);
    assert_eq!(world.data("app_secret").as_deref(), Some("Valid-Secret-2"));
}

#[test]
fn conflicts_block_every_write() {
    let mut world = World::new();
    let observed_secret = ObservedSecret {
        ownership: crate::engine::Ownership::Foreign(crate::engine::Foreign::NotKeysmiths),
        ..Default::default()
    };
    let status = PreviousStatus::default();
    let observed = Observed {
        secret: Some(observed_secret),
        source: None,
        status: status.clone(),
        key_held_by: None,
        gateway: Default::default(),
        record_key: None,
        gateway_others: Vec::new(),
        pending: None,
    };
    let plan = plan(&intent(), &observed, t(0), &mut world.rng).unwrap();
    assert_eq!(plan.readiness.reason.as_str(), "SecretConflict");
    assert_eq!(plan.secret, None);
    assert_eq!(reasons(&plan), ["SecretConflict"]);

    let observed = Observed {
        secret: None,
        source: None,
        status,
        key_held_by: Some("shop/older".into()),
        gateway: Default::default(),
        record_key: None,
        gateway_others: Vec::new(),
        pending: None,
    };
    let plan = super::plan(&intent(), &observed, t(0), &mut world.rng).unwrap();
    assert_eq!(plan.readiness.reason.as_str(), "AppKeyConflict");
    assert!(plan.readiness.message.contains("shop/older"));
    assert_eq!(plan.secret, None);
}

#[test]
fn a_deleted_secret_is_recreated_with_new_credentials() {
    let mut world = World::new();
    world.pass(&intent(), t(0));
    let old = world.data("app_secret");
    world.secret = None;
    let plan = world.pass(&intent(), t(10));
    assert_ne!(world.data("app_secret"), old);
    let state = plan.state.clone().unwrap();
    assert_eq!(state.revision, Some(2));
    assert_eq!(
        state.last_rotation_reason,
        Some(RotationReason::SecretRecreated)
    );
    assert_eq!(
        state.register_time,
        Some(t(0)),
        "registerTime stays the first issue"
    );
    assert_eq!(plan.events[0].severity, Severity::Warning);
    assert_eq!(reasons(&plan), ["SecretRecreated"]);
}

#[test]
fn valid_edits_are_kept_and_invalid_ones_are_not_overwritten() {
    let mut world = World::new();
    world.pass(&intent(), t(0));
    let secret = world.secret.as_mut().unwrap();
    secret
        .data
        .insert("app_secret".into(), Some("Edited-By-Hand-1".into()));
    secret.edited_keys.insert("app_secret".into());
    let plan = world.pass(&intent(), t(10));
    assert_eq!(reasons(&plan), ["SecretEdited"]);
    assert!(plan.secret.is_some(), "re-applied to take the field back");
    assert_eq!(
        plan.secret.as_ref().unwrap().data["app_secret"],
        "Edited-By-Hand-1"
    );
    let state = plan.state.clone().unwrap();
    assert_eq!(state.update_time, Some(t(10)));
    assert_eq!(state.revision, Some(1));
    world.secret.as_mut().unwrap().edited_keys.clear();

    let secret = world.secret.as_mut().unwrap();
    secret.data.insert("app_secret".into(), Some("bad".into()));
    secret.edited_keys.insert("app_secret".into());
    let plan = world.pass(&intent(), t(20));
    assert!(!plan.readiness.ready);
    assert_eq!(plan.readiness.reason.as_str(), "InvalidSecretData");
    assert!(!plan.readiness.message.contains("bad"));
    assert_eq!(plan.secret, None);
}

#[test]
fn a_crash_between_secret_and_status_completes_the_status_without_rotating() {
    let mut world = World::new();
    let mut intent = intent();
    world.pass(&intent, t(0));
    let status_before = world.status.clone();
    intent.reset_request = Some("r".into());
    world.pass(&intent, t(10));
    let secret_after_reset = world.data("app_secret");
    // The operator died after the Secret write: the status is still the old one.
    world.status = status_before;
    let plan = world.pass(&intent, t(20));
    assert_eq!(plan.secret, None, "no second rotation");
    assert_eq!(world.data("app_secret"), secret_after_reset);
    let state = plan.state.clone().unwrap();
    assert_eq!(state.revision, Some(2));
    assert_eq!(
        state.last_rotation_reason,
        Some(RotationReason::ResetRequest)
    );
    assert_eq!(state.last_rotation_time, Some(t(10)));
    assert_eq!(state.observed_reset_request.as_deref(), Some("r"));
}

#[test]
fn switching_the_deletion_policy_rewrites_only_the_owner_reference() {
    let mut world = World::new();
    let mut intent = intent();
    world.pass(&intent, t(0));
    let data = world.secret.as_ref().unwrap().data.clone();
    intent.owned = false;
    let plan = world.pass(&intent, t(5));
    assert!(!plan.secret.as_ref().unwrap().owned);
    assert_eq!(world.secret.as_ref().unwrap().data, data);
    assert_eq!(plan.state.unwrap().revision, Some(1));
}

#[test]
fn sign_keys_that_no_longer_fit_their_type_are_reissued() {
    let mut world = World::new();
    let mut intent = Intent {
        key_label: "sign_key",
        key_changed_reason: RotationReason::KeyChanged,
        key_rule: &rules::SIGN_KEY_HMAC,
        key_generator: KeyGenerator::Rule { length: 32 },
        secret_rule: &rules::SIGN_SECRET_HMAC,
        key_data_key: "sign_key".into(),
        secret_data_key: "sign_secret".into(),
        previous_data_key: "sign_secret_previous".into(),
        ..intent()
    };
    world.pass(&intent, t(0));
    assert_eq!(world.data("sign_key").unwrap().len(), 32);
    intent.key_rule = &rules::SIGN_KEY_AES_128;
    intent.key_generator = KeyGenerator::Rule { length: 16 };
    intent.secret_rule = &rules::SIGN_SECRET_AES;
    intent.generator_length = 16;
    let plan = world.pass(&intent, t(10));
    assert_eq!(world.data("sign_key").unwrap().len(), 16);
    assert_eq!(world.data("sign_secret").unwrap().len(), 16);
    assert_eq!(
        plan.state.unwrap().last_rotation_reason,
        Some(RotationReason::KeyChanged)
    );
}

#[test]
fn debug_output_never_shows_a_credential_value() {
    let secret = DesiredSecret {
        name: "out".into(),
        type_: crate::api::SecretType::Opaque,
        data: BTreeMap::from([("app_secret".into(), "Hunter2-Value".into())]),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        owned: true,
    };
    let observed = ObservedSecret {
        data: BTreeMap::from([("app_secret".into(), Some("Hunter2-Value".into()))]),
        ..Default::default()
    };
    let source = SourceValue::Found("Hunter2-Value".into());
    for text in [
        format!("{secret:?}"),
        format!("{observed:?}"),
        format!("{source:?}"),
    ] {
        assert!(!text.contains("Hunter2"), "{text}");
    }
    assert!(
        format!("{secret:?}").contains("app_secret"),
        "keys still shown"
    );
}
