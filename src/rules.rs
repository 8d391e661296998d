//! The format rules of the gateway APIs (SPEC section 2), as data.
//!
//! Everything that checks a name, key or secret derives from this table: the
//! CRD schema's `pattern`/`minLength`/`maxLength` (see `crate::admission::schema`), the CEL
//! rules for fields whose rule depends on another field, the offline validator,
//! the controller's checks of user-supplied Secret values, and the generator.

use std::fmt;

mod sign_types;
pub use sign_types::{SignKeyRule, SignTypeRules, sign_key_rule, sign_secret_rule};

/// A set of ASCII characters: letters and/or digits plus some punctuation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// Any character at all (the remark).
    Any,
    /// ASCII letters, digits (each optional) and the listed extra characters.
    Ascii {
        letters: bool,
        digits: bool,
        extra: &'static str,
    },
}

impl Charset {
    pub const LETTERS: Charset = Charset::Ascii {
        letters: true,
        digits: false,
        extra: "",
    };
    pub const ALPHANUMERIC: Charset = Charset::Ascii {
        letters: true,
        digits: true,
        extra: "",
    };

    const fn alnum_and(extra: &'static str) -> Charset {
        Charset::Ascii {
            letters: true,
            digits: true,
            extra,
        }
    }

    pub fn contains(&self, c: char) -> bool {
        match *self {
            Charset::Any => true,
            Charset::Ascii {
                letters,
                digits,
                extra,
            } => {
                (letters && c.is_ascii_alphabetic())
                    || (digits && c.is_ascii_digit())
                    || extra.contains(c)
            }
        }
    }

    /// Every character of the set, in a fixed order (letters, digits, extras).
    /// `None` for [`Charset::Any`], which cannot be enumerated.
    pub fn characters(&self) -> Option<Vec<char>> {
        match *self {
            Charset::Any => None,
            Charset::Ascii {
                letters,
                digits,
                extra,
            } => {
                let mut out = Vec::new();
                if letters {
                    out.extend('A'..='Z');
                    out.extend('a'..='z');
                }
                if digits {
                    out.extend('0'..='9');
                }
                out.extend(extra.chars());
                Some(out)
            }
        }
    }

    /// A regular-expression character class for this set, valid in RE2
    /// (CEL `matches`) and ECMA-262 (OpenAPI `pattern`) alike.
    pub fn regex_class(&self) -> String {
        match *self {
            Charset::Any => "[\\s\\S]".to_string(),
            Charset::Ascii {
                letters,
                digits,
                extra,
            } => {
                let mut class = String::from("[");
                if letters {
                    class.push_str("A-Za-z");
                }
                if digits {
                    class.push_str("0-9");
                }
                // '-' goes last so it is literal; nothing else in our sets is special.
                let (hyphen, others): (Vec<char>, Vec<char>) =
                    extra.chars().partition(|c| *c == '-');
                class.extend(others);
                class.extend(hyphen);
                class.push(']');
                class
            }
        }
    }
}

impl fmt::Display for Charset {
    /// Plain words: "letters, digits and _ - ! @ # $ %".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Charset::Any => f.write_str("any character"),
            Charset::Ascii {
                letters,
                digits,
                extra,
            } => {
                let mut parts: Vec<String> = Vec::new();
                if letters {
                    parts.push("letters".into());
                }
                if digits {
                    parts.push("digits".into());
                }
                if !extra.is_empty() {
                    let spaced: Vec<String> = extra.chars().map(String::from).collect();
                    parts.push(spaced.join(" "));
                }
                match parts.as_slice() {
                    [] => f.write_str("nothing"),
                    [one] => f.write_str(one),
                    [init @ .., last] => write!(f, "{} and {}", init.join(", "), last),
                }
            }
        }
    }
}

/// One row of SPEC section 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FormatRule {
    /// What the value is, in the seed pages' words ("AppKey", "sign_secret (hmac)").
    pub name: &'static str,
    pub min_len: usize,
    pub max_len: usize,
    /// Characters allowed in the first position (`Any` = no extra rule).
    pub first: Charset,
    /// Characters allowed everywhere.
    pub allowed: Charset,
}

