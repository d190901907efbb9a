//! `ward seed --init-spec` / `--spec` on application schemas the tests create
//! themselves: a Django-shaped one (users, groups, a many-to-many table, a
//! patient model, choices, timestamps, JSON, enum, domain, arrays) with a
//! self-referencing foreign key and a two-table cycle. Every constraint is
//! checked again by SQL after the seed.

use crate::support::*;
use ward::seed::generate::{address, nhs, person};

const DJANGO: &str = include_str!("../fixtures/django.sql");

/// A fresh database holding the Django-shaped schema; returns its URL.
fn django_db(c: &Cluster, name: &str) -> String {
    sql(&c.url("postgres"), &format!("CREATE DATABASE {name}"));
    let url = c.url(name);
    sql(&url, DJANGO);
    url
}

fn init_spec(url: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("spec.toml");
    let r = ward()
        .db(url)
        .args(["seed", "--init-spec"])
        .args([&path])
        .ok();
    assert!(r.stdout().contains("Wrote"), "{}", r.stdout());
    path
}

fn all_checksums(url: &str) -> Vec<(String, String)> {
    // django_migrations holds the fixture's own now(): not ward's rows.
    let tables = sql(
        url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'django_migrations' ORDER BY 1",
    );
    tables
        .iter()
        .map(|t| {
            let name = t[0].clone().unwrap();
            let sum = value(
                url,
                &format!("SELECT count(*) || ':' || coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '') FROM {name} x"),
            );
            (name, sum)
        })
        .collect()
}

#[test]
fn guessed_spec_seeds_the_django_schema_with_valid_rows() {
    let c = cluster();
    let url = django_db(&c, "app");
    let tmp = tempfile::tempdir().unwrap();
    let spec = init_spec(&url, tmp.path());
    let text = std::fs::read_to_string(&spec).unwrap();
    assert!(
        text.contains("[tables.\"public.django_migrations\"]\nskip = true"),
        "{text}"
    );
    assert!(
        text.contains("columns.nhs_number = \"patient.nhs_number\""),
        "{text}"
    );
    assert!(
        text.contains("columns.sex = { values = [\"F\", \"M\", \"X\"] }"),
        "{text}"
    );

    let r = ward()
        .db(&url)
        .args(["seed", "--json", "--spec"])
        .args([&spec])
        .ok();
    let report = r.json();
    assert!(report["total_rows"].as_u64().unwrap() > 500, "{report}");
    assert!(
        report["tables"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["rows_per_second"].as_f64().unwrap() > 0.0 || t["rows"] == 0)
    );

    // Migration history untouched; every seeded table has rows.
    assert_eq!(int(&url, "SELECT count(*) FROM django_migrations"), 1);
    for t in [
        "auth_user",
        "auth_group",
        "auth_user_groups",
        "core_patient",
        "core_appointment",
        "core_practitioner",
        "core_ward",
        "core_nurse",
    ] {
        assert!(
            int(&url, &format!("SELECT count(*) FROM {t}")) > 0,
            "{t} is empty"
        );
    }
    // Foreign keys point at existing rows (the DEFERRABLE ones too).
    let orphans = [
        "SELECT count(*) FROM auth_user_groups g LEFT JOIN auth_user u ON u.id = g.user_id WHERE u.id IS NULL",
        "SELECT count(*) FROM auth_user_groups g LEFT JOIN auth_group a ON a.id = g.group_id WHERE a.id IS NULL",
        "SELECT count(*) FROM core_patient p LEFT JOIN auth_user u ON u.id = p.user_id WHERE u.id IS NULL",
        "SELECT count(*) FROM core_appointment a LEFT JOIN core_patient p ON p.id = a.patient_id WHERE p.id IS NULL",
        "SELECT count(*) FROM core_ward w LEFT JOIN core_nurse n ON n.id = w.head_nurse_id WHERE w.head_nurse_id IS NOT NULL AND n.id IS NULL",
        "SELECT count(*) FROM core_nurse n LEFT JOIN core_ward w ON w.id = n.ward_id WHERE w.id IS NULL",
        "SELECT count(*) FROM core_practitioner p LEFT JOIN core_practitioner s ON s.id = p.supervisor_id WHERE p.supervisor_id IS NOT NULL AND s.id IS NULL",
    ];
    for q in orphans {
        assert_eq!(int(&url, q), 0, "{q}");
    }
    // The cycle was closed in the second pass; the self-reference forms a tree.
    assert!(
        int(
            &url,
            "SELECT count(*) FROM core_ward WHERE head_nurse_id IS NOT NULL"
        ) > 50
    );
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM core_practitioner WHERE supervisor_id >= id"
        ),
        0
    );
    // UNIQUE and composite UNIQUE hold (the constraints exist, so ask directly as well).
    for (t, cols) in [
        ("auth_user", "username"),
        ("auth_group", "name"),
        ("auth_user_groups", "user_id, group_id"),
        ("core_patient", "user_id"),
        ("core_patient", "nhs_number"),
        ("core_patient", "external_id"),
        ("core_ward", "name"),
        ("django_content_type", "app_label, model"),
    ] {
        let dup = int(
            &url,
            &format!(
                "SELECT count(*) FROM (SELECT {cols} FROM {t} GROUP BY {cols} HAVING count(*) > 1) d"
            ),
        );
        assert_eq!(dup, 0, "duplicate {t}({cols})");
    }
    // CHECKs and domains.
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM core_patient WHERE sex NOT IN ('F','M','X') OR visits <= 0 OR weight_kg NOT BETWEEN 0 AND 400"
        ),
        0
    );
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM core_appointment WHERE duration_minutes NOT BETWEEN 5 AND 120"
        ),
        0
    );
    // UK-safe identifiers, and e-mails built from the row's own names.
    for r in sql(&url, "SELECT nhs_number, postcode, phone FROM core_patient") {
        assert!(nhs::in_test_range(r[0].as_deref().unwrap()));
        assert!(address::is_valid_postcode(r[1].as_deref().unwrap()));
        if let Some(p) = &r[2] {
            assert!(person::is_drama_phone(p), "{p}");
        }
    }
    for r in sql(
        &url,
        "SELECT email, lower(first_name), lower(last_name) FROM auth_user",
    ) {
        let e = r[0].as_deref().unwrap();
        assert!(person::is_reserved_email(e), "{e}");
        let given: String = r[1]
            .as_deref()
            .unwrap()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        assert!(
            e.starts_with(&format!("{given}.")),
            "{e} does not use the first name {given}"
        );
    }
    // Identity sequences were moved past the ids ward set: the app can insert.
    sql(
        &url,
        "INSERT INTO auth_group (name) VALUES ('added by the app')",
    );
    sql(&url, "INSERT INTO core_practitioner (name) VALUES ('new')");

    // Seeding again refuses without --truncate, and replaces with it.
    ward()
        .db(&url)
        .args(["seed", "--spec"])
        .args([&spec])
        .run()
        .fails_with(2, "--truncate");
    ward()
        .db(&url)
        .args(["seed", "--truncate", "--spec"])
        .args([&spec])
        .ok();
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM auth_group WHERE name = 'added by the app'"
        ),
        0
    );
}

