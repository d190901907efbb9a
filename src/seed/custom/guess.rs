//! `ward seed --init-spec`: a starter spec for the connected database, with a
//! row count for every table and a generator guessed for every column from
//! its name and type (UK-safe generators first). The guessed spec seeds the
//! database as it is; people then edit it.

use std::fmt::Write;

use super::schema::{Column, PgType, Schema, Table};

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
pub type ColumnHint<'a> = &'a dyn Fn(&Table, &Column, (String, String)) -> (String, String);

/// The spec text, and the tables it skips. `kept[t]` says why table `t`
/// is left as it is (see [`super::kept::kept_tables`]), `kept_rows[t]` how
/// many rows it holds.
pub fn spec_text(
    schema: &Schema,
    database: &str,
    seed: u64,
    (kept, kept_rows): (&[Option<String>], &[u64]),
    hint: Option<ColumnHint>,
) -> (String, Vec<String>) {
    let skip: Vec<bool> = schema
        .tables
        .iter()
        .enumerate()
        .map(|(ti, t)| SKIP.contains(&t.name.as_str()) || kept.get(ti).is_some_and(Option::is_some))
        .collect();
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
            let why = kept
                .get(ti)
                .cloned()
                .flatten()
                .unwrap_or_else(|| "migration history or extension data: never seeded".into());
            let _ = writeln!(out, "skip = true  # {why}\n");
            continue;
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
            let guess = guess_column(schema, t, ci, col);
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
        t.unique_sets().any(|u| {
            let mut a = u.clone();
            let mut b = f.columns.clone();
            a.sort();
            b.sort();
            a == b
        })
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
        .unwrap_or(u64::MAX);
    Some((f.ref_table, via, if one_to_one { 1 } else { cap.min(3) }))
}

fn guess_column(schema: &Schema, t: &Table, ci: usize, col: &Column) -> (String, String) {
    let ty = col.sql_type.clone();
    if let Some(f) = t.foreign_keys.iter().find(|f| f.columns.contains(&ci)) {
        let rt = &schema.tables[f.ref_table];
        let rc = &rt.columns[f.ref_columns[f.columns.iter().position(|c| *c == ci).unwrap()]];
        let v = if col.not_null {
            quote("ref")
        } else {
            "{ gen = \"ref\", null_ratio = 0.1 }".into()
        };
        return (v, format!("→ {}.{}", rt.qualified(), rc.name));
    }
    let pk = t.primary_key.contains(&ci);
    let unique = t.is_unique_column(ci);
    let mut note = ty.clone();
    if pk {
        note.push_str(", primary key");
    } else if unique {
        note.push_str(", unique");
    }
    if col.is_serial() && !pk {
        return (quote("default"), format!("{note}, from its sequence"));
    }
    // E-mail addresses and user names that match the row's own names.
    if let Some((given, family)) = name_columns(t) {
        let n = col.name.to_lowercase();
        let template = if n.contains("email") && matches!(col.ty, PgType::Text { .. }) {
            Some(format!(
                "{{{given}|slug}}.{{{family}|slug}}{{row}}@example.org"
            ))
        } else if matches!(n.as_str(), "username" | "user_name" | "login")
            && matches!(col.ty, PgType::Text { .. })
        {
            Some(format!("{{{given}|slug}}{{{family}|slug}}{{row}}"))
        } else {
            None
        };
        if let Some(t) = template {
            return (
                format!("{{ template = {} }}", quote(&t)),
                format!("{note}, from the row's names"),
            );
        }
    }
    let generator = guess_generator(t, col, pk);
    let value = match generator {
        Guess::Name(g) if col.not_null || pk || unique => quote(g),
        Guess::Name(g) => format!("{{ gen = {}, null_ratio = 0.1 }}", quote(g)),
        Guess::Values(v) => {
            let items: Vec<String> = v.iter().map(|s| quote(s)).collect();
            format!("{{ values = [{}] }}", items.join(", "))
        }
        Guess::Default => quote("default"),
        Guess::Sql(sql) => format!("{{ sql = {} }}", quote(&sql)),
    };
    (value, note)
}

/// The given- and family-name columns of a table, when it has both.
fn name_columns(t: &Table) -> Option<(String, String)> {
    let find = |names: &[&str]| {
        t.columns
            .iter()
            .find(|c| {
                names.contains(&c.name.to_lowercase().as_str())
                    && matches!(c.ty, PgType::Text { .. })
            })
            .map(|c| c.name.clone())
    };
    Some((
        find(&["first_name", "given_name", "forename", "firstname"])?,
        find(&["last_name", "family_name", "surname", "lastname"])?,
    ))
}

/// An SQL constant for a NOT NULL column of a type ward cannot write.
fn other_type_literal(type_name: &str) -> Option<String> {
    let literal = match type_name {
        "ltree" => "top",
        "inet" | "cidr" => "192.0.2.1",
        "macaddr" => "02:00:00:00:00:01",
        // Not empty: an empty search vector counts as blank to frameworks
        // that require the field (Django's SearchVectorField).
        "tsvector" => "ward:1",
        "tsquery" => "ward",
        "point" => "(0,0)",
        "int4range" | "int8range" | "numrange" => "[0,1)",
        "tstzrange" | "tsrange" => "[2020-01-01,2020-01-02)",
        "xml" => "<x/>",
        "money" => "0",
        _ => return None,
    };
    Some(format!("'{literal}'::{type_name}"))
}

