//! One `[tables."schema.table"]` entry: `rows` (fixed or per parent row),
//! `skip`, and its columns, each mistake one message.

use super::{ColumnSpec, FanCount, Rows, TableSpec, column_spec};

/// A problem in a table's spec: (column, key, message) — column `None` for
/// the table itself; key: the table's own key the problem is on.
pub(super) type Problem = (Option<String>, Option<String>, String);

/// A table's spec and the problems in it.
pub(super) fn table_spec(name: &str, v: &toml::Value) -> (TableSpec, Vec<Problem>) {
    let mut ts = TableSpec::default();
    let mut problems: Vec<Problem> = Vec::new();
    let toml::Value::Table(t) = v else {
        problems.push((None, None, "must be a table with rows/skip/columns".into()));
        ts.skip = true;
        return (ts, problems);
    };
    for (k, v) in t {
        match (k.as_str(), v) {
            ("skip", toml::Value::Boolean(b)) => ts.skip = *b,
            ("rows", v) => match rows(v) {
                Ok(r) => ts.rows = Some(r),
                Err(m) => problems.push((None, Some("rows".into()), m)),
            },
            ("columns", toml::Value::Table(cols)) => {
                for (c, cv) in cols {
                    match column_spec(cv) {
                        Ok(cs) => {
                            ts.columns.insert(c.clone(), cs);
                        }
                        Err(m) => {
                            problems.push((Some(c.clone()), None, m));
                            // Known to exist, so the plan does not also report it missing.
                            ts.columns.insert(c.clone(), ColumnSpec::default());
                        }
                    }
                }
            }
            (other, _) => problems.push((
                None,
                Some(other.to_string()),
                format!("unknown key {other:?} (expected rows, skip, columns)"),
            )),
        }
    }
    if ts.rows.is_none() && !ts.skip && problems.is_empty() {
        problems.push((
            None,
            None,
            format!(
                "needs `rows = N`, `rows = {{ per = \"schema.parent\", min = 0, max = 3 }}` or `skip = true` (table {name})"
            ),
        ));
    }
    (ts, problems)
}

pub(super) fn uint(v: &toml::Value, what: &str) -> Result<u64, String> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        _ => Err(format!("{what} must be a non-negative integer")),
    }
}

pub(super) fn float(v: &toml::Value, what: &str) -> Result<f64, String> {
    match v {
        toml::Value::Integer(i) => Ok(*i as f64),
        toml::Value::Float(f) => Ok(*f),
        _ => Err(format!("{what} must be a number")),
    }
}

fn rows(v: &toml::Value) -> Result<Rows, String> {
    match v {
        toml::Value::Integer(_) => Ok(Rows::Fixed(uint(v, "rows")?)),
        toml::Value::Table(t) => {
            let mut per = None;
            let mut via = None;
            let (mut count, mut min, mut max, mut mean) = (None, None, None, None);
            for (k, v) in t {
                match (k.as_str(), v) {
                    ("per", toml::Value::String(s)) => per = Some(s.clone()),
                    ("via", toml::Value::String(s)) => via = Some(s.clone()),
                    ("count", v) => count = Some(uint(v, "rows.count")?),
                    ("min", v) => min = Some(uint(v, "rows.min")?),
                    ("max", v) => max = Some(uint(v, "rows.max")?),
                    ("mean", v) => mean = Some(float(v, "rows.mean")?),
                    (other, _) => {
                        return Err(format!(
                            "unknown key rows.{other} (expected per, via, count, min, max, mean)"
                        ));
                    }
                }
            }
            let per = per.ok_or("rows = { … } needs per = \"schema.parent_table\"")?;
            let count = match (count, min, max, mean) {
                (Some(c), None, None, None) => FanCount::Fixed(c),
                (None, Some(lo), Some(hi), None) if lo <= hi => FanCount::Range(lo, hi),
                (None, None, None, Some(m)) if m >= 0.0 => FanCount::Mean(m),
                _ => return Err("rows per parent needs exactly one of: count = N, min = A with max = B (A ≤ B), mean = M".into()),
            };
            Ok(Rows::Per { per, via, count })
        }
        _ => Err("rows must be a number or { per = …, min = …, max = … }".into()),
    }
}
