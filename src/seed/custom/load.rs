//! Loading a planned seed of the application's own tables: one transaction,
//! a binary COPY per table in dependency order (through a staging table when
//! a column is an SQL expression), the nullable foreign keys that broke a
//! cycle filled in a second pass (the DEFERRABLE ones that broke one are
//! deferred to the commit instead), and serial/identity sequences moved past
//! the ids ward set. What happens before (empty tables, `--truncate`) is in
//! `prepare`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use tokio_postgres::Transaction;

use super::plan::{ColPlan, Plan};
use super::schema::PgType;
use super::values::{self, Value};
use crate::error::UsageError;
use crate::pg::quote_ident;
use crate::progress::Progress;
use crate::seed::encode::{BINARY_HEADER, BINARY_TRAILER};
use crate::seed::load::copy_chunks;
use crate::seed::{TableReport, per_second};

/// Rows per parallel chunk.
const CHUNK: u64 = 2000;

/// Reads the keys of the tables that are referenced by seeded table `ti` but
/// not seeded, just before `ti` is loaded: a kept table may have been filled
/// by triggers on the tables loaded before it.
async fn read_existing(tx: &Transaction<'_>, plan: &mut Plan, ti: usize) -> Result<()> {
    for (t, cols) in plan.external_references(ti) {
        let table = &plan.schema.tables[t];
        let list: Vec<String> = cols
            .iter()
            .map(|c| format!("{}::text", quote_ident(&table.columns[*c].name)))
            .collect();
        let rows = tx
            .query(
                &format!(
                    "SELECT {} FROM {} ORDER BY 1",
                    list.join(", "),
                    table.sql_name()
                ),
                &[],
            )
            .await
            .with_context(|| format!("reading the keys of {}", table.qualified()))?;
        let keys: Vec<Vec<Value>> = rows
            .iter()
            .map(|r| {
                cols.iter()
                    .enumerate()
                    .map(|(i, c)| match r.get::<_, Option<String>>(i) {
                        None => Value::Null,
                        Some(s) => from_text(&s, &table.columns[*c].ty),
                    })
                    .collect()
            })
            .collect();
        if keys.is_empty() {
            // A NOT NULL reference to an empty, unseeded table cannot be satisfied.
            {
                let child = &plan.schema.tables[plan.tables[ti].t];
                if let Some(f) = child.foreign_keys.iter().find(|f| {
                    f.ref_table == t
                        && f.ref_columns == cols
                        && f.columns.iter().any(|c| child.columns[*c].not_null)
                }) {
                    return Err(UsageError(format!(
                        "{}:{}: {}.{} references {}, which the spec skips or leaves out and which has no rows — give {} rows in the spec (drop its skip) or fill it first",
                        plan.spec_path,
                        plan.tables[ti].line,
                        child.qualified(),
                        child.columns[f.columns[0]].name,
                        table.qualified(),
                        table.qualified()
                    ))
                    .into());
                }
            }
        }
        plan.existing.keys.insert((t, cols), keys);
    }
    Ok(())
}

/// A key read back as text, typed for encoding into the referencing column.
fn from_text(s: &str, ty: &PgType) -> Value {
    match ty {
        t if t.is_integer() => s.parse().map(Value::Int).unwrap_or(Value::Text(s.into())),
        PgType::Uuid => {
            let hex: String = s.chars().filter(|c| *c != '-').collect();
            match hex::decode(&hex) {
                Ok(b) if b.len() == 16 => Value::Uuid(b.try_into().unwrap()),
                _ => Value::Text(s.into()),
            }
        }
        PgType::Date => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Value::Date)
            .unwrap_or(Value::Text(s.into())),
        _ => Value::Text(s.into()),
    }
}

