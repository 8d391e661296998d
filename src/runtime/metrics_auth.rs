//! Who may read `/metrics` when it is served securely: the caller's bearer
//! token goes to the apiserver as a TokenReview, and the user it names must
//! be allowed `get` on the non-resource path `/metrics` by a
//! SubjectAccessReview — as controller-runtime's
//! `filters.WithAuthenticationAndAuthorization` and kube-rbac-proxy do.
//!
//! Decisions are cached by the token's SHA-256 (never the token itself) so
//! that a scrape every 15 s does not cost two API calls each time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

/// The path and verb a caller must be allowed, as RBAC's `nonResourceURLs`.
pub const METRICS_PATH: &str = "/metrics";
const METRICS_VERB: &str = "get";

/// An allowed caller is asked again after a minute: one review per four
/// scrapes at Prometheus' default 15 s, and RBAC revocations still bite soon.
pub const ALLOWED_TTL: Duration = Duration::from_secs(60);
/// A refused caller is asked again sooner, so a fresh RoleBinding works fast.
pub const REFUSED_TTL: Duration = Duration::from_secs(10);
/// Bounds memory whatever callers send: 1024 entries of 32+24 bytes.
pub const CACHE_CAPACITY: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// No token, or the apiserver does not recognise it: 401.
    Unauthenticated,
    /// A known user without the right: 403.
    Forbidden,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("TokenReview failed: {0}")]
    TokenReview(#[source] kube::Error),
    #[error("SubjectAccessReview failed: {0}")]
    SubjectAccessReview(#[source] kube::Error),
}

/// The token of an `Authorization: Bearer <token>` header (scheme case
/// insensitive, as Kubernetes' bearer-token authenticator reads it).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty() && !token.contains(char::is_whitespace)).then_some(token)
}

/// The cache key of a token: its SHA-256, so no token stays in memory.
pub fn token_key(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

/// Recent decisions by token hash, bounded in size and age.
#[derive(Debug)]
pub struct DecisionCache {
    entries: HashMap<[u8; 32], (Decision, Instant)>,
    capacity: usize,
    allowed_ttl: Duration,
    refused_ttl: Duration,
}

impl Default for DecisionCache {
    fn default() -> Self {
        Self::new(CACHE_CAPACITY, ALLOWED_TTL, REFUSED_TTL)
    }
}

impl DecisionCache {
    pub fn new(capacity: usize, allowed_ttl: Duration, refused_ttl: Duration) -> Self {
        DecisionCache {
            entries: HashMap::new(),
            capacity,
            allowed_ttl,
            refused_ttl,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The decision for `key` if it is still fresh at `now`.
    pub fn get(&self, key: &[u8; 32], now: Instant) -> Option<Decision> {
        self.entries
            .get(key)
            .filter(|(_, expires)| now < *expires)
            .map(|(decision, _)| *decision)
    }

    pub fn insert(&mut self, key: [u8; 32], decision: Decision, now: Instant) {
        if self.capacity == 0 {
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, (_, expires)| now < *expires);
            // Still full of fresh entries: drop the one closest to expiry.
            if self.entries.len() >= self.capacity
                && let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, expires))| *expires)
                    .map(|(k, _)| *k)
            {
                self.entries.remove(&oldest);
            }
        }
        let ttl = match decision {
            Decision::Allowed => self.allowed_ttl,
            Decision::Unauthenticated | Decision::Forbidden => self.refused_ttl,
        };
        self.entries.insert(key, (decision, now + ttl));
    }
}

/// Reviews callers with the apiserver, through the cache.
pub struct MetricsAuth {
    client: kube::Client,
    cache: Mutex<DecisionCache>,
}

impl MetricsAuth {
    pub fn new(client: kube::Client) -> Self {
        MetricsAuth {
            client,
            cache: Mutex::new(DecisionCache::default()),
        }
    }

