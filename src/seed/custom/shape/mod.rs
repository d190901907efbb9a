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

mod derive;

pub(crate) use derive::{default_value, derive};

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
pub(crate) const SAMPLE_ROWS: i64 = 200;

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
pub(crate) enum Shape {
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
    pub(crate) fn to_text(&self) -> String {
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
    pub(crate) fn parse(text: &str) -> Result<Shape, String> {
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

/// A shape ready to make values: leaves are generators.
#[derive(Debug, Clone)]
pub(crate) enum Compiled {
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
    pub(crate) fn compile(&self, as_of: NaiveDate) -> Result<Compiled, String> {
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
    pub(crate) fn make(&self, ctx: &mut Ctx) -> Json {
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
