//! The accept file (`ward-accept.toml`): reviewed findings leave the verdict
//! but stay in every report format with their reason; stale entries are
//! reported; a malformed file is a one-line `FILE:LINE:` error with exit 2.
//! Real throwaway clusters seeded with ward's patient records.

use crate::support::check::{findings, migrations, report};
use crate::support::*;
use serde_json::Value;

const PATIENTS: &str = "100";

/// Clears every second phone: a values-changed FAIL on patients.phone.
const CLEAR: &str = "UPDATE patients SET phone = NULL WHERE id % 2 = 0;\n";

const ACCEPT_CLEAR: &str = "# reviewed in #123\n[[accept]]\nrule = \"values-changed\"\ntable = \"public.patients\"\ncolumn = \"phone\"\nmigration = \"migrations/1_clear.sql\"\nreason = \"odd-id phones are duplicates, cleared on purpose\"\n";

const STALE: &str = "\n[[accept]]\nrule = \"dropped-data\"\ntable = \"visits\"\nmigration = \"migrations/1_clear.sql\"\nreason = \"an old drop\"\n";

fn seeded() -> (Cluster, String) {
    let c = cluster();
    let url = c.url("postgres");
    ward()
        .db(&url)
        .args(["seed", "-n", PATIENTS, "-j", "1"])
        .ok();
    (c, url)
}

fn run(url: &str, d: &tempfile::TempDir, extra: &[&str]) -> crate::support::Run {
    ward()
        .db(url)
        .args(["check", "-n", PATIENTS, "--timezone-check", "false"])
        .arg_str("--migrations")
        .args([d.path().join("migrations")])
        .args(extra)
        .run()
}

fn accepted(j: &Value) -> &Vec<Value> {
    j["accepted"].as_array().unwrap()
}

#[test]
fn an_accepted_finding_leaves_the_verdict_and_stays_in_every_format() {
    let (_c, url) = seeded();
    let d = migrations(&[("1_clear.sql", CLEAR)]);
    // Without the file: FAIL.
    let j = report(&run(&url, &d, &["--format", "json"]));
    assert_eq!(j["verdict"], "FAIL", "{j:#}");
    assert_eq!(findings(&j, "values-changed").len(), 1, "{j:#}");

    // With it (and a stale entry): the FAIL is accepted, the stale entry warns.
    std::fs::write(
        d.path().join("ward-accept.toml"),
        format!("{ACCEPT_CLEAR}{STALE}"),
    )
    .unwrap();
    let r = run(&url, &d, &["--format", "json"]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let j = report(&r);
    assert_eq!(j["verdict"], "WARN", "{j:#}");
    assert!(findings(&j, "values-changed").is_empty(), "{j:#}");
    let a = accepted(&j);
    assert_eq!(a.len(), 1, "{j:#}");
    assert_eq!(a[0]["rule"], "values-changed");
    assert_eq!(a[0]["object"], "patients.phone");
    assert_eq!(a[0]["file"], "migrations/1_clear.sql");
    assert_eq!(a[0]["level"], "FAIL");
    assert_eq!(
        a[0]["accepted"]["reason"],
        "odd-id phones are duplicates, cleared on purpose"
    );
    assert_eq!(a[0]["accepted"]["entry"], "ward-accept.toml:2");
    let stale = findings(&j, "stale-accept");
    assert_eq!(stale.len(), 1, "{j:#}");
    assert_eq!(stale[0]["level"], "WARN");
    assert!(
        stale[0]["message"]
            .as_str()
            .unwrap()
            .contains("ward-accept.toml:9"),
        "{j:#}"
    );
    // The stale entry fails a --strict run.
    assert_eq!(run(&url, &d, &["--strict"]).code(), 1);

    // Without the stale entry: PASS even under --strict, and every format says why.
    std::fs::write(d.path().join("ward-accept.toml"), ACCEPT_CLEAR).unwrap();
    let r = run(&url, &d, &["--strict"]);
    assert_eq!(r.code(), 0, "{}{}", r.stdout(), r.stderr());
    let human = r.stdout();
    assert!(
        human.contains("accepted FAIL [values-changed]")
            && human.contains("cleared on purpose (ward-accept.toml:2)")
            && human.contains("PASS"),
        "{human}"
    );
    for (format, needle) in [
        ("sarif", "\"kind\": \"external\""),
        ("junit", "<skipped message=\"FAIL: "),
        ("github", "::notice file="),
        ("markdown", "Accepted by the accept file"),
    ] {
        let out = run(&url, &d, &["--format", format]).stdout();
        assert!(
            out.contains(needle) && out.contains("cleared on purpose"),
            "{format}: {out}"
        );
    }
}

#[test]
fn accept_entries_work_for_apply_cmd_and_an_explicit_file() {
    let (_c, url) = seeded();
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("reviewed.toml");
    std::fs::write(
        &file,
        "[[accept]]\nrule = \"values-changed\"\ntable = \"patients\"\ncolumn = \"phone\"\nreason = \"cleared on purpose\"\n",
    )
    .unwrap();
    let r = ward()
        .args(["check", "--format", "json", "--against", &url, "--accept"])
        .args([&file])
        .arg_str("--apply-cmd")
        .arg_str(&format!(
            "psql \"$DATABASE_URL\" -q -v ON_ERROR_STOP=1 -c '{}'",
            CLEAR.trim()
        ))
        .run();
    let j = report(&r);
    assert_eq!(
        (r.code(), j["verdict"].as_str()),
        (0, Some("PASS")),
        "{j:#}"
    );
    assert_eq!(accepted(&j).len(), 1, "{j:#}");
    assert_eq!(accepted(&j)[0]["accepted"]["entry"], "reviewed.toml:1");
    // A named file that does not exist is an error.
    ward()
        .args([
            "check",
            "--against",
            &url,
            "--accept",
            "/nonexistent/a.toml",
        ])
        .arg_str("--apply-cmd")
        .arg_str("true")
        .run()
        .fails_with(2, "cannot read the accept file /nonexistent/a.toml");
}

#[test]
fn a_bad_accept_file_is_a_line_numbered_error_before_any_work() {
    let (_c, url) = seeded();
    let d = migrations(&[("1_clear.sql", CLEAR)]);
    for (text, needle) in [
        (
            "[[accept]]\nrule = \"values-changed\"\ntable = \"patients\"\n",
            "ward-accept.toml:1: missing field `reason`",
        ),
        (
            "[[accept]]\nrule = \"values-changd\"\ntable = \"patients\"\nreason = \"x\"\n",
            "ward-accept.toml:1: \"values-changd\" is not a ward check rule",
        ),
        (
            "\n\n[[accept]]\nrule = \"migration-error\"\ntable = \"patients\"\nreason = \"x\"\n",
            "ward-accept.toml:3: rule migration-error cannot be accepted",
        ),
        (
            "[[accept]]\nrule = \"rows-lost\"\ntable = \"patients\"\nreason = \"x\"\ncolum = \"a\"\n",
            "ward-accept.toml:5:",
        ),
    ] {
        std::fs::write(d.path().join("ward-accept.toml"), text).unwrap();
        run(&url, &d, &[]).fails_with(2, needle);
    }
}
