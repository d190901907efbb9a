//! Comparing two fingerprints for the round trip: by name (a down that drops
//! and re-creates a table gives it a new oid), schema and row counts always,
//! values unless the state was reached by a re-apply that assigns new ones.

use super::super::fingerprint::Fingerprint;
use super::super::report::{Finding, Level};
use super::super::rule::Rule;

/// One difference between two fingerprints, and the table or column it
/// is about (what an accept entry names), when it is about one.
#[derive(Debug, Clone)]
pub(super) struct Diff {
    pub text: String,
    pub object: Option<String>,
}

impl Diff {
    fn on(object: String, text: String) -> Diff {
        Diff {
            text,
            object: Some(object),
        }
    }
    fn plain(text: String) -> Diff {
        Diff { text, object: None }
    }

    /// A finding about this difference, with its object when it has one.
    pub(super) fn finding(&self, message: String) -> Finding {
        let f = Finding::new(Level::Fail, Rule::DownMigration, message);
        match &self.object {
            Some(o) => f.object(o.clone()),
            None => f,
        }
    }
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Differences between two fingerprints, by name (oids change when a down drops and recreates).
pub(super) fn compare(a: &Fingerprint, b: &Fingerprint) -> Vec<Diff> {
    compare_with(a, b, true)
}

/// Differences between the state after a first apply and the state after
/// the same migrations ran again on a state that compared equal to the one
/// the first apply started from: schema and row counts only. Their values
/// can only differ by what is assigned anew on every run (sequence and
/// identity ids, now(), uuid4() in Python), which is no defect of a reverse.
pub(super) fn compare_reapplied(a: &Fingerprint, b: &Fingerprint) -> Vec<Diff> {
    compare_with(a, b, false)
}

fn compare_with(a: &Fingerprint, b: &Fingerprint, values: bool) -> Vec<Diff> {
    let mut out = Vec::new();
    for t in a.tables.values() {
        let before = out.len();
        let Some(u) = b.table_named(&t.schema, &t.name) else {
            out.push(Diff::on(
                t.display(),
                format!("table {} is missing", t.display()),
            ));
            continue;
        };
        if t.rows != u.rows {
            out.push(Diff::on(
                t.display(),
                format!("{} has {} rows instead of {}", t.display(), u.rows, t.rows),
            ));
        }
        for c in &t.columns {
            let Some(d) = u.column_named(&c.name) else {
                out.push(Diff::on(
                    format!("{}.{}", t.display(), c.name),
                    format!("column {}.{} is missing", t.display(), c.name),
                ));
                continue;
            };
            if c.ty != d.ty || c.not_null != d.not_null || c.default != d.default {
                let shown = |ty: &str, not_null: bool, default: &Option<String>| {
                    format!(
                        "{ty}{}{}",
                        if not_null { " NOT NULL" } else { "" },
                        default
                            .as_ref()
                            .map(|x| format!(" DEFAULT {x}"))
                            .unwrap_or_else(|| " without a default".into())
                    )
                };
                out.push(Diff::on(
                    format!("{}.{}", t.display(), c.name),
                    format!(
                        "column {}.{} is {} instead of {}",
                        t.display(),
                        c.name,
                        shown(&d.ty, d.not_null, &d.default),
                        shown(&c.ty, c.not_null, &c.default)
                    ),
                ));
            }
            let (true, Some((n1, h1)), Some((n2, h2))) = (
                values,
                t.column_data.get(&c.attnum),
                u.column_data.get(&d.attnum),
            ) else {
                continue;
            };
            if h1 != h2 {
                out.push(Diff::on(
                    format!("{}.{}", t.display(), c.name),
                    format!(
                        "values of {}.{} differ ({n1} non-NULL before, {n2} after)",
                        t.display(),
                        c.name
                    ),
                ));
            }
        }
        for d in &u.columns {
            if t.column_named(&d.name).is_none() {
                out.push(Diff::on(
                    format!("{}.{}", t.display(), d.name),
                    format!("extra column {}.{}", t.display(), d.name),
                ));
            }
        }
        // Every column holds the same values, but not in the same rows
        // (an undo that re-derives a column through the wrong join).
        let moved = values
            && out.len() == before
            && !t.row_hash.is_empty()
            && !u.row_hash.is_empty()
            && t.row_hash != u.row_hash;
        if moved {
            out.push(Diff::on(
                t.display(),
                format!(
                    "values of {} moved between rows (each column holds the same values as before, \
                     not in the same rows)",
                    t.display()
                ),
            ));
        }
    }
    for u in b.tables.values() {
        if a.table_named(&u.schema, &u.name).is_none() {
            out.push(Diff::on(
                u.display(),
                format!("extra table {}", u.display()),
            ));
        }
    }
    let names = |f: &Fingerprint| {
        let mut v: Vec<String> = f
            .indexes
            .iter()
            .map(|i| format!("index {}", i.def))
            .chain(f.constraints.iter().map(|c| {
                let t = f
                    .tables
                    .get(&c.table)
                    .map(|t| t.display())
                    .unwrap_or_default();
                format!("constraint {} on {t}: {}", c.name, c.def)
            }))
            .collect();
        v.sort();
        v
    };
    let (na, nb) = (names(a), names(b));
    for x in na.iter().filter(|x| !nb.contains(x)) {
        out.push(Diff::plain(format!("{x} is missing")));
    }
    for x in nb.iter().filter(|x| !na.contains(x)) {
        out.push(Diff::plain(format!("extra {x}")));
    }
    out
}
