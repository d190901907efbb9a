//! People: names, phone numbers and e-mail addresses that cannot reach anyone.
//!
//! Phones come only from Ofcom's drama ranges (never allocated); e-mail
//! addresses only use the RFC 2606 reserved domains.

use crate::seed::lists::Lists;
use crate::seed::rng::{Stream, mix64, permute};

/// The reserved e-mail domains (RFC 2606).
pub const EMAIL_DOMAINS: [&str; 3] = ["example.com", "example.org", "example.net"];

/// Ofcom drama-number prefixes, each followed by three random digits.
const MOBILE_PREFIX: &str = "07700 900";
const LANDLINE_PREFIXES: [&str; 14] = [
    "01632 960",
    "020 7946 0",
    "0113 496 0",
    "0114 496 0",
    "0115 496 0",
    "0116 496 0",
    "0117 496 0",
    "0118 496 0",
    "0121 496 0",
    "0131 496 0",
    "0141 496 0",
    "0151 496 0",
    "0161 496 0",
    "0191 498 0",
];

/// The drama block of the area code that serves a postcode area (the
/// outward code's letters): the 13 cities with their own `496 0`/`498 0`
/// block, London's `020 7946 0`, and Ofcom's fictional `01632 960` elsewhere.
const AREA_BLOCKS: [(&[&str], &str); 13] = [
    (&["LS"], "0113 496 0"),
    (&["S"], "0114 496 0"),
    (&["NG"], "0115 496 0"),
    (&["LE"], "0116 496 0"),
    (&["BS"], "0117 496 0"),
    (&["RG"], "0118 496 0"),
    (&["B"], "0121 496 0"),
    (&["EH"], "0131 496 0"),
    (&["G"], "0141 496 0"),
    (&["L"], "0151 496 0"),
    (&["M"], "0161 496 0"),
    (&["NE", "SR", "DH"], "0191 498 0"),
    (
        &[
            "E", "EC", "N", "NW", "SE", "SW", "W", "WC", "BR", "CR", "EN", "HA", "IG", "RM", "SM",
            "TW", "UB",
        ],
        "020 7946 0",
    ),
];

/// A landline from the drama block of the area serving `district` (e.g. `LS6`).
pub fn landline_for(rng: &mut Stream, district: &str) -> String {
    let area = district.trim_end_matches(|c: char| !c.is_ascii_alphabetic());
    let area: String = area.chars().take_while(char::is_ascii_alphabetic).collect();
    let prefix = AREA_BLOCKS
        .iter()
        .find(|(areas, _)| areas.contains(&area.as_str()))
        .map_or(LANDLINE_PREFIXES[0], |(_, p)| *p);
    with_digits(rng, prefix)
}

/// How many numbers the drama ranges ward uses hold.
pub const DRAMA_NUMBERS: u64 = (1 + LANDLINE_PREFIXES.len() as u64) * 1000;

/// The `i`-th drama number (`i < DRAMA_NUMBERS`): for unique phone columns.
pub fn drama_number(i: u64) -> String {
    let prefix = match i / 1000 {
        0 => MOBILE_PREFIX,
        n => LANDLINE_PREFIXES[(n - 1) as usize % LANDLINE_PREFIXES.len()],
    };
    in_block(prefix, i)
}

/// Number `n % 1000` of a thousand-number block: its prefix and three digits.
fn in_block(prefix: &str, n: u64) -> String {
    format!("{prefix}{:03}", n % 1000)
}

