//! `ward snapshot create`, with `--fast` (an in-cluster template copy,
//! optionally `--persist`ed as a durable snapshot too).

use std::sync::Arc;

use anyhow::Result;

use super::{fast_url, labels, store};
use crate::cli::SnapshotCreateArgs;
use crate::config::Config;
use crate::error::Exit;
use crate::output;
use crate::progress::Progress;
use crate::snapshot::{self, CreateOptions, Method, template};
use crate::target;

/// `--fast`: a template copy of one database inside its own cluster.
pub(super) async fn create_fast(cfg: &Config, args: &SnapshotCreateArgs) -> Result<Exit> {
    let store = store(cfg, &args.store)?;
    let (url, container) = fast_url(cfg, Some(&args.target), None, "taking").await?;
    let url = match &args.database {
        Some(db) => template::with_database(&url, db),
        None => url,
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("fast-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S")));
    let mut labels = labels(&args.labels)?;
    if args.persist {
        // The durable copy first: if it fails, no fast snapshot claims a link to it.
        let durable = format!("{name}-durable");
        let target = target::resolve(
            &cfg.snapshot_target(&args.target),
            &std::env::current_dir()?,
        )
        .await?;
        let opts = CreateOptions {
            name: Some(durable.clone()),
            method: Method::Cold,
            stop_timeout: cfg.snapshot_stop_timeout(args.stop_timeout),
            labels: [("ward.fast".to_string(), name.clone())].into(),
        };
        let progress: Arc<dyn Progress> = Arc::new(output::Bar::bytes(cfg.quiet));
        let durable_store = store.clone();
        let created = snapshot::shielded(move || async move {
            snapshot::create(&durable_store, &target, &opts, progress).await
        })
        .await?;
        output::snapshot_created(&created, cfg.json);
        labels.insert("ward.persisted".into(), durable);
    }
    let manifest =
        template::create_snapshot(&store, &url, &name, labels, args.force, container).await?;
    output::fast_snapshot_created(&manifest, cfg.json);
    Ok(Exit::Ok)
}

/// A volume or data-directory snapshot, cold or `--online`.
pub(super) async fn create(cfg: &Config, args: &SnapshotCreateArgs) -> Result<Exit> {
    let store = store(cfg, &args.store)?;
    let opts = CreateOptions {
        name: args.name.clone(),
        method: if args.online {
            Method::Online
        } else {
            Method::Cold
        },
        stop_timeout: cfg.snapshot_stop_timeout(args.stop_timeout),
        labels: labels(&args.labels)?,
    };
    if let Some(n) = &opts.name {
        snapshot::store::check_name(n)?;
    }
    let target = target::resolve(
        &cfg.snapshot_target(&args.target),
        &std::env::current_dir()?,
    )
    .await?;
    let progress: Arc<dyn Progress> = Arc::new(output::Bar::bytes(cfg.quiet));
    let created = snapshot::shielded(move || async move {
        snapshot::create(&store, &target, &opts, progress).await
    })
    .await?;
    output::snapshot_created(&created, cfg.json);
    Ok(Exit::Ok)
}
