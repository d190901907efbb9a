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
    })
}
