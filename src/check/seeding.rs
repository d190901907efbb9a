//! The realistic data of a check: the baseline seeded at the schema before
//! the pending migrations (by the project's seed spec or ward's built-in
//! model, with the migrations up to `--base VERSION` or on a git ref), and,
//! after the migrations, the proof that the same seed still applies.

use std::path::PathBuf;

use anyhow::{Context, Result};
use tokio_postgres::Client;

use super::apply::{self, Direction};
use super::fingerprint::Fingerprint;
use super::git;
use super::migrations::{self, Migration, MigrationSet};
use super::options::{Options, SeedSource};
use super::report::{Finding, Level};
use super::risk::names_word;
use super::rule::Rule;
use super::scratch::Scratch;
use super::version::VersionKey;
use crate::error::UsageError;
use crate::pg::quote_ident;

/// Fills `client`'s database (at its current schema) with realistic data.
pub(crate) async fn fill_realistic(client: &mut Client, source: &SeedSource) -> Result<()> {
    match source {
        SeedSource::Builtin {
            patients,
            seed,
            jobs,
        } => {
            let opts = crate::seed::load::LoadOptions {
                schema: "public".into(),
                seed: *seed,
                patients: *patients,
                jobs: *jobs,
                existing: crate::seed::load::Existing::Refuse,
            };
            crate::seed::load::load(
                client,
                "the check baseline".into(),
                &opts,
                &crate::progress::NoProgress,
            )
            .await
            .context("seeding the baseline for the check")?;
        }
        SeedSource::Spec { path, seed, jobs } => {
            crate::seed::custom::seed(
                client,
                "the check baseline".into(),
                path,
                *seed,
                *jobs,
                false,
                &crate::progress::NoProgress,
            )
            .await
            .with_context(|| {
                format!(
                    "seeding the baseline (the schema before the pending migrations) from {}",
                    path.display()
                )
            })?;
        }
    }
    Ok(())
}

/// A fresh database at the schema before the pending migrations, seeded;
/// its name, how to describe it, and the baseline's files (`b`, resolved
/// by [`baseline`] before any server was reached; keep them until
/// the end: the seed check reads the base ref's spec). Migrations on the base
/// ref that the working tree lacks join `set`.
pub(super) async fn seeded_baseline(
    opts: &Options,
    b: Baseline,
    set: &mut Option<MigrationSet>,
    scratch: &mut Scratch,
) -> Result<(String, String, Baseline)> {
    if let Some(s) = set.as_mut()
        && !b.base_only.is_empty()
    {
        s.migrations.extend(b.base_only.iter().cloned());
        migrations::sort(s.format, &mut s.migrations);
    }
    let db = scratch.create("base", None).await?;
    let mut c = scratch.connect(&db).await?;
    apply::prepare_session(&c, "UTC").await?;
    // The built-in model's tables are the schema's starting point,
    // unless the base migrations create them themselves. They are seeded
    // *before* the base migrations run: those migrations are what changes
    // the model's shape (a rename on main), as they would on real data.
    let seed_first = matches!(opts.seed, SeedSource::Builtin { .. })
        && !b.before.iter().any(|m| creates_builtin_table(&m.up.sql));
    if seed_first {
        c.batch_execute(crate::seed::model::SCHEMA_SQL).await?;
        c.batch_execute(crate::seed::model::CONSTRAINTS_SQL).await?;
        fill_realistic(&mut c, &opts.seed).await?;
    }
    if let Some(set) = set.as_ref()
        && !b.before.is_empty()
    {
        let refs: Vec<&Migration> = b.before.iter().collect();
        let runs = apply::run(&c, set.format, &refs, Direction::Up).await?;
        if let Some((run, f)) = runs.iter().find_map(|r| r.failure.as_ref().map(|f| (r, f))) {
            return Err(UsageError(format!(
                "base migration {} fails while building the baseline, at line {}: {} — ward builds the baseline by \
                 running the migrations {}, then seeding",
                run.file, f.line, f.message, b.at
            ))
            .into());
        }
    }
    let source = match (&opts.seed, &b.spec) {
        (SeedSource::Spec { seed, jobs, .. }, Some((p, _))) => SeedSource::Spec {
            path: p.clone(),
            seed: *seed,
            jobs: *jobs,
        },
        (s, _) => s.clone(),
    };
    if !seed_first {
        fill_source(&mut c, &source, &b).await?;
    }
    drop(c);
    let desc = format!(
        "a database seeded with {}{}",
        opts.seed.describe(),
        if b.before.is_empty() {
            String::new()
        } else if seed_first {
            format!(", then the migrations {}", b.at)
        } else {
            format!(" after the migrations {}", b.at)
        }
    );
    Ok((db, desc, b))
}

