//! Making one value of a generator: the semantic UK-safe values, the `fake`
//! ones, typed ranges and picks — each from the row's keyed random stream, or,
//! for a UNIQUE column, as the `rank`-th distinct value (so uniqueness is by
//! construction). What a generator *is* lives in `generators`.

use chrono::Days;
use fake::Fake;

use super::generators::{Gen, Sem};
use super::values::Value;
use crate::seed::generate::{address, nhs, person};
use crate::seed::lists::Lists;
use crate::seed::rng::Stream;

/// The documentation address blocks (RFC 5737): never routed.
pub(super) const TEST_NETS: [&str; 3] = ["192.0.2", "198.51.100", "203.0.113"];

/// Everything a generator needs to make one value.
pub(crate) struct Ctx<'a> {
    pub seed: u64,
    pub rng: &'a mut Stream,
    pub row: u64,
    /// `Some(rank)` when the value must be unique: a number no other row of
    /// the same unique set gets.
    pub rank: Option<u64>,
    pub max_len: Option<u32>,
}

fn slug(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Shortens `s` to `max` characters, keeping the unique `suffix` whole.
fn fit(base: String, suffix: &str, max: Option<u32>) -> String {
    let Some(max) = max.map(|m| m as usize) else {
        return base + suffix;
    };
    // A rank's " N" longer than the column (one character): the digits alone
    // (capacity 10 there), so unique values stay unique.
    if suffix.chars().count() > max && max > 0 {
        let digits: String = suffix.chars().filter(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse::<u64>() {
            return ((n.max(1) - 1) % 10u64.pow(max.min(18) as u32)).to_string();
        }
    }
    let keep = max.saturating_sub(suffix.chars().count());
    if keep == 0 {
        // Nothing of the word fits: the number alone ("2403", not " 2403").
        return suffix.trim_start().chars().take(max).collect();
    }
    let mut out: String = base.chars().take(keep).collect();
    out.push_str(suffix);
    out.chars().take(max).collect()
}

impl Gen {
    /// Makes a value. Templates are resolved by the caller (they need the row's
    /// other columns), so `Gen::Template` is not handled here.
    pub(crate) fn make(&self, ctx: &mut Ctx) -> Value {
        let rng = &mut *ctx.rng;
        let pick = |rng: &mut Stream, n: u64, rank: Option<u64>| {
            rank.map_or_else(|| rng.below(n), |r| r % n)
        };
        match self {
            Gen::Sequence { start } => Value::Int(start + ctx.rank.unwrap_or(ctx.row) as i64),
            Gen::Int { min, max } => {
                let span = (*max - *min) as u64 + 1;
                Value::Int(*min + pick(rng, span, ctx.rank) as i64)
            }
            Gen::Float { min, max } => Value::Float(min + rng.unit() * (max - min)),
            Gen::Numeric { min, max, scale } => {
                let p = 10f64.powi(*scale as i32);
                let (lo, hi) = ((min * p).ceil() as i64, (max * p).floor() as i64);
                Value::Numeric(rng.range(lo, hi.max(lo)), *scale)
            }
            Gen::Bool { true_ratio } => match ctx.rank {
                Some(r) => Value::Bool(r % 2 == 1),
                None => Value::Bool(rng.chance(*true_ratio)),
            },
            Gen::Date { from, to } => {
                let span = (*to - *from).num_days().max(0) as u64 + 1;
                Value::Date(
                    from.checked_add_days(Days::new(pick(rng, span, ctx.rank)))
                        .unwrap(),
                )
            }
            Gen::Timestamp { from, to } => {
                let span = (*to - *from).num_seconds().max(0) as u64 + 1;
                Value::Timestamp(
                    *from + chrono::Duration::seconds(pick(rng, span, ctx.rank) as i64),
                )
            }
            Gen::Time { from, to } => {
                let span = (*to - *from).num_seconds().max(0) as u64 + 1;
                Value::Time(*from + chrono::Duration::seconds(pick(rng, span, ctx.rank) as i64))
            }
            Gen::Interval {
                min_minutes,
                max_minutes,
            } => {
                let span = (max_minutes - min_minutes).max(0) as u64 + 1;
                let m = min_minutes + pick(rng, span, ctx.rank) as i64;
                Value::Interval {
                    months: 0,
                    days: 0,
                    micros: m * 60_000_000,
                }
            }
            Gen::Uuid => {
                let mut b = [0u8; 16];
                b[..8].copy_from_slice(&rng.u64().to_be_bytes());
                // The second half is a bijection of the rank (62 bits) when
                // uniqueness is needed, so two rows can never share a UUID.
                let low = match ctx.rank {
                    Some(r) => spread62(r + 1),
                    None => rng.u64(),
                };
                b[8..].copy_from_slice(&low.to_be_bytes());
                b[6] = (b[6] & 0x0f) | 0x40;
                b[8] = (b[8] & 0x3f) | 0x80;
                Value::Uuid(b)
            }
            Gen::Ulid { from, to } => {
                let span = (*to - *from).num_milliseconds().max(0) as u64 + 1;
                let ms = from.and_utc().timestamp_millis().max(0) as u64 + rng.below(span);
                let mid = rng.below(1 << 16);
                // As for UUIDs: the low 62 bits are a bijection of the rank when unique.
                let low = match ctx.rank {
                    Some(r) => spread62(r + 1),
                    None => rng.u64(),
                };
                let v = (u128::from(ms) << 80) | (u128::from(mid) << 64) | u128::from(low);
                Value::Text(crockford32(v))
            }
            Gen::Shaped(shape) => Value::Json(shape.make(ctx).to_string()),
            Gen::Json => {
                let word: String = fake::faker::lorem::en::Word().fake_with_rng(rng.rng());
                let score = rng.below(100);
                Value::Json(format!(
                    "{{\"note\": {}, \"score\": {score}, \"n\": {}}}",
                    serde_json::to_string(&word).unwrap(),
                    ctx.rank.unwrap_or(ctx.row)
                ))
            }
            Gen::Bytes { min, max } => {
                let n = rng.range(*min as i64, (*max).max(*min) as i64) as usize;
                let mut v: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
                if let Some(r) = ctx.rank {
                    v.extend_from_slice(&r.to_be_bytes());
                }
                Value::Bytes(v)
            }
            Gen::Values { items, weights } => match ctx.rank {
                Some(r) => Value::Text(items[(r % items.len() as u64) as usize].clone()),
                None => Value::Text(items[weights.sample(rng)].clone()),
            },
            Gen::Null => Value::Null,
            Gen::Sem(s) => Value::Text(self.sem(*s, ctx)),
        }
    }

    fn sem(&self, s: Sem, ctx: &mut Ctx) -> String {
        let l = Lists::get();
        let rng = &mut *ctx.rng;
        let rank = ctx.rank;
        let suffix = rank.map(|r| format!(" {}", r + 1)).unwrap_or_default();
        let plain = |base: String, max: Option<u32>| fit(base, &suffix, max);
        match s {
            Sem::GivenName => {
                let female = rng.chance(0.5);
                plain(person::given_name(rng, l, female).to_string(), ctx.max_len)
            }
            Sem::FamilyName => plain(l.family_names.sample(rng).to_string(), ctx.max_len),
            Sem::FullName => {
                let female = rng.chance(0.5);
                let g = person::given_name(rng, l, female);
                plain(format!("{g} {}", l.family_names.sample(rng)), ctx.max_len)
            }
            Sem::NhsNumber => {
                let i = rank.unwrap_or_else(|| rng.below(nhs::CAPACITY));
                String::from_utf8(nhs::for_patient(ctx.seed, i).to_vec()).unwrap()
            }
            Sem::Postcode => match rank {
                Some(r) => {
                    let d = (r / 4000) as usize % l.districts.len();
                    address::postcode_nth(&l.districts[d].district, r % 4000)
                }
                None => {
                    let d = l.district_weights.sample(rng);
                    address::postcode(rng, &l.districts[d].district)
                }
            },
            Sem::Street => {
                let n = rng.range(1, 240);
                let word: String = fake::faker::address::en::StreetName().fake_with_rng(rng.rng());
                plain(format!("{n} {word}"), ctx.max_len)
            }
            Sem::Town => plain(
                l.districts[l.district_weights.sample(rng)].town.clone(),
                ctx.max_len,
            ),
            Sem::PhoneUk => match rank {
                Some(r) => person::drama_number(r),
                None => {
                    if rng.chance(0.7) {
                        person::mobile(rng)
                    } else {
                        person::landline(rng)
                    }
                }
            },
            Sem::PhoneValidUk | Sem::PhoneE164 => {
                let national = person::valid_uk_number(
                    ctx.seed,
                    rank.unwrap_or_else(|| rng.below(person::VALID_UK_NUMBERS)),
                );
                match s {
                    Sem::PhoneE164 => person::e164(&national),
                    _ => national,
                }
            }
            Sem::PhoneIntl => {
                let n = super::generators::fictional_nanp(match rank {
                    Some(r) => r,
                    None => {
                        rng.range(0, super::generators::FICTIONAL_NANP_NUMBERS as i64 - 1) as u64
                    }
                });
                // A short column gets the same number without spaces (and
                // without +1 when even that does not fit): still unique.
                match ctx.max_len {
                    Some(m) if (m as usize) < n.len() => {
                        let digits: String = n.chars().filter(char::is_ascii_digit).collect();
                        if m as usize > digits.len() {
                            format!("+{digits}")
                        } else {
                            digits[1..].to_string()
                        }
                    }
                    _ => n,
                }
            }
            Sem::PhoneMobile => match rank {
                Some(r) => person::drama_number(r % 1000),
                None => person::mobile(rng),
            },
            Sem::Email => {
                let female = rng.chance(0.5);
                let g = person::given_name(rng, l, female);
                let f = l.family_names.sample(rng);
                let n = rank.unwrap_or(ctx.row) + 1;
                let domain = rng.pick(&person::EMAIL_DOMAINS);
                let local = fit(
                    format!("{}.{}", slug(g), slug(f)),
                    &n.to_string(),
                    ctx.max_len
                        .map(|m| m.saturating_sub(domain.len() as u32 + 1)),
                );
                format!("{local}@{domain}")
            }
            Sem::Username => {
                let female = rng.chance(0.5);
                let g = person::given_name(rng, l, female);
                let f = l.family_names.sample(rng);
                let n = rank.unwrap_or(ctx.row) + 1;
                fit(
                    format!("{}{}", slug(g), slug(f)),
                    &n.to_string(),
                    ctx.max_len,
                )
            }
            Sem::Url => {
                let word: String = fake::faker::lorem::en::Word().fake_with_rng(rng.rng());
                let n = rank.unwrap_or(ctx.row) + 1;
                fit(
                    format!("https://example.org/{word}/"),
                    &n.to_string(),
                    ctx.max_len,
                )
            }
            Sem::PasswordHash => {
                // Django's marker for an unusable password, plus noise: no one can log in.
                format!("!{:016x}{:016x}", rng.u64(), rng.u64())
            }
            Sem::Ip => {
                let i = rank.unwrap_or_else(|| rng.below(TEST_NETS.len() as u64 * 254));
                format!("{}.{}", TEST_NETS[(i / 254) as usize], i % 254 + 1)
            }
            Sem::Condition | Sem::Snomed | Sem::Icd10 => {
                let c = &l.conditions[rank.map_or_else(
                    || rng.below(l.conditions.len() as u64),
                    |r| r % l.conditions.len() as u64,
                ) as usize];
                let v = match s {
                    Sem::Condition => c.term.clone(),
                    Sem::Snomed => c.snomed.clone(),
                    _ => c.icd10.clone(),
                };
                fit(v, "", ctx.max_len)
            }
            Sem::Medicine => {
                let i = rank.map_or_else(
                    || rng.below(l.medicines.len() as u64),
                    |r| r % l.medicines.len() as u64,
                );
                fit(l.medicines[i as usize].name.clone(), "", ctx.max_len)
            }
            Sem::Allergen => {
                let i = rank.map_or_else(
                    || rng.below(l.allergens.len() as u64),
                    |r| r % l.allergens.len() as u64,
                );
                fit(l.allergens[i as usize].substance.clone(), "", ctx.max_len)
            }
            Sem::LoremWord => plain(
                fake::faker::lorem::en::Word().fake_with_rng(rng.rng()),
                ctx.max_len,
            ),
            Sem::Slug => {
                // Lower-case ASCII words joined by '-': valid in URLs and in ltree labels once
                // '-' is mapped, and unique by the row's number when it must be.
                let w: Vec<String> = fake::faker::lorem::en::Words(1..4).fake_with_rng(rng.rng());
                let n = rank.map(|r| format!("-{}", r + 1)).unwrap_or_default();
                let words: Vec<String> = w.iter().map(|w| slug(w)).collect();
                fit(words.join("-"), &n, ctx.max_len)
            }
            Sem::Code => {
                let width = super::generators::code_width(ctx.max_len);
                let n = rank.map_or_else(|| rng.below(26u64.pow(width)), |r| r % 26u64.pow(width));
                (0..width)
                    .rev()
                    .map(|i| char::from(b'A' + (n / 26u64.pow(i) % 26) as u8))
                    .collect()
            }
            Sem::Semver => {
                // MAJOR.MINOR.PATCH; the rank spreads over the three numbers so
                // unique versions stay short and valid.
                let r = rank.unwrap_or_else(|| rng.below(1_000_000));
                fit(
                    format!("{}.{}.{}", r / 10_000, (r / 100) % 100, r % 100),
                    "",
                    ctx.max_len,
                )
            }
            Sem::LoremWords => {
                let w: Vec<String> = fake::faker::lorem::en::Words(2..5).fake_with_rng(rng.rng());
                plain(w.join(" "), ctx.max_len)
            }
            Sem::LoremSentence => plain(
                fake::faker::lorem::en::Sentence(3..10).fake_with_rng(rng.rng()),
                ctx.max_len,
            ),
            Sem::LoremParagraph => plain(
                fake::faker::lorem::en::Paragraph(2..4).fake_with_rng(rng.rng()),
                ctx.max_len,
            ),
            Sem::CompanyName => plain(
                fake::faker::company::en::CompanyName().fake_with_rng(rng.rng()),
                ctx.max_len,
            ),
            Sem::JobTitle => plain(
                fake::faker::job::en::Title().fake_with_rng(rng.rng()),
                ctx.max_len,
            ),
        }
    }
}

/// A 128-bit value as a ULID's 26 Crockford base-32 characters (the first
/// holds the top 3 bits). Ten lines, so no crate for it.
fn crockford32(v: u128) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    (0..26)
        .map(|i| ALPHABET[((v >> (125 - 5 * i)) & 31) as usize] as char)
        .collect()
}

/// A bijection from ranks (< 2^62) onto 62-bit values that look random.
fn spread62(r: u64) -> u64 {
    const MASK: u64 = (1 << 62) - 1;
    let mut x = r & MASK;
    x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15) & MASK;
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9) & MASK;
    x ^ (x >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread62_is_injective_on_a_sample() {
        let mut v: Vec<u64> = (0..100_000).map(spread62).collect();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), 100_000);
    }

    #[test]
    fn ulids_are_canonical() {
        // The example of the ULID spec: 01ARZ3NDEKTSV4RRFFQ69G5FAV.
        let v: u128 = 0x0156_3e3a_b5d3_d676_4c61_efb9_9302_bd5b;
        assert_eq!(crockford32(v), "01ARZ3NDEKTSV4RRFFQ69G5FAV");
        assert_eq!(crockford32(u128::MAX), "7ZZZZZZZZZZZZZZZZZZZZZZZZZ");
    }

    #[test]
    fn fit_keeps_the_unique_suffix() {
        assert_eq!(fit("Alexandra".into(), " 12", Some(6)), "Ale 12");
        assert_eq!(fit("Al".into(), " 12", None), "Al 12");
    }
}
