//! The column generators a spec can name: ward's semantic, UK-safe ones
//! (`person.given_name`, `patient.nhs_number`, `address.postcode`, …),
//! generic ones from the `fake` crate (`lorem.sentence`, `company.name`, …),
//! typed ones (`int`, `date`, `uuid`, …), weighted `values` and `template`s.
//!
//! Each generator knows what kind of value it makes (checked against the
//! column type before anything is written) and, for UNIQUE columns, how many
//! distinct values it can make and how to make the `rank`-th one — so
//! uniqueness is by construction, never by retrying. The values themselves
//! are made in `make`.

use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime};

pub use super::make::Ctx;
use super::make::TEST_NETS;
use super::schema::{Column, PgType};
use crate::seed::generate::{nhs, person};
use crate::seed::lists::Lists;
use crate::seed::rng::Weighted;

/// What kind of value a generator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Numeric,
    Bool,
    Text,
    Date,
    Timestamp,
    Time,
    Interval,
    Uuid,
    Json,
    Bytes,
    Null,
}

/// Text generators with meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sem {
    GivenName,
    FamilyName,
    FullName,
    NhsNumber,
    Postcode,
    Street,
    Town,
    PhoneUk,
    /// Drama blocks that libphonenumber also accepts as valid.
    PhoneValidUk,
    PhoneMobile,
    /// Country-neutral: North American 555-01xx numbers (fictional by NANPA).
    PhoneIntl,
    Email,
    Username,
    Url,
    PasswordHash,
    Ip,
    Condition,
    Snomed,
    Icd10,
    Medicine,
    Allergen,
    LoremWord,
    LoremWords,
    Slug,
    Semver,
    LoremSentence,
    LoremParagraph,
    CompanyName,
    JobTitle,
}

/// Every generator name a spec may use, for help and error messages.
pub const NAMES: &[&str] = &[
    "sequence",
    "int",
    "float",
    "numeric",
    "bool",
    "date",
    "timestamp",
    "time",
    "interval",
    "uuid",
    "ulid",
    "json",
    "bytes",
    "null",
    "person.given_name",
    "person.family_name",
    "person.full_name",
    "person.sex",
    "person.date_of_birth",
    "patient.nhs_number",
    "address.postcode",
    "address.street",
    "address.town",
    "phone.uk",
    "phone.valid_uk",
    "phone.mobile",
    "phone.intl",
    "internet.email",
    "internet.username",
    "internet.url",
    "internet.slug",
    "version.semver",
    "internet.password_hash",
    "internet.ip",
    "clinical.condition",
    "clinical.snomed",
    "clinical.icd10",
    "clinical.medicine",
    "clinical.allergen",
    "lorem.word",
    "lorem.words",
    "lorem.sentence",
    "lorem.paragraph",
    "company.name",
    "job.title",
];

#[derive(Debug, Clone)]
pub enum Part {
    Lit(String),
    Col { name: String, filter: Filter },
    Row,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    None,
    Slug,
    Lower,
    Upper,
}

#[derive(Debug, Clone)]
pub enum Gen {
    Sequence {
        start: i64,
    },
    Int {
        min: i64,
        max: i64,
    },
    Float {
        min: f64,
        max: f64,
    },
    Numeric {
        min: f64,
        max: f64,
        scale: u16,
    },
    Bool {
        true_ratio: f64,
    },
    Date {
        from: NaiveDate,
        to: NaiveDate,
    },
    Timestamp {
        from: NaiveDateTime,
        to: NaiveDateTime,
    },
    Time {
        from: NaiveTime,
        to: NaiveTime,
    },
    Interval {
        min_minutes: i64,
        max_minutes: i64,
    },
    Uuid,
    /// A canonical ULID (26 Crockford base-32 characters) whose time part
    /// falls between these instants.
    Ulid {
        from: NaiveDateTime,
        to: NaiveDateTime,
    },
    Json,
    /// JSON of a shape (see `shape`).
    Shaped(std::sync::Arc<super::shape::Compiled>),
    Bytes {
        min: u32,
        max: u32,
    },
    Values {
        items: Vec<String>,
        weights: Weighted,
    },
    Sem(Sem),
    Template(Vec<Part>),
    Null,
}

/// Parameters a spec can give a generator.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub true_ratio: Option<f64>,
    pub start: Option<i64>,
    /// `shape = '…'` of a `json` column.
    pub shape: Option<super::shape::Shape>,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

fn parse_ts(s: &str) -> Result<NaiveDateTime, String> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .or_else(|_| parse_date(s).map(|d| d.and_time(NaiveTime::MIN)))
        .map_err(|_| format!("{s:?} is not a timestamp (YYYY-MM-DD or YYYY-MM-DD HH:MM:SS)"))
}