    /// The decision for a request's headers; errors (the apiserver did not
    /// answer) are not cached.
    pub async fn decide(&self, headers: &HeaderMap) -> Result<Decision, ReviewError> {
        let Some(token) = bearer_token(headers) else {
            return Ok(Decision::Unauthenticated);
        };
        let key = token_key(token);
        if let Some(decision) = self.cached(&key) {
            return Ok(decision);
        }
        let decision = match self.authenticate(token).await? {
            None => Decision::Unauthenticated,
            Some(user) => match self.authorize(user).await? {
                true => Decision::Allowed,
                false => Decision::Forbidden,
            },
        };
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, decision, Instant::now());
        }
        Ok(decision)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Decision> {
        self.cache.lock().ok()?.get(key, Instant::now())
    }

    /// The user the token belongs to, if the apiserver recognises it.
    async fn authenticate(&self, token: &str) -> Result<Option<UserInfo>, ReviewError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(ReviewError::TokenReview)?;
        Ok(reviewed
            .status
            .filter(|status| status.authenticated == Some(true))
            .and_then(|status| status.user))
    }

    async fn authorize(&self, user: UserInfo) -> Result<bool, ReviewError> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username,
                groups: user.groups,
                uid: user.uid,
                extra: user.extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(METRICS_PATH.into()),
                    verb: Some(METRICS_VERB.into()),
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        let reviewed = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(ReviewError::SubjectAccessReview)?;
        Ok(reviewed.status.is_some_and(|status| status.allowed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(authorization).unwrap(),
        );
        headers
    }

    #[test]
    fn a_bearer_header_gives_its_token() {
        assert_eq!(bearer_token(&headers("Bearer abc.def")), Some("abc.def"));
        assert_eq!(bearer_token(&headers("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&headers("BEARER  abc ")), Some("abc"));
    }

    #[test]
    fn anything_else_gives_no_token() {
        assert_eq!(bearer_token(&HeaderMap::new()), None);
        for value in [
            "",
            "Bearer",
            "Bearer ",
            "Bearer   ",
            "Basic dXNlcjpwYXNz",
            "Bearerabc",
            "Bearer a b",
            "Token abc",
        ] {
            assert_eq!(bearer_token(&headers(value)), None, "{value:?}");
        }
    }

    #[test]
    fn a_header_that_is_not_text_gives_no_token() {
        let mut map = HeaderMap::new();
        map.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        );
        assert_eq!(bearer_token(&map), None);
    }

    #[test]
    fn tokens_are_keyed_by_their_hash() {
        assert_eq!(token_key("a"), token_key("a"));
        assert_ne!(token_key("a"), token_key("b"));
        // SHA-256 of "abc".
        assert_eq!(token_key("abc")[..4], [0xba, 0x78, 0x16, 0xbf]);
    }

    #[test]
    fn a_decision_is_kept_for_its_ttl_only() {
        let mut cache = DecisionCache::new(8, Duration::from_secs(60), Duration::from_secs(10));
        let now = Instant::now();
        cache.insert(token_key("allowed"), Decision::Allowed, now);
        cache.insert(token_key("refused"), Decision::Forbidden, now);
        cache.insert(token_key("unknown"), Decision::Unauthenticated, now);
        let later = now + Duration::from_secs(9);
        assert_eq!(
            cache.get(&token_key("allowed"), later),
            Some(Decision::Allowed)
        );
        assert_eq!(
            cache.get(&token_key("refused"), later),
            Some(Decision::Forbidden)
        );
        assert_eq!(
            cache.get(&token_key("unknown"), later),
            Some(Decision::Unauthenticated)
        );
        let after_refused_ttl = now + Duration::from_secs(10);
        assert_eq!(cache.get(&token_key("refused"), after_refused_ttl), None);
        assert_eq!(cache.get(&token_key("unknown"), after_refused_ttl), None);
        assert_eq!(
            cache.get(&token_key("allowed"), now + Duration::from_secs(59)),
            Some(Decision::Allowed)
        );
        assert_eq!(
            cache.get(&token_key("allowed"), now + Duration::from_secs(60)),
            None
        );
        assert_eq!(cache.get(&token_key("never seen"), now), None);
    }

    #[test]
    fn a_new_decision_replaces_the_old_one() {
        let mut cache = DecisionCache::default();
        let now = Instant::now();
        cache.insert(token_key("t"), Decision::Forbidden, now);
        cache.insert(
            token_key("t"),
            Decision::Allowed,
            now + Duration::from_secs(1),
        );
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.get(&token_key("t"), now + Duration::from_secs(30)),
            Some(Decision::Allowed)
        );
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let mut cache = DecisionCache::new(4, Duration::from_secs(60), Duration::from_secs(10));
        let start = Instant::now();
        for i in 0..100u64 {
            let at = start + Duration::from_millis(i);
            cache.insert(token_key(&i.to_string()), Decision::Allowed, at);
            assert!(cache.len() <= 4);
        }
        // The newest survive; the ones closest to expiry were dropped.
        let now = start + Duration::from_secs(1);
        assert_eq!(cache.get(&token_key("99"), now), Some(Decision::Allowed));
        assert_eq!(cache.get(&token_key("96"), now), Some(Decision::Allowed));
        assert_eq!(cache.get(&token_key("0"), now), None);
    }

    #[test]
    fn expired_entries_make_room_before_fresh_ones_go() {
        let mut cache = DecisionCache::new(2, Duration::from_secs(60), Duration::from_secs(10));
        let now = Instant::now();
        cache.insert(token_key("refused"), Decision::Forbidden, now);
        cache.insert(token_key("allowed"), Decision::Allowed, now);
        let later = now + Duration::from_secs(11);
        cache.insert(token_key("new"), Decision::Allowed, later);
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.get(&token_key("allowed"), later),
            Some(Decision::Allowed)
        );
        assert_eq!(cache.get(&token_key("new"), later), Some(Decision::Allowed));
    }

    #[test]
    fn a_zero_capacity_cache_keeps_nothing() {
        let mut cache = DecisionCache::new(0, Duration::from_secs(60), Duration::from_secs(10));
        let now = Instant::now();
        cache.insert(token_key("t"), Decision::Allowed, now);
        assert!(cache.is_empty());
    }
}
