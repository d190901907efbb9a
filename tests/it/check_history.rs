//! `ward check` on histories shaped like real projects': runner-exact order
//! (diesel's mixed 14- and 18-digit versions), history tables guarded by the
//! project's own triggers, and project types referenced by ward's
//! before-copies. Each case runs against a real throwaway cluster.

use crate::support::check::{findings, migrations, report};
use crate::support::*;
use serde_json::Value;

/// A database on `c` built by `setup`, and its URL.
fn database(c: &Cluster, name: &str, setup: &str) -> String {
    sql(&c.url("postgres"), &format!("CREATE DATABASE {name}"));
    let url = c.url(name);
    if !setup.is_empty() {
        sql(&url, setup);
    }
    url
}

/// `ward check --format json --against URL` on `dir/migrations`.
fn check_against(url: &str, dir: &tempfile::TempDir, extra: &[&str]) -> (i32, Value) {
    let r = ward()
        .args([
            "check",
            "--format",
            "json",
            "--against",
            url,
            "--migrations",
        ])
        .args([dir.path().join("migrations")])
        .args(extra)
        .run();
    (r.code(), report(&r))
}

fn rules(j: &Value) -> Vec<String> {
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {} {}", f["level"], f["rule"], f["message"]))
        .collect()
}

fn pending(j: &Value) -> Vec<String> {
    j["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Three diesel migrations whose 18-digit version sorts between two 14-digit
/// ones as a string (diesel's order) but after both as a number.
const DIESEL_MIXED: &[(&str, &str)] = &[
    (
        "2017-01-01-000000_create/up.sql",
        "CREATE TABLE t (id int PRIMARY KEY, a int);\nINSERT INTO t SELECT g, g FROM generate_series(1, 10) g;\n",
    ),
    ("2017-01-01-000000_create/down.sql", "DROP TABLE t;\n"),
    (
        "2018-01-01-000000-0000_add_b/up.sql",
        "ALTER TABLE t ADD COLUMN b int;\n",
    ),
    (
        "2018-01-01-000000-0000_add_b/down.sql",
        "ALTER TABLE t DROP COLUMN b;\n",
    ),
    (
        "2019-01-01-000000_rename_b/up.sql",
        "ALTER TABLE t RENAME COLUMN b TO c;\n",
    ),
    (
        "2019-01-01-000000_rename_b/down.sql",
        "ALTER TABLE t RENAME COLUMN c TO b;\n",
    ),
];

#[test]
fn diesel_runs_and_compares_versions_as_dash_stripped_strings() {
    let c = cluster();
    let d = migrations(DIESEL_MIXED);
    // A fresh database: all three pending, in diesel's order, so the rename finds its column.
    let url = database(&c, "fresh", "");
    let (code, j) = check_against(&url, &d, &[]);
    assert_eq!(
        pending(&j),
        [
            "migrations/2017-01-01-000000_create/up.sql",
            "migrations/2018-01-01-000000-0000_add_b/up.sql",
            "migrations/2019-01-01-000000_rename_b/up.sql",
        ],
        "{j:#}"
    );
    assert!(findings(&j, "migration-error").is_empty(), "{j:#}");
    assert_eq!((code, j["verdict"].as_str()), (0, Some("PASS")), "{j:#}");

    // An empty history table (a fresh `diesel setup`): nothing is out of order.
    let url = database(
        &c,
        "setup",
        "CREATE TABLE __diesel_schema_migrations (version varchar(50) PRIMARY KEY,
           run_on timestamp NOT NULL DEFAULT current_timestamp);",
    );
    let (code, j) = check_against(&url, &d, &[]);
    assert_eq!(pending(&j).len(), 3, "{j:#}");
    assert!(findings(&j, "out-of-order").is_empty(), "{j:#}");
    assert_eq!((code, j["verdict"].as_str()), (0, Some("PASS")), "{j:#}");

    // A database where the first two are applied: the 14-digit 2019 version is
    // newer than the 18-digit one for diesel, so it is not out of order.
    let url = database(
        &c,
        "applied",
        "CREATE TABLE __diesel_schema_migrations (version varchar(50) PRIMARY KEY,
           run_on timestamp NOT NULL DEFAULT current_timestamp);
         INSERT INTO __diesel_schema_migrations (version) VALUES ('20170101000000'), ('201801010000000000');
         CREATE TABLE t (id int PRIMARY KEY, a int, b int);
         INSERT INTO t SELECT g, g, g FROM generate_series(1, 10) g;",
    );
    let (code, j) = check_against(&url, &d, &[]);
    assert_eq!(
        pending(&j),
        ["migrations/2019-01-01-000000_rename_b/up.sql"],
        "{j:#}"
    );
    assert!(findings(&j, "out-of-order").is_empty(), "{j:#}");
    assert_eq!((code, j["verdict"].as_str()), (0, Some("PASS")), "{j:#}");
    // And a pending file that really is older than an applied one still is.
    let url = database(
        &c,
        "older",
        "CREATE TABLE __diesel_schema_migrations (version varchar(50) PRIMARY KEY,
           run_on timestamp NOT NULL DEFAULT current_timestamp);
         INSERT INTO __diesel_schema_migrations (version) VALUES ('20170101000000'), ('20190101000000');
         CREATE TABLE t (id int PRIMARY KEY, a int);",
    );
    let (_, j) = check_against(&url, &d, &[]);
    let f = findings(&j, "out-of-order");
    assert_eq!(f.len(), 1, "{}", rules(&j).join("\n"));
    assert_eq!(
        f[0]["file"],
        "migrations/2018-01-01-000000-0000_add_b/up.sql"
    );
}

