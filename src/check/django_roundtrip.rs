//! The down round trip with Django's runner: after the window is applied,
//! `manage.py migrate APP PREV` takes every app back to where it was before
//! the window (newest app first), which must give back the schema and data
//! before; applying the window again must give back the state after. When
//! the whole window does not round-trip, a second pass on a fresh clone goes
//! migration by migration (up, `migrate APP PREV`, up) so that each
//! difference is blamed on its own migration file. A migration Django
//! refuses to unapply (`IrreversibleError`: a RunPython or RunSQL without a
//! reverse) is reported as such (INFO), not as a failure.

use anyhow::Result;
use tokio_postgres::Client;

use super::django::{self, Plan, Step};
use super::django_trace;
use super::fingerprint::{self, Fingerprint};
use super::report::{Finding, Level};
use super::roundtrip::{RoundTrip, compare, compare_reapplied};
use super::rule::Rule;
use super::scratch::{Scratch, with_db};
use crate::django::{Project, shorten};

/// Django's history table, left out of the comparisons like any runner's.
const HISTORY: &str = "django_migrations";

/// Rows Django's `post_migrate` handlers add and never take back on a
/// migrate backwards (content types, permissions): bookkeeping, not data.
const BOOKKEEPING: &[&str] = &["django_content_type", "auth_permission"];

/// The Django error for a migration that cannot be unapplied.
const IRREVERSIBLE: &str = "IrreversibleError";

/// up → back must give PRE, back → up must give POST; on a difference, the
/// migration-by-migration pass on a fresh clone of `base` blames it.
#[allow(clippy::too_many_arguments)]
pub(super) async fn round_trip(
    scratch: &mut Scratch,
    base: &str,
    project: &Project,
    plan: &Plan,
    client: &Client,
    url: &str,
    pre: &Fingerprint,
    post: &Fingerprint,
) -> Result<RoundTrip> {
    let whole = whole_window(project, plan, client, url, pre, post).await?;
    if whole.is_empty() {
        return Ok(RoundTrip {
            findings: Vec::new(),
            moved_to: None,
        });
    }
    let (mut findings, db) = step_by_step(scratch, base, project, plan, pre).await?;
    if findings.is_empty() {
        let oldest = plan
            .steps
            .first()
            .map(|s| s.file.clone())
            .unwrap_or_default();
        for d in whole {
            findings.push(
                Finding::new(
                    Level::Fail,
                    Rule::DownMigration,
                    format!("the pending window does not round-trip as a whole: {d}"),
                )
                .file(&oldest)
                .remedy("the migrations' reverse operations must restore the schema and the data the window changed"),
            );
        }
    }
    Ok(RoundTrip {
        findings,
        moved_to: Some(db),
    })
}

/// The fingerprint a round trip compares: everything but Django's bookkeeping.
async fn take(client: &Client) -> Result<Fingerprint> {
    let mut fp = fingerprint::take(client, &[], HISTORY).await?;
    strip(&mut fp);
    Ok(fp)
}

fn strip(fp: &mut Fingerprint) {
    fp.tables
        .retain(|_, t| !BOOKKEEPING.contains(&t.name.as_str()));
}

/// The fast pass on the run's clone: every app back, then the window again;
/// what went wrong (nothing: the window round-trips).
async fn whole_window(
    project: &Project,
    plan: &Plan,
    client: &Client,
    url: &str,
    pre: &Fingerprint,
    post: &Fingerprint,
) -> Result<Vec<String>> {
    let (mut pre, mut post) = (pre.clone(), post.clone());
    strip(&mut pre);
    strip(&mut post);
    let back = django_trace::migrate(project, url, &plan.before_window, Some("UTC")).await?;
    if let Some(r) = back.runs.iter().find(|r| r.error.is_some()) {
        let e = r.error.as_ref().expect("found by its error");
        return Ok(vec![format!(
            "{} cannot be unapplied: {}: {}",
            r.version, e.kind, e.message
        )]);
    }
    if let Some(out) = &back.output {
        return Ok(vec![format!(
            "migrating back fails: {}",
            crate::django::last_error_line(out, "")
        )]);
    }
    let diffs = compare(&pre, &take(client).await?);
    if !diffs.is_empty() {
        return Ok(diffs.into_iter().map(|d| d.text).collect());
    }
    let (runs, _) = django::apply(project, plan, client, url, Some("UTC")).await?;
    if let Some((run, f)) = runs.iter().find_map(|r| r.failure.as_ref().map(|f| (r, f))) {
        return Ok(vec![format!(
            "{} cannot be applied again: {}",
            run.file, f.message
        )]);
    }
    // The state before came back, so the second apply started where the
    // first did: only the schema and the row counts must match.
    Ok(compare_reapplied(&post, &take(client).await?)
        .into_iter()
        .map(|d| d.text)
        .collect())
}

