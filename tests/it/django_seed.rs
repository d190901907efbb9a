//! `ward seed --init-spec --django`: the fixture project (tests/fixtures/
//! django_app) migrated to its head on a throwaway cluster, a spec guessed
//! with the project's own models' hints, seeded with no edits, and a sample of
//! every model's rows passed through Django's `full_clean()`.

use crate::support::django::{full_clean, init_spec, manage, project, python};
use crate::support::*;

#[test]
fn django_hints_make_rows_that_pass_full_clean() {
    let c = cluster();
    sql(&c.url("postgres"), "CREATE DATABASE app");
    let url = c.url("app");
    let proj = project();
    manage(proj.path(), &url, &["migrate", "--no-input"]);
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.toml");
    init_spec(&url, proj.path(), &spec);
    let text = std::fs::read_to_string(&spec).unwrap();
    for needle in [
        "# Columns marked \"Django:\" follow the project's own models (Django 5.",
        "columns.status = { values = [\"active\", \"inactive\", \"deceased\"] }",
        "columns.kind = { values = [\"visit\", \"phone\", \"video\"] }",
        "columns.currency = { values = [\"EUR\", \"USD\", \"GBP\"] }",
        "columns.status = { values = [\"1\", \"2\", \"3\"] }",
        "columns.score = { gen = \"int\", min = 1, max = 10 }",
        "columns.rating = { gen = \"int\", min = -5, max = 5, null_ratio = 0.1 }",
        "columns.slug = \"internet.slug\"",
        "columns.tags = { values = [",
        "Django: records.Practice.code RegexValidator",
        "Django: records.Profile.nickname is required (blank=False): never NULL",
    ] {
        assert!(text.contains(needle), "spec lacks {needle:?}:\n{text}");
    }
    ward()
        .db(&url)
        .args(["seed", "--spec"])
        .arg_str(spec.to_str().unwrap())
        .ok();
    let (checked, errors) = full_clean(proj.path(), &url, 50);
    assert!(errors.is_empty(), "full_clean() rejected rows: {errors:#?}");
    assert_eq!(checked.len(), 5, "{checked:?}");
    for (model, n) in &checked {
        assert!(*n >= 20, "{model}: only {n} rows to check");
    }
}

#[test]
fn manage_py_in_the_working_directory_turns_the_hints_on() {
    let py = python();
    let c = cluster();
    sql(&c.url("postgres"), "CREATE DATABASE app");
    let url = c.url("app");
    let proj = project();
    manage(proj.path(), &url, &["migrate", "--no-input"]);
    let spec = tempfile::tempdir().unwrap();
    let path = spec.path().join("spec.toml");
    ward()
        .db(&url)
        .cwd(proj.path())
        .env("WARD_PYTHON", py.to_str().unwrap())
        .args(["seed", "--init-spec"])
        .arg_str(path.to_str().unwrap())
        .ok();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("Django: billing.Invoice.currency choices"),
        "{text}"
    );
    // A Python without Django: one clear line and the command's last lines, exit 2.
    let r = ward()
        .db(&url)
        .args(["seed", "--init-spec"])
        .arg_str(spec.path().join("other.toml").to_str().unwrap())
        .args(["--django-project"])
        .arg_str(proj.path().to_str().unwrap())
        .args(["--python", "/bin/false"])
        .run();
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert!(
        r.stderr()
            .contains("`python manage.py shell -c <ward's script>` failed with status 1"),
        "{}",
        r.stderr()
    );
    assert!(!spec.path().join("other.toml").exists());
}

#[test]
fn foreign_keys_without_a_database_constraint_draw_from_the_parents_keys() {
    // ForeignKey(db_constraint=False): no key in the database, so the guess
    // alone drew plain integers, which full_clean() rejects (the referenced
    // row must exist). The fixture's `audit` app holds such keys; it is
    // installed here only, in this test's copy of the project.
    let py = python();
    let c = cluster();
    sql(&c.url("postgres"), "CREATE DATABASE app");
    let url = c.url("app");
    let proj = project();
    let settings = proj.path().join("clinic/settings.py");
    let text = std::fs::read_to_string(&settings).unwrap() + "INSTALLED_APPS += [\"audit\"]\n";
    std::fs::write(&settings, text).unwrap();
    manage(proj.path(), &url, &["migrate", "--no-input"]);
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'audit_entry'::regclass AND contype = 'f'"
        ),
        0,
        "the fixture's keys are not in the database"
    );
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.toml");
    ward()
        .db(&url)
        .args(["seed", "--init-spec"])
        .arg_str(spec.to_str().unwrap())
        .args(["--django-project"])
        .arg_str(proj.path().to_str().unwrap())
        .arg_str("--python")
        .arg_str(py.to_str().unwrap())
        .ok();
    let text = std::fs::read_to_string(&spec).unwrap();
    for needle in [
        "columns.patient_id = { ref = \"public.records_patient.id\" }",
        "columns.invoice_id = { ref = \"public.billing_invoice.id\", null_ratio = 0.1 }",
        "Django: audit.Entry.patient is ForeignKey(db_constraint=False)",
        // A column named phone alone would be phone.uk's national format,
        // which a PhoneNumberField without a default region rejects.
        "columns.phone = \"phone.e164\"",
        "audit.Entry.phone PhoneNumberField: E.164",
    ] {
        assert!(text.contains(needle), "spec lacks {needle:?}:\n{text}");
    }
    ward()
        .db(&url)
        .args(["seed", "--spec"])
        .arg_str(spec.to_str().unwrap())
        .ok();
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM audit_entry e WHERE NOT EXISTS (SELECT 1 FROM records_patient p WHERE p.id = e.patient_id)
               OR (invoice_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM billing_invoice i WHERE i.id = e.invoice_id))"
        ),
        0
    );
    assert!(int(&url, "SELECT count(invoice_id) FROM audit_entry") > 0);
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM audit_entry WHERE phone !~ '^\\+44[0-9]{10}$'"
        ),
        0
    );
    let (checked, errors) = full_clean(proj.path(), &url, 50);
    assert!(errors.is_empty(), "full_clean() rejected rows: {errors:#?}");
    assert!(
        checked.iter().any(|(m, n)| m == "audit.Entry" && *n >= 20),
        "{checked:?}"
    );
}
