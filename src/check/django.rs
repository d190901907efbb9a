//! `ward check --runner django`: Django's own migration runner decides what
//! is pending and in which order (`manage.py showmigrations --plan` on the
//! clone), and each pending migration is applied on its own, so every finding
//! is blamed on its migration file (`records/migrations/0007_drop_fax.py`,
//! the string the report prints and `ward-accept.toml` matches) and operation.
//!
//! A migration without `RunPython` runs as the SQL `manage.py sqlmigrate`
//! prints for it, statement by statement in one transaction (as Django runs
//! it), traced like any SQL migration, and recorded in `django_migrations` as
//! Django would. A migration with `RunPython` runs through `manage.py migrate
//! APP NAME`; the relations' state before and after stands for its trace, and
//! if it fails its whole output is kept (JSON `findings[].output`) while the
//! message holds only the error line.
//!
//! `manage.py migrate` runs inside ward's runner script (`django_migrate.py`),
//! which records every SQL statement a migration's operations execute (a
//! `connection.execute_wrapper`): a failure or a deleted row inside a
//! `RunPython` points at the statement that did it, not only at the file.
//! The same script migrates apps back for the down round trip
//! ([`super::django_roundtrip`]) and runs the migrations under another
//! TimeZone for the time-zone variant.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Result;
use serde::Deserialize;
use tokio_postgres::Client;

use super::apply::{self, FileRun, Mode, StatementTrace};
use super::migrations::{Migration, Script};
use super::report::Finding;
use super::rule::Rule;
use super::split::{self, Statement};
use crate::django::{Project, shorten};
use crate::error::UsageError;

/// The script that describes every migration file (`django_plan.py`).
const PLAN_SCRIPT: &str = include_str!("../django_plan.py");

/// The longest error line a message holds; the full output is in JSON.
pub(super) const MESSAGE_CHARS: usize = 240;

#[derive(Debug, Clone, Deserialize)]
struct FileFacts {
    file: String,
    atomic: bool,
    #[serde(default)]
    replaces: Vec<(String, String)>,
    operations: Vec<Operation>,
}

#[derive(Debug, Clone, Deserialize)]
struct Operation {
    class: String,
    describe: String,
    python: bool,
    /// Whether Django can unapply it (a RunPython / RunSQL needs a reverse).
    #[serde(default = "yes")]
    reversible: bool,
}

fn yes() -> bool {
    true
}

/// One pending migration, ready to run.
#[derive(Debug, Clone)]
pub(super) struct Step {
    pub(super) app: String,
    pub(super) name: String,
    pub(super) file: String,
    pub(super) atomic: bool,
    /// The migrations it replaces (a squashed or renamed one): Django's
    /// history records those names instead of its own.
    replaces: Vec<(String, String)>,
    pub(super) python: bool,
    /// Whether an operation runs Python or raw SQL (either may depend on the zone).
    opaque_sql: bool,
    /// Whether Django can unapply it: every operation has a reverse.
    reversible: bool,
    /// Where `migrate APP PREV` takes the app to undo this migration
    /// (its app's migration before it, or `zero`).
    pub(super) prev: String,
    /// Per operation: its description, its line in the file, its statements.
    pub(super) operations: Vec<(String, usize, Vec<Statement>)>,
    /// Its SQL is printed again just before it runs, on the state the
    /// migrations before it leave: `sqlmigrate` reads the live schema for the
    /// names of constraints and indexes it drops, so SQL printed before the
    /// window is wrong (or fails: "Found wrong number (0) of constraints")
    /// where an earlier pending migration creates or changes its tables.
    print_late: bool,
    /// The operations printed late, kept for the clone's later runs (the
    /// round trip re-applies the same migrations on the same schema).
    printed: std::sync::Arc<std::sync::Mutex<Option<Operations>>>,
}

/// Per operation: its description, its line in the file, its statements.
pub(super) type Operations = Vec<(String, usize, Vec<Statement>)>;

