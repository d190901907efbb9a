//! Invariants after the migrations: no invalid index left behind, every
//! NOT VALID constraint would validate, every id sequence is ahead of the
//! highest id.

use anyhow::Result;
use tokio_postgres::Client;

use super::fingerprint::Fingerprint;
use super::report::{Finding, Level};
use super::rule::Rule;
use crate::pg::quote_ident;

pub(crate) async fn check(
    client: &Client,
    pre: &Fingerprint,
    post: &Fingerprint,
) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for ix in post.indexes.iter().filter(|i| !i.valid) {
        let before = pre.indexes.iter().any(|p| p.oid == ix.oid && !p.valid);
        let table = post
            .tables
            .get(&ix.table)
            .map(|t| t.display())
            .unwrap_or_default();
        out.push(
            Finding::new(
                if before { Level::Warn } else { Level::Fail },
                Rule::InvalidIndex,
                format!(
                    "index {} on {table} is INVALID{}: it is not used by queries{}",
                    ix.name,
                    if before { " (it was already before the migrations)" } else { "" },
                    if ix.def.contains("UNIQUE") { " and does not enforce uniqueness" } else { "" }
                ),
            )
            .count(1)
            .object(ix.name.clone())
            .evidence(ix.def.clone())
            .remedy("a CREATE INDEX CONCURRENTLY failed: DROP INDEX CONCURRENTLY it, fix the data, and create it again (IF NOT EXISTS skips an invalid index)"),
        );
    }
    for con in post.constraints.iter().filter(|c| !c.validated) {
        let Some(t) = post.tables.get(&con.table) else {
            continue;
        };
        // Would it validate? Try on the clone and roll back.
        let res = client
            .batch_execute(&format!(
                "BEGIN; ALTER TABLE {} VALIDATE CONSTRAINT {}",
                t.qualified(),
                quote_ident(&con.name)
            ))
            .await;
        client.batch_execute("ROLLBACK").await?;
        if res.is_ok() {
            continue;
        }
        let (count, sample) = violating(client, t, con).await?;
        out.push(
            Finding::new(
                Level::Fail,
                Rule::NotValidConstraint,
                format!(
                    "constraint {} on {} is NOT VALID and would not validate: {count} rows violate it",
                    con.name,
                    t.display()
                ),
            )
            .count(count)
            .object(format!("{}.{}", t.display(), con.name))
            .evidence(con.def.clone())
            .evidence(sample.map(|s| format!("violating keys: {s}")).unwrap_or_default())
            .remedy("fix or delete the violating rows in a migration before VALIDATE CONSTRAINT (new rows are already checked)"),
        );
        if let Some(f) = out.last_mut() {
            f.evidence.retain(|e| !e.is_empty());
        }
    }
    for s in &post.sequences {
        let Some(max) = s.max_in_column else { continue };
        if s.last >= max {
            continue;
        }
        let Some(t) = post.tables.get(&s.table) else {
            continue;
        };
        let before = pre
            .sequences
            .iter()
            .any(|p| p.name == s.name && p.max_in_column.is_some_and(|m| p.last < m));
        out.push(
            Finding::new(
                if before { Level::Warn } else { Level::Fail },
                Rule::SequenceBehind,
                format!(
                    "sequence {} is behind {}.{}: it will hand out {} but the highest id is {max}, so the next {} inserts collide{}",
                    s.name,
                    t.display(),
                    s.column,
                    s.last + 1,
                    max - s.last,
                    if before { " (it was already behind before the migrations)" } else { "" }
                ),
            )
            .count(max - s.last)
            .object(format!("{}.{}", t.display(), s.column))
            .remedy(format!(
                "after inserting explicit ids, move the sequence: SELECT setval('{}', (SELECT max({}) FROM {}))",
                s.name,
                quote_ident(&s.column),
                t.qualified()
            )),
        );
    }
    Ok(out)
}

/// Rows that violate a NOT VALID constraint, and a few of their keys.
async fn violating(
    client: &Client,
    t: &super::fingerprint::Table,
    con: &super::fingerprint::Constraint,
) -> Result<(i64, Option<String>)> {
    let key = t
        .key
        .first()
        .map(|k| format!("r.{}::text", quote_ident(k)))
        .unwrap_or_else(|| "r.ctid::text".into());
    let cond = match con.kind.as_str() {
        "c" => {
            let expr = con
                .def
                .trim_start_matches("CHECK ")
                .trim_end_matches(" NOT VALID");
            format!("({expr}) IS FALSE")
        }
        "f" => {
            let row = client
                .query_one(
                    "SELECT array_agg(a.attname::text ORDER BY k.i), array_agg(f.attname::text ORDER BY k.i),
                            c.confrelid::regclass::text
                     FROM pg_constraint c
                     CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY k(src, dst, i)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.src
                     JOIN pg_attribute f ON f.attrelid = c.confrelid AND f.attnum = k.dst
                     WHERE c.oid = $1::int8::oid GROUP BY c.confrelid",
                    &[&(con.oid as i64)],
                )
                .await?;
            let src: Vec<String> = row.get(0);
            let dst: Vec<String> = row.get(1);
            let reft: String = row.get(2);
            let notnull = src
                .iter()
                .map(|c| format!("r.{} IS NOT NULL", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(" AND ");
            let eq = src
                .iter()
                .zip(&dst)
                .map(|(s, d)| format!("p.{} = r.{}", quote_ident(d), quote_ident(s)))
                .collect::<Vec<_>>()
                .join(" AND ");
            format!("{notnull} AND NOT EXISTS (SELECT 1 FROM {reft} p WHERE {eq})")
        }
        _ => return Ok((0, None)),
    };
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), (SELECT string_agg(k, ', ') FROM (SELECT {key} AS k FROM {t} r WHERE {cond} ORDER BY 1 LIMIT 5) x)
                 FROM {t} r WHERE {cond}",
                t = t.qualified()
            ),
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}
