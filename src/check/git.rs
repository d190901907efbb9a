//! The baseline's migrations from git: with `--base REF` the data to check
//! against is built from the migrations *on that ref* (say `origin/main`),
//! and only the files this working tree adds are pending. That is the
//! "two developers" case: the other developer's merged migration is part of
//! the baseline, ours runs on top of it, in merged order — no checkout, no
//! merge needed (`git archive` reads the ref's tree).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::error::UsageError;

/// The refs tried, in order, when a seed spec needs a baseline and no
/// `--base` was given.
const DEFAULT_REFS: &[&str] = &[
    "origin/HEAD",
    "origin/main",
    "origin/master",
    "main",
    "master",
];

/// A git ref resolved for the baseline, with its migrations unpacked.
pub struct GitBase {
    /// As the user named it (or as found).
    pub reference: String,
    pub commit: String,
    /// The migrations directory as it is on the ref (inside `_tmp`), or
    /// None when the ref has no such directory (no migrations yet).
    pub dir: Option<PathBuf>,
    _tmp: tempfile::TempDir,
}

fn git(root: &Path, args: &[&str]) -> Result<std::process::Output> {
    Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .context("running git (is it installed?)")
}

/// The top of the git work tree holding `dir`, if any.
pub fn repo_root(dir: &Path) -> Option<PathBuf> {
    let out = git(dir, &["rev-parse", "--show-toplevel"]).ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The commit `reference` names in the repository at `root`, if it names one.
pub fn commit_of(root: &Path, reference: &str) -> Option<String> {
    if reference.starts_with('-') {
        return None;
    }
    let out = git(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{reference}^{{commit}}"),
        ],
    )
    .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The first of the usual default-branch refs that exists.
pub fn default_ref(root: &Path) -> Option<String> {
    DEFAULT_REFS
        .iter()
        .find(|r| commit_of(root, r).is_some())
        .map(|r| r.to_string())
}

/// Unpacks `migrations_dir` as it is on `reference` into a temporary directory.
pub fn base(root: &Path, reference: &str, migrations_dir: &Path) -> Result<GitBase> {
    let commit = commit_of(root, reference).ok_or_else(|| {
        UsageError(format!(
            "--base {reference} is neither a migration version nor a git ref here — \
             name a version on disk or a ref such as origin/main (fetch it first in CI)"
        ))
    })?;
    let abs_root = root.canonicalize()?;
    let abs_dir = migrations_dir
        .canonicalize()
        .with_context(|| format!("cannot read {}", migrations_dir.display()))?;
    let rel = abs_dir.strip_prefix(&abs_root).map_err(|_| {
        UsageError(format!(
            "{} is outside the git repository at {} — run ward inside the repository",
            migrations_dir.display(),
            root.display()
        ))
    })?;
    let rel_s = if rel.as_os_str().is_empty() {
        ".".to_string()
    } else {
        rel.to_string_lossy().replace('\\', "/")
    };
    let tmp = tempfile::Builder::new().prefix("ward-base-").tempdir()?;
    let listed = git(root, &["ls-tree", "--name-only", &commit, "--", &rel_s])?;
    let present = listed.status.success() && !listed.stdout.is_empty();
    let dir = if present {
        let out = git(root, &["archive", "--format=tar", &commit, "--", &rel_s])?;
        if !out.status.success() {
            anyhow::bail!(
                "git archive {commit} -- {rel_s} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        tar::Archive::new(out.stdout.as_slice())
            .unpack(tmp.path())
            .context("unpacking the base ref's migrations")?;
        Some(tmp.path().join(rel))
    } else {
        None
    };
    Ok(GitBase {
        reference: reference.to_string(),
        commit,
        dir,
        _tmp: tmp,
    })
}

/// The newest common ancestor of HEAD and `commit`.
pub fn merge_base(root: &Path, commit: &str) -> Option<String> {
    let out = git(root, &["merge-base", "HEAD", commit]).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A file as it is on `commit` (None when the commit has no such file).
pub fn file_at(root: &Path, commit: &str, path: &Path) -> Result<Option<Vec<u8>>> {
    let abs_root = root.canonicalize()?;
    let Ok(abs) = path.canonicalize() else {
        return Ok(None);
    };
    let Ok(rel) = abs.strip_prefix(&abs_root) else {
        return Ok(None);
    };
    let rel = rel.to_string_lossy().replace('\\', "/");
    let out = git(root, &["show", &format!("{commit}:{rel}")])?;
    Ok(out.status.success().then_some(out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
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

    #[test]
    fn a_ref_yields_its_own_version_of_the_migrations() {
        let repo = tempfile::tempdir().unwrap();
        let r = repo.path();
        run(r, &["init", "-q", "-b", "main"]);
        std::fs::create_dir_all(r.join("db/migrations")).unwrap();
        std::fs::write(r.join("db/migrations/1_a.sql"), "SELECT 1;").unwrap();
        run(r, &["add", "."]);
        run(r, &["commit", "-q", "-m", "one"]);
        std::fs::write(r.join("db/migrations/2_b.sql"), "SELECT 2;").unwrap();
        let root = repo_root(&r.join("db/migrations")).unwrap();
        assert_eq!(default_ref(&root).as_deref(), Some("main"));
        let b = base(&root, "main", &r.join("db/migrations")).unwrap();
        let f = file_at(&root, &b.commit, &r.join("db/migrations/1_a.sql")).unwrap();
        assert_eq!(f.as_deref(), Some(&b"SELECT 1;"[..]));
        assert!(
            file_at(&root, &b.commit, &r.join("db/migrations/2_b.sql"))
                .unwrap()
                .is_none()
        );
        let dir = b.dir.as_ref().unwrap();
        assert!(dir.join("1_a.sql").exists());
        assert!(!dir.join("2_b.sql").exists());
        assert!(commit_of(&root, "no-such-ref").is_none());
        assert_eq!(
            merge_base(&root, &b.commit).as_deref(),
            Some(b.commit.as_str())
        );
        assert!(base(&root, "no-such-ref", &r.join("db/migrations")).is_err());
        // A ref without the directory: no migrations yet.
        std::fs::create_dir_all(r.join("other")).unwrap();
        std::fs::write(r.join("other/x"), "x").unwrap();
        let b = base(&root, "main", &r.join("other")).unwrap();
        assert!(b.dir.is_none());
    }
}
