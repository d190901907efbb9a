//! JSON shapes: what the values of a json/jsonb column look like — object
//! keys, value types, lists and nesting — without any of their contents.
//! `--init-spec` derives a shape from the rows a table already holds (or
//! from the column's JSON DEFAULT) and writes it into the spec as
//! `shape = '{"name": "person.full_name", "tags": ["lorem.word", "0..3"]}'`;
//! `--spec` then makes values of that shape, every leaf from a ward
//! generator chosen by the key's name and the value's type.
//!
//! Nothing of a real value is copied (it may be patient data): leaves become
//! generator names, a list keeps only its length range, and an object keeps
//! its keys only when they look like field names (identifiers, few of them);
//! objects keyed by data (ids, names, dates) become maps with made-up keys.
//!
//! The text form is JSON: a string leaf names a generator, an object maps
//! keys to shapes (`"key?"`: present in about half the values, `"*"`: a map
//! of 1–3 made-up keys), and a list is `[shape, "lo..hi"]` (its length range).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::Value as Json;

use super::checks::ColumnCheck;
use super::generators::{Ctx, Gen, Params};
use super::schema::{Column, PgType};
use super::values::Value;
use crate::seed::rng::Stream;

/// Levels of nesting kept; deeper objects and lists become `{}` / `[]`.
const MAX_DEPTH: usize = 4;
/// Keys an object may have and still be read as a record of named fields.
const MAX_KEYS: usize = 30;
/// The longest list a shape makes.
const MAX_LIST: u32 = 5;
/// Rows sampled per column.
pub const SAMPLE_ROWS: i64 = 200;

/// Generators a leaf may name: the ones that make one scalar.
const LEAVES: &[&str] = &[
    "int",
    "float",
    "bool",
    "null",
    "date",
    "timestamp",
    "uuid",
    "ulid",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A generator name.
    Leaf(String),
    /// Named fields: (key, optional, shape).
    Object(Vec<(String, bool, Shape)>),
    /// An object of 1–3 made-up keys, each holding this shape.
    Map(Box<Shape>),
    /// A list of `lo..=hi` items of this shape.
    List(Box<Shape>, u32, u32),
}

impl Shape {
    /// The shape as the spec writes it (JSON text).
    pub fn to_text(&self) -> String {
        serde_json::to_string(&self.to_json()).expect("shapes serialise")
    }

    fn to_json(&self) -> Json {
        match self {
            Shape::Leaf(g) => Json::String(g.clone()),
            Shape::Object(fields) => Json::Object(
                fields
                    .iter()
                    .map(|(k, opt, s)| {
                        (if *opt { format!("{k}?") } else { k.clone() }, s.to_json())
                    })
                    .collect(),
            ),
            Shape::Map(s) => Json::Object([("*".to_string(), s.to_json())].into_iter().collect()),
            Shape::List(s, lo, hi) => Json::Array(vec![s.to_json(), format!("{lo}..{hi}").into()]),
        }
    }

    /// Reads a spec's `shape = '…'`.
    pub fn parse(text: &str) -> Result<Shape, String> {
        let json: Json = serde_json::from_str(text)
            .map_err(|e| format!("shape is not JSON ({e}) — e.g. shape = '{{\"name\": \"person.full_name\", \"tags\": [\"lorem.word\", \"0..3\"]}}'"))?;
        let shape = from_json(&json, 0)?;
        if shape.most_leaves() > MAX_LEAVES {
            return Err(format!(
                "shape can make more than {MAX_LEAVES} values in one cell — shorten its lists' ranges"
            ));
        }
        Ok(shape)
    }

    /// The most leaf values one cell of this shape can hold (saturating).
    fn most_leaves(&self) -> u64 {
        match self {
            Shape::Leaf(_) => 1,
            Shape::Object(fields) => fields
                .iter()
                .fold(0u64, |n, (_, _, s)| n.saturating_add(s.most_leaves())),
            // A map cell gets at most three entries (`Compiled::make`).
            Shape::Map(s) => s.most_leaves().saturating_mul(3),
            Shape::List(s, _, hi) => s.most_leaves().saturating_mul(u64::from(*hi)),
        }
    }
}

