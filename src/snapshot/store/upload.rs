//! Streaming an archive into a bucket while it is produced: segments of
//! [`SEGMENT`] bytes ([`super::segments`]), each one PUT, at most
//! [`IN_FLIGHT`] on the wire while the next one fills, so memory stays at a
//! few segments whatever the size and no local copy is made.
//!
//! The segments are a snapshot only once its manifest is written, after the
//! last one. Every upload first writes a marker object
//! (`.ward/uploads/<id>.json`: which archive, which process), removed once
//! the manifest is in place — or with the segments, when the create fails.
//! What a killed ward leaves (segments, the marker) is removed by the next
//! ward that takes the store's lock ([`clean_stale`]): while it holds the
//! lock no other ward is writing, so every marker is stale; an archive whose
//! manifest did land is kept, only its marker goes. Listings skip archives
//! that a marker names, so an interrupted upload is never listed.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use anyhow::Result;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::MANIFEST_EXT;
use super::remote::{PART_REQUEST, Remote, block_on};
use super::segments;

/// Bytes per segment: each is one request, and [`IN_FLIGHT`] + 1 of them
/// are the upload's memory.
pub(crate) const SEGMENT: usize = 16 * 1024 * 1024;
/// Segments uploading at once while the next one fills: four keep the
/// connection busy while a server writes (and hashes) earlier ones (~80 MiB
/// in all, far under the 200 MB target).
const IN_FLIGHT: usize = 4;
/// Where the markers of unfinished uploads live, relative to the prefix.
pub(super) const MARKERS: &str = ".ward/uploads";
/// Markers read per run, and the largest one read.
const MAX_MARKERS: usize = 1000;
const MAX_MARKER_BYTES: u64 = 64 * 1024;

/// What a marker records.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    /// The archive's file (or folder) name relative to the prefix.
    file: String,
    /// The multipart upload of an earlier ward's one-object archive.
    #[serde(default)]
    upload_id: String,
    pid: u32,
    #[serde(default)]
    host: String,
    started_at: chrono::DateTime<chrono::Utc>,
}

/// An archive being uploaded; removed on drop unless its manifest was
/// placed ([`Upload::settle`]) or may have been ([`Upload::keep`]).
pub(crate) struct Upload {
    remote: Arc<Remote>,
    name: String,
    marker: String,
    buf: Vec<u8>,
    /// Segments handed to the wire so far.
    sent: usize,
    in_flight: VecDeque<Receiver<std::result::Result<(), String>>>,
    finished: bool,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Upload({})", self.name)
    }
}

impl Upload {
    /// Starts the upload of snapshot `name`'s archive (its marker first).
    pub(super) fn begin(remote: Arc<Remote>, name: &str) -> Result<Upload> {
        let marker = format!("{MARKERS}/{}.json", super::super::new_id());
        let record = Marker {
            file: segments::folder(name),
            upload_id: String::new(),
            pid: std::process::id(),
            host: super::lock::host(),
            started_at: chrono::Utc::now(),
        };
        remote.put_small(&marker, serde_json::to_vec(&record)?, false)?;
        let up = Upload {
            remote,
            name: name.to_string(),
            marker,
            buf: Vec::with_capacity(SEGMENT),
            sent: 0,
            in_flight: VecDeque::new(),
            finished: false,
        };
        // On failure the drop removes the marker just written.
        super::super::fault("store:after-upload-marker")?;
        Ok(up)
    }

