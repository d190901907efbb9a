//! The seed spec file for an application's own schema (TOML), read by hand
//! from a `toml::Table` so every mistake gets a precise message with the
//! file and line.
//!
//! ```toml
//! version = 1
//! seed = 1
//!
//! [tables."public.auth_user"]
//! rows = 200
//! columns.username = "internet.username"
//! columns.email = { template = "{first_name|slug}.{last_name|slug}{row}@example.org" }
//!
//! [tables."public.core_patient"]
//! rows = { per = "public.auth_user", min = 0, max = 2 }
//! columns.notes = { gen = "lorem.sentence", null_ratio = 0.3 }
//!
//! [tables."public.django_migrations"]
//! skip = true
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::error::UsageError;
use column::{column_spec, default_spec};

mod column;

#[derive(Debug, Clone)]
pub struct SpecFile {
    pub path: PathBuf,
    pub text: String,
    pub seed: Option<u64>,
    pub as_of: Option<NaiveDate>,
    /// `[defaults]`: settings per SQL type (normalised, see [`normal_type`])
    /// for every column of that type; a column's own settings win.
    pub defaults: BTreeMap<String, ColumnSpec>,
    pub tables: BTreeMap<String, TableSpec>,
}

#[derive(Debug, Clone, Default)]
pub struct TableSpec {
    pub rows: Option<Rows>,
    pub skip: bool,
    pub columns: BTreeMap<String, ColumnSpec>,
}

