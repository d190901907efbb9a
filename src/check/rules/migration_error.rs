//! `migration-error` (FAIL): a migration errors on the data. After the
//! rollback, a diagnostic query chosen by the SQLSTATE names the offending
//! rows, so the report says "212 patients have no email" rather than only
//! "23502".

use anyhow::Result;
use regex::Regex;
use tokio_postgres::Client;

use crate::check::apply::{Diagnosis, Failure, FileRun};
use crate::check::report::{Finding, Level};
use crate::check::rule::Rule;
use crate::pg::{quote_ident, quote_literal};

pub async fn finding(client: &Client, run: &FileRun, f: &Failure) -> Result<Finding> {
    let mut out = Finding::new(
        Level::Fail,
        Rule::MigrationError,
        format!(
            "{} fails on the data: {} (SQLSTATE {})",
            run.file, f.message, f.sqlstate
        ),
    )
    .at(&run.file, f.line, &f.statement);
    if let Some(d) = &f.detail {
        out = out.evidence(d.clone());
    }
    let _ = client;
    let d = f.diagnosis.clone().unwrap_or_default();
    let (count, evidence, remedy) = (d.count, d.evidence, d.remedy);
    if let Some(n) = count {
        out = out.count(n);
    }
    if let Some(e) = evidence {
        out = out.evidence(e);
    }
    out = out.remedy(remedy.unwrap_or_else(|| {
        f.hint
            .clone()
            .unwrap_or_else(|| "fix the statement or the data it runs on, then check again".into())
    }));
    if let Some(t) = &f.table {
        out = out.object(match &f.column {
            Some(c) => format!("{t}.{c}"),
            None => t.clone(),
        });
    }
    Ok(out)
}

fn table_of(stmt: &str) -> Option<String> {
    let re = Regex::new(r#"(?i)\b(?:ALTER\s+TABLE(?:\s+ONLY)?(?:\s+IF\s+EXISTS)?|\bON(?:\s+ONLY)?|UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+((?:"[^"]+"|[\w$]+)(?:\.(?:"[^"]+"|[\w$]+))?)"#).unwrap();
    re.captures(stmt).map(|c| c[1].to_string())
}

fn ident(s: &str) -> String {
    if s.starts_with('"') {
        s.to_string()
    } else {
        quote_ident(s)
    }
}

type Found = (Option<i64>, Option<String>, Option<String>);

/// Runs the diagnostic query for a failure, on the state before the failing statement.
pub async fn diagnose(client: &Client, f: &Failure) -> Diagnosis {
    match find(client, f).await {
        Ok((count, evidence, remedy)) => Diagnosis {
            count,
            evidence,
            remedy,
        },
        Err(e) => {
            tracing::debug!("diagnostic query failed: {e:#}");
            Diagnosis::default()
        }
    }
}

/// Picks the diagnostic by SQLSTATE family; each family has its own function.
async fn find(client: &Client, f: &Failure) -> Result<Found> {
    let table = f
        .table
        .as_ref()
        .map(|t| quote_ident(t))
        .or_else(|| table_of(&f.statement));
    let Some(table) = table else {
        return Ok(advice(&f.sqlstate));
    };
    let probe = Probe {
        client,
        failure: f,
        table: &table,
    };
    match f.sqlstate.as_str() {
        "23502" => probe.not_null().await,
        "23505" => probe.unique().await,
        "23503" => probe.foreign_key().await,
        "23514" => probe.check().await,
        "22001" | "22003" | "22P02" | "42804" | "22007" | "22008" => probe.conversion().await,
        other => Ok(advice(other)),
    }
}

const NOTHING_FOUND: Found = (None, None, None);

/// Remedies that need no query: the SQLSTATE alone says what to do.
fn advice(sqlstate: &str) -> Found {
    let remedy = match sqlstate {
        "25001" => {
            "CONCURRENTLY cannot run inside a transaction: put it alone in a file marked `-- no-transaction` (sqlx) / `run_in_transaction = false` (diesel) / `transaction:false` (dbmate)"
        }
        "55P04" => {
            "a new enum value cannot be used in the transaction that added it: split the file in two"
        }
        "42703" | "42P01" | "42704" => {
            "an object the migration needs is missing: check whether another migration (e.g. from main) renamed or dropped it"
        }
        "55P03" | "57014" => {
            "the statement waited too long for a lock or ran too long on the clone; see the lock trace"
        }
        _ => return NOTHING_FOUND,
    };
    (None, None, Some(remedy.into()))
}

/// The failed statement, its table (quoted), and a connection to the state
/// just before it, to count and sample the rows that make it fail.
struct Probe<'a> {
    client: &'a Client,
    failure: &'a Failure,
    table: &'a str,
}

