//! `ward backup`'s flags and examples.

use std::path::PathBuf;

use clap::Args;

use super::RecipientArgs;
use crate::target::TargetSpec;

pub(super) const BACKUP_EXAMPLES: &str = "Examples:
  ward backup                                   as ward.toml [backup] says (stores, target, retention, notify)
  ward backup --compose-service db --store /var/backups/ward --store /mnt/offsite/ward \\
              --keep-daily 7 --keep-weekly 4 --keep-monthly 6 --ping https://hc-ping.com/UUID
  ward backup --json                            the report as JSON (for scripts)
  ward backup --print-systemd                   the systemd .service and .timer for this ward.toml
  ward backup --print-systemd --systemd-dir /etc/systemd/system
  ward backup --store s3://backups/app --encrypt-to age1… \\
              --recipients-file /etc/ward/recipients.txt
                                                encrypted off-site (AWS_* give the endpoint and keys)

Encryption: --encrypt-to / --recipients-file, else WARD_AGE_RECIPIENTS (comma-separated),
else ward.toml [store] encrypt_to / recipients_file. The identity stays off the VPS: a
backup checks an encrypted archive by its stored bytes' size and SHA-256.

Steps: create (online: no downtime) into the first store, copy to the others and
verify each copy, prune each store by the retention policy (only this target's
backups), report; --notify and --ping tell someone how it went.
Exit codes: 0 every step succeeded · 1 the backup ran and a step failed (the report
names the store; what succeeded is kept) · 2 bad input, or another backup of this
target is still running (this run did nothing) · 130 interrupted.";

/// `ward backup`: flags override `ward.toml` `[backup]`.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct BackupArgs {
    #[command(flatten)]
    pub target: TargetSpec,

    /// A store to back up into; repeat for more (created in the first, copied to the others)
    /// [ward.toml: [backup] stores; default: [snapshot] store]
    #[arg(long = "store", value_name = "STORE")]
    pub stores: Vec<String>,

    /// Stop the container for a cold copy instead of the default online backup (downtime).
    #[arg(long)]
    pub cold: bool,

    /// Seconds to wait for Postgres to stop cleanly (with --cold; default 120).
    #[arg(long, value_name = "SECONDS")]
    pub stop_timeout: Option<u32>,

    /// Keep the newest N backups of this target in each store.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Keep the newest backup of each of the last N days.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<usize>,
    /// Keep the newest backup of each of the last N ISO weeks.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<usize>,
    /// Keep the newest backup of each of the last N months.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<usize>,
    /// Do not prune, whatever ward.toml says.
    #[arg(long)]
    pub no_prune: bool,

    #[command(flatten)]
    pub recipients: RecipientArgs,

    /// POST the run's JSON report to this webhook [ward.toml: [backup] notify].
    #[arg(long, value_name = "URL")]
    pub notify: Option<String>,

    /// A healthchecks.io-style check: URL/start at the start, URL on success, URL/fail on
    /// failure [ward.toml: [backup] ping].
    #[arg(long, value_name = "URL")]
    pub ping: Option<String>,

    /// Print the systemd service and timer that run this backup, and do nothing else.
    #[arg(long)]
    pub print_systemd: bool,

    /// With --print-systemd: write ward-backup.service and ward-backup.timer into DIR instead.
    #[arg(long, value_name = "DIR", requires = "print_systemd")]
    pub systemd_dir: Option<PathBuf>,

    /// With --print-systemd: the timer's OnCalendar= [ward.toml: [backup] on_calendar;
    /// default "*-*-* 03:00:00"].
    #[arg(long, value_name = "WHEN", requires = "print_systemd")]
    pub on_calendar: Option<String>,

    /// With --print-systemd: the timer's RandomizedDelaySec= [ward.toml: [backup]
    /// randomized_delay; default "30min"].
    #[arg(long, value_name = "SPAN", requires = "print_systemd")]
    pub randomized_delay: Option<String>,
}
