//! The down-migration round trip exercises every down in the window, reports
//! each failing down with its own finding, and blames each difference on the
//! down responsible (D4) — not on the oldest pending one. Real throwaway
//! clusters seeded with ward's patient records.

use crate::support::check::{findings, migrations, report};
use crate::support::*;
use serde_json::Value;

const PATIENTS: &str = "100";

fn check(files: &[(&str, &str)]) -> (i32, Value) {
    let c = cluster();
    let url = c.url("postgres");
    let d = migrations(files);
    let r = ward()
        .db(&url)
        .args([
            "check",
            "--format",
            "json",
            "-n",
            PATIENTS,
            "--timezone-check",
            "false",
            "--migrations",
        ])
        .args([d.path().join("migrations")])
        .run();
    (r.code(), report(&r))
}

fn down_findings(j: &Value) -> Vec<(String, String)> {
    findings(j, "down-migration")
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap_or("").to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_down_in_the_window_is_exercised_and_blamed_on_its_own_file() {
    let (code, j) = check(&[
        // A down that fails: the column it drops does not exist.
        (
            "1_nick.up.sql",
            "ALTER TABLE patients ADD COLUMN nickname text;\n",
        ),
        (
            "1_nick.down.sql",
            "ALTER TABLE patients DROP COLUMN nick;\n",
        ),
        // A down that leaves the column behind.
        (
            "2_note.up.sql",
            "ALTER TABLE appointments ADD COLUMN note text;\nUPDATE appointments SET note = 'seen';\n",
        ),
        ("2_note.down.sql", "SELECT 1;\n"),
        // A clean pair.
        ("3_tags.up.sql", "CREATE TABLE tags (id int PRIMARY KEY);\n"),
        ("3_tags.down.sql", "DROP TABLE tags;\n"),
    ]);
    assert_eq!(code, 1, "{j:#}");
    let f = down_findings(&j);
    // The failing down of the oldest migration does not hide the others.
    assert!(
        f.iter()
            .any(|(file, m)| file == "migrations/1_nick.down.sql" && m.contains("42703")),
        "{f:#?}"
    );
    // The residue of 2's down is blamed on 2's down, in both directions.
    assert!(
        f.iter()
            .any(|(file, m)| file == "migrations/2_note.down.sql"
                && m.contains(
                    "up → down does not give back the original: extra column appointments.note"
                )),
        "{f:#?}"
    );
    assert!(
        f.iter().any(|(_, m)| m.contains(
            "cannot be applied again after its down migration migrations/2_note.down.sql"
        )),
        "{f:#?}"
    );
    // Nothing is blamed on the clean pair, and no difference on 1's down.
    assert!(
        !f.iter()
            .any(|(file, m)| file.contains("3_tags") || m.contains("3_tags")),
        "{f:#?}"
    );
    assert!(
        !f.iter()
            .any(|(file, m)| file == "migrations/1_nick.down.sql" && !m.contains("42703")),
        "{f:#?}"
    );
    // The seed check still ran on the migrated schema.
    assert!(findings(&j, "seed-broken").is_empty(), "{j:#}");
}

#[test]
fn a_lossy_down_is_blamed_on_itself_not_on_the_oldest_pending_down() {
    let (code, j) = check(&[
        ("1_tags.up.sql", "CREATE TABLE tags (id int PRIMARY KEY);\n"),
        ("1_tags.down.sql", "DROP TABLE tags;\n"),
        (
            "2_mobile.up.sql",
            "ALTER TABLE patients RENAME COLUMN phone TO mobile;\n",
        ),
        (
            "2_mobile.down.sql",
            "ALTER TABLE patients DROP COLUMN mobile;\nALTER TABLE patients ADD COLUMN phone text;\n",
        ),
    ]);
    assert_eq!(code, 1, "{j:#}");
    let f = down_findings(&j);
    assert!(!f.is_empty(), "{j:#}");
    for (file, m) in &f {
        assert_eq!(file, "migrations/2_mobile.down.sql", "{m}");
    }
    assert!(
        f.iter()
            .any(|(_, m)| m.contains("values of patients.phone differ")),
        "{f:#?}"
    );
}

#[test]
fn a_clean_window_round_trips_without_findings() {
    let (code, j) = check(&[
        ("1_tags.up.sql", "CREATE TABLE tags (id int PRIMARY KEY);\n"),
        ("1_tags.down.sql", "DROP TABLE tags;\n"),
        (
            "2_pref.up.sql",
            "ALTER TABLE patients ADD COLUMN preferred_name text;\nUPDATE patients SET preferred_name = given_name;\n",
        ),
        (
            "2_pref.down.sql",
            "ALTER TABLE patients DROP COLUMN preferred_name;\n",
        ),
    ]);
    assert_eq!(code, 0, "{j:#}");
    assert!(down_findings(&j).is_empty(), "{j:#}");
    // A clean report still says the round trip ran (it said nothing).
    assert_eq!(
        j["also_checked"],
        serde_json::json!([
            "down-migration round trip over 2 migrations (undone and applied again)"
        ]),
        "{j:#}"
    );
}

#[test]
fn a_window_walked_in_two_halves_judges_each_migration_from_the_state_its_predecessors_left() {
    // Six migrations: the step-by-step pass walks them in two halves side by
    // side, the second (4–6) on a clone with 1–3 applied. 5 and 6 need
    // 1's table; 4's down is lossy and 5's fails; 3's leaves residue.
    let (code, j) = check(&[
        ("1_tags.up.sql", "CREATE TABLE tags (id int PRIMARY KEY);\n"),
        ("1_tags.down.sql", "DROP TABLE tags;\n"),
        (
            "2_nick.up.sql",
            "ALTER TABLE patients ADD COLUMN nickname text;\n",
        ),
        (
            "2_nick.down.sql",
            "ALTER TABLE patients DROP COLUMN nickname;\n",
        ),
        (
            "3_note.up.sql",
            "ALTER TABLE appointments ADD COLUMN note text;\nUPDATE appointments SET note = 'seen';\n",
        ),
        ("3_note.down.sql", "SELECT 1;\n"),
        (
            "4_mobile.up.sql",
            "ALTER TABLE patients RENAME COLUMN phone TO mobile;\n",
        ),
        (
            "4_mobile.down.sql",
            "ALTER TABLE patients DROP COLUMN mobile;\nALTER TABLE patients ADD COLUMN phone text;\n",
        ),
        (
            "5_label.up.sql",
            "ALTER TABLE tags ADD COLUMN label text;\n",
        ),
        ("5_label.down.sql", "ALTER TABLE tags DROP COLUMN lbl;\n"),
        (
            "6_label_idx.up.sql",
            "CREATE INDEX tags_label_idx ON tags (label);\n",
        ),
        ("6_label_idx.down.sql", "DROP INDEX tags_label_idx;\n"),
    ]);
    assert_eq!(code, 1, "{j:#}");
    let f = down_findings(&j);
    let on = |file: &str| -> Vec<&String> {
        f.iter()
            .filter(|(x, _)| x == &format!("migrations/{file}"))
            .map(|(_, m)| m)
            .collect()
    };
    // First half: 3's residue, in both directions.
    assert!(
        on("3_note.down.sql")
            .iter()
            .any(|m| m.contains("extra column appointments.note")),
        "{f:#?}"
    );
    assert!(
        f.iter().any(|(_, m)| m.contains(
            "cannot be applied again after its down migration migrations/3_note.down.sql"
        )),
        "{f:#?}"
    );
    // Second half, judged from the state 1–3 left: 4's lost values and
    // nothing else (no "extra table tags", no "extra column nickname").
    let four = on("4_mobile.down.sql");
    assert!(
        four.iter()
            .any(|m| m.contains("values of patients.phone differ")),
        "{f:#?}"
    );
    assert!(
        four.iter()
            .all(|m| !m.contains("tags") && !m.contains("nickname") && !m.contains("note")),
        "{f:#?}"
    );
    assert!(
        on("5_label.down.sql").iter().any(|m| m.contains("42703")),
        "{f:#?}"
    );
    // The clean pairs: nothing.
    for clean in ["1_tags", "2_nick", "6_label_idx"] {
        assert!(
            !f.iter()
                .any(|(file, m)| file.contains(clean) || m.contains(clean)),
            "{clean}: {f:#?}"
        );
    }
    // Each finding once: the halves do not overlap.
    let mut seen: Vec<&(String, String)> = f.iter().collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), f.len(), "{f:#?}");
}

