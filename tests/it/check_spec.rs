//! `ward check` with the project's own seed spec: the baseline is the
//! schema before the pending migrations (from `--base VERSION` or a git
//! ref, in merged order), seeded by the spec; after the migrations the spec
//! must still apply. Real throwaway clusters and real git repositories.

use std::path::Path;

use crate::support::check::{commit, git, report};
use crate::support::*;
use serde_json::Value;

const INIT: &str =
    "CREATE TABLE patients (id serial PRIMARY KEY, name text NOT NULL, phone text);\n";
const RENAME: &str = "ALTER TABLE patients RENAME COLUMN phone TO phone_number;\n";

fn spec(phone: &str) -> String {
    format!(
        r#"seed = 7

[tables."public.patients"]
rows = 300
columns.id = "sequence"
columns.name = "person.full_name"
columns.{phone} = {{ gen = "phone.uk", null_ratio = 0.1 }}
"#
    )
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A repository whose `main` has the patients table and then renames
/// `phone` (spec updated with it), and a `feature` branch taken before the
/// rename that adds `extra` as its own migration. `feature` is checked out.
fn two_developers(extra: &str) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    git(r, &["init", "-q", "-b", "main"]);
    write(r, "ward.toml", "[seed]\nspec = \"seeds/spec.toml\"\n");
    write(r, "seeds/spec.toml", &spec("phone"));
    write(r, "db/migrations/20240101000000_init.sql", INIT);
    commit(r, "init");
    git(r, &["checkout", "-q", "-b", "feature"]);
    write(r, "db/migrations/20240301000000_feature.sql", extra);
    commit(r, "feature");
    git(r, &["checkout", "-q", "main"]);
    write(r, "db/migrations/20240201000000_rename_phone.sql", RENAME);
    write(r, "seeds/spec.toml", &spec("phone_number"));
    commit(r, "rename phone");
    git(r, &["checkout", "-q", "feature"]);
    repo
}

fn check_in(dir: &Path, url: &str, extra: &[&str]) -> (i32, Value) {
    let r = ward()
        .cwd(dir)
        .db(url)
        .args(["check", "--format", "json", "--migrations", "db/migrations"])
        .args(extra)
        .run();
    (r.code(), report(&r))
}

fn rules(j: &Value, level: &str) -> Vec<String> {
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == level)
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_branch_migration_that_breaks_on_mains_rename_fails_in_merged_order() {
    let c = cluster();
    let repo = two_developers("CREATE INDEX patients_phone_idx ON patients (phone);\n");
    // No --base: with a spec, ward takes the default branch (main) as the base.
    let (code, j) = check_in(repo.path(), &c.url("postgres"), &[]);
    assert_eq!(code, 1, "{j:#}");
    assert_eq!(j["verdict"], "FAIL");
    assert_eq!(
        j["pending"],
        serde_json::json!(["migrations/20240301000000_feature.sql"]),
        "only the branch's own file is pending: {j:#}"
    );
    let f = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "migration-error")
        .unwrap_or_else(|| panic!("no migration-error in {j:#}"));
    assert_eq!(f["file"], "migrations/20240301000000_feature.sql");
    assert!(
        f["message"].as_str().unwrap().contains("42703"),
        "the SQLSTATE of the missing column: {f:#}"
    );
    let against = j["against"].as_str().unwrap();
    assert!(
        against.contains("seeds/spec.toml") && against.contains("on main"),
        "{against}"
    );
    // The baseline holds exactly the spec's rows, seeded by main's own spec.
    assert_eq!(j["rows_checked"].as_i64(), Some(300), "{j:#}");
}

#[test]
fn a_safe_branch_migration_passes_and_the_spec_still_applies() {
    let c = cluster();
    let repo = two_developers("ALTER TABLE patients ADD COLUMN email text;\n");
    let (code, j) = check_in(repo.path(), &c.url("postgres"), &["--base", "main"]);
    assert_eq!(code, 0, "{j:#}");
    assert_eq!(j["verdict"], "PASS", "{j:#}");
    assert!(
        rules(&j, "FAIL").is_empty() && rules(&j, "WARN").is_empty(),
        "{j:#}"
    );
    // Nothing was left on the server.
    let left = int(
        &c.url("postgres"),
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'ward%'",
    );
    assert_eq!(left, 0);
}

#[test]
fn an_out_of_order_branch_file_is_reported_against_the_base_ref() {
    let c = cluster();
    let repo = two_developers("ALTER TABLE patients ADD COLUMN email text;\n");
    let r = repo.path();
    // The branch's file sorts before main's rename: non-linear history.
    git(
        r,
        &[
            "mv",
            "db/migrations/20240301000000_feature.sql",
            "db/migrations/20240115000000_feature.sql",
        ],
    );
    let (code, j) = check_in(r, &c.url("postgres"), &["--base", "main"]);
    assert_eq!(code, 0, "{j:#}");
    assert_eq!(rules(&j, "WARN"), vec!["out-of-order".to_string()], "{j:#}");
}

