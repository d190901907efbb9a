//! The down round trip, one walk for every runner: after the window is
//! applied, undoing it must give back the schema and data before, and
//! applying it again the state after. When the whole window does not
//! round-trip, a second pass goes migration by migration (up, undo, up) so
//! that every undo is exercised and each difference is blamed on the
//! migration whose undo made it (D4): in two halves side by side on clones
//! of their own, and after a catalog-only step ([`Reverse::quiet`]) reading
//! only the catalog and the tables the step changed.
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

/// How undoing one migration went.
pub(super) enum Undone {
    Done,
    /// The runner refused before touching anything (Django's
    /// `IrreversibleError`): the state is still the one after its up.
    Refused(Finding),
    /// It failed. `rolled_back`: it ran in one transaction that was rolled
    /// back whole (nothing of it can be left but sequence values); else the
    /// state is unknown.
    Failed {
        finding: Finding,
        rolled_back: bool,
    },
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

    /// Whether applying migration `i` (or undoing it: `down`) cannot change
    /// the rows of a table it leaves with the same columns: then the data
    /// of such tables after it is known from a fingerprint before it
    /// ([`Reverse::take_after`]). False unless the runner can tell.
    fn quiet(&self, _i: usize, _down: bool) -> bool {
        false
    }
    /// [`Reverse::take`] after a quiet step from the state `known`: the
    /// data of the tables the step left as they were is taken from `known`.
    async fn take_after(
        &self,
        c: &Client,
        around: Option<&[usize]>,
        _known: &Fingerprint,
    ) -> Result<Fingerprint> {
        self.take(c, around).await
    }
}

/// The fingerprint after applying (or undoing: `down`) migration `i` from
/// the state `from`: read whole, or — after a quiet step — only the
/// catalog and the tables the step changed (their oids or columns).
async fn take_step<R: Reverse>(
    r: &R,
    c: &Client,
    around: &[usize],
    i: usize,
    down: bool,
    from: &Fingerprint,
) -> Result<Fingerprint> {
    match r.quiet(i, down) {
        true => r.take_after(c, Some(around), from).await,
        false => r.take(c, Some(around)).await,
    }
}

/// A scratch clone the walk works on.
struct Db {
    url: String,
    client: Client,
}

impl Db {
    /// Connects to the scratch database `name`, with the checking session's settings.
    async fn open(scratch: &Scratch, name: String) -> Result<Db> {
        let client = scratch.connect(&name).await?;
        apply::prepare_session(&client, "UTC").await?;
        let url = crate::pg::url_of(&with_db(&scratch.server, &name));
        Ok(Db { url, client })
    }
}

/// The round trip's first part, done beside the run.
pub(super) struct Begun {
    /// The state before, without what the runner leaves out ([`Reverse::strip`]).
    pre: Fingerprint,
    whole: Whole,
}

/// How the whole window went on the round trip's own clone.
enum Whole {
    /// Undone to the state before and applied again: this state must be
    /// the run's after.
    Again(Fingerprint),
    /// It does not round-trip (what went wrong); the step-by-step pass
    /// already ran and found `findings`.
    Failed {
        whole: Vec<String>,
        findings: Vec<Finding>,
    },
}

/// The first part of the round trip, in parallel with the run: on its own
/// clone `db` of the state before (the run's clone stays at the state after,
/// for the checks after the round trip), the window is applied, undone —
/// which must give back `pre` — and applied again. When the whole window
/// does not round-trip, the step-by-step pass on a fresh clone of `base`
/// follows at once, still beside the run.
pub(super) async fn begin<R: Reverse>(
    r: &R,
    scratch: &mut Scratch,
    base: &str,
    db: String,
    pre: &Fingerprint,
) -> Result<Begun> {
    let mut pre = pre.clone();
    r.strip(&mut pre);
    let at = std::time::Instant::now();
    let db = Db::open(scratch, db).await?;
    if let Some((file, f)) = r.apply(&db.client, &db.url, 0..r.len()).await? {
        // Also when the run fails: then this part is not looked at.
        anyhow::bail!(
            "{file} failed on the round trip's clone, although the run applies it: {}",
            f.message
        );
    }
    let whole = match undo_and_redo(r, &db, &pre).await? {
        Ok(again) => Whole::Again(again),
        Err(whole) => {
            tracing::debug!(
                "round trip of the whole window: {:.2?} ({} differences)",
                at.elapsed(),
                whole.len()
            );
            let findings = step_by_step(r, scratch, base, &pre).await?;
            Whole::Failed { whole, findings }
        }
    };
    tracing::info!("round trip beside the run: {:.2?}", at.elapsed());
    Ok(Begun { pre, whole })
}

