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

pub mod apply;
pub mod diff;
pub mod fingerprint;
pub mod git;
pub mod health;
pub mod history;
pub mod migrations;
pub mod report;
pub mod rules;
pub mod split;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

use crate::error::UsageError;
use crate::pg::{self, quote_ident};
use crate::seed::Progress;
use apply::{Direction, FileRun};
use fingerprint::{Depth, Fingerprint};
use migrations::{Format, Migration, MigrationSet};
use report::{Finding, Level, Report};
use std::collections::HashMap;

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
        progress.stage(name, 0);
    }
}

pub(crate) fn migrations_key(version: &str) -> Vec<u64> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or(u64::MAX))
        .collect()
}

/// Fills `client`'s database (at its current schema) with realistic data.
pub async fn fill_realistic(client: &mut Client, source: &SeedSource) -> Result<()> {
    match source {
        SeedSource::Builtin {
            patients,
            seed,
            jobs,
        } => {
            let opts = crate::seed::load::LoadOptions {
                schema: "public".into(),
                seed: *seed,
                patients: *patients,
                jobs: *jobs,
                existing: crate::seed::load::Existing::Refuse,
            };
            crate::seed::load::load(
                client,
                "the check baseline".into(),
                &opts,
                &crate::seed::NoProgress,
            )
            .await
            .context("seeding the baseline for the check")?;
        }
        SeedSource::Spec { path, seed, jobs } => {
            crate::seed::custom::seed(
                client,
                "the check baseline".into(),
                path,
                *seed,
                *jobs,
                false,
                &crate::seed::NoProgress,
            )
            .await
            .with_context(|| {
                format!(
                    "seeding the baseline (the schema before the pending migrations) from {}",
                    path.display()
                )
            })?;
        }
    }
    Ok(())
}

async fn connect(cfg: &Config) -> Result<Client> {
    let (client, conn) = cfg.connect(NoTls).await.map_err(|e| {
        UsageError(format!(
            "cannot connect to {} ({}) — is Postgres running and the URL right?",
            pg::describe(cfg),
            e.as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string())
        ))
    })?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("connection closed: {e}");
        }
    });
    Ok(client)
}

fn with_db(cfg: &Config, db: &str) -> Config {
    let mut c = cfg.clone();
    c.dbname(db);
    c
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A libpq URL for `cfg` (with the password: only for child processes' environment).
fn url_of(cfg: &Config) -> String {
    let host = match cfg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "localhost".into(),
    };
    let pass = cfg
        .get_password()
        .map(|p| format!(":{}", enc(&String::from_utf8_lossy(p))))
        .unwrap_or_default();
    format!(
        "postgres://{}{pass}@{host}:{}/{}",
        enc(cfg.get_user().unwrap_or("postgres")),
        cfg.get_ports().first().copied().unwrap_or(5432),
        enc(cfg.get_dbname().unwrap_or("postgres"))
    )
}

/// Scratch databases this run created; all dropped at the end.
struct Scratch {
    admin: Client,
    server: Config,
    /// The database the admin connection uses.
    admin_db: String,
    made: Vec<String>,
    counter: usize,
    _cluster: Option<pg::cluster::Cluster>,
}

impl Scratch {
    fn name(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("ward_check_{}_{}_{what}", std::process::id(), self.counter)
    }

    async fn create(&mut self, what: &str, template: Option<&str>) -> Result<String> {
        let name = self.name(what);
        let sql = match template {
            Some(t) => {
                // FILE_COPY (PG ≥ 15) clones a large database fastest.
                let version: i32 = self
                    .admin
                    .query_one("SELECT current_setting('server_version_num')::int", &[])
                    .await?
                    .get(0);
                format!(
                    "CREATE DATABASE {} TEMPLATE {}{}",
                    quote_ident(&name),
                    quote_ident(t),
                    if version >= 150000 {
                        " STRATEGY FILE_COPY"
                    } else {
                        ""
                    }
                )
            }
            None => format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(&name)),
        };
        match self.admin.batch_execute(&sql).await {
            Ok(()) => {}
            Err(e) if e.code().map(|c| c.code()) == Some("55006") => {
                return Err(UsageError(format!(
                    "cannot clone database {} — other sessions are connected to it, and ward clones by \
                     template (it never modifies the source): stop the application (or use a snapshot), then check again",
                    template.unwrap_or("?")
                ))
                .into());
            }
            Err(e) if e.code().map(|c| c.code()) == Some("42501") => {
                return Err(UsageError(format!(
                    "the role {} may not create databases — ward needs CREATEDB to make its clones \
                     (ALTER ROLE … CREATEDB, or use a superuser on a development server)",
                    self.server.get_user().unwrap_or("?")
                ))
                .into());
            }
            Err(e) => return Err(anyhow!("creating {name}: {e}")),
        }
        self.made.push(name.clone());
        Ok(name)
    }

    async fn connect(&self, db: &str) -> Result<Client> {
        connect(&with_db(&self.server, db)).await
    }

    async fn drop_all(&mut self) {
        for db in self.made.drain(..).rev() {
            if let Err(e) = self
                .admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(&db)
                ))
                .await
            {
                tracing::warn!("could not drop scratch database {db}: {e}");
            }
        }
    }
}

