//! The swap itself, from a finished staging to the new data running: stop
//! the container, move the previous contents aside, move the staged ones in
//! (see [`super::swap`]), start it and prove it runs the snapshot's cluster
//! — or swap the previous contents back. Restores, `restore --previous` and
//! heal (finishing a killed ward's swap) all run this one sequence.

use std::time::Instant;

use anyhow::Result;

use super::container::{prove_identity, settle, wait_ready};
use super::journal::{JournalFile, RestartGuard};
use super::swap::{ForeignData, Swap};
use crate::docker::{self, Docker};
use crate::snapshot::fault;
use crate::snapshot::manifest::Manifest;

/// The container whose volume is swapped, and how ward found it.
pub(super) struct Live {
    pub container: Option<String>,
    pub user: String,
    pub was_running: bool,
    pub stop_timeout: u32,
    /// `--keep-previous`: recorded in the volume as the swap commits.
    pub keep_previous: bool,
}

/// What the swap did.
pub(super) struct Swapped {
    pub running: bool,
    pub sanity: Option<String>,
    pub swap_seconds: f64,
    pub start_seconds: f64,
    pub downtime_seconds: f64,
}

/// From a finished staging to the new data running: stop, swap out, swap
/// in, start, prove identity (with the manifest, when there is one); any
/// failure swaps the previous data back and restarts. Resumable: each step
/// skips what its marker says is done (the next ward after a kill runs this
/// again). Leaves the container running if it was, stopped if not.
pub(super) async fn complete(
    sw: &Swap<'_>,
    live: &Live,
    m: Option<&Manifest>,
    journal: &mut JournalFile,
) -> Result<Swapped> {
    let d = sw.d;
    // Downtime starts when the stop is asked for (the settle before it
    // waits on a server that still serves).
    let stop_at = std::cell::Cell::new(Instant::now());
    let mut guard = live
        .container
        .as_ref()
        .map(|c| RestartGuard::new(c, live.was_running));
    // Once the previous data starts moving, the container may only start on
    // a volume that is wholly old or wholly new.
    let swap_begun = std::cell::Cell::new(false);
    let result: Result<(Option<String>, f64, f64)> = async {
        if let Some(c) = &live.container {
            // "stopping" until the engine says it stopped: a stop ward
            // asked for goes on in the engine after a kill.
            journal.set("stopping")?;
            fault("restore:before-stop")?;
            if docker::is_running(d, c).await? {
                settle(d, c, &live.user).await;
            }
            stop_at.set(Instant::now());
            docker::stop_container(d, c, live.stop_timeout).await?;
            journal.set("stopped")?;
        }
        fault("restore:after-stop")?;
        let swap_at = Instant::now();
        swap_begun.set(true);
        sw.swap_out().await?;
        journal.set("swapped-out")?;
        fault("restore:after-swap-out")?;
        sw.swap_in().await?;
        journal.set("swapped-in")?;
        let swap_seconds = swap_at.elapsed().as_secs_f64();
        let start_at = Instant::now();
        let Some(c) = &live.container else {
            return Ok((None, swap_seconds, 0.0));
        };
        // "starting" before the engine is asked: once asked, the new data
        // may run and take writes, even if ward dies before it hears back,
        // so heal must never roll back from here.
        journal.set("starting")?;
        docker::start_container(d, c).await?;
        fault("restore:after-start-request")?;
        journal.set("started")?;
        fault("restore:after-start")?;
        let answered = wait_ready(d, c, &live.user).await?;
        let sanity = match m {
            Some(m) => prove_identity(d, c, &live.user, m, &answered).await?,
            None => format!("{answered} (no snapshot manifest to prove its identity against)"),
        };
        Ok((Some(sanity), swap_seconds, start_at.elapsed().as_secs_f64()))
    }
    .await;
    match result {
        Ok((sanity, swap_seconds, start_seconds)) => {
            let downtime_seconds = stop_at.get().elapsed().as_secs_f64();
            // From here on the new data stays, whatever happens next: it may
            // already have taken writes.
            sw.commit(live.keep_previous).await?;
            journal.set("done")?;
            // Postgres just answered the identity check: no second wait.
            let answered = sanity.is_some();
            let running = leave_as_found(d, live, guard, answered).await?;
            Ok(Swapped {
                running,
                sanity,
                swap_seconds,
                start_seconds,
                downtime_seconds,
            })
        }
        Err(e) => {
            let cancelled = crate::error::cancelled();
            crate::error::uncancel();
            tracing::info!("restore failed ({e:#}); swapping the previous data back");
            if e.downcast_ref::<ForeignData>().is_some() {
                // Neither wholly old nor wholly new, and not ward's to move.
                if let Some(g) = guard.take() {
                    g.disarm();
                }
                if let Some(c) = &live.container {
                    let _ = docker::stop_container(d, c, 120).await;
                }
                return Err(e);
            }
            let back = async {
                if let Some(c) = &live.container {
                    docker::stop_container(d, c, 120).await?;
                }
                fault("restore:swap-back")?;
                sw.swap_back().await
            }
            .await;
            let back = match back {
                // Wholly old again.
                Ok(()) => {
                    async {
                        journal.set("rolled-back")?;
                        leave_as_found(d, live, guard.take(), false).await
                    }
                    .await
                }
                Err(e2) => {
                    if swap_begun.get() {
                        // Perhaps half-swapped: starting Postgres on it could
                        // initdb or corrupt it. Stays stopped; the journal
                        // stays for the next ward.
                        if let Some(g) = guard.take() {
                            g.disarm();
                        }
                    }
                    Err(e2)
                }
            };
            match back {
                Ok(_) if cancelled => Err(crate::error::Interrupted.into()),
                Ok(_) => Err(e.context("restore failed; the previous data is back in place")),
                Err(e2) => Err(e.context(format!(
                    "restore failed AND swapping the previous data back failed ({e2:#}) — the \
                     journal is kept: the next ward run on this target (or `ward snapshot \
                     recover`) finishes putting it back"
                ))),
            }
        }
    }
}

/// Leaves the container as it was found: running if it was (waiting until
/// ready, unless Postgres in it has `answered` since it was started),
/// stopped if it was stopped.
async fn leave_as_found(
    d: &Docker,
    live: &Live,
    guard: Option<RestartGuard>,
    answered: bool,
) -> Result<bool> {
    let Some(c) = &live.container else {
        return Ok(false);
    };
    if let Some(g) = guard {
        g.disarm();
    }
    if live.was_running {
        if answered {
            return Ok(true);
        }
        if !docker::is_running(d, c).await? {
            docker::start_container(d, c).await?;
        }
        wait_ready(d, c, &live.user).await?;
        Ok(true)
    } else {
        docker::stop_container(d, c, 120).await?;
        Ok(false)
    }
}
