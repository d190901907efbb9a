//! One reader per file layout (numbered files for sqlx and golang-migrate,
//! diesel's directories, flyway/refinery's `V…__` files, dbmate's sections),
//! and the checksums flyway and refinery store for each migration.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::Result;
use regex::Regex;
use sha2::{Digest, Sha384};

use super::{Format, Migration, Script, display, name, read};
use crate::error::UsageError;

pub(super) fn read_numbered(
    dir: &Path,
    entries: &[PathBuf],
    format: Format,
) -> Result<Vec<Migration>> {
    let re = Regex::new(r"^(\d+)_(.+?)(\.up|\.down)?\.sql$").unwrap();
    let mut out: Vec<Migration> = Vec::new();
    let mut downs = Vec::new();
    for path in entries.iter().filter(|path| path.is_file()) {
        let file_name = name(path);
        let Some(captures) = re.captures(&file_name) else {
            continue;
        };
        // sqlx stores an i64, golang-migrate a uint64: refuse what the runner would.
        let number = captures[1]
            .parse::<u64>()
            .ok()
            .filter(|v| format == Format::GolangMigrate || i64::try_from(*v).is_ok())
            .ok_or_else(|| {
                UsageError(format!(
                    "{file_name}: the version does not fit {}'s 64-bit integer",
                    format.name()
                ))
            })?;
        let version = number.to_string();
        let desc = captures[2].replace('_', " ");
        let sql = read(path)?;
        let script = Script {
            file: display(dir, path),
            sql,
            first_line: 1,
        };
        if captures.get(3).map(|m| m.as_str()) == Some(".down") {
            downs.push((version.clone(), script));
            continue;
        }
        if format == Format::GolangMigrate && captures.get(3).is_none() {
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

pub(super) fn read_diesel(dir: &Path, entries: &[PathBuf]) -> Result<Vec<Migration>> {
    let mut out = Vec::new();
    for path in entries.iter().filter(|path| path.is_dir()) {
        let up = path.join("up.sql");
        if !up.is_file() {
            continue;
        }
        let file_name = name(path);
        let (v, desc) = file_name.split_once('_').unwrap_or((&file_name, ""));
        let version = v.replace('-', "");
        let down = path.join("down.sql");
        let no_tx = std::fs::read_to_string(path.join("metadata.toml"))
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

pub(super) fn read_flyway(
    dir: &Path,
    entries: &[PathBuf],
    format: Format,
) -> Result<Vec<Migration>> {
    let re = Regex::new(r"^([VU])(\d+(?:[._]\d+)*)__(.+)\.sql$").unwrap();
    let mut out: Vec<Migration> = Vec::new();
    let mut undos = Vec::new();
    for path in entries.iter().filter(|path| path.is_file()) {
        let file_name = name(path);
        let Some(captures) = re.captures(&file_name) else {
            continue;
        };
        let version = captures[2].replace('_', ".");
        let sql = read(path)?;
        let script = Script {
            file: display(dir, path),
            sql,
            first_line: 1,
        };
        if &captures[1] == "U" && format == Format::Flyway {
            undos.push((version, script));
            continue;
        }
        let (description, checksum) = if format == Format::Flyway {
            (
                captures[3].replace('_', " "),
                Some(flyway_checksum(&script.sql).to_string()),
            )
        } else {
            let v: i32 = version.parse().map_err(|_| {
                UsageError(format!("{file_name}: refinery versions are whole numbers"))
            })?;
            (
                captures[3].to_string(),
                Some(refinery_checksum(&captures[3], v, &script.sql).to_string()),
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

pub(super) fn read_dbmate(dir: &Path, entries: &[PathBuf]) -> Result<Vec<Migration>> {
    let re = Regex::new(r"^(\d+)_(.+)\.sql$").unwrap();
    let mut out = Vec::new();
    for path in entries.iter().filter(|path| path.is_file()) {
        let file_name = name(path);
        let Some(captures) = re.captures(&file_name) else {
            continue;
        };
        let text = read(path)?;
        let file = display(dir, path);
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
            version: captures[1].to_string(),
            key: Format::Dbmate.key(&captures[1]),
            description: captures[2].replace('_', " "),
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
