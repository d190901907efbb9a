//! A throwaway Postgres server on an unpacked copy of a native data-directory
//! snapshot, for `check --against snapshot:NAME`. Such a snapshot names no
//! image, so the copy runs on this machine's own server binaries of the
//! snapshot's major version, in a private 0700 temporary directory (owned by
//! `postgres` when ward is root, because Postgres refuses root), on a free
//! port of 127.0.0.1 only.
//!
//! The copy's own configuration is not trusted: a Debian-style data directory
//! has no postgresql.conf at all, and its postgresql.auto.conf may name
//! libraries, archive commands or paths of another machine. So the server gets
//! ward's config, hba and ident files, and the settings that must win over
//! postgresql.auto.conf go on the command line. The source directory and the
//! snapshot are never touched; server and directory go away in
//! [`Native::remove`], and from `Drop` on errors, panics and Ctrl-C.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::unistd::{Gid, Uid, User};

use super::manifest::Manifest;
use super::store::Store;
use crate::progress::Progress;

/// A running server on a private copy of a data-directory snapshot.
pub struct Native {
    dir: Option<tempfile::TempDir>,
    bindir: PathBuf,
    run_as: Option<(Uid, Gid)>,
    port: u16,
    running: bool,
    /// The copy's bootstrap superuser.
    pub user: String,
    password: String,
}