#[derive(Debug, Clone)]
pub enum Rows {
    Fixed(u64),
    Per {
        per: String,
        via: Option<String>,
        count: FanCount,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FanCount {
    Fixed(u64),
    Range(u64, u64),
    /// Binomial with this mean (no transcendental functions: bit-identical everywhere).
    Mean(f64),
}

impl FanCount {
    pub fn max(&self) -> u64 {
        match *self {
            FanCount::Fixed(n) => n,
            FanCount::Range(_, hi) => hi,
            FanCount::Mean(m) => (2.0 * m).ceil() as u64,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ColumnSpec {
    pub generator: Option<String>,
    pub values: Option<Vec<(String, u64)>>,
    pub sql: Option<String>,
    pub template: Option<String>,
    pub null_ratio: Option<f64>,
    pub params: super::generators::Params,
    /// `ref = "schema.table.column"`: a reference the database does not
    /// declare (no foreign key), filled from that column's values.
    pub reference: Option<String>,
}

impl ColumnSpec {
    /// This column's settings, with `[defaults]` (`d`) filling the ones it
    /// leaves out; a default `null_ratio` applies to nullable columns only.
    pub fn with_defaults(&self, d: &ColumnSpec, not_null: bool) -> ColumnSpec {
        let mut c = self.clone();
        if c.null_ratio.is_none() && !not_null {
            c.null_ratio = d.null_ratio;
        }
        let (p, dp) = (&mut c.params, &d.params);
        p.min = p.min.or(dp.min);
        p.max = p.max.or(dp.max);
        p.from = p.from.clone().or(dp.from.clone());
        p.to = p.to.clone().or(dp.to.clone());
        p.true_ratio = p.true_ratio.or(dp.true_ratio);
        c
    }
}

/// Every problem found in a spec file, one `file:LINE: what — fix` per
/// line (validation goes on after the first so the user fixes all at once).
/// Printed one per line by `output::error`; exits 2 like any usage error.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct SpecErrors(pub Vec<String>);

impl SpecErrors {
    /// `Ok(())` when nothing was found; otherwise all of them (sorted by line, deduplicated).
    pub fn check(errors: Vec<anyhow::Error>) -> anyhow::Result<()> {
        let mut lines: Vec<(usize, String)> = Vec::new();
        for e in errors {
            let lines_of = match e.downcast_ref::<SpecErrors>() {
                Some(many) => many.0.clone(),
                None => vec![format!("{e:#}")],
            };
            for l in lines_of {
                let n = l
                    .split(':')
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0usize);
                if !lines.iter().any(|(_, x)| *x == l) {
                    lines.push((n, l));
                }
            }
        }
        if lines.is_empty() {
            return Ok(());
        }
        lines.sort_by_key(|(n, _)| *n);
        let lines: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
        if lines.len() == 1 {
            return Err(UsageError(lines.into_iter().next().unwrap()).into());
        }
        Err(SpecErrors(lines).into())
    }
}

/// An error in a spec file, pointing at the line.
pub fn error(spec: &SpecFile, table: &str, column: Option<&str>, msg: &str) -> anyhow::Error {
    let line = line_of(&spec.text, table, column);
    let what = match column {
        Some(c) => format!("{table}.{c}"),
        None => table.to_string(),
    };
    UsageError(format!("{}:{line}: {what}: {msg}", spec.path.display())).into()
}

/// The line where a table (or a column in it) is set, best effort.
pub fn line_of(text: &str, table: &str, column: Option<&str>) -> usize {
    let header = format!("[tables.\"{table}\"");
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&header))
    else {
        return 1;
    };
    let Some(col) = column else {
        return start + 1;
    };
    for (i, l) in lines.iter().enumerate().skip(start + 1) {
        let t = l.trim_start();
        if t.starts_with("[tables.\"") && !t.starts_with(&header) {
            break;
        }
        for key in [
            format!("columns.{col} "),
            format!("columns.{col}="),
            format!("columns.\"{col}\""),
            format!("{col} ="),
            format!("\"{col}\" ="),
        ] {
            if t.starts_with(&key) {
                return i + 1;
            }
        }
    }
    start + 1
}

/// The line of `[defaults]` entry `ty`, best effort.
fn default_line(text: &str, ty: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "[defaults]")
        .unwrap_or(0);
    lines
        .iter()
        .enumerate()
        .skip(start)
        .find(|(_, l)| {
            let t = l.trim_start().trim_start_matches('"');
            t.starts_with(ty)
                && t[ty.len()..]
                    .trim_start_matches('"')
                    .trim_start()
                    .starts_with('=')
        })
        .map_or(start + 1, |(i, _)| i + 1)
}

fn bad(path: &Path, text: &str, table: Option<&str>, msg: String) -> anyhow::Error {
    bad_at(path, text, table, None, msg)
}

fn bad_at(
    path: &Path,
    text: &str,
    table: Option<&str>,
    column: Option<&str>,
    msg: String,
) -> anyhow::Error {
    let line = table.map_or(1, |t| line_of(text, t, column));
    UsageError(format!("{}:{line}: {msg}", path.display())).into()
}

impl SpecFile {
    pub fn load(path: &Path) -> anyhow::Result<SpecFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            UsageError(format!("cannot read the seed spec {}: {e} — check the path, or write one with `ward seed --init-spec`", path.display()))
        })?;
        Self::parse(path, text)
    }

    pub fn parse(path: &Path, text: String) -> anyhow::Result<SpecFile> {
        let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map_or(1, |s| text[..s.start].matches('\n').count() + 1);
            let first = e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .to_string();
            UsageError(format!("{}:{line}: {first}", path.display()))
        })?;
        let mut spec = SpecFile {
            path: path.to_path_buf(),
            text: String::new(),
            seed: None,
            as_of: None,
            defaults: BTreeMap::new(),
            tables: BTreeMap::new(),
        };
        let mut errors: Vec<anyhow::Error> = Vec::new();
        for (k, v) in &doc {
            match (k.as_str(), v) {
                ("version", toml::Value::Integer(1)) => {}
                ("version", _) => errors.push(bad(path, &text, None, "version must be 1".into())),
                ("seed", toml::Value::Integer(s)) if *s >= 0 => spec.seed = Some(*s as u64),
                ("as_of", toml::Value::String(s)) => {
                    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                        Ok(d) => spec.as_of = Some(d),
                        Err(_) => errors.push(bad(
                            path,
                            &text,
                            None,
                            format!("as_of {s:?} is not a date (YYYY-MM-DD)"),
                        )),
                    }
                }
                ("defaults", toml::Value::Table(types)) => {
                    for (ty, v) in types {
                        match column_spec(v).and_then(|cs| default_spec(ty, cs)) {
                            Ok(cs) => {
                                spec.defaults.insert(normal_type(ty), cs);
                            }
                            Err(m) => errors.push(
                                UsageError(format!(
                                    "{}:{}: defaults.{ty}: {m}",
                                    path.display(),
                                    default_line(&text, ty)
                                ))
                                .into(),
                            ),
                        }
                    }
                }
                ("tables", toml::Value::Table(tables)) => {
                    for (name, t) in tables {
                        let (ts, problems) = table_spec(name, t);
                        for (column, m) in problems {
                            let what = match &column {
                                Some(c) => format!("{name}.{c}: {m}"),
                                None => format!("{name}: {m}"),
                            };
                            errors.push(bad_at(path, &text, Some(name), column.as_deref(), what));
                        }
                        spec.tables.insert(name.clone(), ts);
                    }
                }
                (other, _) => errors.push(bad(
                    path,
                    &text,
                    None,
                    format!(
                        "unknown key {other:?} (expected version, seed, as_of, defaults, tables)"
                    ),
                )),
            }
        }
        SpecErrors::check(errors)?;
        spec.text = text;
        Ok(spec)
    }
}

