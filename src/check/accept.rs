//! The accept file (`ward-accept.toml`): a reviewed list of findings the
//! team has looked at and accepted, for every runner — including those whose
//! migrations are not SQL files a `-- ward:ignore` comment could sit in
//! (`--apply-cmd`, Django). Each entry names the rule, the table (and
//! column) and the migration as the report names it, and must say why.
//! Accepted findings stay in every report, out of the verdict; an entry that
//! matches nothing is reported (a stale entry), never silently dropped.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::migrations::{Migration, MigrationSet};
use super::report::{Finding, Level};
use super::rule::{NotIgnorable, Rule};
use crate::error::UsageError;

/// The file's name, looked for in the migrations' project root.
pub(crate) const FILE_NAME: &str = "ward-accept.toml";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    accept: Vec<toml::Spanned<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    rule: String,
    table: String,
    column: Option<String>,
    migration: Option<String>,
    reason: String,
}

/// One reviewed finding.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub rule: Rule,
    /// As findings name tables: without `public.`.
    pub table: String,
    pub column: Option<String>,
    /// The migration as the report names it (its file, its directory or its
    /// version); None = in whatever migration (`--apply-cmd` names none).
    pub migration: Option<String>,
    pub reason: String,
    /// `ward-accept.toml:LINE`, for the report.
    pub at: String,
}

/// Why a finding is out of the verdict, as every report format shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Acceptance {
    pub reason: String,
    /// The entry that accepts it (`ward-accept.toml:LINE`).
    pub entry: String,
}

/// The accept file in force: `explicit` (which must exist), else
/// `ward-accept.toml` in `root` when there is one.
pub(crate) fn load(explicit: Option<&Path>, root: &Path) -> anyhow::Result<Vec<Entry>> {
    let path: PathBuf = match explicit {
        Some(p) => p.to_path_buf(),
        None => root.join(FILE_NAME),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            return Ok(Vec::new());
        }
        Err(e) => {
            return Err(UsageError(format!(
                "cannot read the accept file {}: {e} — fix the --accept path",
                path.display()
            ))
            .into());
        }
    };
    let shown = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    parse(&text, &shown).map_err(|e| UsageError(e).into())
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses an accept file's text; errors are `NAME:LINE: what — how to fix`.
pub(crate) fn parse(text: &str, name: &str) -> Result<Vec<Entry>, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_at(text, s.start)).unwrap_or(1);
        let first = e.message().lines().next().unwrap_or("invalid TOML");
        format!(
            "{name}:{line}: {first} — each entry is [[accept]] with rule, table, optional column and migration, and reason (see README \"Accepting findings\")"
        )
    })?;
    let mut out = Vec::new();
    for spanned in raw.accept {
        let line = line_at(text, spanned.span().start);
        let at = format!("{name}:{line}");
        let e = spanned.into_inner();
        let named = e.rule.trim();
        let rule = match Rule::from_name(named).map(|rule| (rule, rule.ignorable())) {
            Some((rule, Ok(()))) => rule,
            Some((rule, Err(NotIgnorable::Blocks))) => {
                return Err(format!(
                    "{at}: rule {rule} cannot be accepted (the migration does not run or the history is broken) — fix the migration instead and remove the entry"
                ));
            }
            Some((_, Err(NotIgnorable::AboutWard))) | None => {
                return Err(format!(
                    "{at}: {named:?} is not a ward check rule — use one of {}",
                    Rule::ignorable_names().join(", ")
                ));
            }
        };
        if e.reason.trim().is_empty() {
            return Err(format!(
                "{at}: the reason is empty — say why the finding is accepted"
            ));
        }
        let table = e.table.trim();
        if table.is_empty() {
            return Err(format!(
                "{at}: the table is empty — name the table the finding is about"
            ));
        }
        let table = table.strip_prefix("public.").unwrap_or(table).to_string();
        let nonempty =
            |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        out.push(Entry {
            rule,
            table,
            column: nonempty(e.column),
            migration: nonempty(e.migration).map(|m| m.trim_end_matches('/').to_string()),
            reason: e.reason.trim().to_string(),
            at,
        });
    }
    Ok(out)
}