// By hand, so that the password never reaches a log line.
impl std::fmt::Debug for Native {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Native")
            .field("dir", &self.dir.as_ref().map(|d| d.path().to_path_buf()))
            .field("bindir", &self.bindir)
            .field("port", &self.port)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Native {
    /// Verifies snapshot `m`, unpacks it and starts a server on the copy;
    /// returns once a fresh password is set for its superuser.
    pub async fn start(store: &Store, m: &Manifest, progress: Arc<dyn Progress>) -> Result<Native> {
        let (store2, m2) = (store.clone(), m.clone());
        let mut server = tokio::task::spawn_blocking(move || prepare(&store2, &m2, progress))
            .await
            .context("the throwaway server thread failed")??;
        let root = server.root().to_path_buf();
        let client = connect_as_superuser(&root, server.port, m).await?;
        server.user = client.1;
        let password = crate::pg::cluster::fresh_password()?;
        // Over the socket, which ward's pg_hba.conf trusts; LOGIN in case the
        // copy's superuser was made NOLOGIN (it is a throwaway copy).
        let others: Vec<String> = client
            .0
            .query(
                "SELECT rolname::text FROM pg_roles WHERE rolcanlogin AND rolname <> $1",
                &[&server.user],
            )
            .await
            .context("cannot list the throwaway server's roles")?
            .iter()
            .map(|r| r.get(0))
            .collect();
        client
            .0
            .batch_execute(&format!(
                "{}; {}",
                super::throwaway::set_password_sql(&server.user, &password),
                super::throwaway::lock_out_sql(&others)
            ))
            .await
            .context("cannot set a password on the throwaway server")?;
        server.password = password;
        Ok(server)
    }

    fn root(&self) -> &Path {
        self.dir.as_ref().expect("throwaway directory").path()
    }

    fn data(&self) -> PathBuf {
        self.root().join("data")
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The databases one can connect to (templates excluded), by name.
    pub async fn databases(&self) -> Result<Vec<String>> {
        let client = socket_config(self.root(), self.port, &self.user)
            .connect(tokio_postgres::NoTls)
            .await
            .map(spawn_connection)
            .context("cannot reach the throwaway server over its socket")?;
        let rows = client
            .query(
                "SELECT datname::text FROM pg_database WHERE NOT datistemplate AND datallowconn \
                 ORDER BY 1",
                &[],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// A URL for database `db` over 127.0.0.1.
    pub fn url(&self, db: &str) -> Result<String> {
        super::throwaway::localhost_url(&self.user, &self.password, self.port, db)
    }

    /// Stops the server (fast shutdown) and deletes the directory.
    pub async fn remove(mut self) -> Result<()> {
        tokio::task::spawn_blocking(move || self.shutdown())
            .await
            .context("the throwaway server thread failed")?
    }

    fn command(&self, bin: &str) -> Command {
        server_command(&self.bindir, bin, self.run_as, self.root())
    }

    fn shutdown(&mut self) -> Result<()> {
        let mut result = Ok(());
        if self.running {
            self.running = false;
            let stopped = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-w", "-t", "60", "-m", "fast", "stop"])
                .output();
            if !stopped.as_ref().is_ok_and(|o| o.status.success()) {
                tracing::warn!("fast shutdown of the throwaway server failed; stopping it at once");
                let immediate = self
                    .command("pg_ctl")
                    .arg("-D")
                    .arg(self.data())
                    .args(["-w", "-t", "30", "-m", "immediate", "stop"])
                    .output();
                // No postmaster.pid: nothing runs (e.g. a start that failed).
                if !immediate.is_ok_and(|o| o.status.success())
                    && self.data().join("postmaster.pid").exists()
                {
                    result = Err(anyhow::anyhow!(
                        "cannot stop the throwaway server in {} — stop it with pg_ctl -D {} stop",
                        self.root().display(),
                        self.data().display()
                    ));
                }
            }
        }
        if result.is_ok()
            && let Some(dir) = self.dir.take()
        {
            let path = dir.path().to_path_buf();
            dir.close()
                .with_context(|| format!("cannot delete {}", path.display()))?;
        }
        result
    }
}

impl Drop for Native {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!("{e:#}");
        }
    }
}

/// The blocking part of [`Native::start`]: binaries, verify, unpack, config
/// files, `pg_ctl start`. The returned server cleans up after itself when
/// dropped, also when the caller was interrupted meanwhile.
fn prepare(store: &Store, m: &Manifest, progress: Arc<dyn Progress>) -> Result<Native> {
    if m.pg_major < 10 {
        return crate::error::usage(format!(
            "snapshot {:?} holds PostgreSQL {} data; checking against data-directory snapshots \
             needs PostgreSQL 10 or newer — restore it and use --against URL",
            m.name, m.pg_major
        ));
    }
    let bindir = bindir_for(m)?;
    let run_as = run_as()?;
    let verified = super::verify(store, &m.name, progress.as_ref())?;
    if !verified.ok {
        return crate::error::usage(format!(
            "snapshot {:?} failed verification, so nothing was started: {} — see ward snapshot \
             verify {}",
            m.name,
            verified.problems.join("; "),
            m.name
        ));
    }
    interrupted()?;
    let dir = tempfile::Builder::new()
        .prefix("ward-check-")
        .tempdir()
        .context("cannot create a temporary directory for the throwaway server")?;
    let mut server = Native {
        dir: Some(dir),
        bindir,
        run_as,
        port: 0,
        running: false,
        user: String::new(),
        password: String::new(),
    };
    let root = server.root().to_path_buf();
    let data = server.data();
    if let Some((uid, gid)) = run_as {
        ensure_reachable(&root, uid, gid)?;
    }
    let space = fs4::available_space(&root).unwrap_or(u64::MAX);
    if space < m.total_bytes + 64 * 1024 * 1024 {
        return crate::error::usage(format!(
            "not enough free space in {} for a copy of snapshot {:?} ({} available, {} needed) — \
             free some space or set TMPDIR to a roomier directory",
            root.parent().unwrap_or(&root).display(),
            m.name,
            super::human_bytes(space),
            super::human_bytes(m.total_bytes)
        ));
    }
    std::fs::create_dir(&data).with_context(|| format!("cannot create {}", data.display()))?;
    super::datadir::unpack(store, m, &data, progress.as_ref())?;
    interrupted()?;
    // A copy for checking must come up as a primary of its own: no stale
    // lock file, no standby or archive recovery.
    for f in [
        "postmaster.pid",
        "postmaster.opts",
        "standby.signal",
        "recovery.signal",
        "recovery.conf",
    ] {
        let _ = std::fs::remove_file(data.join(f));
    }
    write_config(&root, &m.name)?;
    if let Some((uid, gid)) = run_as {
        super::datadir::chown_tree(&root, uid.as_raw(), gid.as_raw())?;
    }
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))?;

