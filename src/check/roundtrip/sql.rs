//! Undo for the SQL runners: each migration's down file, run the way its
//! runner runs it (transaction or not, history row removed).

use std::collections::HashMap;
use std::ops::Range;

use anyhow::Result;
use tokio_postgres::Client;

use super::super::apply::{self, Direction, Failure, Mode};
use super::super::fingerprint::{self, Depth, Fingerprint};
use super::super::migrations::{Format, Migration};
use super::super::report::{Finding, Level};
use super::super::risk::Risk;
use super::super::rule::Rule;
use super::super::split;
use super::{Reverse, Undone};

/// A window of SQL migrations, every one with a down.
pub(in crate::check) struct Sql<'a> {
    pub format: Format,
    pub pending: &'a [&'a Migration],
    pub history_table: &'a str,
}

impl Sql<'_> {
    fn down_file(&self, i: usize) -> String {
        self.pending[i]
            .down
            .as_ref()
            .map(|d| d.file.clone())
            .unwrap_or_default()
    }
}

/// Whether a statement of the run ends or opens a transaction itself (a
/// file's own COMMIT ends ward's transaction: what ran before it stays).
fn controls_transaction(run: &apply::FileRun) -> bool {
    run.statements.iter().any(|s| {
        let first = s
            .sql
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_end_matches(';')
            .to_ascii_uppercase();
        matches!(
            first.as_str(),
            "BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "PREPARE"
        )
    })
}

/// The first failure of `runs`, with its file.
fn first_failure(runs: Vec<apply::FileRun>) -> Option<(String, Failure)> {
    runs.into_iter()
        .find_map(|r| r.failure.map(|f| (r.file, f)))
}

impl Reverse for Sql<'_> {
    const FRESH_VALUES: bool = false;

    fn len(&self) -> usize {
        self.pending.len()
    }
    fn file(&self, i: usize) -> String {
        self.pending[i].up.file.clone()
    }
    fn blamed(&self, i: usize) -> String {
        self.down_file(i)
    }
    fn undo_words(&self, _i: usize) -> String {
        "down".into()
    }
    fn undone_by(&self, i: usize) -> String {
        format!("its down migration {}", self.down_file(i))
    }

    async fn apply(
        &self,
        c: &Client,
        _url: &str,
        range: Range<usize>,
    ) -> Result<Option<(String, Failure)>> {
        if range.is_empty() {
            return Ok(None);
        }
        let runs = apply::run(c, self.format, &self.pending[range], Direction::Up).await?;
        Ok(first_failure(runs))
    }

    async fn undo(&self, c: &Client, _url: &str, i: usize) -> Result<Undone> {
        let runs = apply::run(c, self.format, &self.pending[i..=i], Direction::Down).await?;
        let Some(run) = runs.into_iter().find(|r| r.failure.is_some()) else {
            return Ok(Undone::Done);
        };
        let rolled_back = run.mode == Mode::Transaction && !controls_transaction(&run);
        let (file, f) = (run.file, run.failure.expect("the failed run"));
        Ok(Undone::Failed {
            finding: Finding::new(
                Level::Fail,
                Rule::DownMigration,
                format!(
                    "{file} fails after its up migration: {} (SQLSTATE {})",
                    f.message, f.sqlstate
                ),
            )
            .at(&file, f.line, &f.statement)
            .remedy("make the down migration undo exactly what the up migration did"),
            rolled_back,
        })
    }

    async fn undo_all(&self, c: &Client, _url: &str) -> Result<Option<String>> {
        let reversed: Vec<&Migration> = self.pending.iter().rev().copied().collect();
        let runs = apply::run(c, self.format, &reversed, Direction::Down).await?;
        Ok(first_failure(runs).map(|(file, f)| format!("{file} fails: {}", f.message)))
    }

    fn quiet(&self, i: usize, down: bool) -> bool {
        let m = self.pending[i];
        match down {
            false => quiet(&m.up.sql),
            true => m.down.as_ref().is_some_and(|d| quiet(&d.sql)),
        }
    }

    /// Every table's row count and the whole catalog always; the data of
    /// the tables migrations `around` (their ups and downs) can change, as
    /// [`Risk`] reads them — or of every table.
    async fn take(&self, c: &Client, around: Option<&[usize]>) -> Result<Fingerprint> {
        self.take_with(c, around, None).await
    }

    async fn take_after(
        &self,
        c: &Client,
        around: Option<&[usize]>,
        known: &Fingerprint,
    ) -> Result<Fingerprint> {
        self.take_with(c, around, Some(known)).await
    }
}

