//! One row per sign type (and per aes algorithm): the format rules of its
//! sign_key and sign_secret, and whether the sign_key is key material.
//! Admission, the controller's checks and the generator read only these
//! rows, through exhaustive `match`es: a new sign type does not compile
//! until its row is written, and then has its admission rules.

use super::{
    FormatRule, SIGN_KEY_AES_128, SIGN_KEY_AES_256, SIGN_KEY_BASIC, SIGN_KEY_HMAC, SIGN_SECRET_AES,
    SIGN_SECRET_BASIC, SIGN_SECRET_HMAC,
};
use crate::api::{SignAlgorithm, SignType};

/// What keysmith decides by one sign type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignTypeRules {
    /// The sign_key rule.
    pub key: SignKeyRule,
    /// The sign_secret rule.
    pub secret: &'static FormatRule,
    /// The sign_key is key material rather than an identifier: it stays in
    /// the Secret, out of status and the printer column (SPEC §10).
    pub key_is_material: bool,
}

/// Where a sign type's sign_key rule comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignKeyRule {
    /// One rule for the type; `signAlgorithm` must be absent.
    Fixed(&'static FormatRule),
    /// The algorithm's ([`SignAlgorithm::key_rule`]); `signAlgorithm` is
    /// required and one of these. Without one (which admission refuses)
    /// the key is measured as `first`, the safe reading.
    ByAlgorithm {
        first: SignAlgorithm,
        others: &'static [SignAlgorithm],
    },
}

impl SignType {
    /// The sign type's row: the one place its rules are written.
    pub const fn rules(self) -> SignTypeRules {
        match self {
            SignType::Hmac => SignTypeRules {
                key: SignKeyRule::Fixed(&SIGN_KEY_HMAC),
                secret: &SIGN_SECRET_HMAC,
                key_is_material: false,
            },
            SignType::Basic => SignTypeRules {
                key: SignKeyRule::Fixed(&SIGN_KEY_BASIC),
                secret: &SIGN_SECRET_BASIC,
                key_is_material: false,
            },
            SignType::Aes => SignTypeRules {
                key: SignKeyRule::ByAlgorithm {
                    first: SignAlgorithm::Aes128Cfb,
                    others: &[SignAlgorithm::Aes256Cfb],
                },
                secret: &SIGN_SECRET_AES,
                key_is_material: true,
            },
        }
    }
}

impl SignAlgorithm {
    /// The sign_key rule of a sign type keyed by this algorithm.
    pub const fn key_rule(self) -> &'static FormatRule {
        match self {
            SignAlgorithm::Aes128Cfb => &SIGN_KEY_AES_128,
            SignAlgorithm::Aes256Cfb => &SIGN_KEY_AES_256,
        }
    }
}

impl SignKeyRule {
    /// The algorithms this sign type takes, `first` first (none: it takes no
    /// `signAlgorithm`).
    pub fn algorithms(self) -> Vec<SignAlgorithm> {
        match self {
            SignKeyRule::Fixed(_) => Vec::new(),
            SignKeyRule::ByAlgorithm { first, others } => std::iter::once(first)
                .chain(others.iter().copied())
                .collect(),
        }
    }

    /// `signAlgorithm` is required (and otherwise forbidden).
    pub fn takes_algorithm(self) -> bool {
        match self {
            SignKeyRule::Fixed(_) => false,
            SignKeyRule::ByAlgorithm { .. } => true,
        }
    }

    /// The effective algorithm for the one given: none for a fixed rule,
    /// `first` when a required one is missing.
    pub fn algorithm(self, given: Option<SignAlgorithm>) -> Option<SignAlgorithm> {
        match self {
            SignKeyRule::Fixed(_) => None,
            SignKeyRule::ByAlgorithm { first, .. } => Some(given.unwrap_or(first)),
        }
    }

    /// The sign_key rule for the algorithm given (see [`Self::algorithm`]).
    pub fn rule(self, given: Option<SignAlgorithm>) -> &'static FormatRule {
        match self {
            SignKeyRule::Fixed(rule) => rule,
            SignKeyRule::ByAlgorithm { first, .. } => given.unwrap_or(first).key_rule(),
        }
    }

    /// Every sign_key rule of the type, one per algorithm.
    pub fn every_rule(self) -> Vec<&'static FormatRule> {
        match self {
            SignKeyRule::Fixed(rule) => vec![rule],
            SignKeyRule::ByAlgorithm { .. } => self
                .algorithms()
                .into_iter()
                .map(SignAlgorithm::key_rule)
                .collect(),
        }
    }
}

/// The sign_key rule for a type (and algorithm, for aes; aes without an
/// algorithm is measured as aes-128-cfb, the other rule reports the gap).
pub fn sign_key_rule(sign_type: SignType, algorithm: Option<SignAlgorithm>) -> &'static FormatRule {
    sign_type.rules().key.rule(algorithm)
}

pub fn sign_secret_rule(sign_type: SignType) -> &'static FormatRule {
    sign_type.rules().secret
}

#[cfg(test)]
mod tests {
    use super::super::{Charset, SIGN_KEY_ANY_TYPE};
    use super::*;

    fn every_key_rule() -> Vec<&'static FormatRule> {
        SignType::ALL
            .iter()
            .flat_map(|t| t.rules().key.every_rule())
            .collect()
    }

    /// Every character a rule could meet: ASCII and a few beyond.
    fn characters() -> impl Iterator<Item = char> {
        (0u8..=127).map(char::from).chain(['é', 'ß', '😀'])
    }

    fn union_contains(sets: &[Charset], c: char) -> bool {
        sets.iter().any(|set| set.contains(c))
    }

    #[test]
    fn the_any_type_sign_key_rule_is_the_union_of_the_per_type_rules() {
        let rules = every_key_rule();
        let union = SIGN_KEY_ANY_TYPE;
        let min = rules.iter().map(|r| r.min_len).min();
        let max = rules.iter().map(|r| r.max_len).max();
        assert_eq!(Some(union.min_len), min, "shortest of every type's rule");
        assert_eq!(Some(union.max_len), max, "longest of every type's rule");
        let firsts: Vec<Charset> = rules.iter().map(|r| r.first).collect();
        let alloweds: Vec<Charset> = rules.iter().map(|r| r.allowed).collect();
        for c in characters() {
            assert_eq!(
                union.first.contains(c),
                union_contains(&firsts, c),
                "{c:?} first"
            );
            assert_eq!(
                union.allowed.contains(c),
                union_contains(&alloweds, c),
                "{c:?}"
            );
        }
    }

    #[test]
    fn every_algorithm_belongs_to_exactly_one_sign_type() {
        for algorithm in SignAlgorithm::ALL {
            let owners = SignType::ALL
                .iter()
                .filter(|t| t.rules().key.algorithms().contains(&algorithm))
                .count();
            assert_eq!(owners, 1, "{algorithm:?}");
        }
    }

    #[test]
    fn a_missing_algorithm_reads_as_the_first() {
        for t in SignType::ALL {
            let key = t.rules().key;
            assert_eq!(
                key.algorithm(None),
                key.algorithms().first().copied(),
                "{t:?}"
            );
            for algorithm in key.algorithms() {
                assert_eq!(key.rule(Some(algorithm)), algorithm.key_rule());
            }
        }
        assert_eq!(sign_key_rule(SignType::Aes, None), &SIGN_KEY_AES_128);
        assert_eq!(sign_key_rule(SignType::Hmac, None), &SIGN_KEY_HMAC);
    }
}
