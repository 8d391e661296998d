//! keysmith's finalizers, added and removed one at a time by JSON patches
//! that touch only keysmith's own entry: an add appends — guarded by the
//! resourceVersion it was decided on where several of keysmith's passes may
//! add the same finalizer at once (a connection many resources use: two
//! appends would list it twice; the loser is refused with 422 and looks
//! again); a removal first tests that the entry is still where it was seen.
//! Other writers' finalizers are never rewritten.
//!
//! Not kube-runtime's `finalizer` helper: that one puts its finalizer on
//! every object of the kind, and only resources with `spec.connectionRef`
//! (and the connections they use) may need one; an extra write for every
//! other object, and on upgrade, would break SPEC §5 and §8.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Patch;

/// Whether an add may race another pass adding the same finalizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adders {
    /// Only the object's own reconcile adds it (kube-runtime never runs two
    /// passes of one object at once).
    One,
    /// Several passes may: the add is guarded by the resourceVersion seen.
    Many,
}

/// The patch that makes `meta`'s finalizers hold `name` (`wanted`) or not;
/// `None` when they already do.
pub fn change(meta: &ObjectMeta, name: &str, wanted: bool, adders: Adders) -> Option<Patch<()>> {
    let finalizers = meta.finalizers.as_deref().unwrap_or_default();
    let at = finalizers.iter().position(|f| f == name);
    let add = match finalizers.is_empty() {
        true => serde_json::json!({"op": "add", "path": "/metadata/finalizers", "value": [name]}),
        false => serde_json::json!({"op": "add", "path": "/metadata/finalizers/-", "value": name}),
    };
    let seen = meta.resource_version.as_deref().unwrap_or_default();
    let guard =
        serde_json::json!({"op": "test", "path": "/metadata/resourceVersion", "value": seen});
    let operations = match (wanted, at, adders) {
        (true, None, Adders::One) => serde_json::json!([add]),
        (true, None, Adders::Many) => serde_json::json!([guard, add]),
        (false, Some(i), _) => serde_json::json!([
            {"op": "test", "path": format!("/metadata/finalizers/{i}"), "value": name},
            {"op": "remove", "path": format!("/metadata/finalizers/{i}")}
        ]),
        (true, Some(_), _) | (false, None, _) => return None,
    };
    // Well-formed by construction: fixed shapes of test, add and remove.
    serde_json::from_value(operations).ok().map(Patch::Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operations(patch: Option<Patch<()>>) -> serde_json::Value {
        match patch {
            Some(Patch::Json(p)) => serde_json::to_value(p).unwrap(),
            other => panic!("expected a JSON patch, got {other:?}"),
        }
    }

    fn meta(finalizers: &[&str]) -> ObjectMeta {
        ObjectMeta {
            finalizers: (!finalizers.is_empty())
                .then(|| finalizers.iter().map(|f| f.to_string()).collect()),
            resource_version: Some("42".into()),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn an_add_creates_the_list_or_appends_to_it() {
        let first = operations(change(&meta(&[]), "keysmith.dev/x", true, Adders::One));
        assert_eq!(first[0]["path"], "/metadata/finalizers");
        assert_eq!(first[0]["value"], serde_json::json!(["keysmith.dev/x"]));
        let theirs = meta(&["other.io/y"]);
        let appended = operations(change(&theirs, "keysmith.dev/x", true, Adders::One));
        assert_eq!(appended[0]["path"], "/metadata/finalizers/-");
    }

    #[test]
    fn an_add_that_may_race_is_guarded_by_the_version_seen() {
        let theirs = meta(&["other.io/y"]);
        let guarded = operations(change(&theirs, "keysmith.dev/x", true, Adders::Many));
        assert_eq!(guarded[0]["op"], "test");
        assert_eq!(guarded[0]["path"], "/metadata/resourceVersion");
        assert_eq!(guarded[0]["value"], "42");
        assert_eq!(guarded[1]["path"], "/metadata/finalizers/-");
    }

    #[test]
    fn a_removal_tests_the_entry_where_it_was_seen() {
        let list = meta(&["other.io/y", "keysmith.dev/x"]);
        let removal = operations(change(&list, "keysmith.dev/x", false, Adders::One));
        assert_eq!(removal[0]["op"], "test");
        assert_eq!(removal[0]["path"], "/metadata/finalizers/1");
        assert_eq!(removal[0]["value"], "keysmith.dev/x");
        assert_eq!(removal[1]["op"], "remove");
        assert_eq!(removal[1]["path"], "/metadata/finalizers/1");
    }

    #[test]
    fn nothing_to_do_is_no_patch() {
        let held = meta(&["keysmith.dev/x"]);
        assert!(change(&held, "keysmith.dev/x", true, Adders::One).is_none());
        assert!(change(&meta(&[]), "keysmith.dev/x", false, Adders::Many).is_none());
    }
}
