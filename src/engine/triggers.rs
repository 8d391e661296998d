//! Step three: triggers. Each is a small named check that may ask for new
//! credentials, naming the rotation reason and which value to renew. All are
//! evaluated in order; the first that fires names the reason, and each value
//! is renewed as the first trigger that asks for it says.

use k8s_openapi::jiff::Timestamp;

use super::snapshot::{Snapshot, add};
use crate::api::RotationReason;

/// Where a renewed value comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Renew {
    /// A fresh value from the generator.
    Generate,
    /// This value (a custom key, or the source Secret's value).
    Use(String),
}

impl std::fmt::Debug for Renew {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Renew::Generate => "Generate",
            Renew::Use(_) => "Use(<redacted>)",
        })
    }
}

/// What one trigger asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fired {
    pub reason: RotationReason,
    pub key: Option<Renew>,
    pub secret: Option<Renew>,
}

/// All triggers together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Renewal {
    /// `None`: nothing fired; the credentials stay as they are.
    pub reason: Option<RotationReason>,
    pub key: Option<Renew>,
    pub secret: Option<Renew>,
}

type Trigger = fn(&Snapshot) -> Option<Fired>;

/// Most specific reason first.
pub const TRIGGERS: [(&str, Trigger); 7] = [
    ("Secret missing", check_secret_missing),
    ("reset requested", check_reset_requested),
    ("schedule due", check_schedule_due),
    ("custom key changed", check_key_changed),
    ("source value changed", check_source_changed),
    ("stale key", check_stale_key),
    ("stale secret", check_stale_secret),
];

pub fn evaluate(snapshot: &Snapshot) -> Renewal {
    let mut renewal = Renewal::default();
    for fired in TRIGGERS.iter().filter_map(|(_, trigger)| trigger(snapshot)) {
        renewal.reason.get_or_insert(fired.reason);
        if renewal.key.is_none() {
            renewal.key = fired.key;
        }
        if renewal.secret.is_none() {
            renewal.secret = fired.secret;
        }
    }
    renewal
}

/// No Secret: a first issue, or the Secret was deleted after one.
pub fn check_secret_missing(s: &Snapshot) -> Option<Fired> {
    if s.secret.is_some() {
        return None;
    }
    Some(Fired {
        reason: if s.record.revision.is_some() {
            RotationReason::SecretRecreated
        } else {
            RotationReason::Initial
        },
        key: Some(match &s.intent.custom_key {
            Some(key) => Renew::Use(key.clone()),
            None => Renew::Generate,
        }),
        secret: Some(match s.source_value() {
            Some(value) => Renew::Use(value.clone()),
            None => Renew::Generate,
        }),
    })
}

/// A reset value in the spec not yet carried out.
pub fn reset_by_spec(s: &Snapshot) -> bool {
    is_new(&s.intent.reset_request, &s.record.observed_reset_request)
}

/// A reset value in the annotation not yet carried out.
pub fn reset_by_annotation(s: &Snapshot) -> bool {
    is_new(
        &s.intent.reset_annotation,
        &s.record.observed_reset_annotation,
    )
}

fn is_new(asked: &Option<String>, observed: &Option<String>) -> bool {
    asked
        .as_ref()
        .is_some_and(|r| !r.is_empty() && Some(r) != observed.as_ref())
}

/// A new generated key with the secret, when asked for and no custom key pins it.
fn rotated_key(s: &Snapshot) -> Option<Renew> {
    (s.intent.rotate_key && s.intent.custom_key.is_none()).then_some(Renew::Generate)
}

/// A new reset value: a new generated secret (a source's value is the
/// owner's to change), and a new key with `rotateKey`.
pub fn check_reset_requested(s: &Snapshot) -> Option<Fired> {
    if s.secret.is_none() || !(reset_by_spec(s) || reset_by_annotation(s)) {
        return None;
    }
    Some(Fired {
        reason: RotationReason::ResetRequest,
        key: rotated_key(s),
        secret: s.source_value().is_none().then_some(Renew::Generate),
    })
}

/// When the next scheduled rotation is due (never for a source's value).
pub fn next_rotation(s: &Snapshot, last_rotation: Option<Timestamp>) -> Option<Timestamp> {
    if s.intent.secret_from.is_some() {
        return None;
    }
    Some(add(last_rotation?, s.intent.interval?))
}

