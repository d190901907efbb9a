//! Errors in `ward.toml` on one line that name the line to fix. toml points
//! at the value for most mistakes, but at the whole table for a mistake in a
//! table with flattened fields (the target keys of `[snapshot]` and
//! `[backup]`); there the key's own line is found here, and the message gets
//! what serde could not say.

use crate::target::TargetSpec;

/// The keys of `[snapshot]` beside the target keys. serde cannot list the
/// keys of a table with flattened fields, so they are written here; the
/// test `every_listed_key_is_a_key` keeps each one real.
const SNAPSHOT_KEYS: &[&str] = &["store", "stop_timeout", "migrations"];

/// The keys of `[backup]` beside the target keys (as [`SNAPSHOT_KEYS`]).
const BACKUP_KEYS: &[&str] = &[
    "stores",
    "method",
    "name_prefix",
    "keep_last",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "notify",
    "ping",
    "on_calendar",
    "randomized_delay",
    "stop_timeout",
];

/// Every key a table with the target keys flattened into it accepts.
fn flattened_table_keys(table: &str) -> Option<Vec<&'static str>> {
    let own = match table {
        "snapshot" => SNAPSHOT_KEYS,
        "backup" => BACKUP_KEYS,
        _ => return None,
    };
    Some(own.iter().chain(target_keys()).copied().collect())
}

/// The line a TOML error is about, and its message. toml reports a mistake
/// in a table with flattened fields (the target keys of `[snapshot]` /
/// `[backup]`) with the span of the whole table, and serde's message then
/// names the key (an unknown key) or only the value (a wrong type). So in
/// such a table the key's own line is looked up — by its name, or by the
/// value the message quotes — and the message gains what serde could not
/// say: the keys the table expects, or the key whose value is wrong.
pub(super) fn explain(text: &str, span: std::ops::Range<usize>, message: &str) -> (usize, String) {
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    let Some(table) = Table::at(text, span.start) else {
        return (line_of(span.start), message.to_string());
    };
    if let Some(key) = unknown_key(message) {
        let line = line_of(table.start + table.key_offset(key).unwrap_or(0));
        let expected = match flattened_table_keys(table.name) {
            Some(keys) if !message.contains("expected") => format!(
                ", expected one of {}",
                keys.iter()
                    .map(|key| format!("`{key}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => String::new(),
        };
        return (line, format!("{message}{expected}"));
    }
    if let Some(value) = quoted_value(message)
        && let Some((offset, key)) = table.key_with_value(&value)
    {
        return (
            line_of(table.start + offset),
            format!("{message} (key `{key}`)"),
        );
    }
    (line_of(table.start), message.to_string())
}

/// A `[name]` table of the file: where it starts and its text up to the
/// next header.
struct Table<'a> {
    name: &'a str,
    start: usize,
    body: &'a str,
}

impl<'a> Table<'a> {
    /// The table whose header is at `start`, if a header is there (toml
    /// points at a value itself, not at its table, for most mistakes).
    fn at(text: &'a str, start: usize) -> Option<Table<'a>> {
        let rest = text.get(start..)?;
        let header_end = rest.find('\n').unwrap_or(rest.len());
        let header = rest[..header_end].trim();
        let name = header.strip_prefix('[')?.split(']').next()?.trim();
        let body_start = (header_end + 1).min(rest.len());
        let body_end = rest[body_start..]
            .match_indices('\n')
            .find(|(at, _)| rest[body_start + at + 1..].trim_start().starts_with('['))
            .map_or(rest.len(), |(at, _)| body_start + at + 1);
        Some(Table {
            name,
            start,
            body: &rest[..body_end],
        })
    }

    /// `key = value` lines: (offset of the line in the table, key, value).
    fn entries(&self) -> impl Iterator<Item = (usize, &'a str, &'a str)> {
        let mut offset = 0;
        self.body.split_inclusive('\n').filter_map(move |line| {
            let here = offset;
            offset += line.len();
            if line.trim_start().starts_with('#') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            let key = key.trim().trim_matches('"');
            Some((here, key, value.trim()))
        })
    }

    fn key_offset(&self, name: &str) -> Option<usize> {
        self.entries()
            .find(|(_, key, _)| *key == name)
            .map(|(offset, _, _)| offset)
    }

    /// The first key whose value is spelled as serde quoted it.
    fn key_with_value(&self, shown: &Shown) -> Option<(usize, &'a str)> {
        self.entries()
            .find(|(_, _, raw)| shown.matches(raw))
            .map(|(offset, key, _)| (offset, key))
    }
}

/// The key of serde's ``unknown field `x`…`` message.
fn unknown_key(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next().filter(|key| !key.is_empty())
}

/// A value as serde's "invalid type" message shows it.
#[derive(Debug, PartialEq)]
enum Shown {
    /// A number or boolean: ``integer `5` ``, ``boolean `true` ``.
    Bare(String),
    /// A string: `string "x"`.
    Text(String),
}

impl Shown {
    /// Whether the TOML value `raw` (to the end of its line) is this value.
    fn matches(&self, raw: &str) -> bool {
        match self {
            Shown::Bare(value) => {
                raw.split('#').next().unwrap_or_default().trim() == value.as_str()
            }
            Shown::Text(value) => {
                let mut chars = raw.chars();
                let Some(quote) = chars.next().filter(|c| *c == '"' || *c == '\'') else {
                    return false;
                };
                let inner = chars.as_str();
                inner
                    .find(quote)
                    .is_some_and(|end| &inner[..end] == value.as_str())
            }
        }
    }
}

/// The value an `invalid type: …` / `invalid value: …` message quotes.
fn quoted_value(message: &str) -> Option<Shown> {
    let rest = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))?;
    if let Some(text) = rest.strip_prefix("string \"") {
        return Some(Shown::Text(text.split('"').next()?.to_string()));
    }
    let (_, after) = rest.split_once('`')?;
    Some(Shown::Bare(after.split('`').next()?.to_string()))
}

/// The target keys (`container`, `volume`, …), as serde knows them.
fn target_keys() -> &'static [&'static str] {
    struct_fields::<TargetSpec>()
}

