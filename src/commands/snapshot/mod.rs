//! `ward snapshot …`: resolve the store and the target, run the domain, hand
//! the result to `output`.
//!
//! This file holds what the verbs share (the store and its keys, a fast
//! snapshot's database URL, labels, the confirmation rule) and the dispatch;
//! each verb (or pair of verbs that do the same kind of work) has its file.

mod copy;
mod create;
mod delete;
mod restore;
mod verify;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use crate::cli::{SnapshotArgs, SnapshotCommand, StoreArgs};
use crate::config::Config;
use crate::error::Exit;
use crate::snapshot::{self, store::Store, template};
use crate::target::{self, TargetSpec};
use crate::{error, output};

/// The default store, relative to the current directory.
pub(crate) const DEFAULT_STORE: &str = ".ward/snapshots";

pub(crate) fn store(cfg: &Config, args: &StoreArgs) -> Result<Store> {
    let dir = args
        .store
        .clone()
        .or_else(|| cfg.file.snapshot.store.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE));
    store_at(cfg, args, &dir)
}

/// The store at `dir` with its keys: recipients (flags, else ward.toml) to
/// encrypt new archives to, the identity (flag/env, else ward.toml) that
/// opens encrypted ones, and whether the store requires encryption.
pub(crate) fn store_at(cfg: &Config, args: &StoreArgs, dir: &std::path::Path) -> Result<Store> {
    let file = &cfg.file.store;
    let (recipients, files) = file.recipients(
        &args.recipients.encrypt_to,
        &args.recipients.recipients_files,
    );
    let keys = snapshot::crypt::Keys::new(
        &recipients,
        &files,
        args.identity.clone().or_else(|| file.identity.clone()),
        file.require_encryption,
    )?;
    Ok(Store::open(dir)?.with_keys(keys))
}

/// Where a fast snapshot's database is: --database-url, else the container
/// of the target (or the one the snapshot was taken from), through its
/// published port. Returns the URL and the container's name.
pub(crate) async fn fast_url(
    cfg: &Config,
    target: Option<&TargetSpec>,
    from: Option<&str>,
    what: &str,
) -> Result<(String, Option<String>)> {
    if let Some(url) = &cfg.database_url {
        return Ok((url.clone(), None));
    }
    let container = if let Some(name) = from {
        let docker = crate::docker::connect().await?;
        crate::docker::inspect_container(&docker, name).await?
    } else if let Some(t) = target {
        match target::resolve(&cfg.snapshot_target(t), &std::env::current_dir()?).await {
            Ok(target::Target::Volume(v)) => v.container.clone(),
            _ => None,
        }
    } else {
        None
    };
    match container {
        Some(c) => Ok((template::container_url(&c)?, Some(c.name))),
        None => Ok((template::require_url(None, what)?, None)),
    }
}

/// `--label KEY=VALUE` flags as a map.
fn labels(raw: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for label in raw {
        match label.split_once('=') {
            Some((key, value)) if !key.is_empty() => {
                out.insert(key.to_string(), value.to_string());
            }
            _ => {
                return error::usage(format!(
                    "--label {label:?} is not KEY=VALUE — e.g. --label ticket=OPS-12"
                ));
            }
        }
    }
    Ok(out)
}

pub(crate) async fn run(cfg: &Config, args: &SnapshotArgs) -> Result<Exit> {
    match &args.command {
        SnapshotCommand::Create(args) if args.fast => create::create_fast(cfg, args).await,
        SnapshotCommand::Create(args) => create::create(cfg, args).await,
        SnapshotCommand::List(args) => {
            output::snapshot_list(&store(cfg, args)?.list()?, cfg.json);
            Ok(Exit::Ok)
        }
        SnapshotCommand::Show(args) => {
            output::snapshot_show(&store(cfg, &args.store)?.load(&args.name)?, cfg.json);
            Ok(Exit::Ok)
        }
        SnapshotCommand::Delete(args) => delete::delete(cfg, args).await,
        SnapshotCommand::Verify(args) => verify::verify(cfg, args).await,
        SnapshotCommand::Restore(args) if args.previous => {
            restore::restore_previous(cfg, args).await
        }
        SnapshotCommand::Restore(args) => restore::restore(cfg, args).await,
        SnapshotCommand::Recover(args) => {
            let spec = cfg.snapshot_target(&args.target);
            let target = target::resolve(&spec, &std::env::current_dir()?).await?;
            let done =
                snapshot::shielded(move || async move { snapshot::recover(&target).await }).await?;
            let done = done
                .as_deref()
                .map(|note| note.strip_prefix("note: ").unwrap_or(note));
            output::snapshot_recovered(done, cfg.json);
            Ok(Exit::Ok)
        }
        SnapshotCommand::Prune(args) => delete::prune(cfg, args).await,
        SnapshotCommand::Copy(args) => copy::copy(cfg, args).await,
    }
}

/// Restores replace data: without `--yes` there must be a terminal to ask on.
fn require_confirmation_channel(yes: bool) -> Result<()> {
    if !yes && !output::can_prompt() {
        return error::usage(
            "restore replaces data and needs confirmation, but there is no terminal to ask on — \
             pass --yes to confirm",
        );
    }
    Ok(())
}
