//! Byte streams around an archive: writers and readers that hash and count
//! what passes through them, the tally of a stored archive (which tells a
//! failing store from a damaged archive), and the two ends of the channel
//! between the blocking tar/zstd side and the async engine side.

use std::io::{self, Read, Write};

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::BUF;

/// Passes writes through and hashes/counts them.
pub(crate) struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    pub count: u64,
}

impl<W: Write> HashWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    pub(crate) fn finish(self) -> (W, String, u64) {
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
pub(crate) struct HashReader<R> {
    inner: R,
    hasher: Sha256,
    pub count: u64,
}

impl<R: Read> HashReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
    pub(crate) fn finish(self) -> (String, u64) {
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

/// Hashes and counts stored bytes as they are read, wherever the reader
/// ends up (inside a decryptor), and remembers a failed read (the disk or
/// the network, not the archive); [`TallyResult`] reads the outcome.
pub(crate) struct Tally<R> {
    inner: R,
    state: std::sync::Arc<std::sync::Mutex<TallyState>>,
}

#[derive(Default)]
struct TallyState {
    hasher: Sha256,
    count: u64,
    failed: Option<String>,
}

pub(crate) struct TallyResult(std::sync::Arc<std::sync::Mutex<TallyState>>);

impl<R: Read> Tally<R> {
    pub(crate) fn new(inner: R) -> (Tally<R>, TallyResult) {
        let state = std::sync::Arc::new(std::sync::Mutex::new(TallyState::default()));
        (
            Tally {
                inner,
                state: state.clone(),
            },
            TallyResult(state),
        )
    }
}

impl<R: Read> Read for Tally<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.inner.read(buf);
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match got {
            Ok(n) => {
                s.hasher.update(&buf[..n]);
                s.count += n as u64;
                Ok(n)
            }
            Err(e) => {
                s.failed.get_or_insert_with(|| e.to_string());
                Err(e)
            }
        }
    }
}

impl TallyResult {
    /// Why reading the stored bytes failed, if it did.
    pub(crate) fn transport(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .failed
            .clone()
    }

    /// That failure as an error (exit 2), not a finding.
    pub(crate) fn transport_error(&self) -> anyhow::Error {
        crate::error::UsageError(format!(
            "{} — the snapshot was not judged; check the store and try again",
            self.transport().unwrap_or_default()
        ))
        .into()
    }

    /// SHA-256 (hex) and size of what was read.
    pub(crate) fn finish(self) -> (String, u64) {
        let s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (hex::encode(s.hasher.clone().finalize()), s.count)
    }
}

/// A `Read` over chunks arriving from async code.
pub(crate) struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    pub(crate) fn new(rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>) -> Self {
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

/// Where a [`ChunkWriter`] hands its chunks: a thread of ward's own (the
/// archive's storing thread) or async code (an upload body).
pub(crate) trait ChunkSink {
    /// Hands over one chunk; fails when the receiving side hung up.
    fn send_chunk(&mut self, chunk: Vec<u8>) -> io::Result<()>;
}

impl ChunkSink for std::sync::mpsc::SyncSender<Vec<u8>> {
    fn send_chunk(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        self.send(chunk).map_err(|_| receiver_gone())
    }
}

impl ChunkSink for tokio::sync::mpsc::Sender<io::Result<Bytes>> {
    fn send_chunk(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        self.blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| receiver_gone())
    }
}

/// The receiving side only hangs up when it failed; its own error is the
/// one reported.
fn receiver_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the receiving side stopped")
}

/// A `Write` that gathers writes into chunks of [`BUF`] bytes and hands them
/// to `S` (bounds the memory between the two ends to a few chunks).
pub(crate) struct ChunkWriter<S> {
    sink: S,
    buf: Vec<u8>,
}

/// The blocking tar side's end of a channel to async code (an upload body).
pub(crate) type ChannelWriter = ChunkWriter<tokio::sync::mpsc::Sender<io::Result<Bytes>>>;

impl<S: ChunkSink> ChunkWriter<S> {
    pub(crate) fn new(sink: S) -> Self {
        ChunkWriter {
            sink,
            buf: Vec::with_capacity(BUF),
        }
    }
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(BUF));
        self.sink.send_chunk(chunk)
    }
}

