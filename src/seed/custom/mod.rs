//! Seeding the application's own schema from a spec file: introspection of
//! the live schema (`schema`, `checks`), the spec (`spec`), its checked plan
//! (`plan`), the generators (`generators`, `values`, `shape` for JSON), the
//! starter spec (`guess`) and the loader (`load`).

pub(crate) mod checks;
pub(crate) mod django_hints;
pub(crate) mod generators;
pub(crate) mod guess;
pub(crate) mod kept;
pub(crate) mod load;
pub(crate) mod make;
pub(crate) mod plan;
pub(crate) mod prepare;
pub(crate) mod schema;
pub(crate) mod shape;
pub(crate) mod spec;
pub(crate) mod values;
pub(crate) mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use tokio_postgres::Client;

use super::SeedReport;
use crate::error::UsageError;
use crate::progress::Progress;

/// What `--init-spec` wrote.
#[derive(Debug, Serialize)]
pub(crate) struct InitReport {
    pub path: PathBuf,
    pub tables: usize,
    pub skipped: Vec<String>,
    pub columns: usize,
    /// CHECK constraints ward could not read: the user should look at them.
    pub unread_checks: Vec<String>,
}

/// Default seed of a spec without one.
pub(crate) const DEFAULT_SEED: u64 = 1;

/// Writes a starter spec for the connected database to `path` (never over an existing file).
/// With `django`, each column also follows the project's models ([`django_hints`]).
pub(crate) async fn init_spec(
    client: &Client,
    path: &Path,
    django: Option<&crate::django::Models>,
) -> Result<InitReport> {
    if path.exists() {
        return Err(UsageError(format!(
            "{} already exists — give another path (ward seed --init-spec PATH) or delete it first",
            path.display()
        ))
        .into());
    }
    let schema = schema::introspect(client).await?;
    if schema.tables.is_empty() {
        return Err(UsageError(
            "the database has no tables to write a spec for — run your migrations first, or use the built-in model (ward seed)".into(),
        )
        .into());
    }
    let db: String = client
        .query_one("SELECT current_database()::text", &[])
        .await?
        .get(0);
    let kept = kept::kept_tables(client, &schema).await?;
    let kept_rows = kept::kept_rows(client, &schema, &kept).await?;
    let samples = kept::json_samples(client, &schema, &kept_rows).await?;
    let facts = guess::Facts {
        kept,
        kept_rows,
        samples,
    };
    let hint = django.map(|m| move |t: &_, c: &_, g| django_hints::apply(m, t, c, g));
    let hint = hint.as_ref().map(|h| h as guess::ColumnHint);
    let (mut text, skipped) = guess::spec_text(&schema, &db, DEFAULT_SEED, &facts, hint);
    if let Some(m) = django {
        text.insert_str(0, &django_hints::header(m));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut tmp = tempfile::NamedTempFile::new_in(
        path.parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    )?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.persist_noclobber(path)
        .map_err(|e| UsageError(format!("cannot write {}: {}", path.display(), e.error)))?;
    Ok(InitReport {
        path: path.to_path_buf(),
        tables: schema.tables.len() - skipped.len(),
        skipped,
        columns: schema.tables.iter().map(|t| t.columns.len()).sum(),
        unread_checks: schema
            .tables
            .iter()
            .flat_map(|t| {
                t.unparsed_checks
                    .iter()
                    .map(move |c| format!("{}: {c}", t.qualified()))
            })
            .collect(),
    })
}

/// Seeds the connected database by the spec at `path`, in one transaction.
/// With `truncate`, tables outside the spec that the CASCADE would empty
/// are refused (see [`seed_asking`] to ask instead).
pub(crate) async fn seed(
    client: &mut Client,
    target: String,
    path: &Path,
    seed: Option<u64>,
    jobs: usize,
    truncate: bool,
    progress: &dyn Progress,
) -> Result<SeedReport> {
    let refuse = |_: &str| -> Result<bool> { Ok(false) };
    let run = SpecRun {
        target,
        path,
        seed,
        jobs,
        truncate,
    };
    seed_asking(client, run, &refuse, progress).await
}

/// One seeding by a spec file: which database, which spec, and how.
pub(crate) struct SpecRun<'a> {
    /// The database as the report names it (never with its password).
    pub target: String,
    /// The spec file.
    pub path: &'a Path,
    /// The seed (default: the spec's, else ward's).
    pub seed: Option<u64>,
    /// Generator threads (they do not change the rows).
    pub jobs: usize,
    /// Empty the spec's tables first.
    pub truncate: bool,
}

/// [`seed`], asking `confirm` before `--truncate` empties tables outside the
/// spec that hold rows.
pub(crate) async fn seed_asking(
    client: &mut Client,
    run: SpecRun<'_>,
    confirm: prepare::Confirm<'_>,
    progress: &dyn Progress,
) -> Result<SeedReport> {
    let SpecRun {
        target,
        path,
        seed,
        jobs,
        truncate,
    } = run;
    let started = Instant::now();
    let spec = spec::SpecFile::load(path)?;
    let tx = client.transaction().await?;
    let schema = schema::introspect(&tx).await?;
    let seed = seed.or(spec.seed).unwrap_or(DEFAULT_SEED);
    let as_of = spec.as_of.unwrap_or(super::spec::Spec::builtin()?.as_of);
    let plan = plan::Plan::build(&spec, schema, seed, as_of)?;
    for (table, check) in &plan.unparsed_checks {
        tracing::warn!(
            "{table}: ward cannot read {check}; if the seed fails on it, adjust the generators"
        );
    }
    prepare::prepare(&tx, &plan, truncate, confirm).await?;
    let total: u64 = plan.tables.iter().map(|t| t.rows).sum();
    progress.stage("seeding", total);
    let pool = Arc::new(super::pipeline::pool(jobs)?);
    let tables = load::load(&tx, Arc::new(plan), &pool, progress).await?;
    tx.commit().await.context("committing the seed")?;
    progress.finish();
    Ok(SeedReport::new(
        super::RunFacts {
            target,
            seed,
            patients: 0,
            spec: Some(path.display().to_string()),
            jobs,
            created_schema: false,
        },
        tables,
        started,
    ))
}
