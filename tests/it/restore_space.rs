//! Free space on restore (review F10/F11, #14 item 17, restore side): the
//! volume must hold the staged copy plus headroom for the running
//! database's growth, plus the `--keep-previous` copy when asked; short of
//! that, restore refuses before touching anything and says how much is
//! free, how much is needed and where — never that the snapshot is damaged.
//! Runs on a small tmpfs volume (which loses its contents whenever no
//! container mounts it: so the container is never stopped here — the
//! snapshot is an online one, and every restore is refused before the stop).

use crate::support::docker::{self as dk};
use crate::support::snapshot::snap;

const MIB: u64 = 1024 * 1024;

fn free_bytes(volume: &str) -> u64 {
    let out = dk::in_volume(volume, "df -Pk /v | tail -1");
    out.split_whitespace()
        .nth(3)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

#[test]
fn restore_refuses_with_numbers_when_the_volume_cannot_hold_the_staged_copy() {
    let pg = dk::Pg::start_on(&[
        "--driver",
        "local",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=320m",
    ]);
    dk::fill(&pg.name, 2_000);
    let store = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let snap = |args: &[&str]| snap(store.path(), state.path(), args);
    snap(&["create", "s", "--container", &pg.name, "--online"]).ok();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(store.path().join("s.json")).unwrap())
            .unwrap();
    let total = manifest["total_bytes"].as_u64().unwrap();
    let headroom = (total / 10).max(64 * MIB);
    // Leave room for the staged copy and its headroom, but not for a
    // --keep-previous copy of the current data (about `total` again).
    let wanted_free = total + headroom + total / 2;
    let ballast = free_bytes(&pg.volume).saturating_sub(wanted_free) / MIB;
    dk::in_volume(
        &pg.volume,
        &format!("head -c {ballast}M /dev/zero > /v/ballast"),
    );
    let before = dk::checksums(&pg.name);

    let r = snap(&[
        "restore",
        "s",
        "--container",
        &pg.name,
        "--yes",
        "--keep-previous",
    ])
    .run();
    let err = r.fails_with(2, "not enough free space in volume");
    assert!(err.contains(&pg.volume), "where: {err}");
    assert!(
        err.contains("free") && err.contains("needed"),
        "how much: {err}"
    );
    assert!(err.contains("--keep-previous copy"), "what for: {err}");
    assert!(!err.contains("damaged"), "{err}");
    assert!(dk::running(&pg.name));
    assert_eq!(dk::checksums(&pg.name), before, "data touched");

    // Fill the volume up: now even the staged copy does not fit.
    dk::in_volume(
        &pg.volume,
        &format!("head -c {}M /dev/zero > /v/ballast2 || true", total / MIB),
    );
    let r = snap(&["restore", "s", "--container", &pg.name, "--yes"]).run();
    let err = r.fails_with(2, "not enough free space in volume");
    assert!(err.contains("headroom for the running database"), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(dk::running(&pg.name));
}
