//! From a spec and the live schema to a plan that is correct by construction:
//! tables in dependency order (cycles broken at a nullable foreign key, filled
//! in a second pass, or at a DEFERRABLE one, checked at commit), row counts (fixed or per parent row), a generator per
//! column checked against its type and CHECKs, and a strategy for every
//! PRIMARY KEY / UNIQUE set so values are unique without retries.
//!
//! Every value is a pure function of (seed, table, row, column), computed by
//! [`Plan::value`]; foreign keys compute the referenced row's key the same way.

mod column;
mod order;
mod references;
mod row;
mod unique;

use std::collections::HashMap;

use anyhow::Result;
use chrono::NaiveDate;

use super::generators::{Gen, Part};
use super::schema::Schema;
use super::spec::{self, FanCount, Rows, SpecFile};
pub(crate) use super::values::Value;
use crate::seed::rng::fnv1a;

/// How a foreign key picks the referenced row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FkMode {
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
pub(crate) enum ColPlan {
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
pub(crate) enum Uniq {
    No,
    /// Unique across the table: rank = a permutation of the row over the capacity.
    Global(Option<u64>),
    /// Unique among one fan-out parent's children.
    PerParent(u64),
}

#[derive(Debug, Clone)]
pub(crate) struct Fanout {
    pub fk: usize,
    pub count: FanCount,
    /// `offsets[p]` = first child row of parent row `p`; len = parent rows + 1.
    pub offsets: Vec<u64>,
}

#[derive(Debug, Clone)]
pub(crate) struct TablePlan {
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
pub(crate) struct Existing {
    pub keys: HashMap<(usize, Vec<usize>), Vec<Vec<Value>>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Plan {
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

impl Plan {
    /// Checks the spec against the schema and builds the plan. Every problem
    /// found is reported, not only the first: each a line naming the spec
    /// file, line and fix ([`spec::SpecErrors`]).
    pub(crate) fn build(
        spec: &SpecFile,
        schema: Schema,
        seed: u64,
        as_of: NaiveDate,
    ) -> Result<Plan> {
        let err = |t: &str, c: Option<&str>, m: &str| spec::error(spec, t, c, m);
        let mut schema = schema;
        let mut errors: Vec<anyhow::Error> = references::add_spec_references(spec, &mut schema);
        // Which tables are seeded, and their row specs.
        let mut seeded: Vec<usize> = Vec::new();
        // Tables left out for a misnamed column: their children do not also
        // report them "skipped" (one mistake, one error).
        let mut misnamed: Vec<&str> = Vec::new();
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
            } else if !ok {
                misnamed.push(name);
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
                        let siblings = if crate::seed::custom::schema::same_columns(
                            &table.foreign_keys[fk].columns,
                            &table.primary_key,
                        ) {
                            order::subtypes(spec, &plan.schema, pt)
                        } else {
                            Vec::new()
                        };
                        let share = siblings
                            .iter()
                            .position(|n| *n == qn)
                            .filter(|_| siblings.len() > 1)
                            .map(|k| (k as u64, siblings.len() as u64, per.as_str()));
                        let offsets = order::fan_offsets(seed, &qn, *count, parent_rows, share);
                        Ok((
                            *offsets.last().unwrap(),
                            Some(Fanout {
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
                    let parent_misnamed = matches!(
                        &ts.rows,
                        Some(Rows::Per { per, .. }) if misnamed.contains(&per.as_str())
                    );
                    if !parent_misnamed {
                        errors.push(e);
                    }
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
                let cx = column::TableContext {
                    spec,
                    table: &table,
                    table_plan: &tp,
                    as_of,
                    deferred_fks,
                };
                let cp = column::column_plan(&cx, ci, col, ts.columns.get(&col.name));
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
}
