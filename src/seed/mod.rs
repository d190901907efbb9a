//! `ward seed`: deterministic fake patient records, loaded by binary COPY or
//! exported to files.
//!
//! The pieces: `spec` (the built-in model's numbers, from seeds/patients.toml),
//! `lists` (names, districts, clinical codes from seeds/lists/), `rng` (keyed
//! streams), `generate` (the world and its rows), `encode` (binary COPY, CSV,
//! JSONL), `pipeline` (parallel ordered chunks), `load` (into Postgres) and
//! `export` (to files).

pub(crate) mod custom;
pub(crate) mod encode;
pub(crate) mod export;
pub mod generate;
pub(crate) mod lists;
pub(crate) mod load;
pub mod model;
pub(crate) mod pipeline;
pub(crate) mod rng;
pub(crate) mod spec;

use serde::Serialize;

use crate::error::UsageError;
pub(crate) use custom::InitReport;
pub(crate) use custom::spec::SpecErrors;
pub use generate::nhs::CAPACITY as MAX_PATIENTS;

#[derive(Debug, Clone, Serialize)]
pub(crate) struct TableReport {
    pub table: String,
    pub rows: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
}

/// What a seed run did.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SeedReport {
    /// `user@host:port/db` (never the password) or the export directory.
    pub target: String,
    pub seed: u64,
    /// Patients of the built-in model (0 when seeding by a spec).
    pub patients: u64,
    /// The spec file, when seeding an application's own schema.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    pub jobs: usize,
    /// Whether ward created its tables in this run.
    pub created_schema: bool,
    pub tables: Vec<TableReport>,
    pub total_rows: u64,
    pub seconds: f64,
    pub rows_per_second: f64,
    pub patients_per_second: f64,
}

/// What a run was asked to do, for its report.
pub(crate) struct RunFacts {
    pub target: String,
    pub seed: u64,
    pub patients: u64,
    pub spec: Option<String>,
    pub jobs: usize,
    pub created_schema: bool,
}

impl SeedReport {
    /// The report of a run that started at `started` and loaded `tables`.
    pub(crate) fn new(
        run: RunFacts,
        tables: Vec<TableReport>,
        started: std::time::Instant,
    ) -> SeedReport {
        let seconds = started.elapsed().as_secs_f64();
        let total_rows = tables.iter().map(|t| t.rows).sum();
        SeedReport {
            target: run.target,
            seed: run.seed,
            patients: run.patients,
            spec: run.spec,
            jobs: run.jobs,
            created_schema: run.created_schema,
            tables,
            total_rows,
            seconds,
            rows_per_second: per_second(total_rows, seconds),
            patients_per_second: per_second(run.patients, seconds),
        }
    }
}

pub(crate) fn per_second(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

/// Checks the patient count before anything is touched.
pub(crate) fn check_patients(first: u64, n: u64) -> Result<(), UsageError> {
    if n == 0 {
        return Err(UsageError("--patients must be at least 1".into()));
    }
    if first + n > MAX_PATIENTS {
        let room = MAX_PATIENTS.saturating_sub(first);
        return Err(UsageError(format!(
            "{n} patients do not fit: NHS numbers come from the never-issued test range, which holds \
             {MAX_PATIENTS} numbers{} — use --patients {room} or fewer",
            if first > 0 {
                format!(" and {first} are taken already")
            } else {
                String::new()
            }
        )));
    }
    Ok(())
}