async fn fill_source(c: &mut Client, source: &SeedSource, b: &Baseline) -> Result<()> {
    fill_realistic(c, source).await.map_err(|e| match &b.spec {
        // Name the base ref's spec, not the temporary file it was written to.
        Some((tmp, shown)) => {
            anyhow::anyhow!(
                "{}",
                format!("{e:#}").replace(&tmp.display().to_string(), shown)
            )
        }
        None => e,
    })?;
    Ok(())
}

/// What the baseline is built from with `--against seed`.
#[derive(Default)]
pub(super) struct Baseline {
    /// The migrations that make the schema that is seeded.
    before: Vec<Migration>,
    /// Where they stop, for the report ("up to 42", "on origin/main (…)").
    at: String,
    /// Migrations on the base ref that this working tree lacks (its branch
    /// is behind): applied in the baseline and counted as on disk.
    base_only: Vec<Migration>,
    /// The seed spec as it is on the base ref, when it is there: its
    /// temporary path, and how to name it to people.
    spec: Option<(PathBuf, String)>,
    /// The keys of the working tree's migrations that are not on the base ref.
    pub(super) branch_only: Vec<VersionKey>,
    /// The spec of the merged tree, when it is not the working tree's: the
    /// branch left the spec alone, so the merge takes the base ref's.
    pub(super) merged_spec: Option<PathBuf>,
    _tmp: Option<tempfile::TempDir>,
}

