//! Django migrations run through ward's runner script (`django_migrate.py`
//! in `manage.py shell`): `migrate APP TARGET` as Django runs it, with every
//! SQL statement the migration's operations execute recorded by a
//! `connection.execute_wrapper` (its operation, SQL with parameters, time,
//! rows, error), so a finding inside a `RunPython` points at the migration,
//! the operation's line and the statement. Locks are not seen: they are taken
//! in Django's session, not ward's.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Result;
use serde::Deserialize;
use tokio_postgres::Client;

use super::apply::{self, FileRun, Mode, StatementTrace};
use super::django::{MESSAGE_CHARS, Step, new_run};
use super::names::resolve;
use crate::django::{Project, shorten};

/// The script that runs `migrate APP TARGET` and records every statement (`django_migrate.py`).
const MIGRATE_SCRIPT: &str = include_str!("../django_migrate.py");

/// A migration with `RunPython`, applied by `manage.py migrate APP NAME`
/// in ward's runner script: each statement it executed is a trace entry
/// (the operation's line, the SQL with its parameters, the rows it touched);
/// on failure, the run's failure is the failing statement and the second
/// value the whole output.
pub(super) async fn run_command(
    project: &Project,
    step: &Step,
    client: &Client,
    url: &str,
    zone: Option<&str>,
) -> Result<(FileRun, Option<String>)> {
    let mode = if step.atomic {
        Mode::Transaction
    } else {
        Mode::Autocommit
    };
    let mut run = new_run(step, mode);
    let before = apply::state(client).await?;
    let started = Instant::now();
    let done = migrate(project, url, &[(step.app.clone(), step.name.clone())], zone).await?;
    run.ms = started.elapsed().as_secs_f64() * 1e3;
    let version = format!("{}.{}", step.app, step.name);
    let executed: &[Executed] = done
        .runs
        .iter()
        .find(|r| r.version == version && r.direction == "up")
        .map_or(&[][..], |r| r.statements.as_slice());
    let shown = format!("python manage.py migrate {} {}", step.app, step.name);
    if let Some(output) = &done.output {
        let failed = executed.iter().rev().find(|e| e.error.is_some());
        let (describe, line) = step.operation_at(
            failed.and_then(|e| e.op),
            failed.map_or("", |e| e.sql.as_str()),
        );
        run.failure = Some(apply::Failure {
            sqlstate: failed.and_then(|e| e.sqlstate.clone()).unwrap_or_default(),
            message: shorten(&crate::django::last_error_line(output, ""), MESSAGE_CHARS),
            detail: None,
            hint: None,
            line,
            statement: match failed {
                Some(e) => format!("{}  -- {describe}", e.sql.trim_end()),
                None => shown,
            },
            table: None,
            column: None,
            constraint: None,
            diagnosis: None,
        });
        return Ok((run, Some(output.clone())));
    }
    let after = apply::state(client).await?;
    let mut whole = StatementTrace::default();
    apply::diff_state(&before, &after, &mut whole);
    run.statements = executed.iter().map(|e| step.trace(e, &after)).collect();
    if run.statements.is_empty() {
        // Python that executed no SQL: the command stands for its trace.
        let (describe, line) = step.operation_at(None, "");
        run.statements.push(StatementTrace {
            line,
            sql: format!("{shown}  -- {describe}"),
            ms: run.ms,
            ..Default::default()
        });
    }
    spread(whole, &after, &mut run.statements);
    Ok((run, None))
}

/// The runner script's answer: its work, or its refusal to touch a
/// database that is not ward's scratch copy.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Reply {
    Refused { refused: String },
    Done(Migrated),
}

