//! `ward seed --init-spec`: a starter spec for the connected database, with a
//! row count for every table and a generator guessed for every column from
//! its name and type (UK-safe generators first). The guessed spec seeds the
//! database as it is; people then edit it. `column` guesses one column,
//! `cycles` finds the tables no insert order can fill.

mod column;
mod cycles;

use std::collections::HashMap;
use std::fmt::Write;

use serde_json::Value as Json;

use super::schema::{Column, Schema, Table};
use column::guess_column;

/// Tables that hold migration history or extension data: never seeded.
const SKIP: &[&str] = &[
    "django_migrations",
    "_sqlx_migrations",
    "__diesel_schema_migrations",
    "schema_migrations",
    "ar_internal_metadata",
    "flyway_schema_history",
    "refinery_schema_history",
    "goose_db_version",
    "knex_migrations",
    "knex_migrations_lock",
    "alembic_version",
    "spatial_ref_sys",
];

/// Rows given to tables without a parent.
const ROOT_ROWS: u64 = 100;

fn bare_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Whether `from` reaches `to` by following foreign keys.
fn reaches(schema: &Schema, from: usize, to: usize, skip: &[bool]) -> bool {
    let mut stack = vec![from];
    let mut seen = vec![false; schema.tables.len()];
    while let Some(t) = stack.pop() {
        if t == to {
            return true;
        }
        if std::mem::replace(&mut seen[t], true) {
            continue;
        }
        for f in &schema.tables[t].foreign_keys {
            if !skip[f.ref_table] && f.ref_table != t {
                stack.push(f.ref_table);
            }
        }
    }
    false
}

/// A framework's word on a column (e.g. Django's models, see
/// `django_hints`): takes the guessed (value, comment) and returns the final one.
pub(crate) type ColumnHint<'a> = &'a dyn Fn(&Table, &Column, (String, String)) -> (String, String);

/// What `--init-spec` read from the database besides its schema.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    /// Why table `t` is left as it is (see [`super::kept::kept_tables`]).
    pub kept: Vec<Option<String>>,
    /// How many rows each kept table holds (up to 1,000).
    pub kept_rows: Vec<u64>,
    /// JSON values sampled from the rows, by (table, column).
    pub samples: HashMap<(usize, usize), Vec<Json>>,
}

/// The spec text, and the tables it skips.
pub(crate) fn spec_text(
    schema: &Schema,
    database: &str,
    seed: u64,
    facts: &Facts,
    hint: Option<ColumnHint>,
) -> (String, Vec<String>) {
    let (kept, kept_rows) = (&facts.kept[..], &facts.kept_rows[..]);
    let mut skip: Vec<bool> = schema
        .tables
        .iter()
        .enumerate()
        .map(|(ti, t)| SKIP.contains(&t.name.as_str()) || kept.get(ti).is_some_and(Option::is_some))
        .collect();
    // Tables no insert order can fill are left alone too, so `--spec`
    // accepts the spec and fills the rest.
    let stuck = cycles::not_insertable(schema, &skip);
    for (ti, why) in stuck.iter().enumerate() {
        skip[ti] |= why.is_some();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# ward seed spec for database {database:?}, written by `ward seed --init-spec`.\n\
         # Seed with: ward seed --spec THIS_FILE [--truncate]\n\
         #\n\
         # Each table has `rows = N`, or a fan-out per parent row:\n\
         #   rows = {{ per = \"schema.parent\", min = 0, max = 3 }}   (or count = N, or mean = M)\n\
         # Each column has a generator: a name (\"person.given_name\"), or a table with\n\
         # gen / values / template / sql, and optionally null_ratio, min, max, from, to.\n\
         # Foreign keys (\"ref\") always point at existing rows; UNIQUE and PRIMARY KEY\n\
         # columns get unique values; CHECK ranges and IN lists are respected.\n\
         # `skip = true` leaves a table alone. See README \"Seeding your own schema\".\n\
         #\n\
         # Settings for every column of an SQL type (a column's own settings win;\n\
         # defaults never choose a generator; null_ratio only touches nullable columns):\n\
         # [defaults]\n\
         # timestamptz = {{ null_ratio = 0.1 }}\n\
         # text = {{ null_ratio = 0.05 }}\n\
         version = 1\nseed = {seed}\n"
    );
    for (ti, t) in schema.tables.iter().enumerate() {
        let _ = writeln!(out, "[tables.{}]", quote(&t.qualified()));
        if skip[ti] {
            let Some(why) = kept.get(ti).cloned().flatten().or(stuck[ti].clone()) else {
                let _ = writeln!(
                    out,
                    "skip = true  # migration history or extension data: never seeded\n"
                );
                continue;
            };
            // The rest is written too: its JSON shapes, and a start for
            // whoever seeds it after all.
            let _ = writeln!(
                out,
                "skip = true  # {why}\n# (to seed it instead: delete `skip = true`, and seed with --truncate if it holds rows)"
            );
        }
        let fan = fan_out(schema, ti, &skip, kept_rows);
        match &fan {
            _ if t.singleton => {
                let _ = writeln!(
                    out,
                    "rows = 1  # a unique index on a constant: one row at most"
                );
            }
            Some((parent, via, max)) => {
                let via = via
                    .as_ref()
                    .map(|v| format!(", via = {}", quote(v)))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "rows = {{ per = {}{via}, min = 0, max = {max} }}",
                    quote(&schema.tables[*parent].qualified())
                );
            }
            None => match one_to_one_kept(t, kept_rows) {
                Some((parent, n)) if n < ROOT_ROWS => {
                    let _ = writeln!(
                        out,
                        "rows = {n}  # one row per row of {}, which is kept as it is",
                        schema.tables[parent].qualified()
                    );
                }
                _ => {
                    let _ = writeln!(out, "rows = {ROOT_ROWS}");
                }
            },
        }
        for c in &t.unparsed_checks {
            let _ = writeln!(
                out,
                "# CHECK ward cannot read: {c} — make sure the generators below satisfy it"
            );
        }
        for (ci, col) in t.columns.iter().enumerate() {
            if col.generated {
                let _ = writeln!(out, "# {}: generated by the database", col.name);
                continue;
            }
            let samples = facts.samples.get(&(ti, ci)).map(Vec::as_slice);
            let guess = guess_column(schema, t, ci, col, samples);
            let (value, note) = match hint {
                Some(h) => h(t, col, guess),
                None => guess,
            };
            let _ = writeln!(out, "columns.{} = {value}  # {note}", bare_key(&col.name));
        }
        out.push('\n');
    }
    let skipped = schema
        .tables
        .iter()
        .zip(&skip)
        .filter(|(_, s)| **s)
        .map(|(t, _)| t.qualified())
        .collect();
    (out, skipped)
}

