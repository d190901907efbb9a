//! Archive streams: tar in, zstd out (content checksum on, multithreaded),
//! with a SHA-256 of every file and of the archive — and the reverse, a
//! single pass that decompresses, checks every entry against the manifest and
//! a PGDATA allow-list, and optionally forwards the verified tar bytes to the
//! engine for extraction.
//!
//! Entry policy (reference/snapshots.md §7.3): only regular files,
//! directories and relative symlinks that stay inside the archive; refused —
//! not skipped — are absolute paths, `..`, paths through a symlink, hard
//! links, devices, FIFOs, duplicates, non-UTF-8 or over-long names, and more
//! bytes than the manifest declares.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::manifest::{Entry, Kind, Manifest};
use crate::seed::Progress;

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
            return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted"));
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
}

fn entry_path(raw: &[u8]) -> Result<String> {
    let s = std::str::from_utf8(raw).context("an entry name is not UTF-8")?;
    let s = s.strip_prefix("./").unwrap_or(s);
    Ok(s.trim_end_matches('/').to_string())
}

/// Compresses a tar stream into `out`, hashing every file. `pgdata` is the
/// path of PGDATA inside the tar ("" for PGDATA-relative archives).
pub fn compress(
    reader: impl Read,
    out: File,
    pgdata: &str,
    threads: u32,
    progress: &dyn Progress,
) -> Result<(Written, File)> {
    let hw = HashWriter::new(BufWriter::with_capacity(BUF, out));
    let mut enc = zstd::stream::write::Encoder::new(hw, LEVEL)?;
    enc.include_checksum(true)?;
    if threads > 1 {
        enc.multithread(threads)?;
    }
    let mut w = Written::default();
    let pg_version_path = join(pgdata, "PG_VERSION");
    let tblspc = join(pgdata, "pg_tblspc");
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
                    e.link = Some(target);
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
    let file = bw.into_inner().map_err(|e| e.into_error())?;
    file.sync_all().context("syncing the archive to disk")?;
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

/// Result of checking an archive against its manifest.
#[derive(Debug, Default)]
pub struct Checked {
    pub problems: Vec<String>,
    pub bytes: u64,
    pub entries: u64,
}

/// The longest name an entry may have.
const MAX_NAME: usize = 4096;

/// Checks one entry against the allow-list; returns the normalised path.
fn check_entry<R: Read>(
    entry: &tar::Entry<'_, R>,
    seen: &mut HashSet<String>,
    symlinks: &mut HashSet<String>,
) -> std::result::Result<(String, Kind), String> {
    let raw = entry.path_bytes();
    if raw.len() > MAX_NAME {
        return Err(format!("an entry name is {} bytes long", raw.len()));
    }
    let s = std::str::from_utf8(&raw).map_err(|_| "an entry name is not UTF-8".to_string())?;
    if s.starts_with('/') {
        return Err(format!("absolute path {s:?}"));
    }
    let path = entry_path(&raw).map_err(|e| e.to_string())?;
    for c in path.split('/') {
        if c == ".." {
            return Err(format!("path {s:?} climbs out with \"..\""));
        }
        if c.is_empty() && !path.is_empty() {
            return Err(format!("path {s:?} has an empty component"));
        }
    }
    // No entry may pass through a symlink.
    let mut prefix = String::new();
    for c in path.split('/') {
        if !prefix.is_empty() && symlinks.contains(&prefix) {
            return Err(format!("path {s:?} goes through the symlink {prefix:?}"));
        }
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(c);
    }
    let kind = match entry.header().entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => Kind::Symlink,
        tar::EntryType::Link => return Err(format!("hard link {s:?}")),
        tar::EntryType::Char | tar::EntryType::Block => {
            return Err(format!("device node {s:?}"));
        }
        tar::EntryType::Fifo => return Err(format!("FIFO {s:?}")),
        other => return Err(format!("entry {s:?} of unsupported type {other:?}")),
    };
    if kind == Kind::Symlink {
        let target = entry
            .link_name_bytes()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if target.starts_with('/') {
            return Err(format!(
                "symlink {s:?} points to the absolute path {target:?}"
            ));
        }
        // Resolve lexically against the link's directory; it must stay inside.
        let mut depth: i64 = path.split('/').count() as i64 - 1;
        for c in target.split('/') {
            match c {
                "" | "." => {}
                ".." => depth -= 1,
                _ => depth += 1,
            }
            if depth < 0 {
                return Err(format!("symlink {s:?} -> {target:?} escapes the archive"));
            }
        }
        symlinks.insert(path.clone());
    }
    if !seen.insert(path.clone()) {
        return Err(format!("duplicate entry {s:?}"));
    }
    Ok((path, kind))
}

