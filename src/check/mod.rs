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

pub mod accept;
pub mod apply;
mod blame;
pub mod diff;
pub mod django;
mod django_base;
mod django_roundtrip;
mod django_trace;
pub mod fingerprint;
pub mod git;
pub mod health;
pub mod history;
pub mod ignore;
mod lossless;
pub mod migrations;
pub mod report;
#[cfg(test)]
mod report_snapshots;
mod risk;
mod roundtrip;
pub mod rule;
pub mod rules;
pub(crate) mod scratch;
mod seeding;
pub mod split;
pub mod stats;
mod variance;
pub mod version;

pub use risk::Risk;
pub use seeding::fill_realistic;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config};

use crate::error::UsageError;
use crate::pg;
use crate::pg::url_of;
use crate::progress::Progress;
use apply::{Direction, FileRun};
use fingerprint::Depth;
use migrations::{Format, Migration, MigrationSet};
use report::{Finding, Level, Report};
use risk::unexpected_changes;
use roundtrip::round_trip;
use rule::Rule;
use scratch::{Scratch, connect, with_db};
use seeding::{builtin_tables_present, seed_compat, seeded_baseline, spec_compat};
use std::collections::HashMap;
use variance::{time_related, timezone_variance};

/// What the migrations run against.
#[derive(Debug, Clone)]
pub enum Against {
    /// A fresh database seeded by ward (on `server` or a throwaway cluster).
    Seed,
    /// An existing database, cloned by template and never modified.
    Url(String),
}

/// The realistic data to fill a fresh database with, at the pre-migration
/// schema; the same source must still seed the schema after the migrations.
#[derive(Debug, Clone)]
pub enum SeedSource {
    /// ward's built-in patient-records model.
    Builtin {
        patients: u64,
        seed: u64,
        jobs: usize,
    },
    /// The project's own seed spec (`ward seed --spec`).
    Spec {
        path: PathBuf,
        /// Overrides the spec's own seed.
        seed: Option<u64>,
        jobs: usize,
    },
}

