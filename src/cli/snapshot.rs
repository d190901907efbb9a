//! `ward snapshot`'s verbs, their flags and examples.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::StoreArgs;
use crate::target::TargetSpec;

pub(super) const SNAPSHOT_EXAMPLES: &str = "Examples:
  ward snapshot create --compose-service db            cold snapshot of the compose service `db`
  ward snapshot create nightly --online --container pg  no downtime (pg_basebackup inside)
  ward snapshot list
  ward snapshot verify nightly                         re-hash everything (exit 1 when damaged)
  ward snapshot restore nightly --compose-service db   verify, safety snapshot, replace, restart
  ward snapshot prune --keep-last 3 --keep-daily 7 --dry-run

Snapshots live in --store DIR (env WARD_STORE, ward.toml [snapshot] store, default ./.ward/snapshots).
With no target flag ward uses [snapshot] in ward.toml, else the one Postgres container of the
current directory's compose project.";

const CREATE_EXAMPLES: &str = "Examples:
  ward snapshot create                                  the compose project's Postgres container, cold
  ward snapshot create before-migration --compose-service db --label ticket=OPS-12
  ward snapshot create --online --container pg          pg_basebackup while the database keeps running
  ward snapshot create --volume pgdata --image postgres:15
  ward snapshot create --datadir /srv/pg/15/main        a native cluster (stop the server first)
  ward snapshot create try-1 --fast --database-url postgres://app:pw@localhost/app
                                                        in-cluster copy in about a second per GB

--cold (the default) checkpoints, stops the container (up to --stop-timeout seconds), proves a
clean shutdown with pg_controldata, streams the volume out and restarts the container — on every
path, also on errors and Ctrl-C. The downtime is reported.

--fast copies one database into a hidden template database in the same cluster (no downtime,
but other sessions must be closed: --force ends them). It lives inside the cluster and is gone
with the volume; --persist also writes a durable snapshot of the target, linked by label.";

const LIST_EXAMPLES: &str = "Examples:
  ward snapshot list
  ward snapshot list --json
  ward snapshot list --store /backups/ward";

const SHOW_EXAMPLES: &str = "Examples:
  ward snapshot show nightly
  ward snapshot show nightly --json      the whole manifest, with every file's SHA-256";

const DELETE_EXAMPLES: &str = "Examples:
  ward snapshot delete nightly --yes";

const VERIFY_EXAMPLES: &str = "Examples:
  ward snapshot verify nightly          re-hash the archive and every file against the manifest
  ward snapshot verify nightly --json
  ward snapshot verify nightly --deep   also start Postgres on a throwaway copy and run pg_amcheck

Exit code 0 when intact, 1 when damaged (the problems are named), 2 on bad input.";

const RESTORE_EXAMPLES: &str = "Examples:
  ward snapshot restore nightly --compose-service db
  ward snapshot restore nightly --container pg --yes     no prompt (scripts, CI)
  ward snapshot restore nightly --datadir /srv/pg/15/main
  ward snapshot restore nightly --container pg --keep-previous   keep what it replaces
  ward snapshot restore --previous --container pg               …and put that back
  ward snapshot restore try-1 --database-url postgres://app:pw@localhost/app --yes --force
                                                        a fast snapshot: seconds, sessions ended

ward verifies the snapshot first (nothing is touched if that fails), refuses another PostgreSQL
major version or layout, checks the volume has room for a second copy, and unpacks the snapshot
into a staging directory inside the volume (.ward-swap-ID, every file hashed as it streams)
while the container keeps running on the old data. Only then it stops the container, moves the
old contents aside and the staged ones into place by renames, starts it and proves it runs the
snapshot's cluster; on any failure after the stop it swaps the old data back and restarts.
A killed ward is finished or undone by the next ward run on the target (or `ward snapshot
recover`). --safety also copies the current data into the store first. The volume keeps its
name and labels, so `docker compose up` keeps working. Without a terminal,
--yes is required. A fast snapshot is copied back beside the database and swapped in by
renaming, so a failure leaves the database as it was; sessions on it are listed and the
restore refuses unless --force ends them.";

const RECOVER_EXAMPLES: &str = "Examples:
  ward snapshot recover --container pg
  ward snapshot recover --compose-service db

Reads the target's journal (kept per target in ward's state directory: $WARD_STATE_DIR,
$XDG_STATE_HOME/ward or ~/.local/state/ward) and the swap directory in the volume: a restore
whose staging had finished is completed, one whose staging had not is rolled back, and a
container the interrupted ward had stopped is started again. Any other ward command on the
target does the same first.";

const COPY_EXAMPLES: &str = "Examples:
  ward snapshot copy app-20260101 --to s3://backups/app     local store → bucket
  ward snapshot copy app-20260101 --from s3://backups/app --to .ward/snapshots
  (an encrypted snapshot is copied as it is stored; with --identity it is also
  decrypted and checked file by file on arrival)
";

const PRUNE_EXAMPLES: &str = "Examples:
  ward snapshot prune --keep-last 3 --dry-run
  ward snapshot prune --keep-daily 7 --keep-weekly 4 --keep-monthly 6 --yes

Grandfather-father-son by creation time; the newest snapshot is always kept. Prints what it
keeps and why. With no --keep-* flag it deletes nothing; deleting asks first (--yes
confirms without a terminal).";

