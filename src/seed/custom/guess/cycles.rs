//! Tables no insert order can fill: a cycle of foreign keys that are NOT
//! NULL and not DEFERRABLE has no first row (`--spec` would refuse it), and a
//! table whose NOT NULL key needs a row of one of them has no parent row.
//! The guessed spec leaves these alone (`skip = true`, saying why), so
//! `--spec` runs and fills everything else. A cycle with a nullable key is
//! filled in two passes and one with a DEFERRABLE key in one transaction
//! with that key checked at commit (see `plan::order`): both are seeded.

use crate::seed::custom::schema::{ForeignKey, Schema, Table};

/// Whether a key of `t` must point at an existing row when its row is inserted.
fn binding(t: &Table, f: &ForeignKey) -> bool {
    f.enforced && f.columns.iter().any(|c| t.columns[*c].not_null)
}

/// Why each table cannot be filled in any order, `None` for the others.
/// `skip[t]`: tables the spec leaves alone already (they are no parents here).
pub(super) fn not_insertable(schema: &Schema, skip: &[bool]) -> Vec<Option<String>> {
    let n = schema.tables.len();
    // t → its parents through keys that admit neither NULL nor deferral.
    let hard: Vec<Vec<usize>> = (0..n)
        .map(|t| {
            let table = &schema.tables[t];
            if skip[t] {
                return Vec::new();
            }
            table
                .foreign_keys
                .iter()
                .filter(|f| f.ref_table != t && !skip[f.ref_table])
                .filter(|f| binding(table, f) && !f.deferrable)
                .map(|f| f.ref_table)
                .collect()
        })
        .collect();
    let reach: Vec<Vec<bool>> = (0..n)
        .map(|from| {
            let mut seen = vec![false; n];
            let mut stack: Vec<usize> = hard[from].clone();
            while let Some(t) = stack.pop() {
                if !std::mem::replace(&mut seen[t], true) {
                    stack.extend(&hard[t]);
                }
            }
            seen
        })
        .collect();
    let mut why: Vec<Option<String>> = vec![None; n];
    for t in 0..n {
        if !reach[t][t] {
            continue;
        }
        let members: Vec<String> = (0..n)
            .filter(|u| reach[t][*u] && reach[*u][t])
            .map(|u| schema.tables[u].qualified())
            .collect();
        why[t] = Some(format!(
            "in a cycle of NOT NULL foreign keys none of which is DEFERRABLE ({}): no row can be inserted first — fill these tables yourself, or make one key nullable or DEFERRABLE",
            members.join(" ↔ ")
        ));
    }
    // Their children with a NOT NULL key to them have no parent row either.
    loop {
        let mut changed = false;
        for t in 0..n {
            let table = &schema.tables[t];
            if skip[t] || why[t].is_some() {
                continue;
            }
            let Some(f) = table
                .foreign_keys
                .iter()
                .find(|f| f.ref_table != t && why[f.ref_table].is_some() && binding(table, f))
            else {
                continue;
            };
            let cols: Vec<&str> = f
                .columns
                .iter()
                .map(|c| table.columns[*c].name.as_str())
                .collect();
            why[t] = Some(format!(
                "its NOT NULL key {} needs rows of {}, which ward cannot fill (see there)",
                cols.join(", "),
                schema.tables[f.ref_table].qualified()
            ));
            changed = true;
        }
        if !changed {
            break;
        }
    }
    why
}
