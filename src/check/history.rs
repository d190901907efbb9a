//! The runner's history against the files: what is pending, and what is
//! wrong with the history (dirty rows, edited or missing files, pending files
//! older than applied ones).

use super::apply::Applied;
use super::migrations::{Format, Migration, MigrationSet};
use super::report::{Finding, Level};
use super::rule::Rule;
use super::version::VersionKey;

/// The finding for a history row marked failed or dirty: the one place
/// `dirty-history` is made (before the run, and after it for a file that
/// failed half-way without a transaction).
pub(crate) fn dirty_row(set: &MigrationSet, row: &Applied) -> Finding {
    let file = set.migrations.iter().find(|m| m.version == row.version);
    let mut f = Finding::new(
        Level::Fail,
        Rule::DirtyHistory,
        format!(
            "migration {} is marked as failed/dirty in {}: it was partially applied",
            row.version,
            set.format.history_table()
        ),
    )
    .count(1)
    .object(row.version.clone())
    .remedy(match set.format {
        Format::GolangMigrate => "repair the schema by hand, then `migrate force <version>`",
        Format::Flyway => "repair the schema by hand, then `flyway repair`",
        _ => {
            "repair the schema by hand, then delete the failed history row and re-run the migration"
        }
    });
    if let Some(m) = file {
        f = f.file(&m.up.file);
    }
    f
}

/// Pending migrations and the findings about the history.
pub(crate) fn pending<'a>(
    set: &'a MigrationSet,
    applied: Option<&[Applied]>,
) -> (Vec<&'a Migration>, Vec<Finding>) {
    let mut findings = Vec::new();
    let Some(applied) = applied else {
        return (set.migrations.iter().collect(), findings);
    };
    findings.extend(
        applied
            .iter()
            .filter(|row| !row.success)
            .map(|row| dirty_row(set, row)),
    );
    if set.format == Format::GolangMigrate {
        // One row: the current version; everything up to it counts as applied.
        let current = applied
            .first()
            .map(|a| set.format.key(&a.version))
            .unwrap_or_default();
        let pending = set.migrations.iter().filter(|m| m.key > current).collect();
        return (pending, findings);
    }
    // None while nothing is applied (a fresh `diesel setup`): then no file can
    // be older than the history.
    let max_applied = applied.iter().map(|a| set.format.key(&a.version)).max();
    for a in applied {
        let key = set.format.key(&a.version);
        match set.migrations.iter().find(|m| m.key == key) {
            None => findings.push(
                Finding::new(
                    Level::Fail,
                    Rule::HistoryMismatch,
                    format!(
                        "migration {} is applied in the database but its file is missing{}",
                        a.version,
                        a.description.as_ref().map(|d| format!(" ('{d}')")).unwrap_or_default()
                    ),
                )
                .object(a.version.clone())
                .remedy("the data comes from another branch: check out the branch that has the file, or restore data made on this branch"),
            ),
            Some(m) => {
                if let (Some(have), Some(want)) = (&a.checksum, &m.checksum)
                    && have != want
                {
                    let divergent = a.description.as_ref().is_some_and(|d| d != &m.description);
                    if !divergent && set.format == Format::Sqlx && only_line_endings(&m.up.sql, have) {
                        findings.push(
                            Finding::new(
                                Level::Warn,
                                Rule::HistoryMismatch,
                                format!(
                                    "{} differs from the applied file only in its line endings — sqlx's checksum is CRLF-sensitive and `sqlx migrate run` will refuse it",
                                    m.up.file
                                ),
                            )
                            .file(&m.up.file)
                            .object(a.version.clone())
                            .remedy("restore the file's original line endings (e.g. a .gitattributes `*.sql -text`)"),
                        );
                        continue;
                    }
                    findings.push(
                        Finding::new(
                            Level::Fail,
                            Rule::HistoryMismatch,
                            if divergent {
                                format!(
                                    "version {} is a different migration in the database ('{}') than on disk ('{}')",
                                    a.version,
                                    a.description.as_deref().unwrap_or(""),
                                    m.description
                                )
                            } else {
                                format!("{} was edited after it was applied (checksum differs)", m.up.file)
                            },
                        )
                        .file(&m.up.file)
                        .object(a.version.clone())
                        .remedy("never edit an applied migration: revert the edit and add a new migration"),
                    );
                }
            }
        }
    }
    let pending: Vec<&Migration> = set
        .migrations
        .iter()
        .filter(|m| !applied.iter().any(|a| set.format.key(&a.version) == m.key))
        .collect();
    for m in &pending {
        if max_applied.as_ref().is_some_and(|max| m.key < *max) {
            findings.push(
                Finding::new(
                    Level::Warn,
                    Rule::OutOfOrder,
                    format!(
                        "{} is pending but older than migrations already applied: {}",
                        m.up.file,
                        match set.format {
                            Format::Flyway => "Flyway refuses it unless outOfOrder=true",
                            Format::Refinery => "refinery aborts with MissingVersion",
                            _ => "the runner applies it after newer ones, an order nobody tested",
                        }
                    ),
                )
                .file(&m.up.file)
                .count(1)
                .remedy("renumber the file after the newest applied migration (and re-check), or make sure it does not depend on the order"),
            );
        }
    }
    (pending, findings)
}

/// golang-migrate keeps only the current version: a file the branch adds
/// (`branch_only`, by key) below it is never applied, by the runner or here.
pub(crate) fn never_applied(
    set: &MigrationSet,
    branch_only: &[VersionKey],
    pending: &[&Migration],
) -> Vec<Finding> {
    if set.format != Format::GolangMigrate {
        return Vec::new();
    }
    set.migrations
        .iter()
        .filter(|m| branch_only.contains(&m.key) && !pending.iter().any(|p| p.key == m.key))
        .map(|m| {
            Finding::new(
                Level::Fail,
                Rule::OutOfOrder,
                format!(
                    "{} is older than the migrations already applied, and golang-migrate never applies it",
                    m.up.file
                ),
            )
            .file(&m.up.file)
            .count(1)
            .remedy("renumber the file after the newest migration on the base branch, then re-check")
        })
        .collect()
}

/// Whether `sql` with other line endings has the applied sqlx checksum.
fn only_line_endings(sql: &str, applied_hex: &str) -> bool {
    use sha2::{Digest, Sha384};
    let lf = sql.replace("\r\n", "\n");
    let crlf = lf.replace('\n', "\r\n");
    [lf, crlf]
        .iter()
        .any(|v| hex::encode(Sha384::digest(v.as_bytes())) == applied_hex)
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_ending_only_edits_are_recognised() {
        use sha2::{Digest, Sha384};
        let applied = hex::encode(Sha384::digest(b"SELECT 1;\r\nSELECT 2;\r\n"));
        assert!(super::only_line_endings("SELECT 1;\nSELECT 2;\n", &applied));
        assert!(!super::only_line_endings(
            "SELECT 1;\nSELECT 3;\n",
            &applied
        ));
    }
}