pub fn check_schedule_due(s: &Snapshot) -> Option<Fired> {
    let due = next_rotation(s, s.record.rotated_at)?;
    if s.secret.is_none() || s.now < due {
        return None;
    }
    Some(Fired {
        reason: RotationReason::Schedule,
        key: rotated_key(s),
        secret: Some(Renew::Generate),
    })
}

/// `spec.appKey` / `spec.signKey` differs from the key in use.
pub fn check_key_changed(s: &Snapshot) -> Option<Fired> {
    let custom = s.intent.custom_key.as_ref()?;
    if s.secret.is_none() || s.current_key() == Some(custom) {
        return None;
    }
    Some(Fired {
        reason: s.intent.key_changed_reason,
        key: Some(Renew::Use(custom.clone())),
        secret: None,
    })
}

/// The source Secret's value differs from the secret in use.
pub fn check_source_changed(s: &Snapshot) -> Option<Fired> {
    let value = s.source_value()?;
    if s.secret.is_none() || s.current_secret() == Some(value) {
        return None;
    }
    Some(Fired {
        reason: RotationReason::SecretFromChanged,
        key: None,
        secret: Some(Renew::Use(value.clone())),
    })
}

/// A key keysmith wrote that no longer fits its rule (the sign type changed).
pub fn check_stale_key(s: &Snapshot) -> Option<Fired> {
    (s.secret.is_some() && s.current_key().is_none()).then_some(Fired {
        reason: s.intent.key_changed_reason,
        key: Some(Renew::Generate),
        secret: None,
    })
}

