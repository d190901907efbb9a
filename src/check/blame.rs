//! Which statement dropped a table or a column. Matching on "the statement
//! mentions `drop` and the name" blamed `DROP CONSTRAINT person_inbox_url_key`
//! or any statement with `id` in it for a dropped `id` column; then a
//! `-- ward:ignore` on the real `DROP COLUMN` was not honoured. Only
//! statements that can drop the object by name count here.

use std::sync::LazyLock;

use regex::Regex;

use super::apply::FileRun;
use super::names;
use super::report::Finding;

/// Whether `sql` drops `column` of `schema.table` (`ALTER TABLE t … DROP
/// [COLUMN] [IF EXISTS] c`); names as Postgres reads them ([`names`]).
pub(super) fn drops_column(sql: &str, schema: &str, table: &str, column: &str) -> bool {
    static ALTER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?is)^\s*alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?").unwrap()
    });
    static DROP: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?is)(?:^|[\s,])drop\s+(?:column\s+)?(?:if\s+exists\s+)?").unwrap()
    });
    let Some(head) = ALTER.find(sql) else {
        return false;
    };
    let Some((spelled, rest)) = names::leading(&sql[head.end()..]) else {
        return false;
    };
    if !names::is_table(spelled, schema, table) {
        return false;
    }
    DROP.find_iter(rest).any(|d| {
        names::leading(&rest[d.end()..]).is_some_and(|(c, _)| {
            let p = names::parts(c);
            p.len() == 1 && p[0] == column
        })
    })
}

/// Whether `sql` drops `schema.table` (`DROP TABLE [IF EXISTS] a, b …`).
pub(super) fn drops_table(sql: &str, schema: &str, table: &str) -> bool {
    static DROP: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?is)^\s*drop\s+table\s+(?:if\s+exists\s+)?").unwrap());
    let Some(head) = DROP.find(sql) else {
        return false;
    };
    let mut rest = &sql[head.end()..];
    while let Some((spelled, after)) = names::leading(rest) {
        if names::is_table(spelled, schema, table) {
            return true;
        }
        match after.trim_start().strip_prefix(',') {
            Some(more) => rest = more,
            None => break,
        }
    }
    false
}

/// Points `f` at the first statement `drops` accepts; else at the file of
/// the last run (the object went with something else: a `CASCADE`).
pub(super) fn at_drop(f: Finding, runs: &[FileRun], drops: impl Fn(&str) -> bool) -> Finding {
    for run in runs {
        if let Some(st) = run.statements.iter().find(|st| drops(&st.sql)) {
            return f.at(&run.file, st.line, &st.sql);
        }
    }
    match runs.last() {
        Some(run) => f.file(&run.file),
        None => f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_drops_are_found_by_table_and_column() {
        let sql = "ALTER TABLE person\n    DROP COLUMN inbox_url,\n    ALTER COLUMN shared_inbox_url SET NOT NULL";
        assert!(drops_column(sql, "public", "person", "inbox_url"));
        assert!(!drops_column(sql, "public", "community", "inbox_url"));
        assert!(!drops_column(sql, "public", "person", "shared_inbox_url"));
        assert!(drops_column(
            "alter table \"public\".\"Post\" drop if exists id",
            "public",
            "Post",
            "id"
        ));
        assert!(!drops_column(
            "ALTER TABLE person DROP CONSTRAINT person_inbox_url_key",
            "public",
            "person",
            "inbox_url"
        ));
        assert!(!drops_column(
            "ALTER TABLE person ALTER COLUMN id DROP DEFAULT",
            "public",
            "person",
            "id"
        ));
        assert!(!drops_column(
            "DROP INDEX idx_person_inbox_url",
            "public",
            "person",
            "inbox_url"
        ));
    }

    #[test]
    fn table_drops_are_found_in_lists() {
        assert!(drops_table(
            "DROP TABLE IF EXISTS a, public.b CASCADE",
            "public",
            "b"
        ));
        assert!(drops_table("drop table activity", "public", "activity"));
        assert!(!drops_table(
            "DROP TABLE activity_old",
            "public",
            "activity"
        ));
        assert!(!drops_table("DROP VIEW activity", "public", "activity"));
    }

    #[test]
    fn drops_in_another_schema_are_not_this_tables() {
        let sql = "ALTER TABLE a.events DROP COLUMN note";
        assert!(drops_column(sql, "a", "events", "note"));
        assert!(!drops_column(sql, "b", "events", "note"));
        assert!(drops_column(
            "ALTER TABLE events DROP note",
            "b",
            "events",
            "note"
        ));
        assert!(!drops_table("DROP TABLE a.events", "b", "events"));
        assert!(drops_table("DROP TABLE a.events, B.events", "b", "events"));
        assert!(!drops_table(
            "DROP TABLE a.events, \"B\".events",
            "b",
            "events"
        ));
        assert!(!drops_column(
            "ALTER TABLE \"Events\" DROP note",
            "b",
            "events",
            "note"
        ));
    }
}
