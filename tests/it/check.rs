//! `ward check` against real throwaway Postgres clusters seeded with ward's
//! patient records: one case per FAIL and WARN rule (verdict, rule, counts),
//! the false-positive guards that must PASS, the runner emulations and the
//! report formats.
//!
//! Expected counts are computed independently: each test seeds the same
//! deterministic data (`ward seed -n 200`) into the cluster's `postgres`
//! database and asks it with SQL, while `ward check --against seed -n 200`
//! builds its own identical baseline.

use crate::support::check::{findings, migrations, report};
use crate::support::*;
use serde_json::Value;

const PATIENTS: &str = "200";

struct Env {
    _c: Cluster,
    url: String,
}

/// A cluster whose `postgres` database holds the seeded reference data.
fn env() -> Env {
    let c = cluster();
    let url = c.url("postgres");
    ward()
        .db(&url)
        .args(["seed", "-n", PATIENTS, "-j", "1"])
        .ok();
    Env { _c: c, url }
}

/// Runs `ward check --format json` against a seeded baseline on the env's server.
fn check(e: &Env, files: &[(&str, &str)], extra: &[&str]) -> (i32, Value) {
    let d = migrations(files);
    let r = ward()
        .db(&e.url)
        .args(["check", "--format", "json", "-n", PATIENTS, "--migrations"])
        .args([d.path().join("migrations")])
        .args(extra)
        .run();
    (r.code(), report(&r))
}

/// The single finding of `rule` about `object`.
fn one<'a>(j: &'a Value, rule: &str, object: &str) -> &'a Value {
    let f: Vec<_> = findings(j, rule)
        .into_iter()
        .filter(|f| f["object"] == object)
        .collect();
    assert_eq!(f.len(), 1, "expected one {rule} on {object} in {j:#}");
    f[0]
}

fn levels(j: &Value, level: &str) -> Vec<String> {
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == level)
        .map(|f| format!("{} {}", f["rule"], f["message"]))
        .collect()
}

fn count(f: &Value) -> i64 {
    f["count"]
        .as_i64()
        .unwrap_or_else(|| panic!("no count in {f:#}"))
}

fn assert_pass(code: i32, j: &Value) {
    assert_eq!(j["verdict"], "PASS", "{j:#}");
    assert_eq!(code, 0);
    assert!(
        levels(j, "FAIL").is_empty() && levels(j, "WARN").is_empty(),
        "{j:#}"
    );
}

// ---------------------------------------------------------------- FAIL rules

#[test]
fn not_null_on_a_column_with_nulls_fails_with_the_rows_named() {
    let e = env();
    let nulls = int(&e.url, "SELECT count(*) FROM patients WHERE email IS NULL");
    assert!(nulls > 0);
    let (code, j) = check(
        &e,
        &[(
            "1_email_required.sql",
            "-- emails are now required\nALTER TABLE patients ALTER COLUMN email SET NOT NULL;\n",
        )],
        &[],
    );
    assert_eq!((code, j["verdict"].as_str()), (1, Some("FAIL")));
    let f = &findings(&j, "migration-error")[0];
    assert_eq!(count(f), nulls);
    assert_eq!(f["line"], 2);
    assert!(f["message"].as_str().unwrap().contains("23502"), "{f:#}");
    assert_eq!(f["file"], "migrations/1_email_required.sql");
}

#[test]
fn unique_index_on_duplicates_fails_with_the_duplicate_groups() {
    let e = env();
    let groups = int(
        &e.url,
        "SELECT count(*) FROM (SELECT lower(family_name) FROM patients GROUP BY 1 HAVING count(*) > 1) d",
    );
    assert!(groups > 0);
    let (code, j) = check(
        &e,
        &[(
            "1_unique.sql",
            "CREATE UNIQUE INDEX patients_family_key ON patients (lower(family_name));",
        )],
        &[],
    );
    assert_eq!(code, 1);
    let f = findings(&j, "migration-error")[0];
    assert_eq!(count(f), groups, "{f:#}");
    assert!(f["message"].as_str().unwrap().contains("23505"));
}

#[test]
fn foreign_key_with_orphans_fails_with_the_orphans_counted() {
    let e = env();
    let orphans = int(
        &e.url,
        "SELECT count(*) FROM appointments WHERE id % 10 = 0",
    );
    let (code, j) = check(
        &e,
        &[(
            "1_referrer.sql",
            "ALTER TABLE appointments ADD COLUMN referrer_id bigint;\n\
             UPDATE appointments SET referrer_id = id + 1000000 WHERE id % 10 = 0;\n\
             ALTER TABLE appointments ADD FOREIGN KEY (referrer_id) REFERENCES practitioners (id);\n",
        )],
        &[],
    );
    assert_eq!(code, 1);
    let f = findings(&j, "migration-error")[0];
    assert!(f["message"].as_str().unwrap().contains("23503"), "{f:#}");
    assert_eq!(count(f), orphans);
    assert_eq!(f["line"], 3);
}

#[test]
fn cascade_delete_loses_rows_in_tables_the_migration_never_names() {
    let e = env();
    let patients = int(&e.url, "SELECT count(*) FROM patients WHERE id % 20 = 0");
    let appts = int(
        &e.url,
        "SELECT count(*) FROM appointments WHERE patient_id % 20 = 0",
    );
    let (code, j) = check(
        &e,
        &[("1_purge.sql", "DELETE FROM patients WHERE id % 20 = 0;")],
        &[],
    );
    assert_eq!(code, 1);
    let p = one(&j, "rows-lost", "patients");
    assert_eq!(count(p), patients);
    let a = one(&j, "rows-lost", "appointments");
    assert_eq!(count(a), appts);
    assert!(
        a["message"].as_str().unwrap().contains("side effect"),
        "{a:#}"
    );
    assert_eq!(a["line"], 1);
}

#[test]
fn dropping_a_column_with_values_fails() {
    let e = env();
    let phones = int(&e.url, "SELECT count(phone) FROM patients");
    let (code, j) = check(
        &e,
        &[(
            "1_drop_phone.sql",
            "ALTER TABLE patients DROP COLUMN phone;",
        )],
        &[],
    );
    assert_eq!(code, 1);
    let f = one(&j, "dropped-data", "patients.phone");
    assert_eq!(count(f), phones);
    // The built-in seed no longer fits the schema either.
    assert_eq!(findings(&j, "seed-broken").len(), 1);
}

