//! Archive streams: tar in, zstd out (content checksum on, multithreaded),
//! with a SHA-256 of every file and of the archive. The archive opens with a
//! zstd skippable frame that carries the snapshot's id, which binds the file
//! to its manifest (a renamed or swapped archive is caught by `verify`).
//! Reading archives back is [`super::checked`].

use std::collections::BTreeMap;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::manifest::{Entry, Kind};
use crate::progress::Progress;

/// zstd level: level 3 buys ≈1 % size for ≈2× CPU on this data (reference §9.4).
pub const LEVEL: i32 = 1;
const BUF: usize = 256 * 1024;

/// Passes writes through and hashes/counts them.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    pub count: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.count)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Passes reads through and hashes/counts them.
pub struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    pub count: u64,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> Self {
        HashReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    pub fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.count)
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

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

/// A `Read` over chunks arriving from async code.
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    pub fn new(rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// A `Write` that hands chunks to async code (e.g. an upload body).
pub struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(BUF),
        }
    }
    fn send(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(BUF)));
            self.tx
                .blocking_send(Ok(chunk))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "receiver closed"))?;
        }
        Ok(())
    }
    /// Tells the receiver the stream is broken (so an upload aborts).
    pub fn fail(&mut self, msg: &str) {
        let _ = self
            .tx
            .blocking_send(Err(io::Error::other(msg.to_string())));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= BUF {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// What writing an archive produced.
#[derive(Debug, Default)]
pub struct Written {
    pub entries: Vec<Entry>,
    pub file_count: u64,
    pub total_bytes: u64,
    pub tar_bytes: u64,
    pub compressed_bytes: u64,
    pub archive_sha256: String,
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
pub const DATA_LINK: (&str, &str) = ("data", ".");

/// The path of the [`DATA_LINK`] in an archive of a volume whose PGDATA is
/// at `pgdata` ("root" or "root/…"), or None for archives of PGDATA alone.
pub fn data_link_path(pgdata: &str) -> Option<String> {
    let root = pgdata.split('/').next().filter(|r| !r.is_empty())?;
    Some(format!("{root}/{}", DATA_LINK.0))
}

/// Magic of the zstd skippable frame that carries the snapshot id (any
/// decoder skips it; `zstd -d` too).
pub const ID_FRAME_MAGIC: u32 = 0x184D_2A5B;
/// What the id frame's payload starts with.
pub const ID_FRAME_TAG: &[u8] = b"ward-snapshot-id:";

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
pub fn compress<W: Write>(
    reader: impl Read,
    out: W,
    pgdata: &str,
    threads: u32,
    progress: &dyn Progress,
) -> Result<(Written, W)> {
    let mut hw = HashWriter::new(BufWriter::with_capacity(BUF, out));
    let id = super::new_id();
    hw.write_all(&id_frame(&id))
        .context("writing the archive")?;
    let mut enc = zstd::stream::write::Encoder::new(hw, LEVEL)?;
    enc.include_checksum(true)?;
    if threads > 1 {
        enc.multithread(threads)?;
    }
    let mut w = Written {
        id,
        ..Written::default()
    };
    let pg_version_path = join(pgdata, "PG_VERSION");
    let tblspc = join(pgdata, "pg_tblspc");
    let data_link = data_link_path(pgdata);
    let tar_bytes;
    {
        let tee = Tee {
            inner: BufReader::with_capacity(BUF, reader),
            sink: Some(&mut enc),
            count: 0,
            progress,
        };
        let mut archive = tar::Archive::new(tee);
        let mut buf = vec![0u8; BUF];
        for entry in archive.entries().context("reading the tar stream")? {
            let mut entry = entry.context("reading the tar stream")?;
            let path = entry_path(&entry.path_bytes())?;
            // ward's own swap directories (inside PGDATA on PG <= 17 images)
            // never belong in a snapshot; a snapshot command sweeps stale
            // ones first, so one here is being written right now.
            if let Some(seg) = path
                .split('/')
                .find(|s| s.starts_with(".ward-swap-") || s.starts_with(".ward-trash-"))
            {
                bail!(
                    "the data holds {seg}, a restore's swap directory, which never goes into a \
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
            if path == pgdata || (pgdata.is_empty() && w.owner.is_none()) {
                w.owner = Some((
                    header.uid().unwrap_or(0) as u32,
                    header.gid().unwrap_or(0) as u32,
                ));
            }
            let mut e = Entry {
                path: path.clone(),
                kind: kind.clone(),
                mode,
                size: 0,
                sha256: None,
                link: None,
            };
            match kind {
                Kind::File => {
                    let mut h = Sha256::new();
                    let mut size = 0u64;
                    let mut content = Vec::new();
                    loop {
                        let n = entry.read(&mut buf)?;
                        if n == 0 {
                            break;
                        }
                        h.update(&buf[..n]);
                        if path == pg_version_path && content.len() < 64 {
                            content.extend_from_slice(&buf[..n]);
                        }
                        size += n as u64;
                    }
                    if path == pg_version_path {
                        w.pg_version = Some(String::from_utf8_lossy(&content).trim().to_string());
                    }
                    e.size = size;
                    e.sha256 = Some(hex::encode(h.finalize()));
                    w.file_count += 1;
                    w.total_bytes += size;
                }
                Kind::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    if path.starts_with(&format!("{tblspc}/")) {
                        bail!(
                            "the data directory uses a tablespace ({path} -> {target}); its files live \
                             outside the volume and a snapshot of the volume alone would lose them — \
                             ward does not snapshot clusters with tablespaces"
                        );
                    }
                    if data_link.as_deref() == Some(path.as_str()) && target == DATA_LINK.1 {
                        // Recorded, never followed (the engine's archive does
                        // not follow links); restore recreates it.
                        w.data_link = true;
                        e.link = Some(target);
                        w.entries.push(e);
                        continue;
                    }
                    // Restores refuse every other link (a hostile archive
                    // could use one to write outside the target), so a
                    // snapshot with one could never be restored: say so now.
                    bail!(
                        "the data contains the symbolic link {path} -> {target}; its target is not \
                         part of the copy and ward refuses links on restore (the only one accepted \
                         is `data -> .` at the volume root, left by the postgres:18.0 image) — a \
                         data directory with a linked pg_wal (initdb --waldir) or other links \
                         cannot be snapshotted"
                    );
                }
                Kind::Dir => {}
            }
            w.entries.push(e);
        }
        let mut tee = archive.into_inner();
        io::copy(&mut tee, &mut io::sink())?;
        tar_bytes = tee.count;
    }
    let hw = enc.finish().context("finishing the zstd stream")?;
    let (bw, sha, count) = hw.finish();
    // The sink syncs (a file) or completes (an upload) when it is committed.
    let file = bw
        .into_inner()
        .map_err(|e| e.into_error())
        .context("writing the archive")?;
    w.tar_bytes = tar_bytes;
    w.compressed_bytes = count;
    w.archive_sha256 = sha;
    if w.entries.is_empty() {
        bail!("the data stream was empty");
    }
    Ok((w, file))
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
pub fn tar_datadir(dir: &Path, sink: impl Write) -> Result<()> {
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