    progress.stage(
        &format!(
            "starting PostgreSQL {} on the copy of {}",
            m.pg_major, m.name
        ),
        0,
    );
    // Another process may take the port between probing and binding: retry.
    for attempt in 1..=5 {
        interrupted()?;
        server.port = crate::pg::cluster::free_port()?;
        match start_server(&server, m.pg_major) {
            Ok(()) => {
                server.running = true;
                progress.finish();
                return Ok(server);
            }
            Err(Start::PortTaken) if attempt < 5 => continue,
            Err(Start::PortTaken) => bail!("no free port for the throwaway server on 127.0.0.1"),
            Err(Start::Failed(why)) => {
                // pg_ctl -w may give up while the postmaster still runs.
                server.running = server.data().join("postmaster.pid").exists();
                return crate::error::usage(format!(
                    "the throwaway server on the copy of snapshot {:?} did not start: {why} — \
                     restore the snapshot and use --against URL",
                    m.name
                ));
            }
        }
    }
    unreachable!("the loop returns")
}

fn interrupted() -> Result<()> {
    if crate::error::cancelled() {
        return Err(crate::error::Interrupted.into());
    }
    Ok(())
}

/// The machine's server binaries of the snapshot's major version.
fn bindir_for(m: &Manifest) -> Result<PathBuf> {
    let installed = crate::pg::cluster::installed_servers();
    if let Some((_, d)) = installed.iter().find(|(v, _)| *v == m.pg_major) {
        return Ok(d.clone());
    }
    let mut have: Vec<String> = installed.iter().map(|(v, _)| v.to_string()).collect();
    have.dedup();
    let have = if have.is_empty() {
        "none".to_string()
    } else {
        have.join(", ")
    };
    crate::error::usage(format!(
        "snapshot {:?} holds PostgreSQL {major} data, which only starts on PostgreSQL {major} \
         server binaries; this machine has {have} — install them (Debian/Ubuntu: apt-get install \
         postgresql-{major}, from apt.postgresql.org if needed) or point WARD_PG_BINDIR at their \
         bin directory",
        m.name,
        major = m.pg_major
    ))
}

/// The user the server runs as: `postgres` when ward is root (Postgres
/// refuses root), else ward's own user.
fn run_as() -> Result<Option<(Uid, Gid)>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name("postgres").ok().flatten() {
        Some(u) => Ok(Some((u.uid, u.gid))),
        None => crate::error::usage(
            "ward runs as root and Postgres refuses root, but there is no `postgres` user to run \
             the throwaway server as — create one: useradd --system --create-home postgres",
        ),
    }
}

/// The server runs as `uid`, so every directory above its own must let it pass.
fn ensure_reachable(dir: &Path, uid: Uid, gid: Gid) -> Result<()> {
    for a in dir.ancestors().skip(1) {
        let Ok(md) = std::fs::metadata(a) else {
            continue;
        };
        let mode = md.mode();
        let passes = mode & 0o001 != 0
            || (md.uid() == uid.as_raw() && mode & 0o100 != 0)
            || (md.gid() == gid.as_raw() && mode & 0o010 != 0);
        if !passes {
            return crate::error::usage(format!(
                "the postgres user cannot reach {} (mode {:o}), where ward puts the throwaway \
                 server — set TMPDIR to a directory it can reach, e.g. TMPDIR=/var/tmp",
                a.display(),
                mode & 0o7777
            ));
        }
    }
    Ok(())
}