#[test]
fn dropping_a_table_with_rows_fails() {
    let e = env();
    let rows = int(&e.url, "SELECT count(*) FROM observations");
    let (code, j) = check(&e, &[("1_drop.sql", "DROP TABLE observations;")], &[]);
    assert_eq!(code, 1);
    assert_eq!(count(one(&j, "dropped-data", "observations")), rows);
}

/// Two schemas with a table of the same name: each drop is blamed on the
/// statement that names its own schema, so an ignore on `a.events`'s drop
/// does not hide the loss in `b.events` (matching by bare name did).
#[test]
fn a_drop_in_one_schema_is_not_blamed_on_the_same_table_name_in_another() {
    let c = cluster();
    let url = c.url("postgres");
    sql(&url, "CREATE DATABASE two_schemas");
    let src = c.url("two_schemas");
    sql(
        &src,
        "CREATE SCHEMA a; CREATE SCHEMA b;
         CREATE TABLE a.events (id int PRIMARY KEY, note text);
         CREATE TABLE b.events (id int PRIMARY KEY, note text);
         INSERT INTO a.events SELECT g, 'a' || g FROM generate_series(1, 30) g;
         INSERT INTO b.events SELECT g, 'b' || g FROM generate_series(1, 20) g;",
    );
    let d = migrations(&[
        (
            "1_drop_a_note.sql",
            "-- a.events.note was copied elsewhere\n\
             -- ward:ignore dropped-data\n\
             ALTER TABLE a.events DROP COLUMN note;\n",
        ),
        (
            "2_drop_b_note.sql",
            "ALTER TABLE b.events DROP COLUMN note;\n",
        ),
    ]);
    let r = ward()
        .args([
            "check",
            "--format",
            "json",
            "--against",
            &src,
            "--migrations",
        ])
        .args([d.path().join("migrations")])
        .run();
    let j = report(&r);
    assert_eq!(
        (r.code(), j["verdict"].as_str()),
        (1, Some("FAIL")),
        "{j:#}"
    );
    let f = one(&j, "dropped-data", "b.events.note");
    assert_eq!(count(f), 20, "{j:#}");
    assert_eq!(f["file"], "migrations/2_drop_b_note.sql", "{j:#}");
    assert_eq!(f["line"], 1, "{j:#}");
    let ignored = j["ignored"].as_array().unwrap();
    assert_eq!(ignored.len(), 1, "{j:#}");
    assert_eq!(ignored[0]["object"], "a.events.note", "{j:#}");
    assert_eq!(ignored[0]["file"], "migrations/1_drop_a_note.sql", "{j:#}");
}

/// The time-zone run's twin: `b.events.note_at` changes through a function
/// the migration calls, so no pending statement names it; the statement on
/// `a.events.note_at` (ignored) mentions the column but names the table in
/// another schema, so the finding is not pinned there and stays counted.
#[test]
fn a_zone_finding_in_one_schema_is_not_pinned_to_an_ignore_in_another() {
    let c = cluster();
    sql(&c.url("postgres"), "CREATE DATABASE two_zones");
    let src = c.url("two_zones");
    sql(
        &src,
        "CREATE SCHEMA a; CREATE SCHEMA b;
         CREATE TABLE a.events (id int PRIMARY KEY, note_at timestamp);
         CREATE TABLE b.events (id int PRIMARY KEY, note_at timestamp);
         INSERT INTO a.events SELECT g, timestamp '2024-01-01 12:00' + g * interval '1 hour' FROM generate_series(1, 30) g;
         INSERT INTO b.events SELECT g, timestamp '2024-01-01 12:00' + g * interval '1 hour' FROM generate_series(1, 20) g;
         CREATE FUNCTION fix_b() RETURNS void LANGUAGE sql AS
           'ALTER TABLE b.events ALTER COLUMN note_at TYPE timestamptz';",
    );
    let d = migrations(&[
        (
            "1_a_zone.sql",
            "-- ward:ignore timezone-dependent\n\
             ALTER TABLE a.events ALTER COLUMN note_at TYPE timestamptz;\n",
        ),
        ("2_b_zone.sql", "SELECT fix_b();\n"),
    ]);
    let r = ward()
        .args([
            "check",
            "--format",
            "json",
            "--against",
            &src,
            "--migrations",
        ])
        .args([d.path().join("migrations")])
        .run();
    let j = report(&r);
    let b = one(&j, "timezone-dependent", "b.events.note_at");
    assert_ne!(b["file"], "migrations/1_a_zone.sql", "{j:#}");
    let ignored = j["ignored"].as_array().unwrap();
    assert_eq!(ignored.len(), 1, "{j:#}");
    assert_eq!(ignored[0]["object"], "a.events.note_at", "{j:#}");
}

#[test]
fn numeric_to_integer_rounding_is_a_value_change() {
    let e = env();
    let changed = int(
        &e.url,
        "SELECT count(*) FROM observations WHERE value <> round(value)",
    );
    assert!(changed > 0);
    let (code, j) = check(
        &e,
        &[(
            "1_int.sql",
            "ALTER TABLE observations ALTER COLUMN value TYPE integer;",
        )],
        &[],
    );
    assert_eq!(code, 1);
    let f = one(&j, "values-changed", "observations.value");
    assert_eq!(count(f), changed);
    assert!(f["evidence"][0].as_str().unwrap().contains("→"), "{f:#}");
}

#[test]
fn failed_concurrent_index_leaves_an_invalid_index() {
    let e = env();
    let (code, j) = check(
        &e,
        &[(
            "1_idx.sql",
            "-- no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY patients_family_uq ON patients (family_name);\n",
        )],
        &[],
    );
    assert_eq!(code, 1);
    assert_eq!(count(one(&j, "invalid-index", "patients_family_uq")), 1);
    assert_eq!(findings(&j, "migration-error").len(), 1);
    assert_eq!(j["runs"][0]["mode"], "autocommit");
}

#[test]
fn explicit_ids_leave_the_sequence_behind() {
    let e = env();
    let last = int(&e.url, "SELECT max(id) FROM practices");
    let (code, j) = check(
        &e,
        &[(
            "1_reference_practice.sql",
            "INSERT INTO practices (id, name, town, postcode, phone) VALUES (5000, 'Reference', 'Leeds', 'LS1 1AA', '0113 496 0000');",
        )],
        &[],
    );
    assert_eq!(code, 1);
    let f = one(&j, "sequence-behind", "practices.id");
    assert_eq!(count(f), 5000 - last);
}

