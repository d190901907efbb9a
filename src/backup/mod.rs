//! `ward backup`: the one command a timer runs on a VPS. A snapshot that
//! lives on the same disk as the database, is never checked and fails
//! silently is not a backup; this puts the pieces `snapshot` already has
//! together in the order ops need them, and tells someone how it went.
//!
//! One run: resolve the target → take the backup lock (a second run of the
//! same target refuses at once) → `/start` ping → create (online by default)
//! into the first store that opens → verify it there → copy it to each other
//! store, verified on arrival → prune each store that holds the new backup by
//! the GFS policy, touching only this target's backups (label
//! [`LABEL`] and the name prefix) → success or `/fail` ping and the webhook.
//! A store that fails is reported by name and the others keep what they got.
//! Notifying is best effort: its failures are reported, never the run's.
//!
//! This domain composes `snapshot` (create, verify, retention) and reaches
//! stores only through [`stores`], the one place that knows what a store is.

pub(crate) mod lock;
pub(crate) mod notify;
mod report;
pub(crate) mod stores;
pub(crate) mod systemd;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use chrono::Utc;

pub(crate) use report::{CreateStep, Report, Status, StoreStep};
use report::{placeholder, skip_all};

use crate::progress::Progress;
use crate::snapshot::{self, CreateOptions, Method, retention};
use crate::target::{self, Target, TargetSpec};

/// The label every backup carries; its value is the target's identity
/// ([`identity`]), so that prune only ever considers this target's backups.
pub(crate) const LABEL: &str = "ward.backup";

/// Who a backup belongs to: (label value, name stem). The label is the data's
/// own identity on this host — the volume's name (compose prefixes it with the
/// project, so prod's and staging's `db` differ), or a data directory's
/// canonical path — never a service name two projects may share. The stem
/// is the same, made fit for a snapshot name (a data directory's gets a
/// short hash of its path, as two clusters may share a directory name).
pub(crate) fn identity(target: &Target) -> (String, String) {
    match target {
        Target::Volume(v) => (v.volume.name.clone(), name_safe(&v.volume.name)),
        Target::Datadir(d) => {
            let path = std::fs::canonicalize(d)
                .unwrap_or_else(|_| d.clone())
                .display()
                .to_string();
            let hash = crate::seed::rng::fnv1a(path.as_bytes());
            let stem = format!("{}-{:08x}", target.stem(), hash as u32);
            (path, name_safe(&stem))
        }
    }
}

fn name_safe(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// What to back up, where to, and whom to tell (flags over `ward.toml`).
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub target: TargetSpec,
    pub cwd: std::path::PathBuf,
    /// As given: the first gets the create, the others a copy.
    pub stores: Vec<String>,
    pub method: Method,
    pub stop_timeout: u32,
    /// None: no pruning (none configured, or `--no-prune`).
    pub policy: Option<retention::Policy>,
    pub name_prefix: String,
    pub signals: notify::Signals,
    /// Encryption keys for every store (`[store]` recipients, identity).
    pub keys: snapshot::crypt::Keys,
}

