//! Changed values in surviving columns, by cast-back comparison: the new
//! value is cast back to the old type and compared as the old type renders
//! it, so varchar → text is no change and numeric → integer rounding is.
//! Several columns of a table are compared in one join; a cast that errors
//! falls back to one column at a time, then to a comparison as text.

use anyhow::Result;
use tokio_postgres::Client;

use super::{TablePair, attribute, pre_copy::snapshot_name};
use crate::check::apply::FileRun;
use crate::check::fingerprint::{Column, Table};
use crate::check::report::{Finding, Level};
use crate::check::rule::Rule;
use crate::pg::quote_ident;

/// The most frequent values of a column, for evidence (`a ×3, b ×2`).
pub(super) async fn sample_values(
    client: &Client,
    table: &Table,
    column: &str,
) -> Result<Option<String>> {
    let quoted = quote_ident(column);
    let row = client
        .query_one(
            &format!(
                "SELECT string_agg(v || ' ×' || n, ', ') FROM (SELECT {quoted}::text AS v, count(*) AS n FROM {} \
                 WHERE {quoted} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3) x",
                table.qualified()
            ),
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// The columns of `pair` to compare (old, new): all at once, else one by one.
pub(super) async fn changed(
    pair: &TablePair<'_>,
    compare: &[(Column, Column)],
) -> Result<Vec<Finding>> {
    let (client, before, after, runs) = (pair.client, pair.before, pair.after, pair.runs);
    match changed_values_table(client, before, after, compare, runs).await {
        Ok(found) => Ok(found),
        Err(e) => {
            tracing::debug!(
                "combined comparison of {} failed ({e:#}), column by column",
                before.name
            );
            let mut found = Vec::new();
            for (old, new) in compare {
                found.extend(changed_values(client, before, after, old, new, runs).await?);
            }
            Ok(found)
        }
    }
}

/// The cast-back comparison of several columns of one table in one join;
/// only the differing rows are materialised.
async fn changed_values_table(
    client: &Client,
    before: &Table,
    after: &Table,
    columns: &[(Column, Column)],
    runs: &[FileRun],
) -> Result<Vec<Finding>> {
    let snap = snapshot_name(before.oid);
    let cur = after.qualified();
    let join = before
        .key
        .iter()
        .map(|k| format!("n.{q} = s.{q}", q = quote_ident(k)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let key_text = before
        .key
        .iter()
        .map(|k| format!("s.{}::text", quote_ident(k)))
        .collect::<Vec<_>>()
        .join(" || ',' || ");
    let mut select = vec![
        format!("s.{} AS ward_o", quote_ident(&before.key[0])),
        format!("{key_text} AS ward_k"),
    ];
    let mut any = Vec::new();
    let mut agg = Vec::new();
    for (i, (old, new)) in columns.iter().enumerate() {
        let old_value = format!("s.{}", quote_ident(&old.name));
        let new_value = format!("n.{}", quote_ident(&new.name));
        let back = cast_back(&new_value, &old.ty, &new.ty);
        let changed =
            format!("({old_value} IS NOT NULL AND {old_value}::text IS DISTINCT FROM {back})");
        let filled = format!("({old_value} IS NULL AND {new_value} IS NOT NULL)");
        select.push(format!(
            "{changed} AS c{i}, {filled} AS f{i}, {old_value}::text AS o{i}, {new_value}::text AS n{i}"
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
    for (i, (old, new)) in columns.iter().enumerate() {
        let compared = Compared {
            table: before,
            old,
            new,
            changed: row.get(3 * i),
            filled: row.get(3 * i + 1),
            samples: row.get(3 * i + 2),
        };
        out.extend(compared.findings(runs));
    }
    Ok(out)
}

/// The new value as the old type renders it. A JSON value is unwrapped
/// first (`#>> '{}'`: a string without its quotes, a number or boolean as
/// text): `varchar → jsonb USING to_jsonb(v)` keeps every value, and casting
/// `"ea qui"` back to varchar kept the quotes (django-oscar's attribute
/// values, reported as all changed).
fn cast_back(new_value: &str, old_ty: &str, new_ty: &str) -> String {
    if old_ty == new_ty {
        format!("{new_value}::text")
    } else if matches!(new_ty, "json" | "jsonb") && !matches!(old_ty, "json" | "jsonb") {
        format!("(({new_value} #>> '{{}}')::{old_ty})::text")
    } else {
        format!("({new_value}::{old_ty})::text")
    }
}

/// What the comparison of one column found.
struct Compared<'a> {
    table: &'a Table,
    old: &'a Column,
    new: &'a Column,
    /// Values that differ once cast back (or as text).
    changed: i64,
    /// NULLs that received a value.
    filled: i64,
    /// A few `key: old → new` examples.
    samples: Option<String>,
}

impl Compared<'_> {
    fn findings(self, runs: &[FileRun]) -> Vec<Finding> {
        let Compared {
            table,
            old,
            new,
            changed,
            filled,
            samples,
        } = self;
        let object = format!("{}.{}", table.display(), new.name);
        let mut out = Vec::new();
        if changed > 0 {
            let how = if old.ty != new.ty {
                // A comparison as text (when the cast back fails) is
                // compared between columns of the same type and says so
                // itself, in `changed_values`.
                format!(
                    " by the type change {} → {} (compared by casting back)",
                    old.ty, new.ty
                )
            } else {
                String::new()
            };
            let mut finding = Finding::new(
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
            if let Some(samples) = samples {
                finding =
                    finding.evidence(format!("{} (old → new): {samples}", table.key.join(",")));
            }
            out.push(attribute(finding, runs, table, false));
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
                table,
                false,
            ));
        }
        out
    }
}

/// One column: cast back to the old type; if that errors, a one-to-one
/// conversion (`lossless`), else a comparison as text.
async fn changed_values(
    client: &Client,
    before: &Table,
    after: &Table,
    old: &Column,
    new: &Column,
    runs: &[FileRun],
) -> Result<Vec<Finding>> {
    let as_text = Column {
        ty: new.ty.clone(),
        ..old.clone()
    };
    match changed_values_table(client, before, after, &[(old.clone(), new.clone())], runs).await {
        Ok(found) => Ok(found),
        Err(e) => {
            tracing::debug!(
                "cast-back of {}.{} failed ({e:#}), comparing as text",
                before.name,
                old.name
            );
            if let Some(finding) =
                crate::check::lossless::one_to_one(client, before, after, old, new, runs).await?
            {
                return Ok(vec![finding]);
            }
            let mut found =
                changed_values_table(client, before, after, &[(as_text, new.clone())], runs)
                    .await?;
            for finding in &mut found {
                if finding.rule == Rule::ValuesChanged {
                    finding.message += &format!(
                        " by the type change {} → {} (compared as text)",
                        old.ty, new.ty
                    );
                }
            }
            Ok(found)
        }
    }
}
