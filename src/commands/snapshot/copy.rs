//! `ward snapshot copy`: a snapshot from one store to another, checked on
//! arrival.

use anyhow::Result;

use super::{store, store_at};
use crate::cli::SnapshotCopyArgs;
use crate::config::Config;
use crate::error::Exit;
use crate::snapshot;
use crate::{error, output};

/// Copies a snapshot between stores (checked on arrival).
pub(super) async fn copy(cfg: &Config, args: &SnapshotCopyArgs) -> Result<Exit> {
    // Flags only: WARD_AGE_RECIPIENTS exported for the creates of a backup
    // host must not stop its copies.
    if !args.store.recipients.is_empty() {
        return error::usage(
            "copy keeps an archive as it is stored (encrypted to its own recipients, or not at \
             all) and takes no --encrypt-to / --recipients-file — \
             to encrypt for other keys, restore and take a new snapshot",
        );
    }
    let from = match &args.from {
        Some(dir) => store_at(cfg, &args.store, dir)?,
        None => store(cfg, &args.store)?,
    };
    let to = store_at(cfg, &args.store, &args.to)?;
    let name = args.name.clone();
    let quiet = cfg.quiet;
    let result = snapshot::shielded(move || async move {
        tokio::task::spawn_blocking(move || {
            snapshot::copy::copy(&from, &to, &name, &output::Bar::bytes(quiet))
        })
        .await?
    })
    .await;
    match result {
        Ok(copied) => {
            output::snapshot_copied(&copied, cfg.json);
            Ok(Exit::Ok)
        }
        Err(e) if e.downcast_ref::<snapshot::Damaged>().is_some() => {
            output::error(&e);
            Ok(Exit::Findings)
        }
        Err(e) => Err(e),
    }
}
