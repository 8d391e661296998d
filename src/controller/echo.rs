//! Own-write bookkeeping: telling our own writes, coming back through the
//! watches, from news.
//!
//! **Invariant.** For each object, at most one record: the resourceVersion
//! that keysmith's *last* write of it returned (a Secret by namespace/name,
//! a status by the resource's uid). A watch event carrying exactly that
//! version is our own write coming back, not news: it triggers nothing, and
//! the record is dropped as it is seen, so a later event of the same
//! version is news again and no record outlives its echo. A record only
//! ever suppresses the one event of the version we wrote; everything else
//! (another writer, an older or newer version) is news.
//!
//! Two uses besides: a status record that the cache has not shown yet means
//! a cached status may lag behind our own write (read it fresh before
//! deciding), and its presence says this process has issued the object.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::Resource;

use super::lock;

#[derive(Debug, Default)]
pub struct OwnWrites {
    /// By `namespace/name`.
    secrets: Mutex<HashMap<String, String>>,
    /// By the resource's uid.
    statuses: Mutex<HashMap<String, String>>,
}

fn secret_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn uid_of(object: &impl Resource) -> &str {
    object.meta().uid.as_deref().unwrap_or_default()
}

/// Whether `object` is exactly the version recorded under `key`, taking
/// the record if so (an echo is seen once).
fn take(records: &Mutex<HashMap<String, String>>, key: &str, object: &impl Resource) -> bool {
    let mut records = lock(records);
    let seen = records
        .get(key)
        .is_some_and(|rv| Some(rv) == object.meta().resource_version.as_ref());
    if seen {
        records.remove(key);
    }
    seen
}

impl OwnWrites {
    /// We wrote this Secret; the apiserver returned version `rv`.
    pub fn secret_written(&self, namespace: &str, name: &str, rv: String) {
        lock(&self.secrets).insert(secret_key(namespace, name), rv);
    }

    /// A pass reads the Secret anew: no echo of an earlier write is awaited
    /// (and none is kept for a Secret whose echo came before its record).
    pub fn forget_secret(&self, namespace: &str, name: &str) {
        lock(&self.secrets).remove(&secret_key(namespace, name));
    }

    /// Whether this Secret event is our own last write coming back; if so
    /// the record is taken (`take`: this changes state, as the invariant asks).
    pub fn take_secret_echo(&self, namespace: &str, name: &str, secret: &impl Resource) -> bool {
        take(&self.secrets, &secret_key(namespace, name), secret)
    }

    /// We wrote this object's status; the apiserver returned version `rv`.
    pub fn status_written(&self, object: &impl Resource, rv: String) {
        lock(&self.statuses).insert(uid_of(object).to_string(), rv);
    }

    /// Whether this object (as the cache now shows it) is our own last
    /// status write; if so the record is taken: from then on a difference
    /// is real.
    pub fn take_status_echo(&self, object: &impl Resource) -> bool {
        take(&self.statuses, uid_of(object), object)
    }

    /// We wrote a status the cached `object` does not show yet.
    pub fn status_lags(&self, object: &impl Resource) -> bool {
        lock(&self.statuses)
            .get(uid_of(object))
            .is_some_and(|rv| object.meta().resource_version.as_ref() != Some(rv))
    }

    /// The object as read fresh from the apiserver: if it is not the version
    /// of our last status write, a later write came after ours and the record
    /// is dropped (its echo may never be seen alone, after a re-list; kept,
    /// it would make every pass read fresh). Its echo, if it still comes, is
    /// then news: one pass that writes nothing.
    pub fn status_read_fresh(&self, fresh: &impl Resource) {
        let mut records = lock(&self.statuses);
        let ours = records.get(uid_of(fresh));
        if ours.is_some_and(|rv| fresh.meta().resource_version.as_ref() != Some(rv)) {
            records.remove(uid_of(fresh));
        }
    }

    /// This process has written the object's status (so it has issued it).
    pub fn has_status_record(&self, object: &impl Resource) -> bool {
        lock(&self.statuses).contains_key(uid_of(object))
    }

    /// The object is gone.
    pub fn forget_object(&self, object: &impl Resource) {
        lock(&self.statuses).remove(uid_of(object));
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Secret;
    use kube::core::PartialObjectMeta;

    use super::*;

    fn secret_at(rv: &str) -> PartialObjectMeta<Secret> {
        let mut secret = PartialObjectMeta::<Secret>::default();
        secret.metadata.resource_version = Some(rv.into());
        secret
    }

    fn object(uid: &str, rv: &str) -> PartialObjectMeta<Secret> {
        let mut object = secret_at(rv);
        object.metadata.uid = Some(uid.into());
        object
    }

    #[test]
    fn only_the_exact_version_we_wrote_is_our_own_echo_and_only_once() {
        let writes = OwnWrites::default();
        writes.secret_written("ns", "s", "7".into());
        assert!(
            !writes.take_secret_echo("ns", "s", &secret_at("6")),
            "older: news"
        );
        assert!(
            !writes.take_secret_echo("ns", "other", &secret_at("7")),
            "another Secret"
        );
        assert!(writes.take_secret_echo("ns", "s", &secret_at("7")));
        assert!(
            !writes.take_secret_echo("ns", "s", &secret_at("7")),
            "the record is gone once seen: a later event of the same version is news"
        );
    }

    #[test]
    fn a_forgotten_secret_write_is_news() {
        let writes = OwnWrites::default();
        writes.secret_written("ns", "s", "7".into());
        writes.forget_secret("ns", "s");
        assert!(!writes.take_secret_echo("ns", "s", &secret_at("7")));
    }

    #[test]
    fn a_status_lags_until_the_cache_shows_our_write() {
        let writes = OwnWrites::default();
        assert!(!writes.status_lags(&object("u", "3")), "never written");
        writes.status_written(&object("u", "3"), "5".into());
        assert!(writes.has_status_record(&object("u", "3")));
        assert!(writes.status_lags(&object("u", "3")));
        assert!(!writes.take_status_echo(&object("u", "4")));
        assert!(writes.take_status_echo(&object("u", "5")));
        assert!(!writes.status_lags(&object("u", "5")));
        assert!(!writes.has_status_record(&object("u", "5")));
        writes.status_written(&object("u", "5"), "6".into());
        writes.status_read_fresh(&object("u", "6"));
        assert!(
            writes.status_lags(&object("u", "5")),
            "fresh and ours: kept"
        );
        writes.status_read_fresh(&object("u", "7"));
        assert!(
            !writes.has_status_record(&object("u", "7")),
            "a later write came after ours: the record goes"
        );
        writes.status_written(&object("u", "7"), "8".into());
        writes.forget_object(&object("u", "8"));
        assert!(!writes.has_status_record(&object("u", "8")));
    }
}
