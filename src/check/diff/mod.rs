//! The data-preservation diff between the PRE and POST fingerprints, with
//! row-level evidence from the `_ward_pre` copies of the tables the
//! migrations name (and the tables that reference them, for cascades).
//!
//! * rows lost (keyed by the primary key), attributed to the statement whose
//!   transaction deleted them, flagged when the statement never names the table;
//! * dropped tables / columns that held data (FAIL) or were empty (WARN);
//! * changed values in surviving columns, by cast-back comparison: the new
//!   value is cast back to the old type and compared as the old type renders
//!   it, so varchar → text is no change and numeric → integer rounding is;
//! * NULLs that received a value (a default or a backfill) → INFO.
//!
//! This file walks the tables and holds the table-level findings;
//! `columns.rs` the column-level ones, `values.rs` the value comparison and
//! `pre_copy.rs` the copies it reads.

mod columns;
mod pre_copy;
mod values;

pub(crate) use pre_copy::{snapshot, snapshot_name};

use anyhow::Result;
use tokio_postgres::Client;

use super::apply::FileRun;
use super::blame;
use super::fingerprint::{Fingerprint, Table};
use super::report::{Finding, Level};
use super::rule::Rule;
use crate::pg::quote_ident;

/// Which statement of which file touched a table: the first one that also
/// names `column` when there is one (a later UPDATE … SET column, not an
/// earlier UPDATE of another column of the same table), else the first one.
fn who(
    runs: &[FileRun],
    oid: u32,
    deleted: bool,
    column: Option<&str>,
) -> Option<(String, usize, String)> {
    let touching = || {
        runs.iter().flat_map(move |run| {
            run.statements
                .iter()
                .filter(move |st| {
                    if deleted {
                        st.deleted.contains_key(&oid)
                    } else {
                        st.updated.contains_key(&oid) || st.rewritten.contains(&oid)
                    }
                })
                .map(move |st| (run.file.clone(), st.line, st.sql.clone()))
        })
    };
    column
        .and_then(|c| touching().find(|(_, _, sql)| super::risk::names_word(sql, c)))
        .or_else(|| touching().next())
}

/// Places a finding about `table` at the statement that deleted (or
/// changed) its rows, and says so when that statement never names the table.
pub(super) fn attribute(
    mut finding: Finding,
    runs: &[FileRun],
    table: &Table,
    deleted: bool,
) -> Finding {
    let column = finding
        .object
        .as_deref()
        .and_then(|object| object.strip_prefix(&table.display()))
        .and_then(|rest| rest.strip_prefix('.'))
        .map(str::to_string);
    if let Some((file, line, sql)) = who(runs, table.oid, deleted, column.as_deref()) {
        if !super::names::names_table(&sql, &table.schema, &table.name) {
            finding.message += &format!(
                " — a side effect: the statement never names {} (ON DELETE CASCADE / SET NULL or a trigger)",
                table.display()
            );
        }
        finding = finding.at(&file, line, &sql);
    } else if let Some(run) = runs.last() {
        finding = finding.file(&run.file);
    }
    finding
}

/// One table before and after the migrations, and what the diff may use.
struct TablePair<'a> {
    client: &'a Client,
    before: &'a Table,
    after: &'a Table,
    /// Whether a `_ward_pre` copy of the table was kept.
    copied: bool,
    /// Whether every key column is still there (rows can be matched).
    key_survives: bool,
    runs: &'a [FileRun],
}

pub(crate) async fn diff(
    client: &Client,
    pre: &Fingerprint,
    post: &Fingerprint,
    snapshots: &[u32],
    runs: &[FileRun],
) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for (oid, before) in &pre.tables {
        let Some(after) = post.tables.get(oid) else {
            out.push(dropped_table(before, runs));
            continue;
        };
        let pair = TablePair {
            client,
            before,
            after,
            copied: snapshots.contains(oid),
            key_survives: !before.key.is_empty()
                && before.key.iter().all(|k| after.column_named(k).is_some()),
            runs,
        };
        out.extend(pair.rows_lost_or_added().await?);
        out.extend(pair.columns().await?);
        out.extend(pair.new_columns_filled().await?);
    }
    Ok(out)
}