impl Probe<'_> {
    /// `SELECT count(*), sample` → (count, sample).
    async fn count(&self, sql: String) -> Result<(i64, Option<String>)> {
        let row = self.client.query_one(&sql, &[]).await?;
        Ok((row.get::<_, i64>(0), row.get::<_, Option<String>>(1)))
    }

    /// 23502 not_null_violation: the rows whose column is NULL.
    async fn not_null(&self) -> Result<Found> {
        let (t, f) = (self.table, self.failure);
        let Some(column) = &f.column else {
            return Ok(NOTHING_FOUND);
        };
        let c = quote_ident(column);
        let (n, s) = self
            .count(format!(
                "SELECT count(*), (SELECT string_agg(k, ', ') FROM (SELECT id::text AS k FROM {t} WHERE {c} IS NULL ORDER BY id LIMIT 5) x) FROM {t} WHERE {c} IS NULL"
            ))
            .await
            .or_else(|_| anyhow::Ok((0, None)))?;
        // Tables without an `id` column: count alone.
        let n = if n == 0 {
            self.client
                .query_one(&format!("SELECT count(*) FROM {t} WHERE {c} IS NULL"), &[])
                .await?
                .get(0)
        } else {
            n
        };
        Ok((
            Some(n),
            Some(format!(
                "{n} rows of {t} have {c} IS NULL{}",
                s.map(|s| format!(" (id {s})")).unwrap_or_default()
            )),
            Some(format!(
                "backfill {c} first (UPDATE … WHERE {c} IS NULL), or add the column with a DEFAULT, then SET NOT NULL"
            )),
        ))
    }

    /// 23505 unique_violation: the duplicated values and how often they occur.
    async fn unique(&self) -> Result<Found> {
        let t = self.table;
        // Key (lower(email))=(x) is duplicated.
        let detail = self.failure.detail.clone().unwrap_or_default();
        let Some(expr) = unique_key_expression(&detail, &self.failure.statement) else {
            return Ok(NOTHING_FOUND);
        };
        let row = self
            .client
            .query_one(
                &format!(
                    "SELECT count(*), coalesce(sum(n), 0)::int8, string_agg(k || ' ×' || n, ', ') FILTER (WHERE r <= 3)
                     FROM (SELECT ({expr})::text AS k, count(*) AS n, row_number() OVER (ORDER BY count(*) DESC, ({expr})::text) AS r
                           FROM {t} GROUP BY {expr} HAVING count(*) > 1) d"
                ),
                &[],
            )
            .await?;
        let groups: i64 = row.get(0);
        let rows: i64 = row.get(1);
        let sample: Option<String> = row.get(2);
        Ok((
            Some(groups),
            Some(format!(
                "{groups} values of ({expr}) occur more than once in {t}, on {rows} rows{}",
                sample.map(|s| format!(": {s}")).unwrap_or_default()
            )),
            Some("merge or fix the duplicates in a migration before adding the unique constraint/index".into()),
        ))
    }

    /// 23503 foreign_key_violation: the orphans and the keys they point to.
    async fn foreign_key(&self) -> Result<Found> {
        let (t, f) = (self.table, self.failure);
        // Key (practice_id)=(7) is not present in table "practices".
        let detail = f.detail.clone().unwrap_or_default();
        // Non-greedy: the row's values come after the first `)=(` and must not
        // be read as column names.
        let re = Regex::new(r#"^Key \((.*?)\)=\(.*\) is not present in table "(.*)"\."#).unwrap();
        let Some(c) = re.captures(&detail) else {
            return Ok(NOTHING_FOUND);
        };
        let cols: Vec<String> = c[1].split(", ").map(str::to_string).collect();
        let reft = quote_ident(&c[2]);
        let refcols = Regex::new(r"(?i)REFERENCES\s+\S+\s*\(([^)]*)\)")
            .unwrap()
            .captures(&f.statement)
            .map(|c| {
                c[1].split(',')
                    .map(|s| s.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_else(|| vec!["id".into()]);
        let notnull = cols
            .iter()
            .map(|c| format!("r.{} IS NOT NULL", ident(c)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let eq = cols
            .iter()
            .zip(&refcols)
            .map(|(s, d)| format!("p.{} = r.{}", ident(d), ident(s)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let cond = format!("{notnull} AND NOT EXISTS (SELECT 1 FROM {reft} p WHERE {eq})");
        let (n, s) = self
            .count(format!(
                "SELECT count(*), (SELECT string_agg(k, ', ') FROM (SELECT DISTINCT ({})::text AS k FROM {t} r WHERE {cond} ORDER BY 1 LIMIT 5) x) FROM {t} r WHERE {cond}",
                cols.iter().map(|c| format!("r.{}", ident(c))).collect::<Vec<_>>().join(", ")
            ))
            .await?;
        Ok((
            Some(n),
            Some(format!("{n} rows of {t} reference a missing {}{}", &c[2], s.map(|s| format!(" ({}: {s})", &c[1])).unwrap_or_default())),
            Some("delete or re-point the orphans first, or add the key NOT VALID and VALIDATE it after cleaning up".into()),
        ))
    }

    /// 23514 check_violation: the rows the new CHECK rejects.
    async fn check(&self) -> Result<Found> {
        let t = self.table;
        let re = Regex::new(r"(?is)CHECK\s*\((.*)\)").unwrap();
        let Some(c) = re.captures(&self.failure.statement) else {
            return Ok(NOTHING_FOUND);
        };
        let expr = balanced(&c[1]);
        let (n, s) = self
            .count(format!(
                "SELECT count(*), (SELECT string_agg(k, ', ') FROM (SELECT id::text AS k FROM {t} WHERE ({expr}) IS FALSE ORDER BY id LIMIT 5) x) FROM {t} WHERE ({expr}) IS FALSE"
            ))
            .await?;
        Ok((
            Some(n),
            Some(format!("{n} rows of {t} violate CHECK ({expr}){}", s.map(|s| format!(" (id {s})")).unwrap_or_default())),
            Some("fix the violating rows first, or add the check NOT VALID and VALIDATE it after cleaning up".into()),
        ))
    }

    /// 22xxx / 42804 data exceptions of a type change: the values that do
    /// not convert (or do not fit a length limit).
    async fn conversion(&self) -> Result<Found> {
        let t = self.table;
        let re = Regex::new(r#"(?i)ALTER\s+COLUMN\s+("[^"]+"|[\w$]+)\s+(?:SET\s+DATA\s+)?TYPE\s+([^,;]+?)(?:\s+USING\s|\s*,|\s*$)"#).unwrap();
        let Some(c) = re.captures(&self.failure.statement) else {
            return Ok(NOTHING_FOUND);
        };
        let col = ident(&c[1]);
        let ty = c[2].trim().to_string();
        // A length limit is not a cast failure: an explicit cast to varchar(n) truncates.
        let limit = Regex::new(
            r"(?i)^(?:varchar|character\s+varying|char|character|bpchar)\s*\(\s*(\d+)\s*\)$",
        )
        .unwrap()
        .captures(&ty)
        .map(|c| c[1].to_string());
        let cond = match limit {
            Some(n) => format!("{col} IS NOT NULL AND length({col}::text) > {n}"),
            None => {
                self.client
                    .batch_execute(
                        "CREATE OR REPLACE FUNCTION pg_temp.ward_fits(v text, t text) RETURNS bool LANGUAGE plpgsql AS $$
                         BEGIN EXECUTE format('SELECT %L::%s', v, t); RETURN true; EXCEPTION WHEN others THEN RETURN false; END $$",
                    )
                    .await?;
                format!(
                    "{col} IS NOT NULL AND NOT pg_temp.ward_fits({col}::text, {})",
                    quote_literal(&ty)
                )
            }
        };
        let (n, s) = self
            .count(format!(
                "SELECT count(*), (SELECT string_agg(k, ', ') FROM (SELECT DISTINCT {col}::text AS k FROM {t} WHERE {cond} ORDER BY 1 LIMIT 5) x)
                 FROM {t} WHERE {cond}"
            ))
            .await?;
        Ok((
            Some(n),
            Some(format!("{n} values of {t}.{col} do not convert to {ty}{}", s.map(|s| format!(": {s}")).unwrap_or_default())),
            Some("clean the values first, or convert with USING (…) that handles them, or choose a type that holds them".to_string()),
        ))
    }
}

/// The text up to the parenthesis that closes the one before it.
fn balanced(s: &str) -> String {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                if depth == 0 {
                    return s[..i].to_string();
                }
                depth -= 1;
            }
            _ => {}
        }
    }
    s.to_string()
}

/// The key expression of a unique violation's DETAIL (`Key (lower(email))=(x)
/// is duplicated.`), to be pasted into the diagnostic query — so it must come
/// from the schema, never from the row. The values follow the first `)=(` and
/// may contain anything (`)=(`, `;`, SQL), so the match stops there, and the
/// expression is used only when the failing statement itself spells it
/// (ignoring whitespace, quotes and case); otherwise there is no diagnosis.
fn unique_key_expression(detail: &str, statement: &str) -> Option<String> {
    let expr = Regex::new(r"^Key \((.*?)\)=\(").unwrap().captures(detail)?[1].to_string();
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace() && *c != '"')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let in_statement = expr
        .split(", ")
        .all(|part| !part.is_empty() && squash(statement).contains(&squash(part)));
    (in_statement && !expr.contains(';')).then_some(expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unique_key_comes_from_the_schema_never_from_the_row() {
        let stmt = "CREATE UNIQUE INDEX k ON patients (lower(family_name), practice_id)";
        assert_eq!(
            unique_key_expression(
                "Key (lower(family_name), practice_id)=(smith, 3) is duplicated.",
                stmt
            )
            .as_deref(),
            Some("lower(family_name), practice_id")
        );
        // A value crafted to extend the "expression" with SQL of its own.
        let hostile = "Key (lower(family_name), practice_id)=(x)=(1) FROM patients; \
                       DROP TABLE patients; SELECT (1, 3) is duplicated.";
        assert_eq!(
            unique_key_expression(hostile, stmt).as_deref(),
            Some("lower(family_name), practice_id")
        );
        // An expression the statement does not spell is not trusted.
        assert_eq!(
            unique_key_expression("Key (x); DROP TABLE t; (y)=(1) is duplicated.", stmt),
            None
        );
    }

    #[test]
    fn finds_the_table_of_a_statement() {
        assert_eq!(
            table_of("ALTER TABLE ONLY public.patients ALTER COLUMN x SET NOT NULL").unwrap(),
            "public.patients"
        );
        assert_eq!(
            table_of("CREATE UNIQUE INDEX i ON patients (lower(email))").unwrap(),
            "patients"
        );
        assert_eq!(balanced("quantity > 0) NOT VALID"), "quantity > 0");
        assert_eq!(balanced("(a > 0) AND (b > 0))"), "(a > 0) AND (b > 0)");
    }
}
