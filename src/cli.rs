//! The command line, as clap derive types. The `///` comments here are the help.
//!
//! Values that can also come from the environment or `ward.toml` are `Option`s
//! without clap defaults, so `config` can tell "not given" from "given" and
//! apply the precedence flag > environment > file > default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::seed::export::ExportFormat;

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
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
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
pub enum Command {
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

const SEED_EXAMPLES: &str = "Examples:
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

const DEMO_EXAMPLES: &str = "Examples:
  ward demo                  seed 1,000 patients into a throwaway cluster, summarise, clean up
  ward demo --keep           leave the cluster running and print how to connect and stop it";

const DOCTOR_EXAMPLES: &str = "Examples:
  ward doctor
  ward doctor --json
  DATABASE_URL=postgres://app@localhost/app ward doctor

Exit code 0 when everything ward needs is there, 1 when something is missing.";

#[derive(Debug, Args, Clone, Default)]
pub struct SeedArgs {
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

/// Where a Django project is and which Python runs it.
#[derive(Debug, Args, Clone, Default)]
pub struct DjangoProjectArgs {
    /// The Django project: the directory holding manage.py (default: the working directory).
    #[arg(long, value_name = "DIR")]
    pub django_project: Option<PathBuf>,

    /// The Python that runs manage.py [default: $WARD_PYTHON, else DIR/.venv/bin/python, else python3].
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct DemoArgs {
    /// Leave the throwaway cluster running and print how to stop it.
    #[arg(long)]
    pub keep: bool,

    /// Patients to seed in the demo.
    #[arg(long, short = 'n', default_value_t = 1000, value_name = "N")]
    pub patients: u64,
}

const SNAPSHOT_EXAMPLES: &str = "Examples:
  ward snapshot create --compose-service db            cold snapshot of the compose service `db`
  ward snapshot create nightly --online --container pg  no downtime (pg_basebackup inside)
  ward snapshot list
  ward snapshot verify nightly                         re-hash everything (exit 1 when damaged)
  ward snapshot restore nightly --compose-service db   verify, safety snapshot, replace, restart
  ward snapshot prune --keep-last 3 --keep-daily 7 --dry-run

Snapshots live in --store DIR (env WARD_STORE, ward.toml [snapshot] store, default ./.ward/snapshots).
With no target flag ward uses [snapshot] in ward.toml, else the one Postgres container of the
current directory's compose project.";

const CREATE_EXAMPLES: &str = "Examples:
  ward snapshot create                                  the compose project's Postgres container, cold
  ward snapshot create before-migration --compose-service db --label ticket=OPS-12
  ward snapshot create --online --container pg          pg_basebackup while the database keeps running
  ward snapshot create --volume pgdata --image postgres:15
  ward snapshot create --datadir /srv/pg/15/main        a native cluster (stop the server first)
  ward snapshot create try-1 --fast --database-url postgres://app:pw@localhost/app
                                                        in-cluster copy in about a second per GB

--cold (the default) checkpoints, stops the container (up to --stop-timeout seconds), proves a
clean shutdown with pg_controldata, streams the volume out and restarts the container — on every
path, also on errors and Ctrl-C. The downtime is reported.

--fast copies one database into a hidden template database in the same cluster (no downtime,
but other sessions must be closed: --force ends them). It lives inside the cluster and is gone
with the volume; --persist also writes a durable snapshot of the target, linked by label.";

const LIST_EXAMPLES: &str = "Examples:
  ward snapshot list
  ward snapshot list --json
  ward snapshot list --store /backups/ward";

const SHOW_EXAMPLES: &str = "Examples:
  ward snapshot show nightly
  ward snapshot show nightly --json      the whole manifest, with every file's SHA-256";

const DELETE_EXAMPLES: &str = "Examples:
  ward snapshot delete nightly --yes";

const VERIFY_EXAMPLES: &str = "Examples:
  ward snapshot verify nightly          re-hash the archive and every file against the manifest
  ward snapshot verify nightly --json
  ward snapshot verify nightly --deep   also start Postgres on a throwaway copy and run pg_amcheck

Exit code 0 when intact, 1 when damaged (the problems are named), 2 on bad input.";

const RESTORE_EXAMPLES: &str = "Examples:
  ward snapshot restore nightly --compose-service db
  ward snapshot restore nightly --container pg --yes     no prompt (scripts, CI)
  ward snapshot restore nightly --datadir /srv/pg/15/main
  ward snapshot restore nightly --container pg --keep-previous   keep what it replaces
  ward snapshot restore --previous --container pg               …and put that back
  ward snapshot restore try-1 --database-url postgres://app:pw@localhost/app --yes --force
                                                        a fast snapshot: seconds, sessions ended

ward verifies the snapshot first (nothing is touched if that fails), refuses another PostgreSQL
major version or layout, checks the volume has room for a second copy, and unpacks the snapshot
into a staging directory inside the volume (.ward-swap-ID, every file hashed as it streams)
while the container keeps running on the old data. Only then it stops the container, moves the
old contents aside and the staged ones into place by renames, starts it and proves it runs the
snapshot's cluster; on any failure after the stop it swaps the old data back and restarts.
A killed ward is finished or undone by the next ward run on the target (or `ward snapshot
recover`). --safety also copies the current data into the store first. The volume keeps its
name and labels, so `docker compose up` keeps working. Without a terminal,
--yes is required. A fast snapshot is copied back beside the database and swapped in by
renaming, so a failure leaves the database as it was; sessions on it are listed and the
restore refuses unless --force ends them.";

const RECOVER_EXAMPLES: &str = "Examples:
  ward snapshot recover --container pg
  ward snapshot recover --compose-service db

Reads the target's journal (kept per target in ward's state directory: $WARD_STATE_DIR,
$XDG_STATE_HOME/ward or ~/.local/state/ward) and the swap directory in the volume: a restore
whose staging had finished is completed, one whose staging had not is rolled back, and a
container the interrupted ward had stopped is started again. Any other ward command on the
target does the same first.";

const COPY_EXAMPLES: &str = "Examples:
  ward snapshot copy app-20260101 --to s3://backups/app     local store → bucket
  ward snapshot copy app-20260101 --from s3://backups/app --to .ward/snapshots
  (an encrypted snapshot is copied as it is stored; with --identity it is also
  decrypted and checked file by file on arrival)
";

const PRUNE_EXAMPLES: &str = "Examples:
  ward snapshot prune --keep-last 3 --dry-run
  ward snapshot prune --keep-daily 7 --keep-weekly 4 --keep-monthly 6 --yes

Grandfather-father-son by creation time; the newest snapshot is always kept. Prints what it
keeps and why. With no --keep-* flag it deletes nothing; deleting asks first (--yes
confirms without a terminal).";

#[derive(Debug, Args, Clone)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

/// Where snapshots are kept.
#[derive(Debug, Args, Clone, Default)]
pub struct StoreArgs {
    /// Snapshot store: a directory or s3://BUCKET/PREFIX (endpoint and credentials from
    /// AWS_* or ward.toml [store]) [env: WARD_STORE; ward.toml: [snapshot] store; default ./.ward/snapshots]
    #[arg(long, env = "WARD_STORE", value_name = "DIR|s3://BUCKET/PREFIX")]
    pub store: Option<PathBuf>,
    /// The age identity file that opens encrypted snapshots (restore, verify, copy)
    /// [env: WARD_AGE_IDENTITY; ward.toml: [store] identity]
    #[arg(long, env = "WARD_AGE_IDENTITY", value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// Encrypt new archives (snapshots, a restore's safety snapshot) with age to this
    /// X25519 recipient (age1…; repeatable) [env: WARD_AGE_RECIPIENTS, comma-separated;
    /// ward.toml: [store] encrypt_to]
    #[arg(
        long = "encrypt-to",
        env = "WARD_AGE_RECIPIENTS",
        value_delimiter = ',',
        value_name = "RECIPIENT"
    )]
    pub encrypt_to: Vec<String>,
    /// Encrypt to the recipients listed in this file, one per line (repeatable)
    /// [ward.toml: [store] recipients_file]
    #[arg(long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,
}

