//! Archive streams: tar in, zstd out (content checksum on, multithreaded),
//! with a SHA-256 of every file and of the archive. The archive opens with a
//! zstd skippable frame that carries the snapshot's id, which binds the file
//! to its manifest (a renamed or swapped archive is caught by `verify`).
//! Reading archives back is [`super::checked`].
//!
//! `streams.rs` holds the byte plumbing around the archive (hashing readers
//! and writers, the tally of a stored archive, the channel ends between the
//! blocking tar side and the async engine side).

mod streams;

pub(crate) use streams::Tally;
pub(crate) use streams::{
    ChannelReader, ChannelWriter, ChunkWriter, HashReader, HashWriter, ReadAhead,
};

use std::collections::BTreeMap;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::manifest::{Entry, Kind};
use crate::progress::Progress;

/// zstd level: level 3 buys ≈1 % size for ≈2× CPU on this data (reference §9.4).
pub(crate) const LEVEL: i32 = 1;
const BUF: usize = 256 * 1024;

/// Reads from `inner` and copies every byte read into `sink`; counts them.
struct Tee<'a, R> {
    inner: R,
    sink: Option<&'a mut dyn Write>,
    count: u64,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if crate::error::cancelled() {
            return Err(io::Error::other("interrupted")); // not Interrupted: io::copy retries that
        }
        let n = self.inner.read(buf)?;
        if let Some(s) = self.sink.as_mut() {
            s.write_all(&buf[..n])?;
        }
        self.count += n as u64;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// What writing an archive produced.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub entries: Vec<Entry>,
    pub file_count: u64,
    pub total_bytes: u64,
    pub tar_bytes: u64,
    /// Contents of PGDATA/PG_VERSION.
    pub pg_version: Option<String>,
    /// Owner of the PGDATA directory entry.
    pub owner: Option<(u32, u32)>,
    /// The snapshot id written into the archive's leading frame.
    pub id: String,
    /// The volume root holds the `data -> .` link of early PG 18 images
    /// ([`DATA_LINK`]); recorded in the manifest's layout.
    pub data_link: bool,
}

/// The one symbolic link ward accepts: `data -> .` at the volume root, which
/// the official `postgres:18.0` image's entrypoint left in volumes it
/// initialised (docker-library/postgres#1372, #1394; later images dropped
/// it). Its name, relative to the volume root, and its target.
pub(crate) const DATA_LINK: (&str, &str) = ("data", ".");

/// The path of the [`DATA_LINK`] in an archive of a volume whose PGDATA is
/// at `pgdata` ("root" or "root/…"), or None for archives of PGDATA alone.
pub(crate) fn data_link_path(pgdata: &str) -> Option<String> {
    let root = pgdata.split('/').next().filter(|r| !r.is_empty())?;
    Some(format!("{root}/{}", DATA_LINK.0))
}

/// Magic of the zstd skippable frame that carries the snapshot id (any
/// decoder skips it; `zstd -d` too).
pub(crate) const ID_FRAME_MAGIC: u32 = 0x184D_2A5B;
/// What the id frame's payload starts with.
pub(crate) const ID_FRAME_TAG: &[u8] = b"ward-snapshot-id:";