/// A table the migrations dropped: FAIL with rows in it, WARN when empty.
fn dropped_table(table: &Table, runs: &[FileRun]) -> Finding {
    let finding = if table.rows > 0 {
        Finding::new(
            Level::Fail,
            Rule::DroppedData,
            format!("table {} was dropped with {} rows in it", table.display(), table.rows),
        )
        .remedy("move the rows elsewhere first (or archive them), or drop the table in a later release once it is empty")
    } else {
        Finding::new(
            Level::Warn,
            Rule::DroppedEmpty,
            format!("table {} was dropped; it was empty here, but may not be in production", table.display()),
        )
        .remedy("make sure the table is empty in production too (or that its rows are not needed) before dropping it")
    };
    blame::at_drop(
        finding.count(table.rows).object(table.display()),
        runs,
        |sql| blame::drops_table(sql, &table.schema, &table.name),
    )
}

impl TablePair<'_> {
    /// Same count and same key hashes: the same keys (the anti-join is skipped).
    fn same_keys(&self) -> bool {
        let (before, after) = (self.before, self.after);
        before.rows == after.rows
            && before.key.iter().all(|k| {
                let (Some(old), Some(new)) = (before.column_named(k), after.column_named(k)) else {
                    return false;
                };
                match (
                    before.column_data.get(&old.attnum),
                    after.column_data.get(&new.attnum),
                ) {
                    (Some(old_data), Some(new_data)) => old_data == new_data,
                    _ => false,
                }
            })
    }

    /// Rows lost (FAIL, with sample keys when the table was copied) or added (INFO).
    async fn rows_lost_or_added(&self) -> Result<Option<Finding>> {
        let (before, after) = (self.before, self.after);
        let (lost, added, samples) = if self.copied && self.key_survives && !self.same_keys() {
            self.lost_and_added_by_key().await?
        } else {
            (
                (before.rows - after.rows).max(0),
                (after.rows - before.rows).max(0),
                None,
            )
        };
        if lost > 0 {
            let mut finding = Finding::new(
                Level::Fail,
                Rule::RowsLost,
                format!("{lost} of {} rows of {} were lost", before.rows, before.display()),
            )
            .count(lost)
            .object(before.display())
            .evidence(format!("rows before {} · after {} · lost {lost} · added {added}", before.rows, after.rows))
            .remedy("keep the rows: archive them before deleting, or change ON DELETE CASCADE to RESTRICT and handle dependants explicitly");
            if let Some(keys) = samples {
                finding = finding.evidence(format!("lost {}: {keys}", before.key.join(",")));
            }
            return Ok(Some(attribute(finding, self.runs, before, true)));
        }
        Ok((added > 0).then(|| {
            Finding::new(
                Level::Info,
                Rule::RowsAdded,
                format!("{added} rows were added to {}", before.display()),
            )
            .count(added)
            .object(before.display())
        }))
    }

    /// (lost, added, up to five lost keys) by anti-joins of the PRE copy
    /// and the table on its key.
    async fn lost_and_added_by_key(&self) -> Result<(i64, i64, Option<String>)> {
        let key = &self.before.key;
        let keys = key
            .iter()
            .map(|k| quote_ident(k))
            .collect::<Vec<_>>()
            .join(", ");
        let first = quote_ident(&key[0]);
        let snap = snapshot_name(self.before.oid);
        let cur = self.after.qualified();
        let row = self
            .client
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM {snap} s WHERE NOT EXISTS (SELECT 1 FROM {cur} n WHERE ({keys}) = (s.{keys_s}))),
                            (SELECT count(*) FROM {cur} n WHERE NOT EXISTS (SELECT 1 FROM {snap} s WHERE ({keys}) = (n.{keys_n}))),
                            (SELECT string_agg(k, ', ') FROM (SELECT s.{first}::text AS k FROM {snap} s
                               WHERE NOT EXISTS (SELECT 1 FROM {cur} n WHERE ({keys}) = (s.{keys_s})) ORDER BY s.{first} LIMIT 5) x)",
                    keys_s = key.iter().map(|k| quote_ident(k)).collect::<Vec<_>>().join(", s."),
                    keys_n = key.iter().map(|k| quote_ident(k)).collect::<Vec<_>>().join(", n."),
                ),
                &[],
            )
            .await?;
        Ok((
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, Option<String>>(2),
        ))
    }
}