/// The pending migrations, in Django's order.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(super) steps: Vec<Step>,
    /// The same, as ward's migrations (for the report and the risk model).
    pub pending: Vec<Migration>,
    /// Each app the window touches and its migration before the window
    /// (or `zero`), newest app first: `migrate APP PREV` in this order undoes the window.
    pub(super) before_window: Vec<(String, String)>,
}

/// The output of a failed `migrate`, kept for the JSON report.
pub(crate) type Outputs = Vec<(String, String)>;

impl Plan {
    /// Whether some pending migration runs Python (its SQL is not known beforehand).
    pub(crate) fn opaque(&self) -> bool {
        self.steps.iter().any(|s| s.python)
    }

    /// Whether Django can unapply every pending migration — the Django
    /// counterpart of "every pending SQL migration has a down file", which
    /// turns the round trip on by default.
    pub(crate) fn reversible(&self) -> bool {
        self.steps.iter().all(|s| s.reversible)
    }

    /// Whether the migrations can depend on the session TimeZone: their
    /// `sqlmigrate` SQL reads like it, or a `RunPython` / `RunSQL` could.
    pub(crate) fn zone_dependent(&self) -> bool {
        self.steps.iter().any(|s| s.opaque_sql)
            || super::variance::time_related(
                &self
                    .pending
                    .iter()
                    .map(|m| m.up.sql.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
    }
}

/// Lists the migrations Django would apply to the database at `url`.
pub(crate) async fn plan(project: &Project, url: &str) -> Result<Plan> {
    let listed = project
        .manage(&["showmigrations", "--plan", "--no-color"], url)
        .await?;
    let (pending, mut last) = listed_plan(&listed.stdout);
    let facts: HashMap<String, FileFacts> = project.shell_json(PLAN_SCRIPT, url).await?;
    let mut plan = Plan {
        steps: Vec::new(),
        pending: Vec::new(),
        before_window: Vec::new(),
    };
    let mut apps: Vec<(String, String)> = Vec::new();
    // Tables the window's earlier migrations change; None once a migration
    // ran Python (which may change any).
    let mut changed: Option<std::collections::HashSet<String>> = Some(Default::default());
    for (app, name) in pending {
        let prev = last
            .insert(app.clone(), name.clone())
            .unwrap_or_else(|| "zero".into());
        apps.retain(|(a, _)| *a != app);
        let before = plan
            .steps
            .iter()
            .find(|s| s.app == app)
            .map_or(prev.clone(), |s| s.prev.clone());
        apps.push((app.clone(), before));
        let version = format!("{app}.{name}");
        let f = facts.get(&version).ok_or_else(|| {
            UsageError(format!(
                "showmigrations lists {version}, which Django's migration loader does not know — check the project's INSTALLED_APPS"
            ))
        })?;
        let source = std::fs::read_to_string(project.dir.join(&f.file)).unwrap_or_default();
        let lines = operation_lines(&source, &f.operations);
        let python = f.operations.iter().any(|o| o.python);
        // Printed on the state before the window; a failure here is not
        // the migration's (it may need what an earlier one creates).
        let printed = if python {
            None
        } else {
            let out = project.run(&["sqlmigrate", &app, &name], url).await?;
            out.success.then_some(out.stdout)
        };
        let sql = printed.clone().unwrap_or_default();
        let tables = tables_named(&sql);
        let print_late = !python
            && (printed.is_none()
                || changed
                    .as_ref()
                    .is_none_or(|c| tables.iter().any(|t| c.contains(t))));
        // A migration whose SQL is not known yet (Python, or not printable
        // before the window) may change any table.
        match (&mut changed, python || printed.is_none()) {
            (Some(c), false) => c.extend(tables),
            _ => changed = None,
        }
        let heads: Vec<(String, usize)> = f
            .operations
            .iter()
            .zip(&lines)
            .map(|(o, l)| (o.describe.clone(), *l))
            .collect();
        let blocks = blocks(&sql);
        let operations = operations_of(blocks.clone(), &heads);
        plan.pending.push(Migration {
            version: version.clone(),
            key: Default::default(),
            description: name.clone(),
            up: Script {
                file: f.file.clone(),
                sql: blocks.join("\n"),
                first_line: 1,
            },
            down: None,
            no_tx: !f.atomic,
            checksum: None,
        });
        plan.steps.push(Step {
            app,
            name,
            file: f.file.clone(),
            atomic: f.atomic,
            replaces: f.replaces.clone(),
            python,
            // SQL not printable before the window is not known to be zone-free.
            opaque_sql: printed.is_none()
                || f.operations.iter().any(|o| o.python || o.class == "RunSQL"),
            reversible: f.operations.iter().all(|o| o.reversible),
            prev,
            operations,
            print_late,
            printed: Default::default(),
        });
    }
    apps.reverse();
    plan.before_window = apps;
    Ok(plan)
}

/// `showmigrations --plan`: the pending migrations in order, and each
/// app's last applied migration.
fn listed_plan(stdout: &str) -> (Vec<(String, String)>, HashMap<String, String>) {
    let mut pending = Vec::new();
    let mut last = HashMap::new();
    for l in stdout.lines() {
        let l = l.trim();
        let (applied, rest) = match (l.strip_prefix("[X]"), l.strip_prefix("[ ]")) {
            (Some(r), _) => (true, r),
            (_, Some(r)) => (false, r),
            _ => continue,
        };
        let Some((app, name)) = rest
            .split_whitespace()
            .next()
            .and_then(|m| m.split_once('.'))
        else {
            continue;
        };
        if applied {
            last.insert(app.to_string(), name.to_string());
        } else {
            pending.push((app.to_string(), name.to_string()));
        }
    }
    (pending, last)
}

/// The line of each operation in the migration file: the next `Class(` after
/// the previous operation (1 when not found).
fn operation_lines(source: &str, ops: &[Operation]) -> Vec<usize> {
    let mut at = source.find("operations").unwrap_or(0);
    ops.iter()
        .map(|o| match source[at..].find(&format!("{}(", o.class)) {
            Some(p) => {
                at += p + o.class.len();
                source[..at].matches('\n').count() + 1
            }
            None => 1,
        })
        .collect()
}

/// `sqlmigrate`'s [`blocks`] as each operation's statements (`heads`: each
/// operation's description and line); SQL ward could not match to an
/// operation stays with the last one.
fn operations_of(mut blocks: Vec<String>, heads: &[(String, usize)]) -> Operations {
    let ops = heads.len().max(1);
    if blocks.len() > ops {
        let rest = blocks.split_off(ops).concat();
        blocks[ops - 1].push_str(&rest);
    }
    heads
        .iter()
        .enumerate()
        .map(|(i, (describe, line))| {
            let stmts = blocks.get(i).map(|b| split::split(b)).unwrap_or_default();
            (describe.clone(), *line, stmts)
        })
        .collect()
}

/// The tables `sqlmigrate`'s SQL names (Django quotes every one of them).
fn tables_named(sql: &str) -> Vec<String> {
    static TABLE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r#"(?i)\b(?:TABLE|ON|REFERENCES|INTO|UPDATE|FROM|JOIN)\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"([^"]+)""#,
        )
        .expect("a valid pattern")
    });
    TABLE.captures_iter(sql).map(|c| c[1].to_string()).collect()
}

