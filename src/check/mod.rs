//! `ward check`: prove that pending migrations keep realistic data intact.
//!
//! The pipeline: read the migrations ([`migrations`]); build or pick the
//! data to check against (a database seeded by ward at the schema before the
//! pending migrations, or a URL — never modified: it is cloned by
//! `CREATE DATABASE … TEMPLATE`); clone it; read the runner's history on the
//! clone ([`history`]); fingerprint it ([`fingerprint`]); run the pending
//! migrations like the runner would, traced ([`apply`]) or through
//! `--apply-cmd`; fingerprint again; and turn the differences ([`diff`]),
//! the invariants ([`health`]) and the traces ([`rules`]) into findings.
//! Then optional extra runs: a second clone under another session TimeZone,
//! the down-migration round trip, and the seed on the new schema.

pub(crate) mod accept;
pub mod apply;
mod apply_cmd;
mod blame;
pub(crate) mod diff;
pub(crate) mod django;
mod django_base;
mod django_deferred;
mod django_trace;
pub(crate) mod fingerprint;
pub(crate) mod git;
pub(crate) mod health;
pub(crate) mod history;
pub(crate) mod ignore;
mod lossless;
pub mod migrations;
mod names;
mod options;
pub(crate) mod report;
#[cfg(test)]
mod report_snapshots;
mod risk;
mod roundtrip;
pub(crate) mod rule;
pub(crate) mod rules;
pub(crate) mod scratch;
mod seeding;
mod source;
pub(crate) mod split;
pub(crate) mod stats;
mod steps;
mod variance;
pub(crate) mod version;

pub(crate) use options::{Against, Options, SeedSource};
pub(crate) use risk::Risk;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;

use crate::pg::url_of;
use crate::progress::Progress;
use apply::{Direction, FileRun};
use migrations::{Migration, MigrationSet};
use report::{Finding, Level, Report};
use risk::unexpected_changes;
use rule::Rule;
use scratch::{Scratch, with_db};
use seeding::seeded_baseline;
use variance::{time_related, timezone_variance};

/// Logs how long each phase took (`-v`).
struct Phases {
    at: Instant,
    name: &'static str,
}

impl Phases {
    fn new() -> Phases {
        Phases {
            at: Instant::now(),
            name: "building the baseline",
        }
    }
    fn next(&mut self, progress: &dyn Progress, name: &'static str) {
        tracing::info!("{}: {:.2?}", self.name, self.at.elapsed());
        self.at = Instant::now();
        self.name = name;
        // A marker in the log (`-v`) that tests wait for instead of sleeping.
        tracing::info!("phase: {name}");
        progress.stage(name, 0);
    }
}

pub(crate) async fn run(opts: &Options, progress: &dyn Progress) -> Result<Report> {
    let started = Instant::now();
    // The migrations.
    let set = source::load_migrations(opts)?;
    if set.is_none() && opts.apply_cmd.is_none() && opts.django.is_none() {
        unreachable!("load_migrations errors without a directory");
    }
    // Read before any work: a malformed accept file is an error, exit 2.
    let root = match &set {
        Some(s) => s
            .dir
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from(".")),
        None => match &opts.django {
            Some(p) => p.dir.clone(),
            None => std::env::current_dir()?,
        },
    };
    let accepts = accept::load(opts.accept.as_deref(), &root)?;
    // `--base` too, before a cluster starts or a server is reached.
    let early = source::early_base(opts, set.as_ref())?;
    // The server and the source.
    progress.stage("preparing the data to check against", 0);
    let (mut scratch, against_desc, source_db) = source::open(opts).await?;
    let prepared = Prepared {
        set: set.as_ref(),
        accepts: &accepts,
        source_db,
        early,
        against: against_desc,
        started,
    };
    let result = run_inner(opts, prepared, &mut scratch, progress).await;
    progress.stage("cleaning up", 0);
    scratch.drop_all().await;
    progress.finish();
    result
}

