//! `ward seed` against real throwaway Postgres clusters: determinism, the
//! safety of every identifier, consistent timelines, append/truncate, and
//! clean failures that leave nothing half-written.

use crate::support::*;
use sha2::{Digest, Sha256};
use ward::seed::generate::{address, nhs, person};

fn export(dir: &std::path::Path, format: &str, patients: u32, jobs: u32) {
    ward()
        .args(["seed", "--export"])
        .args([dir])
        .args([
            "--format",
            format,
            "-n",
            &patients.to_string(),
            "-j",
            &jobs.to_string(),
        ])
        .ok();
}

fn hash_dir(dir: &std::path::Path) -> String {
    let mut h = Sha256::new();
    for f in files(dir) {
        h.update(f.file_name().unwrap().to_string_lossy().as_bytes());
        h.update(std::fs::read(&f).unwrap());
    }
    hex::encode(h.finalize())
}

#[test]
fn export_is_identical_whatever_the_number_of_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    for format in ["csv", "jsonl"] {
        let (a, b) = (
            tmp.path().join(format!("{format}1")),
            tmp.path().join(format!("{format}3")),
        );
        export(&a, format, 2500, 1);
        export(&b, format, 2500, 3);
        assert_eq!(files(&a).len(), 8);
        for (fa, fb) in files(&a).iter().zip(files(&b)) {
            assert!(
                std::fs::read(fa).unwrap() == std::fs::read(&fb).unwrap(),
                "{} differs",
                fa.display()
            );
        }
    }
}

/// Pins the generated rows. If this fails, the output of `ward seed` changed:
/// that is a versioned decision (bump the spec version, note it in the
/// changelog), never a silent one.
#[test]
fn golden_hash_of_the_export_for_1000_patients() {
    let tmp = tempfile::tempdir().unwrap();
    export(tmp.path(), "csv", 1000, 2);
    assert_eq!(hash_dir(tmp.path()), GOLDEN);
}
// Spec version 3 (seeds/SOURCES.md): repeat history back to each course's start.
const GOLDEN: &str = "742baaa63ae6f34a8da9f6ba496b36fdc2091477e087c813495229887158a6fe";

#[test]
fn database_rows_are_the_exported_rows_whatever_the_jobs() {
    let c = cluster();
    let url = c.url("postgres");
    ward()
        .db(&url)
        .args(["seed", "-n", "2100", "-j", "1", "--schema", "one"])
        .ok();
    ward()
        .db(&url)
        .args(["seed", "-n", "2100", "-j", "3", "--schema", "three"])
        .ok();
    let one = table_checksums(&url, "one");
    assert_eq!(one, table_checksums(&url, "three"));

    // Load the CSV export with Postgres' own COPY into a third schema: same rows.
    let tmp = tempfile::tempdir().unwrap();
    export(tmp.path(), "csv", 2100, 2);
    sql(&url, "CREATE SCHEMA fromcsv");
    for t in ward::seed::model::TABLES.iter() {
        sql(
            &url,
            &format!("CREATE TABLE fromcsv.{0} (LIKE one.{0})", t.name),
        );
        let path = tmp.path().join(format!("{}.csv", t.name));
        let data = std::fs::read(&path).unwrap();
        copy_in(
            &url,
            &format!("COPY fromcsv.{} FROM STDIN (FORMAT csv, HEADER)", t.name),
            data,
        );
    }
    assert_eq!(one, table_checksums(&url, "fromcsv"));
}

fn copy_in(url: &str, stmt: &str, data: Vec<u8>) {
    use futures_util::SinkExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = ward::pg::connect(url).await.unwrap();
        let sink = client.copy_in::<_, bytes::Bytes>(stmt).await.unwrap();
        futures_util::pin_mut!(sink);
        sink.send(bytes::Bytes::from(data)).await.unwrap();
        sink.finish().await.unwrap();
    });
}