#[test]
fn seeding_by_spec_is_identical_whatever_the_jobs_and_unaffected_by_other_columns() {
    let c = cluster();
    let (a, b, d) = (django_db(&c, "a"), django_db(&c, "b"), django_db(&c, "d"));
    let tmp = tempfile::tempdir().unwrap();
    let spec = init_spec(&a, tmp.path());
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("rows = 100", "rows = 2500");
    std::fs::write(&spec, &text).unwrap();
    ward()
        .db(&a)
        .args(["seed", "-j", "1", "--spec"])
        .args([&spec])
        .ok();
    ward()
        .db(&b)
        .args(["seed", "-j", "3", "--spec"])
        .args([&spec])
        .ok();
    assert_eq!(all_checksums(&a), all_checksums(&b));

    // Dropping a column from the spec (left to its default) changes no other value.
    let fewer = tmp.path().join("fewer.toml");
    let edited: String = text
        .lines()
        .filter(|l| !l.starts_with("columns.cancelled"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&fewer, edited).unwrap();
    ward().db(&d).args(["seed", "--spec"]).args([&fewer]).ok();
    let cols = "id, patient_id, starts_at, duration_minutes, reason";
    assert!(
        sql(
            &a,
            &format!("SELECT {cols} FROM core_appointment ORDER BY id")
        ) == sql(
            &d,
            &format!("SELECT {cols} FROM core_appointment ORDER BY id")
        ),
        "removing one column's generator changed other columns"
    );
    assert_eq!(
        int(&d, "SELECT count(*) FROM core_appointment WHERE cancelled"),
        0
    );
    let others = |url: &str| {
        all_checksums(url)
            .into_iter()
            .filter(|(t, _)| t != "core_appointment")
            .collect::<Vec<_>>()
    };
    assert_eq!(others(&a), others(&d));
}

#[test]
fn hand_edited_spec_features_work() {
    let c = cluster();
    let url = django_db(&c, "app");
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.toml");
    std::fs::write(
        &spec,
        r#"version = 1
seed = 7

[tables."public.auth_user"]
rows = 300
columns.id = "sequence"
columns.password = "internet.password_hash"
columns.is_superuser = { values = { "true" = 1, "false" = 99 } }
columns.is_staff = { gen = "bool", true_ratio = 0.1 }
columns.is_active = "bool"
columns.username = { template = "{first_name|slug}{row}" }
columns.first_name = "person.given_name"
columns.last_name = "person.family_name"
columns.email = { template = "{first_name|slug}.{last_name|slug}{row}@example.net" }
columns.date_joined = { gen = "timestamp", from = "2024-01-01", to = "2024-12-31" }
columns.last_login = { gen = "timestamp", null_ratio = 0.5 }

[tables."public.auth_group"]
rows = 4
columns.id = "sequence"
columns.name = { values = ["doctors", "nurses", "admin", "reception"] }

[tables."public.auth_user_groups"]
rows = { per = "public.auth_user", min = 1, max = 3 }
columns.id = "sequence"

[tables."public.core_patient"]
rows = { per = "public.auth_user", count = 1 }
columns.id = "sequence"
columns.nhs_number = "patient.nhs_number"
columns.date_of_birth = "person.date_of_birth"
columns.sex = { values = { F = 5, M = 5 } }
columns.status = { values = ["active", "discharged"] }
columns.postcode = "address.postcode"
columns.visits = { gen = "int", min = 1, max = 12 }
columns.mood = { values = ["calm"] }
columns.external_id = "uuid"
columns.metadata = "json"
columns.notes = "clinical.condition"
columns.created_at = { gen = "timestamp", from = "2025-01-01", to = "2025-06-30" }
columns.updated_at = { sql = "created_at + interval '1 day'" }

[tables."public.core_appointment"]
rows = { per = "public.core_patient", mean = 2.0 }
columns.id = "sequence"
columns.starts_at = "timestamp"
columns.duration_minutes = { values = ["10", "15", "30"] }
columns.reason = "clinical.condition"

[tables."public.django_content_type"]
skip = true
[tables."public.core_practitioner"]
skip = true
[tables."public.core_ward"]
skip = true
[tables."public.core_nurse"]
skip = true
"#,
    )
    .unwrap();
    ward().db(&url).args(["seed", "--spec"]).args([&spec]).ok();
    assert_eq!(int(&url, "SELECT count(*) FROM auth_user"), 300);
    assert_eq!(int(&url, "SELECT count(*) FROM core_patient"), 300);
    assert_eq!(int(&url, "SELECT count(*) FROM core_practitioner"), 0);
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM auth_user WHERE email <> lower(regexp_replace(first_name, '[^A-Za-z0-9]', '', 'g')) || '.' || lower(regexp_replace(last_name, '[^A-Za-z0-9]', '', 'g')) || id || '@example.net'"
        ),
        0
    );
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM core_patient WHERE updated_at <> created_at + interval '1 day'"
        ),
        0
    );
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM core_patient WHERE status NOT IN ('active', 'discharged') OR visits NOT BETWEEN 1 AND 12"
        ),
        0
    );
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM auth_user WHERE date_joined NOT BETWEEN '2024-01-01' AND '2025-01-01'"
        ),
        0
    );
    let nulls = int(
        &url,
        "SELECT count(*) FROM auth_user WHERE last_login IS NULL",
    );
    assert!(
        (100..200).contains(&nulls),
        "null_ratio 0.5 gave {nulls}/300"
    );
    let per_user = sql(
        &url,
        "SELECT min(n), max(n) FROM (SELECT count(*) n FROM auth_user_groups GROUP BY user_id) x",
    );
    assert_eq!(per_user[0], vec![Some("1".into()), Some("3".into())]);
    let appts: f64 = value(&url, "SELECT count(*)::float / 300 FROM core_appointment")
        .parse()
        .unwrap();
    assert!((1.7..2.3).contains(&appts), "mean 2 gave {appts}");
}

