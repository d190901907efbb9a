//! Reading each runner's layout, its order and its checksums.

use super::*;

fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (n, t) in files {
        let p = d.path().join(n);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, t).unwrap();
    }
    d
}

#[test]
fn flyway_checksums_are_crc32_of_the_lines() {
    // java.util.zip.CRC32 of "123456789" (the standard check value), as Flyway stores it.
    assert_eq!(flyway_checksum("123456789"), 0xCBF4_3926_u32 as i32);
    // Line endings and a BOM do not change Flyway's checksum.
    assert_eq!(flyway_checksum("a;\r\nb;\r\n"), flyway_checksum("a;\nb;\n"));
    assert_eq!(flyway_checksum("\u{feff}a;\n"), flyway_checksum("a;\n"));
}

#[test]
fn refinery_checksums_match_refinerys_own() {
    for (file, name, version, sql) in [
        ("V1__init", "init", 1, "CREATE TABLE t (id int);\n"),
        (
            "V42__add_email",
            "add_email",
            42,
            "ALTER TABLE t ADD email text;\r\n-- done\n",
        ),
    ] {
        let theirs = refinery_core::Migration::unapplied(file, sql)
            .unwrap()
            .checksum();
        assert_eq!(refinery_checksum(name, version, sql), theirs, "{file}");
    }
}

#[test]
fn detects_each_format() {
    let cases: &[(&[(&str, &str)], Format)] = &[
        (&[("1_init.sql", "select 1;")], Format::Sqlx),
        (
            &[("2024-01-01-000000_init/up.sql", "select 1;")],
            Format::Diesel,
        ),
        (&[("V1__init.sql", "select 1;")], Format::Flyway),
        (
            &[(
                "20240101_init.sql",
                "-- migrate:up\nselect 1;\n-- migrate:down\n",
            )],
            Format::Dbmate,
        ),
    ];
    for (files, f) in cases {
        let d = dir(files);
        assert_eq!(detect(d.path()).unwrap(), *f);
    }
    // golang-migrate's files look like sqlx's: a Go module tells them apart.
    let d = dir(&[
        ("go.mod", "module example.org/app\n"),
        ("migrations/000001_init.up.sql", "select 1;"),
        ("migrations/000001_init.down.sql", "select 1;"),
    ]);
    assert_eq!(
        detect(&d.path().join("migrations")).unwrap(),
        Format::GolangMigrate
    );
    std::fs::write(d.path().join("migrations/000002_plain.sql"), "select 1;").unwrap();
    assert_eq!(detect(&d.path().join("migrations")).unwrap(), Format::Sqlx);
    let d = dir(&[("README.md", "hi")]);
    assert!(
        detect(d.path())
            .unwrap_err()
            .to_string()
            .contains("no migrations found")
    );
}

#[test]
fn reads_sqlx_reversible_pairs_and_no_transaction() {
    let d = dir(&[
        (
            "20240101000000_add_users.up.sql",
            "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (x);",
        ),
        ("20240101000000_add_users.down.sql", "DROP INDEX i;"),
        ("20240102000000_second.sql", "SELECT 1;"),
        ("notes.txt", "ignored"),
    ]);
    let s = read_dir(d.path(), Format::Sqlx).unwrap();
    assert_eq!(s.migrations.len(), 2);
    let m = &s.migrations[0];
    assert_eq!(
        (m.version.as_str(), m.description.as_str(), m.no_tx),
        ("20240101000000", "add users", true)
    );
    assert!(m.down.is_some());
    assert_eq!(m.checksum.as_ref().unwrap().len(), 96);
}

