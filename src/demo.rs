//! `ward demo`: the main job on an embedded default, with no set-up: start a
//! throwaway cluster, seed it with the built-in model, show the result, and
//! clean up (or keep it running with `--keep`).

use anyhow::{Context, Result};
use serde::Serialize;

use crate::pg::{self, cluster::Cluster};
use crate::progress::Progress;
use crate::seed::SeedReport;
use crate::seed::load::{self, Existing, LoadOptions};
use crate::seed::spec::Spec;

/// What `ward demo` shows after seeding.
#[derive(Debug, Serialize)]
pub(crate) struct DemoSummary {
    pub seed: SeedReport,
    /// Connection string of the cluster (only when kept running).
    pub database_url: Option<String>,
    /// How to stop the kept cluster.
    pub stop_command: Option<String>,
    /// A few sample patients.
    pub sample: Vec<Vec<String>>,
    /// The snapshot stages: snapshot → damage → restore → rows back.
    pub snapshot: Option<DemoSnapshot>,
    /// The quick-reset stage: a fast (in-cluster) snapshot and restore.
    pub fast: Option<DemoFast>,
    /// `ward check` of the example migrations (one safe, one data-breaking).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::check::report::Report>,
    /// The name of each example set in `checks` ("safe", "breaking"), for
    /// the human summary's headings.
    #[serde(skip)]
    pub check_names: Vec<String>,
}

/// What the quick-reset stage of `ward demo` did.
#[derive(Debug, Serialize)]
pub(crate) struct DemoFast {
    pub snapshot_seconds: f64,
    pub deleted_rows: i64,
    pub restore_seconds: f64,
    pub rows_after_restore: i64,
}

/// What the snapshot stages of `ward demo` did.
#[derive(Debug, Serialize)]
pub(crate) struct DemoSnapshot {
    pub name: String,
    pub snapshot_seconds: f64,
    pub archive_bytes: u64,
    pub dropped_table: String,
    pub rows_before: i64,
    pub rows_after_restore: i64,
    pub restore_seconds: f64,
}

pub(crate) async fn run(patients: u64, keep: bool, progress: &dyn Progress) -> Result<DemoSummary> {
    crate::seed::check_patients(0, patients)?;
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await?
        .context("starting a throwaway Postgres cluster")?;
    // A database of its own (not the maintenance one), so the quick-reset
    // stage can swap it by renaming.
    pg::connect(&cluster.url("postgres"))
        .await?
        .batch_execute("CREATE DATABASE clinic")
        .await?;
    let url = cluster.url("clinic");
    let mut client = pg::connect(&url).await?;
    let opts = LoadOptions {
        schema: "public".into(),
        seed: Spec::builtin()?.seed,
        patients,
        jobs: crate::config::default_jobs(),
        existing: Existing::Refuse,
    };
    let target = format!("a throwaway cluster on port {}", cluster.port());
    let report = load::load(&mut client, target, &opts, progress).await?;
    let sample = client
        .query(
            "SELECT nhs_number::text, given_name || ' ' || family_name, date_of_birth::text, sex::text,
                    postcode, coalesce(phone, '-'), coalesce(email, '-')
             FROM patients ORDER BY id LIMIT 5",
            &[],
        )
        .await?
        .iter()
        .map(|r| (0..7).map(|i| r.get::<_, String>(i)).collect())
        .collect();
    drop(client);
    progress.stage("checking two example migrations", 0);
    let checks = example_checks(&url).await?;
    progress.finish();
    let mut cluster = cluster;
    let snapshot = snapshot_stages(&mut cluster, &url, progress).await?;
    let fast = quick_reset(&cluster, &url, progress).await?;
    let (database_url, stop_command) = if keep {
        (Some(url), Some(cluster.keep()))
    } else {
        tokio::task::spawn_blocking(move || {
            let mut cluster = cluster;
            cluster.stop()
        })
        .await??;
        (None, None)
    };
    Ok(DemoSummary {
        seed: report,
        database_url,
        stop_command,
        sample,
        snapshot: Some(snapshot),
        fast: Some(fast),
        checks,
        check_names: EXAMPLE_MIGRATIONS
            .iter()
            .map(|(name, _)| name.to_string())
            .collect(),
    })
}

/// The daily loop: a fast snapshot, a mistake, and a reset in seconds.
async fn quick_reset(cluster: &Cluster, url: &str, progress: &dyn Progress) -> Result<DemoFast> {
    use crate::snapshot::{store::Store, template};
    progress.stage("quick reset", 0);
    let store = Store::open(&cluster.dir().join("snapshots"))?;
    let t0 = std::time::Instant::now();
    let m =
        template::create_snapshot(&store, url, "demo-fast", Default::default(), true, None).await?;
    let snapshot_seconds = t0.elapsed().as_secs_f64();
    let client = pg::connect(url).await?;
    let before: i64 = client
        .query_one("SELECT count(*) FROM appointments", &[])
        .await?
        .get(0);
    let deleted = client
        .execute("DELETE FROM appointments WHERE id % 2 = 0", &[])
        .await? as i64;
    drop(client);
    let t0 = std::time::Instant::now();
    template::restore(url, m.template.as_ref().expect("a fast snapshot"), true).await?;
    let restore_seconds = t0.elapsed().as_secs_f64();
    let after: i64 = pg::connect(url)
        .await?
        .query_one("SELECT count(*) FROM appointments", &[])
        .await?
        .get(0);
    progress.finish();
    if after != before {
        anyhow::bail!("the quick reset brought back {after} appointments, expected {before}");
    }
    Ok(DemoFast {
        snapshot_seconds,
        deleted_rows: deleted,
        restore_seconds,
        rows_after_restore: after,
    })
}

