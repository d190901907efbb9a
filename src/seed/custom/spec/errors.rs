//! A spec's mistakes, each as `file:LINE: what — fix`: the line of a table,
//! a column or a `[defaults]` entry is found in the file's text, and every
//! mistake is collected so the user fixes them all at once.

use std::path::Path;

use super::SpecFile;
use crate::error::UsageError;

/// Every problem found in a spec file, one `file:LINE: what — fix` per
/// line (validation goes on after the first so the user fixes all at once).
/// Printed one per line by `output::error`; exits 2 like any usage error.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub(crate) struct SpecErrors(pub Vec<String>);

impl SpecErrors {
    /// `Ok(())` when nothing was found; otherwise all of them (sorted by line, deduplicated).
    pub(crate) fn check(errors: Vec<anyhow::Error>) -> anyhow::Result<()> {
        let mut lines: Vec<(usize, String)> = Vec::new();
        for e in errors {
            let lines_of = match e.downcast_ref::<SpecErrors>() {
                Some(many) => many.0.clone(),
                None => vec![format!("{e:#}")],
            };
            for l in lines_of {
                let n = l
                    .split(':')
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0usize);
                if !lines.iter().any(|(_, x)| *x == l) {
                    lines.push((n, l));
                }
            }
        }
        if lines.is_empty() {
            return Ok(());
        }
        lines.sort_by_key(|(n, _)| *n);
        let lines: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
        if lines.len() == 1 {
            return Err(UsageError(lines.into_iter().next().unwrap()).into());
        }
        Err(SpecErrors(lines).into())
    }
}

/// An error in a spec file, pointing at the line.
pub(crate) fn error(
    spec: &SpecFile,
    table: &str,
    column: Option<&str>,
    msg: &str,
) -> anyhow::Error {
    let line = line_of(&spec.text, table, column);
    let what = match column {
        Some(c) => format!("{table}.{c}"),
        None => table.to_string(),
    };
    UsageError(format!("{}:{line}: {what}: {msg}", spec.path.display())).into()
}

/// The line where a table (or a column in it) is set, best effort.
pub(crate) fn line_of(text: &str, table: &str, column: Option<&str>) -> usize {
    let header = format!("[tables.\"{table}\"");
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&header))
    else {
        return 1;
    };
    let Some(col) = column else {
        return start + 1;
    };
    for (i, l) in lines.iter().enumerate().skip(start + 1) {
        let t = l.trim_start();
        if t.starts_with("[tables.\"") && !t.starts_with(&header) {
            break;
        }
        for key in [
            format!("columns.{col} "),
            format!("columns.{col}="),
            format!("columns.\"{col}\""),
            format!("{col} ="),
            format!("\"{col}\" ="),
        ] {
            if t.starts_with(&key) {
                return i + 1;
            }
        }
    }
    start + 1
}

/// The line of `[defaults]` entry `ty`, best effort.
pub(super) fn default_line(text: &str, ty: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "[defaults]")
        .unwrap_or(0);
    lines
        .iter()
        .enumerate()
        .skip(start)
        .find(|(_, l)| {
            let t = l.trim_start().trim_start_matches('"');
            t.starts_with(ty)
                && t[ty.len()..]
                    .trim_start_matches('"')
                    .trim_start()
                    .starts_with('=')
        })
        .map_or(start + 1, |(i, _)| i + 1)
}

/// [`bad_at`] on the line of `key`: a top-level key (`table` None) or a
/// table's own (`rows`, a misspelt one); the table's header when not found.
pub(super) fn bad_key(
    path: &Path,
    text: &str,
    table: Option<&str>,
    key: &str,
    msg: String,
) -> anyhow::Error {
    let line =
        key_line(text, table, key).unwrap_or_else(|| table.map_or(1, |t| line_of(text, t, None)));
    UsageError(format!("{}:{line}: {msg}", path.display())).into()
}

/// The line setting `key` at the top (before any `[` header) or in the
/// section of `table`.
fn key_line(text: &str, table: Option<&str>, key: &str) -> Option<usize> {
    let header = table.map(|t| format!("[tables.\"{t}\"]"));
    let mut inside = header.is_none();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim_start();
        if t.starts_with('[') {
            match &header {
                None => return None,
                Some(h) => inside = t.starts_with(h.as_str()),
            }
            continue;
        }
        let sets = t
            .strip_prefix(key)
            .or_else(|| t.strip_prefix(&format!("\"{key}\"")))
            .is_some_and(|rest| rest.trim_start().starts_with(['=', '.']));
        if inside && sets {
            return Some(i + 1);
        }
    }
    None
}

pub(super) fn bad_at(
    path: &Path,
    text: &str,
    table: Option<&str>,
    column: Option<&str>,
    msg: String,
) -> anyhow::Error {
    let line = table.map_or(1, |t| line_of(text, t, column));
    UsageError(format!("{}:{line}: {msg}", path.display())).into()
}
