//! A throwaway Postgres server on a restored copy of a volume snapshot, used
//! by `snapshot verify --deep` and by `check --against snapshot:NAME`. The
//! archive is unpacked into a fresh labelled volume by a helper of the
//! snapshot's own image, then that image's Postgres is started on it; the
//! snapshot and the container it came from are never touched. Container and
//! volume go away in [`Throwaway::remove`], and from `Drop` on errors, panics
//! and Ctrl-C, like every other helper.
//!
//! A snapshot of a native data directory has no image: `check` runs it on
//! this machine's own server binaries instead ([`super::throwaway_native`], a
//! `pg::cluster::Cluster` on a copy);
//! [`CheckServer`] and [`for_check`] hide which of the two it is.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};

use super::manifest::Manifest;
use super::store::Store;
use super::volume::{Upload, image_facts, psql, replace_contents, restore_paths, wait_ready};
use crate::docker::{self, Docker, Helper, PostgresServer, TempVolume};
use crate::pg::cluster::Cluster;
use crate::pg::{self, quote_ident};
use crate::progress::Progress;

/// Who must be able to reach the throwaway server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Only `docker exec` inside the container (networking off).
    Internal,
    /// Also this host, over TCP on an ephemeral port of 127.0.0.1 (and no
    /// other address: the copy holds the snapshot's real data).
    Localhost,
}

/// A running Postgres server on a restored copy of a snapshot.
pub(crate) struct Throwaway {
    d: Docker,
    // Declared, and so dropped, before the volume: Docker refuses to remove
    // a volume that a container still uses.
    server: Helper,
    volume: TempVolume,
    /// The snapshot's superuser role (POSTGRES_USER of its source).
    pub user: String,
    /// The sanity query's answer once the server was ready.
    pub sanity: String,
    /// With [`Reach::Localhost`]: the port on 127.0.0.1.
    pub port: Option<u16>,
    /// With [`Reach::Localhost`]: the fresh password of `user` (the snapshot's
    /// own is never stored, so ward sets one on the copy).
    password: Option<String>,
}

