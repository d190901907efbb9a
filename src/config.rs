//! `ward.toml` + environment + flags → one resolved configuration.
//!
//! Precedence is flag > environment > `ward.toml` in the current directory >
//! default. clap already folds the environment into the flag values (each flag
//! names its variable), so here we only lay the file under them and fill in
//! defaults. Unknown keys in the file are errors: a typo must not be ignored.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::cli::{DbContainerArgs, GlobalArgs, SeedArgs};
use crate::error::UsageError;
use crate::seed::export::ExportFormat;
use crate::target::TargetSpec;

/// The file ward reads from the current directory, if present.
pub const FILE_NAME: &str = "ward.toml";

/// Seconds Docker waits for Postgres to shut down cleanly before it kills
/// it, when neither a flag, `WARD_STOP_TIMEOUT` nor `ward.toml` says.
pub const DEFAULT_STOP_TIMEOUT: u32 = 120;

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
            let first = e.message().lines().next().unwrap_or("invalid TOML").to_string();
            let at = e
                .span()
                .map(|span| format!(" at line {}", error_line(text, span, &first)))
                .unwrap_or_default();
            UsageError(format!(
                "{}{at} is malformed: {first} — fix or remove the file (see README \"Configuration\")",
                path.display()
            ))
            .into()
        })
    }
}

/// The line a TOML error is about. A key of a flattened table (the target
/// keys of `[snapshot]` / `[backup]`) is reported by toml with the span of
/// the whole table, so when the message names a key that the span holds, the
/// key's own line is the one to show. (A wrong value type in such a table
/// names the value, not the key, and keeps the table's line.)
fn error_line(text: &str, span: std::ops::Range<usize>, message: &str) -> usize {
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    let named = message.split('`').nth(1).filter(|name| !name.is_empty());
    // toml's span may be the table's header only: look through the table,
    // up to the next header.
    let table = text.get(span.start..).unwrap_or_default();
    let first_line = table.find('\n').map_or(table.len(), |end| end + 1);
    let table_end = table[first_line..]
        .match_indices('\n')
        .find(|(at, _)| table[first_line + at + 1..].trim_start().starts_with('['))
        .map_or(table.len(), |(at, _)| first_line + at + 1);
    let inside = &table[..table_end];
    let key_offset = named.and_then(|name| {
        let mut offset = 0;
        inside.split_inclusive('\n').find_map(|line| {
            let here = offset;
            offset += line.len();
            let rest = line.trim_start().strip_prefix(name)?;
            rest.trim_start().starts_with('=').then_some(here)
        })
    });
    line_of(span.start + key_offset.unwrap_or(0))
}

/// Where the rows go, and the resolved seed settings.
#[derive(Debug, Clone)]
pub struct SeedConfig {
    pub patients: u64,
    pub seed: u64,
    pub jobs: usize,
    pub schema: String,
    pub truncate: bool,
    pub append: bool,
    pub export: Option<(PathBuf, ExportFormat)>,
    pub spec: Option<PathBuf>,
}

/// Everything a command needs to know, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Option<String>,
    pub json: bool,
    pub quiet: bool,
    pub file: std::sync::Arc<FileConfig>,
}

impl Config {
    pub fn resolve(global: &GlobalArgs, file: FileConfig) -> Self {
        Config {
            database_url: global
                .database_url
                .clone()
                .or_else(|| file.database_url.clone()),
            json: global.json,
            quiet: global.quiet,
            file: std::sync::Arc::new(file),
        }
    }

    /// The database URL, or an error that says how to give one.
    pub fn require_database_url(&self) -> Result<&str> {
        self.database_url.as_deref().ok_or_else(|| {
            UsageError(
                "no database configured — pass --database-url URL, set DATABASE_URL, or add \
                 database_url to ward.toml (or try `ward demo`, which needs none)"
                    .into(),
            )
            .into()
        })
    }

    pub fn seed(&self, args: &SeedArgs, default_seed: u64) -> SeedConfig {
        let f = &self.file.seed;
        SeedConfig {
            patients: args.patients.or(f.patients).unwrap_or(1000),
            seed: args.seed.or(f.seed).unwrap_or(default_seed),
            jobs: args.jobs.or(f.jobs).unwrap_or_else(default_jobs).max(1),
            schema: args
                .schema
                .clone()
                .or_else(|| f.schema.clone())
                .unwrap_or_else(|| "public".into()),
            truncate: args.truncate,
            append: args.append,
            // A spec in ward.toml applies unless the command line asks for the built-in model.
            spec: args.spec.clone().or_else(|| {
                (args.patients.is_none()
                    && args.export.is_none()
                    && args.schema.is_none()
                    && !args.append)
                    .then(|| f.spec.clone())
                    .flatten()
            }),
            export: args.export.clone().map(|dir| {
                let format = args.format.or(f.format).unwrap_or(ExportFormat::Csv);
                (dir, format)
            }),
        }
    }
}

impl Config {
    /// The target of a `ward snapshot` verb: the flags over `[snapshot]`.
    pub fn snapshot_target(&self, flags: &TargetSpec) -> TargetSpec {
        flags_over_file(flags, &self.file.snapshot.target)
    }

    /// The target of `ward backup`: the flags over `[backup]` over `[snapshot]`.
    pub fn backup_target(&self, flags: &TargetSpec) -> TargetSpec {
        let over_backup = flags_over_file(flags, &self.file.backup.target);
        flags_over_file(&over_backup, &self.file.snapshot.target)
    }

