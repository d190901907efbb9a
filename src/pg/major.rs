//! The major version of a Postgres server, read from whatever text names it:
//! a data directory's `PG_VERSION` file ("15", "9.6"), `postgres --version`
//! ("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)") or
//! `SHOW server_version` ("16.2 (Debian 16.2-1.pgdg120+2)", "18beta1").
//!
//! One parser for all of them, so a pre-release or a distribution suffix is
//! understood the same way wherever ward meets it. A physical copy of a data
//! directory only starts on its own major, so this number decides which
//! server binaries or image ward runs a snapshot on.

/// The major version in `text`: the leading digits of its first word that
/// starts with a digit ("15.4" → 15, "18beta1" → 18, "PostgreSQL 16.2 (…)" →
/// 16). Before PostgreSQL 10 the major had two parts; ward only needs the
/// first ("9.6" → 9), which no later release shares. `None` when no word
/// starts with a digit, or the number is absurd.
pub(crate) fn parse_major(text: &str) -> Option<u32> {
    let word = text
        .split_whitespace()
        .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))?;
    let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .ok()
        .filter(|major| (1..1000).contains(major))
}

#[cfg(test)]
mod tests {
    use super::parse_major;

    #[test]
    fn pg_version_files() {
        assert_eq!(parse_major("15"), Some(15));
        assert_eq!(parse_major("15\n"), Some(15));
        assert_eq!(parse_major("9.6"), Some(9));
    }

    #[test]
    fn server_version_strings() {
        assert_eq!(parse_major("15.4"), Some(15));
        assert_eq!(parse_major("18beta1"), Some(18));
        assert_eq!(parse_major("17rc1"), Some(17));
        assert_eq!(
            parse_major("PostgreSQL 16.2 (Debian 16.2-1.pgdg120+2)"),
            Some(16)
        );
        assert_eq!(
            parse_major("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(parse_major("postgres (PostgreSQL) 9.6.24"), Some(9));
    }

    #[test]
    fn garbage_has_no_major() {
        assert_eq!(parse_major(""), None);
        assert_eq!(parse_major("   \n"), None);
        assert_eq!(parse_major("x"), None);
        assert_eq!(parse_major("postgres: command not found"), None);
        assert_eq!(parse_major("v15"), None);
        assert_eq!(parse_major("0"), None);
        assert_eq!(parse_major("99999999999999999999"), None);
    }
}
