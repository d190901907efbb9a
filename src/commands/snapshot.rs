//! `ward snapshot …`: resolve the store and the target, run the domain, hand
//! the result to `output`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use crate::cli::{
    SnapshotArgs, SnapshotCommand, SnapshotCopyArgs, SnapshotCreateArgs, SnapshotDeleteArgs,
    SnapshotPruneArgs, SnapshotRestoreArgs, SnapshotVerifyArgs, StoreArgs,
};
use crate::config::Config;
use crate::error::Exit;
use crate::progress::Progress;
use crate::snapshot::{
    self, CreateOptions, ForDeletion, Method, RestoreOptions, retention, store::Store, template,
};
use crate::target::{self, TargetSpec};
use crate::{error, output};

/// The default store, relative to the current directory.
pub const DEFAULT_STORE: &str = ".ward/snapshots";

pub(crate) fn store(cfg: &Config, args: &StoreArgs) -> Result<Store> {
    let dir = args
        .store
        .clone()
        .or_else(|| cfg.file.snapshot.store.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE));
    store_at(cfg, args, &dir)
}

/// The store at `dir` with its keys: recipients (flags, else ward.toml) to
/// encrypt new archives to, the identity (flag/env, else ward.toml) that
/// opens encrypted ones, and whether the store requires encryption.
pub(crate) fn store_at(cfg: &Config, args: &StoreArgs, dir: &std::path::Path) -> Result<Store> {
    let file = &cfg.file.store;
    let (encrypt_to, recipients_files) = (&args.encrypt_to, &args.recipients_files);
    let recipients = if encrypt_to.is_empty() && recipients_files.is_empty() {
        file.encrypt_to.clone()
    } else {
        encrypt_to.clone()
    };
    let files = if encrypt_to.is_empty() && recipients_files.is_empty() {
        file.recipients_file.iter().cloned().collect()
    } else {
        recipients_files.clone()
    };
    let keys = snapshot::crypt::Keys::new(
        &recipients,
        &files,
        args.identity.clone().or_else(|| file.identity.clone()),
        file.require_encryption,
    )?;
    Ok(Store::open(dir)?.with_keys(keys))
}

/// Where a fast snapshot's database is: --database-url, else the container
/// of the target (or the one the snapshot was taken from), through its
/// published port. Returns the URL and the container's name.
pub(crate) async fn fast_url(
    cfg: &Config,
    target: Option<&TargetSpec>,
    from: Option<&str>,
    what: &str,
) -> Result<(String, Option<String>)> {
    if let Some(url) = &cfg.database_url {
        return Ok((url.clone(), None));
    }
    let container = if let Some(name) = from {
        let docker = crate::docker::connect().await?;
        crate::docker::inspect_container(&docker, name).await?
    } else if let Some(t) = target {
        match target::resolve(&cfg.snapshot_target(t), &std::env::current_dir()?).await {
            Ok(target::Target::Volume(v)) => v.container.clone(),
            _ => None,
        }
    } else {
        None
    };
    match container {
        Some(c) => Ok((template::container_url(&c)?, Some(c.name))),
        None => Ok((template::require_url(None, what)?, None)),
    }
}

fn labels(raw: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for l in raw {
        match l.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => {
                return error::usage(format!(
                    "--label {l:?} is not KEY=VALUE — e.g. --label ticket=OPS-12"
                ));
            }
        }
    }
    Ok(out)
}

