//! `ward backup`: flags over `ward.toml` `[backup]` (over `[snapshot]`) into
//! a plan, the domain runs it, `output` reports it; or, with
//! `--print-systemd`, the units that run it on a timer.

use std::sync::Arc;

use anyhow::Result;

use crate::backup::{self, Plan, notify::Signals, systemd};
use crate::cli::{BackupArgs, RecipientArgs};
use crate::config::Config;
use crate::error::{self, Exit};
use crate::output;
use crate::progress::Progress;
use crate::snapshot::{Method, retention, store::check_name};
use crate::target::TargetSpec;

const DEFAULT_PREFIX: &str = "backup";
const DEFAULT_ON_CALENDAR: &str = "*-*-* 03:00:00";
const DEFAULT_RANDOMIZED_DELAY: &str = "30min";

pub(crate) async fn run(cfg: &Config, args: &BackupArgs) -> Result<Exit> {
    if args.print_systemd {
        return print_systemd(cfg, args);
    }
    let plan = plan(cfg, args)?;
    let progress: Arc<dyn Progress> = Arc::new(output::Bar::bytes(cfg.quiet));
    let report = backup::run(&plan, progress).await?;
    output::backup_report(&report, cfg.json);
    Ok(report.exit())
}

fn plan(cfg: &Config, args: &BackupArgs) -> Result<Plan> {
    let file = &cfg.file.backup;
    // Fields in the order their mistakes are reported.
    Ok(Plan {
        target: cfg.backup_target(&args.target),
        cwd: std::env::current_dir()?,
        stores: stores(cfg, args)?,
        method: method(args.cold, file.method.as_deref())?,
        stop_timeout: cfg.backup_stop_timeout(args.stop_timeout),
        policy: policy(args, file),
        name_prefix: name_prefix(file.name_prefix.as_deref())?,
        signals: Signals::parse(
            args.notify.as_deref().or(file.notify.as_deref()),
            args.ping.as_deref().or(file.ping.as_deref()),
        )?,
        keys: keys(cfg, &args.recipients)?,
    })
}

/// `--store` (repeatable), else `[backup] stores`, else the snapshot store;
/// each one named once.
fn stores(cfg: &Config, args: &BackupArgs) -> Result<Vec<String>> {
    let file = &cfg.file.backup;
    let stores = if !args.stores.is_empty() {
        args.stores.clone()
    } else if !file.stores.is_empty() {
        file.stores.clone()
    } else {
        let default = cfg.file.snapshot.store.clone();
        let dir = default.unwrap_or_else(|| super::snapshot::DEFAULT_STORE.into());
        vec![dir.display().to_string()]
    };
    for (i, store) in stores.iter().enumerate() {
        if store.trim().is_empty() {
            return error::usage("a backup store is empty — give a directory");
        }
        if stores[..i].contains(store) {
            return error::usage(format!(
                "store {store:?} is listed twice — a backup store is a separate place; remove one"
            ));
        }
    }
    Ok(stores)
}

/// `--cold`, else `[backup] method` (online by default).
fn method(cold: bool, configured: Option<&str>) -> Result<Method> {
    if cold {
        return Ok(Method::Cold);
    }
    match configured {
        None | Some("online") => Ok(Method::Online),
        Some("cold") => Ok(Method::Cold),
        Some(other) => error::usage(format!(
            "ward.toml [backup] method = {other:?} is not a method — use \"online\" (no \
             downtime, the default) or \"cold\""
        )),
    }
}

/// The retention policy, flags over `[backup]`; none when nothing is kept
/// by rule or `--no-prune` is given.
fn policy(args: &BackupArgs, file: &crate::config::FileBackup) -> Option<retention::Policy> {
    let policy = retention::Policy {
        keep_last: args.keep_last.or(file.keep_last).unwrap_or(0),
        keep_daily: args.keep_daily.or(file.keep_daily).unwrap_or(0),
        keep_weekly: args.keep_weekly.or(file.keep_weekly).unwrap_or(0),
        keep_monthly: args.keep_monthly.or(file.keep_monthly).unwrap_or(0),
    };
    (!args.no_prune && policy != retention::Policy::default()).then_some(policy)
}

