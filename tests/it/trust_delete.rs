//! `snapshot delete NAME` on a snapshot whose manifest ward refuses as
//! damaged (unreadable, or copied under another name): it deletes that
//! name's own two files in the store, asks first like any delete, and never
//! follows anything the manifest says or a link points at.

use std::path::Path;

use crate::support::*;

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn delete(store: &Path, name: &str, yes: bool) -> Run {
    let w = ward().args(["snapshot", "delete", name, "--store", &s(store)]);
    if yes { w.arg_str("--yes") } else { w }.run()
}

#[test]
fn a_damaged_snapshot_is_deleted_by_name_and_only_its_own_files_go() {
    // A good snapshot "keep" that the damaged ones point at.
    let mut c = cluster();
    c.stop().unwrap();
    let store = tempfile::tempdir().unwrap();
    let st = store.path();
    ward()
        .args(["snapshot", "create", "keep", "--store", &s(st), "--datadir"])
        .args([c.dir().join("data")])
        .ok();
    // An unreadable manifest.
    std::fs::write(st.join("broken.json"), "{ not json").unwrap();
    std::fs::write(st.join("broken.tar.zst"), "junk").unwrap();
    // keep.* copied under another name: the manifest names keep's files.
    std::fs::copy(st.join("keep.json"), st.join("copy.json")).unwrap();
    std::fs::copy(st.join("keep.tar.zst"), st.join("copy.tar.zst")).unwrap();
    // A damaged manifest that is a link to a file outside the store.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("precious.json"), "{ patient rows").unwrap();
    std::os::unix::fs::symlink(outside.path().join("precious.json"), st.join("linked.json"))
        .unwrap();

    // Like every delete: no terminal and no --yes means nothing happens.
    delete(st, "broken", false).fails_with(2, "--yes");
    assert!(st.join("broken.json").exists() && st.join("broken.tar.zst").exists());

    for name in ["broken", "copy", "linked"] {
        let r = delete(st, name, true);
        assert_eq!(r.code(), 0, "{name}: {}", r.stderr());
        assert!(!st.join(format!("{name}.json")).exists(), "{name}");
        assert!(!st.join(format!("{name}.tar.zst")).exists(), "{name}");
    }
    assert_eq!(
        std::fs::read_to_string(outside.path().join("precious.json")).unwrap(),
        "{ patient rows"
    );
    // The snapshot the copy named is whole and still verifies.
    ward()
        .args(["snapshot", "verify", "keep", "--store", &s(st)])
        .ok();
    let left: Vec<String> = files(st)
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(left, ["keep.json", "keep.tar.zst"]);
    // A name that is not there is still a usage error.
    delete(st, "nothing", true).fails_with(2, "no snapshot named");
}