/// `sqlmigrate`'s output cut into one block per operation (each starts with
/// a `--` / `-- description` / `--` header), without BEGIN / COMMIT.
fn blocks(sql: &str) -> Vec<String> {
    let lines: Vec<&str> = sql.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim();
        if l == "--"
            && lines.get(i + 2).is_some_and(|n| n.trim() == "--")
            && lines.get(i + 1).is_some_and(|n| n.starts_with("-- "))
        {
            out.push(String::new());
            i += 3;
            continue;
        }
        if !(l.eq_ignore_ascii_case("BEGIN;") || l.eq_ignore_ascii_case("COMMIT;")) {
            if out.is_empty() {
                out.push(String::new());
            }
            let b = out.last_mut().unwrap();
            b.push_str(lines[i]);
            b.push('\n');
        }
        i += 1;
    }
    out
}

/// Applies the plan in order, stopping at the first failure. Returns a run
/// per migration and the full output of a failed `migrate`. With `zone`,
/// Python runs under that TimeZone (the caller set `client`'s session zone).
pub(crate) async fn apply(
    project: &Project,
    plan: &Plan,
    client: &Client,
    url: &str,
    zone: Option<&str>,
) -> Result<(Vec<FileRun>, Outputs)> {
    apply_steps(project, &plan.steps, client, url, zone).await
}