/// The field names serde derived for a struct without flattened fields: a
/// deserializer that only records what `deserialize_struct` is told.
fn struct_fields<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{self, Visitor};

    struct Fields(&'static [&'static str]);
    #[derive(Debug)]
    struct Recorded;
    impl std::fmt::Display for Recorded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names recorded")
        }
    }
    impl std::error::Error for Recorded {}
    impl de::Error for Recorded {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Recorded
        }
    }
    struct Introspect<'a>(&'a mut Fields);
    impl<'de> de::Deserializer<'de> for Introspect<'_> {
        type Error = Recorded;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Recorded> {
            Err(Recorded)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Recorded> {
            self.0.0 = fields;
            Err(Recorded)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields = Fields(&[]);
    let _ = T::deserialize(Introspect(&mut fields));
    fields.0
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::FileConfig;

    #[test]
    fn malformed_file_is_a_one_line_error_with_position() {
        let err = FileConfig::parse("[seed]\npatients = \"many\"\n", Path::new("ward.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ward.toml at line 2 is malformed"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn a_mistake_in_a_flattened_target_key_names_the_keys_line() {
        let text = "[snapshot]\nstore = \"/srv/ward\"\ncontainr = \"db\"\n";
        let err = FileConfig::parse(text, Path::new("ward.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ward.toml at line 3 is malformed"), "{err}");
        assert!(err.contains("containr"), "{err}");
    }

    #[test]
    fn a_mistyped_target_key_is_a_one_line_error() {
        let err = FileConfig::parse("[snapshot]\ncontainer = 5\n", Path::new("ward.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ward.toml"), "{err}");
        assert!(err.contains("is malformed"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn unknown_target_keys_are_rejected() {
        let err = FileConfig::parse("[snapshot]\ncontainr = \"pg\"\n", Path::new("ward.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("containr"), "{err}");
        let err = FileConfig::parse("[backup]\nvolum = \"v\"\n", Path::new("ward.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("volum"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = FileConfig::parse("databse_url = \"x\"\n", Path::new("ward.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("databse_url"), "{err}");
    }

    fn parse_error(text: &str) -> String {
        FileConfig::parse(text, Path::new("ward.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_wrong_type_in_a_flattened_target_key_names_the_keys_line() {
        let err = parse_error("[snapshot]\nstore = \"/srv/ward\"\ncontainer = 5\n");
        assert!(err.contains("ward.toml at line 3 is malformed"), "{err}");
        assert!(err.contains("(key `container`)"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        // In the other flattened table, after keys with other values, with
        // comments about.
        let err = parse_error(
            "[snapshot]\ncontainer = \"pg\"\n\n[backup]\nname_prefix = \"nightly\"\n\
             # the compose project\ncompose_project = 30 # not a name\n",
        );
        assert!(err.contains("ward.toml at line 7 is malformed"), "{err}");
        assert!(err.contains("(key `compose_project`)"), "{err}");
        let err = parse_error("[backup]\nvolume = \"v\"\nimage = true\n");
        assert!(err.contains("at line 3"), "{err}");
        assert!(err.contains("(key `image`)"), "{err}");
        // A table's own keys: toml itself points at the value.
        let err = parse_error("[backup]\nvolume = \"v\"\n\nstop_timeout = \"30\"\n");
        assert!(err.contains("at line 4"), "{err}");
    }

    #[test]
    fn a_wrong_type_in_a_plain_table_keeps_toml_s_own_line() {
        let err = parse_error("[seed]\n\n# how many\npatients = \"many\"\n");
        assert!(err.contains("ward.toml at line 4 is malformed"), "{err}");
    }

    #[test]
    fn an_unknown_key_in_a_flattened_table_lists_the_expected_keys() {
        let err = parse_error("[snapshot]\nstore = \"/srv\"\ncontainr = \"db\"\n");
        assert!(err.contains("at line 3"), "{err}");
        assert!(
            err.contains("unknown field `containr`, expected one of"),
            "{err}"
        );
        for key in [
            "`store`",
            "`stop_timeout`",
            "`migrations`",
            "`container`",
            "`datadir`",
        ] {
            assert!(err.contains(key), "{key}: {err}");
        }
        assert!(!err.contains("`stores`"), "{err}");
        let err = parse_error("[backup]\nvolum = \"v\"\n");
        for key in ["`stores`", "`keep_daily`", "`volume`", "`compose_service`"] {
            assert!(err.contains(key), "{key}: {err}");
        }
        // A plain table: serde's own list, not a second one.
        let err = parse_error("[seed]\npatiens = 3\n");
        assert_eq!(err.matches("expected one of").count(), 1, "{err}");
    }

    #[test]
    fn every_listed_key_is_a_key() {
        assert!(target_keys().contains(&"container"), "{:?}", target_keys());
        for (table, keys) in [("snapshot", SNAPSHOT_KEYS), ("backup", BACKUP_KEYS)] {
            for key in keys {
                let err = parse_error(&format!("[{table}]\n{key} = {{ x = 1 }}\n"));
                assert!(!err.contains("unknown field"), "[{table}] {key}: {err}");
            }
        }
    }

    #[test]
    fn values_are_read_as_serde_quotes_them() {
        assert_eq!(
            quoted_value("invalid type: integer `5`, expected a string"),
            Some(Shown::Bare("5".into()))
        );
        assert_eq!(
            quoted_value("invalid type: string \"30\", expected u32"),
            Some(Shown::Text("30".into()))
        );
        assert_eq!(
            quoted_value("invalid type: sequence, expected a string"),
            None
        );
        assert!(Shown::Text("30".into()).matches("'30' # seconds"));
        assert!(!Shown::Text("30".into()).matches("30"));
        assert!(Shown::Bare("true".into()).matches("true # yes"));
    }
}
