//! Regression tests for the review findings on stage-then-swap restore
//! (fixed in 92486c0 and b6232c0). Each drives the real binary against a
//! real container or cluster through the `WARD_FAULT` hooks (a failure, or
//! `<point>:kill` for a SIGKILL at that exact point) and fails on the code
//! before its fix:
//!
//! - F2: data that ran after a swap is never rolled back, and the container
//!   running it is never stopped by the repair.
//! - F3: a swap whose container was never stopped is never completed (the
//!   old data may have taken writes).
//! - F4: something written into the volume mid-swap is neither overwritten
//!   nor nested into: container stopped, journal kept.
//! - F5: when putting the old data back fails after the swap began, the
//!   container is left stopped (never started on a half-swapped volume).
//! - F12: a swap directory ward cannot read is an error, never "no swap".
//! - F6: a data-directory restore whose journal write fails after the old
//!   directory moved aside keeps the new copy, and the next ward finishes.
//! - M1: a `--keep-previous` restore killed while copying the previous
//!   contents out, its journal lost: the next ward's sweep finishes the
//!   copy (never deletes the only whole one), and `restore --previous`
//!   refuses a previous-contents volume that holds no whole copy.
//! - The replaced data deleted in the background in the container: a ward
//!   killed before that delete starts leaves only `.ward-trash-<id>`, which
//!   the next `create` sweeps before it archives anything.

use std::path::PathBuf;

use crate::support::docker::{self as dk, in_volume, started_at};
use crate::support::snapshot::{journal_count, killed, recover, setup, snap};
use crate::support::*;

#[test]
fn f2_new_data_that_ran_is_kept_with_its_writes_and_not_restarted() {
    let s = setup();
    // Killed once the new data runs (before the swap was marked done).
    killed(s.restore_a(), "restore:after-start");
    dk::wait_ready(&s.pg.name);
    s.pg.psql("insert into marks(label) values ('written after the swap')");
    let since = started_at(&s.pg.name);
    let r = recover(s.state.path(), &s.pg.name);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(
        started_at(&s.pg.name),
        since,
        "the repair stopped the container that ran the new data"
    );
    assert!(
        s.marks().contains("written after the swap"),
        "a write into the new data was rolled back: {}",
        s.marks()
    );
    assert!(!s.marks().contains("after a"), "not the new data");
    assert_eq!(journal_count(s.state.path()), 0);
}

#[test]
fn f3_a_swap_whose_container_was_never_stopped_is_rolled_back_not_completed() {
    let s = setup();
    // Journal says "stopped", but the stop never happened.
    killed(s.restore_a(), "restore:before-stop");
    assert!(s.pg.running());
    s.pg.psql("insert into marks(label) values ('written before the stop')");
    // (The repair may stop and start it: a stop the dead ward asked for
    // could still be on its way in the engine.)
    let r = recover(s.state.path(), &s.pg.name);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    dk::wait_ready(&s.pg.name);
    assert!(s.pg.running());
    let marks = s.marks();
    assert!(
        marks.contains("written before the stop") && marks.contains("after a"),
        "the old data with its last write is gone: {marks}"
    );
    assert_eq!(
        in_volume(&s.pg.volume, "ls -A /v | grep '^.ward-' || true"),
        ""
    );
}

#[test]
fn f4_foreign_data_written_mid_swap_is_neither_overwritten_nor_nested_into() {
    let s = setup();
    killed(s.restore_a(), "restore:after-swap-out");
    // Something writes into the emptied volume (a hand-started entrypoint).
    in_volume(&s.pg.volume, "echo stray > /v/PG_VERSION && mkdir /v/base");
    let r = recover(s.state.path(), &s.pg.name);
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert!(
        r.stderr().contains("besides ward's swap directory"),
        "{}",
        r.stderr()
    );
    assert!(
        !s.pg.running(),
        "started on a volume that is not wholly old or new"
    );
    assert_eq!(journal_count(s.state.path()), 1, "journal removed");
    // The stray entries are untouched and nothing was nested into them.
    assert_eq!(
        in_volume(&s.pg.volume, "cat /v/PG_VERSION; ls -A /v/base").trim(),
        "stray"
    );
    // Once the stray entries are moved out, recover finishes the job.
    in_volume(&s.pg.volume, "rm -rf /v/PG_VERSION /v/base");
    let r = recover(s.state.path(), &s.pg.name);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    dk::wait_ready(&s.pg.name);
    assert!(!s.marks().contains("after a"), "not the new data");
}