/// The parent to fan out from (a NOT NULL foreign key to another seeded table
/// that does not lead back here), the column naming that key when the table
/// has several keys to the parent (the spec's `via`, which `--spec` requires
/// then), and the most children per parent.
/// The kept parent with the fewest rows that a NOT NULL one-to-one key of
/// `t` refers to, and its row count: `t` cannot have more rows than that.
fn one_to_one_kept(t: &Table, kept_rows: &[u64]) -> Option<(usize, u64)> {
    t.foreign_keys
        .iter()
        .filter(|f| kept_rows.get(f.ref_table).is_some_and(|n| *n > 0))
        .filter(|f| f.columns.iter().all(|c| t.columns[*c].not_null))
        .filter(|f| {
            t.unique_sets()
                .any(|u| u.iter().all(|c| f.columns.contains(c)))
        })
        .map(|f| (f.ref_table, kept_rows[f.ref_table]))
        .min_by_key(|(_, n)| *n)
}

fn fan_out(
    schema: &Schema,
    ti: usize,
    skip: &[bool],
    kept_rows: &[u64],
) -> Option<(usize, Option<String>, u64)> {
    let t = &schema.tables[ti];
    // A one-to-one key allows one child per parent.
    let one_to_one = |f: &super::schema::ForeignKey| {
        t.unique_sets()
            .any(|u| super::schema::same_columns(u, &f.columns))
    };
    let candidates: Vec<_> = t
        .foreign_keys
        .iter()
        .filter(|f| {
            f.ref_table != ti
                && !skip[f.ref_table]
                && f.columns.iter().all(|c| t.columns[*c].not_null)
                && !reaches(schema, f.ref_table, ti, skip)
        })
        .collect();
    // A one-to-one key must be the fan-out one: any other parent may have
    // fewer rows than this table would get from it.
    let f = *candidates
        .iter()
        .find(|f| one_to_one(f))
        .or(candidates.first())?;
    let one_to_one = one_to_one(f);
    // `via` names a column of this key that no other key to the parent shares.
    let siblings: Vec<_> = t
        .foreign_keys
        .iter()
        .filter(|g| g.ref_table == f.ref_table && !std::ptr::eq(*g, f))
        .collect();
    let via = (!siblings.is_empty()).then(|| {
        let own = f
            .columns
            .iter()
            .find(|c| siblings.iter().all(|g| !g.columns.contains(c)))
            .unwrap_or(&f.columns[0]);
        t.columns[*own].name.clone()
    });
    // A key unique together with the fan-out one (a many-to-many join
    // table's pair) needs a different row of its parent for each child: a
    // kept parent's rows cap the fan-out.
    let cap = t
        .foreign_keys
        .iter()
        .filter(|g| !std::ptr::eq(*g, f) && kept_rows.get(g.ref_table).is_some_and(|n| *n > 0))
        .filter(|g| {
            t.unique_sets().any(|u| {
                u.iter()
                    .all(|c| f.columns.contains(c) || g.columns.contains(c))
                    && u.iter().any(|c| g.columns.contains(c))
                    && f.columns.iter().all(|c| u.contains(c))
            })
        })
        .map(|g| kept_rows[g.ref_table])
        .min()
        .unwrap_or(u64::MAX)
        .min(few_values_cap(t, &f.columns));
    Some((f.ref_table, via, if one_to_one { 1 } else { cap.min(3) }))
}

/// The most children per parent a UNIQUE set of the fan-out key `key` plus
/// columns of few values allows: (parent, is_draft) takes two per parent, a
/// three-label enum three. Unbounded when another column of the set can take
/// many values (or is another key: the pairing caps that).
fn few_values_cap(t: &Table, key: &[usize]) -> u64 {
    let values = |c: usize| -> Option<u64> {
        let col = &t.columns[c];
        if let Some(v) = &col.check.values {
            return Some(v.len() as u64);
        }
        match &col.ty {
            super::schema::PgType::Bool => Some(2),
            super::schema::PgType::Enum(labels) => Some(labels.len() as u64),
            _ => None,
        }
    };
    t.unique_sets()
        .filter(|u| key.iter().all(|c| u.contains(c)) && u.len() > key.len())
        .filter_map(|u| {
            u.iter()
                .filter(|c| !key.contains(c))
                .map(|c| values(*c))
                .collect::<Option<Vec<u64>>>()
                .and_then(|v| v.into_iter().max())
        })
        .min()
        .unwrap_or(u64::MAX)
}
