//! Step two: guards. Each is a small named check over the snapshot that may
//! block the pass with a reason and a message (never a value); the first
//! that fails wins, and nothing already issued is changed.

use super::inputs::SourceValue;
use super::ownership::{Foreign, Ownership};
use super::snapshot::{Checked, DataValue, Snapshot};
use crate::api::Reason;
use crate::api::names::annotations::{
    ADOPT, ADOPT_SECRET, ALLOW_SOURCE, ALLOW_SOURCE_VALUE, PREVIOUS_EXPIRES_AT,
};
use crate::rules;

/// Why a pass writes nothing: the Ready=False reason and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocked {
    pub reason: Reason,
    pub message: String,
}

type Guard = fn(&Snapshot) -> Option<Blocked>;

/// In order: whose key, whose Secret, a source that opted in and is usable,
/// usable Secret data.
pub const GUARDS: [(&str, Guard); 9] = [
    ("spec within the floors", check_floors),
    ("key is unique", check_key_unique),
    ("Secret is ours", check_secret_is_ours),
    ("gateway Secrets are ours", check_gateway_secrets_are_ours),
    ("source opted in", check_source_allowed),
    ("source is valid", check_source_valid),
    ("previous value is keysmith's", check_previous_is_ours),
    ("Secret data is usable", check_secret_data),
    ("no duplicate at the gateway", check_gateway_unique),
];

/// The first guard that blocks, if any.
pub fn first_failure(snapshot: &Snapshot) -> Option<Blocked> {
    GUARDS.iter().find_map(|(_, guard)| guard(snapshot))
}

/// Defence in depth (SPEC §10): the floors admission enforces hold here
/// too, should a resource reach keysmith without admission (a CRD without
/// its schema, a bypass): generated secrets of at least 128 bits (unless the
/// rule fixes a shorter length), rotation intervals of at least a minute.
pub fn check_floors(s: &Snapshot) -> Option<Blocked> {
    let intent = s.intent;
    let floor = rules::min_generated_len(intent.secret_rule, intent.symbols);
    let generates = intent.secret_from.is_none();
    let message = if generates && intent.generator_length < floor {
        format!(
            "spec.generator.length {} is below {floor}, the shortest {} that carries 128 bits of entropy; nothing was issued or changed",
            intent.generator_length, intent.secret_rule.name
        )
    } else if intent
        .interval
        .is_some_and(|i| i < rules::MIN_ROTATION_INTERVAL)
    {
        "spec.rotation.interval is below the minimum of 1m; nothing was issued or changed".into()
    } else {
        return None;
    };
    Some(Blocked {
        reason: Reason::InvalidSpec,
        message,
    })
}

/// Another resource holds the key this one wants (it issued it, or claimed
/// it first while nobody had).
pub fn check_key_unique(s: &Snapshot) -> Option<Blocked> {
    let holder = s.key_held_by?;
    Some(Blocked {
        reason: Reason::AppKeyConflict,
        message: format!(
            "the {} is already held by {holder}; choose another key",
            s.intent.key_label
        ),
    })
}

/// A Secret of the target name that keysmith did not create for this
/// resource; the message gives the remedy that fits why.
pub fn check_secret_is_ours(s: &Snapshot) -> Option<Blocked> {
    let why = match s.secret?.ownership {
        Ownership::Foreign(why) => why,
        _ if s.forged_identity => Foreign::NotKeysmiths,
        _ => return None,
    };
    let name = &s.intent.secret_name;
    let message = match why {
        Foreign::NotKeysmiths => format!(
            "Secret {name} exists and was not created by keysmith for this resource; it is left untouched (delete it, or set spec.secret.name to another name)"
        ),
        Foreign::AnotherResource => format!(
            "Secret {name} belongs to another existing resource (its owner uid or an owner reference); it is left untouched and cannot be adopted (set spec.secret.name to another name)"
        ),
        Foreign::Leftover => format!(
            "Secret {name} was written by keysmith for an earlier resource of this name and is left untouched; to take it over, annotate the Secret {ADOPT}=true and this resource {ADOPT_SECRET}=true (its values are then validated and kept), or delete it"
        ),
    };
    Some(Blocked {
        reason: Reason::SecretConflict,
        message,
    })
}

