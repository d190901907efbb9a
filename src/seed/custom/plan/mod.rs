//! From a spec and the live schema to a plan that is correct by construction:
//! tables in dependency order (cycles broken at a nullable foreign key, filled
//! in a second pass, or at a DEFERRABLE one, checked at commit), row counts (fixed or per parent row), a generator per
//! column checked against its type and CHECKs, and a strategy for every
//! PRIMARY KEY / UNIQUE set so values are unique without retries.
//!
//! Every value is a pure function of (seed, table, row, column), computed by
//! [`Plan::value`]; foreign keys compute the referenced row's key the same way.

mod order;
mod references;
mod row;
mod unique;

use std::collections::HashMap;

use anyhow::Result;
use chrono::NaiveDate;

use super::generators::{self, Gen, Kind, Part};
use super::schema::{Column, PgType, Schema, Table};
use super::spec::{self, ColumnSpec, FanCount, Rows, SpecFile};
use super::values;
pub use super::values::Value;
use crate::seed::rng::fnv1a;

/// How a foreign key picks the referenced row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FkMode {
    /// Any row of the parent.
    Random,
    /// The fan-out parent this row was generated for.
    FanParent,
    /// A different parent row for every row (the FK is UNIQUE).
    Unique,
    /// Different parent rows among the children of one fan-out parent
    /// (a many-to-many table's second key).
    DistinctPerParent,
    /// Two FKs that are unique together, with fixed row counts: the pair
    /// `(first, second)` is drawn without repetition. `other` is the other FK.
    Pair { first: bool, other: usize },
}

