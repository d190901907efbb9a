//! Deleting snapshots: `prune` by a retention policy (decided, approved and
//! deleted under one store lock), and the look-up before `delete NAME`,
//! which must work on damaged and incomplete snapshots too.

use anyhow::Result;
use chrono::Utc;

use super::Damaged;
use super::manifest::Manifest;
use super::retention;
use super::store::{self, Listed, Store};

/// Whether [`prune`] deletes or only decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pruning {
    DryRun,
    Delete,
}

/// Decides what `policy` keeps and, unless a dry run, asks `approve` (with
/// the number to delete) and deletes the rest — all under one store lock, so
/// what is deleted is exactly what was decided and approved. `drop_copy`
/// runs first for each deleted snapshot (a fast snapshot's in-cluster copy).
/// Unreadable manifests and incomplete archives are never pruned (`delete
/// NAME` removes them).
pub(crate) async fn prune(
    store: &Store,
    policy: retention::Policy,
    plan: Pruning,
    approve: impl FnOnce(usize) -> Result<bool>,
    mut drop_copy: impl AsyncFnMut(&Manifest) -> Result<()>,
) -> Result<Vec<retention::Decision>> {
    let _lock = store.lock()?;
    let listed: Vec<Manifest> = store
        .list()?
        .into_iter()
        .filter_map(|l| match l {
            Listed::Ok(m) => Some(*m),
            Listed::Unreadable { .. } | Listed::Incomplete { .. } => None,
        })
        .collect();
    let ages: Vec<(String, chrono::DateTime<Utc>)> = listed
        .iter()
        .map(|m| (m.name.clone(), m.created_at))
        .collect();
    let decisions = retention::select(&ages, policy);
    let doomed: Vec<&Manifest> = decisions
        .iter()
        .filter(|d| !d.keep)
        .filter_map(|d| listed.iter().find(|m| m.name == d.name))
        .collect();
    if plan == Pruning::DryRun || doomed.is_empty() {
        return Ok(decisions);
    }
    if !approve(doomed.len())? {
        return crate::error::usage("prune cancelled: nothing was deleted");
    }
    for m in doomed {
        drop_copy(m).await?;
        store.delete(&m.name)?;
    }
    Ok(decisions)
}

/// What `delete NAME` found under the name.
#[derive(Debug)]
pub(crate) enum ForDeletion {
    /// A whole snapshot, its manifest trusted.
    Whole(Box<Manifest>),
    /// A damaged manifest, and why: the snapshot's own files are removed by
    /// name without trusting anything inside them.
    Damaged(String),
    /// An archive without a manifest (a create interrupted between its two
    /// renames): only the archive, by name.
    Incomplete,
}

/// Looks up a snapshot about to be deleted.
pub(crate) fn for_deletion(store: &Store, name: &str) -> Result<ForDeletion> {
    store::check_name(name)?;
    if store.incomplete(name)? {
        return Ok(ForDeletion::Incomplete);
    }
    match store.load(name) {
        Ok(m) => Ok(ForDeletion::Whole(Box::new(m))),
        Err(e) => match e.downcast::<Damaged>() {
            Ok(damage) => Ok(ForDeletion::Damaged(damage.0)),
            Err(other) => Err(other),
        },
    }
}
