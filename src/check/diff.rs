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

use std::collections::BTreeMap;

use anyhow::Result;
use tokio_postgres::Client;

use super::apply::FileRun;
use super::blame;
use super::fingerprint::{Column, Fingerprint, Table};
use super::report::{Finding, Level};
use super::rule::Rule;
use crate::pg::quote_ident;

/// Name of the PRE copy of a table.
pub fn snapshot_name(oid: u32) -> String {
    format!("_ward_pre.t{oid}")
}

/// Copies the PRE state of `oids` into `_ward_pre` (unlogged).
pub async fn snapshot(client: &Client, pre: &Fingerprint, oids: &[u32]) -> Result<Vec<u32>> {
    client
        .batch_execute("CREATE SCHEMA IF NOT EXISTS _ward_pre")
        .await?;
    let mut done = Vec::new();
    for oid in oids {
        let Some(t) = pre.tables.get(oid) else {
            continue;
        };
        if t.key.is_empty() || t.rows == 0 {
            continue;
        }
        let columns = detached_columns(client, *oid, &t.key).await?;
        client
            .batch_execute(&format!(
                "CREATE UNLOGGED TABLE {} AS SELECT {columns} FROM {}",
                snapshot_name(*oid),
                t.qualified()
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
        .map(|r| {
            let name: String = r.get(0);
            let project_type: bool = r.get(1);
            let q = quote_ident(&name);
            if project_type && !key.contains(&name) {
                format!("{q}::text AS {q}")
            } else {
                q
            }
        })
        .collect::<Vec<_>>()
        .join(", "))
}

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

pub(super) fn attribute(mut f: Finding, runs: &[FileRun], t: &Table, deleted: bool) -> Finding {
    let column = f
        .object
        .as_deref()
        .and_then(|o| o.strip_prefix(&t.display()))
        .and_then(|rest| rest.strip_prefix('.'))
        .map(str::to_string);
    if let Some((file, line, sql)) = who(runs, t.oid, deleted, column.as_deref()) {
        if !super::names::names_table(&sql, &t.schema, &t.name) {
            f.message += &format!(
                " — a side effect: the statement never names {} (ON DELETE CASCADE / SET NULL or a trigger)",
                t.display()
            );
        }
        f = f.at(&file, line, &sql);
    } else if let Some(run) = runs.last() {
        f = f.file(&run.file);
    }
    f
}

pub async fn diff(
    client: &Client,
    pre: &Fingerprint,
    post: &Fingerprint,
    snapshots: &[u32],
    runs: &[FileRun],
) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for (oid, a) in &pre.tables {
        let Some(b) = post.tables.get(oid) else {
            let f = if a.rows > 0 {
                Finding::new(
                    Level::Fail,
                    Rule::DroppedData,
                    format!("table {} was dropped with {} rows in it", a.display(), a.rows),
                )
                .remedy("move the rows elsewhere first (or archive them), or drop the table in a later release once it is empty")
            } else {
                Finding::new(
                    Level::Warn,
                    Rule::DroppedEmpty,
                    format!("table {} was dropped; it was empty here, but may not be in production", a.display()),
                )
                .remedy("make sure the table is empty in production too (or that its rows are not needed) before dropping it")
            };
            out.push(blame::at_drop(
                f.count(a.rows).object(a.display()),
                runs,
                |sql| blame::drops_table(sql, &a.schema, &a.name),
            ));
            continue;
        };
        let has_snap = snapshots.contains(oid);
        // Rows lost / added.
        let key_survives = !a.key.is_empty() && a.key.iter().all(|k| b.column_named(k).is_some());
        // Same count and same key hashes: the same keys (skip the anti-join).
        let same_keys = a.rows == b.rows
            && a.key.iter().all(|k| {
                let (Some(x), Some(y)) = (a.column_named(k), b.column_named(k)) else {
                    return false;
                };
                match (a.column_data.get(&x.attnum), b.column_data.get(&y.attnum)) {
                    (Some(p), Some(q)) => p == q,
                    _ => false,
                }
            });
        let (lost, added, samples) = if has_snap && key_survives && !same_keys {
            let keys = a
                .key
                .iter()
                .map(|k| quote_ident(k))
                .collect::<Vec<_>>()
                .join(", ");
            let first = quote_ident(&a.key[0]);
            let snap = snapshot_name(*oid);
            let cur = b.qualified();
            let row = client
                .query_one(
                    &format!(
                        "SELECT (SELECT count(*) FROM {snap} s WHERE NOT EXISTS (SELECT 1 FROM {cur} n WHERE ({keys}) = (s.{keys_s}))),
                                (SELECT count(*) FROM {cur} n WHERE NOT EXISTS (SELECT 1 FROM {snap} s WHERE ({keys}) = (n.{keys_n}))),
                                (SELECT string_agg(k, ', ') FROM (SELECT s.{first}::text AS k FROM {snap} s
                                   WHERE NOT EXISTS (SELECT 1 FROM {cur} n WHERE ({keys}) = (s.{keys_s})) ORDER BY s.{first} LIMIT 5) x)",
                        keys_s = a.key.iter().map(|k| quote_ident(k)).collect::<Vec<_>>().join(", s."),
                        keys_n = a.key.iter().map(|k| quote_ident(k)).collect::<Vec<_>>().join(", n."),
                    ),
                    &[],
                )
                .await?;
            (
                row.get::<_, i64>(0),
                row.get::<_, i64>(1),
                row.get::<_, Option<String>>(2),
            )
        } else {
            ((a.rows - b.rows).max(0), (b.rows - a.rows).max(0), None)
        };
        if lost > 0 {
            let mut f = Finding::new(
                Level::Fail,
                Rule::RowsLost,
                format!("{lost} of {} rows of {} were lost", a.rows, a.display()),
            )
            .count(lost)
            .object(a.display())
            .evidence(format!("rows before {} · after {} · lost {lost} · added {added}", a.rows, b.rows))
            .remedy("keep the rows: archive them before deleting, or change ON DELETE CASCADE to RESTRICT and handle dependants explicitly");
            if let Some(k) = samples {
                f = f.evidence(format!("lost {}: {k}", a.key.join(",")));
            }
            out.push(attribute(f, runs, a, true));
        } else if added > 0 {
            out.push(
                Finding::new(
                    Level::Info,
                    Rule::RowsAdded,
                    format!("{added} rows were added to {}", a.display()),
                )
                .count(added)
                .object(a.display()),
            );
        }
        // Columns.
        let mut compare: Vec<(Column, Column)> = Vec::new();
        for col in &a.columns {
            let (nonnull, hash) = a
                .column_data
                .get(&col.attnum)
                .cloned()
                .unwrap_or((0, String::new()));
            let Some(nc) = b.column(col.attnum) else {
                let f = if col.generated {
                    // Computed from the other columns: nothing is lost (D12).
                    Finding::new(
                        Level::Info,
                        Rule::DroppedGenerated,
                        format!(
                            "generated column {}.{} was dropped; its values are computed from other columns, so no data is lost",
                            a.display(),
                            col.name
                        ),
                    )
                } else if nonnull > 0 {
                    Finding::new(
                        Level::Fail,
                        Rule::DroppedData,
                        format!("column {}.{} was dropped with {nonnull} non-NULL values in it", a.display(), col.name),
                    )
                    .remedy("copy the values to where they now belong before dropping the column (and check that copy), or keep the column")
                } else {
                    Finding::new(
                        Level::Warn,
                        Rule::DroppedEmpty,
                        format!("column {}.{} was dropped; it held no values here, but may in production", a.display(), col.name),
                    )
                    .remedy("check that the column is empty (or unused) in production before dropping it")
                };
                out.push(blame::at_drop(
                    f.count(nonnull)
                        .object(format!("{}.{}", a.display(), col.name)),
                    runs,
                    |sql| blame::drops_column(sql, &a.schema, &a.name, &col.name),
                ));
                continue;
            };
            let (_, new_hash) = b
                .column_data
                .get(&nc.attnum)
                .cloned()
                .unwrap_or((0, String::new()));
            if new_hash == hash && nc.ty == col.ty {
                continue;
            }
            if new_hash == hash && !has_snap {
                continue;
            }
            if !(has_snap && key_survives) {
                if new_hash != hash {
                    out.push(attribute(
                        Finding::new(
                            Level::Fail,
                            Rule::ValuesChanged,
                            format!("values of {}.{} changed (the column's hash differs; no row-level copy was kept because the migrations never name the table)", a.display(), col.name),
                        )
                        .object(format!("{}.{}", a.display(), nc.name)),
                        runs,
                        a,
                        false,
                    ));
                }
                continue;
            }
            if !a.key.contains(&col.name) {
                compare.push((col.clone(), nc.clone()));
            }
        }
        if !compare.is_empty() {
            let found = match changed_values_table(client, a, b, &compare, runs).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::debug!(
                        "combined comparison of {} failed ({e:#}), column by column",
                        a.name
                    );
                    let mut f = Vec::new();
                    for (col, nc) in &compare {
                        f.extend(changed_values(client, a, b, col, nc, runs).await?);
                    }
                    f
                }
            };
            for f in found {
                out.push(super::lossless::relabelled(client, a, b, &compare, f, runs).await?);
            }
        }
        // New columns that received values on existing rows.
        for nc in &b.columns {
            if a.column(nc.attnum).is_some() {
                continue;
            }
            let (nonnull, _) = b
                .column_data
                .get(&nc.attnum)
                .cloned()
                .unwrap_or((0, String::new()));
            let existing = a.rows.min(b.rows);
            if nonnull > 0 && existing > 0 {
                let mut f = Finding::new(
                    Level::Info,
                    Rule::DefaultFilled,
                    format!(
                        "{} existing rows of {} received a value in the new column {}{}",
                        nonnull.min(existing),
                        a.display(),
                        nc.name,
                        nc.default
                            .as_ref()
                            .map(|d| format!(" (default {d})"))
                            .unwrap_or_default()
                    ),
                )
                .count(nonnull.min(existing))
                .object(format!("{}.{}", a.display(), nc.name));
                if let Some(v) = sample_values(client, b, &nc.name).await? {
                    f = f.evidence(format!("values: {v}"));
                }
                out.push(f);
            }
        }
    }
    Ok(out)
}