#[test]
fn a_down_that_only_touches_the_catalog_is_still_held_to_the_data_its_up_changed() {
    // 1's down is catalog-only, so the fingerprint after it takes the data
    // from the state after 1's up (which it cannot have changed) — not from
    // the state before: the upper-cased names are still a difference.
    let (code, j) = check(&[
        (
            "1_upper.up.sql",
            "UPDATE patients SET given_name = upper(given_name);\n",
        ),
        (
            "1_upper.down.sql",
            "CREATE INDEX patients_given_name_idx ON patients (given_name);\n",
        ),
        (
            "2_status_idx.up.sql",
            "CREATE INDEX appointments_status_idx2 ON appointments (status);\n",
        ),
        (
            "2_status_idx.down.sql",
            "DROP INDEX appointments_status_idx2;\n",
        ),
    ]);
    assert_eq!(code, 1, "{j:#}");
    let f = down_findings(&j);
    assert!(
        f.iter()
            .any(|(file, m)| file == "migrations/1_upper.down.sql"
                && m.contains("up → down does not give back the original")
                && m.contains("values of patients.given_name differ")),
        "{f:#?}"
    );
    assert!(
        !f.iter().any(
            |(file, m)| file.contains("2_status_idx") || m.contains("appointments_status_idx2")
        ),
        "{f:#?}"
    );
}

