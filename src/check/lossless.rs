//! Lossless conversions (D12): a type change that maps each old value to
//! its own new value — bool → a two-value enum through CASE, text labels →
//! an enum, an enum → bool — keeps every piece of information, so it is an
//! info with the mapping, not "every value changed". Only type changes
//! qualify: a one-to-one rewrite within one type (swapped values) is a real
//! change, and a cast that works back to the old type and gives another
//! value (numeric rounding) is judged by that cast.

use anyhow::Result;
use tokio_postgres::Client;

use super::apply::FileRun;
use super::diff::{attribute, snapshot_name};
use super::fingerprint::{Column, Table};
use super::report::{Finding, Level};
use super::rule::Rule;
use crate::pg::quote_ident;

/// A values-changed finding of a type change to or from a label type
/// (boolean, an enum): a one-to-one mapping of the labels loses nothing.
pub(super) async fn relabelled(
    client: &Client,
    a: &Table,
    b: &Table,
    compare: &[(Column, Column)],
    f: Finding,
    runs: &[FileRun],
) -> Result<Finding> {
    if f.rule != Rule::ValuesChanged {
        return Ok(f);
    }
    let object = f.object.clone().unwrap_or_default();
    let Some((old, new)) = compare
        .iter()
        .find(|(_, n)| object == format!("{}.{}", a.display(), n.name))
    else {
        return Ok(f);
    };
    if old.ty == new.ty {
        return Ok(f);
    }
    let label = |ty: &str| {
        let ty = ty.to_string();
        async move {
            if ty == "boolean" {
                return Ok::<bool, anyhow::Error>(true);
            }
            let row = client
                .query_one(
                    "SELECT coalesce((SELECT typtype = 'e' FROM pg_type WHERE oid = to_regtype($1)), false)",
                    &[&ty],
                )
                .await?;
            Ok(row.get(0))
        }
    };
    if !(label(&old.ty).await? || label(&new.ty).await?) {
        return Ok(f);
    }
    Ok(one_to_one(client, a, b, old, new, runs).await?.unwrap_or(f))
}

/// A type change with no cast back (bool → enum, enum → text …) that maps
/// every old value to its own new value and keeps NULLs NULL loses nothing:
/// an info with the mapping, instead of "every value changed" (D12).
pub(super) async fn one_to_one(
    client: &Client,
    a: &Table,
    b: &Table,
    old: &Column,
    new: &Column,
    runs: &[FileRun],
) -> Result<Option<Finding>> {
    if old.ty == new.ty {
        // Same type: a one-to-one rewrite (e.g. swapped values) is a real change.
        return Ok(None);
    }
    let join = a
        .key
        .iter()
        .map(|k| format!("n.{q} = s.{q}", q = quote_ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let (o, n) = (
        format!("s.{}::text", quote_ident(&old.name)),
        format!("n.{}::text", quote_ident(&new.name)),
    );
    let row = client
        .query_one(
            &format!(
                "SELECT count(DISTINCT {o}), count(DISTINCT {n}), count(DISTINCT {o} || E'\\x01' || {n}),
                        count(*) FILTER (WHERE ({o} IS NULL) <> ({n} IS NULL)), count({o}),
                        (SELECT string_agg(x, ', ') FROM (SELECT DISTINCT {o} || ' → ' || {n} AS x
                           FROM {snap} s JOIN {cur} n ON {join} WHERE {o} IS NOT NULL ORDER BY 1 LIMIT 5) y)
                 FROM {snap} s JOIN {cur} n ON {join}",
                snap = snapshot_name(a.oid),
                cur = b.qualified(),
            ),
            &[],
        )
        .await?;
    let (d_old, d_new, d_pairs, null_moved, values): (i64, i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    if null_moved > 0 || d_old != d_pairs || d_new != d_pairs {
        return Ok(None);
    }
    let mapping: Option<String> = row.get(5);
    let mut f = Finding::new(
        Level::Info,
        Rule::ValuesConverted,
        format!(
            "{values} values of {}.{} were converted one-to-one by the type change {} → {} ({d_old} distinct values, none merged)",
            a.display(),
            new.name,
            old.ty,
            new.ty
        ),
    )
    .count(values)
    .object(format!("{}.{}", a.display(), new.name));
    if let Some(m) = mapping {
        f = f.evidence(format!("mapping: {m}"));
    }
    Ok(Some(attribute(f, runs, a, false)))
}