#[test]
fn not_valid_constraint_that_would_not_validate_fails() {
    let e = env();
    let missing = int(&e.url, "SELECT count(*) FROM patients WHERE email IS NULL");
    let (code, j) = check(
        &e,
        &[(
            "1_email_check.sql",
            "ALTER TABLE patients ADD CONSTRAINT patients_email_present CHECK (email IS NOT NULL) NOT VALID;",
        )],
        &[],
    );
    assert_eq!(code, 1);
    let f = one(
        &j,
        "not-valid-constraint",
        "patients.patients_email_present",
    );
    assert_eq!(count(f), missing);
}

#[test]
fn dirty_history_and_out_of_order_files_are_reported_against_a_url() {
    let e = env();
    // The developer's database: seeded, with sqlx history where 2 failed half-way and 3 is applied.
    let d = migrations(&[
        ("1_a.sql", "SELECT 1;"),
        ("2_b.sql", "SELECT 2;"),
        ("3_c.sql", "SELECT 3;"),
        ("4_d.sql", "ALTER TABLE patients ADD COLUMN nickname text;"),
    ]);
    let sum = |t: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha384::digest(t.as_bytes()))
    };
    sql(
        &e.url,
        &format!(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
               installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL,
               execution_time BIGINT NOT NULL);
             INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES
               (1, 'a', true, decode('{}', 'hex'), 1), (3, 'c', true, decode('{}', 'hex'), 1);",
            sum("SELECT 1;"),
            sum("SELECT 3;")
        ),
    );
    let before = table_checksums(&e.url, "public");
    let r = ward()
        .args([
            "check",
            "--format",
            "json",
            "--against",
            &e.url,
            "--migrations",
        ])
        .args([d.path().join("migrations")])
        .run();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let j = r.json();
    assert_eq!(j["verdict"], "WARN");
    let pending: Vec<&str> = j["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(pending, ["migrations/2_b.sql", "migrations/4_d.sql"]);
    let f = findings(&j, "out-of-order");
    assert_eq!((f.len(), count(f[0])), (1, 1));
    assert_eq!(f[0]["file"], "migrations/2_b.sql");
    // --strict turns the WARN into exit 1.
    let r = ward()
        .args(["check", "--strict", "--against", &e.url, "--migrations"])
        .args([d.path().join("migrations")])
        .run();
    assert_eq!(r.code(), 1, "{}", r.stdout());
    // Now a dirty row.
    sql(
        &e.url,
        "UPDATE _sqlx_migrations SET success = false WHERE version = 3",
    );
    let r = ward()
        .args([
            "check",
            "--format",
            "json",
            "--against",
            &e.url,
            "--migrations",
        ])
        .args([d.path().join("migrations")])
        .run();
    assert_eq!(r.code(), 1);
    let j = r.json();
    let f = findings(&j, "dirty-history");
    assert_eq!((f.len(), count(f[0])), (1, 1));
    assert_eq!(f[0]["object"], "3");
    // The source was never modified: same data, same history, no clone left behind.
    assert_eq!(table_checksums(&e.url, "public"), before);
    assert_eq!(int(&e.url, "SELECT count(*) FROM _sqlx_migrations"), 2);
    assert_eq!(
        int(
            &e.url,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'patients' AND column_name = 'nickname'"
        ),
        0
    );
    assert_eq!(
        int(
            &e.url,
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'ward_check_%'"
        ),
        0
    );
}

#[test]
fn edited_applied_migration_is_a_history_mismatch() {
    let e = env();
    let d = migrations(&[
        ("1_a.sql", "SELECT 1; -- edited"),
        ("2_b.sql", "SELECT 2;\r\n"),
    ]);
    let lf = {
        use sha2::Digest;
        hex::encode(sha2::Sha384::digest(b"SELECT 2;\n"))
    };
    sql(
        &e.url,
        &format!(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL,
               installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL,
               execution_time BIGINT NOT NULL);
             INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES
               (1, 'a', true, '\\x00', 1), (2, 'b', true, decode('{lf}', 'hex'), 1), (9, 'gone', true, '\\x00', 1);"
        ),
    );
    let r = ward()
        .args([
            "check",
            "--format",
            "json",
            "--against",
            &e.url,
            "--migrations",
        ])
        .args([d.path().join("migrations")])
        .run();
    assert_eq!(r.code(), 1, "{}", r.stderr());
    let j = r.json();
    let f = findings(&j, "history-mismatch");
    let level = |l: &str| f.iter().filter(|f| f["level"] == l).count();
    // 1 edited and 9 missing on disk: FAIL; 2 differs only in line endings: WARN.
    assert_eq!((level("FAIL"), level("WARN")), (2, 1), "{j:#}");
    assert!(f.iter().any(|f| f["level"] == "WARN" && f["object"] == "2"));
}

// ---------------------------------------------------------------- WARN rules

#[test]
fn rewriting_a_populated_table_under_access_exclusive_warns_with_the_lock_trace() {
    let e = env();
    let rows = int(&e.url, "SELECT count(*) FROM appointments");
    let (code, j) = check(
        &e,
        &[(
            "1_bigint.sql",
            "ALTER TABLE appointments ALTER COLUMN duration_minutes TYPE bigint;",
        )],
        &[],
    );
    assert_eq!((code, j["verdict"].as_str()), (0, Some("WARN")), "{j:#}");
    let f = one(&j, "blocking-lock", "appointments");
    assert_eq!(count(f), rows);
    assert!(
        f["message"].as_str().unwrap().starts_with("Rewrites"),
        "{f:#}"
    );
    assert!(
        f["evidence"][0]
            .as_str()
            .unwrap()
            .contains("AccessExclusiveLock")
    );
    assert!(
        levels(&j, "FAIL").is_empty(),
        "int → bigint changes no value: {j:#}"
    );
}

