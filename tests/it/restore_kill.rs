//! `kill -9` at random (seeded, reproducible: `WARD_TRIAL_SEED`) points of
//! `ward snapshot restore` and `create` against a real container. After each
//! kill, one ordinary ward command on the target (`snapshot recover` or
//! `snapshot create`) must leave the container running with exactly the old
//! or exactly the new data — never a half-replaced volume, never a stopped
//! container, never a person needed — and every listed snapshot must verify.
//! Prints the distribution of outcomes per phase the kill landed in.
//!
//! Kept cheap (CI time): the restore kills and the create kills run as two
//! tests in parallel, each on its own container with little data shared by
//! all its trials; checks go through `docker exec` in the running container
//! rather than new containers, the healer is mostly `recover` (a `create`
//! every fifth trial), and each snapshot is verified once, when it appears.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::docker::{self as dk, Pg};
use crate::support::snapshot::Rng;
use crate::support::*;

type Sums = Vec<(String, String)>;

struct Trial<'a> {
    store: &'a Path,
    state: &'a Path,
}

impl Trial<'_> {
    fn ward(&self, args: &[&str]) -> Ward {
        ward()
            .args(["snapshot"])
            .args(args)
            .args(["--store", &self.store.display().to_string()])
            .env("WARD_STATE_DIR", &self.state.display().to_string())
    }

    fn recover(&self, container: &str) -> Run {
        ward()
            .args(["snapshot", "recover", "--container", container])
            .env("WARD_STATE_DIR", &self.state.display().to_string())
            .run()
    }

    fn listed(&self) -> Vec<String> {
        let j = self.ward(&["list"]).args(["--json"]).ok().json();
        j["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// The phase the killed ward's journal recorded, if it left one.
    fn journal_phase(&self) -> Option<String> {
        for e in std::fs::read_dir(self.state).ok()?.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("journal-") && n.ends_with(".json") {
                let v: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok()?;
                return Some(format!(
                    "{}:{}",
                    v["operation"].as_str().unwrap_or("?"),
                    v["phase"].as_str().unwrap_or("?")
                ));
            }
        }
        None
    }
}

/// Checksums once Postgres answers (panics after 60 s).
fn sums_when_ready(pg: &Pg) -> Sums {
    dk::wait_ready(&pg.name);
    pg.checksums()
}

/// Which command the trials kill.
#[derive(Clone, Copy, PartialEq)]
enum Killed {
    Restore,
    Create,
}

#[test]
fn kill_9_at_30_random_points_of_restore_leaves_old_or_new_data_running() {
    trials(Killed::Restore, 30);
}

#[test]
fn kill_9_at_30_random_points_of_create_leaves_the_data_running() {
    trials(Killed::Create, 30);
}

