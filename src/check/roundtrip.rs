//! Down migrations: up → down must give back the schema and data before,
//! and up → down → up the same as up.

use anyhow::Result;
use tokio_postgres::Client;

use super::apply::{self, Direction};
use super::fingerprint::{self, Fingerprint};
use super::migrations::{Format, Migration};
use super::report::{Finding, Level};

/// up → down must give back PRE; down → up must give back POST.
pub(super) async fn round_trip(
    client: &Client,
    format: Format,
    pending: &[&Migration],
    pre: &Fingerprint,
    post: &Fingerprint,
    history_table: &str,
) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    let reversed: Vec<&Migration> = pending.iter().rev().copied().collect();
    let downs = apply::run(client, format, &reversed, Direction::Down).await?;
    if let Some((run, f)) = downs
        .iter()
        .find_map(|r| r.failure.as_ref().map(|f| (r, f)))
    {
        out.push(
            Finding::new(
                Level::Fail,
                "down-migration",
                format!(
                    "{} fails after the up migrations: {} (SQLSTATE {})",
                    run.file, f.message, f.sqlstate
                ),
            )
            .at(&run.file, f.line, &f.statement)
            .remedy("make the down migration undo exactly what the up migration did"),
        );
        return Ok(out);
    }
    let s2 = fingerprint::take(client, &[], history_table).await?;
    for d in compare(pre, &s2) {
        out.push(
            Finding::new(Level::Fail, "down-migration", format!("up → down does not give back the original: {d}"))
                .file(&reversed.last().and_then(|m| m.down.as_ref()).map(|s| s.file.clone()).unwrap_or_default())
                .remedy("the down migration must restore the schema and the data (a dropped column's values cannot come back: mark the migration irreversible or keep the values)"),
        );
    }
    let ups = apply::run(client, format, pending, Direction::Up).await?;
    if let Some((run, f)) = ups.iter().find_map(|r| r.failure.as_ref().map(|f| (r, f))) {
        out.push(
            Finding::new(
                Level::Fail,
                "down-migration",
                format!(
                    "{} cannot be applied again after its down migration: {}",
                    run.file, f.message
                ),
            )
            .at(&run.file, f.line, &f.statement)
            .remedy("the down migration leaves something behind that the up migration creates"),
        );
        return Ok(out);
    }
    let s3 = fingerprint::take(client, &[], history_table).await?;
    for d in compare(post, &s3) {
        out.push(
            Finding::new(
                Level::Fail,
                "down-migration",
                format!("up → down → up differs from up: {d}"),
            )
            .file(&pending[0].up.file)
            .remedy("the down migration leaves residue the up migration does not expect"),
        );
    }
    Ok(out)
}

/// Differences between two fingerprints, by name (oids change when a down drops and recreates).
pub(super) fn compare(a: &Fingerprint, b: &Fingerprint) -> Vec<String> {
    let mut out = Vec::new();
    for t in a.tables.values() {
        let Some(u) = b.table_named(&t.schema, &t.name) else {
            out.push(format!("table {} is missing", t.display()));
            continue;
        };
        if t.rows != u.rows {
            out.push(format!(
                "{} has {} rows instead of {}",
                t.display(),
                u.rows,
                t.rows
            ));
        }
        for c in &t.columns {
            let Some(d) = u.column_named(&c.name) else {
                out.push(format!("column {}.{} is missing", t.display(), c.name));
                continue;
            };
            if c.ty != d.ty || c.not_null != d.not_null || c.default != d.default {
                out.push(format!(
                    "column {}.{} is {}{} instead of {}{}",
                    t.display(),
                    c.name,
                    d.ty,
                    if d.not_null { " NOT NULL" } else { "" },
                    c.ty,
                    if c.not_null { " NOT NULL" } else { "" }
                ));
            }
            let (Some((n1, h1)), Some((n2, h2))) =
                (t.column_data.get(&c.attnum), u.column_data.get(&d.attnum))
            else {
                continue;
            };
            if h1 != h2 {
                out.push(format!(
                    "values of {}.{} differ ({n1} non-NULL before, {n2} after)",
                    t.display(),
                    c.name
                ));
            }
        }
        for d in &u.columns {
            if t.column_named(&d.name).is_none() {
                out.push(format!("extra column {}.{}", t.display(), d.name));
            }
        }
    }
    for u in b.tables.values() {
        if a.table_named(&u.schema, &u.name).is_none() {
            out.push(format!("extra table {}", u.display()));
        }
    }
    let names = |f: &Fingerprint| {
        let mut v: Vec<String> = f
            .indexes
            .iter()
            .map(|i| format!("index {}", i.def))
            .chain(f.constraints.iter().map(|c| {
                let t = f
                    .tables
                    .get(&c.table)
                    .map(|t| t.display())
                    .unwrap_or_default();
                format!("constraint {} on {t}: {}", c.name, c.def)
            }))
            .collect();
        v.sort();
        v
    };
    let (na, nb) = (names(a), names(b));
    for x in na.iter().filter(|x| !nb.contains(x)) {
        out.push(format!("{x} is missing"));
    }
    for x in nb.iter().filter(|x| !na.contains(x)) {
        out.push(format!("extra {x}"));
    }
    out
}
