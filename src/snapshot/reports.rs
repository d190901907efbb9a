//! What the snapshot verbs take and what they report: the options of
//! `create` and `restore`, and the `Created`, `Restored` and `Verified`
//! results the command layer hands to `output`.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;

use super::manifest::Manifest;
use super::store::Store;

/// How to take a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Method {
    Cold,
    Online,
}

#[derive(Debug, Clone)]
pub(crate) struct CreateOptions {
    pub name: Option<String>,
    pub method: Method,
    pub stop_timeout: u32,
    pub labels: BTreeMap<String, String>,
}

/// What `create` reports.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Created {
    pub name: String,
    pub id: String,
    pub method: Method,
    pub target: String,
    pub file_count: u64,
    pub total_bytes: u64,
    pub compressed_bytes: u64,
    pub seconds: f64,
    pub downtime_seconds: Option<f64>,
    pub archive: String,
    /// Whether the container was running before and is running again.
    pub restarted: bool,
    /// What ward repaired or noticed on the way (an interrupted ward's
    /// leftovers), for the command to show; domains do not print.
    #[serde(skip)]
    pub notes: Vec<String>,
}

impl Created {
    /// The report of a snapshot whose manifest `m` was just committed to `store`.
    pub(crate) fn of(
        store: &Store,
        m: &Manifest,
        method: Method,
        target: String,
        started: std::time::Instant,
        restarted: bool,
    ) -> Created {
        Created {
            name: m.name.clone(),
            id: m.id.clone(),
            method,
            target,
            file_count: m.file_count,
            total_bytes: m.total_bytes,
            compressed_bytes: m.compressed_bytes,
            seconds: started.elapsed().as_secs_f64(),
            downtime_seconds: m.downtime_seconds,
            archive: store.archive_location(&m.name),
            restarted,
            notes: Vec::new(),
        }
    }
}

/// What `restore` reports.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Restored {
    pub name: String,
    pub target: String,
    pub safety_snapshot: Option<String>,
    pub seconds: f64,
    pub running: bool,
    pub sanity: Option<String>,
    /// Restore phases (volume restores): unpacking into the staging
    /// directory while the app runs, the renames, start to ready, and the
    /// application's downtime (stopped → ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downtime_seconds: Option<f64>,
    /// What ward repaired or noticed on the way, for the command to show.
    #[serde(skip)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct RestoreOptions {
    pub safety: bool,
    pub stop_timeout: u32,
}

/// Answers "go ahead?" for destructive operations (the command layer prompts).
pub(crate) type Confirm = Arc<dyn Fn(&str) -> Result<bool> + Send + Sync>;

/// The result of `verify`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Verified {
    pub name: String,
    pub ok: bool,
    pub problems: Vec<String>,
    pub entries: u64,
    pub bytes: u64,
    pub deep: Option<String>,
    /// What was checked: "contents" (every file against its hash),
    /// [`SCOPE_STORED`] (an encrypted archive without its identity: the
    /// stored ciphertext's size and SHA-256), or "in-cluster copy".
    pub scope: &'static str,
}

/// [`Verified::scope`] of an encrypted archive checked without its identity.
pub(crate) const SCOPE_STORED: &str = "stored bytes";
