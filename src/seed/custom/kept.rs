//! Tables the guessed spec keeps as they are (`skip = true`) although they
//! hold application data: tables that already hold rows when `--init-spec`
//! runs (a framework's own migrate fills some), and tables an INSERT
//! trigger fills, found in the trigger functions and the functions they call;
//! and the JSON values of the tables that hold rows, sampled for their shape
//! (see `shape`: only keys and types go into the spec, never the contents).

use super::schema::Schema;

/// Why the guessed spec keeps a table as it is (`skip = true`) although it
/// is application data: its rows exist already, or triggers write them.
pub(crate) async fn kept_tables(
    client: &tokio_postgres::Client,
    schema: &Schema,
) -> anyhow::Result<Vec<Option<String>>> {
    let mut kept = vec![None; schema.tables.len()];
    // A framework's own migrate fills some tables (content types, sites):
    // replacing those rows would break the framework, so they are parents only.
    for (ti, t) in schema.tables.iter().enumerate() {
        let has_rows: bool = client
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {})", t.sql_name()),
                &[],
            )
            .await?
            .get(0);
        if has_rows {
            kept[ti] = Some("holds rows already: kept as they are and used as a parent".into());
        }
    }
    // Tables an INSERT trigger writes to are filled by seeding the table the
    // trigger is on; seeding them as well would write every row twice.
    let triggers = client
        .query(
            "SELECT t.tgrelid, p.prosrc FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
             WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' AND (t.tgtype & 4) <> 0",
            &[],
        )
        .await?;
    let oids: std::collections::HashMap<u32, usize> = client
        .query(
            "SELECT c.oid, n.nspname::text || '.' || c.relname::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')",
            &[],
        )
        .await?
        .iter()
        .filter_map(|r| Some((r.get::<_, u32>(0), schema.table(r.get::<_, &str>(1))?)))
        .collect();
    // Trigger functions often insert through helper functions they call.
    let functions: Vec<(String, String)> = client
        .query(
            "SELECT p.proname::text, p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND p.prolang IN
               (SELECT oid FROM pg_language WHERE lanname IN ('plpgsql', 'sql'))",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get::<_, String>(0).to_lowercase(), r.get(1)))
        .collect();
    for r in &triggers {
        let Some(&on) = oids.get(&r.get::<_, u32>(0)) else {
            continue;
        };
        let body = with_called_functions(r.get(1), &functions);
        for target in inserted_tables(&body) {
            let hit = schema.tables.iter().position(|t| {
                t.name == target.1 && target.0.as_ref().is_none_or(|s| *s == t.schema)
            });
            if let Some(ti) = hit.filter(|ti| *ti != on && kept[*ti].is_none()) {
                kept[ti] = Some(format!(
                    "filled by a trigger on {} when it is seeded",
                    schema.tables[on].qualified()
                ));
            }
        }
    }
    Ok(kept)
}

/// How many rows (up to 1,000) each kept table holds, 0 for the others: a
/// table fanned out from one parent whose other key is unique with it
/// within a kept table can have no more children per parent than that.
pub(crate) async fn kept_rows(
    client: &tokio_postgres::Client,
    schema: &Schema,
    kept: &[Option<String>],
) -> anyhow::Result<Vec<u64>> {
    let mut rows = vec![0; schema.tables.len()];
    for (ti, t) in schema.tables.iter().enumerate() {
        if kept.get(ti).is_some_and(Option::is_some) {
            let n: i64 = client
                .query_one(
                    &format!(
                        "SELECT count(*) FROM (SELECT 1 FROM {} LIMIT 1000) x",
                        t.sql_name()
                    ),
                    &[],
                )
                .await?
                .get(0);
            rows[ti] = n as u64;
        }
    }
    Ok(rows)
}

/// Up to [`SAMPLE_ROWS`](super::shape::SAMPLE_ROWS) non-NULL values of every
/// json/jsonb column (or array of them) of the tables that hold rows, by
/// (table, column). Read here, kept in memory only while the shape is derived.
pub(crate) async fn json_samples(
    client: &tokio_postgres::Client,
    schema: &Schema,
    kept_rows: &[u64],
) -> anyhow::Result<std::collections::HashMap<(usize, usize), Vec<serde_json::Value>>> {
    use super::schema::PgType;
    let mut out = std::collections::HashMap::new();
    for (ti, t) in schema.tables.iter().enumerate() {
        if kept_rows.get(ti).is_none_or(|n| *n == 0) {
            continue;
        }
        for (ci, c) in t.columns.iter().enumerate() {
            let (json, array) = match &c.ty {
                PgType::Json | PgType::Jsonb => (true, false),
                PgType::Array(e, _) => (matches!(**e, PgType::Json | PgType::Jsonb), true),
                _ => (false, false),
            };
            if !json {
                continue;
            }
            let col = crate::pg::quote_ident(&c.name);
            let expr = if array {
                format!("(SELECT v FROM unnest({col}) v WHERE v IS NOT NULL LIMIT 1)")
            } else {
                col.clone()
            };
            // Ordered by a hash of the value, not heap order: the same rows
            // give the same sample (and spec) after an UPDATE or VACUUM.
            let rows = client
                .query(
                    &format!(
                        "SELECT x::text FROM (SELECT {expr} AS x FROM {} WHERE {col} IS NOT NULL ORDER BY md5({col}::text) LIMIT {}) s WHERE x IS NOT NULL",
                        t.sql_name(),
                        super::shape::SAMPLE_ROWS
                    ),
                    &[],
                )
                .await?;
            let values: Vec<serde_json::Value> = rows
                .iter()
                .filter_map(|r| serde_json::from_str(r.get::<_, &str>(0)).ok())
                .collect();
            if !values.is_empty() {
                out.insert((ti, ci), values);
            }
        }
    }
    Ok(out)
}

/// `body` followed by the bodies of the functions it calls, transitively.
fn with_called_functions(body: &str, functions: &[(String, String)]) -> String {
    let mut all = body.to_string();
    let mut included = vec![false; functions.len()];
    let mut scanned = 0;
    while scanned < all.len() {
        let text = all[scanned..].to_lowercase();
        scanned = all.len();
        for (i, (name, src)) in functions.iter().enumerate() {
            let called = text.match_indices(name.as_str()).any(|(at, _)| {
                let before = text[..at].chars().next_back();
                let after = text[at + name.len()..].trim_start().chars().next();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && after == Some('(')
            });
            if called && !included[i] {
                included[i] = true;
                all.push('\n');
                all.push_str(src);
            }
        }
    }
    all
}

/// The (schema, table) names a PL/pgSQL body inserts into.
fn inserted_tables(body: &str) -> Vec<(Option<String>, String)> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r#"(?i)\binsert\s+into\s+(?:("[^"]+"|\w+)\.)?("[^"]+"|\w+)"#)
            .expect("valid regex")
    });
    let unquote = |s: &str| {
        s.strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .map_or_else(|| s.to_lowercase(), str::to_string)
    };
    re.captures_iter(body)
        .map(|c| {
            (
                c.get(1).map(|m| unquote(m.as_str())),
                unquote(c.get(2).map_or("", |m| m.as_str())),
            )
        })
        .collect()
}
