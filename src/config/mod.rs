//! `ward.toml` + environment + flags → one resolved configuration.
//!
//! Precedence is flag > environment > `ward.toml` in the current directory >
//! default. clap already folds the environment into the flag values (each flag
//! names its variable), so here we only lay the file under them and fill in
//! defaults. Unknown keys in the file are errors: a typo must not be ignored.
//!
//! `file.rs` reads `ward.toml` (its sections; `file_errors.rs` the errors
//! that name the line and the key); this file merges it under the flags.

mod file;
mod file_errors;

pub(crate) use file::{FileBackup, FileConfig, FileStore};

use std::path::PathBuf;

use crate::cli::{DbContainerArgs, GlobalArgs, SeedArgs};
use crate::seed::export::ExportFormat;
use crate::target::TargetSpec;

/// The file ward reads from the current directory, if present.
pub(crate) const FILE_NAME: &str = "ward.toml";

/// Seconds Docker waits for Postgres to shut down cleanly before it kills
/// it, when neither a flag, `WARD_STOP_TIMEOUT` nor `ward.toml` says.
pub(crate) const DEFAULT_STOP_TIMEOUT: u32 = 120;

/// Where the rows go, and the resolved seed settings.
#[derive(Debug, Clone)]
pub(crate) struct SeedConfig {
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
pub(crate) struct Config {
    pub database_url: Option<String>,
    pub json: bool,
    pub quiet: bool,
    pub file: std::sync::Arc<FileConfig>,
}

impl Config {
    pub(crate) fn resolve(global: &GlobalArgs, file: FileConfig) -> Self {
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

    pub(crate) fn seed(&self, args: &SeedArgs, default_seed: u64) -> SeedConfig {
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
    pub(crate) fn snapshot_target(&self, flags: &TargetSpec) -> TargetSpec {
        flags_over_file(flags, &self.file.snapshot.target)
    }

    /// The target of `ward backup`: the flags over `[backup]` over `[snapshot]`.
    pub(crate) fn backup_target(&self, flags: &TargetSpec) -> TargetSpec {
        let over_backup = flags_over_file(flags, &self.file.backup.target);
        flags_over_file(&over_backup, &self.file.snapshot.target)
    }

    /// The container `ward seed` and `ward check` connect to when no
    /// database URL is given: `--container` / `--compose-service` over
    /// `[snapshot]`.
    pub(crate) fn db_container_target(&self, flags: &DbContainerArgs) -> TargetSpec {
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
    pub(crate) fn snapshot_stop_timeout(&self, flag: Option<u32>) -> u32 {
        flag.or(self.file.snapshot.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT)
    }

    /// `ward backup`'s stop timeout: the flag, else `[backup]`, else
    /// `[snapshot]`, else [`DEFAULT_STOP_TIMEOUT`].
    pub(crate) fn backup_stop_timeout(&self, flag: Option<u32>) -> u32 {
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
pub(crate) fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

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
}