/// A fresh clone of `base` with `steps` applied; its name, URL and a connection.
async fn clone_with(
    scratch: &mut Scratch,
    base: &str,
    project: &Project,
    steps: &[Step],
) -> Result<(String, String, Client)> {
    let db = scratch.create("roundtrip", Some(base)).await?;
    let c = scratch.connect(&db).await?;
    super::apply::prepare_session(&c, "UTC").await?;
    let url = crate::pg::url_of(&with_db(&scratch.server, &db));
    let (runs, _) = django::apply_steps(project, steps, &c, &url, Some("UTC")).await?;
    if let Some(f) = runs.iter().find_map(|r| r.failure.as_ref()) {
        anyhow::bail!(
            "re-applying the pending migrations for the round trip failed the second time: {}",
            f.message
        );
    }
    Ok((db, url, c))
}

/// Up, back, up for each pending migration in turn, on a fresh clone.
async fn step_by_step(
    scratch: &mut Scratch,
    base: &str,
    project: &Project,
    plan: &Plan,
    pre: &Fingerprint,
) -> Result<(Vec<Finding>, String)> {
    let mut out = Vec::new();
    let (mut db, mut url, mut c) = clone_with(scratch, base, project, &[]).await?;
    let mut before = pre.clone();
    strip(&mut before);
    for (i, step) in plan.steps.iter().enumerate() {
        let one = std::slice::from_ref(step);
        let (up, _) = django::apply_steps(project, one, &c, &url, Some("UTC")).await?;
        if let Some(f) = up.iter().find_map(|r| r.failure.as_ref()) {
            anyhow::bail!(
                "{} failed in the round trip although it applied before: {}",
                step.file,
                f.message
            );
        }
        let after = take(&c).await?;
        let target = [(step.app.clone(), step.prev.clone())];
        let back = django_trace::migrate(project, &url, &target, Some("UTC")).await?;
        let version = format!("{}.{}", step.app, step.name);
        let error = back
            .runs
            .iter()
            .find(|r| r.version == version)
            .and_then(|r| r.error.as_ref());
        if let Some(e) = error
            && e.kind == IRREVERSIBLE
        {
            // Django checked before touching anything: the state is still `after`.
            out.push(
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
            );
            before = after;
            continue;
        }
        if back.output.is_some() {
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
            out.push(f);
            (db, url, c) = clone_with(scratch, base, project, &plan.steps[..=i]).await?;
            before = take(&c).await?;
            continue;
        }
        let undone = take(&c).await?;
        let restored = compare(&before, &undone);
        for d in &restored {
            out.push(
                d.finding(format!(
                    "up → migrate {} {} does not give back the original: {d}",
                    step.app, step.prev
                ))
                .file(&step.file)
                .remedy("the reverse must restore the schema and the data (a dropped column's values cannot come back: make the migration irreversible or keep the values)"),
            );
        }
        let (again, _) = django::apply_steps(project, one, &c, &url, Some("UTC")).await?;
        if let Some(f) = again.iter().find_map(|r| r.failure.as_ref()) {
            out.push(
                Finding::new(
                    Level::Fail,
                    Rule::DownMigration,
                    format!(
                        "{} cannot be applied again after Django unapplied it: {}",
                        step.file, f.message
                    ),
                )
                .at(&step.file, f.line, &f.statement)
                .remedy("its reverse leaves something behind that the migration creates"),
            );
            (db, url, c) = clone_with(scratch, base, project, &plan.steps[..=i]).await?;
            before = take(&c).await?;
            continue;
        }
        if restored.is_empty() {
            // The next migration starts from the state in the database, not
            // from `after`: the second apply gave new sequence ids and fresh
            // now()/uuid4() values, no difference of the reverse's making.
            before = take(&c).await?;
            continue;
        }
        let redone = take(&c).await?;
        for d in compare(&after, &redone) {
            out.push(
                d.finding(format!("up → back → up differs from up: {d}"))
                    .file(&step.file)
                    .remedy("the reverse leaves residue the migration does not expect"),
            );
        }
        before = redone;
    }
    Ok((out, db))
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
