//! From a spec and the live schema to a plan that is correct by construction:
//! tables in dependency order (cycles broken at a nullable foreign key, filled
//! in a second pass), row counts (fixed or per parent row), a generator per
//! column checked against its type and CHECKs, and a strategy for every
//! PRIMARY KEY / UNIQUE set so values are unique without retries.
//!
//! Every value is a pure function of (seed, table, row, column), computed by
//! [`Plan::value`]; foreign keys compute the referenced row's key the same way.

use std::collections::{BTreeSet, HashMap};

use anyhow::Result;
use chrono::NaiveDate;

use super::generators::{self, Ctx, Filter, Gen, Kind, Part};
use super::schema::{Column, PgType, Schema, Table};
use super::spec::{self, ColumnSpec, FanCount, Rows, SpecFile};
use super::values::{self, Value};
use crate::seed::rng::{Stream, fnv1a, permute};

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
    pub existing: Existing,
    /// Unparsed CHECKs of seeded tables: (table, constraint), for warnings.
    pub unparsed_checks: Vec<(String, String)>,
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
    /// Checks the spec against the schema and builds the plan; any problem is
    /// a one-line error naming the spec file, line and fix.
    pub fn build(spec: &SpecFile, schema: Schema, seed: u64, as_of: NaiveDate) -> Result<Plan> {
        let err = |t: &str, c: Option<&str>, m: &str| spec::error(spec, t, c, m);
        // Which tables are seeded, and their row specs.
        let mut seeded: Vec<usize> = Vec::new();
        for (name, ts) in &spec.tables {
            let Some(t) = schema.table(name) else {
                return Err(err(
                    name,
                    None,
                    "no such table in the database — fix the name (schema.table) or remove it from the spec",
                ));
            };
            for c in ts.columns.keys() {
                if schema.tables[t].column(c).is_none() {
                    return Err(err(
                        name,
                        Some(c),
                        &format!("no such column in {name} — fix the name or remove it"),
                    ));
                }
            }
            if !ts.skip {
                seeded.push(t);
            }
        }
        let order = load_order(spec, &schema, &seeded)?;
        let mut plan = Plan {
            seed,
            index: order
                .iter()
                .enumerate()
                .map(|(i, (t, _))| (*t, i))
                .collect(),
            tables: Vec::new(),
            deferred: Vec::new(),
            existing: Existing::default(),
            unparsed_checks: Vec::new(),
            schema,
        };
        for (i, (t, deferred_fks)) in order.iter().enumerate() {
            let table = plan.schema.tables[*t].clone();
            let qn = table.qualified();
            let ts = &spec.tables[&qn];
            for c in &table.unparsed_checks {
                plan.unparsed_checks.push((qn.clone(), c.clone()));
            }
            // Rows, and the fan-out parent.
            let (rows, fanout) = match ts.rows.as_ref().expect("seeded tables have rows") {
                Rows::Fixed(n) => (*n, None),
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
                    let offsets = fan_offsets(seed, &qn, *count, parent_rows);
                    (
                        *offsets.last().unwrap(),
                        Some(Fanout {
                            parent: pi,
                            fk,
                            count: *count,
                            offsets,
                        }),
                    )
                }
            };
            let mut tp = TablePlan {
                t: *t,
                rows,
                fanout,
                cols: Vec::new(),
                key: fnv1a(qn.as_bytes()),
            };
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
                )?;
                tp.cols.push(cp);
            }
            plan.unique_strategies(spec, &table, &mut tp)?;
            for k in deferred_fks {
                plan.deferred.push((i, *k));
            }
            plan.tables.push(tp);
        }
        plan.check_references(spec)?;
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
        let null_ratio = cs.and_then(|c| c.null_ratio).unwrap_or(0.0);
        if null_ratio > 0.0 && col.not_null {
            return Err(err("null_ratio on a NOT NULL column — remove null_ratio"));
        }
        // Foreign key columns follow their parent, whatever the spec says (bar null_ratio / default).
        if let Some((fk, part)) = table
            .foreign_keys
            .iter()
            .enumerate()
            .find_map(|(k, f)| f.columns.iter().position(|c| *c == ci).map(|p| (k, p)))
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
                    return Err(err("gen = \"ref\" but the column is not a foreign key"));
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

    /// Picks, for every PRIMARY KEY / UNIQUE set, the column (or FK mode) that
    /// makes it unique by construction, or explains why none can.
    fn unique_strategies(&self, spec: &SpecFile, table: &Table, tp: &mut TablePlan) -> Result<()> {
        let qn = table.qualified();
        let names = |set: &[usize]| {
            set.iter()
                .map(|c| table.columns[*c].name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let max_fan = tp.fanout.as_ref().map(|f| f.count.max());
        for set in table.unique_sets().cloned().collect::<Vec<_>>() {
            // Left to the database's sequence or UUID default: the database makes it unique.
            let db_unique = |c: &Column| {
                c.is_serial() || c.default.as_deref().is_some_and(|d| d.contains("uuid"))
            };
            if set
                .iter()
                .any(|c| matches!(tp.cols[*c], ColPlan::Omit) && db_unique(&table.columns[*c]))
            {
                continue;
            }
            // Left NULL (not written, no default): NULLs never conflict.
            if set.iter().any(|c| {
                let col = &table.columns[*c];
                matches!(tp.cols[*c], ColPlan::Omit)
                    && col.default.is_none()
                    && !col.not_null
                    && !col.identity
            }) {
                continue;
            }
            // Already unique through another set.
            if set.iter().any(|c| {
                matches!(
                    tp.cols[*c],
                    ColPlan::Gen {
                        unique: Uniq::Global(_),
                        ..
                    }
                )
            }) {
                continue;
            }
            // 1. A generated column that can be unique across the table.
            let mut done = false;
            for &c in &set {
                if let ColPlan::Gen {
                    generator,
                    max_len,
                    unique,
                    ..
                } = &mut tp.cols[c]
                {
                    let cap = generator.capacity(*max_len);
                    if cap.is_none_or(|n| n >= tp.rows) {
                        *unique = Uniq::Global(cap);
                        done = true;
                        break;
                    }
                }
                if let ColPlan::Template { parts, .. } = &tp.cols[c]
                    && parts.iter().any(|p| matches!(p, Part::Row))
                {
                    done = true;
                    break;
                }
            }
            if done {
                continue;
            }
            let fk_of = |c: usize| match tp.cols[c] {
                ColPlan::Fk { fk, .. } => Some(fk),
                _ => None,
            };
            let fks: BTreeSet<usize> = set.iter().filter_map(|c| fk_of(*c)).collect();
            let others: Vec<usize> = set
                .iter()
                .copied()
                .filter(|c| fk_of(*c).is_none())
                .collect();
            let fan_fk = tp.fanout.as_ref().map(|f| f.fk);
            let parent_rows = |fk: usize| -> u64 {
                let pt = table.foreign_keys[fk].ref_table;
                self.index
                    .get(&pt)
                    .map_or(u64::MAX, |i| self.tables[*i].rows)
            };
            let set_mode = |tp: &mut TablePlan, fk: usize, mode: FkMode| {
                for col in tp.cols.iter_mut() {
                    if let ColPlan::Fk { fk: f, mode: m, .. } = col
                        && *f == fk
                    {
                        *m = mode;
                    }
                }
            };
            let fail = |why: String| {
                spec::error(
                    spec,
                    &qn,
                    Some(&table.columns[set[0]].name),
                    &format!("cannot guarantee UNIQUE ({}): {why}", names(&set)),
                )
            };
            match (fks.len(), others.len()) {
                // The whole set is one FK: one child per parent row.
                (1, 0) => {
                    let fk = *fks.first().unwrap();
                    if Some(fk) == fan_fk {
                        if max_fan.unwrap_or(0) > 1 {
                            return Err(fail("it is the fan-out key, so each parent may have at most one row — use `count = 1` or `max = 1`".into()));
                        }
                    } else {
                        if tp.rows > parent_rows(fk) {
                            return Err(fail(format!(
                                "{} rows but only {} rows to refer to — lower `rows`",
                                tp.rows,
                                parent_rows(fk)
                            )));
                        }
                        set_mode(tp, fk, FkMode::Unique);
                    }
                }
                // Two FKs (a many-to-many table).
                (2, 0) => {
                    let mut it = fks.iter().copied();
                    let (a, b) = (it.next().unwrap(), it.next().unwrap());
                    if let Some(fan) = fan_fk.filter(|f| *f == a || *f == b) {
                        let other = if fan == a { b } else { a };
                        if max_fan.unwrap_or(0) > parent_rows(other) {
                            return Err(fail(format!(
                                "up to {} rows per parent but only {} rows to pair them with — lower the fan-out",
                                max_fan.unwrap_or(0),
                                parent_rows(other)
                            )));
                        }
                        set_mode(tp, other, FkMode::DistinctPerParent);
                    } else {
                        let pairs = parent_rows(a).saturating_mul(parent_rows(b));
                        if tp.rows > pairs {
                            return Err(fail(format!(
                                "{} rows but only {pairs} distinct pairs — lower `rows`",
                                tp.rows
                            )));
                        }
                        set_mode(
                            tp,
                            a,
                            FkMode::Pair {
                                first: true,
                                other: b,
                            },
                        );
                        set_mode(
                            tp,
                            b,
                            FkMode::Pair {
                                first: false,
                                other: a,
                            },
                        );
                    }
                }
                // The fan-out FK plus columns: those need only differ per parent.
                (1, _) if fks.first().copied() == fan_fk => {
                    let need = max_fan.unwrap_or(0);
                    let c = others.iter().copied().find(|c| match &tp.cols[*c] {
                        ColPlan::Gen {
                            generator, max_len, ..
                        } => generator.capacity(*max_len).is_none_or(|n| n >= need),
                        _ => false,
                    });
                    let Some(c) = c else {
                        return Err(fail(format!(
                            "no column in it can take {need} different values per parent — give one a larger generator (e.g. sequence)"
                        )));
                    };
                    if let ColPlan::Gen {
                        generator,
                        max_len,
                        unique,
                        ..
                    } = &mut tp.cols[c]
                    {
                        *unique = match generator.capacity(*max_len) {
                            Some(n) => Uniq::PerParent(n),
                            None => Uniq::Global(None),
                        };
                    }
                }
                _ => {
                    let c = set[0];
                    let detail = match &tp.cols[c] {
                        ColPlan::Gen {
                            generator, max_len, ..
                        } => format!(
                            "its generator makes at most {} distinct values for {} rows — use a generator with more values (e.g. sequence, uuid, internet.email)",
                            generator.capacity(*max_len).unwrap_or(0),
                            tp.rows
                        ),
                        ColPlan::Sql(_) => {
                            "ward cannot make an SQL expression unique — use a generator".into()
                        }
                        ColPlan::Template { .. } => {
                            "add {row} to the template so every row differs".into()
                        }
                        _ => "give one of its columns a unique generator (e.g. sequence or uuid)"
                            .into(),
                    };
                    return Err(fail(detail));
                }
            }
        }
        Ok(())
    }

    /// Referenced key columns must be computable by ward (not SQL / DB default).
    fn check_references(&self, spec: &SpecFile) -> Result<()> {
        for tp in &self.tables {
            let table = &self.schema.tables[tp.t];
            for f in &table.foreign_keys {
                let Some(&pi) = self.index.get(&f.ref_table) else {
                    continue;
                };
                let parent = &self.tables[pi];
                let pt = &self.schema.tables[parent.t];
                for rc in &f.ref_columns {
                    if matches!(parent.cols[*rc], ColPlan::Omit | ColPlan::Sql(_)) {
                        return Err(spec::error(
                            spec,
                            &pt.qualified(),
                            Some(&pt.columns[*rc].name),
                            &format!(
                                "is referenced by {}.{} ({}), so ward must generate it — use a generator such as sequence or uuid, not sql/default",
                                table.qualified(),
                                f.name,
                                table.columns[f.columns[0]].name
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The fan-out parent row of `row`, and its ordinal among that parent's children.
    fn fan_parent(&self, tp: &TablePlan, row: u64) -> Option<(u64, u64)> {
        let f = tp.fanout.as_ref()?;
        let p = f.offsets.partition_point(|&o| o <= row) as u64 - 1;
        Some((p, row - f.offsets[p as usize]))
    }

    /// The value of column `c` in row `row` of `self.tables[ti]`.
    pub fn value(&self, ti: usize, row: u64, c: usize) -> Value {
        let tp = &self.tables[ti];
        let table = &self.schema.tables[tp.t];
        let col = &table.columns[c];
        let key = tp.key ^ fnv1a(col.name.as_bytes()).rotate_left(17);
        match &tp.cols[c] {
            ColPlan::Omit | ColPlan::Sql(_) => Value::Null,
            ColPlan::Gen {
                generator,
                null_ratio,
                unique,
                max_len,
            } => {
                let mut rng = Stream::new(
                    self.seed,
                    &format!("{}.{}", table.qualified(), col.name),
                    row,
                );
                if *null_ratio > 0.0 && rng.chance(*null_ratio) {
                    return Value::Null;
                }
                let rank = match *unique {
                    Uniq::No => None,
                    Uniq::Global(None) => Some(row),
                    Uniq::Global(Some(cap)) => Some(permute(key, row, cap)),
                    Uniq::PerParent(cap) => {
                        let (p, ord) = self.fan_parent(tp, row).unwrap_or((0, row));
                        Some(permute(key ^ p.wrapping_mul(0x9e37_79b9), ord, cap))
                    }
                };
                let v = generator.make(&mut Ctx {
                    seed: self.seed,
                    rng: &mut rng,
                    row,
                    rank,
                    max_len: *max_len,
                });
                let v = match (&v, &col.ty) {
                    (Value::Text(s), ty)
                        if !matches!(ty, PgType::Text { .. } | PgType::Enum(_))
                            && matches!(generator, Gen::Values { .. }) =>
                    {
                        values::parse_as(s, ty)
                            .expect("values were checked against the column type")
                    }
                    _ => v,
                };
                wrap_array(v, &col.ty)
            }
            ColPlan::Template {
                parts,
                null_ratio,
                max_len,
            } => {
                let mut rng = Stream::new(
                    self.seed,
                    &format!("{}.{}", table.qualified(), col.name),
                    row,
                );
                if *null_ratio > 0.0 && rng.chance(*null_ratio) {
                    return Value::Null;
                }
                let mut s = String::new();
                for p in parts {
                    match p {
                        Part::Lit(l) => s.push_str(l),
                        Part::Row => s.push_str(&(row + 1).to_string()),
                        Part::Col { name, filter } => {
                            let other = table.column(name).expect("validated");
                            let text = self.value(ti, row, other).to_text();
                            s.push_str(&match filter {
                                Filter::None => text,
                                Filter::Lower => text.to_lowercase(),
                                Filter::Upper => text.to_uppercase(),
                                Filter::Slug => text
                                    .chars()
                                    .filter(char::is_ascii_alphanumeric)
                                    .map(|c| c.to_ascii_lowercase())
                                    .collect(),
                            });
                        }
                    }
                }
                if let Some(m) = max_len {
                    s = s.chars().take(*m as usize).collect();
                }
                wrap_array(Value::Text(s), &col.ty)
            }
            ColPlan::Fk {
                fk,
                part,
                null_ratio,
                mode,
                ..
            } => {
                let f = &table.foreign_keys[*fk];
                let mut rng =
                    Stream::new(self.seed, &format!("{}#{}", table.qualified(), f.name), row);
                if *null_ratio > 0.0 && rng.chance(*null_ratio) {
                    return Value::Null;
                }
                let self_ref = f.ref_table == tp.t;
                let parent_rows = match self.index.get(&f.ref_table) {
                    Some(pi) => self.tables[*pi].rows,
                    None => self
                        .existing
                        .keys
                        .get(&(f.ref_table, f.ref_columns.clone()))
                        .map_or(0, |k| k.len() as u64),
                };
                let fk_key = key ^ (*fk as u64).rotate_left(40);
                let prow = match *mode {
                    FkMode::FanParent => self.fan_parent(tp, row).map(|(p, _)| p).unwrap_or(0),
                    _ if self_ref => {
                        // Only earlier rows, so the tree has roots; the first row is a root.
                        if row == 0 {
                            if f.columns.iter().all(|c| !table.columns[*c].not_null) {
                                return Value::Null;
                            }
                            0
                        } else {
                            rng.below(row)
                        }
                    }
                    FkMode::Random => {
                        if parent_rows == 0 {
                            return Value::Null;
                        }
                        rng.below(parent_rows)
                    }
                    FkMode::Unique => permute(fk_key, row, parent_rows),
                    FkMode::DistinctPerParent => {
                        let (p, ord) = self.fan_parent(tp, row).unwrap_or((0, row));
                        permute(fk_key ^ p.wrapping_mul(0x9e37_79b9), ord, parent_rows)
                    }
                    FkMode::Pair { first, other } => {
                        let other_table = table.foreign_keys[other].ref_table;
                        let other_rows = self
                            .index
                            .get(&other_table)
                            .map_or(1, |i| self.tables[*i].rows);
                        let (a_rows, b_rows) = if first {
                            (parent_rows, other_rows)
                        } else {
                            (other_rows, parent_rows)
                        };
                        let idx = permute(tp.key ^ 0x7061_6972, row, a_rows * b_rows);
                        if first { idx / b_rows } else { idx % b_rows }
                    }
                };
                let ref_col = f.ref_columns[*part];
                match self.index.get(&f.ref_table) {
                    Some(pi) => self.value(*pi, prow, ref_col),
                    None => self
                        .existing
                        .keys
                        .get(&(f.ref_table, f.ref_columns.clone()))
                        .and_then(|k| k.get(prow as usize))
                        .map_or(Value::Null, |k| k[*part].clone()),
                }
            }
        }
    }

    /// Tables referenced by seeded ones but not seeded themselves, with the
    /// referenced columns: the loader reads their existing keys.
    pub fn external_references(&self) -> Vec<(usize, Vec<usize>)> {
        let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
        for tp in &self.tables {
            for f in &self.schema.tables[tp.t].foreign_keys {
                if !self.index.contains_key(&f.ref_table)
                    && !out
                        .iter()
                        .any(|(t, c)| *t == f.ref_table && *c == f.ref_columns)
                {
                    out.push((f.ref_table, f.ref_columns.clone()));
                }
            }
        }
        out
    }
}

/// Array columns get the value as a one-element array.
fn wrap_array(v: Value, ty: &PgType) -> Value {
    match (ty, v) {
        (_, Value::Null) => Value::Null,
        (PgType::Array(..), v) => Value::Array(vec![v]),
        (_, v) => v,
    }
}

/// Per-parent child counts as running offsets (len = parents + 1).
fn fan_offsets(seed: u64, table: &str, count: FanCount, parents: u64) -> Vec<u64> {
    let mut offsets = Vec::with_capacity(parents as usize + 1);
    let mut total = 0;
    offsets.push(0);
    for p in 0..parents {
        let n = match count {
            FanCount::Fixed(n) => n,
            FanCount::Range(lo, hi) => {
                let mut rng = Stream::new(seed, &format!("{table}#rows"), p);
                rng.range(lo as i64, hi as i64) as u64
            }
            FanCount::Mean(m) => {
                let mut rng = Stream::new(seed, &format!("{table}#rows"), p);
                let trials = (2.0 * m).ceil() as u64;
                let pr = if trials == 0 { 0.0 } else { m / trials as f64 };
                (0..trials).filter(|_| rng.chance(pr)).count() as u64
            }
        };
        total += n;
        offsets.push(total);
    }
    offsets
}

/// Orders the seeded tables parents-first. Cycles are broken at a foreign key
/// whose columns are all nullable (it is filled after every table is loaded);
/// a cycle without one is an error naming it. Returns (table, deferred FKs).
fn load_order(
    spec: &SpecFile,
    schema: &Schema,
    seeded: &[usize],
) -> Result<Vec<(usize, Vec<usize>)>> {
    let is_seeded = |t: usize| seeded.contains(&t);
    // Edges child → parent, by FK (self references do not order anything).
    let mut edges: Vec<(usize, usize, usize)> = Vec::new(); // (child, parent, fk)
    for &t in seeded {
        for (k, f) in schema.tables[t].foreign_keys.iter().enumerate() {
            if f.ref_table != t && is_seeded(f.ref_table) {
                edges.push((t, f.ref_table, k));
            }
        }
    }
    let fan_fk = |t: usize| -> Option<usize> {
        let qn = schema.tables[t].qualified();
        match spec.tables.get(&qn)?.rows.as_ref()? {
            Rows::Per { per, .. } => {
                let pt = schema.table(per)?;
                schema.tables[t]
                    .foreign_keys
                    .iter()
                    .position(|f| f.ref_table == pt)
            }
            _ => None,
        }
    };
    let mut deferred: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut done: Vec<usize> = Vec::new();
    let mut remaining: Vec<usize> = seeded.to_vec();
    while !remaining.is_empty() {
        let ready: Vec<usize> = remaining
            .iter()
            .copied()
            .filter(|&t| {
                edges.iter().all(|&(c, p, k)| {
                    c != t || done.contains(&p) || deferred.get(&t).is_some_and(|d| d.contains(&k))
                })
            })
            .collect();
        if let Some(&t) = ready.first() {
            done.push(t);
            remaining.retain(|x| *x != t);
            continue;
        }
        // A cycle: walk parent links from a remaining table until one repeats.
        let mut path = vec![remaining[0]];
        let cycle = loop {
            let cur = *path.last().unwrap();
            let next = edges
                .iter()
                .find(|&&(c, p, k)| {
                    c == cur
                        && remaining.contains(&p)
                        && !deferred.get(&c).is_some_and(|d| d.contains(&k))
                })
                .map(|&(_, p, k)| (p, k))
                .expect("a stuck table has an unmet parent");
            if let Some(pos) = path.iter().position(|x| *x == next.0) {
                break path[pos..].to_vec();
            }
            path.push(next.0);
        };
        // Break it at a nullable FK that is not a fan-out key.
        let mut broken = false;
        for (i, &c) in cycle.iter().enumerate() {
            let p = cycle[(i + 1) % cycle.len()];
            let table = &schema.tables[c];
            for &(ec, ep, k) in &edges {
                if ec == c
                    && ep == p
                    && Some(k) != fan_fk(c)
                    && table.foreign_keys[k]
                        .columns
                        .iter()
                        .all(|col| !table.columns[*col].not_null)
                {
                    deferred.entry(c).or_default().push(k);
                    broken = true;
                    break;
                }
            }
            if broken {
                break;
            }
        }
        if !broken {
            let names: Vec<String> = cycle
                .iter()
                .chain(cycle.first())
                .map(|t| schema.tables[*t].qualified())
                .collect();
            return Err(spec::error(
                spec,
                &schema.tables[cycle[0]].qualified(),
                None,
                &format!(
                    "foreign keys form a cycle {} with no nullable key to fill later — make one of them nullable or DEFERRABLE, or skip one table",
                    names.join(" → ")
                ),
            ));
        }
    }
    Ok(done
        .into_iter()
        .map(|t| (t, deferred.remove(&t).unwrap_or_default()))
        .collect())
}
