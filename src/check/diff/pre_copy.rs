//! The `_ward_pre` copies: the PRE state of the tables the migrations name
//! (and of the tables that reference them), kept on the clone so the diff can
//! say which rows were lost and which values changed, row by row.

use anyhow::Result;
use tokio_postgres::Client;

use crate::check::fingerprint::Fingerprint;
use crate::pg::quote_ident;

/// Name of the PRE copy of a table.
pub(crate) fn snapshot_name(oid: u32) -> String {
    format!("_ward_pre.t{oid}")
}

/// Copies the PRE state of `oids` into `_ward_pre` (unlogged).
pub(crate) async fn snapshot(client: &Client, pre: &Fingerprint, oids: &[u32]) -> Result<Vec<u32>> {
    client
        .batch_execute("CREATE SCHEMA IF NOT EXISTS _ward_pre")
        .await?;
    let mut done = Vec::new();
    for oid in oids {
        let Some(table) = pre.tables.get(oid) else {
            continue;
        };
        if table.key.is_empty() || table.rows == 0 {
            continue;
        }
        let columns = detached_columns(client, *oid, &table.key).await?;
        client
            .batch_execute(&format!(
                "CREATE UNLOGGED TABLE {} AS SELECT {columns} FROM {}",
                snapshot_name(*oid),
                table.qualified()
            ))
            .await?;
        done.push(*oid);
    }
    Ok(done)
}

/// The select list of a PRE copy. A copy with a column of one of the
/// project's types (enum, domain, composite, range, or an array of them)
/// would depend on that type, and a migration's `DROP TYPE` — the usual way
/// to recreate an enum — would fail on ward's copy only. Such columns are
/// kept as text: every comparison renders values as text anyway. Key
/// columns keep their type (the joins compare them with the live table's).
async fn detached_columns(client: &Client, oid: u32, key: &[String]) -> Result<String> {
    let rows = client
        .query(
            "SELECT a.attname::text,
                    coalesce(e.typnamespace, t.typnamespace)
                      NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
               FROM pg_attribute a
               JOIN pg_type t ON t.oid = a.atttypid
               LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
              WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum",
            &[&oid],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let name: String = row.get(0);
            let project_type: bool = row.get(1);
            let quoted = quote_ident(&name);
            if project_type && !key.contains(&name) {
                format!("{quoted}::text AS {quoted}")
            } else {
                quoted
            }
        })
        .collect::<Vec<_>>()
        .join(", "))
}
