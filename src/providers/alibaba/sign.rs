//! Alibaba Cloud's V3 request signature (`ACS3-HMAC-SHA256`), exactly as the
//! official SDK (alibabacloud-tea-openapi, default `Config`) sends it: the
//! SDK's `do_request` signs every request with an `Authorization` header,
//! not the older RPC `Signature` query parameter.
//!
//! canonical request = method \n path \n canonical query \n canonical headers
//! \n signed header names \n hex(SHA-256(body)); string to sign =
//! `ACS3-HMAC-SHA256` \n hex(SHA-256(canonical request)); signature =
//! hex(HMAC-SHA256(access key secret, string to sign)).
//!
//! The same functions verify on the conformance server, and
//! tests/conformance_alibaba.rs proves them byte-identical to the SDK's.

use std::collections::BTreeMap;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use ring::{digest, hmac};

/// The algorithm name at the head of the `Authorization` header.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// How long a signed request stays valid: the documented V3 rule is that
/// `x-acs-date` lies within 15 minutes of the server's time.
pub const VALIDITY_SECONDS: i64 = 15 * 60;

/// What Python's `quote(value, safe='~')` leaves alone: RFC 3986 unreserved.
const VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes one query value as the SDK's canonical query does.
pub fn encode_value(value: &str) -> String {
    utf8_percent_encode(value, VALUE).to_string()
}

/// `k=v&…` sorted by name, values encoded, names as they are (the SDK does
/// not encode names; Alibaba's names are plain ASCII).
pub fn canonical_query(query: &BTreeMap<String, String>) -> String {
    query
        .iter()
        .map(|(k, v)| format!("{k}={}", encode_value(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical header block and the `;`-joined signed names: names
/// lowercased and sorted, values trimmed, repeated values sorted and joined
/// by `,`.
pub fn canonical_headers(headers: &[(String, String)]) -> (String, String) {
    let mut by_name: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        by_name
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value.trim().to_string());
    }
    let mut block = String::new();
    for (name, values) in &mut by_name {
        values.sort();
        block.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let names = by_name.keys().cloned().collect::<Vec<_>>().join(";");
    (block, names)
}

/// Lowercase hex of SHA-256: the `x-acs-content-sha256` header and the
/// payload line of the canonical request.
pub fn hex_sha256(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One request as the signature sees it.
pub struct Signable<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a BTreeMap<String, String>,
    /// Every header that is signed (the SDK signs all it sends but
    /// `Authorization`).
    pub headers: &'a [(String, String)],
    /// `hex_sha256` of the body.
    pub payload_hash: &'a str,
}

impl Signable<'_> {
    pub fn canonical_request(&self) -> (String, String) {
        let (block, names) = canonical_headers(self.headers);
        let path = if self.path.is_empty() { "/" } else { self.path };
        let text = format!(
            "{}\n{path}\n{}\n{block}\n{names}\n{}",
            self.method,
            canonical_query(self.query),
            self.payload_hash
        );
        (text, names)
    }

    /// The hex signature with `secret`.
    pub fn signature(&self, secret: &str) -> String {
        let (canonical, _) = self.canonical_request();
        let to_sign = format!("{ALGORITHM}\n{}", hex_sha256(canonical.as_bytes()));
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
        hex(hmac::sign(&key, to_sign.as_bytes()).as_ref())
    }

    /// The whole `Authorization` header value.
    pub fn authorization(&self, access_key_id: &str, secret: &str) -> String {
        let (_, names) = self.canonical_request();
        format!(
            "{ALGORITHM} Credential={access_key_id},SignedHeaders={names},Signature={}",
            self.signature(secret)
        )
    }
}

/// The parts of an `Authorization` header, for the server.
#[derive(Debug, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Reads `ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`.
pub fn parse_authorization(value: &str) -> Option<Authorization> {
    let rest = value.strip_prefix(ALGORITHM)?.trim_start();
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        fields.insert(name, value);
    }
    Some(Authorization {
        access_key_id: fields.get("Credential")?.to_string(),
        signed_headers: fields
            .get("SignedHeaders")?
            .split(';')
            .map(str::to_string)
            .collect(),
        signature: fields.get("Signature")?.to_string(),
    })
}

/// Compares two signatures without an early exit.
pub fn same_signature(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// `yyyy-MM-ddTHH:mm:ssZ` (UTC) for seconds since the Unix epoch, as the
/// SDK's `get_timestamp`.
pub fn format_timestamp(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// The inverse of [`format_timestamp`]; `None` for any other shape.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Hinnant's method).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A fresh `x-acs-signature-nonce`: 32 hex characters from the system's
/// random source (the SDK sends an MD5 hex of its own; any unique value
/// serves).
pub fn nonce() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    // The system random source failing is not recoverable in any useful
    // way; fall back to the clock so a request still carries a fresh value.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = now.to_le_bytes();
    }
    hex(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_encoded_like_python_quote_with_tilde_safe() {
        assert_eq!(encode_value("a b+c/d~e_f.g-h*"), "a%20b%2Bc%2Fd~e_f.g-h%2A");
        assert_eq!(encode_value("名"), "%E5%90%8D");
    }

    #[test]
    fn headers_are_lowercased_sorted_and_trimmed() {
        let headers = vec![
            (
                "X-Acs-Date".to_string(),
                " 2026-01-01T00:00:00Z ".to_string(),
            ),
            ("host".to_string(), "h".to_string()),
        ];
        let (block, names) = canonical_headers(&headers);
        assert_eq!(block, "host:h\nx-acs-date:2026-01-01T00:00:00Z\n");
        assert_eq!(names, "host;x-acs-date");
    }

    #[test]
    fn timestamps_round_trip() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_timestamp(1_798_761_600), "2027-01-01T00:00:00Z");
        for t in [0, 951_782_400, 1_709_251_199, 4_102_444_800] {
            assert_eq!(parse_timestamp(&format_timestamp(t)), Some(t));
        }
        assert_eq!(parse_timestamp("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_timestamp("2026-01-01 00:00:00"), None);
    }

    #[test]
    fn the_authorization_header_parses_back() {
        let header =
            format!("{ALGORITHM} Credential=AK,SignedHeaders=host;x-acs-date,Signature=ab");
        let parsed = parse_authorization(&header).unwrap();
        assert_eq!(parsed.access_key_id, "AK");
        assert_eq!(parsed.signed_headers, vec!["host", "x-acs-date"]);
        assert_eq!(parsed.signature, "ab");
        assert!(parse_authorization("acs AK:sig").is_none());
    }

    #[test]
    fn signatures_compare_exactly() {
        assert!(same_signature("abc", "abc"));
        assert!(!same_signature("abc", "abd"));
        assert!(!same_signature("abc", "ab"));
    }
}
