//! `ward snapshot verify`, with `--deep` (a throwaway server on a restored
//! copy).

use std::sync::Arc;

use anyhow::Result;

use super::{fast_url, store};
use crate::cli::SnapshotVerifyArgs;
use crate::config::Config;
use crate::error::Exit;
use crate::progress::Progress;
use crate::snapshot::{self, template};
use crate::{error, output};

/// Reads every entry of a stored snapshot against its manifest; `--deep`
/// also starts a server on a restored copy. A damaged snapshot exits 1.
pub(super) async fn verify(cfg: &Config, args: &SnapshotVerifyArgs) -> Result<Exit> {
    let store = store(cfg, &args.store)?;
    let manifest = store.load(&args.name)?;
    if args.deep && manifest.encryption.is_some() && !store.keys().has_identity() {
        return error::usage(format!(
            "snapshot {:?} is encrypted — --deep restores it, so pass --identity FILE (or set \
             WARD_AGE_IDENTITY)",
            args.name
        ));
    }
    let mut verified = match &manifest.template {
        Some(facts) => {
            let (url, _) =
                fast_url(cfg, None, manifest.source.container.as_deref(), "verifying").await?;
            template::ensure_ours(&url, &args.name, facts).await?;
            let problem = template::verify(&url, facts).await?;
            snapshot::Verified {
                name: args.name.clone(),
                ok: problem.is_none(),
                problems: problem.into_iter().collect(),
                entries: 0,
                bytes: manifest.total_bytes,
                deep: None,
                scope: "in-cluster copy",
            }
        }
        None => snapshot::verify(&store, &args.name, &output::Bar::bytes(cfg.quiet))?,
    };
    if args.deep && verified.ok && manifest.template.is_none() {
        let progress: Arc<dyn Progress> = Arc::new(output::Bar::bytes(cfg.quiet));
        let (store, name) = (store.clone(), args.name.clone());
        let deep = snapshot::shielded(move || async move {
            snapshot::deep_verify(&store, &name, progress).await
        })
        .await;
        match deep {
            Ok(msg) => verified.deep = Some(msg),
            // Bad input, a store another ward is writing to, a bucket that
            // does not answer: errors
            // (exit 2), not damage — the snapshot was not found wanting.
            Err(e) if error::is_error_not_finding(&e) => {
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
