//! The effective data key names of the output Secrets: `spec.secret.keys`
//! or the defaults of [`super::names::data_keys`].

use super::names::data_keys::{
    APP_ID, APP_KEY, APP_SECRET, PASSWORD, PREVIOUS_SUFFIX, SIGN_KEY, SIGN_SECRET, USERNAME,
};
use super::{CommonSpec, GatewayAppSpec, SecretType, SignatureKeySpec};

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

/// The default `(key, secret)` data keys for a Secret type: a basic-auth
/// Secret's are fixed by Kubernetes.
fn defaults(
    secret_type: SecretType,
    key: &'static str,
    secret: &'static str,
) -> (&'static str, &'static str) {
    match secret_type {
        SecretType::Opaque => (key, secret),
        SecretType::BasicAuth => (USERNAME, PASSWORD),
    }
}

impl GatewayAppSpec {
    pub fn data_keys(&self) -> AppDataKeys {
        let keys = self.secret.as_ref().and_then(|s| s.keys.as_ref());
        let (key, secret) = defaults(self.secret_type(), APP_KEY, APP_SECRET);
        let app_secret = pick(keys.and_then(|k| k.app_secret.as_ref()), secret);
        AppDataKeys {
            app_key: pick(keys.and_then(|k| k.app_key.as_ref()), key),
            app_id: pick(keys.and_then(|k| k.app_id.as_ref()), APP_ID),
            app_secret_previous: format!("{app_secret}{PREVIOUS_SUFFIX}"),
            app_secret,
        }
    }
}

impl SignatureKeySpec {
    pub fn data_keys(&self) -> SignDataKeys {
        let keys = self.secret.as_ref().and_then(|s| s.keys.as_ref());
        let (key, secret) = defaults(self.secret_type(), SIGN_KEY, SIGN_SECRET);
        let sign_secret = pick(keys.and_then(|k| k.sign_secret.as_ref()), secret);
        SignDataKeys {
            sign_key: pick(keys.and_then(|k| k.sign_key.as_ref()), key),
            sign_secret_previous: format!("{sign_secret}{PREVIOUS_SUFFIX}"),
            sign_secret,
        }
    }
}