/// ward's own config, hba and ident files beside the copy.
fn write_config(root: &Path, name: &str) -> Result<()> {
    let files = [
        (
            "ward.conf",
            format!(
                "# Written by ward for a throwaway server on a copy of snapshot {name:?}.\n\
                 # The copy's own postgresql.conf is not read; the command line overrides\n\
                 # what its postgresql.auto.conf could set that would get in the way.\n\
                 fsync = off\n\
                 synchronous_commit = off\n\
                 full_page_writes = off\n\
                 lc_messages = 'C'\n\
                 cluster_name = 'ward-check'\n"
            ),
        ),
        (
            "pg_hba.conf",
            "# The socket lives in a 0700 directory: only the server's own user and root reach it.\n\
             local all all trust\n\
             host all all 127.0.0.1/32 scram-sha-256\n"
                .to_string(),
        ),
        ("pg_ident.conf", String::new()),
    ];
    for (file, text) in files {
        let path = root.join(file);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The settings that must win over the copy's postgresql.auto.conf.
fn settings(root: &Path, port: u16, major: u32) -> Vec<(&'static str, String)> {
    let file = |f: &str| root.join(f).display().to_string();
    let mut s = vec![
        ("config_file", file("ward.conf")),
        ("hba_file", file("pg_hba.conf")),
        ("ident_file", file("pg_ident.conf")),
        ("listen_addresses", "127.0.0.1".into()),
        ("port", port.to_string()),
        ("unix_socket_directories", root.display().to_string()),
        ("unix_socket_group", String::new()),
        ("unix_socket_permissions", "0700".into()),
        ("ssl", "off".into()),
        ("bonjour", "off".into()),
        ("password_encryption", "scram-sha-256".into()),
        // Libraries, archiving and paths of the source machine.
        ("shared_preload_libraries", String::new()),
        ("session_preload_libraries", String::new()),
        ("local_preload_libraries", String::new()),
        ("archive_mode", "off".into()),
        ("archive_command", String::new()),
        ("external_pid_file", String::new()),
        ("huge_pages", "off".into()),
        ("shared_buffers", "128MB".into()),
        ("jit", "off".into()),
        ("default_transaction_read_only", "off".into()),
        // Server output goes to ward's log file, and no statement text (the
        // password) into it.
        ("logging_collector", "off".into()),
        ("log_destination", "stderr".into()),
        ("log_statement", "none".into()),
        ("log_min_duration_statement", "-1".into()),
        ("log_min_error_statement", "panic".into()),
    ];
    if major >= 12 {
        s.push(("restore_command", String::new()));
        s.push(("primary_conninfo", String::new()));
    }
    if major >= 15 {
        s.push(("archive_library", String::new()));
    } else {
        s.push(("stats_temp_directory", "pg_stat_tmp".into()));
    }
    s
}

/// Quotes a word for the `/bin/sh -c` through which pg_ctl starts postgres.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

enum Start {
    PortTaken,
    Failed(String),
}

fn start_server(server: &Native, major: u32) -> Result<(), Start> {
    let root = server.root();
    let log = root.join("server.log");
    let _ = std::fs::remove_file(&log);
    let opts: Vec<String> = settings(root, server.port, major)
        .into_iter()
        .map(|(k, v)| format!("-c {}", sh_quote(&format!("{k}={v}"))))
        .collect();
    let out = server
        .command("pg_ctl")
        .arg("-D")
        .arg(server.data())
        .arg("-l")
        .arg(&log)
        .args(["-w", "-t", "60", "-o", &opts.join(" "), "start"])
        .output()
        .map_err(|e| Start::Failed(format!("cannot run pg_ctl: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    if text.contains("Address already in use") {
        return Err(Start::PortTaken);
    }
    let why = text
        .lines()
        .rev()
        .find(|l| l.contains("FATAL") || l.contains("ERROR"))
        .or_else(|| text.lines().rev().find(|l| !l.trim().is_empty()))
        .map(str::to_string)
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .lines()
                .last()
                .unwrap_or("pg_ctl failed")
                .to_string()
        });
    Err(Start::Failed(why.trim().to_string()))
}

fn server_command(bindir: &Path, bin: &str, run_as: Option<(Uid, Gid)>, cwd: &Path) -> Command {
    let mut cmd = Command::new(bindir.join(bin));
    if let Some((uid, gid)) = run_as {
        cmd.uid(uid.as_raw()).gid(gid.as_raw());
    }
    // The environment of ward's caller must not redirect the server.
    for v in [
        "PGDATA",
        "PGPORT",
        "PGHOST",
        "PGUSER",
        "PGDATABASE",
        "PGOPTIONS",
    ] {
        cmd.env_remove(v);
    }
    cmd.current_dir(cwd);
    cmd
}

fn socket_config(root: &Path, port: u16, user: &str) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    c.host_path(root)
        .port(port)
        .user(user)
        .dbname("template1")
        .application_name("ward")
        .connect_timeout(Duration::from_secs(10));
    c
}

type Connected = (
    tokio_postgres::Client,
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
);

fn spawn_connection((client, connection): Connected) -> tokio_postgres::Client {
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("connection closed: {e}");
        }
    });
    client
}