#[test]
fn an_ignore_comment_takes_an_accepted_finding_out_of_the_verdict() {
    let e = env();
    let (code, j) = check(
        &e,
        &[(
            "1_idx.sql",
            "-- prescriptions is small in production\n\
             -- ward:ignore blocking-lock\n\
             CREATE INDEX prescriptions_medicine ON prescriptions (medicine);\n\
             CREATE INDEX appointments_status ON appointments (status);\n",
        )],
        &["--strict"],
    );
    // The second statement's lock still counts.
    assert_eq!(code, 1, "{j:#}");
    let counted = findings(&j, "blocking-lock");
    assert_eq!(counted.len(), 1, "{j:#}");
    assert_eq!(counted[0]["object"], "appointments");
    let ignored = j["ignored"].as_array().unwrap();
    assert_eq!(ignored.len(), 1, "{j:#}");
    assert_eq!(ignored[0]["rule"], "blocking-lock");
    assert_eq!(ignored[0]["object"], "prescriptions");
    assert_eq!(ignored[0]["line"], 3);
    // Without the second statement, the verdict is PASS even under --strict.
    let (code, j) = check(
        &e,
        &[(
            "1_idx.sql",
            "-- ward:ignore-file blocking-lock\n\
             CREATE INDEX prescriptions_medicine ON prescriptions (medicine);\n",
        )],
        &["--strict"],
    );
    assert_pass(code, &j);
    assert_eq!(j["ignored"].as_array().unwrap().len(), 1);
}

#[test]
fn production_stats_say_how_long_the_lock_would_be_held_there() {
    let e = env();
    let stats = tempfile::tempdir().unwrap();
    let file = stats.path().join("prod.json");
    std::fs::write(
        &file,
        r#"{"public.appointments": {"rows": 12000000, "bytes": 2400000000}}"#,
    )
    .unwrap();
    let sql = &[(
        "1_bigint.sql",
        "ALTER TABLE appointments ALTER COLUMN duration_minutes TYPE bigint;",
    )];
    let (_, j) = check(&e, sql, &["--production-stats", file.to_str().unwrap()]);
    let f = one(&j, "blocking-lock", "appointments");
    let ev: Vec<&str> = f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        ev.iter().any(
            |e| e.starts_with("in production (12000000 rows, 2.4 GB): about ")
                && e.contains("under AccessExclusiveLock")
        ),
        "{ev:?}"
    );
    // From a database's catalog: the seeded database is as big as the clone.
    let rows = int(&e.url, "SELECT count(*) FROM appointments");
    let (_, j) = check(&e, sql, &["--production-stats", &e.url]);
    let f = one(&j, "blocking-lock", "appointments");
    let prod = f["evidence"][1].as_str().unwrap();
    assert!(
        prod.starts_with(&format!("in production ({rows} rows,")),
        "{prod}"
    );
    // A bad file is one line and exit 2.
    std::fs::write(&file, "[]").unwrap();
    let d = migrations(sql);
    ward()
        .db(&e.url)
        .args(["check", "-n", PATIENTS, "--production-stats"])
        .args([&file])
        .args(["--migrations"])
        .args([d.path().join("migrations")])
        .run()
        .fails_with(2, "is not a production stats file");
}

#[test]
fn plain_create_index_on_a_populated_table_warns() {
    let e = env();
    let rows = int(&e.url, "SELECT count(*) FROM prescriptions");
    let (code, j) = check(
        &e,
        &[(
            "1_idx.sql",
            "CREATE INDEX prescriptions_medicine ON prescriptions (medicine);",
        )],
        &["--strict"],
    );
    assert_eq!(code, 1);
    let f = one(&j, "blocking-lock", "prescriptions");
    assert_eq!(count(f), rows);
    assert!(
        f["evidence"][0].as_str().unwrap().contains("ShareLock"),
        "{f:#}"
    );
}

#[test]
fn timestamp_to_timestamptz_depends_on_the_session_timezone() {
    let e = env();
    let rows = int(&e.url, "SELECT count(*) FROM appointments");
    let (code, j) = check(
        &e,
        &[(
            "1_tz.sql",
            "ALTER TABLE appointments ALTER COLUMN starts_at TYPE timestamptz;",
        )],
        &[],
    );
    assert_eq!(code, 0, "{j:#}");
    let f = one(&j, "timezone-dependent", "appointments.starts_at");
    assert_eq!(count(f), rows);
    assert_eq!(f["line"], 1);
    assert!(
        j["also_checked"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "the same migrations under session TimeZone America/New_York"),
        "{j:#}"
    );
}

#[test]
fn dropping_an_empty_column_and_table_warns() {
    let e = env();
    let (code, j) = check(
        &e,
        &[
            (
                "1_add.sql",
                "ALTER TABLE patients ADD COLUMN fax text; CREATE TABLE referrals (id bigint PRIMARY KEY);",
            ),
            (
                "2_drop.sql",
                "ALTER TABLE patients DROP COLUMN fax; DROP TABLE referrals;",
            ),
        ],
        &["--base", "1"],
    );
    assert_eq!((code, j["verdict"].as_str()), (0, Some("WARN")), "{j:#}");
    assert_eq!(count(one(&j, "dropped-empty", "patients.fax")), 0);
    assert_eq!(count(one(&j, "dropped-empty", "referrals")), 0);
    assert_eq!(j["pending"].as_array().unwrap().len(), 1);
}

// ------------------------------------------------------- false-positive guards

#[test]
fn guard_adding_a_nullable_column_passes() {
    let e = env();
    let (code, j) = check(
        &e,
        &[(
            "1_add.sql",
            "ALTER TABLE patients ADD COLUMN preferred_name text;",
        )],
        &["--strict"],
    );
    assert_pass(code, &j);
    assert_eq!(findings(&j, "metadata-lock").len(), 1);
}

#[test]
fn guard_constant_default_passes_and_reports_the_filled_rows() {
    let e = env();
    let rows = int(&e.url, "SELECT count(*) FROM patients");
    let (code, j) = check(
        &e,
        &[(
            "1_active.sql",
            "ALTER TABLE patients ADD COLUMN is_active boolean NOT NULL DEFAULT true;",
        )],
        &["--strict"],
    );
    assert_pass(code, &j);
    assert_eq!(count(one(&j, "default-filled", "patients.is_active")), rows);
}

