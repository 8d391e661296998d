//! Huawei APIG's own format rules for what keysmith writes, checked before
//! any call (SPEC §11.2 "Rules of each gateway") and enforced by the
//! conformance server. Source: the v2 SDK models' docstrings (`AppCreate`,
//! `AppResetCreate`, `BaseSignature`, 3.1.219) and the seed pages (signature
//! name length). Where keysmith's own rules (SPEC §2) are stricter, values
//! that pass them pass these too; these matter for what they add: the sign
//! types, `sign_algorithm` only for `aes`, the aes lengths.
//!
//! Huawei also allows Chinese characters in names; they count as letters
//! here (keysmith's names are ASCII, the server accepts what Huawei does).

use std::fmt;

use crate::providers::{AppWrite, SignatureWrite};

/// A value that breaks a rule: which field and which rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breach {
    pub field: &'static str,
    pub rule: String,
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.rule)
    }
}

/// Characters a rule allows, beside ASCII letters and digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chars {
    /// Letters (and Chinese), digits, `_`.
    Name,
    /// Digits, letters, `_ -`.
    Key,
    /// Digits, letters, `_ - ! @ # $ %`.
    Secret,
    /// Key plus `+ / =` (public_key keys).
    KeyBase64,
    /// Secret plus `+ / =` (public_key secrets, aes keys and vectors).
    SecretBase64,
}

/// What the first character may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum First {
    Letter,
    LetterOrDigit,
    LetterDigitPlusSlash,
}

/// One row of the table: a length range (in characters), the first character
/// and the rest.
#[derive(Clone, Copy, Debug)]
struct Format {
    min: usize,
    max: usize,
    first: First,
    chars: Chars,
}

const fn format(min: usize, max: usize, first: First, chars: Chars) -> Format {
    Format {
        min,
        max,
        first,
        chars,
    }
}

const APP_NAME: Format = format(3, 64, First::Letter, Chars::Name);
const APP_KEY: Format = format(8, 200, First::LetterOrDigit, Chars::Key);
const APP_SECRET: Format = format(8, 128, First::LetterOrDigit, Chars::Secret);
const REMARK_MAX: usize = 255;
const SIGN_NAME: Format = format(3, 64, First::Letter, Chars::Name);

/// The sign types Huawei knows (`BaseSignature.sign_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignType {
    Hmac,
    Basic,
    PublicKey,
    Aes,
}

impl SignType {
    pub fn parse(text: &str) -> Option<SignType> {
        match text {
            "hmac" => Some(SignType::Hmac),
            "basic" => Some(SignType::Basic),
            "public_key" => Some(SignType::PublicKey),
            "aes" => Some(SignType::Aes),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SignType::Hmac => "hmac",
            SignType::Basic => "basic",
            SignType::PublicKey => "public_key",
            SignType::Aes => "aes",
        }
    }
}

/// The aes algorithms and the key length each needs.
pub const AES_ALGORITHMS: [(&str, usize); 2] = [("aes-128-cfb", 16), ("aes-256-cfb", 32)];

/// sign_key and sign_secret formats of a sign type (aes: for its key length).
fn sign_formats(sign_type: SignType, aes_key_len: usize) -> (Format, Format) {
    use {Chars::*, First::*};
    match sign_type {
        SignType::Hmac => (
            format(8, 32, LetterOrDigit, Key),
            format(16, 64, LetterOrDigit, Secret),
        ),
        SignType::Basic => (
            format(4, 32, Letter, Key),
            format(8, 64, LetterOrDigit, Secret),
        ),
        SignType::PublicKey => (
            format(8, 512, LetterDigitPlusSlash, KeyBase64),
            format(16, 2048, LetterDigitPlusSlash, SecretBase64),
        ),
        SignType::Aes => (
            format(aes_key_len, aes_key_len, LetterDigitPlusSlash, SecretBase64),
            format(16, 16, LetterDigitPlusSlash, SecretBase64),
        ),
    }
}