fn write_spec(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let p = dir.join("bad.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bad_specs_get_precise_errors_and_nothing_is_written() {
    let c = cluster();
    let url = django_db(&c, "app");
    sql(
        &url,
        "CREATE TABLE scores (id int PRIMARY KEY, score int NOT NULL CHECK (score BETWEEN 0 AND 10))",
    );
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[tables.\"public.nope\"]\nrows = 1\n",
            "bad.toml:1: public.nope: no such table",
        ),
        (
            "[tables.\"public.auth_group\"]\nrows = 5\ncolumns.id = \"sequence\"\ncolumns.nme = \"lorem.word\"\n",
            "bad.toml:4: public.auth_group.nme: no such column",
        ),
        (
            "[tables.\"public.auth_group\"]\nrows = 5\ncolumns.id = \"person.given_name\"\ncolumns.name = \"lorem.word\"\n",
            "bad.toml:3: public.auth_group.id: the generator makes text, the column is integer",
        ),
        (
            "[tables.\"public.auth_group\"]\nrows = 5\ncolumns.id = \"sequence\"\ncolumns.name = { values = [\"a\", \"b\"] }\n",
            "bad.toml:4: public.auth_group.name: cannot guarantee UNIQUE (name)",
        ),
        (
            "[tables.\"public.auth_group\"]\nskip = true\n[tables.\"public.auth_user_groups\"]\nrows = { per = \"public.auth_group\", count = 1 }\n",
            "bad.toml:3: public.auth_user_groups: rows per public.auth_group, but public.auth_group is skipped",
        ),
        (
            "[tables.\"public.auth_group\"]\nrows = 5\ncolumns.id = { gen = \"int\", bogus = 2 }\n",
            "bad.toml:3: public.auth_group.id: unknown key \"bogus\"",
        ),
        (
            "[tables.\"public.scores\"]\nrows = 5\ncolumns.id = \"sequence\"\ncolumns.score = { gen = \"int\", min = 0, max = 50 }\n",
            "bad.toml:4: public.scores.score: int range 0..50 breaks the column's CHECK — keep within 0..10",
        ),
        (
            "[tables.\"public.core_appointment\"]\nrows = 5\ncolumns.id = \"sequence\"\ncolumns.starts_at = \"timestamp\"\ncolumns.duration_minutes = { values = [\"10\"] }\ncolumns.reason = \"lorem.word\"\n",
            "bad.toml:1: public.core_appointment.patient_id references public.core_patient, which the spec skips or leaves out and which has no rows",
        ),
        (
            "[tables.\"public.auth_group\"]\nrows = 5\ncolumns.id = \"sequence\"\ncolumns.name = \"lorem.wrod\"\n",
            "unknown generator \"lorem.wrod\"",
        ),
    ];
    for (text, needle) in cases {
        let p = write_spec(tmp.path(), text);
        let err = ward()
            .db(&url)
            .args(["seed", "--spec"])
            .args([&p])
            .run()
            .fails_with(2, needle);
        assert!(
            [" — ", "use ", "remove", "fix", "expected"]
                .iter()
                .any(|w| err.contains(w)),
            "no remedy in: {err}"
        );
    }
    assert_eq!(int(&url, "SELECT count(*) FROM auth_group"), 0);
    assert_eq!(int(&url, "SELECT count(*) FROM auth_user_groups"), 0);
}