/// Loads every table of the plan; returns a report per table.
pub(crate) async fn load(
    tx: &Transaction<'_>,
    mut plan: Arc<Plan>,
    pool: &Arc<rayon::ThreadPool>,
    progress: &dyn Progress,
) -> Result<Vec<TableReport>> {
    let mut reports = Vec::new();
    // A cycle of NOT NULL keys broken at a DEFERRABLE one: its rows point at
    // rows loaded later, so Postgres checks that key at commit.
    for &(t, fk) in &plan.checked_at_commit {
        let table = &plan.schema.tables[t];
        tx.batch_execute(&format!(
            "SET CONSTRAINTS {}.{} DEFERRED",
            quote_ident(&table.schema),
            quote_ident(&table.foreign_keys[fk].name)
        ))
        .await
        .with_context(|| {
            format!(
                "deferring {} of {}",
                table.foreign_keys[fk].name,
                table.qualified()
            )
        })?;
    }
    for ti in 0..plan.tables.len() {
        let started = Instant::now();
        if !plan.external_references(ti).is_empty() {
            read_existing(tx, Arc::make_mut(&mut plan), ti).await?;
        }
        if let Some(why) = plan.capacity_error(ti) {
            let tp = &plan.tables[ti];
            return Err(UsageError(format!(
                "{}:{}: {}: {why}",
                plan.spec_path,
                tp.line,
                plan.schema.tables[tp.t].qualified()
            ))
            .into());
        }
        let tp = &plan.tables[ti];
        let table = &plan.schema.tables[tp.t];
        let written: Vec<usize> = (0..table.columns.len())
            .filter(|c| !matches!(tp.cols[*c], ColPlan::Omit | ColPlan::Sql(_)))
            .collect();
        let sql_cols: Vec<(usize, String)> = tp
            .cols
            .iter()
            .enumerate()
            .filter_map(|(c, p)| match p {
                ColPlan::Sql(s) => Some((c, s.clone())),
                _ => None,
            })
            .collect();
        let names = |cols: &[usize]| -> Vec<String> {
            cols.iter()
                .map(|c| quote_ident(&table.columns[*c].name))
                .collect()
        };
        // Rows go through a staging table when the server computes some
        // columns (sql = …) or must test them (see `verify`); `ward_row`
        // numbers them so failing rows can be drawn again.
        let tested = !tp.row_tests.is_empty() && !written.is_empty();
        let staged = !sql_cols.is_empty() || tested;
        let target = if staged {
            tx.batch_execute(&format!(
                "CREATE TEMP TABLE ward_stage ON COMMIT DROP AS SELECT {}, 0::bigint AS ward_row FROM {} LIMIT 0",
                if written.is_empty() {
                    "1 AS ward_dummy".into()
                } else {
                    names(&written).join(", ")
                },
                table.sql_name()
            ))
            .await?;
            "ward_stage".to_string()
        } else {
            table.sql_name()
        };
        let copy_sql = format!(
            "COPY {target} ({}{}) FROM STDIN (FORMAT binary)",
            names(&written).join(", "),
            if staged { ", ward_row" } else { "" }
        );
        let rows = tp.rows;
        let chunks = rows.div_ceil(CHUNK) as usize;
        let p = plan.clone();
        let cols = written.clone();
        let encode = move |chunk: usize| {
            encode_rows(
                &p,
                ti,
                &cols,
                chunk as u64 * CHUNK..((chunk as u64 + 1) * CHUNK).min(rows),
                staged,
            )
        };
        let copied = if written.is_empty() {
            // Nothing for ward to write (all defaults): insert the rows as defaults.
            tx.batch_execute(&format!(
                "INSERT INTO {target} SELECT FROM generate_series(1, {rows})"
            ))
            .await?;
            rows
        } else {
            copy_chunks(tx, &copy_sql, pool, chunks, encode, progress)
                .await
                .with_context(|| format!("loading {}", table.qualified()))?
        };
        if tested {
            let redrawn = super::verify::settle(tx, &plan, ti, &written).await?;
            if redrawn > 0 {
                tracing::info!(
                    "{}: {redrawn} rows drawn again to satisfy its constraints",
                    table.qualified()
                );
            }
        }
        if staged {
            let all: Vec<usize> = written
                .iter()
                .copied()
                .chain(sql_cols.iter().map(|(c, _)| *c))
                .collect();
            let exprs: Vec<String> = names(&written)
                .into_iter()
                .chain(sql_cols.iter().map(|(_, e)| format!("({e})")))
                .collect();
            tx.batch_execute(&format!(
                "INSERT INTO {} ({}) SELECT {} FROM ward_stage ORDER BY ward_row; DROP TABLE ward_stage",
                table.sql_name(),
                names(&all).join(", "),
                exprs.join(", ")
            ))
            .await
            .map_err(|e| sql_insert_error(&plan, ti, &sql_cols, &e))?;
        }
        let seconds = started.elapsed().as_secs_f64();
        reports.push(TableReport {
            table: table.qualified(),
            rows: copied,
            seconds,
            rows_per_second: per_second(copied, seconds),
        });
    }
    fill_deferred(tx, &plan).await?;
    advance_sequences(tx, &plan).await?;
    Ok(reports)
}

