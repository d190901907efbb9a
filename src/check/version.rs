//! Migration versions ordered and compared exactly as each runner does it.
//!
//! Running migrations in another order than the runner produces false
//! migration errors and false `out-of-order` findings on real histories, so
//! every format gets its runner's own rule:
//!
//! | format | version | order |
//! |---|---|---|
//! | diesel | directory name up to the first `_`, every `-` removed | string order (`2017…` 14 digits sorts before `2019…` 18 digits, and `20170101000000` after `201609…`) |
//! | golang-migrate | leading digits, an unsigned 64-bit integer | numeric |
//! | sqlx | leading digits, a signed 64-bit integer | numeric |
//! | refinery | the number after `V`/`U` (an integer) | numeric |
//! | flyway | `V1_2__…` / `V1.2__…`: dot- or underscore-separated integers | part by part numerically, trailing zero parts insignificant (`1.0` = `1`) |
//! | dbmate | leading digits, kept as a string | file-name order for running; versions compared as strings |

use std::cmp::Ordering;

use super::migrations::Format;

/// A non-negative integer of any length, compared by value (Flyway's
/// versions are `BigInteger`s; the others fit 64 bits, but one type serves).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Digits(String);

impl Digits {
    fn new(s: &str) -> Digits {
        let t = s.trim_start_matches('0');
        Digits(if t.is_empty() { "0".into() } else { t.into() })
    }

    fn is_zero(&self) -> bool {
        self.0 == "0"
    }
}

impl std::fmt::Display for Digits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Ord for Digits {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Digits {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The identity and position of a migration for its runner.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VersionKey {
    /// Compared as strings (diesel, dbmate).
    Text(String),
    /// Compared part by part as numbers; one part for integer versions.
    Numeric(Vec<Digits>),
}

impl Default for VersionKey {
    fn default() -> Self {
        VersionKey::Numeric(Vec::new())
    }
}

impl Format {
    /// The key of `version` as this format's runner stores it (diesel: the
    /// dash-stripped string; Flyway: `1.2`; the others: digits).
    pub fn key(self, version: &str) -> VersionKey {
        match self {
            Format::Diesel => VersionKey::Text(version.replace('-', "")),
            Format::Dbmate => VersionKey::Text(version.to_string()),
            Format::Flyway => {
                let mut parts: Vec<Digits> = version
                    .split(['.', '_'])
                    .filter(|p| !p.is_empty())
                    .map(Digits::new)
                    .collect();
                while parts.len() > 1 && parts.last().is_some_and(Digits::is_zero) {
                    parts.pop();
                }
                VersionKey::Numeric(parts)
            }
            Format::Sqlx | Format::GolangMigrate | Format::Refinery => {
                let digits: String = version.chars().filter(char::is_ascii_digit).collect();
                VersionKey::Numeric(vec![Digits::new(&digits)])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diesel_compares_dash_stripped_strings() {
        let k = |v| Format::Diesel.key(v);
        // An 18-digit version sorts by its characters, not its magnitude.
        assert!(k("201901010000000000") > k("20190101000000"));
        assert!(k("2020-01-01-000000") > k("201901010000000000"));
        assert_eq!(k("2019-01-01-000000"), k("20190101000000"));
    }

    #[test]
    fn flyway_ignores_trailing_zero_parts_and_compares_numerically() {
        let k = |v| Format::Flyway.key(v);
        assert_eq!(k("1.0"), k("1"));
        assert_eq!(k("1_0_0"), k("1"));
        assert!(k("1.2") < k("1.10"));
        assert!(k("1") < k("1.0.1"));
        assert!(k("2") > k("1.999"));
        assert!(k("99999999999999999999999") > k("9"));
        assert_eq!(k("01.2"), k("1.2"));
    }

    #[test]
    fn integer_formats_compare_numerically() {
        for f in [Format::Sqlx, Format::GolangMigrate, Format::Refinery] {
            assert!(f.key("9") < f.key("10"), "{f:?}");
            assert_eq!(f.key("007"), f.key("7"), "{f:?}");
            assert!(
                f.key("20240101000000") < f.key("202401010000000000"),
                "{f:?}"
            );
        }
    }
}
