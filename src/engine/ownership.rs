//! Whose a Secret is (SPEC §10, "Identity is the uid, everywhere"), decided
//! on facts alone: what the Secret says about its owner ([`SecretIdentity`])
//! and who asks ([`Claimant`]). The controller reads the facts; this module
//! decides, so every rule has a unit test and the model test can try forged,
//! foreign and leftover Secrets.
//!
//! In order:
//! 1. keysmith's labels naming the claimant (the owner label, and the full
//!    name beside it where the label holds a hash) — else not keysmith's;
//! 2. the claimant's uid in the Secret — ours;
//! 3. no uid, but the claimant's own status (written only by keysmith)
//!    vouches for this Secret at its revision — ours (an earlier release);
//! 4. another *existing* resource's identity (its uid, or any owner
//!    reference not to the claimant) — never adopted, whatever asks;
//! 5. a leftover (deletionPolicy Retain) — adopted only when the resource
//!    asks *and* the Secret itself opts in (`keysmith.dev/adopt: "true"`).
//!
//! The facts are read off the metadata here too ([`SecretIdentity::read`],
//! [`Claimant::read`]): which label and annotation says what, and which
//! value counts, is decided in one place. The controller only hands over
//! the maps, the owner references' uids and whether a uid names a live
//! resource; and [`entries_of_others`] says, once ownership is known, which
//! data entries are someone else's.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::names::{annotations, labels};

/// What a Secret says about its owner.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecretIdentity {
    /// `app.kubernetes.io/managed-by: keysmith`.
    pub managed_by_keysmith: bool,
    /// The value of the claimant kind's owner label, if any.
    pub owner_label: Option<String>,
    /// `keysmith.dev/owner-uid`.
    pub owner_uid: Option<String>,
    /// `keysmith.dev/owner-name` (written where the label holds a hash).
    pub owner_name: Option<String>,
    /// The uids of the Secret's owner references.
    pub owner_reference_uids: Vec<String>,
    /// `keysmith.dev/revision`.
    pub revision: Option<i64>,
    /// The Secret opts in to adoption (`keysmith.dev/adopt: "true"`).
    pub opted_in: bool,
    /// Its owner uid names a resource of keysmith's, other than the
    /// claimant, that exists now.
    pub owner_uid_is_live: bool,
}

/// The resource asking whether a Secret is its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claimant {
    pub name: String,
    pub uid: Option<String>,
    /// The owner label's value for this name (the name, or prefix-hash).
    pub owner_label: String,
    /// `keysmith.dev/adopt-secret: "true"` on the resource.
    pub asks_to_adopt: bool,
    /// What its status records: the Secret it issued into, at which revision.
    pub issued_into: Option<(String, i64)>,
}

impl SecretIdentity {
    /// What a Secret's labels, annotations and owner references' uids say.
    /// `owner_label` is the claimant kind's owner label; `is_live` tells
    /// whether a uid names an existing resource of that kind other than the
    /// claimant.
    pub fn read(
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        owner_reference_uids: Vec<String>,
        owner_label: &str,
        is_live: &dyn Fn(&str) -> bool,
    ) -> SecretIdentity {
        let owner_uid = annotations.get(annotations::OWNER_UID).cloned();
        SecretIdentity {
            managed_by_keysmith: labels.get(labels::MANAGED_BY).map(String::as_str)
                == Some(labels::MANAGED_BY_VALUE),
            owner_label: labels.get(owner_label).cloned(),
            owner_uid_is_live: owner_uid.as_deref().is_some_and(is_live),
            owner_uid,
            owner_name: annotations.get(annotations::OWNER_NAME).cloned(),
            owner_reference_uids,
            revision: annotations
                .get(annotations::REVISION)
                .and_then(|r| r.parse().ok()),
            opted_in: asks(annotations, annotations::ADOPT),
        }
    }
}

