//! Testing generated rows against the constraints ward cannot satisfy by
//! construction — CHECKs it cannot read (implications, `IS NOT NULL`
//! disjunctions, comparisons between columns) and partial unique indexes —
//! and regenerating the few rows that fail. The rows go to a staging table
//! first; Postgres evaluates the table's own CHECK expressions there, and the
//! failing rows are drawn again, deterministically: attempt k of row r draws
//! every column from streams keyed on (seed, table, row, column, k), and
//! which rows fail depends only on the rows themselves, so the result is the
//! same whatever the thread count.

use anyhow::{Context, Result};
use tokio_postgres::Transaction;

use super::plan::{ColPlan, Plan, TablePlan};
use super::schema::{self, Table};
use super::values;
use crate::error::UsageError;
use crate::pg::quote_ident;
use crate::seed::encode::{BINARY_HEADER, BINARY_TRAILER};

/// How many times a failing row is drawn again before ward gives up.
pub(crate) const ATTEMPTS: u32 = 64;

/// A constraint tested on the staged rows.
#[derive(Debug, Clone)]
pub(crate) enum RowTest {
    /// A CHECK: the rows where `expr` is false fail.
    Check { name: String, expr: String },
    /// A partial unique index: a row that repeats an earlier row's key among
    /// the rows `predicate` selects fails.
    Unique {
        columns: Vec<String>,
        predicate: String,
    },
}

impl RowTest {
    fn describe(&self) -> String {
        match self {
            RowTest::Check { name, expr } => format!("CHECK {name} {expr}"),
            RowTest::Unique { columns, predicate } => {
                format!("UNIQUE ({}) WHERE {predicate}", columns.join(", "))
            }
        }
    }

    /// The staged rows that break this test (`ward_row` numbers).
    fn failing_sql(&self) -> String {
        match self {
            RowTest::Check { expr, .. } => {
                format!("SELECT ward_row FROM ward_stage WHERE ({expr}) IS FALSE")
            }
            RowTest::Unique { columns, predicate } => {
                let not_null: Vec<String> = columns
                    .iter()
                    .map(|c| format!(" AND {c} IS NOT NULL"))
                    .collect();
                format!(
                    "SELECT ward_row FROM (SELECT ward_row, row_number() OVER (PARTITION BY {} ORDER BY ward_row) AS ward_n
                     FROM ward_stage WHERE ({predicate}){}) d WHERE ward_n > 1",
                    columns.join(", "),
                    not_null.join("")
                )
            }
        }
    }
}

/// Whether ward writes column `c` itself (so the staging table holds it).
fn written(tp: &TablePlan, c: usize) -> bool {
    matches!(
        tp.cols[c],
        ColPlan::Gen { .. }
            | ColPlan::Template { .. }
            | ColPlan::Fk {
                deferred: false,
                ..
            }
    )
}

/// The tests for one table: its CHECKs and partial unique indexes whose
/// columns ward writes (the others read defaults or SQL the server fills in
/// later, and are the database's to enforce).
pub(crate) fn row_tests(table: &Table, tp: &TablePlan) -> Vec<RowTest> {
    let mut tests = Vec::new();
    for check in &table.checks {
        let columns = if check.columns.is_empty() {
            schema::mentioned_columns(table, &check.expr)
        } else {
            check.columns.clone()
        };
        if !columns.is_empty() && columns.iter().all(|c| written(tp, *c)) {
            tests.push(RowTest::Check {
                name: check.name.clone(),
                expr: check.expr.clone(),
            });
        }
    }
    for (columns, predicate) in &table.partial_uniques {
        let read = schema::mentioned_columns(table, predicate);
        if columns.iter().chain(&read).all(|c| written(tp, *c)) {
            tests.push(RowTest::Unique {
                columns: columns
                    .iter()
                    .map(|c| quote_ident(&table.columns[*c].name))
                    .collect(),
                predicate: predicate.clone(),
            });
        }
    }
    tests
}

