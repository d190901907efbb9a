//! Environment dependence: the same migrations on a second clone under
//! another session TimeZone, compared with the first.

use std::sync::LazyLock;

use anyhow::Result;
use regex::Regex;
use tokio_postgres::Client;

use super::MigrationSet;
use super::apply::{self, Direction};
use super::apply_cmd::run_apply_cmd;
use super::fingerprint::{self, Fingerprint};
use super::migrations::Migration;
use super::names::names_table;
use super::report::{Finding, Level};
use super::risk::names_word;
use super::rule::Rule;
use super::scratch::{connect, with_db};
use super::split;
use crate::pg::quote_ident;
use tokio_postgres::Config;

pub(super) fn time_related(sql: &str) -> bool {
    regex::Regex::new(r"(?i)timestamptz|with\s+time\s+zone|at\s+time\s+zone|::\s*date\b|date_trunc|to_char|extract\s*\(|date_part|timezone")
        .unwrap()
        .is_match(sql)
}

/// The session TimeZone of the second run.
pub(super) const OTHER: &str = "America/New_York";

/// The second run's outcome: it failed (a finding), or its fingerprint and
/// a connection to its clone for the row-level comparison.
pub(super) enum OtherZone {
    Failed(Finding),
    Done(Client, Fingerprint),
}

/// Runs the pending migrations on `db` (a clone of the baseline made
/// beforehand) under another session TimeZone and fingerprints the result.
/// Needs no `Scratch`, so it runs in parallel with the UTC run.
pub(super) async fn other_zone(
    server: &Config,
    db: &str,
    set: Option<&MigrationSet>,
    pending: &[&Migration],
    cmd: Option<&str>,
    django: Option<(&crate::django::Project, &super::django::Plan)>,
) -> Result<Option<OtherZone>> {
    let c = connect(&with_db(server, db)).await?;
    match (cmd, set, django) {
        (None, None, Some((project, plan))) => {
            // Django's SQL under the other session zone, its Python with the
            // other zone as TIME_ZONE and as the process's local zone.
            apply::prepare_session(&c, OTHER).await?;
            let url = crate::pg::url_of(&with_db(server, db));
            let (runs, _) = super::django::apply(project, plan, &c, &url, Some(OTHER)).await?;
            if let Some(f) = zone_failure(&runs) {
                return Ok(Some(f));
            }
            apply::prepare_session(&c, "UTC").await?;
        }
        (Some(cmd), _, _) => {
            if run_apply_cmd(cmd, &with_db(server, db), OTHER)
                .await?
                .is_some()
            {
                return Ok(Some(OtherZone::Failed(Finding::new(
                    Level::Warn,
                    Rule::TimezoneDependent,
                    format!(
                        "--apply-cmd fails when the session TimeZone is {OTHER} but succeeds under UTC"
                    ),
                ))));
            }
        }
        (None, Some(s), _) => {
            apply::prepare_session(&c, OTHER).await?;
            let runs = apply::run(&c, s.format, pending, Direction::Up).await?;
            if let Some(f) = zone_failure(&runs) {
                return Ok(Some(f));
            }
            apply::prepare_session(&c, "UTC").await?;
        }
        _ => return Ok(None),
    }
    let history = match (set, django) {
        (Some(s), _) => s.format.history_table(),
        (None, Some(_)) => "django_migrations",
        _ => "",
    };
    let fp = fingerprint::take(&c, &[], history).await?;
    Ok(Some(OtherZone::Done(c, fp)))
}

/// The first migration that failed under the other zone, as a finding.
fn zone_failure(runs: &[apply::FileRun]) -> Option<OtherZone> {
    let (run, f) = runs
        .iter()
        .find_map(|r| r.failure.as_ref().map(|f| (r, f)))?;
    Some(OtherZone::Failed(
        Finding::new(
            Level::Warn,
            Rule::TimezoneDependent,
            format!(
                "{} fails when the session TimeZone is {OTHER} ({}) but succeeds under UTC",
                run.file, f.message
            ),
        )
        .at(&run.file, f.line, &f.statement),
    ))
}

