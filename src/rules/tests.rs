use super::*;

/// One character of each class a rule may allow or forbid.
const CLASSES: &[(&str, char)] = &[
    ("upper-case letter", 'Q'),
    ("lower-case letter", 'q'),
    ("digit", '7'),
    ("underscore", '_'),
    ("hyphen", '-'),
    ("exclamation mark", '!'),
    ("at sign", '@'),
    ("hash", '#'),
    ("dollar", '$'),
    ("percent", '%'),
    ("dot", '.'),
    ("space", ' '),
    ("slash", '/'),
    ("plus", '+'),
    ("non-ASCII letter", 'é'),
    ("emoji", '🔑'),
];

/// A valid value of exactly `len` characters for `rule`.
fn valid_of_len(rule: &FormatRule, len: usize) -> String {
    let first = rule.first.characters().map(|c| c[0]).unwrap_or('A');
    let filler = rule
        .allowed
        .characters()
        .map(|c| c[c.len() - 1])
        .unwrap_or('x');
    let mut value = String::new();
    if len > 0 {
        value.push(first);
        value.extend(std::iter::repeat_n(filler, len - 1));
    }
    value
}

#[test]
fn every_rule_accepts_its_shortest_and_longest_value() {
    for rule in ALL {
        for len in [rule.min_len, rule.max_len] {
            let value = valid_of_len(&rule, len);
            assert_eq!(rule.check(&value), Ok(()), "{} at length {len}", rule.name);
        }
    }
}

#[test]
fn every_rule_rejects_one_too_short_and_one_too_long() {
    for rule in ALL {
        if rule.min_len > 0 {
            let value = valid_of_len(&rule, rule.min_len - 1);
            assert_eq!(rule.check(&value), Err(Breach::TooShort), "{}", rule.name);
        }
        let value = valid_of_len(&rule, rule.max_len + 1);
        assert_eq!(rule.check(&value), Err(Breach::TooLong), "{}", rule.name);
    }
}

#[test]
fn every_rule_checks_its_first_character() {
    for rule in ALL {
        for (class, c) in CLASSES {
            let mut value = String::from(*c);
            value.push_str(&valid_of_len(&rule, rule.min_len.max(2))[1..]);
            let want = if rule.first.contains(*c) {
                Ok(())
            } else if rule.first != Charset::Any {
                Err(Breach::BadFirstCharacter)
            } else {
                unreachable!()
            };
            assert_eq!(
                rule.check(&value),
                want,
                "{}: first character {class}",
                rule.name
            );
        }
    }
}

#[test]
fn every_rule_rejects_each_forbidden_character_class_after_the_first() {
    for rule in ALL {
        for (class, c) in CLASSES {
            let mut value = valid_of_len(&rule, rule.min_len.max(2));
            value.replace_range(
                value
                    .char_indices()
                    .nth(1)
                    .map(|(i, ch)| i..i + ch.len_utf8())
                    .unwrap(),
                &c.to_string(),
            );
            let want = if rule.allowed.contains(*c) {
                Ok(())
            } else {
                Err(Breach::BadCharacter)
            };
            assert_eq!(rule.check(&value), want, "{}: {class} inside", rule.name);
        }
    }
}

#[test]
fn seed_examples_pass() {
    assert!(APP_NAME.is_valid("app_001"));
    assert!(APP_KEY.is_valid("d49b1cbf-cc81-4a5f-b2a0-61b568e376eb"));
    assert!(APP_KEY.is_valid("app_key_sample"));
    assert!(APP_SECRET.is_valid("app_secret_sample"));
    assert!(KEY_NAME.is_valid("signature01"));
    assert!(SIGN_KEY_HMAC.is_valid("abcd_1234"));
    assert!(REMARK.is_valid("First app"));
}