/// The rest once the run's state after (`post`) is known: the window
/// applied again must give it too; differences are blamed by the
/// step-by-step pass on a fresh clone of `base`.
pub(super) async fn finish<R: Reverse>(
    r: &R,
    scratch: &mut Scratch,
    base: &str,
    begun: Begun,
    post: &Fingerprint,
) -> Result<Vec<Finding>> {
    let (whole, mut findings) = match begun.whole {
        Whole::Failed { whole, findings } => (whole, findings),
        Whole::Again(again) => {
            let mut post = post.clone();
            r.strip(&mut post);
            // The state before came back, so the second apply started where
            // the first did; with new values on every apply, only the schema
            // and the row counts must match.
            let diffs = match R::FRESH_VALUES {
                true => compare_reapplied(&post, &again),
                false => compare(&post, &again),
            };
            if diffs.is_empty() {
                return Ok(Vec::new());
            }
            let at = std::time::Instant::now();
            let findings = step_by_step(r, scratch, base, &begun.pre).await?;
            tracing::debug!("round trip step by step: {:.2?}", at.elapsed());
            (diffs.into_iter().map(|d| d.text).collect(), findings)
        }
    };
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
    Ok(findings)
}

/// The fast pass on a clone at the state after the window: undo the window
/// (it must give `pre`), then apply it again; the state then reached, or
/// what went wrong.
async fn undo_and_redo<R: Reverse>(
    r: &R,
    db: &Db,
    pre: &Fingerprint,
) -> Result<std::result::Result<Fingerprint, Vec<String>>> {
    let (c, url) = (&db.client, db.url.as_str());
    if let Some(why) = r.undo_all(c, url).await? {
        return Ok(Err(vec![why]));
    }
    let diffs = compare(pre, &r.take(c, None).await?);
    if !diffs.is_empty() {
        return Ok(Err(diffs.into_iter().map(|d| d.text).collect()));
    }
    if let Some((file, f)) = r.apply(c, url, 0..r.len()).await? {
        return Ok(Err(vec![format!(
            "{file} cannot be applied again: {}",
            f.message
        )]));
    }
    Ok(Ok(r.take(c, None).await?))
}

/// A fresh clone of `base` with the first `n` migrations applied.
async fn fresh<R: Reverse>(r: &R, scratch: &Shared<'_>, base: &str, n: usize) -> Result<Db> {
    let at = std::time::Instant::now();
    let name = scratch.lock().await.create("roundtrip", Some(base)).await?;
    tracing::debug!("round trip: a fresh clone in {:.2?}", at.elapsed());
    opened(r, scratch, name, n).await
}

/// The clone `name` of the state before, opened, with the first `n`
/// migrations applied.
async fn opened<R: Reverse>(r: &R, scratch: &Shared<'_>, name: String, n: usize) -> Result<Db> {
    let db = Db::open(&**scratch.lock().await, name).await?;
    if let Some((_, f)) = r.apply(&db.client, &db.url, 0..n).await? {
        anyhow::bail!(
            "re-applying the pending migrations for the round trip failed the second time: {}",
            f.message
        );
    }
    Ok(db)
}

/// The scratch databases, for walks that make clones side by side.
type Shared<'a> = tokio::sync::Mutex<&'a mut Scratch>;

