//! Steps of the check pipeline ([`super::run`]) that decide or read one
//! thing each: how deep each table is fingerprinted before and after, the
//! round trip that was asked for but cannot run, a dirty history row, the
//! seed that must still apply to the new schema, the server's version. The
//! pipeline keeps the order and the concurrency; these keep the details out
//! of its way.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use tokio_postgres::Client;

use super::fingerprint::{Depth, Fingerprint};
use super::migrations::{Migration, MigrationSet};
use super::report::{Finding, Level};
use super::rule::Rule;
use super::seeding::{builtin_tables_present, seed_compat, spec_compat};
use super::{Against, Options, Risk, SeedSource, apply, history};

/// How deep each table is read before the run: whole rows when the round
/// trip compares whole fingerprints or a statement can change its values;
/// otherwise only its shape and row count.
pub(super) fn depth_before(
    pre: &Fingerprint,
    round_trip_planned: bool,
    risk: &Risk,
) -> HashMap<u32, Depth> {
    pre.tables
        .keys()
        .map(|oid| {
            let depth = if round_trip_planned || risk.hashed(*oid) {
                Depth::Full
            } else {
                Depth::Columns(Vec::new())
            };
            (*oid, depth)
        })
        .collect()
}

/// How deep each table is read after the run: new tables and tables read
/// whole before are read whole; a table no statement could change is read
/// only for the columns it gained.
pub(super) fn depth_after(
    pre: &Fingerprint,
    post: &Fingerprint,
    round_trip_planned: bool,
    risk: &Risk,
) -> HashMap<u32, Depth> {
    post.tables
        .values()
        .map(|t| {
            let depth = match pre.tables.get(&t.oid) {
                Some(_) if round_trip_planned || risk.hashed(t.oid) => Depth::Full,
                None => Depth::Full,
                Some(before) => Depth::Columns(
                    t.columns
                        .iter()
                        .filter(|c| before.column(c.attnum).is_none())
                        .map(|c| c.attnum)
                        .collect(),
                ),
            };
            (t.oid, depth)
        })
        .collect()
}

/// `--round-trip true` for SQL files of which some have no down: said, not
/// silently skipped. Called when the round trip is not planned.
pub(super) fn round_trip_not_possible(
    opts: &Options,
    set: Option<&MigrationSet>,
    pending: &[Migration],
) -> Option<Finding> {
    if opts.round_trip != Some(true)
        || opts.apply_cmd.is_some()
        || set.is_none()
        || pending.is_empty()
    {
        return None;
    }
    let without: Vec<&str> = pending
        .iter()
        .filter(|m| m.down.is_none())
        .map(|m| m.up.file.as_str())
        .collect();
    let first = without.first()?;
    Some(
        Finding::new(
            Level::Info,
            Rule::DownMigration,
            format!(
                "--round-trip true, but {} pending migration{} no down migration ({}): the window was not round-tripped",
                without.len(),
                if without.len() == 1 { " has" } else { "s have" },
                without.join(", ")
            ),
        )
        .file(first)
        .remedy("add the down migrations, or drop --round-trip true"),
    )
}

/// A no-transaction file that failed half-way leaves a dirty history row
/// (golang-migrate): one finding for it, unless the failure is already
/// reported.
pub(super) async fn dirty_rows(
    client: &Client,
    set: &MigrationSet,
    findings: &[Finding],
) -> Result<Option<Finding>> {
    let Some(applied) = apply::applied(client, set.format).await? else {
        return Ok(None);
    };
    if findings
        .iter()
        .any(|f| f.rule == Rule::DirtyHistory || f.rule == Rule::MigrationError)
    {
        return Ok(None);
    }
    Ok(applied
        .iter()
        .find(|row| !row.success)
        .map(|row| history::dirty_row(set, row)))
}

/// Whether there is a seed to try on the new schema: a spec, or ward's
/// built-in model when its tables are there.
pub(super) fn seed_applies(opts: &Options, pre: &Fingerprint) -> bool {
    match &opts.seed {
        SeedSource::Spec { .. } => true,
        SeedSource::Builtin { .. } => builtin_tables_present(pre),
    }
}

/// Seeds the migrated clone as the project would (its spec — the merged one
/// of `--base` when there is one — or the built-in model, appended): the
/// seed must still apply after the migrations.
pub(super) async fn seed_findings(
    opts: &Options,
    client: &mut Client,
    merged_spec: Option<&Path>,
    history_table: &str,
) -> Result<Vec<Finding>> {
    match &opts.seed {
        SeedSource::Spec { path, seed, jobs } => {
            let file = merged_spec.unwrap_or(path);
            spec_compat(client, file, path, *seed, *jobs, history_table).await
        }
        SeedSource::Builtin { seed, .. } => {
            let seed = match opts.against {
                Against::Seed => *seed,
                Against::Url(_) => crate::seed::spec::Spec::builtin()?.seed,
            };
            seed_compat(client, seed).await
        }
    }
}

/// "PostgreSQL 16.4": every report names the server it ran on.
pub(super) async fn server_version(client: &Client) -> Result<String> {
    let version: String = client.query_one("SHOW server_version", &[]).await?.get(0);
    Ok(format!(
        "PostgreSQL {}",
        version.split_whitespace().next().unwrap_or(&version)
    ))
}
