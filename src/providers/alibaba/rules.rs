//! Alibaba Cloud API Gateway's own format rules, where they are stricter than
//! keysmith's (SPEC §2, §11.2 "Rules of each gateway"). Pure: the controller
//! checks a value before any call (`GatewayRejected`), and the conformance
//! server refuses the same values with the gateway's `Invalid<Parameter>`
//! code.
//!
//! Sources (docs/cloud-alibaba.md): the request models' docstrings of the
//! official SDK alibabacloud-cloudapi20160714 4.9.0 (CreateApp, ModifyApp,
//! CreateSignature, ModifySignature), which match Alibaba's API reference.
//! Alibaba documents no format for custom AppKeys and AppSecrets; keysmith's
//! own rule stands there and is not repeated here.

use crate::providers::{AppWrite, SignatureWrite};

/// One rule a value breaks: the gateway's parameter name and the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breach {
    /// Alibaba's parameter name (`AppName`, `SignatureKey`, …).
    pub parameter: &'static str,
    pub rule: &'static str,
}

impl std::fmt::Display for Breach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.parameter, self.rule)
    }
}

/// The one sign type a backend signature key of this gateway can hold.
pub const SIGN_TYPE: &str = "hmac";

/// A run of characters: length bounds, first-character and charset tests.
struct Shape {
    parameter: &'static str,
    min: usize,
    max: usize,
    first: fn(char) -> bool,
    allowed: fn(char) -> bool,
    rule: &'static str,
}

impl Shape {
    fn check(&self, value: &str) -> Result<(), Breach> {
        let length = value.chars().count();
        let first_ok = value.chars().next().is_some_and(self.first);
        if length < self.min || length > self.max || !first_ok || !value.chars().all(self.allowed) {
            return Err(Breach {
                parameter: self.parameter,
                rule: self.rule,
            });
        }
        Ok(())
    }
}

fn letter(c: char) -> bool {
    c.is_ascii_alphabetic()
}

fn word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn secret_char(c: char) -> bool {
    word(c) || matches!(c, '@' | '#' | '!' | '*')
}

const APP_NAME: Shape = Shape {
    parameter: "AppName",
    min: 4,
    max: 26,
    first: letter,
    allowed: word,
    rule: "4 to 26 characters: letters, digits and underscores, starting with a letter",
};

const SIGNATURE_NAME: Shape = Shape {
    parameter: "SignatureName",
    min: 4,
    max: 50,
    first: letter,
    allowed: word,
    rule: "4 to 50 characters: letters, digits and underscores, starting with a letter",
};

const SIGNATURE_KEY: Shape = Shape {
    parameter: "SignatureKey",
    min: 6,
    max: 20,
    first: letter,
    allowed: word,
    rule: "6 to 20 characters: letters, digits and underscores, starting with a letter",
};

const SIGNATURE_SECRET: Shape = Shape {
    parameter: "SignatureSecret",
    min: 6,
    max: 30,
    first: letter,
    allowed: secret_char,
    rule: "6 to 30 characters: letters, digits and _ @ # ! *, starting with a letter",
};

/// The longest description (remark) Alibaba keeps.
pub const DESCRIPTION_MAX: usize = 180;

pub fn check_app_name(name: &str) -> Result<(), Breach> {
    APP_NAME.check(name)
}

pub fn check_description(description: &str) -> Result<(), Breach> {
    if description.chars().count() > DESCRIPTION_MAX {
        return Err(Breach {
            parameter: "Description",
            rule: "at most 180 characters",
        });
    }
    Ok(())
}

pub fn check_signature_name(name: &str) -> Result<(), Breach> {
    SIGNATURE_NAME.check(name)
}

pub fn check_signature_key(key: &str) -> Result<(), Breach> {
    SIGNATURE_KEY.check(key)
}

pub fn check_signature_secret(secret: &str) -> Result<(), Breach> {
    SIGNATURE_SECRET.check(secret)
}

/// An app keysmith wants at this gateway: name and remark.
pub fn check_app(app: &AppWrite) -> Result<(), Breach> {
    check_app_name(&app.name)?;
    check_description(&app.remark)
}

/// A signature key keysmith wants at this gateway: only HMAC keys exist
/// there (backend signatures), with their own name, key and secret rules.
pub fn check_signature(signature: &SignatureWrite) -> Result<(), Breach> {
    if signature.sign_type != SIGN_TYPE {
        return Err(Breach {
            parameter: "SignType",
            rule: "Alibaba backend signature keys are HMAC only",
        });
    }
    check_signature_name(&signature.name)?;
    check_signature_key(&signature.key)?;
    check_signature_secret(signature.secret.expose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::SecretValue;

    fn app(name: &str, remark: &str) -> AppWrite {
        AppWrite {
            name: name.into(),
            remark: remark.into(),
            key: "key_12345678".into(),
            secret: SecretValue::new("secret_12345678"),
        }
    }

    fn signature(sign_type: &str, name: &str, key: &str, secret: &str) -> SignatureWrite {
        SignatureWrite {
            name: name.into(),
            sign_type: sign_type.into(),
            algorithm: None,
            key: key.into(),
            secret: SecretValue::new(secret),
        }
    }

    #[test]
    fn app_names_are_4_to_26_word_characters_from_a_letter() {
        assert!(check_app(&app("orders", "")).is_ok());
        assert!(check_app(&app(&format!("a{}", "b".repeat(25)), "")).is_ok());
        for bad in [
            "abc",
            "1orders",
            "_orders",
            "orders-client",
            "órders",
            &"a".repeat(27),
        ] {
            let breach = check_app(&app(bad, "")).unwrap_err();
            assert_eq!(breach.parameter, "AppName", "{bad}");
        }
    }

    #[test]
    fn descriptions_hold_180_characters() {
        assert!(check_app(&app("orders", &"é".repeat(180))).is_ok());
        let breach = check_app(&app("orders", &"x".repeat(181))).unwrap_err();
        assert_eq!(breach.parameter, "Description");
    }

    #[test]
    fn only_hmac_signatures() {
        let ok = signature("hmac", "sign_one", "key_one1", "Secret_0123456789@#!*");
        assert!(check_signature(&ok).is_ok());
        for other in ["basic", "aes", "public_key"] {
            let breach = check_signature(&signature(other, "sign_one", "key_one1", "Secret_1"));
            assert_eq!(breach.unwrap_err().parameter, "SignType");
        }
    }

    #[test]
    fn signature_names_keys_and_secrets() {
        let cases = [
            ("abc", "key_one1", "Secret_1", "SignatureName"),
            ("1sign", "key_one1", "Secret_1", "SignatureName"),
            ("sign_one", "key-one1", "Secret_1", "SignatureKey"),
            ("sign_one", "1key_one", "Secret_1", "SignatureKey"),
            ("sign_one", &"k".repeat(21), "Secret_1", "SignatureKey"),
            ("sign_one", "keyone", "Sec_1", "SignatureSecret"),
            ("sign_one", "keyone", "1Secret_1", "SignatureSecret"),
            ("sign_one", "keyone", "Secret-$1", "SignatureSecret"),
            ("sign_one", "keyone", &"S".repeat(31), "SignatureSecret"),
        ];
        for (name, key, secret, parameter) in cases {
            let breach = check_signature(&signature("hmac", name, key, secret)).unwrap_err();
            assert_eq!(breach.parameter, parameter, "{name} {key}");
        }
    }

    #[test]
    fn a_breach_never_shows_the_value() {
        let breach = check_signature_secret("1TopSecretValue").unwrap_err();
        assert!(!breach.to_string().contains("TopSecret"));
    }
}
