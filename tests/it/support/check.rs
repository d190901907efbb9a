//! Helpers shared by the `ward check` tests: migration directories, the
//! JSON report of a run that reached a verdict, and git repositories.

use std::path::Path;

use serde_json::Value;

use super::Run;

/// Writes migration files (paths may have directories) into `<tmp>/migrations`.
pub fn migrations(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let m = d.path().join("migrations");
    std::fs::create_dir_all(&m).unwrap();
    for (n, t) in files {
        let p = m.join(n);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, t).unwrap();
    }
    d
}

/// The `--format json` report of a check that reached a verdict (exit 0 or 1).
pub fn report(r: &Run) -> Value {
    assert!(
        r.code() == 0 || r.code() == 1,
        "ward check failed ({}):\nstdout: {}\nstderr: {}",
        r.code(),
        r.stdout(),
        r.stderr()
    );
    r.json()
}

/// The findings of one rule.
pub fn findings<'a>(j: &'a Value, rule: &str) -> Vec<&'a Value> {
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .collect()
}

/// Runs git in `dir` with a fixed identity; fails the test if git fails.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

/// Stages everything in `dir` and commits it.
pub fn commit(dir: &Path, message: &str) {
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", message]);
}

/// Asserts the verdict of a check that failed on `count` rows with one
/// `migration-error` (its SQLSTATE, at `line`); returns the report.
pub fn assert_one_migration_error(r: &Run, count: i64, sqlstate: &str, line: u64) -> Value {
    let j = report(r);
    assert_eq!(
        (r.code(), j["verdict"].as_str()),
        (1, Some("FAIL")),
        "{j:#}"
    );
    let f = findings(&j, "migration-error");
    assert_eq!(f.len(), 1, "{j:#}");
    assert_eq!(f[0]["count"], count, "{j:#}");
    assert!(
        f[0]["message"].as_str().unwrap().contains(sqlstate),
        "{j:#}"
    );
    assert_eq!(f[0]["line"], line);
    j
}

/// The stderr of a spawned `ward check` run with `WARD_LOG=info`, read on a
/// thread (so the pipe never fills): tests wait for the log's phase markers
/// (`phase: NAME`) instead of sleeping until a phase has probably begun.
pub struct PhaseLog {
    began: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<String>,
}

impl PhaseLog {
    /// Takes the child's stderr (spawned with `WARD_LOG=info`).
    pub fn watch(child: &mut std::process::Child) -> PhaseLog {
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tell, began) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut all = String::new();
            for line in std::io::BufReader::new(stderr).lines() {
                let line = line.unwrap_or_default();
                if let Some(phase) = phase_of(&line) {
                    let _ = tell.send(phase.to_string());
                }
                all += &line;
                all.push('\n');
            }
            all
        });
        PhaseLog { began, reader }
    }

    /// Blocks until the log says `phase` began; fails the test if the run
    /// ends (or two minutes pass) first.
    pub fn wait_for(&self, phase: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.began.recv_timeout(left) {
                Ok(began) if began == phase => return,
                Ok(_) => {}
                Err(e) => panic!("ward check never reached the phase {phase:?} ({e})"),
            }
        }
    }

    /// The whole log, once the child has exited.
    pub fn finish(self) -> String {
        self.reader.join().unwrap()
    }
}

/// The phases a log says began, in order.
pub fn phases(log: &str) -> Vec<&str> {
    log.lines().filter_map(phase_of).collect()
}

fn phase_of(line: &str) -> Option<&str> {
    line.split_once("phase: ").map(|(_, phase)| phase.trim())
}
