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

    #[test]
    fn only_foreign_secrets_are_not_ours() {
        assert!(Ownership::Ours.ours());
        assert!(Ownership::Adopted.ours());
        for foreign in [NOT_OURS, OTHER, LEFTOVER] {
            assert!(!foreign.ours());
        }
    }
}
