//! Where a check's inputs come from: the migrations directory (in the
//! format named or detected, refined by the history table the data has),
//! the early checks of `--base` (before any server is started or reached:
//! a wrong ref must not cost a cluster and a seed), and the server with the
//! data the migrations run against.

use anyhow::{Context, Result};
use tokio_postgres::Client;

use super::migrations::{self, Format, MigrationSet};
use super::options::{Against, Options};
use super::scratch::{Scratch, connect, with_db};
use super::seeding::{self, Baseline};
use crate::error::UsageError;
use crate::pg;

/// The scratch server, how to describe the data (empty with `--against
/// seed`: the baseline describes itself) and the database to clone (None:
/// ward seeds one).
pub(super) type Opened = (Scratch, String, Option<String>);

/// What `--base` resolved to, before any server is reached: the SQL
/// baseline's migrations (and the base ref's files), or Django's targets.
pub(super) enum EarlyBase {
    None,
    Sql(Baseline),
    Django(Vec<(String, String)>),
}

/// Resolves `--base` (a version on disk, a git ref, Django targets) — or
/// the default ref a seed spec needs — so that a wrong one is a one-line
/// usage error (exit 2) before a cluster starts or a database is seeded.
pub(super) fn early_base(opts: &Options, set: Option<&MigrationSet>) -> Result<EarlyBase> {
    Ok(match (&opts.against, &opts.django) {
        (Against::Url(_), _) => EarlyBase::None,
        (Against::Seed, Some(_)) => {
            EarlyBase::Django(super::django_base::targets(opts.base.as_deref())?)
        }
        (Against::Seed, None) => EarlyBase::Sql(seeding::baseline(opts, set)?),
    })
}

/// The server for scratch databases and the source of the data.
pub(super) async fn open(opts: &Options) -> Result<Opened> {
    Ok(match &opts.against {
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
                opts.against_label
                    .clone()
                    .unwrap_or_else(|| format!("a clone of {}", pg::describe(&cfg))),
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
    })
}

/// The migrations directory and its format (None: Django or `--apply-cmd`
/// without one).
pub(super) fn load_migrations(opts: &Options) -> Result<Option<MigrationSet>> {
    if opts.django.is_some() {
        return Ok(None);
    }
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
pub(super) async fn refine_format(
    client: &Client,
    set: &mut MigrationSet,
    explicit: bool,
) -> Result<()> {
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
