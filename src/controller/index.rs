//! Indexes kept from the watch streams, as pure synchronous state:
//! - [`KeyIndex`]: which GatewayApps hold which AppKey, for uniqueness (the
//!   oldest holder — by creation time, then uid — keeps a key);
//! - [`SourceIndex`]: which resources read which `…SecretFrom` Secret, so a
//!   change to that Secret re-reconciles them.
//!
//! Both answer "whom does this change affect?" so the controller can requeue
//! exactly those objects.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

/// An object, ordered oldest first (creation time, then uid).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Holder {
    pub created: Option<Timestamp>,
    pub uid: String,
    pub namespace: String,
    pub name: String,
}

impl Holder {
    pub fn display(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// What one object contributes to an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<V> {
    pub holder: Holder,
    pub values: BTreeSet<V>,
}

/// A many-to-many index from values to the objects that hold them, keyed by uid.
///
/// Kept compact, since it has an entry per watched object: holders are shared
/// (`Arc`), value lists are small sorted `Vec`s rather than B-trees (a one-element
/// `BTreeSet` allocates a whole node), and objects holding no value are not stored.
#[derive(Debug)]
pub struct Index<V: Ord + Clone + std::hash::Hash> {
    /// Holders of each value, oldest first.
    by_value: HashMap<V, Vec<Arc<Holder>>>,
    by_uid: HashMap<String, Stored<V>>,
    /// Uids seen during a re-list; objects not among them are dropped when it ends.
    resync: Option<HashSet<String>>,
}

#[derive(Debug)]
struct Stored<V> {
    holder: Arc<Holder>,
    /// Sorted and unique.
    values: Vec<V>,
}

impl<V: Ord + Clone + std::hash::Hash> Default for Index<V> {
    fn default() -> Self {
        Index {
            by_value: HashMap::new(),
            by_uid: HashMap::new(),
            resync: None,
        }
    }
}

impl<V: Ord + Clone + std::hash::Hash> Index<V> {
    /// Records an object's current values; returns the other holders of any
    /// value it gained or lost (they may need another look).
    pub fn upsert(&mut self, entry: Entry<V>) -> BTreeSet<Holder> {
        if let Some(resync) = &mut self.resync {
            resync.insert(entry.holder.uid.clone());
        }
        if let Some(old) = self.by_uid.get(&entry.holder.uid)
            && *old.holder == entry.holder
            && old.values.iter().eq(entry.values.iter())
        {
            return BTreeSet::new();
        }
        let mut affected = self.remove_uid(&entry.holder.uid);
        if entry.values.is_empty() {
            return affected;
        }
        let holder = Arc::new(entry.holder);
        let values: Vec<V> = entry.values.into_iter().collect();
        for value in &values {
            let holders = self.by_value.entry(value.clone()).or_default();
            let at = holders.partition_point(|h| **h < *holder);
            holders.insert(at, holder.clone());
            affected.extend(holders.iter().map(|h| (**h).clone()));
        }
        affected.remove(&*holder);
        self.by_uid
            .insert(holder.uid.clone(), Stored { holder, values });
        affected
    }

    /// Forgets an object; returns the remaining holders of its values.
    pub fn remove(&mut self, uid: &str) -> BTreeSet<Holder> {
        if let Some(resync) = &mut self.resync {
            resync.remove(uid);
        }
        self.remove_uid(uid)
    }

    fn remove_uid(&mut self, uid: &str) -> BTreeSet<Holder> {
        let mut affected = BTreeSet::new();
        if let Some(stored) = self.by_uid.remove(uid) {
            for value in &stored.values {
                if let Some(holders) = self.by_value.get_mut(value) {
                    holders.retain(|h| h.uid != uid);
                    affected.extend(holders.iter().map(|h| (**h).clone()));
                    if holders.is_empty() {
                        self.by_value.remove(value);
                    }
                }
            }
        }
        affected
    }

    /// A re-list starts: objects not seen again before [`Self::end_resync`] are gone.
    pub fn begin_resync(&mut self) {
        self.resync = Some(HashSet::new());
    }

    pub fn end_resync(&mut self) -> BTreeSet<Holder> {
        let Some(seen) = self.resync.take() else {
            return BTreeSet::new();
        };
        let gone: Vec<String> = self
            .by_uid
            .keys()
            .filter(|uid| !seen.contains(*uid))
            .cloned()
            .collect();
        let mut affected = BTreeSet::new();
        for uid in gone {
            affected.extend(self.remove_uid(&uid));
        }
        affected
    }

    /// Holders of `value`, oldest first.
    pub fn holders(&self, value: &V) -> impl Iterator<Item = &Holder> {
        self.by_value.get(value).into_iter().flatten().map(|h| &**h)
    }

    /// The oldest holder of `value` other than `me`, if it is older than `me`.
    pub fn older_holder(&self, value: &V, me: &Holder) -> Option<&Holder> {
        self.holders(value)
            .find(|h| h.uid != me.uid)
            .filter(|h| *h < me)
    }

    /// Objects holding at least one value.
    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }
}

/// AppKeys held by GatewayApps (the custom key asked for and the key issued).
pub type KeyIndex = Index<String>;

