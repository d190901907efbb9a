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
pub(crate) use errors::{SpecErrors, error, line_of};
use errors::{bad_at, bad_key, default_line};
use table::{float, table_spec, uint};

mod column;
mod errors;
mod table;

#[derive(Debug, Clone)]
pub(crate) struct SpecFile {
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
pub(crate) struct TableSpec {
    pub rows: Option<Rows>,
    pub skip: bool,
    pub columns: BTreeMap<String, ColumnSpec>,
}

#[derive(Debug, Clone)]
pub(crate) enum Rows {
    Fixed(u64),
    Per {
        per: String,
        via: Option<String>,
        count: FanCount,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FanCount {
    Fixed(u64),
    Range(u64, u64),
    /// Binomial with this mean (no transcendental functions: bit-identical everywhere).
    Mean(f64),
}

impl FanCount {
    pub(crate) fn max(&self) -> u64 {
        match *self {
            FanCount::Fixed(n) => n,
            FanCount::Range(_, hi) => hi,
            FanCount::Mean(m) => (2.0 * m).ceil() as u64,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ColumnSpec {
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
    pub(crate) fn with_defaults(&self, d: &ColumnSpec, not_null: bool) -> ColumnSpec {
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

impl SpecFile {
    pub(crate) fn load(path: &Path) -> anyhow::Result<SpecFile> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            UsageError(format!("cannot read the seed spec {}: {e} — check the path, or write one with `ward seed --init-spec`", path.display()))
        })?;
        Self::parse(path, text)
    }

    pub(crate) fn parse(path: &Path, text: String) -> anyhow::Result<SpecFile> {
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
                ("version", _) => errors.push(bad_key(
                    path,
                    &text,
                    None,
                    "version",
                    "version must be 1".into(),
                )),
                ("seed", toml::Value::Integer(s)) if *s >= 0 => spec.seed = Some(*s as u64),
                ("as_of", toml::Value::String(s)) => {
                    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                        Ok(d) => spec.as_of = Some(d),
                        Err(_) => errors.push(bad_key(
                            path,
                            &text,
                            None,
                            "as_of",
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
                        for (column, key, m) in problems {
                            let what = match &column {
                                Some(c) => format!("{name}.{c}: {m}"),
                                None => format!("{name}: {m}"),
                            };
                            errors.push(match key {
                                Some(k) => bad_key(path, &text, Some(name), &k, what),
                                None => bad_at(path, &text, Some(name), column.as_deref(), what),
                            });
                        }
                        spec.tables.insert(name.clone(), ts);
                    }
                }
                (other, _) => errors.push(bad_key(
                    path,
                    &text,
                    None,
                    other,
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

/// The canonical name of an SQL type as Postgres' `format_type` spells it,
/// without length or precision: `timestamptz` → `timestamp with time zone`,
/// `varchar(20)` → `character varying`.
pub(crate) fn normal_type(ty: &str) -> String {
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
        // A misspelt key, at the top or in a table, on its own line.
        let e = parse("# a comment\nversoin = 1\nseed = 1\n[tables.\"public.a\"]\nrows = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("spec.toml:2: unknown key \"versoin\""), "{e}");
        let e =
            parse("version = 1\n[tables.\"public.a\"]\nrows = 5\ncolumns.x = \"int\"\nbogus = 3\n")
                .unwrap_err()
                .to_string();
        assert!(
            e.starts_with("spec.toml:5: public.a: unknown key \"bogus\""),
            "{e}"
        );
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