impl Entry {
    fn names_object(&self, object: Option<&str>) -> bool {
        let Some(o) = object else { return false };
        let o = o.strip_prefix("public.").unwrap_or(o);
        match &self.column {
            Some(c) => o == format!("{}.{c}", self.table),
            // The table itself, or any of its columns / constraints.
            None => {
                o == self.table
                    || o.strip_prefix(self.table.as_str())
                        .is_some_and(|rest| rest.starts_with('.'))
            }
        }
    }

    /// Whether `file` (a finding's or a pending migration's) is this entry's migration.
    fn names_file(
        &self,
        file: Option<&str>,
        set: Option<&MigrationSet>,
        pending: &[Migration],
    ) -> bool {
        let Some(m) = &self.migration else {
            return true;
        };
        let Some(file) = file else { return false };
        let under = |file: &str| {
            file == m
                || file
                    .strip_prefix(m.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        };
        // An installed package's migration is named by its absolute path;
        // the entry names it from the package (`cms/migrations/0041_….py`),
        // as the path differs from machine to machine.
        if under(file) || package_relative(file).is_some_and(under) {
            return true;
        }
        // By version: the migration whose up or down file this is (a
        // Django migration's is `app.name`).
        let is = |mg: &Migration| {
            &mg.version == m
                && (mg.up.file == file || mg.down.as_ref().is_some_and(|d| d.file == file))
        };
        set.is_some_and(|s| s.migrations.iter().any(is)) || pending.iter().any(is)
    }

    fn matches(&self, f: &Finding, set: Option<&MigrationSet>, pending: &[Migration]) -> bool {
        f.rule == self.rule
            && f.rule.ignorable().is_ok()
            && self.names_object(f.object.as_deref())
            && self.names_file(f.file.as_deref(), set, pending)
    }
}

/// `file` from its package's directory when it lies in an installed package
/// (`…/site-packages/cms/migrations/0041_x.py` → `cms/migrations/0041_x.py`).
fn package_relative(file: &str) -> Option<&str> {
    ["/site-packages/", "/dist-packages/"]
        .iter()
        .find_map(|dir| file.rfind(dir).map(|at| &file[at + dir.len()..]))
}

/// Splits `findings` into the ones that count and the accepted ones (with
/// their reason); appends a `stale-accept` finding for every entry that
/// matched nothing. `pending` are the migrations this run
/// applied; `completed` is false when a migration failed (later files never ran).
pub(crate) fn split(
    findings: Vec<Finding>,
    entries: &[Entry],
    set: Option<&MigrationSet>,
    pending: &[Migration],
    completed: bool,
) -> (Vec<Finding>, Vec<Finding>) {
    let mut used = vec![false; entries.len()];
    let (mut counted, mut accepted) = (Vec::new(), Vec::new());
    for mut f in findings {
        match entries.iter().position(|e| e.matches(&f, set, pending)) {
            Some(i) => {
                used[i] = true;
                f.accepted = Some(Acceptance {
                    reason: entries[i].reason.clone(),
                    entry: entries[i].at.clone(),
                });
                accepted.push(f);
            }
            None => counted.push(f),
        }
    }
    for (e, _) in entries.iter().zip(&used).filter(|(_, u)| !**u) {
        let what = format!(
            "{} on {}{}{}",
            e.rule,
            e.table,
            e.column
                .as_ref()
                .map(|c| format!(".{c}"))
                .unwrap_or_default(),
            e.migration
                .as_ref()
                .map(|m| format!(" in {m}"))
                .unwrap_or_default()
        );
        let was_pending = e.migration.is_none()
            || pending
                .iter()
                .any(|p| e.names_file(Some(p.up.file.as_str()), set, pending));
        let (level, why) = if !was_pending {
            (
                Level::Info,
                "its migration was not pending in this run".to_string(),
            )
        } else if !completed {
            (
                Level::Info,
                "a migration failed, so the check may not have reached it".to_string(),
            )
        } else {
            (Level::Warn, "no finding matched it".to_string())
        };
        counted.push(
            Finding::new(
                level,
                Rule::StaleAccept,
                format!("accept entry {} ({what}) is stale: {why}", e.at),
            )
            .object(e.table.clone())
            .remedy("remove the entry, or correct its rule, table, column or migration to the finding's as the report names them"),
        );
    }
    (counted, accepted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_with_their_line() {
        let t = "# reviewed\n[[accept]]\nrule = \"dropped-data\"\ntable = \"public.patients\"\ncolumn = \"phone\"\nmigration = \"migrations/2_drop\"\nreason = \"moved to contacts\"\n\n[[accept]]\nrule = \"blocking-lock\"\ntable = \"visits\"\nreason = \"small\"\n";
        let e = parse(t, FILE_NAME).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].table, "patients");
        assert_eq!(e[0].at, "ward-accept.toml:2");
        assert_eq!(e[1].at, "ward-accept.toml:9");
        assert_eq!(e[1].migration, None);
    }

