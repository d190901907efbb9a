//! What a traced statement did, read from the catalog around it: the
//! relations' locks, data files (rewrites), scans and changed rows, and for
//! statements outside a transaction the locks a second connection sees
//! while the statement runs. Split from [`super`] (how the statements run).

use std::collections::HashMap;

use anyhow::Result;
use tokio_postgres::Client;

use super::{Lock, StatementTrace};
/// State of every user relation, read after each statement.
#[derive(Debug, Clone)]
pub(crate) struct Rel {
    pub(super) name: String,
    pub(super) filenode: i64,
    pub(super) locks: Vec<String>,
    pub(super) seq_scan: i64,
    pub(super) upd: i64,
    pub(super) del: i64,
    pub(super) index_of: Option<u32>,
}

impl Rel {
    /// The table's name as Postgres quotes it (`public.t`); None for an index.
    pub(crate) fn table_name(&self) -> Option<&str> {
        self.index_of.is_none().then_some(self.name.as_str())
    }

    /// A table of that name and nothing else known, for unit tests.
    #[cfg(test)]
    pub(crate) fn named(name: &str) -> Rel {
        Rel {
            name: name.to_string(),
            filenode: 0,
            locks: Vec::new(),
            seq_scan: 0,
            upd: 0,
            del: 0,
            index_of: None,
        }
    }
}

/// One query per traced statement, so it must stay cheap on schemas with
/// hundreds of relations: the session's locks are read once (a correlated
/// `pg_locks` subquery would call `pg_lock_status()` for every relation),
/// and the per-transaction counters straight from the functions behind
/// `pg_stat_xact_user_tables` (the same numbers, without the view's joins).
const STATE_SQL: &str = "
SELECT c.oid::int8, quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.relfilenode::int8,
       coalesce(l.modes, '{}'::text[]),
       CASE WHEN c.relkind = 'i' THEN 0 ELSE pg_stat_get_xact_numscans(c.oid) END,
       CASE WHEN c.relkind = 'i' THEN 0 ELSE pg_stat_get_xact_tuples_updated(c.oid) END,
       CASE WHEN c.relkind = 'i' THEN 0 ELSE pg_stat_get_xact_tuples_deleted(c.oid) END,
       i.indrelid::int8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN (SELECT relation, array_agg(DISTINCT mode) AS modes FROM pg_locks
           WHERE locktype = 'relation' AND pid = pg_backend_pid() AND granted
           GROUP BY relation) l ON l.relation = c.oid
LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE c.relkind IN ('r', 'p', 'm', 'i')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', '_ward_pre')
  AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'";

pub(crate) async fn state(client: &Client) -> Result<HashMap<u32, Rel>> {
    // One round trip (`query` takes three: prepare, execute, close).
    let rows = client.query_typed(STATE_SQL, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, i64>(0) as u32,
                Rel {
                    name: r.get(1),
                    filenode: r.get(2),
                    locks: r.get(3),
                    seq_scan: r.get(4),
                    upd: r.get(5),
                    del: r.get(6),
                    index_of: r.get::<_, Option<i64>>(7).map(|v| v as u32),
                },
            )
        })
        .collect())
}

pub(crate) fn diff_state(
    before: &HashMap<u32, Rel>,
    after: &HashMap<u32, Rel>,
    t: &mut StatementTrace,
) {
    // An index Postgres re-creates on its old storage (a varchar widened,
    // a binary-coercible type change) has a new OID but was not built.
    let index_files: std::collections::HashSet<i64> = before
        .values()
        .filter(|r| r.index_of.is_some())
        .map(|r| r.filenode)
        .collect();
    for (oid, a) in after {
        let b = before.get(oid);
        for mode in &a.locks {
            if b.is_none_or(|b| !b.locks.contains(mode)) {
                t.locks.push(Lock {
                    oid: *oid,
                    table: a.name.clone(),
                    mode: mode.clone(),
                });
            }
        }
        match (b, a.index_of) {
            (Some(b), None) => {
                if b.filenode != a.filenode {
                    t.rewritten.push(*oid);
                }
                if a.seq_scan > b.seq_scan {
                    t.scanned.push(*oid);
                }
                if a.del > b.del {
                    t.deleted.insert(*oid, a.del - b.del);
                }
                if a.upd > b.upd {
                    t.updated.insert(*oid, a.upd - b.upd);
                }
            }
            (b, Some(table))
                if b.map_or(!index_files.contains(&a.filenode), |b| {
                    b.filenode != a.filenode
                }) && !t.indexed.contains(&table) =>
            {
                t.indexed.push(table);
            }
            _ => {}
        }
    }
    let rewritten = t.rewritten.clone();
    t.indexed
        .retain(|oid| !rewritten.contains(oid) || new_index_on(before, after, *oid));
    t.locks
        .sort_by(|x, y| (&x.table, &x.mode).cmp(&(&y.table, &y.mode)));
}

/// Runs `sql` on `client` while `observer` polls the relation locks of `pid`.
pub(super) async fn observe(
    client: &Client,
    observer: &Client,
    pid: i32,
    sql: &str,
) -> (Result<(), tokio_postgres::Error>, Vec<(u32, String)>) {
    let done = std::sync::atomic::AtomicBool::new(false);
    let exec = async {
        let r = client.batch_execute(sql).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        r
    };
    let poll = async {
        let mut seen: Vec<(u32, String)> = Vec::new();
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok(rows) = observer
                .query_typed(
                    "SELECT relation::int8, mode FROM pg_locks WHERE pid = $1 AND locktype = 'relation' \
                     AND granted AND relation IS NOT NULL",
                    &[(&pid, tokio_postgres::types::Type::INT4)],
                )
                .await
            {
                for r in rows {
                    let x = (r.get::<_, i64>(0) as u32, r.get::<_, String>(1));
                    if !seen.contains(&x) {
                        seen.push(x);
                    }
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        seen
    };
    tokio::join!(exec, poll)
}

/// Whether a brand-new index appeared on `table`.
fn new_index_on(before: &HashMap<u32, Rel>, after: &HashMap<u32, Rel>, table: u32) -> bool {
    after
        .iter()
        .any(|(oid, r)| r.index_of == Some(table) && !before.contains_key(oid))
}