/// The most values one generated JSON cell may hold: a spec's shape beyond it
/// would make rows of megabytes (or never finish), so it is refused.
const MAX_LEAVES: u64 = 10_000;

fn from_json(j: &Json, depth: usize) -> Result<Shape, String> {
    if depth > MAX_DEPTH + 4 {
        return Err("shape nests too deep".into());
    }
    match j {
        Json::String(g) => {
            if LEAVES.contains(&g.as_str())
                || (g.contains('.') && super::generators::NAMES.contains(&g.as_str()))
            {
                Ok(Shape::Leaf(g.clone()))
            } else {
                Err(format!(
                    "shape leaf {g:?} is not a generator (use int, float, bool, null, date, timestamp, uuid, ulid or a name such as person.full_name)"
                ))
            }
        }
        Json::Object(m) if m.len() == 1 && m.contains_key("*") => {
            Ok(Shape::Map(Box::new(from_json(&m["*"], depth + 1)?)))
        }
        Json::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let (key, opt) = match k.strip_suffix('?') {
                    Some(k) => (k.to_string(), true),
                    None => (k.clone(), false),
                };
                Ok((key, opt, from_json(v, depth + 1)?))
            })
            .collect::<Result<_, String>>()
            .map(Shape::Object),
        Json::Array(items) => {
            let bad = || {
                "a list in a shape is [item_shape, \"lo..hi\"], e.g. [\"int\", \"1..3\"]"
                    .to_string()
            };
            let [item, Json::String(range)] = &items[..] else {
                return Err(bad());
            };
            let (lo, hi) = range.split_once("..").ok_or_else(bad)?;
            let (lo, hi): (u32, u32) = (
                lo.trim().parse().map_err(|_| bad())?,
                hi.trim().parse().map_err(|_| bad())?,
            );
            if lo > hi || hi > 100 {
                return Err("a list's length range needs lo ≤ hi ≤ 100".into());
            }
            Ok(Shape::List(Box::new(from_json(item, depth + 1)?), lo, hi))
        }
        _ => Err("a shape holds generator names, objects and lists only".into()),
    }
}

/// The shape of `samples` (never empty), string leaves named by `by_name`
/// (a key's name → a text generator) unless their format says more.
pub fn derive(samples: &[Json], by_name: &dyn Fn(&str) -> String) -> Shape {
    let refs: Vec<&Json> = samples.iter().collect();
    infer(&refs, "", by_name, 0)
}

