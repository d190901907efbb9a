//! Streaming an archive into a bucket while it is produced: an S3 multipart
//! upload, parts of [`PART`] bytes, at most [`IN_FLIGHT`] on the wire, so
//! memory stays at a few parts whatever the size and no local copy is made.
//!
//! The object only appears when the upload is completed, at its final name
//! (`<name>.tar.zst`); the manifest follows, so a snapshot whose upload was
//! interrupted is never listed. An upload that fails is aborted. One from a
//! ward that was killed cannot be aborted by it: `object_store` has no call
//! that lists a bucket's unfinished uploads, so every upload first writes a
//! marker object (`.ward/uploads/<id>.json`: key and upload id), removed when
//! the upload is completed or aborted; the next ward that takes the store's
//! lock aborts the uploads of the markers it finds (while it holds the lock
//! no other ward is writing, so every marker is stale).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use anyhow::Result;
use object_store::multipart::{MultipartStore, PartId};
use object_store::{MultipartId, PutPayload};
use serde::{Deserialize, Serialize};

use super::remote::{PART_REQUEST, Remote, block_on};

/// Bytes per part (S3 wants ≥ 5 MiB but the last; 10 000 parts → 160 GiB).
pub(crate) const PART: usize = 16 * 1024 * 1024;
/// Parts uploading at once while the next one fills: four keep the
/// connection busy while a server writes (and hashes) earlier parts — on the
/// bench's local s3s-fs, a create took 1.15–1.19 × a local create with two,
/// 1.00–1.07 × with four (~64 MiB more memory, still far under the 200 MB
/// target); larger parts or unsigned payloads gained nothing more there.
const IN_FLIGHT: usize = 4;
/// Where the markers of unfinished uploads live, relative to the prefix.
pub(super) const MARKERS: &str = ".ward/uploads";

/// What a marker records.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    /// The archive's file name relative to the prefix.
    file: String,
    upload_id: String,
    pid: u32,
    #[serde(default)]
    host: String,
    started_at: chrono::DateTime<chrono::Utc>,
}

/// A multipart upload in progress; aborted on drop unless completed.
pub(crate) struct Upload {
    remote: Arc<Remote>,
    file: String,
    id: MultipartId,
    marker: String,
    buf: Vec<u8>,
    parts: Vec<PartId>,
    in_flight: VecDeque<Receiver<std::result::Result<PartId, String>>>,
    finished: bool,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Upload({})", self.file)
    }
}

impl Upload {
    /// Starts the upload of `file` (its marker first).
    pub(super) fn begin(remote: Arc<Remote>, file: &str) -> Result<Upload> {
        let (s3, key) = (remote.s3.clone(), remote.key(file));
        let id = match block_on(Duration::from_secs(45), async move {
            s3.create_multipart(&key).await
        }) {
            Ok(Ok(id)) => id,
            Ok(Err(e)) => return Err(remote.explain("starting an upload to", &e)),
            Err(t) => return Err(remote.timed_out("starting an upload to", t)),
        };
        let marker = format!("{MARKERS}/{}.json", super::super::new_id());
        let record = Marker {
            file: file.to_string(),
            upload_id: id.clone(),
            pid: std::process::id(),
            host: super::lock::host(),
            started_at: chrono::Utc::now(),
        };
        let up = Upload {
            remote: remote.clone(),
            file: file.to_string(),
            id,
            marker: marker.clone(),
            buf: Vec::with_capacity(PART),
            parts: Vec::new(),
            in_flight: VecDeque::new(),
            finished: false,
        };
        // On failure the drop aborts the upload just begun.
        remote.put_small(&marker, serde_json::to_vec(&record)?, false)?;
        super::super::fault("store:after-upload-marker")?;
        Ok(up)
    }

    /// Hands the buffered bytes to a part upload; waits for the oldest when
    /// [`IN_FLIGHT`] are on the wire.
    fn send_part(&mut self) -> io::Result<()> {
        while self.in_flight.len() >= IN_FLIGHT {
            self.wait_oldest()?;
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(PART));
        let idx = self.parts.len() + self.in_flight.len();
        let (s3, key, id) = (
            self.remote.s3.clone(),
            self.remote.key(&self.file),
            self.id.clone(),
        );
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let remote = self.remote.clone();
        super::remote::runtime().spawn(async move {
            let put = tokio::time::timeout(
                PART_REQUEST,
                s3.put_part(&key, &id, idx, PutPayload::from(data)),
            )
            .await;
            let r = match put {
                Ok(Ok(part)) => Ok(part),
                Ok(Err(e)) => Err(format!("{:#}", remote.explain("uploading to", &e))),
                Err(_) => Err(format!(
                    "{:#}",
                    remote.timed_out("uploading to", PART_REQUEST)
                )),
            };
            let _ = tx.send(r);
        });
        self.in_flight.push_back(rx);
        Ok(())
    }

