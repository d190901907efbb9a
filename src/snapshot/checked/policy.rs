//! The entry policy of the checked reader: which names and entry types an
//! archive may hold (see the list in `checked`), each name normalised
//! exactly as it will be written.

use std::collections::HashSet;
use std::io::Read;

use crate::snapshot::manifest::Kind;

/// The longest name an entry may have.
const MAX_NAME: usize = 4096;
/// PAX records an archive may carry: names, sizes, owners and times. Anything
/// else (GNU.sparse.*, LIBARCHIVE.*, SCHILY.*, …) changes what some reader
/// does with the entry, and ward's own writers never produce it.
const PAX_KEYS: &[&str] = &[
    "path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime",
];

/// Normalises an entry name exactly as it will be written: no leading `./`,
/// no `.` components, no trailing `/`. Refuses what cannot be normalised safely.
pub(crate) fn normalise(raw: &[u8]) -> std::result::Result<String, String> {
    if raw.len() > MAX_NAME {
        return Err(format!("an entry name is {} bytes long", raw.len()));
    }
    let s = std::str::from_utf8(raw).map_err(|_| "an entry name is not UTF-8".to_string())?;
    if s.starts_with('/') {
        return Err(format!("absolute path {s:?}"));
    }
    let trimmed = s.trim_end_matches('/');
    let mut parts = Vec::new();
    for (i, c) in trimmed.split('/').enumerate() {
        match c {
            ".." => return Err(format!("path {s:?} climbs out with \"..\"")),
            "." => {}
            "" if i == 0 && trimmed.is_empty() => {}
            "" => return Err(format!("path {s:?} has an empty component")),
            c if c.contains('\0') => return Err(format!("path {s:?} contains a NUL")),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Checks one entry against the allow-list; returns its normalised path.
pub(super) fn check_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    seen: &mut HashSet<String>,
    data_link: Option<&str>,
) -> std::result::Result<(String, Kind), String> {
    let raw = entry.path_bytes().into_owned();
    let shown = String::from_utf8_lossy(&raw).into_owned();
    let path = normalise(&raw)?;
    if let Some(pax) = entry
        .pax_extensions()
        .map_err(|e| format!("archive is damaged: {e}"))?
    {
        for ext in pax {
            let ext = ext.map_err(|e| format!("archive is damaged: {e}"))?;
            let key = ext.key().unwrap_or("(not UTF-8)");
            if !PAX_KEYS.contains(&key) {
                return Err(format!(
                    "entry {shown:?} carries the PAX record {key:?}, which ward does not accept"
                ));
            }
        }
    }
    let kind = match entry.header().entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if data_link == Some(path.as_str()) && target == crate::snapshot::archive::DATA_LINK.1 {
                // Recorded by the manifest's layout; never written out.
                Kind::Symlink
            } else {
                return Err(format!(
                    "symlink {shown:?} -> {target:?}: a Postgres data directory needs no symbolic \
                     links and ward refuses them (the only one accepted is `data -> .` at the \
                     volume root of a postgres:18.0 volume, when the manifest records it)"
                ));
            }
        }
        tar::EntryType::Link => return Err(format!("hard link {shown:?}")),
        tar::EntryType::Char | tar::EntryType::Block => {
            return Err(format!("device node {shown:?}"));
        }
        tar::EntryType::Fifo => return Err(format!("FIFO {shown:?}")),
        other => return Err(format!("entry {shown:?} of unsupported type {other:?}")),
    };
    if !seen.insert(path.clone()) {
        return Err(format!(
            "duplicate entry {shown:?} (also listed as {path:?})"
        ));
    }
    Ok((path, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_as_they_are_written() {
        assert_eq!(normalise(b"data/./PG_VERSION").unwrap(), "data/PG_VERSION");
        assert_eq!(normalise(b"./base/1/").unwrap(), "base/1");
        assert_eq!(normalise(b"./").unwrap(), "");
        assert!(normalise(b"data//x").is_err());
        assert!(normalise(b"a/../../x").is_err());
        assert!(normalise(b"/etc/passwd").is_err());
        assert!(normalise(&[b'x'; 5000]).is_err());
    }
}
