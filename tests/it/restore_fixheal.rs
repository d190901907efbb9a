//! Regression tests for the data-loss review of restore/heal (branch
//! fixheal). Each drives the real binary against a real container or
//! cluster, killing ward at an exact point (`WARD_FAULT=<point>:kill`):
//!
//! - 1: the sweep of swap directories no journal accounts for never deletes
//!   one that holds part of the previous data (a ward killed in the middle
//!   of moving it aside, its journal in another state directory), and never
//!   one whose lock a live helper holds (another ward staging right now).
//! - 3: a data-directory restore killed after staging, whose data directory
//!   the user started the server on again, is rolled back: the running
//!   cluster is never moved away.
//! - 5: a restore killed after asking the engine to start the container on
//!   the new data, before hearing back, is never rolled back or restarted.

use std::path::PathBuf;

use crate::support::docker::{self as dk, in_volume};
use crate::support::snapshot::{journal_count, killed, setup, snap};
use crate::support::*;

#[test]
fn fix1_a_swap_directory_with_part_of_the_old_data_aside_survives_the_sweep() {
    let s = setup();
    let _lost = s.restore_a_killed_elsewhere("restore:after-swap-out");
    // As if killed in the middle of moving the old data aside: no
    // `out-done` yet, part of the data in old/, the rest still in place.
    in_volume(
        &s.pg.volume,
        "cd /v/.ward-swap-* && rm out-done && mv old/base /v/",
    );
    let before = in_volume(&s.pg.volume, "cd /v/.ward-swap-*/old && find . | sort");
    assert!(before.contains("./global"), "{before}");
    let r = s.create("x");
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert!(
        r.stderr().contains("may be the only copy"),
        "{}",
        r.stderr()
    );
    let after = in_volume(&s.pg.volume, "cd /v/.ward-swap-*/old && find . | sort");
    assert_eq!(before, after, "the moved-aside data was touched");
    assert_ne!(in_volume(&s.pg.volume, "ls /v/base | head -1"), "");
}

#[test]
fn fix1_a_swap_directory_whose_lock_a_live_helper_holds_is_left_alone() {
    let s = setup();
    // A restore's own staging holds the lock while its helper lives. Looked
    // at while that ward is alive but frozen (SIGSTOP) mid-stage, so neither
    // can it move on while the probe runs, nor can another test's ward sweep
    // its helper as an orphan; then it is killed.
    let lost = tempfile::tempdir().unwrap();
    let (mut child, _dir) = snap(
        s.store.path(),
        lost.path(),
        &["restore", "a", "--container", &s.pg.name, "--yes"],
    )
    .env("WARD_FAULT", "restore:mid-stage:sleep")
    .spawn();
    let ward_pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut lock = String::new();
    while lock != "held" {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the restore ended before its staging was seen holding the lock ({lock})"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "staging does not hold its lock ({lock})"
        );
        if dk::helpers(&s.pg.volume) == 0 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            continue;
        }
        nix::sys::signal::kill(ward_pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        lock = in_volume(
            &s.pg.volume,
            "set -- /v/.ward-swap-*/lock; [ -e \"$1\" ] || { echo absent; exit 0; }; \
             flock -n \"$1\" true && echo free || echo held",
        )
        .trim()
        .to_string();
        if lock != "held" {
            // Not that far yet: let it go on a little.
            nix::sys::signal::kill(ward_pid, nix::sys::signal::Signal::SIGCONT).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let _ = child.kill(); // SIGKILL: nothing is cleaned up
    let _ = child.wait();
    dk::remove_helpers(&s.pg.volume);
    in_volume(&s.pg.volume, "rm -rf /v/.ward-swap-*");
    // Another ward (its journal and lock elsewhere) stages right now.
    let live = dk::unique("ward-test-holder");
    dk::docker(&[
        "run",
        "-d",
        "--name",
        &live,
        "--label",
        "ward.test=1",
        "--entrypoint",
        "sh",
        "-v",
        &format!("{}:/v", s.pg.volume),
        dk::IMAGE,
        "-c",
        "mkdir -p /v/.ward-swap-live/stage && exec 9>/v/.ward-swap-live/lock && flock -x 9 \
         && touch /v/.ward-swap-live/locked && exec sleep 600",
    ]);
    let mut tries = 0;
    while !in_volume(&s.pg.volume, "ls /v/.ward-swap-live/").contains("locked") {
        tries += 1;
        assert!(tries < 50, "the holder never took its lock");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let r = s.create("x");
    let kept = in_volume(&s.pg.volume, "ls -A /v/.ward-swap-live/");
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", "-v", &live])
        .output();
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert!(
        r.stderr().contains("another ward is restoring"),
        "{}",
        r.stderr()
    );
    assert!(kept.contains("stage"), "a live staging was deleted: {kept}");
}

#[test]
fn fix5_a_restore_killed_after_asking_the_start_is_never_rolled_back() {
    let s = setup();
    killed(
        snap(
            s.store.path(),
            s.state.path(),
            &["restore", "a", "--container", &s.pg.name, "--yes"],
        ),
        "restore:after-start-request",
    );
    dk::wait_ready(&s.pg.name);
    s.pg.psql("insert into marks(label) values ('written after the swap')");
    let since = dk::docker(&["inspect", "-f", "{{.State.StartedAt}}", &s.pg.name]);
    let r = ward()
        .args(["snapshot", "recover", "--container", &s.pg.name])
        .env("WARD_STATE_DIR", &s.state.path().display().to_string())
        .run();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert_eq!(
        dk::docker(&["inspect", "-f", "{{.State.StartedAt}}", &s.pg.name]),
        since,
        "the repair stopped the container that ran the new data"
    );
    let marks =
        s.pg.psql("select string_agg(label, ',' order by label) from marks");
    assert!(marks.contains("written after the swap"), "{marks}");
    assert!(!marks.contains("after a"), "not the new data: {marks}");
    assert_eq!(journal_count(s.state.path()), 0);
}

#[test]
fn fix3_a_datadir_restore_killed_after_staging_never_moves_a_running_cluster() {
    let mut c = cluster();
    let url = c.url("postgres");
    sql(
        &url,
        "create table t(v text); insert into t values ('snapshot')",
    );
    let data: PathBuf = c.dir().join("data");
    let datadir = data.display().to_string();
    let store = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    c.stop().unwrap();
    snap(
        store.path(),
        state.path(),
        &["create", "n", "--datadir", &datadir],
    )
    .ok();
    killed(
        snap(
            store.path(),
            state.path(),
            &["restore", "n", "--datadir", &datadir, "--yes"],
        ),
        "datadir:after-staged",
    );
    assert_eq!(journal_count(state.path()), 1);
    // The user starts the server on the old data again and writes.
    c.start_again().unwrap();
    sql(&url, "insert into t values ('written after the kill')");
    let next = ward()
        .args(["doctor"])
        .env("WARD_STATE_DIR", &state.path().display().to_string())
        .run();
    assert!(
        next.stderr().contains("interrupted ward"),
        "{}",
        next.stderr()
    );
    assert_eq!(
        value(&url, "select string_agg(v, ',' order by v) from t"),
        "snapshot,written after the kill"
    );
    let leftovers: Vec<_> = std::fs::read_dir(data.parent().unwrap())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".ward-"))
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(journal_count(state.path()), 0);
}