#[test]
fn guard_varchar_to_text_passes_against_a_url() {
    let e = env();
    sql(
        &e.url,
        "ALTER TABLE patients ALTER COLUMN email TYPE varchar(320)",
    );
    let d = migrations(&[(
        "1_text.sql",
        "ALTER TABLE patients ALTER COLUMN email TYPE text;",
    )]);
    let r = ward()
        .args([
            "check",
            "--strict",
            "--format",
            "json",
            "--against",
            &e.url,
            "--migrations",
        ])
        .args([d.path().join("migrations")])
        .run();
    assert_pass(r.code(), &r.json());
}

#[test]
fn guard_not_valid_then_validate_on_clean_data_passes() {
    let e = env();
    let (code, j) = check(
        &e,
        &[
            (
                "1_check.sql",
                "ALTER TABLE prescriptions ADD CONSTRAINT quantity_positive CHECK (quantity > 0) NOT VALID;",
            ),
            (
                "2_validate.sql",
                "ALTER TABLE prescriptions VALIDATE CONSTRAINT quantity_positive;",
            ),
        ],
        &["--strict"],
    );
    assert_pass(code, &j);
}

#[test]
fn guard_create_index_concurrently_in_a_no_transaction_file_passes() {
    let e = env();
    let (code, j) = check(
        &e,
        &[(
            "1_idx.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY appointments_status ON appointments (status);\n",
        )],
        &["--strict"],
    );
    assert_pass(code, &j);
    assert_eq!(j["runs"][0]["mode"], "autocommit");
}

#[test]
fn multi_statement_no_transaction_file_fails_like_sqlx() {
    let e = env();
    let (code, j) = check(
        &e,
        &[(
            "1_idx.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY a_status ON appointments (status);\nCREATE INDEX CONCURRENTLY a_mode ON appointments (mode);\n",
        )],
        &[],
    );
    assert_eq!(code, 1);
    let f = findings(&j, "migration-error")[0];
    assert!(f["message"].as_str().unwrap().contains("25001"), "{f:#}");
    assert_eq!(j["runs"][0]["mode"], "single-query");
}

// ------------------------------------------------------------ down migrations

#[test]
fn clean_down_migration_round_trips() {
    let e = env();
    let (code, j) = check(
        &e,
        &[
            (
                "1_pref.up.sql",
                "ALTER TABLE patients ADD COLUMN preferred_name text;\nUPDATE patients SET preferred_name = given_name;\n",
            ),
            (
                "1_pref.down.sql",
                "ALTER TABLE patients DROP COLUMN preferred_name;\n",
            ),
        ],
        &[],
    );
    assert_eq!(code, 0, "{j:#}");
    assert!(findings(&j, "down-migration").is_empty(), "{j:#}");
}

#[test]
fn lossy_down_migration_is_a_finding() {
    let e = env();
    let phones = int(&e.url, "SELECT count(phone) FROM patients");
    let (code, j) = check(
        &e,
        &[
            (
                "1_mobile.up.sql",
                "ALTER TABLE patients RENAME COLUMN phone TO mobile;\n",
            ),
            (
                "1_mobile.down.sql",
                "ALTER TABLE patients DROP COLUMN mobile;\nALTER TABLE patients ADD COLUMN phone text;\n",
            ),
        ],
        &[],
    );
    assert_eq!(code, 1);
    // The rename itself loses nothing (columns are followed by attnum).
    assert!(findings(&j, "dropped-data").is_empty(), "{j:#}");
    let f = findings(&j, "down-migration");
    assert!(
        f.iter()
            .any(|f| f["message"].as_str().unwrap().contains(&format!(
                "values of patients.phone differ ({phones} non-NULL before, 0 after)"
            ))),
        "{j:#}"
    );
}

/// `--round-trip true` over SQL files, one without a down: not silently
/// skipped — one INFO naming that file, and no round trip run.
#[test]
fn a_forced_round_trip_over_a_file_without_a_down_says_so() {
    let c = cluster();
    sql(&c.url("postgres"), "CREATE DATABASE forced");
    let src = c.url("forced");
    sql(
        &src,
        "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'x');",
    );
    let d = migrations(&[
        ("1_tag.up.sql", "ALTER TABLE notes ADD COLUMN tag text;\n"),
        ("1_tag.down.sql", "ALTER TABLE notes DROP COLUMN tag;\n"),
        ("2_kind.sql", "ALTER TABLE notes ADD COLUMN kind text;\n"),
    ]);
    let r = ward()
        .args([
            "check",
            "--format",
            "json",
            "--round-trip",
            "true",
            "--against",
            &src,
            "--migrations",
        ])
        .args([d.path().join("migrations")])
        .run();
    let j = report(&r);
    assert_pass(r.code(), &j);
    let down = findings(&j, "down-migration");
    assert_eq!(down.len(), 1, "{j:#}");
    assert_eq!(down[0]["level"], "INFO", "{j:#}");
    assert_eq!(down[0]["file"], "migrations/2_kind.sql", "{j:#}");
    assert!(
        down[0]["message"]
            .as_str()
            .unwrap()
            .contains("not round-tripped"),
        "{j:#}"
    );
}

// ---------------------------------------------------------------- --apply-cmd

#[test]
fn apply_cmd_runs_against_the_clone_and_every_data_check_still_runs() {
    let e = env();
    let lost = int(&e.url, "SELECT count(*) FROM patients WHERE id % 20 = 0");
    let before = table_checksums(&e.url, "public");
    let r = ward()
        .args(["check", "--format", "json", "--against", &e.url, "--apply-cmd"])
        .arg_str("psql \"$DATABASE_URL\" -q -v ON_ERROR_STOP=1 -c 'DELETE FROM patients WHERE id % 20 = 0'")
        .run();
    assert_eq!(r.code(), 1, "{}", r.stderr());
    let j = r.json();
    assert_eq!(count(one(&j, "rows-lost", "patients")), lost);
    assert!(
        j["applied_by"]
            .as_str()
            .is_some_and(|c| c.starts_with("psql \"$DATABASE_URL\"")),
        "{j:#}"
    );
    assert_eq!(
        table_checksums(&e.url, "public"),
        before,
        "the source must stay untouched"
    );
    // A failing command is a migration error, without the password.
    let r = ward()
        .args(["check", "--against", &e.url, "--apply-cmd"])
        .arg_str("psql \"$DATABASE_URL\" -v ON_ERROR_STOP=1 -c 'ALTER TABLE patients ALTER COLUMN email SET NOT NULL'; echo \"pw=$PGPASSWORD\" >&2; exit 3")
        .run();
    assert_eq!(r.code(), 1);
    let out = r.stdout();
    assert!(
        out.contains("[migration-error] --apply-cmd exited with 3"),
        "{out}"
    );
    // ward cannot list what the command applies: it says what applied them
    // (it said "0 migrations pending").
    assert!(
        out.starts_with("ward check — migrations applied by `psql \"$DATABASE_URL\""),
        "{out}"
    );
    assert!(!out.contains(e._c.password()), "password leaked: {out}");
}