fn infer(values: &[&Json], key: &str, by_name: &dyn Fn(&str) -> String, depth: usize) -> Shape {
    let present: Vec<&Json> = values.iter().copied().filter(|v| !v.is_null()).collect();
    // The most common kind wins; the others are dropped.
    let kind = |v: &Json| match v {
        Json::Object(_) => 0,
        Json::Array(_) => 1,
        Json::String(_) => 2,
        Json::Number(n) if n.is_f64() => 3,
        Json::Number(_) => 4,
        _ => 5,
    };
    let mut counts = [0usize; 6];
    for v in &present {
        counts[kind(v)] += 1;
    }
    let Some(top) = (0..6)
        .filter(|k| counts[*k] > 0)
        .max_by_key(|k| (counts[*k], 6 - k))
    else {
        return Shape::Leaf("null".into());
    };
    // Integers and decimals together are decimals.
    let of_kind: Vec<&Json> = present
        .iter()
        .copied()
        .filter(|v| kind(v) == top || (top == 3 && kind(v) == 4))
        .collect();
    match top {
        0 if depth >= MAX_DEPTH => Shape::Object(Vec::new()),
        0 => {
            let mut keys: BTreeMap<&str, Vec<&Json>> = BTreeMap::new();
            for v in &of_kind {
                for (k, x) in v.as_object().expect("objects") {
                    keys.entry(k).or_default().push(x);
                }
            }
            let field_like = |k: &str| {
                let mut cs = k.chars();
                k.len() <= 40
                    && cs
                        .next()
                        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    && !k.ends_with('?')
            };
            // A key is a field of the app's only when most sampled objects
            // have it (and, with several objects, more than one does): keys
            // seen once or rarely may be data (names, postcodes, logins), and
            // nothing read from the rows may reach the spec or the rows made.
            let common = |vs: &Vec<&Json>| {
                vs.len() * 2 >= of_kind.len() && (of_kind.len() < 2 || vs.len() >= 2)
            };
            keys.retain(|_, vs| common(vs));
            if keys.is_empty() || keys.len() > MAX_KEYS || !keys.keys().all(|k| field_like(k)) {
                let all: Vec<&Json> = of_kind
                    .iter()
                    .filter_map(|v| v.as_object())
                    .flat_map(|o| o.values())
                    .collect();
                return Shape::Map(Box::new(infer(&all, "", by_name, depth + 1)));
            }
            Shape::Object(
                keys.iter()
                    .map(|(k, vs)| {
                        (
                            k.to_string(),
                            vs.len() < of_kind.len(),
                            infer(vs, k, by_name, depth + 1),
                        )
                    })
                    .collect(),
            )
        }
        1 => {
            let lists: Vec<&Vec<Json>> = of_kind.iter().filter_map(|v| v.as_array()).collect();
            let lens = lists.iter().map(|l| (l.len() as u32).min(MAX_LIST));
            let (lo, hi) = (lens.clone().min().unwrap_or(0), lens.max().unwrap_or(0));
            let items: Vec<&Json> = lists.iter().flat_map(|l| l.iter()).collect();
            if items.is_empty() || depth >= MAX_DEPTH {
                // Never seen an item: its type is unknown, words are a guess.
                return Shape::List(Box::new(Shape::Leaf("lorem.word".into())), 0, 3.max(hi));
            }
            Shape::List(Box::new(infer(&items, key, by_name, depth + 1)), lo, hi)
        }
        2 => {
            let strings: Vec<&str> = of_kind.iter().filter_map(|v| v.as_str()).collect();
            Shape::Leaf(string_leaf(&strings, key, by_name))
        }
        3 => Shape::Leaf("float".into()),
        4 => Shape::Leaf("int".into()),
        _ => Shape::Leaf("bool".into()),
    }
}

