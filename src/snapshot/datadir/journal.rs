//! The journal of a data-directory restore in progress, kept durably in
//! ward's state directory, and the repair ([`heal`]) the next ward runs when
//! a restore was interrupted: finish the swap or undo it. A journal is read
//! from disk, so the paths it names are checked before anything is deleted.

use std::path::Path;

use anyhow::{Context, Result};

use crate::snapshot::fault;

/// A data-directory restore in progress, kept durably in ward's state
/// directory so the next ward can finish or undo it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(in crate::snapshot) struct DirJournal {
    /// The ward that writes it; a live owner's journal is left alone.
    #[serde(flatten)]
    pub(super) owner: crate::snapshot::volume::Owner,

    pub(super) dir: std::path::PathBuf,
    pub(super) fresh: std::path::PathBuf,
    pub(super) old: std::path::PathBuf,
    /// staging, staged, swapped-out, swapped-in.
    pub(super) phase: String,
    pub(super) snapshot: String,
}

fn dir_journal_path(dir: &Path) -> std::path::PathBuf {
    let key = std::fs::canonicalize(dir)
        .or_else(|_| {
            dir.parent()
                .map(|p| {
                    std::fs::canonicalize(p).map(|p| p.join(dir.file_name().unwrap_or_default()))
                })
                .unwrap_or_else(|| Ok(dir.to_path_buf()))
        })
        .unwrap_or_else(|_| dir.to_path_buf());
    crate::snapshot::volume::state_dir().join(format!(
        "journal-datadir-{:016x}.json",
        crate::seed::rng::fnv1a(format!("datadir:{}", key.display()).as_bytes())
    ))
}

/// Errors before anything was moved need no repair: the staged copy is
/// removed by its own guard, so the journal goes too. After a move, only
/// [`DirJournal::finish`] removes it.
impl Drop for DirJournal {
    fn drop(&mut self) {
        if self.phase == "staging" || self.phase == "staged" {
            self.finish();
        }
    }
}

impl DirJournal {
    pub(super) fn set(&mut self, phase: &str) -> Result<()> {
        self.phase = phase.into();
        // A journal write that fails (full disk, I/O error), for the tests.
        fault(&format!("datadir-journal:{phase}"))?;
        crate::snapshot::volume::write_durably(&dir_journal_path(&self.dir), self)
    }

    pub(super) fn finish(&self) {
        let _ = std::fs::remove_file(dir_journal_path(&self.dir));
    }
}

/// The data directory a journal file is for, if it can be read.
pub(in crate::snapshot) fn journal_dir(path: &Path) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string(path).ok()?;
    // Read, not owned: dropping it must not remove the journal.
    serde_json::from_str::<DirJournal>(&text)
        .ok()
        .map(|j| std::mem::ManuallyDrop::new(j).dir.clone())
}

