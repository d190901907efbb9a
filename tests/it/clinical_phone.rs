//! `phone.valid_uk` (issue #15): British numbers that an application's
//! validation accepts yet that can never ring anyone. Checked on real rows —
//! a custom spec seeded into a throwaway cluster — for format, uniqueness up
//! to the generator's capacity, the capacity error past it, determinism, and
//! against the real libphonenumber (Python `phonenumbers`, pinned in
//! `.ci/python-venv.sh`). A missing venv fails the test, never skips it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;
use ward::seed::generate::person::{VALID_UK_NUMBERS, is_valid_uk_drama};

/// A fresh database `name` on `c` with one table whose phone column is UNIQUE.
fn database(c: &Cluster, name: &str) -> String {
    sql(&c.url("postgres"), &format!("CREATE DATABASE {name}"));
    let url = c.url(name);
    sql(
        &url,
        "CREATE TABLE contact (id int PRIMARY KEY, phone text NOT NULL UNIQUE, spare text)",
    );
    url
}

/// Seeds `rows` contacts with `phone.valid_uk` in both columns (the second
/// not unique, so it draws at random); returns the run.
fn seed(url: &str, rows: u64, seed: u64) -> Run {
    let spec = format!(
        "seed = {seed}\n\n[tables.\"public.contact\"]\nrows = {rows}\n\
         columns.id = \"sequence\"\ncolumns.phone = \"phone.valid_uk\"\n\
         columns.spare = \"phone.valid_uk\"\n"
    );
    let run = ward().file("spec.toml", &spec);
    let path = run.workdir().join("spec.toml");
    run.db(url)
        .args(["seed", "-q", "--spec"])
        .args([&path])
        .run()
}

fn phones(url: &str, column: &str) -> Vec<String> {
    sql(url, &format!("SELECT {column} FROM contact ORDER BY id"))
        .into_iter()
        .map(|row| row[0].clone().unwrap())
        .collect()
}

/// `0113 496 0123`, `020 7946 0123`: libphonenumber's national format.
fn well_formed(phone: &str) -> bool {
    let groups: Vec<&str> = phone.split(' ').collect();
    let digits: String = groups.concat();
    let shape: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    digits.len() == 11
        && digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (shape == [4, 3, 4] || shape == [3, 4, 4])
}

/// The Python with `phonenumbers` (the test venv, or $WARD_TEST_PYTHON).
fn python() -> PathBuf {
    let p = match std::env::var_os("WARD_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python"),
    };
    let ok = Command::new(&p)
        .args(["-c", "import phonenumbers"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "no Python with phonenumbers at {} — run `bash .ci/python-venv.sh` (or set WARD_TEST_PYTHON)",
        p.display()
    );
    p
}

/// The numbers libphonenumber does not accept as valid British fixed lines.
fn rejected_by_libphonenumber(numbers: &[String]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("numbers.txt");
    std::fs::write(&list, numbers.join("\n")).unwrap();
    let script = "import sys, phonenumbers as pn\n\
        for line in open(sys.argv[1]):\n\
        \x20   n = pn.parse(line.strip(), 'GB')\n\
        \x20   ok = pn.is_valid_number(n) and pn.region_code_for_number(n) == 'GB' \
        and pn.number_type(n) == pn.PhoneNumberType.FIXED_LINE \
        and pn.format_number(n, pn.PhoneNumberFormat.NATIONAL) == line.strip()\n\
        \x20   if not ok: print(line.strip())\n";
    let out = Command::new(python())
        .args(["-c", script])
        .arg(&list)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "phonenumbers check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_unique_column_takes_every_valid_never_allocated_number_and_libphonenumber_accepts_them() {
    let c = cluster();
    let url = database(&c, "everyone");
    let r = seed(&url, VALID_UK_NUMBERS, 11);
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let unique = phones(&url, "phone");
    let spare = phones(&url, "spare");
    assert_eq!(unique.len() as u64, VALID_UK_NUMBERS);
    let distinct: std::collections::HashSet<&String> = unique.iter().collect();
    assert_eq!(
        distinct.len() as u64,
        VALID_UK_NUMBERS,
        "UNIQUE column repeats"
    );
    for phone in unique.iter().chain(&spare) {
        assert!(
            well_formed(phone),
            "{phone:?} is not a national-format UK number"
        );
        // Valid and safe: only Ofcom's drama blocks that libphonenumber accepts.
        assert!(
            is_valid_uk_drama(phone),
            "{phone:?} is outside the drama blocks"
        );
    }
    let mut all = unique.clone();
    all.extend(spare);
    assert_eq!(rejected_by_libphonenumber(&all), Vec::<String>::new());
}

#[test]
fn the_same_seed_gives_the_same_numbers_and_another_seed_others() {
    let c = cluster();
    let first = database(&c, "first");
    let again = database(&c, "again");
    let other = database(&c, "other");
    for (url, s) in [(&first, 5), (&again, 5), (&other, 6)] {
        let r = seed(url, 2_000, s);
        assert_eq!(r.code(), 0, "{}", r.stderr());
    }
    for column in ["phone", "spare"] {
        assert_eq!(phones(&first, column), phones(&again, column));
        assert_ne!(phones(&first, column), phones(&other, column));
    }
}

#[test]
fn more_unique_rows_than_numbers_is_a_clear_capacity_error() {
    let c = cluster();
    let url = database(&c, "over");
    let r = seed(&url, VALID_UK_NUMBERS + 1, 11);
    let err = r.fails_with(2, "cannot guarantee UNIQUE (phone)");
    assert!(
        err.contains(&VALID_UK_NUMBERS.to_string()) || err.contains("14,000"),
        "{err}"
    );
    assert_eq!(int(&url, "SELECT count(*) FROM contact"), 0);
}
