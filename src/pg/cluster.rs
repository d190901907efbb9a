//! Throwaway local Postgres servers on this machine's own server binaries:
//! the one type ward starts them with. `ward demo`, `ward check` (a scratch
//! cluster), the tests and the benchmarks start a fresh one ([`Cluster::start`]);
//! `check --against snapshot:NAME` starts one on an unpacked copy of a
//! data-directory snapshot ([`Cluster::for_copy`], then [`Cluster::start_copy`]).
//!
//! A cluster lives in a private temporary directory (data, Unix socket, log),
//! listens on 127.0.0.1 only, at a free port, and is stopped and deleted when
//! dropped — also while a test panics or after Ctrl-C. `initdb` and `postgres`
//! refuse to run as root, and CI runs as root, so when ward is root the server
//! binaries run as the unprivileged `postgres` system user, which owns the
//! directory.

mod owner;
mod settings;
mod startup;

use startup::{Refusal, last_line, refusal};
pub(crate) use startup::{free_port, fresh_password};

pub(crate) use owner::chown_tree;
use owner::{ensure_reachable, run_as};

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};
use nix::unistd::{Gid, Uid, chown};
use thiserror::Error;

pub(crate) use super::bindir::installed_servers;
pub(crate) use super::bindir::{find_bindir, server_version};

/// Why a cluster could not be started.
#[derive(Debug, Error)]
pub(crate) enum ClusterError {
    #[error(
        "no Postgres server binaries found (looked at `pg_config --bindir`, WARD_PG_BINDIR and \
         /usr/lib/postgresql/*/bin) — install them, e.g. `apt-get install postgresql` on Debian/Ubuntu \
         or `brew install postgresql@16` on macOS"
    )]
    NoServerBinaries,
    #[error(
        "ward runs as root and Postgres refuses root, but there is no `postgres` user to run the \
         server as — create one: `useradd --system --create-home postgres`"
    )]
    NoUnprivilegedUser,
}

/// What the server runs on, which decides how it is configured.
#[derive(Debug, Clone, Copy)]
enum Data {
    /// A fresh `initdb`: its own postgresql.conf, tuned for speed.
    Fresh,
    /// A copy of a data directory of PostgreSQL `major`: its own
    /// configuration is not trusted (see [`settings`]).
    Copy { major: u32 },
}

/// A throwaway server and its directory.
pub struct Cluster {
    dir: Option<tempfile::TempDir>,
    bindir: PathBuf,
    data: Data,
    port: u16,
    /// The superuser ward logs in as.
    user: String,
    password: String,
    run_as: Option<(Uid, Gid)>,
    running: bool,
}

