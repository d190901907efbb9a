//! Issue #13 point 3: `ward doctor` sweeps the volume of the snapshot target
//! ward.toml names for the leftovers of interrupted restores no journal
//! accounts for, by the restore's rules — removes trash, staging leftovers
//! and finished swaps; keeps a swap directory that may hold previous data
//! (and fails the check, saying what to do); leaves one whose lock a live
//! helper holds (busy) — and reports each. `restore --previous` keeps to
//! the same rules before it touches anything.

use crate::support::docker::{self as dk, Pg};
use crate::support::*;

/// ward's entries at the volume root.
fn ward_entries(pg: &Pg) -> Vec<String> {
    let out = dk::docker(&[
        "exec",
        &pg.name,
        "sh",
        "-c",
        "ls -A /var/lib/postgresql/data | grep '^.ward-' || true",
    ]);
    out.lines().map(str::to_string).collect()
}

/// `ward doctor --json` with `[snapshot] container = …`; returns the exit
/// code and the "restore leftovers" check.
fn doctor(pg: &Pg) -> (i32, serde_json::Value) {
    let r = ward()
        .file(
            "ward.toml",
            &format!("[snapshot]\ncontainer = \"{}\"\n", pg.name),
        )
        .args(["doctor", "--json"])
        .run();
    let report = r.json();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "restore leftovers")
        .unwrap_or_else(|| panic!("no leftovers check: {report}"))
        .clone();
    (r.code(), check)
}

/// A helper-like container holding `flock` on `dir/lock` in the volume, as
/// a live ward's staging helper does; removed on drop.
struct LockHolder(String);

impl LockHolder {
    fn hold(pg: &Pg, dir: &str) -> LockHolder {
        let name = dk::unique("ward-test-lock");
        dk::docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            "ward.test=1",
            "--network",
            "none",
            "-v",
            &format!("{}:/v", pg.volume),
            "--entrypoint",
            "sh",
            dk::IMAGE,
            "-c",
            &format!("exec 9>/v/{dir}/lock; flock -x 9; touch /v/{dir}/held; sleep 600"),
        ]);
        let holder = LockHolder(name);
        let held = format!("/var/lib/postgresql/data/{dir}/held");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !std::process::Command::new("docker")
            .args(["exec", &pg.name, "test", "-e", &held])
            .status()
            .unwrap()
            .success()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the lock was never taken"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        holder
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", "-v", &self.0])
            .output();
    }
}

#[test]
fn doctor_sweeps_the_configured_volume_and_reports_removed_kept_and_busy() {
    let pg = Pg::start();
    let before = pg.checksums();
    dk::docker(&[
        "exec",
        &pg.name,
        "sh",
        "-c",
        "cd /var/lib/postgresql/data && \
         mkdir -p .ward-trash-t1/x .ward-swap-staged/stage/data .ward-swap-done/old \
           .ward-swap-aside/old .ward-swap-busy/stage && \
         touch .ward-swap-done/committed .ward-swap-aside/old/PG_VERSION",
    ]);
    let _holder = LockHolder::hold(&pg, ".ward-swap-busy");

    let (code, check) = doctor(&pg);
    assert_eq!(code, 1, "a kept swap directory needs a person: {check}");
    assert_eq!(check["status"], "missing", "{check}");
    let detail = check["detail"].as_str().unwrap();
    for removed in [".ward-trash-t1", ".ward-swap-staged", ".ward-swap-done"] {
        assert!(detail.contains(removed), "{removed} not reported: {detail}");
    }
    assert!(detail.contains("kept .ward-swap-aside"), "{detail}");
    assert!(detail.contains("busy .ward-swap-busy"), "{detail}");
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("old/ is the previous data"),
        "{check}"
    );
    assert_eq!(
        ward_entries(&pg),
        vec![
            ".ward-swap-aside".to_string(),
            ".ward-swap-busy".to_string()
        ],
        "the sweep removed the wrong entries"
    );
    assert_eq!(pg.checksums(), before, "the data changed");
    assert!(pg.running());
    assert_eq!(dk::helpers(&pg.volume), 0, "helpers left");

    // Sorted out by hand and the other ward gone: nothing left, check ok.
    drop(_holder);
    dk::docker(&[
        "exec",
        &pg.name,
        "rm",
        "-rf",
        "/var/lib/postgresql/data/.ward-swap-aside",
    ]);
    let (code, check) = doctor(&pg);
    assert_eq!(check["status"], "ok", "{check}");
    assert_eq!(code, 0, "{check}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("removed .ward-swap-busy; kept nothing; busy nothing"),
        "{check}"
    );
    assert!(ward_entries(&pg).is_empty());
}

