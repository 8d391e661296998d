//! The admission rules of a SignatureKey.

use super::{
    CrossRule, FieldRule, Format, KindRules, Scope, Violation, basic_auth_keys_rule,
    common_field_rules, common_map_rules, derived_name_rule, distinct,
    distinct_keys_cel_with_fixed, duration_at_least_one_minute, generator_length_rule,
    rollout_target_names_rule, selector_values_rule,
};
use crate::api::names::data_keys;
use crate::api::{SignAlgorithm, SignType, SignatureKey, SignatureKeySpec};
use crate::rules::{self, FormatRule};

const SIGN_TYPE_CEL: &str = "(has(self.signType) ? self.signType : 'hmac')";

fn sign_key_type_rule(
    label: &'static str,
    type_cel: String,
    rule: &'static FormatRule,
    applies: fn(&SignatureKeySpec) -> bool,
) -> CrossRule<SignatureKeySpec> {
    CrossRule {
        field: "spec.signKey",
        scope: Scope::Spec(&[]),
        field_path: ".signKey",
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

fn generator_of(s: &SignatureKeySpec) -> (Option<u32>, bool) {
    let g = s.generator.as_ref();
    (
        g.and_then(|g| g.length),
        g.and_then(|g| g.symbols).unwrap_or(false),
    )
}

type S = SignatureKeySpec;

pub fn signature_key_rules() -> KindRules<S> {
    let mut cross = vec![derived_name_rule(
        "spec.keyName",
        "keyName",
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

/// CEL: the effective sign type is `t`.
fn is(t: &str) -> String {
    format!("{SIGN_TYPE_CEL} == '{t}'")
}

/// signAlgorithm with aes only; the sign_key rule of each type and algorithm.
fn sign_type_rules() -> Vec<CrossRule<S>> {
    let aes_with = |algo: &str| {
        format!(
            "{} && has(self.signAlgorithm) && self.signAlgorithm == '{algo}'",
            is("aes")
        )
    };
    vec![
        CrossRule {
            field: "spec.signAlgorithm",
            scope: Scope::Spec(&[]),
            field_path: ".signAlgorithm",
            cel: format!("({}) == has(self.signAlgorithm)", is("aes")),
            message: "is required when signType is aes (aes-128-cfb or aes-256-cfb) and must be absent otherwise"
                .to_string(),
            holds: Box::new(|s: &S, _| (effective_sign_type(s) == SignType::Aes) == s.sign_algorithm.is_some()),
        },
        sign_key_type_rule("signType hmac", is("hmac"), &rules::SIGN_KEY_HMAC, |s| {
            effective_sign_type(s) == SignType::Hmac
        }),
        sign_key_type_rule("signType basic", is("basic"), &rules::SIGN_KEY_BASIC, |s| {
            effective_sign_type(s) == SignType::Basic
        }),
        sign_key_type_rule(
            "aes-128-cfb",
            format!("{} && !(has(self.signAlgorithm) && self.signAlgorithm == 'aes-256-cfb')", is("aes")),
            &rules::SIGN_KEY_AES_128,
            |s| effective_sign_type(s) == SignType::Aes && s.sign_algorithm != Some(SignAlgorithm::Aes256Cfb),
        ),
        sign_key_type_rule("aes-256-cfb", aes_with("aes-256-cfb"), &rules::SIGN_KEY_AES_256, |s| {
            effective_sign_type(s) == SignType::Aes && s.sign_algorithm == Some(SignAlgorithm::Aes256Cfb)
        }),
    ]
}

/// generator.length within the sign_secret rule of each type.
fn generator_rules() -> Vec<CrossRule<S>> {
    vec![
        generator_length_rule(
            "spec.generator.length",
            Scope::Spec(&[]),
            ".generator.length",
            &is("hmac"),
            &rules::SIGN_SECRET_HMAC,
            |s| effective_sign_type(s) == SignType::Hmac,
            generator_of,
        ),
        generator_length_rule(
            "spec.generator.length",
            Scope::Spec(&[]),
            ".generator.length",
            &is("basic"),
            &rules::SIGN_SECRET_BASIC,
            |s| effective_sign_type(s) == SignType::Basic,
            generator_of,
        ),
        generator_length_rule(
            "spec.generator.length",
            Scope::Spec(&[]),
            ".generator.length",
            &is("aes"),
            &rules::SIGN_SECRET_AES,
            |s| effective_sign_type(s) == SignType::Aes,
            generator_of,
        ),
    ]
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
            field: "spec.secret.keys",
            scope: Scope::Spec(&["secret"]),
            field_path: ".keys",
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