/// What [`run`] read and opened before the pipeline.
struct Prepared<'a> {
    /// The migrations, unless Django or `--apply-cmd` runs them.
    set: Option<&'a MigrationSet>,
    accepts: &'a [accept::Entry],
    /// The database to check against, when it is not seeded here.
    source_db: Option<String>,
    early: source::EarlyBase,
    /// How the report names the data checked against.
    against: String,
    started: Instant,
}

async fn run_inner(
    opts: &Options,
    prepared: Prepared<'_>,
    scratch: &mut Scratch,
    progress: &dyn Progress,
) -> Result<Report> {
    let Prepared {
        set,
        accepts,
        source_db,
        early,
        mut against,
        started,
    } = prepared;
    let mut phases = Phases::new();
    // The baseline's files (the base ref's spec) must outlive the seed check.
    let mut merged_spec: Option<PathBuf> = None;
    let mut baseline_files = None;
    let mut set = set.cloned();
    // The baseline: the source itself, or a freshly seeded database.
    let base = match (source_db, &opts.django, early) {
        (Some(db), _, _) => db,
        (None, Some(project), source::EarlyBase::Django(targets)) => {
            let (db, desc) = django_base::seeded_baseline(opts, project, &targets, scratch).await?;
            against = desc;
            db
        }
        (None, _, source::EarlyBase::Sql(b)) => {
            let (db, desc, b) = seeded_baseline(opts, b, &mut set, scratch).await?;
            merged_spec = b.merged_spec.clone();
            against = desc;
            baseline_files = Some(b);
            db
        }
        (None, _, _) => unreachable!("--against seed resolves its base first"),
    };
    // The clone everything runs on.
    phases.next(progress, "cloning");
    let clone = scratch.create("run", Some(&base)).await?;
    let mut client = scratch.connect(&clone).await?;
    let extra = scratch.connect(&clone).await?;
    apply::prepare_session(&client, "UTC").await?;
    apply::prepare_session(&extra, "UTC").await?;
    if let Some(s) = set.as_mut() {
        source::refine_format(&client, s, opts.format.is_some()).await?;
    }
    let history_table =
        set.as_ref()
            .map(|s| s.format.history_table())
            .unwrap_or(match opts.django {
                Some(_) => "django_migrations",
                None => "",
            });
    let mut findings: Vec<Finding> = Vec::new();
    let (pending, hist_findings) = match &set {
        Some(s) => {
            let applied = apply::applied(&client, s.format).await?;
            let (p, f) = history::pending(s, applied.as_deref());
            (p, f)
        }
        None => (Vec::new(), Vec::new()),
    };
    findings.extend(hist_findings);
    if let (Some(s), Some(b)) = (&set, &baseline_files) {
        findings.extend(history::never_applied(s, &b.branch_only, &pending));
    }
    let pending: Vec<Migration> = pending.into_iter().cloned().collect();
    // Django's runner: its plan on the clone is what is pending.
    let clone_url = url_of(&with_db(&scratch.server, &clone));
    let django_plan = match &opts.django {
        Some(p) => Some(django::plan(p, &clone_url).await?),
        None => None,
    };
    let pending = django_plan.as_ref().map_or(pending, |p| p.pending.clone());
    let pending_refs: Vec<&Migration> = pending.iter().collect();

    phases.next(progress, "fingerprinting before");
    let mut pre = fingerprint::catalog(&client, history_table).await?;
    let all_sql: String = pending
        .iter()
        .map(|m| m.up.sql.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let untraced = opts.apply_cmd.is_some() || django_plan.as_ref().is_some_and(|p| p.opaque());
    let risk = Risk::of(&pre, &pending, untraced);
    // The down-migration round trip compares whole fingerprints. One rule
    // for every runner: by default when every pending migration can be
    // undone — a down file each, or, with Django, a reverse for every
    // operation (no RunPython / RunSQL without one).
    let undoable = match &django_plan {
        Some(p) => p.reversible(),
        None => pending.iter().all(|m| m.down.is_some()),
    };
    let round_trip_planned = opts.apply_cmd.is_none()
        && !pending.is_empty()
        && match opts.round_trip {
            Some(false) => false,
            // Forced: Django reports what it refuses to unapply; SQL needs every down.
            Some(true) => opts.django.is_some() || undoable,
            None => undoable,
        };
    if !round_trip_planned {
        findings.extend(steps::round_trip_not_possible(opts, set.as_ref(), &pending));
    }
    let depth = steps::depth_before(&pre, round_trip_planned, &risk);
    // The same migrations under another session TimeZone, when the SQL can
    // depend on it: on a second clone, in parallel with the UTC run.
    let tz_wanted = opts.timezone_check.unwrap_or_else(|| {
        time_related(&all_sql) || django_plan.as_ref().is_some_and(|p| p.zone_dependent())
    }) && ((set.is_some() || django_plan.is_some()) && !pending.is_empty()
        || opts.apply_cmd.is_some());
    // The down round trip: on a clone of its own, also in parallel.
    let sql_round_trip = set.as_ref().map(|s| roundtrip::sql::Sql {
        format: s.format,
        pending: &pending_refs,
        history_table,
    });
    let django_round_trip = opts
        .django
        .as_ref()
        .zip(django_plan.as_ref())
        .map(|(project, plan)| roundtrip::django::Django { project, plan });
    let round_trip_clone =
        round_trip_planned && (sql_round_trip.is_some() || django_round_trip.is_some());
    // Their clones are made while the state before is fingerprinted.
    let wanted: Vec<&str> = [(tz_wanted, "tz"), (round_trip_clone, "roundtrip")]
        .into_iter()
        .filter_map(|(wanted, what)| wanted.then_some(what))
        .collect();
    let fingerprinted = async {
        fingerprint::fill(&mut pre, &client, &[&extra], &depth).await?;
        diff::snapshot(&client, &pre, &risk.snap_list(&pre)).await
    };
    let cloned = async {
        match wanted.is_empty() {
            true => Ok(Vec::new()),
            false => scratch.clone_together(&wanted, &base).await,
        }
    };
    let (snapshots, cloned) = tokio::join!(fingerprinted, cloned);
    let (snapshots, mut cloned) = (snapshots?, cloned?.into_iter());
    let tz_db = tz_wanted.then(|| cloned.next()).flatten();
    let round_trip_db = round_trip_clone.then(|| cloned.next()).flatten();
    phases.next(progress, "applying the pending migrations");
    let mut cmd_failed = false;
    let mut django_outputs = Vec::new();
    let server = scratch.server.clone();
    let utc_run = async {
        if let (Some(project), Some(plan)) = (&opts.django, &django_plan) {
            let runs;
            (runs, django_outputs) =
                django::apply(project, plan, &client, &clone_url, Some("UTC")).await?;
            return Ok::<_, anyhow::Error>((runs, None));
        }
        if let Some(cmd) = &opts.apply_cmd {
            let cfg = with_db(&server, &clone);
            return Ok((
                Vec::new(),
                apply_cmd::run_apply_cmd(cmd, &cfg, "UTC").await?,
            ));
        }
        if let Some(s) = &set
            && !pending.is_empty()
        {
            let runs = apply::run_observed(
                &client,
                Some(&extra),
                s.format,
                &pending_refs,
                Direction::Up,
            )
            .await?;
            return Ok((runs, None));
        }
        Ok((Vec::new(), None))
    };
    let other_run = async {
        match &tz_db {
            Some(db) => {
                variance::other_zone(
                    &server,
                    db,
                    set.as_ref(),
                    &pending_refs,
                    opts.apply_cmd.as_deref(),
                    opts.django.as_ref().zip(django_plan.as_ref()),
                )
                .await
            }
            None => Ok(None),
        }
    };
    let round_trip_run = async {
        let db = round_trip_db?;
        Some(match (&django_round_trip, &sql_round_trip) {
            (Some(r), _) => roundtrip::begin(r, scratch, &base, db, &pre).await,
            (None, Some(r)) => roundtrip::begin(r, scratch, &base, db, &pre).await,
            (None, None) => unreachable!("a round trip is planned for SQL files or Django only"),
        })
    };
    let (utc, other, round_trip_begun) = tokio::join!(utc_run, other_run, round_trip_run);
    let (runs, cmd_finding): (Vec<FileRun>, _) = utc?;
    if let Some(f) = cmd_finding {
        findings.push(f);
        cmd_failed = true;
    }
    let other = other?;
    let failed = runs.iter().any(|r| r.failure.is_some()) || cmd_failed;
    for run in &runs {
        if let Some(f) = &run.failure {
            findings.push(rules::migration_error::finding(&client, run, f).await?);
        }
        if let Some(note) = &run.history_note {
            findings.push(
                Finding::new(Level::Info, Rule::HistoryNotRecorded, note.clone())
                    .file(&run.file)
                    .object(run.version.clone()),
            );
        }
    }
    django::attach_outputs(&mut findings, &django_outputs);
    phases.next(progress, "fingerprinting after");
    let mut post = fingerprint::catalog(&client, history_table).await?;
    let depth = steps::depth_after(&pre, &post, round_trip_planned, &risk);
    fingerprint::fill(&mut post, &client, &[&extra], &depth).await?;
    findings.extend(unexpected_changes(&runs, &pre, &risk));
    findings.extend(diff::diff(&client, &pre, &post, &snapshots, &runs).await?);
    findings.extend(health::check(&client, &pre, &post).await?);
    findings.extend(rules::locks::findings(
        &runs,
        &pre,
        opts.production.as_ref(),
    ));
    if let Some(s) = &set {
        let dirty = steps::dirty_rows(&client, s, &findings).await?;
        findings.extend(dirty);
    }
    drop(extra);

    let mut also_checked = Vec::new();
    // The other-zone run against this one.
    if let Some(other) = other
        && !failed
    {
        phases.next(progress, "comparing with the run under another TimeZone");
        findings.extend(timezone_variance(other, &pending_refs, &runs, &client, &post).await?);
        also_checked.push(format!(
            "the same migrations under session TimeZone {}",
            variance::OTHER
        ));
    }
    // Down migrations: up → undo → up (begun beside the run).
    if !failed && let Some(begun) = round_trip_begun {
        phases.next(progress, "down-migration round trip");
        let begun = begun?;
        findings.extend(match (&django_round_trip, &sql_round_trip) {
            (Some(r), _) => roundtrip::finish(r, scratch, &base, begun, &post).await?,
            (None, Some(r)) => roundtrip::finish(r, scratch, &base, begun, &post).await?,
            (None, None) => unreachable!("a round trip is planned for SQL files or Django only"),
        });
        also_checked.push(format!(
            "down-migration round trip over {} migration{} (undone and applied again)",
            pending.len(),
            if pending.len() == 1 { "" } else { "s" }
        ));
    }
    // The seed must still apply to the new schema.
    if !failed && steps::seed_applies(opts, &pre) {
        phases.next(progress, "seeding the new schema");
        let seed_findings =
            steps::seed_findings(opts, &mut client, merged_spec.as_deref(), history_table).await?;
        findings.extend(seed_findings);
    }
    phases.next(progress, "reporting");
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    let (findings, ignored) = ignore::split(findings, set.as_ref());
    let findings = rules::locks::per_transaction(findings, &runs);
    let (mut findings, accepted) =
        accept::split(findings, accepts, set.as_ref(), &pending, !failed);
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    let server = steps::server_version(&client).await?;
    Ok(Report {
        verdict: report::verdict(&findings),
        against,
        server,
        migrations_dir: set
            .as_ref()
            .map(|s| s.dir.display().to_string())
            .or_else(|| opts.django.as_ref().map(|p| p.dir.display().to_string())),
        format: set
            .as_ref()
            .map(|s| s.format.name().to_string())
            .or_else(|| opts.django.as_ref().map(|_| "django".to_string())),
        pending: pending.iter().map(|m| m.up.file.clone()).collect(),
        applied_by: opts.apply_cmd.as_deref().map(crate::redact::text),
        runs,
        also_checked,
        findings,
        ignored,
        accepted,
        rows_checked: pre.tables.values().map(|t| t.rows).sum(),
        tables_checked: pre.tables.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}
