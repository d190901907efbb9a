//! The down round trip, one walk for every runner: after the window is
//! applied, undoing it must give back the schema and data before, and
//! applying it again the state after. When the whole window does not
//! round-trip, a second pass on a fresh clone goes migration by migration
//! (up, undo, up) so that every undo is exercised and each difference is
//! blamed on the migration whose undo made it (D4).
//!
//! What "undo" means is the runner's ([`Reverse`]): a SQL runner's down
//! file ([`sql`]), Django's `migrate APP PREV` ([`django`]).

mod compare;
pub(super) mod django;
pub(super) mod sql;

use std::ops::Range;

use anyhow::Result;
use tokio_postgres::Client;

use super::apply::{self, Failure};
use super::fingerprint::Fingerprint;
use super::report::{Finding, Level};
use super::rule::Rule;
use super::scratch::{Scratch, with_db};
use compare::{compare, compare_reapplied};

/// What the round trip found, and where the migrated state now lives.
pub(super) struct RoundTrip {
    pub findings: Vec<Finding>,
    /// A database at the migrated state, when the run's own clone was left
    /// elsewhere (a down failed half-way there): later checks use it instead.
    pub moved_to: Option<String>,
}

/// How undoing one migration went.
pub(super) enum Undone {
    Done,
    /// The runner refused before touching anything (Django's
    /// `IrreversibleError`): the state is still the one after its up.
    Refused(Finding),
    /// It failed: the state is unknown.
    Failed(Finding),
}

/// One runner's moves, for the walk. Migrations are named by their index in
/// the window.
pub(super) trait Reverse {
    /// Whether a re-apply assigns new values (Django: sequence ids,
    /// `uuid4()`, `now()` evaluated in Python): then a state reached by a
    /// re-apply is fingerprinted anew rather than taken as equal to the first.
    const FRESH_VALUES: bool;

    /// How many migrations the window holds.
    fn len(&self) -> usize;
    /// The migration's file.
    fn file(&self, i: usize) -> String;
    /// The file a difference made by undoing migration `i` is blamed on.
    fn blamed(&self, i: usize) -> String;
    /// Undoing migration `i`, as a message says it ("down", "migrate records 0006_x").
    fn undo_words(&self, i: usize) -> String;
    /// After what a re-apply of migration `i` failed ("its down migration 2.down.sql").
    fn undone_by(&self, i: usize) -> String;
    /// Leaves out what is not data (Django's bookkeeping rows).
    fn strip(&self, _fp: &mut Fingerprint) {}

    /// Applies migrations `range` in order; the first failure and its file.
    async fn apply(
        &self,
        c: &Client,
        url: &str,
        range: Range<usize>,
    ) -> Result<Option<(String, Failure)>>;
    /// Undoes migration `i`.
    async fn undo(&self, c: &Client, url: &str, i: usize) -> Result<Undone>;
    /// Undoes the whole window, newest first; why it failed, if it did.
    async fn undo_all(&self, c: &Client, url: &str) -> Result<Option<String>>;
    /// A fingerprint deep enough for migrations `around` (None: everything), stripped.
    async fn take(&self, c: &Client, around: Option<&[usize]>) -> Result<Fingerprint>;
}

/// A scratch clone the walk works on.
struct Db {
    name: String,
    url: String,
    client: Client,
}

/// up → undo must give PRE, undo → up must give POST (on the run's clone,
/// at `url`); on a difference, the step-by-step pass on a fresh clone of
/// `base` blames it.
#[allow(clippy::too_many_arguments)]
pub(super) async fn round_trip<R: Reverse>(
    r: &R,
    scratch: &mut Scratch,
    base: &str,
    client: &Client,
    url: &str,
    pre: &Fingerprint,
    post: &Fingerprint,
) -> Result<RoundTrip> {
    let (mut pre, mut post) = (pre.clone(), post.clone());
    r.strip(&mut pre);
    r.strip(&mut post);
    let at = std::time::Instant::now();
    let whole = whole_window(r, client, url, &pre, &post).await?;
    tracing::debug!(
        "round trip of the whole window: {:.2?} ({} differences)",
        at.elapsed(),
        whole.len()
    );
    if whole.is_empty() {
        return Ok(RoundTrip {
            findings: Vec::new(),
            moved_to: None,
        });
    }
    let at = std::time::Instant::now();
    let (mut findings, db) = step_by_step(r, scratch, base, &pre).await?;
    tracing::debug!("round trip step by step: {:.2?}", at.elapsed());
    if findings.is_empty() {
        // Step by step compares only what each migration can change; what
        // only the whole window shows is still reported, on its oldest file.
        let oldest = if r.len() > 0 {
            r.blamed(0)
        } else {
            String::new()
        };
        for d in whole {
            findings.push(
                Finding::new(
                    Level::Fail,
                    Rule::DownMigration,
                    format!("the pending window does not round-trip as a whole: {d}"),
                )
                .file(&oldest)
                .remedy("undoing the migrations must restore the schema and the data the window changed"),
            );
        }
    }
    Ok(RoundTrip {
        findings,
        moved_to: Some(db),
    })
}