/// A table's spec and the problems in it: (column, message) — `None` for the table itself.
fn table_spec(name: &str, v: &toml::Value) -> (TableSpec, Vec<(Option<String>, String)>) {
    let mut ts = TableSpec::default();
    let mut problems: Vec<(Option<String>, String)> = Vec::new();
    let toml::Value::Table(t) = v else {
        problems.push((None, "must be a table with rows/skip/columns".into()));
        ts.skip = true;
        return (ts, problems);
    };
    for (k, v) in t {
        match (k.as_str(), v) {
            ("skip", toml::Value::Boolean(b)) => ts.skip = *b,
            ("rows", v) => match rows(v) {
                Ok(r) => ts.rows = Some(r),
                Err(m) => problems.push((None, m)),
            },
            ("columns", toml::Value::Table(cols)) => {
                for (c, cv) in cols {
                    match column_spec(cv) {
                        Ok(cs) => {
                            ts.columns.insert(c.clone(), cs);
                        }
                        Err(m) => {
                            problems.push((Some(c.clone()), m));
                            // Known to exist, so the plan does not also report it missing.
                            ts.columns.insert(c.clone(), ColumnSpec::default());
                        }
                    }
                }
            }
            (other, _) => problems.push((
                None,
                format!("unknown key {other:?} (expected rows, skip, columns)"),
            )),
        }
    }
    if ts.rows.is_none() && !ts.skip && problems.is_empty() {
        problems.push((
            None,
            format!(
                "needs `rows = N`, `rows = {{ per = \"schema.parent\", min = 0, max = 3 }}` or `skip = true` (table {name})"
            ),
        ));
    }
    (ts, problems)
}

fn uint(v: &toml::Value, what: &str) -> Result<u64, String> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        _ => Err(format!("{what} must be a non-negative integer")),
    }
}

fn float(v: &toml::Value, what: &str) -> Result<f64, String> {
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

/// The canonical name of an SQL type as Postgres' `format_type` spells it,
/// without length or precision: `timestamptz` → `timestamp with time zone`,
/// `varchar(20)` → `character varying`.
pub fn normal_type(ty: &str) -> String {
    let lower = ty.trim().to_ascii_lowercase();
    let (base, array) = match lower.strip_suffix("[]") {
        Some(b) => (b.trim_end(), "[]"),
        None => (lower.as_str(), ""),
    };
    // Drop a (n) or (p,s) modifier, wherever it sits (`timestamp(3) with time zone`).
    let mut bare = String::new();
    let mut depth = 0;
    for ch in base.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if depth == 0 => bare.push(c),
            _ => {}
        }
    }
    let bare = bare.split_whitespace().collect::<Vec<_>>().join(" ");
    let canonical = match bare.as_str() {
        "timestamptz" => "timestamp with time zone",
        "timestamp" => "timestamp without time zone",
        "timetz" => "time with time zone",
        "time" => "time without time zone",
        "varchar" => "character varying",
        "char" | "bpchar" => "character",
        "int" | "int4" => "integer",
        "int8" => "bigint",
        "int2" => "smallint",
        "bool" => "boolean",
        "float8" | "float" => "double precision",
        "float4" => "real",
        "decimal" => "numeric",
        other => other,
    };
    format!("{canonical}{array}")
}

