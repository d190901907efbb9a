//! Ignore comments: a team that has looked at a finding and accepted it says
//! so in the migration itself, where the reviewer of the next change sees
//! it — `-- ward:ignore RULE[, RULE]` on the statement's line or on the
//! comment lines right above it, `-- ward:ignore-file RULE[, RULE]` anywhere
//! in the file. Rules are named explicitly (no blanket ignore), and what was
//! ignored stays in the report, out of the verdict.

use std::sync::LazyLock;

use regex::Regex;

use super::migrations::{MigrationSet, Script};
use super::report::Finding;
use super::rule::{NotIgnorable, Rule};

/// One directive: the rules it names, and whether it covers the whole file.
#[derive(Debug, PartialEq)]
struct Directive {
    rules: Vec<String>,
    file: bool,
}

fn directive(line: &str) -> Option<Directive> {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"--\s*ward:ignore(-file)?\s+([a-z][a-z-]*(\s*,\s*[a-z][a-z-]*)*)").unwrap()
    });
    let c = RE.captures(line)?;
    Some(Directive {
        rules: c[2].split(',').map(|r| r.trim().to_string()).collect(),
        file: c.get(1).is_some(),
    })
}

/// Whether `script` ignores `rule` at `line` (a line of the file).
fn ignores(script: &Script, rule: &str, line: Option<usize>) -> bool {
    let lines: Vec<&str> = script.sql.lines().collect();
    let names = |d: &Directive| d.rules.iter().any(|r| r == rule);
    if lines
        .iter()
        .filter_map(|l| directive(l))
        .any(|d| d.file && names(&d))
    {
        return true;
    }
    let Some(at) = line
        .and_then(|l| l.checked_sub(script.first_line))
        .filter(|i| *i < lines.len())
    else {
        return false;
    };
    // The statement's own line, then the comment block right above it.
    let mut i = at;
    loop {
        if directive(lines[i]).is_some_and(|d| !d.file && names(&d)) {
            return true;
        }
        if i == 0 || !lines[i - 1].trim_start().starts_with("--") {
            return false;
        }
        i -= 1;
    }
}

/// Splits `findings` into the ones that count and the ones the migrations ignore.
pub(crate) fn split(
    findings: Vec<Finding>,
    set: Option<&MigrationSet>,
) -> (Vec<Finding>, Vec<Finding>) {
    let Some(set) = set else {
        return (findings, Vec::new());
    };
    for m in &set.migrations {
        for sc in std::iter::once(&m.up).chain(m.down.as_ref()) {
            for d in sc.sql.lines().filter_map(directive) {
                for named in &d.rules {
                    let why = match Rule::from_name(named).map(Rule::ignorable) {
                        Some(Ok(())) => continue,
                        Some(Err(NotIgnorable::Blocks)) => "cannot be ignored",
                        Some(Err(NotIgnorable::AboutWard)) | None => "is not a rule",
                    };
                    tracing::warn!(
                        "{}: `ward:ignore {named}` has no effect: {named} {why}",
                        sc.file
                    );
                }
            }
        }
    }
    findings.into_iter().partition(|f| {
        let Some(file) = &f.file else { return true };
        if f.rule.ignorable().is_err() {
            return true;
        }
        !set.migrations
            .iter()
            .flat_map(|m| std::iter::once(&m.up).chain(m.down.as_ref()))
            .filter(|s| &s.file == file)
            .any(|s| ignores(s, f.rule.name(), f.line))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(sql: &str, first_line: usize) -> Script {
        Script {
            file: "m/1_x.sql".into(),
            sql: sql.into(),
            first_line,
        }
    }

    #[test]
    fn directives_name_their_rules() {
        assert_eq!(
            directive("-- ward:ignore blocking-lock, dropped-empty"),
            Some(Directive {
                rules: vec!["blocking-lock".into(), "dropped-empty".into()],
                file: false
            })
        );
        assert!(directive("--ward:ignore-file out-of-order").unwrap().file);
        assert_eq!(directive("-- ward:ignore"), None);
        assert_eq!(directive("SELECT 1; -- nothing"), None);
    }

    #[test]
    fn a_statement_is_covered_by_its_line_and_the_comments_above() {
        let s = script(
            "CREATE INDEX a ON t (x);\n-- reviewed: t is small in production\n-- ward:ignore blocking-lock\nALTER TABLE t ALTER x TYPE bigint;\nALTER TABLE u ALTER y TYPE bigint; -- ward:ignore blocking-lock\n",
            1,
        );
        assert!(!ignores(&s, "blocking-lock", Some(1)));
        assert!(ignores(&s, "blocking-lock", Some(4)));
        assert!(ignores(&s, "blocking-lock", Some(5)));
        assert!(!ignores(&s, "values-changed", Some(4)));
        assert!(!ignores(&s, "blocking-lock", None));
        // A dbmate section starts mid-file.
        let s = script("-- ward:ignore dropped-empty\nDROP TABLE t;\n", 10);
        assert!(ignores(&s, "dropped-empty", Some(11)));
        assert!(!ignores(&s, "dropped-empty", Some(2)));
    }

    #[test]
    fn a_file_directive_covers_every_statement() {
        let s = script(
            "-- ward:ignore-file timezone-dependent\nALTER TABLE a ALTER t TYPE timestamptz;\n",
            1,
        );
        assert!(ignores(&s, "timezone-dependent", None));
        assert!(ignores(&s, "timezone-dependent", Some(2)));
        assert!(!ignores(&s, "blocking-lock", Some(2)));
    }
}