pub async fn run(cfg: &Config, args: &SnapshotArgs) -> Result<Exit> {
    match &args.command {
        SnapshotCommand::Create(a) if a.fast => create_fast(cfg, a).await,
        SnapshotCommand::Create(a) => create(cfg, a).await,
        SnapshotCommand::List(s) => {
            output::snapshot_list(&store(cfg, s)?.list()?, cfg.json);
            Ok(Exit::Ok)
        }
        SnapshotCommand::Show(a) => {
            output::snapshot_show(&store(cfg, &a.store)?.load(&a.name)?, cfg.json);
            Ok(Exit::Ok)
        }
        SnapshotCommand::Delete(a) => delete(cfg, a).await,
        SnapshotCommand::Verify(a) => verify(cfg, a).await,
        SnapshotCommand::Restore(a) if a.previous => restore_previous(cfg, a).await,
        SnapshotCommand::Restore(a) => restore(cfg, a).await,
        SnapshotCommand::Recover(a) => {
            let target =
                target::resolve(&cfg.snapshot_target(&a.target), &std::env::current_dir()?).await?;
            let done =
                snapshot::shielded(move || async move { snapshot::recover(&target).await }).await?;
            let done = done
                .as_deref()
                .map(|d| d.strip_prefix("note: ").unwrap_or(d));
            output::snapshot_recovered(done, cfg.json);
            Ok(Exit::Ok)
        }
        SnapshotCommand::Prune(a) => prune(cfg, a).await,
        SnapshotCommand::Copy(a) => copy(cfg, a).await,
    }
}

/// Restores replace data: without `--yes` there must be a terminal to ask on.
fn require_confirmation_channel(yes: bool) -> Result<()> {
    if !yes && !output::can_prompt() {
        return error::usage(
            "restore replaces data and needs confirmation, but there is no terminal to ask on — \
             pass --yes to confirm",
        );
    }
    Ok(())
}

async fn create_fast(cfg: &Config, a: &SnapshotCreateArgs) -> Result<Exit> {
    let store = store(cfg, &a.store)?;
    let (url, container) = fast_url(cfg, Some(&a.target), None, "taking").await?;
    let url = match &a.database {
        Some(db) => template::with_database(&url, db),
        None => url,
    };
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| format!("fast-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S")));
    let mut labels = labels(&a.labels)?;
    if a.persist {
        // The durable copy first: if it fails, no fast snapshot claims a link to it.
        let durable = format!("{name}-durable");
        let target =
            target::resolve(&cfg.snapshot_target(&a.target), &std::env::current_dir()?).await?;
        let opts = CreateOptions {
            name: Some(durable.clone()),
            method: Method::Cold,
            stop_timeout: cfg.snapshot_stop_timeout(a.stop_timeout),
            labels: [("ward.fast".to_string(), name.clone())].into(),
        };
        let progress: Arc<dyn Progress> = Arc::new(output::Bar::bytes(cfg.quiet));
        let st = store.clone();
        let created = snapshot::shielded(move || async move {
            snapshot::create(&st, &target, &opts, progress).await
        })
        .await?;
        output::snapshot_created(&created, cfg.json);
        labels.insert("ward.persisted".into(), durable);
    }
    let m = template::create_snapshot(&store, &url, &name, labels, a.force, container).await?;
    output::fast_snapshot_created(&m, cfg.json);
    Ok(Exit::Ok)
}

async fn create(cfg: &Config, a: &SnapshotCreateArgs) -> Result<Exit> {
    let store = store(cfg, &a.store)?;
    let opts = CreateOptions {
        name: a.name.clone(),
        method: if a.online {
            Method::Online
        } else {
            Method::Cold
        },
        stop_timeout: cfg.snapshot_stop_timeout(a.stop_timeout),
        labels: labels(&a.labels)?,
    };
    if let Some(n) = &opts.name {
        snapshot::store::check_name(n)?;
    }
    let target =
        target::resolve(&cfg.snapshot_target(&a.target), &std::env::current_dir()?).await?;
    let progress: Arc<dyn Progress> = Arc::new(output::Bar::bytes(cfg.quiet));
    let created = snapshot::shielded(move || async move {
        snapshot::create(&store, &target, &opts, progress).await
    })
    .await?;
    output::snapshot_created(&created, cfg.json);
    Ok(Exit::Ok)
}

