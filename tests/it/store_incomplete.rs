//! A create that dies between renaming its archive and its manifest into
//! place leaves an archive without a manifest. That archive holds real data,
//! so `list` shows it as incomplete (never hidden), and `delete NAME` removes
//! it after the usual confirmation — never following a symlink.

use std::path::Path;

use crate::support::*;

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn list(store: &Path, json: bool) -> Run {
    let w = ward().args(["snapshot", "list", "--store", &s(store)]);
    if json { w.arg_str("--json") } else { w }.ok()
}

#[test]
fn an_archive_without_its_manifest_is_listed_as_incomplete_and_deleted_by_name() {
    let mut c = cluster();
    c.stop().unwrap();
    let store = tempfile::tempdir().unwrap();
    let st = store.path();
    let datadir = c.dir().join("data");
    for name in ["keep", "cut"] {
        ward()
            .args(["snapshot", "create", name, "--store", &s(st), "--datadir"])
            .args([&datadir])
            .ok();
    }
    // What a crash between the two renames of a create leaves.
    std::fs::remove_file(st.join("cut.json")).unwrap();
    let archive_bytes = std::fs::metadata(st.join("cut.tar.zst")).unwrap().len();

    let human = list(st, false).stdout();
    let row = human
        .lines()
        .find(|l| l.starts_with("cut "))
        .unwrap_or_else(|| panic!("cut is not listed:\n{human}"));
    assert!(row.contains("INCOMPLETE"), "{row}");
    assert!(row.contains("ward snapshot delete cut"), "{row}");
    assert!(human.lines().any(|l| l.starts_with("keep ")), "{human}");

    let json = list(st, true).json();
    let incomplete = json["incomplete"].as_array().expect("an incomplete array");
    assert_eq!(incomplete.len(), 1, "{json}");
    assert_eq!(incomplete[0]["name"], "cut");
    assert_eq!(incomplete[0]["archive_bytes"], archive_bytes);
    let names: Vec<&str> = json["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, ["keep"]);

    // Using it says what it is and how to get rid of it.
    ward()
        .args(["snapshot", "verify", "cut", "--store", &s(st)])
        .run()
        .fails_with(2, "incomplete");
    ward()
        .args(["snapshot", "create", "cut", "--store", &s(st), "--datadir"])
        .args([&datadir])
        .run()
        .fails_with(2, "already exists");

    // Like every delete: no terminal and no --yes means nothing happens.
    ward()
        .args(["snapshot", "delete", "cut", "--store", &s(st)])
        .run()
        .fails_with(2, "--yes");
    assert!(st.join("cut.tar.zst").exists());
    ward()
        .args(["snapshot", "delete", "cut", "--yes", "--store", &s(st)])
        .ok();
    assert!(!st.join("cut.tar.zst").exists());
    assert!(!list(st, false).stdout().contains("cut"));
    // The name is free again, and the other snapshot untouched.
    ward()
        .args(["snapshot", "create", "cut", "--store", &s(st), "--datadir"])
        .args([&datadir])
        .ok();
    ward()
        .args(["snapshot", "verify", "keep", "--store", &s(st)])
        .ok();
}

#[test]
fn an_incomplete_archive_that_is_a_link_is_unlinked_and_its_target_kept() {
    let store = tempfile::tempdir().unwrap();
    let st = store.path();
    let outside = tempfile::tempdir().unwrap();
    let precious = outside.path().join("precious.tar.zst");
    std::fs::write(&precious, "patient rows").unwrap();
    std::os::unix::fs::symlink(&precious, st.join("linked.tar.zst")).unwrap();
    // A dangling link is listed too: it still takes the name.
    std::os::unix::fs::symlink(outside.path().join("gone"), st.join("dangling.tar.zst")).unwrap();

    let json = list(st, true).json();
    let mut names: Vec<&str> = json["incomplete"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["dangling", "linked"], "{json}");

    for name in ["linked", "dangling"] {
        ward()
            .args(["snapshot", "delete", name, "--yes", "--store", &s(st)])
            .ok();
        let link = st.join(format!("{name}.tar.zst"));
        assert!(std::fs::symlink_metadata(&link).is_err(), "{name}");
    }
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "patient rows");
}

#[test]
fn a_failed_directory_sync_after_the_manifest_is_placed_is_a_warning_not_a_failure() {
    let mut c = cluster();
    c.stop().unwrap();
    let store = tempfile::tempdir().unwrap();
    let st = store.path();
    // The directory fsync after the manifest's rename fails (as with ENOSPC).
    let made = ward()
        .args([
            "snapshot",
            "create",
            "synced",
            "--store",
            &s(st),
            "--datadir",
        ])
        .args([c.dir().join("data")])
        .env("WARD_FAULT", "store:sync-after-manifest")
        .run();
    assert_eq!(made.code(), 0, "{}", made.stderr());
    assert!(
        made.stderr().contains("injected fault"),
        "{}",
        made.stderr()
    );
    assert!(made.stderr().contains("is in place"), "{}", made.stderr());
    assert!(!made.stderr().contains("no snapshot was kept"));
    // What the command said matches the disk: the snapshot is whole.
    ward()
        .args(["snapshot", "verify", "synced", "--store", &s(st)])
        .ok();
}