#[test]
fn explicit_boundaries() {
    assert_eq!(APP_NAME.check("ab"), Err(Breach::TooShort));
    assert_eq!(APP_NAME.check("abc"), Ok(()));
    assert_eq!(APP_NAME.check("1bc"), Err(Breach::BadFirstCharacter));
    assert_eq!(APP_NAME.check("_bc"), Err(Breach::BadFirstCharacter));
    assert_eq!(APP_NAME.check("a-c"), Err(Breach::BadCharacter));
    assert_eq!(APP_KEY.check("1234567"), Err(Breach::TooShort));
    assert_eq!(APP_KEY.check("12345678"), Ok(()));
    assert_eq!(APP_KEY.check("-2345678"), Err(Breach::BadFirstCharacter));
    assert_eq!(APP_KEY.check("1234567!"), Err(Breach::BadCharacter));
    assert_eq!(APP_SECRET.check("1234567!"), Ok(()));
    assert_eq!(APP_SECRET.check("!2345678"), Err(Breach::BadFirstCharacter));
    assert_eq!(APP_SECRET.check("1234567^"), Err(Breach::BadCharacter));
    assert_eq!(SIGN_KEY_BASIC.check("abc"), Err(Breach::TooShort));
    assert_eq!(SIGN_KEY_BASIC.check("abcd"), Ok(()));
    assert_eq!(SIGN_KEY_BASIC.check("1bcd"), Err(Breach::BadFirstCharacter));
    assert_eq!(
        SIGN_SECRET_HMAC.check(&"a".repeat(15)),
        Err(Breach::TooShort)
    );
    assert_eq!(SIGN_SECRET_HMAC.check(&"a".repeat(16)), Ok(()));
    assert_eq!(
        SIGN_KEY_AES_128.check(&"a".repeat(15)),
        Err(Breach::TooShort)
    );
    assert_eq!(
        SIGN_KEY_AES_128.check(&"a".repeat(17)),
        Err(Breach::TooLong)
    );
    assert_eq!(SIGN_KEY_AES_256.check(&"a".repeat(32)), Ok(()));
    assert_eq!(
        SIGN_KEY_AES_256.check(&"a".repeat(31)),
        Err(Breach::TooShort)
    );
    assert_eq!(SIGN_SECRET_AES.check(&"a".repeat(16)), Ok(()));
    assert_eq!(REMARK.check(""), Ok(()));
    assert_eq!(
        REMARK.check(&"é".repeat(255)),
        Ok(()),
        "length counts characters, not bytes"
    );
    assert_eq!(REMARK.check(&"é".repeat(256)), Err(Breach::TooLong));
}

#[test]
fn patterns_read_as_expected() {
    assert_eq!(APP_NAME.pattern(), "^[A-Za-z][A-Za-z0-9_]*$");
    assert_eq!(APP_KEY.pattern(), "^[A-Za-z0-9][A-Za-z0-9_-]*$");
    assert_eq!(APP_SECRET.pattern(), "^[A-Za-z0-9][A-Za-z0-9_!@#$%-]*$");
    assert_eq!(REMARK.pattern(), "");
}

#[test]
fn descriptions_name_the_rule_in_plain_words() {
    assert_eq!(
        APP_SECRET.describe(),
        "8–64 characters, starting with a letter or digit, only letters, digits and _ - ! @ # $ %"
    );
    assert_eq!(
        SIGN_SECRET_AES.describe().split(',').next(),
        Some("exactly 16 characters")
    );
    assert_eq!(REMARK.describe(), "at most 255 characters");
}

#[test]
fn minimum_generated_lengths_reach_128_bits() {
    // 62 symbols: 5.95 bits each, 22 characters needed.
    assert_eq!(min_generated_len(&APP_SECRET, false), 22);
    // 62 for the first, 69 for the rest: 21 characters.
    assert_eq!(min_generated_len(&APP_SECRET, true), 21);
    assert_eq!(min_generated_len(&SIGN_SECRET_HMAC, false), 22);
    assert_eq!(min_generated_len(&SIGN_SECRET_BASIC, false), 22);
    // The aes secret is fixed at 16 by its rule.
    assert_eq!(min_generated_len(&SIGN_SECRET_AES, false), 16);
    for rule in [APP_SECRET, SIGN_SECRET_HMAC, SIGN_SECRET_BASIC] {
        for symbols in [false, true] {
            let (first, rest) = generator_alphabets(&rule, symbols);
            let len = min_generated_len(&rule, symbols);
            assert!(entropy_bits(len, first.len(), rest.len()) >= MIN_ENTROPY_BITS);
            assert!(entropy_bits(len - 1, first.len(), rest.len()) < MIN_ENTROPY_BITS);
        }
    }
}

#[test]
fn durations_parse_like_go() {
    let secs = |s: u64| Some(std::time::Duration::from_secs(s));
    assert_eq!(parse_duration("1m"), secs(60));
    assert_eq!(parse_duration("720h"), secs(720 * 3600));
    assert_eq!(parse_duration("1h30m"), secs(5400));
    assert_eq!(parse_duration("1.5h"), secs(5400));
    assert_eq!(parse_duration("0"), secs(0));
    assert_eq!(parse_duration("0s"), secs(0));
    assert_eq!(parse_duration("59s"), secs(59));
    assert_eq!(
        parse_duration("500ms"),
        Some(std::time::Duration::from_millis(500))
    );
    // Exact, as Go's integer arithmetic gives them (floating point would
    // make 2.3h 8,279.999999999 s).
    for exact in ["2.3h", "4.6h", "9.2h", "0.1h", "138m", "8280s"] {
        let nanos = parse_duration(exact).unwrap().as_nanos();
        assert_eq!(nanos % 1_000_000_000, 0, "{exact}: whole seconds");
    }
    assert_eq!(parse_duration("2.3h"), secs(8280));
    assert_eq!(
        parse_duration("1.000000000123456789012345s"),
        Some(std::time::Duration::from_nanos(1_000_000_000)),
        "finer than a nanosecond is dropped"
    );
    assert_eq!(
        parse_duration("0.1us1.5ns"),
        Some(std::time::Duration::from_nanos(101))
    );
    for bad in [
        "", "1", "h", "1d", "-1h", "+1h", "1 h", "1.h", ".5h", "1hh", "1e3s", "inf", "3000000h",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad:?}");
    }
}