/// The error of the INSERT that evaluates `sql = …` columns. A duplicate in
/// a UNIQUE key that holds such a column is the expression's doing (ward
/// does not test an expression for uniqueness): a spec-line error naming
/// the column and how to make it unique by construction.
fn sql_insert_error(
    plan: &Plan,
    ti: usize,
    sql_cols: &[(usize, String)],
    e: &tokio_postgres::Error,
) -> anyhow::Error {
    let tp = &plan.tables[ti];
    let table = &plan.schema.tables[tp.t];
    let db = e.as_db_error();
    if db.is_some_and(|d| *d.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        // DETAIL: Key (a, b)=(…) already exists.
        let keys: Vec<String> = db
            .and_then(|d| d.detail())
            .and_then(|d| d.strip_prefix("Key ("))
            .and_then(|d| d.split_once(")="))
            .map(|(k, _)| {
                k.split(", ")
                    .map(|s| s.trim_matches('"').to_string())
                    .collect()
            })
            .unwrap_or_default();
        if let Some((c, _)) = sql_cols
            .iter()
            .find(|(c, _)| keys.contains(&table.columns[*c].name))
        {
            let col = &table.columns[*c].name;
            let line = super::spec::line_of(&plan.spec_text, &table.qualified(), Some(col));
            return UsageError(format!(
                "{}:{line}: {}.{col}: its sql expression made a duplicate value for UNIQUE ({}) — make it unique by construction, e.g. with the row number: sql = \"'item-' || ward_row\", or a uuid",
                plan.spec_path,
                table.qualified(),
                keys.join(", ")
            ))
            .into();
        }
    }
    if sql_cols.is_empty() {
        return anyhow!(
            "loading {}: {}",
            table.qualified(),
            crate::pg::db_message(e)
        );
    }
    anyhow!(
        "loading {} (an sql = … expression failed?): {}",
        table.qualified(),
        crate::pg::db_message(e)
    )
}

fn encode_rows(
    plan: &Plan,
    ti: usize,
    cols: &[usize],
    rows: std::ops::Range<u64>,
    numbered: bool,
) -> Result<(Vec<u8>, u64)> {
    let tp = &plan.tables[ti];
    let table = &plan.schema.tables[tp.t];
    let mut buf = Vec::with_capacity(64 * 1024);
    let n = rows.end - rows.start;
    for row in rows {
        buf.extend_from_slice(&(cols.len() as i16 + i16::from(numbered)).to_be_bytes());
        for &c in cols {
            let v = match tp.cols[c] {
                ColPlan::Fk { deferred: true, .. } => Value::Null,
                _ => plan.value(ti, row, c),
            };
            values::encode(&mut buf, &v, &table.columns[c].ty).map_err(|e| {
                UsageError(format!(
                    "{}.{}: {e} — adjust its generator in the spec",
                    table.qualified(),
                    table.columns[c].name
                ))
            })?;
        }
        if numbered {
            values::encode(&mut buf, &Value::Int(row as i64), &PgType::Int8)
                .map_err(|e| anyhow!(e))?;
        }
    }
    Ok((buf, n))
}

