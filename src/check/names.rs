//! Table names in SQL text, as Postgres reads them: a name may be spelled
//! with its schema (`b.events`, `"b"."events"`), quoted parts keep their
//! case and unquoted ones fold to lower case. Two schemas may hold tables of
//! the same name, so a statement on `a.events` is never blamed or counted
//! for `b.events`; an unqualified name may be either (the search path
//! decides, which ward does not follow). One place for the blame of drops,
//! the side-effect notes, the time-zone run and Django's traced DML.

use std::sync::LazyLock;

use regex::Regex;

/// An identifier chain: `a`, `"A"`, `a.b`, `"a" . "B".c`.
const CHAIN: &str = r#"(?:"(?:[^"]|"")+"|[\p{L}_][\p{L}\p{N}_$]*)(?:\s*\.\s*(?:"(?:[^"]|"")+"|[\p{L}_][\p{L}\p{N}_$]*))*"#;

/// The parts of an identifier chain as Postgres resolves them (`public."T"`
/// → [public, T]; `Records_Patient` → [records_patient]).
pub(super) fn parts(spelled: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut part, mut quoted) = (String::new(), false);
    let mut chars = spelled.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                part.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            '.' if !quoted => out.push(std::mem::take(&mut part)),
            c if quoted => part.push(c),
            c if c.is_whitespace() => {}
            c => part.extend(c.to_lowercase()),
        }
    }
    out.push(part);
    out
}

/// A relation name split into its schema (if spelled) and name.
pub(super) fn resolve(spelled: &str) -> (Option<String>, String) {
    let mut p = parts(spelled);
    let name = p.pop().unwrap_or_default();
    (p.pop(), name)
}

/// Whether a spelled relation name can be `schema.name` (catalog names).
pub(super) fn is_table(spelled: &str, schema: &str, name: &str) -> bool {
    let (s, n) = resolve(spelled);
    n == name && s.is_none_or(|s| s == schema)
}

/// Whether `sql` names the table `schema.name` anywhere: spelled with that
/// schema or without one, alone or as a column's qualifier (`events.note`).
pub(super) fn names_table(sql: &str, schema: &str, name: &str) -> bool {
    static CHAINS: LazyLock<Regex> = LazyLock::new(|| Regex::new(CHAIN).unwrap());
    CHAINS.find_iter(sql).any(|m| {
        let p = parts(m.as_str());
        (0..p.len()).any(|k| p[k] == name && (k == 0 || p[k - 1] == schema))
    })
}

/// The identifier chain at the start of `s` and the rest after it.
pub(super) fn leading(s: &str) -> Option<(&str, &str)> {
    static LEADING: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(&format!(r"^\s*({CHAIN})")).unwrap());
    let c = LEADING.captures(s)?;
    let m = c.get(1)?;
    Some((m.as_str(), &s[m.end()..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_as_postgres_resolves_them() {
        assert_eq!(parts("public.\"T\""), ["public", "T"]);
        assert_eq!(parts("Records_Patient"), ["records_patient"]);
        assert_eq!(parts("\"a\"\"b\" . c"), ["a\"b", "c"]);
        assert_eq!(resolve("\"B\".events"), (Some("B".into()), "events".into()));
        assert!(is_table("events", "b", "events"));
        assert!(is_table("B.Events", "b", "events"));
        assert!(!is_table("\"B\".events", "b", "events"));
        assert!(!is_table("a.events", "b", "events"));
    }

    #[test]
    fn a_table_named_in_another_schema_is_another_table() {
        assert!(names_table(
            "ALTER TABLE b.events DROP COLUMN note",
            "b",
            "events"
        ));
        assert!(!names_table(
            "ALTER TABLE a.events DROP COLUMN note",
            "b",
            "events"
        ));
        assert!(names_table(
            "UPDATE \"B\".\"Events\" SET x = 1",
            "B",
            "Events"
        ));
        assert!(!names_table(
            "UPDATE \"B\".\"Events\" SET x = 1",
            "b",
            "events"
        ));
        assert!(names_table("update EVENTS set x = 1", "b", "events"));
        assert!(names_table(
            "UPDATE a . events SET x = 1; UPDATE b.events SET x = 2",
            "b",
            "events"
        ));
        assert!(!names_table("UPDATE a . events SET x = 1", "b", "events"));
        assert!(!names_table("UPDATE b.events_old SET x = 1", "b", "events"));
        assert!(names_table(
            "SELECT events.note FROM b.events",
            "b",
            "events"
        ));
        assert!(!names_table("SELECT a.events.note FROM x", "b", "events"));
    }
}