/// Who holds `key` against `me` (SPEC §5, Uniqueness): whoever has issued
/// it keeps it (the oldest of them, should several have); among claimants of
/// a key nobody has issued, the oldest. `None` when `me` may have it.
/// `mine`: `me` has issued it; `issued(h)`: holder `h` has (every issuer is
/// among the index's holders of its key, so no second index is kept).
pub fn key_holder<'a>(
    claims: &'a KeyIndex,
    key: &String,
    me: &Holder,
    mine: bool,
    issued: &dyn Fn(&Holder) -> bool,
) -> Option<&'a Holder> {
    let mut issuers = claims.holders(key).filter(|h| h.uid != me.uid && issued(h));
    match issuers.next() {
        Some(issuer) => (!mine || *issuer < *me).then_some(issuer),
        None if mine => None,
        None => claims.older_holder(key, me),
    }
}

/// `(namespace, Secret name)` of the `…SecretFrom` sources objects read.
pub type SourceIndex = Index<(String, String)>;

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(name: &str, created: i64) -> Holder {
        Holder {
            created: Timestamp::from_second(created).ok(),
            uid: format!("uid-{name}"),
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    fn entry(h: &Holder, keys: &[&str]) -> Entry<String> {
        Entry {
            holder: h.clone(),
            values: keys.iter().map(|k| k.to_string()).collect(),
        }
    }

    #[test]
    fn the_oldest_holder_keeps_a_key() {
        let mut index = KeyIndex::default();
        let old = holder("old", 10);
        let new = holder("new", 20);
        index.upsert(entry(&old, &["k"]));
        let affected = index.upsert(entry(&new, &["k"]));
        assert_eq!(affected, BTreeSet::from([old.clone()]));
        assert_eq!(index.older_holder(&"k".into(), &new), Some(&old));
        assert_eq!(index.older_holder(&"k".into(), &old), None);
    }

    #[test]
    fn whoever_issued_a_key_keeps_it_against_older_claimants() {
        let mut claims = KeyIndex::default();
        let old = holder("old", 10);
        let new = holder("new", 20);
        // `new` issued k; `old`, long existing, is edited to claim it.
        claims.upsert(entry(&new, &["k"]));
        claims.upsert(entry(&old, &["k"]));
        let k = "k".to_string();
        let new_issued = |h: &Holder| h.name == "new";
        assert_eq!(
            key_holder(&claims, &k, &old, false, &new_issued),
            Some(&new)
        );
        assert_eq!(key_holder(&claims, &k, &new, true, &new_issued), None);
        // Nobody issued it: the oldest claimant.
        let nobody = |_: &Holder| false;
        assert_eq!(key_holder(&claims, &k, &new, false, &nobody), Some(&old));
        assert_eq!(key_holder(&claims, &k, &old, false, &nobody), None);
    }

    #[test]
    fn of_two_issuers_of_one_key_the_older_keeps_it() {
        let mut claims = KeyIndex::default();
        let old = holder("old", 10);
        let new = holder("new", 20);
        claims.upsert(entry(&old, &["k"]));
        claims.upsert(entry(&new, &["k"]));
        let k = "k".to_string();
        let both = |_: &Holder| true;
        assert_eq!(key_holder(&claims, &k, &new, true, &both), Some(&old));
        assert_eq!(key_holder(&claims, &k, &old, true, &both), None);
    }

    #[test]
    fn ties_on_creation_time_fall_to_the_uid() {
        let mut index = KeyIndex::default();
        let a = Holder {
            uid: "a".into(),
            ..holder("x", 10)
        };
        let b = Holder {
            uid: "b".into(),
            ..holder("y", 10)
        };
        index.upsert(entry(&b, &["k"]));
        index.upsert(entry(&a, &["k"]));
        assert_eq!(index.older_holder(&"k".into(), &b), Some(&a));
    }

    #[test]
    fn removing_or_changing_the_holder_frees_the_key_and_names_who_waits() {
        let mut index = KeyIndex::default();
        let old = holder("old", 10);
        let new = holder("new", 20);
        index.upsert(entry(&old, &["k"]));
        index.upsert(entry(&new, &["k"]));
        let affected = index.upsert(entry(&old, &["other"]));
        assert_eq!(affected, BTreeSet::from([new.clone()]));
        assert_eq!(index.older_holder(&"k".into(), &new), None);
        index.upsert(entry(&old, &["k"]));
        assert_eq!(index.remove(&old.uid), BTreeSet::from([new.clone()]));
        assert_eq!(index.older_holder(&"k".into(), &new), None);
    }

    #[test]
    fn an_unchanged_upsert_affects_nobody() {
        let mut index = KeyIndex::default();
        let a = holder("a", 1);
        let b = holder("b", 2);
        index.upsert(entry(&a, &["k"]));
        index.upsert(entry(&b, &["k"]));
        assert!(index.upsert(entry(&b, &["k"])).is_empty());
    }

    #[test]
    fn objects_without_values_are_not_stored() {
        let mut index = KeyIndex::default();
        let a = holder("a", 1);
        index.upsert(entry(&a, &[]));
        assert!(index.is_empty());
        index.upsert(entry(&a, &["k"]));
        assert_eq!(index.len(), 1);
        index.upsert(entry(&a, &[]));
        assert!(index.is_empty());
        assert_eq!(index.holders(&"k".into()).count(), 0);
    }

    #[test]
    fn a_relist_drops_objects_deleted_while_disconnected() {
        let mut index = KeyIndex::default();
        let a = holder("a", 1);
        let b = holder("b", 2);
        index.upsert(entry(&a, &["k"]));
        index.upsert(entry(&b, &["k"]));
        index.begin_resync();
        index.upsert(entry(&b, &["k"]));
        let affected = index.end_resync();
        assert_eq!(affected, BTreeSet::from([b.clone()]));
        assert_eq!(index.len(), 1);
        assert_eq!(index.older_holder(&"k".into(), &b), None);
    }
}
