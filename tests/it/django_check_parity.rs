//! `ward check --runner django` does what the SQL runner does: the down
//! round trip (`manage.py migrate APP PREV`, each difference blamed on its
//! own migration, irreversible ones as INFO), the run under another TimeZone
//! when a migration can depend on it, `--against seed`, and a trace of the
//! SQL each RunPython executes. Real clusters, the fixture project's own
//! Django; the extra migrations live in each test's private copy.

use crate::support::check::{findings, report};
use crate::support::django::{check, check_with, early_database, project, python};
use crate::support::*;
use serde_json::Value;

/// Writes `records/migrations/NAME.py` (a RunPython of `forward`, without
/// reverse, after 0008) into the copy `proj`; the line of its `RunPython(`.
fn add_migration(proj: &std::path::Path, name: &str, body: &str) -> usize {
    let text = format!(
        "from django.db import migrations\nfrom django.utils import timezone\n\n\n{body}\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"records\", \"0008_encounter_kind_index\")]\n    operations = [\n        migrations.RunPython(forward),\n    ]\n"
    );
    std::fs::write(proj.join(format!("records/migrations/{name}.py")), &text).unwrap();
    text[..text.find("migrations.RunPython(").unwrap()]
        .matches('\n')
        .count()
        + 1
}

fn down(j: &Value) -> Vec<(String, String, String)> {
    findings(j, "down-migration")
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap_or("").to_string(),
                f["level"].as_str().unwrap_or("").to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn round_trip_blames_each_lossy_reverse_on_its_migration_and_a_deletion_on_its_statement() {
    let c = cluster();
    let proj = project();
    let url = early_database(&c, proj.path());
    // Irreversible (no reverse), and it deletes rows through the ORM.
    let line = add_migration(
        proj.path(),
        "0009_prune",
        "def forward(apps, schema_editor):\n    Patient = apps.get_model(\"records\", \"Patient\")\n    Patient.objects.filter(status=\"inactive\").delete()",
    );
    // Patients without a phone: 0004 gives them their fax number, and its
    // reverse (RunPython.noop) does not take it back.
    sql(
        &url,
        "UPDATE records_patient SET phone = '' WHERE id % 3 = 0",
    );
    let inactive = int(
        &url,
        "SELECT count(*) FROM records_patient WHERE status = 'inactive'",
    );
    assert!(inactive > 0);
    // 0009 is irreversible, so the round trip is off by default (as for SQL
    // files without a down): asked for, it goes through and says so.
    let r = check_with(proj.path(), &url, "json", &["--round-trip", "true"]);
    assert_eq!(r.code(), 1, "{}\n{}", r.stdout(), r.stderr());
    let j = report(&r);
    // The deletion inside RunPython points at the DELETE it executed.
    let lost = findings(&j, "rows-lost");
    let patients = lost
        .iter()
        .find(|f| {
            f["object"]
                .as_str()
                .unwrap_or("")
                .contains("records_patient")
        })
        .unwrap_or_else(|| panic!("no rows-lost on records_patient: {lost:#?}"));
    assert_eq!(patients["file"], "records/migrations/0009_prune.py");
    assert_eq!(patients["line"], line, "{patients:#}");
    let st = patients["statement"].as_str().unwrap();
    assert!(st.starts_with("DELETE FROM \"records_patient\""), "{st}");
    // Recorded with its placeholders: the rows' values never reach the report.
    assert!(st.contains("%s"), "{st}");
    // Every statement of the RunPython is in the run's trace.
    let run = j["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["file"] == "records/migrations/0009_prune.py")
        .unwrap();
    let sqls: Vec<&str> = run["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sql"].as_str().unwrap())
        .collect();
    assert!(sqls.iter().any(|s| s.starts_with("SELECT")), "{sqls:#?}");
    assert!(
        sqls.iter()
            .any(|s| s.starts_with("DELETE FROM \"records_patient\"")
                && s.ends_with("-- Raw Python operation")),
        "{sqls:#?}"
    );

    // The round trip: each difference on its own migration.
    let d = down(&j);
    assert!(
        d.iter()
            .any(|(f, l, m)| f == "records/migrations/0007_drop_fax.py"
                && l == "FAIL"
                && m.contains("records_patient.fax")),
        "{d:#?}"
    );
    assert!(
        d.iter()
            .any(|(f, l, m)| f == "records/migrations/0004_backfill_phone.py"
                && l == "FAIL"
                && m.contains("values of records_patient.phone differ")),
        "{d:#?}"
    );
    assert!(
        d.iter()
            .any(|(f, l, m)| f == "records/migrations/0009_prune.py"
                && l == "INFO"
                && m.contains("irreversible")),
        "{d:#?}"
    );
    for (f, l, m) in &d {
        assert!(
            f.ends_with("0004_backfill_phone.py")
                || f.ends_with("0007_drop_fax.py")
                || f.ends_with("0009_prune.py"),
            "a clean reverse was blamed: {f} {l} {m}"
        );
        if f.ends_with("0009_prune.py") {
            assert_eq!(l, "INFO", "{m}");
        }
    }
    // The findings name their column, so ward-accept.toml can accept them.
    let fax = findings(&j, "down-migration")
        .into_iter()
        .find(|f| f["file"] == "records/migrations/0007_drop_fax.py")
        .unwrap();
    assert_eq!(fax["object"], "records_patient.fax", "{fax:#}");
}

#[test]
fn a_failing_statement_inside_runpython_is_the_findings_statement() {
    let c = cluster();
    let proj = project();
    let url = early_database(&c, proj.path());
    let line = add_migration(
        proj.path(),
        "0009_clear_email",
        "def forward(apps, schema_editor):\n    schema_editor.execute(\"UPDATE records_patient SET email = NULL WHERE id IN (SELECT id FROM records_patient LIMIT 3)\")",
    );
    let r = check(proj.path(), &url, "json");
    assert_eq!(r.code(), 1, "{}\n{}", r.stdout(), r.stderr());
    let j = report(&r);
    let errors = findings(&j, "migration-error");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = errors[0];
    assert_eq!(e["file"], "records/migrations/0009_clear_email.py");
    assert_eq!(e["line"], line, "{e:#}");
    assert!(
        e["statement"]
            .as_str()
            .unwrap()
            .starts_with("UPDATE records_patient SET email = NULL"),
        "{e:#}"
    );
    assert!(e["message"].as_str().unwrap().contains("email"), "{e:#}");
    assert!(e["output"].as_str().unwrap().contains("Traceback"), "{e:#}");
    // A failed window is not round-tripped.
    assert!(findings(&j, "down-migration").is_empty(), "{j:#}");
}

#[test]
fn a_runpython_reading_the_local_zone_is_found_by_the_run_under_another_timezone() {
    let c = cluster();
    let proj = project();
    let url = early_database(&c, proj.path());
    assert!(int(&url, "SELECT count(*) FROM records_encounter") > 20);
    add_migration(
        proj.path(),
        "0009_local_day",
        "def forward(apps, schema_editor):\n    Encounter = apps.get_model(\"records\", \"Encounter\")\n    for e in Encounter.objects.order_by(\"pk\"):\n        e.data = {\"day\": timezone.localtime(e.happened_at).date().isoformat()}\n        e.save(update_fields=[\"data\"])",
    );
    let r = check(proj.path(), &url, "json");
    let j = report(&r);
    let tz = findings(&j, "timezone-dependent");
    assert_eq!(tz.len(), 1, "{tz:#?}");
    let f = tz[0];
    assert_eq!(f["object"], "records_encounter.data", "{f:#}");
    assert_eq!(f["file"], "records/migrations/0009_local_day.py", "{f:#}");
    assert!(
        f["statement"]
            .as_str()
            .unwrap()
            .starts_with("UPDATE \"records_encounter\" SET \"data\""),
        "{f:#}"
    );
    // The fixture's own migrations are not zone-dependent.
    for other in &tz {
        assert!(other["object"] != "records_patient.phone", "{other:#}");
    }
}

#[test]
fn against_seed_migrates_to_the_base_seeds_with_a_guessed_spec_and_checks_the_rest() {
    let c = cluster();
    let proj = project();
    let r = ward()
        .db(&c.url("postgres"))
        .args([
            "check",
            "--runner",
            "django",
            "--against",
            "seed",
            "--base",
            "records.0003_encounter",
            "--format",
            "json",
            "--django-project",
        ])
        .arg_str(proj.path().to_str().unwrap())
        .args(["--python"])
        .arg_str(python().to_str().unwrap())
        .run();
    assert_eq!(r.code(), 1, "{}\n{}", r.stdout(), r.stderr());
    let j = report(&r);
    let pending: Vec<&str> = j["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        pending.first(),
        Some(&"records/migrations/0004_backfill_phone.py")
    );
    assert_eq!(pending.len(), 7, "{pending:?}");
    assert!(j["rows_checked"].as_u64().unwrap() > 0, "{j:#}");
    assert!(
        j["against"].as_str().unwrap().contains("guessed")
            && j["against"]
                .as_str()
                .unwrap()
                .contains("manage.py migrate records 0003_encounter"),
        "{}",
        j["against"]
    );
    let dropped = findings(&j, "dropped-data");
    assert_eq!(dropped.len(), 1, "{dropped:#?}");
    assert_eq!(dropped[0]["file"], "records/migrations/0007_drop_fax.py");
    assert!(findings(&j, "migration-error").is_empty(), "{j:#}");
    // Without --base there is no state to seed at: a one-line error.
    ward()
        .db(&c.url("postgres"))
        .args([
            "check",
            "--runner",
            "django",
            "--against",
            "seed",
            "--django-project",
        ])
        .arg_str(proj.path().to_str().unwrap())
        .args(["--python"])
        .arg_str(python().to_str().unwrap())
        .run()
        .fails_with(2, "--base APP.MIGRATION");
}

#[test]
fn a_project_whose_settings_ignore_database_url_is_refused_and_its_database_untouched() {
    let c = cluster();
    let proj = project();
    let url = early_database(&c, proj.path());
    // Hard-coded to the real database: ward must not migrate it.
    let settings = proj.path().join("clinic/settings.py");
    let mut text = std::fs::read_to_string(&settings).unwrap();
    text.push_str("\nDATABASES[\"default\"][\"NAME\"] = \"prod\"\n");
    std::fs::write(&settings, text).unwrap();
    let before = int(&url, "SELECT count(*) FROM django_migrations");
    let r = check(proj.path(), &url, "json");
    r.fails_with(2, "not to ward's scratch copy");
    assert_eq!(int(&url, "SELECT count(*) FROM django_migrations"), before);
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'records_patient' AND column_name = 'fax'"
        ),
        1
    );
}
