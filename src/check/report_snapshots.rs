//! Snapshot tests (insta) of every report format on one fixed report.
//!
//! The renderings are contracts people and CI tools read: a changed column,
//! a lost remedy line or a renamed SARIF field shows up here as a diff to
//! review (`cargo insta review`), not as a surprise in someone's pipeline.
//! The report value is built by hand, so nothing in it depends on time or a
//! server; the crate version in SARIF is replaced by a placeholder.

use super::accept::Acceptance;
use super::apply::{Failure, FileRun, Mode};
use super::report::{self, Finding, Level, Report};
use super::rule::Rule;

fn run(file: &str, mode: Mode, ms: f64, failure: Option<Failure>) -> FileRun {
    FileRun {
        version: file.split('_').next().unwrap_or_default().to_string(),
        file: file.to_string(),
        mode,
        ms,
        statements: Vec::new(),
        failure,
        history_note: None,
    }
}

/// One report with a finding of each level, an ignored and an accepted one,
/// and a failed migration.
fn fixed_report() -> Report {
    let failure = Failure {
        sqlstate: "23502".into(),
        message: "column \"email\" of relation \"patients\" contains null values".into(),
        detail: None,
        hint: None,
        line: 1,
        statement: "ALTER TABLE patients ALTER COLUMN email SET NOT NULL".into(),
        table: Some("patients".into()),
        column: Some("email".into()),
        constraint: None,
        diagnosis: None,
    };
    let findings = vec![
        Finding::new(
            Level::Fail,
            Rule::ValuesChanged,
            "observations.value: 212 values changed (rounded to whole numbers)",
        )
        .at(
            "migrations/2_round.sql",
            2,
            "ALTER TABLE observations ALTER COLUMN value TYPE integer",
        )
        .object("observations.value")
        .count(212)
        .evidence("id 7: 37.5 → 38")
        .remedy("keep the type, or convert with USING round(value::numeric, 1)"),
        Finding::new(
            Level::Warn,
            Rule::BlockingLock,
            "AccessExclusiveLock on observations (1,000 rows) while rewriting it",
        )
        .at(
            "migrations/2_round.sql",
            2,
            "ALTER TABLE observations ALTER COLUMN value TYPE integer",
        )
        .object("observations")
        .remedy("add a new column, backfill in batches, swap"),
        Finding::new(Level::Info, Rule::RowsAdded, "3 rows added to practices")
            .object("practices")
            .count(3),
    ];
    let ignored = vec![
        Finding::new(
            Level::Warn,
            Rule::DroppedEmpty,
            "column patients.fax was empty",
        )
        .at(
            "migrations/1_add.sql",
            3,
            "ALTER TABLE patients DROP COLUMN fax",
        )
        .object("patients.fax"),
    ];
    let mut accepted_finding = Finding::new(
        Level::Fail,
        Rule::DroppedData,
        "column patients.pager held 40 values",
    )
    .at(
        "migrations/1_add.sql",
        4,
        "ALTER TABLE patients DROP COLUMN pager",
    )
    .object("patients.pager")
    .count(40);
    accepted_finding.accepted = Some(Acceptance {
        reason: "pagers were retired in 2019".into(),
        entry: "ward-accept.toml:1".into(),
    });
    Report {
        verdict: report::verdict(&findings),
        against: "a freshly seeded database (1000 patients, seed 42)".into(),
        server: "PostgreSQL 15.18".into(),
        migrations_dir: Some("db".into()),
        format: Some("sqlx".into()),
        applied_by: None,
        also_checked: Vec::new(),
        pending: vec![
            "migrations/1_add.sql".into(),
            "migrations/2_round.sql".into(),
            "migrations/3_email.sql".into(),
        ],
        runs: vec![
            run("migrations/1_add.sql", Mode::Transaction, 12.5, None),
            run("migrations/2_round.sql", Mode::Autocommit, 40.25, None),
            run(
                "migrations/3_email.sql",
                Mode::Transaction,
                3.0,
                Some(failure),
            ),
        ],
        findings,
        ignored,
        accepted: vec![accepted_finding],
        rows_checked: 1234,
        tables_checked: 8,
        seconds: 1.5,
    }
}

#[test]
fn human_report() {
    insta::assert_snapshot!(report::human(&fixed_report()));
}

#[test]
fn markdown_report() {
    insta::assert_snapshot!(report::markdown(&fixed_report()));
}

#[test]
fn junit_report() {
    insta::assert_snapshot!(report::junit(&fixed_report(), false));
}

#[test]
fn sarif_report() {
    let sarif = report::sarif(&fixed_report(), Some("db"));
    let placeholder = format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION"));
    insta::assert_snapshot!(sarif.replace(&placeholder, "\"version\": \"[ward version]\""));
}
