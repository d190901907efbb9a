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

/// The databases ward records and checks (the same filter everywhere).
const DATABASES_SQL: &str = "SELECT datname || '|' || pg_database_size(datname) FROM pg_database \
     WHERE NOT datistemplate AND datallowconn ORDER BY datname";

/// One database's ordinary and partitioned tables with their row estimates.
const TABLES_SQL: &str = "SELECT n.nspname || '.' || c.relname || '|' || c.reltuples::bigint \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p') \
     AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%'";

/// `(name, size)` of each database ([`DATABASES_SQL`]), at most 50.
async fn databases(d: &Docker, container: &str, user: &str) -> Result<Vec<(String, i64)>> {
    let list = psql(d, container, user, "postgres", DATABASES_SQL).await?;
    Ok(list
        .lines()
        .take(50)
        .filter_map(|line| {
            let (name, size) = line.rsplit_once('|')?;
            Some((name.to_string(), size.trim().parse().unwrap_or(0)))
        })
        .collect())
}

/// A database's tables and row estimates ([`TABLES_SQL`]); empty on error.
async fn tables(d: &Docker, container: &str, user: &str, db: &str) -> BTreeMap<String, i64> {
    psql(d, container, user, db, TABLES_SQL)
        .await
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (t, n) = l.rsplit_once('|')?;
            Some((t.to_string(), n.trim().parse().unwrap_or(-1)))
        })
        .collect()
}

/// Database names and sizes, row estimates and a schema fingerprint (best effort).
pub(super) async fn database_facts(
    d: &Docker,
    container: &str,
    user: &str,
) -> Result<DatabaseFacts> {
    let mut facts = DatabaseFacts::default();
    for (name, size_bytes) in databases(d, container, user).await? {
        let tables = tables(d, container, user, &name).await;
        let fingerprint = psql(
            d,
            container,
            user,
            &name,
            crate::snapshot::template::SCHEMA_FINGERPRINT_SQL,
        )
        .await
        .unwrap_or_default();
        let migration_head = migration_head(d, container, user, &name).await;
        facts.databases.push(DatabaseInfo {
            name,
            size_bytes,
            tables,
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

/// Refuses a cold snapshot of a container whose PGDATA goes through a
/// symbolic link inside its volume — the `data -> .` link `postgres:18.0`
/// left at the volume root (see [`crate::snapshot::archive::DATA_LINK`])
/// with PGDATA set to `…/data`: the cluster then lies elsewhere in the
/// volume than PGDATA says, and the copy could never be checked or
/// restored. Links above the volume's mount point do not matter. Asked in
/// `container` (the running target, before anything stops it, or a helper
/// mounting the volume where the target does).
pub(super) async fn refuse_linked_pgdata(
    d: &Docker,
    container: &str,
    t: &VolumeTarget,
) -> Result<()> {
    // Each component of PGDATA below the mount point, in turn.
    const FIND_LINK: &str = r#"set -f
cur="$1"
IFS=/
for c in $2; do
  case "$c" in ''|.) continue;; esac
  cur="$cur/$c"
  if [ -L "$cur" ]; then
    printf '%s\t%s\t%s\n' "$cur" "$(readlink "$cur")" "$(readlink -f "$3")"
    exit 0
  fi
done"#;
    let mount = t.mount.trim_end_matches('/');
    let out = exec_ok(
        d,
        container,
        &["sh", "-c", FIND_LINK, "sh", mount, &t.pgdata_rel, &t.pgdata],
    )
    .await?;
    let Some(line) = out.stdout.lines().next() else {
        return Ok(());
    };
    let mut parts = line.split('\t');
    let (link, target, real) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    crate::error::usage(format!(
        "PGDATA {} goes through the symbolic link {link} -> {target} inside volume {} (the \
         layout postgres:18.0 left) — ward copies the volume as it is and needs PGDATA to name \
         the real directory: set PGDATA={real} for the container, or take an --online snapshot \
         (nothing was stopped or written)",
        t.pgdata, t.volume.name
    ))
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
        // Short: after a restore's start this wait is the app's downtime,
        // and a poll is only an exec.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The target image's Postgres major version and postgres uid/gid, read in
/// one exec (each exec is a few engine round trips; restores pay them
/// before the app's downtime even starts).
pub(in crate::snapshot) async fn image_facts(
    d: &Docker,
    helper: &str,
) -> Result<(Option<u32>, u32, u32)> {
    Ok(image_and_data_facts(d, helper, "").await?.0)
}

/// [`image_facts`], and in the same exec the first line of the file
/// `pg_version` (a data directory's `PG_VERSION`; "" or unreadable: None).
pub(super) async fn image_and_data_facts(
    d: &Docker,
    helper: &str,
    pg_version: &str,
) -> Result<((Option<u32>, u32, u32), Option<String>)> {
    let out = exec_ok(
        d,
        helper,
        &[
            "sh",
            "-c",
            "v=$(postgres -V 2>/dev/null) || v=''; echo \"$v\"; id -u postgres; id -g postgres\n\
             if [ -n \"$1\" ] && [ -f \"$1\" ]; then echo \"data $(head -n 1 \"$1\")\"; fi",
            "sh",
            pg_version,
        ],
    )
    .await?;
    let data = out
        .stdout
        .lines()
        .nth(3)
        .and_then(|l| l.strip_prefix("data "))
        .map(str::to_string);
    Ok((parse_image_facts(&out.stdout)?, data))
}

/// `postgres -V` (perhaps empty), uid and gid, one a line.
fn parse_image_facts(out: &str) -> Result<(Option<u32>, u32, u32)> {
    let mut lines = out.lines();
    let major = lines.next().and_then(crate::pg::parse_major);
    let mut id = |what: &str| -> Result<u32> {
        lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .with_context(|| format!("cannot read the {what} of the image's postgres user"))
    };
    Ok((major, id("uid")?, id("gid")?))
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
        // Names and tables only: the fingerprints and migration heads of
        // `database_facts` cost several execs per database, during downtime.
        let now = databases(d, container, user).await?;
        for want in &facts.databases {
            if !now.iter().any(|(name, _)| *name == want.name) {
                bail!(
                    "the restored server is not the snapshot's cluster: database {} is missing",
                    want.name
                );
            }
            let got = tables(d, container, user, &want.name).await;
            let missing: Vec<&String> = want
                .tables
                .keys()
                .filter(|t| !got.contains_key(*t))
                .take(3)
                .collect();
            if !missing.is_empty() || got.len() != want.tables.len() {
                bail!(
                    "the restored server is not the snapshot's cluster: database {} has {} tables, \
                     the snapshot {} (missing: {missing:?})",
                    want.name,
                    got.len(),
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

#[cfg(test)]
mod tests {
    use super::parse_image_facts;

    #[test]
    fn image_facts_read_version_uid_and_gid_from_one_output() {
        assert_eq!(
            parse_image_facts("postgres (PostgreSQL) 15.8 (Debian 15.8-1.pgdg120+1)\n999\n999\n")
                .unwrap(),
            (Some(15), 999, 999)
        );
        assert_eq!(
            parse_image_facts("postgres (PostgreSQL) 18.0\n999\n998\n").unwrap(),
            (Some(18), 999, 998)
        );
        assert_eq!(parse_image_facts("\n70\n70\n").unwrap(), (None, 70, 70));
        assert!(parse_image_facts("postgres (PostgreSQL) 16.2\n\n").is_err());
    }
}
