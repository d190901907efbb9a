//! Before a seed by spec writes anything: the spec's tables must be empty,
//! or with `--truncate` are emptied — by `TRUNCATE … CASCADE`, which also
//! empties every table referencing them, transitively; when one of those
//! outside the spec holds rows, the user must agree first.

use anyhow::{Context, Result};
use tokio_postgres::Transaction;

use super::plan::Plan;
use crate::error::UsageError;

/// Asks whether to go on (`--yes` answers in advance); an error when no one can be asked.
pub(crate) type Confirm<'a> = &'a dyn Fn(&str) -> Result<bool>;

/// Empties the seeded tables (with `truncate`) or refuses if any holds rows.
/// `TRUNCATE … CASCADE` also empties every table that references them,
/// transitively: when one of those outside the spec holds rows, `confirm`
/// must agree first (nothing is emptied otherwise).
pub(crate) async fn prepare(
    tx: &Transaction<'_>,
    plan: &Plan,
    truncate: bool,
    confirm: Confirm<'_>,
) -> Result<()> {
    let names: Vec<String> = plan
        .tables
        .iter()
        .map(|tp| plan.schema.tables[tp.t].sql_name())
        .collect();
    if truncate {
        if !names.is_empty() {
            let mut losing = Vec::new();
            for t in cascade_reach(plan) {
                let table = &plan.schema.tables[t];
                let has_rows: bool = tx
                    .query_one(
                        &format!("SELECT EXISTS (SELECT 1 FROM {})", table.sql_name()),
                        &[],
                    )
                    .await?
                    .get(0);
                if has_rows {
                    losing.push(table.qualified());
                }
            }
            if !losing.is_empty() {
                let list = losing.join(", ");
                let refused = || {
                    UsageError(format!(
                        "--truncate would also empty {list} (they hold rows and reference the spec's tables, so TRUNCATE … CASCADE reaches them) — pass --yes to empty them too, or seed without --truncate"
                    ))
                };
                let question = format!(
                    "--truncate also empties {list}: they hold rows and reference the spec's tables (TRUNCATE … CASCADE). Empty them too?"
                );
                match confirm(&question) {
                    Ok(true) => tracing::warn!("--truncate also empties {list} (CASCADE)"),
                    Ok(false) | Err(_) => return Err(refused().into()),
                }
            }
            // ONLY: tables that inherit from a seeded one are tables of their
            // own (in the spec or not), never emptied along with their parent.
            // A partitioned table's rows are in its partitions, so it is
            // emptied whole (Postgres refuses ONLY there).
            let mut only = Vec::with_capacity(names.len());
            for name in &names {
                let partitioned: bool = tx
                    .query_one(
                        "SELECT relkind = 'p' FROM pg_class WHERE oid = $1::text::regclass",
                        &[name],
                    )
                    .await?
                    .get(0);
                only.push(if partitioned {
                    name.clone()
                } else {
                    format!("ONLY {name}")
                });
            }
            tx.batch_execute(&format!("TRUNCATE {} CASCADE", only.join(", ")))
                .await
                .context("emptying the spec's tables")?;
        }
        return Ok(());
    }
    for (tp, name) in plan.tables.iter().zip(&names) {
        let has_rows: bool = tx
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {name})"), &[])
            .await?
            .get(0);
        if has_rows {
            return Err(UsageError(format!(
                "{} already holds rows — add --truncate to replace the rows of the spec's tables, or skip it in the spec",
                plan.schema.tables[tp.t].qualified()
            ))
            .into());
        }
    }
    Ok(())
}

/// The tables outside the seeded set that `TRUNCATE … CASCADE` of the seeded
/// tables empties: every table referencing one that is emptied, transitively
/// (by constraints Postgres enforces; a spec's `ref` does not cascade).
fn cascade_reach(plan: &Plan) -> Vec<usize> {
    let n = plan.schema.tables.len();
    let mut emptied: Vec<bool> = (0..n).map(|t| plan.index.contains_key(&t)).collect();
    loop {
        let more: Vec<usize> = (0..n)
            .filter(|t| !emptied[*t])
            .filter(|t| {
                plan.schema.tables[*t]
                    .foreign_keys
                    .iter()
                    .any(|f| f.enforced && emptied[f.ref_table])
            })
            .collect();
        if more.is_empty() {
            break;
        }
        for t in more {
            emptied[t] = true;
        }
    }
    (0..n)
        .filter(|t| emptied[*t] && !plan.index.contains_key(t))
        .collect()
}
