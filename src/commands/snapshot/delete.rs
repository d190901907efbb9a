//! `ward snapshot delete` and `prune`: the two verbs that remove snapshots
//! from a store (and fast snapshots' in-cluster copies with them).

use anyhow::Result;

use super::{fast_url, store};
use crate::cli::{SnapshotDeleteArgs, SnapshotPruneArgs};
use crate::config::Config;
use crate::error::Exit;
use crate::snapshot::{self, ForDeletion, retention, template};
use crate::{error, output};

/// Deletes a snapshot; one whose manifest is damaged (unreadable, or bound
/// to another name) is deleted by its name alone — its two files in the
/// store — and nothing the manifest says is followed; so is an archive whose
/// manifest was never written.
pub(super) async fn delete(cfg: &Config, args: &SnapshotDeleteArgs) -> Result<Exit> {
    let store = store(cfg, &args.store)?;
    let found = snapshot::for_deletion(&store, &args.name)?;
    let question = match &found {
        ForDeletion::Whole(_) => format!("Delete snapshot {:?}?", args.name),
        ForDeletion::Damaged(why) => format!(
            "Snapshot {:?} is damaged ({why}). Delete its files from {}?",
            args.name,
            store.location()
        ),
        ForDeletion::Incomplete => format!(
            "Snapshot {:?} is incomplete (its archive has no manifest: a create was \
             interrupted). Delete the archive from {}?",
            args.name,
            store.location()
        ),
    };
    if !output::confirm(&question, args.yes)? {
        return error::usage("delete cancelled: nothing was changed");
    }
    let _lock = store.lock()?;
    match &found {
        ForDeletion::Whole(manifest) => {
            if let Some(facts) = &manifest.template {
                let (url, _) =
                    fast_url(cfg, None, manifest.source.container.as_deref(), "deleting").await?;
                template::delete(&url, &args.name, facts).await?;
            }
        }
        // Asked before the lock was held: a create that was still running
        // may have placed the manifest since, and a whole snapshot is not
        // deleted on an answer about an incomplete one.
        ForDeletion::Incomplete if !store.incomplete(&args.name)? => {
            return error::usage(format!(
                "snapshot {:?} was completed by a running create meanwhile — nothing was deleted; \
                 run the delete again to delete it",
                args.name
            ));
        }
        ForDeletion::Incomplete => {}
        ForDeletion::Damaged(_) => output::note(
            "a damaged manifest is not trusted: if it was a --fast snapshot, its in-cluster \
             copy (a database named ward_snap_…) is left for you to drop",
        ),
    }
    store.delete(&args.name)?;
    output::snapshot_deleted(&args.name, cfg.json);
    Ok(Exit::Ok)
}

/// Prune: the domain decides, asks through `approve` and deletes, all under
/// one store lock; fast snapshots' in-cluster copies go with their manifests.
pub(super) async fn prune(cfg: &Config, args: &SnapshotPruneArgs) -> Result<Exit> {
    let store = store(cfg, &args.store)?;
    let policy = retention::Policy {
        keep_last: args.keep_last,
        keep_daily: args.keep_daily,
        keep_weekly: args.keep_weekly,
        keep_monthly: args.keep_monthly,
    };
    if policy == retention::Policy::default() {
        // With no policy, "keep only the newest" would delete almost
        // everything: a typo must not do that.
        return error::usage(
            "prune needs a retention policy and none was given, so nothing was deleted — \
             pass --keep-last N, --keep-daily N, --keep-weekly N and/or --keep-monthly N \
             (add --dry-run to see the effect first)",
        );
    }
    let yes = args.yes;
    let dir = store.location().to_string();
    let approve = |doomed: usize| -> Result<bool> {
        if !yes && !output::can_prompt() {
            return error::usage(format!(
                "prune would delete {doomed} snapshot(s) and needs confirmation, but there \
                 is no terminal to ask on — pass --yes to confirm (or --dry-run to see which)"
            ));
        }
        output::confirm(&format!("Delete {doomed} snapshot(s) from {dir}?"), yes)
    };
    let drop_copy = async |manifest: &snapshot::manifest::Manifest| -> Result<()> {
        if let Some(facts) = &manifest.template {
            let source = manifest.source.container.as_deref();
            let (url, _) = fast_url(cfg, None, source, "pruning").await?;
            template::delete(&url, &manifest.name, facts).await?;
        }
        Ok(())
    };
    let plan = if args.dry_run {
        snapshot::Pruning::DryRun
    } else {
        snapshot::Pruning::Delete
    };
    let decisions = snapshot::prune(&store, policy, plan, approve, drop_copy).await?;
    output::snapshot_pruned(&decisions, args.dry_run, cfg.json);
    Ok(Exit::Ok)
}
