//! Snapshot tests (insta) of every `ward check` report format, end to end:
//! the real binary checks a fixed set of migrations (a safe one, a blocking
//! rewrite that WARNs, a rounding type change that FAILs) against a seeded
//! throwaway cluster, and each rendering is compared with its committed
//! `.snap` file (tests/it/snapshots/). src/check/report_snapshots.rs pins the
//! renderers on a hand-built report; this pins what a user's terminal or CI
//! actually receives from a real run. What varies between runs (durations,
//! the server's version, temporary paths, timestamps, ward's version) is
//! replaced by placeholders; everything else must stay byte for byte, so a
//! changed report fails here until `cargo insta review` accepts it.

use crate::support::check::migrations;
use crate::support::*;

const PATIENTS: &str = "200";

/// The fixed migration set: one PASS, one WARN (blocking-lock), one FAIL
/// (values-changed), so every report shows each level.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "1_note.sql",
        "-- a nullable column: safe\nALTER TABLE patients ADD COLUMN note text;\n",
    ),
    (
        "2_duration_bigint.sql",
        "ALTER TABLE appointments ALTER COLUMN duration_minutes TYPE bigint;\n",
    ),
    (
        "3_value_integer.sql",
        "-- rounds every measured value\nALTER TABLE observations ALTER COLUMN value TYPE integer;\n",
    ),
];

/// Each `--format` ward check has, with the snapshot's name.
const FORMATS: &[&str] = &["human", "markdown", "junit", "sarif", "json", "github"];

/// Placeholders for what differs between two runs of the same check.
fn filters(workdir: &str, migrations_dir: &str) -> Vec<(String, &'static str)> {
    vec![
        (regex::escape(migrations_dir), "[MIGRATIONS]"),
        (regex::escape(workdir), "[WORKDIR]"),
        // Temporary paths of any other private directory.
        (r"/tmp/\.tmp[A-Za-z0-9]+".into(), "[TMP]"),
        // RFC 3339 timestamps (JSON, SARIF, JUnit).
        (
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})".into(),
            "[TIMESTAMP]",
        ),
        // Durations in every unit the reports print them in.
        (
            r#""(ms|seconds|elapsed_ms|duration_ms|total_ms|time)": ?[0-9.e+-]+"#.into(),
            r#""$1": [DURATION]"#,
        ),
        (r#"time="[0-9.]+""#.into(), r#"time="[DURATION]""#),
        // The Markdown table of locks per statement ends with its milliseconds.
        (r"(?m)\| \d+(\.\d+)? \|$".into(), "| [DURATION] |"),
        // Right-aligned durations carry padding that varies with the number.
        (r" +\d+(\.\d+)? ?(ms|µs|s|min)\b".into(), " [DURATION]"),
        (r"\b\d+(\.\d+)? ?(ms|µs|s|min)\b".into(), "[DURATION]"),
        // The server's version string (major, minor, build details).
        (
            r"PostgreSQL \d+(\.\d+)?[^\n\x22<|]*".into(),
            "PostgreSQL [VERSION]",
        ),
        (
            r#""(server_version|postgres_version|server)": ?"[^"]*""#.into(),
            r#""$1": "[VERSION]""#,
        ),
        // ward's own version (SARIF's tool driver, JUnit's properties).
        (regex::escape(env!("CARGO_PKG_VERSION")), "[WARD_VERSION]"),
        // Ports of the throwaway cluster and scratch database names.
        // Relation sizes depend on the server's major version and build.
        (r"\b\d+ (bytes|kB|MB)\b".into(), "[SIZE]"),
        (r"127\.0\.0\.1:\d+".into(), "127.0.0.1:[PORT]"),
        (r"localhost:\d+".into(), "localhost:[PORT]"),
        (r"ward_check_[0-9a-z_]+".into(), "ward_check_[SCRATCH]"),
    ]
}

/// A format added to `ward check` needs its snapshot here: the formats clap
/// accepts must be exactly [`FORMATS`].
#[test]
fn every_check_format_has_a_report_snapshot() {
    let run = ward().args(["check", "--format", "no-such-format"]).run();
    let err = run.stderr();
    assert_eq!(run.code(), 2, "{err}");
    let values = err
        .split_once("[possible values: ")
        .and_then(|(_, rest)| rest.split_once(']'))
        .unwrap_or_else(|| panic!("no list of possible values in: {err}"))
        .0;
    let mut accepted: Vec<&str> = values.split(", ").collect();
    let mut pinned = FORMATS.to_vec();
    accepted.sort_unstable();
    pinned.sort_unstable();
    assert_eq!(accepted, pinned, "{err}");
}

#[test]
fn every_report_format_of_a_real_check_matches_its_snapshot() {
    let cluster = cluster();
    let url = cluster.url("postgres");
    ward()
        .db(&url)
        .args(["seed", "-n", PATIENTS, "-j", "1"])
        .ok();
    let dir = migrations(MIGRATIONS);
    let migrations_dir = dir.path().join("migrations");
    for format in FORMATS {
        let run = ward()
            .db(&url)
            .args(["check", "--format", format, "-n", PATIENTS, "--migrations"])
            .args([&migrations_dir])
            .run();
        // WARN and FAIL findings: exit 1 for every format.
        assert_eq!(
            run.code(),
            1,
            "{format}: stdout: {}\nstderr: {}",
            run.stdout(),
            run.stderr()
        );
        let mut report = run.stdout();
        for (pattern, placeholder) in filters(
            &dir.path().display().to_string(),
            &migrations_dir.display().to_string(),
        ) {
            report = regex::Regex::new(&pattern)
                .unwrap()
                .replace_all(&report, placeholder)
                .into_owned();
        }
        let mut settings = insta::Settings::clone_current();
        settings.set_prepend_module_to_snapshot(false);
        settings.set_description(format!("ward check --format {format}"));
        settings.bind(|| insta::assert_snapshot!(format!("report_{format}"), report));
    }
}