#[test]
fn every_generated_identifier_is_safe() {
    let c = cluster();
    let url = c.url("postgres");
    ward().db(&url).args(["seed", "-n", "6000"]).ok();
    let rows = sql(
        &url,
        "SELECT nhs_number, phone, email, postcode FROM patients",
    );
    assert_eq!(rows.len(), 6000);
    let mut seen = std::collections::HashSet::new();
    for r in &rows {
        let n = r[0].as_deref().unwrap();
        assert!(
            nhs::in_test_range(n),
            "NHS number outside the test range: {n}"
        );
        assert!(seen.insert(n.to_string()), "duplicate NHS number {n}");
        if let Some(p) = &r[1] {
            assert!(
                person::is_drama_phone(p),
                "phone not in an Ofcom drama range: {p}"
            );
        }
        if let Some(e) = &r[2] {
            assert!(
                person::is_reserved_email(e),
                "e-mail not on a reserved domain: {e}"
            );
        }
        let pc = r[3].as_deref().unwrap();
        assert!(address::is_valid_postcode(pc), "invalid postcode {pc}");
    }
    assert!(rows.iter().filter(|r| r[1].is_some()).count() > 4000);
    assert!(rows.iter().filter(|r| r[2].is_some()).count() > 2500);
    for r in sql(&url, "SELECT phone, postcode FROM practices") {
        assert!(person::is_drama_phone(r[0].as_deref().unwrap()));
        assert!(address::is_valid_postcode(r[1].as_deref().unwrap()));
    }
    for r in sql(&url, "SELECT email FROM practitioners") {
        assert!(person::is_reserved_email(r[0].as_deref().unwrap()));
    }
}

