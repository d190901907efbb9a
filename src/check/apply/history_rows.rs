//! The runners' history tables: creating one like the runner does, the row
//! a migration leaves there (or, going down, takes away), and reading the
//! rows back. Split from [`super`] (how the statements run).

use anyhow::Result;
use serde::Serialize;
use tokio_postgres::Client;

use super::Direction;
use crate::check::migrations::{Format, Migration};
pub async fn ensure_history(client: &Client, format: Format) -> Result<()> {
    let ddl = match format {
        Format::Sqlx => {
            "CREATE TABLE IF NOT EXISTS _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
             installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, \
             execution_time BIGINT NOT NULL)"
        }
        Format::Diesel => {
            "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
             run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        }
        Format::GolangMigrate => {
            "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)"
        }
        Format::Dbmate => {
            "CREATE TABLE IF NOT EXISTS schema_migrations (version varchar(128) PRIMARY KEY)"
        }
        Format::Flyway => {
            "CREATE TABLE IF NOT EXISTS flyway_schema_history (installed_rank integer PRIMARY KEY, \
             version varchar(50), description varchar(200) NOT NULL, type varchar(20) NOT NULL, \
             script varchar(1000) NOT NULL, checksum integer, installed_by varchar(100) NOT NULL, \
             installed_on timestamp NOT NULL DEFAULT now(), execution_time integer NOT NULL, success boolean NOT NULL)"
        }
        Format::Refinery => {
            "CREATE TABLE IF NOT EXISTS refinery_schema_history (version int4 PRIMARY KEY, name varchar(255), \
             applied_on varchar(255), checksum varchar(255))"
        }
    };
    client.batch_execute(ddl).await?;
    Ok(())
}

/// The SQL that records (or, going down, removes) a history row like the runner does.
pub(super) fn history_sql(format: Format, m: &Migration, dir: Direction, ms: f64) -> String {
    let v = crate::pg::quote_literal(&m.version);
    if dir == Direction::Down {
        return match format {
            Format::Sqlx => format!("DELETE FROM _sqlx_migrations WHERE version = {}", m.version),
            Format::GolangMigrate => format!(
                "DELETE FROM schema_migrations WHERE version = {}",
                m.version
            ),
            Format::Refinery => format!(
                "DELETE FROM refinery_schema_history WHERE version = {}",
                m.version
            ),
            _ => format!("DELETE FROM {} WHERE version = {v}", format.history_table()),
        };
    }
    match format {
        Format::Sqlx => format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ({}, {}, TRUE, decode({}, 'hex'), {})",
            m.version,
            crate::pg::quote_literal(&m.description),
            crate::pg::quote_literal(m.checksum.as_deref().unwrap_or("")),
            (ms * 1e6) as i64
        ),
        Format::Diesel => format!("INSERT INTO __diesel_schema_migrations (version) VALUES ({v})"),
        Format::Dbmate => format!("INSERT INTO schema_migrations (version) VALUES ({v})"),
        Format::GolangMigrate => format!(
            "UPDATE schema_migrations SET dirty = false WHERE version = {}",
            m.version
        ),
        Format::Flyway => format!(
            "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, \
             installed_by, execution_time, success) SELECT coalesce(max(installed_rank), 0) + 1, {v}, {}, 'SQL', {}, {}, \
             current_user, {}, TRUE FROM flyway_schema_history",
            crate::pg::quote_literal(&m.description),
            crate::pg::quote_literal(m.up.file.rsplit('/').next().unwrap_or(&m.up.file)),
            m.checksum.as_deref().unwrap_or("NULL"),
            ms as i64
        ),
        Format::Refinery => format!(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES ({}, {}, {}, {})",
            m.version,
            crate::pg::quote_literal(&m.description),
            crate::pg::quote_literal(&chrono::Utc::now().to_rfc3339()),
            crate::pg::quote_literal(m.checksum.as_deref().unwrap_or(""))
        ),
    }
}

/// Records a history row inside the open transaction, like the runner.
/// Projects may guard the table against other tools (Lemmy's trigger lets
/// only its own runner write diesel's table), and their runner gets past
/// that guard: ward then writes with triggers off, which needs a superuser.
/// If even that is refused the migration still counts as run and the next
/// one goes on; the returned note says why the row is missing.
pub(super) async fn record_history(
    client: &Client,
    format: Format,
    sql: &str,
) -> Result<Option<String>> {
    client.batch_execute("SAVEPOINT ward_history").await?;
    let refused = match client.batch_execute(sql).await {
        Ok(()) => return Ok(None),
        Err(e) if e.as_db_error().is_some() => e,
        Err(e) => return Err(e.into()),
    };
    client
        .batch_execute("ROLLBACK TO SAVEPOINT ward_history")
        .await?;
    let bypassed = format!(
        "SET LOCAL session_replication_role = replica; {sql}; SET LOCAL session_replication_role = DEFAULT"
    );
    match client.batch_execute(&bypassed).await {
        Ok(()) => {
            tracing::info!(
                "{} refused the history row ({}); written with triggers off",
                format.history_table(),
                db_message(&refused)
            );
            Ok(None)
        }
        Err(e) if e.as_db_error().is_some() => {
            client
                .batch_execute("ROLLBACK TO SAVEPOINT ward_history")
                .await?;
            Ok(Some(format!(
                "{} refused ward's history row ({}), also with triggers off ({}): the migration ran but is not recorded",
                format.history_table(),
                db_message(&refused),
                db_message(&e)
            )))
        }
        Err(e) => Err(e.into()),
    }
}

fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()),
        None => e.to_string(),
    }
}

/// A row of the runner's history table.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub version: String,
    pub description: Option<String>,
    pub checksum: Option<String>,
    pub success: bool,
}

/// The runner's history, or `None` when its table does not exist.
pub async fn applied(client: &Client, format: Format) -> Result<Option<Vec<Applied>>> {
    let table = format.history_table();
    let exists: bool = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let sql = match format {
        Format::Sqlx => {
            "SELECT version::text, description, encode(checksum, 'hex'), success FROM _sqlx_migrations"
        }
        Format::Diesel => {
            "SELECT version::text, NULL::text, NULL::text, true FROM __diesel_schema_migrations"
        }
        Format::GolangMigrate => {
            "SELECT version::text, NULL::text, NULL::text, NOT dirty FROM schema_migrations"
        }
        Format::Dbmate => {
            "SELECT version::text, NULL::text, NULL::text, true FROM schema_migrations"
        }
        Format::Flyway => {
            "SELECT version::text, description::text, checksum::text, success FROM flyway_schema_history \
             WHERE version IS NOT NULL AND type NOT IN ('BASELINE', 'UNDO_SQL')"
        }
        Format::Refinery => {
            "SELECT version::text, name::text, checksum::text, true FROM refinery_schema_history"
        }
    };
    let rows = client.query(sql, &[]).await?;
    Ok(Some(
        rows.iter()
            .map(|r| Applied {
                version: r.get(0),
                description: r.get(1),
                checksum: r.get(2),
                success: r.get(3),
            })
            .collect(),
    ))
}