fn years_before(d: NaiveDate, years: u64) -> NaiveDate {
    d.checked_sub_days(Days::new(years * 365 + years / 4))
        .unwrap()
}

/// Parses a template: `{column}`, `{column|slug}` (also `lower`, `upper`), `{row}`.
pub fn parse_template(t: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Lit(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("template {t:?} has an unclosed '{{'"))?
            + open;
        let inner = &rest[open + 1..close];
        let (name, filter) = match inner.split_once('|') {
            Some((n, "slug")) => (n, Filter::Slug),
            Some((n, "lower")) => (n, Filter::Lower),
            Some((n, "upper")) => (n, Filter::Upper),
            Some((_, f)) => {
                return Err(format!(
                    "unknown template filter {f:?} (slug, lower, upper)"
                ));
            }
            None => (inner, Filter::None),
        };
        if name == "row" {
            parts.push(Part::Row);
        } else if name.is_empty() {
            return Err(format!("template {t:?} has an empty '{{}}'"));
        } else {
            parts.push(Part::Col {
                name: name.to_string(),
                filter,
            });
        }
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.to_string()));
    }
    Ok(parts)
}

impl Gen {
    /// A generator by name, fitted to the column (its type and CHECKs).
    pub fn named(name: &str, p: &Params, col: &Column, as_of: NaiveDate) -> Result<Gen, String> {
        let check = &col.check;
        let (clo, chi) = check.int_bounds();
        let int_default = |lo: i64, hi: i64| {
            let (tlo, thi) = col.ty.int_range().unwrap_or((i64::MIN, i64::MAX));
            let lo = p.min.map(|v| v as i64).or(clo).unwrap_or(lo).max(tlo);
            let hi = p.max.map(|v| v as i64).or(chi).unwrap_or(hi).min(thi);
            (lo, hi)
        };
        let g = match name {
            "sequence" => Gen::Sequence {
                start: p.start.or(clo).unwrap_or(1),
            },
            "int" => {
                let (min, max) = int_default(0, 1000);
                if min > max {
                    return Err(format!("int needs min ≤ max (got {min} > {max})"));
                }
                Gen::Int { min, max }
            }
            "float" => Gen::Float {
                min: p.min.or(check.min.map(|m| m.0)).unwrap_or(0.0),
                max: p.max.or(check.max.map(|m| m.0)).unwrap_or(1000.0),
            },
            "numeric" => {
                let (prec, scale) = match col.ty {
                    PgType::Numeric(Some((p, s))) => (p, s),
                    _ => (12, 2),
                };
                let cap = 10f64.powi((prec - scale) as i32) - 10f64.powi(-(scale as i32));
                let min = p.min.or(check.min.map(|m| m.0)).unwrap_or(0.0).max(-cap);
                let max = p
                    .max
                    .or(check.max.map(|m| m.0))
                    .unwrap_or(1000.0_f64.min(cap))
                    .min(cap);
                Gen::Numeric {
                    min,
                    max,
                    scale: scale as u16,
                }
            }
            "bool" => Gen::Bool {
                true_ratio: p.true_ratio.unwrap_or(0.5),
            },
            "date" => Gen::Date {
                from: p
                    .from
                    .as_deref()
                    .map(parse_date)
                    .transpose()?
                    .unwrap_or(years_before(as_of, 5)),
                to: p
                    .to
                    .as_deref()
                    .map(parse_date)
                    .transpose()?
                    .unwrap_or(as_of),
            },
            "person.date_of_birth" => Gen::Date {
                from: p
                    .from
                    .as_deref()
                    .map(parse_date)
                    .transpose()?
                    .unwrap_or(years_before(as_of, 95)),
                to: p
                    .to
                    .as_deref()
                    .map(parse_date)
                    .transpose()?
                    .unwrap_or(as_of),
            },
            "timestamp" => Gen::Timestamp {
                from: p
                    .from
                    .as_deref()
                    .map(parse_ts)
                    .transpose()?
                    .unwrap_or(years_before(as_of, 3).and_time(NaiveTime::MIN)),
                to: p
                    .to
                    .as_deref()
                    .map(parse_ts)
                    .transpose()?
                    .unwrap_or(as_of.and_hms_opt(23, 59, 59).unwrap()),
            },
            "time" => Gen::Time {
                from: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
                to: NaiveTime::from_hms_opt(18, 0, 0).unwrap(),
            },
            "interval" => Gen::Interval {
                min_minutes: p.min.map(|v| v as i64).unwrap_or(5),
                max_minutes: p.max.map(|v| v as i64).unwrap_or(120),
            },
            "uuid" => Gen::Uuid,
            "ulid" => Gen::Ulid {
                from: years_before(as_of, 3).and_time(NaiveTime::MIN),
                to: as_of.and_hms_opt(23, 59, 59).unwrap(),
            },
            "json" => match &p.shape {
                Some(s) => Gen::Shaped(std::sync::Arc::new(s.compile(as_of)?)),
                None => Gen::Json,
            },
            "bytes" => {
                // A CHECK on the length (a hash's 32 bytes) wins over the defaults.
                let min = p.min.map(|v| v as u32).or(check.min_len).unwrap_or(8);
                let max = p
                    .max
                    .map(|v| v as u32)
                    .or(check.max_len)
                    .unwrap_or(32.max(min));
                Gen::Bytes {
                    min: min.min(max),
                    max,
                }
            }
            "null" => Gen::Null,
            "person.sex" => Gen::values(vec!["F".into(), "M".into()], vec![1, 1]),
            other => Gen::Sem(match other {
                "person.given_name" => Sem::GivenName,
                "person.family_name" => Sem::FamilyName,
                "person.full_name" => Sem::FullName,
                "patient.nhs_number" => Sem::NhsNumber,
                "address.postcode" => Sem::Postcode,
                "address.street" => Sem::Street,
                "address.town" => Sem::Town,
                "phone.uk" => Sem::PhoneUk,
                "phone.valid_uk" => Sem::PhoneValidUk,
                "phone.mobile" => Sem::PhoneMobile,
                "phone.intl" => Sem::PhoneIntl,
                "internet.email" => Sem::Email,
                "internet.username" => Sem::Username,
                "internet.url" => Sem::Url,
                "internet.slug" => Sem::Slug,
                "version.semver" => Sem::Semver,
                "internet.password_hash" => Sem::PasswordHash,
                "internet.ip" => Sem::Ip,
                "clinical.condition" => Sem::Condition,
                "clinical.snomed" => Sem::Snomed,
                "clinical.icd10" => Sem::Icd10,
                "clinical.medicine" => Sem::Medicine,
                "clinical.allergen" => Sem::Allergen,
                "lorem.word" => Sem::LoremWord,
                "lorem.words" => Sem::LoremWords,
                "lorem.sentence" => Sem::LoremSentence,
                "lorem.paragraph" => Sem::LoremParagraph,
                "company.name" => Sem::CompanyName,
                "job.title" => Sem::JobTitle,
                _ => {
                    return Err(format!(
                        "unknown generator {other:?} — use one of: {}",
                        NAMES.join(", ")
                    ));
                }
            }),
        };
        Ok(g)
    }

