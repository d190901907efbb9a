//! ward's Django support on real projects from PyPI: wagtail and
//! django-allauth (pinned in .ci/python-venv.sh), installed by the fixture
//! project tests/fixtures/django_real, with their long migration histories.
//! The small fixture (tests/fixtures/django_app) only shows what we thought
//! of; these show what real schemas and migrations hold.

use crate::support::django::{
    fixture_project, full_clean, init_spec, manage, python, seed_guessed,
};
use crate::support::*;

/// Models whose seeded rows `full_clean()` rejects, each with the reason.
/// Nothing else is excluded.
const CLEAN_EXCEPTIONS: &[(&str, &str)] = &[
    (
        "wagtailimages.Image",
        "full_clean() opens the image file on media storage to read its size: ward writes rows, not files",
    ),
    (
        "wagtailimages.Rendition",
        "full_clean() opens the rendition's image file on media storage: ward writes rows, not files",
    ),
];

/// Tables of the public schema with no row.
fn empty_tables(url: &str) -> Vec<String> {
    let tables = sql(
        url,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    );
    tables
        .into_iter()
        .filter_map(|r| r[0].clone())
        .filter(|t| {
            int(
                url,
                &format!("SELECT count(*) FROM (SELECT 1 FROM \"{t}\" LIMIT 1) x"),
            ) == 0
        })
        .collect()
}

#[test]
fn wagtail_and_allauth_at_head_seed_with_the_guessed_spec_and_pass_full_clean() {
    let c = cluster();
    sql(&c.url("postgres"), "CREATE DATABASE app");
    let url = c.url("app");
    let proj = fixture_project("django_real");
    manage(proj.path(), &url, &["migrate", "--no-input"]);
    let tables = int(
        &url,
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
    );
    assert!(tables >= 50, "only {tables} tables: is wagtail installed?");
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.toml");
    init_spec(&url, proj.path(), &spec);
    let started = std::time::Instant::now();
    ward()
        .db(&url)
        .args(["seed", "--spec"])
        .arg_str(spec.to_str().unwrap())
        .ok();
    let took = started.elapsed();
    let empty = empty_tables(&url);
    assert!(
        empty.is_empty(),
        "tables left empty by the unedited spec: {empty:?}"
    );
    let rows = int(
        &url,
        "SELECT sum(n_live_tup)::bigint FROM pg_stat_user_tables WHERE schemaname = 'public'",
    );
    eprintln!("django_real: {tables} tables, ~{rows} rows seeded in {took:?}");
    let (checked, errors) = full_clean(proj.path(), &url, 20);
    let errors: Vec<&String> = errors
        .iter()
        .filter(|e| {
            !CLEAN_EXCEPTIONS
                .iter()
                .any(|(m, _)| e.starts_with(&format!("{m} ")))
        })
        .collect();
    assert!(errors.is_empty(), "full_clean() rejected rows: {errors:#?}");
    let unchecked: Vec<&String> = checked
        .iter()
        .filter(|(_, n)| *n == 0)
        .map(|(m, _)| m)
        .collect();
    assert!(
        unchecked.is_empty(),
        "models with no row to check: {unchecked:?}"
    );
}

/// wagtailcore's migrations after this one make the checked window.
const WINDOW_FROM: &str = "0087_alter_grouppagepermission_unique_together_and_more";
const WINDOW: &[&str] = &[
    "0088_fix_log_entry_json_timestamps",
    "0089_log_entry_data_json_null_to_object",
    "0090_remove_grouppagepermission_permission_type",
    "0091_remove_revision_submitted_for_moderation",
    "0092_alter_collectionviewrestriction_password_and_more",
    "0093_uploadedfile",
    "0094_alter_page_locale",
];

/// Every app of the fixture except wagtailcore, migrated to its head (none
/// of them needs wagtailcore past WINDOW_FROM).
const OTHER_APPS: &[&str] = &[
    "admin",
    "auth",
    "contenttypes",
    "sessions",
    "sites",
    "taggit",
    "wagtailforms",
    "wagtailredirects",
    "wagtailembeds",
    "wagtailusers",
    "wagtaildocs",
    "wagtailimages",
    "wagtailsearch",
    "wagtailadmin",
    "account",
    "socialaccount",
    "mfa",
];