/// The constraints a key filled after the load (it broke a cycle) could
/// break: CHECKs and partial unique indexes that read one of `fk_cols`.
/// The first pass wrote NULL there, so they were not tested then.
pub(crate) fn deferred_tests(table: &Table, fk_cols: &[usize]) -> Vec<RowTest> {
    let reads_key = |cols: &[usize]| cols.iter().any(|c| fk_cols.contains(c));
    let mut tests = Vec::new();
    for check in &table.checks {
        let columns = if check.columns.is_empty() {
            schema::mentioned_columns(table, &check.expr)
        } else {
            check.columns.clone()
        };
        if reads_key(&columns) {
            tests.push(RowTest::Check {
                name: check.name.clone(),
                expr: check.expr.clone(),
            });
        }
    }
    for (columns, predicate) in &table.partial_uniques {
        let read = schema::mentioned_columns(table, predicate);
        if reads_key(columns) || reads_key(&read) {
            tests.push(RowTest::Unique {
                columns: columns
                    .iter()
                    .map(|c| quote_ident(&table.columns[*c].name))
                    .collect(),
                predicate: predicate.clone(),
            });
        }
    }
    tests
}

/// The `ward_row`s of `ward_stage` that break one of `tests`.
pub(crate) async fn failing_rows(tx: &Transaction<'_>, tests: &[RowTest]) -> Result<Vec<i64>> {
    let union: Vec<String> = tests.iter().map(RowTest::failing_sql).collect();
    let rows = tx
        .query(
            &format!(
                "SELECT DISTINCT ward_row FROM ({}) f ORDER BY 1",
                union.join(" UNION ALL ")
            ),
            &[],
        )
        .await
        .context("testing the generated rows against the table's constraints")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Tests the rows staged in `ward_stage` (columns `cols` plus `ward_row`)
/// and redraws the failing ones until none fails, or fails with a one-line
/// error naming the constraint after [`ATTEMPTS`] draws.
pub(crate) async fn settle(
    tx: &Transaction<'_>,
    plan: &Plan,
    ti: usize,
    cols: &[usize],
) -> Result<u64> {
    let tp = &plan.tables[ti];
    let table = &plan.schema.tables[tp.t];
    let mut redrawn = 0u64;
    let names: Vec<String> = cols
        .iter()
        .map(|c| quote_ident(&table.columns[*c].name))
        .collect();
    for attempt in 1..=ATTEMPTS {
        let failing = failing_rows(tx, &tp.row_tests).await?;
        if failing.is_empty() {
            return Ok(redrawn);
        }
        redrawn += failing.len() as u64;
        tx.execute(
            "DELETE FROM ward_stage WHERE ward_row = ANY($1)",
            &[&failing],
        )
        .await?;
        let mut buf = BINARY_HEADER.to_vec();
        for &row in &failing {
            buf.extend_from_slice(&(cols.len() as i16 + 1).to_be_bytes());
            for &c in cols {
                // A key that breaks a cycle is NULL until every table is loaded.
                let v = match tp.cols[c] {
                    ColPlan::Fk { deferred: true, .. } => values::Value::Null,
                    _ => plan.value_at(ti, row as u64, c, attempt),
                };
                values::encode(&mut buf, &v, &table.columns[c].ty).map_err(|e| {
                    UsageError(format!(
                        "{}.{}: {e}",
                        table.qualified(),
                        table.columns[c].name
                    ))
                })?;
            }
            values::encode(&mut buf, &values::Value::Int(row), &schema::PgType::Int8)
                .map_err(|e| anyhow::anyhow!(e))?;
        }
        buf.extend_from_slice(BINARY_TRAILER);
        let sink = tx
            .copy_in::<_, bytes::Bytes>(&format!(
                "COPY ward_stage ({}, ward_row) FROM STDIN (FORMAT binary)",
                names.join(", ")
            ))
            .await?;
        futures_util::pin_mut!(sink);
        futures_util::SinkExt::send(&mut sink, bytes::Bytes::from(buf)).await?;
        sink.as_mut().finish().await?;
    }
    for test in &tp.row_tests {
        let failing = failing_rows(tx, std::slice::from_ref(test)).await?;
        if let Some(row) = failing.first() {
            return Err(UsageError(format!(
                "{}: row {} still breaks {} after {ATTEMPTS} draws — give the columns it reads generators (or values) that satisfy it in the spec",
                table.qualified(),
                row + 1,
                test.describe()
            ))
            .into());
        }
    }
    Ok(redrawn)
}