/// `[backup] name_prefix` (default [`DEFAULT_PREFIX`]), usable in a name.
fn name_prefix(configured: Option<&str>) -> Result<String> {
    let name_prefix = configured.unwrap_or(DEFAULT_PREFIX).to_string();
    if check_name(&format!("{name_prefix}-x")).is_err() || name_prefix.is_empty() {
        return error::usage(format!(
            "ward.toml [backup] name_prefix = {name_prefix:?} is not usable in a snapshot name — \
             use letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(name_prefix)
}

/// The `[store]` keys every backup store gets: recipients new archives are
/// encrypted to (the identity stays off the VPS), and whether encryption is
/// required.
///
/// Recipients: `--encrypt-to` / `--recipients-file`, else `WARD_AGE_RECIPIENTS`,
/// else ward.toml — the environment over the file, as for `ward snapshot`: a
/// timer whose unit exports the recipients (e.g. from /etc/ward/backup.env)
/// must never back up in the clear. `WARD_AGE_IDENTITY` over ward.toml too.
fn keys(cfg: &Config, args: &RecipientArgs) -> Result<crate::snapshot::crypt::Keys> {
    let s = &cfg.file.store;
    let (recipients, files) = s.recipients(&args.encrypt_to, &args.recipients_files);
    let identity = std::env::var_os("WARD_AGE_IDENTITY")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| s.identity.clone());
    crate::snapshot::crypt::Keys::new(&recipients, &files, identity, s.require_encryption)
}

/// The units run `ward backup` in this directory, so its ward.toml must say
/// everything: flags given here would not be in the unit.
fn print_systemd(cfg: &Config, args: &BackupArgs) -> Result<Exit> {
    let cwd = std::env::current_dir()?;
    let run_flags = !args.stores.is_empty()
        || args.target != TargetSpec::default()
        || args.cold
        || args.stop_timeout.is_some()
        || args.keep_last.is_some()
        || args.keep_daily.is_some()
        || args.keep_weekly.is_some()
        || args.keep_monthly.is_some()
        || args.no_prune
        || !args.recipients.is_empty()
        || args.notify.is_some()
        || args.ping.is_some();
    if run_flags {
        return error::usage(
            "--print-systemd writes units that run plain `ward backup` in this directory: put \
             the stores, target, retention and notify settings in ward.toml [backup] instead \
             of flags",
        );
    }
    if !cwd.join(crate::config::FILE_NAME).is_file() {
        return error::usage(format!(
            "no ward.toml in {} — the units run `ward backup` there and it reads its settings \
             from that file: write [backup] (stores, target, retention, notify) first",
            cwd.display()
        ));
    }
    // The plan must be valid now, not at 3 a.m.
    plan(cfg, args)?;
    let exe = std::env::current_exe()?;
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::effective())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "root".into());
    let file = &cfg.file.backup;
    let units = systemd::units(&systemd::UnitSpec {
        exe: &exe,
        workdir: &cwd,
        user: &user,
        on_calendar: args
            .on_calendar
            .as_deref()
            .or(file.on_calendar.as_deref())
            .unwrap_or(DEFAULT_ON_CALENDAR),
        randomized_delay: args
            .randomized_delay
            .as_deref()
            .or(file.randomized_delay.as_deref())
            .unwrap_or(DEFAULT_RANDOMIZED_DELAY),
    })?;
    let written = match &args.systemd_dir {
        Some(dir) => Some(systemd::write(&units, dir)?),
        None => None,
    };
    output::backup_units(&units, written.as_deref(), cfg.json);
    Ok(Exit::Ok)
}
