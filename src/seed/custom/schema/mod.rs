//! Introspection of the application's own schema from `pg_catalog`: tables,
//! columns and their types (domains resolved to their base type, enums with
//! their labels, arrays with their element type), NOT NULL, defaults,
//! identity/serial/generated columns, primary keys, UNIQUE constraints and
//! unique indexes (composite and partial), foreign keys (and whether they are
//! DEFERRABLE) and CHECK constraints. Types are resolved in `types`.

use std::collections::HashMap;

use anyhow::{Context, Result};
use tokio_postgres::GenericClient;

use super::checks::{self, ColumnCheck};
use types::{read_types, resolve};

mod types;

/// A column type, resolved to what ward can generate and encode.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// precision and scale, when declared
    Numeric(Option<(u32, u32)>),
    /// text, varchar(n), char(n), name, citext: the max length if any
    Text {
        max_len: Option<u32>,
        fixed: bool,
    },
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Interval,
    Uuid,
    Json,
    Jsonb,
    Bytea,
    Enum(Vec<String>),
    /// element type and its OID (binary arrays name their element type)
    Array(Box<PgType>, u32),
    /// a type ward cannot encode (inet, point, tsvector, …): its SQL name
    Other(String),
}

impl PgType {
    pub(crate) fn is_integer(&self) -> bool {
        matches!(self, PgType::Int2 | PgType::Int4 | PgType::Int8)
    }

