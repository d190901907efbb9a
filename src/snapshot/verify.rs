//! `ward snapshot verify`: re-hashing an archive against its manifest (or,
//! for an encrypted archive without its identity, the stored bytes against
//! their recorded size and SHA-256), and `--deep`, which starts Postgres on
//! a throwaway copy.

use std::sync::Arc;

use anyhow::Result;
use chrono::Utc;

use super::manifest::Manifest;
use super::store::Store;
use super::{SCOPE_STORED, Verified, archive, checked, volume};
use crate::progress::Progress;

/// Re-hashes a snapshot against its manifest.
pub(crate) fn verify(store: &Store, name: &str, progress: &dyn Progress) -> Result<Verified> {
    let m = store.load(name)?;
    if store.archive_size(name)?.is_none() {
        return Ok(Verified {
            name: name.into(),
            ok: false,
            problems: vec![format!(
                "the archive {} is missing",
                store.archive_location(name)
            )],
            entries: 0,
            bytes: 0,
            deep: None,
            scope: "contents",
        });
    }
    if m.encryption.is_some() && !store.keys().has_identity() {
        return verify_stored(store, &m, progress);
    }
    progress.stage(&format!("verifying {name}"), m.tar_bytes);
    let checked = checked::check(store, &m, checked::Destination::Nowhere, progress)?;
    progress.finish();
    Ok(Verified {
        name: name.into(),
        ok: checked.problems.is_empty(),
        problems: checked.problems,
        entries: checked.entries,
        bytes: checked.bytes,
        deep: None,
        scope: "contents",
    })
}

/// Verifies an encrypted archive without its identity: its stored bytes
/// (the ciphertext) against the size and SHA-256 the manifest records —
/// corruption is found without the key (a backup host keeps none).
fn verify_stored(store: &Store, m: &Manifest, progress: &dyn Progress) -> Result<Verified> {
    progress.stage(
        &format!("verifying {} (as stored)", m.name),
        m.compressed_bytes,
    );
    let (mut tally, result) = archive::Tally::new(store.open_archive(&m.name)?);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if crate::error::cancelled() {
            return Err(crate::error::Interrupted.into());
        }
        match std::io::Read::read(&mut tally, &mut buf) {
            Ok(0) => break,
            Ok(n) => progress.advance(n as u64),
            Err(_) => return Err(result.transport_error()),
        }
    }
    progress.finish();
    let (sha, size) = result.finish();
    let mut problems = Vec::new();
    if size != m.compressed_bytes {
        problems.push(format!(
            "the archive is {size} bytes, the manifest says {} (truncated or appended to)",
            m.compressed_bytes
        ));
    } else if sha != m.archive_sha256 {
        problems.push(
            "the archive's SHA-256 does not match the manifest (the file was altered)".into(),
        );
    }
    Ok(Verified {
        name: m.name.clone(),
        ok: problems.is_empty(),
        problems,
        entries: 0,
        bytes: size,
        deep: None,
        scope: SCOPE_STORED,
    })
}

/// `verify --deep`: start Postgres on a throwaway restored copy, run
/// pg_amcheck and a sanity query; records "last verified" in the manifest.
pub(crate) async fn deep_verify(
    store: &Store,
    name: &str,
    progress: Arc<dyn Progress>,
) -> Result<String> {
    let m = store.load(name)?;
    let msg = volume::deep_verify(store, &m, progress).await?;
    let _lock = store.lock()?;
    let mut m = store.load(name)?;
    m.last_verified = Some(Utc::now());
    store.write_manifest(&m)?;
    Ok(msg)
}