pub(super) async fn apply_steps(
    project: &Project,
    steps: &[Step],
    client: &Client,
    url: &str,
    zone: Option<&str>,
) -> Result<(Vec<FileRun>, Outputs)> {
    let mut runs = Vec::new();
    let mut outputs = Vec::new();
    for step in steps {
        let printed = if step.print_late && !step.python {
            print_now(project, step, url).await?
        } else {
            None
        };
        let run = match printed {
            Some(s) => run_sql(&s, client).await?,
            None if step.python || step.print_late => {
                // Django cannot print it even now: `migrate` runs it (and
                // fails as it would, with its own output).
                let (run, output) =
                    super::django_trace::run_command(project, step, client, url, zone).await?;
                outputs.extend(output.map(|o| (step.file.clone(), o)));
                run
            }
            None => run_sql(step, client).await?,
        };
        let failed = run.failure.is_some();
        runs.push(run);
        if failed {
            break;
        }
    }
    Ok((runs, outputs))
}

/// `step` with its SQL printed on the state the migrations before it left
/// (kept for the later runs on this schema); None when `sqlmigrate` fails.
async fn print_now(project: &Project, step: &Step, url: &str) -> Result<Option<Step>> {
    let cached = step
        .printed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let operations = match cached {
        Some(ops) => ops,
        None => {
            let out = project
                .run(&["sqlmigrate", &step.app, &step.name], url)
                .await?;
            if !out.success {
                return Ok(None);
            }
            let heads: Vec<(String, usize)> = step
                .operations
                .iter()
                .map(|(d, l, _)| (d.clone(), *l))
                .collect();
            let ops = operations_of(blocks(&out.stdout), &heads);
            *step.printed.lock().unwrap_or_else(|e| e.into_inner()) = Some(ops.clone());
            ops
        }
    };
    Ok(Some(Step {
        operations,
        ..step.clone()
    }))
}

pub(super) fn new_run(step: &Step, mode: Mode) -> FileRun {
    FileRun {
        version: format!("{}.{}", step.app, step.name),
        file: step.file.clone(),
        mode,
        ms: 0.0,
        statements: Vec::new(),
        failure: None,
        history_note: None,
    }
}

/// One migration's `sqlmigrate` statements, traced one by one, and its
/// `django_migrations` row; in one transaction when Django would use one.
async fn run_sql(step: &Step, client: &Client) -> Result<FileRun> {
    let mode = if step.atomic {
        Mode::Transaction
    } else {
        Mode::Autocommit
    };
    let mut run = new_run(step, mode);
    let script = Script {
        file: step.file.clone(),
        sql: String::new(),
        first_line: 1,
    };
    let started = Instant::now();
    if step.atomic {
        client.batch_execute("BEGIN").await?;
    }
    let mut before = apply::state(client).await?;
    let last = step.operations.len().saturating_sub(1);
    'ops: for (i, (describe, line, stmts)) in step.operations.iter().enumerate() {
        for s in stmts {
            // What Django deferred to the end is blamed on the operation
            // that made its column, not on the last one.
            let (describe, line) = match (i == last)
                .then(|| super::django_deferred::owner(&step.operations, &s.sql))
                .flatten()
            {
                Some(owner) => super::django_deferred::blame(&step.operations, owner),
                None => (describe.clone(), *line),
            };
            let at = Statement {
                sql: s.sql.clone(),
                line,
            };
            if step.atomic {
                client.batch_execute("SAVEPOINT ward_statement").await?;
            }
            let t0 = Instant::now();
            let res = client.batch_execute(&s.sql).await;
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            if let Err(e) = res {
                let mut f = apply::failure(&e, &at, &script, false);
                let back = !step.atomic
                    || client
                        .batch_execute("ROLLBACK TO SAVEPOINT ward_statement")
                        .await
                        .is_ok();
                if back {
                    f.diagnosis = Some(super::rules::migration_error::diagnose(client, &f).await);
                }
                if step.atomic {
                    client.batch_execute("ROLLBACK").await?;
                }
                run.failure = Some(f);
                break 'ops;
            }
            let after = apply::state(client).await?;
            let mut t = StatementTrace {
                line,
                // The operation rides along as a trailing comment.
                sql: format!("{}  -- {describe}", s.sql.trim_end()),
                ms,
                traced: true,
                ..Default::default()
            };
            apply::diff_state(&before, &after, &mut t);
            run.statements.push(t);
            before = after;
        }
    }
    if run.failure.is_none() {
        // As Django's executor records it: a migration that replaces others
        // is recorded under their names (recorded under its own, Django
        // took it for unapplied and ran it again: django-oscar's
        // order.0009_surcharge, which replaces 0008_surcharge).
        let own = [(step.app.clone(), step.name.clone())];
        let names = if step.replaces.is_empty() {
            &own[..]
        } else {
            &step.replaces[..]
        };
        for (app, name) in names {
            client
                .execute(
                    "INSERT INTO django_migrations (app, name, applied) VALUES ($1, $2, now())",
                    &[app, name],
                )
                .await?;
        }
        if step.atomic {
            client.batch_execute("COMMIT").await?;
        }
    }
    run.ms = started.elapsed().as_secs_f64() * 1e3;
    Ok(run)
}

