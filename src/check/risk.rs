//! Which tables the pending statements can change — the reading that lets
//! a check copy and compare only what may differ, and the catch for changes
//! nobody expected (triggers).

use super::apply::FileRun;
use super::fingerprint::Fingerprint;
use super::migrations::Migration;
use super::report::{Finding, Level};
use super::rule::Rule;
use super::split;

/// Which tables the pending statements can change, by a conservative reading
/// of each statement: index, constraint, add-column and other catalog-only
/// statements cannot change existing values; `ALTER … TYPE/USING` and DML can
/// (with the tables their cascades reach); `ALTER … DROP` needs the column
/// statistics; anything opaque (DO, SELECT, CALL, --apply-cmd) may touch every table.
pub(crate) struct Risk {
    all: bool,
    /// Tables whose values may change: copied before, compared row by row.
    snap: Vec<u32>,
    /// Tables whose column statistics are needed (⊇ snap).
    hash: Vec<u32>,
}

impl Risk {
    pub(crate) fn of(pre: &Fingerprint, pending: &[Migration], untraced: bool) -> Risk {
        let mut r = Risk {
            all: untraced,
            snap: Vec::new(),
            hash: Vec::new(),
        };
        const SAFE: &[&str] = &[
            "CREATE INDEX",
            "CREATE UNIQUE INDEX",
            "DROP INDEX",
            "CREATE TABLE",
            "CREATE VIEW",
            "CREATE OR REPLACE VIEW",
            "CREATE MATERIALIZED VIEW",
            "CREATE SEQUENCE",
            "CREATE TYPE",
            "CREATE EXTENSION",
            "CREATE SCHEMA",
            "COMMENT ",
            "GRANT ",
            "REVOKE ",
            "ANALYZE",
            "VACUUM",
            "CREATE FUNCTION",
            "CREATE OR REPLACE FUNCTION",
            "CREATE PROCEDURE",
            "CREATE OR REPLACE PROCEDURE",
            "CREATE TRIGGER",
            "CREATE OR REPLACE TRIGGER",
            "CREATE CONSTRAINT TRIGGER",
            "SET ",
            "RESET ",
            "ALTER TYPE",
            "ALTER SEQUENCE",
            "ALTER INDEX",
            "REINDEX",
            "BEGIN",
            "COMMIT",
            "LOCK ",
            "DROP VIEW",
            "DROP FUNCTION",
            "DROP TYPE",
            "DROP TRIGGER",
            "DROP TABLE",
            "CREATE DOMAIN",
            "ALTER DOMAIN",
        ];
        const DML: &[&str] = &[
            "UPDATE", "DELETE", "INSERT", "TRUNCATE", "MERGE", "COPY", "WITH",
        ];
        for m in pending {
            for st in split::split(&m.up.sql) {
                let up = st.normalized();
                let named: Vec<u32> = pre
                    .tables
                    .values()
                    .filter(|t| names_word(&st.sql, &t.name))
                    .map(|t| t.oid)
                    .collect();
                if SAFE.iter().any(|p| up.starts_with(p)) {
                    continue;
                }
                if up.starts_with("ALTER TABLE") {
                    let words: Vec<&str> = up
                        .split(|c: char| !c.is_alphanumeric() && c != '_')
                        .filter(|w| !w.is_empty())
                        .collect();
                    if words.iter().any(|w| *w == "TYPE" || *w == "USING") {
                        r.snap.extend(&named);
                    } else if words.windows(2).any(|w| {
                        w[0] == "DROP"
                            && !matches!(
                                w[1],
                                "CONSTRAINT" | "DEFAULT" | "NOT" | "IDENTITY" | "EXPRESSION"
                            )
                    }) {
                        r.hash.extend(&named);
                    }
                    continue;
                }
                if DML.iter().any(|p| up.starts_with(p)) {
                    r.snap.extend(&named);
                    continue;
                }
                r.all = true;
            }
        }
        // Cascades: tables whose foreign keys act on changes of a snapped table.
        loop {
            let more: Vec<u32> = pre
                .constraints
                .iter()
                .filter(|c| c.kind == "f" && !r.snap.contains(&c.table))
                .filter(|c| {
                    c.def.contains(" CASCADE")
                        || c.def.contains(" SET NULL")
                        || c.def.contains(" SET DEFAULT")
                })
                .filter(|c| {
                    r.snap.iter().any(|oid| {
                        let t = &pre.tables[oid];
                        c.def.contains(&format!("REFERENCES {}(", t.name))
                            || c.def
                                .contains(&format!("REFERENCES {}.{}(", t.schema, t.name))
                            || c.def.contains(&format!("REFERENCES {}(", t.qualified()))
                    })
                })
                .map(|c| c.table)
                .collect();
            if more.is_empty() {
                break;
            }
            r.snap.extend(more);
        }
        // Several statements may name one table: one copy of it.
        r.snap.sort_unstable();
        r.snap.dedup();
        r
    }

    pub(crate) fn hashed(&self, oid: u32) -> bool {
        self.all || self.snap.contains(&oid) || self.hash.contains(&oid)
    }

    pub(super) fn snap_list(&self, pre: &Fingerprint) -> Vec<u32> {
        if self.all {
            pre.tables.keys().copied().collect()
        } else {
            self.snap.clone()
        }
    }
}

pub(super) fn names_word(sql: &str, name: &str) -> bool {
    let lower = sql.to_lowercase();
    let name = name.to_lowercase();
    lower.match_indices(&name).any(|(i, _)| {
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(lower[..i].chars().last()) && !ident(lower[i + name.len()..].chars().next())
    })
}

/// Rows updated in tables no statement was expected to change (a trigger,
/// a function): reported from the per-transaction statistics.
pub(super) fn unexpected_changes(runs: &[FileRun], pre: &Fingerprint, risk: &Risk) -> Vec<Finding> {
    let mut out = Vec::new();
    for run in runs {
        for st in &run.statements {
            for (oid, n) in &st.updated {
                if risk.hashed(*oid) {
                    continue;
                }
                let Some(t) = pre.tables.get(oid) else {
                    continue;
                };
                out.push(
                    Finding::new(
                        Level::Fail,
                        Rule::ValuesChanged,
                        format!(
                            "{n} rows of {} were updated by a statement that never names it (a trigger or a function); no row-level copy was kept",
                            t.display()
                        ),
                    )
                    .count(*n)
                    .object(t.display())
                    .at(&run.file, st.line, &st.sql)
                    .remedy("check what the trigger/function changes, and keep the old values if they matter"),
                );
            }
        }
    }
    out
}