/// Deletes a snapshot; one whose manifest is damaged (unreadable, or bound
/// to another name) is deleted by its name alone — its two files in the
/// store — and nothing the manifest says is followed; so is an archive whose
/// manifest was never written.
async fn delete(cfg: &Config, a: &SnapshotDeleteArgs) -> Result<Exit> {
    let store = store(cfg, &a.store)?;
    let found = snapshot::for_deletion(&store, &a.name)?;
    let question = match &found {
        ForDeletion::Whole(_) => format!("Delete snapshot {:?}?", a.name),
        ForDeletion::Damaged(why) => format!(
            "Snapshot {:?} is damaged ({why}). Delete its files from {}?",
            a.name,
            store.location()
        ),
        ForDeletion::Incomplete => format!(
            "Snapshot {:?} is incomplete (its archive has no manifest: a create was \
             interrupted). Delete the archive from {}?",
            a.name,
            store.location()
        ),
    };
    if !output::confirm(&question, a.yes)? {
        return error::usage("delete cancelled: nothing was changed");
    }
    let _lock = store.lock()?;
    match &found {
        ForDeletion::Whole(m) => {
            if let Some(facts) = &m.template {
                let (url, _) =
                    fast_url(cfg, None, m.source.container.as_deref(), "deleting").await?;
                template::delete(&url, &a.name, facts).await?;
            }
        }
        // Asked before the lock was held: a create that was still running
        // may have placed the manifest since, and a whole snapshot is not
        // deleted on an answer about an incomplete one.
        ForDeletion::Incomplete if !store.incomplete(&a.name)? => {
            return error::usage(format!(
                "snapshot {:?} was completed by a running create meanwhile — nothing was deleted; \
                 run the delete again to delete it",
                a.name
            ));
        }
        ForDeletion::Incomplete => {}
        ForDeletion::Damaged(_) => output::note(
            "a damaged manifest is not trusted: if it was a --fast snapshot, its in-cluster \
             copy (a database named ward_snap_…) is left for you to drop",
        ),
    }
    store.delete(&a.name)?;
    output::snapshot_deleted(&a.name, cfg.json);
    Ok(Exit::Ok)
}

async fn verify(cfg: &Config, a: &SnapshotVerifyArgs) -> Result<Exit> {
    let store = store(cfg, &a.store)?;
    let manifest = store.load(&a.name)?;
    if a.deep && manifest.encryption.is_some() && !store.keys().has_identity() {
        return error::usage(format!(
            "snapshot {:?} is encrypted — --deep restores it, so pass --identity FILE (or set \
             WARD_AGE_IDENTITY)",
            a.name
        ));
    }
    let mut verified = match &manifest.template {
        Some(facts) => {
            let (url, _) =
                fast_url(cfg, None, manifest.source.container.as_deref(), "verifying").await?;
            template::ensure_ours(&url, &a.name, facts).await?;
            let problem = template::verify(&url, facts).await?;
            snapshot::Verified {
                name: a.name.clone(),
                ok: problem.is_none(),
                problems: problem.into_iter().collect(),
                entries: 0,
                bytes: manifest.total_bytes,
                deep: None,
                scope: "in-cluster copy",
            }
        }
        None => snapshot::verify(&store, &a.name, &output::Bar::bytes(cfg.quiet))?,
    };
    if a.deep && verified.ok && manifest.template.is_none() {
        let progress: Arc<dyn Progress> = Arc::new(output::Bar::bytes(cfg.quiet));
        let (st, name) = (store.clone(), a.name.clone());
        let deep =
            snapshot::shielded(
                move || async move { snapshot::deep_verify(&st, &name, progress).await },
            )
            .await;
        match deep {
            Ok(msg) => verified.deep = Some(msg),
            // Bad input, or a store another ward is writing to: errors
            // (exit 2), not damage — the snapshot was not found wanting.
            Err(e)
                if e.downcast_ref::<error::UsageError>().is_some()
                    || e.downcast_ref::<error::Busy>().is_some() =>
            {
                return Err(e);
            }
            Err(e) => {
                verified.ok = false;
                verified.problems.push(format!("deep check failed: {e:#}"));
            }
        }
    }
    output::snapshot_verified(&verified, cfg.json);
    Ok(if verified.ok {
        Exit::Ok
    } else {
        Exit::Findings
    })
}

