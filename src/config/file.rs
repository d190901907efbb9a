//! `ward.toml`: its sections, and reading it with errors on one line that
//! name the line (and, in the target tables, the key) to fix.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::FILE_NAME;
use crate::error::UsageError;
use crate::seed::export::ExportFormat;
use crate::target::TargetSpec;

/// The contents of `ward.toml`. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub database_url: Option<String>,
    #[serde(default)]
    pub seed: FileSeed,
    #[serde(default)]
    pub snapshot: FileSnapshot,
    #[serde(default)]
    pub store: FileStore,
    #[serde(default)]
    pub backup: FileBackup,
}

/// `[backup]` in `ward.toml`: what `ward backup` (the command a timer runs)
/// backs up, where to, what it keeps and whom it tells. Target keys left out
/// here fall back to `[snapshot]`'s. Its `Debug` hides the receiver URLs
/// (a check's UUID or a webhook's token are secrets).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBackup {
    /// Where the backup goes: created in the first, copied to the others.
    #[serde(default)]
    pub stores: Vec<String>,
    /// "online" (default: no downtime) or "cold".
    pub method: Option<String>,
    /// The names' prefix: `<prefix>-<target>-<UTC timestamp>` (default "backup").
    pub name_prefix: Option<String>,
    pub keep_last: Option<usize>,
    pub keep_daily: Option<usize>,
    pub keep_weekly: Option<usize>,
    pub keep_monthly: Option<usize>,
    /// A webhook that receives the JSON report of every run.
    pub notify: Option<String>,
    /// A healthchecks.io-style check URL: `/start`, success, `/fail`.
    pub ping: Option<String>,
    /// The systemd timer's `OnCalendar=` (default "*-*-* 03:00:00").
    pub on_calendar: Option<String>,
    /// The systemd timer's `RandomizedDelaySec=` (default "30min").
    pub randomized_delay: Option<String>,
    pub stop_timeout: Option<u32>,
    /// The target keys (`container`, `compose_service`, … as in `[snapshot]`).
    #[serde(flatten)]
    pub target: TargetSpec,
}

impl std::fmt::Debug for FileBackup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "(hidden)");
        f.debug_struct("FileBackup")
            .field("stores", &self.stores)
            .field("method", &self.method)
            .field("target", &self.target)
            .field("notify", &hidden(&self.notify))
            .field("ping", &hidden(&self.ping))
            .finish_non_exhaustive()
    }
}

/// `[store]` in `ward.toml`: how to reach an S3-compatible store (each key
/// under its standard `AWS_*` variable) and its encryption. Secrets here
/// are never printed (the Debug form hides them).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStore {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// Permit a plain-http endpoint (a local test server).
    #[serde(default)]
    pub allow_http: bool,
    /// `bucket.endpoint/key` addressing instead of `endpoint/bucket/key`.
    #[serde(default)]
    pub virtual_hosted_style: bool,
    /// Refuse unencrypted snapshots into this store.
    #[serde(default)]
    pub require_encryption: bool,
    /// age recipients (age1…) new snapshots are encrypted to.
    #[serde(default)]
    pub encrypt_to: Vec<String>,
    /// A file of age recipients, one per line.
    pub recipients_file: Option<PathBuf>,
    /// The age identity file that opens encrypted snapshots.
    pub identity: Option<PathBuf>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("require_encryption", &self.require_encryption)
            .finish_non_exhaustive()
    }
}

/// `[snapshot]` in `ward.toml`: the store, the stop timeout, a default target,
/// and the migrations `restore` compares a snapshot's migration head with.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSnapshot {
    pub store: Option<PathBuf>,
    pub stop_timeout: Option<u32>,
    /// The default target (may be empty).
    #[serde(flatten)]
    pub target: TargetSpec,
    /// The migrations directory `restore` compares the snapshot's migration
    /// head with when `--migrations` is not given (relative to ward.toml).
    pub migrations: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSeed {
    pub patients: Option<u64>,
    pub seed: Option<u64>,
    pub jobs: Option<usize>,
    pub schema: Option<String>,
    pub format: Option<ExportFormat>,
    /// A seed spec for the application's own schema.
    pub spec: Option<PathBuf>,
}

impl FileConfig {
    /// Reads `ward.toml` from `dir`; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Self::parse(&text, &path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            // toml's message spans several lines (it quotes the source); keep the
            // first line and the position so the error stays on one line.
            let first = e.message().lines().next().unwrap_or("invalid TOML");
            let (at, message) = match e.span() {
                Some(span) => {
                    let (line, message) = explain(text, span, first);
                    (format!(" at line {line}"), message)
                }
                None => (String::new(), first.to_string()),
            };
            UsageError(format!(
                "{}{at} is malformed: {message} — fix or remove the file (see README \"Configuration\")",
                path.display()
            ))
            .into()
        })
    }
}

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
fn explain(text: &str, span: std::ops::Range<usize>, message: &str) -> (usize, String) {
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
    use super::*;

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