    pub fn values(items: Vec<String>, weights: Vec<u64>) -> Gen {
        Gen::Values {
            items,
            weights: Weighted::new(weights),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Gen::Sequence { .. } | Gen::Int { .. } => Kind::Int,
            Gen::Float { .. } => Kind::Float,
            Gen::Numeric { .. } => Kind::Numeric,
            Gen::Bool { .. } => Kind::Bool,
            Gen::Date { .. } => Kind::Date,
            Gen::Timestamp { .. } => Kind::Timestamp,
            Gen::Time { .. } => Kind::Time,
            Gen::Interval { .. } => Kind::Interval,
            Gen::Uuid => Kind::Uuid,
            Gen::Ulid { .. } => Kind::Text,
            Gen::Json | Gen::Shaped(_) => Kind::Json,
            Gen::Bytes { .. } => Kind::Bytes,
            Gen::Values { .. } | Gen::Sem(_) | Gen::Template(_) => Kind::Text,
            Gen::Null => Kind::Null,
        }
    }

    /// How many distinct values this generator can make for a column of at
    /// most `max_len` characters; `None` for "as many as there are rows".
    pub fn capacity(&self, max_len: Option<u32>) -> Option<u64> {
        let text_cap = |fixed: Option<u64>| -> Option<u64> {
            match (fixed, max_len) {
                (Some(n), _) => Some(n),
                (None, Some(len)) if len < 19 => Some(10u64.pow(len)),
                _ => None,
            }
        };
        match self {
            Gen::Sequence { .. }
            | Gen::Uuid
            | Gen::Ulid { .. }
            | Gen::Json
            | Gen::Bytes { .. }
            | Gen::Null => None,
            // A shape says nothing about uniqueness: a UNIQUE column needs another generator.
            Gen::Shaped(_) => Some(1),
            Gen::Int { min, max } => Some((*max - *min) as u64 + 1),
            Gen::Date { from, to } => Some(((*to - *from).num_days().max(0) + 1) as u64),
            Gen::Timestamp { from, to } => Some(((*to - *from).num_seconds().max(0) + 1) as u64),
            Gen::Time { from, to } => Some(((*to - *from).num_seconds().max(0) + 1) as u64),
            Gen::Interval {
                min_minutes,
                max_minutes,
            } => Some((max_minutes - min_minutes).max(0) as u64 + 1),
            Gen::Bool { .. } => Some(2),
            Gen::Float { .. } | Gen::Numeric { .. } => None,
            Gen::Values { items, .. } => Some(items.len() as u64),
            Gen::Template(parts) => {
                if parts.iter().any(|p| matches!(p, Part::Row)) {
                    text_cap(None)
                } else {
                    Some(0)
                }
            }
            Gen::Sem(s) => match s {
                Sem::NhsNumber => Some(nhs::CAPACITY),
                Sem::Postcode => Some(Lists::get().districts.len() as u64 * 10 * 400),
                Sem::PhoneUk => Some(person::DRAMA_NUMBERS),
                Sem::PhoneValidUk => Some(person::VALID_UK_NUMBERS),
                Sem::PhoneMobile => Some(1000),
                Sem::PhoneIntl => Some(FICTIONAL_NANP_NUMBERS),
                Sem::Ip => Some(TEST_NETS.len() as u64 * 254),
                Sem::Snomed | Sem::Icd10 | Sem::Condition => {
                    Some(Lists::get().conditions.len() as u64)
                }
                Sem::Medicine => Some(Lists::get().medicines.len() as u64),
                Sem::Allergen => Some(Lists::get().allergens.len() as u64),
                _ => text_cap(None),
            },
        }
    }
}

