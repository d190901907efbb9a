//! `ward seed`'s flags and examples.

use std::path::PathBuf;

use clap::Args;

use super::{DbContainerArgs, DjangoProjectArgs};
use crate::seed::export::ExportFormat;

pub(super) const SEED_EXAMPLES: &str = "Examples:
  ward seed                                  1,000 patients into $DATABASE_URL (creates ward's tables if absent)
  ward seed --patients 100000 --jobs 2       more patients, two generator threads
  ward seed --truncate                       empty ward's tables first, then seed
  ward seed --append --patients 500          add 500 more patients, ids continue deterministically
  ward seed --seed 7 --export out --format jsonl
                                             the same rows as JSON lines, no database needed
  ward seed --init-spec                      write seeds/spec.toml for YOUR schema (every table, a
                                             generator guessed for every column)
  ward seed --spec seeds/spec.toml --truncate
                                             fill your own tables as the spec says

The same --seed, --patients (or spec) and ward version give identical rows whatever --jobs.
Tables: practices, practitioners, patients, conditions, allergies, appointments,
prescriptions, observations (see README \"Built-in schema\").";

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SeedArgs {
    #[command(flatten)]
    pub db: DbContainerArgs,

    /// Number of patients to generate (default 1000; at most 909,091, the size of the NHS test range).
    #[arg(long, short = 'n', env = "WARD_PATIENTS", value_name = "N")]
    pub patients: Option<u64>,

    /// Seed for the generator; the same seed gives the same rows (default: the one in seeds/patients.toml).
    #[arg(long, short = 's', env = "WARD_SEED", value_name = "S")]
    pub seed: Option<u64>,

    /// Generator threads (default: the number of cores). Does not change the rows.
    #[arg(long, short = 'j', env = "WARD_JOBS", value_name = "J")]
    pub jobs: Option<usize>,

    /// Empty ward's tables (with --spec: the spec's tables) before seeding.
    #[arg(long, conflicts_with = "append")]
    pub truncate: bool,

    /// With --spec --truncate: also empty the tables outside the spec that CASCADE reaches (they
    /// reference the spec's tables and hold rows) without asking; required without a terminal.
    #[arg(short = 'y', long, requires = "truncate")]
    pub yes: bool,

    /// Add patients after the existing ones; ids continue from the highest id in each table.
    #[arg(long)]
    pub append: bool,

    /// Write the rows to files in DIR (one per table) instead of a database.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["truncate", "append"])]
    pub export: Option<PathBuf>,

    /// File format for --export.
    #[arg(long, value_enum, requires = "export", value_name = "FORMAT")]
    pub format: Option<ExportFormat>,

    /// Postgres schema that holds ward's tables (default: public).
    #[arg(long, env = "WARD_SCHEMA", value_name = "NAME")]
    pub schema: Option<String>,

    /// Seed the application's own tables as FILE says (see --init-spec), instead of the built-in model.
    #[arg(long, env = "WARD_SPEC", value_name = "FILE", conflicts_with_all = ["patients", "append", "export", "schema"])]
    pub spec: Option<PathBuf>,

    /// Write a starter spec for the connected database (default seeds/spec.toml) and stop.
    #[arg(
        long,
        value_name = "PATH",
        num_args = 0..=1,
        default_missing_value = "seeds/spec.toml",
        conflicts_with_all = ["spec", "patients", "truncate", "append", "export", "schema"]
    )]
    pub init_spec: Option<PathBuf>,

    /// With --init-spec: also ask the project's own Django (manage.py shell) for each model's choices,
    /// validators, max lengths and JSONField defaults, so seeded rows pass full_clean() (default: on
    /// when manage.py is in the working directory or --django-project is given).
    #[arg(long, requires = "init_spec")]
    pub django: bool,

    #[command(flatten)]
    pub django_project: DjangoProjectArgs,
}