impl SeedSource {
    fn describe(&self) -> String {
        match self {
            SeedSource::Builtin { patients, seed, .. } => {
                format!("ward's built-in patient records ({patients} patients, seed {seed})")
            }
            SeedSource::Spec { path, .. } => format!("the seed spec {}", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub migrations: Option<PathBuf>,
    pub format: Option<Format>,
    pub against: Against,
    /// Server for scratch databases with `--against seed` (else a throwaway cluster).
    pub server_url: Option<String>,
    pub apply_cmd: Option<String>,
    /// With `--against seed`: migrations up to and including this version, or
    /// the migrations on this git ref, are applied before seeding; the
    /// others are pending.
    pub base: Option<String>,
    pub seed: SeedSource,
    /// Run the TimeZone variance check: None = when the SQL looks time-related.
    pub timezone_check: Option<bool>,
    /// Run the down-migration round trip when the migrations have downs.
    pub round_trip: bool,
    /// What to call the data in the report (else it is described from the URL).
    pub against_label: Option<String>,
    /// Production table sizes, to extrapolate lock times.
    pub production: Option<stats::ProductionStats>,
    /// `--runner django`: Django lists and applies the migrations ([`django`]).
    pub django: Option<crate::django::Project>,
    /// The accept file (else `ward-accept.toml` in the migrations' project root, if any).
    pub accept: Option<PathBuf>,
}

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

pub async fn run(opts: &Options, progress: &dyn Progress) -> Result<Report> {
    let started = Instant::now();
    // The migrations.
    let set = load_migrations(opts)?;
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
    // The server and the source.
    progress.stage("preparing the data to check against", 0);
    let (mut scratch, against_desc, source_db) = match &opts.against {
        Against::Url(url) => {
            let cfg = pg::parse_url(url)?;
            let source = cfg.get_dbname().unwrap_or("postgres").to_string();
            let mut admin_cfg = with_db(&cfg, "postgres");
            if source == "postgres" {
                admin_cfg = with_db(&cfg, "template1");
            }
            let admin = connect(&admin_cfg).await?;
            let exists: bool = admin
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
                    &[&source],
                )
                .await?
                .get(0);
            if !exists {
                return Err(UsageError(format!(
                    "database {source} does not exist on {} — fix the --against URL",
                    pg::describe(&cfg)
                ))
                .into());
            }
            (
                Scratch {
                    admin,
                    admin_db: admin_cfg.get_dbname().unwrap_or("postgres").to_string(),
                    server: cfg.clone(),
                    made: Vec::new(),
                    counter: 0,
                    _cluster: None,
                },
                opts.against_label
                    .clone()
                    .unwrap_or_else(|| format!("a clone of {}", pg::describe(&cfg))),
                Some(source),
            )
        }
        Against::Seed => {
            let (cfg, cluster) = match &opts.server_url {
                Some(u) => (pg::parse_url(u)?, None),
                None => {
                    let c = tokio::task::spawn_blocking(pg::cluster::Cluster::start)
                        .await?
                        .context("starting a throwaway Postgres cluster for the check (or pass --database-url)")?;
                    (pg::parse_url(&c.url("postgres"))?, Some(c))
                }
            };
            let admin = connect(&cfg).await?;
            (
                Scratch {
                    admin,
                    admin_db: cfg.get_dbname().unwrap_or("postgres").to_string(),
                    server: cfg.clone(),
                    made: Vec::new(),
                    counter: 0,
                    _cluster: cluster,
                },
                String::new(),
                None,
            )
        }
    };
    let result = run_inner(
        opts,
        set.as_ref(),
        &accepts,
        &mut scratch,
        source_db,
        against_desc,
        progress,
        started,
    )
    .await;
    progress.stage("cleaning up", 0);
    scratch.drop_all().await;
    progress.finish();
    result
}

fn load_migrations(opts: &Options) -> Result<Option<MigrationSet>> {
    if opts.django.is_some() {
        return Ok(None);
    }
    let dir = match &opts.migrations {
        Some(d) => d.clone(),
        None => match migrations::default_dir(&std::env::current_dir()?) {
            Ok(d) => d,
            Err(e) if opts.apply_cmd.is_some() => {
                tracing::debug!("no migrations directory: {e}");
                return Ok(None);
            }
            Err(e) => return Err(e),
        },
    };
    let format = match opts.format {
        Some(f) => f,
        None => migrations::detect(&dir)?,
    };
    Ok(Some(migrations::read_dir(&dir, format)?))
}

/// Refines an auto-detected format with the history table the data has.
async fn refine_format(client: &Client, set: &mut MigrationSet, explicit: bool) -> Result<()> {
    if explicit {
        return Ok(());
    }
    let row = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL AND to_regclass('flyway_schema_history') IS NULL,
                    EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = 'schema_migrations' AND column_name = 'dirty')",
            &[],
        )
        .await?;
    let refinery: bool = row.get(0);
    let golang: bool = row.get(1);
    let new = match set.format {
        Format::Flyway if refinery => Some(Format::Refinery),
        Format::Sqlx if golang => Some(Format::GolangMigrate),
        _ => None,
    };
    if let Some(f) = new {
        *set = migrations::read_dir(&set.dir, f)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run_inner(
    opts: &Options,
    set: Option<&MigrationSet>,
    accepts: &[accept::Entry],
    scratch: &mut Scratch,
    source_db: Option<String>,
    mut against: String,
    progress: &dyn Progress,
    started: Instant,
) -> Result<Report> {
    let mut phases = Phases::new();
    // The baseline's files (the base ref's spec) must outlive the seed check.
    let mut merged_spec: Option<PathBuf> = None;
    let mut baseline_files = None;
    let mut set = set.cloned();
    // The baseline: the source itself, or a freshly seeded database.
    let base = match (source_db, &opts.django) {
        (Some(db), _) => db,
        (None, Some(project)) => {
            let (db, desc) = django_base::seeded_baseline(opts, project, scratch).await?;
            against = desc;
            db
        }
        (None, None) => {
            let (db, desc, b) = seeded_baseline(opts, &mut set, scratch).await?;
            merged_spec = b.merged_spec.clone();
            against = desc;
            baseline_files = Some(b);
            db
        }
    };
    // The clone everything runs on.
    phases.next(progress, "cloning");
    let clone = scratch.create("run", Some(&base)).await?;
    let mut client = scratch.connect(&clone).await?;
    let extra = scratch.connect(&clone).await?;
    apply::prepare_session(&client, "UTC").await?;
    apply::prepare_session(&extra, "UTC").await?;
    if let Some(s) = set.as_mut() {
        refine_format(&client, s, opts.format.is_some()).await?;
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
    // The down-migration round trip compares whole fingerprints.
    // Django's migrations carry their reverse in the file.
    let round_trip_planned = opts.round_trip
        && opts.apply_cmd.is_none()
        && !pending.is_empty()
        && (opts.django.is_some() || pending.iter().all(|m| m.down.is_some()));
    let depth: HashMap<u32, Depth> = pre
        .tables
        .keys()
        .map(|o| {
            (
                *o,
                if round_trip_planned || risk.hashed(*o) {
                    Depth::Full
                } else {
                    Depth::Columns(Vec::new())
                },
            )
        })
        .collect();
    fingerprint::fill(&mut pre, &client, &[&extra], &depth).await?;
    let snapshots = diff::snapshot(&client, &pre, &risk.snap_list(&pre)).await?;

    // The same migrations under another session TimeZone, when the SQL can
    // depend on it: on a second clone, in parallel with the UTC run.
    let tz_wanted = opts.timezone_check.unwrap_or_else(|| {
        time_related(&all_sql) || django_plan.as_ref().is_some_and(|p| p.zone_dependent())
    }) && ((set.is_some() || django_plan.is_some()) && !pending.is_empty()
        || opts.apply_cmd.is_some());
    let tz_db = match tz_wanted {
        true => Some(scratch.create("tz", Some(&base)).await?),
        false => None,
    };
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
            return Ok((Vec::new(), run_apply_cmd(cmd, &cfg, "UTC").await?));
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
    let (utc, other) = tokio::join!(utc_run, other_run);
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
    let depth: HashMap<u32, Depth> = post
        .tables
        .values()
        .map(|t| {
            let d = match pre.tables.get(&t.oid) {
                Some(_) if round_trip_planned || risk.hashed(t.oid) => Depth::Full,
                None => Depth::Full,
                // Untouched by any statement that can change values: only the new columns.
                Some(p) => Depth::Columns(
                    t.columns
                        .iter()
                        .filter(|c| p.column(c.attnum).is_none())
                        .map(|c| c.attnum)
                        .collect(),
                ),
            };
            (t.oid, d)
        })
        .collect();
    fingerprint::fill(&mut post, &client, &[&extra], &depth).await?;
    findings.extend(unexpected_changes(&runs, &pre, &risk));
    findings.extend(diff::diff(&client, &pre, &post, &snapshots, &runs).await?);
    findings.extend(health::check(&client, &pre, &post).await?);
    findings.extend(rules::locks::findings(
        &runs,
        &pre,
        opts.production.as_ref(),
    ));
    if let Some(s) = &set
        && let Some(applied) = apply::applied(&client, s.format).await?
    {
        // A no-transaction file that failed half-way leaves a dirty row (golang-migrate).
        for row in applied.iter().filter(|row| !row.success) {
            if !findings
                .iter()
                .any(|f| f.rule == Rule::DirtyHistory || f.rule == Rule::MigrationError)
            {
                findings.push(history::dirty_row(s, row));
            }
        }
    }
    drop(extra);

    // The other-zone run against this one.
    if let Some(other) = other
        && !failed
    {
        phases.next(progress, "comparing with the run under another TimeZone");
        findings.extend(timezone_variance(other, &pending_refs, &runs, &client, &post).await?);
    }
    // Down migrations: up → down → up.
    if !failed
        && round_trip_planned
        && let Some(s) = &set
        && !pending.is_empty()
        && pending.iter().all(|m| m.down.is_some())
    {
        phases.next(progress, "down-migration round trip");
        let rt = round_trip(
            scratch,
            &base,
            &client,
            s.format,
            &pending_refs,
            &pre,
            &post,
            history_table,
        )
        .await?;
        findings.extend(rt.findings);
        if let Some(db) = rt.moved_to {
            // The run's clone was left mid-way by a failing down.
            client = scratch.connect(&db).await?;
            apply::prepare_session(&client, "UTC").await?;
        }
    }
    if !failed
        && round_trip_planned
        && let (Some(project), Some(plan)) = (&opts.django, &django_plan)
    {
        phases.next(progress, "down-migration round trip");
        let rt = django_roundtrip::round_trip(
            scratch, &base, project, plan, &client, &clone_url, &pre, &post,
        )
        .await?;
        findings.extend(rt.findings);
        if let Some(db) = rt.moved_to {
            client = scratch.connect(&db).await?;
            apply::prepare_session(&client, "UTC").await?;
        }
    }
    // The seed must still apply to the new schema.
    if !failed {
        match &opts.seed {
            SeedSource::Spec { path, seed, jobs } => {
                phases.next(progress, "seeding the new schema");
                let (file, shown) = match &merged_spec {
                    Some(m) => (m.as_path(), path.as_path()),
                    None => (path.as_path(), path.as_path()),
                };
                findings.extend(
                    spec_compat(&mut client, file, shown, *seed, *jobs, history_table).await?,
                );
            }
            SeedSource::Builtin { seed, .. } if builtin_tables_present(&pre) => {
                phases.next(progress, "seeding the new schema");
                let seed = match opts.against {
                    Against::Seed => *seed,
                    Against::Url(_) => crate::seed::spec::Spec::builtin()?.seed,
                };
                findings.extend(seed_compat(&mut client, seed).await?);
            }
            SeedSource::Builtin { .. } => {}
        }
    }
    phases.next(progress, "reporting");
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    let (findings, ignored) = ignore::split(findings, set.as_ref());
    let findings = rules::locks::per_transaction(findings, &runs);
    let pending_files: Vec<String> = pending.iter().map(|m| m.up.file.clone()).collect();
    let (mut findings, accepted) =
        accept::split(findings, accepts, set.as_ref(), &pending_files, !failed);
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    let server: String = client.query_one("SHOW server_version", &[]).await?.get(0);
    let server = format!(
        "PostgreSQL {}",
        server.split_whitespace().next().unwrap_or(&server)
    );
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
        pending: pending_files,
        runs,
        findings,
        ignored,
        accepted,
        rows_checked: pre.tables.values().map(|t| t.rows).sum(),
        tables_checked: pre.tables.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn run_apply_cmd(cmd: &str, cfg: &Config, tz: &str) -> Result<Option<Finding>> {
    let host = match cfg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "localhost".into(),
    };
    let password = cfg
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let started = Instant::now();
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("DATABASE_URL", url_of(cfg))
        .env("PGHOST", &host)
        .env(
            "PGPORT",
            cfg.get_ports().first().copied().unwrap_or(5432).to_string(),
        )
        .env("PGUSER", cfg.get_user().unwrap_or("postgres"))
        .env("PGPASSWORD", &password)
        .env("PGDATABASE", cfg.get_dbname().unwrap_or("postgres"))
        .env("PGTZ", tz)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| UsageError(format!("cannot run --apply-cmd ({e}) — is `sh` available?")))?;
    tracing::info!("--apply-cmd finished in {:.2?}", started.elapsed());
    if out.status.success() {
        return Ok(None);
    }
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if text.trim().is_empty() {
        text = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    if !password.is_empty() {
        crate::redact::register(&password);
    }
    text = crate::redact::text(&text);
    let tail: Vec<&str> = text
        .trim()
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let mut f = Finding::new(
        Level::Fail,
        Rule::MigrationError,
        format!(
            "--apply-cmd exited with {} on the clone",
            out.status
                .code()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "a signal".into())
        ),
    )
    .remedy("run the command against a copy of the data and fix the migration it reports");
    for l in tail {
        f = f.evidence(l.to_string());
    }
    Ok(Some(f))
}
