//! ward on django-cms (pinned in .ci/python-venv.sh, installed by the fixture
//! project tests/fixtures/django_cms): a project nobody here wrote, tried as
//! a new user would. Its early schema has a one-to-one key to its own table
//! (`publisher_public`), two pages per tree node (draft and public) and
//! plugin subtypes (multi-table inheritance); its late migrations drop and
//! re-create unique constraints an earlier migration of the same window made.

use crate::support::check::{findings, report};
use crate::support::django::{check_with, fixture_project, manage, seed_guessed};
use crate::support::*;

const MIGRATIONS: &str = "cms/migrations";

/// A database with django-cms migrated to `to` (and what that needs),
/// seeded with the guessed spec as written.
fn seeded_at(c: &Cluster, db: &str, to: &str) -> (String, tempfile::TempDir) {
    sql(&c.url("postgres"), &format!("CREATE DATABASE {db}"));
    let url = c.url(db);
    let proj = fixture_project("django_cms");
    manage(proj.path(), &url, &["migrate", "cms", to, "--no-input"]);
    let spec = proj.path().join("spec.toml");
    seed_guessed(&url, proj.path(), &spec);
    (url, proj)
}

#[test]
fn the_early_schema_seeds_with_the_guessed_spec_unedited() {
    let c = cluster();
    let (url, _proj) = seeded_at(&c, "cms_early", "0022_auto_20180620_1551");
    // Each page's public twin is another page, never shared.
    assert!(int(&url, "SELECT count(publisher_public_id) FROM cms_page") > 0);
    assert_eq!(
        int(
            &url,
            "SELECT count(*) - count(DISTINCT publisher_public_id) FROM cms_page WHERE publisher_public_id IS NOT NULL"
        ),
        0
    );
    // At most a draft and a public page per tree node.
    assert!(
        int(
            &url,
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) n FROM cms_page GROUP BY node_id) x"
        ) <= 2
    );
    // A plugin is of one kind: never an alias and a placeholder reference.
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM cms_aliaspluginmodel a JOIN cms_placeholderreference r USING (cmsplugin_ptr_id)"
        ),
        0
    );
    assert!(int(&url, "SELECT count(*) FROM cms_placeholderreference") > 0);
    // Usernames a person would pick, not noise drawn from the validator's
    // pattern (`^[\w.@+-]+\Z`: "R@x0t", "6V").
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM auth_user WHERE username !~ '^[A-Za-z]+([._-][A-Za-z]+)?[0-9]*$'"
        ),
        0,
        "{:?}",
        sql(&url, "SELECT username FROM auth_user LIMIT 10")
    );
}

#[test]
fn the_last_window_runs_whole_and_accepts_a_drop_named_from_the_package() {
    let c = cluster();
    let (url, proj) = seeded_at(&c, "cms_window", "0038_alter_page_site");
    std::fs::write(
        proj.path().join("ward-accept.toml"),
        format!(
            "[[accept]]\nrule = \"dropped-data\"\ntable = \"cms_page\"\ncolumn = \"languages\"\nmigration = \"{MIGRATIONS}/0039_remove_page_languages_alter_pageurl_unique_together.py\"\nreason = \"django-cms keeps languages per page content since 4.0\"\n"
        ),
    )
    .unwrap();
    let r = check_with(proj.path(), &url, "json", &["--round-trip", "false"]);
    assert!(
        r.code() == 0 || r.code() == 1,
        "{}\n{}",
        r.stdout(),
        r.stderr()
    );
    let j = report(&r);
    assert!(findings(&j, "migration-error").is_empty(), "{j:#}");
    assert!(findings(&j, "stale-accept").is_empty(), "{j:#}");
    let runs: Vec<&str> = j["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_str().unwrap())
        .collect();
    let cms: Vec<&&str> = runs.iter().filter(|v| v.starts_with("cms.")).collect();
    assert_eq!(
        cms,
        [
            &"cms.0039_remove_page_languages_alter_pageurl_unique_together",
            &"cms.0040_alter_pageuser_created_by_and_more",
            &"cms.0041_alter_pageurl_unique_together_pageurl_site_and_more",
        ],
        "{runs:?}"
    );
    // 0041 drops by name the constraint 0039 made: printed when its turn came.
    let last = j["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["version"].as_str().unwrap().starts_with("cms.0041"))
        .unwrap();
    assert!(
        last["statements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["sql"].as_str().unwrap().contains("DROP CONSTRAINT")),
        "{last:#}"
    );
    // The drop of languages is accepted through the entry that names the
    // migration from its package, the same on every machine.
    let accepted = j["accepted"].as_array().unwrap();
    assert!(
        accepted
            .iter()
            .any(|f| f["rule"] == "dropped-data"
                && f["object"].as_str().unwrap().contains("languages")),
        "{j:#}"
    );
    assert!(
        findings(&j, "dropped-data")
            .iter()
            .all(|f| !f["object"].as_str().unwrap().contains("languages")),
        "{j:#}"
    );
}
