//! `ward snapshot copy`: one snapshot from one store to another (a local
//! store for fast restores, a bucket off the machine for disasters: 3-2-1).
//!
//! The archive's stored bytes are copied as they are — an encrypted archive
//! stays encrypted to its recipients, so copying needs no identity — and
//! hashed on the way: bytes that differ from what the manifest records are
//! refused before anything is named at the destination. Once the archive is
//! in place it is read back from the destination and checked (every entry
//! and file hash when it can be read — unencrypted, or with the identity;
//! the stored bytes' SHA-256 otherwise), and only then is the manifest
//! written, last, as for every snapshot. A failed check removes the copy.

use std::io::{self, Read, Write};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Damaged;
use super::archive::HashReader;
use super::checked::{self, Destination};
use super::store::Store;
use crate::progress::Progress;
use crate::units::human_bytes;

/// What `copy` reports.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Copied {
    pub name: String,
    pub from: String,
    pub to: String,
    pub bytes: u64,
    /// "contents" (every file checked) or "stored bytes" (encrypted, no identity).
    pub verified: String,
    pub seconds: f64,
}

/// Copies snapshot `name` from `from` to `to` and checks it on arrival.
pub(crate) fn copy(
    from: &Store,
    to: &Store,
    name: &str,
    progress: &dyn Progress,
) -> Result<Copied> {
    let started = Instant::now();
    let m = from.load(name)?;
    if m.template.is_some() {
        return crate::error::usage(format!(
            "snapshot {name:?} is a --fast snapshot: its data lives inside the database cluster, \
             not in the store — take a regular snapshot to copy it"
        ));
    }
    if to.keys().require && m.encryption.is_none() {
        return crate::error::usage(format!(
            "the store {} requires encryption and snapshot {name:?} is not encrypted — take an \
             encrypted snapshot (--encrypt-to) to keep it there",
            to.location()
        ));
    }
    if from.location() == to.location() {
        return crate::error::usage("--from and --to name the same store — nothing to copy");
    }
    let _lock = to.lock()?;
    if to.exists(name)? {
        return crate::error::usage(format!(
            "a snapshot named {name:?} already exists in {} — delete it there first, or copy \
             another",
            to.location()
        ));
    }
    progress.stage(&format!("copying {name}"), m.compressed_bytes);
    let mut src = HashReader::new(from.open_archive(name)?);
    let mut sink = to.new_raw_archive(name)?;
    pump(&mut src, &mut sink, progress, m.compressed_bytes)?;
    progress.finish();
    let (sha, size) = src.finish();
    if size != m.compressed_bytes || sha != m.archive_sha256 {
        // The sink is dropped: the partial copy is removed (or aborted).
        return Err(Damaged(format!(
            "snapshot {name:?} in {} does not match its manifest ({size} bytes read, {} \
             expected{}) — nothing was copied; `ward snapshot verify {name}` there says more",
            from.location(),
            m.compressed_bytes,
            if size == m.compressed_bytes {
                ", SHA-256 differs"
            } else {
                ""
            }
        ))
        .into());
    }
    let stored = sink.finish()?;
    let readable = m.encryption.is_none() || to.keys().has_identity();
    let mut arrival = || -> Result<()> {
        let problems = if readable {
            checked::check(to, &m, Destination::Nowhere, progress)?.problems
        } else {
            let mut back = HashReader::new(to.open_archive(name)?);
            io::copy(&mut back, &mut io::sink()).context("reading the copy back")?;
            let (sha, size) = back.finish();
            if size == m.compressed_bytes && sha == m.archive_sha256 {
                Vec::new()
            } else {
                vec![format!(
                    "the copy reads back as {size} bytes with another SHA-256 than was written"
                )]
            }
        };
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Damaged(format!(
                "the copy of {name:?} in {} failed its check on arrival and was removed: {}",
                to.location(),
                problems.join("; ")
            ))
            .into())
        }
    };
    to.commit_checked(stored, &m, &mut arrival)?;
    tracing::info!(
        "copied {name} ({}) to {}",
        human_bytes(m.compressed_bytes),
        to.location()
    );
    Ok(Copied {
        name: name.to_string(),
        from: from.location(),
        to: to.location(),
        bytes: m.compressed_bytes,
        verified: if readable {
            "contents".into()
        } else {
            "stored bytes".into()
        },
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Copies at most `limit` bytes (one more is read, to notice a longer
/// archive without reading all of it).
fn pump(
    src: &mut impl Read,
    dst: &mut impl Write,
    progress: &dyn Progress,
    limit: u64,
) -> Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        if crate::error::cancelled() {
            return Err(crate::error::Interrupted.into());
        }
        let n = src.read(&mut buf).context("reading the archive")?;
        if n == 0 {
            return Ok(());
        }
        total += n as u64;
        if total > limit + 1 {
            return Ok(());
        }
        dst.write_all(&buf[..n]).context("writing the copy")?;
        progress.advance(n as u64);
    }
}
