//! `ward check --runner django` on the fixture project (tests/fixtures/
//! django_app): a database migrated to an early migration and seeded through
//! the Django-hinted spec, then its pending history checked on a clone,
//! applied by Django's own plan one migration at a time, each finding blamed
//! on its migration file.

use crate::support::check::{findings, report};
use crate::support::django::{check, check_with, early_database, project};
use crate::support::*;

/// Every migration after records.0003_encounter, in Django's plan order.
const PENDING: &[&str] = &[
    "records/migrations/0004_backfill_phone.py",
    "records/migrations/0005_profile.py",
    "records/migrations/0006_rename_phone_mobile.py",
    "records/migrations/0007_drop_fax.py",
    "records/migrations/0008_encounter_kind_index.py",
    "billing/migrations/0001_initial.py",
    "billing/migrations/0002_invoice_rating_status.py",
];

#[test]
fn django_runner_applies_each_migration_in_plan_order_and_blames_the_drop_on_its_file() {
    let c = cluster();
    let proj = project();
    let url = early_database(&c, proj.path());
    let r = check(proj.path(), &url, "json");
    assert_eq!(r.code(), 1, "{}\n{}", r.stdout(), r.stderr());
    let j = report(&r);
    assert_eq!(j["format"], "django");
    let pending: Vec<&str> = j["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(pending, PENDING);
    let runs: Vec<(&str, &str)> = j["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["file"].as_str().unwrap(), r["version"].as_str().unwrap()))
        .collect();
    assert_eq!(runs.len(), PENDING.len(), "{runs:?}");
    for ((file, version), want) in runs.iter().zip(PENDING) {
        assert_eq!(file, want);
        let (app, name) = version.split_once('.').unwrap();
        assert!(
            want.starts_with(app) && want.contains(name),
            "{version} ran as {file}"
        );
    }
    // The intended drop, on its file and operation, and nothing blamed elsewhere.
    let dropped = findings(&j, "dropped-data");
    assert_eq!(dropped.len(), 1, "{dropped:#?}");
    let d = dropped[0];
    assert_eq!(d["file"], "records/migrations/0007_drop_fax.py");
    assert!(d["object"].as_str().unwrap().contains("fax"), "{d:#}");
    assert_eq!(d["line"], 13, "the RemoveField( line of 0007: {d:#}");
    assert!(
        d["statement"]
            .as_str()
            .unwrap()
            .contains("DROP COLUMN \"fax\"")
            && d["statement"]
                .as_str()
                .unwrap()
                .contains("Remove field fax from patient"),
        "{d:#}"
    );
    // The runner wrote Django's history: the clone is at head (the source is untouched).
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM django_migrations WHERE app = 'billing'"
        ),
        0
    );
    // The terminal view names each migration and the file of the drop.
    let h = check(proj.path(), &url, "human");
    let out = h.stdout();
    assert!(out.contains("7 migrations pending (django)"), "{out}");
    for f in PENDING {
        assert!(out.contains(f), "{f} missing from:\n{out}");
    }
    assert!(
        out.contains("--> records/migrations/0007_drop_fax.py:13"),
        "{out}"
    );
}