impl Sql<'_> {
    /// [`Reverse::take`]; with `known`, the data of the tables it holds
    /// unchanged (same oid, same columns) is taken from it, not read.
    async fn take_with(
        &self,
        c: &Client,
        around: Option<&[usize]>,
        known: Option<&Fingerprint>,
    ) -> Result<Fingerprint> {
        let Some(around) = around else {
            return fingerprint::take(c, &[], self.history_table).await;
        };
        let mut fp = fingerprint::catalog(c, self.history_table).await?;
        let mut scripts: Vec<Migration> = Vec::new();
        for m in around.iter().filter_map(|i| self.pending.get(*i)) {
            scripts.push((*m).clone());
            if let Some(d) = &m.down {
                let mut down = (*m).clone();
                down.up = d.clone();
                scripts.push(down);
            }
        }
        let risk = Risk::of(&fp, &scripts, false);
        let mut depth: HashMap<u32, Depth> = fp
            .tables
            .keys()
            .map(|o| {
                let d = if risk.hashed(*o) {
                    Depth::Full
                } else {
                    Depth::Columns(Vec::new())
                };
                (*o, d)
            })
            .collect();
        if let Some(known) = known {
            fingerprint::carry(&mut fp, known, &mut depth);
        }
        fingerprint::fill(&mut fp, c, &[], &depth).await?;
        Ok(fp)
    }
}

/// Whether a script cannot change a row of a table that exists before it
/// and keeps its columns, nor how a value of one reads as text (what a
/// fingerprint hashes): every statement is catalog-only — indexes,
/// comments, functions, triggers, views, new tables — or an `ALTER TABLE`
/// that evaluates nothing per row (no new default, no CHECK, no type
/// change, no dropped column, no partition or inheritance change). A
/// statement that is none of these (DML, DO, SELECT, SET, ALTER TYPE,
/// DROP TABLE, CREATE EXTENSION, …) makes the script not quiet. Strictly
/// narrower than [`Risk`]'s reading: a quiet step's fingerprint after it
/// may take the data of such tables from the one before.
pub(super) fn quiet(sql: &str) -> bool {
    const CATALOG_ONLY: &[&str] = &[
        "CREATE INDEX",
        "CREATE UNIQUE INDEX",
        "DROP INDEX",
        "ALTER INDEX",
        "COMMENT ",
        "CREATE FUNCTION",
        "CREATE OR REPLACE FUNCTION",
        "CREATE PROCEDURE",
        "CREATE OR REPLACE PROCEDURE",
        "DROP FUNCTION",
        "DROP PROCEDURE",
        "CREATE TRIGGER",
        "CREATE OR REPLACE TRIGGER",
        "CREATE CONSTRAINT TRIGGER",
        "DROP TRIGGER",
        "CREATE VIEW",
        "CREATE OR REPLACE VIEW",
        "DROP VIEW",
        "CREATE SEQUENCE",
        "GRANT ",
        "REVOKE ",
        "BEGIN",
        "COMMIT",
        "ANALYZE",
    ];
    split::split(sql).iter().all(|st| {
        let text = st.normalized();
        let words: Vec<&str> = text
            .split(|c: char| !c.is_alphanumeric() && c != '_')
            .filter(|w| !w.is_empty())
            .collect();
        let has = |w: &str| words.contains(&w);
        if CATALOG_ONLY.iter().any(|p| text.starts_with(p)) {
            return true;
        }
        if text.starts_with("CREATE TABLE") {
            // No rows of its own to compute (AS SELECT / EXECUTE may call anything).
            return !has("AS") && !has("SELECT") && !has("EXECUTE");
        }
        if !text.starts_with("ALTER TABLE") {
            return false;
        }
        const EVALUATES: &[&str] = &[
            "TYPE", "USING", "CHECK", "VALIDATE", "ATTACH", "DETACH", "INHERIT",
        ];
        let evaluates = words.iter().any(|w| EVALUATES.contains(w));
        // A new column's default is computed per row; SET/DROP DEFAULT are not.
        let new_default = words.iter().enumerate().any(|(k, w)| {
            *w == "DEFAULT" && !matches!(words.get(k.wrapping_sub(1)), Some(&"SET" | &"DROP"))
        });
        let drops_data = words.windows(2).any(|w| {
            w[0] == "DROP"
                && !matches!(
                    w[1],
                    "CONSTRAINT" | "DEFAULT" | "NOT" | "IDENTITY" | "EXPRESSION"
                )
        });
        !evaluates && !new_default && !drops_data
    })
}

