//! Keeping secrets out of everything ward prints or writes: URL passwords
//! (also percent-encoded ones holding `@` or `/`), `password=` style pairs,
//! `PASSWORD '…'` in SQL, and every password ward has learnt while running
//! (from a URL, a container's environment, a throwaway server) wherever it
//! appears. Errors, logs and reports pass through [`text`]; the log writer
//! ([`Stderr`]) does it for every line.

use std::io::{self, Write};
use std::sync::{LazyLock, Mutex};

use regex::Regex;

/// Passwords ward knows about in this process.
static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

const HIDDEN: &str = "***";

/// Remembers `secret` so that [`text`] hides it wherever it appears (also
/// percent-encoded). Too-short values are not registered: hiding every "a"
/// would garble messages and protect nothing.
pub(crate) fn register(secret: &str) {
    if secret.len() < 4 {
        return;
    }
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    for s in [secret.to_string(), encoded, percent_all(secret)] {
        if !known.contains(&s) {
            known.push(s);
        }
    }
    // Longest first, so a secret containing another is hidden whole.
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Percent-encodes every byte but the unreserved ones (URL userinfo, paths).
pub(crate) fn percent_all(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

static URL_PASSWORD: LazyLock<Regex> = LazyLock::new(|| {
    // scheme://user:password@ — the password runs to the last `@` of the
    // token, so a raw `@` or `/` in it does not end it early.
    Regex::new(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*):[^\s]*@").expect("valid regex")
});
static PAIR: LazyLock<Regex> = LazyLock::new(|| {
    // A name made of `_`-separated words one of which says "secret"
    // (AWS_SECRET_ACCESS_KEY, DB_PASS, api_key), maybe quoted as in JSON,
    // then `=` or `:` and the value.
    Regex::new(
        r#"(?i)\b((?:[a-z0-9]+_)*(?:password|passwd|pwd|pass|secret|token|credentials?|apikey|api_key|access_key|private_key)(?:_[a-z0-9]+)*)("?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s"',;&}]+)"#,
    )
    .expect("valid regex")
});
static SQL_PASSWORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bPASSWORD\s+'(?:[^']|'')*'").expect("valid regex"));

/// `s` with every secret ward can recognise replaced by `***`.
pub(crate) fn text(s: &str) -> String {
    let mut out = URL_PASSWORD
        .replace_all(s, format!("$1:{HIDDEN}@"))
        .into_owned();
    out = SQL_PASSWORD
        .replace_all(&out, format!("PASSWORD '{HIDDEN}'"))
        .into_owned();
    out = PAIR.replace_all(&out, format!("$1$2{HIDDEN}")).into_owned();
    let known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    for k in known.iter() {
        if out.contains(k.as_str()) {
            out = out.replace(k.as_str(), HIDDEN);
        }
    }
    out
}

/// Whether an option or setting name says its value is a secret.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "pass",
        "secret",
        "key",
        "token",
        "credential",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// The log writer: stderr, with every line passed through [`text`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let clean = text(&String::from_utf8_lossy(buf));
        io::stderr().write_all(clean.as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_hidden_even_with_at_and_slash() {
        for (url, pw) in [
            ("postgres://app:s3cret@db:5432/x", "s3cret"),
            ("postgres://app:p%40ss%2Fw0rd@db/x", "p%40ss"),
            ("postgresql://app:p@ss/w0rd@db/x", "ss/w0rd"),
        ] {
            let t = text(&format!("cannot reach {url} now"));
            assert!(!t.contains(pw), "{t}");
            assert!(t.contains("app:***@") && t.ends_with(" now"), "{t}");
        }
        assert_eq!(text("postgres://app@db/x"), "postgres://app@db/x");
    }

    #[test]
    fn pairs_sql_and_known_secrets_are_hidden() {
        let t = text(r#"["POSTGRES_PASSWORD=hunter22","PGDATA=/x"] password='a b' x"#);
        assert!(!t.contains("hunter22") && !t.contains("a b"), "{t}");
        assert!(t.contains("PGDATA=/x"), "{t}");
        let t = text("ALTER ROLE x PASSWORD 'it''s' LOGIN");
        assert_eq!(t, "ALTER ROLE x PASSWORD '***' LOGIN");
        for line in [
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIkey",
            "S3_SECRET=wJalrXUtnFEMIkey",
            "DB_PASS=wJalrXUtnFEMIkey",
            r#"{"aws_secret_access_key": "wJalrXUtnFEMIkey"}"#,
        ] {
            assert!(!text(line).contains("wJalrXUtnFEMIkey"), "{line}");
        }
        for harmless in ["passenger=3", "tokens: 4", "bypass_count=2"] {
            assert_eq!(text(harmless), harmless);
        }
        register("Zq9!known/pw");
        let t = text("env Zq9!known/pw and Zq9%21known%2Fpw");
        assert!(!t.contains("known"), "{t}");
    }
}