// By hand, so that the password never reaches a log line.
impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field(
                "dir",
                &self.dir.as_ref().map(|dir| dir.path().to_path_buf()),
            )
            .field("bindir", &self.bindir)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// A fresh cluster: initdb + start. Takes a second or two.
    pub fn start() -> Result<Cluster> {
        let mut cluster = Cluster::new(find_bindir()?, Data::Fresh, "ward-pg-")?;
        cluster.password = fresh_password()?;
        cluster.initdb()?;
        match cluster.launch()? {
            Ok(()) => Ok(cluster),
            Err(why) => bail!("pg_ctl start failed: {why}"),
        }
    }

    /// A stopped server for a copy of a PostgreSQL `major` data directory,
    /// to run on the binaries in `bindir`: the caller fills the empty
    /// [`Cluster::data_path`], then calls [`Cluster::start_copy`].
    pub(crate) fn for_copy(bindir: PathBuf, major: u32) -> Result<Cluster> {
        Cluster::new(bindir, Data::Copy { major }, "ward-check-")
    }

    /// Starts the server on the copy in [`Cluster::data_path`], a copy of
    /// `label` (for ward's config file): stale lock and recovery files go,
    /// ward's config files come, the directory is handed to the server's
    /// user. The outer error: ward could not try (no free port, Ctrl-C, a
    /// file); the inner one: the server refused to start, with its reason.
    pub(crate) fn start_copy(&mut self, label: &str) -> Result<Result<(), String>> {
        // A copy must come up as a primary of its own: no stale lock file, no
        // standby or archive recovery.
        for stale in [
            "postmaster.pid",
            "postmaster.opts",
            "standby.signal",
            "recovery.signal",
            "recovery.conf",
        ] {
            let _ = std::fs::remove_file(self.data_path().join(stale));
        }
        settings::write_copy_files(self.dir(), label)?;
        if let Some((uid, gid)) = self.run_as {
            chown_tree(self.dir(), uid.as_raw(), gid.as_raw())?;
        }
        std::fs::set_permissions(self.data_path(), std::fs::Permissions::from_mode(0o700))?;
        self.launch()
    }

    fn new(bindir: PathBuf, data: Data, prefix: &str) -> Result<Cluster> {
        let run_as = run_as()?;
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .context("cannot create a temporary directory for a throwaway Postgres server")?;
        if let Some((uid, gid)) = run_as {
            ensure_reachable(dir.path(), uid, gid)?;
            chown(dir.path(), Some(uid), Some(gid))
                .context("cannot hand the server's directory to the postgres user")?;
        }
        Ok(Cluster {
            dir: Some(dir),
            bindir,
            data,
            port: 0,
            user: "postgres".into(),
            password: String::new(),
            run_as,
            running: false,
        })
    }

    /// The cluster's directory: `data`, the socket, `server.log`.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("cluster directory").path()
    }

    /// The data directory (PGDATA) of the cluster.
    pub fn data_path(&self) -> PathBuf {
        self.dir().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir().join("server.log")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// The superuser ward logs in as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The superuser's password (TCP connections need it; the socket does not).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Which superuser ward logs in as over TCP, once it set `password` for
    /// it (on a copy, the roles are the copy's own).
    pub(crate) fn set_login(&mut self, user: String, password: String) {
        self.user = user;
        self.password = password;
    }

    /// A URL for `db` as the superuser over TCP.
    pub fn url(&self, db: &str) -> String {
        super::tcp_url(super::UrlParts {
            user: &self.user,
            password: Some(&self.password),
            host: "127.0.0.1",
            port: self.port,
            database: db,
        })
    }

    /// Connects to `db` as `role` over the Unix socket, which only the
    /// server's own user and root can reach (and which the copy's hba file
    /// trusts). The outer error: the server did not answer in time.
    pub(crate) async fn connect_socket(
        &self,
        role: &str,
        db: &str,
    ) -> Result<Result<tokio_postgres::Client, tokio_postgres::Error>> {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(self.dir())
            .port(self.port)
            .user(role)
            .dbname(db)
            .application_name("ward")
            .connect_timeout(super::connect_timeout());
        let target = format!("the throwaway server's socket in {}", self.dir().display());
        Ok(super::answered(&config, &target)
            .await?
            .map(|(client, connection)| {
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!("connection closed: {e}");
                    }
                });
                client
            }))
    }

    /// The databases one can connect to (templates excluded), by name.
    pub(crate) async fn databases(&self) -> Result<Vec<String>> {
        let client = self
            .connect_socket(&self.user, "template1")
            .await?
            .context("cannot reach the throwaway server over its socket")?;
        let rows = client
            .query(
                "SELECT datname::text FROM pg_database WHERE NOT datistemplate AND datallowconn \
                 ORDER BY 1",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// A command for one of the server binaries, as the cluster's owner, in
    /// its directory. The environment of ward's caller must not redirect it.
    pub fn command(&self, bin: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(bin));
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        for variable in [
            "PGDATA",
            "PGPORT",
            "PGHOST",
            "PGUSER",
            "PGDATABASE",
            "PGOPTIONS",
        ] {
            cmd.env_remove(variable);
        }
        cmd.current_dir(self.dir());
        cmd
    }

    fn run(&self, mut cmd: Command, what: &str) -> Result<Output> {
        let out = cmd.output().with_context(|| format!("cannot run {what}"))?;
        if !out.status.success() {
            bail!("{what} failed: {}", last_line(&out.stderr));
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
            .arg(self.data_path())
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()));
        self.run(cmd, "initdb")?;
        std::fs::remove_file(pwfile)?;
        Ok(())
    }

    /// Starts the server on a free port, trying another when a process took
    /// the port between probing and binding. Outer and inner error as in
    /// [`Cluster::start_copy`].
    fn launch(&mut self) -> Result<Result<(), String>> {
        const ATTEMPTS: u32 = 5;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if crate::error::cancelled() {
                return Err(crate::error::Interrupted.into());
            }
            self.port = free_port()?;
            match self.pg_ctl_start() {
                Ok(()) => {
                    self.running = true;
                    return Ok(Ok(()));
                }
                Err(Refusal::PortTaken) if attempt < ATTEMPTS => continue,
                Err(Refusal::PortTaken) => {
                    bail!("no free port for a throwaway Postgres server on 127.0.0.1")
                }
                Err(Refusal::Failed(why)) => {
                    // pg_ctl -w may give up while the postmaster still runs.
                    self.running = self.data_path().join("postmaster.pid").exists();
                    return Ok(Err(why));
                }
            }
        }
    }

    /// One `pg_ctl start` on the current port.
    fn pg_ctl_start(&self) -> Result<(), Refusal> {
        let log = self.log_path();
        // The log grows over restarts: only what this start wrote counts.
        let seen = std::fs::metadata(&log).map_or(0, |md| md.len());
        let mut settings = settings::common(self.dir(), self.port);
        settings.extend(match self.data {
            Data::Fresh => settings::fresh(),
            Data::Copy { major } => settings::copy(self.dir(), major),
        });
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_path())
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &settings::command_line(&settings)])
            .arg("start")
            .output()
            .map_err(|e| Refusal::Failed(format!("cannot run pg_ctl: {e}")))?;
        if out.status.success() {
            return Ok(());
        }
        let written = std::fs::read(&log).unwrap_or_default();
        let text = String::from_utf8_lossy(written.get(seen as usize..).unwrap_or_default());
        Err(refusal(&text, &out.stderr))
    }

    fn pg_ctl_stop(&self, mode: &str, seconds: u32) -> Command {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(self.data_path()).args([
            "-w",
            "-t",
            &seconds.to_string(),
            "-m",
            mode,
            "stop",
        ]);
        cmd
    }

    /// Stops the server (fast shutdown). Dropping the cluster also stops it.
    pub fn stop(&mut self) -> Result<()> {
        if self.running {
            self.running = false;
            self.run(self.pg_ctl_stop("fast", 60), "pg_ctl stop")?;
        }
        Ok(())
    }

    /// Starts a cluster that was stopped with [`Cluster::stop`] again, on the same port.
    pub fn start_again(&mut self) -> Result<()> {
        if !self.running {
            match self.pg_ctl_start() {
                Ok(()) => self.running = true,
                Err(Refusal::PortTaken) => bail!(
                    "pg_ctl start failed: another process took port {} meanwhile",
                    self.port
                ),
                Err(Refusal::Failed(why)) => bail!("pg_ctl start failed: {why}"),
            }
        }
        Ok(())
    }

    /// Stops the server (fast shutdown, or at once if that fails) and
    /// deletes its directory; an error says how to stop it by hand.
    pub fn remove(mut self) -> Result<()> {
        if self.running {
            self.running = false;
            let fast = self.pg_ctl_stop("fast", 60).output();
            if !fast.is_ok_and(|out| out.status.success()) {
                tracing::warn!("fast shutdown of the throwaway server failed; stopping it at once");
                let immediate = self.pg_ctl_stop("immediate", 30).output();
                // No postmaster.pid: nothing runs (e.g. a start that failed).
                if !immediate.is_ok_and(|out| out.status.success())
                    && self.data_path().join("postmaster.pid").exists()
                {
                    let kept = self.dir.take().map(tempfile::TempDir::keep);
                    bail!(
                        "cannot stop the throwaway server in {} — stop it with pg_ctl -D {} stop",
                        kept.as_deref().unwrap_or(Path::new("?")).display(),
                        kept.as_deref()
                            .unwrap_or(Path::new("?"))
                            .join("data")
                            .display()
                    );
                }
            }
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            dir.close()
                .with_context(|| format!("cannot delete {}", path.display()))?;
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
        if self.running && self.dir.is_some() {
            self.running = false;
            let _ = self.pg_ctl_stop("immediate", 30).output();
        }
    }
}