#[test]
fn f5_a_failed_swap_back_leaves_the_container_stopped_and_the_journal_kept() {
    let s = setup();
    let r = s
        .restore_a()
        .env("WARD_FAULT", "restore:after-swap-out,restore:swap-back")
        .run();
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert!(
        r.stderr()
            .contains("swapping the previous data back failed"),
        "{}",
        r.stderr()
    );
    assert!(
        !s.pg.running(),
        "the container was started on a half-swapped volume"
    );
    assert_eq!(journal_count(s.state.path()), 1);
    let r = recover(s.state.path(), &s.pg.name);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    dk::wait_ready(&s.pg.name);
    assert!(s.pg.running());
    assert_eq!(journal_count(s.state.path()), 0);
}

#[test]
fn f12_an_unreadable_swap_directory_is_an_error_not_no_swap() {
    let s = setup();
    killed(s.restore_a(), "restore:mid-stage");
    // The swap directory is replaced by a file: ward must not conclude
    // "no swap" and drop the journal.
    in_volume(
        &s.pg.volume,
        "for w in /v/.ward-swap-*; do rm -rf \"$w\"; echo x > \"$w\"; done",
    );
    let r = recover(s.state.path(), &s.pg.name);
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert!(r.stderr().contains("not a directory"), "{}", r.stderr());
    assert_eq!(journal_count(s.state.path()), 1, "journal dropped");
    assert!(s.pg.running());
    assert!(s.marks().contains("after a"), "the old data was touched");
}

#[test]
fn f6_datadir_journal_write_failing_after_the_move_aside_keeps_the_new_copy() {
    let mut c = cluster();
    let url = c.url("postgres");
    sql(
        &url,
        "create table t(v text); insert into t values ('snapshot')",
    );
    let data: PathBuf = c.dir().join("data");
    let store = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    c.stop().unwrap();
    let datadir = data.display().to_string();
    snap(
        store.path(),
        state.path(),
        &["create", "n", "--datadir", &datadir],
    )
    .ok();
    std::fs::write(data.join("marker-of-the-old-data"), "old").unwrap();
    let r = snap(
        store.path(),
        state.path(),
        &["restore", "n", "--datadir", &datadir, "--yes"],
    )
    .env("WARD_FAULT", "datadir-journal:swapped-out")
    .run();
    assert_eq!(r.code(), 2, "{}", r.stderr());
    // The new copy must still exist beside the moved-aside old one.
    let parent = data.parent().unwrap();
    let fresh: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("ward-restore"))
        .collect();
    assert_eq!(
        fresh.len(),
        1,
        "the new copy was deleted while the old is aside"
    );
    // The next ward (any) finishes the swap: the data directory is the snapshot.
    let next = ward()
        .args(["doctor"])
        .env("WARD_STATE_DIR", &state.path().display().to_string())
        .run();
    assert!(
        next.stderr().contains("interrupted ward"),
        "{}",
        next.stderr()
    );
    assert!(data.join("PG_VERSION").exists());
    assert!(
        !data.join("marker-of-the-old-data").exists(),
        "not the new data"
    );
    assert_eq!(journal_count(state.path()), 0);
}