/// Gives the `migration-error` finding of a failed `migrate` a short
/// message and the command's whole output (JSON only).
pub(crate) fn attach_outputs(findings: &mut [Finding], outputs: &Outputs) {
    for (file, output) in outputs {
        for f in findings
            .iter_mut()
            .filter(|f| f.rule == Rule::MigrationError && f.file.as_deref() == Some(file))
        {
            let first = output
                .lines()
                .map(str::trim)
                .rfind(|l| l.contains("Error") || l.contains("Exception"))
                .unwrap_or("");
            f.message = format!(
                "{file} fails on the data: {}{} (the whole output of `python manage.py migrate` is in the JSON report, findings[].output)",
                shorten(first, MESSAGE_CHARS),
                if output.lines().count() > 1 {
                    " …"
                } else {
                    ""
                },
            );
            f.output = Some(output.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlmigrate_output_is_cut_per_operation() {
        let sql = "BEGIN;\n--\n-- Rename field phone on patient to mobile\n--\nALTER TABLE \"p\" RENAME COLUMN \"phone\" TO \"mobile\";\n--\n-- Remove field fax from patient\n--\nALTER TABLE \"p\" DROP COLUMN \"fax\" CASCADE;\nCOMMIT;\n";
        let b = blocks(sql);
        assert_eq!(b.len(), 2);
        assert!(b[0].contains("RENAME COLUMN"));
        assert!(b[1].contains("DROP COLUMN") && !b[1].contains("COMMIT"));
    }

    #[test]
    fn the_plan_listing_gives_pending_migrations_and_each_apps_last_applied_one() {
        let out = "[X]  records.0001_initial\n[X]  records.0002_phone\n[ ]  records.0003_x\n[ ]  billing.0001_initial\n";
        let (pending, last) = listed_plan(out);
        assert_eq!(
            pending,
            vec![
                ("records".to_string(), "0003_x".to_string()),
                ("billing".to_string(), "0001_initial".to_string())
            ]
        );
        assert_eq!(last.get("records").map(String::as_str), Some("0002_phone"));
        assert!(!last.contains_key("billing"));
    }

    #[test]
    fn operations_are_found_in_the_file_in_order() {
        let src = "class Migration:\n    operations = [\n        migrations.RemoveField(\n            name='a'),\n        migrations.RemoveField(\n            name='b'),\n    ]\n";
        let op = |c: &str| Operation {
            class: c.into(),
            describe: String::new(),
            python: false,
            reversible: true,
        };
        assert_eq!(
            operation_lines(src, &[op("RemoveField"), op("RemoveField"), op("AddIndex")]),
            vec![3, 5, 1]
        );
    }
}
