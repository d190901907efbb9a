//! Reading migration directories in the formats of the common runners, with
//! the checksums those runners store.
//!
//! | format | files | history table |
//! |---|---|---|
//! | sqlx | `<v>_<name>.sql` or `<v>_<name>.up.sql`/`.down.sql`; first line `-- no-transaction` | `_sqlx_migrations` (SHA-384 of the bytes) |
//! | diesel | `<v>_<name>/up.sql`, `down.sql`, optional `metadata.toml` (`run_in_transaction = false`) | `__diesel_schema_migrations` |
//! | golang-migrate | `<v>_<name>.up.sql`/`.down.sql` | `schema_migrations (version, dirty)` |
//! | flyway | `V<v>__<desc>.sql`, `U<v>__<desc>.sql` (undo) | `flyway_schema_history` (CRC32 line by line) |
//! | refinery | `V<v>__<name>.sql` | `refinery_schema_history` (SipHash-1-3 of name, version, sql) |
//! | dbmate | `<v>_<name>.sql` with `-- migrate:up` / `-- migrate:down` | `schema_migrations (version)` |
//!
//! This file holds the types, the detection of a directory's format and the
//! reading of a set (order, duplicate versions); `readers.rs` holds one
//! reader per file layout and the runners' checksums.

mod readers;
#[cfg(test)]
mod tests;

pub use readers::{flyway_checksum, refinery_checksum};
use readers::{read_dbmate, read_diesel, read_flyway, read_numbered};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use regex::Regex;
use serde::Serialize;

use super::version::VersionKey;
use crate::error::UsageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Sqlx,
    Diesel,
    GolangMigrate,
    Flyway,
    Refinery,
    Dbmate,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Sqlx => "sqlx",
            Format::Diesel => "diesel",
            Format::GolangMigrate => "golang-migrate",
            Format::Flyway => "flyway",
            Format::Refinery => "refinery",
            Format::Dbmate => "dbmate",
        }
    }

    /// The runner's history table.
    pub fn history_table(self) -> &'static str {
        match self {
            Format::Sqlx => "_sqlx_migrations",
            Format::Diesel => "__diesel_schema_migrations",
            Format::GolangMigrate | Format::Dbmate => "schema_migrations",
            Format::Flyway => "flyway_schema_history",
            Format::Refinery => "refinery_schema_history",
        }
    }
}

/// The SQL of one direction of a migration.
#[derive(Debug, Clone, Serialize)]
pub struct Script {
    /// Path relative to the migrations directory's parent, for reports.
    pub file: String,
    #[serde(skip)]
    pub sql: String,
    /// Line of `sql`'s first line in `file` (dbmate sections start mid-file).
    pub first_line: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Migration {
    /// The version as the runner stores it.
    pub version: String,
    /// Identity and order for the runner ([`Format::key`]).
    #[serde(skip)]
    pub key: VersionKey,
    pub description: String,
    pub up: Script,
    pub down: Option<Script>,
    /// The runner would not wrap the file in a transaction.
    pub no_tx: bool,
    /// The runner's checksum, in the form its table stores it (hex for bytea).
    pub checksum: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MigrationSet {
    pub format: Format,
    pub dir: PathBuf,
    pub migrations: Vec<Migration>,
}

/// Where to look when `--migrations` is not given.
pub const DEFAULT_DIRS: &[&str] = &[
    "migrations",
    "db/migrations",
    "db/migration",
    "src/main/resources/db/migration",
];

pub fn default_dir(cwd: &Path) -> Result<PathBuf> {
    DEFAULT_DIRS
        .iter()
        .map(|d| cwd.join(d))
        .find(|d| d.is_dir())
        .ok_or_else(|| {
            UsageError(format!(
                "no migrations directory found (looked for {}) — pass --migrations DIR",
                DEFAULT_DIRS.join(", ")
            ))
            .into()
        })
}

/// Guesses the format from the file names and contents.
pub fn detect(dir: &Path) -> Result<Format> {
    let entries = list(dir)?;
    if entries
        .iter()
        .any(|p| p.is_dir() && p.join("up.sql").is_file())
    {
        return Ok(Format::Diesel);
    }
    let sql: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| p.is_file() && name(p).ends_with(".sql"))
        .collect();
    for p in &sql {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.trim_start().starts_with("-- migrate:up"))
        {
            return Ok(Format::Dbmate);
        }
    }
    let flyway = Regex::new(r"^[VU]\d+([._]\d+)*__.+\.sql$").unwrap();
    if sql.iter().any(|p| flyway.is_match(&name(p))) {
        return Ok(Format::Flyway);
    }
    let numbered = Regex::new(r"^\d+_.+\.sql$").unwrap();
    let numbered: Vec<String> = sql
        .iter()
        .map(|p| name(p))
        .filter(|n| numbered.is_match(n))
        .collect();
    if !numbered.is_empty() {
        // sqlx and golang-migrate name files alike; golang-migrate needs
        // `.up.sql`/`.down.sql` and lives in a Go module, sqlx in a crate.
        let paired = numbered
            .iter()
            .all(|n| n.ends_with(".up.sql") || n.ends_with(".down.sql"));
        if paired && project_language(dir) == Some("go") {
            return Ok(Format::GolangMigrate);
        }
        return Ok(Format::Sqlx);
    }
    Err(UsageError(format!(
        "no migrations found in {} — expected sqlx/golang-migrate (<version>_<name>.sql, .up.sql/.down.sql), \
         diesel (<version>_<name>/up.sql), Flyway/refinery (V<n>__<name>.sql) or dbmate (-- migrate:up) files, \
         or name the format with --migrations-format",
        dir.display()
    ))
    .into())
}

