//! Throwaway local Postgres clusters, used by `ward demo`, the tests and the
//! benchmarks.
//!
//! A cluster lives in a temporary directory (data, Unix socket, log), listens
//! on 127.0.0.1 at a free port, and is stopped and deleted when dropped — also
//! while a test panics. `initdb` refuses to run as root, and CI runs as root,
//! so when ward is root the server binaries run as the unprivileged
//! `postgres` system user, which owns the directory.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};
use nix::unistd::{Gid, Uid, User, chown};
use thiserror::Error;

/// Why a cluster could not be started.
#[derive(Debug, Error)]
pub enum ClusterError {
    #[error(
        "no Postgres server binaries found (looked at `pg_config --bindir`, WARD_PG_BINDIR and \
         /usr/lib/postgresql/*/bin) — install them, e.g. `apt-get install postgresql` on Debian/Ubuntu \
         or `brew install postgresql@16` on macOS"
    )]
    NoServerBinaries,
    #[error(
        "ward runs as root and initdb refuses root, but there is no `postgres` user to run the \
         server as — create one: `useradd --system --create-home postgres`"
    )]
    NoUnprivilegedUser,
}

/// Finds a directory holding `initdb`, `pg_ctl` and `postgres`: `WARD_PG_BINDIR`,
/// then `pg_config --bindir`, then `/usr/lib/postgresql/*/bin`, newest first.
pub fn find_bindir() -> Result<PathBuf, ClusterError> {
    if let Some(dir) = std::env::var_os("WARD_PG_BINDIR").map(PathBuf::from)
        && complete(&dir)
    {
        return Ok(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && complete(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| complete(d))
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    versions
        .into_iter()
        .next()
        .map(|(_, d)| d)
        .ok_or(ClusterError::NoServerBinaries)
}

fn complete(d: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| d.join(b).is_file())
}

/// Every complete set of server binaries on the machine (the places
/// [`find_bindir`] looks at) with the major version its `postgres` reports:
/// a physical copy of a data directory only starts on its own major.
pub fn installed_servers() -> Vec<(u32, PathBuf)> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("WARD_PG_BINDIR")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    dirs.extend(
        std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin")),
    );
    let mut found: Vec<(u32, PathBuf)> = Vec::new();
    for d in dirs.into_iter().filter(|d| complete(d)) {
        let major = server_version(&d).as_deref().and_then(version_major);
        if let Some(major) = major
            && !found.iter().any(|(_, f)| *f == d)
        {
            found.push((major, d));
        }
    }
    found
}

/// The major of `postgres --version` output: the first word that starts with
/// a digit ("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" → 15,
/// "… 9.6.24" → 9, "… 17beta1" → 17).
fn version_major(v: &str) -> Option<u32> {
    let word = v
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))?;
    let digits: String = word.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// `postgres --version` of a bindir, e.g. "postgres (PostgreSQL) 15.18".
pub fn server_version(bindir: &Path) -> Option<String> {
    let out = Command::new(bindir.join("postgres"))
        .arg("--version")
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    dir: Option<tempfile::TempDir>,
    bindir: PathBuf,
    port: u16,
    password: String,
    run_as: Option<(Uid, Gid)>,
    running: bool,
}

impl Cluster {
    /// initdb + start. Takes a second or two.
    pub fn start() -> Result<Cluster> {
        let bindir = find_bindir()?;
        let run_as = if Uid::effective().is_root() {
            let user = User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or(ClusterError::NoUnprivilegedUser)?;
            Some((user.uid, user.gid))
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("ward-pg-")
            .tempdir()
            .context("cannot create a temporary directory for the cluster")?;
        if let Some((uid, gid)) = run_as {
            chown(dir.path(), Some(uid), Some(gid))
                .context("cannot hand the cluster directory to the postgres user")?;
        }
        let password = fresh_password()?;
        let mut cluster = Cluster {
            dir: Some(dir),
            bindir,
            port: 0,
            password,
            run_as,
            running: false,
        };
        cluster.initdb()?;
        // Another process may take the port between probing and binding: retry.
        let mut last = None;
        for _ in 0..5 {
            cluster.port = free_port()?;
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    cluster.running = true;
                    return Ok(cluster);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap())
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("cluster directory").path()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir().join("data")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// The superuser's password (TCP connections need it; the socket does not).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A URL for `db` as the superuser over TCP.
    pub fn url(&self, db: &str) -> String {
        super::tcp_url(super::UrlParts {
            user: "postgres",
            password: Some(&self.password),
            host: "127.0.0.1",
            port: self.port,
            database: db,
        })
    }

    /// A command for one of the server binaries, as the cluster's owner.
    pub fn command(&self, bin: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(bin));
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        cmd.current_dir(self.dir());
        cmd
    }

    fn run(&self, mut cmd: Command, what: &str) -> Result<Output> {
        let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
        if !out.status.success() {
            bail!(
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr)
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or("")
            );
        }
        Ok(out)
    }