// By hand, so that the password never reaches a log line.
impl std::fmt::Debug for Throwaway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throwaway")
            .field("server", &self.server.name)
            .field("volume", &self.volume.name)
            .field("user", &self.user)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Throwaway {
    /// Restores snapshot `m` into a new volume and starts Postgres of the
    /// snapshot's image on it; returns once the server answers queries.
    pub(crate) async fn start(
        d: &Docker,
        store: &Store,
        m: &Manifest,
        reach: Reach,
        progress: Arc<dyn Progress>,
    ) -> Result<Throwaway> {
        let (Some(image), Some(mount), Some(pgdata)) =
            (&m.source.image, &m.source.mount, &m.pgdata)
        else {
            return crate::error::usage(format!(
                "snapshot {:?} is of a native data directory, not a Docker volume: there is no image \
                 to start a throwaway server from",
                m.name
            ));
        };
        let prefix = match reach {
            Reach::Internal => "ward-verify",
            Reach::Localhost => "ward-check",
        };
        // Before anything is created: ward never pulls.
        if !docker::image_exists(d, image).await? {
            return crate::error::usage(format!(
                "snapshot {:?} needs its image {image}, which is not present locally and ward never \
                 pulls images — pull or build {image} first (for tests: .ci/test-image.sh)",
                m.name
            ));
        }
        let volume = TempVolume::create(d, prefix).await?;
        let (hmount, _, _) = restore_paths(m, &m.pgdata_rel);
        let helper = Helper::start(d, image, &volume.name, &hmount, false).await?;
        let restored = match image_facts(d, &helper.name).await {
            Ok((_, uid, gid)) => {
                let upload = Upload {
                    d,
                    helper: &helper.name,
                    store,
                    m,
                    progress: progress.clone(),
                    stage: &format!("restoring snapshot {} into a throwaway server", m.name),
                };
                let r = replace_contents(upload, &m.pgdata_rel, uid, gid).await;
                match r {
                    Ok(()) => {
                        make_standalone(
                            d,
                            &helper.name,
                            &restore_paths(m, &m.pgdata_rel).2,
                            uid,
                            gid,
                        )
                        .await
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        helper.remove(d).await?;
        restored?;

        progress.stage(&format!("starting {image} on the copy of {}", m.name), 0);
        let cmd = server_command(d, image, pgdata).await?;
        let server = Helper::start_postgres(
            d,
            image,
            &volume.name,
            mount,
            PostgresServer {
                name_prefix: prefix.into(),
                env: vec![format!("PGDATA={pgdata}")],
                cmd,
                publish: reach == Reach::Localhost,
            },
        )
        .await?;
        let user = m
            .source
            .postgres_user
            .clone()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "postgres".into());
        let sanity = wait_ready(d, &server.name, &user).await?;
        let mut t = Throwaway {
            d: d.clone(),
            server,
            volume,
            user,
            sanity,
            port: None,
            password: None,
        };
        if reach == Reach::Localhost {
            t.port = Some(published_port(d, &t.server.name).await?);
            let password = crate::pg::cluster::fresh_password()?;
            // Over the local socket, which ward's pg_hba trusts. The SQL
            // holds a SCRAM verifier, never the password: `docker exec psql
            // -c …` is visible in the host's `ps`.
            let others = t
                .psql(
                    "postgres",
                    &format!(
                        "SELECT rolname FROM pg_roles WHERE rolcanlogin AND rolname <> {}",
                        pg::quote_literal(&t.user)
                    ),
                )
                .await?;
            let others: Vec<String> = others.lines().map(str::to_string).collect();
            t.psql(
                "postgres",
                &format!(
                    "{}; {}",
                    set_password_sql(&t.user, &password),
                    lock_out_sql(&others)
                ),
            )
            .await?;
            t.password = Some(password);
        }
        progress.finish();
        Ok(t)
    }

    /// The container's name (for `docker exec`).
    pub(crate) fn container(&self) -> &str {
        &self.server.name
    }

    /// Runs SQL in database `db` through psql over the container's socket.
    pub(crate) async fn psql(&self, db: &str, sql: &str) -> Result<String> {
        psql(&self.d, &self.server.name, &self.user, db, sql).await
    }

    /// The databases one can connect to (templates excluded), by name.
    pub(crate) async fn databases(&self) -> Result<Vec<String>> {
        let out = self
            .psql(
                "postgres",
                "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1",
            )
            .await?;
        Ok(out.lines().map(str::to_string).collect())
    }

    /// A URL for database `db` over 127.0.0.1 ([`Reach::Localhost`] only).
    pub(crate) fn url(&self, db: &str) -> Result<String> {
        let (Some(port), Some(password)) = (self.port, &self.password) else {
            bail!("the throwaway server was not published on 127.0.0.1");
        };
        Ok(pg::tcp_url(pg::UrlParts {
            user: &self.user,
            password: Some(password),
            host: "127.0.0.1",
            port,
            database: db,
        }))
    }

    /// Removes the container, then the volume.
    pub(crate) async fn remove(self) -> Result<()> {
        let Throwaway {
            d, server, volume, ..
        } = self;
        let r = server.remove(&d).await;
        // The volume goes even when the container removal reported an error
        // (its `Drop` would retry otherwise, but only after this returns).
        volume.remove(&d).await?;
        r
    }
}

/// ward's own pg_hba for the copy: the copy's may trust every TCP client
/// (`POSTGRES_HOST_AUTH_METHOD=trust`), and the copy is reachable.
const HBA: &str = "ward_throwaway_hba.conf";

/// Makes the restored copy a standalone server before it first starts: no
/// standby or recovery signal from the source, no stale pid file, and
/// ward's pg_hba (local trust for ward's own `docker exec psql`, SCRAM over TCP).
async fn make_standalone(d: &Docker, helper: &str, pgdata: &str, uid: u32, gid: u32) -> Result<()> {
    let script = r#"cd "$1" && rm -f standby.signal recovery.signal postmaster.pid \
        && printf '%s\n' 'local all all trust' 'host all all all scram-sha-256' > "$2" \
        && chown "$3" "$2" && chmod 600 "$2""#;
    let owner = format!("{uid}:{gid}");
    let out = docker::exec(
        d,
        helper,
        None,
        &["sh", "-c", script, "sh", pgdata, HBA, &owner],
    )
    .await?;
    if !out.ok() {
        bail!("preparing the throwaway copy failed: {}", out.stderr.trim());
    }
    Ok(())
}

/// The command the throwaway server runs: the image's own CMD when it runs
/// `postgres` (as the official images' CMD does), plus settings that keep a
/// copy from acting as its source would — it must not push WAL into the
/// source's archive (`archive_command` may name wal-g or pgBackRest with real
/// credentials), follow a primary, or accept the copy's own pg_hba. It
/// listens on `*`: inside the container the published port arrives on the
/// container's own address, not on loopback; only 127.0.0.1 of the host is
/// published. Any other CMD is left alone (with a warning): its configuration decides.
async fn server_command(d: &Docker, image: &str, pgdata: &str) -> Result<Option<Vec<String>>> {
    let Some((_, cmd)) = docker::image_command(d, image).await? else {
        return crate::error::usage(format!(
            "image {image} is not present locally and ward never pulls images — pull or build it first"
        ));
    };
    let runs_postgres = cmd
        .first()
        .is_some_and(|c| c.rsplit('/').next() == Some("postgres"));
    if !runs_postgres {
        tracing::warn!(
            "image {image} runs {cmd:?}, not `postgres …`: relying on its own configuration \
             (listen_addresses, archiving, pg_hba) for the throwaway copy"
        );
        return Ok(None);
    }
    let mut cmd = cmd;
    for setting in [
        "listen_addresses=*".to_string(),
        format!("hba_file={pgdata}/{HBA}"),
        "archive_mode=off".to_string(),
        "archive_command=".to_string(),
        "restore_command=".to_string(),
        "primary_conninfo=".to_string(),
    ] {
        cmd.extend(["-c".to_string(), setting]);
    }
    Ok(Some(cmd))
}

/// The host port the engine assigned to 5432/tcp of a started container.
async fn published_port(d: &Docker, container: &str) -> Result<u16> {
    for _ in 0..20 {
        if let Some(port) = docker::inspect_container(d, container)
            .await?
            .and_then(|c| c.published_port)
        {
            return Ok(port);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the Docker engine did not publish port 5432 of {container} on 127.0.0.1")
}

/// SQL giving `role` LOGIN and the password `password`, as a SCRAM verifier
/// computed here: the password itself never appears in a command line, a
/// statement log or `pg_stat_activity`.
pub(super) fn set_password_sql(role: &str, password: &str) -> String {
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    format!(
        "ALTER ROLE {} WITH LOGIN PASSWORD {}",
        quote_ident(role),
        pg::quote_literal(&verifier)
    )
}

/// SQL making every role in `roles` NOLOGIN: the copy holds real data, and
/// its own roles' passwords are known to whoever knew them in production.
pub(super) fn lock_out_sql(roles: &[String]) -> String {
    roles
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| format!("ALTER ROLE {} NOLOGIN", quote_ident(r)))
        .chain(std::iter::once("SELECT 1".to_string()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Which database of a snapshot `check` runs against: `wanted` if given (and
/// present), else the one application database (anything but `postgres`),
/// else `postgres`.
pub(crate) fn choose_database(
    snapshot: &str,
    all: &[String],
    wanted: Option<&str>,
) -> Result<String> {
    if let Some(w) = wanted {
        if all.iter().any(|d| d == w) {
            return Ok(w.to_string());
        }
        return crate::error::usage(format!(
            "snapshot {snapshot:?} has no database {w:?} (it has {}) — fix --database",
            all.join(", ")
        ));
    }
    let apps: Vec<&String> = all.iter().filter(|d| *d != "postgres").collect();
    match apps.as_slice() {
        [] if all.iter().any(|d| d == "postgres") => Ok("postgres".into()),
        [] => crate::error::usage(format!(
            "snapshot {snapshot:?} holds no database ward can connect to"
        )),
        [one] => Ok((*one).clone()),
        many => crate::error::usage(format!(
            "snapshot {snapshot:?} holds several databases ({}) — choose one with --database NAME",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The server `check --against snapshot:NAME` runs against, by the kind of
/// snapshot: a container of the snapshot's own image (Docker volumes) or this
/// machine's server binaries of its major version (native data directories).
#[derive(Debug)]
pub(crate) enum CheckServer {
    Docker(Throwaway),
    Native(Cluster),
}

impl CheckServer {
    /// Stops and removes the server and its copy of the data.
    pub(crate) async fn remove(self) -> Result<()> {
        match self {
            CheckServer::Docker(t) => t.remove().await,
            CheckServer::Native(n) => super::throwaway_native::remove(n).await,
        }
    }
}

/// Starts a throwaway server on snapshot `m` reachable from this host and
/// returns it with the URL of the database to check (see [`choose_database`]).
pub(crate) async fn for_check(
    store: &Store,
    m: &Manifest,
    database: Option<&str>,
    progress: Arc<dyn Progress>,
) -> Result<(CheckServer, String)> {
    // A manifest without an image is of a native data directory.
    let (server, all, port) = if m.source.image.is_none() {
        let server = super::throwaway_native::start(store, m, progress).await?;
        let all = server.databases().await?;
        let port = server.port();
        (CheckServer::Native(server), all, port)
    } else {
        let d = docker::connect().await?;
        let server = Throwaway::start(&d, store, m, Reach::Localhost, progress).await?;
        let all = server.databases().await?;
        let port = server.port.unwrap_or(0);
        (CheckServer::Docker(server), all, port)
    };
    let db = choose_database(&m.name, &all, database)?;
    let url = match &server {
        CheckServer::Docker(t) => t.url(&db)?,
        CheckServer::Native(n) => n.url(&db),
    };
    tracing::info!(
        "checking against database {db} of snapshot {} on 127.0.0.1:{port}",
        m.name
    );
    Ok((server, url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_one_application_database_is_chosen() {
        let all = names(&["app", "postgres"]);
        assert_eq!(choose_database("s", &all, None).unwrap(), "app");
        let only = names(&["postgres"]);
        assert_eq!(choose_database("s", &only, None).unwrap(), "postgres");
    }

    #[test]
    fn several_databases_need_a_choice_and_the_choice_must_exist() {
        let all = names(&["a", "b", "postgres"]);
        let e = choose_database("s", &all, None).unwrap_err().to_string();
        assert!(e.contains("--database") && e.contains("a, b"), "{e}");
        assert_eq!(choose_database("s", &all, Some("b")).unwrap(), "b");
        assert_eq!(
            choose_database("s", &all, Some("postgres")).unwrap(),
            "postgres"
        );
        let e = choose_database("s", &all, Some("x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no database \"x\""), "{e}");
    }

    #[test]
    fn the_password_sql_holds_a_verifier_not_the_password() {
        let sql = set_password_sql("app", "0123456789abcdef-secret");
        assert!(!sql.contains("0123456789abcdef"), "{sql}");
        assert!(sql.contains("SCRAM-SHA-256$4096:"), "{sql}");
        let lock = lock_out_sql(&["a\"b".to_string(), "c".to_string()]);
        assert_eq!(
            lock,
            "ALTER ROLE \"a\"\"b\" NOLOGIN; ALTER ROLE \"c\" NOLOGIN; SELECT 1"
        );
    }
}
