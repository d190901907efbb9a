//! Lossless conversions are not data loss (D12): casts whose values round
//! trip, one-to-one label mappings (text → bool, text → enum, bool → enum
//! through CASE) and dropping a GENERATED column. A lossy mapping (labels
//! merged) still fails. Real throwaway clusters seeded with ward's records,
//! checked through `--against URL` (a clone; columns added here count as
//! existing data).

use crate::support::check::{findings, migrations, report};
use crate::support::*;
use serde_json::Value;

const PATIENTS: &str = "100";

fn check(url: &str, files: &[(&str, &str)]) -> (i32, Value) {
    let d = migrations(files);
    let r = ward()
        .args([
            "check",
            "--format",
            "json",
            "--against",
            url,
            "--timezone-check",
            "false",
            "--migrations",
        ])
        .args([d.path().join("migrations")])
        .run();
    (r.code(), report(&r))
}

fn seeded() -> (Cluster, String) {
    let c = cluster();
    let url = c.url("postgres");
    ward()
        .db(&url)
        .args(["seed", "-n", PATIENTS, "-j", "1"])
        .ok();
    (c, url)
}

fn objects(j: &Value, rule: &str) -> Vec<String> {
    findings(j, rule)
        .iter()
        .map(|f| f["object"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn casts_that_round_trip_and_one_to_one_mappings_are_not_value_changes() {
    let (_c, url) = seeded();
    let conditions = int(&url, "SELECT count(*) FROM conditions");
    let allergies = int(&url, "SELECT count(*) FROM allergies");
    let (_code, j) = check(
        &url,
        &[(
            "1_types.sql",
            "ALTER TABLE appointments ALTER COLUMN duration_minutes TYPE bigint;\n\
             ALTER TABLE patients ALTER COLUMN nhs_number TYPE text;\n\
             ALTER TABLE observations ALTER COLUMN snomed_code TYPE bigint USING snomed_code::bigint;\n\
             ALTER TABLE conditions ALTER COLUMN status TYPE boolean USING status = 'active';\n\
             CREATE TYPE severity AS ENUM ('low', 'mid', 'high');\n\
             ALTER TABLE allergies ALTER COLUMN severity TYPE severity USING \
               (CASE severity WHEN 'mild' THEN 'low' WHEN 'moderate' THEN 'mid' ELSE 'high' END)::severity;\n",
        )],
    );
    assert!(findings(&j, "values-changed").is_empty(), "{j:#}");
    let converted = findings(&j, "values-converted");
    let by = |o: &str| {
        converted
            .iter()
            .find(|f| f["object"] == o)
            .unwrap_or_else(|| panic!("no values-converted on {o} in {j:#}"))
    };
    let status = by("conditions.status");
    assert_eq!(status["level"], "INFO");
    assert_eq!(status["count"], conditions);
    assert!(
        status["evidence"][0]
            .as_str()
            .unwrap()
            .contains("active → true"),
        "{status:#}"
    );
    assert_eq!(by("allergies.severity")["count"], allergies);
    assert_eq!(converted.len(), 2, "{j:#}");
}

#[test]
fn a_bool_mapped_to_a_two_value_enum_is_lossless_and_a_merging_mapping_is_not() {
    let (_c, url) = seeded();
    // A boolean column that exists before the window.
    sql(
        &url,
        "ALTER TABLE patients ADD COLUMN deceased boolean; UPDATE patients SET deceased = date_of_death IS NOT NULL",
    );
    let (code, j) = check(
        &url,
        &[(
            "1_enum.sql",
            "CREATE TYPE vital AS ENUM ('alive', 'deceased');\n\
             ALTER TABLE patients ALTER COLUMN deceased TYPE vital USING \
               (CASE WHEN deceased THEN 'deceased' ELSE 'alive' END)::vital;\n\
             ALTER TABLE appointments ALTER COLUMN mode TYPE boolean USING mode = 'video';\n",
        )],
    );
    assert_eq!(code, 1, "{j:#}");
    assert_eq!(
        objects(&j, "values-converted"),
        ["patients.deceased"],
        "{j:#}"
    );
    // Four modes merged into two values: information is lost.
    assert_eq!(
        objects(&j, "values-changed"),
        ["appointments.mode"],
        "{j:#}"
    );
}

#[test]
fn dropping_a_generated_column_is_not_data_loss() {
    let (_c, url) = seeded();
    sql(
        &url,
        "ALTER TABLE patients ADD COLUMN full_name text GENERATED ALWAYS AS (given_name || ' ' || family_name) STORED",
    );
    let (_code, j) = check(
        &url,
        &[(
            "1_drop.sql",
            "ALTER TABLE patients DROP COLUMN full_name;\n",
        )],
    );
    assert!(findings(&j, "dropped-data").is_empty(), "{j:#}");
    assert!(findings(&j, "dropped-empty").is_empty(), "{j:#}");
    assert_eq!(
        objects(&j, "dropped-generated"),
        ["patients.full_name"],
        "{j:#}"
    );
}

#[test]
fn text_turned_into_json_values_is_lossless_and_wrapping_it_is_a_change() {
    // django-oscar's attribute values: varchar → jsonb USING to_jsonb(v).
    // Cast back to varchar, "ea qui" kept its JSON quotes: all reported
    // changed. Unwrapped, each value is the old one.
    let (_c, url) = seeded();
    let (_code, j) = check(
        &url,
        &[(
            "1_json.sql",
            "ALTER TABLE patients ALTER COLUMN given_name TYPE jsonb USING to_jsonb(given_name);\n\
             ALTER TABLE appointments ALTER COLUMN duration_minutes TYPE jsonb USING to_jsonb(duration_minutes);\n\
             ALTER TABLE patients ALTER COLUMN family_name TYPE jsonb USING jsonb_build_object('v', family_name);\n",
        )],
    );
    assert_eq!(
        objects(&j, "values-changed"),
        ["patients.family_name"],
        "{j:#}"
    );
}
