//! Generation of keys and secrets from a cryptographically secure generator.
//!
//! Production passes the OS generator ([`os_rng`]); tests pass a seeded one.
//! Every value satisfies its format rule, first character included.

use rand::TryCryptoRng;

use crate::rules::{self, FormatRule};

/// The OS CSPRNG (getrandom). Fallible: its errors surface as [`GenerateError`].
pub fn os_rng() -> rand::rngs::SysRng {
    rand::rngs::SysRng
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenerateError {
    #[error("the operating system's random number generator failed: {0}")]
    Rng(String),
    #[error("cannot generate a {rule} of {length} characters: must be {describe}")]
    Length {
        rule: &'static str,
        length: usize,
        describe: String,
    },
}

/// A random AppKey in the seed's format: a version-4 UUID
/// (`d49b1cbf-cc81-4a5f-b2a0-61b568e376eb`). It identifies; it does not protect.
pub fn app_key<R: TryCryptoRng>(rng: &mut R) -> Result<String, GenerateError> {
    let mut bytes = [0u8; 16];
    rng.try_fill_bytes(&mut bytes).map_err(rng_error)?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// A random value of `length` characters satisfying `rule`: the first from
/// the rule's first-character set, the rest uniformly from letters and digits
/// (plus the rule's special characters with `symbols`).
pub fn value<R: TryCryptoRng>(
    rng: &mut R,
    rule: &FormatRule,
    length: usize,
    symbols: bool,
) -> Result<String, GenerateError> {
    if length < rule.min_len || length > rule.max_len || length == 0 {
        return Err(GenerateError::Length {
            rule: rule.name,
            length,
            describe: rule.describe(),
        });
    }
    let (first, rest) = rules::generator_alphabets(rule, symbols);
    let mut out = String::with_capacity(length);
    out.push(first[uniform_index(rng, first.len())?]);
    for _ in 1..length {
        out.push(rest[uniform_index(rng, rest.len())?]);
    }
    Ok(out)
}

/// A uniformly random index below `n` (n ≤ 256), by rejection sampling
/// so that no character is more likely than another.
fn uniform_index<R: TryCryptoRng>(rng: &mut R, n: usize) -> Result<usize, GenerateError> {
    debug_assert!(n > 0 && n <= 256);
    let limit = 256 - 256 % n; // largest multiple of n that fits a byte
    loop {
        let mut byte = [0u8; 1];
        rng.try_fill_bytes(&mut byte).map_err(rng_error)?;
        if (byte[0] as usize) < limit {
            return Ok(byte[0] as usize % n);
        }
    }
}

fn rng_error<E: std::fmt::Display>(error: E) -> GenerateError {
    GenerateError::Rng(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::*;
    use rand::SeedableRng;
    use std::collections::HashSet;

    fn seeded() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    #[test]
    fn app_keys_are_v4_uuids_that_pass_the_app_key_rule() {
        let mut rng = os_rng();
        for _ in 0..5_000 {
            let key = app_key(&mut rng).unwrap();
            assert_eq!(key.len(), 36);
            assert_eq!(&key[14..15], "4");
            assert!(matches!(&key[19..20], "8" | "9" | "a" | "b"));
            assert!(APP_KEY.is_valid(&key), "{key}");
        }
    }

    #[test]
    fn generated_values_always_pass_their_rule() {
        let mut rng = seeded();
        let secrets = [
            APP_SECRET,
            SIGN_SECRET_HMAC,
            SIGN_SECRET_BASIC,
            SIGN_SECRET_AES,
        ];
        let keys = [
            SIGN_KEY_HMAC,
            SIGN_KEY_BASIC,
            SIGN_KEY_AES_128,
            SIGN_KEY_AES_256,
        ];
        for rule in secrets.iter().chain(keys.iter()) {
            for symbols in [false, true] {
                for length in [
                    min_generated_len(rule, symbols),
                    default_generated_len(rule),
                    rule.max_len,
                ] {
                    for _ in 0..2_000 {
                        let v = value(&mut rng, rule, length, symbols).unwrap();
                        assert_eq!(v.chars().count(), length);
                        assert_eq!(rule.check(&v), Ok(()), "{}", rule.name);
                    }
                }
            }
        }
    }

    #[test]
    fn first_character_rule_holds_for_every_charset_option() {
        let mut rng = seeded();
        for rule in ALL.iter().filter(|r| r.allowed != Charset::Any) {
            for symbols in [false, true] {
                let mut firsts = HashSet::new();
                for _ in 0..3_000 {
                    let v = value(&mut rng, rule, rule.max_len, symbols).unwrap();
                    let first = v.chars().next().unwrap();
                    assert!(rule.first.contains(first), "{}: {first:?}", rule.name);
                    firsts.insert(first);
                }
                // The whole first-character alphabet is in use, not a fixed letter.
                let (first_alphabet, _) = generator_alphabets(rule, symbols);
                assert_eq!(firsts.len(), first_alphabet.len(), "{}", rule.name);
            }
        }
    }

    #[test]
    fn symbols_are_used_only_when_asked() {
        let mut rng = seeded();
        let plain: String = (0..200)
            .map(|_| value(&mut rng, &APP_SECRET, 64, false).unwrap())
            .collect();
        assert!(plain.chars().all(|c| c.is_ascii_alphanumeric()));
        let with: String = (0..200)
            .map(|_| value(&mut rng, &APP_SECRET, 64, true).unwrap())
            .collect();
        for s in SECRET_SYMBOLS.chars() {
            assert!(with.contains(s), "symbol {s} never drawn");
        }
    }

    #[test]
    fn no_duplicates_in_100k_from_the_os_generator() {
        let mut rng = os_rng();
        let mut seen = HashSet::new();
        for _ in 0..100_000 {
            assert!(seen.insert(value(&mut rng, &APP_SECRET, 22, false).unwrap()));
        }
        let mut keys = HashSet::new();
        for _ in 0..100_000 {
            assert!(keys.insert(app_key(&mut rng).unwrap()));
        }
    }

    #[test]
    fn characters_are_roughly_uniform() {
        // 62 letters/digits over 620k draws: each ~10k; a biased sampler
        // (plain modulo over 256) would skew the first 8 by ~25%.
        let mut rng = seeded();
        let mut counts = std::collections::HashMap::new();
        for _ in 0..10_000 {
            for c in value(&mut rng, &APP_SECRET, 63, false)
                .unwrap()
                .chars()
                .skip(1)
            {
                *counts.entry(c).or_insert(0usize) += 1;
            }
        }
        assert_eq!(counts.len(), 62);
        for (c, n) in counts {
            assert!((9_000..11_000).contains(&n), "{c}: {n}");
        }
    }

    #[test]
    fn lengths_outside_the_rule_are_refused_without_panicking() {
        let mut rng = seeded();
        assert!(matches!(
            value(&mut rng, &APP_SECRET, 7, false),
            Err(GenerateError::Length { .. })
        ));
        assert!(matches!(
            value(&mut rng, &SIGN_SECRET_AES, 17, false),
            Err(GenerateError::Length { .. })
        ));
    }
}
