//! `ward check` on histories shaped like real projects': runner-exact order
//! (diesel's mixed 14- and 18-digit versions), history tables guarded by the
//! project's own triggers, and project types referenced by ward's
//! before-copies. Each case runs against a real throwaway cluster.

mod support;

use serde_json::Value;
use support::check::{findings, migrations, report};
use support::*;

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