/// Decompresses the archive in one pass, checks the archive hash, every entry
/// against the policy and the manifest, and the byte cap. With `sink`, the
/// verified tar bytes are also written there (e.g. to an upload). Problems are
/// collected; reading stops at the first problem when `sink` is given.
pub fn check(
    archive: &Path,
    manifest: &Manifest,
    mut sink: Option<&mut dyn Write>,
    progress: &dyn Progress,
) -> Result<Checked> {
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut out = Checked::default();
    let streaming = sink.is_some();
    let expected: HashMap<&str, &Entry> = manifest
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e))
        .collect();
    let hr = HashReader::new(file);
    let mut dec = zstd::stream::read::Decoder::new(hr)?;
    let mut seen = HashSet::new();
    let mut symlinks = HashSet::new();
    let cap = manifest.total_bytes;
    let mut data_bytes = 0u64;
    let mut buf = vec![0u8; BUF];
    let result: std::result::Result<(), String> = (|| {
        let tee = Tee {
            inner: &mut dec,
            sink: sink.as_mut().map(|s| &mut **s as &mut dyn Write),
            count: 0,
            progress,
        };
        let mut ar = tar::Archive::new(tee);
        let entries = ar
            .entries()
            .map_err(|e| format!("not a tar archive: {e}"))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("archive is damaged: {e}"))?;
            let (path, kind) = check_entry(&entry, &mut seen, &mut symlinks)?;
            out.entries += 1;
            let Some(want) = expected.get(path.as_str()) else {
                return Err(format!(
                    "{path:?} is in the archive but not in the manifest"
                ));
            };
            if want.kind != kind {
                return Err(format!(
                    "{path:?} is a {kind:?} in the archive but a {:?} in the manifest",
                    want.kind
                ));
            }
            if kind == Kind::File {
                let declared = entry.header().size().unwrap_or(u64::MAX);
                if data_bytes.saturating_add(declared) > cap {
                    return Err(format!(
                        "{path:?} would take the archive past the {cap} bytes the manifest declares"
                    ));
                }
                let mut h = Sha256::new();
                let mut size = 0u64;
                loop {
                    let n = entry
                        .read(&mut buf)
                        .map_err(|e| format!("archive is damaged in {path:?}: {e}"))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    size += n as u64;
                }
                data_bytes += size;
                let got = hex::encode(h.finalize());
                if size != want.size || Some(&got) != want.sha256.as_ref() {
                    return Err(format!(
                        "{path:?} does not match the manifest (size {size} vs {}, sha256 differs: {})",
                        want.size,
                        Some(&got) != want.sha256.as_ref()
                    ));
                }
            } else if kind == Kind::Symlink {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
                if target != want.link {
                    return Err(format!("symlink {path:?} differs from the manifest"));
                }
            }
        }
        let mut tee = ar.into_inner();
        io::copy(&mut tee, &mut io::sink()).map_err(|e| format!("archive is damaged: {e}"))?;
        out.bytes = tee.count;
        Ok(())
    })();
    if let Err(p) = result {
        if crate::error::cancelled() {
            return Err(crate::error::Interrupted.into());
        }
        out.problems.push(p);
        if streaming {
            return Ok(out);
        }
    }
    if out.problems.is_empty() {
        let missing: Vec<&str> = manifest
            .entries
            .iter()
            .filter(|e| !seen.contains(&e.path))
            .map(|e| e.path.as_str())
            .take(5)
            .collect();
        if !missing.is_empty() {
            out.problems.push(format!(
                "the archive lacks entries the manifest lists: {}",
                missing.join(", ")
            ));
        }
    }
    // Hash the whole file, including anything after the last frame.
    let mut rest = dec.finish();
    io::copy(&mut rest, &mut io::sink())?;
    let (sha, size) = rest.into_inner().finish();
    if size != manifest.compressed_bytes {
        out.problems.push(format!(
            "the archive is {size} bytes, the manifest says {} (truncated or appended to)",
            manifest.compressed_bytes
        ));
    } else if sha != manifest.archive_sha256 {
        out.problems.push(
            "the archive's SHA-256 does not match the manifest (the file was altered)".into(),
        );
    }
    Ok(out)
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
