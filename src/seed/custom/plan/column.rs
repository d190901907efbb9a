//! One column's plan: a foreign key follows its parent, `sql`/`template`/
//! `values`/`gen` become a generator, and each is checked against the
//! column's type, NOT NULL and CHECK constraints before any row is made.

use anyhow::Result;
use chrono::NaiveDate;

use super::super::generators::{self, Gen, Kind, Part};
use super::super::schema::{Column, PgType, Table};
use super::super::spec::{self, ColumnSpec, SpecFile};
use super::super::values;
use super::{ColPlan, FkMode, TablePlan, Uniq};

/// What planning a column needs to know about its table.
#[derive(Clone, Copy)]
pub(super) struct TableContext<'a> {
    pub(super) spec: &'a SpecFile,
    pub(super) table: &'a Table,
    pub(super) table_plan: &'a TablePlan,
    /// The date generated dates are relative to.
    pub(super) as_of: NaiveDate,
    /// The table's foreign keys filled in a second pass (they close a cycle).
    pub(super) deferred_fks: &'a [usize],
}

fn text_max_len(col: &Column) -> Option<u32> {
    let ty_len = match &col.ty {
        PgType::Text { max_len, .. } => *max_len,
        _ => None,
    };
    match (ty_len, col.check.max_len) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

pub(super) fn column_plan(
    cx: &TableContext<'_>,
    ci: usize,
    col: &Column,
    cs: Option<&ColumnSpec>,
) -> Result<ColPlan> {
    let TableContext {
        spec,
        table,
        table_plan: tp,
        as_of,
        deferred_fks,
    } = *cx;
    let qn = table.qualified();
    let err = |m: &str| spec::error(spec, &qn, Some(&col.name), m);
    if col.generated {
        return Ok(ColPlan::Omit);
    }
    // `[defaults]` for the column's type fill what its own entry leaves out.
    let merged;
    let cs = match (cs, spec.defaults.get(&spec::normal_type(&col.sql_type))) {
        (Some(c), Some(d)) => {
            merged = c.with_defaults(d, col.not_null);
            Some(&merged)
        }
        (c, _) => c,
    };
    let null_ratio = cs.and_then(|c| c.null_ratio).unwrap_or(0.0);
    if null_ratio > 0.0 && col.not_null {
        return Err(err("null_ratio on a NOT NULL column — remove null_ratio"));
    }
    // Foreign key columns follow their parent, unless the spec gives
    // `sql`, `values` or a `template` (the user then answers for the
    // reference; the database still checks it).
    let by_hand = cs.is_some_and(|c| c.sql.is_some() || c.values.is_some() || c.template.is_some());
    if let Some((fk, part)) = table
        .foreign_keys
        .iter()
        .enumerate()
        .find_map(|(k, f)| f.columns.iter().position(|c| *c == ci).map(|p| (k, p)))
        .filter(|_| !by_hand)
    {
        let explicit = cs.and_then(|c| c.generator.as_deref());
        if explicit == Some("default") {
            return Ok(ColPlan::Omit);
        }
        if let Some(g) = explicit.filter(|g| *g != "ref") {
            return Err(err(&format!(
                "is a foreign key, so ward fills it from the referenced table: use gen = \"ref\" (not {g:?})"
            )));
        }
        let mode = if tp.fanout.as_ref().is_some_and(|f| f.fk == fk) {
            FkMode::FanParent
        } else {
            FkMode::Random
        };
        return Ok(ColPlan::Fk {
            fk,
            part,
            null_ratio,
            mode,
            deferred: deferred_fks.contains(&fk),
        });
    }
    let Some(cs) = cs else {
        // Not in the spec: the database's default, or NULL.
        if col.not_null && col.default.is_none() && !col.identity {
            return Err(err(
                "is NOT NULL without a default but has no generator in the spec — add one (e.g. `columns.NAME = \"lorem.word\"`)",
            ));
        }
        return Ok(ColPlan::Omit);
    };
    if let Some(sql) = &cs.sql {
        return Ok(ColPlan::Sql(sql.clone()));
    }
    let max_len = text_max_len(col);
    if let Some(t) = &cs.template {
        let parts = generators::parse_template(t).map_err(|m| err(&m))?;
        for p in &parts {
            if let Part::Col { name, .. } = p {
                let Some(other) = table.column(name) else {
                    return Err(err(&format!(
                        "template refers to {name:?}, which is not a column of {qn}"
                    )));
                };
                if other == ci {
                    return Err(err("template refers to its own column"));
                }
            }
        }
        if !generators::fits(Kind::Text, &col.ty) {
            return Err(err(&format!(
                "a template makes text; the column is {}",
                col.sql_type
            )));
        }
        return Ok(ColPlan::Template {
            parts,
            null_ratio,
            max_len,
        });
    }
    let generator = if let Some(values) = &cs.values {
        let (items, weights): (Vec<String>, Vec<u64>) = values.iter().cloned().unzip();
        Gen::values(items, weights)
    } else {
        match cs.generator.as_deref() {
            Some("default") => {
                if col.not_null && col.default.is_none() && !col.identity {
                    return Err(err(
                        "gen = \"default\" but the column is NOT NULL without a default — pick a generator",
                    ));
                }
                return Ok(ColPlan::Omit);
            }
            Some("ref") => {
                return Err(err(
                    "gen = \"ref\" but the column is not a foreign key — give it a generator for its type (or \"default\")",
                ));
            }
            Some(name) => Gen::named(name, &cs.params, col, as_of).map_err(|m| err(&m))?,
            None => return Err(err("needs a generator: gen, values, template or sql")),
        }
    };
    // `values` are typed by the column they fill.
    if let Gen::Values { items, .. } = &generator
        && !matches!(col.ty, PgType::Text { .. } | PgType::Enum(_))
    {
        for i in items {
            values::parse_as(i, &col.ty).map_err(|m| err(&m))?;
        }
        return Ok(ColPlan::Gen {
            generator,
            null_ratio,
            unique: Uniq::No,
            max_len: None,
        });
    }
    let kind = generator.kind();
    if !generators::fits(kind, &col.ty) {
        return Err(err(&format!(
            "the generator makes {}, the column is {} — pick a generator for that type",
            generators::kind_name(kind),
            col.sql_type
        )));
    }
    // Allowed values: enum labels and CHECK … IN (…) lists.
    let allowed: Option<Vec<String>> = match (&col.ty, &col.check.values) {
        (PgType::Enum(labels), _) => Some(labels.clone()),
        (_, Some(v)) => Some(v.clone()),
        _ => None,
    };
    if let Some(allowed) = allowed {
        match &generator {
            Gen::Values { items, .. } => {
                if let Some(bad) = items.iter().find(|i| !allowed.contains(i)) {
                    return Err(err(&format!(
                        "value {bad:?} is not allowed here (allowed: {})",
                        allowed.join(", ")
                    )));
                }
            }
            Gen::Null => {}
            _ => {
                return Err(err(&format!(
                    "only {} are allowed here — use values = [...]",
                    allowed.join(", ")
                )));
            }
        }
    }
    if let (Gen::Int { min, max }, (lo, hi)) = (&generator, col.check.int_bounds())
        && (lo.is_some_and(|lo| *min < lo) || hi.is_some_and(|hi| *max > hi))
    {
        return Err(err(&format!(
            "int range {min}..{max} breaks the column's CHECK — keep within {}..{}",
            lo.map_or("".into(), |v| v.to_string()),
            hi.map_or("".into(), |v| v.to_string())
        )));
    }
    Ok(ColPlan::Gen {
        generator,
        null_ratio,
        unique: Uniq::No,
        max_len,
    })
}