async fn restore_previous(cfg: &Config, a: &SnapshotRestoreArgs) -> Result<Exit> {
    let target =
        target::resolve(&cfg.snapshot_target(&a.target), &std::env::current_dir()?).await?;
    require_confirmation_channel(a.yes)?;
    let yes = a.yes;
    let confirm: snapshot::Confirm = Arc::new(move |q: &str| output::confirm(q, yes));
    let progress: Arc<dyn Progress> = Arc::new(output::Bar::bytes(cfg.quiet));
    let opts = RestoreOptions {
        safety: false,
        stop_timeout: cfg.snapshot_stop_timeout(a.stop_timeout),
    };
    let restored = snapshot::shielded(move || async move {
        snapshot::restore_previous(&target, &opts, confirm, progress).await
    })
    .await?;
    output::snapshot_restored(&restored, cfg.json);
    Ok(Exit::Ok)
}

/// The migrations directory a restore compares the snapshot's head with:
/// `--migrations`, else ward.toml's `[snapshot] migrations`, else the usual
/// places. A configured path that is not a directory is an error, not a
/// silent skip.
fn migrations_dir(
    cfg: &Config,
    a: &SnapshotRestoreArgs,
    cwd: &std::path::Path,
) -> Result<Option<PathBuf>> {
    if let Some(dir) = &a.migrations {
        return Ok(Some(dir.clone()));
    }
    if let Some(configured) = &cfg.file.snapshot.migrations {
        let dir = cwd.join(configured);
        if !dir.is_dir() {
            return error::usage(format!(
                "ward.toml's [snapshot] migrations = {:?} is not a directory ({}) — fix the \
                 path or remove the key",
                configured.display(),
                dir.display()
            ));
        }
        return Ok(Some(dir));
    }
    Ok(["migrations", "db/migrations"]
        .iter()
        .map(|d| cwd.join(d))
        .find(|d| d.is_dir()))
}

async fn restore(cfg: &Config, a: &SnapshotRestoreArgs) -> Result<Exit> {
    let store = store(cfg, &a.store)?;
    let name = a.name.clone().unwrap_or_default();
    let m = store.load(&name)?;
    if let Some(facts) = &m.template {
        return restore_fast(cfg, a, &name, &m, facts).await;
    }
    let cwd = std::env::current_dir()?;
    let mut sp = cfg.snapshot_target(&a.target);
    if !sp.names_target() {
        // Default: back where it came from, if that still exists.
        if let Some(c) = &m.source.container {
            sp.container = Some(c.clone());
        } else if let Some(d) = &m.source.datadir {
            sp.datadir = Some(PathBuf::from(d));
        }
    }
    let target = target::resolve(&sp, &cwd).await?;
    if let Some(dir) = &migrations_dir(cfg, a, &cwd)? {
        for w in snapshot::migration_warnings(&m, dir) {
            output::note(&w);
        }
    }
    let keep_previous = a.keep_previous;
    let opts = RestoreOptions {
        safety: a.safety,
        stop_timeout: cfg.snapshot_stop_timeout(a.stop_timeout),
    };
    require_confirmation_channel(a.yes)?;
    let yes = a.yes;
    let confirm: snapshot::Confirm = Arc::new(move |q: &str| output::confirm(q, yes));
    let progress: Arc<dyn Progress> = Arc::new(output::Bar::bytes(cfg.quiet));
    let result = snapshot::shielded(move || async move {
        snapshot::restore_keeping(
            &store,
            &name,
            &target,
            &opts,
            keep_previous,
            confirm,
            progress,
        )
        .await
    })
    .await;
    match result {
        Ok(r) => {
            output::snapshot_restored(&r, cfg.json);
            Ok(Exit::Ok)
        }
        Err(e) if e.downcast_ref::<snapshot::Damaged>().is_some() => {
            output::error(&e);
            Ok(Exit::Findings)
        }
        Err(e) => Err(e),
    }
}

