//! Surviving a ward that dies half-way. Every operation that stops a
//! container writes a journal entry first; the next ward reads the entries
//! of dead processes and restarts what they stopped, or refuses to snapshot a
//! volume a dead restore left half-replaced. While ward lives, [`RestartGuard`]
//! restarts the container on every path out.

use anyhow::Result;
use chrono::Utc;

use super::container::{container_user, settle};
use crate::docker::{self, Docker};
use crate::snapshot::store::{Journal, JournalEntry, Store};

/// Restarts a container that ward stopped — on every path: explicitly on
/// success, and from `Drop` on errors, panics and Ctrl-C.
#[derive(Debug)]
pub struct RestartGuard {
    name: String,
    armed: bool,
}

impl RestartGuard {
    pub(super) fn new(name: &str, was_running: bool) -> Self {
        RestartGuard {
            name: name.to_string(),
            armed: was_running,
        }
    }

    pub(super) async fn restart(mut self, d: &Docker) -> Result<bool> {
        if !self.armed {
            return Ok(false);
        }
        self.armed = false;
        docker::start_container(d, &self.name).await?;
        Ok(true)
    }
}

impl Drop for RestartGuard {
    fn drop(&mut self) {
        if self.armed {
            let name = self.name.clone();
            tracing::info!("restarting container {name} (ward stopped it)");
            docker::blocking(move |d| async move { docker::start_container(&d, &name).await });
        }
    }
}

/// Repairs what ward processes that died (kill -9, power cut) left behind,
/// from their journals: restarts containers they stopped; refuses to snapshot
/// a container whose volume a dead restore left half-replaced, and says how to
/// put the previous data back.
pub(super) async fn recover(
    d: &Docker,
    store: &Store,
    op: &str,
    container: Option<&str>,
) -> Result<()> {
    for (path, j) in store.stale_journals() {
        let Some(facts) = docker::inspect_container(d, &j.container).await? else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        let user = container_user(&facts);
        let same = container == Some(j.container.as_str());
        if j.phase == "replacing" {
            let fix = match &j.safety {
                Some(sf) => format!(
                    "ward snapshot restore {sf} --container {} --no-safety --yes",
                    j.container
                ),
                None => format!(
                    "restore a snapshot into it (ward snapshot restore NAME --container {})",
                    j.container
                ),
            };
            if same && op == "restore" {
                crate::output::note(&format!(
                    "note: an interrupted ward (pid {}) left the volume of {} half-replaced; this restore replaces it",
                    j.pid, j.container
                ));
                let _ = std::fs::remove_file(&path);
            } else if same {
                return crate::error::usage(format!(
                    "an interrupted restore (ward pid {}, {}) left container {} with partially replaced \
                     data and stopped — put the previous data back first: {fix}",
                    j.pid,
                    j.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    j.container
                ));
            } else {
                crate::output::note(&format!(
                    "warning: an interrupted restore left container {} with partially replaced data — {fix}",
                    j.container
                ));
            }
            continue;
        }
        if j.was_running && !docker::is_running(d, &j.container).await? {
            docker::start_container(d, &j.container).await?;
            settle(d, &j.container, &user).await;
            crate::output::note(&format!(
                "note: restarted container {}, which an interrupted ward (pid {}) had stopped",
                j.container, j.pid
            ));
        }
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

pub(super) fn journal(
    store: &Store,
    op: &str,
    container: &str,
    was_running: bool,
    snapshot: &str,
) -> Result<Journal> {
    store.journal(JournalEntry {
        pid: std::process::id(),
        operation: op.into(),
        container: container.into(),
        was_running,
        phase: "stopped".into(),
        snapshot: snapshot.into(),
        safety: None,
        started_at: Utc::now(),
    })
}
