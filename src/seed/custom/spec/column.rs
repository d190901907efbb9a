//! One column's entry in a spec: a generator name, or a table of `gen`,
//! `values`, `sql`, `template`, `ref` or `shape` with their settings, and a
//! `[defaults]` entry (settings only). Each mistake is one message.

use super::{ColumnSpec, float, uint};

pub(super) fn column_spec(v: &toml::Value) -> Result<ColumnSpec, String> {
    let mut cs = ColumnSpec::default();
    match v {
        toml::Value::String(g) => cs.generator = Some(g.clone()),
        toml::Value::Table(t) => {
            for (k, v) in t {
                let s = || match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    _ => Err(format!("{k} must be a string")),
                };
                match k.as_str() {
                    "gen" => cs.generator = Some(s()?),
                    "sql" => cs.sql = Some(single_expression(&s()?)?),
                    "template" => cs.template = Some(s()?),
                    "from" => cs.params.from = Some(s()?),
                    "to" => cs.params.to = Some(s()?),
                    "null_ratio" => cs.null_ratio = Some(float(v, k)?),
                    "true_ratio" => cs.params.true_ratio = Some(float(v, k)?),
                    "min" => cs.params.min = Some(float(v, k)?),
                    "max" => cs.params.max = Some(float(v, k)?),
                    "start" => cs.params.start = Some(float(v, k)? as i64),
                    "values" => cs.values = Some(values(v)?),
                    "shape" => {
                        cs.params.shape = Some(crate::seed::custom::shape::Shape::parse(&s()?)?)
                    }
                    "ref" => cs.reference = Some(reference(&s()?)?),
                    other => {
                        return Err(format!(
                            "unknown key {other:?} (expected gen, values, sql, template, ref, shape, null_ratio, min, max, from, to, true_ratio, start)"
                        ));
                    }
                }
            }
            if cs.params.shape.is_some() {
                match cs.generator.as_deref() {
                    None => cs.generator = Some("json".into()),
                    Some("json") => {}
                    Some(g) => {
                        return Err(format!(
                            "shape goes with gen = \"json\" (not {g:?}) — drop gen or the shape"
                        ));
                    }
                }
            }
            let ways = [
                cs.generator.is_some(),
                cs.values.is_some(),
                cs.sql.is_some(),
                cs.template.is_some(),
                cs.reference.is_some(),
            ];
            if ways.iter().filter(|w| **w).count() > 1 {
                return Err("give only one of gen, values, sql, template, ref".into());
            }
        }
        _ => {
            return Err(
                "must be a generator name (\"person.given_name\") or a table ({ gen = …, … })"
                    .into(),
            );
        }
    }
    if let Some(r) = cs.null_ratio
        && !(0.0..=1.0).contains(&r)
    {
        return Err("null_ratio must be between 0 and 1".into());
    }
    Ok(cs)
}

/// A `[defaults]` entry: settings that make sense for every column of a
/// type. Generators stay per column (a default generator would silently fill
/// columns the guesser chose otherwise).
pub(super) fn default_spec(ty: &str, cs: ColumnSpec) -> Result<ColumnSpec, String> {
    if cs.generator.is_some() || cs.values.is_some() || cs.sql.is_some() || cs.template.is_some() {
        return Err(format!(
            "defaults hold settings (null_ratio, min, max, from, to, true_ratio), not a generator — set gen/values/sql/template on each column, e.g. {ty} = {{ null_ratio = 0.1 }}"
        ));
    }
    if cs.params.start.is_some() || cs.params.shape.is_some() || cs.reference.is_some() {
        return Err("start, shape and ref are per column, not defaults".into());
    }
    Ok(cs)
}

/// `sql = …` is spliced into `INSERT … SELECT (expr) FROM …`, so it must be
/// exactly one expression: no `;`, no comment (which could hide the closing
/// parenthesis), parentheses balanced and never closed below the start.
pub(super) fn single_expression(sql: &str) -> Result<String, String> {
    let refuse = |why: &str| {
        Err(format!(
            "sql must be one SQL expression ({why}), e.g. sql = \"upper(md5(random()::text))\""
        ))
    };
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(ch) = chars.next() {
        if let Some(q) = quote {
            if ch == q {
                quote = None;
            }
            continue;
        }
        match ch {
            '\'' | '"' => quote = Some(ch),
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return refuse("a ')' closes more than it opened");
                }
            }
            ';' => return refuse("';' ends a statement"),
            '$' if chars.peek().is_some_and(|c| *c == '$' || c.is_alphabetic()) => {
                return refuse("dollar quoting is not allowed");
            }
            '-' if chars.peek() == Some(&'-') => return refuse("'--' starts a comment"),
            '/' if chars.peek() == Some(&'*') => return refuse("'/*' starts a comment"),
            _ => {}
        }
    }
    if quote.is_some() {
        return refuse("a quote is not closed");
    }
    if depth != 0 {
        return refuse("a '(' is not closed");
    }
    if sql.trim().is_empty() {
        return refuse("it is empty");
    }
    Ok(sql.to_string())
}

/// `ref = "schema.table.column"`: three dot-separated names.
fn reference(s: &str) -> Result<String, String> {
    if s.split('.').count() == 3 && s.split('.').all(|p| !p.is_empty()) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "ref {s:?} must name the referenced column as \"schema.table.column\""
        ))
    }
}

fn scalar(v: &toml::Value) -> Result<String, String> {
    match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        _ => Err("values must be strings, numbers or booleans".into()),
    }
}

fn values(v: &toml::Value) -> Result<Vec<(String, u64)>, String> {
    let out: Vec<(String, u64)> = match v {
        toml::Value::Array(items) => items
            .iter()
            .map(|i| scalar(i).map(|s| (s, 1)))
            .collect::<Result<_, _>>()?,
        toml::Value::Table(t) => t
            .iter()
            .map(|(k, w)| uint(w, "a value's weight").map(|w| (k.clone(), w)))
            .collect::<Result<_, _>>()?,
        _ => return Err("values must be a list [\"a\", \"b\"] or weights { a = 3, b = 1 }".into()),
    };
    if out.is_empty() || out.iter().all(|(_, w)| *w == 0) {
        return Err("values needs at least one value with a positive weight".into());
    }
    Ok(out)
}
