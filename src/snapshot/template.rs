//! `--fast` snapshots: a copy of one database as a hidden template database in
//! the same cluster (`CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY`), and a
//! restore that copies it back beside the original and swaps the two by
//! renaming — so a failure at any point leaves the database as it was.
//!
//! These copies live inside the cluster: they go with the volume. They are
//! for the daily "save, try, put back" loop; volume snapshots are the
//! durable ones.

use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::error::UsageError;
use crate::pg::{self, maintenance_url, quote_ident};
// Commands reach these through `template::`; each is defined once, elsewhere.
pub(crate) use crate::pg::with_database;

mod opened;
mod sessions;

pub(crate) use crate::target::container_url;
pub use opened::{Opened, verify};
pub use sessions::Session;
use sessions::{clear_sessions, sessions};

/// md5 over the user schema: tables, columns, types, constraints, indexes.
pub const SCHEMA_FINGERPRINT_SQL: &str = "SELECT md5(coalesce(string_agg(x, E'\\n' ORDER BY x), '')) FROM (\
   SELECT table_schema||'.'||table_name||'.'||column_name||':'||data_type||':'||is_nullable AS x \
   FROM information_schema.columns WHERE table_schema NOT IN ('pg_catalog','information_schema') \
 UNION ALL SELECT conrelid::regclass::text||':'||pg_get_constraintdef(oid) FROM pg_constraint \
   WHERE connamespace NOT IN ('pg_catalog'::regnamespace,'information_schema'::regnamespace) \
 UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog','information_schema')) s";

/// Prefix of the hidden template databases ward creates.
pub const PREFIX: &str = "ward_snap_";

/// What a template snapshot is, as recorded in its manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TemplateFacts {
    /// The database that was copied (and that `restore` replaces).
    pub source_database: String,
    /// The hidden copy inside the cluster.
    pub template_database: String,
    pub size_bytes: i64,
    pub schema_fingerprint: String,
    pub server_version: String,
    pub seconds: f64,
    /// The oid of the copy when ward created it; checked before ward drops
    /// or copies from a database a manifest names (manifests older than this
    /// lack it and are checked by name and comment only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oid: Option<u32>,
}

/// The comment ward puts on the copies it creates.
fn mark(snapshot: &str, source: &str) -> String {
    format!("ward fast snapshot {snapshot} of {source}")
}

/// Refuses to touch a database that a manifest names unless ward created it
/// for this very snapshot: the name ward derives from the snapshot's name,
/// the comment ward wrote, and (when recorded) the oid. A manifest is only a
/// file in a store; it must not be able to point ward at another database.
pub async fn ensure_ours(url: &str, snapshot: &str, facts: &TemplateFacts) -> Result<()> {
    let (admin_url, _) = maintenance_url(url)?;
    let admin = pg::connect(&admin_url).await?;
    ensure_ours_with(&admin, snapshot, facts).await
}

async fn ensure_ours_with(admin: &Client, snapshot: &str, facts: &TemplateFacts) -> Result<()> {
    let tpl = &facts.template_database;
    let refuse = |why: String| -> Result<()> {
        Err(crate::snapshot::Damaged(format!(
            "snapshot {snapshot:?} names the database {tpl:?}, but {why} — ward leaves it alone \
             (the manifest was altered or belongs to another snapshot)"
        ))
        .into())
    };
    if *tpl != template_database(snapshot) || !tpl.starts_with(PREFIX) {
        return refuse(format!(
            "ward's copy for this snapshot is called {:?}",
            template_database(snapshot)
        ));
    }
    let row = admin
        .query_opt(
            "SELECT oid::int8, coalesce(shobj_description(oid, 'pg_database'), '') \
             FROM pg_database WHERE datname = $1",
            &[tpl],
        )
        .await?;
    let Some(row) = row else { return Ok(()) };
    let (oid, comment): (i64, String) = (row.get(0), row.get(1));
    if comment != mark(snapshot, &facts.source_database) {
        return refuse("it does not carry the comment ward puts on its copies".into());
    }
    if let Some(want) = facts.oid
        && i64::from(want) != oid
    {
        return refuse(format!("its oid is {oid}, not the {want} ward recorded"));
    }
    Ok(())
}

