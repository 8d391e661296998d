//! Which Secrets exist, as far as the metadata watch has shown: lets the
//! first issue of a resource skip reading a Secret that is not there.
//!
//! Kept small, since it holds every Secret in the watched namespaces: a
//! 64-bit hash of namespace and name per Secret. A collision can only make a
//! Secret look present, which costs one read, never a wrong decision.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

/// The Secrets a re-list found gone, as [`SecretNames`] keys them.
#[derive(Debug, Default)]
pub struct Vanished(HashSet<u64>);

impl Vanished {
    pub fn contains(&self, namespace: &str, name: &str) -> bool {
        self.0.contains(&key(namespace, name))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Default)]
pub struct SecretNames {
    names: HashSet<u64>,
    /// Secrets seen during a re-list; `None` when no re-list is under way.
    relist: Option<HashSet<u64>>,
    /// A complete list has been seen.
    synced: bool,
}

fn key(namespace: &str, name: &str) -> u64 {
    // Fixed keys: the same Secret always hashes the same within a process.
    let mut hasher = DefaultHasher::new();
    (namespace, name).hash(&mut hasher);
    hasher.finish()
}

impl SecretNames {
    /// A (re-)list begins.
    pub fn begin_relist(&mut self) {
        self.relist = Some(HashSet::new());
    }

    pub fn insert(&mut self, namespace: &str, name: &str) {
        let key = key(namespace, name);
        self.names.insert(key);
        if let Some(relist) = &mut self.relist {
            relist.insert(key);
        }
    }

    pub fn remove(&mut self, namespace: &str, name: &str) {
        let key = key(namespace, name);
        self.names.remove(&key);
        if let Some(relist) = &mut self.relist {
            relist.remove(&key);
        }
    }

    /// The list is complete: Secrets it did not show are gone. Returns them:
    /// deleted while the watch was down, they came with no delete event.
    pub fn end_relist(&mut self) -> Vanished {
        let Some(relist) = self.relist.take() else {
            return Vanished::default();
        };
        let vanished = self.names.difference(&relist).copied().collect();
        self.names = relist;
        self.names.shrink_to_fit();
        self.synced = true;
        Vanished(vanished)
    }

    /// True only when a complete list is known and shows no such Secret.
    /// During a re-list (after a watch broke) the answer is false: Secrets
    /// created while the watch was down may not have been seen yet.
    pub fn surely_absent(&self, namespace: &str, name: &str) -> bool {
        self.synced && self.relist.is_none() && !self.names.contains(&key(namespace, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_surely_absent_before_the_first_complete_list() {
        let mut names = SecretNames::default();
        assert!(!names.surely_absent("ns", "a"));
        names.begin_relist();
        names.insert("ns", "b");
        assert!(!names.surely_absent("ns", "a"), "list not complete yet");
        names.end_relist();
        assert!(names.surely_absent("ns", "a"));
        assert!(!names.surely_absent("ns", "b"));
        assert!(names.surely_absent("other", "b"), "namespaces are apart");
    }

    #[test]
    fn watch_events_keep_the_set_current() {
        let mut names = SecretNames::default();
        names.begin_relist();
        names.end_relist();
        names.insert("ns", "a");
        assert!(!names.surely_absent("ns", "a"));
        names.remove("ns", "a");
        assert!(names.surely_absent("ns", "a"));
    }

    #[test]
    fn a_relist_forgets_what_it_did_not_show_and_answers_nothing_meanwhile() {
        let mut names = SecretNames::default();
        names.begin_relist();
        names.insert("ns", "gone");
        names.insert("ns", "kept");
        names.end_relist();
        names.begin_relist();
        names.insert("ns", "kept");
        assert!(
            !names.surely_absent("ns", "new"),
            "unknown during a re-list"
        );
        let vanished = names.end_relist();
        assert!(names.surely_absent("ns", "gone"));
        assert!(!names.surely_absent("ns", "kept"));
        assert!(vanished.contains("ns", "gone"), "gone with no delete event");
        assert!(!vanished.contains("ns", "kept"));
        assert!(!vanished.contains("ns", "new"));
    }

    #[test]
    fn the_first_list_and_deletions_seen_as_events_vanish_nothing() {
        let mut names = SecretNames::default();
        names.begin_relist();
        names.insert("ns", "a");
        assert!(names.end_relist().is_empty(), "nothing known before");
        names.insert("ns", "b");
        names.begin_relist();
        names.insert("ns", "a");
        names.insert("ns", "b");
        names.remove("ns", "b");
        let vanished = names.end_relist();
        assert!(
            !vanished.contains("ns", "b"),
            "its delete event told the listeners already"
        );
        assert!(!vanished.contains("ns", "a"));
        assert!(names.end_relist().is_empty(), "no re-list under way");
    }
}