/// The migrations that make the schema the baseline is seeded at: those up
/// to `--base VERSION`, or those on `--base REF` (by default, with a spec, the
/// repository's default branch).
pub(super) fn baseline(opts: &Options, set: Option<&MigrationSet>) -> Result<Baseline> {
    let spec = match &opts.seed {
        SeedSource::Spec { path, .. } => Some(path),
        SeedSource::Builtin { .. } => None,
    };
    let Some(set) = set else {
        if opts.base.is_some() {
            return crate::error::usage(
                "--base needs the migrations directory — pass --migrations DIR",
            );
        }
        if spec.is_some() {
            return crate::error::usage(
                "with --apply-cmd and a seed spec ward cannot build the schema before your migrations — pass \
                 --migrations DIR (SQL files), or prepare a database at that schema and use --against URL",
            );
        }
        return Ok(Baseline::default());
    };
    // A version only when it is literally one on disk (diesel's also with
    // its dashes): `HEAD~1` or `v5` contain digits but name git commits.
    // Everything the runner applies up to it, in the runner's order.
    let at_base = opts.base.as_deref().and_then(|b| {
        set.migrations.iter().position(|m| {
            m.version == b
                || (set.format == migrations::Format::Diesel && m.key == set.format.key(b))
        })
    });
    if let (Some(base), Some(at)) = (&opts.base, at_base) {
        return Ok(Baseline {
            before: set.migrations[..=at].to_vec(),
            at: format!("up to {base}"),
            ..Baseline::default()
        });
    }
    let root = git::repo_root(&set.dir);
    let why_not = |r: &Result<PathBuf, String>| match r {
        Err(e) => format!(" (git: {e})"),
        Ok(_) => String::new(),
    };
    let reference = match (&opts.base, &root) {
        (Some(b), Ok(r)) if git::commit_of(r, b).is_some() => b.clone(),
        (Some(b), _) => {
            return crate::error::usage(format!(
                "--base {b} is neither the version of a migration in {} nor a git ref{} — use a version on disk or a \
                 ref such as origin/main (in CI, fetch it first)",
                set.dir.display(),
                why_not(&root)
            ));
        }
        (None, _) if spec.is_none() => return Ok(Baseline::default()),
        (None, Ok(r)) => match git::default_ref(r) {
            Some(d) => d,
            None => return crate::error::usage(no_base_for_spec()),
        },
        (None, Err(_)) => {
            return crate::error::usage(format!("{}{}", no_base_for_spec(), why_not(&root)));
        }
    };
    let root = root.expect("a git ref was resolved in a repository");
    let gb = git::base(&root, &reference, &set.dir)?;
    let on_ref = match &gb.dir {
        Some(d) if d.is_dir() => {
            migrations::read_dir_or_empty(d, set.format)
                .with_context(|| format!("reading the migrations on {reference}"))?
                .migrations
        }
        _ => Vec::new(),
    };
    let base_only = on_ref
        .iter()
        .filter(|m| !set.migrations.iter().any(|w| w.key == m.key))
        .cloned()
        .collect();
    let branch_only = set
        .migrations
        .iter()
        .filter(|w| !on_ref.iter().any(|m| m.key == w.key))
        .map(|w| w.key.clone())
        .collect();
    let short = &gb.commit[..gb.commit.len().min(12)];
    tracing::info!(
        "baseline: {} migrations on {reference} ({short})",
        on_ref.len()
    );
    // The data at the base is what the base's own spec makes.
    let (mut spec_path, mut merged_spec, mut tmp) = (None, None, None);
    if let Some(p) = spec
        && let Some(text) = git::file_at(&root, &gb.commit, p)?
    {
        let dir = tempfile::Builder::new()
            .prefix("ward-base-spec-")
            .tempdir()?;
        let name = format!(
            "{}@{}",
            p.file_name().unwrap_or_default().to_string_lossy(),
            reference.replace('/', "_")
        );
        let path = dir.path().join(name);
        std::fs::write(&path, &text)?;
        let untouched = git::merge_base(&root, &gb.commit)
            .and_then(|mb| git::file_at(&root, &mb, p).ok().flatten())
            .is_some_and(|at_fork| std::fs::read(p).is_ok_and(|now| now == at_fork));
        if untouched {
            merged_spec = Some(path.clone());
        }
        spec_path = Some(path);
        tmp = Some(dir);
    }
    if let Some(p) = spec
        && spec_path.is_none()
    {
        tracing::warn!(
            "{} is not on {reference}: the baseline is seeded with this working tree's version",
            p.display()
        );
    }
    Ok(Baseline {
        before: on_ref,
        at: format!("on {reference} ({short})"),
        base_only,
        branch_only,
        spec: spec_path.zip(spec).map(|(tmp, p)| {
            let shown = format!("{} (as on {reference})", p.display());
            (tmp, shown)
        }),
        merged_spec,
        _tmp: tmp,
    })
}

pub(super) fn no_base_for_spec() -> String {
    "with a seed spec ward seeds the schema as it is before your pending migrations: pass --base VERSION (the newest \
     migration already deployed) or --base GIT_REF (e.g. origin/main: its migrations are the baseline, the files this \
     branch adds are checked)"
        .to_string()
}

pub(super) fn creates_builtin_table(sql: &str) -> bool {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(&format!(
            r#"(?i)create\s+table\s+(if\s+not\s+exists\s+)?(public\.)?"?({})\b"#,
            crate::seed::model::TABLES
                .iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join("|")
        ))
        .unwrap()
    });
    RE.is_match(sql)
}

pub(super) fn builtin_tables_present(pre: &Fingerprint) -> bool {
    crate::seed::model::TABLES
        .iter()
        .all(|t| pre.table_named("public", t.name).is_some())
}