/// The roles to try over the trusted socket, in order: the recorded superuser
/// (if any), the OS user that owned the data directory (recorded at create
/// time; for older manifests, the name of its uid on this machine), `postgres`.
fn role_candidates(m: &Manifest) -> Vec<String> {
    let owner = m.source.datadir_owner.clone().or_else(|| {
        m.uid
            .and_then(|u| User::from_uid(u.into()).ok().flatten())
            .map(|u| u.name)
    });
    let mut v: Vec<String> = Vec::new();
    for r in [
        m.source.postgres_user.clone(),
        owner,
        Some("postgres".into()),
    ]
    .into_iter()
    .flatten()
    {
        if !r.is_empty() && !v.contains(&r) {
            v.push(r);
        }
    }
    v
}

/// Connects over the socket as the first candidate role that exists, then as
/// the bootstrap superuser (oid 10) if that is another role.
async fn connect_as_superuser(
    root: &Path,
    port: u16,
    m: &Manifest,
) -> Result<(tokio_postgres::Client, String)> {
    let candidates = role_candidates(m);
    let mut found = None;
    for role in &candidates {
        match socket_config(root, port, role)
            .connect(tokio_postgres::NoTls)
            .await
        {
            Ok(c) => {
                found = Some((spawn_connection(c), role.clone()));
                break;
            }
            // invalid_authorization_specification: no such role.
            Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "28000") => {
                tracing::debug!("role {role} is not in the copy: {e}");
            }
            Err(e) => return Err(connect_error(e, role, m)),
        }
    }
    let Some((client, role)) = found else {
        return crate::error::usage(format!(
            "snapshot {:?}: the copy has no role {} (the data directory owner's name, then \
             postgres, is how ward finds its superuser) — restore the snapshot and use --against URL",
            m.name,
            candidates.join(" or ")
        ));
    };
    let row = client
        .query_one("SELECT rolname::text, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) FROM pg_roles WHERE oid = 10", &[])
        .await
        .context("cannot read the roles of the throwaway server")?;
    let (superuser, is_super): (String, bool) = (row.get(0), row.get(1));
    if is_super || superuser == role {
        return Ok((client, role));
    }
    drop(client);
    let c = socket_config(root, port, &superuser)
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| connect_error(e, &superuser, m))?;
    Ok((spawn_connection(c), superuser))
}

fn connect_error(e: tokio_postgres::Error, role: &str, m: &Manifest) -> anyhow::Error {
    let why = match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("{} ({detail})", d.message()),
            None => d.message().to_string(),
        },
        None => e.to_string(),
    };
    crate::error::UsageError(format!(
        "cannot connect to the throwaway server on the copy of snapshot {:?} as {role}: {why}",
        m.name
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_quotes_and_spaces() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
    }

    #[test]
    fn settings_follow_the_major_version() {
        let names = |major| {
            settings(Path::new("/tmp/x"), 5555, major)
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>()
        };
        assert!(names(15).contains(&"archive_library"));
        assert!(!names(15).contains(&"stats_temp_directory"));
        assert!(names(14).contains(&"stats_temp_directory"));
        assert!(!names(11).contains(&"restore_command"));
        let s = settings(Path::new("/tmp/x"), 5555, 15);
        assert!(s.contains(&("listen_addresses", "127.0.0.1".into())));
        assert!(s.contains(&("config_file", "/tmp/x/ward.conf".into())));
    }
}