/// A diesel history whose first migration guards the history table the way
/// Lemmy does: only a session holding advisory lock 0 (Lemmy's own runner)
/// may write it. `always` makes the trigger fire even with triggers off.
fn guarded_history(always: bool) -> Vec<(&'static str, String)> {
    let guard = format!(
        "CREATE FUNCTION forbid_other_runners() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_locks WHERE (locktype, pid, objid) = ('advisory', pg_backend_pid(), 0)) THEN
        RAISE 'migrations must be managed by our own runner';
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER forbid_other_runners
    BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON __diesel_schema_migrations
    EXECUTE FUNCTION forbid_other_runners();
{}",
        if always {
            "ALTER TABLE __diesel_schema_migrations ENABLE ALWAYS TRIGGER forbid_other_runners;\n"
        } else {
            ""
        }
    );
    vec![
        ("2020-01-01-000000_guard/up.sql", guard),
        (
            "2020-01-01-000000_guard/down.sql",
            "DROP TRIGGER forbid_other_runners ON __diesel_schema_migrations;\nDROP FUNCTION forbid_other_runners();\n".into(),
        ),
        (
            "2020-01-02-000000_table/up.sql",
            "CREATE TABLE t (id int PRIMARY KEY, a text);\nINSERT INTO t SELECT g, g::text FROM generate_series(1, 20) g;\n".into(),
        ),
        ("2020-01-02-000000_table/down.sql", "DROP TABLE t;\n".into()),
    ]
}

fn runs_without_failure(j: &Value) -> usize {
    let runs = j["runs"].as_array().unwrap();
    assert!(runs.iter().all(|r| r["failure"].is_null()), "{j:#}");
    runs.len()
}

#[test]
fn a_history_table_guarded_by_the_project_is_written_past_its_trigger() {
    let c = cluster();
    let files = guarded_history(false);
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let d = migrations(&files);
    let url = database(&c, "guarded", "");
    let (code, j) = check_against(&url, &d, &[]);
    assert_eq!(runs_without_failure(&j), 2);
    assert!(findings(&j, "migration-error").is_empty(), "{j:#}");
    assert!(findings(&j, "history-not-recorded").is_empty(), "{j:#}");
    assert_eq!((code, j["verdict"].as_str()), (0, Some("PASS")), "{j:#}");
}

#[test]
fn a_history_row_that_cannot_be_written_is_a_note_and_the_check_goes_on() {
    let c = cluster();
    let files = guarded_history(true);
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let d = migrations(&files);
    let url = database(&c, "guarded_always", "");
    let (code, j) = check_against(&url, &d, &[]);
    assert_eq!(runs_without_failure(&j), 2);
    assert!(findings(&j, "migration-error").is_empty(), "{j:#}");
    let notes = findings(&j, "history-not-recorded");
    assert_eq!(notes.len(), 2, "{j:#}");
    assert_eq!(notes[0]["level"], "INFO");
    assert!(
        notes[0]["message"]
            .as_str()
            .unwrap()
            .contains("our own runner"),
        "{j:#}"
    );
    assert_eq!(code, 0, "{j:#}");
}