/// What the runner script reports.
#[derive(Debug, Deserialize)]
pub(super) struct Migrated {
    pub(super) runs: Vec<MigratedRun>,
    /// The traceback of the failure that stopped it, if one did.
    pub(super) output: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct MigratedRun {
    pub(super) version: String,
    /// `up` or `down`.
    pub(super) direction: String,
    pub(super) statements: Vec<Executed>,
    pub(super) error: Option<MigrateError>,
}

#[derive(Debug, Deserialize)]
pub(super) struct MigrateError {
    #[serde(rename = "type")]
    pub(super) kind: String,
    pub(super) message: String,
}

/// One statement a migration executed.
#[derive(Debug, Deserialize)]
pub(super) struct Executed {
    /// The operation's index in the migration (None: SQL Django deferred to its end).
    pub(super) op: Option<usize>,
    /// The SQL with its placeholders (parameters are never recorded).
    pub(super) sql: String,
    /// How many times it ran (a loop of `.save()` is one entry).
    #[serde(default)]
    count: u64,
    ms: f64,
    rows: Option<i64>,
    pub(super) error: Option<String>,
    sqlstate: Option<String>,
}

/// `migrate APP TARGET` for each target in turn (under `zone` when given),
/// in one Python process, stopping at the first failure. Statements and
/// outputs come back redacted.
pub(super) async fn migrate(
    project: &Project,
    url: &str,
    targets: &[(String, String)],
    zone: Option<&str>,
) -> Result<Migrated> {
    let database = crate::pg::parse_url(url)?
        .get_dbname()
        .unwrap_or("postgres")
        .to_string();
    let config =
        serde_json::json!({ "targets": targets, "tz": zone, "database": database }).to_string();
    // A JSON string is a Python string literal too.
    let script = format!(
        "WARD = {}\n{MIGRATE_SCRIPT}",
        serde_json::Value::String(config)
    );
    let reply: Reply = project.shell_json(&script, url).await?;
    let mut done = match reply {
        Reply::Done(d) => d,
        Reply::Refused { refused } => {
            return Err(crate::error::UsageError(format!(
                "the Django project connects to database {refused:?}, not to ward's scratch copy {database:?} — its settings must take the database from DATABASE_URL (ward never migrates a database it did not make)"
            ))
            .into());
        }
    };
    for r in &mut done.runs {
        for e in &mut r.statements {
            e.sql = crate::redact::text(&e.sql);
            e.error = e.error.as_deref().map(crate::redact::text);
        }
        if let Some(e) = &mut r.error {
            e.message = crate::redact::text(&e.message);
        }
    }
    done.output = done.output.as_deref().map(crate::redact::text);
    Ok(done)
}

impl Step {
    /// The description and line of operation `op` (None: SQL Django
    /// deferred to the end — the operation that made its column, else the
    /// last one; a RunPython first when it is not known).
    fn operation_at(&self, op: Option<usize>, sql: &str) -> (String, usize) {
        if op.is_none()
            && let Some(owner) = super::django_deferred::owner(&self.operations, sql)
        {
            return super::django_deferred::blame(&self.operations, owner);
        }
        let found = match op {
            Some(i) => self.operations.get(i),
            None if self.python => self
                .operations
                .iter()
                .find(|(d, _, _)| d.contains("Python") || d.contains("python")),
            None => self.operations.last(),
        };
        found
            .or(self.operations.last())
            .map(|(d, l, _)| (d.clone(), *l))
            .unwrap_or_else(|| ("RunPython".into(), 1))
    }

