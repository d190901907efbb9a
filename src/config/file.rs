//! `ward.toml`: its sections, and reading it with errors on one line that
//! name the line (and, in the target tables, the key) to fix.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use super::FILE_NAME;
use super::file_errors::explain;
use crate::error::UsageError;
use crate::seed::export::ExportFormat;
use crate::target::TargetSpec;

/// The contents of `ward.toml`. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
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
pub(crate) struct FileBackup {
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
pub(crate) struct FileStore {
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

impl FileStore {
    /// The recipients (and recipient files) new archives are encrypted to,
    /// by one rule for every verb: the flags when any is given, else
    /// WARD_AGE_RECIPIENTS (comma-separated) when set, else ward.toml — the
    /// environment over the file, so that a timer whose unit exports the
    /// recipients never writes in the clear; sources are never mixed.
    pub(crate) fn recipients(
        &self,
        flags: &[String],
        flag_files: &[PathBuf],
    ) -> (Vec<String>, Vec<PathBuf>) {
        let env = std::env::var("WARD_AGE_RECIPIENTS").ok();
        self.recipients_from(flags, flag_files, env.as_deref())
    }

    fn recipients_from(
        &self,
        flags: &[String],
        flag_files: &[PathBuf],
        env: Option<&str>,
    ) -> (Vec<String>, Vec<PathBuf>) {
        if !flags.is_empty() || !flag_files.is_empty() {
            return (flags.to_vec(), flag_files.to_vec());
        }
        let from_env: Vec<String> = env
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        if !from_env.is_empty() {
            return (from_env, Vec::new());
        }
        (
            self.encrypt_to.clone(),
            self.recipients_file.iter().cloned().collect(),
        )
    }
}

#[cfg(test)]
mod recipient_tests {
    use super::*;

    fn file() -> FileStore {
        FileStore {
            encrypt_to: vec!["age1file".into()],
            recipients_file: Some(PathBuf::from("file.txt")),
            ..FileStore::default()
        }
    }

    #[test]
    fn recipients_come_from_flags_over_the_environment_over_ward_toml_never_mixed() {
        let flag_file = [PathBuf::from("flag.txt")];
        // A recipients file flag alone still wins over the environment.
        assert_eq!(
            file().recipients_from(&[], &flag_file, Some("age1env")),
            (vec![], flag_file.to_vec())
        );
        assert_eq!(
            file().recipients_from(&["age1flag".into()], &[], Some("age1env")),
            (vec!["age1flag".to_string()], vec![])
        );
        assert_eq!(
            file().recipients_from(&[], &[], Some(" age1a, ,age1b ")),
            (vec!["age1a".to_string(), "age1b".to_string()], vec![])
        );
        for blank in [None, Some(""), Some(" , ")] {
            assert_eq!(
                file().recipients_from(&[], &[], blank),
                (
                    vec!["age1file".to_string()],
                    vec![PathBuf::from("file.txt")]
                )
            );
        }
    }
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
pub(crate) struct FileSnapshot {
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
pub(crate) struct FileSeed {
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
    pub(crate) fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        Self::parse(&text, &path)
    }

    pub(crate) fn parse(text: &str, path: &Path) -> Result<Self> {
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
