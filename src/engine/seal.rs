//! keysmith trusts only what it wrote (SPEC §10). Every credential value it
//! writes into an output Secret, and its rotation record, carry a keyed MAC
//! (HMAC-SHA256 under a key kept in a Secret of keysmith's own), bound to
//! the owner's uid, the Secret's name and the data key: the annotation
//! `keysmith.dev/seal`. A value whose seal does not verify was put there by
//! someone else, whatever field manager name they used: it is reported
//! (`SecretEdited`) and, for a previous value, never published.
//!
//! A MAC reveals nothing of the value without the key, so the seal is no
//! "plain hash of the secret" (SPEC §5, Drift).

use std::collections::BTreeMap;

use base64::Engine as _;
use ring::hmac;

/// The key of the seals. (Debug never shows it.)
#[derive(Clone)]
pub struct RecordKey(hmac::Key);

impl RecordKey {
    /// At least 32 bytes of key material.
    pub fn new(material: &[u8]) -> Option<RecordKey> {
        (material.len() >= 32).then(|| RecordKey(hmac::Key::new(hmac::HMAC_SHA256, material)))
    }

    /// A fixed key for tests.
    #[cfg(test)]
    pub fn for_tests() -> RecordKey {
        RecordKey::new(&[7u8; 32]).expect("32 bytes")
    }

    /// 128 bits of the MAC of `parts`, unambiguously joined.
    fn mac(&self, parts: &[&str]) -> String {
        let mut ctx = hmac::Context::with_key(&self.0);
        for part in parts {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        let tag = ctx.sign();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag.as_ref()[..16])
    }
}

impl std::fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordKey(<redacted>)")
    }
}

/// The entry of the rotation record in a seal.
pub const RECORD_ENTRY: &str = "record";

/// Whose Secret and which one: what every seal is bound to.
pub struct Binding<'a> {
    pub owner_uid: &'a str,
    pub secret_name: &'a str,
}

/// The seal annotation's value for these credential values (data key →
/// value) and record annotations (name → value).
pub fn seal(
    key: &RecordKey,
    at: &Binding,
    values: &BTreeMap<&str, &str>,
    record: &BTreeMap<String, String>,
) -> String {
    let mut entries: Vec<String> = values
        .iter()
        .map(|(data_key, value)| format!("{data_key}={}", value_mac(key, at, data_key, value)))
        .collect();
    entries.push(format!("{RECORD_ENTRY}={}", record_mac(key, at, record)));
    entries.sort();
    entries.join(",")
}

fn value_mac(key: &RecordKey, at: &Binding, data_key: &str, value: &str) -> String {
    key.mac(&["value", at.owner_uid, at.secret_name, data_key, value])
}

fn record_mac(key: &RecordKey, at: &Binding, record: &BTreeMap<String, String>) -> String {
    let mut parts = vec!["record", at.owner_uid, at.secret_name];
    for (name, value) in record {
        parts.push(name);
        parts.push(value);
    }
    key.mac(&parts)
}

/// The seal of a pending credential set (SPEC §11.2): bound to the owner,
/// the Secret, the revision and both values.
pub fn pending_mac(
    key: &RecordKey,
    at: &Binding,
    revision: i64,
    app_key: &str,
    secret: &str,
) -> String {
    let revision = revision.to_string();
    key.mac(&[
        "pending",
        at.owner_uid,
        at.secret_name,
        &revision,
        app_key,
        secret,
    ])
}

/// A keyed digest of a value pushed to a cloud gateway, bound to its owner:
/// what `status.gateway.secretDigest` holds so that a drift check can tell
/// whether the gateway still has it, without the value in status (and,
/// keyed, no offline guessing of short custom secrets from the status).
pub fn gateway_digest(key: &RecordKey, owner_uid: &str, value: &str) -> String {
    key.mac(&["gateway", owner_uid, value])
}

/// What a seal vouches for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verified {
    /// The Secret carries a seal at all.
    pub present: bool,
    /// The record annotations are as keysmith wrote them.
    pub record: bool,
}

impl Verified {
    /// Whether the seal vouches for `value` under `data_key`.
    pub fn value(
        &self,
        key: &RecordKey,
        at: &Binding,
        seal: &str,
        data_key: &str,
        value: &str,
    ) -> bool {
        self.present && entry(seal, data_key) == Some(value_mac(key, at, data_key, value).as_str())
    }
}

/// Checks the seal's record entry; values are checked one by one with
/// [`Verified::value`].
pub fn verify(
    key: &RecordKey,
    at: &Binding,
    seal: Option<&str>,
    record: &BTreeMap<String, String>,
) -> Verified {
    let Some(seal) = seal else {
        return Verified::default();
    };
    Verified {
        present: true,
        record: entry(seal, RECORD_ENTRY) == Some(record_mac(key, at, record).as_str()),
    }
}

fn entry<'s>(seal: &'s str, name: &str) -> Option<&'s str> {
    seal.split(',')
        .filter_map(|e| e.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, mac)| mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Binding = Binding {
        owner_uid: "uid-1",
        secret_name: "orders",
    };

    fn record() -> BTreeMap<String, String> {
        BTreeMap::from([("keysmith.dev/revision".to_string(), "2".to_string())])
    }

    #[test]
    fn a_seal_vouches_for_exactly_what_was_sealed() {
        let key = RecordKey::for_tests();
        let values = BTreeMap::from([("app_secret", "Secret-1"), ("app_secret_previous", "Old-1")]);
        let sealed = seal(&key, &AT, &values, &record());
        let verified = verify(&key, &AT, Some(&sealed), &record());
        assert!(verified.present && verified.record);
        assert!(verified.value(&key, &AT, &sealed, "app_secret", "Secret-1"));
        assert!(verified.value(&key, &AT, &sealed, "app_secret_previous", "Old-1"));
        // A planted or swapped value, a value moved to another key, another Secret.
        assert!(!verified.value(&key, &AT, &sealed, "app_secret_previous", "Planted"));
        assert!(!verified.value(&key, &AT, &sealed, "app_secret", "Old-1"));
        assert!(!verified.value(&key, &AT, &sealed, "app_key", "Secret-1"));
        let elsewhere = Binding {
            secret_name: "other",
            ..AT
        };
        assert!(!verified.value(&key, &elsewhere, &sealed, "app_secret", "Secret-1"));
    }

    #[test]
    fn a_forged_record_or_another_key_does_not_verify() {
        let key = RecordKey::for_tests();
        let sealed = seal(&key, &AT, &BTreeMap::new(), &record());
        let mut forged = record();
        forged.insert(
            "keysmith.dev/previous-expires-at".into(),
            "2099-01-01T00:00:00Z".into(),
        );
        assert!(!verify(&key, &AT, Some(&sealed), &forged).record);
        let other = RecordKey::new(&[8u8; 32]).unwrap();
        assert!(!verify(&other, &AT, Some(&sealed), &record()).record);
        assert_eq!(verify(&key, &AT, None, &record()), Verified::default());
    }

    #[test]
    fn the_seal_shows_no_value_and_the_key_no_material() {
        let key = RecordKey::for_tests();
        let values = BTreeMap::from([("app_secret", "Secret-1")]);
        let sealed = seal(&key, &AT, &values, &record());
        assert!(!sealed.contains("Secret-1"));
        assert_eq!(format!("{key:?}"), "RecordKey(<redacted>)");
        assert!(RecordKey::new(&[1u8; 31]).is_none(), "too short");
    }
}