fn is_chinese(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

fn first_allowed(first: First, c: char) -> bool {
    match first {
        First::Letter => c.is_ascii_alphabetic() || is_chinese(c),
        First::LetterOrDigit => c.is_ascii_alphanumeric(),
        First::LetterDigitPlusSlash => c.is_ascii_alphanumeric() || c == '+' || c == '/',
    }
}

fn char_allowed(chars: Chars, c: char) -> bool {
    let specials = match chars {
        Chars::Name => return c.is_ascii_alphanumeric() || c == '_' || is_chinese(c),
        Chars::Key => "_-",
        Chars::Secret => "_-!@#$%",
        Chars::KeyBase64 => "_-+/=",
        Chars::SecretBase64 => "_-!@#$%+/=",
    };
    c.is_ascii_alphanumeric() || specials.contains(c)
}

fn describe(f: Format) -> String {
    let length = if f.min == f.max {
        format!("exactly {} characters", f.min)
    } else {
        format!("{}-{} characters", f.min, f.max)
    };
    let first = match f.first {
        First::Letter => "a letter",
        First::LetterOrDigit => "a letter or digit",
        First::LetterDigitPlusSlash => "a letter, digit, + or /",
    };
    let chars = match f.chars {
        Chars::Name => "letters, digits and _",
        Chars::Key => "letters, digits, _ and -",
        Chars::Secret => "letters, digits and _-!@#$%",
        Chars::KeyBase64 => "letters, digits and _-+/=",
        Chars::SecretBase64 => "letters, digits and _-!@#$%+/=",
    };
    format!("must be {length}, start with {first}, and hold only {chars}")
}

fn check(field: &'static str, value: &str, f: Format) -> Result<(), Breach> {
    let count = value.chars().count();
    let ok = (f.min..=f.max).contains(&count)
        && value
            .chars()
            .next()
            .is_some_and(|c| first_allowed(f.first, c))
        && value.chars().all(|c| char_allowed(f.chars, c));
    if ok {
        Ok(())
    } else {
        Err(Breach {
            field,
            rule: describe(f),
        })
    }
}

/// The name and remark of an app (UpdateAppV2 without key and secret).
pub fn check_app_fields(name: &str, remark: &str) -> Result<(), Breach> {
    check("name", name, APP_NAME)?;
    if remark.chars().count() > REMARK_MAX {
        return Err(Breach {
            field: "remark",
            rule: format!("must be at most {REMARK_MAX} characters"),
        });
    }
    Ok(())
}

pub fn check_app_key(key: &str) -> Result<(), Breach> {
    check("app_key", key, APP_KEY)
}

pub fn check_app_secret(secret: &str) -> Result<(), Breach> {
    check("app_secret", secret, APP_SECRET)
}

/// Everything keysmith sends to create or update an app.
pub fn check_app(app: &AppWrite) -> Result<(), Breach> {
    check_app_fields(&app.name, &app.remark)?;
    check_app_key(&app.key)?;
    check_app_secret(app.secret.expose())
}

/// The sign type and algorithm pair; returns the type and the aes key length.
pub fn check_sign_type(
    sign_type: &str,
    algorithm: Option<&str>,
) -> Result<(SignType, usize), Breach> {
    let parsed = SignType::parse(sign_type).ok_or_else(|| Breach {
        field: "sign_type",
        rule: "must be one of hmac, basic, public_key, aes".into(),
    })?;
    let algorithm_breach = |rule: &str| Breach {
        field: "sign_algorithm",
        rule: rule.into(),
    };
    match (parsed, algorithm) {
        (SignType::Aes, Some(a)) => AES_ALGORITHMS
            .iter()
            .find(|(name, _)| *name == a)
            .map(|(_, len)| (parsed, *len))
            .ok_or_else(|| algorithm_breach("must be aes-128-cfb or aes-256-cfb")),
        (SignType::Aes, None) => Err(algorithm_breach("is required for sign_type aes")),
        (_, Some(_)) => Err(algorithm_breach("is allowed only for sign_type aes")),
        (_, None) => Ok((parsed, 0)),
    }
}

pub fn check_sign_name(name: &str) -> Result<(), Breach> {
    check("name", name, SIGN_NAME)
}

pub fn check_sign_key(sign_type: SignType, aes_key_len: usize, key: &str) -> Result<(), Breach> {
    check("sign_key", key, sign_formats(sign_type, aes_key_len).0)
}

pub fn check_sign_secret(
    sign_type: SignType,
    aes_key_len: usize,
    secret: &str,
) -> Result<(), Breach> {
    check(
        "sign_secret",
        secret,
        sign_formats(sign_type, aes_key_len).1,
    )
}

/// Everything keysmith sends to create or update a signature key.
pub fn check_signature(signature: &SignatureWrite) -> Result<(), Breach> {
    check_sign_name(&signature.name)?;
    let (kind, len) = check_sign_type(&signature.sign_type, signature.algorithm.as_deref())?;
    check_sign_key(kind, len, &signature.key)?;
    check_sign_secret(kind, len, signature.secret.expose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::SecretValue;

    fn app(name: &str, remark: &str, key: &str, secret: &str) -> AppWrite {
        AppWrite {
            name: name.into(),
            remark: remark.into(),
            key: key.into(),
            secret: SecretValue::new(secret),
        }
    }

    fn sig(sign_type: &str, algorithm: Option<&str>, key: &str, secret: &str) -> SignatureWrite {
        SignatureWrite {
            name: "sig_01".into(),
            sign_type: sign_type.into(),
            algorithm: algorithm.map(str::to_string),
            key: key.into(),
            secret: SecretValue::new(secret),
        }
    }

    fn field(result: Result<(), Breach>) -> Option<&'static str> {
        result.err().map(|b| b.field)
    }

    #[test]
    fn an_app_within_the_rules_passes() {
        assert_eq!(
            check_app(&app("orders_client", "", "key12345", "secret12")),
            Ok(())
        );
        assert_eq!(
            check_app(&app("订单_1", "", &"k".repeat(200), &"s".repeat(128))),
            Ok(())
        );
    }

    #[test]
    fn app_breaches_name_the_field() {
        let cases = [
            (app("ab", "", "key12345", "secret12"), "name"),
            (app("1abc", "", "key12345", "secret12"), "name"),
            (app("ab-c", "", "key12345", "secret12"), "name"),
            (app(&"a".repeat(65), "", "key12345", "secret12"), "name"),
            (
                app("abc", &"r".repeat(256), "key12345", "secret12"),
                "remark",
            ),
            (app("abc", "", "key1234", "secret12"), "app_key"),
            (app("abc", "", "_key12345", "secret12"), "app_key"),
            (app("abc", "", &"k".repeat(201), "secret12"), "app_key"),
            (app("abc", "", "key12345", "secret1"), "app_secret"),
            (app("abc", "", "key12345", "!secret12"), "app_secret"),
            (app("abc", "", "key12345", "secret12&"), "app_secret"),
        ];
        for (write, expected) in cases {
            assert_eq!(field(check_app(&write)), Some(expected), "{write:?}");
        }
    }

    #[test]
    fn signature_rules_follow_the_sign_type() {
        let secret16 = "s".repeat(16);
        assert_eq!(
            check_signature(&sig("hmac", None, "key12345", &secret16)),
            Ok(())
        );
        assert_eq!(
            check_signature(&sig("basic", None, "k123", "secret12")),
            Ok(())
        );
        assert_eq!(
            check_signature(&sig("aes", Some("aes-128-cfb"), &"k".repeat(16), &secret16)),
            Ok(())
        );
        assert_eq!(
            check_signature(&sig(
                "aes",
                Some("aes-256-cfb"),
                "+/=k".repeat(8).as_str(),
                &secret16
            )),
            Ok(())
        );
        let cases = [
            (sig("hmac", None, "key1234", &secret16), "sign_key"),
            (sig("hmac", None, "key12345", "short"), "sign_secret"),
            (sig("basic", None, "1abc", "secret12"), "sign_key"),
            (
                sig("aes", Some("aes-256-cfb"), &"k".repeat(16), &secret16),
                "sign_key",
            ),
            (
                sig("aes", None, &"k".repeat(16), &secret16),
                "sign_algorithm",
            ),
            (
                sig("hmac", Some("aes-128-cfb"), "key12345", &secret16),
                "sign_algorithm",
            ),
            (sig("rsa", None, "key12345", &secret16), "sign_type"),
        ];
        for (write, expected) in cases {
            assert_eq!(field(check_signature(&write)), Some(expected), "{write:?}");
        }
    }

    #[test]
    fn a_breach_says_the_rule_and_no_value() {
        let breach = check_app(&app("abc", "", "key12345", "hunter2")).unwrap_err();
        let text = breach.to_string();
        assert!(
            text.starts_with("app_secret must be 8-128 characters"),
            "{text}"
        );
        assert!(!text.contains("hunter2"));
    }
}