/// The other-zone run against the UTC run: columns whose values differ
/// for a reason other than the clock (volatile fills).
pub(super) async fn timezone_variance(
    other: OtherZone,
    pending: &[&Migration],
    runs: &[apply::FileRun],
    utc_client: &Client,
    utc_post: &Fingerprint,
) -> Result<Vec<Finding>> {
    let (c, other) = match other {
        OtherZone::Failed(f) => return Ok(vec![f]),
        OtherZone::Done(c, fp) => (c, fp),
    };

    let mut out = Vec::new();
    for (oid, t) in &utc_post.tables {
        let Some(o) = other.tables.get(oid) else {
            continue;
        };
        for col in &t.columns {
            let (Some(a), Some(b)) = (
                t.column_data.get(&col.attnum),
                o.column_data.get(&col.attnum),
            ) else {
                continue;
            };
            if a == b {
                continue;
            }
            // now(), random(), gen_random_uuid() … differ between any two runs.
            // A time value filled that way only counts when the two runs are
            // further apart than a run takes: a zone shift, not the clock.
            if volatile_fill(pending, t, col) || python_fill(runs, t, col) {
                let shift = match (
                    col.ty.starts_with("time") || col.ty == "date",
                    t.key.first(),
                ) {
                    (true, Some(k)) => max_time_shift(utc_client, &c, t, k, &col.name).await?,
                    _ => 0.0,
                };
                if shift < 900.0 {
                    continue;
                }
            }
            // Count the rows that differ, by key.
            let (count, samples) = if let Some(k) = t.key.first() {
                differing_rows(utc_client, &c, t, k, &col.name).await?
            } else {
                (None, None)
            };
            let mut f = Finding::new(
                Level::Warn,
                Rule::TimezoneDependent,
                format!(
                    "{}.{} gets different values when the migrations run with session TimeZone {OTHER} instead of UTC{}",
                    t.display(),
                    col.name,
                    count.map(|n| format!(": {n} rows differ")).unwrap_or_default()
                ),
            )
            .object(format!("{}.{}", t.display(), col.name))
            .remedy("make the conversion explicit (AT TIME ZONE 'Europe/London' / a fixed zone in USING) instead of relying on the session TimeZone");
            if let Some(n) = count {
                f = f.count(n);
            }
            if let Some(s) = samples {
                f = f.evidence(format!(
                    "{} (UTC session → {OTHER} session, shown in UTC): {s}",
                    k_name(t)
                ));
            }
            // Point at the statement that names the column and its table
            // (by schema: `a.events` is not `b.events`); else at a traced
            // one that names both (SQL a Django RunPython executed); else
            // at one that mentions the column, unless it names the table
            // only in another schema (its ignore must not hide this one).
            let mentioning = |both: bool| {
                pending.iter().find_map(|m| {
                    split::split(&m.up.sql)
                        .into_iter()
                        .find(|s| {
                            let here = names_table(&s.sql, &t.schema, &t.name);
                            match both {
                                true => here && names_word(&s.sql, &col.name),
                                false => {
                                    s.sql.to_lowercase().contains(&col.name.to_lowercase())
                                        && (here || !names_word(&s.sql, &t.name))
                                }
                            }
                        })
                        .map(|st| (m.up.file.clone(), st.line + m.up.first_line - 1, st.sql))
                })
            };
            let traced = || {
                let naming = |write: bool| {
                    runs.iter().find_map(|r| {
                        r.statements
                            .iter()
                            .find(|st| {
                                names_word(&st.sql, &col.name)
                                    && names_table(&st.sql, &t.schema, &t.name)
                                    && (!write || writes(&st.sql))
                            })
                            .map(|st| (r.file.clone(), st.line, st.sql.clone()))
                    })
                };
                // The statement that wrote the column, before one that read it.
                naming(true).or_else(|| naming(false))
            };
            let found = mentioning(true)
                .or_else(traced)
                .or_else(|| mentioning(false));
            if let Some((file, line, sql)) = found {
                f = f.at(&file, line, &sql);
            }
            out.push(f);
        }
    }
    Ok(out)
}

/// Whether a statement can write values (not a query).
fn writes(sql: &str) -> bool {
    let head = sql.trim_start().to_ascii_lowercase();
    ["update", "insert", "alter", "with", "merge", "copy"]
        .iter()
        .any(|w| head.starts_with(w))
}

