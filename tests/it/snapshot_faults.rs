//! `kill -9` and Ctrl-C at random points of `ward snapshot create` and
//! `restore`, against a real container: afterwards no damaged snapshot is
//! listed as valid, and the data is intact once the next ward has run
//! (tests/it/restore_kill.rs tries more points, with old and new data).
//! Prints the figures of the trials.

use std::time::{Duration, Instant};

use crate::support::docker::{self as dk, Pg};
use crate::support::snapshot::{Rng, listed, snap_in as snap};

/// Whether Postgres in the container answers within `secs` (no panic).
fn try_ready(container: &str, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        let out = std::process::Command::new("docker")
            .args([
                "exec",
                "-u",
                "postgres",
                container,
                "psql",
                "-XAtq",
                "-U",
                "postgres",
                "-c",
                "select count(*) from items",
            ])
            .output()
            .unwrap();
        if out.status.success() {
            return true;
        }
        if !dk::running(container) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    false
}

#[test]
fn kill_9_at_random_points_of_create_and_restore_loses_nothing() {
    let pg = Pg::start();
    dk::fill(&pg.name, 60_000);
    let want = pg.checksums();
    let st = tempfile::tempdir().unwrap();
    snap(st.path(), &["create", "base", "--container", &pg.name]).ok();
    let seed = std::env::var("WARD_TRIAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill -9 trials: WARD_TRIAL_SEED={seed}");
    let mut rng = Rng(seed);
    let trials = 22;
    let (mut left_stopped, mut helpers_left, mut still_ok) = (0, 0, 0);
    let mut restarted_by_ward = 0;
    for i in 0..trials {
        let restore = i % 2 == 1;
        let (args, max_ms): (Vec<String>, u64) = if restore {
            (
                ["restore", "base", "--container", &pg.name, "--yes"]
                    .map(String::from)
                    .to_vec(),
                4200,
            )
        } else {
            (
                ["create", &format!("t{i}"), "--container", &pg.name]
                    .map(String::from)
                    .to_vec(),
                1800,
            )
        };
        let delay = rng.next(max_ms);
        let (mut child, _dir) = snap(
            st.path(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .spawn();
        std::thread::sleep(Duration::from_millis(delay));
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // A `docker stop` the killed ward had asked for still completes in the
        // engine: wait until the container is either stopped or answering.
        std::thread::sleep(Duration::from_millis(500));
        let _ = try_ready(&pg.name, 30);
        helpers_left += dk::helpers(&pg.volume);

        // 1. Everything listed verifies: no damaged snapshot passes as valid.
        for name in listed(st.path()) {
            let r = snap(st.path(), &["verify", &name]).run();
            assert_eq!(
                r.code(),
                0,
                "trial {i} ({} killed at {delay} ms): listed snapshot {name} does not verify: {}",
                args[0],
                r.stdout()
            );
        }
        // 2. A container the killed ward left stopped, or a swap it left
        //    half-done, is repaired by the next ward on its own.
        let mut how = "running, intact";
        if !dk::running(&pg.name) {
            left_stopped += 1;
            let r = snap(
                st.path(),
                &["create", &format!("probe{i}"), "--container", &pg.name],
            )
            .run();
            assert_eq!(r.code(), 0, "trial {i}: {}", r.stderr());
            assert!(r.stderr().contains("interrupted ward"), "{}", r.stderr());
            assert!(
                dk::running(&pg.name),
                "trial {i}: not restarted by the next ward"
            );
            restarted_by_ward += 1;
            how = "left stopped; the next ward finished the job and restarted it";
        }
        let intact = try_ready(&pg.name, 30) && pg.checksums() == want;
        assert!(
            intact,
            "trial {i}: data not intact: running {}, checksums {:?}",
            dk::running(&pg.name),
            std::panic::catch_unwind(|| pg.checksums()).ok()
        );
        if how == "running, intact" {
            still_ok += 1;
        }
        eprintln!(
            "trial {i:2}: {:7} killed at {delay:4} ms{} → {}",
            args[0],
            if finished {
                " (had already finished)"
            } else {
                ""
            },
            how
        );
    }
    // The next ward removes the helper containers killed wards left behind.
    snap(st.path(), &["create", "final", "--container", &pg.name]).ok();
    assert_eq!(
        dk::helpers(&pg.volume),
        0,
        "orphaned helpers were not swept"
    );
    eprintln!(
        "kill -9 figures: {trials} trials; running and intact {still_ok}, container left stopped {left_stopped} (restarted by the next ward \
         {restarted_by_ward}), helper containers seen after the kills {helpers_left} (all swept by the next ward); every listed snapshot verified"
    );
}

#[test]
fn ctrl_c_mid_create_and_mid_restore_restarts_and_rolls_back() {
    let pg = Pg::start();
    dk::fill(&pg.name, 60_000);
    let st = tempfile::tempdir().unwrap();
    snap(st.path(), &["create", "base", "--container", &pg.name]).ok();
    pg.psql("insert into marks(label) values ('newer than base')");
    let want = pg.checksums();
    // Each run pauses for three seconds just after it stopped the container
    // (`WARD_FAULT=<point>:sleep`): the window where an interrupt must restart
    // the container and leave no half-made snapshot and no half-restored data.
    // The test waits until it sees the container stopped, not for a guessed
    // delay, so the interrupt always lands in that window.
    for (args, pause) in [
        (
            vec!["create", "c1", "--container", &pg.name],
            "create:after-stop:sleep",
        ),
        (
            vec!["restore", "base", "--container", &pg.name, "--yes"],
            "restore:after-stop:sleep",
        ),
    ] {
        let (mut child, _dir) = snap(st.path(), &args).env("WARD_FAULT", pause).spawn();
        let deadline = Instant::now() + Duration::from_secs(120);
        while dk::running(&pg.name) {
            assert!(
                child.try_wait().unwrap().is_none(),
                "{}: ended before it stopped the container",
                args[0]
            );
            assert!(
                Instant::now() < deadline,
                "{}: never stopped the container",
                args[0]
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        let code = out.status.code().unwrap_or(-1);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            code, 130,
            "{}: the interrupt did not interrupt: {err}",
            args[0]
        );
        assert!(
            dk::running(&pg.name),
            "{}: container left stopped: {err}",
            args[0]
        );
        assert!(try_ready(&pg.name, 60));
        assert_eq!(dk::remove_helpers(&pg.volume), 0, "helper left behind");
        assert_eq!(
            pg.checksums(),
            want,
            "{}: the interrupted run changed the data",
            args[0]
        );
        assert_eq!(
            listed(st.path()),
            vec!["base".to_string()],
            "{}: an interrupted run left a snapshot",
            args[0]
        );
        eprintln!("Ctrl-C during {}: exit {code}", args[0]);
    }
}