/// Kills `killed` at `count` seeded random points, one ordinary ward
/// command heals each, and checks what the container runs.
fn trials(killed: Killed, count: u32) {
    let pg = Pg::start();
    let store = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let t = Trial {
        store: store.path(),
        state: state.path(),
    };
    // Two states of the data, a snapshot of each.
    dk::fill(&pg.name, 1_000);
    pg.psql("insert into marks(label) values ('state a')");
    let a = pg.checksums();
    t.ward(&["create", "a", "--container", &pg.name]).ok();
    pg.psql("insert into marks(label) values ('state b'); delete from items where id % 7 = 0");
    let b = pg.checksums();
    assert_ne!(a, b);
    t.ward(&["create", "b", "--container", &pg.name]).ok();

    // How long the whole command takes here: kills land in [0, that).
    let t0 = Instant::now();
    let whole_ms = if killed == Killed::Restore {
        t.ward(&["restore", "a", "--container", &pg.name, "--yes"])
            .ok();
        t0.elapsed().as_millis() as u64
    } else {
        t.ward(&["create", "calibrate", "--container", &pg.name])
            .ok();
        let ms = t0.elapsed().as_millis() as u64;
        // Create trials start from state a too.
        t.ward(&["restore", "a", "--container", &pg.name, "--yes"])
            .ok();
        ms
    };
    assert_eq!(sums_when_ready(&pg), a);

    let seed = std::env::var("WARD_TRIAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026_u64);
    let what = if killed == Killed::Restore {
        "restore"
    } else {
        "create"
    };
    eprintln!(
        "kill -9 trials of {what}: WARD_TRIAL_SEED={seed}; a whole {what} takes {whole_ms} ms"
    );
    // Each test its own stream, both replayable from the one seed.
    let mut rng = Rng(seed ^ (killed as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut current = a.clone();
    // (operation, phase at the kill) → (old, new)
    let mut table: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    let mut verified = std::collections::BTreeSet::new();
    for i in 0..count {
        let restore = killed == Killed::Restore;
        let (target_name, target_sums) = if current == a { ("b", &b) } else { ("a", &a) };
        let name = format!("k{i}");
        let args: Vec<&str> = if restore {
            vec!["restore", target_name, "--container", &pg.name, "--yes"]
        } else {
            vec!["create", &name, "--container", &pg.name]
        };
        let delay = rng.next(whole_ms);
        let (mut child, _dir) = t.ward(&args).spawn();
        std::thread::sleep(Duration::from_millis(delay));
        let finished = child.try_wait().unwrap().is_some();
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let phase = if finished {
            "finished".to_string()
        } else {
            t.journal_phase().unwrap_or_else(|| "no journal".into())
        };

        // Any ward command on the target finishes or undoes the job.
        let cmd = if i % 5 == 1 { "create" } else { "recover" };
        let r = if cmd == "create" {
            t.ward(&["create", &format!("probe{i}"), "--container", &pg.name])
                .run()
        } else {
            t.recover(&pg.name)
        };
        assert_eq!(
            r.code(),
            0,
            "trial {i} ({} killed at {delay} ms, phase {phase}): the next `ward snapshot {cmd}` failed: {}",
            args[0],
            r.stderr()
        );
        assert!(
            dk::running(&pg.name),
            "trial {i} ({} killed at {delay} ms, phase {phase}): container left stopped after `ward snapshot {cmd}`",
            args[0]
        );
        assert!(
            t.journal_phase().is_none(),
            "trial {i}: the journal is still there after `ward snapshot {cmd}`"
        );
        let now = sums_when_ready(&pg);
        let outcome = if now == current {
            "old"
        } else if restore && now == *target_sums {
            "new"
        } else {
            panic!(
                "trial {i} ({} killed at {delay} ms, phase {phase}): the data is neither the old \
                 nor the new: {now:?}",
                args[0]
            )
        };
        if outcome == "new" {
            current = target_sums.clone();
        }
        // A finished restore deletes the replaced data in the background in
        // the container (`.ward-trash-<id>`): wait for that, bounded; a swap
        // directory is never acceptable.
        let ward_entries = || {
            dk::docker(&[
                "exec",
                &pg.name,
                "sh",
                "-c",
                "ls -A /var/lib/postgresql/data | grep '^.ward-' || true",
            ])
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut swaps = ward_entries();
        while swaps.lines().all(|l| l.starts_with(".ward-trash-"))
            && !swaps.trim().is_empty()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(200));
            swaps = ward_entries();
        }
        assert!(
            swaps.trim().is_empty(),
            "trial {i}: ward's swap directories are left in the volume: {swaps}"
        );
        let e = table.entry(format!("{} {phase}", args[0])).or_default();
        if outcome == "old" {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
        eprintln!(
            "trial {i:2}: {:7} killed at {delay:5} ms, phase {phase:24} → {outcome} data, running (healed by `{cmd}`)",
            args[0]
        );
        // Every listed snapshot verifies: no torn snapshot passes as valid.
        // (A listed snapshot never changes: each is verified once.)
        for n in t.listed() {
            if !verified.insert(n.clone()) {
                continue;
            }
            let v = t.ward(&["verify", &n]).run();
            assert_eq!(
                v.code(),
                0,
                "trial {i}: listed snapshot {n} does not verify: {}",
                v.stdout()
            );
        }
    }
    assert_eq!(dk::remove_helpers(&pg.volume), 0, "helper containers left");
    eprintln!("kill -9 outcomes ({count} {what} trials):");
    eprintln!(
        "  {:32} {:>4} {:>4}",
        "operation / phase at the kill", "old", "new"
    );
    for (k, (old, new)) in &table {
        eprintln!("  {k:32} {old:>4} {new:>4}");
    }
    let total_new: u32 = table.values().map(|v| v.1).sum();
    let total_old: u32 = table.values().map(|v| v.0).sum();
    eprintln!("  {:32} {total_old:>4} {total_new:>4}", "total");
}

#[test]
fn recover_with_nothing_to_do_says_so() {
    let pg = Pg::start();
    let state = tempfile::tempdir().unwrap();
    let r = ward()
        .args(["snapshot", "recover", "--container", &pg.name])
        .env("WARD_STATE_DIR", &state.path().display().to_string())
        .ok();
    assert!(r.stdout().contains("Nothing to recover"), "{}", r.stdout());
    assert!(pg.running());
}
