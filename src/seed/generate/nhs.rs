//! NHS numbers that can never belong to a real person.
//!
//! Every number is in the test range 999 000 0000 – 999 999 9999, which is
//! valid by the modulus-11 check but guaranteed never to be issued. Patient
//! `i` gets the `perm(i)`-th valid number, where `perm` is a keyed bijection on
//! `0..CAPACITY`: unique by construction, no draws and no retries.

use std::sync::OnceLock;

use crate::seed::rng::{mix64, permute};

/// How many valid numbers the test range holds (10^6 stems, minus those whose
/// check digit would be 10).
pub const CAPACITY: u64 = 909_091;

const STEM_BASE: u32 = 999_000_000;

/// The modulus-11 check digit of a 9-digit stem, or `None` when the stem is
/// never issued (check digit 10).
pub fn check_digit(stem: u32) -> Option<u32> {
    let mut sum = 0;
    let mut s = stem;
    // Weights 10..2 apply to digits 1..9; walk from the last digit (weight 2).
    for weight in 2..=10 {
        sum += (s % 10) * weight;
        s /= 10;
    }
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        c => Some(c),
    }
}

/// Whether a 10-character string is a valid NHS number by modulus 11.
pub fn is_valid(number: &str) -> bool {
    let b = number.as_bytes();
    if b.len() != 10 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let stem: u32 = number[..9].parse().unwrap();
    check_digit(stem) == Some((b[9] - b'0') as u32)
}

/// Whether a number lies in the never-issued 999 test range.
pub fn in_test_range(number: &str) -> bool {
    number.starts_with("999") && is_valid(number)
}

fn valid_stems() -> &'static [u32] {
    static STEMS: OnceLock<Vec<u32>> = OnceLock::new();
    STEMS.get_or_init(|| {
        let v: Vec<u32> = (STEM_BASE..STEM_BASE + 1_000_000)
            .filter(|&s| check_digit(s).is_some())
            .collect();
        assert_eq!(v.len() as u64, CAPACITY);
        v
    })
}

/// The NHS number of patient `index` (0-based) under `seed`, as 10 digits.
///
/// Panics if `index >= CAPACITY`; callers validate the patient count first.
pub fn for_patient(seed: u64, index: u64) -> [u8; 10] {
    assert!(index < CAPACITY, "patient index beyond the NHS test range");
    let key = mix64(seed ^ 0x6e68_735f_6e75_6d62);
    let stem = valid_stems()[permute(key, index, CAPACITY) as usize];
    let check = check_digit(stem).unwrap();
    let mut out = [0u8; 10];
    let mut s = stem;
    for i in (0..9).rev() {
        out[i] = b'0' + (s % 10) as u8;
        s /= 10;
    }
    out[9] = b'0' + check as u8;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_numbers_check() {
        // The NHS Data Dictionary's worked example.
        assert!(is_valid("9434765919"));
        assert!(!is_valid("9434765918"));
        assert!(!is_valid("943476591"));
    }

    #[test]
    fn capacity_is_exact() {
        assert_eq!(valid_stems().len() as u64, CAPACITY);
    }

    #[test]
    fn every_index_maps_to_a_distinct_valid_test_number() {
        let mut seen = vec![false; CAPACITY as usize];
        for i in 0..CAPACITY {
            let p = permute(mix64(11), i, CAPACITY) as usize;
            assert!(!seen[p], "collision at {i}");
            seen[p] = true;
        }
        for i in [0, 1, 500_000, CAPACITY - 1] {
            let n = for_patient(11, i);
            let s = std::str::from_utf8(&n).unwrap();
            assert!(in_test_range(s), "{s}");
        }
    }

    #[test]
    fn seeds_give_different_assignments() {
        assert_ne!(for_patient(1, 0), for_patient(2, 0));
    }
}
