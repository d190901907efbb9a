//! Django's word on a column, applied to the guessed spec (`ward seed
//! --init-spec --django`). The database says what Postgres accepts; the
//! models say what the application accepts (`full_clean()`): a fixed list of
//! choices, a regex, an e-mail / URL / slug, a value range, a JSON shape,
//! whether an empty value is allowed at all (`blank`), and references the
//! database does not declare (`ForeignKey(db_constraint=False)`, written as
//! `ref = "schema.table.column"`). Each hint replaces
//! the guessed generator of one column and says so in the spec's comment, so
//! the rows ward writes pass the models' own validation. The models are read
//! by `crate::django` from the project's own Django.

use super::schema::{Column, Table};
use crate::django::{Field, Models};

/// The NULL share the guesser gives nullable columns.
const NULL_RATIO: &str = ", null_ratio = 0.1";

/// Integer fields, by Django's internal type.
const INTEGER_FIELDS: &[&str] = &[
    "IntegerField",
    "SmallIntegerField",
    "BigIntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "PositiveBigIntegerField",
];

/// The widest range ward draws a bounded number from when the model gives one bound only.
const SPAN: f64 = 1000.0;

/// The spec's opening comment about the hints.
pub(crate) fn header(models: &Models) -> String {
    format!(
        "# Columns marked \"Django:\" follow the project's own models (Django {}, {} models):\n\
         # choices, validators, max_length, JSONField defaults and blank/null, so rows pass full_clean().\n",
        models.django,
        models.models.len()
    )
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn values(items: &[String], nulls: &str) -> String {
    let items: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("{{ values = [{}]{nulls} }}", items.join(", "))
}

fn generator(name: &str, nulls: &str) -> String {
    if nulls.is_empty() {
        quote(name)
    } else {
        format!("{{ gen = {}{nulls} }}", quote(name))
    }
}

fn number(v: f64, integer: bool) -> String {
    if integer {
        format!("{}", v.round() as i64)
    } else {
        format!("{v}")
    }
}

/// The bounds to draw from: the model's, the missing one at most [`SPAN`] away.
fn range(f: &Field) -> (f64, f64) {
    match (f.min, f.max) {
        (Some(lo), Some(hi)) if hi - lo <= SPAN * 1000.0 => (lo, hi),
        (Some(lo), Some(hi)) if lo.abs() <= hi.abs() => (lo, hi.min(lo.max(0.0) + SPAN)),
        (Some(lo), Some(hi)) => (lo.max(hi.min(0.0) - SPAN), hi),
        (Some(lo), None) => (lo, lo.max(0.0) + SPAN),
        (None, Some(hi)) => (hi.min(0.0) - SPAN, hi),
        (None, None) => (0.0, SPAN),
    }
}

/// The column's spec value and comment, given the guess, after the model's hints.
pub(crate) fn apply(
    models: &Models,
    t: &Table,
    col: &Column,
    guess: (String, String),
) -> (String, String) {
    let Some(model) = models.by_table(&t.name) else {
        return guess;
    };
    let Some(f) = model.field(&col.name) else {
        return guess;
    };
    let (value, note) = guess;
    if f.primary_key || col.generated {
        return (value, note);
    }
    let who = format!("Django: {}.{}", model.label, f.name);
    // NULL only where the model accepts an empty value.
    let nullable = f.null && f.blank && !col.not_null;
    let nulls = if nullable { NULL_RATIO } else { "" };
    if f.relation {
        if let Some(r) = unconstrained_ref(t, col, f) {
            return (
                format!("{{ ref = {}{nulls} }}", quote(&r)),
                format!(
                    "{note} · {who} is ForeignKey(db_constraint=False): no key in the database, values from {r}"
                ),
            );
        }
        if value.contains("null_ratio") && !nullable {
            return (
                quote("ref"),
                format!("{note} · {who} is required (blank=False): never NULL"),
            );
        }
        return (value, note);
    }
    if let Some(choices) = f.choices.as_ref().filter(|c| !c.is_empty()) {
        return (values(choices, nulls), format!("{note} · {who} choices"));
    }
    if let Some(samples) = &f.regex {
        return (
            values(samples, nulls),
            format!(
                "{note} · {who} RegexValidator: {} values that pass its validators",
                samples.len()
            ),
        );
    }
    let mut note = note;
    if let Some(pattern) = &f.regex_unsupported {
        note = format!(
            "{note} · {who} has a RegexValidator {pattern:?} ward cannot generate values for: check this generator"
        );
    }
    match f.kind.as_deref() {
        // A template from the row's names already makes valid addresses.
        Some("email") if value.contains("template") && value.contains('@') => {
            return (value, format!("{note} · {who} EmailField"));
        }
        Some("phone") => {
            return (
                generator("phone.e164", nulls),
                format!("{note} · {who} PhoneNumberField: E.164"),
            );
        }
        Some(kind @ ("email" | "url" | "slug")) => {
            let name = format!("internet.{kind}");
            return (
                generator(&name, nulls),
                format!("{note} · {who} {kind} validator"),
            );
        }
        _ => {}
    }
    if f.bounded {
        let integer = INTEGER_FIELDS.contains(&f.internal_type.as_str());
        let name = match f.internal_type.as_str() {
            _ if integer => "int",
            "FloatField" => "float",
            "DecimalField" => "numeric",
            _ => "",
        };
        if !name.is_empty() {
            let (lo, hi) = range(f);
            return (
                format!(
                    "{{ gen = {}, min = {}, max = {}{nulls} }}",
                    quote(name),
                    number(lo, integer),
                    number(hi, integer)
                ),
                format!("{note} · {who} Min/MaxValueValidator"),
            );
        }
    }
    if let Some(default) = &f.json_default {
        let shaped = match default.trim() {
            // Objects, as the default: ward's json generator makes objects.
            "{}" => generator("json", nulls),
            // Lists, never empty (an empty list is "blank" to full_clean).
            "[]" => values(
                &[
                    "[\"a\"]".to_string(),
                    "[\"a\", \"b\"]".to_string(),
                    "[1, 2, 3]".to_string(),
                ],
                nulls,
            ),
            other => values(&[other.to_string()], nulls),
        };
        return (
            shaped,
            format!("{note} · {who} JSONField default {default}"),
        );
    }
    if value.contains(NULL_RATIO) && !nullable {
        let value = value.replace(NULL_RATIO, "");
        return (
            value,
            format!("{note} · {who} is required (blank=False): never NULL"),
        );
    }
    (value, note)
}

/// `schema.table.column` of a relation the database has no foreign key for
/// (`ForeignKey(db_constraint=False)`): the related model's table, looked
/// up in the referencing table's schema.
fn unconstrained_ref(t: &Table, col: &Column, f: &Field) -> Option<String> {
    let ci = t.column(&col.name)?;
    if f.db_constraint != Some(false) || t.foreign_keys.iter().any(|k| k.columns.contains(&ci)) {
        return None;
    }
    Some(format!(
        "{}.{}.{}",
        t.schema,
        f.related_table.as_deref()?,
        f.related_column.as_deref()?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bound_gives_a_range_near_it() {
        let mut f: Field = serde_json::from_value(serde_json::json!({
            "name": "n", "column": "n", "type": "IntegerField", "null": false, "blank": false,
            "unique": false, "relation": false, "primary_key": false, "max_length": null,
            "choices": null, "min": 5.0, "max": 2147483647.0, "bounded": true, "regex": null,
            "regex_unsupported": null, "kind": null, "json_default": null
        }))
        .unwrap();
        assert_eq!(range(&f), (5.0, 1005.0));
        f.max = Some(10.0);
        assert_eq!(range(&f), (5.0, 10.0));
        f.min = Some(-2147483648.0);
        f.max = Some(-3.0);
        assert_eq!(range(&f), (-1003.0, -3.0));
    }
}