async fn sample_values(client: &Client, t: &Table, col: &str) -> Result<Option<String>> {
    let c = quote_ident(col);
    let row = client
        .query_one(
            &format!(
                "SELECT string_agg(v || ' ×' || n, ', ') FROM (SELECT {c}::text AS v, count(*) AS n FROM {} \
                 WHERE {c} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3) x",
                t.qualified()
            ),
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// The cast-back comparison of several columns of one table in one join;
/// only the differing rows are materialised.
async fn changed_values_table(
    client: &Client,
    a: &Table,
    b: &Table,
    cols: &[(Column, Column)],
    runs: &[FileRun],
) -> Result<Vec<Finding>> {
    let snap = snapshot_name(a.oid);
    let cur = b.qualified();
    let join = a
        .key
        .iter()
        .map(|k| format!("n.{q} = s.{q}", q = quote_ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let key_text = a
        .key
        .iter()
        .map(|k| format!("s.{}::text", quote_ident(k)))
        .collect::<Vec<_>>()
        .join(" || ',' || ");
    let mut select = vec![
        format!("s.{} AS ward_o", quote_ident(&a.key[0])),
        format!("{key_text} AS ward_k"),
    ];
    let mut any = Vec::new();
    let mut agg = Vec::new();
    for (i, (old, new)) in cols.iter().enumerate() {
        let sc = format!("s.{}", quote_ident(&old.name));
        let nc = format!("n.{}", quote_ident(&new.name));
        let back = if old.ty == new.ty {
            format!("{nc}::text")
        } else {
            format!("({nc}::{})::text", old.ty)
        };
        let changed = format!("({sc} IS NOT NULL AND {sc}::text IS DISTINCT FROM {back})");
        let filled = format!("({sc} IS NULL AND {nc} IS NOT NULL)");
        select.push(format!(
            "{changed} AS c{i}, {filled} AS f{i}, {sc}::text AS o{i}, {nc}::text AS n{i}"
        ));
        any.push(format!("{changed} OR {filled}"));
        agg.push(format!(
            "count(*) FILTER (WHERE c{i}), count(*) FILTER (WHERE f{i}),
             (SELECT string_agg(x, '; ') FROM (SELECT ward_k || ': ' || coalesce(o{i}, 'NULL') || ' → ' || coalesce(n{i}, 'NULL') AS x
                FROM d WHERE c{i} ORDER BY ward_o LIMIT 3) y)"
        ));
    }
    let sql = format!(
        "WITH d AS MATERIALIZED (SELECT {} FROM {snap} s JOIN {cur} n ON {join} WHERE {})
         SELECT {} FROM d",
        select.join(", "),
        any.join(" OR "),
        agg.join(", ")
    );
    let row = client.query_one(&sql, &[]).await?;
    let mut out = Vec::new();
    for (i, (old, new)) in cols.iter().enumerate() {
        let changed: i64 = row.get(3 * i);
        let filled: i64 = row.get(3 * i + 1);
        let samples: Option<String> = row.get(3 * i + 2);
        out.extend(value_findings(
            a, old, new, changed, filled, samples, true, runs,
        ));
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn value_findings(
    a: &Table,
    old: &Column,
    new: &Column,
    changed: i64,
    filled: i64,
    samples: Option<String>,
    cast_back: bool,
    runs: &[FileRun],
) -> Vec<Finding> {
    let object = format!("{}.{}", a.display(), new.name);
    let mut out = Vec::new();
    if changed > 0 {
        let how = if old.ty != new.ty {
            format!(
                " by the type change {} → {}{}",
                old.ty,
                new.ty,
                if cast_back {
                    " (compared by casting back)"
                } else {
                    " (compared as text)"
                }
            )
        } else {
            String::new()
        };
        let mut f = Finding::new(
            Level::Fail,
            Rule::ValuesChanged,
            format!("{changed} values of {object} changed{how}"),
        )
        .count(changed)
        .object(object.clone())
        .remedy(if old.ty != new.ty {
            "use a type that holds every existing value (e.g. numeric instead of integer), or convert explicitly with USING and check the result"
        } else {
            "if the change is intended, keep the old values (a new column or an audit table); otherwise fix the UPDATE / the cascade"
        });
        if let Some(s) = samples {
            f = f.evidence(format!("{} (old → new): {s}", a.key.join(",")));
        }
        out.push(attribute(f, runs, a, false));
    }
    if filled > 0 {
        out.push(attribute(
            Finding::new(
                Level::Info,
                Rule::DefaultFilled,
                format!("{filled} NULLs of {object} received a value"),
            )
            .count(filled)
            .object(object),
            runs,
            a,
            false,
        ));
    }
    out
}

async fn changed_values(
    client: &Client,
    a: &Table,
    b: &Table,
    old: &Column,
    new: &Column,
    runs: &[FileRun],
) -> Result<Vec<Finding>> {
    // Cast back to the old type; if that errors, compare as text.
    let as_text = Column {
        ty: new.ty.clone(),
        ..old.clone()
    };
    match changed_values_table(client, a, b, &[(old.clone(), new.clone())], runs).await {
        Ok(f) => Ok(f),
        Err(e) => {
            tracing::debug!(
                "cast-back of {}.{} failed ({e:#}), comparing as text",
                a.name,
                old.name
            );
            if let Some(f) = super::lossless::one_to_one(client, a, b, old, new, runs).await? {
                return Ok(vec![f]);
            }
            let mut f = changed_values_table(client, a, b, &[(as_text, new.clone())], runs).await?;
            for x in &mut f {
                if x.rule == Rule::ValuesChanged {
                    x.message += &format!(
                        " by the type change {} → {} (compared as text)",
                        old.ty, new.ty
                    );
                }
            }
            Ok(f)
        }
    }
}

/// Per-table row counts, for the report.
pub fn rows(fp: &Fingerprint) -> BTreeMap<String, i64> {
    fp.tables.values().map(|t| (t.display(), t.rows)).collect()
}