/// Why a value breaks its rule. Deliberately carries no part of the value:
/// the value may be a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breach {
    TooShort,
    TooLong,
    BadFirstCharacter,
    BadCharacter,
}

impl FormatRule {
    /// Checks a value; the error says which part of the rule failed.
    pub fn check(&self, value: &str) -> Result<(), Breach> {
        let len = value.chars().count();
        if len < self.min_len {
            return Err(Breach::TooShort);
        }
        if len > self.max_len {
            return Err(Breach::TooLong);
        }
        if let Some(first) = value.chars().next()
            && !self.first.contains(first)
        {
            return Err(Breach::BadFirstCharacter);
        }
        if !value.chars().all(|c| self.allowed.contains(c)) {
            return Err(Breach::BadCharacter);
        }
        Ok(())
    }

    pub fn is_valid(&self, value: &str) -> bool {
        self.check(value).is_ok()
    }

    /// The OpenAPI/RE2 pattern for the character rules (lengths are separate
    /// `minLength`/`maxLength` bounds in the schema).
    pub fn pattern(&self) -> String {
        if self.first == Charset::Any && self.allowed == Charset::Any {
            return String::new();
        }
        let first = if self.first == Charset::Any {
            self.allowed.regex_class()
        } else {
            self.first.regex_class()
        };
        format!("^{}{}*$", first, self.allowed.regex_class())
    }

    /// A CEL expression over the string expression `value` that holds exactly
    /// when the rule does.
    pub fn cel(&self, value: &str) -> String {
        let mut terms = Vec::new();
        if self.min_len == self.max_len {
            terms.push(format!("size({value}) == {}", self.min_len));
        } else {
            if self.min_len > 0 {
                terms.push(format!("size({value}) >= {}", self.min_len));
            }
            terms.push(format!("size({value}) <= {}", self.max_len));
        }
        let pattern = self.pattern();
        if !pattern.is_empty() {
            terms.push(format!("{value}.matches({})", cel_quote(&pattern)));
        }
        terms.join(" && ")
    }

    /// The rule in plain words, for error messages and docs.
    pub fn describe(&self) -> String {
        let length = if self.min_len == self.max_len {
            format!("exactly {} characters", self.min_len)
        } else if self.min_len == 0 {
            format!("at most {} characters", self.max_len)
        } else {
            format!("{}–{} characters", self.min_len, self.max_len)
        };
        let mut out = length;
        if self.first != Charset::Any && self.first != self.allowed {
            out.push_str(&format!(", starting with {}", self.first.singular()));
        }
        if self.allowed != Charset::Any {
            out.push_str(&format!(", only {}", self.allowed));
        }
        out
    }

    /// The message for a breach, naming the rule but never the value.
    pub fn explain(&self, breach: Breach) -> String {
        let what = match breach {
            Breach::TooShort => "is too short",
            Breach::TooLong => "is too long",
            Breach::BadFirstCharacter => "starts with a character that is not allowed there",
            Breach::BadCharacter => "contains a character that is not allowed",
        };
        format!("{what}: must be {}", self.describe())
    }
}

impl Charset {
    /// "a letter", "a letter or digit".
    fn singular(&self) -> String {
        match *self {
            Charset::Ascii {
                letters: true,
                digits: false,
                extra: "",
            } => "a letter".into(),
            Charset::Ascii {
                letters: true,
                digits: true,
                extra: "",
            } => "a letter or digit".into(),
            other => format!("one of {other}"),
        }
    }
}

const NAME_CHARS: Charset = Charset::alnum_and("_");
const KEY_CHARS: Charset = Charset::alnum_and("_-");
const SECRET_CHARS: Charset = Charset::alnum_and("_-!@#$%");

/// The special characters a secret may contain (used by `generator.symbols`).
pub const SECRET_SYMBOLS: &str = "_-!@#$%";

