//! The guess for one column: a generator from its type and name (UK-safe
//! ones first), a template from the row's names for e-mails and user names,
//! ULIDs and UUIDs in text columns, and JSON shaped like the column's rows
//! or its DEFAULT (see `shape`).

use serde_json::Value as Json;

use super::quote;
use crate::seed::custom::schema::{Column, PgType, Schema, Table};
use crate::seed::custom::shape::{self, Shape};

/// The column's spec value and comment. `samples` are JSON values read from
/// the table's rows (json/jsonb columns of tables that hold rows).
pub(super) fn guess_column(
    schema: &Schema,
    t: &Table,
    ci: usize,
    col: &Column,
    samples: Option<&[Json]>,
) -> (String, String) {
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
    if let Some((shape, source)) = json_shape(t, col, samples).filter(|_| !pk && !unique) {
        let text = shape.to_text();
        // A TOML literal string keeps the JSON readable (no escaped quotes).
        let text = if text.contains('\'') {
            quote(&text)
        } else {
            format!("'{text}'")
        };
        let nulls = if col.not_null {
            ""
        } else {
            ", null_ratio = 0.1"
        };
        return (
            format!("{{ shape = {text}{nulls} }}"),
            format!("{note}, shaped like {source} (keys and types only)"),
        );
    }
    // A partial UNIQUE index on the column alone binds most rows too
    // (crates.io's `users.gh_id`: UNIQUE WHERE gh_id > 0).
    let partial_unique = t.partial_uniques.iter().any(|(set, _)| set == &[ci]);
    let generator = guess_generator(t, col, pk, unique || partial_unique);
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

fn guess_generator(t: &Table, col: &Column, pk: bool, unique: bool) -> Guess {
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
    if let Some(g) = id_text(col, elem) {
        return Guess::Name(g);
    }
    // A key column's generator follows its type; only text keys get words
    // (a date or timestamp key gets dates, which are unique by rank).
    if pk {
        match elem {
            PgType::Uuid => return Guess::Name("uuid"),
            e if e.is_integer() => return Guess::Name("sequence"),
            PgType::Text {
                max_len: Some(m), ..
            } if *m <= 4 => return Guess::Name("text.code"),
            PgType::Text { .. } => return Guess::Name("lorem.word"),
            _ => {}
        }
    }
    // A UNIQUE integer (an external id: `github_id`, `gh_id`) is numbered
    // like a key: `int`'s default range holds 1,001 values, so the spec
    // stopped working as soon as its row counts were raised past that. With
    // a CHECK upper bound, `int` keeps to the range (and says when the rows
    // do not fit it).
    if unique && ty.is_integer() && col.check.max.is_none() {
        return Guess::Name("sequence");
    }
    let n = col.name.to_lowercase();
    let is = |names: &[&str]| names.contains(&n.as_str());
    let has = |parts: &[&str]| parts.iter().any(|p| n.contains(p));
    let text = matches!(elem, PgType::Text { .. });
    let temporal = matches!(elem, PgType::Date | PgType::Timestamp | PgType::TimestampTz);
    if text {
        return text_by_name(t, &n, elem);
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

/// A text generator by the column's (or a JSON key's) lower-case name `n`.
fn text_by_name(t: &Table, n: &str, elem: &PgType) -> Guess {
    let table = t.name.to_lowercase();
    let is = |names: &[&str]| names.contains(&n);
    let has = |parts: &[&str]| parts.iter().any(|p| n.contains(p));
    let g = if has(&["email"]) {
        "internet.email"
    } else if has(&["phone", "mobile"]) || is(&["tel", "telephone"]) {
        if says_uk(t, n) {
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
    } else if matches!(elem, PgType::Text { max_len: Some(m), .. } if *m <= 4) {
        // Two to four characters: a code (`GB`, `GBR`), as real short
        // columns hold — a word cut to fit repeats itself.
        "text.code"
    } else if matches!(elem, PgType::Text { max_len: Some(m), .. } if *m < 6) {
        "lorem.word"
    } else {
        "lorem.words"
    };
    Guess::Name(g)
}

/// ULIDs and UUIDs kept in text columns: by name (`ulid`, `*_ulid`, `uuid`,
/// `*_uuid`, `guid`), or an id-like name (`id`, `*_id`, `key`) with exactly
/// the length of one (`char(26)`, `varchar(36)`, or a CHECK on the length).
fn id_text(col: &Column, elem: &PgType) -> Option<&'static str> {
    let PgType::Text { max_len, .. } = elem else {
        return None;
    };
    let len = match (*max_len, col.check.max_len) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let n = col.name.to_lowercase();
    let named = |w: &str| n == w || n.ends_with(&format!("_{w}"));
    let id_like = named("id") || named("key") || named("pk");
    let fits = |need: u32| len.is_none_or(|l| l >= need);
    if (named("ulid") && fits(26)) || (id_like && len == Some(26)) {
        Some("ulid")
    } else if ((named("uuid") || named("guid")) && fits(36)) || (id_like && len == Some(36)) {
        Some("uuid")
    } else {
        None
    }
}

/// The shape of a json/jsonb column: of the values sampled from its rows,
/// else of its DEFAULT when that has content; and where it came from.
fn json_shape(t: &Table, col: &Column, samples: Option<&[Json]>) -> Option<(Shape, String)> {
    let elem = match &col.ty {
        PgType::Array(e, _) => e.as_ref(),
        other => other,
    };
    if !matches!(elem, PgType::Json | PgType::Jsonb) {
        return None;
    }
    let by_name = |key: &str| {
        let text = PgType::Text {
            max_len: None,
            fixed: false,
        };
        match text_by_name(t, &key.to_lowercase(), &text) {
            Guess::Name(g) => g.to_string(),
            Guess::Values(_) => "person.sex".to_string(),
            _ => "lorem.words".to_string(),
        }
    };
    if let Some(s) = samples.filter(|s| !s.is_empty()) {
        let what = format!("the {} values sampled from its rows", s.len());
        return Some((shape::derive(s, &by_name), what));
    }
    let default = shape::default_value(col.default.as_deref()?)?;
    Some((shape::derive(&[default], &by_name), "its DEFAULT".into()))
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