/// The Postgres container `ward seed` / `ward check` connect to when no
/// --database-url / DATABASE_URL is given (its published 5432 port and
/// POSTGRES_* environment).
#[derive(Debug, Args, Clone, Default)]
pub struct DbContainerArgs {
    /// Connect to this container's database (when no --database-url).
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// Connect to this compose service's container (when no --database-url).
    #[arg(long, value_name = "SERVICE")]
    pub compose_service: Option<String>,
    /// The compose project (default: the current directory's, or COMPOSE_PROJECT_NAME).
    #[arg(long, value_name = "PROJECT")]
    pub compose_project: Option<String>,
}

impl DbContainerArgs {
    pub fn spec(&self) -> crate::target::TargetSpec {
        crate::target::TargetSpec {
            container: self.container.clone(),
            compose_service: self.compose_service.clone(),
            compose_project: self.compose_project.clone(),
            ..Default::default()
        }
    }
}

/// Which database a snapshot command works on (one of these, or ward.toml, or the
/// single Postgres container of the current compose project).
#[derive(Debug, Args, Clone, Default)]
pub struct TargetArgs {
    /// A container by name.
    #[arg(long, value_name = "NAME")]
    pub container: Option<String>,
    /// A docker-compose service (found by its com.docker.compose.* labels).
    #[arg(long, value_name = "SERVICE")]
    pub compose_service: Option<String>,
    /// The compose project (default: the current directory's, or COMPOSE_PROJECT_NAME).
    #[arg(long, value_name = "PROJECT")]
    pub compose_project: Option<String>,
    /// A named volume holding PGDATA (needs --image).
    #[arg(long, value_name = "NAME")]
    pub volume: Option<String>,
    /// The Postgres image for helper containers of a --volume target (never pulled).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// A native Postgres data directory (the server must be stopped).
    #[arg(long, value_name = "PATH")]
    pub datadir: Option<PathBuf>,
}

