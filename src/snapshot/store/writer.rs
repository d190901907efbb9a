//! Writing a new archive into a store: the bytes go to a temporary file or
//! an upload of segments ([`Sink`]), through age when the store's keys name
//! recipients, hashed as stored (the manifest records the stored bytes'
//! SHA-256 and size). Dropped before [`super::Store::commit`], the file or
//! the segments are removed.

use std::io::Write;

use anyhow::{Context, Result};

use super::{local, upload};
use crate::snapshot::archive::HashWriter;
use crate::snapshot::crypt::Encryption;

/// Where an archive is being written.
pub(super) enum Sink {
    Local(local::TempArchive),
    Remote(upload::Upload),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Local(t) => t.write(buf),
            Sink::Remote(u) => u.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Local(t) => t.flush(),
            Sink::Remote(u) => u.flush(),
        }
    }
}

pub(super) enum Layer {
    Plain(HashWriter<Sink>),
    Age(age::stream::StreamWriter<HashWriter<Sink>>),
}

/// A new archive being written into a store (encrypted when the store's
/// keys say so); removed or aborted if dropped before [`Store::commit`].
pub struct ArchiveWriter {
    pub(super) layer: Layer,
    pub(super) encryption: Option<Encryption>,
}

impl std::fmt::Debug for ArchiveWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ArchiveWriter(encrypted: {})", self.encryption.is_some())
    }
}

impl Write for ArchiveWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.layer {
            Layer::Plain(w) => w.write(buf),
            Layer::Age(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.layer {
            Layer::Plain(w) => w.flush(),
            Layer::Age(w) => w.flush(),
        }
    }
}

/// A fully written archive, not yet in place.
pub struct Stored {
    pub(super) sink: Sink,
    pub(super) sha256: String,
    pub(super) bytes: u64,
    pub(super) encryption: Option<Encryption>,
}

impl ArchiveWriter {
    /// Ends the stream (and the encryption); the bytes are stored but not
    /// yet named.
    pub fn finish(self) -> Result<Stored> {
        let hashed = match self.layer {
            Layer::Plain(w) => w,
            Layer::Age(w) => w.finish().context("finishing the encryption")?,
        };
        let (mut sink, sha256, bytes) = hashed.finish();
        sink.flush().context("writing the archive")?;
        if let Sink::Local(t) = &mut sink {
            t.sync()?;
        }
        Ok(Stored {
            sink,
            sha256,
            bytes,
            encryption: self.encryption,
        })
    }
}