#[test]
fn a_pending_migration_can_recreate_and_drop_an_enum_the_data_uses() {
    let c = cluster();
    // Lemmy's pattern: rename the enum away, create the new one, convert the
    // column, drop the old type — and the reverse in down.sql.
    let recreate = |from: &str, values: &str| {
        format!(
            "ALTER TYPE mood RENAME TO mood__;
CREATE TYPE mood AS ENUM ({values});
ALTER TABLE diary ALTER COLUMN feeling DROP DEFAULT;
ALTER TABLE diary ALTER COLUMN feeling TYPE mood USING feeling::text::mood;
ALTER TABLE diary ALTER COLUMN feeling SET DEFAULT 'happy';
ALTER TABLE diary ALTER COLUMN feelings TYPE mood[] USING feelings::text[]::mood[];
DROP TYPE mood__;
-- {from}
"
        )
    };
    let up = recreate("widen", "'happy', 'sad', 'meh'");
    let down = recreate("narrow", "'happy', 'sad'");
    let d = migrations(&[
        ("1_widen_mood.up.sql", up.as_str()),
        ("1_widen_mood.down.sql", down.as_str()),
    ]);
    let url = database(
        &c,
        "moods",
        "CREATE DOMAIN note AS text CHECK (length(VALUE) < 100);
         CREATE TYPE mood AS ENUM ('happy', 'sad');
         CREATE TABLE diary (id int PRIMARY KEY, feeling mood NOT NULL DEFAULT 'happy', feelings mood[], remark note);
         INSERT INTO diary SELECT g, CASE WHEN g % 3 = 0 THEN 'sad' ELSE 'happy' END::mood,
           ARRAY['happy']::mood[], 'day ' || g FROM generate_series(1, 50) g;",
    );
    let (code, j) = check_against(&url, &d, &[]);
    assert_eq!(runs_without_failure(&j), 1);
    for rule in [
        "migration-error",
        "down-migration",
        "values-changed",
        "dropped-data",
    ] {
        assert!(findings(&j, rule).is_empty(), "{rule}: {j:#}");
    }
    assert!(code == 0 || code == 1, "{j:#}");
    assert_ne!(j["verdict"], "FAIL", "{j:#}");
}

#[test]
fn volatile_defaults_are_not_time_zone_dependence_but_local_times_are() {
    let c = cluster();
    let url = database(
        &c,
        "stamps",
        "CREATE TABLE visit (id int PRIMARY KEY, a int);
         INSERT INTO visit SELECT g, g FROM generate_series(1, 30) g;",
    );
    let d = migrations(&[
        (
            "1_stamps.sql",
            "ALTER TABLE visit ADD COLUMN seen_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE visit ADD COLUMN checked_at timestamptz DEFAULT clock_timestamp();
ALTER TABLE visit ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE visit ADD COLUMN luck float8 DEFAULT random();
",
        ),
        (
            "2_local_day.sql",
            "ALTER TABLE visit ADD COLUMN local_day timestamp;
UPDATE visit SET local_day = '2024-01-02 09:00+00'::timestamptz;
",
        ),
    ]);
    let (_, j) = check_against(&url, &d, &["--timezone-check", "true"]);
    assert!(
        j["server"].as_str().unwrap().starts_with("PostgreSQL "),
        "{j}"
    );
    let tz = findings(&j, "timezone-dependent");
    assert_eq!(tz.len(), 1, "{j:#}");
    assert_eq!(tz[0]["object"], "visit.local_day", "{j:#}");
    assert_eq!(tz[0]["count"], 30, "{j:#}");
}