enum Guess {
    Sql(String),
    Name(&'static str),
    Values(Vec<String>),
    Default,
}

fn guess_generator(t: &Table, col: &Column, pk: bool) -> Guess {
    let ty = &col.ty;
    let elem = match ty {
        PgType::Array(e, _) => e.as_ref(),
        other => other,
    };
    if let Some(values) = &col.check.values {
        return Guess::Values(values.clone());
    }
    if let PgType::Enum(labels) = elem {
        return Guess::Values(labels.clone());
    }
    // A key column's generator follows its type; only text keys get words
    // (a date or timestamp key gets dates, which are unique by rank).
    if pk {
        match elem {
            PgType::Uuid => return Guess::Name("uuid"),
            e if e.is_integer() => return Guess::Name("sequence"),
            PgType::Text { .. } => return Guess::Name("lorem.word"),
            _ => {}
        }
    }
    let n = col.name.to_lowercase();
    let table = t.name.to_lowercase();
    let is = |names: &[&str]| names.contains(&n.as_str());
    let has = |parts: &[&str]| parts.iter().any(|p| n.contains(p));
    let text = matches!(elem, PgType::Text { .. });
    let temporal = matches!(elem, PgType::Date | PgType::Timestamp | PgType::TimestampTz);
    if text {
        let g = if has(&["email"]) {
            "internet.email"
        } else if has(&["phone", "mobile"]) || is(&["tel", "telephone"]) {
            if says_uk(t, &n) {
                "phone.uk"
            } else {
                "phone.intl"
            }
        } else if is(&[
            "first_name",
            "given_name",
            "forename",
            "firstname",
            "given_names",
        ]) {
            "person.given_name"
        } else if is(&["last_name", "family_name", "surname", "lastname"]) {
            "person.family_name"
        } else if is(&["full_name", "display_name"])
            || (n == "name"
                && [
                    "user",
                    "person",
                    "patient",
                    "practitioner",
                    "doctor",
                    "staff",
                    "customer",
                    "member",
                    "contact",
                ]
                .iter()
                .any(|w| table.contains(w)))
        {
            "person.full_name"
        } else if is(&["username", "user_name", "login", "handle"]) {
            "internet.username"
        } else if has(&["password"]) {
            "internet.password_hash"
        } else if has(&["nhs"]) {
            "patient.nhs_number"
        } else if has(&["postcode", "post_code", "zip", "postal"]) {
            "address.postcode"
        } else if has(&["address", "street", "line1", "line_1"]) {
            "address.street"
        } else if is(&["city", "town"]) {
            "address.town"
        } else if is(&["version", "semver", "vers"]) || (n == "num" && table.contains("version")) {
            "version.semver"
        } else if has(&["slug"]) {
            "internet.slug"
        } else if has(&["url", "website", "homepage"]) {
            "internet.url"
        } else if is(&["ip", "ip_address", "ipaddress"]) {
            "internet.ip"
        } else if is(&["sex", "gender"]) {
            return Guess::Values(vec!["F".into(), "M".into()]);
        } else if has(&["snomed"]) {
            "clinical.snomed"
        } else if has(&["icd10", "icd_10"]) {
            "clinical.icd10"
        } else if has(&["diagnosis", "condition", "problem"]) {
            "clinical.condition"
        } else if has(&["medication", "medicine", "drug"]) {
            "clinical.medicine"
        } else if has(&["allerg"]) {
            "clinical.allergen"
        } else if has(&["company", "organisation", "organization", "employer"]) {
            "company.name"
        } else if has(&["job", "occupation"]) || is(&["role"]) {
            "job.title"
        } else if has(&[
            "description",
            "note",
            "comment",
            "bio",
            "body",
            "content",
            "summary",
            "message",
            "text",
        ]) {
            "lorem.sentence"
        } else if is(&["name", "title", "label"]) {
            "lorem.words"
        } else if matches!(elem, PgType::Text { max_len: Some(m), .. } if *m < 6) {
            "lorem.word"
        } else {
            "lorem.words"
        };
        return Guess::Name(g);
    }
    if temporal && (has(&["birth", "dob"]) || is(&["born"])) {
        return Guess::Name("person.date_of_birth");
    }
    Guess::Name(match elem {
        PgType::Bool => "bool",
        e if e.is_integer() => "int",
        PgType::Float4 | PgType::Float8 => "float",
        PgType::Numeric(_) => "numeric",
        PgType::Date => "date",
        PgType::Timestamp | PgType::TimestampTz => "timestamp",
        PgType::Time => "time",
        PgType::Interval => "interval",
        PgType::Uuid => "uuid",
        PgType::Json | PgType::Jsonb => "json",
        PgType::Bytea => "bytes",
        _ => {
            if col.default.is_some() || !col.not_null {
                return Guess::Default;
            }
            // Types ward cannot encode: a constant the server parses, when the
            // type is a common one.
            return match elem {
                PgType::Other(name) => match other_type_literal(name) {
                    Some(sql) => Guess::Sql(sql),
                    None => Guess::Name("null"),
                },
                _ => Guess::Name("null"),
            };
        }
    })
}

/// Whether something in the table says its phone numbers are British: the
/// table's or a column's name (`uk`, `gb`, `nhs`, `british` as a word, or
/// a `postcode` column), or a column default
/// naming the country (`'GB'`, `'UK'`, `'United Kingdom'`). Otherwise phone
/// columns get country-neutral fictional numbers.
fn says_uk(t: &Table, column: &str) -> bool {
    let words = |s: &str| -> bool {
        s.to_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| matches!(w, "uk" | "gb" | "nhs" | "british"))
    };
    words(column)
        || words(&t.name)
        || t.columns
            .iter()
            .any(|c| words(&c.name) || c.name.to_lowercase().contains("postcode"))
        || t.columns.iter().any(|c| {
            c.default.as_deref().is_some_and(|d| {
                let d = d.to_lowercase();
                d.contains("'gb'") || d.contains("'uk'") || d.contains("united kingdom")
            })
        })
}