    /// A statement the runner script recorded, as a trace entry: its rows
    /// updated or deleted are counted on the table it names.
    fn trace(&self, e: &Executed, rels: &HashMap<u32, apply::Rel>) -> StatementTrace {
        let (describe, line) = self.operation_at(e.op, &e.sql);
        let mut t = StatementTrace {
            line,
            sql: match e.count {
                0 | 1 => format!("{}  -- {describe}", e.sql.trim_end()),
                n => format!("{}  -- {describe} (×{n})", e.sql.trim_end()),
            },
            ms: e.ms,
            ..Default::default()
        };
        if let (Some((deleted, table)), Some(rows)) = (dml_target(&e.sql), e.rows)
            && rows > 0
            && let Some(oid) = table_oid(rels, &table)
        {
            match deleted {
                true => t.deleted.insert(oid, rows),
                false => t.updated.insert(oid, rows),
            };
        }
        t
    }
}

/// The table an UPDATE or DELETE writes to, and whether it deletes.
fn dml_target(sql: &str) -> Option<(bool, String)> {
    static DML: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"(?is)^\s*(update|delete\s+from)\s+((?:"[^"]+"|[\w$]+)(?:\s*\.\s*(?:"[^"]+"|[\w$]+))?)"#)
            .unwrap()
    });
    let c = DML.captures(sql)?;
    Some((c[1].to_lowercase().starts_with("delete"), c[2].to_string()))
}

/// The table an UPDATE or DELETE names, among `rels` (names as Postgres
/// quotes them): with a schema, that schema's table — two schemas may hold
/// tables of the same name; without one, the only table of that name, or
/// the one in `public` (Django's default search path).
fn table_oid(rels: &HashMap<u32, apply::Rel>, spelled: &str) -> Option<u32> {
    let (schema, name) = resolve(spelled);
    let found: Vec<(u32, Option<String>)> = rels
        .iter()
        .filter_map(|(o, r)| {
            let (s, n) = resolve(r.table_name()?);
            (n == name && (schema.is_none() || s == schema)).then_some((*o, s))
        })
        .collect();
    match found.as_slice() {
        [(o, _)] => Some(*o),
        _ => found
            .iter()
            .find(|(_, s)| s.as_deref() == Some("public"))
            .map(|(o, _)| *o),
    }
}

/// The changes seen from outside the migration's session (rewrites, new
/// indexes), each on the first statement naming the table, else the last one.
fn spread(whole: StatementTrace, rels: &HashMap<u32, apply::Rel>, traces: &mut [StatementTrace]) {
    let Some(last) = traces.len().checked_sub(1) else {
        return;
    };
    let on = |traces: &[StatementTrace], oid: u32| {
        rels.get(&oid)
            .and_then(|r| r.table_name())
            .and_then(|n| {
                let (schema, name) = resolve(n);
                let schema = schema.unwrap_or_else(|| "public".into());
                traces
                    .iter()
                    .position(|t| super::names::names_table(&t.sql, &schema, &name))
            })
            .unwrap_or(last)
    };
    for oid in whole.rewritten {
        let i = on(traces, oid);
        traces[i].rewritten.push(oid);
    }
    for oid in whole.indexed {
        let i = on(traces, oid);
        traces[i].indexed.push(oid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_and_deletes_name_their_table_as_postgres_would() {
        assert_eq!(
            dml_target("DELETE FROM \"records_patient\" WHERE id IN (1)"),
            Some((true, "\"records_patient\"".to_string()))
        );
        assert_eq!(
            dml_target("  update public.t SET a = 1"),
            Some((false, "public.t".to_string()))
        );
        assert_eq!(dml_target("SELECT 1 FROM t"), None);
    }

    #[test]
    fn updates_count_on_the_table_of_their_schema() {
        let rel = |name: &str| apply::Rel::named(name);
        let rels: HashMap<u32, apply::Rel> = [
            (1, rel("public.events")),
            (2, rel("audit.events")),
            (3, rel("public.\"T\"")),
        ]
        .into();
        assert_eq!(table_oid(&rels, "audit.events"), Some(2));
        assert_eq!(table_oid(&rels, "\"audit\".\"events\""), Some(2));
        assert_eq!(table_oid(&rels, "public.events"), Some(1));
        assert_eq!(table_oid(&rels, "events"), Some(1));
        assert_eq!(table_oid(&rels, "\"T\""), Some(3));
        assert_eq!(table_oid(&rels, "T"), None);
        assert_eq!(table_oid(&rels, "other.events"), None);
    }
}