// --------------------------------------------------------------- runners

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn each_runner_records_history_its_own_way_and_later_files_are_pending() {
    use ward::check::{apply, migrations};
    let e = env();
    type Files = &'static [(&'static str, &'static str)];
    let cases: &[(migrations::Format, Files, Files)] = &[
        (
            migrations::Format::Diesel,
            &[
                (
                    "2024-01-01-000000_a/up.sql",
                    "ALTER TABLE practices ADD COLUMN a text;",
                ),
                (
                    "2024-01-01-000000_a/down.sql",
                    "ALTER TABLE practices DROP COLUMN a;",
                ),
            ],
            &[(
                "2024-02-01-000000_b/up.sql",
                "ALTER TABLE practices ADD COLUMN b text;",
            )],
        ),
        (
            migrations::Format::GolangMigrate,
            &[
                ("1_a.up.sql", "ALTER TABLE practices ADD COLUMN a text;"),
                ("1_a.down.sql", "ALTER TABLE practices DROP COLUMN a;"),
            ],
            &[("2_b.up.sql", "ALTER TABLE practices ADD COLUMN b text;")],
        ),
        (
            migrations::Format::Flyway,
            &[("V1__add_a.sql", "ALTER TABLE practices ADD COLUMN a text;")],
            &[(
                "V1_1__add_b.sql",
                "ALTER TABLE practices ADD COLUMN b text;",
            )],
        ),
        (
            migrations::Format::Refinery,
            &[("V1__add_a.sql", "ALTER TABLE practices ADD COLUMN a text;")],
            &[("V2__add_b.sql", "ALTER TABLE practices ADD COLUMN b text;")],
        ),
        (
            migrations::Format::Dbmate,
            &[(
                "20240101000000_a.sql",
                "-- migrate:up\nALTER TABLE practices ADD COLUMN a text;\n-- migrate:down\nALTER TABLE practices DROP COLUMN a;\n",
            )],
            &[(
                "20240201000000_b.sql",
                "-- migrate:up\nALTER TABLE practices ADD COLUMN b text;\n",
            )],
        ),
        (
            migrations::Format::Sqlx,
            &[("1_a.sql", "ALTER TABLE practices ADD COLUMN a text;")],
            &[("2_b.sql", "ALTER TABLE practices ADD COLUMN b text;")],
        ),
    ];
    for (i, (format, first, later)) in cases.iter().enumerate() {
        let db = format!("runner{i}");
        sql(&e.url, &format!("CREATE DATABASE {db} TEMPLATE postgres"));
        let url = e._c.url(&db);
        let dir = migrations(first);
        let set = migrations::read_dir(&dir.path().join("migrations"), *format).unwrap();
        rt().block_on(async {
            let client = ward::pg::connect(&url).await.unwrap();
            let pending: Vec<_> = set.migrations.iter().collect();
            let runs = apply::run(&client, *format, &pending, apply::Direction::Up)
                .await
                .unwrap();
            assert!(runs[0].failure.is_none(), "{format:?}: {runs:?}");
            let applied = apply::applied(&client, *format).await.unwrap().unwrap();
            assert_eq!(applied.len(), 1, "{format:?}");
            assert!(applied[0].success);
            assert_eq!(applied[0].version, set.migrations[0].version, "{format:?}");
            if let Some(sum) = &set.migrations[0].checksum {
                assert_eq!(applied[0].checksum.as_ref(), Some(sum), "{format:?}");
            }
        });
        // Add the later file: only it is pending, and the detected format holds.
        for (n, t) in *later {
            let p = dir.path().join("migrations").join(n);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        }
        let r = ward()
            .args([
                "check",
                "--format",
                "json",
                "--against",
                &url,
                "--migrations",
            ])
            .args([dir.path().join("migrations")])
            .run();
        assert_eq!(r.code(), 0, "{format:?}: {}{}", r.stdout(), r.stderr());
        let j = r.json();
        assert_eq!(
            j["pending"].as_array().unwrap().len(),
            1,
            "{format:?}: {j:#}"
        );
        assert!(
            j["pending"][0]
                .as_str()
                .unwrap()
                .contains(later[0].0.split('/').next().unwrap()),
            "{format:?}: {j:#}"
        );
        let name = match format {
            migrations::Format::GolangMigrate => "golang-migrate",
            migrations::Format::Diesel => "diesel",
            migrations::Format::Flyway => "flyway",
            migrations::Format::Refinery => "refinery",
            migrations::Format::Dbmate => "dbmate",
            migrations::Format::Sqlx => "sqlx",
        };
        assert_eq!(j["format"], name);
    }
}