#[test]
fn a_failing_python_migration_keeps_its_whole_output_in_json_and_one_short_line_on_the_terminal() {
    let c = cluster();
    let proj = project();
    let url = early_database(&c, proj.path());
    // A data migration that dies with a 7,000-character message.
    std::fs::write(
        proj.path().join("records/migrations/0009_boom.py"),
        "from django.db import migrations\n\n\ndef boom(apps, schema_editor):\n    raise ValueError('bad row ' + 'x' * 7000)\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"records\", \"0008_encounter_kind_index\")]\n    operations = [migrations.RunPython(boom)]\n",
    )
    .unwrap();
    let r = check(proj.path(), &url, "json");
    assert_eq!(r.code(), 1, "{}\n{}", r.stdout(), r.stderr());
    let j = report(&r);
    let errors = findings(&j, "migration-error");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let e = errors[0];
    assert_eq!(e["file"], "records/migrations/0009_boom.py");
    assert!(e["output"].as_str().unwrap().contains(&"x".repeat(7000)));
    assert!(e["output"].as_str().unwrap().contains("Traceback"));
    assert!(
        e["message"].as_str().unwrap().chars().count() < 600,
        "{e:#}"
    );
    // The migrations before it ran, the ones after did not.
    let last = j["runs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["file"], "records/migrations/0009_boom.py");
    let h = check(proj.path(), &url, "human");
    let out = h.stdout();
    assert!(
        out.contains("records/migrations/0009_boom.py fails on the data: ValueError: bad row xxx"),
        "{out}"
    );
    assert!(out.contains("findings[].output"), "{out}");
    let longest = out.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(longest < 600, "a {longest}-character line in:\n{out}");
}

#[test]
fn the_intended_drop_is_accepted_through_ward_accept_toml_beside_manage_py() {
    let c = cluster();
    let proj = project();
    let url = early_database(&c, proj.path());
    std::fs::write(
        proj.path().join("ward-accept.toml"),
        "[[accept]]\nrule = \"dropped-data\"\ntable = \"records_patient\"\ncolumn = \"fax\"\n\
         migration = \"records/migrations/0007_drop_fax.py\"\n\
         reason = \"fax numbers are no longer kept; 0004 copied them to phone\"\n\n\
         [[accept]]\nrule = \"down-migration\"\ntable = \"records_patient\"\ncolumn = \"fax\"\n\
         migration = \"records/migrations/0007_drop_fax.py\"\n\
         reason = \"going back re-adds fax empty: the numbers are gone on purpose\"\n",
    )
    .unwrap();
    let r = check(proj.path(), &url, "json");
    assert_eq!(r.code(), 0, "{}\n{}", r.stdout(), r.stderr());
    let j = report(&r);
    assert!(findings(&j, "dropped-data").is_empty(), "{j:#}");
    assert!(findings(&j, "stale-accept").is_empty(), "{j:#}");
    let accepted = j["accepted"].as_array().unwrap();
    assert_eq!(accepted.len(), 2, "{accepted:#?}");
    // The lossy reverse of the drop (see tests/django_check_parity.rs) is accepted by column.
    assert!(findings(&j, "down-migration").is_empty(), "{j:#}");
    let accepted: Vec<&serde_json::Value> = accepted
        .iter()
        .filter(|a| a["rule"] == "dropped-data")
        .collect();
    assert_eq!(accepted[0]["rule"], "dropped-data");
    assert_eq!(accepted[0]["file"], "records/migrations/0007_drop_fax.py");
    assert_eq!(
        accepted[0]["accepted"]["reason"],
        "fax numbers are no longer kept; 0004 copied them to phone"
    );
    assert_ne!(j["verdict"], "FAIL");
}

#[test]
fn a_migration_named_like_a_secret_does_not_break_the_plan() {
    // Found on django-allauth: "socialaccount.0002_token_max_lengths": { … }
    // looked like `token: value` to the secret redaction, which cut the plan's
    // JSON before ward read it ("printed nothing ward can read").
    let c = cluster();
    let proj = project();
    let url = early_database(&c, proj.path());
    std::fs::write(
        proj.path().join("records/migrations/0009_token_max_lengths.py"),
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"records\", \"0008_encounter_kind_index\")]\n    operations = []\n",
    )
    .unwrap();
    let r = check(proj.path(), &url, "json");
    assert_eq!(r.code(), 1, "{}\n{}", r.stdout(), r.stderr());
    let j = report(&r);
    let runs = j["runs"].as_array().unwrap();
    assert_eq!(runs.len(), PENDING.len() + 1, "{runs:#?}");
    assert!(
        runs.iter()
            .any(|r| r["file"] == "records/migrations/0009_token_max_lengths.py"),
        "{runs:#?}"
    );
}

#[test]
fn a_migration_whose_sql_needs_an_earlier_pending_one_is_printed_when_its_turn_comes() {
    let c = cluster();
    let proj = project();
    let url = early_database(&c, proj.path());
    // 0003 adds a unique_together that 0004 removes. Before the window
    // billing has no table, so `sqlmigrate billing 0004` cannot name the
    // constraint ("Found wrong number (0) of constraints"): django-cms's
    // 0041 after its 0039. Django runs the pair without complaint.
    let migration = |deps: &str, together: &str| {
        format!(
            "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"billing\", \"{deps}\")]\n    operations = [\n        migrations.AlterUniqueTogether(\n            name=\"invoice\",\n            unique_together={together},\n        ),\n    ]\n"
        )
    };
    let dir = proj.path().join("billing/migrations");
    std::fs::write(
        dir.join("0003_reference_currency.py"),
        migration(
            "0002_invoice_rating_status",
            "{(\"reference\", \"currency\")}",
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("0004_no_reference_currency.py"),
        migration("0003_reference_currency", "set()"),
    )
    .unwrap();
    let r = check(proj.path(), &url, "json");
    // 1: the fax drop of records 0007, as in the first test; nothing else.
    assert_eq!(r.code(), 1, "{}\n{}", r.stdout(), r.stderr());
    let j = report(&r);
    assert!(findings(&j, "migration-error").is_empty(), "{j:#}");
    let runs = j["runs"].as_array().unwrap();
    let last = runs.last().unwrap();
    assert_eq!(
        last["file"],
        "billing/migrations/0004_no_reference_currency.py"
    );
    let sqls: Vec<&str> = last["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sql"].as_str().unwrap())
        .collect();
    assert!(
        sqls.iter()
            .any(|s| s.contains("DROP CONSTRAINT")
                && s.contains("billing_invoice_reference_currency")),
        "the constraint 0003 made is dropped by name: {sqls:#?}"
    );
}

#[test]
fn a_migration_that_replaces_another_is_recorded_as_django_records_it() {
    let c = cluster();
    let proj = project();
    let url = early_database(&c, proj.path());
    // A renamed migration kept for old installs (django-oscar's
    // order.0009_surcharge replaces 0008_surcharge). Recorded under its own
    // name, Django took it for unapplied and ran it again inside the next
    // migration's `migrate`: "relation already exists".
    let dir = proj.path().join("records/migrations");
    std::fs::write(
        dir.join("0009_tag.py"),
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    replaces = [(\"records\", \"0009_old_tag\")]\n    dependencies = [(\"records\", \"0008_encounter_kind_index\")]\n    operations = [migrations.RunSQL(\"CREATE TABLE records_tag (id serial PRIMARY KEY)\", \"DROP TABLE records_tag\")]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("0010_note.py"),
        "from django.db import migrations\n\n\ndef note(apps, schema_editor):\n    pass\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"records\", \"0009_tag\")]\n    operations = [migrations.RunPython(note, migrations.RunPython.noop)]\n",
    )
    .unwrap();
    let r = check_with(proj.path(), &url, "json", &["--round-trip", "false"]);
    assert!(r.code() == 0 || r.code() == 1, "{}", r.stderr());
    let j = report(&r);
    assert!(findings(&j, "migration-error").is_empty(), "{j:#}");
    let files: Vec<&str> = j["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"records/migrations/0010_note.py"),
        "{files:?}"
    );
}

#[test]
fn an_index_django_defers_to_the_end_is_blamed_on_the_operation_that_added_its_column() {
    // Django creates the index of a new ForeignKey after the migration's
    // last operation (its deferred SQL); it was blamed on that last one.
    let c = cluster();
    let proj = project();
    let url = early_database(&c, proj.path());
    let source = "from django.db import migrations, models\nimport django.db.models.deletion\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"records\", \"0008_encounter_kind_index\")]\n    operations = [\n        migrations.AddField(\n            model_name=\"encounter\",\n            name=\"referrer\",\n            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name=\"+\", to=\"records.patient\"),\n        ),\n        migrations.AddField(\n            model_name=\"patient\",\n            name=\"note\",\n            field=models.TextField(blank=True, default=\"\"),\n        ),\n    ]\n";
    let add_field_line = source
        .lines()
        .position(|l| l.contains("migrations.AddField("))
        .unwrap()
        + 1;
    std::fs::write(
        proj.path().join("records/migrations/0009_referrer.py"),
        source,
    )
    .unwrap();
    let r = check(proj.path(), &url, "json");
    let j = report(&r);
    assert!(findings(&j, "migration-error").is_empty(), "{j:#}");
    let run = j["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["file"] == "records/migrations/0009_referrer.py")
        .expect("0009 ran")
        .clone();
    let index = run["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            let sql = s["sql"].as_str().unwrap();
            sql.starts_with("CREATE INDEX") && sql.contains("referrer_id")
        })
        .unwrap_or_else(|| panic!("no index on referrer_id: {run:#}"))
        .clone();
    assert_eq!(index["line"], add_field_line, "{index:#}");
    assert!(
        index["sql"]
            .as_str()
            .unwrap()
            .contains("-- Add field referrer to encounter (run by Django at the migration's end)"),
        "{index:#}"
    );
}