#[test]
fn locks_are_held_until_commit_and_the_fix_fits_the_statement() {
    let c = cluster();
    let url = database(
        &c,
        "locks",
        "CREATE TABLE visit (id int PRIMARY KEY, a int DEFAULT 0);
         CREATE INDEX visit_a ON visit (a);
         INSERT INTO visit SELECT g, g FROM generate_series(1, 500) g;",
    );
    let d = migrations(&[
        (
            "1_backfill.sql",
            "ALTER TABLE visit ADD COLUMN note text;\nUPDATE visit SET note = 'x';\n",
        ),
        (
            "2_widen.sql",
            "ALTER TABLE visit ALTER COLUMN a DROP DEFAULT;\nALTER TABLE visit ALTER COLUMN a TYPE bigint;\n",
        ),
    ]);
    let (_, j) = check_against(&url, &d, &[]);
    let locks = findings(&j, "blocking-lock");
    let at = |file: &str, line: u64| {
        locks
            .iter()
            .find(|f| f["file"] == file && f["line"] == line)
            .unwrap_or_else(|| panic!("no blocking-lock at {file}:{line} in {j:#}"))
    };
    // The backfill scans the table under the ALTER's ACCESS EXCLUSIVE lock.
    let backfill = at("migrations/1_backfill.sql", 2);
    assert!(
        backfill["message"]
            .as_str()
            .unwrap()
            .contains("AccessExclusiveLock"),
        "{backfill:#}"
    );
    let evidence = backfill["evidence"].to_string();
    assert!(
        evidence.contains("taken at line 1 by an earlier statement")
            && evidence.contains("held until COMMIT"),
        "{backfill:#}"
    );
    assert!(
        backfill["remedy"]
            .as_str()
            .unwrap()
            .contains("its own migration"),
        "{backfill:#}"
    );
    // The type change rewrites under ACCESS EXCLUSIVE (taken by the line
    // before), and the fix is not an index recipe.
    let widen = at("migrations/2_widen.sql", 2);
    assert!(
        widen["message"]
            .as_str()
            .unwrap()
            .contains("AccessExclusiveLock"),
        "{widen:#}"
    );
    assert!(
        !widen["remedy"].as_str().unwrap().contains("CONCURRENTLY"),
        "{widen:#}"
    );
}

#[test]
fn one_transaction_that_rewrites_two_tables_is_one_lock_finding_listing_both() {
    let c = cluster();
    let url = database(
        &c,
        "span",
        "CREATE TABLE a (id int PRIMARY KEY, v int);
         CREATE TABLE b (id int PRIMARY KEY, v int);
         INSERT INTO a SELECT g, g FROM generate_series(1, 500) g;
         INSERT INTO b SELECT g, g FROM generate_series(1, 300) g;",
    );
    let d = migrations(&[(
        "1_widen.sql",
        "ALTER TABLE a ALTER COLUMN v TYPE bigint;\nALTER TABLE b ALTER COLUMN v TYPE bigint;\n",
    )]);
    let (_, j) = check_against(&url, &d, &["--timezone-check", "false"]);
    let locks = findings(&j, "blocking-lock");
    assert_eq!(locks.len(), 1, "{j:#}");
    let f = locks[0];
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("on a, b until COMMIT") && message.contains("2 statements"),
        "{f:#}"
    );
    assert_eq!(f["line"], 1, "{f:#}");
    let evidence: Vec<&str> = f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(evidence.len(), 2, "{f:#}");
    assert!(
        evidence[0].starts_with("line 1: ") && evidence[0].contains("500 rows"),
        "{f:#}"
    );
    assert!(
        evidence[1].starts_with("line 2: ") && evidence[1].contains("300 rows"),
        "{f:#}"
    );
    assert!(
        !f["remedy"].as_str().unwrap().contains("CONCURRENTLY"),
        "{f:#}"
    );
}

/// Reports quote the failing statement; a password in it never reaches stdout,
/// in any format.
#[test]
fn a_password_in_a_failing_statement_is_redacted_in_every_report() {
    let c = cluster();
    let url = database(&c, "leak", "CREATE TABLE t (id int PRIMARY KEY)");
    let d = migrations(&[(
        "1_role.sql",
        "ALTER ROLE no_such_role_here PASSWORD 'Sup3rSecretPw';",
    )]);
    for format in ["json", "human", "markdown", "github", "junit", "sarif"] {
        let r = ward()
            .args([
                "check",
                "--format",
                format,
                "--against",
                &url,
                "--migrations",
            ])
            .args([d.path().join("migrations")])
            .run();
        assert_eq!(r.code(), 1, "{format}: {}", r.stderr());
        let all = format!("{}{}", r.stdout(), r.stderr());
        assert!(!all.contains("Sup3rSecretPw"), "{format} leaks: {all}");
        if format == "json" {
            assert!(
                all.contains("no_such_role_here"),
                "the failing statement is not quoted at all, so this test proves nothing: {all}"
            );
        }
    }
}