/// A secret keysmith wrote that no longer fits its rule.
pub fn check_stale_secret(s: &Snapshot) -> Option<Fired> {
    (s.secret.is_some() && s.current_secret().is_none()).then_some(Fired {
        reason: s.intent.key_changed_reason,
        key: None,
        secret: Some(Renew::Generate),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::names::annotations;
    use crate::engine::SourceValue;
    use crate::engine::fixtures::{KEY, SECRET, World, t};

    fn fired(world: &World, trigger: Trigger) -> Option<Fired> {
        world.check(trigger)
    }

    #[test]
    fn secret_missing_fires_initial_then_recreated() {
        let mut world = World::new();
        let first = fired(&world, check_secret_missing).unwrap();
        assert_eq!(first.reason, RotationReason::Initial);
        assert_eq!(first.key, Some(Renew::Generate));
        assert_eq!(first.secret, Some(Renew::Generate));
        world.status.revision = Some(3);
        assert_eq!(
            fired(&world, check_secret_missing).unwrap().reason,
            RotationReason::SecretRecreated
        );
        assert_eq!(fired(&World::issued(), check_secret_missing), None);
    }

    #[test]
    fn secret_missing_uses_the_custom_key_and_the_source_value() {
        let mut world = World::new();
        world.intent.custom_key = Some("custom-key-1".into());
        world.intent.secret_from = Some(("byo".into(), "secret".into()));
        world.source = Some(SourceValue::Found("Zq9-valid-secret".into()));
        let first = fired(&world, check_secret_missing).unwrap();
        assert_eq!(first.key, Some(Renew::Use("custom-key-1".into())));
        assert_eq!(first.secret, Some(Renew::Use("Zq9-valid-secret".into())));
    }

    #[test]
    fn reset_fires_once_per_new_value_on_either_channel() {
        let mut world = World::issued();
        assert_eq!(fired(&world, check_reset_requested), None);
        world.intent.reset_request = Some("a".into());
        let reset = fired(&world, check_reset_requested).unwrap();
        assert_eq!(reset.reason, RotationReason::ResetRequest);
        assert_eq!(reset.secret, Some(Renew::Generate));
        assert_eq!(reset.key, None, "no rotateKey");
        world.set_annotation(annotations::OBSERVED_RESET_REQUEST, "a");
        assert_eq!(fired(&world, check_reset_requested), None, "carried out");
        world.intent.reset_annotation = Some("x".into());
        assert!(fired(&world, check_reset_requested).is_some());
        world.set_annotation(annotations::OBSERVED_RESET_ANNOTATION, "x");
        assert_eq!(fired(&world, check_reset_requested), None);
        world.intent.reset_request = Some(String::new());
        assert_eq!(
            fired(&world, check_reset_requested),
            None,
            "empty asks nothing"
        );
    }

    #[test]
    fn reset_renews_the_key_with_rotate_key_unless_a_custom_key_pins_it() {
        let mut world = World::issued();
        world.intent.reset_request = Some("a".into());
        world.intent.rotate_key = true;
        assert_eq!(
            fired(&world, check_reset_requested).unwrap().key,
            Some(Renew::Generate)
        );
        world.intent.custom_key = Some(KEY.into());
        assert_eq!(fired(&world, check_reset_requested).unwrap().key, None);
    }

    #[test]
    fn reset_leaves_a_source_value_to_its_owner() {
        let mut world = World::issued();
        world.intent.reset_request = Some("a".into());
        world.intent.secret_from = Some(("byo".into(), "secret".into()));
        world.source = Some(SourceValue::Found(SECRET.into()));
        assert_eq!(fired(&world, check_reset_requested).unwrap().secret, None);
    }

    #[test]
    fn schedule_fires_at_last_rotation_plus_interval_never_for_a_source() {
        let mut world = World::issued();
        assert_eq!(fired(&world, check_schedule_due), None, "no interval");
        world.intent.interval = Some(std::time::Duration::from_secs(60));
        world.now = t(59);
        assert_eq!(fired(&world, check_schedule_due), None);
        world.now = t(60);
        let due = fired(&world, check_schedule_due).unwrap();
        assert_eq!(due.reason, RotationReason::Schedule);
        assert_eq!(due.secret, Some(Renew::Generate));
        world.intent.secret_from = Some(("byo".into(), "secret".into()));
        assert_eq!(fired(&world, check_schedule_due), None);
    }

    #[test]
    fn key_changed_fires_when_the_custom_key_differs_from_the_key_in_use() {
        let mut world = World::issued();
        assert_eq!(fired(&world, check_key_changed), None, "no custom key");
        world.intent.custom_key = Some(KEY.into());
        assert_eq!(fired(&world, check_key_changed), None, "the same");
        world.intent.custom_key = Some("new-key-0002".into());
        let changed = fired(&world, check_key_changed).unwrap();
        assert_eq!(changed.reason, RotationReason::AppKeyChanged);
        assert_eq!(changed.key, Some(Renew::Use("new-key-0002".into())));
        assert_eq!(changed.secret, None, "the secret stays");
    }

    #[test]
    fn source_changed_fires_when_the_source_value_differs() {
        let mut world = World::issued();
        world.intent.secret_from = Some(("byo".into(), "secret".into()));
        world.source = Some(SourceValue::Found(SECRET.into()));
        assert_eq!(fired(&world, check_source_changed), None);
        world.source = Some(SourceValue::Found("Zq9-new-valid-secret".into()));
        let changed = fired(&world, check_source_changed).unwrap();
        assert_eq!(changed.reason, RotationReason::SecretFromChanged);
        assert_eq!(changed.key, None);
    }

    #[test]
    fn stale_values_are_regenerated_under_the_key_changed_reason() {
        let mut world = World::issued();
        assert_eq!(fired(&world, check_stale_key), None);
        assert_eq!(fired(&world, check_stale_secret), None);
        world.set_data("app_key", Some("x"));
        world.set_data("app_secret", Some("y"));
        let key = fired(&world, check_stale_key).unwrap();
        assert_eq!((key.key, key.secret), (Some(Renew::Generate), None));
        let secret = fired(&world, check_stale_secret).unwrap();
        assert_eq!(secret.reason, RotationReason::AppKeyChanged);
        assert_eq!(secret.secret, Some(Renew::Generate));
    }

    #[test]
    fn the_first_trigger_names_the_reason_and_each_value_comes_from_the_first_that_asks() {
        let mut world = World::issued();
        assert_eq!(world.check(evaluate), Renewal::default(), "nothing fires");
        world.intent.reset_request = Some("a".into());
        world.intent.custom_key = Some("new-key-0002".into());
        world.intent.rotate_key = false;
        let renewal = world.check(evaluate);
        assert_eq!(renewal.reason, Some(RotationReason::ResetRequest));
        assert_eq!(renewal.secret, Some(Renew::Generate));
        assert_eq!(renewal.key, Some(Renew::Use("new-key-0002".into())));
    }

    #[test]
    fn renewals_print_no_value() {
        assert_eq!(
            format!("{:?}", Renew::Use("Hunter2".into())),
            "Use(<redacted>)"
        );
    }
}