    fn wait_oldest(&mut self) -> io::Result<()> {
        let Some(rx) = self.in_flight.pop_front() else {
            return Ok(());
        };
        match rx.recv() {
            Ok(Ok(part)) => {
                self.parts.push(part);
                Ok(())
            }
            Ok(Err(msg)) => Err(io::Error::other(msg)),
            Err(_) => Err(io::Error::other("a part upload was lost")),
        }
    }

    /// Uploads what is left and completes the upload: the object exists now.
    pub(super) fn complete(mut self) -> Result<()> {
        if !self.buf.is_empty() || self.parts.len() + self.in_flight.len() == 0 {
            self.send_part()?;
        }
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        super::super::fault("store:before-complete")?;
        let (s3, key, id, parts) = (
            self.remote.s3.clone(),
            self.remote.key(&self.file),
            self.id.clone(),
            std::mem::take(&mut self.parts),
        );
        let completing = std::time::Instant::now();
        let parts_count = parts.len();
        match block_on(PART_REQUEST, async move {
            s3.complete_multipart(&key, &id, parts).await
        }) {
            // The service assembles the object now; some (s3s-fs) re-read
            // and rewrite every part, after the last one arrived (`-v`).
            Ok(Ok(_)) => tracing::info!(
                "completing the upload ({parts_count} parts): {:.2?}",
                completing.elapsed()
            ),
            Ok(Err(e)) => return Err(self.remote.explain("finishing an upload to", &e)),
            Err(t) => return Err(self.remote.timed_out("finishing an upload to", t)),
        }
        self.finished = true;
        if let Err(e) = self.remote.delete(&self.marker) {
            tracing::warn!("{e:#} — the next ward removes the marker");
        }
        Ok(())
    }
}

impl Write for Upload {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if crate::error::cancelled() {
            return Err(io::Error::other("interrupted"));
        }
        let room = PART - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= PART {
            self.send_part()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Let the parts on the wire end first (S3 may keep a part that
        // lands after the abort) — unless the user pressed Ctrl-C: then the
        // abort goes at once (a stray part is dropped by the next run's
        // abort of this marker, or the bucket's lifecycle rule).
        while !self.in_flight.is_empty() && !crate::error::cancelled() {
            let _ = self.wait_oldest();
        }
        if abort(&self.remote, &self.file, &self.id).is_ok() {
            let _ = self.remote.delete(&self.marker);
        }
    }
}

fn abort(remote: &Arc<Remote>, file: &str, id: &str) -> Result<()> {
    let (s3, key, id) = (remote.s3.clone(), remote.key(file), id.to_string());
    match block_on(Duration::from_secs(45), async move {
        s3.abort_multipart(&key, &id).await
    }) {
        Ok(Ok(())) | Ok(Err(object_store::Error::NotFound { .. })) => Ok(()),
        Ok(Err(e)) => Err(remote.explain("aborting an upload to", &e)),
        Err(t) => Err(remote.timed_out("aborting an upload to", t)),
    }
}

/// Aborts the uploads that dead wards left (call only under the store's
/// lock); returns what was cleaned, for a note.
pub(super) fn abort_stale(remote: &Arc<Remote>) -> Result<Vec<String>> {
    let mut cleaned = Vec::new();
    for (file, _) in remote.list(MARKERS)? {
        let Some(bytes) = remote.get_small(&file)? else {
            continue;
        };
        // A marker is not trusted: only an archive name of this store is
        // ever aborted.
        let marker = serde_json::from_slice::<Marker>(&bytes).ok();
        if let Some(m) = &marker
            && super::lock::alive_here(&m.host, m.pid)
        {
            // A live ward of this host is still uploading (its lock was
            // taken over after all): its upload is not ours to abort.
            continue;
        }
        if let Some(m) = marker
            && let Some(name) = m.file.strip_suffix(super::ARCHIVE_EXT)
            && super::check_name(name).is_ok()
        {
            abort(remote, &m.file, &m.upload_id)?;
            cleaned.push(m.file);
        }
        remote.delete(&file)?;
    }
    Ok(cleaned)
}
