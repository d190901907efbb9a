//! Streaming a checked archive into a helper container: the checked reader
//! writes a fresh tar of the entries it checked, and the engine extracts that
//! tar where the helper says. Used by staging (restores) and by the
//! throwaway volumes of `verify --deep` and `check --against snapshot`.

use std::sync::Arc;

use anyhow::{Context, Result};

use super::container::exec_ok;
use crate::docker::{self, Docker};
use crate::progress::Progress;
use crate::snapshot::archive::ChannelWriter;
use crate::snapshot::checked;
use crate::snapshot::manifest::{Layout, Manifest};
use crate::snapshot::store::Store;

/// Where the helper mounts the volume for a restore, where the archive is
/// uploaded, and where PGDATA ends up (all inside the helper).
pub(in crate::snapshot) fn restore_paths(
    m: &Manifest,
    pgdata_rel: &str,
) -> (String, String, String) {
    let join = |a: &str, b: &str| {
        if b.is_empty() {
            a.to_string()
        } else {
            format!("{a}/{b}")
        }
    };
    match &m.layout {
        Layout::Volume { root, .. } => {
            let mount = format!("/ward-restore/{root}");
            let pgdata = join(&mount, pgdata_rel);
            (mount, "/ward-restore".into(), pgdata)
        }
        Layout::Pgdata => {
            let mount = "/ward-restore/vol".to_string();
            let pgdata = join(&mount, pgdata_rel);
            (mount, pgdata.clone(), pgdata)
        }
    }
}

/// A checked archive on its way into a helper container: which archive,
/// which helper, and the progress stage it is shown under.
pub(in crate::snapshot) struct Upload<'a> {
    pub(in crate::snapshot) d: &'a Docker,
    pub(in crate::snapshot) helper: &'a str,
    pub(in crate::snapshot) store: &'a Store,
    pub(in crate::snapshot) m: &'a Manifest,
    pub(in crate::snapshot) progress: Arc<dyn Progress>,
    /// The progress stage's title.
    pub(in crate::snapshot) stage: &'a str,
}

/// Replaces the volume's contents with the upload's archive (already
/// verified), then gives them to `uid`:`gid` with PGDATA at mode 0700. The
/// helper mounts the volume.
pub(in crate::snapshot) async fn replace_contents(
    upload: Upload<'_>,
    pgdata_rel: &str,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let (d, helper) = (upload.d, upload.helper);
    let (mount, upload_to, pgdata) = restore_paths(upload.m, pgdata_rel);
    exec_ok(d, helper, &["find", &mount, "-mindepth", "1", "-delete"]).await?;
    exec_ok(d, helper, &["mkdir", "-p", &upload_to]).await?;
    stream_checked(upload, &upload_to).await?;
    let owner = format!("{uid}:{gid}");
    exec_ok(d, helper, &["chown", "-R", &owner, &mount]).await?;
    exec_ok(d, helper, &["chmod", "0700", &pgdata]).await?;
    Ok(())
}

/// Streams the archive through the checked reader (every entry and file
/// hash checked against the manifest) into the helper's `upload_to`.
pub(super) async fn stream_checked(upload: Upload<'_>, upload_to: &str) -> Result<()> {
    let Upload {
        d,
        helper,
        store,
        m,
        progress,
        stage,
    } = upload;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(16);
    let store2 = store.clone();
    let m2 = m.clone();
    progress.stage(stage, m.tar_bytes);
    let p2 = progress.clone();
    let checker = tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter::new(tx);
        let r = {
            let builder = tar::Builder::new(&mut w as &mut dyn std::io::Write);
            checked::check(
                &store2,
                &m2,
                checked::Destination::Tar(builder),
                p2.as_ref(),
            )
        };
        let r = match r {
            Ok(c) if c.problems.is_empty() => {
                use std::io::Write;
                w.flush().map(|_| ()).map_err(anyhow::Error::from)
            }
            Ok(c) => {
                let msg = c.problems.join("; ");
                w.fail(&msg);
                Err(crate::snapshot::Damaged(format!(
                    "snapshot {:?} failed verification, nothing was changed: {msg}",
                    m2.name
                ))
                .into())
            }
            Err(e) => {
                w.fail(&e.to_string());
                Err(e)
            }
        };
        drop(w);
        r
    });
    let body = tokio_stream_from(rx);
    let uploaded = docker::upload(d, helper, upload_to, body).await;
    let checked = checker.await.context("the archive reader failed")?;
    progress.finish();
    match (checked, uploaded) {
        // Damage found in the snapshot is the finding, whatever the engine said.
        (Err(e), _) if e.downcast_ref::<crate::snapshot::Damaged>().is_some() => Err(e),
        // The engine failed first (e.g. the volume is full): the reader
        // only saw the pipe close, so the engine's error is the cause.
        (_, Err(up)) => Err(up),
        (Err(e), Ok(())) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