/// Whether a generator kind can fill a column of type `ty`.
pub fn fits(kind: Kind, ty: &PgType) -> bool {
    use Kind as K;
    match ty {
        PgType::Array(elem, _) => fits(kind, elem),
        _ if kind == K::Null => true,
        PgType::Bool => kind == K::Bool,
        PgType::Int2 | PgType::Int4 | PgType::Int8 => matches!(kind, K::Int | K::Bool),
        PgType::Float4 | PgType::Float8 | PgType::Numeric(_) => {
            matches!(kind, K::Int | K::Float | K::Numeric)
        }
        PgType::Text { .. } => kind != K::Bytes,
        PgType::Enum(_) => kind == K::Text,
        PgType::Date => matches!(kind, K::Date | K::Timestamp),
        PgType::Timestamp | PgType::TimestampTz => matches!(kind, K::Date | K::Timestamp),
        PgType::Time => kind == K::Time,
        PgType::Interval => kind == K::Interval,
        PgType::Uuid => kind == K::Uuid,
        PgType::Json | PgType::Jsonb => kind != K::Bytes,
        PgType::Bytea => matches!(kind, K::Bytes | K::Text),
        PgType::Other(_) => false,
    }
}

pub fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Int => "integers",
        Kind::Float => "floats",
        Kind::Numeric => "decimals",
        Kind::Bool => "booleans",
        Kind::Text => "text",
        Kind::Date => "dates",
        Kind::Timestamp => "timestamps",
        Kind::Time => "times",
        Kind::Interval => "intervals",
        Kind::Uuid => "UUIDs",
        Kind::Json => "JSON",
        Kind::Bytes => "bytes",
        Kind::Null => "NULLs",
    }
}

/// Area codes for `phone.intl`: NANPA reserves 555-0100…0199 as fictional in
/// every area code, so no real subscriber is ever dialled.
const NANP_AREAS: [u16; 20] = [
    201, 202, 212, 213, 303, 305, 312, 404, 415, 503, 512, 602, 617, 702, 713, 808, 818, 917, 416,
    604,
];

/// How many distinct `phone.intl` numbers there are.
pub const FICTIONAL_NANP_NUMBERS: u64 = NANP_AREAS.len() as u64 * 100;

/// The `rank`-th fictional number, E.164 with spaces: `+1 202 555 0142`.
pub(crate) fn fictional_nanp(rank: u64) -> String {
    let rank = rank % FICTIONAL_NANP_NUMBERS;
    let area = NANP_AREAS[(rank / 100) as usize];
    format!("+1 {area} 555 01{:02}", rank % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        let p = parse_template("{first_name|slug}.{last_name|slug}{row}@example.org").unwrap();
        assert_eq!(p.len(), 5);
        assert!(parse_template("{a|nope}").is_err());
        assert!(parse_template("{a").is_err());
    }
}
