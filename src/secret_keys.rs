//! The effective data key names of the output Secrets (`spec.secret.keys` or the defaults).

use crate::crd::{GatewayAppSpec, SignatureKeySpec};
use crate::validate::{
    APP_ID_DATA, APP_KEY_DATA, APP_SECRET_DATA, PREVIOUS_SUFFIX, SIGN_KEY_DATA, SIGN_SECRET_DATA,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppDataKeys {
    pub app_key: String,
    pub app_secret: String,
    pub app_id: String,
    pub app_secret_previous: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignDataKeys {
    pub sign_key: String,
    pub sign_secret: String,
    pub sign_secret_previous: String,
}

pub fn app_keys(spec: &GatewayAppSpec) -> AppDataKeys {
    let keys = spec.secret.as_ref().and_then(|s| s.keys.as_ref());
    let pick = |value: Option<&String>, default: &str| {
        value.cloned().unwrap_or_else(|| default.to_string())
    };
    let app_secret = pick(keys.and_then(|k| k.app_secret.as_ref()), APP_SECRET_DATA);
    AppDataKeys {
        app_key: pick(keys.and_then(|k| k.app_key.as_ref()), APP_KEY_DATA),
        app_id: pick(keys.and_then(|k| k.app_id.as_ref()), APP_ID_DATA),
        app_secret_previous: format!("{app_secret}{PREVIOUS_SUFFIX}"),
        app_secret,
    }
}

pub fn sign_keys(spec: &SignatureKeySpec) -> SignDataKeys {
    let keys = spec.secret.as_ref().and_then(|s| s.keys.as_ref());
    let pick = |value: Option<&String>, default: &str| {
        value.cloned().unwrap_or_else(|| default.to_string())
    };
    let sign_secret = pick(keys.and_then(|k| k.sign_secret.as_ref()), SIGN_SECRET_DATA);
    SignDataKeys {
        sign_key: pick(keys.and_then(|k| k.sign_key.as_ref()), SIGN_KEY_DATA),
        sign_secret_previous: format!("{sign_secret}{PREVIOUS_SUFFIX}"),
        sign_secret,
    }
}