#[test]
fn doctor_without_a_configured_target_skips_the_sweep_and_says_how_to_enable_it() {
    let r = ward().args(["doctor", "--json"]).run();
    let report = r.json();
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "restore leftovers")
        .unwrap()
        .clone();
    assert_eq!(check["status"], "skipped", "{check}");
    assert!(
        check["fix"].as_str().unwrap().contains("[snapshot]"),
        "{check}"
    );
}

fn snap(store: &std::path::Path, args: &[&str]) -> Run {
    ward()
        .args(["snapshot"])
        .args(args)
        .args(["--store", &store.display().to_string()])
        .run()
}

/// `restore --keep-previous` and `restore --previous` never empty nor put
/// back a previous-contents volume ward did not make, and `--previous`
/// keeps to the sweep's kept/busy rules before it stages anything.
#[test]
fn restore_previous_refuses_a_kept_or_busy_swap_directory_and_touches_nothing() {
    let pg = Pg::start();
    dk::fill(&pg.name, 1_000);
    let store = tempfile::tempdir().unwrap();
    let _gone = dk::RemoveVolume(format!("{}-ward-previous", pg.volume));
    let r = snap(store.path(), &["create", "a", "--container", &pg.name]);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    pg.psql("insert into marks(label) values ('after a')");
    let previous = pg.checksums();
    let keep = || {
        snap(
            store.path(),
            &[
                "restore",
                "a",
                "--container",
                &pg.name,
                "--yes",
                "--keep-previous",
            ],
        )
    };
    // A volume of the previous-contents volume's name that ward did not
    // make is never emptied: refused before anything is staged or stopped.
    let since = dk::docker(&["inspect", "-f", "{{.State.StartedAt}}", &pg.name]);
    dk::docker(&["volume", "create", &format!("{}-ward-previous", pg.volume)]);
    let err = keep().fails_with(2, "ward did not make it");
    assert!(err.contains("ward.previous-of="), "{err}");
    assert_eq!(
        dk::docker(&["inspect", "-f", "{{.State.StartedAt}}", &pg.name]),
        since,
        "the container was stopped"
    );
    assert_eq!(pg.checksums(), previous, "the data changed");
    assert!(ward_entries(&pg).is_empty(), "{:?}", ward_entries(&pg));
    dk::docker(&["volume", "rm", &format!("{}-ward-previous", pg.volume)]);
    let r = keep();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let current = pg.checksums();
    assert_ne!(current, previous);
    let previous_back = || {
        snap(
            store.path(),
            &["restore", "--previous", "--container", &pg.name, "--yes"],
        )
    };

    // Kept: a swap directory holding moved-aside data no journal accounts for.
    dk::docker(&[
        "exec",
        &pg.name,
        "sh",
        "-c",
        "mkdir -p /var/lib/postgresql/data/.ward-swap-aside/old && \
         touch /var/lib/postgresql/data/.ward-swap-aside/old/PG_VERSION",
    ]);
    let err = previous_back().fails_with(2, "may be the only copy");
    assert!(err.contains(".ward-swap-aside"), "{err}");
    assert!(pg.running());
    assert_eq!(pg.checksums(), current, "the data changed");
    assert_eq!(ward_entries(&pg), vec![".ward-swap-aside".to_string()]);
    dk::docker(&[
        "exec",
        &pg.name,
        "rm",
        "-rf",
        "/var/lib/postgresql/data/.ward-swap-aside",
    ]);

    // Busy: another ward's helper holds a swap directory's lock.
    dk::docker(&[
        "exec",
        &pg.name,
        "mkdir",
        "-p",
        "/var/lib/postgresql/data/.ward-swap-busy/stage",
    ]);
    let holder = LockHolder::hold(&pg, ".ward-swap-busy");
    let err = previous_back().fails_with(2, "another ward is restoring");
    assert!(err.contains(".ward-swap-busy"), "{err}");
    assert!(pg.running());
    assert_eq!(pg.checksums(), current, "the data changed");
    assert_eq!(ward_entries(&pg), vec![".ward-swap-busy".to_string()]);
    assert_eq!(dk::helpers(&pg.volume), 0, "helpers left");

    // That ward gone: its staging leftover is swept and the previous
    // contents come back.
    drop(holder);
    let r = previous_back();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(
        r.stderr().contains("removed .ward-swap-busy"),
        "{}",
        r.stderr()
    );
    dk::wait_ready(&pg.name);
    assert_eq!(
        pg.checksums(),
        previous,
        "the previous contents are not back"
    );
    assert!(ward_entries(&pg).is_empty(), "{:?}", ward_entries(&pg));
}