/// Finishes or undoes what an interrupted data-directory restore left: a
/// copy whose staging had finished is swapped in, one that had not is
/// removed, and whatever was moved aside is put back or deleted. Returns
/// the note to show, if there was a journal. A journal whose owner may
/// still run is left alone (with `must_own`: refused).
pub(in crate::snapshot) fn heal(dir: &Path, must_own: bool) -> Result<Option<String>> {
    let path = dir_journal_path(dir);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let Ok(parsed) = serde_json::from_str::<DirJournal>(&text) else {
        return Ok(Some(format!(
            "warning: ignoring the unreadable journal {}",
            path.display()
        )));
    };
    // Read, not owned: only an explicit `finish` below removes the journal
    // (its drop would on "staging"/"staged", even when a repair fails).
    let j = std::mem::ManuallyDrop::new(parsed);
    if j.owner.may_be_alive() {
        let msg = format!(
            "ward {} is still restoring {:?} into {} (phase {:?})",
            j.owner.describe(),
            j.snapshot,
            j.dir.display(),
            j.phase
        );
        if must_own {
            return crate::error::usage(format!("{msg} — wait for it to finish"));
        }
        return Ok(Some(format!("note: {msg}; left its journal alone")));
    }
    if let Err(why) = check_journal_paths(&j) {
        return Ok(Some(format!(
            "warning: ignoring the journal {}: {why} — ward deletes nothing it names; remove \
             the journal file once the data directory is as it should be",
            path.display()
        )));
    }
    // "staged" with the data directory still in place: the server may have
    // been started on it again since and taken writes, so the staged copy
    // is discarded (as a volume heal does), never swapped in over it.
    let never_moved = j.phase == "staged" && j.dir.exists() && !j.old.exists();
    let done = if j.phase == "staging" || never_moved {
        let _ = std::fs::remove_dir_all(&j.fresh);
        if !j.dir.exists() && j.old.exists() {
            std::fs::rename(&j.old, &j.dir)?;
        }
        "the swap had not begun: removed the staged copy; the previous data is untouched"
    } else {
        if j.fresh.exists() {
            if j.dir.exists() {
                // Never move a directory a live postmaster runs on.
                super::ensure_stopped(&j.dir)?;
                std::fs::rename(&j.dir, &j.old)
                    .with_context(|| format!("cannot move {} aside", j.dir.display()))?;
            }
            std::fs::rename(&j.fresh, &j.dir)
                .with_context(|| format!("cannot move {} into place", j.fresh.display()))?;
        }
        if j.dir.exists() {
            let _ = std::fs::remove_dir_all(&j.old);
        } else if j.old.exists() {
            // Neither the new copy nor the live directory: put the old back.
            std::fs::rename(&j.old, &j.dir)
                .with_context(|| format!("cannot move {} back", j.old.display()))?;
        }
        "staging had finished: completed the swap"
    };
    j.finish();
    let msg = format!(
        "{done} (restore of {:?} into {}, interrupted in phase {:?})",
        j.snapshot,
        j.dir.display(),
        j.phase
    );
    Ok(Some(format!(
        "note: an interrupted ward ({}) left a restore unfinished: {msg}",
        j.owner.describe()
    )))
}

/// A journal is read from disk and names paths heal deletes: both must be
/// siblings of the data directory with the names a restore gives them
/// (`.{base}.ward-restore-*`, `.{base}.ward-old-*`), else the journal is not
/// trusted.
fn check_journal_paths(j: &DirJournal) -> std::result::Result<(), String> {
    let base = j
        .dir
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .filter(|b| !b.is_empty() && b != ".." && b != ".")
        .ok_or_else(|| format!("{} is not a data directory path", j.dir.display()))?;
    for (path, kind) in [(&j.fresh, "ward-restore"), (&j.old, "ward-old")] {
        let prefix = format!(".{base}.{kind}-");
        let named = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .is_some_and(|n| n.len() > prefix.len() && n.starts_with(&prefix));
        let sibling = path.parent().is_some_and(|p| Some(p) == j.dir.parent());
        let plain = path
            .components()
            .all(|c| !matches!(c, std::path::Component::ParentDir));
        if !(named && sibling && plain) {
            return Err(format!(
                "{} is not a {prefix}* directory beside {}",
                path.display(),
                j.dir.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(dir: &str, fresh: &str, old: &str) -> DirJournal {
        DirJournal {
            owner: crate::snapshot::volume::Owner::me(),
            dir: dir.into(),
            fresh: fresh.into(),
            old: old.into(),
            phase: "swapped-out".into(),
            snapshot: "s".into(),
        }
    }

    #[test]
    fn journal_paths_must_be_named_siblings_of_the_data_directory() {
        let ok = journal(
            "/srv/pg/data",
            "/srv/pg/.data.ward-restore-7",
            "/srv/pg/.data.ward-old-7",
        );
        assert_eq!(check_journal_paths(&ok), Ok(()));
        for (fresh, old) in [
            ("/srv/pg", "/srv/pg/.data.ward-old-7"),
            ("/srv/pg/.data.ward-restore-7", "/"),
            ("/home/me/.data.ward-restore-7", "/srv/pg/.data.ward-old-7"),
            ("/srv/pg/.other.ward-restore-7", "/srv/pg/.data.ward-old-7"),
            ("/srv/pg/.data.ward-restore-", "/srv/pg/.data.ward-old-7"),
            (
                "/srv/pg/.data.ward-restore-7",
                "/srv/pg/.data.ward-restore-7",
            ),
            (
                "/srv/pg/x/../.data.ward-restore-7",
                "/srv/pg/.data.ward-old-7",
            ),
        ] {
            let bad = journal("/srv/pg/data", fresh, old);
            assert!(check_journal_paths(&bad).is_err(), "{fresh} {old} accepted");
        }
        assert!(check_journal_paths(&journal("/", "/.ward-restore-1", "/.ward-old-1")).is_err());
    }
}
