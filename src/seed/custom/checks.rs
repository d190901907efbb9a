//! Reading simple CHECK constraints so generated values satisfy them:
//! ranges (`x >= 0 AND x <= 100`, BETWEEN), `IN (…)` lists, `length(x) <= n`
//! and non-empty strings. Anything else is reported back unparsed, and the
//! spec tells the user to choose a generator that satisfies it.

use std::sync::OnceLock;

use regex::Regex;

/// What the CHECK constraints say about one column.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ColumnCheck {
    /// Inclusive lower bound, and whether the constraint was strict (`>`).
    pub min: Option<(f64, bool)>,
    pub max: Option<(f64, bool)>,
    /// `IN (…)`: the only allowed values.
    pub values: Option<Vec<String>>,
    pub max_len: Option<u32>,
    /// `length(x) >= n` / `octet_length(x) = n`: the shortest allowed value.
    pub min_len: Option<u32>,
    pub non_empty: bool,
}

impl ColumnCheck {
    /// The integer range the constraints allow.
    pub(crate) fn int_bounds(&self) -> (Option<i64>, Option<i64>) {
        let lo = self.min.map(|(v, strict)| {
            let f = v.ceil() as i64;
            if strict && f as f64 == v { f + 1 } else { f }
        });
        let hi = self.max.map(|(v, strict)| {
            let f = v.floor() as i64;
            if strict && f as f64 == v { f - 1 } else { f }
        });
        (lo, hi)
    }
}

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("valid regex"))
}

/// Removes redundant outer parentheses.
fn strip_parens(mut s: &str) -> &str {
    loop {
        s = s.trim();
        if s.starts_with('(') && s.ends_with(')') && closes_at_end(s) {
            s = &s[1..s.len() - 1];
        } else {
            return s;
        }
    }
}

/// Whether the '(' at the start of `s` is closed by its last character.
fn closes_at_end(s: &str) -> bool {
    let mut depth = 0;
    let mut in_str = false;
    for (i, ch) in s.char_indices() {
        match ch {
            '\'' => in_str = !in_str,
            '(' if !in_str => depth += 1,
            ')' if !in_str => {
                depth -= 1;
                if depth == 0 {
                    return i == s.len() - 1;
                }
            }
            _ => {}
        }
    }
    false
}

/// Splits on top-level ` AND `.
fn conjuncts(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut in_str, mut start) = (0i32, false, 0);
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => in_str = !in_str,
            b'(' if !in_str => depth += 1,
            b')' if !in_str => depth -= 1,
            b' ' if !in_str && depth == 0 && s[i..].starts_with(" AND ") => {
                out.push(&s[start..i]);
                i += 5;
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&s[start..]);
    out
}

/// `col`, `"col"`, `(col)::type` or `((col)::text)` naming `column`.
fn names_column(expr: &str, column: &str) -> bool {
    let e = strip_parens(expr);
    let e = e.split("::").next().unwrap_or(e);
    let e = strip_parens(e);
    e == column || e == format!("\"{}\"", column.replace('"', "\"\""))
}

/// A numeric literal as Postgres prints it: `5`, `(5)::numeric`, `'-5'::integer`, `(- 5)`, `0.5`.
fn number(expr: &str) -> Option<f64> {
    let e = strip_parens(expr);
    let e = e.split("::").next().unwrap_or(e);
    let e = strip_parens(e).trim_matches('\'').replace(' ', "");
    e.parse().ok()
}

