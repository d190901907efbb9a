//! References: the foreign keys a spec declares itself (`ref =
//! "schema.table.column"` on a column the database does not constrain, such
//! as Django's `ForeignKey(db_constraint=False)`), which join the schema's own
//! so ordering, fan-out and values treat them alike; the check that every
//! referenced key is one ward computes; and the kept tables seeded tables
//! refer to.

use super::{ColPlan, Plan};
use crate::seed::custom::schema::{ForeignKey, Schema};
use crate::seed::custom::spec::{self, SpecFile};

/// Adds the spec's `ref = …` columns to `schema` as foreign keys that
/// Postgres does not enforce; returns the problems (one per bad `ref`).
pub(super) fn add_spec_references(spec: &SpecFile, schema: &mut Schema) -> Vec<anyhow::Error> {
    let mut errors = Vec::new();
    for (name, ts) in &spec.tables {
        let Some(t) = schema.table(name) else {
            continue;
        };
        for (col, cs) in &ts.columns {
            let (Some(r), Some(ci)) = (&cs.reference, schema.tables[t].column(col)) else {
                continue;
            };
            let err = |m: String| spec::error(spec, name, Some(col), &m);
            let (table, column) = r.rsplit_once('.').expect("checked when parsed");
            let Some(rt) = schema.table(table) else {
                errors.push(err(format!(
                    "ref {r:?}: no table {table} in the database — fix the name"
                )));
                continue;
            };
            let Some(rc) = schema.tables[rt].column(column) else {
                errors.push(err(format!(
                    "ref {r:?}: {table} has no column {column} — fix the name"
                )));
                continue;
            };
            if schema.tables[t]
                .foreign_keys
                .iter()
                .any(|f| f.columns.contains(&ci))
            {
                errors.push(err(
                    "is a foreign key in the database already — write \"ref\" (no target)".into(),
                ));
                continue;
            }
            schema.tables[t].foreign_keys.push(ForeignKey {
                name: format!("ward_ref_{col}"),
                columns: vec![ci],
                ref_table: rt,
                ref_columns: vec![rc],
                deferrable: true,
                enforced: false,
            });
        }
    }
    errors
}

impl Plan {
    /// Referenced key columns must be computable by ward (not SQL / DB default).
    pub(super) fn check_references(
        &self,
        spec: &SpecFile,
        bad: &std::collections::HashSet<usize>,
    ) -> Vec<anyhow::Error> {
        let mut errors = Vec::new();
        for tp in &self.tables {
            let table = &self.schema.tables[tp.t];
            for f in &table.foreign_keys {
                let Some(&pi) = self.index.get(&f.ref_table) else {
                    continue;
                };
                if bad.contains(&pi) {
                    continue;
                }
                let parent = &self.tables[pi];
                let pt = &self.schema.tables[parent.t];
                for rc in &f.ref_columns {
                    if matches!(parent.cols[*rc], ColPlan::Omit | ColPlan::Sql(_)) {
                        errors.push(spec::error(
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
        errors
    }

    /// Tables referenced by seeded table `ti` but not seeded themselves, with
    /// the referenced columns: the loader reads their existing keys.
    pub(crate) fn external_references(&self, ti: usize) -> Vec<(usize, Vec<usize>)> {
        let mut out: Vec<(usize, Vec<usize>)> = Vec::new();
        {
            let tp = &self.tables[ti];
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
