//! Healing from anywhere (#13 self-healing, #14 item 19, review F7/F8): a
//! ward killed with SIGKILL at an exact point of a restore or a cold
//! snapshot (`WARD_FAULT=<point>:kill`) leaves its journal in ward's state
//! directory; the next ward invocation of ANY kind (`doctor`, `seed`, …),
//! run from another working directory with no `--store`, finishes or undoes
//! the job and restarts the container — exactly the old or exactly the new
//! data. A journal whose writer is still alive is left alone.

use std::path::Path;

use crate::support::docker::{self as dk, Pg};
use crate::support::snapshot::{journals, killed, snap};
use crate::support::*;

type Sums = Vec<(String, String)>;

/// ward's own entries left at the volume root.
fn ward_entries(volume: &str) -> String {
    dk::in_volume(volume, "ls -A /v | grep '^.ward-' || true")
        .trim()
        .to_string()
}

/// A container with two snapshots: "a" (older) and the live data "b".
fn two_states(pg: &Pg, store: &Path, state: &Path) -> (Sums, Sums) {
    dk::fill(&pg.name, 3_000);
    pg.psql("insert into marks(label) values ('state a')");
    let a = pg.checksums();
    snap(store, state, &["create", "a", "--container", &pg.name]).ok();
    pg.psql("insert into marks(label) values ('state b'); delete from items where id % 5 = 0");
    let b = pg.checksums();
    assert_ne!(a, b);
    (a, b)
}

/// The next ward, anywhere: `doctor` or a `seed` that fails after the
/// repair (its database does not answer); both in a fresh working directory
/// and without `--store`.
fn any_ward(kind: &str, state: &Path) -> Run {
    let w = match kind {
        "doctor" => ward().args(["doctor"]),
        _ => ward().args([
            "seed",
            "--database-url",
            "postgres://ward:nothing@127.0.0.1:9/none",
            "-n",
            "1",
        ]),
    };
    w.env("WARD_STATE_DIR", &state.display().to_string()).run()
}

#[test]
fn a_restore_killed_mid_swap_is_finished_or_undone_by_doctor_or_seed_from_elsewhere() {
    let pg = Pg::start();
    let store = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let (a, b) = two_states(&pg, store.path(), state.path());
    let mut current = b;
    // (kill point, next ward, whether the restore completes)
    let cases = [
        ("restore:mid-stage", "doctor", false),
        ("restore:after-stop", "seed", false),
        ("restore:after-swap-out", "doctor", true),
        ("restore:after-start", "seed", true),
    ];
    for (point, next, completes) in cases {
        killed(
            snap(
                store.path(),
                state.path(),
                &["restore", "a", "--container", &pg.name, "--yes"],
            ),
            point,
        );
        assert_eq!(
            journals(state.path()).len(),
            1,
            "{point}: the killed ward left no journal"
        );
        let r = any_ward(next, state.path());
        assert!(
            r.stderr().contains("interrupted ward"),
            "{point}: `ward {next}` did not say what it repaired: {}",
            r.stderr()
        );
        assert!(
            journals(state.path()).is_empty(),
            "{point}: journal still there after `ward {next}`: {}",
            r.stderr()
        );
        assert!(
            pg.running(),
            "{point}: container left stopped by `ward {next}`"
        );
        dk::wait_ready(&pg.name);
        let now = pg.checksums();
        let expected = if completes { &a } else { &current };
        assert_eq!(
            &now,
            expected,
            "{point}: after `ward {next}` the data is not the {} data",
            if completes { "new" } else { "old" }
        );
        current = now;
        assert_eq!(ward_entries(&pg.volume), "", "{point}: swap directory left");
        // Put "b" back for the next case when the restore completed.
        if completes {
            pg.psql("insert into marks(label) values ('state b again')");
            current = pg.checksums();
        }
    }
}

#[test]
fn a_cold_snapshot_killed_while_the_container_is_stopped_is_restarted_by_doctor() {
    let pg = Pg::start();
    let store = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    dk::fill(&pg.name, 1_000);
    let before = pg.checksums();
    killed(
        snap(
            store.path(),
            state.path(),
            &["create", "x", "--container", &pg.name],
        ),
        "create:after-stop",
    );
    assert!(
        !pg.running(),
        "the kill was meant to land while it is stopped"
    );
    let r = any_ward("doctor", state.path());
    assert!(r.stderr().contains("restarted container"), "{}", r.stderr());
    assert!(pg.running(), "doctor did not restart the container");
    dk::wait_ready(&pg.name);
    assert_eq!(pg.checksums(), before);
    assert!(journals(state.path()).is_empty());
}

#[test]
fn a_journal_whose_writer_is_alive_is_left_alone() {
    let pg = Pg::start();
    let store = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    dk::fill(&pg.name, 500);
    // A real journal, left by a killed cold snapshot…
    killed(
        snap(
            store.path(),
            state.path(),
            &["create", "x", "--container", &pg.name],
        ),
        "create:after-stop",
    );
    let name = journals(state.path()).pop().expect("a journal");
    let path = state.path().join(&name);
    // …claimed by a process that is alive (as if that ward still ran).
    let mut alive = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let mut j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let pid = alive.id();
    let start = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start: u64 = start[start.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    j["pid"] = pid.into();
    j["pid_start"] = start.into();
    std::fs::write(&path, serde_json::to_string(&j).unwrap()).unwrap();

    let r = any_ward("doctor", state.path());
    assert!(r.stderr().contains("still working on"), "{}", r.stderr());
    assert!(path.exists(), "a live ward's journal was removed");
    assert!(!pg.running(), "a live ward's stopped container was started");
    // A snapshot command on that target refuses rather than take over.
    let c = snap(
        store.path(),
        state.path(),
        &["create", "y", "--container", &pg.name],
    )
    .run();
    assert_eq!(c.code(), 2, "{}", c.stderr());
    assert!(
        c.stderr().contains("error: ward pid") && c.stderr().contains("wait for it to finish"),
        "{}",
        c.stderr()
    );

    // Once the writer is gone, the next ward repairs it.
    alive.kill().unwrap();
    alive.wait().unwrap();
    let r = any_ward("doctor", state.path());
    assert!(r.stderr().contains("restarted container"), "{}", r.stderr());
    assert!(pg.running());
    assert!(!path.exists());
}