/// The language of the nearest project around `dir`: a `go.mod` or a
/// `Cargo.toml` in it or a parent, whichever is closer.
fn project_language(dir: &Path) -> Option<&'static str> {
    let dir = dir.canonicalize().ok()?;
    dir.ancestors().find_map(|d| {
        if d.join("go.mod").is_file() {
            Some("go")
        } else if d.join("Cargo.toml").is_file() {
            Some("rust")
        } else {
            None
        }
    })
}

fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        UsageError(format!(
            "cannot read the migrations directory {} ({e}) — pass an existing directory with --migrations",
            dir.display()
        ))
    })?;
    let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    v.sort();
    Ok(v)
}

pub(super) fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(super) fn display(dir: &Path, p: &Path) -> String {
    let base = dir.file_name().map(PathBuf::from).unwrap_or_default();
    base.join(p.strip_prefix(dir).unwrap_or(p))
        .to_string_lossy()
        .into_owned()
}

pub(super) fn read(p: &Path) -> Result<String> {
    let bytes = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
    String::from_utf8(bytes).map_err(|_| {
        UsageError(format!(
            "{} is not UTF-8 text — save it as UTF-8",
            p.display()
        ))
        .into()
    })
}

/// Reads every migration of `dir` in `format`, sorted by version.
pub fn read_dir(dir: &Path, format: Format) -> Result<MigrationSet> {
    read_set(dir, format, false)
}

/// Like [`read_dir`], but a directory without migrations is an empty set
/// (a base ref from before the project's first migration).
pub fn read_dir_or_empty(dir: &Path, format: Format) -> Result<MigrationSet> {
    read_set(dir, format, true)
}

fn read_set(dir: &Path, format: Format, empty_ok: bool) -> Result<MigrationSet> {
    let entries = list(dir)?;
    let mut migrations = match format {
        Format::Sqlx | Format::GolangMigrate => read_numbered(dir, &entries, format)?,
        Format::Diesel => read_diesel(dir, &entries)?,
        Format::Flyway | Format::Refinery => read_flyway(dir, &entries, format)?,
        Format::Dbmate => read_dbmate(dir, &entries)?,
    };
    sort(format, &mut migrations);
    let mut seen: HashMap<&VersionKey, &Migration> = HashMap::new();
    for m in &migrations {
        if let Some(first) = seen.insert(&m.key, m) {
            return Err(UsageError(format!(
                "two migrations share version {}: {} and {} — renumber one of them",
                first.version, first.up.file, m.up.file
            ))
            .into());
        }
    }
    if migrations.is_empty() && !empty_ok {
        return Err(UsageError(format!(
            "no {} migrations found in {} — check --migrations and --migrations-format",
            format.name(),
            dir.display()
        ))
        .into());
    }
    Ok(MigrationSet {
        format,
        dir: dir.to_path_buf(),
        migrations,
    })
}

/// Puts `migrations` in the order their runner applies them: by version,
/// except dbmate, which runs its files in file-name order.
pub fn sort(format: Format, migrations: &mut [Migration]) {
    if format == Format::Dbmate {
        migrations.sort_by(|a, b| a.up.file.cmp(&b.up.file).then_with(|| a.key.cmp(&b.key)));
    } else {
        migrations.sort_by(|a, b| a.key.cmp(&b.key));
    }
}