/// The skippable frame that carries `id`.
pub fn id_frame(id: &str) -> Vec<u8> {
    let payload = [ID_FRAME_TAG, id.as_bytes()].concat();
    let mut out = ID_FRAME_MAGIC.to_le_bytes().to_vec();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn entry_path(raw: &[u8]) -> Result<String> {
    let s = std::str::from_utf8(raw).context("an entry name is not UTF-8")?;
    let s = s.strip_prefix("./").unwrap_or(s);
    Ok(s.trim_end_matches('/').to_string())
}

/// Compresses a tar stream into `out`, hashing every file. `pgdata` is the
/// path of PGDATA inside the tar ("" for PGDATA-relative archives).
pub(crate) fn compress<W: Write + Send>(
    reader: impl Read,
    out: W,
    pgdata: &str,
    threads: u32,
    progress: &dyn Progress,
) -> Result<(Written, W)> {
    // Not hashed here: the store hashes the bytes it stores (after
    // encryption, when it encrypts), and that is the hash the manifest
    // records — a second SHA-256 of the same bytes cost ~0.7 CPU-s per GiB
    // stored on a create that is CPU-bound.
    let mut stored = BufWriter::with_capacity(BUF, out);
    let id = super::new_id();
    stored
        .write_all(&id_frame(&id))
        .context("writing the archive")?;
    // Encrypting, hashing and storing the compressed bytes run on a thread
    // of their own: on the reading thread they would stall the feeding of
    // zstd's workers (measured: a CPU-bound create on 2 cores).
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(HANDOFF_CHUNKS);
    let (encoded, stored) = std::thread::scope(|scope| {
        let storer = scope.spawn(move || -> io::Result<_> {
            for chunk in rx {
                stored.write_all(&chunk)?;
            }
            Ok(stored)
        });
        let encoded = encode(reader, ChunkWriter::new(tx), pgdata, threads, progress, id);
        (encoded, storer.join())
    });
    let buffered = match stored {
        // The storing side's error is the cause of any on the encoding side.
        Err(_) => bail!("the archive writer thread panicked"),
        Ok(Err(e)) => return Err(e).context("writing the archive"),
        Ok(Ok(buffered)) => buffered,
    };
    let (recorder, tar_bytes) = encoded?;
    // The sink syncs (a file) or completes (an upload) when it is committed.
    let file = buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .context("writing the archive")?;
    let mut written = recorder.written;
    written.tar_bytes = tar_bytes;
    if written.entries.is_empty() {
        bail!("the data stream was empty");
    }
    Ok((written, file))
}

/// Chunks of [`BUF`] bytes on their way to the storing thread (bounds the
/// memory between the two to a few MiB).
const HANDOFF_CHUNKS: usize = 8;

/// The encoding side of [`compress`]: reads the tar, records its entries
/// and feeds zstd, whose output goes to the storing thread through `out`.
/// Returns the entries and the tar's size; dropping `out` (on success or
/// error) ends the storing thread.
fn encode<'p>(
    reader: impl Read,
    out: Handoff,
    pgdata: &'p str,
    threads: u32,
    progress: &dyn Progress,
    id: String,
) -> Result<(Recorder<'p>, u64)> {
    let mut encoder = zstd::stream::write::Encoder::new(out, LEVEL)?;
    encoder.include_checksum(true)?;
    if threads > 1 {
        encoder.multithread(threads)?;
    }
    let mut recorder = Recorder {
        pgdata,
        pg_version_path: join(pgdata, "PG_VERSION"),
        tablespaces: join(pgdata, "pg_tblspc"),
        data_link: data_link_path(pgdata),
        buf: vec![0u8; BUF],
        written: Written {
            id,
            ..Written::default()
        },
    };
    let tar_bytes;
    {
        let tee = Tee {
            inner: BufReader::with_capacity(BUF, reader),
            sink: Some(&mut encoder),
            count: 0,
            progress,
        };
        let mut archive = tar::Archive::new(tee);
        for entry in archive.entries().context("reading the tar stream")? {
            recorder.record(entry.context("reading the tar stream")?)?;
        }
        let mut tee = archive.into_inner();
        io::copy(&mut tee, &mut io::sink())?;
        tar_bytes = tee.count;
    }
    let mut out = encoder.finish().context("finishing the zstd stream")?;
    out.flush()?;
    Ok((recorder, tar_bytes))
}

/// The sending end of the hand-off to the storing thread.
type Handoff = ChunkWriter<std::sync::mpsc::SyncSender<Vec<u8>>>;

/// What [`compress`] learns from the tar stream, entry by entry: each
/// entry's kind, mode and hash, PGDATA's owner and version, the data link.
struct Recorder<'a> {
    pgdata: &'a str,
    pg_version_path: String,
    /// `pg_tblspc` inside the tar: links there are tablespaces.
    tablespaces: String,
    data_link: Option<String>,
    buf: Vec<u8>,
    written: Written,
}