/// Whether `phone` is one of the thousand numbers of one of `blocks`.
fn is_in_blocks<'a>(phone: &str, mut blocks: impl Iterator<Item = &'a str>) -> bool {
    blocks.any(|p| {
        phone
            .strip_prefix(p)
            .is_some_and(|rest| rest.len() == 3 && rest.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The drama blocks that libphonenumber's metadata (checked with the Python
/// `phonenumbers` 9.0.43) accepts as valid British fixed lines: the city
/// blocks, London's, and Ofcom's Belfast and Cardiff blocks. Ofcom's
/// Nottingham `0115 496 0`, the area-less `01632 960` and the mobile
/// `07700 900` blocks fail that validation, so they are not here.
const VALID_UK_BLOCKS: [&str; 14] = [
    "0113 496 0",
    "0114 496 0",
    "0116 496 0",
    "0117 496 0",
    "0118 496 0",
    "0121 496 0",
    "0131 496 0",
    "0141 496 0",
    "0151 496 0",
    "0161 496 0",
    "0191 498 0",
    "020 7946 0",
    "028 9649 6",
    "029 2018 0",
];

/// How many distinct `phone.valid_uk` numbers there are.
pub const VALID_UK_NUMBERS: u64 = VALID_UK_BLOCKS.len() as u64 * 1000;

/// The `i`-th number (mod [`VALID_UK_NUMBERS`]) that validates and is never
/// allocated, in an order keyed by `seed`: distinct `i` give distinct numbers
/// (for UNIQUE columns), and consecutive rows do not count up one block.
pub fn valid_uk_number(seed: u64, i: u64) -> String {
    let n = permute(
        mix64(seed ^ VALID_UK_KEY),
        i % VALID_UK_NUMBERS,
        VALID_UK_NUMBERS,
    );
    in_block(VALID_UK_BLOCKS[(n / 1000) as usize], n)
}

/// A British number written nationally (`0113 496 0123`) in E.164
/// (`+441134960123`): the country code for the trunk 0, no spaces.
pub fn e164(national: &str) -> String {
    let digits: String = national.chars().filter(char::is_ascii_digit).collect();
    format!("+44{}", digits.strip_prefix('0').unwrap_or(&digits))
}

/// Keeps `phone.valid_uk`'s order apart from other keyed permutations.
const VALID_UK_KEY: u64 = 0x7068_6f6e_6576_616c;

/// Whether a number is in one of the blocks `phone.valid_uk` draws from.
pub fn is_valid_uk_drama(phone: &str) -> bool {
    is_in_blocks(phone, VALID_UK_BLOCKS.into_iter())
}

pub fn given_name<'a>(rng: &mut Stream, lists: &'a Lists, female: bool) -> &'a str {
    if female {
        lists.female_names.sample(rng)
    } else {
        lists.male_names.sample(rng)
    }
}

fn with_digits(rng: &mut Stream, prefix: &str) -> String {
    in_block(prefix, rng.below(1000))
}

pub fn mobile(rng: &mut Stream) -> String {
    with_digits(rng, MOBILE_PREFIX)
}

pub fn landline(rng: &mut Stream) -> String {
    let prefix = *rng.pick(&LANDLINE_PREFIXES);
    with_digits(rng, prefix)
}

/// Whether a phone number is in one of the drama ranges ward uses.
pub fn is_drama_phone(phone: &str) -> bool {
    is_in_blocks(
        phone,
        std::iter::once(MOBILE_PREFIX).chain(LANDLINE_PREFIXES),
    )
}

fn local_part(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `given.family<n>@example.*`, with `n` making it unique per `id`.
pub fn email(rng: &mut Stream, given: &str, family: &str, id: i64) -> String {
    let domain = rng.pick(&EMAIL_DOMAINS);
    format!("{}.{}{id}@{domain}", local_part(given), local_part(family))
}

/// Whether an e-mail address is on a reserved domain.
pub fn is_reserved_email(email: &str) -> bool {
    email
        .rsplit_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && EMAIL_DOMAINS.contains(&domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_drama_numbers() {
        let mut rng = Stream::new(1, "ph", 0);
        for _ in 0..500 {
            assert!(is_drama_phone(&mobile(&mut rng)));
            assert!(is_drama_phone(&landline(&mut rng)));
        }
        assert!(!is_drama_phone("07700 901000"));
        assert!(!is_drama_phone("0113 496 1000"));
    }

    #[test]
    fn practice_landlines_use_their_own_areas_block() {
        let mut rng = Stream::new(1, "ph", 1);
        for (district, prefix) in [
            ("LS6", "0113 496 0"),
            ("EC1A", "020 7946 0"),
            ("SR1", "0191 498 0"),
            ("G72", "0141 496 0"),
            ("TR1", "01632 960"),
        ] {
            let phone = landline_for(&mut rng, district);
            assert!(
                phone.starts_with(prefix) && is_drama_phone(&phone),
                "{phone}"
            );
        }
    }

    #[test]
    fn drama_numbers_enumerate_distinct_safe_numbers() {
        let all: std::collections::HashSet<String> = (0..DRAMA_NUMBERS).map(drama_number).collect();
        assert_eq!(all.len() as u64, DRAMA_NUMBERS);
        assert!(all.iter().all(|p| is_drama_phone(p)));
    }

    #[test]
    fn valid_uk_numbers_are_distinct_drama_numbers_in_a_seeded_order() {
        let all: Vec<String> = (0..VALID_UK_NUMBERS)
            .map(|i| valid_uk_number(3, i))
            .collect();
        let distinct: std::collections::HashSet<&String> = all.iter().collect();
        assert_eq!(distinct.len() as u64, VALID_UK_NUMBERS);
        assert!(all.iter().all(|p| is_valid_uk_drama(p) && is_drama_phone(p)
            || p.starts_with("028")
            || p.starts_with("029")));
        assert!(
            all.iter()
                .all(|p| !p.starts_with("0115") && !p.starts_with("01632"))
        );
        assert_eq!(
            valid_uk_number(3, 7),
            valid_uk_number(3, 7 + VALID_UK_NUMBERS)
        );
        let other: Vec<String> = (0..100).map(|i| valid_uk_number(4, i)).collect();
        assert_ne!(all[..100], other[..]);
        // Consecutive ranks are spread over the blocks, not one city counting up.
        let blocks: std::collections::HashSet<&str> = all[..20].iter().map(|p| &p[..5]).collect();
        assert!(blocks.len() > 3, "{:?}", &all[..20]);
        assert!(!is_valid_uk_drama("0115 496 0123"));
        assert!(!is_valid_uk_drama("028 9649 7000"));
    }

    #[test]
    fn e164_drops_the_trunk_zero_and_the_spaces() {
        assert_eq!(e164("0113 496 0123"), "+441134960123");
        assert_eq!(e164("020 7946 0001"), "+442079460001");
    }

    #[test]
    fn emails_use_reserved_domains_and_plain_local_parts() {
        let mut rng = Stream::new(1, "em", 0);
        let e = email(&mut rng, "Zoë", "O'Brien", 7);
        assert!(is_reserved_email(&e), "{e}");
        assert!(e.starts_with("zo.obrien7@"), "{e}");
        assert!(!is_reserved_email("a@gmail.com"));
    }
}
