//! The byte counters the checked reader reads through: the stored bytes'
//! hash and size (and whether reading them failed, so a failed write is not
//! blamed on the archive), the decompressed bytes for the progress bar, and
//! the archive's leading id frame.

use std::io::{self, Read};

use sha2::{Digest, Sha256};

use crate::progress::Progress;
use crate::snapshot::archive::{ID_FRAME_MAGIC, ID_FRAME_TAG};

/// Passes reads through, hashing and counting them, and remembers whether
/// reading failed — so a failed write is not blamed on the archive.
pub(super) struct Hashing<R> {
    pub(super) inner: R,
    pub(super) hasher: Sha256,
    pub(super) size: u64,
    pub(super) read_error: Option<String>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if crate::error::cancelled() {
            // Not ErrorKind::Interrupted: io::copy and tar retry that one
            // (EINTR semantics) and would spin here for ever after Ctrl-C.
            return Err(io::Error::other("interrupted"));
        }
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.size += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.read_error = Some(e.to_string());
                Err(e)
            }
        }
    }
}

/// Counts decompressed bytes for the progress bar.
pub(super) struct Counting<'a, R> {
    pub(super) inner: R,
    pub(super) count: u64,
    pub(super) progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Reads the leading id frame, if there is one; returns the id and the bytes
/// read that turned out not to be one (to be decoded as zstd).
pub(super) fn read_id_frame(r: &mut impl Read) -> io::Result<(Option<String>, Vec<u8>)> {
    let mut head = Vec::with_capacity(8);
    r.by_ref().take(8).read_to_end(&mut head)?;
    if head.len() < 8 || u32::from_le_bytes([head[0], head[1], head[2], head[3]]) != ID_FRAME_MAGIC
    {
        return Ok((None, head));
    }
    let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as u64;
    let mut payload = Vec::new();
    r.by_ref().take(len.min(4096)).read_to_end(&mut payload)?;
    let id = payload
        .strip_prefix(ID_FRAME_TAG)
        .map(|id| String::from_utf8_lossy(id).into_owned())
        .unwrap_or_default();
    if len > 4096 {
        return Ok((Some(format!("(an id frame of {len} bytes)")), Vec::new()));
    }
    Ok((Some(id), Vec::new()))
}