/// The fast pass on the run's clone: undo the window, then apply it again;
/// what went wrong (nothing: the window round-trips).
async fn whole_window<R: Reverse>(
    r: &R,
    c: &Client,
    url: &str,
    pre: &Fingerprint,
    post: &Fingerprint,
) -> Result<Vec<String>> {
    if let Some(why) = r.undo_all(c, url).await? {
        return Ok(vec![why]);
    }
    let diffs = compare(pre, &r.take(c, None).await?);
    if !diffs.is_empty() {
        return Ok(diffs.into_iter().map(|d| d.text).collect());
    }
    if let Some((file, f)) = r.apply(c, url, 0..r.len()).await? {
        return Ok(vec![format!(
            "{file} cannot be applied again: {}",
            f.message
        )]);
    }
    let again = r.take(c, None).await?;
    // The state before came back, so the second apply started where the
    // first did; with new values on every apply, only the schema and the
    // row counts must match.
    let diffs = match R::FRESH_VALUES {
        true => compare_reapplied(post, &again),
        false => compare(post, &again),
    };
    Ok(diffs.into_iter().map(|d| d.text).collect())
}

/// A fresh clone of `base` with the first `n` migrations applied.
async fn fresh<R: Reverse>(r: &R, scratch: &mut Scratch, base: &str, n: usize) -> Result<Db> {
    let at = std::time::Instant::now();
    let name = scratch.create("roundtrip", Some(base)).await?;
    tracing::debug!("round trip: a fresh clone in {:.2?}", at.elapsed());
    let client = scratch.connect(&name).await?;
    apply::prepare_session(&client, "UTC").await?;
    let url = crate::pg::url_of(&with_db(&scratch.server, &name));
    if let Some((_, f)) = r.apply(&client, &url, 0..n).await? {
        anyhow::bail!(
            "re-applying the pending migrations for the round trip failed the second time: {}",
            f.message
        );
    }
    Ok(Db { name, url, client })
}

/// Up, undo, up for each migration in turn, on a fresh clone; a failing
/// undo (or up after it) is reported and the walk goes on from a fresh
/// clone with the migrations so far applied.
async fn step_by_step<R: Reverse>(
    r: &R,
    scratch: &mut Scratch,
    base: &str,
    pre: &Fingerprint,
) -> Result<(Vec<Finding>, String)> {
    let mut out = Vec::new();
    let mut db = fresh(r, scratch, base, 0).await?;
    let mut before = pre.clone();
    for i in 0..r.len() {
        if let Some((file, f)) = r.apply(&db.client, &db.url, i..i + 1).await? {
            anyhow::bail!(
                "{file} failed in the round trip although it applied before: {}",
                f.message
            );
        }
        // Deep enough for this migration and, as the next one's "before", the next.
        let this_and_next = [i, i + 1];
        let after = r.take(&db.client, Some(&this_and_next)).await?;
        match r.undo(&db.client, &db.url, i).await? {
            Undone::Done => {}
            Undone::Refused(f) => {
                out.push(f);
                before = after;
                continue;
            }
            Undone::Failed(f) => {
                out.push(f);
                db = fresh(r, scratch, base, i + 1).await?;
                before = next_before(r, &db, after, &this_and_next).await?;
                continue;
            }
        }
        let undone = r.take(&db.client, Some(&[i])).await?;
        let restored = compare(&before, &undone);
        for d in &restored {
            out.push(
                d.finding(format!(
                    "up → {} does not give back the original: {d}",
                    r.undo_words(i)
                ))
                .file(&r.blamed(i))
                .remedy("undoing the migration must restore the schema and the data (a dropped column's values cannot come back: mark the migration irreversible or keep the values)"),
            );
        }
        if let Some((file, f)) = r.apply(&db.client, &db.url, i..i + 1).await? {
            out.push(
                Finding::new(
                    Level::Fail,
                    Rule::DownMigration,
                    format!(
                        "{file} cannot be applied again after {}: {}",
                        r.undone_by(i),
                        f.message
                    ),
                )
                .at(&file, f.line, &f.statement)
                .remedy(format!(
                    "{} leaves something behind that the migration creates",
                    r.blamed(i)
                )),
            );
            db = fresh(r, scratch, base, i + 1).await?;
            before = next_before(r, &db, after, &this_and_next).await?;
            continue;
        }
        if restored.is_empty() {
            // The undo gave back exactly the state before: the up ran again
            // on the same state.
            before = next_before(r, &db, after, &this_and_next).await?;
            continue;
        }
        let redone = r.take(&db.client, Some(&this_and_next)).await?;
        for d in compare(&after, &redone) {
            out.push(
                d.finding(format!(
                    "up → {} → up differs from up: {d}",
                    r.undo_words(i)
                ))
                .file(&r.blamed(i))
                .remedy("undoing the migration leaves residue the migration does not expect"),
            );
        }
        before = redone;
    }
    Ok((out, db.name))
}

/// The next migration's "before" once migration `i` was applied again (or
/// on a fresh clone): the first apply's state, unless every apply assigns
/// new values — then the state in the database.
async fn next_before<R: Reverse>(
    r: &R,
    db: &Db,
    after: Fingerprint,
    this_and_next: &[usize],
) -> Result<Fingerprint> {
    match R::FRESH_VALUES {
        true => r.take(&db.client, Some(this_and_next)).await,
        false => Ok(after),
    }
}
