//! The admission rules of a GatewayApp.

use super::{
    CrossRule, FieldRule, Format, KindRules, Scope, Violation, common_field_rules,
    common_map_rules, derived_name_rule, distinct, distinct_keys_cel, duration_at_least_one_minute,
    generator_length_rule, rollout_target_names_rule,
};
use crate::api::names::data_keys;
use crate::api::{GatewayApp, GatewayAppSpec};
use crate::rules;

type S = GatewayAppSpec;

pub fn gateway_app_rules() -> KindRules<S> {
    KindRules {
        fields: field_rules(),
        cross: cross_rules(),
        maps: common_map_rules(),
    }
}

fn field_rules() -> Vec<FieldRule<S>> {
    let mut fields: Vec<FieldRule<S>> = vec![
        FieldRule {
            path: &["appName"],
            format: Format::Rule(&rules::APP_NAME),
            get: |s: &S| s.app_name.as_deref(),
        },
        FieldRule {
            path: &["remark"],
            format: Format::Rule(&rules::REMARK),
            get: |s: &S| s.remark.as_deref(),
        },
        FieldRule {
            path: &["appKey"],
            format: Format::Rule(&rules::APP_KEY),
            get: |s: &S| s.app_key.as_deref(),
        },
        FieldRule {
            path: &["secret", "keys", "appKey"],
            format: Format::Rule(&rules::SECRET_DATA_KEY),
            get: |s: &S| {
                s.secret
                    .as_ref()
                    .and_then(|t| t.keys.as_ref())
                    .and_then(|k| k.app_key.as_deref())
            },
        },
        FieldRule {
            path: &["secret", "keys", "appSecret"],
            format: Format::Rule(&rules::SECRET_DATA_KEY_WITH_PREVIOUS),
            get: |s: &S| {
                s.secret
                    .as_ref()
                    .and_then(|t| t.keys.as_ref())
                    .and_then(|k| k.app_secret.as_deref())
            },
        },
        FieldRule {
            path: &["secret", "keys", "appId"],
            format: Format::Rule(&rules::SECRET_DATA_KEY),
            get: |s: &S| {
                s.secret
                    .as_ref()
                    .and_then(|t| t.keys.as_ref())
                    .and_then(|k| k.app_id.as_deref())
            },
        },
    ];
    fields.extend(common_field_rules(
        &["appSecretFrom", "secretKeyRef", "name"],
        &["appSecretFrom", "secretKeyRef", "key"],
    ));
    fields
}

fn cross_rules() -> Vec<CrossRule<S>> {
    vec![
        derived_name_rule("spec.appName", "appName", &rules::APP_NAME, |s: &S| {
            s.app_name.as_deref()
        }),
        generator_length_rule(
            "spec.generator.length",
            Scope::Spec(&["generator"]),
            ".length",
            "",
            &rules::APP_SECRET,
            |_| true,
            |s: &S| {
                let g = s.generator.as_ref();
                (
                    g.and_then(|g| g.length),
                    g.and_then(|g| g.symbols).unwrap_or(false),
                )
            },
        ),
        duration_at_least_one_minute::<S>(),
        rollout_target_names_rule::<S>(),
        CrossRule {
            field: "spec.secret.keys",
            scope: Scope::Spec(&["secret", "keys"]),
            field_path: "",
            cel: distinct_keys_cel(&[
                ("appKey", data_keys::APP_KEY),
                ("appSecret", data_keys::APP_SECRET),
                ("appId", data_keys::APP_ID),
            ]),
            message: "the appKey, appSecret and appId key names (and appSecret + '_previous') must all differ"
                .to_string(),
            holds: Box::new(|s: &S, _| {
                let keys = s.data_keys();
                distinct(&[&keys.app_key, &keys.app_secret, &keys.app_id, &keys.app_secret_previous])
            }),
        },
    ]
}

/// Every violation of a GatewayApp.
pub fn check_gateway_app(app: &GatewayApp) -> Vec<Violation> {
    gateway_app_rules().check(&app.spec, app.metadata.name.as_deref().unwrap_or_default())
}