/// The round trip and the other-zone run apply untraced, the run traced:
/// both must leave the runner's history as the runner would, row for row,
/// going up (a one-statement and a several-statement file) and down.
#[test]
fn traced_and_untraced_runs_record_the_same_history_rows() {
    use ward::check::{apply, migrations};
    let e = env();
    let add = "ALTER TABLE practices ADD COLUMN a text;";
    let two =
        "ALTER TABLE practices ADD COLUMN b text;\nCREATE INDEX practices_b ON practices (b);";
    let cases: Vec<(migrations::Format, Vec<(&str, String)>)> = vec![
        (
            migrations::Format::Diesel,
            vec![
                ("2024-01-01-000000_a/up.sql", add.into()),
                (
                    "2024-01-01-000000_a/down.sql",
                    "ALTER TABLE practices DROP COLUMN a;".into(),
                ),
                ("2024-01-02-000000_b/up.sql", two.into()),
                (
                    "2024-01-02-000000_b/down.sql",
                    "ALTER TABLE practices DROP COLUMN b;".into(),
                ),
            ],
        ),
        (
            migrations::Format::GolangMigrate,
            vec![
                ("1_a.up.sql", add.into()),
                (
                    "1_a.down.sql",
                    "ALTER TABLE practices DROP COLUMN a;".into(),
                ),
                ("2_b.up.sql", two.into()),
                (
                    "2_b.down.sql",
                    "ALTER TABLE practices DROP COLUMN b;".into(),
                ),
            ],
        ),
        (
            migrations::Format::Dbmate,
            vec![
                (
                    "20240101000000_a.sql",
                    format!(
                        "-- migrate:up\n{add}\n-- migrate:down\nALTER TABLE practices DROP COLUMN a;\n"
                    ),
                ),
                (
                    "20240102000000_b.sql",
                    format!(
                        "-- migrate:up\n{two}\n-- migrate:down\nALTER TABLE practices DROP COLUMN b;\n"
                    ),
                ),
            ],
        ),
        (
            migrations::Format::Flyway,
            vec![("V1__add_a.sql", add.into()), ("V2__add_b.sql", two.into())],
        ),
        (
            migrations::Format::Refinery,
            vec![("V1__add_a.sql", add.into()), ("V2__add_b.sql", two.into())],
        ),
        (
            migrations::Format::Sqlx,
            vec![("1_a.sql", add.into()), ("2_b.sql", two.into())],
        ),
    ];
    for (i, (format, files)) in cases.iter().enumerate() {
        let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let dir = migrations(&files);
        let set = migrations::read_dir(&dir.path().join("migrations"), *format).unwrap();
        let pending: Vec<_> = set.migrations.iter().collect();
        let downs: Vec<_> = pending
            .iter()
            .rev()
            .copied()
            .filter(|m| m.down.is_some())
            .collect();
        // [up, down] history of each way.
        let mut histories = Vec::new();
        for traced in [true, false] {
            let db = format!("history{i}_{traced}");
            sql(&e.url, &format!("CREATE DATABASE {db} TEMPLATE postgres"));
            let url = e._c.url(&db);
            histories.push(rt().block_on(async {
                let client = ward::pg::connect(&url).await.unwrap();
                let observer = ward::pg::connect(&url).await.unwrap();
                let mut seen = Vec::new();
                for (dir, migrations) in [
                    (apply::Direction::Up, &pending),
                    (apply::Direction::Down, &downs),
                ] {
                    let runs = match traced {
                        true => {
                            apply::run_observed(&client, Some(&observer), *format, migrations, dir)
                                .await
                        }
                        false => apply::run(&client, *format, migrations, dir).await,
                    }
                    .unwrap();
                    assert!(
                        runs.iter().all(|r| r.failure.is_none()),
                        "{format:?} traced {traced}: {runs:?}"
                    );
                    let rows = apply::applied(&client, *format).await.unwrap().unwrap();
                    seen.push(format!("{rows:?}"));
                }
                seen
            }));
        }
        assert!(
            histories[0][0].contains(&set.migrations[1].version),
            "{format:?}: {histories:?}"
        );
        assert_eq!(
            histories[0], histories[1],
            "{format:?}: traced, then untraced"
        );
    }
}

// ---------------------------------------------------------------- reports

#[test]
fn reports_in_every_format_name_the_file_line_and_rule() {
    let e = env();
    let d = migrations(&[(
        "1_email_required.sql",
        "-- required\nALTER TABLE patients ALTER COLUMN email SET NOT NULL;\n",
    )]);
    let dir = d.path().join("migrations");
    let run = |format: &str| {
        let r = ward()
            .db(&e.url)
            .args(["check", "-n", PATIENTS, "--format", format, "--migrations"])
            .args([&dir])
            .run();
        assert_eq!(r.code(), 1, "{format}: {}", r.stderr());
        r.stdout()
    };
    let human = run("human");
    assert!(human.contains("FAIL [migration-error]"), "{human}");
    assert!(
        human.contains("--> migrations/1_email_required.sql:2"),
        "{human}"
    );
    let gh = run("github");
    let line = gh
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("{gh}"));
    assert!(
        line.contains("file=")
            && line.contains("1_email_required.sql,line=2,title=ward migration-error::"),
        "{line}"
    );
    let junit = run("junit");
    assert!(
        junit.contains("<testsuites name=\"ward check\"")
            && junit.contains("<failure type=\"FAIL\""),
        "{junit}"
    );
    let md = run("markdown");
    assert!(
        md.starts_with("## ❌ ward check: FAIL") && md.contains("| FAIL | `migration-error` |"),
        "{md}"
    );
    let sarif: Value = serde_json::from_str(&run("sarif")).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "migration-error");
    assert_eq!(result["level"], "error");
    let loc = &result["locations"][0]["physicalLocation"];
    assert_eq!(
        loc["artifactLocation"]["uri"].as_str().unwrap(),
        format!("{}/1_email_required.sql", dir.display())
    );
    assert_eq!(loc["region"]["startLine"], 2);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let e = env();
    ward()
        .db(&e.url)
        .args(["check", "--migrations", "/nonexistent/dir"])
        .run()
        .fails_with(2, "cannot read the migrations directory");
    let d = migrations(&[("README.md", "no migrations")]);
    ward()
        .db(&e.url)
        .args(["check", "--migrations"])
        .args([d.path().join("migrations")])
        .run()
        .fails_with(2, "no migrations found");
    let d = migrations(&[("1_a.sql", "SELECT 1;")]);
    ward()
        .args(["check", "--base", "1", "--against", &e.url, "--migrations"])
        .args([d.path().join("migrations")])
        .run()
        .fails_with(2, "--base only applies to --against seed");
    let bad = e._c.url("missing_db");
    ward()
        .args(["check", "--against", &bad, "--migrations"])
        .args([d.path().join("migrations")])
        .run()
        .fails_with(2, "database missing_db does not exist");
    let r = ward().args(["check", "--against", "snapshot"]).run();
    assert_eq!(r.code(), 2);
    assert!(
        r.stderr().contains("--against snapshot:NAME"),
        "{}",
        r.stderr()
    );
    // Another session on the source: ward refuses rather than touching it.
    let blocker = std::process::Command::new("psql")
        .args([&e.url, "-c", "SELECT pg_sleep(20)"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the other session is there, not for a guessed delay.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while int(
        &e.url,
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)'",
    ) == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the other session never connected"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let err = ward()
        .args(["check", "--against", &e.url, "--migrations"])
        .args([d.path().join("migrations")])
        .run()
        .fails_with(2, "other sessions are connected");
    assert!(!err.contains(e._c.password()));
    let mut blocker = blocker;
    let _ = blocker.kill();
    let _ = blocker.wait();
}

