//! Deriving a shape from the values a column already holds: keys that look
//! like field names are kept, objects keyed by data become maps, string
//! leaves are named by their format or their key — and nothing of a value's
//! content is kept.

use serde_json::Value as Json;

use super::*;

/// The shape of `samples` (never empty), string leaves named by `by_name`
/// (a key's name → a text generator) unless their format says more.
pub(crate) fn derive(samples: &[Json], by_name: &dyn Fn(&str) -> String) -> Shape {
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
pub(crate) fn default_value(default: &str) -> Option<Json> {
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