#[test]
fn f9_a_stale_swap_directory_never_enters_a_cold_or_online_snapshot() {
    let s = setup();
    // A restore killed mid-stage whose journal is elsewhere (another state
    // directory): nothing accounts for its swap directory in PGDATA.
    let lost = s.restore_a_killed_elsewhere("restore:mid-stage");
    in_volume(&s.pg.volume, "mkdir /v/.ward-trash-old");
    assert_ne!(
        in_volume(&s.pg.volume, "ls -A /v | grep '^.ward-swap-' || true"),
        ""
    );
    for (name, online) in [("cold", false), ("online", true)] {
        if online {
            // Leftovers again, as a second killed restore would leave.
            killed(
                snap(
                    s.store.path(),
                    lost.path(),
                    &["restore", "a", "--container", &s.pg.name, "--yes"],
                ),
                "restore:mid-stage",
            );
        }
        let mut args = vec!["create", name, "--container", &s.pg.name];
        if online {
            args.push("--online");
        }
        let r = snap(s.store.path(), s.state.path(), &args).run();
        assert_eq!(r.code(), 0, "{name}: {}", r.stderr());
        assert!(
            r.stderr().contains("removed .ward-"),
            "{name}: {}",
            r.stderr()
        );
        let manifest = std::fs::read_dir(s.store.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(name))
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .next()
            .expect("a manifest");
        assert!(
            !manifest.contains(".ward-"),
            "{name}: a swap directory was archived"
        );
        assert_eq!(
            in_volume(&s.pg.volume, "ls -A /v | grep '^.ward-' || true"),
            ""
        );
    }
    assert!(s.pg.running());
    assert!(s.marks().contains("after a"));
}

#[test]
fn f9_a_swap_directory_holding_moved_aside_data_is_neither_snapshotted_nor_deleted() {
    let s = setup();
    let _lost = s.restore_a_killed_elsewhere("restore:after-swap-out");
    let r = snap(
        s.store.path(),
        s.state.path(),
        &["create", "x", "--container", &s.pg.name],
    )
    .run();
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert!(
        r.stderr().contains("may be the only copy"),
        "{}",
        r.stderr()
    );
    assert_ne!(
        in_volume(&s.pg.volume, "ls /v/.ward-swap-*/old | head -1"),
        "",
        "the moved-aside data was deleted"
    );
}

