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

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use regex::Regex;
use serde::Serialize;
use sha2::{Digest, Sha384};

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

fn name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn display(dir: &Path, p: &Path) -> String {
    let base = dir.file_name().map(PathBuf::from).unwrap_or_default();
    base.join(p.strip_prefix(dir).unwrap_or(p))
        .to_string_lossy()
        .into_owned()
}

fn read(p: &Path) -> Result<String> {
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

fn read_numbered(dir: &Path, entries: &[PathBuf], format: Format) -> Result<Vec<Migration>> {
    let re = Regex::new(r"^(\d+)_(.+?)(\.up|\.down)?\.sql$").unwrap();
    let mut out: Vec<Migration> = Vec::new();
    let mut downs = Vec::new();
    for p in entries.iter().filter(|p| p.is_file()) {
        let n = name(p);
        let Some(c) = re.captures(&n) else { continue };
        // sqlx stores an i64, golang-migrate a uint64: refuse what the runner would.
        let number = c[1]
            .parse::<u64>()
            .ok()
            .filter(|v| format == Format::GolangMigrate || i64::try_from(*v).is_ok())
            .ok_or_else(|| {
                UsageError(format!(
                    "{n}: the version does not fit {}'s 64-bit integer",
                    format.name()
                ))
            })?;
        let version = number.to_string();
        let desc = c[2].replace('_', " ");
        let sql = read(p)?;
        let script = Script {
            file: display(dir, p),
            sql,
            first_line: 1,
        };
        if c.get(3).map(|m| m.as_str()) == Some(".down") {
            downs.push((version.clone(), script));
            continue;
        }
        if format == Format::GolangMigrate && c.get(3).is_none() {
            continue; // golang-migrate needs .up.sql / .down.sql
        }
        let checksum =
            (format == Format::Sqlx).then(|| hex::encode(Sha384::digest(script.sql.as_bytes())));
        let no_tx = format == Format::Sqlx && script.sql.starts_with("-- no-transaction");
        out.push(Migration {
            key: format.key(&version),
            version,
            description: desc,
            up: script,
            down: None,
            no_tx,
            checksum,
        });
    }
    for (v, s) in downs {
        if let Some(m) = out.iter_mut().find(|m| m.version == v) {
            m.down = Some(s);
        }
    }
    Ok(out)
}

fn read_diesel(dir: &Path, entries: &[PathBuf]) -> Result<Vec<Migration>> {
    let mut out = Vec::new();
    for p in entries.iter().filter(|p| p.is_dir()) {
        let up = p.join("up.sql");
        if !up.is_file() {
            continue;
        }
        let n = name(p);
        let (v, desc) = n.split_once('_').unwrap_or((&n, ""));
        let version = v.replace('-', "");
        let down = p.join("down.sql");
        let no_tx = std::fs::read_to_string(p.join("metadata.toml"))
            .map(|t| {
                t.lines().any(|l| {
                    let l: String = l.chars().filter(|c| !c.is_whitespace()).collect();
                    l == "run_in_transaction=false"
                })
            })
            .unwrap_or(false);
        out.push(Migration {
            key: Format::Diesel.key(&version),
            version,
            description: desc.replace('_', " "),
            up: Script {
                file: display(dir, &up),
                sql: read(&up)?,
                first_line: 1,
            },
            down: if down.is_file() {
                Some(Script {
                    file: display(dir, &down),
                    sql: read(&down)?,
                    first_line: 1,
                })
            } else {
                None
            },
            no_tx,
            checksum: None,
        });
    }
    Ok(out)
}

fn read_flyway(dir: &Path, entries: &[PathBuf], format: Format) -> Result<Vec<Migration>> {
    let re = Regex::new(r"^([VU])(\d+(?:[._]\d+)*)__(.+)\.sql$").unwrap();
    let mut out: Vec<Migration> = Vec::new();
    let mut undos = Vec::new();
    for p in entries.iter().filter(|p| p.is_file()) {
        let n = name(p);
        let Some(c) = re.captures(&n) else { continue };
        let version = c[2].replace('_', ".");
        let sql = read(p)?;
        let script = Script {
            file: display(dir, p),
            sql,
            first_line: 1,
        };
        if &c[1] == "U" && format == Format::Flyway {
            undos.push((version, script));
            continue;
        }
        let (description, checksum) = if format == Format::Flyway {
            (
                c[3].replace('_', " "),
                Some(flyway_checksum(&script.sql).to_string()),
            )
        } else {
            let v: i32 = version
                .parse()
                .map_err(|_| UsageError(format!("{n}: refinery versions are whole numbers")))?;
            (
                c[3].to_string(),
                Some(refinery_checksum(&c[3], v, &script.sql).to_string()),
            )
        };
        out.push(Migration {
            key: format.key(&version),
            version,
            description,
            up: script,
            down: None,
            no_tx: false,
            checksum,
        });
    }
    for (v, s) in undos {
        if let Some(m) = out.iter_mut().find(|m| m.version == v) {
            m.down = Some(s);
        }
    }
    Ok(out)
}

fn read_dbmate(dir: &Path, entries: &[PathBuf]) -> Result<Vec<Migration>> {
    let re = Regex::new(r"^(\d+)_(.+)\.sql$").unwrap();
    let mut out = Vec::new();
    for p in entries.iter().filter(|p| p.is_file()) {
        let n = name(p);
        let Some(c) = re.captures(&n) else { continue };
        let text = read(p)?;
        let file = display(dir, p);
        let mut up: Option<(usize, String, bool)> = None;
        let mut down: Option<(usize, String)> = None;
        let mut section = 0; // 0 none, 1 up, 2 down
        for (i, l) in text.lines().enumerate() {
            let t = l.trim_start();
            if let Some(rest) = t.strip_prefix("-- migrate:up") {
                section = 1;
                up = Some((i + 2, String::new(), rest.contains("transaction:false")));
                continue;
            }
            if t.starts_with("-- migrate:down") {
                section = 2;
                down = Some((i + 2, String::new()));
                continue;
            }
            match section {
                1 => {
                    let u = up.as_mut().unwrap();
                    u.1.push_str(l);
                    u.1.push('\n');
                }
                2 => {
                    let d = down.as_mut().unwrap();
                    d.1.push_str(l);
                    d.1.push('\n');
                }
                _ => {}
            }
        }
        let Some((first_line, sql, no_tx)) = up else {
            return Err(UsageError(format!(
                "{file} has no `-- migrate:up` section — dbmate files need one"
            ))
            .into());
        };
        out.push(Migration {
            version: c[1].to_string(),
            key: Format::Dbmate.key(&c[1]),
            description: c[2].replace('_', " "),
            up: Script {
                file: file.clone(),
                sql,
                first_line,
            },
            down: down
                .filter(|(_, s)| !s.trim().is_empty())
                .map(|(first_line, sql)| Script {
                    file: file.clone(),
                    sql,
                    first_line,
                }),
            no_tx,
            checksum: None,
        });
    }
    Ok(out)
}

/// Flyway's checksum: CRC-32 over the lines, without terminators, BOM stripped.
pub fn flyway_checksum(sql: &str) -> i32 {
    let sql = sql.strip_prefix('\u{feff}').unwrap_or(sql);
    let mut crc = crc32fast::Hasher::new();
    for line in sql.lines() {
        crc.update(line.as_bytes());
    }
    crc.finalize() as i32
}

/// refinery's checksum: SipHash-1-3 (zero keys) over name, version, sql.
pub fn refinery_checksum(name: &str, version: i32, sql: &str) -> u64 {
    let mut h = siphasher::sip::SipHasher13::new();
    name.hash(&mut h);
    version.hash(&mut h);
    sql.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (n, t) in files {
            let p = d.path().join(n);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        }
        d
    }

    #[test]
    fn flyway_checksums_are_crc32_of_the_lines() {
        // java.util.zip.CRC32 of "123456789" (the standard check value), as Flyway stores it.
        assert_eq!(flyway_checksum("123456789"), 0xCBF4_3926_u32 as i32);
        // Line endings and a BOM do not change Flyway's checksum.
        assert_eq!(flyway_checksum("a;\r\nb;\r\n"), flyway_checksum("a;\nb;\n"));
        assert_eq!(flyway_checksum("\u{feff}a;\n"), flyway_checksum("a;\n"));
    }

    #[test]
    fn refinery_checksums_match_refinerys_own() {
        for (file, name, version, sql) in [
            ("V1__init", "init", 1, "CREATE TABLE t (id int);\n"),
            (
                "V42__add_email",
                "add_email",
                42,
                "ALTER TABLE t ADD email text;\r\n-- done\n",
            ),
        ] {
            let theirs = refinery_core::Migration::unapplied(file, sql)
                .unwrap()
                .checksum();
            assert_eq!(refinery_checksum(name, version, sql), theirs, "{file}");
        }
    }

    #[test]
    fn detects_each_format() {
        let cases: &[(&[(&str, &str)], Format)] = &[
            (&[("1_init.sql", "select 1;")], Format::Sqlx),
            (
                &[("2024-01-01-000000_init/up.sql", "select 1;")],
                Format::Diesel,
            ),
            (&[("V1__init.sql", "select 1;")], Format::Flyway),
            (
                &[(
                    "20240101_init.sql",
                    "-- migrate:up\nselect 1;\n-- migrate:down\n",
                )],
                Format::Dbmate,
            ),
        ];
        for (files, f) in cases {
            let d = dir(files);
            assert_eq!(detect(d.path()).unwrap(), *f);
        }
        // golang-migrate's files look like sqlx's: a Go module tells them apart.
        let d = dir(&[
            ("go.mod", "module example.org/app\n"),
            ("migrations/000001_init.up.sql", "select 1;"),
            ("migrations/000001_init.down.sql", "select 1;"),
        ]);
        assert_eq!(
            detect(&d.path().join("migrations")).unwrap(),
            Format::GolangMigrate
        );
        std::fs::write(d.path().join("migrations/000002_plain.sql"), "select 1;").unwrap();
        assert_eq!(detect(&d.path().join("migrations")).unwrap(), Format::Sqlx);
        let d = dir(&[("README.md", "hi")]);
        assert!(
            detect(d.path())
                .unwrap_err()
                .to_string()
                .contains("no migrations found")
        );
    }

    #[test]
    fn reads_sqlx_reversible_pairs_and_no_transaction() {
        let d = dir(&[
            (
                "20240101000000_add_users.up.sql",
                "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);",
            ),
            ("20240101000000_add_users.down.sql", "DROP INDEX i;"),
            ("20240102000000_second.sql", "SELECT 1;"),
            ("notes.txt", "ignored"),
        ]);
        let s = read_dir(d.path(), Format::Sqlx).unwrap();
        assert_eq!(s.migrations.len(), 2);
        let m = &s.migrations[0];
        assert_eq!(
            (m.version.as_str(), m.description.as_str(), m.no_tx),
            ("20240101000000", "add users", true)
        );
        assert!(m.down.is_some());
        assert_eq!(m.checksum.as_ref().unwrap().len(), 96);
    }

    /// diesel reads one metadata.toml per migration and honours it for the
    /// revert as for the run (`revert_migration` checks
    /// `run_in_transaction()` too). Without one, a down.sql runs in a
    /// transaction: crates.io's 2024-04-12-144536_remove-downloads-column
    /// has no metadata.toml, so its down.sql's `CREATE INDEX CONCURRENTLY`
    /// fails under diesel (25001) exactly as ward reports it.
    #[test]
    fn diesel_metadata_governs_the_down_as_the_up() {
        let d = dir(&[
            ("2024-01-01-000000_cic/up.sql", "DROP INDEX i;"),
            (
                "2024-01-01-000000_cic/down.sql",
                "CREATE INDEX CONCURRENTLY i ON t (x);\nCREATE INDEX CONCURRENTLY j ON t (y);",
            ),
            (
                "2024-01-01-000000_cic/metadata.toml",
                "run_in_transaction = false\n",
            ),
            ("2024-01-02-000000_plain/up.sql", "DROP INDEX k;"),
            (
                "2024-01-02-000000_plain/down.sql",
                "ALTER TABLE t ADD COLUMN z int;\nCREATE INDEX CONCURRENTLY k ON t (z);",
            ),
        ]);
        let s = read_dir(d.path(), Format::Diesel).unwrap();
        let mode = |m: &Migration| {
            super::super::apply::mode_of(Format::Diesel, m, m.down.as_ref().unwrap())
        };
        use super::super::apply::Mode;
        assert!(s.migrations[0].no_tx);
        // Sent whole, as diesel's batch_execute outside a transaction does.
        assert!(matches!(mode(&s.migrations[0]), Mode::SingleQuery));
        assert!(!s.migrations[1].no_tx);
        assert!(matches!(mode(&s.migrations[1]), Mode::Transaction));
    }

    #[test]
    fn reads_dbmate_sections_with_their_lines() {
        let d = dir(&[(
            "20240101120000_x.sql",
            "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (x);\n\n-- migrate:down\nDROP INDEX i;\n",
        )]);
        let s = read_dir(d.path(), Format::Dbmate).unwrap();
        let m = &s.migrations[0];
        assert!(m.no_tx);
        assert_eq!(m.up.first_line, 2);
        assert_eq!(m.down.as_ref().unwrap().first_line, 5);
    }

    #[test]
    fn flyway_versions_sort_numerically_and_undo_pairs() {
        let d = dir(&[
            ("V1_10__late.sql", "select 1;"),
            ("V1_2__early.sql", "select 1;"),
            ("U1_2__early.sql", "select 2;"),
        ]);
        let s = read_dir(d.path(), Format::Flyway).unwrap();
        let v: Vec<&str> = s.migrations.iter().map(|m| m.version.as_str()).collect();
        assert_eq!(v, ["1.2", "1.10"]);
        assert!(s.migrations[0].down.is_some());
    }

    #[test]
    fn diesel_orders_mixed_length_versions_like_diesel() {
        let d = dir(&[
            ("2019-01-01-000000_c/up.sql", "select 1;"),
            ("2018-01-01-000000-0000_b/up.sql", "select 1;"),
            ("20170101000000_a/up.sql", "select 1;"),
            ("2017-06-01-000000_a2/up.sql", "select 1;"),
        ]);
        let s = read_dir(d.path(), Format::Diesel).unwrap();
        let v: Vec<&str> = s.migrations.iter().map(|m| m.version.as_str()).collect();
        assert_eq!(
            v,
            [
                "20170101000000",
                "20170601000000",
                "201801010000000000",
                "20190101000000"
            ]
        );
        // The same version with and without dashes is one version to diesel.
        let d = dir(&[
            ("2019-01-01-000000_a/up.sql", "select 1;"),
            ("20190101000000_b/up.sql", "select 1;"),
        ]);
        let e = read_dir(d.path(), Format::Diesel).unwrap_err().to_string();
        assert!(e.contains("share version 20190101000000"), "{e}");
    }

    #[test]
    fn dbmate_runs_files_in_name_order() {
        let d = dir(&[
            ("2_b.sql", "-- migrate:up\nselect 1;\n"),
            ("10_a.sql", "-- migrate:up\nselect 1;\n"),
        ]);
        let s = read_dir(d.path(), Format::Dbmate).unwrap();
        let v: Vec<&str> = s.migrations.iter().map(|m| m.version.as_str()).collect();
        assert_eq!(v, ["10", "2"]);
    }

    #[test]
    fn golang_migrate_versions_are_unsigned_64_bit() {
        let d = dir(&[("18446744073709551615_max.up.sql", "select 1;")]);
        assert!(read_dir(d.path(), Format::GolangMigrate).is_ok());
        let e = read_dir(d.path(), Format::Sqlx).unwrap_err().to_string();
        assert!(e.contains("does not fit sqlx"), "{e}");
    }

    #[test]
    fn duplicate_versions_are_refused() {
        let d = dir(&[("1_a.sql", "select 1;"), ("01_b.sql", "select 1;")]);
        let e = read_dir(d.path(), Format::Sqlx).unwrap_err().to_string();
        assert!(e.contains("share version 1"), "{e}");
    }
}
