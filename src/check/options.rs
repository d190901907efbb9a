//! What a check is asked to do: the data it runs against, the seed that
//! makes that data, and the switches for the extra runs. Plain data, filled
//! by `commands/check.rs` (and `ward demo`), read by every phase.

use std::path::PathBuf;

use super::migrations::Format;
use super::stats;

/// What the migrations run against.
#[derive(Debug, Clone)]
pub(crate) enum Against {
    /// A fresh database seeded by ward (on `server` or a throwaway cluster).
    Seed,
    /// An existing database, cloned by template and never modified.
    Url(String),
}

/// The realistic data to fill a fresh database with, at the pre-migration
/// schema; the same source must still seed the schema after the migrations.
#[derive(Debug, Clone)]
pub(crate) enum SeedSource {
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
    pub(super) fn describe(&self) -> String {
        match self {
            SeedSource::Builtin { patients, seed, .. } => {
                format!("ward's built-in patient records ({patients} patients, seed {seed})")
            }
            SeedSource::Spec { path, .. } => format!("the seed spec {}", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Options {
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
    /// The down-migration round trip: None = when every pending migration
    /// can be undone (each has a down; with Django, each has a reverse);
    /// Some(true) also runs Django's with irreversible ones (reported as
    /// such); Some(false) never.
    pub round_trip: Option<bool>,
    /// What to call the data in the report (else it is described from the URL).
    pub against_label: Option<String>,
    /// Production table sizes, to extrapolate lock times.
    pub production: Option<stats::ProductionStats>,
    /// `--runner django`: Django lists and applies the migrations ([`django`]).
    pub django: Option<crate::django::Project>,
    /// The accept file (else `ward-accept.toml` in the migrations' project root, if any).
    pub accept: Option<PathBuf>,
}