/// Fills the foreign keys that were NULL in the first pass to break a cycle.
async fn fill_deferred(tx: &Transaction<'_>, plan: &Plan) -> Result<()> {
    for &(ti, fk) in &plan.deferred {
        let tp = &plan.tables[ti];
        let table = &plan.schema.tables[tp.t];
        let f = &table.foreign_keys[fk];
        if table.primary_key.is_empty() {
            return Err(UsageError(format!(
                "{} is in a foreign-key cycle (broken at {}) but has no primary key to fill it by — add one, or skip the table",
                table.qualified(),
                f.name
            ))
            .into());
        }
        let cols: Vec<usize> = table
            .primary_key
            .iter()
            .chain(&f.columns)
            .copied()
            .collect();
        let names: Vec<String> = cols
            .iter()
            .map(|c| quote_ident(&table.columns[*c].name))
            .collect();
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE ward_fix ON COMMIT DROP AS SELECT {}, 0::bigint AS ward_row FROM {} LIMIT 0",
            names.join(", "),
            table.sql_name()
        ))
        .await?;
        let mut buf = BINARY_HEADER.to_vec();
        for row in 0..tp.rows {
            buf.extend_from_slice(&(cols.len() as i16 + 1).to_be_bytes());
            for &c in &cols {
                values::encode(&mut buf, &plan.value(ti, row, c), &table.columns[c].ty)
                    .map_err(|e| anyhow!(e))?;
            }
            values::encode(&mut buf, &Value::Int(row as i64), &PgType::Int8)
                .map_err(|e| anyhow!(e))?;
        }
        buf.extend_from_slice(BINARY_TRAILER);
        let sink = tx
            .copy_in::<_, bytes::Bytes>(&format!(
                "COPY ward_fix ({}, ward_row) FROM STDIN (FORMAT binary)",
                names.join(", ")
            ))
            .await?;
        futures_util::pin_mut!(sink);
        futures_util::SinkExt::send(&mut sink, bytes::Bytes::from(buf)).await?;
        sink.as_mut().finish().await?;
        let pk = &names[..table.primary_key.len()];
        keep_deferred_within_constraints(tx, table, &f.columns, pk).await?;
        let set: Vec<String> = names[pk.len()..]
            .iter()
            .map(|n| format!("{n} = f.{n}"))
            .collect();
        let on: Vec<String> = pk.iter().map(|n| format!("t.{n} = f.{n}")).collect();
        tx.batch_execute(&format!(
            "UPDATE {} t SET {} FROM ward_fix f WHERE {}; DROP TABLE ward_fix",
            table.sql_name(),
            set.join(", "),
            on.join(" AND ")
        ))
        .await
        .with_context(|| format!("filling {}.{} after the load", table.qualified(), f.name))?;
    }
    Ok(())
}

/// A key filled after the load may break a partial unique index or a CHECK
/// that reads it (untested in the first pass, where it was NULL): the rows
/// that would break one keep NULL there — the value Postgres already accepted
/// (the key is nullable, or it could not have been deferred). Which rows
/// depends only on the rows, so the result stays deterministic. One pass.
async fn keep_deferred_within_constraints(
    tx: &Transaction<'_>,
    table: &super::schema::Table,
    fk_cols: &[usize],
    pk: &[String],
) -> Result<()> {
    let tests = super::verify::deferred_tests(table, fk_cols);
    if tests.is_empty() {
        return Ok(());
    }
    let select: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(c, col)| {
            let n = quote_ident(&col.name);
            if fk_cols.contains(&c) {
                format!("f.{n}")
            } else {
                format!("t.{n}")
            }
        })
        .collect();
    let on: Vec<String> = pk.iter().map(|n| format!("t.{n} = f.{n}")).collect();
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE ward_stage ON COMMIT DROP AS SELECT {}, f.ward_row FROM {} t JOIN ward_fix f ON {}",
        select.join(", "),
        table.sql_name(),
        on.join(" AND ")
    ))
    .await
    .context("staging the keys filled after the load")?;
    let failing = super::verify::failing_rows(tx, &tests).await?;
    if !failing.is_empty() {
        let set: Vec<String> = fk_cols
            .iter()
            .map(|c| format!("{} = NULL", quote_ident(&table.columns[*c].name)))
            .collect();
        tx.execute(
            &format!(
                "UPDATE ward_fix SET {} WHERE ward_row = ANY($1)",
                set.join(", ")
            ),
            &[&failing],
        )
        .await?;
    }
    tx.batch_execute("DROP TABLE ward_stage").await?;
    Ok(())
}

/// serial / identity columns that ward filled: move their sequences past max.
async fn advance_sequences(tx: &Transaction<'_>, plan: &Plan) -> Result<()> {
    for tp in &plan.tables {
        let table = &plan.schema.tables[tp.t];
        for (c, col) in table.columns.iter().enumerate() {
            if col.is_serial() && !matches!(tp.cols[c], ColPlan::Omit) {
                let q = format!(
                    "SELECT setval(s, m) FROM (SELECT pg_get_serial_sequence($1, $2) AS s,
                            (SELECT max({}) FROM {}) AS m) x WHERE s IS NOT NULL AND m IS NOT NULL",
                    quote_ident(&col.name),
                    table.sql_name()
                );
                tx.execute(&q, &[&table.sql_name(), &col.name])
                    .await
                    .with_context(|| {
                        format!(
                            "advancing the sequence of {}.{}",
                            table.qualified(),
                            col.name
                        )
                    })?;
            }
        }
    }
    Ok(())
}