#[cfg(test)]
mod tests {
    use super::column::single_expression;
    use super::*;

    fn parse(text: &str) -> anyhow::Result<SpecFile> {
        SpecFile::parse(Path::new("spec.toml"), text.to_string())
    }

    #[test]
    fn parses_rows_and_columns() {
        let s = parse(
            "version = 1\nseed = 3\n[tables.\"public.a\"]\nrows = 5\ncolumns.x = \"int\"\ncolumns.y = { values = { a = 2, b = 1 }, null_ratio = 0.5 }\n\n[tables.\"public.b\"]\nrows = { per = \"public.a\", min = 0, max = 3 }\n[tables.\"public.c\"]\nskip = true\n",
        )
        .unwrap();
        assert_eq!(s.seed, Some(3));
        let a = &s.tables["public.a"];
        assert!(matches!(a.rows, Some(Rows::Fixed(5))));
        assert_eq!(a.columns["y"].values.as_ref().unwrap().len(), 2);
        assert!(matches!(
            s.tables["public.b"].rows,
            Some(Rows::Per {
                count: FanCount::Range(0, 3),
                ..
            })
        ));
        assert!(s.tables["public.c"].skip);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("version = 1\n\n[tables.\"public.a\"]\nrows = 5\ncolumns.x = { gen = \"int\", bogus = 1 }\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("spec.toml:5: public.a.x: unknown key \"bogus\""),
            "{e}"
        );
        let e = parse("[tables.\"public.a\"]\ncolumns.x = \"int\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs `rows = N`"), "{e}");
    }

    #[test]
    fn sql_must_be_one_expression() {
        for ok in [
            "upper(md5(random()::text))",
            "'a;b' || ')'",
            "\"we;ird\" + 1",
        ] {
            assert!(single_expression(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1) FROM ward_stage; DROP TABLE canary; SELECT (1",
            "1; DROP TABLE canary",
            "(1",
            "1 -- x",
            "1 /* x */",
            "$$x$$",
            "'open",
            " ",
        ] {
            assert!(single_expression(bad).is_err(), "{bad}");
        }
        let e = parse("[tables.\"public.a\"]\nrows = 1\ncolumns.x = { sql = \"1) FROM ward_stage; DROP TABLE canary; SELECT (1\" }\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("spec.toml:3: public.a.x: sql must be one SQL expression"),
            "{e}"
        );
    }

    #[test]
    fn type_names_are_normalised_for_defaults() {
        assert_eq!(normal_type("timestamptz"), "timestamp with time zone");
        assert_eq!(
            normal_type("Timestamp(3) With Time Zone"),
            "timestamp with time zone"
        );
        assert_eq!(normal_type("varchar(20)"), "character varying");
        assert_eq!(normal_type("int4[]"), "integer[]");
        assert_eq!(normal_type("jsonb"), "jsonb");
    }

    #[test]
    fn line_of_finds_columns() {
        let text = "[tables.\"public.a\"]\nrows = 1\ncolumns.x = \"int\"\n[tables.\"public.b\"]\ncolumns.x = \"int\"\n";
        assert_eq!(line_of(text, "public.a", Some("x")), 3);
        assert_eq!(line_of(text, "public.b", Some("x")), 5);
        assert_eq!(line_of(text, "public.b", None), 4);
    }
}
