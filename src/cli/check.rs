//! `ward check`'s flags, report formats and examples.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{DbContainerArgs, DjangoProjectArgs, StoreArgs};

/// `ward check --help`'s epilogue: examples, every rule (from the one list
/// in `check::rule`), and how to accept a finding.
pub(super) fn check_help() -> String {
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
pub(crate) enum CheckFormat {
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
pub(crate) enum Runner {
    /// Django: `manage.py showmigrations --plan`, `sqlmigrate` and `migrate`.
    Django,
}

/// What the migrations run against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AgainstArg {
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
    pub(crate) fn against(&self) -> Result<AgainstArg, crate::error::UsageError> {
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
pub(crate) struct CheckArgs {
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
