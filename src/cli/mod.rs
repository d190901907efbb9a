//! The command line, as clap derive types. The `///` comments here are the help.
//!
//! Values that can also come from the environment or `ward.toml` are `Option`s
//! without clap defaults, so `config` can tell "not given" from "given" and
//! apply the precedence flag > environment > file > default.
//!
//! This file holds the top level (`Cli`, the global flags, the `Command`
//! list); each verb's flags and examples live in the file named after it,
//! and the flag groups several verbs share in `shared.rs`.

use clap::{Args, Parser, Subcommand};

mod backup;
mod check;
mod demo;
mod seed;
mod shared;
mod snapshot;

pub(crate) use backup::BackupArgs;
pub(crate) use check::{AgainstArg, CheckArgs, CheckFormat, Runner};
pub(crate) use demo::DemoArgs;
pub(crate) use seed::SeedArgs;
pub(crate) use shared::{DbContainerArgs, DjangoProjectArgs, RecipientArgs, StoreArgs};
pub(crate) use snapshot::{
    SnapshotArgs, SnapshotCommand, SnapshotCopyArgs, SnapshotCreateArgs, SnapshotDeleteArgs,
    SnapshotPruneArgs, SnapshotRestoreArgs, SnapshotVerifyArgs,
};

use backup::BACKUP_EXAMPLES;
use check::check_help;
use demo::DEMO_EXAMPLES;
use seed::SEED_EXAMPLES;
use snapshot::SNAPSHOT_EXAMPLES;

const ABOUT: &str = "ward — the life cycle of data in stateful Postgres containers.

Seed a database with realistic, deterministic fake patient records that are
safe by construction (NHS numbers from the never-issued 999 test range, Ofcom
drama phone numbers, example.* e-mail domains).";

const EXAMPLES: &str = "Examples:
  ward demo                                  seed a throwaway local Postgres and show the result
  ward seed --database-url postgres://app:secret@localhost:5432/app
  ward seed --patients 50000 --truncate      replace ward's rows with 50,000 patients
  ward seed --export out/ --format csv       write the same rows to CSV files, no database
  ward doctor                                what ward can reach, and how to fix what it cannot

Exit codes: 0 ok · 1 findings · 2 error (bad input, unreachable service) · 130 interrupted.
Logs: set WARD_LOG (e.g. WARD_LOG=debug) or use -v/-vv; data goes to stdout, logs to stderr.";

#[derive(Debug, Parser)]
#[command(name = "ward", version, about = ABOUT, after_help = EXAMPLES, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct GlobalArgs {
    /// Postgres connection URL, e.g. postgres://user:pass@host:5432/db
    /// [env: DATABASE_URL; ward.toml: database_url]
    #[arg(
        long,
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr; no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print results as JSON on stdout (for scripts and CI).
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Fill a database with realistic fake patient records.
    #[command(after_help = SEED_EXAMPLES)]
    Seed(SeedArgs),
    /// Start a throwaway local Postgres, seed it and show what ward does.
    #[command(after_help = DEMO_EXAMPLES)]
    Demo(DemoArgs),
    /// Check what ward can reach (server binaries, database, Docker) and how to fix what is missing.
    #[command(after_help = DOCTOR_EXAMPLES)]
    Doctor,
    /// Verified snapshots and safe restores of a Postgres Docker volume or data directory.
    #[command(after_help = SNAPSHOT_EXAMPLES)]
    Snapshot(SnapshotArgs),
    /// Run pending migrations on a clone of realistic data and prove nothing was lost or damaged.
    #[command(after_help = check_help())]
    Check(CheckArgs),
    /// Back up a Postgres volume into every configured store, verify, prune, report (for a timer).
    #[command(after_help = BACKUP_EXAMPLES)]
    Backup(BackupArgs),
}

const DOCTOR_EXAMPLES: &str = "Examples:
  ward doctor
  ward doctor --json
  DATABASE_URL=postgres://app@localhost/app ward doctor

Exit code 0 when everything ward needs is there, 1 when something is missing.";
