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

mod history_rows;
mod trace;

pub use history_rows::{Applied, applied, ensure_history};
use history_rows::{history_sql, record_history};
use trace::observe;
pub(crate) use trace::{Rel, diff_state, state};

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
        Mode::Transaction => {
            client.batch_execute("BEGIN").await?;
            // Traced: the relations' state around every statement, and a
            // savepoint before it to diagnose a failure on.
            let mut before = match traced {
                true => Some(state(client).await?),
                false => None,
            };
            for s in &stmts {
                if traced {
                    client.batch_execute("SAVEPOINT ward_statement").await?;
                }
                let t0 = Instant::now();
                let res = client.batch_execute(&s.sql).await;
                let mut t = StatementTrace {
                    line: s.line + script.first_line - 1,
                    sql: s.sql.clone(),
                    ms: t0.elapsed().as_secs_f64() * 1e3,
                    ..Default::default()
                };
                if let Err(e) = res {
                    let mut f = failure(&e, s, script, false);
                    if !traced {
                        // Untraced runs list the failing statement too.
                        run.statements.push(t);
                    } else if client
                        .batch_execute("ROLLBACK TO SAVEPOINT ward_statement")
                        .await
                        .is_ok()
                    {
                        // Diagnosed on the state just before the statement.
                        f.diagnosis =
                            Some(super::rules::migration_error::diagnose(client, &f).await);
                    }
                    client.batch_execute("ROLLBACK").await?;
                    run.failure = Some(f);
                    break;
                }
                if let Some(before) = before.as_mut() {
                    let after = state(client).await?;
                    diff_state(before, &after, &mut t);
                    t.traced = true;
                    *before = after;
                }
                run.statements.push(t);
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