#[test]
fn timelines_and_values_are_consistent() {
    let c = cluster();
    let url = c.url("postgres");
    ward().db(&url).args(["seed", "-n", "8000"]).ok();
    let as_of = "DATE '2026-06-30'";
    let last = format!("coalesce(p.date_of_death - 1, {as_of})");
    let violations = [
        ("registration outside life", format!(
            "SELECT count(*) FROM patients p WHERE registered_on < date_of_birth OR registered_on > {last}")),
        ("death not after birth or in the future", format!(
            "SELECT count(*) FROM patients p WHERE date_of_death <= date_of_birth OR date_of_death > {as_of}")),
        ("condition outside life", format!(
            "SELECT count(*) FROM conditions c JOIN patients p ON p.id = c.patient_id
             WHERE onset_date < date_of_birth OR onset_date > {last} OR resolved_date > {last}
                OR resolved_date < onset_date")),
        ("prescription before its condition or for another patient", format!(
            "SELECT count(*) FROM prescriptions r JOIN conditions c ON c.id = r.condition_id
             JOIN patients p ON p.id = r.patient_id
             WHERE r.issued_on < c.onset_date OR c.patient_id <> r.patient_id OR r.issued_on > {last}")),
        ("appointment outside clinic hours, on a weekend or outside life", format!(
            "SELECT count(*) FROM appointments a JOIN patients p ON p.id = a.patient_id
             WHERE a.starts_at::time < '08:00' OR a.starts_at::time + make_interval(mins => duration_minutes) > '18:30'
                OR extract(isodow FROM a.starts_at) > 5
                OR a.starts_at::date < p.date_of_birth OR a.starts_at::date > {last}")),
        ("appointment with another practice's practitioner",
            "SELECT count(*) FROM appointments a JOIN patients p ON p.id = a.patient_id
             JOIN practitioners d ON d.id = a.practitioner_id WHERE d.practice_id <> p.practice_id".into()),
        ("observation outside life", format!(
            "SELECT count(*) FROM observations o JOIN patients p ON p.id = o.patient_id
             WHERE o.observed_at::date < p.date_of_birth OR o.observed_at::date > {last}")),
        ("allergy outside life", format!(
            "SELECT count(*) FROM allergies a JOIN patients p ON p.id = a.patient_id
             WHERE recorded_on < date_of_birth OR recorded_on > {last}")),
        ("anything in the future",
            "SELECT (SELECT count(*) FROM appointments WHERE starts_at > now())
                  + (SELECT count(*) FROM observations WHERE observed_at > now())
                  + (SELECT count(*) FROM prescriptions WHERE issued_on > current_date)".into()),
        ("implausible blood pressure",
            "SELECT count(*) FROM observations s JOIN observations d
               ON d.patient_id = s.patient_id AND d.observed_at = s.observed_at AND d.term = 'Diastolic blood pressure'
             WHERE s.term = 'Systolic blood pressure' AND (d.value >= s.value OR s.value NOT BETWEEN 70 AND 230)".into()),
    ];
    for (what, q) in &violations {
        assert_eq!(int(&url, q), 0, "{what}");
    }

    // Prevalence follows age: type 2 diabetes is far commoner over 65 than under 40.
    let share = |cond: &str| -> f64 {
        value(&url, &format!(
            "SELECT avg((EXISTS (SELECT 1 FROM conditions c WHERE c.patient_id = p.id AND c.snomed_code = '44054006'))::int)
             FROM patients p WHERE {cond}"))
        .parse()
        .unwrap()
    };
    let old = share("date_of_birth < DATE '1961-06-30'");
    let young = share("date_of_birth > DATE '1986-06-30'");
    assert!(
        old > 5.0 * young && old > 0.05,
        "T2DM over 65 {old}, under 40 {young}"
    );

    // Diabetics have HbA1c results, and theirs are higher.
    let diabetic_hba1c = value(
        &url,
        "SELECT avg(value) FROM observations o WHERE term ILIKE '%a1c%' AND EXISTS
           (SELECT 1 FROM conditions c JOIN patients p ON p.id = c.patient_id
            WHERE c.patient_id = o.patient_id AND c.icd10_code LIKE 'E1%')",
    );
    let other_hba1c = value(&url,
        "SELECT avg(value) FROM observations o WHERE term ILIKE '%a1c%' AND NOT EXISTS
           (SELECT 1 FROM conditions c WHERE c.patient_id = o.patient_id AND c.icd10_code LIKE 'E1%')");
    let (d, o): (f64, f64) = (
        diabetic_hba1c.parse().unwrap(),
        other_hba1c.parse().unwrap(),
    );
    assert!(d > 48.0 && o < 42.0, "HbA1c diabetic {d}, others {o}");

    // Children's heart rates are faster than adults'.
    let hr = |cond: &str| -> f64 {
        value(
            &url,
            &format!(
                "SELECT avg(value) FROM observations o JOIN patients p ON p.id = o.patient_id
             WHERE term = 'Heart rate' AND {cond}"
            ),
        )
        .parse()
        .unwrap()
    };
    assert!(
        hr("o.observed_at < p.date_of_birth + interval '5 years'")
            > hr("o.observed_at > p.date_of_birth + interval '30 years'") + 15.0
    );

    // Roughly half female, a UK-shaped share of children and of over-80s.
    let female: f64 = value(&url, "SELECT avg((sex = 'F')::int) FROM patients")
        .parse()
        .unwrap();
    assert!((0.46..0.56).contains(&female), "{female}");
}

#[test]
fn append_continues_ids_and_truncate_replaces() {
    let c = cluster();
    let url = c.url("postgres");
    ward().db(&url).args(["seed", "-n", "300"]).ok();
    let before = table_checksums(&url, "public");

    ward()
        .db(&url)
        .args(["seed", "-n", "10"])
        .run()
        .fails_with(2, "--truncate");
    assert_eq!(
        before,
        table_checksums(&url, "public"),
        "a refused seed changed rows"
    );

    ward().db(&url).args(["seed", "--append", "-n", "200"]).ok();
    assert_eq!(int(&url, "SELECT count(*) FROM patients"), 500);
    let after_append = table_checksums(&url, "public");

    // One practice's calendar holds 6,000 patients: more would double-book its clinicians.
    ward()
        .db(&url)
        .args(["seed", "--append", "-n", "5501"])
        .run()
        .fails_with(2, "calendars hold 6000");
    assert_eq!(
        after_append,
        table_checksums(&url, "public"),
        "a refused append changed rows"
    );
    assert_eq!(int(&url, "SELECT max(id) FROM patients"), 500);
    assert_eq!(
        int(&url, "SELECT count(DISTINCT nhs_number) FROM patients"),
        500
    );
    for t in ward::seed::model::TABLES.iter() {
        let gaps = int(&url, &format!("SELECT max(id) - count(*) FROM {}", t.name));
        assert_eq!(gaps, 0, "{} ids are not dense", t.name);
    }
    // The app's own inserts get fresh ids (sequences were advanced).
    sql(
        &url,
        "INSERT INTO practices (name, town, postcode, phone) VALUES ('x', 'y', 'LS6 1AB', '0113 496 0000')",
    );

    // The appended patients are the ones a 500-patient run generates.
    ward()
        .db(&url)
        .args(["seed", "-n", "500", "--schema", "fresh"])
        .ok();
    let cols = "id, nhs_number, given_name, family_name, date_of_birth, sex, postcode, phone, email, date_of_death";
    let a = sql(
        &url,
        &format!("SELECT {cols} FROM public.patients WHERE id > 300 ORDER BY id"),
    );
    let b = sql(
        &url,
        &format!("SELECT {cols} FROM fresh.patients WHERE id > 300 ORDER BY id"),
    );
    assert_eq!(a, b);

    ward()
        .db(&url)
        .args(["seed", "--truncate", "-n", "100"])
        .ok();
    assert_eq!(int(&url, "SELECT count(*) FROM patients"), 100);
    assert_eq!(int(&url, "SELECT max(id) FROM patients"), 100);
}

#[test]
fn unreachable_database_is_a_one_line_error_without_the_password() {
    let r = ward()
        .db("postgres://app:hunter2secret@127.0.0.1:1/clinic")
        .args(["seed"])
        .run();
    let err = r.fails_with(2, "cannot reach the database at app@127.0.0.1:1/clinic");
    assert!(!err.contains("hunter2secret"), "{err}");
}

#[test]
fn wrong_password_is_explained() {
    let c = cluster();
    let url = format!("postgres://postgres:wrong@127.0.0.1:{}/postgres", c.port());
    let err = ward()
        .db(&url)
        .args(["seed"])
        .run()
        .fails_with(2, "refused the login");
    assert!(err.contains("password"), "{err}");
    assert!(!err.contains(":wrong@"), "{err}");
}

#[test]
fn incompatible_tables_are_refused_and_nothing_is_written() {
    let c = cluster();
    let url = c.url("postgres");
    // Only some of ward's tables.
    sql(
        &url,
        "CREATE TABLE patients (id int PRIMARY KEY, name text)",
    );
    ward()
        .db(&url)
        .args(["seed", "-n", "50"])
        .run()
        .fails_with(2, "has some of ward's tables (patients)");
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ),
        1
    );

    // All of them, but one with a different type.
    ward()
        .db(&url)
        .args(["seed", "-n", "50", "--schema", "s"])
        .ok();
    sql(
        &url,
        "ALTER TABLE s.patients ALTER COLUMN postcode TYPE varchar(8); TRUNCATE s.practices CASCADE",
    );
    ward()
        .db(&url)
        .args(["seed", "-n", "50", "--schema", "s"])
        .run()
        .fails_with(
            2,
            "has column postcode as character varying, ward writes text",
        );
    assert_eq!(int(&url, "SELECT count(*) FROM s.patients"), 0);

    // A NOT NULL column ward cannot fill.
    sql(
        &url,
        "ALTER TABLE s.patients ALTER COLUMN postcode TYPE text; ALTER TABLE s.patients ADD COLUMN ward_cannot text NOT NULL",
    );
    ward()
        .db(&url)
        .args(["seed", "-n", "50", "--schema", "s"])
        .run()
        .fails_with(2, "NOT NULL column ward_cannot");
}

#[test]
fn patient_counts_out_of_range_are_refused() {
    ward()
        .args(["seed", "-n", "0", "--export", "x"])
        .run()
        .fails_with(2, "at least 1");
    let r = ward()
        .db("postgres://a@127.0.0.1:1/b")
        .args(["seed", "-n", "909092"])
        .run();
    r.fails_with(2, "909091");
}

#[test]
fn malformed_ward_toml_is_a_one_line_error() {
    ward()
        .file("ward.toml", "[seed]\npatients = \"lots\"\n")
        .args(["seed", "--export", "out"])
        .run()
        .fails_with(2, "ward.toml at line 2 is malformed");
    ward()
        .file("ward.toml", "[seed]\npatiens = 5\n")
        .args(["seed", "--export", "out"])
        .run()
        .fails_with(2, "unknown field");
}

#[test]
fn ward_toml_sits_under_flags_and_environment() {
    let c = cluster();
    let url = c.url("postgres");
    let w = ward().file(
        "ward.toml",
        &format!("database_url = \"{url}\"\n[seed]\npatients = 40\n"),
    );
    let r = w.args(["seed", "--json"]).ok();
    assert_eq!(r.json()["patients"], 40);
    // The environment beats the file, the flag beats the environment.
    let r = ward()
        .file(
            "ward.toml",
            "database_url = \"postgres://nobody@127.0.0.1:1/x\"\n[seed]\npatients = 40\n",
        )
        .env("DATABASE_URL", &url)
        .env("WARD_PATIENTS", "30")
        .args(["seed", "--json", "--truncate", "-n", "20"])
        .ok();
    assert_eq!(r.json()["patients"], 20);
    assert_eq!(int(&url, "SELECT count(*) FROM patients"), 20);
}

#[test]
fn no_database_configured_says_how_to_configure_one() {
    ward()
        .args(["seed"])
        .run()
        .fails_with(2, "no database configured");
}

#[test]
fn interrupt_rolls_back_everything() {
    let c = cluster();
    let url = c.url("postgres");
    let (child, _dir) = ward().db(&url).args(["seed", "-n", "100000"]).spawn();
    // Wait until the load is under way, then press Ctrl-C.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    while int(
        &url,
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%'",
    ) == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the seed never started copying"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    // The transaction died with the connection: no table was left behind.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while int(
        &url,
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ward' AND pid <> pg_backend_pid()",
    ) > 0
    {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ),
        0
    );
}
