//! Values a Django migration assigns anew on every run (sequence ids,
//! `uuid4()`, `timezone.now()` from a RunPython) are no round-trip failure
//! and no time-zone dependence. The migrations live in
//! tests/fixtures/django_volatile and are copied into a private copy of the
//! fixture project.

use crate::support::check::{findings, report};
use crate::support::django::{check, early_database, project};
use crate::support::*;

#[test]
fn values_assigned_anew_on_reapply_are_neither_round_trip_failures_nor_zone_dependence() {
    let c = cluster();
    let proj = project();
    let url = early_database(&c, proj.path());
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/django_volatile");
    for name in ["0009_volatile_rows.py", "0010_after_volatile.py"] {
        std::fs::copy(
            fixture.join(name),
            proj.path().join("records/migrations").join(name),
        )
        .unwrap();
    }
    let r = check(proj.path(), &url, "json");
    let j = report(&r);
    let runs: Vec<&str> = j["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert!(
        runs.contains(&"records/migrations/0009_volatile_rows.py"),
        "{runs:?}"
    );
    // 0007 drops the fax numbers: the round trip fails as a whole and goes
    // migration by migration, through 0009's re-apply and the ones after.
    let down = findings(&j, "down-migration");
    assert!(
        down.iter()
            .any(|f| f["file"] == "records/migrations/0007_drop_fax.py"),
        "the step-by-step pass did not run: {down:#?}"
    );
    for f in &down {
        let file = f["file"].as_str().unwrap_or("");
        let message = f["message"].as_str().unwrap_or("");
        let ours = file.contains("0009") || file.contains("0010") || file.starts_with("billing/");
        let volatile = message.contains("records_practice") || message.contains("records_token");
        assert!(!ours && !volatile, "a false round-trip finding: {f:#}");
    }
    for f in findings(&j, "timezone-dependent") {
        assert!(
            !f["object"].as_str().unwrap_or("").contains("records_token"),
            "uuid4()/timezone.now() are no zone dependence: {f:#}"
        );
    }
}

/// The time-zone run compares tables by oid, so only a table that was there
/// before the window (the same oid in both clones) can show a volatile fill:
/// 0009_stamp_rows writes `timezone.now()` and `uuid4()` into new columns of
/// records_encounter, and the encounter's local date, which does depend on
/// the zone. Without counting a Python-written time or UUID column as a
/// volatile fill, reviewed_at and public_id would be reported too.
#[test]
fn python_written_times_and_uuids_in_existing_tables_are_no_zone_dependence() {
    let c = cluster();
    let proj = project();
    let url = early_database(&c, proj.path());
    assert!(int(&url, "SELECT count(*) FROM records_encounter") > 20);
    let name = "0009_stamp_rows.py";
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/django_volatile")
            .join(name),
        proj.path().join("records/migrations").join(name),
    )
    .unwrap();
    let r = check(proj.path(), &url, "json");
    let j = report(&r);
    let runs: Vec<&str> = j["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert!(
        runs.contains(&"records/migrations/0009_stamp_rows.py"),
        "{runs:?}"
    );
    let zone: Vec<&str> = findings(&j, "timezone-dependent")
        .iter()
        .map(|f| f["object"].as_str().unwrap_or(""))
        .collect();
    // The run under another zone ran and compared: the local date differs.
    assert_eq!(zone, ["records_encounter.local_day"], "{j:#}");
    // Irreversible (a RunPython without reverse): no round trip by default.
    assert!(findings(&j, "down-migration").is_empty(), "{j:#}");
}