/// A generator for strings: by their format when every one has it (UUID,
/// ULID, date, timestamp, e-mail, URL), else by the key's name.
fn string_leaf(strings: &[&str], key: &str, by_name: &dyn Fn(&str) -> String) -> String {
    static FORMATS: std::sync::OnceLock<Vec<(regex::Regex, &str)>> = std::sync::OnceLock::new();
    let formats = FORMATS.get_or_init(|| {
        [
            (
                r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                "uuid",
            ),
            (r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$", "ulid"),
            (r"^\d{4}-\d{2}-\d{2}$", "date"),
            (r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", "timestamp"),
            (r"^[^@\s]+@[^@\s]+\.[a-zA-Z]{2,}$", "internet.email"),
            (r"^https?://", "internet.url"),
        ]
        .into_iter()
        .map(|(re, g)| (regex::Regex::new(re).expect("valid regex"), g))
        .collect()
    });
    for (re, g) in formats {
        if strings.iter().all(|s| re.is_match(s)) {
            return g.to_string();
        }
    }
    if key.is_empty() {
        return "lorem.word".into();
    }
    let g = by_name(key);
    let long = strings.iter().map(|s| s.len()).sum::<usize>() > 40 * strings.len();
    if g == "lorem.words" && long {
        "lorem.sentence".into()
    } else {
        g
    }
}

/// The JSON value of a column's DEFAULT (`'{"a": 1}'::jsonb`), when it is a
/// constant with content (an empty object tells nothing).
pub fn default_value(default: &str) -> Option<Json> {
    let d = default.trim();
    let body = d
        .strip_suffix("::jsonb")
        .or_else(|| d.strip_suffix("::json"))?
        .strip_prefix('\'')?
        .strip_suffix('\'')?;
    let json: Json = serde_json::from_str(&body.replace("''", "'")).ok()?;
    match &json {
        Json::Object(m) if m.is_empty() => None,
        _ => Some(json),
    }
}

/// A shape ready to make values: leaves are generators.
#[derive(Debug, Clone)]
pub enum Compiled {
    Leaf(Gen),
    Object(Vec<(String, bool, Compiled)>),
    Map(Box<Compiled>),
    List(Box<Compiled>, u32, u32),
}

/// A column of the type a leaf generator fills, for [`Gen::named`]'s fitting.
fn leaf_column(name: &str) -> Column {
    let ty = match name {
        "int" => PgType::Int4,
        "float" => PgType::Float8,
        _ => PgType::Text {
            max_len: None,
            fixed: false,
        },
    };
    Column {
        name: name.into(),
        attnum: 0,
        ty,
        sql_type: String::new(),
        not_null: true,
        default: None,
        identity: false,
        generated: false,
        check: ColumnCheck::default(),
    }
}

impl Shape {
    pub fn compile(&self, as_of: NaiveDate) -> Result<Compiled, String> {
        Ok(match self {
            Shape::Leaf(g) => {
                Compiled::Leaf(Gen::named(g, &Params::default(), &leaf_column(g), as_of)?)
            }
            Shape::Object(fields) => Compiled::Object(
                fields
                    .iter()
                    .map(|(k, o, s)| Ok((k.clone(), *o, s.compile(as_of)?)))
                    .collect::<Result<_, String>>()?,
            ),
            Shape::Map(s) => Compiled::Map(Box::new(s.compile(as_of)?)),
            Shape::List(s, lo, hi) => Compiled::List(Box::new(s.compile(as_of)?), *lo, *hi),
        })
    }
}

impl Compiled {
    /// One value of the shape, drawn from the row's stream.
    pub fn make(&self, ctx: &mut Ctx) -> Json {
        match self {
            Compiled::Leaf(g) => {
                let mut leaf = Ctx {
                    seed: ctx.seed,
                    rng: &mut *ctx.rng,
                    row: ctx.row,
                    rank: None,
                    max_len: None,
                };
                to_json(g.make(&mut leaf))
            }
            Compiled::Object(fields) => {
                let mut m = serde_json::Map::new();
                for (k, optional, s) in fields {
                    if *optional && !ctx.rng.chance(0.5) {
                        continue;
                    }
                    m.insert(k.clone(), s.make(ctx));
                }
                Json::Object(m)
            }
            Compiled::Map(s) => {
                let mut m = serde_json::Map::new();
                let n = ctx.rng.range(1, 3);
                for i in 0..n {
                    let word = made_up_key(ctx.rng);
                    let key = if m.contains_key(&word) {
                        format!("{word}{i}")
                    } else {
                        word
                    };
                    m.insert(key, s.make(ctx));
                }
                Json::Object(m)
            }
            Compiled::List(s, lo, hi) => {
                let n = ctx.rng.range(*lo as i64, *hi as i64);
                Json::Array((0..n).map(|_| s.make(ctx)).collect())
            }
        }
    }
}

fn made_up_key(rng: &mut Stream) -> String {
    use fake::Fake;
    fake::faker::lorem::en::Word().fake_with_rng(rng.rng())
}

/// A generated scalar as JSON: dates and times as ISO 8601 text.
fn to_json(v: Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(b),
        Value::Int(i) => Json::from(i),
        Value::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Value::Date(d) => Json::String(d.format("%Y-%m-%d").to_string()),
        Value::Timestamp(t) => Json::String(t.format("%Y-%m-%dT%H:%M:%S").to_string()),
        Value::Json(s) => serde_json::from_str(&s).unwrap_or(Json::String(s)),
        other => Json::String(other.to_text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn words(_: &str) -> String {
        "lorem.words".into()
    }

    #[test]
    fn derives_keys_types_lists_and_formats_but_no_contents() {
        let samples = vec![
            json!({"name": "Jane Secret", "age": 41, "tags": ["a", "b"], "seen": "2024-01-02T10:00:00Z",
                   "ids": {"9434765919": 1, "9434765870": 2}, "addr": {"email": "jane@secret.org"}}),
            json!({"name": "John Hidden", "age": 7, "tags": [], "seen": "2023-05-06 11:00:00",
                   "ids": {"9434765900": 3}, "addr": {"email": "john@hidden.org"}, "extra": true}),
            // `extra` in two of three objects: a field; `once` in one: maybe data.
            json!({"name": "Ann Other", "age": 3, "tags": [], "seen": "2023-05-06 11:00:00",
                   "ids": {}, "addr": {"email": "ann@hidden.org"}, "extra": false, "once": 1}),
        ];
        let s = derive(&samples, &words);
        let text = s.to_text();
        for secret in ["Jane", "Secret", "9434765919", "secret.org", "2024"] {
            assert!(!text.contains(secret), "{text}");
        }
        assert_eq!(
            text,
            r#"{"addr":{"email":"internet.email"},"age":"int","extra?":"bool","ids":{"*":"int"},"name":"lorem.words","seen":"timestamp","tags":["lorem.words","0..2"]}"#
        );
        assert_eq!(Shape::parse(&text).unwrap(), s);
    }

    #[test]
    fn parse_refuses_shapes_that_make_huge_cells() {
        let err = Shape::parse(r#"[[[["int","100..100"],"100..100"],"100..100"],"100..100"]"#)
            .unwrap_err();
        assert!(err.contains("more than 10000 values"), "{err}");
        assert!(Shape::parse(r#"[["int","100..100"],"100..100"]"#).is_ok());
    }

    #[test]
    fn parse_refuses_what_is_not_a_shape() {
        assert!(Shape::parse(r#"{"a": "Jane"}"#).is_err());
        assert!(Shape::parse(r#"["int"]"#).is_err());
        assert!(Shape::parse(r#"["int", "3..1"]"#).is_err());
        assert!(Shape::parse("7").is_err());
        assert!(Shape::parse(r#"{"a": ["person.full_name", "1..2"]}"#).is_ok());
    }

    #[test]
    fn defaults_with_content_are_read() {
        assert_eq!(
            default_value(r#"'{"theme": "dark", "n": 1}'::jsonb"#),
            Some(json!({"theme": "dark", "n": 1}))
        );
        assert_eq!(default_value("'{}'::jsonb"), None);
        assert_eq!(default_value("'[]'::json"), Some(json!([])));
        assert_eq!(default_value("now()"), None);
    }

    #[test]
    fn values_follow_the_shape_deterministically() {
        let s = Shape::parse(
            r#"{"a": "int", "b?": "bool", "c": ["uuid", "2..2"], "d": {"*": "date"}}"#,
        )
        .unwrap()
        .compile(NaiveDate::from_ymd_opt(2025, 1, 1).unwrap())
        .unwrap();
        let make = |row| {
            let mut rng = Stream::new(1, "t.c", row);
            s.make(&mut Ctx {
                seed: 1,
                rng: &mut rng,
                row,
                rank: None,
                max_len: None,
            })
        };
        for row in 0..20 {
            let v = make(row);
            assert_eq!(v, make(row));
            assert!(v["a"].is_i64(), "{v}");
            assert_eq!(v["c"].as_array().unwrap().len(), 2);
            assert!(
                v["d"]
                    .as_object()
                    .unwrap()
                    .values()
                    .all(|d| d.as_str().unwrap().len() == 10)
            );
        }
    }
}
