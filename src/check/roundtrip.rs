//! Down migrations: up → down must give back the schema and data before,
//! and up → down → up the same as up — for every down in the window, each
//! difference blamed on the down that made it (D4).

use anyhow::Result;
use tokio_postgres::Client;

use super::apply::{self, Direction};
use super::fingerprint::{self, Fingerprint};
use super::migrations::{Format, Migration};
use super::report::{Finding, Level};
use super::risk::Risk;
use super::rule::Rule;
use super::scratch::Scratch;
use fingerprint::Depth;
use std::collections::HashMap;

/// What the round trip found, and where the migrated state now lives.
pub(super) struct RoundTrip {
    pub findings: Vec<Finding>,
    /// A database at the migrated state, when the run's own clone was left
    /// elsewhere (a down failed half-way there): later checks use it instead.
    pub moved_to: Option<String>,
}

/// up → down must give back PRE; down → up must give back POST. A first
/// pass runs every down and every up again on the run's clone; only when it
/// finds something does a second pass, on a fresh clone of `base`, go
/// migration by migration (up, down, up) so that every down is exercised
/// and every difference is blamed on the down responsible.
#[allow(clippy::too_many_arguments)]
pub(super) async fn round_trip(
    scratch: &mut Scratch,
    base: &str,
    client: &Client,
    format: Format,
    pending: &[&Migration],
    pre: &Fingerprint,
    post: &Fingerprint,
    history_table: &str,
) -> Result<RoundTrip> {
    let whole = whole_window(client, format, pending, pre, post, history_table).await?;
    if whole.is_empty() {
        return Ok(RoundTrip {
            findings: Vec::new(),
            moved_to: None,
        });
    }
    let (mut findings, db) =
        step_by_step(scratch, base, format, pending, pre, history_table).await?;
    if findings.is_empty() {
        // Step by step compares only the tables each migration can change;
        // what only the whole window shows is still reported.
        let oldest = pending
            .first()
            .and_then(|m| m.down.as_ref())
            .map(|d| d.file.clone())
            .unwrap_or_default();
        for d in whole {
            findings.push(
                Finding::new(
                    Level::Fail,
                    Rule::DownMigration,
                    format!("the pending window does not round-trip as a whole: {d}"),
                )
                .file(&oldest)
                .remedy("the down migrations must restore the schema and the data the up migrations changed"),
            );
        }
    }
    Ok(RoundTrip {
        findings,
        moved_to: Some(db),
    })
}

/// The fast pass: every down (newest first), then every up again; what
/// went wrong (nothing: the window round-trips).
async fn whole_window(
    client: &Client,
    format: Format,
    pending: &[&Migration],
    pre: &Fingerprint,
    post: &Fingerprint,
    history_table: &str,
) -> Result<Vec<String>> {
    let reversed: Vec<&Migration> = pending.iter().rev().copied().collect();
    let downs = apply::run(client, format, &reversed, Direction::Down).await?;
    if let Some((run, f)) = downs
        .iter()
        .find_map(|r| r.failure.as_ref().map(|f| (r, f)))
    {
        return Ok(vec![format!("{} fails: {}", run.file, f.message)]);
    }
    let diffs = compare(pre, &fingerprint::take(client, &[], history_table).await?);
    if !diffs.is_empty() {
        return Ok(diffs.into_iter().map(|d| d.text).collect());
    }
    let ups = apply::run(client, format, pending, Direction::Up).await?;
    if let Some((run, f)) = ups.iter().find_map(|r| r.failure.as_ref().map(|f| (r, f))) {
        return Ok(vec![format!(
            "{} cannot be applied again: {}",
            run.file, f.message
        )]);
    }
    Ok(
        compare(post, &fingerprint::take(client, &[], history_table).await?)
            .into_iter()
            .map(|d| d.text)
            .collect(),
    )
}

