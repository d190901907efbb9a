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
