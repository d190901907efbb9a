//! Who is connected to a database a fast snapshot copies or replaces: a
//! copy by template needs the source free of sessions, so ward lists them
//! for the refusal message, or ends them with `--force`.

use anyhow::{Result, anyhow};
use serde::Serialize;
use tokio_postgres::Client;

use crate::error::UsageError;

/// A session connected to a database, for the refusal message.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub pid: i32,
    pub user: String,
    pub application: String,
    pub client: String,
}

pub(super) async fn sessions(admin: &Client, db: &str) -> Result<Vec<Session>> {
    let rows = admin
        .query(
            "SELECT pid, coalesce(usename::text, ''), coalesce(application_name, ''),
                    coalesce(client_addr::text, 'local')
             FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Session {
            pid: r.get(0),
            user: r.get(1),
            application: r.get(2),
            client: r.get(3),
        })
        .collect())
}

/// Refuses (listing them) or, with `force`, ends the other sessions on `db`.
pub(super) async fn clear_sessions(
    admin: &Client,
    db: &str,
    force: bool,
    what: &str,
) -> Result<()> {
    let mut list = sessions(admin, db).await?;
    // A client that has just disconnected leaves its backend for a moment:
    // give such sessions a second to go before calling the database busy.
    for _ in 0..10 {
        if list.is_empty() || force {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        list = sessions(admin, db).await?;
    }
    if list.is_empty() {
        return Ok(());
    }
    if !force {
        let who: Vec<String> = list
            .iter()
            .map(|s| {
                format!(
                    "pid {} ({}{}, {})",
                    s.pid,
                    s.user,
                    if s.application.is_empty() {
                        String::new()
                    } else {
                        format!(" via {}", s.application)
                    },
                    s.client
                )
            })
            .collect();
        return Err(UsageError(format!(
            "{db} is in use by {} session{}: {} — stop them, or add --force to end them and {what}",
            list.len(),
            if list.len() == 1 { "" } else { "s" },
            who.join("; ")
        ))
        .into());
    }
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .await?;
    // Give the ended backends a moment to leave.
    for _ in 0..50 {
        if sessions(admin, db).await?.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(anyhow!(
        "sessions on {db} did not end after pg_terminate_backend"
    ))
}