// ---------------------------------------------------------------- demo

#[test]
fn demo_checks_a_safe_and_a_data_breaking_migration() {
    let r = ward().args(["demo", "-n", "200", "--json"]).ok();
    let d = r.json();
    let checks = d["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2);
    assert_eq!(checks[0]["verdict"], "PASS", "{:#}", checks[0]);
    assert_eq!(checks[1]["verdict"], "FAIL");
    assert!(
        findings(&checks[1], "values-changed")[0]["count"]
            .as_i64()
            .unwrap()
            > 0
    );
    assert!(findings(&checks[1], "rows-lost").len() >= 2);
    // The human report shows both.
    let human = ward().args(["demo", "-n", "200"]).ok().stdout();
    assert!(
        human.contains("ward check of the safe example") && human.contains("FAIL [values-changed]"),
        "{human}"
    );
}

#[test]
fn interrupt_exits_130_and_drops_every_clone() {
    let e = env();
    let d = migrations(&[("1_slow.sql", "SELECT pg_sleep(30);")]);
    let (mut child, _dir) = ward()
        .args(["check", "--against", &e.url, "--migrations"])
        .args([d.path().join("migrations")])
        .spawn();
    // Wait until the migration runs on the clone.
    let started = std::time::Instant::now();
    while int(
        &e.url,
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'",
    ) == 0
    {
        assert!(
            started.elapsed().as_secs() < 30,
            "the migration never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        int(
            &e.url,
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'ward_check_%'"
        ),
        0,
        "a scratch database was left behind"
    );
}

#[test]
fn check_help_has_examples() {
    let help = ward().args(["check", "--help"]).ok().stdout();
    assert!(
        help.contains("Examples:") && help.contains("ward check --against"),
        "{help}"
    );
    assert!(
        help.contains("--apply-cmd") && help.contains("--strict"),
        "{help}"
    );
}

#[test]
fn changes_made_by_a_trigger_in_a_table_no_statement_names_are_found() {
    let e = env();
    let n = int(
        &e.url,
        "SELECT count(*) FROM patients WHERE practice_id = 1",
    );
    assert!(n > 0);
    let (code, j) = check(
        &e,
        &[(
            "1_trigger.sql",
            "CREATE FUNCTION forget_contacts() RETURNS trigger LANGUAGE plpgsql AS $$\n\
             BEGIN UPDATE patients SET email = NULL WHERE practice_id = NEW.id; RETURN NEW; END $$;\n\
             CREATE TRIGGER practices_touch AFTER UPDATE ON practices FOR EACH ROW EXECUTE FUNCTION forget_contacts();\n\
             UPDATE practices SET phone = phone WHERE id = 1;\n",
        )],
        &[],
    );
    assert_eq!(code, 1);
    let f = one(&j, "values-changed", "patients");
    assert_eq!(count(f), n);
    assert_eq!(f["line"], 4);
}

#[test]
fn conversions_that_do_not_fit_name_the_values() {
    let e = env();
    let long = int(
        &e.url,
        "SELECT count(*) FROM patients WHERE length(postcode) > 7",
    );
    assert!(long > 0);
    let (code, j) = check(
        &e,
        &[(
            "1_short.sql",
            "ALTER TABLE patients ALTER COLUMN postcode TYPE varchar(7);",
        )],
        &[],
    );
    assert_eq!(code, 1);
    let f = findings(&j, "migration-error")[0];
    assert!(f["message"].as_str().unwrap().contains("22001"), "{f:#}");
    assert_eq!(count(f), long);
    let rows = int(&e.url, "SELECT count(*) FROM patients");
    let (code, j) = check(
        &e,
        &[(
            "1_int.sql",
            "ALTER TABLE patients ALTER COLUMN postcode TYPE integer USING postcode::integer;",
        )],
        &[],
    );
    assert_eq!(code, 1);
    let f = findings(&j, "migration-error")[0];
    assert!(f["message"].as_str().unwrap().contains("22P02"), "{f:#}");
    assert_eq!(count(f), rows);
}

#[test]
fn statements_outside_a_transaction_are_traced_by_an_observer() {
    // Enough rows that the index build outlasts the observer's polling interval.
    let c = cluster();
    let url = c.url("postgres");
    ward().db(&url).args(["seed", "-n", "4000"]).ok();
    let rows = int(&url, "SELECT count(*) FROM observations");
    let d = migrations(&[(
        "1_idx.sql",
        "-- no-transaction\nCREATE INDEX observations_unit ON observations (unit, term, snomed_code, observed_at);\n",
    )]);
    let r = ward()
        .args([
            "check",
            "--format",
            "json",
            "--against",
            &url,
            "--migrations",
        ])
        .args([d.path().join("migrations")])
        .run();
    let j = r.json();
    assert_eq!(
        (r.code(), j["verdict"].as_str()),
        (0, Some("WARN")),
        "{j:#}"
    );
    assert_eq!(j["runs"][0]["mode"], "autocommit");
    let f = one(&j, "blocking-lock", "observations");
    assert_eq!(count(f), rows);
    assert!(
        f["evidence"][0].as_str().unwrap().contains("ShareLock"),
        "{f:#}"
    );
}

#[test]
fn widening_an_indexed_varchar_builds_no_index() {
    // Postgres re-creates the index on its old storage (a new OID, the same
    // relfilenode): nothing is built, so nothing is held long — django-cms's
    // auth 0008/0010 were warned "Indexes … (1000 rows)" for it.
    let e = env();
    let (_, j) = check(
        &e,
        &[
            (
                "1_code.sql",
                "ALTER TABLE patients ADD COLUMN code varchar(30);\n\
                 CREATE INDEX patients_code ON patients (code);",
            ),
            (
                "2_widen.sql",
                "ALTER TABLE patients ALTER COLUMN code TYPE varchar(150);",
            ),
        ],
        &[],
    );
    let on_widen: Vec<&Value> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| {
            f["file"].as_str().is_some_and(|p| p.contains("2_widen")) && f["level"] != "INFO"
        })
        .collect();
    assert!(on_widen.is_empty(), "{on_widen:#?}");
    assert_eq!(j["runs"].as_array().unwrap().len(), 2, "{j:#}");
}