/// diesel reads one metadata.toml per migration and honours it for the
/// revert as for the run (`revert_migration` checks
/// `run_in_transaction()` too). Without one, a down.sql runs in a
/// transaction: crates.io's 2024-04-12-144536_remove-downloads-column
/// has no metadata.toml, so its down.sql's `CREATE INDEX CONCURRENTLY`
/// fails under diesel (25001) exactly as ward reports it.
#[test]
fn diesel_metadata_governs_the_down_as_the_up() {
    let d = dir(&[
        ("2024-01-01-000000_cic/up.sql", "DROP INDEX i;"),
        (
            "2024-01-01-000000_cic/down.sql",
            "CREATE INDEX CONCURRENTLY i ON t (x);\nCREATE INDEX CONCURRENTLY j ON t (y);",
        ),
        (
            "2024-01-01-000000_cic/metadata.toml",
            "run_in_transaction = false\n",
        ),
        ("2024-01-02-000000_plain/up.sql", "DROP INDEX k;"),
        (
            "2024-01-02-000000_plain/down.sql",
            "ALTER TABLE t ADD COLUMN z int;\nCREATE INDEX CONCURRENTLY k ON t (z);",
        ),
    ]);
    let s = read_dir(d.path(), Format::Diesel).unwrap();
    let mode =
        |m: &Migration| super::super::apply::mode_of(Format::Diesel, m, m.down.as_ref().unwrap());
    use super::super::apply::Mode;
    assert!(s.migrations[0].no_tx);
    // Sent whole, as diesel's batch_execute outside a transaction does.
    assert!(matches!(mode(&s.migrations[0]), Mode::SingleQuery));
    assert!(!s.migrations[1].no_tx);
    assert!(matches!(mode(&s.migrations[1]), Mode::Transaction));
}

#[test]
fn reads_dbmate_sections_with_their_lines() {
    let d = dir(&[(
        "20240101120000_x.sql",
        "-- migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (x);\n\n-- migrate:down\nDROP INDEX i;\n",
    )]);
    let s = read_dir(d.path(), Format::Dbmate).unwrap();
    let m = &s.migrations[0];
    assert!(m.no_tx);
    assert_eq!(m.up.first_line, 2);
    assert_eq!(m.down.as_ref().unwrap().first_line, 5);
}

#[test]
fn flyway_versions_sort_numerically_and_undo_pairs() {
    let d = dir(&[
        ("V1_10__late.sql", "select 1;"),
        ("V1_2__early.sql", "select 1;"),
        ("U1_2__early.sql", "select 2;"),
    ]);
    let s = read_dir(d.path(), Format::Flyway).unwrap();
    let v: Vec<&str> = s.migrations.iter().map(|m| m.version.as_str()).collect();
    assert_eq!(v, ["1.2", "1.10"]);
    assert!(s.migrations[0].down.is_some());
}

#[test]
fn diesel_orders_mixed_length_versions_like_diesel() {
    let d = dir(&[
        ("2019-01-01-000000_c/up.sql", "select 1;"),
        ("2018-01-01-000000-0000_b/up.sql", "select 1;"),
        ("20170101000000_a/up.sql", "select 1;"),
        ("2017-06-01-000000_a2/up.sql", "select 1;"),
    ]);
    let s = read_dir(d.path(), Format::Diesel).unwrap();
    let v: Vec<&str> = s.migrations.iter().map(|m| m.version.as_str()).collect();
    assert_eq!(
        v,
        [
            "20170101000000",
            "20170601000000",
            "201801010000000000",
            "20190101000000"
        ]
    );
    // The same version with and without dashes is one version to diesel.
    let d = dir(&[
        ("2019-01-01-000000_a/up.sql", "select 1;"),
        ("20190101000000_b/up.sql", "select 1;"),
    ]);
    let e = read_dir(d.path(), Format::Diesel).unwrap_err().to_string();
    assert!(e.contains("share version 20190101000000"), "{e}");
}

#[test]
fn dbmate_runs_files_in_name_order() {
    let d = dir(&[
        ("2_b.sql", "-- migrate:up\nselect 1;\n"),
        ("10_a.sql", "-- migrate:up\nselect 1;\n"),
    ]);
    let s = read_dir(d.path(), Format::Dbmate).unwrap();
    let v: Vec<&str> = s.migrations.iter().map(|m| m.version.as_str()).collect();
    assert_eq!(v, ["10", "2"]);
}

#[test]
fn golang_migrate_versions_are_unsigned_64_bit() {
    let d = dir(&[("18446744073709551615_max.up.sql", "select 1;")]);
    assert!(read_dir(d.path(), Format::GolangMigrate).is_ok());
    let e = read_dir(d.path(), Format::Sqlx).unwrap_err().to_string();
    assert!(e.contains("does not fit sqlx"), "{e}");
}

#[test]
fn duplicate_versions_are_refused() {
    let d = dir(&[("1_a.sql", "select 1;"), ("01_b.sql", "select 1;")]);
    let e = read_dir(d.path(), Format::Sqlx).unwrap_err().to_string();
    assert!(e.contains("share version 1"), "{e}");
}
