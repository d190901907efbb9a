//! The value of any column of any row, as a pure function of (seed, table,
//! row, column): generators, templates, and foreign keys that compute the
//! referenced row's key the same way.

use super::{ColPlan, FkMode, Plan, TablePlan, Uniq};
use crate::seed::custom::generators::{Ctx, Filter, Gen, Part};
use crate::seed::custom::schema::PgType;
use crate::seed::custom::values::{self, Value};
use crate::seed::rng::{Stream, fnv1a, permute};

impl Plan {
    /// The stream `name` draws from for `row`, or `None` when the row is NULL
    /// by `null_ratio` (the first draw).
    /// Attempt `k > 0` (a row regenerated because it broke a constraint the
    /// database tested) draws from a stream of its own.
    fn stream(&self, name: &str, row: u64, null_ratio: f64, attempt: u32) -> Option<Stream> {
        let mut rng = if attempt == 0 {
            Stream::new(self.seed, name, row)
        } else {
            Stream::new(self.seed, &format!("{name}~{attempt}"), row)
        };
        (null_ratio <= 0.0 || !rng.chance(null_ratio)).then_some(rng)
    }

    /// The fan-out parent row of `row`, and its ordinal among that parent's children.
    fn fan_parent(&self, tp: &TablePlan, row: u64) -> Option<(u64, u64)> {
        let f = tp.fanout.as_ref()?;
        let p = f.offsets.partition_point(|&o| o <= row) as u64 - 1;
        Some((p, row - f.offsets[p as usize]))
    }

    /// The rows foreign key `fk` of schema table `t` can point at: the
    /// seeded parent's row count, or the rows a kept parent holds.
    pub(crate) fn parent_rows(&self, t: usize, fk: usize) -> u64 {
        let f = &self.schema.tables[t].foreign_keys[fk];
        match self.index.get(&f.ref_table) {
            Some(pi) => self.tables[*pi].rows,
            None => self
                .existing
                .keys
                .get(&(f.ref_table, f.ref_columns.clone()))
                .map_or(0, |k| k.len() as u64),
        }
    }

    /// Why table `ti` needs more distinct parent rows than a kept parent
    /// holds (known only once its rows are read), if it does.
    pub(crate) fn capacity_error(&self, ti: usize) -> Option<String> {
        let tp = &self.tables[ti];
        let table = &self.schema.tables[tp.t];
        for col in &tp.cols {
            let ColPlan::Fk { fk, mode, .. } = col else {
                continue;
            };
            let f = &table.foreign_keys[*fk];
            let nullable = f.columns.iter().all(|c| !table.columns[*c].not_null);
            let rows = self.parent_rows(tp.t, *fk);
            let need = match *mode {
                FkMode::Unique if !nullable => tp.rows,
                FkMode::DistinctPerParent => tp.fanout.as_ref().map_or(0, |f| f.count.max()),
                FkMode::Pair { first: true, other } => {
                    let pairs = rows.saturating_mul(self.parent_rows(tp.t, other));
                    if tp.rows > pairs {
                        return Some(format!(
                            "{} rows but only {pairs} distinct pairs of parent rows to give them — lower `rows`",
                            tp.rows
                        ));
                    }
                    continue;
                }
                _ => continue,
            };
            if need > rows {
                return Some(format!(
                    "needs {need} different rows of {} through {} but it holds {rows} — lower `rows` (or the fan-out)",
                    self.schema.tables[f.ref_table].qualified(),
                    f.name
                ));
            }
        }
        None
    }

    /// The value of column `c` in row `row` of `self.tables[ti]`.
    pub(crate) fn value(&self, ti: usize, row: u64, c: usize) -> Value {
        self.value_at(ti, row, c, 0)
    }

    /// The value of column `c` in row `row` at regeneration `attempt` (0: the
    /// first draw). Columns other tables refer to never change with the
    /// attempt, so references computed from attempt 0 stay right.
    pub(crate) fn value_at(&self, ti: usize, row: u64, c: usize, requested: u32) -> Value {
        let tp = &self.tables[ti];
        let table = &self.schema.tables[tp.t];
        let col = &table.columns[c];
        let attempt = if tp.stable[c] { 0 } else { requested };
        let key = tp.key ^ fnv1a(col.name.as_bytes()).rotate_left(17);
        match &tp.cols[c] {
            ColPlan::Omit | ColPlan::Sql(_) => Value::Null,
            ColPlan::Gen {
                generator,
                null_ratio,
                unique,
                max_len,
            } => {
                let Some(mut rng) = self.stream(&tp.streams[c], row, *null_ratio, attempt) else {
                    return Value::Null;
                };
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
                if self
                    .stream(&tp.streams[c], row, *null_ratio, attempt)
                    .is_none()
                {
                    return Value::Null;
                }
                let mut s = String::new();
                for p in parts {
                    match p {
                        Part::Lit(l) => s.push_str(l),
                        Part::Row => s.push_str(&(row + 1).to_string()),
                        Part::Col { name, filter } => {
                            let other = table.column(name).expect("validated");
                            let text = self.value_at(ti, row, other, requested).to_text();
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
                // Every part of a composite key draws the same parent row.
                let attempt = if f.columns.iter().any(|c| tp.stable[*c]) {
                    0
                } else {
                    requested
                };
                let Some(mut rng) = self.stream(&tp.fk_streams[*fk], row, *null_ratio, attempt)
                else {
                    return Value::Null;
                };
                let self_ref = f.ref_table == tp.t;
                let parent_rows = self.parent_rows(tp.t, *fk);
                let fk_key = key ^ (*fk as u64).rotate_left(40);
                let prow = match *mode {
                    FkMode::FanParent => self.fan_parent(tp, row).map(|(p, _)| p).unwrap_or(0),
                    // A UNIQUE key to its own table (a one-to-one twin, as
                    // django-cms's publisher_public): each row names the one
                    // before it, or itself when the key cannot be NULL.
                    FkMode::Unique if self_ref => {
                        let nullable = f.columns.iter().all(|c| !table.columns[*c].not_null);
                        match (row, nullable) {
                            (0, true) => return Value::Null,
                            (_, true) => row - 1,
                            (_, false) => row,
                        }
                    }
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
                    FkMode::Unique => {
                        // More rows than parents (allowed on a nullable key): the rest are NULL.
                        if row >= parent_rows {
                            return Value::Null;
                        }
                        permute(fk_key, row, parent_rows)
                    }
                    FkMode::DistinctPerParent => {
                        let (p, ord) = self.fan_parent(tp, row).unwrap_or((0, row));
                        // The loader refuses a plan that would need more (see `capacity_error`).
                        if ord >= parent_rows {
                            return Value::Null;
                        }
                        permute(fk_key ^ p.wrapping_mul(0x9e37_79b9), ord, parent_rows)
                    }
                    FkMode::Pair { first, other } => {
                        let other_rows = self.parent_rows(tp.t, other);
                        let (a_rows, b_rows) = if first {
                            (parent_rows, other_rows)
                        } else {
                            (other_rows, parent_rows)
                        };
                        let pairs = a_rows.saturating_mul(b_rows);
                        if row >= pairs {
                            return Value::Null;
                        }
                        let idx = permute(tp.key ^ 0x7061_6972, row, pairs);
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
}

/// Array columns get the value as a one-element array.
fn wrap_array(v: Value, ty: &PgType) -> Value {
    match (ty, v) {
        (_, Value::Null) => Value::Null,
        (PgType::Array(..), v) => Value::Array(vec![v]),
        (_, v) => v,
    }
}