/// Applies one CHECK definition (`CHECK (…)` as `pg_get_constraintdef` prints
/// it) to `column`. Returns false, changing nothing, if any part of it is not
/// understood.
pub(crate) fn apply(def: &str, column: &str, check: &mut ColumnCheck) -> bool {
    static CMP: OnceLock<Regex> = OnceLock::new();
    static ANY: OnceLock<Regex> = OnceLock::new();
    static LEN: OnceLock<Regex> = OnceLock::new();
    static ITEM: OnceLock<Regex> = OnceLock::new();
    let Some(body) = def.trim().strip_prefix("CHECK") else {
        return false;
    };
    let body = strip_parens(body.trim_end_matches("NOT VALID").trim());
    let mut next = check.clone();
    for part in conjuncts(body) {
        let part = strip_parens(part);
        let cmp = re(&CMP, r"^(.+?) (>=|<=|<>|>|<|=) (.+)$");
        let any = re(&ANY, r"^(.+?) = ANY \((.*)\)$");
        let len = re(
            &LEN,
            r"^(?:length|char_length|character_length|octet_length)\((.+)\) (<=|<|=|>=|>) (.+)$",
        );
        if let Some(c) = len.captures(part) {
            let (Some(n), true) = (number(&c[3]), names_column(&c[1], column)) else {
                return false;
            };
            let n = n.max(0.0) as u32;
            let (lo, hi) = match &c[2] {
                "<" => (None, Some(n.saturating_sub(1))),
                "<=" => (None, Some(n)),
                "=" => (Some(n), Some(n)),
                ">=" => (Some(n), None),
                _ => (Some(n + 1), None),
            };
            if let Some(hi) = hi {
                next.max_len = Some(next.max_len.map_or(hi, |m| m.min(hi)));
            }
            if let Some(lo) = lo {
                next.min_len = Some(next.min_len.map_or(lo, |m| m.max(lo)));
            }
        } else if let Some(c) = any.captures(part) {
            if !names_column(&c[1], column) {
                return false;
            }
            let item = re(&ITEM, r"'((?:[^']|'')*)'");
            let values: Vec<String> = item
                .captures_iter(&c[2])
                .map(|m| m[1].replace("''", "'"))
                .collect();
            if values.is_empty() {
                return false;
            }
            next.values = Some(values);
        } else if let Some(c) = cmp.captures(part) {
            if !names_column(&c[1], column) {
                return false;
            }
            let rhs = strip_parens(&c[3]);
            if &c[2] == "<>" && rhs.starts_with("''") {
                next.non_empty = true;
                continue;
            }
            let Some(v) = number(rhs) else {
                return false;
            };
            match &c[2] {
                ">=" => next.min = Some((v, false)),
                ">" => next.min = Some((v, true)),
                "<=" => next.max = Some((v, false)),
                "<" => next.max = Some((v, true)),
                "=" => {
                    next.min = Some((v, false));
                    next.max = Some((v, false));
                }
                _ => return false,
            }
        } else if part == format!("{column} IS NOT NULL") {
            continue;
        } else {
            return false;
        }
    }
    *check = next;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(def: &str, col: &str) -> Option<ColumnCheck> {
        let mut c = ColumnCheck::default();
        apply(def, col, &mut c).then_some(c)
    }

    #[test]
    fn ranges_and_between() {
        let c = parse(
            "CHECK (((duration >= 5) AND (duration <= 240)))",
            "duration",
        )
        .unwrap();
        assert_eq!(c.int_bounds(), (Some(5), Some(240)));
        let c = parse("CHECK ((age > 0))", "age").unwrap();
        assert_eq!(c.int_bounds(), (Some(1), None));
        let c = parse("CHECK ((weight >= (0)::numeric))", "weight").unwrap();
        assert_eq!(c.min, Some((0.0, false)));
        let c = parse("CHECK ((VALUE > '-5'::integer))", "VALUE").unwrap();
        assert_eq!(c.int_bounds(), (Some(-4), None));
    }

    #[test]
    fn in_lists() {
        let c = parse(
            "CHECK (((status)::text = ANY ((ARRAY['active'::character varying, 'o''k'::character varying])::text[])))",
            "status",
        )
        .unwrap();
        assert_eq!(c.values.unwrap(), vec!["active", "o'k"]);
        let c = parse(
            "CHECK ((sex = ANY (ARRAY['F'::bpchar, 'M'::bpchar])))",
            "sex",
        )
        .unwrap();
        assert_eq!(c.values.unwrap(), vec!["F", "M"]);
    }

    #[test]
    fn lengths_and_non_empty() {
        let c = parse("CHECK ((length((code)::text) <= 10))", "code").unwrap();
        assert_eq!(c.max_len, Some(10));
        let c = parse("CHECK ((char_length(code) < 4))", "code").unwrap();
        assert_eq!(c.max_len, Some(3));
        let c = parse("CHECK ((name <> ''::text))", "name").unwrap();
        assert!(c.non_empty);
        let c = parse("CHECK ((octet_length(sha) = 32))", "sha").unwrap();
        assert_eq!((c.min_len, c.max_len), (Some(32), Some(32)));
    }

    #[test]
    fn other_columns_and_other_forms_are_not_understood() {
        assert!(parse("CHECK ((a < b))", "a").is_none());
        assert!(parse("CHECK ((other >= 0))", "a").is_none());
        assert!(parse("CHECK ((lower(email) ~ '@'::text))", "email").is_none());
    }
}