#[test]
fn a_not_null_cycle_is_seeded_when_a_key_is_deferrable_and_named_when_none_is() {
    let c = cluster();
    let url = c.url("postgres");
    sql(
        &url,
        "CREATE TABLE a (id int PRIMARY KEY, b_id int NOT NULL);
         CREATE TABLE b (id int PRIMARY KEY, a_id int NOT NULL REFERENCES a);
         ALTER TABLE a ADD CONSTRAINT a_b FOREIGN KEY (b_id) REFERENCES b DEFERRABLE INITIALLY DEFERRED;",
    );
    let tmp = tempfile::tempdir().unwrap();
    let p = write_spec(
        tmp.path(),
        "[tables.\"public.a\"]\nrows = 3\ncolumns.id = \"sequence\"\n[tables.\"public.b\"]\nrows = 3\ncolumns.id = \"sequence\"\n",
    );
    // Deferrable: one transaction, the key checked at commit.
    ward()
        .db(&url)
        .args(["seed", "-q", "--spec"])
        .args([&p])
        .ok();
    assert_eq!(
        int(&url, "SELECT count(*) FROM a JOIN b ON b.id = a.b_id"),
        3
    );
    sql(
        &url,
        "TRUNCATE a, b; ALTER TABLE a DROP CONSTRAINT a_b;
         ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b;",
    );
    ward()
        .db(&url)
        .args(["seed", "--spec"])
        .args([&p])
        .run()
        .fails_with(
            2,
            "foreign keys form a cycle (public.a.b_id → public.b, public.b.a_id → public.a) with no nullable key ward could fill after the load and no DEFERRABLE one",
        );
}