    #[test]
    fn bad_entries_name_their_line() {
        let err = |t: &str| parse(t, FILE_NAME).unwrap_err();
        let e = err("[[accept]]\nrule = \"dropped-data\"\ntable = \"t\"\n");
        assert!(
            e.starts_with("ward-accept.toml:1: ") && e.contains("reason"),
            "{e}"
        );
        let e = err("\n[[accept]]\nrule = \"droped-data\"\ntable = \"t\"\nreason = \"x\"\n");
        assert!(
            e.starts_with("ward-accept.toml:2: \"droped-data\" is not"),
            "{e}"
        );
        let e = err("[[accept]]\nrule = \"migration-error\"\ntable = \"t\"\nreason = \"x\"\n");
        assert!(e.contains("cannot be accepted"), "{e}");
        let e = err("[[accept]]\nrule = \"rows-lost\"\ntable = \"t\"\nreason = \"  \"\n");
        assert!(e.contains("reason is empty"), "{e}");
        let e = err(
            "[[accept]]\nrule = \"rows-lost\"\n\ntable = \"t\"\nreason = \"x\"\ncolum = \"c\"\n",
        );
        assert!(e.starts_with("ward-accept.toml:6: "), "{e}");
        let e = err("[[accept]\n");
        assert!(e.starts_with("ward-accept.toml:1: "), "{e}");
    }

    #[test]
    fn an_entry_matches_its_table_column_and_migration() {
        let e = &parse(
            "[[accept]]\nrule = \"dropped-data\"\ntable = \"patients\"\ncolumn = \"phone\"\nmigration = \"migrations/2_drop\"\nreason = \"r\"\n",
            FILE_NAME,
        )
        .unwrap()[0];
        let f = |object: &str, file: &str| {
            Finding::new(Level::Fail, Rule::DroppedData, "x")
                .object(object)
                .file(file)
        };
        assert!(e.matches(&f("patients.phone", "migrations/2_drop/up.sql"), None, &[]));
        assert!(e.matches(&f("patients.phone", "migrations/2_drop"), None, &[]));
        assert!(!e.matches(&f("patients.email", "migrations/2_drop/up.sql"), None, &[]));
        assert!(!e.matches(
            &f("patients.phone", "migrations/2_dropped/up.sql"),
            None,
            &[]
        ));
        let mut other = f("patients.phone", "migrations/2_drop/up.sql");
        other.rule = Rule::ValuesChanged;
        assert!(!e.matches(&other, None, &[]));
    }

    #[test]
    fn an_installed_package_migration_is_named_from_its_package_or_by_version() {
        let file = "/srv/venv/lib/python3.11/site-packages/cms/migrations/0041_url.py";
        let f = Finding::new(Level::Warn, Rule::BlockingLock, "x")
            .object("cms_pageurl")
            .file(file);
        let entry = |migration: &str| {
            parse(
                &format!(
                    "[[accept]]\nrule = \"blocking-lock\"\ntable = \"cms_pageurl\"\nmigration = \"{migration}\"\nreason = \"r\"\n"
                ),
                FILE_NAME,
            )
            .unwrap()
            .remove(0)
        };
        let pending = [Migration {
            version: "cms.0041_url".into(),
            key: Default::default(),
            description: "0041_url".into(),
            up: super::super::migrations::Script {
                file: file.into(),
                sql: String::new(),
                first_line: 1,
            },
            down: None,
            no_tx: false,
            checksum: None,
        }];
        for m in [
            "cms/migrations/0041_url.py",
            "cms/migrations",
            "cms",
            file,
            "cms.0041_url",
        ] {
            assert!(entry(m).matches(&f, None, &pending), "{m}");
        }
        for m in [
            "cms/migrations/0040_x.py",
            "migrations/0041_url.py",
            "cms.0040_x",
        ] {
            assert!(!entry(m).matches(&f, None, &pending), "{m}");
        }
    }
}