    fn initdb(&self) -> Result<()> {
        let pwfile = self.dir().join("pwfile");
        std::fs::write(&pwfile, &self.password)?;
        if let Some((uid, gid)) = self.run_as {
            chown(&pwfile, Some(uid), Some(gid))?;
        }
        let mut cmd = self.command("initdb");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()));
        self.run(cmd, "initdb")?;
        std::fs::remove_file(pwfile)?;
        Ok(())
    }

    fn pg_ctl_start(&self) -> Result<()> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=50 -c shared_buffers=128MB \
             -c max_wal_size=4GB -c checkpoint_timeout=30min",
            self.port,
            self.dir().display()
        );
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-l")
            .arg(self.dir().join("log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"]);
        self.run(cmd, "pg_ctl start").map(|_| ())
    }

    /// Stops the server (fast shutdown). Dropping the cluster also stops it.
    pub fn stop(&mut self) -> Result<()> {
        if self.running {
            self.running = false;
            let mut cmd = self.command("pg_ctl");
            cmd.arg("-D")
                .arg(self.data_dir())
                .args(["-w", "-t", "60", "-m", "fast", "stop"]);
            self.run(cmd, "pg_ctl stop")?;
        }
        Ok(())
    }

    /// The data directory (PGDATA) of the cluster.
    pub fn data_path(&self) -> PathBuf {
        self.data_dir()
    }

    /// Starts a cluster that was stopped with [`Cluster::stop`] again, on the same port.
    pub fn start_again(&mut self) -> Result<()> {
        if !self.running {
            self.pg_ctl_start()?;
            self.running = true;
        }
        Ok(())
    }

    /// Leaves the cluster running and its directory in place; returns the
    /// command that stops it and removes the directory.
    pub fn keep(mut self) -> String {
        self.running = false;
        let dir = self.dir.take().expect("cluster directory").keep();
        let as_user = if self.run_as.is_some() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        format!(
            "{as_user}{} -D {} stop && rm -rf {}",
            self.bindir.join("pg_ctl").display(),
            dir.join("data").display(),
            dir.display()
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            self.running = false;
            let mut cmd = self.command("pg_ctl");
            cmd.arg("-D")
                .arg(self.data_dir())
                .args(["-w", "-t", "30", "-m", "immediate", "stop"]);
            let _ = cmd.output();
        }
    }
}

/// A superuser password for a throwaway cluster: 16 bytes from the operating
/// system's random source as hex. Never a seeded generator — those are
/// predictable by design, and another local user could log in.
pub fn fresh_password() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|err| {
        anyhow::anyhow!("cannot read the system's random source for a password: {err}")
    })?;
    Ok(format!("ward-{}", hex::encode(bytes)))
}

/// A TCP port of 127.0.0.1 that was free a moment ago (callers retry when
/// another process takes it first).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot find a free TCP port")?;
    Ok(l.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_come_fresh_from_the_os() {
        let (first, second) = (fresh_password().unwrap(), fresh_password().unwrap());
        assert_ne!(first, second);
        let hex = first.strip_prefix("ward-").unwrap();
        assert_eq!(hex.len(), 32);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn majors_of_server_versions() {
        assert_eq!(version_major("postgres (PostgreSQL) 15.18"), Some(15));
        assert_eq!(
            version_major("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(version_major("postgres (PostgreSQL) 9.6.24"), Some(9));
        assert_eq!(version_major("postgres (PostgreSQL) 17beta1"), Some(17));
        assert_eq!(version_major(""), None);
    }
}