impl Claimant {
    /// The resource `name` (uid `uid`, these `annotations`) asking; its
    /// status records issuing into `issued_into`, if anything.
    pub fn read(
        name: &str,
        uid: Option<String>,
        annotations: &BTreeMap<String, String>,
        issued_into: Option<(String, i64)>,
    ) -> Claimant {
        Claimant {
            name: name.to_string(),
            uid,
            owner_label: labels::owner_value(name),
            asks_to_adopt: asks(annotations, annotations::ADOPT_SECRET),
            issued_into,
        }
    }
}

/// `annotation` says `"true"` (adoption is asked for, on either side).
fn asks(annotations: &BTreeMap<String, String>, annotation: &str) -> bool {
    annotations.get(annotation).map(String::as_str) == Some(annotations::ADOPT_VALUE)
}

/// Whose a Secret is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ownership {
    /// Issued by keysmith for this resource.
    #[default]
    Ours,
    /// Issued by keysmith for an earlier resource of this name and taken over
    /// on both sides' request: its values count as someone else's
    /// (validated, never overwritten).
    Adopted,
    Foreign(Foreign),
}

/// Why a Secret is not this resource's: each has its own remedy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Foreign {
    /// Not labelled as keysmith's for this resource (or labels only, forged).
    NotKeysmiths,
    /// Holds another existing resource's identity or an owner reference.
    AnotherResource,
    /// A leftover of an earlier resource of this name, not (both) opted in.
    Leftover,
}

impl Ownership {
    pub fn ours(self) -> bool {
        !matches!(self, Ownership::Foreign(_))
    }
}

/// One check: the Secret's name, what it says, who asks.
type Check = fn(&str, &SecretIdentity, &Claimant) -> Option<Ownership>;

/// The checks, in order; the first that answers decides.
const CHECKS: [Check; 5] = [
    check_labelled_for_claimant,
    check_claimants_uid,
    check_vouched_by_status,
    check_another_resource,
    check_leftover_opted_in,
];

/// Whose the Secret `secret_name` is, for `claimant`.
pub fn decide(secret_name: &str, identity: &SecretIdentity, claimant: &Claimant) -> Ownership {
    CHECKS
        .iter()
        .find_map(|check| check(secret_name, identity, claimant))
        .unwrap_or(Ownership::Foreign(Foreign::Leftover))
}

/// keysmith's labels naming the claimant, and the full name where the
/// label cannot hold it: a label value alone is forged by naming a
/// resource after it.
pub fn check_labelled_for_claimant(
    _: &str,
    identity: &SecretIdentity,
    claimant: &Claimant,
) -> Option<Ownership> {
    let labelled = identity.managed_by_keysmith
        && identity.owner_label.as_deref() == Some(claimant.owner_label.as_str());
    let hashed = claimant.owner_label != claimant.name;
    let named = match &identity.owner_name {
        Some(name) => *name == claimant.name,
        // An earlier release may not have written the name: then only the uid can decide.
        None => !hashed || identity.owner_uid.is_some(),
    };
    (!labelled || !named).then_some(Ownership::Foreign(Foreign::NotKeysmiths))
}

pub fn check_claimants_uid(
    _: &str,
    identity: &SecretIdentity,
    claimant: &Claimant,
) -> Option<Ownership> {
    let uid = identity.owner_uid.as_ref()?;
    (claimant.uid.as_ref() == Some(uid)).then_some(Ownership::Ours)
}

/// A Secret of an earlier release (no uid): the claimant's status — which
/// only keysmith writes — recorded issuing into it at the Secret's revision
/// (or the one before: a crash between the Secret and the status write).
pub fn check_vouched_by_status(
    secret_name: &str,
    identity: &SecretIdentity,
    claimant: &Claimant,
) -> Option<Ownership> {
    if identity.owner_uid.is_some() {
        return None;
    }
    let (name, status_rev) = claimant.issued_into.as_ref()?;
    let secret_rev = identity.revision?;
    let vouched =
        name == secret_name && (secret_rev == *status_rev || secret_rev == status_rev + 1);
    vouched.then_some(Ownership::Ours)
}