#[test]
fn a_window_of_wagtails_history_is_checked_migration_by_migration() {
    let c = cluster();
    sql(&c.url("postgres"), "CREATE DATABASE prod");
    let url = c.url("prod");
    let proj = fixture_project("django_real");
    manage(
        proj.path(),
        &url,
        &["migrate", "wagtailcore", WINDOW_FROM, "--no-input"],
    );
    // One Python for all the apps: each start of wagtail costs seconds.
    let script = format!(
        "from django.core.management import call_command\nfor a in {OTHER_APPS:?}:\n    call_command('migrate', a, interactive=False, verbosity=0)\n"
    );
    manage(proj.path(), &url, &["shell", "-c", &script]);
    let plan = manage(proj.path(), &url, &["showmigrations", "--plan"]);
    let pending: Vec<&str> = plan.lines().filter(|l| l.starts_with("[ ]")).collect();
    assert_eq!(pending.len(), WINDOW.len(), "{plan}");
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.toml");
    seed_guessed(&url, proj.path(), &spec);
    let started = std::time::Instant::now();
    let r = ward()
        .args(["check", "--runner", "django", "--against"])
        .arg_str(&url)
        .args(["--django-project"])
        .arg_str(proj.path().to_str().unwrap())
        .args(["--python"])
        .arg_str(python().to_str().unwrap())
        .args(["--format", "json"])
        .run();
    eprintln!("django_real check took {:?}", started.elapsed());
    assert!(
        r.code() == 0 || r.code() == 1,
        "{}\n{}",
        r.stdout(),
        r.stderr()
    );
    let j = crate::support::check::report(&r);
    let runs: Vec<String> = j["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = WINDOW.iter().map(|m| format!("wagtailcore.{m}")).collect();
    assert_eq!(runs, want);
    // An installed package's migration is named by its absolute path.
    for run in j["runs"].as_array().unwrap() {
        let file = run["file"].as_str().unwrap();
        assert!(
            file.starts_with('/') && file.contains("site-packages/wagtail/migrations/00"),
            "{file}"
        );
    }
    // Every finding, each real:
    // - 0090 and 0091 drop columns that hold the seeded rows' values
    //   (RemoveField permission_type, submitted_for_moderation): data lost.
    // - 0090 rewrites wagtailcore_grouppagepermission's keys in one
    //   transaction under ACCESS EXCLUSIVE (blocking-lock), and its ALTER
    //   TABLEs take the tables' locks, auth_permission's through the new
    //   foreign key (metadata-lock); 0091's DROP COLUMN locks wagtailcore_revision.
    let mut found: Vec<(String, String, String)> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = f["file"].as_str().unwrap_or("");
            let migration = file.rsplit('/').next().unwrap_or("").to_string();
            (
                f["rule"].as_str().unwrap().to_string(),
                migration,
                f["object"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    found.sort();
    let m90 = "0090_remove_grouppagepermission_permission_type.py";
    let m91 = "0091_remove_revision_submitted_for_moderation.py";
    let mut want: Vec<(String, String, String)> = [
        ("blocking-lock", m90, "wagtailcore_grouppagepermission"),
        (
            "dropped-data",
            m90,
            "wagtailcore_grouppagepermission.permission_type",
        ),
        (
            "dropped-data",
            m91,
            "wagtailcore_revision.submitted_for_moderation",
        ),
        ("metadata-lock", m90, "auth_permission"),
        ("metadata-lock", m90, "wagtailcore_grouppagepermission"),
        ("metadata-lock", m91, "wagtailcore_revision"),
        // The down round trip (real defects of wagtail's reverses): unapplying
        // 0090 and 0091 re-adds the dropped columns without their values, and
        // 0091's reverse re-creates the column's index under another name.
        (
            "down-migration",
            m90,
            "wagtailcore_grouppagepermission.permission_type",
        ),
        (
            "down-migration",
            m91,
            "wagtailcore_revision.submitted_for_moderation",
        ),
        ("down-migration", m91, ""),
        ("down-migration", m91, ""),
    ]
    .iter()
    .map(|(r, m, o)| (r.to_string(), m.to_string(), o.to_string()))
    .collect();
    want.sort();
    assert_eq!(found, want, "{}", r.stdout());
    assert_eq!(r.code(), 1);
}