#[derive(Debug, Args, Clone)]
pub(crate) struct SnapshotArgs {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

#[derive(Debug, Subcommand, Clone)]
pub(crate) enum SnapshotCommand {
    /// Take a snapshot (cold by default; --online for no downtime).
    #[command(after_help = CREATE_EXAMPLES)]
    Create(SnapshotCreateArgs),
    /// List the snapshots in the store.
    #[command(after_help = LIST_EXAMPLES)]
    List(StoreArgs),
    /// Show one snapshot's manifest.
    #[command(after_help = SHOW_EXAMPLES)]
    Show(SnapshotNameArgs),
    /// Delete a snapshot.
    #[command(after_help = DELETE_EXAMPLES)]
    Delete(SnapshotDeleteArgs),
    /// Re-hash a snapshot against its manifest; exit 1 when damaged.
    #[command(after_help = VERIFY_EXAMPLES)]
    Verify(SnapshotVerifyArgs),
    /// Restore a snapshot into its target (verify, stage beside the running data, swap, roll back on failure).
    #[command(after_help = RESTORE_EXAMPLES)]
    Restore(SnapshotRestoreArgs),
    /// Finish or undo what an interrupted ward left on a target (any ward command on the target does this too).
    #[command(after_help = RECOVER_EXAMPLES)]
    Recover(SnapshotRecoverArgs),
    /// Delete old snapshots by a grandfather-father-son policy.
    #[command(after_help = PRUNE_EXAMPLES)]
    Prune(SnapshotPruneArgs),
    /// Copy a snapshot to another store (e.g. a local one to a bucket), checked on arrival.
    #[command(after_help = COPY_EXAMPLES)]
    Copy(SnapshotCopyArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SnapshotCopyArgs {
    /// Snapshot name (see `ward snapshot list`).
    pub name: String,
    /// The store to copy from [default: --store / WARD_STORE / ward.toml]
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub from: Option<PathBuf>,
    /// The store to copy to.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub to: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SnapshotCreateArgs {
    /// Snapshot name (default: <service or container>-<UTC timestamp>).
    pub name: Option<String>,
    #[command(flatten)]
    pub target: TargetSpec,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Stop the container, copy, restart (the default; exact and simple).
    #[arg(long, conflicts_with = "online")]
    pub cold: bool,
    /// No downtime: pg_basebackup inside the running container (tar format, WAL included).
    #[arg(long)]
    pub online: bool,
    /// Seconds to wait for a clean shutdown before Docker kills Postgres [ward.toml: [snapshot] stop_timeout; default 120]
    #[arg(long, env = "WARD_STOP_TIMEOUT", value_name = "SECONDS")]
    pub stop_timeout: Option<u32>,
    /// A user label for the manifest (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Second-scale: copy the database into a hidden template database in the
    /// same cluster (lives and dies with the cluster's volume). Needs --database-url.
    #[arg(long, conflicts_with_all = ["online", "cold"])]
    pub fast: bool,
    /// With --fast: the database to copy (default: the one in --database-url).
    #[arg(long, requires = "fast", value_name = "DB")]
    pub database: Option<String>,
    /// With --fast: also write a durable snapshot of the target's volume or data dir, linked to it.
    #[arg(long, requires = "fast")]
    pub persist: bool,
    /// With --fast: end other sessions on the database instead of refusing.
    #[arg(long, requires = "fast")]
    pub force: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SnapshotNameArgs {
    /// Snapshot name (see `ward snapshot list`).
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SnapshotDeleteArgs {
    /// Snapshot name (see `ward snapshot list`).
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SnapshotVerifyArgs {
    /// Snapshot name (see `ward snapshot list`).
    pub name: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Also restore into a throwaway volume, start Postgres, run pg_amcheck and a sanity
    /// query, and record "last verified" in the manifest.
    #[arg(long)]
    pub deep: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SnapshotRestoreArgs {
    /// Snapshot name (see `ward snapshot list`); not with --previous.
    #[arg(required_unless_present = "previous", conflicts_with = "previous")]
    pub name: Option<String>,
    #[command(flatten)]
    pub target: TargetSpec,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Also copy the current data into the store as a snapshot first (an extra
    /// copy: the swap keeps the previous data on disk until the new data runs).
    #[arg(long)]
    pub safety: bool,
    /// No safety snapshot (the default since restores stage, then swap; kept for scripts).
    #[arg(long, hide = true, conflicts_with = "safety")]
    pub no_safety: bool,
    /// Keep the replaced contents in the volume <volume>-ward-previous (outside PGDATA and
    /// the target volume) instead of deleting them; `--previous` puts them back.
    #[arg(long)]
    pub keep_previous: bool,
    /// Put back the contents the last --keep-previous restore of this target kept (what it
    /// replaces is kept in their place).
    #[arg(long)]
    pub previous: bool,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Seconds to wait for a clean shutdown before Docker kills Postgres (default 120).
    #[arg(long, env = "WARD_STOP_TIMEOUT", value_name = "SECONDS")]
    pub stop_timeout: Option<u32>,
    /// Fast snapshots: end the sessions connected to the database instead of refusing.
    #[arg(long)]
    pub force: bool,
    /// Migrations on disk to compare the snapshot's migration head with (warns when it is
    /// behind or ahead) [default: the first of migrations/, db/migrations/ that exists]
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SnapshotRecoverArgs {
    #[command(flatten)]
    pub target: TargetSpec,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SnapshotPruneArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Keep the newest N snapshots.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_last: usize,
    /// Keep the newest snapshot of each of the last N days that have one.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_daily: usize,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_weekly: usize,
    /// Keep the newest snapshot of each of the last N months that have one.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep_monthly: usize,
    /// Show what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete without asking (needed when there is no terminal to ask on).
    #[arg(short, long)]
    pub yes: bool,
}