#[cfg(test)]
mod tests {
    use super::quiet;

    #[test]
    fn catalog_only_scripts_are_quiet() {
        assert!(quiet("CREATE INDEX CONCURRENTLY i ON t (a);"));
        assert!(quiet("DROP INDEX i;\nCOMMENT ON COLUMN t.a IS 'x';"));
        assert!(quiet(
            "CREATE OR REPLACE FUNCTION f() RETURNS trigger AS $$ BEGIN UPDATE u SET x = 1; RETURN NEW; END $$ LANGUAGE plpgsql;"
        ));
        assert!(quiet(
            "CREATE TABLE log_files (id serial PRIMARY KEY, name text NOT NULL);"
        ));
        assert!(quiet("ALTER TABLE users ADD COLUMN is_admin boolean;"));
        assert!(quiet("ALTER TABLE t ALTER COLUMN a SET DEFAULT now();"));
        assert!(quiet("ALTER TABLE t ALTER COLUMN a DROP DEFAULT;"));
        assert!(quiet("ALTER TABLE t DROP CONSTRAINT c;"));
        assert!(quiet("ALTER TABLE t RENAME COLUMN a TO b;"));
        assert!(quiet(""));
    }

    #[test]
    fn anything_that_can_change_or_reread_rows_is_not_quiet() {
        for sql in [
            "UPDATE t SET a = 1;",
            "INSERT INTO t VALUES (1);",
            "DELETE FROM t;",
            "TRUNCATE t;",
            "DO $$ BEGIN PERFORM 1; END $$;",
            "SELECT setval('s', 1);",
            "SET TimeZone = 'UTC';",
            "ALTER TYPE e RENAME VALUE 'a' TO 'b';",
            "DROP TABLE child;",
            "CREATE EXTENSION pg_trgm;",
            "CREATE TABLE c AS SELECT * FROM t;",
            "ALTER TABLE t ADD COLUMN a int DEFAULT f();",
            "ALTER TABLE t ADD COLUMN a int NOT NULL DEFAULT 0;",
            "ALTER TABLE t ADD CONSTRAINT c CHECK (f(a));",
            "ALTER TABLE t VALIDATE CONSTRAINT c;",
            "ALTER TABLE t ALTER COLUMN a TYPE bigint;",
            "ALTER TABLE t DROP COLUMN a;",
            "ALTER TABLE t ATTACH PARTITION p FOR VALUES IN (1);",
            "ALTER TABLE t INHERIT p;",
            "CREATE INDEX i ON t (a);\nUPDATE t SET a = 1;",
        ] {
            assert!(!quiet(sql), "{sql}");
        }
    }
}
