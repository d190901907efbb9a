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

    /// Every table's row count and the whole catalog always; the data of
    /// the tables migrations `around` (their ups and downs) can change, as
    /// [`Risk`] reads them — or of every table.
    async fn take(&self, c: &Client, around: Option<&[usize]>) -> Result<Fingerprint> {
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
        let depth: HashMap<u32, Depth> = fp
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
        fingerprint::fill(&mut fp, c, &[], &depth).await?;
        Ok(fp)
    }
}