/// Whether `col` of `table` gets its values from a volatile expression: its
/// default, or a pending statement that names it (its table by schema too)
/// and calls one.
fn volatile_fill(
    pending: &[&Migration],
    t: &fingerprint::Table,
    col: &fingerprint::Column,
) -> bool {
    static VOLATILE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"(?i)\b(now|clock_timestamp|statement_timestamp|transaction_timestamp|timeofday|random|gen_random_uuid|uuid_generate_v[14]|nextval)\s*\(|\b(current_timestamp|localtimestamp|current_time|localtime|current_date)\b",
        )
        .unwrap()
    });
    if col.default.as_deref().is_some_and(|d| VOLATILE.is_match(d)) {
        return true;
    }
    pending.iter().any(|m| {
        split::split(&m.up.sql).iter().any(|st| {
            VOLATILE.is_match(&st.sql)
                && names_word(&st.sql, &col.name)
                && names_table(&st.sql, &t.schema, &t.name)
        })
    })
}

/// Whether a Django migration (a `.py` file) wrote `col` of `table` with a
/// statement naming it, and the column holds times or UUIDs: its values
/// came from Python (`timezone.now()`, `uuid4()`, a default Django evaluated),
/// which its trace shows only as placeholders or one run's literal. A UUID
/// does not depend on the zone; a time then counts only when the two runs
/// are a zone shift apart (the caller's check), as for SQL volatile fills.
fn python_fill(runs: &[apply::FileRun], t: &fingerprint::Table, col: &fingerprint::Column) -> bool {
    let kind = col.ty.starts_with("time") || col.ty == "date" || col.ty == "uuid";
    kind && runs
        .iter()
        .filter(|r| r.file.ends_with(".py"))
        .flat_map(|r| &r.statements)
        .any(|st| {
            writes(&st.sql)
                && names_word(&st.sql, &col.name)
                && names_table(&st.sql, &t.schema, &t.name)
        })
}

/// The largest difference in seconds between the two runs' values of a
/// time column, matched by key.
async fn max_time_shift(
    a: &Client,
    b: &Client,
    t: &fingerprint::Table,
    key: &str,
    col: &str,
) -> Result<f64> {
    let sql = format!(
        "SELECT {k}::text, extract(epoch FROM {c})::float8 FROM {t} WHERE {c} IS NOT NULL",
        k = quote_ident(key),
        c = quote_ident(col),
        t = t.qualified()
    );
    let (ra, rb) = futures_util::future::try_join(a.query(&sql, &[]), b.query(&sql, &[])).await?;
    let other: std::collections::HashMap<String, f64> =
        rb.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(ra
        .iter()
        .filter_map(|r| {
            let k: String = r.get(0);
            let v: f64 = r.get(1);
            other.get(&k).map(|o| (o - v).abs())
        })
        .fold(0.0, f64::max))
}

pub(super) fn k_name(t: &fingerprint::Table) -> String {
    t.key.join(",")
}

pub(super) async fn differing_rows(
    a: &Client,
    b: &Client,
    t: &fingerprint::Table,
    key: &str,
    col: &str,
) -> Result<(Option<i64>, Option<String>)> {
    if t.rows > 2_000_000 {
        return Ok((None, None));
    }
    let sql = format!(
        "SELECT {k}::text, {c}::text FROM {t} ORDER BY {k}",
        k = quote_ident(key),
        c = quote_ident(col),
        t = t.qualified()
    );
    let (ra, rb) = futures_util::future::try_join(a.query(&sql, &[]), b.query(&sql, &[])).await?;
    let map: std::collections::HashMap<String, Option<String>> = rb
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, Option<String>>(1)))
        .collect();
    let mut n = 0i64;
    let mut samples = Vec::new();
    for r in &ra {
        let k: String = r.get(0);
        let v: Option<String> = r.get(1);
        let other = map.get(&k).cloned().flatten();
        if other != v {
            n += 1;
            if samples.len() < 3 {
                samples.push(format!(
                    "{k}: {} → {}",
                    v.unwrap_or_else(|| "NULL".into()),
                    other.unwrap_or_else(|| "NULL".into())
                ));
            }
        }
    }
    Ok((Some(n), (!samples.is_empty()).then(|| samples.join("; "))))
}