#[test]
fn derived_names_replace_hyphens_and_dots() {
    assert_eq!(derived_name("orders-client.v2"), "orders_client_v2");
    assert!(APP_NAME.is_valid(&derived_name("orders-client")));
    assert!(!APP_NAME.is_valid(&derived_name("1-orders")));
    assert!(!APP_NAME.is_valid(&derived_name("ab")));
}

#[test]
fn secret_names_are_dns_subdomains() {
    assert!(is_dns_subdomain("orders-client-credentials"));
    assert!(is_dns_subdomain("a.b-c.d"));
    for bad in ["", "-a", "a-", "A", "a_b", "a..b", ".a"] {
        assert!(!is_dns_subdomain(bad), "{bad:?}");
    }
    assert!(!is_dns_subdomain(&"a".repeat(254)));
}

#[test]
fn qualified_names_and_label_values_at_their_bounds() {
    assert!(is_qualified_name("team"));
    assert!(is_qualified_name("konghq.com/credential"));
    assert!(is_qualified_name(&"a".repeat(63)));
    assert!(!is_qualified_name(&"a".repeat(64)));
    assert!(is_qualified_name(&format!("{}/x", "a".repeat(253))));
    assert!(!is_qualified_name(&format!("{}/x", "a".repeat(254))));
    assert!(!is_qualified_name("bad label!"));
    assert!(!is_qualified_name("a/b/c"));
    assert!(!is_qualified_name("/x"));
    assert!(!is_qualified_name("Upper.Case/x"));
    assert!(is_label_value(""));
    assert!(is_label_value("v1.2_3-x"));
    assert!(!is_label_value("not a valid label value!"));
    assert!(!is_label_value(&"v".repeat(64)));
    assert!(!is_label_value("-x"));
}

mod agreement_with_patterns {
    //! The schema's patterns and the CEL expressions are rendered from the same
    //! rows the Rust checks read; these properties prove the renderings mean
    //! the same thing, on random strings over every interesting character.
    use super::*;
    use proptest::prelude::*;

    fn interesting_string() -> impl Strategy<Value = String> {
        let chars: Vec<char> = CLASSES
            .iter()
            .map(|(_, c)| *c)
            .chain(['Z', 'a', '0', '9'])
            .collect();
        proptest::collection::vec(proptest::sample::select(chars), 0..70)
            .prop_map(|cs| cs.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn pattern_and_lengths_agree_with_check(value in interesting_string()) {
            for rule in ALL.iter().chain([&SIGN_KEY_ANY_TYPE, &SECRET_DATA_KEY]) {
                let len = value.chars().count();
                let pattern = rule.pattern();
                let pattern_ok = pattern.is_empty() || regex::Regex::new(&pattern).unwrap().is_match(&value);
                let schema_ok = pattern_ok && len >= rule.min_len && len <= rule.max_len;
                prop_assert_eq!(schema_ok, rule.is_valid(&value), "{} on {:?}", rule.name, value);
            }
        }

        #[test]
        fn durations_agree_with_pattern(value in "[0-9hmsun.]{0,8}") {
            let matches = regex::Regex::new(DURATION_PATTERN).unwrap().is_match(&value);
            prop_assert_eq!(matches, parse_duration(&value).is_some(), "{:?}", value);
        }

        #[test]
        fn label_values_agree_with_pattern(value in "[a-zA-Z0-9._/ -]{0,66}") {
            let len_ok = value.len() <= LABEL_VALUE_MAX_LEN;
            let matches = len_ok && regex::Regex::new(LABEL_VALUE_PATTERN).unwrap().is_match(&value);
            prop_assert_eq!(matches, is_label_value(&value), "{:?}", value);
        }

        #[test]
        fn qualified_names_agree_with_pattern(value in "[a-zA-Z0-9._/ -]{0,70}") {
            let re = regex::Regex::new(QUALIFIED_NAME_PATTERN).unwrap();
            let prefix = regex::Regex::new(QUALIFIED_NAME_PREFIX_PATTERN).unwrap();
            let matches = re.is_match(&value) && (!value.contains('/') || prefix.is_match(&value));
            prop_assert_eq!(matches, is_qualified_name(&value), "{:?}", value);
        }

        #[test]
        fn secret_names_agree_with_pattern(value in "[a-z0-9.-]{0,12}") {
            let matches = regex::Regex::new(SECRET_NAME_PATTERN).unwrap().is_match(&value);
            prop_assert_eq!(matches, is_dns_subdomain(&value), "{:?}", value);
        }
    }
}

#[test]
fn cel_strings_escape_backslashes_and_quotes() {
    assert_eq!(cel_quote(r"^a\.b$"), r"'^a\\.b$'");
    assert_eq!(cel_quote("it's"), r"'it\'s'");
}
