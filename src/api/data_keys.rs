//! The effective data key names of the output Secrets: `spec.secret.keys`
//! or the defaults of [`super::names::data_keys`].

use super::names::data_keys::{
    APP_ID, APP_KEY, APP_SECRET, PREVIOUS_SUFFIX, SIGN_KEY, SIGN_SECRET,
};
use super::{GatewayAppSpec, SignatureKeySpec};

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

fn pick(value: Option<&String>, default: &str) -> String {
    value.cloned().unwrap_or_else(|| default.to_string())
}

impl GatewayAppSpec {
    pub fn data_keys(&self) -> AppDataKeys {
        let keys = self.secret.as_ref().and_then(|s| s.keys.as_ref());
        let app_secret = pick(keys.and_then(|k| k.app_secret.as_ref()), APP_SECRET);
        AppDataKeys {
            app_key: pick(keys.and_then(|k| k.app_key.as_ref()), APP_KEY),
            app_id: pick(keys.and_then(|k| k.app_id.as_ref()), APP_ID),
            app_secret_previous: format!("{app_secret}{PREVIOUS_SUFFIX}"),
            app_secret,
        }
    }
}

impl SignatureKeySpec {
    pub fn data_keys(&self) -> SignDataKeys {
        let keys = self.secret.as_ref().and_then(|s| s.keys.as_ref());
        let sign_secret = pick(keys.and_then(|k| k.sign_secret.as_ref()), SIGN_SECRET);
        SignDataKeys {
            sign_key: pick(keys.and_then(|k| k.sign_key.as_ref()), SIGN_KEY),
            sign_secret_previous: format!("{sign_secret}{PREVIOUS_SUFFIX}"),
            sign_secret,
        }
    }
}
