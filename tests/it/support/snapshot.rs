//! Helpers of the snapshot, restore and heal tests, many of which kill ward
//! at an exact or a random point (`WARD_FAULT=<point>:kill`) and look at
//! what the next ward does: the snapshot command with a private store (and
//! state directory), what the store lists, the journals left, a replayable
//! random source, and a container with a snapshot "a" and newer live data.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;

use super::docker::{self as dk, Pg};
use super::{Run, Ward, ward};

/// `ward snapshot ARGS --store STORE`.
pub fn snap_in(store: &Path, args: &[&str]) -> Ward {
    ward()
        .args(["snapshot"])
        .args(args)
        .args(["--store", &store.display().to_string()])
}

/// The names `ward snapshot list` shows for `store`.
pub fn listed(store: &Path) -> Vec<String> {
    let list = snap_in(store, &["list"]).args(["--json"]).ok().json();
    list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|snapshot| snapshot["name"].as_str().unwrap().to_string())
        .collect()
}

/// A small deterministic PRNG (xorshift) so a failing run can be replayed.
pub struct Rng(pub u64);

impl Rng {
    /// A number below `below` (0 when `below` is 0).
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }
}

/// `ward snapshot ARGS --store STORE` with ward's state in `state`.
pub fn snap(store: &Path, state: &Path, args: &[&str]) -> Ward {
    snap_in(store, args).env("WARD_STATE_DIR", &state.display().to_string())
}

/// `ward snapshot recover --container CONTAINER` with ward's state in `state`.
pub fn recover(state: &Path, container: &str) -> Run {
    ward()
        .args(["snapshot", "recover", "--container", container])
        .env("WARD_STATE_DIR", &state.display().to_string())
        .run()
}

/// The journal files left in the state directory.
pub fn journals(state: &Path) -> Vec<String> {
    std::fs::read_dir(state)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("journal-") && name.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default()
}

/// How many journals are left in the state directory.
pub fn journal_count(state: &Path) -> usize {
    journals(state).len()
}

/// Runs `command` with `WARD_FAULT=<point>:kill` and asserts it died by SIGKILL.
pub fn killed(command: Ward, point: &str) {
    let run = command.env("WARD_FAULT", &format!("{point}:kill")).run();
    assert_eq!(
        run.out.status.signal(),
        Some(9),
        "ward was not killed at {point}: code {:?}, {}",
        run.out.status.code(),
        run.stderr()
    );
}

/// A container with a snapshot "a" in `store`, and live data that differs.
pub struct Setup {
    pub pg: Pg,
    pub store: tempfile::TempDir,
    pub state: tempfile::TempDir,
}

/// A container, a snapshot "a" of it, then different live data.
pub fn setup() -> Setup {
    let pg = Pg::start();
    let store = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    dk::fill(&pg.name, 2_000);
    snap(
        store.path(),
        state.path(),
        &["create", "a", "--container", &pg.name],
    )
    .ok();
    pg.psql("insert into marks(label) values ('after a')");
    Setup { pg, store, state }
}

impl Setup {
    /// A new snapshot `name` of the container.
    pub fn create(&self, name: &str) -> Run {
        snap(
            self.store.path(),
            self.state.path(),
            &["create", name, "--container", &self.pg.name],
        )
        .run()
    }

    /// The restore of "a" into the container, confirmed.
    pub fn restore_a(&self) -> Ward {
        snap(
            self.store.path(),
            self.state.path(),
            &["restore", "a", "--container", &self.pg.name, "--yes"],
        )
    }

    /// A restore of "a" killed at `point` whose journal is in another state
    /// directory (returned): nothing in this set-up's state accounts for it.
    pub fn restore_a_killed_elsewhere(&self, point: &str) -> tempfile::TempDir {
        let lost = tempfile::tempdir().unwrap();
        killed(
            snap(
                self.store.path(),
                lost.path(),
                &["restore", "a", "--container", &self.pg.name, "--yes"],
            ),
            point,
        );
        lost
    }

    /// The labels in `marks`, sorted: which data the container runs.
    pub fn marks(&self) -> String {
        self.pg
            .psql("select string_agg(label, ',' order by label) from marks")
            .trim()
            .to_string()
    }
}