#[derive(Debug, Subcommand, Clone)]
pub enum SnapshotCommand {
    /// Take a snapshot (cold by default; --online for no downtime).
    #[command(after_help = CREATE_EXAMPLES)]
    Create(SnapshotCreateArgs),
    /// List the snapshots in the store.
    #[command(after_help = LIST_EXAMPLES)]
    List(StoreArgs),
    /// Show one snapshot's manifest.
    #[command(after_help = SHOW_EXAMPLES)]
    Show(SnapshotNameArgs),
    /// Delete a snapshot.
    #[command(after_help = DELETE_EXAMPLES)]
    Delete(SnapshotDeleteArgs),
    /// Re-hash a snapshot against its manifest; exit 1 when damaged.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(SnapshotVerifyArgs),
    /// Restore a snapshot into its target (verify, stage beside the running data, swap, roll back on failure).
    #[command(after_help = RESTORE_EXAMPLES)]
    Restore(SnapshotRestoreArgs),
    /// Finish or undo what an interrupted ward left on a target (any ward command on the target does this too).
    #[command(after_help = RECOVER_EXAMPLES)]
    Recover(SnapshotRecoverArgs),
    /// Delete old snapshots by a grandfather-father-son policy.
    #[command(after_help = PRUNE_EXAMPLES)]
    Prune(SnapshotPruneArgs),
    /// Copy a snapshot to another store (e.g. a local one to a bucket), checked on arrival.
    #[command(after_help = COPY_EXAMPLES)]
    Copy(SnapshotCopyArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct SnapshotCopyArgs {
    /// Snapshot name (see `ward snapshot list`).
    pub name: String,
    /// The store to copy from [default: --store / WARD_STORE / ward.toml]
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub from: Option<PathBuf>,
    /// The store to copy to.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub to: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SnapshotCreateArgs {
    /// Snapshot name (default: <service or container>-<UTC timestamp>).
    pub name: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Stop the container, copy, restart (the default; exact and simple).
    #[arg(long, conflicts_with = "online")]
    pub cold: bool,
    /// No downtime: pg_basebackup inside the running container (tar format, WAL included).
    #[arg(long)]
    pub online: bool,
    /// Seconds to wait for a clean shutdown before Docker kills Postgres [ward.toml: [snapshot] stop_timeout; default 120]
    #[arg(long, env = "WARD_STOP_TIMEOUT", value_name = "SECONDS")]
    pub stop_timeout: Option<u32>,
    /// A user label for the manifest (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Second-scale: copy the database into a hidden template database in the
    /// same cluster (lives and dies with the cluster's volume). Needs --database-url.
    #[arg(long, conflicts_with_all = ["online", "cold"])]
    pub fast: bool,
    /// With --fast: the database to copy (default: the one in --database-url).
    #[arg(long, requires = "fast", value_name = "DB")]
    pub database: Option<String>,
    /// With --fast: also write a durable snapshot of the target's volume or data dir, linked to it.
    #[arg(long, requires = "fast")]
    pub persist: bool,
    /// With --fast: end other sessions on the database instead of refusing.
    #[arg(long, requires = "fast")]
    pub force: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SnapshotNameArgs {
    /// Snapshot name (see `ward snapshot list`).
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SnapshotDeleteArgs {
    /// Snapshot name (see `ward snapshot list`).
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SnapshotVerifyArgs {
    /// Snapshot name (see `ward snapshot list`).
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Also restore into a throwaway volume, start Postgres, run pg_amcheck and a sanity
    /// query, and record "last verified" in the manifest.
    #[arg(long)]
    pub deep: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SnapshotRestoreArgs {
    /// Snapshot name (see `ward snapshot list`); not with --previous.
    #[arg(required_unless_present = "previous", conflicts_with = "previous")]
    pub name: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Also copy the current data into the store as a snapshot first (an extra
    /// copy: the swap keeps the previous data on disk until the new data runs).
    #[arg(long)]
    pub safety: bool,
    /// No safety snapshot (the default since restores stage, then swap; kept for scripts).
    #[arg(long, hide = true, conflicts_with = "safety")]
    pub no_safety: bool,
    /// Keep the replaced contents in the volume <volume>-ward-previous (outside PGDATA and
    /// the target volume) instead of deleting them; `--previous` puts them back.
    #[arg(long)]
    pub keep_previous: bool,
    /// Put back the contents the last --keep-previous restore of this target kept (what it
    /// replaces is kept in their place).
    #[arg(long)]
    pub previous: bool,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Seconds to wait for a clean shutdown before Docker kills Postgres (default 120).
    #[arg(long, env = "WARD_STOP_TIMEOUT", value_name = "SECONDS")]
    pub stop_timeout: Option<u32>,
    /// Fast snapshots: end the sessions connected to the database instead of refusing.
    #[arg(long)]
    pub force: bool,
    /// Migrations on disk to compare the snapshot's migration head with (warns when it is
    /// behind or ahead) [default: the first of migrations/, db/migrations/ that exists]
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SnapshotRecoverArgs {
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SnapshotPruneArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Keep the newest N snapshots.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_last: usize,
    /// Keep the newest snapshot of each of the last N days that have one.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_daily: usize,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_weekly: usize,
    /// Keep the newest snapshot of each of the last N months that have one.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_monthly: usize,
    /// Show what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete without asking (needed when there is no terminal to ask on).
    #[arg(short, long)]
    pub yes: bool,
}

/// `ward check --help`'s epilogue: examples, every rule (from the one list
/// in `check::rule`), and how to accept a finding.
fn check_help() -> String {
    format!(
        "{CHECK_EXAMPLES}{}{CHECK_TAIL}",
        crate::check::rule::Rule::listing()
    )
}

const CHECK_EXAMPLES: &str = "Examples:
  ward check                        ./migrations against a freshly seeded database (a throwaway
                                    cluster, or the server of --database-url / DATABASE_URL)
  ward check --base origin/main     the baseline is main's migrations, seeded by main's spec
                                    (ward.toml [seed] spec); this branch's new files run on
                                    top, in merged order, and the spec must still apply
  ward check -m db/migrations --base 20240101000000
                                    migrations up to that version form the seeded schema;
                                    the later ones are checked
  ward check --against postgres://app@localhost/app_dev
                                    clone that database by template (never modified) and run
                                    the files not yet in its history table
  ward check --against snapshot before-migration
                                    a snapshot from the store: a fast snapshot's copy is
                                    cloned; a volume or datadir snapshot is started as a
                                    throwaway server
  ward check --apply-cmd 'python manage.py migrate' --against postgres://app@localhost/app
                                    any framework: the command runs with DATABASE_URL and
                                    PG* set to the clone
  ward check --format github        GitHub annotations (::error file=…,line=…::) for CI
  ward check --format markdown      a PR comment
  ward check --format sarif         SARIF for code scanning (GitHub's upload-sarif)
  ward check --production-stats prod-stats.json
                                    how long each blocking lock would be held in production

Formats: sqlx, diesel, golang-migrate, flyway, refinery, dbmate (detected from the files;
golang-migrate and refinery also from the history table, or name one with --migrations-format).
";

/// The end of `ward check --help`, after the rule listing.
const CHECK_TAIL: &str =
    "Accept a finding in the migration with `-- ward:ignore RULE` (see README).
Exit codes: 0 no FAIL (with --strict: no WARN either) · 1 findings · 2 error · 130 interrupted.";

/// Report formats for `ward check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// For people, on the terminal.
    Human,
    /// The whole report as JSON (a stable contract for scripts).
    Json,
    /// JUnit XML, one test case per finding.
    Junit,
    /// GitHub Actions workflow commands (annotations on the migration files).
    Github,
    /// A Markdown PR comment.
    Markdown,
    /// SARIF 2.1.0 for code-scanning tools (e.g. GitHub's upload-sarif).
    Sarif,
}

/// A framework whose own runner applies the migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Runner {
    /// Django: `manage.py showmigrations --plan`, `sqlmigrate` and `migrate`.
    Django,
}

/// What the migrations run against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgainstArg {
    Seed,
    Url(String),
    /// A snapshot in the store, by name (`snapshot:NAME`).
    Snapshot(String),
}

impl std::str::FromStr for AgainstArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "seed" {
            Ok(AgainstArg::Seed)
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") || s.contains('=')
        {
            Ok(AgainstArg::Url(s.to_string()))
        } else if let Some(name) = s
            .strip_prefix("snapshot:")
            .or_else(|| s.strip_prefix("snapshot "))
            .filter(|n| !n.trim().is_empty())
        {
            Ok(AgainstArg::Snapshot(name.trim().to_string()))
        } else if s == "snapshot" {
            Err("name the snapshot: --against snapshot:NAME (see `ward snapshot list`)".into())
        } else {
            Err(
                "expected `seed`, `snapshot:NAME` or a database URL (postgres://user:pass@host/db)"
                    .into(),
            )
        }
    }
}

impl CheckArgs {
    /// `--against`, which takes one value or the two words `snapshot NAME`.
    pub fn against(&self) -> Result<AgainstArg, crate::error::UsageError> {
        let bad = |m: String| crate::error::UsageError(format!("--against: {m}"));
        match self.against.as_slice() {
            [one] => one.parse().map_err(bad),
            [kw, name] if kw == "snapshot" => format!("snapshot:{name}").parse().map_err(bad),
            other => Err(bad(format!(
                "{:?} is not one value — give `seed`, a database URL or `snapshot NAME`",
                other.join(" ")
            ))),
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct CheckArgs {
    #[command(flatten)]
    pub db: DbContainerArgs,

    /// The migrations directory (default: the first of migrations/, db/migrations/, db/migration/,
    /// src/main/resources/db/migration/).
    #[arg(long, short = 'm', value_name = "DIR")]
    pub migrations: Option<PathBuf>,

    /// The migration runner whose files, transactions and history table ward emulates (default: detected).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub migrations_format: Option<crate::check::migrations::Format>,

    /// The data to check against: `seed` (a fresh database seeded by ward), a database URL
    /// (cloned by template, never modified), or `snapshot NAME` (also `snapshot:NAME`), a snapshot
    /// in the store: a --fast snapshot's in-cluster copy is cloned (reached through --database-url
    /// or its container); a Docker volume snapshot is restored into a throwaway server of its own
    /// image on 127.0.0.1, and a native data-directory snapshot into a temporary directory run by
    /// this machine's server binaries of the same major on 127.0.0.1; either is removed afterwards
    /// (its one application database, or --database).
    #[arg(
        long,
        default_value = "seed",
        num_args = 1..=2,
        value_name = "seed|URL|snapshot NAME",
        hide_default_value = false
    )]
    pub against: Vec<String>,

    /// The seed spec for --against seed and for the "seed still applies" check
    /// (default: [seed] spec in ward.toml; without one, ward's built-in model).
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,

    /// With --against snapshot:NAME: the snapshot store [env: WARD_STORE].
    #[command(flatten)]
    pub store: StoreArgs,

    /// With --against snapshot NAME of a Docker volume or data directory: the database to check (default: its one
    /// database other than `postgres`).
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,

    /// With --against seed: the migrations up to and including VERSION, or those on the git ref
    /// REF (e.g. origin/main), make the schema that is seeded; only the others are checked
    /// (default: with a seed spec, the default branch — origin/HEAD, origin/main, main …;
    /// without one, every migration is checked against ward's built-in tables). With
    /// --runner django: APP.MIGRATION[,APP.MIGRATION…], the `manage.py migrate APP MIGRATION`
    /// states to seed at (required).
    #[arg(long, value_name = "VERSION|REF")]
    pub base: Option<String>,

    /// Apply the migrations with this shell command instead (DATABASE_URL and PG* point at the clone);
    /// every data check still runs, per-statement tracing does not.
    #[arg(long, value_name = "CMD")]
    pub apply_cmd: Option<String>,

    /// Report format.
    #[arg(long, value_enum, default_value = "human", value_name = "FORMAT")]
    pub format: CheckFormat,

    /// Production table sizes (a JSON file, or a database URL whose catalog is read — counts only,
    /// never rows): blocking-lock findings then say how long the lock would be held there.
    #[arg(long, value_name = "FILE|URL")]
    pub production_stats: Option<String>,

    /// Also fail (exit 1) on WARN findings.
    #[arg(long)]
    pub strict: bool,

    /// Patients to seed with --against seed and the built-in model.
    #[arg(long, short = 'n', default_value_t = 1000, value_name = "N")]
    pub patients: u64,

    /// Seed for the generator with --against seed (default: the built-in one).
    #[arg(long, short = 's', value_name = "S")]
    pub seed: Option<u64>,

    /// The framework that runs the migrations: `django` lists, applies and blames them one by one
    /// through the project's manage.py (default: django when --django-project is given, or manage.py
    /// is in the working directory and neither --migrations nor --apply-cmd is).
    #[arg(long, value_enum, value_name = "RUNNER", conflicts_with_all = ["apply_cmd", "migrations", "migrations_format"])]
    pub runner: Option<Runner>,

    #[command(flatten)]
    pub django_project: DjangoProjectArgs,

    /// Re-run the migrations under session TimeZone America/New_York and compare
    /// (default: auto, when the SQL mentions time zones, timestamptz or date conversions).
    #[arg(long, value_name = "BOOL")]
    pub timezone_check: Option<bool>,

    /// Run the down-migration round trip (up → down → up, every down blamed on its own file)
    /// [default: true when every pending migration can be undone: each has a down file, or, with
    /// --runner django, a reverse for every operation (no RunPython/RunSQL without one); `true`
    /// with Django also goes through irreversible migrations, reported as such; with SQL files
    /// one without a down is reported (INFO) and the window is not round-tripped].
    #[arg(long, value_name = "BOOL")]
    pub round_trip: Option<bool>,

    /// The accept file: reviewed findings (rule, table, column, migration, reason) reported as
    /// accepted, out of the verdict (default: ward-accept.toml beside the migrations directory).
    #[arg(long, value_name = "FILE")]
    pub accept: Option<PathBuf>,
}

const BACKUP_EXAMPLES: &str = "Examples:
  ward backup                                   as ward.toml [backup] says (stores, target, retention, notify)
  ward backup --compose-service db --store /var/backups/ward --store /mnt/offsite/ward \\
              --keep-daily 7 --keep-weekly 4 --keep-monthly 6 --ping https://hc-ping.com/UUID
  ward backup --json                            the report as JSON (for scripts)
  ward backup --print-systemd                   the systemd .service and .timer for this ward.toml
  ward backup --print-systemd --systemd-dir /etc/systemd/system
  ward backup --store s3://backups/app --encrypt-to age1… \\
              --recipients-file /etc/ward/recipients.txt
                                                encrypted off-site (AWS_* give the endpoint and keys)

Encryption: --encrypt-to / --recipients-file, else WARD_AGE_RECIPIENTS (comma-separated),
else ward.toml [store] encrypt_to / recipients_file. The identity stays off the VPS: a
backup checks an encrypted archive by its stored bytes' size and SHA-256.

Steps: create (online: no downtime) into the first store, copy to the others and
verify each copy, prune each store by the retention policy (only this target's
backups), report; --notify and --ping tell someone how it went.
Exit codes: 0 every step succeeded · 1 the backup ran and a step failed (the report
names the store; what succeeded is kept) · 2 bad input, or another backup of this
target is still running (this run did nothing) · 130 interrupted.";

/// The age recipients new archives are encrypted to (`ward backup`); parsed
/// by `snapshot::crypt::Keys`, like `ward snapshot`'s.
#[derive(Debug, Args, Clone, Default)]
pub struct RecipientArgs {
    /// Encrypt the backup with age to this X25519 recipient (age1…; repeatable)
    /// [over WARD_AGE_RECIPIENTS, comma-separated, over ward.toml [store] encrypt_to]
    #[arg(long = "encrypt-to", value_delimiter = ',', value_name = "RECIPIENT")]
    pub encrypt_to: Vec<String>,
    /// Encrypt to the recipients listed in this file, one per line (repeatable)
    /// [over WARD_AGE_RECIPIENTS, over ward.toml [store] recipients_file]
    #[arg(long = "recipients-file", value_name = "FILE")]
    pub recipients_files: Vec<PathBuf>,
}

/// `ward backup`: flags override `ward.toml` `[backup]`.
#[derive(Debug, Args, Clone, Default)]
pub struct BackupArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// A store to back up into; repeat for more (created in the first, copied to the others)
    /// [ward.toml: [backup] stores; default: [snapshot] store]
    #[arg(long = "store", value_name = "STORE")]
    pub stores: Vec<String>,

    /// Stop the container for a cold copy instead of the default online backup (downtime).
    #[arg(long)]
    pub cold: bool,

    /// Seconds to wait for Postgres to stop cleanly (with --cold; default 120).
    #[arg(long, value_name = "SECONDS")]
    pub stop_timeout: Option<u32>,

    /// Keep the newest N backups of this target in each store.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Keep the newest backup of each of the last N days.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<usize>,
    /// Keep the newest backup of each of the last N ISO weeks.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<usize>,
    /// Keep the newest backup of each of the last N months.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<usize>,
    /// Do not prune, whatever ward.toml says.
    #[arg(long)]
    pub no_prune: bool,

    #[command(flatten)]
    pub recipients: RecipientArgs,

    /// POST the run's JSON report to this webhook [ward.toml: [backup] notify].
    #[arg(long, value_name = "URL")]
    pub notify: Option<String>,

    /// A healthchecks.io-style check: URL/start at the start, URL on success, URL/fail on
    /// failure [ward.toml: [backup] ping].
    #[arg(long, value_name = "URL")]
    pub ping: Option<String>,

    /// Print the systemd service and timer that run this backup, and do nothing else.
    #[arg(long)]
    pub print_systemd: bool,

    /// With --print-systemd: write ward-backup.service and ward-backup.timer into DIR instead.
    #[arg(long, value_name = "DIR", requires = "print_systemd")]
    pub systemd_dir: Option<PathBuf>,

    /// With --print-systemd: the timer's OnCalendar= [ward.toml: [backup] on_calendar;
    /// default "*-*-* 03:00:00"].
    #[arg(long, value_name = "WHEN", requires = "print_systemd")]
    pub on_calendar: Option<String>,

    /// With --print-systemd: the timer's RandomizedDelaySec= [ward.toml: [backup]
    /// randomized_delay; default "30min"].
    #[arg(long, value_name = "SPAN", requires = "print_systemd")]
    pub randomized_delay: Option<String>,
}