pub const APP_NAME: FormatRule = FormatRule {
    name: "app name",
    min_len: 3,
    max_len: 64,
    first: Charset::LETTERS,
    allowed: NAME_CHARS,
};

pub const REMARK: FormatRule = FormatRule {
    name: "remark",
    min_len: 0,
    max_len: 255,
    first: Charset::Any,
    allowed: Charset::Any,
};

pub const APP_KEY: FormatRule = FormatRule {
    name: "AppKey",
    min_len: 8,
    max_len: 64,
    first: Charset::ALPHANUMERIC,
    allowed: KEY_CHARS,
};

pub const APP_SECRET: FormatRule = FormatRule {
    name: "AppSecret",
    min_len: 8,
    max_len: 64,
    first: Charset::ALPHANUMERIC,
    allowed: SECRET_CHARS,
};

pub const KEY_NAME: FormatRule = FormatRule {
    name: "signature key name",
    min_len: 3,
    max_len: 64,
    first: Charset::LETTERS,
    allowed: NAME_CHARS,
};

pub const SIGN_KEY_HMAC: FormatRule = FormatRule {
    name: "sign_key (hmac)",
    min_len: 8,
    max_len: 32,
    first: Charset::ALPHANUMERIC,
    allowed: KEY_CHARS,
};

pub const SIGN_SECRET_HMAC: FormatRule = FormatRule {
    name: "sign_secret (hmac)",
    min_len: 16,
    max_len: 64,
    first: Charset::ALPHANUMERIC,
    allowed: SECRET_CHARS,
};

pub const SIGN_KEY_BASIC: FormatRule = FormatRule {
    name: "sign_key (basic)",
    min_len: 4,
    max_len: 32,
    first: Charset::LETTERS,
    allowed: KEY_CHARS,
};

pub const SIGN_SECRET_BASIC: FormatRule = FormatRule {
    name: "sign_secret (basic)",
    min_len: 8,
    max_len: 64,
    first: Charset::ALPHANUMERIC,
    allowed: SECRET_CHARS,
};

pub const SIGN_KEY_AES_128: FormatRule = FormatRule {
    name: "sign_key (aes-128-cfb)",
    min_len: 16,
    max_len: 16,
    first: Charset::ALPHANUMERIC,
    allowed: KEY_CHARS,
};

pub const SIGN_KEY_AES_256: FormatRule = FormatRule {
    name: "sign_key (aes-256-cfb)",
    min_len: 32,
    max_len: 32,
    first: Charset::ALPHANUMERIC,
    allowed: KEY_CHARS,
};

pub const SIGN_SECRET_AES: FormatRule = FormatRule {
    name: "sign_secret (aes)",
    min_len: 16,
    max_len: 16,
    first: Charset::ALPHANUMERIC,
    allowed: SECRET_CHARS,
};

/// Every row of SPEC section 2, for tests and docs.
pub const ALL: [FormatRule; 12] = [
    APP_NAME,
    REMARK,
    APP_KEY,
    APP_SECRET,
    KEY_NAME,
    SIGN_KEY_HMAC,
    SIGN_SECRET_HMAC,
    SIGN_KEY_BASIC,
    SIGN_SECRET_BASIC,
    SIGN_KEY_AES_128,
    SIGN_KEY_AES_256,
    SIGN_SECRET_AES,
];

/// The union of the sign_key rules over every sign type: what the schema
/// can say about `spec.signKey` before knowing the type (CEL says the rest).
pub const SIGN_KEY_ANY_TYPE: FormatRule = FormatRule {
    name: "sign_key",
    min_len: 4,
    max_len: 32,
    first: Charset::ALPHANUMERIC,
    allowed: KEY_CHARS,
};

/// Generated secrets must carry at least this much entropy (SPEC section 5).
pub const MIN_ENTROPY_BITS: f64 = 128.0;

/// The bits of entropy in a uniformly random value of `len` characters whose
/// first character is drawn from `first` and the rest from `rest` alphabets.
pub fn entropy_bits(len: usize, first: usize, rest: usize) -> f64 {
    if len == 0 {
        return 0.0;
    }
    (first as f64).log2() + (len - 1) as f64 * (rest as f64).log2()
}

