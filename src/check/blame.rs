//! Which statement dropped a table or a column. Matching on "the statement
//! mentions `drop` and the name" blamed `DROP CONSTRAINT person_inbox_url_key`
//! or any statement with `id` in it for a dropped `id` column; then a
//! `-- ward:ignore` on the real `DROP COLUMN` was not honoured. Only
//! statements that can drop the object by name count here.

use std::sync::LazyLock;

use regex::Regex;

use super::apply::FileRun;
use super::report::Finding;

/// The statement text lowercased, quotes removed, whitespace collapsed.
fn normalise(sql: &str) -> String {
    sql.replace('"', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Whether a table spelled `qualifier.name` (qualifier optional) can be
/// `schema.table`: an unqualified name may be (the search path decides); a
/// name in another schema is another table.
fn same_table(qualifier: Option<&str>, name: &str, schema: &str, table: &str) -> bool {
    name == table.to_lowercase() && qualifier.is_none_or(|q| q == schema.to_lowercase())
}

/// Whether `sql` drops `column` of `schema.table` (`ALTER TABLE t … DROP [COLUMN] [IF EXISTS] c`).
pub fn drops_column(sql: &str, schema: &str, table: &str, column: &str) -> bool {
    static ALTER: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^alter table (?:if exists )?(?:only )?(?:([\w$]+)\.)?([\w$]+)").unwrap()
    });
    static DROP: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:^|[\s,])drop (?:column )?(?:if exists )?([\w$]+)").unwrap()
    });
    let s = normalise(sql);
    let Some(c) = ALTER.captures(&s) else {
        return false;
    };
    if !same_table(c.get(1).map(|q| q.as_str()), &c[2], schema, table) {
        return false;
    }
    let column = column.to_lowercase();
    DROP.captures_iter(&s).any(|d| d[1] == column)
}

/// Whether `sql` drops `schema.table` (`DROP TABLE [IF EXISTS] a, b …`).
pub fn drops_table(sql: &str, schema: &str, table: &str) -> bool {
    static DROP: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^drop table (?:if exists )?([^;]+)").unwrap());
    let s = normalise(sql);
    DROP.captures(&s).is_some_and(|c| {
        c[1].split(',')
            .map(|t| t.split_whitespace().next().unwrap_or(""))
            .any(|t| {
                let (q, n) = t.rsplit_once('.').map_or((None, t), |(q, n)| (Some(q), n));
                same_table(q, n, schema, table)
            })
    })
}

/// Points `f` at the first statement `drops` accepts; else at the file of
/// the last run (the object went with something else: a `CASCADE`).
pub fn at_drop(f: Finding, runs: &[FileRun], drops: impl Fn(&str) -> bool) -> Finding {
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
        assert!(drops_table("DROP TABLE IF EXISTS a, public.b CASCADE", "public", "b"));
        assert!(drops_table("drop table activity", "public", "activity"));
        assert!(!drops_table("DROP TABLE activity_old", "public", "activity"));
        assert!(!drops_table("DROP VIEW activity", "public", "activity"));
    }

    #[test]
    fn drops_in_another_schema_are_not_this_tables() {
        let sql = "ALTER TABLE a.events DROP COLUMN note";
        assert!(drops_column(sql, "a", "events", "note"));
        assert!(!drops_column(sql, "b", "events", "note"));
        assert!(drops_column("ALTER TABLE events DROP note", "b", "events", "note"));
        assert!(!drops_table("DROP TABLE a.events", "b", "events"));
        assert!(drops_table("DROP TABLE a.events, \"B\".events", "b", "events"));
    }
}