/// Seeding the migrated database (more patients, appended) must still work.
/// Runs last, on the clone itself.
pub(super) async fn seed_compat(c: &mut Client, seed: u64) -> Result<Vec<Finding>> {
    let opts = crate::seed::load::LoadOptions {
        schema: "public".into(),
        seed,
        patients: 25,
        jobs: 1,
        existing: crate::seed::load::Existing::Append,
    };
    match crate::seed::load::load(c, "the migrated clone".into(), &opts, &crate::progress::NoProgress).await {
        Ok(_) => Ok(Vec::new()),
        Err(e) => Ok(vec![
            // WARN: the built-in model's binary COPY has a fixed shape, so
            // even a harmless widening breaks it; the project's own spec is the FAIL.
            Finding::new(
                Level::Warn,
                Rule::SeedBroken,
                format!("ward's built-in seed no longer applies to the migrated schema: {}", one_line(&e)),
            )
            .count(1)
            .remedy("give new NOT NULL columns a DEFAULT, or seed the application's schema with a spec (ward seed --init-spec)"),
        ]),
    }
}

pub(super) fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

/// The project's seed spec on the migrated schema, as for the next developer:
/// the spec's tables emptied (the rows the migrations themselves put in other
/// tables stay), then seeded from scratch.
pub(super) async fn spec_compat(
    c: &mut Client,
    path: &std::path::Path,
    shown: &std::path::Path,
    seed: Option<u64>,
    jobs: usize,
    history_table: &str,
) -> Result<Vec<Finding>> {
    let spec = crate::seed::custom::spec::SpecFile::load(path)?;
    let mut empty = Vec::new();
    for (name, ts) in &spec.tables {
        if ts.skip || (!history_table.is_empty() && name.ends_with(history_table)) {
            continue;
        }
        let exists: bool = c
            .query_one(
                "SELECT to_regclass($1) IS NOT NULL",
                &[&quote_qualified(name)],
            )
            .await?
            .get(0);
        if exists {
            empty.push(quote_qualified(name));
        }
    }
    if !empty.is_empty() {
        c.batch_execute(&format!("TRUNCATE {} CASCADE", empty.join(", ")))
            .await?;
    }
    let r = crate::seed::custom::seed(
        c,
        "the migrated clone".into(),
        path,
        seed,
        jobs,
        false,
        &crate::progress::NoProgress,
    )
    .await;
    let Err(e) = r else { return Ok(Vec::new()) };
    let file = shown.display().to_string();
    let msg = one_line(&e).replace(&path.display().to_string(), &file);
    // Name the spec entries that broke: the error names its spec line, or the tables.
    let mut entries: Vec<String> = spec
        .tables
        .keys()
        .filter(|t| {
            msg.contains(t.as_str()) || t.split_once('.').is_some_and(|(_, n)| names_word(&msg, n))
        })
        .map(|t| {
            format!(
                "[tables.\"{t}\"] at {file}:{}",
                crate::seed::custom::spec::line_of(&spec.text, t, None)
            )
        })
        .collect();
    entries.truncate(5);
    let line = regex::Regex::new(&format!(r"{}:(\d+):", regex::escape(&file)))
        .unwrap()
        .captures(&msg)
        .and_then(|m| m[1].parse().ok())
        .or_else(|| {
            spec.tables
                .keys()
                .find(|t| msg.contains(t.as_str()))
                .map(|t| crate::seed::custom::spec::line_of(&spec.text, t, None))
        })
        .unwrap_or(1);
    let mut f = Finding::new(
        Level::Fail,
        Rule::SeedBroken,
        format!("the seed spec no longer applies to the migrated schema: {msg}"),
    )
    .count(entries.len().max(1) as i64)
    .remedy(format!(
        "update {file} in the same change as the migration (ward seed --init-spec PATH writes a fresh starter to compare), \
         or give new NOT NULL columns a DEFAULT"
    ));
    f.file = Some(file);
    f.line = Some(line);
    for e in entries {
        f = f.evidence(format!("spec entry {e}"));
    }
    Ok(vec![f])
}

/// `schema.table` (or `table`) as a quoted SQL name.
pub(super) fn quote_qualified(name: &str) -> String {
    match name.split_once('.') {
        Some((s, t)) => format!("{}.{}", quote_ident(s), quote_ident(t)),
        None => quote_ident(name),
    }
}