/// Runs one backup. `Err` only when the run did not start (another backup
/// of the same target holds the lock: no signal is sent, that run reports)
/// or was interrupted (the `/fail` ping and the webhook are still sent).
pub(crate) async fn run(plan: &Plan, progress: Arc<dyn Progress>) -> Result<Report> {
    let started = Instant::now();
    let report = Report {
        status: Status::Failed,
        snapshot: None,
        target: describe_spec(&plan.target),
        method: plan.method,
        started_at: Utc::now(),
        seconds: 0.0,
        create: None,
        stores: plan.stores.iter().map(|s| StoreStep::new(s)).collect(),
        error: None,
        signals: Vec::new(),
        notes: Vec::new(),
        usage_error: false,
    };
    // Until the run is finished, dropping it (Ctrl-C, or systemd stopping
    // the unit with SIGINT) still tells the check and the webhook.
    let mut guard = Unfinished {
        report,
        signals: plan.signals.clone(),
        started,
        armed: false,
    };
    let target = match target::resolve(&plan.target, &plan.cwd).await {
        Ok(t) => t,
        Err(e) => {
            // A vanished container at 3 a.m. is exactly what must be told;
            // a target that is not there (or an engine that does not answer)
            // is exit 2, as for every command.
            let report = &mut guard.report;
            report.usage_error = true;
            report.error = Some(crate::redact::text(&format!("{e:#}")));
            skip_all(report, "the target could not be resolved");
            return Ok(guard.finish().await);
        }
    };
    guard.report.target = target.describe();
    let _lock = lock::take(&target)?;
    guard.armed = true;
    let sent = plan.signals.start().await;
    guard.report.signals.extend(sent);
    let (owner, stem) = identity(&target);
    let name = format!(
        "{}-{}-{}",
        plan.name_prefix,
        stem,
        Utc::now().format("%Y%m%d-%H%M%S")
    );
    guard.report.snapshot = Some(name.clone());
    let report = &mut guard.report;
    if plan.stores.len() == 1 {
        report.notes.push(
            "note: one store only — a copy on the same machine as the database is not off-site; \
             add a second store ([backup] stores)"
                .into(),
        );
    }
    if plan.policy.is_none() {
        report.notes.push(
            "note: no retention policy ([backup] keep_last/keep_daily/keep_weekly/keep_monthly), \
             so nothing was pruned"
                .into(),
        );
    }
    let mut open_usage_errors = 0;
    let opened: Vec<Option<snapshot::store::Store>> = plan
        .stores
        .iter()
        .zip(report.stores.iter_mut())
        .map(|(spec, step)| match stores::open(spec, &plan.keys) {
            Ok(s) => Some(s),
            Err(e) => {
                if is_usage(&e) {
                    open_usage_errors += 1;
                }
                step.fail("open", &e);
                None
            }
        })
        .collect();
    let Some(primary) = opened.iter().position(Option::is_some) else {
        report.snapshot = None;
        report.error = Some("no store could be opened".into());
        // Every store refused as given: the configuration is wrong.
        report.usage_error = open_usage_errors == plan.stores.len();
        return Ok(guard.finish().await);
    };
    let opts = CreateOptions {
        name: Some(name.clone()),
        method: plan.method,
        stop_timeout: plan.stop_timeout,
        labels: [(LABEL.to_string(), owner.clone())].into(),
    };
    let primary_store = opened[primary].clone().expect("found above");
    let created = stores::when_free(&mut report.notes, || {
        let (st, t, p, o) = (
            primary_store.clone(),
            target.clone(),
            progress.clone(),
            opts.clone(),
        );
        snapshot::shielded(move || async move { snapshot::create(&st, &t, &o, p).await })
    })
    .await;
    let created = match created {
        Ok(c) => c,
        Err(e) if crate::error::cancelled() => return Err(e),
        Err(e) => {
            report.snapshot = None;
            report.usage_error = is_usage(&e);
            report.stores[primary].fail("create", &e);
            report.error = report.stores[primary].error.clone();
            skip_all(report, "the create failed");
            return Ok(guard.finish().await);
        }
    };
    report.notes.extend(created.notes.iter().cloned());
    report.create = Some(CreateStep {
        store: plan.stores[primary].clone(),
        seconds: created.seconds,
        file_count: created.file_count,
        total_bytes: created.total_bytes,
        compressed_bytes: created.compressed_bytes,
        downtime_seconds: created.downtime_seconds,
    });
    let step = &mut report.stores[primary];
    step.arrived = Some("created");
    let t = Instant::now();
    match stores::verify(&primary_store, &name, progress.clone()).await {
        Ok(scope) => {
            step.verified = true;
            step.checked = Some(scope.into());
            step.ok = true;
            step.verify_seconds = Some(t.elapsed().as_secs_f64());
        }
        Err(e) => {
            // This run's own snapshot, just proven damaged: it must not be
            // counted as a backup by the next prune.
            let e = match stores::discard(&primary_store, &name, &e).await {
                Ok(true) => e.context("it was deleted again"),
                Ok(false) => e,
                Err(d) => e.context(format!(
                    "deleting it failed too ({d:#}) — delete it: ward snapshot delete {name}"
                )),
            };
            step.fail("verify", &e);
            // Copying what failed verification would spread the damage.
            skip_all(report, "the created backup failed verification");
            return Ok(guard.finish().await);
        }
    }
    for (i, store) in opened.iter().enumerate() {
        let Some(store) = store else { continue };
        if i == primary {
            continue;
        }
        let step = &mut report.stores[i];
        let t = Instant::now();
        let copied = stores::when_free(&mut report.notes, || {
            stores::copy(&primary_store, store, &name, progress.clone())
        })
        .await;
        match copied {
            Ok(copied) => {
                step.arrived = Some("copied");
                step.copy_seconds = Some(t.elapsed().as_secs_f64());
                step.checked = Some(copied.verified);
                step.verified = true;
                step.ok = true;
            }
            Err(e) if crate::error::cancelled() => return Err(e),
            Err(e) => step.fail("copy", &e),
        }
    }
    // The cluster's own identity, as this run recorded it.
    let system_identifier = primary_store
        .load(&name)
        .ok()
        .and_then(|m| m.system_identifier);
    if let Some(policy) = plan.policy {
        for (i, store) in opened.iter().enumerate() {
            let (Some(store), true) = (store, report.stores[i].ok) else {
                continue;
            };
            let step = &mut report.stores[i];
            let pruned = stores::when_free(&mut report.notes, || {
                stores::prune(
                    store,
                    policy,
                    &owner,
                    system_identifier.clone(),
                    &plan.name_prefix,
                )
            })
            .await;
            match pruned {
                Ok(decisions) => {
                    for d in decisions {
                        if d.keep {
                            step.kept.push(d.name);
                        } else {
                            step.pruned.push(d.name);
                        }
                    }
                }
                Err(e) => step.fail("prune", &e),
            }
        }
    }
    Ok(guard.finish().await)
}