#[test]
fn a_down_that_moves_values_between_rows_is_caught_and_a_moved_column_is_not() {
    // Each down gives patients back its phone column, last instead of in
    // its place. 1's down copies every number back to its own patient:
    // nothing to report (the row hash does not depend on column order). 2's
    // down hands each patient the next one's number: every column holds the
    // same values as before, so only the row hash sees it.
    let back = |shift: &str| {
        format!(
            "ALTER TABLE patients ADD COLUMN phone text;\n\
             UPDATE patients p SET phone = r.mobile FROM (SELECT id, {shift} AS mobile FROM patients) r \
             WHERE r.id = p.id;\n\
             ALTER TABLE patients DROP COLUMN mobile;\n"
        )
    };
    let (code, j) = check(&[
        (
            "1_mobile.up.sql",
            "ALTER TABLE patients RENAME COLUMN phone TO mobile;\n",
        ),
        ("1_mobile.down.sql", &back("mobile")),
    ]);
    assert_eq!(code, 0, "{j:#}");
    assert!(down_findings(&j).is_empty(), "{j:#}");
    let (code, j) = check(&[
        (
            "2_mobile.up.sql",
            "ALTER TABLE patients RENAME COLUMN phone TO mobile;\n",
        ),
        (
            "2_mobile.down.sql",
            &back(
                "CASE WHEN lead(id) OVER (ORDER BY id) IS NULL THEN first_value(mobile) OVER (ORDER BY id) \
                 ELSE lead(mobile) OVER (ORDER BY id) END",
            ),
        ),
    ]);
    assert_eq!(code, 1, "{j:#}");
    let f = down_findings(&j);
    assert!(
        f.iter()
            .any(|(file, m)| file == "migrations/2_mobile.down.sql"
                && m.contains("values of patients moved between rows")),
        "{f:#?}"
    );
    assert!(
        !f.iter()
            .any(|(_, m)| m.contains("values of patients.phone differ")),
        "{f:#?}"
    );
}
