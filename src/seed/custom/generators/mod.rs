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

mod named;
mod template;

pub(crate) use template::parse_template;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

pub(crate) use super::make::Ctx;
use super::make::TEST_NETS;
use super::schema::{Column, PgType};
use crate::seed::generate::{nhs, person};
use crate::seed::lists::Lists;
use crate::seed::rng::Weighted;

/// What kind of value a generator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
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
pub(crate) enum Sem {
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
    /// The same numbers in E.164 (`+441134960123`): what phone-number
    /// fields (django-phonenumber-field) store and parse without a region.
    PhoneE164,
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
    /// Upper-case letter codes as long as the column allows (at most
    /// [`CODE_WIDTH`]): `GB`, `KXT` — ISO-style codes in short columns.
    Code,
    LoremSentence,
    LoremParagraph,
    CompanyName,
    JobTitle,
}

/// Every generator name a spec may use, for help and error messages.
pub(crate) const NAMES: &[&str] = &[
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
    "phone.e164",
    "phone.mobile",
    "phone.intl",
    "internet.email",
    "internet.username",
    "internet.url",
    "internet.slug",
    "version.semver",
    "text.code",
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
pub(crate) enum Part {
    Lit(String),
    Col { name: String, filter: Filter },
    Row,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filter {
    None,
    Slug,
    Lower,
    Upper,
}

#[derive(Debug, Clone)]
pub(crate) enum Gen {
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
    Null,
}

/// Parameters a spec can give a generator.
#[derive(Debug, Default, Clone)]
pub(crate) struct Params {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub true_ratio: Option<f64>,
    pub start: Option<i64>,
    /// `shape = '…'` of a `json` column.
    pub shape: Option<super::shape::Shape>,
}

impl Gen {
    pub(crate) fn values(items: Vec<String>, weights: Vec<u64>) -> Gen {
        Gen::Values {
            items,
            weights: Weighted::new(weights),
        }
    }

    pub(crate) fn kind(&self) -> Kind {
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
            Gen::Values { .. } | Gen::Sem(_) => Kind::Text,
            Gen::Null => Kind::Null,
        }
    }

    /// How many distinct values this generator can make for a column of at
    /// most `max_len` characters; `None` for "as many as there are rows".
    pub(crate) fn capacity(&self, max_len: Option<u32>) -> Option<u64> {
        // A unique text value ends in " N" (the rank, from 1), which must
        // fit the column whole: N has at most len - 1 digits (a one-character
        // column takes the digits alone).
        let text_cap = |fixed: Option<u64>| -> Option<u64> {
            match (fixed, max_len) {
                (Some(n), _) => Some(n),
                (None, Some(1)) => Some(10),
                (None, Some(len)) if len < 19 => Some(10u64.pow(len - 1) - 1),
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
            Gen::Sem(s) => match s {
                Sem::NhsNumber => Some(nhs::CAPACITY),
                Sem::Postcode => Some(Lists::get().districts.len() as u64 * 10 * 400),
                Sem::PhoneUk => Some(person::DRAMA_NUMBERS),
                Sem::PhoneValidUk | Sem::PhoneE164 => Some(person::VALID_UK_NUMBERS),
                Sem::PhoneMobile => Some(1000),
                Sem::PhoneIntl => Some(FICTIONAL_NANP_NUMBERS),
                Sem::Ip => Some(TEST_NETS.len() as u64 * 254),
                Sem::Snomed | Sem::Icd10 | Sem::Condition => {
                    Some(Lists::get().conditions.len() as u64)
                }
                Sem::Medicine => Some(Lists::get().medicines.len() as u64),
                Sem::Allergen => Some(Lists::get().allergens.len() as u64),
                Sem::Code => Some(26u64.pow(code_width(max_len))),
                _ => text_cap(None),
            },
        }
    }
}

/// The longest [`Sem::Code`]: 26⁶ codes are plenty, and longer ones read as noise.
pub(crate) const CODE_WIDTH: u32 = 6;

/// How many letters a [`Sem::Code`] has in a column of `max_len` characters.
pub(crate) fn code_width(max_len: Option<u32>) -> u32 {
    max_len.map_or(CODE_WIDTH, |m| m.clamp(1, CODE_WIDTH))
}

/// Whether a generator kind can fill a column of type `ty`.
pub(crate) fn fits(kind: Kind, ty: &PgType) -> bool {
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

pub(crate) fn kind_name(k: Kind) -> &'static str {
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
pub(crate) const FICTIONAL_NANP_NUMBERS: u64 = NANP_AREAS.len() as u64 * 100;

/// The `rank`-th fictional number, E.164 with spaces: `+1 202 555 0142`.
pub(crate) fn fictional_nanp(rank: u64) -> String {
    let rank = rank % FICTIONAL_NANP_NUMBERS;
    let area = NANP_AREAS[(rank / 100) as usize];
    format!("+1 {area} 555 01{:02}", rank % 100)
}
