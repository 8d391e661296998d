//! Step one of a plan: gather everything a decision reads into one
//! [`Snapshot`]: the intent, the clock, the status, the Secret's data checked
//! against the rules, and the rotation record read from its annotations.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::inputs::{
    Intent, Observed, ObservedSecret, OtherGatewaySecret, PreviousStatus, SourceValue,
};
use super::ownership::Ownership;
use super::seal::{self, Binding, RecordKey};
use crate::api::RotationReason;
use crate::api::names::annotations;
use crate::rules::FormatRule;

/// Everything one pass decides on.
pub struct Snapshot<'a> {
    pub intent: &'a Intent,
    /// Truncated to the second.
    pub now: Timestamp,
    pub status: &'a PreviousStatus,
    pub key_held_by: Option<&'a str>,
    pub secret: Option<&'a ObservedSecret>,
    pub source: Option<&'a SourceValue>,
    /// The gateway Secrets found, by name.
    pub gateway: &'a BTreeMap<String, ObservedSecret>,
    /// The credential in the Secret; `None` when there is no Secret.
    pub issued: Option<Issued>,
    /// The rotation record: the Secret's annotations, else the status.
    pub record: Record,
    /// The Secret holds a previous value (or its expiry) keysmith did not
    /// write: never published, reported.
    pub planted_previous: bool,
    /// The key of keysmith's seals (`None`: sealing off).
    pub record_key: Option<&'a RecordKey>,
    /// The Secret carries this resource's uid but no seal of keysmith's,
    /// and keysmith never issued for it: someone wrote the uid there first.
    pub forged_identity: bool,
    /// Other resources' gateway Secrets of the same layout (duplicate check).
    pub gateway_others: &'a [OtherGatewaySecret],
}

/// One credential value in the Secret, checked against its rule.
#[derive(Clone, PartialEq, Eq)]
pub enum DataValue {
    Missing,
    /// Present but unusable: not UTF-8, or breaking the rule (the problem, never the value).
    Invalid(String),
    Valid(String),
}

/// A data key's value and whether someone other than keysmith changed it.
#[derive(Clone, PartialEq, Eq)]
pub struct Checked {
    pub data_key: String,
    pub value: DataValue,
    pub edited: bool,
}

impl Checked {
    pub fn valid(&self) -> Option<&String> {
        match &self.value {
            DataValue::Valid(value) => Some(value),
            _ => None,
        }
    }
}

/// The credential set the Secret holds.
pub struct Issued {
    pub key: Checked,
    pub secret: Checked,
    /// The kept previous secret, if any.
    pub previous: Option<String>,
}

impl Issued {
    /// Someone other than keysmith changed the key or the secret.
    pub fn edited(&self) -> bool {
        self.key.edited || self.secret.edited
    }
}

/// The rotation bookkeeping carried from pass to pass. Read from the Secret's
/// annotations when the Secret exists (it is written before the status, so it
/// is never behind), from the status otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub revision: Option<i64>,
    pub rotated_at: Option<Timestamp>,
    pub reason: Option<RotationReason>,
    pub issued_at: Option<Timestamp>,
    /// Only ever from the Secret: it holds the previous value.
    pub previous_expires_at: Option<Timestamp>,
    pub observed_reset_request: Option<String>,
    pub observed_reset_annotation: Option<String>,
    /// Only ever from the Secret, like the previous value it belongs to.
    pub previous_key: Option<String>,
}

impl Record {
    /// What a Secret's annotations say.
    pub fn read(annotations: &BTreeMap<String, String>) -> Record {
        let time = |name| parse_time(annotations.get(name));
        Record {
            revision: annotations
                .get(annotations::REVISION)
                .and_then(|r| r.parse().ok()),
            rotated_at: time(annotations::ROTATED_AT),
            reason: annotations
                .get(annotations::ROTATION_REASON)
                .and_then(|r| RotationReason::parse(r)),
            issued_at: time(annotations::ISSUED_AT),
            previous_expires_at: time(annotations::PREVIOUS_EXPIRES_AT),
            observed_reset_request: annotations
                .get(annotations::OBSERVED_RESET_REQUEST)
                .cloned(),
            observed_reset_annotation: annotations
                .get(annotations::OBSERVED_RESET_ANNOTATION)
                .cloned(),
            previous_key: annotations.get(annotations::PREVIOUS_KEY).cloned(),
        }
    }