    /// The range an integer type can hold.
    pub(crate) fn int_range(&self) -> Option<(i64, i64)> {
        match self {
            PgType::Int2 => Some((i16::MIN as i64, i16::MAX as i64)),
            PgType::Int4 => Some((i32::MIN as i64, i32::MAX as i64)),
            PgType::Int8 => Some((i64::MIN, i64::MAX)),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub name: String,
    pub attnum: i16,
    pub ty: PgType,
    /// As Postgres prints it, e.g. `character varying(150)`.
    pub sql_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    /// `GENERATED … AS IDENTITY`
    pub identity: bool,
    /// `GENERATED ALWAYS AS (…) STORED`: never written by ward
    pub generated: bool,
    /// What CHECK constraints (table and domain) say about this column.
    pub check: ColumnCheck,
}

impl Column {
    /// Whether the default draws from a sequence (serial) or identity.
    pub(crate) fn is_serial(&self) -> bool {
        self.identity
            || self
                .default
                .as_deref()
                .is_some_and(|d| d.starts_with("nextval("))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ForeignKey {
    pub name: String,
    /// Column indices in this table.
    pub columns: Vec<usize>,
    /// Referenced table (index into `Schema::tables`).
    pub ref_table: usize,
    /// Referenced column indices in that table.
    pub ref_columns: Vec<usize>,
    /// `DEFERRABLE`: checked at commit when deferred, so a cycle of NOT NULL
    /// keys can still be loaded in one transaction.
    pub deferrable: bool,
    /// A constraint in the database; `false` for a reference only the spec
    /// declares (`ref = "schema.table.column"`, e.g. Django's
    /// `ForeignKey(db_constraint=False)`): followed when seeding, never by
    /// Postgres (no CASCADE, no check).
    pub enforced: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Vec<usize>,
    /// UNIQUE constraints and unique indexes (partial ones included: they
    /// are honoured as if they were total, which is stricter).
    pub uniques: Vec<Vec<usize>>,
    pub foreign_keys: Vec<ForeignKey>,
    /// CHECK constraints ward could not read, as SQL (for the spec's comments).
    pub unparsed_checks: Vec<String>,
    /// Partial unique indexes: (columns, the index's WHERE predicate as SQL).
    pub partial_uniques: Vec<(Vec<usize>, String)>,
    /// A unique index on a constant (`UNIQUE ((true))`): one row at most.
    pub singleton: bool,
    /// Every CHECK constraint of the table, read or not: the loader tests
    /// generated rows against them.
    pub checks: Vec<TableCheck>,
}

/// A table CHECK constraint: its name, its boolean expression as SQL, and
/// the columns it reads.
#[derive(Debug, Clone)]
pub(crate) struct TableCheck {
    pub name: String,
    pub expr: String,
    pub columns: Vec<usize>,
}

impl Table {
    /// `schema.name`, as specs refer to tables.
    pub(crate) fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The quoted name for SQL.
    pub(crate) fn sql_name(&self) -> String {
        format!(
            "{}.{}",
            crate::pg::quote_ident(&self.schema),
            crate::pg::quote_ident(&self.name)
        )
    }

    pub(crate) fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Whether column `c` alone is unique (PK or a one-column UNIQUE).
    pub(crate) fn is_unique_column(&self, c: usize) -> bool {
        self.primary_key == [c] || self.uniques.iter().any(|u| u == &[c])
    }

    /// The unique sets: the primary key and the UNIQUE constraints.
    pub(crate) fn unique_sets(&self) -> impl Iterator<Item = &Vec<usize>> {
        std::iter::once(&self.primary_key)
            .filter(|pk| !pk.is_empty())
            .chain(self.uniques.iter())
    }
}

/// Whether two column lists hold the same columns, in any order.
pub(crate) fn same_columns(a: &[usize], b: &[usize]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Schema {
    pub tables: Vec<Table>,
}

impl Schema {
    pub(crate) fn table(&self, qualified: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.qualified() == qualified)
    }
}

/// Reads every ordinary and partitioned table outside the system schemas.
pub(crate) async fn introspect(client: &impl GenericClient) -> Result<Schema> {
    let table_rows = client
        .query(
            "SELECT c.oid, n.nspname::text, c.relname::text
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg\\_%'
             ORDER BY 2, 3",
            &[],
        )
        .await
        .context("reading tables from pg_catalog")?;
    let oids: Vec<u32> = table_rows.iter().map(|r| r.get(0)).collect();
    let index_of: HashMap<u32, usize> = oids.iter().enumerate().map(|(i, o)| (*o, i)).collect();

    let types = read_types(client).await?;
    let mut tables: Vec<Table> = table_rows
        .iter()
        .map(|r| Table {
            schema: r.get(1),
            name: r.get(2),
            columns: Vec::new(),
            primary_key: Vec::new(),
            uniques: Vec::new(),
            foreign_keys: Vec::new(),
            unparsed_checks: Vec::new(),
            partial_uniques: Vec::new(),
            singleton: false,
            checks: Vec::new(),
        })
        .collect();

    let cols = client
        .query(
            "SELECT a.attrelid, a.attnum, a.attname::text, a.atttypid, a.atttypmod, a.attnotnull,
                    a.attidentity <> '', a.attgenerated <> '', pg_get_expr(d.adbin, d.adrelid),
                    format_type(a.atttypid, a.atttypmod)
             FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attrelid, a.attnum",
            &[&oids],
        )
        .await
        .context("reading columns from pg_catalog")?;
    for r in &cols {
        let t = index_of[&r.get::<_, u32>(0)];
        let typ: u32 = r.get(3);
        let typmod: i32 = r.get(4);
        let (ty, domain_checks, domain_not_null) = resolve(&types, typ, typmod);
        let mut check = ColumnCheck::default();
        for c in &domain_checks {
            if !checks::apply(c, "VALUE", &mut check) {
                tables[t].unparsed_checks.push(format!("domain: {c}"));
            }
        }
        tables[t].columns.push(Column {
            name: r.get(2),
            attnum: r.get(1),
            ty,
            sql_type: r.get(9),
            not_null: r.get::<_, bool>(5) || domain_not_null,
            default: r.get(8),
            identity: r.get(6),
            generated: r.get(7),
            check,
        });
    }

    let cons = client
        .query(
            "SELECT conrelid, conname::text, contype::text, conkey, confrelid, confkey,
                    pg_get_constraintdef(oid), condeferrable
             FROM pg_constraint WHERE conrelid = ANY($1) AND contype IN ('p', 'u', 'f', 'c')
             ORDER BY conrelid, contype, conname",
            &[&oids],
        )
        .await
        .context("reading constraints from pg_catalog")?;
    for r in &cons {
        let t = index_of[&r.get::<_, u32>(0)];
        let keys: Vec<i16> = r.get::<_, Option<Vec<i16>>>(3).unwrap_or_default();
        let cols = attnums_to_indices(&tables[t], &keys);
        match r.get::<_, &str>(2) {
            "p" => tables[t].primary_key = cols,
            "u" => tables[t].uniques.push(cols),
            "f" => {
                let Some(&rt) = index_of.get(&r.get::<_, u32>(4)) else {
                    continue;
                };
                let ref_keys: Vec<i16> = r.get::<_, Option<Vec<i16>>>(5).unwrap_or_default();
                let ref_columns = attnums_to_indices(&tables[rt], &ref_keys);
                tables[t].foreign_keys.push(ForeignKey {
                    name: r.get(1),
                    columns: cols,
                    ref_table: rt,
                    ref_columns,
                    deferrable: r.get(7),
                    enforced: true,
                });
            }
            _ => {
                let def: String = r.get(6);
                let table = &mut tables[t];
                let expr = def.trim().trim_end_matches("NOT VALID").trim();
                if let Some(expr) = expr.strip_prefix("CHECK ") {
                    table.checks.push(TableCheck {
                        name: r.get(1),
                        expr: expr.to_string(),
                        columns: cols.clone(),
                    });
                }
                if let [c] = cols[..] {
                    let name = table.columns[c].name.clone();
                    if checks::apply(&def, &name, &mut table.columns[c].check) {
                        continue;
                    }
                }
                table.unparsed_checks.push(def);
            }
        }
    }

    // Unique indexes that are not constraints (often partial or on expressions).
    let idx = client
        .query(
            "SELECT i.indrelid, i.indkey::int2[], pg_get_indexdef(i.indexrelid)
             FROM pg_index i
             WHERE i.indisunique AND NOT i.indisprimary AND i.indrelid = ANY($1)
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            &[&oids],
        )
        .await?;
    for r in &idx {
        let t = index_of[&r.get::<_, u32>(0)];
        let keys: Vec<i16> = r.get(1);
        let mut cols = attnums_to_indices(
            &tables[t],
            &keys.iter().copied().filter(|k| *k > 0).collect::<Vec<_>>(),
        );
        if keys.contains(&0) {
            // An expression such as lower(email): making the column(s) it reads
            // unique (with distinct suffixes) keeps the expression unique too.
            let def: String = r.get(2);
            let exprs = def.split_once(" USING ").map_or("", |(_, rest)| rest);
            let exprs = exprs.split(" WHERE ").next().unwrap_or("");
            for (i, c) in tables[t].columns.iter().enumerate() {
                let quoted = crate::pg::quote_ident(&c.name);
                let mentioned = exprs
                    .split(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '"'))
                    .any(|w| w == c.name || w == quoted);
                if mentioned && !cols.contains(&i) {
                    cols.push(i);
                }
            }
        }
        let def: String = r.get(2);
        if cols.is_empty() {
            tables[t].singleton |= !def.contains(" WHERE ");
            continue;
        }
        // A partial index constrains only the rows its predicate selects:
        // kept apart, so it does not demand uniqueness of every row.
        if let Some((_, predicate)) = def.split_once(" WHERE ") {
            tables[t]
                .partial_uniques
                .push((cols, predicate.to_string()));
            continue;
        }
        if !tables[t].uniques.contains(&cols) {
            tables[t].uniques.push(cols);
        }
    }
    Ok(Schema { tables })
}

/// The columns of `table` an SQL expression mentions by name (a word scan:
/// it may over-count, never under-count, a plain or quoted column name).
pub(crate) fn mentioned_columns(table: &Table, sql: &str) -> Vec<usize> {
    let words: Vec<&str> = sql
        .split(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '"'))
        .collect();
    table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            let quoted = crate::pg::quote_ident(&c.name);
            words.iter().any(|w| *w == c.name || *w == quoted)
        })
        .map(|(i, _)| i)
        .collect()
}

fn attnums_to_indices(t: &Table, attnums: &[i16]) -> Vec<usize> {
    attnums
        .iter()
        .filter_map(|a| t.columns.iter().position(|c| c.attnum == *a))
        .collect()
}
