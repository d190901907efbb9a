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

/// The finding of a failed file. The diagnosis (rows counted, a sample, a
/// remedy) was made by [`diagnose`] while the state before the failing
/// statement still existed; the client is no longer needed here.
pub(crate) async fn finding(_client: &Client, run: &FileRun, failure: &Failure) -> Result<Finding> {
    let mut finding = Finding::new(
        Level::Fail,
        Rule::MigrationError,
        format!(
            "{} fails on the data: {} (SQLSTATE {})",
            run.file, failure.message, failure.sqlstate
        ),
    )
    .at(&run.file, failure.line, &failure.statement);
    if let Some(detail) = &failure.detail {
        finding = finding.evidence(detail.clone());
    }
    let diagnosis = failure.diagnosis.clone().unwrap_or_default();
    if let Some(rows) = diagnosis.count {
        finding = finding.count(rows);
    }
    if let Some(evidence) = diagnosis.evidence {
        finding = finding.evidence(evidence);
    }
    finding = finding.remedy(diagnosis.remedy.unwrap_or_else(|| {
        failure
            .hint
            .clone()
            .unwrap_or_else(|| "fix the statement or the data it runs on, then check again".into())
    }));
    if let Some(table) = &failure.table {
        finding = finding.object(match &failure.column {
            Some(column) => format!("{table}.{column}"),
            None => table.clone(),
        });
    }
    Ok(finding)
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
pub(crate) async fn diagnose(client: &Client, failure: &Failure) -> Diagnosis {
    match find(client, failure).await {
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

/// Picks the diagnostic by SQLSTATE family (its class, the first two
/// characters); each family has its own function. Families whose remedy
/// needs a query get a [`Probe`] when the failing statement names a table.
async fn find(client: &Client, failure: &Failure) -> Result<Found> {
    let table = failure
        .table
        .as_ref()
        .map(|t| quote_ident(t))
        .or_else(|| table_of(&failure.statement));
    let probe = table.as_deref().map(|table| Probe {
        client,
        failure,
        table,
    });
    let sqlstate = failure.sqlstate.as_str();
    match sqlstate.get(..2).unwrap_or_default() {
        "22" => data_exception(probe, sqlstate).await,
        "23" => integrity_constraint_violation(probe, sqlstate).await,
        "25" => Ok(invalid_transaction_state(sqlstate)),
        "42" => syntax_error_or_access_rule_violation(probe, sqlstate).await,
        "55" => Ok(object_not_in_prerequisite_state(sqlstate)),
        "57" => Ok(operator_intervention(sqlstate)),
        _ => Ok(NOTHING_FOUND),
    }
}

const NOTHING_FOUND: Found = (None, None, None);

/// A remedy that needs no query: the SQLSTATE alone says what to do.
fn remedy_only(remedy: &str) -> Found {
    (None, None, Some(remedy.into()))
}

/// Class 22, data exception: values a type change cannot convert or fit.
async fn data_exception(probe: Option<Probe<'_>>, sqlstate: &str) -> Result<Found> {
    match (sqlstate, probe) {
        ("22001" | "22003" | "22P02" | "22007" | "22008", Some(probe)) => probe.conversion().await,
        _ => Ok(NOTHING_FOUND),
    }
}

/// Class 23, integrity constraint violation: the rows that break the new
/// constraint, counted and sampled.
async fn integrity_constraint_violation(probe: Option<Probe<'_>>, sqlstate: &str) -> Result<Found> {
    let Some(probe) = probe else {
        return Ok(NOTHING_FOUND);
    };
    match sqlstate {
        "23502" => probe.not_null().await,
        "23505" => probe.unique().await,
        "23503" => probe.foreign_key().await,
        "23514" => probe.check().await,
        _ => Ok(NOTHING_FOUND),
    }
}

/// Class 25, invalid transaction state: CONCURRENTLY inside a transaction.
fn invalid_transaction_state(sqlstate: &str) -> Found {
    match sqlstate {
        "25001" => remedy_only(
            "CONCURRENTLY cannot run inside a transaction: put it alone in a file marked `-- no-transaction` (sqlx) / `run_in_transaction = false` (diesel) / `transaction:false` (dbmate)",
        ),
        _ => NOTHING_FOUND,
    }
}

/// Class 42, syntax error or access rule violation: a type mismatch of a
/// type change (probed like class 22), or an object that is not there.
async fn syntax_error_or_access_rule_violation(
    probe: Option<Probe<'_>>,
    sqlstate: &str,
) -> Result<Found> {
    match (sqlstate, probe) {
        ("42804", Some(probe)) => probe.conversion().await,
        ("42703" | "42P01" | "42704", _) => Ok(remedy_only(
            "an object the migration needs is missing: check whether another migration (e.g. from main) renamed or dropped it",
        )),
        _ => Ok(NOTHING_FOUND),
    }
}

/// Class 55, object not in prerequisite state: an enum value used in the
/// transaction that added it, or a lock not available.
fn object_not_in_prerequisite_state(sqlstate: &str) -> Found {
    match sqlstate {
        "55P04" => remedy_only(
            "a new enum value cannot be used in the transaction that added it: split the file in two",
        ),
        "55P03" => remedy_only(LOCK_OR_TIMEOUT),
        _ => NOTHING_FOUND,
    }
}

/// Class 57, operator intervention: the statement timeout cancelled it.
fn operator_intervention(sqlstate: &str) -> Found {
    match sqlstate {
        "57014" => remedy_only(LOCK_OR_TIMEOUT),
        _ => NOTHING_FOUND,
    }
}

const LOCK_OR_TIMEOUT: &str =
    "the statement waited too long for a lock or ran too long on the clone; see the lock trace";

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
        let table = self.table;
        let Some(column) = &self.failure.column else {
            return Ok(NOTHING_FOUND);
        };
        let column = quote_ident(column);
        let (rows, ids) = self
            .count(format!(
                "SELECT count(*), (SELECT string_agg(k, ', ') FROM (SELECT id::text AS k FROM {table} WHERE {column} IS NULL ORDER BY id LIMIT 5) x) FROM {table} WHERE {column} IS NULL"
            ))
            .await
            .or_else(|_| anyhow::Ok((0, None)))?;
        // Tables without an `id` column: count alone.
        let rows = if rows == 0 {
            self.client
                .query_one(
                    &format!("SELECT count(*) FROM {table} WHERE {column} IS NULL"),
                    &[],
                )
                .await?
                .get(0)
        } else {
            rows
        };
        Ok((
            Some(rows),
            Some(format!(
                "{rows} rows of {table} have {column} IS NULL{}",
                ids.map(|ids| format!(" (id {ids})")).unwrap_or_default()
            )),
            Some(format!(
                "backfill {column} first (UPDATE … WHERE {column} IS NULL), or add the column with a DEFAULT, then SET NOT NULL"
            )),
        ))
    }

    /// 23505 unique_violation: the duplicated values and how often they occur.
    async fn unique(&self) -> Result<Found> {
        let table = self.table;
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
                           FROM {table} GROUP BY {expr} HAVING count(*) > 1) d"
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
                "{groups} values of ({expr}) occur more than once in {table}, on {rows} rows{}",
                sample.map(|s| format!(": {s}")).unwrap_or_default()
            )),
            Some("merge or fix the duplicates in a migration before adding the unique constraint/index".into()),
        ))
    }

    /// 23503 foreign_key_violation: the orphans and the keys they point to.
    async fn foreign_key(&self) -> Result<Found> {
        let table = self.table;
        // Key (practice_id)=(7) is not present in table "practices".
        let detail = self.failure.detail.clone().unwrap_or_default();
        // Non-greedy: the row's values come after the first `)=(` and must not
        // be read as column names.
        let re = Regex::new(r#"^Key \((.*?)\)=\(.*\) is not present in table "(.*)"\."#).unwrap();
        let Some(key) = re.captures(&detail) else {
            return Ok(NOTHING_FOUND);
        };
        let (key_columns, referenced_table) = (&key[1], &key[2]);
        let columns: Vec<String> = key_columns.split(", ").map(str::to_string).collect();
        let referenced = quote_ident(referenced_table);
        let referenced_columns = Regex::new(r"(?i)REFERENCES\s+\S+\s*\(([^)]*)\)")
            .unwrap()
            .captures(&self.failure.statement)
            .map(|list| {
                list[1]
                    .split(',')
                    .map(|name| name.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_else(|| vec!["id".into()]);
        let not_null = columns
            .iter()
            .map(|column| format!("r.{} IS NOT NULL", ident(column)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let matches = columns
            .iter()
            .zip(&referenced_columns)
            .map(|(own, theirs)| format!("p.{} = r.{}", ident(theirs), ident(own)))
            .collect::<Vec<_>>()
            .join(" AND ");
        let orphan =
            format!("{not_null} AND NOT EXISTS (SELECT 1 FROM {referenced} p WHERE {matches})");
        let key_list = columns
            .iter()
            .map(|column| format!("r.{}", ident(column)))
            .collect::<Vec<_>>()
            .join(", ");
        let (rows, keys) = self
            .count(format!(
                "SELECT count(*), (SELECT string_agg(k, ', ') FROM (SELECT DISTINCT ({key_list})::text AS k FROM {table} r WHERE {orphan} ORDER BY 1 LIMIT 5) x) FROM {table} r WHERE {orphan}"
            ))
            .await?;
        Ok((
            Some(rows),
            Some(format!("{rows} rows of {table} reference a missing {referenced_table}{}", keys.map(|keys| format!(" ({key_columns}: {keys})")).unwrap_or_default())),
            Some("delete or re-point the orphans first, or add the key NOT VALID and VALIDATE it after cleaning up".into()),
        ))
    }

    /// 23514 check_violation: the rows the new CHECK rejects.
    async fn check(&self) -> Result<Found> {
        let table = self.table;
        let re = Regex::new(r"(?is)CHECK\s*\((.*)\)").unwrap();
        let Some(check) = re.captures(&self.failure.statement) else {
            return Ok(NOTHING_FOUND);
        };
        let expr = balanced(&check[1]);
        let (rows, ids) = self
            .count(format!(
                "SELECT count(*), (SELECT string_agg(k, ', ') FROM (SELECT id::text AS k FROM {table} WHERE ({expr}) IS FALSE ORDER BY id LIMIT 5) x) FROM {table} WHERE ({expr}) IS FALSE"
            ))
            .await?;
        Ok((
            Some(rows),
            Some(format!("{rows} rows of {table} violate CHECK ({expr}){}", ids.map(|ids| format!(" (id {ids})")).unwrap_or_default())),
            Some("fix the violating rows first, or add the check NOT VALID and VALIDATE it after cleaning up".into()),
        ))
    }

    /// 22xxx / 42804 data exceptions of a type change: the values that do
    /// not convert (or do not fit a length limit).
    async fn conversion(&self) -> Result<Found> {
        let table = self.table;
        let re = Regex::new(r#"(?i)ALTER\s+COLUMN\s+("[^"]+"|[\w$]+)\s+(?:SET\s+DATA\s+)?TYPE\s+([^,;]+?)(?:\s+USING\s|\s*,|\s*$)"#).unwrap();
        let Some(change) = re.captures(&self.failure.statement) else {
            return Ok(NOTHING_FOUND);
        };
        let column = ident(&change[1]);
        let new_type = change[2].trim().to_string();
        // A length limit is not a cast failure: an explicit cast to varchar(n) truncates.
        let limit = Regex::new(
            r"(?i)^(?:varchar|character\s+varying|char|character|bpchar)\s*\(\s*(\d+)\s*\)$",
        )
        .unwrap()
        .captures(&new_type)
        .map(|length| length[1].to_string());
        let misfit = match limit {
            Some(length) => format!("{column} IS NOT NULL AND length({column}::text) > {length}"),
            None => {
                self.client
                    .batch_execute(
                        "CREATE OR REPLACE FUNCTION pg_temp.ward_fits(v text, t text) RETURNS bool LANGUAGE plpgsql AS $$
                         BEGIN EXECUTE format('SELECT %L::%s', v, t); RETURN true; EXCEPTION WHEN others THEN RETURN false; END $$",
                    )
                    .await?;
                format!(
                    "{column} IS NOT NULL AND NOT pg_temp.ward_fits({column}::text, {})",
                    quote_literal(&new_type)
                )
            }
        };
        let (values, sample) = self
            .count(format!(
                "SELECT count(*), (SELECT string_agg(k, ', ') FROM (SELECT DISTINCT {column}::text AS k FROM {table} WHERE {misfit} ORDER BY 1 LIMIT 5) x)
                 FROM {table} WHERE {misfit}"
            ))
            .await?;
        Ok((
            Some(values),
            Some(format!("{values} values of {table}.{column} do not convert to {new_type}{}", sample.map(|s| format!(": {s}")).unwrap_or_default())),
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
