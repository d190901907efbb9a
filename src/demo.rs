//! `ward demo`: the main job on an embedded default, with no set-up: start a
//! throwaway cluster, seed it with the built-in model, show the result, and
//! clean up (or keep it running with `--keep`).

use anyhow::{Context, Result};

use crate::output::DemoSummary;
use crate::pg::{self, cluster::Cluster};
use crate::seed::load::{self, Existing, LoadOptions};
use crate::seed::{Progress, spec::Spec};

pub async fn run(patients: u64, keep: bool, progress: &dyn Progress) -> Result<DemoSummary> {
    crate::seed::check_patients(0, patients)?;
    let cluster = tokio::task::spawn_blocking(Cluster::start)
        .await?
        .context("starting a throwaway Postgres cluster")?;
    let url = cluster.url("postgres");
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
        checks,
    })
}

/// The example migrations of the demo's check stage: one safe, one that
/// breaks data (lossy rounding and a cascading delete).
pub const EXAMPLE_MIGRATIONS: &[(&str, &[(&str, &str)])] = &[
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
        };
        reports.push(crate::check::run(&opts, &crate::seed::NoProgress).await?);
    }
    Ok(reports)
}
