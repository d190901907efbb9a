//! The baseline's migrations from git: with `--base REF` the data to check
//! against is built from the migrations *on that ref* (say `origin/main`),
//! and only the files this working tree adds are pending. That is the
//! "two developers" case: the other developer's merged migration is part of
//! the baseline, ours runs on top of it, in merged order — no checkout, no
//! merge needed (the ref's tree is read with `git ls-tree` and `cat-file`).

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
pub(crate) struct GitBase {
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

/// git's own complaint, on one line (e.g. "detected dubious ownership").
fn complaint(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| l.trim_start_matches("fatal: ").trim())
        .find(|l| !l.is_empty())
        .unwrap_or("git failed")
        .to_string()
}

/// The top of the git work tree holding `dir`, or why there is none.
pub(crate) fn repo_root(dir: &Path) -> Result<PathBuf, String> {
    let out = git(dir, &["rev-parse", "--show-toplevel"]).map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    } else {
        Err(complaint(&out))
    }
}

/// The commit `reference` names in the repository at `root`, if it names one.
pub(crate) fn commit_of(root: &Path, reference: &str) -> Option<String> {
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
pub(crate) fn default_ref(root: &Path) -> Option<String> {
    DEFAULT_REFS
        .iter()
        .find(|r| commit_of(root, r).is_some())
        .map(|r| r.to_string())
}

/// Writes `migrations_dir` as it is on `reference` into a temporary
/// directory of the same name. Blobs are read with `cat-file --filters`, so
/// line endings come out as a checkout would write them, and export
/// attributes (which `git archive` obeys) cannot hide files.
pub(crate) fn base(root: &Path, reference: &str, migrations_dir: &Path) -> Result<GitBase> {
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
    let out = git(root, &["ls-tree", "-r", "-z", &commit, "--", &rel_s])?;
    if !out.status.success() {
        anyhow::bail!("git ls-tree {commit} -- {rel_s}: {}", complaint(&out));
    }
    // "<mode> <type> <object>\t<path>", NUL-terminated; symlinks and submodules are skipped.
    let entries: Vec<(String, String)> = out
        .stdout
        .split(|b| *b == 0)
        .filter_map(|e| std::str::from_utf8(e).ok())
        .filter_map(|e| e.split_once('\t'))
        .filter(|(meta, _)| meta.starts_with("100"))
        .filter_map(|(meta, p)| Some((meta.split(' ').nth(2)?.to_string(), p.to_string())))
        .collect();
    let tmp = tempfile::Builder::new().prefix("ward-base-").tempdir()?;
    // The same directory name as on disk, so reports name files alike.
    let name = abs_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "migrations".into());
    let dest = tmp.path().join(name);
    let dir = if entries.is_empty() {
        None
    } else {
        let blobs = cat_files(root, &entries)?;
        for ((_, p), bytes) in entries.iter().zip(blobs) {
            let inside = Path::new(p).strip_prefix(rel).unwrap_or(Path::new(p));
            let to = dest.join(inside);
            std::fs::create_dir_all(to.parent().unwrap_or(&dest))?;
            std::fs::write(&to, bytes)?;
        }
        Some(dest)
    };
    Ok(GitBase {
        commit,
        dir,
        _tmp: tmp,
    })
}

/// The contents of `(blob, path)` entries, in one `git cat-file --batch` process.
fn cat_files(root: &Path, entries: &[(String, String)]) -> Result<Vec<Vec<u8>>> {
    use std::io::Write;
    let mut child = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["cat-file", "--batch", "--filters"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running git cat-file")?;
    // With --filters each line is "<object> <path>" (the path picks the filters).
    let mut input = String::new();
    for (blob, p) in entries {
        input += &format!("{blob} {p}\n");
    }
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output()?;
    let _ = writer.join();
    if !out.status.success() {
        anyhow::bail!("git cat-file: {}", complaint(&out));
    }
    // "<object> blob <size>\n<bytes>\n" for each.
    let mut rest = out.stdout.as_slice();
    let mut blobs = Vec::new();
    for (_, p) in entries {
        let nl = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| anyhow::anyhow!("git cat-file: short output at {p}"))?;
        let header = String::from_utf8_lossy(&rest[..nl]).to_string();
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("git cat-file: {header} for {p}"))?;
        let body = rest
            .get(nl + 1..nl + 1 + size)
            .ok_or_else(|| anyhow::anyhow!("git cat-file: short output at {p}"))?;
        blobs.push(body.to_vec());
        rest = rest.get(nl + 2 + size..).unwrap_or_default();
    }
    Ok(blobs)
}

/// The newest common ancestor of HEAD and `commit`.
pub(crate) fn merge_base(root: &Path, commit: &str) -> Option<String> {
    let out = git(root, &["merge-base", "HEAD", commit]).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A file as it is on `commit` (None when the commit has no such file).
pub(crate) fn file_at(root: &Path, commit: &str, path: &Path) -> Result<Option<Vec<u8>>> {
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

    /// The module's own `git`, with an identity for commits.
    fn run(dir: &Path, args: &[&str]) {
        let mut all = vec!["-c", "user.name=t", "-c", "user.email=t@example.org"];
        all.extend_from_slice(args);
        let out = git(dir, &all).unwrap();
        assert!(out.status.success(), "git {args:?}: {}", complaint(&out));
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
        assert!(repo_root(Path::new("/")).is_err());
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
