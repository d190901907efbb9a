//! Two developers without a seed spec: `main` renames `patients.phone`
//! (ward's built-in model) to `mobile`, a branch taken before adds an index
//! on `phone`. `ward check --base main` on the branch seeds the built-in
//! model first, runs main's migrations on that data, then the branch's file
//! in merged order — which fails with 42703 as it would after the merge.
//! A real git repository and a real throwaway cluster.

use std::path::Path;

use crate::support::check::{commit, findings, git, report};
use crate::support::*;

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

#[test]
fn a_branch_index_on_a_column_main_renamed_fails_in_merged_order_without_a_spec() {
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    git(r, &["init", "-q", "-b", "main"]);
    write(
        r,
        "db/migrations/20240101000000_notes.sql",
        "CREATE TABLE notes (id int PRIMARY KEY, body text);\n",
    );
    commit(r, "notes");
    git(r, &["checkout", "-q", "-b", "feature"]);
    write(
        r,
        "db/migrations/20240301000000_phone_index.sql",
        "CREATE INDEX patients_phone ON patients (phone);\n",
    );
    commit(r, "index phone");
    git(r, &["checkout", "-q", "main"]);
    write(
        r,
        "db/migrations/20240201000000_rename_phone.sql",
        "ALTER TABLE patients RENAME COLUMN phone TO mobile;\n",
    );
    commit(r, "rename phone");
    git(r, &["checkout", "-q", "feature"]);

    let c = cluster();
    let run = ward()
        .cwd(r)
        .db(&c.url("postgres"))
        .args([
            "check",
            "--format",
            "json",
            "-n",
            "50",
            "--migrations",
            "db/migrations",
            "--base",
            "main",
        ])
        .run();
    let j = report(&run);
    assert_eq!(
        (run.code(), j["verdict"].as_str()),
        (1, Some("FAIL")),
        "{j:#}"
    );
    let errors = findings(&j, "migration-error");
    assert_eq!(errors.len(), 1, "{j:#}");
    let f = errors[0];
    assert!(f["message"].as_str().unwrap().contains("42703"), "{j:#}");
    assert_eq!(f["line"], 1, "{j:#}");
    assert_eq!(
        f["file"], "migrations/20240301000000_phone_index.sql",
        "{j:#}"
    );
    assert!(f["message"].as_str().unwrap().contains("phone"), "{j:#}");
    // Only the branch's file is pending; main's rename made the baseline.
    assert_eq!(
        j["pending"],
        serde_json::json!(["migrations/20240301000000_phone_index.sql"]),
        "{j:#}"
    );
    assert!(j["against"].as_str().unwrap().contains("built-in"), "{j:#}");
}

/// A `--base` that is neither a version on disk nor a git ref is one line
/// and exit 2 before anything expensive: the server named here does not
/// even exist (port 9 of 127.0.0.1 answers nothing), so an error about it
/// would mean ward reached for it — or started a cluster — first.
#[test]
fn a_wrong_base_is_one_line_and_exit_2_before_any_server_is_reached() {
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    git(r, &["init", "-q", "-b", "main"]);
    write(
        r,
        "db/migrations/20240101000000_notes.sql",
        "CREATE TABLE notes (id int PRIMARY KEY, body text);\n",
    );
    commit(r, "notes");
    for extra in [&[][..], &["--spec", "seeds/spec.toml"][..]] {
        let run = ward()
            .cwd(r)
            .db("postgres://ward@127.0.0.1:9/nothing")
            .args([
                "check",
                "--migrations",
                "db/migrations",
                "--base",
                "no-such-ref",
            ])
            .args(extra)
            .run();
        let err = run.stderr();
        assert_eq!(run.code(), 2, "{err}");
        let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(lines[0].contains("--base no-such-ref"), "{err}");
        assert!(lines[0].contains("git ref"), "{err}");
        assert!(!err.contains("127.0.0.1"), "{err}");
    }
}