pub fn check_another_resource(
    _: &str,
    identity: &SecretIdentity,
    claimant: &Claimant,
) -> Option<Ownership> {
    let owned_by_other = identity
        .owner_reference_uids
        .iter()
        .any(|uid| claimant.uid.as_ref() != Some(uid));
    (identity.owner_uid_is_live || owned_by_other)
        .then_some(Ownership::Foreign(Foreign::AnotherResource))
}

pub fn check_leftover_opted_in(
    _: &str,
    identity: &SecretIdentity,
    claimant: &Claimant,
) -> Option<Ownership> {
    Some(match claimant.asks_to_adopt && identity.opted_in {
        true => Ownership::Adopted,
        false => Ownership::Foreign(Foreign::Leftover),
    })
}

/// Which data entries of a Secret are someone else's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntriesOfOthers {
    /// Of the `checked` keys, those someone else changed (or wrote).
    pub edited: BTreeSet<String>,
    /// Some entry is someone else's.
    pub any: bool,
}

/// Which of `data`'s entries are someone else's: those keysmith's field
/// manager does not own (`owned`; `None`: keysmith never applied this
/// Secret, so none is its own), and every entry of an adopted Secret (its
/// values were written for an earlier resource).
pub fn entries_of_others<'k, V>(
    ownership: Ownership,
    data: &BTreeMap<String, V>,
    owned: Option<&BTreeSet<String>>,
    checked: impl IntoIterator<Item = &'k String>,
) -> EntriesOfOthers {
    let adopted = ownership == Ownership::Adopted;
    let others = |key: &String| adopted || owned.is_none_or(|owned| !owned.contains(key));
    EntriesOfOthers {
        edited: checked
            .into_iter()
            .filter(|k| data.contains_key(*k) && others(k))
            .cloned()
            .collect(),
        any: adopted || owned.is_none() || data.keys().any(others),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "uid-orders";

    fn claimant() -> Claimant {
        Claimant {
            name: "orders".into(),
            uid: Some(UID.into()),
            owner_label: "orders".into(),
            asks_to_adopt: false,
            issued_into: None,
        }
    }

    fn labelled(uid: Option<&str>) -> SecretIdentity {
        SecretIdentity {
            managed_by_keysmith: true,
            owner_label: Some("orders".into()),
            owner_uid: uid.map(String::from),
            revision: Some(1),
            ..Default::default()
        }
    }

    fn whose(identity: &SecretIdentity, claimant: &Claimant) -> Ownership {
        decide("orders", identity, claimant)
    }

    const NOT_OURS: Ownership = Ownership::Foreign(Foreign::NotKeysmiths);
    const OTHER: Ownership = Ownership::Foreign(Foreign::AnotherResource);
    const LEFTOVER: Ownership = Ownership::Foreign(Foreign::Leftover);

    #[test]
    fn labels_and_the_claimants_uid_make_a_secret_ours() {
        assert_eq!(whose(&labelled(Some(UID)), &claimant()), Ownership::Ours);
        let unlabelled = SecretIdentity {
            managed_by_keysmith: false,
            ..labelled(Some(UID))
        };
        assert_eq!(whose(&unlabelled, &claimant()), NOT_OURS);
        let other_label = SecretIdentity {
            owner_label: Some("payments".into()),
            ..labelled(Some(UID))
        };
        assert_eq!(whose(&other_label, &claimant()), NOT_OURS);
    }

    #[test]
    fn a_hashed_label_is_not_enough_the_full_name_must_match() {
        // A resource named after another's hashed label value (the forgery).
        let forger = Claimant {
            name: "orders-0123456789".into(),
            owner_label: "orders-0123456789".into(),
            asks_to_adopt: true,
            uid: Some("uid-forger".into()),
            ..claimant()
        };
        let victims = SecretIdentity {
            owner_label: Some("orders-0123456789".into()),
            owner_name: Some("orders-with-a-very-long-name".into()),
            owner_uid: Some("uid-victim".into()),
            owner_uid_is_live: true,
            opted_in: true,
            ..labelled(None)
        };
        assert_eq!(whose(&victims, &forger), NOT_OURS);
        // Without the name annotation, the victim's live uid still refuses it.
        let nameless = SecretIdentity {
            owner_name: None,
            ..victims.clone()
        };
        assert_eq!(whose(&nameless, &forger), OTHER);
        // The rightful owner, whose label is the hash, is recognised.
        let owner = Claimant {
            name: "orders-with-a-very-long-name".into(),
            owner_label: "orders-0123456789".into(),
            uid: Some("uid-victim".into()),
            ..claimant()
        };
        assert_eq!(whose(&victims, &owner), Ownership::Ours);
        // A hashed label with neither name nor uid: labels only, foreign.
        let bare = SecretIdentity {
            owner_name: None,
            owner_uid: None,
            ..victims
        };
        assert_eq!(whose(&bare, &owner), NOT_OURS);
    }

    #[test]
    fn labels_alone_are_a_forgery_unless_the_status_vouches_for_them() {
        assert_eq!(whose(&labelled(None), &claimant()), LEFTOVER);
        let vouched = Claimant {
            issued_into: Some(("orders".into(), 1)),
            ..claimant()
        };
        assert_eq!(whose(&labelled(None), &vouched), Ownership::Ours);
        let crashed = SecretIdentity {
            revision: Some(2),
            ..labelled(None)
        };
        assert_eq!(whose(&crashed, &vouched), Ownership::Ours, "a crash");
        let far = SecretIdentity {
            revision: Some(7),
            ..labelled(None)
        };
        assert_eq!(whose(&far, &vouched), LEFTOVER);
        let elsewhere = Claimant {
            issued_into: Some(("other".into(), 1)),
            ..claimant()
        };
        assert_eq!(whose(&labelled(None), &elsewhere), LEFTOVER);
    }

    #[test]
    fn another_existing_resources_secret_is_never_adopted() {
        let asking = Claimant {
            asks_to_adopt: true,
            ..claimant()
        };
        let live = SecretIdentity {
            owner_uid_is_live: true,
            opted_in: true,
            ..labelled(Some("uid-other"))
        };
        assert_eq!(whose(&live, &asking), OTHER);
        let referenced = SecretIdentity {
            owner_reference_uids: vec!["uid-other".into()],
            opted_in: true,
            ..labelled(Some("uid-gone"))
        };
        assert_eq!(whose(&referenced, &asking), OTHER);
    }

    #[test]
    fn a_leftover_is_adopted_only_when_both_the_resource_and_the_secret_ask() {
        let leftover = labelled(Some("uid-gone"));
        assert_eq!(whose(&leftover, &claimant()), LEFTOVER);
        let asking = Claimant {
            asks_to_adopt: true,
            ..claimant()
        };
        assert_eq!(
            whose(&leftover, &asking),
            LEFTOVER,
            "the Secret must opt in"
        );
        let opted_in = SecretIdentity {
            opted_in: true,
            ..leftover
        };
        assert_eq!(
            whose(&opted_in, &claimant()),
            LEFTOVER,
            "and the resource ask"
        );
        assert_eq!(whose(&opted_in, &asking), Ownership::Adopted);
        let unlabelled = SecretIdentity {
            managed_by_keysmith: false,
            ..opted_in
        };
        assert_eq!(
            whose(&unlabelled, &asking),
            NOT_OURS,
            "never without the labels"
        );
    }

    fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_identity_is_read_from_keysmiths_names_only() {
        let labels = map(&[
            ("app.kubernetes.io/managed-by", "keysmith"),
            ("keysmith.dev/gatewayapp", "orders"),
        ]);
        let annotations = map(&[
            ("keysmith.dev/owner-uid", "uid-old"),
            ("keysmith.dev/owner-name", "orders"),
            ("keysmith.dev/revision", "3"),
            ("keysmith.dev/adopt", "true"),
        ]);
        let live = |uid: &str| uid == "uid-old";
        let read = |labels: &BTreeMap<String, String>, annotations: &BTreeMap<String, String>| {
            SecretIdentity::read(
                labels,
                annotations,
                vec!["uid-x".into()],
                "keysmith.dev/gatewayapp",
                &live,
            )
        };
        assert_eq!(
            read(&labels, &annotations),
            SecretIdentity {
                managed_by_keysmith: true,
                owner_label: Some("orders".into()),
                owner_uid: Some("uid-old".into()),
                owner_name: Some("orders".into()),
                owner_reference_uids: vec!["uid-x".into()],
                revision: Some(3),
                opted_in: true,
                owner_uid_is_live: true,
            }
        );
        // Other values than keysmith's own say nothing.
        let labels = map(&[
            ("app.kubernetes.io/managed-by", "Helm"),
            ("keysmith.dev/signaturekey", "orders"),
        ]);
        let annotations = map(&[
            ("keysmith.dev/adopt", "yes"),
            ("keysmith.dev/revision", "x"),
        ]);
        let identity = read(&labels, &annotations);
        assert!(!identity.managed_by_keysmith && !identity.opted_in);
        assert_eq!(identity.owner_label, None, "another kind's label");
        assert_eq!(
            (identity.revision, identity.owner_uid_is_live),
            (None, false)
        );
    }

    #[test]
    fn the_claimant_asks_to_adopt_only_with_true_and_a_long_name_is_hashed() {
        let asking = map(&[("keysmith.dev/adopt-secret", "true")]);
        let claimant = Claimant::read("orders", Some(UID.into()), &asking, None);
        assert_eq!(claimant.owner_label, "orders");
        assert!(claimant.asks_to_adopt);
        let maybe = map(&[("keysmith.dev/adopt-secret", "True")]);
        assert!(!Claimant::read("orders", None, &maybe, None).asks_to_adopt);
        let long = "o".repeat(80);
        let claimant = Claimant::read(&long, None, &BTreeMap::new(), Some(("s".into(), 2)));
        assert_ne!(claimant.owner_label, long);
        assert_eq!(claimant.issued_into, Some(("s".into(), 2)));
    }

    #[test]
    fn entries_keysmith_no_longer_owns_are_someone_elses() {
        let data: BTreeMap<String, ()> = [("app_key".into(), ()), ("app_secret".into(), ())].into();
        let checked = [
            "app_key".to_string(),
            "app_secret".to_string(),
            "gone".into(),
        ];
        let owned: BTreeSet<String> = ["app_key".to_string()].into();
        let ours = entries_of_others(Ownership::Ours, &data, Some(&owned), &checked);
        assert_eq!(ours.edited, ["app_secret".to_string()].into());
        assert!(ours.any);
        let all: BTreeSet<String> = data.keys().cloned().collect();
        let untouched = entries_of_others(Ownership::Ours, &data, Some(&all), &checked);
        assert_eq!(untouched, EntriesOfOthers::default());
        let never_applied = entries_of_others(Ownership::Ours, &data, None, &checked);
        assert_eq!(never_applied.edited.len(), 2);
        assert!(never_applied.any);
        let adopted = entries_of_others(Ownership::Adopted, &data, Some(&all), &checked);
        assert_eq!(
            adopted.edited.len(),
            2,
            "an adopted Secret's values are not ours"
        );
        assert!(adopted.any);
    }

    #[test]
    fn only_foreign_secrets_are_not_ours() {
        assert!(Ownership::Ours.ours());
        assert!(Ownership::Adopted.ours());
        for foreign in [NOT_OURS, OTHER, LEFTOVER] {
            assert!(!foreign.ours());
        }
    }
}
