//! Runner-exact execution of migrations, with a per-statement trace.
//!
//! Each runner's behaviour is emulated: whether the file runs in a
//! transaction, how its SQL is sent, and how history is recorded. A file the
//! runner wraps in a transaction (or sends as one multi-statement simple query,
//! which Postgres runs as an implicit transaction) is executed statement by
//! statement inside an explicit `BEGIN … COMMIT` — equivalent, and it lets
//! ward look at the locks the transaction holds, the relfilenodes (rewrites)
//! and the per-transaction table statistics (scans, deleted rows) after every
//! statement. A sqlx/diesel/dbmate `no-transaction` file with several
//! statements is sent exactly like the runner sends it: one simple query.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use tokio_postgres::Client;

use super::migrations::{Format, Migration, Script};
use super::split::{self, Statement};

/// How a file is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Split statements inside one explicit transaction (traced).
    Transaction,
    /// The whole file as one simple query (the runner's own way; not traced per statement).
    SingleQuery,
    /// Statement by statement, each committed on its own.
    Autocommit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
}

/// A relation's lock, as held after a statement.
#[derive(Debug, Clone, Serialize)]
pub struct Lock {
    #[serde(skip)]
    pub oid: u32,
    pub table: String,
    pub mode: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StatementTrace {
    pub line: usize,
    pub sql: String,
    pub ms: f64,
    /// Relation locks this statement added to the transaction.
    pub locks: Vec<Lock>,
    /// Tables (by oid) whose data file was rewritten.
    #[serde(skip)]
    pub rewritten: Vec<u32>,
    /// Tables scanned sequentially.
    #[serde(skip)]
    pub scanned: Vec<u32>,
    /// Tables that got a new or rebuilt index.
    #[serde(skip)]
    pub indexed: Vec<u32>,
    /// Rows deleted / updated / inserted per table oid (incl. cascades and triggers).
    #[serde(skip)]
    pub deleted: HashMap<u32, i64>,
    #[serde(skip)]
    pub updated: HashMap<u32, i64>,
    /// Whether the trace is complete (false for single-query and autocommit files).
    pub traced: bool,
}

/// Why a file failed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    pub line: usize,
    pub statement: String,
    pub table: Option<String>,
    pub column: Option<String>,
    pub constraint: Option<String>,
    /// What the diagnostic query found, on the state just before the statement.
    pub diagnosis: Option<Diagnosis>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Diagnosis {
    pub count: Option<i64>,
    pub evidence: Option<String>,
    pub remedy: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileRun {
    pub version: String,
    pub file: String,
    pub mode: Mode,
    pub ms: f64,
    pub statements: Vec<StatementTrace>,
    pub failure: Option<Failure>,
    /// Why the runner's history row could not be written, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history_note: Option<String>,
}

pub fn mode_of(format: Format, m: &Migration, script: &Script) -> Mode {
    let stmts = split::split(&script.sql);
    let any_autocommit = stmts.iter().any(|s| split::needs_autocommit(&s.sql));
    let single = stmts.len() <= 1;
    match format {
        // sent whole, as one simple query
        Format::Sqlx | Format::Diesel | Format::Dbmate if m.no_tx => {
            if single {
                Mode::Autocommit
            } else {
                Mode::SingleQuery
            }
        }
        // golang-migrate sends the whole file without BEGIN: one statement runs
        // on its own, several run as an implicit transaction.
        Format::GolangMigrate if single && any_autocommit => Mode::Autocommit,
        // Flyway runs a script made only of non-transactional statements outside a transaction.
        Format::Flyway if any_autocommit => Mode::Autocommit,
        _ => Mode::Transaction,
    }
}

/// Settings every checking session pins, so a blocked clone cannot hang CI.
pub async fn prepare_session(client: &Client, timezone: &str) -> Result<()> {
    client
        .batch_execute(&format!(
            "SET TimeZone = {}; SET lock_timeout = '10s'; SET statement_timeout = '30min'; \
             SET DateStyle = 'ISO, MDY'; SET client_min_messages = warning",
            crate::pg::quote_literal(timezone)
        ))
        .await?;
    Ok(())
}

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
fn history_sql(format: Format, m: &Migration, dir: Direction, ms: f64) -> String {
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

/// State of every user relation, read after each statement.
#[derive(Debug, Clone)]
pub(crate) struct Rel {
    name: String,
    filenode: i64,
    locks: Vec<String>,
    seq_scan: i64,
    upd: i64,
    del: i64,
    index_of: Option<u32>,
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
    let rows = client.query(STATE_SQL, &[]).await?;
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
                if b.is_none_or(|b| b.filenode != a.filenode) && !t.indexed.contains(&table) =>
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

pub(crate) fn failure(
    e: &tokio_postgres::Error,
    stmt: &Statement,
    script: &Script,
    whole_file: bool,
) -> Failure {
    let db = e.as_db_error();
    let line = match (db.and_then(|d| d.position()), whole_file) {
        (Some(tokio_postgres::error::ErrorPosition::Original(p)), true) => {
            let p = (*p as usize).saturating_sub(1);
            let chars: String = script.sql.chars().take(p).collect();
            chars.matches('\n').count() + 1
        }
        _ => stmt.line,
    };
    let line = line + script.first_line - 1;
    match db {
        Some(d) => Failure {
            sqlstate: d.code().code().to_string(),
            message: d.message().to_string(),
            detail: d.detail().map(str::to_string),
            hint: d.hint().map(str::to_string),
            line,
            statement: stmt.sql.clone(),
            table: d.table().map(str::to_string),
            column: d.column().map(str::to_string),
            constraint: d.constraint().map(str::to_string),
            diagnosis: None,
        },
        None => Failure {
            sqlstate: String::new(),
            message: format!("{e}"),
            detail: None,
            hint: None,
            line,
            statement: stmt.sql.clone(),
            table: None,
            column: None,
            constraint: None,
            diagnosis: None,
        },
    }
}

/// Runs `sql` on `client` while `observer` polls the relation locks of `pid`.
async fn observe(
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
                .query(
                    "SELECT relation::int8, mode FROM pg_locks WHERE pid = $1 AND locktype = 'relation' \
                     AND granted AND relation IS NOT NULL",
                    &[&pid],
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

/// Whether a run is traced, and by what.
#[derive(Clone, Copy)]
enum Tracing<'a> {
    /// Nobody reads the statements' traces (the round trip, the other-zone
    /// run, building a baseline): statements run plainly, with no savepoint
    /// and no state query between them — the runner's own cost.
    Off,
    /// Every statement traced; statements outside a transaction also
    /// polled by the observer, when there is one.
    On(Option<&'a Client>),
}

/// Runs `migrations` in order like the runner, stopping at the first
/// failure; untraced (a failure has its statement and line, no diagnosis).
pub async fn run(
    client: &Client,
    format: Format,
    migrations: &[&Migration],
    dir: Direction,
) -> Result<Vec<FileRun>> {
    run_with(client, Tracing::Off, format, migrations, dir).await
}

/// Like [`run`], traced statement by statement; statements that run
/// outside a transaction are traced by `observer`, a second connection
/// that polls the migrator's `pg_locks` every few milliseconds while the
/// statement runs.
pub async fn run_observed(
    client: &Client,
    observer: Option<&Client>,
    format: Format,
    migrations: &[&Migration],
    dir: Direction,
) -> Result<Vec<FileRun>> {
    run_with(client, Tracing::On(observer), format, migrations, dir).await
}

async fn run_with(
    client: &Client,
    tracing: Tracing<'_>,
    format: Format,
    migrations: &[&Migration],
    dir: Direction,
) -> Result<Vec<FileRun>> {
    ensure_history(client, format).await?;
    let mut runs = Vec::new();
    for m in migrations {
        let script = match dir {
            Direction::Up => &m.up,
            Direction::Down => m.down.as_ref().expect("down script"),
        };
        let run = run_file(client, tracing, format, m, script, dir).await?;
        let failed = run.failure.is_some();
        runs.push(run);
        if failed {
            break;
        }
    }
    Ok(runs)
}

async fn run_file(
    client: &Client,
    tracing: Tracing<'_>,
    format: Format,
    m: &Migration,
    script: &Script,
    dir: Direction,
) -> Result<FileRun> {
    let mode = mode_of(format, m, script);
    let stmts = split::split(&script.sql);
    let started = Instant::now();
    let mut run = FileRun {
        version: m.version.clone(),
        file: script.file.clone(),
        mode,
        ms: 0.0,
        statements: Vec::new(),
        failure: None,
        history_note: None,
    };
    if format == Format::GolangMigrate && dir == Direction::Up {
        client
            .batch_execute(&format!(
                "BEGIN; DELETE FROM schema_migrations; INSERT INTO schema_migrations VALUES ({}, true); COMMIT",
                m.version
            ))
            .await?;
    }
    let whole = Statement {
        sql: script.sql.trim().to_string(),
        line: stmts.first().map(|s| s.line).unwrap_or(1),
    };
    let (traced, observer) = match tracing {
        Tracing::Off => (false, None),
        Tracing::On(observer) => (true, observer),
    };
    match mode {
        Mode::SingleQuery => {
            if let Err(e) = client.batch_execute(&script.sql).await {
                let mut f = failure(&e, &whole, script, true);
                if traced {
                    f.diagnosis = Some(super::rules::migration_error::diagnose(client, &f).await);
                }
                run.failure = Some(f);
            }
        }
        Mode::Autocommit => {
            let pid: i32 = match observer {
                Some(_) => client
                    .query_one("SELECT pg_backend_pid()", &[])
                    .await?
                    .get(0),
                None => 0,
            };
            for s in &stmts {
                // Outside a transaction only the observer sees the locks.
                let before = match observer {
                    Some(_) => Some(state(client).await?),
                    None => None,
                };
                let t0 = Instant::now();
                let (res, seen) = match observer {
                    Some(obs) => observe(client, obs, pid, &s.sql).await,
                    None => (client.batch_execute(&s.sql).await, Vec::new()),
                };
                let mut t = StatementTrace {
                    line: s.line + script.first_line - 1,
                    sql: s.sql.clone(),
                    ms: t0.elapsed().as_secs_f64() * 1e3,
                    ..Default::default()
                };
                if let (Some(before), true) = (before, res.is_ok()) {
                    let mut after = state(client).await?;
                    for (oid, mode) in seen {
                        if let Some(r) = after.get_mut(&oid)
                            && !r.locks.contains(&mode)
                        {
                            r.locks.push(mode);
                        }
                    }
                    diff_state(&before, &after, &mut t);
                    t.traced = true;
                }
                run.statements.push(t);
                if let Err(e) = res {
                    let mut f = failure(&e, s, script, false);
                    if traced {
                        f.diagnosis =
                            Some(super::rules::migration_error::diagnose(client, &f).await);
                    }
                    run.failure = Some(f);
                    break;
                }
            }
        }
        Mode::Transaction if !traced => {
            client.batch_execute("BEGIN").await?;
            for s in &stmts {
                let t0 = Instant::now();
                let res = client.batch_execute(&s.sql).await;
                run.statements.push(StatementTrace {
                    line: s.line + script.first_line - 1,
                    sql: s.sql.clone(),
                    ms: t0.elapsed().as_secs_f64() * 1e3,
                    ..Default::default()
                });
                if let Err(e) = res {
                    client.batch_execute("ROLLBACK").await?;
                    run.failure = Some(failure(&e, s, script, false));
                    break;
                }
            }
            if run.failure.is_none() {
                let ms = started.elapsed().as_secs_f64() * 1e3;
                run.history_note =
                    record_history(client, format, &history_sql(format, m, dir, ms)).await?;
                client.batch_execute("COMMIT").await?;
            }
        }
        Mode::Transaction => {
            client.batch_execute("BEGIN").await?;
            let mut before = state(client).await?;
            for s in &stmts {
                client.batch_execute("SAVEPOINT ward_statement").await?;
                let t0 = Instant::now();
                let res = client.batch_execute(&s.sql).await;
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                if let Err(e) = res {
                    // Diagnose on the state just before the statement, then roll back the file.
                    let mut f = failure(&e, s, script, false);
                    if client
                        .batch_execute("ROLLBACK TO SAVEPOINT ward_statement")
                        .await
                        .is_ok()
                    {
                        f.diagnosis =
                            Some(super::rules::migration_error::diagnose(client, &f).await);
                    }
                    client.batch_execute("ROLLBACK").await?;
                    run.failure = Some(f);
                    break;
                }
                let after = state(client).await?;
                let mut t = StatementTrace {
                    line: s.line + script.first_line - 1,
                    sql: s.sql.clone(),
                    ms,
                    traced: true,
                    ..Default::default()
                };
                diff_state(&before, &after, &mut t);
                run.statements.push(t);
                before = after;
            }
            if run.failure.is_none() {
                let ms = started.elapsed().as_secs_f64() * 1e3;
                run.history_note =
                    record_history(client, format, &history_sql(format, m, dir, ms)).await?;
                client.batch_execute("COMMIT").await?;
            }
        }
    }
    run.ms = started.elapsed().as_secs_f64() * 1e3;
    if run.failure.is_none() && mode != Mode::Transaction {
        client.batch_execute("BEGIN").await?;
        run.history_note =
            record_history(client, format, &history_sql(format, m, dir, run.ms)).await?;
        client.batch_execute("COMMIT").await?;
    }
    Ok(run)
}

/// Records a history row inside the open transaction, like the runner.
/// Projects may guard the table against other tools (Lemmy's trigger lets
/// only its own runner write diesel's table), and their runner gets past
/// that guard: ward then writes with triggers off, which needs a superuser.
/// If even that is refused the migration still counts as run and the next
/// one goes on; the returned note says why the row is missing.
async fn record_history(client: &Client, format: Format, sql: &str) -> Result<Option<String>> {
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
