//! Load order and row counts: parents before children, foreign-key cycles
//! broken at a nullable key (filled in a second pass) or else at a
//! DEFERRABLE one (written at once, checked at commit), fan-out offsets.

use std::collections::HashMap;

use anyhow::Result;

use crate::seed::custom::schema::{Schema, same_columns};
use crate::seed::custom::spec::{self, FanCount, Rows, SpecFile};
use crate::seed::rng::Stream;

/// A subtype table's share of its parent's rows: its place among the
/// subtypes of that parent, how many there are, and the parent's name.
pub(super) type Share<'a> = (u64, u64, &'a str);

/// Per-parent child counts as running offsets (len = parents + 1). With a
/// share, only the parent rows that fall to this subtype get a child.
pub(super) fn fan_offsets(
    seed: u64,
    table: &str,
    count: FanCount,
    parents: u64,
    share: Option<Share<'_>>,
) -> Vec<u64> {
    let mut offsets = Vec::with_capacity(parents as usize + 1);
    let mut total = 0;
    offsets.push(0);
    for p in 0..parents {
        if let Some((k, n, parent)) = share
            && Stream::new(seed, &format!("{parent}#subtype"), p).below(n) != k
        {
            offsets.push(total);
            continue;
        }
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

/// The seeded tables that extend table `parent` (Django's multi-table
/// inheritance: their primary key is a key to it, and they fan out from it
/// with at most one row per parent row), by name. A row of the parent is of
/// one subtype: each parent row gets a row in at most one of them (drawn
/// independently, two subtypes shared parent rows — django-cms's
/// PlaceholderReference and AliasPluginModel on one plugin broke its data
/// migration 0027, which real data never would).
pub(super) fn subtypes(spec: &SpecFile, schema: &Schema, parent: usize) -> Vec<String> {
    let parent_name = schema.tables[parent].qualified();
    let mut out: Vec<String> = schema
        .tables
        .iter()
        .enumerate()
        .filter(|(ti, t)| {
            *ti != parent
                && !t.primary_key.is_empty()
                && t.foreign_keys
                    .iter()
                    .any(|f| f.ref_table == parent && same_columns(&f.columns, &t.primary_key))
        })
        .map(|(_, t)| t.qualified())
        .filter(|name| {
            spec.tables.get(name).is_some_and(|ts| {
                !ts.skip
                    && matches!(&ts.rows, Some(Rows::Per { per, count, .. })
                        if *per == parent_name && count.max() <= 1)
            })
        })
        .collect();
    out.sort();
    out
}

/// A seeded table in load order, with the foreign keys that break a cycle.
pub(super) struct Ordered {
    pub t: usize,
    /// Keys NULL at first, filled after every table is loaded.
    pub deferred: Vec<usize>,
    /// DEFERRABLE keys (or keys only the spec declares) written at once and
    /// pointing at a table loaded later: Postgres checks them at commit.
    pub at_commit: Vec<usize>,
}

/// Orders the seeded tables parents-first. Cycles are broken at a foreign key
/// whose columns are all nullable (it is filled after every table is loaded),
/// else at a DEFERRABLE key (its constraint is deferred to the commit); a
/// cycle without either is an error naming it.
pub(super) fn load_order(
    spec: &SpecFile,
    schema: &Schema,
    seeded: &[usize],
) -> Result<Vec<Ordered>> {
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
            Rows::Per { per, via, .. } => {
                let pt = schema.table(per)?;
                let table = &schema.tables[t];
                table.foreign_keys.iter().position(|f| {
                    f.ref_table == pt
                        && via
                            .as_ref()
                            .is_none_or(|v| f.columns.iter().any(|c| &table.columns[*c].name == v))
                })
            }
            _ => None,
        }
    };
    let mut deferred: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut at_commit: HashMap<usize, Vec<usize>> = HashMap::new();
    let broken = |deferred: &HashMap<usize, Vec<usize>>,
                  at_commit: &HashMap<usize, Vec<usize>>,
                  t: usize,
                  k: usize| {
        deferred.get(&t).is_some_and(|d| d.contains(&k))
            || at_commit.get(&t).is_some_and(|d| d.contains(&k))
    };
    let mut done: Vec<usize> = Vec::new();
    let mut remaining: Vec<usize> = seeded.to_vec();
    while !remaining.is_empty() {
        let ready: Vec<usize> = remaining
            .iter()
            .copied()
            .filter(|&t| {
                edges.iter().all(|&(c, p, k)| {
                    c != t || done.contains(&p) || broken(&deferred, &at_commit, t, k)
                })
            })
            .collect();
        if let Some(&t) = ready.first() {
            done.push(t);
            remaining.retain(|x| *x != t);
            continue;
        }
        // A cycle: walk parent links from a remaining table until one repeats,
        // remembering the foreign key of each step. Only a key *on* the cycle
        // breaks it: deferring a parallel nullable key to the same parent
        // leaves the step in place (and would be found again for ever).
        let mut path: Vec<(usize, usize)> = vec![(remaining[0], usize::MAX)];
        let cycle: Vec<(usize, usize)> = loop {
            let cur = path.last().unwrap().0;
            let Some((p, k)) = edges
                .iter()
                .find(|&&(c, p, k)| {
                    c == cur && remaining.contains(&p) && !broken(&deferred, &at_commit, c, k)
                })
                .map(|&(_, p, k)| (p, k))
            else {
                unreachable!("a table that is not ready has an unmet parent");
            };
            // path[i].1 is the key from path[i-1] to path[i]; store it on the child.
            if let Some(pos) = path.iter().position(|x| x.0 == p) {
                let mut steps: Vec<(usize, usize)> = Vec::new();
                for i in pos..path.len() {
                    let key = if i + 1 < path.len() { path[i + 1].1 } else { k };
                    steps.push((path[i].0, key));
                }
                break steps;
            }
            path.push((p, k));
        };
        // Break it at a nullable FK of the cycle that is not a fan-out key.
        // Each pass defers a key not deferred before or loads a table, so the
        // loop ends.
        // Else at a DEFERRABLE key (or one Postgres does not enforce).
        let nullable = cycle.iter().find(|&&(c, k)| {
            let table = &schema.tables[c];
            Some(k) != fan_fk(c)
                && table.foreign_keys[k]
                    .columns
                    .iter()
                    .all(|col| !table.columns[*col].not_null)
        });
        let deferrable = cycle.iter().find(|&&(c, k)| {
            let f = &schema.tables[c].foreign_keys[k];
            Some(k) != fan_fk(c) && (f.deferrable || !f.enforced)
        });
        if let Some(&(c, k)) = nullable {
            deferred.entry(c).or_default().push(k);
        } else if let Some(&(c, k)) = deferrable {
            at_commit.entry(c).or_default().push(k);
        } else {
            let keys: Vec<String> = cycle
                .iter()
                .map(|&(t, k)| {
                    let table = &schema.tables[t];
                    let f = &table.foreign_keys[k];
                    let cols: Vec<&str> = f
                        .columns
                        .iter()
                        .map(|c| table.columns[*c].name.as_str())
                        .collect();
                    format!(
                        "{}.{} → {}",
                        table.qualified(),
                        cols.join(","),
                        schema.tables[f.ref_table].qualified()
                    )
                })
                .collect();
            return Err(spec::error(
                spec,
                &schema.tables[cycle[0].0].qualified(),
                None,
                &format!(
                    "foreign keys form a cycle ({}) with no nullable key ward could fill after the load and no DEFERRABLE one, so no row can be inserted first — make one key nullable or DEFERRABLE, or skip every table of the cycle (fill them yourself first)",
                    keys.join(", ")
                ),
            ));
        }
    }
    Ok(done
        .into_iter()
        .map(|t| Ordered {
            t,
            deferred: deferred.remove(&t).unwrap_or_default(),
            at_commit: at_commit.remove(&t).unwrap_or_default(),
        })
        .collect())
}