/// Snapshot → damage (drop a table) → restore → prove the rows are back, on
/// the cluster's own data directory (stopped for the snapshot and the restore).
async fn snapshot_stages(
    cluster: &mut Cluster,
    url: &str,
    progress: &dyn Progress,
) -> Result<DemoSnapshot> {
    use std::sync::Arc;

    use crate::snapshot::{self, CreateOptions, Method, RestoreOptions, store::Store};
    let table = "prescriptions";
    let count = |client: tokio_postgres::Client| async move {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await?
            .get(0);
        anyhow::Ok(n)
    };
    let rows_before = count(pg::connect(url).await?).await?;
    progress.stage("snapshot", 0);
    let store = Store::open(&cluster.dir().join("snapshots"))?;
    let target = crate::target::Target::Datadir(cluster.data_path());
    let quiet: Arc<dyn Progress> = Arc::new(crate::progress::NoProgress);
    stop(cluster).await?;
    let created = snapshot::create(
        &store,
        &target,
        &CreateOptions {
            name: Some("demo".into()),
            method: Method::Cold,
            stop_timeout: 60,
            labels: Default::default(),
        },
        quiet.clone(),
    )
    .await?;
    start(cluster).await?;
    let client = pg::connect(url).await?;
    client
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .context("dropping a table for the demo")?;
    drop(client);
    progress.stage("restore", 0);
    stop(cluster).await?;
    let t0 = std::time::Instant::now();
    snapshot::restore(
        &store,
        "demo",
        &target,
        &RestoreOptions {
            safety: true,
            stop_timeout: 60,
        },
        Arc::new(|_: &str| Ok(true)),
        quiet,
    )
    .await?;
    let restore_seconds = t0.elapsed().as_secs_f64();
    start(cluster).await?;
    let rows_after_restore = count(pg::connect(url).await?).await?;
    progress.finish();
    if rows_after_restore != rows_before {
        anyhow::bail!(
            "the demo restore brought back {rows_after_restore} rows of {table}, expected {rows_before}"
        );
    }
    Ok(DemoSnapshot {
        name: created.name,
        snapshot_seconds: created.seconds,
        archive_bytes: created.compressed_bytes,
        dropped_table: table.into(),
        rows_before,
        rows_after_restore,
        restore_seconds,
    })
}

async fn stop(cluster: &mut Cluster) -> Result<()> {
    tokio::task::block_in_place(|| cluster.stop())
}

async fn start(cluster: &mut Cluster) -> Result<()> {
    tokio::task::block_in_place(|| cluster.start_again())
}

/// The example migrations of the demo's check stage: one safe, one that
/// breaks data (lossy rounding and a cascading delete).
pub(crate) const EXAMPLE_MIGRATIONS: &[(&str, &[(&str, &str)])] = &[
    (
        "safe",
        &[(
            "20240601000000_add_preferred_name.sql",
            "-- A nullable column: no rewrite, no data touched.\nALTER TABLE patients ADD COLUMN preferred_name text;\n",
        )],
    ),
    (
        "breaking",
        &[
            (
                "20240602000000_whole_number_observations.sql",
                "-- Store observation values as whole numbers.\nALTER TABLE observations ALTER COLUMN value TYPE integer;\n",
            ),
            (
                "20240602000001_purge_deceased.sql",
                "-- Remove deceased patients.\nDELETE FROM patients WHERE date_of_death IS NOT NULL;\n",
            ),
        ],
    ),
];

/// Runs `ward check` of each example set against a clone of the demo database.
async fn example_checks(url: &str) -> Result<Vec<crate::check::report::Report>> {
    let dir = tempfile::tempdir().context("a temporary directory for the example migrations")?;
    let mut reports = Vec::new();
    for (name, files) in EXAMPLE_MIGRATIONS {
        let mdir = dir.path().join(name).join("migrations");
        std::fs::create_dir_all(&mdir)?;
        for (file, sql) in *files {
            std::fs::write(mdir.join(file), sql)?;
        }
        let opts = crate::check::Options {
            migrations: Some(mdir),
            format: Some(crate::check::migrations::Format::Sqlx),
            against: crate::check::Against::Url(url.to_string()),
            server_url: None,
            apply_cmd: None,
            base: None,
            seed: crate::check::SeedSource::Builtin {
                patients: 0,
                seed: 0,
                jobs: 1,
            },
            timezone_check: Some(false),
            round_trip: None,
            production: None,
            against_label: None,
            django: None,
            accept: None,
        };
        reports.push(crate::check::run(&opts, &crate::progress::NoProgress).await?);
    }
    Ok(reports)
}
