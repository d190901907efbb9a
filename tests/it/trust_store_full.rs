//! Issue #14 item 17 (store side): a store that fills up while `snapshot
//! create` writes must be named in one clear line with how much was written,
//! and leave nothing half-written — no partial archive, no manifest. The
//! store is a real tmpfs mounted by the test (ward's tests run as root), just
//! big enough for ward's free-space estimate, and the data is random bytes
//! that do not compress, so the archive outgrows it mid-stream.

use std::path::PathBuf;

use crate::support::disk::{Tmpfs, incompressible_cluster, size_of};
use crate::support::*;

#[test]
fn a_store_that_fills_up_is_named_and_nothing_half_written_is_left() {
    // ~100 MB of random bytes, stored as they are (no compression).
    let c = incompressible_cluster();
    let data = c.dir().join("data");
    // Room for ward's own estimate (60 % of the data plus 16 MiB) and a
    // little more: the pre-check passes, the incompressible archive does not fit.
    let raw = size_of(&data);
    let estimate = raw / 10 * 6 + 16 * 1024 * 1024;
    let store = Tmpfs::mount(estimate + 4 * 1024 * 1024, "0700");
    let r = ward()
        .args(["snapshot", "create", "scans", "--datadir"])
        .args([&data])
        .args(["--store"])
        .args([store.path()])
        .run();
    let err = r.fails_with(2, "is full");
    assert!(err.contains(&store.path().display().to_string()), "{err}");
    assert!(err.contains("written"), "{err}");
    assert!(!err.contains("No space left on device"), "{err}");
    let left: Vec<PathBuf> = files(store.path())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != ".lock"))
        .collect();
    assert!(left.is_empty(), "left in the store: {left:?}");
    // The source data directory is as it was.
    assert_eq!(size_of(&data), raw);
}
