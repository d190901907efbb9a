//! Undo for Django's runner: `manage.py migrate APP PREV` (through ward's
//! runner script, which records the statements a reverse executes). The
//! whole window goes back with every app it touched, newest app first.
//! Django's `django_content_type` and `auth_permission` rows are left out
//! of every comparison: `post_migrate` adds them and never takes them back.
//! A migration Django refuses to unapply (`IrreversibleError`: a RunPython
//! or RunSQL without a reverse) is reported as such (INFO), not as a failure.

use std::ops::Range;

use anyhow::Result;
use tokio_postgres::Client;

use super::super::apply::Failure;
use super::super::django::{self, Plan};
use super::super::django_trace;
use super::super::fingerprint::{self, Fingerprint};
use super::super::report::{Finding, Level};
use super::super::rule::Rule;
use super::{Reverse, Undone};
use crate::django::{Project, shorten};

/// Django's history table, left out of the comparisons like any runner's.
const HISTORY: &str = "django_migrations";

/// Rows Django's `post_migrate` handlers add and never take back on a
/// migrate backwards (content types, permissions): bookkeeping, not data.
const BOOKKEEPING: &[&str] = &["django_content_type", "auth_permission"];

/// The Django error for a migration that cannot be unapplied.
const IRREVERSIBLE: &str = "IrreversibleError";

/// A window of Django migrations, as Django planned it.
pub(in crate::check) struct Django<'a> {
    pub project: &'a Project,
    pub plan: &'a Plan,
}

impl Reverse for Django<'_> {
    // A re-apply gives new sequence ids and fresh now()/uuid4() values: no
    // difference of the reverse's making.
    const FRESH_VALUES: bool = true;

    fn len(&self) -> usize {
        self.plan.steps.len()
    }
    fn file(&self, i: usize) -> String {
        self.plan.steps[i].file.clone()
    }
    fn blamed(&self, i: usize) -> String {
        self.file(i)
    }
    fn undo_words(&self, i: usize) -> String {
        let s = &self.plan.steps[i];
        format!("migrate {} {}", s.app, s.prev)
    }
    fn undone_by(&self, _i: usize) -> String {
        "Django unapplied it".into()
    }
    fn strip(&self, fp: &mut Fingerprint) {
        fp.tables
            .retain(|_, t| !BOOKKEEPING.contains(&t.name.as_str()));
    }

    async fn apply(
        &self,
        c: &Client,
        url: &str,
        range: Range<usize>,
    ) -> Result<Option<(String, Failure)>> {
        let (runs, _) =
            django::apply_steps(self.project, &self.plan.steps[range], c, url, Some("UTC")).await?;
        Ok(runs
            .into_iter()
            .find_map(|r| r.failure.map(|f| (r.file, f))))
    }

    async fn undo(&self, _c: &Client, url: &str, i: usize) -> Result<Undone> {
        let step = &self.plan.steps[i];
        let target = [(step.app.clone(), step.prev.clone())];
        let back = django_trace::migrate(self.project, url, &target, Some("UTC")).await?;
        let version = format!("{}.{}", step.app, step.name);
        let error = back
            .runs
            .iter()
            .find(|r| r.version == version)
            .and_then(|r| r.error.as_ref());
        if let Some(e) = error
            && e.kind == IRREVERSIBLE
        {
            // Django checked before touching anything.
            return Ok(Undone::Refused(
                Finding::new(
                    Level::Info,
                    Rule::DownMigration,
                    format!(
                        "{} is irreversible: Django refuses to unapply it ({})",
                        step.file,
                        shorten(&without_addresses(&e.message), 200)
                    ),
                )
                .file(&step.file)
                .remedy("nothing to do if going back is never needed; else give its RunPython/RunSQL a reverse"),
            ));
        }
        if back.output.is_none() {
            return Ok(Undone::Done);
        }
        let (message, statement) = unapply_failure(&back, &version);
        let mut f = Finding::new(
            Level::Fail,
            Rule::DownMigration,
            format!(
                "{} fails when Django unapplies it after its up: {message}",
                step.file
            ),
        )
        .file(&step.file)
        .remedy("make the reverse operations undo exactly what the migration did");
        if let Some(sql) = statement {
            f = f.at(&step.file, 1, &sql);
        }
        // Whether Django's atomic migration left anything is not known here.
        Ok(Undone::Failed {
            finding: f,
            rolled_back: false,
        })
    }

    async fn undo_all(&self, _c: &Client, url: &str) -> Result<Option<String>> {
        let back =
            django_trace::migrate(self.project, url, &self.plan.before_window, Some("UTC")).await?;
        if let Some((r, e)) = back
            .runs
            .iter()
            .find_map(|r| r.error.as_ref().map(|e| (r, e)))
        {
            return Ok(Some(format!(
                "{} cannot be unapplied: {}: {}",
                r.version, e.kind, e.message
            )));
        }
        Ok(back.output.as_deref().map(|out| {
            format!(
                "migrating back fails: {}",
                crate::django::last_error_line(out, "")
            )
        }))
    }

    /// Everything but Django's bookkeeping (a migration's Python may touch any table).
    async fn take(&self, c: &Client, _around: Option<&[usize]>) -> Result<Fingerprint> {
        let mut fp = fingerprint::take(c, &[], HISTORY).await?;
        self.strip(&mut fp);
        Ok(fp)
    }
}

/// Why unapplying `version` failed, and the statement that failed, if one did.
fn unapply_failure(back: &django_trace::Migrated, version: &str) -> (String, Option<String>) {
    let run = back.runs.iter().find(|r| r.version == version);
    let failed = run.and_then(|r| r.statements.iter().rev().find(|e| e.error.is_some()));
    let message = match (failed, run.and_then(|r| r.error.as_ref())) {
        (Some(e), _) => e.error.clone().unwrap_or_default(),
        (None, Some(e)) => format!("{}: {}", e.kind, e.message),
        (None, None) => crate::django::last_error_line(back.output.as_deref().unwrap_or(""), ""),
    };
    (shorten(&message, 300), failed.map(|e| e.sql.clone()))
}

/// Python's reprs carry memory addresses (`<function f at 0x7f…>`): gone,
/// so that the same check gives the same message.
fn without_addresses(s: &str) -> String {
    static ADDRESS: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r" at 0x[0-9a-fA-F]+").unwrap());
    ADDRESS.replace_all(s, "").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irreversible_messages_lose_their_memory_addresses() {
        assert_eq!(
            without_addresses(
                "Operation <RunPython <function forward at 0x7f434cbabd80>> in records.0009_irr is not reversible"
            ),
            "Operation <RunPython <function forward>> in records.0009_irr is not reversible"
        );
    }
}
