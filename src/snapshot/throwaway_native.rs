//! A throwaway Postgres server on an unpacked copy of a native data-directory
//! snapshot, for `check --against snapshot:NAME`. Such a snapshot names no
//! image, so the copy runs on this machine's own server binaries of the
//! snapshot's major version, as a [`Cluster`] in its copy mode (private 0700
//! directory, 127.0.0.1 only, ward's own configuration instead of the
//! copy's: see `pg::cluster`). This module is the snapshot's part of it:
//! which binaries, verifying and unpacking the snapshot, and finding the
//! copy's superuser to give it a fresh password. The source directory and
//! the snapshot are never touched; server and directory go away in
//! [`remove`], and from the cluster's `Drop` on errors, panics and Ctrl-C.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use nix::unistd::User;

use super::manifest::Manifest;
use super::store::Store;
use crate::pg::cluster::{Cluster, fresh_password, installed_servers};
use crate::progress::Progress;

/// Verifies snapshot `m`, unpacks it and starts a server on the copy;
/// returns once a fresh password is set for its superuser.
pub(super) async fn start(
    store: &Store,
    m: &Manifest,
    progress: Arc<dyn Progress>,
) -> Result<Cluster> {
    let (store2, m2) = (store.clone(), m.clone());
    let mut server = tokio::task::spawn_blocking(move || prepare(&store2, &m2, progress))
        .await
        .context("the throwaway server thread failed")??;
    let (client, user) = connect_as_superuser(&server, m).await?;
    let password = fresh_password()?;
    // Over the socket, which ward's pg_hba.conf trusts; LOGIN in case the
    // copy's superuser was made NOLOGIN (it is a throwaway copy).
    let others: Vec<String> = client
        .query(
            "SELECT rolname::text FROM pg_roles WHERE rolcanlogin AND rolname <> $1",
            &[&user],
        )
        .await
        .context("cannot list the throwaway server's roles")?
        .iter()
        .map(|row| row.get(0))
        .collect();
    client
        .batch_execute(&format!(
            "{}; {}",
            super::throwaway::set_password_sql(&user, &password),
            super::throwaway::lock_out_sql(&others)
        ))
        .await
        .context("cannot set a password on the throwaway server")?;
    server.set_login(user, password);
    Ok(server)
}

/// Stops the server (fast shutdown) and deletes the directory.
pub(super) async fn remove(server: Cluster) -> Result<()> {
    tokio::task::spawn_blocking(move || server.remove())
        .await
        .context("the throwaway server thread failed")?
}

/// The blocking part of [`start`]: binaries, verify, unpack, `pg_ctl start`.
/// The returned server cleans up after itself when dropped, also when the
/// caller was interrupted meanwhile.
fn prepare(store: &Store, m: &Manifest, progress: Arc<dyn Progress>) -> Result<Cluster> {
    if m.pg_major < 10 {
        return crate::error::usage(format!(
            "snapshot {:?} holds PostgreSQL {} data; checking against data-directory snapshots \
             needs PostgreSQL 10 or newer — restore it and use --against URL",
            m.name, m.pg_major
        ));
    }
    // Before the (long) verification: no binaries or no user to run them is
    // known at once.
    let mut server = Cluster::for_copy(bindir_for(m)?, m.pg_major)?;
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
    let root = server.dir().to_path_buf();
    let data = server.data_path();
    let space = fs4::available_space(&root).unwrap_or(u64::MAX);
    if space < m.total_bytes + 64 * 1024 * 1024 {
        return crate::error::usage(format!(
            "not enough free space in {} for a copy of snapshot {:?} ({} available, {} needed) — \
             free some space or set TMPDIR to a roomier directory",
            root.parent().unwrap_or(&root).display(),
            m.name,
            crate::units::human_bytes(space),
            crate::units::human_bytes(m.total_bytes)
        ));
    }
    std::fs::create_dir(&data).with_context(|| format!("cannot create {}", data.display()))?;
    super::datadir::unpack(store, m, &data, progress.as_ref())?;
    interrupted()?;
    progress.stage(
        &format!(
            "starting PostgreSQL {} on the copy of {}",
            m.pg_major, m.name
        ),
        0,
    );
    match server.start_copy(&format!("snapshot {:?}", m.name))? {
        Ok(()) => {
            progress.finish();
            Ok(server)
        }
        Err(why) => crate::error::usage(format!(
            "the throwaway server on the copy of snapshot {:?} did not start: {why} — \
             restore the snapshot and use --against URL",
            m.name
        )),
    }
}

fn interrupted() -> Result<()> {
    if crate::error::cancelled() {
        return Err(crate::error::Interrupted.into());
    }
    Ok(())
}

/// The machine's server binaries of the snapshot's major version.
fn bindir_for(m: &Manifest) -> Result<PathBuf> {
    let installed = installed_servers();
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
    server: &Cluster,
    m: &Manifest,
) -> Result<(tokio_postgres::Client, String)> {
    let candidates = role_candidates(m);
    let mut found = None;
    for role in &candidates {
        match server.connect_socket(role, "template1").await? {
            Ok(client) => {
                found = Some((client, role.clone()));
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
    let client = server
        .connect_socket(&superuser, "template1")
        .await?
        .map_err(|e| connect_error(e, &superuser, m))?;
    Ok((client, superuser))
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
