//! Talking to Postgres inside a container through `docker exec`: psql,
//! readiness, the image's facts and the database's. Snapshots, restores and
//! the throwaway servers of `verify --deep` and `check --against` all need it.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::docker::{self, ContainerFacts, Docker, ExecOutput};
use crate::snapshot::manifest::{DatabaseFacts, DatabaseInfo};
use crate::target::VolumeTarget;

pub(super) fn postgres_user(t: &VolumeTarget) -> String {
    t.container
        .as_ref()
        .map_or_else(|| "postgres".into(), container_user)
}

/// The superuser role the official image was initialised with.
pub(super) fn container_user(c: &ContainerFacts) -> String {
    c.env
        .get("POSTGRES_USER")
        .cloned()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres".into())
}

pub(in crate::snapshot) async fn psql(
    d: &Docker,
    container: &str,
    user: &str,
    db: &str,
    sql: &str,
) -> Result<String> {
    let out = docker::exec(
        d,
        container,
        Some("postgres"),
        &[
            "psql",
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            user,
            "-d",
            db,
            "-c",
            sql,
        ],
    )
    .await?;
    if !out.ok() {
        bail!("psql in {container} failed: {}", out.stderr.trim());
    }
    Ok(out.stdout)
}

/// Database names and sizes, row estimates and a schema fingerprint (best effort).
pub(super) async fn database_facts(
    d: &Docker,
    container: &str,
    user: &str,
) -> Result<DatabaseFacts> {
    let list = psql(
        d,
        container,
        user,
        "postgres",
        "SELECT datname || '|' || pg_database_size(datname) FROM pg_database \
         WHERE NOT datistemplate AND datallowconn ORDER BY datname",
    )
    .await?;
    let mut facts = DatabaseFacts::default();
    for line in list.lines().take(50) {
        let Some((name, size)) = line.rsplit_once('|') else {
            continue;
        };
        let tables = psql(
            d,
            container,
            user,
            name,
            "SELECT n.nspname || '.' || c.relname || '|' || c.reltuples::bigint FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p') \
             AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
        )
        .await
        .unwrap_or_default();
        let fingerprint = psql(
            d,
            container,
            user,
            name,
            crate::snapshot::template::SCHEMA_FINGERPRINT_SQL,
        )
        .await
        .unwrap_or_default();
        let migration_head = migration_head(d, container, user, name).await;
        facts.databases.push(DatabaseInfo {
            name: name.to_string(),
            size_bytes: size.trim().parse().unwrap_or(0),
            tables: tables
                .lines()
                .filter_map(|l| {
                    let (t, n) = l.rsplit_once('|')?;
                    Some((t.to_string(), n.trim().parse().unwrap_or(-1)))
                })
                .collect::<BTreeMap<_, _>>(),
            schema_fingerprint: fingerprint.trim().to_string(),
            migration_head,
        });
    }
    Ok(facts)
}

/// The newest applied migration of `db`, from the first known history
/// table found (best effort: None on any error).
async fn migration_head(
    d: &Docker,
    container: &str,
    user: &str,
    db: &str,
) -> Option<crate::snapshot::migration_head::MigrationHead> {
    use crate::snapshot::migration_head::{FIND_TABLES_SQL, head_query, parse_head};
    let found = psql(d, container, user, db, FIND_TABLES_SQL).await.ok()?;
    for line in found.lines() {
        if let Some((tool, sql)) = head_query(line)
            && let Ok(out) = psql(d, container, user, db, sql).await
            && let Some(h) = parse_head(tool, &out)
        {
            return Some(h);
        }
    }
    None
}

pub(super) async fn exec_ok(d: &Docker, c: &str, cmd: &[&str]) -> Result<ExecOutput> {
    let out = docker::exec(d, c, None, cmd).await?;
    if !out.ok() {
        bail!(
            "`{}` in helper container failed (exit {}): {}",
            cmd.join(" "),
            out.code,
            out.stderr.trim()
        );
    }
    Ok(out)
}

/// Waits (bounded) until Postgres in a running container answers. A stop
/// signal that arrives while the entrypoint shell is still PID 1 is lost and
/// Docker kills Postgres after the timeout (docker-library/postgres#1207), so
/// ward never stops a container that is still starting.
pub(super) async fn settle(d: &Docker, container: &str, user: &str) {
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        wait_ready(d, container, user),
    )
    .await;
}