    /// The Secret's record, with the status filling what it lacks (a status
    /// lost in a crash is rebuilt from the Secret; a deleted Secret's
    /// bookkeeping survives in the status). A record keysmith's seal does
    /// not vouch for is not read: the status alone is.
    fn carried(secret: Option<&ObservedSecret>, status: &PreviousStatus) -> Record {
        match secret {
            Some(secret) => {
                let own = Record::read(&secret.annotations);
                Record {
                    revision: own.revision.or(status.revision),
                    rotated_at: own.rotated_at.or(status.last_rotation_time),
                    reason: own.reason.or(status.last_rotation_reason),
                    issued_at: own.issued_at.or(status.register_time),
                    ..own
                }
            }
            None => Record {
                revision: status.revision,
                rotated_at: status.last_rotation_time,
                reason: status.last_rotation_reason,
                issued_at: status.register_time,
                previous_expires_at: status.previous_expiry_time,
                observed_reset_request: status.observed_reset_request.clone(),
                observed_reset_annotation: status.observed_reset_annotation.clone(),
                previous_key: None,
            },
        }
    }
}

impl<'a> Snapshot<'a> {
    pub fn gather(intent: &'a Intent, observed: &'a Observed, now: Timestamp) -> Snapshot<'a> {
        let secret = observed.secret.as_ref();
        let status = &observed.status;
        let vouched = secret.map(|secret| vouched(secret, intent, status, observed.record_key));
        let trusted_record = vouched.as_ref().is_none_or(|v| v.record);
        let secret_record = secret.filter(|_| trusted_record);
        Snapshot {
            intent,
            now: truncate_to_second(now),
            status,
            key_held_by: observed.key_held_by.as_deref(),
            secret,
            source: observed.source.as_ref(),
            gateway: &observed.gateway,
            issued: secret
                .zip(vouched.as_ref())
                .map(|(secret, vouched)| issued_in(secret, intent, vouched)),
            record: Record::carried(secret_record, status),
            planted_previous: secret
                .zip(vouched.as_ref())
                .is_some_and(|(secret, vouched)| {
                    secret.data.contains_key(&intent.previous_data_key) && !vouched.previous
                }),
            record_key: observed.record_key,
            forged_identity: secret
                .zip(vouched.as_ref())
                .is_some_and(|(secret, vouched)| {
                    observed.record_key.is_some()
                        && secret.ownership == Ownership::Ours
                        && !vouched.sealed
                        && status.revision.is_none()
                }),
            gateway_others: &observed.gateway_others,
        }
    }

    /// The user-supplied secret, once it exists and satisfies its rule.
    pub fn source_value(&self) -> Option<&String> {
        match (&self.intent.secret_from, self.source) {
            (Some(_), Some(SourceValue::Found(value)))
                if self.intent.secret_rule.is_valid(value) =>
            {
                Some(value)
            }
            _ => None,
        }
    }

    /// The key and secret in use: valid values from the Secret.
    pub fn current_key(&self) -> Option<&String> {
        self.issued.as_ref().and_then(|i| i.key.valid())
    }

    pub fn current_secret(&self) -> Option<&String> {
        self.issued.as_ref().and_then(|i| i.secret.valid())
    }
}

/// What keysmith vouches for in a Secret: which of the key and the secret
/// someone else changed, whether the record and the kept previous value are
/// its own. By the seal where the Secret carries one; for a Secret of an
/// earlier release (no seal, and the status never saw one), by server-side
/// apply's field ownership and, for the previous value, the expiry the
/// status recorded; once sealed, a Secret without a valid seal vouches for
/// nothing.
struct Vouched {
    edited: BTreeSet<String>,
    record: bool,
    previous: bool,
    /// A seal of keysmith's over the record verified.
    sealed: bool,
}

fn vouched(
    secret: &ObservedSecret,
    intent: &Intent,
    status: &PreviousStatus,
    key: Option<&RecordKey>,
) -> Vouched {
    let credential_keys = [&intent.key_data_key, &intent.secret_data_key];
    let Some(key) = key else {
        return Vouched {
            edited: secret.edited_keys.clone(),
            record: true,
            previous: true,
            sealed: false,
        };
    };
    let record = record_annotations(&secret.annotations);
    let at = Binding {
        owner_uid: intent.owner_uid(),
        secret_name: &intent.secret_name,
    };
    let seal = secret.annotations.get(annotations::SEAL);
    let verified = seal::verify(key, &at, seal.map(String::as_str), &record);
    let holds = |data_key: &String| match (seal, secret.data.get(data_key)) {
        (Some(seal), Some(Some(value))) => verified.value(key, &at, seal, data_key, value),
        _ => false,
    };
    if verified.present || status.sealed {
        return Vouched {
            edited: credential_keys
                .into_iter()
                .filter(|k| secret.data.contains_key(*k) && !holds(k))
                .cloned()
                .collect(),
            record: verified.record,
            previous: verified.record && holds(&intent.previous_data_key),
            sealed: verified.record,
        };
    }
    let expiry = Record::read(&secret.annotations).previous_expires_at;
    Vouched {
        edited: secret.edited_keys.clone(),
        record: true,
        previous: expiry.is_some() && expiry == status.previous_expiry_time,
        sealed: false,
    }
}