/// Windows of at least this many migrations are walked in two halves.
const SPLIT_FROM: usize = 4;

/// Up, undo, up for each migration in turn (see [`walk`]). A window of
/// [`SPLIT_FROM`] migrations or more is walked in two halves side by side,
/// each on a clone of its own — the second half's clone has the first half
/// applied, as the walk would have reached it — because the walk is a long
/// chain of short statements and catalog reads, each waiting on the last.
/// The findings come in the window's order, as one walk gives them.
async fn step_by_step<R: Reverse>(
    r: &R,
    scratch: &mut Scratch,
    base: &str,
    pre: &Fingerprint,
) -> Result<Vec<Finding>> {
    let n = r.len();
    if n < SPLIT_FROM {
        let scratch = tokio::sync::Mutex::new(scratch);
        let db = fresh(r, &scratch, base, 0).await?;
        return walk(r, &scratch, base, db, Some(pre), 0..n).await;
    }
    let mid = n / 2;
    // Both clones at once, each by its own admin connection: made one
    // after the other they were a third of the pass at 300,000 rows.
    let at = std::time::Instant::now();
    let names = scratch
        .clone_together(&["roundtrip", "roundtrip"], base)
        .await?;
    tracing::debug!("round trip: two fresh clones in {:.2?}", at.elapsed());
    let [one, two]: [String; 2] = names
        .try_into()
        .map_err(|_| anyhow::anyhow!("two clones were asked for"))?;
    let scratch = tokio::sync::Mutex::new(scratch);
    let (mut first, second) = tokio::try_join!(
        async {
            let db = opened(r, &scratch, one, 0).await?;
            walk(r, &scratch, base, db, Some(pre), 0..mid).await
        },
        async {
            let db = opened(r, &scratch, two, mid).await?;
            walk(r, &scratch, base, db, None, mid..n).await
        }
    )?;
    first.extend(second);
    Ok(first)
}

/// Up, undo, up for each migration of `range` in turn, on `db`, a fresh
/// clone with the migrations before the range applied; `pre` is the state
/// the range starts from when it is known (else it is read there). A failing
/// undo (or up after it) is reported and the walk goes on from a fresh
/// clone with the migrations so far applied — or, when the undo was rolled
/// back whole and left the state as the up made it, from there.
async fn walk<R: Reverse>(
    r: &R,
    scratch: &Shared<'_>,
    base: &str,
    mut db: Db,
    pre: Option<&Fingerprint>,
    range: Range<usize>,
) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    let mut before = match pre {
        Some(pre) => pre.clone(),
        None => r.take(&db.client, Some(&[range.start])).await?,
    };
    for i in range {
        if let Some((file, f)) = r.apply(&db.client, &db.url, i..i + 1).await? {
            anyhow::bail!(
                "{file} failed in the round trip although it applied before: {}",
                f.message
            );
        }
        // Deep enough for this migration and, as the next one's "before", the next.
        let this_and_next = [i, i + 1];
        let after = take_step(r, &db.client, &this_and_next, i, false, &before).await?;
        match r.undo(&db.client, &db.url, i).await? {
            Undone::Done => {}
            Undone::Refused(f) => {
                out.push(f);
                before = after;
                continue;
            }
            Undone::Failed {
                finding,
                rolled_back,
            } => {
                out.push(finding);
                // A clone and every up so far again cost far more than a
                // look: the walk goes on here when nothing of the undo is
                // left (sequences are not rolled back, so the state is read).
                let kept = rolled_back
                    && compare(&after, &r.take(&db.client, Some(&this_and_next)).await?).is_empty();
                if !kept {
                    db = fresh(r, scratch, base, i + 1).await?;
                }
                before = next_before(r, &db, after, &this_and_next).await?;
                continue;
            }
        }
        let undone = take_step(r, &db.client, &[i], i, true, &after).await?;
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
    Ok(out)
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