/// The template database name for a snapshot name (names are checked by the store).
pub fn template_database(snapshot: &str) -> String {
    let name = format!("{PREFIX}{snapshot}");
    // Postgres truncates identifiers at 63 bytes: keep them distinct and exact.
    if name.len() > 63 {
        let h = crate::seed::rng::fnv1a(name.as_bytes());
        format!("{}_{h:016x}", &name[..63 - 17])
    } else {
        name
    }
}

async fn exists(admin: &Client, db: &str) -> Result<bool> {
    Ok(admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
            &[&db],
        )
        .await?
        .get(0))
}

async fn require_createdb(admin: &Client) -> Result<()> {
    let row = admin
        .query_one("SELECT rolsuper OR rolcreatedb, current_user::text FROM pg_roles WHERE rolname = current_user", &[])
        .await?;
    if !row.get::<_, bool>(0) {
        let user: String = row.get(1);
        return Err(UsageError(format!(
            "role {user} may not create databases, which fast snapshots need — run `ALTER ROLE {user} CREATEDB` as a superuser, or use a volume snapshot"
        ))
        .into());
    }
    Ok(())
}

/// A copy of `src` as `new`, through the one clone function in `pg`.
async fn copy_database(admin: &Client, src: &str, new: &str, owner: Option<&str>) -> Result<()> {
    pg::clone_database(admin, src, new, owner)
        .await
        .map_err(|e| {
            let msg = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string());
            anyhow!("copying {src} to {new} failed: {msg} (is the disk full?)")
        })
}

async fn fingerprint_of(url_for: impl Fn(&str) -> String, db: &str) -> Result<(String, i64)> {
    let client = pg::connect(&url_for(db)).await?;
    let fp: String = client.query_one(SCHEMA_FINGERPRINT_SQL, &[]).await?.get(0);
    let size: i64 = client
        .query_one("SELECT pg_database_size(current_database())", &[])
        .await?
        .get(0);
    Ok((fp, size))
}

/// Copies the database of `url` into a hidden template database for `snapshot`.
pub async fn create(url: &str, snapshot: &str, force: bool) -> Result<TemplateFacts> {
    let started = Instant::now();
    let (admin_url, db) = maintenance_url(url)?;
    let admin = pg::connect(&admin_url).await?;
    require_createdb(&admin).await?;
    let tpl = template_database(snapshot);
    if exists(&admin, &tpl).await? {
        return Err(UsageError(format!(
            "a fast snapshot named {snapshot} already exists in this cluster (database {tpl}) — pick another name or delete it first"
        ))
        .into());
    }
    if !exists(&admin, &db).await? {
        return Err(UsageError(format!(
            "database {db} does not exist — check --database / the URL"
        ))
        .into());
    }
    // Copying needs the source to be idle: Postgres refuses a template in use.
    clear_sessions(&admin, &db, force, "copy it").await?;
    copy_database(&admin, &db, &tpl, None).await?;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {0} IS_TEMPLATE true ALLOW_CONNECTIONS false; COMMENT ON DATABASE {0} IS {1}",
            quote_ident(&tpl),
            pg::quote_literal(&mark(snapshot, &db))
        ))
        .await?;
    let oid: i64 = admin
        .query_one(
            "SELECT oid::int8 FROM pg_database WHERE datname = $1",
            &[&tpl],
        )
        .await?
        .get(0);
    let (fp, size) = fingerprint_of(|d| with_database(url, d), &db).await?;
    let version: String = admin.query_one("SHOW server_version", &[]).await?.get(0);
    Ok(TemplateFacts {
        source_database: db,
        template_database: tpl,
        size_bytes: size,
        schema_fingerprint: fp,
        server_version: version,
        seconds: started.elapsed().as_secs_f64(),
        oid: u32::try_from(oid).ok(),
    })
}

