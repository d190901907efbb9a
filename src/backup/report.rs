//! What one `ward backup` run reports: its status, the create step and
//! each store's steps, the signals sent — the data `output` prints, the
//! webhook posts and the exit code is read from. Kept apart from the run
//! itself (`mod.rs`), which fills it in step by step.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::snapshot::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// Every step in every store succeeded.
    Ok,
    /// The backup exists in at least one store, verified; a step failed elsewhere.
    Partial,
    /// No verified backup was made.
    Failed,
}

/// The create step.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CreateStep {
    pub store: String,
    pub seconds: f64,
    pub file_count: u64,
    pub total_bytes: u64,
    pub compressed_bytes: u64,
    pub downtime_seconds: Option<f64>,
}

/// What happened in one store.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StoreStep {
    pub store: String,
    pub ok: bool,
    /// "created" or "copied" when the backup arrived there.
    pub arrived: Option<&'static str>,
    /// Seconds to copy it there and check it on arrival (not for the store
    /// it was created in).
    pub copy_seconds: Option<f64>,
    pub verified: bool,
    /// What the arrival check read: "contents" (every file), or "stored
    /// bytes" (an encrypted archive and no identity on this machine).
    pub checked: Option<String>,
    pub verify_seconds: Option<f64>,
    /// Backups of this target that prune deleted, and kept.
    pub pruned: Vec<String>,
    pub kept: Vec<String>,
    /// The step that failed: "open", "create", "verify", "copy" or "prune";
    /// "skipped" when an earlier failure left nothing to do here.
    pub failed_step: Option<&'static str>,
    pub error: Option<String>,
}

impl StoreStep {
    pub(super) fn new(store: &str) -> StoreStep {
        StoreStep {
            store: store.to_string(),
            ok: false,
            arrived: None,
            copy_seconds: None,
            verified: false,
            checked: None,
            verify_seconds: None,
            pruned: Vec::new(),
            kept: Vec::new(),
            failed_step: None,
            error: None,
        }
    }

    pub(super) fn fail(&mut self, step: &'static str, e: &anyhow::Error) {
        self.ok = false;
        self.failed_step = Some(step);
        self.error = Some(crate::redact::text(&format!("{e:#}")).replace('\n', " "));
    }
}

/// The report of one run (also the webhook's source).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub status: Status,
    pub snapshot: Option<String>,
    pub target: String,
    pub method: Method,
    pub started_at: DateTime<Utc>,
    pub seconds: f64,
    pub create: Option<CreateStep>,
    pub stores: Vec<StoreStep>,
    /// Why the run failed as a whole (target, create), if it did.
    pub error: Option<String>,
    /// The pings and webhook sent, and whether they got through.
    pub signals: Vec<super::notify::Sent>,
    /// What ward noticed on the way (no pruning configured, a single store …).
    pub notes: Vec<String>,
    /// The failure was bad input or an unreachable service (exit 2), not a
    /// failed step (exit 1).
    #[serde(skip)]
    pub usage_error: bool,
}

impl Report {
    /// The run's exit code: 0 only when every step succeeded.
    pub(crate) fn exit(&self) -> crate::error::Exit {
        use crate::error::Exit;
        match self.status {
            Status::Ok => Exit::Ok,
            _ if self.usage_error => Exit::Error,
            _ => Exit::Findings,
        }
    }

    /// One line for people (and the ping's body).
    pub(crate) fn summary(&self) -> String {
        let failed: Vec<String> = self
            .stores
            .iter()
            .filter(|s| !s.ok)
            .map(|s| {
                format!(
                    "{} ({}: {})",
                    s.store,
                    s.failed_step.unwrap_or("?"),
                    s.error.as_deref().unwrap_or("?")
                )
            })
            .collect();
        match self.status {
            Status::Ok => format!(
                "backup {} of {} ok: {} store(s) verified in {:.1} s",
                self.snapshot.as_deref().unwrap_or("?"),
                self.target,
                self.stores.len(),
                self.seconds
            ),
            Status::Partial => format!(
                "backup {} of {} PARTIAL: failed in {}",
                self.snapshot.as_deref().unwrap_or("?"),
                self.target,
                failed.join("; ")
            ),
            Status::Failed => format!(
                "backup of {} FAILED: {}",
                self.target,
                self.error.clone().unwrap_or_else(|| failed.join("; "))
            ),
        }
    }

    pub(super) fn finish_status(&mut self) {
        let verified = self.stores.iter().any(|s| s.verified);
        self.status = if self.error.is_none() && self.stores.iter().all(|s| s.ok) {
            Status::Ok
        } else if verified && self.error.is_none() {
            Status::Partial
        } else {
            Status::Failed
        };
    }
}

pub(super) fn placeholder() -> Report {
    Report {
        status: Status::Failed,
        snapshot: None,
        target: String::new(),
        method: Method::Online,
        started_at: Utc::now(),
        seconds: 0.0,
        create: None,
        stores: Vec::new(),
        error: None,
        signals: Vec::new(),
        notes: Vec::new(),
        usage_error: false,
    }
}

/// Marks every store not yet failed as skipped, with why.
pub(super) fn skip_all(report: &mut Report, why: &str) {
    for s in report.stores.iter_mut().filter(|s| s.failed_step.is_none()) {
        s.ok = false;
        s.failed_step = Some("skipped");
        s.error = Some(why.to_string());
    }
}