impl ChannelWriter {
    /// Tells the receiver the stream is broken (so an upload aborts).
    pub(crate) fn fail(&mut self, msg: &str) {
        let _ = self
            .sink
            .blocking_send(Err(io::Error::other(msg.to_string())));
    }
}

impl<S: ChunkSink> Write for ChunkWriter<S> {
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

/// Reads `inner` on a thread of its own, a few chunks ahead of the
/// consumer. Restore reads, hashes and decrypts the stored bytes here while
/// the consumer decompresses, checks and forwards the files: on one thread
/// those were its critical path (measured: ~7 of ~10 s busy on one core
/// while the engine's extraction waited).
pub(crate) struct ReadAhead {
    rx: std::sync::mpsc::Receiver<Ahead>,
    current: Vec<u8>,
    at: usize,
    /// The end (Ok) or the error the reading side stopped at; repeated to
    /// every later read, so an error is never followed by a clean EOF.
    ended: Option<io::Result<()>>,
}

/// What the reading thread hands over.
enum Ahead {
    Chunk(Vec<u8>),
    Failed(io::ErrorKind, String),
    End,
}

/// Chunks read ahead (bounds the memory to a few MiB).
const AHEAD_CHUNKS: usize = 8;

impl ReadAhead {
    pub(crate) fn spawn(mut inner: impl Read + Send + 'static) -> io::Result<ReadAhead> {
        let (tx, rx) = std::sync::mpsc::sync_channel(AHEAD_CHUNKS);
        std::thread::Builder::new()
            .name("ward-read-ahead".into())
            .spawn(move || {
                loop {
                    let mut chunk = vec![0u8; BUF];
                    let mut filled = 0;
                    let outcome = loop {
                        match inner.read(&mut chunk[filled..]) {
                            Ok(0) => break Ok(true),
                            Ok(n) => {
                                filled += n;
                                if filled == chunk.len() {
                                    break Ok(false);
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => break Err(e),
                        }
                    };
                    chunk.truncate(filled);
                    if !chunk.is_empty() && tx.send(Ahead::Chunk(chunk)).is_err() {
                        return; // the consumer stopped reading
                    }
                    match outcome {
                        Ok(false) => {}
                        Ok(true) => {
                            let _ = tx.send(Ahead::End);
                            return;
                        }
                        Err(e) => {
                            let _ = tx.send(Ahead::Failed(e.kind(), e.to_string()));
                            return;
                        }
                    }
                }
            })?;
        Ok(ReadAhead {
            rx,
            current: Vec::new(),
            at: 0,
            ended: None,
        })
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            if let Some(ended) = &self.ended {
                return match ended {
                    Ok(()) => Ok(0),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                };
            }
            match self.rx.recv() {
                Ok(Ahead::Chunk(c)) => {
                    self.current = c;
                    self.at = 0;
                }
                Ok(Ahead::End) => self.ended = Some(Ok(())),
                Ok(Ahead::Failed(kind, msg)) => self.ended = Some(Err(io::Error::new(kind, msg))),
                // Gone without saying how it ended: it panicked.
                Err(_) => {
                    self.ended = Some(Err(io::Error::other(
                        "the thread reading the archive stopped unexpectedly",
                    )))
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that yields `data` in uneven pieces, then fails (when `fail`).
    struct Uneven {
        data: Vec<u8>,
        at: usize,
        fail: bool,
    }

    impl Read for Uneven {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                return match self.fail {
                    true => Err(io::Error::new(io::ErrorKind::InvalidData, "bad chunk")),
                    false => Ok(0),
                };
            }
            let n = buf.len().min(7919).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn data() -> Vec<u8> {
        (0..3 * BUF + 12345).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn uneven(fail: bool) -> Uneven {
        Uneven {
            data: data(),
            at: 0,
            fail,
        }
    }

    #[test]
    fn read_ahead_passes_every_byte_in_order() {
        let data = data();
        let inner = uneven(false);
        let mut got = Vec::new();
        ReadAhead::spawn(inner)
            .unwrap()
            .read_to_end(&mut got)
            .unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn read_ahead_repeats_the_error_and_never_ends_cleanly_after_it() {
        let data = data();
        let inner = uneven(true);
        let mut r = ReadAhead::spawn(inner).unwrap();
        let mut got = Vec::new();
        let e = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(got, data, "every byte before the error arrives");
        let again = r.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::InvalidData);
        assert!(again.to_string().contains("bad chunk"), "{again}");
    }
}