/// The alphabet a generator draws from for `rule` (with or without symbols),
/// as (first-character alphabet, alphabet for the rest).
pub fn generator_alphabets(rule: &FormatRule, symbols: bool) -> (Vec<char>, Vec<char>) {
    let pool = if symbols {
        rule.allowed
    } else {
        Charset::ALPHANUMERIC
    };
    let rest: Vec<char> = pool
        .characters()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| rule.allowed.contains(*c))
        .collect();
    let first: Vec<char> = rest
        .iter()
        .copied()
        .filter(|c| rule.first.contains(*c))
        .collect();
    (first, rest)
}

/// The shortest generated length that reaches [`MIN_ENTROPY_BITS`] for the
/// rule's alphabet, never below the rule's own minimum, and capped at the
/// rule's maximum (the aes sign_secret is fixed at 16 and cannot reach it).
pub fn min_generated_len(rule: &FormatRule, symbols: bool) -> usize {
    let (first, rest) = generator_alphabets(rule, symbols);
    let mut len = rule.min_len.max(1);
    while len < rule.max_len && entropy_bits(len, first.len(), rest.len()) < MIN_ENTROPY_BITS {
        len += 1;
    }
    len
}

/// The default `generator.length` (SPEC: "effective default 32"), clamped into the rule.
pub const DEFAULT_GENERATED_LEN: usize = 32;

pub fn default_generated_len(rule: &FormatRule) -> usize {
    DEFAULT_GENERATED_LEN.clamp(rule.min_len, rule.max_len)
}

/// Accepted `rotation.interval`/`keepPrevious` syntax: Go durations
/// (`time.ParseDuration`, as `metav1.Duration`), unsigned, e.g. `720h`, `1h30m`, `90s`.
pub const DURATION_PATTERN: &str = "^(0|([0-9]+(\\.[0-9]+)?(ns|us|ms|s|m|h))+)$";

/// Minimum `rotation.interval`.
pub const MIN_ROTATION_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Parses a duration in [`DURATION_PATTERN`] syntax. `None` if it does not match.
/// In whole nanoseconds, as Go does: `2.3h` is exactly 8,280 s (a sum in
/// floating point would make it 8,279.999999999 s).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    if text == "0" {
        return Some(std::time::Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_len);
        if !is_decimal(number) {
            return None;
        }
        let (unit_nanos, unit_len): (u128, usize) = if tail.starts_with("ns") {
            (1, 2)
        } else if tail.starts_with("us") {
            (1_000, 2)
        } else if tail.starts_with("ms") {
            (1_000_000, 2)
        } else if tail.starts_with('s') {
            (1_000_000_000, 1)
        } else if tail.starts_with('m') {
            (60_000_000_000, 1)
        } else if tail.starts_with('h') {
            (3_600_000_000_000, 1)
        } else {
            return None;
        };
        total_nanos = total_nanos.checked_add(component_nanos(number, unit_nanos)?)?;
        rest = &tail[unit_len..];
    }
    // Go durations are int64 nanoseconds; anything longer fails to parse there too.
    if total_nanos > i64::MAX as u128 {
        return None;
    }
    Some(std::time::Duration::from_nanos(total_nanos as u64))
}

/// `number` (`[0-9]+(\.[0-9]+)?`) of a unit of `unit_nanos`, in whole
/// nanoseconds; a fraction finer than a nanosecond is dropped, as in Go.
fn component_nanos(number: &str, unit_nanos: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u128 = whole.parse().ok()?;
    let mut nanos = whole.checked_mul(unit_nanos)?;
    if !fraction.is_empty() {
        // 20 digits are far finer than a nanosecond of an hour, and keep
        // the product inside u128.
        let digits = &fraction[..fraction.len().min(20)];
        let value: u128 = digits.parse().ok()?;
        nanos = nanos.checked_add(value * unit_nanos / 10u128.pow(digits.len() as u32))?;
    }
    Some(nanos)
}