impl Recorder<'_> {
    /// Records one entry, or refuses the stream: ward's swap directories,
    /// special files, tablespaces and links other than the data link never
    /// go into a snapshot.
    fn record<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let path = entry_path(&entry.path_bytes())?;
        // ward's own swap directories (inside PGDATA on PG <= 17 images)
        // never belong in a snapshot; a snapshot command sweeps stale
        // ones first, so one here is being written right now.
        if let Some(segment) = path
            .split('/')
            .find(|s| s.starts_with(".ward-swap-") || s.starts_with(".ward-trash-"))
        {
            bail!(
                "the data holds {segment}, a restore's swap directory, which never goes into a \
                 snapshot — run `ward snapshot recover` on this target, then try again"
            );
        }
        let header = entry.header();
        let mode = header.mode().unwrap_or(0);
        let kind = match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink,
            other => bail!(
                "the data contains {path:?} of type {other:?}, which does not belong in a \
                 Postgres data directory — remove it and try again"
            ),
        };
        if path == self.pgdata || (self.pgdata.is_empty() && self.written.owner.is_none()) {
            self.written.owner = Some((
                header.uid().unwrap_or(0) as u32,
                header.gid().unwrap_or(0) as u32,
            ));
        }
        let mut recorded = Entry {
            path: path.clone(),
            kind: kind.clone(),
            mode,
            size: 0,
            sha256: None,
            link: None,
        };
        match kind {
            Kind::File => {
                let (size, sha256) = self.hash_file(&mut entry, &path)?;
                recorded.size = size;
                recorded.sha256 = Some(sha256);
                self.written.file_count += 1;
                self.written.total_bytes += size;
            }
            Kind::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                self.check_link(&path, &target)?;
                // Recorded, never followed (the engine's archive does not
                // follow links); restore recreates it.
                self.written.data_link = true;
                recorded.link = Some(target);
            }
            Kind::Dir => {}
        }
        self.written.entries.push(recorded);
        Ok(())
    }

    /// (size, SHA-256 hex) of a file's contents; keeps PG_VERSION's text.
    fn hash_file(&mut self, file: &mut impl Read, path: &str) -> Result<(u64, String)> {
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut content = Vec::new();
        loop {
            let read = file.read(&mut self.buf)?;
            if read == 0 {
                break;
            }
            hasher.update(&self.buf[..read]);
            if path == self.pg_version_path && content.len() < 64 {
                content.extend_from_slice(&self.buf[..read]);
            }
            size += read as u64;
        }
        if path == self.pg_version_path {
            self.written.pg_version = Some(String::from_utf8_lossy(&content).trim().to_string());
        }
        Ok((size, hex::encode(hasher.finalize())))
    }

    /// Refuses every link but the data link: a tablespace's files live
    /// outside the volume, and restores refuse links (a hostile archive
    /// could use one to write outside the target), so a snapshot with one
    /// could never be restored — say so now.
    fn check_link(&self, path: &str, target: &str) -> Result<()> {
        if path.starts_with(&format!("{}/", self.tablespaces)) {
            bail!(
                "the data directory uses a tablespace ({path} -> {target}); its files live \
                 outside the volume and a snapshot of the volume alone would lose them — \
                 ward does not snapshot clusters with tablespaces"
            );
        }
        if self.data_link.as_deref() == Some(path) && target == DATA_LINK.1 {
            return Ok(());
        }
        bail!(
            "the data contains the symbolic link {path} -> {target}; its target is not \
             part of the copy and ward refuses links on restore (the only one accepted \
             is `data -> .` at the volume root, left by the postgres:18.0 image) — a \
             data directory with a linked pg_wal (initdb --waldir) or other links \
             cannot be snapshotted"
        );
    }
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}/{b}")
    }
}

/// Builds a tar of a native data directory (never following symlinks) into
/// `sink`; used by `--datadir`.
pub(crate) fn tar_datadir(dir: &Path, sink: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(sink);
    b.follow_symlinks(false);
    b.sparse(false);
    let skip = ["postmaster.pid", "postmaster.opts"];
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    let mut items: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
    while let Some((abs, rel)) = stack.pop() {
        for e in std::fs::read_dir(&abs).with_context(|| format!("reading {}", abs.display()))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            let rel2 = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if rel.is_empty() && skip.contains(&name.as_str()) {
                continue;
            }
            let ft = e.file_type()?;
            items.insert(rel2.clone(), e.path());
            if ft.is_dir() {
                stack.push((e.path(), rel2));
            }
        }
    }
    for (rel, abs) in items {
        if crate::error::cancelled() {
            return Err(crate::error::Interrupted.into());
        }
        b.append_path_with_name(&abs, &rel)
            .with_context(|| format!("archiving {}", abs.display()))?;
    }
    b.into_inner()?.flush()?;
    Ok(())
}