/// Waits until Postgres in the container accepts connections, then runs a
/// sanity query. Returns the query's answer.
pub(in crate::snapshot) async fn wait_ready(
    d: &Docker,
    container: &str,
    user: &str,
) -> Result<String> {
    let deadline = Instant::now() + std::time::Duration::from_secs(90);
    loop {
        if crate::error::cancelled() {
            return Err(crate::error::Interrupted.into());
        }
        if !docker::is_running(d, container).await? {
            bail!(
                "container {container} stopped while starting on the restored data (see `docker logs {container}`)"
            );
        }
        let r = docker::exec(
            d,
            container,
            Some("postgres"),
            &["pg_isready", "-q", "-U", user],
        )
        .await;
        if matches!(&r, Ok(o) if o.ok()) {
            // The entrypoint may still be in its init phase on a fresh volume;
            // a real query answers only from the final server.
            if let Ok(out) = psql(
                d,
                container,
                user,
                "postgres",
                "SELECT count(*) || ' databases, ' || (SELECT count(*) FROM pg_class) || ' relations' FROM pg_database",
            )
            .await
            {
                return Ok(out.trim().to_string());
            }
        }
        if Instant::now() > deadline {
            bail!("Postgres in {container} did not become ready within 90 s on the restored data");
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// The target image's Postgres major version and postgres uid/gid.
pub(in crate::snapshot) async fn image_facts(
    d: &Docker,
    helper: &str,
) -> Result<(Option<u32>, u32, u32)> {
    let v = docker::exec(d, helper, None, &["postgres", "-V"]).await?;
    let major = v
        .stdout
        .split_whitespace()
        .last()
        .and_then(|s| s.split('.').next())
        .and_then(|s| s.parse().ok());
    let uid = exec_ok(d, helper, &["id", "-u", "postgres"]).await?;
    let gid = exec_ok(d, helper, &["id", "-g", "postgres"]).await?;
    let parse = |o: &ExecOutput, what: &str| -> Result<u32> {
        o.stdout
            .trim()
            .parse()
            .with_context(|| format!("cannot read the {what} of the image's postgres user"))
    };
    Ok((major, parse(&uid, "uid")?, parse(&gid, "gid")?))
}

/// Proves the server in `container` runs the snapshot's cluster, not merely
/// *a* cluster: the system identifier, the databases and each database's
/// tables must be those the manifest recorded. (An edited manifest could
/// otherwise unpack the data beside PGDATA, let the image initialise an empty
/// cluster, and pass a "does Postgres answer" check.) Returns the sanity line.
pub(in crate::snapshot) async fn prove_identity(
    d: &Docker,
    container: &str,
    user: &str,
    m: &crate::snapshot::manifest::Manifest,
    answered: &str,
) -> Result<String> {
    let facts = m.database.as_ref().filter(|f| !f.databases.is_empty());
    if m.system_identifier.is_none() && facts.is_none() {
        return Ok(format!(
            "{answered} (the manifest, from an older ward, records no system identifier or \
             databases: only checked that Postgres answers)"
        ));
    }
    if let Some(want) = &m.system_identifier {
        let got = psql(
            d,
            container,
            user,
            "postgres",
            "SELECT system_identifier FROM pg_control_system()",
        )
        .await?;
        if got.trim() != want.trim() {
            bail!(
                "the restored server is not the snapshot's cluster: system identifier {} instead \
                 of {want}",
                got.trim()
            );
        }
    }
    let mut tables_checked = 0;
    if let Some(facts) = facts {
        let now = database_facts(d, container, user).await?;
        for want in &facts.databases {
            let Some(got) = now.databases.iter().find(|g| g.name == want.name) else {
                bail!(
                    "the restored server is not the snapshot's cluster: database {} is missing",
                    want.name
                );
            };
            let missing: Vec<&String> = want
                .tables
                .keys()
                .filter(|t| !got.tables.contains_key(*t))
                .take(3)
                .collect();
            if !missing.is_empty() || got.tables.len() != want.tables.len() {
                bail!(
                    "the restored server is not the snapshot's cluster: database {} has {} tables, \
                     the snapshot {} (missing: {missing:?})",
                    want.name,
                    got.tables.len(),
                    want.tables.len()
                );
            }
            tables_checked += want.tables.len();
        }
    }
    Ok(format!(
        "{answered}; system identifier{} and {tables_checked} tables match the snapshot",
        if m.system_identifier.is_some() {
            ""
        } else {
            " (not recorded)"
        }
    ))
}