/// Fails at `point` when it is the injected fault (tests: `WARD_FAULT`).
fn fault(injected: Option<&str>, point: &str) -> Result<()> {
    if injected == Some(point) {
        return Err(anyhow!("injected fault at {point}"));
    }
    Ok(())
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub database: String,
    pub seconds: f64,
    pub sessions_ended: usize,
}

/// Replaces the database from its template copy: copy beside it, then swap
/// by renaming. Until the swap, the original is untouched; if the swap
/// fails half-way the original name is put back.
pub async fn restore(url: &str, facts: &TemplateFacts, force: bool) -> Result<Restored> {
    let injected = std::env::var("WARD_FAULT").ok();
    restore_with_fault(url, facts, force, injected.as_deref()).await
}

/// `restore`, failing on purpose at `fault` (`template-copy` after the copy,
/// `template-swap` between the two renames): for tests of the way back.
#[doc(hidden)]
pub async fn restore_with_fault(
    url: &str,
    facts: &TemplateFacts,
    force: bool,
    fault_at: Option<&str>,
) -> Result<Restored> {
    let started = Instant::now();
    let (admin_url, _) = maintenance_url(url)?;
    let admin = pg::connect(&admin_url).await?;
    let db = &facts.source_database;
    let tpl = &facts.template_database;
    if !exists(&admin, tpl).await? {
        return Err(UsageError(format!(
            "the copy behind this fast snapshot ({tpl}) is gone from the cluster (was the volume replaced?) — delete the snapshot"
        ))
        .into());
    }
    if !force {
        clear_sessions(&admin, db, false, "restore").await?;
    }
    let in_use = sessions(&admin, db).await?;
    let owner: Option<String> = admin
        .query_opt(
            "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1",
            &[db],
        )
        .await?
        .map(|r| r.get(0));
    let fresh = format!(
        "ward_restoring_{}",
        crate::seed::rng::fnv1a(db.as_bytes()) & 0xffff_ffff
    );
    let old = format!(
        "ward_replaced_{}",
        crate::seed::rng::fnv1a(db.as_bytes()) & 0xffff_ffff
    );
    for leftover in [&fresh, &old] {
        if exists(&admin, leftover).await? {
            admin
                .batch_execute(&format!("DROP DATABASE {}", quote_ident(leftover)))
                .await?;
        }
    }
    copy_database(&admin, tpl, &fresh, owner.as_deref()).await?;
    tracing::info!("copied {tpl} to {fresh} in {:.2?}", started.elapsed());
    let settings = admin
        .query(
            "SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
             WHERE d.datname = $1 AND s.setrole = 0",
            &[db],
        )
        .await?;
    for r in &settings {
        let kv: String = r.get(0);
        if let Some((k, v)) = kv.split_once('=') {
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE {} SET {} TO {}",
                    quote_ident(&fresh),
                    quote_ident(k),
                    pg::quote_literal(v)
                ))
                .await?;
        }
    }
    let swap = async {
        fault(fault_at, "template-copy")?;
        let had_original = exists(&admin, db).await?;
        if had_original {
            clear_sessions(&admin, db, force, "restore").await?;
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE {} RENAME TO {}",
                    quote_ident(db),
                    quote_ident(&old)
                ))
                .await
                .context("moving the current database aside")?;
        }
        let second = async {
            fault(fault_at, "template-swap")?;
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE {} RENAME TO {}",
                    quote_ident(&fresh),
                    quote_ident(db)
                ))
                .await
                .context("putting the copy in place")
        };
        if let Err(e) = second.await {
            if had_original {
                admin
                    .batch_execute(&format!(
                        "ALTER DATABASE {} RENAME TO {}",
                        quote_ident(&old),
                        quote_ident(db)
                    ))
                    .await
                    .context(
                        "PUTTING THE ORIGINAL BACK FAILED — it is intact under its temporary name",
                    )?;
            }
            return Err(e);
        }
        if had_original {
            admin
                .batch_execute(&format!("DROP DATABASE {}", quote_ident(&old)))
                .await?;
        }
        Ok::<(), anyhow::Error>(())
    };
    if let Err(e) = swap.await {
        let _ = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(&fresh)))
            .await;
        return Err(e.context(format!("{db} was left as it was")));
    }
    Ok(Restored {
        database: db.clone(),
        seconds: started.elapsed().as_secs_f64(),
        sessions_ended: if force { in_use.len() } else { 0 },
    })
}