/// A fingerprint whose data covers the tables `ms` (their ups and downs)
/// can change, as [`Risk`] reads them; every table's row count and the
/// whole catalog always.
async fn take_for(client: &Client, history_table: &str, ms: &[&Migration]) -> Result<Fingerprint> {
    let mut fp = fingerprint::catalog(client, history_table).await?;
    let mut scripts: Vec<Migration> = Vec::new();
    for m in ms {
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
    fingerprint::fill(&mut fp, client, &[], &depth).await?;
    Ok(fp)
}

/// A fresh clone of `base` with the first `n` pending migrations applied.
async fn clone_with(
    scratch: &mut Scratch,
    base: &str,
    format: Format,
    ups: &[&Migration],
) -> Result<(String, Client)> {
    let db = scratch.create("roundtrip", Some(base)).await?;
    let c = scratch.connect(&db).await?;
    apply::prepare_session(&c, "UTC").await?;
    if !ups.is_empty() {
        let runs = apply::run(&c, format, ups, Direction::Up).await?;
        if let Some(f) = runs.iter().find_map(|r| r.failure.as_ref()) {
            anyhow::bail!(
                "re-applying the pending migrations for the round trip failed the second time: {}",
                f.message
            );
        }
    }
    Ok((db, c))
}

/// Up, down, up for each pending migration in turn, on a fresh clone; a
/// failing down (or up after it) is reported and the walk continues from a
/// fresh clone with the migrations so far applied.
async fn step_by_step(
    scratch: &mut Scratch,
    base: &str,
    format: Format,
    pending: &[&Migration],
    pre: &Fingerprint,
    history_table: &str,
) -> Result<(Vec<Finding>, String)> {
    let mut out = Vec::new();
    let (mut db, mut c) = clone_with(scratch, base, format, &[]).await?;
    let mut before = pre.clone();
    for (i, m) in pending.iter().enumerate() {
        let Some(down) = &m.down else { continue };
        let up = apply::run(&c, format, &[*m], Direction::Up).await?;
        if let Some(f) = up.iter().find_map(|r| r.failure.as_ref()) {
            anyhow::bail!(
                "{} failed in the round trip although it applied before: {}",
                m.up.file,
                f.message
            );
        }
        // Deep enough for this migration and, as the next one's "before", the next.
        let this_and_next: Vec<&Migration> = std::iter::once(*m)
            .chain(pending.get(i + 1).copied())
            .collect();
        let after = take_for(&c, history_table, &this_and_next).await?;
        let runs = apply::run(&c, format, &[*m], Direction::Down).await?;
        if let Some((run, f)) = runs.iter().find_map(|r| r.failure.as_ref().map(|f| (r, f))) {
            out.push(
                Finding::new(
                    Level::Fail,
                    Rule::DownMigration,
                    format!(
                        "{} fails after its up migration: {} (SQLSTATE {})",
                        run.file, f.message, f.sqlstate
                    ),
                )
                .at(&run.file, f.line, &f.statement)
                .remedy("make the down migration undo exactly what the up migration did"),
            );
            (db, c) = clone_with(scratch, base, format, &pending[..=i]).await?;
            before = after;
            continue;
        }
        let undone = take_for(&c, history_table, &[*m]).await?;
        let restored = compare(&before, &undone);
        for d in &restored {
            out.push(
                d.finding(format!("up → down does not give back the original: {d}"))
                .file(&down.file)
                .remedy("the down migration must restore the schema and the data (a dropped column's values cannot come back: mark the migration irreversible or keep the values)"),
            );
        }
        let again = apply::run(&c, format, &[*m], Direction::Up).await?;
        if let Some((run, f)) = again
            .iter()
            .find_map(|r| r.failure.as_ref().map(|f| (r, f)))
        {
            out.push(
                Finding::new(
                    Level::Fail,
                    Rule::DownMigration,
                    format!(
                        "{} cannot be applied again after its down migration {}: {}",
                        run.file, down.file, f.message
                    ),
                )
                .at(&run.file, f.line, &f.statement)
                .remedy(format!(
                    "{} leaves something behind that the up migration creates",
                    down.file
                )),
            );
            (db, c) = clone_with(scratch, base, format, &pending[..=i]).await?;
            before = after;
            continue;
        }
        if restored.is_empty() {
            // The down gave back exactly the state before: the up ran again
            // on the same state (its first result is the one to go on from).
            before = after;
            continue;
        }
        let redone = take_for(&c, history_table, &this_and_next).await?;
        for d in compare(&after, &redone) {
            out.push(
                d.finding(format!("up → down → up differs from up: {d}"))
                    .file(&down.file)
                    .remedy("the down migration leaves residue the up migration does not expect"),
            );
        }
        before = redone;
    }
    Ok((out, db))
}

/// One difference between two fingerprints, and the table or column it
/// is about (what an accept entry names), when it is about one.
#[derive(Debug, Clone)]
pub(super) struct Diff {
    pub text: String,
    pub object: Option<String>,
}

impl Diff {
    fn on(object: String, text: String) -> Diff {
        Diff {
            text,
            object: Some(object),
        }
    }
    fn plain(text: String) -> Diff {
        Diff { text, object: None }
    }

    /// A finding about this difference, with its object when it has one.
    pub(super) fn finding(&self, message: String) -> Finding {
        let f = Finding::new(Level::Fail, Rule::DownMigration, message);
        match &self.object {
            Some(o) => f.object(o.clone()),
            None => f,
        }
    }
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Differences between two fingerprints, by name (oids change when a down drops and recreates).
pub(super) fn compare(a: &Fingerprint, b: &Fingerprint) -> Vec<Diff> {
    compare_with(a, b, true)
}

/// Differences between the state after a first apply and the state after
/// the same migrations ran again on a state that compared equal to the one
/// the first apply started from: schema and row counts only. Their values
/// can only differ by what is assigned anew on every run (sequence and
/// identity ids, now(), uuid4() in Python), which is no defect of a reverse.
pub(super) fn compare_reapplied(a: &Fingerprint, b: &Fingerprint) -> Vec<Diff> {
    compare_with(a, b, false)
}

fn compare_with(a: &Fingerprint, b: &Fingerprint, values: bool) -> Vec<Diff> {
    let mut out = Vec::new();
    for t in a.tables.values() {
        let Some(u) = b.table_named(&t.schema, &t.name) else {
            out.push(Diff::on(
                t.display(),
                format!("table {} is missing", t.display()),
            ));
            continue;
        };
        if t.rows != u.rows {
            out.push(Diff::on(
                t.display(),
                format!("{} has {} rows instead of {}", t.display(), u.rows, t.rows),
            ));
        }
        for c in &t.columns {
            let Some(d) = u.column_named(&c.name) else {
                out.push(Diff::on(
                    format!("{}.{}", t.display(), c.name),
                    format!("column {}.{} is missing", t.display(), c.name),
                ));
                continue;
            };
            if c.ty != d.ty || c.not_null != d.not_null || c.default != d.default {
                let shown = |ty: &str, not_null: bool, default: &Option<String>| {
                    format!(
                        "{ty}{}{}",
                        if not_null { " NOT NULL" } else { "" },
                        default
                            .as_ref()
                            .map(|x| format!(" DEFAULT {x}"))
                            .unwrap_or_else(|| " without a default".into())
                    )
                };
                out.push(Diff::on(
                    format!("{}.{}", t.display(), c.name),
                    format!(
                        "column {}.{} is {} instead of {}",
                        t.display(),
                        c.name,
                        shown(&d.ty, d.not_null, &d.default),
                        shown(&c.ty, c.not_null, &c.default)
                    ),
                ));
            }
            let (true, Some((n1, h1)), Some((n2, h2))) = (
                values,
                t.column_data.get(&c.attnum),
                u.column_data.get(&d.attnum),
            ) else {
                continue;
            };
            if h1 != h2 {
                out.push(Diff::on(
                    format!("{}.{}", t.display(), c.name),
                    format!(
                        "values of {}.{} differ ({n1} non-NULL before, {n2} after)",
                        t.display(),
                        c.name
                    ),
                ));
            }
        }
        for d in &u.columns {
            if t.column_named(&d.name).is_none() {
                out.push(Diff::on(
                    format!("{}.{}", t.display(), d.name),
                    format!("extra column {}.{}", t.display(), d.name),
                ));
            }
        }
    }
    for u in b.tables.values() {
        if a.table_named(&u.schema, &u.name).is_none() {
            out.push(Diff::on(
                u.display(),
                format!("extra table {}", u.display()),
            ));
        }
    }
    let names = |f: &Fingerprint| {
        let mut v: Vec<String> = f
            .indexes
            .iter()
            .map(|i| format!("index {}", i.def))
            .chain(f.constraints.iter().map(|c| {
                let t = f
                    .tables
                    .get(&c.table)
                    .map(|t| t.display())
                    .unwrap_or_default();
                format!("constraint {} on {t}: {}", c.name, c.def)
            }))
            .collect();
        v.sort();
        v
    };
    let (na, nb) = (names(a), names(b));
    for x in na.iter().filter(|x| !nb.contains(x)) {
        out.push(Diff::plain(format!("{x} is missing")));
    }
    for x in nb.iter().filter(|x| !na.contains(x)) {
        out.push(Diff::plain(format!("extra {x}")));
    }
    out
}