/// A Secret of a gateway Secret's name that keysmith did not create for
/// this resource: nothing is written, so a gateway never reads a credential
/// keysmith did not issue, and nobody's Secret is overwritten.
pub fn check_gateway_secrets_are_ours(s: &Snapshot) -> Option<Blocked> {
    let (name, _) = s.gateway.iter().find(|(_, found)| !found.ours())?;
    Some(Blocked {
        reason: Reason::SecretConflict,
        message: format!(
            "Secret {name} (a gateway Secret of spec.gateway) exists and was not created by keysmith for this resource; it is left untouched (delete it, or set spec.gateway.name to another name)"
        ),
    })
}

/// The credential would appear twice at a gateway: another resource's
/// gateway Secret of the same layout in the namespace already holds the
/// same key, username or secret. Envoy Gateway then refuses the whole policy
/// (500 on every route it protects), Kong drops every consumer involved,
/// APISIX refuses the consumer: so this resource's entry is not written and
/// the gateway keeps serving everyone else. The other resource is named
/// (same namespace only: nothing is read elsewhere); no value ever is.
pub fn check_gateway_unique(s: &Snapshot) -> Option<Blocked> {
    let layout = s.intent.gateway.as_ref()?.layout;
    let own = super::gateway::own_atoms(s, layout);
    let (other, what) = s.gateway_others.iter().find_map(|other| {
        let theirs = super::gateway::atoms(layout, &other.data);
        if !own.ids.is_disjoint(&theirs.ids) {
            Some((other, "username or client ID"))
        } else if !own.secrets.is_disjoint(&theirs.secrets) {
            Some((other, "secret"))
        } else {
            None
        }
    })?;
    let owner = other
        .owner
        .as_ref()
        .map(|owner| format!(" of {owner}"))
        .unwrap_or_default();
    Some(Blocked {
        reason: Reason::GatewayConflict,
        message: format!(
            "gateway Secret {}{owner} already holds the same {what} ({} layout): a gateway reading both would see it twice, so this resource's entry is not written; give one of them another value",
            other.name,
            layout.as_str()
        ),
    })
}

/// A source Secret must say keysmith may read it (SPEC §10): the right to
/// create a GatewayApp is not the right to copy any Secret of the namespace.
pub fn check_source_allowed(s: &Snapshot) -> Option<Blocked> {
    let (name, _) = s.intent.secret_from.as_ref()?;
    matches!(s.source, Some(SourceValue::NotAllowed)).then(|| Blocked {
        reason: Reason::SourceNotAllowed,
        message: format!(
            "Secret {name} does not allow keysmith to read it: add the annotation (or label) {ALLOW_SOURCE}: \"{ALLOW_SOURCE_VALUE}\" to it; nothing issued was changed"
        ),
    })
}

/// A user-supplied secret must exist and satisfy its rule before anything moves.
pub fn check_source_valid(s: &Snapshot) -> Option<Blocked> {
    let (name, key) = s.intent.secret_from.as_ref()?;
    let rule = s.intent.secret_rule;
    let problem = match s.source {
        Some(SourceValue::NotAllowed) => return None, // check_source_allowed's
        Some(SourceValue::Found(value)) => match rule.check(value) {
            Ok(()) => return None,
            Err(breach) => format!("its value {}", rule.explain(breach)),
        },
        Some(SourceValue::KeyMissing) => "has no such key".to_string(),
        Some(SourceValue::NotUtf8) => "holds a value that is not UTF-8 text".to_string(),
        Some(SourceValue::SecretMissing) | None => "does not exist".to_string(),
    };
    let subject = match s.source {
        Some(SourceValue::SecretMissing) | None => format!("Secret {name}"),
        _ => format!("key {key} of Secret {name}"),
    };
    Some(Blocked {
        reason: Reason::InvalidSecretFrom,
        message: format!(
            "{subject} {problem} ({} rule); nothing issued was changed",
            rule.name
        ),
    })
}

/// A previous value (or its expiry) keysmith did not write — planted to be
/// published as a second valid credential — is never used: reported, and
/// nothing is written until it is removed (SPEC §10, keysmith trusts only
/// what it wrote).
pub fn check_previous_is_ours(s: &Snapshot) -> Option<Blocked> {
    s.planted_previous.then(|| Blocked {
        reason: Reason::SecretEdited,
        message: format!(
            "Secret {} holds a previous value (key {}) or an expiry ({PREVIOUS_EXPIRES_AT}) that keysmith did not write; it is not published to gateways or workloads, and nothing is written until you remove that key from the Secret",
            s.intent.secret_name, s.intent.previous_data_key
        ),
    })
}