/// When the run is interrupted (Ctrl-C drops the future), the scratch
/// databases are still dropped: on a thread of its own, with its own runtime.
impl Drop for Scratch {
    fn drop(&mut self) {
        if self.made.is_empty() {
            return;
        }
        let dbs = std::mem::take(&mut self.made);
        let server = self.server.clone();
        let admin_db = self.admin_db.clone();
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let Ok(admin) = connect(&with_db(&server, &admin_db)).await else {
                    return;
                };
                for db in dbs.iter().rev() {
                    let _ = admin
                        .batch_execute(&format!(
                            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                            quote_ident(db)
                        ))
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

pub async fn run(opts: &Options, progress: &dyn Progress) -> Result<Report> {
    let started = Instant::now();
    // The migrations.
    let set = load_migrations(opts)?;
    if set.is_none() && opts.apply_cmd.is_none() {
        unreachable!("load_migrations errors without a directory");
    }
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
                format!("a clone of {}", pg::describe(&cfg)),
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
    scratch: &mut Scratch,
    source_db: Option<String>,
    mut against: String,
    progress: &dyn Progress,
    started: Instant,
) -> Result<Report> {
    let mut phases = Phases::new();
    // The baseline's files (the base ref's spec) must outlive the seed check.
    let mut merged_spec: Option<PathBuf> = None;
    let mut _baseline_files = None;
    let mut set = set.cloned();
    // The baseline: the source itself, or a freshly seeded database.
    let base = match source_db {
        Some(db) => db,
        None => {
            let b = baseline(opts, set.as_ref())?;
            merged_spec = b.merged_spec.clone();
            if let Some(s) = set.as_mut()
                && !b.base_only.is_empty()
            {
                s.migrations.extend(b.base_only.iter().cloned());
                s.migrations.sort_by(|x, y| x.key.cmp(&y.key));
            }
            let db = scratch.create("base", None).await?;
            let mut c = scratch.connect(&db).await?;
            apply::prepare_session(&c, "UTC").await?;
            // The built-in model's tables are the schema's starting point,
            // unless the base migrations create them themselves.
            if matches!(opts.seed, SeedSource::Builtin { .. })
                && !b.before.iter().any(|m| creates_builtin_table(&m.up.sql))
            {
                c.batch_execute(crate::seed::model::SCHEMA_SQL).await?;
                c.batch_execute(crate::seed::model::CONSTRAINTS_SQL).await?;
            }
            if let Some(set) = &set
                && !b.before.is_empty()
            {
                let refs: Vec<&Migration> = b.before.iter().collect();
                let runs = apply::run(&c, set.format, &refs, Direction::Up).await?;
                if let Some((run, f)) = runs.iter().find_map(|r| r.failure.as_ref().map(|f| (r, f)))
                {
                    return Err(UsageError(format!(
                        "base migration {} fails while building the baseline, at line {}: {} — ward builds the baseline by \
                         running the migrations {}, then seeding",
                        run.file, f.line, f.message, b.at
                    ))
                    .into());
                }
            }
            let source = match (&opts.seed, &b.spec) {
                (SeedSource::Spec { seed, jobs, .. }, Some(p)) => SeedSource::Spec {
                    path: p.clone(),
                    seed: *seed,
                    jobs: *jobs,
                },
                (s, _) => s.clone(),
            };
            fill_realistic(&mut c, &source).await?;
            drop(c);
            against = format!(
                "a database seeded with {}{}",
                opts.seed.describe(),
                if b.before.is_empty() {
                    String::new()
                } else {
                    format!(" after the migrations {}", b.at)
                }
            );
            _baseline_files = Some(b);
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
    let history_table = set.as_ref().map(|s| s.format.history_table()).unwrap_or("");
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
    let pending: Vec<Migration> = pending.into_iter().cloned().collect();
    let pending_refs: Vec<&Migration> = pending.iter().collect();

    phases.next(progress, "fingerprinting before");
    let mut pre = fingerprint::catalog(&client, history_table).await?;
    let all_sql: String = pending
        .iter()
        .map(|m| m.up.sql.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let risk = Risk::of(&pre, &pending, opts.apply_cmd.is_some());
    // The down-migration round trip compares whole fingerprints.
    let round_trip_planned =
        opts.apply_cmd.is_none() && !pending.is_empty() && pending.iter().all(|m| m.down.is_some());
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

    phases.next(progress, "applying the pending migrations");
    let mut runs: Vec<FileRun> = Vec::new();
    let mut cmd_failed = false;
    if let Some(cmd) = &opts.apply_cmd {
        let cfg = with_db(&scratch.server, &clone);
        if let Some(f) = run_apply_cmd(cmd, &cfg, "UTC").await? {
            findings.push(f);
            cmd_failed = true;
        }
    } else if let Some(s) = &set
        && !pending.is_empty()
    {
        runs = apply::run_observed(
            &client,
            Some(&extra),
            s.format,
            &pending_refs,
            Direction::Up,
        )
        .await?;
    }
    let failed = runs.iter().any(|r| r.failure.is_some()) || cmd_failed;
    for run in &runs {
        if let Some(f) = &run.failure {
            findings.push(rules::migration_error::finding(&client, run, f).await?);
        }
    }
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
    findings.extend(rules::locks::findings(&runs, &pre));
    if let Some(s) = &set
        && let Some(applied) = apply::applied(&client, s.format).await?
    {
        // A no-transaction file that failed half-way leaves a dirty row (golang-migrate).
        for a in applied.iter().filter(|a| !a.success) {
            if !findings
                .iter()
                .any(|f| f.rule == "dirty-history" || f.rule == "migration-error")
            {
                findings.push(
                    Finding::new(
                        Level::Fail,
                        "dirty-history",
                        format!("migration {} left a dirty history row", a.version),
                    )
                    .count(1),
                );
            }
        }
    }
    drop(extra);

    // The same migrations under another session TimeZone.
    let tz_wanted = opts
        .timezone_check
        .unwrap_or_else(|| time_related(&all_sql));
    if tz_wanted && !failed && (set.is_some() && !pending.is_empty() || opts.apply_cmd.is_some()) {
        phases.next(progress, "re-running under another TimeZone");
        findings.extend(
            timezone_variance(
                scratch,
                &base,
                set.as_ref(),
                &pending_refs,
                opts.apply_cmd.as_deref(),
                &client,
                &post,
            )
            .await?,
        );
    }
    // Down migrations: up → down → up.
    if !failed
        && let Some(s) = &set
        && !pending.is_empty()
        && pending.iter().all(|m| m.down.is_some())
    {
        phases.next(progress, "down-migration round trip");
        findings.extend(
            round_trip(&client, s.format, &pending_refs, &pre, &post, history_table).await?,
        );
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
    let pending_files = pending.iter().map(|m| m.up.file.clone()).collect();
    Ok(Report {
        verdict: report::verdict(&findings),
        against,
        migrations_dir: set.as_ref().map(|s| s.dir.display().to_string()),
        format: set.as_ref().map(|s| s.format.name().to_string()),
        pending: pending_files,
        runs,
        findings,
        rows_checked: pre.tables.values().map(|t| t.rows).sum(),
        tables_checked: pre.tables.len(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What the baseline is built from with `--against seed`.
#[derive(Default)]
struct Baseline {
    /// The migrations that make the schema that is seeded.
    before: Vec<Migration>,
    /// Where they stop, for the report ("up to 42", "on origin/main (…)").
    at: String,
    /// Migrations on the base ref that this working tree lacks (its branch
    /// is behind): applied in the baseline and counted as on disk.
    base_only: Vec<Migration>,
    /// The seed spec as it is on the base ref, when it is there.
    spec: Option<PathBuf>,
    /// The spec of the merged tree, when it is not the working tree's: the
    /// branch left the spec alone, so the merge takes the base ref's.
    merged_spec: Option<PathBuf>,
    _tmp: Option<tempfile::TempDir>,
}

/// The migrations that make the schema the baseline is seeded at: those up
/// to `--base VERSION`, or those on `--base REF` (by default, with a spec, the
/// repository's default branch).
fn baseline(opts: &Options, set: Option<&MigrationSet>) -> Result<Baseline> {
    let spec = match &opts.seed {
        SeedSource::Spec { path, .. } => Some(path),
        SeedSource::Builtin { .. } => None,
    };
    let Some(set) = set else {
        if opts.base.is_some() {
            return crate::error::usage(
                "--base needs the migrations directory — pass --migrations DIR",
            );
        }
        return Ok(Baseline::default());
    };
    let key = opts.base.as_deref().map(migrations_key);
    if let (Some(base), Some(key)) = (&opts.base, &key)
        && set.migrations.iter().any(|m| &m.key == key)
    {
        return Ok(Baseline {
            before: set
                .migrations
                .iter()
                .filter(|m| &m.key <= key)
                .cloned()
                .collect(),
            at: format!("up to {base}"),
            ..Baseline::default()
        });
    }
    let root = git::repo_root(&set.dir);
    let reference = match (&opts.base, &root) {
        (Some(b), Some(r)) if git::commit_of(r, b).is_some() => b.clone(),
        (Some(b), _) => {
            return crate::error::usage(format!(
                "--base {b} is neither the version of a migration in {} nor a git ref — use a version on disk or a ref \
                 such as origin/main (in CI, fetch it first)",
                set.dir.display()
            ));
        }
        (None, _) if spec.is_none() => return Ok(Baseline::default()),
        (None, Some(r)) => match git::default_ref(r) {
            Some(d) => d,
            None => return crate::error::usage(no_base_for_spec()),
        },
        (None, None) => return crate::error::usage(no_base_for_spec()),
    };
    let root = root.expect("a git ref was resolved in a repository");
    let gb = git::base(&root, &reference, &set.dir)?;
    let on_ref = match &gb.dir {
        Some(d) if d.is_dir() => {
            migrations::read_dir_or_empty(d, set.format)
                .with_context(|| format!("reading the migrations on {reference}"))?
                .migrations
        }
        _ => Vec::new(),
    };
    let base_only = on_ref
        .iter()
        .filter(|m| !set.migrations.iter().any(|w| w.key == m.key))
        .cloned()
        .collect();
    let short = &gb.commit[..gb.commit.len().min(12)];
    tracing::info!(
        "baseline: {} migrations on {reference} ({short})",
        on_ref.len()
    );
    // The data at the base is what the base's own spec makes.
    let (mut spec_path, mut merged_spec, mut tmp) = (None, None, None);
    if let Some(p) = spec
        && let Some(text) = git::file_at(&root, &gb.commit, p)?
    {
        let dir = tempfile::Builder::new()
            .prefix("ward-base-spec-")
            .tempdir()?;
        let name = format!(
            "{}@{}",
            p.file_name().unwrap_or_default().to_string_lossy(),
            reference.replace('/', "_")
        );
        let path = dir.path().join(name);
        std::fs::write(&path, &text)?;
        let untouched = git::merge_base(&root, &gb.commit)
            .and_then(|mb| git::file_at(&root, &mb, p).ok().flatten())
            .is_some_and(|at_fork| std::fs::read(p).is_ok_and(|now| now == at_fork));
        if untouched {
            merged_spec = Some(path.clone());
        }
        spec_path = Some(path);
        tmp = Some(dir);
    }
    Ok(Baseline {
        before: on_ref,
        at: format!("on {reference} ({short})"),
        base_only,
        spec: spec_path,
        merged_spec,
        _tmp: tmp,
    })
}

fn no_base_for_spec() -> String {
    "with a seed spec ward seeds the schema as it is before your pending migrations: pass --base VERSION (the newest \
     migration already deployed) or --base GIT_REF (e.g. origin/main: its migrations are the baseline, the files this \
     branch adds are checked)"
        .to_string()
}

fn creates_builtin_table(sql: &str) -> bool {
    let re = regex::Regex::new(&format!(
        r#"(?i)create\s+table\s+(if\s+not\s+exists\s+)?(public\.)?"?({})\b"#,
        crate::seed::model::TABLES
            .iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
            .join("|")
    ))
    .unwrap();
    re.is_match(sql)
}

/// Which tables the pending statements can change, by a conservative reading
/// of each statement: index, constraint, add-column and other catalog-only
/// statements cannot change existing values; `ALTER … TYPE/USING` and DML can
/// (with the tables their cascades reach); `ALTER … DROP` needs the column
/// statistics; anything opaque (DO, SELECT, CALL, --apply-cmd) may touch every table.
pub struct Risk {
    all: bool,
    /// Tables whose values may change: copied before, compared row by row.
    snap: Vec<u32>,
    /// Tables whose column statistics are needed (⊇ snap).
    hash: Vec<u32>,
}

impl Risk {
    pub fn of(pre: &Fingerprint, pending: &[Migration], untraced: bool) -> Risk {
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
                let up = st
                    .sql
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .to_uppercase();
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
            r.snap.sort_unstable();
            r.snap.dedup();
        }
        r
    }

    pub fn hashed(&self, oid: u32) -> bool {
        self.all || self.snap.contains(&oid) || self.hash.contains(&oid)
    }

    fn snap_list(&self, pre: &Fingerprint) -> Vec<u32> {
        if self.all {
            pre.tables.keys().copied().collect()
        } else {
            self.snap.clone()
        }
    }
}

fn names_word(sql: &str, name: &str) -> bool {
    let lower = sql.to_lowercase();
    let name = name.to_lowercase();
    lower.match_indices(&name).any(|(i, _)| {
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(lower[..i].chars().last()) && !ident(lower[i + name.len()..].chars().next())
    })
}

/// Rows updated in tables no statement was expected to change (a trigger,
/// a function): reported from the per-transaction statistics.
fn unexpected_changes(runs: &[FileRun], pre: &Fingerprint, risk: &Risk) -> Vec<Finding> {
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
                        "values-changed",
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

fn time_related(sql: &str) -> bool {
    regex::Regex::new(r"(?i)timestamptz|with\s+time\s+zone|at\s+time\s+zone|::\s*date\b|date_trunc|to_char|extract\s*\(|date_part|timezone")
        .unwrap()
        .is_match(sql)
}

fn builtin_tables_present(pre: &Fingerprint) -> bool {
    crate::seed::model::TABLES
        .iter()
        .all(|t| pre.table_named("public", t.name).is_some())
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
        text = text.replace(&password, "***");
    }
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
        "migration-error",
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

async fn timezone_variance(
    scratch: &mut Scratch,
    base: &str,
    set: Option<&MigrationSet>,
    pending: &[&Migration],
    cmd: Option<&str>,
    utc_client: &Client,
    utc_post: &Fingerprint,
) -> Result<Vec<Finding>> {
    const OTHER: &str = "America/New_York";
    let db = scratch.create("tz", Some(base)).await?;
    let c = scratch.connect(&db).await?;
    match (cmd, set) {
        (Some(cmd), _) => {
            if run_apply_cmd(cmd, &with_db(&scratch.server, &db), OTHER)
                .await?
                .is_some()
            {
                return Ok(vec![Finding::new(
                    Level::Warn,
                    "timezone-dependent",
                    format!(
                        "--apply-cmd fails when the session TimeZone is {OTHER} but succeeds under UTC"
                    ),
                )]);
            }
        }
        (None, Some(s)) => {
            apply::prepare_session(&c, OTHER).await?;
            let runs = apply::run(&c, s.format, pending, Direction::Up).await?;
            if let Some((run, f)) = runs.iter().find_map(|r| r.failure.as_ref().map(|f| (r, f))) {
                return Ok(vec![Finding::new(
                    Level::Warn,
                    "timezone-dependent",
                    format!("{} fails when the session TimeZone is {OTHER} ({}) but succeeds under UTC", run.file, f.message),
                )
                .at(&run.file, f.line, &f.statement)]);
            }
            apply::prepare_session(&c, "UTC").await?;
        }
        _ => return Ok(Vec::new()),
    }
    let other =
        fingerprint::take(&c, &[], set.map(|s| s.format.history_table()).unwrap_or("")).await?;
    let mut out = Vec::new();
    for (oid, t) in &utc_post.tables {
        let Some(o) = other.tables.get(oid) else {
            continue;
        };
        for col in &t.columns {
            let (Some(a), Some(b)) = (
                t.column_data.get(&col.attnum),
                o.column_data.get(&col.attnum),
            ) else {
                continue;
            };
            if a == b {
                continue;
            }
            // Count the rows that differ, by key.
            let (count, samples) = if let Some(k) = t.key.first() {
                differing_rows(utc_client, &c, t, k, &col.name).await?
            } else {
                (None, None)
            };
            let mut f = Finding::new(
                Level::Warn,
                "timezone-dependent",
                format!(
                    "{}.{} gets different values when the migrations run with session TimeZone {OTHER} instead of UTC{}",
                    t.display(),
                    col.name,
                    count.map(|n| format!(": {n} rows differ")).unwrap_or_default()
                ),
            )
            .object(format!("{}.{}", t.display(), col.name))
            .remedy("make the conversion explicit (AT TIME ZONE 'Europe/London' / a fixed zone in USING) instead of relying on the session TimeZone");
            if let Some(n) = count {
                f = f.count(n);
            }
            if let Some(s) = samples {
                f = f.evidence(format!(
                    "{} (UTC session → {OTHER} session, shown in UTC): {s}",
                    k_name(t)
                ));
            }
            // Point at the statement that mentions the column.
            for m in pending {
                if let Some(st) = split::split(&m.up.sql)
                    .into_iter()
                    .find(|s| s.sql.to_lowercase().contains(&col.name.to_lowercase()))
                {
                    f = f.at(&m.up.file, st.line + m.up.first_line - 1, &st.sql);
                    break;
                }
            }
            out.push(f);
        }
    }
    Ok(out)
}

fn k_name(t: &fingerprint::Table) -> String {
    t.key.join(",")
}

async fn differing_rows(
    a: &Client,
    b: &Client,
    t: &fingerprint::Table,
    key: &str,
    col: &str,
) -> Result<(Option<i64>, Option<String>)> {
    if t.rows > 2_000_000 {
        return Ok((None, None));
    }
    let sql = format!(
        "SELECT {k}::text, {c}::text FROM {t} ORDER BY {k}",
        k = quote_ident(key),
        c = quote_ident(col),
        t = t.qualified()
    );
    let (ra, rb) = futures_util::future::try_join(a.query(&sql, &[]), b.query(&sql, &[])).await?;
    let map: std::collections::HashMap<String, Option<String>> = rb
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, Option<String>>(1)))
        .collect();
    let mut n = 0i64;
    let mut samples = Vec::new();
    for r in &ra {
        let k: String = r.get(0);
        let v: Option<String> = r.get(1);
        let other = map.get(&k).cloned().flatten();
        if other != v {
            n += 1;
            if samples.len() < 3 {
                samples.push(format!(
                    "{k}: {} → {}",
                    v.unwrap_or_else(|| "NULL".into()),
                    other.unwrap_or_else(|| "NULL".into())
                ));
            }
        }
    }
    Ok((Some(n), (!samples.is_empty()).then(|| samples.join("; "))))
}

/// up → down must give back PRE; down → up must give back POST.
async fn round_trip(
    client: &Client,
    format: Format,
    pending: &[&Migration],
    pre: &Fingerprint,
    post: &Fingerprint,
    history_table: &str,
) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    let reversed: Vec<&Migration> = pending.iter().rev().copied().collect();
    let downs = apply::run(client, format, &reversed, Direction::Down).await?;
    if let Some((run, f)) = downs
        .iter()
        .find_map(|r| r.failure.as_ref().map(|f| (r, f)))
    {
        out.push(
            Finding::new(
                Level::Fail,
                "down-migration",
                format!(
                    "{} fails after the up migrations: {} (SQLSTATE {})",
                    run.file, f.message, f.sqlstate
                ),
            )
            .at(&run.file, f.line, &f.statement)
            .remedy("make the down migration undo exactly what the up migration did"),
        );
        return Ok(out);
    }
    let s2 = fingerprint::take(client, &[], history_table).await?;
    for d in compare(pre, &s2) {
        out.push(
            Finding::new(Level::Fail, "down-migration", format!("up → down does not give back the original: {d}"))
                .file(&reversed.last().and_then(|m| m.down.as_ref()).map(|s| s.file.clone()).unwrap_or_default())
                .remedy("the down migration must restore the schema and the data (a dropped column's values cannot come back: mark the migration irreversible or keep the values)"),
        );
    }
    let ups = apply::run(client, format, pending, Direction::Up).await?;
    if let Some((run, f)) = ups.iter().find_map(|r| r.failure.as_ref().map(|f| (r, f))) {
        out.push(
            Finding::new(
                Level::Fail,
                "down-migration",
                format!(
                    "{} cannot be applied again after its down migration: {}",
                    run.file, f.message
                ),
            )
            .at(&run.file, f.line, &f.statement)
            .remedy("the down migration leaves something behind that the up migration creates"),
        );
        return Ok(out);
    }
    let s3 = fingerprint::take(client, &[], history_table).await?;
    for d in compare(post, &s3) {
        out.push(
            Finding::new(
                Level::Fail,
                "down-migration",
                format!("up → down → up differs from up: {d}"),
            )
            .file(&pending[0].up.file)
            .remedy("the down migration leaves residue the up migration does not expect"),
        );
    }
    Ok(out)
}

/// Differences between two fingerprints, by name (oids change when a down drops and recreates).
fn compare(a: &Fingerprint, b: &Fingerprint) -> Vec<String> {
    let mut out = Vec::new();
    for t in a.tables.values() {
        let Some(u) = b.table_named(&t.schema, &t.name) else {
            out.push(format!("table {} is missing", t.display()));
            continue;
        };
        if t.rows != u.rows {
            out.push(format!(
                "{} has {} rows instead of {}",
                t.display(),
                u.rows,
                t.rows
            ));
        }
        for c in &t.columns {
            let Some(d) = u.column_named(&c.name) else {
                out.push(format!("column {}.{} is missing", t.display(), c.name));
                continue;
            };
            if c.ty != d.ty || c.not_null != d.not_null || c.default != d.default {
                out.push(format!(
                    "column {}.{} is {}{} instead of {}{}",
                    t.display(),
                    c.name,
                    d.ty,
                    if d.not_null { " NOT NULL" } else { "" },
                    c.ty,
                    if c.not_null { " NOT NULL" } else { "" }
                ));
            }
            let (Some((n1, h1)), Some((n2, h2))) =
                (t.column_data.get(&c.attnum), u.column_data.get(&d.attnum))
            else {
                continue;
            };
            if h1 != h2 {
                out.push(format!(
                    "values of {}.{} differ ({n1} non-NULL before, {n2} after)",
                    t.display(),
                    c.name
                ));
            }
        }
        for d in &u.columns {
            if t.column_named(&d.name).is_none() {
                out.push(format!("extra column {}.{}", t.display(), d.name));
            }
        }
    }
    for u in b.tables.values() {
        if a.table_named(&u.schema, &u.name).is_none() {
            out.push(format!("extra table {}", u.display()));
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
        out.push(format!("{x} is missing"));
    }
    for x in nb.iter().filter(|x| !na.contains(x)) {
        out.push(format!("extra {x}"));
    }
    out
}

/// Seeding the migrated database (more patients, appended) must still work.
/// Runs last, on the clone itself.
async fn seed_compat(c: &mut Client, seed: u64) -> Result<Vec<Finding>> {
    let opts = crate::seed::load::LoadOptions {
        schema: "public".into(),
        seed,
        patients: 25,
        jobs: 1,
        existing: crate::seed::load::Existing::Append,
    };
    match crate::seed::load::load(c, "the migrated clone".into(), &opts, &crate::seed::NoProgress).await {
        Ok(_) => Ok(Vec::new()),
        Err(e) => Ok(vec![
            Finding::new(
                Level::Fail,
                "seed-broken",
                format!("ward's built-in seed no longer applies to the migrated schema: {}", one_line(&e)),
            )
            .count(1)
            .remedy("give new NOT NULL columns a DEFAULT, or seed the application's schema with a spec (ward seed --init-spec)"),
        ]),
    }
}

fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

/// The project's seed spec on the migrated schema, as for the next developer:
/// the spec's tables emptied (the rows the migrations themselves put in other
/// tables stay), then seeded from scratch.
async fn spec_compat(
    c: &mut Client,
    path: &std::path::Path,
    shown: &std::path::Path,
    seed: Option<u64>,
    jobs: usize,
    history_table: &str,
) -> Result<Vec<Finding>> {
    let spec = crate::seed::custom::spec::SpecFile::load(path)?;
    let mut empty = Vec::new();
    for (name, ts) in &spec.tables {
        if ts.skip || (!history_table.is_empty() && name.ends_with(history_table)) {
            continue;
        }
        let exists: bool = c
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&quote_qualified(name)],
            )
            .await?
            .get(0);
        if exists {
            empty.push(quote_qualified(name));
        }
    }
    if !empty.is_empty() {
        c.batch_execute(&format!("TRUNCATE {} CASCADE", empty.join(", ")))
            .await?;
    }
    let r = crate::seed::custom::seed(
        c,
        "the migrated clone".into(),
        path,
        seed,
        jobs,
        false,
        &crate::seed::NoProgress,
    )
    .await;
    let Err(e) = r else { return Ok(Vec::new()) };
    let file = shown.display().to_string();
    let msg = one_line(&e).replace(&path.display().to_string(), &file);
    // Name the spec entries that broke: the error names its spec line, or the tables.
    let mut entries: Vec<String> = spec
        .tables
        .keys()
        .filter(|t| {
            msg.contains(t.as_str()) || t.split_once('.').is_some_and(|(_, n)| names_word(&msg, n))
        })
        .map(|t| {
            format!(
                "[tables.\"{t}\"] at {file}:{}",
                crate::seed::custom::spec::line_of(&spec.text, t, None)
            )
        })
        .collect();
    entries.truncate(5);
    let line = regex::Regex::new(&format!(r"{}:(\d+):", regex::escape(&file)))
        .unwrap()
        .captures(&msg)
        .and_then(|m| m[1].parse().ok())
        .or_else(|| {
            spec.tables
                .keys()
                .find(|t| msg.contains(t.as_str()))
                .map(|t| crate::seed::custom::spec::line_of(&spec.text, t, None))
        })
        .unwrap_or(1);
    let mut f = Finding::new(
        Level::Fail,
        "seed-broken",
        format!("the seed spec no longer applies to the migrated schema: {msg}"),
    )
    .count(entries.len().max(1) as i64)
    .remedy(format!(
        "update {file} in the same change as the migration (ward seed --init-spec PATH writes a fresh starter to compare), \
         or give new NOT NULL columns a DEFAULT"
    ));
    f.file = Some(file);
    f.line = Some(line);
    for e in entries {
        f = f.evidence(format!("spec entry {e}"));
    }
    Ok(vec![f])
}

/// `schema.table` (or `table`) as a quoted SQL name.
fn quote_qualified(name: &str) -> String {
    match name.split_once('.') {
        Some((s, t)) => format!("{}.{}", quote_ident(s), quote_ident(t)),
        None => quote_ident(name),
    }
}
