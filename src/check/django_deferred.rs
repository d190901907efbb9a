//! Whose SQL Django runs last. The schema editor defers the indexes and
//! foreign keys of new columns and tables (`deferred_sql`) to the end of the
//! migration, so `sqlmigrate` prints them after the last operation and the
//! runner script records them under no operation. Blamed on the last
//! operation, a lock held by the index of a field added three operations
//! earlier points at the wrong line; blamed here on the operation whose SQL
//! made that column.

use std::sync::LazyLock;

use regex::Regex;

use super::django::Operations;

/// `CREATE [UNIQUE] INDEX "name" ON "table" … ("column"`.
static INDEX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?is)^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?"([^"]+)"\s+ON\s+"([^"]+)"[^(]*\(\s*"([^"]+)""#,
    )
    .expect("a valid pattern")
});

/// `ALTER TABLE "table" ADD CONSTRAINT "name" FOREIGN KEY ("column")`.
static FOREIGN_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?is)^\s*ALTER\s+TABLE\s+"([^"]+)"\s+ADD\s+CONSTRAINT\s+"([^"]+)"\s+FOREIGN\s+KEY\s*\(\s*"([^"]+)""#,
    )
    .expect("a valid pattern")
});

/// Names Django makes up for what it defers: `<table>_<column>_<hash>`
/// (`_like` for the pattern-ops twin) and `…_fk_<table>_<column>`. An index
/// an operation names itself (`AddIndex`, `Meta.indexes`) is its own.
static GENERATED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:_[0-9a-f]{8}(?:_like|_uniq)?$)|(?:_fk_)").expect("a valid pattern")
});

/// The (table, column) a deferred statement is on, if it is one.
fn deferred_target(sql: &str) -> Option<(String, String)> {
    if let Some(c) = INDEX.captures(sql) {
        return GENERATED
            .is_match(&c[1])
            .then(|| (c[2].to_string(), c[3].to_string()));
    }
    let c = FOREIGN_KEY.captures(sql)?;
    GENERATED
        .is_match(&c[2])
        .then(|| (c[1].to_string(), c[3].to_string()))
}

/// Whether `sql` makes `column` of `table`: creates the table with it, or
/// adds or changes the column (a deferred statement on it does not).
fn makes(sql: &str, table: &str, column: &str) -> bool {
    let head = sql.trim_start().to_ascii_uppercase();
    let quoted = |s: &str| format!("\"{s}\"");
    (head.starts_with("CREATE TABLE") || head.starts_with("ALTER TABLE"))
        && deferred_target(sql).is_none()
        && sql.contains(&quoted(table))
        && sql.contains(&quoted(column))
}

/// The operation (an index into `ops`, before the last) whose SQL made the
/// column a deferred statement `sql` is on; None when `sql` is not deferred
/// or the last operation made the column itself.
pub(super) fn owner(ops: &Operations, sql: &str) -> Option<usize> {
    let (table, column) = deferred_target(sql)?;
    let last = ops.len().checked_sub(1)?;
    if ops[last].2.iter().any(|s| makes(&s.sql, &table, &column)) {
        return None;
    }
    ops[..last]
        .iter()
        .rposition(|(_, _, stmts)| stmts.iter().any(|s| makes(&s.sql, &table, &column)))
}

/// The description and line a deferred statement is reported under.
pub(super) fn blame(ops: &Operations, owner: usize) -> (String, usize) {
    let (describe, line, _) = &ops[owner];
    (
        format!("{describe} (run by Django at the migration's end)"),
        *line,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::split::Statement;

    fn op(describe: &str, line: usize, sql: &[&str]) -> (String, usize, Vec<Statement>) {
        let stmts = sql
            .iter()
            .map(|s| Statement {
                sql: s.to_string(),
                line: 1,
            })
            .collect();
        (describe.to_string(), line, stmts)
    }

    #[test]
    fn a_deferred_index_belongs_to_the_operation_that_added_its_column() {
        let ops = vec![
            op(
                "Add field author to book",
                12,
                &[r#"ALTER TABLE "app_book" ADD COLUMN "author_id" bigint NULL"#],
            ),
            op(
                "Alter field title on book",
                20,
                &[
                    r#"ALTER TABLE "app_book" ALTER COLUMN "title" TYPE varchar(300)"#,
                    r#"CREATE INDEX "app_book_author_id_1b2c3d4e" ON "app_book" ("author_id")"#,
                    r#"ALTER TABLE "app_book" ADD CONSTRAINT "app_book_author_id_1b2c3d4e_fk_app_author_id" FOREIGN KEY ("author_id") REFERENCES "app_author" ("id") DEFERRABLE INITIALLY DEFERRED"#,
                ],
            ),
        ];
        let index = r#"CREATE INDEX "app_book_author_id_1b2c3d4e" ON "app_book" ("author_id")"#;
        assert_eq!(owner(&ops, index), Some(0));
        let fk = r#"ALTER TABLE "app_book" ADD CONSTRAINT "app_book_author_id_1b2c3d4e_fk_app_author_id" FOREIGN KEY ("author_id") REFERENCES "app_author" ("id") DEFERRABLE INITIALLY DEFERRED"#;
        assert_eq!(owner(&ops, fk), Some(0));
        assert_eq!(blame(&ops, 0).1, 12);
        // An index the last operation names itself is its own.
        let named = r#"CREATE INDEX "book_author_idx" ON "app_book" ("author_id")"#;
        assert_eq!(owner(&ops, named), None);
        // A column the last operation made is its own too.
        let title = r#"CREATE INDEX "app_book_title_0a1b2c3d_like" ON "app_book" ("title" varchar_pattern_ops)"#;
        assert_eq!(owner(&ops, title), None);
    }
}
