//! [`Gen::named`]: a generator by the name a spec gives it, fitted to the
//! column it fills (its type, CHECK bounds and length) and to the spec's
//! parameters, with a clear message when the two do not fit.

use chrono::Days;

use super::*;

impl Gen {
    /// A generator by name, fitted to the column (its type and CHECKs).
    pub(crate) fn named(
        name: &str,
        p: &Params,
        col: &Column,
        as_of: NaiveDate,
    ) -> Result<Gen, String> {
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
                "phone.e164" => Sem::PhoneE164,
                "phone.mobile" => Sem::PhoneMobile,
                "phone.intl" => Sem::PhoneIntl,
                "internet.email" => Sem::Email,
                "internet.username" => Sem::Username,
                "internet.url" => Sem::Url,
                "internet.slug" => Sem::Slug,
                "version.semver" => Sem::Semver,
                "text.code" => Sem::Code,
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