    /// The container `ward seed` and `ward check` connect to when no
    /// database URL is given: `--container` / `--compose-service` over
    /// `[snapshot]`.
    pub fn db_container_target(&self, flags: &DbContainerArgs) -> TargetSpec {
        let flags = TargetSpec {
            container: flags.container.clone(),
            compose_service: flags.compose_service.clone(),
            compose_project: flags.compose_project.clone(),
            ..TargetSpec::default()
        };
        self.snapshot_target(&flags)
    }

    /// `ward snapshot`'s stop timeout: the flag (or `WARD_STOP_TIMEOUT`),
    /// else `[snapshot] stop_timeout`, else [`DEFAULT_STOP_TIMEOUT`].
    pub fn snapshot_stop_timeout(&self, flag: Option<u32>) -> u32 {
        flag.or(self.file.snapshot.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT)
    }

    /// `ward backup`'s stop timeout: the flag, else `[backup]`, else
    /// `[snapshot]`, else [`DEFAULT_STOP_TIMEOUT`].
    pub fn backup_stop_timeout(&self, flag: Option<u32>) -> u32 {
        flag.or(self.file.backup.stop_timeout)
            .or(self.file.snapshot.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT)
    }
}

/// `flags` laid over `file`: a flag that names a target replaces the file's
/// whole target (a `--volume` must not inherit the file's `container`); the
/// compose project, and with a flag target its image, fill in from the file.
fn flags_over_file(flags: &TargetSpec, file: &TargetSpec) -> TargetSpec {
    let compose_project = flags
        .compose_project
        .clone()
        .or_else(|| file.compose_project.clone());
    if flags.names_target() {
        TargetSpec {
            compose_project,
            image: flags.image.clone().or_else(|| file.image.clone()),
            ..flags.clone()
        }
    } else {
        TargetSpec {
            compose_project,
            ..file.clone()
        }
    }
}

/// One generator thread per core.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_sit_under_flags() {
        let file = FileConfig::parse(
            "database_url = \"postgres://file\"\n[seed]\npatients = 5\nseed = 9\n",
            Path::new("ward.toml"),
        )
        .unwrap();
        let global = GlobalArgs {
            database_url: Some("postgres://flag".into()),
            ..Default::default()
        };
        let cfg = Config::resolve(&global, file);
        assert_eq!(cfg.database_url.as_deref(), Some("postgres://flag"));
        let args = SeedArgs {
            patients: Some(7),
            ..Default::default()
        };
        let seed = cfg.seed(&args, 1);
        assert_eq!(seed.patients, 7);
        assert_eq!(seed.seed, 9);
    }

    #[test]
    fn defaults_apply_when_nothing_is_given() {
        let cfg = Config::resolve(&GlobalArgs::default(), FileConfig::default());
        let seed = cfg.seed(&SeedArgs::default(), 42);
        assert_eq!(
            (seed.patients, seed.seed, seed.schema.as_str()),
            (1000, 42, "public")
        );
        assert!(cfg.database_url.is_none());
    }

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
    fn a_flag_target_replaces_the_file_target() {
        let file = TargetSpec {
            container: Some("db".into()),
            ..Default::default()
        };
        let flags = TargetSpec {
            volume: Some("v".into()),
            image: Some("postgres:15".into()),
            ..Default::default()
        };
        let merged = flags_over_file(&flags, &file);
        assert_eq!(merged.container, None);
        assert_eq!(merged.volume.as_deref(), Some("v"));
        let merged = flags_over_file(&TargetSpec::default(), &file);
        assert_eq!(merged.container.as_deref(), Some("db"));
    }

    #[test]
    fn the_file_fills_in_project_and_image_under_a_flag_target() {
        let file = TargetSpec {
            container: Some("db".into()),
            compose_project: Some("shop".into()),
            image: Some("postgres:15".into()),
            ..Default::default()
        };
        let flags = TargetSpec {
            volume: Some("v".into()),
            ..Default::default()
        };
        let merged = flags_over_file(&flags, &file);
        assert_eq!(merged.container, None);
        assert_eq!(merged.compose_project.as_deref(), Some("shop"));
        assert_eq!(merged.image.as_deref(), Some("postgres:15"));
        let flags = TargetSpec {
            compose_project: Some("other".into()),
            image: Some("postgres:18".into()),
            ..flags
        };
        let merged = flags_over_file(&flags, &file);
        assert_eq!(merged.compose_project.as_deref(), Some("other"));
        assert_eq!(merged.image.as_deref(), Some("postgres:18"));
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
    fn backup_falls_back_to_the_snapshot_section() {
        let file = FileConfig::parse(
            "[snapshot]\ncontainer = \"pg\"\nstop_timeout = 30\n\
             [backup]\ncompose_project = \"shop\"\n",
            Path::new("ward.toml"),
        )
        .unwrap();
        let cfg = Config::resolve(&GlobalArgs::default(), file);
        let target = cfg.backup_target(&TargetSpec::default());
        assert_eq!(target.container.as_deref(), Some("pg"));
        assert_eq!(target.compose_project.as_deref(), Some("shop"));
        assert_eq!(cfg.backup_stop_timeout(None), 30);
        assert_eq!(cfg.backup_stop_timeout(Some(5)), 5);
        let flags = DbContainerArgs {
            compose_service: Some("db".into()),
            ..Default::default()
        };
        let seed_target = cfg.db_container_target(&flags);
        assert_eq!(seed_target.container, None);
        assert_eq!(seed_target.compose_service.as_deref(), Some("db"));
        let nothing = Config::resolve(&GlobalArgs::default(), FileConfig::default());
        assert_eq!(nothing.snapshot_stop_timeout(None), DEFAULT_STOP_TIMEOUT);
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
}
