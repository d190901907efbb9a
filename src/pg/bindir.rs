//! Where this machine's Postgres server binaries are: the one set a fresh
//! throwaway cluster runs on, and every installed set by major version (a
//! copy of a data directory only starts on its own major).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::cluster::ClusterError;

/// Finds a directory holding `initdb`, `pg_ctl` and `postgres`: `WARD_PG_BINDIR`,
/// then `pg_config --bindir`, then `/usr/lib/postgresql/*/bin`, newest first.
pub(crate) fn find_bindir() -> Result<PathBuf, ClusterError> {
    if let Some(dir) = std::env::var_os("WARD_PG_BINDIR").map(PathBuf::from)
        && complete(&dir)
    {
        return Ok(dir);
    }
    if let Some(dir) = pg_config_bindir()
        && complete(&dir)
    {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = debian_bindirs()
        .into_iter()
        .filter_map(|dir| {
            let major = dir.parent()?.file_name()?.to_str()?.parse::<u32>().ok()?;
            Some((major, dir))
        })
        .filter(|(_, dir)| complete(dir))
        .collect();
    versions.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    versions
        .into_iter()
        .next()
        .map(|(_, dir)| dir)
        .ok_or(ClusterError::NoServerBinaries)
}

/// Every complete set of server binaries on the machine (the places
/// [`find_bindir`] looks at) with the major version its `postgres` reports.
pub(crate) fn installed_servers() -> Vec<(u32, PathBuf)> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("WARD_PG_BINDIR")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    dirs.extend(pg_config_bindir());
    dirs.extend(debian_bindirs());
    let mut found: Vec<(u32, PathBuf)> = Vec::new();
    for dir in dirs.into_iter().filter(|dir| complete(dir)) {
        let major = server_version(&dir).as_deref().and_then(super::parse_major);
        if let Some(major) = major
            && !found.iter().any(|(_, seen)| *seen == dir)
        {
            found.push((major, dir));
        }
    }
    found
}

/// `postgres --version` of a bindir, e.g. "postgres (PostgreSQL) 15.18".
pub(crate) fn server_version(bindir: &Path) -> Option<String> {
    let out = Command::new(bindir.join("postgres"))
        .arg("--version")
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether `dir` holds the three binaries a throwaway server needs.
fn complete(dir: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|bin| dir.join(bin).is_file())
}

/// What `pg_config --bindir` names, if it runs.
fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Debian's and Ubuntu's `/usr/lib/postgresql/<major>/bin`, one per installed major.
fn debian_bindirs() -> Vec<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .collect()
}