#[test]
fn m1_a_kept_previous_whose_journal_is_lost_is_finished_by_the_sweep_and_put_back() {
    let s = setup();
    let previous = s.pg.checksums();
    let prev = format!("{}-ward-previous", s.pg.volume);
    let _gone = dk::RemoveVolume(prev.clone());
    // Killed once the new data runs, the previous-contents volume emptied
    // and old/ not yet copied into it; the journal is in another state
    // directory (lost to the next ward).
    let lost = tempfile::tempdir().unwrap();
    killed(
        snap(
            s.store.path(),
            lost.path(),
            &[
                "restore",
                "a",
                "--container",
                &s.pg.name,
                "--yes",
                "--keep-previous",
            ],
        ),
        "restore:mid-keep",
    );
    dk::wait_ready(&s.pg.name);
    assert!(
        !s.marks().contains("after a"),
        "the new data is not in place"
    );
    let markers = in_volume(&s.pg.volume, "ls /v/.ward-swap-*/");
    for m in ["committed", "keep-previous", "prev-cleared", "old"] {
        assert!(markers.lines().any(|l| l == m), "no {m}: {markers}");
    }
    assert!(!markers.lines().any(|l| l == "kept"), "{markers}");
    // As an older ward's keep would have left it: no keep-previous marker,
    // only prev-cleared says a keep had begun.
    in_volume(&s.pg.volume, "rm /v/.ward-swap-*/keep-previous");
    // Any ward that sweeps the volume (here `restore --previous` itself)
    // finishes the copy, then puts it back.
    let r = snap(
        s.store.path(),
        s.state.path(),
        &["restore", "--previous", "--container", &s.pg.name, "--yes"],
    )
    .run();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(
        r.stderr().contains("finished keeping them in volume"),
        "{}",
        r.stderr()
    );
    dk::wait_ready(&s.pg.name);
    assert_eq!(
        s.pg.checksums(),
        previous,
        "the previous contents are not back"
    );
    assert_eq!(
        in_volume(&s.pg.volume, "ls -A /v | grep '^.ward-' || true"),
        ""
    );

    // A previous-contents volume without a whole copy (a keep killed
    // half-way whose swap directory is gone) is never put back.
    dk::docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{prev}:/p"),
        dk::IMAGE,
        "rm",
        "/p/.ward-previous-complete",
    ]);
    let r = snap(
        s.store.path(),
        s.state.path(),
        &["restore", "--previous", "--container", &s.pg.name, "--yes"],
    )
    .run();
    let err = r.fails_with(2, "incomplete");
    assert!(err.contains("was not touched"), "{err}");
    assert!(s.pg.running());
    assert_eq!(s.pg.checksums(), previous, "the data changed");
    assert_eq!(dk::remove_helpers(&s.pg.volume), 0, "helper left behind");
    assert_eq!(journal_count(s.state.path()), 0);

    // A previous-contents volume of an older ward (its label, no format
    // label, no marker) holding a whole copy is put back, with a note.
    dk::docker(&["volume", "rm", &prev]);
    dk::docker(&["stop", &s.pg.name]);
    dk::docker(&[
        "volume",
        "create",
        "--label",
        &format!("ward.previous-of={}", s.pg.volume),
        &prev,
    ]);
    dk::docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/v", s.pg.volume),
        "-v",
        &format!("{prev}:/p"),
        dk::IMAGE,
        "cp",
        "-a",
        "/v/.",
        "/p/",
    ]);
    dk::docker(&["start", &s.pg.name]);
    dk::wait_ready(&s.pg.name);
    s.pg.psql("insert into marks(label) values ('after the old copy')");
    let r = snap(
        s.store.path(),
        s.state.path(),
        &["restore", "--previous", "--container", &s.pg.name, "--yes"],
    )
    .run();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(r.stderr().contains("older ward"), "{}", r.stderr());
    dk::wait_ready(&s.pg.name);
    assert_eq!(
        s.pg.checksums(),
        previous,
        "the older ward's copy is not back"
    );

    // Again an older ward's volume, and beside it an older ward's keep cut
    // short (committed, prev-cleared, old/ whole; journal lost): the sweep
    // finishes that keep — making the volume again, so nothing may hold it
    // mounted — and `--previous` puts old/ back.
    dk::docker(&["volume", "rm", &prev]);
    dk::docker(&["stop", &s.pg.name]);
    dk::docker(&[
        "volume",
        "create",
        "--label",
        &format!("ward.previous-of={}", s.pg.volume),
        &prev,
    ]);
    in_volume(
        &s.pg.volume,
        "cd /v && mkdir -p .ward-swap-older/old && cp -a $(ls) .ward-swap-older/old/ && \
         touch .ward-swap-older/committed .ward-swap-older/prev-cleared",
    );
    dk::docker(&["start", &s.pg.name]);
    dk::wait_ready(&s.pg.name);
    s.pg.psql("insert into marks(label) values ('after the older keep')");
    let r = snap(
        s.store.path(),
        s.state.path(),
        &["restore", "--previous", "--container", &s.pg.name, "--yes"],
    )
    .run();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(
        r.stderr().contains("finished keeping them in volume"),
        "{}",
        r.stderr()
    );
    dk::wait_ready(&s.pg.name);
    assert_eq!(
        s.pg.checksums(),
        previous,
        "old/ of the older keep is not back"
    );
    assert_eq!(
        in_volume(&s.pg.volume, "ls -A /v | grep '^.ward-' || true"),
        ""
    );
}

#[test]
fn a_background_delete_cut_short_is_swept_by_the_next_create() {
    let s = setup();
    // A finished restore says the old data goes in the background.
    let r = s.restore_a().run();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(
        r.stderr().contains("deleted in the background"),
        "{}",
        r.stderr()
    );
    // Killed once the old data is trash but before its delete started, the
    // journal lost: the trash is certain to be there.
    let _lost = s.restore_a_killed_elsewhere("restore:before-background-delete");
    let left = in_volume(&s.pg.volume, "ls -A /v | grep '^.ward-' || true");
    assert!(
        left.lines().count() == 1 && left.starts_with(".ward-trash-"),
        "not one trash directory: {left}"
    );
    dk::wait_ready(&s.pg.name);
    let r = snap(
        s.store.path(),
        s.state.path(),
        &["create", "after", "--container", &s.pg.name],
    )
    .run();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(
        r.stderr().contains(&format!("removed {}", left.trim())),
        "{}",
        r.stderr()
    );
    let manifest = std::fs::read_to_string(s.store.path().join("after.json")).unwrap();
    assert!(!manifest.contains(".ward-"), "trash was archived");
    assert_eq!(
        in_volume(&s.pg.volume, "ls -A /v | grep '^.ward-' || true"),
        ""
    );
    assert!(!s.marks().contains("after a"), "not the restored data");
}
