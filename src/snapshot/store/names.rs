//! What a store's names and manifests must be before ward acts on them: a
//! snapshot name is a plain file name (no path, no dot file), and a manifest
//! is bound to the name it was found under — a store may have been written
//! by someone else, and a renamed copy must not pass for another snapshot.

use anyhow::Result;

use super::ARCHIVE_EXT;
use crate::snapshot::manifest::Manifest;

/// Checks a snapshot name: letters, digits, `.`, `_`, `-`; not starting with `.`.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        crate::error::usage(format!(
            "invalid snapshot name {name:?} — use up to 100 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
        ))
    }
}

/// Checks that a manifest found under `name` is that snapshot's: a copy
/// of `base.*` renamed to `other.*` still names `base` inside, and acting on
/// it (restore, prune) would mix the two up.
fn bound(name: &str, m: &Manifest) -> std::result::Result<(), String> {
    if m.name != name {
        return Err(format!(
            "the manifest is of snapshot {:?}, not {name:?} (renamed or copied by hand) — \
             ward will not use it",
            m.name
        ));
    }
    let archive = format!("{name}{ARCHIVE_EXT}");
    if m.template.is_none() && m.archive_file != archive {
        return Err(format!(
            "the manifest names the archive {:?}, not {archive:?} — ward will not use it",
            m.archive_file
        ));
    }
    Ok(())
}

/// Parses and binds a manifest read from a store.
pub(super) fn parse_bound(name: &str, text: &str) -> Result<Manifest> {
    let m = Manifest::parse(text)?;
    bound(name, &m).map_err(anyhow::Error::msg)?;
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["db-20260101", "a", "x.y_z"] {
            check_name(ok).unwrap();
        }
        for bad in ["", ".hidden", "../x", "a/b", "-x", "sp ace"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