#[test]
fn a_migration_that_breaks_the_seed_spec_fails_naming_the_spec_entry() {
    let c = cluster();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "seeds/spec.toml", &spec("phone"));
    write(d, "db/migrations/20240101000000_init.sql", INIT);
    write(
        d,
        "db/migrations/20240201000000_drop_phone.sql",
        "ALTER TABLE patients DROP COLUMN phone;\n",
    );
    let (code, j) = check_in(
        d,
        &c.url("postgres"),
        &["--spec", "seeds/spec.toml", "--base", "20240101000000"],
    );
    assert_eq!(code, 1, "{j:#}");
    let fails = rules(&j, "FAIL");
    assert!(fails.contains(&"dropped-data".to_string()), "{j:#}");
    let f = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "seed-broken")
        .unwrap_or_else(|| panic!("no seed-broken in {j:#}"));
    assert_eq!(f["level"], "FAIL");
    assert_eq!(f["file"], "seeds/spec.toml");
    // The line of `columns.phone` in the spec.
    assert_eq!(f["line"].as_u64(), Some(7), "{f:#}");
    assert!(
        f["message"].as_str().unwrap().contains("phone"),
        "names the column: {f:#}"
    );
}

#[test]
fn a_spec_without_a_base_outside_git_is_one_line_and_exit_2() {
    let c = cluster();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "seeds/spec.toml", &spec("phone"));
    write(d, "db/migrations/20240101000000_init.sql", INIT);
    let r = ward()
        .cwd(d)
        .db(&c.url("postgres"))
        .args([
            "check",
            "--migrations",
            "db/migrations",
            "--spec",
            "seeds/spec.toml",
        ])
        .run();
    r.fails_with(2, "--base");
    let r = ward()
        .cwd(d)
        .db(&c.url("postgres"))
        .args([
            "check",
            "--migrations",
            "db/migrations",
            "--spec",
            "seeds/spec.toml",
        ])
        .args(["--base", "nope"])
        .run();
    r.fails_with(2, "neither the version of a migration");
}

#[test]
fn against_takes_the_two_word_snapshot_form() {
    let store = tempfile::tempdir().unwrap();
    let r = ward()
        .args(["check", "--against", "snapshot", "nosuch", "--store"])
        .args([store.path()])
        .run();
    r.fails_with(2, "nosuch");
    let r = ward().args(["check", "--against", "seed", "extra"]).run();
    r.fails_with(2, "--against");
}

#[test]
fn a_ref_with_digits_is_a_ref_not_a_version() {
    let c = cluster();
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    git(r, &["init", "-q", "-b", "main"]);
    write(r, "seeds/spec.toml", &spec("phone"));
    for (n, sql) in [
        ("1_init.sql", INIT),
        (
            "2_email.sql",
            "ALTER TABLE patients ADD COLUMN email text;\n",
        ),
        ("3_city.sql", "ALTER TABLE patients ADD COLUMN city text;\n"),
    ] {
        write(r, &format!("db/migrations/{n}"), sql);
        commit(r, n);
    }
    // Uncommitted: pending too.
    write(
        r,
        "db/migrations/4_note.sql",
        "ALTER TABLE patients ADD COLUMN note text;\n",
    );
    // HEAD~1 holds 1 and 2 (not "the migrations up to version 1").
    let (code, j) = check_in(
        r,
        &c.url("postgres"),
        &["--spec", "seeds/spec.toml", "--base", "HEAD~1"],
    );
    assert_eq!(code, 0, "{j:#}");
    assert_eq!(
        j["pending"],
        serde_json::json!(["migrations/3_city.sql", "migrations/4_note.sql"]),
        "{j:#}"
    );
}

#[test]
fn golang_migrate_branch_file_below_mains_newest_fails_as_never_applied() {
    let c = cluster();
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    git(r, &["init", "-q", "-b", "main"]);
    write(
        r,
        "db/migrations/1_init.up.sql",
        "CREATE TABLE x (id int);\n",
    );
    commit(r, "init");
    git(r, &["checkout", "-q", "-b", "feature"]);
    write(r, "db/migrations/2_a.up.sql", "ALTER TABLE x ADD a int;\n");
    commit(r, "a");
    git(r, &["checkout", "-q", "main"]);
    write(r, "db/migrations/3_b.up.sql", "ALTER TABLE x ADD b int;\n");
    commit(r, "b");
    git(r, &["checkout", "-q", "feature"]);
    let (code, j) = check_in(
        r,
        &c.url("postgres"),
        &["--migrations-format", "golang-migrate", "--base", "main"],
    );
    assert_eq!(code, 1, "{j:#}");
    let f = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "out-of-order")
        .unwrap_or_else(|| panic!("no out-of-order in {j:#}"));
    assert_eq!(f["level"], "FAIL");
    assert_eq!(f["file"], "migrations/2_a.up.sql");
    assert!(f["message"].as_str().unwrap().contains("never applies it"));
}