/// How a column's value is made.
#[derive(Debug, Clone)]
pub enum ColPlan {
    /// Left to the database (default, identity, generated): not written.
    Omit,
    Gen {
        generator: Gen,
        null_ratio: f64,
        unique: Uniq,
        max_len: Option<u32>,
    },
    Template {
        parts: Vec<Part>,
        null_ratio: f64,
        max_len: Option<u32>,
    },
    Fk {
        fk: usize,
        part: usize,
        null_ratio: f64,
        mode: FkMode,
        /// Filled in a second pass (this FK breaks a cycle): NULL at first.
        deferred: bool,
    },
    /// An SQL expression evaluated per row by the server.
    Sql(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Uniq {
    No,
    /// Unique across the table: rank = a permutation of the row over the capacity.
    Global(Option<u64>),
    /// Unique among one fan-out parent's children.
    PerParent(u64),
}

#[derive(Debug, Clone)]
pub struct Fanout {
    /// Index into `Plan::tables` of the parent.
    pub parent: usize,
    pub fk: usize,
    pub count: FanCount,
    /// `offsets[p]` = first child row of parent row `p`; len = parent rows + 1.
    pub offsets: Vec<u64>,
}

#[derive(Debug, Clone)]
pub struct TablePlan {
    /// Index into `Schema::tables`.
    pub t: usize,
    pub rows: u64,
    pub fanout: Option<Fanout>,
    pub cols: Vec<ColPlan>,
    key: u64,
    /// Stream names per column (`schema.table.column`) and per foreign key
    /// (`schema.table#fk`), built once: values are drawn millions of times.
    streams: Vec<String>,
    fk_streams: Vec<String>,
    /// Columns some foreign key refers to: the same at every attempt.
    stable: Vec<bool>,
    /// Constraints the loader tests on the generated rows (see `verify`).
    pub row_tests: Vec<super::verify::RowTest>,
    /// The spec line of the table, for errors found while loading.
    pub line: usize,
}

/// A table that is not seeded but referenced: its existing key values
/// (filled by the loader before any row is generated).
#[derive(Debug, Clone, Default)]
pub struct Existing {
    pub keys: HashMap<(usize, Vec<usize>), Vec<Vec<Value>>>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub schema: Schema,
    /// Seeded tables in load order.
    pub tables: Vec<TablePlan>,
    /// `Schema::tables` index → `tables` index.
    pub index: HashMap<usize, usize>,
    /// (tables index, fk) filled in a second pass.
    pub deferred: Vec<(usize, usize)>,
    /// (schema table, fk): DEFERRABLE keys of a cycle, written at once and
    /// checked by Postgres at commit (the loader defers them).
    pub checked_at_commit: Vec<(usize, usize)>,
    pub existing: Existing,
    /// Unparsed CHECKs of seeded tables: (table, constraint), for warnings.
    pub unparsed_checks: Vec<(String, String)>,
    /// The spec file and its text, for errors found while loading.
    pub spec_path: String,
    pub spec_text: String,
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

impl Plan {
    /// Checks the spec against the schema and builds the plan. Every problem
    /// found is reported, not only the first: each a line naming the spec
    /// file, line and fix ([`spec::SpecErrors`]).
    pub fn build(spec: &SpecFile, schema: Schema, seed: u64, as_of: NaiveDate) -> Result<Plan> {
        let err = |t: &str, c: Option<&str>, m: &str| spec::error(spec, t, c, m);
        let mut schema = schema;
        let mut errors: Vec<anyhow::Error> = references::add_spec_references(spec, &mut schema);
        // Which tables are seeded, and their row specs.
        let mut seeded: Vec<usize> = Vec::new();
        for (name, ts) in &spec.tables {
            let Some(t) = schema.table(name) else {
                errors.push(err(
                    name,
                    None,
                    "no such table in the database — fix the name (schema.table) or remove it from the spec",
                ));
                continue;
            };
            let mut ok = true;
            for c in ts.columns.keys() {
                if schema.tables[t].column(c).is_none() {
                    ok = false;
                    errors.push(err(
                        name,
                        Some(c),
                        &format!("no such column in {name} — fix the name or remove it"),
                    ));
                }
            }
            if !ts.skip && ok {
                seeded.push(t);
            }
        }
        let order = match order::load_order(spec, &schema, &seeded) {
            Ok(order) => order,
            Err(e) => {
                errors.push(e);
                spec::SpecErrors::check(errors)?;
                unreachable!("an error was pushed");
            }
        };
        // Tables with a problem: later checks that read them are skipped, so
        // one mistake is reported once.
        let mut bad: std::collections::HashSet<usize> = std::collections::HashSet::new();
        let mut plan = Plan {
            seed,
            index: order.iter().enumerate().map(|(i, o)| (o.t, i)).collect(),
            tables: Vec::new(),
            deferred: Vec::new(),
            checked_at_commit: Vec::new(),
            existing: Existing::default(),
            unparsed_checks: Vec::new(),
            spec_path: spec.path.display().to_string(),
            spec_text: spec.text.clone(),
            schema,
        };
        for (i, o) in order.iter().enumerate() {
            let (t, deferred_fks) = (&o.t, &o.deferred);
            let table = plan.schema.tables[*t].clone();
            let qn = table.qualified();
            let ts = &spec.tables[&qn];
            for c in &table.unparsed_checks {
                plan.unparsed_checks.push((qn.clone(), c.clone()));
            }
            // Rows, and the fan-out parent.
            let rows_plan = |plan: &Plan| -> Result<(u64, Option<Fanout>)> {
                match ts.rows.as_ref().expect("seeded tables have rows") {
                    Rows::Fixed(n) => Ok((*n, None)),
                    Rows::Per { per, via, count } => {
                        let Some(pt) = plan.schema.table(per) else {
                            return Err(err(&qn, None, &format!("rows per {per}: no such table")));
                        };
                        let Some(&pi) = plan.index.get(&pt) else {
                            return Err(err(
                                &qn,
                                None,
                                &format!(
                                    "rows per {per}, but {per} is skipped (or not in the spec) — give {qn} a fixed `rows = N`, or seed {per}"
                                ),
                            ));
                        };
                        let fks: Vec<usize> = table
                            .foreign_keys
                            .iter()
                            .enumerate()
                            .filter(|(_, f)| f.ref_table == pt)
                            .filter(|(_, f)| {
                                via.as_ref().is_none_or(|v| {
                                    f.columns.iter().any(|c| &table.columns[*c].name == v)
                                })
                            })
                            .map(|(k, _)| k)
                            .collect();
                        let fk = match fks[..] {
                            [k] => k,
                            [] => {
                                return Err(err(
                                    &qn,
                                    None,
                                    &format!(
                                        "rows per {per}, but {qn} has no foreign key to {per}{} — fix `per`/`via`",
                                        via.as_ref()
                                            .map(|v| format!(" through {v}"))
                                            .unwrap_or_default()
                                    ),
                                ));
                            }
                            _ => {
                                return Err(err(
                                    &qn,
                                    None,
                                    &format!(
                                        "{qn} has several foreign keys to {per}: say which with via = \"column\""
                                    ),
                                ));
                            }
                        };
                        if deferred_fks.contains(&fk) {
                            return Err(err(
                                &qn,
                                None,
                                "the fan-out foreign key is part of a cycle that cannot be broken elsewhere",
                            ));
                        }
                        let parent_rows = plan.tables[pi].rows;
                        let offsets = order::fan_offsets(seed, &qn, *count, parent_rows);
                        Ok((
                            *offsets.last().unwrap(),
                            Some(Fanout {
                                parent: pi,
                                fk,
                                count: *count,
                                offsets,
                            }),
                        ))
                    }
                }
            };
            let (rows, fanout) = match rows_plan(&plan) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(e);
                    bad.insert(i);
                    (0, None)
                }
            };
            let tp = TablePlan {
                t: *t,
                rows,
                fanout,
                cols: Vec::new(),
                key: fnv1a(qn.as_bytes()),
                streams: table
                    .columns
                    .iter()
                    .map(|c| format!("{qn}.{}", c.name))
                    .collect(),
                fk_streams: table
                    .foreign_keys
                    .iter()
                    .map(|f| format!("{qn}#{}", f.name))
                    .collect(),
                stable: (0..table.columns.len())
                    .map(|c| {
                        plan.schema.tables.iter().any(|other| {
                            other
                                .foreign_keys
                                .iter()
                                .any(|f| f.ref_table == *t && f.ref_columns.contains(&c))
                        })
                    })
                    .collect(),
                row_tests: Vec::new(),
                line: spec::line_of(&spec.text, &qn, None),
            };
            if table.singleton && tp.rows > 1 {
                errors.push(err(
                    &qn,
                    None,
                    "holds one row at most (a unique index on a constant) — use rows = 1",
                ));
            }
            for k in deferred_fks {
                plan.deferred.push((i, *k));
            }
            for k in &o.at_commit {
                if table.foreign_keys[*k].enforced {
                    plan.checked_at_commit.push((*t, *k));
                }
            }
            plan.tables.push(tp);
        }
        // Columns second: a foreign key that closes a cycle refers to a table
        // planned later, whose row count it needs.
        for (i, o) in order.iter().enumerate() {
            let (t, deferred_fks) = (&o.t, &o.deferred);
            let table = plan.schema.tables[*t].clone();
            let ts = &spec.tables[&table.qualified()];
            let mut tp = plan.tables[i].clone();
            for (ci, col) in table.columns.iter().enumerate() {
                let cp = plan.column_plan(
                    spec,
                    &table,
                    &tp,
                    ci,
                    col,
                    ts.columns.get(&col.name),
                    as_of,
                    deferred_fks,
                );
                tp.cols.push(cp.unwrap_or_else(|e| {
                    errors.push(e);
                    bad.insert(i);
                    ColPlan::Omit
                }));
            }
            if !bad.contains(&i)
                && let Err(e) = plan.unique_strategies(spec, &table, &mut tp)
            {
                errors.push(e);
                bad.insert(i);
            }
            tp.row_tests = super::verify::row_tests(&table, &tp);
            plan.tables[i] = tp;
        }
        errors.extend(plan.check_references(spec, &bad));
        spec::SpecErrors::check(errors)?;
        Ok(plan)
    }

    #[allow(clippy::too_many_arguments)]
    fn column_plan(
        &self,
        spec: &SpecFile,
        table: &Table,
        tp: &TablePlan,
        ci: usize,
        col: &Column,
        cs: Option<&ColumnSpec>,
        as_of: NaiveDate,
        deferred_fks: &[usize],
    ) -> Result<ColPlan> {
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
        let by_hand =
            cs.is_some_and(|c| c.sql.is_some() || c.values.is_some() || c.template.is_some());
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
}
