//! The admission rules of a SignatureKey.

use super::framework::{CrossRule, FieldRule, Format, KindRules, Scope, Violation};
use super::shared::{
    basic_auth_keys_rule, common_field_rules, common_map_rules, derived_name_rule, distinct,
    distinct_keys_cel_with_fixed, duration_at_least_one_minute, generator_length_rule,
    rollout_target_names_rule, selector_values_rule,
};
use crate::api::names::data_keys;
use crate::api::{SignAlgorithm, SignType, SignatureKey, SignatureKeySpec};
use crate::rules::{self, FormatRule, SignKeyRule};

/// A sign_key rule that holds where `applies` does.
fn sign_key_type_rule(
    label: &str,
    type_cel: String,
    rule: &'static FormatRule,
    applies: impl Fn(&S) -> bool + Send + Sync + 'static,
) -> CrossRule<S> {
    CrossRule {
        scope: Scope::Spec(&[]),
        path: &["signKey"],
        cel: format!(
            "!({type_cel}) || !has(self.signKey) || ({})",
            rule.cel("self.signKey")
        ),
        message: format!("for {label} must be {}", rule.describe()),
        holds: Box::new(move |s, _| {
            !applies(s) || s.sign_key.as_deref().is_none_or(|key| rule.is_valid(key))
        }),
    }
}

fn effective_sign_type(s: &SignatureKeySpec) -> SignType {
    s.sign_type.unwrap_or_default()
}

/// The algorithm the sign_key is measured by (none for a fixed rule).
fn effective_algorithm(s: &SignatureKeySpec) -> Option<SignAlgorithm> {
    effective_sign_type(s)
        .rules()
        .key
        .algorithm(s.sign_algorithm)
}

type S = SignatureKeySpec;

pub fn signature_key_rules() -> KindRules<S> {
    let mut cross = vec![derived_name_rule(
        &["spec", "keyName"],
        &rules::KEY_NAME,
        |s: &S| s.key_name.as_deref(),
    )];
    cross.extend(sign_type_rules());
    cross.extend(generator_rules());
    cross.push(duration_at_least_one_minute::<S>());
    cross.push(rollout_target_names_rule::<S>());
    cross.push(selector_values_rule::<S>());
    cross.push(distinct_keys_rule());
    cross.push(basic_auth_rule());
    KindRules {
        fields: field_rules(),
        cross,
        maps: common_map_rules(),
        bounds: [
            super::bounds::common_bounds(),
            super::bounds::connection_ref_bounds(),
        ]
        .concat(),
    }
}

fn field_rules() -> Vec<FieldRule<S>> {
    let mut fields: Vec<FieldRule<S>> = vec![
        FieldRule {
            path: &["keyName"],
            format: Format::Rule(&rules::KEY_NAME),
            get: |s: &S| s.key_name.as_deref(),
        },
        FieldRule {
            path: &["signKey"],
            format: Format::Rule(&rules::SIGN_KEY_ANY_TYPE),
            get: |s: &S| s.sign_key.as_deref(),
        },
        FieldRule {
            path: &["secret", "keys", "signKey"],
            format: Format::Rule(&rules::SECRET_DATA_KEY),
            get: |s: &S| {
                s.secret
                    .as_ref()
                    .and_then(|t| t.keys.as_ref())
                    .and_then(|k| k.sign_key.as_deref())
            },
        },
        FieldRule {
            path: &["secret", "keys", "signSecret"],
            format: Format::Rule(&rules::SECRET_DATA_KEY_WITH_PREVIOUS),
            get: |s: &S| {
                s.secret
                    .as_ref()
                    .and_then(|t| t.keys.as_ref())
                    .and_then(|k| k.sign_secret.as_deref())
            },
        },
    ];
    fields.extend(common_field_rules(
        &["signSecretFrom", "secretKeyRef", "name"],
        &["signSecretFrom", "secretKeyRef", "key"],
    ));
    fields
}

/// CEL: the effective sign type is `t` (absent: the default).
fn is(t: SignType) -> String {
    format!(
        "(has(self.signType) ? self.signType : '{}') == '{}'",
        SignType::default().as_str(),
        t.as_str()
    )
}

/// CEL: `signAlgorithm` is set to `algorithm`.
fn algorithm_is(algorithm: SignAlgorithm) -> String {
    format!(
        "has(self.signAlgorithm) && self.signAlgorithm == '{}'",
        algorithm.as_str()
    )
}

