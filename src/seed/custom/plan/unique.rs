//! Making every PRIMARY KEY / UNIQUE set unique by construction: an injective
//! generator on one column, a per-parent permutation for link tables, a
//! unique or paired choice of parent rows for foreign keys — or a precise
//! error when the spec cannot guarantee it.

use std::collections::BTreeSet;

use anyhow::Result;

use super::{ColPlan, FkMode, Plan, TablePlan, Uniq};
use crate::seed::custom::generators::Part;
use crate::seed::custom::schema::{Column, Table};
use crate::seed::custom::spec::{self, SpecFile};

impl Plan {
    /// Picks, for every PRIMARY KEY / UNIQUE set, the column (or FK mode) that
    /// makes it unique by construction, or explains why none can.
    pub(super) fn unique_strategies(
        &self,
        spec: &SpecFile,
        table: &Table,
        tp: &mut TablePlan,
    ) -> Result<()> {
        let sets = table
            .unique_sets()
            .map(|s| (s.clone(), false))
            .chain(table.partial_uniques.iter().map(|(s, _)| (s.clone(), true)));
        for (set, partial) in sets.collect::<Vec<_>>() {
            match self.unique_strategy(spec, table, tp, &set) {
                // A partial index only binds the rows its predicate selects:
                // the loader tests those and regenerates the few that clash.
                Err(_) if partial => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// The strategy for one PRIMARY KEY / UNIQUE set.
    fn unique_strategy(
        &self,
        spec: &SpecFile,
        table: &Table,
        tp: &mut TablePlan,
        set: &[usize],
    ) -> Result<()> {
        let set = set.to_vec();
        let qn = table.qualified();
        let names = |set: &[usize]| {
            set.iter()
                .map(|c| table.columns[*c].name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let max_fan = tp.fanout.as_ref().map(|f| f.count.max());
        {
            // Left to the database's sequence or UUID default: the database makes it unique.
            let db_unique = |c: &Column| {
                c.is_serial() || c.default.as_deref().is_some_and(|d| d.contains("uuid"))
            };
            if set
                .iter()
                .any(|c| matches!(tp.cols[*c], ColPlan::Omit) && db_unique(&table.columns[*c]))
            {
                return Ok(());
            }
            // Left NULL (not written, no default): NULLs never conflict.
            if set.iter().any(|c| {
                let col = &table.columns[*c];
                matches!(tp.cols[*c], ColPlan::Omit)
                    && col.default.is_none()
                    && !col.not_null
                    && !col.identity
            }) {
                return Ok(());
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
                return Ok(());
            }
            // An SQL expression the user vouches for (a ULID, a slug with the
            // row number): the database enforces the constraint.
            if set.iter().any(|c| matches!(tp.cols[*c], ColPlan::Sql(_))) {
                return Ok(());
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
                return Ok(());
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
                        // A nullable key leaves the rows beyond the parent's count NULL.
                        let nullable = table.foreign_keys[fk]
                            .columns
                            .iter()
                            .all(|c| !table.columns[*c].not_null);
                        if tp.rows > parent_rows(fk) && !nullable {
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
}