/// The key and the secret in the Secret, in that order: a missing one, or
/// one someone else changed so that it breaks its rule (a deliberate change,
/// never overwritten). A value keysmith itself wrote under a rule that has
/// since changed (the sign type) passes: a trigger reissues it.
pub fn check_secret_data(s: &Snapshot) -> Option<Blocked> {
    let issued = s.issued.as_ref()?;
    [&issued.key, &issued.secret]
        .into_iter()
        .find_map(|checked| check_data_value(s, checked))
}

fn check_data_value(s: &Snapshot, checked: &Checked) -> Option<Blocked> {
    let secret_name = &s.intent.secret_name;
    let message = match &checked.value {
        DataValue::Valid(_) => return None,
        DataValue::Missing => format!(
            "Secret {secret_name} has no key {}; restore it, or delete the Secret to have new credentials issued",
            checked.data_key
        ),
        DataValue::Invalid(problem) if checked.edited || s.intent.secret_from.is_some() => format!(
            "Secret {secret_name} was edited and its {problem}; it is not overwritten: fix the value, or delete the Secret to have new credentials issued"
        ),
        DataValue::Invalid(_) => return None,
    };
    Some(Blocked {
        reason: Reason::InvalidSecretData,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fixtures::World;

    fn reason(blocked: Option<Blocked>) -> Option<Reason> {
        blocked.map(|b| b.reason)
    }

    #[test]
    fn floors_hold_without_admission() {
        let mut world = World::new();
        assert_eq!(world.check(check_floors), None);
        world.intent.generator_length = 12;
        let blocked = world.check(check_floors).unwrap();
        assert_eq!(blocked.reason, Reason::InvalidSpec);
        assert!(
            blocked.message.contains("spec.generator.length 12"),
            "{}",
            blocked.message
        );
        world.intent.secret_from = Some(("byo".into(), "secret".into()));
        assert_eq!(world.check(check_floors), None, "nothing is generated");
        world.intent.interval = Some(std::time::Duration::from_secs(59));
        let blocked = world.check(check_floors).unwrap();
        assert!(blocked.message.contains("spec.rotation.interval"));
        world.intent.interval = Some(std::time::Duration::from_secs(60));
        assert_eq!(world.check(check_floors), None);
        assert_eq!(
            reason(World::issued().check(first_failure)),
            None,
            "the fixtures are within the floors"
        );
    }

    #[test]
    fn key_unique_blocks_only_when_an_older_holder_exists() {
        let mut world = World::issued();
        assert_eq!(world.check(check_key_unique), None);
        world.key_held_by = Some("GatewayApp shop/older".into());
        let blocked = world.check(check_key_unique).unwrap();
        assert_eq!(blocked.reason, Reason::AppKeyConflict);
        assert!(blocked.message.contains("GatewayApp shop/older"));
        assert!(blocked.message.contains("AppKey"));
    }

    #[test]
    fn secret_is_ours_blocks_a_foreign_secret_and_passes_ours_or_none() {
        let mut world = World::issued();
        assert_eq!(world.check(check_secret_is_ours), None);
        world.secret.as_mut().unwrap().ownership = Ownership::Foreign(Foreign::NotKeysmiths);
        let blocked = world.check(check_secret_is_ours).unwrap();
        assert_eq!(blocked.reason, Reason::SecretConflict);
        assert!(blocked.message.contains("Secret orders"));
        assert_eq!(reason(World::new().check(check_secret_is_ours)), None);
        world.secret.as_mut().unwrap().ownership = Ownership::Foreign(Foreign::Leftover);
        let blocked = world.check(check_secret_is_ours).unwrap();
        assert!(
            blocked.message.contains("keysmith.dev/adopt=true"),
            "{}",
            blocked.message
        );
        world.secret.as_mut().unwrap().ownership = Ownership::Foreign(Foreign::AnotherResource);
        let blocked = world.check(check_secret_is_ours).unwrap();
        assert!(
            blocked.message.contains("cannot be adopted"),
            "{}",
            blocked.message
        );
        world.secret.as_mut().unwrap().ownership = Ownership::Adopted;
        assert_eq!(world.check(check_secret_is_ours), None);
    }

    #[test]
    fn source_valid_names_the_secret_key_and_rule_never_the_value() {
        let mut world = World::new();
        assert_eq!(world.check(check_source_valid), None, "no source asked for");
        world.intent.secret_from = Some(("byo".into(), "secret".into()));
        for (source, says) in [
            (None, "Secret byo does not exist"),
            (
                Some(SourceValue::SecretMissing),
                "Secret byo does not exist",
            ),
            (
                Some(SourceValue::KeyMissing),
                "key secret of Secret byo has no such key",
            ),
            (Some(SourceValue::NotUtf8), "not UTF-8"),
            (Some(SourceValue::Found("sh".into())), "8–64 characters"),
        ] {
            world.source = source;
            let blocked = world.check(check_source_valid).unwrap();
            assert_eq!(blocked.reason, Reason::InvalidSecretFrom);
            assert!(blocked.message.contains(says), "{}", blocked.message);
            assert!(
                blocked.message.contains("AppSecret rule"),
                "{}",
                blocked.message
            );
        }
        world.source = Some(SourceValue::Found("Zq9-valid-secret".into()));
        assert_eq!(world.check(check_source_valid), None);
    }

    #[test]
    fn source_allowed_blocks_a_source_without_the_opt_in() {
        let mut world = World::new();
        world.intent.secret_from = Some(("byo".into(), "secret".into()));
        world.source = Some(SourceValue::Found("Zq9-valid-secret".into()));
        assert_eq!(world.check(check_source_allowed), None);
        world.source = Some(SourceValue::NotAllowed);
        let blocked = world.check(check_source_allowed).unwrap();
        assert_eq!(blocked.reason, Reason::SourceNotAllowed);
        assert!(blocked.message.contains("Secret byo"));
        assert!(blocked.message.contains("keysmith.dev/allow-source"));
        assert_eq!(
            world.check(check_source_valid),
            None,
            "one reason at a time"
        );
        assert_eq!(
            reason(world.check(first_failure)),
            Some(Reason::SourceNotAllowed)
        );
    }

    #[test]
    fn secret_data_blocks_a_missing_key_and_an_edited_invalid_value() {
        let mut world = World::issued();
        assert_eq!(world.check(check_secret_data), None);

        world.set_data("app_secret", None);
        let blocked = world.check(check_secret_data).unwrap();
        assert_eq!(blocked.reason, Reason::InvalidSecretData);
        assert!(blocked.message.contains("has no key app_secret"));

        // Invalid but written by keysmith (a rule that changed): a trigger reissues it.
        let mut world = World::issued();
        world.set_data("app_secret", Some("bad"));
        assert_eq!(world.check(check_secret_data), None);

        // Invalid and edited by someone: never overwritten.
        let secret = world.secret.as_mut().unwrap();
        secret.edited_keys.insert("app_secret".into());
        let blocked = world.check(check_secret_data).unwrap();
        assert!(blocked.message.contains("was edited"));
        assert!(!blocked.message.contains("bad"), "never the value");

        // With a source, an invalid secret in the Secret is the user's too.
        let mut world = World::issued();
        world.set_data("app_secret", Some("bad"));
        world.intent.secret_from = Some(("byo".into(), "secret".into()));
        assert_eq!(
            reason(world.check(check_secret_data)),
            Some(Reason::InvalidSecretData)
        );
    }

    #[test]
    fn the_key_is_checked_before_the_secret() {
        let mut world = World::issued();
        world.set_data("app_key", None);
        world.set_data("app_secret", None);
        let blocked = world.check(check_secret_data).unwrap();
        assert!(blocked.message.contains("no key app_key"));
    }

    fn other(name: &str, pairs: &[(&str, &str)]) -> crate::engine::OtherGatewaySecret {
        crate::engine::OtherGatewaySecret {
            name: name.into(),
            owner: Some(format!("GatewayApp {}", name.trim_end_matches("-gateway"))),
            data: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn with_gateway(layout: crate::api::GatewayLayout) -> World {
        let mut world = World::issued();
        world.intent.gateway = Some(crate::engine::GatewayIntent {
            layout,
            name: "orders-gateway".into(),
        });
        world
    }

    #[test]
    fn gateway_unique_blocks_a_key_or_client_id_another_gateway_secret_holds() {
        use crate::api::GatewayLayout::EnvoyGatewayApiKey;
        use crate::engine::fixtures::{KEY, SECRET};
        let mut world = with_gateway(EnvoyGatewayApiKey);
        assert_eq!(world.check(check_gateway_unique), None, "nobody else");
        world.gateway_others = vec![other("shop-gateway", &[("shop-key-1", "Other-secret-123")])];
        assert_eq!(world.check(check_gateway_unique), None, "all different");

        world.gateway_others = vec![other("shop-gateway", &[("shop-key-1", SECRET)])];
        let blocked = world.check(check_gateway_unique).unwrap();
        assert_eq!(blocked.reason, Reason::GatewayConflict);
        assert!(
            blocked.message.contains("shop-gateway of GatewayApp shop"),
            "{}",
            blocked.message
        );
        assert!(
            blocked.message.contains("same secret"),
            "{}",
            blocked.message
        );
        assert!(!blocked.message.contains(SECRET), "never the value");

        world.gateway_others = vec![other("shop-gateway", &[(KEY, "Other-secret-123")])];
        let blocked = world.check(check_gateway_unique).unwrap();
        assert!(blocked.message.contains("client ID"), "{}", blocked.message);
        assert!(!blocked.message.contains(KEY), "never the value");
        assert_eq!(
            reason(world.check(first_failure)),
            Some(Reason::GatewayConflict)
        );
    }

    #[test]
    fn gateway_unique_checks_the_custom_secret_before_it_is_issued() {
        use crate::api::GatewayLayout::EnvoyGatewayApiKey;
        let mut world = with_gateway(EnvoyGatewayApiKey);
        world.secret = None;
        world.intent.secret_from = Some(("byo".into(), "secret".into()));
        world.source = Some(SourceValue::Found("Shared-custom-1".into()));
        world.intent.custom_key = Some("custom-key-9".into());
        world.gateway_others = vec![other("a-gateway", &[("a-key-0001", "Shared-custom-1")])];
        assert_eq!(
            reason(world.check(check_gateway_unique)),
            Some(Reason::GatewayConflict)
        );
        // A generated secret cannot collide: nothing to compare yet.
        world.intent.secret_from = None;
        world.source = None;
        assert_eq!(world.check(check_gateway_unique), None);
    }

    #[test]
    fn gateway_unique_compares_htpasswd_users_and_hashes_and_single_credentials() {
        use crate::api::GatewayLayout::{EnvoyGatewayBasicAuth, KongBasicAuth, KongKeyAuth};
        use crate::engine::fixtures::{KEY, SECRET};
        use crate::engine::gateway::htpasswd_line;
        let mut world = with_gateway(EnvoyGatewayBasicAuth);
        let same_hash = htpasswd_line("someone-else", SECRET);
        world.gateway_others = vec![other("b-gateway", &[(".htpasswd", &same_hash)])];
        assert!(
            world
                .check(check_gateway_unique)
                .unwrap()
                .message
                .contains("same secret")
        );
        let same_user = htpasswd_line(KEY, "Another-secret-1");
        world.gateway_others = vec![other("b-gateway", &[(".htpasswd", &same_user)])];
        assert!(
            world
                .check(check_gateway_unique)
                .unwrap()
                .message
                .contains("username")
        );

        let mut world = with_gateway(KongKeyAuth);
        world.gateway_others = vec![other("k-gateway-previous", &[("key", SECRET)])];
        assert!(world.check(check_gateway_unique).is_some());
        let mut world = with_gateway(KongBasicAuth);
        world.gateway_others = vec![other("k-gateway", &[("username", KEY), ("password", "x")])];
        assert!(world.check(check_gateway_unique).is_some());
        world.gateway_others = vec![other("k-gateway", &[("username", "u"), ("password", "x")])];
        assert_eq!(world.check(check_gateway_unique), None);
    }

    #[test]
    fn guards_run_in_order_and_the_first_failure_wins() {
        let mut world = World::issued();
        assert_eq!(world.check(first_failure), None);
        world.secret.as_mut().unwrap().ownership = Ownership::Foreign(Foreign::NotKeysmiths);
        world.key_held_by = Some("GatewayApp shop/older".into());
        assert_eq!(
            reason(world.check(first_failure)),
            Some(Reason::AppKeyConflict)
        );
        world.key_held_by = None;
        assert_eq!(
            reason(world.check(first_failure)),
            Some(Reason::SecretConflict)
        );
    }
}
