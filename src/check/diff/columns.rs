//! Column-level findings of one table: dropped columns (FAIL with values,
//! WARN when empty, INFO when generated), changed values, and new columns
//! that gave existing rows a value.

use anyhow::Result;

use super::values::{changed, sample_values};
use super::{TablePair, attribute};
use crate::check::blame;
use crate::check::fingerprint::Column;
use crate::check::report::{Finding, Level};
use crate::check::rule::Rule;

impl TablePair<'_> {
    /// The columns that were there before: dropped, or compared value by value.
    pub(super) async fn columns(&self) -> Result<Vec<Finding>> {
        let (before, after) = (self.before, self.after);
        let mut out = Vec::new();
        let mut compare: Vec<(Column, Column)> = Vec::new();
        for old in &before.columns {
            let (nonnull, hash) = before
                .column_data
                .get(&old.attnum)
                .cloned()
                .unwrap_or((0, String::new()));
            let Some(new) = after.column(old.attnum) else {
                out.push(self.dropped_column(old, nonnull));
                continue;
            };
            let (_, new_hash) = after
                .column_data
                .get(&new.attnum)
                .cloned()
                .unwrap_or((0, String::new()));
            if new_hash == hash && new.ty == old.ty {
                continue;
            }
            if new_hash == hash && !self.copied {
                continue;
            }
            if !(self.copied && self.key_survives) {
                if new_hash != hash {
                    out.push(attribute(
                        Finding::new(
                            Level::Fail,
                            Rule::ValuesChanged,
                            format!("values of {}.{} changed (the column's hash differs; no row-level copy was kept because the migrations never name the table)", before.display(), old.name),
                        )
                        .object(format!("{}.{}", before.display(), new.name)),
                        self.runs,
                        before,
                        false,
                    ));
                }
                continue;
            }
            if !before.key.contains(&old.name) {
                compare.push((old.clone(), new.clone()));
            }
        }
        if !compare.is_empty() {
            for finding in changed(self, &compare).await? {
                out.push(
                    crate::check::lossless::relabelled(
                        self.client,
                        before,
                        after,
                        &compare,
                        finding,
                        self.runs,
                    )
                    .await?,
                );
            }
        }
        Ok(out)
    }

    /// A column the migrations dropped, which held `nonnull` values.
    fn dropped_column(&self, column: &Column, nonnull: i64) -> Finding {
        let table = self.before;
        let finding = if column.generated {
            // Computed from the other columns: nothing is lost (D12).
            Finding::new(
                Level::Info,
                Rule::DroppedGenerated,
                format!(
                    "generated column {}.{} was dropped; its values are computed from other columns, so no data is lost",
                    table.display(),
                    column.name
                ),
            )
        } else if nonnull > 0 {
            Finding::new(
                Level::Fail,
                Rule::DroppedData,
                format!("column {}.{} was dropped with {nonnull} non-NULL values in it", table.display(), column.name),
            )
            .remedy("copy the values to where they now belong before dropping the column (and check that copy), or keep the column")
        } else {
            Finding::new(
                Level::Warn,
                Rule::DroppedEmpty,
                format!(
                    "column {}.{} was dropped; it held no values here, but may in production",
                    table.display(),
                    column.name
                ),
            )
            .remedy("check that the column is empty (or unused) in production before dropping it")
        };
        blame::at_drop(
            finding
                .count(nonnull)
                .object(format!("{}.{}", table.display(), column.name)),
            self.runs,
            |sql| blame::drops_column(sql, &table.schema, &table.name, &column.name),
        )
    }

    /// New columns that received values on existing rows (INFO).
    pub(super) async fn new_columns_filled(&self) -> Result<Vec<Finding>> {
        let (before, after) = (self.before, self.after);
        let mut out = Vec::new();
        for new in &after.columns {
            if before.column(new.attnum).is_some() {
                continue;
            }
            let (nonnull, _) = after
                .column_data
                .get(&new.attnum)
                .cloned()
                .unwrap_or((0, String::new()));
            let existing = before.rows.min(after.rows);
            if nonnull > 0 && existing > 0 {
                let mut finding = Finding::new(
                    Level::Info,
                    Rule::DefaultFilled,
                    format!(
                        "{} existing rows of {} received a value in the new column {}{}",
                        nonnull.min(existing),
                        before.display(),
                        new.name,
                        new.default
                            .as_ref()
                            .map(|default| format!(" (default {default})"))
                            .unwrap_or_default()
                    ),
                )
                .count(nonnull.min(existing))
                .object(format!("{}.{}", before.display(), new.name));
                if let Some(values) = sample_values(self.client, after, &new.name).await? {
                    finding = finding.evidence(format!("values: {values}"));
                }
                out.push(finding);
            }
        }
        Ok(out)
    }
}