/// `[0-9]+(\.[0-9]+)?`
fn is_decimal(text: &str) -> bool {
    let mut parts = text.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let fraction = parts.next();
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    digits(whole) && fraction.is_none_or(digits)
}

/// A CEL string literal for `text` (single-quoted, backslashes and quotes escaped).
pub fn cel_quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Converts a resource name into an app/key name the way SPEC section 3 says:
/// `-` and `.` become `_`.
pub fn derived_name(metadata_name: &str) -> String {
    metadata_name.replace(['-', '.'], "_")
}

/// Data keys of a Secret: `[-._a-zA-Z0-9]+`, at most 253 characters.
pub const SECRET_DATA_KEY: FormatRule = FormatRule {
    name: "Secret data key",
    min_len: 1,
    max_len: 253,
    first: Charset::alnum_and("-._"),
    allowed: Charset::alnum_and("-._"),
};

/// DNS-1123 subdomain, the rule for Secret names.
/// A data key that also gets a `_previous` twin (appSecret, signSecret): the
/// twin must still fit Kubernetes' 253 characters.
pub const SECRET_DATA_KEY_WITH_PREVIOUS: FormatRule = FormatRule {
    name: "Secret data key (with its _previous twin)",
    max_len: 253 - crate::api::names::data_keys::PREVIOUS_SUFFIX.len(),
    ..SECRET_DATA_KEY
};

/// Kubernetes' label value: at most 63 characters, empty or starting and
/// ending with a letter or digit; letters, digits, '-', '_', '.' between.
pub const LABEL_VALUE_PATTERN: &str = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";
pub const LABEL_VALUE_MAX_LEN: usize = crate::api::names::labels::MAX_VALUE_LEN;
pub const LABEL_VALUE_RULE: &str = "must be a valid label value: at most 63 characters, empty or starting and ending with a letter or digit, with letters, digits, '-', '_' and '.' between";

pub fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_name_part(value)
}

/// Kubernetes' qualified name (label and annotation keys): an optional
/// DNS-subdomain prefix of at most 253 characters and '/', then a name of
/// 1–63 characters starting and ending with a letter or digit, with letters,
/// digits, '-', '_', '.' between.
pub const QUALIFIED_NAME_PATTERN: &str = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";
/// With the pattern: a prefix, if any, of at most 253 characters.
pub const QUALIFIED_NAME_PREFIX_PATTERN: &str = "^[^/]{0,253}/";
/// The longest qualified name: a 253-character prefix, '/', a 63-character name.
pub const QUALIFIED_NAME_MAX_LEN: usize = SECRET_NAME_MAX_LEN + 1 + LABEL_VALUE_MAX_LEN;
pub const QUALIFIED_NAME_RULE: &str = "must be a qualified name like a label or annotation key: an optional DNS-subdomain prefix (at most 253 characters) and '/', then 1–63 characters starting and ending with a letter or digit, with letters, digits, '-', '_' and '.' between";

pub fn is_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => {
            prefix.len() <= 253 && is_dns_subdomain(prefix) && is_name_part(name)
        }
        None => is_name_part(key),
    }
}

/// 1–63 characters, a letter or digit at both ends, `[-A-Za-z0-9_.]` between.
fn is_name_part(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    !bytes.is_empty()
        && bytes.len() <= LABEL_VALUE_MAX_LEN
        && alnum(&bytes[0])
        && alnum(&bytes[bytes.len() - 1])
        && bytes
            .iter()
            .all(|b| alnum(b) || matches!(b, b'-' | b'_' | b'.'))
}

pub const SECRET_NAME_PATTERN: &str =
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
pub const SECRET_NAME_MAX_LEN: usize = 253;

pub fn is_dns_subdomain(name: &str) -> bool {
    if name.is_empty() || name.len() > SECRET_NAME_MAX_LEN {
        return false;
    }
    name.split('.').all(|label| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-'
    })
}

#[cfg(test)]
mod tests;