/// The rotation-record annotations a Secret carries.
pub fn record_annotations(all: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    annotations::RECORD
        .iter()
        .filter_map(|name| Some((name.to_string(), all.get(*name)?.clone())))
        .collect()
}

fn issued_in(secret: &ObservedSecret, intent: &Intent, vouched: &Vouched) -> Issued {
    let check = |data_key: &String, rule: &FormatRule| Checked {
        data_key: data_key.clone(),
        value: match secret.data.get(data_key) {
            None => DataValue::Missing,
            Some(None) => DataValue::Invalid(format!("key {data_key} is not UTF-8 text")),
            Some(Some(value)) => match rule.check(value) {
                Ok(()) => DataValue::Valid(value.clone()),
                Err(breach) => DataValue::Invalid(format!(
                    "key {data_key} {} ({} rule)",
                    rule.explain(breach),
                    rule.name
                )),
            },
        },
        edited: vouched.edited.contains(data_key),
    };
    Issued {
        key: check(&intent.key_data_key, intent.key_rule),
        secret: check(&intent.secret_data_key, intent.secret_rule),
        previous: secret
            .data
            .get(&intent.previous_data_key)
            .filter(|_| vouched.previous)
            .cloned()
            .flatten(),
    }
}

/// Whole seconds: Kubernetes stores times to the second, so anything finer
/// would differ from what is read back and trigger endless status writes.
pub fn truncate_to_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

pub fn format_time(t: Timestamp) -> String {
    truncate_to_second(t).to_string()
}

fn parse_time(text: Option<&String>) -> Option<Timestamp> {
    text.and_then(|t| t.parse().ok())
}

