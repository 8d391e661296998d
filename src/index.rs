//! Indexes kept from the watch streams, as pure synchronous state:
//! - [`KeyIndex`]: which GatewayApps hold which AppKey, for uniqueness (the
//!   oldest holder — by creation time, then uid — keeps a key);
//! - [`SourceIndex`]: which resources read which `…SecretFrom` Secret, so a
//!   change to that Secret re-reconciles them.
//!
//! Both answer "whom does this change affect?" so the controller can requeue
//! exactly those objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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
#[derive(Debug)]
pub struct Index<V: Ord + Clone + std::hash::Hash> {
    by_value: HashMap<V, BTreeSet<Holder>>,
    by_uid: HashMap<String, Entry<V>>,
    /// Objects seen during a re-list, swapped in when it ends.
    resync: Option<HashMap<String, Entry<V>>>,
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
            resync.insert(entry.holder.uid.clone(), entry.clone());
        }
        let old = self.by_uid.get(&entry.holder.uid).cloned();
        if old.as_ref() == Some(&entry) {
            return BTreeSet::new();
        }
        let affected = self.remove_uid(&entry.holder.uid);
        for value in &entry.values {
            self.by_value
                .entry(value.clone())
                .or_default()
                .insert(entry.holder.clone());
        }
        let mut affected = affected;
        for value in &entry.values {
            affected.extend(self.by_value.get(value).into_iter().flatten().cloned());
        }
        affected.remove(&entry.holder);
        self.by_uid.insert(entry.holder.uid.clone(), entry);
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
        if let Some(entry) = self.by_uid.remove(uid) {
            for value in &entry.values {
                if let Some(holders) = self.by_value.get_mut(value) {
                    holders.remove(&entry.holder);
                    affected.extend(holders.iter().cloned());
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
        self.resync = Some(HashMap::new());
    }

    pub fn end_resync(&mut self) -> BTreeSet<Holder> {
        let Some(seen) = self.resync.take() else {
            return BTreeSet::new();
        };
        let gone: Vec<String> = self
            .by_uid
            .keys()
            .filter(|uid| !seen.contains_key(*uid))
            .cloned()
            .collect();
        let mut affected = BTreeSet::new();
        for uid in gone {
            affected.extend(self.remove_uid(&uid));
        }
        affected
    }

    pub fn holders(&self, value: &V) -> impl Iterator<Item = &Holder> {
        self.by_value.get(value).into_iter().flatten()
    }

    /// The oldest holder of `value` other than `me`, if it is older than `me`.
    pub fn older_holder(&self, value: &V, me: &Holder) -> Option<&Holder> {
        self.holders(value)
            .find(|h| h.uid != me.uid)
            .filter(|h| *h < me)
    }

    pub fn len(&self) -> usize {
        self.by_uid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uid.is_empty()
    }
}

/// AppKeys held by GatewayApps (the custom key asked for and the key issued).
pub type KeyIndex = Index<String>;

/// `(namespace, Secret name)` of the `…SecretFrom` sources objects read.
pub type SourceIndex = Index<(String, String)>;

/// Groups holders by namespace, for callers that requeue per namespace.
pub fn by_namespace(holders: &BTreeSet<Holder>) -> BTreeMap<&str, Vec<&str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for h in holders {
        out.entry(h.namespace.as_str())
            .or_default()
            .push(h.name.as_str());
    }
    out
}

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