/// From the sign types' rows (`crate::rules`): signAlgorithm exactly where
/// the row keys the sign_key by algorithm, and the sign_key rule of each
/// type and algorithm.
fn sign_type_rules() -> Vec<CrossRule<S>> {
    let mut out = vec![algorithm_rule()];
    for t in SignType::ALL {
        match t.rules().key {
            SignKeyRule::Fixed(rule) => {
                let label = format!("signType {}", t.as_str());
                out.push(sign_key_type_rule(&label, is(t), rule, move |s| {
                    effective_sign_type(s) == t
                }));
            }
            SignKeyRule::ByAlgorithm { first, others } => {
                out.extend(algorithm_key_rules(t, first, others));
            }
        }
    }
    out
}

/// signAlgorithm is set exactly for the sign types that take one.
fn algorithm_rule() -> CrossRule<S> {
    let keyed: Vec<SignType> = SignType::ALL
        .into_iter()
        .filter(|t| t.rules().key.takes_algorithm())
        .collect();
    let cel = keyed
        .iter()
        .map(|t| is(*t))
        .collect::<Vec<_>>()
        .join(" || ");
    let named = keyed
        .iter()
        .map(|t| {
            let algorithms: Vec<&str> = t
                .rules()
                .key
                .algorithms()
                .iter()
                .map(|a| a.as_str())
                .collect();
            format!("{} ({})", t.as_str(), algorithms.join(" or "))
        })
        .collect::<Vec<_>>()
        .join(" or ");
    CrossRule {
        scope: Scope::Spec(&[]),
        path: &["signAlgorithm"],
        cel: format!("({cel}) == has(self.signAlgorithm)"),
        message: format!("is required when signType is {named} and must be absent otherwise"),
        holds: Box::new(|s: &S, _| {
            effective_sign_type(s).rules().key.takes_algorithm() == s.sign_algorithm.is_some()
        }),
    }
}

/// The sign_key rule of each algorithm of `t`; `first` also holds when
/// signAlgorithm is missing (the algorithm rule reports that).
fn algorithm_key_rules(
    t: SignType,
    first: SignAlgorithm,
    others: &'static [SignAlgorithm],
) -> Vec<CrossRule<S>> {
    std::iter::once(first)
        .chain(others.iter().copied())
        .map(|algorithm| {
            let type_cel = if algorithm == first {
                let not_others = others
                    .iter()
                    .map(|o| format!(" && !({})", algorithm_is(*o)));
                format!("{}{}", is(t), not_others.collect::<String>())
            } else {
                format!("{} && {}", is(t), algorithm_is(algorithm))
            };
            sign_key_type_rule(
                algorithm.as_str(),
                type_cel,
                algorithm.key_rule(),
                move |s| effective_sign_type(s) == t && effective_algorithm(s) == Some(algorithm),
            )
        })
        .collect()
}

/// generator.length within the sign_secret rule of each type.
fn generator_rules() -> Vec<CrossRule<S>> {
    SignType::ALL
        .into_iter()
        .map(|t| {
            generator_length_rule(
                Scope::Spec(&[]),
                &["generator", "length"],
                Some(&is(t)),
                t.rules().secret,
                move |s: &S| effective_sign_type(s) == t,
            )
        })
        .collect()
}

fn basic_auth_rule() -> CrossRule<S> {
    basic_auth_keys_rule::<S>("signKey", "signSecret", |s: &S| {
        let keys = s.secret.as_ref().and_then(|t| t.keys.as_ref());
        (
            keys.and_then(|k| k.sign_key.as_deref()),
            keys.and_then(|k| k.sign_secret.as_deref()),
        )
    })
}

fn distinct_keys_rule() -> CrossRule<S> {
    CrossRule {
            scope: Scope::Spec(&["secret"]),
            path: &["keys"],
            cel: distinct_keys_cel_with_fixed(
                &[("signKey", data_keys::SIGN_KEY), ("signSecret", data_keys::SIGN_SECRET)],
                &[data_keys::SIGN_TYPE, data_keys::SIGN_ALGORITHM],
            ),
            message: "the signKey and signSecret key names (and signSecret + '_previous') must differ from each other and from sign_type and sign_algorithm".to_string(),
            holds: Box::new(|s: &S, _| {
                let keys = s.data_keys();
                distinct(&[
                    &keys.sign_key,
                    &keys.sign_secret,
                    &keys.sign_secret_previous,
                    &data_keys::SIGN_TYPE.to_string(),
                    &data_keys::SIGN_ALGORITHM.to_string(),
                ])
            }),
        }
}

/// Every violation of a SignatureKey.
pub fn check_signature_key(key: &SignatureKey) -> Vec<Violation> {
    signature_key_rules().check(&key.spec, key.metadata.name.as_deref().unwrap_or_default())
}