/// A run in progress. Finishing it sends the closing signals; dropping it
/// unfinished (the future dropped on an interrupt) sends the `/fail` ping
/// and the webhook from a thread of its own, each bounded by its timeout.
struct Unfinished {
    report: Report,
    signals: notify::Signals,
    started: Instant,
    /// Set once the `/start` ping may have gone out (the lock is held).
    armed: bool,
}

impl Unfinished {
    async fn finish(mut self) -> Report {
        self.armed = false;
        let mut report = std::mem::replace(&mut self.report, placeholder());
        report.seconds = self.started.elapsed().as_secs_f64();
        report.finish_status();
        let sent = self.signals.finish(&report).await;
        report.signals.extend(sent);
        report
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut report = std::mem::replace(&mut self.report, placeholder());
        report.seconds = self.started.elapsed().as_secs_f64();
        report.status = Status::Failed;
        report.error = Some(
            "interrupted (Ctrl-C or SIGINT, e.g. systemd stopped the unit): the snapshot being \
             written was discarded"
                .into(),
        );
        let signals = self.signals.clone();
        let sender = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(signals.finish(&report));
            }
        });
        let _ = sender.join();
    }
}

/// Whether `e` is bad input or another ward's lock (exit 2), not a failed
/// step (exit 1). A store that does not answer ([`crate::error::Unreachable`])
/// is a failed step: the run started, and the outage is what must be told.
fn is_usage(e: &anyhow::Error) -> bool {
    crate::error::is_error_not_finding(e) && e.downcast_ref::<crate::error::Unreachable>().is_none()
}

/// The target as the user named it, for a report whose target never resolved.
fn describe_spec(t: &TargetSpec) -> String {
    if let Some(c) = &t.container {
        format!("container {c}")
    } else if let Some(s) = &t.compose_service {
        format!("compose service {s}")
    } else if let Some(v) = &t.volume {
        format!("volume {v}")
    } else if let Some(d) = &t.datadir {
        format!("data directory {}", d.display())
    } else {
        "the compose project's Postgres container".into()
    }
}