/// Drops the hidden copy of `snapshot` (if it is still there), after
/// checking that ward made it ([`ensure_ours`]).
pub async fn delete(url: &str, snapshot: &str, facts: &TemplateFacts) -> Result<()> {
    let (admin_url, _) = maintenance_url(url)?;
    let admin = pg::connect(&admin_url).await?;
    ensure_ours_with(&admin, snapshot, facts).await?;
    let tpl = quote_ident(&facts.template_database);
    if exists(&admin, &facts.template_database).await? {
        // Separate statements: DROP DATABASE refuses to run inside a transaction.
        admin
            .batch_execute(&format!("ALTER DATABASE {tpl} IS_TEMPLATE false"))
            .await?;
        admin.batch_execute(&format!("DROP DATABASE {tpl}")).await?;
    }
    Ok(())
}

/// Takes a `--fast` snapshot of the database at `url` into `store`: the copy
/// stays in the cluster, the store gets a manifest of kind "template".
pub async fn create_snapshot(
    store: &super::store::Store,
    url: &str,
    name: &str,
    labels: std::collections::BTreeMap<String, String>,
    force: bool,
    container: Option<String>,
) -> Result<super::manifest::Manifest> {
    super::store::check_name(name)?;
    let _lock = store.lock()?;
    if store.exists(name)? {
        return crate::error::usage(format!(
            "a snapshot named {name:?} already exists in {} — pick another name or delete it first",
            store.dir.display()
        ));
    }
    let facts = create(url, name, force).await?;
    let config = pg::parse_url(url)?;
    let major = pg::parse_major(&facts.server_version).unwrap_or(0);
    let m = super::manifest::Manifest {
        format: super::manifest::FORMAT,
        id: super::new_id(),
        name: name.to_string(),
        created_at: chrono::Utc::now(),
        ward_version: env!("CARGO_PKG_VERSION").into(),
        method: "template".into(),
        source: crate::target::SourceFacts {
            kind: "database".into(),
            postgres_user: config.get_user().map(str::to_string),
            container,
            ..Default::default()
        },
        pg_major: major,
        system_identifier: None,
        pgdata: None,
        pgdata_rel: String::new(),
        layout: super::manifest::Layout::Pgdata,
        uid: None,
        gid: None,
        file_count: 0,
        total_bytes: facts.size_bytes.max(0) as u64,
        tar_bytes: 0,
        compressed_bytes: 0,
        archive_sha256: String::new(),
        archive_file: String::new(),
        archive_carries_id: false,
        downtime_seconds: None,
        labels,
        database: None,
        last_verified: None,
        entries: Vec::new(),
        template: Some(facts.clone()),
        encryption: None,
    };
    if let Err(e) = store.write_manifest(&m) {
        // No manifest, no snapshot: do not leave an unlisted copy behind.
        let _ = delete(url, name, &facts).await;
        return Err(e);
    }
    Ok(m)
}

/// The URL of the cluster a template snapshot lives in: `url` (the database
/// part is ignored; the recorded source database is the one replaced).
pub fn require_url(url: Option<&str>, what: &str) -> Result<String> {
    url.map(str::to_string).ok_or_else(|| {
        UsageError(format!(
            "{what} a fast snapshot needs the database: pass --database-url or set DATABASE_URL"
        ))
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_stay_distinct_and_short() {
        let a = template_database(&"a".repeat(80));
        let b = template_database(&format!("{}b", "a".repeat(79)));
        assert!(a.len() <= 63 && b.len() <= 63);
        assert_ne!(a, b);
        assert_eq!(
            template_database("before-migration"),
            "ward_snap_before-migration"
        );
    }
}
