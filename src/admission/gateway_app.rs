//! The admission rules of a GatewayApp.

use super::framework::{CrossRule, FieldRule, Format, KindRules, Scope, Violation};
use super::shared::{
    basic_auth_keys_rule, common_field_rules, common_map_rules, derived_name_rule, distinct,
    distinct_keys_cel, duration_at_least_one_minute, generator_length_rule,
    rollout_target_names_rule, selector_values_rule,
};
use crate::api::names::{data_keys, gateway};
use crate::api::{CommonSpec, GatewayApp, GatewayAppSpec, GatewayLayout};
use crate::rules;

type S = GatewayAppSpec;

pub fn gateway_app_rules() -> KindRules<S> {
    KindRules {
        fields: field_rules(),
        cross: cross_rules(),
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
    fields.push(FieldRule {
        path: &["gateway", "name"],
        format: Format::SecretNameWithRoom(gateway::PREVIOUS_SUFFIX.len()),
        get: |s: &S| s.gateway.as_ref().and_then(|g| g.name.as_deref()),
    });
    fields.extend(common_field_rules(
        &["appSecretFrom", "secretKeyRef", "name"],
        &["appSecretFrom", "secretKeyRef", "key"],
    ));
    fields
}

fn cross_rules() -> Vec<CrossRule<S>> {
    vec![
        derived_name_rule(&["spec", "appName"], &rules::APP_NAME, |s: &S| {
            s.app_name.as_deref()
        }),
        generator_length_rule(
            Scope::Spec(&["generator"]),
            &["length"],
            None,
            &rules::APP_SECRET,
            |_| true,
        ),
        duration_at_least_one_minute::<S>(),
        rollout_target_names_rule::<S>(),
        selector_values_rule::<S>(),
        basic_auth_keys_rule::<S>("appKey", "appSecret", |s: &S| {
            let keys = s.secret.as_ref().and_then(|t| t.keys.as_ref());
            (
                keys.and_then(|k| k.app_key.as_deref()),
                keys.and_then(|k| k.app_secret.as_deref()),
            )
        }),
        gateway_names_rule(),
        gateway_overlap_rule(),
        CrossRule {
            scope: Scope::Spec(&["secret"]),
            path: &["keys"],
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

/// The effective output Secret name, in CEL at the object root.
const SECRET_NAME_CEL: &str = "(has(self.spec.secret) && has(self.spec.secret.name) ? self.spec.secret.name : self.metadata.name)";

/// The gateway Secrets' names are Secret names apart from the output
/// Secret's: an explicit one differs from it, a default one fits.
fn gateway_names_rule() -> CrossRule<S> {
    let (suffix, previous) = (gateway::DEFAULT_SUFFIX, gateway::PREVIOUS_SUFFIX);
    let room = suffix.len() + previous.len();
    let max = rules::SECRET_NAME_MAX_LEN - room;
    CrossRule {
        scope: Scope::Root,
        path: &["spec", "gateway", "name"],
        cel: format!(
            "!has(self.spec.gateway) || (has(self.spec.gateway.name) ? (self.spec.gateway.name != {SECRET_NAME_CEL} && self.spec.gateway.name + '{previous}' != {SECRET_NAME_CEL}) : {SECRET_NAME_CEL}.size() <= {max})"
        ),
        message: format!(
            "the gateway Secret (and its '{previous}' twin) must be named apart from the output Secret; by default it is the output Secret's name plus '{suffix}', which needs that name to have at most {max} characters (set gateway.name otherwise)"
        ),
        holds: Box::new(move |s: &S, name: &str| {
            let Some(gateway) = &s.gateway else {
                return true;
            };
            let secret = s.secret_name().unwrap_or(name);
            match &gateway.name {
                Some(own) => own != secret && format!("{own}{previous}") != secret,
                None => secret.len() <= max,
            }
        }),
    }
}

/// A gateway that keeps one credential per username can keep the previous
/// credential through an overlap only if it had its own AppKey: keepPrevious
/// there needs rotation.rotateAppKey, a generated AppKey, and a generated
/// AppSecret (a changed `appSecretFrom` value renews the secret alone).
fn gateway_overlap_rule() -> CrossRule<S> {
    let keyed: Vec<String> = GatewayLayout::ALL
        .into_iter()
        .filter(|l| l.keyed_by_username())
        .map(|l| format!("'{}'", l.as_str()))
        .collect();
    let keyed_names = GatewayLayout::ALL
        .into_iter()
        .filter(|l| l.keyed_by_username())
        .map(GatewayLayout::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    CrossRule {
        scope: Scope::Spec(&[]),
        path: &["rotation", "keepPrevious"],
        cel: format!(
            "!has(self.gateway) || !(self.gateway.layout in [{}]) || !has(self.rotation) || !has(self.rotation.keepPrevious) || !self.rotation.keepPrevious.matches('[1-9]') || (has(self.rotation.rotateAppKey) && self.rotation.rotateAppKey && !has(self.appKey) && !has(self.appSecretFrom))",
            keyed.join(", ")
        ),
        message: format!(
            "with gateway.layout {keyed_names} the gateway keeps one credential per username (the AppKey), so the previous AppSecret stays valid there only under its own AppKey: set rotation.rotateAppKey: true with a generated AppKey and AppSecret (no spec.appKey, no spec.appSecretFrom: a changed source value renews only the secret), or drop keepPrevious"
        ),
        holds: Box::new(|s: &S, _| {
            let keyed = s
                .gateway
                .as_ref()
                .is_some_and(|g| g.layout.keyed_by_username());
            let overlap = s
                .keep_previous()
                .is_some_and(|k| k.chars().any(|c| ('1'..='9').contains(&c)));
            !keyed
                || !overlap
                || (s.rotate_key() == Some(true)
                    && s.app_key.is_none()
                    && s.app_secret_from.is_none())
        }),
    }
}

/// Every violation of a GatewayApp.
pub fn check_gateway_app(app: &GatewayApp) -> Vec<Violation> {
    gateway_app_rules().check(&app.spec, app.metadata.name.as_deref().unwrap_or_default())
}
