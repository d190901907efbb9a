//! Splitting SQL files into statements with a small lexer that knows what
//! Postgres knows: `--` and nested `/* */` comments, '…' strings (with `''`),
//! E'…' strings (with backslash escapes), "…" identifiers, `$tag$…$tag$`
//! dollar quotes, and SQL-standard function bodies (`BEGIN ATOMIC … END`,
//! with `CASE … END` inside).

/// One statement of a file: its text (from its first token to its `;`,
/// without the `;`) and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Statement {
    pub sql: String,
    pub line: usize,
}

impl Statement {
    /// The statement upper-cased with its whitespace runs as single
    /// spaces: the form the statement-kind readings match prefixes on.
    pub(crate) fn normalized(&self) -> String {
        self.sql
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase()
    }
}

pub(crate) fn split(sql: &str) -> Vec<Statement> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let mut start: Option<(usize, usize)> = None; // byte offset, line
    let mut words: Vec<String> = Vec::new(); // upper-cased words of the statement
    let mut atomic_depth = 0usize;
    let mut prev_ident = false;
    let flush = |out: &mut Vec<Statement>, start: &mut Option<(usize, usize)>, end: usize| {
        if let Some((s, l)) = start.take() {
            let text = sql[s..end].trim_end();
            if !text.is_empty() {
                out.push(Statement {
                    sql: text.to_string(),
                    line: l,
                });
            }
        }
    };
    while i < b.len() {
        let c = b[i];
        // Comments and whitespace do not start a statement.
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            prev_ident = false;
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            prev_ident = false;
            continue;
        }
        if c == b'\n' {
            line += 1;
            i += 1;
            prev_ident = false;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            prev_ident = false;
            continue;
        }
        if c == b';' && atomic_depth == 0 {
            flush(&mut out, &mut start, i);
            words.clear();
            i += 1;
            prev_ident = false;
            continue;
        }
        if start.is_none() {
            start = Some((i, line));
        }
        match c {
            b'\'' => {
                let escapes =
                    i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !is_ident(b[i - 2]));
                i += 1;
                while i < b.len() {
                    if escapes && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    if b[i] == b'\'' {
                        if b.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
                prev_ident = false;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 1;
                prev_ident = true;
            }
            b'$' if !prev_ident => {
                // A dollar quote: $$ or $tag$ (a tag does not start with a digit).
                let mut j = i + 1;
                while j < b.len() && is_ident(b[j]) && b[j] != b'$' {
                    j += 1;
                }
                let tag_ok =
                    j < b.len() && b[j] == b'$' && (j == i + 1 || !b[i + 1].is_ascii_digit());
                if !tag_ok {
                    i += 1;
                    continue;
                }
                let tag = &sql[i..=j];
                let body = j + 1;
                match sql[body..].find(tag) {
                    Some(p) => {
                        line += sql[body..body + p].matches('\n').count();
                        i = body + p + tag.len();
                    }
                    None => {
                        line += sql[body..].matches('\n').count();
                        i = b.len();
                    }
                }
                prev_ident = false;
            }
            _ if is_ident(c) => {
                let s = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                if !prev_ident {
                    let w = sql[s..i].to_ascii_uppercase();
                    if atomic_depth > 0 {
                        if w == "CASE" {
                            atomic_depth += 1;
                        } else if w == "END" {
                            atomic_depth -= 1;
                        }
                    } else if w == "ATOMIC"
                        && words.last().map(String::as_str) == Some("BEGIN")
                        && words.first().map(String::as_str) == Some("CREATE")
                        && words.iter().any(|w| w == "FUNCTION" || w == "PROCEDURE")
                    {
                        atomic_depth = 1;
                    }
                    words.push(w);
                }
                prev_ident = true;
            }
            _ => {
                i += 1;
                prev_ident = false;
            }
        }
    }
    flush(&mut out, &mut start, b.len());
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Whether a statement cannot run inside a transaction block.
pub(crate) fn needs_autocommit(sql: &str) -> bool {
    let up: String = sql
        .split_whitespace()
        .take(8)
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase();
    up.contains(" CONCURRENTLY")
        || up.starts_with("VACUUM")
        || up.starts_with("CREATE DATABASE")
        || up.starts_with("DROP DATABASE")
        || up.starts_with("ALTER SYSTEM")
        || up.starts_with("CREATE TABLESPACE")
        || up.starts_with("DROP TABLESPACE")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<(String, usize)> {
        split(sql).into_iter().map(|s| (s.sql, s.line)).collect()
    }

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let sql = "-- head; comment\nCREATE TABLE a (x text DEFAULT ';');\n/* a; /* nested; */ b; */\nINSERT INTO a VALUES ('it''s; fine'), (E'\\'; ok');\nSELECT \"we;ird\" FROM a";
        let got = texts(sql);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].1, 2);
        assert_eq!(got[1].1, 4);
        assert!(got[1].0.ends_with("(E'\\'; ok')"));
        assert_eq!(got[2], ("SELECT \"we;ird\" FROM a".into(), 5));
    }

    #[test]
    fn dollar_quotes_and_parameters() {
        let sql = "CREATE FUNCTION f() RETURNS int AS $body$\nBEGIN\n  RETURN 1; -- ;\nEND;\n$body$ LANGUAGE plpgsql;\nDO $$ BEGIN PERFORM 1; END $$;\nPREPARE p AS SELECT $1::int;";
        let got = texts(sql);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[1].1, 6);
        assert_eq!(got[2].1, 7);
    }

    #[test]
    fn begin_atomic_bodies_stay_whole() {
        let sql = "CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;\n  SELECT 2;\nEND;\nBEGIN;\nSELECT 3;\nCOMMIT;";
        let got = texts(sql);
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got[0].0.ends_with("END"));
        assert_eq!(got[1], ("BEGIN".into(), 6));
    }

    #[test]
    fn autocommit_statements() {
        assert!(needs_autocommit("CREATE INDEX CONCURRENTLY i ON t (x)"));
        assert!(needs_autocommit(
            "create unique index concurrently if not exists i on t(x)"
        ));
        assert!(!needs_autocommit("CREATE INDEX i ON t (x)"));
    }
}
