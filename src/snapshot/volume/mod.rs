//! Snapshots and restores of a Postgres data directory in a Docker volume,
//! through the engine's archive endpoints and helper containers of the
//! target's own image (reference/snapshots.md §6.3).
//!
//! - `create` takes cold snapshots (stop, prove a clean shutdown, stream
//!   the volume out) and online ones (`pg_basebackup` in the running container).
//! - `restore` stages the snapshot inside the volume while the container
//!   runs, then swaps old and new contents by renames (`swap`), and leaves
//!   the container as it was found.
//! - `journal` records each phase per target, durably; `heal` lets the next
//!   ward finish or undo what a killed one left; the guard restarts a
//!   stopped container on every path out.
//! - `container` runs psql and pg_isready and reads facts through
//!   `docker exec`, for [`super::throwaway`] too.

mod complete;
mod container;
mod create;
mod heal;
mod journal;
mod owner;
mod previous;
mod restore;
mod swap;
mod sweep;
mod upload;

use std::sync::Arc;

use anyhow::{Result, bail};

use super::manifest::Manifest;
use super::store::Store;
use crate::docker;
use crate::progress::Progress;

pub(super) use container::{image_facts, psql, wait_ready};
pub(crate) use create::create;
pub(crate) use heal::{heal, sweep_leftovers};
pub(crate) use journal::{Owner, journal_files, journal_volume, state_dir, write_durably};
pub(crate) use previous::restore_previous;
pub(crate) use restore::restore;
pub(super) use upload::{Upload, replace_contents, restore_paths};

/// Notes gathered by a command that then failed: the error is what the
/// command returns, so they go to the log (shown at the default level).
fn warn_dropped(notes: &[String]) {
    for note in notes {
        tracing::warn!("{note}");
    }
}

/// `verify --deep`: restore into a throwaway volume, start Postgres of the
/// snapshot's image on it, run `pg_amcheck` and a sanity query.
pub(crate) async fn deep_verify(
    store: &Store,
    m: &Manifest,
    progress: Arc<dyn Progress>,
) -> Result<String> {
    if m.source.image.is_none() || m.source.mount.is_none() || m.pgdata.is_none() {
        return crate::error::usage(
            "--deep works on snapshots of Docker volumes (it starts the snapshot's own image); \
             this one is of a native data directory",
        );
    }
    let d = docker::connect().await?;
    let server = super::throwaway::Throwaway::start(
        &d,
        store,
        m,
        super::throwaway::Reach::Internal,
        progress,
    )
    .await?;
    let result = async {
        let check = docker::exec(
            &d,
            server.container(),
            Some("postgres"),
            &[
                "pg_amcheck",
                "-U",
                &server.user,
                "--all",
                "--install-missing",
            ],
        )
        .await?;
        if !check.ok() {
            bail!(
                "pg_amcheck found problems: {}",
                format!("{}{}", check.stdout, check.stderr)
                    .lines()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" / ")
            );
        }
        Ok(format!(
            "Postgres started on a restored copy; pg_amcheck clean; {}",
            server.sanity
        ))
    }
    .await;
    server.remove().await?;
    result
}