/// `t + d`, saturating.
pub fn add(t: Timestamp, d: Duration) -> Timestamp {
    let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fixtures::{World, rng, status_after, t, written};

    #[test]
    fn the_record_comes_from_the_secret_and_the_status_fills_gaps() {
        let mut world = World::issued();
        world.status.revision = Some(9);
        world.status.observed_reset_request = Some("from-status".into());
        let record = world.check(|s| s.record.clone());
        assert_eq!(record.revision, Some(1), "the Secret is never behind");
        assert_eq!(record.rotated_at, Some(t(0)));
        assert_eq!(record.reason, Some(RotationReason::Initial));
        assert_eq!(
            record.observed_reset_request, None,
            "the Secret's record of resets is whole"
        );

        world.secret = None;
        let record = world.check(|s| s.record.clone());
        assert_eq!(record.revision, Some(9));
        assert_eq!(
            record.observed_reset_request.as_deref(),
            Some("from-status")
        );
    }

    #[test]
    fn unreadable_annotations_read_as_absent() {
        let mut world = World::issued();
        world.set_annotation(annotations::REVISION, "seven");
        world.set_annotation(annotations::ROTATED_AT, "yesterday");
        world.set_annotation(annotations::ROTATION_REASON, "Whim");
        let record = world.check(|s| s.record.clone());
        assert_eq!(
            (record.revision, record.rotated_at, record.reason),
            (None, None, None)
        );
    }

    #[test]
    fn data_values_are_checked_against_their_rules() {
        let mut world = World::issued();
        world.set_data("app_secret", Some("Qx7"));
        world
            .secret
            .as_mut()
            .unwrap()
            .data
            .insert("app_key".into(), None);
        world.check(|s| {
            let issued = s.issued.as_ref().unwrap();
            assert!(matches!(&issued.key.value, DataValue::Invalid(p) if p.contains("not UTF-8")));
            assert!(matches!(&issued.secret.value, DataValue::Invalid(p) if !p.contains("Qx7")));
            assert_eq!(s.current_key(), None);
        });
    }

    /// A world whose Secret keysmith issued with seals on, and whose status
    /// recorded it; `keep` keeps a previous secret for an hour at a reset.
    fn sealed_world(keep: bool) -> World {
        let mut world = World::new();
        world.record_key = Some(RecordKey::for_tests());
        if keep {
            world.intent.keep_previous = Some(std::time::Duration::from_secs(3600));
        }
        let first =
            crate::engine::plan(&world.intent, &world.observed(), t(0), &mut rng()).unwrap();
        world.secret = Some(written(first.secret.as_ref().unwrap()));
        world.status = status_after(&first, &world.intent, &world.status);
        if keep {
            world.intent.reset_request = Some("again".into());
            let reset =
                crate::engine::plan(&world.intent, &world.observed(), t(5), &mut rng()).unwrap();
            world.secret = Some(written(reset.secret.as_ref().unwrap()));
            world.status = status_after(&reset, &world.intent, &world.status);
        }
        world
    }

    #[test]
    fn a_sealed_secret_vouches_for_its_values_and_record() {
        let world = sealed_world(true);
        assert!(world.status.sealed);
        world.check(|s| {
            let issued = s.issued.as_ref().unwrap();
            assert!(!issued.edited(), "nothing edited");
            assert!(issued.previous.is_some(), "the previous keysmith replaced");
            assert!(!s.planted_previous && !s.forged_identity);
            assert_eq!(s.record.revision, Some(2));
        });
        let again =
            crate::engine::plan(&world.intent, &world.observed(), t(6), &mut rng()).unwrap();
        assert_eq!(again.secret, None, "sealed and unchanged: no write");
    }

    #[test]
    fn an_edit_is_seen_whoever_made_it() {
        let mut world = sealed_world(false);
        world.set_data("app_secret", Some("Edited-value-0123456789"));
        assert!(world.check(|s| s.issued.as_ref().unwrap().secret.edited));
        assert!(!world.check(|s| s.issued.as_ref().unwrap().key.edited));
    }

    #[test]
    fn a_planted_previous_or_forged_expiry_is_not_trusted() {
        let mut world = sealed_world(false);
        world.set_data("app_secret_previous", Some("Planted-0123456789abc"));
        world.set_annotation(annotations::PREVIOUS_EXPIRES_AT, "2099-01-01T00:00:00Z");
        world.check(|s| {
            assert!(s.planted_previous);
            assert_eq!(s.issued.as_ref().unwrap().previous, None);
            assert_eq!(
                s.record.previous_expires_at, None,
                "the forged record is ignored"
            );
        });
        // A real previous with a forged, later expiry: the record is not trusted.
        let mut world = sealed_world(true);
        world.set_annotation(annotations::PREVIOUS_EXPIRES_AT, "2099-01-01T00:00:00Z");
        world.check(|s| {
            assert!(s.planted_previous);
            assert_eq!(
                s.record.previous_expires_at,
                world.status.previous_expiry_time
            );
        });
    }

    #[test]
    fn once_sealed_a_secret_without_a_seal_vouches_for_nothing() {
        let mut world = sealed_world(true);
        world
            .secret
            .as_mut()
            .unwrap()
            .annotations
            .remove(annotations::SEAL);
        world.check(|s| {
            assert!(s.issued.as_ref().unwrap().edited());
            assert!(s.planted_previous);
        });
    }

    #[test]
    fn an_unsealed_secret_of_an_earlier_release_is_judged_as_before() {
        let mut world = World::issued();
        world.record_key = Some(RecordKey::for_tests());
        world.status.revision = Some(1);
        world.check(|s| {
            assert!(!s.issued.as_ref().unwrap().edited());
            assert!(!s.planted_previous && !s.forged_identity);
        });
        // A previous value: trusted only at the expiry the status recorded.
        world.set_data("app_secret_previous", Some("Old-secret-0123456789"));
        world.set_annotation(annotations::PREVIOUS_EXPIRES_AT, &t(3600).to_string());
        assert!(world.check(|s| s.planted_previous));
        world.status.previous_expiry_time = Some(t(3600));
        assert!(!world.check(|s| s.planted_previous));
        // The same Secret for a resource never issued: someone wrote its uid there.
        world.status.revision = None;
        assert!(world.check(|s| s.forged_identity));
    }

    #[test]
    fn the_clock_is_truncated_to_the_second() {
        let now = Timestamp::from_millisecond(1_800_000_000_999).unwrap();
        assert_eq!(truncate_to_second(now), t(0));
    }
}
