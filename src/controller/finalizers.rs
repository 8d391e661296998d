//! keysmith's finalizers, added and removed one at a time by JSON patches
//! that touch only keysmith's own entry: an add appends, a removal first
//! tests that the entry is still where it was seen. Other writers'
//! finalizers are never rewritten.
//!
//! Not kube-runtime's `finalizer` helper: that one puts its finalizer on
//! every object of the kind, and only resources with `spec.connectionRef`
//! (and the connections they use) may need one; an extra write for every
//! other object, and on upgrade, would break SPEC §5 and §8.

use kube::api::Patch;

/// The patch that makes `finalizers` hold `name` (`wanted`) or not; `None`
/// when they already do.
pub fn change(finalizers: &[String], name: &str, wanted: bool) -> Option<Patch<()>> {
    let at = finalizers.iter().position(|f| f == name);
    let operations = match (wanted, at) {
        (true, None) if finalizers.is_empty() => serde_json::json!([
            {"op": "add", "path": "/metadata/finalizers", "value": [name]}
        ]),
        (true, None) => serde_json::json!([
            {"op": "add", "path": "/metadata/finalizers/-", "value": name}
        ]),
        (false, Some(i)) => serde_json::json!([
            {"op": "test", "path": format!("/metadata/finalizers/{i}"), "value": name},
            {"op": "remove", "path": format!("/metadata/finalizers/{i}")}
        ]),
        (true, Some(_)) | (false, None) => return None,
    };
    // Well-formed by construction: three fixed shapes of add, test, remove.
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

    #[test]
    fn an_add_creates_the_list_or_appends_to_it() {
        let first = operations(change(&[], "keysmith.dev/x", true));
        assert_eq!(first[0]["path"], "/metadata/finalizers");
        assert_eq!(first[0]["value"], serde_json::json!(["keysmith.dev/x"]));
        let theirs = ["other.io/y".to_string()];
        let appended = operations(change(&theirs, "keysmith.dev/x", true));
        assert_eq!(appended[0]["path"], "/metadata/finalizers/-");
    }

    #[test]
    fn a_removal_tests_the_entry_where_it_was_seen() {
        let list = ["other.io/y".to_string(), "keysmith.dev/x".to_string()];
        let removal = operations(change(&list, "keysmith.dev/x", false));
        assert_eq!(removal[0]["op"], "test");
        assert_eq!(removal[0]["path"], "/metadata/finalizers/1");
        assert_eq!(removal[0]["value"], "keysmith.dev/x");
        assert_eq!(removal[1]["op"], "remove");
        assert_eq!(removal[1]["path"], "/metadata/finalizers/1");
    }

    #[test]
    fn nothing_to_do_is_no_patch() {
        let list = ["keysmith.dev/x".to_string()];
        assert!(change(&list, "keysmith.dev/x", true).is_none());
        assert!(change(&[], "keysmith.dev/x", false).is_none());
    }
}
