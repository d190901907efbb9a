//! `ward snapshot restore`: a volume or data-directory snapshot, a fast
//! snapshot's template, or `--previous`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use super::{fast_url, require_confirmation_channel, store};
use crate::cli::SnapshotRestoreArgs;
use crate::config::Config;
use crate::error::Exit;
use crate::progress::Progress;
use crate::snapshot::{self, RestoreOptions, template};
use crate::target;
use crate::{error, output};

/// `--previous`: the data a restore replaced (kept with `--keep-previous`).
pub(super) async fn restore_previous(cfg: &Config, args: &SnapshotRestoreArgs) -> Result<Exit> {
    let target = target::resolve(
        &cfg.snapshot_target(&args.target),
        &std::env::current_dir()?,
    )
    .await?;
    require_confirmation_channel(args.yes)?;
    let yes = args.yes;
    let confirm: snapshot::Confirm = Arc::new(move |q: &str| output::confirm(q, yes));
    let progress: Arc<dyn Progress> = Arc::new(output::Bar::bytes(cfg.quiet));
    let opts = RestoreOptions {
        safety: false,
        stop_timeout: cfg.snapshot_stop_timeout(args.stop_timeout),
    };
    let restored = snapshot::shielded(move || async move {
        snapshot::restore_previous(&target, &opts, confirm, progress).await
    })
    .await?;
    output::snapshot_restored(&restored, cfg.json);
    Ok(Exit::Ok)
}

/// The migrations directory a restore compares the snapshot's head with:
/// `--migrations`, else ward.toml's `[snapshot] migrations`, else the usual
/// places. A configured path that is not a directory is an error, not a
/// silent skip.
fn migrations_dir(
    cfg: &Config,
    args: &SnapshotRestoreArgs,
    cwd: &std::path::Path,
) -> Result<Option<PathBuf>> {
    if let Some(dir) = &args.migrations {
        return Ok(Some(dir.clone()));
    }
    if let Some(configured) = &cfg.file.snapshot.migrations {
        let dir = cwd.join(configured);
        if !dir.is_dir() {
            return error::usage(format!(
                "ward.toml's [snapshot] migrations = {:?} is not a directory ({}) — fix the \
                 path or remove the key",
                configured.display(),
                dir.display()
            ));
        }
        return Ok(Some(dir));
    }
    Ok(["migrations", "db/migrations"]
        .iter()
        .map(|d| cwd.join(d))
        .find(|d| d.is_dir()))
}

/// A stored snapshot back into its target (by default the one it was taken
/// from); a fast snapshot's template back into its database.
pub(super) async fn restore(cfg: &Config, args: &SnapshotRestoreArgs) -> Result<Exit> {
    let store = store(cfg, &args.store)?;
    let name = args.name.clone().unwrap_or_default();
    let manifest = store.load(&name)?;
    if let Some(facts) = &manifest.template {
        return restore_fast(cfg, args, &name, &manifest, facts).await;
    }
    let cwd = std::env::current_dir()?;
    let mut spec = cfg.snapshot_target(&args.target);
    if !spec.names_target() {
        // Default: back where it came from, if that still exists.
        if let Some(container) = &manifest.source.container {
            spec.container = Some(container.clone());
        } else if let Some(datadir) = &manifest.source.datadir {
            spec.datadir = Some(PathBuf::from(datadir));
        }
    }
    let target = target::resolve(&spec, &cwd).await?;
    if let Some(dir) = &migrations_dir(cfg, args, &cwd)? {
        for warning in snapshot::migration_warnings(&manifest, dir) {
            output::note(&warning);
        }
    }
    let keep_previous = args.keep_previous;
    let opts = RestoreOptions {
        safety: args.safety,
        stop_timeout: cfg.snapshot_stop_timeout(args.stop_timeout),
    };
    require_confirmation_channel(args.yes)?;
    let yes = args.yes;
    let confirm: snapshot::Confirm = Arc::new(move |q: &str| output::confirm(q, yes));
    let progress: Arc<dyn Progress> = Arc::new(output::Bar::bytes(cfg.quiet));
    let result = snapshot::shielded(move || async move {
        snapshot::restore_keeping(
            &store,
            &name,
            &target,
            &opts,
            keep_previous,
            confirm,
            progress,
        )
        .await
    })
    .await;
    match result {
        Ok(restored) => {
            output::snapshot_restored(&restored, cfg.json);
            Ok(Exit::Ok)
        }
        Err(e) if e.downcast_ref::<snapshot::Damaged>().is_some() => {
            output::error(&e);
            Ok(Exit::Findings)
        }
        Err(e) => Err(e),
    }
}

async fn restore_fast(
    cfg: &Config,
    args: &SnapshotRestoreArgs,
    name: &str,
    manifest: &snapshot::manifest::Manifest,
    facts: &template::TemplateFacts,
) -> Result<Exit> {
    let (url, _) = fast_url(cfg, None, manifest.source.container.as_deref(), "restoring").await?;
    template::ensure_ours(&url, name, facts).await?;
    require_confirmation_channel(args.yes)?;
    let question = format!(
        "Replace database {} with snapshot {name:?}?",
        facts.source_database
    );
    if !output::confirm(&question, args.yes)? {
        return error::usage("restore cancelled: nothing was changed");
    }
    let restored = template::restore(&url, facts, args.force).await?;
    output::fast_snapshot_restored(name, &restored, cfg.json);
    Ok(Exit::Ok)
}