    /// Hands the buffered bytes to a segment upload; waits for the oldest
    /// when [`IN_FLIGHT`] are on the wire.
    fn send_segment(&mut self) -> io::Result<()> {
        if self.sent >= segments::MAX_SEGMENTS {
            return Err(io::Error::other(format!(
                "the archive is larger than ward's remote layout holds ({} segments of 16 MiB) \
                 — snapshot into a local store instead",
                segments::MAX_SEGMENTS
            )));
        }
        while self.in_flight.len() >= IN_FLIGHT {
            self.wait_oldest()?;
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(SEGMENT));
        let (s3, key) = (
            self.remote.s3.clone(),
            self.remote.key(&segments::segment(&self.name, self.sent)),
        );
        self.sent += 1;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let remote = self.remote.clone();
        super::remote::runtime().spawn(async move {
            let put =
                tokio::time::timeout(PART_REQUEST, s3.put(&key, PutPayload::from(data))).await;
            let r = match put {
                Ok(Ok(_)) => Ok(()),
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
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(io::Error::other(msg)),
            Err(_) => Err(io::Error::other("a segment upload was lost")),
        }
    }

    /// Uploads what is left and waits for every segment, then checks that
    /// the bucket holds exactly what was sent (`bytes` in all) and this
    /// upload's marker: a ward that took the store's lock over (an expired
    /// lease) removes the segments of uploads it takes for dead, and a
    /// manifest must never be written over a hole. The archive is stored,
    /// not yet a snapshot (its manifest comes next).
    pub(super) fn complete(&mut self, bytes: u64) -> Result<()> {
        if !self.buf.is_empty() || self.sent == 0 {
            self.send_segment()?;
        }
        while !self.in_flight.is_empty() {
            self.wait_oldest()?;
        }
        super::super::fault("store:before-complete")?;
        let stored = segments::list(&self.remote, &self.name)?;
        let total: u64 = stored.iter().map(|(_, n)| n).sum();
        if stored.len() != self.sent || total != bytes {
            anyhow::bail!(
                "the bucket holds {} segments ({total} bytes) of the {} ({bytes} bytes) ward \
                 uploaded for {:?} — another ward took the store's lock over and removed them? \
                 Nothing was named; run the create again",
                stored.len(),
                self.sent,
                self.name
            );
        }
        if self.remote.size(&self.marker)?.is_none() {
            anyhow::bail!(
                "the marker of the upload of {:?} was removed by another ward (it took the store's \
                 lock over); nothing was named — run the create again",
                self.name
            );
        }
        Ok(())
    }

    /// The manifest is in place: the marker goes (a failure to remove it is
    /// harmless — the next ward finds the manifest and removes only it).
    pub(super) fn settle(mut self) {
        self.finished = true;
        if let Err(e) = self.remote.delete(&self.marker) {
            tracing::warn!("{e:#} — the next ward removes the marker");
        }
    }

    /// Whether the manifest landed is unknown: archive and marker stay, and
    /// the next ward decides by whether the manifest is there.
    pub(super) fn keep(mut self) {
        self.finished = true;
    }
}

impl Write for Upload {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if crate::error::cancelled() {
            return Err(io::Error::other("interrupted"));
        }
        let room = SEGMENT - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= SEGMENT {
            self.send_segment()?;
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
        // Let the segments on the wire land first, so that all are removed
        // — unless the user pressed Ctrl-C: then only what landed goes, and
        // the marker stays for the next ward to finish the job.
        while !self.in_flight.is_empty() && !crate::error::cancelled() {
            let _ = self.wait_oldest();
        }
        let all_landed = self.in_flight.is_empty();
        let written: Vec<String> = (0..self.sent)
            .map(|i| segments::segment(&self.name, i))
            .collect();
        if self.remote.delete_all(&written).is_ok() && all_landed {
            let _ = self.remote.delete(&self.marker);
        }
    }
}

fn abort_multipart(remote: &Arc<Remote>, file: &str, id: &str) -> Result<()> {
    use object_store::multipart::MultipartStore;
    let (s3, key, id) = (remote.s3.clone(), remote.key(file), id.to_string());
    match block_on(Duration::from_secs(45), async move {
        s3.abort_multipart(&key, &id).await
    }) {
        Ok(Ok(())) | Ok(Err(object_store::Error::NotFound { .. })) => Ok(()),
        Ok(Err(e)) => Err(remote.explain("aborting an upload to", &e)),
        Err(t) => Err(remote.timed_out("aborting an upload to", t)),
    }
}

/// The markers of uploads in this store: (marker file, the snapshot name
/// it names, if it names one). Not trusted: a marker that names no valid
/// snapshot archive is only ever removed.
fn markers(remote: &Arc<Remote>) -> Result<Vec<(String, Option<Marker>)>> {
    let mut out = Vec::new();
    // A marker is a few hundred bytes, and a store has one per upload under
    // way or cut: more, or larger, was not written by ward and is not read
    // (the larger ones are removed unread).
    for (file, size) in remote.list(MARKERS)?.into_iter().take(MAX_MARKERS) {
        if size > MAX_MARKER_BYTES {
            out.push((file, None));
            continue;
        }
        let marker = remote
            .get_small(&file)?
            .and_then(|bytes| serde_json::from_slice::<Marker>(&bytes).ok())
            .filter(|m| {
                segments::archive_of(&m.file).is_some_and(|name| super::check_name(name).is_ok())
            });
        out.push((file, marker));
    }
    Ok(out)
}

/// Snapshots whose archive an upload marker names: in progress, or left by
/// a killed ward — listings skip them.
pub(super) fn uploading(remote: &Arc<Remote>) -> Result<Vec<String>> {
    Ok(markers(remote)?
        .into_iter()
        .filter_map(|(_, m)| Some(segments::archive_of(&m?.file)?.to_string()))
        .collect())
}

/// Removes what dead wards left (call only under the store's lock): the
/// archives their markers name unless a manifest made them snapshots, and
/// the markers; returns the archives removed, for a note.
pub(super) fn clean_stale(remote: &Arc<Remote>) -> Result<Vec<String>> {
    let mut cleaned = Vec::new();
    for (file, marker) in markers(remote)? {
        if let Some(m) = &marker
            && super::lock::alive_here(&m.host, m.pid)
        {
            // A live ward of this host is still uploading (its lock was
            // taken over after all): its upload is not ours to touch.
            continue;
        }
        if let Some(m) = marker
            && let Some(name) = segments::archive_of(&m.file)
        {
            if !m.upload_id.is_empty() {
                match abort_multipart(remote, &m.file, &m.upload_id) {
                    Ok(()) => cleaned.push(m.file),
                    Err(e) => tracing::warn!("{e:#} — the marker is removed all the same"),
                }
            } else if remote.size(&format!("{name}{MANIFEST_EXT}"))?.is_none() {
                segments::remove(remote, name)?;
                cleaned.push(m.file);
            }
        }
        remote.delete(&file)?;
    }
    Ok(cleaned)
}