async fn restore_fast(
    cfg: &Config,
    a: &SnapshotRestoreArgs,
    name: &str,
    m: &snapshot::manifest::Manifest,
    facts: &template::TemplateFacts,
) -> Result<Exit> {
    let (url, _) = fast_url(cfg, None, m.source.container.as_deref(), "restoring").await?;
    template::ensure_ours(&url, name, facts).await?;
    require_confirmation_channel(a.yes)?;
    let question = format!(
        "Replace database {} with snapshot {name:?}?",
        facts.source_database
    );
    if !output::confirm(&question, a.yes)? {
        return error::usage("restore cancelled: nothing was changed");
    }
    let r = template::restore(&url, facts, a.force).await?;
    output::fast_snapshot_restored(name, &r, cfg.json);
    Ok(Exit::Ok)
}

/// Prune: the domain decides, asks through `approve` and deletes, all under
/// one store lock; fast snapshots' in-cluster copies go with their manifests.
async fn prune(cfg: &Config, a: &SnapshotPruneArgs) -> Result<Exit> {
    let store = store(cfg, &a.store)?;
    let policy = retention::Policy {
        keep_last: a.keep_last,
        keep_daily: a.keep_daily,
        keep_weekly: a.keep_weekly,
        keep_monthly: a.keep_monthly,
    };
    if policy == retention::Policy::default() {
        // With no policy, "keep only the newest" would delete almost
        // everything: a typo must not do that.
        return error::usage(
            "prune needs a retention policy and none was given, so nothing was deleted — \
             pass --keep-last N, --keep-daily N, --keep-weekly N and/or --keep-monthly N \
             (add --dry-run to see the effect first)",
        );
    }
    let yes = a.yes;
    let dir = store.location().to_string();
    let approve = |doomed: usize| -> Result<bool> {
        if !yes && !output::can_prompt() {
            return error::usage(format!(
                "prune would delete {doomed} snapshot(s) and needs confirmation, but there \
                 is no terminal to ask on — pass --yes to confirm (or --dry-run to see which)"
            ));
        }
        output::confirm(&format!("Delete {doomed} snapshot(s) from {dir}?"), yes)
    };
    let drop_copy = async |m: &snapshot::manifest::Manifest| -> Result<()> {
        if let Some(facts) = &m.template {
            let (url, _) = fast_url(cfg, None, m.source.container.as_deref(), "pruning").await?;
            template::delete(&url, &m.name, facts).await?;
        }
        Ok(())
    };
    let plan = if a.dry_run {
        snapshot::Pruning::DryRun
    } else {
        snapshot::Pruning::Delete
    };
    let decisions = snapshot::prune(&store, policy, plan, approve, drop_copy).await?;
    output::snapshot_pruned(&decisions, a.dry_run, cfg.json);
    Ok(Exit::Ok)
}

/// Copies a snapshot between stores (checked on arrival).
async fn copy(cfg: &Config, a: &SnapshotCopyArgs) -> Result<Exit> {
    // Flags only: WARD_AGE_RECIPIENTS exported for the creates of a backup
    // host must not stop its copies.
    let from_env = std::env::var_os("WARD_AGE_RECIPIENTS").is_some();
    if (!a.store.encrypt_to.is_empty() && !from_env) || !a.store.recipients_files.is_empty() {
        return error::usage(
            "copy keeps an archive as it is stored (encrypted to its own recipients, or not at \
             all) and takes no --encrypt-to / --recipients-file — \
             to encrypt for other keys, restore and take a new snapshot",
        );
    }
    let from = match &a.from {
        Some(dir) => store_at(cfg, &a.store, dir)?,
        None => store(cfg, &a.store)?,
    };
    let to = store_at(cfg, &a.store, &a.to)?;
    let name = a.name.clone();
    let quiet = cfg.quiet;
    let result = snapshot::shielded(move || async move {
        tokio::task::spawn_blocking(move || {
            snapshot::copy::copy(&from, &to, &name, &output::Bar::bytes(quiet))
        })
        .await?
    })
    .await;
    match result {
        Ok(c) => {
            output::snapshot_copied(&c, cfg.json);
            Ok(Exit::Ok)
        }
        Err(e) if e.downcast_ref::<snapshot::Damaged>().is_some() => {
            output::error(&e);
            Ok(Exit::Findings)
        }
        Err(e) => Err(e),
    }
}
